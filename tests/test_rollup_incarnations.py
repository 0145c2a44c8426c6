"""Rollups of a topic deleted and re-created over the same database, through a real Tansu broker
and chDB: the new topic starts again at offset 0, and its offset blocks must add to the old
topic's rows, not replace them (a user ran `make demo`, then `lifemon run` + `lifemon generate`
against a second in-memory broker, and the dashboards lost the first run's counts). A re-read of
one incarnation, by another consumer group, still rewrites its rows."""

from __future__ import annotations

import time
from typing import Any

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic
from conftest import access, entitlement
from test_pipeline import make_config, monitor, send

from streams.config import Config

pytestmark = pytest.mark.integration


def with_group(config: Config, group: str) -> Config:
    return config.model_copy(update={"kafka": config.kafka.model_copy(update={"group_id": group})})


def recreate(bootstrap: str, topic: str, partitions: int) -> None:
    """Delete the topic and create it again, empty, under the same name (a new topic id)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.delete_topics([topic], operation_timeout=10).values():
        future.result()
    deadline = time.monotonic() + 20
    while True:  # a broker may still be finishing the deletion
        try:
            for future in admin.create_topics([NewTopic(topic, partitions, 1)]).values():
                future.result()
            return
        except KafkaException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def access_totals(ch: Any, db: str) -> tuple[int, int]:
    """(access events counted, distinct topic ids they were counted under)."""
    ((events, ids),) = ch.query(
        f"SELECT sum(events), uniqExact(topic_id) FROM {db}.event_rollups FINAL WHERE stream = 'access'"
    ).result_rows
    return events, ids


def test_a_re_created_topic_adds_to_the_old_topics_rollups(broker, ch, names, policy, catalog) -> None:
    config = make_config(names, broker, "chdb://unused")
    db, topic = names["database"], config.topics.access
    first = monitor(config, ch, policy, catalog)
    send(broker, config.topics.entitlements, [entitlement("e1")])
    send(broker, topic, access("e1", customers=40, every_s=5))
    first.run(idle_exit_s=1.5, max_seconds=60)
    assert access_totals(ch, db) == (40, 1)

    # the topic is deleted and re-created; its new records sit at the same offsets of the same
    # partition, in the same minutes and cells as the old ones (other events: ids of their own)
    recreate(broker, topic, config.kafka.partitions)
    send(broker, topic, access("e1", customers=40, every_s=5, start=1))
    second = with_group(config, names["group"] + "-2")  # the first group's state is of the old topic
    monitor(second, ch, policy, catalog).run(idle_exit_s=1.5, max_seconds=60)
    assert access_totals(ch, db) == (80, 2)  # was (40, 1): the new blocks replaced the old rows

    # another group re-reading the new topic from its start rewrites its rows, adds nothing
    third = with_group(config, names["group"] + "-3")
    monitor(third, ch, policy, catalog).run(idle_exit_s=1.5, max_seconds=60)
    assert access_totals(ch, db) == (80, 2)


def test_the_same_group_stops_on_a_re_created_topic_rather_than_skip_its_first_records(
    broker, ch, names, policy, catalog
) -> None:
    """The group's checkpoint resumes at offset 40 of the old topic. The new topic holds 60 records:
    resuming there would skip its first 40 without a word. lifemon stops and says how to read it."""
    from streams.runtime import SourceRecreated

    config = make_config(names, broker, "chdb://unused")
    topic = config.topics.access
    first = monitor(config, ch, policy, catalog)  # creates the topics, 3 partitions each
    send(broker, config.topics.entitlements, [entitlement("e1")])
    send(broker, topic, access("e1", customers=40, every_s=5))
    first.run(idle_exit_s=1.5, max_seconds=60)
    recreate(broker, topic, config.kafka.partitions)
    send(broker, topic, access("e1", customers=60, every_s=5, start=1))
    with pytest.raises(
        SourceRecreated, match=rf"{topic} partition \d was deleted and re-created .* new kafka.group_id"
    ):
        monitor(config, ch, policy, catalog).run(idle_exit_s=1.5, max_seconds=60)
