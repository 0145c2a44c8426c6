"""`lifemon ship --format har`: HAR 1.2 captures (mitmproxy, Charles, browser devtools) become SDK telemetry, JSON
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

from streams.config import POLICY_HELP, load_config
from streams.sources.har import CaptureContext, HarConverter, HarError, record_of, ship_capture


def consent_time(text: str) -> int:
    """`--consented-at`: `start` (agreed before the capture) or an ISO 8601 time (UTC when bare)."""
    if text == "start":
        return 0
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return round((dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp() * 1000)


def _say(message: str) -> None:
    print(f"lifemon: {message}", file=sys.stderr)


def ship_har(args: argparse.Namespace) -> int:
    from confluent_kafka import Producer

    from streams.sinks.kafka import producer_config

    config = load_config(args.config, kafka__bootstrap=args.bootstrap, policy_dir=args.har_policy)
    if not config.kafka.bootstrap:
        _say("ship needs a broker: --bootstrap HOST:PORT or kafka.bootstrap in --config")
        return 2
    topic = args.topic or config.topics.sdk
    converter = HarConverter.for_config(config, Path(args.signatures) if args.signatures else None)
    # the config's client settings (TLS, SASL, the password from the environment), as every producer
    producer = Producer(producer_config(config.kafka.bootstrap, {**config.kafka_settings(), "linger.ms": 50}))
    sent, skipped, failed = 0, Counter[str](), list[Any]()

    def delivered(err: Any, _: Any) -> None:
        if err is not None:
            failed.append(err)

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
            if capture.withdrawals:
                # said, so a tester sees why collection after the agreement is judged as without it
                _say(
                    f"{path}: the user withdrew the agreement {capture.withdrawals} time(s) in the capture: "
                    "SDK requests after a withdrawal, until a new agreement, are collection without consent"
                )
            skipped.update(capture.skipped)
            for ev in capture.events:
                key, value, ts = record_of(ev)
                producer.produce(topic, value, key, timestamp=ts, on_delivery=delivered)
                producer.poll(0)
                sent += 1
    finally:
        left = producer.flush(60)
    if left or failed:
        why = f"{failed[0]}" if failed else "no acknowledgement within 60 s"
        _say(f"{left + len(failed)} of {sent} record(s) not delivered to {topic}: {why}")
        return 3
    extra = "".join(f", {n} {why}" for why, n in sorted(skipped.items()))
    print(f"shipped {sent} SDK request(s) to {topic}{extra}", file=sys.stderr)
    return 0


def add_har_arguments(sp: Any) -> None:
    """`lifemon ship`'s options for `--format har` only."""
    har = sp.add_argument_group("--format har")
    har.add_argument(
        "--app", default="app", help="the app id the capture is of, as alerts name it (default: app)"
    )
    har.add_argument(
        "--app-version",
        default="0",
        help="its version: a declaration bound by since_app_version / until_app_version (sdks.yaml) "
        "judges only the versions it names (default: 0, before any bound)",
    )
    har.add_argument("--device", help="the device's pseudonym (default: the file name without extension)")
    har.add_argument(
        "--consented-at",
        metavar="WHEN",
        type=consent_time,
        help="when the user agreed to the privacy policy, if not in the capture: `start` or an ISO time",
    )
    har.add_argument("--signatures", help="tracker signature file in the Exodus Privacy format (JSON)")
    har.add_argument("--policy", dest="har_policy", metavar="POLICY", help=POLICY_HELP)
