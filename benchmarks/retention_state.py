"""The retention_overrun detector's state at scale: N tracked records through the real Engine.

    python benchmarks/retention_state.py --records 1000000

Records are collected for N/2 customers (two each), transactions kept 5 years from collection, so
every record holds state and a timer (customer, deadline) in its task's RocksDB store. Events go in
batches of 100,000, each followed by a checkpoint (`Engine.changes`), as the runtime would every few
seconds. Prints the feed rate, the peak RSS of the process, the time of one checkpoint at the end
(one batch's changes) and the encoded state per record.

Every checkpoint's changes are also appended to a local file, standing in for the changelog
partition; at the end the partition is restored from it into a fresh store, in chunks of 10,000
entries as `Changelog.restore_many` applies a fetch (the Kafka fetch itself is not timed: Tansu
serves ~210,000 entries/s, docs/state.md), and one customer's record is read back.
"""

from __future__ import annotations

import argparse
import re
import struct
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from detectors import load_detectors  # noqa: E402
from policy import load_policy  # noqa: E402
from policy.catalog import Catalog  # noqa: E402
from schemas.models import LifecycleStage  # noqa: E402
from schemas.structs import STRICT  # noqa: E402
from streams.codecs import RawRecord  # noqa: E402
from streams.engine import Engine  # noqa: E402

T0 = 1_767_225_600_000
BATCH = 100_000


def peak_rss() -> int:
    return int(re.search(r"VmHWM:\s+(\d+) kB", Path("/proc/self/status").read_text())[1]) << 10  # type: ignore[index]


def batch(start: int, n: int) -> list[tuple[RawRecord, object]]:
    cls = STRICT["lifecycle"]
    return [
        (
            RawRecord("l", 0, i, None),
            cls(event_id=f"e{i}", ts=T0 + i, record_id=f"R{i:09d}", subject_id=f"C{i // 2:09d}",
                stage=LifecycleStage.collect, system="core_banking", categories=["payment_account_no", "transaction_record"],
                purpose="payment"),
        )
        for i in range(start, start + n)
    ]  # fmt: skip


def append(log, changes: list[tuple[bytes, bytes | None]]) -> int:
    """Changes as the changelog carries them (key, value or tombstone), length-prefixed; bytes written."""
    out = bytearray()
    for key, value in changes:
        out += struct.pack("<Ii", len(key), -1 if value is None else len(value)) + key + (value or b"")
    log.write(out)
    return len(out)


def entries(path: Path, chunk: int = 10_000) -> Iterator[list[tuple[bytes, bytes | None]]]:
    """The changelog file back, a fetch's worth of entries at a time (streamed: never all in memory)."""
    out: list[tuple[bytes, bytes | None]] = []
    with path.open("rb", buffering=1 << 20) as log:
        while header := log.read(8):
            klen, vlen = struct.unpack("<Ii", header)
            key = log.read(klen)
            out.append((key, None if vlen < 0 else log.read(vlen)))
            if len(out) == chunk:
                yield out
                out = []
    if out:
        yield out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=1_000_000)
    n = ap.parse_args().records
    policy = load_policy()
    spec = next(s for s in load_detectors(policy) if s.kind == "retention_overrun")
    engine = Engine([spec], Catalog(policy), pseudonymize=lambda s: s)
    feed = checkpoint = feed_cpu = checkpoint_cpu = 0.0
    logged = encoded = 0
    log_path = Path(tempfile.mkdtemp(prefix="lifemon-bench-")) / "changelog.bin"
    with log_path.open("wb") as log:
        for start in range(0, n, BATCH):
            events = batch(start, min(BATCH, n - start))
            t, c = time.perf_counter(), time.process_time()
            engine.process("lifecycle", "l", 0, events)
            engine.advance()
            feed += time.perf_counter() - t
            feed_cpu += time.process_time() - c
            t, c = time.perf_counter(), time.process_time()
            last = engine.changes(0)
            checkpoint, checkpoint_cpu = time.perf_counter() - t, time.process_time() - c
            logged += len(last)
            encoded += sum(len(k) + len(v or b"") for k, v in last)
            append(log, last)
            del last  # the changelog holds them, not this process
    fed_rss = peak_rss()
    print(f"records {n:,}  customers {n // 2:,}  changelog entries {logged:,} (state + timers)")
    print(
        f"feed: {n / feed:,.0f} records/s ({feed:.1f} s, {feed_cpu:.1f} s CPU)   checkpoint of the last "
        f"{BATCH:,}: {checkpoint * 1000:.0f} ms ({checkpoint_cpu * 1000:.0f} ms CPU)"
    )
    print(
        f"peak RSS {fed_rss / 2**20:,.0f} MiB   state encoded {encoded / 2**20:,.0f} MiB ({encoded / n:.0f} B/record)"
    )
    t, c = time.perf_counter(), time.process_time()
    store = engine.open_partition(0)  # the local store is dropped: the changelog is the truth
    for chunk in entries(log_path):
        store.apply(chunk)
    engine.resume(0)
    restore, restore_cpu = time.perf_counter() - t, time.process_time() - c
    probe = engine.tasks[(0, spec.kind)].keys.get(f"C{(n - 1) // 2:09d}")
    assert probe is not None and f"R{n - 1:09d}" in probe.records, "the restored store lost a record"
    log_path.unlink()
    print(
        f"restore of {logged:,} entries into a fresh store: {restore:.1f} s, {restore_cpu:.1f} s CPU "
        f"({logged / restore:,.0f} entries/s)"
        f"   peak RSS after {peak_rss() / 2**20:,.0f} MiB"
    )
    engine.close()


if __name__ == "__main__":
    main()
