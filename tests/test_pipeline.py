"""End to end through a real Tansu broker and chDB: produce, run the monitor, read the alerts topic,
the DLQ topic and ClickHouse."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    ConsumerGroupState,
    KafkaError,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic
from conftest import T0, access, entitlement

from detectors import load_detectors
from schemas.models import EVENT_MODELS
from streams.codecs import BUILTIN_SCHEMA_IDS, SchemaRegistry, encode_avro, load_schema
from streams.config import Config, load_config
from streams.dead_letter_query import query_dead_letters
from streams.dead_letter_query import render as render_dead_letters
from streams.pseudonym import Pseudonymizer
from streams.runtime import CopartitionError, Monitor, ensure_topics
from streams.stats import Stats

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parent.parent


def make_config(names: dict[str, str], bootstrap: str, dsn: str, **kw: Any) -> Config:
    topics = {s: f"pfi.{s}.{names['tag']}" for s in [*EVENT_MODELS, "alerts", "incidents", "dlq"]}
    return load_config(
        None,
        kafka={
            "bootstrap": bootstrap,
            "group_id": names["group"],
            "batch_size": 500,
            "poll_timeout_s": 0.2,
            "partitions": 3,
        },
        topics=topics,
        clickhouse={"dsn": dsn, "database": names["database"]},
        **{"checkpoint_interval_s": 0.5, **kw},
    )


def send(bootstrap: str, topic: str, values: list[Any], key: bytes = b"e1") -> None:
    """Records stamped as a shipper stamps them: Kafka CreateTime = the event's time (raw bytes:
    the test day's start), since the decoder judges `ts` against it."""
    p = Producer({"bootstrap.servers": bootstrap})
    for v in values:
        headers = None
        if isinstance(v, tuple):
            v, headers = v
        stamp = T0 if isinstance(v, bytes) else v.ts
        value = v if isinstance(v, bytes) else v.model_dump_json().encode()
        p.produce(topic, value=value, key=key, headers=headers, timestamp=stamp)
    assert p.flush(10) == 0


def read_all(bootstrap: str, topic: str, expect_at_least: int = 1, timeout_s: float = 20) -> list[Any]:
    """The topic's records from its start to the end its fetches report, once `expect_at_least`
    came (an error if that end is not reached by `timeout_s`); what came by then, where fewer came.
    To the end, not "and whatever is right behind": a run's revisions outnumber one fetch, and a
    reader stopping short shows an alert's older revision or none (a crash test went red on a loaded
    CI that way). Ends as fetches report them, not ListOffsets: Tansu answers that with the last
    batch's base offset + 1. Its partitions are assigned, not subscribed to: joining a group cost
    every read ~3 s on Tansu, which holds a first JoinGroup for half a session timeout."""
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{time.time_ns()}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    out: list[Any] = []
    behind: set[int] | None = None  # partitions whose end no fetch has reported since their last record
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if behind is None:  # a topic not created yet is waited for, as a subscription would
            t = c.list_topics(topic, timeout=5).topics.get(topic)
            if t is None or t.error is not None or not t.partitions:
                time.sleep(0.2)
                continue
            c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in t.partitions])
            behind = set(t.partitions)
        for m in c.consume(500, 0.5):
            if m.error() is None:
                out.append(m)
                behind.add(m.partition())
            elif m.error().code() == KafkaError._PARTITION_EOF:
                behind.discard(m.partition())
        if len(out) >= expect_at_least and not behind:
            break
    else:
        # what was expected came, yet a partition's end never did: a part read as a whole would
        # hide a duplicate, or make a live run equal a replay
        assert len(out) < expect_at_least or not behind, f"{topic} not read to its end within {timeout_s}s"
    c.close()
    return out


def latest_alerts(msgs: list[Any]) -> dict[str, dict]:
    best: dict[str, dict] = {}
    for m in msgs:
        o = orjson.loads(m.value())
        uid = o["finding_info"]["uid"]
        if uid not in best or o["unmapped"]["revision"] >= best[uid]["unmapped"]["revision"]:
            best[uid] = o
    return best


