"""Re-keying through repartition topics: a detector that reads accesses by *customer* (topics are
keyed by actor) sees every read of one customer in one task, whichever partition each access came
from, and two instances sharing the group give the alerts of one.

The detector here is the smallest that needs it: a customer whose records were read by three
different employees. The reads of one customer come from actors on different partitions, so
without re-keying no task ever sees all three and nothing fires."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar

import orjson
from conftest import access, entitlement, fed
from pydantic import BaseModel
from test_pipeline import latest_alerts, make_config, read_all, send

from detectors import DetectorSpec
from detectors.base import Context, Finding, Store
from policy.model import DetectorSection
from schemas.models import Severity
from streams import runtime
from streams.codecs import RawRecord
from streams.config import Config
from streams.engine import IDLE_MARK, Engine, rekey
from streams.pseudonym import Pseudonymizer
from streams.runtime import REPARTITION_SETTINGS, Monitor, create_missing, ensure_topics, repartition_topic

READERS = 3  # distinct employees reading one customer that make an alert
KEY = b"k" * 32  # one pseudonym key for every instance, as in production


class NoParams(BaseModel):
    pass


class SharedCustomer:
    """A customer read by READERS different employees: keyed by customer, so its reads meet."""

    kind: ClassVar[str] = "shared_customer"
    inputs: ClassVar[dict[str, str]] = {"access": "subject_ids"}
    Params: ClassVar[type[BaseModel]] = NoParams

    def __init__(self, section: DetectorSection, params: BaseModel, store: Store):
        self.section, self.store = section, store

    @staticmethod
    def load_value(data: Any) -> Any:
        return data

    def process(self, stream: str, events: Sequence[Any], ctx: Context) -> Iterable[Finding]:
        for ev in events:
            (customer,) = ev.subject_ids  # re-keyed: one customer per event
            readers = self.store.get(customer, {})
            if ev.actor_id in readers or len(readers) >= READERS:
                continue
            readers[ev.actor_id] = ev.ts
            self.store.put(customer, readers)
            if len(readers) == READERS:
                yield Finding(
                    detector=self.kind,
                    rule_id=self.section.rule_id,
                    key=customer,
                    window_start=min(readers.values()),
                    window_end=max(readers.values()),
                    severity=Severity.medium,
                    revision=1,
                    closed=False,
                    summary=f"{READERS} employees read one customer",
                    jr_class="C2",
                    subject_count=1,
                    subject_sample=[customer],
                    counts={"readers": READERS},
                )

    def on_timer(self, key: str, deadline_ms: int, ctx: Context) -> Iterable[Finding]:
        return ()


SPEC = DetectorSpec(
    SharedCustomer,
    DetectorSection(
        rule_id="TEST-SC-1",
        rule_version=1,
        title_zh="测试",
        title_en="test",
        regulation=[{"zh": "测试", "en": "test"}],
    ),
    NoParams(),
)


def reads() -> list[Any]:
    """Customer Ck is read by actors k, k+1, k+2 (of nine) when k is even, by two when k is odd;
    actor a8's last access names two customers at once (fanned out to both)."""
    events = []
    for k in range(10):
        for j in range(3 if k % 2 == 0 else 2):
            actor = f"a{(k + j) % 9}"
            events += access(actor, first_customer=k, start=(k * 10 + j) * 1000, customers=1)
    events += access("a8", start=500_000, n=1, customers=2, per_event=2, first_customer=11)
    for a in ("a0", "a1"):
        events += access(a, start=600_000 + int(a[1]) * 1000, first_customer=11)
    return events


EXPECTED = {f"C{k:07d}" for k in range(0, 10, 2)} | {"C0000011"}


def test_rekey_fans_a_list_out_one_value_each(catalog) -> None:
    (_, ev), *_ = fed("access", access("a1", customers=3, per_event=3))
    pairs = rekey("subject_ids", [ev])
    assert [k for k, _ in pairs] == ev.subject_ids
    assert [e.subject_ids for _, e in pairs] == [[c] for c in ev.subject_ids]
    assert ev.subject_ids == [k for k, _ in pairs]  # the original is not changed


def test_in_process_the_engine_rekeys_locally(catalog) -> None:
    engine = Engine([SPEC], catalog, pseudonymize=str)
    alerts = []
    for actor_batch in range(9):  # each actor's accesses in a batch of its own, as partitions deliver them
        events = [e for e in reads() if e.actor_id == f"a{actor_batch}"]
        alerts += engine.process("access", "t", 0, fed("access", events))
    assert {a.subjects_sample[0] for a in alerts} == EXPECTED


