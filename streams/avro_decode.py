"""Avro bodies read in C (streams/_avro.c) by a program compiled once from the schema, about seven
times faster than fastavro's generic reader on our events (docs/benchmarks.md, tenth stop).

fastavro walks the schema for every record: a dict lookup and a type dispatch per field. Here the
walk happens once: `compile_reader` turns the schema into a program of nested tuples, one per Avro
type, and returns `read(body) -> dict`, the dict fastavro would return. It is used only where it
gives exactly fastavro's answer: a record written with the reader's own schema (no resolution to
do) whose types it knows. Anything it cannot read raises, and the caller then asks fastavro,
whose error message the dead letter carries.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from streams import _avro

Reader = Callable[[bytes], dict[str, Any]]

# the program's kinds, as streams/_avro.c numbers them
NUL, BOOLEAN, LONG, FLOAT, DOUBLE, STRING, BYTES, ENUM, ARRAY, MAP, UNION, RECORD, FIXED = range(13)
PRIMITIVES = {
    "null": NUL,
    "boolean": BOOLEAN,
    "int": LONG,
    "long": LONG,
    "float": FLOAT,
    "double": DOUBLE,
    "string": STRING,
    "bytes": BYTES,
}


class Unsupported(Exception):
    """The schema uses something this compiler has no program for (logical types, recursion)."""


def _program(schema: Any, active: frozenset[str]) -> tuple[Any, ...]:
    """The program node that reads one value of `schema`; `active`: the records being compiled
    around it (a record inside itself is recursion, which a tuple program cannot hold)."""
    if isinstance(schema, list):
        return (UNION, tuple(_program(branch, active) for branch in schema))
    if isinstance(schema, str):
        return _primitive(schema)
    if schema.get("logicalType"):
        raise Unsupported(f"logical type {schema['logicalType']}")
    kind = schema["type"]
    if kind == "record":
        name = schema.get("name", "")
        if name in active:
            raise Unsupported(f"recursive record {name}")
        fields = schema["fields"]
        return (
            RECORD,
            tuple(f["name"] for f in fields),
            tuple(_program(f["type"], active | {name}) for f in fields),
        )
    if kind == "enum":
        return (ENUM, tuple(schema["symbols"]))
    if kind == "array":
        return (ARRAY, _program(schema["items"], active))
    if kind == "map":
        return (MAP, _program(schema["values"], active))
    if kind == "fixed":
        return (FIXED, int(schema["size"]))
    return _primitive(kind)


def _primitive(kind: str) -> tuple[int]:
    if kind not in PRIMITIVES:
        raise Unsupported(f"type {kind}")
    return (PRIMITIVES[kind],)


def compile_reader(schema: Any) -> Reader:
    """`read(body)` for a fastavro-parsed schema (a record, or any Avro type) with its named types
    expanded (fastavro.parse_schema(..., expand=True)); raises Unsupported for what it cannot read."""
    read: Reader = partial(_avro.read, _program(schema, frozenset()))
    return read
