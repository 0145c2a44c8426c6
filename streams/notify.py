"""`lifemon notify`: delivers incidents from `pfi.incidents` to the configured receivers.

Its own consumer group reads the topic in offset order; an incident's offset is committed only
after every receiver answered 2xx. A receiver that is down is retried with exponential backoff
(only the receivers that failed are asked again), while the consumer stays in its group with its
partitions paused, so nothing behind the incident is skipped and nothing is lost: delivery resumes
where it stopped, after a restart too. Each receiver deduplicates by the incident id (docs/incidents.md).
A revision the response team already closed out (`lifemon incidents resolve` while notify was behind)
is delivered as ended, not fired again (`TeamReviews`).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from clickhouse_connect.driver.exceptions import Error as ClickHouseError
from confluent_kafka import Consumer, KafkaError, TopicPartition

from policy import load_policy
from streams.clickhouse import ClickHouseUnavailable, connect
from streams.config import Config
from streams.incident_query import UNJUDGED, Standing, owing, standing
from streams.receivers import DeliveryError, HttpReceiver
from streams.reviews import INCIDENTS, query_reviews
from streams.sinks.kafka import client_config

log = logging.getLogger(__name__)

POLL_SLICE_S = 0.2
# reading the team's reviews: short waits, and none for a while after a failure (TeamReviews)
REVIEWS_CONNECT_S, REVIEWS_ANSWER_S, REVIEWS_RETRY_S = 2, 5, 60.0


def bank_zone(config: Config) -> ZoneInfo:
    """The bank's zone (policy recipients.yaml `timezone`): its notices give deadlines in it too."""
    return ZoneInfo(load_policy(config.policy_dir).recipients.timezone)


def tell_closed_out(config: Config, inc: dict[str, Any], review: str) -> list[tuple[str, str | None]]:
    """Each receiver of `notify.receivers` told the incident is closed out (`HttpReceiver.resolve`),
    once: (its name, None), or (its name, why it was not told)."""
    zone = bank_zone(config)
    told: list[tuple[str, str | None]] = []
    for spec in config.notify.receivers:
        try:
            HttpReceiver(spec, zone).resolve(inc, review)
            told.append((spec.name, None))
        except (DeliveryError, ValueError) as e:
            told.append((spec.name, str(e)))
    return told


class TeamReviews:
    """The response team's reviews (`incident_reviews`), read before each revision is delivered: a
    revision a review already closed out (a receiver was down, notify behind, while the team resolved
    it) is delivered as ended (`HttpReceiver.resolve`), where firing it again would page the team for
    what it had finished, and keep Alertmanager repeating it. A revision that grew since is no review's:
    it fires. Only a ClickHouse server is read: the embedded chDB is `lifemon run`'s, and opening it
    here would lock the monitor out of it. A ClickHouse that cannot be read holds nothing back: the
    revision fires, as it would without reviews, and that is said once per outage."""

    def __init__(self, config: Config, client: Any = None):
        dsn = config.clickhouse_dsn()
        self.dsn = None if dsn.startswith("chdb://") and client is None else dsn
        self.database = config.clickhouse.database
        self._client = client
        # after a failure, reviews are not asked for this long: a backlog delivered during an outage
        # must not wait out a connection timeout per incident
        self._retry_at: float | None = None

    def standing(self, incident: dict[str, Any]) -> Standing:
        """Where the team's reviews leave `incident` as it stands (`incident_query.standing`):
        closed out, a report still owed, or unreviewed; unjudged while they cannot be read."""
        if self.dsn is None or (self._retry_at is not None and time.monotonic() < self._retry_at):
            return UNJUDGED
        try:
            if self._client is None:
                self._client = connect(self.dsn, REVIEWS_CONNECT_S, REVIEWS_ANSWER_S)
            reviews = query_reviews(self._client, self.database, incident["incident_id"], INCIDENTS)
        except (ClickHouseUnavailable, ClickHouseError) as e:
            if self._retry_at is None:
                log.warning(
                    f"incident reviews unreadable ({str(e).splitlines()[0][:300]}): incidents are "
                    "delivered firing, a revision the team already closed out too, until ClickHouse answers",
                    extra={"error": str(e)},
                )
            self._retry_at, self._client = time.monotonic() + REVIEWS_RETRY_S, None
            return UNJUDGED
        if self._retry_at is not None:
            log.info("incident reviews readable again")
            self._retry_at = None
        try:
            return standing(incident, reviews)
        except (KeyError, TypeError) as e:  # a record from another producer: fired as it is
            log.warning(
                f"incident {incident['incident_id']} lacks {e} to judge its reviews by; delivered firing"
            )
            return UNJUDGED

    def owing(self, since_days: int) -> list[dict[str, Any]] | None:
        """The incidents still owing a report (`incident_query.owing`); None when unreadable."""
        if self.dsn is None or (self._retry_at is not None and time.monotonic() < self._retry_at):
            return None
        try:
            if self._client is None:
                self._client = connect(self.dsn, REVIEWS_CONNECT_S, REVIEWS_ANSWER_S)
            since = datetime.now(UTC) - timedelta(days=since_days)
            return owing(self._client, self.database, since)
        except (ClickHouseUnavailable, ClickHouseError) as e:
            log.warning(
                f"incidents owing a report unreadable ({str(e).splitlines()[0][:300]}): not posted again"
            )
            self._retry_at, self._client = time.monotonic() + REVIEWS_RETRY_S, None
            return None


