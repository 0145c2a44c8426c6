"""QA cases for transfer_policy, written from seed 002 §六 (sharing needs each subject's explicit
consent and a contract; processors get de-identified data; cross-border needs separate consent and an
outbound security assessment) and the bank's own recipients.yaml (its contracts, their dates in the
bank's calendar, their agreed volumes), not from the detector's constants.

2026-01-01T00:00Z (T0) is 08:00 in Beijing; the legacy co-branding partner's contract ended on
2025-12-31; the partner insurer's agreement is 2,000 records a day; the Hong Kong affiliate's
outbound assessment OSA-2025-003 is valid to 2027-05-14.
"""

from __future__ import annotations

from typing import Any

from conftest import T0, fed, refs

from detectors import load_detectors
from schemas.models import Consent, TransferEvent
from streams.alerts import latest
from streams.engine import Engine
from streams.pseudonym import Pseudonymizer

HOUR, DAY = 3_600_000, 86_400_000
CST = 8 * HOUR
SUBJECTS = ["CIF0070000001", "CIF0070000002", "CIF0070000003"]
_serial = iter(range(10**9))


def cst(day: int, hour: float = 0) -> int:
    """Epoch ms of 2026-01-(1 + day) at `hour` o'clock in Beijing."""
    return T0 - CST + day * DAY + int(hour * HOUR)


def transfer(ts: int, recipient: str = "tp_insurance_partner", **kw: Any) -> TransferEvent:
    n = next(_serial)
    base: dict[str, Any] = {
        "event_id": f"xfer-{n}", "ts": ts, "transfer_id": f"TRF-2026-{n:05d}", "sender_system": "crm",
        "actor_id": "E40001", "recipient_id": recipient, "recipient_type": "third_party",
        "categories": ["customer_name", "mobile_phone"], "record_count": len(SUBJECTS),
        "subject_count": len(SUBJECTS), "subject_ids": SUBJECTS, "encrypted": True, "deidentified": False,
        "public_network": True, "legal_basis": "separate_consent", "purpose": "insurance_referral",
    }  # fmt: skip
    return TransferEvent(**{**base, **kw})


def consents(purpose: str = "insurance_referral", at: int = cst(-60)) -> list[Consent]:
    return [Consent(subject_id=s, ts=at, purpose=purpose, status="granted", separate=True) for s in SUBJECTS]


def run(policy: Any, catalog: Any, events: list[TransferEvent], given: list[Consent]) -> list[Any]:
    spec = next(s for s in load_detectors(policy) if s.kind == "transfer_policy")
    e = Engine([spec], catalog, pseudonymize=Pseudonymizer(b"qa-transfer-key-0123456789"))
    e.apply_reference("consents", refs("consents", given))
    alerts = e.process("transfer", "pfi.transfer", 0, fed("transfer", events, "pfi.transfer")) + e.advance()
    alerts += e.drain()
    out = {a.alert_id: a for a in latest(sorted(alerts, key=lambda a: a.revision))}
    for a in out.values():
        blob = a.model_dump_json()
        assert not any(s in blob for s in SUBJECTS), a.summary
    return list(out.values())


def names(alerts: list[Any], spec_rules: Any) -> list[str]:
    by_id = {r.rule_id: name for name, r in spec_rules}
    return sorted(by_id[a.rule_id] for a in alerts)


def rules_of(policy: Any) -> Any:
    return next(s for s in load_detectors(policy) if s.kind == "transfer_policy").params.rules


def test_a_consented_share_on_the_last_evening_of_the_contract_is_silent(policy, catalog) -> None:
    legacy = {"recipient": "tp_legacy_partner", "purpose": "cobrand_service"}
    assert run(policy, catalog, [transfer(cst(-1, 23.5), **legacy)], consents("cobrand_service")) == []


def test_a_share_the_morning_after_the_contract_expired_fires(policy, catalog) -> None:
    legacy = {"recipient": "tp_legacy_partner", "purpose": "cobrand_service"}
    got = run(policy, catalog, [transfer(cst(0, 9), **legacy)], consents("cobrand_service"))
    assert names(got, rules_of(policy)) == ["recipient_not_approved"]
    (a,) = got
    assert a.severity.value == "high" and "expired" in a.summary and a.actor_id == "tp_legacy_partner"


def test_a_processor_under_contract_with_de_identified_data_is_silent(policy, catalog) -> None:
    ev = transfer(
        cst(3, 10), "proc_cloud_analytics", recipient_type="processor", categories=["transaction_record", "customer_segment"],
        deidentified=True, legal_basis="contract", purpose="analytics", record_count=120_000, subject_count=40_000,
        subject_ids=[], subject_list_id="LIST-2026-01-04",
    )  # fmt: skip
    assert run(policy, catalog, [ev], []) == []


def test_exactly_the_agreed_day_across_midnight_utc_is_silent_one_more_fires(policy, catalog) -> None:
    """2,000 a day in Beijing: 1,000 at 07:00 and 1,000 at 23:00 on 2 Jan (two UTC days) is the
    agreement; one more record that day is over it. 1,500 at 23:30 and 1,500 at 00:30 are two days."""

    def share(ts: int, n: int) -> TransferEvent:
        return transfer(ts, record_count=n, deidentified=True)

    assert run(policy, catalog, [share(cst(1, 7), 1000), share(cst(1, 23), 1000)], consents()) == []
    assert run(policy, catalog, [share(cst(1, 23.5), 1500), share(cst(2, 0.5), 1500)], consents()) == []
    got = run(policy, catalog, [share(cst(1, 7), 1000), share(cst(1, 23), 1001)], consents())
    assert names(got, rules_of(policy)) == ["volume_exceeded"] and got[0].severity.value == "medium"


def test_one_subject_withdrawn_yesterday_fires_and_names_no_customer(policy, catalog) -> None:
    withdrawn = Consent(subject_id=SUBJECTS[1], ts=cst(-1, 18), purpose="insurance_referral", status="withdrawn", separate=True)  # fmt: skip
    got = run(policy, catalog, [transfer(cst(0, 10))], [*consents(), withdrawn])
    assert names(got, rules_of(policy)) == ["sharing_without_consent"]
    assert got[0].counts["subjects_without_consent"] == 1 and got[0].severity.value == "high"


def test_the_hk_affiliate_on_the_assessments_last_day_and_the_day_after(policy, catalog) -> None:
    hk = {"recipient": "os_parent_group_hk", "recipient_type": "overseas", "recipient_country": "HK",
          "categories": ["customer_name", "payment_account_no"], "assessment_id": "OSA-2025-003",
          "purpose": "group_aml_review"}  # fmt: skip
    last_day = cst(498, 20)  # 2027-05-14 20:00 in Beijing
    assert run(policy, catalog, [transfer(last_day, **hk)], consents("group_aml_review")) == []
    got = run(policy, catalog, [transfer(last_day + DAY, **hk)], consents("group_aml_review"))
    assert names(got, rules_of(policy)) == ["cross_border"] and got[0].severity.value == "critical"
    assert got[0].counts.get("leakage_candidate") == 1


def test_an_account_balance_the_insurers_contract_does_not_cover(policy, catalog) -> None:
    got = run(
        policy, catalog, [transfer(cst(0, 10), categories=["customer_name", "account_balance"])], consents()
    )
    assert names(got, rules_of(policy)) == ["recipient_not_approved"] and "property" in got[0].summary
