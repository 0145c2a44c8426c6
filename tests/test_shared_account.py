"""Shared accounts (seed 004 流程描述(4)④ 严禁共用账户), both sides: one account back and forth between
two workstations within minutes fires, and so does one workstation back and forth between two
accounts; one person's succession (desk to laptop and back once, a VPN session's new addresses,
a counter PC handed over with one customer finished after it) stays silent, as do accesses that
name no client address and addresses of a pool. One alert per episode, whatever the batching or a
redelivery; it closes when the window passes, and a later bout is another. End to end: the
workstation's accesses reach its task through the repartition topic by client_ip."""

from __future__ import annotations

import random
import shutil
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from conftest import T0, entitlement, fed, refs
from test_pipeline import latest_alerts, make_config, monitor, read_all, send

from detectors import load_detectors
from policy import DEFAULT_DIR, PolicyError, load_policy
from schemas.models import AccessEvent
from streams.alerts import latest
from streams.engine import IDLE_MARK, Engine
from streams.runtime import Monitor, repartition_topic

MIN = 60_000
DESK, PC, LAPTOP = "10.0.1.7", "10.0.2.9", "10.130.0.7"


def turns(*steps: tuple[str, str, float]) -> list[AccessEvent]:
    """(account, client address, minutes from T0) each: a read of one customer's balance."""
    return [
        AccessEvent(
            event_id=f"{actor}@{ip or '-'}+{at}",
            ts=T0 + int(at * MIN),
            actor_id=actor,
            system="core_banking",
            action="view",
            subject_ids=[f"C{i:07d}"],
            fields=["customer_name", "account_balance"],
            client_ip=ip,
        )
        for i, (actor, ip, at) in enumerate(steps)
    ]


def by_turns(
    who: list[str], where: list[str], n: int = 0, start: float = 0, gap: float = 2
) -> list[AccessEvent]:
    """`n` reads (else as many as the longer list), one every `gap` minutes, `who` and `where`
    taken in turn."""
    n = n or max(len(who), len(where))
    return turns(*((who[i % len(who)], where[i % len(where)], start + i * gap) for i in range(n)))


@pytest.fixture
def specs(policy):
    return {s.kind: s for s in load_detectors(policy) if s.kind.startswith("shared_")}


@pytest.fixture
def run(specs, catalog):
    """The final alerts (latest revision each) of the accesses fed `batch` at a time, the clock
    advanced after each, then drained; the engine stays as `run.engine`, for its state."""

    def go(
        events: list[AccessEvent],
        kind: str = "shared_account",
        batch: int = 1000,
        staff: tuple[Any, ...] = (entitlement("e1"), entitlement("e2")),
        **params: Any,
    ) -> list[Any]:
        spec = specs[kind]
        if params:  # validated as the YAML's would be
            spec = replace(
                spec, params=spec.cls.Params.model_validate({**spec.params.model_dump(), **params})
            )
        engine = go.engine = Engine([spec], catalog, pseudonymize=lambda s: f"p_{s}")
        engine.apply_reference("entitlements", refs("entitlements", list(staff)))
        alerts = []
        for i in range(0, len(events), batch):
            alerts += engine.process("access", "access", 0, fed("access", events[i : i + batch], offset=i))
            alerts += engine.advance()
        return latest(alerts + engine.drain())

    return go


def test_one_account_back_and_forth_between_two_workstations_fires(run) -> None:
    """Desk, PC, desk, PC, desk two minutes apart: three returns, the policy's `min_returns`."""
    (a,) = run(by_turns(["e1"], [DESK, PC], 5))
    assert a.rule_id == "LM-SA-001.used_from_two_workstations" and a.severity == "high"
    assert a.actor_id == "e1" and a.actor_kind == "employee" and a.actor_org == "S0101"
    assert a.counts == {"returns": 3, "workstations": 2} and a.event_count == 5
    assert (a.window_start, a.window_end) == (T0, T0 + 8 * MIN)
    assert f"account e1 used from 2 workstations at once ({DESK}, {PC})" in a.summary
    assert "3 times back to one it had left 10 minutes or less before" in a.summary
    assert a.title_zh == "共用账户: 同一账户同时在两台以上终端交替使用"
    assert (
        a.regulation[-1].startswith("本行《个人金融信息保护管理规定》 流程描述(4)④")
        and "严禁共用账户" in a.regulation[-1]
    )
    assert a.jr_class == "C2"


