"""QA cases for offscope_marketing, written from the seeds rather than the detector's constants.

Seed 004 流程描述(4)使用②: "客户明确表示拒绝接受营销的, 应当立即停止利用"; the bank markets by phone,
SMS, the app, WeChat and app push (purposes.yaml, its own list), with an opt-out per channel; seed 004 基本规定(4)③ a withdrawal does not undo what was done before it. Consent
is per purpose and channel: a withdrawal of SMS marketing (`marketing_sms`, as an SMS platform logs
its opt-out) leaves the app channel the customer still consents to; a refusal of marketing logged on
the SMS channel refuses every channel (purposes.yaml `withdrawal_scope`).
"""

from __future__ import annotations

from typing import Any

from conftest import T0, fed, refs

from detectors import load_detectors
from schemas.models import Consent, MarketingPushEvent
from streams.alerts import latest
from streams.engine import Engine
from streams.pseudonym import Pseudonymizer

MIN, HOUR = 60_000, 3_600_000
CUSTOMER = "CIF0098765432"


def engine(policy: Any, catalog: Any, *consents: Consent) -> Engine:
    spec = next(s for s in load_detectors(policy) if s.kind == "offscope_marketing")
    e = Engine(
        [spec],
        catalog,
        pseudonymize=Pseudonymizer(b"qa-marketing-key-0123456789"),
        allowed_lateness_ms=60_000,
    )
    e.apply_reference("consents", refs("consents", list(consents)))
    return e


def consent(
    at: int, channel: str | None, status: str = "granted", subject: str = CUSTOMER, purpose: str = "marketing"
) -> Consent:
    return Consent(subject_id=subject, ts=T0 + at, purpose=purpose, channel=channel, status=status)


def push(at: int, channel: str, n: int = 0, subject: str = CUSTOMER, **kw: Any) -> MarketingPushEvent:
    """A wealth-product push as the campaign system logs it: opt-out link, approved, HO campaign."""
    fields: dict[str, Any] = {
        "campaign_id": "CMP-2026-WM-017", "purpose": "marketing", "personalized": True,
        "data_used": ["customer_segment", "transaction_record"], "opt_out_offered": True,
        "non_personalized_option": False, "submitter_id": "E30001", "approver_id": "E30002", "org_id": "HO",
    }  # fmt: skip
    return MarketingPushEvent(
        event_id=f"MSG-{channel}-{at}-{n}-{'o' if subject == 'CIF-OTHER' else 'c'}", ts=T0 + at, subject_id=subject, channel=channel,
        **{**fields, **kw},
    )  # fmt: skip


def run(e: Engine, pushes: list[MarketingPushEvent], *late: Consent) -> list[Any]:
    """The pushes as one batch; then `late` consents reach their topic; then event time moves an
    hour on (another subject's push) and the input ends. Latest revision per alert."""
    alerts = e.process("marketing", "m", 0, fed("marketing", pushes))
    if late:
        e.apply_reference("consents", refs("consents", list(late)))
    last = max(p.ts for p in pushes) - T0 + HOUR
    mover = push(last, "app_push", subject="CIF-OTHER")
    e.apply_reference("consents", refs("consents", [consent(-HOUR, None, subject="CIF-OTHER")]))
    alerts += e.process("marketing", "m", 0, fed("marketing", [mover], offset=len(pushes)))
    alerts += e.advance() + e.drain()
    out = {a.alert_id: a for a in latest(sorted(alerts, key=lambda a: a.revision))}
    return list(out.values())


def rules(a: Any) -> set[str]:
    return {k.removeprefix("rule_") for k in a.counts if k.startswith("rule_")}


def clean(alerts: list[Any]) -> None:
    for a in alerts:
        assert CUSTOMER not in a.model_dump_json(), a.summary


def test_sms_withdrawn_but_app_push_still_consented_is_silent(policy, catalog) -> None:
    sms_off = consent(-2 * HOUR, None, "withdrawn", purpose="marketing_sms")
    e = engine(policy, catalog, consent(-30 * 24 * HOUR, None), sms_off)
    assert run(e, [push(0, "app_push")]) == []


