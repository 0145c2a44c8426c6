"""A purge job's backlog is one alert (probe_v2 F6): many banks destroy what is past its retention
in one yearly or quarterly batch, so the records of one system due on one day are all late together,
and the action is one (the schedule is too slow for the rule). `rollup_records` or more records of
one system, rule and class due on one bank day are one retention_expired alert; fewer stay one each,
as before. Through the Engine, as the detector's other tests."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import fed
from test_retention_overrun import (
    DAY,
    LOCATION,
    _folder,
    _restarted_with,
    collect,
    final_alerts,
    lc,
    pz,
    tick,
)

from detectors import load_detectors
from detectors.retention_records import BATCH, Batch, Customer
from policy.catalog import Catalog
from streams.alerts import latest
from streams.engine import IDLE_MARK, Engine
from streams.metrics import StatsCollector
from streams.stage_watch import StageWatch
from streams.stats import Stats

EXPIRED = "LM-RO-001.retention_expired"


def traces(n: int, day: float, record: str, customer: str, customers: int) -> list[Any]:
    """`n` location traces on the mobile banker collected `day` days from T0, of `customers` customers."""
    where = {"cats": LOCATION["cats"], "purpose": LOCATION["purpose"], "system": LOCATION["system"]}
    return [collect(f"{record}{i:03d}", f"{customer}{i % customers:03d}", day, **where) for i in range(n)]


# 60 location traces of 45 customers on the mobile banker, collected 22 Nov (Beijing): due by 24:00 on
# 22 Dec, 30 days on; the year's destruction job shreds them 23 Dec 08:00, a day late
TRACES = traces(60, -40, "L", "CUST", 45)
SIGNED = {"method": "shred", "operator_id": "E1", "supervisor_id": "E2", "system": "mobile_banker"}


def destroyed(rids: list[str], day: float = -9) -> list[Any]:
    return [lc("destroy", ev.record_id, ev.subject_id, day, categories=["location_trace"], **SIGNED) for ev in TRACES if ev.record_id in rids]  # fmt: skip


def expired(alerts: list[Any]) -> list[Any]:
    return [a for a in alerts if a.rule_id == EXPIRED]


@pytest.fixture
def engine(spec: Any, catalog: Any) -> Any:
    return lambda: Engine([spec], catalog, pseudonymize=pz)


@pytest.fixture
def spec(policy: Any) -> Any:
    return next(s for s in load_detectors(policy) if s.kind == "retention_overrun")


def test_sixty_records_due_one_day_on_one_system_are_one_alert(engine: Any) -> None:
    """Before: 60 alerts. Now one, open, counting them: the day is decided once every task has
    passed its due time, so no member is said alone first (the stage: `_settle`)."""
    (batch,) = got = expired(final_alerts(engine(), [*TRACES, tick(0)], 10_000))
    assert batch.status.value != "closed" and batch.counts == {"records": 60, "kept": 60}
    assert batch.revision == 1  # said once a timer pass, not once a member joining it
    assert batch.subject_count == 45 and len(batch.subjects_sample) == 20
    # the least 20, whatever order the members joined in (`Batch.join`, `Batch.merged`)
    assert batch.subjects_sample == sorted(pz(f"CUST{i:03d}") for i in range(45))[:20]
    assert "CUST0" not in batch.summary and batch.actor_id == "mobile_banker" and batch.jr_class == "C2"
    assert batch.summary.startswith("60 records of 45 customers on mobile_banker (location) kept past")
    assert "due 2025-12-22" in batch.summary and "60 still kept" in batch.summary
    sample = batch.summary.split(": records ")[1].removesuffix(" and 40 more").split(", ")
    assert sample == [f"L{i:03d}" for i in range(20)]
    assert ":p" not in got[0].summary


def test_fewer_than_the_threshold_stay_one_alert_each(engine: Any) -> None:
    got = expired(final_alerts(engine(), [*TRACES[:19], tick(0)], 10_000))
    assert len(got) == 19 and all(a.status.value != "closed" and a.counts == {"records": 1} for a in got)
    assert {a.subjects_sample[0] for a in got} == {pz(ev.subject_id) for ev in TRACES[:19]}


@pytest.mark.parametrize("batch", [10_000, 7, 1])
def test_the_late_destruction_job_closes_the_batchs_alert_whatever_the_batches(
    engine: Any, batch: int
) -> None:
    """Event time passes the deadline at 02:00 on 23 Dec, the job shreds at 08:00: one alert, closed
    by the destruction, the same however the inputs were batched (a replay, a live run)."""
    events = [*TRACES, tick(-9.25), *destroyed([ev.record_id for ev in TRACES]), tick(0)]
    got = expired(final_alerts(engine(), events, batch))
    (rolled,) = [a for a in got if a.counts.get("records") == 60]
    assert rolled.status.value == "closed" and rolled.counts["kept"] == 0
    assert "0 still kept; the latest removed 2025-12-23, 1 day late" in rolled.summary
    assert all(a.status.value == "closed" for a in got)


def backfilled(e: Engine, late_on: int) -> list[Any]:
    """19 traces past their day, said one alert each; then the 20th of that day, collected then and
    reported late (a backfill), its customer's partition `late_on`, and the destruction of them all."""
    alerts = e.process(
        "lifecycle", "lifecycle", 0, fed("lifecycle", [*TRACES[:19], tick(-9.25)], "lifecycle")
    )
    alerts += e.advance()
    assert len(latest(expired(alerts))) == 19
    for p, events in (
        (0, destroyed([ev.record_id for ev in TRACES[:19]])),
        (late_on, [TRACES[19], *destroyed(["L019"])]),
    ):
        alerts += e.process(
            "lifecycle", "lifecycle", p, fed("lifecycle", [*events, tick(0)], "lifecycle", 100 * (1 + p))
        )
    return latest(expired(alerts + e.advance() + e.drain()))


