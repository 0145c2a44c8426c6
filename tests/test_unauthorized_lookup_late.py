"""Unauthorized lookup judges each access once the watermark passes it, so reference data that
arrives after the access, within the allowed lateness, still decides it, in either direction; the
screen that lets the common access through without the full rules must never get ahead of that.
And the alerts are the same whatever the batches and however often the state is restored."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import T0, access, entitlement, fed, refs
from test_unauthorized_lookup import approval, book, customer, reasons

from detectors import load_detectors
from schemas.models import AccessEvent, EmployeeStatus, Record
from streams.alerts import latest
from streams.engine import Engine
from streams.pseudonym import Pseudonymizer
from streams.workload import generate

HOUR = 3_600_000
LATENESS = 60_000  # the engine's default allowed lateness


@pytest.fixture
def spec(policy):
    return next(s for s in load_detectors(policy) if s.kind == "unauthorized_lookup")


def engine(spec, catalog, ents: list[Record], customers: list[Record] | None = None) -> Engine:
    e = Engine([spec], catalog, pseudonymize=Pseudonymizer(b"unit-test-key-0123456789"))
    e.apply_reference("entitlements", refs("entitlements", ents))
    e.apply_reference("customers", refs("customers", book() if customers is None else customers))
    return e


def late_run(spec, catalog, ents, events, late: list[tuple[str, Record]], customers=None) -> list[Any]:
    """`events` arrive as one batch, the stream time then at the last; then the `late` reference
    records (their times must be within the lateness of it); then an access by another actor ten
    minutes on moves the watermark past every one. Newest revision of each alert."""
    e = engine(spec, catalog, ents, customers)
    events = sorted(events, key=lambda ev: ev.ts)
    alerts = e.process("access", "t", 0, fed("access", events))
    alerts += e.advance()
    watermark = e.tasks[(0, spec.kind)].ctx.watermark
    for stream, record in late:
        assert record.ts > watermark, "a test record must arrive within the lateness"
        e.apply_reference(stream, refs(stream, [record]))
    flush = access("e9", customers=1, start=events[-1].ts - T0 + 10 * 60_000)
    alerts += e.process("access", "t", 0, fed("access", flush, offset=len(events)))
    alerts += e.advance() + e.drain()
    return [a for a in latest(alerts) if a.actor_id != "e9"]


def reads(actor: str = "e1", n: int = 10, **kw: Any) -> list[AccessEvent]:
    """One-customer reads of e1's own sub-branch customers, six seconds apart from T0 + 1 h: one
    batch of the same kind of access, which the screen judges together."""
    return access(actor, n=n, customers=n, every_s=6, start=HOUR, **kw)


MID = T0 + HOUR + 30_000  # among the reads above: five before, five from it on


def test_a_late_termination_among_the_reads_decides_those_after_it(spec, catalog) -> None:
    ent = entitlement("e1", role="wealth_manager")
    gone = entitlement("e1", role="wealth_manager", ts=MID, status="terminated")
    (a,) = late_run(spec, catalog, [ent], reads(), [("entitlements", gone)])
    assert reasons([a]) == {"terminated"} and a.counts["accesses"] == 5 and a.window_start == MID
    assert late_run(spec, catalog, [ent], reads(), []) == []  # the same reads without it: silent


def test_a_late_transfer_decides_the_old_scope(spec, catalog) -> None:
    ents = [entitlement("e1")]
    moved = [
        ("entitlements", entitlement("e1", ts=MID - 20_000, status="transferred")),
        ("entitlements", entitlement("e1", org="S0201", ts=MID)),
    ]
    (a,) = late_run(spec, catalog, ents, reads(), moved)  # its own S0101 customers throughout
    assert reasons([a]) == {"transferred", "old_scope_after_transfer"}
    # the read 6 s before the new post's record is judged by it (`provisioning_skew_seconds`)
    assert a.counts["reason_transferred"] == 2 and a.counts["reason_old_scope_after_transfer"] == 6


def test_a_late_customer_move_puts_a_read_out_of_sight_or_into_it(spec, catalog) -> None:
    ents = [entitlement("e1")]
    away = customer("C0000007", "S0201", ts=MID)  # read at MID + 12 s, moved to another branch
    (a,) = late_run(spec, catalog, ents, reads(), [("customers", away)])
    assert reasons([a]) == {"out_of_scope"} and a.counts["accesses"] == 1
    assert "S0101 read a customer managed by S0201" in a.summary
    far = reads(first_customer=10)  # S0102's customers: out of e1's sight
    assert reasons(late_run(spec, catalog, ents, far, [])) == {"out_of_scope"}
    home = [("customers", customer(f"C{i:07d}", "S0101", ts=T0 + HOUR - 1)) for i in range(10, 20)]
    assert late_run(spec, catalog, ents, far, home) == []  # moved in before the reads: silent


def test_a_late_approval_covers_and_a_late_revocation_exposes(spec, catalog) -> None:
    approved = dict(
        first_customer=10, approval_id="AP1", purpose="complaint_handling", fields=("account_balance",)
    )
    plain, granted = entitlement("e1"), entitlement("e1", approvals=[approval(max_records=20)])
    grant = entitlement("e1", ts=T0 + HOUR - 1, approvals=[approval(max_records=20)])
    assert late_run(spec, catalog, [plain], reads(**approved), [("entitlements", grant)]) == []
    revoke = entitlement("e1", ts=MID)
    (a,) = late_run(spec, catalog, [granted], reads(**approved), [("entitlements", revoke)])
    assert reasons([a]) == {"out_of_scope"} and a.counts["accesses"] == 5 and a.window_start == MID


def test_a_late_budget_cut_exposes_the_reads_past_it(spec, catalog) -> None:
    approved = dict(
        first_customer=10, approval_id="AP1", purpose="complaint_handling", fields=("account_balance",)
    )
    granted = entitlement("e1", approvals=[approval(max_records=20)])
    cut = entitlement("e1", ts=T0 + HOUR - 1, approvals=[approval(max_records=7)])
    assert late_run(spec, catalog, [granted], reads(**approved), []) == []
    (a,) = late_run(spec, catalog, [granted], reads(**approved), [("entitlements", cut)])
    assert reasons([a]) == {"out_of_scope"} and a.counts["accesses"] == 3  # the 8th to the 10th read
    assert "approval AP1 for complaint_handling, 7 records" in a.summary


def test_a_late_role_change_takes_the_data_and_the_system_away(spec, catalog) -> None:
    ents = [entitlement("e1")]
    demoted = entitlement("e1", role="sb_general_user", ts=MID)
    (a,) = late_run(spec, catalog, ents, reads(), [("entitlements", demoted)])
    assert reasons([a]) == {"role_not_permitted", "system_not_permitted"} and a.counts["accesses"] == 5


def test_a_customer_the_stream_names_late_is_no_coverage_gap(spec, catalog) -> None:
    ents = [entitlement("e1")]
    new = reads(n=3, first_customer=900)  # not in the customers stream yet
    assert reasons(late_run(spec, catalog, ents, new, [])) == {"unknown_customer"}
    named = [("customers", customer(f"C{i:07d}", ts=T0 + HOUR - 1)) for i in range(900, 903)]
    assert late_run(spec, catalog, ents, new, named) == []


def test_a_record_after_the_watermark_has_passed_is_too_late(spec, catalog) -> None:
    """The boundary: once judged, an access stays judged. A termination that reaches the monitor
    after the watermark passed the reads it governs decides only the reads after it arrived."""
    e = engine(spec, catalog, [entitlement("e1", role="wealth_manager")])
    alerts = e.process("access", "t", 0, fed("access", reads()))
    later = access("e9", customers=1, start=HOUR + 10 * 60_000)  # another actor: the watermark moves on
    alerts += e.process("access", "t", 0, fed("access", later, offset=10)) + e.advance()
    gone = entitlement("e1", role="wealth_manager", ts=MID, status="terminated")
    e.apply_reference("entitlements", refs("entitlements", [gone]))
    after = access("e1", customers=1, start=HOUR + 11 * 60_000)
    alerts += e.process("access", "t", 0, fed("access", after, offset=11)) + e.drain()
    (a,) = [a for a in latest(alerts) if a.actor_id == "e1"]
    assert a.counts["accesses"] == 1 and a.window_start == T0 + HOUR + 11 * 60_000


def test_judged_accesses_are_forgotten_after_the_kept_hours_however_few_each_drain_holds(
    spec, catalog
) -> None:
    """A soak's quiet partition drained an access or two at a time: a page of the kept list covered
    a thousand drains and went only once all were past `late_reference_hours`, so judged accesses
    were kept for days (174 MB by day 39). Three days of one read every ten minutes keep about the
    kept hours' reads, an hour more at most."""
    e = engine(spec, catalog, [entitlement("e1", role="wealth_manager")])
    reads_ = [access("e1", customers=1, start=HOUR + i * 600_000)[0] for i in range(3 * 144)]
    for i, ev in enumerate(reads_):
        e.process("access", "t", 0, fed("access", [ev.model_copy(update={"event_id": f"r{i}"})], offset=i))
        e.advance()
    kept = e.tasks[(0, spec.kind)].keys.get("~judged")
    segments = sum(hi - lo + 1 for lo, hi, *_ in kept.pages)
    hours = spec.params.late_reference_hours
    assert hours * 6 <= segments <= (hours + 1) * 6 + 2


