"""Whether a graded approval (分级授权审批) covers an access: one rule for every access detector.

Seed 004 流程描述(4)④⑤ asks for graded approval and least privilege; seed 001 §一 and §五.1
(《金融消费者权益保护实施办法》第60条(5)) fine PFI used without a strictly applied approval
procedure. So an approval covers an access only when all of these hold, as of the access's time:
- the employee is active and the approval, in their entitlement, has not expired;
- the access states the approval's purpose, or states none: the approval it names says what the
  work is for (most core-banking and card audit logs have no purpose column, and a probe's approved
  credit review logged so was a high art. 5 alert);
- its records keep the approval within its budget (`max_records`, counted across accesses); an
  access naming only customers the approval already covered reads their records again and spends
  nothing (a complaint handler opens the one customer's file five times under an approval for 3);
  bulk_query counts an access the budget covers in part by the records past it (`uncovered`);
- it lists the fields read (by field id, category or class) and the system used: an approval that
  lists none covers none (least privilege); a take-out naming no data is judged as the class and
  categories classification.yaml takes it as (`Catalog.unnamed_granted`);
- its purpose's exclusions (organisation.yaml `approval_exclusions`) do not reach the data: a
  regulatory report never carries C3 authentication data (CVN, PIN, passwords);
- a named approver who is not the requester (four eyes): a self-granted approval is none;
- the employee who reads is its holder, or its approver reading (view, query) what it covers: the
  部室负责人 reads the campaign list they sign (seed 004 角色设置: 审批), within its scope, time and
  budget, which their reads spend; a take-out or change stays its holder's (a dept head exporting
  under a subordinate's approval would approve their own export), and probe_u4 M1's reads of a list
  before any approval of it exists still count;
- an approver who is active and holds an approving role (organisation.yaml permissions with
  `approves`: 部室负责人, whom seed 004 角色设置 gives 审批; a 支行行长 applies, not approves) in an
  org at or above the requester's (分级授权), as of the grant: the earliest version of the
  requester's record that carried the approval (a signature does not lapse when its signer
  retires). An approver the entitlements stream does not know cannot be judged by role;
  one whose id is not even of the bank's employee id form (organisation.yaml `employee_id_form`:
  SYSTEM, AUTO) approves nothing.
"""

from __future__ import annotations

from typing import Any, Protocol

from detectors.base import Context, Store, iso_minute, n_of
from policy.catalog import Catalog
from policy.model import code_form
from schemas.models import MAX_TS, READS, REFERENCE_MIN_TS, Approval, EmployeeStatus, Entitlement

USED = "approval:"  # store key prefix: records an approval has covered so far, and its customers
# customers a budget remembers; past them, a customer read again spends again. A batch re-run for
# the same customers spends nothing (a probe's rerun of 400 under a 500-record approval was an
# alert at 50); 5 000 pseudonyms are about 130 kB in the changelog when the budget changes
REMEMBERED = 5_000


def records(ev: Any) -> int:
    """Records (条) an access touched: its rows, or its customers when it names more."""
    return max(ev.row_count, len(ev.subject_ids))


def _standing(approval: Approval, ev: Any, ent: Entitlement) -> str | None:
    """Why `approval` no longer stands at the access's time: its holder or the approval."""
    if ent.status is not EmployeeStatus.active:
        holder = "the employee" if ent.actor_id == ev.actor_id else f"its holder {ent.actor_id}"
        return f"{holder} is {ent.status.value}"
    if approval.expires_ts > MAX_TS:
        # in microseconds, or HR's "never" (9999-12-31): a standing approval is none (a probe's µs
        # expiry covered every later access); refusing the record would lose its status and roles
        return "its expiry is no time in milliseconds before 2100"
    if approval.expires_ts < REFERENCE_MIN_TS:  # in seconds: a probe's had silently "expired" in 1970
        return "its expiry is no time in milliseconds after 1970 (seconds?)"
    if ev.ts > approval.expires_ts:
        return f"it had expired at {iso_minute(approval.expires_ts)}"
    return None


