"""Acceptance cases for transfer_policy that its own tests never saw, written from seed 002 §四(3) and
§六.1-5 (entrusted processing, sharing and transfer, public disclosure, cross-border provision), seed
004 流程描述(1)⑦ (separate consent to provide to another processor) and (4)⑪⑬ (entrusting, abroad),
and from what the bank declared in policy/recipients.yaml (its recipients, the categories each
contract covers, their dates in the bank's calendar, agreed volumes, outbound assessments): not from
the detector's constants.

2026-01-01T00:00Z (T0) is 08:00 in Beijing. Normal flows near each line stay silent; each violation
raises exactly the rules a compliance officer would name, with the severity and both titles the
policy gives.
"""

from __future__ import annotations

from typing import Any

import pytest
from conftest import T0, fed, refs

from detectors import load_detectors
from policy.catalog import Catalog
from schemas.models import Consent, TransferEvent
from streams.alerts import latest
from streams.engine import Engine
from streams.pseudonym import Pseudonymizer

HOUR, DAY = 3_600_000, 86_400_000
CST = 8 * HOUR
SUBJECTS = ["CIF0016180339", "CIF0016180340"]
_serial = iter(range(10**9))


def cst(day: int, hour: float = 10) -> int:
    """Epoch ms of 2026-01-(1 + day) at `hour` o'clock in Beijing (negative days are 2025)."""
    return T0 - CST + day * DAY + int(hour * HOUR)


def transfer(recipient: str, kind: str, categories: list[str], ts: int = cst(5), **kw: Any) -> TransferEvent:
    """One flow as the sending system logs it: named subjects, encrypted, over the internet."""
    n = next(_serial)
    base: dict[str, Any] = {
        "event_id": f"xfer-{n}", "ts": ts, "transfer_id": f"TRF-{n:05d}", "sender_system": "crm",
        "actor_id": "E62001", "recipient_id": recipient, "recipient_type": kind, "categories": categories,
        "record_count": len(SUBJECTS), "subject_count": len(SUBJECTS), "subject_ids": SUBJECTS,
        "encrypted": True, "deidentified": False, "public_network": True, "legal_basis": "separate_consent",
    }  # fmt: skip
    return TransferEvent(**{**base, **kw})


def deidentified(recipient: str, kind: str, categories: list[str], records: int, ts: int = cst(5), **kw: Any):
    """A de-identified batch: the subjects are counted, not named."""
    return transfer(
        recipient, kind, categories, ts, deidentified=True, subject_ids=[], subject_list_id="LIST-1",
        record_count=records, subject_count=records, legal_basis="contract", **kw,
    )  # fmt: skip


def consents(purpose: str, separate: bool = True, at: int = cst(-30)) -> list[Consent]:
    return [
        Consent(subject_id=s, ts=at, purpose=purpose, status="granted", separate=separate) for s in SUBJECTS
    ]


@pytest.fixture
def run(policy, catalog):
    """The transfers through the real engine (one batch), then the input ends; newest revisions."""
    spec = next(s for s in load_detectors(policy) if s.kind == "transfer_policy")
    by_id = {r.rule_id: name for name, r in spec.params.rules}

    def go(events: list[TransferEvent], given: list[Consent] = ()) -> dict[str, Any]:  # type: ignore[assignment]
        e = Engine([spec], catalog, pseudonymize=Pseudonymizer(b"qa-transfer-cases-0123456789"))
        e.apply_reference("consents", refs("consents", list(given)))
        events = sorted(events, key=lambda ev: ev.ts)
        alerts = e.process("transfer", "pfi.transfer", 0, fed("transfer", events, "pfi.transfer"))
        alerts += e.advance() + e.drain()
        out = {a.alert_id: a for a in latest(sorted(alerts, key=lambda a: a.revision))}
        for a in out.values():
            assert not any(s in a.model_dump_json() for s in SUBJECTS), a.summary
            assert a.title_zh and a.title_en and a.regulation, a.rule_id
        got = {by_id[a.rule_id]: a for a in out.values()}
        assert len(got) == len(out), [a.summary for a in out.values()]
        return got

    return go


