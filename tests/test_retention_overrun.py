"""Retention-overrun behaviour through the Engine: each rule fires on a case that barely breaks it
and stays silent on the work next to it (deleted a day before the deadline, a request executed on
day 14, a read an hour before the deletion); clocks start at collection, account closure or the end
of the relationship; the end of a finite input never fires a deadline still ahead; batches,
restores and late lifecycle events give the same alerts."""

from __future__ import annotations

import json
import re
import shutil
from datetime import date, datetime
from itertools import permutations
from pathlib import Path
from typing import Any

import pytest
from conftest import T0, entitlement, fed, refs

import policy as policy_module
from detectors import load_detectors
from detectors.base import Finding
from detectors.retention_records import Customer, Record, left
from policy.catalog import Catalog
from schemas.models import AccessEvent, LifecycleEvent, TransferEvent
from streams.alert_query import records_and_customers
from streams.alerts import latest, to_ocsf
from streams.codecs import Decoder
from streams.engine import Engine, rekey
from streams.pseudonym import Pseudonymizer
from streams.replay import replay

HOUR, DAY = 3_600_000, 86_400_000
CST = 8 * HOUR  # T0 is 08:00 in Beijing: a day's 24:00 there is T0 + n x DAY - CST
KEY = b"unit-test-key-0123456789"
pz = Pseudonymizer(KEY)


def lc(stage: str, rid: str = "R1", subject: str | None = "C1", day: float = 0, **kw: Any) -> LifecycleEvent:
    """A lifecycle event `day` days after T0 (negative: before), or at `ts`."""
    ts = kw.pop("ts", T0 + int(day * DAY))
    return LifecycleEvent(
        event_id=f"{stage}-{rid}-{ts}", ts=ts, record_id=rid, subject_id=subject, stage=stage,
        system=kw.pop("system", "crm"), **kw,
    )  # fmt: skip


def collect(rid: str = "R1", subject: str = "C1", day: float = 0, cats: tuple[str, ...] = ("mobile_phone",), purpose: str = "customer_service", **kw: Any) -> LifecycleEvent:  # fmt: skip
    return lc("collect", rid, subject, day, categories=list(cats), purpose=purpose, **kw)


def read(rid: str = "R1", subject: str = "C1", day: float = 0, actor: str = "e1", **kw: Any) -> AccessEvent:
    ts = T0 + int(day * DAY)
    kw = {"system": "crm", "action": "view", "fields": ["mobile_phone"]} | kw
    return AccessEvent(
        event_id=f"read-{rid}-{ts}",
        ts=ts,
        actor_id=actor,
        subject_ids=[subject, "C9"],
        record_ids=[rid],
        **kw,
    )


def sent(rid: str = "R1", subject: str = "C1", day: float = 0) -> TransferEvent:
    ts = T0 + int(day * DAY)
    return TransferEvent(
        event_id=f"sent-{rid}-{ts}", ts=ts, transfer_id="T1", sender_system="crm", recipient_id="proc_call_center",
        recipient_type="processor", categories=["mobile_phone"], record_count=1, subject_count=1,
        subject_ids=[subject], record_ids=[rid], encrypted=True, deidentified=True, public_network=True,
    )  # fmt: skip


def tick(day: float) -> LifecycleEvent:
    """Another customer's record, to move event time on to `day`."""
    return collect(f"tick{day}", "C-other", day, purpose="account_service")


def final_alerts(e: Engine, events: list[Any], batch: int) -> list[Any]:
    """Lifecycle, access and transfer events fed in time order, `batch` at a time, the clock advanced
    after each; drained: the latest revision of each alert."""
    alerts = []
    events = sorted(events, key=lambda ev: ev.ts)
    for i in range(0, len(events), batch):
        chunk = events[i : i + batch]
        for stream, cls in (
            ("lifecycle", LifecycleEvent),
            ("access", AccessEvent),
            ("transfer", TransferEvent),
        ):
            part = [ev for ev in chunk if isinstance(ev, cls)]
            alerts += e.process(stream, stream, 0, fed(stream, part, stream, i))
        alerts += e.advance()
    latest: dict[str, Any] = {}
    for a in sorted(alerts + e.drain(), key=lambda a: a.revision):
        latest[a.alert_id] = a
    return list(latest.values())


@pytest.fixture
def spec(policy):
    return next(s for s in load_detectors(policy) if s.kind == "retention_overrun")


@pytest.fixture
def run(spec, catalog):
    """Feed events (lifecycle, access, transfer) in time order, `batch` at a time per stream, then
    drain; returns the final alerts by rule."""

    def go(events: list[Any], batch: int = 10_000, engine: Engine | None = None) -> dict[str, list]:
        by_rule: dict[str, list] = {}
        for a in final_alerts(engine or Engine([spec], catalog, pseudonymize=pz), events, batch):
            by_rule.setdefault(a.summary and _rule(a), []).append(a)
        return by_rule

    return go


def _rule(alert: Any) -> str:
    return next(r for r in RULES if alert.title_en == RULE_TITLES[r])


RULES = (
    "retention_expired",
    "deletion_request_overdue",
    "deletion_request_unanswered",
    "used_after_deadline",
    "used_while_withheld",
    "used_after_deletion",
    "destruction_record_incomplete",
    "foreign_c3_stored",
    "removed_before_minimum",
    "collected_after_relationship_ended",
    "collected_without_consent",
    "minor_collected_without_consent",
    "card_data_on_client",
    "biometric_with_identity",
)
RULE_TITLES: dict[str, str] = {}


@pytest.fixture(autouse=True)
def _titles(spec) -> None:
    RULE_TITLES.update({r: spec.params.rules[r].title_en for r in RULES})


LOCATION = {"cats": ("location_trace",), "purpose": "branch_service", "system": "mobile_banker"}


# -- retention deadlines ------------------------------------------------------------------------------
def test_location_kept_a_day_past_its_30_days_fires_once(run) -> None:
    """Collected 30 Nov 08:00 (Beijing): its 30 days are 1-30 Dec (Civil Code art. 201, 203, the
    bank's calendar, as a deletion request's 15), so it is due by 24:00 on 30 Dec."""
    got = run([collect(subject="CUST42", day=-32, **LOCATION), tick(0)])
    (a,) = got["retention_expired"]
    assert a.window_start == T0 - 32 * DAY and a.window_end == T0 - DAY - CST
    assert "30-day retention" in a.summary and "from collect 2025-11-30, due 2025-12-30" in a.summary
    assert a.subjects_sample == [pz("CUST42")] and "CUST42" not in a.summary
    assert a.jr_class == "C2" and "location" in a.summary
    # the law first (PIPL art. 19: the shortest period; art. 47 ¶1(二): delete once it has run), then the
    # commentary the rule was written from
    assert a.regulation[0].startswith("《个人信息保护法》第十九条: 除法律、行政法规另有规定外")
    assert a.regulation[1].startswith("《个人信息保护法》第四十七条第一款(二)")
    assert a.regulation[2].startswith("汉盛《")
    assert a.title_zh and a.title_en


def test_location_deleted_a_day_before_its_deadline_is_silent(run) -> None:
    assert run([collect(day=-31, **LOCATION), lc("delete", day=-2, method="purge"), tick(0)]) == {}


def test_a_deletion_a_day_after_the_deadline_is_still_an_overrun(run) -> None:
    """Collected 22 Nov: due by 24:00 on 22 Dec; anonymized 23 Dec 08:00."""
    got = run([collect(day=-40, **LOCATION), lc("anonymize", day=-9), tick(0)])
    assert [a.window_end for a in got["retention_expired"]] == [T0 - 9 * DAY - CST]


@pytest.mark.parametrize(
    ("method", "anonymizes"),
    [("AES-256加密", False), ("encrypted with KMS key", False), ("SHA-256哈希替换客户号", False),
     ("去标识化", False), ("泛化与抑制 (k-匿名)", True), ("AES加密后销毁密钥", True), ("shared generalization", True),
     # a key said not destroyed erases nothing (a review's)
     ("AES-256加密，未销毁密钥", False), ("AES encryption, key destruction pending", False),
     ("encrypted; crypto-shred skipped", False),
     # how well a key was destroyed is no negation (a review's)
     ("AES加密，不可恢复的密钥销毁", True), ("AES加密后不可逆密钥销毁", True), ("AES加密后无备份密钥销毁", True)],
)  # fmt: skip
def test_an_anonymization_that_only_encrypts_or_hashes_leaves_the_record_held(
    run, method, anonymizes
) -> None:
    """A probe's CRM "anonymized" a location trace on day 19 with AES-256加密: the record counted as
    gone in time. Encrypted or hashed data is restored with a key or a table of customer numbers:
    去标识化 at most (seed 002 §六.2(1): 不应仅使用加密技术; PIPL art. 73(4)). A key destroyed with it
    erases (crypto-shredding), and a method that only shares a word's letters is none of them."""
    got = run([collect(day=-40, **LOCATION), lc("anonymize", day=-20, method=method), tick(0)])
    assert (got == {}) is anonymizes, got
    if not anonymizes:
        (a,) = got["retention_expired"]
        assert a.status.value == "open"


@pytest.mark.parametrize(
    ("method", "anonymizes"),
    [("脱敏处理", False), ("数据脱敏", False), ("掩码处理(手机号中间四位*)", False), ("masking", False),
     ("Data-Masking", False), ("部分遮蔽", False), ("字段脱敏后保留客户号", False), ("redacted", False),
     # an erasing term beside the mask is the mask itself, or the original's: the masked copy stays linked
     ("掩码覆盖中间四位", False), ("脱敏后三次覆写原始数据", False),
     # a mask said not made masks nothing: the rest of the method decides
     ("未脱敏，直接k-匿名泛化", True), ("无需掩码, 泛化与抑制", True), ("no masking; generalization", True),
     ("泛化与抑制 (k-匿名)", True), ("damask pattern generalization", True)],
)  # fmt: skip
def test_an_anonymization_that_only_masks_leaves_a_deletion_request_open(run, method, anonymizes) -> None:
    """A probe's CRM answered a deletion request with an `anonymize` that masked (脱敏处理, 掩码, masking,
    部分遮蔽), and the request counted answered: what a mask leaves names the customer, 去标识化 at most
    (seed 004 流程描述(4)⑤ 匿名化、去标识化等手段…脱敏处理; 定义(1) 不包括匿名化处理后的信息)."""
    asked = lc("deletion_requested", day=-31)
    got = run([collect(day=-100), asked, lc("anonymize", day=-28, method=method), tick(0)])
    assert (got == {}) is anonymizes, got
    if not anonymizes:
        (a,) = got["deletion_request_overdue"]
        assert a.status.value == "open"


def test_an_overrun_stays_open_until_the_record_goes_then_closes(run) -> None:
    """The open overruns are the backlog on the lifecycle dashboard: a late deletion closes its alert,
    with the same final content whether the deletion or the deadline's timer was processed first."""
    (kept,) = run([collect(day=-40, **LOCATION), tick(0)])["retention_expired"]
    assert kept.status.value == "open" and "removed" not in kept.summary
    # due by 24:00 on 22 Dec (Beijing); event time passes it at 02:00, the record goes at 08:00
    events = [collect(day=-40, **LOCATION), tick(-9.25), lc("anonymize", day=-9), tick(0)]
    finals = [run(events, batch=b)["retention_expired"] for b in (1, 10)]
    assert [a.revision for (a,) in finals] == [2, 1]  # timer first, then the deletion; or both at once
    for (a,) in finals:
        assert a.status.value == "closed" and a.alert_id == kept.alert_id
        assert (a.window_end, a.last_seen) == (T0 - 9 * DAY - CST, T0 - 9 * DAY - CST)
        assert a.summary.endswith("; removed 2025-12-23, 1 day late")


def test_an_earlier_collection_reported_after_the_overrun_closes_the_same_alert(run, spec, catalog) -> None:
    """The location trace overran its 30 days. A backfill then reports its first collection, five
    days earlier, and the deletion follows: the one alert closes, counted from the earlier day."""
    e = Engine([spec], catalog, pseudonymize=pz)
    (a,) = run([collect(day=-40, **LOCATION), tick(0)], engine=e)["retention_expired"]
    (b,) = run([collect(day=-45, **LOCATION), lc("delete", day=0.5), tick(1)], engine=e)["retention_expired"]
    assert (b.alert_id, b.status.value, b.revision) == (a.alert_id, "closed", 2)
    assert (a.window_start, b.window_start) == (T0 - 40 * DAY, T0 - 45 * DAY)


def test_an_earlier_deletion_request_reported_after_the_overdue_alert_closes_the_same_alert(run, spec, catalog) -> None:  # fmt: skip
    e = Engine([spec], catalog, pseudonymize=pz)
    (a,) = run([collect(day=-100), lc("deletion_requested", day=-20), tick(0)], engine=e)[
        "deletion_request_overdue"
    ]
    got = run([lc("deletion_requested", day=-25), lc("delete", day=0.5), tick(1)], engine=e)
    (b,) = got["deletion_request_overdue"]
    assert (b.alert_id, b.status.value) == (a.alert_id, "closed")
    assert (a.window_start, b.window_start) == (T0 - 20 * DAY, T0 - 25 * DAY)


LEGACY_CASES = {  # rule: (events before the upgrade, events after, the alert's key)
    "retention_expired": (
        [collect(day=-40, **LOCATION), tick(0)],
        [collect(day=-45, **LOCATION), lc("delete", day=0.5), tick(1)],  # its clock moves back
        "R1:location_trace",
    ),
    "deletion_request_overdue": (
        [collect(day=-40), lc("deletion_requested", day=-20), tick(0)],
        [lc("deletion_requested", day=-25), lc("delete", day=0.5), tick(1)],  # an earlier request
        "R1",
    ),
    "used_after_deletion": (
        [collect(day=-3), lc("delete", day=-1.5), read(day=-1)],
        [lc("anonymize", day=-2), read(day=-0.5, actor="e2"), tick(0)],  # an earlier removal first
        "R1",
    ),
}


@pytest.mark.parametrize("rule", LEGACY_CASES)
def test_an_alert_raised_before_anchors_keeps_its_id_when_its_start_moves(run, spec, catalog, rule) -> None:
    """State of an earlier lifemon, whose alert hashed its start: an event that moves the start
    (an earlier collection, request or removal) comes before the alert's next revision, which
    still lands on the alert the earlier lifemon opened."""
    before, after, key = LEGACY_CASES[rule]
    first = Engine([spec], catalog, pseudonymize=pz)
    (a,) = run(before, engine=first)[rule]
    held = first.tasks[(0, spec.kind)].keys.get(pz("C1"))
    fired = held.records["R1"].fired
    for anchor in [k for k in fired if k.endswith("@")]:
        del fired[anchor]
    first.tasks[(0, spec.kind)].keys.touch(pz("C1"))
    restored = Engine([spec], catalog, pseudonymize=pz)
    restored.restore(0, first.changes(0))
    (b,) = run(after, engine=restored)[rule]
    earlier_id = Finding(spec.kind, a.rule_id, key, a.window_start, 0, a.severity, 1, False, "", "").alert_id
    assert b.alert_id == earlier_id != a.alert_id and b.window_start != a.window_start


def test_a_record_inside_its_retention_at_the_end_of_the_input_does_not_fire(run, spec, catalog) -> None:
    """Collected 1 Dec 10:24 (Beijing): due by 24:00 on Wed 31 Dec, not at 10:24 (30 x 24 h)."""
    engine = Engine([spec], catalog, pseudonymize=pz)
    assert run([collect(day=-30.9, **LOCATION), tick(-1)], engine=engine) == {}
    # the live run goes on: on its last day, still silent; once event time passes it, it fires
    assert run([tick(-0.8)], engine=engine) == {}
    got = run([tick(-0.3)], engine=engine)
    assert [a.window_end for a in got["retention_expired"]] == [T0 - CST]


def test_a_nightly_purge_within_the_banks_grace_is_in_time(policy, catalog) -> None:
    """A probe: location traces purged at 02:00 the day after their 30 days were one "1 day late"
    alert each. A bank whose purge job runs after midnight sets `removal_grace_hours`; the shipped
    policy keeps the last day the last day."""

    graced = policy.model_copy(
        update={"retention": policy.retention.model_copy(update={"removal_grace_hours": 24})}
    )
    spec = next(s for s in load_detectors(graced) if s.kind == "retention_overrun")
    location = {"cats": ("location_trace",), "purpose": "branch_service", "system": "mobile_banking"}
    trace = collect("L1", day=-31, **location)  # its 30 days end at 24:00 on 31 Dec, Beijing (T0 - 8 h)
    purged = lc("delete", "L1", ts=T0 - 6 * 3_600_000)  # the purge job's run at 02:00 Beijing
    for p, fired in ((graced, False), (policy, True)):
        kind = next(s for s in load_detectors(p) if s.kind == "retention_overrun") if p is policy else spec
        alerts = final_alerts(Engine([kind], Catalog(p), pseudonymize=pz), [trace, purged, tick(2)], 10_000)
        assert bool(alerts) is fired, [a.summary for a in alerts]
        assert not fired or alerts[0].summary.endswith("1 day late")


def test_account_data_counts_from_the_account_closure(run) -> None:
    keep = 3653  # ten years (AML Law art. 34, 2024) ending on 1 Jan 2026: three 29 Februaries between
    opened = collect(day=-5000, cats=("payment_account_no",), purpose="account_service")
    assert run([opened, lc("account_closed", day=-keep + 1), tick(0)]) == {}  # a day left
    got = run([opened, lc("account_closed", day=-keep - 1), tick(0)])
    (a,) = got["retention_expired"]
    assert a.window_start == T0 - (keep + 1) * DAY and "account_closed" in a.summary


def test_a_closed_account_starts_its_own_clock_and_the_customers_other_accounts_stay_open(run) -> None:
    """The AML Law counts account data from the closure of that account: a customer who closes one
    of two accounts keeps the other, whose data is neither expired nor used past a deadline."""
    keep, acct = 3653, {"cats": ("payment_account_no",), "purpose": "account_service"}
    a, b = collect("ACC-A", day=-6000, **acct), collect("ACC-B", day=-5000, **acct)
    got = run([a, b, lc("account_closed", rid="ACC-A", day=-keep - 1), read("ACC-B", day=-0.5), tick(0)])
    assert {r: [x.summary.split()[1] for x in al] for r, al in got.items()} == {
        "retention_expired": ["ACC-A"]
    }


def test_a_closure_of_an_account_the_log_does_not_track_leaves_the_customers_open_account_open(run) -> None:
    """A probe: the card system logged the closure of card account CARD-77 under its own id, which no
    collection names; the customer's current account ACC-2 stayed open, and ten years on it was
    "kept past its retention" and each teller read of it a high use past its deadline. The log
    names the account that closed, and it is not ACC-2. What the untracked closure was kept for
    still holds: a record that is no account (a KYC file's account number, due diligence) cannot
    say which account's data it held, and counts from it."""
    keep, acct = 3653, {"cats": ("payment_account_no",), "purpose": "account_service"}
    opened, card = collect("ACC-2", day=-6000, **acct), lc("account_closed", rid="CARD-77", day=-keep - 1)
    assert run([opened, card, read("ACC-2", day=-0.5, purpose="account_service"), tick(0)]) == {}
    diligence = collect("KYC-A", day=-6000, cats=("payment_account_no",), purpose="kyc_aml")
    got = run([opened, diligence, card, tick(0)])
    assert [x.summary.split()[1] for x in got["retention_expired"]] == ["KYC-A"]
    assert "from account_closed" in got["retention_expired"][0].summary
    # the open account still counts from the end of the relationship, once its last product closed
    ended = lc("relationship_ended", rid="KYC-A", day=-keep - 1)
    got = run([opened, card, ended, tick(0)])
    assert [x.summary.split()[1] for x in got["retention_expired"]] == ["ACC-2"]


def test_a_closure_logged_before_its_record_was_tracked_is_that_records() -> None:

    held = Customer()
    held.close_account("ACC-A", 5)  # the closure delivered before the account's collection
    held.track("ACC-B", Record(1, "core_banking"))
    assert held.clock("account_closed", held.records["ACC-B"]) == 5  # as yet, no record is named
    held.track("ACC-A", Record(2, "core_banking"))
    assert held.clock("account_closed", held.records["ACC-A"]) == 5
    assert held.clock("account_closed", held.records["ACC-B"]) is None
    # an earlier lifemon's customer-wide closure still counts for every record
    legacy = Customer.from_json(
        {"r": {"R1": [1, "crm", "C2", ["account"], None, 0, 0, {}]}, "c": 7, "e": 0, "u": {}}
    )
    assert legacy.clock("account_closed", legacy.records["R1"]) == 7
    assert Customer.from_json(held.to_json()).to_json() == held.to_json()


def test_identity_counts_from_the_end_of_the_relationship_not_the_closure(run) -> None:
    kyc = collect(day=-6000, cats=("id_document_no", "kyc_photo"), purpose="kyc_aml")
    closed = lc("account_closed", rid="A9", day=-3700)  # an account closed long ago; the relationship went on
    assert run([kyc, closed, lc("relationship_ended", rid="A9", day=-1000), tick(0)]) == {}
    got = run([kyc, closed, lc("relationship_ended", rid="A9", day=-3660), tick(0)])
    assert len(got["retention_expired"]) == 1


