"""Off-scope marketing through the Engine: each rule fires on a push that barely breaks it and stays
silent on one that barely keeps it; verdicts wait for the watermark so a late withdrawal counts."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import T0, fed, refs

from detectors import load_detectors
from schemas.models import Alert, Consent, Customer, MarketingPushEvent
from streams.engine import Engine
from streams.pseudonym import Pseudonymizer

HOUR, MIN = 3_600_000, 60_000
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
    return Consent(
        subject_id=subject, ts=T0 + at, purpose="marketing", channel=channel, **{"status": "granted", **kw}
    )


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
    assert any("第60条" in r for r in a.regulation) and any("(三)②" in r for r in a.regulation)


def test_a_withdrawal_arriving_once_the_watermark_passed_the_push_is_too_late(engine) -> None:
    alerts = run(engine, consent(), [push(at=0)], [push("C9", at=2 * MIN)])
    # judged up to 2 min - the lateness: the withdrawal, dated 10 min before the push, missed that by 11
    assert engine.apply_reference(
        "consents", refs("consents", [consent(at=-10 * MIN, status="withdrawn")])
    ) == [11 * MIN]
    assert engine.apply_reference("consents", refs("consents", [consent("C2", at=2 * MIN)])) == []
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
    """Every push is marketing: a customer who agreed to marketing on every channel (seed 004 (三)②)
    may get a wealth-advice push on WeChat, a channel the privacy policy names for marketing; one
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
    assert "rule_channel_not_covered" in by_subject[P("C3")]


def test_no_consent_versus_a_consent_for_another_channel(engine) -> None:
    alerts = run(engine, consent("C2", channel="app_push"), [push("C1", at=0), push("C2", at=0)])
    alerts += engine.drain()
    by_subject = {a.subjects_sample[0]: set(a.counts) for a in final(alerts).values()}
    assert "rule_no_consent" in by_subject[P("C1")]
    assert "rule_channel_not_covered" in by_subject[P("C2")]


def test_a_refused_channel_while_marketing_consent_stands(engine) -> None:
    steps = [consent(channel=None), consent(at=-HOUR, status="withdrawn")]
    alerts = run(engine, *steps, [push(at=0), push(at=MIN, channel="app_push")])
    alerts += engine.drain()
    (a,) = final(alerts).values()
    assert set(a.counts) == {"pushes", "rule_channel_refused", "opt_out_delay_s"} and a.counts["pushes"] == 1


def test_a_general_consent_covers_only_the_channels_the_privacy_policy_names(engine) -> None:
    alerts = run(engine, consent(channel=None), [push(at=0, channel="wechat"), push(at=1, channel="email")])
    alerts += engine.drain()
    assert rules(alerts) == {"channel_not_covered"} and final(alerts).popitem()[1].counts["pushes"] == 1
    # an email consent the subject gave themselves does cover email
    assert (
        run(engine, consent("C3", channel="email"), [push("C3", at=2, channel="email")]) + engine.drain()
        == []
    )


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


def test_a_push_naming_another_purpose_may_use_what_marketing_may(engine) -> None:
    """Every push is marketing: a wealth-advice push that greets the customer by name uses what the
    privacy policy lets marketing use (seed 004 §一.(二).3); loan data stays off-purpose."""
    advice = {"purpose": "wealth_advice", "channel": "app_push"}
    steps = [
        Consent(subject_id=s, ts=T0 - HOUR, purpose="wealth_advice", channel=None, status="granted")
        for s in ("C1", "C2")
    ]
    pushes = [
        push("C1", data_used=["customer_name", "assets"], **advice),
        push("C2", data_used=["customer_name", "loan_details"], **advice),
    ]
    alerts = run(engine, *steps, pushes)
    alerts += engine.drain()
    by_subject = {a.subjects_sample[0]: a for a in final(alerts).values()}
    assert list(by_subject) == [P("C2")] and by_subject[P("C2")].counts.get("rule_off_purpose") == 1


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
    pushes = [
        push("C1", at=0, approver_id=None),
        push("C2", at=0, approver_id="E1"),
        push("C3", at=0, approver_id="E2"),
        push("C4", at=0, approver_id="E1", channel="app_push"),
    ]
    steps = [consent(c, channel=None) for c in ("C1", "C2", "C3", "C4")]
    alerts = run(engine, *steps, pushes) + engine.drain()
    assert {a.subjects_sample[0] for a in final(alerts).values()} == {P("C1"), P("C2")}
    assert rules(alerts) == {"four_eyes"}


