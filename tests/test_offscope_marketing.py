"""Off-scope marketing through the Engine: each rule fires on a push that barely breaks it and stays
silent on one that barely keeps it; verdicts wait for the watermark so a late withdrawal counts."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import MINOR_CASES, T0, fed, refs, renamed_ids, stored_text

from detectors import load_detectors
from detectors.offscope_marketing import Episode
from schemas.models import Alert, Consent, Customer, Entitlement, MarketingPushEvent
from streams.engine import Engine
from streams.pseudonym import Pseudonymizer

HOUR, MIN = 3_600_000, 60_000
REFUSAL_COUNTS = ("opt_out_delay_s", "opt_out_ts")  # every alert about a push after a refusal has them
KEY = b"offscope-test-key-0123456789"
P = Pseudonymizer(KEY)


@pytest.fixture
def engine(policy: Any, catalog: Any) -> Engine:
    return _engine(policy, catalog)


def _engine(policy: Any, catalog: Any) -> Engine:
    """An engine whose subject C9 consents to everything: its pushes only move the watermark."""
    spec = next(s for s in load_detectors(policy) if s.kind == "offscope_marketing")
    e = Engine([spec], catalog, pseudonymize=Pseudonymizer(KEY), allowed_lateness_ms=60_000)
    e.apply_reference("consents", refs("consents", [consent("C9", channel=None)]))
    return e


def push(subject: str = "C1", at: int = 0, n: int = 0, **kw: Any) -> MarketingPushEvent:
    """A compliant SMS push at T0 + `at` ms unless `kw` says otherwise."""
    fields = {
        "channel": "sms",
        "campaign_id": "CMP-1",
        "purpose": "marketing",
        "personalized": False,
        "opt_out_offered": True,
        "non_personalized_option": False,
        "submitter_id": "E1",
        "approver_id": "E2",
        "org_id": "HO",
    }
    fields["event_id"] = f"m-{subject}-{at}-{n}"
    return MarketingPushEvent(ts=T0 + at, subject_id=subject, **{**fields, **kw})


def consent(subject: str = "C1", at: int = -24 * HOUR, channel: str | None = "sms", **kw: Any) -> Consent:
    fields = {"purpose": "marketing", "status": "granted", **kw}
    return Consent(subject_id=subject, ts=T0 + at, channel=channel, **fields)


def opt_out(subject: str = "C1", at: int = -HOUR, channel: str = "sms") -> Consent:
    """An opt-out of one channel's marketing, as the platforms log it: its purpose names the channel."""
    return consent(subject, at, None, purpose=f"marketing_{channel}", status="withdrawn")


def customer(cid: str = "C1", path: tuple[str, ...] = ("HO", "B01", "S0101")) -> Customer:
    return Customer(customer_id=cid, ts=0, org_id=path[-1], org_path=list(path))


def run(engine: Engine, *steps: Any) -> list[Alert]:
    """Steps in order: a list of pushes is one batch of pfi.marketing (then timers may fire);
    a Consent or Customer is reference data reaching its topic at that point."""
    alerts: list[Alert] = []
    offset = 0
    for step in steps:
        if isinstance(step, Consent | Customer):
            stream = "consents" if isinstance(step, Consent) else "customers"
            engine.apply_reference(stream, refs(stream, [step]))
            continue
        alerts += engine.process("marketing", "m", 0, fed("marketing", step, offset=offset))
        offset += len(step)
        alerts += engine.advance()
    return alerts


def final(alerts: list[Alert]) -> dict[str, Alert]:
    best: dict[str, Alert] = {}
    for a in alerts:
        if a.alert_id not in best or a.revision >= best[a.alert_id].revision:
            best[a.alert_id] = a
    return best


def rules(alerts: list[Alert]) -> set[str]:
    return {
        k.removeprefix("rule_") for a in final(alerts).values() for k in a.counts if k.startswith("rule_")
    }


# -- consent and opt-out ------------------------------------------------------------------------------
def test_a_withdrawal_that_arrives_after_the_push_within_the_lateness_still_counts(engine) -> None:
    early = run(engine, consent(), [push(at=0)])
    assert early == []  # the verdict waits for the watermark, whatever the consents say now
    later = run(engine, consent(at=-10 * MIN, status="withdrawn"), [push("C9", at=2 * MIN)])
    (a,) = final(later).values()
    assert a.counts["rule_after_withdrawal"] == 1 and a.counts["opt_out_delay_s"] == 600
    assert a.severity.value == "high" and a.title_en == "Marketing push after the subject opted out"
    assert a.subjects_sample == [P("C1")] and a.actor_id == "E1"
    assert a.regulation[0].startswith(
        "《个人信息保护法》第十五条: 基于个人同意处理个人信息的, 个人有权撤回其同意"
    )
    assert any("第60条" in r for r in a.regulation) and any("流程描述(4)使用②" in r for r in a.regulation)


def test_a_withdrawal_arriving_once_the_watermark_passed_the_push_is_too_late(engine) -> None:
    alerts = run(engine, consent(), [push(at=0)], [push("C9", at=2 * MIN)])
    # judged up to 2 min - the lateness: the withdrawal, dated 10 min before the push, missed that by 11
    assert engine.apply_reference(
        "consents", refs("consents", [consent(at=-10 * MIN, status="withdrawn")])
    ) == ([11 * MIN], [])
    assert engine.apply_reference("consents", refs("consents", [consent("C2", at=2 * MIN)])).missed == []
    alerts += run(engine, [push("C9", at=4 * MIN, n=1)])
    assert alerts == []


def test_a_push_just_before_the_withdrawal_is_in_time_and_one_at_it_is_not(engine) -> None:
    alerts = run(engine, consent(), consent(at=1, status="withdrawn"), [push(at=0)])
    alerts += run(engine, consent("C2"), consent("C2", at=0, status="withdrawn"), [push("C2", at=0)])
    alerts += engine.drain()
    assert [a.subjects_sample for a in final(alerts).values()] == [[P("C2")]]
    assert rules(alerts) == {"after_withdrawal"}


def test_pushes_of_one_campaign_after_the_opt_out_are_one_alert_with_the_latest_delay(engine) -> None:
    steps = [consent(), consent(at=0, status="withdrawn")]
    alerts = run(engine, *steps, [push(at=HOUR)], [push(at=3 * HOUR)], [push(at=5 * HOUR)])
    alerts += engine.drain()
    (a,) = final(alerts).values()
    assert a.counts["pushes"] == 3 and a.counts["opt_out_delay_s"] == 5 * 3600
    assert a.window_start == T0 + HOUR and "5 h 0 min after the opt-out" in a.summary
    # a second campaign to the same subject is its own alert; a push a day later opens a new episode
    more = run(
        engine, [push(at=6 * HOUR, campaign_id="CMP-2")], [push(at=30 * HOUR)], [push("C9", at=31 * HOUR)]
    )
    more += engine.drain()
    ids = {a.alert_id for a in [*alerts, *more]}
    assert len(ids) == 3


def test_replay_in_other_batches_gives_the_same_alerts(policy, catalog) -> None:
    pushes = [push(at=i * 20 * MIN, n=i) for i in range(12)]

    def replay(batch: int) -> dict[str, tuple]:
        e = _engine(policy, catalog)
        alerts = run(
            e,
            consent(),
            consent(at=HOUR, status="withdrawn"),
            *[pushes[i : i + batch] for i in range(0, len(pushes), batch)],
        )
        alerts += e.drain()
        return {k: (a.counts, a.window_start, a.status.value) for k, a in final(alerts).items()}

    one = replay(1)
    assert one == replay(5) == replay(12) and len(one) == 1
    assert next(iter(one.values()))[0]["pushes"] == 9  # from 1 h 0 min on


def test_a_marketing_consent_covers_a_push_that_names_a_service_purpose(engine) -> None:
    """Every push is marketing: a customer who agreed to marketing on every channel (seed 004 流程描述(4)使用②)
    may get a wealth-advice push on WeChat, a channel the bank tells customers it markets on; one
    who agreed to nothing may not, nor on a channel marketing was never asked about."""
    advice = {"purpose": "wealth_advice", "opt_out_offered": True}
    pushes = [
        push("C1", channel="wechat", data_used=["customer_name"], **advice),
        push("C2", channel="wechat", data_used=["customer_name"], **advice),
        push("C3", channel="email", data_used=["customer_name"], **advice),
    ]
    alerts = run(engine, consent("C1", channel=None), consent("C3", channel=None), pushes)
    alerts += engine.drain()
    by_subject = {a.subjects_sample[0]: set(a.counts) for a in final(alerts).values()}
    assert P("C1") not in by_subject and "rule_no_consent" in by_subject[P("C2")]
    assert "rule_channel_not_declared" in by_subject[P("C3")]