def test_a_returning_customer_keeps_the_identity_the_law_keeps_while_the_relationship_lasts(
    run, spec, catalog
) -> None:
    """A probe: KYC collected, the relationship ended, the customer came back a year later and opened
    an account, still a customer: the KYC record expired ten years from the first end, and its
    deletion then, which the AML Law forbids while the relationship lasts, was taken for a late one.
    A relationship begun again runs on; so does an account collected again after its closure."""
    kyc = collect("KYC-1", day=-5000, cats=("id_document_no", "customer_name"), purpose="kyc_aml")
    ended = lc("relationship_ended", rid="KYC-1", day=-4600)
    back = collect("ACC-2", day=-4200, cats=("payment_account_no",), purpose="account_service")
    assert run([kyc, ended, back, tick(0)]) == {}
    # the relationship's later collections are no new return (a review: each made the one before
    # it "collected after the relationship ended")
    more = [
        collect(f"CARD-{i}", day=-4100 + i, cats=("payment_account_no",), purpose="account_service")
        for i in range(3)
    ]
    assert run([kyc, ended, back, *more, tick(0)]) == {}
    (early,) = run([kyc, ended, back, lc("delete", "KYC-1", day=-10), tick(0)])["removed_before_minimum"]
    assert "KYC-1" in early.summary
    assert len(run([kyc, ended, tick(0)])["retention_expired"]) == 1  # no return: it expired
    # the return reported after the deletion (a review's): the same verdict, not a late removal
    e = Engine([spec], catalog, pseudonymize=pz)
    run([kyc, ended, lc("delete", "KYC-1", day=-10), tick(-5)], engine=e)
    (again,) = run([back, tick(0)], engine=e)["removed_before_minimum"]
    assert again.alert_id == early.alert_id
    # an overrun raised before the return was heard ends with it (a review: it stayed open)
    e = Engine([spec], catalog, pseudonymize=pz)
    (raised,) = run([kyc, ended, tick(-5)], engine=e)["retention_expired"]
    (ends,) = run([back, tick(0)], engine=e)["retention_expired"]
    assert raised.status.value == "open" and ends.alert_id == raised.alert_id
    assert ends.status.value == "closed" and "the relationship began again " in ends.summary
    acct = {"cats": ("payment_account_no",), "purpose": "account_service"}
    closed = [collect("ACC-A", day=-5000, **acct), lc("account_closed", rid="ACC-A", day=-4700)]
    assert run([*closed, collect("ACC-A", day=-4300, **acct), tick(0)]) == {}  # reopened
    assert len(run([*closed, tick(0)])["retention_expired"]) == 1
    # due diligence on the closed account (the law's duty) reopens nothing
    diligence = collect("ACC-A", day=-4300, cats=("payment_account_no",), purpose="kyc_aml")
    assert len(run([*closed, diligence, tick(0)])["retention_expired"]) == 1


def test_a_rule_with_purposes_covers_only_them(run) -> None:
    tags = {"cats": ("marketing_tags",), "system": "crm"}
    got = run([collect(day=-366, purpose="marketing", **tags), collect("R2", day=-900, purpose="account_service", **tags), tick(0)])  # fmt: skip
    assert [a.summary.split()[1] for a in got["retention_expired"]] == ["R1"]


def _folder(tmp_path: Path, edits: dict[str, list[tuple[str, str]]]) -> Any:
    """The shipped policy folder copied, each file's lines (not its comments) edited by (pattern,
    replacement): a bank's change to it, loaded."""
    folder = tmp_path / "policy"
    shutil.copytree(Path(policy_module.__file__).parent, folder)
    for name, subs in edits.items():
        lines = (folder / name).read_text(encoding="utf-8").splitlines(keepends=True)
        for pattern, new in subs:
            lines = [ln if ln.lstrip().startswith("#") else re.sub(pattern, new, ln) for ln in lines]
        (folder / name).write_text("".join(lines), encoding="utf-8")
    return policy_module.load_policy(folder)


def _restarted(before: Engine, policy: Any) -> Engine:
    """`before`'s state restored by an engine running `policy`: `lifemon run` restarted on a changed
    folder."""
    return _restarted_with(policy, before.changes(0))


def _restarted_with(policy: Any, changes: list[Any]) -> Engine:
    """An engine running `policy` restored from a changelog's `changes`."""
    kind = next(s for s in load_detectors(policy) if s.kind == "retention_overrun")
    after = Engine([kind], Catalog(policy), pseudonymize=pz)
    after.restore(0, changes)
    return after


# the purpose marketing renamed marketing_promo as docs/operations.md "Changing policy" says: the old
# id among the new one's names, every id pointing at it renamed
MARKETING_RENAMED = {
    "purposes.yaml": [
        (r"^  marketing:$", "  marketing_promo:"),
        (r"(?<=[\[ ,])marketing(?=[\],])", "marketing_promo"),
        (r"also: \[营销推广", "also: [marketing, 营销推广"),
    ],
    "retention.yaml": [(r"\[marketing\]", "[marketing_promo]")],
    "detectors/offscope_marketing.yaml": [
        (r"marketing_purpose: marketing$", "marketing_purpose: marketing_promo")
    ],
}


def test_a_purpose_renamed_at_a_restart_keeps_the_deadlines_of_the_records_held_under_its_old_id(
    run, spec, catalog, tmp_path
) -> None:
    """probe_v1 F3: marketing renamed marketing_promo at a restart, its old id kept among its names
    (docs/operations.md "Changing policy"): each profile collected for marketing before the restart
    is still kept 365 days (retention.yaml marketing_profile). Its deadline was dropped, silently:
    the record's purpose, kept as the id of its day, was compared raw with the rule's."""
    renamed = _folder(tmp_path, MARKETING_RENAMED)
    assert "marketing_promo" in renamed.purposes.purposes and "marketing" not in renamed.purposes.purposes
    tags = {"cats": ("marketing_tags",), "system": "crm"}
    first = Engine([spec], catalog, pseudonymize=pz)
    assert "retention_expired" not in run(
        [collect(day=-370, purpose="marketing", **tags), tick(-300)], engine=first
    )
    (a,) = run([tick(0)], engine=_restarted(first, renamed))["retention_expired"]
    assert a.summary.startswith("record R1 on crm") and "365-day retention (marketing_profile" in a.summary


# the system crm renamed crm_core, crm kept among its names, every id pointing at it renamed
CRM_RENAMED = {
    "organisation.yaml": [
        (r"(?<=[\[ ,])crm(?=[\],])", "crm_core"),
        (r"^  crm: \{zh: 客户关系管理系统, en: customer relationship management, also: \[",
         "  crm_core: {zh: 客户关系管理系统, en: customer relationship management, also: [crm, "),
    ]
}  # fmt: skip


def test_a_copy_kept_under_a_systems_old_id_is_the_copy_its_new_id_removes(
    run, spec, catalog, tmp_path
) -> None:
    """crm renamed crm_core at a restart, crm kept among its names: a location trace collected on crm
    before it, collected again and deleted on crm_core within its 30 days after it, is gone. The
    copy kept as crm stayed held for ever, and the trace was an overrun (probe_v1 F3, systems)."""
    renamed = _folder(tmp_path, CRM_RENAMED)
    assert renamed.organisation.systems["crm_core"].also == ["crm", "客户关系管理"]
    trace = {**LOCATION, "system": "crm"}
    first = Engine([spec], catalog, pseudonymize=pz)
    assert run([collect("L1", day=-40, **trace), tick(-39)], engine=first) == {}
    after = [
        collect("L1", day=-20, **{**trace, "system": "crm_core"}),
        lc("delete", "L1", day=-19, system="crm_core"),
    ]
    assert "retention_expired" not in run([*after, tick(0)], engine=_restarted(first, renamed))


def test_a_period_shortened_at_a_restart_reaches_the_records_already_held_at_the_new_deadline(
    run, spec, catalog, tmp_path, caplog
) -> None:
    """probe_v1 F6: marketing_profile's 365 days shortened to 180 at a restart. A profile collected
    250 days before is past the new deadline: it fires at once, due on its 180th day. Its timer
    was set at collection for the 365th day, and it fired only then, half a year late. A restart
    on the same rules sets nothing again."""
    shorter = _folder(tmp_path, {"retention.yaml": [(r"keep_days: 365 ", "keep_days: 180 ")]})
    assert shorter.retention.rules["marketing_profile"].keep_days == 180
    tags = {"cats": ("marketing_tags",), "system": "crm", "purpose": "marketing"}
    first = Engine([spec], catalog, pseudonymize=pz)
    assert "retention_expired" not in run([collect(day=-250, **tags), tick(-240)], engine=first)
    with caplog.at_level("INFO", logger="lifemon.retention_overrun"):
        (a,) = run([tick(-5)], engine=(after := _restarted(first, shorter)))["retention_expired"]
    assert "180-day retention (marketing_profile" in a.summary and a.window_end < T0 - 60 * DAY
    assert "deadlines of 1 records of 1 customers set again" in caplog.text
    caplog.clear()
    with caplog.at_level("INFO", logger="lifemon.retention_overrun"):
        assert run([tick(0)], engine=_restarted(after, shorter)) == {}
    assert "set again" not in caplog.text
    # the bank's calendar moves deadlines too (calendar.yaml, Civil Code art. 203): a change is swept
    edits = {"retention.yaml": [(r"keep_days: 365 ", "keep_days: 180 ")],
             "calendar.yaml": [(r"first: 2025-05-01, last: 2025-05-05", "first: 2025-05-01, last: 2025-05-04")]}  # fmt: skip
    shorter_may = _folder(tmp_path / "may", edits)
    assert shorter_may.calendar != shorter.calendar
    held = Engine([spec], catalog, pseudonymize=pz)
    run([collect(day=-250, **tags), tick(-240)], engine=held)
    saved = held.changes(0)
    saved += _restarted_with(shorter, saved).changes(0)  # the digest of `shorter`'s rules kept
    for folder, swept in ((shorter, False), (shorter_may, True)):
        caplog.clear()
        with caplog.at_level("INFO", logger="lifemon.retention_overrun"):
            _restarted_with(folder, saved)
        assert ("set again" in caplog.text) is swept, folder.calendar


# -- deletion requests --------------------------------------------------------------------------------
def test_deletion_request_overdue_after_15_days(run) -> None:
    got = run([collect(day=-100), lc("deletion_requested", day=-15.5), tick(0)])
    (a,) = got["deletion_request_overdue"]
    # requested 16 Dec 20:00 in Beijing: due by the end of its 15th day, 31 Dec (Civil Code art. 201, 203)
    assert a.severity.value == "high" and a.window_end == T0 - DAY // 3
    # the analyst is pointed to the request, and an overrun to the record's first collection
    assert a.evidence_event_ids == [f"deletion_requested-R1-{T0 - int(15.5 * DAY)}"] and a.event_count == 1
    (kept,) = run([collect(day=-900, cats=("marketing_tags",), purpose="marketing", system="crm"), collect(day=-800, cats=("marketing_tags",), purpose="marketing", system="crm"), tick(0)])["retention_expired"]  # fmt: skip
    assert kept.evidence_event_ids == [f"collect-R1-{T0 - 900 * DAY}"]


def test_deletion_request_executed_on_day_14_is_silent(run) -> None:
    assert run([lc("deletion_requested", day=-20), lc("delete", day=-6), tick(0)]) == {}


def test_deletion_request_executed_on_day_16_fires(run) -> None:
    # requested Mon 15 Dec: its 15th day is Tue 30 Dec
    got = run([lc("deletion_requested", day=-17), lc("delete", day=-1), tick(0)])
    (a,) = got["deletion_request_overdue"]
    assert a.status.value == "closed" and a.summary.endswith("removed 2025-12-31, 1 day late")
    (still,) = run([lc("deletion_requested", day=-17), tick(0)])["deletion_request_overdue"]
    assert still.status.value == "open" and still.alert_id == a.alert_id


# -- a last day on a rest day (Civil Code art. 203 ¶1, policy/calendar.yaml) -------------------------
def bj(when: str) -> int:
    """Epoch ms of a Beijing wall-clock time, '2026-10-08 09:30'."""
    return int(datetime.fromisoformat(f"{when}+08:00").timestamp() * 1000)


def at(stage: str, when: str, rid: str = "R1", **kw: Any) -> LifecycleEvent:
    return lc(stage, rid, ts=bj(when), **kw)


def later(when: str) -> LifecycleEvent:
    """Another customer's record, to move event time on to `when` (Beijing)."""
    return collect(f"tick-{when}", "C-other", ts=bj(when), purpose="account_service")


def test_a_deletion_request_due_in_a_holiday_is_due_the_day_after_it(run, spec, catalog, policy) -> None:
    """A probe's: 50 requests of 20 Sep 2026 executed on Thu 8 Oct, the first working day after the
    National Day holiday (1-7 Oct), were 50 high "3 days late". Their 15th day, 5 Oct, is in the
    holiday: the period ends on the day after it (art. 203 ¶1), 8 Oct, and a request executed then
    is in time; one still open is not overdue in the holiday, and is from 9 Oct on."""
    asked = [collect(day=-300), at("deletion_requested", "2026-09-20 10:00")]
    assert run([*asked, at("delete", "2026-10-08 09:30"), later("2026-11-01 10:00")]) == {}
    e = Engine([spec], catalog, pseudonymize=pz)
    assert run([*asked, later("2026-10-05 23:00"), later("2026-10-08 23:59")], engine=e) == {}
    (a,) = run([later("2026-10-09 00:01")], engine=e)["deletion_request_overdue"]
    assert a.status.value == "open" and a.window_end == bj("2026-10-09 00:00")
    # the day counted and why it moved, or "due 2026-10-08" would read as three days' grace
    assert (
        "within 15 days (due 2026-10-08: its last day, 2026-10-05, fell in 国庆节, Civil Code art. 203)"
        in (a.summary)
    )
    (late,) = run([at("delete", "2026-10-09 09:30")], engine=e)["deletion_request_overdue"]
    assert late.alert_id == a.alert_id and late.summary.endswith("removed 2026-10-09, 1 day late")
    # the lifecycle dashboard dates it due as the detector does
    assert policy.deletion_due(bj("2026-09-20 10:00")) == bj("2026-10-09 00:00")


def test_a_last_day_on_a_weekend_moves_to_monday_and_a_working_saturday_does_not(run) -> None:
    """Weekends are rest days (法定休假日 include the weekly 休息日), but not a weekend day the
    State Council makes a working day (调休上班): Sat 10 Oct 2026 is one."""
    # requested 2 Oct, in the holiday (art. 201 counts from the next day all the same): the 15th day
    # is Sat 17 Oct, so due by the end of Mon 19 Oct
    weekend = [collect(day=-300), at("deletion_requested", "2026-10-02 10:00")]
    assert run([*weekend, at("delete", "2026-10-19 18:00"), later("2026-11-01 10:00")]) == {}
    (a,) = run([*weekend, at("delete", "2026-10-20 09:00"), later("2026-11-01 10:00")])["deletion_request_overdue"]  # fmt: skip
    assert "its last day, 2026-10-17, fell on a weekend" in a.summary and a.summary.endswith("1 day late")
    # requested 25 Sep: the 15th day is Sat 10 Oct, a working day: due by its end, not Monday's
    working = [collect(day=-300), at("deletion_requested", "2026-09-25 10:00")]
    (b,) = run([*working, at("delete", "2026-10-11 09:00"), later("2026-11-01 10:00")])["deletion_request_overdue"]  # fmt: skip
    assert "(due" not in b.summary and b.summary.endswith("removed 2026-10-11, 1 day late")


def test_a_retention_period_ending_in_a_holiday_moves_and_a_minimum_does_not(run) -> None:
    """A location trace's 30 days from 3 Sep 2026 end on 3 Oct, in the holiday: due by the end of
    8 Oct. A statutory minimum does not move (`Policy.retention_end`): a transaction record's ten
    years from 5 Oct 2016 end with 5 Oct 2026, and its removal on 6 Oct, in the holiday, is lawful,
    not "before the minimum" (and inside its retention rule's ten years, moved to 8 Oct)."""
    trace = at("collect", "2026-09-03 10:00", categories=["location_trace"],
               purpose="branch_service", system="mobile_banker")  # fmt: skip
    gone = {"system": "mobile_banker"}
    assert run([trace, at("delete", "2026-10-08 20:00", **gone), later("2026-11-01 10:00")]) == {}
    (a,) = run([trace, at("delete", "2026-10-09 08:00", **gone), later("2026-11-01 10:00")])[
        "retention_expired"
    ]
    assert "due 2026-10-08: its last day, 2026-10-03, fell in 国庆节, Civil Code art. 203" in a.summary
    assert a.summary.endswith("removed 2026-10-09, 1 day late")
    stored = at("store", "2016-10-05 10:00", categories=["transaction_record"], purpose="payment", system="core_banking")  # fmt: skip
    assert (
        run([stored, at("delete", "2026-10-06 10:00", system="core_banking"), later("2026-11-01 10:00")])
        == {}
    )
    # the day before its last: early, as before
    got = run([stored, at("delete", "2026-10-04 10:00", system="core_banking"), later("2026-11-01 10:00")])
    assert set(got) == {"removed_before_minimum"}


def test_a_policy_folder_without_a_calendar_moves_no_deadline_and_says_so(
    tmp_path, spec, caplog: pytest.LogCaptureFixture
) -> None:
    """A bank's folder written before lifemon read calendar.yaml: deadlines as before (the probe's
    request executed on 8 Oct is late), and a start-up warning names the file and the fix."""
    import shutil

    from policy import DEFAULT_DIR, load_policy
    from policy.catalog import Catalog

    folder = tmp_path / "policy"
    shutil.copytree(
        DEFAULT_DIR, folder, ignore=shutil.ignore_patterns("*.py", "__pycache__", "calendar.yaml")
    )
    with caplog.at_level("WARNING", logger="lifemon.policy"):
        older = load_policy(folder)
    (said,) = [r.getMessage() for r in caplog.records if "calendar.yaml" in r.getMessage()]
    assert str(folder / "calendar.yaml") in said and "Civil Code art. 203" in said and "copy " in said
    (spec_older,) = [s for s in load_detectors(older) if s.kind == "retention_overrun"]
    events = [collect(day=-300), at("deletion_requested", "2026-09-20 10:00"), at("delete", "2026-10-08 09:30"),
              later("2026-11-01 10:00")]  # fmt: skip
    alerts = final_alerts(Engine([spec_older], Catalog(older), pseudonymize=pz), events, 10_000)
    (a,) = [a for a in alerts if a.title_en == RULE_TITLES["deletion_request_overdue"]]
    assert a.summary.endswith("removed 2026-10-08, 3 days late") and "(due" not in a.summary


# -- a record held on several systems: gone when its last copy goes ----------------------------------
def copies(request: float = -39) -> list[Any]:
    """R1 collected on the CRM, copied to the warehouse the next night; a deletion request (Sun 23
    Nov: due by the end of Mon 8 Dec)."""
    return [collect(day=-100), lc("store", day=-99, system="dwh", categories=["mobile_phone"]),
            lc("deletion_requested", day=request)]  # fmt: skip


def test_a_request_answered_on_one_copy_of_two_is_overdue_and_names_the_copy_kept(run) -> None:
    """A probe: the CRM deleted R1 in time, the warehouse's copy stayed: the request was taken as
    answered. The record is gone when its last copy is (PIPL art. 47, seed 002 §六.6(1))."""
    (a,) = run([*copies(), lc("delete", day=-37), tick(0)])["deletion_request_overdue"]
    assert a.status.value == "open" and a.summary.startswith("deletion of record R1 on dwh, requested")
    # the warehouse's copy deleted too, on day 14: in time, silent; on day 16: late, closed
    assert run([*copies(), lc("delete", day=-37), lc("delete", day=-27, system="dwh"), tick(0)]) == {}
    (late,) = run([*copies(), lc("delete", day=-37), lc("delete", day=-22, system="dwh"), tick(0)])[
        "deletion_request_overdue"
    ]
    assert late.alert_id == a.alert_id and late.status.value == "closed"
    assert late.summary.endswith("removed 2025-12-10, 2 days late")
    # a purge job that logs its own name, not the data's system: it removes every copy, as before
    assert run([*copies(), lc("delete", day=-37, system="purge_job"), tick(0)]) == {}
    # every copy deleted in time, the CRM's restored from a backup: the alert names the copy back
    (back,) = run(
        [*copies(), lc("delete", day=-37), lc("delete", day=-36, system="dwh"), lc("store", day=-10), tick(0)]
    )["deletion_request_overdue"]
    assert back.summary.startswith("deletion of record R1 on crm, requested") and "restored" in back.summary


