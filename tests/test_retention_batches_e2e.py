"""A purge job's backlog live and in a replay (issue 10): retention_overrun reads its inputs keyed by
customer, so one system's day is spread over the partitions of that input; each task hands its share
to the stage keyed by system (`<group>-retention-batch-by-system-repartition`), which says the day
once every task has passed it. Through a real Tansu broker (3 partitions) and chDB, against `lifemon
replay`'s engine (one task) over the same records: the same alerts."""

from __future__ import annotations

import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from test_pipeline import latest_alerts, make_config, monitor, read_all, send
from test_repartition import group, run_together
from test_retention_batches import SIGNED, TRACES
from test_retention_overrun import LOCATION, collect, lc, tick

from detectors import load_detectors
from streams.alerts import latest, to_ocsf
from streams.codecs import Decoder
from streams.engine import Engine
from streams.pseudonym import Pseudonymizer
from streams.replay import replay
from streams.runtime import REPARTITION_SETTINGS, Monitor, create_missing, ensure_topics, repartition_topic

pytestmark = pytest.mark.integration

EXPIRED = "LM-RO-001.retention_expired"
PARTITIONS = 3  # test_pipeline.make_config's, as shipped


def job(kept: int) -> list[Any]:
    """The destruction job, a day late: all the 60 traces due 22 Dec but the last `kept`."""
    shredded = [
        lc("destroy", ev.record_id, ev.subject_id, -9, categories=["location_trace"], **SIGNED)
        for ev in TRACES[: len(TRACES) - kept]
    ]
    return [*shredded, tick(0)]


DUE = [*TRACES, tick(-9.25)]  # read to 23 Dec 02:00: the deadline passed, the job not run yet


def expired(alerts: dict[str, dict]) -> dict[str, tuple[dict, bool, str]]:
    """Each retention_expired alert's final counts, whether closed, and summary, by id (not its
    revision, nor so whether it is `open` or `updated`: how often it was said is the run's pacing)."""
    return {
        uid: (o["unmapped"]["counts"], o["unmapped"]["lifemon_status"] == "closed", o["message"])
        for uid, o in alerts.items()
        if o["finding_info"]["analytic"]["uid"] == EXPIRED
    }


def replayed(
    events: list[Any], policy: Any, catalog: Any, tmp_path: Any
) -> dict[str, tuple[dict, bool, str]]:
    path = tmp_path / "pfi.lifecycle.jsonl"
    path.write_text("".join(ev.model_dump_json() + "\n" for ev in events))
    engine = Engine(load_detectors(policy), catalog, Pseudonymizer.from_env(allow_ephemeral=False))
    alerts, dead = replay(engine, Decoder(), [path], len(DUE))  # the deadline fires before the job
    assert dead == []
    return expired({a.alert_id: to_ocsf(a) for a in latest(alerts)})


def records_counted(got: dict[str, tuple[dict, bool, str]]) -> tuple[int, int]:
    """(records, still kept) the alerts count: a batch's its counts, a record's own alert one, unless
    closed into its batch's (which counts it)."""
    records = kept = 0
    for counts, closed, summary in got.values():
        if "counted in their alert" in summary:
            continue
        records += counts["records"]
        kept += counts.get("kept", int(not closed))
    return records, kept


def test_a_systems_day_is_one_alert_live_as_in_a_replay(broker, ch, names, policy, catalog, tmp_path) -> None:
    """The same 60 overdue traces of one system's day, 50 shredded a day late. Live, the re-keyed
    lifecycle places each customer's records by its pseudonym (librdkafka's CRC32 of the key), so
    the day is spread over the three tasks; the replay's one task holds it whole. Both say one
    alert, under one id, of 60 records and 10 still kept, and nothing else: the stage decides the
    day once every task has passed its due time, whichever task holds which share. chDB's backlog
    (the lifecycle panel's sum) is the 10. The job runs after a restart, its destruction re-keyed
    before every lifecycle partition had marked the restarted task (a run once died there)."""
    config = make_config(names, broker, "chdb://unused")
    for part in (DUE, job(kept=10)):  # a run a day: the job's destruction revises what the first raised
        m = monitor(config, ch, policy, catalog)  # a restart: the state from the changelog
        for ev in part:
            send(broker, config.topics.lifecycle, [ev], key=ev.record_id.encode())
        m.run(idle_exit_s=1.5, max_seconds=120)
    live = expired(latest_alerts(read_all(broker, config.topics.alerts, expect_at_least=1)))
    replay_ = replayed([*DUE, *job(kept=10)], policy, catalog, tmp_path)

    pz = Pseudonymizer.from_env(allow_ephemeral=False)
    shares = Counter(zlib.crc32(pz(ev.subject_id).encode()) % PARTITIONS for ev in TRACES)
    assert len(shares) > 1 and max(shares.values()) < 60  # the day is spread: the case a replay cannot see
    assert live == replay_
    ((counts, closed, _),) = live.values()
    assert counts == {"records": 60, "kept": 10} and not closed
    assert records_counted(live) == (60, 10)

    backlog = ch.query(
        "SELECT sum(if(mapContains(counts, 'kept'), counts['kept'], 1)) "
        f"FROM {names['database']}.alerts FINAL "
        "WHERE endsWith(rule_id, '.retention_expired') AND status != 'closed'"
    ).result_rows
    assert backlog == [(10,)]


