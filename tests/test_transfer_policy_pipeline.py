"""Transfer policy end to end through a real Tansu broker and chDB: consents on their compacted
topic, transfers keyed by recipient, alerts on the alerts topic (OCSF, leakage label) and in
ClickHouse, one row per rule broken, none for the clean share."""

from __future__ import annotations

import pytest
from conftest import T0
from test_pipeline import latest_alerts, make_config, monitor, read_all, send
from test_transfer_policy import consent, fund, transfer

pytestmark = pytest.mark.integration
HOUR = 3_600_000


def test_transfers_through_tansu_and_chdb(broker, ch, names, policy, catalog) -> None:
    config = make_config(names, broker, "chdb://unused")
    m = monitor(config, ch, policy, catalog)
    t = config.topics
    send(broker, t.consents, [consent("C0000001"), consent("C0000002", ts=T0 + HOUR)], key=b"C0000001")
    insurer = [
        transfer(n=1, subject_ids=["C0000001"]),  # consented before: clean
        transfer(n=2, ts=T0 + 60_000, subject_ids=["C0000001", "C0000002"]),  # C0000002 only later
        transfer(n=3, ts=T0 + 120_000, categories=["customer_name", "card_cvn"]),
        # clean; event time moves on past the others' allowed lateness, so they are judged
        transfer(n=6, ts=T0 + 2 * HOUR, subject_ids=["C0000001"]),
    ]
    send(broker, t.transfer, insurer, key=b"tp_insurance_partner")
    send(broker, t.transfer, [fund(T0, 4000, 4), fund(T0 + HOUR, 1001, 5)], key=b"tp_fund_distributor")
    stats = m.run(idle_exit_s=1.5, max_seconds=60)
    assert stats.events["transfer"] == 6 and stats.misrouted["transfer"] == 0

    alerts = latest_alerts(read_all(broker, t.alerts, expect_at_least=3))
    by_rule = {a["finding_info"]["analytic"]["uid"]: a for a in alerts.values()}
    assert sorted(by_rule) == ["LM-TP-001", "LM-TP-002", "LM-TP-007"]
    c3 = by_rule["LM-TP-001"]
    assert c3["severity"] == "Critical" and "leakage_candidate" in c3["metadata"]["labels"]
    assert c3["finding_info"]["title"].endswith("C3 or authentication-helper data sent to a third party")
    shared = by_rule["LM-TP-002"]
    assert shared["unmapped"]["counts"]["subjects_without_consent"] == 1
    assert all(s.startswith("p_") for s in shared["unmapped"]["subjects_sample"])
    assert by_rule["LM-TP-007"]["unmapped"]["counts"]["records"] == 5001

    db = names["database"]
    rows = ch.query(f"SELECT rule_id, severity, actor_id FROM {db}.alerts FINAL ORDER BY rule_id").result_rows
    assert rows == [
        ("LM-TP-001", "critical", "tp_insurance_partner"),
        ("LM-TP-002", "high", "tp_insurance_partner"),
        ("LM-TP-007", "medium", "tp_fund_distributor"),
    ]
    regulation = ch.query(f"SELECT regulation FROM {db}.alerts FINAL WHERE rule_id = 'LM-TP-001'").result_rows
    assert any("合规分析》 §六.2(4)" in r for r in regulation[0][0])
    # stored in the order the policy gives: the law first (JR/T 0171, PIPL art. 28), the commentary after
    assert [r.split(" ")[0].split(":")[0] for r in regulation[0][0][:2]] == [
        "JR/T",
        "《个人信息保护法》第二十八条",
    ]