def test_a_repartition_topic_delivers_each_key_once(catalog) -> None:
    engine = Engine([SPEC], catalog, pseudonymize=str)
    (_, ev), *_ = fed("access", access("a1", customers=2, per_event=2))
    pairs = [e for _, e in rekey("subject_ids", [ev])]
    # the fan-out, delivered twice (a producer retry)
    records = [(RawRecord("r", 0, i, None), e) for i, e in enumerate(pairs + pairs)]
    engine.process_rekeyed("access", "subject_ids", "r", 0, records)
    assert sum(engine.duplicates.values()) == 2


def group(
    n: int, names: dict[str, str], broker: str, tmp_path: Any, monitor: Callable[[Config], Monitor]
) -> list[Monitor]:
    """`n` monitors of one consumer group (`monitor` of each one's configuration), each with its own
    ClickHouse database and state folder, checkpointing every 0.3 s."""
    monitors = []
    for i in range(n):
        config = make_config(
            {**names, "database": f"{names['database']}_{i}"},
            broker,
            "chdb://unused",
            checkpoint_interval_s=0.3,
        )
        config.data_dir = tmp_path / f"i{i}"
        monitors.append(monitor(config))
    return monitors


def run_instances(broker, names, tmp_path, instances: int, ch, catalog) -> dict[str, Any]:
    """`instances` monitors in one consumer group (threads), each with its own ClickHouse
    database; returns the final alerts from the alerts topic."""
    monitors = group(
        instances,
        names,
        broker,
        tmp_path,
        lambda config: Monitor(config, broker, ch, [SPEC], catalog, Pseudonymizer(KEY)),
    )
    # alone, idle as this file's other single runs (an idle end waits for every input, the
    # repartition topic's too, to be caught up); two must outlast the second's join and the
    # rebalance, or the first ends before it and nothing moves
    run_together(monitors, [3 if instances == 1 else 6] * instances)
    return latest_alerts(read_all(broker, monitors[0].config.topics.alerts, timeout_s=5))


def run_together(
    monitors: list[Monitor], idle_exit_s: Sequence[float], max_seconds: float = 120
) -> list[float]:
    """Each monitor's batch run in a thread of its own, each started 1.5 s after the one before (it
    joins while that one is at work: a rebalance moves partitions). Returns each run's seconds; an
    instance that died fails the test (a thread's exception is otherwise only printed)."""
    took: list[float] = [0.0] * len(monitors)
    died: list[BaseException] = []

    def run(i: int) -> None:
        began = time.monotonic()
        try:
            monitors[i].run(idle_exit_s=idle_exit_s[i], max_seconds=max_seconds)
        except BaseException as e:
            died.append(e)
        took[i] = time.monotonic() - began

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(monitors))]
    for t in threads:
        t.start()
        time.sleep(1.5)
    for t in threads:
        t.join(timeout=max_seconds + 60)
        assert not t.is_alive()
    if died:
        raise died[0]
    return took


def test_two_instances_give_the_alerts_of_one(broker, ch, catalog, names, tmp_path) -> None:
    results = []
    for instances in (1, 2):
        run_names = {**names, "group": f"{names['group']}-{instances}", "tag": f"{names['tag']}{instances}"}
        config = make_config(run_names, broker, "chdb://unused")
        ensure_topics(broker, config)
        send(broker, config.topics.entitlements, [entitlement(f"a{i}") for i in range(9)])
        for ev in reads():  # keyed by actor, as the access topic is
            send(broker, config.topics.access, [ev], key=ev.actor_id.encode())
        results.append(run_instances(broker, run_names, tmp_path / str(instances), instances, ch, catalog))
        assert repartition_topic(config, "access", "subject_ids").startswith(run_names["group"])
    one, two = results
    customers = {o["unmapped"]["subjects_sample"][0] for o in one.values()}
    pz = Pseudonymizer(KEY)
    assert customers == {pz(c) for c in EXPECTED}  # every customer read by three, and only those
    assert set(two) == set(one)
    assert {u: o["message"] for u, o in two.items()} == {u: o["message"] for u, o in one.items()}


class RecordReader(SharedCustomer):
    """The same detector, reading only the accesses that name stored records (as retention does)."""

    kind: ClassVar[str] = "record_reader"
    needs: ClassVar[dict[str, str]] = {"access": "record_ids"}


def spec_of(cls: type) -> DetectorSpec:
    return DetectorSpec(cls, SPEC.section, NoParams())


def named_records(events: list[Any]) -> list[Any]:
    """Every third access names the stored record it read."""
    return [e.model_copy(update={"record_ids": [f"R{i}"]}) if i % 3 == 0 else e for i, e in enumerate(events)]