def test_no_consent_versus_a_consent_for_another_channel(engine) -> None:
    alerts = run(engine, consent("C2", channel="app_push"), [push("C1", at=0), push("C2", at=0)])
    alerts += engine.drain()
    by_subject = {a.subjects_sample[0]: set(a.counts) for a in final(alerts).values()}
    assert "rule_no_consent" in by_subject[P("C1")]
    assert "rule_channel_not_covered" in by_subject[P("C2")]
    # the customer's own choice of channels decides: high, as a push without consent
    assert {a.subjects_sample[0]: a.severity.value for a in final(alerts).values()}[P("C2")] == "high"


def test_a_refused_channel_while_marketing_consent_stands(engine) -> None:
    steps = [consent(channel=None), opt_out()]
    alerts = run(engine, *steps, [push(at=0), push(at=MIN, channel="app_push")])
    alerts += engine.drain()
    (a,) = final(alerts).values()
    assert set(a.counts) == {"pushes", "rule_channel_refused", *REFUSAL_COUNTS, "opt_out_on_sms"}
    assert a.counts["pushes"] == 1


def test_the_privacy_policy_accepted_again_does_not_undo_an_sms_opt_out(engine) -> None:
    """SMS refused, then a bundled grant for every channel (the updated privacy policy accepted):
    no opt-in to SMS (seed 004 流程描述(1)④ no bundled authorisation, (4)② the customer's choice).
    A probe's SMS push after it raised nothing. An opt-in on SMS itself (C2), or a separate consent
    for every channel (C3), is the customer's choice again."""
    day = 24 * HOUR
    steps: list[Any] = []
    for subject, again in (
        ("C1", consent(at=-day, channel=None, separate=False)),
        ("C2", consent("C2", at=-day)),
        ("C3", consent("C3", at=-day, channel=None, separate=True)),
    ):
        steps += [consent(subject, at=-5 * day), consent(subject, at=-3 * day, status="withdrawn"), again]
    alerts = run(engine, *steps, [push(s, at=0) for s in ("C1", "C2", "C3")]) + engine.drain()
    ((subject, a),) = {a.subjects_sample[0]: a for a in final(alerts).values()}.items()
    assert subject == P("C1") and a.severity.value == "high", a.summary
    assert {"rule_after_withdrawal", "rule_channel_refused"} & set(a.counts)


def test_a_general_consent_covers_only_the_channels_the_bank_tells_customers_it_markets_on(engine) -> None:
    alerts = run(engine, consent(channel=None), [push(at=0, channel="wechat"), push(at=1, channel="email")])
    alerts += engine.drain()
    (a,) = final(alerts).values()
    assert (
        rules(alerts) == {"channel_not_declared"} and a.counts["pushes"] == 1 and a.severity.value == "medium"
    )
    # the customers must be told how their data is processed (the bank's rule); the employees' app's
    # privacy policy makes customers no promise of channels
    assert any(
        r.startswith("本行《个人金融信息保护管理规定》 流程描述(1)⑥: 向客户明确告知所列事项")
        for r in a.regulation
    )
    assert not any("掌上银行家" in r for r in a.regulation)
    # an email consent the subject gave themselves does cover email
    assert (
        run(engine, consent("C3", channel="email"), [push("C3", at=2, channel="email")]) + engine.drain()
        == []
    )


def test_a_mass_notice_is_no_marketing_and_a_notice_that_markets_is(engine) -> None:
    """The platform sends its notices on the marketing log (probe_v2 F4: a rate-change notice to
    customers who had refused marketing raised one alert each). A push sent as a notice (`kind`, in
    the platform's own words) needs no marketing consent, refusal or SMS approval (seed 004 流程描述(1)⑥:
    所列事项发生变更的, 应当将变更部分告知个人); addressed by name and number it stays one. Sent as a
    notice but personalized, targeted by anything else or naming marketing, it markets (使用②③)."""
    refusers = ("C1", "C2", "C3", "C4")
    steps = [c for s in refusers for c in (consent(s), consent(s, at=-HOUR, status="withdrawn"))]
    notice = {"kind": "notice", "purpose": "account_service", "opt_out_offered": False, "approver_id": None}
    addressed = {"data_used": ["customer_name", "mobile_phone"]}
    pushes = [
        push("C1", campaign_id="NTC-RATE", **notice, **addressed),
        push("C5", campaign_id="NTC-RATE", **notice),  # no marketing consent at all
        push("C2", campaign_id="NTC-TAGS", **{**notice, "data_used": ["marketing_tags"]}),
        push("C3", campaign_id="NTC-MKT", **{**notice, "purpose": "营销推广"}),
        push("C4", campaign_id="NTC-PERS", **{**notice, "personalized": True}),
    ]
    alerts = final(run(engine, *steps, pushes) + engine.drain())
    by_campaign = {a.summary.split()[4]: a for a in alerts.values()}
    assert len(alerts) == 3 and set(by_campaign) == {"NTC-TAGS", "NTC-MKT", "NTC-PERS"}
    for campaign, why in (
        ("NTC-TAGS", "targeted with marketing_tags"),
        ("NTC-MKT", "names the purpose marketing"),
        ("NTC-PERS", "personalized"),
    ):
        a = by_campaign[campaign]
        assert f"sent as a notice but {why}: marketing all the same" in a.summary, a.summary
        assert a.counts["sent_as_notice"] == 1 and a.counts["rule_after_withdrawal"] == 1


def test_a_campaign_offending_many_subjects_is_one_alert_past_the_threshold(policy, catalog) -> None:
    """probe_v2 F4: a campaign that reached a few hundred refusers raised an alert each, where the
    analyst's one action is on the campaign. The first `campaign_rollup_subjects` - 1 subjects it
    offends by a rule are alerted alone; the rest are one alert for the campaign and rule (their
    count and a sample), not counting those again. The subjects are
    counted in time order whatever the batches: a replay in other batches gives the same alerts,
    and its consenting customers stay silent."""
    spec = next(s for s in load_detectors(policy) if s.kind == "offscope_marketing")
    alone = spec.params.campaign_rollup_subjects - 1
    refusers = [f"R{i:02d}" for i in range(alone + 31)]
    steps = [c for s in refusers for c in (consent(s), consent(s, at=-HOUR, status="withdrawn"))]
    steps += [consent(f"K{i:02d}") for i in range(20)]
    mass = {"campaign_id": "CMP-MASS"}
    pushes = [push(s, at=i * 10_000, **mass) for i, s in enumerate(refusers)]
    pushes += [push(f"K{i:02d}", at=i * 10_000 + 5000, **mass) for i in range(20)]
    pushes.sort(key=lambda p: p.ts)  # ten minutes of sending, the consenting customers among the rest
    again = [push(refusers[0], at=HOUR, **mass), push(refusers[-1], at=HOUR + 1, **mass)]

    def replay(batch: int, order: list[Any]) -> dict[str, Alert]:
        e = _engine(policy, catalog)
        run(e, *steps)
        ordered = [order[i : i + batch] for i in range(0, len(order), batch)]
        # a compliant push a day later moves the watermark past the campaign's gap: it closes
        return final(run(e, *ordered, again, [push("C9", at=26 * HOUR)]))

    alerts = replay(7, pushes)
    # one batch, the latest first: the roll-up still starts at the same subject (ten minutes, the
    # sending's span, are within nothing's lateness here: all wait for the next batch's watermark)
    assert {k: (a.counts, a.window_start, a.status) for k, a in alerts.items()} == {
        k: (a.counts, a.window_start, a.status) for k, a in replay(len(pushes), pushes[::-1]).items()
    }
    # a restart between two batches, the roll-up's state from the changelog: the same alerts
    first = _engine(policy, catalog)
    before = run(first, *steps, pushes[:40])  # the first 30 or so judged, the roll-up open
    restarted = _engine(policy, catalog)
    restarted.restore(0, first.changes(0))
    after = run(restarted, *steps, pushes[40:], again, [push("C9", at=26 * HOUR)])
    assert {k: (a.counts, a.window_start, a.status) for k, a in final(before + after).items()} == {
        k: (a.counts, a.window_start, a.status) for k, a in alerts.items()
    }
    single = [a for a in alerts.values() if a.subject_count == 1]
    (rolled,) = [a for a in alerts.values() if a.subject_count > 1]
    assert sorted(a.subjects_sample[0] for a in single) == sorted(P(s) for s in refusers[:alone])
    assert rolled.subject_count == 31 and rolled.subjects_sample == [P(s) for s in refusers[alone:][:10]]
    assert rolled.counts == {
        "subjects": 31,
        "pushes": 32,
        "rule_after_withdrawal": 32,
        "alerted_alone": alone,
    }
    assert rolled.severity.value == "high" and rolled.title_en == "Marketing push after the subject opted out"
    assert rolled.summary.startswith(
        "31 subjects reached by campaign CMP-MASS (submitted by E1, approved by E2)"
    )
    assert rolled.status.value == "closed" and rolled.actor_id == "E1"
    # the first subject's second push is its own alert's, not the roll-up's
    (first,) = [a for a in single if a.subjects_sample == [P(refusers[0])]]
    assert first.counts["pushes"] == 2