def test_a_copy_purged_before_the_request_does_not_answer_it(run) -> None:
    """A probe: the warehouse purged its copy on 10 Jan, the customer asked on 20 Jan, the CRM
    never deleted: the old purge was taken as the request's answer."""
    got = run([*copies(request=-20), lc("delete", day=-30, system="dwh"), tick(0)])
    (a,) = got["deletion_request_overdue"]
    assert a.status.value == "open" and "record R1 on crm," in a.summary


def test_a_location_the_app_deleted_and_the_warehouse_kept_is_kept_past_its_period(run) -> None:
    """A probe: a location trace collected in the app and stored in the warehouse; the app deleted
    it in its 30 days, the warehouse kept it: nothing fired."""
    trace = {"categories": ["location_trace"], "purpose": "branch_service"}
    app = lc("collect", "L1", day=-60, system="mobile_banking", **trace)
    dwh = lc("store", "L1", day=-60, system="dwh", **trace)
    (a,) = run([app, dwh, lc("delete", "L1", day=-40, system="mobile_banking"), tick(0)])["retention_expired"]
    assert a.status.value == "open" and a.summary.startswith("record L1 on dwh (location) kept past")
    assert (
        a.actor_id == "dwh"
    )  # the system that kept it: the backlog panel counts by it (a probe's blamed the app)
    assert run([app, dwh, lc("delete", "L1", day=-40, system="mobile_banking"), lc("delete", "L1", day=-35, system="dwh"), tick(0)]) == {}  # fmt: skip


def test_a_read_of_the_copy_still_held_is_no_use_after_deletion(run) -> None:
    """A probe: the warehouse purged its copy and the CRM kept R1; a CRM read of it was a high
    `used_after_deletion` on a record the bank still lawfully holds."""
    held = [collect(day=-100), lc("store", day=-99, system="dwh", categories=["mobile_phone"])]
    assert run([*held, lc("delete", day=-10, system="dwh"), read(day=-9), tick(0)]) == {}
    (a,) = run([*held, lc("delete", day=-10, system="dwh"), lc("delete", day=-8), read(day=-7), tick(0)])[
        "used_after_deletion"
    ]
    assert "deleted 2025-12-24" in a.summary  # the day its last copy went


def in_every_order(spec: Any, catalog: Any, events: list[Any]) -> set[tuple[str, str, str, str]]:
    """(id, status, summary, actor) of the one alert each order of `events` ends with, one event a
    batch and the timers fired after each, as a live run receives them."""
    seen = set()
    for order in permutations(events):
        e = Engine([spec], catalog, pseudonymize=pz)
        alerts = [a for i, ev in enumerate(order) for a in e.process("lifecycle", "lifecycle", 0, fed("lifecycle", [ev], "lifecycle", i)) + e.advance()]  # fmt: skip
        alerts += (
            e.process("lifecycle", "lifecycle", 0, fed("lifecycle", [tick(0)], "lifecycle", 9)) + e.drain()
        )
        (a,) = latest(alerts)
        seen.add((a.alert_id, a.status.value, a.summary, a.actor_id))
    return seen


def test_copies_give_one_answer_whatever_order_their_events_come_in(spec, catalog) -> None:
    """A review: the warehouse's store of a location trace, reported after its own late deletion,
    hid the overrun in half of the 24 orders of four events. Every order ends with one alert, the
    same: kept past its 30 days on the warehouse, closed by the warehouse's removal, 10 days late."""
    trace = {"categories": ["location_trace"], "purpose": "branch_service"}
    events = [
        lc("collect", "L1", day=-60, system="mobile_banking", **trace),
        lc("store", "L1", day=-59, system="dwh", **trace),
        lc("delete", "L1", day=-40, system="mobile_banking"),
        lc("delete", "L1", day=-20, system="dwh"),
    ]
    ((_, status, summary, _),) = in_every_order(spec, catalog, events)
    assert status == "closed" and summary.startswith("record L1 on dwh (location) kept past its 30-day")
    assert "10 days late" in summary


def test_a_transaction_removed_seconds_after_its_collection_fires_in_either_order(spec, catalog) -> None:
    """AML records are kept ten years (retention.yaml `minimums`): collected on core banking at
    10:00:00, deleted from the warehouse at 10:00:30. The deletion reported first made a record of
    unknown content, and the collection, arriving next inside the allowed lateness, was never
    judged with it: no alert (a probe). Either order: one alert, the same, naming core banking."""
    txn = {"categories": ["transaction_record"], "purpose": "payment"}
    events = [
        lc("collect", "TX1", ts=T0, system="core_banking", **txn),
        lc("delete", "TX1", ts=T0 + 30_000, system="dwh"),
    ]
    ((_, _, summary, actor),) = in_every_order(spec, catalog, events)
    assert summary.startswith("record TX1 on ") and "removed" in summary and actor == "core_banking"


def test_a_request_answered_late_on_its_last_copy_is_overdue_whatever_the_order(spec, catalog) -> None:
    """A probe's live order: the warehouse's store came after both deletions, and the warehouse's
    timely delete, read as a purge of every copy, answered the request; the CRM's, 5 days late, was
    never seen as late. Every order of the five events ends with one alert, the same: overdue,
    closed by the CRM's deletion, naming it (the system that kept it, the backlog panel's too)."""
    events = [*copies(request=-40), lc("delete", day=-37, system="dwh"), lc("delete", day=-20)]
    ((_, status, summary, actor),) = in_every_order(spec, catalog, events)
    assert status == "closed" and summary.startswith("deletion of record R1 on crm,") and actor == "crm"
    assert summary.endswith("days late")


def test_a_copy_reported_after_the_removal_of_the_other_reopens_what_it_closed(spec, catalog) -> None:
    """The warehouse's store, dated before the CRM's deletion, reported after it: the record never
    left, and the request the deletion seemed to answer is overdue, as when the events come in
    time order (the same alert, the same revision's content)."""
    store, gone = lc("store", day=-99, system="dwh", categories=["mobile_phone"]), lc("delete", day=-37)
    in_order = final_alerts(Engine([spec], catalog, pseudonymize=pz), [*copies(), gone, tick(0)], 100)
    e = Engine([spec], catalog, pseudonymize=pz)
    final_alerts(e, [collect(day=-100), lc("deletion_requested", day=-39), gone, tick(-1)], 100)
    late = final_alerts(e, [store, tick(0)], 100)
    ((a,), (b,)) = (in_order, [x for x in late if x.title_en == RULE_TITLES["deletion_request_overdue"]])
    assert (b.alert_id, b.status.value, b.summary) == (a.alert_id, "open", a.summary)


def test_a_restore_from_backup_reopens_what_the_deletion_answered(run, spec, catalog) -> None:
    """A probe: a deletion request honoured on day 3, then the record restored from a backup on day
    20: the customer's data was back and nothing fired. The restore reopens the request (and a
    deadline the removal had met), whichever of the two events the monitor hears first."""
    asked = [collect(day=-100), lc("deletion_requested", day=-40)]
    deleted, restored = lc("delete", day=-37), lc("store", day=-20)  # the nightly backup, onto crm
    (a,) = run([*asked, deleted, restored, tick(0)])["deletion_request_overdue"]
    assert a.status.value == "open" and "restored 2025-12-12 after its removal" in a.summary
    e = Engine([spec], catalog, pseudonymize=pz)  # the deletion reported after the restore
    first = run([*asked, restored, tick(-1)], engine=e).get("deletion_request_overdue", [])
    (b,) = latest([*first, *run([deleted, tick(0)], engine=e).get("deletion_request_overdue", [])])
    assert b.status.value != "closed" and "restored 2025-12-12 after its removal" in b.summary
    location = {"cats": ("location_trace",), "purpose": "branch_service", "system": "mobile_banking"}
    kept = [collect("L1", day=-40, **location), lc("delete", "L1", day=-15), lc("store", "L1", day=-5)]
    (c,) = run([*kept, tick(0)])["retention_expired"]
    assert "L1" in c.summary and "restored" in c.summary


def test_a_deletion_logged_without_the_customer_answers_the_request(run, spec, catalog) -> None:
    """A deletion system that logs only the record id: the record's earlier events named its
    customer, so the deletion reaches the customer's task and answers the request in time; a
    restore in between keeps what the engine learnt. A record no event ever named a customer for
    still cannot be tied (a coverage gap: tests/test_coverage_gaps.py)."""
    before = [collect(day=-100), lc("deletion_requested", day=-20)]
    after = [lc("delete", subject=None, day=-6), tick(0)]
    assert run(before + after) == {}
    first = Engine([spec], catalog, pseudonymize=pz)
    run(before, engine=first)
    restored = Engine([spec], catalog, pseudonymize=pz)
    restored.restore(0, first.changes(0))
    assert run(after, engine=restored) == {}


def test_a_removed_records_customer_is_forgotten_when_its_readers_forget_the_record(
    run, spec, catalog
) -> None:
    """The engine's record -> customer entry (what ties a deletion logged by record id alone) ended
    only with a destruction: a soak's deleted and anonymized records left theirs for ever, a
    quarter of the day's records each day. It ends `forget_deleted_days` after the record's latest
    removal; a record deleted again later keeps it until then, and one collected anew after its
    removal keeps it (a review's purge-job deletion of such a record, naming no customer, was held
    and the record read as kept too long)."""
    from streams.engine import OWNERS

    days = spec.params.forget_deleted_days
    e = Engine([spec], catalog, pseudonymize=pz)
    steps = [
        collect("R1", day=-days - 300), lc("delete", "R1", day=-days - 200),
        collect("R2", day=-days - 300), lc("anonymize", "R2", day=-days - 250),
        collect("R3", day=-days - 300), lc("delete", "R3", day=-days - 200),
        collect("R3", day=-days - 150), lc("delete", "R3", day=-100),
        collect("R4", day=-300), lc("delete", "R4", day=-200),
        collect("R5", day=-days - 300), lc("delete", "R5", day=-days - 200), collect("R5", day=-days - 150),
        collect("R6", day=-days - 300), lc("delete", "R6", day=-days - 200), lc("destroy", "R6", day=-days - 190),
        collect("R6", day=-days - 150),
    ]  # fmt: skip
    run([*steps, tick(0)], engine=e)
    held = {rid for rid in ("R1", "R2", "R3", "R4", "R5", "R6") if e.store(0).get(OWNERS + rid) is not None}
    assert held == {"R3", "R4", "R5", "R6"}


def test_a_deletion_read_before_the_events_naming_its_customer_answers_the_request(spec, catalog) -> None:
    """The reviewer's replay of two lifecycle files side by side (the purge job's, the CRM's) read
    the deletion, logged by record id alone, before the collection and the request that name the
    customer: held until a named event arrives, it then answers the request in time, as one file
    in time order does. A restore between the two keeps what was held."""
    batches = [
        [lc("delete", subject=None, day=-6)],
        [collect(day=-100), lc("deletion_requested", day=-20)],
        [tick(0)],
    ]

    def alerts(restore_after: int | None = None) -> list[Any]:
        e, got, offset = Engine([spec], catalog, pseudonymize=pz), [], 0
        for i, batch in enumerate(batches):
            got += e.process("lifecycle", "lifecycle", 0, fed("lifecycle", batch, "lifecycle", offset))
            got += e.advance()
            offset += len(batch)
            if i == restore_after:
                restored = Engine([spec], catalog, pseudonymize=pz)
                restored.restore(0, e.changes(0))
                e = restored
        return got + e.drain()

    assert alerts() == [] and alerts(restore_after=0) == []


# -- a removal naming categories takes those alone -----------------------------------------------------
# A probe: a record holding a location trace and a phone, whose delete named the phone alone, kept
# its location past 30 days with no alert; a deletion request answered by deleting a CRM card's phone
# alone, its address kept, counted as answered (seed 004 流程描述(3)① and (5), PIPL art. 47).
TRACE_AND_PHONE: dict[str, Any] = {**LOCATION, "cats": ("location_trace", "mobile_phone")}


def test_a_delete_naming_the_phone_leaves_the_location_to_its_deadline(run) -> None:
    """Collected 1 Dec 08:00 (day -31): its 30 days end with 31 Dec. The app deleted the phone on
    day -20 and kept the location: the day after the deadline fires, the deadline's last hours do
    not. A delete naming the location, both, or nothing (the whole record, as purge logs write it)
    is silent; the location's own late delete closes its alert, the phone still held."""
    steps = [collect(day=-31, **TRACE_AND_PHONE), lc("delete", day=-20, system="mobile_banker", categories=["mobile_phone"])]  # fmt: skip
    assert run([*steps, tick(-0.5)]) == {}  # 20:00 on 31 Dec in Beijing: inside its last day
    (a,) = run([*steps, tick(0)])["retention_expired"]
    assert a.status.value == "open" and a.window_end == T0 - CST
    assert a.summary.startswith(
        "record R1 on mobile_banker (contact, location) kept past its 30-day retention"
    )
    for named in (["location_trace"], ["location_trace", "mobile_phone"], ["行踪轨迹"], []):
        gone = lc("delete", day=-20, system="mobile_banker", categories=named)
        assert run([collect(day=-31, **TRACE_AND_PHONE), gone, tick(0)]) == {}, named
    # collected on day -40, due by the end of day -10: the location deleted on day -9, the phone kept
    late = [collect(day=-40, **TRACE_AND_PHONE), lc("delete", day=-9, system="mobile_banker", categories=["location_trace"])]  # fmt: skip
    (b,) = run([*late, tick(0)])["retention_expired"]
    assert b.status.value == "closed" and b.summary.endswith("removed 2025-12-23, 1 day late")


def test_a_deletion_request_answered_in_part_stays_overdue(run) -> None:
    """Requested day -17 (Mon 15 Dec, due by the end of day -2): the CRM deleted the phone on day
    -14 and kept the address. Overdue, naming what is still held; the address deleted on day -3
    answers it in time; a request naming the phone alone is answered by deleting the phone."""
    card = collect(day=-100, cats=("mobile_phone", "home_address"))
    steps = [card, lc("deletion_requested", day=-17), lc("delete", day=-14, categories=["mobile_phone"])]
    (a,) = run([*steps, tick(0)])["deletion_request_overdue"]
    assert a.status.value == "open" and a.summary.startswith("deletion of record R1 on crm, requested")
    assert "not executed within 15 days (identity still held)" in a.summary
    assert run([*steps, lc("delete", day=-3, categories=["home_address"]), tick(0)]) == {}
    (late,) = run([*steps, lc("delete", day=-1, categories=["home_address"]), tick(0)])[
        "deletion_request_overdue"
    ]
    assert (
        late.alert_id == a.alert_id and late.status.value == "closed" and late.summary.endswith("1 day late")
    )
    phone_only = lc("deletion_requested", day=-17, categories=["mobile_phone"])
    assert run([card, phone_only, lc("delete", day=-14, categories=["mobile_phone"]), tick(0)]) == {}
    (c,) = run([card, phone_only, lc("delete", day=-14, categories=["home_address"]), tick(0)])[
        "deletion_request_overdue"
    ]
    assert c.status.value == "open"


def test_a_read_of_what_a_partial_delete_left_is_judged_by_its_own_deadline(run) -> None:
    """The location deleted in its 30 days, the phone kept: a read of the record after the
    location's deadline is no use past a deadline, nor after a deletion; the location kept and read
    after its deadline is."""
    steps = [collect(day=-60, **TRACE_AND_PHONE)]
    gone = lc("delete", day=-40, system="mobile_banker", categories=["location_trace"])
    assert run([*steps, gone, read(day=-10), tick(0)]) == {}
    kept = lc("delete", day=-40, system="mobile_banker", categories=["mobile_phone"])
    got = run([*steps, kept, read(day=-10), tick(0)])
    assert set(got) == {"retention_expired", "used_after_deadline"}


def test_a_minimum_keeps_the_part_it_covers(run) -> None:
    """A KYC file (ID number and phone) while the relationship goes on: the phone deleted on request
    is no removal before the AML minimum, and the request naming it is not withheld by the
    minimum; the ID number's deletion is."""
    kyc = collect(day=-600, cats=("id_document_no", "mobile_phone"), purpose="kyc_aml", system="core_banking")
    phone = lc("delete", day=-10, system="core_banking", categories=["mobile_phone"])
    assert run([kyc, phone, tick(0)]) == {}
    (a,) = run([kyc, lc("delete", day=-10, system="core_banking", categories=["id_document_no"]), tick(0)])[
        "removed_before_minimum"
    ]
    assert "removed 2025-12-22" in a.summary
    asked = lc("deletion_requested", day=-40, categories=["mobile_phone"])
    assert set(run([kyc, asked, tick(0)])) == {"deletion_request_overdue"}
    assert (
        run([kyc, asked, lc("delete", day=-30, system="core_banking", categories=["mobile_phone"]), tick(0)])
        == {}
    )


def test_partial_removals_give_one_answer_whatever_order_their_events_come_in(spec, catalog) -> None:
    """The location's late delete, the phone's early one and the collection, in every order: one
    alert, the same, closed 10 days late."""
    events = [
        collect("L1", day=-60, **TRACE_AND_PHONE),
        lc("delete", "L1", day=-50, system="mobile_banker", categories=["mobile_phone"]),
        lc("delete", "L1", day=-20, system="mobile_banker", categories=["location_trace"]),
    ]
    ((_, status, summary, _),) = in_every_order(spec, catalog, events)
    assert status == "closed" and "kept past its 30-day" in summary and "10 days late" in summary


# -- what the law requires kept (AML Law art. 34, 2024; art. 19 of 2006): removed too early ----------------
TRANSACTION = {"cats": ("transaction_record",), "purpose": "payment", "system": "core_banking"}


def test_a_transaction_record_deleted_a_month_after_it_was_stored_fires(run) -> None:
    got = run([collect(day=-30, **TRANSACTION), lc("delete", day=-1, method="purge")])
    (a,) = got["removed_before_minimum"]
    assert a.severity.value == "high" and a.subjects_sample == [pz("C1")]
    assert (a.window_start, a.window_end) == (T0 - 30 * DAY, T0 - DAY)
    assert "removed 2025-12-31 inside the 10 years the law requires it kept from collect" in a.summary
    # the law in force (revised 2024, in force 2025-01-01): art. 34, at least ten years
    assert "AML Law art. 34 (2024 revision)" in a.summary
    assert a.evidence_event_ids == []
    assert a.regulation[0] == (
        "《反洗钱法》(2024年修订)第三十四条: 客户身份资料在业务关系结束后、客户交易信息在交易结束后, 应当至少保存十年"
    )
    assert a.regulation[1].startswith("《个人信息保护法》第四十七条第二款")
    assert not any("第十九条" in r or "五年" in r for r in a.regulation)


def test_the_minimum_is_kept_by_a_deletion_on_its_last_day(run) -> None:
    """Stored 2 Jan 2016 08:00 (Beijing): its ten years end at 24:00 on 2 Jan 2026. Deleted that day
    it was kept ten years; the day before, it was not."""
    stored = collect(day=-3652, **TRANSACTION)
    assert run([stored, lc("delete", day=1, method="purge")]) == {}
    (a,) = run([stored, lc("delete", day=0.5, method="purge")])["removed_before_minimum"]
    assert "removed 2026-01-01 inside" in a.summary


def test_ten_years_run_to_the_corresponding_day_whatever_the_leap_days(run, policy) -> None:
    """Civil Code art. 202: a period of years ends on the corresponding day. Stored 10 Jun 2015,
    the ten years end with 10 Jun 2025: 3 653 days, since three 29 Februaries fall between. Deleted
    on 9 Jun 2025 it was kept 3 652 days, a day short of what the law then in force asks."""
    beijing = 8 * 3_600_000
    stored_at, june_9 = (
        1_433_894_400_000 - beijing + 10 * 3_600_000,
        1_749_427_200_000 - beijing + 10 * 3_600_000,
    )
    stored = lc(
        "store", ts=stored_at, categories=["payment_account_no", "transaction_record"], purpose="payment"
    )
    for day, early in ((0, True), (1, False)):
        gone = lc("delete", ts=june_9 + day * DAY, method="purge")
        assert bool(run([stored, gone]).get("removed_before_minimum")) is early, day
    # and a record stored on a 29 February is kept ten years to the 28th, the month having no 29th
    minimum = policy.retention.minimums["aml_transactions"]
    feb_29 = 1_582_934_400_000 - beijing  # 2020-02-29 00:00 Beijing
    assert policy.retention_end(feb_29, minimum) == 1_898_553_600_000 - beijing  # 2030-03-01 00:00 Beijing


