"""A table sink's rows as ClickHouse Native insert blocks, built in C (streams/_native.c), for
tables whose every column is a string or an integer: the rollups, about one row per event in a
replay, whose seven LowCardinality columns the driver encodes with a Python step per value
(docs/benchmarks.md#forty-eighth-stop-the-checkpoint-and-the-sinks).

The bytes are the driver's own (tests/test_native_block.py compares them), so the server stores
the same rows either way. A table with another column type, or a batch with a value the encoder
does not take, goes through the driver, which also names the column of a value it refuses."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from streams import _native

# ClickHouse's type -> (kind, width) as streams/_native.c numbers them
_STRING, _LOW_CARDINALITY, _UNSIGNED, _SIGNED = 0, 1, 2, 3
_INTEGER = re.compile(r"^(U?)Int(8|16|32|64)$")
# DateTime is seconds in a UInt32; the encoder takes ints only (the driver converts a datetime)
_DATETIME = re.compile(r"^DateTime(\('[^']*'\))?$")
BLOCK_ROWS = 65_536  # rows per block: a LowCardinality dictionary is built per block


Columns = list[tuple[str, str, int, int]]


def _kind(column_type: str) -> tuple[int, int] | None:
    if column_type == "String":
        return _STRING, 0
    if column_type == "LowCardinality(String)":
        return _LOW_CARDINALITY, 0
    if _DATETIME.match(column_type):
        return _UNSIGNED, 4
    found = _INTEGER.match(column_type)
    if found:
        return (_UNSIGNED if found[1] else _SIGNED), int(found[2]) // 8
    return None


def columns(names: Sequence[str], types: Sequence[str] | None) -> Columns | None:
    """What the encoder needs of a table's columns (name, type, kind, width), or None when one of
    them is of a type it does not write (or unknown)."""
    if types is None:
        return None
    kinds = [_kind(t) for t in types]
    if any(k is None for k in kinds):
        return None
    return [(name, t, *k) for name, t, k in zip(names, types, kinds, strict=True) if k is not None]


def blocks(rows: list[Any], table_columns: Columns) -> bytes | None:
    """The rows as Native blocks of at most BLOCK_ROWS rows, or None when a value is one the
    encoder does not take (a datetime, a number out of its column's range, a str that is not
    UTF-8): the driver is left to encode it, or to refuse it naming its column."""
    try:
        return b"".join(
            _native.block(rows[i : i + BLOCK_ROWS], table_columns) for i in range(0, len(rows), BLOCK_ROWS)
        )
    except (TypeError, OverflowError, UnicodeError):
        return None
