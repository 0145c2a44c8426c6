"""Acceptance cases for offscope_marketing that its own tests never saw, written from the seeds, not
from the detector's constants: seed 004 个人金融信息保护管理规定 流程描述(4)使用② (marketing use needs the
customer's own choice, stored; "客户明确表示拒绝接受营销的, 应当立即停止利用"; every marketing message
offers a way to refuse more), ③ (automated personalized pushes offer a non-personalized option or an
easy refusal), ⑧⑩ (data used only for the purpose it was collected for, unless the customer agrees
before the use), 流程描述(1)⑥ (customers told how their data is processed: the bank's own lists in
purposes.yaml, identity, transaction, location and derived tags by phone, SMS, the app, WeChat and app
push; the employees' app's policy, §一.(二).3, promises customers nothing), 掌上银行家角色设置
(短信管理 submits a marketing SMS, 短信审核 approves it; head office and branches run list campaigns for
their own customers); seed 000 (5) (inform before targeted push, offer a way to close it).

The real Engine and policy, pushes as the campaign system logs them, consents and customers as
their topics carry them. Normal work near each line stays silent; each violation raises exactly
the rules a compliance officer would name, at the severity the policy gives, with both titles.
"""

from __future__ import annotations

from typing import Any

import pytest
from conftest import T0, fed, refs

from detectors import load_detectors
from schemas.models import Consent, Customer, Entitlement, MarketingPushEvent
from streams.alerts import latest
from streams.engine import Engine
from streams.pseudonym import Pseudonymizer

SEC, MIN, HOUR, DAY = 1000, 60_000, 3_600_000, 86_400_000
CUSTOMER = "CIF0027182818"
OTHER = "CIF0099999999"  # another customer whose pushes move event time on
ORGS = {"S0101": ["HO", "B01", "S0101"], "S0102": ["HO", "B01", "S0102"], "S0201": ["HO", "B02", "S0201"]}
_serial = iter(range(10**9))


def consent(at: int, channel: str | None = None, status: str = "granted", separate: bool = False) -> Consent:
    return Consent(
        subject_id=CUSTOMER,
        ts=T0 + at,
        purpose="marketing",
        channel=channel,
        status=status,
        separate=separate,
    )


def customer(org: str, at: int = -365 * DAY) -> Customer:
    return Customer(customer_id=CUSTOMER, ts=T0 + at, org_id=org, org_path=ORGS[org])


def push(at: int, channel: str = "app_push", **kw: Any) -> MarketingPushEvent:
    """A fund-product push from a head-office list campaign, with an unsubscribe link, approved."""
    fields: dict[str, Any] = {
        "campaign_id": "CMP-2026-FUND-003", "purpose": "marketing", "personalized": True,
        "data_used": ["customer_segment", "transaction_record"], "opt_out_offered": True,
        "non_personalized_option": False, "submitter_id": "E51001", "approver_id": "E51002", "org_id": "HO",
    }  # fmt: skip
    return MarketingPushEvent(
        event_id=f"MSG-{next(_serial)}", ts=T0 + at, subject_id=kw.pop("subject", CUSTOMER), channel=channel,
        **{**fields, **kw},
    )  # fmt: skip


@pytest.fixture
def run(policy, catalog):
    """The pushes through the real engine, then another customer's push two days later moves event
    time past every verdict and episode; the newest revision of each alert."""
    spec = next(s for s in load_detectors(policy) if s.kind == "offscope_marketing")

    def go(
        pushes: list[MarketingPushEvent],
        consents: list[Consent],
        customers: list[Customer] = (),  # type: ignore[assignment]
        entitlements: list[Entitlement] = (),  # type: ignore[assignment]
    ) -> list[Any]:
        e = Engine([spec], catalog, pseudonymize=Pseudonymizer(b"qa-marketing-cases-0123456789"))
        e.apply_reference("entitlements", refs("entitlements", list(entitlements)))
        other = Consent(subject_id=OTHER, ts=0, purpose="marketing", status="granted")
        e.apply_reference("consents", refs("consents", [*consents, other]))
        e.apply_reference("customers", refs("customers", list(customers)))
        last = max(p.ts for p in pushes) - T0
        events = [*sorted(pushes, key=lambda p: p.ts), push(last + 2 * DAY, subject=OTHER)]
        alerts = e.process("marketing", "pfi.marketing", 0, fed("marketing", events, "pfi.marketing"))
        alerts += e.advance() + e.drain()
        out = {a.alert_id: a for a in latest(sorted(alerts, key=lambda a: a.revision))}
        for a in out.values():
            assert CUSTOMER not in a.model_dump_json(), a.summary
            assert a.title_zh and a.title_en and a.regulation, a.summary
        return list(out.values())

    return go


