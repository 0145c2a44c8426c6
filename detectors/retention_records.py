"""What the retention_overrun detector keeps of one customer's stored records: small, so 10 M
records fit a task's RocksDB store and its LRU cache holds the customers at work (docs/state.md).

One store key per customer (its pseudonym): the records tracked for it, the customer-wide clocks
(account closure, end of the business relationship) and the recent uses of its records (the
last few per record, so a lifecycle event that arrives after a use still judges it). A record is a short JSON list, never its values: ids, times, class and category ids.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from itertools import zip_longest
from typing import Annotated, Any

import msgspec

from detectors.base import Finding

# a purpose id state kept, as today's policy names it (`Catalog.current`)
Today = Callable[[str | None], str | None]


def _same(held: str | None) -> str | None:
    return held


# the stages a record leaves by, and how an alert says it
GONE_STAGES = {"delete": "deleted", "anonymize": "anonymized", "destroy": "destroyed"}
# a copy: [its latest collection or store (0: none), its removals [[ts, stage] or, for one that
# names what it removed, [ts, stage, [category ids]]]]
SINCE, REMOVALS, PART = 0, 1, 2
REMOVALS_KEPT = 8  # removals kept per copy and what they name: the earliest two, and the latest


def removed(removals: Iterable[Sequence[Any]], since: int, categories: Iterable[str] = ()) -> tuple[int, str]:
    """(when, by which stage) `removals` at or after `since` took the last of `categories`: a
    removal naming categories takes those alone (a delete of a card's phone leaves its address),
    one naming none the whole; no categories asked (what the record holds unknown): its earliest
    removal. (0, "") while one of them is held. Order-free: the removals in time order."""
    left_over = set(categories)
    # sorted on what never compares None with a tuple: a whole removal and one of a part at one instant
    # (a purge job's and the CRM's phone delete in the same second) had raised TypeError (a review's)
    parts = sorted(
        (tuple(r[:2]) + (tuple(r[PART]) if len(r) > PART else None,) for r in removals),
        key=lambda r: (r[0], r[1], r[PART] is not None, r[PART] or ()),
    )
    for r in parts:
        if r[0] < since:
            continue
        if r[PART] is None or not left_over:
            return r[0], r[1]
        left_over.difference_update(r[PART])
        if not left_over:
            return r[0], r[1]
    return 0, ""


def _frozen(item: Any) -> Any:
    return tuple(item) if isinstance(item, list) else item


def left(copies: dict[str, list[Any]], categories: Iterable[str] = ()) -> tuple[int, str]:
    """(when, by which stage) `categories` (the record's, or those a rule or a request covers) left
    every copy the record has: each copy (a system it was collected or stored on) by the removals
    since its latest store that took the last of them (`removed`), and the record when the last copy
    went; (0, "") while one is held. A removal on a system no copy is known on (a purge job that
    logs its own name, the data's system unsaid) removes from every copy stored before it.
    Order-free: the same events in any order leave the same answer."""
    categories = tuple(categories)
    stored = [c for c in copies.values() if c[SINCE]]
    anywhere = _unplaced(copies)
    if not stored:
        return removed(anywhere, 0, categories)
    last: tuple[int, str] = (0, "")
    for since, removals in stored:
        gone = removed((*removals, *anywhere), since, categories)
        if not gone[0]:
            return (0, "")
        last = max(last, gone)
    return last


def _unplaced(copies: dict[str, list[Any]]) -> list[list[Any]]:
    """The removals logged on a system no copy is known on: each removes from every copy stored before it."""
    return [r for c in copies.values() if not c[SINCE] for r in c[REMOVALS]]


def holding(copies: dict[str, list[Any]], at: int, categories: Iterable[str] = ()) -> list[str]:
    """The systems whose copy held (one of) `categories` at `at` (collected or stored by then, not
    removed since)."""
    categories = tuple(categories)
    by_then = [r for r in _unplaced(copies) if r[0] <= at]
    return sorted(
        s
        for s, (since, removals) in copies.items()
        if 0 < since <= at
        and not removed([*(r for r in removals if r[0] <= at), *by_then], since, categories)[0]
    )


class Record:
    """One tracked record: when it was first collected or stored, where (first; and each system's
    copy), what it holds, for what purpose; when it left (its last copy deleted, anonymized or
    destroyed), when its deletion was requested, when the account it is closed; and the alerts
    already raised on it (tag -> revision)."""

    __slots__ = (
        "first",
        "system",
        "jr_class",
        "categories",
        "purpose",
        "gone",
        "requested",
        "fired",
        "last",
        "first_id",
        "request_id",
        "gone_stage",
        "closed",
        "unbidden",
        "refused",
        "stored",
        "restored",
        "copies",
        "asked",
        "uncontracted",
    )

    def __init__(self, first: int, system: str, jr_class: str = "C1", purpose: str | None = None):
        self.first, self.system, self.jr_class, self.purpose = first, system, jr_class, purpose
        self.last = 0  # latest collection (a store is not one); 0: only stored
        # latest collection not for a duty the law puts on the bank (purposes.yaml `legal_obligation`:
        # due diligence goes on after an end, seed 004 流程描述(1)⑬a): what an end stops
        self.unbidden = 0
        # latest such collection not for a contract_purposes purpose: the closure's own settlement
        # (closing interest) shortly after an end is the contract's, and collects nothing new
        self.uncontracted = 0
        self.closed = 0  # latest closure of the account this record is; 0: none seen
        self.categories: list[str] = []  # category ids (classification.yaml), sorted
        self.gone = 0  # earliest delete / anonymize / destroy time; 0: still held
        self.gone_stage = ""  # that event's stage
        self.requested = 0  # earliest deletion request time; 0: none
        self.refused = 0  # earliest refusal of a deletion request (the law keeps it); 0: none
        self.stored = 0  # latest store; 0: none
        self.restored = 0  # latest store after its removal (a backup restored: the data is back); 0: none
        # system -> [latest collection or store there, its removals there]: the record is gone when
        # every copy is (`left`); a deletion on the CRM leaves the warehouse's copy held
        self.copies: dict[str, list[Any]] = {}
        # the category ids its deletion requests name; none: the whole record (what it holds then)
        self.asked: list[str] = []
        self.fired: dict[str, int] = {}
        # the events a deadline alert points the analyst to: the first collection, the earliest request
        self.first_id, self.request_id = "", ""

    def to_json(self) -> list[Any]:
        return [
            self.first,
            self.system,
            self.jr_class,
            self.categories,
            self.purpose,
            self.gone,
            self.requested,
            self.fired,
            self.last,
            self.first_id,
            self.request_id,
            self.gone_stage,
            self.closed,
            self.unbidden,
            self.refused,
            self.stored,
            self.restored,
            # most records are one copy, on the system they were first seen on: said by the fields
            # above (`one_copy`), not again (33 bytes a record, 330 MB at 10 M records)
            0 if self.copies == self.one_copy() else self.copies,
            # a request naming what it asks deleted, rare: said only then; then, when it differs
            # from the latest collection, the latest not for a contract (`uncontracted`)
            *(
                [self.asked, self.uncontracted]
                if self.uncontracted != self.unbidden
                else [self.asked]
                if self.asked
                else []
            ),
        ]

    @classmethod
    def from_json(cls, row: list[Any]) -> Record:
        rec = cls.__new__(cls)
        (rec.first, rec.system, rec.jr_class, rec.categories, rec.purpose) = row[:5]
        (rec.gone, rec.requested, rec.fired) = row[5:8]
        rec.last = row[8] if len(row) > 8 else 0  # stored before lifemon tracked collections after an end
        rec.first_id, rec.request_id = row[9:11] if len(row) > 10 else ("", "")  # stored before evidence ids
        rec.gone_stage = row[11] if len(row) > 11 else ""  # stored before alerts named the stage
        rec.closed = row[12] if len(row) > 12 else 0  # stored when a closure counted for the customer
        rec.unbidden = row[13] if len(row) > 13 else rec.last  # stored when every collection counted
        rec.refused = row[14] if len(row) > 14 else 0  # stored before a request could be refused
        # stored before a restore brought a record back
        rec.stored, rec.restored = row[15:17] if len(row) > 16 else (0, 0)
        # stored when one removal anywhere removed the record: one copy, on its first system
        rec.copies = row[17] if len(row) > 17 and row[17] != 0 else rec.one_copy()
        rec.asked = row[18] if len(row) > 18 else []  # a request named nothing, or none was made
        # stored before contracts' collections were told apart, or the latest was none: as unbidden
        rec.uncontracted = row[19] if len(row) > 19 else rec.unbidden
        return rec

    def one_copy(self) -> dict[str, list[Any]]:
        """What a record kept before copies were tracked held: one copy, since its latest collection
        or store, removed as it was."""
        since = max(self.first, self.last, self.stored)
        return {self.system: [since, [[self.gone, self.gone_stage or "delete"]] if self.gone else []]}

    def log(self, stage: str, system: str, ts: int, categories: Sequence[str] = ()) -> None:
        """A collection, store or removal on `system`: its copy's part (`left`). A removal naming
        `categories` (category ids) removes those alone; a collection or store holds the whole
        record again on its system."""
        copy = self.copies.setdefault(system, [0, []])
        if stage in GONE_STAGES:
            removal = [ts, stage, sorted(categories)] if categories else [ts, stage]
            if removal not in copy[REMOVALS]:
                copy[REMOVALS].append(removal)
        else:
            copy[SINCE] = max(copy[SINCE], ts)
        # a removal before the copy's latest store never counts again; of a removal job that runs
        # every night, the first and the latest few (a restore between them makes the next one
        # count), of each set of categories removed (a phone's deletion kept beside the address's)
        by_part: dict[tuple[str, ...] | None, list[list[Any]]] = {}
        for r in sorted(r for r in copy[REMOVALS] if r[0] >= copy[SINCE]):
            by_part.setdefault(tuple(r[PART]) if len(r) > PART else None, []).append(r)
        copy[REMOVALS] = sorted(
            r
            for rs in by_part.values()
            for r in (rs if len(rs) <= REMOVALS_KEPT else rs[:2] + rs[2 - REMOVALS_KEPT :])
        )

    def systems_as(self, today: Today) -> None:
        """Its copies under the ids today's policy names their systems by (`Catalog.current`): a copy
        kept under a system's earlier id and one logged under its new id are one copy, or a
        collection logged under the new id after a rename left the old copy held for ever."""
        for old in [s for s in self.copies if today(s) != s]:
            since, removals = self.copies.pop(old)
            copy = self.copies.setdefault(today(old) or old, [0, []])
            copy[SINCE] = max(copy[SINCE], since)
            copy[REMOVALS] = sorted(
                {tuple(map(_frozen, r)): r for r in (*copy[REMOVALS], *removals)}.values()
            )
        self.system = today(self.system) or self.system

    def part_left(self, categories: Iterable[str]) -> tuple[int, str]:
        """(when, by which stage) the categories of `categories` the record holds left every copy
        (`left`): a rule's or a request's part of it; (0, "") while one is held."""
        return left(self.copies, [c for c in categories if c in self.categories] or self.categories)

    def removed_any(self) -> bool:
        """Some removal logged on one of its copies, of all of it or of a part."""
        return any(c[REMOVALS] for c in self.copies.values())

    def request_part(self) -> list[str]:
        """What its deletion requests ask deleted: the categories they name that it holds, else
        everything it holds (a request naming none, or naming none it holds)."""
        return [c for c in self.asked if c in self.categories] or self.categories

    def holders(self, at: int | None = None, categories: Sequence[str] | None = None) -> list[str]:
        """The systems an alert names: those holding (`categories` of) a copy at `at`; else those
        holding it now (a request overdue, then answered, the record restored to one system later:
        that one); else every system it was kept on; else the one it was first seen on."""
        part = self.categories if categories is None else categories
        now = [
            s
            for s, (since, removals) in sorted(self.copies.items())
            if since and not removed(removals, since, part)[0]
        ]
        return (
            (holding(self.copies, at, part) if at is not None else [])
            or now
            or sorted(s for s, c in self.copies.items() if c[SINCE])
            or [self.system]
        )

    def where(self, at: int | None = None, categories: Sequence[str] | None = None) -> str:
        return ", ".join(self.holders(at, categories))

    def gone_by(self, ts: int) -> bool:
        """Deleted, anonymized or destroyed at or before `ts`."""
        return 0 < self.gone <= ts

    def is_account(self, categories: frozenset[str], purposes: frozenset[str], today: Today = _same) -> bool:
        """One of the customer's accounts: it holds one of `categories` (those a rule counting from
        `account_closed` covers) and was collected for one of `purposes` (`account_purposes`: an
        account opening), its purpose read as today's policy names it (`today`); a KYC file's
        account number (due diligence), a payment's, a loan's or an adviser's is a copy, which no
        closure names."""
        return today(self.purpose) in purposes and not categories.isdisjoint(self.categories)


class Customer:
    """One customer's tracked records, its retention clocks and the recent uses of its records."""

    __slots__ = ("records", "closures", "ended", "closed_out", "uses", "resumed", "stale")

    def __init__(self) -> None:
        self.records: dict[str, Record] = {}
        # account closures that name no record tracked here, by the record id they name: they count
        # for every record without a closure of its own that is no account itself (a KYC file's
        # account number: the log does not say which account's data it held), never for an account,
        # which the log would have named ("": an earlier lifemon's customer-wide closure)
        self.closures: dict[str, int] = {}
        self.ended = 0  # latest end of the business relationship logged; 0: none seen
        # when the last of the customer's accounts known here closed, every account opened by then
        # closed by then (`accounts_closed`, kept by the detector as its records change); 0: one open
        self.closed_out = 0
        self.resumed = (
            0  # latest collection that starts a relationship (retention.yaml relationship_purposes)
        )
        # record id -> its latest uses [ts, event_id, stream, actor or recipient, the rules it was
        # counted under ('g' deletion, 'd' deadline, 'w' withheld; absent in state of an earlier
        # lifemon), the purpose it states ('' none; absent before lifemon kept it)], by time
        self.uses: dict[str, list[list[Any]]] = {}
        # records whose uses a timer must judge (again): a use or a lifecycle event came since
        self.stale: set[str] = set()

    def to_json(self) -> dict[str, Any]:
        return {
            "r": {rid: rec.to_json() for rid, rec in self.records.items()},
            "c": self.closures,
            "e": self.ended,
            "o": self.closed_out,
            "u": self.uses,
            "s": self.resumed,
            "j": sorted(self.stale),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Customer:
        held = cls()
        held.records = {rid: Record.from_json(row) for rid, row in d["r"].items()}
        held.ended, held.uses = d["e"], d["u"]
        closed = d["c"]  # an int before closures counted per account
        held.closures = closed if isinstance(closed, dict) else {"": closed} if closed else {}
        held.resumed = d.get("s", 0)
        held.closed_out = d.get("o", 0)  # stored before a last closure ended the relationship
        held.stale = set(d.get("j", ()))
        return held

    def track(self, rid: str, rec: Record) -> Record:
        """A record first seen: a closure that named it before it was tracked is its own."""
        self.records[rid] = rec
        rec.closed = max(rec.closed, self.closures.pop(rid, 0))
        return rec

    def close_account(self, rid: str, ts: int) -> None:
        """An account closure: the record it names, when tracked, else every record without its own."""
        rec = self.records.get(rid)
        if rec is not None:
            rec.closed = max(rec.closed, ts)
        else:
            self.closures[rid] = max(self.closures.get(rid, 0), ts)

    @property
    def end(self) -> int:
        """When the business relationship ended: its end logged, or the closure of the customer's
        last account (`closed_out`), whichever is later (a core banking that logs only the closure
        of a customer's only account: a probe's KYC file then had no clock, its lawful destruction
        ten years on was "before the minimum", and collection after the closure went unseen)."""
        return max(self.ended, self.closed_out)

    def accounts_closed(
        self, categories: frozenset[str], purposes: frozenset[str], today: Today = _same
    ) -> int:
        """When the customer's last account known here closed, every account opened by then closed by
        then and none reopened since its closure; 0 while one is open (or none is known). An account
        is a record `Record.is_account` says is one. A closure naming no
        record tracked here says not which account closed, and ends nothing. Order-free: computed
        from the records as they stand."""
        accounts = [r for r in self.records.values() if r.is_account(categories, purposes, today)]
        last = max((r.closed for r in accounts), default=0)
        if last and all(
            r.closed > 0 and not r.closed < r.unbidden <= last for r in accounts if r.first <= last
        ):
            return last
        return 0

    def clock(self, after: str, rec: Record, account: bool = False) -> int | None:
        """When a rule counting from `after` started for `rec` (never before the record existed; None:
        not yet): a closure of the account the record is (the AML Law counts from the account's
        closure, and a customer closing one of several accounts keeps the others), else, for a
        record that is no `account` itself, one that names no record; the business relationship's
        end, unless it began again since. An account with no closure of its own is open: the log
        named the account that closed, and not this one (a probe's card closure, keyed by the card
        system's own id, started the clock of the customer's current account, and each teller read
        of it ten years on was a use past its deadline)."""
        if after == "collect":
            return rec.first
        if after == "account_closed":
            # an account collected again after its own closure was reopened: its clock waits for the
            # next closure (a probe's reactivated account expired ten years from the old one); a
            # collection for the law's duty (due diligence on a closed account) reopens nothing
            if rec.closed:
                stage = rec.closed if rec.closed > rec.unbidden else 0
            else:  # an account not named by a closure is open: only another record takes an unnamed one
                stage = 0 if account else max(self.closures.values(), default=0)
            # no closure logged, the relationship ended: its last product closed, this account too (a
            # review's KYC account record, ended eleven years before, was both overdue and too early)
            stage = stage or (self.end if self.resumed <= self.end else 0)
        else:
            # a relationship begun again since it ended runs on (a probe's returning customer's KYC
            # record expired ten years from the first relationship's end, and its deletion then, which
            # the AML Law forbids while the relationship lasts, was taken for a late one)
            stage = self.end if self.resumed <= self.end else 0
        return max(stage, rec.first) if stage else None

    def ongoing(self, at: int) -> bool:
        """The business relationship lasted at `at`: not ended by then, or begun again since."""
        end = self.end
        return not 0 < end <= at or end < self.resumed <= at

    def collected_after_end(self, rec: Record, grace_ms: int = 0) -> int:
        """When it was collected after the business relationship ended, for no duty of the law, and
        not for a relationship begun again since (a returning customer's account opening, then what
        follows it); 0: it was not. A collection for a contract within `grace_ms` of the end is the
        closure's settlement, not one after it."""
        end = self.end
        latest = rec.unbidden if rec.unbidden > end + grace_ms else rec.uncontracted
        return latest if 0 < end < latest and not end < self.resumed <= latest else 0


BATCH = "~b:"  # + the batch's hash: a rolled-up overrun's store key (a pseudonym never starts so)
# `Batch`'s slots as stored and handed to the stage, typed: a share read from the stage's topic is
# checked against them at the door (`Partial`), not when the stage settles the day
BATCH_FIELDS: tuple[tuple[Any, ...], ...] = (  # (slot, type[, default: a slot added later])
    ("system", str), ("rule", str), ("jr_class", str), ("deadline", int), ("partition", int), ("start", int),
    ("records", int), ("kept", int), ("customers", int), ("categories", list[str]), ("rids", list[str]),
    ("subjects", list[str]), ("evidence", list[str]), ("alone", list[list[str]]), ("rolled", int),
    ("revision", int), ("changed", int), ("removed", int), ("staged", int), ("changes", int, 0),
    ("generation", int, 0),
)  # fmt: skip
CHANGES = [name for name, *_ in BATCH_FIELDS].index("changes")  # its place in a share's list
GENERATION = [name for name, *_ in BATCH_FIELDS].index("generation")


class Batch:
    """The `retention_expired` overruns of one system's records under one rule and class, due on one
    bank day: the alert a yearly destruction job's backlog is, in place of one per record (probe_v2
    F6). Counts and bounded samples only, never the records: a few hundred bytes whatever their
    number; each member record carries its batch's hash (`Record.fired`)."""

    __slots__ = tuple(name for name, *_ in BATCH_FIELDS)

    def __init__(
        self, system: str, rule: str, jr_class: str, deadline: int, partition: int, generation: int = 0
    ):
        self.system, self.rule, self.jr_class, self.deadline = system, rule, jr_class, deadline
        # its task's: the customers of one system's day are spread over the partitions of the input
        # keyed by customer, each task holds its share (the stage sums them: `Total`); an alert its
        # task raised itself, before the stage (`rolled`), names it
        self.partition = partition
        self.start = 0  # the earliest clock start among its records: kept longest
        self.records = self.kept = self.customers = 0  # members; those still kept; their customers
        self.categories: list[str] = []
        self.rids: list[str] = []  # samples, as the door keeps the ids: the least `limit` members'
        self.subjects: list[str] = []
        self.evidence: list[str] = []  # each sampled record's first collection ('' none), as `rids`
        # the members raised alone, while fewer than the threshold: [customer, record id]; emptied
        # when the threshold is reached, their alerts closed into the batch's
        self.alone: list[list[str]] = []
        # 1: its task raised the batch's alert itself (a lifemon before the stage), revised as then
        self.rolled = 0
        # the batch's alert's revisions said, and whether it changed since the last (said once a
        # timer pass: a day's thousands of members joining or leaving it are one revision)
        self.revision = self.changed = 0
        self.removed = 0  # the latest removal of a member
        # 1: its share goes to the stage; 0 (kept before the stage): its task says its alerts as then
        self.staged = 1
        # its members' changes counted (joins, removals, restorations): which of two of its partials
        # is the later, whatever passes a run grouped them in (`RetentionOverrunDetector.on_partials`)
        self.changes = 0
        # its task's state's (`RetentionOverrunDetector._generation`): a share of a task that started
        # again without its state counts its changes from 0, and is the later all the same
        self.generation = generation

    def join(self, customer: str, rid: str, rec: Any, start: int, new_customer: bool, limit: int) -> None:
        self.records += 1  # and kept, as `RetentionOverrunDetector._recount` finds it
        self.customers += new_customer
        self.start = min(self.start or start, start)
        if not set(rec.categories) <= set(self.categories):
            self.categories = sorted({*self.categories, *rec.categories})
        # the least `limit` record ids and pseudonyms, not the first to join: the same samples in
        # whatever order the members come (two instances named other records than one did)
        if len(self.rids) < limit or rid < max(self.rids):
            sampled = sorted([*zip_longest(self.rids, self.evidence, fillvalue=""), (rid, rec.first_id)])
            self.rids, self.evidence = map(list, zip(*sampled[:limit], strict=True))
        if new_customer and customer and customer not in self.subjects:
            self.subjects = sorted([*self.subjects, customer])[:limit]

    @classmethod
    def merged(cls, shares: Sequence[Batch], limit: int) -> Batch:
        """One system's day from its tasks' shares: counts summed (a customer's records are all in one
        task's), the samples the least `limit` of theirs, as one task holding them all keeps them."""
        first = shares[0]
        whole = cls(first.system, first.rule, first.jr_class, first.deadline, first.partition)
        whole.records, whole.kept, whole.customers = (
            sum(s.records for s in shares),
            sum(s.kept for s in shares),
            sum(s.customers for s in shares),
        )
        whole.start = min((s.start for s in shares if s.start), default=0)
        whole.removed = max(s.removed for s in shares)
        whole.categories = sorted({c for s in shares for c in s.categories})
        sampled = sorted({pair for s in shares for pair in zip(s.rids, s.evidence, strict=True)})[:limit]
        whole.rids, whole.evidence = [r for r, _ in sampled], [e for _, e in sampled]
        whole.subjects = sorted({c for s in shares for c in s.subjects})[:limit]
        return whole

    def to_json(self) -> dict[str, Any]:
        return {"batch": [getattr(self, s) for s in self.__slots__]}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Batch:
        batch = cls.__new__(cls)
        # stored before the stage, before its changes were counted, or before generations
        batch.staged = batch.changes = batch.generation = 0
        for slot, value in zip(cls.__slots__, d["batch"], strict=False):
            setattr(batch, slot, value)
        return batch


TOTAL = "~t:"  # + the batch's hash: the stage's sum of a system's day (a pseudonym never starts so)


class Total:
    """What the stage holds of one system's day (`RetentionOverrunDetector._settle`): each task's
    latest share (`Batch`, counts and samples), and the alerts of the members of shares of fewer
    than the threshold while the day has not reached it (alert id -> [its own alert, the summary
    of it closed into the day's, the revision said]), never the members of a day rolled up."""

    __slots__ = ("parts", "members", "decided", "rolled", "revision", "changed")

    def __init__(self) -> None:
        self.parts: dict[str, list[Any]] = {}  # the task's partition -> its share, as `Batch.to_json`
        self.members: dict[str, list[Any]] = {}
        self.decided = 0  # 1: every task passed the due time, and the day was said
        self.rolled = 0  # 1: the day reached the threshold: one alert
        self.revision = 0  # the day's alert's revisions said
        self.changed = 0  # 1: a share came since the day was last said

    def to_json(self) -> dict[str, Any]:
        return {"total": [getattr(self, s) for s in self.__slots__]}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Total:
        total = cls.__new__(cls)
        for slot, value in zip(cls.__slots__, d["total"], strict=True):
            setattr(total, slot, value)
        return total


Share = msgspec.defstruct("Share", BATCH_FIELDS, array_like=True)  # `Batch.to_json`'s list, typed


class Partial(msgspec.Struct, forbid_unknown_fields=True):
    """A task's share of one system's day as the stage's topic carries it
    (`RetentionOverrunDetector.partials`). Typed, so that a record that is not one (another writer, a
    corrupted copy) is a dead letter when it is read, not a stage that dies settling the day at
    every restart: the share is stored and judged only at the due time."""

    key: str
    partition: Annotated[int, msgspec.Meta(ge=0)]
    due: Annotated[int, msgspec.Meta(ge=0)]  # a timer's deadline: epoch milliseconds
    batch: Share  # type: ignore[valid-type]
    members: list[tuple[str, dict[str, Any], str]]  # [alert id, its alert but the rule's words, summary]

    def __post_init__(self) -> None:
        for _, alone, _ in self.members:
            msgspec.convert(alone, Finding)  # what `_settle` says of it, checked now
