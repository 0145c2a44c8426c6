"""Whether the configured Kafka answers, asked once when a command starts.

A mistyped or unreachable `kafka.bootstrap` would otherwise surface as librdkafka's `%3|…|FAIL|…`
line every 50 ms for the whole metadata timeout, then a traceback. Here the first client a command
makes (the admin client that lists and creates topics) logs through a tally: the first line of each
kind goes to the debug log, repeats are only counted, and a broker that never answers becomes one
`KafkaUnavailable` line that names the address, what went wrong and where the address is set.
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, ClusterMetadata

from streams.logs import KAFKA

METADATA_TIMEOUT_S = (
    10.0  # kafka.reach_timeout_s's default: as long as lifemon waited for the topic list before
)
BOOTSTRAP_HINT = "check kafka.bootstrap, --bootstrap or LIFEMON_KAFKA_BOOTSTRAP"
CREDENTIALS_HINT = "check kafka.client's security settings and LIFEMON_KAFKA_SASL_PASSWORD"
# errors that mean "the broker was never reached"; the others (authentication, TLS) mean it was
_TRANSPORT = frozenset(
    {KafkaError._TRANSPORT, KafkaError._RESOLVE, KafkaError._ALL_BROKERS_DOWN, KafkaError._TIMED_OUT}
)
_CREDENTIALS = frozenset({KafkaError._AUTHENTICATION, KafkaError._SSL, KafkaError.SASL_AUTHENTICATION_FAILED})
_VARYING = re.compile(r"\d+(\.\d+)?(ms|s)\b|#\d+")  # timings and counters: a repeat differs only there


class KafkaUnavailable(RuntimeError):
    """The broker did not answer a command's first metadata request; the message is one line."""


class KafkaSettingRefused(ValueError):
    """A kafka.client setting librdkafka does not know, or a value it does not take."""


@contextmanager
def _settings_said() -> Iterator[None]:
    """A client librdkafka refuses to make for a setting's sake: KafkaSettingRefused, in one line."""
    try:
        yield
    except KafkaException as e:
        if e.args[0].code() != KafkaError._INVALID_ARG:
            raise
        raise KafkaSettingRefused(
            f"librdkafka refuses a setting: {e.args[0].str()}. Fix or remove it under kafka.client in "
            "the config (docs/configuration.md; every setting: librdkafka's CONFIGURATION.md)"
        ) from None


def consumer(conf: dict[str, Any]) -> Consumer:
    """A consumer, its settings checked as `reach` checks the admin client's: a consumer takes
    settings an admin client ignores (a probe's max.poll.interval.ms passed `reach`, then was a
    traceback)."""
    with _settings_said():
        return Consumer(conf)


class Tally:
    """A client's `logger` and `error_cb` while it has not reached the broker yet: each distinct
    librdkafka line is logged once and its repeats counted (errors, the connection failures, at
    debug: the command's one line says them if the broker never answers); errors are kept. Once
    `reached`, lines and errors pass through to the `librdkafka` logger as any client's do."""

    def __init__(self) -> None:
        self.lines: Counter[str] = Counter()
        self.errors: list[KafkaError] = []
        self.reached = False

    def log(self, level: int, msg: str, *args: Any) -> None:  # librdkafka's `logger` protocol
        if self.reached:
            KAFKA.log(level, msg, *args)
            return
        text = msg % args if args else msg
        kind = _VARYING.sub("…", text)
        self.lines[kind] += 1
        if self.lines[kind] == 1:  # a failure to connect is said by the one line, or by nothing if it passes
            KAFKA.log(logging.DEBUG if level >= logging.ERROR else level, text)

    def error(self, err: KafkaError) -> None:  # librdkafka's `error_cb`
        if self.reached:
            KAFKA.warning(f"client error: {err.str()}")
            return
        self.errors.append(err)

    def repeats(self) -> int:
        return sum(self.lines.values()) - len(self.lines)


def _reason(errors: list[KafkaError], last: KafkaException | None, timeout_s: float) -> str:
    """What the broker's failures say, in a few words."""
    texts = [e.str() for e in errors] + ([last.args[0].str()] if last else [])
    codes = {e.code() for e in errors}
    for text in texts:
        if "Connection refused" in text:
            return "connection refused"
    if KafkaError._RESOLVE in codes or any("resolve" in t for t in texts):
        return "host name not found"
    for text in texts:
        if "timed out" in text.lower():
            return "connection timed out"
    for err in errors:
        if err.code() not in (KafkaError._ALL_BROKERS_DOWN,):
            return err.str()
    return f"no answer in {timeout_s:g} s"


def reach(
    bootstrap: str, settings: dict[str, Any] | None = None, timeout_s: float = METADATA_TIMEOUT_S
) -> tuple[AdminClient, ClusterMetadata]:
    """An admin client for `bootstrap` and the cluster's metadata; KafkaUnavailable in one line if
    the broker gives none within `timeout_s` (or refuses lifemon's credentials)."""
    tally = Tally()
    conf: dict[str, Any] = {"bootstrap.servers": bootstrap, **(settings or {})}
    conf.update(logger=tally, error_cb=tally.error)
    with _settings_said():  # every Kafka command reaches the broker first: said here, once
        admin = AdminClient(conf)
    started = time.monotonic()
    deadline = started + timeout_s
    last: KafkaException | None = None
    while True:
        left = deadline - time.monotonic()
        try:
            metadata = admin.list_topics(timeout=max(min(left, 1.0), 0.05))
        except KafkaException as e:
            last = e
        else:
            admin.poll(0)  # the lines queued on the way (a `debug` setting's, for one)
            tally.reached = True
            if tally.errors:
                KAFKA.info(
                    f"Kafka at {bootstrap} answered after {len(tally.errors)} failed attempt(s)",
                    extra={"bootstrap": bootstrap},
                )
            return admin, metadata
        admin.poll(0)  # serves the error and log callbacks queued meanwhile
        refused = [e for e in tally.errors if e.code() in _CREDENTIALS]
        if refused:  # the broker answered and said no: waiting cannot change that
            raise KafkaUnavailable(
                f"Kafka at {bootstrap} refused lifemon's connection ({refused[0].str()}); {CREDENTIALS_HINT}"
            )
        if time.monotonic() >= deadline:
            attempts = sum(e.code() in _TRANSPORT for e in tally.errors) or 1
            raise KafkaUnavailable(
                f"Kafka at {bootstrap} is unreachable: {_reason(tally.errors, last, timeout_s)} "
                f"({attempts} connection attempt(s) in {time.monotonic() - started:.0f} s); {BOOTSTRAP_HINT}"
            )
