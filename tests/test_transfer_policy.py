"""Transfer-policy detector through the Engine: each rule fires on a transfer that barely breaks it
and stays silent on one that comes close; consent is per subject as of the transfer; the agreed
volume is counted per recipient, contract and period, survives a restore and closes on time."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from conftest import T0, fed, refs

from detectors import load_detectors
from policy import DEFAULT_DIR, PolicyError, load_policy
from policy.catalog import Catalog
from schemas.models import Approval, Consent, TransferEvent
from streams.alerts import latest, to_ocsf
from streams.codecs import Decoder
from streams.engine import Engine, declared_spelling
from streams.pseudonym import Pseudonymizer
from streams.replay import replay

HOUR = 3_600_000
CST_MIDNIGHT = T0 + 16 * HOUR  # 2026-01-02 00:00 in the bank's calendar (Asia/Shanghai)


def transfer(**kw: Any) -> TransferEvent:
    """A clean share to the partner insurer: its fields, its contract, one consenting subject."""
    n = kw.pop("n", 0)
    base: dict[str, Any] = {
        "event_id": f"tr-{n}-{kw.get('ts', T0)}",
        "ts": T0,
        "transfer_id": f"T{n}",
        "sender_system": "crm",
        "recipient_id": "tp_insurance_partner",
        "recipient_type": "third_party",
        "recipient_country": "CN",
        "categories": ["customer_name", "mobile_phone"],
        "record_count": 1,
        "subject_count": 1,
        "subject_ids": ["C0000001"],
        "encrypted": True,
        "deidentified": False,
        "public_network": True,
        "contract_id": "CT-tp_insurance_partner",
        "legal_basis": "separate_consent",
        "purpose": "insurance_referral",
    }
    base.update(kw)
    if "subject_ids" in kw and "subject_count" not in kw:
        base["subject_count"] = len(kw["subject_ids"])
    return TransferEvent(**base)


def consent(
    subject: str = "C0000001", ts: int = 0, purpose: str = "insurance_referral", **kw: Any
) -> Consent:
    return Consent(
        subject_id=subject,
        ts=ts,
        purpose=purpose,
        status=kw.pop("status", "granted"),
        separate=kw.pop("separate", True),
        **kw,
    )


@pytest.fixture
def spec(policy):
    return next(s for s in load_detectors(policy) if s.kind == "transfer_policy")


@pytest.fixture
def engine(spec, catalog):
    def make(*consents: Consent) -> Engine:
        e = Engine([spec], catalog, pseudonymize=Pseudonymizer(b"unit-test-key-0123456789"))
        e.apply_reference("consents", refs("consents", list(consents or [consent()])))
        return e

    return make


def run(engine: Engine, *events: TransferEvent, offset: int = 0) -> dict[str, Any]:
    """Latest revision per alert id, the transfers judged as at the end of the input (the
    watermark at the latest event time)."""
    alerts = engine.process(
        "transfer", "pfi.transfer", 0, fed("transfer", list(events), "pfi.transfer", offset)
    )
    alerts += engine.drain()
    out = {a.alert_id: a for a in latest(sorted(alerts, key=lambda a: a.revision))}
    return out


def rules(alerts: dict[str, Any]) -> list[str]:
    return sorted(a.rule_id for a in alerts.values())


# -- C3 and authentication helpers -------------------------------------------------------------------
def test_an_auth_helper_to_a_processor_is_critical_and_a_leakage_candidate(engine) -> None:
    ev = transfer(
        recipient_id="proc_call_center",
        recipient_type="processor",
        contract_id="CT-proc_call_center",
        categories=["mobile_phone", "sms_code"],
        deidentified=True,
        subject_ids=[],
        subject_count=50,
        record_count=50,
    )
    (a,) = run(engine(), ev).values()
    assert (a.rule_id, a.severity.value, a.counts["leakage_candidate"]) == ("LM-TP-001", "critical", 1)
    assert a.title_en == "C3 or authentication-helper data sent to a third party"
    assert a.regulation[0].startswith("JR/T 0171-2020 §7.1.4") and a.regulation[1].startswith(
        "《个人信息保护法》第二十八条"
    )
    assert (
        any(
            "汉盛《商业银行互联网贷款视角中个人风险数据在全生命周期中的合规分析》 §六.2(4)" in r
            for r in a.regulation
        )
        and a.actor_id == "proc_call_center"
    )
    assert "leakage_candidate" in to_ocsf(a)["metadata"]["labels"]
    assert "sms_code" in a.summary  # the field id, never a value


def test_c3_kept_inside_the_bank_is_not_a_transfer_violation(engine) -> None:
    ev = transfer(
        recipient_id="int_data_warehouse",
        recipient_type="internal",
        contract_id=None,
        categories=["payment_account_no", "card_expiry"],
        public_network=False,
        subject_ids=[],
        subject_count=10,
        record_count=10,
        legal_basis="none",
    )
    assert run(engine(), ev) == {}  # encrypted (the factory's): inside the bank, nothing to say


def test_payment_sensitive_data_in_the_clear_inside_the_bank_fires(engine) -> None:
    """Seed 002 §四(3), second clause: 支付敏感信息 is encrypted in transit on any network, the bank's
    own too. A log naming the `authentication` category stands for its most sensitive field, a
    payment-sensitive one; other C3 (a face template) on the private line is held to the first clause."""
    inside = dict(recipient_id="int_data_warehouse", recipient_type="internal", contract_id=None,
                  public_network=False, encrypted=False, legal_basis="none")  # fmt: skip
    (a,) = run(engine(), transfer(categories=["payment_account_no", "card_expiry"], **inside)).values()
    assert (a.rule_id, a.severity.value) == ("LM-TP-010", "high")
    assert "payment-sensitive data (card_expiry) to int_data_warehouse over a private network" in a.summary
    (b,) = run(engine(), transfer(n=1, categories=["authentication"], **inside)).values()
    assert b.rule_id == "LM-TP-010" and "payment-sensitive data (authentication)" in b.summary
    assert run(engine(), transfer(n=2, categories=["biometric_template"], **inside)) == {}


def test_a_card_security_code_in_a_regulatory_report_is_c3_leaving_the_bank(engine) -> None:
    """Seed 002 §六.2(4): C3 is never shared; no regulatory report carries it (organisation.yaml
    approval_exclusions). The report's own data, under its legal obligation, stays silent."""
    report = {
        "recipient_id": "reg_amlmac", "recipient_type": "regulator", "contract_id": None,
        "public_network": False, "legal_basis": "legal_obligation", "purpose": "regulatory_report",
    }  # fmt: skip
    assert run(engine(), transfer(categories=["customer_name", "transaction_record"], **report)) == {}
    (a,) = run(engine(), transfer(categories=["customer_name", "card_cvn"], **report)).values()
    assert (a.rule_id, a.severity.value) == ("LM-TP-001", "critical")
    assert "sent C3 data to regulator reg_amlmac" in a.summary


@pytest.mark.parametrize(
    "word",
    [
        *("交易密码", "CVV2", "安全码", "Card_CVN", "track2"),
        # an acquirer's and ISO 8583's names (a probe's PIN block and expiry date to a regulator
        # raised nothing), and a category by its name where a field belongs (鉴别信息)
        *("PIN block", "PIN Data", "Track 1 Data", "Expiration Date", "exp_date", "validThru", "鉴别信息"),
    ],
)
def test_c3_a_log_names_in_the_catalogs_words_is_c3(engine, word) -> None:
    """A log may name what it sent as the catalog's words for a field (classification.yaml `zh`,
    `also`; traffic.yaml's keys), not its id: 交易密码 is transaction_password, CVV2 the card's CVN.
    The door reads them as the field (a probe's report to a regulator carrying 交易密码 raised
    nothing, and one to a partner a contract gap for "a field id the catalog does not know")."""
    report = {"recipient_id": "reg_amlmac", "recipient_type": "regulator", "contract_id": None,
              "public_network": False, "legal_basis": "legal_obligation", "purpose": "regulatory_report"}  # fmt: skip
    (a,) = run(engine(), transfer(categories=["customer_name", word], **report)).values()
    assert (a.rule_id, a.severity.value) == ("LM-TP-001", "critical")
    (a,) = run(engine(), transfer(categories=["customer_name", "mobile_phone", word])).values()
    assert (a.rule_id, a.severity.value) == ("LM-TP-001", "critical")
    assert "the catalog does not know" not in a.summary


# -- consent, per subject, as of the transfer ------------------------------------------------------
def test_consent_is_checked_per_subject_as_of_the_transfer(engine) -> None:
    e = engine(
        consent("C1", ts=0),
        consent("C2", ts=T0 + 1),  # granted a millisecond after the share
        consent("C3", ts=0),
        consent("C3", ts=T0 + 1, status="withdrawn"),  # withdrawn after it: the share was fine
        consent("C4", ts=0, separate=False),  # bundled into the terms: not separate
        consent("C5", ts=0, purpose="marketing"),  # another purpose
    )
    ids = ["C1", "C2", "C3", "C4", "C5"]
    (a,) = run(e, transfer(subject_ids=ids, record_count=5)).values()
    assert a.rule_id == "LM-TP-002" and a.counts["subjects_without_consent"] == 3
    # the bank's rule for customers' separate consent, not the employees' app's privacy policy
    assert any(
        r.startswith("本行《个人金融信息保护管理规定》 流程描述(1)⑦: 向其他个人信息处理者提供")
        for r in a.regulation
    )
    assert not any("掌上银行家" in r for r in a.regulation)
    # the alert names the three it concerns, whose records the transfer holds in proportion: the
    # customers who consented are no one to notify (a probe's incident counted 10 for 1 unconsented)
    assert a.subject_count == 3 and a.counts["records"] == 3 and a.subjects_sample[0].startswith("p_")
    pseudonym = e.pseudonymize
    assert sorted(a.subjects_sample) == sorted(pseudonym(c) for c in ("C2", "C4", "C5"))
    assert (
        "5 records of 5 subjects; this alert concerns 3 subjects of them and, in proportion, 3 records"
        in a.summary
    )
    # a log that names more subjects than it counts, or counts none: the share never passes the
    # transfer's records (a review found 20 of 10)
    (more,) = run(e, transfer(subject_ids=ids, subject_count=2, record_count=10, n=3)).values()
    assert (more.counts["records"], more.counts["subjects"]) == (6, 3)
    (uncounted,) = run(e, transfer(subject_ids=ids, subject_count=0, record_count=10, n=4)).values()
    assert (uncounted.counts["records"], uncounted.counts["subjects"]) == (6, 3)
    assert "C1" not in json.dumps(a.model_dump())  # only pseudonyms leave the engine
    assert run(engine(consent("C1"), consent("C3")), transfer(subject_ids=["C1", "C3"], n=2)) == {}


def test_a_separate_consent_stands_through_a_bundled_re_acceptance_until_withdrawn(engine) -> None:
    """The privacy policy accepted again (a bundled grant) is no withdrawal: C1's separate consent
    still covers the share; C2 withdrew in between, and the bundled grant after that is not separate."""
    e = engine(
        consent("C1", ts=0),
        consent("C1", ts=T0 - 1000, separate=False),
        consent("C2", ts=0),
        consent("C2", ts=T0 - 2000, status="withdrawn"),
        consent("C2", ts=T0 - 1000, separate=False),
    )
    (a,) = run(e, transfer(subject_ids=["C1", "C2"], record_count=2)).values()
    assert a.rule_id == "LM-TP-002" and a.counts["subjects_without_consent"] == 1


