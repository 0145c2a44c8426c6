"""The changelog of a task's keyed state: a Kafka topic partition per task, the truth from which
any instance that takes the partition over rebuilds it (Kafka Streams, quix-streams, faust).
docs/state.md has the protocol and the measured figures."""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, Producer
from confluent_kafka import TopicPartition as KafkaTopicPartition

from streams.changelog_parts import (
    PART_BYTES,
    PART_PREFIX,
    DamagedChangelog,
    Reassembly,
    Record,
    is_head,
    split,
)
from streams.keyed_state import Change, KeyedStore
from streams.sinks.base import FatalSinkError, SinkError
from streams.sinks.kafka import failed_for_good, no_retry_helps, producer_config

log = logging.getLogger(__name__)

MARKER_KEY = b"\x00offsets"  # a reserved key: compaction keeps the latest marker, as restore needs

# The shapes of the state this code stores: bump it in any release that changes a stored shape (a
# detector's value layout, its keys, the timers, the parts or the marker), so that an older release
# refuses the changelog (StateTooNew) instead of misreading it or crashing on it batch after batch.
# Upgrades need no bump: a release reads every earlier format itself. Markers of the releases before
# the number existed carry none and read as 1. 2: the forty-fourth stop's books in buckets, packed
# inbox blocks with a released mark, incident members as keys of their own. 3: the forty-sixth
# stop's bulk_query episode customers and incident members' customers in parts of their own. 4: the
# forty-ninth stop's rollup slots as a table of labels and a flat list of cells.
STATE_FORMAT = 4
# beside the offsets in the marker's JSON; '#' is not allowed in a topic name, so no input's key
# meets it, and releases before it only look up their topics' keys, so they ignore it
FORMAT_KEY = "#state_format"


class RestoreError(RuntimeError):
    """A changelog partition could not be read to its end; the task must not start without it."""


class StateTooNew(RuntimeError):
    """The changelog holds state a later release wrote (a rollback): its shapes are unknown here,
    and reading them would misjudge events or crash on every start. `group` names the consumer
    group once the caller knows it."""

    def __init__(self, topic: str, partition: int, found: int, group: str | None = None):
        self.topic, self.partition, self.found, self.group = topic, partition, found, group
        whose = f"consumer group {group}'s state" if group else "the state"
        super().__init__(
            f"{whose} (changelog {topic}[{partition}]) is in state format {found}, written by a later "
            f"release; this release knows formats up to {STATE_FORMAT} and stops rather than misread it. "
            "Roll forward to the release that wrote it, or run this one with a new kafka.group_id and "
            "replay the inputs into it (docs/operations.md#rolling-back)"
        )

    def of_group(self, group: str) -> StateTooNew:
        return StateTooNew(self.topic, self.partition, self.found, group)


def marker(offsets: dict[str, int]) -> bytes:
    """A commit marker's value: the task's input offsets, and the state format they go with."""
    return orjson.dumps({**offsets, FORMAT_KEY: STATE_FORMAT})


def marked_offsets(topic: str, partition: int, value: bytes) -> dict[str, int]:
    """The input offsets of a marker of `topic`[`partition`]; StateTooNew if a later release wrote
    it. Any earlier format restores as it is: each release reads the state its predecessors kept."""
    offsets: dict[str, int] = orjson.loads(value)
    found = offsets.pop(FORMAT_KEY, 1)
    if found > STATE_FORMAT:
        raise StateTooNew(topic, partition, found)
    return offsets


def changelog_producer(bootstrap: str, extra: dict[str, Any]) -> Producer:
    """The changelog's own producer (a write waits for its records only). Delivery reports of
    failed records only: `Changelog._send` learns of success from what `flush` leaves, so a
    Python call per delivered record (10 000 a checkpoint of a 100 000-event run, ~6 % of its
    CPU) told it nothing. A user's kafka.client setting still wins."""
    return Producer(producer_config(bootstrap, {"delivery.report.only.error": True, **extra}))


