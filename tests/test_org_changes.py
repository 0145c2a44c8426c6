"""An outlet merged into another (网点撤并, organisation.yaml `org_changes`), through the Engine with
every shipped detector, as probe_v2 F7 ran it: S0105 merges into S0101 (and branch B03 into B01) on
5 Jan 2026. HR moves the staff on the day and the core system's batch re-homes the customers two days
later, or the other way round; undeclared, each order was an alert per employee and day (high
old_scope_after_transfer, medium out_of_scope), and a campaign approved for S0105 before the merger
one medium per customer after it. Declared, the order the feeds land in does not matter; what the
merger does not cover is still said, and the planted leaver's export (P5) is still caught."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from conftest import fed, refs

from detectors import load_detectors
from policy import DEFAULT_DIR, load_policy
from policy.catalog import Catalog
from schemas.models import AccessEvent, Approval, Consent, Customer, Entitlement, MarketingPushEvent
from streams.alerts import latest
from streams.engine import Engine
from streams.pseudonym import Pseudonymizer

HOUR, DAY = 3_600_000, 86_400_000
CST = timezone(timedelta(hours=8))
MERGED = int(datetime(2026, 1, 5, tzinfo=CST).timestamp() * 1000)  # 00:00 in the bank's calendar
CATCH_UP = MERGED + 2 * DAY + 20 * HOUR  # the other feed catches up on the 7th, 20:00
DECLARED = (
    "org_changes:\n"
    "  - {from: S0105, into: S0101, effective: 2026-01-05}\n"
    "  - {from: b03, into: B01, effective: 2026-01-05}  # any case, as a feed may write it\n"
)
PATHS = {
    "S0105": ["HO", "B01", "S0105"],
    "S0101": ["HO", "B01", "S0101"],
    "S0102": ["HO", "B01", "S0102"],
    "S0301": ["HO", "B03", "S0301"],
    "B01": ["HO", "B01"],
    "B03": ["HO", "B03"],
}
MERGED_BOOK = [f"C{5_000_000 + i:07d}" for i in range(80)]  # S0105's customers
OTHER_BOOK = [f"C{6_000_000 + i:07d}" for i in range(10)]  # S0102's


def _copy(tmp: Path) -> Path:
    folder = tmp / "policy"
    shutil.copytree(DEFAULT_DIR, folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return folder


def _declare(folder: Path, declaration: str) -> None:
    f = folder / "organisation.yaml"
    text = f.read_text(encoding="utf-8")
    assert "org_changes: []\n" in text, "test setup: the shipped file declares no org change"
    f.write_text(text.replace("org_changes: []\n", declaration, 1), encoding="utf-8")


@pytest.fixture(scope="module")
def merged(tmp_path_factory: Any) -> Any:
    """The shipped policy with the mergers declared in its organisation.yaml."""
    folder = _copy(tmp_path_factory.mktemp("merged"))
    _declare(folder, DECLARED)
    return load_policy(folder)


def monitor(policy: Any, ents: list, customers: list, access=(), marketing=(), consents=()) -> list:
    """Every shipped detector in one engine; the newest revision of each alert."""
    e = Engine(
        load_detectors(policy), Catalog(policy), pseudonymize=Pseudonymizer(b"unit-test-key-0123456789")
    )
    for stream, records in (("entitlements", ents), ("customers", customers), ("consents", consents)):
        e.apply_reference(stream, refs(stream, list(records)))
    alerts = []
    for stream, events in (("access", access), ("marketing", marketing)):
        if events:
            alerts += e.process(stream, stream, 0, fed(stream, sorted(events, key=lambda ev: ev.ts)))
            alerts += e.advance()
    return latest(alerts + e.drain())


def ent(actor: str, org: str, ts: int = 0, role: str = "wealth_manager", **kw: Any) -> Entitlement:
    return Entitlement(actor_id=actor, ts=ts, org_id=org, org_path=PATHS[org], roles=[role], **kw)


def cust(cid: str, org: str, ts: int = 0) -> Customer:
    return Customer(customer_id=cid, ts=ts, org_id=org, org_path=PATHS[org])


def staff(moved: int | None) -> list[Entitlement]:
    """S0105's two wealth managers, moved to S0101 at `moved` (None: never)."""
    return [
        e
        for a in ("E600001", "E600002")
        for e in [ent(a, "S0105")] + ([ent(a, "S0101", moved)] if moved else [])
    ]


