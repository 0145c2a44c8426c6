"""Unauthorized lookup: an employee reads or changes customers' PFI outside what their org, role,
employment and approvals allow, judged as of the access's event time.

Unapproved queries of PFI are the most-fined violation (seed 001 §一; 《金融消费者权益保护实施办法》
第60条(5), seed 001 §五.1). Seed 004 sets the bounds:
- 掌上银行家系统机构设置: head office sees every customer, a branch itself and its sub-branches, a
  sub-branch only itself (organisation.yaml `org_levels`); 客户管理机构(2): a customer is managed in
  one sub-branch and other orgs may only query it, so a change elsewhere is never allowed;
- 角色设置: a role is a set of function permissions (organisation.yaml `permissions`);
- 人员管理(4)(5): a transfer changes and a termination ends access at once;
- 流程描述(4)④⑤: graded approval and least privilege; C3 data, and an export, print or download of
  C2 data, need an approval that covers them (detectors/approvals.py), approved by someone else.
A covering approval also allows a cross-org query and data or systems beyond the role; never a change
outside the managing sub-branch, nor access after a transfer or termination.

Each access waits until the watermark passes its time, so a transfer, termination or customer
record that arrives late (within the allowed lateness) still decides it, as a Flink temporal join
waits for its versioned table. Per actor: accesses pending judgment, recent denials (repeated
denials are a finding; a single one is only counted in the engine's rollups), and the open
*episode*: one alert whose id is hash(actor, first offending access), growing by revisions while the
actor keeps offending, closed once `episode_gap_minutes` pass without a new offence. An actor or
customer the reference streams do not know is a coverage gap: listed in the alert, never passed.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from operator import attrgetter, itemgetter
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from detectors import approvals
from detectors.base import Context, Finding, Store
from policy.model import CLASS_RANK, DetectorSection, JrClass
from schemas.models import SEVERITY_RANK, Action, EmployeeStatus, Entitlement, Outcome, Severity

CHANGES = frozenset({Action.update, Action.delete})
TAKES_OUT = frozenset({Action.export, Action.print, Action.download})
RANK_CLASS = {rank: cls.value for cls, rank in CLASS_RANK.items()}
# reasons an access is unauthorized, in the order an alert lists them
REASONS = (
    "terminated",
    "transferred",
    "old_scope_after_transfer",
    "change_outside_managing_org",
    "c3_without_approval",
    "c2_takeout_without_approval",
    "out_of_scope",
    "role_not_permitted",
    "system_not_permitted",
    "repeated_denials",
    "unknown_actor",
    "unknown_customer",
)


class Reason(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    severity: Severity
    en: str = Field(description="what failed, in words an analyst can act on")
    zh: str
    source: str = Field(description="the seed clause the reason enforces")


class UnauthorizedLookupParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    episode_gap_minutes: int = Field(gt=0, description="an episode closes this long after its last offence")
    denied_attempts: int = Field(ge=2, description="denials within the window that make a finding")
    denied_window_minutes: int = Field(gt=0)
    reasons: dict[str, Reason]
    sample_size: int = Field(default=10, ge=0)
    evidence_limit: int = Field(default=50, ge=1)

    @model_validator(mode="after")
    def _every_reason(self) -> UnauthorizedLookupParams:
        missing, extra = set(REASONS) - set(self.reasons), set(self.reasons) - set(REASONS)
        if missing or extra:
            raise ValueError(
                f"reasons must list exactly {', '.join(REASONS)}; missing {sorted(missing)}, unknown {sorted(extra)}"
            )
        return self


class Episode:
    """One actor's offences from the first until `episode_gap_minutes` after the last."""

    __slots__ = (
        "start",
        "end",
        "reasons",
        "notes",
        "customers",
        "unnamed",
        "rank",
        "evidence",
        "context",
        "severity",
        "revision",
        "last_seen",
        "emitted",
        "org",
        "accesses",
    )

    def __init__(self, start: int, gap_ms: int, context: str, org: str | None):
        self.start, self.end, self.last_seen = start, start + gap_ms, start
        self.reasons: dict[str, int] = {}  # reason -> offending accesses (or denials)
        self.notes: dict[str, str] = {}  # reason -> what its first offence was about
        self.customers: set[str] = set()  # pseudonyms
        self.unnamed = 0  # rows an access counted but did not name
        self.rank = CLASS_RANK[JrClass.C1]
        self.evidence: list[str] = []
        self.context = context  # the entitlement and approval as they stood at the first offence
        self.severity = Severity.info
        self.revision = 0
        self.emitted: dict[str, int] = {}  # reasons as last emitted: a revision only when they grew
        self.org = org  # the actor's org at the first offence
        self.accesses = 0  # offending accesses (and denials past the limit)

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__} | {
            "customers": sorted(self.customers),
            "severity": self.severity.value,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Episode:
        ep = cls.__new__(cls)
        for k in cls.__slots__:
            setattr(ep, k, d[k])
        ep.customers, ep.severity = set(d["customers"]), Severity(d["severity"])
        return ep


class ActorState:
    """Accesses waiting for the watermark, recent denials, and the open episode of one actor."""

    __slots__ = ("pending", "denials", "episode")

    def __init__(self) -> None:
        self.pending: list[tuple[Any, ...]] = []  # `ROW`s in time order (arrival order on ties)
        self.denials: list[list[Any]] = []  # [ts, event_id], in time order
        self.episode: Episode | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "pending": self.pending,
            "denials": self.denials,
            "episode": self.episode.to_json() if self.episode else None,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ActorState:
        st = cls()
        st.pending = [(*p[:2], Action(p[2]), *p[3:9], Outcome(p[9])) for p in d["pending"]]
        st.denials = d["denials"]
        st.episode = Episode.from_json(d["episode"]) if d["episode"] else None
        return st


# A pending access: what the rules read of an AccessEvent, taken in one C call. Its lists are the
# event's own: the engine never changes an event once it is past the door.
ROW = attrgetter(
    "ts",
    "event_id",
    "action",
    "system",
    "fields",
    "subject_ids",
    "row_count",
    "purpose",
    "approval_id",
    "outcome",
)
_TS = itemgetter(0)
_ACTOR = attrgetter("actor_id")
Found = list[tuple[str, str, Entitlement | None]]  # (reason, what its offence was about, entitlement)


class Access:
    """A pending access as the approval rule and the episode read it (the attributes of an AccessEvent)."""

    __slots__ = (
        "ts",
        "event_id",
        "action",
        "system",
        "fields",
        "subject_ids",
        "row_count",
        "purpose",
        "approval_id",
        "outcome",
        "actor_id",
    )

    def __init__(self, actor: str, row: tuple[Any, ...]):
        self.actor_id = actor
        (self.ts, self.event_id, self.action, self.system, self.fields, self.subject_ids) = row[:6]
        (self.row_count, self.purpose, self.approval_id, self.outcome) = row[6:]


class View:
    """What the rules read of one entitlement version, worked out once per timer: its roles as a
    key and the visibility of its org level."""

    __slots__ = ("ent", "roles", "sees")

    def __init__(self, ent: Entitlement, ctx: Context):
        self.ent, self.roles = ent, tuple(ent.roles)
        levels, roles = ctx.catalog.policy.organisation.org_levels, ctx.catalog.roles
        self.sees = next(
            (levels[roles[r].level].sees for r in ent.roles if r in roles), "self_and_descendants"
        )

    def sees_customer(self, org_id: str, org_path: list[str]) -> bool:
        """Seed 004 机构设置(1)-(4), through organisation.yaml `org_levels` of the actor's roles."""
        if self.sees == "all":
            return True
        if self.sees == "self":
            return org_id == self.ent.org_id
        return self.ent.org_id in org_path


class UnauthorizedLookupDetector:
    kind: ClassVar[str] = "unauthorized_lookup"
    inputs: ClassVar[dict[str, str]] = {"access": "actor_id"}
    Params: ClassVar[type[BaseModel]] = UnauthorizedLookupParams

    def __init__(self, section: DetectorSection, params: UnauthorizedLookupParams, store: Store):
        self.section, self.p, self.store = section, params, store
        self.gap_ms = params.episode_gap_minutes * 60_000
        self.denied_ms = params.denied_window_minutes * 60_000
        # (roles, action, system, fields) -> the role, system and approval reasons of an access that
        # names no approval: a pure function of policy, and events repeat a few of these
        self._unapproved: dict[tuple[Any, ...], list[tuple[str, str]]] = {}

    @staticmethod
    def load_value(data: Any) -> Any:
        return ActorState.from_json(data) if isinstance(data, dict) else data

    # -- events: wait for the watermark ---------------------------------------------------------
    def process(self, stream: str, events: Sequence[Any], ctx: Context) -> Iterable[Finding]:
        by_actor: dict[str, list[tuple[Any, ...]]] = {}
        for actor, row in zip(map(_ACTOR, events), map(ROW, events), strict=True):
            rows = by_actor.get(actor)
            if rows is None:
                by_actor[actor] = [row]
            else:
                rows.append(row)
        for actor, rows in by_actor.items():
            st = self.store.get(actor)
            if st is None:
                st = ActorState()
                self.store.put(actor, st)
            first = min(map(_TS, rows))
            pending = st.pending
            if not pending or first < pending[0][0]:
                ctx.timers.register(actor, first)  # judged once the watermark passes it
            pending += rows
            pending.sort(key=_TS)  # stable: arrival order on ties; linear when already in order
            self.store.touch(actor)
        return ()

    # -- time: judge, then close ----------------------------------------------------------------
    def on_timer(self, actor: str, deadline_ms: int, ctx: Context) -> Iterable[Finding]:
        st = self.store.get(actor)
        if st is None:
            return
        wm = ctx.watermark
        ready = bisect_right(st.pending, wm, key=_TS)
        if ready:
            judged = self._verdicts(actor, st, st.pending[:ready], ctx)
            del st.pending[:ready]
            for row, found in judged:
                ev = Access(actor, row)
                if st.episode is not None and ev.ts > st.episode.end:
                    yield self._close(actor, st)
                self._record(st, ev, found, ctx)
        ep = st.episode
        if ep is not None and ep.end <= wm:
            yield self._close(actor, st)
        elif ep is not None and ep.reasons != ep.emitted:
            yield self._finding(actor, ep, closed=False)
        self.store.touch(actor)
        self._next_timer(actor, st, wm, ctx)

    def _next_timer(self, actor: str, st: ActorState, wm: int, ctx: Context) -> None:
        due = [t for t in (st.pending[0][0] if st.pending else None, st.episode and st.episode.end) if t]
        if st.denials and st.denials[-1][0] + self.denied_ms > wm:
            due.append(st.denials[-1][0] + self.denied_ms)
        if due:
            ctx.timers.register(actor, max(min(due), wm + 1))
        else:
            self.store.delete(actor)

    # -- the rules ------------------------------------------------------------------------------
    def _verdicts(
        self, actor: str, st: ActorState, rows: list[tuple[Any, ...]], ctx: Context
    ) -> list[tuple[tuple[Any, ...], Found]]:
        """(row, reasons) of the offending ones among an actor's ready accesses, in time order.

        The entitlement is looked up once per actor where it can be: the version in force at the
        first and at the last access is in force at every one between (versions are time-ordered).
        The common access then costs a customer lookup and a dict lookup: one customer the actor's
        org sees, read by an active employee without an approval, whose role, system and data
        verdict (a pure function of policy) was worked out before."""
        entitlements = ctx.refs.entitlements
        ent = entitlements.as_of(actor, rows[0][0])
        shared = len(rows) == 1 or entitlements.as_of(actor, rows[-1][0]) is ent
        view = View(ent, ctx) if shared and ent is not None and ent.status is EmployeeStatus.active else None
        views = {id(ent): view} if view is not None else {}
        customer = ctx.refs.customers.as_of
        out = []
        for row in rows:
            ts, _, action, system, fields, subject_ids, _, _, approval_id, outcome = row
            if (
                view is not None
                and not approval_id
                and outcome is not Outcome.denied
                and len(subject_ids) == 1
                and action not in CHANGES
            ):
                rules = self._unapproved.get((view.roles, action, system, tuple(fields)))
                cust = customer(subject_ids[0], ts)
                if rules is not None and cust is not None and view.sees_customer(cust.org_id, cust.org_path):
                    if rules:
                        out.append((row, [(r, n, ent) for r, n in rules]))
                    continue
            found = self._judge(actor, st, row, ent if shared else entitlements.as_of(actor, ts), views, ctx)
            if found:
                out.append((row, found))
        return out

    def _denial(self, st: ActorState, row: tuple[Any, ...]) -> Found:
        """Repeated denials are probing (seed 004 流程描述(4)⑤: monitor abnormal operations)."""
        ts = row[0]
        st.denials = [d for d in st.denials if d[0] > ts - self.denied_ms] + [[ts, row[1]]]
        if len(st.denials) < self.p.denied_attempts:
            return []
        note = f"{len(st.denials)} denied in {self.p.denied_window_minutes} min"
        return [("repeated_denials", note, None)]

    @staticmethod
    def _inactive(ent: Entitlement) -> Found:
        """Seed 004 人员管理(4)(5): a termination or suspension ends access, a transfer the old post's."""
        if ent.status is EmployeeStatus.transferred:
            return [("transferred", f"transferred out of {ent.org_id} since {_iso(ent.ts)}", ent)]
        return [("terminated", f"{ent.status.value} since {_iso(ent.ts)}", ent)]

    def _judge(
        self,
        actor: str,
        st: ActorState,
        row: tuple[Any, ...],
        ent: Entitlement | None,
        views: dict[int, View],
        ctx: Context,
    ) -> Found:
        """The reasons one access was unauthorized as of its time, each with a note on its specifics."""
        ts, _, action, system, fields, subject_ids, _, _, approval_id, outcome = row
        if outcome is Outcome.denied:
            return self._denial(st, row)
        if ent is None:
            return [("unknown_actor", "no entitlement record", None)] if _fed(ctx.refs.entitlements) else []
        if ent.status is not EmployeeStatus.active:
            return self._inactive(ent)
        view = views.get(id(ent))  # the entitlement objects live in the registry during the call
        if view is None:
            view = views[id(ent)] = View(ent, ctx)
        if approval_id:
            approval, why = approvals.judge(Access(actor, row), ent, ctx.catalog, self.store)
            covered = why is None
            if covered:
                found: Found = []
            else:
                refused = f"approval {approval.approval_id}: {why}" if approval else "no approval"
                found = [(r, n, ent) for r, n in self._rules(ent, action, system, fields, refused, ctx)]
        else:
            covered = False
            key = (view.roles, action, system, tuple(fields))
            rules = self._unapproved.get(key)
            if rules is None:
                rules = self._rules(ent, action, system, fields, "no approval", ctx)
                if len(self._unapproved) < 100_000:
                    self._unapproved[key] = rules
            found = [(r, n, ent) for r, n in rules]
        return found + self._scope(actor, ts, action, subject_ids, view, covered, ctx)

    @staticmethod
    def _rules(
        ent: Entitlement, action: Action, system: str, fields: list[str], refused: str, ctx: Context
    ) -> list[tuple[str, str]]:
        """What the data, the roles and the systems say of an access no approval covers."""
        catalog = ctx.catalog
        cls = catalog.classify(fields)
        found = []
        if cls is JrClass.C3:
            found.append(("c3_without_approval", f"{action.value} on {system}; {refused}"))
        elif cls is JrClass.C2 and action in TAKES_OUT:
            found.append(("c2_takeout_without_approval", f"{action.value} on {system}; {refused}"))
        system_ok, data_ok = catalog.role_grants(ent.roles, action, system, fields)
        if not system_ok:
            found.append(("system_not_permitted", f"{system} for roles {'/'.join(ent.roles)}"))
        if not data_ok and cls is not JrClass.C3:
            cats = "/".join(sorted(catalog.categories(fields)))
            found.append(("role_not_permitted", f"{action.value} of {cats} for roles {'/'.join(ent.roles)}"))
        return found

    def _scope(
        self,
        actor: str,
        ts: int,
        action: Action,
        subject_ids: list[str],
        view: View,
        covered: bool,
        ctx: Context,
    ) -> Found:
        """Each customer's managing org as of the access: a change outside it, a read outside the
        org's sight (the former org's, after a transfer), or a customer the stream does not know."""
        ent = view.ent
        found: dict[str, tuple[str, str, Entitlement | None]] = {}
        unknown = 0
        previous: Any = False  # the entitlement before this one, looked up on the first customer out of scope
        for cid in subject_ids:
            cust = ctx.customer(cid, ts)
            if cust is None:
                unknown += 1
            elif action in CHANGES:
                if cust.org_id != ent.org_id:
                    note = f"{ent.org_id} changed a customer of {cust.org_id}"
                    found.setdefault(
                        "change_outside_managing_org", ("change_outside_managing_org", note, ent)
                    )
            elif not covered and not view.sees_customer(cust.org_id, cust.org_path):
                if previous is False:
                    previous = ctx.entitlement(actor, ent.ts - 1)
                if (
                    previous
                    and previous.org_id != ent.org_id
                    and View(previous, ctx).sees_customer(cust.org_id, cust.org_path)
                ):
                    note = f"now {ent.org_id}, read a customer of former {previous.org_id}"
                    found.setdefault("old_scope_after_transfer", ("old_scope_after_transfer", note, ent))
                else:
                    note = f"{ent.org_id} read a customer managed by {cust.org_id}"
                    found.setdefault("out_of_scope", ("out_of_scope", note, ent))
        if unknown and _fed(ctx.refs.customers):
            found["unknown_customer"] = (
                "unknown_customer",
                f"{unknown} customer(s) not in pfi.customers",
                ent,
            )
        return list(found.values())

    # -- episodes -------------------------------------------------------------------------------
    def _record(
        self, st: ActorState, ev: Access, found: list[tuple[str, str, Entitlement | None]], ctx: Context
    ) -> None:
        ep = st.episode
        if ep is None:
            ent = next((e for _, _, e in found if e is not None), None) or ctx.entitlement(ev.actor_id, ev.ts)
            ep = st.episode = Episode(ev.ts, self.gap_ms, self._context(ev, ent), ent.org_id if ent else None)
        ep.end = max(ep.end, ev.ts + self.gap_ms)
        ep.last_seen = max(ep.last_seen, ev.ts)
        ep.accesses += 1
        for reason, note, _ in found:
            ep.reasons[reason] = ep.reasons.get(reason, 0) + 1
            ep.notes.setdefault(reason, note)
        if ev.outcome is Outcome.success:
            ep.customers.update(ev.subject_ids)
            ep.unnamed += max(0, ev.row_count - len(ev.subject_ids))
            ep.rank = max(ep.rank, CLASS_RANK[ctx.catalog.classify(ev.fields)])
        if len(ep.evidence) < self.p.evidence_limit:
            ep.evidence.append(ev.event_id)

    def _context(self, ev: Access, ent: Entitlement | None) -> str:
        """The entitlement and approval as they stood at the first offence."""
        if ent is None:
            return "no entitlement as of the access"
        text = (
            f"entitlement as of {_iso(ent.ts)}: org {'/'.join(ent.org_path)}, roles {', '.join(ent.roles) or 'none'}, "
            f"status {ent.status.value}"
        )
        approval = next((a for a in ent.approvals if a.approval_id == ev.approval_id), None)
        if approval is not None:
            text += (
                f"; approval {approval.approval_id} for {approval.purpose}, {approval.max_records} records, "
                f"systems {', '.join(approval.systems) or 'none'}, approver {approval.approver_id or 'none'}, "
                f"expires {_iso(approval.expires_ts)}"
            )
        elif ev.approval_id:
            text += f"; approval {ev.approval_id} unknown"
        return text

    def _close(self, actor: str, st: ActorState) -> Finding:
        ep = st.episode
        assert ep is not None
        st.episode = None
        return self._finding(actor, ep, closed=True)

    def _finding(self, actor: str, ep: Episode, closed: bool) -> Finding:
        ep.revision += 1
        ep.emitted = dict(ep.reasons)
        reasons = [r for r in REASONS if r in ep.reasons]
        spec = self.p.reasons
        sev = max((spec[r].severity for r in reasons), key=SEVERITY_RANK.__getitem__)
        if RANK_CLASS[ep.rank] == "C3" and SEVERITY_RANK[sev] < SEVERITY_RANK[Severity.high]:
            sev = Severity.high  # C3 authentication data: at least high
        ep.severity = sev if SEVERITY_RANK[sev] > SEVERITY_RANK[ep.severity] else ep.severity
        subjects = len(ep.customers) + ep.unnamed
        en = "; ".join(f"{spec[r].en} x{ep.reasons[r]} ({ep.notes[r]}) [{spec[r].source}]" for r in reasons)
        zh = "；".join(f"{spec[r].zh} {ep.reasons[r]}次" for r in reasons)
        summary = (
            f"{actor}: {ep.accesses} unauthorized accesses touching {subjects} customers: {en}. "
            f"{ep.context}. | {actor}：{ep.accesses}次越权访问，涉及{subjects}名客户的个人金融信息：{zh}。"
        )
        counts = {f"reason_{r}": ep.reasons[r] for r in reasons}
        counts |= {"accesses": ep.accesses, "customers_unnamed": ep.unnamed}
        return Finding(
            detector=self.kind,
            rule_id=self.section.rule_id,
            key=actor,
            window_start=ep.start,
            window_end=ep.end,
            severity=ep.severity,
            revision=ep.revision,
            closed=closed,
            summary=summary,
            jr_class=RANK_CLASS[ep.rank],
            actor_id=actor,
            actor_org=ep.org,
            subject_count=subjects,
            subject_sample=sorted(ep.customers)[: self.p.sample_size],
            counts=counts,
            evidence_event_ids=list(ep.evidence),
            first_seen=ep.start,
            last_seen=ep.last_seen,
        )


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts / 1000, UTC).strftime("%Y-%m-%dT%H:%MZ")


def _fed(registry: Any) -> bool:
    """A reference stream the deployment feeds at all: where it feeds none, a missing key is the
    deployment's choice (bulk-only setups, tests), not a per-record gap."""
    return len(registry) > 0
