"""Retention overrun: stored PFI kept, used or destroyed against the retention rules.

Every record collected (or stored) on `pfi.lifecycle` is tracked with its subject, categories,
class, purpose and system, against the retention rules of policy/retention.yaml for its categories
and purpose. A rule's clock starts at collection, account closure or the end of the business
relationship. Sources: seed 002 §五 (keep only the shortest time the purpose needs, then delete or
anonymize; another institution's C3 never kept), §六.6 and §七 (deletion; a destruction record
states content, method, time, operator and supervisor), seed 004 流程描述(3)① and
(5) (deletion requests answered; in 15 days, the bank's own target), seed 001 §三.3(3) (JR/T 0171 §6.1.3 a)).

The detector is keyed by customer: lifecycle events by `subject_id`, accesses and transfers by
their `subject_ids`, re-keyed by the engine (a repartition topic, or locally in a replay), so a
customer's records and every use of them meet in one task. It fires:
- `retention_expired`: an event-time timer at a rule's deadline finds the record not deleted,
  anonymized or destroyed by then; `rollup_records` or more of one system, rule and class due on
  one bank day are one alert (`Batch`: a yearly purge job's backlog is one action, probe_v2 F6),
  each task's share summed by the detector's stage keyed by system (`partials`, `_settle`);
- `deletion_request_overdue`: a deletion request not executed within the policy's SLA;
  both are closed (a revision with status closed, the late deletion in its summary) once the
  record is deleted, anonymized or destroyed after all, so the open ones are the backlog management
  sees (dashboards/lifemon-lifecycle.json);
- `used_after_deadline` / `used_after_deletion`: an access or transfer names (`record_ids`) a record
  past its deadline (a retention period's, or a deletion request's 15 days) or already deleted; judged on the record's last few uses once the
  watermark has passed a use or a lifecycle event, so that every lifecycle event dated before the use
  is known (a collection that made the record anew) and inputs interleaved differently (live, replay)
  end with one alert;
- `used_while_withheld`: a use, for a purpose the law does not oblige, of a record a statutory
  minimum keeps after its deletion was requested (withheld from the request's due date: PIPL art.
  47 ¶2 allows storage and the law's own uses alone), other than, while the relationship lasts, a
  use the customer's contract needs (retention.yaml `contract_purposes`; seed 004 基本规定(4)③);
- `destruction_record_incomplete`: a destroy event without content (categories), method, operator
  or supervisor, or with the operator as their own supervisor;
- `foreign_c3_stored`: a record of another institution holding its card data, PIN or passwords;
- `removed_before_minimum`: a record the law requires kept (retention.yaml `minimums`, AML Law art.
  34, ten years since its 2024 revision) deleted, anonymized or destroyed before the last day of its
  minimum, or before its clock even started; a deletion request on such a record is answered by keeping it withheld (PIPL art. 47 ¶2),
  so it is not `deletion_request_overdue` while the minimum runs;
- `deletion_request_unanswered`: such a request with no refusal logged (the answer, saying why) by
  its due date: seed 004 隐私政策 (四) promises an answer in 15 days, PIPL art. 50 a refusal's reason;
- `collected_after_relationship_ended`: a record collected after the customer's business
  relationship ended (seed 004 流程描述(1)⑫), for no duty of the law, unless a collection for a
  `relationship_purposes` purpose (an account opening) began a relationship again before it.
  Judged when the collection or the end arrives, whichever is later;
- `collected_without_consent`: a collection retention.yaml `collection_consent` names (biometrics;
  a location trace or health data, unless for a contract's need or a duty of the law; anything
  collected for marketing) with no consent of the subject for its purpose granted by then
  (separate, 单独同意, where it says so), judged once the watermark has passed it: seed 004
  流程描述(1)②, (4)②, 基本规定(4)①;
- `minor_collected_without_consent`: a collection of a customer younger than retention.yaml
  `minors.adult_at` (pfi.customers `birth_date`, the age reached the day after the birthday) with
  no separate consent for its purpose on record by then, or, younger than `guardian_below`, none
  the guardian gave (pfi.consents `given_by`): seed 004 流程描述(1)③, PIPL art. 31. Judged as
  `collected_without_consent` is, and in its place for a minor;
- `card_data_on_client`: card secrets (the `client_secrets` fields), the bank's own too, or
  biometric samples and templates (`never_on_client`), stored on a terminal or client app
  (`client_systems`): seed 002 §五(4). Taken there to be sent on (a PIN at an ATM), they are
  collected, not stored: seed 002 §三(5)(6) names the terminals as where they are collected;
- `biometric_with_identity`: one stored record holding biometric and identity data together (seed
  002 §五(2): 将个人生物识别信息与个人身份信息分开储存);
- `destruction_record_incomplete` also when the method named names nothing that erases
  (`erasing_methods`: overwrite, degauss, shred, incinerate, secure erase, ...), an overwrite yet to
  come or failed being none, whether it names what only hides the data (`recoverable_methods`: a
  logical delete, an index removed, a recycle bin, an archive) or nothing at all (清空, 服务器报废):
  seed 004 流程描述(6)③ 应采用不可恢复的方式, seed 002 §七(4).

Every deadline is a period of calendar days in the bank's calendar, ending at 24:00 of its last day
(`Policy.period_end`, Civil Code art. 201/203; a period of years to the corresponding day,
`Policy.retention_end`, art. 202): a retention rule's `keep_days` or `keep_years` from its clock's start
as a deletion request's 15 days (`Policy.deletion_due`). A last day on a weekend or public holiday
(policy/calendar.yaml) moves to the day after them (art. 203 ¶1), a statutory minimum's excepted.

Timers are (customer, deadline): one per distinct deadline of a customer, in RocksDB, so 10 M
records cost disk, not memory. A timer recomputes deadlines from the state when it fires, so a
later account closure or an early deletion simply makes an old timer find nothing; a deadline
still ahead gets its timer again (one restored from an older version may be due earlier). A finite
replay ends at its last event time: a record still inside its retention then does not fire.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from bisect import bisect_right, insort
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date, datetime
from enum import StrEnum
from functools import lru_cache, partial
from operator import itemgetter
from typing import Any, ClassVar, NamedTuple
from zoneinfo import ZoneInfo

import msgspec
from pydantic import BaseModel, ConfigDict, Field, model_validator

from detectors import inbox
from detectors.base import DAY_MS, Context, Finding, Store, fed, n_of, uses_records
from detectors.minors import Minor, consent_gap, minor_at
from detectors.offscope_marketing import RuleSpec
from detectors.retention_records import (
    BATCH,
    CHANGES,
    GENERATION,
    GONE_STAGES,
    SINCE,
    TOTAL,
    Batch,
    Customer,
    Partial,
    Record,
    Today,
    Total,
    left,
)
from policy.catalog import Catalog
from policy.model import (
    CLASS_RANK,
    WEEKEND,
    DetectorSection,
    JrClass,
    Period,
    Policy,
    erases,
    method_key,
    method_terms,
    spelling,
)
from schemas.models import ConsentStatus
from schemas.structs import STRICT

_TS = itemgetter(0)  # a use's time
# the digest of the retention rules the state's timers were set by (a pseudonym never starts so)
RULES_KEY = "\x00rules"
SWEEP_BLOCK = 10_000  # customers read per pass of the sweep (`resumed`): their timers set before the next
log = logging.getLogger("lifemon.retention_overrun")
JUDGE = "u:"  # + customer: the timer that judges its records' stale uses (a pseudonym never starts so)
FOREVER = 2**63 - 1  # a minimum whose clock has not started (the relationship going on) never ends yet
COLLECTED = frozenset({"collect", "store"})
CLOCKS = frozenset({"account_closed", "relationship_ended"})
LIFECYCLE_STRUCT: Any = STRICT["lifecycle"]  # a stored block's collections come back as the decoder's structs


class Rule(StrEnum):
    retention_expired = "retention_expired"
    deletion_request_overdue = "deletion_request_overdue"
    deletion_request_unanswered = "deletion_request_unanswered"
    used_after_deadline = "used_after_deadline"
    used_while_withheld = "used_while_withheld"
    used_after_deletion = "used_after_deletion"
    destruction_record_incomplete = "destruction_record_incomplete"
    foreign_c3_stored = "foreign_c3_stored"
    removed_before_minimum = "removed_before_minimum"
    collected_after_relationship_ended = "collected_after_relationship_ended"
    collected_without_consent = "collected_without_consent"
    minor_collected_without_consent = "minor_collected_without_consent"
    card_data_on_client = "card_data_on_client"
    biometric_with_identity = "biometric_with_identity"


class RetentionOverrunParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    rules: dict[Rule, RuleSpec] = Field(description="every rule of the detector, each with its own clauses")
    forget_deleted_days: int = Field(
        gt=0, description="how long a deleted record is remembered, so a later use of it is seen"
    )
    evidence_limit: int = Field(default=20, ge=1)
    rollup_records: int = Field(
        default=20,
        ge=2,
        description="this many records of one system, rule and class due on one bank day are one "
        "retention_expired alert, not one each (a yearly destruction job's backlog)",
    )

    @model_validator(mode="after")
    def _every_rule(self) -> RetentionOverrunParams:
        missing = [r.value for r in Rule if r not in self.rules]
        if missing:
            raise ValueError(f"rules: add {missing}; every rule needs its severity, titles and regulation")
        return self


def _with_categories(fields: Iterable[str], catalog: Catalog) -> frozenset[str]:
    """The field ids and the categories they belong to: a log may name either."""
    return frozenset(fields) | {catalog.field_category[f] for f in fields if f in catalog.field_category}


def _signed(value: str | None) -> str:
    """A destruction record's entry as written: blank is not signed, and an employee id in another
    case is the same employee."""
    return spelling(value or "")


class Deadline:
    """A retention rule of policy/retention.yaml, ready to apply: its period of days or years from
    its clock's start, counted as `Policy.retention_end` counts them."""

    __slots__ = ("name", "categories", "purposes", "rule", "after", "source")

    def __init__(self, name: str, rule: Any):
        self.name, self.after, self.source, self.rule = name, rule.after.value, rule.source, rule
        self.categories, self.purposes = frozenset(rule.categories), frozenset(rule.purposes)

    def covers(self, categories: Sequence[str], purpose: str | None) -> bool:
        return not self.categories.isdisjoint(categories) and (not self.purposes or purpose in self.purposes)


Due = tuple[Deadline, int, int]  # a rule that covers a record, its clock's start and its deadline