def severities(got: dict[str, Any]) -> dict[str, str]:
    return {rule: a.severity.value for rule, a in got.items()}


# -- normal flows near the lines: silent -------------------------------------------------------------
def test_the_fund_distributor_gets_exactly_the_categories_its_contract_lists(run) -> None:
    """CT-tp_fund_distributor covers identity, account and property; every subject consented separately."""
    ev = transfer("tp_fund_distributor", "third_party", ["customer_name", "payment_account_no", "assets"],
                  purpose="fund_distribution")  # fmt: skip
    assert run([ev], consents("fund_distribution")) == {}


@pytest.mark.parametrize("country", ["CN", "cn", "Cn", " CN ", "CHN", "chn", "156", "China", "中国"])
def test_a_domestic_partner_logged_with_its_country_in_any_case_stays_domestic(run, country) -> None:
    """A sending system that writes `cn` for the declared domestic partner, or ISO 3166's alpha-3
    (CHN) or numeric (156) code for it, or a name no code is: the same compliant flow, never a
    cross-border incident with a one-day report deadline (where the policy declares the recipient,
    a name is its code, and text neither says nothing)."""
    ev = transfer("tp_fund_distributor", "third_party", ["customer_name", "payment_account_no", "assets"],
                  purpose="fund_distribution", recipient_country=country)  # fmt: skip
    assert run([ev], consents("fund_distribution")) == {}


@pytest.mark.parametrize(
    "country", ["hk", "Hk", "HK", "HKG", "344", "Hong Kong", "香港", "中国香港", "HKSAR", "CN-HK"]
)
def test_a_foreign_country_in_any_case_is_cross_border(run, country) -> None:
    ev = transfer("tp_fund_distributor", "third_party", ["customer_name", "payment_account_no", "assets"],
                  purpose="fund_distribution", recipient_country=country)  # fmt: skip
    got = run([ev], consents("fund_distribution"))
    assert set(got) == {"cross_border"} and "(HK)" in got["cross_border"].summary


@pytest.mark.parametrize(
    "country",
    ["China", "中国", "中华人民共和国", "Mainland China", "China (Mainland)", "境内", "CN-SH", "cn-gd"],
)
def test_an_undeclared_recipient_at_home_in_words_is_not_abroad(run, country) -> None:
    """A probe's undeclared recipient logged in 中华人民共和国 was a critical cross-border incident:
    the name is the home country's, and so is a province's ISO 3166-2 code (CN-SH, CN-GD; CN-HK is
    Hong Kong's). It is still an undeclared recipient."""
    ev = transfer("tp_survey_co", "third_party", ["customer_name", "transaction_record"],
                  purpose="fund_distribution", recipient_country=country)  # fmt: skip
    got = run([ev], consents("fund_distribution"))
    assert "cross_border" not in got and "recipient_not_approved" in got


def test_an_undeclared_recipient_somewhere_no_code_names_is_judged_abroad(run) -> None:
    """A recipient recipients.yaml does not declare, logged in `Atlantis`: where the data went is
    unknown, and not home; as much as the same recipient logged in CN is not."""
    ev = transfer("fx-broker-x", "third_party", ["customer_name", "payment_account_no"],
                  purpose="fund_distribution", recipient_country="Atlantis")  # fmt: skip
    assert "cross_border" in run([ev], consents("fund_distribution"))
    home = ev.model_copy(update={"recipient_country": "CN"})
    assert "cross_border" not in run([home], consents("fund_distribution"))