def test_a_re_keyed_input_carries_only_what_some_reader_reads(catalog) -> None:
    alone = Engine([spec_of(RecordReader)], catalog, pseudonymize=str)
    assert alone.needs == {("access", "subject_ids"): ("record_ids",)}
    both = Engine([spec_of(RecordReader), SPEC], catalog, pseudonymize=str)
    assert both.needs == {("access", "subject_ids"): ()}  # the other reader reads every access
    events = [ev for _, ev in fed("access", named_records(reads()))]
    assert [e for _, e in alone.rekeyed_events("access", "subject_ids", events)] == [
        e for e in events if e.record_ids
    ]
    assert len(both.rekeyed_events("access", "subject_ids", events)) == len(rekey("subject_ids", events))


def test_a_record_carrying_any_of_the_needed_attributes_is_re_keyed() -> None:
    """Two readers needing different attributes: a record with either goes, one with neither not."""
    events = [
        ev.model_copy(update=update)
        for ev, update in zip(
            reads()[:4],
            [{"record_ids": ["R1"]}, {"approval_id": "AP1"}, {}, {"record_ids": [], "approval_id": None}],
            strict=True,
        )
    ]
    kept = [ev for _, ev in rekey("subject_ids", events, ("approval_id", "record_ids"))]
    assert kept == events[:2]


def test_accesses_no_reader_needs_stay_out_of_the_repartition_topic(
    broker, ch, catalog, names, tmp_path
) -> None:
    config = make_config(names, broker, "chdb://unused")
    ensure_topics(broker, config)
    events = named_records(reads())
    for ev in events:
        send(broker, config.topics.access, [ev], key=ev.actor_id.encode())
    config.data_dir = tmp_path
    stats = Monitor(config, broker, ch, [spec_of(RecordReader)], catalog, Pseudonymizer(KEY)).run(
        idle_exit_s=3, max_seconds=60
    )
    assert sum(stats.dead.values()) == 0  # the marks read back are not taken for bad events
    topic = repartition_topic(config, "access", "subject_ids")
    messages = read_all(broker, topic, timeout_s=5)
    carried = [orjson.loads(m.value()) for m in messages if not m.headers()]
    marks = [orjson.loads(m.value()) for m in messages if m.headers() == [("lifemon.mark", b"")]]
    # the left-out accesses still move the marks: every partition hears how far the source read
    assert {p for m in messages if m.headers() for p in [m.partition()]} == set(
        range(config.kafka.partitions)
    )
    assert max(t for _, _, t in marks) == max(ev.ts for ev in events)
    wanted = [ev for ev in events if ev.record_ids]
    assert sorted(c["event_id"] for c in carried) == sorted(ev.event_id for ev in wanted)
    assert all(c["record_ids"] for c in carried)


def test_a_malformed_mark_does_not_stop_the_monitor(broker, ch, catalog, names, tmp_path) -> None:
    """A record on a repartition topic with the mark header but not a mark's value (an older
    writer, a tool, a corrupted copy) is data like any other: the process must not die on it."""
    config = make_config(names, broker, "chdb://unused")
    ensure_topics(broker, config)
    topic = repartition_topic(config, "access", "subject_ids")
    create_missing(broker, config, {topic: REPARTITION_SETTINGS})
    for value in (b"not json", b'["only a topic"]', b""):
        send(broker, topic, [(value, [("lifemon.mark", b"")])])
    events = reads()
    for ev in events:
        send(broker, config.topics.access, [ev], key=ev.actor_id.encode())
    config.data_dir = tmp_path
    Monitor(config, broker, ch, [SPEC], catalog, Pseudonymizer(KEY)).run(idle_exit_s=3, max_seconds=60)
    alerts = latest_alerts(read_all(broker, config.topics.alerts, timeout_s=5))
    assert {o["unmapped"]["subjects_sample"][0] for o in alerts.values()} == {
        Pseudonymizer(KEY)(c) for c in EXPECTED
    }
    dead = read_all(broker, config.topics.dlq, expect_at_least=3, timeout_s=10)
    assert sum(dict(m.headers()).get("source.topic") == topic.encode() for m in dead) == 3


def test_an_instance_with_nothing_to_read_marks_its_source_partitions_idle(
    broker, ch, catalog, names, tmp_path
) -> None:
    """Another instance's task waits for the first mark of each source partition it does not read
    (`Task.foreign_marks`). An instance none of whose tasks was ever fed has no clock to mark its
    empty partitions with: it marks them idle, once, from each source partition to every partition
    of the repartition topic, or the other instance's tasks would wait for it for ever."""
    config = make_config(names, broker, "chdb://unused")
    monitor = idle_monitor(config, broker, ch, catalog, tmp_path)
    assert marks_sent(monitor, config, broker) == [
        (q, config.topics.access, p, IDLE_MARK) for q in range(3) for p in range(3)
    ]