def test_kyc_data_removed_while_the_relationship_goes_on_fires_and_after_its_minimum_does_not(run) -> None:
    kyc = collect(day=-6000, cats=("id_document_no", "kyc_photo"), purpose="kyc_aml", system="core_banking")
    (a,) = run([kyc, lc("delete", day=-1)])["removed_before_minimum"]
    assert "inside the 10 years the law requires it kept from relationship_ended" in a.summary
    # seen when removed, not when stored 16 years before (a probe's dashboards dated it 2016)
    assert (a.window_start, a.first_seen, a.last_seen) == (kyc.ts, T0 - DAY, T0 - DAY)
    # ended 1 000 days ago: its ten years run until 2033
    ended = lc("relationship_ended", rid="A9", day=-1000)
    assert len(run([kyc, ended, lc("delete", day=-1)])["removed_before_minimum"]) == 1
    # ended 3 700 days ago: kept past its ten years (an overrun, closed now), not removed too early
    long_ago = lc("relationship_ended", rid="A9", day=-3700)
    assert set(run([kyc, long_ago, lc("delete", day=-1)])) == {"retention_expired"}
    # taken for marketing, a copy for its own use: the bank's to delete on request
    copy = collect(day=-3000, cats=("customer_name", "mobile_phone"), purpose="marketing")
    assert run([copy, lc("deletion_requested", day=-30), lc("delete", day=-20), tick(0)]) == {}


def test_the_aml_minimum_follows_the_data_not_the_purpose_label(run) -> None:
    """A probe: core banking took name and ID number at account opening (account_service) and the
    statement service stored the transaction history (customer_service); the relationship ended,
    the customer asked for deletion and both were destroyed ten days later: nothing fired, while
    the same under kyc_aml / payment was removed_before_minimum. The AML Law (art. 34) keeps the
    customer's identity and transaction records, whatever label a system logs them under."""
    opening = collect("CB-ID-1", day=-30, cats=("customer_name", "id_document_no"), purpose="account_service", system="core_banking")  # fmt: skip
    history = collect("STMT-1", day=-30, cats=("transaction_record",), purpose="customer_service", system="statement")  # fmt: skip
    ended = lc("relationship_ended", rid="REL-1", day=-28)
    asked = [lc("deletion_requested", rid, day=-27) for rid in ("CB-ID-1", "STMT-1")]
    gone = [lc("delete", "CB-ID-1", day=-17, system="core_banking"), lc("delete", "STMT-1", day=-17, system="statement")]  # fmt: skip
    got = run([opening, history, ended, *asked, *gone, tick(0)])
    assert set(got) == {"removed_before_minimum"}
    by_record = {a.summary.split()[1]: a for a in got["removed_before_minimum"]}
    assert "from relationship_ended" in by_record["CB-ID-1"].summary
    assert "客户身份资料在业务关系结束后至少保存十年" in by_record["CB-ID-1"].summary
    assert "客户交易信息在交易结束后至少保存十年" in by_record["STMT-1"].summary
    assert all(a.severity.value == "high" for a in by_record.values())
    # kept ten years after the end, the opening's identity goes lawfully on its last day
    long_ago = lc("relationship_ended", rid="REL-1", day=-3653)
    assert run([collect("CB-ID-1", day=-5000, cats=("customer_name", "id_document_no"), purpose="account_service"), long_ago, lc("delete", "CB-ID-1", day=0.5)]) == {}  # fmt: skip
    # copies for another use are the bank's to delete on request: a marketing or adviser's copy of
    # the transactions, marketing's name, the CRM's contact card
    for cats, purpose in (
        (("transaction_record",), "marketing"),
        (("transaction_record",), "wealth_advice"),
        (("customer_name",), "marketing"),
        (("customer_name", "mobile_phone"), "customer_service"),
    ):
        copy = collect("COPY-1", day=-30, cats=cats, purpose=purpose)
        assert run([copy, ended, lc("deletion_requested", "COPY-1", day=-27), lc("delete", "COPY-1", day=-17), tick(0)]) == {}, (cats, purpose)  # fmt: skip


def test_an_end_reported_after_the_removal_gives_the_same_alert(spec, catalog) -> None:
    """The removal and the end of the relationship, re-keyed from two partitions, in either order:
    one alert, the same in every field (its id counts from the record's collection, which both
    orders know; its words and evidence do not depend on which came first)."""
    kyc, gone = collect(day=-4000, cats=("id_document_no",), purpose="kyc_aml"), lc("delete", day=-1)
    ended = lc("relationship_ended", rid="A9", day=-1000)
    ids = []
    for order in ([kyc, ended, gone], [kyc, gone, ended]):
        e = Engine([spec], catalog, pseudonymize=pz)
        alerts = [
            a
            for i, ev in enumerate(order)
            for a in e.process("lifecycle", "lifecycle", 0, fed("lifecycle", [ev], "lifecycle", i))
        ]
        (a,) = alerts
        ids.append(a.model_dump())
    assert ids[0] == ids[1]


def test_an_account_number_taken_for_due_diligence_is_kept_ten_years_from_the_accounts_closure(run) -> None:
    """retention.yaml `aml_account_records`: an account number collected for KYC/AML is part of the
    customer's identity file the AML Law keeps (art. 34): deleted seven months after its account
    closed is too early (a probe's passed), ten years on it is not."""
    acct = collect("A1", day=-5000, cats=("payment_account_no",), purpose="kyc_aml", system="core_banking")
    (a,) = run([acct, lc("account_closed", "A1", day=-210), lc("delete", "A1", day=-1)])[
        "removed_before_minimum"
    ]
    assert "inside the 10 years the law requires it kept from account_closed" in a.summary
    # closed ten years and a week ago: kept past its ten years (an overrun, closed now), not too early
    assert set(run([acct, lc("account_closed", "A1", day=-3660), lc("delete", "A1", day=-1)])) == {
        "retention_expired"
    }
    # a KYC file holding an ID and an account number, the relationship ended eleven years ago, no
    # closure logged: the end closed every account, so it is overdue, not too early (a review's was both)
    kyc = collect("K1", day=-5000, cats=("id_document_no", "payment_account_no"), purpose="kyc_aml")
    assert set(run([kyc, lc("relationship_ended", "K1", day=-4000), lc("delete", "K1", day=-1)])) == {
        "retention_expired"
    }


def test_the_account_record_taken_at_opening_is_kept_ten_years_from_the_accounts_closure(run) -> None:
    """A probe's core-banking account master record (account number, opening date and branch,
    account_service) was destroyed 3 days after its closure, the customer's other account open,
    and nothing fired while the same record labelled kyc_aml did: the opening record is the 开户申请资料
    the AML Law keeps (art. 34; seed 004 流程描述(3)②), whatever the label. Ten years on it goes."""
    cats = ("payment_account_no", "account_open_date", "account_open_branch")
    master = collect("ACC-A", day=-5000, cats=cats, purpose="account_service", system="core_banking")
    other = collect("ACC-B", day=-5000, cats=("payment_account_no",), purpose="account_service")

    def destroyed(day: float) -> LifecycleEvent:
        return lc("destroy", "ACC-A", day=day, system="core_banking", categories=list(cats), method="三次覆写", operator_id="E1", supervisor_id="E2")  # fmt: skip

    got = run([master, other, lc("account_closed", "ACC-A", day=-10), destroyed(-7), tick(1)])
    (a,) = got["removed_before_minimum"]
    assert (
        "ACC-A" in a.summary
        and "inside the 10 years the law requires it kept from account_closed" in a.summary
    )
    # closed 1 Jan 2016: its ten years end with 1 Jan 2026, the lawful day to destroy it
    assert run([master, other, lc("account_closed", "ACC-A", day=-3653), destroyed(0), tick(1)]) == {}


def test_a_removal_is_judged_by_the_aml_law_in_force_on_its_day(run) -> None:
    """The AML Law's ten years (art. 34, 2024 revision) hold from 1 Jan 2025; the 2006 law's art. 19
    said five (retention.yaml `in_force`, `earlier`). A probe's backfilled history destroyed a 2017
    transaction in 2023 and was "removed before the minimum" of a law not yet in force. Before 2025
    five years decide, from 2025 ten, whenever the clock started; a request then was owed."""
    stored = collect(day=-3300, **TRANSACTION)  # 28 Dec 2016
    assert run([stored, lc("delete", day=-1000), tick(0)]) == {}  # Apr 2023, six years on
    (early,) = run([stored, lc("delete", day=-2000), tick(0)])["removed_before_minimum"]  # Jul 2020
    assert (
        "inside the 5 years the law requires it kept" in early.summary
        and "AML Law (2006) art. 19" in early.summary
    )
    (now,) = run([stored, lc("delete", day=-300), tick(0)])["removed_before_minimum"]  # Mar 2025
    assert "inside the 10 years the law requires it kept" in now.summary and "2024 revision" in now.summary
    # asked in 2023, six years on: the law kept it no longer, and the request was the bank's to answer
    assert set(run([stored, lc("deletion_requested", day=-1000), tick(0)])) == {"deletion_request_overdue"}


def test_a_crm_copy_deleted_on_request_is_not_kept_by_the_aml_minimum(run) -> None:
    """Only the records kept for the AML duty (their purposes) are: a name in the CRM is not."""
    crm = collect(day=-100, cats=("customer_name", "mobile_phone"))
    assert run([crm, lc("deletion_requested", day=-20), lc("delete", day=-10), tick(0)]) == {}


def test_a_deletion_request_does_not_shorten_the_minimum(run) -> None:
    """PIPL art. 47 ¶2: a request on a record the law requires kept is answered by keeping it
    stored and withheld, so it is not overdue; deleting it anyway is premature, and says why. The
    customer is still owed an answer, a refusal saying why, in the 15 days (seed 004 隐私政策 (四),
    PIPL art. 50): a probe's went unanswered for good, and a refusal 35 days late passed."""
    stored = collect(day=-100, **TRANSACTION)
    asked = lc("deletion_requested", day=-39)  # Sun 2025-11-23 in Beijing: due by the end of Mon 8 Dec
    assert run([stored, asked, lc("deletion_refused", day=-24), tick(0)]) == {}  # the 15th day
    (silent,) = run([stored, asked, tick(0)])["deletion_request_unanswered"]
    assert silent.status == "open" and silent.severity.value == "medium"
    assert (
        "the law keeps it, and no answer to the customer (a refusal saying why) was logged within 15 days"
        in silent.summary
    )
    (late,) = run([stored, asked, lc("deletion_refused", day=-23), tick(0)])["deletion_request_unanswered"]
    assert late.status == "closed" and "answered (refused) 2025-12-09, 1 days late" in late.summary
    assert late.alert_id == silent.alert_id
    got = run([stored, lc("deletion_requested", day=-39), lc("delete", day=-30), tick(0)])
    assert set(got) == {"removed_before_minimum"}
    assert (
        "deletion requested 2025-11-23, which the law's minimum outranks (PIPL art. 47"
        in got["removed_before_minimum"][0].summary
    )


# -- collection after the business relationship ended (seed 004 流程描述(1)⑫) -----------------------------
def test_a_location_collected_after_the_relationship_ended_fires_in_either_order(spec, catalog) -> None:
    ended, later = lc("relationship_ended", rid="A9", day=-10), collect("R2", day=-5, **LOCATION)
    ids = []
    for order in ([ended, later], [later, ended]):  # re-keyed from two source partitions: either comes first
        e = Engine([spec], catalog, pseudonymize=pz)
        alerts = [
            a
            for ev in order
            for a in e.process("lifecycle", "lifecycle", 0, fed("lifecycle", [ev], "lifecycle", 0))
        ]
        (a,) = alerts + e.drain()
        assert a.title_en == spec.params.rules["collected_after_relationship_ended"].title_en
        assert (
            a.severity.value == "medium" and "after the business relationship ended 2025-12-22" in a.summary
        )
        # one record's alert lists as one (a probe's list showed "— records  1 customer")
        assert records_and_customers(a.subject_count, a.counts) == (1, 1)
        # seen when collected, not when the relationship ended
        assert (a.window_start, a.first_seen, a.last_seen) == (ended.ts, later.ts, later.ts)
        ids.append(a.model_dump())
    assert ids[0] == ids[1]


def test_the_closure_of_the_customers_last_account_ends_the_relationship(run, spec, catalog) -> None:
    """A probe's core banking logged only the closure of the customer's only account, no
    relationship_ended: the KYC file destroyed properly ten years and a month later was "removed
    before the minimum" of a relationship never ended, and the app's collection twenty days after
    the closure went unseen. The closure of the last account the monitor knows ends it."""
    kyc = collect("KYC-1", day=-4100, cats=("id_document_no", "kyc_photo"), purpose="kyc_aml", system="ecif")
    acct = {"cats": ("payment_account_no",), "purpose": "account_service", "system": "core_banking"}
    closed = lc("account_closed", "ACC-1", day=-4070)
    file = [kyc, collect("ACC-1", day=-4100, **acct), closed]
    got = run([*file, lc("delete", "KYC-1", day=-4070 + 3683, system="ecif"), tick(0)])
    # the KYC file was kept a month past its ten years (as with the end logged), not removed too early
    assert set(got) == {"retention_expired"}
    late = next(a for a in got["retention_expired"] if "KYC-1" in a.summary)
    # its ten years' last day, Sun 10 Nov 2024, moves to Mon 11 Nov (Civil Code art. 203 ¶1)
    assert "from relationship_ended 2014-11-10" in late.summary and "29 days late" in late.summary
    assert set(run([*file, lc("delete", "KYC-1", day=-4070 + 1500, system="ecif"), tick(0)])) >= {
        "removed_before_minimum"
    }  # four years after the closure (in 2019, the 2006 law's five years) it still is
    # the app collects a location twenty days after the only account closed, in either order
    opened, shut = collect("ACC-2", day=-30, **acct), lc("account_closed", "ACC-2", day=-29)
    later = collect("LOC-1", day=-9, **LOCATION)
    ids = []
    for order in ([opened, shut, later], [opened, later, shut], [later, shut, opened]):
        e = Engine([spec], catalog, pseudonymize=pz)
        alerts = [
            a
            for ev in order
            for a in e.process("lifecycle", "lifecycle", 0, fed("lifecycle", [ev], "lifecycle", 0))
        ]
        (a,) = alerts + e.drain()
        assert "after the business relationship ended 2025-12-03 (its last account closed)" in a.summary
        ids.append(a.model_dump())
    assert ids[0] == ids[1] == ids[2]
    # a customer with another account open, or one opened again since, is still served
    other = collect("ACC-3", day=-60, **acct)
    assert run([opened, other, shut, later, tick(0)]) == {}
    assert run([opened, shut, collect("ACC-3", day=-20, **acct), later, tick(0)]) == {}
    # a KYC file's account number (due diligence) or a payment's is no account of its own
    diligence = collect("KYC-2", day=-30, cats=("payment_account_no", "id_document_no"), purpose="kyc_aml")
    paid = collect("TX-1", day=-30, cats=("payment_account_no", "transaction_record"), purpose="payment")
    assert set(run([opened, diligence, paid, shut, later, tick(0)])) == {"collected_after_relationship_ended"}
    # a closure naming no record tracked here says not which account closed: it ends nothing
    assert run([opened, lc("account_closed", "ACCT-0001", day=-29), later, tick(0)]) == {}


def test_a_loan_or_advisers_copy_of_the_account_number_is_no_account(run, spec, policy) -> None:
    """A review's: with credit_review and wealth_advice beginning a relationship, an adviser's profile
    holding the customer's payment account number was one of its accounts, which no closure names:
    the relationship never ended, the KYC file's lawful destruction ten years and a month after the
    only account closed was removed_before_minimum, and the location collected after it went
    unseen. An account is collected for an `account_purposes` purpose (an account opening)."""
    acct = {"cats": ("payment_account_no",), "purpose": "account_service", "system": "core_banking"}
    kyc = collect("KYC-1", day=-4100, cats=("id_document_no", "kyc_photo"), purpose="kyc_aml", system="ecif")
    destroyed = lc("delete", "KYC-1", day=-4070 + 3683, system="ecif")
    opened, shut = collect("ACC-2", day=-30, **acct), lc("account_closed", "ACC-2", day=-29)
    later = collect("LOC-1", day=-9, **LOCATION)
    for purpose in ("wealth_advice", "credit_review"):
        copy = {"cats": ("customer_name", "payment_account_no", "assets"), "purpose": purpose}
        old = [kyc, collect("WM-1", day=-4100, **copy), collect("ACC-1", day=-4100, **acct)]
        got = run([*old, lc("account_closed", "ACC-1", day=-4070), destroyed, tick(0)])
        assert "removed_before_minimum" not in got, purpose
        late = next(a for a in got["retention_expired"] if "KYC-1" in a.summary)
        assert "from relationship_ended 2014-11-10" in late.summary and "29 days late" in late.summary
        got = run([opened, collect("WM-2", day=-30, **copy), shut, later, tick(0)])
        (a,) = got["collected_after_relationship_ended"]
        assert a.summary.startswith("record LOC-1") and "(its last account closed)" in a.summary, purpose
    # a policy folder from before, without account_purposes, judges as it did: its relationship
    # purposes collect accounts, the adviser's too

    retention = policy.retention.model_copy(update={"account_purposes": None})
    older = Catalog(policy.model_copy(update={"retention": retention}))
    adviser = collect("WM-2", day=-30, cats=("customer_name", "payment_account_no"), purpose="wealth_advice")
    for held, fired in (([opened], {"collected_after_relationship_ended"}), ([opened, adviser], set())):
        assert set(run([*held, shut, later, tick(0)], engine=Engine([spec], older, pseudonymize=pz))) == fired


def test_collection_before_the_end_and_a_returning_customers_are_silent(run) -> None:
    before = collect("R2", day=-20, **LOCATION)
    assert "collected_after_relationship_ended" not in run(
        [before, lc("relationship_ended", rid="A9", day=-10)]
    )
    back = collect("R3", day=-8, cats=("customer_name", "id_document_no"), purpose="account_service")
    again = collect("R4", day=-5, **LOCATION)
    assert run([lc("relationship_ended", rid="A9", day=-10), back, again]) == {}
    # collected between the end and the return: it fires; what follows the return does not
    between = collect("R5", day=-9, **LOCATION)
    got = run([lc("relationship_ended", rid="A9", day=-10), between, back, again])
    assert [a.summary.split()[1] for a in got["collected_after_relationship_ended"]] == ["R5"]


def test_a_former_customers_new_product_begins_a_relationship_and_a_complaint_is_answered(run) -> None:
    """Seed 004 流程描述(1)⑫ stops collection once the bank stops serving the customer; a probe's former
    customer applied for a mortgage, bought a fund at the counter, and called 95526 with a
    complaint, and each was "collected after the relationship ended". A new product begins a
    relationship as an account opening does (retention.yaml `relationship_purposes`, ⑬g), and the
    collections after it are lawful; a complaint is answered (`owed_after_end`: seed 004 投诉处理) and
    begins nothing: the app's location after it still fires."""
    ended = lc("relationship_ended", rid="A9", day=-300)
    mortgage = collect(
        "LOAN-1", day=-10, cats=("customer_name", "id_document_no", "income"), purpose="credit_review"
    )
    fund = collect("WM-1", day=-10, cats=("customer_name", "assets"), purpose="wealth_advice")
    complaint = collect(
        "CS-1", day=-10, cats=("mobile_phone", "communication_text"), purpose="customer_service"
    )
    app = collect("LOC-1", day=-5, **LOCATION)
    for product in (mortgage, fund):
        assert run([ended, product, app, tick(0)]) == {}, product.purpose
    got = run([ended, complaint, app, tick(0)])
    assert [a.summary.split()[1] for a in got["collected_after_relationship_ended"]] == ["LOC-1"]
    tags = collect("TAG-1", day=-10, cats=("marketing_tags",), purpose="marketing")
    got = run([ended, tags, tick(0)])
    assert [a.summary.split()[1] for a in got["collected_after_relationship_ended"]] == ["TAG-1"]


def test_the_closures_own_settlement_is_no_collection_after_the_end(run) -> None:
    """Seed 004 流程描述(1)⑫ 在停止提供…服务时 stops collection; ⑬g 履行合同所必需. A probe's batch
    closing 500 dormant accounts posted each one's closing interest (a `payment` collection of its
    transactions) two seconds after the closure: 500 "collected after the relationship ended"
    mediums. A contract's collection within retention.yaml `closing_grace_hours` (24) of the end is
    the closure's settlement, in either order; two days on it is one after the end, and a marketing
    tag within the grace still is one, dated as collected, whatever the settlement after it."""
    account = collect("A1", day=-400, cats=("customer_name", "payment_account_no"), purpose="account_service",
                      system="core_banking")  # fmt: skip
    closed = lc("account_closed", rid="A1", day=-30, system="core_banking")

    def interest(day: float) -> Any:
        return collect(
            "TX-1", day=day, cats=("transaction_record",), purpose="payment", system="core_banking"
        )

    settled = interest(-30 + 2 / 86_400)
    assert run([account, closed, settled, tick(0)]) == {}
    assert run([account, settled, closed, tick(0)]) == {}  # the core's two logs, either order
    got = run([account, closed, interest(-28), tick(0)])
    assert [a.summary.split()[1] for a in got["collected_after_relationship_ended"]] == ["TX-1"]
    tag = collect(
        "TX-1", day=-30 + 1 / 24, cats=("marketing_tags",), purpose="marketing", system="core_banking"
    )
    (a,) = run([account, closed, tag, settled, interest(-30 + 3 / 24), tick(0)])[
        "collected_after_relationship_ended"
    ]
    assert a.first_seen == tag.ts, a.summary
    # kept in the state only when it differs from the latest collection (stored before: the same)
    rec = Record(1, "core_banking")
    rec.unbidden, rec.uncontracted = 5, 3
    back = Record.from_json(rec.to_json())
    assert (back.unbidden, back.uncontracted, back.asked) == (5, 3, [])
    rec.uncontracted = 5
    assert len(rec.to_json()) == 18 and Record.from_json(rec.to_json()[:14]).uncontracted == 5


