"""As-of registries: a batch lookup gives what one lookup per (key, time) gives."""

from __future__ import annotations

from typing import Any

from conftest import T0, entitlement, refs

from schemas.models import Approval, Consent
from streams.registries import AsOfRegistry, ConsentRegistry, EntitlementRegistry


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


def test_an_approvals_grant_is_where_the_versions_carrying_it_began_without_a_break() -> None:
    """An approval's grant is the earliest version carrying it since it was last absent: HR's
    re-sends carry it on, a version without it ends the run, a version put late between two others
    ends or joins one, and neither a prune nor the org tree placing the earliest version kept again
    moves it."""
    registry = EntitlementRegistry()
    carrying = [["AP1"], ["ap1"], [], ["AP1", "AP2"], ["AP1"]]  # its code in any case: one approval

    def version(t: int, ids: list[str]) -> Any:
        grants = [
            Approval(approval_id=i, purpose="complaint_handling", max_records=5, expires_ts=T0 + 10**9,
                     approver_id="E900001", categories=["property"], systems=["core_banking"])
            for i in ids
        ]  # fmt: skip
        return refs("entitlements", [entitlement("e1", ts=T0 + t, approvals=grants)])[0]

    for t, ids in enumerate(carrying):
        registry.put(version(t, ids))
    grant = lambda t, ap="AP1": g - T0 if (g := registry.granted("e1", T0 + t, ap)) is not None else None  # noqa: E731
    assert [grant(t) for t in range(5)] == [0, 0, None, 3, 3]
    assert [grant(3, "ap2"), grant(4, "AP2"), grant(-1)] == [3, None, None]
    assert registry.granted("nobody", T0, "AP1") is None
    registry.put(version(2, ["AP1"]))  # HR's correction: it was never revoked
    assert [grant(t) for t in range(5)] == [0, 0, 0, 0, 0]
    registry.put(version(1, []))  # revoked a day after all
    assert [grant(t) for t in range(5)] == [0, None, 2, 2, 2]
    assert registry.prune(T0 + 3) == 3  # the versions that carried it since its grant forgotten, it not
    assert [grant(t) for t in range(2, 5)] == [None, 2, 2]
    registry.put(version(3, ["AP1", "AP2"]))  # the earliest kept, placed again at its time
    assert [grant(t) for t in range(3, 5)] == [2, 2] and grant(3, "AP2") == 3


def test_who_signed_an_approval_is_found_as_of_the_time_and_after_a_prune_or_tombstone() -> None:
    """`signed`: the record carrying the approval its approver signed, its code in any case, as of
    the time asked (not before it was carried, nor after a version without it); a prune keeps what
    the kept versions carry, a tombstone of the holder forgets it."""
    registry = EntitlementRegistry()

    def version(actor: str, t: int, ids: list[str], approver: str = "E900001") -> Any:
        grants = [
            Approval(approval_id=i, purpose="marketing", max_records=5, expires_ts=T0 + 10**9,
                     approver_id=approver, categories=["contact"], systems=["crm"])
            for i in ids
        ]  # fmt: skip
        return refs("entitlements", [entitlement(actor, ts=T0 + t, approvals=grants)])[0]

    for record in (version("e1", 0, []), version("e1", 1, ["MK-1"]), version("e1", 3, [])):
        registry.put(record)
    registry.put(version("e2", 1, ["MK-2"], approver="E900002"))
    holder = lambda who, t, ap="mk-1": (f := registry.signed(who, ap, T0 + t)) and f[0].actor_id  # noqa: E731
    assert [holder("E900001", t) for t in range(4)] == [None, "e1", "e1", None]
    assert registry.signed("E900001", "MK-1", T0 + 1)[1].approval_id == "MK-1"  # type: ignore[index]
    assert [holder("E900002", 1), holder("E900001", 1, "MK-2"), holder("e1", 1)] == [None, None, None]
    assert holder("E900002", 1, "MK-2") == "e2"
    assert registry.prune(T0 + 3) == 2 and holder("E900001", 3) is None  # its carrying versions pruned
    assert holder("E900002", 1, "MK-2") == "e2"
    assert registry.forget(["e2"]) == 1 and holder("E900002", 1, "MK-2") is None
    assert registry._signed == {}  # nothing left that a kept version carries


