"""Where an access event's CPU goes, in process (no broker): decode, the engine's own work
(duplicates, pseudonyms, rollups), then each access detector on top.

    python benchmarks/engine_cost.py [--events 100000] [--runs 3]

Each row is the best of `--runs` rounds of CPU time over the same events, in batches of 5 000 as
the runtime consumes them, with the heap frozen as `lifemon run` freezes it. The ratio column is
the row's cost over the decode's, measured in the same run: machines are noisy, ratios less so.
"""

from __future__ import annotations

import argparse
import copy
import gc
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from detectors import load_detectors  # noqa: E402
from policy import load_policy  # noqa: E402
from policy.catalog import Catalog  # noqa: E402
from schemas.structs import from_model  # noqa: E402
from streams.codecs import Decoder, RawRecord  # noqa: E402
from streams.engine import GC_THRESHOLDS, Engine  # noqa: E402
from streams.pseudonym import Pseudonymizer  # noqa: E402
from streams.workload import generate  # noqa: E402

BATCH = 5000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=100_000, help="access events")
    ap.add_argument("--runs", type=int, default=3, help="rounds; the best counts")
    args = ap.parse_args()
    policy = load_policy()
    catalog = Catalog(policy)
    specs = {s.kind: s for s in load_detectors(policy) if "access" in s.inputs}
    workload = generate(int(args.events / 0.7) + 1000, seed=11, policy=policy)
    access = [r for s, _, r in workload.records if s == "access"][: args.events]
    references = {
        ref: [from_model(ref, r) for s, _, r in workload.records if s == ref]
        for ref in ("entitlements", "customers")
    }
    raws = [
        RawRecord("pfi.access", 0, i, a.model_dump_json().encode(), None, None, a.ts)
        for i, a in enumerate(access)
    ]
    n = len(raws)
    batches = [raws[i : i + BATCH] for i in range(0, n, BATCH)]
    del workload, access
    decoder = Decoder()
    decoded = [decoder.decode("access", b).ok for b in batches]
    pseudonymize = Pseudonymizer(os.urandom(32))
    gc.set_threshold(*GC_THRESHOLDS)

    def decode() -> None:
        for b in batches:
            decoder.decode("access", b)

    def engine(kinds: list[str]) -> Any:
        e = Engine([specs[k] for k in kinds], catalog, pseudonymize)
        for ref, records in references.items():  # copies: the engine pseudonymizes them in place
            e.apply_reference(ref, [r.__copy__() for r in records])
        fresh = copy.deepcopy(decoded)  # pseudonyms replace ids in place, inside the id lists too

        def run() -> None:
            for ok in fresh:
                e.process("access", "pfi.access", 0, ok)
                e.advance()

        return run

    rows: list[tuple[str, Any]] = [
        ("decode (msgspec Structs)", lambda: decode),
        ("engine, no detector", lambda: engine([])),
    ]
    rows += [(f"engine + {k}", lambda k=k: engine([k])) for k in specs]
    rows.append((f"engine + all {len(specs)} access detectors", lambda: engine(list(specs))))
    best: dict[str, float] = {}
    for _ in range(args.runs):
        for name, setup in rows:
            fn = setup()
            gc.collect()
            gc.freeze()
            c0 = time.process_time()
            fn()
            best[name] = min(best.get(name, float("inf")), time.process_time() - c0)
            gc.unfreeze()
    print(
        f"lifemon engine cost: {n} access events, batches of {BATCH}, best of {args.runs}, {os.cpu_count()} cores"
    )
    print(f"{'path':<44}{'CPU µs/event':>14}{'events/CPU-s':>14}{'x decode':>10}")
    base = best[rows[0][0]]
    for name, _ in rows:
        cpu = best[name]
        print(f"{name:<44}{cpu / n * 1e6:>14.2f}{n / cpu:>14,.0f}{cpu / base:>10.1f}")


if __name__ == "__main__":
    main()