def test_one_persons_succession_of_places_is_silent(run) -> None:
    """Near misses: two returns (desk, PC, desk, PC); desk to laptop and back once; a VPN session
    reconnecting under new addresses; two short bouts of back and forth a quarter hour apart,
    four returns in all but never three within the window of each other; and the alert's very
    back and forth where one read of it names no client address."""
    assert run(by_turns(["e1"], [DESK, PC, DESK, PC])) == []
    assert run(by_turns(["e1"], [DESK] * 3 + [LAPTOP] * 2 + [DESK] * 3)) == []
    assert run(by_turns(["e1"], ["10.250.3.1", "10.250.3.2", "10.250.3.3", "10.250.3.4"], gap=1)) == []
    bouts = by_turns(["e1"], [DESK, PC, DESK, PC]) + by_turns(["e1"], [PC, DESK, PC], start=22)
    assert run(bouts) == []
    unsaid = by_turns(["e1"], [DESK, "", DESK, "", DESK])  # reads between the desk's that name none
    assert run([ev.model_copy(update={"client_ip": ev.client_ip or None}) for ev in unsaid]) == []


def test_one_alert_per_episode_whatever_the_batches_and_a_redelivery(run) -> None:
    """The same back and forth fed whole, one access a batch, and with every access delivered
    twice: one alert id, its revisions growing with the returns, the same last revision."""
    events = by_turns(["e1"], [DESK, PC], 7, gap=1.5)  # five returns
    whole, one_by_one, twice = (
        [a.model_dump() for a in run(evs, batch=n)]
        for evs, n in ((events, 1000), (events, 1), ([ev for ev in events for _ in (0, 1)], 3))
    )
    assert len(whole) == 1 and whole == one_by_one == twice
    assert whole[0]["counts"]["returns"] == 5 and whole[0]["revision"] == 3


def test_one_accounts_reads_arriving_after_the_others_make_the_same_alert(run) -> None:
    """Re-keyed by workstation, two accounts' reads come from two partitions: one account's whole
    bout may arrive before the other's first read. Judged behind the watermark, the episode starts
    at the same first access, so the alert is the one an in-order run raises (a crash test's
    restart had made its own)."""
    reads = by_turns(["e1", "e2"], [PC], 7, gap=1.9)  # e1 first and last, over 11 minutes
    in_order = [a.model_dump() for a in run(reads, kind="shared_workstation")]
    e2_first = sorted(reads, key=lambda ev: ev.actor_id != "e2")
    late = [a.model_dump() for a in run(e2_first, kind="shared_workstation", batch=3)]
    assert len(in_order) == 1 and late == in_order
    assert in_order[0]["window_start"] == T0 and in_order[0]["counts"]["returns"] == 5


def test_the_episode_closes_when_its_window_passes_and_a_later_bout_is_another(run) -> None:
    first = by_turns(["e1"], [DESK, PC], 5)
    later = by_turns(["e1"], [PC, DESK], 5, start=60)
    ahead = turns(("e2", "10.0.9.9", 200))  # moves the watermark past both
    alerts = run(first + later + ahead)
    assert len(alerts) == 2 and len({a.alert_id for a in alerts}) == 2
    assert [a.status.value for a in alerts] == ["closed", "closed"]
    assert sorted(a.window_start for a in alerts) == [T0, T0 + 60 * MIN]


def test_a_morning_at_one_desk_keeps_its_last_access_not_its_window(run) -> None:
    """Twice a second for nine minutes at the desk: once judged, the account keeps the one access a
    return could come back to, not the window's 1 080 (a service account's thousands)."""
    morning = turns(*(("e1", DESK, round(i / 120, 4)) for i in range(1080)))
    assert run(morning, batch=100) == []
    kept = run.engine.tasks[(0, "shared_account")].detector.store.get("e1")
    assert [event for _, _, event, _ in kept.recent] == [morning[-1].event_id]