def test_what_the_engine_made_of_an_entitlement_version_goes_with_it() -> None:
    """The versions read as the new post (`at_new_post`) are kept while their versions are: a prune
    keeps the one in force at its horizon, and its mark; a tombstone forgets both."""
    registry = EntitlementRegistry()
    for record in refs("entitlements", [entitlement("e1", ts=T0 + i) for i in range(3)]):
        registry.put(record)
    registry.new_posts |= {("e1", T0 + 1), ("e1", T0 + 2)}
    assert registry.prune(T0 + 1) == 1 and registry.new_posts == {("e1", T0 + 1), ("e1", T0 + 2)}
    assert registry.prune(T0 + 2) == 1 and registry.new_posts == {("e1", T0 + 2)}
    assert registry.forget(["e1"]) == 1 and registry.new_posts == set()


def consents(*records: Consent) -> Any:
    """A Context over these consents (reference records as the engine keeps them)."""
    from detectors.base import Context, References

    references = References(AsOfRegistry("actor_id"), ConsentRegistry(), AsOfRegistry("customer_id"))
    for record in refs("consents", list(records)):
        references.consents.put(record)
    return Context(None, references, None)  # type: ignore[arg-type]


def c(
    ts: int, subject: str = "C1", channel: str | None = None, purpose: str = "wealth_advice", **kw: Any
) -> Consent:
    kw = {"status": "granted", **kw}
    return Consent(subject_id=subject, ts=T0 + ts, purpose=purpose, channel=channel, **kw)


def test_a_separate_consent_stands_until_withdrawn() -> None:
    """A bundled grant after a separate one (the privacy policy accepted again) is no withdrawal:
    read as separate, before and after a prune; a withdrawal ends it, even one that arrives late,
    and a grant after the withdrawal is only what it says. The registry keeps records as received."""
    ctx = consents(c(0, separate=True), c(100), c(300))
    separate = lambda t: ctx.consent("C1", "wealth_advice", None, T0 + t).separate  # noqa: E731
    assert [separate(t) for t in (0, 100, 300)] == [True, True, True]
    assert ctx.refs.consents.as_of(("C1", "wealth_advice", None), T0 + 300).separate is False
    ctx.refs.consents.put(refs("consents", [c(200, status="withdrawn")])[0])  # late, in between
    assert [separate(t) for t in (100, 300)] == [True, False]
    assert ctx.consent("C1", "wealth_advice", None, T0 + 300).status.value == "granted"

    kept = consents(c(0, separate=True), c(100), c(200))
    assert kept.refs.consents.prune(T0 + 250) == 0  # the version kept stands on the separate grant: kept too
    assert kept.consent("C1", "wealth_advice", None, T0 + 300).separate
    kept.refs.consents.put(refs("consents", [c(150, status="withdrawn")])[0])  # after the prune
    assert not kept.consent("C1", "wealth_advice", None, T0 + 300).separate
    assert kept.consent("C1", "wealth_advice", None, T0 + 120).separate
    assert kept.refs.consents.prune(T0 + 250) == 3  # now nothing before the bundled grant at 200 is needed


def test_a_bundled_grant_on_one_channel_key_keeps_a_separate_consent_on_the_other() -> None:
    """`Context.consent` reads a channel's own record and the purpose's general one: a separate
    consent on either stands through a bundled grant on the other, until a withdrawal on the
    channel's own record or the general one."""
    ctx = consents(
        c(0, "C1", "sms", "marketing", separate=True),
        c(100, "C1", None, "marketing"),
        c(0, "C2", None, "marketing", separate=True),
        c(100, "C2", "sms", "marketing"),
        c(0, "C3", None, "marketing", separate=True),
        c(50, "C3", "sms", "marketing", status="withdrawn"),
        c(100, "C3", "sms", "marketing"),
        c(0, "C4", "sms", "marketing", separate=True),
        c(50, "C4", None, "marketing", status="withdrawn"),
        c(100, "C4", "sms", "marketing"),
    )
    found = {s: ctx.consent(s, "marketing", "sms", T0 + 200) for s in ("C1", "C2", "C3", "C4")}
    assert [found[s].separate for s in ("C1", "C2")] == [True, True]
    assert found["C1"].ts == T0 + 100 and found["C2"].ts == T0 + 100  # the newer record, read as separate
    assert not found["C3"].separate  # withdrawn on SMS since: the SMS grant after it is only bundled
    assert not found["C4"].separate  # withdrawn for every channel since: that ends the SMS one too


