"""Unauthorized lookup: an employee reads or changes customers' PFI outside what their org, role,
employment and approvals allow, judged as of the access's event time.

Unapproved queries of PFI are the most-fined violation (seed 001 §一; 《金融消费者权益保护实施办法》
第60条(5), seed 001 §五.1). Seed 004 sets the bounds:
- 掌上银行家系统机构设置: head office sees every customer, a branch itself and its sub-branches, a
  sub-branch only itself (organisation.yaml `org_levels`); 客户管理机构(2): on the system that
  manages customers by org (the mobile banker, organisation.yaml `manages_customers_by_org`) a
  customer is managed in one sub-branch and other orgs may only query it, so a change elsewhere
  needs a covering approval; on any other system a change is judged by the org's sight, as a read.
  Neither limits an access the counter's permission set covers by itself (柜员, organisation.yaml
  `counter`: its systems, its purposes, its grants): the counter serves a customer of any branch;
- 角色设置: a role is a set of function permissions (organisation.yaml `permissions`);
- 人员管理(6): no employee holds development, testing and operations posts together (organisation.yaml
  `incompatible_roles`): one alert per employee and posts held together, at the first access (`_clashes`);
- 人员管理(4)(5): a transfer changes and a termination ends access at once (a `transferred` record
  carrying roles at a new org is the new post, read as active at the door: streams/engine.py
  `at_new_post`);
- 流程描述(4)④⑤: graded approval and least privilege; C3 data, and an export, print or download of
  C2 data, need an approval that covers them (detectors/approvals.py), approved by someone else,
  whoever asks (an account with no entitlement holds none); the PIN a customer sets at the counter's
  pad (流程描述(1)⑨) is written, not read;
- 流程描述(4)⑩, (1)⑧: data read for a stated purpose it was not collected for (purposes.yaml) needs
  each customer's separate consent to that purpose.
A covering approval also allows a cross-org query or change, and data or systems beyond the role;
never access after a transfer or termination.

Each access waits until the watermark passes its time, so a transfer, termination, customer move
or approval that arrives late (within the allowed lateness) still decides it, as a Flink temporal
join waits for its versioned table. No verdict is final earlier: any entitlement version of the
actor, or customer version, dated between the version in force and the access can still arrive
and turn a clean access into an offence or an offence into a clean one. So the waiting is made
cheap instead:
- a batch waits as one *block* of the store, written once and deleted once judged, and one timer
  for the task wakes the judgment (detectors/inbox.py);
- the accesses the watermark has passed are *screened* column by column (`_screen`): the
  entitlements and customers looked up for the whole batch, the policy verdict memoized per kind
  of access. What passes is authorized for certain. The rest (repeated-denial candidates, several
  customers, refused approvals, anything out of sight) meets the full rules, per actor, in time
  order.
An entitlement, customer or consent record later still than that (a nightly HR export's termination,
posted hours after it took effect) finds the accesses judged. Judged accesses are kept
`late_reference_hours` with the version each was judged by and the reasons found then
(detectors/judged.py); such a record judges again those of its employee (or of the employees who read
its customer) since, and what they are unauthorized for that they were not found for
is one alert of its own per version (`_again`), revised by later records, the other alerts
standing. A restored task judges again, once, the accesses whose version changed: a record that
came after its last checkpoint is in the registry the restart read, and its alert is the same one.

Per actor, only for an actor with something to remember: recent denials (repeated denials are a
finding; a single one is only counted in the engine's rollups), and the open *episode*: one alert
whose id is hash(actor, first offending access), growing by revisions while the actor keeps
offending, closed once `episode_gap_minutes` pass without a new offence. An actor or customer the
reference streams do not know is a coverage gap: listed in the alert, never passed.
"""

from __future__ import annotations

import zlib
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from itertools import compress, repeat
from operator import attrgetter, itemgetter, not_
from typing import Any, ClassVar

import msgspec
from pydantic import BaseModel, ConfigDict, Field, model_validator

from detectors import approvals, inbox, judged
from detectors.base import DAY_MS, Context, Finding, Store, book_holds, fed, iso_minute, n_of
from policy.clause import Clause
from policy.model import CLASS_RANK, RANK_CLASS, DetectorSection, JrClass, Organisation, ServiceAccount
from schemas.models import (
    CHANGES,
    READS,
    SEVERITY_RANK,
    TAKES_OUT,
    Action,
    ConsentStatus,
    CustomerStatus,
    EmployeeStatus,
    Entitlement,
    Outcome,
    Severity,
)
from schemas.structs import STRICT

ACCESS_STRUCT: Any = STRICT["access"]  # a stored block's events come back as the decoder's structs
# kept accesses, packed and unpacked (detectors/judged.py)
_ENCODE, _DECODE = msgspec.json.Encoder().encode, msgspec.json.Decoder(list[ACCESS_STRUCT]).decode
# store key prefix of an actor's state: an employee id is whatever a log says, and one spelled like
# the inbox's key or an approval's budget (`~inbox`, `approval:…`) must not read that value
ACTOR = "a:"
# reasons an access is unauthorized, in the order an alert lists them
REASONS = (
    "terminated",
    "suspended",
    "transferred",
    "old_scope_after_transfer",
    "change_outside_managing_org",
    "c3_without_approval",
    "c2_takeout_without_approval",
    "forbidden_on_system",
    "out_of_scope",
    "role_not_permitted",
    "system_not_permitted",
    "beyond_collection_purpose",
    "purpose_refused",
    "repeated_denials",
    "before_entitlement",
    "unknown_actor",
    "unknown_customer",
    # last, though an alert would rather lead with it: an access's reasons are kept as these bits
    # (`BIT`) for late HR records, and a bit moved would misread the accesses kept before an upgrade
    "outside_declaration",
)
BIT = {reason: 1 << i for i, reason in enumerate(REASONS)}  # an access's reasons, kept (detectors/judged.py)
# coverage gaps: accesses lifemon could not judge, none of them shown to be unauthorized
GAPS = frozenset({"unknown_actor", "unknown_customer"})


LATEST = 2**62  # as of this, a registry returns a key's newest version
# the reference streams whose late records judge kept accesses again, by what their records name
LATE_KEYS = {"entitlements": "actor_id", "customers": "customer_id", "consents": "subject_id"}
RAISED = "~raised:"  # + employee id: the alerts judging again raised (`LateAlerts`)
CLASHED = "~clash:"  # + employee id, the posts held together: found and raised (`_clashes`)
WITHDRAWN = "withdrawn"  # a late alert's signature once no access is left in it
# what an approval covering the access decides: judged again, an access its approval would cover
# but for the budget keeps what it was found then (the budget stands as later accesses left it)
COVERED = frozenset(
    {
        "out_of_scope",
        "change_outside_managing_org",
        "old_scope_after_transfer",
        "c3_without_approval",
        "c2_takeout_without_approval",
        "role_not_permitted",
        "system_not_permitted",
    }
)


class Reason(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    severity: Severity
    en: str = Field(description="what failed, in words an analyst can act on")
    zh: str
    source: Clause = Field(description="the seed clause the reason enforces")
    regulation: list[Clause] = Field(
        default_factory=list,
        description="the law's clauses this reason breaks beyond the rule's own `regulation` (which "
        "every reason breaks): an alert cites the rule's, then each of its reasons' and sources",
    )


class RoleClash(BaseModel):
    """An employee holding two roles organisation.yaml `incompatible_roles` keeps apart."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    severity: Severity = Severity.medium
    title_zh: str = "员工兼任不相容岗位"
    title_en: str = "An employee holds incompatible posts"
    regulation: list[Clause] = Field(default_factory=list, description="empty: the rule's own")


class UnknownAccountTakeout(BaseModel):
    """C2 or C3 data taken out without approval by an account HR does not know (no entitlement
    record, ever): a batch or service account's password, or one nobody owns, used to stay off
    one's own record (a probe's 3 000 customers' ID numbers exported so were two medium alerts)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    customers: int = Field(
        default=100,
        gt=0,
        description="customers (and rows naming none) such an account took out within a day of its "
        "first such take-out, the episodes before counted, from which its alert is at least "
        "`severity` and leads with `en`",
    )
    severity: Severity = Severity.high
    en: str = "account unknown to HR"
    zh: str = "人力资源未登记的账户"
    source: Clause = Clause(
        zh="seed 004 流程描述(4)④: 其岗位准入及相关系统用户权限应遵循相关业务管理规定…严禁共用账户",
        en="seed 004 流程描述(4)④: post access and system user permissions shall follow the business "
        "management rules…; shared accounts are strictly forbidden",
    )


class UnauthorizedLookupParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    episode_gap_minutes: int = Field(gt=0, description="an episode closes this long after its last offence")
    denied_attempts: int = Field(ge=2, description="denials within the window that make a finding")
    denied_window_minutes: int = Field(gt=0)
    reasons: dict[str, Reason]
    sample_size: int = Field(default=10, ge=0)
    late_reference_hours: int = Field(
        default=36,
        ge=0,
        description="judged accesses are kept this long for an entitlement record that comes later "
        "(a nightly HR export); 0 keeps none",
    )
    evidence_limit: int = Field(default=50, ge=1)
    provisioning_skew_seconds: int = Field(
        default=10,
        ge=0,
        description="an access this close before its employee's entitlement, or before the record "
        "that makes a suspended one active again, is judged by that record: the HR or IAM server's "
        "clock and the application's are apart",
    )
    incompatible_roles: RoleClash = Field(
        default_factory=RoleClash,
        description="seed 004 人员管理(6): an active entitlement version holding two roles of an "
        "organisation.yaml `incompatible_roles` set, found at the first access it judges",
    )
    unknown_account_takeout: UnknownAccountTakeout = Field(default_factory=UnknownAccountTakeout)
    # an alert of coverage gaps alone: accesses not judged, titled so (a review: the rule's title
    # counted them as 越权访问 in a SIEM that tallies by title)
    gap_title_zh: str = "个人金融信息访问无法判定（覆盖缺口）"
    gap_title_en: str = "PFI accesses lifemon could not judge (coverage gap)"

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
        "taken",
        "taken_rows",
        "taken_since",
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
        # what an account HR does not know took out without approval (`UnknownAccountTakeout`): the
        # customers named, and the rows past them
        self.taken: set[str] = set()
        self.taken_rows = 0
        self.taken_since: int | None = None  # the first such take-out counted, within a day before

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__} | {
            "customers": sorted(self.customers),
            "severity": self.severity.value,
            "taken": sorted(self.taken),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Episode:
        ep = cls.__new__(cls)
        for k in cls.__slots__:
            setattr(ep, k, d[k] if k in d else _SINCE[k])
        ep.customers, ep.severity = set(d["customers"]), Severity(d["severity"])
        ep.taken = set(ep.taken)
        return ep


# the slots an earlier lifemon's episodes lack, as a new episode starts them
_SINCE: dict[str, Any] = {"taken": (), "taken_rows": 0, "taken_since": None}
# the reasons a take-out without approval is found for (`_class_rules`)
TAKEOUT_REASONS = frozenset({"c3_without_approval", "c2_takeout_without_approval"})


class ActorState:
    """An actor with something to remember: recent denials, the open episode. Kept under
    `ACTOR + actor`; `keyed` False: an earlier lifemon's, kept under the bare employee id."""

    __slots__ = ("denials", "episode", "keyed", "closed")

    def __init__(self, keyed: bool = True) -> None:
        self.denials: list[list[Any]] = []  # [ts, event_id, counted (1) or not (0)], in time order
        self.episode: Episode | None = None
        self.keyed = keyed
        # the episode the watermark closed, for a day: an access dated before its end, read after
        # a record far ahead moved the watermark past it, rejoins it (`_judge_actor`)
        self.closed: Episode | None = None

    def to_json(self) -> dict[str, Any]:
        episode = self.episode.to_json() if self.episode else None
        closed = self.closed.to_json() if self.closed else None
        return {"denials": self.denials, "episode": episode, "keyed": self.keyed, "closed": closed}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ActorState:
        st = cls(keyed=d.get("keyed", False))
        st.denials = d["denials"]
        st.episode = Episode.from_json(d["episode"]) if d["episode"] else None
        st.closed = Episode.from_json(d["closed"]) if d.get("closed") else None  # none before rejoining
        return st


# An access's attributes as columns, each taken in one C call; action and outcome as strings, since
# an Enum member hashes and is looked up on its class in Python (0.3-0.5 µs each)
_TS, _ACTOR, _SUBJECTS = attrgetter("ts"), attrgetter("actor_id"), attrgetter("subject_ids")
_FIELDS, _APPROVAL = attrgetter("fields"), attrgetter("approval_id")
_KIND = attrgetter("action._value_", "system", "outcome._value_", "purpose")
_ROLES, _ORG, _PURPOSE = attrgetter("roles"), attrgetter("org"), attrgetter("purpose")
_VERSION, _CLASH = attrgetter("version"), attrgetter("clash")


def _holding(ctx: Context, organisation: Any, actor: str, posts: set[str], ts: int) -> tuple[int, bool]:
    """When the employee's uninterrupted holding of `posts` in force at `ts` began, as far as the
    kept versions reach, and whether a version without them comes before it (a holding anew). A
    version's posts are read as its clash is (a DevOps post as the policy spells it, whatever the
    case HR wrote it in: a review's DEVOPS after DevOps was a holding anew)."""
    since = ts
    for at, ent in reversed(ctx.refs.entitlements.history(actor)):
        if at > ts:
            continue
        held = {r for roles, _ in organisation.clashing_roles(ent.roles) for r in roles}
        if ent.status is not EmployeeStatus.active or not posts <= held:
            return since, True
        since = at
    return since, False


def _posts(view: View) -> str:
    """The incompatible posts a version holds together, as one key."""
    return "+".join(sorted({role for held, _ in view.clash for role in held}))


_FIRST = itemgetter(0)
DENIED = Outcome.denied.value
ACTIVE, TRANSFERRED, SUSPENDED = EmployeeStatus.active, EmployeeStatus.transferred, EmployeeStatus.suspended
# the id anchors of `_unjudged`'s notices: a record's time below this, apart from late alerts' (`LateAlerts.anchor`)
UNJUDGED = -(1 << 61)
STATUS_ZH = {EmployeeStatus.terminated: "离职", SUSPENDED: "停用", TRANSFERRED: "调动"}
CLOSED = CustomerStatus.closed
OWN, BELOW, ALL = 1, 2, 3  # how far an org sees: its own customers, its sub-branches' too, every one
SEES = {"self": OWN, "self_and_descendants": BELOW, "all": ALL}  # organisation.yaml `org_levels.*.sees`
Found = list[tuple[str, str, Entitlement | None]]  # (reason, what its offence was about, entitlement)


class View:
    """What the rules read of one entitlement version, worked out once per batch: its roles and
    the visibility of its org level as a key, its org and that visibility (seed 004 机构设置(1)-(4),
    organisation.yaml `org_levels`). `roles` is None for an entitlement the screen leaves to the
    full rules (none, or an employee who is not active)."""

    __slots__ = ("ent", "roles", "org", "mode", "version", "clash")

    def __init__(self, ent: Entitlement | None, ctx: Context):
        self.ent = ent
        self.version = judged.NO_VERSION if ent is None else ent.ts  # what a kept access was judged by
        self.org = ent.org_id if ent is not None else None
        self.mode = _org_sees(ent, ctx.catalog.policy.organisation)
        # the memo's verdict is how far the org must see: a head-office holder of the roles learned
        # "every customer", and a sub-branch holder of the same roles passed on it (a review)
        active = ent is not None and ent.status is ACTIVE
        self.roles = "\x1f".join([*ent.roles, str(self.mode)]) if active else None  # type: ignore[union-attr]
        # seed 004 人员管理(6): the roles an active employee holds that must not go together
        organisation = ctx.catalog.policy.organisation
        self.clash = organisation.clashing_roles(ent.roles) if active else []  # type: ignore[union-attr]

    def sees(self, cust: Any, ctx: Context) -> bool:
        """Head office sees every customer, a branch its own and its sub-branches', a sub-branch its own."""
        return self.mode == ALL or (
            cust.org_id == self.org if self.mode == OWN else _below(self.org, cust, ctx)
        )


def _below(org: str | None, cust: Any, ctx: Context) -> bool:
    """The customer's managing org is `org` or under it: on the customer record's own path, or on the
    org tree's where that knows more (seed 004 机构设置(3): a second-level branch, created by hand in
    the mobile banker, that the core system's customer export leaves out of the path)."""
    orgs = ctx.refs.orgs
    return org in cust.org_path or (orgs is not None and org in orgs.path_of(cust.org_id, cust.org_path))


def _org_sees(ent: Entitlement | None, organisation: Organisation) -> int:
    """How far an employee's org sees (机构设置(1)-(4)): by the level of the org, its depth in the
    tree (`Organisation.sees_at_depth`), never by a role's: a user may hold several roles
    (一个用户可以被赋予多个角色), and a head-office role held at a sub-branch opens nothing there. A
    sub-branch straight under a branch takes the next level's visibility, the same as its own with
    no org below it."""
    if ent is None or not ent.org_path:
        return BELOW
    return SEES[organisation.sees_at_depth(len(ent.org_path))]


class Spending:
    """Approval budgets spent while screening a batch, over the store's: read through, kept here."""

    __slots__ = ("store", "spent")

    def __init__(self, store: Store, spent: dict[str, Any]):
        self.store, self.spent = store, spent

    def get(self, key: str, default: Any = None) -> Any:
        return self.spent[key] if key in self.spent else self.store.get(key, default)

    def put(self, key: str, value: Any) -> None:
        self.spent[key] = value


def _served(counter: bool, action: str, customers: int) -> bool:
    """The counter works for the one customer at it: prints their statement or receipt, which takes
    nothing out, or writes what they key in on its pad, the PIN they set, which reads nothing (seed
    004 流程描述(1)⑨: 引导用户输入(或设置)银行卡密码, shown masked; organisation.yaml grants the
    counter's update of `card_pin` alone)."""
    return counter and customers == 1 and action in (Action.print, Action.update)


def _class_rules(
    judged_as: tuple[JrClass, str | None], action: str, system: str, refused: str, served: bool
) -> list[tuple[str, str]]:
    """Seed 004 流程描述(4)⑤: C3 data, and a take-out of C2 data (④ 原则上限制批量查询、复制), need an
    approval by someone else, whoever asks: the class of the data decides, not the role. `served`:
    the counter, or a post for its own book, works for the one customer it serves (`_served`).
    `judged_as`: `Catalog.access_class`, the class and what a take-out naming no data says of it."""
    cls, unnamed = judged_as
    note = f"{action} on {system}; {refused}" + (f"; {unnamed}" if unnamed else "")
    if cls is JrClass.C3 and not (served and action == Action.update):
        return [("c3_without_approval", note)]
    if cls is JrClass.C2 and action in TAKES_OUT and not served:
        return [("c2_takeout_without_approval", note)]
    return []


def _declaration_note(ev: Any, account: ServiceAccount, broken: list[str]) -> str:
    """What a service account did past its declaration, beside the declaration, as an analyst asks
    whether the job changed or its password is someone else's."""
    records = max(ev.row_count, len(ev.subject_ids))
    return (
        f"outside its declared {' and '.join(broken)}: {ev.actor_id} did {ev.action.value} on {ev.system}"
        + (f", {n_of(records, 'record')}" if records else "")
        + f"; declared: {'/'.join(a.value for a in account.actions)} on {', '.join(account.systems)}, "
        f"at most {n_of(account.max_records, 'record')} a run"
    )


def _book_copy(ev: Any, ent: Entitlement, ctx: Context) -> bool:
    """A post prints one customer of its own book (organisation.yaml `own_book`) for its own work:
    a wealth manager's statement for her customer is that customer's copy, as the counter's is
    (seed 004 流程描述(4)④ restricts copying in bulk, 原则上限制批量复制; a probe's was a medium
    take-out without approval). Judged in full, never screened: the customer decides."""
    if ev.action is not Action.print or len(ev.subject_ids) != 1 or ent.status is not ACTIVE:
        return False
    book = ctx.catalog.own_book(ent.roles, ev.action, ev.system, ev.fields, ev.purpose)
    return book is not None and book_holds(book[1].scope, ctx.customer(ev.subject_ids[0], ev.ts), ent.org_id)


def _decides(stream: str, r: Any, ctx: Context) -> bool:
    """A late customer or consent record, adding a version, that can make a read unauthorized: a
    customer who moved or whose status changed (a customer new to the stream was a coverage gap,
    said then: a nightly export's new customers, dated earlier that day, would judge every kept
    read of theirs again), or a consent that is not a grant. A record that replaces one at its
    time (a correction) judges again whatever it is: it may undo what the replaced one raised."""
    if stream == "consents":
        return r.status is not ConsentStatus.granted
    before = ctx.refs.customers.as_of(r.customer_id, r.ts - 1)
    return before is not None and (before.org_id, before.org_path, before.status) != (
        r.org_id,
        r.org_path,
        r.status,
    )


# a late alert as `LateAlerts` keeps it: [revision, latest access, version, signature, first access]
REVISION, LAST, VERSION, SIGNATURE, FIRST = range(5)


class LateAlerts:
    """The alerts judging an employee's accesses again raised, anchor -> [REVISION, LAST, VERSION,
    SIGNATURE, FIRST], until their timer at the latest access plus the kept hours; and per version,
    how many of its alerts were forgotten so. Under `RAISED` + the employee id."""

    __slots__ = ("alerts", "forgotten")

    def __init__(self, alerts: dict[str, list[Any]] | None = None, forgotten: Any = None) -> None:
        self.alerts = alerts or {}
        self.forgotten: dict[str, int] = forgotten or {}

    def to_json(self) -> dict[str, Any]:
        return {"late_alerts": self.alerts, "forgotten": self.forgotten}

    def retire(self, before: int, last: bool = False) -> None:
        """Forget the alerts whose first read (`last`: whose last read) is older than `before`."""
        for anchor, r in list(self.alerts.items()):
            if r[LAST if last else FIRST] < before:
                del self.alerts[anchor]
                self.forgotten[str(r[VERSION])] = self.forgotten.get(str(r[VERSION]), 0) + 1

    def anchor(self, version: int) -> int:
        """The id anchor of the version's alert: its time negated, below every access's time, and
        another for each one forgotten before it (a version of years ago governs every read since,
        and a late customer move days after one alert of it raises another, which must not replace
        the first)."""
        return -version - 1 - (self.forgotten.get(str(version), 0) << 42)


def _consented(subject: str, purpose: str, ts: int, ctx: Context) -> bool:
    """The subject's separate consent to the purpose, for every channel, stands at `ts`: one given
    for a channel is to be contacted there, not to have other data used for it."""
    c = ctx.consent(subject, purpose, None, ts)
    return c is not None and c.status is ConsentStatus.granted and c.separate


def _withdrawn(subject: str, purpose: str, ts: int, ctx: Context) -> bool:
    """The subject's consent to the purpose, for every channel, is a withdrawal as of `ts`: its
    record for none, or for a contact purpose each channel's word (its own record, or the general
    one where newer) on the channels the bank contacts on for it (purposes.yaml `channels`; a
    probe's customer who refused marketing by phone, SMS, app and WeChat, one by one, was read
    for marketing). One channel's refusal is offscope_marketing's."""
    known = ctx.catalog.purposes.get(purpose)
    words = [
        ctx.consent(subject, purpose, ch, ts)
        for ch in (known.channels if known and known.channels else [None])
    ]
    return all(c is not None and c.status is not ConsentStatus.granted for c in words)


def _former_customer(subject: str, purpose: str, ts: int, ctx: Context) -> bool:
    """The customers feed has the subject's relationship closed as of `ts`, and the subject granted
    no consent to the purpose since (a former customer who opted in again chose it: a review's)."""
    c = ctx.refs.customers.as_of(subject, ts)
    if c is None or c.status is not CLOSED:
        return False
    known = ctx.catalog.purposes.get(purpose)
    channels: list[str | None] = [None, *(known.channels if known and known.channels else [])]
    return not any(
        (g := ctx.consent(subject, purpose, ch, ts)) is not None
        and g.status is ConsentStatus.granted
        and g.ts >= c.ts
        for ch in channels
    )


def _kind(ev: Any, view: View) -> tuple[Any, ...]:
    """The memo key of an access (`_screen` builds it column-wise): its actor's roles, its action,
    system, outcome and purpose (the counter's, `Catalog.at_counter`), whether it names an approval
    (which one is `_spend`'s to judge: keyed by the id, the memo missed once per approval and
    filled up with them), its fields, how many customers it names."""
    return (view.roles, _KIND(ev), bool(ev.approval_id), tuple(ev.fields), len(ev.subject_ids))


class UnauthorizedLookupDetector:
    kind: ClassVar[str] = "unauthorized_lookup"
    inputs: ClassVar[dict[str, str]] = {"access": "actor_id"}
    Params: ClassVar[type[BaseModel]] = UnauthorizedLookupParams

    def __init__(self, section: DetectorSection, params: UnauthorizedLookupParams, store: Store):
        self.section, self.p, self.store = section, params, store
        self.gap_ms = params.episode_gap_minutes * 60_000
        self.denied_ms = params.denied_window_minutes * 60_000
        # (roles, (action, system, outcome, purpose), approval named, fields, customers) -> how far the org must see
        # the access's one customer for it to be authorized, 0 if only the full rules can tell
        # (`_learn`): a pure function of policy, and accesses repeat a few of these
        self._clean: dict[tuple[Any, ...], int] = {}
        # (roles, action, system, fields, own copy) -> the data, role and system reasons when no
        # approval covers it
        self._unapproved: dict[tuple[Any, ...], list[tuple[str, str]]] = {}
        self._views: dict[int, View] = {}  # id(entitlement version) -> its View (`_view`)
        self.keep_ms = params.late_reference_hours * 3_600_000
        self._caught_up = False  # every kept access judged again once since this instance began

    @staticmethod
    def load_value(data: Any) -> Any:
        waiting = inbox.load_value(data, ACCESS_STRUCT)
        if waiting is not None:
            return waiting
        kept = judged.load_value(data)
        if kept is not None:
            return kept
        if isinstance(data, dict) and "late_alerts" in data:
            return LateAlerts(data["late_alerts"], data.get("forgotten"))
        return ActorState.from_json(data) if isinstance(data, dict) else data

    # -- events: wait for the watermark ---------------------------------------------------------
    def process(self, stream: str, events: Sequence[Any], ctx: Context) -> Iterable[Finding]:
        """The batch waits in the inbox, as one block, until the watermark passes its accesses."""
        inbox.hold(self.store, events, ctx)
        return ()

    # -- time: judge, then close ----------------------------------------------------------------
    def on_timer(self, key: str, deadline_ms: int, ctx: Context) -> Iterable[Finding]:
        # every access the watermark has passed is judged before any episode is closed
        yield from self._drain(ctx)
        approvals.forget_expired(self.store, key, ctx.watermark)
        if key == inbox.INBOX:
            return
        if key.startswith(RAISED):
            self._forget_raised(key, ctx)
            return
        actor = key.removeprefix(ACTOR)  # a bare id: an earlier lifemon's timer
        st = self._state(actor, ctx)
        if st is not None:
            yield from self._settle(actor, st, ctx)

    def _state(self, actor: str, ctx: Context) -> ActorState | None:
        """The actor's state, under `ACTOR + actor`. An earlier lifemon kept it under the bare id:
        moved on first read. One found under `ACTOR + actor` that an earlier lifemon kept there is
        the state of the employee whose bare id that is: moved to that employee's key, with a
        timer that settles it."""
        key = ACTOR + actor
        st = self.store.get(key)
        if isinstance(st, ActorState) and not st.keyed:
            self._move(key, ACTOR + key, st)
            ctx.timers.register(ACTOR + key, max(ctx.watermark, 0))
            st = None
        if st is None:
            old = self.store.get(actor)
            if isinstance(old, ActorState) and not old.keyed:
                self._move(actor, key, old)
                st = old
        return st if isinstance(st, ActorState) else None

    def _move(self, old_key: str, new_key: str, st: ActorState) -> None:
        st.keyed = True
        self.store.put(new_key, st)
        self.store.delete(old_key)

    def _drain(self, ctx: Context) -> Iterator[Finding]:
        """Judge the accesses the watermark has passed, in time order per actor (arrival order on ties)."""
        ready = inbox.release(self.store, ctx)
        if not self._caught_up:  # restored: a late record may have come after the last checkpoint
            self._caught_up = True
            if self.keep_ms:
                yield from self._again(self._changed(ctx), ctx)
        if not ready:
            judged.expire(self.store, ctx.watermark - self.keep_ms if self.keep_ms else LATEST)
            return
        suspects, views = self._screen(ready, ctx)
        yield from self._clashes(ready, views, ctx)
        by_actor: dict[str, list[tuple[Any, Entitlement | None]]] = {}
        for ev, ent in suspects:
            by_actor.setdefault(ev.actor_id, []).append((ev, ent))
        found: dict[int, int] = {}  # id(access) -> the bits of its reasons
        for actor, accesses in by_actor.items():
            yield from self._judge_actor(actor, accesses, ctx, found)
        if self.keep_ms:
            versions = list(map(_VERSION, views))
            bits = list(map(found.get, map(id, ready), repeat(0)))
            judged.keep(self.store, ready, versions, bits, ctx.watermark - self.keep_ms, _ENCODE)
        else:  # kept before `late_reference_hours` was set to 0
            judged.expire(self.store, LATEST)

    def _clashes(self, events: list[Any], views: list[View], ctx: Context) -> Iterator[Finding]:
        """Seed 004 人员管理(6) 系统开发人员、系统测试人员与运维人员之间不应相互兼岗: an employee whose
        active entitlement version holds two roles of an `incompatible_roles` set, found at the
        first access judged by a version holding them, once per employee, posts held together and
        holding (the store remembers when the holding alerted began; the first alert's id is the
        employee's and the posts', so a replay or a restart raises the same one, and a nightly IAM
        export re-sending the same roles no new one: a review's raised one a night). The same posts
        held again after a version without them are a holding anew, and another alert (a probe's
        re-grant after the bank's remediation was silent). An employee's roles are what HR grants,
        not what an access does: one alert a holding, however many accesses follow."""
        # (employee, posts, version) -> the earliest access it judged here; then by the holding's
        # start, which the version decides: a batch may hold a holding and the one granted anew after
        # it (a review's were one alert in a batch, two apart)
        by_version: dict[tuple[str, str, int], tuple[Any, View]] = {}
        for i in compress(range(len(views)), map(_CLASH, views)):
            ev, key = events[i], (events[i].actor_id, _posts(views[i]), views[i].version)
            if key not in by_version or ev.ts < by_version[key][0].ts:
                by_version[key] = (ev, views[i])
        organisation = ctx.catalog.policy.organisation
        first: dict[tuple[str, str, int], tuple[Any, View, bool]] = {}
        for (actor, posts, _), (ev, view) in by_version.items():
            since, anew = _holding(ctx, organisation, actor, set(posts.split("+")), ev.ts)
            if (actor, posts, since) not in first or ev.ts < first[(actor, posts, since)][0].ts:
                first[(actor, posts, since)] = (ev, view, anew)
        for (actor, posts, since), (ev, view, anew) in sorted(first.items(), key=lambda kv: kv[0][2]):
            seen = f"{CLASHED}{actor}\x1f{posts}"
            alerted = self.store.get(seen)
            if alerted is None or (anew and since > alerted):
                self.store.put(seen, since)
                yield self._clash(ev, view, ctx, anchor=0 if alerted is None else since)

    def _clash(self, ev: Any, view: View, ctx: Context, anchor: int) -> Finding:
        ent, rule = view.ent, self.p.incompatible_roles
        assert ent is not None
        roles = ctx.catalog.policy.organisation.roles
        en = "; ".join(f"{' + '.join(held)} [{source}]" for held, source in view.clash)
        zh = "；".join("、".join(roles[r].zh if r in roles else r for r in held) for held, _ in view.clash)
        summary = (
            f"{ev.actor_id} holds incompatible posts together: {en}; entitlement as of {iso_minute(ent.ts)} "
            f"(org {ent.org_id}), found at its first access judged, {ev.event_id} on {ev.system} at "
            f"{iso_minute(ev.ts)} | {ev.actor_id}：兼任不相容岗位（{zh}），不应相互兼岗。"
        )
        return Finding(
            detector=self.kind,
            rule_id=f"{self.section.rule_id}.incompatible_roles",
            key=f"{ev.actor_id}/{_posts(view)}",
            anchor=anchor,  # 0 for the first holding, whichever version showed it; then its start
            window_start=ent.ts,
            window_end=ev.ts,
            severity=rule.severity,
            revision=1,
            closed=False,
            summary=summary,
            jr_class=ctx.catalog.classify(ev.fields).value,
            actor_id=ev.actor_id,
            actor_org=ent.org_id,
            counts={"roles": sum(len(held) for held, _ in view.clash)},
            evidence_event_ids=[ev.event_id],
            event_count=1,
            first_seen=ent.ts,
            last_seen=ev.ts,
            title_zh=rule.title_zh,
            title_en=rule.title_en,
            regulation=rule.regulation,
        )

    def _screen(
        self, events: list[Any], ctx: Context
    ) -> tuple[list[tuple[Any, Entitlement | None]], list[View]]:
        """(access, entitlement as of its time) of the accesses that may be unauthorized, in time
        order (arrival order on ties); and the View of each access's entitlement.

        Column by column, without a Python call per access: the entitlements and the customers
        looked up for the whole batch, the policy verdict memoized per kind of access. What passes
        is authorized for certain: one customer, whom the actor's org sees (or manages, for a
        change on a system that manages customers by org), or any known one at the counter (`Catalog.at_counter`), touched by an active
        employee whose roles grant the action on the data and the system; or one customer it knows,
        under an approval that covers the access and has the budget for it. Everything else meets
        the full rules (`_judge`)."""
        n, actors, times = len(events), list(map(_ACTOR, events)), list(map(_TS, events))
        views = self._entitlements(actors, times, ctx)
        # an access stating no purpose is for the purpose of the approval it names, and so judged:
        # the approval covers it (approvals.py), and the purpose rules ask that purpose's consent (a
        # review's marketing approval covered credit reads of a customer who had withdrawn it)
        for i in [i for i, ev in enumerate(events) if ev.purpose is None and ev.approval_id]:
            lent = approvals.lent_purpose(events[i], views[i].ent, ctx)
            if lent is not None:
                events[i] = msgspec.structs.replace(events[i], purpose=lent)
        # per access: how far the org must see its one customer (negative: and an approval must
        # cover it), or 0: to the full rules. The keys are never held in a list: tens of thousands
        # of live tuples wake the garbage collector
        kinds = zip(
            map(_ROLES, views),
            map(_KIND, events),
            map(bool, map(_APPROVAL, events)),
            map(tuple, map(_FIELDS, events)),
            map(len, map(_SUBJECTS, events)),
            strict=True,
        )
        sight: list[Any] = list(map(self._clean.get, kinds))
        if None in sight:
            for i in [i for i, m in enumerate(sight) if m is None]:
                sight[i] = self._learn(_kind(events[i], views[i]), views[i], ctx)
        refused = getattr(ctx.refs.consents, "refused", None)
        if refused:  # a purpose some customer refused: each customer's consent decides, not the memo
            sight = [0 if p in refused else m for m, p in zip(sight, map(_PURPOSE, events), strict=True)]
        screened = list(compress(range(n), sight))
        customers = ctx.refs.customers.as_of_many(
            list(map(_FIRST, map(_SUBJECTS, compress(events, sight)))), list(compress(times, sight))
        )
        unfed = not fed(ctx.refs.customers)  # a stream the deployment does not feed decides nothing
        orgs = list(map(_ORG, compress(views, sight)))
        seen = [
            unfed if c is None else m == ALL or (c.org_id == o if m == OWN else o in c.org_path)
            for c, m, o in zip(customers, map(abs, compress(sight, sight)), orgs, strict=True)
        ]
        for j in [j for j, ok in enumerate(seen) if not ok and customers[j] is not None]:
            # a path that skips a level the org tree knows (`_below`): only where the path missed
            seen[j] = abs(sight[screened[j]]) == BELOW and _below(orgs[j], customers[j], ctx)
        contact = ctx.catalog.contact_purposes
        if not contact.isdisjoint(map(_PURPOSE, events)):  # a former customer's, to the full rules
            for j, (i, c) in enumerate(zip(screened, customers, strict=True)):
                if c is not None and c.status is CLOSED and events[i].purpose in contact:
                    seen[j] = False
        suspects = [
            *compress(range(n), map(not_, sight)),
            *compress(screened, map(not_, seen)),
            *self._spend(events, views, times, screened, seen, ctx),
        ]
        suspects.sort()
        suspects.sort(key=times.__getitem__)  # stable: arrival order on ties
        return [(events[i], views[i].ent) for i in suspects], views

    def _entitlements(self, actors: list[str], times: list[int], ctx: Context) -> list[View]:
        """The `View` of each access's entitlement as of its time. Looked up per actor: the
        version in force at the batch's first and last time is in force at every time between
        (versions are time-ordered); only an actor whose entitlement changed in the meantime is
        looked up per access."""
        registry, first, last = ctx.refs.entitlements, min(times), max(times)
        view_of: dict[str, View] = {}
        changed = set()
        for actor in set(actors):
            ent = registry.as_of(actor, last)
            view_of[actor] = self._view(ent, ctx)
            if registry.as_of(actor, first) is not ent:
                changed.add(actor)
        views = list(map(view_of.__getitem__, actors))
        if changed:
            rows = list(compress(range(len(actors)), map(changed.__contains__, actors)))
            found = registry.as_of_many([actors[i] for i in rows], [times[i] for i in rows])
            for i, ent in zip(rows, found, strict=True):
                views[i] = self._view(ent, ctx)
        if any(v.ent is None or v.ent.status is not ACTIVE for v in view_of.values()) or changed:
            self._provisioned_soon(actors, times, views, ctx)
        return views

    def _provisioned_soon(self, actors: list[str], times: list[int], views: list[View], ctx: Context) -> None:
        """An access judged by no entitlement, or by one not active, whose employee an active record
        provisions within `provisioning_skew_seconds` after it, is judged by that record: a login
        cannot precede its own provisioning, so only the two servers' clocks put it first (a
        probe's IAM record stamped 2 s after the first login was an alert, high after a leave's
        suspension). An active record that ends within the skew still judges what came before it."""
        skew, registry = self.p.provisioning_skew_seconds * 1000, ctx.refs.entitlements
        for i, view in enumerate(views):
            if skew and (view.ent is None or view.ent.status is not ACTIVE):
                soon = registry.as_of(actors[i], times[i] + skew)
                if soon is not None and soon is not view.ent and soon.status is ACTIVE:
                    views[i] = self._view(soon, ctx)

    def _view(self, ent: Entitlement | None, ctx: Context) -> View:
        """The entitlement version's View, kept while the version is in use. The cache holds the
        version itself, so its id cannot be another object's meanwhile."""
        view = self._views.get(id(ent))
        if view is None or view.ent is not ent:
            if len(self._views) >= 100_000:
                self._views.clear()
            view = self._views[id(ent)] = View(ent, ctx)
        return view

    def _spend(
        self,
        events: list[Any],
        views: list[View],
        times: list[int],
        screened: list[int],
        seen: list[bool],
        ctx: Context,
    ) -> list[int]:
        """The accesses naming an approval that it does not cover, of those that passed so far
        (`seen` of the `screened`); the others spend its budget. Budgets are spent in time order:
        once an approval's access goes to the full rules, so do its later ones, which then spend
        it in the same order."""
        named = list(compress(range(len(events)), map(_APPROVAL, events)))
        named.sort(key=times.__getitem__)
        to_rules: set[str] = set()
        refused = []
        budgets: dict[str, Any] = {}  # spent here, written to the store once
        ledger = Spending(self.store, budgets)
        asked: dict[tuple[Any, ...], str | None] = {}
        for i in named:
            ev, j = events[i], bisect_left(screened, i)
            if j == len(screened) or screened[j] != i or not seen[j]:
                to_rules.add(ev.approval_id)  # a suspect already
            elif (
                ev.approval_id in to_rules
                or approvals.judge(ev, views[i].ent, ctx, ledger, asked)[1] is not None
            ):
                to_rules.add(ev.approval_id)
                refused.append(i)
        for key, used in budgets.items():
            self.store.put(key, used)
        return refused

    def _learn(self, key: tuple[Any, ...], view: View, ctx: Context) -> int:
        """How far the org must see the one customer of an access of this kind for it to be
        authorized (a change on a system that manages customers by org: its own customer only),
        negative when that is up to the approval it names (which covers any org's reads and
        changes); 0 if only the full rules can tell."""
        roles, (action, system, outcome, purpose), approved, fields, customers = key
        found = self._clean.get(key)
        if found is not None:
            return found
        sight = 0
        forbidden = ctx.catalog.never_allows(system, action)
        if (
            view.ent is not None
            and roles is not None
            and outcome != DENIED
            and customers == 1
            and not forbidden
            # read beyond its purpose: each customer's consent decides (`_beyond_purpose`)
            and not ctx.catalog.beyond_purpose(purpose, fields)
        ):
            counter = ctx.catalog.at_counter(view.ent.roles, action, system, fields, purpose) is not None
            if approved:  # a covering approval answers the org's sight and the managing org alike
                sight = -ALL
            elif not self._rules(
                view.ent,
                action,
                system,
                list(fields),
                "no approval",
                ctx,
                _served(counter, action, customers),
            ):
                managed = action in CHANGES and ctx.catalog.manages_by_org(system)
                sight = ALL if counter else OWN if managed else view.mode
        if len(self._clean) < 100_000:
            self._clean[key] = sight
        return sight

    def _judge_actor(
        self, actor: str, accesses: list[tuple[Any, Entitlement | None]], ctx: Context, bits: dict[int, int]
    ) -> Iterator[Finding]:
        """The full rules on an actor's suspect accesses, in time order, then its episode settled;
        the reasons each was found unauthorized for go to `bits`, by id."""
        st = self._state(actor, ctx)
        if st is None:
            st = ActorState()
            self.store.put(ACTOR + actor, st)
        for ev, ent in accesses:
            found = self._denial(st, ev, ctx) if ev.outcome == DENIED else self._judge(ev, ent, ctx)
            if not found:
                continue
            bits[id(ev)] = sum({BIT[reason] for reason, _, _ in found})
            first = self._first_denials(st) if ev.outcome == DENIED else []
            earlier = [msgspec.structs.replace(ev, ts=t, event_id=e) for t, e in first]
            for offence in [*earlier, ev]:
                yield from self._offence(actor, st, offence, found, ctx)
        yield from self._settle(actor, st, ctx)

    def _offence(self, actor: str, st: ActorState, ev: Any, found: Found, ctx: Context) -> Iterator[Finding]:
        """An unauthorized access (or denial) joins the actor's episode, closing the one it follows."""
        before = None  # the episode this one follows
        if st.closed is not None:  # the first finding since the watermark closed the episode
            if ev.ts <= st.closed.end:  # it would have kept it open, read in time: the same alert
                st.episode = st.closed
            else:
                before = st.closed
            st.closed = None
        if st.episode is not None and ev.ts > st.episode.end:
            before = st.episode
            yield self._close(actor, st)
        self._record(st, ev, found, ctx, before)

    def _settle(self, actor: str, st: ActorState, ctx: Context) -> Iterator[Finding]:
        """Close the episode once the watermark passes its end, else revise it if it grew; then wake
        at the next end or denial expiry, or forget the actor."""
        wm, ep = ctx.watermark, st.episode
        if ep is not None and ep.end <= wm:
            yield self._close(actor, st)
            # the watermark, not the actor's own accesses, ended it: one record dated far ahead on
            # the partition moves it, and where a batch, a restart or the faust runtime cut the
            # partition decided which of the episode's later accesses joined it (a probe's split a
            # 700-customer alert in three)
            st.closed = ep
        elif ep is not None and ep.reasons != ep.emitted:
            yield self._finding(actor, ep, closed=False)
        if st.closed is not None and st.closed.end + DAY_MS <= wm:
            st.closed = None  # a day on, an access dated before its end is history, not the episode
        due = [st.episode.end] if st.episode else [st.closed.end + DAY_MS] if st.closed else []
        if st.denials and st.denials[-1][0] + self.denied_ms > wm:
            due.append(st.denials[-1][0] + self.denied_ms)
        if due:
            self.store.touch(ACTOR + actor)
            ctx.timers.register(ACTOR + actor, max(min(due), wm + 1))
        else:
            self.store.delete(ACTOR + actor)

    # -- reference records later than the allowed lateness --------------------------------------
    def on_late_reference(
        self, stream: str, late: Sequence[tuple[Any, Any]], ctx: Context
    ) -> Iterable[Finding]:
        """Reference records dated at or before what this task has read (with the version each
        replaced at its time, if any): the kept accesses of an employee a late entitlement names,
        or of the employees who read a customer a late customer or consent record names, are
        judged again from the record's time on (`_again`)."""
        attr = LATE_KEYS.get(stream)
        if attr is None or not self.keep_ms:
            return ()
        unjudged = list(self._unjudged(late, ctx)) if stream == "entitlements" else []
        since: dict[str, int] = {}
        for r, replaced in late:
            if stream == "entitlements" or replaced is not None or _decides(stream, r, ctx):
                key = getattr(r, attr)
                since[key] = min(since.get(key, r.ts), r.ts)
        if not since:
            return unjudged
        return [
            *unjudged,
            *self._again(since if stream == "entitlements" else self._readers(since, ctx), ctx),
        ]

    def _unjudged(self, late: Sequence[tuple[Any, Any]], ctx: Context) -> Iterator[Finding]:
        """A termination, suspension or transfer dated before the kept hours (a Friday's posted after
        the weekend, a holiday's after the holiday) governs accesses no longer kept: they were judged
        as the earlier record had them, and cannot be again. Said once per record, medium, with the
        span to review in the source logs; a probe's weekend termination left Saturday's reads
        silent, with nothing to tell the SOC (seed 004 人员管理(5): 立即终止并收回其访问权限)."""
        horizon = ctx.watermark - self.keep_ms
        for r, replaced in late:
            if r.status is ACTIVE or r.ts >= horizon:
                continue
            before = replaced or ctx.refs.entitlements.as_of(r.actor_id, r.ts - 1)
            if before is not None and before.status is r.status:
                continue  # a correction or a re-send: the reads were judged by this status already
            span = f"{iso_minute(r.ts)} to {iso_minute(horizon)}"
            span_zh = f"{iso_minute(r.ts)}至{iso_minute(horizon)}"
            yield Finding(
                detector=self.kind,
                rule_id=self.section.rule_id,
                key=r.actor_id,
                anchor=UNJUDGED - r.ts,  # below every access's time and every late alert's anchor
                window_start=r.ts,
                window_end=horizon,
                severity=Severity.medium,
                revision=1,
                closed=True,
                summary=f"{r.actor_id}: {r.status.value} since {iso_minute(r.ts)}, a record that reached the "
                f"monitor after the accesses it governs had left the {self.keep_ms // 3_600_000} h kept to "
                f"judge again: accesses from {span} were judged as the record before it had them, and not "
                f"again. Review them in the source logs. | {r.actor_id}：{STATUS_ZH[r.status]}（自{iso_minute(r.ts)}）"
                f"的人员记录到达时，其所涉访问已超出保留复核时长：{span_zh}的访问按此前记录判断，未再复核，"
                "请在源日志中复核。",
                jr_class=JrClass.C1.value,
                actor_id=r.actor_id,
                actor_org=r.org_id,
                counts={"accesses": 0, "customers": 0, "records": 0},
                first_seen=r.ts,
                last_seen=horizon,
                title_en="Accesses judged before a late personnel record, beyond the hours kept to judge them again",
                title_zh="人员变动记录迟到，超出复核保留时长的访问未再判断",
            )

    def _readers(self, since: dict[str, int], ctx: Context) -> dict[str, int]:
        """The employees whose kept accesses name a customer of `since` at or after its time, each
        from the earliest such access."""
        actors: dict[str, int] = {}
        kept, horizon = self.store.get(judged.KEPT), ctx.watermark - self.keep_ms
        for _, _, events in judged.rows(self.store, min(since.values()), horizon, _DECODE):
            for ev in events:
                if any(since.get(c, LATEST) <= ev.ts for c in ev.subject_ids) and ev.ts >= kept.horizon(
                    horizon, ev.actor_id
                ):
                    actors[ev.actor_id] = min(actors.get(ev.actor_id, ev.ts), ev.ts)
        return actors

    def _changed(self, ctx: Context) -> dict[str, int]:
        """For a restored task: the actors with a kept access whose version in force is no longer
        the one it was judged by, from the earliest such access (a record that came after the last
        checkpoint is in the registry the restart read whole)."""
        since: dict[str, int] = {}
        kept, horizon = self.store.get(judged.KEPT), ctx.watermark - self.keep_ms
        for _, segment, events in judged.rows(self.store, horizon, horizon, _DECODE):
            now = ctx.refs.entitlements.as_of_many(list(map(_ACTOR, events)), list(map(_TS, events)))
            for ev, ent, was in zip(events, now, segment.versions, strict=True):
                if (judged.NO_VERSION if ent is None else ent.ts) != was and ev.ts >= kept.horizon(
                    horizon, ev.actor_id
                ):
                    since[ev.actor_id] = min(since.get(ev.actor_id, ev.ts), ev.ts)
        return since

    def _again(self, since: dict[str, int], ctx: Context) -> Iterator[Finding]:
        """Judge again the actors' kept accesses from `since` on, against the version now in force,
        each against what it was found then: the reasons it was not found unauthorized for are new.
        New reasons are one closed alert per (actor, version), revised whenever the actor is judged
        again: an actor with such alerts is judged again from the earliest of their versions, and
        one no access is left in is withdrawn (a suspension posted late, then a reinstatement or a
        correction: the suspension's alert shrinks to the reads between them, or is withdrawn).
        An access under an approval its employee still holds, active, keeps what its approval
        decided (`COVERED`): judged again, its budget would stand as later accesses left it."""
        if not since:
            return
        kept = self.store.get(judged.KEPT)
        if kept is None:
            return
        horizon = ctx.watermark - self.keep_ms
        raised = {actor: got for actor in since if (got := self.store.get(RAISED + actor)) is not None}
        for actor, got in raised.items():
            # an alert whose first read is another kept span past the kept hours is history: a
            # later one of its version takes another id, and the hold on its reads ends (a review:
            # a customer moved late every day grew one alert, and held every read, for ever)
            got.retire(horizon - self.keep_ms)
            since[actor] = min([since[actor], *(r[VERSION] for r in got.alerts.values())])
        # an employee's accesses in a late alert are held past the kept hours while it may change
        since = {actor: max(t, kept.horizon(horizon, actor)) for actor, t in since.items()}
        offences: dict[tuple[str, int], list[tuple[Any, Found]]] = {}
        trial = approvals.Trial(self.store)  # judged once already: no budget is spent again
        for _, segment, events in judged.rows(self.store, min(since.values()), horizon, _DECODE):
            for i, ev in enumerate(events):
                start = since.get(ev.actor_id)
                if start is None or ev.ts < start or ev.outcome == DENIED:
                    continue
                ent = ctx.entitlement(ev.actor_id, ev.ts)
                if ent is None:
                    continue  # none before either: a record can add a version, not take one away
                new = [
                    f
                    for f in self._judge(ev, ent, ctx, trial)
                    if not segment.found[i] & BIT[f[0]]
                    and not (f[0] in COVERED and approvals.decides(ev, ent, ctx))
                ]
                if new:
                    offences.setdefault((ev.actor_id, ent.ts), []).append((ev, new))
        for actor in sorted(since):
            got = raised.get(actor) or LateAlerts()
            groups = {version: found for (who, version), found in offences.items() if who == actor}
            for anchor in sorted(got.alerts.keys() - {str(got.anchor(v)) for v in groups}):
                yield from self._withdraw(actor, anchor, got, ctx)
            for version, found in sorted(groups.items()):
                found.sort(key=lambda o: o[0].ts)
                yield from self._late_finding(actor, version, found, got, ctx)
            if got.alerts or got.forgotten:
                self.store.put(RAISED + actor, got)
            if got.alerts or actor in raised:
                self._hold(actor, got, ctx)

    def _forget_raised(self, key: str, ctx: Context) -> None:
        """Late alerts whose accesses left the kept hours can no longer be revised."""
        got = self.store.get(key)
        if not isinstance(got, LateAlerts):
            return
        got.retire(ctx.watermark - self.keep_ms, last=True)
        self.store.touch(key)
        self._hold(key.removeprefix(RAISED), got, ctx)

    def _hold(self, actor: str, got: LateAlerts, ctx: Context) -> None:
        """The employee's reads held from its late alerts' first on, and their timer at the last
        plus the kept hours; none held once it has none."""
        if got.alerts:
            ctx.timers.register(RAISED + actor, max(r[LAST] for r in got.alerts.values()) + self.keep_ms)
        judged.hold(self.store, actor, min((r[FIRST] for r in got.alerts.values()), default=None))

    def _late_finding(
        self, actor: str, version: int, offences: list[tuple[Any, Found]], got: LateAlerts, ctx: Context
    ) -> Iterator[Finding]:
        """The closed alert of the accesses a late entitlement version made unauthorized, unless it
        is what was raised already. Its id hashes the version's time, negated: no episode starts
        there (an episode's start is an access's time)."""
        st = ActorState()
        for ev, found in offences:
            self._record(st, ev, found, ctx)
        ep = st.episode
        assert ep is not None
        anchor = str(got.anchor(version))
        signature = f"{ep.start} {ep.last_seen} {sorted(ep.reasons.items())} {ep.unnamed} {ep.evidence}"
        signature += f" {ep.org} {sorted(ep.notes.items())} {ep.context}"  # what it says, too
        signature += f" {zlib.crc32(' '.join(sorted(ep.customers)).encode())}"  # which reads, not how many
        revision, last, _, was, _ = got.alerts.get(anchor, [0, 0, 0, "", 0])  # REVISION..FIRST
        if signature == was:
            return
        # a revision that shrinks the alert still outranks the one before wherever the highest
        # content version is kept (ClickHouse, the topic's header: `alerts.content_version`)
        last = max(ep.last_seen, last + 1) if revision else ep.last_seen
        got.alerts[anchor] = [revision + 1, last, version, signature, ep.start]
        ep.revision = revision
        ep.context += "; found when reference data came after these accesses were judged"
        yield replace(self._finding(actor, ep, closed=True), anchor=int(anchor), last_seen=last)

    def _withdraw(self, actor: str, anchor: str, got: LateAlerts, ctx: Context) -> Iterator[Finding]:
        """The alert a later record leaves no access in, revised to say so (closed, info)."""
        revision, last, version, signature, start = got.alerts[anchor]  # REVISION..FIRST
        if signature == WITHDRAWN:
            return
        last += 1  # it outranks the revision it withdraws (`alerts.content_version`)
        got.alerts[anchor] = [revision + 1, last, version, WITHDRAWN, start]
        yield Finding(
            detector=self.kind,
            rule_id=self.section.rule_id,
            key=actor,
            anchor=int(anchor),
            window_start=start,
            window_end=last,
            severity=Severity.info,
            revision=revision + 1,
            closed=True,
            summary=f"{actor}: withdrawn: reference data that came later leaves none of the accesses "
            f"this alert found unauthorized (entitlement as of {iso_minute(version)}). | {actor}：已撤销："
            "其后到达的参考数据表明本告警所列访问均未越权。",
            jr_class=JrClass.C1.value,
            actor_id=actor,
            counts={"accesses": 0, "customers": 0, "records": 0},
            first_seen=start,
            last_seen=last,
        )

    # -- the rules ------------------------------------------------------------------------------
    def _denial(self, st: ActorState, ev: Any, ctx: Context) -> Found:
        """Repeated denials are probing (seed 004 流程描述(4)⑤: monitor abnormal operations)."""
        st.denials = [d for d in st.denials if d[0] > ev.ts - self.denied_ms] + [[ev.ts, ev.event_id, 0]]
        if len(st.denials) < self.p.denied_attempts:
            return []
        # what was tried, which the trace (流程描述(4)⑤ 建立追溯机制) asks first: a probe's note said
        # only "3 denied", the three being queries of another branch's customers' balances
        # the catalog's field ids only: a word it does not know may be a value typed into the wrong
        # place, counted, never shown (as transfer_policy's gaps; a review's `Abc@12345` was shown)
        known = [f for f in ev.fields if f in ctx.catalog.field_category]
        unknown = len(ev.fields) - len(known)
        fields = ", ".join(known[:3]) + (", …" if len(known) > 3 else "")
        if unknown:
            fields += f"{', ' if fields else ''}{n_of(unknown, 'field')} the catalog does not know"
        asked = f"{ev.action.value} of {fields or 'no field named'} on {ev.system}"
        if ev.subject_ids:
            asked += f", {n_of(len(ev.subject_ids), 'customer')} named"
        note = f"{len(st.denials)} denied in {self.p.denied_window_minutes} min; the last: {asked}"
        return [("repeated_denials", note, None)]

    @staticmethod
    def _first_denials(st: ActorState) -> list[tuple[int, str]]:
        """(time, event id) of the denials before the last that no alert counted yet: those that
        made the limit with it. A probe's alert of five refusals counted and cited three, and left
        out when the probing began (seed 004 流程描述(4)⑤ 建立追溯机制). Each is counted once: a
        denial kept from before this marking (two items) was counted, or is past the limit."""
        if not st.denials or len(st.denials[-1]) < 3 or st.denials[-1][2]:
            return []  # no denial just made the limit
        first = [(d[0], d[1]) for d in st.denials[:-1] if len(d) > 2 and not d[2]]
        for d in st.denials:
            d[2:] = [1]
        return first

    def _judge(self, ev: Any, ent: Entitlement | None, ctx: Context, ledger: Any = None) -> Found:
        """The reasons this access was unauthorized as of its time, each with a note on its specifics.
        `ledger`: where an approval's budget is spent (the store, unless judged again)."""
        if ctx.catalog.scheduled(ev) is not None:  # a declared service account's run: its standing approval
            return []
        if ent is None:
            if not fed(ctx.refs.entitlements):
                return []
            # an account with no entitlement holds no approval: C3 data or a C2 take-out is
            # unauthorized whoever it is (a probe's IT account exporting names and ID numbers was
            # only a low "could not judge"); its org and roles stay a gap
            judged_as = ctx.catalog.access_class(ev.fields, ev.action)
            taken = [
                (reason, note, None)
                for reason, note in _class_rules(
                    judged_as, ev.action.value, ev.system, "no entitlement, so no approval", False
                )
            ]
            if ctx.refs.entitlements.as_of(ev.actor_id, LATEST) is not None:  # granted only later
                return [*taken, ("before_entitlement", f"no entitlement yet at {iso_minute(ev.ts)}", None)]
            # past what sources.yaml declares the job does, the declaration vouches for nothing: a
            # stolen password's export, judged as an account unknown to HR's (`_record`, `_finding`)
            outside = ctx.catalog.outside_declaration(ev)
            if outside is not None:
                return [*taken, ("outside_declaration", _declaration_note(ev, *outside), None)]
            return [*taken, ("unknown_actor", "no entitlement record", None)]
        if ent.status is not ACTIVE:
            if ent.status is TRANSFERRED:
                return [("transferred", f"transferred out of {ent.org_id} since {iso_minute(ent.ts)}", ent)]
            if ent.status is SUSPENDED:
                return [("suspended", f"suspended since {iso_minute(ent.ts)}", ent)]
            return [("terminated", f"terminated since {iso_minute(ent.ts)}", ent)]
        action = ev.action.value
        approval, why = approvals.judge(ev, ent, ctx, self.store if ledger is None else ledger)
        covered = why is None
        found: Found = []
        if ctx.catalog.never_allows(ev.system, action):  # no approval opens it
            found.append(("forbidden_on_system", f"{action} on {ev.system}", ent))
        # why the approval the access names does not cover it: the analyst's first question
        refused = f"approval {approval.approval_id}: {why}" if approval else why if ev.approval_id else None
        counter = ctx.catalog.at_counter(ent.roles, action, ev.system, ev.fields, ev.purpose) is not None
        served = _served(counter, action, len(ev.subject_ids)) or _book_copy(ev, ent, ctx)
        if not covered:
            if approval is None and not ev.approval_id:
                key = (tuple(ent.roles), action, ev.system, tuple(ev.fields), served)
                rules = self._unapproved.get(key)
                if rules is None:
                    rules = self._rules(ent, action, ev.system, ev.fields, "no approval", ctx, served)
                    if len(self._unapproved) < 100_000:
                        self._unapproved[key] = rules
            else:
                rules = self._rules(ent, action, ev.system, ev.fields, refused or "no approval", ctx, served)
            found += [(reason, note, ent) for reason, note in rules]
        found += self._beyond_purpose(ev, ent, ctx) + self._refused(ev, ent, ctx)
        return found + self._scope(ev, ent, covered, counter, ctx, refused)

    @staticmethod
    def _refused(ev: Any, ent: Entitlement, ctx: Context) -> Found:
        """Seed 004 流程描述(4)②: once a customer refuses a use (marketing, say), it stops at once
        (应当立即停止利用); ③ the customer may withdraw a consent. A read for a purpose whose consent
        the customer withdrew, for every channel, as of the read. A duty the law sets is no consent's."""
        contact = ev.purpose in ctx.catalog.contact_purposes
        if not ev.purpose or (not contact and ev.purpose not in getattr(ctx.refs.consents, "refused", ())):
            return []
        purpose = ctx.catalog.purposes.get(ev.purpose)
        if purpose is not None and purpose.legal_obligation:
            return []
        of = n_of(len(ev.subject_ids), "customer")
        notes = []
        gone = [cid for cid in ev.subject_ids if _withdrawn(cid, ev.purpose, ev.ts, ctx)]
        if gone:
            notes.append(f"read for {ev.purpose}, which {len(gone)} of {of} withdrew consent to")
        # PIPL art. 47 ¶1(2): the product or service ended, what is kept is kept for the law, not to
        # market to a former customer (a probe's win-back campaign read one's holdings, silent)
        used = contact and (ev.action in READS or ev.action in TAKES_OUT)  # an opt-out recorded is no use
        ended = [cid for cid in ev.subject_ids if used and _former_customer(cid, ev.purpose, ev.ts, ctx)]
        if ended:
            notes.append(
                f"read for {ev.purpose} of {len(ended)} of {of} whose relationship had ended (closed)"
            )
        return [("purpose_refused", "; ".join(notes), ent)] if notes else []

    @staticmethod
    def _beyond_purpose(ev: Any, ent: Entitlement, ctx: Context) -> Found:
        """Seed 004 流程描述(4)⑩: a use fits the purpose the data was collected for; (1)⑧: beyond it,
        only with the customer's consent first. PFI is sensitive (PIPL art. 28, 29), so the consent
        is a separate one to the access's purpose, for every channel (`_consented`). No approval
        stands in for it: an approval is the bank's, the consent the customer's."""
        off = ctx.catalog.beyond_purpose(ev.purpose, ev.fields)
        if not off:
            return []
        without = [cid for cid in ev.subject_ids if not _consented(cid, ev.purpose, ev.ts, ctx)]
        if ev.subject_ids and not without:
            return []
        who = (
            f"{len(without)} of {n_of(len(ev.subject_ids), 'customer')} without a separate consent to it"
            if ev.subject_ids
            else "no customer named, so no consent shown"
        )
        return [("beyond_collection_purpose", f"read {', '.join(off)} for {ev.purpose}; {who}", ent)]

    @staticmethod
    def _rules(
        ent: Entitlement,
        action: str,
        system: str,
        fields: list[str],
        refused: str,
        ctx: Context,
        served: bool = False,
    ) -> list[tuple[str, str]]:
        """What the data, the roles and the systems say of an access no approval covers. `served`:
        the counter, or a post for its own book, works for the one customer it serves (`_served`)."""
        catalog = ctx.catalog
        judged_as = catalog.access_class(fields, action)
        cls = judged_as[0]
        found = _class_rules(judged_as, action, system, refused, served)
        system_ok, data_ok = catalog.role_grants(ent.roles, Action(action), system, fields)
        roles = f"for roles {'/'.join(ent.roles)}" if ent.roles else "for an employee holding no role"
        # the approval the access named, and why it did not open it (expired, revoked, spent)
        named = "" if refused == "no approval" else f"; {refused}"
        if not system_ok:
            found.append(("system_not_permitted", f"{system} {roles}{named}"))
        if not data_ok and cls is not JrClass.C3:
            cats = "/".join(sorted(catalog.categories(fields)))
            found.append(("role_not_permitted", f"{action} of {cats} {roles}{named}"))
        return found

    def _scope(
        self,
        ev: Any,
        ent: Entitlement,
        covered: bool,
        counter: bool,
        ctx: Context,
        refused: str | None = None,
    ) -> Found:
        """Seed 004 机构设置 and 客户管理机构: the actor's org must see the customer's managing org; on
        a system that manages customers by org (`Catalog.manages_by_org`: the mobile banker, whose
        rule 客户管理机构 is) a change is made only in the managing sub-branch, elsewhere the org's
        sight judges it as a read; a covering approval answers either; neither limits an access the
        counter's permission set covers by itself (`counter`, `Catalog.at_counter`). Every customer
        must be known, bar the counter's (it opens accounts before core banking registers the
        customer). `refused`: why the approval the access names does not open the customer to it."""
        if counter:  # nor is a customer new to the registry (an account being opened) a gap here
            return []
        why = f"; {refused}" if refused else ""
        found: dict[str, tuple[str, str, Entitlement | None]] = {}
        unknown, action = 0, ev.action.value
        managed = action in CHANGES and ctx.catalog.manages_by_org(ev.system)
        did = "changed" if action in CHANGES else "read"
        view: View | None = None
        previous: Any = False  # the entitlement before this one, looked up on the first customer out of scope
        for cid in ev.subject_ids:
            cust = ctx.customer(cid, ev.ts)
            if cust is None:
                unknown += 1
            elif covered:
                continue
            elif managed:
                if cust.org_id != ent.org_id:
                    note = f"{ent.org_id} changed a customer of {cust.org_id} on {ev.system}{why}"
                    found.setdefault(
                        "change_outside_managing_org", ("change_outside_managing_org", note, ent)
                    )
            elif not (view := view or View(ent, ctx)).sees(cust, ctx):
                if previous is False:
                    # its org as at the access: an outlet merged since is the one it merged into
                    previous = ctx.as_read_at(ctx.entitlement(ev.actor_id, ent.ts - 1), ev.ts)
                if previous and previous.org_id != ent.org_id and View(previous, ctx).sees(cust, ctx):
                    note = f"now {ent.org_id}, {did} a customer of former {previous.org_id}{why}"
                    found.setdefault("old_scope_after_transfer", ("old_scope_after_transfer", note, ent))
                else:
                    note = f"{ent.org_id} {did} a customer managed by {cust.org_id}{why}"
                    found.setdefault("out_of_scope", ("out_of_scope", note, ent))
        if unknown and fed(ctx.refs.customers):
            found["unknown_customer"] = (
                "unknown_customer",
                f"{n_of(unknown, 'customer')} not in pfi.customers",
                ent,
            )
        return list(found.values())

    # -- episodes -------------------------------------------------------------------------------
    def _record(
        self, st: ActorState, ev: Any, found: Found, ctx: Context, before: Episode | None = None
    ) -> None:
        """The access joins the actor's episode, or opens one after `before`, the episode it follows."""
        ep = st.episode
        if ep is None:
            ent = next((e for _, _, e in found if e is not None), None) or ctx.entitlement(ev.actor_id, ev.ts)
            ep = st.episode = Episode(ev.ts, self.gap_ms, self._context(ev, ent), ent.org_id if ent else None)
            if before is not None and before.taken_since is not None and ev.ts - before.taken_since < DAY_MS:
                # what an account HR does not know took out counts over a day, not an episode: a
                # probe's 150 customers in three exports 61 minutes apart were three mediums
                ep.taken, ep.taken_rows = set(before.taken), before.taken_rows
                ep.taken_since = before.taken_since
        ep.end = max(ep.end, ev.ts + self.gap_ms)
        ep.last_seen = max(ep.last_seen, ev.ts)
        ep.accesses += 1
        for reason, note, _ in found:
            ep.reasons[reason] = ep.reasons.get(reason, 0) + 1
            ep.notes.setdefault(reason, note)
        if ev.outcome is Outcome.success:
            ep.customers.update(ev.subject_ids)
            # rows past the customers named stay counted: they may be those customers' (a 12-row
            # statement) or anyone's (`OR 1=1`); the log cannot tell, so the summary says neither
            rows = max(0, ev.row_count - len(ev.subject_ids))
            ep.unnamed += rows
            ep.rank = max(ep.rank, CLASS_RANK[ctx.catalog.access_class(ev.fields, ev.action)[0]])
            reasons = {reason for reason, _, _ in found}
            # a batch job's or an application's account sources.yaml declares is known, if not to HR,
            # as far as its declaration goes
            unknown = "outside_declaration" in reasons or (
                "unknown_actor" in reasons and ev.actor_id not in ctx.catalog.service_accounts
            )
            if unknown and ev.action in TAKES_OUT and not TAKEOUT_REASONS.isdisjoint(reasons):
                ep.taken.update(ev.subject_ids)
                ep.taken_rows += rows
                if ep.taken_since is None:
                    ep.taken_since = ev.ts
        if len(ep.evidence) < self.p.evidence_limit:
            ep.evidence.append(ev.event_id)

    def _context(self, ev: Any, ent: Entitlement | None) -> str:
        """The entitlement and approval as they stood at the first offence."""
        if ent is None:
            return "no entitlement as of the access"
        text = (
            f"entitlement as of {iso_minute(ent.ts)}: org {'/'.join(ent.org_path)}, roles {', '.join(ent.roles) or 'none'}, "
            f"status {ent.status.value}"
        )
        approval = next((a for a in ent.approvals if a.approval_id == ev.approval_id), None)
        if approval is not None:
            text += (
                f"; approval {approval.approval_id} for {approval.purpose}, {approval.max_records} records, "
                f"systems {', '.join(approval.systems) or 'none'}, approver {approval.approver_id or 'none'}, "
                f"expires {iso_minute(approval.expires_ts)}"
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
        if RANK_CLASS[ep.rank] is JrClass.C3 and SEVERITY_RANK[sev] < SEVERITY_RANK[Severity.high]:
            sev = Severity.high  # C3 authentication data: at least high
        unknown = self.p.unknown_account_takeout
        if (
            "outside_declaration" in ep.reasons
            and ep.rank >= CLASS_RANK[JrClass.C2]
            and SEVERITY_RANK[unknown.severity] > SEVERITY_RANK[sev]
        ):
            sev = unknown.severity  # judged as an account unknown to HR, the data C2 or C3
        taken = len(ep.taken) + ep.taken_rows
        lead = lead_zh = ""
        if taken >= unknown.customers:  # an identity nobody owns: the analyst's first chase
            if SEVERITY_RANK[unknown.severity] > SEVERITY_RANK[sev]:
                sev = unknown.severity
            of = n_of(len(ep.taken), "customer") + (
                f" and {ep.taken_rows} rows naming none" if ep.taken_rows else ""
            )
            # counted since an earlier episode's first take-out (`_record`): said, or the count
            # reads as this alert's own
            since = ep.taken_since if ep.taken_since is not None and ep.taken_since < ep.start else None
            at = "" if since is None else f" since {iso_minute(since)}"
            lead = f"{unknown.en}, took out the data of {of} without approval{at}, {unknown.customers:,} or more [{unknown.source.cited}]; "
            lead_zh = (
                f"{unknown.zh}"
                + ("" if since is None else f"自{iso_minute(since)}起")
                + f"未经审批导出{len(ep.taken)}名客户"
                + (f"及{ep.taken_rows}条未具名记录" if ep.taken_rows else "")
                + f"的个人金融信息（达{unknown.customers}名）；"
            )
        ep.severity = sev if SEVERITY_RANK[sev] > SEVERITY_RANK[ep.severity] else ep.severity
        rows = len(ep.customers) + ep.unnamed
        en = "; ".join(
            f"{spec[r].en} x{ep.reasons[r]} ({ep.notes[r]}) [{spec[r].source.cited}]" for r in reasons
        )
        zh = "；".join(f"{spec[r].zh} {ep.reasons[r]}次" for r in reasons)
        # rows a log counted without naming their customers are records, not known customers
        touched, touched_zh = n_of(len(ep.customers), "customer"), f"{len(ep.customers)}名客户"
        if ep.unnamed and ep.customers:  # a statement's rows, or a broader query's: the log cannot say
            touched += f" and {ep.unnamed} more rows than customers named"
            touched_zh += f"及另外{ep.unnamed}条记录"
        elif ep.unnamed:
            touched += f" and {ep.unnamed} rows naming no customer"
            touched_zh += f"及{ep.unnamed}条未具名记录"
        touching = f"touching {touched}"
        touching_zh = f"涉及{touched_zh}的个人金融信息"
        if not rows:  # refused attempts read nothing: "0 customers" read as a count of victims
            touching, touching_zh = "reading no customer's data", "未读取客户的个人金融信息"
        # gaps alone are accesses not judged: counted as unauthorized, they swelled the SOC's tally
        what, what_zh = (
            (f"{n_of(ep.accesses, 'access', 'accesses')} lifemon could not judge", "次无法判定的访问")
            if GAPS.issuperset(reasons)
            else (n_of(ep.accesses, "unauthorized access", "unauthorized accesses"), "次越权访问")
        )
        summary = (
            f"{actor}: {lead}{what} {touching}: {en}. {ep.context}. | "
            f"{actor}：{lead_zh}{ep.accesses}{what_zh}，{touching_zh}：{zh}。"
        )
        counts = {f"reason_{r}": ep.reasons[r] for r in reasons}
        # customers are the named ones: an OCSF consumer reading subject_count gets no rows in it
        counts |= {"accesses": ep.accesses, "customers": len(ep.customers), "customers_unnamed": ep.unnamed}
        counts["records"] = rows
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
            jr_class=RANK_CLASS[ep.rank].value,
            actor_id=actor,
            actor_org=ep.org,
            subject_count=len(ep.customers),
            subject_sample=sorted(ep.customers)[: self.p.sample_size],
            counts=counts,
            evidence_event_ids=list(ep.evidence),
            event_count=ep.accesses,
            first_seen=ep.start,
            last_seen=ep.last_seen,
            # the rule's own title otherwise (`build_alert`)
            title_zh=self.p.gap_title_zh if GAPS.issuperset(reasons) else "",
            title_en=self.p.gap_title_en if GAPS.issuperset(reasons) else "",
            regulation=self._cited(reasons),
        )

    def _cited(self, reasons: list[str]) -> list[Clause]:
        """The rule's clauses, then those of the reasons the alert holds, each once: an alert of C3
        data read without approval cited the consent articles (PIPL arts. 14, 15) of the purpose
        reasons it did not hold."""
        spec = self.p.reasons
        own = [clause for r in reasons for clause in (*spec[r].regulation, spec[r].source)]
        return list(dict.fromkeys([*self.section.regulation, *own]))