def test_what_an_open_episode_has_not_taken_in_is_kept_for_its_next_return(run) -> None:
    """Three returns, two more reads at the desk, nine at the laptop, then back to the desk and to
    the laptop, the desk's read arriving after the laptop's (re-keyed from another partition).
    Judged read by read, the desk's two reads after the episode's latest return are older than
    every place's last use once the PC leaves the window, yet the episode's next return takes them
    in: the alert judged all at once, 18 accesses from the first to the last return."""
    reads = by_turns(["e1"], [DESK, PC], 5, gap=1) + turns(("e1", DESK, 4.3), ("e1", DESK, 4.6))
    reads += by_turns(["e1"], [LAPTOP], 9, start=5, gap=1) + turns(("e1", LAPTOP, 14.2), ("e1", DESK, 13.9))
    one_by_one, whole = (run(reads, batch=n) for n in (1, 1000))
    assert [a.model_dump() for a in one_by_one] == [a.model_dump() for a in whole]
    (a,) = whole
    assert a.event_count == 18 and a.counts == {"returns": 5, "workstations": 3}


def test_one_workstation_driving_two_accounts_by_turns_fires(run) -> None:
    (a,) = run(by_turns(["e1", "e2"], [PC], 5), kind="shared_workstation")
    assert a.rule_id == "LM-SA-002.several_accounts_at_one_workstation" and a.severity == "high"
    assert a.actor_id == PC and a.actor_kind == "system" and a.counts == {"returns": 3, "accounts": 2}
    assert f"workstation {PC} drove 2 accounts at once (e1, e2)" in a.summary
    assert a.title_en == "Shared account: one workstation driving several accounts at once"


OWN, OTHERS = ("a", 0), ("a", 1)  # access partitions: this instance's, another instance's


def instance(specs: dict[str, Any], catalog: Any) -> Engine:
    """An instance's engine as the runtime drives it: the workstation's task reads the accesses
    re-keyed by client address from both access partitions, whoever reads each."""
    e = Engine([specs["shared_workstation"]], catalog, pseudonymize=lambda s: f"p_{s}")
    e.rekey_locally = False
    e.repartition_sources = {("access", "client_ip"): frozenset({OWN, OTHERS})}
    return e


def re_keyed(reader: Engine, source: Engine, partition: int, events: list[AccessEvent]) -> list[Any]:
    """Accesses read from access partition `partition` by `source`, re-keyed by client address and
    read back by the workstation's task on `reader`, partition 0."""
    ingested = source.ingest("access", "a", partition, fed("access", events, "a"))
    pairs = source.rekeyed_events("access", "client_ip", ingested)
    return reader.process_rekeyed("access", "client_ip", "r.a", 0, [(None, ev) for _, ev in pairs])


def caught_up(e: Engine) -> list[Any]:
    """This instance has read all it owns: the task follows its own clock, an hour past the bout."""
    return e.advance({("access", 0)}, sources_owned={OWN})


def test_a_workstation_waits_for_the_first_mark_of_another_instances_source(specs, catalog) -> None:
    """Two instances start at once (tests/test_scale_out.py, red 1 run in 8 on CI): e1's reads at
    the PC come from the access partition this instance reads, e2's from the other instance's, which
    has neither re-keyed nor marked anything yet. Caught up on its own inputs, the task followed its
    clock an hour ahead, judged e1's reads alone (no return), forgot the workstation, and e2's,
    re-keyed a moment later, made no alert. A source partition another instance reads holds the task
    at 0 until its first mark, as one of this instance's not read yet does."""
    e, other = instance(specs, catalog), instance(specs, catalog)
    bout = by_turns(["e1", "e2"], [PC], 6)  # four returns over ten minutes
    alerts = re_keyed(e, e, 0, [ev for ev in bout if ev.actor_id == "e1"] + turns(("e3", DESK, 60)))
    e.mark("access", "client_ip", 0, [(*OWN, T0 + 60 * MIN)])
    alerts += caught_up(e)
    assert alerts == [] and e.awaiting_first_marks()  # e1 alone: no return yet; no idle end either
    alerts += re_keyed(e, other, 1, [ev for ev in bout if ev.actor_id == "e2"])
    e.mark("access", "client_ip", 0, [(*OTHERS, T0 + 60 * MIN)])
    (a,) = latest(alerts + caught_up(e))
    assert a.actor_id == PC and a.counts == {"returns": 4, "accounts": 2}
    assert not e.awaiting_first_marks()