def test_a_withdrawal_before_the_share_fires(engine) -> None:
    e = engine(consent("C1", ts=0), consent("C1", ts=T0 - 1, status="withdrawn"))
    assert rules(run(e, transfer(subject_ids=["C1"]))) == ["LM-TP-002"]


def test_a_consent_or_withdrawal_recorded_on_a_channel_decides_a_share_and_a_transfer_abroad(engine) -> None:
    """A consent platform may log where the customer said it (in the app: channel app_push). A
    share contacts nobody: the customer's newest word on the purpose decides, on whatever channel.
    A probe's withdrawal made in the app left shares and a transfer abroad silent, and its consent
    given in the app raised a false LM-TP-002 and an incident."""
    in_app = consent("C1", ts=T0 - 1, status="withdrawn", channel="app_push")
    assert rules(run(engine(consent("C1", ts=0), in_app), transfer(subject_ids=["C1"]))) == ["LM-TP-002"]
    assert rules(run(engine(consent("C1", ts=0, channel="app_push")), transfer(subject_ids=["C1"]))) == []
    # granted again afterwards, for every channel: the newest word stands
    again = consent("C1", ts=T0 - 1, status="granted")
    assert (
        rules(
            run(
                engine(
                    consent("C1", ts=0),
                    consent("C1", ts=T0 - 2, status="withdrawn", channel="app_push"),
                    again,
                ),
                transfer(subject_ids=["C1"]),
            )
        )
        == []
    )
    # a separate consent given in the app, then the privacy policy accepted again (bundled, for every
    # channel) at a later time: the separate consent stands, as it does recorded without a channel
    reaccepted = consent("C1", ts=T0 - 1, separate=False)
    assert (
        rules(run(engine(consent("C1", ts=0, channel="app_push"), reaccepted), transfer(subject_ids=["C1"])))
        == []
    )
    group = {"purpose": "group_risk_management"}
    withdrawn = engine(consent(**group), consent(ts=T0 - 1, status="withdrawn", channel="app_push", **group))
    (a,) = run(withdrawn, abroad()).values()
    assert (a.rule_id, a.severity.value) == (
        "LM-TP-005",
        "critical",
    ) and "without separate consent" in a.summary


def test_a_consent_or_withdrawal_logged_seconds_after_the_share_still_decides_it(engine) -> None:
    """The consent system's record of a separate consent given at 10:00:00 reaches the monitor two
    seconds after the share it precedes (10:00:03): the share waits for the watermark, so the
    consent covers it. A withdrawal at 09:59:58 that reaches it late still makes it fire."""
    shared = transfer(subject_ids=["C1"], ts=T0 + 3_000)
    e = engine(consent("C9"))
    alerts = e.process("transfer", "pfi.transfer", 0, fed("transfer", [shared], "pfi.transfer"))
    e.apply_reference("consents", refs("consents", [consent("C1", ts=T0)]))
    assert alerts + e.advance() + e.drain() == []
    e = engine(consent("C1", ts=0))
    alerts = e.process("transfer", "pfi.transfer", 0, fed("transfer", [shared], "pfi.transfer"))
    e.apply_reference("consents", refs("consents", [consent("C1", ts=T0 - 2_000, status="withdrawn")]))
    assert [a.rule_id for a in alerts + e.advance() + e.drain()] == ["LM-TP-002"]


def test_a_share_logged_again_later_raises_nothing_more(engine) -> None:
    """The sender retries, or a gateway logs the share its sender logged, under a new event id a
    minute later: one transfer, one alert per rule. Another transfer to the same recipient alerts."""
    e = engine(consent("C9"))
    first = transfer(subject_ids=["C1"])
    again = first.model_copy(update={"event_id": "gateway-copy", "ts": T0 + 60_000})
    assert rules(run(e, first, again)) == ["LM-TP-002"]
    assert run(e, again.model_copy(update={"event_id": "retry-2", "ts": T0 + HOUR}), offset=2) == {}
    other = transfer(subject_ids=["C1"], n=2, ts=T0 + 2 * HOUR)
    assert rules(run(e, other, offset=3)) == ["LM-TP-002"]


def test_a_job_that_names_each_run_alike_sends_another_transfer_each_run(engine) -> None:
    """A probe's nightly job logged every run as INS-LEADS-DAILY: the next day's share of another
    customer without consent raised nothing. The same id with other customers or another count is
    another transfer; with the same ones, a copy, at whatever time (a gateway's, past midnight)."""
    e = engine(consent("C9"))
    daily = {"transfer_id": "INS-LEADS-DAILY"}
    assert rules(run(e, transfer(subject_ids=["C1"], **daily))) == ["LM-TP-002"]
    other = transfer(subject_ids=["C2"], ts=T0 + 24 * HOUR, n=1, **daily)
    (a,) = run(e, other, offset=1).values()
    assert a.rule_id == "LM-TP-002" and a.subject_count == 1 and "INS-LEADS-DAILY" in a.summary
    # a gateway's copy past the bank's midnight, or one that lists the customer twice, is the same
    late = transfer(subject_ids=["C1", "C1"], ts=CST_MIDNIGHT + 30_000, n=2, **daily)
    assert run(e, late, offset=2) == {}
    # customers not named, each night's list named instead: each night another share; the same
    # list logged again, a copy
    nightly = {"subject_ids": [], "subject_count": 200, "record_count": 200, **daily}
    night = [
        transfer(subject_list_id=f"LEADS-2026010{d}", ts=T0 + d * 24 * HOUR, n=10 + d, **nightly)
        for d in (1, 2)
    ]
    assert rules(run(e, night[0], offset=3)) == ["LM-TP-002"]
    (a,) = run(e, night[1], offset=4).values()
    assert (a.rule_id, a.counts["subjects_unnamed"]) == ("LM-TP-002", 200)
    assert (
        run(e, night[1].model_copy(update={"event_id": "copy", "ts": night[1].ts + 60_000}), offset=5) == {}
    )
    # and the agreed volume counts each run: 3 000 then 2 001 records under one name in one day
    e = engine()
    runs = [
        fund(T0 + h * HOUR, n, h).model_copy(update={"transfer_id": "FUND-NIGHTLY"})
        for h, n in ((0, 3000), (1, 2001))
    ]
    (v,) = run(e, *runs).values()
    assert (v.rule_id, v.counts["records"], v.counts["transfers"]) == ("LM-TP-007", 5001, 2)


def test_a_copy_of_a_transfer_an_earlier_lifemon_judged_raises_nothing_more(engine) -> None:
    """State from before transfers were told apart by day and content holds them by id alone: a
    retry read after the upgrade finds what that transfer raised, and is not counted again."""
    from detectors.transfer_policy import RAISED

    e = engine(consent("C9"))
    first = transfer(subject_ids=["C1"])
    assert rules(run(e, first)) == ["LM-TP-002"]
    store = e.task(0, e.specs[0]).detector.store
    (new,) = [k for k, _ in store.items(RAISED)]
    store.put(
        f"{RAISED}{first.recipient_id}/{first.transfer_id}", store.get(new)
    )  # as an earlier lifemon wrote it
    store.delete(new)
    assert run(e, first.model_copy(update={"event_id": "retry"}), offset=1) == {}
    # a copy that breaks another rule too raises that one, and its key is forgotten as any is,
    # `late_days` on (an instance that saw only the earlier lifemon's key)
    e = engine(consent("C9"))
    store = e.task(0, e.specs[0]).detector.store
    store.put(f"{RAISED}{first.recipient_id}/{first.transfer_id}", "LM-TP-002")
    copy = first.model_copy(update={"event_id": "copy", "public_network": True, "encrypted": False})
    assert rules(run(e, copy)) == ["LM-TP-004"]
    run(e, transfer(subject_ids=["C9"], n=9, ts=T0 + 30 * 24 * HOUR), offset=1)
    # (the hand-written legacy key has no timer here; an earlier lifemon registered one for it)
    assert [k for k, _ in store.items(RAISED) if k.count("/") > 1] == [], list(store.items(RAISED))
    e = engine()
    assert run(e, fund(T0, 3000, 1)) == {}
    store = e.task(0, e.specs[0]).detector.store
    (key,) = [k for k, _ in store.items("volume:")]
    store.get(key).counted = {"T1": []}  # an earlier lifemon's: the transfer id, no time
    assert run(e, fund(T0, 3000, 1).model_copy(update={"event_id": "retry"}), offset=1) == {}
    # the last release's identity of a transfer naming a list and no customers: without the list
    # (a review: a gateway's copy after the upgrade raised LM-TP-002 again and counted twice)
    from detectors.transfer_policy import _identity

    listed = transfer(subject_ids=[], subject_count=50, record_count=50, subject_list_id="SL-7", n=7)
    e = engine()
    assert rules(run(e, listed)) == ["LM-TP-002"]
    store = e.task(0, e.specs[0]).detector.store
    (new,) = [k for k, _ in store.items(RAISED)]
    store.put(f"{RAISED}{listed.recipient_id}/{_identity(listed, [], listed.transfer_id)}", store.get(new))
    store.delete(new)
    assert run(e, listed.model_copy(update={"event_id": "gw", "ts": T0 + 60_000}), offset=1) == {}
    e = engine()
    daily = fund(T0, 3000, 2).model_copy(update={"subject_list_id": "FUND-LIST"})
    assert run(e, daily) == {}
    store = e.task(0, e.specs[0]).detector.store
    (key,) = [k for k, _ in store.items("volume:")]
    store.get(key).counted = {_identity(daily, [], daily.transfer_id): []}
    assert run(e, daily.model_copy(update={"event_id": "retry"}), offset=1) == {}  # 6 000 if counted twice


def test_unnamed_subjects_cannot_be_shown_to_consent_unless_de_identified(engine) -> None:
    """Seed 002 §六.2(1): data de-identified so that the recipient cannot tell who (去标识化…确保
    数据接收方无法重新识别) is shared without consent. Names and phone numbers are not that,
    whatever the sender flagged (a probe's 1 500 leads flagged de-identified passed)."""
    listed = transfer(subject_ids=[], subject_count=100, record_count=100, subject_list_id="SL-1")
    (a,) = run(engine(), listed).values()
    assert a.counts["subjects_unnamed"] == 100 and "claimed basis: separate_consent" in a.summary
    (b,) = run(engine(), listed.model_copy(update={"deidentified": True})).values()
    assert (
        b.rule_id == "LM-TP-002"
        and "flagged de-identified, yet it sends customer_name, mobile_phone" in b.summary
    )
    demographics = listed.model_copy(update={"deidentified": True, "categories": ["gender", "occupation"]})
    assert run(engine(), demographics) == {}
    uncounted = listed.model_copy(update={"deidentified": True, "subject_count": 0})  # a review's bypass
    (c,) = run(engine(), uncounted).values()
    assert c.rule_id == "LM-TP-002" and "yet it sends customer_name, mobile_phone" in c.summary
    # not flagged at all, naming and counting no one (fix_e4: the insurer's names and mobiles passed)
    for logged in ({"subject_count": 0, "record_count": 0}, {"subject_count": 0, "subject_list_id": None}):
        (d,) = run(engine(), listed.model_copy(update=logged)).values()
        assert d.rule_id == "LM-TP-002" and d.counts["subjects_unnamed"] == 1, d.summary
        assert "(it sends customer_name, mobile_phone and names and counts no one)" in d.summary
    assert run(engine(), demographics.model_copy(update={"deidentified": False, "subject_count": 0})) == {}


