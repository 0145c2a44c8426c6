"""Off-scope marketing: a push to a subject that their consent, the data's purpose or the campaign's
approval does not cover.

Every push on the stream is marketing, whatever purpose it names, unless its platform sent it as a
notice (`kind: notice`: a rate change, a privacy-policy change customers must be told of, seed 004
流程描述(1)⑥) that names no marketing purpose, is not personalized and was chosen by nothing but what
addresses it; a notice is judged by no rule here. Marketing needs the subject's choice
about marketing, stored, and stops at once when they refuse (seed 004 流程描述(4)使用②; a refusal
withdraws a consent, 基本规定(4)③); automated personalized pushes offer a non-personalized option or
an easy refusal (使用③, seed 000 (5)), and a push targeted with personal data is personalized
whatever its flag says; its targeting uses only what was collected for marketing (使用⑩; beyond the
original authorisation only with explicit consent first, 流程描述(1)收集⑧); a marketing SMS is
submitted by one role and approved by another, each of a level that sees the campaign's org (seed 004
掌上银行家角色设置: 总行/分行短信管理 submits, 总行/分行短信审核 approves 全行级/分行级 SMS), and a branch's
campaign reaches only its own customers (分行营销管理 creates 分行级 list campaigns; only head office
bank-wide ones). Seed 001 §五.1 (金融消保办法第60条) fines each of these. Every rule, its severity,
titles and clauses are in policy/detectors/offscope_marketing.yaml.

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
from detectors.base import Context, Finding, Store, fed, iso_minute, n_of
from detectors.minors import consent_gap, minor_at
from policy.clause import Clause
from policy.model import DetectorSection
from schemas.models import SEVERITY_RANK, Channel, ConsentStatus, EmployeeStatus, PushKind, Severity
from schemas.structs import STRICT

HOUR = 3_600_000
ROLLUP = "campaign:"  # + rule + ":" + campaign id: a campaign's roll-up of one rule (no pseudonym starts so)
MEMBER = "rolled:"  # a subject counted in a roll-up (`member_key`)
MARKETING_STRUCT: Any = STRICT["marketing"]  # a stored block's pushes come back as the decoder's structs


class Rule(StrEnum):
    no_consent = "no_consent"
    after_withdrawal = "after_withdrawal"
    channel_refused = "channel_refused"
    channel_not_covered = "channel_not_covered"
    channel_not_declared = "channel_not_declared"
    off_purpose = "off_purpose"
    minor_marketed_without_consent = "minor_marketed_without_consent"
    personalized_without_choice = "personalized_without_choice"
    no_refusal_offered = "no_refusal_offered"
    four_eyes = "four_eyes"
    audience_outside_approval = "audience_outside_approval"


class RuleSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    severity: Severity
    title_zh: str
    title_en: str
    regulation: list[Clause] = Field(
        min_length=1, description="the clauses this rule enforces, with their seed"
    )


class OffscopeMarketingParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    rules: dict[Rule, RuleSpec] = Field(description="every rule of the detector, each with its own clauses")
    episode_gap_hours: int = Field(
        gt=0, description="offending pushes of one campaign to one subject this close form one alert"
    )
    evidence_limit: int = Field(default=50, ge=1)
    campaign_rollup_subjects: int | None = Field(
        default=None,
        ge=2,
        description="from the subject this is of those one campaign's pushes offend by one rule, the "
        "rest are one alert for the campaign and rule; unset: one alert per subject however many",
    )
    sample_size: int = Field(default=10, ge=1, description="subjects a campaign's roll-up alert names")
    marketing_purpose: str | None = Field(
        default=None,
        description="the purpose id (purposes.yaml) a subject's consent to marketing, and its refusal, "
        "is recorded under: it decides every push, whatever purpose the push names, and a push's "
        "targeting must have been collected for it (default: `marketing`, where purposes.yaml has it)",
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
    kind: str = PushKind.marketing.value  # a push an earlier lifemon kept pending has none: marketing

    @classmethod
    def of(cls, ev: Any) -> Push:
        return cls._make(_PUSH_OF(ev))


# a push's fields in one C call, its channel as the string it is stored as (0.6 µs a push, where a
# getattr each and a _replace took 4)
_PUSH_OF = attrgetter(*(f"{f}._value_" if f in ("channel", "kind") else f for f in Push._fields))
_ORDER = attrgetter("ts", "event_id")  # pushes are judged in time order, then by id


def _in_order(pushed: tuple[Push, str]) -> tuple[int, str]:
    return _ORDER(pushed[0])


def _kept(states: dict[str, Any], ctx: Context) -> list[tuple[Push, str]]:
    """The pushes an earlier lifemon kept under their subject (`pending`, each with a timer) that
    the watermark has passed, taken out of their state: judged with the rest."""
    out: list[tuple[Push, str]] = []
    for subject, st in states.items():
        if st is not None and st.pending:
            out += [(p, subject) for p in st.pending if p.ts <= ctx.watermark]
            st.pending = [p for p in st.pending if p.ts > ctx.watermark]
    return out


class Episode:
    """One alert: the offending pushes of one campaign to one subject."""

    __slots__ = (
        "start",
        "last",
        "actor",
        "approver",
        "org",
        "pushes",
        "rules",
        "evidence",
        "revision",
        "used",
        "off",
        "opt_out",
        "opt_out_on",
        "opt_out_wide",
        "ignored_to",
        "sms",
        "notes",
        "as_notice",
    )

    def __init__(self, start: int, actor: str, org: str | None, approver: str | None = None):
        self.start = self.last = start
        self.actor, self.org = actor, org
        self.approver = approver  # the campaign's, as its first offending push names it
        self.pushes = 0
        self.rules: dict[str, int] = {}  # rule -> offending pushes
        self.evidence: list[str] = []
        self.revision = 0
        self.used: list[str] = []  # fields the offending pushes targeted with
        self.off: list[str] = []  # of which, used outside their collected purpose
        self.opt_out: int | None = None  # the withdrawal or refusal the pushes ignored
        # the channel the customer said it on ("": for no channel; None: an older episode's, not kept)
        self.opt_out_on: str | None = None
        self.opt_out_wide = False  # said on that channel, recorded on every one (withdrawal_scope)
        self.ignored_to = 0  # the last push that ignored it
        self.sms: list[str] = []  # why its SMS were not submitted and approved as their level needs
        self.notes: list[str] = []  # what else the analyst needs: a claim the data contradicts, a scope
        self.as_notice = 0  # offending pushes their platform sent as notices (`kind: notice`)

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Episode:
        ep = cls(d["start"], d["actor"], d["org"])
        for k in cls.__slots__:
            if (
                k in d
            ):  # `sms`, `notes`, `approver`, `opt_out_on`, `as_notice` came later: an older episode has none
                setattr(ep, k, d[k])
        return ep


class Rollup:
    """One campaign's offences of one rule while they go on (offending pushes, to any subject, no
    more than `episode_gap_hours` apart): the first subjects, each alerted alone, then one alert
    for every subject after them. The subjects rolled up are counted, and each kept as a key of its
    own (`member_key`), written once: a storm's value stays the size of its sample, so a checkpoint
    writes the subjects the batch added, not every one so far."""

    __slots__ = (
        "last",
        "alone",
        "start",
        "count",
        "sample",
        "pushes",
        "evidence",
        "revision",
        "as_notice",
        "used",
        "actor",
        "approver",
        "org",
    )

    def __init__(self, last: int):
        self.last = last  # the campaign's last push offending the rule, alone or rolled up
        self.alone: list[str] = []  # the subjects alerted one by one, in the order they were offended
        self.start: int | None = None  # the first rolled-up push: the roll-up alert's window and id
        self.count = 0  # the subjects rolled up, each once
        self.sample: list[str] = []  # the first of them, as the alert names them
        self.pushes = 0
        self.evidence: list[str] = []
        self.revision = 0
        self.as_notice = 0
        self.used: list[str] = []
        # who sent the campaign, as its first rolled-up push names them
        self.actor = ""
        self.approver: str | None = None
        self.org: str | None = None

    def add(self, new: str | None, p: Push, as_notice: bool, limits: tuple[int, int]) -> None:
        """A rolled-up push; `new`, its subject when first rolled up. `limits`: the evidence
        limit and the sample size."""
        if self.start is None:
            self.start, self.actor, self.approver, self.org = p.ts, p.submitter_id, p.approver_id, p.org_id
        if new is not None:
            self.count += 1
            if len(self.sample) < limits[1]:
                self.sample.append(new)
        self.pushes += 1
        self.as_notice += as_notice
        if not set(p.data_used).issubset(self.used):
            self.used = sorted(set(self.used) | set(p.data_used))
        if len(self.evidence) < limits[0]:
            self.evidence.append(p.event_id)

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Rollup:
        ru = cls(d["last"])
        for k, v in d.items():
            setattr(ru, k, v)
        return ru


def member_key(rollup: str, subject: str) -> str:
    """The key saying `subject` is counted in the roll-up under key `rollup`: the roll-up's key's
    length first, so no campaign id, whatever it holds, makes one roll-up's prefix another's."""
    return f"{MEMBER}{len(rollup)}:{rollup}{subject}"


def members(rollup: str) -> str:
    """The prefix of the roll-up's member keys (`member_key`)."""
    return f"{MEMBER}{len(rollup)}:{rollup}"


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