class RetentionPolicy(NamedTuple):
    """policy/retention.yaml, ready to apply."""

    rules: list[Deadline]
    sla_days: int
    grace_ms: int  # `removal_grace_hours`: a removal this long after a deadline is in time
    forbidden_foreign_c3: frozenset[str]
    minimums: list[Deadline]
    relationship_purposes: frozenset[str]
    account_purposes: frozenset[str]  # with `account_categories`: which records are accounts
    contract_purposes: frozenset[str]
    owed_after_end: frozenset[str]  # collected after an end for these: lawful, starting nothing
    closing_grace_ms: int  # `closing_grace_hours`: a contract's collection this soon after an end settles it
    collection_consent: list[Any]
    minors: Any  # policy.model.Minors, or None: no rule for minors
    recoverable_methods: re.Pattern[str]  # `_terms`
    erasing_methods: frozenset[str]
    on_client: Callable[[str], bool]  # `_client_matcher`: a system that is a terminal or client app
    # with the category ids a log may write in their place (`authentication`, `biometric`): the
    # foreign C3, and the card secrets and biometric samples no client stores (seed 002 §五(4))
    foreign_c3_named: frozenset[str]
    never_stored_on_client_named: frozenset[str]
    # the categories a rule counting from an account's closure covers: a record holding one, collected
    # for an account purpose, is one of the customer's accounts (`Customer.accounts_closed`)
    account_categories: frozenset[str]
    # a purpose id a record or a use kept, as today's policy names it (`Catalog.current`): a purpose
    # renamed since, its old id among the new one's `also`, is the new one's (probe_v1 F3)
    today: Today


_TOKENS = re.compile(r"[^\W_]+")  # runs of letters and digits, CJK included


# what names a client's server side, not one of its devices or builds (digits aside: server01)
_SERVER_WORDS = frozenset(
    {"backend", "server", "srv", "api", "gw", "gateway", "db", "database", "switch", "host", "proxy",
     "service", "svc", "admin", "mgmt", "management", "console", "batch", "core", "platform", "cloud"}
)  # fmt: skip


def _client_matcher(ids: Iterable[str]) -> Callable[[str], bool]:
    """Whether a system is one of `client_systems`, or a device or build of one: its name begins
    with one's words, whatever the case and separators, and names no server after them
    (`ATM-BJ-0042`, `pos_terminal_0231`, `mobile_banking_ios_beta`: a probe's CVN stored on each
    passed as no client's; `mobile_banking_backend`, `atm_switch`, `atm_server01` are a client's
    servers, a review's)."""
    prefixes = [p for p in (tuple(_TOKENS.findall(i.casefold())) for i in ids) if p]

    @lru_cache(maxsize=4096)
    def on_client(system: str) -> bool:
        words = tuple(_TOKENS.findall(system.casefold()))
        return any(
            words[: len(p)] == p and _SERVER_WORDS.isdisjoint(w.rstrip("0123456789") for w in words[len(p) :])
            for p in prefixes
        )

    return on_client


