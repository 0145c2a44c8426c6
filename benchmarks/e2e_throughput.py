"""End-to-end throughput of lifemon, JSON and Avro, against the raw librdkafka consume rate
measured in the same run on the same topics (the ceiling).

    python benchmarks/e2e_throughput.py [--events 200000] [--mixed] [--bootstrap host:port]

Default: access events only, the bulk-query detector. `--mixed`: the generated bank day of every
stream (access, transfer, SDK, marketing, lifecycle, with the reference streams), every detector.

Prints events/s (wall) and events per CPU-second, and the ratio of each to the ceiling. The
monitor writes to a real chDB and commits offsets, exactly as in production.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

from confluent_kafka import Consumer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from detectors import load_detectors  # noqa: E402
from policy import load_policy  # noqa: E402
from policy.catalog import Catalog  # noqa: E402
from schemas.models import EVENT_MODELS, REFERENCE_STREAMS  # noqa: E402
from streams.clickhouse import connect  # noqa: E402
from streams.config import Config, load_config  # noqa: E402
from streams.embedded import EmbeddedBroker  # noqa: E402
from streams.engine import freeze_heap  # noqa: E402
from streams.produce import produce  # noqa: E402
from streams.pseudonym import Pseudonymizer  # noqa: E402
from streams.runtime import Monitor, ensure_topics  # noqa: E402
from streams.workload import generate  # noqa: E402


def raw_consume(bootstrap: str, topics: list[str], expected: int) -> tuple[float, float]:
    """The ceiling: librdkafka fetch + Python touching each value, nothing else. (events/s, per CPU-s)
    Under the collector settings the monitor runs with (streams.engine.freeze_heap): with the
    defaults, young collections that rescan the generated workload held the ceiling to a quarter
    of its rate, and flattered every ratio to it."""
    freeze_heap()
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"ceiling-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
        }
    )
    c.subscribe(topics)
    n, nbytes, t0, cpu0 = 0, 0, 0.0, 0.0
    while n < expected:
        msgs = c.consume(5000, 1.0)
        if msgs and not t0:
            t0, cpu0 = time.perf_counter(), time.process_time()
        for m in msgs:
            if m.error() is None:
                nbytes += len(m.value())
                n += 1
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    c.close()
    return n / wall, n / cpu


def bench_config(bootstrap: str, fmt: str, tag: str | None = None) -> Config:
    """Topics of one format, a fresh group and database; `tag` shares the topics between runs."""
    tag = tag or uuid.uuid4().hex[:6]
    topics = {s: f"bench.{s}.{fmt}.{tag}" for s in [*EVENT_MODELS, "alerts", "incidents", "dlq"]}
    run = uuid.uuid4().hex[:6]
    return load_config(
        None,
        kafka={
            "bootstrap": bootstrap,
            "group_id": f"bench-{run}",
            "partitions": 3,
            "batch_size": 5000,
            "poll_timeout_s": 0.2,
        },
        topics=topics,
        clickhouse={"dsn": "chdb://unused", "database": f"bench_{run}"},
    )


def measure(runtime: type[Monitor], config: Config, streams: list[str], ch, specs, catalog) -> tuple:
    """(events/s, events per CPU-second, alerts) of one monitor over the topics to their end."""
    ensure_topics(config.kafka.bootstrap, config)  # its group's changelog
    monitor = runtime(config, config.kafka.bootstrap, ch, specs, catalog, Pseudonymizer(os.urandom(32)))
    stats = monitor.run(idle_exit_s=2.0, max_seconds=900)
    # from the first record to the checkpoint that saved the last: the group join, reference load
    # and start-up not counted
    wall, cpu = stats.busy()
    events = sum(stats.events[s] for s in streams)
    return events / wall, events / cpu, len(stats.alerts)


def lifemon_run(
    bootstrap: str, fmt: str, n: int, records: list, streams: list[str], ch, specs, catalog
) -> tuple:
    config = bench_config(bootstrap, fmt)
    ensure_topics(bootstrap, config)
    produce(bootstrap, config, records, fmt=fmt)
    ceiling = raw_consume(bootstrap, [config.topic_of(s) for s in streams], n)
    return (*measure(Monitor, config, streams, ch, specs, catalog), ceiling)


def workload(events: int, mixed: bool) -> tuple[list, Catalog, list[str], list, int]:
    """(detectors, catalog, event streams, records to produce, events among them): access events
    and bulk_query, or (`mixed`) the bank day of every stream and every detector."""
    policy = load_policy()
    specs = [s for s in load_detectors(policy) if mixed or s.kind == "bulk_query"]
    streams = [s for s in EVENT_MODELS if s not in REFERENCE_STREAMS] if mixed else ["access"]
    day = generate(events if mixed else int(events / 0.7), seed=11, policy=policy)
    records = [r for r in day.records if r[0] in streams or r[0] in REFERENCE_STREAMS]
    return specs, Catalog(policy), streams, records, sum(r[0] in streams for r in records)


def arguments(doc: str | None, events: int, events_help: str) -> argparse.Namespace:
    """The options of the end-to-end benchmarks (this one and faust_throughput.py)."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=events, help=events_help)
    ap.add_argument("--mixed", action="store_true", help="every stream and every detector")
    ap.add_argument("--bootstrap", help="use this broker instead of an embedded Tansu")
    return ap.parse_args()


def main() -> None:
    args = arguments(__doc__, 200_000, "access events per format")
    specs, catalog, streams, records, n = workload(args.events, args.mixed)
    ch = connect(f"chdb://{tempfile.mkdtemp(prefix='lifemon-bench-')}")
    with EmbeddedBroker() as broker:
        bootstrap = args.bootstrap or broker.bootstrap
        print(
            f"lifemon end-to-end benchmark: {n} events of {', '.join(streams)} per format, "
            f"detectors {', '.join(s.kind for s in specs)}, "
            f"{os.cpu_count()} cores, broker {bootstrap}"
        )
        print(f"{'run':<28}{'events/s':>12}{'events/CPU-s':>14}{'ratio (wall)':>14}{'ratio (CPU)':>13}")
        for fmt in ("json", "avro"):
            wall, cpu, alerts, (c_wall, c_cpu) = lifemon_run(
                bootstrap, fmt, n, records, streams, ch, specs, catalog
            )
            print(
                f"{'raw librdkafka consume':<28}{c_wall:>12,.0f}{c_cpu:>14,.0f}{1:>14.2f}{1:>13.2f}   ({fmt} topic)"
            )
            print(
                f"{'lifemon ' + fmt:<28}{wall:>12,.0f}{cpu:>14,.0f}{wall / c_wall:>14.3f}{cpu / c_cpu:>13.3f}"
                f"   {alerts} alerts"
            )


if __name__ == "__main__":
    main()
