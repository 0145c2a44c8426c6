"""KafkaTopicSink against a real Tansu broker that stalls, dies and comes back empty: a flush waits a
bounded time, a retry never produces a message twice, and a vanished topic stops lifemon loudly.
docs/kafka-sink-faults.md has the probe these cases come from."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, Message, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from streams.embedded import EmbeddedBroker
from streams.sinks import FatalSinkError, SinkError
from streams.sinks.kafka import Encoded, KafkaTopicSink, producer_config

pytestmark = pytest.mark.integration

# Short librdkafka timeouts: a dead broker is noticed in about a second, not a minute.
FAST = {
    "socket.timeout.ms": 1000,
    "reconnect.backoff.ms": 50,
    "reconnect.backoff.max.ms": 200,
    "topic.metadata.refresh.interval.ms": 1000,
    "log_level": 3,  # errors only: a stopped broker makes librdkafka chatty
}
SLACK_S = 1.5  # scheduling on a shared 2-core machine


def as_message(text: str) -> Encoded:
    return text.encode(), text.encode(), None


def create_topic(bootstrap: str, partitions: int = 3) -> str:
    topic = f"pfi.alerts.{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})  # kept alive until its futures resolve
    for future in admin.create_topics([NewTopic(topic, partitions, 1)]).values():
        future.result(10)
    return topic


def producer(bootstrap: str, message_timeout_ms: int, **extra: Any) -> Producer:
    return Producer(producer_config(bootstrap, {**FAST, "message.timeout.ms": message_timeout_ms, **extra}))


def sink_for(p: Producer, topic: str, flush_timeout_s: float, **kw: Any) -> KafkaTopicSink:
    return KafkaTopicSink(
        p, topic, as_message, "alerts→kafka", flush_timeout_s=flush_timeout_s, metadata_timeout_s=1.0, **kw
    )


def queued(p: Producer) -> int:
    """Messages in the producer queue. len() also counts events waiting for poll() (connection
    errors and librdkafka's log lines pile up while the broker is down, and keep coming), so serve
    those first, and take the least of a few readings: the messages are what stays."""
    readings = []
    for _ in range(3):
        p.poll(0)
        readings.append(len(p))
    return min(readings)


def items(prefix: str, n: int) -> list[str]:
    return [f"{prefix}-{i}" for i in range(n)]


def messages_on(bootstrap: str, topic: str, expected: int, timeout_s: float = 20.0) -> Counter[str]:
    """Every value on the topic, consumed from the start (Tansu's ListOffsets answers "base offset of
    the last batch + 1", so watermarks do not count messages). Reads on for a second after reaching
    `expected`, so a duplicate arriving late is still seen."""
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"count-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
            "enable.auto.commit": False,
        }
    )
    c.subscribe([topic])
    seen: Counter[str] = Counter()
    deadline = time.monotonic() + timeout_s
    settle_until: float | None = None
    try:
        while time.monotonic() < deadline and (settle_until is None or time.monotonic() < settle_until):
            for m in c.consume(100, 0.2):
                if m.error() is None:
                    seen[m.value().decode()] += 1
            if settle_until is None and sum(seen.values()) >= expected:
                settle_until = time.monotonic() + 1.0
    finally:
        c.close()
    return seen


@pytest.fixture
def tansu() -> Iterator[EmbeddedBroker]:
    """A broker of this test's own, to stall (SIGSTOP), kill and restart without disturbing others."""
    b = EmbeddedBroker().start()
    yield b
    crash(b)  # Tansu lingers on SIGTERM while clients are connected; its data is memory anyway


def crash(b: EmbeddedBroker) -> None:
    """kill -9: how a broker dies in the probe, and Tansu keeps nothing."""
    if b._proc is not None:
        os.kill(b._proc.pid, signal.SIGKILL)
    b.stop()  # reaps it


def stall(b: EmbeddedBroker) -> None:
    assert b._proc is not None
    os.kill(b._proc.pid, signal.SIGSTOP)


def resume(b: EmbeddedBroker) -> None:
    assert b._proc is not None
    os.kill(b._proc.pid, signal.SIGCONT)


def test_a_flush_waits_for_its_own_messages_only(broker: str) -> None:
    """Alerts and dead letters share one producer: a message of another sink stuck in the queue (its
    topic does not exist) must not hold the alert flush until it times out."""
    topic = create_topic(broker)
    p = producer(broker, message_timeout_ms=20_000)
    p.produce(f"pfi.missing.{uuid.uuid4().hex[:8]}", b"stuck")  # another sink's, undeliverable
    sink = sink_for(p, topic, flush_timeout_s=5.0)
    sink.add(items("a", 10))

    t0 = time.monotonic()
    assert sink.flush() == 10
    assert time.monotonic() - t0 < 3.0
    assert queued(p) == 1  # the stuck one is still queued: this sink did not wait for it
    assert messages_on(broker, topic, 10) == Counter(items("a", 10))


def test_a_topic_that_does_not_exist_is_fatal_and_named(broker: str) -> None:
    missing = f"pfi.alerts.{uuid.uuid4().hex[:8]}"
    p = producer(broker, message_timeout_ms=20_000)
    sink = sink_for(p, missing, flush_timeout_s=5.0)
    sink.add(items("a", 3))

    t0 = time.monotonic()
    with pytest.raises(FatalSinkError, match=rf"alerts→kafka: topic {missing} does not exist"):
        sink.flush()
    assert time.monotonic() - t0 < 3.0
    assert queued(p) == 0  # nothing produced into a topic that is not there
    assert (sink.unsent, sink.in_flight) == (3, 0)


VANISHED = (
    "alerts→kafka: topic {topic} no longer exists on the broker (was it restarted empty?); "
    "lifemon stops rather than retry forever"
)
RECREATED = (
    "alerts→kafka: topic {topic} now has 4 partition(s), it had 3, and nothing gets through: it was "
    "re-created empty (was the broker restarted empty?); lifemon stops rather than retry forever"
)


def settle(sink, n: int) -> None:
    """A test's setup flush of `n` items, retried: the first produce to a new topic may wait on its
    metadata longer than a 1 s flush on a busy machine (clean-clone CIs did, twice); transient,
    and what is in flight is kept for the next flush. Counted by the sink: a flush that raises may
    have had some acknowledged, which its caller never hears of (a CI's setup counted 5 of 10)."""
    before = sink._acked
    for _ in range(30):
        with contextlib.suppress(SinkError):
            sink.flush()
        if sink._acked - before == n:
            return
    assert sink._acked - before == n


@pytest.mark.parametrize(
    ("auto_create", "expected"),
    [(False, VANISHED), (True, RECREATED)],
    ids=["lifemon-producer", "auto-creating-producer"],
)
def test_broker_restarted_empty_is_fatal_and_retries_never_grow_the_queue(
    tansu: EmbeddedBroker, auto_create: bool, expected: str
) -> None:
    """The probe's case: Tansu keeps topics in memory, so a restart loses pfi.alerts. While the broker
    is down every flush fails fast and transiently without re-producing what is queued; once it is
    back without the topic, the sink says so and stops. lifemon's producer may not create topics, so
    the topic is missing; a producer that may (Tansu then re-creates it blank, with 4 partitions) is
    caught by the changed partition count."""
    topic = create_topic(tansu.bootstrap, partitions=3)
    p = producer(  # a long message timeout: librdkafka keeps retrying on its own, as in production
        tansu.bootstrap, message_timeout_ms=120_000, **{"allow.auto.create.topics": auto_create}
    )
    sink = sink_for(p, topic, flush_timeout_s=1.0)
    sink.add(items("before", 5))
    settle(sink, 5)

    crash(tansu)
    sink.add(items("during", 5))
    for _ in range(3):  # the runtime's checkpoint retries like this
        t0 = time.monotonic()
        with pytest.raises(SinkError) as failed:
            sink.flush()
        assert not isinstance(failed.value, FatalSinkError)  # a broker that is down may come back
        assert time.monotonic() - t0 < 1.0 + 1.0 + SLACK_S  # flush_timeout_s + metadata_timeout_s
        assert queued(p) <= 5  # the five in flight, never a second copy
        assert (sink.in_flight, sink.unsent) == (5, 0)

    tansu.start()  # the same port, and empty: what restarting Tansu gives
    deadline = time.monotonic() + 20
    while True:
        assert time.monotonic() < deadline, "the vanished topic was never reported"
        try:
            sink.flush()
        except FatalSinkError as e:
            assert str(e) == expected.format(topic=topic)
            break
        except SinkError:
            assert queued(p) <= 5  # reconnecting: still the same five
    assert (queued(p), sink.in_flight) == (5, 5)
    topics = AdminClient({"bootstrap.servers": tansu.bootstrap}).list_topics(timeout=5).topics
    assert (topic in topics) is auto_create  # Tansu re-created it only when the producer let it


def test_a_retry_after_a_stall_writes_each_item_exactly_once(tansu: EmbeddedBroker) -> None:
    """The broker stalls with a batch in flight: the flushes during the stall fail, the one after it
    succeeds, and the topic holds every item once. Re-producing the in-flight batch would add copies."""
    topic = create_topic(tansu.bootstrap)
    # requests outlive the stall, so librdkafka itself never resends (that would be its duplicate, not ours)
    p = producer(tansu.bootstrap, message_timeout_ms=60_000, **{"socket.timeout.ms": 30_000})
    sink = sink_for(p, topic, flush_timeout_s=1.0)
    sink.add(items("first", 10))
    settle(sink, 10)

    stall(tansu)
    sink.add(items("second", 10))
    for _ in range(2):
        t0 = time.monotonic()
        with pytest.raises(SinkError) as failed:
            sink.flush()
        assert time.monotonic() - t0 < 1.0 + 1.0 + SLACK_S
        assert "10 message(s) in flight, 0 failed or unsent" in str(failed.value)
        assert queued(p) <= 10
    resume(tansu)

    deadline = time.monotonic() + 20
    acked = 0
    while sink.in_flight or sink.unsent:
        assert time.monotonic() < deadline, f"never delivered: {sink.in_flight} in flight"
        with contextlib.suppress(SinkError):  # still delivering: the runtime would retry too
            acked += sink.flush()
    assert acked == 10
    on_topic = messages_on(tansu.bootstrap, topic, 20)
    assert on_topic == Counter(items("first", 10) + items("second", 10))


def test_a_stop_event_interrupts_a_waiting_flush(tansu: EmbeddedBroker) -> None:
    """SIGTERM sets the runtime's stop event: a flush waiting on a stalled broker gives up within a
    poll slice instead of waiting out its timeout, and keeps its messages for the next run."""
    topic = create_topic(tansu.bootstrap)
    p = producer(tansu.bootstrap, message_timeout_ms=60_000, **{"socket.timeout.ms": 30_000})
    sink = sink_for(p, topic, flush_timeout_s=60.0)
    sink.add(items("first", 2))
    assert sink.flush() == 2

    stall(tansu)
    sink.add(items("second", 4))
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    t0 = time.monotonic()
    with pytest.raises(SinkError) as interrupted:
        sink.flush(stop=stop)
    assert 0.5 <= time.monotonic() - t0 < 0.5 + SLACK_S
    assert not isinstance(interrupted.value, FatalSinkError)
    assert "flush interrupted by shutdown; 4 message(s) in flight" in str(interrupted.value)
    assert (sink.in_flight, queued(p)) == (4, 4)


def test_a_fatal_producer_error_in_a_delivery_report_stops_the_sink(broker: str) -> None:
    """librdkafka fails the queued messages of a producer that hit a fatal error with _PURGE_QUEUE,
    and confluent-kafka hands the report over without the fatal flag: the sink stops (the producer
    must be recreated) instead of re-producing into it for ever. The report is the one a real
    delivery would give: the sink's own item, in flight through a real producer."""
    topic = create_topic(broker)
    sink = sink_for(producer(broker, 5000), topic, flush_timeout_s=5)
    sink.send(["a1"])
    assert sink.in_flight == 1  # the report below answers this message, as librdkafka gives it
    sink._on_delivery(
        KafkaError(KafkaError._PURGE_QUEUE, "Purged in queue"),
        Message(topic=topic, partition=0, key=b"a1", value=b"a1"),
    )
    with pytest.raises(FatalSinkError, match="failed for good"):
        sink.flush()


@pytest.fixture
def behind_proxy() -> Iterator[tuple[str, Any]]:
    """A broker of this test's own that every client reaches through a proxy the test can cut: what
    is queued while it is cut is never sent, and times out in the producer."""
    from tcp_proxy import CuttableProxy

    from streams.embedded import free_port

    proxy_port = free_port()
    broker = EmbeddedBroker(advertised_port=proxy_port).start()
    proxy = CuttableProxy(proxy_port, broker.port).start()
    yield f"127.0.0.1:{proxy_port}", proxy
    proxy.cut()
    crash(broker)


def test_a_failed_delivery_is_produced_again_once_in_its_place(behind_proxy: tuple[str, Any]) -> None:
    """Messages that time out while nobody reaches the broker come back in their delivery reports:
    the next flush produces exactly those again, each to the partition its key went to, in add order
    within it and ahead of what was added after them, and the topic holds every item once."""
    bootstrap, proxy = behind_proxy
    topic = create_topic(bootstrap)
    # not idempotent: Tansu fences an idempotent producer once its messages time out (the next test)
    p = producer(bootstrap, message_timeout_ms=1500, **{"enable.idempotence": False})
    sink = sink_for(p, topic, flush_timeout_s=3.0)
    sink.add(items("first", 6))
    settle(sink, 6)

    # the third added after the failures: produced after them
    failed = fail_then_deliver(sink, proxy, items("second", 6), items("third", 3))
    assert "0 message(s) in flight, 6 failed or unsent" in str(failed)

    on_topic = partitions_on(bootstrap, topic, 15)
    assert Counter(v for vs in on_topic.values() for v in vs) == Counter(
        items("first", 6) + items("second", 6) + items("third", 3)
    )
    # the same partitions, and in each the same order, as if none had failed
    assert on_topic == partitions_on(bootstrap, unsent_copy(bootstrap), 15)


def test_a_fenced_producer_stops_the_sink_instead_of_retrying_for_ever(behind_proxy: tuple[str, Any]) -> None:
    """lifemon's producer is idempotent: when its messages time out, librdkafka bumps the producer's
    epoch, and Tansu answers every later message with PRODUCER_FENCED. Re-producing them kept the
    monitor retrying for ever; the sink stops instead (the runtime exits, a restart resumes from the
    last checkpoint with a new producer)."""
    bootstrap, proxy = behind_proxy
    topic = create_topic(bootstrap)
    sink = sink_for(producer(bootstrap, message_timeout_ms=1500), topic, flush_timeout_s=3.0)
    sink.add(items("first", 3))
    settle(sink, 3)
    proxy.cut()
    sink.add(items("second", 3))
    with pytest.raises(SinkError):
        sink.flush()
    proxy.restore()
    deadline = time.monotonic() + 30
    while True:
        assert time.monotonic() < deadline, f"still retrying: {sink._pending()} ({sink._last_error})"
        try:
            sink.flush()
        except FatalSinkError as e:
            assert "failed for good and must be recreated" in str(e) and "PRODUCER_FENCED" in str(e)
            break
        except SinkError:
            continue
        pytest.fail("delivered: Tansu no longer fences a producer whose messages timed out")


def unsent_copy(bootstrap: str) -> str:
    """A topic of as many partitions with the same items, sent once without a failure."""
    copy = create_topic(bootstrap)
    sink = sink_for(producer(bootstrap, message_timeout_ms=20_000), copy, flush_timeout_s=5.0)
    sink.add(items("first", 6) + items("second", 6) + items("third", 3))
    settle(sink, 15)
    return copy


def partitions_on(
    bootstrap: str,
    topic: str,
    expected: int,
    timeout_s: float = 20.0,
    read: Callable[[Message], Any] = lambda m: m.value().decode(),
) -> dict[int, list[Any]]:
    """Each partition's values (or what `read` takes of its messages) in offset order."""
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"order-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
            "enable.auto.commit": False,
        }
    )
    c.subscribe([topic])
    seen: dict[int, list[Any]] = {}
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline and sum(map(len, seen.values())) < expected:
            for m in c.consume(100, 0.2):
                if m.error() is None:
                    seen.setdefault(m.partition(), []).append(read(m))
    finally:
        c.close()
    return seen