def test_a_customers_record_reported_after_its_day_was_passed_counts_the_customer_once(engine: Any) -> None:
    """CUST000's other trace of the day, reported after the day's timer pass: 61 records of the same
    45 customers. Counted once a pass, the customer was new to the batch again (46): one instance
    and two, whose passes fell otherwise, said 45 and 47 customers of one day."""
    e = engine()
    alerts = e.process("lifecycle", "lifecycle", 0, fed("lifecycle", [*TRACES, tick(-9.25)], "lifecycle"))
    alerts += e.advance()
    late = traces(1, -40, "LATE", "CUST", 1)  # LATE000, of CUST000, collected the same day
    alerts += e.process("lifecycle", "lifecycle", 0, fed("lifecycle", [*late, tick(0)], "lifecycle", 100))
    (batch,) = [a for a in latest(expired(alerts + e.advance() + e.drain())) if a.counts.get("records") == 61]
    assert batch.subject_count == 45 and batch.summary.startswith("61 records of 45 customers")


@pytest.mark.parametrize("late_on", [0, 1])
def test_a_backfilled_member_closes_those_said_alone_into_the_days_alert(engine: Any, late_on: int) -> None:
    """A day of 19 was said one alert a record; the 20th, reported after, makes it one alert, and the
    19 are closed into it, naming no removal (the batch's to say). The same alerts whichever task the
    20th came to: the stage sums every task's share."""
    got = backfilled(engine(), late_on)
    (rolled,) = [a for a in got if a.counts.get("records") == 20]
    closed = {a.alert_id: a.summary for a in got if "counted in their alert" in a.summary}
    assert len(closed) == 19 and all(rolled.alert_id in summary for summary in closed.values())
    assert not any("removed" in summary for summary in closed.values())
    assert len(got) == 20 and all(a.status.value == "closed" for a in got)
    assert {a.alert_id: a.summary for a in got} == {a.alert_id: a.summary for a in backfilled(engine(), 0)}


def test_a_restart_between_the_deadline_and_the_destruction_revises_the_same_alert(
    engine: Any, policy: Any
) -> None:
    """The state restored from the changelog: the job's destruction of 50 of the 60 revises the batch's
    alert (its id hashes system, rule, class and due day), which stays open for the 10 still kept."""
    before = engine()
    first = final_alerts(before, [*TRACES, tick(-9.25)], 10_000)
    (opened,) = [a for a in expired(first) if a.status.value != "closed"]
    after = _restarted_with(policy, before.changes(0))
    got = expired(final_alerts(after, [*destroyed([ev.record_id for ev in TRACES[:50]]), tick(0)], 10_000))
    (revised,) = got
    assert revised.alert_id == opened.alert_id and revised.revision > opened.revision
    assert revised.status.value != "closed" and revised.counts == {"records": 60, "kept": 10}
    # and a day's batch on another system is its own
    other = collect("X1", "CUST900", -40, cats=LOCATION["cats"], purpose=LOCATION["purpose"], system="crm")
    assert {a.actor_id for a in expired(final_alerts(engine(), [*TRACES, other, tick(0)], 10_000))} == {
        "mobile_banker",
        "crm",
    }


