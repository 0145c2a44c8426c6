"""How fast the SOC handled its alerts (probe_v3 H2): the examiner asks how many alerts were
acknowledged and resolved, and how fast. `alerts` keeps an alert's newest row only, and its
`inserted_at` is that row's: once ClickHouse merged the revisions, when the alert was first raised
was gone. The sink carries `raised_at` into every revision; `lifemon report`, `lifemon alerts
--review` and the overview dashboard time the reviews from it. Real engine, real sink, chDB."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from conftest import access, entitlement, fed, refs
from test_alert_query import alert

from detectors import load_detectors
from schemas.models import Alert, AlertStatus
from streams.alert_query import Handling, handling, took
from streams.cli import main
from streams.clickhouse import apply_ddl, ddl_statements
from streams.engine import Engine
from streams.pseudonym import Pseudonymizer
from streams.report import Period, gather, render
from streams.reviews import record_review
from streams.sinks.clickhouse import ALERT_COLUMNS, AlertSink, alert_row

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


def test_the_report_and_the_review_list_time_the_reviews_from_the_first_raise(
    ch, db, policy, catalog, capsys, monkeypatch, tmp_path
) -> None:
    alert_id = raised_revised_merged(ch, db, policy, catalog)
    record_review(ch, db, alert_id, "acknowledged", "e900001", at=RAISED + TO_ACK)
    record_review(ch, db, alert_id, "resolved", "e900002", "suspended", at=RAISED + TO_RESOLVE)
    (high, every) = handling(ch, db)
    assert high == every._replace(severity="high")
    assert every == Handling("", 1, 0, 1, 0, 0, 1, 420.0, 420.0, 1, 7500.0, 7500.0)

    # the report's section, for the bank's day of the alert
    day = Period(
        datetime(2025, 12, 31, 16, tzinfo=UTC), datetime(2026, 1, 1, 16, tzinfo=UTC), "Asia/Shanghai"
    )
    html = render(gather(ch, db, day))
    section = html.split("<h2>Alert handling / 告警处置时效</h2>", 1)[1].split("<h2>", 1)[0]
    cells = [re.sub(r"<.*?>", "", c) for c in re.findall(r"<td.*?</td>", section)]
    assert cells[:12] == ["high", "1", "0", "1", "0", "0", "7 min 00 s", "7 min 00 s", "1"] + [
        "2 h 05 min",
        "2 h 05 min",
        "1",
    ]
    assert cells[12] == "all / 合计"
    assert (
        "lifemon alerts --review STATE --since 2026-01-01T00:00+08:00 --until 2026-01-02T00:00+08:00"
        in section
    )

    # the analyst's list says the same under what it lists
    monkeypatch.setattr("streams.clickhouse.connect", lambda dsn: ch)
    config = tmp_path / "lifemon.yaml"
    config.write_text(f"clickhouse: {{database: {db}, dsn: 'chdb://{os.environ['LIFEMON_TEST_CHDB']}'}}\n")
    assert main(["alerts", "--review", "resolved", "--config", str(config)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-2:] == [
        "handling / 处置 (1 alert, timed from when lifemon first stored each): acknowledged / 已确认 0, "
        "resolved / 已处置 1, false positive / 误报 0, unreviewed / 未复核 0",
        "time to acknowledge / 确认用时 median / 中位数 7 min 00 s, p90 7 min 00 s (1 alert timed); "
        "time to resolve / 处置用时 median / 中位数 2 h 05 min, p90 2 h 05 min (1 alert timed)",
    ]
    # a list without --review is the list alone, as before
    assert main(["alerts", "--config", str(config)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "1 alert"


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


def test_rows_stored_before_raised_at_are_counted_and_timed_only_where_the_first_revision_says(
    ch, policy
) -> None:
    """A table from before the column: an alert whose only row is its first revision was raised
    when that row was stored (exact); one stored at a later revision has lost it, and is counted
    but not timed, before `lifemon run` adds the column (a read command) and after, its next
    revisions carrying the same."""
    name = f"handling_{uuid.uuid4().hex[:8]}"
    (create,) = [s for s in ddl_statements(name) if s.startswith(f"CREATE TABLE IF NOT EXISTS {name}.alerts")]
    ch.command(f"CREATE DATABASE {name}")
    try:
        ch.command(
            "\n".join(line for line in create.splitlines() if "raised_at" not in line).replace(
                "inserted_at),\n)", "inserted_at)\n)"
            )
        )
        old = [
            alert("fresh", "bulk_query", "high", "e1", 1),
            alert("revised", "bulk_query", "medium", "e2", 2, revision=3),
        ]
        ch.insert("alerts", [alert_row(a) for a in old], database=name, column_names=list(ALERT_COLUMNS))
        ((fresh_stored,),) = ch.query(
            f"SELECT inserted_at FROM {name}.alerts WHERE alert_id = 'fresh'"
        ).result_rows
        fresh_stored = fresh_stored.replace(tzinfo=UTC)
        for alert_id in ("fresh", "revised"):
            record_review(ch, name, alert_id, "resolved", "e900001", at=fresh_stored + TO_RESOLVE)

        def timed() -> list[tuple[str, int, int, float | None]]:
            return [(h.severity, h.alerts, h.resolve_timed, h.resolve_median_s) for h in handling(ch, name)]

        expected = [("high", 1, 1, 7500.0), ("medium", 1, 0, None), ("", 2, 1, 7500.0)]
        assert timed() == expected  # read before the column, as its DEFAULT will read
        apply_ddl(ch, name)  # `lifemon run`'s start adds it
        assert timed() == expected
        clock = Clock(fresh_stored + timedelta(days=1))
        AlertSink(ch, f"{name}.alerts", "alerts", clock=clock).write(
            [
                alert("fresh", "bulk_query", "high", "e1", 5, revision=2, status=AlertStatus.updated),
                alert("revised", "bulk_query", "medium", "e2", 6, revision=4, status=AlertStatus.updated),
            ]
        )
        ch.command(f"OPTIMIZE TABLE {name}.alerts FINAL")
        raised = {r[0]: r[2] for r in stored(ch, name)}
        assert raised["fresh"].replace(tzinfo=UTC) == fresh_stored and raised["revised"] is None
        # both grew after their resolution: unreviewed again, the first resolve still timed
        assert [(h.severity, h.resolved, h.unreviewed, h.resolve_timed) for h in handling(ch, name)] == [
            ("high", 0, 1, 1),
            ("medium", 0, 1, 0),
            ("", 0, 2, 1),
        ]
    finally:
        ch.command(f"DROP DATABASE IF EXISTS {name}")


def test_times_are_said_as_a_reader_says_them() -> None:
    assert [took(s) for s in (None, 0.4, 59, 420, 7500, 90_000, 3 * 86_400 + 4 * 3600 + 59)] == [
        "—",
        "0 s",
        "59 s",
        "7 min 00 s",
        "2 h 05 min",
        "1 d 1 h",
        "3 d 4 h",
    ]
