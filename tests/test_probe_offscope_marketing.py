"""The probe's cases for offscope_marketing, written from the seeds alone, not from the detector's
thresholds: seed 004 个人金融信息保护管理规定 流程描述(4)使用② (marketing only on the customer's own
recorded choice; every marketing message offers a way to refuse more; "客户明确表示拒绝接受营销的, 应当
立即停止利用"), ③ (an automated personalized push offers a non-personalized option or an easy
refusal), ⑩ (use fits the purpose of collection), 流程描述(1)③ (a minor: the minor's or guardian's
separate consent from 14, the guardian's under 14), 基本规定(4)① (sensitive data, 定义(10) 行踪轨迹:
a separate consent), 基本规定(4)③ (a withdrawal leaves what was done before it valid), 掌上银行家角色设置
(短信管理 submits a marketing SMS, 短信审核 approves it); the privacy policy §一.(二).3 (电话、短信、客户端、
微信、App推送; 关闭"信息推送"); seed 000 (5) (inform before a targeted push, a way to close it).

Each record is logged as the campaign platform and the consent platform would write it (their own
words for channels, statuses and purposes) and replayed through the real decoder and engine. Half
are normal work near a line (silent), half violations that barely cross it."""

from __future__ import annotations

from itertools import count
from typing import Any

import pytest
from conftest import T0
from probe_replay import replayed

SEC, MIN, HOUR, DAY = 1000, 60_000, 3_600_000, 86_400_000
WHO = "CIF0057721566"
_ids = count()


def push(at: int, channel: str = "app_push", **kw: Any) -> dict[str, Any]:
    """A wealth-product push of a head-office list campaign, personalized, with an unsubscribe link."""
    return {
        "event_id": f"MSG-{next(_ids)}", "ts": T0 + at, "subject_id": WHO, "channel": channel,
        "campaign_id": "CMP-HO-2601", "purpose": "marketing", "data_used": ["customer_segment", "transaction_record"],
        "personalized": True, "opt_out_offered": True, "non_personalized_option": False,
        "submitter_id": "E51001", "approver_id": "E51002", "org_id": "HO", **kw,
    }  # fmt: skip


def consent(at: int, status: str = "granted", channel: str | None = None, **kw: Any) -> dict[str, Any]:
    return {
        "subject_id": WHO,
        "ts": T0 + at,
        "purpose": "marketing",
        "channel": channel,
        "status": status,
        **kw,
    }


def born(years_before_t0: int) -> list[dict[str, Any]]:
    """The customer's record at a sub-branch, born on 1 January that many years before 2026-01-01."""
    return [{"customer_id": WHO, "ts": T0 - 400 * DAY, "org_id": "S0101", "org_path": ["HO", "B01", "S0101"],
             "birth_date": f"{2026 - years_before_t0}-01-01"}]  # fmt: skip


OK = consent(-90 * DAY)  # agreed to marketing when the account was opened