def rules(a: Any) -> dict[str, int]:
    return {k.removeprefix("rule_"): v for k, v in a.counts.items() if k.startswith("rule_")}


GRANTED = consent(-90 * DAY)  # agreed to marketing when the account was opened


# -- normal work near the lines: silent --------------------------------------------------------------
def test_a_push_the_afternoon_the_customer_ticked_the_marketing_box_is_silent(run) -> None:
    """The customer agreed at 10:00 in the app; the campaign's first push goes at 15:00 that day."""
    assert run([push(5 * HOUR)], [consent(0, "app_push")]) == []


def test_a_push_in_the_millisecond_of_the_consent_is_silent(run) -> None:
    assert run([push(0)], [consent(0)]) == []


def test_a_push_a_minute_before_the_customer_opts_out_is_silent(run) -> None:
    """Seed 004 基本规定(4)③: a withdrawal does not undo what was done before it."""
    assert run([push(-MIN, "wechat")], [GRANTED, consent(0, status="withdrawn")]) == []


def test_targeting_with_exactly_the_data_the_bank_lets_marketing_use_is_silent(run) -> None:
    """purposes.yaml, the bank's own list: 身份信息、交易信息、地理位置 and derived tags may be used to
    send marketing; seed 004 定义(2): 身份信息 includes 身份证件种类号码 and 工作及家庭地址. 地理位置 is
    sensitive (定义(10): 行踪轨迹): only with a separate consent (基本规定(4)①)."""
    data = ["customer_name", "gender", "home_address", "id_document_no", "transaction_record",
            "marketing_tags"]  # fmt: skip
    assert run([push(0, data_used=data)], [GRANTED]) == []
    located = push(0, data_used=[*data, "location_trace"])
    assert run([located], [GRANTED, consent(-DAY, separate=True)]) == []
    (a,) = run([located], [GRANTED])  # a probe's push by location under the bundled consent passed
    assert a.counts["rule_off_purpose"] == 1
    assert (
        "targeted with sensitive data (敏感个人信息: location_trace) without a separate consent" in a.summary
    )


def test_loan_data_with_the_customers_separate_consent_for_marketing_is_silent(run) -> None:
    """Seed 004 流程描述(1)收集⑧: use beyond the original scope needs the customer's explicit consent before the
    use; the customer gave a separate consent the day before the loan-product push."""
    assert run([push(0, data_used=["loan_details"])], [GRANTED, consent(-DAY, separate=True)]) == []


def test_an_app_push_needs_no_sms_reviewer(run) -> None:
    """The four-eyes roles of seed 004 角色设置 are for marketing SMS (短信管理 / 短信审核)."""
    assert run([push(0, "app_push", approver_id=None)], [GRANTED]) == []


def test_a_branch_campaign_to_a_customer_who_moved_in_after_the_push_is_silent(run) -> None:
    """The customer was B01's at the push; moved to B02 an hour later."""
    customers = [customer("S0101"), customer("S0201", at=HOUR)]
    assert run([push(0, org_id="B01")], [GRANTED], customers) == []


# -- violations -------------------------------------------------------------------------------------
def test_a_push_the_morning_before_the_customer_agreed_has_no_consent(run) -> None:
    (a,) = run([push(-2 * HOUR)], [consent(0, "app_push")])
    assert rules(a) == {"no_consent": 1} and a.severity.value == "high"