def monitor(config: Config, ch: Any, policy: Any, catalog: Any, runtime: type[Monitor] = Monitor) -> Monitor:
    ensure_topics(config.kafka.bootstrap, config)
    return runtime(
        config,
        config.kafka.bootstrap,
        ch,
        load_detectors(policy),
        catalog,
        Pseudonymizer.from_env(allow_ephemeral=False),
    )


def test_the_tests_reader_reads_a_topic_to_its_end(broker, names) -> None:
    """Every equality of a live run with a replay rests on reading the whole alerts topic: a reader
    that stopped a fetch or two after its first records compared a crash test's older revisions."""
    topic = f"reader-{names['tag']}"
    admin = AdminClient({"bootstrap.servers": broker})
    admin.create_topics([NewTopic(topic, 3, 1)])[topic].result()
    p = Producer({"bootstrap.servers": broker, "linger.ms": 50})
    for i in range(3000):
        p.produce(topic, value=str(i).encode(), partition=i % 3)
        if i % 1000 == 999:  # in batches, as a run's checkpoints write them
            p.flush(10)
    assert sorted(int(m.value()) for m in read_all(broker, topic)) == list(range(3000))


def test_end_to_end_alerts_dlq_clickhouse(broker, ch, names, policy, catalog, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="streams.runtime")
    config = make_config(names, broker, "chdb://unused", max_record_bytes=4000)
    m = monitor(config, ch, policy, catalog)
    t = config.topics
    send(broker, t.entitlements, [entitlement("e1")])
    events = access("e1", customers=60, every_s=5)
    registry = SchemaRegistry()
    wire = encode_avro(
        "access",
        events[0].model_copy(update={"event_id": "avro-wire", "subject_ids": ["C9000001"]}),
        registry,
    )
    header_body = encode_avro(
        "access",
        events[1].model_copy(update={"event_id": "avro-hdr", "subject_ids": ["C9000002"]}),
        registry,
        wire=False,
    )
    bad = [
        b"{not json",
        orjson.dumps({**events[0].model_dump(mode="json"), "ts": "yesterday"}),
        b"\x00\x00\x00\x03\xe7" + b"\x02abc",  # Confluent wire format, schema id 999
        orjson.dumps({**events[0].model_dump(mode="json"), "purpose": "x" * 5000}),
    ]
    send(
        broker,
        t.access,
        [
            *events,
            wire,
            (header_body, [("schema.id", str(BUILTIN_SCHEMA_IDS["access"]).encode())]),
            (bad[0], [("producer.trace", b"t-1")]),
            *bad[1:],
        ],
    )
    started = time.time() * 1000 - 1000
    stats = m.run(idle_exit_s=1.5, max_seconds=60)

    assert stats.events["access"] == 62 and sum(stats.dead.values()) == 4 and stats.misrouted["access"] == 0
    alerts = latest_alerts(read_all(broker, t.alerts))
    (ocsf,) = alerts.values()
    assert ocsf["class_uid"] == 2004 and ocsf["unmapped"]["subject_count"] == 62  # 60 JSON + 2 Avro customers
    assert (
        ocsf["finding_info"]["title"] == "批量查询个人金融信息 / Bulk query of personal financial information"
    )
    assert ocsf["evidences"][0]["actor"]["user"]["uid"] == "e1" and ocsf["severity"] == "High"
    assert all(s.startswith("p_") for s in ocsf["unmapped"]["subjects_sample"])
    assert b"C0000001" not in orjson.dumps(ocsf)  # raw customer ids never leave the process

    db = names["database"]
    rows = ch.query(f"SELECT alert_id, subject_count, severity FROM {db}.alerts FINAL").result_rows
    assert rows == [(ocsf["finding_info"]["uid"], 62, "high")]
    (total,) = ch.query(
        f"SELECT sum(events) FROM {db}.event_rollups FINAL WHERE stream = 'access'"
    ).result_rows[0]
    assert total == 62
    # 62 property records past art. 5's 50: a leakage incident, in ClickHouse for `lifemon incidents`
    (incident,) = ch.query(
        f"SELECT key, severity, subjects_distinct, records, alert_ids FROM {db}.incidents FINAL"
    ).result_rows
    assert incident == ("e1", "high", 62, 62, [ocsf["finding_info"]["uid"]])
    kinds = sorted(r[0] for r in ch.query(f"SELECT kind FROM {db}.dead_letters").result_rows)
    assert kinds == ["invalid", "malformed", "oversized", "unknown_schema"]
    # dated when refused, not by their Kafka time (the test day's start): `dead-letters --since 24h`
    # lists them (a probe's refusals of a minute ago read as 11 months old)
    (oldest,) = ch.query(f"SELECT min(toUnixTimestamp64Milli(seen_at)) FROM {db}.dead_letters").result_rows[0]
    assert started <= oldest <= time.time() * 1000

    dlq = read_all(broker, t.dlq, expect_at_least=4)
    headers = [dict(m.headers()) for m in dlq]
    assert sorted(h["error.kind"].decode() for h in headers) == kinds
    invalid = next(h for h in headers if h["error.kind"] == b"invalid")
    assert invalid["error.field"] == b"ts" and invalid["source.topic"].decode() == t.access
    # the record's own headers come with it, for its repair and replay (a probe's were dropped)
    malformed = next(h for h in headers if h["error.kind"] == b"malformed")
    assert malformed["producer.trace"] == b"t-1" and "producer.trace" not in invalid
    assert {m.value() for m in dlq} >= set(bad[:3])  # the original bytes, for repair and replay
    # the first record refused for each reason is in the log, with where all of them went; no value
    said = [r.getMessage() for r in caplog.records if "record refused (" in r.getMessage()]
    assert len(said) == 4 and all(t.dlq in line and "lifemon dead-letters" in line for line in said)
    assert not any("yesterday" in line or "xxxxx" in line for line in said)
    listed = query_dead_letters(ch, db)
    assert sorted(r["kind"] for r in listed) == kinds and {r["records"] for r in listed} == {1}
    text = render_dead_letters(listed)
    assert f"{t.access}  invalid ts" in text and "yesterday" not in text
    cut = render_dead_letters(query_dead_letters(ch, db, limit=2))
    assert cut.splitlines()[-1] == "2 of 4 lines shown, most refused first; --limit 4 shows them all"

    c = Consumer({"bootstrap.servers": broker, "group.id": names["group"]})
    committed = c.committed([TopicPartition(t.access, p) for p in range(3)], timeout=10)
    assert sum(tp.offset for tp in committed if tp.offset > 0) == 66  # everything, dead letters included
    c.close()


