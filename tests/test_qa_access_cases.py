"""Acceptance cases for the two access detectors, bulk_query and unauthorized_lookup, written from
the seeds and the bank's policy numbers, not from the detectors' code: normal work that comes near
each rule stays silent, and violations that barely cross raise exactly the alerts a compliance
officer would expect (detector, actor, severity, counts, a summary an analyst can act on).

Both detectors run in one engine, as in production, so a case also shows what it does *not* raise.
Sources quoted in each case: seed 001 §五.1 (SPC/SPP interpretation art. 5: 50 records of credit /
property data, 500 of transaction data), seed 004 掌上银行家系统机构设置 (head office sees all, a
branch itself and its sub-branches, a sub-branch itself), 客户管理机构 (customers are managed in one
sub-branch, others only query them), 人员管理(4)(5) (a transfer or termination changes access at
once), 流程描述(4)④⑤ (least privilege, graded approval)."""

from __future__ import annotations

import re
import shutil
import textwrap
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from conftest import T0, fed, refs

from detectors import load_detectors
from policy import DEFAULT_DIR, load_policy
from policy.catalog import Catalog
from policy.model import JrClass, PeakDays, ServiceAccount
from schemas.models import AccessEvent, Approval, Customer, Entitlement
from streams.alerts import latest
from streams.engine import Engine
from streams.pseudonym import Pseudonymizer

MINUTE, HOUR = 60_000, 3_600_000
BJ = 8 * HOUR  # Beijing time is UTC+8: 09:00 Beijing on 2026-01-01 is T0 + 1 h
OPEN = T0 + HOUR  # 09:00 Beijing
ORGS = {
    "HO": ["HO"],
    "B01": ["HO", "B01"],
    "S0101": ["HO", "B01", "S0101"],
    "S0102": ["HO", "B01", "S0102"],
    "S0201": ["HO", "B02", "S0201"],
    "B0103": ["HO", "B01", "B0103"],  # a second-level branch (二级分行) under B01
    "S010301": ["HO", "B01", "B0103", "S010301"],
    "HO_AUDIT": ["HO", "HO_AUDIT"],  # the head office's 审计部, a department read as HO
}


def customer(cid: str, org: str, ts: int = 0) -> Customer:
    return Customer(customer_id=cid, ts=ts, org_id=org, org_path=ORGS[org])


def book(n: int = 400) -> list[Customer]:
    """n customers in each of S0101 (A…), S0102 (B…), S0201 (F…: the far branch)."""
    return [
        customer(f"{p}{i:04d}", org)
        for p, org in (("A", "S0101"), ("B", "S0102"), ("F", "S0201"))
        for i in range(n)
    ]


def _ent(actor: str, role: str | None, org: str, ts: int = 0, **kw: Any):
    return Entitlement(
        actor_id=actor, ts=ts, org_id=org, org_path=ORGS[org], roles=[role] if role else [], **kw
    )


def grant(**kw: Any) -> Approval:
    base = {
        "approval_id": "AP1",
        "purpose": "complaint_handling",
        "max_records": 5,
        "expires_ts": T0 + 7 * 24 * HOUR,
        "approver_id": "E900001",
        "categories": ["identity", "property"],
        "systems": ["core_banking"],
    }
    return Approval(**(base | kw))


_seq = iter(range(10**9))


def read(actor: str, ts: int, subjects: list[str], fields=("customer_name", "account_balance"), **kw: Any):
    """One access as the core-banking audit log writes it: who, when, which customers, which fields."""
    kw.setdefault("system", "core_banking")
    kw.setdefault("action", "query")
    kw.setdefault("purpose", "customer_service")
    return AccessEvent(
        event_id=f"{actor}-{next(_seq)}",
        ts=ts,
        actor_id=actor,
        subject_ids=list(subjects),
        fields=list(fields),
        **kw,
    )


def spread(actor: str, subjects: list[str], start: int, end: int, **kw: Any) -> list[AccessEvent]:
    """One read per customer, evenly from `start` to `end`."""
    step = (end - start) // max(len(subjects), 1)
    return [read(actor, start + i * step, [s], **kw) for i, s in enumerate(subjects)]


def risk_analyst() -> Any:
    """A head-office analyst holding approval RK1: 100 identity/credit records for a risk review,
    from the data warehouse."""
    ap = grant(
        approval_id="RK1",
        purpose="risk_review",
        max_records=100,
        categories=["identity", "credit"],
        systems=["data_warehouse"],
    )
    return _ent("a1", "ho_marketing_mgmt", "HO", approvals=[ap])


def credit_export(ts: int, subjects: list[str]) -> AccessEvent:
    """The analyst's export of credit reports under RK1."""
    return read(
        "a1",
        ts,
        subjects,
        fields=("customer_name", "credit_report"),
        system="data_warehouse",
        action="export",
        purpose="risk_review",
        approval_id="RK1",
    )


def batch_exports(start: int, book_: list[str], chunks: int) -> list[AccessEvent]:
    """The nightly batch account's regulatory-report exports under RR1, 400 customers each."""
    return [
        read(
            "SVC-BATCH-00",
            start + k * 2 * MINUTE,
            book_[k * 400 : (k + 1) * 400],
            fields=("customer_name", "transaction_record"),
            system="data_warehouse",
            action="export",
            purpose="regulatory_report",
            approval_id="RR1",
        )
        for k in range(chunks)
    ]


@pytest.fixture
def run(policy, catalog):
    """Both access detectors in one engine; the newest revision of each alert."""
    specs = [s for s in load_detectors(policy) if s.kind in ("bulk_query", "unauthorized_lookup")]

    def go(ents, events, customers=None, batch_size=10_000, arrival=None, bulk_query=None, folder=None):
        """`bulk_query`: parameters of its policy section to change, as a bank's policy would;
        `folder`: the policy's sections to change, likewise."""
        tuned = [
            replace(s, params=s.params.model_copy(update=bulk_query))
            if bulk_query and s.kind == "bulk_query"
            else s
            for s in specs
        ]
        cat = Catalog(policy.model_copy(update=folder)) if folder else catalog
        e = Engine(tuned, cat, pseudonymize=Pseudonymizer(b"unit-test-key-0123456789"))
        e.apply_reference("entitlements", refs("entitlements", list(ents)))
        e.apply_reference("customers", refs("customers", book() if customers is None else customers))
        events = list(events) if arrival == "as given" else sorted(events, key=lambda ev: ev.ts)
        alerts = []
        for i in range(0, len(events), batch_size):
            alerts += e.process("access", "t", 0, fed("access", events[i : i + batch_size], "t", i))
            alerts += e.advance()
        return latest(alerts + e.drain())

    return go


def one(alerts, detector: str):
    found = [a for a in alerts if a.detector == detector]
    assert len(found) == 1, [(a.detector, a.summary) for a in alerts]
    return found[0]


def kinds(alerts) -> list[str]:
    return sorted(a.detector for a in alerts)


def reasons(a) -> set[str]:
    return {k.removeprefix("reason_") for k in a.counts if k.startswith("reason_")}


def ids(prefix: str, n: int, first: int = 0) -> list[str]:
    return [f"{prefix}{i:04d}" for i in range(first, first + n)]


# -- normal work near the rules: silent -------------------------------------------------------------
def test_a_lobby_manager_serves_45_own_customers_on_a_busy_day(run) -> None:
    """Seed 004 支行: a sub-branch sees its own customers. 45 customers' names and balances over a
    working day: under 40 in any hour and under art. 5's 50 property records in the day."""
    day = spread("t1", ids("A", 45), OPEN, OPEN + 8 * HOUR)
    assert run([_ent("t1", "lobby_manager", "S0101")], day) == []


def test_a_post_reading_its_own_book_for_its_own_work_is_no_art_5_count(run) -> None:
    """Seed 004 角色设置(5)③: a wealth manager 全面管理名下客户. A probe's wealth manager viewed 60
    of her own customers' assets over a day, a credit officer 8 of her own borrowers' repayment
    histories (24 rows each: 192 credit records), an AML analyst at head office 25 customers' flows
    (1 000 rows): each was a high alert citing the criminal thresholds, and an incident due to the
    regulator in 24 hours. Each is the post's own work (流程描述(4)④ 完成本职工作时查询), not the
    unlawful obtaining art. 5 counts; the role window still weighs its pace."""
    wealth = spread(
        "w1", ids("A", 60), OPEN, OPEN + 9 * HOUR, fields=("customer_name", "assets"), purpose="wealth_advice"
    )
    assert run([_ent("w1", "wealth_manager", "S0101")], wealth) == []
    # in small batches, as a quiet day arrives, the C path keeps a book's reads out of the count
    # too: the same assets of 10 customers for a campaign, 45 for advice, 10 more for the campaign
    # are 20 records of art. 5's count, not 65
    kw = {"fields": ("customer_name", "assets"), "purpose": "marketing"}
    before = spread("w1", ids("A", 10, 100), OPEN - HOUR, OPEN, **kw)
    after = spread("w1", ids("A", 10, 200), OPEN + 9 * HOUR, OPEN + 10 * HOUR, **kw)
    quiet = run([_ent("w1", "wealth_manager", "S0101")], before + wealth[:45] + after, batch_size=7)
    assert not any("reached 50 (" in a.summary for a in quiet)
    loans = [
        read("c1", OPEN + i * 20 * MINUTE, [cid], fields=("customer_name", "repayment_history"), system="credit_system",
             purpose="credit_review", row_count=24)
        for i, cid in enumerate(ids("A", 8))
    ]  # fmt: skip
    assert run([_ent("c1", "credit_officer", "S0101")], loans) == []
    # a loan file's history runs to the loan's months, a case's flows to its year (organisation.yaml
    # `rows_per_customer`): the second probe's credit officer read 10 borrowers' 60-month histories
    # (critical, 600 records) and its AML analyst 11 case customers' 50 flows each (high)
    five_years = [e.model_copy(update={"event_id": f"{e.event_id}-5y", "row_count": 60}) for e in loans] + [
        read("c1", OPEN + (8 + i) * 20 * MINUTE, [cid], fields=("customer_name", "repayment_history"),
             system="credit_system", purpose="credit_review", row_count=60)
        for i, cid in enumerate(ids("A", 2, 8))
    ]  # fmt: skip
    assert run([_ent("c1", "credit_officer", "S0101")], five_years) == []
    # the pre-loan check reads a borrower's year of account flows (贷前调查: 银行流水): a third probe's
    # two borrowers' 1 500 rows each were a high alert and a leakage candidate; 2 001 is others' rows
    for rows, silent in ((1500, True), (2001, False)):
        flows = [
            read("c1", OPEN + i * HOUR, [cid], fields=("customer_name", "transaction_record"),
                 system="core_banking", purpose="credit_review", row_count=rows)
            for i, cid in enumerate(ids("A", 2))
        ]  # fmt: skip
        assert (run([_ent("c1", "credit_officer", "S0101")], flows) == []) is silent, rows

    def case_flows(customers: int, rows: int) -> list[AccessEvent]:
        """An AML analyst's day: each case customer's flows, one read every 15 minutes."""
        return [
            read("m1", OPEN + i * 15 * MINUTE, [cid], fields=("customer_name", "transaction_record"),
                 purpose="kyc_aml", row_count=rows)
            for i, cid in enumerate(ids("F", customers))
        ]  # fmt: skip

    assert run([_ent("m1", "aml_analyst", "HO")], case_flows(11, 50)) == []
    assert run([_ent("m1", "aml_analyst", "HO")], case_flows(25, 40)) == []


def test_the_own_book_ends_where_the_post_s_own_work_does(run) -> None:
    """The same 60 assets read: of customers the sub-branch does not manage (another branch's),
    for a campaign (marketing is no duty to the customer), as credit reports (征信 is not a wealth
    manager's to weigh), by an employee transferred out, or where pfi.customers is not fed and
    cannot say whose customer it is: each reaches art. 5's 50 again. And a book read at a bulk pace
    still fills the role window."""
    ent = _ent("w1", "wealth_manager", "S0101")
    day = {"fields": ("customer_name", "assets"), "purpose": "wealth_advice"}

    def reached(book: str = "A", ents: Any = None, customers: Any = None, **kw: Any) -> bool:
        events = spread("w1", ids(book, 60), OPEN, OPEN + 9 * HOUR, **(day | kw))
        return any("reached 50 (" in a.summary for a in run(ents or [ent], events, customers=customers))

    assert not reached()
    assert reached(purpose="marketing")
    assert reached(
        fields=("customer_name", "credit_report"), system="credit_system", purpose="customer_service"
    )
    assert reached(ents=[_ent("w1", "wealth_manager", "S0101", status="transferred")])
    assert reached(customers=[])
    assert reached("F")  # another branch's
    closed = [
        Customer(customer_id=f"A{i:04d}", ts=0, org_id="S0101", org_path=ORGS["S0101"], status="closed")
        for i in range(400)
    ]
    assert reached(customers=closed)  # a closed relationship is no one's book
    # one read naming one customer that returns more rows than the book's `rows_per_customer` (AML:
    # a case customer's year of flows, 2 000) is no one customer's file (the reviewer's AML query of a
    # million rows for one name was silent); a book that sets none stops below art. 5's 50
    flows = read("m1", OPEN, ["F0001"], fields=("customer_name", "transaction_record"), purpose="kyc_aml")
    for rows, silent in ((2000, True), (2001, False), (1_000_000, False)):
        got = run([_ent("m1", "aml_analyst", "HO")], [flows.model_copy(update={"row_count": rows})])
        assert (not any("reached 500 (" in a.summary for a in got)) is silent, rows
    # a wealth manager's book: a customer's statement of a few years, read or printed for them, as
    # at the counter (a probe's 600-row statement of her own customer was a high art. 5 alert)
    statement = read(
        "w1", OPEN, ["A0001"], fields=("customer_name", "transaction_record"), purpose="customer_service"
    )
    for rows, silent in ((600, True), (2000, True), (2001, False)):
        got = run([ent], [statement.model_copy(update={"row_count": rows})])
        assert (not any("reached 500 (" in a.summary for a in got)) is silent, rows
    # a batch spanning a transfer: each read is judged by the post it was made in (S0102's wealth
    # manager reading S0101's customers before moving there at 17:00 read no book of hers)
    moved = [_ent("w1", "wealth_manager", "S0102"), _ent("w1", "wealth_manager", "S0101", ts=OPEN + 8 * HOUR)]
    before = spread("w1", ids("A", 60), OPEN, OPEN + 7 * HOUR, **day)
    after = spread("w1", ids("A", 1, 300), OPEN + 9 * HOUR, OPEN + 9 * HOUR + 1, **day)
    for batch in (1, 10_000):
        got = run(moved, before + after, batch_size=batch)
        assert any("reached 50 (" in a.summary for a in got if a.detector == "bulk_query"), batch
    burst = run([ent], spread("w1", ids("A", 150), OPEN, OPEN + 30 * MINUTE, **day))
    b = one(burst, "bulk_query")
    assert "reached the role threshold" in b.summary and "reached 50 (" not in b.summary


def test_two_employees_of_one_post_are_each_judged_by_their_own_status(run) -> None:
    """bulk_query asks the catalog once per post and kind of read, not once per employee: a wealth
    manager transferred out, of the same role and org, reads no book because her colleague still
    in the post does, in the same batches."""
    day = {"fields": ("customer_name", "assets"), "purpose": "wealth_advice"}
    ents = [
        _ent("w1", "wealth_manager", "S0101"),
        _ent("w2", "wealth_manager", "S0101", status="transferred"),
    ]
    both = spread("w1", ids("A", 60), OPEN, OPEN + 9 * HOUR, **day) + spread(
        "w2", ids("A", 60), OPEN + 1, OPEN + 9 * HOUR + 1, **day
    )
    got = run(ents, sorted(both, key=lambda ev: ev.ts))
    assert {a.actor_id for a in got if "reached 50 (" in a.summary} == {"w2"}


def test_a_book_read_whole_in_a_day_is_harvested_not_served(run) -> None:
    """The own book has a day's measure (organisation.yaml `customers_per_day`: 120 for a wealth
    manager): the reviewer's wealth manager read 1 900 of her own customers' holdings in a day and
    raised a medium role-window alert, no art. 5 count. Past the 120th customer of the day her
    reads count as anyone's; 120 today and 120 others tomorrow are two days' work."""
    ent = _ent("w1", "wealth_manager", "S0101")
    day = {"fields": ("customer_name", "assets"), "purpose": "wealth_advice"}

    def law(n: int, start: int = OPEN) -> list[Any]:
        events = spread("w1", ids("A", n), start, start + 9 * HOUR, **day)
        return [a for a in run([ent], events, customers=book(2000)) if "reached 50 (" in a.summary]

    assert law(169) == []  # 49 past the day's 120
    (a,) = law(170)
    assert a.counts["records"] == 50, a.counts
    (a,) = law(1900)
    assert (
        a.severity.value == "critical"
        and "1,780 credit/property/loan/location/communication_content records" in a.summary
    )
    assert "reached 500 (" in a.summary, a.summary
    # the analyst's answer to "they are my customers"
    assert "counted as anyone's: reads of its own customers past the book's 120 a day" in a.summary
    # the note holds when the reads past the measure came in a batch before the one that opened
    # the alert: 40 past the 120 first, then 10 of a sibling sub-branch's customers reach 50
    sibling = spread("w1", ids("B", 10), OPEN + 9 * HOUR + MINUTE, OPEN + 10 * HOUR, **day)
    late = run(
        [ent],
        spread("w1", ids("A", 160), OPEN, OPEN + 9 * HOUR, **day) + sibling,
        customers=book(2000),
        batch_size=160,
    )
    (a,) = [a for a in late if "reached 50 (" in a.summary]
    assert "counted as anyone's: reads of its own customers past the book's 120 a day" in a.summary, a.summary
    # each post's book has its own measure: 100 holdings and 12 loan files by one employee holding
    # both roles are two posts' days (the reviewer's 288 loan records counted under one measure)
    both = ent.model_copy(update={"roles": ["wealth_manager", "credit_officer"]})
    loans = [
        read("w1", OPEN + i * 20 * MINUTE, [cid], fields=("customer_name", "repayment_history"), system="credit_system",
             purpose="credit_review", row_count=24)
        for i, cid in enumerate(ids("A", 12, 1000))
    ]  # fmt: skip
    wealth = spread("w1", ids("A", 100), OPEN, OPEN + 9 * HOUR, **day)
    assert [a for a in run([both], wealth + loans, customers=book(2000)) if "reached 50 (" in a.summary] == []
    two_days = spread("w1", ids("A", 120), OPEN, OPEN + 9 * HOUR, **day)
    two_days += spread("w1", ids("A", 120, 500), OPEN + 24 * HOUR, OPEN + 33 * HOUR, **day)
    assert run([ent], two_days, customers=book(2000)) == []
    # a bank that counts the law's records over three days still gives the book a day's measure
    assert run([ent], two_days, customers=book(2000), bulk_query={"legal_horizon_hours": 72}) == []
    # and one that counts them over 8 hours keeps the book's day: 120 in a morning, 12 idle hours,
    # then 60 more within the day are 60 past the measure (the review's: the window was forgotten)
    morning = spread("w1", ids("A", 120), OPEN, OPEN + 3 * HOUR, **day)
    evening = spread("w1", ids("A", 60, 500), OPEN + 15 * HOUR, OPEN + 16 * HOUR, **day)
    colleague = [read("w2", OPEN + 12 * HOUR, ["A1999"], **day)]  # the day's clock goes on meanwhile
    for batch in (1, 60):
        short = run(
            [ent, _ent("w2", "wealth_manager", "S0101")],
            morning + colleague + evening,
            customers=book(2000),
            batch_size=batch,
            bulk_query={"legal_horizon_hours": 8},
        )
        assert [a for a in short if "reached 50 (" in a.summary], batch
    # the measures passed travel with the window's state (its books, in buckets: tests/test_books.py)
    from detectors.bulk_query import ActorWindow
    from detectors.legal_tally import LegalTally

    win = ActorWindow(LegalTally(1))
    assert all(win.own_read("own", f"p{i}", OPEN + i, 3) for i in range(3))
    win.past["of its own customers past the book's 3 a day"] = OPEN + 2
    back = ActorWindow.from_json(orjson.loads(orjson.dumps(win.to_json())))
    assert back.past == win.past  # an episode opened after a restart still says so
    assert not win.own_read("own", "p9", OPEN + 10, 3)
    assert win.own_read("own", "p0", OPEN + 11, 3) and win.own_read("walk_in", "p9", OPEN, 3)
    assert win.own_read("own", "p9", OPEN + 24 * HOUR + 3, 3)  # the first read a day before has left


