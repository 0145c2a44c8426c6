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
from streams.sinks.clickhouse import ALERT_COLUMNS, ClickHouseTableSink, alert_row


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
    assert columns(ch, db, "alerts") == [*ALERT_COLUMNS, "inserted_at"]  # in its place, after the evidence
    apply_ddl(ch, db)  # and again: nothing left to add

    alert = build_alert(finding(event_count=61), policy.detectors["bulk_query"])
    sink = ClickHouseTableSink(ch, f"{db}.alerts", ALERT_COLUMNS, alert_row, "alerts")
    sink.add([alert])
    assert sink.flush() == 1
    assert ch.query(f"SELECT event_count FROM {db}.alerts").result_rows == [(61,)]