def _asked(approval: Approval, ev: Any, requester: str, catalog: Catalog) -> str | None:
    """Why `approval`, held by `requester`, does not cover what the access asks of it (purpose,
    requester, system, data); None if it does. Not the time: the same for every access of one kind."""
    if ev.purpose is not None and ev.purpose != approval.purpose:
        return f"it is for {approval.purpose}, not {ev.purpose}"
    if not approval.approver_id or approval.approver_id == requester:
        return "it names no approver other than the requester"
    if ev.system not in approval.systems:
        return f"it does not cover system {ev.system}"
    excluded = catalog.approval_exclusions.get(approval.purpose)
    if excluded and _touches(excluded, ev.fields, catalog):
        return f"a {approval.purpose} approval never covers {'/'.join(sorted(excluded))} data"
    named = catalog.unread_part(ev.fields)
    if not (
        catalog.granted(approval.categories, ev.fields, approval.fields)
        # a take-out naming no data, judged as `unnamed_takeout_class` data: an approval for that
        # covers it (`Catalog.unnamed_granted`); a nightly `*` export under one was a medium twice.
        # Beside named fields (a statement's column nothing knows), it covers them too
        or (
            (
                catalog.access_class(ev.fields, ev.action)[1] is not None
                or (named is not None and catalog.granted(approval.categories, named, approval.fields))
            )
            and catalog.unnamed_granted(approval.categories, approval.fields)
        )
    ):
        return "it does not cover the fields read"
    return None


def _graded(approval: Approval, ent: Entitlement, ctx: Context, ts: int) -> str | None:
    """Why the approver cannot grant it: no approving role, or an org not at or above the
    requester's; None if they can (or are not on the entitlements stream). The approver as of the
    grant (`_granted`): a signature does not lapse when its signer retires or changes post (a
    probe's weekly approval was void, "terminated when it was granted", once HR re-sent the
    requester's record after the signer retired). Its org as it is at the access (`ts`): a
    branch department head's grant before the branch merged into another covers its staff after."""
    approver = ctx.as_read_at(ctx.entitlement(approval.approver_id or "", _granted(approval, ent, ctx)), ts)
    if approver is None:
        # an id not even of an employee's form (SYSTEM, AUTO, 00000) is a workflow's or a forged
        # one: no person graded the grant (a probe's SYSTEM-approved CVN read passed)
        if not ctx.catalog.policy.organisation.is_employee_id(approval.approver_id or ""):
            return f"its approver {approval.approver_id} is no employee's id (organisation.yaml employee_id_form)"
        return None
    if approver.status is not EmployeeStatus.active:  # seed 004 人员管理(5): rights end with the post
        return f"its approver {approval.approver_id} was {approver.status.value} when it was granted"
    if ctx.catalog.approving_roles.isdisjoint(approver.roles):
        names = ", ".join(sorted(ctx.catalog.roles[r].zh for r in ctx.catalog.approving_roles))
        return f"its approver {approval.approver_id} holds no approving role ({names})"
    if approver.org_id not in ent.org_path:
        return f"its approver {approval.approver_id} ({approver.org_id}) is not over the requester's org {ent.org_id}"
    return None


def _granted(approval: Approval, ent: Entitlement, ctx: Context) -> int:
    """When the approval was granted, as the entitlements stream tells it: the earliest of the
    requester's versions carrying it since it was last absent (`EntitlementRegistry.granted`,
    worked out as each version is put, whatever a prune has forgotten since). An approval first seen
    on a record dated after its approver left was granted then."""
    granted = ctx.refs.entitlements.granted(ent.actor_id, ent.ts, approval.approval_id)
    return ent.ts if granted is None else granted


def _touches(ids: frozenset[str], fields: list[str], catalog: Catalog) -> bool:
    """The fields include one of these classes or categories, alone or by combination (JR/T 0171 §4.2)."""
    if catalog.classify(fields).value in ids:
        return True
    return any(catalog.field_category.get(f) in ids or catalog.classify((f,)).value in ids for f in fields)


class Ledger(Protocol):
    """Where budgets are kept: the task's store, or a batch's write-back copy of it."""

    def get(self, key: str, default: Any = None) -> Any: ...
    def put(self, key: str, value: Any) -> None: ...


class Trial:
    """A ledger for judging again what was judged once: each budget as the store holds it, read
    as a copy (`_spend` changes a budget in place), and what is spent forgotten."""

    __slots__ = ("store",)

    def __init__(self, store: Ledger) -> None:
        self.store = store

    def get(self, key: str, default: Any = None) -> Any:
        value = self.store.get(key, default)
        return value.to_json() if isinstance(value, Budget) else value

    def put(self, key: str, value: Any) -> None:
        pass