def test_a_post_reading_many_customers_a_day_outside_its_own_work_reaches_its_day_measure(run) -> None:
    """Seed 004 流程描述(4)④: 仅可在完成本职工作时查询…原则上限制批量查询. A probe's branch product
    manager read 960 customers' name, ID number and mobile in a day, 120 an hour under the role's
    hourly 150 and under art. 5's 5 000, and nothing fired. The role's day measure (bulk_query.yaml
    `role_daily_customers`, 150 for branch product management) counts the customers read outside
    the post's own work over 24 hours: 149 a day for a week stay silent, the 150th opens an alert,
    whatever the batches; the post's own book does not count toward it."""
    crm = {
        "fields": ("customer_name", "id_document_no", "mobile_phone"),
        "system": "crm",
        "purpose": "marketing",
    }
    pm = _ent("p1", "br_product_mgmt", "B01")

    def day_of(n: int, d: int = 0, first: int = 0) -> list[Any]:
        return spread("p1", ids("A", n, first), OPEN + d * 24 * HOUR, OPEN + d * 24 * HOUR + 8 * HOUR, **crm)

    for batch in (7, 10_000):
        (a,) = run([pm], day_of(960), customers=book(2000), batch_size=batch)
        assert a.detector == "bulk_query" and a.severity.value == "medium", a.summary
        assert (
            "960 customers read outside the post's own work over 24 h (2026-01-01T01:00Z to "
            "2026-01-01T08:59Z) reached the role day measure of 150, 6.4 times it (本行《个人金融信息保护管理规定》 "
            "流程描述(4)④: 原则上限制批量查询、复制个人金融信息 / the bank's personal financial information protection "
            "rules (本行《个人金融信息保护管理规定》) 流程描述(4)④: querying and copying personal financial "
            "information in bulk is restricted in principle)"
        ) in a.summary, a.summary
        assert (
            a.subject_count == 960 and a.counts["day_customers"] == 960 and "sliding-window" not in a.summary
        )
    week = [ev for d in range(7) for ev in day_of(149, d, 149 * d)]
    assert run([pm], week, customers=book(2000)) == []
    (a,) = run([pm], day_of(150), customers=book(2000))
    assert a.counts["day_customers"] == 150 and "times it" not in a.summary
    # a wealth manager's 120 own customers served for advice are her book's day, not this measure:
    # 199 more read for a campaign stay silent, the 200th is her role's day measure
    wm = _ent("w1", "wealth_manager", "S0101")
    own = spread(
        "w1",
        ids("A", 120),
        OPEN,
        OPEN + 8 * HOUR,
        fields=("customer_name", "assets"),
        purpose="wealth_advice",
    )

    def campaign(n: int) -> list[Any]:
        return spread(
            "w1", ids("A", n, 1000), OPEN + MINUTE, OPEN + 8 * HOUR, fields=crm["fields"], purpose="marketing"
        )

    assert [
        a for a in run([wm], own + campaign(199), customers=book(2000)) if a.detector == "bulk_query"
    ] == []
    a = one(run([wm], own + campaign(200), customers=book(2000)), "bulk_query")
    assert "reached the role day measure of 200" in a.summary and a.counts["day_customers"] == 200


def test_a_bulk_alerts_counts_each_say_their_span(run) -> None:
    """A new user's finding: "1,014 records of 927 customers" and, in the same summary, "929
    customers read outside the post's own work" counted different spans (the episode from 01:56,
    the day from 00:14), and nothing said so. The episode's count says its span, and the day's,
    begun before the episode, says it holds earlier reads: 60 customers read in the morning, then
    120 exported in ten minutes, past the role's window (150) before the day measure (150)."""
    crm = {
        "fields": ("customer_name", "id_document_no", "mobile_phone"),
        "system": "crm",
        "purpose": "marketing",
    }
    morning = spread("p1", ids("A", 60), OPEN, OPEN + 3 * HOUR, **crm)
    later = OPEN + 5 * HOUR
    burst = spread("p1", ids("A", 120, 60), later, later + 10 * MINUTE, **{**crm, "action": "export"})
    a = one(run([_ent("p1", "br_product_mgmt", "B01")], morning + burst, customers=book(2000)), "bulk_query")
    assert (
        "took out 120 records of 120 customers from 2026-01-01T06:00Z to 2026-01-01T06:09Z (C3 0" in a.summary
    )
    assert (
        "180 customers read outside the post's own work over 24 h (2026-01-01T01:00Z to 2026-01-01T06:09Z; "
        "reads before this episode's first at 2026-01-01T06:00Z included) reached the role day measure of 150"
    ) in a.summary, a.summary
    assert (a.counts["customers"], a.counts["day_customers"]) == (120, 180)


def test_a_campaign_list_and_watch_list_hits_are_a_working_week_not_a_harvest(run) -> None:
    """Seed 004 角色设置: 营销管理 创建名单式客户营销活动, the sub-branch's 理财经理 and 外拓营销 call
    the list (促活长尾客群); 基本规定(4)②: 在不影响履行反洗钱等法定义务的前提下 设置访问权限. A probe's
    wealth manager calling 130 list customers a day, and an AML analyst clearing 230 watch-list
    hits a day (or 150 beside 20 cases of 200 flows each), raised an alert every working day, the
    analyst's a high art. 5 one. Their roles' day measure, hourly threshold and the AML book's
    day are sized to that work (bulk_query.yaml, organisation.yaml); a list of 300 a day, or a
    sweep of 3 000 customers' flows, still fires."""
    wm, aml = _ent("w1", "wealth_manager", "S0101"), _ent("m1", "aml_analyst", "HO")
    contact = {"fields": ("customer_name", "mobile_phone", "customer_segment"), "system": "mobile_banker"}
    hit = {"fields": ("customer_name", "id_document_no", "address", "occupation"), "purpose": "kyc_aml"}

    def day(d: int) -> int:
        return OPEN + d * 24 * HOUR

    def calls(n: int, d: int, first: int) -> list[Any]:
        return spread("w1", ids("A", n, first), day(d), day(d) + 8 * HOUR, purpose="marketing", **contact)

    def screening(actor: str, n: int, d: int, first: int, cases: int = 0) -> list[Any]:
        flows = [
            read(actor, day(d) + 4 * HOUR + i * 10 * MINUTE, [c], fields=("customer_name", "transaction_record"),
                 purpose="kyc_aml", row_count=200)
            for i, c in enumerate(ids("F", cases, 3000 + 20 * d))
        ]  # fmt: skip
        return spread(actor, ids("B", n, first), day(d), day(d) + 8 * HOUR + 30 * MINUTE, **hit) + flows

    week = [
        ev
        for d in range(5)
        for ev in (
            *calls(130, d, 130 * d),
            *screening("m1", 230, d, 230 * d),
            *screening("m2", 150, d, 2000 + 150 * d, 20),
        )
    ]
    found = run([wm, aml, _ent("m2", "aml_analyst", "HO")], week, customers=book(4000))
    assert found == [], [(a.actor_id, a.summary) for a in found]
    a = one(run([wm], calls(300, 0, 0), customers=book(4000)), "bulk_query")
    assert "reached the role day measure of 200" in a.summary and a.severity.value == "medium"
    sweep = spread("m1", ids("F", 3000), day(0), day(0) + 8 * HOUR, fields=("transaction_record",),
                   purpose="kyc_aml", row_count=30)  # fmt: skip
    a = one(run([aml], sweep, customers=book(4000)), "bulk_query")
    assert a.severity.value == "critical" and "past the book's 300 a day" in a.summary, a.summary


@pytest.mark.parametrize("batch_size", [1, 10_000])
def test_a_role_measure_passed_many_times_over_is_high_and_the_days_add_up(run, batch_size) -> None:
    """Seed 004 流程描述(4)⑤: 实现异常操作行为的有效监控和干预…建立追溯机制. A probe's head-office
    marketing manager ran one data-warehouse query a day of 4 900 customers' name, ID number and
    mobile (12 times the role's hourly 400, 100 records under art. 5's 5 000): three days were three
    medium alerts, none saying the others. 10 times a role's measure is high
    (`measure_escalation`), and each alert names the employee's episodes of the last 7 days
    (`history_days`), also across the day the window itself is forgotten; a week later they
    have left."""
    hm, colleague = _ent("h1", "ho_marketing_mgmt", "HO"), _ent("h2", "ho_marketing_mgmt", "HO")
    dwh = {"system": "data_warehouse", "purpose": "marketing"}

    def query(hours: float, rows: int) -> Any:
        return read("h1", OPEN + int(hours * HOUR), [], fields=("customer_name", "id_document_no", "mobile_phone"),
                    row_count=rows, **dwh)  # fmt: skip

    # the colleague's segment queries move the clock between them: the timers close and forget
    segments = [
        read("h2", OPEN + h * HOUR, [], fields=("customer_segment", "marketing_tags"), row_count=300, **dwh)
        for h in (30, 66)
    ]
    alerts = sorted(
        run(
            [hm, colleague],
            [query(0, 4900), query(36, 4900), query(72, 4900), *segments],
            batch_size=batch_size,
        ),
        key=lambda a: a.first_seen,
    )
    assert [(a.actor_id, a.severity.value) for a in alerts] == [("h1", "high")] * 3, [
        a.summary for a in alerts
    ]
    assert "score 4900 reached the role threshold 400, 12.2 times it: 10 times is high" in alerts[0].summary
    assert "episode in 7 days" not in alerts[0].summary and "history_episodes" not in alerts[0].counts
    assert (
        "the employee's 3rd episode in 7 days (the first from 2026-01-01T01:00Z): 14,700 records of 0 "
        "customers in them, each episode's own added up"
    ) in alerts[2].summary, alerts[2].summary
    assert (alerts[2].counts["history_episodes"], alerts[2].counts["history_records"]) == (3, 14_700)
    # 9.9 times stays at the base severity, and says how far it went
    (a,) = run([hm], [query(0, 3960)])
    assert a.severity.value == "medium" and "9.9 times it" in a.summary and "times is" not in a.summary
    # eight days on, the first episode has left the history
    later = run([hm, colleague], [query(0, 4900), *segments, query(8 * 24, 4900)], batch_size=batch_size)
    assert len(later) == 2 and all("episode in 7 days" not in a.summary for a in later)


@pytest.mark.parametrize("batch_size", [7, 10_000])
def test_a_harvest_repeated_on_three_days_is_high(run, batch_size) -> None:
    """Seed 004 流程描述(4)⑤: 实现异常操作行为的有效监控和干预…建立追溯机制. A probe's branch product
    manager read 960 customers' name, ID number and mobile a day, under the role's hourly 150 and
    art. 5's 5 000: ten mediums in a week, never high. Episodes begun on 3 of the bank's calendar
    days within `history_days` are high (`repeat_escalation`); two of one day count one day."""
    pm, hm = _ent("p1", "br_product_mgmt", "B01"), _ent("h1", "ho_marketing_mgmt", "HO")
    crm = {
        "fields": ("customer_name", "id_document_no", "mobile_phone"),
        "system": "crm",
        "purpose": "marketing",
    }
    days = [
        ev
        for d in range(3)
        for ev in spread(
            "p1", ids("A", 960, 960 * d), OPEN + d * 24 * HOUR, OPEN + d * 24 * HOUR + 8 * HOUR, **crm
        )
    ]
    alerts = sorted(run([pm], days, customers=book(3000), batch_size=batch_size), key=lambda a: a.first_seen)
    assert [a.severity.value for a in alerts] == ["medium", "medium", "high"], [a.summary for a in alerts]
    assert "the employee's 3rd episode in 7 days" in alerts[2].summary
    assert alerts[2].summary.endswith("begun on 3 days: 3 days is high"), alerts[2].summary
    assert "begun on" not in alerts[1].summary
    # a campaign's list caller a few dozen past her day measure of 200, every day of a week: 1 470
    # records, under the step's 2 000, each day medium
    wm = _ent("w1", "wealth_manager", "S0101")
    contact = {"fields": ("customer_name", "mobile_phone", "customer_segment"), "system": "mobile_banker"}
    week = [
        ev
        for d in range(7)
        for ev in spread(
            "w1", ids("L", 210, 210 * d), OPEN + d * 24 * HOUR, OPEN + d * 24 * HOUR + 8 * HOUR,
            purpose="marketing", **contact,
        )
    ]  # fmt: skip
    calls = [
        a for a in run([wm], week, customers=book(3000), batch_size=batch_size) if a.detector == "bulk_query"
    ]
    assert [(a.severity.value, a.counts.get("history_records")) for a in calls][-1] == ("medium", 1470)
    assert {a.severity.value for a in calls} == {"medium"} and len(calls) == 7

    def query(hours: float) -> Any:
        return read("h1", OPEN + int(hours * HOUR), [], fields=("customer_name", "id_document_no", "mobile_phone"),
                    row_count=1000, system="data_warehouse", purpose="marketing")  # fmt: skip

    # 09:00 and 12:00 of one Beijing day, then the next morning: three episodes, two days
    two_days = run([hm], [query(0), query(3), query(24)], batch_size=batch_size)
    assert [a.severity.value for a in two_days] == ["medium"] * 3, [a.summary for a in two_days]
    third = max(
        run([hm], [query(0), query(3), query(24), query(48)], batch_size=batch_size),
        key=lambda a: a.first_seen,
    )
    assert third.severity.value == "high" and "4th episode" in third.summary, third.summary


def test_a_system_is_the_policys_whatever_case_a_log_writes_it_in(run) -> None:
    """A probe's wealth manager read her own customer on `"system": "CRM"`: a medium alert said the
    role may not use the system (CRM), and `catalog gaps` said nothing. A log's case and spaces
    are no other system; an approval's systems likewise."""
    ents = [
        _ent("w1", "wealth_manager", "S0101"),
        _ent("h1", None, "HO", approvals=[grant(systems=["CORE_BANKING"])]),
    ]
    reads = [
        read("w1", OPEN, ["A0001"], fields=("customer_name", "mobile_phone"), system="CRM"),
        read("w1", OPEN + MINUTE, ["A0002"], system=" Core_Banking "),
        read(
            "h1",
            OPEN + 2 * MINUTE,
            ["F0001"],
            system="core_banking",
            purpose="complaint_handling",
            approval_id="AP1",
        ),
    ]
    assert run(ents, reads) == []
    # a system the policy does not know is kept as written, and judged so
    (a,) = run(ents, [read("w1", OPEN, ["A0001"], system="CRM2")])
    assert "CRM2 for roles wealth_manager" in a.summary
    # by the names organisation.yaml gives it (a probe's 掌上银行家 and "Mobile Banker" were a system
    # no role may use, and a download from it under an approval naming it so passed its `never`)
    named = [read("w1", OPEN + i * MINUTE, ["A0001"], system=s, action="view")
             for i, s in enumerate(("掌上银行家", "Mobile Banker", "mobile-banker", "掌上银行家系统", "核心系统"))]  # fmt: skip
    assert run(ents, named) == []
    ap = grant(approval_id="MB1", systems=["掌上银行家"], purpose="customer_service")
    taken = read("m1", OPEN, ["A0001"], system="Mobile Banker", action="download", approval_id="MB1")
    (c,) = run([_ent("m1", "sb_president", "S0101", approvals=[ap])], [taken])
    assert reasons(c) == {"forbidden_on_system"} and "download on mobile_banker" in c.summary
    # a role as HR may case it is the policy's (a probe's `Wealth_Manager` was permitted nothing:
    # every read of hers an alert); one the policy does not know stays as written
    assert run([_ent("w1", " Wealth_Manager", "S0101")], reads[:2]) == []
    (b,) = run([_ent("w1", "Wealth_Managers", "S0101")], reads[:1])
    assert "roles Wealth_Managers" in b.summary
    # and by its Chinese or English name, as organisation.yaml gives it (a probe's HR feed wrote
    # 理财经理 and 柜员: a wealth manager's ordinary day was an art. 5 alert)
    for said in ("理财经理", "Wealth Manager", "wealth-manager"):
        assert run([_ent("w1", said, "S0101")], reads[:2]) == [], said


