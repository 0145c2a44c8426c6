"""SDK over-collection: third-party SDKs in the bank's app collecting beyond the privacy policy.

Seed 004 §一.(一).6 declares the app's 11 SDKs, the fields each collects and why; §一.(一).7 says
anything not declared needs the user's consent first, and the policy binds only once the user
agrees to it (seed 004 preamble). C3 data and authentication helpers are never entrusted to a third
party (seed 004 流程描述(4)⑪, seed 001 §三.4(4)); what is collected in China stays in China (seed
004 §二.(一)1, seed 001 §二(5)); an app collects only what it needs, after consent (seed 001 §四.4).

Each observed field gets its PoliCheck label against the declaration of its SDK for the app
version (policy/sdk_declarations.py): clear and vague stay silent, omitted and incorrect fire.
Besides the labels it fires on an SDK the policy does not declare (for that app version), on
collection before the user agreed to the privacy policy, on C3 data or authentication helpers
reaching any SDK (critical, declared or not), on a host or country the declaration does not allow
(an undeclared SDK: a country other than the bank's home country), and on a device collected from
more often than the declaration's `max_per_device_hour`.

One alert per *episode*: (reported SDK, app version, rule, offending field set); it opens at the
first such observation, grows while they continue (a revision when the observations double, never
a new alert) and closes once none was seen for `quiet_hours` of event time. Its id is hash(rule,
SDK, app version, field set, first observation), so a replay reproduces it. State is keyed in the
task's store: `ep:` episodes, `dev:` a device's recent collection times (rate rule only).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from enum import StrEnum
from operator import attrgetter
from typing import Any, ClassVar, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, model_validator

from detectors.base import Context, Finding, Store, iso_second, n_of
from detectors.minors import consent_gap, minor_at
from policy.clause import Clause
from policy.model import CLASS_RANK, DetectorSection, JrClass, iso_country
from policy.sdk_declarations import Label, SdkDeclarations, bare_host
from schemas.models import SEVERITY_RANK, Attribution, ConsentStatus, Severity

HOUR = 3_600_000
EPISODE = "ep:"
DEVICE = "dev:"
UNKNOWN_FIELD = "(unknown field)"
NEVER = 1 << 62  # "as of the end of time": did the subject consent at all, later?
_TS = attrgetter("ts")


class Rule(StrEnum):
    undeclared_sdk = "undeclared_sdk"
    omitted_field = "omitted_field"
    incorrect_field = "incorrect_field"
    c3_or_auth_helper = "c3_or_auth_helper"
    before_consent = "before_consent"
    host_not_allowed = "host_not_allowed"
    country_not_allowed = "country_not_allowed"
    too_frequent = "too_frequent"
    permission_not_declared = "permission_not_declared"
    minor_collected_without_consent = "minor_collected_without_consent"


# rules whose observations are the fault, whatever fields they carried
_CARRIED_IS_THE_FAULT = frozenset(
    {
        Rule.undeclared_sdk,
        Rule.before_consent,
        Rule.host_not_allowed,
        Rule.country_not_allowed,
        Rule.minor_collected_without_consent,
    }
)


class RuleSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    severity: Severity
    title_zh: str
    title_en: str
    regulation: list[Clause] = Field(min_length=1, description="the clauses, each naming its seed")


class SdkOvercollectionParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    rules: dict[Rule, RuleSpec]
    quiet_hours: float = Field(gt=0, description="an episode closes after this long without a repeat")
    consent_purpose: str = Field(
        default="",
        description="the agreement (purposes.yaml `agreements`, by its id or a name) whose consents let "
        "the app's SDKs collect: the privacy policy's; unset, the one agreement purposes.yaml declares",
    )
    sample_size: int = Field(default=10, ge=0)
    evidence_limit: int = Field(default=50, ge=1)
    distinct_cap: int = Field(default=10_000, ge=1, description="distinct devices / subjects counted exactly")
    least_severity: dict[JrClass, Severity] = Field(
        default_factory=dict,
        description="an alert of what left in this class is at least this severe, whichever rule it breaks",
    )

    @model_validator(mode="after")
    def _every_rule(self) -> SdkOvercollectionParams:
        missing = [r.value for r in Rule if r not in self.rules]
        if missing:
            raise ValueError(f"rules lacks {missing}; give each its severity, titles and regulation")
        return self


class Episode:
    """One alert: observations of one reported SDK and app version breaking one rule with one field set."""

    __slots__ = (
        "rule",
        "sdk",
        "version",
        "fields",
        "start",
        "first",
        "last_seen",
        "observations",
        "labels",
        "devices",
        "subjects",
        "evidence",
        "notes",
        "peak",
        "revision",
        "emitted",
        "sent",
    )

    def __init__(self, rule: str, sdk: str, version: str, fields: list[str], start: int):
        self.rule, self.sdk, self.version, self.fields = rule, sdk, version, fields
        self.start = self.first = self.last_seen = start
        self.observations = 0
        self.labels: dict[str, int] = {}
        self.devices: list[str] = []
        self.subjects: list[str] = []
        self.evidence: list[str] = []
        self.notes: list[str] = []  # hosts, countries, a recognized name: what the summary cites
        self.peak: list[int] | None = None  # the rate rule's fullest device-hour: count, bound, first, last
        self.revision = 0
        self.emitted = 0  # observations in the last emitted revision
        self.sent: list[str] = []  # catalog fields its observations carried: what left, whatever the rule

    def to_json(self) -> dict[str, Any]:
        return {s: getattr(self, s) for s in self.__slots__}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Episode:
        ep = cls(d["rule"], d["sdk"], d["version"], d["fields"], d["start"])
        for s in cls.__slots__:
            if s in d:  # `first` came later: an older episode's is its start
                setattr(ep, s, d[s])
        return ep


def _how_told(ev: Any) -> str | None:
    """How capture traffic (docs/har.md) was told to be an SDK nobody declared, and where it went."""
    how = {Attribution.unknown: "unknown third party", Attribution.signature: "named by a tracker signature"}
    said = how.get(ev.attribution)
    where = " ".join(x for x in (ev.dest_host, ev.dest_country) if x)
    return f"{said} at {where}" if said and where else said


class RateHour(NamedTuple):
    """A device-hour past an SDK's declared rate: how many collections, the bound, its first and
    last collection (epoch ms) and their event ids (those a store from before they were kept lacks)."""

    collections: int
    limit: int
    first: int
    last: int
    event_ids: list[str]

    def __str__(self) -> str:
        return (
            f"{self.collections} collections by one device from {iso_second(self.first)} to {iso_second(self.last)}, "
            f"within an hour, over the {self.limit} a device-hour declared"
        )


def _peak(kept: list[int]) -> tuple[int, int, int, int, list[str]]:
    """An episode's kept fullest hour as a RateHour's fields, its ids in the evidence."""
    collections, limit, first, last = kept
    return collections, limit, first, last, []


def _timed(kept: Any) -> tuple[int, str]:
    """A device's kept collection as (time, event id); a store written before ids were kept holds
    the time alone."""
    return (kept[0], kept[1]) if isinstance(kept, list) else (kept, "")


class SdkOvercollectionDetector:
    kind: ClassVar[str] = "sdk_overcollection"
    inputs: ClassVar[dict[str, str]] = {"sdk": "sdk_id"}
    Params: ClassVar[type[BaseModel]] = SdkOvercollectionParams
    # it reports PFI leaving the bank or exposed to a third party: an OCSF Data Security Finding
    data_exposure: ClassVar[bool] = True
    actor_is: ClassVar[str] = "sdk"  # what its alerts' actor_id names (an employee's id otherwise)

    def __init__(self, section: DetectorSection, params: SdkOvercollectionParams, store: Store):
        self.section, self.p, self.store = section, params, store
        self.quiet_ms = int(params.quiet_hours * HOUR)
        self._decl: SdkDeclarations | None = None

    @staticmethod
    def load_value(data: Any) -> Any:
        return Episode.from_json(data) if isinstance(data, dict) and "rule" in data else data

    # -- events ---------------------------------------------------------------------------------
    def process(self, stream: str, events: Sequence[Any], ctx: Context) -> Iterable[Finding]:
        decl = self._decl = self._decl or ctx.catalog.sdk
        touched: dict[str, Episode] = {}
        # in time order: an app uploads a device's buffered collections in any order, and which of
        # them was the 61st of an hour, so the episode's start and its alert id, must not depend on it
        # (a probe's shuffled upload gave another alert than the same collections in order)
        for ev in sorted(events, key=_TS):
            labels, breaches = self._judge(decl, ev, ctx)
            for rule, fields, note in breaches:
                key = EPISODE + "|".join((rule, ev.sdk_id, ev.app_version, ",".join(fields)))
                ep = touched.get(key) or self.store.get(key)
                if ep is not None and ev.ts >= ep.last_seen + self.quiet_ms:
                    # quiet long enough by this SDK's own clock: that episode is over, a new one opens
                    yield self._finding(ep, closed=True)
                    touched.pop(key, None)
                    ep = None
                if ep is None:
                    ep = Episode(rule, ev.sdk_id, ev.app_version, fields, ev.ts)
                    self.store.put(key, ep)
                    ctx.timers.register(key, ev.ts + self.quiet_ms)
                self._note(ep, ev, labels, note)
                touched[key] = ep
        for key, ep in touched.items():
            self.store.touch(key)
            if ep.observations > ep.emitted:  # at most one revision per episode and batch
                yield self._finding(ep, closed=False)

    def _judge(
        self, decl: SdkDeclarations, ev: Any, ctx: Context
    ) -> tuple[dict[str, Label], list[tuple[str, list[str], str | RateHour | None]]]:
        """The PoliCheck label of each field, and the (rule, field set, note) breaches of the event."""
        sid, declared = decl.observed(ev.sdk_id, ev.app_version, ev.dest_host)
        # an id the catalog does not know may be a value typed into the wrong place (a card number):
        # it is judged, never copied into an alert (the rollups count its keyed fingerprint)
        fields = sorted({decl.field_id(f) or UNKNOWN_FIELD for f in ev.fields})
        breaches: list[tuple[str, list[str], str | RateHour | None]] = []
        secret = [f for f in fields if f in decl.c3_or_auth]
        if secret:  # seed 004 流程描述(4)⑪: never to a third party, declared or not
            breaches.append((Rule.c3_or_auth_helper, secret, None))
        if sid is None or declared is None:
            labels = dict.fromkeys(fields, Label.omitted)
            known = decl.recognize(ev.sdk_id, ev.dest_host)
            note = (
                f"recognized as {known}"
                if known
                else ("not shipped in this app version" if sid else _how_told(ev))
            )
            breaches.append((Rule.undeclared_sdk, [], note))  # seed 004 §一.(一).6-7
            # consent first and China's border bind every SDK, declared or not (seed 004 序言,
            # §二.(一)1): one the policy never named is held to its home country
            breaches += self._consent_breaches(ev, ctx)
            home = decl.sdks[sid].countries if sid else [ctx.catalog.policy.recipients.home_country]
            country = iso_country(ev.dest_country)
            if country and country not in home:
                breaches.append((Rule.country_not_allowed, [], f"country {country}"))
            return labels, breaches
        labels = {f: decl.label(sid, ev.app_version, f) for f in fields}
        for rule, label in ((Rule.omitted_field, Label.omitted), (Rule.incorrect_field, Label.incorrect)):
            hit = [f for f in fields if labels[f] is label and f not in decl.c3_or_auth]
            if hit:
                breaches.append((rule, hit, None))
        breaches += self._consent_breaches(ev, ctx)
        d = decl.sdks[sid]
        if ev.dest_host and not decl.host_allowed(sid, ev.dest_host):
            breaches.append((Rule.host_not_allowed, [], f"host {bare_host(ev.dest_host)}"))  # a URL's host
        country = iso_country(ev.dest_country)
        if country and country not in d.countries:
            breaches.append((Rule.country_not_allowed, [], f"country {country}"))
        if ev.permissions and (extra := decl.undeclared_permissions(sid, ev.app_version, ev.permissions)):
            breaches.append((Rule.permission_not_declared, [], f"permission {', '.join(extra)}"))
        if d.max_per_device_hour and (hour := self._too_often(sid, ev, d.max_per_device_hour, ctx)):
            breaches.append((Rule.too_frequent, [], hour))
        return labels, breaches

    def _consent_breaches(self, ev: Any, ctx: Context) -> list[tuple[str, list[str], str | None]]:
        """No agreement to the privacy policy behind the collection; else, for a logged-in minor,
        an agreement that is not the one the law asks of a minor's data."""
        if why := self._without_consent(ev, ctx):
            return [(Rule.before_consent, [], why)]
        if why := self._minor_without_consent(ev, ctx):
            return [(Rule.minor_collected_without_consent, [], why)]
        return []

    def _minor_without_consent(self, ev: Any, ctx: Context) -> str | None:
        """Why a logged-in customer's collection lacks the consent a minor's needs, or None: a
        minor's data is collected only with a separate consent, under 14 the guardian's (seed 004
        流程描述(1)③; under 14 it is sensitive too, 定义(10); retention.yaml `minors`,
        detectors/minors.py), so a child's
        own tap on "agree" to the privacy policy lets no SDK collect from them (a probe's 12-year-old's
        location and phone number reached the analytics SDK unseen). Only an observation that names
        its customer (`subject_id`) can be aged."""
        minor = minor_at(ev.subject_id, ev.ts, ctx)
        if minor is None:
            return None
        purpose = self.p.consent_purpose
        why = consent_gap(minor, ctx.consent_to_use(ev.subject_id, purpose, ev.ts), purpose)
        return None if why is None else f"a logged-in customer {minor.band} without {minor.need}: {why}"

    def _without_consent(self, ev: Any, ctx: Context) -> str | None:
        """Why the collection had no agreement to the policy behind it, or None. Seed 004 preamble
        and §一.(一): collection starts only after the user agrees; §五.(三): once they withdraw
        (关闭授权), it stops. The app's own flag, and the consents stream where it knows the
        subject: a withdrawal in force, or no agreement as of the collection but one later."""
        if not ev.policy_consented:
            return "the app reported no agreement to the privacy policy"
        if ev.subject_id is None:
            return None
        now = ctx.consent_to_use(ev.subject_id, self.p.consent_purpose, ev.ts)
        if now is not None:
            return "after the user withdrew consent" if now.status is ConsentStatus.withdrawn else None
        if ctx.consent_to_use(ev.subject_id, self.p.consent_purpose, NEVER) is not None:
            return "before the user agreed to the privacy policy"
        return None

    def _too_often(self, sid: str, ev: Any, limit: int, ctx: Context) -> RateHour | None:
        """The fullest sliding hour holding this collection when it holds more of the device's
        collections than the declared bound, else None. A device's buffered upload arrives late: its
        hours are those around its own time, not the hour before the newest collection seen (later
        ones are not in its hour). A device collects once in a millisecond: an upload again of the
        same time under a new event id is a copy (a probe's buffer re-sent 40 collections: 80 in
        the hour, a false alarm). The hour keeps its event ids: an analyst checks the rate on them."""
        key = DEVICE + sid + "|" + ev.device_id
        seen = dict(map(_timed, self.store.get(key, [])))
        seen.setdefault(ev.ts, ev.event_id)
        times = sorted(seen)
        fullest = max(
            (
                (bisect_right(times, end) - bisect_right(times, end - HOUR), end)
                for end in times
                if ev.ts <= end < ev.ts + HOUR
            ),
            default=(0, 0),
        )
        # the bound plus one in the newest hour is all a verdict needs
        recent = [t for t in times if t > times[-1] - HOUR][-(limit + 1) :]
        self.store.put(key, [[t, seen[t]] for t in recent])
        ctx.timers.register(key, recent[-1] + HOUR)
        count, end = fullest
        if count <= limit:
            return None
        hour = times[bisect_right(times, end - HOUR) : bisect_right(times, end)]
        return RateHour(count, limit, hour[0], end, [seen[t] for t in hour if seen[t]])

    def _note(self, ep: Episode, ev: Any, labels: dict[str, Label], note: str | RateHour | None) -> None:
        ep.observations += 1
        ep.last_seen = max(ep.last_seen, ev.ts)
        ep.first = min(ep.first, ev.ts)  # a device's buffered upload may be older than the start
        for label in labels.values():
            ep.labels[label] = ep.labels.get(label, 0) + 1
        cap = self.p.distinct_cap
        if len(ep.devices) < cap and ev.device_id not in ep.devices:
            ep.devices.append(ev.device_id)
        if ev.subject_id is not None and len(ep.subjects) < cap and ev.subject_id not in ep.subjects:
            ep.subjects.append(ev.subject_id)
        if isinstance(note, RateHour):
            self._note_rate(ep, note)
        elif note and note not in ep.notes and len(ep.notes) < 5:
            ep.notes.append(note)
        if len(ep.evidence) < self.p.evidence_limit and ev.event_id not in ep.evidence:
            ep.evidence.append(ev.event_id)
        new = [f for f in labels if f != UNKNOWN_FIELD and f not in ep.sent]
        if new and len(ep.sent) < self.p.distinct_cap:
            ep.sent = sorted([*ep.sent, *new])

    def _note_rate(self, ep: Episode, hour: RateHour) -> None:
        """The fullest device-hour is what the alert states, and its collections are the evidence
        that makes it, past `evidence_limit` if need be: the bound plus two ids at most, as a
        device's state keeps the bound plus one (the episode's later collections stay within
        `evidence_limit`)."""
        if ep.peak is None or hour.collections > ep.peak[0]:
            ep.peak = [hour.collections, hour.limit, hour.first, hour.last]
        kept = set(ep.evidence)
        room = max(self.p.evidence_limit, len(hour.event_ids)) - len(ep.evidence)
        ep.evidence += [i for i in hour.event_ids if i not in kept][: max(room, 0)]

    # -- time -----------------------------------------------------------------------------------
    def on_timer(self, key: str, deadline_ms: int, ctx: Context) -> Iterable[Finding]:
        """Close an episode quiet for `quiet_hours`; forget a device's rate window once it emptied."""
        value = self.store.get(key)
        if value is None:
            return
        if key.startswith(DEVICE):
            if _timed(value[-1])[0] + HOUR <= ctx.watermark:
                self.store.delete(key)
            return
        due = value.last_seen + self.quiet_ms
        if due <= ctx.watermark:
            self.store.delete(key)
            yield self._finding(value, closed=True)
        else:
            ctx.timers.register(key, due)

    # -- output ---------------------------------------------------------------------------------
    def _class_of(self, fields: Sequence[str]) -> JrClass:
        """The highest class among `fields` (C1 for none, or none classified)."""
        decl = self._decl
        classes = [c for f in fields if decl and f in decl.fields and (c := decl.fields[f].jr_class)]
        return max(classes, key=CLASS_RANK.__getitem__, default=JrClass.C1)

    def _finding(self, ep: Episode, closed: bool) -> Finding:
        ep.revision += 1
        ep.emitted = ep.observations
        spec = self.p.rules[Rule(ep.rule)]
        # the class of what left, not only of the fields the rule names: an undeclared SDK or a wrong
        # host carrying a phone number sent C2 data
        carried = [*ep.fields, *ep.sent]
        top = self._class_of(carried)
        # what the rule holds against the SDK: the fields it names, or where it names none and the
        # observations are the fault (an undeclared SDK, a wrong host or country, before consent),
        # all they carried; a declared phone number beside an omitted battery level is no C2 breach
        beyond = ep.fields or (ep.sent if Rule(ep.rule) in _CARRIED_IS_THE_FAULT else [])
        least = self.p.least_severity.get(self._class_of(beyond), spec.severity)
        what = f": {', '.join(ep.fields)}" if ep.fields else ""
        # a rule that names no fields (host, country, an undeclared SDK) says what its observations carried
        carried_part = f"; carried {', '.join(ep.sent)}" if ep.sent and not ep.fields else ""
        said = ep.notes + ([str(RateHour(*_peak(ep.peak)))] if ep.peak else [])
        notes = f" ({'; '.join(said)})" if said else ""
        labels = ", ".join(f"{k} {v}" for k, v in sorted(ep.labels.items()))
        # the rate rule's observations are the collections of its fullest hour, all kept as evidence,
        # not only those past the bound (a new user read "1 observation" beside a rate of 61)
        seen = max(ep.observations, len(ep.evidence))
        summary = (
            f"SDK {ep.sdk}, app version {ep.version}. {spec.title_en}{what}{notes}{carried_part}; "
            f"{n_of(seen, 'observation')} from {n_of(len(ep.devices), 'device')}; field labels: {labels or 'none'}"
        )
        counts = {"observations": seen, "devices": len(ep.devices)}
        if ep.peak:
            counts |= {"device_hour_collections": ep.peak[0], "device_hour_declared": ep.peak[1]}
        counts |= {f"label_{k}": v for k, v in sorted(ep.labels.items())}
        counts |= {f"field_{f}": ep.observations for f in ep.fields}
        return Finding(
            detector=self.kind,
            rule_id=f"{self.section.rule_id}.{ep.rule}",
            key=f"{ep.sdk}@{ep.version}/{ep.rule}/{','.join(ep.fields)}",
            window_start=ep.start,
            window_end=ep.last_seen + self.quiet_ms,
            # what left weighs with the rule: an ID number an SDK's declaration omits is no battery
            # level (a probe's was medium, the same number the policy says the SDK never gets high)
            severity=max(spec.severity, least, key=SEVERITY_RANK.__getitem__),
            revision=ep.revision,
            closed=closed,
            summary=summary,
            jr_class=top.value,
            actor_id=ep.sdk,
            subject_count=len(ep.subjects),
            subject_sample=ep.subjects[: self.p.sample_size],
            subjects=list(ep.subjects),
            # the fields the rule names, or, for one that names none, what its observations carried
            fields=list(ep.fields or ep.sent),
            counts=counts,
            evidence_event_ids=list(ep.evidence),
            event_count=seen,
            first_seen=ep.first,
            last_seen=ep.last_seen,
            title_zh=spec.title_zh,
            title_en=spec.title_en,
            regulation=spec.regulation,
        )
