"""Avro bodies read in C (streams/_avro.c) by a program compiled once from the schema, several
times faster than fastavro's generic reader on our events (docs/benchmarks.md, tenth and twelfth
stops).

fastavro walks the schema for every record: a dict lookup and a type dispatch per field. Here the
walk happens once: `compile_reader` turns the schema into a program of nested tuples, one per Avro
type. The C walks it over the bodies and writes msgpack, which msgspec decodes: a batch straight
into the stream's Structs (`Reader.many`), one body into the dict fastavro would return (`Reader`
called). It is used only where it gives exactly fastavro's answer: a record written with the
reader's own schema (no resolution to do) whose types it knows. Anything it cannot read raises,
and the caller then asks fastavro, whose error message the dead letter carries.
"""

from __future__ import annotations

from typing import Any

import msgspec

from streams import _avro

_UNTYPED = msgspec.msgpack.Decoder()  # dicts, lists, str, bytes, int, float, bool, None: fastavro's types

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


class Reader:
    """One schema compiled (`compile_reader`)."""

    __slots__ = ("program",)

    def __init__(self, program: tuple[Any, ...]):
        self.program = program

    def __call__(self, body: bytes) -> Any:
        """The value `body` holds: what fastavro's schemaless_reader returns for it."""
        return _UNTYPED.decode(_avro.transcode(self.program, [body], 0))[0]

    def many(self, bodies: list[bytes], skip: int, into: msgspec.msgpack.Decoder) -> list[Any]:
        """The bodies (each from byte `skip` on: past a wire-format header) decoded by `into`, a
        decoder of a list of the Structs they hold, in one call; raises if any one is not such."""
        return into.decode(_avro.transcode(self.program, bodies, skip))  # type: ignore[no-any-return]


def compile_reader(schema: Any) -> Reader:
    """The `Reader` of a fastavro-parsed schema (a record, or any Avro type) with its named types
    expanded (fastavro.parse_schema(..., expand=True)); raises Unsupported for what it cannot read."""
    return Reader(_program(schema, frozenset()))