def test_a_batch_flagged_de_identified_that_names_its_customers_is_not(run) -> None:
    """Seed 002 §六.2(1): 去标识化处理, 且确保数据接收方无法重新识别. A sending system's flag is a
    claim; names and subject ids in the batch refute it, and the consent rules apply."""
    ev = transfer("tp_fund_distributor", "third_party", ["customer_name", "id_document_no", "assets"],
                  deidentified=True, legal_basis="contract", purpose="fund_distribution")  # fmt: skip
    got = run([ev])
    assert set(got) == {"sharing_without_consent"}
    assert "flagged de-identified, yet it names 2 subjects" in got["sharing_without_consent"].summary
    processor = transfer("proc_cloud_analytics", "processor", ["transaction_record"], deidentified=True,
                         purpose="data_analysis")  # fmt: skip
    got = run([processor])
    assert set(got) == {"entrusted_not_deidentified"}
    # the sender relied on its flag, not on encryption: the alert says what refutes the flag
    said = got["entrusted_not_deidentified"].summary
    assert "flagged de-identified, yet it names 2 subjects" in said and "encryption alone" not in said, said


def test_de_identified_data_shared_without_consent_is_exempt(run) -> None:
    """Seed 002 §六.2(1): 共享、转让经去标识化处理的个人金融信息, 且确保数据接收方无法重新识别的除外.
    Genders and occupations counted by list are that; names and phone numbers are not, whatever the
    sender flagged (a probe's 1 500 leads passed)."""
    ev = deidentified("tp_insurance_partner", "third_party", ["gender", "occupation"], 1500,
                      purpose="insurance_referral")  # fmt: skip
    assert run([ev]) == {}
    leads = ev.model_copy(update={"categories": ["customer_name", "mobile_phone"]})
    got = run([leads])
    assert set(got) == {"sharing_without_consent"}
    assert (
        "flagged de-identified, yet it sends customer_name, mobile_phone"
        in got["sharing_without_consent"].summary
    )


def test_the_hong_kong_affiliate_with_separate_consent_and_its_assessment(run) -> None:
    """Seed 004 流程描述(4)⑬: separate consent, standard contract, security assessment: all on file."""
    ev = transfer("os_parent_group_hk", "overseas", ["customer_name", "payment_account_no", "transaction_record"],
                  recipient_country="HK", assessment_id="OSA-2025-003", purpose="group_aml_review")  # fmt: skip
    assert run([ev], consents("group_aml_review")) == {}


def test_a_referral_logged_without_its_purpose_to_the_insurer_of_one_purpose(run) -> None:
    """A probe: both customers gave separate insurance_referral consents in the app the day before;
    the CRM logged the share to the insurer with no purpose. Its contract agrees insurance_referral
    alone, so that is what the share was for, and each consent covers it."""
    given = [Consent(subject_id=s, ts=cst(4), purpose="insurance_referral", status="granted", separate=True,
                     channel="app_push") for s in SUBJECTS]  # fmt: skip
    ev = transfer("tp_insurance_partner", "third_party", ["customer_name", "mobile_phone"],
                  contract_id="CT-tp_insurance_partner", purpose=None)  # fmt: skip
    assert run([ev], given) == {}
    # a consent to another purpose does not cover it, whatever the log leaves out
    got = run([ev], consents("marketing"))
    assert set(got) == {"sharing_without_consent"}
    assert (
        "no separate consent for insurance_referral, the one purpose"
        in got["sharing_without_consent"].summary
    )


def test_the_regulatory_report_over_the_private_line_is_silent(run) -> None:
    ev = transfer("reg_amlmac", "regulator", ["customer_name", "id_document_no", "transaction_record"],
                  subject_ids=[], subject_count=40_000, record_count=90_000, public_network=False,
                  encrypted=False, legal_basis="legal_obligation", purpose="regulatory_report")  # fmt: skip
    assert run([ev]) == {}


def test_a_regulator_only_the_log_names_is_a_third_party(run) -> None:
    """recipients.yaml declares the regulators the bank reports to; a sending system's log calling
    another recipient a regulator lifts no rule (a probe: 50 000 names and accounts to
    `reg_unknown_bureau`, no contract, passed every rule), as a log calling one internal does not."""
    ev = transfer("reg_unknown_bureau", "regulator", ["customer_name", "mobile_phone", "payment_account_no"],
                  subject_ids=[], subject_count=50_000, record_count=50_000, public_network=False,
                  encrypted=True, legal_basis="legal_obligation", purpose="regulatory_report")  # fmt: skip
    got = run([ev])
    assert set(got) >= {"recipient_not_approved", "sharing_without_consent"}
    assert "not an approved recipient" in got["recipient_not_approved"].summary