def book(moved: int | None, customers: list[str] = MERGED_BOOK) -> list[Customer]:
    """S0105's customers, re-homed to S0101 at `moved` (None: never), and S0102's."""
    merged = [
        c for cid in customers for c in [cust(cid, "S0105")] + ([cust(cid, "S0101", moved)] if moved else [])
    ]
    return merged + [cust(cid, "S0102") for cid in OTHER_BOOK]


_seq = iter(range(10**9))


def view(actor: str, ts: int, subject: str, **kw: Any) -> AccessEvent:
    """A wealth manager's look at one customer's holdings in the mobile banker, for advice."""
    fields = {"system": "mobile_banker", "action": "view", "purpose": "wealth_advice", "row_count": 1}
    return AccessEvent(
        event_id=f"{actor}-{next(_seq)}",
        ts=ts,
        actor_id=actor,
        subject_ids=[subject],
        fields=["customer_name", "mobile_phone", "assets"],
        **(fields | kw),
    )


def work(days: int = 2, start: int = MERGED, customers: list[str] = MERGED_BOOK) -> list[AccessEvent]:
    """Each wealth manager serves 20 of her customers a day from 09:00, one every ten minutes."""
    return [
        view(
            actor, start + d * DAY + 9 * HOUR + j * 600_000, customers[(a * 40 + d * 20 + j) % len(customers)]
        )
        for a, actor in enumerate(("E600001", "E600002"))
        for d in range(days)
        for j in range(20)
    ]


def reasons(alerts: list) -> set[str]:
    return {k.removeprefix("reason_") for a in alerts for k in a.counts if k.startswith("reason_")}


def said(alerts: list) -> list[tuple[str, str, str | None]]:
    return sorted((a.detector, a.severity.value, a.actor_id) for a in alerts)


# -- the feeds in either order --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("case", "staff_moved", "customers_moved", "undeclared"),
    [
        ("a both feeds on the day", MERGED, MERGED, set()),
        ("b customers first, HR two days later", CATCH_UP, MERGED, {("medium", "out_of_scope")}),
        (
            "c staff first, the customer batch two days later",
            MERGED,
            CATCH_UP,
            {("high", "old_scope_after_transfer")},
        ),
    ],
)
def test_a_declared_merger_reads_the_outlets_staff_and_customers_as_one_org_whichever_feed_moves_first(
    policy, merged, case, staff_moved, customers_moved, undeclared
) -> None:
    ents, customers, reads = staff(staff_moved), book(customers_moved), work()
    before = monitor(policy, ents, customers, reads)
    assert {(a.severity.value, r) for a in before for r in reasons([a])} == undeclared, case
    if undeclared:  # one per employee and day, as the probe found
        assert said(before) == [
            ("unauthorized_lookup", next(iter(undeclared))[0], a) for a in ("E600001",) * 2 + ("E600002",) * 2
        ]
    assert monitor(merged, ents, customers, reads) == [], case


def test_before_its_day_the_outlets_are_still_two(merged) -> None:
    """The declaration moves nothing before `effective` (00:00 of the day, the bank's calendar):
    S0101's wealth manager reading S0105's customers the evening before is out of its scope."""
    ents = [ent("E600009", "S0101")]
    reads = [view("E600009", MERGED - HOUR + i * 60_000, cid) for i, cid in enumerate(MERGED_BOOK[:3])]
    alerts = monitor(merged, ents, book(None), reads)
    assert said(alerts) == [("unauthorized_lookup", "medium", "E600009")]
    assert reasons(alerts) == {"out_of_scope"}
    assert (
        monitor(merged, ents, book(None), [r.model_copy(update={"ts": r.ts + 2 * HOUR}) for r in reads]) == []
    )


