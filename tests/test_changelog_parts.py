"""Large state values through a real Tansu broker: a value over the part size travels as parts and a
head (streams/changelog_parts.py), restores equal, leaves no part that restore or compaction could
take for live data, survives a crash between its parts and the marker; and a record the broker
refuses for good stops the write loudly instead of retrying it for ever."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from test_keyed_state import changelog_topic, restored

from streams.changelog import MARKER_KEY, Changelog, changelog_producer
from streams.changelog_parts import HEAD_HEADER, PART_BYTES, PART_PREFIX, split
from streams.embedded import free_port
from streams.keyed_state import KeyedStore
from streams.sinks.base import FatalSinkError, SinkError
from streams.sinks.kafka import producer_config


def episode(n: int, tag: str = "P") -> dict[str, Any]:
    """An unauthorized-lookup episode's shape: the customers an employee read, as pseudonyms."""
    return {"accesses": n, "customers": [f"{tag}{i:025d}" for i in range(n)]}


BIG = 180_000  # customers: ~5.2 MB of JSON
KEY = b"unauthorized_lookup\x1fe1"


def log_records(broker: str, topic: str, partition: int = 0) -> list[tuple[bytes, bytes | None, Any]]:
    """The partition as stored, in offset order: key, value, headers."""
    c = Consumer(
        {"bootstrap.servers": broker, "group.id": "parts-reader", "enable.partition.eof": True}
        | {"max.partition.fetch.bytes": 16 << 20, "enable.auto.commit": False}
    )
    c.assign([TopicPartition(topic, partition, OFFSET_BEGINNING)])
    out: list[tuple[bytes, bytes | None, Any]] = []
    try:
        while True:
            for m in c.consume(1000, 0.1):
                if m.error() is None:
                    out.append((m.key() or b"", m.value(), m.headers()))
                elif m.error().code() == KafkaError._PARTITION_EOF:
                    return out
    finally:
        c.close()


def latest(records: list[tuple[bytes, bytes | None, Any]]) -> list[tuple[bytes, bytes | None, Any]]:
    """What compaction leaves once it has run and its tombstones expired: each key's latest
    record, in offset order, tombstones gone (Tansu does not compact, so the tests do)."""
    last = {r[0]: i for i, r in enumerate(records)}
    return [r for i, r in enumerate(records) if last[r[0]] == i and r[1] is not None]


def compacted_copy(broker: str, topic: str) -> str:
    copy = changelog_topic(broker, partitions=1)
    p = Producer(producer_config(broker, {}))
    for key, value, headers in latest(log_records(broker, topic)):
        p.produce(copy, key=key, value=value, headers=headers, partition=0)
    assert p.flush(30) == 0
    return copy


def live_parts(broker: str, topic: str) -> set[bytes]:
    return {k for k, _, _ in latest(log_records(broker, topic)) if k.startswith(PART_PREFIX)}


@pytest.fixture
def writer(broker: str) -> Iterator[tuple[str, Changelog]]:
    topic = changelog_topic(broker, partitions=1)
    yield topic, Changelog(Producer(producer_config(broker, {})), topic)


def test_a_5_mb_value_checkpoints_and_restores_equal(broker: str, writer, tmp_path: Path) -> None:
    topic, log = writer
    s = KeyedStore(tmp_path / "a", cache_size=4)
    s.put("unauthorized_lookup\x1fe1", episode(BIG))
    s.put("unauthorized_lookup\x1fe2", episode(3))
    plain = "x" * (PART_BYTES - 2)  # encodes to exactly PART_BYTES: still one plain record
    s.put("edge", plain)
    changes = s.changes()
    assert max(len(v or b"") for _, v in changes) > 5_000_000
    log.write(0, changes, {"pfi.access:0": 7})

    records = log_records(broker, topic)
    parts = [(k, v) for k, v, _ in records if k.startswith(PART_PREFIX)]
    assert len(parts) == 10 and all(len(v or b"") <= PART_BYTES for _, v in parts)
    heads = [k for k, _, h in records if h and (HEAD_HEADER, b"1") in h]
    assert heads == [b"unauthorized_lookup\x1fe1"]
    assert (b"edge", orjson.dumps(plain), None) in records

    r, offsets = restored(broker, topic, 0, tmp_path / "b")
    assert offsets == {"pfi.access:0": 7}
    assert list(r.items()) == list(s.items())
    assert r.get("unauthorized_lookup\x1fe1") == episode(BIG)
    assert r.changes() == []  # nothing stale to tombstone
    c, _ = restored(broker, compacted_copy(broker, topic), 0, tmp_path / "c")
    assert list(c.items()) == list(s.items())
    for store in (s, r, c):
        store.destroy()


