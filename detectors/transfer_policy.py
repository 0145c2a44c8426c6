"""Transfer policy: personal financial information leaving the bank only as seed 002 §四-六 and
seed 004 流程描述(4) allow. Each transfer on `pfi.transfer` (keyed by recipient) is judged on its own
against its rules once the watermark has passed it (it waits in the task's inbox, so a consent
logged seconds late still decides it), and raises each rule once however often it is logged; the
agreed volume is summed per period:

- `c3_shared`: C3 data or an authentication helper shared, transferred, entrusted or disclosed to
  anyone outside the bank (seed 002 §六.1, §六.2(4), §六.3(5), §六.4(2)): critical, a leakage candidate.
- `sharing_without_consent`: shared or disclosed without each named subject's explicit, separate
  consent for the transfer's purpose (one that states none: the one purpose its contract agrees) as
  of the transfer's time (seed 002 §六.2(1), seed 004 流程描述(1)⑦ and (4)⑥⑩). A claimed legal basis is not a record; subjects the event does not
  name cannot be checked and count as without consent. De-identified data is exempt (§六.2(1)).
- `entrusted_not_deidentified`: a processor entrusted with data that is not de-identified;
  encryption alone does not count, nor a flag on a file that names its subjects or sends what names a
  person beyond what the processor's contract lets it receive in clear (recipients.yaml
  `identifiable`), which a file within it is silent on, flagged either way (seed 002 §六.4(3), seed
  004 流程描述(4)⑪).
- `unencrypted_public_network`: C2 or C3 data over a public network without encryption (seed 002 §四(3)).
- `payment_sensitive_unencrypted`: C3 payment-sensitive data (classification.yaml `payment_sensitive`:
  track data, PIN, CVN, card expiry) sent without encryption over any network (seed 002 §四(3), its
  second clause); it takes the place of the public-network rule for such a transfer.
- `cross_border`: data leaving the home country without every subject's separate consent or
  without an outbound security assessment declared for the recipient and valid at the time, or
  to a recipient outside the bank's group (seed 002 §六.5(1)-(3), seed 004 流程描述(4)⑬): a
  leakage candidate.
- `recipient_not_approved`: a recipient not in `policy/recipients.yaml`, with no contract in force,
  or whose contract does not cover the categories sent or the transfer's purpose (seed 002 §六.2(2),
  §六.4(5)).
- `disclosed_without_assessment`: a public disclosure that names no personal information
  protection impact assessment (or one not declared for the recipient and valid, where it declares
  them): seed 004 基本规定(3)③ assesses every disclosure before it is made (PIPL art. 55).
- `provided_without_assessment`: entrusting or providing (a processor, a third party) under a
  contract in force while recipients.yaml records no impact assessment of the arrangement valid at
  the time, or the transfer names one it does not (seed 004 基本规定(3)③, seed 002 §六.4(4)).
- `onward_transfer`: a recipient the bank declared passing data on to another, its contract in force
  naming no such written authorisation (`may_entrust`; seed 002 §六.4(2)).
- `provided_from_closed_system`: customer data sent from a system whose rules forbid providing it
  (organisation.yaml `never_provide_to`: the mobile banker, seed 004 掌上银行家 系统使用要求⑥) to a
  recipient of such a type, whatever the consent or contract; only what the law requires leaves it.
- `sender_not_active`: the employee who ran the transfer (`actor_id`) was terminated, suspended or
  between posts at its time on the entitlements stream (seed 004 人员管理(4)(5): access ends with
  the post); an employee the stream does not know is not judged here.
- `provided_under_legal_obligation`: a trace of data provided under a legal obligation to an
  authority of a class recipients.yaml declares (`authorities`: courts, procuratorates, public
  security), which is then judged as a regulator, not as a consent-based share (seed 004 流程描述(4)①⑩);
  low, rising with the subjects of the provision, one neither naming nor counting them, or an
  employee running it under no internal approval that covers it (`authority_provision`,
  `approval_id`): an inquiry names a case's few people. What employees sent one authority in a day
  is one alert of its own, revised as the day reaches each step.
- `volume_exceeded`: more records than the contract agrees per period, summed per recipient,
  contract and period in the task's store; one alert per period, revised while it grows, closed
  by an event-time timer at the period's end (seed 002 §六.2(2): the scale is agreed and recorded).

Clearing and settlement (转接清算、登记结算) follow the national rules for them, not the sharing rules
(seed 002 §六.2(5); seed 004 流程描述(4)①: necessary financial business). A transfer to a recipient
that `recipients.yaml` declares a clearing institution, for a purpose it clears (`clearing_purposes`),
is not judged by `c3_shared` or `sharing_without_consent`: a card payment's authorisation carries
the track data and PIN block to the card scheme every day. Encryption, approval, the border and the
volume still apply, and a producer cannot claim the exemption: the policy declares it.
"""

from __future__ import annotations

import hashlib
from bisect import insort
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from detectors import approvals, inbox
from detectors.base import AGGREGATE, DAY_MS, LEAKAGE_CANDIDATE, Context, Finding, Store, n_of
from detectors.minors import consent_gap, minor_at
from policy.clause import Clause
from policy.contracts import ContractTerm, RecipientBook
from policy.model import (
    CLASS_RANK,
    RANK_CLASS,
    DetectorSection,
    JrClass,
    Recipient,
    id_spelling,
    iso_country,
    known_country,
)
from schemas.models import (
    SEVERITY_RANK,
    ConsentStatus,
    EmployeeStatus,
    LegalBasis,
    RecipientType,
    Severity,
)
from schemas.structs import STRICT

VOLUME = "volume:"  # store key prefix: volume:{recipient}/{contract}/{period start}
FORGOTTEN = "forgotten:"  # + {recipient}/{contract}: the end of its latest period forgotten
RAISED = "raised:"  # + {recipient}/{transfer}: the rule ids its alerts raised, space-separated
AUTHORITY = "authority:"  # + {recipient}/{day start}: the subjects provided to an authority that day
# LM-TP-006's count of the condition that failed: no approval, no contract in force, a contract
# that does not cover what was sent
NOT_APPROVED, NO_CONTRACT, NOT_COVERED = "not_approved", "no_contract_in_force", "contract_not_covering"
TRANSFER_STRUCT: Any = STRICT["transfer"]  # a stored block's transfers come back as the decoder's structs


