"""A database made by an earlier release gains the columns added to the DDL since (CREATE ... IF NOT
EXISTS alone leaves an existing table as it was, and every insert would then fail)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from test_alerts import finding

from streams.alerts import build_alert
from streams.clickhouse import apply_ddl, ddl_statements
from streams.report import Period, take_outs
from streams.sinks.clickhouse import (
    ALERT_COLUMNS,
    ROLLUP_COLUMNS,
    ClickHouseTableSink,
    alert_row,
    identity_row,
)


@pytest.fixture
def db(ch: Any) -> Iterator[str]:
    name = f"upgrade_{uuid.uuid4().hex[:8]}"
    yield name
    ch.command(f"DROP DATABASE IF EXISTS {name}")


def columns(ch: Any, db: str, table: str) -> list[str]:
    result = ch.query(
        "SELECT name FROM system.columns WHERE database = {db:String} AND table = {t:String} ORDER BY position",
        parameters={"db": db, "t": table},
    )
    return [name for (name,) in result.result_rows]


def test_an_alerts_table_from_before_event_count_gains_it_in_place(ch: Any, db: str, policy: Any) -> None:
    (create,) = [s for s in ddl_statements(db) if s.startswith(f"CREATE TABLE IF NOT EXISTS {db}.alerts")]
    ch.command(f"CREATE DATABASE {db}")
    ch.command("\n".join(line for line in create.splitlines() if "event_count" not in line))  # the old table
    assert "event_count" not in columns(ch, db, "alerts")

    apply_ddl(ch, db)
    assert columns(ch, db, "alerts") == [
        *ALERT_COLUMNS,
        "inserted_at",
        "kept_from",
        "raised_at",
    ]  # in place, after the evidence
    apply_ddl(ch, db)  # and again: nothing left to add

    alert = build_alert(finding(event_count=61), policy.detectors["bulk_query"])
    sink = ClickHouseTableSink(ch, f"{db}.alerts", ALERT_COLUMNS, alert_row, "alerts")
    sink.add([alert])
    assert sink.flush() == 1
    assert ch.query(f"SELECT event_count FROM {db}.alerts").result_rows == [(61,)]


def old_rollups(ch: Any, db: str, *dropped: str) -> None:
    """event_rollups as an earlier release made it: without the `dropped` columns, in its columns
    and at the end of its key."""
    (create,) = [
        s for s in ddl_statements(db) if s.startswith(f"CREATE TABLE IF NOT EXISTS {db}.event_rollups")
    ]
    old = "\n".join(line for line in create.splitlines() if line.split()[0] not in dropped)
    for name in dropped:
        old = old.replace(f", {name}", "")
    ch.command(f"CREATE DATABASE {db}")
    ch.command(old)
    assert not set(dropped) & set(columns(ch, db, "event_rollups"))


def sorting_key(ch: Any, db: str) -> str:
    ((key,),) = ch.query(
        "SELECT sorting_key FROM system.tables WHERE database = {db:String} AND name = 'event_rollups'",
        parameters={"db": db},
    ).result_rows
    return key


def test_an_event_rollups_table_from_before_topic_ids_gains_the_column_in_its_key(ch: Any, db: str) -> None:
    """The rollups' key tells topic incarnations apart by `topic_id` (a topic re-created starts again
    at offset 0). An old table gains the column in the same ALTER as its place at the end of the key:
    otherwise the new incarnation's rows would still replace the old ones'. Its rows stay readable,
    under topic_id ''. A table from before actions too gains both, one ALTER each (probe_v3 H4)."""
    old_rollups(ch, db, "topic_id", "action")
    cell = ["pfi.access", 0, 0, 1_767_225_600, "access", "C2", "S0101", "success"]
    ch.insert(
        "event_rollups",
        [[*cell, 40, 40]],
        database=db,
        column_names=[*ROLLUP_COLUMNS[:8], *ROLLUP_COLUMNS[9:-1]],
    )

    apply_ddl(ch, db)
    assert sorting_key(ch, db).endswith(", outcome, topic_id, action")
    assert columns(ch, db, "event_rollups")[1] == "topic_id"
    apply_ddl(ch, db)  # and again: nothing left to add

    sink = ClickHouseTableSink(ch, f"{db}.event_rollups", ROLLUP_COLUMNS, identity_row, "rollups")
    sink.add([(*cell, "view", 30, 30, "AaI2zN0ccLGv9RoNyBFD9Q")])  # block 0 of the topic re-created
    assert sink.flush() == 1
    rows = ch.query(f"SELECT topic_id, events FROM {db}.event_rollups FINAL ORDER BY topic_id").result_rows
    assert rows == [("", 40), ("AaI2zN0ccLGv9RoNyBFD9Q", 30)]


def test_an_event_rollups_table_from_before_actions_gains_the_column_in_its_key(ch: Any, db: str) -> None:
    """probe_v3 H4: an access event's action joins the rollups' key, in place and at its end, so a
    take-out and a read of one minute, class and org are rows of their own. The rows stored before
    read action '' (unknown), and the block that goes on counting after the upgrade writes its
    actions beside them instead of replacing them."""
    old_rollups(ch, db, "action")
    cell = ["pfi.access", 0, 0, 1_767_225_600, "access", "C2", "S0101", "success"]
    ch.insert(
        "event_rollups",
        [[*cell, 40, 40, "A"]],
        database=db,
        column_names=[*ROLLUP_COLUMNS[:8], *ROLLUP_COLUMNS[9:]],
    )
    # `lifemon report` before any `lifemon run` upgraded the table: every access event is unknown
    (row,) = take_outs(ch, db, Period())
    assert (row.org, row.jr_class, row.taken_out, row.read, row.unknown) == ("S0101", "C2", (0, 0, 0), 0, 40)

    apply_ddl(ch, db)
    assert sorting_key(ch, db).endswith(", outcome, topic_id, action")
    assert columns(ch, db, "event_rollups")[9] == "action"  # in its place, after the outcome

    sink = ClickHouseTableSink(ch, f"{db}.event_rollups", ROLLUP_COLUMNS, identity_row, "rollups")
    sink.add([(*cell, "export", 3, 43, "A"), (*cell, "view", 5, 48, "A")])
    assert sink.flush() == 2
    rows = ch.query(f"SELECT action, events FROM {db}.event_rollups FINAL ORDER BY action").result_rows
    assert rows == [("", 40), ("export", 3), ("view", 5)]


def test_a_row_of_the_wrong_width_stops_the_run_instead_of_being_refused_as_data(ch: Any, db: str) -> None:
    """A row lifemon built with a column too few is its own fault: no row of it may be filed as
    refused data and dropped; the sink stops, nothing is committed, a fix resumes from there."""
    from streams.sinks.base import FatalSinkError

    apply_ddl(ch, db)
    sink = ClickHouseTableSink(ch, f"{db}.event_rollups", ROLLUP_COLUMNS, identity_row, "rollups")
    row = ("t", 0, 0, 60, "access", "C2", "S0101", "success", "view", 1, 1, "")
    assert len(row) == len(ROLLUP_COLUMNS)
    refused: list = []
    sink.on_reject = refused.extend
    sink.add([row, row[:-1]])
    with pytest.raises(FatalSinkError, match="does not have its 12 columns"):
        sink.flush()
    assert refused == [] and ch.query(f"SELECT count() FROM {db}.event_rollups").result_rows == [(0,)]