def judge(
    ev: Any,
    ent: Entitlement | None,
    ctx: Context,
    store: Ledger,
    asked: dict[tuple[Any, ...], str | None] | None = None,
) -> tuple[Approval | None, str | None]:
    """(the approval the access names, why it does not cover the access or None when it does).
    A covering approval's budget is spent here, so call once per access. `asked` memoizes what
    the access asks of the approval for a caller that judges a batch, keyed by the approval
    object's id: valid only while the caller holds the entitlements."""
    approval, why, _ = _spend(ev, ent, ctx, store, asked)
    return approval, why


def decides(ev: Any, ent: Entitlement | None, ctx: Context) -> bool:
    """The approval the access names would cover it but for its budget: held, standing, asked for
    what it grants (judging again, what the budget said then stands)."""
    held = _held_for(ev, ent, ctx)
    if held is None:
        return False
    approval, holder = held
    return (
        _standing(approval, ev, holder) is None
        and (_asked(approval, ev, holder.actor_id, ctx.catalog) or _graded(approval, holder, ctx, ev.ts))
        is None
    )


def lent_purpose(ev: Any, ent: Entitlement | None, ctx: Context) -> str | None:
    """The purpose of the approval an access names where the access states none: the work is for
    what the approval was granted for (most audit logs have no purpose column)."""
    held = _held_for(ev, ent, ctx) if ev.purpose is None else None
    return held[0].purpose if held is not None else None


def _named(ev: Any, ent: Entitlement | None) -> Approval | None:
    """The approval the access names, as the entitlement in force at it carries it: its code in any
    case or width (a log's AP-10 is HR's ap-10, which keys what it spent)."""
    if ent is None or not ev.approval_id:
        return None
    return _held(ent, ev.approval_id)


def _held_for(ev: Any, ent: Entitlement | None, ctx: Context) -> tuple[Approval, Entitlement] | None:
    """(the approval the access names, the entitlement that carries it): the employee's own, or,
    for a read by an active employee who signed it, its holder's as of the access (`_signed`)."""
    approval = _named(ev, ent)
    if approval is not None and ent is not None:
        return approval, ent
    return _signed(ev, ent, ctx) if getattr(ev, "action", None) in READS else None


def _signed(ev: Any, ent: Entitlement | None, ctx: Context) -> tuple[Approval, Entitlement] | None:
    """The approval the access names that its actor, active, signed for another employee, and that
    employee's entitlement as of the access, which carries it; None if there is none."""
    if ent is None or not ev.approval_id or ent.status is not EmployeeStatus.active:
        return None
    found = ctx.refs.entitlements.signed(ev.actor_id, ev.approval_id, ev.ts)
    return None if found is None else (found[1], found[0])


def _held(ent: Entitlement, approval_id: str) -> Approval | None:
    """The approval of this id an entitlement carries, its code in any case or width."""
    named = code_form(approval_id)
    return next(
        (a for a in ent.approvals if a.approval_id == approval_id or code_form(a.approval_id) == named),
        None,
    )


def uncovered(
    ev: Any, ctx: Context, store: Store, asked: dict[tuple[Any, ...], str | None] | None = None
) -> tuple[Approval | None, int | None, str | None]:
    """bulk_query's question: (the approval the access names, how many of its records that
    approval leaves uncovered, why it covers none): 0 when it covers them all; the records past its
    budget when it covers the rest, what was left of the budget spent on them (one row over an
    approved export of 20 000 is one unapproved record, not 20 000: a probe's was a critical
    alert); None when it covers none, and the reason. Spends the budget, so call once per access.
    `asked`: as `judge`'s, for a caller that judges a batch."""
    approval, why, left = _spend(ev, ctx.entitlement(ev.actor_id, ev.ts), ctx, store, asked, partial=True)
    return approval, (left if why is None else None), why


