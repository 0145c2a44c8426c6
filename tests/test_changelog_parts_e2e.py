"""The monitor with detector state larger than a Kafka message, through Tansu and chDB: a terminated
employee's bulk reads grow one unauthorized-lookup key past what a broker takes in one record. The
checkpoint writes it in parts, a restart restores it and the same alert goes on growing; and a
changelog that refuses a record for good stops the monitor loudly instead of stalling it."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from confluent_kafka import OFFSET_INVALID, Consumer, TopicPartition
from conftest import access, entitlement
from test_changelog_parts import log_records
from test_pipeline import make_config, send

from detectors import load_detectors
from streams.changelog_parts import PART_PREFIX
from streams.pseudonym import Pseudonymizer
from streams.runtime import Monitor, changelog_topic, ensure_topics
from streams.sinks.base import FatalSinkError

pytestmark = pytest.mark.integration

READS, PER_READ = 10, 5000  # 50,000 customers: the actor's episode encodes to ~1.5 MB
MINUTE = 60_000
KAFKA_LIMIT = {"message.max.bytes": 1_048_588}  # a Kafka broker's default, held to by the producer


def config_for(names: dict[str, str], broker: str) -> Any:
    config = make_config(names, broker, "chdb://unused", checkpoint_interval_s=0.5)
    config.kafka.client = KAFKA_LIMIT  # Tansu takes larger records than Kafka: refuse them as Kafka would
    return config


def monitor(config: Any, ch: Any, policy: Any, catalog: Any) -> Monitor:
    """The monitor with unauthorized_lookup alone: quicker than all detectors, same checkpoints."""
    ensure_topics(config.kafka.bootstrap, config)
    specs = [s for s in load_detectors(policy) if s.kind == "unauthorized_lookup"]
    return Monitor(
        config, config.kafka.bootstrap, ch, specs, catalog, Pseudonymizer.from_env(allow_ephemeral=False)
    )


def run(m: Monitor, limit_s: float = 60) -> BaseException | None:
    """Runs the monitor until its input is idle; a run still going after `limit_s` has stalled."""
    failure: list[BaseException] = []

    def target() -> None:
        try:
            m.run(idle_exit_s=1.5, max_seconds=limit_s / 2)
        except BaseException as e:  # noqa: BLE001 - handed to the test
            failure.append(e)

    runner = threading.Thread(target=target)
    runner.start()
    runner.join(limit_s)
    if runner.is_alive():
        m.stop_event.set()
        runner.join(30)
        pytest.fail(f"the monitor stalled: still running after {limit_s}s")
    return failure[0] if failure else None


def bulk_reads(start_ms: int, first: int, n: int) -> list[Any]:
    return access(
        "e1", customers=n * PER_READ, per_event=PER_READ, every_s=30, start=start_ms, first_customer=first
    )


def alerts(ch: Any, db: str) -> list[tuple[str, int]]:
    rows = ch.query(
        f"SELECT alert_id, subject_count FROM {db}.alerts FINAL WHERE detector = 'unauthorized_lookup' ORDER BY alert_id"
    ).result_rows
    return [(a, n) for a, n in rows]


def test_an_actor_state_over_a_message_checkpoints_in_parts_and_survives_a_restart(
    broker, ch, names, policy, catalog
) -> None:
    config = config_for(names, broker)
    t, db = config.topics, names["database"]
    first = monitor(config, ch, policy, catalog)
    send(broker, t.entitlements, [entitlement("e1", status="terminated")])
    send(broker, t.access, bulk_reads(0, 0, READS))
    assert run(first) is None
    (before,) = alerts(ch, db)
    assert before[1] >= 40_000  # 40,000 pseudonyms: over 1 MB of state
    changelog = changelog_topic(config)
    parts = [
        k for p in range(3) for k, _, _ in log_records(broker, changelog, p) if k.startswith(PART_PREFIX)
    ]
    # the episode went out in parts of at most 512 KiB, as did the reads kept for a late HR record
    episode = [k for k in parts if k.startswith(PART_PREFIX + b"unauthorized_lookup\x1fa:e1\x00")]
    kept = [k for k in parts if k.startswith(PART_PREFIX + b"unauthorized_lookup\x1f~judged:")]
    assert len(episode) >= 3 and len(episode) + len(kept) == len(parts)

    # a restart: the state comes back from the changelog, and the episode goes on
    later = READS * 30_000 + 5 * MINUTE
    tick = access("e1", start=later + 2 * MINUTE)  # a customer read before: moves time past the read
    send(broker, t.access, bulk_reads(later, READS * PER_READ, 1) + tick)
    assert run(monitor(config, ch, policy, catalog)) is None
    assert alerts(ch, db) == [(before[0], (READS + 1) * PER_READ)]


def test_a_changelog_that_refuses_a_record_for_good_stops_the_monitor(
    broker, ch, names, policy, catalog
) -> None:
    config = config_for(names, broker)
    m = monitor(config, ch, policy, catalog)
    m.changelog.part_bytes = 10 << 20  # no parts: the producer refuses the 1.5 MB record
    send(broker, config.topics.entitlements, [entitlement("e1", status="terminated")])
    send(broker, config.topics.access, bulk_reads(0, 0, READS))
    error = run(m, limit_s=40)
    assert isinstance(error, FatalSinkError), error
    assert f"changelog {changelog_topic(config)}[" in str(error) and "MSG_SIZE_TOO_LARGE" in str(error)
    committed = Consumer({"bootstrap.servers": broker, "group.id": config.kafka.group_id})
    offsets = committed.committed([TopicPartition(config.topics.access, p) for p in range(3)], timeout=10)
    committed.close()
    assert [tp.offset for tp in offsets] == [OFFSET_INVALID] * 3  # nothing committed past the failure
