"""What a checkpoint writes when traffic is live: changelog bytes per event, by state namespace,
and rollup rows per event, with a checkpoint every `--per` events.

    python benchmarks/checkpoint_bytes.py [--events 60000] [--per 100]

A replay checkpoints every few thousand events; live traffic at 50 events/s with the default 2 s
interval checkpoints every 100. What a checkpoint writes should follow what changed since the
last one, not the size of the state: this prints how far it does, per namespace of the store.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from detectors import load_detectors  # noqa: E402
from policy import load_policy  # noqa: E402
from policy.catalog import Catalog  # noqa: E402
from schemas.models import REFERENCE_STREAMS  # noqa: E402
from streams.codecs import Decoder  # noqa: E402
from streams.engine import SEP, Engine  # noqa: E402
from streams.pseudonym import Pseudonymizer  # noqa: E402
from streams.replay import replay, replay_files, stream_of_file  # noqa: E402
from streams.workload import generate, write_files  # noqa: E402


class Checkpointing(Engine):
    """An engine that checkpoints (rollup rows drained, state changes encoded) every `per` events."""

    def __init__(self, per: int, *args: Any) -> None:
        super().__init__(*args)
        self.per, self.since, self.checkpoints = per, 0, 0
        self.written: Counter[str] = Counter()  # namespace -> changelog value bytes
        self.rows = 0

    def feed(self, stream: str, key: str, partition: int, events: Any) -> Any:
        found = super().feed(stream, key, partition, events)
        self.since += len(events)
        if self.since >= self.per:
            self.since = 0
            self.checkpoints += 1
            self.rows += len(self.rollup_rows())
            for p in list(self.stores):
                for k, v in self.changes(p):
                    self.written[k.decode(errors="replace").split(SEP)[0]] += len(v or b"")
        return found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=60_000, help="events of the generated bank day")
    ap.add_argument("--per", type=int, default=100, help="events between checkpoints")
    args = ap.parse_args()
    policy = load_policy()
    files = replay_files(write_files(generate(args.events, seed=11, policy=policy), Path(tempfile.mkdtemp())))
    engine = Checkpointing(args.per, load_detectors(policy), Catalog(policy), Pseudonymizer(b"k" * 32))
    replay(engine, Decoder(), files, batch_size=args.per)
    events = sum(sum(1 for _ in f.open("rb")) for f in files if stream_of_file(f) not in REFERENCE_STREAMS)
    print(f"{events} events, a checkpoint every {args.per} ({engine.checkpoints} checkpoints)")
    print(f"  rollup rows to ClickHouse: {engine.rows / events:,.2f} per event")
    print(f"  {'changelog, by namespace':<28}{'MB':>8}{'bytes/event':>14}")
    for namespace, n in engine.written.most_common():
        print(f"  {namespace:<28}{n / 1e6:>8.1f}{n / events:>14,.0f}")
    total = sum(engine.written.values())
    print(f"  {'all':<28}{total / 1e6:>8.1f}{total / events:>14,.0f}")


if __name__ == "__main__":
    main()
