"""The rollups' insert blocks built in C (streams/_native.c, streams/sinks/native.py): the very
bytes the driver builds for the same rows, or nothing, and the driver builds them (or refuses the
value, naming its column)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from clickhouse_connect.datatypes.registry import get_from_name
from clickhouse_connect.driver.insert import InsertContext
from clickhouse_connect.driver.transform import NativeTransform
from hypothesis import given
from hypothesis import strategies as st
from native import PROPERTY, leaks

from streams import _native
from streams.clickhouse import apply_ddl
from streams.sinks import native
from streams.sinks.clickhouse import ROLLUP_COLUMNS, ClickHouseTableSink, Rejected, identity_row


def driver_blocks(names: list[str], types: list[str], rows: list[tuple]) -> bytes:
    """What clickhouse-connect sends for the rows, in blocks of native.BLOCK_ROWS, without the
    INSERT statement its first block opens with."""
    out = b""
    for i in range(0, len(rows), native.BLOCK_ROWS):
        ctx = InsertContext(
            "t",
            names,
            [get_from_name(t) for t in types],
            data=rows[i : i + native.BLOCK_ROWS],
            block_size=10**9,
        )
        body = b"".join(NativeTransform.build_insert(ctx))
        out += body[body.index(b"\n") + 1 :]
    return out


def ours(names: list[str], types: list[str], rows: list[tuple]) -> bytes | None:
    columns = native.columns(names, types)
    assert columns is not None
    return native.blocks(rows, columns)


def rollup(i: int, distinct: int = 7) -> tuple:
    """A rollup row (ROLLUP_COLUMNS) whose org is one of `distinct`."""
    return ("t.access", i % 3, i // 1000, 1_767_225_600 + 60 * (i % 90), "access", "C3", f"S{i % distinct:04d}",
            "success", "view", i + 1, 1000, "AaJREOw9eeOkk+sCy0nWww")  # fmt: skip


@pytest.mark.parametrize("distinct", [1, 255, 256, 65_535, 65_536, 70_000])  # keys of 1, 1, 2, 2, 4, 4 bytes
def test_rollup_rows_are_the_drivers_bytes(distinct: int) -> None:
    names = list(ROLLUP_COLUMNS)
    types = ["LowCardinality(String)", "UInt32", "UInt64", "DateTime('UTC')"]
    types += ["LowCardinality(String)"] * 5 + ["UInt64", "UInt64", "LowCardinality(String)"]
    rows = [rollup(i, distinct) for i in range(max(distinct, 300))]
    assert ours(names, types, rows) == driver_blocks(names, types, rows)


def test_blocks_are_split_as_the_driver_would(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(native, "BLOCK_ROWS", 4)  # a dictionary per block
    names, types = ["s", "n"], ["LowCardinality(String)", "UInt16"]
    rows = [(f"v{i % 3}", i) for i in range(10)]
    assert ours(names, types, rows) == driver_blocks(names, types, rows)


def test_strings_and_every_integer_width_at_their_bounds() -> None:
    names = ["s", "lc", "u8", "i8", "u16", "i16", "u32", "i32", "u64", "i64", "at"]
    types = ["String", "LowCardinality(String)", "UInt8", "Int8", "UInt16", "Int16", "UInt32", "Int32"]
    types += ["UInt64", "Int64", "DateTime"]
    rows = [
        ("", "", 0, -128, 0, -(2**15), 0, -(2**31), 0, -(2**63), 0),
        (
            "营业部",
            "营业部",
            255,
            127,
            2**16 - 1,
            2**15 - 1,
            2**32 - 1,
            2**31 - 1,
            2**64 - 1,
            2**63 - 1,
            2**32 - 1,
        ),
        ("a" * 300, "b", 1, -1, 2, -2, 3, -3, 4, -4, 1_767_225_600),  # a length of two LEB128 bytes
    ]
    assert ours(names, types, rows) == driver_blocks(names, types, rows)


@pytest.mark.parametrize(
    ("column_type", "value"),
    [
        ("UInt8", 256),
        ("UInt32", -1),
        ("Int8", -129),
        ("Int64", 2**63),
        ("UInt64", 2**64),
        ("DateTime('UTC')", datetime(2026, 1, 1, tzinfo=UTC)),  # the driver converts it
        ("String", b"bytes"),
        ("LowCardinality(String)", None),
        ("String", "\ud800"),  # no UTF-8 for a lone surrogate
        ("UInt64", "1"),
    ],
)
def test_a_value_the_encoder_does_not_take_is_left_to_the_driver(column_type: str, value: Any) -> None:
    columns = native.columns(["k", "v"], ["UInt32", column_type])
    assert columns is not None
    assert native.blocks([(1, value)], columns) is None


def test_a_row_that_is_no_tuple_is_left_to_the_driver() -> None:
    columns = native.columns(["k"], ["UInt32"])
    assert columns is not None
    assert native.blocks([[1]], columns) is None


@pytest.mark.parametrize(
    "column_type", ["DateTime64(3, 'UTC')", "Float64", "Array(String)", "Nullable(String)", "Date", "UInt128"]
)
def test_a_table_with_another_column_type_goes_through_the_driver(column_type: str) -> None:
    assert native.columns(["k", "v"], ["UInt32", column_type]) is None
    assert native.columns(["k"], None) is None  # a column the table lacks: the driver says so


def test_the_rollups_are_stored_through_the_encoder_and_a_refused_row_is_named(ch: Any, names: dict) -> None:
    db = names["database"]
    apply_ddl(ch, db)
    rejected: list[Rejected] = []
    sink = ClickHouseTableSink(
        ch, f"{db}.event_rollups", ROLLUP_COLUMNS, identity_row, "rollups", on_reject=rejected.extend
    )
    sink._load_probe("insert into")
    assert sink._probe is not None
    assert native.columns(sink.columns, sink._probe.column_types) is not None  # the C path, not the driver's
    refused = (*rollup(3)[:1], -1, *rollup(3)[2:])  # no UInt32 partition
    batch = [rollup(i, 40) for i in range(3)] + [refused] + [rollup(i, 40) for i in range(4, 500)]
    sink.write(batch)
    assert [r.item for r in rejected] == [refused]
    assert rejected[0].reason == (
        f"{db}.event_rollups refused the row: Unable to create native array for column `partition`: "
        "argument out of range"
    )
    stored = ch.query(
        f"SELECT {', '.join(ROLLUP_COLUMNS)} FROM {db}.event_rollups ORDER BY events"
    ).result_rows
    expected = [r for r in batch if r is not refused]
    assert [(*r[:3], int(r[3].timestamp()), *r[4:]) for r in stored] == expected


# each type the encoder writes, with the values it must take: every integer's bounds (bools
# too), and any text but lone surrogates (which no column takes: the driver refuses them)
_BOUNDS = {f"UInt{b}": (0, 2**b - 1) for b in (8, 16, 32, 64)}
_BOUNDS |= {f"Int{b}": (-(2 ** (b - 1)), 2 ** (b - 1) - 1) for b in (8, 16, 32, 64)}
_BOUNDS |= dict.fromkeys(["DateTime", "DateTime('UTC')"], (0, 2**32 - 1))
_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=20) | st.sampled_from(
    ["", "营业部", "𝒜", "\x00"]
)


def _values(column_type: str) -> st.SearchStrategy[Any]:
    if column_type.endswith("String)") or column_type == "String":
        return _TEXT
    low, high = _BOUNDS[column_type]
    return st.integers(low, high) | st.sampled_from([low, high]) | st.booleans()


@st.composite
def _tables(draw: st.DrawFn) -> tuple[list[str], list[tuple]]:
    types = draw(
        st.lists(st.sampled_from(["String", "LowCardinality(String)", *_BOUNDS]), min_size=1, max_size=6)
    )
    rows = draw(st.lists(st.tuples(*map(_values, types)), min_size=1, max_size=30))
    return types, rows


@PROPERTY
@given(table=_tables())
def test_any_rows_of_the_types_it_writes_are_the_drivers_bytes(table: tuple[list[str], list[tuple]]) -> None:
    types, rows = table
    names = [f"c{i}" for i in range(len(types))]
    assert ours(names, types, rows) == driver_blocks(names, types, rows)


def test_the_encoder_leaves_nothing_behind_on_any_value() -> None:
    columns = [("s", "LowCardinality(String)", 1, 0), ("t", "String", 0, 0), ("n", "UInt8", 2, 1)]

    def rows(odd: tuple | None = None) -> list[tuple]:
        made = [(f"v{i % 5}", f"x{i}", i % 200) for i in range(40)]
        made[20] = odd or made[20]
        return made

    odd = {
        "stored": (lambda: _native.block(rows(), columns), None),
        "no str for a dictionary": (lambda: _native.block(rows((None, "a", 1)), columns), TypeError),
        "no UTF-8 in a dictionary": (lambda: _native.block(rows(("\ud800", "a", 1)), columns), UnicodeError),
        "no UTF-8": (lambda: _native.block(rows(("a", "\ud800", 1)), columns), UnicodeError),
        "out of range": (lambda: _native.block(rows(("a", "a", 256)), columns), OverflowError),
        "a short row": (lambda: _native.block(rows(("a",)), columns), TypeError),
    }
    assert leaks(odd, 2000) == {}


def test_a_rollup_batch_sent_again_is_dropped_by_its_token(
    ch: Any, names: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A flush retried after a failure sends the rows again, rebuilt: the same bytes, the same
    token, and ClickHouse stores them once (counted without FINAL), in several blocks too."""
    monkeypatch.setattr(native, "BLOCK_ROWS", 64)
    db = names["database"]
    apply_ddl(ch, db)
    sink = ClickHouseTableSink(
        ch, f"{db}.event_rollups", ROLLUP_COLUMNS, identity_row, "rollups", settings={"optimize_on_insert": 0}
    )
    sink.write([rollup(i, 300) for i in range(500)])
    sink.write([rollup(i, 300) for i in range(500)])  # new objects, the same values
    assert ch.query(f"SELECT count(), sum(events) FROM {db}.event_rollups").result_rows == [(500, 125_250)]


def test_a_cell_twice_in_one_block_is_read_at_its_newest_version(ch: Any, names: dict) -> None:
    """Inserted with optimize_on_insert=0 (Tables.of), a block holding a cell's earlier drain and its
    newest keeps both rows: FINAL, which every reader asks, reads the newest alone."""
    db = names["database"]
    apply_ddl(ch, db)
    sink = ClickHouseTableSink(
        ch, f"{db}.event_rollups", ROLLUP_COLUMNS, identity_row, "rollups", settings={"optimize_on_insert": 0}
    )
    earlier, newest = (*rollup(0)[:9], 5, 5, rollup(0)[11]), (*rollup(0)[:9], 7, 9, rollup(0)[11])
    sink.write([earlier, *[rollup(i) for i in range(1, 300)], newest])
    cell = f"org = 'S0000' AND block = 0 AND partition = 0 AND minute = toDateTime({rollup(0)[3]})"
    one = f"FROM {db}.event_rollups {{}} WHERE {cell}"
    assert ch.query(f"SELECT count() {one.format('')}").result_rows == [(2,)]
    assert ch.query(f"SELECT count(), sum(events) {one.format('FINAL')}").result_rows == [(1, 7)]