def test_a_recipient_a_log_calls_internal_is_the_banks_own_only_if_declared(engine) -> None:
    """A subsidiary logged as `internal`: another controller (seed 004 定义(14)) until recipients.yaml
    declares it the bank's own, so its share needs consent and an approved recipient."""
    inside = dict(recipient_type="internal", contract_id=None, legal_basis="none", purpose="analysis", encrypted=False, public_network=False)  # fmt: skip
    assert run(engine(), transfer(recipient_id="int_data_warehouse", **inside)) == {}
    assert rules(run(engine(), transfer(recipient_id="sub_consumer_finance", **inside))) == [
        "LM-TP-002",
        "LM-TP-006",
    ]


# -- entrusted processing and the network ------------------------------------------------------------
def processor(**kw: Any) -> TransferEvent:
    base = dict(
        recipient_id="proc_call_center",
        recipient_type="processor",
        contract_id="CT-proc_call_center",
        categories=["mobile_phone", "customer_segment"],
        subject_ids=[],
        subject_count=100,
        record_count=100,
        legal_basis="contract",
        purpose="entrusted_processing",
    )
    return transfer(**{**base, **kw})


def test_encryption_is_not_de_identification(engine) -> None:
    """A file its sender says is identifiable (by a customer number, say: nothing the call centre's
    contract lets it have in clear) is not made de-identified by encryption."""
    segments = processor(categories=["customer_segment"], deidentified=False, encrypted=True)
    (a,) = run(engine(), segments).values()
    assert a.rule_id == "LM-TP-003" and "encrypted but identifiable" in a.summary
    assert run(engine(), processor(deidentified=True, encrypted=True)) == {}


def test_c2_over_a_public_network_must_be_encrypted(engine) -> None:
    assert rules(run(engine(), processor(deidentified=True, encrypted=False))) == ["LM-TP-004"]
    c1 = processor(deidentified=True, encrypted=False, categories=["customer_segment"])
    assert run(engine(), c1) == {}
    private = processor(deidentified=True, encrypted=False, public_network=False)
    assert run(engine(), private) == {}


def with_clear(policy: Any, recipient: str, identifiable: list[str]) -> Engine:
    """The engine over the shipped policy, the recipient's contracts letting it receive `identifiable`
    in clear."""
    book = policy.recipients
    declared = book.recipients[recipient]
    contracts = [c.model_copy(update={"identifiable": identifiable}) for c in declared.contracts]
    changed = {**book.recipients, recipient: declared.model_copy(update={"contracts": contracts})}
    ours = policy.model_copy(update={"recipients": book.model_copy(update={"recipients": changed})})
    spec = next(s for s in load_detectors(ours) if s.kind == "transfer_policy")
    return Engine([spec], Catalog(ours), pseudonymize=Pseudonymizer(b"unit-test-key-0123456789"))


def test_a_processor_gets_in_clear_only_what_its_contract_lets_it_whatever_the_flag(engine, policy) -> None:
    """Seed 004 流程描述(4)⑪: 对委托处理的信息应进行脱敏处理. A probe's 3 000 customers' phone numbers to
    the call centre, and names, ID and card numbers to the card bureau, flagged de-identified under
    a list id, raised nothing, while the call centre's honest list, flagged not de-identified, was a
    high alert every day. The fields decide: what names a person beyond what the contract lets the
    processor receive in clear (recipients.yaml `identifiable`) refutes the flag; within it, the file
    is what the bank agreed to entrust, flagged either way."""
    calls = processor(categories=["mobile_phone", "customer_segment"], subject_count=3000, record_count=3000,
                      subject_list_id="L1", purpose="customer_service")  # fmt: skip
    named = calls.model_copy(
        update={"subject_ids": [f"C{i:07d}" for i in range(3000)], "subject_list_id": None}
    )
    for n, flagged in enumerate((True, False)):  # the call centre dials the numbers: contact in clear
        for ev in (calls, named):
            assert (
                run(engine(), ev.model_copy(update={"deidentified": flagged, "transfer_id": f"K{n}"})) == {}
            )
    cards = processor(recipient_id="proc_card_personalization", contract_id="CT-proc_card_personalization",
                      categories=["customer_name", "payment_account_no"], deidentified=True,
                      subject_count=3000, record_count=3000, subject_list_id="L2", purpose="account_service")  # fmt: skip
    assert run(engine(), cards) == {}  # the name and the number its cards carry
    with_id = cards.model_copy(
        update={"categories": ["customer_name", "id_document_no", "payment_account_no"]}
    )
    (a,) = run(engine(), with_id).values()
    assert (a.rule_id, a.severity.value, a.counts["identifiers_beyond_contract"]) == ("LM-TP-003", "high", 1)
    assert (
        "entrusted proc_card_personalization with encrypted but identifiable data (flagged de-identified, yet "
        "sends id_document_no); contract CT-proc_card_personalization lets it receive only customer_name, "
        "payment_account_no, home_address, mobile_phone in clear" in a.summary
    )
    # a contract that lets the call centre have nothing in clear (a bank calling through 隐号外呼)
    masked = with_clear(policy, "proc_call_center", [])
    masked.apply_reference("consents", refs("consents", [consent()]))
    (b,) = run(masked, calls.model_copy(update={"deidentified": True})).values()
    assert b.rule_id == "LM-TP-003" and (
        "(flagged de-identified, yet sends mobile_phone); contract CT-proc_call_center lets it receive "
        "nothing in clear" in b.summary
    )
    (c,) = run(masked, calls.model_copy(update={"transfer_id": "K9", "event_id": "tr-9"}), offset=1).values()
    assert c.rule_id == "LM-TP-003" and (
        "(encryption alone is not de-identification); it sends mobile_phone, and contract "
        "CT-proc_call_center lets it receive nothing in clear" in c.summary
    )
    # no contract in force (the debt collector's starts 2025-03-01): LM-TP-006 says so; what the
    # contract lets it have in clear is still its
    early = processor(recipient_id="proc_debt_collection", contract_id="CT-proc_debt_collection",
                      categories=["mobile_phone", "loan_details"], deidentified=True, ts=1_740_700_800_000)  # fmt: skip
    assert rules(run(engine(), early)) == ["LM-TP-006"]


@pytest.mark.parametrize(
    ("recipient", "contract", "fields"),
    [  # each processor's daily file as its task needs it (probe U3-6: two highs a file, every day)
        ("proc_call_center", "CT-proc_call_center", ["customer_name", "mobile_phone", "customer_segment"]),
        ("proc_debt_collection", "CT-proc_debt_collection",
         ["customer_name", "mobile_phone", "loan_details", "repayment_history"]),
        ("acme-collections", "CT-2026-017", ["customer_name", "mobile_phone", "loan_details"]),
        ("proc_card_personalization", "CT-proc_card_personalization",
         ["customer_name", "payment_account_no", "home_address", "mobile_phone"]),
    ],
)  # fmt: skip
def test_a_shipped_processors_daily_file_of_what_its_task_needs_is_silent(
    engine, recipient, contract, fields
) -> None:
    """The call centre greets the customer it dials by name, the collectors ask the borrower by name,
    the card bureau mails the card to the holder's address: recipients.yaml's contracts cover those
    categories and let each have those fields in clear (seed 004 流程描述(4)⑪: the agreed kinds,
    masked beyond them). The file is silent, flagged de-identified or not; an ID number in it, which
    none of these tasks needs, is one LM-TP-003, not LM-TP-006 beside it."""
    daily = processor(recipient_id=recipient, contract_id=contract, categories=fields, subject_count=1200,
                      record_count=1200, subject_list_id="LIST-1", sender_system="crm")  # fmt: skip
    for n, flagged in enumerate((False, True)):
        assert run(engine(), daily.model_copy(update={"deidentified": flagged, "transfer_id": f"D{n}"})) == {}
    with_id = daily.model_copy(update={"categories": [*fields, "id_document_no"], "transfer_id": "D9"})
    (a,) = run(engine(), with_id).values()
    assert a.rule_id == "LM-TP-003" and "id_document_no" in a.summary


# -- cross-border ------------------------------------------------------------------------------------
def abroad(**kw: Any) -> TransferEvent:
    base = dict(
        recipient_id="os_parent_group_hk",
        recipient_type="overseas",
        recipient_country="HK",
        contract_id="CT-os_parent_group_hk",
        categories=["customer_name", "transaction_record"],
        purpose="group_risk_management",
        assessment_id="OSA-2025-003",
    )
    return transfer(**{**base, **kw})


def test_cross_border_needs_separate_consent_and_a_valid_declared_assessment(engine) -> None:
    ok = consent(purpose="group_risk_management")
    assert run(engine(ok), abroad()) == {}
    (a,) = run(engine(ok), abroad(assessment_id=None)).values()
    assert (a.rule_id, a.severity.value, a.counts["leakage_candidate"]) == ("LM-TP-005", "critical", 1)
    assert "no outbound security assessment" in a.summary
    # PIPL art. 38 (a condition: assessment, certification or standard contract) and art. 39 (separate
    # consent) first, then the PBoC rule and the commentary the rule was written from
    assert [r.split(":")[0] for r in a.regulation[:3]] == [
        "《个人信息保护法》第三十八条",
        "《个人信息保护法》第三十九条",
        "《金融消费者权益保护实施办法》第三十四条 (汉盛《商业银行互联网贷款视角中个人风险数据在全生命周期中的合规分析》 §六.5(1))",
    ]
    assert rules(run(engine(ok), abroad(assessment_id="OSA-FAKE"))) == ["LM-TP-005"]
    expired = abroad(ts=T0 + 600 * 24 * HOUR)  # the assessment ran out on 2027-05-14; the contract too
    assert "LM-TP-005" in rules(run(engine(ok), expired))
    bundled = consent(purpose="group_risk_management", separate=False)
    (b,) = run(engine(bundled), abroad()).values()
    assert b.rule_id == "LM-TP-005" and "without separate consent" in b.summary


def test_declared_ids_in_any_case_width_or_spaces_are_the_declared_ones(engine) -> None:
    """A probe's logs wrote the declared ids as they came: `HK-FX-PARTNER` was no declared recipient
    (a cross-border transfer to the Hong Kong affiliate got "not approved", not its critical
    alert), `TP_INSURANCE_PARTNER` and `OSA-2025-003 ` a false high and a false critical; an
    assessment logged as "N/A" passed a public disclosure as assessed."""
    ok = consent(purpose="group_risk_management")
    for spelled in ({"recipient_id": "OS_PARENT_GROUP_HK "}, {"assessment_id": "osa-2025-003 "},
                    {"contract_id": "ｃｔ-os_parent_group_hk"},
                    # hyphens, underscores and spaces are one separator (a probe's tp-fund-distributor)
                    {"recipient_id": "os-parent-group-hk"}, {"recipient_id": "OS Parent Group HK"},
                    {"assessment_id": "OSA_2025_003"}):  # fmt: skip
        assert run(engine(ok), abroad(**spelled)) == {}, spelled
    (a,) = run(engine(ok), abroad(recipient_id="OS_PARENT_GROUP_HK", assessment_id=None)).values()
    assert a.rule_id == "LM-TP-005" and a.actor_id == "os_parent_group_hk"
    assert run(engine(), transfer(recipient_id="TP_INSURANCE_PARTNER")) == {}
    public = consent(purpose="loan_default_notice")
    for none in ("N/A", "none", "-", "无", "Ｎ/Ａ"):
        disclosed = transfer(
            recipient_id="bank_website", recipient_type="public", contract_id=None, assessment_id=none,
            categories=["customer_name", "loan_details"], purpose="loan_default_notice",
        )  # fmt: skip
        assert "LM-TP-008" in rules(run(engine(public), disclosed)), none