class Notifier:
    def __init__(
        self,
        config: Config,
        bootstrap: str,
        receivers: list[HttpReceiver] | None = None,
        reviews: TeamReviews | None = None,
    ):
        self.config = config
        self.receivers = (
            receivers
            if receivers is not None
            else [HttpReceiver(r, bank_zone(config)) for r in config.notify.receivers]
        )
        self.reviews = reviews if reviews is not None else TeamReviews(config)
        self.stop_event = threading.Event()
        self.delivered: Counter = Counter()  # receiver -> incidents it took
        self.failures: Counter = Counter()  # receiver -> failed attempts
        # the incident revision a stop left undelivered, and the receivers that had not taken it
        self.undelivered: tuple[str, int, list[str]] | None = None
        self._deadline: float | None = None  # `max_seconds`: ends a receiver's backoff too
        self.consumer = Consumer(
            client_config(
                bootstrap,
                {
                    "group.id": config.notify.group_id,
                    "enable.auto.commit": False,
                    "auto.offset.reset": "earliest",
                    **config.consumer_settings(),
                },
            )
        )
        self._next: dict[tuple[str, int], int] = {}  # partition -> next offset to deliver
        self._held: list[Any] = []  # returned by a poll while paused: delivered next, in order

    def run(self, idle_exit_s: float | None = None, max_seconds: float | None = None) -> Counter:
        """Deliver until stopped (SIGTERM/SIGINT), or after `idle_exit_s` without a new incident."""
        self._install_signals()
        self.consumer.subscribe(
            [self.config.topics.incidents], on_assign=self._on_assign, on_revoke=self._on_revoke
        )
        started = time.monotonic()
        self._deadline = None if max_seconds is None else started + max_seconds
        self._assigned_at: float | None = None  # idle time counts once the group gave us partitions
        last = 0.0
        resend_at = started  # at the start, then every `resend_s`
        try:
            while not self.stop_event.is_set():
                msg = self._held.pop(0) if self._held else self.consumer.poll(0.5)
                now = time.monotonic()
                if self.config.notify.resend_s and now >= resend_at:
                    self.keep_firing()
                    resend_at = now + self.config.notify.resend_s
                err = msg.error() if msg is not None else None
                if msg is None or err is not None:
                    if err is not None and err.code() != KafkaError._PARTITION_EOF:
                        log.warning("consumer error", extra={"error": str(err)})
                    last = max(last, self._assigned_at or now)
                    if idle_exit_s is not None and self._assigned_at and now - last >= idle_exit_s:
                        break
                    if max_seconds is not None and now - started >= max_seconds:
                        break
                    continue
                tp: tuple[str, int] = (msg.topic(), msg.partition())  # type: ignore[assignment]
                # below `_next`: delivered already (a redelivery after a rebalance)
                if msg.offset() >= self._next.get(tp, -1):  # type: ignore[operator]
                    if not self._deliver(msg):
                        # out of time, a receiver still refusing it: a record tried after it and taken
                        # would commit past it, and the stop would name the last one tried
                        break
                    self._commit(msg)
                # idle counts from the end of a delivery, not the record's arrival: a receiver down for
                # longer than `--until-idle` ended the run 0 with the incidents behind it undelivered
                last = time.monotonic()
        finally:
            self.consumer.close()
        return self.delivered

    def _on_assign(self, _consumer: Any, _partitions: list[TopicPartition]) -> None:
        self._assigned_at = time.monotonic()

    def _on_revoke(self, _consumer: Any, partitions: list[TopicPartition]) -> None:
        """Held records of partitions that moved are the new owner's to deliver."""
        gone = {(tp.topic, tp.partition) for tp in partitions}
        self._held = [m for m in self._held if (m.topic(), m.partition()) not in gone]

    def _deliver(self, msg: Any) -> bool:
        """Every receiver takes the incident (True), or the notifier was asked to stop (False)."""
        try:
            incident = orjson.loads(msg.value())
            incident["incident_id"], incident["revision"]  # noqa: B018 - the fields every receiver keys on
        except (orjson.JSONDecodeError, TypeError, KeyError):
            log.warning(
                f"{msg.topic()}[{msg.partition()}]@{msg.offset()} is not an incident record; skipped",
                extra={"topic": msg.topic(), "partition": msg.partition(), "offset": msg.offset()},
            )
            return True
        judged = self.reviews.standing(incident)
        told = judged.said()
        closed = told if judged.closed else None
        pending = list(self.receivers)
        backoff = self.config.notify.backoff_initial_s
        while pending:
            failed = []
            for receiver in pending:
                try:
                    if closed is None:
                        receiver.send(incident, judged.state, told)
                    else:
                        receiver.resolve(incident, closed)
                    self.delivered[receiver.name] += 1
                except DeliveryError as e:
                    self.failures[receiver.name] += 1
                    failed.append(receiver)
                    log.warning(
                        f"incident {incident['incident_id']} rev {incident['revision']}: {e}; retry in {backoff:.1f}s",
                        extra={"receiver": receiver.name, "retry_in_s": backoff},
                    )
            pending = failed
            if pending and self._wait_paused(backoff):
                self.undelivered = (incident["incident_id"], incident["revision"], [r.name for r in pending])
                return False
            backoff = min(backoff * 2, self.config.notify.backoff_max_s)
        # one line per incident revision delivered: the response team's record of when it was told
        log.info(
            f"incident {incident['incident_id']} rev {incident['revision']} ({incident.get('severity', '?')}) "
            + ("delivered" if closed is None else f"delivered as ended (the team closed it out: {closed})")
            + f" to {', '.join(r.name for r in self.receivers)}",
            extra={"incident_id": incident["incident_id"], "revision": incident["revision"]},
        )
        return True

    def keep_firing(self) -> int:
        """Post every incident still owing a report to the Alertmanager receivers again: Alertmanager
        holds alerts in memory, and a restart of it forgot every open incident, which lifemon had
        posted once (a probe's); and each post moves the alert's end on, so an incident nobody has
        reviewed fires past its last deadline while notify runs. Read from ClickHouse (a server:
        `TeamReviews`), whose reviews close an incident out. Returns the incidents posted; a
        receiver down is said, and tried again next time."""
        managers = [r for r in self.receivers if r.spec.kind == "alertmanager"]
        incidents = self.reviews.owing(self.config.notify.resend_days) if managers else None
        posted = 0
        for inc in incidents or ():
            if not managers or self._stopping():
                break
            judged = self.reviews.standing(inc)
            if judged.closed:  # closed out since the list was read
                continue
            for receiver in list(managers):
                try:
                    # never over a later revision it holds (`HttpReceiver.request`)
                    receiver.send(inc, judged.state, judged.said())
                except DeliveryError as e:  # down: not asked again this pass; the topic's incidents wait less
                    managers.remove(receiver)
                    log.warning(
                        f"incidents owing a report not posted again to {receiver.name} this time: {e}"
                    )
            posted += bool(managers)
        return posted

    def _stopping(self) -> bool:
        return self.stop_event.is_set() or (self._deadline is not None and time.monotonic() >= self._deadline)

    def _wait_paused(self, seconds: float) -> bool:
        """Stay in the group while a receiver is down: poll with every partition paused. True when
        asked to stop, or `max_seconds` is up."""
        assignment = self.consumer.assignment()
        self.consumer.pause(assignment)
        deadline = time.monotonic() + seconds
        try:
            while (left := deadline - time.monotonic()) > 0:
                if self._stopping():
                    return True
                msg = self.consumer.poll(min(left, POLL_SLICE_S))  # paused: keeps the membership alive
                if msg is not None and msg.error() is None:
                    self._held.append(msg)  # fetched before the pause took hold: the consumer is past it
        finally:
            self.consumer.resume(self.consumer.assignment())
        return self._stopping()

    def _commit(self, msg: Any) -> None:
        tp = (msg.topic(), msg.partition())
        self._next[tp] = msg.offset() + 1
        self.consumer.commit(offsets=[TopicPartition(*tp, msg.offset() + 1)], asynchronous=False)

    def _install_signals(self) -> None:
        if threading.current_thread() is threading.main_thread():
            stop = self.stop_event
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: stop.set())
