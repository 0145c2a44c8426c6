"""Produce records to lifemon's topics (the generator's Kafka output, tests and benchmarks)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from confluent_kafka import Producer

from schemas.models import Record
from streams.codecs import SchemaRegistry, encode_avro
from streams.config import Config
from streams.sinks.kafka import producer_config


def produce(
    bootstrap: str,
    config: Config,
    records: Iterable[tuple[str, str, Record]],
    fmt: str = "json",
    progress: Callable[[int], None] | None = None,
    extra: dict[str, Any] | None = None,
) -> int:
    """Send (stream, key, record) triples; `fmt` json or avro (Confluent wire format). Returns the count."""
    producer = Producer(
        producer_config(bootstrap, {"linger.ms": 50, "batch.num.messages": 10000, **(extra or {})})
    )
    registry = SchemaRegistry()
    n = 0
    for stream, key, record in records:
        value = encode_avro(stream, record, registry) if fmt == "avro" else record.model_dump_json().encode()
        while True:
            try:
                # CreateTime = event time, as a log shipper stamps it: the decoder judges `ts` against it
                producer.produce(
                    config.topic_of(stream), value=value, key=key.encode(), timestamp=getattr(record, "ts", 0)
                )
                break
            except BufferError:
                producer.poll(0.1)
        n += 1
        if n % 10_000 == 0:
            producer.poll(0)
            if progress:
                progress(n)
    if producer.flush(60):
        raise RuntimeError("producer could not deliver every record within 60 s")
    return n
