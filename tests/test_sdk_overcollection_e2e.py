"""SDK over-collection end to end: observations through a real Tansu broker, alerts on the alerts
topic and in chDB with their PoliCheck label counts, the SDK x field x label matrix in the rollups,
and a second run of the same input adding nothing."""

from __future__ import annotations

import pytest
from test_pipeline import latest_alerts, make_config, monitor, read_all, send
from test_sdk_overcollection import obs

pytestmark = pytest.mark.integration


def test_sdk_alerts_and_label_matrix_reach_kafka_and_clickhouse(broker, ch, names, policy, catalog) -> None:
    config = make_config(names, broker, "chdb://unused")
    quiet = [
        obs("amap_location", ("imei", "oaid", "location"), host="apilocate.amap.com", at=i * 600_000)
        for i in range(5)  # 10 minutes apart, in one hour
    ]
    loud = [
        obs("amap_location", ("location", "contacts"), host="apilocate.amap.com", at=10_000),
        obs("push", ("push_token", "sms_code"), at=11_000),
        obs("com.umeng.analytics", ("oaid",), at=12_000),
    ]
    m = monitor(config, ch, policy, catalog)
    for sdk in ("amap_location", "push", "com.umeng.analytics"):  # keyed by sdk_id, as the topic is
        send(broker, config.topics.sdk, [e for e in quiet + loud if e.sdk_id == sdk], key=sdk.encode())
    m.run(idle_exit_s=1.5, max_seconds=60)

    alerts = latest_alerts(read_all(broker, config.topics.alerts, expect_at_least=3))
    rules = sorted(o["finding_info"]["analytic"]["uid"] for o in alerts.values())
    assert rules == ["LM-SDK-001.c3_or_auth_helper", "LM-SDK-001.omitted_field", "LM-SDK-001.undeclared_sdk"]
    assert all(o["unmapped"]["counts"]["observations"] == 1 for o in alerts.values())
    by_rule = {o["finding_info"]["analytic"]["uid"].rsplit(".", 1)[1]: o for o in alerts.values()}
    c3 = by_rule["c3_or_auth_helper"]
    assert c3["severity"] == "Critical" and c3["finding_info"]["title"].startswith(
        "C3类别信息或用户鉴别辅助信息"
    )
    assert c3["unmapped"]["counts"]["label_incorrect"] == 1
    assert c3["unmapped"]["regulation"][0].startswith("《个人信息保护法》第二十八条")
    assert any("本行《个人金融信息保护管理规定》 流程描述(4)⑪" in r for r in c3["unmapped"]["regulation"])

    db = names["database"]
    rows = ch.query(
        f"SELECT rule_id, counts['label_omitted'], counts['label_clear'] FROM {db}.alerts FINAL ORDER BY rule_id"
    ).result_rows
    assert rows == [
        ("LM-SDK-001.c3_or_auth_helper", 0, 1),
        ("LM-SDK-001.omitted_field", 1, 1),
        ("LM-SDK-001.undeclared_sdk", 1, 0),
    ]
    matrix = ch.query(
        f"SELECT splitByChar(':', org)[1] AS sdk, splitByChar(':', org)[2] AS field, outcome AS label, sum(events) "
        f"FROM {db}.event_rollups FINAL WHERE stream = 'sdk_label' GROUP BY sdk, field, label ORDER BY sdk, field"
    ).result_rows
    assert ("amap_location", "imei", "vague", 5) in matrix and (
        "amap_location",
        "contacts",
        "omitted",
        1,
    ) in matrix
    # the matrix counts by the hour: one row per cell for the five observations; the SDK stream's
    # own counts stay per minute
    hours = ch.query(
        f"SELECT DISTINCT minute FROM {db}.event_rollups FINAL WHERE stream = 'sdk_label' AND org LIKE 'amap%'"
    ).result_rows
    minutes = ch.query(
        f"SELECT DISTINCT minute FROM {db}.event_rollups FINAL WHERE stream = 'sdk' AND org = 'amap_location'"
    ).result_rows
    assert len(hours) == 1 and hours[0][0].timestamp() % 3600 == 0 and len(minutes) == 5
    assert ("push", "sms_code", "incorrect", 1) in matrix and (
        "undeclared_sdk",
        "oaid",
        "omitted",
        1,
    ) in matrix

    again = config.model_copy(
        update={"kafka": config.kafka.model_copy(update={"group_id": names["group"] + "-2"})}
    )
    monitor(again, ch, policy, catalog).run(idle_exit_s=1.5, max_seconds=60)
    assert ch.query(f"SELECT count() FROM {db}.alerts FINAL").result_rows == [(3,)]
    (total,) = ch.query(
        f"SELECT sum(events) FROM {db}.event_rollups FINAL WHERE stream = 'sdk_label'"
    ).result_rows[0]
    assert total == 5 * 3 + 2 + 2 + 1