def test_an_org_path_without_the_head_office_is_not_the_head_offices_sight(run, policy, catalog) -> None:
    """Seed 004 机构设置: a sub-branch sees its own customers, a branch its own and its
    sub-branches'. A probe's HR feed wrote only the org (`[S0101]`) or the path below the head
    office (`[B01]`): the org stood at the head office's depth and read another branch's customers
    unremarked. A path is completed from the tree the other feeds' whole paths give, or put under
    the head office alone: never more than the org and what lies below it."""
    far = [read("w1", OPEN, ["F0001"])]
    for path in (["S0101"], ["B01", "S0101"], ["S0101", "B01", "HO"]):
        ent = Entitlement(actor_id="w1", ts=0, org_id="S0101", org_path=path, roles=["wealth_manager"])
        (a,) = run([ent], far)
        assert reasons(a) == {"out_of_scope"}, path
        # her own customer stays hers
        assert run([ent], [read("w1", OPEN, ["A0001"])]) == [], path
    branch = Entitlement(actor_id="m1", ts=0, org_id="B01", org_path=["B01"], roles=["br_marketing_mgmt"])
    (b,) = run([branch], [read("m1", OPEN, ["F0001"])])
    assert reasons(b) == {"out_of_scope"}
    assert run([branch], [read("m1", OPEN, ["B0001"])]) == []  # S0102 lies below B01
    # whichever feed is read first: a customer placed under the head office alone is placed again
    # once a whole path names its sub-branch (a review's replay read the customers first, and the
    # branch's manager reading its own sub-branch's customer was out of scope)
    partial = [
        Customer(customer_id=c.customer_id, ts=0, org_id=c.org_id, org_path=[c.org_id]) for c in book(3)
    ]
    spec = next(s for s in load_detectors(policy) if s.kind == "unauthorized_lookup")
    e = Engine([spec], catalog, pseudonymize=Pseudonymizer(b"unit-test-key-0123456789"))
    e.apply_reference("customers", refs("customers", partial))
    e.apply_reference("entitlements", refs("entitlements", [_ent("m1", "br_marketing_mgmt", "B01")]))
    e.apply_reference("entitlements", refs("entitlements", [_ent("w1", "wealth_manager", "S0101")]))
    reads = [read("m1", OPEN, ["A0001"]), read("m1", OPEN + MINUTE, ["F0001"])]
    alerts = latest(e.process("access", "t", 0, fed("access", reads, "t")) + e.advance() + e.drain())
    (d,) = alerts  # the far branch's customer only: S0201's place no whole path gives
    assert reasons(d) == {"out_of_scope"} and "managed by S0201" in d.summary
    # an org no whole path places sees itself at most; a customer so written is below the head office
    stray = Entitlement(actor_id="w9", ts=0, org_id="S0909", org_path=["S0909"], roles=["wealth_manager"])
    own = Customer(customer_id="Z0001", ts=0, org_id="S0909", org_path=["S0909"])
    (c,) = run([stray], [read("w9", OPEN, ["F0001"])])
    assert reasons(c) == {"out_of_scope"}
    assert run([stray], [read("w9", OPEN, ["Z0001"])], customers=[*book(), own]) == []


def test_a_download_naming_its_records_counts_them_without_a_row_count(run) -> None:
    """A warehouse's audit log names the records a download returned, not how many rows: a probe's
    80 balance records, row_count left at 0, counted no record toward art. 5's 50 (seed 001 §五)."""
    ents = [_ent("p1", "sb_president", "S0101")]
    download = read(
        "p1", OPEN, [], action="download", system="report_portal", record_ids=[f"R{i:08d}" for i in range(80)]
    )
    bulk = one(run(ents, [download]), "bulk_query")
    assert bulk.counts["records"] == 80 and bulk.severity.value == "high", bulk.summary
    # a count the log gives is its own: an aggregate's one row over the 80 records it read
    aggregate = download.model_copy(update={"event_id": "agg-1", "row_count": 1})
    assert not [a for a in run(ents, [aggregate]) if a.detector == "bulk_query"]


def test_a_teller_serves_customers_of_any_branch_at_the_counter(run) -> None:
    """A teller (柜员) of S0101 checks 30 customers' ID cards and posts their deposits in a day, ten
    of them managed by S0102 and S0201, then one transfer from an own customer to a far branch's.
    The counter serves whoever comes to it: what a sub-branch sees and where a customer is managed
    are the 掌上银行家 system's rules (seed 004 掌上银行家系统管理规定 适用范围), and seed 004
    人员管理(3) asks each post that knows PFI to be named (organisation.yaml `counter_service`)."""
    day = []
    posting = ("transaction_instruction", "account_balance")
    for i, cid in enumerate([*ids("A", 10), *ids("B", 5), *ids("A", 10, first=10), *ids("F", 5)]):
        t = OPEN + i * 15 * MINUTE
        day.append(read("k1", t, [cid], fields=("customer_name", "id_document_no"), action="view"))
        day.append(read("k1", t + 2 * MINUTE, [cid], fields=posting, action="update", purpose="payment"))
    transfer = read(
        "k1", OPEN + 8 * HOUR, ["A0001", "F0001"], fields=posting, action="update", purpose="payment"
    )
    # a statement each for two customers who asked for one, printed at the counter
    statements = [
        read("k1", OPEN + 9 * HOUR, [cid], fields=("transaction_record",), action="print", row_count=40)
        for cid in ("A0002", "F0002")
    ]
    assert run([_ent("k1", "teller", "S0101")], [*day, transfer, *statements]) == []


def test_a_counter_serving_other_sub_branches_books_is_harvesting_them(run) -> None:
    """通存通兑: a customer of any branch may walk in, but a probe's teller read the balances of 200
    customers of six other sub-branches at counter pace and raised nothing. Past the day's 30
    walk-ins (organisation.yaml `walk_ins_per_day`) another org's customer is no counter's business:
    79 walk-ins' balances in a day stay silent (49 past the 30), 80 reach art. 5's 50 property
    records. A customer the customer master does not know yet tells no org. And a counter's day has
    its measure too (`customers_per_day`, 120): the reviewer's teller read 1 000 customers of her own
    sub-branch in 9 hours for a medium role-window alert; 169 stay silent, 170 reach 50."""
    kw = {"fields": ("customer_name", "account_balance"), "purpose": "customer_service"}
    teller = [_ent("k9", "teller", "S0101")]

    def law(customers: list[str]) -> list[Any]:
        day = spread("k9", customers, OPEN, OPEN + 9 * HOUR, **kw)
        return [a for a in run(teller, day) if "reached 50 (" in a.summary]

    assert law([*ids("B", 40), *ids("F", 39)]) == []
    (a,) = law([*ids("B", 40), *ids("F", 40)])
    assert a.severity.value == "high" and "50 credit/property" in a.summary, a.summary
    assert "counted as anyone's: reads of other orgs' customers at the counter past its 30 a day" in a.summary
    assert law(ids("N", 100)) == []  # not in pfi.customers: no org to tell a walk-in by
    assert law(ids("A", 169)) == []
    (a,) = law(ids("A", 170))
    assert a.severity.value == "high" and "reads at the counter past its 120 customers a day" in a.summary


def test_a_service_line_answers_every_branchs_callers_as_a_counter(run) -> None:
    """95526 (the privacy policy's service line) at head office: each caller identified, then their
    own balance and recent transactions. A probe's agent answering 60 callers' balances in a shift
    was a high art. 5 alert, 90 callers with ten transactions each a critical one, each an incident
    due to the regulator. The line is a counter on the telephone (organisation.yaml
    `hotline_service.counter`): every branch's callers alike (no walk-ins), up to its 150 customers
    a day; past them the reads count as anyone's, 199 callers' balances stay under art. 5's 50
    records, 200 reach it."""
    agent = [_ent("h1", "hotline_agent", "HO")]
    kw = {"fields": ("customer_name", "account_balance"), "purpose": "customer_service"}
    callers = [*ids("A", 30), *ids("B", 30), *ids("F", 30)]
    balances = spread("h1", callers[:60], OPEN, OPEN + 8 * HOUR, **kw)
    assert run(agent, balances) == []
    history = {"fields": ("payment_account_no", "account_balance", "transaction_record"), "row_count": 10}
    assert run(agent, spread("h1", callers, OPEN, OPEN + 8 * HOUR, **(kw | history))) == []

    def law(customers: list[str]) -> list[Any]:
        day = spread("h1", customers, OPEN, OPEN + 9 * HOUR, **kw)
        return [a for a in run(agent, day) if "reached 50 (" in a.summary]

    assert law([*ids("A", 70), *ids("B", 70), *ids("F", 59)]) == []
    (a,) = law([*ids("A", 70), *ids("B", 70), *ids("F", 60)])
    assert a.severity.value == "high" and "reads at the counter past its 150 customers a day" in a.summary
    # a read naming one caller that returns a hundred thousand rows is no caller's business (a
    # review: the line's counter had no cap, and an OR 1=1 was silent where it had been critical)
    dump = read("h1", OPEN, ["A0001"], row_count=100_000, **kw)
    assert "reached 500 (" in one(run(agent, [dump]), "bulk_query").summary
    assert (
        run(
            agent,
            [
                read(
                    "h1", OPEN, ["A0001"], row_count=200, fields=history["fields"], purpose="customer_service"
                )
            ],
        )
        == []
    )
    # a burst past the line's hourly pace is the role window's, its callers all within the day
    burst = one(run(agent, spread("h1", callers, OPEN, OPEN + HOUR, **kw)), "bulk_query")
    assert "reached the role threshold" in burst.summary and "past its 150" not in burst.summary


def test_a_teller_opens_an_account_before_core_banking_registers_the_customer(run) -> None:
    """At the counter a new customer's ID is checked and the account opened from 10:00; the customer
    master (pfi.customers) has the customer from 10:05. Where the customer is managed does not
    limit counter work, so the registry not knowing the customer yet is no coverage gap either.
    A lobby manager's read of a customer the registry never knows still is one."""
    new_customer = [
        read("k1", OPEN, ["N0001"], fields=("customer_name", "id_document_no"), action="update", purpose="account_service"),
        read("k1", OPEN + 2 * MINUTE, ["N0001"], fields=("id_document_no",), action="view", purpose="kyc_aml"),
        read("k1", OPEN + 4 * MINUTE, ["N0001"], fields=("mobile_phone",), action="update", purpose="account_service"),
    ]  # fmt: skip
    registered = [*book(), customer("N0001", "S0101", ts=OPEN + 5 * MINUTE)]
    assert run([_ent("k1", "teller", "S0101")], new_customer, customers=registered) == []
    (a,) = run([_ent("m1", "lobby_manager", "S0101")], [read("m1", OPEN, ["N0002"])], customers=registered)
    assert reasons(a) == {"unknown_customer"}


def test_a_busy_counter_day_of_postings_is_not_art_5s_count(run) -> None:
    """Art. 5 (seed 001 §五.1) counts records unlawfully obtained, sold or provided (非法获取、出售或者
    提供): a teller who checks 80 customers' ID cards and posts their deposits (each posting changes
    a balance, property data) obtains no property records; nor does one who, at the counter, reads
    each customer's balance and prints the receipt (seed 004 流程描述(4)④: 完成本职工作时查询). The
    same 80 balances read for a purpose the counter does not serve reach the 50 of art. 5 ¶1 (4); and
    changes still weigh in the role's hourly window: 60 in ten minutes is no counter's pace."""
    posting = ("transaction_instruction", "account_balance")
    day = []
    for i, cid in enumerate(ids("A", 80)):
        t = OPEN + i * 6 * MINUTE
        day.append(read("k1", t, [cid], fields=("customer_name", "id_document_no"), action="view"))
        day.append(
            read("k1", t + MINUTE, [cid], fields=("customer_name", "account_balance"), purpose="payment")
        )
        day.append(read("k1", t + 2 * MINUTE, [cid], fields=posting, action="update", purpose="payment"))
        day.append(
            read(
                "k1", t + 3 * MINUTE, [cid], fields=("transaction_record",), action="print", purpose="payment"
            )
        )
    assert run([_ent("k1", "teller", "S0101")], day) == []
    # a peak hour: 14 customers, each a balance and a receipt, weighs as 14 reads, not 14 takeouts
    peak = [
        r
        for i, cid in enumerate(ids("A", 14))
        for r in (
            read("k4", OPEN + i * 4 * MINUTE, [cid], purpose="payment"),
            read(
                "k4",
                OPEN + i * 4 * MINUTE + 1,
                [cid],
                fields=("transaction_record",),
                action="print",
                purpose="payment",
            ),
        )
    ]
    assert run([_ent("k4", "teller", "S0101")], peak) == []
    reads = spread(
        "k2",
        ids("A", 80),
        OPEN,
        OPEN + 8 * HOUR,
        fields=("customer_name", "account_balance"),
        purpose="marketing",
    )
    a = one(run([_ent("k2", "teller", "S0101")], reads), "bulk_query")
    assert a.counts["records"] == 80 and a.severity.value == "high" and "reached 50" in a.summary
    # postings after the 50th read do not join the alert the law opened: it lists what was read
    posted = spread(
        "k2", ids("B", 30), OPEN + 8 * HOUR + MINUTE, OPEN + 11 * HOUR, fields=posting, action="update"
    )
    a = one(run([_ent("k2", "teller", "S0101")], [*reads, *posted]), "bulk_query")
    assert a.counts["records"] == 80 and a.subject_count == 80
    late = spread("k2", ids("B", 30), OPEN + 2 * HOUR, OPEN + 3 * HOUR, fields=posting, action="update")
    a = one(run([_ent("k2", "teller", "S0101")], [*reads, *late], arrival="as given"), "bulk_query")
    assert a.counts["records"] == 80 and a.subject_count == 80  # nor do postings logged late
    burst = spread(
        "k3", ids("A", 60), OPEN, OPEN + 10 * MINUTE, fields=posting, action="update", purpose="payment"
    )
    assert one(run([_ent("k3", "teller", "S0101")], burst), "bulk_query").severity.value == "medium"


def test_a_statements_rows_are_not_property_records_because_its_balance_was_read(run) -> None:
    """Art. 5 ¶1 (4) counts 50 property records, (4)'s transaction tier 500 (seed 001 §五.1). A lobby
    manager serves 45 customers in an hour (a medium alert at the role's 40) and prints one of them
    a 60-row statement after reading their balance: that is one property record and 60 transaction
    records, not 60 property records. The alert stays medium and names the records by category."""
    busy = spread("m1", ids("A", 45), OPEN, OPEN + 50 * MINUTE, fields=("customer_name", "mobile_phone"))
    balance = read("m1", OPEN + 51 * MINUTE, ["A0001"], fields=("account_balance",))
    statement = read(
        "m1", OPEN + 52 * MINUTE, ["A0001"], fields=("transaction_record",), action="print", row_count=60
    )
    alerts = run([_ent("m1", "lobby_manager", "S0101")], [*busy, balance, statement])
    a = one(alerts, "bulk_query")
    assert a.severity.value == "medium" and "reached 50" not in a.summary
    assert a.counts["records"] == 104  # 44 customers' one record each, and A0001's 60


def test_the_counter_covers_only_what_its_own_set_grants_for_its_purposes(run) -> None:
    """The counter's reach is its permission set's alone: the 掌上银行家 system is not its system; a
    card's security code is C3 (an approval, always) and not its data; a transferred teller is
    between posts; a read for no purpose or for marketing is no counter service; credit reports
    are not its data; an export a second role grants is that role's, scoped by org as any
    employee's."""
    ents = [
        _ent("k1", "teller", "S0101"),
        _ent("k2", "teller", "S0101"),
        _ent("k3", "teller", "S0101"),
        _ent("k3", "teller", "S0101", ts=OPEN, status="transferred"),
        _ent("k4", "teller", "S0101"),
        _ent("k5", "teller", "S0101"),
        _ent("k6", "teller", "S0101"),
        _ent("k9", "teller", "S0101"),
        _ent("k10", "teller", "S0101"),
        _ent("k11", "teller", "S0101"),
        _ent("k12", "teller", "S0101"),
        Entitlement(
            actor_id="k7", ts=0, org_id="S0101", org_path=ORGS["S0101"], roles=["teller", "wealth_manager"]
        ),
    ]
    events = [
        read("k1", OPEN, ["B0001"], system="mobile_banker", action="view"),
        read("k2", OPEN, ["F0001"], fields=("payment_account_no", "card_cvn"), system="card_system"),
        read("k3", OPEN + HOUR, ["A0002"]),
        read("k9", OPEN - MINUTE, ["F0009"]),  # the same kind of read at the counter: served
        read("k10", OPEN, ["F0010"], fields=(), action="delete"),  # naming no data vouches for nothing
        read("k11", OPEN, ["F0011"], fields=(), action="export"),
        read("k12", OPEN, ["F0012"], fields=(), action="view"),
        read("k4", OPEN, ["F0004"], purpose=None),
        read("k5", OPEN, ["F0005"], purpose="marketing"),
        read("k6", OPEN, ["F0006"], fields=("customer_name", "credit_report")),
        read("k7", OPEN, ["F0007"], fields=("customer_segment", "marketing_tags"), action="export"),
    ]
    found = {a.actor_id: reasons(a) for a in run(ents, events)}
    assert found == {
        "k1": {"system_not_permitted", "out_of_scope"},
        "k2": {"c3_without_approval", "out_of_scope"},
        "k3": {"transferred"},
        "k4": {"out_of_scope"},
        "k5": {"out_of_scope"},
        "k6": {"role_not_permitted", "out_of_scope"},
        "k7": {"out_of_scope"},
        "k10": {
            "out_of_scope"
        },  # a change on core banking is judged by sight (客户管理机构 is the mobile banker's)
        # an export naming no data is judged as C2 (classification.yaml `unnamed_takeout_class`)
        "k11": {"out_of_scope", "c2_takeout_without_approval"},
        "k12": {"out_of_scope"},
    }
    own = [read("k8", OPEN, ["A0008"], purpose=None), read("k8", OPEN, ["A0009"], purpose="marketing")]
    assert run([_ent("k8", "teller", "S0101")], own) == []  # its own sub-branch's customers: in sight


def test_a_credit_officer_and_an_aml_analyst_do_their_days_work(run) -> None:
    """The posts that review credit and watch for money laundering read what their work needs: a
    sub-branch credit officer its own borrowers' credit reports, loans and flows for credit review,
    and updates a loan; a head-office AML analyst any branch's customers' transactions for kyc_aml
    (a duty the law sets). Neither may take data out unapproved, nor the officer reach another
    sub-branch's borrower."""
    officer, analyst = _ent("c1", "credit_officer", "S0101"), _ent("m1", "aml_analyst", "HO")
    loan_file = ("customer_name", "credit_report", "loan_details", "repayment_history", "income")
    day = [
        *spread("c1", ids("A", 12), OPEN, OPEN + 8 * HOUR, fields=loan_file, purpose="credit_review"),
        read(
            "c1", OPEN + HOUR, ["A0000"], fields=("loan_details",), action="update", purpose="credit_review"
        ),
        *spread(
            "m1",
            ids("F", 20),
            OPEN,
            OPEN + 8 * HOUR,
            fields=("customer_name", "transaction_record"),
            purpose="kyc_aml",
        ),
    ]
    assert run([officer, analyst], day) == []
    out = [
        read("c1", OPEN, ["A0001"], fields=loan_file, action="export", purpose="credit_review"),
        read("c2", OPEN, ["F0001"], fields=loan_file, purpose="credit_review"),  # another sub-branch's
        read("m1", OPEN, ["B0001"], fields=("transaction_record",), action="export", purpose="kyc_aml"),
        read("c3", OPEN, ["A0002"], fields=("customer_name", "credit_report"), purpose="marketing"),
    ]
    ents = [officer, analyst, _ent("c2", "credit_officer", "S0101"), _ent("c3", "credit_officer", "S0101")]
    found = {a.actor_id: reasons(a) for a in run(ents, out) if a.detector == "unauthorized_lookup"}
    assert found == {
        "c1": {"c2_takeout_without_approval", "role_not_permitted"},
        "c2": {"out_of_scope"},
        "m1": {"c2_takeout_without_approval", "role_not_permitted"},
        "c3": {"beyond_collection_purpose"},
    }