def test_a_campaigns_roll_up_checkpoints_what_a_batch_added_and_leaves_nothing_when_closed(
    policy, catalog
) -> None:
    """A storm's roll-up keeps its count and a sample in its value and each subject as a key written
    once: a checkpoint after 400 subjects writes a batch's few, not the 400 (the value was every
    pseudonym so far, rewritten at each checkpoint), and the closed roll-up leaves no key behind."""
    spec = next(s for s in load_detectors(policy) if s.kind == "offscope_marketing")
    refusers = [f"R{i:04d}" for i in range(spec.params.campaign_rollup_subjects + 400)]
    steps = [c for s in refusers for c in (consent(s), consent(s, at=-HOUR, status="withdrawn"))]
    pushes = [push(s, at=i * 1000, campaign_id="CMP-MASS") for i, s in enumerate(refusers)]
    e = _engine(policy, catalog)
    run(e, *steps, pushes[:-5], [push("C9", at=len(refusers) * 1000 + 10 * MIN)])
    kept = dict(e.changes(0))
    ns = b"offscope_marketing\x1f"
    assert len([k for k in kept if k.startswith(ns + b"rolled:")]) > 400 - 5
    run(e, pushes[-5:], [push("C9", at=len(refusers) * 1000 + 20 * MIN)])
    written = {k: v for k, v in e.changes(0) if k.startswith(ns)}
    assert len([k for k in written if k.startswith(ns + b"rolled:")]) == 5
    assert sum(len(v or b"") for v in written.values()) < 4_000, written
    kept.update(written)
    run(e, [push("C9", at=30 * HOUR)])  # past the campaign's gap: the roll-up closes
    kept.update(e.changes(0))
    assert not [
        k for k, v in kept.items() if v is not None and k.startswith((ns + b"rolled:", ns + b"campaign:"))
    ]


# -- purpose, choice, four eyes, audience ------------------------------------------------------------
def test_loan_data_for_marketing_is_off_purpose_unless_separately_consented(engine) -> None:
    data = ["loan_details", "customer_segment"]
    alerts = run(
        engine,
        consent("C1"),
        consent("C2"),
        consent("C2", at=-HOUR, channel=None, separate=True),
        [push("C1", at=0, data_used=data), push("C2", at=0, data_used=data)],
        [push("C3", at=0, data_used=["transaction_record", "unknown_field"]), push("C9", at=2 * MIN)],
    )
    alerts += engine.drain()
    off = [a for a in final(alerts).values() if "rule_off_purpose" in a.counts]
    assert [a.subjects_sample for a in off] == [[P("C1")]]
    assert (
        off[0].jr_class == "C2"
        and "loan_details" in off[0].summary
        and "customer_segment" not in off[0].summary
    )


def service(subject: str, purpose: str, **kw: Any) -> Consent:
    """A consent to a service purpose (a loan application's credit review, wealth advice)."""
    return Consent(subject_id=subject, ts=T0 - HOUR, purpose=purpose, channel=None, status="granted", **kw)


def test_a_push_naming_a_service_purpose_is_judged_as_marketing(engine) -> None:
    """Every push is marketing (seed 004 流程描述(4)使用②⑩): the marketing consent decides and the
    targeting must be what marketing may use, whatever purpose the push names. A consent to the named
    service, separate or not, is no consent to marketing; a wealth-advice push on the marketing
    consent, greeting the customer by name and by tier, is what marketing may do."""
    loan = {"purpose": "credit_review", "data_used": ["loan_details", "credit_report"], "personalized": True}
    steps = [
        consent("C1", channel=None),  # marketing consent: the loan data is still off-purpose
        service("C2", "credit_review"),  # the loan's consent only
        consent("C3", channel=None),
        service("C4", "wealth_advice"),  # the service, not its marketing
        service("C5", "wealth_advice"),
        consent("C6", channel=None),  # the near miss
        consent("C7", channel=None),
        service("C7", "credit_review", separate=True),  # a separate consent to the loan, not to marketing
    ]
    pushes = [
        push("C1", **loan),
        push("C2", **loan),
        push("C3", purpose="payment", data_used=["account_balance"], personalized=True),
        push("C4", purpose="wealth_advice", channel="app_push"),
        push("C5", purpose="wealth_advice", channel="email"),
        push(
            "C6", purpose="wealth_advice", channel="wechat", data_used=["customer_name", "customer_segment"]
        ),
        push("C7", **loan),
    ]
    alerts = run(engine, *steps, pushes) + engine.drain()
    got = {a.subjects_sample[0]: set(a.counts) - {"pushes"} for a in final(alerts).values()}
    assert got == {
        P("C1"): {"rule_off_purpose"},
        P("C2"): {"rule_no_consent", "rule_off_purpose"},
        P("C3"): {"rule_off_purpose"},
        P("C4"): {"rule_no_consent"},
        P("C5"): {"rule_no_consent"},
        P("C7"): {"rule_off_purpose"},
    }
    c1 = next(a for a in final(alerts).values() if a.subjects_sample == [P("C1")])
    assert (
        "credit_report, loan_details, not collected for marketing" in c1.summary
        and c1.severity.value == "high"
    )


def test_a_separate_marketing_consent_still_lifts_off_purpose_on_a_push_naming_another_purpose(
    engine,
) -> None:
    """流程描述(1)收集⑧: beyond the original authorisation with the customer's explicit consent first:
    a separate consent to marketing covers the push, whatever purpose it names."""
    steps = [consent("C1", channel=None, separate=True)]
    pushes = [push("C1", purpose="credit_review", data_used=["loan_details"], personalized=True)]
    assert run(engine, *steps, pushes) + engine.drain() == []


def test_personalized_pushes_need_a_non_personalized_option_or_a_refusal(engine) -> None:
    base = {"channel": "app_push", "personalized": True, "approver_id": None}
    cases = {
        "C1": {"opt_out_offered": True, "non_personalized_option": False},  # refusal only: fine
        "C2": {"opt_out_offered": False, "non_personalized_option": False},  # neither
        "C3": {"opt_out_offered": False, "non_personalized_option": True, "personalized": False},
    }
    steps = [consent(c, channel="app_push") for c in cases]
    alerts = run(engine, *steps, [push(c, at=0, **{**base, **kw}) for c, kw in cases.items()])
    alerts += engine.drain()
    got = {a.subjects_sample[0]: set(a.counts) - {"pushes"} for a in final(alerts).values()}
    assert got == {P("C2"): {"rule_personalized_without_choice"}, P("C3"): {"rule_no_refusal_offered"}}


def test_four_eyes_applies_to_marketing_sms(engine) -> None:
    """Approved by no one, or by its submitter, whatever case each system spells the id in (a
    probe's E51001 approved by e51001, an id outside the bank's form, passed as two people)."""
    pushes = [
        push("C1", at=0, approver_id=None),
        push("C2", at=0, approver_id="E1"),
        push("C3", at=0, approver_id="E2"),
        push("C4", at=0, approver_id="E1", channel="app_push"),
        push("C5", at=0, approver_id="e1"),
    ]
    steps = [consent(c, channel=None) for c in ("C1", "C2", "C3", "C4", "C5")]
    alerts = run(engine, *steps, pushes) + engine.drain()
    assert {a.subjects_sample[0] for a in final(alerts).values()} == {P("C1"), P("C2"), P("C5")}
    assert rules(alerts) == {"four_eyes"}


def test_an_audience_outside_the_campaign_approval(engine) -> None:
    steps = [
        *(consent(c, channel=None) for c in ("C1", "C2", "C3", "C4")),
        customer("C1", ("HO", "B02", "S0201")),
        customer("C2", ("HO", "B01", "B01A", "S0102")),
        customer("C3", ("HO", "B02", "S0202")),
        customer("C5", ("HO", "B01", "B01A", "S0102")),
    ]
    pushes = [
        push("C1", at=0, org_id="B01"),  # another branch's customer
        push("C2", at=0, org_id="B01"),  # a customer below the branch
        # named in the approval, but another branch's sub-branch: beyond B01's own (seed 004 分行③)
        push("C3", at=0, org_id="B01", approved_audience=["B01", "S0202"]),
        push("C4", at=0, org_id="B01"),  # not in the customers stream: not judged
        push("C5", at=0, org_id="B01", approved_audience=["S0102"]),  # its own sub-branch, named
    ]
    alerts = run(engine, consent("C5", channel=None), *steps, pushes) + engine.drain()
    assert sorted(a.subjects_sample[0] for a in final(alerts).values()) == sorted([P("C1"), P("C3")])
    assert rules(alerts) == {"audience_outside_approval"}


