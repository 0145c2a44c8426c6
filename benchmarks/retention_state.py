"""The retention_overrun detector's state at scale: N tracked records through the real Engine.

    python benchmarks/retention_state.py --records 1000000

Records are collected for N/2 customers (two each), transactions kept 5 years from collection, so
every record holds state and a timer (customer, deadline) in its task's RocksDB store. Events go in
batches of 100,000, each followed by a checkpoint (`Engine.changes`), as the runtime would every few
seconds. Prints the feed rate, the peak RSS of the process, the time of
one checkpoint at the end (one batch's changes), and the encoded state per record.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=1_000_000)
    n = ap.parse_args().records
    policy = load_policy()
    spec = next(s for s in load_detectors(policy) if s.kind == "retention_overrun")
    engine = Engine([spec], Catalog(policy), pseudonymize=lambda s: s)
    feed = checkpoint = 0.0
    entries = encoded = 0
    for start in range(0, n, BATCH):
        events = batch(start, min(BATCH, n - start))
        t = time.perf_counter()
        engine.process("lifecycle", "l", 0, events)
        engine.advance()
        feed += time.perf_counter() - t
        t = time.perf_counter()
        last = engine.changes(0)
        checkpoint = time.perf_counter() - t
        entries += len(last)
        encoded += sum(len(k) + len(v or b"") for k, v in last)
        del last  # the changelog holds them, not this process
    print(f"records {n:,}  customers {n // 2:,}  changelog entries {entries:,} (state + timers)")
    print(
        f"feed: {n / feed:,.0f} records/s ({feed:.1f} s)   checkpoint of the last {BATCH:,}: {checkpoint * 1000:.0f} ms"
    )
    print(
        f"peak RSS {peak_rss() / 2**20:,.0f} MiB   state encoded {encoded / 2**20:,.0f} MiB ({encoded / n:.0f} B/record)"
    )


if __name__ == "__main__":
    main()
