"""One stats object, called by the runtime at fixed points (faust's sensor idea). It feeds the
progress line, the ClickHouse pipeline_stats table, `/metrics` (streams/metrics.py), `/healthz`,
`/readyz` and the demo summary."""

from __future__ import annotations

import time
from bisect import bisect_left
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from schemas.incident import Incident
from schemas.models import REFERENCE_STREAMS, Alert
from streams.alerts import latest
from streams.codecs import DeadLetter

if TYPE_CHECKING:
    from streams.engine import StageProgress

# seconds; a batch of a few thousand events takes milliseconds, a checkpoint waits on its sinks
DURATION_BOUNDS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# seconds a reference record missed the watermark by: a consent system that ships every few minutes,
# hourly or nightly lands in its own bucket (docs/operations.md#late-reference-data)
# the live rate of the progress line: over this many seconds, the log's 10 s line interval
LIVE_RATE_S = 10.0
LATE_BOUNDS = (1.0, 10.0, 60.0, 300.0, 900.0, 3600.0, 21600.0, 86400.0)


@dataclass
class Durations:
    """A histogram of durations in seconds, as Prometheus keeps one: a count per bucket (`le`, upper
    bound included), their sum and count."""

    bounds: tuple[float, ...] = DURATION_BOUNDS
    counts: list[int] = field(default_factory=list)  # one per bound, +Inf last
    total: float = 0.0

    def __post_init__(self) -> None:
        self.counts = self.counts or [0] * (len(self.bounds) + 1)

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(self.bounds, seconds)] += 1
        self.total += seconds

    def cumulative(self) -> list[tuple[str, int]]:
        """(le, observations at or below it) for every bucket, +Inf last."""
        out, running = [], 0
        for bound, n in zip([*map(str, self.bounds), "+Inf"], self.counts, strict=True):
            running += n
            out.append((bound, running))
        return out


Lag = tuple[int, float]  # messages behind the partition's end, and how old the last one processed is (s)


