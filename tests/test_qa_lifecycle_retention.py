"""QA cases for retention_overrun, written from the seeds rather than the detector's constants.

Seed 004 流程描述(5): "客户要求删除个人金融信息时, 各责任单位应依据国家法律法规、行业主管部门有关规定以及与
客户的约定予以响应", within the bank's own 15 days (retention.yaml; no seed names a time); seed 002 §五 and seed 004
流程描述(3)①: past the storage period, delete or anonymize; seed 002 §七(3): a destruction record
states content, method, time, operator and supervisor. The periods are the bank's
(policy/retention.yaml: 30 days for a location trace, ten years after an account closure, the AML
Law's minimum as revised in 2024).

Days are the bank's calendar days (Asia/Shanghai, as policy/recipients.yaml declares for every
contract date): the 15 days counted as the Civil Code counts a period in days (art. 201: the day of the
request is not counted; art. 203: the last day ends at 24:00, and a last day that is a weekend day or
a public holiday, policy/calendar.yaml's, moves to the next working day). 2026-01-01T00:00Z (T0) is
08:00 in Beijing.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import T0, fed
from test_retention_overrun import final_alerts

from detectors import load_detectors
from schemas.models import AccessEvent, LifecycleEvent
from streams.engine import Engine
from streams.lifecycle_ledger import DeletionLedger
from streams.pseudonym import Pseudonymizer

HOUR, DAY = 3_600_000, 86_400_000
CST = 8 * HOUR  # Beijing is UTC+8
pz = Pseudonymizer(b"qa-lifecycle-key-0123456789")
CUSTOMER = "CIF0012345678"  # a core-banking customer number, as producers log it


def cst(day: int, hour: float = 0) -> int:
    """Epoch ms of 2026-01-(1 + day) at `hour` o'clock in Beijing."""
    return T0 - CST + day * DAY + int(hour * HOUR)


def lc(stage: str, ts: int, rid: str = "REC-7781", subject: str = CUSTOMER, **kw: Any) -> LifecycleEvent:
    return LifecycleEvent(
        event_id=f"{stage}-{rid}-{ts}", ts=ts, record_id=rid, subject_id=subject, stage=stage,
        system=kw.pop("system", "crm"), **kw,
    )  # fmt: skip


def collect(ts: int, rid: str = "REC-7781", subject: str = CUSTOMER, **kw: Any) -> LifecycleEvent:
    kw.setdefault("categories", ["mobile_phone", "home_address"])
    kw.setdefault("purpose", "customer_service")
    return lc("collect", ts, rid, subject, **kw)


def tick(ts: int, n: int = 0) -> LifecycleEvent:
    """Another customer's unrelated collection: moves event time on."""
    return collect(ts, f"TICK-{ts}-{n}", "CIF-OTHER", purpose="account_service", categories=["customer_name"])


def read(ts: int, rid: str = "REC-7781", subject: str = CUSTOMER, actor: str = "E10234") -> AccessEvent:
    return AccessEvent(
        event_id=f"read-{rid}-{ts}", ts=ts, actor_id=actor, actor_org="S0101", system="mobile_banker",
        action="view", subject_ids=[subject], record_ids=[rid], fields=["location_trace"],
    )  # fmt: skip


@pytest.fixture
def spec(policy: Any) -> Any:
    return next(s for s in load_detectors(policy) if s.kind == "retention_overrun")


def run(spec: Any, catalog: Any, events: list[Any], batch: int = 10_000) -> list[Any]:
    """Feed in time order `batch` at a time, drain; the latest revision of each alert."""
    return final_alerts(Engine([spec], catalog, pseudonymize=pz), events, batch)


def rule(a: Any) -> str:
    return a.rule_id.rsplit(".", 1)[1]


def no_raw_ids(alerts: list[Any]) -> None:
    for a in alerts:
        assert CUSTOMER not in a.model_dump_json(), a.summary


# -- deletion requests: the bank's 15 days (seed 004 流程描述(5)) -------------------------------------------
def test_a_deletion_executed_in_the_afternoon_of_day_15_is_in_time(spec, catalog) -> None:
    """Requested 1 Jan 10:00, executed 16 Jan 15:00 (Beijing): day 15 of the 15, in time."""
    events = [
        collect(cst(-30, 9)),
        lc("deletion_requested", cst(0, 10)),
        lc("delete", cst(15, 15), method="purge"),
    ]
    assert run(spec, catalog, [*events, tick(cst(40))]) == []