def test_a_wechat_push_a_minute_after_closing_marketing_in_the_app_is_high(run) -> None:
    """Seed 004 流程描述(4)使用② 在客户明确表示拒绝接受营销的情况下, 应当立即停止利用: on every channel."""
    (a,) = run([push(MIN, "wechat")], [GRANTED, consent(0, status="withdrawn")])
    assert rules(a) == {"after_withdrawal": 1} and a.severity.value == "high"
    assert a.counts["opt_out_delay_s"] == 60 and "1 min after the opt-out" in a.summary
    assert any("立即停止" in r for r in a.regulation)


@pytest.mark.parametrize(
    "label",
    ["营销推广", "营销活动", "营销授权", "marketing_consent", "marketing_v2", "promotion", "ads", "《营销》"],
)
def test_an_opt_out_under_a_platforms_label_for_marketing_stops_marketing(run, label) -> None:
    """Consent platforms label the marketing opt-in their own way (营销推广, promotion, a version after
    it): a probe's pushes after such opt-outs were silent. Seed 004 流程描述(4)使用② 应当立即停止利用.
    purposes.yaml `also` names them; a version, title marks and a consent word say no more."""
    opt_out = consent(0, status="withdrawn").model_copy(update={"purpose": label})
    (a,) = run([push(HOUR, "sms")], [GRANTED, opt_out])
    assert rules(a) == {"after_withdrawal": 1} and a.severity.value == "high"


@pytest.mark.parametrize(
    ("purpose", "channel"),
    [
        ("marketing_sms", "sms"),
        ("SMS-Marketing", "sms"),
        ("marketing:sms", "sms"),
        ("营销短信", "sms"),
        ("短信营销", "sms"),
        ("marketing_app_push", "app_push"),
        ("营销推送", "app_push"),
    ],
)
def test_an_opt_out_that_names_its_channel_in_its_purpose_stops_that_channel(run, purpose, channel) -> None:
    """A consent platform logs an SMS "TD" reply as purpose `marketing_sms`, an app setting switched
    off as `营销短信`: a probe's pushes after such opt-outs were silent. Seed 004 流程描述(4)使用②
    应当立即停止利用. The purpose is marketing, on the channel it names; the other channels stay open."""
    opt_out = consent(0, status="withdrawn").model_copy(update={"purpose": purpose})
    (a,) = run([push(DAY, channel)], [GRANTED, opt_out])
    assert rules(a) == {"channel_refused": 1} and a.severity.value == "high"
    other = "wechat"
    assert run([push(DAY, other)], [GRANTED, opt_out]) == []


def test_a_campaign_that_kept_pushing_for_three_hours_is_one_alert_per_campaign(run) -> None:
    """Hourly pushes of the fund campaign after the opt-out, and a deposit campaign in between."""
    pushes = [push(h * HOUR) for h in (1, 2, 3)] + [push(90 * MIN, campaign_id="CMP-2026-DEP-011")]
    got = run(pushes, [GRANTED, consent(0, status="withdrawn")])
    by_campaign = {a.summary.split("campaign ")[1].split(" ")[0]: a for a in got}
    fund, deposit = by_campaign["CMP-2026-FUND-003"], by_campaign["CMP-2026-DEP-011"]
    assert fund.counts["pushes"] == 3 and fund.counts["opt_out_delay_s"] == 3 * 3600
    assert "3 h 0 min after the opt-out" in fund.summary and fund.first_seen == T0 + HOUR
    assert deposit.counts["pushes"] == 1 and deposit.counts["opt_out_delay_s"] == 90 * 60


def test_a_wealth_push_targeted_with_assets_and_income_is_off_purpose(run) -> None:
    """Property data is not in the bank's marketing list (purposes.yaml; seed 004 流程描述(4)使用⑩)."""
    (a,) = run([push(0, data_used=["customer_segment", "assets", "income"])], [GRANTED])
    assert rules(a) == {"off_purpose": 1} and a.severity.value == "high"
    assert "assets, income" in a.summary and a.jr_class == "C2"