def test_a_value_that_shrinks_is_deleted_or_replaced_leaves_no_live_parts(
    broker: str, writer, tmp_path: Path
) -> None:
    topic, log = writer
    s = KeyedStore(tmp_path / "a", cache_size=4)
    for key in ("shrinks", "deleted", "replaced", "kept"):
        s.put(key, episode(BIG // 4, tag=key[0]))  # ~1.3 MB each: 3 parts
    log.write(0, s.changes(), {"pfi.access:0": 1})
    first = live_parts(broker, topic)
    assert len(first) == 12
    s.put("shrinks", episode(2))
    s.delete("deleted")
    s.put("replaced", episode(BIG // 3, tag="r"))
    log.write(0, s.changes(), {"pfi.access:0": 2})

    kept = {k for k in first if b"kept" in k}
    assert {k for k in live_parts(broker, topic) if k not in kept} == {
        k for k in live_parts(broker, topic) if b"replaced" in k
    }
    assert len(live_parts(broker, topic)) == 3 + 4  # kept's 3 parts, replaced's new 4
    r, _ = restored(broker, topic, 0, tmp_path / "r")
    assert list(r.items()) == list(s.items())
    assert r.get("shrinks") == episode(2) and r.get("deleted") is None
    assert r.changes() == []
    c, _ = restored(broker, compacted_copy(broker, topic), 0, tmp_path / "c")
    assert list(c.items()) == list(s.items())
    for store in (s, r, c):
        store.destroy()


def test_a_new_writer_learns_the_heads_it_must_tombstone(broker: str, writer, tmp_path: Path) -> None:
    """After a takeover the new owner, not the writer of the parts, shrinks the value."""
    topic, log = writer
    log.write(0, [(b"k", orjson.dumps(episode(BIG // 4)))], {"pfi.access:0": 1})
    successor = Changelog(Producer(producer_config(broker, {})), topic)
    r = KeyedStore(tmp_path / "r", cache_size=4)
    successor.recover({"bootstrap.servers": broker}, {0: r})
    r.put("k", episode(1))
    successor.write(0, r.changes(), {"pfi.access:0": 2})
    assert live_parts(broker, topic) == set()
    r.destroy()


@pytest.mark.parametrize("sent", ["some parts", "parts and head"])
def test_a_crash_between_parts_and_marker_keeps_the_previous_value(
    broker: str, writer, tmp_path: Path, sent: str
) -> None:
    topic, log = writer
    before = episode(BIG // 4)
    log.write(0, [(b"k", orjson.dumps(before)), (b"small", b"1")], {"pfi.access:0": 10})
    committed = live_parts(broker, topic)
    records, _ = split([(b"k", orjson.dumps(episode(BIG // 3, tag="n")))], log.heads[0])
    # the writer dies before its marker: after 2 of the new value's 4 parts, or after all of its
    # records (new parts, head, tombstones of the old parts)
    log._send({0: records[:2] if sent == "some parts" else records})

    if sent == "some parts":
        # the new value's parts have keys of their own: compaction cannot replace the committed
        # value's parts with them (only a head it supersedes, which min.compaction.lag.ms guards)
        early, _ = restored(broker, compacted_copy(broker, topic), 0, tmp_path / "early")
        assert early.get("k") == before
        early.destroy()
    successor = Changelog(Producer(producer_config(broker, {})), topic)
    r = KeyedStore(tmp_path / "r", cache_size=4)
    assert successor.recover({"bootstrap.servers": broker}, {0: r}) == {0: {"pfi.access:0": 10}}
    assert r.get("k") == before and r.get("small") == 1
    # its first checkpoint tombstones the orphan parts and re-sends what was committed
    successor.write(0, r.changes(), {"pfi.access:0": 10})
    assert live_parts(broker, topic) == committed
    for source in (topic, compacted_copy(broker, topic)):
        again, offsets = restored(broker, source, 0, tmp_path / f"again-{source}")
        assert (again.get("k"), offsets) == (before, {"pfi.access:0": 10})
        assert again.changes() == []
        again.destroy()
    r.destroy()


def test_a_reserved_key_is_refused_unless_it_tombstones_a_part() -> None:
    assert split([(PART_PREFIX + b"k\x00x", None)], {}) == ([(PART_PREFIX + b"k\x00x", None, None)], {})
    with pytest.raises(ValueError, match="reserves"):
        split([(MARKER_KEY, b"{}")], {})


def test_a_record_refused_for_good_stops_the_write_naming_the_fix(broker: str, writer) -> None:
    """A 5 MB record without parts: the producer refuses it (message.max.bytes 2 MB), as a Kafka
    broker would at 1 MiB. Retrying cannot help, so the write says so at once."""
    topic, _ = writer
    unsplit = Changelog(Producer(producer_config(broker, {})), topic, part_bytes=10 << 20)
    value = orjson.dumps(episode(BIG))
    began = time.monotonic()
    with pytest.raises(FatalSinkError) as e:
        unsplit.write(0, [(KEY, value)], {"pfi.access:0": 1})
    assert time.monotonic() - began < 5
    text = str(e.value)
    assert f"changelog {topic}[0]" in text and "MSG_SIZE_TOO_LARGE" in text
    assert f"key {len(KEY)} B, value {len(value)} B" in text and "max.message.bytes" in text


def test_a_broker_that_is_down_stays_retriable() -> None:
    dead = Changelog(
        Producer(producer_config(f"127.0.0.1:{free_port()}", {})), "lifemon.state.gone", flush_timeout_s=1
    )
    with pytest.raises(SinkError) as e:
        dead.write(0, [(b"k", orjson.dumps(episode(BIG // 4)))], {"pfi.access:0": 1})
    assert not isinstance(e.value, FatalSinkError)


def test_a_fatal_producer_error_stops_the_write_instead_of_retrying_forever(broker: str, writer) -> None:
    """After a fatal error (an idempotent producer whose sequence broke) the producer never
    delivers again, so a retried checkpoint would loop for ever. librdkafka fails the queued
    messages with _PURGE_QUEUE and later ones with _FATAL, and confluent-kafka does not set
    `fatal()` on those: the codes stop the write, which says to restart. The errors are built as
    the delivery report hands them over (no fatal flag)."""
    topic, log = writer
    for code in (KafkaError._PURGE_QUEUE, KafkaError._FATAL):
        failure = log._failure([0], 0, [(0, KafkaError(code, "fatal error: out of order sequence"), 3, 100)])
        assert isinstance(failure, FatalSinkError)
        assert f"changelog {topic}[0]" in str(failure) and "restart lifemon" in str(failure)
    retry = log._failure([0], 1, [(0, KafkaError(KafkaError._TRANSPORT, "broker down"), 3, 100)])
    assert type(retry) is SinkError
    assert log._failure([0], 0, []) is None


def test_one_write_for_several_partitions_restores_each_with_its_own_offsets(
    broker: str, tmp_path: Path
) -> None:
    topic = changelog_topic(broker, partitions=3)
    log = Changelog(Producer(producer_config(broker, {})), topic)
    log.write_many(
        {
            0: ([(b"a", b"1")], {"pfi.access:0": 5}),
            2: ([(b"b", b"2"), (b"c", b"3")], {"pfi.access:2": 9}),
        }
    )
    assert [k for k, _, _ in log_records(broker, topic, 2)] == [b"b", b"c", MARKER_KEY]
    assert log_records(broker, topic, 1) == []
    for p, items, offsets in (
        (0, [("a", 1)], {"pfi.access:0": 5}),
        (2, [("b", 2), ("c", 3)], {"pfi.access:2": 9}),
    ):
        r, found = restored(broker, topic, p, tmp_path / f"r{p}")
        assert (list(r.items()), found) == (items, offsets)
        r.destroy()


def test_no_marker_is_sent_unless_every_partitions_changes_were_acknowledged(broker: str) -> None:
    """The markers of one write go out only once all of its changes are acknowledged: a change of
    partition 1 that is refused leaves partition 0's changes, which were delivered, uncommitted."""
    topic = changelog_topic(broker, partitions=2)
    log = Changelog(Producer(producer_config(broker, {})), topic, part_bytes=10 << 20)
    with pytest.raises(FatalSinkError, match=rf"changelog {topic}\[1\]"):
        log.write_many(
            {
                0: ([(b"a", b"1")], {"pfi.access:0": 5}),
                1: ([(KEY, orjson.dumps(episode(BIG)))], {"pfi.access:1": 9}),  # over message.max.bytes
            }
        )
    log.producer.flush(10)
    assert [k for k, _, _ in log_records(broker, topic, 0)] in ([], [b"a"])
    assert log_records(broker, topic, 1) == []


def test_a_record_whose_delivery_fails_fails_the_write(broker: str) -> None:
    """The runtime's changelog producer reports failed deliveries only (`changelog_producer`): a
    record `produce` took that then fails (here: its topic is not there, which the producer learns
    from the broker's metadata, after the record was queued) still fails the write, and no marker
    is sent."""
    topic = "lifemon.state.never-created"
    log = Changelog(changelog_producer(broker, {"topic.metadata.propagation.max.ms": 100}), topic)
    with pytest.raises(SinkError, match=rf"changelog {topic}\[0\]") as e:
        log.write(0, [(b"a", b"1")], {"pfi.access:0": 5})
    assert "UNKNOWN_TOPIC_OR_PART" in str(e.value)  # the change's delivery report, not the marker's produce