def test_the_counter_prints_a_customers_own_copy_and_nothing_more(run) -> None:
    """A statement printed at the counter for the one customer it is about is that customer's copy;
    seed 004 流程描述(4)④ restricts copying PFI (原则上限制批量查询、复制), and the same print naming two
    customers, or printed for marketing, is a takeout that needs an approval (④⑤)."""
    statement = ("transaction_record",)
    headed = ("customer_name", "payment_account_no", "transaction_record")  # a statement bears 户名
    prints = [
        read("k1", OPEN, ["A0001", "F0001"], fields=statement, action="print"),
        read("k2", OPEN, ["A0002"], fields=statement, action="print", purpose="marketing"),
        read("k3", OPEN, ["F0003"], fields=statement, action="print"),
        read("k4", OPEN, ["F0004"], fields=headed, action="print"),
        # the teller compares the face before it with the ID photo held (流程描述(1)⑪ 客户身份识别)
        read("k5", OPEN, ["F0005"], fields=("customer_name", "id_document_no", "kyc_photo"), action="view"),
        read(
            "k6", OPEN, ["F0006"], fields=("kyc_photo",), action="print", purpose="kyc_aml"
        ),  # never printed there
    ]
    ents = [_ent(k, "teller", "S0101") for k in ("k1", "k2", "k3", "k4", "k5", "k6")]
    found = {a.actor_id: reasons(a) for a in run(ents, prints)}
    assert found == {
        "k1": {"c2_takeout_without_approval"},
        "k2": {"c2_takeout_without_approval"},
        "k6": {"role_not_permitted", "out_of_scope", "c2_takeout_without_approval"},
    }


def test_a_hotline_agent_under_approval_reads_300_customers_of_every_org(run) -> None:
    """The 95526 hotline at head office (seed 004 总行: sees all) identifies callers of any branch
    and reads their balances under a customer-service approval that covers them."""
    ap = grant(approval_id="HL1", purpose="customer_service", max_records=500)
    agent = _ent("h1", "hotline_agent", "HO", approvals=[ap])
    callers = [c for trio in zip(ids("A", 100), ids("B", 100), ids("F", 100), strict=True) for c in trio]
    calls = spread("h1", callers, OPEN, OPEN + 9 * HOUR, approval_id="HL1")
    assert run([agent], calls) == []


def test_product_management_keeps_to_materials_and_the_hotline_to_its_callers(run) -> None:
    """Seed 004 角色设置(3)②: head-office product management maintains product marketing
    materials (营销素材的维护与更新); it held the C2 reads of every customer that marketing campaigns
    and investment advisors need, and a probe's product manager read a celebrity's balances unseen.
    Its set (`product_management`) reads whom a sales request is for, on the mobile banker and CRM,
    and no holdings. The hotline's agents, who borrowed that role, have their own: a caller's
    balance and transactions are theirs to read, no campaign list."""
    pm = [_ent("p1", "ho_product_mgmt", "HO")]
    balance = read("p1", OPEN, ["F0001"])  # core banking: a name and a balance
    (a,) = run(pm, [balance])
    assert a.detector == "unauthorized_lookup" and "system_not_permitted" in reasons(a), reasons(a)
    assert (
        run(pm, [read("p1", OPEN, ["F0001"], fields=("customer_name", "mobile_phone"), system="crm")]) == []
    )
    agent = [_ent("h2", "hotline_agent", "HO")]
    calls = [
        read("h2", OPEN, ["F0001"], fields=("customer_name", "transaction_record"), row_count=12),
        read("h2", OPEN + MINUTE, ["A0001"], fields=("customer_name", "home_address"), system="crm"),
    ]
    assert run(agent, calls) == []
    (b,) = run(
        agent,
        [read("h2", OPEN, ["F0002"], fields=("customer_segment", "marketing_tags"), system="mobile_banker")],
    )
    assert "system_not_permitted" in reasons(b)


def test_a_nightly_batch_spends_its_approval_exactly(run) -> None:
    """A service account exports the regulatory report at 02:00 Beijing under an approval of
    exactly the records it needs: 4 x 500 customers' transactions."""
    ap = grant(
        approval_id="RR1",
        purpose="regulatory_report",
        max_records=1200,
        categories=["identity", "transaction"],
        systems=["data_warehouse"],
    )
    svc = _ent("SVC-BATCH-00", None, "HO", approvals=[ap])
    night = T0 - 6 * HOUR  # 02:00 Beijing
    book_ = ids("A", 400) + ids("B", 400) + ids("F", 400)
    chunks = batch_exports(night, book_, 3)
    assert run([svc], chunks) == []


def test_a_head_office_analyst_exports_100_credit_reports_under_a_100_record_approval(run) -> None:
    assert run([risk_analyst()], [credit_export(OPEN + 5 * MINUTE, ids("F", 100))]) == []


def test_a_transferred_teller_serves_both_desks_within_their_scope(run) -> None:
    """Seed 004 人员管理(4): the transfer changes the scope at once. 20 S0101 customers in the
    morning, transferred at 13:00, 20 S0201 customers in the afternoon: all in scope, 40 records."""
    noon = OPEN + 4 * HOUR
    ents = [
        _ent("t2", "lobby_manager", "S0101"),
        _ent("t2", "lobby_manager", "S0101", ts=noon, status="transferred"),
        _ent("t2", "lobby_manager", "S0201", ts=noon + MINUTE),
    ]
    morning = spread("t2", ids("A", 20), OPEN, noon - MINUTE)
    afternoon = spread("t2", ids("F", 20), noon + HOUR, noon + 4 * HOUR)
    assert run(ents, morning + afternoon) == []


def test_a_customer_moves_branch_and_each_branch_serves_it_in_its_time(run) -> None:
    """Seed 004 客户管理机构: the managing sub-branch changes at noon; S0101 served the customer in
    the morning, S0102 in the afternoon."""
    noon = OPEN + 3 * HOUR
    customers = [*book(), customer("A0007", "S0102", ts=noon)]
    ents = [_ent("t1", "lobby_manager", "S0101"), _ent("t3", "lobby_manager", "S0102")]
    events = [read("t1", noon - HOUR, ["A0007"]), read("t3", noon + HOUR, ["A0007"])]
    assert run(ents, events, customers) == []


def test_a_teller_s_reads_arrive_out_of_order(run) -> None:
    import random

    day = spread("t1", ids("A", 39), OPEN, OPEN + 50 * MINUTE)
    rng = random.Random(7)
    shuffled = sorted(day, key=lambda e: e.ts + rng.randint(0, 50_000))
    assert run([_ent("t1", "lobby_manager", "S0101")], shuffled, arrival="as given", batch_size=5) == []


def test_49_property_records_across_midnight_stay_silent(run) -> None:
    """Art. 5 counts 50: 25 balances before midnight (Beijing) and 24 after, one employee."""
    midnight = T0 + 16 * HOUR  # 2026-01-02 00:00 Beijing
    night = spread("w1", ids("A", 25), midnight - 3 * HOUR, midnight - MINUTE, system="mobile_banker")
    morning = spread(
        "w1", ids("A", 24, 100), midnight + 8 * HOUR, midnight + 10 * HOUR, system="mobile_banker"
    )
    assert run([_ent("w1", "wealth_manager", "S0101")], night + morning) == []


# -- violations that barely cross -------------------------------------------------------------------
def test_ten_times_a_tier_is_art_5_para_2_item_3(run) -> None:
    """Art. 5 ¶2 (三): 数量或者数额达到前款第三项至第八项规定标准十倍以上 is 情节特别严重 ((二) is a
    grave economic loss or a vile social impact, which no count shows): 500 credit records."""
    reports = spread("w2", ids("A", 500), OPEN, OPEN + 20 * HOUR, fields=("customer_name", "credit_report"), system="credit_system")  # fmt: skip
    a = one(run([_ent("w2", "wealth_manager", "S0101")], reports), "bulk_query")
    assert (
        a.severity.value == "critical"
        and "(解释第五条第二款(三): 数量达到第一款第三项至第八项标准十倍以上 / Interpretation art. 5 ¶2 (3): a "
        "quantity ten times or more the thresholds of ¶1 items (3) to (8))"
        in a.summary
    )


@pytest.mark.parametrize("data", ["credit_report", "loan_details"])
def test_the_50th_credit_record_in_24_hours_spread_thin(run, data) -> None:
    """A wealth manager pulls two of their own customers' credit reports (or loan files: credit
    information, and 借贷信息 beside 财产信息 in the bank's rules) an hour, round the clock: never near
    the role window, but the 50th record within 24 h reaches art. 5 ¶1 (3)(4)."""
    reports = spread(
        "w2",
        ids("A", 50),
        OPEN,
        OPEN + 24 * HOUR - HOUR,
        fields=("customer_name", data),
        system="credit_system",
    )
    alerts = run([_ent("w2", "wealth_manager", "S0101")], reports)
    a = one(alerts, "bulk_query")
    assert kinds(alerts) == ["bulk_query"]  # own customers, a role that may read credit: no lookup breach
    assert a.actor_id == "w2" and a.actor_org == "S0101" and a.severity.value == "high"
    assert a.counts["records"] == 50 and a.counts["customers"] == 50
    assert "50 credit/property/loan/location/communication_content records counted over 24 h (" in a.summary
    assert (
        "reached 50 (解释第五条第一款(三): 行踪轨迹、通信内容、征信信息、财产信息50条 / Interpretation art. 5 "
        "¶1 (3): 50 records of whereabouts, communication content, credit information or property information)"
    ) in a.summary
    assert (a.title_zh, a.title_en) == (
        "批量查询个人金融信息",
        "Bulk query of personal financial information",
    )
    assert run([_ent("w2", "wealth_manager", "S0101")], reports[:-1]) == []  # the 49th: silent


def test_an_approval_for_100_records_used_for_101(run) -> None:
    """Seed 004 流程描述(4)⑤: export needs an approval; one that covers 100 records does not cover
    the 101st. One at a time: the 101st export is the one unauthorized access."""
    exports = [credit_export(OPEN + i * 20_000, [c]) for i, c in enumerate(ids("F", 101))]
    alerts = run([risk_analyst()], exports)
    a = one(alerts, "unauthorized_lookup")
    assert kinds(alerts) == ["unauthorized_lookup"]
    assert reasons(a) == {"c2_takeout_without_approval"} and a.severity.value == "medium"
    assert a.counts["accesses"] == 1 and a.subject_count == 1 and a.actor_id == "a1"
    assert "budget of 100 records was spent" in a.summary and "approval RK1" in a.summary


def test_one_lookup_of_another_branch_s_customer(run) -> None:
    day = spread("t1", ids("A", 20), OPEN, OPEN + 4 * HOUR)
    far = [read("t1", OPEN + 2 * HOUR + 30_000, ["F0003"])]
    alerts = run([_ent("t1", "lobby_manager", "S0101")], day + far)
    a = one(alerts, "unauthorized_lookup")
    assert kinds(alerts) == ["unauthorized_lookup"]
    assert reasons(a) == {"out_of_scope"} and a.severity.value == "medium" and a.subject_count == 1
    assert "S0101 read a customer managed by S0201" in a.summary and "越权" in a.summary
    assert a.first_seen == OPEN + 2 * HOUR + 30_000


@pytest.mark.parametrize("after_ms", [0, 1_000])
def test_a_view_right_after_the_entitlement_was_revoked(run, after_ms) -> None:
    gone = OPEN + 3 * HOUR
    ents = [_ent("w3", "wealth_manager", "S0101"), _ent("w3", None, "S0101", ts=gone, status="terminated")]
    events = [read("w3", gone - 1_000, ["A0001"]), read("w3", gone + after_ms, ["A0002"])]
    alerts = run(ents, events)
    a = one(alerts, "unauthorized_lookup")
    assert kinds(alerts) == ["unauthorized_lookup"]
    assert reasons(a) == {"terminated"} and a.severity.value == "high" and a.counts["accesses"] == 1
    assert "terminated since" in a.summary


def test_a_suspended_employee_reads_an_own_customer(run) -> None:
    off = OPEN + HOUR
    ents = [
        _ent("w4", "wealth_manager", "S0101"),
        _ent("w4", "wealth_manager", "S0101", ts=off, status="suspended"),
    ]
    alerts = run(ents, [read("w4", off + 10 * MINUTE, ["A0001"])])
    a = one(alerts, "unauthorized_lookup")
    assert a.severity.value == "high" and "suspended since" in a.summary and "停权" in a.summary
    assert reasons(a) == {"suspended"}  # its own reason: a dashboard counting terminations does not count it
    # a suspension is the bank's 干预 (流程描述(4)⑤), not the termination of 人员管理(5)
    assert "本行《个人金融信息保护管理规定》 流程描述(4)⑤: 实现异常操作行为的有效监控和干预" in a.summary


def test_reads_just_after_the_approval_expired(run) -> None:
    """A complaint-handling approval opens another branch's customer until it expires."""
    end = OPEN + 2 * HOUR
    ents = [_ent("w5", "wealth_manager", "S0101", approvals=[grant(expires_ts=end)])]
    kw = dict(approval_id="AP1", purpose="complaint_handling")
    assert run(ents, [read("w5", end, ["F0001"], **kw)]) == []  # at the expiry: still valid
    alerts = run(ents, [read("w5", end + 1_000, ["F0001"], **kw)])
    a = one(alerts, "unauthorized_lookup")
    assert kinds(alerts) == ["unauthorized_lookup"]
    assert reasons(a) == {"out_of_scope"} and "had expired" in a.summary


@pytest.mark.parametrize(
    "account",
    [
        "payment_account_no",
        "login_username",
        "securities_account",
        "insurance_account",
        "mobile_phone",
        "id_document_no",
    ],
)
@pytest.mark.parametrize("helper", ["sms_code", "otp_code", "security_answer", "dynamic_voiceprint"])
def test_an_account_with_an_authentication_helper_is_c3(run, account, helper) -> None:
    """JR/T 0171 §4.2 C2 c) (seed 001 §二.2, seed 004 分类 C2③): any helper the seeds name
    (动态口令、短信验证码、密码提示问题答案、动态声纹密码) with an account (账号) completes authentication;
    a phone or ID number is the account's equivalent (支付账号及其等效信息, C2①)."""
    alerts = run(
        [_ent("w6", "wealth_manager", "S0101")],
        [read("w6", OPEN, ["A0001"], fields=(account, helper), purpose="authentication")],
    )
    a = one(alerts, "unauthorized_lookup")
    assert reasons(a) == {"c3_without_approval"} and a.severity.value == "high" and a.jr_class == "C3"


def test_an_authentication_helper_alone_stays_c2(policy) -> None:
    """Without an account beside it a helper cannot complete authentication: C2, as is the account."""
    catalog = Catalog(policy)
    assert catalog.classify(["security_answer"]) is JrClass.C2
    assert catalog.classify(["login_username", "customer_name"]) is JrClass.C2
    assert catalog.classify(["login_username", "customer_name", "security_answer"]) is JrClass.C3


@pytest.mark.parametrize(
    ("fields", "severity", "tier"),
    [
        (("customer_name", "mobile_phone"), "high", None),
        (("customer_name", "payment_account_no"), "high", "解释第五条第一款(四)"),
    ],  # fmt: skip
    ids=["names and phone numbers", "account numbers"],
)
def test_600_rows_reach_the_tier_art_5_puts_their_data_in(run, fields, severity, tier) -> None:
    """Art. 5 ¶1: 500 records for data that may endanger a person's property (四: transactions,
    accounts), 5 000 for any other (五): a phone number is no call record (通信记录). A list of 600
    names and phone numbers passes the role threshold only, if 15 times over (high by
    `measure_escalation`, no art. 5 count); 600 account numbers reach (四)."""
    report = read("p1", OPEN, [], fields=fields, system="report_portal", action="download", row_count=600)
    b = one(run([_ent("p1", "sb_president", "S0101")], [report]), "bulk_query")
    assert b.severity.value == severity and ("leakage_candidate" in b.counts) == (tier is not None)
    assert tier is None or tier in b.summary
    assert "reached the role threshold 120, 15.0 times it: 10 times is high" in b.summary


def test_a_report_of_50_unnamed_credit_rows(run) -> None:
    """A report download names no customers, yet its 50 rows are 50 records (条) under art. 5."""
    ents = [_ent("p1", "sb_president", "S0101")]
    report = [
        read(
            "p1", OPEN, [], fields=("credit_report",), system="report_portal", action="download", row_count=50
        )
    ]
    alerts = run(ents, report)
    b = one(alerts, "bulk_query")
    assert b.severity.value == "high" and b.counts["records"] == 50 and b.counts["customers"] == 0
    # a download: said so, and one access is a time, not a span from a minute to itself
    assert b.summary.startswith("p1 read or took out 50 records, customers not identified")
    assert "records counted over 24 h (at 2026-01-01T01:00Z) reached 50" in b.summary
    u = one(alerts, "unauthorized_lookup")  # a C2 download without an approval (流程描述(4)④⑤)
    assert reasons(u) == {"c2_takeout_without_approval"} and u.severity.value == "medium"
    # the log named no customer: the analyst is told rows, not "50 customers"
    assert (
        "touching 0 customers and 50 rows naming no customer" in u.summary and "50条未具名记录" in u.summary
    )
    # 49 rows stay under art. 5, yet a download weighs 3 (the bank's policy): 147 passes the sub-branch
    # president's role threshold of 120, a medium bulk query
    smaller = run(ents, [r.model_copy(update={"row_count": 49}) for r in report])
    b = one(smaller, "bulk_query")
    assert (
        b.severity.value == "medium" and "role threshold 120" in b.summary and "reached 50" not in b.summary
    )


