"""Kafka outputs: alerts (OCSF JSON, key = alert id) and dead letters (original bytes + reason headers).

How a Kafka sink fails, and what the runtime sees (docs/kafka-sink-faults.md has the probe behind it):
- broker down or slow: `flush` waits at most `flush_timeout_s`, then raises SinkError; messages still
  in the producer queue stay there (librdkafka retries them itself) and are never produced twice;
- topic gone (a broker restarted empty, a deleted topic): FatalSinkError, because retrying would spin
  forever against a destination that no longer exists."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

import orjson
from confluent_kafka import KafkaError, KafkaException, Message, Producer

from schemas.incident import Incident
from schemas.models import Alert
from streams.alerts import alert_version, incident_version, to_ocsf
from streams.codecs import MESSAGE_MAX_BYTES, DeadLetter
from streams.logs import KAFKA
from streams.sinks.base import FatalSinkError, Sink, SinkError

# key, value, headers, and the partition where it must go rather than where its key hashes to
Encoded = tuple[bytes | None, bytes | None, Any] | tuple[bytes | None, bytes | None, Any, int]
ANY_PARTITION = -1  # librdkafka's RD_KAFKA_PARTITION_UA: the partitioner chooses by key

# The broker says the topic is not there: retrying cannot create it (lifemon's producer may not).
TOPIC_GONE = frozenset({KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC})
# The broker refuses this data for good: the same bytes will be refused again on every retry.
REFUSED = frozenset(
    {
        KafkaError.MSG_SIZE_TOO_LARGE,
        KafkaError.RECORD_LIST_TOO_LARGE,
        KafkaError.INVALID_RECORD,
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
    }
)
POLL_SLICE_S = 0.1  # how often a waiting flush looks at its stop event


def failed_for_good(err: KafkaError) -> bool:
    """The producer hit a fatal error (an idempotent producer's sequence broken, say) and never
    delivers again. confluent-kafka sets `fatal()` only on the error `poll`/`flush` raise; delivery
    reports and later `produce` calls carry the codes librdkafka fails the queued and new messages
    with instead. PRODUCER_FENCED: lifemon's producer is idempotent, not transactional, so nothing
    else should fence it; Tansu does, for every message after a message timeout made librdkafka
    bump the producer's epoch."""
    return err.fatal() or err.code() in (
        KafkaError._FATAL,
        KafkaError._PURGE_QUEUE,
        KafkaError.PRODUCER_FENCED,
    )


def no_retry_helps(err: KafkaError) -> bool:
    """The broker refuses this data for good, or the producer failed for good."""
    return err.code() in REFUSED or failed_for_good(err)


class KafkaTopicSink(Sink[Any]):
    """Produces items to one topic through a producer it may share with other sinks, and tracks
    them from `add` to the broker's acknowledgement, so a flush waits only for its own messages and
    a retry re-produces only what failed.

    Every message is in exactly one place: `_unsent` (added, encoded, not yet produced), in flight
    (in the producer queue: librdkafka owns it until its delivery report, only counted here), or
    `_failed` (its delivery failed: its bytes, from the report). Delivered messages are dropped and
    never produced again. One bound method takes every report of a message without headers, not a
    closure a message: the message itself carries what a retry needs (a re-keyed event's send cost
    a third less). A report carries no headers, so a message with them (an alert's version, a dead
    letter's reason and source offset, a mark) has them bound to its report."""

    def __init__(
        self,
        producer: Producer,
        topic: str,
        encode: Callable[[Any], Encoded],
        name: str,
        *,
        flush_timeout_s: float = 30.0,
        metadata_timeout_s: float = 5.0,
        stop: threading.Event | None = None,
    ):
        super().__init__()
        self.producer, self.topic, self.encode, self.name = producer, topic, encode, name
        self.flush_timeout_s, self.metadata_timeout_s, self.stop = flush_timeout_s, metadata_timeout_s, stop
        self._unsent: list[Encoded] = []  # in add order
        # produced before anything still unsent, so retried first: add order within a partition
        self._failed: list[Encoded] = []
        self._in_flight = 0
        self._acked = 0  # delivery reports without error, ever
        self._last_error: KafkaError | None = None
        self._fatal: str | None = None  # set by a delivery report; raised by the next flush
        self._partitions: int | None = None  # the topic's partition count when first seen
        # partition -> end offset of what it acknowledged: an end the topic has at least, before
        # any consumer's fetch reports it (how far a repartition topic's reader must read)
        self.ends: dict[int, int] = {}

    @property
    def unsent(self) -> int:
        return len(self._unsent) + len(self._failed)

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def add(self, items: Iterable[Any]) -> None:
        self._unsent.extend(map(self.encode, items))

    def send(self, items: Iterable[Any]) -> None:
        """Produce now, without waiting for acknowledgements (`flush` waits for them): a stream the
        next stage reads within the second, not at the next checkpoint. What the producer cannot
        take at once stays unsent for the flush."""
        self.add(items)
        self._raise_if_fatal()
        self._produce_unsent(time.monotonic(), self.stop)
        self._poll(0)

    def write(self, items: list[Any]) -> None:
        """One batch, start to acknowledgement (the base class contract)."""
        self.add(items)
        self.flush()

    def flush(self, stop: threading.Event | None = None) -> int:
        """Produce every message not yet produced, then wait until all of this sink's messages are
        acknowledged; returns how many were acknowledged during this call.

        Raises SinkError (transient: keep the batch, flush again later) after `flush_timeout_s`
        (+ `metadata_timeout_s` for the topic check) or as soon as `stop` is set; messages in flight
        stay in the producer queue and are not produced again. Raises FatalSinkError when the
        topic is gone or the broker refuses the data for good."""
        stop = stop or self.stop
        started = time.monotonic()
        deadline = started + self.flush_timeout_s
        acked_before = self._acked
        self._raise_if_fatal()
        if not self.unsent and not self._in_flight:
            return 0
        if self._partitions is None:
            self._check_topic(min(self.metadata_timeout_s, self.flush_timeout_s))
        self._produce_unsent(deadline, stop)
        while self._in_flight and not _stopped(stop):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._poll(min(POLL_SLICE_S, remaining))
        self._raise_if_fatal()
        if not self.unsent and not self._in_flight:
            return self._acked - acked_before
        if _stopped(stop):
            raise SinkError(
                f"{self.name}: flush interrupted by shutdown; {self._pending()}, kept for the next run"
            )
        # Unconfirmed after the wait: a broker that is down, slow, or restarted without our topic.
        # Only the last is worth stopping for, and only metadata tells them apart.
        self._check_topic(self.metadata_timeout_s)
        raise SinkError(
            f"{self.name}: {self._pending()} after {time.monotonic() - started:.1f}s "
            f"(last error: {self._last_error}); kept for the next flush"
        )

    def _produce_unsent(self, deadline: float, stop: threading.Event | None) -> None:
        # a report polled while the producer queue is full may add to `_failed` as it is read: the
        # loop reaches it too, still before anything unsent
        for queue in (self._failed, self._unsent):
            produced = 0
            try:
                for encoded in queue:
                    if not self._produce(encoded, deadline, stop):
                        return  # the rest stays unsent; the caller reports it
                    produced += 1
            finally:
                del queue[:produced]

    def _produce(self, encoded: Encoded, deadline: float, stop: threading.Event | None) -> bool:
        """Into the producer queue; False when it stayed full past the deadline or a stop."""
        partition = encoded[3] if len(encoded) > 3 else ANY_PARTITION
        headers = encoded[2]
        report = self._on_delivery if headers is None else partial(self._on_delivery, headers=headers)
        while True:
            try:
                self.producer.produce(
                    self.topic,
                    value=encoded[1],
                    key=encoded[0],
                    headers=headers,
                    partition=partition,
                    on_delivery=report,
                )
                self._in_flight += 1
                return True
            except BufferError:  # producer queue full: let deliveries drain it
                if _stopped(stop) or time.monotonic() >= deadline:
                    return False
                self._poll(POLL_SLICE_S)
            except KafkaException as e:
                err = e.args[0]
                if err.code() in TOPIC_GONE:
                    raise FatalSinkError(self._vanished()) from e
                if no_retry_helps(err):  # e.g. over message.max.bytes, refused locally
                    raise FatalSinkError(f"{self.name}: cannot produce to {self.topic}: {err}") from e
                raise SinkError(f"{self.name}: {err}") from e

    def _poll(self, timeout_s: float) -> None:
        """`producer.poll`, which raises the producer's fatal error (an idempotent producer whose id
        a broker back empty forgot: UNKNOWN_PRODUCER_ID) where a delivery report would carry it."""
        try:
            self.producer.poll(timeout_s)
        except KafkaException as e:
            err = e.args[0]
            if failed_for_good(err):
                raise FatalSinkError(self._failed_for_good(err)) from e
            raise SinkError(f"{self.name}: {err}") from e

    def _on_delivery(self, err: KafkaError | None, msg: Message, headers: Any = None) -> None:
        """Runs inside `producer.poll`, possibly while another sink sharing the producer flushes.
        `headers`: the message's, which librdkafka's report leaves out (`msg.headers()` is None)."""
        self._in_flight -= 1
        partition = msg.partition()
        if err is None:
            self._acked += 1
            offset = msg.offset()
            if partition is not None and offset is not None and offset >= self.ends.get(partition, 0):
                self.ends[partition] = offset + 1
            return
        # re-produced by the next flush, to the partition its key went to (the same partitioner)
        where = ANY_PARTITION if partition is None or partition < 0 else partition
        self._failed.append((msg.key(), msg.value(), headers, where))
        self._last_error = err
        if err.code() in TOPIC_GONE:
            self._fatal = self._vanished()
        elif err.code() in REFUSED:
            self._fatal = f"{self.name}: the broker refuses messages for {self.topic} for good: {err}"
        elif failed_for_good(err):
            self._fatal = self._failed_for_good(err)

    def _check_topic(self, timeout_s: float) -> None:
        """FatalSinkError if the topic is missing or was re-created since this sink first saw it.

        A broker that cannot be asked is not an answer: that stays transient (the caller raises)."""
        try:
            md = self.producer.list_topics(self.topic, timeout=timeout_s)
        except KafkaException:
            return
        meta = md.topics.get(self.topic)
        if meta is None:  # no answer about this topic is not an answer that it is gone
            return
        if meta.error is not None and meta.error.code() in TOPIC_GONE:
            if self._partitions is None:
                raise FatalSinkError(
                    f"{self.name}: topic {self.topic} does not exist on the broker (was it restarted "
                    "empty?); lifemon creates its topics at start (ensure_topics), or create it with "
                    "the partitions you want"
                )
            raise FatalSinkError(self._vanished())
        if meta.error is not None:
            return
        count = len(meta.partitions)
        if self._partitions is not None and count != self._partitions:
            # Asked only when nothing gets through. A broker that auto-creates topics (Tansu does)
            # answers a metadata request for a lost topic by creating it blank with its own default
            # partition count (4 on Tansu), and an idempotent producer never delivers to that broker
            # again (it keeps bumping the epoch of a producer id the broker forgot).
            raise FatalSinkError(
                f"{self.name}: topic {self.topic} now has {count} partition(s), it had {self._partitions}, "
                "and nothing gets through: it was re-created empty (was the broker restarted empty?); "
                "lifemon stops rather than retry forever"
            )
        self._partitions = count

    def _failed_for_good(self, err: KafkaError) -> str:
        return f"{self.name}: the producer failed for good and must be recreated: {err}"

    def _vanished(self) -> str:
        return (
            f"{self.name}: topic {self.topic} no longer exists on the broker (was it restarted empty?); "
            "lifemon stops rather than retry forever"
        )

    def _pending(self) -> str:
        return f"{self._in_flight} message(s) in flight, {self.unsent} failed or unsent"

    def _raise_if_fatal(self) -> None:
        if self._fatal is not None:
            raise FatalSinkError(self._fatal)


def _stopped(stop: threading.Event | None) -> bool:
    return stop is not None and stop.is_set()


def encode_alert(alert: Alert) -> Encoded:
    return (
        alert.alert_id.encode(),
        orjson.dumps(to_ocsf(alert)),
        [
            ("lifemon.revision", str(alert.revision).encode()),
            ("lifemon.version", str(alert_version(alert)).encode()),  # keep the highest per id
        ],
    )


def encode_incident(incident: Incident) -> Encoded:
    """Keyed by incident id (the topic is compacted to the newest revision of each)."""
    return (
        incident.incident_id.encode(),
        orjson.dumps(incident.model_dump(mode="json")),
        [
            ("lifemon.revision", str(incident.revision).encode()),
            ("lifemon.version", str(incident_version(incident)).encode()),
        ],
    )


DLQ_VALUE_LIMIT = 900_000  # under the producer's message.max.bytes, so a dead letter can always be sent


def encode_dead_letter(dead: DeadLetter) -> Encoded:
    """The original bytes with the reason in headers. A value too large to forward stays where it
    is (source.topic/partition/offset in the headers point at it) rather than blocking the DLQ."""
    value = dead.raw.value
    headers = dead.headers()
    if value is not None and len(value) > DLQ_VALUE_LIMIT:
        headers.append(("error.value_dropped", f"{len(value)} bytes, read it at the source offset".encode()))
        value = None
    return dead.raw.key, value, headers


# a HAR document's first bytes name the tool that wrote it, before any request (`{"log":
# {"version": "1.2", "creator": {"name": "mitmproxy", "version": "11.0.2"`): a name and a version
# hold no body
_HAR_CREATOR = re.compile(
    rb'\A\s*\{\s*"log"\s*:\s*\{\s*"version"\s*:\s*"([0-9.]{1,8})"\s*,\s*"creator"\s*:\s*\{\s*'
    rb'"name"\s*:\s*"([\w .-]{1,40})"\s*,\s*"version"\s*:\s*"([\w .+-]{0,24})"'
)


def withholding_dead_letters(
    topics: frozenset[str], digest: Callable[[str], str]
) -> Callable[[DeadLetter], Encoded]:
    """The dead-letter encoder that keeps no byte of a record from `topics` (the HAR raw topic,
    docs/har.md): a capture holds every request the app made, its login password among them (a
    probe's cut capture reached pfi.dlq whole, the password three times), and no C3 value is kept
    anywhere. Its dead letter says why (the usual headers), how large it was, a keyed digest (two
    dead letters of one capture match; a guessable capture cannot be tried against it) and the tool
    that wrote it; the record itself stays at its source offset. Other topics' are unchanged."""

    def encode(dead: DeadLetter) -> Encoded:
        value = dead.raw.value
        if dead.raw.topic not in topics or value is None:
            return encode_dead_letter(dead)
        said = [
            ("error.value_withheld", b"a HAR capture carries passwords: read it at the source offset"),
            ("error.value_bytes", str(len(value)).encode()),
            ("error.value_digest", digest(value.decode("latin-1")).encode()),
        ]
        if m := _HAR_CREATOR.match(value[:512]):
            said.append(("error.value_creator", b"HAR %s by %s %s" % m.groups()))
        return dead.raw.key, None, [*dead.headers(), *said]

    return encode


def client_config(bootstrap: str, extra: dict[str, Any]) -> dict[str, Any]:
    """What every lifemon client starts from. Without `logger` librdkafka writes its own lines
    (`%6|…|BGQUEUE|…` as an admin client closes) straight to stderr, past the log format."""
    return {"bootstrap.servers": bootstrap, "log.connection.close": False, "logger": KAFKA, **extra}


def producer_config(bootstrap: str, extra: dict[str, Any]) -> dict[str, Any]:
    return client_config(
        bootstrap,
        {
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 20,
            "compression.type": "lz4",
            "message.max.bytes": MESSAGE_MAX_BYTES,
            # lifemon creates its topics at start (ensure_topics). A producer that may create them would
            # let a broker restarted empty (Tansu keeps topics in memory) re-create them blank with its
            # own default partition count, and the sink could not tell that its topic vanished.
            "allow.auto.create.topics": False,
            **extra,
        },
    )
