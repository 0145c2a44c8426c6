"""`lifemon ship`: send captured files to Kafka.

`--format har`: HAR 1.2 captures (mitmproxy, Charles, browser devtools) become SDK telemetry, JSON
on the SDK topic keyed by SDK (docs/har.md). Each record's Kafka time is its request's time, as a
log shipper stamps it: the monitor judges event time against it.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import orjson

from streams.config import load_config
from streams.sources.har import CaptureContext, HarCapture, HarConverter, HarError, har_entries


def har_captures(
    paths: list[Path], converter: HarConverter, ctx_of: Any
) -> Iterator[tuple[Path, HarCapture]]:
    """Each file's capture; `ctx_of(path)` gives its CaptureContext. A file that is no HAR raises
    HarError naming it."""
    for path in paths:
        try:
            entries = har_entries(orjson.loads(path.read_bytes()))
        except orjson.JSONDecodeError as e:
            raise HarError(f"{path}: not JSON ({e.args[0]})") from None
        except HarError as e:
            raise HarError(f"{path}: {e}") from None
        yield path, converter.convert(entries, ctx_of(path))


def consent_time(text: str) -> int:
    """`--consented-at`: `start` (agreed before the capture) or an ISO 8601 time (UTC when bare)."""
    if text == "start":
        return 0
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return round((dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp() * 1000)


def cmd_ship(args: argparse.Namespace) -> int:
    from confluent_kafka import Producer

    from streams.sinks.kafka import producer_config

    config = load_config(args.config, kafka__bootstrap=args.bootstrap, policy_dir=args.policy)
    if not config.kafka.bootstrap:
        print(
            "lifemon: ship needs a broker: --bootstrap HOST:PORT or kafka.bootstrap in --config",
            file=sys.stderr,
        )
        return 2
    topic = args.topic or config.topics.sdk
    converter = HarConverter.for_config(config, Path(args.signatures) if args.signatures else None)

    def ctx_of(path: Path) -> CaptureContext:
        return CaptureContext(args.app, args.app_version, args.device or path.stem, args.consented_at)

    producer = Producer(producer_config(config.kafka.bootstrap, {"linger.ms": 50}))
    sent, skipped = 0, Counter[str]()
    try:
        for path, capture in har_captures([Path(f) for f in args.files], converter, ctx_of):
            skipped.update(capture.skipped)
            if capture.consent_ts is None:
                print(
                    f"lifemon: {path}: no privacy-policy agreement in the capture: every SDK request is "
                    "judged as collection before consent (pass --consented-at start if the user agreed earlier)",
                    file=sys.stderr,
                )
            for ev in capture.events:
                producer.produce(topic, msgspec.json.encode(ev), ev.sdk_id.encode(), timestamp=ev.ts)
                producer.poll(0)
                sent += 1
    except HarError as e:
        print(f"lifemon: {e}", file=sys.stderr)
        return 2
    finally:
        left = producer.flush(60)
    if left:
        print(f"lifemon: {left} record(s) not delivered to {topic} within 60 s", file=sys.stderr)
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