class Rule(BaseModel):
    """One rule's metadata: its own id, severity, title and the clauses it enforces."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    rule_id: str
    severity: Severity
    title_zh: str
    title_en: str
    regulation: list[Clause] = Field(min_length=1)
    leakage_candidate: bool = False


class Rules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    c3_shared: Rule
    sharing_without_consent: Rule
    entrusted_not_deidentified: Rule
    unencrypted_public_network: Rule
    payment_sensitive_unencrypted: Rule
    provided_under_legal_obligation: Rule
    cross_border: Rule
    recipient_not_approved: Rule
    onward_transfer: Rule
    volume_exceeded: Rule
    disclosed_without_assessment: Rule
    sender_not_active: Rule
    minor_shared_without_consent: Rule
    provided_from_closed_system: Rule
    provided_without_assessment: Rule


class ProvisionStep(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    subjects: int = Field(gt=0, description="subjects reached, in one provision or to one authority in a day")
    severity: Severity
    regulation: Clause | None = Field(
        default=None, description="the count of the law the step stands on, for the summary"
    )


class AuthorityProvision(BaseModel):
    """How LM-TP-011's trace grows with what a provision to an authority sends: an inquiry (查询,
    查控) names a case's few people, so a provision of many, or of people it does not name, or one an
    employee ran by hand, is no routine answer to be matched at leisure."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    steps: list[ProvisionStep] = Field(
        default_factory=list,
        description="subjects reached -> severity, ascending; in one provision, or to one authority "
        "over a day of the bank's calendar",
    )
    unnamed: Severity | None = Field(
        default=None, description="a provision that names none of its subjects (a list id, a count)"
    )
    by_employee: Severity | None = Field(
        default=None,
        description="the least for a provision an employee ran (`actor_id` set) under no internal "
        "approval that covers it (`approval_id`)",
    )
    day_includes_system: bool = Field(
        default=False,
        description="whether the day steps count the inquiry system's provisions (`actor_id` none) "
        "too, not only those employees ran",
    )

    @model_validator(mode="after")
    def _ascending(self) -> Self:
        pairs = [(s.subjects, SEVERITY_RANK[s.severity]) for s in self.steps]
        if pairs != sorted(pairs) or len({n for n, _ in pairs}) != len(pairs):
            raise ValueError(
                "authority_provision.steps: list them by subjects ascending, each once, severities not "
                "falling (a step of more subjects is no milder)"
            )
        return self

    def step(self, subjects: int) -> ProvisionStep | None:
        """The highest step `subjects` reached."""
        return next((s for s in reversed(self.steps) if subjects >= s.subjects), None)


class TransferPolicyParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    outside_types: list[RecipientType] = Field(description="recipient types outside the bank")
    consent_types: list[RecipientType] = Field(description="types that need each subject's consent")
    entrusted_types: list[RecipientType] = Field(description="types that process on the bank's behalf")
    approval_types: list[RecipientType] = Field(description="types that must be approved recipients")
    assessment_types: list[RecipientType] = Field(
        default_factory=list, description="types each transfer to which names its own impact assessment"
    )
    arrangement_types: list[RecipientType] = Field(
        default_factory=list,
        description="types whose arrangement (a contract in force) is assessed once, before transfers to "
        "it: one of the recipient's assessments in recipients.yaml valid at the transfer's time",
    )
    separate_consent: bool = Field(description="consent must be separate (单独同意), not bundled")
    identifiers: list[str] = Field(
        default_factory=list,
        description="field ids that name a person, and category ids as a log may name them instead: a "
        "batch sending any is shared with its consent, whatever its de-identified flag",
    )
    authority_provision: AuthorityProvision = Field(
        default_factory=AuthorityProvision,
        description="LM-TP-011's severity by the subjects of a provision to an authority (none: low)",
    )
    late_days: int = Field(
        default=7, gt=0, description="days a closed volume period still absorbs late transfers"
    )
    sample_size: int = Field(default=10, ge=0)
    evidence_limit: int = Field(default=50, ge=1)
    rules: Rules

    @model_validator(mode="after")
    def _assessed_one_way(self) -> Self:
        both = sorted(set(self.assessment_types) & set(self.arrangement_types))
        if both:
            raise ValueError(
                f"{', '.join(both)} in both assessment_types and arrangement_types: a transfer to it names "
                "its own assessment or stands on its arrangement's, not both; keep it in one list"
            )
        return self


# a period's transfers deduplicated by id; a period that holds more counts the rest as they come
COUNTED_IDS = 10_000
# a job's runs under one name, count and list: another run the next night, the same one logged
# again (a retry, a gateway's copy past midnight) within this
RERUN_MS = 20 * 3_600_000


class VolumePeriod:
    """Records sent to one recipient under one contract in one agreed period."""

    __slots__ = (
        "start",
        "end",
        "limit",
        "records",
        "transfers",
        "rank",
        "evidence",
        "first_seen",
        "last_seen",
        "revision",
        "emitted",
        "closed",
        "counted",
    )

    def __init__(self, start: int, end: int, limit: int):
        self.start, self.end, self.limit = start, end, limit
        self.records = self.transfers = self.rank = self.revision = self.emitted = 0
        self.evidence: list[str] = []
        self.first_seen = self.last_seen = 0
        self.closed = False
        # the transfers counted (`_transfer`, up to COUNTED_IDS), each with the times of its runs
        # counted: a sender's retry of one transfer, logged under a new event id, or a transfer both
        # its sender and a gateway log, counts once; a run RERUN_MS from every counted one counts
        # again. No time (an earlier lifemon's): every repeat is the one counted
        self.counted: dict[str, list[int]] = {}

    def to_json(self) -> dict[str, Any]:
        return {s: getattr(self, s) for s in self.__slots__}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> VolumePeriod:
        p = cls(d["start"], d["end"], d["limit"])
        for s in cls.__slots__:
            setattr(p, s, d.get(s, getattr(p, s)))  # `counted`: absent in an earlier lifemon's state
        if not isinstance(p.counted, dict):  # an earlier lifemon's: the transfers, no times
            p.counted = dict.fromkeys(p.counted, [])
        return p

    def counts(self, transfer: str, ts: int, former: list[str]) -> bool:
        """Whether the transfer at `ts` is a run not counted yet, noting it; one counted under an
        earlier lifemon's name for it (`former`) never is."""
        if any(f in self.counted for f in former):
            return False
        runs = self.counted.get(transfer)
        if runs is not None and (not runs or any(abs(ts - t) < RERUN_MS for t in runs)):
            return False
        if runs is not None:
            insort(runs, ts)
        elif len(self.counted) < COUNTED_IDS:
            self.counted[transfer] = [ts]
        return True


def _reached(step: ProvisionStep) -> str:
    return f"reached {step.subjects:,}" + (f", {step.regulation.cited}" if step.regulation else "")


class _Provision:
    """A provision as the approval rule reads an access (detectors/approvals.py): the sending
    system is the system used, the fields sent the fields read, its records the rows."""

    __slots__ = ("approval_id", "actor_id", "purpose", "system", "fields", "ts", "row_count", "subject_ids")

    def __init__(self, ev: Any) -> None:
        self.approval_id, self.actor_id, self.purpose, self.ts = (
            ev.approval_id,
            ev.actor_id,
            ev.purpose,
            ev.ts,
        )
        self.system, self.fields, self.row_count = ev.sender_system, list(ev.categories), ev.record_count
        self.subject_ids = list(ev.subject_ids)


def _consent_purpose(ev: Any, term: ContractTerm | None) -> tuple[str | None, str]:
    """(the purpose each subject's consent is looked for, how the alert says it). A consent names a
    purpose (seed 004 流程描述(1)⑦: 处理目的…单独同意): the transfer's own, else the one purpose its
    contract in force agrees, which is then the only one the recipient may get the data for (a probe:
    two customers' separate insurance_referral consents, a CRM log with no purpose, a false alarm).
    A contract of several purposes, or of any, leaves the purpose unknown, and no consent covers it."""
    if ev.purpose:
        return ev.purpose, f"for {ev.purpose}"
    if term is None or not term.contract.purposes:
        return None, "(the transfer states no purpose, so no consent can cover it)"
    contract, agreed = term.contract.id, term.contract.purposes
    if len(agreed) == 1:
        return agreed[
            0
        ], f"for {agreed[0]}, the one purpose contract {contract} agrees (the transfer states none)"
    return None, (
        f"(the transfer states no purpose, and contract {contract} agrees several, {', '.join(agreed)}: "
        "no consent can be matched to it)"
    )