def test_several_rules_make_one_alert_that_names_them_all(engine) -> None:
    alerts = run(
        engine,
        # targeted with credit data, so personalized: a non-personalized option but no way to refuse
        [
            push(
                at=0,
                approver_id="E1",
                opt_out_offered=False,
                non_personalized_option=True,
                data_used=["credit_report"],
            )
        ],
    )
    alerts += engine.drain()
    (a,) = final(alerts).values()
    assert rules(alerts) == {"no_consent", "off_purpose", "no_refusal_offered", "four_eyes"}
    assert a.title_zh.startswith("未经同意推送营销信息、") and a.severity.value == "high"
    assert len(a.regulation) == len(set(a.regulation)) >= 4
    # each rule's law, in rule order, before the seeds: consent (PIPL art. 13), a change of purpose
    # (art. 14 ¶2), a way to refuse (Advertising Law art. 43 ¶2), access rights (art. 51)
    laws = [r.split(":")[0] for r in a.regulation if r.startswith(("《个人信息保护法》", "《广告法》"))]
    assert laws[0] == "《个人信息保护法》第十三条" and a.regulation[0].startswith(laws[0])
    assert {
        "《个人信息保护法》第十四条第二款",
        "《广告法》第四十三条第二款",
        "《个人信息保护法》第五十一条",
    } <= set(laws)


# -- state ----------------------------------------------------------------------------------------------
def test_a_pending_push_survives_a_checkpoint_and_restore(policy, catalog, engine) -> None:
    run(engine, consent("C0000077"), [push("C0000077", at=0, event_id="m-1")])
    changes = engine.changes(0)
    state = stored_text(changes)  # the waiting push's block unpacked
    assert "m-1" in state  # the push itself, read inside its packed block
    assert "C0000077" not in state and P("C0000077") in state  # pseudonyms only
    restored = _engine(policy, catalog)
    restored.restore(0, changes)
    restored.apply_reference("consents", refs("consents", [consent("C0000077")]))
    alerts = run(restored, consent("C0000077", at=-MIN, status="withdrawn"), [push("C9", at=5 * MIN)])
    assert rules(alerts) == {"after_withdrawal"}


def test_waiting_pushes_cost_a_checkpoint_keys_per_batch_not_per_push(engine) -> None:
    """A batch of pushes waits as one block with one timer for the task, and a compliant push,
    once judged, leaves no key behind: a checkpoint's cost follows the batches, not the subjects."""
    subjects = [f"C{i:07d}" for i in range(200)]
    run(
        engine, *[consent(c, channel=None) for c in subjects], [push(c, at=i) for i, c in enumerate(subjects)]
    )
    ns = b"offscope_marketing\x1f"
    waiting = [k for k, _ in engine.changes(0) if k.startswith(ns)]  # the lateness holds all 200
    assert len(waiting) == 3  # the inbox, its block, the task's timer
    run(engine, [push("C9", at=10 * MIN)])  # the watermark passes them: all compliant
    kept = [k for k, v in engine.changes(0) if k.startswith(ns) and v is not None]
    assert not [k for k in kept for c in subjects if P(c).encode() in k]


def test_each_alert_of_a_campaign_names_who_submitted_and_approved_it(policy, catalog, engine) -> None:
    """One campaign to many refusers is one alert per subject (an episode is a subject's), and the
    analyst's action is one: stop the campaign, ask who sent it. Each summary names its submitter and
    approver (a probe's 100 alerts of one campaign named neither). An app push with no approver names
    its submitter alone; an episode an older lifemon kept, without its approver, still closes."""
    refusers = ("C1", "C2", "C3")
    steps = [c for s in refusers for c in (consent(s), consent(s, at=-HOUR, status="withdrawn"))]
    app = {"channel": "app_push", "approver_id": None, "campaign_id": "CMP-APP"}
    pushes = [push(s, at=k, approver_id="E2") for k, s in enumerate(refusers)] + [push("C1", at=5, **app)]
    alerts = final(run(engine, *steps, pushes) + engine.drain())
    sms = [a.summary for a in alerts.values() if "CMP-1" in a.summary]
    assert len(sms) == 3
    assert all(
        t.startswith("1 push of campaign CMP-1 (submitted by E1, approved by E2) to subject p_") for t in sms
    )
    (in_app,) = [a.summary for a in alerts.values() if "CMP-APP" in a.summary]
    assert in_app.startswith("1 push of campaign CMP-APP (submitted by E1) to subject p_")
    e = _engine(policy, catalog)
    subject, ns = P("C1"), "offscope_marketing\x1f"
    older = {k: v for k, v in Episode(T0, "E1", "HO").to_json().items() if k != "approver"}
    older |= {"pushes": 1, "rules": {"no_consent": 1}, "evidence": ["m-old"], "revision": 1}
    state = {"pending": [], "episodes": {"CMP-1": older}}
    e.restore(
        0,
        [
            ((ns + subject).encode(), json.dumps(state).encode()),
            ((ns + f"t:{T0 + 24 * HOUR:016x}:{subject}").encode(), b"1"),
        ],
    )
    (closed,) = final(run(e, [push("C9", at=25 * HOUR)])).values()
    assert closed.summary.startswith("1 push of campaign CMP-1 (submitted by E1) to subject")


def test_a_push_an_earlier_lifemon_kept_under_its_subject_is_still_judged(policy, catalog) -> None:
    """Before the inbox, a push waited in its subject's state, with a timer at its time, until the
    watermark passed it: such state, restored, is judged as it was."""
    e = _engine(policy, catalog)
    subject, ns = P("C1"), "offscope_marketing\x1f"
    row = [T0, "m-old", "sms", "CMP-1", "marketing", [], False, True, False, "E1", "E2", "HO", []]
    e.restore(
        0,
        [
            ((ns + subject).encode(), json.dumps({"pending": [row], "episodes": {}}).encode()),
            ((ns + f"t:{T0:016x}:{subject}").encode(), b"1"),
        ],
    )
    alerts = run(e, [push("C9", at=5 * MIN)])  # C1 gave no consent: the old push breaks no_consent
    (a,) = final(alerts).values()
    assert rules(alerts) == {"no_consent"} and a.evidence_event_ids == ["m-old"]
    assert a.subjects_sample == [subject]


# -- a producer's words, through the decoder ------------------------------------------------------------
def replayed(
    tmp_path: Any, policy: Any, catalog: Any, **streams: list[dict[str, Any]]
) -> tuple[list[Alert], list[Any]]:
    """The streams' records as producers write them (JSON, their own words for the enums), read by
    the real decoder into the engine: the latest revision of each alert, and the dead letters."""
    from streams.codecs import Decoder
    from streams.replay import replay

    for stream, records in streams.items():
        text = "\n".join(json.dumps(r, ensure_ascii=False) for r in records)
        (tmp_path / f"pfi.{stream}.jsonl").write_text(text, encoding="utf-8")
    spec = next(s for s in load_detectors(policy) if s.kind == "offscope_marketing")
    e = Engine([spec], catalog, pseudonymize=Pseudonymizer(KEY), allowed_lateness_ms=60_000)
    alerts, dead = replay(e, Decoder(), sorted(tmp_path.glob("pfi.*.jsonl")))
    return list(final(alerts).values()), dead


def said(record: Any, **words: Any) -> dict[str, Any]:
    """The record as JSON, its fields in `words` as the producer writes them."""
    return {**record.model_dump(mode="json"), **words}


OPTED_OUT = ["退订成功", "TD", "关闭", "已关闭", "不同意", "取消授权", "取消", "OFF", "disabled"]
GRANTED = ["开启", "已开启", "ON", "enabled"]


