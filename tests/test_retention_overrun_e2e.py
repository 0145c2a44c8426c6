"""Retention overrun end to end: lifecycle events (keyed by record) and accesses (keyed by actor)
through a real Tansu broker, re-keyed by customer through repartition topics, alerts on the alerts
topic and in chDB. The overdue record's only event is 40 days old: its deadline fires because the
other inputs move the instance clock on, not because its own partition saw anything new."""

from __future__ import annotations

import itertools
import threading
import zlib
from typing import Any

import pytest
from confluent_kafka import Producer
from conftest import T0
from test_pipeline import latest_alerts, make_config, monitor, read_all, send
from test_retention_overrun import LOCATION, collect, lc, read, tick

from schemas.models import AccessEvent
from streams.pseudonym import Pseudonymizer
from streams.runtime import ensure_topics, repartition_topic

pytestmark = pytest.mark.integration


def customers_beside(customer: str, partitions: int) -> list[str]:
    """Customers whose re-keyed records land in another partition than `customer`'s: the
    repartition key is the pseudonym, placed by librdkafka's default partitioner (CRC32 of the key)."""
    pz = Pseudonymizer.from_env(allow_ephemeral=False)
    of = lambda c: zlib.crc32(pz(c).encode()) % partitions  # noqa: E731
    return [c for c in (f"C{i}" for i in range(100, 200)) if of(c) != of(customer)]


def test_retention_alerts_through_repartition_topics(broker, ch, names, policy, catalog) -> None:
    config = make_config(names, broker, "chdb://unused")
    lifecycle = [
        collect("R1", "C1", -40, **LOCATION),  # never deleted: due 10 days ago
        collect("R2", "C2", -3),
        lc("delete", "R2", "C2", -2),  # then read again, below
        collect("R3", "C3", -29, **LOCATION),  # inside its 30 days when the input ends
        lc("deletion_requested", "R4", "C4", -14),
        lc("delete", "R4", "C4", -1),  # executed on day 13
        tick(0),
    ]
    m = monitor(config, ch, policy, catalog)
    for ev in lifecycle:
        send(broker, config.topics.lifecycle, [ev], key=ev.record_id.encode())
    send(broker, config.topics.access, [read("R2", "C2", -1, actor="e7")], key=b"e7")
    m.run(idle_exit_s=1.5, max_seconds=90)

    alerts = latest_alerts(read_all(broker, config.topics.alerts, expect_at_least=2))
    pz = Pseudonymizer.from_env(allow_ephemeral=False)
    got = sorted(
        (o["finding_info"]["analytic"]["uid"], o["unmapped"]["subjects_sample"][0]) for o in alerts.values()
    )
    assert got == [
        ("LM-RO-001.retention_expired", pz("C1")),
        ("LM-RO-001.used_after_deletion", pz("C2")),
    ]
    assert repartition_topic(config, "lifecycle", "subject_id").startswith(names["group"])
    db = names["database"]
    rows = ch.query(f"SELECT rule_id, severity, actor_id FROM {db}.alerts FINAL ORDER BY rule_id").result_rows
    assert rows == [
        ("LM-RO-001.retention_expired", "medium", "mobile_banker"),
        ("LM-RO-001.used_after_deletion", "high", "e7"),
    ]


def test_a_lifecycle_backlog_holds_the_deadline_the_accesses_passed(
    broker, ch, names, policy, catalog
) -> None:
    """One partition, small fetches: the access (a month past the record's deadline) reaches
    the retention task through its repartition topic long before the lifecycle backlog, whose last
    record deletes the location trace the day before its deadline. The task waits for the lifecycle
    input, including the deletion just re-keyed into its repartition topic and not yet read back:
    no alert, as a replay of the same records gives (docs/architecture.md#event-time)."""
    config = make_config(names, broker, "chdb://unused")
    # small fetches: the re-keyed access is read back while most of the backlog is still to come
    small = {"partitions": 1, "batch_size": 20, "client": {"max.partition.fetch.bytes": 4096}}
    config = config.model_copy(update={"kafka": config.kafka.model_copy(update=small)})
    backlog = [collect("R1", "C1", -31, **LOCATION)]
    backlog += [collect(f"R{i}", f"C{i}", -31 + i / 30, purpose="account_service") for i in range(2, 800)]
    backlog.append(lc("delete", "R1", "C1", -2, method="purge", system="mobile_banker"))
    m = monitor(config, ch, policy, catalog)
    send(broker, config.topics.access, [read("R-other", "C1", 0, actor="e7")], key=b"e7")
    send(broker, config.topics.lifecycle, backlog, key=b"backlog")  # one partition: any key
    stats = m.run(idle_exit_s=1.5, max_seconds=90)
    assert stats.events["lifecycle"] == len(backlog) and stats.events["access"] == 1
    assert [a for a in stats.alerts.values() if a.detector == "retention_overrun"] == []