def _transfer(ev: Any) -> str:
    """What tells one transfer from another: its id and what it sent (how many records, to which
    customers: those it names, else the list it names). A retry or a gateway's log of it says the
    same, at whatever time (past the bank's midnight too); a job that gives each night's run one name
    (a probe's INS-LEADS-DAILY: another customer's share on the next day raised nothing; another
    night's list of 2 000 unnamed customers, nothing either) sends another. Runs under one name with
    the same count and customers are one transfer logged twice, as far as the logs can tell (a
    volume counted per day still counts each day's)."""
    return _identity(ev, _whom(ev))


def _whom(ev: Any) -> list[str]:
    """The customers a transfer names, else the list it names."""
    return sorted(set(ev.subject_ids)) or ([f"list:{ev.subject_list_id}"] if ev.subject_list_id else [])


def _origin(ev: Any) -> str:
    """Who holds the list of the customers a transfer counts without naming them: its sender's
    owner, by the transfer id (and the list's, where it names one). PIPL art. 57's notice goes to
    each of them; lifemon saw a count only."""
    listed = f", list {ev.subject_list_id}" if ev.subject_list_id else ""
    return f"transfer {ev.transfer_id} from {ev.sender_system}{listed}"


def _identity(ev: Any, named: list[str], tid: str | None = None) -> str:
    """The id is compared without blanks, width or case (`tid`: as given): an SFTP gateway's copy
    logged it padded or in lower case, and 120 000 records sent counted 240 000 (a probe's)."""
    whom = hashlib.sha256("\x1f".join(named).encode()).hexdigest()[:16]
    tid = id_spelling(ev.transfer_id).casefold() if tid is None else tid
    return f"{tid}/{ev.record_count}/{whom}"


def _former(ev: Any) -> list[str]:
    """What earlier lifemons called the transfer, kept in state until `late_days` forget it: its id
    alone; its identity with the id as written; and for one naming a list and no customers, the
    identity without the list (a copy read after an upgrade raises nothing, and counts once toward
    the volume)."""
    former = [ev.transfer_id, _identity(ev, _whom(ev), ev.transfer_id)]
    if ev.subject_list_id and not ev.subject_ids:
        former.append(_identity(ev, [], ev.transfer_id))
    return former