def test_a_transferred_teller_reads_a_former_customer(run) -> None:
    noon = OPEN + 4 * HOUR
    ents = [
        _ent("t2", "lobby_manager", "S0101"),
        _ent("t2", "lobby_manager", "S0101", ts=noon, status="transferred"),
        _ent("t2", "lobby_manager", "S0201", ts=noon + MINUTE),
    ]
    alerts = run(ents, [read("t2", noon + HOUR, ["A0005"])])
    a = one(alerts, "unauthorized_lookup")
    assert reasons(a) == {"old_scope_after_transfer"} and a.severity.value == "high"
    assert "former S0101" in a.summary and a.actor_org == "S0201"


def test_a_customer_read_by_the_branch_it_just_left(run) -> None:
    noon = OPEN + 3 * HOUR
    customers = [*book(), customer("A0007", "S0102", ts=noon)]
    alerts = run([_ent("t1", "lobby_manager", "S0101")], [read("t1", noon + MINUTE, ["A0007"])], customers)
    a = one(alerts, "unauthorized_lookup")
    assert reasons(a) == {"out_of_scope"} and "managed by S0102" in a.summary


def test_a_hotline_agent_past_the_approval_s_budget(run) -> None:
    """100 approved calls, the line's 150 callers a day (its counter), then 50 more callers'
    balances on the same day: those 50 property records are unapproved reading past the line's
    day and reach art. 5's 50."""
    ap = grant(approval_id="HL1", purpose="customer_service", max_records=100)
    agent = _ent("h1", "hotline_agent", "HO", approvals=[ap])
    calls = spread("h1", [*ids("F", 150), *ids("B", 150)], OPEN, OPEN + 9 * HOUR, approval_id="HL1")
    alerts = run([agent], calls)
    a = one(alerts, "bulk_query")
    assert a.counts["records"] == 50 and a.severity.value == "high" and a.actor_org == "HO"


@pytest.mark.parametrize("batch_size", [1, 10, 1000])
def test_late_audit_rows_still_count_toward_the_day(run, batch_size) -> None:
    """Accesses out of order: the credit system's log arrives in real time, core banking's an hour
    and a half late. 30 credit reports and 25 balances, all the same day, are 55 records of art. 5's
    50-record tier, whichever log came first."""
    # the sub-branch president supervises (全面监督支行客户管理): the balances are no book of his own
    ents = [_ent("w7", "sb_president", "S0101")]
    credit = spread(
        "w7",
        ids("A", 30),
        OPEN + 2 * HOUR,
        OPEN + 2 * HOUR + 30 * MINUTE,
        fields=("customer_name", "credit_report"),
        system="credit_system",
    )
    balances = spread("w7", ids("A", 25, 200), OPEN, OPEN + 30 * MINUTE)
    in_time = run(ents, credit + balances)
    late = run(ents, credit + balances, arrival="as given", batch_size=batch_size)
    assert kinds(in_time) == ["bulk_query"] and one(in_time, "bulk_query").counts["records"] == 55
    assert kinds(late) == ["bulk_query"] and one(late, "bulk_query").counts["records"] == 55
    # the same span, whichever log came first: the credit reads came before the balances opened it
    spans = [(a.first_seen, a.last_seen) for a in (one(in_time, "bulk_query"), one(late, "bulk_query"))]
    assert spans[0] == spans[1] == (OPEN, credit[-1].ts)


def test_a_late_read_an_earlier_alert_already_covered_stays_out_of_the_next_one(run) -> None:
    """Two sprees of 55 credit reports, three hours apart: two alerts. A read from the first spree's
    time, logged after the second began, belongs to the first (which reported that time), not the second."""
    ents = [_ent("w7", "wealth_manager", "S0101")]
    kw = {"fields": ("customer_name", "credit_report"), "system": "credit_system"}
    first = spread("w7", ids("A", 55), OPEN, OPEN + 30 * MINUTE, **kw)
    second = spread("w7", ids("A", 55, 100), OPEN + 4 * HOUR, OPEN + 4 * HOUR + 30 * MINUTE, **kw)
    stray = read("w7", OPEN + 10 * MINUTE, ["A0999"], **kw)
    alerts = [
        a for a in run(ents, [*first, *second, stray], arrival="as given") if a.detector == "bulk_query"
    ]
    latest = sorted(
        {a.alert_id: a for a in sorted(alerts, key=lambda a: a.revision)}.values(), key=lambda a: a.first_seen
    )
    assert [(a.first_seen, a.event_count, a.counts["records"]) for a in latest] == [
        (OPEN, 55, 55),
        (OPEN + 4 * HOUR, 55, 55),
    ]


@pytest.mark.parametrize("batch_size", [1, 1000])
def test_a_late_log_of_earlier_reads_moves_the_alert_s_first_seen_back(run, batch_size) -> None:
    """55 credit reports reach art. 5's 50 on their own; core banking's log of 5 balances read an
    hour earlier arrives after them. The alert counts 60 records, and says they began an hour earlier."""
    # the sub-branch president supervises (全面监督支行客户管理): the balances are no book of his own
    ents = [_ent("w7", "sb_president", "S0101")]
    credit = spread(
        "w7",
        ids("A", 55),
        OPEN + 2 * HOUR,
        OPEN + 2 * HOUR + 30 * MINUTE,
        fields=("customer_name", "credit_report"),
        system="credit_system",
    )
    balances = spread("w7", ids("A", 5, 200), OPEN + HOUR, OPEN + HOUR + 5 * MINUTE)
    a = one(run(ents, credit + balances, arrival="as given", batch_size=batch_size), "bulk_query")
    assert a.counts["records"] == 60 and a.first_seen == OPEN + HOUR and a.last_seen == credit[-1].ts
    assert a.event_count == 60


def test_one_export_of_101_records_under_a_100_record_approval(run) -> None:
    """The approver signed for 100 records; an export of 101 is not the export approved: a take-out
    without approval. Art. 5 counts what was obtained unlawfully, the one record past the budget,
    not the 100 approved (a probe's regulatory export one row over its 19 999 was a critical alert
    of 20 000 records); 151 records are 51 past it, art. 5's 50 passed, and the alert says why."""
    alerts = run([risk_analyst()], [credit_export(OPEN, ids("F", 101))])
    u = one(alerts, "unauthorized_lookup")
    assert reasons(u) == {"c2_takeout_without_approval"} and "(101 needed)" in u.summary
    assert kinds(alerts) == ["unauthorized_lookup"]
    b = one(run([risk_analyst()], [credit_export(OPEN, ids("F", 151))]), "bulk_query")
    assert b.severity.value == "high" and b.counts["records"] == 51 and b.counts["customers"] == 51
    assert "records past approval RK1's budget of 100" in b.summary, b.summary
    # the overrun took what was left of the budget, for both detectors alike (a review: it was
    # spent for bulk_query, not for unauthorized_lookup, which then approved a second export)
    second = credit_export(OPEN + HOUR, ids("F", 30, 200))
    u = [
        a
        for a in run([risk_analyst()], [credit_export(OPEN, ids("F", 101)), second])
        if a.detector == "unauthorized_lookup"
    ]
    assert len(u) == 1 and u[0].counts["accesses"] == 2, u[0].summary


def test_a_batch_job_past_its_approval(run) -> None:
    """A service account holds no role: a fourth chunk its approval did not budget for is a
    take-out of 400 customers' transactions by an account no role allows."""
    ap = grant(
        approval_id="RR1",
        purpose="regulatory_report",
        max_records=1200,
        categories=["identity", "transaction"],
        systems=["data_warehouse"],
    )
    book_ = ids("A", 400) + ids("B", 400) + ids("F", 400) + ids("A", 100, 400)
    chunks = batch_exports(T0 - 6 * HOUR, book_, 4)
    customers = [*book(), *[customer(c, "S0101") for c in ids("A", 100, 400)]]
    alerts = run([_ent("SVC-BATCH-00", None, "HO", approvals=[ap])], chunks, customers)
    u = one(alerts, "unauthorized_lookup")
    assert reasons(u) == {"c2_takeout_without_approval", "system_not_permitted", "role_not_permitted"}
    assert u.counts["accesses"] == 1 and u.subject_count == 100
    b = one(alerts, "bulk_query")  # 100 customers exported: weight 300, 10 times the default 30
    assert b.counts["records"] == 100 and b.severity.value == "medium"
    assert "reached the default threshold 30, 10.0 times it" in b.summary and "times is" not in b.summary


@pytest.mark.parametrize(("customers", "severity"), [(120, "medium"), (999, "medium"), (1000, "high")])
def test_ten_times_the_default_measure_is_high_only_for_a_job_of_a_thousand_records(
    run, customers, severity
) -> None:
    """probe_u4 M2: an account of no role exporting 120 customers' names and addresses each night,
    never approved, was 12 times the default threshold 30 and high every night, 1/40 of art. 5's
    5 000. Against the defaults the 10-times step needs 1 000 records too (bulk_query.yaml
    `measure_escalation` `default_min_records`); a role's own measure needs none."""
    export = read(
        "SVC-CARD-01", NIGHT, ids("A", customers), fields=("customer_name", "home_address"), action="export"
    )
    b = one(run([_ent("SVC-CARD-01", None, "HO")], [export], customers=book(1000)), "bulk_query")
    assert b.severity.value == severity and b.counts["records"] == customers, b.summary
    assert ("times is high" in b.summary) is (severity == "high"), b.summary


def test_a_search_that_returns_one_customer_of_another_branch(run) -> None:
    """A name search on core banking returns three customers, one of them another branch's."""
    alerts = run([_ent("t1", "lobby_manager", "S0101")], [read("t1", OPEN, ["A0001", "A0002", "F0009"])])
    a = one(alerts, "unauthorized_lookup")
    assert reasons(a) == {"out_of_scope"} and a.subject_count == 3


def test_reads_while_between_posts(run) -> None:
    """Seed 004 人员管理(4): between the transfer and the new post, no access at all."""
    noon = OPEN + 4 * HOUR
    ents = [
        _ent("t2", "lobby_manager", "S0101"),
        _ent("t2", "lobby_manager", "S0101", ts=noon, status="transferred"),
        _ent("t2", "lobby_manager", "S0201", ts=noon + HOUR),
    ]
    alerts = run(ents, [read("t2", noon + 5 * MINUTE, ["A0001"])])
    a = one(alerts, "unauthorized_lookup")
    assert reasons(a) == {"transferred"} and a.severity.value == "high" and "调岗" in a.summary


def test_a_second_level_branch_sees_its_own_sub_branches_only(run) -> None:
    """Seed 004 机构设置(3): a second-level branch sees itself and the orgs below it, not its
    parent branch's other sub-branches."""
    customers = [*book(), customer("K0001", "S010301")]
    ents = [_ent("m1", "br_marketing_mgmt", "B0103")]
    assert run(ents, [read("m1", OPEN, ["K0001"], purpose="marketing")], customers) == []
    alerts = run(ents, [read("m1", OPEN, ["A0001"], purpose="marketing")], customers)
    assert reasons(one(alerts, "unauthorized_lookup")) == {"out_of_scope"}


def test_a_head_office_department_head_reads_any_branch_s_customer(run) -> None:
    """Seed 004 机构设置(1): head office sees all."""
    events = [
        read("d1", OPEN + i * MINUTE, [c], purpose="supervision")
        for i, c in enumerate(["A0001", "B0001", "F0001"])
    ]
    assert run([_ent("d1", "ho_dept_head", "HO")], events) == []


def test_a_read_right_after_the_approval_was_revoked(run) -> None:
    """The approval is withdrawn at 11:00 (a new entitlement version without it): the cross-org
    read a second later is out of scope, and the alert says why the approval did not count."""
    revoked = OPEN + 2 * HOUR
    ents = [
        _ent("w5", "wealth_manager", "S0101", approvals=[grant()]),
        _ent("w5", "wealth_manager", "S0101", ts=revoked),
    ]
    kw = dict(approval_id="AP1", purpose="complaint_handling")
    assert run(ents, [read("w5", revoked - 1_000, ["F0001"], **kw)]) == []
    alerts = run(ents, [read("w5", revoked + 1_000, ["F0001"], **kw)])
    a = one(alerts, "unauthorized_lookup")
    assert reasons(a) == {"out_of_scope"} and "approval AP1 is not in the employee's entitlement" in a.summary


def test_unnamed_rows_are_not_listed_as_customers(run) -> None:
    """`lifemon alerts`, `watch` and the report show an alert's customers in their own column. An
    unauthorized_lookup alert counts the rows a log counted without naming customers as records, not
    customers: `subject_count` (what an OCSF consumer reads) and the column leave them out, as its
    summary does; an alert stored before that (rows in `subject_count`) is read the same."""
    from streams.alert_query import records_and_customers, render_alert
    from streams.alerts import to_ocsf
    from streams.watch import alert_row

    ents = [_ent("p1", "sb_president", "S0101")]
    unnamed = read(
        "p1", OPEN, [], fields=("credit_report",), system="report_portal", action="download", row_count=50
    )
    u = one(run(ents, [unnamed]), "unauthorized_lookup")
    assert "touching 0 customers and 50 rows naming no customer" in u.summary
    assert records_and_customers(u.subject_count, u.counts) == (50, None)  # none named: unknown, not 50
    assert u.subject_count == 0
    stored_before = {k: v for k, v in u.counts.items() if k not in ("customers", "records")}
    assert records_and_customers(50, stored_before)[1] is None
    assert "     — customers" in render_alert(alert_row(to_ocsf(u)))
    # three customers of the far branch named, with the 50 rows: 3 customers
    far = read("p1", OPEN + HOUR, ["F0001", "F0002", "F0003"])
    u = one(run(ents, [unnamed, far]), "unauthorized_lookup")
    assert "touching 3 customers and 50 more rows than customers named" in u.summary, u.summary
    assert records_and_customers(u.subject_count, u.counts) == (53, 3) and u.subject_count == 3
    # one far customer's statement of 12 rows, or a query naming one customer that returned 5 000
    # rows (`OR 1=1`): the rows stay counted, and neither is said to name no customer
    for rows in (12, 5000):
        query = read("p1", OPEN, ["F0001"], fields=("transaction_record",), row_count=rows)
        u = one(run(ents, [query]), "unauthorized_lookup")
        assert f"touching 1 customer and {rows - 1} more rows than customers named" in u.summary, u.summary


def test_an_id_in_another_case_or_padded_is_the_same_employee_and_customer(run) -> None:
    """Each system spells ids its own way: a CRM's `e300011`, a CHAR column's `E300011 `, a
    customer typed `c0000306`. A probe's fired employee read under them was a low coverage gap
    (an unknown actor) instead of a high alert, a harvest split over two spellings raised nothing,
    and an out-of-scope customer in lower case was an unknown one. Ids are read without blanks and,
    where the bank gives their form (organisation.yaml `employee_id_form`, `customer_id_form`), in
    the case the form takes; the alert names the employee as the entitlements feed does."""
    gone = OPEN + 3 * HOUR
    fired = [
        _ent("E300011", "wealth_manager", "S0101"),
        _ent("E300011", None, "S0101", ts=gone, status="terminated"),
    ]
    a = one(run(fired, [read("e300011", gone + HOUR, ["A0001"]), read("E300011 ", gone + 2 * HOUR, ["A0002"])]),
            "unauthorized_lookup")  # fmt: skip
    assert reasons(a) == {"terminated"} and a.severity.value == "high" and a.counts["accesses"] == 2
    assert a.actor_id == "E300011"
    president = [_ent("E300100", "sb_president", "S0101")]
    harvest = spread("E300100", ids("A", 35), OPEN, OPEN + 2 * HOUR) + spread(
        "e300100", ids("A", 35, 100), OPEN + 2 * HOUR, OPEN + 4 * HOUR
    )
    b = one(run(president, harvest), "bulk_query")
    assert b.actor_id == "E300100" and b.counts["records"] == 70 and "reached 50 (" in b.summary
    far = [customer("C0000306", "S0102")]
    lobby = [_ent("E300001", "lobby_manager", "S0101")]
    c = one(run(lobby, [read("E300001", OPEN, ["c0000306"])], customers=far), "unauthorized_lookup")
    assert reasons(c) == {"out_of_scope"} and c.severity.value == "medium"
    # a CRM that writes the customer number alone, without its letter (`0000306`, `306`): a probe's
    # wealth manager's own book read on two systems counted twice into an art. 5 alert
    c = one(run(lobby, [read("E300001", OPEN, ["0000306"])], customers=far), "unauthorized_lookup")
    assert reasons(c) == {"out_of_scope"}
    # a shorter number is no customer number of the form (an app's user id): not this customer
    c = one(run(lobby, [read("E300001", OPEN, ["306"])], customers=far), "unauthorized_lookup")
    assert reasons(c) == {"unknown_customer"}
    own = [customer(f"C{i:07d}", "S0101") for i in range(30)]
    book_read = spread(
        "E300002", [f"C{i:07d}" for i in range(30)], OPEN, OPEN + 2 * HOUR, purpose="wealth_advice"
    )
    crm_read = spread("E300002", [f"{i:07d}" for i in range(30)], OPEN + 2 * HOUR, OPEN + 4 * HOUR,
                      purpose="wealth_advice", system="crm", fields=("customer_name", "mobile_phone"))  # fmt: skip
    assert run([_ent("E300002", "wealth_manager", "S0101")], book_read + crm_read, customers=own) == []
    # an id of no form the bank gave keeps its case: w1 and W1 are two employees
    assert run([_ent("w1", "wealth_manager", "S0101")], [read("W1", OPEN, ["A0001"])])[0].counts.get(
        "reason_unknown_actor"
    )


@pytest.mark.parametrize("account", ["BANK\\E300011", "E300011@bank.com.cn", "bank.cn/e300011"])
def test_an_employee_logged_as_a_directory_account_is_the_employee(run, account) -> None:
    """A probe's: a single-sign-on CRM logs the account as the directory writes it (`BANK\\E300011`,
    `E300011@bank.com.cn`); a fired employee's reads were a low unknown-actor gap, not a high
    `terminated`, and a harvest split between the two spellings lost its art. 5 alert. The id
    inside is the employee's where it fits `employee_id_form`; another id keeps all it says."""
    gone = OPEN + 3 * HOUR
    fired = [
        _ent("E300011", "wealth_manager", "S0101"),
        _ent("E300011", None, "S0101", ts=gone, status="terminated"),
    ]
    a = one(run(fired, [read(account, gone + HOUR, ["A0001"])]), "unauthorized_lookup")
    assert reasons(a) == {"terminated"} and a.actor_id == "E300011"
    president = [_ent("E300100", "sb_president", "S0101")]
    harvest = spread("E300100", ids("A", 35), OPEN, OPEN + 2 * HOUR) + spread(
        account.replace("300011", "300100"), ids("A", 35, 100), OPEN + 2 * HOUR, OPEN + 4 * HOUR
    )
    b = one(run(president, harvest), "bulk_query")
    assert b.actor_id == "E300100" and b.counts["records"] == 70
    odd = one(run(fired, [read("BANK\\X300011", OPEN, ["A0001"])]), "unauthorized_lookup")
    assert odd.actor_id == "BANK\\X300011" and odd.counts.get("reason_unknown_actor")