# -- the same alerts whatever the batches, and across restores ---------------------------------------
@pytest.fixture(scope="module")
def day(policy) -> tuple[list[AccessEvent], list[tuple[int, str, Record]]]:
    """A generated bank's accesses (with every injected unauthorized lookup) and its reference
    records, plus late ones: terminations, transfers, suspensions of employees and moves of
    customers to another branch, each 10 s before an access it decides, arriving 40 s after it."""
    wl = generate(3000, seed=5, policy=policy)
    accesses = [r for s, _, r in wl.records if s == "access"]
    arrivals = [(-1, s, r) for s, _, r in wl.records if s in ("entitlements", "customers")]
    last_ent = {r.actor_id: r for _, s, r in arrivals if s == "entitlements"}
    customers = {r.customer_id: r for _, s, r in arrivals if s == "customers"}
    statuses = (EmployeeStatus.terminated, EmployeeStatus.transferred, EmployeeStatus.suspended)
    decided: set[str] = set()
    for k, ev in enumerate(accesses[100::97]):
        ts = ev.ts - 10_000
        if k % 2 and ev.actor_id in last_ent and ev.actor_id not in decided:
            decided.add(ev.actor_id)
            ent = last_ent[ev.actor_id].model_copy(update={"ts": ts, "status": statuses[k % 3]})
            arrivals.append((ev.ts + 40_000, "entitlements", ent))
        elif ev.subject_ids and ev.subject_ids[0] in customers:
            cust = customers[ev.subject_ids[0]]
            moved = cust.model_copy(update={"ts": ts, "org_id": "S0201", "org_path": ["HO", "B02", "S0201"]})
            arrivals.append((ev.ts + 40_000, "customers", moved))
    return accesses, sorted(arrivals, key=lambda a: a[0])


