"""The native runtime on confluent-kafka: batches end to end, checkpoints before commits.

    reference topics ──▶ read to their end first (GlobalKTable), and again before every batch
    event topics (consumer group) ──▶ decode ──▶ engine ──▶ sinks ──┐
                                        └──▶ DLQ                    │ every checkpoint_interval_s:
                                                                    └─ flush sinks, save state, commit

Offsets are committed only after every sink acknowledged and the state snapshot is stored; a
crash replays from the last checkpoint and deterministic ids make the replay harmless.

Reference data is applied by event time: before a batch of events is judged, every reference
partition is read up to its end as it stands *after* the batch was fetched, so an entitlement the
broker acknowledged before the accesses were produced is always in force for them (a temporal
join that waits for the versioned table, never guesses).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from itertools import compress, groupby
from operator import attrgetter, itemgetter, not_
from typing import Any

import msgspec
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicCollection,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic

from detectors import DetectorSpec
from policy.catalog import Catalog
from policy.storage import DAY_MS, Storage, load_storage
from schemas.models import EVENT_MODELS, REFERENCE_STREAMS, STREAM_KEYS
from streams import _door
from streams.alerts import latest
from streams.changelog import Changelog, StateTooNew, changelog_producer
from streams.clickhouse import apply_ddl, preload_driver
from streams.codecs import MESSAGE_MAX_BYTES, DeadLetter, Decoder, RawRecord, SchemaRegistryUnavailable
from streams.config import SESSION_TIMEOUT_MS, Config
from streams.engine import IDLE_MARK, Engine, Task, long_lived_load
from streams.idleness import IDLE_AFTER_S, UNREAD_HOLD_S, LaggedClock
from streams.kafka_reach import consumer
from streams.lifecycle_ledger import DeletionLedger
from streams.pseudonym import Pseudonymizer
from streams.reference_dead_letters import ReferenceDeadLetters
from streams.sinks import FatalSinkError, Sink, SinkError, StoppedInOutage
from streams.sinks.clickhouse import verify_together
from streams.sinks.kafka import (
    Encoded,
    KafkaTopicSink,
    client_config,
    encode_alert,
    encode_incident,
    producer_config,
    withholding_dead_letters,
)
from streams.sinks.tables import Tables
from streams.sources import RawDecoder, unread_raw_topics, withheld_topics, zones_by_default
from streams.stage_watch import StageWatch
from streams.stats import Stats
from streams.transfer_ledger import TransferLedger

EVENT_STREAMS = [s for s in EVENT_MODELS if s not in REFERENCE_STREAMS]
log = logging.getLogger(__name__)


# Reference streams keep their whole history: an as-of lookup for an old event needs the entitlement
# that was valid then, which compaction by actor_id would delete (DESIGN.md §2 says "compacted").
TOPIC_SETTINGS = {
    "entitlements": {"cleanup.policy": "delete", "retention.ms": "-1"},
    "consents": {"cleanup.policy": "delete", "retention.ms": "-1"},
    "customers": {"cleanup.policy": "delete", "retention.ms": "-1"},
}


def retention_settings(storage: Storage) -> dict[str, dict[str, str]]:
    """Topics that hold pseudonyms or rejected records' original bytes keep them no longer than
    policy/storage.yaml says (docs/security.md#how-long-lifemon-keeps-personal-information)."""
    keep = str(storage.pseudonym_ttl_days * DAY_MS)
    return {
        # the newest revision of each alert / incident id, for as long as its pseudonyms may be kept
        "alerts": {"cleanup.policy": "compact,delete", "retention.ms": keep},
        "incidents": {"cleanup.policy": "compact,delete", "retention.ms": keep},
        "dlq": {"cleanup.policy": "delete", "retention.ms": str(storage.dead_letter_retention_days * DAY_MS)},
    }


def changelog_topic(config: Config) -> str:
    """Detector state's changelog, one per consumer group, as Kafka Streams names its own."""
    return f"{config.kafka.group_id}-state-changelog"


def repartition_topic(config: Config, stream: str, key: str) -> str:
    """An input re-keyed for the detectors that read it so, named as Kafka Streams names its own."""
    return f"{config.kafka.group_id}-{stream}-by-{key}-repartition"


# Repartition records are read within seconds; a week covers any outage of the instance reading them.
# a re-keyed record may outgrow its source record (pseudonyms are longer than most ids): the topic
# takes what the producer may send (MESSAGE_MAX_BYTES), not the broker's default 1 MiB
REPARTITION_SETTINGS = {
    "cleanup.policy": "delete",
    "retention.ms": str(7 * 86_400_000),
    "max.message.bytes": str(MESSAGE_MAX_BYTES + 100_000),
}


def ensure_topics(
    bootstrap: str, config: Config, extra: dict[str, Any] | None = None, storage: Storage | None = None
) -> None:
    """Create lifemon's topics if missing (existing topics are left as their owners set them)."""
    settings = TOPIC_SETTINGS | retention_settings(storage or load_storage())
    # the changelog partition p carries task p: as many partitions as the inputs, compacted by key
    create_missing(
        bootstrap,
        config,
        {
            **{topic: settings.get(stream, {}) for stream, topic in config.topics.model_dump().items()},
            changelog_topic(config): {"cleanup.policy": "compact"},
            **{topic: {} for topic in config.raw_sources.streams()},
        },
        extra,
    )


def create_missing(
    bootstrap: str, config: Config, settings: dict[str, dict[str, str]], extra: dict[str, Any] | None = None
) -> None:
    """Create the topics of `settings` ({topic: topic config}) that do not exist yet, with
    kafka.partitions partitions. A broker that does not answer raises KafkaUnavailable, one line
    (streams/kafka_reach.py), instead of librdkafka's log every 50 ms and a traceback."""
    from streams.kafka_reach import reach

    admin, metadata = reach(bootstrap, extra, config.kafka.reach_timeout_s)
    existing = set(metadata.topics)
    k = config.kafka
    wanted = [
        NewTopic(topic, k.partitions, k.replication_factor, config=conf)
        for topic, conf in settings.items()
        if topic not in existing
    ]
    for fut in admin.create_topics(wanted).values() if wanted else ():
        try:
            fut.result()
        except KafkaException as e:
            if e.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise


CRASH_ENV = (
    "LIFEMON_TEST_CRASH_AT"  # test-only: os._exit at a named checkpoint step (tests/test_crash_points.py)
)


def crash_point(name: str, processed: int) -> None:
    """Die like `kill -9` at a named step of the checkpoint when a test asks for it (`step@N`: at
    that step, once N records were processed); nothing else ever reads this variable."""
    step, _, after = os.environ.get(CRASH_ENV, "").partition("@")
    if step == name and processed >= int(after or 0):
        os._exit(137)


class CopartitionError(FatalSinkError):
    """Topics a task joins are partitioned differently: its state would split across instances."""


class SourceGone(FatalSinkError):
    """An input topic vanished: the broker lost its data, and waiting cannot bring it back."""

    def __init__(self, topic: str):
        super().__init__(
            f"input topic {topic} no longer exists on the broker (was it restarted empty?); "
            "lifemon stops rather than wait for data that is gone"
        )


class SourceReset(FatalSinkError):
    """An input partition lost records this instance already read: the broker came back empty and
    someone re-created the topic (another instance's start does). Waiting would wait forever for
    offsets that no longer come; starting over would pass the loss off as a fresh start."""

    def __init__(self, topic: str, partition: int, found: str, known: int):
        super().__init__(
            f"input topic {topic} partition {partition}: {found}, but lifemon already read it up to "
            f"offset {known} (was the broker restarted empty and the topic re-created?); lifemon stops "
            "rather than wait for records that are gone or start over as if nothing had been"
        )


class SourceRecreated(FatalSinkError):
    """An input topic was deleted and re-created since this group's checkpoint: the offset the
    checkpoint resumes at names the old topic's records, and reading the new one from there would
    skip its first records without a word."""

    def __init__(self, topic: str, partition: int, offset: int, old: set[str], new: str):
        super().__init__(
            f"input topic {topic} partition {partition} was deleted and re-created since the last "
            f"checkpoint (topic id {', '.join(sorted(old))} then, {new} now): its offset {offset} names "
            "the old topic's records, and resuming there would skip the new topic's first records; "
            "lifemon stops. To read the new topic from its start, run with a new kafka.group_id "
            "(the rollups of both topics add up; the alerts of the old one stay)"
        )


class TopicIdUnavailable(FatalSinkError):
    """The broker would not describe an input topic, so its incarnation (topic id) is unknown: its
    rollups could not tell its records from those of an earlier topic of the same name."""

    def __init__(self, topic: str, error: Any):
        super().__init__(
            f"input topic {topic}: the broker would not describe it ({error}); lifemon needs its topic id "
            "to keep the rollups of a re-created topic apart from the old one's (it needs Describe on the "
            "topic, which Read gives); lifemon stops, and resumes from its last checkpoint when started again"
        )


class GroupNeverAssigned(FatalSinkError):
    """The consumer group did not give this batch run an assignment within a rebalance's bound:
    the broker's group is stuck, and waiting on would end the run having read nothing (at
    --seconds, exit 0) or never (docs/operations.md#a-group-that-never-assigns)."""

    def __init__(self, group: str, waited_s: float, then: str):
        super().__init__(
            f"consumer group {group} gave this instance no assignment in {waited_s:.0f} s, past the "
            "rebalance timeout (max.poll.interval.ms) and a session timeout: the broker's group is stuck "
            "(Tansu 0.6 keeps a member that left during a rebalance as the group's leader, and then "
            f"assigns no one again); {then} (docs/operations.md#a-group-that-never-assigns)"
        )


TOPIC_ID_TRIES = 3  # a describe that timed out is asked again; then lifemon stops (TopicIdUnavailable)


def topic_id_of(description: Any) -> str:
    """A TopicDescription's topic id as Kafka prints it (base64), '' for a broker that gives none
    (a Kafka before 2.8 answers with the all-zero id)."""
    found = description.topic_id
    if found is None or (found.get_most_significant_bits() == 0 and found.get_least_significant_bits() == 0):
        return ""
    return str(found)


class StateDiskFull(FatalSinkError):
    """The disk under the local state stores is full. They are caches of the changelog, so the way
    out is space and a restart, which rebuilds them; the last checkpoint stands meanwhile."""

    def __init__(self, where: Any, error: Exception):
        super().__init__(
            f"the disk holding lifemon's local state ({where}) is full ({error}); free space there or "
            "give data_dir more, then start lifemon again: it resumes from its last checkpoint"
        )


@contextmanager
def _state_disk(where: Any) -> Iterator[None]:
    """RocksDB reports a full disk as a bare Exception: name the folder and the way out."""
    try:
        yield
    except Exception as e:
        if "No space left on device" in str(e):
            raise StateDiskFull(where, e) from None
        raise


PRUNE_EVERY_S = 600.0  # reference history is pruned this often (a pass over every key)
SHUTDOWN_GRACE_S = 10.0  # after SIGTERM, sinks may still flush this long; then they give up
REKEYED_ACK_WAIT_S = 0.5  # a batch's re-keyed records acknowledged before its timers; longer: still sending
# the group evicts a member silent this long: a quick join, and a dead member found soon
SESSION_TIMEOUT_S = SESSION_TIMEOUT_MS / 1000  # kafka.client's session.timeout.ms changes it
# librdkafka's max.poll.interval.ms, which it sends as the rebalance timeout: a coordinator ends a
# rebalance within it, evicting a member that did not rejoin (kafka.client's setting changes it)
REBALANCE_TIMEOUT_MS = 300_000


def _watchdog(abort: threading.Event, grace_s: float) -> None:
    """SIGTERM always ends the process in bounded time: the final checkpoint flushes what it can
    within the grace period; a destination that is down then stops being waited for, and if even
    that does not end the process, it exits without committing (the last checkpoint stands)."""
    time.sleep(grace_s)
    abort.set()
    time.sleep(grace_s)
    log.error("shutdown did not finish in time; exiting, nothing more committed", extra={"grace_s": grace_s})
    logging.shutdown()
    os._exit(1)


_json = msgspec.json.Encoder()


# A repartition topic's marks carry this header; lifemon writes those topics, so no event has one.
MARK_HEADER = "lifemon.mark"


def _encode_rekeyed(item: tuple[str | None, Any]) -> Encoded:
    """A re-keyed event: its new key, and its JSON (pseudonyms already in place). Or a mark
    (key None): [source topic, source partition, time] to one partition (`Monitor._mark`)."""
    key, event = item
    if key is None:
        *mark, partition = event
        return None, _json.encode(mark), [(MARK_HEADER, b"")], partition
    return key.encode(), _json.encode(event), None


def _is_mark(raw: RawRecord) -> bool:
    return any(name == MARK_HEADER for name, _ in raw.headers or ())


def _split_marks(
    raws: list[RawRecord],
) -> tuple[list[RawRecord], list[tuple[str, int, int]], list[DeadLetter]]:
    """A repartition topic's records: (the events, the marks among them, the records that carry
    the mark header but no mark: dead letters, never a reason to stop)."""
    headers = list(map(attrgetter("headers"), raws))
    if not any(headers):
        return raws, [], []
    # lifemon writes events without headers: they are picked out in C, the marks one by one
    headed = list(compress(raws, headers))
    if all(map(_is_mark, headed)):
        events = list(compress(raws, map(not_, headers)))
    else:  # a record with other headers: an event, kept in its place among the events
        events = [r for r in raws if not _is_mark(r)]
        headed = list(filter(_is_mark, headed))
    marks: list[tuple[str, int, int]] = []
    dead: list[DeadLetter] = []
    for r in headed:
        try:
            marks.append(_decode_mark(r.value or b""))
        except (msgspec.DecodeError, msgspec.ValidationError) as e:
            dead.append(DeadLetter(r, "malformed", "", f"not a mark [topic, partition, time]: {e}"))
    return events, marks, dead


_decode_mark = msgspec.json.Decoder(tuple[str, int, int]).decode


def _decode_partials(
    raws: list[RawRecord], decoder: msgspec.json.Decoder
) -> tuple[list[dict[str, Any]], list[DeadLetter]]:
    """A stage's repartition topic's partials (lifemon's own JSON), checked against the detector's
    type of them (`partial`) before its stage keeps any; what is none, a dead letter."""
    partials: list[dict[str, Any]] = []
    dead: list[DeadLetter] = []
    for r in raws:
        try:
            partials.append(msgspec.to_builtins(decoder.decode(r.value or b"")))
        except msgspec.DecodeError as e:
            dead.append(DeadLetter(r, "malformed", "", f"not a partial: {e}"))
    return partials, dead


MARK_EVERY_S = 0.5  # per source partition: a later mark only makes a task wait longer, never wrong


def to_raw(msg: Any) -> RawRecord:
    return RawRecord(
        msg.topic(), msg.partition(), msg.offset(), msg.value(), msg.key(), msg.headers(), msg.timestamp()[1]
    )


def _tombstone(msg: Any) -> bool:
    """A record with a key and no value: on a reference topic, its key deleted."""
    return msg.value() is None and bool(msg.key())


def to_raws(msgs: list[Message]) -> list[RawRecord]:
    """`to_raw` of a batch, built column by column: every step is a C call over the batch, where a
    Python call per record cost as much as decoding it (docs/benchmarks.md)."""
    m = Message
    return list(
        map(
            RawRecord,
            map(m.topic, msgs),
            map(m.partition, msgs),
            map(m.offset, msgs),
            map(m.value, msgs),
            map(m.key, msgs),
            map(m.headers, msgs),
            map(itemgetter(1), map(m.timestamp, msgs)),
        )
    )


class Monitor:
    def __init__(
        self,
        config: Config,
        bootstrap: str,
        ch_client: Any,
        specs: list[DetectorSpec],
        catalog: Catalog,
        pseudonymize: Pseudonymizer,
        progress: Callable[[str], None] | None = None,
    ):
        self.config, self.bootstrap, self.progress = config, bootstrap, progress
        db = config.clickhouse.database
        apply_ddl(ch_client, db, catalog.policy.storage)
        self.engine = Engine(
            specs,
            catalog,
            pseudonymize,
            allowed_lateness_ms=config.allowed_lateness_s * 1000,
            state_dir=config.data_dir / "state" / config.kafka.group_id / uuid.uuid4().hex[:8],
        )
        self.stats = Stats()
        self._said: set[tuple[str, str, str, str]] = set()  # dead-letter reasons logged (`_say_first`)
        # raw-log topics (pgaudit, server_audit, sftp) decode through their parsers, which keep what
        # waits for a partition's next batch in its checkpointed store; the rest decode as they are
        self.decoder = RawDecoder.for_config(
            Decoder.for_config(config),
            config,
            self.stats,
            self.engine.store,
            pseudonymize.sealer(),
            pseudonymize.digest,
        )
        self.stop_event = threading.Event()  # stop consuming; checkpoint what can be
        self.abort_event = threading.Event()  # stop waiting for destinations (SHUTDOWN_GRACE_S after stop)
        client_extra = config.kafka_settings()
        self.producer = Producer(producer_config(bootstrap, client_extra))
        t = config.topics
        tables = Tables.of(ch_client, db, catalog.recipient_book)
        self.alert_sinks: list[Sink] = [
            KafkaTopicSink(self.producer, t.alerts, encode_alert, "alerts→kafka", stop=self.abort_event),
            tables.alerts,
        ]
        # incidents are durable on their topic before the offsets that produced them are committed;
        # `lifemon notify` delivers them from there, `lifemon incidents` lists them from ClickHouse
        # (docs/incidents.md)
        self.incident_sinks: list[Sink] = [
            KafkaTopicSink(
                self.producer, t.incidents, encode_incident, "incidents→kafka", stop=self.abort_event
            ),
            tables.incidents,
        ]
        self.dead_sinks: list[Sink] = [
            KafkaTopicSink(
                self.producer,
                t.dlq,
                withholding_dead_letters(withheld_topics(config), pseudonymize.digest),
                "dlq→kafka",
                stop=self.abort_event,
            ),
            tables.dead_letters,
        ]
        self.rollup_sink, self.deletion_sink, self.contract_sink, self.transfer_sink = (
            tables.rollups,
            tables.deletions,
            tables.contracts,
            tables.transfers,
        )
        self.stats_sink = tables.stats
        self.tables = tables.read_back_together()  # by `save`, once it wrote them all
        self.changelog = Changelog(changelog_producer(bootstrap, client_extra), changelog_topic(config))
        self._unsent_changes: dict[int, tuple[list[Any], dict[str, int]]] = {}  # written, not yet acked
        self.positions: dict[tuple[str, int], int] = {}  # processed, next offset to read
        # source partitions behind and not read from yet -> since when (monotonic; `_holding`)
        self._unread_since: dict[tuple[str, int], float] = {}
        self._unread_released: set[tuple[str, int]] = set()
        self.ref_positions: dict[tuple[str, int], int] = {}
        self._saved_references: dict[tuple[str, int], int] = {}  # ref_positions when `save` began
        # topic -> stream, asked per record
        self.stream_of = {t: s for s, t in config.topics.model_dump().items()} | config.raw_sources.streams()
        self.ref_topics = [config.topic_of(s) for s in REFERENCE_STREAMS]
        self.event_topics = [config.topic_of(s) for s in EVENT_STREAMS] + list(config.raw_sources.streams())
        # re-keying (docs/architecture.md#repartition-topics): every source of a stream sends its
        # events, keyed as a detector needs them, to that (stream, key)'s repartition topic; a raw-log
        # topic (keyed by its shipper) sends even the stream's own key there
        self.engine.rekey_locally = False
        self.deletions = self.engine.deletions = DeletionLedger(catalog.policy)
        self.transfers = self.engine.transfers = TransferLedger(catalog.policy)
        needed = {k for k in self.engine.readers if k[1] != STREAM_KEYS[k[0]] or self._raw_fed(k[0])}
        # a detector's partials travel to its second stage as re-keyed events do (`Engine.stages`)
        staged = {spec.cls.stage: kind for kind, spec in self.engine.stages.items()}
        self.repartition = {
            repartition_topic(config, s, key): (s, key) for s, key in sorted(needed | set(staged))
        }
        self.stage_of = {topic: staged[at] for topic, at in self.repartition.items() if at in staged}
        self._partial_decoders = {
            topic: msgspec.json.Decoder(self.engine.stages[kind].cls.partial)
            for topic, kind in self.stage_of.items()
        }
        # (detector, its task's partition) -> the last mark sent to its stage, and when
        self._stage_marked: dict[tuple[str, int], tuple[int, float]] = {}
        # partition number -> when every input partition of that number here was first found read to
        # its end (marks arriving after keep it behind a moment, again and again: not counted)
        self._read_since: dict[int, float] = {}
        self._stage_watch = StageWatch(config.kafka.group_id)
        self.stream_of |= {topic: s for topic, (s, _) in self.repartition.items()}
        self.rekeyed_by = {  # source topic -> the keys its events are re-keyed by
            topic: [
                key
                for (s, key) in self.repartition.values()
                if s == stream and (key != STREAM_KEYS[s] or topic in config.raw_sources.streams())
            ]
            for topic, stream in self.stream_of.items()
            if topic not in self.repartition
        }
        self.event_topics += list(self.repartition)
        self.partition_count = config.kafka.partitions  # the inputs' own, once prepare has seen them
        self._marked: dict[tuple[str, int], tuple[int, float]] = {}  # source -> last mark, when sent
        self.repartition_sinks = {
            (s, key): KafkaTopicSink(
                self.producer, topic, _encode_rekeyed, f"{s} by {key}→{topic}", stop=self.abort_event
            )
            for topic, (s, key) in self.repartition.items()
        }
        self.consumer_conf = client_config(bootstrap, config.consumer_settings())
        base = {**self.consumer_conf, "enable.auto.commit": False, "auto.offset.reset": "earliest"}
        self.ref_consumer = consumer(
            {
                **base,
                "group.id": f"{config.kafka.group_id}-reference-{uuid.uuid4().hex[:8]}",
                "fetch.wait.max.ms": 10,  # its view of the reference topics' end stays fresh
            }
        )
        self.refused_before = ReferenceDeadLetters(base, config.kafka.group_id)
        self.consumer = consumer(
            {
                **base,
                "group.id": config.kafka.group_id,
                "partition.assignment.strategy": "range",
            }
        )
        self._saved: dict[tuple[str, int], int] = {}  # offsets of the last stored snapshot per partition
        # the highest offsets this process ever stored, kept across rebalances: a partition's
        # snapshot can move on (another instance), never back, unless the broker lost it
        self._checkpointed: dict[tuple[str, int], int] = {}
        self._restored: set[tuple[str, int]] = set()  # positions from a snapshot, no record read since
        # input partitions restored and not yet dropped; kept here, not asked of the consumer, which
        # refuses once close() has begun destroying it (its revoke callback still checkpoints)
        self._owned: set[tuple[str, int]] = set()
        self._committed: dict[tuple[str, int], int] = {}  # offsets the group has from this instance
        self._pending_alerts: dict[str, Any] = {}  # alert id -> newest revision since the last checkpoint
        self._failed = False  # after an exception nothing half-processed may be checkpointed
        self._retrying = False  # a checkpoint is waiting out a failure (partitions paused)
        self._held: list[Any] = []  # records fetched while paused, processed after the checkpoint
        # partitions a rebalance took while a decode waited for the schema registry (`_decode`):
        # the rest of their batch is the new owner's
        self._taken_while_waiting: set[tuple[str, int]] = set()
        self._previous_handlers: dict[int, Any] = {}
        self._last_checkpoint = time.monotonic()
        self._last_prune = time.monotonic()
        self._last_progress = 0.0
        self._idle_clock = LaggedClock()  # what quiet partitions follow (streams/idleness.py)
        self._assigned_at = time.monotonic()  # the last assignment: `--until-idle` counts from it
        # since when the group owes this instance an assignment (subscribed, or revoked), None once
        # a rebalance gave it one, partitions or none (`_check_group`)
        self._unassigned_since: float | None = time.monotonic()
        self._said_unassigned = False
        self._stamps: dict[tuple[str, int], int] = {}  # Kafka timestamp (ms) of the last record processed
        self._without_id: set[str] = set()  # topics the broker gives no id, said once each

    # -- reference streams ----------------------------------------------------------------------
    def load_reference(self, timeout_s: float = 60.0) -> None:
        """Read entitlements, consents and customers to their end before any event is processed.
        The end here also asks the broker (ListOffsets, once, at start): Tansu answers it with the
        base offset of the last batch + 1, so the larger of that and what fetches report counts."""
        md = self.ref_consumer.list_topics(timeout=10)
        tps = [
            TopicPartition(topic, p, OFFSET_BEGINNING)
            for topic in self.ref_topics
            for p in md.topics[topic].partitions
        ]
        self.ref_positions = {(tp.topic, tp.partition): 0 for tp in tps}
        listed = {
            (tp.topic, tp.partition): self.ref_consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in tps
        }
        self.refused_before.load(tps)
        self.ref_consumer.assign(tps)
        self.catch_up_reference(timeout_s, listed)
        if self.refused_before.again:
            log.info(
                f"{self.refused_before.again} reference records refused at an earlier start were not sent "
                f"to {self.config.topics.dlq} again (`lifemon dead-letters` lists them)",
                extra={"records": self.refused_before.again},
            )

    def catch_up_reference(
        self, timeout_s: float = 60.0, listed: dict[tuple[str, int], int] | None = None
    ) -> None:
        """Read every reference partition to the end its fetches report. The reference consumer
        fetches with a 10 ms wait, so its view of the end trails the broker by about that much: an
        entitlement acknowledged before the accesses that depend on it were even produced is read
        before they are judged. ListOffsets is not asked per batch: Tansu takes 0.5 s to answer it."""
        deadline = time.monotonic() + timeout_s
        while True:
            self.stats.tick()
            self._apply_reference(self.ref_consumer.consume(10_000, 0))
            behind = []
            for (topic, p), pos in self.ref_positions.items():
                _, fetched = self.ref_consumer.get_watermark_offsets(TopicPartition(topic, p), cached=True)
                if max(fetched, (listed or {}).get((topic, p), 0)) > pos:
                    behind.append((topic, p))
            if not behind:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"reference topics not read to their end within {timeout_s}s: {behind}")
            self._apply_reference(self.ref_consumer.consume(10_000, 0.05))

    def _apply_reference(self, msgs: list[Any]) -> None:
        """Reference records to their registries, in offset order per stream: a run of records,
        then the keys a run of tombstones deletes (`Engine.forget_reference`), and so on."""
        by_stream: dict[str, list[Any]] = defaultdict(list)
        for m in msgs:
            if m.error() is None:
                self.ref_positions[(m.topic(), m.partition())] = m.offset() + 1
                by_stream[self.stream_of[m.topic()]].append(m)
        for stream, stream_msgs in by_stream.items():
            for tombstones, run in groupby(stream_msgs, key=_tombstone):
                if tombstones:
                    keys = [m.key().decode("utf-8", "replace") for m in run]
                    self.engine.forget_reference(stream, keys)
                    self.stats.on_consumed(stream, len(keys))
                else:
                    self._apply_records(stream, list(map(to_raw, run)))

    def _apply_records(self, stream: str, raws: list[RawRecord]) -> None:
        if raws:
            decoded = self._decode(stream, raws)
            missed, alerts = self.engine.apply_reference(stream, [r for _, r in decoded.ok])
            self._emit(alerts)
            if missed and stream not in self.stats.late_references:
                log.warning(
                    f"{stream}: a record arrived after lifemon had judged events up to "
                    f"{max(missed) / 1000:.0f} s past its time without it (allowed_lateness_s is "
                    f"{self.config.allowed_lateness_s}). lifemon_late_reference_seconds counts such "
                    "records; if this source ships in batches, raise allowed_lateness_s past its delay "
                    "(docs/operations.md#late-reference-data)",
                    extra={"stream": stream, "records": len(missed)},
                )
            self.stats.on_consumed(stream, len(raws))
            self.stats.on_reference(stream, len(decoded.ok), missed)
            self._dead(stream, decoded.dead)

    # -- partitions -----------------------------------------------------------------------------
    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """The inputs resume from the offsets of the changelog's last commit marker, not from the
        group's."""
        self._assigned_at = time.monotonic()
        self._unassigned_since, self._said_unassigned = None, False
        resume = self.restore([(tp.topic, tp.partition) for tp in partitions])
        for tp in partitions:
            if (tp.topic, tp.partition) in resume:
                tp.offset = resume[(tp.topic, tp.partition)]
        consumer.assign(partitions)

    def restore(self, partitions: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """Each partition number is a task. Its state is rebuilt from its changelog partition, the
        truth wherever the task ran before. Returns the offsets of the changelog's last commit
        marker, where the inputs resume ({} for a partition never checkpointed)."""
        numbers = sorted({p for _, p in partitions})
        # the incarnation of each source topic, before its rollups are restored (Engine.resume)
        self.engine.topic_ids.update(self.topic_ids({t for t, _ in partitions if t not in self.repartition}))
        with _state_disk(self.engine.state_dir):
            stores = {p: self.engine.open_partition(p) for p in numbers}
        try:
            offsets = self.changelog.recover(self.consumer_conf, stores)
        except StateTooNew as e:  # a rollback: say which group's state, so the way out is clear
            raise e.of_group(self.config.kafka.group_id) from None
        for p in numbers:
            self.engine.resume(p)
        resume: dict[tuple[str, int], int] = {}
        for topic, p in partitions:
            offset = offsets[p].get(topic)
            known = self._checkpointed.get((topic, p), 0)
            if (offset or 0) < known:
                raise SourceReset(topic, p, f"its state snapshot resumes at offset {offset or 0}", known)
            if offset and (earlier := self.engine.reincarnated.get((topic, p))):
                raise SourceRecreated(topic, p, offset, earlier, self.engine.topic_ids[topic])
            self._restored.add((topic, p))
            self._owned.add((topic, p))
            if offset is not None:
                resume[(topic, p)] = self.positions[(topic, p)] = self._saved[(topic, p)] = offset
            self._committed.pop((topic, p), None)  # after a rejoin, commit again
        self.stats.on_assigned(len(partitions))
        log.info(f"this instance now runs partitions {numbers}")
        return resume

    def topic_ids(self, topics: set[str]) -> dict[str, str]:
        """Each topic's Kafka topic id (KIP-516), which names its incarnation: the rollups key
        their offset blocks by it, since a topic deleted and re-created starts again at offset 0
        (docs/architecture.md#rollups). One DescribeTopics request per assignment; a broker
        without topic ids gives '' (said once per topic)."""
        if not topics:
            return {}
        # its own client, let go after: one idle for hours would only log its reconnections
        admin = AdminClient(client_config(self.bootstrap, self.config.kafka_settings()))
        found: dict[str, str] = {}
        try:
            for attempt in range(TOPIC_ID_TRIES):
                asked = admin.describe_topics(
                    TopicCollection(sorted(topics - set(found))), request_timeout=10
                )
                for topic, future in asked.items():
                    try:
                        found[topic] = topic_id_of(future.result())
                    except KafkaException as e:
                        if attempt == TOPIC_ID_TRIES - 1:
                            raise TopicIdUnavailable(topic, e.args[0]) from None
                if len(found) == len(topics):
                    break
        finally:
            # its queued log lines served before it goes: librdkafka prints the ones left when a
            # client is destroyed straight to stderr ("Purging 1 unserved events"), outside our format
            admin.poll(0)
        for topic in sorted(t for t, tid in found.items() if not tid and t not in self._without_id):
            self._without_id.add(topic)
            log.warning(
                f"the broker gives {topic} no topic id (a Kafka before 2.8?): if the topic is deleted and "
                "re-created, its new blocks replace the old topic's rows in event_rollups instead of adding "
                "to them",
                extra={"topic": topic},
            )
        return found

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # during a checkpoint's retry nothing new can be saved: the next owner replays from the
        # last marker, which is exactly where this instance's saved state ends
        self.stats.on_revoked()
        self._unassigned_since = time.monotonic()
        if not self._failed and not self._retrying:
            self.checkpoint()
        self._drop([(tp.topic, tp.partition) for tp in partitions])

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """The group moved on without us (session timeout): another instance owns these partitions
        now and resumes from their last snapshot, so drop them without committing anything."""
        self.stats.on_revoked()
        self._unassigned_since = time.monotonic()
        self._drop([(tp.topic, tp.partition) for tp in partitions])

    def _drop(self, partitions: list[tuple[str, int]]) -> None:
        gone = set(partitions)
        self._held = [m for m in self._held if (m.topic(), m.partition()) not in gone]
        for topic, p in partitions:
            self.engine.drop(p)
            self._unsent_changes.pop(p, None)  # its new owner restores the last marker
            self.changelog.forget(p)
            for known in (self.positions, self._saved, self._committed, self._stamps):
                known.pop((topic, p), None)
            self._restored.discard((topic, p))
            self._owned.discard((topic, p))
            if self._retrying:
                self._taken_while_waiting.add((topic, p))

    # -- the loop -------------------------------------------------------------------------------
    def run(self, idle_exit_s: float | None = None, max_seconds: float | None = None) -> Stats:
        """Run until stopped (SIGTERM/SIGINT or stop_event), or idle / time limits for batch jobs."""
        self._install_signals()
        self.prepare()
        try:
            self.consume(idle_exit_s, max_seconds)
        except StoppedInOutage as e:
            self._failed = True  # as below, but the stop was asked for: said, not raised
            log.warning(str(e))
        except BaseException:
            self._failed = True  # resume from the last checkpoint instead: the replay is harmless
            raise
        finally:
            self.close()
        return self.stats

    def prepare(self) -> None:
        """Before consuming: repartition topics exist, inputs are co-partitioned, references loaded."""
        if self.repartition:
            create_missing(
                self.bootstrap,
                self.config,
                dict.fromkeys(self.repartition, REPARTITION_SETTINGS),
                self.config.kafka_settings(),
            )
        topics = self.consumer.list_topics(timeout=10).topics
        self._count_sources(self._check_copartitioned(topics))
        # a raw topic a shipper fills while its source is off: said once, at the start
        for warning in [*unread_raw_topics(self.config, topics), *zones_by_default(self.config)]:
            log.warning(warning)
        with long_lived_load():
            self.load_reference()
            preload_driver()

    def consume(self, idle_exit_s: float | None, max_seconds: float | None) -> None:
        """The consumer loop, then the final checkpoint (the faust runtime has its own)."""
        self.consumer.subscribe(
            self.event_topics, on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
        )
        started = last_data = self._assigned_at = self._unassigned_since = time.monotonic()
        while not self.stop_event.is_set():
            self.stats.tick()
            msgs = self._held or self.consumer.consume(
                self.config.kafka.batch_size, self.config.kafka.poll_timeout_s
            )
            self._held = []
            if msgs:
                last_data = time.monotonic()
                self.catch_up_reference()
                self.process_batch(msgs)
            else:  # quiet: timers still fire on the instance clock (engine.advance)
                if self._flush_raw():  # its events went on to repartition topics: more to come
                    last_data = time.monotonic()
                self._emit(self._advance())
            now = time.monotonic()
            if self.checkpoint_due(now):
                self._check_sources()
                self.checkpoint()
            self.upkeep(now)
            self._check_group(now, batch=idle_exit_s is not None)
            # idle is counted from the later of the last data and the last assignment: a group that
            # waits out dead members assigns late, and a run idle since its start ended 0.7 s after
            # (a probe's, with a checkpoint's timers unraised)
            if self.finished(now, started, max(last_data, self._assigned_at), idle_exit_s, max_seconds):
                break
        self.checkpoint()

    def _check_group(self, now: float, batch: bool) -> None:
        """A group owes an assignment at most a rebalance timeout and a session timeout after it was
        asked: a batch run not given one by then stops (GroupNeverAssigned) rather than end having
        read nothing; a service says so once per wait and waits on (the broker may be mended)."""
        if self._unassigned_since is None or self._said_unassigned:
            return
        waited = now - self._unassigned_since
        bound = self.consumer_conf.get("max.poll.interval.ms", REBALANCE_TIMEOUT_MS) / 1000
        if waited <= bound + self.config.kafka.session_timeout_s:
            return
        group = self.config.kafka.group_id
        if batch:
            raise GroupNeverAssigned(group, waited, "lifemon stops, its last checkpoint stands")
        self._said_unassigned = True
        log.error(
            str(GroupNeverAssigned(group, waited, "lifemon waits on")), extra={"waited_s": round(waited)}
        )

    def checkpoint_due(self, now: float) -> bool:
        """Every `checkpoint_interval_s`, or sooner when that many state keys changed: what a
        checkpoint has not written yet is held in memory (docs/state.md), and a burst (a backlog
        of new customers' records, a replay) must not grow it with the interval's length."""
        return (
            now - self._last_checkpoint >= self.config.checkpoint_interval_s
            or self.engine.dirty_count() >= self.config.checkpoint_dirty_keys
        )

    def upkeep(self, now: float) -> None:
        """Between batches, and while a checkpoint or a decode waits out a destination: prune old
        reference versions now and then (the instance clock does not move meanwhile); lag and
        progress every second."""
        if now - self._last_prune >= PRUNE_EVERY_S:
            self._last_prune = now
            self.engine.prune_references(self.config.reference_history_s * 1000)
        if now - self._last_progress >= 1.0:
            self._last_progress = now
            self._measure_lag()
            stages = self.engine.stage_progress()
            self.stats.on_stages(stages)
            self._stage_watch.observe(stages, time.time())
            if self.progress:
                self.progress(self.stats.line())

    def finished(
        self,
        now: float,
        started: float,
        last_data: float,
        idle_exit_s: float | None,
        max_seconds: float | None,
    ) -> bool:
        """A batch job's end: idle that long with every input caught up, or out of time. At an idle
        end the input has ended, as a replay's does: every task reaches the last event time seen
        (`Engine.drain`), so what waits for the watermark (a push, a transfer) is judged and a live
        batch run ends with a replay's alerts."""
        # records fetched while a checkpoint waited (`_held`) moved the consumer's position but are
        # not processed yet: an end judged by that position would fire timers before them
        # nor while another instance has not marked a source partition it reads: it has read nothing
        # of it yet, and may still re-key anything into the tasks here
        if (
            idle_exit_s is not None
            and not self._held
            and now - last_data >= idle_exit_s
            and self._caught_up()
            and self._whole_or_settled(now)
            and not self.engine.awaiting_first_marks()
        ):
            self._emit(self.engine.drain())
            # the stages' partials and marks this drain sent: read back and settled before the end
            return not self._hand_on(final=True)
        return max_seconds is not None and now - started >= max_seconds

    def _raw_fed(self, stream: str) -> bool:
        return stream in self.config.raw_sources.streams().values()

    def process_batch(self, msgs: list[Any]) -> None:
        errors = list(map(Message.error, msgs))
        if errors.count(None) != len(msgs):
            msgs = [
                m for m, err in zip(msgs, errors, strict=True) if err is None or self._consumer_error(m, err)
            ]
        self.process_records(to_raws(msgs))

    def process_records(self, records: list[RawRecord]) -> None:
        """A batch as consumed (any partitions, offset order within each): decoded per partition,
        judged, its alerts held for the checkpoint; the processed positions move past it."""
        self.stats.begin()
        began = time.perf_counter()
        groups: dict[tuple[str, int], list[RawRecord]] = defaultdict(list)
        # a fetch returns each partition's records in runs: one dict step per run, not per record
        for at, run in groupby(records, key=attrgetter("topic", "partition")):
            groups[at].extend(run)
        alerts = []
        self._taken_while_waiting = set()
        for (topic, partition), raws in groups.items():
            if (topic, partition) in self._taken_while_waiting:
                continue
            stream = self.stream_of[topic]
            rekeyed = self.repartition.get(topic)
            events, marks, bad_marks = _split_marks(raws) if rekeyed is not None else (raws, [], [])
            if topic in self.stage_of:  # a detector's partials and its tasks' marks, to its stage
                partials, bad = _decode_partials(events, self._partial_decoders[topic])
                self._dead(stream, [*bad, *bad_marks])
                self.engine.process_partials(self.stage_of[topic], partition, partials, marks)
            else:
                decoded = self._decode(stream, events, check_time=rekeyed is None)
                if (topic, partition) in self._taken_while_waiting:
                    continue  # a rebalance took it while the registry was waited out: the new owner's now
                self._dead(stream, [*decoded.dead, *bad_marks])
                if decoded.gaps:  # a raw log named what the source mapping lacks
                    self.engine.count_gaps(stream, topic, partition, decoded.gaps)
                if rekeyed is not None:  # counted once, at their source
                    alerts += self.engine.process_rekeyed(stream, rekeyed[1], topic, partition, decoded.ok)
                    self.engine.mark(stream, rekeyed[1], partition, marks)
                else:
                    self.stats.on_consumed(stream, len(raws))
                    alerts += self._process_source(stream, topic, partition, decoded.ok)
                    self.stats.on_decoded(stream, len(decoded.ok), [], sum(decoded.unknown_fields.values()))
            if raws[0].offset < self._saved.get((topic, partition), 0):  # never, unless the broker reset it
                raise SourceReset(
                    topic, partition, f"offset {raws[0].offset} came again", self._saved[(topic, partition)]
                )
            self.positions[(topic, partition)] = raws[-1].offset + 1
            self._stamps[(topic, partition)] = raws[-1].timestamp
            self._restored.discard((topic, partition))
        alerts += self._advance()
        self._emit(alerts)
        self.stats.batches.observe(time.perf_counter() - began)
        self.stats.on_processed()

    @staticmethod
    def _consumer_error(m: Any, err: KafkaError) -> bool:
        """A consumer error in a batch: a vanished topic stops the run; the rest are logged (the end
        of a partition silently). False: the message carries no record."""
        if err.code() in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC):
            raise SourceGone(m.topic())
        if err.code() != KafkaError._PARTITION_EOF:
            log.warning("consumer error", extra={"error": str(err), "topic": m.topic()})
        return False

    def _flush_raw(self) -> bool:
        """Raw-log partitions read to their end: statements their parser kept for a line that did
        not come (a session's last statement) are complete now (docs/sources.md). True when that
        gave events."""
        if not isinstance(self.decoder, RawDecoder):
            return False
        alerts = []
        found = False
        for topic, p in self._assignment():
            if topic not in self.decoder.parsers:
                continue
            end = self._end_offset(topic, p)
            if end < 0 or self.positions.get((topic, p), 0) < end:
                continue
            stream = self.stream_of[topic]
            decoded = self.decoder.flush(stream, topic, p)
            self._dead(stream, decoded.dead)
            if decoded.gaps:
                self.engine.count_gaps(stream, topic, p, decoded.gaps)
            if decoded.ok:
                found = True
                alerts += self._process_source(stream, topic, p, decoded.ok)
                self.stats.on_decoded(stream, len(decoded.ok), [])
        self._emit(alerts)
        return found

    def _process_source(self, stream: str, topic: str, partition: int, decoded: list[Any]) -> list[Any]:
        """A source topic's events: to the detectors reading them as the topic is keyed (only a
        stream's own topic is keyed so), and re-keyed to the repartition topics of other keys."""
        own_topic = topic == self.config.topic_of(stream)
        if own_topic:
            self._check_keys(stream, topic, decoded)  # before the pseudonyms replace the ids it compares
        events = self.engine.ingest(stream, topic, partition, decoded)
        alerts = []
        if own_topic:
            alerts = self.engine.feed(stream, STREAM_KEYS[stream], partition, events)
        for key in self.rekeyed_by[topic]:
            self.repartition_sinks[(stream, key)].send(self.engine.rekeyed_events(stream, key, events))
        if events and self.rekeyed_by[topic]:
            self._mark(topic, partition)
        return alerts

    def _mark(self, topic: str, partition: int) -> None:
        """After a source partition's events, a mark to every partition of each repartition topic
        it feeds: how far that source partition has read, in event time. Behind its records in each
        partition, it tells the tasks there that nothing older is to come from that source
        (`Task._input_time`), whatever the other source partitions delivered meanwhile. At most
        every MARK_EVERY_S per source partition: marks cost partitions x partitions messages, and a
        task that reads an older mark only waits a little longer."""
        at = self.engine.source_times.get((topic, partition), 0)
        last, sent = self._marked.get((topic, partition), (0, 0.0))
        if at > last and time.monotonic() - sent >= MARK_EVERY_S:
            self._send_mark(topic, partition, at)

    def _send_mark(self, topic: str, partition: int, at: int) -> None:
        for key in self.rekeyed_by[topic]:
            sink = self.repartition_sinks[(self.stream_of[topic], key)]
            sink.send([(None, (topic, partition, at, p)) for p in range(self.partition_count)])
        self._marked[(topic, partition)] = (at, time.monotonic())

    def _mark_idle(
        self, clock: int, sources_behind: set[tuple[str, int]], holding: set[tuple[str, int]]
    ) -> None:
        """A source partition with nothing left to read marks the repartition topics it feeds with
        the instance clock as it stood IDLE_AFTER_S ago, as a quiet task follows it: without its
        marks a task there could not tell an idle source from a slow one, and would wait for it.
        One that never delivered an event here, while that clock has not moved (`clock` 0: none of
        this instance's tasks was fed yet), marks `IDLE_MARK` once, IDLE_AFTER_S after its partition
        number here was read to its end (`_read_since`): another instance's task waits for every
        source partition's first mark (`Task.foreign_marks`), and would wait for it for ever. So
        does one behind that no longer holds here (not in `holding`: it reports records and
        delivered none for UNREAD_HOLD_S), at once: it is never read to its end, and holds nothing
        there either."""
        now = time.monotonic()
        for topic, p in self._assignment():
            if not self.rekeyed_by.get(topic) or (topic, p) in holding:
                continue
            released = (topic, p) in sources_behind
            if not released and clock > self.engine.source_times.get((topic, p), 0):
                self.engine.source_times[(topic, p)] = clock
            if (topic, p) in self.engine.source_times:
                self._mark(topic, p)
            elif (topic, p) not in self._marked and (
                released or now - self._read_since.get(p, now) >= IDLE_AFTER_S
            ):
                self._send_mark(topic, p, IDLE_MARK)

    def _emit(self, alerts: list[Any]) -> None:
        """Alerts wait for the checkpoint, newest revision per id: one write per alert and checkpoint."""
        if alerts:
            self.stats.on_alerts(alerts)
            self._pending_alerts = {a.alert_id: a for a in latest([*self._pending_alerts.values(), *alerts])}

    def _advance(self) -> list[Any]:
        """Fire what the watermarks passed; caught-up tasks follow the instance clock as it stood
        IDLE_AFTER_S ago, so another partition's backlog, fetched first, never overtakes them."""
        clock = self._idle_clock.observe(self.engine.clock(), time.monotonic())
        if any(sink.in_flight for sink in self.repartition_sinks.values()):
            # what this batch re-keyed, acknowledged: where it went is then known (`_input_progress`),
            # rather than every partition waiting on it
            self.producer.flush(REKEYED_ACK_WAIT_S)
        caught_up, behind, sources_behind = self._input_progress()
        self._first_read(behind)
        holding = self._holding(sources_behind)
        self._mark_idle(clock, sources_behind, holding)
        owned = [(t, p) for t, p in self._assignment() if t not in self.repartition]
        alerts = self.engine.advance(
            caught_up,
            clock=clock,
            behind=behind,
            sources_behind=holding,
            sources_owned=owned,
        )
        self._hand_on()
        return alerts

    def _hand_on(self, final: bool = False) -> bool:
        """What the detectors' tasks handed their stages (`Engine.partials`), to each stage's
        repartition topic keyed as it reads them; then each task's mark to every partition of it,
        behind those partials: its watermark, up to which it has handed on all it found (at most
        every MARK_EVERY_S a task, or at once at the `final` drain), or that it is idle
        (`_stage_mark`). True: something was sent."""
        for kind, handed in self.engine.partials:
            self.repartition_sinks[self.engine.stages[kind].cls.stage].send(list(handed))
        sent, self.engine.partials = bool(self.engine.partials), []
        now = time.monotonic()
        for kind, stage in self.engine.stages.items():
            spec = next(s for s in self.engine.specs if s.kind == kind)
            for p in sorted({p for _, p in self._assignment()}):
                wm = self._stage_mark(self.engine.task(p, spec), now, final)
                last, at = self._stage_marked.get((kind, p), (IDLE_MARK - 1, 0.0))  # none sent yet
                if wm is None or wm <= last or (not final and now - at < MARK_EVERY_S):
                    continue
                marks = [(None, (kind, p, wm, q)) for q in range(self.partition_count)]
                self.repartition_sinks[stage.cls.stage].send(marks)
                self._stage_marked[(kind, p)] = (wm, now)
                sent = True
        return sent

    def _stage_mark(self, task: Task, now: float, final: bool) -> int | None:
        """What a detector's task marks its stage with: its watermark once it has had input; if it
        has had none, `IDLE_MARK` IDLE_AFTER_S after every input partition of its number here was
        first read to its end (at once at the final drain), as a quiet task follows the clock
        only after that long; else nothing yet. An idle task holds the stage nowhere: an instance
        none of whose tasks ever saw an event had held every day for ever, its clock never moving
        (docs/architecture.md#roll-ups-across-partitions)."""
        if task.stream_time:
            return task.ctx.watermark if task.ctx.watermark > IDLE_MARK else None
        read = self._read_since.get(task.ctx.partition)
        return IDLE_MARK if final or (read is not None and now - read >= IDLE_AFTER_S) else None

    def _first_read(self, behind: set[tuple[str, int]]) -> None:
        """Since when each partition number here had every input read to its end (`_read_since`)."""
        now, owned, busy = time.monotonic(), {p for _, p in self._assignment()}, {p for _, p in behind}
        read = {p: self._read_since.get(p, now) for p in owned - busy}
        self._read_since = {p: since for p, since in (self._read_since | read).items() if p in owned}

    def _holding(self, sources_behind: set[tuple[str, int]]) -> set[tuple[str, int]]:
        """The source partitions behind that hold the re-keyed inputs they feed (Engine._held_by):
        one not read from yet holds them at 0 (its history may come first), but only for
        UNREAD_HOLD_S after this instance found it so: a partition a fetch reports records in and
        never delivers one from (only aborted transactions in it) must not stop the timers for good."""
        now = time.monotonic()
        # counted from the fetch that reported the partition's end: its records are then on the way
        unread = {
            tp for tp in sources_behind if tp not in self.engine.source_times and self._end_offset(*tp) >= 0
        }
        self._unread_since = {tp: self._unread_since.get(tp, now) for tp in unread}
        stale = {tp for tp, since in self._unread_since.items() if now - since > UNREAD_HOLD_S}
        for topic, p in stale - self._unread_released:
            log.warning(
                f"{topic}[{p}] reports records and delivered none in {UNREAD_HOLD_S:.0f} s: it no longer "
                "holds the re-keyed inputs it feeds (docs/architecture.md#event-time)",
                extra={"topic": topic, "partition": p},
            )
        self._unread_released = stale
        return sources_behind - stale

    def _start_offset(self, topic: str, partition: int) -> int:
        """The partition's first offset as the consumer's fetches reported it (0 if none yet)."""
        try:
            lo, _ = self.consumer.get_watermark_offsets(TopicPartition(topic, partition), cached=True)
        except KafkaException:
            return 0
        return max(lo, 0)

    def _end_offset(self, topic: str, partition: int) -> int:
        """The partition's end as the consumer's fetches reported it (-1 if none yet). Not
        ListOffsets: Tansu answers that with the base offset of the last batch + 1."""
        try:
            _, hi = self.consumer.get_watermark_offsets(TopicPartition(topic, partition), cached=True)
        except KafkaException:
            return -1
        return hi

    def _read_to(self) -> dict[tuple[str, int], int]:
        """Per owned partition, the offset the consumer reads next, past the transaction markers a
        transactional producer (Kafka Connect, Debezium with exactly-once) writes after its records:
        processed to its last record, such a partition's end is still one or more offsets ahead."""
        try:
            found = self.consumer.position([TopicPartition(t, p) for t, p in self._assignment()])
        except KafkaException:
            return {}
        return {(tp.topic, tp.partition): tp.offset for tp in found if tp.offset >= 0}

    def _input_progress(self) -> tuple[set[tuple[str, int]], set[tuple[str, int]], set[tuple[str, int]]]:
        """(caught up, behind, sources behind): the (stream, partition) of assigned inputs with
        nothing left to read on every topic that feeds the stream (a raw-log topic feeds `access`
        beside pfi.access), and the others. One whose end no fetch has reported yet is behind, and
        so is a repartition topic with records this instance re-keyed into it and has not read back
        (a fetch reports them only later), or still sending (every partition: any may get them).
        Sources behind: the (topic, partition) of the source topics behind, each of whose records
        may yet be re-keyed into any partition (Engine._held_by)."""
        out: set[tuple[str, int]] = set()
        behind: set[tuple[str, int]] = set()
        sources_behind: set[tuple[str, int]] = set()
        read_to = self._read_to()
        for topic, p in self._assignment():
            end = self._end_offset(topic, p)
            sink = self.repartition_sinks.get(self.repartition[topic]) if topic in self.repartition else None
            if sink is not None:
                end = -1 if sink.in_flight or sink.unsent else max(end, sink.ends.get(p, 0))
            # a partition whose records retention deleted starts at its end: nothing to deliver
            position = max(
                self.positions.get((topic, p), 0), read_to.get((topic, p), 0), self._start_offset(topic, p)
            )
            done = end >= 0 and position >= end
            (out if done else behind).add((self.stream_of[topic], p))
            if not done and sink is None:
                sources_behind.add((topic, p))
        return out - behind, behind, sources_behind

    def _whole_or_settled(self, now: float) -> bool:
        """Every input partition is this instance's, or a session timeout has passed since the last
        assignment: a member killed a moment ago holds the rest until the group evicts it, and
        a batch run given only what was left had ended idle with them unread (a probe's: 19 of 56
        alerts missing after kill -9, exit 0)."""
        whole = len(self._owned) >= len(self.event_topics) * self.partition_count
        return whole or now - self._assigned_at >= self.config.kafka.session_timeout_s

    def _assignment(self) -> list[tuple[str, int]]:
        """The input partitions this instance owns now."""
        return sorted(self._owned)

    def _check_copartitioned(self, topics: dict[str, Any]) -> int:
        """State is kept per partition number, as Kafka Streams keeps it per task: one key's
        records must land in the same partition number on every input and in the changelog
        (`topics`: the broker's, by name). Returns that number."""
        counts = {
            t: len(topics[t].partitions) for t in [*self.event_topics, self.changelog.topic] if t in topics
        }
        if len(set(counts.values())) > 1:
            listed = ", ".join(f"{t}: {n}" for t, n in counts.items())
            raise CopartitionError(
                f"input topics and the state changelog must have the same number of partitions ({listed}); "
                "create them with kafka.partitions partitions (lifemon creates missing ones so), or "
                "add partitions so that all match"
            )
        return max(counts.values(), default=self.config.kafka.partitions)

    def _count_sources(self, partitions: int) -> None:
        """The inputs' partition count, and so the source partitions of each repartition topic."""
        self.partition_count = partitions
        self.engine.repartition_sources = {
            rekeyed: frozenset(
                (topic, p) for topic in self._sources_of(rekeyed) for p in range(self.partition_count)
            )
            for rekeyed in self.repartition.values()
        }
        # a stage's sources: every task of its detector, on every partition, marks it (`_hand_on`)
        for kind, stage in self.engine.stages.items():
            self.engine.repartition_sources[stage.cls.stage] = frozenset(
                (kind, p) for p in range(self.partition_count)
            )

    def _sources_of(self, rekeyed: tuple[str, str]) -> list[str]:
        """The source topics that send events to the repartition topic of (stream, key)."""
        return [
            t for t, keys in self.rekeyed_by.items() if rekeyed[1] in keys and self.stream_of[t] == rekeyed[0]
        ]

    def _check_sources(self, ask_broker: bool = False) -> None:
        """A broker that restarted empty gives the consumer no error, only an assignment that never
        comes back, or (topics re-created) partitions that end before what was read: ask for the
        topic list (one metadata request per checkpoint), compare the ends, and say so.
        `ask_broker` (a failing checkpoint): the fetched ends are those from before the restart,
        the partitions being paused, so the broker is asked whether a topic read is empty now."""
        try:
            existing = self.consumer.list_topics(timeout=5).topics
        except KafkaException:
            return  # unreachable is an outage, not a loss: keep waiting
        missing = [t for t in self.event_topics if t not in existing]
        if missing:
            raise SourceGone(missing[0])
        # a topic re-created empty ends before what was read (the end fetches report: a position
        # just restored from a snapshot is judged once a record of it was read, against a fresh end)
        read = {tp: at for tp, at in self.positions.items() if tp not in self._restored}
        for (topic, partition), position in read.items():
            end = self._end_offset(topic, partition)
            if 0 <= end < position:
                raise SourceReset(topic, partition, f"it ends at offset {end}", position)
        if ask_broker:
            self._check_emptied(read)

    def _check_emptied(self, read: dict[tuple[str, int], int]) -> None:
        """Each topic's furthest-read partition, as the broker answers ListOffsets now: empty is a
        topic re-created (a topic is re-created whole). Only empty counts: Tansu answers ListOffsets
        with the base offset of the last batch + 1, short of the end of any topic with records."""
        furthest: dict[str, tuple[int, int]] = {}
        for (topic, partition), position in read.items():
            if position > furthest.get(topic, (0, 0))[1]:
                furthest[topic] = (partition, position)
        for topic, (partition, position) in sorted(furthest.items()):
            try:
                _, end = self.consumer.get_watermark_offsets(TopicPartition(topic, partition), 1.0, False)
            except KafkaException:
                return  # no answer is no loss: the next retry asks again
            if end == 0:
                raise SourceReset(topic, partition, "the broker says it is empty", position)

    def _check_keys(self, stream: str, topic: str, decoded: list[tuple[RawRecord, Any]]) -> None:
        """Records keyed by something else than their stream's key, or by nothing (a producer's
        default, Filebeat's), land in arbitrary partitions: one actor's window splits across tasks
        and instances, and a burst may raise nothing. Count them and say so once per topic."""
        attr = STREAM_KEYS[stream]
        # compared in one C loop over the batch (streams/_door.c); no key compares unequal
        wrong = _door.misrouted(decoded, attr)
        if wrong:
            if not self.stats.misrouted[stream]:
                keyless = sum(raw.key is None for raw, _ in decoded)
                log.warning(
                    f"records on {topic} are not keyed by {attr}"
                    + (f" ({keyless} of them have no key at all)" if keyless else "")
                    + "; windows may split across partitions and miss what they should find until "
                    f"the producer keys each record by its {attr}",
                    extra={"topic": topic, "records": wrong},
                )
            self.stats.misrouted[stream] += wrong

    def _dead(self, stream: str, dead: list[Any]) -> None:
        if stream in REFERENCE_STREAMS:
            # read again at every start: sent once (streams/reference_dead_letters.py)
            dead = self.refused_before.fresh(dead)
        if dead:
            if stream in REFERENCE_STREAMS:  # no event stream's: the progress line showed `consents=0`
                self.stats.on_dead(stream, dead)
            else:
                self.stats.on_decoded(stream, 0, dead)
            for sink in self.dead_sinks:
                sink.add(dead)
            self._say_first(stream, dead)

    def _say_first(self, stream: str, dead: list[Any]) -> None:
        """The first record refused for each reason, in the log: the operator sees why at once (a
        server's log_line_prefix that differs from the config's, say) instead of a count. Every one
        goes to the dead-letter topic and table with its reason; reasons never hold a value."""
        for d in dead:
            said = (stream, d.kind, d.field, d.message[:60])
            if said in self._said or len(self._said) >= 1000:
                continue
            self._said.add(said)
            log.warning(
                f"{stream} record refused ({' '.join(filter(None, (d.kind, d.field)))}): {d.message}; "
                f"it and every record refused for the same reason go to {self.config.topics.dlq} and the "
                "dead_letters table (`lifemon dead-letters` lists them)",
                extra={"topic": d.raw.topic, "partition": d.raw.partition, "offset": d.raw.offset},
            )

    def checkpoint(self) -> None:
        """Flush every sink and store state (`save`); then commit."""
        began = time.monotonic(), time.process_time()
        self.save()
        self._commit()
        self.checkpointed(began)

    def checkpointed(self, began: tuple[float, float]) -> None:
        """After the commit: the crash test's last point, the reference dead letters the checkpoint
        flushed marked sent (streams/reference_dead_letters.py), and the checkpoint's time observed.
        `began`: its start, monotonic and process CPU seconds."""
        crash_point("after_commit", self.stats.total())
        self.refused_before.mark(self._saved_references)
        self._last_checkpoint = time.monotonic()
        self.stats.checkpoints.observe(self._last_checkpoint - began[0])
        self.stats.on_saved(*began)

    def save(self) -> None:
        """Flush every sink and store state, retrying until they acknowledge (or stop).

        Each sink is flushed on its own, so one destination that is down never holds back the
        others; what a sink acknowledged is never written again."""
        # the reference records read by now: their dead letters are in the sinks flushed below
        self._saved_references = dict(self.ref_positions)
        for sink in self.alert_sinks:
            sink.add(self._pending_alerts.values())
        self._pending_alerts = {}
        incidents = self.engine.take_incidents()
        self.stats.on_incidents(incidents)
        for sink in self.incident_sinks:
            sink.add(incidents)
        backoff, failing_since = 0.5, 0.0
        while True:
            failures: list[SinkError] = []
            # Kafka's own sinks failing: the broker may be back empty, worth asking (not during a
            # ClickHouse outage, whose retries the loop must not slow: /healthz watches it)
            kafka_failing = False
            sinks = [
                *self.repartition_sinks.values(),
                *self.alert_sinks,
                *self.incident_sinks,
                *self.dead_sinks,
            ]
            for sink in sinks:
                try:
                    sink.flush()
                except FatalSinkError as e:
                    # a producer a broker back empty forgot fails for good: say the root cause
                    self._check_sources(ask_broker=isinstance(sink, KafkaTopicSink))
                    log.error(str(e))
                    raise  # flushing the other sinks first would only delay saying so
                except SinkError as e:
                    if isinstance(sink, KafkaTopicSink) and not kafka_failing:
                        # a broker back empty leaves nothing worth retrying for: asked after the
                        # first failure, not after every Kafka sink waited out its flush timeout
                        self._check_sources(ask_broker=True)
                        kafka_failing = True
                    elif not failures:
                        self._check_sources()
                    failures.append(e)
            try:
                if failures:
                    raise failures[0]
                self.rollup_sink.add(self.engine.rollup_rows())
                self.deletion_sink.add(self.deletions.drain())
                self.transfer_sink.add(self.transfers.drain())
                for table in (self.rollup_sink, self.deletion_sink, self.contract_sink, self.transfer_sink):
                    table.flush()
                self._write_stats()
                verify_together(self.tables)
                crash_point("after_flush", self.stats.total())
                self._write_changelog()
                crash_point("after_state", self.stats.total())
                if failing_since:  # said once, as the failure was: the operator sees it end
                    log.info(
                        f"checkpoint written again after {time.monotonic() - failing_since:.0f}s of retries"
                    )
                break
            except FatalSinkError as e:
                log.error(str(e))
                raise  # nothing is committed: a restart resumes from the last good checkpoint
            except SinkError as e:
                log.warning(
                    f"checkpoint failed, retrying in {backoff:.1f}s: {e}", extra={"retry_in_s": backoff}
                )
                failing_since = failing_since or time.monotonic()
                self._check_sources(ask_broker=kafka_failing)  # again: the ends may have come in since
                if self._wait_paused(backoff):
                    raise StoppedInOutage("the last checkpoint could not be written", e) from e
                backoff = min(backoff * 2, 30.0)

    def _decode(self, stream: str, raws: list[RawRecord], check_time: bool = True) -> Any:
        """`Decoder.decode`, waiting out a schema registry it cannot reach, paused in the group as a
        checkpoint waits out a sink: an outage is no record's fault (a probe's monitor died on the
        first Avro record of a schema not cached yet, and again on every restart)."""
        backoff = 0.5
        while True:
            try:
                return self.decoder.decode(stream, raws, check_time=check_time)
            except SchemaRegistryUnavailable as e:
                log.warning(f"{e}; decoding {stream} again in {backoff:.1f}s", extra={"retry_in_s": backoff})
                if self._wait_paused(backoff):
                    raise StoppedInOutage(f"{stream} records could not be decoded", e) from e
                backoff = min(backoff * 2, 30.0)

    def _wait_paused(self, seconds: float) -> bool:
        """Wait out a failed checkpoint while staying in the consumer group: poll with every
        partition paused (a consumer that stops polling is evicted after max.poll.interval.ms and
        its partitions move for nothing). Records a fetch still returns meanwhile are held, and
        processed first once the checkpoint is through. True when asked to stop."""
        self.consumer.pause(self._owned_partitions())
        self._retrying = True
        deadline = time.monotonic() + seconds
        try:
            while (left := deadline - time.monotonic()) > 0:
                self.stats.tick()  # waiting out a destination is no hang
                self.upkeep(time.monotonic())  # the progress line goes on (a probe's fell silent 41 s)
                if self.stop_event.is_set():
                    return True
                # paused: keeps the membership alive
                self._held += [m for m in self.consumer.consume(1000, min(left, 0.2)) if m.error() is None]
        finally:
            self._retrying = False
            self.consumer.resume(self._owned_partitions())  # a rebalance may have come meanwhile
            self._unread_since = {}  # nothing was fetched meanwhile: an unread partition's wait starts anew
        return self.stop_event.is_set()

    def _owned_partitions(self) -> list[TopicPartition]:
        """`_assignment()` as the consumer takes it (not asked of a consumer close() is destroying)."""
        return [TopicPartition(t, p) for t, p in self._assignment()]

    def _write_changelog(self) -> None:
        """Partition numbers that moved, or whose state changed without a record (a timer fired on
        the instance clock), send what changed, then a marker with their offsets, all in one write
        (two round trips). A write that failed is sent again as it was (its changes
        are already out of the store)."""
        moved = {tp[1] for tp, off in self.positions.items() if self._saved.get(tp) != off}
        # a quiet partition read nothing, but its timers may have fired on the instance clock
        moved |= {p for _, p in self.positions if p not in moved and self.engine.changed(p)}
        for p in sorted(moved - set(self._unsent_changes)):
            offsets = {t: off for (t, q), off in self.positions.items() if q == p}
            with _state_disk(self.engine.state_dir):
                self._unsent_changes[p] = (self.engine.changes(p), offsets)
        if not self._unsent_changes:
            return
        self.changelog.write_many(dict(sorted(self._unsent_changes.items())))
        for p, (_, offsets) in self._unsent_changes.items():
            self._saved.update({(t, p): off for t, off in offsets.items()})
            self._checkpointed.update({(t, p): off for t, off in offsets.items()})
        self._unsent_changes = {}

    def _commit(self) -> None:
        """Commit every stored position the group does not have yet, including after a rejoin."""
        due = self.uncommitted()
        if not due:
            return
        try:
            self.consumer.commit(
                offsets=[TopicPartition(t, p, o) for (t, p), o in due.items()], asynchronous=False
            )
            self._committed.update(due)
        except KafkaException as e:
            # not fatal: the snapshot just saved holds these offsets, and a restart resumes from it;
            # the next checkpoint tries again
            log.warning(f"offset commit failed ({e}); the state snapshot has them", extra={"error": str(e)})

    def uncommitted(self) -> dict[tuple[str, int], int]:
        """Offsets of the last stored snapshot that the group does not have from this instance."""
        return {tp: off for tp, off in self._saved.items() if self._committed.get(tp) != off}

    def _write_stats(self) -> None:
        self._measure_lag()
        customers = len(self.engine.customers)  # every instance reads the customers stream whole
        self.stats_sink.add(
            self.stats.pipeline_rows(datetime.now(UTC), self.config.instance, customers=customers)
        )
        self.stats_sink.flush()

    def _measure_lag(self) -> None:
        """Per assigned partition: messages behind its end (as the last fetch reported it), and while
        any are, how old the last record processed from it is (its Kafka timestamp to now): the
        time the consumer trails the producers by. Nothing is asked of the broker."""
        now_ms = time.time() * 1000
        lags, known = {}, bool(self._assignment())
        for at in self._assignment():
            end = self._end_offset(*at)
            known = known and end >= 0
            behind = max(end - self.positions.get(at, 0), 0)
            stamp = self._stamps.get(at)
            age = max(now_ms - stamp, 0.0) / 1000 if behind and stamp and stamp > 0 else 0.0
            lags[(self.stream_of[at[0]], *at)] = (behind, age)
        # none assigned yet, or an end no fetch has reported: not 0 behind, unknown (a probe's
        # restarted run said lag=0 for 7 s with 200 000 records unread)
        self.stats.on_lag(lags, known)

    def _caught_up(self) -> bool:
        """Every assigned input read to its end; with none assigned, a rebalance having given this
        instance nothing (more instances than partitions, or the others took them): it has nothing
        to read, and a batch run beside another ends idle, not never."""
        inputs = {(self.stream_of[topic], p) for topic, p in self._assignment()}
        if not inputs:
            return self._unassigned_since is None
        return self._input_progress()[0] == inputs

    def _install_signals(self) -> None:
        if threading.current_thread() is threading.main_thread():
            # not self: a handler holding the monitor would keep its clients alive
            stop, abort, grace = self.stop_event, self.abort_event, SHUTDOWN_GRACE_S

            def on_signal(*_: Any) -> None:
                if not stop.is_set():
                    stop.set()
                    threading.Thread(target=_watchdog, args=(abort, grace), daemon=True).start()

            for sig in (signal.SIGTERM, signal.SIGINT):
                self._previous_handlers[sig] = signal.signal(sig, on_signal)

    def close(self) -> None:
        """Finish: the consumer leaves the group (its revoke callback checkpoints), producers flush.
        After a failure nothing is left to commit, and leaving a group that a broker back empty is
        rebuilding can block for good: that wait is bounded, the session timeout does the rest."""
        self.stats.on_revoked()
        try:
            if self._failed:
                leaving = threading.Thread(target=self.consumer.close, daemon=True)
                leaving.start()
                leaving.join(SHUTDOWN_GRACE_S)
            else:
                self.consumer.close()
        finally:
            self.ref_consumer.close()
            self.refused_before.close()
            self.producer.flush(5)  # the sinks flushed what matters at the last checkpoint
            # serves its queued log lines too: librdkafka prints the ones still queued when the
            # client is destroyed straight to stderr ("Purging 1 unserved events"), outside our format
            self.changelog.producer.flush(5)
            self.engine.close()
            for sig, handler in self._previous_handlers.items():
                signal.signal(sig, handler)