def test_a_teller_logged_by_the_employee_numbers_digits_is_the_employee(run) -> None:
    """A probe's: core banking logs a teller by the digits of the employee number (`300011` for
    E300011 of `employee_id_form` E[0-9]{6}): a fired teller's reads were an unknown actor's low
    gap, and a harvest split over the two spellings raised nothing. A number of another length is
    no employee number of the form."""
    gone = OPEN + 3 * HOUR
    fired = [
        _ent("E300011", "wealth_manager", "S0101"),
        _ent("E300011", None, "S0101", ts=gone, status="terminated"),
    ]
    a = one(run(fired, [read("300011", gone + HOUR, ["A0001"])]), "unauthorized_lookup")
    assert reasons(a) == {"terminated"} and a.actor_id == "E300011"
    president = [_ent("E300100", "sb_president", "S0101")]
    harvest = spread("E300100", ids("A", 35), OPEN, OPEN + 2 * HOUR) + spread(
        "300100", ids("A", 35, 100), OPEN + 2 * HOUR, OPEN + 4 * HOUR
    )
    b = one(run(president, harvest), "bulk_query")
    assert b.actor_id == "E300100" and b.counts["records"] == 70
    odd = one(run(fired, [read("0300011", OPEN, ["A0001"])]), "unauthorized_lookup")
    assert odd.actor_id == "0300011" and odd.counts.get("reason_unknown_actor")


def test_a_posts_own_work_logged_without_a_purpose_is_judged_as_the_posts_work(run) -> None:
    """Most core-banking and card audit logs have no purpose column (a probe's teller serving 60
    counter customers, and a wealth manager serving 60 of her book, were art. 5 alerts). A read
    naming no purpose is judged as the post's work, within the post's own bounds: past the counter's
    120 customers a day it counts as any reads, and another sub-branch's customers are no one's
    book."""
    teller, manager = [_ent("t1", "teller", "S0101")], [_ent("w1", "wealth_manager", "S0101")]
    day = (OPEN, OPEN + 8 * HOUR)
    assert run(teller, spread("t1", ids("A", 60), *day, purpose=None)) == []
    assert run(manager, spread("w1", ids("A", 60), *day, purpose=None)) == []
    past = one(run(teller, spread("t1", ids("A", 200), *day, purpose=None)), "bulk_query")
    assert "past its 120 customers a day" in past.summary
    far = run(manager, spread("w1", ids("F", 60), *day, purpose=None))
    assert one(far, "bulk_query").counts["records"] == 60


def test_a_wealth_manager_prints_her_own_customers_statement_for_her(run) -> None:
    """Seed 004 流程描述(4)④ restricts copying in bulk (原则上限制批量查询、复制): a wealth manager
    printing one of her own customers' holdings for advice, or flows for service, gives that
    customer their copy, as the counter does (a probe's was a medium take-out without approval).
    Another sub-branch's customer, two customers on one print, or a campaign's purpose are still
    take-outs needing an approval."""
    ent = [_ent("w1", "wealth_manager", "S0101")]
    holdings = {
        "action": "print",
        "system": "crm",
        "fields": ("customer_name", "assets"),
        "purpose": "wealth_advice",
    }
    flows = {
        "action": "print",
        "fields": ("customer_name", "payment_account_no", "transaction_record"),
        "row_count": 20,
    }
    assert (
        run(ent, [read("w1", OPEN, ["A0001"], **holdings), read("w1", OPEN + HOUR, ["A0002"], **flows)]) == []
    )
    # bulk_query agrees (a review: 60 such prints in a day were a high art. 5 alert and an incident
    # there): one customer's copy a print, of the book's day
    day = spread("w1", ids("A", 60), OPEN, OPEN + 9 * HOUR, **holdings)
    assert run(ent, day) == []
    for subjects, kw in (
        (["F0001"], holdings),
        (["A0001", "A0002"], holdings),
        (["A0001"], holdings | {"purpose": "marketing"}),
    ):
        a = one(run(ent, [read("w1", OPEN, subjects, **kw)]), "unauthorized_lookup")
        assert "c2_takeout_without_approval" in reasons(a), (subjects, kw, a.summary)


@pytest.mark.parametrize("batch_size", [1, 10_000])
def test_downloads_spaced_past_the_window_still_add_up_to_the_laws_count(run, batch_size) -> None:
    """A probe: a sub-branch president downloads eleven transaction reports of 490 unnamed rows, one
    every 90 minutes, 5 390 records in 15 hours: eleven medium alerts of 490, never art. 5's 500
    nor its 5 000. The law counts the day's records, not an alert's: the second download crosses
    500 on the day's count, the eleventh 5 000 (critical); those between are the role's alerts, a
    step once reported reported once, whatever the batches. Each is high by the role's measure
    besides: 490 rows downloaded weigh 12 times the president's hourly 120 (`measure_escalation`)."""
    ents = [_ent("p1", "sb_president", "S0101")]
    downloads = [
        read("p1", OPEN + k * 90 * MINUTE, [], fields=("transaction_record",), system="report_portal",
             action="download", row_count=490)
        for k in range(11)
    ]  # fmt: skip
    bulk = sorted((a for a in run(ents, downloads, batch_size=batch_size) if a.detector == "bulk_query"),
                  key=lambda a: a.first_seen)  # fmt: skip
    assert [a.severity.value for a in bulk] == ["high"] * 10 + ["critical"]
    assert [a.counts.get("leakage_candidate", 0) for a in bulk] == [0, 1] + [0] * 8 + [1]
    assert "reached the role threshold 120, 12.2 times it: 10 times is high" in bulk[0].summary
    assert (
        "980 transaction/account/authentication/biometric/communication_records/accommodation/health records counted over 24 h"
        in bulk[1].summary
    )
    assert (
        "5,390 transaction/account/authentication/biometric/communication_records/accommodation/health records counted over 24 h"
        in bulk[-1].summary
    )
    assert bulk[-1].counts["leakage_candidate"] == 1 and len({a.alert_id for a in bulk}) == 11


@pytest.mark.parametrize("batch_size", [1, 10_000])
def test_queries_under_the_role_window_after_a_close_still_reach_the_laws_next_step(run, batch_size) -> None:
    """Eleven queries of 49 credit records, 90 minutes apart, each under the president's window
    (49 of 120): each pair passes art. 5's 50 (high; the count of a new alert starts at the last
    one's close), and the eleventh, alone, its 500 on the day's count (critical, 539). Under 50
    since the last close, the eleventh is told from the quiet reads before it only by the day's
    count against the next step a close reported (`BulkQueryDetector._quiet`)."""
    ents = [_ent("p1", "sb_president", "S0101"), _ent("z9", "sb_president", "S0101")]
    queries = [
        read("p1", OPEN + k * 90 * MINUTE, [], fields=("credit_report",), system="report_portal",
             action="query", row_count=49)
        for k in range(11)
    ]  # fmt: skip
    # another employee's read before each query moves the watermark: p1's open alert is closed by
    # its timer before the query, which is judged with no alert open
    others = [read("z9", q.ts - 5 * MINUTE, ["C0000001"]) for q in queries[1:]]
    bulk = sorted((a for a in run(ents, queries + others, batch_size=batch_size) if a.detector == "bulk_query"),
                  key=lambda a: a.first_seen)  # fmt: skip
    assert [a.severity.value for a in bulk] == ["high"] * 5 + ["critical"]
    assert (
        "539 credit/property/loan/location/communication_content records counted over 24 h"
        in bulk[-1].summary
    )


@pytest.mark.parametrize("batch_size", [1, 3, 10_000])
def test_a_late_log_before_a_close_still_adds_to_the_days_count_under_its_own_alert(
    run, policy, catalog, batch_size
) -> None:
    """A review: a report of 4 000 transaction rows logged late, dated before an earlier alert's
    close, was left out of the day's count, and 5 051 records raised no critical; and where the
    late log was dated at the closed alert's start, its critical alert took that alert's id and the
    newer revision of the closed one hid it."""
    ents = [_ent("p1", "ho_marketing_mgmt", "HO")]

    def report(ts: int, rows: int, **kw: Any) -> AccessEvent:
        return read(
            "p1", ts, [], fields=("transaction_record",), system="report_portal", row_count=rows, **kw
        )

    bulk = [
        a
        for a in run(ents, [report(OPEN, 600), report(OPEN + 3 * HOUR, 1), report(OPEN - HOUR, 4000),
                            report(OPEN + 4 * HOUR, 450)], batch_size=batch_size, arrival="as given")
        if a.detector == "bulk_query"
    ]  # fmt: skip
    assert sorted(a.severity.value for a in bulk) == ["critical", "high"]
    (critical,) = [a for a in bulk if a.severity.value == "critical"]
    assert (
        "5,051 transaction/account/authentication/biometric/communication_records/accommodation/health records counted over 24 h"
        in critical.summary
    )

    # the late log dated at the closed alert's own start: a critical of its own id
    specs = [s for s in load_detectors(policy) if s.kind == "bulk_query"]
    e = Engine(specs, catalog, pseudonymize=Pseudonymizer(b"unit-test-key-0123456789"))
    e.apply_reference("entitlements", refs("entitlements", [*ents, _ent("z9", "ho_marketing_mgmt", "HO")]))
    other = read(
        "z9", OPEN + 3 * HOUR, [], fields=("transaction_record",), system="report_portal", row_count=1
    )
    out = []
    for i, batch in enumerate([
        [report(OPEN, 600), report(OPEN + 30 * MINUTE, 600)],
        [other],  # moves the watermark: the timer closes p1's alert
        [report(OPEN + 3 * HOUR, 1, action="update")],
        [report(OPEN, 3900)],
    ]):  # fmt: skip
        out += e.process("access", "t", 0, fed("access", batch, "t", i * 10)) + e.advance()
    found = {a.alert_id: a for a in latest(out + e.drain()) if a.actor_id == "p1"}
    assert sorted(a.severity.value for a in found.values()) == ["critical", "high"]


@pytest.mark.parametrize(
    "column",
    [
        "t_card.cvv2",
        "card_cvv2",
        "cvv2_code",
        "cardCvv2",
        "t_card.pin_block",
        "tbl_card_pin_block",
        "CARD_EXP_DT",
    ],
)
def test_a_c3_column_as_a_database_audit_log_names_it_is_c3(run, column) -> None:
    """Seed 004 分类(1) C3: 卡片验证码(CVN和CVN2)、卡片有效期、银行卡密码; 流程描述(4)⑤. pgaudit, MariaDB
    and Ranger name a column with its table (`t_card.cvv2`); schemas prefix it with the table's
    name or follow it with a word (`card_cvv2`, `cvv2_code`): a probe's unapproved CVN and PIN reads
    so named were silent."""
    alerts = run(
        [_ent("w6", "wealth_manager", "S0101")],
        [read("w6", OPEN, ["A0001"], fields=("card_no", column), system="card_system")],
    )
    a = one(alerts, "unauthorized_lookup")
    assert "c3_without_approval" in reasons(a) and a.severity.value == "high" and a.jr_class == "C3"


def test_a_column_whose_tail_names_a_field_of_another_class_is_not_that_field(policy) -> None:
    """Only a C3 field is found at a column's tail, after words that name a card or a table:
    `branch_name` is no customer's name, an ID card's expiry (`id_card_exp_dt`, 有效期) or a
    contract's no bank card's. A qualified column is its field, any class."""
    catalog = Catalog(policy)
    assert catalog.field_spelling("t_cust.customer_name") == "customer_name"
    for column in (
        "branch_name",
        "id_card_exp_dt",
        "card_pin_retry_count",
        "exp_dt",
        # a review's: a contract's, a product's, a token's expiry and a session's PIN are no card's
        "contract_expiry_date",
        "product_exp_date",
        "token_expiry_date",
        "pwd_expiry_date",
        "session_pin",
        "user_pin",
    ):
        assert catalog.field_spelling(column) is None, column


def test_a_statement_text_in_a_field_list_is_no_column_and_a_read_of_it_stays_a_gap(policy) -> None:
    """A DWH tool logs its SQL text where the fields belong. What follows its last dot is a table or
    a condition, not the data read: `SELECT * FROM crm.customer_segment` was read as
    customer_segment, a C1 export of every column. A qualified column is still its field; a read
    (query) of a list naming no data stays an unknown C1 field, a coverage gap."""
    catalog = Catalog(policy)
    for text in ("SELECT * FROM crm.customer_segment", "SELECT * FROM t WHERE t.mobile_phone"):
        assert catalog.field_spelling(text) is None, text
    assert catalog.field_spelling("t_card.cvv2") == "card_cvn"
    assert catalog.access_class(["*"], "query") == (JrClass.C1, None)
    assert catalog.access_class(["customer_segment"], "export") == (JrClass.C1, None)


@pytest.mark.parametrize(
    ("fields", "how"),
    [
        ([], "none listed"),
        (["*"], "`*`"),
        (["dw.*"], "`*`"),
        (["cust_360 export"], "1 field the catalog does not know"),
        (["SELECT * FROM crm.customer_segment"], "`*`"),  # a statement's `*`: read as one
    ],
)
def test_an_export_whose_fields_name_no_data_is_judged_as_c2_and_says_so(run, fields, how) -> None:
    """Seed 004 分类(3): C1 is what C2 and C3 do not include, which a field list naming nothing does
    not show; 流程描述(4)④ 原则上限制批量查询、复制. A probe's head-office marketing manager exported
    1 000 customers' names, ID numbers, mobiles and assets logged as `*`, `[]` or a SQL text: one
    medium "C1 1,000" bulk alert, no take-out rule, and nothing said of the fields. Judged as C2
    (classification.yaml `unnamed_takeout_class`), both detectors say so; a colleague's export of
    200 customers' segments and tags, named C1 fields, stays silent beside it."""
    customers = ids("A", 400) + ids("B", 400) + ids("F", 200)
    ents = [_ent("m1", "ho_marketing_mgmt", "HO"), _ent("m2", "ho_marketing_mgmt", "HO")]
    kw: dict[str, Any] = {"system": "data_warehouse", "action": "export", "purpose": "marketing"}
    tags = read("m2", OPEN, ids("A", 200), fields=("customer_segment", "marketing_tags"), **kw)
    alerts = run(ents, [tags, read("m1", OPEN + HOUR, customers, fields=fields, **kw)])
    said = f"fields not named ({how}): judged as C2"
    bq, ul = one(alerts, "bulk_query"), one(alerts, "unauthorized_lookup")
    assert bq.actor_id == ul.actor_id == "m1" and bq.jr_class == ul.jr_class == "C2"
    assert bq.counts["class_C2"] == 1000 and bq.counts["class_C1"] == 0 and said in bq.summary
    assert reasons(ul) == {"c2_takeout_without_approval"} and ul.severity.value == "medium"
    assert f"(export on data_warehouse; no approval; {said})" in ul.summary
    assert "SELECT" not in bq.summary + ul.summary  # the words themselves are never said


EXPORT: dict[str, Any] = {"system": "data_warehouse", "action": "export", "purpose": "marketing"}


def _alerted(alerts) -> list[tuple[Any, ...]]:
    """What an analyst reads of each alert: detector, severity, class, counts, summary."""
    return sorted(
        (a.detector, a.severity.value, a.jr_class, sorted(a.counts.items()), a.summary) for a in alerts
    )


def test_a_statement_in_a_field_list_is_judged_by_the_columns_it_selects(run) -> None:
    """A DWH tool logs the SELECT it ran where the fields belong. A probe's head-office marketing
    manager exported 3 000 customers' names, ID numbers, mobiles and assets as `SELECT cust_name,
    cert_no, mobile_no, aum_bal FROM dw.cust_360`: judged as naming no data, C2 identity, a high
    where the same export naming its fields was critical. Its select list is read as a raw source
    reads a statement (aliases, quoting, functions, table prefixes): the same alerts as the export
    naming the fields."""
    customers = ids("A", 1000) + ids("B", 1000) + ids("F", 1000)
    ents = [_ent("m1", "ho_marketing_mgmt", "HO")]
    named = ("customer_name", "id_document_no", "mobile_phone", "assets")
    expected = _alerted(run(ents, [read("m1", OPEN, customers, fields=named, **EXPORT)]))
    assert ("bulk_query", "critical") in {a[:2] for a in expected}
    for text in (
        "SELECT cust_name, cert_no, mobile_no, aum_bal FROM dw.cust_360",
        "select c.CUST_NM AS nm, upper(c.\"cert_no\") id_no, coalesce(m.mobile_no, '') mobile,\n"
        "  sum(a.aum_bal) AS aum FROM dw.cust_360 c JOIN dw.mob m ON m.k = c.k JOIN dw.aum a ON a.k = c.k"
        " -- nightly list\nGROUP BY 1, 2, 3",
    ):
        assert _alerted(run(ents, [read("m1", OPEN, customers, fields=[text], **EXPORT)])) == expected, text


def test_a_statement_selecting_a_card_code_is_c3_and_one_of_c1_columns_no_c2(run) -> None:
    """Seed 004 分类(1) C3: 卡片验证码 (CVN2); 流程描述(4)⑤ asks an approval of each C3 use. A
    statement selecting `cvv2` was judged as naming no data, C2: the C3 take-out rule never ran.
    One selecting only a customer's segment and tags (C1, 分类(3)) was judged C2 too, a medium
    take-out alert for what a colleague exporting the same fields by name may do. Each is judged by
    its columns: the first as C3 (the C3 rule, bulk_query's C3 count), the second silent as the
    named export beside it."""
    ents = [_ent("m1", "ho_marketing_mgmt", "HO"), _ent("m2", "ho_marketing_mgmt", "HO")]
    alerts = run(ents, [read("m1", OPEN, ids("A", 200), fields=["SELECT name, cvv2 FROM t_card"], **EXPORT)])
    bq, ul = one(alerts, "bulk_query"), one(alerts, "unauthorized_lookup")
    assert bq.jr_class == ul.jr_class == "C3" and bq.counts["class_C3"] == 200
    assert reasons(ul) == {"c3_without_approval"} and ul.severity.value == "high"
    tags = ["SELECT t.customer_segment AS seg, lower(marketing_tags) FROM dw.cust_tags t"]
    named = ("customer_segment", "marketing_tags")
    for fields in (tags, named):
        assert run(ents, [read("m2", OPEN, ids("A", 200), fields=fields, **EXPORT)]) == [], fields


