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

from streams.keyed_state import Change, KeyedStore
from streams.sinks.base import SinkError

log = logging.getLogger(__name__)

MARKER_KEY = b"\x00offsets"  # a reserved key: compaction keeps the latest marker, as restore needs


class RestoreError(RuntimeError):
    """A changelog partition could not be read to its end; the task must not start without it."""


class Changelog:
    """Writes a task's changes to partition `p` of a changelog topic, then a commit marker (key
    MARKER_KEY, value the JSON of the task's input offsets {topic: next_offset}). Restore replays
    the partition and applies only changes followed by a marker, so a crash between changes and
    marker leaves no half checkpoint, and the offsets to resume from always match the state."""

    def __init__(self, producer: Producer, topic: str):
        self.producer, self.topic = producer, topic

    def write(self, partition: int, changes: list[Change], offsets: dict[str, int]) -> None:
        """Returns once the broker acknowledged the changes and then the marker; SinkError if not."""
        # Two round trips on purpose: the marker is sent only after every change is acknowledged,
        # so no producer setting (retries, in-flight requests) can land a marker before a change.
        self._send(partition, changes)
        self._send(partition, [(MARKER_KEY, orjson.dumps(offsets))])

    def _send(self, partition: int, records: list[Change]) -> None:
        errors: list[KafkaError] = []

        def on_delivery(err: KafkaError | None, _msg: Message) -> None:
            if err is not None:
                errors.append(err)

        for key, value in records:
            while True:
                try:
                    self.producer.produce(
                        self.topic, value=value, key=key, partition=partition, on_delivery=on_delivery
                    )
                    break
                except BufferError:  # local queue full: let deliveries drain, then retry
                    self.producer.poll(0.1)
                except KafkaException as e:
                    raise SinkError(f"changelog {self.topic}[{partition}]: {e}") from e
        remaining = self.producer.flush(30)
        if remaining or errors:
            raise SinkError(
                f"changelog {self.topic}[{partition}]: {remaining} record(s) undelivered, errors: {errors[:3]}"
            )

    @staticmethod
    def restore(
        consumer_conf: dict[str, Any], topic: str, partition: int, store: KeyedStore, timeout_s: float = 300
    ) -> dict[str, int]:
        """Replays partition `partition` into `store`; see `restore_many`."""
        return Changelog.restore_many(consumer_conf, topic, {partition: store}, timeout_s)[partition]

    @staticmethod
    def restore_many(
        consumer_conf: dict[str, Any], topic: str, stores: dict[int, KeyedStore], timeout_s: float = 300
    ) -> dict[int, dict[str, int]]:
        """Replays each changelog partition into its store (empty, or holding an earlier restore
        of the same partition) and returns, per partition, the input offsets of its last marker
        ({} if there is none). One consumer reads them all at once: an instance that is given
        several partitions restores them in the time of the largest, not of their sum.

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
        uncommitted: dict[int, list[Change]] = {p: [] for p in stores}  # changes after the last marker
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
                        if msg.key() == MARKER_KEY:
                            stores[p].apply(uncommitted[p])
                            uncommitted[p] = []
                            offsets[p] = orjson.loads(msg.value())  # type: ignore[arg-type]
                        else:
                            uncommitted[p].append((msg.key(), msg.value()))  # type: ignore[arg-type]
                    elif err.code() == KafkaError._PARTITION_EOF:
                        # EOF carries the fetch's high watermark; check it against the cached one
                        # in case an EOF from an earlier, shorter fetch is still queued.
                        tp = KafkaTopicPartition(topic, p)
                        _, high = consumer.get_watermark_offsets(tp, cached=True)
                        if p in pending and (msg.offset() or 0) >= high:
                            Changelog._finish(topic, p, stores[p], uncommitted[p])
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
        return offsets

    @staticmethod
    def _finish(topic: str, partition: int, store: KeyedStore, uncommitted: list[Change]) -> None:
        if uncommitted:
            # A writer died between its changes and its marker: ignore them, and have the next
            # checkpoint re-send these keys' committed values so they are again their latest record.
            log.warning(
                "changelog %s[%d]: %d change(s) without a commit marker ignored",
                topic,
                partition,
                len(uncommitted),
            )
            store.mark_changed({k for k, _ in uncommitted})