# -- provision the law requires (seed 004 流程描述(4)①⑩: 法律法规…另有规定的除外) ---------------------------
INQUIRY = ["customer_name", "account_balance", "transaction_record"]


def court(categories: list[str] = INQUIRY, **kw: Any) -> TransferEvent:
    """A court's asset inquiry answered by the legal department's system, as the probe sent it (no
    employee ran it: one who does is checked harder, tests/test_transfer_policy.py)."""
    base = dict(subject_ids=SUBJECTS[:1], subject_count=1, record_count=30, public_network=False, actor_id=None,
                legal_basis="legal_obligation", purpose="judicial_inquiry", sender_system="legal_system")  # fmt: skip
    return transfer("court_bj_chaoyang", "regulator", categories, **{**base, **kw})


def test_a_courts_asset_inquiry_answered_under_the_law_is_only_traced(run) -> None:
    """A probe: the court (recipients.yaml declares the class, courts, not each court) raised "no
    separate consent" and "not an approved recipient". The law requires the answer: a low trace."""
    got = run([court()])
    assert severities(got) == {"provided_under_legal_obligation": "low"}
    a = got["provided_under_legal_obligation"]
    assert (
        "court_bj_chaoyang (人民法院, people's courts) under a legal obligation, encrypted over a private network"
        in (a.summary)
    )
    assert (a.counts["encrypted"], a.title_en) == (1, "PFI provided to an authority under a legal obligation")


def test_what_a_court_still_may_not_get(run) -> None:
    """The law lifts consent and contract, not the rest: no C3 data goes to any authority, and data
    crosses a public network encrypted."""
    got = run([court(["customer_name", "card_cvn"])])
    assert severities(got) == {"provided_under_legal_obligation": "low", "c3_shared": "critical"}
    got = run([court(public_network=True, encrypted=False)])
    assert severities(got) == {"provided_under_legal_obligation": "low", "unencrypted_public_network": "high"}


@pytest.mark.parametrize(
    ("recipient", "kind", "basis"),
    [
        ("tp_insurance_partner", "regulator", "legal_obligation"),  # a declared third party claiming the law
        ("acme_data_bureau", "regulator", "legal_obligation"),  # an undeclared one of no authority class
        ("court_bj_chaoyang", "regulator", "separate_consent"),  # a court, but no legal obligation claimed
        ("court_bj_chaoyang", "third_party", "legal_obligation"),  # the log does not call it an authority
    ],
)
def test_a_claimed_legal_obligation_clears_only_an_authority(run, recipient, kind, basis) -> None:
    ev = transfer(
        recipient, kind, INQUIRY, legal_basis=basis, purpose="judicial_inquiry", public_network=False
    )
    got = run([ev])
    assert "provided_under_legal_obligation" not in got
    assert {"sharing_without_consent", "recipient_not_approved"} <= set(got)


def test_the_debt_collector_on_the_first_morning_of_its_contract(run) -> None:
    """CT-proc_debt_collection is valid from 2025-03-01: 00:30 that day in Beijing is in force."""
    first_morning = cst(-306, 0.5)  # 2025-03-01 00:30 Beijing
    ev = deidentified(
        "proc_debt_collection", "processor", ["mobile_phone", "loan_details"], 800, first_morning
    )
    assert run([ev]) == {}


def test_the_cloud_analyst_fills_its_month_exactly_and_starts_february_fresh(run) -> None:
    """CT-proc_cloud_analytics: 20,000,000 records a month. All of January's, then one record at
    00:01 on 1 February in Beijing (still 31 January in UTC)."""
    jan = [deidentified("proc_cloud_analytics", "processor", ["transaction_record"], 5_000_000, cst(d))
           for d in (0, 10, 20, 30)]  # fmt: skip
    feb = deidentified("proc_cloud_analytics", "processor", ["transaction_record"], 1, cst(31, 1 / 60))
    assert run([*jan, feb]) == {}