def test_an_opt_out_and_a_push_in_the_platforms_own_words_are_judged(tmp_path, policy, catalog) -> None:
    """An SMS gateway logs an unsubscribe as the reply (TD) or its result (退订成功), an app's settings
    a toggle as 关闭 or OFF, and a send log its channel as 手机短信, 企业微信, 智能外呼 (seed 004 隐私政策:
    关闭"信息推送"; schemas/enum_words.yaml): a probe's opt-outs so written were dead letters, and the
    pushes after them silent (seed 004 流程描述(4)使用② 应当立即停止利用); its grants so written too, and
    each push after them a false no-consent alert."""
    consents, pushes = [], []
    for i, word in enumerate(OPTED_OUT):
        cid = f"C{i:02d}"
        consents += [said(consent(cid), status="开启", channel="手机短信"),
                     said(consent(cid, at=-HOUR), status=word, channel="短信")]  # fmt: skip
        pushes.append(said(push(cid), channel="手机短信"))
    for i, word in enumerate(GRANTED):
        consents.append(said(consent(f"G{i:02d}", channel=None), status=word))
        pushes.append(said(push(f"G{i:02d}"), channel="手机短信"))
    never = [
        "APP推送",
        "站内信",
        "手机银行APP",
        "微信公众号",
        "企业微信",
        "WeChat Work",
        "电销",
        "智能外呼",
        "IVR",
    ]
    pushes += [said(push(f"N{i:02d}"), channel=ch) for i, ch in enumerate(never)]
    alerts, dead = replayed(tmp_path, policy, catalog, consents=consents, marketing=pushes)
    assert dead == []
    by_subject = {a.subjects_sample[0]: set(a.counts) for a in alerts}
    assert [
        w
        for i, w in enumerate(OPTED_OUT)
        if "rule_after_withdrawal" not in by_subject.get(P(f"C{i:02d}"), ())
    ] == []
    assert not any(P(f"G{i:02d}") in by_subject for i in range(len(GRANTED)))  # consented: silent
    assert [
        c for i, c in enumerate(never) if "rule_no_consent" not in by_subject.get(P(f"N{i:02d}"), ())
    ] == []


def test_a_status_or_channel_of_two_meanings_is_still_a_dead_letter(tmp_path, policy, catalog) -> None:
    """Y/N, 1/0, true/false: a status code of 0 or N is as often 正常 (in force) as 否, and a flag does
    not say which question it answers; 5G消息 is a channel the privacy policy never names, which an SMS
    consent may or may not cover. Refused, each with the values to use, for the producer to say which:
    the grant so written is no consent, and the push after it is one without."""
    consents = [
        said(consent(channel=None), status=w, ts=T0 - 24 * HOUR + i) for i, w in enumerate(["Y", "1", "true"])
    ]
    pushes = [said(push(at=0)), said(push("C2", at=0), channel="5G消息")]
    alerts, dead = replayed(tmp_path, policy, catalog, consents=consents, marketing=pushes)
    assert sorted((d.kind, d.field) for d in dead) == [("invalid", "channel")] + [("invalid", "status")] * 3
    assert "not one of: granted, withdrawn" in next(d for d in dead if d.field == "status").message
    ((subject, counts),) = [(a.subjects_sample[0], set(a.counts)) for a in alerts]
    assert subject == P("C1") and "rule_no_consent" in counts


# -- policy -------------------------------------------------------------------------------------------
def _policy_copy(tmp_path: Any) -> Any:
    import shutil
    from pathlib import Path

    folder = tmp_path / "policy"
    shutil.copytree(
        Path(__file__).resolve().parent.parent / "policy",
        folder,
        ignore=shutil.ignore_patterns("*.py", "__pycache__"),
    )
    return folder


def test_a_rule_left_out_of_the_params_is_named(policy) -> None:
    """The params refuse a rule left out (a bank's older folder has it added as shipped before
    they are checked: tests/test_policy.py)."""
    from detectors.offscope_marketing import OffscopeMarketingParams

    own = policy.detectors["offscope_marketing"].params
    with pytest.raises(ValueError, match=r"rules: add \['four_eyes'\]"):
        OffscopeMarketingParams.model_validate(
            {**own, "rules": {k: v for k, v in own["rules"].items() if k != "four_eyes"}}
        )


def test_a_catalog_field_without_a_collection_purpose_is_a_policy_error(tmp_path) -> None:
    from policy import PolicyError, load_policy

    folder = _policy_copy(tmp_path)
    f = folder / "purposes.yaml"
    f.write_text(
        f.read_text(encoding="utf-8").replace("  loan_details:         [credit_review]\n", ""),
        encoding="utf-8",
    )
    with pytest.raises(PolicyError, match=r"purposes.yaml: collected_for: catalog fields \['loan_details'\]"):
        load_policy(folder)


def test_a_refusal_of_marketing_stops_pushes_that_name_another_purpose(engine) -> None:
    """Every push is marketing (seed 004 流程描述(4)使用②: 拒绝接受营销的, 应当立即停止利用): one that
    names a service purpose the subject consented to still breaks their refusal of marketing; a
    refusal of SMS alone stops SMS only, a push before the refusal is in time, and a consent to the
    service given after the refusal is no consent to marketing again."""
    advice = {"purpose": "wealth_advice", "channel": "app_push"}
    steps = [
        Consent(subject_id=s, ts=T0 - 48 * HOUR, purpose="wealth_advice", channel=None, status="granted")
        for s in ("C1", "C2", "C3")
    ]
    steps += [consent(s, channel=None) for s in ("C1", "C2", "C3")]
    steps += [consent("C1", at=-HOUR, channel=None, status="withdrawn")]
    steps += [opt_out("C2")]
    steps += [consent("C3", at=HOUR, channel=None, status="withdrawn")]
    # C4 refused marketing, then agreed to the wealth-advice service: still no marketing
    steps += [consent("C4", at=-2 * HOUR, channel=None, status="withdrawn")]
    steps += [Consent(subject_id="C4", ts=T0 - HOUR, purpose="wealth_advice", channel=None, status="granted")]
    pushes = [push("C1", **advice), push("C2", **advice), push("C2", n=1, **{**advice, "channel": "sms"})]
    alerts = run(engine, *steps, [*pushes, push("C3", **advice), push("C4", **advice)])
    alerts += engine.drain()
    by_subject = {a.subjects_sample[0]: a for a in final(alerts).values()}
    assert sorted(by_subject) == sorted([P("C1"), P("C2"), P("C4")])
    assert by_subject[P("C4")].counts["rule_after_withdrawal"] == 1
    assert by_subject[P("C1")].counts["rule_after_withdrawal"] == 1
    assert by_subject[P("C1")].counts["opt_out_delay_s"] == 3600
    c2 = by_subject[P("C2")].counts
    assert c2["pushes"] == 1 and c2["rule_channel_refused"] == 1  # the SMS only


def _refusers(e: Engine) -> dict[str, set[str]]:
    """Subjects who refused marketing on one channel each, then a campaign on WeChat and by phone
    (a probe's: customers who replied TD, called 95526 or switched the app's 信息推送 off, marketed to
    two weeks later on the other channels). The rules of each subject's alert."""
    day = 24 * HOUR
    steps: list[Any] = [consent(s, at=-200 * day, channel=None) for s in ("C1", "C2", "C3", "C4", "C5", "C6")]
    steps += [consent("C1", at=-14 * day, channel="sms", status="withdrawn")]  # TD
    steps += [consent("C2", at=-14 * day, channel="phone", status="withdrawn")]  # 95526
    steps += [consent("C3", at=-14 * day, channel="app_push", status="withdrawn")]  # 信息推送 off
    steps += [opt_out("C4", at=-14 * day)]  # the SMS platform's own opt-out: SMS marketing alone
    # refused by phone, then opted in on WeChat (C5), or the privacy policy accepted again, bundled (C6)
    steps += [consent(s, at=-14 * day, channel="phone", status="withdrawn") for s in ("C5", "C6")]
    steps += [consent("C5", at=-day, channel="wechat"), consent("C6", at=-day, channel=None)]
    sent = [(s, ch) for s in ("C1", "C2", "C3", "C4", "C5", "C6", "C7") for ch in ("wechat", "phone")]
    pushes = [push(s, at=k, channel=ch) for k, (s, ch) in enumerate([*sent, ("C4", "sms")])]
    alerts = run(e, consent("C7", at=-200 * day, channel=None), *steps, pushes) + e.drain()
    return {a.subjects_sample[0]: set(a.counts) for a in final(alerts).values()}