def test_the_merger_opens_only_the_org_merged_into(merged) -> None:
    """S0105's staff are S0101's from the day: S0102's customers stay outside their sight."""
    reads = work(1, customers=OTHER_BOOK)
    alerts = monitor(merged, staff(None), book(None), reads)
    assert said(alerts) == [
        ("unauthorized_lookup", "medium", "E600001"),
        ("unauthorized_lookup", "medium", "E600002"),
    ]
    assert reasons(alerts) == {"out_of_scope"}
    assert "S0101 read a customer managed by S0102" in alerts[0].summary


def test_a_transfer_out_of_the_outlet_before_it_merged_still_reads_as_a_transfer(policy, merged) -> None:
    """Seed 004 人员管理(4): a wealth manager moved from S0105 to S0102 before the merger who reads
    her former customers after it read a customer of her former org, S0105 now being S0101: the
    high old_scope_after_transfer, as undeclared, not a medium out_of_scope."""
    ents = [ent("E600007", "S0105"), ent("E600007", "S0102", MERGED - 3 * DAY)]
    reads = [
        view("E600007", MERGED + DAY + 9 * HOUR + i * 60_000, cid) for i, cid in enumerate(MERGED_BOOK[:3])
    ]
    for p in (policy, merged):
        alerts = monitor(p, ents, book(None), reads)
        assert said(alerts) == [("unauthorized_lookup", "high", "E600007")]
        assert reasons(alerts) == {"old_scope_after_transfer"}


def _b03_head_and_grantee(org: str, max_records: int) -> list:
    """B03's department head, and a lobby manager of `org` holding the head's complaint-handling
    grant (`AP-B03`) of up to `max_records` records."""
    grant = Approval(
        approval_id="AP-B03",
        purpose="complaint_handling",
        max_records=max_records,
        expires_ts=MERGED + 30 * DAY,
        approver_id="E700001",
        categories=["identity", "property"],
        systems=["core_banking"],
    )
    return [
        ent("E700001", "B03", role="br_dept_head"),
        ent("E700002", org, ts=MERGED - 2 * DAY, role="lobby_manager", approvals=[grant]),
    ]


def test_a_grant_by_the_merged_branchs_department_head_covers_its_staff_after_the_merger(
    policy, merged
) -> None:
    """Branch B03 merges into B01: an approval its department head signed before covers the access
    after (the signer's org read as it is at the access, as the requester's is); undeclared, the
    requester stays at B03 and it covers too. Before the fix: "not over the requester's org"."""
    ents = _b03_head_and_grantee("S0301", max_records=5)
    customers = [cust("C7000001", "S0301")]
    export = AccessEvent(
        event_id="ap-b03-1",
        ts=MERGED + DAY + 10 * HOUR,
        actor_id="E700002",
        system="core_banking",
        action="export",
        subject_ids=["C7000001"],
        fields=["customer_name", "account_balance"],
        purpose="complaint_handling",
        approval_id="AP-B03",
    )
    assert monitor(policy, ents, customers, [export]) == []
    assert monitor(merged, ents, customers, [export]) == []


def test_a_batch_across_the_merger_judges_each_read_by_the_org_tree_at_its_time(merged) -> None:
    """bulk_query asks what an approval covers once per kind of access in a batch: the mergers passed
    by a read's time are of its kind. A lobby manager of S0101 reads under a grant by B03's department
    head, 120 customers in the quarter hour before B03 merges into B01 (the head is over no org of
    hers) and 120 in the quarter hour after (B01's head now): in one batch, the 120 before alone."""
    ents = _b03_head_and_grantee("S0101", max_records=500)
    reads = [
        AccessEvent(
            event_id=f"ap-b03-{i}",
            ts=MERGED - 15 * 60_000 + i * 7_500,
            actor_id="E700002",
            system="core_banking",
            action="query",
            subject_ids=[f"C{7_100_000 + i:07d}"],
            fields=["customer_name", "account_balance"],
            purpose="complaint_handling",
            approval_id="AP-B03",
        )
        for i in range(240)
    ]
    (a,) = [a for a in monitor(merged, ents, [], reads) if a.detector == "bulk_query"]
    assert a.counts["customers"] == 120 and a.last_seen < MERGED, a.summary
    assert "not over the requester's org S0101" in a.summary