def test_a_refused_reference_record_is_in_dlq_not_in_the_streams_read(
    broker, ch, names, policy, catalog
) -> None:
    """Every start reads the reference topics again: a refused consent is a dead letter (dlq=), not a
    record of a stream the line lists (a probe's line after a start: `6 records ... consents=0`)."""
    config = make_config(names, broker, "chdb://unused")
    m = monitor(config, ch, policy, catalog)
    t = config.topics
    send(broker, t.entitlements, [entitlement("e1")])
    send(broker, t.consents, [b'{"subject_id": "C0002350", "ts":'])
    send(broker, t.access, access("e1", customers=3, every_s=5))
    stats = m.run(idle_exit_s=1.5, max_seconds=60)
    assert stats.dead["consents"] == 1 and stats.total() == stats.events["access"] == 3
    line = stats.line()
    assert "consents" not in line and " 3 records" in line and "dlq=1" in line, line
    # caught up, every partition's end reported: 0 behind; before that it is not known, not 0 (a
    # probe's restarted run said lag=0 for 7 s with 200 000 records unread)
    assert line.endswith("lag=0") and Stats().line().endswith("lag=?")
    # a restart reads the reference topics again, but sends the refused record no second time (a
    # probe's was on the dead-letter topic once per start); one refused since is sent
    send(broker, t.consents, [b'{"subject_id": "C0002351", "ts":'])
    again = monitor(config, ch, policy, catalog).run(idle_exit_s=1.5, max_seconds=60)
    assert again.dead["consents"] == 1
    dlq = read_all(broker, t.dlq, expect_at_least=2)
    assert sorted(m.value() for m in dlq) == [
        b'{"subject_id": "C0002350", "ts":',
        b'{"subject_id": "C0002351", "ts":',
    ]


