"""The faust-streaming runtime: the native runtime's pipeline (streams/runtime.py: decode, engine,
DLQ, sinks, changelog checkpoint) driven by a Faust app instead of a confluent-kafka consumer loop,
for teams that already operate Faust workers. docs/runtimes.md compares the two.

    Faust agent ── stream.take_events(batch_size, within=poll_timeout_s) ──▶ Monitor.process_records
    lifemon's loop, every poll_timeout_s: timers of quiet partitions; every checkpoint_interval_s:
        flush every sink ──▶ state changes + marker to the changelog ──▶ commit the marker's offsets

Faust does the group membership (its co-partitioning assignor), the fetching (aiokafka) and the
batching. It keeps no state and commits nothing: state is the engine's keyed store and changelog,
the sinks are the native runtime's, and so are the reference topics (read to their end before each
batch). Offsets are committed only after every sink acknowledged and the state is stored:
- the input topics are declared `acks=False`, so faust never marks one of their offsets committable
  and its own committer (every `broker_commit_interval`, at a rebalance, at stop) commits none;
- after `save()` returns, lifemon commits the offsets of the marker it has just written, through
  faust's consumer (`_commit`, the driver call faust's committer makes itself);
- a rebalance: the revoke handler checkpoints before the partitions go; the assign handler rebuilds
  each partition from its changelog, and records below the marker's offsets are skipped (faust
  resumes from the group's committed offset, never past the marker, sometimes before it).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Sequence
from typing import Any

import faust
from faust.types import TP

from policy import PolicyError
from streams.codecs import RawRecord
from streams.runtime import SESSION_TIMEOUT_S, Monitor  # noqa: F401 - benchmarks/ import it here

log = logging.getLogger(__name__)
# faust, mode and aiokafka narrate each service's start and each rebalance step at INFO
LIBRARY_LOGGERS = ("faust", "mode", "aiokafka")

# Tansu (and Kafka's group.initial.rebalance.delay) holds a first JoinGroup for about half the
# session timeout: faust's 60 s default meant a 30 s start. The native runtime's (6 s, or
# kafka.client's session.timeout.ms).


def faust_credentials(client: dict[str, Any]) -> faust.SASLCredentials | faust.SSLCredentials | None:
    """The librdkafka security settings of `kafka.client` as faust credentials (PLAIN and SCRAM
    over plaintext or TLS, or TLS alone); anything else is refused with the setting to change."""
    protocol = str(client.get("security.protocol", "PLAINTEXT")).upper()
    if protocol == "PLAINTEXT":
        return None
    context = None
    if protocol in ("SSL", "SASL_SSL"):
        context = ssl.create_default_context(cafile=client.get("ssl.ca.location"))
        if client.get("ssl.certificate.location"):
            context.load_cert_chain(
                client["ssl.certificate.location"],
                client.get("ssl.key.location"),
                client.get("ssl.key.password"),
            )
    if protocol == "SSL":
        return faust.SSLCredentials(context)
    mechanism = str(client.get("sasl.mechanism", client.get("sasl.mechanisms", "PLAIN"))).upper()
    if protocol not in ("SASL_PLAINTEXT", "SASL_SSL") or mechanism not in (
        "PLAIN",
        "SCRAM-SHA-256",
        "SCRAM-SHA-512",
    ):
        raise PolicyError(
            "<config>",
            "kafka.client",
            f"security.protocol {protocol} with sasl.mechanism {mechanism} is not supported by the "
            "faust runtime",
            "use PLAIN or SCRAM-SHA-256/512 over SASL_PLAINTEXT or SASL_SSL, or SSL; or runtime: native",
        )
    return faust.SASLCredentials(
        username=client.get("sasl.username"),
        password=client.get("sasl.password"),
        mechanism=mechanism,
        ssl_context=context,
    )


def to_raw(message: Any) -> RawRecord:
    """A faust message as the decoder takes it (faust keeps the timestamp in float seconds)."""
    return RawRecord(
        message.topic,
        message.partition,
        message.offset,
        message.value,
        message.key,
        message.headers,
        round(message.timestamp * 1000),
    )


class FaustMonitor(Monitor):
    """`Monitor` with its consumer loop replaced by a Faust app (the confluent-kafka group consumer
    it builds is never subscribed; it only answers metadata requests)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.credentials = faust_credentials(self.config.kafka_settings())  # refused settings: at once
        self.app: faust.App | None = None
        self._closing = False  # the final checkpoint began: batches still in faust's buffers wait
        # from a revoke to the next assignment: a batch taken meanwhile is set aside, not processed
        # (faust seeks every assigned partition back to its committed offset when the rebalance ends)
        self._rebalancing = False
        self._error: Exception | None = None  # raised in the agent or a handler, re-raised by the loop
        self._batches = 0
        self._last_data = 0.0  # monotonic time of the latest batch (the loop's start before one)

    def build_app(self) -> faust.App:
        """The Faust app: one agent over every input topic, raw bytes in, batches of records out."""
        k = self.config.kafka
        verbose = logging.getLogger().getEffectiveLevel() <= logging.DEBUG
        for name in LIBRARY_LOGGERS:  # their warnings and errors still come out, in lifemon's format
            logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.WARNING)
        app = faust.App(
            k.group_id,  # faust's consumer group is its app id
            broker=[f"kafka://{server.strip()}" for server in self.bootstrap.split(",")],
            broker_credentials=self.credentials,
            datadir=str(self.config.data_dir / "faust"),
            web_enabled=False,
            topic_disable_leader=True,  # no timers run "on leader" here; no extra topic on the broker
            consumer_auto_offset_reset="earliest",
            stream_wait_empty=False,  # a rebalance waits for the revoke handler's checkpoint instead
            broker_session_timeout=k.session_timeout_s,
            broker_heartbeat_interval=k.session_timeout_s / 6,
        )
        inputs = app.topic(*self.event_topics, acks=False, key_serializer="raw", value_serializer="raw")

        async def judge(stream: Any) -> None:
            async for events in stream.take_events(k.batch_size, within=k.poll_timeout_s):
                try:
                    self._take(events)
                except Exception as e:
                    self._fail(e)
                    return

        app.agent(inputs, name="lifemon-judge")(judge)
        # mode types a receiver as (sender, *args): these take the one argument faust sends
        app.on_partitions_assigned.connect(self._on_assigned)  # type: ignore[arg-type]
        app.on_partitions_revoked.connect(self._on_revoked)  # type: ignore[arg-type]
        return app

    # -- the loop -------------------------------------------------------------------------------
    def consume(self, idle_exit_s: float | None, max_seconds: float | None) -> None:
        asyncio.run(self._serve(idle_exit_s, max_seconds))

    async def _serve(self, idle_exit_s: float | None, max_seconds: float | None) -> None:
        self.app = app = self.build_app()
        await app.start()
        started = self._last_data = time.monotonic()
        try:
            seen = self._batches
            while not self.stop_event.is_set():
                self.stats.tick()
                await asyncio.sleep(self.config.kafka.poll_timeout_s)  # the agent works meanwhile
                if self._error is not None:
                    raise self._error
                if app.should_stop:
                    raise RuntimeError("the faust app stopped on its own (its log above says why)")
                now = time.monotonic()
                if seen == self._batches:  # quiet: timers still fire on the instance clock
                    if self._flush_raw():  # its events went on to repartition topics: more to come
                        self._last_data = now
                    self._emit(self._advance())
                seen = self._batches
                if self.checkpoint_due(now):
                    self._check_sources()
                    await self.checkpoint_async()
                self.upkeep(now)
                if self.finished(now, started, self._last_data, idle_exit_s, max_seconds):
                    break
            if self._error is not None:
                raise self._error
            self._closing = True
            await self.checkpoint_async()
        finally:
            self._closing = True
            await app.stop()

    def _fail(self, error: Exception) -> None:
        """An error in the agent or a rebalance handler stops the loop, which raises it: faust
        would restart the agent or crash the app with a log line, and the CLI could not say it."""
        self._error = error
        self.stop_event.set()

    def _take(self, events: Sequence[Any]) -> None:
        """A batch from `take_events`: records of partitions this instance owns, from the restored
        position on (a batch buffered before a rebalance may hold others), processed as the native
        runtime processes a consumed batch."""
        if self._closing or self._rebalancing:
            return
        records = []
        for event in events:
            m = event.message
            tp = (m.topic, m.partition)
            if tp in self._owned and m.offset >= self.positions.get(tp, 0):
                records.append(to_raw(m))
        if records:
            self._batches += 1
            self._last_data = time.monotonic()
            self.catch_up_reference()
            self.process_records(records)

    async def checkpoint_async(self) -> None:
        """`Monitor.checkpoint` with faust's asynchronous commit: flush and store, then commit."""
        began = time.monotonic(), time.process_time()
        self.save()
        await self._commit_saved()
        self.checkpointed(began)

    async def _commit_saved(self) -> None:
        assert self.app is not None
        owned = set(self._assignment())
        due = {tp: off for tp, off in self.uncommitted().items() if tp in owned}
        if not due:
            return
        # the driver call faust's own committer ends in (ConsumerT, the interface, does not list it)
        offsets = {TP(t, p): off for (t, p), off in due.items()}
        if await self.app.consumer._commit(offsets):  # type: ignore[attr-defined]
            self._committed.update(due)
        else:  # not fatal: the snapshot just saved holds these offsets; the next checkpoint retries
            log.warning("offset commit not accepted (a rebalance?); the state snapshot has them")

    # -- partitions -----------------------------------------------------------------------------
    async def _on_assigned(self, sender: Any, assigned: set[TP], **_: Any) -> None:
        """Faust hands over the whole new assignment (after revoking the whole old one)."""
        mine = sorted((tp.topic, tp.partition) for tp in assigned if tp.topic in self.stream_of)
        try:
            self.restore([tp for tp in mine if tp not in self._owned])
        except Exception as e:  # a changelog that cannot be read: no partition may start without it
            self._fail(e)
            return
        self._rebalancing = False

    async def _on_revoked(self, sender: Any, revoked: set[TP], **_: Any) -> None:
        """Checkpoint, then drop. No batch may be processed from here on: its records would move
        past the marker this checkpoint writes, and the next owner would process them again."""
        self._rebalancing = True
        gone = sorted((tp.topic, tp.partition) for tp in revoked if (tp.topic, tp.partition) in self._owned)
        if not gone:
            return
        self.stats.on_revoked()
        if not (self._failed or self._closing or self._error):
            try:
                await self.checkpoint_async()
            except Exception as e:  # nothing committed: the next owner resumes from the last marker
                self._fail(e)
        self._drop(gone)

    def _end_offset(self, topic: str, partition: int) -> int:
        """The high watermark of faust's latest fetch of the partition (-1 before one)."""
        if self.app is None:
            return -1
        found = self.app.consumer.highwater(TP(topic, partition))
        return -1 if found is None else found

    def _start_offset(self, topic: str, partition: int) -> int:
        """Not known through faust: a partition retention emptied holds for UNREAD_HOLD_S at most."""
        return 0

    def _read_to(self) -> dict[tuple[str, int], int]:
        """Not known through faust: the offsets processed alone decide (a transactional topic's
        markers keep its partitions behind, as before)."""
        return {}

    def _wait_paused(self, seconds: float) -> bool:
        """A failed checkpoint waits here, holding faust's loop, so that no batch or rebalance
        handler runs halfway through it. Faust's consumer thread keeps the group membership
        (heartbeats) meanwhile, up to `broker_max_poll_interval` (1000 s). True when asked to stop.

        It ticks as the native runtime's wait does: `_serve`'s tick cannot run while this holds the
        loop, and a probe's /healthz went 503 a stall period into a ClickHouse outage (a liveness
        probe would have restarted the pod into a start that exits while ClickHouse is down)."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self.stats.tick()
            self.upkeep(time.monotonic())  # the progress line goes on too
            if self.stop_event.wait(min(left, 0.2)):
                return True
        return self.stop_event.is_set()
