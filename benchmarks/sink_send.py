"""What a Kafka sink adds to librdkafka's own produce: re-keyed access events sent as the runtime
sends them to a repartition topic (`KafkaTopicSink.send` per batch of 5 000, then `flush`), against
bare `producer.produce` calls of the same bytes with no delivery report (the ceiling), one run.

    python benchmarks/sink_send.py [--messages 100000] [--runs 3] [--bootstrap host:port]

CPU time of the whole process, librdkafka's threads included, per message; the best of `--runs`.
The ratio is the sink's cost over the ceiling's: machines are noisy, ratios less so.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from confluent_kafka import Producer  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

from streams.embedded import EmbeddedBroker  # noqa: E402
from streams.runtime import _encode_rekeyed  # noqa: E402
from streams.sinks.kafka import KafkaTopicSink, producer_config  # noqa: E402

BATCH = 5000


def events(n: int) -> list[tuple[str, dict[str, Any]]]:
    """Re-keyed accesses as the engine hands them on: (customer pseudonym, event)."""
    return [
        (
            f"c{i % 997:016x}",
            {
                "event_id": f"access-{i:012d}",
                "ts": 1_767_225_600_000 + i,
                "actor_id": f"T{i % 397:06d}",
                "subject_ids": [f"c{i % 997:016x}"],
                "fields": ["customer_name", "mobile"],
                "system": "core_banking",
                "action": "view",
                "purpose": "account_service",
                "row_count": 1,
            },
        )
        for i in range(n)
    ]


def bare(producer: Producer, topic: str, items: list[tuple[str, Any]]) -> None:
    for item in items:
        key, value, _ = _encode_rekeyed(item)
        while True:
            try:
                producer.produce(topic, value=value, key=key)
                break
            except BufferError:
                producer.poll(0.01)
    producer.flush(60)


def sink(producer: Producer, topic: str, items: list[tuple[str, Any]]) -> None:
    s = KafkaTopicSink(producer, topic, _encode_rekeyed, "bench")
    for start in range(0, len(items), BATCH):
        s.send(items[start : start + BATCH])
    s.flush()


def cpu_per_message(
    run: Callable[[Producer, str, list[Any]], None], producer: Producer, topic: str, items: list[Any]
) -> float:
    started = time.process_time()
    run(producer, topic, items)
    return (time.process_time() - started) / len(items) * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3, help="rounds; the best counts")
    ap.add_argument("--bootstrap", help="use this broker instead of an embedded Tansu")
    args = ap.parse_args()
    items = events(args.messages)
    with nullcontext(None) if args.bootstrap else EmbeddedBroker() as broker:
        bootstrap = args.bootstrap or broker.bootstrap
        topic = f"bench-sink-{uuid.uuid4().hex[:8]}"
        admin = AdminClient({"bootstrap.servers": bootstrap})
        admin.create_topics([NewTopic(topic, 4, 1)])[topic].result(30)
        producer = Producer(producer_config(bootstrap, {}))
        best = {"raw produce, no delivery report": float("inf"), "KafkaTopicSink.send": float("inf")}
        for _ in range(args.runs):  # alternated, so a noisy moment hits both
            for name, run in zip(best, (bare, sink), strict=True):
                best[name] = min(best[name], cpu_per_message(run, producer, topic, items))
    ceiling = best["raw produce, no delivery report"]
    print(f"{args.messages:,} re-keyed access events, batches of {BATCH:,}, best of {args.runs}")
    print(f"{'run':<34}{'µs CPU/message':>16}{'ratio':>8}")
    for name, cost in best.items():
        print(f"{name:<34}{cost:>16.2f}{cost / ceiling:>8.2f}")


if __name__ == "__main__":
    main()