def _known_paths(subject: str, p: Push, ctx: Context) -> list[list[str]]:
    """The org paths the reference data gives about this push as of its time: the subject's managing
    org's (pfi.customers), the submitter's and the approver's (pfi.entitlements). Every path runs
    from the head office down, so an org on one of them is placed by it (`_path_of`)."""
    paths = []
    customer = ctx.customer(subject, p.ts)
    if customer is not None:
        paths.append(list(customer.org_path))
    for who in (p.submitter_id.strip(), (p.approver_id or "").strip()):
        ent = ctx.entitlement(who, p.ts) if who else None
        if ent is not None:
            paths.append([*ent.org_path] if ent.org_id in ent.org_path else [*ent.org_path, ent.org_id])
    return paths


def _path_of(org: str, paths: list[list[str]]) -> list[str] | None:
    """`org`'s own path (the head office down to it) where one of `paths` passes through it; None if
    none does: the push's reference data does not place it."""
    for path in paths:
        if org in path:
            return path[: path.index(org) + 1]
    return None


def _sms_duty_gap_of(
    who: str, duty: str, p: Push, paths: list[list[str]], subject_known: bool, ctx: Context
) -> str | None:
    """None if `who` is active at the push and holds a role with this SMS duty whose org level sees
    the campaign's org (organisation.yaml `org_levels`: head office all; a branch itself and below:
    the campaign's org is the holder's or lies under it), or is not on the entitlements stream; else
    why not, for the analyst. The campaign's org is placed by the push's reference data
    (`_known_paths`); one it does not place is not confirmed when the customers stream is fed and
    knows the subject (its place is then unknown to every path the push touches: said so in the
    reason). Where the deployment feeds no customers, two people are enough; where the subject is
    not on it yet (a new customer whose record lags), anything but an org above the holder passes,
    as before the org was placed."""
    ent = ctx.entitlement(who, p.ts)
    if ent is None:
        return None
    title = "submitter" if duty == "submit" else "approver"
    if ent.status is not EmployeeStatus.active:
        return f"{title} {who} {ent.status.value} by then"
    roles, levels = ctx.catalog.roles, ctx.catalog.policy.organisation.org_levels
    campaign = _path_of(p.org_id, paths) if p.org_id else None
    held = False
    for r in ent.roles:
        role = roles.get(r)
        if role is None or role.marketing_sms != duty:
            continue
        held = True
        sees = levels[role.level].sees
        if p.org_id is None or sees == "all" or p.org_id == ent.org_id:
            return None
        if sees == "self_and_descendants":
            if campaign is not None and ent.org_id in campaign:
                return None  # its own branch's campaign, or one of an org below it
            if campaign is None and not fed(ctx.refs.customers):
                return None  # no org tree to place it by: two people are then enough
            if campaign is None and not subject_known and p.org_id not in ent.org_path:
                return None  # a subject not on the customers stream yet: no tree to place it by either
    if held and p.org_id is not None and campaign is None and subject_known:
        return (
            f"{title} {who} ({ent.org_id}): the campaign's org {p.org_id} is on no org path the push's "
            "reference data gives (its subject's, submitter's, approver's), so no SMS role of its level "
            "is confirmed"
        )
    if held:
        return f"{title} {who} ({ent.org_id}) holds no SMS role of the campaign's org {p.org_id}"
    return f"{title} {who} holds no SMS {title} role (短信{'管理' if duty == 'submit' else '审核'})"


