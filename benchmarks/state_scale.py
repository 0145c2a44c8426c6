"""Keyed state at scale: memory, put, checkpoint and restore cost for 1 M and 10 M keys.

    python benchmarks/state_scale.py --keys 1000000 10000000

Each size runs in its own process, so its peak RSS is its own; one embedded Tansu broker serves
all of them (in its own process, not counted). Values are retention records as a detector keeps
them: [subject pseudonym (26 chars), deadline, class, [2 categories]]. Loading checkpoints every
100,000 puts, as the engine would every few seconds. Only the first --restore-keys keys also go
to the changelog (Tansu keeps topics in memory), and the restore replays those.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

T0 = 1_767_225_600_000
CHECKPOINT_EVERY = 100_000


def retention(i: int) -> list[Any]:
    return [f"P{i:025d}", T0 + i, "C3", ["identity", "account"]]


def status_bytes(field: str) -> int:
    return int(re.search(field + r":\s+(\d+) kB", Path("/proc/self/status").read_text())[1]) << 10  # type: ignore[index]


def measure(n: int, bootstrap: str, restore_keys: int, cache_size: int) -> dict[str, Any]:
    import orjson
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    from streams.changelog import Changelog
    from streams.keyed_state import KeyedStore
    from streams.sinks.kafka import producer_config

    topic = f"lifemon.state.bench.{uuid.uuid4().hex[:6]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})  # alive until its futures resolve
    for fut in admin.create_topics([NewTopic(topic, 2, 1)]).values():
        fut.result()
    log = Changelog(Producer(producer_config(bootstrap, {})), topic)
    tmp = Path(tempfile.mkdtemp(prefix="state-scale-"))
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak: the imports are not the store's
    base_rss = status_bytes("VmRSS")
    out: dict[str, Any] = {"keys": n, "cache": cache_size}

    store = KeyedStore(tmp / "store", cache_size=cache_size)
    checkpoint_s = changelog_s = 0.0
    logged = 0
    start = time.perf_counter()
    for i in range(n):
        store.put(f"C{i:09d}", retention(i))
        if i % CHECKPOINT_EVERY == CHECKPOINT_EVERY - 1 or i == n - 1:
            t = time.perf_counter()
            changes = store.changes()
            checkpoint_s += time.perf_counter() - t
            if logged < restore_keys:
                t = time.perf_counter()
                log.write(0, changes, {"pfi.access:0": i + 1})
                changelog_s += time.perf_counter() - t
                logged += len(changes)
    out["put_s"] = time.perf_counter() - start - changelog_s
    out["checkpoint_all_s"] = checkpoint_s  # encode + RocksDB write of every key, in 100k slices
    out["changelog_all_s"], out["changelog_keys"] = changelog_s, logged

    # A 1% checkpoint: change every 100th key in place.
    t = time.perf_counter()
    for i in range(0, n, 100):
        key = f"C{i:09d}"
        store.get(key)[1] += 86_400_000
        store.touch(key)
    out["update_1pct_s"] = time.perf_counter() - t
    t = time.perf_counter()
    changes = store.changes()
    out["checkpoint_1pct_s"], out["changed"] = time.perf_counter() - t, len(changes)
    t = time.perf_counter()
    log.write(1, changes, {"pfi.access:1": n})  # partition 1: keeps partition 0 the bulk load
    out["changelog_1pct_s"] = time.perf_counter() - t
    out["peak_rss"] = status_bytes("VmHWM") - base_rss
    store.close()
    out["disk_bytes"] = store.disk_bytes()

    restored = KeyedStore(tmp / "restored", cache_size=cache_size)
    t = time.perf_counter()
    offsets = Changelog.restore({"bootstrap.servers": bootstrap}, topic, 0, restored)
    out["restore_s"] = time.perf_counter() - t
    out["restored_ok"] = offsets == {
        "pfi.access:0": min(n, -(-restore_keys // CHECKPOINT_EVERY) * CHECKPOINT_EVERY)
    }
    out["restored_ok"] &= all(restored.get(f"C{i:09d}") == retention(i) for i in range(0, logged, 9_973))
    out["peak_rss_with_restore"] = status_bytes("VmHWM") - base_rss
    restored.destroy()
    KeyedStore(tmp / "store").destroy()

    # Today's checkpoint, for scale: one JSON blob of every key (only where the dict fits).
    if n <= 2_000_000:
        blob = {f"C{i:09d}": retention(i) for i in range(n)}
        t = time.perf_counter()
        out["blob_bytes"] = len(orjson.dumps(blob))
        out["blob_s"] = time.perf_counter() - t
    return out


def table(rows: list[dict[str, Any]]) -> str:
    mib = 1 << 20
    lines = [
        "| keys | load: put + checkpoints | peak RSS | RocksDB disk | checkpoint 1% (store + changelog) | checkpoint all: store | "
        "all to changelog | restore from changelog | today: one JSON blob |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        n = r["keys"]
        blob = f"{r['blob_s']:.2f} s ({r['blob_bytes'] / mib:.0f} MiB)" if "blob_s" in r else "n/a"
        lines.append(
            f"| {n:,} | {r['put_s']:.1f} s ({r['put_s'] / n * 1e6:.1f} µs/key) "
            f"| {r['peak_rss'] / mib:.0f} MiB ({r['peak_rss'] / n:.0f} B/key) "
            f"| {r['disk_bytes'] / mib:.0f} MiB "
            f"| {r['changed']:,} keys: {r['checkpoint_1pct_s'] * 1e3:.0f} ms + {r['changelog_1pct_s'] * 1e3:.0f} ms "
            f"| {r['checkpoint_all_s']:.1f} s "
            f"| {r['changelog_keys']:,} keys: {r['changelog_all_s']:.1f} s "
            f"| {r['changelog_keys']:,} keys: {r['restore_s']:.1f} s "
            f"({r['changelog_keys'] / r['restore_s'] / 1e3:.0f} k/s){'' if r['restored_ok'] else ' MISMATCH'} "
            f"| {blob} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keys", type=int, nargs="+", default=[1_000_000, 10_000_000])
    ap.add_argument("--restore-keys", type=int, default=1_000_000, help="keys also written to the changelog")
    ap.add_argument("--cache", type=int, default=100_000, help="KeyedStore cache_size")
    ap.add_argument("--bootstrap", help="a broker to use; default: an embedded Tansu")
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)  # the child process: one size
    args = ap.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.bootstrap, args.restore_keys, args.cache)))
        return

    from streams.embedded import EmbeddedBroker

    broker = None if args.bootstrap else EmbeddedBroker().start()
    bootstrap = args.bootstrap or broker.bootstrap  # type: ignore[union-attr]
    rows = []
    try:
        for n in args.keys:
            child = [sys.executable, __file__, "--one", str(n), "--bootstrap", bootstrap]
            child += ["--restore-keys", str(args.restore_keys), "--cache", str(args.cache)]
            result = subprocess.run(child, stdout=subprocess.PIPE, text=True, check=True)
            rows.append(json.loads(result.stdout.strip().splitlines()[-1]))
            print(json.dumps(rows[-1]), file=sys.stderr)
    finally:
        if broker:
            broker.stop()
    print(table(rows))


if __name__ == "__main__":
    main()
