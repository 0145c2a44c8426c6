"""`lifemon ship`: send captured files to Kafka.

`--format har`: HAR 1.2 captures (mitmproxy, Charles, browser devtools) become SDK telemetry, JSON
on the SDK topic keyed by SDK, each record stamped with its request's time (docs/har.md). The
conversion is `streams.sources.har.ship_capture` / `record_of`; this module only reads the files,
produces and reports.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from streams.config import load_config
from streams.sources.har import CaptureContext, HarConverter, HarError, record_of, ship_capture


def consent_time(text: str) -> int:
    """`--consented-at`: `start` (agreed before the capture) or an ISO 8601 time (UTC when bare)."""
    if text == "start":
        return 0
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return round((dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp() * 1000)


def _say(message: str) -> None:
    print(f"lifemon: {message}", file=sys.stderr)


def cmd_ship(args: argparse.Namespace) -> int:
    from confluent_kafka import Producer

    from streams.sinks.kafka import producer_config

    config = load_config(args.config, kafka__bootstrap=args.bootstrap, policy_dir=args.policy)
    if not config.kafka.bootstrap:
        _say("ship needs a broker: --bootstrap HOST:PORT or kafka.bootstrap in --config")
        return 2
    topic = args.topic or config.topics.sdk
    converter = HarConverter.for_config(config, Path(args.signatures) if args.signatures else None)
    producer = Producer(producer_config(config.kafka.bootstrap, {"linger.ms": 50}))
    sent, skipped = 0, Counter[str]()
    try:
        for path in map(Path, args.files):
            ctx = CaptureContext(args.app, args.app_version, args.device or path.stem, args.consented_at)
            try:
                capture = ship_capture(path.read_bytes(), converter, ctx)
            except (OSError, HarError) as e:
                _say(f"{path}: {e.strerror if isinstance(e, OSError) else e}")
                return 2
            if capture.consent_ts is None:
                _say(
                    f"{path}: no privacy-policy agreement in the capture: every SDK request is judged as "
                    "collection before consent (pass --consented-at start if the user agreed earlier)"
                )
            skipped.update(capture.skipped)
            for ev in capture.events:
                key, value, ts = record_of(ev)
                producer.produce(topic, value, key, timestamp=ts)
                producer.poll(0)
                sent += 1
    finally:
        left = producer.flush(60)
    if left:
        _say(f"{left} record(s) not delivered to {topic} within 60 s")
        return 3
    extra = "".join(f", {n} {why}" for why, n in sorted(skipped.items()))
    print(f"shipped {sent} SDK request(s) to {topic}{extra}", file=sys.stderr)
    return 0


def add_ship_parser(sub: Any) -> None:
    sp = sub.add_parser("ship", help="send captured files to Kafka (HAR captures as SDK telemetry)")
    sp.add_argument("files", nargs="+", help="capture files")
    sp.add_argument(
        "--format", choices=["har"], required=True, help="har: HAR 1.2 (mitmproxy, Charles, devtools)"
    )
    sp.add_argument("--topic", help="default: the SDK topic of the config (pfi.sdk)")
    sp.add_argument("--app", default="app", help="the app id the capture is of")
    sp.add_argument("--app-version", default="0", help="its version (declarations may depend on it)")
    sp.add_argument("--device", help="the device's pseudonym (default: the file name without extension)")
    sp.add_argument(
        "--consented-at",
        metavar="WHEN",
        type=consent_time,
        help="when the user agreed to the privacy policy, if not in the capture: `start` or an ISO time",
    )
    sp.add_argument("--signatures", help="tracker signature file in the Exodus Privacy format (JSON)")
    sp.add_argument("--config")
    sp.add_argument("--policy")
    sp.add_argument("--bootstrap", help="Kafka bootstrap servers")
    sp.set_defaults(func=cmd_ship)
