"""`lifemon alerts`: the SOC's filtered list, read from ClickHouse (chDB) as the monitor wrote it."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime

import pytest
from conftest import T0

from schemas.models import Alert, AlertStatus, Severity
from streams.alert_query import query_alerts, render, render_alert
from streams.cli import main
from streams.clickhouse import apply_ddl
from streams.sinks.clickhouse import ALERT_COLUMNS, ClickHouseTableSink, alert_row


def alert(uid: str, detector: str, severity: str, actor: str, minute: int, revision: int = 1, **kw) -> Alert:
    ts = T0 + minute * 60_000
    return Alert(
        alert_id=uid,
        revision=revision,
        status=kw.pop("status", AlertStatus.open),
        detector=detector,
        rule_id="R",
        rule_version=1,
        severity=Severity(severity),
        title_zh="标题",
        title_en="title",
        summary=f"{actor} did something",
        regulation=["seed"],
        jr_class="C2",
        actor_id=actor,
        actor_org="S0101",
        subject_count=3,
        subjects_sample=["p_1"],
        counts={},
        evidence_event_ids=["e"],
        window_start=ts,
        window_end=ts,
        first_seen=ts,
        last_seen=ts,
        **kw,
    )


@pytest.fixture
def db(ch):
    name = f"aq_{uuid.uuid4().hex[:8]}"
    apply_ddl(ch, name)
    sink = ClickHouseTableSink(ch, f"{name}.alerts", ALERT_COLUMNS, alert_row, "alerts")
    sink.write(
        [
            alert("a1", "bulk_query", "high", "e1", 1),
            alert("a2", "unauthorized_lookup", "medium", "e2", 2),
            alert("a3", "bulk_query", "critical", "e3", 3),
            alert("a4", "transfer_policy", "low", "acme", 4),
        ]
    )
    sink.write(
        [
            alert("a1", "bulk_query", "high", "e1", 5, revision=2, status=AlertStatus.closed),
            alert("a3", "bulk_query", "critical", "e3", 3, revision=2, status=AlertStatus.updated),
        ]
    )
    return name


def test_filters_combine_and_the_newest_revision_counts(ch, db) -> None:
    ids = lambda **kw: [r["alert_id"] for r in query_alerts(ch, db, **kw).rows]  # noqa: E731
    assert ids() == ["a1", "a4", "a3", "a2"]  # newest first, a1 by its closing revision
    assert ids(detector="bulk_query") == ["a1", "a3"]
    assert ids(min_severity=Severity.high) == ["a1", "a3"]
    assert ids(actor="e2") == ["a2"] and ids(status="closed") == ["a1"]
    # an episode that grew is updated, and still as live as an open one: Grafana's status != 'closed'
    assert ids(status="open") == ["a4", "a2"] and ids(status="updated") == ["a3"]
    assert ids(status="active") == ["a4", "a3", "a2"]
    minute = lambda m: datetime.fromtimestamp((T0 + m * 60_000) / 1000, UTC)  # noqa: E731
    assert ids(since=minute(2), until=minute(4)) == ["a3", "a2"]
    assert ids(actor="e1' OR '1'='1") == []  # a bound parameter, not SQL
    assert ids(limit=1) == ["a1"]
    assert query_alerts(ch, db, limit=3).total == 4 and query_alerts(ch, db, limit=4).total == 4
    assert query_alerts(ch, db, status="active", limit=2).total == 3


def test_the_cli_prints_one_line_and_the_summary_per_alert(ch, db, capsys, monkeypatch, tmp_path) -> None:
    monkeypatch.setattr("streams.clickhouse.connect", lambda dsn: ch)
    config = tmp_path / "lifemon.yaml"
    config.write_text(f"clickhouse: {{database: {db}, dsn: 'chdb://{os.environ['LIFEMON_TEST_CHDB']}'}}\n")
    assert (
        main(["alerts", "--config", str(config), "--detector", "bulk_query", "--severity", "critical"]) == 0
    )
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and "critical" in out[0] and "e3" in out[0] and out[1].strip() == "e3 did something"
    # --since / --until take dates and ages; the alerts are from 2026-01-01, minutes 1 to 5
    assert main(["alerts", "--config", str(config), "--since", "2026-01-01", "--until", "2026-01-02"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 8
    # a list cut by --limit says so, and how many there are
    assert main(["alerts", "--config", str(config), "--limit", "3"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 7 and out[-1] == "3 of 4 alerts shown; --limit 4 shows them all"
    assert main(["alerts", "--config", str(config), "--limit", "4"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 8
    assert main(["alerts", "--config", str(config), "--since", "7d"]) == 0
    assert capsys.readouterr().out.strip() == "no alerts match"
    assert render([]) == "no alerts match"


def test_records_and_customers_are_labelled_and_times_say_utc(ch, policy, catalog) -> None:
    """`lifemon alerts` once printed `subject_count` in an unlabelled column: bulk_query's records
    read as customers, 0 for a volume alert of 5 001 records, times without a zone. `lifemon watch`
    renders the same alert from its OCSF document the same way."""
    from test_report import counted_alerts

    from streams.alerts import to_ocsf
    from streams.watch import alert_row as watched

    name = f"aq_{uuid.uuid4().hex[:8]}"
    apply_ddl(ch, name)
    alerts = counted_alerts(policy, catalog)
    ClickHouseTableSink(ch, f"{name}.alerts", ALERT_COLUMNS, alert_row, "alerts").write(alerts)
    listed = {r["detector"]: render_alert(r).splitlines()[0] for r in query_alerts(ch, name).rows}
    assert "    210 records     70 customers  " in listed["bulk_query"]
    assert "  5,001 records      — customers  " in listed["transfer_policy"]
    assert all(line.startswith("2026-01-01 ") and line[16:20] == " UTC" for line in listed.values())
    live = {a.detector: render_alert(watched(to_ocsf(a))).splitlines()[0] for a in alerts}
    assert live == listed


def test_columns_stay_aligned_when_a_recipients_id_is_longer_than_an_employees() -> None:
    rows = [
        {"last_seen": datetime(2026, 1, 1, tzinfo=UTC), "severity": "high", "status": "open", "alert_id": "a" * 32,
         "detector": "transfer_policy", "actor_id": actor, "subject_count": 3, "counts": {"records": 3},
         "title_zh": "标题", "title_en": "title", "summary": "s"}
        for actor in ("e1", "proc_card_personalization")
    ]  # fmt: skip
    first, second = (line for line in render(rows).splitlines() if "UTC" in line)
    assert first.index("3 records") == second.index("3 records")