def test_a_wechat_push_to_a_customer_who_agreed_to_app_pushes_only(run) -> None:
    (a,) = run([push(0, "wechat")], [consent(-DAY, "app_push")])
    assert rules(a) == {"channel_not_covered": 1} and a.severity.value == "high"


def test_a_marketing_call_without_a_way_to_refuse_more(run) -> None:
    """Seed 004 流程描述(4)使用②: 向客户发送金融营销信息的, 应当向其提供拒绝继续接收金融营销信息的方式.
    A call to every customer of the list, chosen by nothing of theirs."""
    (a,) = run([push(0, "phone", personalized=False, data_used=[], opt_out_offered=False)], [GRANTED])
    assert rules(a) == {"no_refusal_offered": 1} and a.severity.value == "medium"


@pytest.mark.parametrize("approver", ["", "N/A", "none", "null", "-", "无", "0", "SYSTEM", "auto"])
def test_a_marketing_sms_whose_approver_field_is_blank_is_not_approved(run, approver) -> None:
    """The campaign system leaves the approver blank on an SMS nobody reviewed, or writes a
    placeholder or the system that sent it (a probe's N/A and SYSTEM passed): no 短信审核."""
    (a,) = run([push(0, "sms", approver_id=approver)], [GRANTED])
    assert rules(a) == {"four_eyes": 1} and a.severity.value == "medium"


def staff(
    actor: str, role: str, at: int = -365 * DAY, status: str = "active", org: str = "HO"
) -> Entitlement:
    path = ["HO"] if org == "HO" else ["HO", org]
    return Entitlement(actor_id=actor, ts=T0 + at, org_id=org, org_path=path, roles=[role], status=status)


def test_a_marketing_sms_approved_by_the_head_office_sms_reviewer_is_silent(run) -> None:
    """Seed 004 角色设置 ④⑤: 总行短信管理 submits, 总行短信审核 approves."""
    ents = [staff("E51001", "ho_sms_submitter"), staff("E51002", "ho_sms_approver")]
    assert run([push(0, "sms")], [GRANTED], entitlements=ents) == []


@pytest.mark.parametrize(
    "approver",
    [
        [staff("E51002", "wealth_manager")],
        [staff("E51002", "ho_sms_submitter")],
        [
            staff("E51002", "ho_sms_approver"),
            staff("E51002", "ho_sms_approver", at=-DAY, status="terminated"),
        ],
    ],  # fmt: skip
    ids=["a wealth manager", "another submitter", "a reviewer who left the day before"],
)
def test_a_marketing_sms_approved_by_someone_without_the_reviewer_role_is_not_approved(run, approver) -> None:
    (a,) = run([push(0, "sms")], [GRANTED], entitlements=[staff("E51001", "ho_sms_submitter"), *approver])
    assert rules(a) == {"four_eyes": 1} and a.severity.value == "medium"


@pytest.mark.parametrize(
    ("campaign_org", "team"),
    [
        (
            "B01",
            [staff("E51001", "br_sms_submitter", org="B01"), staff("E51002", "br_sms_approver", org="B01")],
        ),
        ("B01", [staff("E51001", "br_sms_submitter", org="B01"), staff("E51002", "ho_sms_approver")]),
    ],  # fmt: skip
    ids=["a branch's own SMS by its own team", "a branch's SMS approved by head office"],
)
def test_an_sms_submitted_and_approved_at_its_level_is_silent(run, campaign_org, team) -> None:
    """Seed 004 分行角色④⑤: 分行短信管理 submits, 分行短信审核 approves 分行级营销短信."""
    assert run([push(0, "sms", org_id=campaign_org)], [GRANTED], entitlements=team) == []


