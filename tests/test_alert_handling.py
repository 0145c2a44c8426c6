"""How fast the SOC handled its alerts (probe_v3 H2): the examiner asks how many alerts were
acknowledged and resolved, and how fast. `alerts` keeps an alert's newest row only, and its
`inserted_at` is that row's: once ClickHouse merged the revisions, when the alert was first raised
was gone. The sink carries `raised_at` into every revision; `lifemon report`, `lifemon alerts
--review` and the overview dashboard time the reviews from it. Real engine, real sink, chDB."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from conftest import access, entitlement, fed, refs
from test_alert_query import alert

from detectors import load_detectors
from schemas.models import Alert, AlertStatus
from streams.clickhouse import apply_ddl
from streams.engine import Engine
from streams.pseudonym import Pseudonymizer
from streams.sinks.clickhouse import AlertSink

RAISED = datetime(2026, 1, 1, 0, 30, tzinfo=UTC)  # the wall clock when the monitor first stored it
TO_ACK, TO_RESOLVE = timedelta(minutes=7), timedelta(hours=2, minutes=5)


@pytest.fixture
def db(ch: Any) -> Iterator[str]:
    name = f"handling_{uuid.uuid4().hex[:8]}"
    apply_ddl(ch, name)
    yield name
    ch.command(f"DROP DATABASE IF EXISTS {name}")


class Clock:
    """The sink's wall clock, moved by the test (nothing sleeps)."""

    def __init__(self, at: datetime):
        self.at = at

    def __call__(self) -> float:
        return self.at.timestamp()


def two_revisions(policy: Any, catalog: Any) -> tuple[list[Alert], list[Alert]]:
    """e1's bulk read of 120 customers' balances, in two batches: the alert the first raised, and
    its second revision the second batch made."""
    engine = Engine(load_detectors(policy), catalog, Pseudonymizer(b"r" * 32))
    engine.apply_reference("entitlements", refs("entitlements", [entitlement("e1")]))
    events = access("e1", customers=120, every_s=20)
    first = engine.process("access", "pfi.access", 0, fed("access", events[:60], "pfi.access"))
    second = engine.process("access", "pfi.access", 0, fed("access", events[60:], "pfi.access"))
    return first, second


def stored(ch: Any, db: str) -> list[tuple[Any, ...]]:
    return ch.query(f"SELECT alert_id, revision, raised_at, inserted_at FROM {db}.alerts").result_rows


def raised_revised_merged(ch: Any, db: str, policy: Any, catalog: Any) -> str:
    """e1's alert stored by the real sink at RAISED, its second revision five minutes later, the
    table merged (one row left); its id."""
    first, second = two_revisions(policy, catalog)
    assert [(a.revision, a.status) for a in first + second] == [
        (1, AlertStatus.open),
        (2, AlertStatus.updated),
    ]
    clock = Clock(RAISED)
    sink = AlertSink(ch, f"{db}.alerts", "alerts→clickhouse", clock=clock)
    sink.add(first)
    assert sink.flush() == 1
    clock.at += timedelta(minutes=5)
    sink.add(second)
    assert sink.flush() == 1
    ch.command(f"OPTIMIZE TABLE {db}.alerts FINAL")
    return first[0].alert_id


def test_an_alert_keeps_when_it_was_first_raised_through_a_merge(ch, db, policy, catalog) -> None:
    alert_id = raised_revised_merged(ch, db, policy, catalog)
    ((stored_id, revision, raised_at, inserted_at),) = stored(ch, db)
    # one row left, the second revision's: stored later, raised when the first was
    assert (stored_id, revision) == (alert_id, 2) and raised_at.replace(tzinfo=UTC) == RAISED
    assert inserted_at.replace(tzinfo=UTC) != RAISED  # the server's clock, at the second revision


def test_a_batch_sent_again_and_a_replay_keep_the_first_time(ch, db, monkeypatch) -> None:
    """A flush retried after an outage, or a replay into the database that holds the day, sends
    revision 1 again: it must not move the alert's raise to the later write. Asked in slices of
    ids (here one), a big batch's alerts each keep theirs."""
    monkeypatch.setattr("streams.sinks.clickhouse.RAISED_LOOKUP", 1)
    clock = Clock(RAISED)
    sink = AlertSink(ch, f"{db}.alerts", "alerts", clock=clock)
    a1 = alert("a1", "bulk_query", "high", "e1", 1)
    sink.write([a1, alert("a1", "bulk_query", "high", "e1", 2, revision=2, status=AlertStatus.updated)])
    clock.at += timedelta(hours=3)
    a2 = alert("a2", "bulk_query", "high", "e2", 3)
    sink.write([a2, a1])  # the replay's, with an alert new to the table first
    AlertSink(ch, f"{db}.alerts", "alerts", clock=clock).write([a1])  # a new process's sink
    raised = {(r[0], r[2].replace(tzinfo=UTC)) for r in stored(ch, db)}
    assert raised == {("a1", RAISED), ("a2", RAISED + timedelta(hours=3))}
