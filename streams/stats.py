"""One stats object, called by the runtime at fixed points (faust's sensor idea). It feeds the
progress line, the ClickHouse pipeline_stats table and the demo summary."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from schemas.models import Alert
from streams.alerts import latest
from streams.codecs import DeadLetter


@dataclass
class Stats:
    started: float = field(default_factory=time.monotonic)
    events: Counter = field(default_factory=Counter)  # stream -> decoded records
    dead: Counter = field(default_factory=Counter)  # stream -> dead letters
    dead_kinds: Counter = field(default_factory=Counter)  # kind -> dead letters
    misrouted: Counter = field(default_factory=Counter)  # stream -> records not keyed by the stream's key
    unknown_fields: Counter = field(default_factory=Counter)  # stream -> records with fields the schema lacks
    skipped: Counter = field(default_factory=Counter)  # reason -> raw log lines that are no data access
    gaps: Counter = field(default_factory=Counter)  # raw-log object the source mapping lacks -> times seen
    alerts: dict[str, Alert] = field(default_factory=dict)  # alert id -> newest revision
    lag: int = 0
    first_data: float = 0.0  # monotonic time of the first and the latest record, for throughput
    last_data: float = 0.0
    first_cpu: float = 0.0  # process CPU seconds at the same two points: CPU per record, no start-up
    last_cpu: float = 0.0
    _window_start: float = field(default_factory=time.monotonic)
    _window_events: int = 0

    def begin(self) -> None:
        """Records started to arrive (after any group join): the busy time counts from here."""
        if not self.first_data:
            self.first_data, self.first_cpu = time.monotonic(), time.process_time()

    def on_decoded(self, stream: str, ok: int, dead: list[DeadLetter], unknown_fields: int = 0) -> None:
        self.events[stream] += ok
        self.unknown_fields[stream] += unknown_fields
        self.dead[stream] += len(dead)
        self.dead_kinds.update(d.kind for d in dead)
        self._window_events += ok + len(dead)
        self.last_data, self.last_cpu = time.monotonic(), time.process_time()

    def on_alerts(self, alerts: list[Alert]) -> None:
        for a in latest([*alerts, *(self.alerts[x.alert_id] for x in alerts if x.alert_id in self.alerts)]):
            self.alerts[a.alert_id] = a

    def rate(self) -> float:
        """Records per second since the last call (the checkpoint interval)."""
        now = time.monotonic()
        r = self._window_events / max(now - self._window_start, 1e-9)
        self._window_start, self._window_events = now, 0
        return r

    def total(self) -> int:
        return sum(self.events.values()) + sum(self.dead.values())

    def line(self) -> str:
        elapsed = time.monotonic() - self.started
        by_stream = " ".join(f"{s}={n}" for s, n in sorted(self.events.items()))
        busy = self.last_data - self.first_data
        rate = f"{self.total() / busy:,.0f}/s while data flowed" if busy > 0 else f"{elapsed:.0f}s in"
        raw = f"  skipped={sum(self.skipped.values())}  gaps={len(self.gaps)}" if self.skipped else ""
        return (
            f"{self.total():>9} records ({rate})  {by_stream}  "
            f"dlq={sum(self.dead.values())}{raw}  alerts={len(self.alerts)}  lag={self.lag}"
        )