def test_a_refusal_of_marketing_said_by_sms_stops_the_app_push_too(policy, catalog) -> None:
    """The same reply logged as a refusal of `marketing` on the SMS channel: the customer refused
    marketing (seed 004 流程描述(4)②), and the app push after it fires."""
    e = engine(policy, catalog, consent(-30 * 24 * HOUR, None), consent(-2 * HOUR, "sms", "withdrawn"))
    (a,) = run(e, [push(0, "app_push")])
    assert rules(a) == {"after_withdrawal"} and a.severity.value == "high"


def test_an_sms_a_minute_after_the_sms_withdrawal_fires_high(policy, catalog) -> None:
    sms_off = consent(-MIN, None, "withdrawn", purpose="marketing_sms")
    e = engine(policy, catalog, consent(-30 * 24 * HOUR, None), sms_off)
    (a,) = run(e, [push(0, "sms")])
    assert rules(a) == {"channel_refused"} and a.severity.value == "high"
    assert a.counts["opt_out_delay_s"] == 60 and "1 min after the opt-out" in a.summary
    assert a.title_zh and a.title_en and any("立即停止" in r for r in a.regulation)
    clean([a])


def test_an_sms_a_millisecond_before_the_withdrawal_is_in_time(policy, catalog) -> None:
    e = engine(policy, catalog, consent(-30 * 24 * HOUR, "sms"), consent(1, "sms", "withdrawn"))
    assert run(e, [push(0, "sms")]) == []


def test_withdrawn_everywhere_then_regranted_on_the_app_only(policy, catalog) -> None:
    """The customer closed all marketing, then turned app pushes back on: the app push is fine,
    the SMS the next day still ignores the opt-out."""
    history = (
        consent(-30 * 24 * HOUR, None),
        consent(-3 * 24 * HOUR, None, "withdrawn"),
        consent(-24 * HOUR, "app_push"),
    )
    assert run(engine(policy, catalog, *history), [push(0, "app_push")]) == []
    (a,) = run(engine(policy, catalog, *history), [push(0, "sms")])
    assert rules(a) == {"after_withdrawal"} and a.severity.value == "high"
    assert a.counts["opt_out_delay_s"] == 3 * 24 * 3600
    clean([a])


def test_sms_withdrawn_then_regranted_is_silent(policy, catalog) -> None:
    e = engine(
        policy, catalog, consent(-30 * 24 * HOUR, "sms"), consent(-5 * HOUR, "sms", "withdrawn"),
        consent(-HOUR, "sms"),
    )  # fmt: skip
    assert run(e, [push(0, "sms")]) == []


def test_a_withdrawal_that_reaches_the_topic_after_the_push_still_counts(policy, catalog) -> None:
    """The app's opt-out was written at 09:59:00 but reached pfi.consents after the 10:00 push."""
    e = engine(policy, catalog, consent(-30 * 24 * HOUR, None))
    (a,) = run(e, [push(0, "app_push")], consent(-MIN, None, "withdrawn"))
    assert rules(a) == {"after_withdrawal"} and a.severity.value == "high"
    clean([a])


def test_pushes_out_of_order_form_one_alert_from_the_first_offending_push(policy, catalog) -> None:
    e = engine(policy, catalog, consent(-30 * 24 * HOUR, "sms"), consent(-10 * MIN, "sms", "withdrawn"))
    got = run(e, [push(30 * MIN, "sms", 1), push(0, "sms", 0), push(-20 * MIN, "sms", 2)])
    (a,) = got
    assert a.counts["pushes"] == 2 and a.first_seen == T0 and a.counts["opt_out_delay_s"] == 40 * 60
    clean(got)


def test_a_quiet_partition_still_judges_its_last_push(policy, catalog) -> None:
    """Partition 0 hears nothing after the offending push; the other partition's traffic moves the
    instance clock, and the live runtime, told every input is caught up, judges it."""
    e = engine(policy, catalog, consent(-30 * 24 * HOUR, "sms"), consent(-MIN, "sms", "withdrawn"))
    alerts = e.process("marketing", "m", 0, fed("marketing", [push(0, "sms")]))
    e.apply_reference("consents", refs("consents", [consent(-HOUR, None, subject="CIF-OTHER")]))
    later = [push(h * HOUR, "app_push", subject="CIF-OTHER") for h in range(1, 4)]
    alerts += e.process("marketing", "m", 1, fed("marketing", later))
    alerts += e.advance(caught_up={("marketing", 0), ("marketing", 1)})
    assert [rules(a) for a in alerts] == [{"after_withdrawal"}]
    clean(alerts)