def test_a_refusal_of_marketing_said_on_one_channel_ends_every_channel(policy, catalog, tmp_path) -> None:
    """purposes.yaml `withdrawal_scope: all_channels` (seed 004 流程描述(4)②: 在客户明确表示拒绝接受营销的
    情况下, 应当立即停止利用: the customer refuses marketing, not a channel). A withdrawal of `marketing`
    logged on the channel it was said on ends every channel; one whose purpose names its channel
    (`marketing_sms`) ends that channel alone; an opt-in on a channel since reopens that one, a
    bundled re-acceptance none; a consenting customer stays silent. With `channel`, each refusal
    ends its own channel, as before."""
    wide = _refusers(_engine(policy, catalog))
    assert set(wide) == {P(s) for s in ("C1", "C2", "C3", "C4", "C5", "C6")}
    for s, said in (("C1", "sms"), ("C2", "phone"), ("C3", "app_push"), ("C6", "phone")):
        every = {
            "pushes",
            "rule_after_withdrawal",
            *REFUSAL_COUNTS,
            f"opt_out_on_{said}",
            "opt_out_all_channels",
        }
        assert wide[P(s)] == every, s
    # C4: its SMS opt-out stops the SMS alone
    assert wide[P("C4")] == {"pushes", "rule_channel_refused", *REFUSAL_COUNTS, "opt_out_on_sms"}
    # C5: the WeChat push on its own opt-in is compliant; the phone one still refused, on its own channel
    assert wide[P("C5")] == {"pushes", "rule_channel_refused", *REFUSAL_COUNTS, "opt_out_on_phone"}

    from policy import load_policy
    from policy.catalog import Catalog

    folder = _policy_copy(tmp_path)
    f = folder / "purposes.yaml"
    text = f.read_text(encoding="utf-8")
    assert text.count("withdrawal_scope: all_channels") == 1
    f.write_text(
        text.replace("withdrawal_scope: all_channels", "withdrawal_scope: channel"), encoding="utf-8"
    )
    narrow_policy = load_policy(folder)
    narrow = _refusers(_engine(narrow_policy, Catalog(narrow_policy)))
    # only those phoned on the channel they refused: the probe's 100 of 600
    assert narrow == {
        P(s): {"pushes", "rule_channel_refused", *REFUSAL_COUNTS, f"opt_out_on_{said}"}
        for s, said in (("C2", "phone"), ("C4", "sms"), ("C5", "phone"), ("C6", "phone"))
    }


def test_an_after_withdrawal_alert_names_the_channel_the_refusal_was_said_on(policy, catalog) -> None:
    """probe_u3 U3-5: customer C1 granted marketing on SMS and in the app, replied TD to an SMS (the
    gateway logs `marketing` on sms), and the app campaign reached them 25 h later. The analyst who
    checks C1's app_push consent finds "granted": the alert says where and when the refusal was said
    and that withdrawal_scope all_channels applied it to every channel. C2 refused in the app and C3
    for every channel, each pushed in the app: theirs say so, with nothing applied from elsewhere. C4's
    campaign reached them by SMS, then in the app: one refusal, met on its own channel and another.
    What fires is unchanged: each is the one after-withdrawal alert it was."""
    day = 24 * HOUR
    steps: list[Any] = [
        consent(s, at=-60 * day, channel=ch) for s in ("C1", "C2", "C3", "C4") for ch in ("sms", "app_push")
    ]
    steps += [consent(s, at=-day, channel="sms", status="withdrawn") for s in ("C1", "C4")]
    steps += [consent("C2", at=-day, channel="app_push", status="withdrawn")]
    steps += [consent("C3", at=-day, channel=None, status="withdrawn")]
    app = {"channel": "app_push", "campaign_id": "CMP-APP"}
    pushes = [push(s, at=HOUR, **app) for s in ("C1", "C2", "C3")]
    pushes += [push("C4", at=HOUR, campaign_id="CMP-APP"), push("C4", at=2 * HOUR, **app)]
    e = _engine(policy, catalog)
    alerts = final(run(e, *steps, pushes) + e.drain())
    by_subject = {a.subjects_sample[0]: a for a in alerts.values()}
    assert sorted(by_subject) == sorted(P(s) for s in ("C1", "C2", "C3", "C4"))
    refused_at = T0 - day
    said = "2025-12-31T00:00Z"  # T0 - 1 day, as summaries write a time
    c1 = by_subject[P("C1")]
    assert c1.severity.value == "high" and c1.counts["rule_after_withdrawal"] == 1
    assert (
        f"the last push came 25 h 0 min after the opt-out, said on sms at {said} and applied to every "
        "channel (withdrawal_scope all_channels)" in c1.summary
    ), c1.summary
    assert c1.counts["opt_out_ts"] == refused_at
    assert c1.counts["opt_out_on_sms"] == 1 and c1.counts["opt_out_all_channels"] == 1
    c2, c3 = by_subject[P("C2")], by_subject[P("C3")]
    assert c2.summary.endswith(f"after the opt-out, said on app_push at {said}"), c2.summary
    assert c2.counts["opt_out_on_app_push"] == 1 and "opt_out_all_channels" not in c2.counts
    assert c3.summary.endswith(f"after the opt-out, said for every channel at {said}"), c3.summary
    assert not {k for k in c3.counts if k.startswith("opt_out_on_") or k == "opt_out_all_channels"}
    c4 = by_subject[P("C4")]
    assert c4.counts["pushes"] == 2 and c4.counts["opt_out_on_sms"] == 1
    assert c4.counts["opt_out_all_channels"] == 1 and "applied to every channel" in c4.summary


def test_a_withdrawal_scope_on_a_purpose_the_bank_contacts_no_one_for_is_refused(tmp_path) -> None:
    from policy import PolicyError, load_policy

    folder = _policy_copy(tmp_path)
    f = folder / "purposes.yaml"
    old = "    legal_obligation: true\n  # spotting and stopping fraud"
    text = f.read_text(encoding="utf-8")
    assert old in text
    f.write_text(
        text.replace(
            old, "    legal_obligation: true\n    withdrawal_scope: channel\n  # spotting and stopping fraud"
        ),
        encoding="utf-8",
    )
    with pytest.raises(
        PolicyError, match=r"withdrawal_scope is for a purpose the bank contacts customers for"
    ):
        load_policy(folder)


# -- four eyes across branches, a branch's audience, the personalized flag, the clauses -------------
def staff(actor: str, org: str, role: str) -> Entitlement:
    path = ["HO"] if org == "HO" else ["HO", org]
    return Entitlement(actor_id=actor, ts=0, org_id=org, org_path=path, roles=[role], status="active")


TEAMS = [
    staff("B01S", "B01", "br_sms_submitter"),
    staff("B01A", "B01", "br_sms_approver"),
    staff("B02S", "B02", "br_sms_submitter"),
    staff("B02A", "B02", "br_sms_approver"),
    staff("HOA", "HO", "ho_sms_approver"),
]


def test_a_branch_sms_team_sees_only_its_own_branch_and_the_orgs_under_it(engine) -> None:
    """Seed 004 角色设置 分行④⑤: 分行短信管理 submits, 分行短信审核 approves 分行级 SMS: B01's team
    sending B02's campaign, or a campaign of S0201 under B02, to a B02 customer is not B01's to send;
    B02's own team sending either is, and so is head office's reviewer. The campaign org's place comes
    from the customer's path: the stream has no org tree."""
    engine.apply_reference("entitlements", refs("entitlements", TEAMS))
    subjects = [f"C{i}" for i in range(1, 7)]
    steps = [consent(c) for c in subjects] + [customer(c, ("HO", "B02", "B02A", "S0201")) for c in subjects]
    pushes = [
        push("C1", org_id="B02", submitter_id="B01S", approver_id="B01A"),
        push("C2", org_id="S0201", submitter_id="B01S", approver_id="B01A"),
        push("C3", org_id="B02", submitter_id="B02S", approver_id="B01A"),
        push("C4", org_id="B02", submitter_id="B02S", approver_id="B02A"),  # its own
        push("C5", org_id="S0201", submitter_id="B02S", approver_id="B02A"),  # one below it
        push("C6", org_id="B02A", submitter_id="B02S", approver_id="HOA"),  # head office sees all
    ]
    alerts = run(engine, *steps, pushes) + engine.drain()
    got = {a.subjects_sample[0]: a for a in final(alerts).values()}
    assert sorted(got) == sorted([P("C1"), P("C2"), P("C3")]) and rules(alerts) == {"four_eyes"}
    assert "submitter B01S (B01) holds no SMS role of the campaign's org B02" in got[P("C1")].summary
    assert "submitter B01S (B01) holds no SMS role of the campaign's org S0201" in got[P("C2")].summary
    assert "approver B01A (B01) holds no SMS role of the campaign's org B02" in got[P("C3")].summary


def test_a_departments_campaign_is_its_orgs(engine) -> None:
    """B01's retail department (organisation.yaml `department_form`) runs a campaign under its own
    name, its SMS team placed in it by HR: the campaign, the team and the approved audience are
    B01's, whatever case a feed writes them in (a review: a four-eyes alert said the campaign's org
    B01_RETAIL was on no org path)."""
    team = [
        Entitlement(actor_id=a, ts=0, org_id="B01_RETAIL", org_path=["HO", "b01", "B01_RETAIL"], roles=[r])
        for a, r in (("E1", "br_sms_submitter"), ("E2", "br_sms_approver"))
    ]
    engine.apply_reference("entitlements", refs("entitlements", team))
    steps = [consent("C1"), customer("C1"), consent("C2"), customer("C2", ("HO", "B02", "S0201"))]
    pushes = [
        push("C1", org_id="B01_RETAIL", approved_audience=["b01_retail"]),
        push("C2", org_id="B01_RETAIL", approved_audience=["B01"]),  # another branch's customer
    ]
    alerts = run(engine, *steps, pushes) + engine.drain()
    (a,) = final(alerts).values()
    assert a.subjects_sample == [P("C2")] and rules(alerts) == {"audience_outside_approval"}