def instances(
    n: int, run: dict[str, str], broker: str, ch: Any, policy: Any, catalog: Any, tmp_path: Any
) -> None:
    """`n` monitors in one consumer group (test_repartition's `run_together`), each with its own
    ClickHouse database, until idle. Two end 3 s apart: ending together, they left the group within
    a moment of each other, and when the one that joined last left first, Tansu 0.6 kept the other,
    gone a moment later, as the group's leader and assigned no one again (the next day's run read
    nothing in 3 of 5). A group stuck so fails the run in 21 s (GroupNeverAssigned), not silently."""
    run_together(group_of(n, run, broker, ch, policy, catalog, tmp_path), [3.0] if n == 1 else [6.0, 9.0])


def group_of(
    n: int, run: dict[str, str], broker: str, ch: Any, policy: Any, catalog: Any, tmp_path: Any
) -> list[Monitor]:
    """`n` monitors of one consumer group with every detector (test_repartition's `group`)."""

    def monitor(config: Any) -> Monitor:
        config.kafka.client = {"max.poll.interval.ms": 15_000}
        pz = Pseudonymizer.from_env(allow_ephemeral=False)
        return Monitor(config, broker, ch, load_detectors(policy), catalog, pz)

    return group(n, run, broker, tmp_path, monitor)


def test_two_instances_roll_up_a_systems_day_as_one_does(
    broker, ch, names, policy, catalog, tmp_path
) -> None:
    """The same day and the same job, a day apart (each a restart), through one instance and through
    two sharing a consumer group: each partition's share travels with its partition and reaches the
    stage keyed by system, whose samples are the least of the shares', so the two give the one's
    alert (id, counts, closed or not, summary): the day's one, of its 60 records and 10 still kept."""
    results = []
    for n in (1, 2):
        run = {**names, "group": f"{names['group']}-{n}", "tag": f"{names['tag']}{n}"}
        config = make_config(run, broker, "chdb://unused")
        ensure_topics(broker, config)
        for day, part in enumerate((DUE, job(kept=10))):
            for ev in part:
                send(broker, config.topics.lifecycle, [ev], key=ev.record_id.encode())
            instances(n, run, broker, ch, policy, catalog, tmp_path / f"{n}-{day}")
        results.append(expired(latest_alerts(read_all(broker, config.topics.alerts, expect_at_least=1))))
    one, two = results
    assert len(one) == 1 and two == one
    assert records_counted(two) == (60, 10)


def on_first_partition(key: str) -> bool:
    return zlib.crc32(key.encode()) % PARTITIONS == 0  # librdkafka's partitioner, as above


def first_partitions_day(count: int) -> list[Any]:
    """`count` location traces due 22 Dec, and the day after, all on partition 0 of the lifecycle
    topic (by record id) and of its copy by customer (by pseudonym): the other partitions get nothing."""
    pz = Pseudonymizer.from_env(allow_ephemeral=False)
    customers = [c for c in (f"QUIET{i:03d}" for i in range(300)) if on_first_partition(pz(c))]
    rids = [r for r in (f"Q{i:04d}" for i in range(300)) if on_first_partition(r)]
    where = {"cats": LOCATION["cats"], "purpose": LOCATION["purpose"], "system": LOCATION["system"]}
    traces = [collect(rid, customers[i % 10], -40, **where) for i, rid in enumerate(rids[:count])]
    return [*traces, collect(rids[count], customers[10], -9.25, purpose="account_service")]