def _targeting(p: Push, ctx: Context) -> list[str]:
    """What the push names in `data_used` but what addresses it (classification.yaml `addresses`:
    the customer's name and number): those reach the customer chosen, and choose no one by their
    features (seed 004 流程描述(4)使用③: 针对其个人特征). A bank's own name field so marked is read as
    the shipped `customer_name` (a second bank's `cust_name` made a name-only greeting a targeted
    push, and its `mobile_no` an off-purpose one)."""
    addressing = ctx.catalog.addressing
    return [f for f in p.data_used if f not in addressing]


def _placed(p: Push, ctx: Context) -> Push:
    """A push whose campaign names no org is its submitter's org's, as HR has it at the push (seed
    004 角色设置: a branch submits branch-level campaigns): a probe's branch SMS team, its campaign's
    org left out, reached another branch's customers and passed both the four-eyes rule and the
    audience's."""
    if p.org_id is not None:
        return p
    ent = ctx.entitlement(p.submitter_id, p.ts)
    return p if ent is None else p._replace(org_id=ent.org_id)


class OffscopeMarketingDetector:
    kind: ClassVar[str] = "offscope_marketing"
    # by campaign: its roll-up counts the subjects its pushes offend, wherever their partitions
    inputs: ClassVar[dict[str, str]] = {"marketing": "campaign_id"}
    Params: ClassVar[type[BaseModel]] = OffscopeMarketingParams

    def __init__(self, section: DetectorSection, params: OffscopeMarketingParams, store: Store):
        self.section, self.p, self.store = section, params, store
        self.gap = params.episode_gap_hours * HOUR

    @staticmethod
    def load_value(data: Any) -> Any:
        waiting = inbox.load_value(data, MARKETING_STRUCT)
        if waiting is not None:
            return waiting
        if isinstance(data, dict):
            return Rollup.from_json(data) if "alone" in data else SubjectState.from_json(data)
        return data

    # -- events: wait for the watermark ---------------------------------------------------------
    def process(self, stream: str, events: Sequence[Any], ctx: Context) -> Iterable[Finding]:
        """The batch waits in the inbox, as one block, until the watermark passes its pushes."""
        inbox.hold(self.store, events, ctx)
        return ()

    # -- time: judge, then close ----------------------------------------------------------------
    def on_timer(self, key: str, deadline_ms: int, ctx: Context) -> Iterable[Finding]:
        """Every push the watermark has passed is judged, in time order whatever its subject (the
        order a campaign's roll-up meets its subjects in, so a replay in other batches rolls up the
        same ones), before any episode or roll-up is closed."""
        released = [(Push.of(ev), ev.subject_id) for ev in inbox.release(self.store, ctx)]
        states = {s: self.store.get(s) for s in dict.fromkeys(s for _, s in released)}
        rollups = {key} if key.startswith(ROLLUP) else set()
        if key != inbox.INBOX and not rollups:
            states.setdefault(key, self.store.get(key))  # the end of its episodes
        released += _kept(states, ctx)
        released.sort(key=_in_order)
        changed: dict[str, set[str]] = {}  # subject -> campaigns whose episode a push revised
        revised: set[str] = set()  # roll-ups a push revised
        for push, subject in released:
            yield from self._judge(subject, _placed(push, ctx), states, changed, rollups, revised, ctx)
        for subject, st in states.items():
            yield from self._settle(subject, st, changed.get(subject, set()), ctx)
        for rollup in rollups:
            yield from self._settle_rollup(rollup, rollup in revised, ctx)

    def _judge(
        self,
        subject: str,
        push: Push,
        states: dict[str, SubjectState | None],
        changed: dict[str, set[str]],
        rollups: set[str],
        revised: set[str],
        ctx: Context,
    ) -> Iterator[Finding]:
        """One push: its breaches, those of rules its campaign rolls up to the roll-ups, the rest to
        the subject's episode of the campaign (a push past the episode's gap closes it first)."""
        carried = self._carried(push, ctx) if push.kind == PushKind.notice else None
        if carried == []:
            return  # a notice: no rule of marketing's judges it
        breaches = self.breaches(subject, push, ctx)
        if breaches and self.p.campaign_rollup_subjects:
            yield from self._roll_up(subject, push, breaches, bool(carried), rollups, revised, ctx)
        if not breaches:
            return
        st = states.get(subject) or SubjectState()
        states[subject] = st
        ep = st.episodes.get(push.campaign_id)
        if ep is not None and push.ts > ep.last + self.gap:
            yield self._finding(subject, push.campaign_id, ep, ctx, closed=True)
            changed.get(subject, set()).discard(push.campaign_id)
            ep = None
        if ep is None:
            ep = st.episodes[push.campaign_id] = Episode(
                push.ts, push.submitter_id, push.org_id, push.approver_id
            )
        self._add(ep, push, breaches)
        if carried:
            ep.as_notice += 1
            self._note(ep, f"sent as a notice but {'; '.join(carried)}: marketing all the same")
        changed.setdefault(subject, set()).add(push.campaign_id)

    def _roll_up(
        self,
        subject: str,
        p: Push,
        breaches: dict[Rule, Any],
        as_notice: bool,
        rollups: set[str],
        revised: set[str],
        ctx: Context,
    ) -> Iterator[Finding]:
        """Takes out of `breaches` each rule whose campaign has offended `campaign_rollup_subjects`
        - 1 other subjects alone since its offences began, into the campaign's roll-up of the rule. A
        subject alerted alone stays alone: the roll-up counts the subjects after them, never one twice
        (its own alert stands, as every alert does). A push past the roll-up's gap closes it first."""
        alone_up_to = (self.p.campaign_rollup_subjects or 0) - 1
        for rule in list(breaches):
            key = f"{ROLLUP}{rule.value}:{p.campaign_id}"
            ru = self.store.get(key)
            if ru is not None and p.ts > ru.last + self.gap:
                if ru.start is not None:
                    yield self._rollup_finding(key, ru, ctx, closed=True)
                self._forget_members(key)
                revised.discard(key)
                ru = None
            if ru is None:
                ru = Rollup(p.ts)
                self.store.put(key, ru)
            rollups.add(key)
            ru.last = max(ru.last, p.ts)
            if subject in ru.alone:
                continue
            if len(ru.alone) < alone_up_to:
                ru.alone.append(subject)
                continue
            counted = member_key(key, subject)
            new = self.store.get(counted) is None
            if new:
                self.store.put(counted, 1)
            ru.add(subject if new else None, p, as_notice, (self.p.evidence_limit, self.p.sample_size))
            del breaches[rule]
            revised.add(key)

    def _settle(
        self, subject: str, st: SubjectState | None, changed: set[str], ctx: Context
    ) -> Iterator[Finding]:
        """The subject's episodes that many hours quiet are closed, the others revised where a push
        changed them. Only a subject with an open episode has a key."""
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

    def _settle_rollup(self, key: str, revised: bool, ctx: Context) -> Iterator[Finding]:
        """A roll-up whose campaign has not offended its rule for `episode_gap_hours` is closed, and
        its campaign's next offence starts again from the first subject alone; else revised where
        a push changed it."""
        ru = self.store.get(key)
        if ru is None:
            return
        if ru.last + self.gap <= ctx.watermark:
            if ru.start is not None:
                yield self._rollup_finding(key, ru, ctx, closed=True)
            self.store.delete(key)
            self._forget_members(key)
            return
        self.store.put(key, ru)
        ctx.timers.register(key, ru.last + self.gap)
        if revised:
            yield self._rollup_finding(key, ru, ctx, closed=False)

    def _forget_members(self, key: str) -> None:
        """A closed roll-up's member keys: its campaign's next offence counts from the first again."""
        for member, _ in list(self.store.items(members(key))):
            self.store.delete(member)

    # -- the rules ------------------------------------------------------------------------------
    def _carried(self, p: Push, ctx: Context) -> list[str]:
        """What makes a push its platform sent as a notice marketing all the same; empty: a notice.
        A notice tells every customer it concerns the same thing (seed 004 流程描述(1)⑥: 所列事项发生
        变更的, 应当将变更部分告知个人), needs no choice about marketing and offers no refusal of it;
        so one that names the marketing purpose, is personalized, or was chosen by anything but
        what addresses it (针对其个人特征, 使用③) markets, and is judged as marketing (使用②)."""
        why = []
        if p.purpose == self._marketing(ctx):
            why.append(f"names the purpose {p.purpose}")
        if p.personalized:
            why.append("personalized")
        if used := _targeting(p, ctx):
            why.append(f"targeted with {', '.join(used)}")
        return why

    def breaches(self, subject: str, p: Push, ctx: Context) -> dict[Rule, Any]:
        """Rule -> detail for every rule the push breaks, judged with reference data as of its time.
        Every push is marketing (seed 004 流程描述(4)使用②): the purpose it names changes nothing."""
        out: dict[Rule, Any] = {}
        marketing = self._marketing(ctx) or p.purpose
        consent = ctx.consent(subject, marketing, p.channel, p.ts)
        declared = ctx.catalog.purposes.get(marketing)
        if consent is None:
            # 使用②: marketing needs the subject's own choice about marketing, whatever purpose the
            # push names (a consent to a service is no consent to its marketing); one for another
            # channel does not cover this one
            elsewhere = self._granted_elsewhere(subject, p, ctx, marketing)
            out[Rule.channel_not_covered if elsewhere else Rule.no_consent] = None
        elif consent.status is ConsentStatus.withdrawn:
            # 使用②: 客户明确表示拒绝接受营销的, 应当立即停止利用
            out[self._refusal_rule(subject, p, ctx, consent)] = _refusal(consent)
        elif (
            consent.channel is None
            and declared is not None
            and declared.channels is not None
            and p.channel not in declared.channels
        ):
            out[Rule.channel_not_declared] = None  # the privacy policy never asked about this channel
        off, sensitive = self._off_purpose(subject, p, ctx, consent, marketing)
        if off or sensitive:
            out[Rule.off_purpose] = (off, sensitive)
        # whatever the push is targeted with, marketing to a minor asks a separate consent, under 14
        # the guardian's, not the child's own tap on the app's marketing switch: under 14 the data is
        # sensitive (seed 004 定义(10), 基本规定(4)①); from 14 it is 流程描述(1)③'s consent for
        # collection, which the bank reads as holding for marketing; with none at all, both rules break
        if (minor := minor_at(subject, p.ts, ctx)) is not None and (
            why := consent_gap(minor, consent, marketing)
        ):
            out[Rule.minor_marketed_without_consent] = (
                f"to a customer {minor.band} without {minor.need}: {why}"
            )
        if not p.opt_out_offered:
            targeted = self._targeted(p, ctx)
            if (p.personalized or targeted) and not p.non_personalized_option:
                # 使用③, seed 000 (5); a push targeted with personal data is personalized whatever
                # its flag says
                out[Rule.personalized_without_choice] = None if p.personalized else targeted
            else:
                out[Rule.no_refusal_offered] = None  # 使用②: every marketing message
        if p.channel == Channel.sms and (gap := self._sms_duty_gap(subject, p, ctx)):
            out[Rule.four_eyes] = gap
        if (why := self._outside_audience(subject, p, ctx)) is not None:
            out[Rule.audience_outside_approval] = why or None
        return out

    @staticmethod
    def _targeted(p: Push, ctx: Context) -> list[str]:
        """The personal data (catalog fields) the push was targeted with: a push that names any was
        chosen by the subject's own features, personalized whatever its `personalized` flag claims
        (as transfer_policy reads its `deidentified` flag against the subjects a batch names)."""
        collected = ctx.catalog.collected_for
        return sorted({f for f in _targeting(p, ctx) if f in collected})

    @staticmethod
    def _sms_duty_gap(subject: str, p: Push, ctx: Context) -> str | None:
        """Why the SMS was not submitted by 短信管理 and approved by 短信审核 (seed 004 角色设置), two
        people, each in the role of a level that sees the campaign's org (head office's for a
        bank-wide SMS, a branch's for its own or an org under it); None if it was. Someone the
        entitlements stream does not know cannot be judged by role: two people are then enough."""
        submitter, approver = p.submitter_id.strip(), (p.approver_id or "").strip()  # blank: no one
        if not approver:
            return "no approver"
        # ids apart only in case are one person's (a probe's E51001 approved by e51001, an id
        # outside the bank's form, which the engine's spelling cannot fold): two people, or one?
        # a check of two people errs toward one
        if approver.casefold() == submitter.casefold():
            return f"approved by its submitter {submitter}"
        paths = _known_paths(subject, p, ctx)
        known = ctx.customer(subject, p.ts) is not None
        return _sms_duty_gap_of(submitter, "submit", p, paths, known, ctx) or _sms_duty_gap_of(
            approver, "approve", p, paths, known, ctx
        )

    def _marketing(self, ctx: Context) -> str | None:
        """The purpose marketing consents are recorded under: the policy's, else `marketing` where
        purposes.yaml has it."""
        return self.p.marketing_purpose or ("marketing" if "marketing" in ctx.catalog.purposes else None)

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

    def _off_purpose(
        self, subject: str, p: Push, ctx: Context, consent: Any, marketing: str
    ) -> tuple[list[str], list[str]]:
        """(fields used for targeting that were not collected for marketing, sensitive ones it
        was), both needing a separate consent (单独同意) to marketing the subject did not give.
        Not collected for it (`collected_for`: what the bank lets marketing use, its own list in
        purposes.yaml), whatever purpose the push names: 使用⑩ (应当符合收集该信息的目的), 流程描述(1)
        收集⑧ (beyond the original authorisation only with explicit consent first); a consent to the
        purpose the push names (a loan's credit review) is no consent to marketing with its data.
        Sensitive (classification.yaml `sensitive`: 行踪轨迹, 金融账户), even where collected for it:
        基本规定(4)① (a probe's push targeted by location under a bundled consent passed). Fields the
        catalog does not know are a coverage gap, counted by the engine, not judged."""
        collected, used = ctx.catalog.collected_for, _targeting(p, ctx)
        off = sorted({f for f in used if f in collected and marketing not in collected[f]})
        sensitive = sorted({f for f in used if f in ctx.catalog.sensitive} - set(off))
        if not off and not sensitive:
            return [], []
        general = ctx.consent(subject, marketing, None, p.ts)
        for c in (consent, general):
            if c is not None and c.status is ConsentStatus.granted and c.separate:
                return [], []
        return off, sensitive

    def _outside_audience(self, subject: str, p: Push, ctx: Context) -> str | None:
        """Why the push reached an audience its campaign may not: the subject is managed under no
        org the campaign's approval covers, or the approval covers an org outside what the campaign's
        org sees (seed 004 角色设置: 分行营销管理 creates 分行级 list campaigns, its own subtree; head
        office bank-wide ones). A subject unknown to the customers stream cannot be judged for the
        first and is left alone; an approved org no path of the push's reference data places cannot
        be judged for the second. "" for the first, why for the second; None if neither."""
        scope = p.approved_audience or ([p.org_id] if p.org_id else [])
        if not scope:
            return None
        customer = ctx.customer(subject, p.ts)
        if customer is not None and not set(customer.org_path) & set(scope):
            return ""
        if not p.approved_audience or p.org_id is None:
            return None
        paths = _known_paths(subject, p, ctx)
        campaign = _path_of(p.org_id, paths)
        if campaign is not None and ctx.catalog.policy.organisation.sees_at_depth(len(campaign)) == "all":
            return None
        beyond = [o for o in p.approved_audience if p.org_id not in (_path_of(o, paths) or [p.org_id])]
        if not beyond:
            return None
        return (
            f"approved for {', '.join(beyond)}, outside the campaign's org {p.org_id} and the orgs under it"
        )

    def _add(self, ep: Episode, p: Push, breaches: dict[Rule, Any]) -> None:
        ep.last = max(ep.last, p.ts)
        ep.pushes += 1
        ep.used = sorted(set(ep.used) | set(p.data_used))
        for rule, detail in breaches.items():
            ep.rules[rule.value] = ep.rules.get(rule.value, 0) + 1
            if rule in (Rule.after_withdrawal, Rule.channel_refused):
                ts, said_on, wide = detail
                if ep.opt_out is None or ts < ep.opt_out or ep.opt_out_on is None:
                    ep.opt_out, ep.opt_out_on, ep.opt_out_wide = ts, said_on, wide
                elif ts == ep.opt_out and said_on == ep.opt_out_on:
                    ep.opt_out_wide |= wide  # one refusal, met on its own channel and on another
                ep.ignored_to = max(ep.ignored_to, p.ts)
            elif rule is Rule.off_purpose:
                off, sensitive = detail
                ep.off = sorted(set(ep.off) | set(off))
                if sensitive:
                    self._note(
                        ep,
                        f"targeted with sensitive data (敏感个人信息: {', '.join(sensitive)}) without a separate consent",
                    )
            elif rule is Rule.four_eyes and detail not in ep.sms and len(ep.sms) < 3:
                ep.sms.append(detail)
            elif rule is Rule.personalized_without_choice and detail:
                self._note(ep, f"flagged non-personalized but targeted with {', '.join(detail)}")
            elif rule in (Rule.audience_outside_approval, Rule.minor_marketed_without_consent) and detail:
                self._note(ep, detail)
        if len(ep.evidence) < self.p.evidence_limit:
            ep.evidence.append(p.event_id)

    @staticmethod
    def _note(ep: Episode, note: str) -> None:
        if note not in ep.notes and len(ep.notes) < 3:
            ep.notes.append(note)

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
        if ep.as_notice:
            counts["sent_as_notice"] = ep.as_notice
        if ep.opt_out is not None:
            delay = ep.ignored_to - ep.opt_out
            counts["opt_out_delay_s"] = delay // 1000
            counts["opt_out_ts"] = ep.opt_out
            if ep.opt_out_on:
                counts[f"opt_out_on_{ep.opt_out_on}"] = 1
            if ep.opt_out_wide:
                counts["opt_out_all_channels"] = 1
            parts.append(f"the last push came {_duration(delay)} after the opt-out{_said(ep)}")
        if ep.off:
            parts.append(f"targeted with {', '.join(ep.off)}, not collected for marketing")
        if ep.sms:
            parts.append(f"SMS {'; '.join(ep.sms)}")
        parts += ep.notes
        summary = (
            f"{n_of(pushes, 'push', 'pushes')} of campaign {campaign}{_people(ep)} to subject {subject}: "
            + "; ".join(parts)
        )
        regulation = list(dict.fromkeys(ref for s in specs for ref in s.regulation))
        return self._alert(
            f"{subject}/{campaign}",
            ep,
            ep.start,
            ctx,
            severity=severity,
            closed=closed,
            summary=summary,
            subject_count=1,
            subject_sample=[subject],
            counts=counts,
            title_zh="、".join(s.title_zh for s in specs),
            title_en="; ".join(s.title_en for s in specs),
            regulation=regulation,
        )

    def _alert(self, key: str, of: Episode | Rollup, start: int, ctx: Context, **said: Any) -> Finding:
        """What an episode's and a roll-up's alerts share: their window from `start` to a gap past
        the last offending push, the campaign's people, the data used and the evidence."""
        return Finding(
            detector=self.kind,
            rule_id=self.section.rule_id,
            key=key,
            window_start=start,
            window_end=of.last + self.gap,
            revision=of.revision,
            jr_class=ctx.catalog.classify(of.used).value,
            actor_id=of.actor,
            actor_org=of.org,
            evidence_event_ids=list(of.evidence),
            event_count=of.pushes,
            first_seen=start,
            last_seen=of.last,
            **said,
        )

    def _rollup_finding(self, key: str, ru: Rollup, ctx: Context, closed: bool) -> Finding:
        """One alert for a campaign's subjects after the first ones alerted alone: the count, the
        pushes, a sample of their pseudonyms."""
        ru.revision += 1
        rule_name, campaign = key.removeprefix(ROLLUP).split(":", 1)
        rule = Rule(rule_name)
        spec, n = self.p.rules[rule], ru.count
        counts = {
            "subjects": n,
            "pushes": ru.pushes,
            f"rule_{rule.value}": ru.pushes,
            "alerted_alone": len(ru.alone),
        }
        if ru.as_notice:
            counts["sent_as_notice"] = ru.as_notice
        was, are = ("was", "is") if len(ru.alone) == 1 else ("were", "are")
        summary = (
            f"{n_of(n, 'subject')} reached by campaign {campaign}{_people(ru)} in "
            f"{n_of(ru.pushes, 'push', 'pushes')}: {spec.title_en}. One alert for the campaign: the "
            f"{n_of(len(ru.alone), 'subject')} it offended first {was} alerted alone "
            f"(campaign_rollup_subjects {self.p.campaign_rollup_subjects}), and {are} not counted here"
        )
        return self._alert(
            f"campaign:{campaign}/{rule.value}",
            ru,
            ru.start or ru.last,
            ctx,
            severity=spec.severity,
            closed=closed,
            summary=summary,
            subject_count=n,
            subject_sample=ru.sample,
            subjects=ru.sample,  # counted, not listed: a storm's every pseudonym is in its member keys
            counts=counts,
            title_zh=spec.title_zh,
            title_en=spec.title_en,
            regulation=spec.regulation,
        )