def test_a_quiet_partitions_deadline_fires_while_accesses_keep_coming(
    broker, ch, names, policy, catalog
) -> None:
    """Accesses re-keyed into the other partitions never stop, so at the end of most batches some
    are still being acknowledged. The quiet partition's record is due all the same, within the idle
    lag (5 s), not only once the traffic ends: its tasks know where the re-keyed records went."""
    config = make_config(names, broker, "chdb://unused")
    pz = Pseudonymizer.from_env(allow_ephemeral=False)
    others = customers_beside("C1", config.kafka.partitions)
    m = monitor(config, ch, policy, catalog)
    send(broker, config.topics.lifecycle, [collect("R1", "C1", -40, **LOCATION)], key=b"R1")
    stop = threading.Event()

    def traffic() -> None:
        producer = Producer({"bootstrap.servers": broker, "linger.ms": 0})
        for i in itertools.count():
            if stop.wait(0.05):
                break
            ev = AccessEvent(
                event_id=f"a{i}", ts=T0 + i * 1000, actor_id="e7", system="crm", action="view",
                subject_ids=[others[i % len(others)]], fields=["mobile_phone"],
            )  # fmt: skip
            producer.produce(config.topics.access, ev.model_dump_json().encode(), b"e7", timestamp=ev.ts)
            producer.poll(0)
        producer.flush(5)

    sender = threading.Thread(target=traffic)
    sender.start()
    try:
        # no idle end: only the live rule can fire it (12 s were too few under a load of 30)
        stats = m.run(max_seconds=20)
    finally:
        stop.set()
        sender.join()
    assert stats.events["access"] > 50
    fired = [a for a in stats.alerts.values() if a.detector == "retention_overrun"]
    assert [(a.rule_id, a.subjects_sample) for a in fired] == [("LM-RO-001.retention_expired", [pz("C1")])]


def test_a_transactional_source_is_read_to_its_end(broker, ch, names, policy, catalog) -> None:
    """Kafka Connect or Debezium with exactly-once write a transaction marker after their records,
    so the partition's end stays an offset past the last record even when all of it was read. Read
    to its end all the same: the quiet partition's overdue record fires at the idle end (with the
    last record's offset alone the lifecycle input stayed behind, the run never idled out, and the
    deadline never fired)."""
    config = make_config(names, broker, "chdb://unused")
    pz = Pseudonymizer.from_env(allow_ephemeral=False)
    other = customers_beside("C1", config.kafka.partitions)[0]
    m = monitor(config, ch, policy, catalog)
    producer = Producer({"bootstrap.servers": broker, "transactional.id": f"connect-{names['tag']}"})
    producer.init_transactions(10)
    producer.begin_transaction()
    for ev in (collect("R1", "C1", -40, **LOCATION), collect("R2", other, 0)):
        producer.produce(
            config.topics.lifecycle, ev.model_dump_json().encode(), ev.record_id.encode(), timestamp=ev.ts
        )
    producer.commit_transaction(10)
    stats = m.run(idle_exit_s=1.5, max_seconds=25)
    fired = [a for a in stats.alerts.values() if a.detector == "retention_overrun"]
    assert [(a.rule_id, a.subjects_sample) for a in fired] == [("LM-RO-001.retention_expired", [pz("C1")])]


def test_a_deadline_fired_on_a_quiet_partition_stays_fired_after_a_restart(
    broker, ch, names, policy, catalog
) -> None:
    """The overdue record's partition reads nothing in the run where its deadline fires: the other
    partitions move the clock on. What the firing changed (the timer gone, the episode closed) is
    state all the same and must reach the changelog, or the next run restores the timer from before
    and fires the same deadline again without any new input (the restored state is not the state
    the partition left with)."""
    config = make_config(names, broker, "chdb://unused")
    n = config.kafka.partitions
    pz = Pseudonymizer.from_env(allow_ephemeral=False)
    quiet = zlib.crc32(pz("C1").encode()) % n  # where the overdue record's retention task runs
    other = next(c for c in customers_beside("C1", n))
    rid = next(r for r in (f"R{i}" for i in range(2, 100)) if zlib.crc32(r.encode()) % n != quiet)

    def run() -> list[Any]:
        stats = monitor(config, ch, policy, catalog).run(idle_exit_s=1.5, max_seconds=30)
        return [a for a in stats.alerts.values() if a.detector == "retention_overrun"]

    ensure_topics(broker, config)
    send(broker, config.topics.lifecycle, [collect("R1", "C1", -40, **LOCATION)], key=b"R1")
    assert run() == []  # its own clock stands 40 days back: not due yet
    send(broker, config.topics.lifecycle, [collect(rid, other, 0)], key=rid.encode())  # the clock moves on
    fired = run()
    assert [(a.rule_id, a.subjects_sample) for a in fired] == [("LM-RO-001.retention_expired", [pz("C1")])]
    assert run() == []  # nothing new was read: nothing fires again