def test_the_batch_keeps_counts_and_samples_not_its_records(engine: Any) -> None:
    """The roll-up's state is one small entry a batch, whatever its size (10 M records tracked): its
    counts, the least 20 record ids and pseudonyms, and the 19 raised alone, emptied at the 20th."""
    e = engine()
    final_alerts(e, [*TRACES, tick(0)], 10_000)
    store = e.tasks[(0, "retention_overrun")].detector.store
    ((_, batch),) = list(store.items(prefix=BATCH))
    assert (batch.records, batch.kept, len(batch.rids), batch.alone) == (60, 60, 20, [])
    assert len(json.dumps(batch.to_json())) < 3_000


def test_a_systems_day_over_two_partitions_is_the_one_alert_of_one_partition(engine: Any) -> None:
    """The input keyed by customer spreads one system's day over its partitions: each task hands its
    share to the stage, which says the day once, under the id and with the summary one task holding
    it all says (docs/architecture.md#roll-ups-across-partitions)."""
    e = engine()
    alerts = []
    for partition in (0, 1):  # by customer, as the re-keyed input places them
        half = [ev for ev in TRACES if int(ev.subject_id[-3:]) % 2 == partition]
        alerts += e.process(
            "lifecycle", "lifecycle", partition, fed("lifecycle", [*half, tick(0)], "lifecycle")
        )
    (got,) = latest(expired(alerts + e.advance() + e.drain()))
    (whole,) = expired(final_alerts(engine(), [*TRACES, tick(0)], 10_000))
    assert (got.alert_id, got.summary, got.counts) == (whole.alert_id, whole.summary, whole.counts)


def test_overruns_raised_before_the_upgrade_close_one_by_one_and_later_days_roll_up(
    policy: Any, tmp_path: Path
) -> None:
    """State from before batches: one alert per record, and its records carry no batch. The job's
    destruction closes each of those alerts as before, under the ids they have; the next due day's
    overruns are one alert."""
    old = _folder(
        tmp_path, {"detectors/retention_overrun.yaml": [(r"rollup_records: 20", "rollup_records: 999999")]}
    )
    before = Engine(
        [next(s for s in load_detectors(old) if s.kind == "retention_overrun")], Catalog(old), pseudonymize=pz
    )
    first = expired(final_alerts(before, [*TRACES, tick(-9.25)], 10_000))
    assert len(first) == 60  # what fired before: one per record
    store = before.tasks[(0, "retention_overrun")].detector.store
    for key, held in list(store.items()):
        if key.startswith(BATCH):
            store.delete(key)
        elif isinstance(held, Customer):  # as an earlier lifemon kept it: every alert its record's own
            for rec in held.records.values():
                rec.fired = {t: n for t, n in rec.fired.items() if not t.endswith(("#", "~"))}
            store.touch(key)
    after = _restarted_with(policy, before.changes(0))
    later = traces(25, -39, "N", "NEW", 25)  # collected a day after the first 60: due 23 Dec
    got = expired(final_alerts(after, [*later, *destroyed([ev.record_id for ev in TRACES]), tick(0)], 10_000))
    ids = {a.alert_id for a in first}
    closing = [a for a in got if a.alert_id in ids]
    assert len(closing) == 60 and all(
        a.status.value == "closed" and a.counts == {"records": 1} for a in closing
    )
    (rolled,) = [a for a in got if a.alert_id not in ids and a.status.value != "closed"]
    assert rolled.counts == {"records": 25, "kept": 25}