def test_a_use_reads_a_contact_purposes_separate_grant_on_any_channel(catalog) -> None:
    """Marketing's channels are where the customer may be contacted (purposes.yaml): a separate
    grant standing on sms is consent to marketing after a bundled grant on app_push too (the
    review's case), and an opt-out of one channel leaves the other's. For a purpose without
    channels a channel is where the customer said it: the newest word decides."""
    ctx = consents(
        c(0, channel="sms", purpose="marketing", separate=True),
        c(100, channel="app_push", purpose="marketing"),
    )
    ctx.catalog = catalog
    got = ctx.consent_to_use("C1", "marketing", T0 + 200)
    assert got is not None and got.separate and got.channel == "sms"
    ctx.refs.consents.put(
        refs("consents", [c(150, channel="app_push", purpose="marketing", status="withdrawn")])[0]
    )
    assert ctx.consent_to_use("C1", "marketing", T0 + 200).status.value == "granted"
    said = consents(
        c(0, channel="app_push", separate=True), c(100, channel="sms", status="withdrawn"), c(0, subject="C2")
    )
    said.catalog = catalog
    assert said.consent_to_use("C1", "wealth_advice", T0 + 200).status.value == "withdrawn"
    assert (
        said.consent_to_use("C2", "wealth_advice", T0 + 200).status.value == "granted"
    )  # no channel: its record


def test_forgetting_a_key_forgets_every_version_and_a_subjects_every_consent() -> None:
    """A tombstone's key: an employee's every version; a subject's consents for every purpose and
    channel (a registry keyed by several attributes forgets by the first); another key stays."""
    ents = AsOfRegistry("actor_id")
    for e in refs("entitlements", [entitlement("e1"), entitlement("e1", ts=T0), entitlement("e2")]):
        ents.put(e)
    assert ents.forget({"e1", "nobody"}) == 1
    assert ents.as_of("e1", T0 + 1) is None and ents.as_of("e2", T0) is not None
    registry = ConsentRegistry()
    for r in refs("consents", [c(0), c(10, status="withdrawn"), c(0, purpose="marketing", channel="sms")]):
        registry.put(r)
    registry.put(refs("consents", [c(0, subject="C2")])[0])
    assert registry.forget({"C1"}) == 2
    assert len(registry) == 1 and registry.as_of(("C2", "wealth_advice", None), T0) is not None


def test_a_customer_list_re_sent_unchanged_each_night_is_one_version() -> None:
    """A soak's customer export, every customer stamped with the night's date, held a copy of the
    list a night until the prune (91 copies, 240 MB by day 39): a re-send that says what the
    latest version says is none, and the version in force stands from its own time. A change, or
    a re-send of an older version after it, is a version as before."""
    from schemas.models import Customer

    def cust(ts: int, org: str = "S0101") -> Customer:
        return Customer(
            customer_id="C1", ts=ts, org_id=org, org_path=["H", "B01", org], birth_date="1990-01-01"
        )

    registry: AsOfRegistry = AsOfRegistry("customer_id")
    for night in range(30):
        registry.put(cust(T0 + night * 86_400_000))
    assert registry.history("C1") == [(T0, cust(T0))]
    registry.put(cust(T0 + 40 * 86_400_000, org="S0102"))
    registry.put(cust(T0 + 41 * 86_400_000))  # moved back: a version again
    assert [r.org_id for _, r in registry.history("C1")] == ["S0101", "S0102", "S0101"]
    assert registry.as_of("C1", T0 + 20 * 86_400_000).ts == T0