class TransferPolicyDetector:
    kind: ClassVar[str] = "transfer_policy"
    inputs: ClassVar[dict[str, str]] = {"transfer": "recipient_id"}
    Params: ClassVar[type[BaseModel]] = TransferPolicyParams
    # it reports PFI leaving the bank or exposed to a third party: an OCSF Data Security Finding
    data_exposure: ClassVar[bool] = True
    actor_is: ClassVar[str] = "recipient"  # what its alerts' actor_id names (an employee's id otherwise)

    def __init__(self, section: DetectorSection, params: TransferPolicyParams, store: Store):
        self.section, self.p, self.store = section, params, store
        self._known_fields: dict[str, str] = {}
        self._helpers: frozenset[str] = frozenset()
        self._identifiers = frozenset(params.identifiers)

    @staticmethod
    def load_value(data: Any) -> Any:
        waiting = inbox.load_value(data, TRANSFER_STRUCT)
        if waiting is not None:
            return waiting
        return VolumePeriod.from_json(data) if isinstance(data, dict) else data

    def book(self, ctx: Context) -> RecipientBook:
        self._known_fields = ctx.catalog.field_category
        self._helpers = ctx.catalog.auth_helpers
        return ctx.catalog.recipient_book

    # -- events: wait for the watermark ---------------------------------------------------------
    def process(self, stream: str, events: Sequence[Any], ctx: Context) -> Iterable[Finding]:
        """The batch waits in the inbox until the watermark passes its transfers: a consent or its
        withdrawal, or a sender's leaving, dated before a transfer but reaching the monitor after
        it (within the allowed lateness), still decides it."""
        inbox.hold(self.store, events, ctx)
        return ()

    def _released(self, events: Sequence[Any], ctx: Context) -> Iterator[Finding]:
        book = self.book(ctx)
        grown: dict[str, VolumePeriod] = {}
        for ev in events:
            cls, _ = ctx.catalog.profile(ev.categories)
            term = book.in_force(ev.recipient_id, ev.ts, ev.contract_id)
            day: list[Finding] = []  # an authority's day, its own alert: not the transfer's to raise once
            yield from self._once(ev, list(self._judge(ev, cls, term, book, ctx, day)), ctx)
            yield from day
            if term is not None and term.contract.volume is not None:
                key, period = self._count(ev, cls, term, book, ctx)
                if period is not None:
                    grown[key] = period
        for key, period in grown.items():
            self.store.touch(key)
            if period.records > period.limit and period.records > period.emitted:
                # at most one revision per period and batch; a straggler's, after the period's end,
                # revises its closed alert (or opens it closed)
                yield self._volume_finding(key, period, closed=period.closed)

    def _once(self, ev: Any, found: list[Finding], ctx: Context) -> Iterator[Finding]:
        """A transfer raises each rule once: a sender's retry, or a gateway logging what its sender
        logged, under a new event id and perhaps a later time, raises nothing its first logging
        raised. Remembered `late_days`, as long as a late copy is awaited."""
        if not found:
            return
        key = f"{RAISED}{ev.recipient_id}/{_transfer(ev)}"
        own = self.store.get(key)
        # an earlier lifemon's key, until its timer ends it (`late_days`)
        known = own or next(
            (v for k in _former(ev) if (v := self.store.get(f"{RAISED}{ev.recipient_id}/{k}"))), None
        )
        raised = set(known.split()) if known else set()
        new = [f for f in found if f.rule_id not in raised]
        if new:
            if own is None:
                ctx.timers.register(key, ev.ts + self.p.late_days * DAY_MS)
            self.store.put(key, " ".join(sorted(raised.union(f.rule_id for f in new))))
        yield from new

    def _judge(
        self,
        ev: Any,
        cls: JrClass,
        term: ContractTerm | None,
        book: RecipientBook,
        ctx: Context,
        day: list[Finding],
    ) -> Iterator[Finding]:
        r = self.p.rules
        # what a declared recipient is, and where, is the bank's record (recipients.yaml), not what
        # a sending system's log calls it: a mislabel must not lift a rule. Either word for abroad counts.
        recipients = ctx.catalog.policy.recipients
        declared = recipients.recipients.get(ev.recipient_id)
        kind = recipients.kind_of(ev.recipient_id, ev.recipient_type)
        # a provision the law requires to an authority of a declared class (a court's asset inquiry) is
        # no consent-based share (seed 004 流程描述(4)①⑩: 法律法规…另有规定的除外): judged as a regulator's
        authority = recipients.authority_of(ev.recipient_id, ev.recipient_type, ev.legal_basis)
        if authority is not None:
            kind = RecipientType.regulator
            yield self._legal_provision(ev, cls, authority, book, ctx, day)
        # clearing through a declared clearing house follows the national clearing rules, not the
        # sharing rules (seed 002 §六.2(5)); the policy declares it, never the event
        clearing = recipients.clears(ev.recipient_id, ev.purpose)
        purpose, sought = _consent_purpose(ev, term)
        outside = kind in self.p.outside_types and not clearing
        helpers = sorted(set(ev.categories) & ctx.catalog.auth_helpers)
        flagged: set[str] = set()  # fields c3_shared reported: not reported again as uncovered
        if outside and (cls is JrClass.C3 or helpers):
            flagged = {f for f in ev.categories if ctx.catalog.field_class.get(f) is JrClass.C3}
            flagged |= set(helpers)
            what = "C3 data" + (f" and authentication helpers ({', '.join(helpers)})" if helpers else "")
            if cls is not JrClass.C3:
                what = f"authentication helpers ({', '.join(helpers)})"
            yield self._finding(ev, r.c3_shared, cls, f"sent {what} to {kind.value} {ev.recipient_id}")
        # text no ISO code nor name names says nothing where the policy declares where the recipient
        # is; for a recipient it does not, it is all there is, and not home
        logged = known_country(ev.recipient_country) if declared else iso_country(ev.recipient_country)
        countries = [c for c in (logged, declared.country if declared else None) if c]
        country = next((c for c in countries if c != book.home_country), countries[0] if countries else None)
        cross_border = RecipientType.overseas in (kind, ev.recipient_type) or (
            country is not None and country != book.home_country
        )
        # a sender's flag is a claim: a batch that names its subjects is not de-identified (seed 002
        # §六.2(1): 去标识化处理, 且确保数据接收方无法重新识别). Masked (脱敏) is what entrusting asks
        # (seed 004 流程描述(4)⑪: a call centre's masked numbers); sharing without consent asks that
        # the recipient cannot tell who: a batch sending what names a person (a probe's 1 500 leads'
        # names and phone numbers flagged de-identified passed) is no such batch
        deidentified = ev.deidentified and not ev.subject_ids
        sends = sorted(set(ev.categories).intersection(self.p.identifiers))
        naming = sends if deidentified else []
        # what names a person, sent to no one named or counted: the sender's log left the people out
        # (fix_e4: names and mobiles to the insurer, counts 0, no flag, passed the consent check)
        uncounted = sends if not ev.subject_ids and not ev.subject_count and not deidentified else []
        anonymous = deidentified and not naming  # what sharing without consent may send
        claim = (
            f" (flagged de-identified, yet it names {n_of(len(ev.subject_ids), 'subject')})"
            if ev.deidentified and ev.subject_ids
            else ""
        )
        if kind in self.p.consent_types and not anonymous and not cross_border and not clearing:
            refuted = claim or (
                f" (flagged de-identified, yet it sends {', '.join(naming)})"
                if naming
                else f" (it sends {', '.join(uncounted)} and names and counts no one)"
                if uncounted
                else ""
            )
            missing, unnamed = self._without_consent(ev, purpose, ctx)
            if (naming or uncounted) and not (missing or unnamed):
                unnamed = 1  # names sent, their people not counted (a review's `subject_count: 0`)
            if missing or unnamed:
                without = []
                if missing:
                    verb = "holds" if len(missing) == 1 else "hold"
                    without.append(
                        f"{n_of(len(missing), 'named subject')} {verb} no separate consent {sought}"
                    )
                if unnamed:
                    without.append(f"{n_of(unnamed, 'subject')} {'is' if unnamed == 1 else 'are'} not named")
                yield self._finding(
                    ev,
                    r.sharing_without_consent,
                    cls,
                    f"shared with {kind.value} {ev.recipient_id} although {' and '.join(without)} "
                    f"(claimed basis: {ev.legal_basis.value}){refuted}",
                    {"subjects_without_consent": len(missing), "subjects_unnamed": unnamed},
                    affected=missing,
                )
        if cross_border or (kind in self.p.consent_types and not anonymous and not clearing):
            yield from self._minors(ev, cls, kind, purpose, sought, ctx)
        if kind in self.p.entrusted_types:
            yield from self._entrusted(ev, cls, term, book, deidentified, ctx)
        if not ev.encrypted:
            yield from self._in_the_clear(ev, cls, ctx)
        if cross_border:
            yield from self._cross_border(ev, cls, country, declared, book, purpose, ctx)
        yield from self._closed_system(ev, cls, kind, ctx)
        sender = ctx.entitlement(ev.actor_id, ev.ts) if ev.actor_id else None
        if sender is not None and sender.status is not EmployeeStatus.active:
            yield self._finding(
                ev,
                r.sender_not_active,
                cls,
                f"sent to {ev.recipient_id}, its sender {sender.status.value} by then",
            )
        if not clearing:  # a clearing house's clearing is the national scheme's, not an arrangement's
            yield from self._unassessed(ev, cls, kind, term, book)
        if kind in self.p.approval_types:
            problem, failed = self._approval_problem(ev, term, book, ctx, flagged)
            if problem:
                # which of the rule's three conditions failed, for the incident's notice to say in
                # words (policy/incidents.yaml `conditions`): the summary is for the SOC
                yield self._finding(
                    ev,
                    r.recipient_not_approved,
                    cls,
                    f"sent data to {ev.recipient_id}: {problem}",
                    {failed: 1},
                )
        yield from self._onward(ev, cls, book, ctx)

    def _entrusted(
        self,
        ev: Any,
        cls: JrClass,
        term: ContractTerm | None,
        book: RecipientBook,
        deidentified: bool,
        ctx: Context,
    ) -> Iterator[Finding]:
        """Seed 002 §六.4(3), seed 004 流程描述(4)⑪: entrusted data is de-identified (脱敏处理), and
        encryption alone is not that. A sender's flag is a claim: a file naming its subjects, or
        sending what names a person (`identifiers`) beyond what the processor's contract lets it
        receive in clear (recipients.yaml `identifiable`), is not de-identified (a probe's 3 000
        customers' phone numbers to the call centre, and names, ID and card numbers to the card
        bureau, flagged de-identified under a list id, raised nothing). What the contract declares is
        what the bank agreed to entrust identifiable: a file within it is silent, flagged either way
        (the honest call list, flagged not de-identified, was a high alert a day: why senders set
        the flag). A file flagged not de-identified that sends none of it identifies by something
        else (a customer number), which no contract declares."""
        allowed = self._in_clear(ev, term, book)
        category = ctx.catalog.field_category
        sent = [f for f in dict.fromkeys(ev.categories) if f in self._identifiers]
        beyond = [f for f in sent if f not in allowed and category.get(f) not in allowed]
        if not beyond and (deidentified or sent):
            return
        refuted = (
            [f"it names {n_of(len(ev.subject_ids), 'subject')}"] if ev.deidentified and ev.subject_ids else []
        )
        if ev.deidentified and beyond:
            refuted.append(f"sends {', '.join(beyond)}")
        # the sender who flagged the batch de-identified relied on no encryption: its claim is the point
        why = f" (flagged de-identified, yet {' and '.join(refuted)})" if refuted else ""
        if not ev.deidentified and ev.encrypted:
            why = " (encryption alone is not de-identification)"
        if beyond:
            sends = "" if ev.deidentified else f" it sends {', '.join(beyond)}, and"
            lets = f"only {', '.join(allowed)}" if allowed else "nothing"
            whose = f"contract {term.contract.id} lets" if term else "its contracts let"
            why += f";{sends} {whose} it receive {lets} in clear"
        how = "encrypted but identifiable" if ev.encrypted else "identifiable"
        yield self._finding(
            ev,
            self.p.rules.entrusted_not_deidentified,
            cls,
            f"entrusted {ev.recipient_id} with {how} data{why}",
            {"identifiers_beyond_contract": len(beyond)},
        )

    @staticmethod
    def _in_clear(ev: Any, term: ContractTerm | None, book: RecipientBook) -> list[str]:
        """What the processor's contract lets it receive in clear: the one in force; with none in
        force, the one the transfer names, or any of the recipient's (a contract starting tomorrow is
        LM-TP-006's to say, not a reason to read the call list it covers as a masking failure too)."""
        if term is not None:
            return term.contract.identifiable
        named = [
            t.contract for t in book.terms.get(ev.recipient_id, ()) if ev.contract_id in (None, t.contract.id)
        ]
        return sorted({data for contract in named for data in contract.identifiable})

    def _onward(self, ev: Any, cls: JrClass, book: RecipientBook, ctx: Context) -> Iterator[Finding]:
        """Seed 002 §六.4(2): 未经书面授权, 受委托者不应将其处理的个人金融信息再次委托给其他机构; a third
        party's onward provision is the bank's to authorise as well (PIPL art. 21 ¶2, 23). A transfer
        whose sender is a recipient the bank declared, to anyone but the bank itself, needs the
        sender's contract in force to name that recipient (recipients.yaml `may_entrust`): a probe's
        call centre passing contact data on to the debt collector raised nothing."""
        recipients = ctx.catalog.policy.recipients
        sender = recipients.recipients.get(ev.sender_system)
        if sender is None or sender.type is RecipientType.internal or ev.recipient_id == ev.sender_system:
            return  # the bank's own system sending (a review's warehouse report to the PBoC was "onward")
        if recipients.kind_of(ev.recipient_id, ev.recipient_type) in (
            RecipientType.internal,
            RecipientType.regulator,
        ):
            return  # handed back to the bank, or reported to a regulator
        if recipients.authority_of(ev.recipient_id, ev.recipient_type, ev.legal_basis) is not None:
            return  # a provision the law requires of whoever holds the data (a court's inquiry)
        term = book.in_force(ev.sender_system, ev.ts, None)
        if term is not None and ev.recipient_id in term.contract.may_entrust:
            return
        yield self._finding(
            ev,
            self.p.rules.onward_transfer,
            cls,
            f"{ev.sender_system}, a {sender.type.value} of the bank, passed data on to {ev.recipient_id} "
            "with no written authorisation (its contract in force names no such recipient: may_entrust)",
        )

    def _closed_system(self, ev: Any, cls: JrClass, kind: RecipientType, ctx: Context) -> Iterator[Finding]:
        """Seed 004 掌上银行家 系统使用要求⑥: 不得向任何第三方单位提供此系统内任何客户信息…, 法律法规另有
        规定的除外. A system whose rules say so (organisation.yaml `never_provide_to`) sends to none of
        those recipients, whatever the customers consented to or the contract says (a probe's share
        from 掌上银行家 to the fund distributor, consented and under contract, raised nothing). What the
        law requires is the exception: a legal obligation to a regulator, declared one by one or of a
        declared class of authorities (`kind` is then regulator); a claimed obligation to anyone else
        lifts nothing."""
        if kind is RecipientType.regulator and ev.legal_basis == LegalBasis.legal_obligation:
            return
        if not ctx.catalog.never_provides(ev.sender_system, kind):
            return
        system = ctx.catalog.policy.organisation.systems[ev.sender_system]
        named = f" ({system.zh})" if system.zh else ""
        yield self._finding(
            ev,
            self.p.rules.provided_from_closed_system,
            cls,
            f"provided its customer data to {kind.value} {ev.recipient_id}, although {ev.sender_system}{named} "
            f"provides none to a {kind.value} whatever the consent or contract, only what the law requires "
            f"(organisation.yaml never_provide_to; claimed basis: {ev.legal_basis.value})",
        )

    def _legal_provision(
        self, ev: Any, cls: JrClass, authority: str, book: RecipientBook, ctx: Context, day: list[Finding]
    ) -> Finding:
        """The trace of a provision to an authority under a legal obligation: not a breach, but each
        should match the authority's legal document (协助查询、冻结通知书), which compliance checks. An
        inquiry names a case's few people: the trace grows with the subjects of the provision (a
        batch answer that logs its batch number is judged by the count it gives), with one neither
        naming nor counting them, and with an employee running it by hand under no internal approval
        that covers it (seed 004 流程描述(4)⑤: 依法合规对外提供…应执行内部授权审批手续; a probe's 30 000
        customers' names, IDs, phones and holdings sent to `court_haidian` by an employee through the
        SFTP gateway were one low trace, as were 3). What the day adds up is the day's own alert
        (`_authority_day`), not each later provision's: a probe's 300 ordinary court inquiries of 1-3
        people were 231 medium and 46 high alerts."""
        declared = ctx.catalog.policy.recipients.authorities[authority]
        how = "encrypted" if ev.encrypted else "unencrypted"
        network = "a public network" if ev.public_network else "a private network"
        rule, steps = self.p.rules.provided_under_legal_obligation, self.p.authority_provision
        named = len(set(ev.subject_ids))
        subjects = max(ev.subject_count, named)
        severity, why = rule.severity, []

        def at_least(floor: Severity | None, reason: str) -> None:
            nonlocal severity
            if floor is not None and SEVERITY_RANK[floor] >= SEVERITY_RANK[severity]:
                severity = floor
                why.append(reason)

        if (step := steps.step(subjects)) is not None:
            at_least(
                step.severity,
                f"{n_of(subjects, 'subject')} in one provision ({_reached(step)}): an authority's inquiry "
                "names a case's few people",
            )
        if not subjects and ev.record_count:
            at_least(
                steps.unnamed,
                "it neither names nor counts its subjects, where an inquiry names each person",
            )
        approval, refused = self._approved(ev, ctx) if ev.actor_id else (None, "")
        if ev.actor_id or steps.day_includes_system:
            day.extend(self._authority_day(ev, cls, declared, book, ctx, covered=refused is None))
        if ev.actor_id:
            if refused is None:
                why.append(f"run by {ev.actor_id} under approval {approval} (内部授权审批手续)")
            else:
                at_least(
                    steps.by_employee,
                    f"run by {ev.actor_id} by hand, not by the bank's inquiry system, {refused}: check its "
                    "internal approval (内部授权审批手续)",
                )
        return self._finding(
            ev,
            rule,
            cls,
            f"provided data to {ev.recipient_id} ({declared.name_zh}, {declared.name_en}) under a legal "
            f"obligation, {how} over {network}: not a consent-based share; match it to the authority's "
            "legal document" + "".join(f"; {w}" for w in why),
            {"encrypted": int(ev.encrypted)},
            severity=severity,
        )

    def _approved(self, ev: Any, ctx: Context) -> tuple[str | None, str | None]:
        """(the approval an employee's provision names, why it does not cover it or None when it
        does), by the rule every access detector applies (detectors/approvals.py): held in the
        sender's entitlement and standing at the time, approved by another, for the sending system
        and the fields sent, within its budget of records."""
        if not ev.approval_id:
            return None, "naming no approval"
        approval, refused = approvals.judge(
            _Provision(ev), ctx.entitlement(ev.actor_id, ev.ts), ctx, self.store
        )
        return ev.approval_id, None if refused is None else f"approval {ev.approval_id}: {refused}"

    def _authority_day(
        self, ev: Any, cls: JrClass, declared: Any, book: RecipientBook, ctx: Context, covered: bool
    ) -> Iterator[Finding]:
        """The subjects provided to this authority in the bank's calendar day of `ev` (each
        provision counted once however often it is logged, as a contract's volume counts it): one
        alert for the authority and day, revised as the day reaches each higher step. The caller
        counts what employees ran, and the inquiry system's provisions only with
        `day_includes_system`: its volume is the authorities' own inquiries, each answered by its
        legal document, and seed 001 §五.1's counts are of unlawful provision. A provision its
        approval covers (`covered`) is counted by that approval's budget instead. Kept `late_days`
        after the day, for a copy logged late."""
        steps = self.p.authority_provision
        if covered or not steps.steps:
            return
        local = datetime.fromtimestamp(ev.ts / 1000, book.tz).date()
        start = book.day_start(local)
        key = f"{AUTHORITY}{ev.recipient_id}/{start}"
        day = self.store.get(key)
        if day is None:
            day = VolumePeriod(start, book.day_start(local + timedelta(days=1)), 0)
            self.store.put(key, day)
            ctx.timers.register(key, day.end + self.p.late_days * DAY_MS)
        if not day.counts(_transfer(ev), ev.ts, _former(ev)):
            return
        day.records += max(ev.subject_count, len(set(ev.subject_ids)))
        day.transfers += 1
        day.rank = max(day.rank, CLASS_RANK[cls])
        # a day an earlier lifemon kept has no first time (0)
        day.first_seen, day.last_seen = min(day.first_seen or ev.ts, ev.ts), max(day.last_seen, ev.ts)
        if len(day.evidence) < self.p.evidence_limit:
            day.evidence.append(ev.event_id)
        self.store.touch(key)
        step = steps.step(day.records)
        # `emitted`: the subjects of the step last alerted. One provision past a step alone is its
        # own alert's already
        if day.transfers > 1 and step is not None and step.subjects > day.emitted:
            day.emitted = step.subjects
            yield self._day_finding(ev.recipient_id, key, day, step, declared)

    def _day_finding(
        self, recipient: str, key: str, day: VolumePeriod, step: ProvisionStep, declared: Any
    ) -> Finding:
        whose = "" if self.p.authority_provision.day_includes_system else " run by employees"
        return self._period_finding(
            self.p.rules.provided_under_legal_obligation,
            key,
            day,
            recipient,
            step.severity,
            f"{recipient} ({declared.name_zh}, {declared.name_en}) was provided {n_of(day.records, 'subject')} "
            f"in {n_of(day.transfers, 'provision')}{whose} that day ({_reached(step)}): an authority's "
            "inquiry names a case's few people; match each provision to its legal document and its "
            "internal approval (内部授权审批手续)",
            {"day_subjects": day.records, "day_provisions": day.transfers},
            subjects=day.records,
        )

    def _in_the_clear(self, ev: Any, cls: JrClass, ctx: Context) -> Iterator[Finding]:
        """Seed 002 §四(3): C2 and C3 data cross a public network encrypted; C3 payment-sensitive data
        (支付敏感信息: track data, PIN, CVN, expiry) is encrypted on any network, a private line or the
        bank's own included, whoever receives it (a card scheme clearing it too). One alert for one
        unencrypted transfer: the payment-sensitive rule, where it applies, is the stricter one."""
        payment = sorted(set(ev.categories) & ctx.catalog.payment_sensitive)
        network = "a public network" if ev.public_network else "a private network"
        if payment:
            yield self._finding(
                ev,
                self.p.rules.payment_sensitive_unencrypted,
                cls,
                f"sent payment-sensitive data ({', '.join(payment)}) to {ev.recipient_id} over {network} unencrypted",
            )
        elif ev.public_network and cls is not JrClass.C1:
            yield self._finding(
                ev,
                self.p.rules.unencrypted_public_network,
                cls,
                f"sent {cls.value} data to {ev.recipient_id} over a public network unencrypted",
            )

    def _without_consent(self, ev: Any, purpose: str | None, ctx: Context) -> tuple[list[str], int]:
        """(named subjects without a granted, separate consent for the purpose (`_consent_purpose`) as
        of the transfer, how many subjects are counted but not named): seed 002 §六.2(1), each subject
        checked on the consents stream, whichever channel the consent was recorded on (`consent_to_use`)."""
        named = dict.fromkeys(ev.subject_ids)
        missing = [s for s in named if not self._consents(s, purpose, ev.ts, ctx)]
        return missing, max(ev.subject_count - len(named), 0)

    def _consents(self, subject: str, purpose: str | None, ts: int, ctx: Context) -> Any:
        """The subject's consent to the share as any subject's must be (granted, and separate where
        `separate_consent`), or None."""
        consent = ctx.consent_to_use(subject, purpose, ts) if purpose else None
        if (
            consent is None
            or consent.status is not ConsentStatus.granted
            or (self.p.separate_consent and not consent.separate)
        ):
            return None
        return consent

    def _minors(
        self, ev: Any, cls: JrClass, kind: RecipientType, purpose: str | None, sought: str, ctx: Context
    ) -> Iterator[Finding]:
        """A minor's data is shared only on a separate consent, under 14 the guardian's: under 14 it is
        sensitive (seed 004 定义(10), PIPL art. 31); from 14 the bank reads 流程描述(1)③'s consent
        for collection as holding for sharing (retention.yaml `minors`, detectors/minors.py). A
        probe's 12-year-old's name and phone went to the insurer on the child's own separate consent
        unseen. Judged for the named subjects whose consent would do for an adult: one with none is
        the consent rule's (`sharing_without_consent`, `cross_border`) already, and a list the
        transfer only names (`subject_list_id`) cannot be aged."""
        if not purpose:
            return  # no consent can cover a share of no purpose: the consent rule's
        affected: list[str] = []
        whys: dict[str, None] = {}
        for subject in dict.fromkeys(ev.subject_ids):
            minor = minor_at(subject, ev.ts, ctx)
            consent = self._consents(subject, purpose, ev.ts, ctx) if minor is not None else None
            if minor is None or consent is None:
                continue
            if (why := consent_gap(minor, consent, purpose)) is not None:
                affected.append(subject)
                whys.setdefault(f"{minor.band} without {minor.need}: {why}")
        if affected:
            yield self._finding(
                ev,
                self.p.rules.minor_shared_without_consent,
                cls,
                f"sent the data of {n_of(len(affected), 'minor')} to {kind.value} {ev.recipient_id} {sought}, "
                f"{'; '.join(whys)}",
                {"minors_without_consent": len(affected)},
                affected=affected,
                unnamed=False,
            )

    def _unassessed(
        self, ev: Any, cls: JrClass, kind: RecipientType, term: ContractTerm | None, book: RecipientBook
    ) -> Iterator[Finding]:
        """Seed 004 基本规定(3)③: 委托处理…、向合作机构提供…、公开个人金融信息…应当事前进行个人金融信息保护影响
        评估 (seed 002 §六.4(4): the entrusting too; PIPL art. 55(3)). A disclosure (`assessment_types`)
        is assessed each time and names its assessment. Entrusting and providing (`arrangement_types`)
        are assessed once for the arrangement, which recipients.yaml records (`assessments`): a
        transfer under a contract in force stands on one valid at its time, or on the one it names if
        that is declared and valid (a probe's entrusting to the cloud analytics provider, its
        assessment expired, raised nothing). One with no contract in force, or to a recipient the
        policy does not list, has no arrangement to assess: `recipient_not_approved` says so."""
        # the rule waits until the bank records its arrangements' assessments (a review's upgrade of a
        # bank's own recipients.yaml raised a high alert for every card authorisation and every file
        # to a processor; `lifemon policy check` names the recipients to fill in)
        arrangement = (
            kind in self.p.arrangement_types
            and term is not None
            and book.records_assessments(self.p.arrangement_types)
        )
        if kind in self.p.assessment_types:
            rule, verb = self.p.rules.disclosed_without_assessment, "disclosed data to"
        elif arrangement:
            rule = self.p.rules.provided_without_assessment
            verb = "entrusted data to" if kind in self.p.entrusted_types else "provided data to"
        else:
            return
        named = (ev.assessment_id or "").strip()
        if named:
            if arrangement:
                # one the recipient declared, and one valid now: a nightly job still naming the
                # assessment its renewal replaced stands on the renewal (a probe's raised a high
                # alert a night)
                if book.declared(ev.recipient_id, named) and book.assessment_at(ev.recipient_id, ev.ts):
                    return
            # one declared for the recipient and valid; a disclosure to a recipient the policy does
            # not list (the bank's website) names its own, which only the transfer records
            elif (
                book.assessed(ev.recipient_id, ev.assessment_id, ev.ts)
                or ev.recipient_id not in book.assessments
            ):
                return
            gap = f"assessment '{ev.assessment_id}', not one declared for it and valid"
        elif arrangement:
            if book.assessment_at(ev.recipient_id, ev.ts) is not None:
                return
            gap = self._no_assessment(ev, book)
        else:
            gap = "no impact assessment"
        yield self._finding(ev, rule, cls, f"{verb} {kind.value} {ev.recipient_id} with {gap}")

    @staticmethod
    def _no_assessment(ev: Any, book: RecipientBook) -> str:
        """What recipients.yaml records of the recipient's assessments, none valid at the transfer."""
        declared = book.recipients[ev.recipient_id].assessments
        if not declared:
            return "no impact assessment (recipients.yaml declares none for it)"
        spans = ", ".join(f"{a.id} valid {a.valid_from} to {a.valid_to}" for a in declared)
        return f"no impact assessment valid at the time ({spans})"

    def _cross_border(
        self,
        ev: Any,
        cls: JrClass,
        country: str | None,
        declared: Recipient | None,
        book: RecipientBook,
        purpose: str | None,
        ctx: Context,
    ) -> Iterator[Finding]:
        """Seed 002 §六.5(1)-(3), seed 004 流程描述(4)⑬: separate consent of every subject, an
        outbound security assessment, declared for the recipient and valid at the time, and a
        recipient of the bank's own group (关联机构, 实施办法 art. 34(三)). A recipient the policy
        does not list is judged by the approval rules; whether it is an affiliate is not known."""
        missing, unnamed = self._without_consent(ev, purpose, ctx)
        assessed = book.assessed(ev.recipient_id, ev.assessment_id, ev.ts)
        unaffiliated = declared is not None and not declared.affiliate
        if not (missing or unnamed or not assessed or unaffiliated):
            return
        gaps = []
        if missing or unnamed:
            gaps.append(f"{n_of(len(missing) + unnamed, 'subject')} without separate consent")
        if not assessed:
            gaps.append(
                f"assessment '{ev.assessment_id}' is not one declared for it and valid"
                if ev.assessment_id
                else "no outbound security assessment"
            )
        if unaffiliated:
            gaps.append("not an affiliate the business needs (关联机构, 实施办法 art. 34(三))")
        yield self._finding(
            ev,
            self.p.rules.cross_border,
            cls,
            f"sent data across the border to {ev.recipient_id} ({country or 'unknown country'}): {'; '.join(gaps)}",
            {
                "subjects_without_consent": len(missing),
                "subjects_unnamed": unnamed,
                "assessed": int(assessed),
                "affiliate": int(not unaffiliated),
            },
        )

    @staticmethod
    def _not_in_force(ev: Any, book: RecipientBook) -> str:
        """Why no contract covers the transfer's time: the named one's (or the recipient's latest)
        validity, as the policy declares it, or that there is none."""
        terms = [t for t in book.terms.get(ev.recipient_id, ()) if ev.contract_id in (None, t.contract.id)]
        if not terms:
            return f"contract {ev.contract_id} is not declared" if ev.contract_id else "no contract at all"
        before = [t for t in terms if t.end_ms <= ev.ts]
        if before:
            t = max(before, key=lambda t: t.end_ms)
            return (
                f"contract {t.contract.id} not in force at the time: expired, valid to {t.contract.valid_to}"
            )
        t = min(terms, key=lambda t: t.start_ms)
        return f"contract {t.contract.id} not in force at the time: not yet valid, valid from {t.contract.valid_from}"

    def _approval_problem(
        self, ev: Any, term: ContractTerm | None, book: RecipientBook, ctx: Context, flagged: set[str]
    ) -> tuple[str, str]:
        """Seed 002 §六.2(2), §六.4(5): a listed recipient, a contract in force, covering what is sent.
        (what is wrong, "" for nothing; the count key of the condition that failed)."""
        if ev.recipient_id not in book.recipients:
            return "not an approved recipient (policy/recipients.yaml)", NOT_APPROVED
        if term is None:
            if ev.contract_id and book.contract_of.get(ev.contract_id) not in (None, ev.recipient_id):
                return f"contract {ev.contract_id} belongs to another recipient", NO_CONTRACT
            return self._not_in_force(ev, book), NO_CONTRACT
        sent = ctx.catalog.categories(f for f in ev.categories if f not in flagged)
        uncovered = sorted(sent - term.categories)
        # an id the catalog does not know may be a value typed into the wrong place: counted, never shown
        unknown = sum(f not in ctx.catalog.field_category for f in ev.categories)
        if unknown:
            uncovered.append(f"{n_of(unknown, 'field id')} the catalog does not know")
        # a consent names a purpose, not a recipient: a share for a purpose its contract does not
        # agree (a probe's leads sent to the insurer "for marketing", which every customer had
        # separately consented to for the bank's own) is one the customers never agreed to
        purposes = term.contract.purposes
        if purposes and ev.purpose is not None and ev.purpose not in purposes:  # none: the consent rule's
            uncovered.append(f"the purpose {ev.purpose} (it agrees {', '.join(purposes)})")
        if uncovered:
            return f"contract {term.contract.id} does not cover {', '.join(uncovered)}", NOT_COVERED
        return "", ""

    # -- agreed volume --------------------------------------------------------------------------
    def _count(
        self, ev: Any, cls: JrClass, term: ContractTerm, book: RecipientBook, ctx: Context
    ) -> tuple[str, VolumePeriod | None]:
        start, end = book.period(term, ev.ts)
        key = f"{VOLUME}{ev.recipient_id}/{term.contract.id}/{start}"
        period = self.store.get(key)
        if period is None:
            if end <= (self.store.get(f"{FORGOTTEN}{ev.recipient_id}/{term.contract.id}") or 0):
                return key, None  # its period was closed and forgotten: too late to count
            period = VolumePeriod(start, end, term.contract.volume.max_records)  # type: ignore[union-attr]
            period.first_seen = ev.ts
            self.store.put(key, period)
            ctx.timers.register(key, end)
        # a nightly job sends one name, one count and one list each night (a probe's 25 nights of a
        # 1 000 000-record snapshot counted once against a 20 000 000-a-month contract)
        if not period.counts(_transfer(ev), ev.ts, _former(ev)):
            return key, None  # the same transfer logged again
        period.records += ev.record_count
        period.transfers += 1
        period.rank = max(period.rank, CLASS_RANK[cls])
        period.first_seen, period.last_seen = min(period.first_seen, ev.ts), max(period.last_seen, ev.ts)
        if len(period.evidence) < self.p.evidence_limit:
            period.evidence.append(ev.event_id)
        return key, period

    def on_timer(self, key: str, deadline_ms: int, ctx: Context) -> Iterable[Finding]:
        """Judge the transfers the watermark has passed (before any period closes); at a period's
        end close its alert if it fired; forget the period `late_days` later, and what a transfer
        raised then too."""
        yield from self._released(inbox.release(self.store, ctx), ctx)
        approvals.forget_expired(self.store, key, ctx.watermark)
        if key.startswith((RAISED, AUTHORITY)):
            self.store.delete(key)
            return
        period = self.store.get(key) if key.startswith(VOLUME) else None
        if period is None:
            return
        if period.closed:
            self.store.delete(key)
            recipient_contract = key[len(VOLUME) :].rsplit("/", 1)[0]
            forgotten = f"{FORGOTTEN}{recipient_contract}"
            self.store.put(forgotten, max(self.store.get(forgotten) or 0, period.end))
            return
        period.closed = True
        self.store.touch(key)
        ctx.timers.register(key, period.end + self.p.late_days * DAY_MS)
        if period.revision:
            yield self._volume_finding(key, period, closed=True)

    def _volume_finding(self, key: str, period: VolumePeriod, closed: bool = False) -> Finding:
        rule = self.p.rules.volume_exceeded
        recipient, contract, _ = key[len(VOLUME) :].rsplit("/", 2)
        period.emitted = period.records
        return self._period_finding(
            rule,
            key,
            period,
            recipient,
            rule.severity,
            f"{recipient} received {n_of(period.records, 'record')} in {n_of(period.transfers, 'transfer')} under "
            f"{contract}, over the {period.limit:,} agreed for the period",
            {"records": period.records, "agreed_records": period.limit, "transfers": period.transfers},
            closed=closed,
        )

    def _period_finding(
        self,
        rule: Rule,
        key: str,
        period: VolumePeriod,
        recipient: str,
        severity: Severity,
        summary: str,
        counts: dict[str, int],
        closed: bool = False,
        subjects: int = 0,
    ) -> Finding:
        """The next revision of the alert a period adds up (a contract's volume, an authority's day)."""
        period.revision += 1
        return Finding(
            detector=self.kind,
            rule_id=rule.rule_id,
            key=key,
            window_start=period.start,
            window_end=period.end,
            severity=severity,
            revision=period.revision,
            closed=closed,
            summary=summary,
            jr_class=RANK_CLASS[max(period.rank, 1)].value,
            actor_id=recipient,
            subject_count=subjects,
            counts=counts,
            evidence_event_ids=list(period.evidence),
            event_count=period.transfers,
            first_seen=period.first_seen,
            last_seen=period.last_seen,
            title_zh=rule.title_zh,
            title_en=rule.title_en,
            regulation=rule.regulation,
        )

    # -- output ---------------------------------------------------------------------------------
    def _fields(self, ev: Any) -> str:
        """Catalog field ids sent; unknown ids are counted, never shown (one may be a value)."""
        known = [f for f in ev.categories if f in self._known_fields]
        unknown = len(ev.categories) - len(known)
        return ", ".join(known + ([f"{unknown} unknown"] if unknown else [])) or "none"

    def _aggregate(self, ev: Any, cls: JrClass) -> bool:
        """A statistical report (a 1104 statement's sums of balances and loans): no record, no
        subject, no list of them, nothing that names a person, no C3 data nor authentication helper.
        A probe's 1104 report to an undeclared recipient opened an incident of 0 subjects whose art.
        57 notice told "0 subjects" of loans. A count of 0 beside a name, an ID number or a card's
        code is a sender's miscount or a cover, and stays a leak."""
        return (
            ev.record_count == 0
            and ev.subject_count == 0
            and not (ev.subject_ids or ev.subject_list_id or ev.record_ids)
            and cls is not JrClass.C3
            and self._identifiers.isdisjoint(ev.categories)
            and self._helpers.isdisjoint(ev.categories)
        )

    def _finding(
        self,
        ev: Any,
        rule: Rule,
        cls: JrClass,
        what: str,
        extra: dict[str, int] | None = None,
        affected: list[str] | None = None,
        unnamed: bool = True,
        severity: Severity | None = None,
    ) -> Finding:
        """The alert of one rule a transfer broke. `affected`: the named subjects the rule concerns,
        where it is not all of them (those without consent, for whom alone the share was unlawful:
        the incident notifies them, not the customers who consented), with the unnamed ones (unless
        `unnamed` is False: the rule concerns named subjects alone, a minor's age); their
        records are the transfer's in proportion (a transfer does not say whose record is which).
        `severity`: the alert's where the rule's grows with what was sent (LM-TP-011)."""
        by = f" by {ev.actor_id}" if ev.actor_id else ""
        named = list(dict.fromkeys(ev.subject_ids))
        subjects, records = ev.subject_count, ev.record_count
        sent = f"{n_of(ev.record_count, 'record')} of {n_of(ev.subject_count, 'subject')}"
        if affected is not None:
            everyone = max(ev.subject_count, len(named))  # a log may name more than it counts
            subjects = len(affected) + (max(ev.subject_count - len(named), 0) if unnamed else 0)
            records = (
                min(-(-ev.record_count * subjects // everyone), ev.record_count) if everyone else records
            )
            # the alert's own counts: the subjects the rule concerns and their share of the records
            sent = (
                f"{sent}; this alert concerns {n_of(subjects, 'subject')} of them and, in proportion, "
                f"{n_of(records, 'record')}"
            )
            named = affected
        counts = {"records": records, "subjects": subjects, **(extra or {})}
        if rule.leakage_candidate:
            counts[LEAKAGE_CANDIDATE] = 1
        if self._aggregate(ev, cls):
            counts[AGGREGATE] = 1
            sent += " (an aggregate naming, counting and listing no one: no leakage incident)"
        return Finding(
            detector=self.kind,
            rule_id=rule.rule_id,
            key=f"{ev.recipient_id}/{ev.transfer_id}",
            window_start=ev.ts,
            window_end=ev.ts,
            severity=severity or rule.severity,
            revision=1,
            closed=False,
            summary=(
                f"Transfer {ev.transfer_id} from {ev.sender_system}{by} {what}; {sent}, fields {self._fields(ev)}"
            ),
            jr_class=cls.value,
            actor_id=ev.recipient_id,
            subject_count=subjects,
            subject_sample=named[: self.p.sample_size],
            subjects=named,
            fields=[f for f in ev.categories if f in self._known_fields],
            counts=counts,
            evidence_event_ids=[ev.event_id],
            event_count=1,
            first_seen=ev.ts,
            last_seen=ev.ts,
            title_zh=rule.title_zh,
            title_en=rule.title_en,
            regulation=rule.regulation,
            origin=_origin(ev),
        )