def test_a_batch_run_does_not_end_idle_before_another_instances_first_mark(specs, catalog) -> None:
    """Idle, caught up on all it owns and the group settled, a batch run still waits while the
    other instance has marked none of the partitions it reads (restoring, or joined late): its
    idle end drains every timer to its own clock, and what the other re-keys after would come too
    late (`Engine.awaiting_first_marks`)."""
    e = instance(specs, catalog)
    batch = SimpleNamespace(
        engine=e,
        _held=[],
        _caught_up=lambda: True,
        _whole_or_settled=lambda now: True,
        _emit=lambda alerts: None,
        _hand_on=lambda final: False,
    )

    def ends() -> bool:
        return Monitor.finished(batch, now=60.0, started=0.0, last_data=0.0, idle_exit_s=6, max_seconds=None)

    re_keyed(e, e, 0, by_turns(["e1"], [PC], 3))
    e.mark("access", "client_ip", 0, [(*OWN, T0 + 4 * MIN)])
    caught_up(e)
    assert not ends()
    e.mark("access", "client_ip", 0, [(*OTHERS, IDLE_MARK)])
    caught_up(e)
    assert ends()


def test_another_instances_source_marked_idle_holds_nothing_back(specs, catalog) -> None:
    """The other instance has nothing to read and none of its tasks was fed, so it has no clock to
    mark its source partition with: it marks it idle, and this instance's task follows its own
    clock at once, as before the other's first mark it would not (`Monitor._mark_idle`). A time it
    marks later outranks the idle mark, and an idle mark never takes back a time."""
    e = instance(specs, catalog)
    assert re_keyed(e, e, 0, by_turns(["e1", "e2"], [PC], 5) + turns(("e3", DESK, 60))) == []
    e.mark("access", "client_ip", 0, [(*OWN, T0 + 60 * MIN)])
    assert caught_up(e) == []  # the other's partition not heard from
    e.mark("access", "client_ip", 0, [(*OTHERS, IDLE_MARK)])
    (a,) = caught_up(e)
    assert a.actor_id == PC and a.counts == {"returns": 3, "accounts": 2}
    task = e.tasks[(0, "shared_workstation")]
    e.mark("access", "client_ip", 0, [(*OTHERS, T0 + 30 * MIN)])
    e.mark("access", "client_ip", 0, [(*OTHERS, IDLE_MARK)])
    assert task.foreign_marks({OWN}) == T0 + 30 * MIN


def test_a_shared_workstation_alert_names_the_org_its_accounts_share(run) -> None:
    """A new user's finding: every shared_workstation alert said 未知机构 / no org known beside
    employees whose orgs HR records. Its org is its accounts' as of the episode: their one org,
    the branch above two of its sub-branches, none for an account HR does not know alone."""
    (a,) = run(by_turns(["e1", "e2"], [PC], 5), kind="shared_workstation")
    assert a.actor_org == "S0101"
    apart = (entitlement("e1"), entitlement("e2", org="S0102"))
    (a,) = run(by_turns(["e1", "e2"], [PC], 5), kind="shared_workstation", staff=apart)
    assert a.actor_org == "S01"  # the branch above both
    later = (entitlement("e1"), entitlement("e2"), entitlement("e2", org="S0102", ts=T0 + 60 * MIN))
    (a,) = run(by_turns(["e1", "e2"], [PC], 5), kind="shared_workstation", staff=later)
    assert a.actor_org == "S0101"  # as of the episode: e2 moved an hour after it
    (a,) = run(
        by_turns(["e1", "e3"], [PC], 5), kind="shared_workstation", staff=(entitlement("e3", org="S0102"),)
    )
    assert a.actor_org == "S0102"  # e1 unknown to HR: the org of the one it knows
    (a,) = run(by_turns(["e8", "e9"], [PC], 5), kind="shared_workstation")
    assert a.actor_org is None


def test_a_counter_pc_handed_over_or_a_pool_address_is_no_shared_workstation(run) -> None:
    """The shift change with the outgoing teller finishing one customer after the next teller's
    first read (two returns); and two accounts by turns through the VPN pool's address, which
    stands for many machines (`pooled_networks`)."""
    handover = by_turns(["e1"] * 3 + ["e2", "e1"] + ["e2"] * 3, [PC])
    assert run(handover, kind="shared_workstation") == []
    assert run(by_turns(["e1", "e2"], ["10.250.0.9"], 5), kind="shared_workstation") == []
    # the same handover with one more turn back is three returns: accounts taking turns
    assert len(run(by_turns(["e1"] * 3 + ["e2", "e1", "e2", "e1"], [PC]), kind="shared_workstation")) == 1