@dataclass
class Stats:
    started: float = field(default_factory=time.monotonic)
    consumed: Counter = field(default_factory=Counter)  # stream -> records read from its topics
    events: Counter = field(default_factory=Counter)  # stream -> decoded records given to the detectors
    references: Counter = field(default_factory=Counter)  # reference stream -> records applied
    dead: Counter = field(default_factory=Counter)  # stream -> dead letters
    dead_kinds: Counter = field(default_factory=Counter)  # (stream, kind) -> dead letters
    misrouted: Counter = field(default_factory=Counter)  # stream -> records not keyed by the stream's key
    # reference stream -> how late its records came that a task had judged past (seconds)
    late_references: dict[str, Durations] = field(default_factory=dict)
    unknown_fields: Counter = field(default_factory=Counter)  # stream -> records with fields the schema lacks
    skipped: Counter = field(default_factory=Counter)  # reason -> raw log lines that are no data access
    gaps: Counter = field(default_factory=Counter)  # raw-log object the source mapping lacks -> times seen
    alerts: dict[str, Alert] = field(default_factory=dict)  # alert id -> newest revision
    opened: Counter = field(default_factory=Counter)  # (detector, severity) -> alerts first seen here
    # (detector, from, to) -> alerts seen here whose newer revision changed their severity
    severity_changes: Counter = field(default_factory=Counter)
    incidents: Counter = field(
        default_factory=Counter
    )  # (leakage classes, severity) -> incidents first seen here
    _incident_ids: set[str] = field(default_factory=set)
    revisions: Counter = field(default_factory=Counter)  # (detector, status) -> alert revisions emitted
    lags: dict[tuple[str, str, int], Lag] = field(default_factory=dict)  # (stream, topic, partition) -> lag
    lag_known: bool = False  # every assigned partition's end reported (`on_lag`)
    stages: list[StageProgress] = field(default_factory=list)  # the stage partitions here (`on_stages`)
    batches: Durations = field(default_factory=Durations)
    checkpoints: Durations = field(default_factory=Durations)
    assigned: int | None = None  # partitions of the last assignment; None: not assigned (or revoked)
    last_tick: float = field(default_factory=time.monotonic)  # the loop's last sign of life
    first_data: float = 0.0  # monotonic time of the first and the latest record, for throughput
    last_data: float = 0.0
    first_cpu: float = 0.0  # process CPU seconds at the same two points: CPU per record, no start-up
    last_cpu: float = 0.0
    # the checkpoint that saved the latest record (wall and CPU seconds): a record is done once its
    # state, alerts and offsets are saved, so its time belongs to the busy time (`busy`)
    tail_wall: float = 0.0
    tail_cpu: float = 0.0
    _tail_of: float = 0.0  # the `last_data` that tail saved
    window_start: float = field(default_factory=time.monotonic)
    _window: Counter = field(default_factory=Counter)  # stream -> records since window_start
    # (when, records by then) of the progress lines of the last LIVE_RATE_S: the live rate's base
    _line_marks: deque = field(default_factory=deque)

    # -- the runtime's calls ------------------------------------------------------------------------
    def begin(self) -> None:
        """Records started to arrive (after any group join): the busy time counts from here."""
        if not self.first_data:
            self.first_data, self.first_cpu = time.monotonic(), time.process_time()

    def on_consumed(self, stream: str, n: int) -> None:
        self.consumed[stream] += n

    def on_decoded(self, stream: str, ok: int, dead: list[DeadLetter], unknown_fields: int = 0) -> None:
        self.events[stream] += ok
        self.unknown_fields[stream] += unknown_fields
        self.on_dead(stream, dead)
        self._window[stream] += ok + len(dead)
        self.last_data, self.last_cpu = time.monotonic(), time.process_time()

    def on_processed(self) -> None:
        """A batch judged (its detectors and timers run): the busy time reaches here."""
        if self.first_data:
            self.last_data, self.last_cpu = time.monotonic(), time.process_time()

    def on_saved(self, began: float, began_cpu: float) -> None:
        """A checkpoint went through, begun at monotonic `began` and CPU `began_cpu`: the first to
        begin after the latest record is that record's last step."""
        if self.last_data and began >= self.last_data and self._tail_of != self.last_data:
            self._tail_of = self.last_data
            self.tail_wall, self.tail_cpu = time.monotonic() - began, time.process_time() - began_cpu

    def busy(self) -> tuple[float, float]:
        """(wall, CPU) seconds from the first record to the latest record saved: start-up, group
        joins and idle time left out, the checkpoint that saved the latest record counted."""
        saved = self._tail_of == self.last_data
        return (
            self.last_data - self.first_data + (self.tail_wall if saved else 0.0),
            self.last_cpu - self.first_cpu + (self.tail_cpu if saved else 0.0),
        )

    def on_dead(self, stream: str, dead: list[DeadLetter]) -> None:
        self.dead[stream] += len(dead)
        self.dead_kinds.update((stream, d.kind) for d in dead)

    def on_reference(self, stream: str, applied: int, missed_ms: list[int]) -> None:
        self.references[stream] += applied
        if missed_ms:
            late = self.late_references.setdefault(stream, Durations(LATE_BOUNDS))
            for ms in missed_ms:
                late.observe(ms / 1000)

    def on_alerts(self, alerts: list[Alert]) -> None:
        """An alert counts once, under the severity it was first seen with here (a counter never
        goes down); a newer revision of another severity counts as a change from the one it had, so
        raised plus changes in minus changes out is every alert at its newest severity, as
        ClickHouse, the report and Grafana count it (probe_v3 L4: an alert raised medium and
        escalated high stayed medium in /metrics alone)."""
        for a in alerts:
            self.revisions[(a.detector, a.status.value)] += 1
        for a in latest([*alerts, *(self.alerts[x.alert_id] for x in alerts if x.alert_id in self.alerts)]):
            known = self.alerts.get(a.alert_id)
            if known is None:
                self.opened[(a.detector, a.severity.value)] += 1
            elif known.severity != a.severity:
                self.severity_changes[(a.detector, known.severity.value, a.severity.value)] += 1
            self.alerts[a.alert_id] = a

    def on_incidents(self, incidents: list[Incident]) -> None:
        """Incident revisions a checkpoint writes: each incident counted once, as first raised here,
        under the first of its classes in policy order, the class Alertmanager's `leakage_class` label
        gives it: a series of every class, exported at 0 from the start (`Known.incidents`), so a
        rule's `increase()` sees the first incident (a probe's CVN sent out without consent, the
        `c3_to_third_party+unconsented_sharing` series born at 1, paged no one)."""
        for i in incidents:
            if i.incident_id not in self._incident_ids:
                self._incident_ids.add(i.incident_id)
                self.incidents[(i.leakage_classes[0], i.severity.value)] += 1

    def on_lag(self, lags: dict[tuple[str, str, int], Lag], known: bool = True) -> None:
        """`known`: every assigned partition's end was reported (else the line says `lag=?`)."""
        self.lags, self.lag_known = lags, known

    def on_stages(self, stages: list[StageProgress]) -> None:
        self.stages = stages  # replaced whole: the ops server's thread reads it

    def on_assigned(self, partitions: int) -> None:
        """Partitions assigned and their state restored: the instance is doing its share."""
        self.assigned = partitions

    def on_revoked(self) -> None:
        self.assigned = None

    def tick(self) -> None:
        self.last_tick = time.monotonic()

    # -- readings -----------------------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        """Reference data read, partitions assigned (an instance the group gave none is ready too:
        it holds its place) and their state restored."""
        return self.assigned is not None

    @property
    def lag(self) -> int:
        return sum(n for n, _ in self.lags.values())

    def rates(self, now: float | None = None) -> dict[str, float]:
        """Records per second on each stream since the last call (the checkpoint interval)."""
        now = time.monotonic() if now is None else now
        span = max(now - self.window_start, 1e-9)
        out = {s: n / span for s, n in self._window.items()}
        self.window_start, self._window = now, Counter()
        return out

    def pipeline_rows(
        self, ts: datetime, instance: str, now: float | None = None, customers: int = 0
    ) -> list[tuple]:
        """This checkpoint's pipeline_stats rows: one per stream, each with that stream's own figures
        (records, dead letters, rate, lag), so the panels may add streams and instances up. `alerts`
        is the instance's count, and `customers` those the customers reference stream names: the
        same on each of its rows."""
        rates = self.rates(now)
        lag: Counter = Counter()
        for (stream, _, _), (n, _) in self.lags.items():
            lag[stream] += n
        streams = sorted(set(self.events) | set(self.dead) | set(lag) | set(rates))
        return [
            (
                ts,
                instance,
                s,
                self.events[s],
                self.dead[s],
                len(self.alerts),
                lag[s],
                rates.get(s, 0.0),
                customers,
            )
            for s in streams
        ]

    def total(self) -> int:
        """The event records read: processed or refused. A refused reference record is in `dead`
        (dlq=), not here: every start reads the reference topics again."""
        return sum(self.events.values()) + sum(n for s, n in self.dead.items() if s not in REFERENCE_STREAMS)

    def line(self, final: bool = False) -> str:
        """The progress line. Live, the rate over the last LIVE_RATE_S (or how long it has been idle):
        a rate averaged from the first record fell tenfold after a pause, as if the monitor had
        slowed (a probe's); `final`, the rate while data flowed."""
        now = time.monotonic()
        total, elapsed = self.total(), now - self.started
        by_stream = " ".join(f"{s}={n}" for s, n in sorted(self.events.items()))
        busy = self.busy()[0]
        marks = self._line_marks
        while marks and marks[0][0] < now - LIVE_RATE_S:
            marks.popleft()
        if not final and self.last_data and now - self.last_data >= LIVE_RATE_S:
            rate = f"idle {now - self.last_data:.0f}s"
        elif not final and marks:
            since, then = marks[0]
            rate = f"{(total - then) / max(now - since, 1e-3):,.0f}/s now"
        else:  # the last line, or the first: no earlier one to compare
            rate = f"{total / busy:,.0f}/s while data flowed" if busy > 0 else f"{elapsed:.0f}s in"
        marks.append((now, total))
        raw = f"  skipped={sum(self.skipped.values())}  gaps={len(self.gaps)}" if self.skipped else ""
        return (
            f"{self.total():>9} records ({rate})  {by_stream}  "
            f"dlq={sum(self.dead.values())}{raw}  alerts={len(self.alerts)}  lag={self.lag if self.lag_known else '?'}"
        )
