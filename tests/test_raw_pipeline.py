"""Raw-log topics end to end through a real Tansu broker and chDB: the lines the real servers
wrote, shipped as plain lines and in Filebeat / Vector envelopes, become the one bulk-query alert
they should, a garbled audit line reaches the DLQ with its reason, noise is counted."""

from __future__ import annotations

import re

import orjson
import pytest
from conftest import entitlement
from test_pipeline import latest_alerts, make_config, monitor, read_all, send
from test_raw_sources import FIXTURES, entries, physical_lines, raw_topics

from streams.alerts import actor_of

pytestmark = pytest.mark.integration
STAMP = 1_796_143_436_000  # the capture's time: Kafka CreateTime as a shipper stamps it


def produce_lines(bootstrap: str, topic: str, values: list[bytes]) -> None:
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": bootstrap})
    for v in values:
        p.produce(topic, value=v, key=b"db1", timestamp=STAMP)
    assert p.flush(10) == 0


def test_raw_topics_to_alerts_dlq_and_clickhouse(broker, ch, names, policy, catalog) -> None:
    raw = raw_topics(names["tag"])
    config = make_config(names, broker, "chdb://unused", raw_sources=raw)
    m = monitor(config, ch, policy, catalog)
    send(
        broker,
        config.topics.entitlements,
        [entitlement("E1001", "lobby_manager"), entitlement("E1002", "br_dept_head", org="B01"),
         entitlement("E1003", "lobby_manager")],
    )  # fmt: skip
    garbled = entries("pgaudit.log")[5][:120]  # an AUDIT line cut short
    produce_lines(broker, raw["pgaudit"]["topic"], [*entries("pgaudit.log"), garbled])
    filebeat = [
        orjson.dumps({"message": x.decode(), "host": {"name": "cards1"}})
        for x in physical_lines("mariadb_audit.log")
    ]
    produce_lines(broker, raw["mariadb"]["topic"], filebeat)
    vector = [orjson.dumps({"message": x.decode(), "host": "gw1"}) for x in physical_lines("sftp.log")]
    produce_lines(broker, raw["sftp"]["topic"], vector)
    stats = m.run(idle_exit_s=1.5, max_seconds=60)

    assert stats.events["access"] == 12 and stats.events["transfer"] == 3
    assert (
        stats.skipped["mariadb: CONNECT"] == 6 and stats.skipped["pgaudit: server message (not AUDIT)"] == 5
    )
    assert stats.gaps["table corebank.core.branch_targets"] == 1
    published = read_all(broker, config.topics.alerts)
    # a file's name may be built from a customer's id: alerts show a keyed fingerprint of it
    files = {
        m.group(1)
        for line in physical_lines("sftp.log")
        if (m := re.search(rb'close "[^"]*/([^/"]+)"', line))
    }
    assert files and not any(name in m.value() for m in published for name in files)
    assert any(b"/upload/fp_" in m.value() for m in published)
    alerts = latest_alerts(published)
    found = sorted(
        (a["finding_info"]["analytic"]["uid"], actor_of(a), a["severity"]) for a in alerts.values()
    )
    # the SFTP uploads (issue 15): a third party with neither consent nor contract, an overseas
    # partner with no assessment; the collector's file, the name and phone number its contract lets
    # it have in clear, is silent (probe U3-6); and the batch account that sent
    # them passed the law's record count with what it sent (bulk_query reads transfers by sender)
    assert found == [
        ("LM-BQ-001", "E1002", "Critical"),
        ("LM-BQ-001", "svc-batch-export", "High"),
        ("LM-TP-002", "sunrise-insurance", "High"),
        ("LM-TP-005", "hk-fx-partner", "Critical"),
        ("LM-TP-006", "sunrise-insurance", "High"),
    ]
    dead = read_all(broker, config.topics.dlq)
    assert [dict(d.headers())["error.kind"] for d in dead] == [b"unparsed"]
    assert dict(dead[0].headers())["source.topic"] == raw["pgaudit"]["topic"].encode()
    assert (
        dead[0].value() == garbled
    )  # a log line's dead letter is its bytes (a HAR's is not: test_har_capture_e2e)
    db = names["database"]
    rows = ch.query(
        f"SELECT rule_id, actor_id, severity FROM {db}.alerts FINAL ORDER BY rule_id, actor_id"
    ).result_rows
    assert rows == [(r, actor, sev.lower()) for r, actor, sev in found]


def test_files_shipped_by_lifemon_ship_to_alerts_with_small_batches(
    broker, ch, names, policy, catalog, tmp_path
) -> None:
    """The servers' files as `lifemon ship` puts them on the topics (one record per log entry), read
    in consumer batches of 4 records, so statements straddle batches (the analyst's join among them):
    the same alerts as above, each counted once; the coverage gaps in ClickHouse."""
    from test_ship import ship

    raw = raw_topics(names["tag"])
    config = make_config(names, broker, "chdb://unused", raw_sources=raw)
    config.kafka.batch_size = 4
    m = monitor(config, ch, policy, catalog)
    send(
        broker,
        config.topics.entitlements,
        [entitlement("E1001", "lobby_manager"), entitlement("E1002", "br_dept_head", org="B01"),
         entitlement("E1003", "lobby_manager")],
    )  # fmt: skip
    shippers = [
        ship(broker, [FIXTURES / name], raw[fmt]["topic"], tmp_path / f"{fmt}.json", ship_format)
        for fmt, name, ship_format in (
            ("pgaudit", "pgaudit.log", "pgaudit"),
            ("mariadb", "mariadb_audit.log", "mariadb"),
            ("sftp", "sftp.log", "sftp"),
        )
    ]
    assert [p.wait(60) for p in shippers] == [0, 0, 0]
    stats = m.run(idle_exit_s=1.5, max_seconds=60)

    assert stats.events["access"] == 12 and stats.events["transfer"] == 3 and stats.dead["access"] == 0
    alerts = latest_alerts(read_all(broker, config.topics.alerts))
    found = sorted(
        (a["finding_info"]["analytic"]["uid"], actor_of(a), a["severity"]) for a in alerts.values()
    )
    assert found == [
        ("LM-BQ-001", "E1002", "Critical"),
        ("LM-BQ-001", "svc-batch-export", "High"),
        ("LM-TP-002", "sunrise-insurance", "High"),
        ("LM-TP-005", "hk-fx-partner", "Critical"),
        ("LM-TP-006", "sunrise-insurance", "High"),
    ]
    db = names["database"]
    (counts,) = ch.query(f"SELECT counts FROM {db}.alerts FINAL WHERE actor_id = 'E1002'").result_rows[
        0
    ]  # the 600-row join once, not once per batch it straddled
    assert counts["category_property"] == 600
    gaps = ch.query(
        f"SELECT kind, object, sum(seen) FROM {db}.coverage_gaps WHERE kind != 'field' GROUP BY 1, 2 ORDER BY 1"
    ).result_rows
    assert gaps == [
        ("cursor_rows_unknown", "corebank.core.accounts", 1),
        ("rows_unknown", "cards.cardholders", 1),
        ("table", "corebank.core.branch_targets", 1),
    ]