def test_a_statement_column_the_catalog_does_not_know_is_judged_as_naming_no_data_and_named(run) -> None:
    """What the select list names that no field stands for (a `*` over a table sources.yaml does not
    hold, a column no word of the catalog spells) is a part naming no data, judged at
    classification.yaml `unnamed_takeout_class` beside the fields named (the higher of the two), and
    the alert names those columns: `*` beside C1 tags is C2, a column `seg_note` beside them too,
    said as such."""
    ents = [_ent("m2", "ho_marketing_mgmt", "HO")]
    for text, how in (
        ("SELECT t.*, customer_segment FROM dw.cust_tags t", "`*`"),
        ("SELECT * FROM dw.cust_360", "`*`"),
        ("SELECT customer_segment, seg_note FROM dw.cust_tags", "column seg_note not recognised"),
    ):
        alerts = run(ents, [read("m2", OPEN, ids("A", 200), fields=[text], **EXPORT)])
        ul = one(alerts, "unauthorized_lookup")
        assert ul.jr_class == "C2" and reasons(ul) == {"c2_takeout_without_approval"}, text
        assert f"fields not named ({how}): judged as C2" in ul.summary, text
        assert "SELECT" not in ul.summary and "dw." not in ul.summary


def test_an_approval_covers_a_statement_by_its_named_columns_and_the_part_naming_none(run) -> None:
    """An approval covers a statement's export where it covers the fields its select list names
    and the part naming none (a column nothing knows, judged as `unnamed_takeout_class` and
    `unnamed_takeout_categories` data: `Catalog.unnamed_granted`). An approved list of 80 customers'
    names and mobiles with their `branch_code` stays silent; the same export with `cvv2` is not
    covered by it."""
    ap = grant(approval_id="ML1", purpose="marketing", max_records=100, categories=["identity", "contact"],
               systems=["data_warehouse"])  # fmt: skip
    ents = [_ent("m1", "ho_marketing_mgmt", "HO", approvals=[ap])]
    kw = EXPORT | {"approval_id": "ML1"}
    listed = "SELECT cust_name, mobile_no, branch_code FROM dw.cust_360"
    assert run(ents, [read("m1", OPEN, ids("A", 80), fields=[listed], **kw)]) == []
    carded = "SELECT cust_name, cvv2, branch_code FROM dw.cust_360"
    ul = one(run(ents, [read("m1", OPEN, ids("A", 80), fields=[carded], **kw)]), "unauthorized_lookup")
    assert "c3_without_approval" in reasons(ul)


def test_a_statement_in_a_field_list_is_kept_nowhere(policy, catalog, caplog) -> None:
    """A statement's WHERE may compare an ID number, a passport number or a name: only the field ids
    its select list names are kept. Neither its text nor a literal of it reaches an alert, the
    detectors' state (the changelog), the rollups (ClickHouse's coverage gaps) or a log."""
    import logging

    caplog.set_level(logging.DEBUG)
    specs = [s for s in load_detectors(policy) if s.kind in ("bulk_query", "unauthorized_lookup")]
    e = Engine(specs, catalog, pseudonymize=Pseudonymizer(b"unit-test-key-0123456789"))
    e.apply_reference("entitlements", refs("entitlements", [_ent("m1", "ho_marketing_mgmt", "HO")]))
    e.apply_reference("customers", refs("customers", book()))
    text = (
        'SELECT customer_segment, "客户备注", remark_x FROM dw.cust_360 '
        "WHERE cert_no = 'E12345678' OR cust_name = '王小明' OR mobile_no = \"13912345678\""
    )
    events = [
        read("m1", OPEN + k * MINUTE, ids("A", 100, 100 * k), fields=[text], **EXPORT) for k in range(3)
    ]
    alerts = e.process("access", "t", 0, fed("access", events, "t", 0)) + e.advance() + e.drain()
    kept = "\n".join(
        [
            *(a.model_dump_json() for a in alerts),
            repr(e.changes(0)),
            repr(e.rollup_rows()),
            caplog.text,
        ]
    )
    assert any(a.detector == "unauthorized_lookup" for a in alerts)
    for secret in ("SELECT", "WHERE", "E12345678", "王小明", "13912345678", "客户备注"):
        assert secret not in kept, secret
    # the columns by name, one in double quotes (a MySQL or Hive string, maybe a value) counted
    assert "columns remark_x and 1 more not recognised" in kept


def test_an_account_hr_does_not_know_taking_out_many_customers_is_high_and_said_first(run) -> None:
    """Seed 004 流程描述(4)④: 岗位准入及相关系统用户权限应遵循相关业务管理规定…严禁共用账户. A probe's
    svc_dw_etl, SVC_CRM_BATCH and E000000, none known to HR, each exported 3 000 customers' names,
    ID numbers and mobiles at 02:00: two medium alerts each. Past 100 customers in one episode
    (unauthorized_lookup.yaml `unknown_account_takeout`), in one export or several, the alert is high
    and leads with the account unknown to HR. One customer's export stays the medium take-out, and
    an employee HR knows exporting as many stays that too."""
    night = T0 - 7 * HOUR  # 02:00 Beijing
    kw: dict[str, Any] = {"fields": ("customer_name", "id_document_no", "mobile_phone"),
                          "system": "data_warehouse", "action": "export", "purpose": None}  # fmt: skip
    ents = [_ent("m1", "ho_marketing_mgmt", "HO")]
    for actor in ("svc_dw_etl", "E000000"):
        ul = one(run(ents, [read(actor, night, ids("A", 150), **kw)]), "unauthorized_lookup")
        assert ul.severity.value == "high" and ul.summary.startswith(
            f"{actor}: account unknown to HR, took out the data of 150 customers without approval, 100 or more ["
        )
        assert f"{actor}：人力资源未登记的账户未经审批导出150名客户的个人金融信息（达100名）；" in ul.summary
    split = [read("svc_dw_etl", night + k * 10 * MINUTE, ids("A", 60, 60 * k), **kw) for k in range(2)]
    ul = one(run(ents, split), "unauthorized_lookup")
    assert ul.severity.value == "high" and "took out the data of 120 customers" in ul.summary
    (single,) = run(ents, [read("svc_dw_etl", night, ids("A", 1), **kw)])
    assert single.severity.value == "medium" and "unknown to HR" not in single.summary
    assert reasons(single) == {"c2_takeout_without_approval", "unknown_actor"}
    known = one(run(ents, [read("m1", night, ids("A", 150), **kw)]), "unauthorized_lookup")
    assert known.severity.value == "medium" and "unknown to HR" not in known.summary


def test_an_access_seconds_before_its_provisioning_is_the_servers_clocks(run) -> None:
    """A login cannot precede its own provisioning: an IAM record stamped 2 s after the first read
    is the IAM server's clock behind the application's (a probe's was a medium alert, and high when
    the employee came back from a leave's suspension). Within `provisioning_skew_seconds` (10) the
    record judges the read; a read half a minute before it is still before the entitlement, and a
    suspended employee's read half a minute before reinstatement still a suspended one's."""
    SEC = 1000
    first = read("w1", OPEN, ["A0001"])
    assert run([_ent("w1", "wealth_manager", "S0101", ts=OPEN + 2 * SEC)], [first]) == []
    back = [
        _ent("w1", "wealth_manager", "S0101", status="suspended"),
        _ent("w1", "wealth_manager", "S0101", ts=OPEN + 2 * SEC),
    ]
    assert run(back, [first]) == []
    (a,) = run([_ent("w1", "wealth_manager", "S0101", ts=OPEN + 30 * SEC)], [first])
    assert reasons(a) == {"before_entitlement"}
    back[1] = _ent("w1", "wealth_manager", "S0101", ts=OPEN + 30 * SEC)
    (b,) = run(back, [first])
    assert reasons(b) == {"suspended"} and b.severity.value == "high"
    # an active record ending within the skew still judges what came before it
    ended = [
        _ent("w1", "wealth_manager", "S0101"),
        _ent("w1", None, "S0101", ts=OPEN + 2 * SEC, status="terminated"),
    ]
    assert run(ended, [first]) == []


@pytest.mark.parametrize(
    ("said", "line"),
    [
        ("通信内容", 50),
        ("通话录音", 50),
        ("行踪信息", 50),
        ("通话记录", 500),
        ("call_records", 500),
        ("住宿信息", 500),
        ("健康信息", 500),
    ],
)
def test_every_tier_of_art_5_counts_the_data_its_words_name(run, said, line) -> None:
    """解释第五条第一款(三)(四) (seed 001 §五.1): 行踪轨迹、通信内容…50条; 住宿信息、通信记录、健康生理信息、
    交易信息…500条. A probe's 60 customers' 通信内容 and 600 customers' 通话记录 counted in no tier: the
    categories had no field. The line fires, one below it is the role window's alone."""
    head = [_ent("h1", "ho_dept_head", "HO")]
    customers = [*ids("A", 400), *ids("B", 400), *ids("F", 400)]
    at_line = spread(
        "h1", customers[:line], OPEN, OPEN + 10 * HOUR, fields=(said,), purpose="customer_service"
    )
    a = one(run(head, at_line), "bulk_query")
    assert f"reached {line} (" in a.summary and a.severity.value == "high", a.summary
    below = run(head, at_line[:-1])
    assert not any(f"reached {line} (" in x.summary for x in below if x.detector == "bulk_query")


NIGHT = T0 - 6 * HOUR  # 02:00 Beijing (T0 is 08:00)


def etl_export(actor: str, rows: int, fields=("*",), **kw: Any) -> AccessEvent:
    """A nightly ETL job's export of every column of a customer table, naming no customer."""
    kw = {"system": "data_warehouse", "action": "export", "purpose": None, "row_count": rows} | kw
    return read(actor, NIGHT, [], fields=fields, **kw)


def test_an_unnamed_takeout_counts_toward_art5_as_identity_data(run, policy) -> None:
    """probe_u3 U3-4: a product manager's `*` export of 20 000 rows was two mediums, the same export
    naming name and ID number high (解释第五条第一款(五): 其他公民个人信息5000条), so a dump was rated
    below a named one. Its records count as classification.yaml `unnamed_takeout_categories`
    (identity): an export of every column of customer data holds at least whom it is about. A bank
    may count them as property data, the 50-record tier, instead."""
    ents = [_ent("p1", "ho_product_mgmt", "HO")]
    dump = etl_export("p1", 20_000, system="crm", purpose="marketing")
    bq = one(run(ents, [dump]), "bulk_query")
    assert bq.severity.value == "high" and "解释第五条第一款(五)" in bq.summary
    assert "fields not named (`*`): judged as C2, its records counted as identity data" in bq.summary
    below = one(run(ents, [dump.model_copy(update={"row_count": 4_999})]), "bulk_query")
    # short of the law's count; high still, by the role window's multiple (bulk_query `measure_escalation`)
    assert "解释第五条" not in below.summary and "times is high" in below.summary
    as_property = policy.classification.model_copy(update={"unnamed_takeout_categories": ["property"]})
    bq = one(run(ents, [dump], folder={"classification": as_property}), "bulk_query")
    assert bq.severity.value == "critical" and "counted as property data" in bq.summary


def test_an_approval_for_the_data_an_unnamed_takeout_is_judged_as_covers_it(run) -> None:
    """probe_u3 U3-2: the ETL account the IAM feed lists, under a standing approval for identity,
    contact, account, property and transaction data on the warehouse, exporting `*`: two mediums,
    "it does not cover the fields read", since no approval could cover fields not named. Such a
    take-out is judged as C2 identity data (classification.yaml `unnamed_takeout_class`,
    `unnamed_takeout_categories`): an approval covering that covers it; one for transactions alone
    does not."""

    def nightly(categories: list[str]) -> Any:
        ap = grant(approval_id="AP-ETL", purpose="regulatory_report", max_records=1_000_000,
                   categories=categories, systems=["data_warehouse"], approver_id="h1")  # fmt: skip
        return [_ent("svc_dw_nightly", None, "HO", approvals=[ap]), _ent("h1", "ho_dept_head", "HO")]

    export = etl_export("svc_dw_nightly", 250_000, approval_id="AP-ETL", purpose="regulatory_report")
    assert run(nightly(["identity", "contact", "account", "property", "transaction"]), [export]) == []
    assert run(nightly(["C2"]), [export]) == []
    narrow = run(nightly(["transaction"]), [export])
    ul = one(narrow, "unauthorized_lookup")
    assert "AP-ETL: it does not cover the fields read" in ul.summary
    assert "covers none of them (it does not cover the fields read)" in one(narrow, "bulk_query").summary


def test_a_counter_print_naming_no_fields_is_the_counters_own_print(run) -> None:
    """probe_u3 U3-3: a teller printing customers' statements at the counter, the print log listing
    no fields, was a medium c2_takeout_without_approval per teller and day. The counter's print grant
    (organisation.yaml counter_service: one customer's statement, identity/account/property/transaction)
    covers such a print of one customer as it covers a named one; a wealth manager's print for her
    own customer likewise (`own_book`). A post with no print grant, or a print of two customers at
    once, is still a take-out without approval."""
    kw: dict[str, Any] = {"action": "print", "row_count": 40}
    statements = [
        read("k1", OPEN + i * 10 * MINUTE, [f"A{i:04d}"], fields=(() if i % 2 else ("*",)), **kw)
        for i in range(20)
    ]
    assert run([_ent("k1", "teller", "S0101")], statements) == []
    own = [read("w1", OPEN + i * 10 * MINUTE, [f"A{i:04d}"], fields=(), **kw) for i in range(5)]
    assert run([_ent("w1", "wealth_manager", "S0101")], own) == []
    other = [s.model_copy(update={"actor_id": "g1"}) for s in statements]
    ul = one(run([_ent("g1", "sb_general_user", "S0101")], other), "unauthorized_lookup")
    assert "c2_takeout_without_approval" in reasons(ul) and ul.severity.value == "medium"
    two = read("k1", OPEN, ["A0001", "A0002"], fields=(), **kw)
    ul = one(run([_ent("k1", "teller", "S0101")], [two]), "unauthorized_lookup")
    assert reasons(ul) == {"c2_takeout_without_approval"}


def test_a_declared_service_accounts_scheduled_run_is_no_account_unknown_to_hr(run) -> None:
    """Seed 004 流程描述(4)④ 严禁共用账户 is about shared and unmanaged accounts, not a registered batch
    job. probe_u3 U3-2: every nightly ETL or BI export by a service account was a high "account
    unknown to HR", sources.yaml's own "monitored service account" svc-bi-report's too, and nothing
    could quiet it. A run sources.yaml `actors.service_accounts` declares (its system, action and
    size) is the standing approval the declaration records: silent. Past its size the declaration
    vouches for nothing (`test_a_service_account_outside_its_declaration_is_an_account_unknown_to_hr`);
    an account nobody declares is still unknown to HR (probe_u1 U1-9)."""
    hr = [_ent("m1", "ho_marketing_mgmt", "HO")]  # the entitlements stream is fed
    nightly = etl_export("svc_dw_etl", 250_000)
    alone = run(hr, [nightly])
    ul, bq = one(alone, "unauthorized_lookup"), one(alone, "bulk_query")
    assert ul.severity.value == "high" and "account unknown to HR" in ul.summary
    assert bq.severity.value == "critical"
    job = ServiceAccount(systems=["data_warehouse"], actions=["export"], max_records=300_000)
    declared = {"service_accounts": {"svc_dw_etl": job}}
    assert run(hr, [nightly], folder=declared) == []
    larger = run(hr, [etl_export("svc_dw_etl", 400_000)], folder=declared)
    ul = one(larger, "unauthorized_lookup")
    assert reasons(ul) == {"c2_takeout_without_approval", "outside_declaration"}
    assert ul.summary.startswith("svc_dw_etl: account unknown to HR, took out the data of 0 customers")
    assert (
        "outside its declared max_records: svc_dw_etl did export on data_warehouse, 400,000 records; "
        "declared: export on data_warehouse, at most 300,000 records a run" in ul.summary
    )
    assert ul.severity.value == "high"
    # shipped: the BI scheduler's report download, its log listing no fields
    report = etl_export("svc-bi-report", 3_000, fields=(), system="report_portal", action="download")
    assert run(hr, [report]) == []
    # an SFTP login's account (sources.yaml `sftp_accounts`), declared with no job: known, not approved
    sftp = run(hr, [etl_export("svc-batch-export", 150, fields=("customer_name", "id_document_no"))])
    ul = one(sftp, "unauthorized_lookup")
    assert ul.severity.value == "medium" and "unknown to HR" not in ul.summary