def test_a_day_said_one_alert_a_record_before_the_stage_closes_them_one_by_one(policy: Any) -> None:
    """A share of 19 its task said one alert a record, as lifemon did before the stage (its batch
    kept without `staged`, no stage state): after the upgrade its task goes on saying them, so the
    destruction job closes each, and a 20th member reported late is one more alert a record, not a
    day's alert under which the 19 would stay open."""
    before = _restarted_with(policy, [])
    first = expired(final_alerts(before, [*TRACES[:19], tick(-9.25)], 10_000))
    assert len(first) == 19 and all(a.status.value == "open" for a in first)
    task, stage = (
        before.tasks[(0, kind)].detector.store for kind in ("retention_overrun", "retention_overrun~stage")
    )
    for key, held in list(task.items(prefix=BATCH)):  # as an earlier lifemon kept it
        task.put(key, Batch.from_json({"batch": held.to_json()["batch"][: Batch.__slots__.index("staged")]}))
    for key, _ in list(stage.items()):
        stage.delete(key)
    after = _restarted_with(policy, before.changes(0))
    late = [TRACES[19], *destroyed([ev.record_id for ev in TRACES[:20]]), tick(0)]
    got = {a.alert_id: a for a in expired(after.process("lifecycle", "lifecycle", 0, fed("lifecycle", late, "lifecycle", 100)) + after.advance() + after.drain())}  # fmt: skip
    assert {a.alert_id for a in first} < set(got) and len(got) == 20
    assert all(a.status.value == "closed" and a.counts == {"records": 1} for a in got.values())


def test_a_share_read_again_after_a_newer_one_does_not_take_the_day_back(spec: Any, catalog: Any) -> None:
    """A task that dies after handing on shares that its checkpoint does not hold hands them again as it
    replays its input, after the newer ones and behind marks already past the day (the stage's topic
    keeps both runs'): the stage keeps the share that counted more changes, so the day is not said
    again with an older count (60 kept again after the job had shredded 50), only the later share."""
    kind, stage_topic = "retention_overrun", spec.cls.stage

    def live() -> Engine:  # as the runtime tells it: the stage's source is the one task, partials travel
        e = Engine([spec], catalog, pseudonymize=pz)
        e.repartition_sources[stage_topic] = frozenset({(kind, 0)})
        return e

    task, stage = live(), live()
    shares = []
    for events in ([*TRACES, tick(0)], [*destroyed([ev.record_id for ev in TRACES[:50]]), tick(1)]):
        task.process("lifecycle", "lifecycle", 0, fed("lifecycle", events, "lifecycle"))
        task.advance()
        *_, (_, ((_, share),)) = task.partials  # the pass's last
        shares.append(json.loads(json.dumps(share)))  # as the topic carries it
        task.partials = []
    due, shredded = shares
    past = [(kind, 0, task.tasks[(0, kind)].ctx.watermark)]
    stage.process_partials(kind, 0, [due, shredded], past)
    (day,) = expired(stage.advance())
    assert day.counts == {"records": 60, "kept": 10}
    stage.process_partials(kind, 0, [due], past)  # the replay's, behind the marks
    assert [a.counts for a in expired(stage.advance())] in ([], [{"records": 60, "kept": 10}])