def test_due_diligence_after_the_end_is_lawful_and_starts_no_relationship(run, spec, policy) -> None:
    """A probe's AML case system collected a former customer's identity after the end (lawful: the
    AML Law's duty, seed 004 流程描述(1)⑬a), and the app's location tracking five days later was
    silent: the AML collection had counted as the customer coming back. It is lawful in either
    order, and starts nothing; the same record collected for marketing after the end still fires."""
    ended = lc("relationship_ended", rid="A9", day=-10)
    aml = collect("R3", day=-8, cats=("customer_name", "id_document_no"), purpose="kyc_aml")
    app = collect("R4", day=-3, **LOCATION)
    for order in ([ended, aml, app], [aml, app, ended]):
        got = run(order)
        assert [a.summary.split()[1] for a in got["collected_after_relationship_ended"]] == ["R4"], order
    assert run([ended, aml]) == {} and run([aml, ended]) == {}
    # a policy folder from before, that still lists kyc_aml as starting a relationship

    retention = policy.retention.model_copy(update={"relationship_purposes": ["account_service", "kyc_aml"]})
    older = Catalog(policy.model_copy(update={"retention": retention}))
    got = run([ended, aml, app], engine=Engine([spec], older, pseudonymize=pz))
    assert [a.summary.split()[1] for a in got["collected_after_relationship_ended"]] == ["R4"]
    served = collect("R3", day=-6, cats=("customer_name", "id_document_no"), purpose="marketing")
    got = run([ended, aml, served])
    (a,) = got["collected_after_relationship_ended"]
    assert a.summary.startswith(
        "record R3 (identity) collected on crm 2025-12-26, after the business relationship ended 2025-12-22"
    ), a.summary


def test_state_stored_before_these_rules_still_loads() -> None:

    held = Customer.from_json(
        {"r": {"R1": [1, "crm", "C2", ["contact"], "customer_service", 0, 0, {}]}, "c": 0, "e": 5, "u": {}}
    )
    assert (
        held.records["R1"].last == 0
        and held.resumed == 0
        and not held.collected_after_end(held.records["R1"])
        and held.records["R1"].gone_stage == ""  # its alerts say "removed", the stage unknown
    )
    assert Customer.from_json(held.to_json()).to_json() == held.to_json()
    # kept before copies were tracked, removed: one copy, on its system, removed as it was
    gone = Customer.from_json({"r": {"R1": [1, "crm", "C2", ["contact"], None, 9, 0, {}, 0, "", "", "delete"]},
                               "c": {}, "e": 0, "u": {}}).records["R1"]  # fmt: skip
    assert gone.copies == {"crm": [1, [[9, "delete"]]]} and left(gone.copies) == (9, "delete")
    # one copy on its first system, the common record, is said by its other fields, not again
    one = Record(1, "crm")
    one.log("collect", "crm", 1)
    assert one.to_json()[17] == 0 and Record.from_json(one.to_json()).copies == {"crm": [1, []]}
    one.log("store", "dwh", 2)
    assert Record.from_json(one.to_json()).copies == {"crm": [1, []], "dwh": [2, []]}
    assert Record.from_json(Record(1, "crm").to_json()).copies == {}  # named by a request alone: none
    # a removal with no categories is the whole record (the rows above); one naming some, and a
    # request naming some, are kept as written
    part = Record(1, "crm")
    part.categories = ["contact", "location"]
    part.log("collect", "crm", 1)
    part.log("delete", "crm", 5, ["contact"])
    part.asked = ["contact"]
    back = Record.from_json(part.to_json())
    assert back.copies == {"crm": [1, [[5, "delete", ["contact"]]]]} and back.asked == ["contact"]
    assert left(back.copies, back.categories) == (0, "") and back.part_left(["contact"]) == (5, "delete")
    assert len(one.to_json()) == 18 and Record.from_json(one.to_json()).asked == []  # said only when asked


# -- uses after the deadline or the deletion (accesses and transfers re-keyed by customer) ---------------
def test_a_read_after_deletion_fires_and_further_reads_revise_it(run) -> None:
    got = run([collect(day=-3), lc("delete", day=-2), read(day=-1), read(day=-0.5, actor="e2"), tick(0)])
    (a,) = got["used_after_deletion"]
    assert a.revision == 2 and a.counts == {"records": 1, "uses": 2} and a.actor_id == "e2"
    assert a.subjects_sample == [pz("C1")]  # the access named C9 too: only C1's record was deleted


def test_reads_past_the_evidence_limit_still_count_and_revise(run, spec, catalog) -> None:
    """25 reads of a deleted record keep the latest 20 as evidence (evidence_limit) and count 25;
    a 26th by a new reader revises the alert to name it."""
    e = Engine([spec], catalog, pseudonymize=pz)
    reads = [read(day=-1 + i / 100, actor=f"e{i}") for i in range(25)]
    (a,) = run([collect(day=-3), lc("delete", day=-2), *reads], engine=e)["used_after_deletion"]
    assert (a.revision, a.counts, a.actor_id, len(a.evidence_event_ids)) == (
        25,
        {"records": 1, "uses": 25},
        "e24",
        20,
    )
    (b,) = run([read(day=-0.5, actor="new-reader")], engine=e)["used_after_deletion"]
    assert (b.alert_id, b.revision, b.counts, b.actor_id) == (
        a.alert_id,
        26,
        {"records": 1, "uses": 26},
        "new-reader",
    )


def test_uses_stored_before_they_were_marked_are_not_counted_twice(run, spec, catalog) -> None:
    """State of an earlier lifemon: its uses have four items and the alert's revision was their
    number. Restored, the next read makes revision 3, not a recount of the first two."""
    first = Engine([spec], catalog, pseudonymize=pz)
    (a,) = run([collect(day=-3), lc("delete", day=-2), read(day=-1.5), read(day=-1, actor="e2")], engine=first)["used_after_deletion"]  # fmt: skip
    held = first.tasks[(0, spec.kind)].keys.get(pz("C1"))
    held.uses["R1"] = [u[:4] for u in held.uses["R1"]]
    first.tasks[(0, spec.kind)].keys.touch(pz("C1"))
    restored = Engine([spec], catalog, pseudonymize=pz)
    restored.restore(0, first.changes(0))
    (b,) = run([read(day=-0.5, actor="e3")], engine=restored)["used_after_deletion"]
    assert (b.alert_id, b.revision, b.counts) == (a.alert_id, 3, {"records": 1, "uses": 3})


def test_a_record_collected_anew_after_its_removal_keeps_its_own_period(run) -> None:
    """The id a system reuses (a trace per device, a contact per customer number): collected again
    after it was removed, it is a new record with its own 30 days, and the removed one's deletion
    no longer speaks of what is read now."""
    old = [collect(day=-100, **LOCATION), lc("delete", day=-80)]
    (a,) = run([*old, collect(day=-31, **LOCATION), tick(0)])["retention_expired"]
    assert a.window_start == T0 - 31 * DAY
    assert run([*old, collect(day=-10, **LOCATION), read(day=-1), tick(0)]) == {}


def test_a_read_of_the_record_anew_is_judged_once_its_collection_is_known(spec, catalog) -> None:
    """A replay reads the access file before the lifecycle file (live, the access topic may simply
    run ahead): the read of day -1 arrives before the deletion and the collection anew on day -10
    that precede it. It is judged only once every input has passed it, so it is a read of the new
    record, as in time order."""
    steps = [collect(day=-100, **LOCATION), lc("delete", day=-80), collect(day=-10, **LOCATION)]
    e = Engine([spec], catalog, pseudonymize=pz)
    alerts = e.process("access", "access", 0, fed("access", [read(day=-1)], "access", 0))
    alerts += e.process("lifecycle", "lifecycle", 0, fed("lifecycle", [*steps, tick(0)], "lifecycle", 1))
    assert alerts + e.advance() + e.drain() == []
    (a,) = final_alerts(Engine([spec], catalog, pseudonymize=pz), [*steps[:2], read(day=-1), tick(0)], 10)
    assert a.title_en == RULE_TITLES["used_after_deletion"]  # without the collection anew: a use


def test_reads_at_one_instant_give_one_alert_whatever_their_arrival(run) -> None:
    """Two readers of a deleted record in the same millisecond, their logs arriving in either
    order: the same alert, naming the same latest reader (uses are ordered by time, then id)."""
    at = [read(day=-1, actor=a).model_copy(update={"event_id": f"read-{a}"}) for a in ("e1", "e2")]
    steps = [collect(day=-3), lc("delete", day=-2)]
    one = run([*steps, *at, tick(0)])["used_after_deletion"]
    other = run([*steps, *at[::-1], tick(0)])["used_after_deletion"]
    assert [(a.alert_id, a.actor_id, a.summary) for a in one] == [
        (b.alert_id, b.actor_id, b.summary) for b in other
    ]


def test_a_read_the_system_refused_after_deletion_is_no_use(run) -> None:
    """Denied, the read returned nothing: the deletion held (seed 002 §六.6(1) 不可被检索和访问). A
    deletion of a copy (a purge job, the warehouse's sync) removes what 定义(11) says must go too."""
    steps = [collect(day=-3), lc("delete", day=-2), read(day=-1, outcome="denied", row_count=0), tick(0)]
    assert run(steps) == {}
    assert run([*steps[:2], read(day=-1, action="delete"), tick(0)]) == {}
    assert set(run([*steps[:2], read(day=-1, outcome="success"), tick(0)])) == {"used_after_deletion"}


def test_a_read_an_hour_before_the_deletion_is_silent(run) -> None:
    assert run([collect(day=-3), read(day=-1 - 1 / 24), lc("delete", day=-1), tick(0)]) == {}


def test_a_transfer_after_deletion_fires(run) -> None:
    got = run([collect(day=-3), lc("delete", day=-2), sent(day=-1), tick(0)])
    (a,) = got["used_after_deletion"]
    assert "proc_call_center" in a.summary and a.actor_id == "proc_call_center"
    # the recipient, no employee's account, in OCSF too (a probe's SIEM saw a user proc_call_center)
    assert a.actor_kind == "recipient" and to_ocsf(a)["evidences"] == [
        {"dst_endpoint": {"name": "proc_call_center", "uid": "proc_call_center"}}
    ]
    (b,) = run([collect(day=-3), lc("delete", day=-2), read(day=-1), tick(0)])["used_after_deletion"]
    assert b.actor_kind == "employee"
    # a deadline passed names the system that keeps the record: a system's account in OCSF
    (c,) = run([collect(day=-40, **LOCATION), tick(0)])["retention_expired"]
    assert c.actor_kind == "system" and to_ocsf(c)["evidences"][0]["actor"]["user"]["type"] == "System"


def test_a_read_after_the_deadline_fires_and_one_before_it_does_not(run) -> None:
    got = run([collect(day=-40, **LOCATION), read(day=-11), read(day=-5), tick(0)])
    (a,) = got["used_after_deadline"]
    assert a.window_start == T0 - 9 * DAY - CST and a.revision == 1  # 24:00 on 22 Dec, Beijing
    assert "past its deadline 2025-12-22," in a.summary  # its last day
    assert len(got["retention_expired"]) == 1


def test_a_read_after_a_deletion_requests_15_days_is_a_use_past_its_deadline(run) -> None:
    """The bank's 15 days (seed 004 流程描述(5)), seed 002 §六.6(1): requested 1 Dec (Beijing), due by 24:00 on 16 Dec. A
    read on day 9 is fine; a read on day 19 of a record that should be gone names its reader, beside
    the overdue request. A transaction record the law requires kept is withheld, not deleted: its
    request sets no deadline for its uses."""
    asked = lc("deletion_requested", day=-31)
    got = run([collect(day=-100), asked, read(day=-22, actor="e7"), read(day=-12, actor="e9"), tick(0)])
    (a,) = got["used_after_deadline"]
    assert "past its deadline 2025-12-16," in a.summary and "read by e9" in a.summary and a.revision == 1
    assert a.first_seen == T0 - 12 * DAY  # the use, not the deadline (a probe's was dated by the deadline)
    # 25 uses, one event a batch: the record keeps its last 20 (`evidence_limit`), the alert is
    # first seen at the first use still
    uses = [read(day=-12 + k / 4, actor="e9") for k in range(25)]
    again = run([collect(day=-100), asked, *uses, tick(0)], batch=1)
    (b,) = again["used_after_deadline"]
    assert (b.revision, b.first_seen, b.last_seen) == (25, T0 - 12 * DAY, uses[-1].ts)
    assert set(got) == {"used_after_deadline", "deletion_request_overdue"}
    refused = lc("deletion_refused", day=-30)
    assert run([collect(day=-100, **TRANSACTION), asked, refused, read(day=-12), tick(0)]) == {}


def test_a_use_alert_raised_before_first_uses_were_kept_keeps_the_first_seen_it_showed(
    run, spec, catalog
) -> None:
    """An alert raised before lifemon kept its first use showed the deadline as first seen; its
    next revision keeps that, not a later use still kept (a review's)."""
    first = Engine([spec], catalog, pseudonymize=pz)
    asked = lc("deletion_requested", day=-31)
    (a,) = run([collect(day=-100), asked, read(day=-12, actor="e9"), tick(-11)], engine=first)[
        "used_after_deadline"
    ]
    held = first.tasks[(0, spec.kind)].keys.get(pz("C1"))
    del held.records["R1"].fired["used_after_deadline<"]  # as such state was kept
    first.tasks[(0, spec.kind)].keys.touch(pz("C1"))
    restored = Engine([spec], catalog, pseudonymize=pz)
    restored.restore(0, first.changes(0))
    (b,) = run([read(day=-5, actor="e3"), tick(0)], engine=restored)["used_after_deadline"]
    assert (b.revision, b.first_seen) == (2, a.window_start) and a.first_seen == T0 - 12 * DAY


def test_a_deletion_request_refused_in_time_is_answered_and_withholds_the_record(run, spec, catalog) -> None:
    """Seed 004 流程描述(5): the bank answers a deletion request as the law asks (in its own 15 days)
    and may refuse it where the law asks (犯罪侦查, 反洗钱). A probe's request refused under a police preservation order stayed
    an open high alert: lifecycle had no way to say it was answered. A refusal by the 15th day
    answers it, and withholds the record from every use but the law's (PIPL art. 47 ¶2); one after
    the 15 days answers late, and the overdue alert stands."""
    asked = lc("deletion_requested", day=-31)  # due by the end of 16 Dec, Beijing
    refused = lc("deletion_refused", day=-20)
    assert run([collect(day=-100), asked, refused, tick(0)]) == {}
    got = run([collect(day=-100), asked, refused, read(day=-12, actor="e9", purpose="marketing"), tick(0)])
    (a,) = got["used_while_withheld"]
    assert set(got) == {"used_while_withheld"} and "read by e9" in a.summary
    assert "withheld after its deletion was refused from 2025-12-17" in a.summary, a.summary
    late = lc("deletion_refused", day=-10)
    assert set(run([collect(day=-100), asked, late, tick(0)])) == {"deletion_request_overdue"}
    # refused in time but logged after the deadline's alert fired: the alert closes, as a late
    # deletion's does (a review: it stayed open for good)
    e, alerts = Engine([spec], catalog, pseudonymize=pz), []
    for i, ev in enumerate([collect(day=-100), asked, tick(0), refused, tick(0.5)]):  # as they arrive
        alerts += e.process("lifecycle", "lifecycle", 0, fed("lifecycle", [ev], "lifecycle", i))
        alerts += e.advance()
    newest = {x.alert_id: x for x in sorted(alerts + e.drain(), key=lambda x: x.revision)}
    (a,) = [x for x in newest.values() if x.rule_id.endswith(".deletion_request_overdue")]
    assert a.status.value == "closed" and "refused 2025-12-12, in time" in a.summary, a.summary


def test_a_deletion_request_the_customer_withdrew_is_closed_and_withholds_nothing(run) -> None:
    """PIPL art. 47: the customer asks for deletion, and may stop asking. A probe's withdrawal had no
    stage to log it by: a dead letter, and the request overdue for good; logged as a refusal, every
    service read after it was a high `used_while_withheld`. A withdrawal (`deletion_withdrawn`, or a
    producer's 撤回删除申请) before the deadline closes the request; one after it leaves the overdue
    alert, the deadline having passed."""
    asked = lc("deletion_requested", day=-31)
    withdrawn = lc("deletion_withdrawn", day=-29)
    served = read(day=-12, actor="e9", purpose="customer_service")
    assert run([collect(day=-100), asked, withdrawn, served, tick(0)]) == {}
    too_late = lc("deletion_withdrawn", day=-10)
    assert set(run([collect(day=-100), asked, too_late, tick(0)])) == {"deletion_request_overdue"}
    # a request made again after the withdrawal is a request again
    again = lc("deletion_requested", day=-25)
    assert set(run([collect(day=-100), asked, withdrawn, again, tick(0)])) == {"deletion_request_overdue"}


def test_a_request_an_agent_files_under_their_own_number_is_the_records_customers(run) -> None:
    """PIPL art. 47: a request is about the record's customer, whoever files it. A probe's agent
    filed under the agent's own customer number (C9): the record's timely deletion, naming its
    customer, left the agent's "request" overdue for good."""
    asked = lc("deletion_requested", subject="C9", day=-31)
    assert run([collect(day=-100), asked, lc("delete", day=-27), tick(0)]) == {}
    # not deleted: the customer's request is overdue, named for the record's customer
    (a,) = run([collect(day=-100), asked, tick(0)])["deletion_request_overdue"]
    assert a.subjects_sample == [pz("C1")]


def test_a_record_the_law_keeps_after_a_deletion_request_serves_the_law_alone(run) -> None:
    """PIPL art. 47 ¶2: a transaction record the AML Law keeps ten years is withheld, not deleted,
    when its customer asks for deletion (requested 1 Dec, due 16 Dec in Beijing), and serves nothing
    but storage and the law from then: a read for marketing on day 19 fires, naming its reader; one
    for AML, one stating no purpose, and one for marketing within the request's 15 days do not."""
    asked = lc("deletion_requested", day=-31)
    steps = [collect(day=-100, **TRANSACTION), asked, lc("deletion_refused", day=-30)]  # answered in time
    got = run([*steps, read(day=-22, actor="e7", purpose="marketing"), read(day=-12, actor="e9", purpose="marketing"), tick(0)])  # fmt: skip
    (a,) = got["used_while_withheld"]
    assert (
        set(got) == {"used_while_withheld"}
        and a.counts == {"records": 1, "uses": 1}
        and "read by e9" in a.summary
    )
    # its 15 days end with 2025-12-16: withheld from the next day (it said "since 2025-12-16")
    assert "from 2025-12-17" in a.summary and "used for marketing" in a.summary
    assert run([*steps, read(day=-12, purpose="kyc_aml"), read(day=-11, actor="e8"), tick(0)]) == {}
    # withheld while the minimum runs: collected 7 Aug 2015, kept to 7 Aug 2025; asked 15 Jun
    old = [
        collect(day=-3800, **TRANSACTION),
        lc("deletion_requested", day=-200),
        lc("deletion_refused", day=-199),
    ]
    during, after = read(day=-180, purpose="marketing"), read(day=-100, actor="e5", purpose="marketing")
    got = run([*old, during, after, tick(0)])
    (b,) = got["used_while_withheld"]
    assert b.counts == {"records": 1, "uses": 1} and "read by e1" in b.summary
    # past the minimum the record is past its own ten years: that read is that deadline's alone
    (c,) = got["used_after_deadline"]
    assert c.counts == {"records": 1, "uses": 1} and "read by e5" in c.summary


def test_a_withheld_record_still_serves_the_customers_contract_while_the_relationship_lasts(run) -> None:
    """Seed 004 基本规定(4)③ (处理个人金融信息属于提供产品或者服务所必需的除外), 流程描述(1)⑬g: a probe's customer
    asked for deletion and kept the account; the opening identity, which the AML Law keeps, was
    withheld, and every teller and payment read of it was a high alert, a timely refusal or not.
    While the relationship lasts, a use the contract needs (retention.yaml `contract_purposes`)
    reading what was collected for it is no use the request withholds it from; marketing still is,
    and once the relationship ended, so is the teller's."""
    identity = collect("ID-1", day=-2000, cats=("customer_name", "id_document_no"), purpose="account_service")
    asked, refused = lc("deletion_requested", "ID-1", day=-31), lc("deletion_refused", "ID-1", day=-29)
    steps = [identity, asked, refused]
    for purpose in ("account_service", "payment", "customer_service"):
        assert run([*steps, read("ID-1", day=-12, purpose=purpose), tick(0)]) == {}, purpose
    # unanswered, the request is that rule's alone: the reads are still the contract's
    got = run([identity, asked, read("ID-1", day=-12, purpose="account_service"), tick(0)])
    assert set(got) == {"deletion_request_unanswered"}
    (a,) = run([*steps, read("ID-1", day=-12, actor="e9", purpose="marketing"), tick(0)])[
        "used_while_withheld"
    ]
    assert "used for marketing, read by e9" in a.summary
    ended = lc("relationship_ended", "ID-1", day=-14)
    got = run([*steps, ended, read("ID-1", day=-12, purpose="account_service"), tick(0)])
    assert (
        set(got) == {"used_while_withheld"}
        and "used for account_service" in got["used_while_withheld"][0].summary
    )