def test_a_campaign_that_names_no_org_is_its_submitters(engine) -> None:
    """A probe's B01 SMS team sent a campaign whose log left `org_id` out to B02's customer: no
    four-eyes scope and no audience to judge, so nothing fired, where the same push naming B01 did.
    Its org is the submitter's, as HR has it: B02's customer is outside it; B01's is not."""
    team = [
        Entitlement(actor_id=a, ts=0, org_id="B01", org_path=["HO", "B01"], roles=[r])
        for a, r in (("E1", "br_sms_submitter"), ("E2", "br_sms_approver"))
    ]
    engine.apply_reference("entitlements", refs("entitlements", team))
    steps = [consent("C1"), customer("C1", ("HO", "B01", "S0101")), consent("C2"), customer("C2", ("HO", "B02", "S0201"))]  # fmt: skip
    alerts = run(engine, *steps, [push("C1", org_id=None), push("C2", org_id=None, n=1)]) + engine.drain()
    (a,) = final(alerts).values()
    assert a.subjects_sample == [P("C2")] and rules(alerts) == {"audience_outside_approval"}


def test_a_campaign_org_no_path_places_is_not_confirmed_where_customers_are_fed(policy, catalog) -> None:
    """A branch campaign whose org neither the subject, the submitter nor the approver sits in or
    under: its SMS roles cannot be shown to be of its level, and the alert says so (not silence);
    a deployment that feeds no customers has no tree to place it by, and two people are enough."""
    pushes = [push("C1", org_id="B03", submitter_id="B01S", approver_id="B01A")]
    bare = _engine(policy, catalog)
    bare.apply_reference("entitlements", refs("entitlements", TEAMS))
    assert run(bare, consent("C1"), pushes) + bare.drain() == []
    fed_engine = _engine(policy, catalog)
    fed_engine.apply_reference("entitlements", refs("entitlements", TEAMS))
    known = customer("C1", ("HO", "B01", "S0101"))  # C1 is B01's customer: B03 is on no path
    alerts = run(fed_engine, known, consent("C1"), pushes) + fed_engine.drain()
    assert rules(alerts) == {"four_eyes", "audience_outside_approval"}  # C1 is outside B03's too
    summaries = " ".join(a.summary for a in final(alerts).values())
    assert "the campaign's org B03 is on no org path the push's reference data gives" in summaries


def test_a_branch_teams_own_sub_branch_campaign_to_a_customer_not_on_the_stream_yet(policy, catalog) -> None:
    """A near miss (the reviewer): B02's SMS team sends its sub-branch S0201's campaign to a new
    customer whose record has not reached the customers stream: nothing places S0201, and as before
    the org was placed, anything but an org above the team's passes."""
    e = _engine(policy, catalog)
    e.apply_reference("entitlements", refs("entitlements", TEAMS))
    other = customer("C8", ("HO", "B01", "S0101"))  # the stream is fed; C9 is not on it yet
    pushes = [push("C9", org_id="S0201", submitter_id="B02S", approver_id="B02A")]
    assert run(e, other, consent("C9"), pushes) + e.drain() == []


def test_a_branch_campaign_approved_beyond_its_own_customers(engine) -> None:
    """Seed 004 角色设置 分行③: 分行营销管理 creates 分行级 list campaigns; only head office (总行③)
    bank-wide ones. B02's campaign approved for B01, or for head office, reaches B01's customer
    outside B02's remit; head office's campaign approved for B01, and B02's approved for a
    sub-branch under it, are near misses."""
    subjects = [f"C{i}" for i in range(1, 6)]
    steps = [consent(c, channel="app_push") for c in subjects]
    steps += [customer(c, ("HO", "B01", "B01A", "S0101")) for c in subjects[:3]]
    steps += [customer(c, ("HO", "B02", "B02A", "S0201")) for c in subjects[3:]]
    app = {"channel": "app_push", "approver_id": None}
    pushes = [
        push("C1", org_id="B02", approved_audience=["B01"], **app),
        push("C2", org_id="B02", approved_audience=["HO"], **app),
        push("C3", org_id="HO", approved_audience=["B01"], **app),
        push("C4", org_id="B02", approved_audience=["B02A"], **app),
        push("C5", org_id="B02", approved_audience=["S0201", "B02"], **app),
    ]
    alerts = run(engine, *steps, pushes) + engine.drain()
    got = {a.subjects_sample[0]: a for a in final(alerts).values()}
    assert sorted(got) == sorted([P("C1"), P("C2")]) and rules(alerts) == {"audience_outside_approval"}
    assert "approved for B01, outside the campaign's org B02 and the orgs under it" in got[P("C1")].summary
    assert "approved for HO, outside the campaign's org B02" in got[P("C2")].summary


def test_a_push_targeted_with_personal_data_is_personalized_whatever_its_flag_says(engine) -> None:
    """Seed 004 流程描述(4)使用③: a push chosen by the subject's own data is an automated,
    personalized one; its `personalized` flag is the producer's claim. Without an opt-out, a push
    flagged non-personalized but targeted with the customer's tier, tags and transactions has neither
    choice; one targeted with nothing is a plain push without a refusal; one with a
    non-personalized option is a plain push without a refusal as well."""
    steps = [consent(c) for c in ("C1", "C2", "C3", "C4")]
    plain = {"personalized": False, "opt_out_offered": False}
    pushes = [
        push("C1", data_used=["customer_segment", "marketing_tags", "transaction_record"], **plain),
        push("C2", **plain),
        push("C3", data_used=["customer_segment"], non_personalized_option=True, **plain),
        # the name and number that address an SMS choose no one by their features (a reviewer)
        push("C4", data_used=["customer_name", "mobile_phone"], **plain),
    ]
    alerts = run(engine, *steps, pushes) + engine.drain()
    got = {a.subjects_sample[0]: set(a.counts) - {"pushes"} for a in final(alerts).values()}
    assert got == {
        P("C1"): {"rule_personalized_without_choice"},
        P("C2"): {"rule_no_refusal_offered"},
        P("C3"): {"rule_no_refusal_offered"},
        P("C4"): {"rule_no_refusal_offered"},
    }
    c1 = next(a for a in final(alerts).values() if a.subjects_sample == [P("C1")])
    assert (
        "flagged non-personalized but targeted with customer_segment, marketing_tags, transaction_record"
        in (c1.summary)
    )


def _renamed_bank(tmp_path: Any, name_addresses: bool = True) -> Any:
    """The shipped folder as a second bank writes it: its name field `cust_name`, its number
    `mobile_no`, not collected for marketing, every file spelling them so."""
    from policy import load_policy

    folder = _policy_copy(tmp_path)
    renamed_ids(folder, {"customer_name": "cust_name", "mobile_phone": "mobile_no"})
    purposes = folder / "purposes.yaml"
    text = purposes.read_text(encoding="utf-8")
    old = "  mobile_no:         [account_service, authentication, customer_service, marketing]\n"
    assert old in text
    purposes.write_text(
        text.replace(old, "  mobile_no: [account_service, authentication, customer_service]\n"),
        encoding="utf-8",
    )
    if not name_addresses:
        classification = folder / "classification.yaml"
        text = classification.read_text(encoding="utf-8")
        old = "category: identity, addresses: true}"
        assert text.count(old) == 1
        classification.write_text(text.replace(old, "category: identity}"), encoding="utf-8")
    return load_policy(folder)