def test_replayed_inserts_are_deduplicated(broker, ch, names, policy, catalog) -> None:
    """Running the same input twice under a new group re-inserts the same alerts and rollups;
    deterministic ids, dedup tokens and Replacing engines keep ClickHouse exact."""
    config = make_config(names, broker, "chdb://unused")
    ensure_topics(broker, config)
    send(broker, config.topics.entitlements, [entitlement("e1")])
    send(broker, config.topics.access, access("e1", customers=40, every_s=5))
    send(
        broker,
        config.topics.access,
        access("e1", customers=5, first_customer=40, start=200_000),
        key=b"misrouted",
    )
    send(broker, config.topics.access, access("e1", customers=3, first_customer=50, start=300_000), key=None)
    from test_offscope_marketing import push

    send(broker, config.topics.marketing, [push("C1")], key=b"C1")  # keyed by its customer id, rightly
    stats = monitor(config, ch, policy, catalog).run(idle_exit_s=1.5, max_seconds=60)
    assert stats.misrouted["access"] == 8  # keyed by something other than actor_id, or not at all: counted
    assert stats.misrouted["marketing"] == 0  # compared before the pseudonym replaced the id
    again = config.model_copy(
        update={"kafka": config.kafka.model_copy(update={"group_id": names["group"] + "-2"})}
    )
    monitor(again, ch, policy, catalog).run(idle_exit_s=1.5, max_seconds=60)
    db = names["database"]
    # the bulk query and the push without consent, each once
    assert ch.query(f"SELECT count() FROM {db}.alerts FINAL").result_rows == [(2,)]
    assert ch.query(f"SELECT sum(events) FROM {db}.event_rollups FINAL").result_rows == [(49,)]


def write_config(config: Config, path: Path) -> Path:
    """The config as a YAML file for `lifemon run --config`."""
    path.write_text(yaml.safe_dump(orjson.loads(config.model_dump_json(exclude={"instance"}))))
    return path


