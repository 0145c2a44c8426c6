"""False alarms of the access detectors on clean generated traffic.

    python benchmarks/false_alarms.py --events 1000000

Generates a bank (streams/workload), feeds its reference streams and every access event through the
engine with `bulk_query` and `unauthorized_lookup` on, in batches as the monitor would, and scores
the alerts against the ground truth as `lifemon demo` does. Clean traffic is everything the generator
did not inject: an alert that matches no injected case is a false alarm, and so is any alert on an
actor that no injected case names (`on clean actors`). Prints one line per detector.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from detectors import load_detectors  # noqa: E402
from policy import load_policy  # noqa: E402
from policy.catalog import Catalog  # noqa: E402
from schemas.models import REFERENCE_STREAMS  # noqa: E402
from schemas.structs import from_model  # noqa: E402
from streams.alerts import latest  # noqa: E402
from streams.codecs import RawRecord  # noqa: E402
from streams.demo import score  # noqa: E402
from streams.engine import Engine  # noqa: E402
from streams.workload import generate  # noqa: E402

DETECTORS = ("bulk_query", "unauthorized_lookup")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--batch", type=int, default=5000, help="access events per engine batch")
    ap.add_argument("--show", type=int, default=5, help="false alarms to print per detector")
    args = ap.parse_args()

    t0 = time.monotonic()
    policy = load_policy()
    wl = generate(args.events, seed=args.seed, policy=policy)
    t_gen = time.monotonic() - t0
    specs = [s for s in load_detectors(policy) if s.kind in DETECTORS]
    engine = Engine(specs, Catalog(policy), pseudonymize=str)
    for s in REFERENCE_STREAMS:
        engine.apply_reference(s, [from_model(s, r) for _, _, r in (x for x in wl.records if x[0] == s)])
    accesses = [r for s, _, r in wl.records if s == "access"]
    alerts = []
    for i in range(0, len(accesses), args.batch):
        batch = [
            (RawRecord("a", 0, i + j, None), from_model("access", e))
            for j, e in enumerate(accesses[i : i + args.batch])
        ]
        alerts += engine.process("access", "a", 0, batch)
        alerts += engine.advance()
    alerts = latest(alerts + engine.drain())
    t_run = time.monotonic() - t0 - t_gen

    injected = {t["key"] for t in wl.truth if t["detector"] in DETECTORS}
    events = sum(1 for s, _, _ in wl.records if s not in REFERENCE_STREAMS)
    clean_events = sum(1 for e in accesses if e.actor_id not in injected)
    print(
        f"{events} events ({len(accesses)} access, {clean_events} of them by actors no injected case names), "
        f"seed {args.seed}; generated in {t_gen:.0f} s, detected in {t_run:.0f} s"
    )
    scored = score(alerts, wl.truth, list(DETECTORS))
    for kind in DETECTORS:
        s = scored[kind]
        mine = [a for a in alerts if a.detector == kind]
        clean = [a for a in mine if a.actor_id not in injected]
        print(
            f"{kind:<20} injected {s['injected']:>4}  found {s['found']:>4}  missed {s['missed']:>3}  "
            f"false alarms {s['false_alarms']:>3}  (on clean actors {len(clean)})"
        )
        for a in clean[: args.show]:
            print(f"    {a.actor_id} {a.severity.value}: {a.summary[:300]}")
    rules = Counter((t["detector"], t["rule"]) for t in wl.truth if t["detector"] in DETECTORS)
    print("injected: " + ", ".join(f"{d}/{r} {n}" for (d, r), n in sorted(rules.items())))
    return 0 if all(scored[k]["false_alarms"] == 0 and scored[k]["missed"] == 0 for k in DETECTORS) else 1


if __name__ == "__main__":
    sys.exit(main())