def test_a_deletion_that_arrives_after_the_read_still_decides_it(run, spec, catalog) -> None:
    """Inputs interleave differently live and in a replay: the read is judged again when the
    deletion that precedes it in event time arrives, even after the read's input was drained."""
    engine = Engine([spec], catalog, pseudonymize=pz)
    assert run([collect(day=-3), read(day=-1)], engine=engine) == {}
    got = run([lc("delete", day=-1.5), tick(0)], engine=engine)
    (a,) = got["used_after_deletion"]
    assert a.window_start == T0 - int(1.5 * DAY) and a.window_end == T0 - DAY
    in_order = run([collect(day=-3), lc("delete", day=-1.5), read(day=-1), tick(0)])
    assert [(x.alert_id, x.summary) for x in in_order["used_after_deletion"]] == [(a.alert_id, a.summary)]


def test_a_read_judged_before_its_record_was_known_is_judged_again_when_time_comes_back(
    run, spec, catalog
) -> None:
    """The kill -9 test's lost alert (tests/test_replay.py, 1 run in 40): the read came first, and
    the watermark passed it while the lifecycle input had delivered nothing (it then holds nothing
    back), so the read's timer found no record. The record's history came next and pulled the
    watermark back to its years: judged again there, the read was still ahead, left for "its own
    timer", which had fired already. Nothing judged it again, not even the end of the input."""
    e = Engine([spec], catalog, pseudonymize=pz)
    alerts = e.process("access", "access", 0, fed("access", [read(day=-1), read("R2", "C2", day=-0.9)]))
    alerts += e.advance()  # past the read: no lifecycle has reached the task yet
    history = [collect(day=-100, **LOCATION), tick(-50)]
    alerts += e.process("lifecycle", "lifecycle", 0, fed("lifecycle", history, "lifecycle"))
    alerts += e.advance(behind={("lifecycle", 0)})  # the lifecycle topic, still being read, holds time back
    alerts += e.process("lifecycle", "lifecycle", 0, fed("lifecycle", [tick(0)], "lifecycle", 2))
    alerts += e.advance() + e.drain()
    (a,) = [x for x in alerts if _rule(x) == "used_after_deadline"]
    (b,) = run([*history, read(day=-1), tick(0)])["used_after_deadline"]  # in time order
    assert (a.alert_id, a.summary) == (b.alert_id, b.summary)


def test_an_earlier_removal_reported_after_the_alert_revises_it_and_opens_no_other(
    run, spec, catalog
) -> None:
    """Deleted on day -1.5 and read on day -1: the alert. The anonymization of day -2 reaches the
    monitor later (another system's feed): the next read revises the same alert, from the day -2
    removal, and the read of day -1 is not counted again."""
    e = Engine([spec], catalog, pseudonymize=pz)
    (a,) = run([collect(day=-3), lc("delete", day=-1.5), read(day=-1)], engine=e)["used_after_deletion"]
    got = run([lc("anonymize", day=-2), read(day=-0.5, actor="e2"), tick(0)], engine=e)
    (b,) = got["used_after_deletion"]
    assert (b.alert_id, b.revision, b.counts) == (a.alert_id, 2, {"records": 1, "uses": 2})
    assert (a.window_start, b.window_start) == (T0 - int(1.5 * DAY), T0 - 2 * DAY)


def test_an_alert_raised_before_the_anchor_keeps_its_id(run, spec, catalog) -> None:
    """State of an earlier lifemon: the alert's id hashed the removal's time and no anchor was kept.
    Restored, its next revision keeps that id, and keeps it when an earlier removal arrives."""
    first = Engine([spec], catalog, pseudonymize=pz)
    (a,) = run([collect(day=-3), lc("delete", day=-1.5), read(day=-1)], engine=first)["used_after_deletion"]
    held = first.tasks[(0, spec.kind)].keys.get(pz("C1"))
    del held.records["R1"].fired["used_after_deletion@"]
    first.tasks[(0, spec.kind)].keys.touch(pz("C1"))
    # what the earlier lifemon named it: the removal's time hashed
    earlier_id = Finding(spec.kind, a.rule_id, "R1", a.window_start, 0, a.severity, 1, False, "", "").alert_id
    restored = Engine([spec], catalog, pseudonymize=pz)
    restored.restore(0, first.changes(0))
    (b,) = run([read(day=-0.8, actor="e2")], engine=restored)["used_after_deletion"]
    (c,) = run([lc("anonymize", day=-2), read(day=-0.5, actor="e3")], engine=restored)["used_after_deletion"]  # fmt: skip
    assert (b.alert_id, b.revision, c.alert_id, c.revision) == (earlier_id, 2, earlier_id, 3)


def test_a_deadline_waits_for_the_slowest_input_still_being_read(spec, catalog) -> None:
    """Catching up on a backlog, the re-keyed accesses run a month ahead of the lifecycle topic:
    the location trace's deadline passes on their clock before the deletion dated the day before
    it is read. The timer waits for the lifecycle input while it is behind, so the deletion counts;
    told nothing is behind, the engine fires on the fastest input's clock, as it did before."""

    def catch_up(behind: set[tuple[str, int]]) -> list[Any]:
        e = Engine([spec], catalog, pseudonymize=pz)
        alerts = e.process("lifecycle", "l", 0, fed("lifecycle", [collect(day=-31, **LOCATION)], "l"))
        alerts += e.process("access", "a", 0, fed("access", [read("R-other", day=0)], "a"))
        alerts += e.advance(behind=behind)
        deleted = lc("delete", day=-2, method="purge", system="mobile_banker")
        alerts += e.process("lifecycle", "l", 0, fed("lifecycle", [deleted], "l", 1))
        return alerts + e.advance(caught_up={("lifecycle", 0), ("access", 0), ("transfer", 0)}) + e.drain()

    assert catch_up(behind={("lifecycle", 0)}) == []
    (false_alarm, closed) = catch_up(behind=set())
    assert false_alarm.status == "open" and closed.status == "closed"


def rekeyed(key: str, events: list[Any]) -> list[tuple[Any, Any]]:
    return [(None, ev) for _, ev in rekey(key, events)]  # as read back from a repartition topic


LIFECYCLE_SOURCES = {("lifecycle", "subject_id"): frozenset({("l", 0), ("l", 1)})}


def rekeying(spec: Any, catalog: Any, sources: dict = LIFECYCLE_SOURCES) -> Engine:
    """An engine as the runtime drives it: re-keyed records reach the task a test sends them to."""
    e = Engine([spec], catalog, pseudonymize=pz)
    e.rekey_locally = False
    e.repartition_sources = sources
    return e


def read_back(
    e: Engine, events: list[Any], partition: int = 1, offset: int = 0, source: Engine | None = None
) -> list[Any]:
    """Lifecycle events read from lifecycle partition `partition` (by `source`, another instance,
    or `e` itself), re-keyed by customer and read back by task 0 of `e`."""
    ingested = (source or e).ingest("lifecycle", "l", partition, fed("lifecycle", events, "l", offset))
    return e.process_rekeyed("lifecycle", "subject_id", "r.l", 0, rekeyed("subject_id", ingested))


def deletion() -> Any:
    """The location trace's deletion, dated before its deadline."""
    return lc("delete", day=-2, method="purge", system="mobile_banker")


def test_a_deadline_waits_for_a_source_partition_still_being_read(spec, catalog) -> None:
    """The deletion is in another partition of the lifecycle topic than the task it is re-keyed
    to, still unread (a backfill, or a filter that left the task's own inputs quiet). Everything
    the task reads is caught up, so on its own inputs it follows the instance clock a month ahead;
    the lifecycle partition still being read holds it at the latest time read from there, as
    Flink's watermark after a shuffle is the minimum of every upstream partition's. Without that
    hold the deadline fired before the deletion and closed when it came (the eighth stop's 12
    false alerts)."""

    def catch_up(sources_behind: set[tuple[str, int]]) -> list[Any]:
        e = rekeying(
            spec, catalog, LIFECYCLE_SOURCES | {("access", "subject_ids"): frozenset({("a", 0), ("a", 1)})}
        )
        everything = {(s, p) for s in ("lifecycle", "access", "transfer") for p in (0, 1)}
        alerts = read_back(e, [collect(day=-31, **LOCATION), collect("R7", "C7", -20)])
        accesses = e.ingest("access", "a", 0, fed("access", [read("R-other", day=0)], "a"))
        alerts += e.process_rekeyed("access", "subject_ids", "r.a", 0, rekeyed("subject_ids", accesses))
        alerts += e.advance(everything, sources_behind=sources_behind)
        alerts += read_back(e, [deletion()], offset=2)
        return alerts + e.advance(everything) + e.drain()

    assert catch_up(sources_behind={("l", 1)}) == []
    (false_alarm, closed) = catch_up(sources_behind=set())
    assert false_alarm.status == "open" and closed.status == "closed"


def test_a_deadline_waits_for_the_slowest_source_partitions_mark(spec, catalog) -> None:
    """A repartition topic mixes its source's partitions, each at its own pace: here lifecycle
    partition 0 re-keyed its whole day (to 23:59) into this task's partition before partition 1's
    deletion, dated the morning, was read back. The latest lifecycle time the task has seen says
    nothing of partition 1; its mark (how far partition 1 had read when it re-keyed what came
    before) does, so the location trace's deadline waits for the deletion. This was the mixed
    benchmark's 7-16 false `retention_expired` alerts a run, each closed when its deletion came,
    their number set by where the pseudonym key sent each customer."""

    def catch_up(marked: bool) -> list[Any]:
        e = rekeying(spec, catalog)
        alerts = read_back(e, [collect(day=-31, **LOCATION)])
        if marked:
            e.mark("lifecycle", "subject_id", 0, [("l", 1, T0 - 31 * DAY)])
        alerts += read_back(e, [collect("R7", "C7", -0.001)], partition=0)
        e.mark("lifecycle", "subject_id", 0, [("l", 0, T0)])
        accesses = e.ingest("access", "a", 0, fed("access", [read("R-other", day=0)], "a"))
        alerts += e.process_rekeyed("access", "subject_ids", "r.a", 0, rekeyed("subject_ids", accesses))
        quiet = {("access", 0), ("transfer", 0)}
        alerts += e.advance(quiet, behind={("lifecycle", 0)})  # the deletion still in the topic
        alerts += read_back(e, [deletion()], offset=2)
        e.mark("lifecycle", "subject_id", 0, [("l", 1, T0 - 2 * DAY)])
        return alerts + e.advance(quiet | {("lifecycle", 0)}) + e.drain()

    assert catch_up(marked=True) == []
    assert catch_up(marked=False) == []  # partition 1 not heard from: it may send anything yet


def test_a_deadline_waits_for_another_instances_source_partition(spec, catalog) -> None:
    """Two instances in one group: lifecycle partition 1 is the other instance's, still mid-backlog
    (its last mark: day -31). This instance has read all it owns and read back its repartition
    partition, so every input of the task is caught up and it follows this instance's clock (the
    end of the day). The other instance's mark says partition 1 may still send anything after
    day -31, as the deletion it sends next: the deadline must wait for it, as the marks promise
    ("they hold between instances too", docs/architecture.md)."""

    def catch_up(owned: set[tuple[str, int]] | None) -> list[Any]:
        e = rekeying(spec, catalog)
        other = rekeying(spec, catalog)  # the other instance, owner of partition 1
        alerts = read_back(e, [collect(day=-31, **LOCATION)], source=other)
        e.mark("lifecycle", "subject_id", 0, [("l", 1, T0 - 31 * DAY)])
        alerts += read_back(e, [collect("R7", "C7", -0.001)], partition=0)
        e.mark("lifecycle", "subject_id", 0, [("l", 0, T0)])
        everything = {(s, 0) for s in ("lifecycle", "access", "transfer")}
        kw: dict[str, Any] = {} if owned is None else {"sources_owned": owned}
        alerts += e.advance(everything, clock=T0, **kw)
        alerts += read_back(e, [deletion()], offset=2, source=other)
        e.mark("lifecycle", "subject_id", 0, [("l", 1, T0 - 2 * DAY)])
        return alerts + e.advance(everything, clock=T0, **kw) + e.drain()

    assert catch_up(owned={("l", 0)}) == []
    (false_alarm, closed) = catch_up(owned=None)  # an idle exit, a replay: no other instance
    assert false_alarm.status == "open" and closed.status == "closed"


def test_a_mark_from_a_source_no_longer_read_holds_nothing_back(spec, catalog) -> None:
    """The marks a task saved name the source partitions that fed it then. A source taken out of
    the configuration since (a raw-log topic no longer read, a topic renamed) never marks again:
    its last mark must not hold the input back for good, or a busy task never fires again."""
    e = rekeying(spec, catalog)
    alerts = read_back(e, [collect(day=-40, **LOCATION)])
    # a mark saved before the configuration changed: a source that no longer feeds the topic
    e.mark("lifecycle", "subject_id", 0, [("gone-raw-topic", 0, T0 - 39 * DAY)])
    e.mark("lifecycle", "subject_id", 0, [("l", 0, T0), ("l", 1, T0)])
    alerts += e.advance(behind={("lifecycle", 0)})  # the repartition partition still busy
    assert [(a.title_en, a.status) for a in alerts] == [(RULE_TITLES["retention_expired"], "open")]


def _lines(path: Any, events: list[Any]) -> None:
    path.write_bytes(b"\n".join(ev.model_dump_json().encode() for ev in events))


@pytest.mark.parametrize("day_files", [False, True], ids=["one-lifecycle-file", "two-lifecycle-files"])
def test_a_replay_whose_access_file_runs_ahead_keeps_the_deletion(spec, catalog, tmp_path, day_files) -> None:
    """The replay merges files batch by batch: its first batch of accesses is a month past the
    lifecycle file's. Files still being read hold the deadline back, as in the live run, also when
    the stream's other file (a folder of day files) has ended and every other stream has too."""
    collected = collect(day=-31, **LOCATION)
    rest = [
        collect("R7", "C7", -30),
        collect("R8", "C8", -29),
        lc("delete", day=-2, method="purge", system="mobile_banker"),
    ]
    if day_files:
        _lines(tmp_path / "a.lifecycle.jsonl", [collected])
        _lines(tmp_path / "b.lifecycle.jsonl", rest)
    else:
        _lines(tmp_path / "pfi.lifecycle.jsonl", [collected, *rest])
    _lines(tmp_path / "pfi.access.jsonl", [read("R-other", day=0)])
    _lines(tmp_path / "pfi.transfer.jsonl", [sent("R-x", "C-x", day=-30)])
    files = sorted(tmp_path.iterdir())
    alerts, dead = replay(Engine([spec], catalog, pseudonymize=pz), Decoder(), files, batch_size=1)
    assert (alerts, dead) == ([], [])


def test_an_input_that_never_reached_the_task_holds_nothing_back(spec, catalog) -> None:
    """pfi.transfer lags, but its records are re-keyed by customer and none of them reaches this
    partition: the transfer input, never heard from here, must not pin the watermark, or the
    location trace would never be found overdue while the source lags (found by a review)."""
    e = Engine([spec], catalog, pseudonymize=pz)
    e.process("lifecycle", "l", 0, fed("lifecycle", [collect(day=-40, **LOCATION)], "l"))
    alerts = []
    for day in range(-39, 1):
        alerts += e.process("access", "a", 0, fed("access", [read("R-other", day=day)], "a", day + 40))
        alerts += e.advance(behind={("transfer", 0)})
    assert [(a.title_en, a.status) for a in alerts] == [(RULE_TITLES["retention_expired"], "open")]


# -- collection the customer must have agreed to (seed 004 流程描述(1)②, (4)②) ------------------------------
@pytest.mark.parametrize(
    ("collected", "purpose", "consents", "fires"),
    [
        (("biometric_template",), "authentication", [], True),
        (("biometric_template",), "authentication", [False], True),  # a consent, not a separate one
        (("biometric_template",), "authentication", [True], False),
        (("marketing_tags",), "marketing", [], True),
        (("marketing_tags",), "marketing", [False], False),
        (("mobile_phone",), "customer_service", [], False),  # nothing the policy asks consent for
        # sensitive (seed 004 基本规定(4)①), unless a no-consent case of 流程描述(1)⑬ answers
        (("location_trace",), "branch_service", [], True),
        (("location_trace",), "branch_service", [False], True),
        (("location_trace",), "branch_service", [True], False),
        (("health_data",), "insurance_referral", [], True),
        (("health_data",), "credit_review", [], False),  # a loan the customer asked for (⑬g)
        (("location_trace",), "kyc_aml", [], False),  # a duty of the law (⑬a)
        (("location_trace",), "反欺诈", [], False),  # fraud spotted and stopped (⑬i): a probe's fired
        (("payment_account_no", "id_document_no"), "account_service", [], False),  # an account's opening
    ],
    ids=[
        "face, no consent",
        "face, plain consent",
        "face, separate consent",
        "tags, no consent",
        "tags, consent",
        "phone for service",
        "location, no consent",
        "location, plain consent",
        "location, separate consent",
        "health for a referral, no consent",
        "health for a loan",
        "location for KYC",
        "location for fraud",
        "account opened",
    ],
)
def test_collection_that_needs_the_customers_consent(
    spec, catalog, collected, purpose, consents, fires
) -> None:
    from schemas.models import Consent

    e = Engine([spec], catalog, pseudonymize=pz)
    given = [
        Consent(subject_id="C1", ts=T0 - DAY, purpose=purpose, status="granted", separate=sep)
        for sep in consents
    ]
    other = Consent(subject_id="C9", ts=0, purpose="marketing", status="granted")  # the stream is fed
    e.apply_reference("consents", refs("consents", [*given, other]))
    ev = collect(day=0, cats=collected, purpose=purpose, system="mobile_banker")
    alerts = e.process("lifecycle", "lifecycle", 0, fed("lifecycle", [ev], "lifecycle", 0)) + e.drain()
    assert [a.rule_id.rsplit(".", 1)[1] for a in alerts] == (["collected_without_consent"] if fires else [])
    if fires:
        assert alerts[0].severity.value == "high" and alerts[0].evidence_event_ids == [ev.event_id]


def test_a_location_consent_logged_by_the_features_name_is_the_branch_services(spec, catalog) -> None:
    """A probe's consent platform logged the app's location switch as 定位服务: no consent to the
    nearby-branch service, and the branch check-in was a high alert (purposes.yaml `also`)."""
    from schemas.models import Consent

    e = Engine([spec], catalog, pseudonymize=pz)
    given = Consent(subject_id="C1", ts=T0 - DAY, purpose="定位服务", status="granted", separate=True)
    e.apply_reference("consents", refs("consents", [given]))
    ev = collect(day=0, cats=("location_trace",), purpose="branch_service", system="mobile_banker")
    assert e.process("lifecycle", "lifecycle", 0, fed("lifecycle", [ev], "lifecycle", 0)) + e.drain() == []


def test_a_location_trace_after_the_customer_turned_location_off_fires_and_unfed_decides_nothing(
    spec, catalog
) -> None:
    """A probe's: the app collected a location trace after the customer withdrew the separate
    consent to it (the privacy policy: 关闭后我行将不再继续采集), silently. Where no consents are fed at
    all, a location trace decides nothing (`fires_unfed: false`), while a face template still fires."""
    from schemas.models import Consent

    def alerts(consents: list[Consent], cats: tuple[str, ...], purpose: str) -> list[str]:
        e = Engine([spec], catalog, pseudonymize=pz)
        e.apply_reference("consents", refs("consents", consents))
        ev = collect(day=0, cats=cats, purpose=purpose, system="mobile_banker")
        got = e.process("lifecycle", "lifecycle", 0, fed("lifecycle", [ev], "lifecycle", 0)) + e.drain()
        return [a.summary for a in got]

    turned = [
        Consent(subject_id="C1", ts=T0 - days * DAY, purpose="branch_service", status=status, separate=True)
        for days, status in ((9, "granted"), (1, "withdrawn"))
    ]
    (summary,) = alerts(turned, ("location_trace",), "branch_service")
    assert "no separate consent (单独同意) of the customer for branch_service" in summary
    assert summary.endswith("基本规定(4)①")
    assert alerts([], ("location_trace",), "branch_service") == []
    assert len(alerts([], ("biometric_template",), "authentication")) == 1