def test_a_name_two_recipients_share_names_neither() -> None:
    """`declared_spelling`: a name is an id's only where no other declared id has it too."""
    spell = declared_spelling(
        ["a_one", "b_two"], str, [("Shared Co", "a_one"), ("Shared Co", "b_two"), ("Bee", "b_two")]
    )
    assert spell("shared co") is None and spell("BEE") == "b_two" and spell("A-ONE") == "a_one"


def test_abroad_only_an_affiliate_the_business_needs_may_receive(policy) -> None:
    """实施办法 art. 34(三) (seed 002 §六.5(1)): 信息接收方为完成该业务所必需的关联机构. A cloud vendor in
    Singapore with a contract, an assessment and every customer's separate consent is still no
    recipient abroad; the Hong Kong affiliate, sent the same, is."""
    book = policy.recipients
    hk = book.recipients["os_parent_group_hk"]
    vendor = hk.model_copy(update={"name_en": "cloud vendor, Singapore", "country": "SG", "affiliate": False})
    ours = policy.model_copy(
        update={
            "recipients": book.model_copy(update={"recipients": {**book.recipients, "os_cloud_sg": vendor}})
        }
    )
    spec = next(s for s in load_detectors(ours) if s.kind == "transfer_policy")
    e = Engine([spec], Catalog(ours), pseudonymize=Pseudonymizer(b"unit-test-key-0123456789"))
    e.apply_reference("consents", refs("consents", [consent(purpose="group_risk_management")]))
    to_vendor = abroad(n=1, recipient_id="os_cloud_sg", recipient_country="SG")
    (a,) = run(e, abroad(), to_vendor).values()
    assert a.rule_id == "LM-TP-005" and a.counts["affiliate"] == 0
    assert (
        "to os_cloud_sg (SG): not an affiliate the business needs (关联机构, 实施办法 art. 34(三));"
        in a.summary
    )


def test_a_domestic_type_sent_to_another_country_is_cross_border(engine) -> None:
    found = run(engine(), transfer(recipient_country="SG"))
    assert "LM-TP-005" in rules(found) and "LM-TP-002" not in rules(found)  # consent judged once


def test_a_log_that_names_categories_instead_of_fields_is_judged_by_them(engine) -> None:
    """`categories: [authentication]`: a sender naming what it sent by category sent authentication
    data, C3 at worst (seed 002 §六.4(2)), not an unknown C1 field."""
    ev = processor(categories=["contact", "authentication"], deidentified=True)
    (a,) = [x for x in run(engine(), ev).values() if x.rule_id == "LM-TP-001"]
    assert a.severity.value == "critical" and a.jr_class == "C3"


# -- approved recipients and contracts -------------------------------------------------------------
def test_recipient_must_be_listed_with_a_contract_in_force_covering_the_data(engine) -> None:
    def why(ev: TransferEvent) -> list[str]:
        return [a.summary for a in run(engine(), ev.model_copy(update={"deidentified": True})).values()]

    assert why(transfer()) == []
    assert "not an approved recipient" in why(transfer(recipient_id="tp_unknown", contract_id=None))[0]
    # the insurer's contract starts 2025-07-01 in Shanghai: 2025-06-30T16:00Z
    starts = 1_751_299_200_000
    early = why(transfer(ts=starts - 1))[0]
    assert (
        "not in force at the time: not yet valid, valid from 2025-07-01" in early
        and why(transfer(ts=starts)) == []
    )
    assert "contract CT-nowhere is not declared" in why(transfer(contract_id="CT-nowhere"))[0]
    assert "does not cover property" in why(transfer(categories=["customer_name", "account_balance"]))[0]
    assert "belongs to another recipient" in why(transfer(contract_id="CT-proc_call_center"))[0]
    assert (
        "2 field ids the catalog does not know" in why(transfer(categories=["mobile_phone", "x1", "x2"]))[0]
    )


def test_the_legacy_partners_contract_ended_the_day_before(engine) -> None:
    ev = transfer(recipient_id="tp_legacy_partner", contract_id="CT-tp_legacy_partner", deidentified=True)
    (a,) = run(engine(), ev).values()
    assert a.rule_id == "LM-TP-006" and "not in force at the time: expired, valid to 2025-12-31" in a.summary
    assert run(engine(), ev.model_copy(update={"ts": T0 - 9 * HOUR})) == {}  # 2025-12-31 23:00 in Shanghai


# -- agreed volume ------------------------------------------------------------------------------------
def fund(ts: int, records: int, n: int) -> TransferEvent:
    return transfer(
        recipient_id="tp_fund_distributor",
        contract_id="CT-tp_fund_distributor",
        ts=ts,
        n=n,
        categories=["assets"],  # holdings, de-identified: no name goes
        record_count=records,
        subject_ids=[],
        subject_count=records,
        deidentified=True,
        purpose="fund_distribution",
    )


def test_volume_is_agreed_per_day_of_the_banks_calendar(engine) -> None:
    e = engine()
    # 5 000 a day agreed: 4 999 before Shanghai midnight and 4 999 after are two good days
    assert run(e, fund(CST_MIDNIGHT - HOUR, 4999, 1), fund(CST_MIDNIGHT + HOUR, 4999, 2)) == {}
    assert run(e, fund(CST_MIDNIGHT + 2 * HOUR, 1, 3), offset=2) == {}  # exactly 5 000 on day 2
    (a,) = run(e, fund(CST_MIDNIGHT + 3 * HOUR, 1, 4), offset=3).values()
    assert (a.counts["records"], a.window_start) == (5001, CST_MIDNIGHT)


def test_a_transfer_logged_twice_counts_once_toward_the_agreed_volume(engine) -> None:
    """A sender's retry, or a gateway logging the transfer its sender logged, carries the same
    transfer id under a new event id: 3 000 records sent once are not 6 000 over the 5 000 agreed."""
    e = engine()
    first = fund(T0, 3000, 1)
    again = first.model_copy(update={"event_id": "retry-of-T1", "ts": T0 + 60_000})
    assert run(e, first, again) == {}
    (a,) = run(e, fund(T0 + HOUR, 2001, 2), offset=2).values()  # another transfer: 5 001 records
    assert (a.counts["records"], a.counts["transfers"]) == (5001, 2)
    # an SFTP gateway logs the id padded or in lower case (a probe's 120 000 records counted twice)
    for i, spelled in enumerate((" t1", "t1 ", "Ｔ1")):
        e = engine()
        copy = first.model_copy(update={"event_id": f"gw-{i}", "transfer_id": spelled, "ts": T0 + 60_000})
        assert run(e, first, copy) == {}, spelled


def test_a_nightly_job_under_one_name_counts_each_night_toward_a_months_volume(engine) -> None:
    """A probe's: the warehouse sends the same de-identified snapshot of 1 000 000 records each
    night, one job name, one list, to a processor agreed 20 000 000 a month; 25 nights counted once.
    A run a day counts; its gateway's copy the same night does not."""
    e = engine()

    def night(day: int, n: int) -> TransferEvent:
        return transfer(
            recipient_id="proc_cloud_analytics", recipient_type="processor", contract_id="CT-proc_cloud_analytics",
            transfer_id="DWH-CLOUD-NIGHTLY", sender_system="dwh", categories=["transaction_record"],
            record_count=1_000_000, subject_count=1_000_000, subject_ids=[], subject_list_id="ALL-CARDHOLDERS",
            deidentified=True, legal_basis="contract", purpose="analytics", ts=T0 + day * 24 * HOUR, n=n,
        )  # fmt: skip

    nights = [night(d, d) for d in range(20)]
    copies = [n.model_copy(update={"event_id": f"gw-{i}", "ts": n.ts + 60_000}) for i, n in enumerate(nights)]
    assert run(e, *nights, *copies) == {}  # 20 000 000: the agreement's all
    (a,) = run(e, night(20, 20), offset=40).values()
    assert (a.rule_id, a.counts["records"], a.counts["transfers"]) == ("LM-TP-007", 21_000_000, 21)
    # a run at 23:58 and its gateway's copy at 00:02 are one (a review's: two, past the agreement)
    e = engine()
    late = night(0, 0).model_copy(update={"ts": CST_MIDNIGHT - 120_000, "record_count": 15_000_000})
    copy = late.model_copy(update={"event_id": "gw", "ts": CST_MIDNIGHT + 120_000})
    assert run(e, late, copy) == {}


def test_one_record_over_the_agreement_opens_one_alert_that_grows_then_closes(engine) -> None:
    e = engine()
    assert run(e, fund(T0, 5000, 1)) == {}
    (a,) = run(e, fund(T0 + HOUR, 1, 2), offset=1).values()
    assert (a.rule_id, a.counts["records"], a.counts["agreed_records"], a.status.value) == (
        "LM-TP-007",
        5001,
        5000,
        "open",
    )
    assert (a.window_start, a.window_end) == (CST_MIDNIGHT - 24 * HOUR, CST_MIDNIGHT)
    (b,) = run(e, fund(T0 + 2 * HOUR, 10, 3), offset=2).values()
    assert (b.alert_id, b.revision, b.counts["records"]) == (a.alert_id, 2, 5011)
    # a transfer the next day moves the watermark past midnight: the period's alert closes
    later = run(e, fund(CST_MIDNIGHT + 2 * HOUR, 10, 4), offset=3)
    assert [(x.alert_id, x.status.value, x.counts["records"]) for x in later.values()] == [
        (a.alert_id, "closed", 5011)
    ]
    store = e.tasks[(0, "transfer_policy")].keys
    key = next(k for k, _ in store.items("volume:") if k.endswith(str(a.window_start)))
    assert store.get(key).closed  # kept late_days for stragglers, which count and revise it, closed
    (c,) = run(e, fund(T0 + 3 * HOUR, 10, 9), offset=9).values()
    assert (c.alert_id, c.revision, c.status.value, c.counts["records"]) == (a.alert_id, 4, "closed", 5021)
    run(e, fund(CST_MIDNIGHT + 8 * 24 * HOUR, 10, 5), offset=4)
    assert store.get(key) is None  # forgotten late_days after the period
    assert run(e, fund(T0 + 4 * HOUR, 10, 10), offset=10) == {}  # and then too late to count
    assert store.get(key) is None