def run_cli(
    config_path: Path, until_idle: float, env_extra: dict[str, str] | None = None
) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env_extra or {})}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streams.cli",
            "run",
            "--config",
            str(config_path),
            "--quiet",
            "--until-idle",
            str(until_idle),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def wait_assigned(bootstrap: str, group: str, proc: subprocess.Popen, timeout_s: float = 90) -> None:
    """Until the group is stable with partitions assigned: a process's start-up time depends on the
    machine's load, a fixed sleep does not."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    deadline = time.monotonic() + timeout_s
    while True:
        assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
        assert time.monotonic() < deadline, f"group {group} never got its partitions"
        described = admin.describe_consumer_groups([group])[group].result(timeout=10)
        if described.state == ConsumerGroupState.STABLE:  # Tansu lists no members, only the state
            return
        time.sleep(0.2)


def run_until_committed(
    m: Monitor, bootstrap: str, group: str, topic: str, records: int, max_seconds: float
) -> threading.Thread:
    """The monitor running on a thread of its own, once it has committed `records` of `topic`."""
    runner = threading.Thread(target=m.run, kwargs={"idle_exit_s": 3, "max_seconds": max_seconds})
    runner.start()
    deadline = time.monotonic() + 30
    while committed_offsets(bootstrap, group, topic) < records:
        assert time.monotonic() < deadline, f"{records} records of {topic} never committed"
        time.sleep(0.2)
    return runner


def committed_offsets(bootstrap: str, group: str, topic: str) -> int:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    got = c.committed([TopicPartition(topic, p) for p in range(3)], timeout=10)
    c.close()
    return sum(tp.offset for tp in got if tp.offset > 0)


def test_kill_9_mid_window_loses_nothing_and_duplicates_nothing(broker, names, tmp_path) -> None:
    """40 lookups, checkpointed, then kill -9; 20 more after the restart: the window still reaches
    the threshold of 50 (state restored), and the alert exists once."""
    config = make_config(names, broker, f"chdb://{tmp_path / 'chdb'}")
    ensure_topics(broker, config)
    path = write_config(config, tmp_path / "lifemon.yaml")
    t = config.topics
    send(broker, t.entitlements, [entitlement("e1", role="outreach_marketing")])
    send(broker, t.access, access("e1", customers=40, every_s=10))

    first = run_cli(path, until_idle=120)
    deadline = time.monotonic() + 60
    while committed_offsets(broker, names["group"], t.access) < 40:
        assert first.poll() is None, first.stdout.read().decode()
        assert time.monotonic() < deadline, "the first run never checkpointed"
        time.sleep(0.3)
    first.kill()  # SIGKILL: no flush, no commit, no goodbye
    first.wait()
    assert latest_alerts(read_all(broker, t.alerts, timeout_s=1)) == {}

    send(broker, t.access, access("e1", customers=20, first_customer=40, start=400_000, every_s=10))
    second = run_cli(path, until_idle=2)
    out, _ = second.communicate(timeout=90)
    assert second.returncode == 0, out.decode()
    alerts = latest_alerts(read_all(broker, t.alerts))
    assert len(alerts) == 1
    (a,) = alerts.values()
    assert a["unmapped"]["subject_count"] == 60 and a["evidences"][0]["actor"]["user"]["uid"] == "e1"
    assert committed_offsets(broker, names["group"], t.access) == 60


def test_sigterm_finishes_the_batch_flushes_and_commits(broker, names, tmp_path) -> None:
    config = make_config(names, broker, f"chdb://{tmp_path / 'chdb'}", checkpoint_interval_s=3600)
    ensure_topics(broker, config)
    path = write_config(config, tmp_path / "lifemon.yaml")
    send(broker, config.topics.entitlements, [entitlement("e1")])
    send(broker, config.topics.access, access("e1", customers=70, every_s=5))
    proc = run_cli(path, until_idle=600)
    wait_assigned(broker, names["group"], proc)
    time.sleep(5)  # process the 70 events; nothing is committed before the shutdown checkpoint
    assert committed_offsets(broker, names["group"], config.topics.access) == 0 and proc.poll() is None
    proc.terminate()
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out.decode()
    assert committed_offsets(broker, names["group"], config.topics.access) == 70
    assert len(latest_alerts(read_all(broker, config.topics.alerts))) == 1


def test_a_burst_of_changed_state_is_checkpointed_before_the_interval(
    broker, ch, names, policy, catalog
) -> None:
    """Uncheckpointed state is held in memory: many changed keys bring the checkpoint forward."""
    config = make_config(names, broker, "chdb://unused", checkpoint_interval_s=3600, checkpoint_dirty_keys=20)
    m = monitor(config, ch, policy, catalog)
    for i in range(40):  # a window and a timer per employee: 80 keys and more
        send(broker, config.topics.access, access(f"e{i}", start=i), key=f"e{i}".encode())
    runner = threading.Thread(target=m.run, kwargs={"max_seconds": 60})
    runner.start()
    try:
        deadline = time.monotonic() + 30
        while committed_offsets(broker, names["group"], config.topics.access) < 40:
            assert time.monotonic() < deadline, "nothing committed: the hour-long interval alone decided"
            time.sleep(0.3)
    finally:
        m.stop_event.set()
        runner.join(30)
    assert m.engine.dirty_count() == 0


def test_inputs_partitioned_differently_are_refused_at_start(broker, ch, names, policy, catalog) -> None:
    """A topic auto-created with another partition count would split one key's state between
    instances: lifemon says which topics differ and does not start."""
    from confluent_kafka.admin import AdminClient, NewTopic

    config = make_config(names, broker, "chdb://unused")
    admin = AdminClient({"bootstrap.servers": broker})
    admin.create_topics([NewTopic(config.topics.transfer, 5)])[config.topics.transfer].result()
    m = monitor(config, ch, policy, catalog)
    with pytest.raises(CopartitionError, match=rf"{config.topics.transfer}: 5"):
        m.run(idle_exit_s=1, max_seconds=30)


def test_a_clickhouse_outage_pauses_consumption_without_leaving_the_group(
    broker, ch, names, policy, catalog
) -> None:
    """ClickHouse refuses inserts (TOO_MANY_PARTS, its own back-pressure) for longer than
    max.poll.interval.ms: the checkpoint retries with partitions paused, the consumer keeps its
    group membership, nothing is committed meanwhile, and everything lands once it recovers."""
    config = make_config(
        names,
        broker,
        "chdb://unused",
        kafka__client={"max.poll.interval.ms": 7000, "session.timeout.ms": 6000},
    )
    m = monitor(config, ch, policy, catalog)
    t, db = config.topics, names["database"]
    send(broker, t.entitlements, [entitlement("e1")])
    send(broker, t.access, access("e1", customers=5, every_s=5))
    runner = run_until_committed(m, broker, names["group"], t.access, 5, max_seconds=120)
    member = m.consumer.memberid()
    ch.command(
        f"ALTER TABLE {db}.pipeline_stats MODIFY SETTING parts_to_throw_insert = 1, parts_to_delay_insert = 1"
    )
    send(broker, t.access, access("e1", customers=60, first_customer=5, start=100_000, every_s=5))
    time.sleep(12)  # well past max.poll.interval.ms
    assert committed_offsets(broker, names["group"], t.access) == 5  # nothing committed during it
    assert runner.is_alive() and m.consumer.memberid() == member  # never evicted from the group
    ch.command(
        f"ALTER TABLE {db}.pipeline_stats MODIFY SETTING parts_to_throw_insert = 3000, parts_to_delay_insert = 1000"
    )
    runner.join(timeout=90)
    assert not runner.is_alive()
    assert committed_offsets(broker, names["group"], t.access) == 65
    (alert,) = latest_alerts(read_all(broker, t.alerts)).values()
    assert alert["unmapped"]["subject_count"] == 65


def test_poisoned_timestamps_duplicates_and_new_fields_through_the_real_process(
    broker, names, tmp_path
) -> None:
    """What the fault probe fed the landed code: a ts in 2200 (a DateTime overflow retried forever),
    10**30 (a crash on every restart), seconds and a numeric string (accepted silently), one access
    ten years ahead inside a burst (no alert at all), upstream duplicates (counted twice), a new
    optional field (everything dead-lettered). Two runs in a row: each ends cleanly."""
    from test_crash_points import clickhouse_totals

    dsn = f"chdb://{tmp_path / 'chdb'}"
    config = make_config(names, broker, dsn)
    ensure_topics(broker, config)
    path = write_config(config, tmp_path / "lifemon.yaml")
    t = config.topics
    send(broker, t.entitlements, [entitlement("e1")])
    burst = access("e1", customers=60, every_s=5)
    base = burst[0].model_dump(mode="json")
    poison = [
        orjson.dumps({**base, "event_id": "y2200", "ts": 7_258_118_400_000}),
        json.dumps({**base, "event_id": "huge", "ts": 10**30}).encode(),  # orjson refuses to write it
        orjson.dumps({**base, "event_id": "seconds", "ts": T0 // 1000}),
        orjson.dumps({**base, "event_id": "string", "ts": str(T0)}),
        orjson.dumps({**base, "event_id": "ahead", "ts": T0 + 10 * 365 * 86_400_000}),
    ]
    newer_producer = orjson.dumps({**base, "event_id": "v2", "device_risk": 3})
    send(broker, t.access, [*burst[:30], *poison, *burst[30:], *burst[:4], newer_producer])
    for _ in range(2):
        proc = run_cli(path, until_idle=2)
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, out.decode()
    (alert,) = latest_alerts(read_all(broker, t.alerts)).values()
    assert alert["unmapped"]["subject_count"] == 60
    dlq = read_all(broker, t.dlq, expect_at_least=5)
    reasons = sorted(
        (dict(m.headers())["error.kind"].decode(), dict(m.headers())["error.field"].decode()) for m in dlq
    )
    assert reasons == [("event_time", "ts")] * 4 + [("invalid", "ts")]
    totals = clickhouse_totals(dsn, names["database"])
    assert totals["rollups"]["access"] == 61  # the burst and the new producer's record; duplicates once


def test_reference_data_later_than_what_was_judged_is_counted_and_said(
    broker, ch, names, policy, catalog, caplog
) -> None:
    """An entitlement dated before events the instance has already judged without it: counted by how
    late it came (lifemon_late_reference_seconds) and said once. The reference history read at the
    start is no such record: nothing was judged yet."""
    from streams.metrics import StatsCollector

    caplog.set_level(logging.WARNING, logger="streams.runtime")
    config = make_config(names, broker, "chdb://unused")
    m = monitor(config, ch, policy, catalog)
    t = config.topics
    send(broker, t.entitlements, [entitlement("e1")])
    send(broker, t.access, access("e1", customers=5, every_s=60))  # T0 .. T0 + 4 min
    runner = run_until_committed(m, broker, names["group"], t.access, 5, max_seconds=60)
    send(broker, t.entitlements, [entitlement("e2", ts=T0)])
    send(broker, t.access, access("e2", start=5 * 60_000), key=b"e2")  # a batch: references are read first
    runner.join(timeout=60)
    assert not runner.is_alive()
    late = m.stats.late_references
    assert list(late) == ["entitlements"] and sum(late["entitlements"].counts) == 1
    assert late["entitlements"].total >= 3 * 60  # judged to T0 + 4 min less the 60 s lateness, at least
    (said,) = [r.getMessage() for r in caplog.records if "lifemon had judged events" in r.getMessage()]
    assert said.startswith("entitlements: a record") and "allowed_lateness_s is 60" in said
    (family,) = [f for f in StatsCollector(m.stats).collect() if f.name == "lifemon_late_reference_seconds"]
    counts = {s.labels["stream"]: s.value for s in family.samples if s.name.endswith("_count")}
    assert counts == {"entitlements": 1}


def test_a_tombstone_on_a_reference_topic_deletes_its_key_in_offset_order(
    broker, ch, names, policy, catalog
) -> None:
    """A probe's: HR tombstoned an employee's entitlement; the live monitor kept it (117 reads passed),
    while a restart after compaction read none and judged the same reads an unknown actor's. The
    tombstone deletes the key as the compacted topic will; a record for the key after it is the
    key's again."""
    config = make_config(names, broker, "chdb://unused")
    m = monitor(config, ch, policy, catalog)
    t = config.topics
    send(broker, t.entitlements, [entitlement("e1")], key=b"e1")
    send(broker, t.entitlements, [entitlement("e2")], key=b"e2")
    p = Producer({"bootstrap.servers": broker})
    p.produce(t.entitlements, value=None, key=b"e1")
    p.produce(t.entitlements, value=None, key=b"e2")
    assert p.flush(10) == 0
    send(broker, t.entitlements, [entitlement("e2", ts=T0 - 3_600_000)], key=b"e2")  # HR sends e2 again
    reads = access("e1", customers=3, every_s=60) + access("e2", customers=3, every_s=60)
    send(broker, t.access, reads + access("e2", start=3 * 3_600_000))  # the watermark passes them
    stats = m.run(idle_exit_s=1.5, max_seconds=60)
    gaps = {a.actor_id for a in stats.alerts.values() if a.counts.get("reason_unknown_actor")}
    assert gaps == {"e1"}