# -- violations -------------------------------------------------------------------------------------
def test_transaction_data_the_fund_distributors_contract_does_not_list(run) -> None:
    ev = transfer("tp_fund_distributor", "third_party", ["customer_name", "assets", "transaction_record"],
                  purpose="fund_distribution")  # fmt: skip
    got = run([ev], consents("fund_distribution"))
    assert severities(got) == {"recipient_not_approved": "high"}
    assert "does not cover transaction" in got["recipient_not_approved"].summary


def test_encrypted_but_identifiable_shares_need_consent(run) -> None:
    """Seed 002 §六.2(1): the exemption is de-identification, and not by encryption alone."""
    ev = transfer("tp_insurance_partner", "third_party", ["customer_name", "mobile_phone"],
                  subject_ids=[], subject_list_id="LIST-9", purpose="insurance_referral")  # fmt: skip
    got = run([ev])
    assert severities(got) == {"sharing_without_consent": "high"}
    assert got["sharing_without_consent"].counts["subjects_unnamed"] == 2


def test_a_bundled_consent_does_not_take_data_to_hong_kong(run) -> None:
    """Seed 004 流程描述(4)⑬: 取得个人单独同意; a tick in the general terms is not separate."""
    ev = transfer("os_parent_group_hk", "overseas", ["customer_name", "transaction_record"],
                  assessment_id="OSA-2025-003", purpose="group_aml_review")  # fmt: skip
    got = run([ev], consents("group_aml_review", separate=False))
    assert severities(got) == {"cross_border": "critical"}
    a = got["cross_border"]
    assert (
        a.counts["subjects_without_consent"] == 2
        and a.counts["leakage_candidate"] == 1
        and "(HK)" in a.summary
    )


def test_the_fx_partner_cannot_borrow_the_affiliates_assessment(run) -> None:
    """recipients.yaml: hk-fx-partner has a standard contract but no outbound assessment on file."""
    ev = transfer("hk-fx-partner", "overseas", ["customer_name", "payment_account_no"],
                  assessment_id="OSA-2025-003", purpose="fx_settlement")  # fmt: skip
    got = run([ev], consents("fx_settlement"))
    assert severities(got) == {"cross_border": "critical"}
    assert (
        "OSA-2025-003" in got["cross_border"].summary
        and "not one declared for it" in got["cross_border"].summary
    )


def test_de_identified_data_to_hong_kong_still_needs_the_border_basis(run) -> None:
    """Seed 004 定义(1): PFI excludes only anonymized data; de-identified data leaving China needs
    each subject's separate consent (seed 002 §六.5(2))."""
    ev = deidentified("os_parent_group_hk", "overseas", ["transaction_record"], 300,
                      assessment_id="OSA-2025-003", purpose="group_aml_review")  # fmt: skip
    assert severities(run([ev])) == {"cross_border": "critical"}


def test_the_banks_own_hong_kong_branch_is_abroad(run) -> None:
    """Seed 002 §六.5: 境外机构(含总公司、母公司或分公司、子公司...): an internal system in Hong Kong."""
    ev = transfer("hk_branch_core", "internal", ["customer_name", "transaction_record"], recipient_country="HK",
                  purpose="group_aml_review")  # fmt: skip
    got = run([ev], consents("group_aml_review"))
    # and, never declared in recipients.yaml, not the bank's own on its log's word: not approved either
    assert severities(got) == {"cross_border": "critical", "recipient_not_approved": "high"}
    assert "no outbound security assessment" in got["cross_border"].summary


def test_an_unlisted_singapore_partner_is_abroad_and_not_approved(run) -> None:
    ev = transfer("sg_wealth_partner", "third_party", ["customer_name", "assets"], recipient_country="SG",
                  purpose="fund_distribution")  # fmt: skip
    got = run([ev], consents("fund_distribution"))
    assert severities(got) == {"cross_border": "critical", "recipient_not_approved": "high"}


