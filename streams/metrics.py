"""`/metrics`, `/healthz` and `/readyz` for operators (docs/operations.md).

The runtime feeds one Stats object (streams/stats.py); this module only reads it, when Prometheus
scrapes: a custom collector turns its counters into metric families, so the hot path never touches
prometheus-client. Names follow Prometheus conventions: the `lifemon_` prefix, base units
(seconds), `_total` on counters, labels for what varies.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import choose_encoder

from schemas.models import SEVERITY_RANK, Severity
from streams.codecs import DEAD_LETTER_KINDS
from streams.engine import StageProgress
from streams.stats import Durations, Stats

log = logging.getLogger(__name__)


def _counter(
    name: str, doc: str, labels: list[str], values: dict[Any, int], known: Iterable[Any] = ()
) -> CounterMetricFamily:
    """`known`: label values whose series is there at 0 before the first count (Prometheus'
    advice): a series born at 1 has no increase, and a probe's first dead letter and first
    critical incident after a start paged no one (`rate()` and `increase()` read 0)."""
    family = CounterMetricFamily(name, doc, labels=labels)
    for key, value in (dict.fromkeys(known, 0) | values).items():
        family.add_metric(list(key) if isinstance(key, tuple) else [key], value)
    return family


def _histogram(
    name: str, doc: str, durations: Durations | dict[str, Durations], label: str | None = None
) -> HistogramMetricFamily:
    """One histogram, or one per value of `label` (a dict of them)."""
    series = dict(durations) if isinstance(durations, dict) else {"": durations}
    family = HistogramMetricFamily(name, doc, labels=[label] if label else [])
    for value, d in sorted(series.items()):
        counts = list(d.counts)  # one copy: the runtime's thread keeps observing
        snapshot = Durations(d.bounds, counts, d.total)
        family.add_metric([value] if label else [], snapshot.cumulative(), sum_value=snapshot.total)
    return family


def _stage_gauges(stages: Sequence[StageProgress]) -> Iterator[Metric]:
    """How far each stage partition here waits on its detector's tasks (`Engine.stage_progress`)."""
    labels = ["detector", "partition"]
    waiting = GaugeMetricFamily(
        "lifemon_stage_waiting_tasks",
        "Tasks of a detector that never marked this partition of its second stage (retention's roll-up "
        "by system): above 0 for long, the stage settles nothing (docs/operations.md#a-stage-that-waits)",
        labels=labels,
    )
    lag = GaugeMetricFamily(
        "lifemon_stage_lag_seconds",
        "Event time from the least mark of a second stage's tasks, where it stands, to their newest: "
        "growing, its slowest task holds its days back",
        labels=labels,
    )
    for p in stages:
        waiting.add_metric([p.kind, str(p.partition)], len(p.waiting))
        lag.add_metric([p.kind, str(p.partition)], p.lag_ms / 1000)
    yield waiting
    yield lag


class Known(NamedTuple):
    """The label values a running instance may count, each series exported at 0 from the start."""

    streams: Sequence[str] = ()
    detectors: Sequence[str] = ()
    leakage_classes: Sequence[str] = ()

    def dead_letters(self) -> list[tuple[str, str]]:
        return [(s, k) for s in self.streams for k in DEAD_LETTER_KINDS]

    def alerts(self) -> list[tuple[str, str]]:
        return [(d, sev.value) for d in self.detectors for sev in Severity]

    def escalations(self) -> list[tuple[str, str, str]]:
        """An alert's change to a graver severity, the change a rule pages on (a lowering is
        counted when it happens: nothing pages on it)."""
        graver = [
            (a.value, b.value) for a in Severity for b in Severity if SEVERITY_RANK[b] > SEVERITY_RANK[a]
        ]
        return [(d, a, b) for d in self.detectors for a, b in graver]

    def incidents(self) -> list[tuple[str, str]]:
        return [(c, sev.value) for c in self.leakage_classes for sev in Severity]


NONE_KNOWN = Known()  # tests and tools: only what was counted


