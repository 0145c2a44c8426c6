"""Deleted record use: a use that names a deleted record and not its customer fires, keyed by
record; a use that names its customer stays retention_overrun's alone (one alert per use, never
two); a refused read and a read an hour before the deletion are silent; a deletion that arrives
after the read still decides it, with the same alert; a deletion reported late waits
`late_deletion_days`, and what can decide nothing more is forgotten. End to end: accesses keyed by
actor reach the record's task through their repartition topic."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from conftest import T0, entitlement, fed, refs
from test_pipeline import latest_alerts, make_config, monitor, read_all, send
from test_retention_overrun import CRM_RENAMED, DAY, _folder, collect, final_alerts, lc, pz, read, sent, tick

from detectors import load_detectors
from detectors.deleted_record_use import Kept
from policy.catalog import Catalog
from streams.alerts import actor_of, latest, to_ocsf
from streams.engine import Engine
from streams.pseudonym import Pseudonymizer

HOUR = 3_600_000


def report(rid: str = "R1", day: float = 0, actor: str = "e1", **kw: Any) -> Any:
    """A report download that logs the record it read and no customer."""
    ev = read(rid, "C1", day, actor, **kw)
    return ev.model_copy(update={"subject_ids": [], "event_id": f"report-{rid}-{ev.ts}-{actor}"})


def sent_by_record(rid: str = "R1", day: float = 0) -> Any:
    ev = sent(rid, "C1", day)
    return ev.model_copy(update={"subject_ids": [], "subject_list_id": "SL-1"})


@pytest.fixture
def specs(policy):
    return {
        s.kind: s for s in load_detectors(policy) if s.kind in ("deleted_record_use", "retention_overrun")
    }


@pytest.fixture
def run(specs, catalog):
    """Final alerts (latest revision each) of the events fed in time order; `kinds` the detectors."""

    def go(events: list[Any], kinds: tuple[str, ...] = ("deleted_record_use",), batch: int = 10_000, engine: Engine | None = None) -> list[Any]:  # fmt: skip
        e = engine or Engine([specs[k] for k in kinds], catalog, pseudonymize=pz)
        return sorted(final_alerts(e, events, batch), key=lambda a: a.rule_id)

    return go


def test_a_report_that_names_a_deleted_record_fires_and_later_reads_revise_it(run) -> None:
    (a,) = run([collect(day=-3), lc("delete", day=-2), report(day=-1), report(day=-0.5, actor="e2"), tick(0)])
    assert a.rule_id == "LM-RO-002.used_after_deletion" and a.severity == "high"
    assert a.revision == 2 and a.counts == {"records": 1, "uses": 2} and a.actor_id == "e2"
    assert a.subjects_sample == [pz("C1")]  # the deleted record's customer, from its lifecycle
    assert a.window_start == T0 - 2 * DAY and a.window_end == T0 - DAY // 2
    assert "record R1 on crm, deleted 2025-12-30, read by e2 on crm (access report-R1-" in a.summary
    assert "2 uses" in a.summary
    assert a.jr_class == "C2"  # what the report read: a mobile phone number


def test_a_file_sent_by_record_after_deletion_fires(run) -> None:
    (a,) = run([lc("delete", day=-2), sent_by_record(day=-1), tick(0)])
    assert a.actor_id == "proc_call_center" and "sent to proc_call_center from crm (transfer" in a.summary
    # the recipient is where the data went, no employee's account (a review: OCSF named it a user)
    ocsf = to_ocsf(a)
    assert a.actor_kind == "recipient" and ocsf["evidences"] == [
        {"dst_endpoint": {"name": "proc_call_center", "uid": "proc_call_center"}}
    ]
    assert actor_of(ocsf) == "proc_call_center"
    (b,) = run([lc("delete", day=-2), report(day=-1), tick(0)])
    assert b.actor_kind == "employee" and to_ocsf(b)["evidences"][0]["actor"]["user"]["uid"] == b.actor_id


def test_a_use_that_names_its_customer_is_retention_overruns_alone(run) -> None:
    """The same record read twice after its deletion, once with its customer named and once by
    record only: each detector alerts on its own use, never both on one."""
    steps = [
        collect(day=-3),
        lc("delete", day=-2),
        read(day=-1, actor="e7"),
        report(day=-0.5, actor="e8"),
        tick(0),
    ]
    both = run(steps, kinds=("deleted_record_use", "retention_overrun"))
    assert [(a.rule_id, a.actor_id, a.counts) for a in both] == [
        ("LM-RO-001.used_after_deletion", "e7", {"records": 1, "uses": 1}),
        ("LM-RO-002.used_after_deletion", "e8", {"records": 1, "uses": 1}),
    ]
    assert run(steps[:3] + steps[4:]) == []


def test_a_use_alert_names_the_org_of_who_read_it_as_of_the_read(specs, catalog, run) -> None:
    """Both detectors' use alerts carry the reader's org as the entitlements stream had it at the
    read (an analyst's first filter, and the dashboards' by org); a transfer's actor is its
    recipient, whose org no entitlement gives."""
    e = Engine([specs["deleted_record_use"], specs["retention_overrun"]], catalog, pseudonymize=pz)
    moved = int(T0 - 0.7 * DAY)  # e8 moves from S0101 to S0102 between the two reads
    ents = [entitlement("e7"), entitlement("e8"), entitlement("e8", org="S0102", ts=moved)]
    e.apply_reference("entitlements", refs("entitlements", ents))
    steps = [collect(day=-3), lc("delete", day=-2), read(day=-1, actor="e7"), report(day=-0.5, actor="e8")]
    alerts = run([*steps, tick(0)], kinds=("deleted_record_use", "retention_overrun"), engine=e)
    assert [(a.actor_id, a.actor_org) for a in alerts] == [("e7", "S0101"), ("e8", "S0102")]
    (sent_alert,) = run([lc("delete", day=-2), sent_by_record(day=-1), tick(0)])
    assert sent_alert.actor_org is None


def test_a_refused_report_and_one_an_hour_before_the_deletion_are_silent(run) -> None:
    assert run([lc("delete", day=-2), report(day=-1, outcome="denied", row_count=0), tick(0)]) == []
    # the warehouse purging its copy after the source deleted the record does what 定义(11) asks
    assert run([lc("delete", day=-2), report(day=-1, action="delete"), tick(0)]) == []
    assert run([report(day=-1 - 1 / 24), lc("delete", day=-1), tick(0)]) == []
    # the near miss's neighbours: the same report an hour after the deletion does fire
    assert len(run([lc("delete", day=-1), report(day=-1 + 1 / 24), tick(0)])) == 1


def test_a_record_collected_anew_under_its_id_is_a_new_record(run) -> None:
    """A CRM keys a customer's contact record by customer number: deleted on request, collected
    again when the customer returns. What reads it after that reads the new record; a read between
    the deletion and the return still read a deleted one."""
    back = lc("collect", day=-1, categories=["mobile_phone"], purpose="customer_service")
    assert run([lc("delete", day=-3), back, report(day=-0.5), tick(0)]) == []
    (a,) = run([lc("delete", day=-3), report(day=-2), back, report(day=-0.5), tick(0)])
    assert a.counts["uses"] == 1 and a.last_seen == T0 - 2 * DAY
    # and both detectors agree on a read that names the customer too
    both = ("deleted_record_use", "retention_overrun")
    steps = [collect(day=-30), lc("delete", day=-3), back, read(day=-0.5), report(day=-0.4), tick(0)]
    assert run(steps, kinds=both) == []


def test_a_record_collected_anew_on_its_systems_new_id_after_a_rename_is_a_new_record(
    specs, catalog, run, tmp_path
) -> None:
    """crm renamed crm_core at a restart, crm kept among its names (docs/operations.md "Changing
    policy"): a record deleted on crm before the restart and collected anew on crm_core after it is
    the returning customer's record, and a report reading it is no use after deletion. The kept
    system, compared raw, made every such read one (fix_k4's left item)."""
    renamed = _folder(tmp_path, CRM_RENAMED)
    first = Engine([specs["deleted_record_use"]], catalog, pseudonymize=pz)
    contact = {"categories": ["mobile_phone"], "purpose": "customer_service"}
    # deleted, collected anew and deleted again, all on crm: the record's collections are kept
    before = [lc("delete", day=-10), lc("collect", day=-8, **contact), lc("delete", day=-5), tick(-4)]
    assert run(before, engine=first) == []
    back = lc("collect", day=-1, system="crm_core", **contact)
    after = Engine(
        [s for s in load_detectors(renamed) if s.kind == "deleted_record_use"],
        Catalog(renamed),
        pseudonymize=pz,
    )
    after.restore(0, first.changes(0))
    assert run([back, report(day=-0.5), tick(0)], engine=after) == []


def test_a_record_deleted_again_after_it_was_collected_anew_is_deleted_again(specs, catalog, run) -> None:
    """The returning customer asks again: deleted, collected anew, deleted again, and a report of
    the record after the second deletion read deleted data (judged by its first removal alone, the
    return after it had kept it silent). Between the return and the second deletion it is the new
    record's; the state an earlier lifemon kept, the first removal alone, restores as it was."""
    back = lc("collect", day=-5, categories=["mobile_phone"], purpose="customer_service")
    steps = [lc("delete", day=-8), back, report(day=-4), lc("delete", day=-3)]
    (a,) = run([*steps, report(day=-1), tick(0)])
    assert (a.counts["uses"], a.last_seen, a.window_start) == (1, T0 - DAY, T0 - 8 * DAY)
    assert "deleted 2025-12-24, deleted 2025-12-29, read by" in a.summary
    assert run([*steps, tick(0)]) == []
    e = Engine([specs["deleted_record_use"]], catalog, pseudonymize=pz)
    run([lc("delete", day=-8)], engine=e)
    row = e.tasks[(0, "deleted_record_use")].keys.get("R1").to_json()
    assert Kept.from_json(row[:12]).outs == Kept.from_json(row).outs == [[T0 - 8 * DAY, "delete"]]


def test_a_deleted_record_loaded_again_into_another_system_is_no_new_record(run) -> None:
    """A probe's: the CRM deletes a contact record on the customer's request; that night the
    warehouse's ETL loads it again from a stale staging copy, a `collect` on data_warehouse under the
    same id, and a download of it the next day was silent. An id reused is collected on the system
    the record left; a collection on another system is a copy of what left, and its uses count
    (seed 004 定义(11): 删除是使个人金融信息及加工信息不可被检索、访问的过程)."""
    reload = lc("collect", day=-1, system="data_warehouse", categories=["mobile_phone"])
    (a,) = run([lc("delete", day=-3), reload, report(day=-0.5, system="data_warehouse"), tick(0)])
    assert a.counts["uses"] == 1
    again = lc("collect", day=-1, system="CRM", categories=["mobile_phone"])  # the system's own, any case
    assert run([lc("delete", day=-3), again, report(day=-0.5), tick(0)]) == []


@pytest.mark.parametrize("purge_job", ["crm_purge", "数据清理平台"])
def test_a_record_collected_anew_after_a_purge_job_logged_its_removal_is_a_new_record(run, purge_job) -> None:
    """A probe's: the nightly purge job deleted a customer's contact record and logged the deletion
    under its own name; she came back months later and the CRM collected the record anew under the
    same id, and every read of it fired for five years. A removal on a system the record is on
    nowhere known removed every copy (as retention_overrun reads it): a collection on a system the
    record was collected on, or, none seen, on one the policy names, is the id reused. What the
    removal still decides: a read before the return, a read with no return, and a reload into
    another system than the one the record was seen collected on (a copy of what left)."""
    purged = lc("delete", day=-100, system=purge_job)
    back = lc("collect", day=-7, categories=["mobile_phone"], purpose="customer_service")
    assert run([purged, back, report(day=-0.5), tick(0)]) == []
    (between,) = run([purged, report(day=-50), back, report(day=-0.5), tick(0)])
    assert between.counts["uses"] == 1 and between.last_seen == T0 - 50 * DAY
    (unreturned,) = run([purged, report(day=-0.5), tick(0)])
    assert unreturned.counts["uses"] == 1 and f"on {purge_job}, deleted" in unreturned.summary
    # the record seen collected on the CRM (a read by record, come first, kept it) before the job
    # removed it: one event a step, as a live consumer reads them
    seen = [report(day=-120), collect(day=-110)]
    reload = lc("collect", day=-7, system="data_warehouse", categories=["mobile_phone"])
    (copy,) = run([*seen, purged, reload, report(day=-0.5, system="data_warehouse"), tick(0)], batch=1)
    assert copy.counts["uses"] == 1
    assert run([*seen, purged, back, report(day=-0.5), tick(0)], batch=1) == []


@pytest.mark.parametrize(
    "method", ["restore", "backup_restore", "Recovered from snapshot", "恢复", "回滚", "FLASHBACK TABLE"]
)
def test_a_deleted_record_restored_from_a_backup_is_the_deleted_record(run, method) -> None:
    """A probe's: the CRM deletes R1, half an hour later a restore job brings it back from backup
    and its CDC logs a `collect` on the CRM with `method: restore`; the report that read it was
    silent. A restore (retention.yaml `restoring_methods`) is the record that left, not a record
    anew (seed 004 定义(11) 不可被检索、访问)."""
    restored = lc("collect", day=-2.9, categories=["mobile_phone"], method=method)
    (a,) = run([lc("delete", day=-3), restored, report(day=-0.5), tick(0)])
    assert a.counts["uses"] == 1
    # a collection whose method restores nothing is the returning customer's record, as before
    back = restored.model_copy(update={"method": "counter_form", "event_id": "back-1"})
    assert run([lc("delete", day=-3), back, report(day=-0.5), tick(0)]) == []


def test_collections_kept_by_an_earlier_lifemon_are_of_any_system() -> None:
    """State written before collections kept their system holds times alone: each is judged as
    it was, a collection of the record anew on whatever system."""
    old = Kept.from_json([3, "delete", "crm", "C1", ["d1"], 0, 0, [], 0, {"C1": 3}, [5, 9], 0])
    assert old.anew(frozenset({"crm"})) == 5 and old.collected == [[5, ""], [9, ""]]


def test_an_anonymized_record_read_by_its_id_is_analysis_and_its_deletion_counts(run) -> None:
    """Seed 004 定义(1): anonymized data is no PFI, and the bank keeps it instead of deleting (流程描述(3)①): a
    report naming the anonymized record and no customer is silent. Read naming its customer, the
    anonymized record is linked to a person again (seed 002 §五(6)): retention_overrun's alert. Once
    the record is deleted after all, a report by its id fires here."""
    both = ("deleted_record_use", "retention_overrun")
    anonymized = [collect(day=-5), lc("anonymize", day=-4)]
    assert run([*anonymized, report(day=-3), tick(0)], kinds=both) == []
    (named,) = run([*anonymized, read(day=-3), tick(0)], kinds=both)
    assert named.rule_id == "LM-RO-001.used_after_deletion" and "anonymized 2025-12-28" in named.summary
    # its title and basis say anonymized too, not only deleted (a probe read "A deleted record")
    assert "anonymized" in named.title_en and "匿名化" in named.title_zh
    assert any("不被混用" in r for r in named.regulation)
    (a,) = run([*anonymized, report(day=-3), lc("delete", day=-2), report(day=-1, actor="e2"), tick(0)])
    assert (a.counts, a.actor_id, a.window_start) == ({"records": 1, "uses": 1}, "e2", T0 - 4 * DAY)
    assert "record R1 on crm, anonymized 2025-12-28, deleted 2025-12-30, read by e2" in a.summary
    assert "naming the record and no customer); 1 use so far" in a.summary


def test_an_anonymized_record_read_with_a_customer_named_is_judged_by_exactly_one_detector(run) -> None:
    """Seed 002 §五(6): anonymized data is not mixed with PFI. A read naming another customer beside
    the anonymized record, or naming any customer when the anonymization names none, is judged
    here (retention_overrun cannot: it knows the record only under the customer an event names).
    An anonymization naming the customer and a deletion naming none: a read naming the customer is
    retention_overrun's alone; so is one after an anonymization naming none of a record whose
    collection named the customer (the engine gives the record's events its customer)."""
    both = ("deleted_record_use", "retention_overrun")
    other = read(day=-3).model_copy(update={"subject_ids": ["C7"], "event_id": "other"})
    unnamed = lc("anonymize", subject=None, day=-4)
    named_read = read(day=-3).model_copy(update={"subject_ids": ["C1"]})
    for steps in ([collect(day=-5), lc("anonymize", day=-4), other], [unnamed, named_read]):
        (a,) = run([*steps, tick(0)], kinds=both)
        assert (
            a.rule_id == "LM-RO-002.used_after_deletion" and "naming the record and 1 customer" in a.summary
        )
    (a,) = run([collect(day=-5), unnamed, named_read, tick(0)], kinds=both)
    assert a.rule_id == "LM-RO-001.used_after_deletion"
    steps = [collect(day=-5), lc("anonymize", day=-4), lc("delete", subject=None, day=-3), read(day=-2)]
    assert [a.rule_id for a in run([*steps, tick(0)], kinds=both)] == ["LM-RO-001.used_after_deletion"]
    # removals naming two customers: a use naming the second is retention_overrun's, under that one
    steps = [lc("delete", day=-4), lc("anonymize", subject="C2", day=-2), read(subject="C2", day=-1)]
    assert [a.rule_id for a in run([*steps, tick(0)], kinds=both)] == ["LM-RO-001.used_after_deletion"]


def test_a_delete_naming_categories_removes_those_alone(specs, catalog, run) -> None:
    """A CRM card's phone deleted (the delete names it), its address kept: a report reading the
    address reads data still held and is silent; one reading the phone fires, naming what went; one
    that says not what it read (no field list) fires too: the detector never learns what a record
    holds, so a destruction record listing all of it is a part, and a use after it must be seen (a
    review's went silent). A delete naming nothing is the whole
    record's, as before; state of an earlier lifemon (every removal whole, uses without what they
    read) loads as it was."""
    phone = lc("delete", subject=None, day=-2, categories=["mobile_phone"])
    assert run([phone, report(day=-1, fields=["home_address"]), tick(0)]) == []
    assert len(run([phone, report(day=-1, fields=[]), tick(0)])) == 1
    (a,) = run([phone, report(day=-1, fields=["mobile_phone", "home_address"]), tick(0)])
    assert "record R1 on crm, contact deleted 2025-12-30, read by e1" in a.summary
    assert (
        len(run([lc("delete", subject=None, day=-2), report(day=-1, fields=["home_address"]), tick(0)])) == 1
    )
    e = Engine([specs["deleted_record_use"]], catalog, pseudonymize=pz)
    run([phone, report(day=-1, fields=["mobile_phone"])], engine=e)
    kept = e.tasks[(0, "deleted_record_use")].keys.get("R1")
    assert (
        kept.parts == [[T0 - 2 * DAY, "delete", ["contact"]]]
        and Kept.from_json(kept.to_json()).parts == kept.parts
    )
    old = Kept.from_json(
        [3, "delete", "crm", "", ["d1"], 0, 0, [[5, "u1", "access", "e1", "crm", "C2", [], 0]], 0, {}, [], 0]
    )
    assert old.parts == [] and old.offends(old.uses[0], frozenset())


def test_a_record_is_remembered_from_its_latest_removal(run) -> None:
    """Anonymized 450 days ago, deleted 100 days ago: a report of it yesterday fires, event by event
    as in one batch (remembered `forget_deleted_days` from the deletion, not the anonymization)."""
    steps = [lc("anonymize", subject=None, day=-450), lc("delete", subject=None, day=-100), tick(-40), tick(-20), report(day=-1), tick(0)]  # fmt: skip
    assert [len(run(steps, batch=b)) for b in (1, 10_000)] == [1, 1]


def test_a_record_an_earlier_lifemon_kept_as_anonymized_is_judged_by_this_one(specs, catalog, run) -> None:
    """State of an earlier lifemon counted an anonymization as the record's removal: restored, a
    report naming the record alone is the analysis it is, and one naming a customer still fires."""
    e = Engine([specs["deleted_record_use"]], catalog, pseudonymize=pz)
    run([lc("anonymize", day=-4)], engine=e)
    keys = e.tasks[(0, "deleted_record_use")].keys
    kept = keys.get("R1")
    row = [kept.anon, "anonymize", *kept.to_json()[2:8]]  # its eight items, the removal an anonymization
    restored = Engine([specs["deleted_record_use"]], catalog, pseudonymize=pz)
    restored.restore(0, [(b"deleted_record_use\x1fR1", orjson.dumps(row))])
    assert run([report(day=-3), tick(0)], engine=restored) == []
    (a,) = run([report(day=-2).model_copy(update={"subject_ids": ["C7"]}), tick(0.5)], engine=restored)
    assert a.window_start == T0 - 4 * DAY and "anonymized 2025-12-28, read by" in a.summary


def test_an_alert_an_earlier_lifemon_raised_is_not_raised_again(specs, catalog, run) -> None:
    """An earlier lifemon raised a revision as each fact came and kept no count of them: restored,
    a new removal revises its alert once, and a report that adds nothing to it raises nothing."""
    e = Engine([specs["deleted_record_use"]], catalog, pseudonymize=pz)
    (a,) = run([lc("delete", day=-3), report(day=-2), report(day=-1, actor="e2")], engine=e)
    row = e.tasks[(0, "deleted_record_use")].keys.get("R1").to_json()[:11]  # without the revision raised
    restored = Engine([specs["deleted_record_use"]], catalog, pseudonymize=pz)
    restored.restore(0, [(b"deleted_record_use\x1fR1", orjson.dumps(row))])
    assert run([report(day=-4, actor="e3"), tick(0)], engine=restored) == []  # before the deletion
    (b,) = run([lc("destroy", day=-0.5, method="shred"), tick(0.5)], engine=restored)
    assert (b.alert_id, a.revision, b.revision) == (a.alert_id, 2, 3)


def test_a_report_of_the_record_anew_is_judged_once_its_collection_is_known(specs, catalog) -> None:
    """The access topic runs ahead: the report of day -0.5 arrives before the deletion of day -3 and
    the collection anew of day -1. Judged only once every input has passed it, it reads the new
    record, as in time order; so too when the deletion is reported after the collection."""
    back = lc("collect", day=-1, categories=["mobile_phone"], purpose="customer_service")
    for lifecycle in ([lc("delete", day=-3), back], [back, lc("delete", day=-3)]):
        e = Engine([specs["deleted_record_use"]], catalog, pseudonymize=pz)
        alerts = e.process("access", "access", 0, fed("access", [report(day=-0.5)], "access", 0))
        alerts += e.process("lifecycle", "lifecycle", 0, fed("lifecycle", lifecycle, "lifecycle", 1))
        assert alerts + e.advance() + e.drain() == []


def test_a_deletion_that_arrives_after_the_report_still_decides_it(run, specs, catalog) -> None:
    """Live and in a replay the inputs interleave differently: the report, read first, is judged
    again when the deletion that precedes it in event time arrives. The same alert either way."""
    engine = Engine([specs["deleted_record_use"]], catalog, pseudonymize=pz)
    assert run([report(day=-1)], engine=engine) == []
    (late,) = run([lc("delete", day=-1.5), tick(0)], engine=engine)
    (in_order,) = run([lc("delete", day=-1.5), report(day=-1), tick(0)])
    assert (late.alert_id, late.summary, late.revision) == (in_order.alert_id, in_order.summary, 1)


def feed_in_order(e: Engine, steps: list[Any]) -> list[Any]:
    """Each event alone, in the order given (not by time), as one input may run ahead of another,
    and judged before the next arrives (the watermark at the latest event time)."""
    alerts = []
    for i, ev in enumerate(steps):
        stream = "access" if ev.event_id.startswith("report") else "lifecycle"
        alerts += e.process(stream, stream, 0, fed(stream, [ev], stream, i)) + e.drain()
    return alerts


def test_an_earlier_removal_reported_after_an_alert_revises_that_alert(specs, catalog) -> None:
    """Destroyed on day -1 and reported first, read on day -0.5 (an alert), read on day -2, then the
    deletion of day -3 arrives: one alert, revised to start at the deletion and count both reads,
    the very alert that the same events in time order give."""
    destroyed, deleted = lc("destroy", day=-1, method="shred"), lc("delete", day=-3)
    late = feed_in_order(
        Engine([specs["deleted_record_use"]], catalog, pseudonymize=pz),
        [destroyed, report(day=-0.5), report(day=-2), deleted],
    )
    assert len({a.alert_id for a in late}) == 1
    assert [(a.revision, a.window_start) for a in late] == [(1, T0 - DAY), (3, T0 - 3 * DAY)]
    final = late[-1]
    assert final.counts == {"records": 1, "uses": 2} and "deleted 2025-12-29" in final.summary
    in_order = feed_in_order(
        Engine([specs["deleted_record_use"]], catalog, pseudonymize=pz),
        [deleted, destroyed, report(day=-2), report(day=-0.5)],
    )
    got = (in_order[-1].alert_id, in_order[-1].revision, in_order[-1].summary, in_order[-1].window_start)
    assert got == (final.alert_id, final.revision, final.summary, final.window_start)


def test_a_use_naming_other_customers_or_a_removal_naming_none_is_judged_here(run) -> None:
    """retention_overrun judges a use only under the customer the removal names: a read naming
    another customer beside the record, or any read of a record whose removal names no customer,
    would otherwise be judged by neither."""
    other = report(day=-1).model_copy(update={"subject_ids": ["C7"], "event_id": "other"})
    both = ("deleted_record_use", "retention_overrun")
    (a,) = run([collect(day=-3), lc("delete", day=-2), other, tick(0)], kinds=both)
    assert a.rule_id == "LM-RO-002.used_after_deletion" and a.subjects_sample == [pz("C1")]
    (b,) = run([lc("delete", subject=None, day=-2), read(day=-1), tick(0)], kinds=both)
    assert b.rule_id == "LM-RO-002.used_after_deletion" and b.subject_count == 0


def test_a_deletion_reported_late_counts_within_late_deletion_days(run, specs, catalog) -> None:
    """The report waits 31 days of event time for a deletion dated before it; past that it is
    forgotten, and nothing is kept of a record never known deleted."""
    for wait, alerts in ((30, 1), (32, 0)):
        e = Engine([specs["deleted_record_use"]], catalog, pseudonymize=pz)
        run([report(day=-40), tick(-40 + wait)], engine=e)
        store = e.tasks[(0, "deleted_record_use")].keys
        assert (store.get("R1") is None) is (wait > 31)
        assert len(run([lc("delete", day=-41), tick(0)], engine=e)) == alerts


def test_a_record_read_from_a_restored_backup_over_a_year_after_its_deletion_fires(run) -> None:
    """Seed 002 §六.6(1) sets no end to 不可被检索和访问: a probe's read 426 days after a deletion,
    from a backup restored, raised nothing when deleted records were forgotten after 400 days."""
    assert len(run([lc("delete", subject=None, day=-427), report(day=-1), tick(0)])) == 1


def test_a_removed_record_is_forgotten_after_forget_deleted_days(specs, catalog, run) -> None:
    e = Engine([specs["deleted_record_use"]], catalog, pseudonymize=pz)
    run([lc("delete", day=-1870), report(day=-1869), tick(-41)], engine=e)
    store = e.tasks[(0, "deleted_record_use")].keys
    assert store.get("R1").gone == T0 - 1870 * DAY  # 1 829 days on: a backup's restore is still caught
    run([tick(0)], engine=e)
    assert store.get("R1") is None  # 1 830 days (five years) after its deletion: nothing of it is kept


def test_batches_give_the_same_alerts(run) -> None:
    steps = [collect(day=-3), report(day=-2.5), lc("delete", day=-2), report(day=-1), report(day=-0.5, actor="e2"), tick(0)]  # fmt: skip
    whole = [(a.alert_id, a.revision, a.summary) for a in run(steps)]
    assert [(a.alert_id, a.revision, a.summary) for a in run(steps, batch=1)] == whole
    assert len(whole) == 1


@pytest.mark.integration
def test_a_report_by_record_reaches_the_records_task_through_its_repartition_topic(
    broker, ch, names, policy, catalog
) -> None:
    """The access topic is keyed by actor, lifecycle by record: the report is re-keyed by its
    record id and meets the deletion in one task, through a real broker; the alert reaches the
    alerts topic and chDB."""
    config = make_config(names, broker, "chdb://unused")
    m = monitor(config, ch, policy, catalog)
    for ev in [collect("R2", "C2", -3), lc("delete", "R2", "C2", -2), tick(0)]:
        send(broker, config.topics.lifecycle, [ev], key=ev.record_id.encode())
    send(broker, config.topics.access, [report("R2", -1, actor="e7")], key=b"e7")
    m.run(idle_exit_s=1.5, max_seconds=90)

    alerts = latest_alerts(read_all(broker, config.topics.alerts, expect_at_least=1))
    pz_env = Pseudonymizer.from_env(allow_ephemeral=False)
    got = [(o["finding_info"]["analytic"]["uid"], o["unmapped"]["subjects_sample"]) for o in alerts.values()]
    assert got == [("LM-RO-002.used_after_deletion", [pz_env("C2")])]
    rows = ch.query(f"SELECT rule_id, actor_id FROM {names['database']}.alerts FINAL").result_rows
    assert rows == [("LM-RO-002.used_after_deletion", "e7")]


def test_a_collection_leaves_nothing_and_a_read_naming_the_records_customer_never_counts(
    specs, catalog
) -> None:
    """Only removals and uses change the state; a use naming the customer the removal names waits,
    and is left to retention_overrun when the removal arrives."""
    e = Engine([specs["deleted_record_use"]], catalog, pseudonymize=pz)
    e.process("lifecycle", "l", 0, fed("lifecycle", [collect(day=-3)], "l"))
    task = e.tasks.get((0, "deleted_record_use"))
    assert task is None or task.keys.get("R1") is None
    e.process("access", "a", 0, fed("access", [read(day=-1)], "a"))
    assert e.process("lifecycle", "l", 0, fed("lifecycle", [lc("delete", day=-2)], "l", 1)) == []
    kept = e.tasks[(0, "deleted_record_use")].keys.get("R1")
    assert [u[1] for u in kept.waiting()] == [f"read-R1-{T0 - DAY}"] and kept.counted == 0
    assert Kept.from_json(kept.to_json()).to_json() == kept.to_json()


def test_uses_past_the_evidence_limit_still_count_and_revise_and_a_redelivered_one_does_not(
    specs, catalog, run
) -> None:
    """25 reports after the deletion keep the latest 20 (evidence_limit) and count 25; a 26th by a
    new reader revises the alert to name it; the same report delivered again past the engine's
    window of recent ids is not another use."""
    e = Engine([specs["deleted_record_use"]], catalog, pseudonymize=pz)
    reports = [report(day=-1 + i / 100, actor=f"e{i}") for i in range(25)]
    (a,) = run([lc("delete", day=-2), *reports], engine=e)
    kept = e.tasks[(0, "deleted_record_use")].keys.get("R1")
    assert [u[3] for u in kept.uses] == [f"e{i}" for i in range(5, 25)]
    assert (a.counts, a.revision, a.actor_id, a.event_count) == ({"records": 1, "uses": 25}, 25, "e24", 25)
    (b,) = run([report(day=-0.5, actor="new-reader")], engine=e)
    assert (b.alert_id, b.counts, b.revision, b.actor_id) == (
        a.alert_id,
        {"records": 1, "uses": 26},
        26,
        "new-reader",
    )
    e.seen_ids.clear()
    assert run([reports[-1], lc("delete", day=-2)], engine=e) == []  # neither a use nor a removal again
    assert kept.counted == 26


def test_a_restored_task_goes_on_as_if_never_stopped(specs, catalog, run) -> None:
    """The store's changes restored into a new engine: the next report revises the same alert, and
    the waiting report's timer survives the restore."""
    spec = specs["deleted_record_use"]
    first = Engine([spec], catalog, pseudonymize=pz)
    (a,) = run([lc("delete", day=-3), report(day=-2), report("R2", day=-2)], engine=first)
    restored = Engine([spec], catalog, pseudonymize=pz)
    restored.restore(0, first.changes(0))
    (b,) = run([report(day=-1, actor="e2")], engine=restored)
    assert (b.alert_id, b.revision, b.counts) == (a.alert_id, 2, {"records": 1, "uses": 2})
    keys = restored.tasks[(0, "deleted_record_use")].keys
    assert keys.get("R2").wait == T0 - 2 * DAY + 31 * DAY
    run([tick(30)], engine=restored)
    assert keys.get("R2") is None  # its wait ended: forgotten


def test_one_waiting_timer_per_record(specs, catalog, run) -> None:
    """Many reports of a record not known removed hold one timer, at the earliest one's wait."""
    e = Engine([specs["deleted_record_use"]], catalog, pseudonymize=pz)
    run([report(day=-10 + i / 10, actor=f"e{i}") for i in range(10)], engine=e)
    keys = e.tasks[(0, "deleted_record_use")].keys
    timers = [k for k, _ in keys.items("t:")]
    assert len(timers) == 1 and keys.get("R1").wait == T0 - 10 * DAY + 31 * DAY


def test_a_report_judged_before_its_removal_was_known_is_judged_again_when_time_comes_back(
    run, specs, catalog
) -> None:
    """retention_overrun's lost alert (6cc709b), on the record's task: the report came first, and
    the watermark passed it while the lifecycle input had delivered nothing (it then holds nothing
    back), so its timer found no removal. The removal's history came next and pulled the watermark
    back to its days: its own timer judged the uses up to there, the report still ahead, left for
    a timer that had fired already. Only the 31-day wait for a late removal came back to it, past
    the end of the input."""
    e = Engine([specs["deleted_record_use"]], catalog, pseudonymize=pz)
    reports = [report(day=-1), report("R2", day=-0.9)]
    alerts = e.process("access", "access", 0, fed("access", reports, "access"))
    alerts += e.advance()  # past the report: no lifecycle has reached the task yet
    history = [lc("delete", day=-2), tick(-1.5)]
    alerts += e.process("lifecycle", "lifecycle", 0, fed("lifecycle", history, "lifecycle"))
    alerts += e.advance(behind={("lifecycle", 0)})  # the lifecycle topic, still being read, holds time back
    alerts += e.process("lifecycle", "lifecycle", 0, fed("lifecycle", [tick(0)], "lifecycle", 2))
    alerts += e.advance() + e.drain()
    (a,) = latest(alerts)  # R2 was never removed
    (b,) = run([*history, report(day=-1), tick(0)])  # in time order
    assert (a.alert_id, a.revision, a.summary) == (b.alert_id, b.revision, b.summary)


@pytest.mark.parametrize("spelled", [" R1", "R1 ", "Ｒ１"])
def test_a_record_id_padded_or_in_full_width_is_the_record(run, spelled) -> None:
    """A CHAR column pads a record id with blanks, a form typed in Chinese input mode writes it in
    full width: the read of the deleted record is still one (a probe: ` RA002` raised nothing)."""
    steps = [collect(day=-3), lc("delete", day=-2)]
    plain = run([*steps, report(day=-1), tick(0)])
    padded = report(day=-1).model_copy(update={"record_ids": [spelled]})
    assert len(plain) == 1 and [a.summary for a in run([*steps, padded, tick(0)])] == [plain[0].summary]


@pytest.mark.parametrize(("removed", "read_as"), [("0012345", "12345"), ("12345", "0012345"), ("000", "0")])
def test_a_number_with_or_without_its_leading_zeros_is_the_record(run, removed, read_as) -> None:
    """A probe's: the CRM deletes record `0012345`, the warehouse's BIGINT copy writes `12345`, and
    the read of the deleted record raised nothing. A number's leading zeros say nothing; an id with
    a letter keeps them (`R012` is no deletion of `R12`)."""
    steps = [collect(removed, day=-3), lc("delete", removed, day=-2)]
    (alert,) = run([*steps, report(read_as, day=-1), tick(0)])
    assert alert.counts["uses"] == 1
    assert run([collect("R012", day=-3), lc("delete", "R012", day=-2), report("R12", day=-1), tick(0)]) == []


GUID = "3f2a9c4e-8b1d-4e6f-9a2b-7c5d1e0f4a3b"


@pytest.mark.parametrize(
    ("removed", "read_as"),
    [(GUID, GUID.upper()), (GUID, "{" + GUID.upper() + "}"), (GUID.upper(), GUID), ("{" + GUID + "}", GUID)],
)
def test_a_guid_in_another_case_or_braced_is_the_record(run, removed, read_as) -> None:
    """A probe's: the CRM logs a record's GUID in lower case, the warehouse (SQL Server) in upper
    case or braced; the download of the deleted record raised nothing. A GUID has no case (RFC 4122);
    an id of another form keeps its case (`r1` is no deletion of `R1`)."""
    steps = [collect(removed, day=-3), lc("delete", removed, day=-2)]
    (alert,) = run([*steps, report(read_as, day=-1), tick(0)])
    assert alert.counts["uses"] == 1
    assert run([collect(day=-3), lc("delete", day=-2), report("r1", day=-1), tick(0)]) == []