def proxied_day(accounts: int, seed: int) -> list[AccessEvent]:
    """`accounts` employees reading every one to three minutes for four hours, each request through
    a proxy that gives it one of its four addresses (10.251.0.1 to .4) at random."""
    rng = random.Random(seed)
    steps = []
    for n in range(accounts):
        at = rng.uniform(0, 3)
        while at < 240:
            steps.append((f"p{n:03d}", f"10.251.0.{rng.randint(1, 4)}", round(at, 2)))
            at += rng.uniform(1, 3)
    return turns(*steps)


def test_per_request_addresses_are_no_place_and_two_people_at_once_still_alert(run) -> None:
    """Addresses a proxy hands out per request make every employee's day a string of returns: 40
    employees, at least one alert each. Listed under `per_request_networks`, they are no place: none
    of those alerts, while e1's account at two workstations by turns on the same day still fires."""
    proxied = proxied_day(40, seed=4)
    flooded = run(proxied)
    assert len({a.actor_id for a in flooded}) == 40 and len(flooded) >= 40
    shared = by_turns(["e1"], [DESK, PC], 5, start=60)
    day = sorted(proxied + shared, key=lambda ev: ev.ts)
    (a,) = run(day, per_request_networks=["10.251.0.0/29"])
    assert a.actor_id == "e1" and a.counts == {"returns": 3, "workstations": 2}
    # the workstation side reads them under its own list: a proxy's address is many machines
    assert run(proxied, kind="shared_workstation", pooled_networks=["10.251.0.0/29"]) == []


def test_a_per_request_network_that_is_none_names_the_file_and_key(tmp_path: Path) -> None:
    folder = tmp_path / "policy"
    shutil.copytree(DEFAULT_DIR, folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    path = folder / "detectors" / "shared_account.yaml"
    path.write_text(
        path.read_text(encoding="utf-8").replace(
            "per_request_networks: []", "per_request_networks: [10.251.0.0/33]"
        ),
        encoding="utf-8",
    )
    with pytest.raises(PolicyError) as e:
        load_detectors(load_policy(folder), folder)
    assert e.value.file.endswith("shared_account.yaml") and "per_request_networks" in e.value.key, str(
        e.value
    )


@pytest.mark.integration
def test_both_sides_through_tansu_and_chdb(broker, ch, names, policy, catalog) -> None:
    """Accesses on pfi.access keyed by account: the account's back and forth is judged on the
    topic's own partitions, the workstation's after the repartition topic by client_ip; both
    alerts reach the alerts topic and chDB. Accesses without a client address stay out of the
    repartition topic."""
    config = make_config(names, broker, "chdb://unused")
    m = monitor(config, ch, policy, catalog)
    events = by_turns(["e1"], [DESK, PC], 5) + by_turns(["e3", "e4"], ["10.0.3.3"], 5, start=30)
    events += turns(("e5", None, 40), ("e5", None, 41), ("e6", "10.0.9.9", 200))  # the last: the clock
    for ev in events:
        send(broker, config.topics.access, [ev], key=ev.actor_id.encode())
    m.run(idle_exit_s=1.5, max_seconds=90)

    alerts = latest_alerts(read_all(broker, config.topics.alerts, expect_at_least=2))
    got = sorted(
        (o["finding_info"]["analytic"]["uid"], o["unmapped"]["counts"]["returns"]) for o in alerts.values()
    )
    assert got == [
        ("LM-SA-001.used_from_two_workstations", 3),
        ("LM-SA-002.several_accounts_at_one_workstation", 3),
    ]
    rekeyed = read_all(broker, repartition_topic(config, "access", "client_ip"), timeout_s=5)
    carried = [orjson.loads(m.value())["event_id"] for m in rekeyed if not m.headers()]  # not the marks
    assert sorted(carried) == sorted(ev.event_id for ev in events if ev.client_ip)  # none of e5's
    db = names["database"]
    rows = ch.query(
        f"SELECT rule_id, severity, actor_id, title_zh FROM {db}.alerts FINAL ORDER BY rule_id"
    ).result_rows
    assert rows == [
        (
            "LM-SA-001.used_from_two_workstations",
            "high",
            "e1",
            "共用账户: 同一账户同时在两台以上终端交替使用",
        ),
        (
            "LM-SA-002.several_accounts_at_one_workstation",
            "high",
            "10.0.3.3",
            "共用账户: 同一终端同时交替使用多个员工账户",
        ),
    ]
