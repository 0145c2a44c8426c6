"""As-of registries: a batch lookup gives what one lookup per (key, time) gives."""

from __future__ import annotations

from typing import Any

from conftest import T0, entitlement, refs

from schemas.models import Consent
from streams.registries import AsOfRegistry, ConsentRegistry


def test_a_batch_lookup_agrees_with_one_lookup_each() -> None:
    registry: AsOfRegistry = AsOfRegistry("actor_id")
    versions = [
        entitlement("once", ts=T0),
        entitlement("twice", ts=T0),
        entitlement("twice", role="wealth_manager", ts=T0 + 1000),
        entitlement("late", ts=T0 + 5000),
    ]
    for record in refs("entitlements", versions):
        registry.put(record)
    keys = ["once", "twice", "late", "nobody"]
    times = [T0 - 1, T0, T0 + 999, T0 + 1000, T0 + 4999, T0 + 5000, T0 + 10**9]
    pairs = [(k, t) for k in keys for t in times]
    found = registry.as_of_many([k for k, _ in pairs], [t for _, t in pairs])
    assert found == [registry.as_of(k, t) for k, t in pairs]
    assert found[times.index(T0 + 999) + len(times)].roles == ["lobby_manager"]  # "twice" before its change
    assert found[times.index(T0 + 1000) + len(times)].roles == ["wealth_manager"]
    assert sum(v is None for v in found) == 1 + 1 + 5 + len(times)  # before a first version, or unknown


def test_a_separate_consent_stands_until_withdrawn() -> None:
    """A bundled grant after a separate one (the privacy policy accepted again) is no withdrawal:
    read as separate, before and after a prune; a withdrawal ends it, even one that arrives late,
    and a grant after the withdrawal is only what it says."""

    def c(ts: int, status: str = "granted", separate: bool = False) -> Consent:
        return Consent(subject_id="C1", ts=T0 + ts, purpose="wealth_advice", status=status, separate=separate)

    key = ("p_C1", "wealth_advice", None)
    registry = ConsentRegistry()
    for record in refs("consents", [c(0, separate=True), c(100), c(300)]):
        record.subject_id = "p_C1"
        registry.put(record)
    assert [registry.as_of(key, T0 + t).separate for t in (0, 100, 300)] == [True, True, True]
    found = registry.as_of_many([key, key], [T0 + 150, T0 + 400])
    assert found == [registry.as_of(key, T0 + 150), registry.as_of(key, T0 + 400)] and found[1].separate
    late = refs("consents", [c(200, status="withdrawn")])[0]
    late.subject_id = "p_C1"
    registry.put(late)  # withdrawn in between: the grant after it is bundled, and only that
    assert [registry.as_of(key, T0 + t).separate for t in (100, 200, 300)] == [True, False, False]
    assert registry.as_of(key, T0 + 300).status.value == "granted"

    kept = ConsentRegistry()
    for record in refs("consents", [c(0, separate=True), c(100), c(200)]):
        record.subject_id = "p_C1"
        kept.put(record)
    assert kept.prune(T0 + 250) == 0  # the version kept stands on the separate grant: kept too
    assert kept.as_of(key, T0 + 300).separate
    late = refs("consents", [c(150, status="withdrawn")])[0]
    late.subject_id = "p_C1"
    kept.put(late)  # a withdrawal arriving after the prune still ends it
    assert not kept.as_of(key, T0 + 300).separate and kept.as_of(key, T0 + 120).separate
    assert kept.prune(T0 + 250) == 3  # now nothing before the bundled grant at 200 is needed


def test_a_bundled_grant_on_one_channel_key_keeps_a_separate_consent_on_the_other(catalog) -> None:
    """`Context.consent` reads a channel's own record and the purpose's general one: a separate
    consent on either stands through a bundled grant on the other, until a withdrawal on the
    channel's own record or the general one."""
    from detectors.base import Context, References

    references = References(AsOfRegistry("actor_id"), ConsentRegistry(), AsOfRegistry("customer_id"))

    def c(subject: str, ts: int, channel: str | None, **kw: Any) -> Consent:
        return Consent(
            subject_id=subject,
            ts=T0 + ts,
            purpose="marketing",
            channel=channel,
            **{"status": "granted", **kw},
        )

    for record in refs(
        "consents",
        [
            c("C1", 0, "sms", separate=True),
            c("C1", 100, None),
            c("C2", 0, None, separate=True),
            c("C2", 100, "sms"),
            c("C3", 0, None, separate=True),
            c("C3", 50, "sms", status="withdrawn"),
            c("C3", 100, "sms"),
        ],
    ):
        references.consents.put(record)
    ctx = Context(catalog, references, None)  # type: ignore[arg-type]
    found = {s: ctx.consent(s, "marketing", "sms", T0 + 200) for s in ("C1", "C2", "C3")}
    assert [found[s].separate for s in ("C1", "C2")] == [True, True]
    assert found["C1"].ts == T0 + 100 and found["C2"].ts == T0 + 100  # the newer record, read as separate
    assert not found["C3"].separate  # withdrawn on SMS since: the SMS grant after it is only bundled
