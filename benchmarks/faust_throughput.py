"""The faust-streaming runtime against the native one on the same topics, beside the raw consume
rates measured in the same run (docs/runtimes.md, docs/benchmarks.md).

    python benchmarks/faust_throughput.py [--events 50000] [--mixed] [--bootstrap host:port]

The topics are produced once (JSON); then each of these reads them whole, from the start:
- raw librdkafka consume: the native runtime's client touching each value (the ceiling);
- raw aiokafka consume: faust's client, `getmany`, touching each value;
- raw faust: an agent over `take_events` that only counts (faust's own ceiling);
- lifemon native and lifemon faust: the whole pipeline, the same detectors, sinks and checkpoints.

Prints events/s (wall, from the first record to the last) and events per CPU-second, and the ratio
of each to the librdkafka ceiling.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import faust
from aiokafka import AIOKafkaConsumer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from e2e_throughput import bench_config, measure, raw_consume, workload  # noqa: E402

from streams.clickhouse import connect  # noqa: E402
from streams.embedded import EmbeddedBroker  # noqa: E402
from streams.faust_runtime import SESSION_TIMEOUT_S, FaustMonitor  # noqa: E402
from streams.produce import produce  # noqa: E402
from streams.runtime import Monitor, ensure_topics  # noqa: E402


async def raw_aiokafka(bootstrap: str, topics: list[str], expected: int) -> tuple[float, float]:
    c = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=f"ceiling-{uuid.uuid4().hex}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=int(SESSION_TIMEOUT_S * 1000),
    )
    await c.start()
    n, nbytes, t0, cpu0 = 0, 0, 0.0, 0.0
    while n < expected:
        batches = await c.getmany(timeout_ms=1000, max_records=5000)  # as librdkafka's consume
        if batches and not t0:
            t0, cpu0 = time.perf_counter(), time.process_time()
        for records in batches.values():
            for r in records:
                nbytes += len(r.value or b"")
                n += 1
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    await c.stop()
    return n / wall, n / cpu


async def raw_faust(bootstrap: str, topics: list[str], expected: int, batch: int) -> tuple[float, float]:
    """An agent over the same topics with the runtime's settings that only counts what it takes."""
    app = faust.App(
        f"ceiling-{uuid.uuid4().hex}",
        broker=f"kafka://{bootstrap}",
        datadir=tempfile.mkdtemp(prefix="lifemon-faust-bench-"),
        web_enabled=False,
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        stream_wait_empty=False,
        broker_session_timeout=SESSION_TIMEOUT_S,
        broker_heartbeat_interval=SESSION_TIMEOUT_S / 6,
    )
    seen = {"n": 0, "t0": 0.0, "cpu0": 0.0}

    async def count(stream):
        async for events in stream.take_events(batch, within=0.2):
            if not seen["t0"]:
                seen["t0"], seen["cpu0"] = time.perf_counter(), time.process_time()
            seen["n"] += len(events)

    app.agent(app.topic(*topics, acks=False, key_serializer="raw", value_serializer="raw"))(count)
    await app.start()
    while seen["n"] < expected:
        await asyncio.sleep(0.05)
    wall, cpu = time.perf_counter() - seen["t0"], time.process_time() - seen["cpu0"]
    await app.stop()
    return seen["n"] / wall, seen["n"] / cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=50_000, help="access events (or every stream's, --mixed)")
    ap.add_argument("--mixed", action="store_true", help="every stream and every detector")
    ap.add_argument("--bootstrap", help="use this broker instead of an embedded Tansu")
    args = ap.parse_args()
    specs, catalog, streams, records, n = workload(args.events, args.mixed)
    ch = connect(f"chdb://{tempfile.mkdtemp(prefix='lifemon-bench-')}")
    with EmbeddedBroker() as broker:
        bootstrap = args.bootstrap or broker.bootstrap
        tag = uuid.uuid4().hex[:6]
        config = bench_config(bootstrap, "json", tag)
        ensure_topics(bootstrap, config)
        produce(bootstrap, config, records)
        topics = [config.topic_of(s) for s in streams]
        print(
            f"faust-streaming against the native runtime: {n} events of {', '.join(streams)}, "
            f"detectors {', '.join(s.kind for s in specs)}, {os.cpu_count()} cores, broker {bootstrap}"
        )
        rows = [
            ("raw librdkafka consume", *raw_consume(bootstrap, topics, n), ""),
            ("raw aiokafka consume", *asyncio.run(raw_aiokafka(bootstrap, topics, n)), ""),
            ("raw faust take_events", *asyncio.run(raw_faust(bootstrap, topics, n, 5000)), ""),
        ]
        for name, runtime in (("lifemon native", Monitor), ("lifemon faust", FaustMonitor)):
            wall, cpu, alerts = measure(
                runtime, bench_config(bootstrap, "json", tag), streams, ch, specs, catalog
            )
            rows.append((name, wall, cpu, f"{alerts} alerts"))
        c_wall, c_cpu = rows[0][1], rows[0][2]
        print(f"{'run':<26}{'events/s':>12}{'events/CPU-s':>14}{'ratio (wall)':>14}{'ratio (CPU)':>13}")
        for name, wall, cpu, note in rows:
            print(f"{name:<26}{wall:>12,.0f}{cpu:>14,.0f}{wall / c_wall:>14.3f}{cpu / c_cpu:>13.3f}   {note}")
        native, on_faust = rows[3], rows[4]
        print(f"native / faust: {native[1] / on_faust[1]:.1f}x (wall), {native[2] / on_faust[2]:.1f}x (CPU)")


if __name__ == "__main__":
    main()