def test_what_addresses_a_push_is_the_policys_mark_not_the_shipped_field_id(tmp_path) -> None:
    """classification.yaml `addresses`: a second bank's `cust_name` greets the customer as the shipped
    `customer_name` does, and its `mobile_no` sends the SMS: neither targets the push, nor is either
    off-purpose where the bank did not list the number as collected for marketing (a probe's bank
    got `personalized_without_choice`, "targeted with cust_name", and "targeted with mobile_no, not
    collected for marketing"). Without the mark, the name is targeting as any other field."""
    from policy import load_policy
    from policy.catalog import Catalog

    plain = {"personalized": False, "opt_out_offered": False}
    shipped = [
        push("C1", data_used=["customer_name"], **plain),
        push("C2", data_used=["mobile_phone"], **plain),
    ]
    renamed = [push("C1", data_used=["cust_name"], **plain), push("C2", data_used=["mobile_no"], **plain)]
    got = {}
    for name, bank, pushes in (
        ("shipped", load_policy(), shipped),
        ("renamed", _renamed_bank(tmp_path / "a"), renamed),
        ("unmarked", _renamed_bank(tmp_path / "b", name_addresses=False), renamed),
    ):
        e = _engine(bank, Catalog(bank))
        alerts = run(e, consent("C1"), consent("C2"), pushes) + e.drain()
        got[name] = {
            a.subjects_sample[0]: (set(a.counts) - {"pushes"}, a.summary) for a in final(alerts).values()
        }
    assert {s: r for s, (r, _) in got["shipped"].items()} == {
        P("C1"): {"rule_no_refusal_offered"},
        P("C2"): {"rule_no_refusal_offered"},
    }
    assert {s: r for s, (r, _) in got["renamed"].items()} == {s: r for s, (r, _) in got["shipped"].items()}
    assert not any("targeted with" in summary for _, summary in got["renamed"].values())
    rules_c1, summary_c1 = got["unmarked"][P("C1")]
    assert rules_c1 == {"rule_personalized_without_choice"}
    assert "flagged non-personalized but targeted with cust_name" in summary_c1


def test_only_what_addresses_a_message_may_be_marked_so(tmp_path) -> None:
    """A mark that lets a field through a push's targeting unjudged is refused on data that addresses
    no message: an account number (金融账户, sensitive) so marked would target pushes unseen."""
    from policy import PolicyError, load_policy

    folder = _policy_copy(tmp_path)
    f = folder / "classification.yaml"
    old = "  payment_account_no:   {zh: 支付账号, class: C2, category: account}"
    text = f.read_text(encoding="utf-8")
    assert old in text
    f.write_text(text.replace(old, old[:-1] + ", addresses: true}"), encoding="utf-8")
    with pytest.raises(PolicyError, match=r"sensitive category account, which addresses no message"):
        load_policy(folder)


def test_every_rule_cites_seed_004_by_the_clauses_that_hold_its_text(policy) -> None:
    """Seed 004 has no (三) section for these texts: refusal is 流程描述(4)使用②, automated pushes ③,
    the collected purpose ⑩, beyond the original authorisation 流程描述(1)收集⑧, withdrawal
    基本规定(4)③. Each rule's first clause stays the primary law."""
    section = policy.detectors["offscope_marketing"]
    # each rule's clauses as quoted (their English beside them: test_policy.py checks it)
    specs = {
        rule: {"regulation": [c["zh"] for c in spec["regulation"]]}
        for rule, spec in section.params["rules"].items()
    }
    cited = [r for spec in specs.values() for r in spec["regulation"]] + [c.zh for c in section.regulation]
    assert not [r for r in cited if "(三)" in r]
    assert all(
        spec["regulation"][0].startswith(("《个人信息保护法》", "《广告法》")) for spec in specs.values()
    )
    assert any("基本规定(4)③: 基于客户同意处理" in r for r in specs["after_withdrawal"]["regulation"])
    off = specs["off_purpose"]["regulation"]
    assert any("流程描述(4)使用⑩: 使用个人金融信息时, 应当符合收集该信息的目的" in r for r in off)
    assert any("流程描述(1)收集⑧: 确需超出原授权范围" in r for r in off)
    assert any(
        "流程描述(4)使用③: 通过自动化决策方式" in r
        for r in specs["personalized_without_choice"]["regulation"]
    )
    assert any(
        "流程描述(4)使用②: 应当以适当方式供客户自主选择" in r for r in specs["no_consent"]["regulation"]
    )


def test_a_delay_under_a_second_is_said_in_milliseconds() -> None:
    """A probe's push 500 ms after the opt-out read "0 s after the opt-out", as if at once."""
    from detectors.offscope_marketing import _duration

    assert [_duration(ms) for ms in (500, 0, 1_500, 61_000, 5 * 3_600_000)] == [
        "500 ms", "0 ms", "1 s", "1 min", "5 h 0 min",
    ]  # fmt: skip


# -- a minor (seed 004 定义(10), 基本规定(4)①, 流程描述(1)③; retention.yaml `minors`) ------------------------
@pytest.mark.parametrize(
    ("born", "given", "expected"),
    [
        ("2013-06-01", ("subject", False), {"minor_marketed_without_consent"}),  # 12, the child's own tap
        ("2013-06-01", ("subject", True), {"minor_marketed_without_consent"}),  # own, though separate
        ("2013-06-01", ("guardian", True), set()),
        ("2013-06-01", ("guardian", False), {"minor_marketed_without_consent"}),
        ("2013-06-01", None, {"no_consent", "minor_marketed_without_consent"}),
        ("2012-01-01", ("subject", True), {"minor_marketed_without_consent"}),  # the 14th birthday: 13
        ("2011-12-31", ("subject", True), set()),  # 14 since today: the minor's own separate will do
        ("2011-12-31", ("subject", False), {"minor_marketed_without_consent"}),
        ("2008-01-02", ("subject", True), set()),  # 17
        ("2007-12-31", ("subject", False), set()),  # 18 since today: a bundled consent, as any adult's
        (None, ("subject", False), set()),  # core banking gives no birth date
        ("unknown", ("subject", False), set()),  # the customers stream does not know the subject
    ],
    ids=MINOR_CASES,
)
def test_a_push_to_a_minor_needs_a_separate_consent_a_guardians_under_14(
    engine, born, given, expected
) -> None:
    """A probe's 12-year-old got an app push on their own marketing consent and nothing fired. A
    minor's data (under 14 sensitive, seed 004 定义(10); from 14 the bank's reading of 流程描述(1)③):
    marketing with it asks a separate consent, under 14 the guardian's, aged on the bank's calendar
    day the day after the birthday (T0 is 08:00 on 1 January 2026 in Beijing); an adult's bundled
    consent is judged as before."""
    steps: list[Any] = []
    if born != "unknown":
        c1 = customer().model_copy(update={"birth_date": born})
        steps.append(c1)
    if given is not None:
        by, separate = given
        steps.append(consent(separate=separate, given_by=by))
    alerts = run(engine, *steps, [push(at=0)], [push("C9", at=2 * MIN)])
    assert rules(alerts) == expected
    if "minor_marketed_without_consent" in expected:
        (a,) = final(alerts).values()
        band = "under 14" if born > "2011-12-31" else "aged 14 to 17"
        assert a.severity.value == "high" and f"to a customer {band} without" in a.summary
        assert born not in a.summary  # the age band, never the birth date
        assert any(r.startswith("《个人信息保护法》第三十一条") for r in a.regulation)
        assert "Marketing push to a minor without separate consent" in a.title_en


@pytest.mark.parametrize("word", ["AUM", "日均资产", "月收入", "征信评分", "贷款余额", "信用卡额度", "房产"])
def test_a_push_targeted_by_the_words_a_marketing_platform_writes_is_off_purpose(engine, word) -> None:
    """A tagging platform names its features as it likes (AUM, 日均资产 for wealth tiers, 贷款余额 for
    loan campaigns): each is the catalog's field, collected for no marketing (a probe's 21 such pushes
    were silent as unknown fields)."""
    alerts = run(engine, consent("C1", channel=None), [push("C1", data_used=["customer_segment", word])])
    assert rules(alerts + engine.drain()) == {"off_purpose"}, word


@pytest.mark.parametrize(
    ("word", "plain", "expected"),
    [
        ("民族", False, {"off_purpose"}),  # read with the ID card, for the account and KYC alone
        ("家庭状况", False, set()),  # 身份信息 (定义(2)), which marketing may use
        ("透支记录", False, set()),  # 交易信息 (定义(6)), as the ledger is
        ("保单信息", False, set()),
        ("消费意愿", False, set()),  # 定义(9): derived to offer products
        ("电子邮箱", True, {"no_refusal_offered"}),  # what the message is addressed with: no targeting
        ("固定电话号码", True, {"no_refusal_offered"}),
    ],
)
def test_a_push_targeted_by_the_banks_own_words_for_its_data_is_judged_by_their_purposes(
    engine, word, plain, expected
) -> None:
    """Seed 004 定义(2)-(9)'s words, as a campaign platform names what chose a push, are catalog
    fields judged by what purposes.yaml says they were collected for (使用⑩); a push chosen by 民族
    was silent while the word was unknown. A non-personalized push naming only its address neither
    targets nor is off purpose; it lacks only the refusal (使用②)."""
    kw = {"personalized": False, "opt_out_offered": False} if plain else {}
    data = [word] if plain else ["customer_segment", word]
    alerts = run(engine, consent("C1", channel=None), [push("C1", data_used=data, **kw)])
    assert rules(alerts + engine.drain()) == expected, word
