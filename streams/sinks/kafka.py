"""Kafka outputs: alerts (OCSF JSON, key = alert id) and dead letters (original bytes + reason headers)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from confluent_kafka import KafkaError, KafkaException, Message, Producer

from schemas.models import Alert
from streams.alerts import to_ocsf
from streams.codecs import DeadLetter
from streams.sinks.base import Sink, SinkError

Encoded = tuple[bytes | None, bytes | None, Any]  # key, value, headers


class KafkaTopicSink(Sink[Any]):
    """Produces items to one topic through a shared idempotent producer; `write` returns after
    every message of the batch was acknowledged by the broker."""

    def __init__(self, producer: Producer, topic: str, encode: Callable[[Any], Encoded], name: str):
        super().__init__()
        self.producer, self.topic, self.encode, self.name = producer, topic, encode, name

    def write(self, items: list[Any]) -> None:
        errors: list[KafkaError] = []

        def on_delivery(err: KafkaError | None, _msg: Message) -> None:
            if err is not None:
                errors.append(err)

        for item in items:
            key, value, headers = self.encode(item)
            while True:
                try:
                    self.producer.produce(
                        self.topic, value=value, key=key, headers=headers, on_delivery=on_delivery
                    )
                    break
                except BufferError:  # local queue full: let deliveries drain, then retry
                    self.producer.poll(0.1)
                except KafkaException as e:
                    raise SinkError(f"{self.name}: {e}") from e
        remaining = self.producer.flush(30)
        if remaining or errors:
            raise SinkError(f"{self.name}: {remaining} message(s) undelivered, errors: {errors[:3]}")


def encode_alert(alert: Alert) -> Encoded:
    return (
        alert.alert_id.encode(),
        orjson.dumps(to_ocsf(alert)),
        [("lifemon.revision", str(alert.revision).encode())],
    )


DLQ_VALUE_LIMIT = 900_000  # under the producer's message.max.bytes, so a dead letter can always be sent


def encode_dead_letter(dead: DeadLetter) -> Encoded:
    """The original bytes with the reason in headers. A value too large to forward stays where it
    is (source.topic/partition/offset in the headers point at it) rather than blocking the DLQ."""
    value = dead.raw.value
    headers = dead.headers()
    if value is not None and len(value) > DLQ_VALUE_LIMIT:
        headers.append(("error.value_dropped", f"{len(value)} bytes, read it at the source offset".encode()))
        value = None
    return dead.raw.key, value, headers


def producer_config(bootstrap: str, extra: dict[str, Any]) -> dict[str, Any]:
    return {
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 20,
        "compression.type": "lz4",
        "message.max.bytes": 2_000_000,
        "log.connection.close": False,
        **extra,
    }