@pytest.mark.parametrize(
    ("client", "session_s"),
    [({"max.poll.interval.ms": 10_000}, 6.0), ({"session.timeout.ms": 30_000}, 30.0)],
    ids=["default", "configured"],
)
def test_a_batch_run_holding_part_of_the_inputs_ends_idle_only_once_the_group_settled(
    broker, ch, names, policy, catalog, client: dict[str, int], session_s: float
) -> None:
    """A probe's: after kill -9, `lifemon run --until-idle 2` was given the partitions the dead
    member did not hold, ended idle before the group evicted it (6 s), and exited 0 with 19 of 56
    alerts missing. Holding every input partition, an idle end may come at once; holding part,
    only a session timeout after the last assignment, when a dead member's are given over.

    The session timeout is kafka.client's session.timeout.ms when set (a probe's 30 000 was
    silently overridden); a max.poll.interval.ms under librdkafka's own 45 s session timeout is
    taken by every consumer the monitor makes (a probe's 10 000 was a traceback)."""
    from streams.faust_runtime import FaustMonitor

    config = make_config(names, broker, "chdb://unused", kafka__client=client)
    m = monitor(
        config, ch, policy, catalog, FaustMonitor
    )  # the native runtime's consumers, and faust's group
    assert isinstance(m, FaustMonitor) and m.build_app().conf.broker_session_timeout == session_s
    m.partition_count = 3
    every = {(topic, p) for topic in m.event_topics for p in range(3)}
    m._assigned_at = now = 1000.0
    m._owned = set(every)
    assert m._whole_or_settled(now)
    m._owned = {x for x in every if x[1] != 1}  # another member, perhaps a dead one, holds partition 1
    assert not m._whole_or_settled(now + session_s - 0.1)
    assert m._whole_or_settled(now + session_s)