def test_an_instance_none_of_whose_tasks_saw_an_event_holds_no_day(
    broker, ch, names, policy, catalog, tmp_path
) -> None:
    """Two instances in one group, every record on partition 0: the one without it never sees an
    event, its clock never moves, and its retention tasks had never marked the stage, which waited
    for them for ever (no alert, and nothing said). A task that has had no input and has read its
    inputs to their end marks itself idle, as a Flink source does, and holds the stage nowhere: the
    day is said while both run, and every stage partition waits on no task."""
    config = make_config(names, broker, "chdb://unused")
    ensure_topics(broker, config)
    monitors = group_of(2, names, broker, ch, policy, catalog, tmp_path)
    threads = [threading.Thread(target=m.run, kwargs={"max_seconds": 90}) for m in monitors]
    for t in threads:
        t.start()
        time.sleep(1.5)
    try:
        until(lambda: all(m.stats.assigned for m in monitors), 30)  # the group settled: none idle
        for ev in first_partitions_day(25):
            send(broker, config.topics.lifecycle, [ev], key=ev.record_id.encode())

        def said() -> dict[str, tuple[dict, bool, str]]:
            return expired(
                latest_alerts(read_all(broker, config.topics.alerts, expect_at_least=0, timeout_s=2))
            )

        got = until(said, 40)
        quiet = [m for m in monitors if not m.engine.clock()]
        assert len(quiet) == 1 and all(t.is_alive() for t in threads)  # no rebalance gave it the records
        ((counts, closed, _),) = got.values()
        assert counts == {"records": 25, "kept": 25} and not closed
        # as /metrics shows it, once a second: every stage partition waits on no task
        until(lambda: [p for m in monitors for p in m.stats.stages if p.waiting] == [], 5)
        assert [p for m in monitors for p in m.stats.stages]
    finally:
        for m in monitors:
            m.stop_event.set()
        for t in threads:
            t.join(timeout=60)


def until(found: Callable[[], Any], timeout_s: float) -> Any:
    """`found()` once it is something, within `timeout_s` (an error after)."""
    end = time.monotonic() + timeout_s
    while not (got := found()):
        assert time.monotonic() < end, "not within the time"
        time.sleep(0.5)
    return got


SHARE = ["mobile_banker", "location_trace", "C3", 0, 0, 0, 25, 25, 25, [], [], [], [], [], 0, 0, 0, 0, 1]
NOT_PARTIALS = [
    b"not json",
    b'["a list"]',
    b'{"key": "~b:1", "partition": 0}',  # fields missing
    orjson.dumps({"key": "~b:1", "partition": 0, "due": 0, "batch": "25 records", "members": []}),
    orjson.dumps({"key": "~b:1", "partition": 0, "due": 0, "batch": SHARE[:-3], "members": []}),
    orjson.dumps(
        {"key": "~b:1", "partition": 0, "due": 0, "batch": SHARE, "members": [["a", {"revision": 1}, ""]]}
    ),
]


def test_what_is_no_partial_on_the_stages_topic_is_a_dead_letter(broker, ch, names, policy, catalog) -> None:
    """Records on the stage's topic that are not a task's share (another writer, a corrupted copy)
    go to the dead-letter topic, each with its reason, and the day is said as without them. Before,
    a JSON object without a share's fields stopped the monitor as it was read, and a share's fields
    of the wrong shape were kept and stopped it at the day's due time: at every restart again."""
    config = make_config(names, broker, "chdb://unused")
    ensure_topics(broker, config)
    stage = repartition_topic(config, "retention-batch", "system")
    create_missing(broker, config, {stage: REPARTITION_SETTINGS})
    send(broker, stage, NOT_PARTIALS, key=b"mobile_banker")
    for ev in DUE:
        send(broker, config.topics.lifecycle, [ev], key=ev.record_id.encode())
    monitor(config, ch, policy, catalog).run(idle_exit_s=1.5, max_seconds=120)

    ((counts, closed, _),) = expired(
        latest_alerts(read_all(broker, config.topics.alerts, expect_at_least=1))
    ).values()
    assert counts == {"records": 60, "kept": 60} and not closed
    dead = [
        m
        for m in read_all(broker, config.topics.dlq, expect_at_least=len(NOT_PARTIALS))
        if m.topic() == config.topics.dlq
    ]
    from_stage = [m for m in dead if dict(m.headers()).get("source.topic") == stage.encode()]
    assert len(from_stage) == len(NOT_PARTIALS)