def _people(ep: Episode | Rollup) -> str:
    """Who sent the campaign, for the summary line: the analyst's one action on a campaign to many
    refusers (stop it, ask its submitter) arrives as one alert per subject, each of which must name
    them (a probe's 100 alerts of one campaign named its submitter nowhere but the actor field)."""
    submitter, approver = ep.actor.strip(), (ep.approver or "").strip()
    said = [f"submitted by {submitter}"] if submitter else []
    if approver:
        said.append(f"approved by {approver}")
    return f" ({', '.join(said)})" if said else ""


def _refusal(consent: Any) -> tuple[int, str, bool]:
    """(when, the channel it was said on or "" for none, whether it was recorded on every channel
    from there): what an alert about a push after it must say, for the analyst reads the push's
    own channel's record, which a refusal said on another one leaves "granted" (probe_u3 U3-5)."""
    said_on = getattr(consent, "said_on", None)  # streams.registries.said_elsewhere
    channel = said_on or consent.channel
    return consent.ts, channel.value if channel is not None else "", said_on is not None


def _said(ep: Episode) -> str:
    """Where and when the customer refused, for the summary line."""
    if ep.opt_out is None or ep.opt_out_on is None:
        return ""
    where = f"on {ep.opt_out_on}" if ep.opt_out_on else "for every channel"
    wide = " and applied to every channel (withdrawal_scope all_channels)" if ep.opt_out_wide else ""
    return f", said {where} at {iso_minute(ep.opt_out)}{wide}"


def _duration(ms: int) -> str:
    """A delay as a reader says it; under a second in ms (a probe's push 500 ms after the opt-out
    read "0 s after", as if at once)."""
    minutes = ms // 60_000
    if minutes >= 120:
        return f"{minutes // 60} h {minutes % 60} min"
    if minutes:
        return f"{minutes} min"
    return f"{ms // 1000} s" if ms >= 1000 else f"{ms} ms"