class StatsCollector:
    """Reads the runtime's Stats at each scrape (copies of its dicts: the runtime keeps writing)."""

    def __init__(self, stats: Stats, known: Known = NONE_KNOWN):
        self.stats, self.known = stats, known

    def collect(self) -> Iterator[Metric]:
        s = self.stats
        yield _counter(
            "lifemon_records_consumed",
            "Records read from Kafka per stream (its own and raw-log topics, reference topics; "
            "repartition copies not again), dead letters included",
            ["stream"],
            dict(s.consumed),
        )
        yield _counter(
            "lifemon_events_processed",
            "Records decoded and given to the detectors (events) or applied (reference data), per stream",
            ["stream"],
            dict(s.events) | dict(s.references),
        )
        yield _counter(
            "lifemon_dead_letters",
            "Records sent to the dead-letter topic, per stream and reason",
            ["stream", "kind"],
            dict(s.dead_kinds),
            self.known.dead_letters(),
        )
        yield _counter(
            "lifemon_alerts",
            "Alerts this instance raised, by detector and severity when first raised (a later change of "
            "severity: lifemon_alert_severity_changes_total)",
            ["detector", "severity"],
            dict(s.opened),
            self.known.alerts(),
        )
        yield _counter(
            "lifemon_alert_severity_changes",
            "Alerts counted in lifemon_alerts_total whose newer revision changed their severity, by detector, "
            "the severity they had and the one they took: lifemon_alerts_total plus the changes to a "
            "severity minus those from it is the alerts at their newest severity",
            ["detector", "from", "to"],
            dict(s.severity_changes),
            self.known.escalations(),
        )
        yield _counter(
            "lifemon_incidents",
            "Leakage incidents this instance raised, by leakage class and severity when first raised",
            ["class", "severity"],
            dict(s.incidents),
            self.known.incidents(),
        )
        yield _counter(
            "lifemon_alert_revisions",
            "Alert revisions emitted (open, updated, closed), by detector",
            ["detector", "status"],
            dict(s.revisions),
        )
        yield _counter(
            "lifemon_misrouted_records",
            "Records not keyed by their stream's key (the producer must key them so)",
            ["stream"],
            dict(s.misrouted),
        )
        lags = s.lags  # replaced whole by the runtime, never changed in place
        messages = GaugeMetricFamily(
            "lifemon_consumer_lag_messages",
            "Records behind the end of each assigned partition",
            labels=["stream", "topic", "partition"],
        )
        seconds = GaugeMetricFamily(
            "lifemon_consumer_lag_seconds",
            "While a partition has records behind: the age of the last record processed from it "
            "(its Kafka timestamp to now); 0 when caught up",
            labels=["stream", "topic", "partition"],
        )
        for (stream, topic, partition), (n, age) in sorted(lags.items()):
            messages.add_metric([stream, topic, str(partition)], n)
            seconds.add_metric([stream, topic, str(partition)], age)
        yield messages
        yield seconds
        yield from _stage_gauges(s.stages)
        yield _histogram(
            "lifemon_batch_duration_seconds",
            "Time to decode a consumed batch, run the detectors on it and queue its outputs",
            s.batches,
        )
        yield _histogram(
            "lifemon_checkpoint_duration_seconds",
            "Time to flush every sink, store the state changelog and commit offsets (retries included)",
            s.checkpoints,
        )
        yield _histogram(
            "lifemon_late_reference_seconds",
            "Reference records (entitlements, consents, customers) dated before a watermark this "
            "instance had already judged past, by how long they missed it: what was judged in "
            "between did not see them (raise allowed_lateness_s past the usual figure)",
            s.late_references,
            "stream",
        )
        yield GaugeMetricFamily(
            "lifemon_assigned_partitions",
            "Input partitions assigned to this instance",
            value=s.assigned or 0,
        )
        yield GaugeMetricFamily(
            "lifemon_ready",
            "1 once reference data is read and partitions assigned and restored",
            value=s.ready,
        )


class _QuietServer(ThreadingHTTPServer):
    """The ops server, its errors in the process's log. socketserver prints a request's failure as a
    raw traceback on stderr, a line that is no JSON object: a scraper that timed out and hung up
    mid-answer (a loaded host: CI under load printed a BrokenPipeError's) is no error of ours."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):  # BrokenPipe, ConnectionReset, ...Aborted
            log.debug("a client hung up before its answer was sent", extra={"client": client_address[0]})
        else:
            log.exception("the ops server failed to answer a request", extra={"client": client_address[0]})


class OpsServer:
    """The operator's HTTP endpoints on a thread of their own, for as long as the `with` lasts.

    - `/metrics`: Prometheus text (or OpenMetrics, if the scraper asks for it);
    - `/healthz`: 200 while the main loop moves (consuming, checkpointing, or waiting out a
      destination that is down), 503 once it has not for `stall_after_s`: restart me;
    - `/readyz`: 200 once reference data is read and the group's partitions are assigned with
      their state restored, 503 before that and during a rebalance: send me no traffic yet."""

    def __init__(self, stats: Stats, host: str, port: int, stall_after_s: float, known: Known = NONE_KNOWN):
        self.registry = CollectorRegistry()
        self.registry.register(StatsCollector(stats, known))
        ProcessCollector(registry=self.registry)  # process_cpu_seconds_total, resident memory, open fds
        registry = self.registry

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    encode, content_type = choose_encoder(self.headers.get("Accept", ""))
                    self._send(200, encode(registry), content_type)
                elif path == "/healthz":
                    quiet = time.monotonic() - stats.last_tick
                    if quiet <= stall_after_s:
                        self._send(200, b"ok\n")
                    else:
                        self._send(503, f"stalled: the main loop has not moved for {quiet:.0f}s\n".encode())
                elif path == "/readyz":
                    if stats.ready:
                        self._send(200, f"ready: {stats.assigned} partition(s) assigned\n".encode())
                    else:
                        self._send(503, b"not ready: reading reference data or waiting for partitions\n")
                else:
                    self._send(404, b"/metrics, /healthz or /readyz\n")

            def _send(self, code: int, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:  # a scrape every few seconds is no news
                pass

        self.server = _QuietServer((host, port), Handler)
        self.host, self.port = host, self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, name="lifemon-ops", daemon=True)

    def __enter__(self) -> OpsServer:
        self._thread.start()
        log.info(
            f"serving /metrics, /healthz and /readyz on http://{self.host}:{self.port}",
            extra={"host": self.host, "port": self.port},
        )
        return self

    def __exit__(self, *_: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