# -- a campaign approved for the outlet's customers before the merger ---------------------------------
def _campaign(audience: list[str], customers: list[str]) -> tuple[list, list, list]:
    sms = [
        Entitlement(
            actor_id="E300011", ts=0, org_id="B01", org_path=PATHS["B01"], roles=["br_sms_submitter"]
        ),
        Entitlement(actor_id="E300012", ts=0, org_id="B01", org_path=PATHS["B01"], roles=["br_sms_approver"]),
    ]
    consents = [Consent(subject_id=c, ts=0, purpose="marketing", status="granted") for c in customers]
    pushes = [
        MarketingPushEvent(
            event_id=f"mk{i}",
            ts=MERGED + 3 * DAY + 10 * HOUR + i * 100,
            subject_id=c,
            channel="sms",
            campaign_id="CMP-B01-0108",
            purpose="marketing",
            personalized=False,
            opt_out_offered=True,
            non_personalized_option=False,
            submitter_id="E300011",
            approver_id="E300012",
            org_id="B01",
            approval_id="CA-0102",
            approved_audience=audience,
        )
        for i, c in enumerate(customers)
    ]
    return sms, consents, pushes


def test_a_campaign_approved_for_the_merged_outlet_reaches_its_customers_after_the_merger(
    policy, merged
) -> None:
    """Probe case f: the branch approved an SMS campaign for S0105's customers before the merger
    and sends it after, the customers now S0101's: undeclared, a medium for each of the first 19
    customers and one for the campaign's other 61 (offscope_marketing `campaign_rollup_subjects`)."""
    sms, consents, pushes = _campaign(["S0105"], MERGED_BOOK)
    before = monitor(policy, sms, book(MERGED), marketing=pushes, consents=consents)
    assert sorted(a.subject_count for a in before) == [1] * 19 + [len(MERGED_BOOK) - 19]
    assert {(a.detector, a.severity.value) for a in before} == {("offscope_marketing", "medium")}
    assert {k for a in before for k in a.counts if k.startswith("rule_")} == {
        "rule_audience_outside_approval"
    }
    assert monitor(merged, sms, book(MERGED), marketing=pushes, consents=consents) == []


def test_the_merged_outlets_approval_reaches_no_other_outlets_customers(merged) -> None:
    """An approval for S0105 is one for S0101 after the merger, never for S0102's customers."""
    sms, consents, pushes = _campaign(["S0105"], OTHER_BOOK)
    alerts = monitor(merged, sms, book(MERGED), marketing=pushes, consents=consents)
    assert len(alerts) == len(OTHER_BOOK)
    assert {k for a in alerts for k in a.counts if k.startswith("rule_")} == {
        "rule_audience_outside_approval"
    }


# -- the planted violation ----------------------------------------------------------------------------
def test_a_leavers_export_of_the_merged_customers_is_still_caught(merged) -> None:
    """Probe P5: a third wealth manager of S0105, leaving the day after, exports 200 of the merged
    customers from the CRM the evening before: the merger makes them her org's, not her export's."""
    customers = [f"C{5_100_000 + i:07d}" for i in range(200)]
    ents = [
        *staff(MERGED),
        ent("E600003", "S0105"),
        ent("E600003", "S0101", MERGED),
        ent("E600003", "S0101", MERGED + 4 * DAY + 18 * HOUR, status="terminated"),
    ]
    export = [
        AccessEvent(
            event_id=f"p5_{k}",
            ts=MERGED + 3 * DAY + 19 * HOUR + k * 60_000,
            actor_id="E600003",
            system="crm",
            action="export",
            subject_ids=customers[k * 50 : (k + 1) * 50],
            row_count=50,
            fields=["customer_name", "mobile_phone", "assets"],
            purpose="wealth_advice",
        )
        for k in range(4)
    ]
    alerts = monitor(merged, ents, book(CATCH_UP, MERGED_BOOK + customers), [*work(), *export])
    assert said(alerts) == [("bulk_query", "high", "E600003"), ("unauthorized_lookup", "medium", "E600003")]
    assert reasons([a for a in alerts if a.detector == "unauthorized_lookup"]) == {
        "c2_takeout_without_approval"
    }