def idle_monitor(config: Config, broker: str, ch: Any, catalog: Any, tmp_path: Any) -> Monitor:
    """An instance whose access partitions are empty, nothing fed to any of its tasks."""
    ensure_topics(broker, config)
    config.data_dir = tmp_path
    return Monitor(config, broker, ch, [SPEC], catalog, Pseudonymizer(KEY))


def marks_sent(monitor: Monitor, config: Config, broker: str) -> list[tuple[Any, ...]]:
    """(partition, source topic, source partition, time) of the marks `monitor` sends to the
    accesses' repartition topic while it runs as a service (it marks while it runs, not at an end)."""
    running = threading.Thread(target=monitor.run, kwargs={"max_seconds": 60})
    running.start()
    try:
        sent = read_all(broker, repartition_topic(config, "access", "subject_ids"), 9, timeout_s=30)
    finally:
        monitor.stop_event.set()
        running.join(timeout=60)
    return sorted((m.partition(), *orjson.loads(m.value())) for m in sent)


def test_a_source_partition_that_delivers_nothing_marks_idle_once_it_no_longer_holds(
    broker, ch, catalog, names, tmp_path, monkeypatch
) -> None:
    """A source partition that reports records and delivers none (only aborted transactions in it;
    on the faust runtime, one whose records retention deleted) is never read to its end: after
    UNREAD_HOLD_S it no longer holds this instance's tasks (`Monitor._holding`), and it marks the
    repartition topic idle so that it holds no other instance's either, which would otherwise wait
    for its first mark for ever (`Task.foreign_marks`)."""
    monkeypatch.setattr(runtime, "UNREAD_HOLD_S", 2.0)
    config = make_config(names, broker, "chdb://unused")
    monitor = idle_monitor(config, broker, ch, catalog, tmp_path)
    unread, reported = (config.topics.access, 1), monitor._end_offset
    monitor._end_offset = lambda t, p: 57 if (t, p) == unread else reported(t, p)  # type: ignore[method-assign]
    assert marks_sent(monitor, config, broker) == [
        (q, config.topics.access, p, IDLE_MARK) for q in range(3) for p in range(3)
    ]


def test_marks_are_told_from_events_whatever_their_headers() -> None:
    from streams.runtime import _split_marks

    mark = [("lifemon.mark", b"")]
    raws = [
        RawRecord("r", 0, 0, b"{}"),
        RawRecord("r", 0, 1, b'["t", 1, 5]', headers=mark),
        RawRecord("r", 0, 2, b"{}", headers=[("traceparent", b"x")]),  # someone else's header: an event
        RawRecord("r", 0, 3, b"[1]", headers=mark),  # no mark: a dead letter
        RawRecord("r", 0, 4, b"{}"),
    ]
    events, marks, dead = _split_marks(raws)
    assert [r.offset for r in events] == [0, 2, 4]
    assert marks == [("t", 1, 5)]
    assert [d.raw.offset for d in dead] == [3]
    events, marks, dead = _split_marks([raws[0], raws[1], raws[4]])
    assert ([r.offset for r in events], marks, dead) == ([0, 4], [("t", 1, 5)], [])


class ByRecord(SharedCustomer):
    """Reads accesses keyed by the records they name (as deleted_record_use does): each copy keeps
    every customer of its access, pseudonymized."""

    kind: ClassVar[str] = "by_record"
    inputs: ClassVar[dict[str, str]] = {"access": "record_ids"}

    def process(self, stream: str, events: Sequence[Any], ctx: Context) -> Iterable[Finding]:
        return ()


def test_a_record_accepted_at_its_source_is_not_refused_re_keyed(
    broker, ch, catalog, names, tmp_path
) -> None:
    """Pseudonyms are longer than short ids: an access naming many customers grows when re-keyed.
    Accepted at its source, it must reach the readers of its re-keyed copy, not the DLQ."""
    wide = access("a0", n=1, customers=120, per_event=120, record_ids=["R1"])[0]
    limit = len(wide.model_dump_json()) + 200  # the source record passes
    config = make_config(names, broker, "chdb://unused", max_record_bytes=limit)
    ensure_topics(broker, config)
    send(broker, config.topics.access, [wide], key=b"a0")
    config.data_dir = tmp_path
    stats = Monitor(config, broker, ch, [spec_of(ByRecord)], catalog, Pseudonymizer(KEY)).run(
        idle_exit_s=3, max_seconds=60
    )
    topic = repartition_topic(config, "access", "record_ids")
    (copy,) = [m for m in read_all(broker, topic, timeout_s=5) if not m.headers()]
    assert len(copy.value()) > limit  # the re-keyed copy did grow past it
    assert sum(stats.dead.values()) == 0