def test_account_number_with_card_expiry_is_c3_whatever_the_consent(run) -> None:
    """Seed 002 §六.2(4); classification.yaml: the pair authorises a transaction, so it is C3."""
    ev = transfer("tp_fund_distributor", "third_party", ["payment_account_no", "card_expiry"],
                  purpose="fund_distribution")  # fmt: skip
    got = run([ev], consents("fund_distribution"))
    assert severities(got) == {"c3_shared": "critical"}
    assert got["c3_shared"].counts["leakage_candidate"] == 1 and got["c3_shared"].jr_class == "C3"


def test_id_numbers_to_the_call_centre_whose_contract_lets_it_have_names_and_phones(run) -> None:
    """Its contract covers identity and contact data, the name and phone number in clear (it greets
    the customer it dials): an ID number is beyond them, and a file of them flagged de-identified
    is not (seed 004 流程描述(4)⑪: 脱敏处理); one alert, the contract covering the category."""
    ev = deidentified(
        "proc_call_center", "processor", ["customer_name", "mobile_phone", "id_document_no"], 500
    )
    got = run([ev])
    assert severities(got) == {"entrusted_not_deidentified": "high"}
    assert "flagged de-identified, yet sends id_document_no)" in got["entrusted_not_deidentified"].summary


def test_the_debt_collector_the_evening_before_its_contract(run) -> None:
    ev = deidentified(
        "proc_debt_collection", "processor", ["mobile_phone", "loan_details"], 800, cst(-307, 23.5)
    )
    got = run([ev])
    assert severities(got) == {"recipient_not_approved": "high"}
    assert "in force" in got["recipient_not_approved"].summary


def test_one_record_over_the_cloud_analysts_january(run) -> None:
    """The last minute of January in Beijing: 20,000,001 records that month."""
    jan = [deidentified("proc_cloud_analytics", "processor", ["transaction_record"], 5_000_000, cst(d))
           for d in (0, 10, 20, 30)]  # fmt: skip
    last = deidentified("proc_cloud_analytics", "processor", ["transaction_record"], 1, cst(30, 23 + 59 / 60))
    got = run([*jan, last])
    assert severities(got) == {"volume_exceeded": "medium"}
    assert got["volume_exceeded"].counts["records"] == 20_000_001


def test_names_in_the_clear_to_a_processor_over_the_internet(run) -> None:
    """Seed 002 §四(3): C2 over a public network is encrypted; de-identification is not encryption."""
    ev = deidentified("proc_call_center", "processor", ["mobile_phone"], 500, encrypted=False)
    got = run([ev])
    assert severities(got) == {"unencrypted_public_network": "high"}


# -- clearing and settlement (转接清算, seed 002 §六.2(5), seed 004 流程描述(4)①) ------------------------
CARD_AUTH = ["payment_account_no", "card_track_data", "card_pin", "transaction_instruction"]


def test_a_card_authorisation_to_the_card_scheme_is_clearing_not_sharing(run) -> None:
    """Every card payment carries the track data and the PIN block to UnionPay: no consent is asked
    of the cardholder for it, and it is not the C3 sharing that §六.2(4) forbids."""
    ev = transfer("clr_unionpay", "third_party", CARD_AUTH, purpose="payment", legal_basis="contract")
    assert run([ev]) == {}


@pytest.mark.parametrize(
    ("recipient", "purpose"), [("中国银联", "清算"), ("UnionPay", "settlement"), ("网联", "资金清算")]
)
def test_a_clearing_file_in_the_card_systems_words_is_clearing(run, recipient: str, purpose: str) -> None:
    """A probe's card system wrote the scheme as 中国银联 and the purpose as 清算: a share without
    consent to an unlisted recipient, two highs a file. The recipients' own names and the purpose's
    words (recipients.yaml and purposes.yaml `also`) are the clearing they say."""
    ev = transfer(recipient, "third_party", ["payment_account_no", "transaction_instruction"], purpose=purpose,
                  legal_basis="contract")  # fmt: skip
    assert run([ev]) == {}


