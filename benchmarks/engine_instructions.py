"""CPU instructions per access event of the engine and its detectors, counted by valgrind's
callgrind: the same count run after run, where timings on a shared machine move by 20 % and more.
For deciding whether a change to the hot path pays, not for events per second.

    python benchmarks/engine_instructions.py [--events 60000] [--detectors bulk_query] [--batch 5000]

The generated accesses are split into three partitions by actor, as the keyed access topic splits
them, and each consumed batch of `--batch` records reaches the engine as one batch per partition,
as in `lifemon run`. Two runs under callgrind: one that only prepares (workload decoded, references
applied), one that also processes; their difference over the events is the figure. Needs valgrind
(Debian: `apt-get install valgrind`); a run of 60 000 events takes about eight minutes.
"""

from __future__ import annotations

import argparse
import os
import pickle
import re
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from detectors import load_detectors  # noqa: E402
from policy import load_policy  # noqa: E402
from policy.catalog import Catalog  # noqa: E402
from streams.codecs import Decoder, RawRecord  # noqa: E402
from streams.engine import Engine, freeze_heap  # noqa: E402
from streams.pseudonym import Pseudonymizer  # noqa: E402
from streams.workload import generate  # noqa: E402

PARTITIONS = 3


def prepare(events: int, path: Path) -> None:
    """The workload's JSON records, generated once for both counted runs."""
    day = generate(int(events / 0.7) + 1000, seed=11, policy=load_policy())
    pick = {
        s: [r for stream, _, r in day.records if stream == s] for s in ("access", "entitlements", "customers")
    }
    data = {s: [(r.model_dump_json().encode(), getattr(r, "ts", 0)) for r in rs] for s, rs in pick.items()}
    data["access"] = data["access"][:events]
    path.write_bytes(pickle.dumps(data))


def child(path: Path, kinds: list[str], batch: int, process: bool) -> None:
    """One counted run: prepare, and with `process` feed every batch through the engine."""
    data = pickle.loads(path.read_bytes())
    policy = load_policy()
    specs = [s for s in load_detectors(policy) if s.kind in kinds]
    decoder = Decoder()

    def decoded(stream: str, records: list[tuple[bytes, int]], partition: int, first: int) -> list:
        raws = [
            RawRecord(stream, partition, first + i, v, None, None, ts) for i, (v, ts) in enumerate(records)
        ]
        return decoder.decode(stream, raws).ok

    engine = Engine(specs, Catalog(policy), Pseudonymizer(b"k" * 32))
    for stream in ("entitlements", "customers"):
        engine.apply_reference(stream, [ev for _, ev in decoded(stream, data[stream], 0, 0)])
    accesses = data["access"]
    owner = [zlib.crc32(a.encode()) % PARTITIONS for a in _actors(accesses)]
    batches, offsets = [], [0] * PARTITIONS
    for start in range(0, len(accesses), batch):
        for p in range(PARTITIONS):
            mine = [
                r
                for r, o in zip(accesses[start : start + batch], owner[start : start + batch], strict=True)
                if o == p
            ]
            batches.append((p, decoded("access", mine, p, offsets[p])))
            offsets[p] += len(mine)
    freeze_heap()
    if process:
        for p, ok in batches:
            engine.process("access", "access", p, ok)
            engine.advance()
    os._exit(0)  # no interpreter teardown in the count


def _actors(records: list[tuple[bytes, int]]) -> list[str]:
    pattern = re.compile(rb'"actor_id":"([^"]*)"')
    return [m.group(1).decode() for m in map(pattern.search, (v for v, _ in records))]


def instructions(args: argparse.Namespace, path: Path, process: bool) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={tmp}/out",
                sys.executable,
                __file__,
                "--child",
                str(path),
                "--detectors",
                ",".join(args.detectors),
                "--batch",
                str(args.batch),
                *(["--process"] if process else []),
            ],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": "0"},  # string hashes, set and dict orders: as in every run
        )
    found = re.search(r"Collected : (\d+)", out.stderr)
    if found is None:
        raise SystemExit(f"no callgrind count in its output:\n{out.stderr[-2000:]}")
    return int(found.group(1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=60_000, help="access events")
    ap.add_argument(
        "--detectors",
        type=lambda s: s.split(","),
        default=["bulk_query"],
        help="comma-separated kinds, 'none' for the engine alone",
    )
    ap.add_argument("--batch", type=int, default=5000, help="records per consumed batch (all partitions)")
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--process", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.detectors, args.batch, args.process)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "workload.pickle"
        prepare(args.events, path)
        setup = instructions(args, path, process=False)
        total = instructions(args, path, process=True)
    print(
        f"{args.events} access events, detectors {','.join(args.detectors)}, batches of {args.batch}: "
        f"{(total - setup) / args.events:,.0f} instructions per event"
    )


if __name__ == "__main__":
    main()