def test_a_task_that_never_had_input_holds_the_stage_nowhere_once_idle(
    spec: Any, catalog: Any, caplog: Any
) -> None:
    """Three retention tasks mark the stage; the day's share is the first's. While the third has
    never marked, nothing is settled, and the stage says, once it has waited `warn_after_s`, which
    task it waits for and since when (metric: `lifemon_stage_waiting_tasks`). The third, which never
    had input, marks itself idle (`IDLE_MARK`), after a time its former owner's clock gave it: it
    then holds nothing, that older time neither, and the day is said; the stage says it moves again."""
    kind, stage_topic = "retention_overrun", spec.cls.stage
    task, stage = (Engine([spec], catalog, pseudonymize=pz) for _ in range(2))
    for e in (task, stage):  # as the runtime tells them: three tasks mark the stage, partials travel
        e.repartition_sources[stage_topic] = frozenset((kind, p) for p in range(3))
    task.process("lifecycle", "lifecycle", 0, fed("lifecycle", [*TRACES, tick(0)], "lifecycle"))
    task.advance()
    shares = [json.loads(json.dumps(share)) for _, handed in task.partials for _, share in handed]
    assert shares
    past = task.tasks[(0, kind)].ctx.watermark
    watch = StageWatch("g1", warn_after_s=60)

    stage.process_partials(kind, 0, shares, [(kind, 0, past), (kind, 1, past)])
    assert expired(stage.advance()) == []
    (progress,) = stage.stage_progress()
    assert (progress.waiting, progress.least) == ((2,), None)
    stats = Stats()
    stats.on_stages([progress])
    (family,) = [f for f in StatsCollector(stats).collect() if f.name == "lifemon_stage_waiting_tasks"]
    assert [(s.labels, s.value) for s in family.samples] == [({"detector": kind, "partition": "0"}, 1)]
    with caplog.at_level(logging.INFO, logger="streams.stage_watch"):
        watch.observe([progress], 1_000.0)
        watch.observe([progress], 1_059.0)
        assert not caplog.records
        watch.observe([progress], 1_060.0)
        watch.observe([progress], 1_090.0)
        (said,) = caplog.records
        assert said.levelno == logging.WARNING and "partitions 2 never marked it" in said.getMessage()
        assert "since 1970-01-01T00:16:40+00:00" in said.getMessage() and "group g1" in said.getMessage()

        stage.process_partials(kind, 0, [], [(kind, 2, past - DAY * 30)])  # its former owner's clock
        assert expired(stage.advance()) == []
        stage.process_partials(kind, 0, [], [(kind, 2, IDLE_MARK)])
        (day,) = expired(stage.advance())
        assert day.counts == {"records": 60, "kept": 60}
        (progress,) = stage.stage_progress()
        assert (progress.waiting, progress.slowest, progress.lag_ms) == ((), (0, 1), 0)
        watch.observe([progress], 1_091.0)
        assert "moves again" in caplog.records[-1].getMessage()

        # a task that marks, its clock standing two hours behind the others': said so, once
        behind = progress._replace(slowest=(1,), least=past - 2 * 3_600_000, lag_ms=2 * 3_600_000)
        for now in (2_000.0, 2_060.0, 2_070.0):
            watch.observe([behind], now)
        said = caplog.records[-1].getMessage()
        assert "7200 s of event time behind" in said and "tasks of partitions 1, whose clock" in said
        assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 2


def test_a_task_that_starts_again_without_its_state_has_its_new_count_taken(spec: Any, catalog: Any) -> None:
    """A task's state lost (a store the changelog could not rebuild): it starts again and reads on
    from where its input stood, 40 of the day's 60 records left in it. Its share counts its changes
    from 0, fewer than its former self's, and the stage kept the former's for ever (review_stage's
    rule, "the share that counts more"). The share carries the generation of its task's state, a
    later one for a task that started without it, and the stage takes it: the day is said again
    with 40. A share from before generations (its list one shorter, as the topic carried it) is
    read as generation 0: the newer one replaces it."""
    kind, stage_topic = "retention_overrun", spec.cls.stage

    def live() -> Engine:
        e = Engine([spec], catalog, pseudonymize=pz)
        e.repartition_sources[stage_topic] = frozenset({(kind, 0)})
        return e

    def share_of(task: Engine, events: list[Any]) -> dict[str, Any]:
        task.process("lifecycle", "lifecycle", 0, fed("lifecycle", events, "lifecycle"))
        task.advance()
        *_, (_, ((_, share),)) = task.partials
        task.partials = []
        return json.loads(json.dumps(share))

    stage = live()
    former = share_of(live(), [*TRACES, tick(0)])
    time.sleep(0.002)  # a start again comes later than the first: its generation is a later time
    again = live()
    lost = share_of(again, [*TRACES[20:], tick(0)])
    assert lost["batch"][-2] < former["batch"][-2] and lost["batch"][-1] > former["batch"][-1]
    past = [(kind, 0, again.tasks[(0, kind)].ctx.watermark)]
    before_generations = former | {"batch": former["batch"][:-1]}
    stage.process_partials(kind, 0, [before_generations], past)
    assert [a.counts for a in expired(stage.advance())] == [{"records": 60, "kept": 60}]
    stage.process_partials(kind, 0, [former], past)
    stage.advance()
    stage.process_partials(kind, 0, [lost], past)
    assert [a.counts for a in expired(stage.advance())] == [{"records": 40, "kept": 40}]
    stage.process_partials(kind, 0, [former], past)  # the former self's, read again: stale
    assert [a.counts for a in expired(stage.advance())] in ([], [{"records": 40, "kept": 40}])