def test_the_card_scheme_for_another_purpose_is_judged_as_sharing(run) -> None:
    """The exemption is for clearing: the same recipient sent C3 data for marketing is a share."""
    ev = transfer("clr_unionpay", "third_party", CARD_AUTH, purpose="marketing", legal_basis="contract")
    assert severities(run([ev])) == {"c3_shared": "critical", "sharing_without_consent": "high"}


def test_clearing_data_unencrypted_on_the_internet_still_fires(run) -> None:
    ev = transfer("clr_netsunion", "third_party", ["payment_account_no", "transaction_instruction"],
                  purpose="payment", encrypted=False)  # fmt: skip
    assert set(run([ev])) == {"unencrypted_public_network"}


# -- payment-sensitive C3 in transit (seed 002 §四(3), second clause: any network) --------------------
def test_a_card_authorisation_in_the_clear_on_the_private_clearing_line_fires(run) -> None:
    """A probe: track data and the PIN block went to UnionPay unencrypted over the private line and
    nothing fired. Clearing lifts the sharing rules, not §四(3): payment-sensitive data is encrypted
    on any network."""
    ev = transfer("clr_unionpay", "third_party", CARD_AUTH, purpose="payment", legal_basis="contract",
                  public_network=False, encrypted=False)  # fmt: skip
    got = run([ev])
    assert severities(got) == {"payment_sensitive_unencrypted": "high"}
    assert (
        "payment-sensitive data (card_pin, card_track_data) to clr_unionpay over a private network unencrypted"
        in (got["payment_sensitive_unencrypted"].summary)
    )
    assert got["payment_sensitive_unencrypted"].title_en == "Payment-sensitive C3 data sent unencrypted"


@pytest.mark.parametrize("public", [False, True])
def test_card_security_codes_in_the_clear_to_the_warehouse_fire_once_on_any_network(run, public) -> None:
    """A probe: core banking's CVNs and expiry dates went to the bank's own warehouse unencrypted on the
    internal network, silently. On the internet the same batch is one alert, not two (the stricter rule)."""
    ev = transfer("int_data_warehouse", "internal", ["card_cvn", "card_expiry", "payment_account_no"],
                  public_network=public, encrypted=False, legal_basis="none", sender_system="card_system")  # fmt: skip
    got = run([ev])
    assert severities(got) == {"payment_sensitive_unencrypted": "high"}
    network = "a public network" if public else "a private network"
    assert f"(card_cvn, card_expiry) to int_data_warehouse over {network} unencrypted" in (
        got["payment_sensitive_unencrypted"].summary
    )


@pytest.mark.parametrize(
    ("recipient", "kind", "fields", "encrypted"),
    [
        (
            "int_data_warehouse",
            "internal",
            ["card_cvn", "card_expiry", "payment_account_no"],
            True,
        ),  # encrypted
        ("clr_unionpay", "third_party", CARD_AUTH, True),  # the authorisation as the switch sends it
        ("int_data_warehouse", "internal", ["payment_token", "payment_account_no"], False),  # tokenised
        # other C3 (a face template) on a private line: §四(3) asks encryption of it on public networks only
        ("int_risk_mgmt", "internal", ["biometric_template", "customer_name"], False),
    ],
)
def test_near_misses_on_the_private_line_are_silent(run, recipient, kind, fields, encrypted) -> None:
    ev = transfer(recipient, kind, fields, public_network=False, encrypted=encrypted, purpose="payment",
                  legal_basis="contract")  # fmt: skip
    assert run([ev]) == {}


def test_a_recipient_not_declared_a_clearing_house_cannot_claim_the_purpose(run) -> None:
    """The policy declares who clears, not the event: a partner sent card data 'for payment' is a share."""
    ev = transfer("tp_fund_distributor", "third_party", CARD_AUTH, purpose="payment", legal_basis="contract")
    assert {"c3_shared", "sharing_without_consent"} <= set(run([ev]))