@pytest.mark.parametrize(
    ("campaign_org", "team", "why"),
    [
        (
            "HO",
            [staff("E51001", "ho_sms_submitter"), staff("E51002", "br_sms_approver", org="B01")],
            "approver E51002 (B01) holds no SMS role of the campaign's org HO",
        ),
        (
            "B01",
            [staff("E51001", "br_sms_submitter", org="B01"), staff("E51002", "br_sms_approver", org="B02")],
            "approver E51002 (B02) holds no SMS role of the campaign's org B01",
        ),
        (
            "B01",
            [staff("E51001", "wealth_manager", org="B01"), staff("E51002", "br_sms_approver", org="B01")],
            "submitter E51001 holds no SMS submitter role (短信管理)",
        ),
        (
            "HO",
            [staff("E51001", "br_sms_submitter", org="B01"), staff("E51002", "ho_sms_approver")],
            "submitter E51001 (B01) holds no SMS role of the campaign's org HO",
        ),
        (
            "HO",
            [
                staff("E51001", "ho_sms_submitter"),
                staff("E51001", "ho_sms_submitter", at=-DAY, status="terminated"),
                staff("E51002", "ho_sms_approver"),
            ],
            "submitter E51001 terminated by then",
        ),
    ],  # fmt: skip
    ids=[
        "a bank-wide SMS approved by a branch reviewer",
        "a branch's SMS approved by another branch's reviewer",
        "a branch's SMS submitted by a wealth manager",
        "a bank-wide SMS submitted by a branch",
        "a submitter who left the day before",
    ],
)
def test_an_sms_whose_submitter_or_approver_is_not_of_its_level_is_not_approved(
    run, campaign_org, team, why
) -> None:
    """Seed 004 总行角色④⑤: 总行短信审核 approves 全行级 SMS; 分行④⑤ a branch's own: each duty in its role
    and level. The alert says which duty failed, and why."""
    (a,) = run([push(0, "sms", org_id=campaign_org)], [GRANTED], entitlements=team)
    assert rules(a) == {"four_eyes": 1} and a.severity.value == "medium"
    assert f"SMS {why}" in a.summary


def test_a_branch_campaign_to_a_customer_who_moved_away_before_the_push(run) -> None:
    customers = [customer("S0101"), customer("S0201", at=-HOUR)]
    (a,) = run([push(0, org_id="B01")], [GRANTED], customers)
    assert rules(a) == {"audience_outside_approval": 1} and a.severity.value == "medium"


def test_a_self_approved_sms_on_the_refused_channel_is_high_and_names_both_rules(run) -> None:
    """The customer turned SMS marketing off (营销短信, app pushes still on); the submitter approved
    their own SMS."""
    sms_off = Consent(subject_id=CUSTOMER, ts=T0, purpose="营销短信", channel=None, status="withdrawn")
    (a,) = run([push(10 * MIN, "sms", approver_id="E51001")], [GRANTED, sms_off])
    assert rules(a) == {"channel_refused": 1, "four_eyes": 1} and a.severity.value == "high"
    assert a.title_zh == "通过客户已拒绝的渠道推送、营销短信未经本层级短信管理岗提交并由他人审核"
    assert "refused" in a.title_en and "two people" in a.title_en
    assert a.counts["opt_out_delay_s"] == 600


# -- a push that names another purpose, a branch's SMS and audience, the personalized flag ----------
def service(purpose: str, at: int = -30 * DAY, separate: bool = False) -> Consent:
    """The customer's consent to a service: the loan application's credit review, wealth advice."""
    return Consent(
        subject_id=CUSTOMER, ts=T0 + at, purpose=purpose, channel=None, status="granted", separate=separate
    )


def test_a_loan_offer_that_names_credit_review_is_still_marketing(run) -> None:
    """Seed 004 流程描述(4)使用②⑩: the campaign system tags the top-up-loan push `credit_review` and
    targets it with the customer's loan and credit report; the customer agreed to a credit review
    when applying for the loan, never to marketing. The push is marketing all the same."""
    loan = {"purpose": "credit_review", "data_used": ["loan_details", "credit_report"]}
    (a,) = run([push(0, **loan)], [service("credit_review", separate=True)])
    assert rules(a) == {"no_consent": 1, "off_purpose": 1} and a.severity.value == "high"
    assert "credit_report, loan_details, not collected for marketing" in a.summary
    (b,) = run([push(0, **loan)], [GRANTED])  # agreed to marketing: the loan data is still not marketing's
    assert rules(b) == {"off_purpose": 1}


