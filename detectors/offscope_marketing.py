"""Off-scope marketing: a push to a subject that their consent, the data's purpose or the campaign's
approval does not cover.

Marketing use needs the subject's choice and stored authorization, and stops at once when they
refuse (seed 004 (三)②); automated personalized pushes offer a non-personalized option or an easy
refusal (seed 004 (三)③, seed 000 (5)); data is used only for the purpose it was collected for
(seed 004 (三)⑧⑩); a marketing SMS is submitted by one role and approved by another, each of the
campaign's level (seed 004 掌上银行家角色设置: 总行/分行短信管理 submits, 总行/分行短信审核 approves
全行级/分行级 SMS). Seed 001 §五.1 (金融消保办法第60条) fines each of these. Every rule, its severity, titles and clauses are in policy/detectors/offscope_marketing.yaml.

A push is judged against the subject's consent *as of its own time*, but only once the task's
watermark has passed that time: a withdrawal dated before the push that reaches the consents
stream after it, within the allowed lateness, still counts (the runtime reads the reference
streams to their end before each batch and before each quiet tick, so it is applied before the
timer fires). Pushes wait a batch at a time in the task's inbox (detectors/inbox.py), with one
timer for the task; a subject has state only while it has an open episode.

One alert per subject and campaign *episode*: offending pushes of one campaign to one subject no
more than `episode_gap_hours` apart. Its id is hash(subject/campaign, first offending push): a
replay reproduces it, and later pushes are revisions that name every rule breached so far and the
delay from the opt-out to the last push.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from enum import StrEnum
from operator import attrgetter
from typing import Any, ClassVar, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, model_validator

from detectors import inbox
from detectors.base import Context, Finding, Store
from policy.model import DetectorSection
from schemas.models import SEVERITY_RANK, Channel, ConsentStatus, EmployeeStatus, Severity
from schemas.structs import STRICT

HOUR = 3_600_000
MARKETING_STRUCT: Any = STRICT["marketing"]  # a stored block's pushes come back as the decoder's structs


class Rule(StrEnum):
    no_consent = "no_consent"
    after_withdrawal = "after_withdrawal"
    channel_refused = "channel_refused"
    channel_not_covered = "channel_not_covered"
    off_purpose = "off_purpose"
    personalized_without_choice = "personalized_without_choice"
    no_refusal_offered = "no_refusal_offered"
    four_eyes = "four_eyes"
    audience_outside_approval = "audience_outside_approval"


class RuleSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    severity: Severity
    title_zh: str
    title_en: str
    regulation: list[str] = Field(min_length=1, description="the clauses this rule enforces, with their seed")


class OffscopeMarketingParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    rules: dict[Rule, RuleSpec] = Field(description="every rule of the detector, each with its own clauses")
    episode_gap_hours: int = Field(
        gt=0, description="offending pushes of one campaign to one subject this close form one alert"
    )
    evidence_limit: int = Field(default=50, ge=1)
    marketing_purpose: str | None = Field(
        default=None,
        description="the purpose id (purposes.yaml) a subject's refusal of marketing is recorded under: "
        "withdrawn, it stops every push, whatever purpose the push names (default: `marketing`, where "
        "purposes.yaml has it)",
    )

    @model_validator(mode="after")
    def _every_rule(self) -> OffscopeMarketingParams:
        missing = [r.value for r in Rule if r not in self.rules]
        if missing:
            raise ValueError(f"rules: add {missing}; every rule needs its severity, titles and regulation")
        return self


class Push(NamedTuple):
    """What a pending verdict needs of a push; stored as a JSON list until the watermark passes it."""

    ts: int
    event_id: str
    channel: str
    campaign_id: str
    purpose: str
    data_used: list[str]
    personalized: bool
    opt_out_offered: bool
    non_personalized_option: bool
    submitter_id: str
    approver_id: str | None
    org_id: str | None
    approved_audience: list[str]

    @classmethod
    def of(cls, ev: Any) -> Push:
        return cls._make(_PUSH_OF(ev))


# a push's fields in one C call, its channel as the string it is stored as (0.6 µs a push, where a
# getattr each and a _replace took 4)
_PUSH_OF = attrgetter(*("channel._value_" if f == "channel" else f for f in Push._fields))
_ORDER = attrgetter("ts", "event_id")  # pushes are judged in time order, then by id


class Episode:
    """One alert: the offending pushes of one campaign to one subject."""

    __slots__ = (
        "start",
        "last",
        "actor",
        "org",
        "pushes",
        "rules",
        "evidence",
        "revision",
        "used",
        "off",
        "opt_out",
        "ignored_to",
        "sms",
    )

    def __init__(self, start: int, actor: str, org: str | None):
        self.start = self.last = start
        self.actor, self.org = actor, org
        self.pushes = 0
        self.rules: dict[str, int] = {}  # rule -> offending pushes
        self.evidence: list[str] = []
        self.revision = 0
        self.used: list[str] = []  # fields the offending pushes targeted with
        self.off: list[str] = []  # of which, used outside their collected purpose
        self.opt_out: int | None = None  # the withdrawal or refusal the pushes ignored
        self.ignored_to = 0  # the last push that ignored it
        self.sms: list[str] = []  # why its SMS were not submitted and approved as their level needs

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Episode:
        ep = cls(d["start"], d["actor"], d["org"])
        for k in cls.__slots__:
            if k in d:  # `sms` came later: an older episode has no reasons to show
                setattr(ep, k, d[k])
        return ep


class SubjectState:
    """A subject's pushes awaiting their verdict and its open episodes, by campaign."""

    __slots__ = ("pending", "episodes")

    def __init__(self) -> None:
        self.pending: list[Push] = []
        self.episodes: dict[str, Episode] = {}

    def to_json(self) -> dict[str, Any]:
        return {
            "pending": [list(p) for p in self.pending],
            "episodes": {c: e.to_json() for c, e in self.episodes.items()},
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> SubjectState:
        st = cls()
        st.pending = [Push(*p) for p in d["pending"]]
        st.episodes = {c: Episode.from_json(e) for c, e in d["episodes"].items()}
        return st


def _campaign_path(p: Push, ctx: Context) -> list[str] | None:
    """The org path of the campaign's org, as its submitter's entitlement gives it when the submitter
    sits there (the stream carries no org tree of its own); None if not known."""
    ent = ctx.entitlement(p.submitter_id.strip(), p.ts) if p.org_id else None
    return list(ent.org_path) if ent is not None and ent.org_id == p.org_id else None


def _sms_duty_gap_of(who: str, duty: str, p: Push, path: list[str] | None, ctx: Context) -> str | None:
    """None if `who` is active at the push and holds a role with this SMS duty whose org level sees
    the campaign's org (organisation.yaml `org_levels`: head office all; a branch itself and below),
    or is not on the entitlements stream; else why not, for the analyst."""
    ent = ctx.entitlement(who, p.ts)
    if ent is None:
        return None
    title = "submitter" if duty == "submit" else "approver"
    if ent.status is not EmployeeStatus.active:
        return f"{title} {who} {ent.status.value} by then"
    roles, levels = ctx.catalog.roles, ctx.catalog.policy.organisation.org_levels
    held = False
    for r in ent.roles:
        role = roles.get(r)
        if role is None or role.marketing_sms != duty:
            continue
        held = True
        sees = levels[role.level].sees
        if p.org_id is None or sees == "all" or p.org_id == ent.org_id:
            return None
        if sees == "self_and_descendants" and (
            ent.org_id in path if path is not None else p.org_id not in ent.org_path
        ):
            return None  # its own branch's campaign; without the campaign's path, anything but a level above
    if held:
        return f"{title} {who} ({ent.org_id}) holds no SMS role of the campaign's org {p.org_id}"
    return f"{title} {who} holds no SMS {title} role (短信{'管理' if duty == 'submit' else '审核'})"


class OffscopeMarketingDetector:
    kind: ClassVar[str] = "offscope_marketing"
    inputs: ClassVar[dict[str, str]] = {"marketing": "subject_id"}
    Params: ClassVar[type[BaseModel]] = OffscopeMarketingParams

    def __init__(self, section: DetectorSection, params: OffscopeMarketingParams, store: Store):
        self.section, self.p, self.store = section, params, store
        self.gap = params.episode_gap_hours * HOUR

    @staticmethod
    def load_value(data: Any) -> Any:
        waiting = inbox.load_value(data, MARKETING_STRUCT)
        if waiting is not None:
            return waiting
        return SubjectState.from_json(data) if isinstance(data, dict) else data

    # -- events: wait for the watermark ---------------------------------------------------------
    def process(self, stream: str, events: Sequence[Any], ctx: Context) -> Iterable[Finding]:
        """The batch waits in the inbox, as one block, until the watermark passes its pushes."""
        inbox.hold(self.store, events, ctx)
        return ()

    # -- time: judge, then close ----------------------------------------------------------------
    def on_timer(self, key: str, deadline_ms: int, ctx: Context) -> Iterable[Finding]:
        # every push the watermark has passed is judged before any episode is closed
        by_subject: dict[str, list[Push]] = {}
        for ev in inbox.release(self.store, ctx):
            by_subject.setdefault(ev.subject_id, []).append(Push.of(ev))
        if key != inbox.INBOX:
            by_subject.setdefault(key, [])  # the end of its episodes
        for subject, pushes in by_subject.items():
            yield from self._judge(subject, pushes, ctx)

    def _judge(self, subject: str, pushes: list[Push], ctx: Context) -> Iterator[Finding]:
        """The subject's pushes the watermark has passed, in time order; then its episodes that
        many hours quiet are closed. Only a subject with an open episode has a key."""
        st = self.store.get(subject)
        # pushes an earlier lifemon kept under their subject, each with a timer: judged with the rest
        if st is not None and st.pending:
            pushes += [p for p in st.pending if p.ts <= ctx.watermark]
            st.pending = [p for p in st.pending if p.ts > ctx.watermark]
        pushes.sort(key=_ORDER)
        changed: set[str] = set()
        for push in pushes:
            breaches = self.breaches(subject, push, ctx)
            if not breaches:
                continue
            if st is None:
                st = SubjectState()
            ep = st.episodes.get(push.campaign_id)
            if ep is not None and push.ts > ep.last + self.gap:
                yield self._finding(subject, push.campaign_id, ep, ctx, closed=True)
                changed.discard(push.campaign_id)
                ep = None
            if ep is None:
                ep = st.episodes[push.campaign_id] = Episode(push.ts, push.submitter_id, push.org_id)
            self._add(ep, push, breaches)
            changed.add(push.campaign_id)
        if st is None:
            return
        for campaign, ep in list(st.episodes.items()):
            if ep.last + self.gap <= ctx.watermark:
                yield self._finding(subject, campaign, ep, ctx, closed=True)
                del st.episodes[campaign]
            elif campaign in changed:
                yield self._finding(subject, campaign, ep, ctx, closed=False)
        if not st.pending and not st.episodes:
            self.store.delete(subject)
            return
        self.store.put(subject, st)
        for ep in st.episodes.values():
            ctx.timers.register(subject, ep.last + self.gap)

    # -- the rules ------------------------------------------------------------------------------
    def breaches(self, subject: str, p: Push, ctx: Context) -> dict[Rule, Any]:
        """Rule -> detail for every rule the push breaks, judged with reference data as of its time."""
        out: dict[Rule, Any] = {}
        consent = ctx.consent(subject, p.purpose, p.channel, p.ts)
        declared = ctx.catalog.purposes.get(p.purpose)
        marketing = self._marketing(ctx)
        if consent is None and marketing is not None and p.purpose != marketing:
            # every push is marketing: the subject's choice about marketing (seed 004 (三)②) covers
            # a push that names a service purpose, on the channels marketing was asked about
            consent = ctx.consent(subject, marketing, p.channel, p.ts)
            declared = ctx.catalog.purposes.get(marketing)
        if consent is None:
            # seed 004 (三)②: marketing needs the subject's own choice; one for another channel
            # does not cover this one
            elsewhere = self._granted_elsewhere(subject, p, ctx, p.purpose)
            out[Rule.channel_not_covered if elsewhere else Rule.no_consent] = None
        elif consent.status is ConsentStatus.withdrawn:
            # seed 004 (三)②: 客户明确表示拒绝接受营销的, 应当立即停止利用
            out[self._refusal_rule(subject, p, ctx, consent)] = consent.ts
        elif (
            consent.channel is None
            and declared is not None
            and declared.channels is not None
            and p.channel not in declared.channels
        ):
            out[Rule.channel_not_covered] = None  # the privacy policy never asked about this channel
        refusal = self._marketing_refused(subject, p, ctx, consent)
        if refusal is not None:
            # seed 004 (三)②: 客户明确表示拒绝接受营销的, 应当立即停止利用. Every push is marketing:
            # naming a service purpose the subject consented to does not lift their refusal
            out[self._refusal_rule(subject, p, ctx, refusal)] = refusal.ts
        off = self._off_purpose(subject, p, ctx, consent)
        if off:
            out[Rule.off_purpose] = off
        if not p.opt_out_offered:
            if p.personalized and not p.non_personalized_option:
                out[Rule.personalized_without_choice] = None  # seed 004 (三)③, seed 000 (5)
            else:
                out[Rule.no_refusal_offered] = None  # seed 004 (三)②: every marketing message
        if p.channel == Channel.sms and (gap := self._sms_duty_gap(p, ctx)):
            out[Rule.four_eyes] = gap
        if self._outside_audience(subject, p, ctx):
            out[Rule.audience_outside_approval] = None
        return out

    @staticmethod
    def _sms_duty_gap(p: Push, ctx: Context) -> str | None:
        """Why the SMS was not submitted by 短信管理 and approved by 短信审核 (seed 004 角色设置), two
        people, each in the role of the campaign's level (head office's for a bank-wide SMS, a
        branch's for its own); None if it was. Someone the entitlements stream does not know cannot
        be judged by role: two people are then enough."""
        submitter, approver = p.submitter_id.strip(), (p.approver_id or "").strip()  # blank: no one
        if not approver:
            return "no approver"
        if approver == submitter:
            return f"approved by its submitter {submitter}"
        path = _campaign_path(p, ctx)
        return _sms_duty_gap_of(submitter, "submit", p, path, ctx) or _sms_duty_gap_of(
            approver, "approve", p, path, ctx
        )

    def _marketing(self, ctx: Context) -> str | None:
        """The purpose marketing consents are recorded under: the policy's, else `marketing` where
        purposes.yaml has it."""
        return self.p.marketing_purpose or ("marketing" if "marketing" in ctx.catalog.purposes else None)

    def _marketing_refused(self, subject: str, p: Push, ctx: Context, consent: Any) -> Any:
        """The subject's withdrawn marketing consent for the push's channel as of its time, when
        the push names another purpose (its own purpose's consent is judged above) and no consent
        to that purpose came after the refusal (the subject's later choice); else None."""
        marketing = self._marketing(ctx)
        if marketing is None or p.purpose == marketing:
            return None
        c = ctx.consent(subject, marketing, p.channel, p.ts)
        if c is None or c.status is not ConsentStatus.withdrawn:
            return None
        chosen_since = consent is not None and consent.status is ConsentStatus.granted and consent.ts > c.ts
        return None if chosen_since else c

    def _refusal_rule(self, subject: str, p: Push, ctx: Context, refusal: Any) -> Rule:
        """A withdrawal of the channel's own consent while the subject still consents to that
        purpose on another channel refuses the channel; any other withdrawal refuses the purpose."""
        here = refusal.channel is not None and self._granted_elsewhere(subject, p, ctx, refusal.purpose)
        return Rule.channel_refused if here else Rule.after_withdrawal

    def _granted_elsewhere(self, subject: str, p: Push, ctx: Context, purpose: str) -> bool:
        """The subject consents to `purpose` on another channel than the push's (or on every
        channel) at the push's time."""
        for ch in Channel:
            if ch != p.channel:
                c = ctx.consent(subject, purpose, ch, p.ts)
                if c is not None and c.status is ConsentStatus.granted:
                    return True
        return False

    def _off_purpose(self, subject: str, p: Push, ctx: Context, consent: Any) -> list[str]:
        """Fields used for targeting that were not collected for the push's purpose, nor for
        marketing (every push is marketing: seed 004 §一.(二).3 names what marketing may use), per
        seed 004 (三)⑧⑩, unless the subject gave a separate consent (单独同意) to this purpose since.
        Fields the catalog does not know are a coverage gap, counted by the engine, not judged."""
        collected = ctx.catalog.collected_for
        allowed = {p.purpose, self._marketing(ctx)}
        off = [f for f in p.data_used if f in collected and allowed.isdisjoint(collected[f])]
        if not off:
            return []
        general = ctx.consent(subject, p.purpose, None, p.ts)
        for c in (consent, general):
            if c is not None and c.status is ConsentStatus.granted and c.separate:
                return []
        return sorted(set(off))

    def _outside_audience(self, subject: str, p: Push, ctx: Context) -> bool:
        """The subject is not managed under any org the campaign's approval covers (seed 004
        角色设置: head office runs bank-wide list campaigns, a branch its own). A subject unknown
        to the customers stream cannot be judged and is left alone."""
        scope = p.approved_audience or ([p.org_id] if p.org_id else [])
        if not scope:
            return False
        customer = ctx.customer(subject, p.ts)
        return customer is not None and not set(customer.org_path) & set(scope)

    def _add(self, ep: Episode, p: Push, breaches: dict[Rule, Any]) -> None:
        ep.last = max(ep.last, p.ts)
        ep.pushes += 1
        ep.used = sorted(set(ep.used) | set(p.data_used))
        for rule, detail in breaches.items():
            ep.rules[rule.value] = ep.rules.get(rule.value, 0) + 1
            if rule in (Rule.after_withdrawal, Rule.channel_refused):
                ep.opt_out = detail if ep.opt_out is None else min(ep.opt_out, detail)
                ep.ignored_to = max(ep.ignored_to, p.ts)
            elif rule is Rule.off_purpose:
                ep.off = sorted(set(ep.off) | set(detail))
            elif rule is Rule.four_eyes and detail not in ep.sms and len(ep.sms) < 3:
                ep.sms.append(detail)
        if len(ep.evidence) < self.p.evidence_limit:
            ep.evidence.append(p.event_id)

    # -- output ---------------------------------------------------------------------------------
    def _finding(self, subject: str, campaign: str, ep: Episode, ctx: Context, closed: bool) -> Finding:
        ep.revision += 1
        rules = [r for r in Rule if r.value in ep.rules]  # policy order, not arrival order
        specs = [self.p.rules[r] for r in rules]
        severity = max((s.severity for s in specs), key=SEVERITY_RANK.__getitem__)
        pushes = ep.pushes
        parts = [
            f"{s.title_en} ({ep.rules[r.value]} of the pushes)" for r, s in zip(rules, specs, strict=True)
        ]
        counts = {"pushes": pushes} | {f"rule_{r.value}": ep.rules[r.value] for r in rules}
        if ep.opt_out is not None:
            delay = ep.ignored_to - ep.opt_out
            counts["opt_out_delay_s"] = delay // 1000
            parts.append(f"the last push came {_duration(delay)} after the opt-out")
        if ep.off:
            parts.append(f"targeted with {', '.join(ep.off)}, not collected for this purpose")
        if ep.sms:
            parts.append(f"SMS {'; '.join(ep.sms)}")
        summary = f"{pushes} push(es) of campaign {campaign} to subject {subject}: " + "; ".join(parts)
        regulation = list(dict.fromkeys(ref for s in specs for ref in s.regulation))
        return Finding(
            detector=self.kind,
            rule_id=self.section.rule_id,
            key=f"{subject}/{campaign}",
            window_start=ep.start,
            window_end=ep.last + self.gap,
            severity=severity,
            revision=ep.revision,
            closed=closed,
            summary=summary,
            jr_class=ctx.catalog.classify(ep.used).value,
            actor_id=ep.actor,
            actor_org=ep.org,
            subject_count=1,
            subject_sample=[subject],
            counts=counts,
            evidence_event_ids=list(ep.evidence),
            event_count=ep.pushes,
            first_seen=ep.start,
            last_seen=ep.last,
            title_zh="、".join(s.title_zh for s in specs),
            title_en="; ".join(s.title_en for s in specs),
            regulation=regulation,
        )


def _duration(ms: int) -> str:
    minutes = ms // 60_000
    if minutes < 120:
        return f"{minutes} min" if minutes else f"{ms // 1000} s"
    return f"{minutes // 60} h {minutes % 60} min"