def replay(spec, catalog, day, batch: int, restore_every: int = 0) -> list[Any]:
    """Every revision of every alert, in (id, revision) order. A reference record is applied before
    the first batch holding an access past its arrival; `restore_every` batches, the state goes
    through a checkpoint into a fresh engine."""
    accesses, arrivals = day
    e, out, applied, saved = engine(spec, catalog, [], []), [], 0, []
    for i in range(0, len(accesses), batch):
        chunk = accesses[i : i + batch]
        while applied < len(arrivals) and arrivals[applied][0] <= chunk[-1].ts:
            _, stream, record = arrivals[applied]
            e.apply_reference(stream, refs(stream, [record]))
            applied += 1
        out += e.process("access", "a", 0, fed("access", chunk, "a", i)) + e.advance()
        if restore_every and (i // batch) % restore_every == restore_every - 1:
            saved += e.changes(0)
            e = engine(spec, catalog, [], [])
            for _, stream, record in arrivals[:applied]:
                e.apply_reference(stream, refs(stream, [record]))
            e.restore(0, saved)
    out += e.drain()
    return sorted(out, key=lambda a: (a.alert_id, a.revision))


def final(alerts: list[Any]) -> dict[str, tuple]:
    """What each alert finally says (not its revision: batches decide how often it was revised)."""
    return {
        a.alert_id: (
            a.status.value == "closed",  # open or updated: how often it was revised
            a.severity.value,
            a.summary,
            a.counts,
            a.subject_count,
            a.evidence_event_ids,
        )
        for a in latest(alerts)
    }


def test_the_same_alerts_whatever_the_batch_size(spec, catalog, day) -> None:
    whole = final(replay(spec, catalog, day, len(day[0])))
    assert len(whole) >= 10 and {"terminated", "transferred", "out_of_scope"} <= {
        k.removeprefix("reason_") for *_, counts, _, _ in whole.values() for k in counts
    }
    for batch in (2, 9, 250):
        assert final(replay(spec, catalog, day, batch)) == whole, batch


def test_a_restore_mid_stream_changes_no_alert(spec, catalog, day) -> None:
    straight = replay(spec, catalog, day, 97)
    assert straight and replay(spec, catalog, day, 97, restore_every=4) == straight