# (case, pushes, consents, customers, the rules the seed gives, why)
CASES: list[tuple[str, list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]], set[str], str]] = [
    # -- normal work near a line: silent ------------------------------------------------------------
    ("client_channel_word", [push(5 * HOUR, "客户端")], [consent(0, "同意", "APP推送")], [], set(),
     "§一.(二).3 客户端 is the app; agreed in the app that morning"),
    ("personalized_with_opt_out_only", [push(HOUR, "微信公众号")], [OK], [], set(),
     "使用③: a non-personalized option OR an easy refusal"),
    ("plain_push_with_opt_out", [push(HOUR, data_used=[], personalized=False)], [OK], [], set(),
     "使用②: consent and a way to refuse; nothing targeted"),
    ("a_ms_before_withdrawal", [push(-1, "sms", approver_id="E51002")], [OK, consent(0, "withdrawn")], [], set(),
     "基本规定(4)③: what was done before the withdrawal stands"),
    ("purpose_renamed_by_producer", [push(HOUR, purpose="营销推广")], [OK], [], set(),
     "使用②: the consent is to marketing, whatever the campaign calls it"),
    ("consent_in_platform_words", [push(HOUR)], [consent(0, "开启", None, purpose="营销活动")], [], set(),
     "使用②: the customer's own choice, as the consent platform logs it"),
    ("missing_optional_fields", [{k: v for k, v in push(HOUR).items() if k not in ("approver_id", "org_id")}], [OK], [], set(),
     "角色设置: approval is the SMS duty; an app push logs no approver"),
    ("regrant_on_app_after_sms_td", [push(3 * HOUR)], [OK, consent(HOUR, "TD", "sms"), consent(2 * HOUR, "开启", "app_push")], [], set(),
     "使用②: the customer chose the app again after refusing by SMS"),
    ("location_with_separate_consent", [push(HOUR, data_used=["location"])], [consent(0, separate=True)], [], set(),
     "基本规定(4)①: 行踪 is sensitive; the separate consent covers it"),
    ("fifteen_with_own_separate", [push(HOUR)], [consent(0, separate=True)], born(15), set(),
     "流程描述(1)③: from 14, the minor's own separate consent"),
    ("notice_to_refuser", [push(HOUR, "手机短信", kind="服务通知", data_used=["customer_name", "mobile_phone"], personalized=False,
                                opt_out_offered=False, purpose="利率调整通知")], [OK, consent(0, "退订成功", "sms")], [], set(),
     "使用② is about 金融营销信息; a service notice must reach everyone"),
    ("late_push_to_consenting", [push(3 * HOUR, subject_id="CIF0000000001"), push(HOUR)],
     [OK, {**OK, "subject_id": "CIF0000000001"}], [], set(), "a push logged late, to a customer who agreed"),
    ("sms_two_people", [push(HOUR, "sms", submitter_id="E51001", approver_id="E51003")], [OK], [], set(),
     "角色设置④⑤: a different reviewer (entitlements unknown: two people are enough)"),
    ("payment_records_in_seed_words", [push(HOUR, data_used=["支付记录", "交易金额"])], [OK], [], set(),
     "定义(6) 支付记录、交易金额 are transaction data, which §一.(二).3 lists for marketing"),
    ("twelve_guardian_separate_in_words", [push(HOUR)], [consent(0, "同意", separate=True, given_by="监护人")], born(12), set(),
     "流程描述(1)③: under 14, the guardian's separate consent, as the platform logs who gave it"),
    # -- violations that barely cross: the rules the seed gives -----------------------------------------
    ("at_the_withdrawal_ms", [push(0, "wechat")], [OK, consent(0, "withdrawn", "wechat")], [], {"after_withdrawal"},
     "使用②: 应当立即停止利用, from the withdrawal on"),
    ("wechat_after_sms_td", [push(HOUR, "微信")], [OK, consent(0, "TD", "sms")], [], {"after_withdrawal"},
     "使用②: the customer refused marketing, not one channel"),
    ("a_ms_before_consent", [push(0)], [consent(1, "同意")], [], {"no_consent"},
     "使用②: the choice must come first"),
    ("service_consent_only", [push(HOUR, purpose="credit_review")], [consent(0, purpose="credit_review")], [], {"no_consent"},
     "使用②⑩: a loan's consent is no choice about marketing"),
    ("sms_only_consent_phone_call", [push(HOUR, "电销")], [consent(0, channel="sms")], [], {"channel_not_covered"},
     "使用②: the customer chose SMS marketing only"),
    ("email_not_told", [push(HOUR, "电子邮件")], [OK], [], {"channel_not_declared"},
     "§一.(二).3 names 电话、短信、客户端、微信、App推送; never email"),
    ("location_bundled", [push(HOUR, data_used=["location"])], [OK], [], {"off_purpose"},
     "基本规定(4)①: 行踪轨迹 without a separate consent"),
    ("income_targeting", [push(HOUR, data_used=["income"])], [OK], [], {"off_purpose"},
     "使用⑩: income was collected for the loan, not marketing"),
    ("refusal_offered_none", [push(HOUR, opt_out_offered=False, non_personalized_option=True)], [OK], [], {"no_refusal_offered"},
     "使用②: 应当向其提供拒绝继续接收金融营销信息的方式, beside ③'s option"),
    ("flag_says_plain_but_targeted", [push(HOUR, personalized=False, opt_out_offered=False)], [OK], [],
     {"personalized_without_choice"}, "使用③: targeted by transactions, neither option"),
    ("thirteen_own_separate", [push(HOUR)], [consent(0, separate=True)], born(13), {"minor_marketed_without_consent"},
     "流程描述(1)③: under 14 only the guardian's separate consent"),
    ("notice_that_markets", [push(HOUR, "sms", kind="通知类", data_used=["assets"], personalized=True, opt_out_offered=False)],
     [OK, consent(0, "TD", "sms")], [], {"after_withdrawal", "off_purpose", "personalized_without_choice"},
     "使用②③: chosen by holdings, it is marketing sent as a notice"),
    ("self_approved_sms_case", [push(HOUR, "sms", submitter_id="E51001", approver_id="e51001")], [OK], [], {"four_eyes"},
     "角色设置④⑤: submitter and reviewer are one person, whatever the case of the id"),
    ("late_push_to_refuser", [push(3 * HOUR, subject_id="CIF0000000001"), push(2 * HOUR)],
     [OK, consent(HOUR, "withdrawn"), {**OK, "subject_id": "CIF0000000001"}], [], {"after_withdrawal"},
     "使用②: a push logged late is still a push after the refusal"),
    ("housing_fund_targeting", [push(HOUR, data_used=["公积金缴存金额"])], [OK], [], {"off_purpose"},
     "定义(3): 公积金缴存金额 is property data, collected for loans, not marketing (使用⑩)"),
    ("tax_paid_targeting", [push(HOUR, data_used=["纳税额"])], [OK], [], {"off_purpose"},
     "定义(3): 纳税额 is property data, collected for loans, not marketing (使用⑩)"),
    ("twelve_guardian_bundled", [push(HOUR)], [consent(0, given_by="父母")], born(12), {"minor_marketed_without_consent"},
     "流程描述(1)③: the guardian's consent must be a separate one (单独同意)"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "pushes", "consents", "customers", "expected", "why"), CASES, ids=[c[0] for c in CASES]
)
def test_the_seed_gives_this_verdict(
    tmp_path, policy, catalog, case, pushes, consents, customers, expected, why
) -> None:
    streams = {"marketing": pushes, "consents": consents} | ({"customers": customers} if customers else {})
    alerts, dead = replayed(tmp_path, policy, catalog, "offscope_marketing", batch_size=1, **streams)
    assert dead == [], dead
    got = {k.removeprefix("rule_") for a in alerts for k in a.counts if k.startswith("rule_")}
    assert got == expected, f"{why}: {[(a.severity.value, a.summary) for a in alerts]}"