def test_a_dead_letter_produced_again_after_a_failed_delivery_keeps_its_headers(
    behind_proxy: tuple[str, Any],
) -> None:
    """A dead letter's reason and source offset travel in its headers (an alert's version too): one
    that timed out while nobody reached the broker is produced again with all of them, not as bare
    bytes no one can trace back to its record."""
    from streams.codecs import DeadLetter, RawRecord
    from streams.sinks.kafka import encode_dead_letter

    bootstrap, proxy = behind_proxy
    topic = create_topic(bootstrap)
    p = producer(bootstrap, message_timeout_ms=1500, **{"enable.idempotence": False})
    sink = KafkaTopicSink(
        p, topic, encode_dead_letter, "dlq→kafka", flush_timeout_s=3.0, metadata_timeout_s=1.0
    )
    dead = [
        DeadLetter(RawRecord("pfi.access", 0, offset, b"{", b"k%d" % offset), "schema", "ts", "missing")
        for offset in range(3)
    ]
    sink.add(dead[:1])
    settle(sink, 1)
    fail_then_deliver(sink, proxy, dead[1:])
    on_topic = partitions_on(bootstrap, topic, 3, read=lambda m: (m.key(), dict(m.headers() or ())))
    assert dict(kh for khs in on_topic.values() for kh in khs) == {
        d.raw.key: dict(encode_dead_letter(d)[2]) for d in dead
    }


def fail_then_deliver(
    sink: KafkaTopicSink, proxy: Any, failing: list[Any], after: Iterable[Any] = ()
) -> SinkError:
    """`failing` added while nobody reaches the broker: queued, never sent, they time out within the
    flush's wait; then `after` added, the broker reached again, and flushes until all is delivered.
    Returns what the failed flush raised."""
    proxy.cut()
    sink.add(failing)
    with pytest.raises(SinkError) as failed:
        sink.flush()
    sink.add(after)
    proxy.restore()
    deadline = time.monotonic() + 20
    while sink.in_flight or sink.unsent:
        assert time.monotonic() < deadline, f"never delivered: {sink._pending()} ({sink._last_error})"
        with contextlib.suppress(SinkError):
            sink.flush()
    return failed.value