@contextmanager
def restarting_registry() -> Iterator[tuple[str, list[str]]]:
    """A schema registry that refuses its first two asks (503: restarting), then serves the built-in
    access schema under id 4242; yields its URL and the paths asked."""
    from http.server import BaseHTTPRequestHandler, HTTPServer

    schema = orjson.dumps(load_schema("access")).decode()
    asked: list[str] = []

    class Registry(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            asked.append(self.path)
            down = len(asked) <= 2
            self.send_response(503 if down else 200)
            self.end_headers()
            self.wfile.write(orjson.dumps({"error_code": 50301} if down else {"schema": schema}))

        def log_message(self, *_: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Registry)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", asked
    finally:
        server.shutdown()
        server.server_close()


def send_uncached_avro(broker: str, config: Config) -> None:
    """An employee, and one access of theirs in Avro under schema id 4242, which no cache holds."""
    send(broker, config.topics.entitlements, [entitlement("e1")])
    (ev,) = access("e1", customers=1)
    send(
        broker,
        config.topics.access,
        [b"\x00\x00\x00\x10\x92" + encode_avro("access", ev, SchemaRegistry(), wire=False)],
    )


def test_a_schema_registry_down_is_waited_out_not_a_crash(broker, ch, names, policy, catalog, caplog) -> None:
    """A probe: with the registry unreachable, the first Avro record of a schema the monitor had not
    cached stopped it with a traceback, and every restart died on the same record. An outage is no
    record's fault: the monitor waits it out in its group, then decodes the record (no dead letter)."""
    caplog.set_level(logging.WARNING, logger="streams.runtime")
    with restarting_registry() as (url, asked):
        config = make_config(names, broker, "chdb://unused", schema_registry_url=url)
        m = monitor(config, ch, policy, catalog)
        send_uncached_avro(broker, config)
        stats = m.run(idle_exit_s=1.5, max_seconds=60)
    assert stats.events["access"] == 1 and sum(stats.dead.values()) == 0
    assert set(asked) == {"/schemas/ids/4242"}
    said = [r.getMessage() for r in caplog.records if "decoding access again in" in r.getMessage()]
    assert said and "HTTP 503" in said[0]


def test_a_partition_taken_while_the_registry_is_waited_out_is_left_to_its_new_owner(
    broker, ch, names, policy, catalog
) -> None:
    """A review: a rebalance inside the paused wait for the registry (librdkafka calls on_revoke in
    that poll) dropped the partition's state, yet the batch went on: its records went into a fresh
    task and its position came back, for a checkpoint of a partition another instance owns."""
    seen: dict[str, Any] = {}
    with restarting_registry() as (url, _):
        config = make_config(names, broker, "chdb://unused", schema_registry_url=url)
        m = monitor(config, ch, policy, catalog)
        send_uncached_avro(broker, config)
        wait = m._wait_paused

        def rebalanced(seconds: float) -> bool:
            owned = [tp for tp in m._owned_partitions() if tp.topic == config.topics.access]
            if owned and "revoked" not in seen:  # as the paused poll would: the group took them
                seen["revoked"] = {(tp.topic, tp.partition) for tp in owned}
                m._retrying = True
                m._on_revoke(m.consumer, owned)
            return wait(seconds)

        m._wait_paused = rebalanced
        process = m.process_records

        def once(records: list) -> None:
            process(records)
            seen["positions"] = {k for k in m.positions if k[0] == config.topics.access}
            m.stop_event.set()

        m.process_records = once
        stats = m.run(idle_exit_s=1.5, max_seconds=30)
    assert seen["revoked"] and not seen["revoked"] & seen["positions"]
    assert stats.events.get("access", 0) == 0  # the new owner counts it