def test_a_push_that_names_payment_or_wealth_advice_is_still_marketing(run) -> None:
    (a,) = run([push(0, purpose="payment", data_used=["account_balance"])], [GRANTED])
    assert rules(a) == {"off_purpose": 1}
    (b,) = run([push(0, "wechat", purpose="wealth_advice")], [service("wealth_advice")])
    assert rules(b) == {"no_consent": 1} and b.severity.value == "high"
    (c,) = run([push(0, "email", purpose="wealth_advice")], [service("wealth_advice")])
    assert rules(c) == {"no_consent": 1}


def test_a_wealth_advice_push_on_the_marketing_consent_with_the_marketing_data_is_silent(run) -> None:
    """The near miss: the marketing consent, on a channel the bank markets on, targeted with
    the customer's tier and transactions."""
    assert run([push(0, "wechat", purpose="wealth_advice")], [GRANTED, service("wealth_advice")]) == []


BRANCH = {"B01": ["HO", "B01"], "B02": ["HO", "B02"]}


def branch_staff(actor: str, org: str, role: str) -> Entitlement:
    return Entitlement(
        actor_id=actor, ts=T0 - 365 * DAY, org_id=org, org_path=BRANCH[org], roles=[role], status="active"
    )


def test_one_branchs_sms_team_sending_another_branchs_campaign(run) -> None:
    """Seed 004 分行角色④⑤: B01's 短信管理 and 短信审核 submit and approve B01's SMS, not B02's nor
    that of a sub-branch under B02; B02's own team may (the near miss)."""
    b01 = [
        branch_staff("E51001", "B01", "br_sms_submitter"),
        branch_staff("E51002", "B01", "br_sms_approver"),
    ]
    b02 = [
        branch_staff("E51001", "B02", "br_sms_submitter"),
        branch_staff("E51002", "B02", "br_sms_approver"),
    ]
    for org in ("B02", "S0201"):
        (a,) = run([push(0, "sms", org_id=org)], [GRANTED], [customer("S0201")], b01)
        assert rules(a) == {"four_eyes": 1} and a.severity.value == "medium"
        assert f"submitter E51001 (B01) holds no SMS role of the campaign's org {org}" in a.summary
        assert run([push(0, "sms", org_id=org)], [GRANTED], [customer("S0201")], b02) == []


def test_a_branch_campaign_approved_for_another_branch_or_the_whole_bank(run) -> None:
    """Seed 004 分行③: 分行营销管理 creates 分行级 list campaigns; 总行③ bank-wide ones."""
    for audience in (["B01"], ["HO"]):
        (a,) = run([push(0, org_id="B02", approved_audience=audience)], [GRANTED], [customer("S0101")])
        assert rules(a) == {"audience_outside_approval": 1} and a.severity.value == "medium"
        assert f"approved for {audience[0]}, outside the campaign's org B02" in a.summary
    # head office's campaign approved for B01, to a B01 customer: its own to approve
    assert run([push(0, org_id="HO", approved_audience=["B01"])], [GRANTED], [customer("S0101")]) == []


def test_a_push_flagged_non_personalized_but_targeted_by_the_customers_data(run) -> None:
    """Seed 004 流程描述(4)使用③: chosen by the customer's tier, tags and transactions, with no way to
    refuse and no non-personalized option: the flag does not make it a plain push."""
    data = ["customer_segment", "marketing_tags", "transaction_record"]
    (a,) = run([push(0, personalized=False, data_used=data, opt_out_offered=False)], [GRANTED])
    assert rules(a) == {"personalized_without_choice": 1} and a.severity.value == "medium"
    assert "flagged non-personalized but targeted with" in a.summary