class RetentionOverrunDetector:
    kind: ClassVar[str] = "retention_overrun"
    inputs: ClassVar[dict[str, str]] = {
        "lifecycle": "subject_id",
        "access": "subject_ids",
        "transfer": "subject_ids",
    }
    # a use is tied to a stored record only by the records it names: the others never reach the detector
    needs: ClassVar[dict[str, str]] = {"access": "record_ids", "transfer": "record_ids"}
    Params: ClassVar[type[BaseModel]] = RetentionOverrunParams
    # its batches' partials travel by system to its second stage (`partials`, `on_partials`): one
    # system's day is spread over the tasks keyed by customer (docs/architecture.md#roll-ups-across-partitions)
    stage: ClassVar[tuple[str, str]] = ("retention-batch", "system")
    partial: ClassVar[type] = Partial  # what the stage reads of them, checked at its door

    def __init__(self, section: DetectorSection, params: RetentionOverrunParams, store: Store):
        self.section, self.p, self.store = section, params, store
        self.forget_ms = params.forget_deleted_days * DAY_MS
        self._policy: RetentionPolicy | None = None
        self._tz = ZoneInfo("UTC")  # the bank's calendar, once the policy is read
        self._dates: Policy | None = None  # its periods' counting, once read, for the summaries
        self._covering: dict[tuple[tuple[str, ...], str | None], tuple[list[Deadline], list[Deadline]]] = {}
        # batch key -> record id -> its member's alerts: the shares this pass changed, handed to the
        # stage once at its end (`partials`), whatever number of members joined or left them
        self._handed: dict[str, dict[str, list[Any]]] = {}

    @staticmethod
    def load_value(data: Any) -> Any:
        waiting = inbox.load_value(data, LIFECYCLE_STRUCT)
        if waiting is not None:
            return waiting
        if isinstance(data, dict):
            if "batch" in data:
                return Batch.from_json(data)
            return Total.from_json(data) if "total" in data else Customer.from_json(data)
        return data

    # -- policy ---------------------------------------------------------------------------------
    def _retention(self, catalog: Catalog) -> RetentionPolicy:
        """Read once from policy; days are the bank's calendar days (the timezone of
        policy/recipients.yaml)."""
        if self._policy is None:
            r = catalog.policy.retention
            client = r.forbidden_foreign_c3 if r.client_secrets is None else r.client_secrets
            self._tz = ZoneInfo(catalog.policy.recipients.timezone)
            self._dates = catalog.policy
            self._policy = RetentionPolicy(
                [Deadline(name, rule) for name, rule in r.rules.items()],
                r.deletion_request_sla_days,
                r.removal_grace_hours * 3_600_000,
                frozenset(r.forbidden_foreign_c3),
                [Deadline(name, rule) for name, rule in r.minimums.items()],
                frozenset(r.relationship_purposes),
                frozenset(r.relationship_purposes if r.account_purposes is None else r.account_purposes),
                frozenset(r.contract_purposes),
                frozenset(r.owed_after_end),
                r.closing_grace_hours * 3_600_000,
                list(r.collection_consent),
                r.minors,
                method_terms(r.recoverable_methods),
                frozenset(map(method_key, r.erasing_methods)),
                _client_matcher(r.client_systems),
                _with_categories(r.forbidden_foreign_c3, catalog),
                _with_categories([*client, *r.never_on_client], catalog),
                frozenset(
                    c
                    for rule in (*r.rules.values(), *r.minimums.values())
                    if rule.after.value == "account_closed"
                    for c in rule.categories
                ),
                partial(catalog.current, "purpose"),
            )
        return self._policy

    def _covering_of(self, rec: Record, catalog: Catalog) -> tuple[list[Deadline], list[Deadline]]:
        """(retention rules, statutory minimums) that cover the record."""
        r = self._retention(catalog)
        key = (tuple(rec.categories), r.today(rec.purpose))
        found = self._covering.get(key)
        if found is None:
            cats, purpose = key
            found = (
                [d for d in r.rules if d.covers(cats, purpose)],
                [m for m in r.minimums if m.covers(cats, purpose)],
            )
            if len(self._covering) < 10_000:
                self._covering[key] = found
        return found

    def _is_account(self, rec: Record, catalog: Catalog) -> bool:
        policy = self._retention(catalog)
        return rec.is_account(policy.account_categories, policy.account_purposes, policy.today)

    def deadlines(self, held: Customer, rec: Record, catalog: Catalog) -> Iterator[Due]:
        """(rule, clock start, deadline) of every rule that covers the record and has started: the
        end of its last day in the bank's calendar (`Policy.period_end`, as for a deletion request)."""
        account = self._is_account(rec, catalog)
        for d in self._covering_of(rec, catalog)[0]:
            start = held.clock(d.after, rec, account)
            if start is not None:
                yield d, start, catalog.policy.retention_end(start, d.rule)

    def minimums(
        self, held: Customer, rec: Record, catalog: Catalog, at: int
    ) -> Iterator[tuple[Deadline, int | None, int, Period]]:
        """(minimum, clock start or None, when removing the record becomes lawful, the period) of
        every statutory minimum covering it, as the law in force on `at`'s day sets it (a removal
        is judged by the law of its day: the AML Law's ten years from 2025, its 2006 text's five
        before; a probe's backfilled 2023 destruction, six years on, was "before the minimum"):
        the start of its period's last day (a record deleted on the day its five years end was kept
        five years), or never while its clock has not started."""
        account = self._is_account(rec, catalog)
        for m in self._covering_of(rec, catalog)[1]:
            yield (m, *self._minimum(held, rec, catalog, m, at, account))

    def _minimum(
        self, held: Customer, rec: Record, catalog: Catalog, m: Deadline, at: int, account: bool
    ) -> tuple[int | None, int, Period]:
        """(clock start or None, when removing becomes lawful, the period) of one minimum (`minimums`)."""
        start, period = held.clock(m.after, rec, account), m.rule.in_force_on(catalog.policy.local_date(at))
        # a minimum's last day is not moved past rest days (`Policy.retention_end`): it asks nothing done
        lawful = (
            FOREVER
            if start is None
            else catalog.policy.retention_end(start, period, rest_days=False) - DAY_MS
        )
        return start, lawful, period

    def _parts(self, rec: Record, catalog: Catalog) -> dict[tuple[str, ...], tuple[int, str]]:
        """When each part of the record a retention rule, a minimum or its deletion request covers
        left (`Record.part_left`): a removal naming categories may take one part and leave another
        (the phone of a card deleted on request, its address kept), and what it decided is revised
        for the parts it moved alone (`_left`)."""
        rules, minimums = self._covering_of(rec, catalog)
        parts = {_part(rec, d) for d in (*rules, *minimums)}
        if rec.requested:
            parts.add(tuple(rec.request_part()))
        return {p: rec.part_left(p) for p in parts}

    def resumed(self, ctx: Context) -> None:
        """After a restore: where the retention rules (their periods, categories, purposes, clocks,
        the grace, the bank's timezone and calendar) differ from those the state's timers were set
        by, one sweep sets each held record's deadlines under today's rules. A timer is set at collection with the
        rule of its day, so a period shortened at a restart (365 to 180 days) reached the records
        already held only at their old deadline, half a year late, and the alert named the new due
        date (probe_v1 F6); a lengthened one was right (the old timer finds nothing due and sets
        the new one). A deadline already passed fires at the next advance. State of a lifemon that
        kept no digest is swept once. Bounded: one read of the namespace, `SWEEP_BLOCK` customers
        at a time; logged."""
        r = ctx.catalog.policy.retention
        digest = hashlib.sha256(
            json.dumps(
                [
                    r.model_dump(mode="json", include={"rules", "removal_grace_hours"}),
                    ctx.catalog.policy.recipients.timezone,
                    # the rest days a deadline's last day moves past (calendar.yaml, art. 203)
                    ctx.catalog.policy.calendar.model_dump(mode="json"),
                ],
                sort_keys=True,
            ).encode()
        ).hexdigest()[:16]
        saved = self.store.get(RULES_KEY)
        if saved == digest:
            return
        customers = records = 0
        start: str | None = ""
        while start is not None:
            block: list[tuple[str, Customer]] = []
            for key, held in self.store.items(start=start):
                if len(block) == SWEEP_BLOCK:
                    start = key
                    break
                if isinstance(held, Customer):
                    block.append((key, held))
            else:
                start = None
            for key, held in block:
                due = self._deadlines_due(held, ctx)
                customers, records = customers + bool(due), records + len(due)
                for at in set(due):
                    ctx.timers.register(key, at)
        self.store.put(RULES_KEY, digest)
        if saved is not None or customers:
            log.info(
                "retention rules changed since the state was saved: deadlines of %d records of %d customers set again",
                records,
                customers,
            )

    def _deadlines_due(self, held: Customer, ctx: Context) -> list[int]:
        """The timer of each retention deadline of the customer's held records not raised yet."""
        grace = self._retention(ctx.catalog).grace_ms
        return [
            deadline + grace
            for rec in held.records.values()
            if not rec.gone
            for d, _, deadline in self.deadlines(held, rec, ctx.catalog)
            if f"{Rule.retention_expired}:{d.name}" not in rec.fired
        ]

    # -- events -----------------------------------------------------------------------------------
    def process(self, stream: str, events: Sequence[Any], ctx: Context) -> Iterable[Finding]:
        if stream == "lifecycle":
            for ev in events:
                yield from self._lifecycle(ev, ctx)
            # a collection that needs consent waits for the watermark: a consent given just before
            # it may reach the monitor just after it (`_without_consent`)
            needing = [  # one naming no customer has no consent to wait for (`_unnamed`)
                ev
                for ev in events
                if ev.subject_id
                and ev.stage.value == "collect"
                and (self._consent_needs(ev, ctx.catalog) or self._may_be_minor(ev, ctx))
            ]
            inbox.hold(self.store, needing, ctx)
            return
        for ev in events:
            if not uses_records(stream, ev):
                continue  # unauthorized_lookup counts denials
            if ev.record_ids:  # a use names the records it read or sent; the others cannot be tied
                (customer,) = ev.subject_ids  # re-keyed: one customer per event
                held = self.store.setdefault(customer, Customer)
                who = ev.actor_id if stream == "access" else ev.recipient_id
                for rid in dict.fromkeys(ev.record_ids):
                    uses = held.uses.setdefault(rid, [])
                    if all(u[1] != ev.event_id for u in uses):
                        insort(
                            uses, [ev.ts, ev.event_id, stream, who, "", ev.purpose or ""]
                        )  # by time, then id
                        held.stale.add(rid)
                self.store.touch(customer)
                ctx.timers.register(JUDGE + customer, ev.ts)  # judged once every input has passed it
                # then its uses are forgotten: one timer a day, however many uses
                ctx.timers.register(customer, -(-(ev.ts + self.forget_ms) // DAY_MS) * DAY_MS)

    def _lifecycle(self, ev: Any, ctx: Context) -> Iterator[Finding]:
        customer, stage, catalog = ev.subject_id, ev.stage.value, ctx.catalog
        if not customer:
            yield from self._unnamed(ev, catalog)
            return
        if stage == "destroy":
            yield from self._destruction_record(ev, customer, catalog)
        held = self.store.setdefault(customer, Customer)
        rec = held.records.get(ev.record_id)
        # a collection for the relationship may begin it again: a clock, like an end (`Customer.clock`)
        resumed = held.resumed
        resumes = stage == "collect" and ev.purpose in self._retention(catalog).relationship_purposes
        for moved in (
            held.records.values() if stage in CLOCKS or resumes else [rec] if rec is not None else []
        ):
            self._pin_anchors(held, moved, catalog)
        # the overruns raised so far, each with its clock: a return to the relationship may stop one
        raised = self._raised(held, catalog) if resumes and held.end else {}
        if rec is None and stage not in CLOCKS:
            rec = held.track(ev.record_id, Record(ev.ts, ev.system, purpose=ev.purpose))
        elif rec is not None and stage == "collect" and 0 < rec.gone < ev.ts:
            # collected anew after its removal (a returning customer's record under the id a system
            # reuses, a customer number): a new record, judged from its own collection on
            rec = held.track(ev.record_id, Record(ev.ts, ev.system, purpose=ev.purpose))
        elif rec is not None and stage == "store":
            rec.stored = max(rec.stored, ev.ts)
            if 0 < rec.gone < ev.ts:
                # stored again after its removal: a backup restored brings the data back, and what its
                # removal answered (a deletion request, a deadline) is open again (a probe's restore
                # after an honoured request raised nothing)
                rec.restored = ev.ts  # and `_left` finds it held again
        before = self._parts(rec, catalog) if rec is not None else {}
        if rec is not None and (stage in COLLECTED or stage in GONE_STAGES):
            # each system's copy: the record is gone when all are; a removal naming categories takes
            # those alone (a probe's delete of a record's phone left its location kept past 30 days)
            named = catalog.profile(ev.categories)[1] if stage in GONE_STAGES else ()
            if ev.system not in rec.copies:  # a system renamed since its copy was kept is that copy
                rec.systems_as(partial(catalog.current, "system"))
            rec.log(stage, ev.system, ev.ts, named)
        if stage in COLLECTED and rec is not None:
            self._collected(held, rec, ev, catalog)
            if not ev.own_institution:
                yield from self._foreign_c3(rec, ev, customer, catalog)
            yield from self._stored_apart(rec, ev, customer, catalog)
            yield from self._after_end(customer, held, ev.record_id, rec, catalog)
            yield from self._left(customer, held, ev.record_id, rec, ctx, before)  # a copy reported late
            if rec.removed_any():  # a removal heard of before this collection: what it held is known now
                yield from self._premature(customer, held, ev.record_id, rec, catalog)
        elif (
            stage in GONE_STAGES and rec is not None and rec.copies[ev.system][SINCE] > ev.ts and not rec.gone
        ):
            if rec.restored < rec.stored:  # removed, then stored there again: a restore undid it, said
                rec.restored = rec.stored  # by a revision of what it left open (`_closed`: as the state is)
                yield from self._closed(customer, held, ev.record_id, rec, ctx)
        elif stage in GONE_STAGES and rec is not None:
            yield from self._left(customer, held, ev.record_id, rec, ctx, before)
        elif stage == "deletion_requested" and rec is not None:
            # what the customer asks deleted: the categories a request names, the whole record once
            # one names none (decided as `Record.request_part` reads it)
            asked = catalog.profile(ev.categories)[1]
            if not rec.requested:
                rec.asked = list(asked)
            elif rec.asked:
                rec.asked = sorted({*rec.asked, *asked}) if asked else []
            if not rec.requested or ev.ts < rec.requested:
                rec.request_id = ev.event_id
            rec.requested = min(rec.requested or ev.ts, ev.ts)
            ctx.timers.register(customer, catalog.policy.deletion_due(rec.requested))
        elif stage == "deletion_refused" and rec is not None:
            rec.refused = min(rec.refused or ev.ts, ev.ts)
            overdue = catalog.policy.deletion_due(rec.requested) if rec.requested else 0
            if Rule.deletion_request_overdue in rec.fired and _refused_by(rec, overdue):
                # refused in time, logged after the deadline's alert: the alert closes, as a late
                # deletion's does (a review: it stayed open)
                rec.fired[Rule.deletion_request_overdue] += 1
                yield self._request(customer, ev.record_id, rec, catalog)
            if rec.fired.get(Rule.deletion_request_unanswered) == 1:  # answered at last: closed, said late
                rec.fired[Rule.deletion_request_unanswered] += 1
                yield self._unanswered(customer, ev.record_id, rec, catalog)
        elif stage == "deletion_withdrawn" and rec is not None and 0 < rec.requested <= ev.ts:
            # the customer withdrew it before its deadline: no request is open, nothing is withheld
            # (a probe's withdrawal had no stage: a dead letter, and the request overdue for good;
            # logged as a refusal, every service read after it was `used_while_withheld`). After
            # the deadline the request was overdue already, and its alert stands
            if (
                ev.ts <= catalog.policy.deletion_due(rec.requested)
                and Rule.deletion_request_overdue not in rec.fired
            ):
                rec.requested, rec.request_id, rec.asked = 0, "", []
        elif stage == "account_closed":
            held.close_account(ev.record_id, ev.ts)
        elif stage == "relationship_ended":
            held.ended = max(held.ended, ev.ts)
        # the closure of the customer's last account ends the relationship as its end logged does (a
        # probe's core banking logged only the closure of the only account): as the records now
        # stand, asked again only when an account's may have changed (a collection, a closure), not
        # on every event: the customer's records are walked each time (a review's: 380 µs an event
        # at 10 000 records)
        closed_out = held.closed_out
        if stage in COLLECTED or stage == "account_closed":
            policy = self._retention(catalog)
            held.closed_out = held.accounts_closed(
                policy.account_categories, policy.account_purposes, policy.today
            )
        self.store.touch(customer)
        # a relationship begun again, whichever event the monitor heard first (a review: a return
        # reported after the KYC record's deletion left it a late removal, not one before the minimum)
        reclocked = (
            stage in CLOCKS or held.closed_out != closed_out or (held.end > 0 and held.resumed != resumed)
        )
        if reclocked and raised:  # a clock the return stopped ends its overrun (a review: left open)
            now = self._raised(held, catalog)
            for (rid, name), due in raised.items():
                if (rid, name) not in now:
                    yield from self._revised(customer, rid, held.records[rid], due, ctx, held.resumed)
        touched = held.records if reclocked else [ev.record_id] if rec is not None else []
        for rid in touched:
            if reclocked:  # what the record's collection or removal was, judged again by the new clock
                yield from self._after_end(customer, held, rid, held.records[rid], catalog)
                if held.records[rid].removed_any():
                    yield from self._premature(customer, held, rid, held.records[rid], catalog)
            for _, _, deadline in self.deadlines(held, held.records[rid], catalog):
                ctx.timers.register(customer, deadline + self._retention(catalog).grace_ms)
            if rid in held.uses:  # uses seen before this event: judged again with what it changed
                held.stale.add(rid)
                ctx.timers.register(JUDGE + customer, ev.ts)

    def _left(
        self,
        customer: str,
        held: Customer,
        rid: str,
        rec: Record,
        ctx: Context,
        before: dict[tuple[str, ...], tuple[int, str]],
    ) -> Iterator[Finding]:
        """When the record left, as its copies now say (`left`): gone when its last copy went (a
        deletion on the CRM leaves the warehouse's copy held: a probe's request answered on one copy
        of two, and a location the app deleted and the warehouse kept, raised nothing), whichever
        order its copies' events came in; and when each part a rule, a minimum or its request
        covers went (`_parts`, against `before` the event). What it closed or opened is revised."""
        gone, stage = left(rec.copies, rec.categories)
        now = self._parts(rec, ctx.catalog)
        moved = {p for p, at in now.items() if before.get(p, (0, "")) != at}
        if gone == rec.gone and not moved:
            return
        if gone != rec.gone and gone:
            ctx.timers.register(customer, gone + self.forget_ms)  # then the record is forgotten
        rec.gone, rec.gone_stage = gone, stage
        if rec.requested:
            # its request is judged again: its timer may have fired while the record seemed gone, or
            # gone sooner (a copy's store reported after a purge: a probe's late deletion went unseen)
            ctx.timers.register(customer, ctx.catalog.policy.deletion_due(rec.requested))
        yield from self._closed(customer, held, rid, rec, ctx, moved)
        if rec.removed_any():
            yield from self._premature(customer, held, rid, rec, ctx.catalog)

    def _unnamed(self, ev: Any, catalog: Catalog) -> Iterator[Finding]:
        """A lifecycle event that names no customer, and none of its record's events has yet (the
        engine's `UNNAMED`; its alerts name no subject): what the event itself decides, its destruction record, another
        institution's card data stored, card secrets on a client. A probe's acquiring system stored
        another bank's CVN without a customer id, and nothing fired. Its retention needs the
        customer's clocks: judged once an event names the customer (which judges this one again,
        under the same alert ids)."""
        stage = ev.stage.value
        if stage == "destroy":
            yield from self._destruction_record(ev, "", catalog)
        elif stage in COLLECTED:
            rec = Record(ev.ts, ev.system, purpose=ev.purpose)
            self._collected(Customer(), rec, ev, catalog)
            if not ev.own_institution:
                yield from self._foreign_c3(rec, ev, "", catalog)
            yield from self._stored_apart(rec, ev, "", catalog)

    def _collected(self, held: Customer, rec: Record, ev: Any, catalog: Catalog) -> None:
        """A collect or store: the record's clock starts at its first one; its content is their union."""
        if not rec.first_id or ev.ts < rec.first:  # its first collection (a removal may be heard of first)
            rec.first_id, rec.system = ev.event_id, ev.system
        rec.first = min(rec.first, ev.ts)
        rec.purpose = rec.purpose or ev.purpose
        if ev.stage.value == "collect":
            rec.last = max(rec.last, ev.ts)
            purpose = catalog.purposes.get(ev.purpose or "")
            # what the law, or the bank's duty to a former customer (a complaint answered), asks for
            # is collected after an end too, and begins nothing
            owed = ev.purpose in self._retention(catalog).owed_after_end
            if not owed and (purpose is None or not purpose.legal_obligation):
                rec.unbidden = max(rec.unbidden, ev.ts)
                if ev.purpose not in self._retention(catalog).contract_purposes:
                    rec.uncontracted = max(rec.uncontracted, ev.ts)
                if (
                    ev.purpose in self._retention(catalog).relationship_purposes
                    and ev.ts > held.end
                    and (held.resumed <= held.end or ev.ts < held.resumed)
                ):
                    # the earliest return after the latest end: the relationship's later collections
                    # do not move it (a review: each made the one before it "collected after the end")
                    held.resumed = ev.ts
        cls, cats = catalog.profile(ev.categories)
        if CLASS_RANK[cls] > CLASS_RANK[JrClass(rec.jr_class)]:
            rec.jr_class = cls.value
        if not set(cats) <= set(rec.categories):
            rec.categories = sorted(set(rec.categories) | set(cats))

    def _foreign_c3(self, rec: Record, ev: Any, customer: str, catalog: Catalog) -> Iterator[Finding]:
        """JR/T 0171 §6.1.3 a) (seed 001 §三.3(3), seed 002 §五(1)): another institution's card
        track data, expiry, CVN, PIN or payment password is never kept."""
        # a log naming the category (`authentication`) for the card secrets it stored may hold any of
        # them, and another institution's authentication data is never the bank's to keep
        held = sorted(set(ev.categories) & self._retention(catalog).foreign_c3_named)
        if held:
            yield from self._once(
                Rule.foreign_c3_stored,
                rec,
                ev,
                customer,
                JrClass.C3.value,
                f"record {ev.record_id} on {ev.system} stores another institution's {', '.join(held)}",
            )

    def _once(
        self, rule: Rule, rec: Record, ev: Any, customer: str, jr_class: str, summary: str
    ) -> Iterator[Finding]:
        """A rule a record breaks at one lifecycle event, raised the first time only."""
        if rule not in rec.fired:
            rec.fired[rule] = 1
            yield self._finding(
                rule,
                ev.record_id,
                customer,
                ev.ts,
                ev.ts,
                jr_class,
                summary,
                [ev.event_id],
                actor=ev.system,
                actor_kind="system",  # not an employee: no org is looked up for it (a review's)
            )

    def _consent_needs(self, ev: Any, catalog: Catalog) -> list[Any]:
        """The `collection_consent` entries a collection falls under (its categories or purpose),
        but for those a no-consent case of seed 004 流程描述(1)⑬ it lists (`unless`) answers: a
        location trace asks the customer's separate consent, an account's opening or KYC none."""
        cats = catalog.categories(ev.categories)
        policy = self._retention(catalog)
        purpose = catalog.purposes.get(ev.purpose or "")
        answered = {
            "contract": ev.purpose in policy.contract_purposes,
            "legal_obligation": purpose is not None and purpose.legal_obligation,
        }
        return [
            n
            for n in policy.collection_consent
            if (not cats.isdisjoint(n.categories) or ev.purpose in n.purposes)
            and not any(answered[case] for case in n.unless)
        ]

    def _without_consent(self, ev: Any, customer: str, rec: Record, ctx: Context) -> Iterator[Finding]:
        """Seed 004 流程描述(1)② and (4)②, 基本规定(4)①: biometrics, other sensitive data (a location
        trace, health data) and anything collected for marketing, only with the subject's consent for
        that purpose on record by then (separate where required).
        Judged once the watermark has passed the collection, against the consents read by then. A
        minor's collection is judged by its own rule (`_minor_without_consent`) instead."""
        if (minor := self._minor_age(ev, ctx)) is not None:
            yield from self._minor_without_consent(ev, customer, rec, ctx, minor)
            return
        unfed = not fed(ctx.refs.consents)
        # a deployment that feeds no consents decides nothing, except where the law asks for a
        # separate consent before the collection (biometrics, PIPL art. 29): none on record is the
        # offence the bank must be able to disprove. A location trace, collected at each session of
        # the app, is no such rare event (`fires_unfed: false`)
        needs = [n for n in self._consent_needs(ev, ctx.catalog) if not unfed or n.judged_unfed]
        if not needs:
            return
        separate = any(n.separate for n in needs)
        cats = ctx.catalog.categories(ev.categories)
        consent = ctx.consent_to_use(customer, ev.purpose, ev.ts) if ev.purpose else None
        granted = consent is not None and consent.status is ConsentStatus.granted
        if consent is not None and granted and (consent.separate or not separate):
            return
        kind = "separate consent (单独同意)" if separate else "consent"
        why = (
            "the collection states no purpose"
            if not ev.purpose
            else f"no {kind} of the customer for {ev.purpose} on record by then"
            + (" (a consent, not a separate one)" if granted else "")
            + (" (the consents stream holds none at all)" if unfed else "")
        )
        yield from self._once(
            Rule.collected_without_consent,
            rec,
            ev,
            customer,
            rec.jr_class,
            f"record {ev.record_id} ({', '.join(sorted(cats))}) collected on {ev.system} {self._day(ev.ts)}: {why}; "
            + "; ".join(dict.fromkeys(n.source for n in needs)),
        )

    def _may_be_minor(self, ev: Any, ctx: Context) -> bool:
        """A collection to judge at the watermark for a minor's rule: its customer is a minor, or not
        yet on pfi.customers (an account opening is logged before the nightly customer export: a
        review's 9-year-old was judged only when customers came first, as in a replay)."""
        if self._retention(ctx.catalog).minors is None:
            return False
        if fed(ctx.refs.customers) and ctx.customer(ev.subject_id, FOREVER) is None:
            return True
        return self._minor_age(ev, ctx) is not None

    def _minor_age(self, ev: Any, ctx: Context) -> Minor | None:
        """The collection's customer on its day, if a minor (detectors/minors.py, which the
        detectors judging a minor's push, share and SDK upload ask too)."""
        return minor_at(ev.subject_id, ev.ts, ctx)

    def _minor_without_consent(
        self, ev: Any, customer: str, rec: Record, ctx: Context, minor: Minor
    ) -> Iterator[Finding]:
        """Seed 004 流程描述(1)③: a minor's data is collected only with a separate consent, of the minor
        or a guardian, and under 14 the guardian's, for the collection's purpose, on record by then."""
        if ev.purpose:
            why = consent_gap(minor, ctx.consent_to_use(customer, ev.purpose, ev.ts), ev.purpose)
            if why is None:
                return
        else:
            why = "the collection states no purpose"
        cats = ctx.catalog.categories(ev.categories)
        yield from self._once(
            Rule.minor_collected_without_consent,
            rec,
            ev,
            customer,
            rec.jr_class,
            f"record {ev.record_id} ({', '.join(sorted(cats))}) of a customer {minor.band} collected on {ev.system} "
            f"{self._day(ev.ts)} without {minor.need}: {why}; {minor.source}",
        )

    def _stored_apart(self, rec: Record, ev: Any, customer: str, catalog: Catalog) -> Iterator[Finding]:
        """Seed 002 §五(4): no card secret on a terminal or client app; §五(2): biometrics stored
        apart from identity data. Once per record and rule."""
        policy = self._retention(catalog)
        # an ATM's PIN pad, a POS's swipe, the app binding a card or signing in with a face capture
        # to send on (seed 002 §三(5)(6): encrypted, the PIN masked): only a store keeps them there
        secrets = (
            sorted(set(ev.categories) & policy.never_stored_on_client_named) if ev.stage == "store" else []
        )
        if secrets and policy.on_client(ev.system):
            yield from self._once(
                Rule.card_data_on_client,
                rec,
                ev,
                customer,
                JrClass.C3.value,
                f"record {ev.record_id} stores {', '.join(secrets)} on {ev.system}, a terminal or client app",
            )
        if {"biometric", "identity"} <= set(rec.categories):
            yield from self._once(
                Rule.biometric_with_identity,
                rec,
                ev,
                customer,
                rec.jr_class,
                f"record {ev.record_id} on {ev.system} holds biometric and identity data together ({', '.join(rec.categories)})",
            )

    def _unerased(self, method: str, catalog: Catalog) -> str | None:
        """Why a destruction method leaves the data recoverable, None when it erases: a destroy is
        complete only when its method names an unrecoverable technique (seed 004 流程描述(6)③
        应采用不可恢复的方式(如消磁、焚烧、粉碎等)…确保…不可再被恢复; seed 002 §七(4) 多次覆写), a term of
        `erasing_methods` not said undone or yet to come (未覆写, 待覆盖, awaiting overwrite). One naming
        a term that only hides the data (`recoverable_methods`: an index removed, a recycle bin) says
        so; one naming neither (清空, 字段置空, 服务器报废, blkdiscard: a probe's passed) names none."""
        policy = self._retention(catalog)
        if erases(method, policy.erasing_methods):
            return None
        if policy.recoverable_methods.search(method):
            return "leaves it recoverable"
        return "names no unrecoverable technique"

    def _destruction_record(self, ev: Any, customer: str, catalog: Catalog) -> Iterator[Finding]:
        """Seed 002 §七(3): the record states content, method, time, operator and supervisor; a
        supervisor who is the operator supervises nothing (§七(2)); a method that only hides the
        data (a logical delete, an index removed) destroys nothing (§七(4))."""
        operator, supervisor = (_signed(ev.operator_id), _signed(ev.supervisor_id))
        missing = [
            name
            for name, value in (
                ("content", ev.categories),
                ("method", _signed(ev.method)),
                ("operator", operator),
                ("supervisor", supervisor),
            )
            if not value
        ]
        if operator and operator == supervisor:
            missing.append("a supervisor other than the operator")
        # a blank method is reported missing above, not judged again
        why = self._unerased(method_key(ev.method), catalog) if _signed(ev.method) else None
        if why:
            missing.append(f"a method that erases it ({ev.method} {why})")
        if missing:
            yield self._finding(
                Rule.destruction_record_incomplete,
                ev.event_id,
                customer,
                ev.ts,
                ev.ts,
                "C1",
                f"destruction of record {ev.record_id} on {ev.system} lacks {', '.join(missing)}",
                [ev.event_id],
                actor=ev.operator_id or ev.system,
                actor_kind="employee" if ev.operator_id else "system",
            )

    # -- timers -----------------------------------------------------------------------------------
    def on_timer(self, key: str, deadline_ms: int, ctx: Context) -> Iterable[Finding]:
        for ev in inbox.release(self.store, ctx):
            waited = self.store.get(ev.subject_id)
            rec = waited.records.get(ev.record_id) if waited is not None else None
            if rec is not None:
                yield from self._without_consent(ev, ev.subject_id, rec, ctx)
                self.store.touch(ev.subject_id)
        if key.startswith(JUDGE):
            yield from self._judge_stale(key[len(JUDGE) :], ctx)
            return
        if key.startswith(BATCH):
            yield from self._on_batch(key, ctx)
            return
        if key.startswith(TOTAL):
            yield from self._settle(key, ctx)
            return
        held = None if key == inbox.INBOX else self.store.get(key)
        if held is None:
            return
        wm = ctx.watermark
        for rid, rec in list(held.records.items()):
            yield from self._expired(key, held, rid, rec, ctx)
            yield from self._request_overdue(key, held, rid, rec, ctx)
            if rec.gone and rec.gone + self.forget_ms <= wm:
                del held.records[rid]  # long gone: forgotten, state stays bounded
        for rid, uses in list(held.uses.items()):
            if uses[-1][0] + self.forget_ms <= wm:
                del held.uses[rid]
        if held.records or held.uses:
            self.store.touch(key)
        else:
            self.store.delete(key)

    def _judge_stale(self, customer: str, ctx: Context) -> Iterator[Finding]:
        """The uses of the customer's records that a use or a lifecycle event made stale, up to the
        watermark; the latest `evidence_limit` judged are kept. A record stays stale while a use of
        it is still ahead of the watermark, and the timer comes again at the earliest such use: the
        watermark moves back when an input that had delivered nothing (and so held nothing back)
        delivers its first records, a record's history years old, so the use's own timer may have
        fired already, before its record was known (the kill -9 test's lost alert)."""
        held = self.store.get(customer)
        if held is None or not held.stale:
            return
        wm = ctx.watermark
        for rid in [r for r in held.stale if r in held.uses]:
            yield from self._judge_uses(customer, held, rid, ctx)
            uses = held.uses[rid]
            del uses[: max(0, bisect_right(uses, wm, key=_TS) - self.p.evidence_limit)]
        held.stale = {r for r in held.stale if held.uses.get(r) and held.uses[r][-1][0] > wm}
        ahead = [held.uses[r][bisect_right(held.uses[r], wm, key=_TS)][0] for r in held.stale]
        if ahead:
            ctx.timers.register(JUDGE + customer, min(ahead))
        self.store.touch(customer)

    def _expired(
        self, customer: str, held: Customer, rid: str, rec: Record, ctx: Context
    ) -> Iterator[Finding]:
        """Seed 002 §五, seed 004 流程描述(3)①: past a rule's deadline, not deleted, anonymized or
        destroyed by then (a deletion after the deadline is still an overrun, closed at once).
        A deadline still ahead gets its timer again: one restored from an older version's state
        may be due earlier than the deadline counted now (periods were once keep_days x 24 h)."""
        wm, grace = ctx.watermark, self._retention(ctx.catalog).grace_ms
        for d, start, deadline in self.deadlines(held, rec, ctx.catalog):
            tag = f"{Rule.retention_expired}:{d.name}"
            gone = rec.part_left(d.categories)[0]  # the part it covers: a delete of another leaves it
            if tag in rec.fired or 0 < gone <= deadline + grace:
                continue
            if deadline + grace <= wm:
                rec.fired[tag] = 1
                if (alone := self._overran(customer, held, rid, rec, (d, start, deadline), ctx)) is not None:
                    yield alone
            elif not gone:  # its timer is already there, unless restored from old state
                ctx.timers.register(customer, deadline + grace)

    def _request_overdue(
        self, customer: str, held: Customer, rid: str, rec: Record, ctx: Context
    ) -> Iterator[Finding]:
        """Seed 004 流程描述(5): a deletion request is executed within the SLA (15 days, the bank's own)."""
        if not rec.requested:
            return
        catalog = ctx.catalog
        overdue = catalog.policy.deletion_due(rec.requested)
        # answered when what it asks deleted is gone: a delete of the phone alone leaves the address
        gone = rec.part_left(rec.request_part())[0]
        if 0 < gone <= overdue or Rule.deletion_request_overdue in rec.fired:
            return
        if _refused_by(rec, overdue):
            return
        # kept by the law's minimum, the record is withheld, not deleted; the customer is still owed
        # the answer, a refusal saying why, in the 15 days the privacy policy promises
        kept = self._kept_by_law(held, rec, catalog, overdue)
        if kept and Rule.deletion_request_unanswered in rec.fired:
            return
        if overdue > ctx.watermark:
            if not gone:
                ctx.timers.register(customer, overdue)  # as for a retention deadline
            return
        rule = Rule.deletion_request_unanswered if kept else Rule.deletion_request_overdue
        rec.fired[rule] = 1
        yield (
            self._unanswered(customer, rid, rec, catalog)
            if kept
            else self._request(customer, rid, rec, catalog)
        )

    def _closed(
        self,
        customer: str,
        held: Customer,
        rid: str,
        rec: Record,
        ctx: Context,
        moved: set[tuple[str, ...]] | None = None,
    ) -> Iterator[Finding]:
        """The record, or the part a rule or the request covers, went (deleted, anonymized,
        destroyed) after an overrun or an overdue request fired: the alert's next revision closes
        it, so only what is still kept stays open (or, for a removal a restore undid, says so).
        `moved`: the parts whose removal changed (`_parts`); None: every alert. Its content follows
        from the state alone, whether the timer or the deletion came first."""
        catalog = ctx.catalog
        for d, start, deadline in self.deadlines(held, rec, catalog):
            tag = f"{Rule.retention_expired}:{d.name}"
            if tag in rec.fired and (moved is None or _part(rec, d) in moved):
                yield from self._revised(customer, rid, rec, (d, start, deadline), ctx)
        if Rule.deletion_request_overdue in rec.fired and (
            moved is None or tuple(rec.request_part()) in moved
        ):
            rec.fired[Rule.deletion_request_overdue] += 1
            yield self._request(customer, rid, rec, catalog)

    def _raised(self, held: Customer, catalog: Catalog) -> dict[tuple[str, str], Due]:
        """(record, rule) -> (rule, clock start, deadline) of every overrun raised and still counted."""
        return {
            (rid, d.name): (d, start, deadline)
            for rid, r in held.records.items()
            if r.fired
            for d, start, deadline in self.deadlines(held, r, catalog)
            if f"{Rule.retention_expired}:{d.name}" in r.fired
        }

    def _overrun(
        self,
        customer: str,
        rid: str,
        rec: Record,
        d: Deadline,
        start: int,
        deadline: int,
        begun_again: int = 0,
        into: str = "",
    ) -> Finding:
        """`begun_again`: when a return to the relationship stopped the clock the overrun counted
        from, which ends the alert (the record is kept while the relationship lasts). `into`: the
        alert of the batch that now counts it (`_overran`), which ends this one."""
        tag, part = f"{Rule.retention_expired}:{d.name}", _part(rec, d)
        gone = rec.part_left(part)
        # what is past is the rule's part alone: a payment's GPS in a transaction the law keeps ten
        # years is removed by a delete naming the location, the transaction kept (a probe's alert
        # told the bank to delete a record it must keep)
        others = [c for c in rec.categories if c not in part]
        alone = (
            f"; only its {', '.join(part)} is past this rule: a delete naming it removes it alone"
            if others and part
            else ""
        )
        return self._finding(
            Rule.retention_expired,
            f"{rid}:{d.name}",
            customer,
            start,
            deadline,
            rec.jr_class,
            f"record {rid} on {rec.where(deadline, part)} ({', '.join(rec.categories)}) kept past its "
            f"{d.rule.span} retention ({d.name}: from {d.after} {self._day(start)}, "
            f"due {self._last_day(deadline, self._counted(start, d.rule))}; {d.source})"
            # closed into its batch, it is not revised again: its removal, known or not yet when the
            # batch rolled up (one instance or two pacing it otherwise), is the batch's to say
            f"{'' if into else self._late(rec, deadline, gone)}"
            + (alone if not gone[0] and not into else "")
            + (
                f"; the relationship began again {self._day(begun_again)}: kept while it lasts"
                if begun_again
                else ""
            )
            + (
                f"; one of {self.p.rollup_records:,} or more due that day there, counted in their alert {into}"
                if into
                else ""
            ),
            [rec.first_id] if rec.first_id else [],
            actor=rec.holders(deadline, part)[0],  # the system that kept it (the backlog panel counts by it)
            actor_kind="system",
            revision=rec.fired[tag],
            closed=gone[0] > 0 or bool(begun_again) or bool(into),
            anchor=_anchor(rec, tag, start, rec.fired[tag] == 1),
        )

    # -- batches: a purge job's backlog is one alert (probe_v2 F6) -------------------------------
    def _overran(
        self, customer: str, held: Customer, rid: str, rec: Record, due: Due, ctx: Context
    ) -> Finding | None:
        """A record's overrun, raised: a member of its task's share of its batch (`Batch`: its
        system, rule, class and due day), handed to the stage with the batch's partial (`partials`),
        which decides once every task has passed the due time whether the day is one alert or one
        a member (`_settle`); the member's own alert goes with it while the share has fewer than
        `rollup_records` members. Its customer is new to the batch unless another of its records is
        a member: counted once at each timer pass that brought one, the same day's customers were 45
        through one instance and 47 through two, whose passes fell otherwise. Returns the member's
        own alert where its task says it (a day begun before the stage)."""
        d, start, deadline = due
        tag, part = f"{Rule.retention_expired}:{d.name}", _part(rec, d)
        system = rec.holders(deadline, part)[0]
        named = f"{system}\x1f{d.name}\x1f{rec.jr_class}\x1f{deadline}".encode()
        gid = int(hashlib.sha256(named).hexdigest()[:15], 16)
        key = _batch_key(gid)
        batch = self.store.get(key) or Batch(
            system, d.name, rec.jr_class, deadline, ctx.partition, self._generation()
        )
        member = tag + IN_BATCH
        known = any(r.fired.get(member) == gid for other, r in held.records.items() if other != rid)
        batch.join(customer, rid, rec, start, not known, self.p.evidence_limit)
        rec.fired[member] = gid
        _anchor(rec, tag, start, first=True)  # its alert's id, whichever revision is said first
        self._recount(key, batch, rec, tag, part, ctx)
        self.store.put(key, batch)
        if batch.rolled:  # its task's own alert, raised before the stage: revised under its id
            self._changed(key, batch, ctx)
            return None
        if not batch.staged:  # a day its task said one alert a record before the stage: as then
            return self._overrun(customer, rid, rec, d, start, deadline)
        members = self._handed.setdefault(key, {})
        if batch.records < self.p.rollup_records:
            batch.alone.append([customer, rid])
            members[rid] = self._member_alerts(customer, rid, rec, due, batch)
        else:  # the share alone reaches it: the day is one alert, whatever the other tasks hold
            batch.alone = []
            members.clear()
        return None

    def _member_alerts(
        self, customer: str, rid: str, rec: Record, due: Due, batch: Batch, begun_again: int = 0
    ) -> list[Any]:
        """[its alert's id, its own alert, the summary of it closed into the batch's]: what the stage
        says of a member of a day of fewer than `rollup_records`, and once the day reaches them
        (`_settle`)."""
        d, start, deadline = due
        alone = self._overrun(customer, rid, rec, d, start, deadline, begun_again=begun_again)
        into = self._overrun(customer, rid, rec, d, start, deadline, into=self._batched(batch, d).alert_id)
        # the rule's titles and regulation the stage has (`_said`): 1.5 KB of a member's 2.5 KB
        said = {k: v for k, v in msgspec.to_builtins(alone).items() if k not in RULE_WORDS}
        return [alone.alert_id, said, into.summary]

    def _changed(self, key: str, batch: Batch, ctx: Context) -> None:
        """The batch's alert is said again at its timer, once the watermark is where it is now: at
        the next pass, after every change this one makes. A watermark below 0 (a re-keyed input not
        marked by every source partition yet, after a start) waits for the first pass that may fire:
        registered there, the live run died on its late destruction job after a restart."""
        if not batch.changed:
            batch.changed = 1
            ctx.timers.register(key, max(ctx.watermark, 0))

    def _on_batch(self, key: str, ctx: Context) -> Iterator[Finding]:
        """A batch's timer: the next revision of an alert its task raised (before partials), if it
        changed; a batch none of whose members is kept is forgotten as its records are."""
        batch = self.store.get(key)
        if not isinstance(batch, Batch):
            return
        rule = self._rule(batch.rule, ctx.catalog)
        if batch.changed:
            batch.changed = 0
            self.store.touch(key)
            if rule is not None:  # a rule dropped from policy since says nothing more
                batch.revision += 1
                yield self._batched(batch, rule)
        if not batch.kept and max(batch.removed, batch.deadline) + self.forget_ms <= ctx.watermark:
            self.store.delete(key)

    def _rule(self, name: str, catalog: Catalog) -> Deadline | None:
        return next((r for r in self._retention(catalog).rules if r.name == name), None)

    # -- the stage: one system's day from every task's share -----------------------------------
    def _generation(self) -> int:
        """The generation of this task's state: the wall time (ms) it was first asked for, kept in
        the state, so a restart from the changelog (a crash's replay) keeps it, and a task starting
        without its state takes a later one than it had (`_later`). Time, not a count: the count
        goes with the state it would be kept in."""
        generation = self.store.get(GENERATION_KEY)
        if generation is None:
            generation = time.time_ns() // 1_000_000
            self.store.put(GENERATION_KEY, generation)
        return int(generation)

    def partials(self, ctx: Context) -> list[tuple[str, Any]]:
        """The shares this pass changed, as they stand, keyed by system for the stage: counts and
        samples, and the alerts of the members that changed while the share has fewer than
        `rollup_records`. One message a share and pass, under 3 KB but for those alerts."""
        handed, self._handed = self._handed, {}
        due = self._retention(ctx.catalog).grace_ms
        out = []
        for key, members in handed.items():
            batch = self.store.get(key)
            if isinstance(batch, Batch):
                share = {"key": key, "partition": ctx.partition, "due": batch.deadline + due}
                out.append((batch.system, share | batch.to_json() | {"members": list(members.values())}))
        return out

    def on_partials(self, partials: Sequence[Any], ctx: Context) -> None:
        """Shares of one system's day from the tasks (`partials`), each replacing its task's last: the
        day is settled once every task has passed its due time (`_settle`), and again at the next
        pass after a later share."""
        for share in partials:
            key = TOTAL + share["key"].removeprefix(BATCH)
            total = self.store.get(key) or Total()
            held = total.parts.get(str(share["partition"]))
            if held is not None and _later(held) > _later(share["batch"]):
                continue  # an older share, handed again by its task's replay after a crash: stale
            total.parts[str(share["partition"])] = share["batch"]
            if not total.rolled:
                for alert_id, alone, into in share["members"]:
                    said = total.members.get(alert_id, [None, None, 0])[2]
                    total.members[alert_id] = [alone, into, said]
            total.changed = 1
            self.store.put(key, total)
            ctx.timers.register(key, max(ctx.watermark, 0) if total.decided else share["due"])

    def _settle(self, key: str, ctx: Context) -> Iterator[Finding]:
        """A system's day, once every task has passed its due time: `rollup_records` or more members
        in all the shares are one alert, its id naming no partition, and the members said alone
        before are closed into it; fewer, each member's own alert. The same however the day was
        spread over tasks (a replay's one, a live run's three): what is decided waits for all."""
        total = self.store.get(key)
        if not isinstance(total, Total):
            return
        batch = Batch.merged(
            [Batch.from_json({"batch": part}) for _, part in sorted(total.parts.items())],
            self.p.evidence_limit,
        )
        rule = self._rule(batch.rule, ctx.catalog)
        total.decided = 1
        if rule is not None and batch.records >= self.p.rollup_records:
            if not total.rolled:
                total.rolled = 1
                for alone, into, said in total.members.values():
                    if said:  # said alone before the day reached the threshold: counted in it now
                        revision = max(alone["revision"], said) + 1
                        yield self._said(alone, summary=into, closed=True, revision=revision)
                total.members = {}
            if total.changed:
                total.revision += 1
                found = self._batched(batch, rule)
                found.revision = total.revision
                yield found
        elif rule is not None:
            for member in total.members.values():
                if member[0]["revision"] > member[2]:
                    member[2] = member[0]["revision"]
                    yield self._said(member[0])
        total.changed = 0
        self.store.touch(key)
        if not batch.kept:  # forgotten as its shares are
            forget = max(batch.removed, batch.deadline) + self.forget_ms
            if forget <= ctx.watermark:
                self.store.delete(key)
            else:
                ctx.timers.register(key, forget)

    def _said(self, alone: dict[str, Any], **changed: Any) -> Finding:
        """A member's alert as its task built it (`_member_alerts`), with the rule's words again."""
        spec = self.p.rules[Rule.retention_expired]
        words = {"title_zh": spec.title_zh, "title_en": spec.title_en, "regulation": spec.regulation}
        return msgspec.convert(alone | changed | words, Finding)

    def _revised(
        self, customer: str, rid: str, rec: Record, due: Due, ctx: Context, begun_again: int = 0
    ) -> Iterator[Finding]:
        """A raised overrun's record changed (removed, restored, its clock stopped): its batch's
        share counts it again, and hands the stage its member's alert where the share carries it;
        an overrun its task said alone (before batches, or before the stage) revises its own alert."""
        d, start, deadline = due
        tag = f"{Rule.retention_expired}:{d.name}"
        rec.fired[tag] += 1
        gid = rec.fired.get(tag + IN_BATCH)
        key = _batch_key(gid) if gid else ""
        batch = self.store.get(key) if key else None
        if isinstance(batch, Batch):
            self._recount(key, batch, rec, tag, _part(rec, d), ctx, begun_again)
            self.store.touch(key)
        if isinstance(batch, Batch) and batch.rolled:
            self._changed(key, batch, ctx)
            return
        if not isinstance(batch, Batch) or not batch.staged:  # raised before batches, or the stage
            yield self._overrun(customer, rid, rec, d, start, deadline, begun_again=begun_again)
            return
        members = self._handed.setdefault(key, {})
        if [customer, rid] in batch.alone:
            members[rid] = self._member_alerts(customer, rid, rec, due, batch, begun_again)

    def _recount(
        self,
        key: str,
        batch: Batch,
        rec: Record,
        tag: str,
        part: Sequence[str],
        ctx: Context,
        begun_again: int = 0,
    ) -> None:
        """The member counted kept, or not, as it now stands; a batch with none kept is forgotten
        `forget_deleted_days` after its latest removal, as its records are."""
        gone = rec.part_left(part)[0]
        kept = int(not gone and not begun_again)
        batch.kept += kept - rec.fired.get(tag + KEPT, 0)
        rec.fired[tag + KEPT] = kept
        batch.removed = max(batch.removed, gone)
        batch.changes += 1
        if not batch.kept:
            ctx.timers.register(key, max(batch.removed, batch.deadline) + self.forget_ms)

    def _batched(self, batch: Batch, d: Deadline) -> Finding:
        """The batch's alert: one per system, rule, class and due day, its id hashing them, so a
        replay or restart gives the same one; open while a member is kept."""
        late = ""
        if batch.removed > batch.deadline:
            days = (self._date(batch.removed) - self._date(batch.deadline - 1)).days
            late = f"; the latest removed {self._day(batch.removed)}, {n_of(days, 'day')} late"
        more = batch.records - len(batch.rids)
        found = self._finding(
            Rule.retention_expired,
            # its task's alert, raised before partials, names the partition; the stage's, one system's day
            f"{batch.system}:{batch.rule}:{batch.jr_class}:{self._day(batch.deadline - 1)}"
            + (f":p{batch.partition}" if batch.rolled else ""),
            "",
            batch.deadline,
            batch.deadline,
            batch.jr_class,
            f"{n_of(batch.records, 'record')} of {n_of(batch.customers, 'customer')} on {batch.system} "
            f"({', '.join(batch.categories)}) kept past their {d.rule.span} retention ({d.name}: due "
            f"{self._last_day(batch.deadline)}, the earliest kept since {self._day(batch.start)}; "
            f"{d.source}): {batch.kept:,} still kept{late}; one purge schedule too slow for the rule, "
            f"one alert: records {', '.join(batch.rids)}" + (f" and {more:,} more" if more else ""),
            [e for e in batch.evidence if e],
            actor=batch.system,
            actor_kind="system",
            revision=batch.revision,
            counts={"records": batch.records, "kept": batch.kept},
            closed=not batch.kept,
            seen=batch.start,
        )
        found.subject_count, found.subject_sample, found.subjects = (
            batch.customers,
            batch.subjects,
            batch.subjects,
        )
        found.event_count = batch.records
        return found

    def _request(self, customer: str, rid: str, rec: Record, catalog: Catalog) -> Finding:
        overdue, part = catalog.policy.deletion_due(rec.requested), rec.request_part()
        gone = rec.part_left(part)
        # a request answered in part names what it left (a probe's CRM deleted the phone alone)
        kept = [c for c in part if not rec.part_left([c])[0]] if not gone[0] and rec.removed_any() else []
        return self._finding(
            Rule.deletion_request_overdue,
            rid,
            customer,
            rec.requested,
            overdue,
            rec.jr_class,
            f"deletion of record {rid} on {rec.where(overdue, part)}, requested {self._day(rec.requested)}, "
            f"not executed within {self._retention(catalog).sla_days} days{self._moved(rec, catalog)}"
            + (f" ({', '.join(kept)} still held)" if 0 < len(kept) < len(part) else "")
            + self._late(rec, overdue, gone)
            + (
                f"; refused {self._day(rec.refused)}, in time (the refusal was reported after the deadline)"
                if _refused_by(rec, overdue)
                else ""
            ),
            [rec.request_id] if rec.request_id else [],
            actor=rec.holders(overdue, part)[0],
            actor_kind="system",
            revision=rec.fired[Rule.deletion_request_overdue],
            closed=gone[0] > 0 or _refused_by(rec, overdue),
            anchor=_anchor(
                rec,
                Rule.deletion_request_overdue,
                rec.requested,
                rec.fired[Rule.deletion_request_overdue] == 1,
            ),
        )

    def _unanswered(self, customer: str, rid: str, rec: Record, catalog: Catalog) -> Finding:
        """A deletion request the law's minimum answers by keeping the record, with no answer to the
        customer (`deletion_refused`, the reason said) by its due date: seed 004 隐私政策 (四) promises
        one within 15 days, and PIPL art. 50 asks a refusal's reason (a probe's request went
        unanswered for good, and a refusal 35 days late passed). Closed once the answer is logged."""
        overdue, part = catalog.policy.deletion_due(rec.requested), rec.request_part()
        days = self._retention(catalog).sla_days
        answered = (
            f"; answered (refused) {self._day(rec.refused)}, {(rec.refused - overdue) // DAY_MS + 1} days late"
            if rec.refused > overdue
            else ""
        )
        return self._finding(
            Rule.deletion_request_unanswered,
            rid,
            customer,
            rec.requested,
            overdue,
            rec.jr_class,
            f"deletion of record {rid} on {rec.where(overdue, part)}, requested {self._day(rec.requested)}: "
            f"the law keeps it, and no answer to the customer (a refusal saying why) was logged within "
            f"{days} days{self._moved(rec, catalog)}" + answered,
            [rec.request_id] if rec.request_id else [],
            actor=rec.holders(overdue, part)[0],
            actor_kind="system",
            revision=rec.fired[Rule.deletion_request_unanswered],
            closed=rec.refused > 0 or rec.part_left(part)[0] > 0,
            anchor=_anchor(rec, Rule.deletion_request_unanswered, rec.requested, True),
        )

    def _kept_by_law(self, held: Customer, rec: Record, catalog: Catalog, when: int) -> bool:
        """A statutory minimum still runs at `when`: a deletion request is then answered by keeping
        the record stored and withheld from use, not by deleting it (PIPL art. 47 ¶2). A request
        naming categories no minimum covers (a KYC file's phone) is owed its deletion."""
        asked = rec.request_part()
        return any(
            lawful > when
            for m, _, lawful, _ in self.minimums(held, rec, catalog, when)
            if not m.categories.isdisjoint(asked)
        )

    def _premature(
        self, customer: str, held: Customer, rid: str, rec: Record, catalog: Catalog
    ) -> Iterator[Finding]:
        """AML Law art. 34 (retention.yaml `minimums`): removed before the last day of the period
        the law requires it kept, or before that period's clock started. A deletion request does
        not shorten it (PIPL art. 47 ¶2). No evidence event: the removal or the clock may decide it,
        whichever arrives later, and the alert must not depend on which (replay equals live)."""
        account = self._is_account(rec, catalog)
        for m in self._covering_of(rec, catalog)[1]:
            tag = f"{Rule.removed_before_minimum}:{m.name}"
            # the part the minimum keeps: a delete of another part (a KYC file's phone) leaves it
            gone = rec.part_left(m.categories)[0]
            if tag in rec.fired or not gone:
                continue
            _, lawful, period = self._minimum(held, rec, catalog, m, gone, account)
            if gone >= lawful:
                continue
            rec.fired[tag] = 1
            # the same words whether the clock's start was known at the removal or came after it
            when = f"inside the {period.period} the law requires it kept from {m.after}"
            asked = (
                f"; deletion requested {self._day(rec.requested)}, which the law's minimum outranks "
                "(PIPL art. 47 ¶2: keep it stored, stop every other use)"
                if rec.requested
                else ""
            )
            yield self._finding(
                Rule.removed_before_minimum,
                f"{rid}:{m.name}",
                customer,
                rec.first,  # not the clock's start: a clock reported later must not change the id
                gone,
                rec.jr_class,
                f"record {rid} on {rec.where()} ({', '.join(rec.categories)}) removed {self._day(gone)} "
                f"{when}; {period.source}{asked}",
                [],
                actor=rec.system,
                actor_kind="system",
                seen=gone,  # when removed (a probe's was dated by the record's store, years before)
            )

    def _after_end(
        self, customer: str, held: Customer, rid: str, rec: Record, catalog: Catalog
    ) -> Iterator[Finding]:
        """Seed 004 流程描述(1)⑫: once the bank stops serving a customer, it stops collecting. No
        evidence event, as for `_premature`: the collection or the end decides it, in either order.
        The closure's own settlement, a contract's collection within `closing_grace_hours` of the
        end, is none (a probe's dormant-account batch posted the closing interest two seconds after
        each closure: 500 mediums)."""
        if Rule.collected_after_relationship_ended in rec.fired:
            return
        at = held.collected_after_end(rec, self._retention(catalog).closing_grace_ms)
        if not at:
            return
        rec.fired[Rule.collected_after_relationship_ended] = 1
        ended_by = " (its last account closed)" if held.closed_out > held.ended else ""
        yield self._finding(
            Rule.collected_after_relationship_ended,
            rid,
            customer,
            held.end,
            at,
            rec.jr_class,
            f"record {rid} ({', '.join(rec.categories)}) collected on {rec.system} {self._day(at)}, "
            f"after the business relationship ended {self._day(held.end)}{ended_by} (first collected for "
            f"{rec.purpose or 'an unstated purpose'})",
            [],
            actor=rec.system,
            actor_kind="system",
            seen=at,  # when collected, not when the relationship ended (a probe's)
        )

    def _judge_uses(self, customer: str, held: Customer, rid: str, ctx: Context) -> Iterator[Finding]:
        """Seed 002 §五, §六.6(1): a record is neither used past its deadline nor after its deletion.
        Judged by a timer once the watermark has passed a use (every input has gone past it, so
        each lifecycle event dated before it is known: a removal, or the collection that made the
        record anew), on the set of the record's uses up to there; a lifecycle event reported late
        judges them again. A replay and a live run that interleave the inputs differently end with
        one alert."""
        rec = held.records.get(rid)
        if rec is None:
            return  # not (yet) a record this customer's lifecycle shows
        uses = [u for u in held.uses[rid] if u[0] <= ctx.watermark]
        # a collection after the removal, logged before it (a late deletion log), starts a new record:
        # what uses that follows is not of the removed one
        anew = rec.last if rec.last > rec.gone else None
        after_gone = [u for u in uses if rec.gone and u[0] > rec.gone and (anew is None or u[0] < anew)]
        spans = self._overdue(held, rec, ctx.catalog)
        after_due = [u for u in uses if u not in after_gone and any(dl < u[0] <= to for dl, to in spans)]
        # the deadline the first offending use passed (a location's, deleted since, is not a phone's)
        due = min((dl for dl, to in spans if any(dl < u[0] <= to for u in after_due)), default=None)
        withheld = self._withheld(held, rec, ctx.catalog)
        for_other = [
            u
            for u in uses
            if withheld
            and u[0] > withheld
            and u not in after_gone
            and u not in after_due  # a use past a deadline is that alert's alone
            and _for_another_purpose(u, ctx.catalog)
            and not self._serves_contract(held, rec, u, ctx.catalog)
            # withheld while the minimum runs, or for good once the request was refused
            and (self._kept_by_law(held, rec, ctx.catalog, u[0]) or _refused_by(rec, withheld))
        ]
        # each rule's words, written only for a rule that fires
        for rule, since, offending, what in (
            (
                Rule.used_after_deletion,
                rec.gone,
                after_gone,
                lambda: f"{GONE_STAGES.get(rec.gone_stage, 'removed')} {self._day(rec.gone)}",
            ),
            (
                Rule.used_after_deadline,
                due,
                after_due,
                lambda: f"past its deadline {self._last_day(due or 1)}",
            ),
            (
                Rule.used_while_withheld,
                withheld,
                for_other,
                lambda: (
                    f"withheld {'after its deletion was refused' if rec.refused else 'for its statutory minimum'}"
                    f" from {self._day(withheld or 1)} (deletion requested {self._day(rec.requested)}), used for "
                    f"{for_other[-1][5]}"
                ),
            ),
        ):
            first = rule not in rec.fired
            if not _count(rule, offending, rec.fired):
                continue
            n = rec.fired[rule]
            ts, event_id, stream, who = offending[-1][:4]
            verb = "read by" if stream == "access" else "sent to"
            yield self._finding(
                rule,
                rid,
                customer,
                since or 0,
                ts,
                rec.jr_class,
                f"record {rid} on {rec.system}, {what()}, {verb} {who} ({stream} {event_id}); {n_of(n, 'use')} so far",
                [u[1] for u in offending],
                actor=who,
                actor_org=ctx.org_of(who, ts) if stream == "access" else None,
                actor_kind="employee" if stream == "access" else "recipient",  # a transfer's: its recipient
                revision=n,
                counts={"uses": n},
                anchor=_anchor(rec, rule, since or 0, first),
                seen=_first_use(rec, rule, offending, None if first else since or 0),
            )

    def _serves_contract(self, held: Customer, rec: Record, use: list[Any], catalog: Catalog) -> bool:
        """A use the customer's contract needs, while the relationship lasts, reading what was
        collected for it (its own purpose's data, or a purpose's it `also_uses`): no use the request
        withholds the record from (seed 004 基本规定(4)③: 处理个人金融信息属于提供产品或者服务所必需的除外;
        流程描述(1)⑬g: 根据客户要求签订和履行合同所必需的). A probe's customer kept the account after asking
        for deletion, and every teller and payment read of the opening identity was a high alert,
        even after a timely refusal. Marketing is no contract's need, and still fires."""
        r = self._retention(catalog)
        purpose = r.today(use[5]) if len(use) > 5 else ""
        if purpose not in r.contract_purposes or not held.ongoing(use[0]):
            return False
        reads, collected = catalog.purposes.get(purpose or ""), r.today(rec.purpose)
        return collected == purpose or (reads is not None and collected in reads.also_uses)

    def _overdue(self, held: Customer, rec: Record, catalog: Catalog) -> list[tuple[int, int]]:
        """(deadline, until) of each deadline (`_due`'s) a use of the record is past while the part
        it covers is held: until that part left (FOREVER while held). A location deleted in time and
        a phone kept: a read of the phone after the location's 30 days is no use past a deadline."""
        spans = [
            (dl, rec.part_left(d.categories)[0] or FOREVER) for d, _, dl in self.deadlines(held, rec, catalog)
        ]
        if rec.requested:
            requested = catalog.policy.deletion_due(rec.requested)
            if not self._withheld_by(held, rec, catalog, requested):
                spans.append((requested, rec.part_left(rec.request_part())[0] or FOREVER))
        return [(dl, to) for dl, to in spans if to > dl]

    def _due(self, held: Customer, rec: Record, catalog: Catalog) -> int | None:
        """The earliest deadline the record's uses are judged against: a retention rule's, or its
        deletion request's 15 days (the bank's SLA, retention.yaml) unless a statutory minimum keeps it then."""
        past = [dl for _, _, dl in self.deadlines(held, rec, catalog)]
        if rec.requested:
            requested = catalog.policy.deletion_due(rec.requested)
            if not self._withheld_by(held, rec, catalog, requested):
                past.append(requested)
        return min(past) if past else None

    def _withheld(self, held: Customer, rec: Record, catalog: Catalog) -> int | None:
        """When a record whose deletion was requested but which the law keeps (PIPL art. 47 ¶2) is
        to be withheld from every use but the law's: the request's due date (the bank has its 15
        days to answer it); None if the law does not keep it then, or none was requested."""
        if not rec.requested:
            return None
        due = catalog.policy.deletion_due(rec.requested)
        return due if self._withheld_by(held, rec, catalog, due) else None

    def _withheld_by(self, held: Customer, rec: Record, catalog: Catalog, due: int) -> bool:
        """The record stays past its deletion request's due date, withheld rather than deleted: the
        law's minimum keeps it then (PIPL art. 47 ¶2), or the bank refused the request by then."""
        return self._kept_by_law(held, rec, catalog, due) or _refused_by(rec, due)

    def _pin_anchors(self, held: Customer, rec: Record, catalog: Catalog) -> None:
        """An alert an earlier lifemon raised hashed its start, which `_anchor` keeps from its next
        revision on: pinned here first, before the lifecycle event at hand moves that start (an
        earlier removal, collection or request; a new clock)."""
        fired = rec.fired
        legacy = [
            t
            for t in fired
            if t.startswith(REVISED)
            and not t.endswith((ANCHOR, FIRST, IN_BATCH, KEPT))
            and t + ANCHOR not in fired
        ]
        if not legacy:
            return
        starts: dict[str, int | None] = {
            Rule.deletion_request_overdue: rec.requested,
            Rule.used_after_deletion: rec.gone,
            Rule.used_after_deadline: self._due(held, rec, catalog),
        }
        starts |= {
            f"{Rule.retention_expired}:{d.name}": start for d, start, _ in self.deadlines(held, rec, catalog)
        }
        for tag in legacy:
            if tag in starts:
                fired[tag + ANCHOR] = starts[tag] or 0

    def _date(self, ts: int) -> date:
        """The bank's calendar day of `ts`: what a compliance officer in Beijing dates it."""
        return datetime.fromtimestamp(ts / 1000, self._tz).date()

    def _day(self, ts: int) -> str:
        return self._date(ts).isoformat()

    def _last_day(self, deadline: int, counted: int | None = None) -> str:
        """The last day of a period that ends at `deadline` (24:00 of that day, `Policy.period_end`):
        the day a record is due by, not the next day's 00:00; and the day `counted` (the period's
        end before rest days moved it, Civil Code art. 203 ¶1) where they moved it: "due 2026-10-08"
        alone reads as three days' grace on 15 days from 20 Sep."""
        last = self._day(deadline - 1)
        if counted is None or counted == deadline or self._dates is None:
            return last
        day = self._date(counted - 1)
        rest = self._dates.calendar.rest_day(day.toordinal())
        fell = "on a weekend" if rest == WEEKEND else f"in {rest}"
        return f"{last}: its last day, {day}, fell {fell}, Civil Code art. 203"

    def _counted(self, start: int, rule: Period) -> int | None:
        """A retention period's end as counted, before rest days move it (`_last_day`)."""
        return self._dates.retention_end(start, rule, rest_days=False) if self._dates else None

    def _moved(self, rec: Record, catalog: Catalog) -> str:
        """A deletion request's due date where rest days moved it (`_last_day`), said after "within
        15 days"; nothing where they did not."""
        due, counted = (catalog.policy.deletion_due(rec.requested, rest) for rest in (True, False))
        return "" if due == counted else f" (due {self._last_day(due, counted)})"

    def _late(self, rec: Record, due: int, gone: tuple[int, str]) -> str:
        """How a closed alert ended: when the record, or the part the alert covers (`gone`), was
        deleted, anonymized or destroyed, and how many calendar days after its last day (a deadline
        is 24:00 of that day, so any hour of the next is 1 day late), or in time, when the deletion
        reached the monitor only after the deadline had passed."""
        at = gone[0]
        if not at:
            return f"; restored {self._day(rec.restored)} after its removal" if rec.restored else ""
        if at <= due:
            return f"; removed {self._day(at)}, in time (the deletion was reported after the deadline)"
        days = (self._date(at) - self._date(due - 1)).days
        return f"; removed {self._day(at)}, {n_of(days, 'day')} late"

    def _finding(
        self,
        rule: Rule,
        key: str,
        customer: str,
        start: int,
        end: int,
        jr_class: str,
        summary: str,
        evidence: list[str],
        actor: str,
        actor_org: str | None = None,
        revision: int = 1,
        counts: dict[str, int] | None = None,
        closed: bool = False,
        anchor: int | None = None,
        actor_kind: str | None = None,
        seen: int | None = None,
    ) -> Finding:
        """`seen`: when the breach itself was first seen, where the window starts earlier (at the
        record's store, the deadline, the relationship's end); by default the window's start."""
        spec = self.p.rules[rule]
        return Finding(
            detector=self.kind,
            rule_id=f"{self.section.rule_id}.{rule.value}",
            key=key,
            window_start=start,
            window_end=end,
            severity=spec.severity,
            revision=revision,
            closed=closed,
            summary=summary,
            jr_class=jr_class,
            actor_id=actor,  # who used or destroyed it; else the system that keeps it
            actor_org=actor_org,
            actor_kind=actor_kind,
            subject_count=1 if customer else 0,
            subject_sample=[customer] if customer else [],
            # every rule here is one record's (a probe's alert list showed "— records")
            counts={"records": 1, **(counts or {})},
            evidence_event_ids=evidence[: self.p.evidence_limit],
            event_count=len(evidence),  # the uses, or the one lifecycle event (a missed deadline: its start)
            first_seen=start if seen is None else seen,
            last_seen=end,
            title_zh=spec.title_zh,
            title_en=spec.title_en,
            regulation=spec.regulation,
            anchor=anchor,
        )


ANCHOR = "@"  # `Record.fired[f"{tag}@"]`: what the alert id of a rule (or rule:deadline) hashes
# `Record.fired[f"{tag}#"]`: the hash of the overrun's batch (`Batch`); none before lifemon kept batches
IN_BATCH = "#"
RULE_WORDS = frozenset({"title_zh", "title_en", "regulation"})  # a finding's, from its rule's spec
KEPT = "~"  # `Record.fired[f"{tag}~"]`: 1 while its batch counts it kept
GENERATION_KEY = "~g"  # the task's state's generation (`_generation`; a pseudonym never starts so)
# the rules whose alerts are revised, so an alert an earlier lifemon raised needs its anchor pinned
REVISED = (
    Rule.retention_expired,
    Rule.deletion_request_overdue,
    Rule.used_after_deletion,
    Rule.used_after_deadline,
)


def _part(rec: Record, d: Deadline) -> tuple[str, ...]:
    """The categories of the record a rule or minimum covers: its part of it."""
    return tuple(c for c in rec.categories if c in d.categories)


def _refused_by(rec: Record, due: int) -> bool:
    """The bank answered the deletion request by `due` with a refusal the law allows (seed 004
    流程描述(5): 依据国家法律法规…予以响应, in the bank's 15 days; a probe's request refused under a police preservation order stayed an open
    high alert): no execution is owed, and the record is withheld from every use but the law's."""
    return 0 < rec.refused <= due


def _anchor(rec: Record, tag: str, start: int, first: bool) -> int:
    """What the alert id hashes in place of the alert's start, which moves when an event dated
    earlier (a removal, a collection, a request) or a later clock start is reported after the alert:
    0, one alert per record and rule. An alert raised before lifemon kept anchors hashed its start
    then: kept (and the start has moved only where a twin was the old behaviour), so an upgrade opens
    no twin of an open alert."""
    return rec.fired.setdefault(f"{tag}{ANCHOR}", 0 if first else start)


_MARK = {Rule.used_after_deletion: "g", Rule.used_after_deadline: "d", Rule.used_while_withheld: "w"}
FIRST = "<"  # `Record.fired[f"{rule}<"]`: when the rule's first offending use was


def _first_use(rec: Record, rule: Rule, offending: list[list[Any]], shown: int | None) -> int:
    """When a use alert was first seen: its earliest offending use, kept, since a record keeps its
    last `evidence_limit` uses only (a probe's alert was dated by the deadline, weeks before the use).
    `shown`: what an alert raised before this was kept showed (its deadline), where its uses may be
    trimmed already: kept, not moved to a later use (a review's)."""
    start = rec.fired.get(f"{rule}{FIRST}", offending[0][0] if shown is None else shown)
    first = rec.fired[f"{rule}{FIRST}"] = min(start, offending[0][0])
    return first


def _for_another_purpose(use: list[Any], catalog: Catalog) -> bool:
    """A use stating a purpose the policy knows and the law does not oblige (purposes.yaml
    `legal_obligation`): what a withheld record may no longer serve. One stating none, or one the
    policy does not know, cannot be told from the law's (a regulatory report) and is not judged."""
    purpose = catalog.purposes.get(catalog.current("purpose", use[5]) or "") if len(use) > 5 else None
    return purpose is not None and not purpose.legal_obligation


def _count(rule: Rule, offending: list[list[Any]], fired: dict[str, int]) -> int:
    """Count the offending uses not counted yet under `rule` (the fifth item of a use marks the rules
    it counts under), so the alert counts every use, not only the `evidence_limit` kept; returns
    how many were new. A use stored before lifemon marked them counts as counted already where
    its rule has fired (its alert's revision was the number of such uses)."""
    mark, new = _MARK[rule], 0
    for u in offending:
        if len(u) < 5:
            u.append(mark if fired.get(rule) else "")
        if mark not in u[4]:
            u[4] += mark
            new += 1
    if new:
        fired[rule] = fired.get(rule, 0) + new
    return new


def _later(share: list[Any]) -> tuple[int, int]:
    """What orders two shares of one task's day: the generation of its task's state, then how many
    changes of its members it counts (`Batch.generation`, `Batch.changes`; 0 where a share from
    before them has none). A share of a task that started again without its state (lost, or a store
    the changelog could not rebuild) counts from 0, and is the later by its generation."""
    return (
        share[GENERATION] if len(share) > GENERATION else 0,
        share[CHANGES] if len(share) > CHANGES else 0,
    )


def _batch_key(gid: int) -> str:
    """The key of the batch whose id hashes its system, rule, class and due day (`_overran`)."""
    return f"{BATCH}{gid:015x}"