def _spend(
    ev: Any,
    ent: Entitlement | None,
    ctx: Context,
    store: Ledger,
    asked: dict[tuple[Any, ...], str | None] | None = None,
    partial: bool = False,
) -> tuple[Approval | None, str | None, int]:
    """`judge`, and the records left past the budget (`partial`: an access the budget covers in
    part spends what is left of it, and is covered up to there)."""
    if not ev.approval_id:
        return None, "the access names no approval", 0
    held = _held_for(ev, ent, ctx)
    if held is None:
        # revoked, or never granted: the entitlement as of the access does not carry it
        signer = None if getattr(ev, "action", None) in READS else _signed(ev, ent, ctx)
        if signer is not None:  # an approver's take-out or change under it: the holder's to do
            return (
                None,
                f"approval {ev.approval_id} is {signer[1].actor_id}'s: its approver may read what it covers, "
                "not take it out or change it (four eyes)",
                0,
            )
        return (
            None,
            f"approval {ev.approval_id} is not in the employee's entitlement at the access (revoked, not yet "
            "granted, or never)",
            0,
        )
    approval, ent = held
    catalog = ctx.catalog
    why = _standing(approval, ev, ent)
    if why is None and asked is None:
        why = _asked(approval, ev, ent.actor_id, catalog) or _graded(approval, ent, ctx, ev.ts)
    elif why is None and asked is not None:
        # all `_asked` and `_graded` read of the access: the action too (a take-out naming no data
        # is judged by its class), and the org tree as it reads at its time (a merger within the batch)
        kind = (
            id(approval),
            id(ent),
            ev.purpose,
            ev.system,
            ev.action,
            tuple(ev.fields),
            _mergers_by(ctx, ev.ts),
        )
        if kind not in asked:
            asked[kind] = _asked(approval, ev, ent.actor_id, catalog) or _graded(approval, ent, ctx, ev.ts)
        why = asked[kind]
    if why is not None:
        return approval, why, 0
    key = USED + approval.approval_id
    budget = Budget.of(store.get(key, 0))
    if (
        ev.subject_ids
        and records(ev) <= len(set(ev.subject_ids))
        and budget.covered.issuperset(ev.subject_ids)
    ):
        # their records, counted when the approval first covered them (no rows beyond)
        return approval, None, 0
    used = budget.spent + records(ev)
    left = max(used - approval.max_records, 0)
    if left and budget.spent >= approval.max_records:
        return approval, _spent(approval, used), 0
    if budget.expires != approval.expires_ts:
        budget.expires = approval.expires_ts
        ctx.timers.register(key, approval.expires_ts)  # then the budget is forgotten
    # an access past the budget takes what was left of it, refused or covered in part alike: every
    # detector's budget reads the same after it (a review: bulk_query's was spent, the other's not)
    budget.spent = used - left
    for c in () if left else ev.subject_ids:  # one covered in part is read again at a cost
        if len(budget.covered) >= REMEMBERED:
            break
        budget.covered.add(c)
    store.put(key, budget)
    if left and not partial:
        return approval, _spent(approval, used), 0
    return approval, None, left


def _spent(approval: Approval, used: int) -> str:
    """Why an approval's budget covers an access no more (said only then: most accesses fit it)."""
    return f"its budget of {n_of(approval.max_records, 'record')} was spent ({used} needed)"


def _mergers_by(ctx: Context, ts: int) -> int:
    """The org mergers passed by `ts`: `ctx.as_read_at` reads the same org tree at two times with
    as many (organisation.yaml `org_changes`, none in most banks)."""
    orgs = ctx.refs.orgs
    return 0 if orgs is None or not orgs.merged else sum(at <= ts for _, at in orgs.merged.values())


class Budget:
    """What an approval has spent: records, its expiry (when the budget is forgotten) and the
    customers it covered (up to REMEMBERED). Stored as `"<records> <expiry> <pseudonym>..."`, a
    string that no detector's state loader takes for its own; an earlier lifemon kept the number
    alone. Read once and kept as this object while the store holds it."""

    __slots__ = ("spent", "expires", "covered")

    def __init__(self, spent: int, expires: int, covered: set[str]) -> None:
        self.spent, self.expires, self.covered = spent, expires, covered

    @classmethod
    def of(cls, value: int | str | Budget) -> Budget:
        if isinstance(value, Budget):
            return value
        if isinstance(value, int):
            return cls(value, 0, set())
        spent, expires, *covered = value.split()
        return cls(int(spent), int(expires), set(covered))

    def to_json(self) -> str:
        return " ".join([str(self.spent), str(self.expires), *sorted(self.covered)])

    def __eq__(self, other: object) -> bool:  # two paths that spent alike hold equal budgets
        return isinstance(other, Budget) and self.to_json() == other.to_json()

    __hash__ = None  # type: ignore[assignment]  # mutable


def forget_expired(store: Store, key: str, watermark: int) -> None:
    """A detector's timer at an approval's expiry (`judge` set it under the budget's key): its
    budget can spend nothing more, and is deleted. An employee whose id is spelled like the key
    has a timer of that name too: the budget stays until its own expiry."""
    if key.startswith(USED):
        budget = store.get(key)
        if isinstance(budget, (str, Budget)) and Budget.of(budget).expires <= watermark:
            store.delete(key)
