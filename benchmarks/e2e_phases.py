"""Where an end-to-end run's CPU goes, phase by phase: each step of the runtime, the engine and the
sinks, and each detector, timed by the process CPU it spends itself (what it calls that is listed
is counted there, not twice).

    python benchmarks/e2e_phases.py [--events 100000] [--mixed] [--bootstrap host:port]

The same run as `e2e_throughput.py` (JSON only): the workload produced to an embedded Tansu, one
monitor over it to its end, writing to a real chDB. A sampling profiler attributes a C call to its
Python caller and slows the process it samples; this counts `time.process_time()` around the
listed methods instead, so the figures add up. The wrappers cost about a microsecond an event of
their own (`(not listed)` holds it, with the consumer's fetch and the loop's glue). A detector's
generator is run to its end where the engine asks for it, as the engine does.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import pkgutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import e2e_throughput  # noqa: E402

import detectors  # noqa: E402
from streams import engine, runtime  # noqa: E402
from streams.clickhouse import connect  # noqa: E402
from streams.embedded import EmbeddedBroker  # noqa: E402
from streams.sinks import clickhouse, kafka  # noqa: E402

PHASES: list[tuple[Any, list[str]]] = [
    (
        runtime.Monitor,
        ["_decode", "_check_keys", "_process_source", "_advance", "_input_progress", "_emit"]
        + ["catch_up_reference", "checkpoint", "save", "_write_changelog", "_write_stats", "_commit"],
    ),
    (
        engine.Engine,
        ["ingest", "_pseudonymize", "_first_deliveries", "_rollup", "feed", "advance", "process_rekeyed"]
        + ["rekeyed_events", "_alerts", "changes", "rollup_rows"],
    ),
    (clickhouse.ClickHouseTableSink, ["write", "verify"]),
    (kafka.KafkaTopicSink, ["send", "add", "flush"]),
]
DETECTOR_METHODS = ("process", "on_timer")


class Phases:
    """Exclusive process CPU per label: a call's time less the listed calls it made."""

    def __init__(self) -> None:
        self.cpu: Counter[str] = Counter()
        self._stack: list[list[Any]] = []  # [label, CPU time when it last resumed]

    def wrap(self, owner: Any, name: str, eager: bool = False) -> None:
        fn: Callable[..., Any] = getattr(owner, name)
        label = f"{owner.__name__}.{name}"

        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            now = time.process_time()
            if self._stack:
                self.cpu[self._stack[-1][0]] += now - self._stack[-1][1]
            self._stack.append([label, now])
            try:
                result = fn(*args, **kwargs)
                return list(result) if eager else result  # a detector's work is in its generator
            finally:
                now = time.process_time()
                self.cpu[label] += now - self._stack.pop()[1]
                if self._stack:
                    self._stack[-1][1] = now

        setattr(owner, name, timed)


def detector_classes() -> list[type]:
    """Every detector class the detectors package defines (a class with `process` or `on_timer`)."""
    found = []
    for module in pkgutil.iter_modules(detectors.__path__):
        mod = importlib.import_module(f"detectors.{module.name}")
        found += [
            cls
            for _, cls in inspect.getmembers(mod, inspect.isclass)
            if cls.__module__ == mod.__name__ and any(m in cls.__dict__ for m in DETECTOR_METHODS)
        ]
    return found


def main() -> None:
    args = e2e_throughput.arguments(__doc__, 100_000, "access events (or the day's events, --mixed)")
    phases = Phases()
    for owner, names in PHASES:
        for name in names:
            phases.wrap(owner, name)
    for cls in detector_classes():
        for name in DETECTOR_METHODS:
            if name in cls.__dict__:
                phases.wrap(cls, name, eager=True)
    specs, catalog, streams, records, n = e2e_throughput.workload(args.events, args.mixed)
    ch = connect(f"chdb://{tempfile.mkdtemp(prefix='lifemon-bench-')}")
    with EmbeddedBroker() as broker:
        bootstrap = args.bootstrap or broker.bootstrap
        config = e2e_throughput.bench_config(bootstrap, "json")
        e2e_throughput.ensure_topics(bootstrap, config)
        e2e_throughput.produce(bootstrap, config, records, fmt="json")
        phases.cpu.clear()
        began = time.process_time()
        _, per_cpu_s, alerts = e2e_throughput.measure(runtime.Monitor, config, streams, ch, specs, catalog)
        total = time.process_time() - began
    print(
        f"lifemon CPU by phase: {n} events of {', '.join(streams)}, {alerts} alerts; "
        f"{per_cpu_s:,.0f} events per CPU-second from the first record to the last checkpoint; "
        f"{total:.2f} s CPU in all, start-up (group join, reference streams) included"
    )
    print(f"{'phase':<48}{'CPU s':>8}{'µs/event':>10}{'share':>8}")
    listed = sum(phases.cpu.values())
    rows = [*phases.cpu.most_common(), ("(not listed)", total - listed)]
    for label, cpu in rows:
        if cpu >= 0.005:
            print(f"{label:<48}{cpu:>8.2f}{cpu / n * 1e6:>10.2f}{cpu / total:>8.1%}")


if __name__ == "__main__":
    main()