def test_a_straggler_past_the_periods_end_still_counts(engine) -> None:
    """4 990 records at 23:00, 10 at 00:10 the next day (the watermark passes midnight: the day
    closes), then a transfer of 20 at 23:30 that another sender logs 40 minutes late: the day
    received 5 010 records, over the 5 000 agreed, and says so in an alert of the closed day."""
    e = engine()
    assert run(e, fund(CST_MIDNIGHT - HOUR, 4990, 1), fund(CST_MIDNIGHT + 10 * 60_000, 10, 2)) == {}
    (a,) = run(e, fund(CST_MIDNIGHT - HOUR // 2, 20, 3), offset=2).values()
    assert (a.status.value, a.counts["records"], a.window_end) == ("closed", 5010, CST_MIDNIGHT)


def test_a_months_transfers_replayed_in_one_batch_count_in_their_own_days(engine) -> None:
    """An audit replays a month's transfer log: one batch spans it. A day over its agreed volume
    early in the month is over it, however far past it the batch's last transfer lies."""
    e = engine()
    early = [fund(T0 - 9 * 24 * HOUR, 2500, 1), fund(T0 - 9 * 24 * HOUR + HOUR, 2501, 2)]
    (a,) = run(e, *early, fund(T0, 10, 3)).values()
    assert (a.counts["records"], a.window_start) == (5001, CST_MIDNIGHT - 10 * 24 * HOUR)
    assert a.status.value == "closed"  # its day long over when the drain released it


def test_the_volume_count_survives_a_restore(engine) -> None:
    first = engine()
    assert run(first, fund(T0, 4000, 1)) == {}
    second = engine()
    second.restore(0, first.changes(0))
    (a,) = run(second, fund(T0 + HOUR, 1001, 2), offset=1).values()
    assert a.counts["records"] == 5001
    assert run(engine(), fund(T0 + HOUR, 1001, 2)) == {}  # without the snapshot: 1 001 alone


def test_alerts_are_the_same_whatever_the_batches(engine) -> None:
    entrusted = processor(n=99, ts=T0 + 30_000, categories=["customer_segment"])  # flagged identifiable
    events = [fund(T0 + i * 60_000, 700, i) for i in range(10)] + [entrusted]
    events.sort(key=lambda e: e.ts)
    whole = engine()
    one = run(whole, *events)
    split = engine()
    parts: dict[str, Any] = {}
    for i, ev in enumerate(events):
        parts.update(run(split, ev, offset=i))
    assert {k: (a.rule_id, a.counts) for k, a in one.items()} == {
        k: (a.rule_id, a.counts) for k, a in parts.items()
    }
    assert sorted(a.rule_id for a in one.values()) == ["LM-TP-003", "LM-TP-007"]


# -- recipients.yaml errors name file, key, line and fix ---------------------------------------------
@pytest.mark.parametrize(
    ("old", "new", "key", "fix"),
    [
        (
            "categories: [identity, contact, internal]",
            "categories: [identity, contact, internals]",
            "recipients.proc_call_center.contracts.0.categories",
            "category id from classification.yaml",
        ),
        (
            "valid_to: 2027-12-31,\n         categories: [identity, contact, internal]",
            "valid_to: 2024-12-31,\n         categories: [identity, contact, internal]",
            "recipients.proc_call_center.contracts.0",
            "later date in valid_to",
        ),
        ("timezone: Asia/Shanghai", "timezone: Asia/Beijing", "timezone", "Asia/Shanghai"),
        (
            "id: CT-proc_debt_collection",
            "id: CT-proc_call_center",
            "recipients.proc_debt_collection.contracts.0.id",
            "its own id",
        ),
        ("per: day}}", "per: week}}", "recipients.proc_call_center.contracts.0.volume.per", "allowed values"),
    ],
)
def test_recipient_policy_errors_name_file_key_line_and_fix(tmp_path: Path, old, new, key, fix) -> None:
    folder = tmp_path / "policy"
    shutil.copytree(DEFAULT_DIR, folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    path = folder / "recipients.yaml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(PolicyError) as e:
        load_policy(folder)
    assert e.value.file.endswith("recipients.yaml") and e.value.key == key, str(e.value)
    assert fix in e.value.fix and e.value.line is not None, str(e.value)


def test_a_public_disclosure_names_its_impact_assessment(engine) -> None:
    """Seed 004 基本规定(3)③: a disclosure is assessed before it is made; consent does not replace it.
    Where recipients.yaml declares a recipient's assessments, only one of them, valid then, counts."""
    notice = {
        "recipient_id": "bank_website", "recipient_type": "public", "contract_id": None, "public_network": False,
        "purpose": "insurance_referral", "categories": ["customer_name", "loan_details"],
    }  # fmt: skip
    (a,) = run(engine(), transfer(**notice)).values()
    assert (a.rule_id, a.severity.value) == ("LM-TP-008", "high")
    assert "disclosed data to public bank_website with no impact assessment" in a.summary
    assert run(engine(), transfer(**notice, assessment_id="PIA-2026-007")) == {}
    # a processor's transfers are assessed once, for the arrangement: no assessment per transfer
    assert "LM-TP-008" not in {
        a.rule_id
        for a in run(
            engine(),
            transfer(
                recipient_id="proc_call_center",
                recipient_type="processor",
                contract_id="CT-proc_call_center",
                deidentified=True,
                subject_ids=[],
                subject_count=5,
                record_count=5,
            ),
        ).values()
    }


def test_a_share_that_states_no_purpose_is_judged_for_the_one_its_contract_agrees(engine) -> None:
    """A probe: the customers gave separate insurance_referral consents, the CRM's log carried no
    purpose, and the share to the insurer, whose contract agrees that purpose alone, was "no separate
    consent" while the contract passed. The one purpose the contract agrees is the one judged."""
    assert run(engine(), transfer(purpose=None)) == {}
    (a,) = run(engine(consent(purpose="group_risk_management")), transfer(purpose=None)).values()
    assert a.rule_id == "LM-TP-002"  # one defect, one alert: not the contract's too
    assert (
        "1 named subject holds no separate consent for insurance_referral, the one purpose contract "
        "CT-tp_insurance_partner agrees (the transfer states none) (claimed" in a.summary
    )
    (b,) = run(engine(consent(purpose="group_risk_management")), transfer()).values()
    assert "although 1 named subject holds no separate consent for insurance_referral (claimed" in b.summary
    two = transfer(subject_ids=["C1", "C2"], subject_count=5)
    (c,) = run(engine(consent(purpose="group_risk_management")), two).values()
    assert (
        "although 2 named subjects hold no separate consent for insurance_referral and 3 subjects are not named"
        in c.summary
    )


@pytest.mark.parametrize(
    ("purposes", "said"),
    [
        (
            "purposes: [insurance_referral, marketing]",
            "(the transfer states no purpose, and contract CT-tp_insurance_partner agrees several, "
            "insurance_referral, marketing: no consent can be matched to it)",
        ),
        ("purposes: []", "(the transfer states no purpose, so no consent can cover it)"),
    ],
)
def test_a_share_that_states_no_purpose_under_a_contract_of_several_says_so(
    tmp_path: Path, purposes: str, said: str
) -> None:
    """A contract agreeing several purposes (or any) leaves the purpose unknown: the subject's
    consent to one of them cannot be matched, and the analyst reads why, not that they never consented."""
    folder = tmp_path / "policy"
    shutil.copytree(DEFAULT_DIR, folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    path = folder / "recipients.yaml"
    text = path.read_text(encoding="utf-8")
    assert "purposes: [insurance_referral]" in text
    path.write_text(text.replace("purposes: [insurance_referral]", purposes, 1), encoding="utf-8")
    policy = load_policy(folder)
    e = Engine([next(s for s in load_detectors(policy) if s.kind == "transfer_policy")], Catalog(policy),
               pseudonymize=Pseudonymizer(b"unit-test-key-0123456789"))  # fmt: skip
    e.apply_reference("consents", refs("consents", [consent()]))
    (a,) = run(e, transfer(purpose=None)).values()
    assert (
        a.rule_id == "LM-TP-002" and f"1 named subject holds no separate consent {said} (claimed" in a.summary
    )
    assert run(e, transfer(n=1), offset=1) == {}  # the same share naming its purpose: consented


def test_a_transfer_run_by_an_employee_who_left_fires(spec, catalog) -> None:
    """Seed 004 人员管理(5): access ends with the contract. E7 left the day before and still sent the
    partner its share; E8, in post, sends the same one silently; a sender the entitlements stream
    does not know is not judged here."""
    from conftest import entitlement

    e = Engine([spec], catalog, pseudonymize=Pseudonymizer(b"unit-test-key-0123456789"))
    e.apply_reference("consents", refs("consents", [consent()]))
    left = [entitlement("E7"), entitlement("E7", status="terminated", ts=T0 - 86_400_000), entitlement("E8")]
    e.apply_reference("entitlements", refs("entitlements", left))
    got = run(e, transfer(n=1, actor_id="E7"), transfer(n=2, actor_id="E8"), transfer(n=3, actor_id="E9"))
    (a,) = got.values()
    assert (a.rule_id, a.severity.value) == ("LM-TP-009", "high")
    assert "from crm by E7 sent to tp_insurance_partner, its sender terminated by then" in a.summary
    assert a.summary.count("E7") == 1, a.summary  # the sender once (a probe read it twice)


def test_a_consent_to_the_banks_own_marketing_clears_no_share_for_marketing(engine) -> None:
    """A probe: every customer held a separate consent to the bank's marketing by SMS, and their
    names and phones went to the insurer "for marketing": nothing fired. A consent names a purpose,
    not a recipient (seed 004 流程描述(1)⑦: 告知接收方的名称…处理目的…单独同意); the partner's contract
    names the purposes it gets data for (recipients.yaml `purposes`)."""
    e = engine(consent(purpose="marketing", channel="sms"))
    (a,) = run(e, transfer(purpose="marketing")).values()
    assert (
        a.rule_id == "LM-TP-006"
        and "does not cover the purpose marketing (it agrees insurance_referral)" in a.summary
    )
    assert run(engine(), transfer()) == {}  # its agreed purpose, consented: nothing


def test_a_declared_contract_id_holding_a_numbers_form_still_matches(tmp_path: Path, spec) -> None:
    """A review's: a contract declared as `HT-490154203237518` holds an IMEI's form, which the door
    seals in every name a log gives; the sealed id matched no declared contract, a false "no
    contract". The declared ids are known as the door seals them too."""
    folder = tmp_path / "policy"
    shutil.copytree(DEFAULT_DIR, folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    path = folder / "recipients.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("CT-tp_insurance_partner", "HT-490154203237518"))
    policy = load_policy(folder)
    e = Engine([next(s for s in load_detectors(policy) if s.kind == "transfer_policy")], Catalog(policy),
               pseudonymize=Pseudonymizer(b"unit-test-key-0123456789"))  # fmt: skip
    e.apply_reference("consents", refs("consents", [consent()]))
    assert run(e, transfer(contract_id="HT-490154203237518")) == {}
    assert rules(run(e, transfer(contract_id="HT-490154203237519", n=1), offset=1)) == ["LM-TP-006"]


# -- a minor's data (seed 004 定义(10), 流程描述(1)③; retention.yaml `minors`) --------------------------
def minors_engine(engine: Any, born: Mapping[str, str | None], *consents: Consent) -> Engine:
    """An engine whose customers were born on `born` (customer id -> birth date)."""
    from schemas.models import Customer

    e = engine(*consents)
    known = [
        Customer(customer_id=c, ts=0, org_id="S0101", org_path=["HO", "B01", "S0101"], birth_date=b)
        for c, b in born.items()
    ]
    e.apply_reference("customers", refs("customers", known))
    return e


@pytest.mark.parametrize(
    ("born", "given", "expected"),
    [
        ("2013-06-01", ("subject", True), ["LM-TP-013"]),  # 12, the child's own separate consent
        ("2013-06-01", ("guardian", True), []),
        ("2013-06-01", ("subject", False), ["LM-TP-002"]),  # no separate consent: the consent rule's
        ("2013-06-01", None, ["LM-TP-002"]),
        ("2012-01-01", ("subject", True), ["LM-TP-013"]),  # the 14th birthday: still 13
        ("2011-12-31", ("subject", True), []),  # 14 since today: the minor's own separate will do
        ("2008-01-02", ("subject", True), []),  # 17
        ("2007-12-31", ("subject", True), []),  # 18
        (None, ("subject", True), []),  # no birth date
    ],
    ids=[
        "12 own",
        "12 guardian",
        "12 own bundled",
        "12 none",
        "14th birthday own",
        "14 own",
        "17 own",
        "18 own",
        "no birth date",
    ],  # fmt: skip
)
def test_a_minors_data_is_shared_only_on_a_separate_consent_a_guardians_under_14(
    engine, born, given, expected
) -> None:
    """A probe's 12-year-old's name and phone went to the insurer on the child's own separate consent,
    unseen. Under 14 only the guardian's separate consent will do, aged the day after the birthday on
    the bank's calendar day (T0: 08:00 on 1 January 2026 in Beijing); a minor with no separate
    consent at all is LM-TP-002's already (one alert a subject, not two)."""
    consents = [consent("C9")]
    if given is not None:
        by, separate = given
        consents.append(consent("C1", separate=separate, given_by=by))
    alerts = run(minors_engine(engine, {"C1": born}, *consents), transfer(subject_ids=["C1"]))
    assert rules(alerts) == expected
    if expected == ["LM-TP-013"]:
        (a,) = alerts.values()
        assert a.severity.value == "high" and a.regulation[0].startswith("《个人信息保护法》第三十一条")
        assert "under 14 without a guardian's separate consent (监护人单独同意)" in a.summary
        assert "is the minor's own, not a guardian's" in a.summary and born not in a.summary


def test_a_share_names_the_minors_it_concerns_abroad_too_and_a_list_cannot_be_aged(engine) -> None:
    """One transfer of a child's and an adult's data, each on their own separate consent, and a third
    customer's it only counts: the minor's alert concerns the child alone (the subjects an incident notifies). Abroad the minor's rule applies
    as at home; a transfer naming only its list (`subject_list_id`) names no one to age."""
    born = {"C1": "2013-06-01", "C2": "1990-01-01"}
    pz = Pseudonymizer(b"unit-test-key-0123456789")
    e = minors_engine(engine, born, consent("C1"), consent("C2"))
    # a third customer counted, not named: LM-TP-002's, no minor of the child's alert
    got = run(e, transfer(subject_ids=["C1", "C2"], subject_count=3, record_count=3))
    assert rules(got) == ["LM-TP-002", "LM-TP-013"]
    a = next(a for a in got.values() if a.rule_id == "LM-TP-013")
    assert a.subjects_sample == [pz("C1")] and a.subject_count == 1
    assert a.counts["minors_without_consent"] == 1 and "the data of 1 minor" in a.summary
    ok = [consent(s, purpose="group_risk_management") for s in born]
    assert rules(run(minors_engine(engine, born, *ok), abroad(subject_ids=["C1", "C2"]))) == ["LM-TP-013"]
    # its unnamed customers are LM-TP-002's, as any list's
    listed = transfer(subject_ids=[], subject_list_id="SL-1", subject_count=2)
    assert rules(run(minors_engine(engine, born, consent("C1")), listed)) == ["LM-TP-002"]


# -- a producer's words, through the decoder ---------------------------------------------------------
def replayed(
    tmp_path: Path, spec: Any, catalog: Any, **streams: list[Any]
) -> tuple[dict[str, Any], list[Any]]:
    """The streams' records as a producer writes them (JSON, its own words for the enums), read by
    the real decoder into the engine: the latest revision per alert, and the dead letters."""
    for stream, records in streams.items():
        lines = (
            json.dumps(r.model_dump(mode="json") if hasattr(r, "model_dump") else r, ensure_ascii=False)
            for r in records
        )
        (tmp_path / f"pfi.{stream}.jsonl").write_text("\n".join(lines), encoding="utf-8")
    e = Engine([spec], catalog, pseudonymize=Pseudonymizer(b"unit-test-key-0123456789"))
    alerts, dead = replay(e, Decoder(), sorted(tmp_path.glob("pfi.*.jsonl")))
    return {a.alert_id: a for a in latest(sorted(alerts, key=lambda a: a.revision))}, dead


def said(record: Any, **words: str) -> dict[str, Any]:
    """The record as JSON, its fields in `words` as the producer writes them."""
    return {**record.model_dump(mode="json"), **words}


@pytest.mark.parametrize("kind", ["境外", "境外机构", "跨境", "cross-border", "Foreign", "第三方", "vendor"])
def test_a_transfer_abroad_its_log_classes_in_its_own_words_is_cross_border(
    tmp_path, spec, catalog, kind
) -> None:
    """A probe's MFT log sent an undeclared vendor in Singapore customers' names and phones, its
    counterparty classed 境外, 跨境, foreign, 第三方 or vendor (schemas/enum_words.yaml RecipientType):
    each a dead letter, and no alert at all where `overseas` raised a critical cross-border one
    (seed 002 §六.5; PIPL art. 38, 39)."""
    sent = transfer(recipient_id="sg_vendor_x", recipient_country="SG", contract_id=None, legal_basis="none")
    alerts, dead = replayed(tmp_path, spec, catalog, transfer=[said(sent, recipient_type=kind)])
    assert dead == [] and rules(alerts) == ["LM-TP-005", "LM-TP-006"]
    assert {a.rule_id: a.severity.value for a in alerts.values()}["LM-TP-005"] == "critical"


# -- provision to an authority (有权机关) ----------------------------------------------------------------
def inquiry(subjects: int, n: int = 0, named: bool = True, **kw: Any) -> TransferEvent:
    """A court's asset inquiry answered by the legal department's system (no employee ran it)."""
    base = dict(recipient_id="court_bj_haidian", recipient_type="regulator", contract_id=None, public_network=False,
                categories=["customer_name", "account_balance", "transaction_record"], legal_basis="legal_obligation",
                purpose="judicial_inquiry", sender_system="legal_system", record_count=subjects,
                subject_ids=[f"C{n:03d}{i:05d}" for i in range(subjects)] if named else [], subject_count=subjects)  # fmt: skip
    return transfer(n=n, **{**base, **kw})


def severity_of(e: Engine, ev: TransferEvent, offset: int = 0) -> tuple[str, str]:
    (a,) = run(e, ev, offset=offset).values()
    assert a.rule_id == "LM-TP-011"
    return a.severity.value, a.summary


def test_a_provision_to_an_authority_grows_with_the_people_it_sends(engine) -> None:
    """An inquiry (查询, 查控) names a case's few people. A probe's 30 000 customers' names, IDs, phones
    and holdings sent to `court_haidian` by an employee were one low trace, as were 3. The steps are
    transfer_policy.yaml's `authority_provision`: 50 and 500 subjects (解释第五条, seed 001 §五.1), a
    provision neither naming nor counting its subjects, an employee running it under no approval. A
    batch answer that logs its batch number is judged by the count it gives (probe U3-7: 40 people
    under `ZDZ-…` were high)."""
    assert severity_of(engine(), inquiry(3))[0] == "low"
    assert severity_of(engine(), inquiry(49))[0] == "low"
    level, said = severity_of(engine(), inquiry(50))
    assert level == "medium" and (
        "; 50 subjects in one provision (reached 50, 解释第五条第一款(三): 财产信息50条 / Interpretation art. 5 "
        "¶1 (3): 50 records of property information): an authority's "
        "inquiry names a case's few people" in said
    )
    assert severity_of(engine(), inquiry(300))[0] == "medium"
    level, said = severity_of(engine(), inquiry(500))
    assert level == "high" and "500 subjects in one provision (reached 500, 解释第五条第一款(四)" in said
    batch = inquiry(40, named=False, subject_list_id="ZDZ-20260302-000123")
    level, said = severity_of(engine(), batch)
    assert level == "low" and "names" not in said.split("legal document")[1]  # the batch's own reference
    listed = inquiry(30_000, named=False, subject_list_id="CASE-2026-001")
    assert severity_of(engine(), listed)[0] == "high"  # by its count
    level, said = severity_of(engine(), inquiry(5, named=False, subject_count=0))
    assert level == "high" and "it neither names nor counts its subjects" in said
    # by hand: an employee sent it through the file gateway, not the bank's inquiry system
    level, said = severity_of(engine(), inquiry(3, actor_id="E200001", sender_system="sftp_gateway"))
    assert level == "medium" and (
        "run by E200001 by hand, not by the bank's inquiry system, naming no approval: check its internal "
        "approval (内部授权审批手续)" in said
    )
    assert severity_of(engine(), inquiry(3000, actor_id="E200001"))[0] == "high"


def day_alerts(alerts: dict[str, Any]) -> list[Any]:
    """The authority's day alert: LM-TP-011 keyed by the day, not by a transfer."""
    return [a for a in alerts.values() if a.rule_id == "LM-TP-011" and a.event_count > 1]


def test_an_employees_provisions_to_an_authority_add_up_over_the_banks_day(engine) -> None:
    """Eleven hand provisions of 45 people each to one court are 495 people: each its own medium
    (no approval), and one day alert for the court, raised at the second provision (90, past 50)
    and revised, the same alert, when the twelfth takes the day past 500. A provision logged twice
    counts once; the day survives a restore; another court, or the next day, starts again."""
    e = engine()
    by_hand = {"actor_id": "E200001"}
    got = run(e, *(inquiry(45, n=n, ts=T0 + n * 60_000, **by_hand) for n in range(11)))
    assert sorted(a.severity.value for a in got.values() if a.event_count == 1) == ["medium"] * 11
    (day,) = day_alerts(got)
    assert (day.severity.value, day.revision, day.counts) == (
        "medium",
        1,
        {"day_subjects": 90, "day_provisions": 2},
    )
    assert (
        "court_bj_haidian (人民法院, people's courts) was provided 90 subjects in 2 provisions run by "
        "employees that day (reached 50, 解释第五条第一款(三): 财产信息50条 / Interpretation art. 5 ¶1 (3): 50 "
        "records of property information)" in day.summary
    )
    again = inquiry(45, n=0, ts=T0 + 11 * 60_000, **by_hand).model_copy(update={"event_id": "copy-0"})
    assert run(e, again, offset=11) == {}  # the gateway's copy of the first: nothing, and not counted
    later = engine()
    later.restore(0, e.changes(0))
    got = run(later, inquiry(45, n=12, ts=T0 + 12 * 60_000, **by_hand), offset=12)
    (risen,) = day_alerts(got)
    assert (risen.alert_id, risen.severity.value, risen.revision) == (day.alert_id, "high", 2)
    assert "540 subjects in 12 provisions" in risen.summary and risen.evidence_event_ids[0] == "tr-0-" + str(
        T0
    )
    other = inquiry(45, n=13, ts=T0 + 13 * 60_000, recipient_id="court_bj_chaoyang", **by_hand)
    assert day_alerts(run(later, other, offset=13)) == []
    assert day_alerts(run(later, inquiry(45, n=14, ts=CST_MIDNIGHT + HOUR, **by_hand), offset=14)) == []


def test_an_inquiry_systems_ordinary_day_is_no_day_alert_and_each_answer_stays_low(engine, policy) -> None:
    """Probe U3-1: the bank's inquiry system answered 300 court inquiries of 1-3 people over a day,
    all to the 总对总 network's one id: 231 medium and 46 high alerts, each one answer, where the
    same answers spelled per court stayed low. The inquiry system's volume is the courts' own
    inquiries (解释第五条 counts unlawful provision): every answer stays its own low trace and the
    day raises nothing. A bank that sets `day_includes_system` gets one day alert for the authority,
    revised as the day crosses each step, never an escalated answer."""
    sizes = [1 + n % 3 for n in range(300)]  # 600 people
    answers = [
        inquiry(k, n=n, ts=T0 + n * 120_000, recipient_id="court_spc_zongduizong")
        for n, k in enumerate(sizes)
    ]
    got = run(engine(), *answers)
    assert len(got) == 300 and {a.severity.value for a in got.values()} == {"low"}
    counted = policy.model_copy(deep=True)
    section = counted.detectors["transfer_policy"]
    params = section.params | {
        "authority_provision": {**section.params["authority_provision"], "day_includes_system": True}
    }
    counted.detectors["transfer_policy"] = section.model_copy(update={"params": params})
    spec = next(s for s in load_detectors(counted) if s.kind == "transfer_policy")
    e = Engine([spec], Catalog(counted), pseudonymize=Pseudonymizer(b"unit-test-key-0123456789"))
    alerts = []
    for first, last in ((0, 100), (100, 300)):  # two batches: 200 people by the first, 600 by the second
        part = fed("transfer", answers[first:last], "pfi.transfer", first)
        alerts += e.process("transfer", "pfi.transfer", 0, part) + e.drain()
    per_answer = [a for a in alerts if a.event_count == 1]
    assert len(per_answer) == 300 and {a.severity.value for a in per_answer} == {"low"}
    days = [a for a in alerts if a.event_count > 1]
    assert len({a.alert_id for a in days}) == 1
    assert [(a.severity.value, a.revision) for a in days] == [("medium", 1), ("high", 2)]
    assert (
        "provisions that day (reached 500" in days[-1].summary and "run by employees" not in days[-1].summary
    )


def test_a_legal_department_provision_under_its_approval_stays_low(engine) -> None:
    """Probe U3-7: a legal-department employee answering a court's paper 协助查询通知书 for one person was
    medium, asking for the internal approval (seed 004 流程描述(4)⑤: 依法合规对外提供…应执行内部授权审批手续)
    no field could record. The provision names it (`approval_id`); held in the employee's entitlement,
    approved by a department head, for the system and the data sent, it covers the provision, which
    stays the low trace and says so. Named but not held, or expired, it is medium and says why."""
    from conftest import entitlement

    legal = Approval(approval_id="AP-LEGAL-2026", purpose="judicial_inquiry", max_records=200,
                     expires_ts=T0 + 30 * 86_400_000, approver_id="E900001",
                     categories=["identity", "property", "transaction"], systems=["core_banking"])  # fmt: skip
    people = [
        entitlement("E900001", role="ho_dept_head", org="HO"),
        entitlement("E300021", role="aml_analyst", org="HO", approvals=[legal]),
    ]

    def answered(**kw: Any) -> tuple[str, str]:
        e = engine()
        e.apply_reference("entitlements", refs("entitlements", people))
        paper = inquiry(1, actor_id="E300021", sender_system="core_banking", recipient_id="court_bj_chaoyang")
        return severity_of(e, paper.model_copy(update=kw))

    level, said = answered(approval_id="AP-LEGAL-2026")
    assert level == "low" and "run by E300021 under approval AP-LEGAL-2026 (内部授权审批手续)" in said
    level, said = answered(approval_id="AP-OTHER")
    assert level == "medium" and "approval AP-OTHER is not in the employee's entitlement" in said
    level, said = answered(approval_id="AP-LEGAL-2026", ts=T0 + 31 * 86_400_000)
    assert level == "medium" and "approval AP-LEGAL-2026: it had expired" in said
    level, said = answered(approval_id="AP-LEGAL-2026", sender_system="sftp_gateway")
    assert level == "medium" and "it does not cover system sftp_gateway" in said


def test_entrusted_processing_and_legal_bases_in_a_logs_own_words_are_the_schemas(
    tmp_path, spec, catalog
) -> None:
    """外包 and 委托处理 are entrusted processing (seed 004 流程描述: 委托处理): an outsourcer abroad
    handed identifiable data is judged as the processor it is. A basis written 单独同意, 合同, 法定义务
    or 无 is the schema's (seed 004 隐私政策 (三); PIPL art. 13 ¶1): a probe's lost the whole share. A
    court's inquiry a log classes 监管机构 under 法定义务 is the authority's under the law it claims."""
    out = transfer(recipient_id="sg_vendor_x", recipient_country="SG", contract_id=None, legal_basis="none")
    share = transfer()
    inquiry = transfer(recipient_id="court_bj_chaoyang", contract_id=None, public_network=False, purpose=None)
    records = [
        said(out, recipient_type="外包", event_id="t-1", transfer_id="T-1"),
        said(out, recipient_type="委托处理", event_id="t-2", transfer_id="T-2"),
        *(
            said(share, legal_basis=basis, event_id=f"b-{i}", transfer_id=f"B-{i}")
            for i, basis in enumerate(["单独同意", "合同", "Contract Necessity", "法定义务", "无", "N/A"])
        ),
        said(inquiry, recipient_type="监管机构", legal_basis="法定义务", event_id="c-1", transfer_id="C-1"),
    ]
    alerts, dead = replayed(tmp_path, spec, catalog, transfer=records, consents=[consent()])
    assert dead == []
    by_recipient = {(a.actor_id, a.rule_id) for a in alerts.values()}
    assert by_recipient - {("sg_vendor_x", r) for r in ("LM-TP-003", "LM-TP-005", "LM-TP-006")} == {
        ("court_bj_chaoyang", "LM-TP-011")  # the law's trace, low
    }, by_recipient  # the insurer's shares, consented: silent whatever basis they claim
    assert "entrusted sg_vendor_x" in next(a for a in alerts.values() if a.rule_id == "LM-TP-003").summary


@pytest.mark.parametrize("word", ["Y", "1", "true"])
def test_a_recipient_type_or_basis_of_two_meanings_is_still_a_dead_letter(
    tmp_path, spec, catalog, word
) -> None:
    """A flag says nothing of which class or which basis: refused, with the values to use."""
    sent = transfer(n=1)
    alerts, dead = replayed(
        tmp_path,
        spec,
        catalog,
        transfer=[said(sent, recipient_type=word), said(transfer(n=2), legal_basis=word)],
    )
    assert alerts == {}
    assert [(d.kind, d.field) for d in dead] == [("invalid", "recipient_type"), ("invalid", "legal_basis")]
    assert "not one of: internal, processor, third_party, overseas" in dead[0].message


def test_a_separate_consent_logged_under_the_purposes_chinese_name_is_to_it(tmp_path, spec, catalog) -> None:
    """A probe's consent platform logged the separate consent to the insurer's share as 保险推荐:
    no consent to insurance_referral, and the share its contract agrees was a false LM-TP-002.
    purposes.yaml names the recipients' contract purposes as it names the bank's own; a transfer log
    that names the purpose so is the contract's too. Without the consent the share still fires."""
    consented = [consent(purpose="保险推荐"), consent("C0000002", purpose="基金代销", separate=True)]
    fund = transfer(
        n=1, recipient_id="tp_fund_distributor", contract_id="CT-tp_fund_distributor",
        categories=["customer_name", "payment_account_no"], subject_ids=["C0000002"], purpose="基金代销",
    )  # fmt: skip
    alerts, dead = replayed(
        tmp_path,
        spec,
        catalog,
        transfer=[transfer(), said(transfer(n=2), purpose="保险推荐"), fund],
        consents=consented,
    )
    assert (alerts, dead) == ({}, [])
    alerts, _ = replayed(
        tmp_path, spec, catalog, transfer=[said(transfer(), purpose="保险推荐")], consents=[]
    )
    assert rules(alerts) == ["LM-TP-002"] and "for insurance_referral" in next(iter(alerts.values())).summary


def test_a_recipient_is_read_by_its_own_names_not_by_what_describes_it(engine) -> None:
    """A reporting gateway writes the AML centre by its legal name (recipients.yaml `also`): a
    probe's daily filing to 中国反洗钱监测分析中心 was a provision to a third party. The names that
    describe a recipient are no spelling of it: a review's undeclared vendor logged 云数据分析服务商, the
    declared processor's description, passed as contracted."""
    filing = dict(
        recipient_type="regulator", legal_basis="legal_obligation", purpose="kyc_aml",
        categories=["transaction_record"], contract_id=None,
    )  # fmt: skip
    by_id = rules(run(engine(), transfer(recipient_id="reg_amlmac", **filing)))
    for name in ("中国反洗钱监测分析中心", "China AML Monitoring and Analysis Center", "camlmac"):
        assert rules(run(engine(), transfer(recipient_id=name, **filing))) == by_id, name
    assert "LM-TP-006" not in by_id
    vendor = transfer(
        recipient_id="云数据分析服务商", recipient_type="processor", categories=["transaction_record"]
    )
    assert "LM-TP-006" in rules(run(engine(), vendor))


EAST = [
    "customer_name",
    "id_document_no",
    "mobile_phone",
    "payment_account_no",
    "account_balance",
    "transaction_record",
]


def report(recipient_id: str, categories: list[str] = EAST, n: int = 2_400_000, **kw: Any) -> TransferEvent:
    """A regulatory report from the warehouse as a reporting gateway logs it: under a legal
    obligation, encrypted over the private line, its customers by a list and a count."""
    base = dict(
        sender_system="data_warehouse", recipient_id=recipient_id, recipient_type="regulator", categories=categories,
        record_count=n, subject_count=n, subject_ids=[], subject_list_id="EAST-2026Q1" if n else None,
        contract_id=None, public_network=False, legal_basis="legal_obligation", purpose="regulatory_report",
    )  # fmt: skip
    return transfer(**{**base, **kw})


@pytest.mark.parametrize(
    ("recipient", "categories", "n"),
    [
        ("reg_nfra", EAST, 2_400_000),  # the quarterly EAST file
        ("国家金融监督管理总局", EAST, 2_400_000),  # as the gateway names it
        ("银保监会", EAST, 2_400_000),  # a gateway built under its predecessor
        ("reg_nfra", ["account_balance", "loan_details"], 0),  # the 1104 statements: sums naming no one
        ("中国人民银行", ["customer_name", "id_document_no", "loan_details", "account_balance"], 300_000),
        ("国家外汇管理局", ["customer_name", "payment_account_no", "transaction_record"], 1_200),
    ],
)
def test_the_banks_reports_to_its_declared_regulators_are_the_laws_not_shares(
    engine, recipient, categories, n
) -> None:
    """Seed 004 隐私政策 (二)2: 根据法律法规、监管要求或国家有权机关要求向相关部门进行报告. A probe's EAST file to the
    NFRA, which recipients.yaml did not declare, was LM-TP-002 and LM-TP-006 high and a leakage
    incident every quarter; the 1104 aggregate, LM-TP-006 and an incident of 0 subjects. The NFRA,
    the PBoC and SAFE are declared regulators now, by their ids and the names gateways write."""
    assert run(engine(), report(recipient, categories, n)) == {}


def test_a_regulator_the_bank_never_declared_is_still_a_third_party_and_c3_goes_to_none(engine) -> None:
    """The cover an exfiltration would use: a look-alike regulator id, or the real one's name with a
    suffix. And a declared regulator's report carrying a card's security code is C3 leaving the bank."""
    for n, fake in enumerate(
        ("reg_nfra_data_centre", "国家金融监督管理总局数据中心", "reg_fin_stats_bureau")
    ):
        assert rules(run(engine(), report(fake, n=50_000, transfer_id=f"T{n}"))) == [
            "LM-TP-002",
            "LM-TP-006",
        ], fake
    (a,) = run(engine(), report("reg_nfra", [*EAST, "card_cvn"], transfer_id="T9")).values()
    assert (a.rule_id, a.severity.value) == ("LM-TP-001", "critical")
    assert "sent C3 data to regulator reg_nfra" in a.summary


# -- a system whose data never leaves the bank (organisation.yaml `never_provide_to`) ------------------
def test_the_mobile_bankers_customer_data_goes_to_no_third_party_but_what_the_law_requires(engine) -> None:
    """Seed 004 掌上银行家 系统使用要求⑥: 不得向任何第三方单位提供此系统内任何客户信息…, 法律法规另有规定的
    除外. A probe's share from 掌上银行家 to the fund distributor, the customer consenting and the
    contract in force, raised nothing: the same share from core banking is lawful, from the employees'
    app it is not. The AML centre's filing and a court's inquiry, which the law requires, leave it."""
    e = engine(consent(purpose="fund_distribution"))
    share = dict(
        recipient_id="tp_fund_distributor", contract_id="CT-tp_fund_distributor", purpose="fund_distribution",
        categories=["customer_name", "assets"], actor_id="E100001",
    )  # fmt: skip
    assert run(e, transfer(n=1, sender_system="core_banking", **share)) == {}
    for n, sender in enumerate(("mobile_banker", "掌上银行家"), 2):  # the log's name for it too
        (a,) = run(e, transfer(n=n, sender_system=sender, **share), offset=n).values()
        assert (a.rule_id, a.severity.value) == ("LM-TP-014", "high")
        assert a.title_en == "Customer data provided outside the bank from a system that never provides it"
        assert (
            "from mobile_banker by E100001 provided its customer data to third_party tp_fund_distributor, "
            "although mobile_banker (掌上银行家) provides none to a third_party" in a.summary
        ), a.summary
        assert any("系统使用要求⑥" in r for r in a.regulation)
    filing = dict(
        sender_system="mobile_banker", recipient_id="reg_amlmac", recipient_type="regulator", contract_id=None,
        legal_basis="legal_obligation", purpose="kyc_aml", categories=["customer_name", "transaction_record"],
    )  # fmt: skip
    assert run(e, transfer(n=4, **filing), offset=4) == {}
    court = {**filing, "recipient_id": "court_bj_chaoyang", "purpose": "judicial_inquiry"}
    assert rules(run(e, transfer(n=5, **court), offset=5)) == ["LM-TP-011"]  # its trace alone
    # a claimed obligation lifts nothing for a partner
    claimed = transfer(n=6, sender_system="mobile_banker", **{**share, "legal_basis": "legal_obligation"})
    assert rules(run(e, claimed, offset=6)) == ["LM-TP-014"]


def test_a_system_may_not_refuse_the_banks_own_systems(tmp_path: Path) -> None:
    """`never_provide_to` lists recipients outside the bank: the bank's own systems are no 第三方单位."""
    folder = tmp_path / "policy"
    shutil.copytree(DEFAULT_DIR, folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    path = folder / "organisation.yaml"
    text = path.read_text(encoding="utf-8")
    old = "never_provide_to: [processor, third_party, overseas, public]"
    assert old in text
    path.write_text(text.replace(old, "never_provide_to: [internal, third_party]"), encoding="utf-8")
    with pytest.raises(PolicyError) as e:
        load_policy(folder)
    assert (
        e.value.file.endswith("organisation.yaml") and e.value.key == "systems.mobile_banker.never_provide_to"
    )
    assert "internal is the bank's own systems" in str(e.value) and e.value.line is not None


# -- the arrangement's impact assessment (seed 004 基本规定(3)③, seed 002 §六.4(4)) -------------------
def engine_of(folder: Path, *consents: Consent) -> Engine:
    policy = load_policy(folder)
    e = Engine([next(s for s in load_detectors(policy) if s.kind == "transfer_policy")], Catalog(policy),
               pseudonymize=Pseudonymizer(b"unit-test-key-0123456789"))  # fmt: skip
    e.apply_reference("consents", refs("consents", list(consents or [consent()])))
    return e


def test_entrusting_and_providing_stand_on_the_arrangements_assessment_valid_then(
    engine, tmp_path: Path
) -> None:
    """Seed 004 基本规定(3)③: 委托处理…、向合作机构提供…应当事前进行个人金融信息保护影响评估. A probe's entrusting
    to the cloud analytics provider raised nothing with no assessment declared, naming one nobody
    declared, or its declared one expired. The shipped recipients.yaml records each arrangement's:
    its transfers are silent, one naming another is not."""
    cloud = processor(recipient_id="proc_cloud_analytics", contract_id="CT-proc_cloud_analytics",
                      categories=["transaction_record"], deidentified=True)  # fmt: skip
    assert run(engine(), cloud) == {}
    assert run(engine(), processor(n=1, recipient_id="proc_cloud_analytics", contract_id="CT-proc_cloud_analytics",
                                   categories=["transaction_record"], deidentified=True,
                                   assessment_id="PIA-2024-025")) == {}  # fmt: skip
    (a,) = run(engine(), processor(n=2, recipient_id="proc_cloud_analytics", contract_id="CT-proc_cloud_analytics",
                                   categories=["transaction_record"], deidentified=True,
                                   assessment_id="PIA-NOPE")).values()  # fmt: skip
    assert (a.rule_id, a.severity.value) == ("LM-TP-015", "high")
    assert (
        "entrusted data to processor proc_cloud_analytics with assessment 'PIA-NOPE', not one declared"
        in a.summary
    )
    assert a.title_en == "PFI entrusted or provided to a partner without a valid impact assessment"
    assert a.regulation[0].startswith("《个人信息保护法》第五十五条") and any(
        "基本规定(3)③" in r for r in a.regulation
    )
    # the bank's folder: the cloud provider's assessment ran out a year before its contract, the
    # insurer's arrangement has none on record
    folder = tmp_path / "policy"
    shutil.copytree(DEFAULT_DIR, folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    path = folder / "recipients.yaml"
    text = path.read_text(encoding="utf-8")
    for old, new in (("{id: PIA-2024-025, valid_from: 2024-12-15, valid_to: 2026-12-31}",
                      "{id: PIA-2024-025, valid_from: 2024-12-15, valid_to: 2025-12-31}"),
                     ("    assessments:\n      - {id: PIA-2025-016, valid_from: 2025-06-10, valid_to: 2026-06-30}\n", "")):  # fmt: skip
        assert old in text
        text = text.replace(old, new, 1)
    path.write_text(text, encoding="utf-8")
    e = engine_of(folder)
    (b,) = run(e, cloud).values()  # 2026-01-01, its contract in force to 2026-12-31
    assert b.rule_id == "LM-TP-015" and (
        "with no impact assessment valid at the time (PIA-2024-025 valid 2024-12-15 to 2025-12-31)"
        in b.summary
    ), b.summary
    (c,) = run(e, transfer(n=3), offset=1).values()  # the insurer's consented share
    assert c.rule_id == "LM-TP-015" and (
        "provided data to third_party tp_insurance_partner with no impact assessment (recipients.yaml declares "
        "none for it)" in c.summary
    ), c.summary
    # no arrangement to assess: a contract ended, a recipient nobody approved (LM-TP-006 says so)
    ended = transfer(n=4, recipient_id="tp_legacy_partner", contract_id="CT-tp_legacy_partner",
                     categories=["occupation"], deidentified=True, subject_ids=[], subject_count=5)  # fmt: skip
    assert rules(run(engine(), ended)) == ["LM-TP-006"]


def test_a_folder_recording_no_arrangements_assessment_has_no_such_rule_yet_and_clearing_needs_none(
    tmp_path: Path,
) -> None:
    """A review's upgrade: a bank's own recipients.yaml, written before `assessments` were read,
    raised a high alert for every file to a processor and every card authorisation to the clearing
    house. Until the folder records some arrangement's assessment the rule waits (`lifemon policy
    check` names the recipients to fill in); once it does, a clearing house's clearing (the national
    scheme's, not an arrangement's) still needs none, and its other transfers do."""
    folder = tmp_path / "policy"
    shutil.copytree(DEFAULT_DIR, folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    path = folder / "recipients.yaml"
    text = path.read_text(encoding="utf-8")
    cloud = processor(recipient_id="proc_cloud_analytics", contract_id="CT-proc_cloud_analytics",
                      categories=["transaction_record"], deidentified=True)  # fmt: skip
    path.write_text(re.sub(r"    assessments:\n(      - [^\n]*\n)+", "", text), encoding="utf-8")
    assert "LM-TP-015" not in rules(run(engine_of(folder), cloud))
    unionpay = text.index("  clr_unionpay:")
    path.write_text(
        text[:unionpay] + re.sub(r"    assessments:\n      - [^\n]*\n", "", text[unionpay:], count=1),
        encoding="utf-8",
    )
    clearing = transfer(n=5, recipient_id="clr_unionpay", recipient_type="third_party", contract_id="CT-clr_unionpay",
                        purpose="payment", legal_basis="contract", categories=["card_number"])  # fmt: skip
    assert "LM-TP-015" not in rules(run(engine_of(folder), clearing))
    other = clearing.model_copy(update={"purpose": "risk_control", "event_id": "tr-6", "transfer_id": "T6"})
    assert "LM-TP-015" in rules(run(engine_of(folder), other))


def test_a_transfer_naming_the_assessment_its_renewal_replaced_stands_on_the_renewal(tmp_path: Path) -> None:
    """A probe's nightly job kept naming the assessment the contract's renewal replaced: a high
    alert a night, as if none existed. An id the recipient declared, with another valid then, is the
    arrangement assessed; an id never declared still fires."""
    folder = tmp_path / "policy"
    shutil.copytree(DEFAULT_DIR, folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    path = folder / "recipients.yaml"
    old = "      - {id: PIA-2024-025, valid_from: 2024-12-15, valid_to: 2026-12-31}\n"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, "      - {id: PIA-2024-025, valid_from: 2024-12-15, valid_to: 2025-12-31}\n"
                                      "      - {id: PIA-2026-003, valid_from: 2026-01-01, valid_to: 2026-12-31}\n"),
                    encoding="utf-8")  # fmt: skip

    def cloud(n: int, named: str) -> TransferEvent:
        return processor(n=n, recipient_id="proc_cloud_analytics", contract_id="CT-proc_cloud_analytics",
                         categories=["transaction_record"], deidentified=True, assessment_id=named)  # fmt: skip

    assert "LM-TP-015" not in rules(run(engine_of(folder), cloud(1, "PIA-2024-025")))
    assert "LM-TP-015" in rules(run(engine_of(folder), cloud(2, "PIA-NOPE")))


def test_a_type_is_assessed_per_transfer_or_per_arrangement_not_both(tmp_path: Path) -> None:
    folder = tmp_path / "policy"
    shutil.copytree(DEFAULT_DIR, folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    path = folder / "detectors" / "transfer_policy.yaml"
    text = path.read_text(encoding="utf-8")
    assert "  assessment_types: [public]\n" in text
    path.write_text(
        text.replace("  assessment_types: [public]\n", "  assessment_types: [public, processor]\n")
    )
    with pytest.raises(PolicyError) as e:
        load_detectors(load_policy(folder))
    assert "processor in both assessment_types and arrangement_types" in str(e.value)
