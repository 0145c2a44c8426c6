"""One large state value through the changelog: checkpoint and restore time of a 5 MB value, which
travels as parts of 512 KiB (streams/changelog_parts.py), against a partition of small values.

    python benchmarks/large_values.py --mb 5 --runs 3

One embedded Tansu broker; each run writes to a fresh topic. The value is an unauthorized-lookup
episode's shape: a list of 26-character pseudonyms. "checkpoint" is `KeyedStore.changes()` plus
`Changelog.write` (acks of the parts, the head and the marker included) by a producer that has
written before; "restore" is
`Changelog.restore` into an empty store plus the first `get` (decoding the value).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from confluent_kafka import Producer  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

from streams.changelog import Changelog  # noqa: E402
from streams.changelog_parts import PART_BYTES  # noqa: E402
from streams.embedded import EmbeddedBroker  # noqa: E402
from streams.keyed_state import KeyedStore  # noqa: E402
from streams.sinks.kafka import producer_config  # noqa: E402


def once(bootstrap: str, value: list[str], tmp: Path) -> tuple[float, float, int]:
    topic = f"lifemon.state.large.{uuid.uuid4().hex[:6]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for fut in admin.create_topics([NewTopic(topic, 1, 1, config={"cleanup.policy": "compact"})]).values():
        fut.result()
    log = Changelog(Producer(producer_config(bootstrap, {})), topic)
    store = KeyedStore(tmp / f"w-{topic}")
    store.put("warm-up", 1)  # the producer's first write also fetches metadata: not timed
    log.write(0, store.changes(), {"pfi.access:0": 0})
    store.put("unauthorized_lookup\x1fe1", {"customers": value})
    began = time.perf_counter()
    changes = store.changes()
    log.write(0, changes, {"pfi.access:0": 1})
    checkpoint = time.perf_counter() - began
    size = max(len(v or b"") for _, v in changes)
    fresh = KeyedStore(tmp / f"r-{topic}")
    began = time.perf_counter()
    Changelog.restore({"bootstrap.servers": bootstrap}, topic, 0, fresh)
    assert fresh.get("unauthorized_lookup\x1fe1") == {"customers": value}
    restore = time.perf_counter() - began
    store.destroy()
    fresh.destroy()
    return checkpoint, restore, size


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=float, default=5.0)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    big = [f"p_{i:024x}" for i in range(int(args.mb * 1_000_000 / 29))]
    small = big[:10]
    tmp = Path(tempfile.mkdtemp(prefix="large-values-"))
    with EmbeddedBroker() as broker:
        for name, value in (("small", small), ("large", big)):
            runs = [once(broker.bootstrap, value, tmp) for _ in range(args.runs)]
            size = runs[0][2]
            ck = statistics.median(r[0] for r in runs)
            rs = statistics.median(r[1] for r in runs)
            parts = -(-size // PART_BYTES) if size > PART_BYTES else 0
            print(
                f"{name}: value {size:,} B ({parts} parts), checkpoint {ck * 1000:.0f} ms, "
                f"restore {rs * 1000:.0f} ms (median of {args.runs})"
            )


if __name__ == "__main__":
    main()
