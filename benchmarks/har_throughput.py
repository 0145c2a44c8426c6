"""HAR entries per second per core, from the file to the findings, in process (no broker):

    python benchmarks/har_throughput.py [--entries 20000] [--runs 3]

A synthetic capture of an app's SDK traffic (JSON, form and query payloads over the seed-004 SDK
hosts, first-party calls, an unknown tracker; a few violations) is written to a temporary HAR file.
Each row is the best of `--runs` rounds of CPU time (one process, one thread: one core):

- the ceiling: reading the file and parsing its JSON with orjson, what any HAR reader must do;
- `json.load` of the same file, for scale;
- lifemon: read + parse + attribution + data-type recognition (python-stdnum checksums) + keyed
  fingerprints -> SdkTelemetryEvents -> the Engine with the sdk_overcollection detector -> findings.

The ratio column is the ceiling's CPU time over the row's, measured in the same run.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from detectors import load_detectors  # noqa: E402
from policy import load_policy  # noqa: E402
from policy.catalog import Catalog  # noqa: E402
from policy.traffic import load_traffic  # noqa: E402
from streams.codecs import RawRecord  # noqa: E402
from streams.engine import GC_THRESHOLDS, Engine  # noqa: E402
from streams.pseudonym import Pseudonymizer  # noqa: E402
from streams.sources.har import CaptureContext, HarConverter, ship_capture  # noqa: E402

BATCH = 5000
T0 = 1_767_225_600_000
IMEIS = ("490154203237518", "356938035643809", "860000000000000", "861234567890124")


def synthetic_capture(n: int, seed: int = 5) -> dict[str, Any]:
    """`n` HAR entries as mitmproxy writes them: mostly declared SDKs sending declared fields."""
    rng = random.Random(seed)
    kinds = [
        ("https://datasink.sensorsdata.cn/sa?project=bank", "json", 30),
        ("http://api.xmpush.xiaomi.com/v1/reg", "query", 20),
        ("https://tmf.qq.com/report", "form", 15),
        ("https://wkrd.tingyun.com/collect", "json", 10),
        ("https://apilocate.amap.com/mobile/binary", "form", 10),
        ("https://mbank.bjbank.example/api/account", "json", 10),  # first party
        ("https://collect.adtrack.example/p", "query", 5),  # an unknown tracker
    ]
    urls = [k for k in kinds for _ in range(k[2])]
    entries = []
    for i in range(n):
        url, shape, _ = rng.choice(urls)
        payload = {
            "distinct_id": f"u{rng.randrange(10_000)}",
            "$model": rng.choice(("Pixel 8", "MI 14", "HUAWEI P60")),
            "$os_version": "14",
            "oaid": f"{rng.getrandbits(64):016x}",
            "imei": rng.choice(IMEIS),
            "$latitude": 39.9 + rng.random() / 10,
            "$longitude": 116.3 + rng.random() / 10,
            "k": str(rng.getrandbits(50)),  # numbers that are none of the recognized forms
        }
        if i % 500 == 0:
            payload["contacts"] = ["Zhang San 13900001111"]
        req: dict[str, Any] = {
            "method": "GET" if shape == "query" else "POST",
            "url": url,
            "httpVersion": "HTTP/1.1",
            "headers": [
                {"name": "User-Agent", "value": "BankApp/9.2.0"},
                {"name": "X-Trace", "value": f"t{i}"},
            ],
            "cookies": [],
            "queryString": [],
            "headersSize": -1,
            "bodySize": -1,
        }
        if shape == "query":
            req["url"] += "?" + urlencode({k: v for k, v in payload.items() if not isinstance(v, list)})
        elif shape == "form":
            pairs = [{"name": k, "value": str(v)} for k, v in payload.items()]
            req["postData"] = {"mimeType": "application/x-www-form-urlencoded", "text": "", "params": pairs}
        else:
            req["postData"] = {"mimeType": "application/json", "text": json.dumps({"properties": payload})}
        started = datetime.fromtimestamp((T0 + i * 50) / 1000, UTC).isoformat()
        entries.append({"startedDateTime": started, "time": 1, "request": req, "response": {}, "timings": {}})
    return {"log": {"version": "1.2", "creator": {"name": "bench", "version": "1"}, "entries": entries}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--entries", type=int, default=20_000)
    ap.add_argument("--runs", type=int, default=3, help="rounds; the best counts")
    args = ap.parse_args()
    policy = load_policy()
    catalog = Catalog(policy)
    spec = next(s for s in load_detectors(policy) if s.kind == "sdk_overcollection")
    key = os.urandom(32)
    converter = HarConverter(catalog.sdk, load_traffic(None, policy.sdks), Pseudonymizer(key).digest)
    path = Path(tempfile.mkdtemp()) / "capture.har"
    path.write_bytes(orjson.dumps(synthetic_capture(args.entries)))
    n = args.entries
    found: list[int] = []

    def ceiling() -> None:
        orjson.loads(path.read_bytes())

    def stdlib() -> None:
        with path.open(encoding="utf-8") as f:
            json.load(f)

    def lifemon() -> None:
        capture = ship_capture(path.read_bytes(), converter, CaptureContext("app", "9.2.0", "D1", 0))
        engine = Engine([spec], catalog, Pseudonymizer(key))
        alerts = []
        events = capture.events
        for i in range(0, len(events), BATCH):
            batch = [(RawRecord("pfi.sdk", 0, i + j, None), ev) for j, ev in enumerate(events[i : i + BATCH])]
            alerts += engine.process("sdk", "pfi.sdk", 0, batch) + engine.advance()
        alerts += engine.advance(final=True)
        found.append(len({a.alert_id for a in alerts}))

    rows = [
        ("read + orjson.loads (ceiling)", ceiling),
        ("read + json.load", stdlib),
        ("lifemon: file -> events -> findings", lifemon),
    ]
    best: dict[str, float] = {}
    gc.set_threshold(*GC_THRESHOLDS)
    for _ in range(args.runs):
        for name, fn in rows:
            gc.collect()
            c0 = time.process_time()
            fn()
            best[name] = min(best.get(name, float("inf")), time.process_time() - c0)
    size = path.stat().st_size
    print(
        f"lifemon HAR throughput: {n} entries ({size / n:.0f} bytes each), best of {args.runs}, "
        f"one core of {os.cpu_count()}; {found[-1]} findings"
    )
    print(f"{'path':<40}{'CPU µs/entry':>14}{'entries/CPU-s':>15}{'ratio':>8}")
    base = best[rows[0][0]]
    for name, _ in rows:
        cpu = best[name]
        print(f"{name:<40}{cpu / n * 1e6:>14.1f}{n / cpu:>15,.0f}{base / cpu:>8.3f}")


if __name__ == "__main__":
    main()
