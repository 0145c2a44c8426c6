"""An alert names the leakage incident it opened or joined: `lifemon alerts show` and the list,
from ClickHouse's incidents table (a new user's `alerts show` said only `leakage_candidate 1`, and
its runbook "open a leakage assessment", of an incident lifemon had opened, its report due in 72 h)."""

from __future__ import annotations

import os
import uuid
from typing import Any

from conftest import fed
from test_incidents import cvn, incident_engine, transfer

from streams.cli import main
from streams.clickhouse import apply_ddl
from streams.engine import Engine
from streams.sinks.clickhouse import (
    ALERT_COLUMNS,
    INCIDENT_COLUMNS,
    ClickHouseTableSink,
    alert_row,
    incident_row,
)

HOUR = 3_600_000


def stored(ch: Any, e: Engine, events: list[Any]) -> tuple[str, dict[str, Any], list[Any]]:
    """The transfers through the engine, their alerts (the newest revision of each) and incidents
    written as the runtime's checkpoint writes them: (database, alerts by rule id, incidents)."""
    alerts = e.process("transfer", "pfi.transfer", 0, fed("transfer", events, "pfi.transfer"))
    alerts += e.drain()
    newest = {a.alert_id: a for a in sorted(alerts, key=lambda a: a.revision)}
    incidents = e.take_incidents()
    db = f"ai_{uuid.uuid4().hex[:8]}"
    apply_ddl(ch, db)
    ClickHouseTableSink(ch, f"{db}.alerts", ALERT_COLUMNS, alert_row, "alerts").write(list(newest.values()))
    ClickHouseTableSink(ch, f"{db}.incidents", INCIDENT_COLUMNS, incident_row, "incidents").write(incidents)
    return db, {a.rule_id: a for a in newest.values()}, incidents


def test_an_alert_names_its_incident_its_review_and_next_report_and_the_list_marks_it(
    ch, policy, catalog, capsys, monkeypatch, tmp_path
) -> None:
    """A CVN sent to the insurer opens an incident; a share over a public network in clear to a
    processor entitled to the data stays an alert (docs/incidents.md): the one names its incident,
    the other none."""
    leak = cvn(1, subjects=range(3))
    clear = transfer(
        2,
        subjects=range(5, 8),
        recipient_id="proc_cloud_analytics",
        recipient_type="processor",
        contract_id="CT-proc_cloud_analytics",
        legal_basis="contract",
        purpose="analytics",
        categories=["transaction_record"],
        encrypted=False,
        public_network=True,
        ts=leak.ts + HOUR,
    )
    db, alerts, incidents = stored(ch, incident_engine(policy, catalog), [leak, clear])
    (incident,) = incidents
    leaked = alerts["LM-TP-001"]
    assert [a.alert_id for a in incident.alerts] == [leaked.alert_id]
    unencrypted = next(a for rule, a in alerts.items() if rule != "LM-TP-001")
    monkeypatch.setattr("streams.clickhouse.connect", lambda dsn: ch)
    config = tmp_path / "lifemon.yaml"
    config.write_text(f"clickhouse: {{database: {db}, dsn: 'chdb://{os.environ['LIFEMON_TEST_CHDB']}'}}\n")

    assert main(["alerts", "show", leaked.alert_id[:12], "--config", str(config)]) == 0
    shown = capsys.readouterr().out
    inc = incident.incident_id[:12]
    line = next(line.split() for line in shown.splitlines() if line.startswith("  incident "))
    assert line == ["incident", "泄露事件", inc, f"({incident.status.value},", "unreviewed):",
                    "`lifemon", "incidents", "show", f"{inc}`"], shown  # fmt: skip
    assert "next report due 2026-01-02 00:00 UTC (passed / 已过) to the regulator (PBOC branch)" in shown
    assert shown.index("泄露事件") < shown.index("处置步骤")  # before the runbook that says to open one
    assert "lifemon opened the leakage assessment: the incident above" in shown
    # the team's review is the incident's state the alert shows: reported, no report left to the regulator
    review = ["--config", str(config), "--by", "r1"]
    assert main(["incidents", "resolve", inc, "--as", "resolved", "--note", "handled", *review]) == 0
    capsys.readouterr()
    assert main(["alerts", "show", leaked.alert_id[:12], "--config", str(config)]) == 0
    shown = capsys.readouterr().out
    assert f"{inc} ({incident.status.value}, resolved)" in shown and "no report due / 无待报" in shown

    assert main(["alerts", "show", unencrypted.alert_id[:12], "--config", str(config)]) == 0
    shown = capsys.readouterr().out
    assert "泄露事件" not in shown and "lifemon opened the leakage assessment" not in shown

    assert main(["alerts", "--config", str(config)]) == 0
    heads = [line for line in capsys.readouterr().out.splitlines() if line.startswith("20")]
    marked = {line.rsplit("[", 1)[1][:12]: f"  incident / 事件 {inc}  [" in line for line in heads}
    assert marked == {a.alert_id[:12]: a is leaked for a in alerts.values()}, heads