class Changelog:
    """Writes a task's changes to partition `p` of a changelog topic, then a commit marker (key
    MARKER_KEY, value the JSON of the task's input offsets {topic: next_offset} and of
    FORMAT_KEY: STATE_FORMAT). Restore replays the partition and applies only changes followed by a
    marker, so a crash between changes and marker leaves no half checkpoint, and the offsets to
    resume from always match the state. A marker of a format newer than STATE_FORMAT stops the
    restore (StateTooNew).

    A value over `part_bytes` travels as parts and a head record (streams/changelog_parts.py).
    A record the broker refuses for good (too large, not authorized, invalid) raises
    FatalSinkError: retrying the same bytes would stall the checkpoint for ever."""

    def __init__(
        self, producer: Producer, topic: str, part_bytes: int = PART_BYTES, flush_timeout_s: float = 30.0
    ):
        self.producer, self.topic = producer, topic
        self.part_bytes, self.flush_timeout_s = part_bytes, flush_timeout_s
        # per partition: key -> the part keys its last committed head names, so that the write
        # that shrinks, deletes or replaces the value tombstones them
        self.heads: dict[int, dict[bytes, list[bytes]]] = {}

    def write(self, partition: int, changes: list[Change], offsets: dict[str, int]) -> None:
        """`write_many` for one partition."""
        self.write_many({partition: (changes, offsets)})

    def write_many(self, writes: dict[int, tuple[list[Change], dict[str, int]]]) -> None:
        """Per partition p, `writes[p]` = (changes, offsets): returns once the broker acknowledged
        every partition's changes and then every marker; SinkError if not (FatalSinkError if it
        never will), and then no marker was sent unless all changes were acknowledged. A retry with
        the same writes sends the same records.

        Two round trips on purpose: the markers are sent only after every change is acknowledged,
        so no producer setting (retries, in-flight requests) can land a marker before a change.
        Two for all partitions, not two per partition: each flush costs a wait and its CPU."""
        records: dict[int, list[Record]] = {}
        named: dict[int, dict[bytes, list[bytes]]] = {}
        for p, (changes, _) in writes.items():
            records[p], named[p] = split(changes, self.heads.setdefault(p, {}), self.part_bytes)
        self._send(records)
        self._send({p: [(MARKER_KEY, marker(offsets), None)] for p, (_, offsets) in writes.items()})
        for p, keys in named.items():
            heads = self.heads[p]
            for key, parts in keys.items():
                if parts:
                    heads[key] = parts
                else:
                    heads.pop(key, None)

    def recover(
        self, consumer_conf: dict[str, Any], stores: dict[int, KeyedStore], timeout_s: float = 300
    ) -> dict[int, dict[str, int]]:
        """`restore_many` by the partitions' new writer: it also learns which parts the restored
        heads name, so that its writes tombstone them once they are replaced."""
        heads: dict[int, dict[bytes, list[bytes]]] = {}
        offsets = self.restore_many(consumer_conf, self.topic, stores, timeout_s, heads)
        self.heads.update(heads)
        return offsets

    def forget(self, partition: int) -> None:
        """The partition moved to another writer, which learns its heads when it restores it."""
        self.heads.pop(partition, None)

    def _send(self, records: dict[int, list[Record]]) -> None:
        """Produce each partition's records and wait for them all to be acknowledged."""
        errors: list[tuple[int, KafkaError, int, int]] = []  # partition, error, key bytes, value bytes

        def on_delivery(err: KafkaError | None, msg: Message) -> None:  # failures only (changelog_producer)
            if err is not None:
                errors.append((msg.partition() or 0, err, len(msg.key() or b""), len(msg.value() or b"")))

        produce, poll, topic = self.producer.produce, self.producer.poll, self.topic
        for partition, batch in records.items():
            for key, value, headers in batch:
                while True:
                    try:
                        # positional: parsing the keywords took ~0.4 of the 1.4 µs a record cost
                        # (the 10 000 records of a 100 000-event run's checkpoint: 14.5 -> 10.2 ms)
                        if headers is None:
                            produce(topic, value, key, partition, on_delivery)
                        else:  # a large value's head
                            produce(topic, value, key, partition, on_delivery, headers=headers)
                        break
                    except BufferError:  # local queue full: let deliveries drain, then retry
                        poll(0.1)
                    except KafkaException as e:
                        err = e.args[0]
                        if no_retry_helps(err):  # refused by the producer itself, or it failed for good
                            raise self._refused(partition, err, len(key), len(value or b"")) from e
                        raise SinkError(f"changelog {self.topic}[{partition}]: {e}") from e
        try:
            remaining = self.producer.flush(self.flush_timeout_s)
        except KafkaException as e:  # a fatal error, raised by the flush that serves it
            raise self._refused(min(records, default=0), e.args[0], 0, 0) from e
        failure = self._failure(sorted(records), remaining, errors)
        if failure is not None:
            raise failure

    def _failure(
        self, partitions: list[int], remaining: int, errors: list[tuple[int, KafkaError, int, int]]
    ) -> SinkError | None:
        """What a flush of `partitions`' records that left `remaining` of them and reported
        `errors` means: nothing wrong, a retry (a broker away), or a stop (FatalSinkError: no retry
        can succeed)."""
        refused = next((e for e in errors if no_retry_helps(e[1])), None)
        if refused is not None:
            return self._refused(*refused)
        if remaining or errors:
            where = f"[{partitions[0]}]" if len(partitions) == 1 else str(partitions)
            return SinkError(
                f"changelog {self.topic}{where}: {remaining} record(s) undelivered, "
                f"errors: {[e for _, e, _, _ in errors[:3]]}"
            )
        return None

    def _refused(self, partition: int, err: KafkaError, key_bytes: int, value_bytes: int) -> FatalSinkError:
        """The same bytes would be refused on every retry, or the producer failed for good (a fatal
        error: an idempotent producer's sequence broken, say): say what and how to fix it, and stop."""
        if failed_for_good(err):
            fix = (
                "the producer cannot be used again; restart lifemon, which creates a new one and "
                "resumes from the last checkpoint (nothing after it was committed)"
            )
        elif err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED:
            fix = f"grant lifemon's principal Write on topic {self.topic} (deploy/kafka/acls.txt)"
        elif err.code() in (KafkaError.MSG_SIZE_TOO_LARGE, KafkaError.RECORD_LIST_TOO_LARGE):
            fix = (
                f"state values over {self.part_bytes} B travel in parts of that size, so let the "
                f"topic's max.message.bytes, the broker's message.max.bytes and the producer's "
                f"message.max.bytes (kafka.client) take at least {self.part_bytes + key_bytes + 1024} B"
            )
        else:
            fix = f"check topic {self.topic}'s configuration (cleanup.policy=compact needs keyed records)"
        return FatalSinkError(
            f"changelog {self.topic}[{partition}]: the broker refuses a record for good ({err.name()}: "
            f"{err.str()}; key {key_bytes} B, value {value_bytes} B); lifemon stops rather than retry "
            f"the checkpoint for ever: {fix}"
        )

    @staticmethod
    def restore(
        consumer_conf: dict[str, Any], topic: str, partition: int, store: KeyedStore, timeout_s: float = 300
    ) -> dict[str, int]:
        """Replays partition `partition` into `store`; see `restore_many`."""
        return Changelog.restore_many(consumer_conf, topic, {partition: store}, timeout_s)[partition]

    @staticmethod
    def restore_many(
        consumer_conf: dict[str, Any],
        topic: str,
        stores: dict[int, KeyedStore],
        timeout_s: float = 300,
        heads: dict[int, dict[bytes, list[bytes]]] | None = None,
    ) -> dict[int, dict[str, int]]:
        """Replays each changelog partition into its store (empty, or holding an earlier restore
        of the same partition) and returns, per partition, the input offsets of its last marker
        ({} if there is none). One consumer reads them all at once: an instance that is given
        several partitions restores them in the time of the largest, not of their sum. `heads`,
        if given, receives per partition the part keys each restored large value's head names.

        The end is the high watermark that fetches report (the PARTITION_EOF event), never
        ListOffsets: Tansu answers that with the last batch's base offset + 1, which for 10,000
        records produced in one batch is 1.
        """
        conf = {
            "group.id": f"lifemon-restore-{topic}",  # assign() only: never joins or commits
            "session.timeout.ms": 6000,
            "fetch.max.bytes": 64 << 20,
            "max.partition.fetch.bytes": 16 << 20,
            **consumer_conf,
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "auto.offset.reset": "earliest",
        }
        offsets: dict[int, dict[str, int]] = {p: {} for p in stores}
        # records after the last marker: key, value, whether it is the head of a value in parts
        uncommitted: dict[int, list[tuple[bytes, bytes | None, bool]]] = {p: [] for p in stores}
        parts = {p: Reassembly(topic, p) for p in stores}
        pending = set(stores)
        if not pending:
            return offsets
        consumer = Consumer(conf)
        deadline = time.monotonic() + timeout_s
        try:
            consumer.assign([KafkaTopicPartition(topic, p, OFFSET_BEGINNING) for p in stores])
            while pending:
                if time.monotonic() > deadline:
                    raise RestoreError(
                        f"changelog {topic}{sorted(pending)}: not read to its end within {timeout_s}s"
                    )
                for msg in consumer.consume(10_000, 0.5):
                    p, err = msg.partition() or 0, msg.error()
                    if err is None:
                        key, value = msg.key() or b"", msg.value()
                        if key == MARKER_KEY:
                            # checked before its changes are applied: none of a later release's
                            # shapes reaches the store
                            offsets[p] = marked_offsets(topic, p, value or b"{}")
                            stores[p].apply(Changelog._committed(parts[p], uncommitted[p]))
                            uncommitted[p] = []
                        else:
                            parts[p].note(key, value)
                            uncommitted[p].append((key, value, is_head(msg.headers())))
                    elif err.code() == KafkaError._PARTITION_EOF:
                        # EOF carries the fetch's high watermark; check it against the cached one
                        # in case an EOF from an earlier, shorter fetch is still queued.
                        tp = KafkaTopicPartition(topic, p)
                        _, high = consumer.get_watermark_offsets(tp, cached=True)
                        if p in pending and (msg.offset() or 0) >= high:
                            Changelog._finish(topic, p, stores[p], uncommitted[p], parts[p])
                            pending.discard(p)
                    elif err.code() in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_PARTITION):
                        raise RestoreError(
                            f"changelog {topic}[{p}]: {err.str()}; create the changelog topic "
                            "with as many partitions as the input before starting tasks"
                        )
                    elif err.fatal():
                        raise RestoreError(f"changelog {topic}[{p}]: {err.str()}")
        finally:
            consumer.close()
        if heads is not None:
            heads.update({p: r.heads for p, r in parts.items()})
        return offsets

    @staticmethod
    def _committed(parts: Reassembly, records: list[tuple[bytes, bytes | None, bool]]) -> list[Change]:
        try:
            return parts.committed(records)
        except DamagedChangelog as e:
            raise RestoreError(str(e)) from e

    @staticmethod
    def _finish(
        topic: str,
        partition: int,
        store: KeyedStore,
        uncommitted: list[tuple[bytes, bytes | None, bool]],
        parts: Reassembly,
    ) -> None:
        keys = {k for k, _, _ in uncommitted if not k.startswith(PART_PREFIX)}
        if uncommitted:
            # A writer died between its changes and its marker: ignore them, and have the next
            # checkpoint re-send these keys' committed values so they are again their latest record.
            log.warning(
                "changelog %s[%d]: %d change(s) without a commit marker ignored",
                topic,
                partition,
                len(uncommitted),
            )
        # Parts no committed head names (that writer's, or replaced ones a writer did not know
        # of): the next checkpoint tombstones them, so a compacted topic drops them.
        store.mark_changed(keys | parts.stale())