def test_the_go_live_example_declares_the_month_end_jobs_and_nothing_more(run, tmp_path) -> None:
    """probe_v2 F2: the month-end statement run (svc_stmt_batch exporting names, addresses, accounts
    and transactions) and the quarter's interest settlement (svc_interest updating every balance)
    were a bulk_query alert each run until sources.yaml declared the jobs' accounts. The block
    docs/policy-folder.md gives a bank to copy before go-live, loaded as a bank's folder, quiets
    both; the statement job's account reading ID numbers on the card system is no run of it."""
    page = (Path(__file__).resolve().parent.parent / "docs" / "policy-folder.md").read_text(encoding="utf-8")
    (block,) = re.findall(r"```yaml\n(.*?)```", page, re.S)
    folder = tmp_path / "policy"
    shutil.copytree(DEFAULT_DIR, folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    sources = yaml.safe_load((folder / "sources.yaml").read_text(encoding="utf-8"))
    sources["actors"] |= yaml.safe_load(textwrap.dedent(block))["actors"]
    (folder / "sources.yaml").write_text(yaml.safe_dump(sources, allow_unicode=True), encoding="utf-8")
    declared = {"service_accounts": load_policy(folder).service_accounts}
    hr = [_ent("m1", "ho_marketing_mgmt", "HO")]
    statement = ("customer_name", "home_address", "payment_account_no", "transaction_record")
    month_end = [
        etl_export("svc_stmt_batch", 20_000, fields=statement, system="core_banking"),
        etl_export(
            "svc_interest", 20_000, fields=("account_balance",), system="core_banking", action="update"
        ),
    ]
    shipped = run(hr, month_end)
    assert {(a.actor_id, a.detector) for a in shipped} >= {
        ("svc_stmt_batch", "bulk_query"),
        ("svc_interest", "bulk_query"),
    }
    assert run(hr, month_end, folder=declared) == []
    ids = etl_export(
        "svc_stmt_batch",
        500,
        fields=("customer_name", "id_document_no"),
        system="card_system",
        action="query",
    )
    ul = one(run(hr, [ids], folder=declared), "unauthorized_lookup")
    assert "outside_declaration" in reasons(ul), ul.summary


# sources.yaml's svc-bi-report: {systems: [report_portal], actions: [download], max_records: 10000}
REPORT: dict[str, Any] = {"system": "report_portal", "action": "download", "fields": ()}
DECLARED = "declared: download on report_portal, at most 10,000 records a run"


@pytest.mark.parametrize(
    ("breach", "update", "broke"),
    [
        ("action", {"action": "export"}, "action: svc-bi-report did export on report_portal, 50 records"),
        (
            "system",
            {"system": "data_warehouse"},
            "system: svc-bi-report did download on data_warehouse, 50 records",
        ),
        (
            "max_records",
            {"row_count": 10_001},
            "max_records: svc-bi-report did download on report_portal, 10,001 records",
        ),
        (
            "a C2 query of core banking",
            {"action": "query", "system": "core_banking", "fields": ("customer_name", "id_document_no")},
            "system and action: svc-bi-report did query on core_banking, 50 records",
        ),
    ],
)
def test_a_service_account_outside_its_declaration_is_an_account_unknown_to_hr(
    run, breach, update, broke
) -> None:
    """The brief fix_b4: a declared service account's `systems`, `actions` and `max_records` were a
    standing approval of that run, yet anything else it did was judged as the known job's: the
    shipped svc-bi-report exporting, reading core banking or taking out more than a run's records
    was one medium take-out, or a low "could not judge" for a query. A job's password is exactly what
    a DBA or an intruder uses to stay off their own record (seed 004 流程描述(4)⑤ 异常操作行为的有效
    监控). Outside its declaration the account is judged as one unknown to HR: with C2 or C3 data at
    least high (`unknown_account_takeout.severity`), its alert naming the declaration it broke."""
    hr = [_ent("m1", "ho_marketing_mgmt", "HO")]  # the entitlements stream is fed
    inside = etl_export("svc-bi-report", 10_000, **REPORT)  # a run of its declared size
    assert run(hr, [inside]) == []
    kw = REPORT | update
    outside = etl_export("svc-bi-report", kw.pop("row_count", 50), **kw)
    ul = one(run(hr, [outside]), "unauthorized_lookup")
    assert "outside_declaration" in reasons(ul) and ul.severity.value == "high", ul.summary
    assert f"(outside its declared {broke}; {DECLARED})" in ul.summary
    assert "服务账户超出登记的系统、操作或单次记录数" in ul.summary
    assert "could not judge" not in ul.summary  # judged, not a coverage gap


def test_a_service_accounts_c1_read_outside_its_declaration_is_medium(run) -> None:
    """Outside its declaration with C1 data only (a customer's segment, JR/T 0171 §4.2 C1: internal
    use) the breach is the reason's own severity, medium: still said, no longer a low gap, a job's
    password used elsewhere being what the analyst chases first."""
    hr = [_ent("m1", "ho_marketing_mgmt", "HO")]
    c1 = read("svc-bi-report", NIGHT, ids("A", 5), fields=("customer_segment",), system="crm", purpose=None)
    ul = one(run(hr, [c1]), "unauthorized_lookup")
    assert reasons(ul) == {"outside_declaration"} and ul.severity.value == "medium", ul.summary


def test_an_unknown_accounts_takeouts_count_over_a_day_not_an_episode(run) -> None:
    """probe_u3 U3-8: an account HR does not know took out 150 customers in three exports of 50,
    61 minutes apart (unauthorized_lookup's `episode_gap_minutes` is 60): three mediums, where one
    export of 150 is high. What such an account took out counts over a day from its first take-out
    (`unknown_account_takeout`); the alert that reaches 100 says since when. A day later it starts anew."""
    hr = [_ent("m1", "ho_marketing_mgmt", "HO")]
    kw: dict[str, Any] = {"fields": ("c.*",), "system": "crm", "action": "export", "purpose": None}
    split = [read("svc_tmp_job", NIGHT + k * 61 * MINUTE, ids("A", 50, 50 * k), **kw) for k in range(3)]
    alerts = sorted(
        (a for a in run(hr, split) if a.detector == "unauthorized_lookup"), key=lambda a: a.first_seen
    )
    assert [a.severity.value for a in alerts] == ["medium", "high", "high"]
    assert (
        "took out the data of 100 customers without approval since 2025-12-31T18:00Z, 100 or more"
        in alerts[1].summary
    )
    assert "took out the data of 150 customers" in alerts[2].summary
    apart = [split[0], split[1].model_copy(update={"ts": NIGHT + 25 * HOUR})]
    assert {a.severity.value for a in run(hr, apart) if a.detector == "unauthorized_lookup"} == {"medium"}


@pytest.mark.parametrize("batch_size", [1, 10_000])
def test_the_closed_alert_keeps_the_day_measure_a_window_episode_reached(run, batch_size) -> None:
    """probe_u4 M3: an episode the role window opened, that reached the day measure later, and
    that the employee's next day's read closed within one batch: the closed revision, the one the
    SOC keeps, said only the window's score, without the day's customers, their counts, or that
    reads of her own customers past the book's day were counted as anyone's. It says them, in
    batches of any size."""
    wm = _ent("w1", "wealth_manager", "S0101")
    day1 = spread("w1", ids("A", 330), OPEN, OPEN + int(3.6 * HOUR), fields=("customer_name", "mobile_phone"))
    day2 = [read("w1", OPEN + 24 * HOUR, ["A0000"], fields=("customer_name", "mobile_phone"))]
    found = run([wm], day1 + day2, customers=book(2000), batch_size=batch_size)
    a = one(found, "bulk_query")
    assert a.status.value == "closed", a.summary
    assert "sliding-window score" in a.summary and "reached the role day measure of 200" in a.summary, (
        a.summary
    )
    assert a.counts["day_customers"] == 210 and a.counts["day_measure"] == 200, a.counts
    assert "counted as anyone's: reads of its own customers past the book's 120 a day" in a.summary


def test_a_back_office_clerk_reviews_the_branchs_account_openings(run) -> None:
    """probe_u4 H2: a branch's centralised-operations clerks (集中运营) review the account openings
    and card files the sub-branches' counters send (seed 004 流程描述② 开户申请资料), 150 to 220 a day;
    held as tellers, each was an alert a day, past the counter's walk-ins. The post's own book is
    every customer its branch sees, 300 a day (organisation.yaml `back_office`): a week of 220 a day
    is silent, 400 in a day reaches the day measure, and another branch's customer is out of its
    sight."""
    clerks = [_ent("o1", "ops_back_office", "B01"), _ent("o2", "ops_back_office", "B01")]
    opening = {"fields": ("customer_name", "id_document_no", "home_address", "mobile_phone", "kyc_photo"),
               "purpose": "account_service", "action": "view"}  # fmt: skip
    card = {"fields": ("customer_name", "home_address", "mobile_phone"), "purpose": "account_service",
            "system": "card_system", "action": "view"}  # fmt: skip
    branch = [c for pair in zip(ids("A", 2000), ids("B", 2000), strict=True) for c in pair]

    def day(actor: str, n: int, d: int, first: int, kind: dict[str, Any]) -> list[Any]:
        start = OPEN + d * 24 * HOUR
        return spread(actor, branch[first : first + n], start, start + int(8.5 * HOUR), **kind)

    week = [
        ev
        for d in range(5)
        for ev in (*day("o1", 220, d, 220 * d, opening), *day("o2", 220, d, 1100 + 220 * d, card))
    ]
    assert run(clerks, week, customers=book(2000)) == []
    a = one(run(clerks, day("o1", 400, 0, 0, opening), customers=book(2000)), "bulk_query")
    assert "reached the default day measure of 100" in a.summary and a.counts["day_customers"] == 100, (
        a.summary
    )
    far = run(clerks, [read("o1", OPEN, ["F0001"], **opening)], customers=book(2000))
    assert reasons(one(far, "unauthorized_lookup")) == {"out_of_scope"}


# -- peak days (organisation.yaml `peak_days`) ------------------------------------------------------
DAY = 24 * HOUR


def counter_day(actor: str, customers: list[str], start: int) -> list[AccessEvent]:
    """A teller's day at the counter, 09:00 to 17:00 from `start`: each customer identified (name,
    ID number, balance), the deposit or withdrawal posted, the passbook printed."""
    day = []
    for ev in spread(actor, customers, start, start + 8 * HOUR, fields=("customer_name", "id_document_no", "account_balance"), action="view"):  # fmt: skip
        cid = ev.subject_ids
        day += [
            ev,
            read(actor, ev.ts + MINUTE, cid, fields=("transaction_record", "account_balance"), action="update", purpose="payment"),
            read(actor, ev.ts + 2 * MINUTE, cid, fields=("customer_name", "payment_account_no", "transaction_record"), action="print", purpose="account_service"),
        ]  # fmt: skip
    return day


def test_a_teller_serves_pension_day_and_a_harvest_inside_it_is_still_caught(run) -> None:
    """probe_v2 F9: on pension day (养老金发放日, organisation.yaml `peak_days.pension_day`, the 10th)
    a county sub-branch's teller serves 160 of its customers and 20 walk-ins: past the counter's
    ordinary 120 a day, a high art. 5 alert and a leakage incident a teller a month. The peak's 240
    hold on its day alone: the same counter day on the 11th is still past the 120; the day after
    the peak counts its customers afresh (pension day's 240 carried into the 11th's rolling day
    were 60 balances as anyone's by 13:00, a high art. 5 alert); and the probe's P7, 60 other customers' balances looked up in 20
    minutes with no posting inside pension day, is the role window's medium of its own."""
    teller = [_ent("k1", "teller", "S0101")]
    served = [*ids("A", 160), *ids("B", 20)]
    pension_day = OPEN + 9 * DAY  # 2026-01-10 09:00 Beijing
    assert run(teller, counter_day("k1", served, pension_day)) == []
    ordinary = one(run(teller, counter_day("k1", served, pension_day + DAY)), "bulk_query")
    assert (
        ordinary.severity.value == "high"
        and "at the counter past its 120 customers a day" in ordinary.summary
    )
    # a pension day at the peak's full 240, then an ordinary day's 120: the day after counts its own
    busiest = counter_day("k1", [*ids("A", 220), *ids("B", 20)], pension_day)
    assert run(teller, [*busiest, *counter_day("k1", ids("A", 120, first=250), pension_day + DAY)]) == []
    look = [
        read("k1", pension_day + 3 * HOUR + i * 20_000, [cid], fields=("customer_name", "account_balance"), action="view")
        for i, cid in enumerate(ids("A", 60, first=300))
    ]  # fmt: skip
    p7 = one(run(teller, [*counter_day("k1", served, pension_day), *look]), "bulk_query")
    assert p7.severity.value == "medium" and "reached the role threshold 40" in p7.summary, p7.summary
    # past the peak's own measure, its reads count as anyone's, the alert naming the day
    crowd = one(run(teller, counter_day("k1", ids("A", 260), pension_day), customers=book(400)), "bulk_query")
    assert "at the counter past its 240 customers a day on 养老金发放日 (pension_day)" in crowd.summary, (
        crowd.summary
    )


def test_a_declared_notice_surge_and_the_month_end_raise_their_posts_days_alone(run, policy) -> None:
    """probe_v2 F9, F10: the day after a mass fraud-warning SMS a hotline agent takes 200 callers
    (the line's ordinary 150 a day), and at month-end an AML analyst reviews 450 customers' flows for
    the month's reports (the book's ordinary 300). A notice's surge is the bank's own date, declared
    as a peak of three days; the month-end is shipped (`peak_days.month_end`, -1). Past the peak,
    the ordinary day's measure holds again."""
    surge = PeakDays(
        zh="反诈预警短信群发后",
        en="after the mass fraud-warning SMS",
        dates=["2026-01-05"],
        days=3,
        customers_per_day={"hotline_service": 300},
        source="the fraud-warning SMS to all customers of 2026-01-05",
    )
    org = policy.organisation.model_copy(
        update={"peak_days": {**policy.organisation.peak_days, "sms_surge": surge}}
    )
    agent = [_ent("h1", "hotline_agent", "HO")]
    kw = {"fields": ("customer_name", "account_balance"), "purpose": "customer_service"}
    callers = [*ids("A", 70), *ids("B", 70), *ids("F", 60)]

    def shift(day: int) -> list[AccessEvent]:
        return spread("h1", callers, OPEN + day * DAY, OPEN + day * DAY + 9 * HOUR, **kw)

    assert run(agent, shift(6), folder={"organisation": org}) == []  # 7 January, the third day
    late = one(run(agent, shift(7), folder={"organisation": org}), "bulk_query")
    assert "at the counter past its 150 customers a day" in late.summary, late.summary
    analyst = [_ent("m1", "aml_analyst", "HO")]
    flows = {
        "fields": ("customer_name", "transaction_record"),
        "purpose": "kyc_aml",
        "system": "data_warehouse",
    }
    cases = ids("F", 450)
    month_end = OPEN + 30 * DAY  # 31 January
    assert (
        run(analyst, spread("m1", cases, month_end, month_end + 9 * HOUR, **flows), customers=book(450)) == []
    )
    before = run(
        analyst, spread("m1", cases, month_end - DAY, month_end - 15 * HOUR, **flows), customers=book(450)
    )
    assert "of its own customers past the book's 300 a day" in one(before, "bulk_query").summary


# -- internal audit (organisation.yaml `internal_auditor`, `inspection`; purposes.yaml internal_audit)
def test_an_approved_internal_audit_is_silent_and_a_harvest_beside_it_is_not(run) -> None:
    """probe_v2 F3: three auditors of the head office's 审计部 read 150 loan files a day each for an
    audit; logged as 内审 under an approval its workflow wrote as 内部审计, or with no role for the
    post, each auditor-day was a high bulk alert, a medium unauthorized lookup and a leakage
    incident. The post is named (内部审计岗, seed 004 抄送 审计部; 检查监督) and reads under its
    project's approval, signed by the department's head: silent. The probe's P1, an auditor
    downloading 300 credit reports from the report portal the approval does not list, still is
    both alerts; an audit with no approval is any employee's reads; and an audit approval never
    covers a card's security code."""
    audit = grant(
        approval_id="AUD-2026-01",
        purpose="内部审计",
        max_records=2000,
        categories=["identity", "loan", "credit", "property"],
        systems=["credit_system"],
        approver_id="E900001",
    )
    head = _ent("E900001", "ho_dept_head", "HO_AUDIT")
    auditors = [_ent(a, "internal_auditor", "HO_AUDIT", approvals=[audit]) for a in ("u1", "u2", "u3")]
    loan_file = (
        "customer_name",
        "id_document_no",
        "loan_details",
        "repayment_history",
        "credit_report",
        "income",
    )
    everyone = [c for trio in zip(ids("A", 400), ids("B", 400), ids("F", 400), strict=True) for c in trio]

    def week(actor: str, first: int, **kw: Any) -> list[AccessEvent]:
        files = everyone[first : first + 450]
        return [
            ev
            for d in range(3)
            for ev in spread(actor, files[d * 150 : (d + 1) * 150], OPEN + d * DAY, OPEN + d * DAY + 8 * HOUR,
                             fields=loan_file, system="credit_system", action="view", **kw)
        ]  # fmt: skip

    fieldwork = [
        ev
        for i, a in enumerate(("u1", "u2", "u3"))
        for ev in week(a, 0, purpose="内审", approval_id="AUD-2026-01")
    ]
    assert run([head, *auditors], fieldwork) == []
    harvest = [
        read("u2", OPEN + DAY + 10 * HOUR + i * 20_000, [cid], fields=("customer_name", "id_document_no", "mobile_phone", "credit_report"),
             system="report_portal", action="download", purpose="内审", approval_id="AUD-2026-01")
        for i, cid in enumerate(everyone[900:1200])
    ]  # fmt: skip
    found = run([head, *auditors], [*fieldwork, *harvest])
    assert kinds(found) == ["bulk_query", "unauthorized_lookup"] and {a.actor_id for a in found} == {"u2"}
    assert one(found, "bulk_query").severity.value == "high"
    assert "it does not cover system report_portal" in one(found, "unauthorized_lookup").summary
    # HR writes the post as 稽核人员: the auditor's, whose reads without a project's approval are
    # any employee's, a day's of each
    unapproved = run([head, _ent("u1", "稽核人员", "HO_AUDIT")], week("u1", 0, purpose="内审"))
    assert kinds(unapproved) == ["bulk_query"] * 3 + ["unauthorized_lookup"] * 3
    lookups = [a for a in unapproved if a.detector == "unauthorized_lookup"]
    assert all("role_not_permitted" in reasons(a) and "roles internal_auditor" in a.summary for a in lookups)
    # an approval written for every class still covers no security code (`approval_exclusions`)
    every_class = grant(approval_id="AUD-ALL", purpose="内部审计", max_records=10, categories=["C3", "C2", "C1"],
                        systems=["credit_system"], approver_id="E900001")  # fmt: skip
    cvn = read(
        "u1",
        OPEN,
        ["A0001"],
        fields=("card_cvn",),
        system="credit_system",
        action="view",
        purpose="内审",
        approval_id="AUD-ALL",
    )
    c3 = one(
        run([head, _ent("u1", "internal_auditor", "HO_AUDIT", approvals=[every_class])], [cvn]),
        "unauthorized_lookup",
    )
    assert "never covers" in c3.summary and "c3_without_approval" in reasons(c3), c3.summary


def test_a_regulators_examiners_read_under_the_examinations_approval(run) -> None:
    """probe_v2 F3: a regulator's on-site examiners (现场检查) on temporary accounts HR does not
    know were a high bulk alert and an incident per examiner-day. Provisioned as the bank's
    operations guide says, each a named account in the entitlements feed under the examination's
    approval (purpose regulatory_report, whose names now include 现场检查 and 监管检查, as an
    examination's log writes it), signed by a head-office department head: silent, the approval
    never covering C3."""
    exam = grant(
        approval_id="NFRA-2026-01",
        purpose="regulatory_report",
        max_records=1000,
        categories=["identity", "loan", "credit", "property"],
        systems=["credit_system"],
        approver_id="E900001",
    )
    ents = [
        _ent("E900001", "ho_dept_head", "HO"),
        *(_ent(x, None, "HO", approvals=[exam]) for x in ("NFRA01", "NFRA02")),
    ]
    loan_file = ("customer_name", "id_document_no", "loan_details", "credit_report")
    files = [*ids("A", 200), *ids("F", 200)]
    days = [
        ev
        for i, x in enumerate(("NFRA01", "NFRA02"))
        for ev in spread(x, files[i * 200 : (i + 1) * 200], OPEN, OPEN + 8 * HOUR, fields=loan_file,
                         system="credit_system", action="view", purpose="现场检查", approval_id="NFRA-2026-01")
    ]  # fmt: skip
    assert run(ents, days) == []
    unprovisioned = run(ents[:1], days)
    assert kinds(unprovisioned).count("bulk_query") == 2
