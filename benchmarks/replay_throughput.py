"""`lifemon replay` over the generated bank day as files, at growing sizes: does its rate per event
hold as the input grows? Every stream, every detector, JSON lines.

    python benchmarks/replay_throughput.py [--events 200000 800000]

Per size: events per CPU-second of the whole replay (its reference files read and applied first,
counted too), the ceiling measured in the same run (reading the same event files into records, what a
replay cannot do without), their ratio, and the rate against the smallest size's. The generated
day grows in customers and staff with its size, so some loss per event is the workload's.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from detectors import load_detectors  # noqa: E402
from policy import load_policy  # noqa: E402
from policy.catalog import Catalog  # noqa: E402
from schemas.models import REFERENCE_STREAMS  # noqa: E402
from streams.codecs import Decoder  # noqa: E402
from streams.engine import Engine  # noqa: E402
from streams.pseudonym import Pseudonymizer  # noqa: E402
from streams.replay import read_raw, replay, stream_of_file  # noqa: E402
from streams.workload import generate, write_files  # noqa: E402


def ceiling(files: list[Path]) -> tuple[int, float]:
    """(events, per CPU-second) of reading the event files into records."""
    c0, n = time.process_time(), 0
    for path in files:
        n += sum(1 for _ in read_raw(path))
    return n, n / (time.process_time() - c0)


def one_size(events: int, policy, catalog: Catalog, folder: Path) -> tuple[int, float, float, int]:
    files = [p for p in write_files(generate(events, seed=11, policy=policy), folder) if p.suffix == ".jsonl"]
    n, top = ceiling([p for p in files if stream_of_file(p) not in REFERENCE_STREAMS])
    engine = Engine(load_detectors(policy), catalog, Pseudonymizer(os.urandom(32)))
    c0 = time.process_time()
    alerts, _ = replay(engine, Decoder(), files)
    return n, n / (time.process_time() - c0), top, len({a.alert_id for a in alerts})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, nargs="+", default=[200_000, 800_000], help="day sizes")
    args = ap.parse_args()
    policy = load_policy()
    catalog = Catalog(policy)
    print(
        f"lifemon replay benchmark: the generated day as JSON lines, every detector, {os.cpu_count()} cores"
    )
    print(f"{'events':>10}{'events/CPU-s':>14}{'ceiling':>12}{'ratio':>8}{'x smallest':>12}{'alerts':>8}")
    first = None
    for size in sorted(args.events):
        with tempfile.TemporaryDirectory(prefix="lifemon-replay-bench-") as folder:
            n, rate, top, alerts = one_size(size, policy, catalog, Path(folder))
        first = first or rate
        print(f"{n:>10,}{rate:>14,.0f}{top:>12,.0f}{rate / top:>8.3f}{rate / first:>12.2f}{alerts:>8}")


if __name__ == "__main__":
    main()