def test_an_audience_outside_the_campaign_approval(engine) -> None:
    steps = [
        *(consent(c, channel=None) for c in ("C1", "C2", "C3", "C4")),
        customer("C1", ("HO", "B02", "S0201")),
        customer("C2", ("HO", "B01", "B01A", "S0102")),
        customer("C3", ("HO", "B02", "S0202")),
    ]
    pushes = [
        push("C1", at=0, org_id="B01"),  # another branch's customer
        push("C2", at=0, org_id="B01"),  # a customer below the branch
        push("C3", at=0, org_id="B01", approved_audience=["B01", "S0202"]),  # named in the approval
        push("C4", at=0, org_id="B01"),  # not in the customers stream: not judged
    ]
    alerts = run(engine, *steps, pushes) + engine.drain()
    assert [a.subjects_sample for a in final(alerts).values()] == [[P("C1")]]
    assert rules(alerts) == {"audience_outside_approval"}


def test_several_rules_make_one_alert_that_names_them_all(engine) -> None:
    alerts = run(
        engine,
        [push(at=0, approver_id="E1", opt_out_offered=False, data_used=["credit_report"])],
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
    state = b"".join(k + (v or b"") for k, v in changes)
    assert b"C0000077" not in state and P("C0000077").encode() in state  # pseudonyms only
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
    """Every push is marketing (seed 004 (三)②: 拒绝接受营销的, 应当立即停止利用): one that names a
    service purpose the subject consented to still breaks their refusal of marketing; a refusal of
    SMS alone stops SMS only, a push before the refusal is in time, and a consent to the push's own
    purpose given after the refusal is the subject's later choice."""
    advice = {"purpose": "wealth_advice", "channel": "app_push"}
    steps = [
        Consent(subject_id=s, ts=T0 - 48 * HOUR, purpose="wealth_advice", channel=None, status="granted")
        for s in ("C1", "C2", "C3")
    ]
    steps += [consent(s, channel=None) for s in ("C1", "C2", "C3")]
    steps += [consent("C1", at=-HOUR, channel=None, status="withdrawn")]
    steps += [consent("C2", at=-HOUR, channel="sms", status="withdrawn")]
    steps += [consent("C3", at=HOUR, channel=None, status="withdrawn")]
    # C4 refused marketing, then chose wealth-advice pushes: the later choice stands
    steps += [consent("C4", at=-2 * HOUR, channel=None, status="withdrawn")]
    steps += [Consent(subject_id="C4", ts=T0 - HOUR, purpose="wealth_advice", channel=None, status="granted")]
    pushes = [push("C1", **advice), push("C2", **advice), push("C2", n=1, **{**advice, "channel": "sms"})]
    alerts = run(engine, *steps, [*pushes, push("C3", **advice), push("C4", **advice)])
    alerts += engine.drain()
    by_subject = {a.subjects_sample[0]: a for a in final(alerts).values()}
    assert sorted(by_subject) == sorted([P("C1"), P("C2")])
    assert by_subject[P("C1")].counts["rule_after_withdrawal"] == 1
    assert by_subject[P("C1")].counts["opt_out_delay_s"] == 3600
    c2 = by_subject[P("C2")].counts
    assert c2["pushes"] == 1 and c2["rule_channel_refused"] == 1  # the SMS only