# -- what a recipient is, the bank's record says (seed 002 §六.2(2)) ------------------------------------
def test_an_overseas_partner_labelled_domestic_by_the_sending_system_is_still_cross_border(run) -> None:
    """hk-fx-partner is declared overseas in Hong Kong, with no assessment on file; the sending
    system's log calls it a domestic third party. The bank's record decides."""
    ev = transfer("hk-fx-partner", "third_party", ["customer_name", "payment_account_no"],
                  recipient_country="CN", purpose="fx_settlement")  # fmt: skip
    got = run([ev], consents("fx_settlement"))
    assert set(got) == {"cross_border"} and "(HK)" in got["cross_border"].summary


def test_a_processor_logged_as_a_regulator_is_still_entrusted(run) -> None:
    """The call centre is a declared processor: a log that calls it a regulator does not lift the
    de-identification rule (its customers' segments, which the file says identify them)."""
    ev = transfer("proc_call_center", "regulator", ["customer_segment"], purpose="customer_service")
    assert set(run([ev])) == {"entrusted_not_deidentified"}


def test_a_processor_passing_data_on_needs_its_contracts_written_authorisation(run, policy) -> None:
    """Seed 002 §六.4(2): 未经书面授权, 受委托者不应将其处理的个人金融信息再次委托给其他机构. A probe's
    call centre (a declared processor) passed contact data on to the debt collector, also declared:
    nothing was raised. The sender's contract in force must name the recipient (`may_entrust`);
    handing the data back to the bank is no onward transfer."""
    relay = deidentified(
        "proc_debt_collection", "processor", ["mobile_phone"], 100,
        sender_system="PROC-CALL-CENTER", contract_id="CT-proc_debt_collection",
    )  # fmt: skip
    got = run([relay])
    assert set(got) == {"onward_transfer"} and got["onward_transfer"].severity.value == "high"
    said = "proc_call_center, a processor of the bank, passed data on to proc_debt_collection"
    assert said in got["onward_transfer"].summary
    back = deidentified(
        "int_data_warehouse", "internal", ["customer_name"], 100, sender_system="proc_call_center"
    )
    assert run([back]) == {}
    assert run([relay.model_copy(update={"sender_system": "crm"})]) == {}  # the bank's own system
    # the bank's own declared system sending on, a regulator's report, a court's inquiry answered
    # under the law: no onward transfer (a review's warehouse report to the PBoC was one)
    assert "onward_transfer" not in run([relay.model_copy(update={"sender_system": "int_data_warehouse"})])
    on = {"sender_system": "proc_call_center"}
    pboc = deidentified("reg_pbc_credit_reference", "regulator", ["mobile_phone"], 100, **on)
    assert "onward_transfer" not in run([pboc])
    court = transfer("court_bj_chaoyang", "regulator", ["mobile_phone"], legal_basis="legal_obligation", **on)
    assert "onward_transfer" not in run([court])
    # authorised in writing: the call centre's contract names the debt collector
    declared = dict(policy.recipients.recipients)
    centre = declared["proc_call_center"]
    term = centre.contracts[0].model_copy(update={"may_entrust": ["proc_debt_collection"]})
    declared["proc_call_center"] = centre.model_copy(update={"contracts": [term]})
    authorised = policy.model_copy(
        update={"recipients": policy.recipients.model_copy(update={"recipients": declared})}
    )
    spec = next(s for s in load_detectors(authorised) if s.kind == "transfer_policy")
    e = Engine([spec], Catalog(authorised), pseudonymize=Pseudonymizer(b"qa-transfer-cases-0123456789"))
    alerts = e.process("transfer", "pfi.transfer", 0, fed("transfer", [relay], "pfi.transfer"))
    assert alerts + e.advance() + e.drain() == []
    # an authorisation naming no declared recipient is a policy error that says so
    with pytest.raises(ValueError, match="may_entrust names \\['proc_nobody'\\], no declared recipient"):
        type(policy.recipients).model_validate(
            policy.recipients.model_dump() | {"recipients": {**policy.recipients.model_dump()["recipients"],
                "proc_call_center": centre.model_dump() | {"contracts": [term.model_dump() | {"may_entrust": ["proc_nobody"]}]}}}
        )  # fmt: skip
