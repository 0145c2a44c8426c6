"""Fast lookups derived once from a validated Policy: the class of a set of fields (with the
combination rule of JR/T 0171 §4.2), categories, roles. Detectors call these per event."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Sequence
from functools import cached_property, lru_cache
from itertools import repeat
from typing import Any

from policy.contracts import RecipientBook
from policy.model import (
    CLASS_RANK,
    RANK_CLASS,
    Counter,
    JrClass,
    OwnBook,
    PeakDays,
    Policy,
    ServiceAccount,
    key_form,
    method_key,
    method_terms,
    spelling,
)
from policy.sdk_declarations import SdkDeclarations
from schemas.models import READS, TAKES_OUT, Action, RecipientType

# a column name's words: between separators, and where camelCase turns (`cardCvv2`)
_WORDS = re.compile(r"[\s._\-]+|(?<=[a-z])(?=[A-Z])")
# words after a column's field that say nothing more of it (`cvv2_code`, `pin_block_value`)
_SAYS_NO_MORE = frozenset({"code", "value", "val", "data", "no", "num"})
# the words a card table's column may start with, before the C3 field it holds (`t_card_pin_block`,
# `bank_card_cvv2`)
_CARD_TABLE = frozenset(
    {"t", "tb", "tbl", "tab", "card", "cards", "bank", "bankcard", "cc", "dc", "credit", "debit"}
)
UNKNOWN_FIELD_CLASS = JrClass.C1  # JR/T 0171 §4.2 C1 c): PFI not listed under C2/C3 is C1
# what a column of a field list's SQL text that no field stands for becomes in the list, its name
# after the mark (streams/sources/canonical.py `StatementFields`): the part of the take-out it
# names no data of, judged as a list naming none is (`Catalog.access_class`)
UNREAD_COLUMN = "sql:"
# the unknown columns an alert names, at most: a statement may select hundreds; and only a name of
# a column's form (a producer may write the mark itself before any value)
_COLUMNS_SAID = 5
_COLUMN_NAME = re.compile(r"[^\W\d][\w$]{0,63}")


def _outside(account: ServiceAccount, ev: Any) -> list[str]:
    """The parts of a service account's declaration an access is outside: its systems, its actions,
    its records a run (`max_records`, one access being one run)."""
    return [
        part
        for part, off in (
            ("system", ev.system not in account.systems),
            ("action", ev.action not in account.actions),
            ("max_records", max(ev.row_count, len(ev.subject_ids)) > account.max_records),
        )
        if off
    ]


def _wildcard(name: str) -> bool:
    """Every column of a table: `*`, `t.*`."""
    name = name.strip()
    return name == "*" or name.endswith(".*")


# The purpose a log that states none is asked with where a post's own work is weighed for art. 5
# (bulk_query): any purpose of the post's block. Most core-banking and card audit logs have no purpose
# column, and a probe's teller serving 60 counter customers so was an art. 5 alert.
UNSTATED = "\x00unstated"


class Catalog:
    def __init__(self, policy: Policy):
        self.policy = policy
        fields = policy.classification.fields
        self.field_class = {fid: f.jr_class for fid, f in fields.items()}
        self.field_category = {fid: f.category for fid, f in fields.items()}
        self.auth_helpers = frozenset(fid for fid, f in fields.items() if f.auth_helper)
        # 支付敏感信息 (seed 002 §四(3)); a category named where a field belongs is one if any of its
        # fields is, as it stands for its most sensitive field (below)
        payment = {fid for fid, f in fields.items() if f.payment_sensitive}
        self.payment_sensitive = frozenset(payment | {fields[fid].category for fid in payment})
        sensitive = {c for c, cat in policy.classification.categories.items() if cat.sensitive}
        # a field of a sensitive category, or the category named where a field belongs
        self.sensitive = frozenset(fid for fid, f in fields.items() if f.category in sensitive) | sensitive
        # a category id where a field id belongs (a transfer log naming what it sent by category,
        # `authentication`) stands for its most sensitive field: never read as an unknown C1 field
        for cat in policy.classification.categories:
            members = [f.jr_class for f in fields.values() if f.category == cat]
            if members and cat not in self.field_class:
                self.field_class[cat] = max(members, key=CLASS_RANK.__getitem__)
                self.field_category[cat] = cat
        # what addresses a message (classification.yaml `addresses`); a category named where a field
        # belongs only if every field of it does, as it may stand for any of them
        addressing = {fid for fid, f in fields.items() if f.addresses}
        of_category: dict[str, set[str]] = {}
        for fid, f in fields.items():
            of_category.setdefault(f.category, set()).add(fid)
        self.addressing = frozenset(
            addressing | {c for c, ids in of_category.items() if c not in fields and ids <= addressing}
        )
        self.combinations = [
            (ids, c.jr_class) for c in policy.classification.combinations for ids in c.sets()
        ]
        # a field by its id in another form, its `zh` or another of its words (`also`), before the SDK
        # vocabulary's: the words a log writes for the data it read (sdks.yaml's 短信内容 is an SDK
        # field, and an access log's was an unknown C1 field, not the catalog's communication_text).
        # No word names two fields (Classification._one_field_a_word)
        self._field_words = {
            key_form(word): fid for fid, f in fields.items() for word in (fid, f.zh, *f.also)
        }
        # a category a log names by its name where a field belongs (鉴别信息, 借贷信息: a probe's
        # other bank's 鉴别信息 stored by the acquiring system raised nothing)
        self._category_names = {
            key_form(name): cid
            for cid, cat in policy.classification.categories.items()
            for name in (cat.zh, cat.en)
        }
        # what an approval's scope names, as its form writes it (`Identity`, `c2`, 征信信息)
        self._scope_ids = {spelling(c.value): c.value for c in JrClass} | {
            spelling(name): cid
            for cid, cat in policy.classification.categories.items()
            for name in (cid, cat.zh, cat.en)
        }
        self.roles = policy.organisation.roles
        # what each field was collected for (policy/purposes.yaml): a use for another purpose needs fresh consent
        self.collected_for = {fid: frozenset(ps) for fid, ps in policy.purposes.collected_for.items()}
        # a log naming a category (`location`) for its data: what its fields were collected for (a
        # review's `location` read for credit review was judged by no purpose at all)
        for cat in policy.classification.categories:
            purposes = [
                self.collected_for[f] for f, c in self.field_category.items() if c == cat and f != cat
            ]
            if cat not in self.collected_for and purposes:
                self.collected_for[cat] = frozenset().union(*purposes)
        self.purposes = policy.purposes.purposes
        # the purposes the bank contacts customers for (purposes.yaml `channels`: marketing)
        self.contact_purposes = frozenset(pid for pid, p in self.purposes.items() if p.channels)
        # fields read only for a purpose they were collected for itself (purposes.yaml
        # `own_purpose_only`): no `also_uses` reaches them
        own = set(policy.purposes.own_purpose_only)
        self._own_purpose_only = frozenset(f for f, c in self.field_category.items() if own & {f, c})
        # purpose -> the collection purposes a use for it may read; a legal obligation reads any
        self._reads_for = {
            pid: None if p.legal_obligation else frozenset({pid, *p.also_uses})
            for pid, p in self.purposes.items()
        }
        self.permission_sets = policy.organisation.permissions
        # the roles whose permission set serves the counter (organisation.yaml `counter`), and the
        # purposes it serves: an access for none of them is no counter work, whoever reads
        counters = self._holders("counter")
        self.counter_roles = frozenset(counters)
        self.counter_purposes = frozenset(p for c in counters.values() for p in c.purposes)
        # likewise the roles with a book of their own (`own_book`), and their purposes: with the
        # counter's, what bulk_query asks before it looks further into a batch (its duty reads)
        books = self._holders("own_book")
        self.duty_roles = self.counter_roles | frozenset(books)
        # with None: a read whose log states no purpose is weighed as a post's work (bulk_query, `UNSTATED`)
        self.duty_purposes = (
            self.counter_purposes | frozenset(p for b in books.values() for p in b.purposes) | {None}
        )
        # system -> actions it never allows (organisation.yaml `systems`)
        self._never_on = {sid: frozenset(r.never) for sid, r in policy.organisation.systems.items()}
        # system -> recipient types its data never goes to (`never_provide_to`)
        self._never_to = {
            sid: frozenset(r.never_provide_to) for sid, r in policy.organisation.systems.items()
        }
        # the systems whose customers a sub-branch manages (`manages_customers_by_org`)
        self._managed_by_org = frozenset(
            sid for sid, r in policy.organisation.systems.items() if r.manages_customers_by_org
        )
        # every system id the policy names (the engine reads a log's `CRM` as the policy's crm): the
        # systems records are kept on, as the policy knows them; a removal logged elsewhere is a
        # purge job's own name, of every copy (deleted_record_use `Kept.anew`)
        self.systems = frozenset(
            [
                *(s for p in self.permission_sets.values() for s in p.systems),
                *policy.organisation.systems,
                *policy.retention.client_systems,
            ]
        )
        self.approval_exclusions = {
            k: frozenset(v) for k, v in policy.organisation.approval_exclusions.items()
        }
        self._grants: dict[tuple[str, str, tuple[str, ...]], bool] = {}
        # at_counter's and own_book's answers: (permission set, its counter or book) for each
        self._covered: dict[tuple[object, ...], tuple[tuple[str, Any], ...]] = {}
        # declarations by SDK and app version, PoliCheck labels
        self.sdk = SdkDeclarations(policy.sdks, fields, policy.vocabulary, policy.first_party_hosts)
        # SDK telemetry names SDK field ids (policy/sdks.yaml) or catalog ids, some PFI with a class
        # keyed as `coverage` looks an observed name up (`spelling`: telemetry writes IMEI for imei)
        self.sdk_field_class = {spelling(fid): f.jr_class for fid, f in self.sdk.fields.items()}
        # the rank of each SDK field's class: a field without one, or unknown, ranks as C1, the lowest
        self._sdk_rank = {fid: CLASS_RANK[c] for fid, c in self.sdk_field_class.items() if c is not None}
        self._classify = lru_cache(maxsize=65536)(self._classify_uncached)
        self._c3_column = lru_cache(maxsize=4096)(self._c3_column_uncached)
        # a collection's method that brings a record back (retention.yaml `restoring_methods`)
        self.restoring = method_terms(policy.retention.restoring_methods or ["\x00"])
        self._profiles: dict[tuple[str, ...], tuple[JrClass, tuple[str, ...]]] = {}
        # a take-out's field list that names no data: judged at this class (`access_class`)
        self.unnamed_class = policy.classification.unnamed_takeout_class
        self._taken: dict[tuple[str, ...], tuple[JrClass, str | None]] = {}
        # ... and the categories art. 5's counts take its records as (`unnamed_takeout_categories`)
        self.unnamed_categories = tuple(sorted(policy.classification.unnamed_takeout_categories))
        # the class ids a grant or an approval covers such a take-out with (`unnamed_granted`)
        self._unnamed_classes = frozenset(
            c.value for c in JrClass if CLASS_RANK[c] >= CLASS_RANK[self.unnamed_class]
        )
        # sources.yaml's service accounts (`ServiceAccount`): batch jobs' and applications' accounts
        self.service_accounts = policy.service_accounts
        # permission set -> the peak days that raise its day measure (organisation.yaml `peak_days`)
        self._peaks: dict[str, list[tuple[str, PeakDays]]] = {}
        for name, peak in policy.organisation.peak_days.items():
            for pid in peak.customers_per_day:
                self._peaks.setdefault(pid, []).append((name, peak))
        self._day_measures: dict[tuple[str, int], tuple[int, str]] = {}

    def classify(self, field_ids: Iterable[str]) -> JrClass:
        """Highest class among the fields and the combinations they complete."""
        return self._classify(frozenset(field_ids))

    def _classify_uncached(self, fids: frozenset[str]) -> JrClass:
        best = UNKNOWN_FIELD_CLASS
        for fid in fids:
            cls = self.field_class.get(fid, UNKNOWN_FIELD_CLASS)
            if CLASS_RANK[cls] > CLASS_RANK[best]:
                best = cls
        for combo, cls in self.combinations:
            if CLASS_RANK[cls] > CLASS_RANK[best] and combo <= fids:
                best = cls
        return best

    def profile(self, field_ids: Sequence[str]) -> tuple[JrClass, tuple[str, ...]]:
        """(class, sorted categories) of a field list; memoized, since events repeat a few field sets."""
        key = tuple(field_ids)
        found = self._profiles.get(key)
        if found is None:
            found = (self.classify(key), tuple(sorted(self.categories(key))))
            if len(self._profiles) < 100_000:
                self._profiles[key] = found
        return found

    def access_class(self, field_ids: Sequence[str], action: str) -> tuple[JrClass, str | None]:
        """The class an access's data is judged at and, where a take-out (export, download, print)
        names no data the catalog knows (none listed, a wildcard, or only words it does not know: a
        SQL text), what its alert says of that: judged at `unnamed_takeout_class`
        (classification.yaml) where that is higher. A probe's 3 000 customers' names, ID numbers
        and mobiles exported as `*` were C1. The words are never said: a field list may hold a
        value typed in the wrong place. Memoized: take-outs repeat a few field lists."""
        if action not in TAKES_OUT:
            return self.classify(field_ids), None
        key = tuple(field_ids)
        found = self._taken.get(key)
        if found is None:
            cls, how = self.classify(key), self._unnamed(key)
            if how is None or CLASS_RANK[self.unnamed_class] <= CLASS_RANK[cls]:
                found = (cls, None)
            else:
                found = (
                    self.unnamed_class,
                    f"fields not named ({how}): judged as {self.unnamed_class.value}",
                )
            if len(self._taken) < 100_000:
                self._taken[key] = found
        return found

    def unnamed_granted(self, ids: Collection[str], fields: Collection[str] = ()) -> bool:
        """A grant's or an approval's classes and categories (`fields`: the fields it names) cover a
        take-out naming no data, taken as what it is judged and counted as: `unnamed_takeout_class`
        (or a higher class), or every one of `unnamed_takeout_categories`; or it names `*`. An
        approval could cover no `*` export, and the counter's print grant no statement whose print
        log lists no fields (probe_u3: a medium per teller per day)."""
        return (
            not self._unnamed_classes.isdisjoint(ids)
            or all(c in ids for c in self.unnamed_categories)
            or any(map(_wildcard, fields))
        )

    def unread_part(self, field_ids: Sequence[str]) -> list[str] | None:
        """The fields a list names beside a part naming no data (a `*`, a statement's column no
        field stands for: `UNREAD_COLUMN`), or None when it holds no such part."""
        unread = [f for f in field_ids if _wildcard(f) or f.startswith(UNREAD_COLUMN)]
        return [f for f in field_ids if f not in unread] if unread else None

    def names_no_data(self, field_ids: Sequence[str]) -> bool:
        """The field list names no data the catalog knows (`access_class`)."""
        return self._unnamed(field_ids) is not None

    def scheduled(self, ev: Any) -> ServiceAccount | None:
        """The declared service account whose scheduled run the access is (sources.yaml
        `actors.service_accounts`): a take-out on one of its systems, by one of its actions, of at
        most its `max_records` records, of no C3 data (seed 004 流程描述(4)⑤ asks an approval of each
        C3 use). None for anything else: it is judged as any account's."""
        account = self.service_accounts.get(ev.actor_id) if self.service_accounts else None
        if (
            account is None
            or _outside(account, ev)
            or self.access_class(ev.fields, ev.action)[0] is JrClass.C3
        ):
            return None
        return account

    def outside_declaration(self, ev: Any) -> tuple[ServiceAccount, list[str]] | None:
        """The declared service account whose declaration the access broke, and which parts of it
        (`system`, `action`, `max_records`): a job declared (its `systems`; an account declared with
        none, an application's or an SFTP login's, declares nothing to break). None inside it, or for
        any other account: a stolen job's password used for an export of core banking was judged
        as the job's own."""
        account = self.service_accounts.get(ev.actor_id) if self.service_accounts else None
        broken = _outside(account, ev) if account is not None and account.systems else []
        return (account, broken) if account is not None and broken else None

    def _unnamed(self, field_ids: Sequence[str]) -> str | None:
        """How a field list names no data the catalog knows, or None when it names some. A `*`, or
        a statement's column no field stands for (`UNREAD_COLUMN`), is a part naming none beside
        the fields named: the list is judged at the higher of the two (`access_class`)."""
        if not field_ids:
            return "none listed"
        parts = ["`*`"] if any(map(_wildcard, field_ids)) else []
        unread = [f[len(UNREAD_COLUMN) :] for f in field_ids if f.startswith(UNREAD_COLUMN)]
        if unread:
            said = [c for c in unread if _COLUMN_NAME.fullmatch(c)][:_COLUMNS_SAID]
            more = len(unread) - len(said)
            if said:
                named = ", ".join(said) + (f" and {more} more" if more else "")
                parts.append(f"{'column' if len(unread) == 1 else 'columns'} {named} not recognised")
            else:
                parts.append(f"{more} {'column' if more == 1 else 'columns'} not recognised")
        if parts:
            return ", ".join(parts)
        if any(f in self.field_class for f in field_ids):
            return None
        n = len(set(field_ids))
        return f"{n} {'field' if n == 1 else 'fields'} the catalog does not know"

    @cached_property
    def role_names(self) -> dict[str, tuple[str, ...]]:
        """Each role's names besides its id (zh, en, `also`): how an HR feed may write it."""
        return {k: (r.zh, r.en, *r.also) for k, r in self.roles.items()}

    @cached_property
    def purpose_names(self) -> dict[str, tuple[str, ...]]:
        """Each purpose's and agreement's names besides its id: how a log or a consent may write it."""
        agreements = self.policy.purposes.agreements
        return {k: (p.zh, p.en, *p.also) for k, p in self.purposes.items()} | {
            k: (a.zh, a.en, *a.also) for k, a in agreements.items()
        }

    @cached_property
    def system_names(self) -> dict[str, tuple[str, ...]]:
        """Each system's names besides its id; a system the permission sets name but
        organisation.yaml does not declare has none."""
        systems = self.policy.organisation.systems
        return {sid: () for sid in self.systems if sid not in systems} | {
            sid: tuple(n for n in (s.zh, s.en, *s.also) if n) for sid, s in systems.items()
        }

    @cached_property
    def _earlier_ids(self) -> dict[str, tuple[Collection[str], dict[str, str]]]:
        """kind -> (today's ids, each of their names in `key_form` -> its id): what `current` reads."""
        return {
            kind: (ids, {key_form(n): i for i, words in names.items() for n in words if n})
            for kind, ids, names in (
                ("purpose", self.purpose_names.keys(), self.purpose_names),
                ("system", self.system_names.keys(), self.system_names),
                ("role", self.roles.keys(), self.role_names),
            )
        }

    def current(self, kind: str, held: str | None) -> str | None:
        """The id today's policy names a purpose, system or role (`kind`) by, for an id that state
        kept under an earlier policy: an id renamed as docs/operations.md "Changing policy" says
        (the new id, the old one among its `also`) is the new one. State holds the id of its day
        for years (a record's purpose, a copy's system): a probe's renamed marketing purpose left
        every profile collected before the restart with no retention deadline, silently (probe_v1
        F3). An id today's policy declares, or names nowhere, is kept as it is."""
        if held is None:
            return None
        ids, names = self._earlier_ids[kind]
        if held in ids:
            return held  # nearly always: one lookup
        return names.get(key_form(held), held)

    @cached_property
    def approving_roles(self) -> frozenset[str]:
        """Roles whose permission set signs graded approvals (organisation.yaml `approves`)."""
        sets = self.permission_sets
        return frozenset(
            r for r, role in self.roles.items() if role.permissions and sets[role.permissions].approves
        )

    @cached_property
    def recipient_book(self) -> RecipientBook:
        """The declared recipients' contracts, as of time (policy/contracts.py)."""
        return RecipientBook(self.policy.recipients)

    def _holders(self, block: str) -> dict[str, Any]:
        """Role -> its permission set's `block` (counter, own_book), for the roles whose set has one."""
        return {
            r: b
            for r, role in self.roles.items()
            if role.permissions is not None and (b := getattr(self.permission_sets[role.permissions], block))
        }

    def never_allows(self, system: str, action: str) -> bool:
        """The system refuses the action whoever asks and whatever approval they hold."""
        return action in self._never_on.get(system, ())

    def never_provides(self, system: str, kind: RecipientType) -> bool:
        """The system's customer data never goes to a recipient of this kind, whatever the consent or
        contract (the law's provisions are the caller's to set aside)."""
        return kind in self._never_to.get(system, ())

    def manages_by_org(self, system: str) -> bool:
        """A customer is managed in one sub-branch on the system, and changed only there (seed 004
        客户管理机构, a rule of the 掌上银行家 system, not of every system that holds the customer)."""
        return system in self._managed_by_org

    def at_counter(
        self, roles: Iterable[str], action: str, system: str, field_ids: Sequence[str], purpose: str | None
    ) -> tuple[str, Counter] | None:
        """The permission set, and its counter (organisation.yaml `counter`), of one of the roles that
        covers the access by itself: its system, a purpose the counter serves, its grant of the
        action on the data it names; None when none does. Then neither the org's sight nor the customer's
        managing org limits it. Memoized: bulk_query asks it of every access of a teller's batch,
        the screen once per kind."""
        return next(
            iter(self._covering("counter", roles, action, system, field_ids, purpose, action in TAKES_OUT)),
            None,
        )

    def own_book(
        self, roles: Iterable[str], action: str, system: str, field_ids: Sequence[str], purpose: str | None
    ) -> tuple[str, OwnBook] | None:
        """The permission set, and its book, a read is the roles' own work on (organisation.yaml
        `own_book`; each set's book is its own, with its own day's measure), the widest of
        the sets that cover it by themselves (system, purpose, grant): `scope` "sight" (every
        customer the holder sees) before "org" (those its org manages); None when none does, or
        for anything but a view, a query or a print (any other takeout leaves the book). A print is
        asked of one customer, by both access detectors: that customer's copy, judged as a view of
        the same data. Memoized as `at_counter`."""
        printed = action == Action.print
        if printed:
            action = Action.view
        if action not in READS:
            return None
        books = self._covering("own_book", roles, action, system, field_ids, purpose, printed)
        if len(books) < 2:  # nearly always: one role with a book
            return books[0] if books else None
        return max(books, key=lambda b: b[1].scope == "sight")

    def day_measure(self, perms: str, block: Counter | OwnBook, ts: int) -> tuple[int, str]:
        """The most customers a day one holder of permission set `perms` serves at its counter or
        reads in its book (`block`) on the bank's day of `ts`: the highest of the peaks of that day
        that raise it (organisation.yaml `peak_days`), with the peak's id; else the block's
        ordinary `customers_per_day` and "". Asked of every teller's read: memoized."""
        peaks = self._peaks.get(perms)
        if not peaks:
            return block.customers_per_day, ""
        # every zone's offset is whole quarter hours, so a quarter hour of epoch time lies in one
        # local day
        key = (perms, ts // 900_000)
        found = self._day_measures.get(key)
        if found is None:
            day = self.policy.local_date(ts)
            found = max(
                ((p.customers_per_day[perms], name) for name, p in peaks if p.covers(day)),
                default=(block.customers_per_day, ""),
            )
            if len(self._day_measures) >= 100_000:  # a replay of years: forget, do not grow
                self._day_measures.clear()
            self._day_measures[key] = found
        return found

    def steady_measure(self, perms: str, block: Counter | OwnBook) -> tuple[int, str] | None:
        """`day_measure` where it is the same every day: no peak day raises permission set `perms`'s
        (most sets), else None. Asked once per kind of read, not per read."""
        return None if self._peaks.get(perms) else (block.customers_per_day, "")

    def _covering(
        self,
        block: str,
        roles: Iterable[str],
        action: str,
        system: str,
        field_ids: Sequence[str],
        purpose: str | None,
        taken: bool = False,
    ) -> tuple[tuple[str, Any], ...]:
        """(permission set, its `block`) of the roles' sets with a `block` (counter, own_book) that
        cover the access by themselves: their system, a purpose the block lists (any, for `UNSTATED`),
        their grant of the action. `taken`: the access prints or takes out; naming no data, it is
        judged as such a take-out is (`unnamed_granted`): a print log listing no fields is still the
        customer's statement. A read naming no data is nobody's to vouch for."""
        key = (block, tuple(roles), action, system, tuple(field_ids), purpose, taken)
        found = self._covered.get(key)
        if found is None:
            unnamed = taken and self.names_no_data(field_ids)
            found = tuple(
                (role.permissions, b)
                for r in key[1]
                if (role := self.roles.get(r)) is not None
                and role.permissions is not None
                and (b := getattr(self.permission_sets[role.permissions], block)) is not None
                and (field_ids or unnamed)
                and system in self.permission_sets[role.permissions].systems
                and (purpose is UNSTATED or purpose in b.purposes)
                and (
                    self.unnamed_granted(self.permission_sets[role.permissions].grants.get(action, ()))  # type: ignore[call-overload]
                    if unnamed
                    else self._set_grants(role.permissions, action, field_ids)
                )
                and (
                    b.reads is None
                    or (self.unnamed_granted(b.reads) if unnamed else self.granted(b.reads, field_ids))
                )
            )
            if len(self._covered) < 100_000:
                self._covered[key] = found
        return found

    def beyond_purpose(self, purpose: str | None, field_ids: Iterable[str]) -> list[str]:
        """The fields a use for `purpose` reads that were collected for no purpose it may read
        (purposes.yaml `collected_for`, `also_uses`; seed 004 流程描述(1)收集⑧, (4)使用⑩). None are, for a purpose the
        policy does not name (nothing to judge it by) or one the law requires."""
        reads = self._reads_for.get(purpose) if purpose is not None else None
        if reads is None:
            return []
        collected, own = self.collected_for, self._own_purpose_only
        return sorted(
            f
            for f in set(field_ids)
            if f in collected
            and (reads.isdisjoint(collected[f]) or (f in own and purpose not in collected[f]))
        )

    def field_spelling(self, name: str) -> str | None:
        """The catalog field a log's name for data stands for, where it is not the id itself: the
        field's id in another case or form, its `zh` or another of its words (classification.yaml
        `also`: 交易密码), a key payloads name it by (traffic.yaml: CVV2, 银行卡号), or a category by its
        name (鉴别信息 stands for the category, as `authentication` does). None: the id
        itself, or a name the catalog does not know (a coverage gap). A transfer to a regulator
        naming 交易密码 was no C3 transfer, and raised nothing (a probe)."""
        if name in self.field_class:
            return None
        return self._field_named(name) or self._c3_column(name)

    def _field_named(self, name: str) -> str | None:
        form = key_form(name)
        if (fid := self._field_words.get(form)) is not None:
            return fid
        fid = self.sdk.field_id(name)  # the keys payloads give it (traffic.yaml: CVV2, 银行卡号)
        return fid if fid in self.field_class else self._category_names.get(form)

    def restores(self, method: str | None) -> bool:
        """Whether a collection's method brings back a record that left (`restoring_methods`)."""
        return bool(method) and self.restoring.search(method_key(method)) is not None  # type: ignore[arg-type]

    def _c3_column_uncached(self, name: str) -> str | None:
        """The C3 field a database audit log's column stands for: qualified by its schema or table
        (`t_card.cvv2`, as pgaudit, MariaDB and Ranger write it), any field; or prefixed with its
        table (`card_cvv2`, `t_card_pin_block`) or followed by a word that says no more
        (`cvv2_code`), a C3 field only: a probe's unapproved CVN and PIN reads so named were silent
        (seed 004 分类(1) C3: 卡片验证码、卡片有效期、银行卡密码). The words before it must name a card
        or a table (`_CARD_TABLE`): a contract's, a token's or an ID card's expiry date and a session's
        PIN are no card's (a review's high alerts on a wealth manager's contract reads). A shorter
        tail of another class is not taken: `branch_name` is no customer's name."""
        table, _, column = name.rpartition(".")
        if any(c.isspace() for c in table):
            # a statement's text (`SELECT * FROM crm.customer_segment`): what follows its last dot
            # names a table or a condition, not the data read (it was read as customer_segment, and
            # the export of every column as C1)
            return None
        if table and (fid := self._field_named(column)):
            return fid
        words = [w for w in _WORDS.split(column) if w]
        if words and words[-1].casefold() in _SAYS_NO_MORE:
            words = words[:-1]
        for start in range(len(words)):
            if start and words[start - 1].casefold() not in _CARD_TABLE:
                break  # `contract_expiry_date`, `session_pin`, `id_card_exp_dt` are no bank card's (a review's)
            fid = self._field_named("_".join(words[start:]))
            if fid is not None and self.field_class[fid] is JrClass.C3:
                return fid
        return None

    def scope_spelling(self, name: str) -> str | None:
        """The class or category an approval's scope names, whatever case, spaces or language its
        form writes it in (`Identity`, `c2`, 征信信息): a probe's approved export under `Credit` was
        covered by nothing, a high bulk alert and a leakage candidate. None: the id itself, or a
        name the policy does not know (kept: it covers nothing)."""
        found = self._scope_ids.get(spelling(name))
        return found if found != name else None

    def categories(self, field_ids: Iterable[str]) -> frozenset[str]:
        return frozenset(self.field_category[f] for f in field_ids if f in self.field_category)

    def coverage(self, stream: str, field_ids: Sequence[str]) -> tuple[JrClass, tuple[str, ...]]:
        """(class, field ids the catalog does not know) for a stream's field list. Unknown ids are a
        coverage gap to report, never to drop (DESIGN.md §2); they count as C1 (JR/T 0171 §4.2 C1 c))."""
        if stream != "sdk":
            cls, _ = self.profile(field_ids)
            return cls, tuple(f for f in field_ids if f not in self.field_class)
        # an app's SDK field sets hardly repeat (18 497 sets in 24 000 observations of the generated
        # day), so this runs per observation: each field's rank in one C pass, no cache to miss
        floor = CLASS_RANK[UNKNOWN_FIELD_CLASS]
        known, rank = self.sdk_field_class, self._sdk_rank
        best = max(map(rank.get, field_ids, repeat(floor)), default=floor)
        missed = [f for f in field_ids if f not in known]  # ids as declared hit at once
        if not missed:
            return RANK_CLASS[best], ()
        # a name in another case or with spaces is its field (`spelling`), known and ranked as it
        best = max(best, *(rank.get(spelling(f), floor) for f in missed))
        return RANK_CLASS[best], tuple(f for f in missed if spelling(f) not in known)

    def granted(self, ids: Collection[str], field_ids: Iterable[str], named: Collection[str] = ()) -> bool:
        """Every field is named, or its class or category is among `ids`; a set that a combination
        raises above each of its fields (JR/T 0171 §4.2) needs that class too, unless all are named."""
        fids = frozenset(field_ids)
        top = UNKNOWN_FIELD_CLASS
        for f in fids:
            cls = self.field_class.get(f, UNKNOWN_FIELD_CLASS)
            if f not in named and cls.value not in ids and self.field_category.get(f) not in ids:
                return False
            top = cls if CLASS_RANK[cls] > CLASS_RANK[top] else top
        raised = self.classify(fids)
        return raised is top or raised.value in ids or fids <= frozenset(named)

    def _set_grants(self, pid: str, action: str, field_ids: Sequence[str]) -> bool:
        """Permission set `pid` grants the action on every one of the fields (by class, category, or
        the field itself); memoized."""
        key = (pid, action, tuple(field_ids))
        ok = self._grants.get(key)
        if ok is None:
            ids = self.permission_sets[pid].grants.get(action, ())  # type: ignore[call-overload]
            # a field a grant names itself (a category or class id stands for itself as a field)
            fields = [i for i in ids if self.field_category.get(i, i) != i]
            ok = self.granted(ids, field_ids, named=fields)
            if len(self._grants) < 100_000:
                self._grants[key] = ok
        return ok

    def role_grants(
        self, roles: Iterable[str], action: str, system: str, field_ids: list[str]
    ) -> tuple[bool, bool]:
        """(system allowed, data allowed) for any of the roles (seed 004 角色设置(2): a user may hold
        several). Each role's permission set is a whole: the data must be granted by a role that
        also opens the system, not the system by one role and the data by another. A role the
        policy gives no permission set is not judged: both True. Only the data the catalog knows is
        judged: an uncatalogued table or column (`db:…`, a field id it lacks) is a coverage gap, not
        a permission a role lacks (a probe's teller reading one customer through an uncatalogued view
        was "not permitted a query of (nothing)", a medium alert)."""
        field_ids = [f for f in field_ids if f in self.field_class]
        granted: list[tuple[bool, bool]] = []  # per role: (system, data)
        for r in roles:
            role = self.roles.get(r)
            if role is None:
                continue  # a role the policy does not know grants nothing
            pid = role.permissions
            if pid is None:
                return True, True
            granted.append(
                (system in self.permission_sets[pid].systems, self._set_grants(pid, action, field_ids))
            )
        system_ok = any(s for s, _ in granted)
        # with no role opening the system, the data is judged on its own (one reason, not two)
        data_ok = any(d for s, d in granted if s or not system_ok)
        return system_ok, data_ok