def test_a_consent_recorded_on_a_channel_is_the_customers_consent_to_the_purpose(spec, catalog) -> None:
    """A probe's consent platform logged marketing opt-ins per channel (sms, app_push) and a face
    consent with the app it was captured in (`channel: app_push`, separate): both collections were
    high alerts for no consent, while offscope_marketing and transfer_policy read the same records
    as given. For marketing, whose channels are where the customer is contacted (purposes.yaml),
    an opt-in on any channel stands until each is withdrawn; for a purpose without channels, the
    newest word on any channel decides (a face consent withdrawn in the app ends it)."""
    from schemas.models import Consent

    def said(purpose: str, *words: tuple[int, str, str | None, bool]) -> list[Consent]:
        return [
            Consent(subject_id="C1", ts=ts, purpose=purpose, status=status, channel=ch, separate=sep)
            for ts, status, ch, sep in words
        ]

    def fires(consents: list[Consent], cats: tuple[str, ...], purpose: str) -> bool:
        e = Engine([spec], catalog, pseudonymize=pz)
        e.apply_reference("consents", refs("consents", consents))
        ev = collect(day=0, cats=cats, purpose=purpose, system="mobile_banker")
        alerts = e.process("lifecycle", "lifecycle", 0, fed("lifecycle", [ev], "lifecycle", 0)) + e.drain()
        return [a.rule_id.rsplit(".", 1)[1] for a in alerts] == ["collected_without_consent"]

    tags, face = (("marketing_tags",), "marketing"), (("biometric_template",), "authentication")
    opted_in = said(
        "marketing", (T0 - 3 * DAY, "granted", "sms", False), (T0 - 3 * DAY, "granted", "app_push", False)
    )

    # an opt-out of the app's marketing alone (its purpose names the channel) leaves the SMS opt-in;
    # a withdrawal of marketing itself, for no channel or logged on the app, ends both
    # (purposes.yaml `withdrawal_scope: all_channels`)
    def off(*channels: str) -> list[Consent]:
        return [c for ch in channels for c in said(f"marketing_{ch}", (T0 - DAY, "withdrawn", None, False))]

    assert not fires(opted_in, *tags)
    assert not fires(opted_in + off("app_push"), *tags)
    assert fires(opted_in + said("marketing", (T0 - DAY, "withdrawn", None, False)), *tags)
    assert fires(opted_in + said("marketing", (T0 - DAY, "withdrawn", "app_push", False)), *tags)
    assert fires(said("marketing", (T0 - DAY, "withdrawn", "sms", False)), *tags)
    # a grant for no channel, then an opt-out of each channel the bank markets on: it stands on
    # none (a probe's customer who refused phone, SMS, app and WeChat one by one still "consented")
    general = said("marketing", (T0 - 3 * DAY, "granted", None, False))
    assert fires(general + off("phone", "sms", "app_push", "wechat"), *tags)
    assert not fires(general + off("sms", "app_push", "wechat"), *tags)
    in_app = said("authentication", (T0 - 3 * DAY, "granted", "app_push", True))
    assert not fires(in_app, *face)
    assert fires(in_app + said("authentication", (T0 - DAY, "withdrawn", "app_push", False)), *face)
    assert fires(said("authentication", (T0 - DAY, "granted", "app_push", False)), *face)  # not separate


# -- a minor's data (seed 004 流程描述(1)③) ---------------------------------------------------------------
def born_on(spec: Any, catalog: Any, born: str | None, consents: list[Any] = ()) -> Engine:
    """An engine whose customer C1 core banking says was born on `born`, with C1's `consents` (and
    another customer's, so the stream is fed)."""
    from schemas.models import Consent, Customer

    e = Engine([spec], catalog, pseudonymize=pz)
    c1 = Customer(customer_id="C1", ts=0, org_id="S0101", org_path=["HO", "B01", "S0101"], birth_date=born)
    e.apply_reference("customers", refs("customers", [c1]))
    other = Consent(subject_id="C9", ts=0, purpose="marketing", status="granted")
    e.apply_reference("consents", refs("consents", [*consents, other]))
    return e


def collected(e: Engine, ev: LifecycleEvent) -> list[Any]:
    return e.process("lifecycle", "lifecycle", 0, fed("lifecycle", [ev], "lifecycle", 0)) + e.drain()


@pytest.mark.parametrize(
    ("born", "consents", "fires"),
    [
        ("2012-01-02", [], True),  # 13: its 14th birthday is tomorrow
        ("2012-01-02", [("guardian", True)], False),
        ("2012-01-02", [("subject", True)], True),  # the child's own separate consent
        ("2012-01-02", [("guardian", False)], True),  # the guardian's, not a separate one
        ("2012-01-01", [("subject", True)], True),  # the 14th birthday itself: still under 14
        ("2011-12-31", [("subject", True)], False),  # 14 since today: the minor's own will do
        ("2011-12-31", [("guardian", True)], False),
        ("2011-12-31", [("subject", False)], True),
        ("2008-01-01", [], True),  # the 18th birthday itself: still a minor
        ("2007-12-31", [], False),  # of age since today: a phone number for service needs no consent
        (None, [], False),  # core banking gives no birth date: nothing to judge
    ],
    ids=[
        "13, none",
        "13, guardian separate",
        "13, own separate",
        "13, guardian plain",
        "14th birthday, own separate",
        "14, own separate",
        "14, guardian separate",
        "14, own plain",
        "18th birthday, none",
        "18, none",
        "no birth date",
    ],
)
def test_a_minors_data_is_collected_only_with_a_separate_consent_a_guardians_under_14(
    spec, catalog, born, consents, fires
) -> None:
    """Seed 004 流程描述(1)③: 收集年满14周岁未成年人的个人信息前, 应征得未成年人或其监护人的单独同意; 不满14
    周岁的, 应征得其监护人的单独同意. Every collection, not only those retention.yaml `collection_consent`
    names; an age is reached the day after the birthday (周岁), on the bank's calendar day (T0 is
    2026-01-01 08:00 in Beijing)."""
    from schemas.models import Consent

    given = [
        Consent(subject_id="C1", ts=T0 - DAY, purpose="customer_service", status="granted", separate=sep, given_by=by)
        for by, sep in consents
    ]  # fmt: skip
    ev = collect(day=0, cats=("mobile_phone",), purpose="customer_service", system="core_banking")
    alerts = collected(born_on(spec, catalog, born, given), ev)
    assert [_rule(a) for a in alerts] == (["minor_collected_without_consent"] if fires else [])
    if fires:
        (a,) = alerts
        assert a.severity.value == "high" and a.evidence_event_ids == [ev.event_id]
        assert ("under 14" if born > "2011-12-31" else "aged 14 to 17") in a.summary
        assert born not in a.summary  # the age band, never the birth date


def test_a_minors_face_without_consent_is_one_alert_of_the_minors_rule(spec, catalog) -> None:
    """A 10-year-old's face template with no consent breaks both the biometric rule and the minor's:
    one alert, the minor's, which asks more (the guardian's separate consent)."""
    ev = collect(day=0, cats=("biometric_template",), purpose="authentication", system="mobile_banker")
    alerts = collected(born_on(spec, catalog, "2016-05-01"), ev)
    assert [_rule(a) for a in alerts] == ["minor_collected_without_consent"]
    assert (
        "without a guardian's separate consent (监护人单独同意): no consent for authentication"
        in alerts[0].summary
    )


def test_a_minor_as_producers_write_them_and_aged_on_the_banks_calendar_day(spec, catalog, tmp_path) -> None:
    """Core banking's customer record with its birth date, the consent platform's guardian written
    监护人, read from files as `lifemon replay` does. The collection at 01:00 in Beijing on 1 January
    2026 is on the day after the 14th birthday there (in UTC it is still the birthday): the
    customer's own separate consent will do; the 13-year-old's needs the guardian's."""
    customers = [
        {"customer_id": cid, "ts": T0 - 400 * DAY, "org_id": "S0101", "org_path": ["HO", "B01", "S0101"],
         "status": "正常", "birth_date": born}
        for cid, born in (("C1", "2011-12-31"), ("C2", "20120630"), ("C3", "2012/06/30"), ("C4", ""),
                          ("C5", "0000-00-00"))
    ]  # fmt: skip
    consents = [
        {"subject_id": cid, "ts": T0 - 30 * DAY, "purpose": "customer_service", "status": "同意", "separate": True,
         "given_by": by}
        for cid, by in (("C1", "本人"), ("C2", "本人"), ("C3", "监护人"))
    ]  # fmt: skip
    night = -7 * HOUR / DAY  # 2025-12-31T17:00Z, 01:00 on 1 January in Beijing
    (tmp_path / "pfi.customers.jsonl").write_text("\n".join(map(json.dumps, customers)), encoding="utf-8")
    (tmp_path / "pfi.consents.jsonl").write_text("\n".join(map(json.dumps, consents)), encoding="utf-8")
    _lines(tmp_path / "pfi.lifecycle.jsonl", [collect(f"R{c}", f"C{c}", night) for c in (1, 2, 3, 4, 5)])
    alerts, dead = replay(Engine([spec], catalog, pseudonymize=pz), Decoder(), sorted(tmp_path.iterdir()))
    # core banking's 20120630 and 2012/06/30 are dates; a blank or 0000-00-00 is none, and the
    # customer record (its org, its status) is kept, not dead-lettered with it (a review's)
    assert dead == []
    (a,) = latest(alerts)
    assert _rule(a) == "minor_collected_without_consent" and a.subjects_sample == [pz("C2")]
    assert "is the minor's own, not a guardian's" in a.summary


def test_a_minors_collection_logged_before_the_customer_export_is_judged_when_it_comes(spec, catalog) -> None:
    """A review's: the account opening is logged before the nightly customer export brings the
    9-year-old's birth date; judged at arrival, the collection was never held, while a replay
    (customers first) fired. It waits for the watermark as a consent's collection does."""
    from schemas.models import Customer

    e = Engine([spec], catalog, pseudonymize=pz)
    e.apply_reference("customers", refs("customers", [Customer(customer_id="C9", ts=0, org_id="S0101", org_path=["HO", "B01", "S0101"])]))  # fmt: skip
    ev = collect(day=0, cats=("mobile_phone",), purpose="customer_service", system="core_banking")
    alerts = e.process("lifecycle", "lifecycle", 0, fed("lifecycle", [ev], "lifecycle", 0))
    child = Customer(
        customer_id="C1", ts=0, org_id="S0101", org_path=["HO", "B01", "S0101"], birth_date="2016-05-01"
    )
    e.apply_reference("customers", refs("customers", [child]))
    alerts += e.drain()
    assert [_rule(a) for a in alerts] == ["minor_collected_without_consent"]


def test_a_separate_consent_logged_seconds_after_the_collection_it_precedes_covers_it(spec, catalog) -> None:
    """The face template is collected at 10:00:02, two seconds after the customer's separate consent;
    the consent system's record reaches the monitor after the collection's. The collection waits for
    the watermark, so the consent covers it; one given after the collection does not."""
    from schemas.models import Consent

    def consent_at(ts: int) -> Consent:
        return Consent(subject_id="C1", ts=ts, purpose="authentication", status="granted", separate=True)

    ev = collect(day=0, cats=("biometric_template",), purpose="authentication", system="mobile_banker")
    got = {}
    for given in (T0 - 2_000, T0 + 2_000):
        e = Engine([spec], catalog, pseudonymize=pz)
        e.apply_reference(
            "consents", refs("consents", [consent_at(0).model_copy(update={"subject_id": "C9"})])
        )
        alerts = e.process("lifecycle", "lifecycle", 0, fed("lifecycle", [ev], "lifecycle", 0))
        e.apply_reference("consents", refs("consents", [consent_at(given)]))
        got[given] = [a.rule_id.rsplit(".", 1)[1] for a in alerts + e.advance() + e.drain()]
    assert got == {T0 - 2_000: [], T0 + 2_000: ["collected_without_consent"]}


def test_a_deployment_that_feeds_no_consents_still_owes_a_separate_one_for_a_face(run) -> None:
    """No consents stream at all (a bulk-only setup): marketing tags collected decide nothing, as no
    consent could be seen; a face template needs a separate consent before it is collected (seed 004
    流程描述(1)②, PIPL art. 29), and none on record is the offence the bank must disprove."""
    assert run([collect(cats=("marketing_tags",), purpose="marketing", system="crm")]) == {}
    got = run([collect(cats=("biometric_template",), purpose="authentication", system="mobile_banker")])
    (a,) = got["collected_without_consent"]
    assert "(the consents stream holds none at all)" in a.summary and set(got) == {
        "collected_without_consent"
    }


# -- how it is stored (seed 002 §五(2)(4)) -----------------------------------------------------------------
def test_card_secrets_on_a_client_app_and_biometrics_beside_identity(run) -> None:
    """§五(4): the bank's own card's CVN kept in the 掌上银行家 app fires (critical); in the card system,
    where the issuer keeps it encrypted, not. §五(2): a face template in the record that holds the
    name and ID number fires; one kept apart, not."""
    got = run([
        lc("store", "R1", "C1", 0, categories=["payment_account_no", "card_cvn"], purpose="payment", system="mobile_banker"),
        collect("R2", cats=("payment_account_no", "card_cvn"), purpose="payment", system="card_system"),
        collect("R3", cats=("customer_name", "id_document_no", "biometric_template"), purpose="kyc_aml"),
        collect("R4", cats=("biometric_template",), purpose="kyc_aml"),
    ])  # fmt: skip
    # the faces were collected with no consent on record (none fed): that rule's own test is above
    assert set(got) == {"card_data_on_client", "biometric_with_identity", "collected_without_consent"}
    (client,) = got["card_data_on_client"]
    assert client.severity.value == "critical" and "stores card_cvn on mobile_banker" in client.summary
    (together,) = got["biometric_with_identity"]
    assert together.summary.startswith("record R3 on crm holds biometric and identity data together")


@pytest.mark.parametrize(
    ("word", "field"),
    [("人脸特征值", "biometric_template"), ("face_template", "biometric_template"),
     ("指纹模板", "biometric_template"), ("人脸图像", "face_image"), ("人脸图像信息", "face_image")],
)  # fmt: skip
def test_a_biometric_template_or_face_image_by_its_usual_names_is_biometric(run, word, field) -> None:
    """A probe's: a face check storing 人脸特征值, face_template, 人脸图像 or 指纹模板 with the name
    and ID number, and an app keeping it, raised nothing (only `biometric_template` did). §五(4)
    names the samples (样本数据: a face image, as 刷脸登录 collects it) beside the templates."""
    got = run([lc("store", "R1", "C1", 0, categories=["customer_name", "id_document_no", word], purpose="authentication", system="mobile_banking")])  # fmt: skip
    assert {"card_data_on_client", "biometric_with_identity"} <= set(got)
    (kept,) = got["card_data_on_client"]
    assert f"stores {field} on mobile_banking" in kept.summary


@pytest.mark.parametrize(
    "system",
    ["ATM-BJ-0042", "pos_terminal_0231", "Mobile-Banking iOS", "掌上银行家", "ATM-Shanghai-0042",
     "mobile_banking_ios_beta", "mobile_banking_android_prod", "pos_terminal_shop_0231"],
)  # fmt: skip
def test_a_client_device_or_build_is_a_client(run, system) -> None:
    """A probe's CVN stored on `ATM-BJ-0042`, `pos_terminal_0231`, `mobile_banking_ios` or
    掌上银行家 passed as no client's: a device or build of a client system is one (its name begins
    with the id's words, and names no server after them); a system that merely holds one's letters
    is not, nor a client's servers (reviews')."""
    cvn = {"categories": ["payment_account_no", "card_cvn"], "purpose": "payment"}
    (kept,) = run([lc("store", "R1", "C1", 0, system=system, **cvn)])["card_data_on_client"]
    assert kept.severity.value == "critical"
    servers = ("atmosphere_card_vault", "mobile_banking_backend", "atm_switch", "pos_terminal_management",
               "mobile_banking_api", "atm_db", "atm_server01", "mobile_banking_backend2")  # fmt: skip
    for server in servers:
        assert run([lc("store", "R2", "C1", 0, system=server, **cvn)]) == {}, server


def test_a_face_template_is_captured_on_a_terminal_or_app_but_never_kept_there(run) -> None:
    """§五(4) names 个人生物识别信息的样本数据、模板 beside the card secrets: the app that captures a
    face for sign-in sends it (collect: silent), one that stores it fires, and so does a POS
    terminal keeping a card's track data and PIN. An ATM or POS taking them for a payment is where
    §三(5)(6) says they are collected (a probe's ATM withdrawal, its PIN erased two seconds later,
    was a critical alert that "stored" it)."""
    face = dict(cats=("biometric_template",), purpose="authentication", system="mobile_banking")
    assert set(run([collect("R1", **face)])) == {
        "collected_without_consent"
    }  # none fed: not card_data_on_client
    (kept,) = run([lc("store", "R2", "C1", 0, categories=["biometric_template"], purpose="authentication", system="mobile_banking")])["card_data_on_client"]  # fmt: skip
    assert kept.severity.value == "critical" and "stores biometric_template on mobile_banking" in kept.summary
    swipe = {"cats": ("payment_account_no", "card_track_data", "card_pin"), "purpose": "payment"}
    assert run([collect("R3", system="pos_terminal", **swipe), collect("R7", system="atm", **swipe)]) == {}
    bind = collect("R8", cats=("payment_account_no", "card_cvn", "card_expiry"), purpose="payment", system="mobile_banking")  # fmt: skip
    assert run([bind]) == {}
    kept_pos = lc("store", "R3", "C1", 0, categories=["payment_account_no", "card_track_data", "card_pin"], system="pos_terminal")  # fmt: skip
    (pos,) = run([kept_pos])["card_data_on_client"]
    assert "stores card_pin, card_track_data on pos_terminal" in pos.summary
    # a terminal's log naming the category it stored (authentication) may hold the card secrets; the
    # app collecting a login under that category (a password it sends on) keeps nothing
    by_category = lc(
        "store", "R4", "C1", 0, categories=["payment_account_no", "authentication"], system="pos_terminal"
    )
    assert set(run([by_category])) == {"card_data_on_client"}
    login = collect(
        "R5", cats=("login_username", "authentication"), purpose="authentication", system="mobile_banking"
    )
    assert run([login]) == {}
    # a password the app takes at sign-in to send on is no card secret (client_secrets)
    password = collect("R6", cats=("login_username", "login_password"), purpose="authentication", system="mobile_banking")  # fmt: skip
    assert run([password]) == {}


# -- destruction records and foreign C3 -----------------------------------------------------------------
SIGNED = {"categories": ["customer_name"], "method": "shred", "operator_id": "e1", "supervisor_id": "e2"}