def test_a_deletion_executed_on_day_16_is_overdue_by_one_day(spec, catalog) -> None:
    """Requested 1 Jan 10:00, executed 17 Jan 09:00: one day late, high, closed once executed."""
    events = [
        collect(cst(-30, 9)),
        lc("deletion_requested", cst(0, 10)),
        lc("delete", cst(16, 9), method="purge"),
    ]
    (a,) = run(spec, catalog, [*events, tick(cst(40))])
    assert rule(a) == "deletion_request_overdue" and a.severity.value == "high"
    assert a.status.value == "closed"
    assert "requested 2026-01-01" in a.summary and "removed 2026-01-17, 1 day late" in a.summary
    assert "15日" in a.title_zh and a.title_en
    # the customer-side clause, the 15 days named the bank's own: not the employees' app's policy
    assert any(
        r.startswith("本行《个人金融信息保护管理规定》 流程描述(5): 客户要求删除个人金融信息时")
        for r in a.regulation
    )
    assert any("15日为本行自定时限" in r for r in a.regulation)
    assert not any("掌上银行家" in r for r in a.regulation)
    no_raw_ids([a])


def test_a_request_never_executed_fires_once_day_15_has_ended(spec, catalog) -> None:
    events = [collect(cst(-30, 9)), lc("deletion_requested", cst(0, 10))]
    assert run(spec, catalog, [*events, tick(cst(15, 23.9))]) == []  # day 15 not over yet
    (a,) = run(spec, catalog, [*events, tick(cst(16, 0.1))])
    assert rule(a) == "deletion_request_overdue" and a.status.value == "open"
    no_raw_ids([a])


def test_the_dashboard_dates_a_request_due_when_the_detector_fires(spec, catalog, policy) -> None:
    """The lifecycle dashboard's `due` (deletion_events) is the detector's deadline: a request the
    panel still shows within its 15 days raises no alert, and the one past it has one."""
    request = lc("deletion_requested", cst(0, 10))
    ledger = DeletionLedger(policy)
    ledger.add([request])
    ((*_, due, _),) = ledger.drain()
    assert due == cst(16)  # the end of 16 Jan, Beijing
    events = [collect(cst(-30, 9)), request]
    assert run(spec, catalog, [*events, tick(due - 1)]) == []
    (a,) = run(spec, catalog, [*events, tick(due)])
    assert rule(a) == "deletion_request_overdue" and a.window_end == due


def test_a_quiet_partition_still_fires_the_deadline(spec, catalog) -> None:
    """The customer's partition hears nothing after the request; the other partition's traffic
    moves the instance clock, and the live runtime, told every input is caught up, fires it."""
    e = Engine([spec], catalog, pseudonymize=pz)
    e.process(
        "lifecycle", "l", 0, fed("lifecycle", [collect(cst(-30)), lc("deletion_requested", cst(0, 10))], "l")
    )
    later = [tick(cst(d), d) for d in range(1, 20)]
    alerts = e.process("lifecycle", "l", 1, fed("lifecycle", later, "l"))
    quiet = {(s, p) for s in ("lifecycle", "access", "transfer") for p in (0, 1)}
    alerts += e.advance(caught_up=quiet)
    assert [rule(a) for a in alerts] == ["deletion_request_overdue"]
    no_raw_ids(alerts)


# -- retention periods (policy/retention.yaml) ----------------------------------------------------------
LOCATION = {"categories": ["location_trace"], "purpose": "branch_service", "system": "mobile_banker"}


def test_a_nearby_branch_trace_deleted_on_its_30th_day_is_in_time(spec, catalog) -> None:
    """Collected 1 Jan 10:00, purged 31 Jan 15:00 (Beijing): day 30 of its 30 days."""
    events = [collect(cst(0, 10), "LOC-1", **LOCATION), lc("delete", cst(30, 15), "LOC-1", method="purge", system="mobile_banker")]  # fmt: skip
    assert run(spec, catalog, [*events, tick(cst(60))]) == []


def test_a_trace_read_the_day_after_its_retention_ended_fires_high(spec, catalog) -> None:
    """Collected 1 Jan: its 30th day, 31 Jan 2026, is a Saturday, so it is due by the end of Monday
    2 Feb (Civil Code art. 203 ¶1, policy/calendar.yaml); read on 3 Feb."""
    events = [collect(cst(0, 10), "LOC-1", **LOCATION), read(cst(33, 11), "LOC-1"), tick(cst(34))]
    got = {rule(a): a for a in run(spec, catalog, events)}
    assert set(got) == {"used_after_deadline", "retention_expired"}
    used = got["used_after_deadline"]
    assert used.severity.value == "high" and used.actor_id == "E10234"
    assert got["retention_expired"].severity.value == "medium"
    no_raw_ids(list(got.values()))