@pytest.mark.parametrize(
    "kw, fires",
    [
        ({}, False),
        ({"supervisor_id": "e1"}, True),
        ({"supervisor_id": "E1 "}, True),  # the operator's own id in another case
        ({"supervisor_id": "Ｅ１"}, True),  # and typed in full width (a probe's passed)
        ({"operator_id": "E000010", "supervisor_id": "Ｅ０００010"}, True),
        ({"operator_id": "E000010", "supervisor_id": "E000010(张伟)"}, True),  # the name beside (a probe's)
        ({"operator_id": "BANK\\E000010", "supervisor_id": "e000010@bank.com.cn"}, True),
        ({"supervisor_id": None}, True),
        ({"supervisor_id": " "}, True),  # a blank is no signature
        ({"method": None}, True),
        ({"method": " "}, True),
        ({"categories": []}, True),
        ({"method": "overwrite_3x"}, False),
        ({"method": "Logical_Delete"}, True),
        ({"method": "delete_index"}, True),
        ({"method": "Delete Index"}, True),
        ({"method": " 删除索引 "}, True),
        ({"method": "仅删除索引"}, True),  # seed 002 §七(4) 不应只采用删除索引, nearly word for word
        ({"method": "删除文件系统索引"}, True),
        ({"method": "快速格式化"}, True),
        ({"method": "多次覆写"}, False),
        ({"method": "删除索引后三次覆写"}, False),  # the index goes first, then the data is overwritten
        ({"method": "delete-index then overwrite"}, False),
        ({"method": "仅删除索引，未覆写"}, True),  # an erasing term said not done erases nothing
        ({"method": "delete_index (no overwrite)"}, True),
        ({"method": "logical delete; wipe skipped"}, True),
        # a probe's plain deletes (seed 004 流程描述(6)③ 应采用不可恢复的方式): each removes the
        # data's name, not the data
        *(
            ({"method": m}, True)
            for m in (
                "删除",
                "delete",
                "rm -f",
                "DROP TABLE",
                "truncate table",
                "标记为已删除",
                "置删除标志",
                "格式化",
                # a database's or a warehouse job's purge (a probe's passed as destruction)
                "DROP TABLE dw.cust_contact_2019 PURGE",
                "nightly purge job: DELETE FROM dw.cust_contact",
                "purged",
                # a probe's: a recycle bin, an archive, an overwrite yet to come or failed
                "移入回收站",
                "moved to archive tier",
                "删除文件系统索引，数据块待覆盖",
                "delete; overwrite scheduled next week",
                "rm -f, awaiting overwrite",
                "删除索引，覆写计划下月执行",
                "删除索引（覆写工具故障）",
                # a review's: a later, failed or coming overwrite beside a delete
                "逻辑删除，后续由存储自动覆盖",
                "delete; not yet wiped",
                "rm -f; failed to overwrite",
                "soft delete, to be shredded",
                "delete index, overwrite later",
                "DROP TABLE t PURGE (blocks await overwrite)",
                # a third probe's: not run, skipped, stopped, awaiting approval, cancelled, off
                "逻辑删除(覆写未执行)",
                "删除索引, 跳过覆写",
                "删除索引(覆写中断)",
                "删除索引, 覆写待审批",
                "删除索引, 擦除未完成",
                "删除, 擦除任务已取消",
                "删除索引; 覆写: 否",
                "delete index; overwrite=false",
                "rm -f, overwrite: no",
                "truncate; overwrite deferred",
                # a negation before its verb, with what stands between them
                "删除, 未对硬盘进行覆写",
                "删除索引, 无需覆写",
                "删除, 不做消磁",
                # a review's: a failure or a need written between them (无法, 未能, 未彻底, 不需要, 待…后)
                "删除, 未能覆写",
                "删除索引, 不需要覆写",
                "删除, 待审批后覆写",
                "删除, 未按要求覆写",
                "删除, 无法擦除",
                "删除, 未彻底擦除",
            )
        ),
        # what erases, and words that only hold a term's letters
        *(
            ({"method": m}, False)
            for m in (
                "secure delete",
                "焚烧",
                "NIST 800-88 purge",
                "sanitized to NIST SP 800-88",
                "低级格式化",
                "firmware wiped",
                "backdrop shredded",
                "不可恢复的物理销毁",  # a negation before words that are not the method
                # a review's: the seed's own 不可恢复的方式, failed drives, and methods banks write
                "不可恢复覆写",
                "不可逆擦除",
                "Scheduled overwrite job completed",
                "碎纸机销毁",
                "DoD 5220.22-M",
                "data erasure (Blancco)",
                # in another tense than the list's (the review's false alarms)
                "deleted and overwritten 7 times",
                "DROP TABLE after overwriting",
                "disk removed and physically destroyed",
                "安全删除",
                "wiped",
                # a check after the erase, and a plan carried out: no negation of the erase; nor what
                # waits or stops after the erase was done (a review's false alarms)
                "删除文件并擦除后未发现残留",
                "删除索引并按计划覆写完成",
                "删除文件，覆写完成待确认",
                "删除索引，覆写后取消挂载",
                "删除索引，覆写完成未启动复核",
                # the real names of what erases, as records write them, in zh, en and mixed case
                # (seed 004 流程描述(6)③ 消磁、焚烧、粉碎; seed 002 §七(4) 多次覆写; NIST SP 800-88)
                "消磁",
                "Degaussed",
                "焚烧",
                "INCINERATED",
                "粉碎",
                "Shredded (cross-cut)",
                "多次覆写",
                "3-pass overwrite",
                "DoD 5220.22-M 7次覆写",
                "NIST SP 800-88 Purge",
                "secure erase",
                "ATA Secure Erase",
                "SecureErase (NVMe)",
                "crypto-erase, key destroyed",
                "CryptoErase：密钥已销毁",
                "物理销毁",
                "硬盘消磁后物理粉碎",
                "Gutmann 35-pass",
                "disk crusher",
                "安全擦除",
                "Blancco 数据擦除",
                "sanitize (NVMe Sanitize Block Erase)",
            )
        ),
        # a probe's: methods naming no erasing technique (seed 004 流程描述(6)③ 应采用不可恢复的方式)
        *(
            ({"method": m}, True)
            for m in (
                "清空",
                "数据清除",
                "字段置空",
                "UPDATE cust SET id_no = NULL",
                "磁盘初始化",
                "硬盘交厂商回收",
                "服务器报废",
                "blkdiscard /dev/sdb",
                "重置",
                "firmware reset",
                "TRUNC",
                "expunge",
                "未覆写",  # an erasing term said undone, and nothing else
            )
        ),
    ],
    ids=[
        "complete",
        "self-supervised",
        "self-supervised-other-case",
        "self-supervised-full-width",
        "self-supervised-full-width-digits",
        "self-supervised-with-a-name",
        "self-supervised-as-directory-accounts",
        "no-supervisor",
        "blank-supervisor",
        "no-method",
        "blank-method",
        "no-content",
        "overwritten",
        "logical-delete",
        "index-removed",
        "index-removed-spaced",
        "index-removed-in-chinese",
        "only-the-index-removed-in-chinese",
        "file-system-index-removed",
        "quick-format",
        "overwritten-in-chinese",
        "index-removed-then-overwritten",
        "index-removed-then-overwritten-in-english",
        "index-removed-not-overwritten-in-chinese",
        "index-removed-no-overwrite",
        "logical-delete-wipe-skipped",
        *(
            f"plain-{n}"
            for n in (
                "删除",
                "delete",
                "rm",
                "drop-table",
                "truncate",
                "已删除",
                "删除标志",
                "格式化",
                "drop-purge",
                "purge-job",
                "purged",
                "recycle-bin",
                "archive-tier",
                "overwrite-awaited-zh",
                "overwrite-scheduled",
                "awaiting-overwrite",
                "overwrite-planned-zh",
                "overwrite-tool-failed-zh",
                "overwrite-later-zh",
                "not-yet-wiped",
                "failed-to-overwrite",
                "to-be-shredded",
                "overwrite-later",
                "purge-await-overwrite",
                "overwrite-not-run-zh",
                "overwrite-skipped-zh",
                "overwrite-stopped-zh",
                "overwrite-awaiting-approval-zh",
                "erase-incomplete-zh",
                "erase-cancelled-zh",
                "overwrite-no-zh",
                "overwrite-false",
                "overwrite-no",
                "overwrite-deferred",
                "not-overwritten-disk-zh",
                "no-need-to-overwrite-zh",
                "no-degauss-zh",
                "could-not-overwrite-zh",
                "no-need-to-overwrite-zh-2",
                "overwrite-after-approval-zh",
                "not-overwritten-as-required-zh",
                "cannot-erase-zh",
                "not-thoroughly-erased-zh",
            )
        ),
        *(
            f"erased-{n}"
            for n in (
                "secure-delete",
                "焚烧",
                "nist-purge",
                "nist-sanitized",
                "低级格式化",
                "firmware-wiped",
                "no-term-backdrop",
                "negation-before-other-words",
                "negation-before-the-method-zh",
                "irreversible-erase-zh",
                "scheduled-job-completed",
                "paper-shredder-zh",
                "dod-5220",
                "erasure-tool",
                "overwritten",
                "overwriting",
                "physically-destroyed",
                "安全删除",
                "wiped",
                "checked-after-erase-zh",
                "overwritten-as-planned-zh",
                "overwritten-sign-off-pending-zh",
                "unmounted-after-overwrite-zh",
                "overwritten-review-not-started-zh",
                "消磁",
                "degaussed",
                "焚烧-seed",
                "incinerated-upper",
                "粉碎",
                "shredded-cross-cut",
                "多次覆写-seed",
                "3-pass-overwrite",
                "dod-7-pass-zh",
                "nist-purge-sp",
                "secure-erase",
                "ata-secure-erase",
                "secure-erase-camel",
                "crypto-erase-key-destroyed",
                "crypto-erase-camel-zh",
                "物理销毁",
                "degauss-then-shred-zh",
                "gutmann",
                "crusher",
                "安全擦除",
                "blancco-zh",
                "nvme-sanitize",
            )
        ),
        *(
            f"names-none-{n}"
            for n in (
                "清空",
                "数据清除",
                "字段置空",
                "set-null",
                "磁盘初始化",
                "交厂商回收",
                "服务器报废",
                "blkdiscard",
                "重置",
                "firmware-reset",
                "trunc",
                "expunge",
                "未覆写",
            )
        ),  # fmt: skip
    ],
)
def test_destruction_record(run, kw: dict, fires: bool) -> None:
    got = run([lc("destroy", **(SIGNED | kw))])
    assert bool(got.get("destruction_record_incomplete")) is fires and set(got) <= {
        "destruction_record_incomplete"
    }


@pytest.mark.parametrize("method", ["粉碎故障硬盘", "对不再使用的介质消磁", "待报废硬盘消磁"])
def test_a_chinese_phrase_around_an_erasing_term_negates_nothing(run, method: str) -> None:
    """A Chinese negation negates the erasing verb it stands before, not every word after it; 故障
    after a verb is its failure, not a failed disk's (`policy.model.NEGATED`)."""
    assert run([lc("destroy", **(SIGNED | {"method": method}))]) == {}


def test_an_operators_alert_names_the_operators_org(run, spec, catalog) -> None:
    """The detector names the operator; the engine names the operator's org, as the entitlements
    stream has it then (a probe's destruction alert by E000022 of B01 showed no org, and the
    overview's panel of orgs missed it). A system's alert names no org."""
    e = Engine([spec], catalog, pseudonymize=pz)
    e.apply_reference("entitlements", refs("entitlements", [entitlement("e1", org="B01", ts=T0 - 100 * DAY)]))
    (a,) = run([lc("destroy", **(SIGNED | {"method": "移入回收站"}))], engine=e)[
        "destruction_record_incomplete"
    ]
    assert (a.actor_id, a.actor_org, a.actor_kind) == ("e1", "B01", "employee")
    unsigned = {k: v for k, v in SIGNED.items() if k != "operator_id"}
    (b,) = run([lc("destroy", rid="R2", **unsigned)], engine=e)["destruction_record_incomplete"]
    assert (b.actor_id, b.actor_org, b.actor_kind) == ("crm", None, "system")
    # a rule a record breaks at one event names the system, even one with a service account of the
    # same id in the entitlements stream (a review's `crm` came out an employee of B01)
    e.apply_reference(
        "entitlements", refs("entitlements", [entitlement("crm", org="B01", ts=T0 - 100 * DAY)])
    )
    cvn = collect("R3", "X1", 0, ("payment_account_no", "card_cvn"), "payment", own_institution=False)
    (c,) = run([cvn], engine=e)["foreign_c3_stored"]
    assert (c.actor_id, c.actor_org, c.actor_kind) == ("crm", None, "system")


def test_a_recycle_bin_is_no_destruction_and_the_alert_says_why(run) -> None:
    """Seed 004 流程描述(6)③ asks for a method that cannot be undone (消磁、焚烧、粉碎): a probe's
    移入回收站 passed as destruction."""
    (binned,) = run([lc("destroy", **(SIGNED | {"method": "移入回收站"}))])["destruction_record_incomplete"]
    assert "a method that erases it (移入回收站 leaves it recoverable)" in binned.summary
    # one naming no technique at all says so (a probe's 服务器报废 passed as destruction)
    (scrapped,) = run([lc("destroy", **(SIGNED | {"method": "服务器报废"}))])["destruction_record_incomplete"]
    assert "a method that erases it (服务器报废 names no unrecoverable technique)" in scrapped.summary
    assert scrapped.severity.value == "medium"
    # one naming no method is a record lacking its method, said once
    (blank,) = run([lc("destroy", **(SIGNED | {"method": None}))])["destruction_record_incomplete"]
    assert blank.summary.endswith("lacks method")


def test_foreign_c3_stored_fires_once_and_foreign_c2_is_allowed(run) -> None:
    cvn = collect("R1", "X1", 0, ("payment_account_no", "card_cvn"), "payment", own_institution=False)
    again = lc("store", "R1", "X1", 0.1, categories=["card_cvn"], own_institution=False)
    payee = collect("R2", "X2", 0, ("payment_account_no", "customer_name"), "payment", own_institution=False)
    own_cvn = collect("R3", "C3", 0, ("card_cvn",), "payment")  # the bank's own card: a C3 rule, not this one
    got = run([cvn, again, payee, own_cvn])
    (a,) = got["foreign_c3_stored"]
    assert a.severity.value == "critical" and a.jr_class == "C3" and "card_cvn" in a.summary
    # an acquirer's log naming the category for the secrets it stored: it may hold any of them
    by_category = lc(
        "store", "R4", "X4", 0, categories=["payment_account_no", "authentication"], own_institution=False
    )
    (b,) = run([by_category])["foreign_c3_stored"]
    assert "stores another institution's authentication" in b.summary


@pytest.mark.parametrize("password", ["transaction_password", "login_password", "query_password"])
def test_another_institutions_account_passwords_are_c3_never_to_keep(run, password) -> None:
    """Seed 001 §三.3(3): 不应留存非本机构的…银行卡密码、网络支付密码等C3类别信息; the account
    passwords are C3 too (seed 004 分类 C3②)."""
    got = run([collect("R1", "X1", 0, ("securities_account", password), "payment", own_institution=False)])
    (a,) = got["foreign_c3_stored"]
    assert a.severity.value == "critical" and password in a.summary


# -- determinism and state --------------------------------------------------------------------------------
def story() -> list[Any]:
    return [
        collect("R1", "C1", -40, **LOCATION),
        collect("R2", "C2", -100),
        lc("deletion_requested", "R2", "C2", -20),
        collect("R3", "C3", -5),
        lc("delete", "R3", "C3", -4),
        read("R3", "C3", -2),
        lc("destroy", "R3", "C3", -3.9, categories=["mobile_phone"], method="shred", operator_id="e1"),
        collect("R4", "C4", -29, **LOCATION),
        tick(0),
    ]


def test_batches_give_the_same_alerts(run) -> None:
    whole = run(story())
    one_by_one = run(story(), batch=1)
    ids = lambda got: sorted((r, a.alert_id, a.revision) for r, alerts in got.items() for a in alerts)  # noqa: E731
    assert ids(whole) == ids(one_by_one)
    assert set(whole) == {"retention_expired", "deletion_request_overdue", "used_after_deletion", "destruction_record_incomplete"}  # fmt: skip


def test_a_restored_task_goes_on_as_if_never_stopped(run, spec, catalog) -> None:
    events = sorted(story(), key=lambda ev: ev.ts)
    first = Engine([spec], catalog, pseudonymize=pz)
    run(events[:5], engine=first)
    restored = Engine([spec], catalog, pseudonymize=pz)
    restored.restore(0, first.changes(0))
    fresh = Engine([spec], catalog, pseudonymize=pz)
    run(events[:5], engine=fresh)
    assert run(events[5:], engine=restored).keys() == run(events[5:], engine=fresh).keys()


def test_a_timer_restored_from_an_older_version_still_reaches_the_deadline(run, spec, catalog) -> None:
    """State written by a version that counted a period as keep_days x 24 h: the record's times load
    as they were (deadlines are recomputed from them, never stored), but its timer is the number
    that version stored, collect + 30 x 24 h, hours before the deadline counted now. It fires,
    finds nothing due yet and sets the timer again at the deadline, which then fires."""
    collected = collect(day=-30.9, **LOCATION)  # 1 Dec 10:24 (Beijing): due by 24:00 on Wed 31 Dec
    old = Engine([spec], catalog, pseudonymize=pz)
    assert run([collected], engine=old) == {}
    timers = old.tasks[(0, "retention_overrun")].timers
    timers.cancel(pz("C1"), T0 - CST)
    timers.register(pz("C1"), collected.ts + 30 * DAY)  # what the older version registered
    restored = Engine([spec], catalog, pseudonymize=pz)
    restored.restore(0, old.changes(0))
    assert run([tick(-0.8)], engine=restored) == {}  # the old timer's time has passed: on its last day
    got = run([tick(-0.3)], engine=restored)
    assert [a.window_end for a in got["retention_expired"]] == [T0 - CST]


def test_a_deleted_record_is_forgotten_after_forget_deleted_days(spec, catalog) -> None:
    e = Engine([spec], catalog, pseudonymize=pz)
    e.process("lifecycle", "l", 0, fed("lifecycle", [collect(day=-1930), lc("delete", day=-1870)], "l"))
    e.process("lifecycle", "l", 0, fed("lifecycle", [tick(-49)], "l", 2))
    e.advance()
    store = e.tasks[(0, spec.kind)].keys
    assert "R1" in store.get(pz("C1")).records
    e.process("lifecycle", "l", 0, fed("lifecycle", [tick(0)], "l", 3))
    e.advance()
    assert store.get(pz("C1")) is None  # five years after its deletion: nothing of it is kept


def test_what_an_event_decides_needs_no_customer(run, spec, catalog) -> None:
    """Another bank's cardholder is no customer: the acquiring system logs no customer id. A probe's
    store of its CVN, and a destruction record without method or supervisor, named none and raised
    nothing. Judged without one (no subject on the alert); once an event names the record's
    customer, the same alert ids, no second alert."""
    acquired = lc("store", "ACQ1", None, 0, categories=["payment_account_no", "card_cvn"], own_institution=False, system="acquiring")  # fmt: skip
    destroyed = lc("destroy", "OLD1", None, 1, categories=["mobile_phone"], method="删除索引", operator_id="E5", supervisor_id="E5")  # fmt: skip
    e = Engine([spec], catalog, pseudonymize=pz)
    got = run([acquired, destroyed], engine=e)
    (a,) = got["foreign_c3_stored"]
    (d,) = got["destruction_record_incomplete"]
    assert a.severity.value == "critical" and a.subject_count == 0 and a.subjects_sample == []
    assert "a supervisor other than the operator" in d.summary and d.subject_count == 0
    named = lc("collect", "ACQ1", "C7", 2, categories=["payment_account_no"], own_institution=False, system="acquiring")  # fmt: skip
    again = final_alerts(e, [named], 10)
    # judged again, the same id
    assert [x.alert_id for x in again if _rule(x) == "foreign_c3_stored"] == [a.alert_id]
    # a blank id is none (it had made one customer of every such record), and a collection for
    # marketing naming none waits for no consent (its timer had crashed the engine: a review's)
    blank = lc("store", "ACQ2", " ", 3, categories=["card_cvn"], own_institution=False, system="acquiring")
    marketing = lc("collect", "M1", None, 3, categories=["mobile_phone"], purpose="marketing")
    later = final_alerts(e, [blank, marketing, tick(4)], 10)
    (b,) = [x for x in later if _rule(x) == "foreign_c3_stored"]
    assert b.subject_count == 0 and b.subjects_sample == []


@pytest.mark.parametrize(
    ("text", "day"),
    [
        ("2012-09-05", date(2012, 9, 5)),
        ("20120905", date(2012, 9, 5)),
        ("2012/9/5", date(2012, 9, 5)),
        ("2012年9月5日", date(2012, 9, 5)),
        # a DATE exported as a DATETIME: a probe's switched the minors' rules off, silently
        ("2012-09-05 00:00:00", date(2012, 9, 5)),
        ("2012-09-05T00:00:00", date(2012, 9, 5)),
        ("2012-09-05T00:00:00+08:00", date(2012, 9, 5)),
        ("2012-09-05 00:00:00.000", date(2012, 9, 5)),
        ("05/09/2012", None),  # May or September: no date
        ("2012-09-04T16:00:00Z", None),  # JDBC's instant of that DATE: no date rather than the 4th
        ("2012-09-05T00:00:00Z", None),  # 08:00 in Beijing
        ("2012-09-05 13:45:00", None),  # no DATE
        ("2012-13-01", None),
        ("0000-00-00", None),
    ],
)
def test_a_birth_date_in_the_forms_core_banking_exports(text: str, day: date | None) -> None:
    from detectors.minors import birth_day

    assert birth_day(text) == day


def test_a_whole_and_a_partial_removal_at_one_instant_give_one_answer(run) -> None:
    """A purge job's delete of the record and the CRM's delete of its phone in the same second (or an
    unplaced purge beside a partial delete): sorted together, None met a tuple and the task raised
    TypeError on every later event of the record (a review's)."""
    ts = T0 - 20 * DAY
    phone = lc("delete", system="mobile_banker", categories=["mobile_phone"], ts=ts)
    purge = lc("delete", system="mobile_banker", ts=ts).model_copy(update={"event_id": "purge-1"})
    unplaced = lc("delete", system="purge_job", ts=ts).model_copy(update={"event_id": "purge-2"})
    for removals in ([phone, purge], [purge, phone], [phone, unplaced]):
        assert run([collect(day=-31, **TRACE_AND_PHONE), *removals, tick(0)]) == {}


def test_a_payments_location_past_its_30_days_is_removed_alone_and_the_transaction_kept(run) -> None:
    """A mobile payment's risk-control GPS stored with the payment: the location is past its 30 days,
    the transaction within the ten years the AML Law keeps it. The alert says the location alone is
    past, and a delete naming it removes it alone, silently (a probe's alert told the bank to delete
    a record it must keep, and destroying it was removed_before_minimum)."""
    tx = collect(
        day=-55, cats=("transaction_record", "location_trace"), purpose="payment", system="core_banking"
    )
    (a,) = run([tx, tick(0)])["retention_expired"]
    assert "only its location is past this rule: a delete naming it removes it alone" in a.summary
    stripped = lc("delete", day=-26, system="core_banking", categories=["location_trace"])
    assert run([tx, stripped, tick(0)]) == {}