def test_account_closed_and_records_destroyed_in_time_is_silent(spec, catalog) -> None:
    """On the last day of the ten years after the closure (3 653 days: three 29 Februaries between),
    the account record is destroyed with a complete destruction record (seed 002 §七(3)): neither
    kept too long nor removed before the AML Law's minimum."""
    acct = {"categories": ["payment_account_no", "account_open_date"], "purpose": "account_service", "system": "core_banking"}  # fmt: skip
    closed = cst(-3653, 14)
    events = [
        collect(cst(-4000, 9), "ACCT-1", **acct),
        lc("account_closed", closed, "ACCT-1", system="core_banking"),
        lc("destroy", closed + 3653 * DAY - 2 * HOUR, "ACCT-1", system="core_banking", categories=["payment_account_no"],
           method="degauss", operator_id="E20001", supervisor_id="E20002"),
        tick(cst(10)),
    ]  # fmt: skip
    assert run(spec, catalog, events) == []


def test_account_record_destroyed_a_day_after_its_ten_years_fires_and_closes(spec, catalog) -> None:
    acct = {"categories": ["payment_account_no"], "purpose": "account_service", "system": "core_banking"}
    closed = cst(-3660, 14)  # 25 Dec 2015: its ten years end with 25 Dec 2025, 3 653 days on
    events = [
        collect(cst(-6000, 9), "ACCT-1", **acct),
        lc("account_closed", closed, "ACCT-1", system="core_banking"),
        lc("destroy", closed + 3654 * DAY, "ACCT-1", system="core_banking", categories=["payment_account_no"],
           method="degauss", operator_id="E20001", supervisor_id="E20002"),
        tick(cst(10)),
    ]  # fmt: skip
    (a,) = run(spec, catalog, events)
    assert rule(a) == "retention_expired" and a.severity.value == "medium" and a.status.value == "closed"
    assert "account_closed" in a.summary and "1 day late" in a.summary
    no_raw_ids([a])


def test_a_deletion_logged_late_but_done_in_time_does_not_read_as_late(spec, catalog) -> None:
    """The purge ran on day 29, but its lifecycle event reached the monitor after its last day
    (Monday 2 Feb: day 30 is a Saturday) had passed: the alert raised meanwhile closes, and must
    not say the record was removed late."""
    e = Engine([spec], catalog, pseudonymize=pz)
    alerts = e.process("lifecycle", "l", 0, fed("lifecycle", [collect(cst(0, 10), "LOC-1", **LOCATION), tick(cst(35))], "l"))  # fmt: skip
    alerts += e.advance()
    late = lc("delete", cst(29, 3), "LOC-1", method="purge", system="mobile_banker")
    # its revision goes by the stage of its system's day, said at the next pass
    alerts += e.process("lifecycle", "l", 0, fed("lifecycle", [late], "l", 2)) + e.advance()
    final = max(alerts, key=lambda a: a.revision)
    assert final.status.value == "closed" and final.revision == 2
    assert final.summary.endswith(
        "; removed 2026-01-30, in time (the deletion was reported after the deadline)"
    )


def test_the_summary_dates_are_the_banks_calendar_days(spec, catalog) -> None:
    """A request made at 02:00 on 1 Jan in Beijing is dated 1 Jan, not 31 Dec (UTC)."""
    events = [collect(cst(-30, 9)), lc("deletion_requested", cst(0, 2)), tick(cst(20))]
    (a,) = run(spec, catalog, events)
    assert "requested 2026-01-01" in a.summary, a.summary


def test_every_alert_field_is_free_of_the_customer_number(spec, catalog) -> None:
    events = [
        collect(cst(0, 10), "LOC-1", **LOCATION),
        read(cst(33, 11), "LOC-1"),  # past its last day, Monday 2 Feb (day 30 is a Saturday)
        lc("deletion_requested", cst(1, 9), "REC-9"),
        lc("destroy", cst(2, 9), "REC-9", categories=["mobile_phone"], method="shred", operator_id="E1", supervisor_id="E1"),
        tick(cst(40)),
    ]  # fmt: skip
    alerts = run(spec, catalog, events)
    assert {rule(a) for a in alerts} >= {
        "retention_expired",
        "used_after_deadline",
        "destruction_record_incomplete",
    }
    for a in alerts:
        blob = json.loads(a.model_dump_json())
        assert CUSTOMER not in json.dumps(blob, ensure_ascii=False)
        assert a.title_zh and a.title_en and a.regulation
