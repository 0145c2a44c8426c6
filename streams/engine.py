"""The detector engine: decoded events in, alerts and rollups out. No I/O, no clock.

The Kafka runtime, `lifemon replay` and the tests drive this same object, which is why a replay
gives the alerts of the live run. Work is split into *tasks*, as in Kafka Streams: one detector
kind on one partition number, fed partition p of each of its inputs (co-partitioned topics, or
repartition topics where a stream is keyed otherwise). A task owns its keyed store, its timers and
its event-time clock, and is checkpointed and restored with its partition.

Event time (docs/architecture.md#event-time):
- a task's stream time is the latest event time it has accepted; its watermark is that minus the
  allowed lateness, or the latest time of its slowest input still being read if that is earlier:
  a fast input (today's accesses) never fires a timer that a slow one (a deletion in the
  lifecycle backlog) would have stopped, and a stream running ahead in another task never closes
  this task's windows;
- a task whose inputs are all caught up (nothing left to read) follows the instance clock, the
  latest stream time of any task here: its timers fire on a quiet partition;
- a finite replay ends at the last event time, never at infinity.
"""

from __future__ import annotations

import gc
import os
import re
import shutil
import tempfile
import weakref
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache, cached_property
from itertools import chain, compress, groupby, repeat
from operator import attrgetter, floordiv, itemgetter
from pathlib import Path
from typing import Any, NamedTuple

import msgspec

from detectors import DetectorSpec
from detectors.base import DAY_MS, UNNAMED, Context, Detector, Finding, References
from policy.catalog import Catalog
from policy.model import (
    WithdrawalScope,
    affirms,
    code_form,
    erases,
    id_spelling,
    method_key,
    method_terms,
    spelling,
)
from schemas.incident import Incident
from schemas.models import (
    STREAM_KEYS,
    SUBJECT_FIELDS,
    Alert,
    Channel,
    ConsentStatus,
    EmployeeStatus,
    LifecycleStage,
)
from streams import _door
from streams._ids import IdWindow
from streams.alerts import actor_kind, build_alert, latest
from streams.codecs import ENUM_WORDS, RawRecord
from streams.incidents import IncidentStage, Revised
from streams.keyed_state import Change, KeyedStore, TimerService, state_encode
from streams.lifecycle_ledger import DeletionLedger
from streams.org_tree import MergedOrgs, OrgTree
from streams.personal_numbers import DoorSeals
from streams.pseudonym import PseudonymKeyChanged, PseudonymKeyMismatch, fingerprint, spelled_as
from streams.registries import AsOfRegistry, ConsentRegistry, EntitlementRegistry, said_elsewhere
from streams.sources.canonical import StatementFields, is_statement
from streams.transfer_ledger import UNDECLARED, TransferLedger

COVERAGE_GAP = "coverage_gap"
OTHER = "other"  # a dimension value that is not a known id never reaches a table: it is counted here
DEDUP_IDS_PER_TOPIC_PARTITION = 200_000
# a drain's passes at most: each fires what the last one registered already due (a chain is short)
DRAIN_PASSES = 8
SEP = "\x1f"  # between a namespace and a key in a partition's store
ENGINE = "~engine" + SEP  # the engine's own keys: tasks' stream times, rollups
CHANNELS = "channels"  # a task input's marks from each source partition (Task.mark)
# then <record id>: the customer (pseudonym) the record's lifecycle events named or, until one does,
# the events read before (Engine._owners)
OWNERS = ENGINE + "owner" + SEP
# then <record id>: when a deleted or anonymized record's entry ends (its latest removal's), and a
# timer there (Engine._owners)
OWNERS_DUE = ENGINE + "owner-due" + SEP
OWNERS_TIMERS = ENGINE + "owner-timer" + SEP
HELD_PER_RECORD = 16  # a record's life has a few steps: more unnamed ones than this are a gap each
SOURCE_TIME = ENGINE + "source" + SEP  # then <topic>: the latest event time read from it (Engine._held_by)
ROLLUP = ENGINE + "rollup" + SEP  # then <topic> SEP <block> [SEP <slot>] (PartitionRollup.save)
# then <topic> SEP <sequence>: event ids first delivered there, in order, a chunk a key (Engine._save_seen)
SEEN = ENGINE + "seen" + SEP
SEEN_CHUNK = 5_000  # ids a key holds: about 150 kB, well within a changelog message
# a last chunk smaller than this is written again with the next checkpoint's ids: a quiet partition
# (an id or two a checkpoint) had made a key of each, up to 200 000 keys (a review's)
SEEN_SMALL = 500
NO_TOPIC_ID = ""  # a topic whose incarnation is not known: rows from before topic ids, a replay, a test
PSEUDONYM_VERSION_KEY = ENGINE + "pseudonym_key_version"  # the key version of the state's pseudonyms
PSEUDONYM_CHECK_KEY = ENGINE + "pseudonym_key_check"  # `Pseudonymizer.key_check` of that version's key
INCIDENTS = "~incidents"  # the incident stage's namespace in each partition's store
STAGE = "~stage"  # + a detector's kind: its second stage's namespace and task (`StageSpec`)
# a task's mark to its stage that says it has had no input at all and has none left to read: it holds
# the stage nowhere until it marks a time (no watermark is 0: a task marks once its stream time moved);
# a source partition's mark to a repartition topic that says so of the source (`Monitor._mark_idle`)
IDLE_MARK = 0
_MISSING = object()
_ts = attrgetter("ts")
_subject = attrgetter("subject_id")
# the lifecycle steps a customer's agent may file: the record's customer is the one they concern
_REMOVED = frozenset({LifecycleStage.delete, LifecycleStage.anonymize})
_ASKED_BY_ANYONE = frozenset(
    {LifecycleStage.deletion_requested, LifecycleStage.deletion_withdrawn, LifecycleStage.deletion_refused}
)


# measured: 700 -> 50 000: decode 6.9 -> 3.1 µs/event, engine 24 -> 19; 50 000 -> 500 000: 15
# young collections per 200 000 accesses -> none, 44 881 -> 62 124 events/CPU-s, the same peak RSS
GC_THRESHOLDS = (500_000, 50, 100)


def freeze_heap() -> None:
    """Call once the long-lived data is loaded (policy, reference registries): the collector stops
    re-scanning it, and runs a young collection every 500 000 allocations instead of 700. A batch
    allocates tens of thousands of structs and lists that live until it is judged, and frees them
    then; a collection that falls inside a batch resets the count, so their frees no longer offset
    their allocations and the next one comes sooner. At 500 000 a batch's allocations and frees
    cancel out, and collections are rare (docs/benchmarks.md, eleventh stop). What they would find,
    cyclic garbage, the pipeline hardly makes."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


@contextmanager
def long_lived_load() -> Iterator[None]:
    """Around the load of the long-lived data, then `freeze_heap`: collected as rarely while it
    grows, since the reference streams allocate as batches do (under the default young threshold,
    700, the collector rescanned the growing registries every few thousand records: a benchmark's
    28 571 customers decoded at 8 µs a record, 0.8 under the engine's thresholds)."""
    gc.set_threshold(*GC_THRESHOLDS)
    yield
    freeze_heap()


# stream -> (attribute with catalog field ids, org-like attribute or None, outcome-like attribute,
# action attribute or None), for rollups. Only known ids and enum values may reach a table (an org
# id seen in the reference streams, a declared SDK); free text from an event never does
# (`Engine._org_label`). An access event's action tells a take-out (export, download, print) from a
# screen read: what compliance asks of each branch's C3 and C2 data (probe_v3 H4).
ROLLUP_DIMENSIONS: dict[str, tuple[str, str | None, str, str | None]] = {
    "access": ("fields", "actor_org", "outcome", "action"),
    "transfer": ("categories", "recipient_id", "recipient_type", None),
    "sdk": ("fields", "sdk_id", "policy_consented", None),
    "marketing": ("data_used", "org_id", "channel", None),
    "lifecycle": ("categories", None, "stage", None),
}

# stream -> (what an event must name, the coverage-gap kind of one that names none, the row's object):
# a lifecycle event naming no customer never reaches the detectors keyed by customer (retention_overrun:
# a deletion it cannot see leaves the request overdue); what no category names no contract can be shown
# to cover (seed 002 §六.2(2): the contents of each share recorded; a probe's transfer passed the check)
UNNAMED_GAPS: dict[str, tuple[Callable[[Any], Any], str, str]] = {
    "lifecycle": (_subject, "lifecycle_without_subject", "(no subject_id)"),
    "transfer": (attrgetter("categories"), "transfer_without_categories", "(no categories)"),
}
NO_ACTION = ""  # the action of a rollup cell of another stream, and of rows stored before actions
SDK_LABEL = "sdk_label"  # rollup stream of SDK fields by PoliCheck label: org = "<sdk>:<field>"
# An hour per sdk_label row, not a minute: the matrix is read over a range, never as a time series,
# and per minute an observation's fields were 3 rows each on a replayed day (73 104 of 205 354 rows)
SDK_LABEL_BUCKET_S = 3600
# A rollup block's state is one key per ten minutes of event time it counted (PartitionRollup.save):
# per minute, a replayed day's checkpoints wrote 26 037 rollup keys, half of its changelog records;
# live, a checkpoint rewrites the current slot, at most ten minutes of cells
ROLLUP_SLOT_S = 600


def _slot_of(minute: int) -> int:
    """The start (s) of the rollup slot a minute (s) belongs to."""
    return minute - minute % ROLLUP_SLOT_S


def _outcome_label(value: Any) -> str:
    if isinstance(value, bool):  # the SDK stream's: collected with or before the privacy-policy consent
        return "consented" if value else "before_consent"
    return str(value.value)


def rekey(key: str, events: Sequence[Any], needs: Sequence[str] = ()) -> list[tuple[str, Any]]:
    """(key value, event) per event, as a repartition topic carries them. A list attribute (an
    access's customers) fans out: one event per distinct value, its list narrowed to that value,
    so the task that owns a customer sees only that customer. An event without a value is left
    out of this input (it has no key to be judged under), and so is one that carries none of the
    attributes in `needs` (no reader of the input reads it: `Engine.needs`)."""
    if needs:  # column by column: most accesses carry none, and a generator per event cost 4x
        events = list(
            compress(events, map(any, zip(*[map(attrgetter(a), events) for a in needs], strict=True)))
        )
    out: list[tuple[str, Any]] = []
    for ev in events:
        value = getattr(ev, key)
        if isinstance(value, list):
            if len(value) == 1:
                out.append((value[0], ev))
            else:
                out += [(v, msgspec.structs.replace(ev, **{key: [v]})) for v in dict.fromkeys(value)]
        elif value is not None:
            out.append((value, ev))
    return out


LIST_SUBJECTS = frozenset({"access", "transfer"})  # their SUBJECT_FIELDS hold lists of customers
UNNAMED_SUBJECTS = frozenset({"lifecycle", "sdk"})  # their customer may be unnamed (None)
# the event streams whose records state a purpose (purposes.yaml ids)
PURPOSE_STREAMS = frozenset({"access", "transfer", "marketing", "lifecycle"})


_GUID = re.compile(r"\{?([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\}?", re.IGNORECASE)


def _record_spelling(rid: str) -> str:
    rid = id_spelling(rid)
    if rid.isdigit():
        return rid.lstrip("0") or "0"
    guid = _GUID.fullmatch(rid)
    return guid.group(1).lower() if guid else rid


def _plain_record_id(rid: str) -> bool:
    """Spelled as `_record_spelling` writes it, for certain; most ids, one cheap test each."""
    return (
        rid.isascii()
        and rid.strip() is rid
        and rid[:1] != "0"
        and not (len(rid) in (36, 38) and (rid[0] == "{" or not rid.islower()))
    )


def _spell_record_ids(stream: str, records: list[Any]) -> None:
    """A record id as every system writes it, as a customer id is (`policy.model.id_spelling`): a
    CHAR column pads it with blanks, a form typed in Chinese input mode writes it in full width; a
    deletion of `RA002` and a read of ` RA002` are one record (a probe: the read raised nothing).
    Case is kept (an id may be case-sensitive), but a GUID's is none (RFC 4122): the CRM's
    lower-case GUID and the warehouse's upper-case or braced one are one record (a probe's download
    of a deleted record raised nothing). A number is one without its leading zeros: the CRM's
    `0012345` is the warehouse's BIGINT copy `12345` (a probe's, likewise silent)."""
    if stream == "lifecycle":
        for r in records:
            rid = r.record_id
            if rid and not _plain_record_id(rid):
                r.record_id = _record_spelling(rid)
    elif stream in ("access", "transfer"):
        for r in records:
            ids = r.record_ids
            if ids and not all(map(_plain_record_id, ids)):
                r.record_ids = list(map(_record_spelling, ids))


# the attribute that names the system an event's data was read, stored or sent from
SYSTEM_ATTR = {"access": "system", "lifecycle": "system", "transfer": "sender_system"}
# the lists of catalog field ids a log names its data by, read as the catalog spells them
# (`Catalog.field_spelling`); an SDK observation's fields are the SDK vocabulary's (sdk_overcollection)
FIELD_LISTS = {
    "access": "fields",
    "transfer": "categories",
    "lifecycle": "categories",
    "marketing": "data_used",
}
# the attributes that name an org, read as the reference records' org ids are (`Engine._org_spelling`)
ORG_ATTRS = {"access": ("actor_org",), "marketing": ("org_id",)}
ORG_LISTS = {"marketing": ("approved_audience",)}
# the attributes that name an employee, read as the entitlements feed spells them (`spelled_as`)
EMPLOYEE_ATTRS = {"access": ("actor_id",), "transfer": ("actor_id",)}
# who signs for an event: an employee number's digits alone are no one's there (a workflow's 000000
# or ticket number became an employee of the form, and the approval it signed covered: a review's)
SIGNER_ATTRS = {"lifecycle": ("operator_id", "supervisor_id"), "marketing": ("submitter_id", "approver_id")}


@cache
def fold_columns(stream: str) -> tuple[tuple[str, bool], ...]:
    """The columns `ingest` folds that nothing but their own fold changes, as (attr, items): their
    distinct values read in one C pass before the folds (`_door.distinct_each`), one walk of the
    batch's events (which the cache no longer holds) for all, not one a column: 0.42 -> 0.34 µs an
    access event for its five. Not the transfer ids a placeholder empties first."""
    scalars = [
        *EMPLOYEE_ATTRS.get(stream, ()),
        *SIGNER_ATTRS.get(stream, ()),
        *(("purpose",) if stream in PURPOSE_STREAMS else ()),
        *((SYSTEM_ATTR[stream],) if stream in SYSTEM_ATTR else ()),
        *ORG_ATTRS.get(stream, ()),
    ]
    lists = [*((FIELD_LISTS[stream],) if stream in FIELD_LISTS else ()), *ORG_LISTS.get(stream, ())]
    return tuple(dict.fromkeys([(a, False) for a in scalars] + [(a, True) for a in lists]))


def distinct(records: Sequence[Any], attr: str, items: bool = False) -> set[Any]:
    """The records' `attr` values (with `items`, the items of each) as a set: one C loop reading
    the Structs' slots (streams/_door.c), a third of map(attrgetter) over the batch."""
    return _door.distinct(records if isinstance(records, list) else list(records), attr, items)


def fold(
    records: Sequence[Any], attr: str, respell: Callable[[str], str | None], values: set[Any] | None = None
) -> None:
    """Each record's `attr` as the policy spells it, where `respell` gives another spelling (None: keep
    it): a purpose in any case or spaces (`Marketing` is marketing) in the events, the consents and
    the approvals alike, before any detector compares them; a system likewise (`named_spelling`).
    Most batches hold only the policy's spellings: one pass over their few distinct values
    (`values`, where the caller has them)."""
    if values is None:
        values = distinct(records, attr)
    odd = {v: s for v in values if v is not None and (s := respell(v)) not in (None, v)}
    if odd:
        for r in records:
            if (v := getattr(r, attr)) in odd:
                setattr(r, attr, odd[v])


def fold_lists(
    records: Sequence[Any], attr: str, respell: Callable[[str], str | None], names: set[str] | None = None
) -> None:
    """`fold` for an attribute that holds a list (the data an access read, a transfer sent): each
    name another spelling stands for becomes it, a name spelled twice is kept once. One set of the
    batch's names (`names`, where the caller has it), most batches none to change."""
    if names is None:
        names = distinct(records, attr, items=True)
    odd = {v: s for v in names if (s := respell(v)) is not None}
    if odd:
        for r in records:
            values = getattr(r, attr)
            if not odd.keys().isdisjoint(values):
                setattr(r, attr, list(dict.fromkeys(odd.get(v, v) for v in values)))


def read_statements(
    records: Sequence[Any], read: Callable[[str, str], Sequence[str]], names: set[str] | None = None
) -> set[str] | None:
    """An access's field list entry that is a SQL text (a DWH tool's `SELECT cust_name, cert_no
    FROM dw.cust_360`) becomes the field ids its select list names on the access's system
    (`StatementFields`), before anything judges, counts or stores the list: the text goes nowhere,
    its WHERE may hold an ID number. A probe's such export of 3 000 customers was judged as naming
    no data, and `SELECT name, cvv2 FROM t_card` as C2. One set of the batch's names, most batches
    none to read: returned then, for `fold_lists` to take (None: the lists changed). `names`: the
    batch's names, where the caller has them."""
    if names is None:
        names = distinct(records, "fields", items=True)
    said = {v for v in names if is_statement(v)}
    if not said:
        return names
    for r in records:
        if not said.isdisjoint(r.fields):
            fields = (read(v, r.system) if v in said else (v,) for v in r.fields)
            r.fields = list(dict.fromkeys(chain.from_iterable(fields)))
    return None


def at_new_post(records: Sequence[Any], registry: EntitlementRegistry) -> None:
    """Entitlement records that HR marks `transferred` (调岗, 调动) but that carry roles at another org
    than the employee's version before them, read as active there (in place). Seed 004 人员管理(4)
    has a transfer's rights adjusted at once, and a record with the new org and roles is that
    adjustment: many HR systems carry the last personnel action as the status, and a probe's
    wealth manager's every read at her new post was a high `transferred` alert "out of" the org she
    had moved into. A `transferred` record at the same org, or with no roles, is the move begun
    with no new post yet, and stays one; so does one with no version before it, which shows no
    move. Versions before it in the same batch count, in time order.

    The same post sent again (HR's nightly export, a second personnel action) finds the version
    before it at its own org, read as the new post: it is that post too, or each re-send would
    turn it back into a transfer begun (a review's: every read after it was a high alert again).
    Which versions were so read is kept beside them (`EntitlementRegistry.new_posts`), decided
    in the order the records arrive, so a restart that reads the topic again decides alike."""
    batch: dict[str, Any] = {}  # employee -> its latest record in the batch so far
    for r in sorted(records, key=attrgetter("ts")):
        registry.new_posts.discard((r.actor_id, r.ts))  # a record replacing one at its time decides anew
        if r.status is EmployeeStatus.transferred and r.roles:
            known = [batch.get(r.actor_id), registry.as_of(r.actor_id, r.ts - 1)]
            before = max(
                (v for v in known if v is not None and v.ts < r.ts), key=attrgetter("ts"), default=None
            )
            if before is not None and (
                before.org_id != r.org_id or (r.actor_id, before.ts) in registry.new_posts
            ):
                r.status = EmployeeStatus.active
                registry.new_posts.add((r.actor_id, r.ts))
        batch[r.actor_id] = r


def named_spelling(
    names: Mapping[str, Iterable[str]], others: bool = True, dressed: bool = True
) -> Callable[[str], str | None]:
    """A purpose or a role as the policy names it, whatever case or spaces, or by its Chinese or
    English name (`营销`, `理财与投资顾问服务`: a probe's read for marketing of a customer who refused
    it was silent, a wealth manager's own customers read for advice a bulk alert; an HR feed's
    `理财经理` held no role, and her ordinary day was an art. 5 alert). `names`: each id's names.
    Spaces and hyphens are underscores, as in the ids (`Privacy Policy`, `privacy-policy`: a probe's
    withdrawal of the privacy policy so written was lost), for a purpose the policy does not name
    too (a detector's `consent_purpose`), unless `others` is False: a role the policy does not
    name stays as HR wrote it, and the alert says so. `dressed`: a name may carry a version or a
    consent word after it (a purpose's, not a system's: CRM2 is another system). None: kept as it is."""

    def form(name: str) -> str:
        return _SEPARATORS.sub("_", spelling(_QUOTES.sub("", name)))

    known = {form(n): pid for pid, words in names.items() for n in (pid, *words)}

    def respell(s: str) -> str | None:
        f = form(s)
        # without a version or a consent word after it, where that is a known name (a review's
        # `loan_agreement` of a bank's own policy was merged with `loan`)
        found = (
            known.get(f)
            or (dressed and known.get(_CONSENTED.sub("", _VERSIONED.sub("", f))))
            or (f if others else s)
        )
        return None if found == s else found

    return respell


_SEPARATORS = re.compile(r"[\s\-]+")
# what dresses a name and says no more of it: title marks and quotes (《隐私政策》), a version after it
# (privacy_policy_v5.2, marketing_v2), and the consent it is (营销授权, marketing_consent): a probe's
# withdrawals so labelled stopped nothing
_QUOTES = re.compile(r"[《》〈〉“”\"'「」『』]")
_VERSIONED = re.compile(r"_?v?\d+(?:[._]\d+)*版?$")
_CONSENTED = re.compile(r"_?(?:consent|authori[sz]ation|agreement|opt_?in|opt_?out)$|(?:授权|同意|协议授权)$")


def channel_in_purpose(
    respell: Callable[[str], str | None], purposes: Collection[str], channels: dict[str, str]
) -> Callable[[str], tuple[str, str] | None]:
    """(purpose, channel) of a purpose that names its channel too, as consent platforms write an
    opt-out: `marketing_sms` for an SMS "TD" reply, `营销短信` or `短信营销` for an app setting
    switched off. A probe's opt-outs so written were no purpose the policy names, and every push
    after them was silent (seed 004 流程描述(4)② 客户明确表示拒绝接受营销的情况下, 应当立即停止利用).
    `purposes`: those a channel may be named with (purposes.yaml `channels`: marketing; a review's
    `wechat_payment` was payment on WeChat). `channels`: each word a channel goes by -> the
    channel. None: no such purpose and channel."""
    words = sorted(channels, key=len, reverse=True)  # `app_push` before `push`

    def split(purpose: str) -> tuple[str, str] | None:
        said = _SEPARATORS.sub("_", spelling(purpose)).strip("_:.")
        for word in words:
            for rest in (said.removeprefix(word), said.removesuffix(word)):
                rest = rest.strip("_:.")
                if rest != said and rest and (found := respell(rest) or rest) in purposes:
                    return found, channels[word]
        return None

    return split


def declared_spelling(
    ids: Iterable[str], sealed: Callable[[str], str], names: Iterable[tuple[str, str]] = ()
) -> Callable[[str], str | None]:
    """An id the policy declares (a recipient, a contract, an assessment), whatever case, width or
    spaces a log wrote it in: a probe's `HK-FX-PARTNER` was no declared recipient, and a cross-border
    transfer to it missed its critical alert; `OSA-2025-003 ` was no declared assessment, and a
    covered one raised it. Also as the door sealed it (`sealed`: a contract `HT-202501150012345`
    holds an IMEI's form, a review's). Hyphens, underscores and spaces are one separator (a probe's
    `proc-debt-collection` for the declared proc_debt_collection was a high alert on every transfer).
    Also by the (name, id) pairs `names` gives, a name two ids share naming neither (a reporting
    gateway writes the AML centre as 中国反洗钱监测分析中心, and a probe's daily filing so named was an
    art. 5 provision to a third party). An id declared as written is itself; another None: kept."""

    def form(text: str) -> str:
        return method_key(id_spelling(text))

    exact = frozenset(ids)
    known: dict[str, str] = {}
    for i in sorted(exact):
        known.setdefault(form(i), i)
        known.setdefault(form(sealed(i)), i)
    named: dict[str, set[str]] = {}
    for name, i in names:
        named.setdefault(form(name), set()).add(i)
    for key, owners in named.items():
        if len(owners) == 1:
            known.setdefault(key, owners.pop())
    return lambda s: None if s in exact else known.get(form(s))


# what a log writes for an id it does not have: `assessment_id: "N/A"` is no assessment (a probe's
# public disclosure under "none" passed as assessed)
_NO_ID = frozenset(
    {"", "-", "--", "/", "0", "n/a", "na", "none", "null", "nil", "unknown", "无", "暂无", "没有", "未知"}
)
# what a marketing platform writes for an approver when no one approved: a placeholder, or the
# system that sent it (a probe's branch SMS "approved" by N/A, SYSTEM or auto passed four-eyes)
_NO_PERSON = _NO_ID | frozenset({"system", "auto", "automatic", "batch", "系统", "自动", "系统自动"})


def _no_placeholders(records: Sequence[Any], attrs: Iterable[str], none: frozenset[str] = _NO_ID) -> None:
    for attr in attrs:
        for r in records:
            if (v := getattr(r, attr)) is not None and id_spelling(v).casefold() in none:
                setattr(r, attr, None)


_RECORD_IDS = attrgetter("record_ids")


def _newest(events: Sequence[Any]) -> Any:
    """The latest `ts` of the events (not empty): one C pass reading the Structs' slots, Python's
    max where a time is no int of 64 bits."""
    found = _door.newest(events if isinstance(events, list) else list(events))
    return max(map(_ts, events)) if found is None else found


def _rows_named(events: Sequence[Any]) -> None:
    """An access that names the records it read, not how many rows it returned (a warehouse's audit
    log), returned at least those: a probe's download of 80 named balance records, row_count left
    at 0, counted no record toward art. 5's tiers."""
    for ev in events:
        if ev.record_ids and not ev.row_count:  # a count the log gives is its own (an aggregate's 1)
            ev.row_count = len(set(ev.record_ids))


def _unlabelled(value: Any) -> str:
    return ""  # a stream without an org-like attribute (lifecycle)


def _one(value: Any) -> Any:
    return value[0] if isinstance(value, list) and value else value


class PartitionRollup:
    """Per-minute event counts of one partition, grouped in offset blocks.

    A block's row is a pure function of the records in it, and its version is how many of them
    have been counted: re-processing after a crash rewrites the same rows instead of adding to
    them (ClickHouse keeps the highest version), so the dashboards never double-count. A drain
    sends only the cells that changed since the last one: a cell's newest row is the one with its
    count as it stands, and a live block that takes hours to fill is not sent whole every checkpoint.
    The state is kept the same way: one key per block and ten minutes (`ROLLUP_SLOT_S`), written
    when a minute in it changed. A key per minute, as lifemon kept before, is read as it stands and
    folded into its slot's key at the next save.

    Offsets identify records only within one incarnation of a topic: a topic deleted and re-created
    (or a broker rebuilt) starts again at 0. Each block carries the topic id (KIP-516) of the
    incarnation it counts, in its rows and its state, so a new incarnation's blocks add rows beside
    the old ones' instead of replacing them, and a restored block keeps the id it was counted under.
    """

    def __init__(self, block_size: int, topic_id: str = NO_TOPIC_ID):
        self.block_size = block_size
        self.topic_id = topic_id  # the incarnation that new blocks count
        self.cells: dict[int, dict[tuple, int]] = defaultdict(dict)
        self.progress: Counter = Counter()
        self.ids: dict[int, str] = {}  # block -> the topic id of its rows
        self.dirty: dict[int, dict[tuple, int]] = {}  # block -> cells changed since the last drain
        self.unsaved: dict[int, set[int]] = {}  # block -> slots changed since the last save
        self.saved: dict[int, set[int]] = {}  # block -> slots that have a key in the store
        self.stale: dict[int, set[int]] = {}  # the same, of blocks of another incarnation (`incarnation`)
        self.legacy: dict[int, set[int]] = {}  # block -> per-minute keys restored, deleted at the next save

    def add(self, block: int, counted: dict[tuple, int], records: int) -> None:
        """A batch's counts in one block, {cell: n} (taken over), and the records they came from."""
        cells = self.cells[block]
        if block not in self.ids:
            self.ids[block] = self.topic_id
        # only the cells seen before add up; the rest are copied in one C call (a replay of history
        # brings about one new cell per event: a Python loop over them cost more than counting)
        for cell in counted.keys() & cells.keys():
            counted[cell] += cells[cell]
        cells.update(counted)
        self.progress[block] += records
        self.dirty.setdefault(block, {}).update(counted)  # its keys: the values are not read
        # per minute, not per cell: a minute holds many cells, and the Python call was one a cell
        self.unsaved.setdefault(block, set()).update(map(_slot_of, set(map(itemgetter(0), counted))))

    def drain(self, topic: str, partition: int) -> list[tuple]:
        """Rows (topic, partition, block, *cell, count, version, topic_id) of the cells changed
        since the last drain, built once (one tuple per row); forget finished blocks."""
        rows: list[tuple] = []
        for b in sorted(self.dirty):  # a block's look-ups once, not once a row (~80 000 in a replay's)
            counts, version, topic_id = self.cells[b], self.progress[b], self.ids[b]
            rows += [(topic, partition, b, *cell, counts[cell], version, topic_id) for cell in self.dirty[b]]
        newest = max(self.cells, default=0)
        for b in [b for b in self.cells if b < newest]:
            del self.cells[b], self.progress[b]
            self.ids.pop(b, None)
        self.dirty.clear()
        return rows

    def incarnation(self, topic_id: str) -> set[str]:
        """The topic's incarnation as the broker names it now, after a restore: new blocks count
        under it, and restored blocks of another incarnation (the topic was re-created since) are
        forgotten: their rows are in the table already, and their offsets now name other records.
        Their keys are deleted at the next save, even if the new topic has reached the same block
        by then. A block restored without an id (saved before topic ids) keeps counting under none,
        as the rows it already wrote; so does any block while the broker gives no id. Returns the
        other incarnations' ids found."""
        self.topic_id = topic_id
        if topic_id == NO_TOPIC_ID:
            return set()
        others = {found for found in self.ids.values() if found not in (topic_id, NO_TOPIC_ID)}
        for block in [b for b, found in self.ids.items() if found in others]:
            del self.cells[block], self.progress[block], self.ids[block]
            self.dirty.pop(block, None)
            self.unsaved.pop(block, None)
            self.stale[block] = self.saved.pop(block, set()) | self.legacy.pop(block, set())
        return others

    def save(self, store: KeyedStore, prefix: str) -> None:
        """Into the partition's store under `prefix`: each block's progress, and the cells of each
        slot changed since the last save (key `<block> SEP <slot start, s>`); a forgotten block's
        keys are deleted, and so are those of another incarnation's blocks (`incarnation`) and the
        per-minute keys of an earlier lifemon (their cells are in their slots' keys now)."""
        for block, starts in [*self.stale.items(), *self.legacy.items()]:  # slots, or legacy minutes
            for start in starts:
                store.delete(f"{prefix}{block}{SEP}{start}")
        for block in self.stale:
            store.delete(f"{prefix}{block}")
        self.stale.clear()
        self.legacy.clear()
        for block in [b for b in self.saved if b not in self.cells]:
            store.delete(f"{prefix}{block}")
            for slot in self.saved.pop(block):
                store.delete(f"{prefix}{block}{SEP}{slot}")
        for block, slots in self.unsaved.items():
            if block not in self.cells:
                continue  # a finished block, forgotten: deleted above or never saved
            topic_id = self.ids[block]  # with its progress, as [progress, topic id] when it has one
            store.put(
                f"{prefix}{block}", [self.progress[block], topic_id] if topic_id else self.progress[block]
            )
            for slot, value in _slot_values(self.cells[block], slots).items():
                store.put(f"{prefix}{block}{SEP}{slot}", value)
            self.saved.setdefault(block, set()).update(slots)
        self.unsaved.clear()

    def load_whole(self, blocks: dict[str, Any]) -> None:
        """The single value per topic that lifemon saved before per-minute keys; every slot of it is
        saved in its own key at the next checkpoint. It had no topic ids."""
        for b, v in blocks.items():
            cells = _cells(v["cells"])
            self.cells[int(b)].update(cells)
            self.progress[int(b)] = v["progress"]
            self.ids[int(b)] = NO_TOPIC_ID
            self.unsaved.setdefault(int(b), set()).update(_slot_of(c[0]) for c in cells)

    def load(self, key: str, value: Any) -> None:
        """One stored key (the part after the prefix) and its value, as `save` wrote them."""
        block, _, start = key.partition(SEP)
        if start:
            minute = int(start)
            self.cells[int(block)].update(_cells(value, minute))
            if minute != _slot_of(minute):  # one minute's key, as lifemon kept before slots
                self.legacy.setdefault(int(block), set()).add(minute)
                self.unsaved.setdefault(int(block), set()).add(_slot_of(minute))
            else:
                self.saved.setdefault(int(block), set()).add(minute)
        else:  # [progress, topic id], or the progress alone (no id, or saved before ids)
            progress, found = value if isinstance(value, list) else (value, NO_TOPIC_ID)
            self.progress[int(block)], self.ids[int(block)] = progress, found
            self.saved.setdefault(int(block), set())


class Labels(dict[Any, Any]):
    """value -> its label, computed the first time the value is seen: a batch's column is mapped
    by C lookups, and Python runs only for a new value. Cleared when full."""

    def __init__(self, label: Callable[[Any], Any], limit: int = 100_000):
        super().__init__()
        self.label, self.limit = label, limit

    def __missing__(self, value: Any) -> Any:
        if len(self) >= self.limit:
            self.clear()
        found = self[value] = self.label(value)
        return found


class RollupLabels:
    """One stream's rollup labels: field set -> (class, the field ids the catalog does not know),
    org-like value -> known id or `other`, outcome-like value -> its name. A field set's unknown
    ids live in the same cache as its class: counted as long as the class is."""

    def __init__(
        self, coverage: Callable[[tuple[str, ...]], tuple[Any, tuple[str, ...]]], org: Callable[[Any], str]
    ):
        self.coverage = Labels(lambda fields: _coverage_label(*coverage(fields)))
        self.orgs = Labels(org)
        self.outcomes = Labels(_outcome_label)


def _coverage_label(cls: Any, unknown: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
    return str(cls.value), unknown


CELL_WIDTH = 6  # minute, stream, class, org, outcome, action


def _slot_values(cells: dict[tuple, int], slots: Iterable[int]) -> dict[int, dict[str, list[Any]]]:
    """The stored value of each of a block's `slots`: its cells' labels (stream, class, org,
    outcome, action) once each, and per cell its minute's offset in the slot, its labels' index
    and its count, in one flat list. A slot repeats a few dozen labels over hundreds of cells: as
    rows `[*cell, count]`, ~55 bytes a cell, they were 3.3 MB of a 100 000-event run's changelog,
    1.3 MB so; and the C loop (streams/_door.c) takes ~1 ms where building the rows took ~16."""
    return {
        slot: {"labels": list(labels), "cells": flat}
        for slot, (labels, flat) in _door.group_slots(cells, slots, ROLLUP_SLOT_S).items()
    }


def _cells(stored: list[list[Any]] | dict[str, list[Any]], slot: int = 0) -> dict[tuple, int]:
    """{cell: count} from a stored slot (`_slot_values`, `slot` its start) or, as lifemon saved
    them before, rows `[*cell, count]`. A cell saved before actions lacks one: it counted under
    none, as its row in ClickHouse reads."""
    if isinstance(stored, dict):
        labels, flat = [tuple(label) for label in stored["labels"]], stored["cells"]
        return {(slot + flat[j], *labels[flat[j + 1]]): flat[j + 2] for j in range(0, len(flat), 3)}
    return {tuple(c[:-1]) + (NO_ACTION,) * (CELL_WIDTH + 1 - len(c)): c[-1] for c in stored}


# what a store's decoder returns for a value not yet rebuilt into a detector's live object; a tuple
# made once: `isinstance(value, dict | list)` built a union object at every get
_JSON_CONTAINERS = (dict, list)


class Namespace:
    """One detector kind's keys in its partition's store (`kind` + SEP + key). A value comes back
    as the detector's live object: `load_value` rebuilds it from JSON once while it is cached."""

    def __init__(self, store: KeyedStore, kind: str, load: Callable[[Any], Any]):
        self.store, self.prefix, self.load = store, kind + SEP, load

    def get(self, key: str, default: Any = None) -> Any:
        full = self.prefix + key
        value = self.store.get(full, _MISSING)
        if value is _MISSING:
            return default
        if isinstance(value, _JSON_CONTAINERS):
            live = self.load(value)
            if live is not value:
                self.store.adopt(full, live)
            return live
        return value

    def put(self, key: str, value: Any) -> None:
        self.store.put(self.prefix + key, value)

    def put_cold(self, key: str, value: Any) -> None:
        self.store.put_cold(self.prefix + key, value)

    def setdefault(self, key: str, new: Callable[[], Any]) -> Any:
        """The key's live value, or `new()` put there first (a key's first event)."""
        value = self.get(key, _MISSING)
        if value is _MISSING:
            value = new()
            self.put(key, value)
        return value

    def touch(self, key: str) -> None:
        self.store.touch(self.prefix + key)

    def adopt(self, key: str, value: Any) -> None:
        """`value` is the live object of the key's stored value, read from parts of its own (a
        window's books, an incident's members): cached, not a change to write."""
        self.store.adopt(self.prefix + key, value)

    def delete(self, key: str) -> None:
        self.store.delete(self.prefix + key)

    def timers(self, prefix: str = "t:") -> TimerService:
        """A timer service whose keys live in this namespace, under `prefix`."""
        return TimerService(self.store, self.prefix + prefix)

    def items(self, prefix: str = "", start: str | None = None) -> Iterator[tuple[str, Any]]:
        n = len(self.prefix)
        low = self.prefix + start if start is not None else None
        for key, value in self.store.items(self.prefix + prefix, low):
            yield key[n:], self.load(value) if isinstance(value, _JSON_CONTAINERS) else value


class Task:
    """One detector kind on one partition number: its instance, keys, timers and clock."""

    def __init__(
        self, spec: DetectorSpec, store: KeyedStore, catalog: Catalog, refs: References, partition: int = 0
    ):
        self.spec, self.store = spec, store
        self.keys = Namespace(store, spec.kind, spec.cls.load_value)
        self.timers = self.keys.timers()
        self.detector: Detector = spec.new(self.keys)
        self.ctx = Context(catalog, refs, self.timers, partition=partition)
        self.stream_time = store.get(self._clock_key(), 0)
        # per input: the latest event time accepted from it (the aligned watermark's inputs)
        self.input_times: dict[str, int] = {s: store.get(self._clock_key(s), 0) for s in spec.inputs}
        # per re-keyed input: (source topic, partition) -> how far that source partition had read
        # when it last marked this partition of the repartition topic (Engine.mark)
        self.expected: dict[str, frozenset[tuple[str, int]]] = {}  # re-keyed input -> its source partitions
        self.channels: dict[str, dict[tuple[str, int], int]] = {
            s: {(t, p): time for t, p, time in store.get(self._clock_key(s) + SEP + CHANNELS, ())}
            for s in spec.inputs
        }

    def _clock_key(self, stream: str | None = None) -> str:
        key = ENGINE + "time" + SEP + self.spec.kind
        return key if stream is None else key + SEP + stream

    def accept(self, stream: str, newest: int) -> None:
        self.stream_time = max(self.stream_time, newest)
        self.input_times[stream] = max(self.input_times[stream], newest)

    def aligned(self, behind: Collection[str]) -> int:
        """The earliest event time among the inputs known to have more to read (`behind`), else
        the stream time: a timer fires only once every input that can still deliver an older
        event has passed it, as Flink's watermark is the minimum of its inputs'. An input that
        never delivered to this task holds nothing back, as Kafka Streams picks among the inputs
        with records: a re-keyed stream whose source lags may never reach this partition (and
        state from before these clocks were kept has none)."""
        times = [t for s in self.input_times if s in behind and (t := self._input_time(s)) is not None]
        return min(times) if times else self.stream_time

    def _input_time(self, stream: str) -> int | None:
        """How far an input has come (None: it holds nothing back). A direct input: the latest
        event time accepted from it, if it delivered any. A re-keyed input: the earliest of its
        source partitions' marks once each has marked this partition, whether or not any of its
        records came here; until then 0 (nothing fires) if records came, else nothing. A
        repartition topic mixes its source's partitions, each at its own pace (one read to its end
        while another is still mid-day), so its records' latest time says nothing of what is yet
        to come from the slower one; the marks do, as Flink's watermark after a shuffle is the
        least of its channels'."""
        delivered = self.input_times[stream]
        expected = self.expected.get(stream)
        if not expected:
            return delivered or None
        least = self._least_mark(stream, expected)
        if least is not None:
            return least
        return 0 if delivered else None

    def _least_mark(self, stream: str, sources: frozenset[tuple[str, int]]) -> int | None:
        """The earliest mark of `sources` on a re-keyed input, once each of them has marked (None
        before, or while every one is idle: `IDLE_MARK` holds nothing, as an idle Flink source).
        Those only: a saved mark of a source no longer feeding the topic (a raw-log topic taken out
        of the configuration) never moves again."""
        marks = self.channels[stream]
        if not sources <= marks.keys():
            return None
        return min((marks[s] for s in sources if marks[s] != IDLE_MARK), default=None)

    def foreign_marks(self, owned: Collection[tuple[str, int]]) -> int | None:
        """The earliest mark among the source partitions of its re-keyed inputs that another
        instance reads (not in `owned`); 0 (nothing fires) while one of them has not marked this
        partition yet, since it may still re-key anything here, as a source partition of this
        instance not read from yet holds at 0 (`Engine._held_by`); None: no such hold. What this
        instance reads it knows better; another's only by its marks. Two instances starting at
        once: one read its partitions to their end and judged a workstation's accesses on its own
        clock before the other had re-keyed the rest of them (a shared_workstation alert lost)."""
        if self.awaits_foreign(owned):
            return 0
        holds = [
            self._least_mark(stream, foreign)
            for stream, expected in self.expected.items()
            if (foreign := expected.difference(owned))
        ]
        return min((t for t in holds if t is not None), default=None)

    def awaits_foreign(self, owned: Collection[tuple[str, int]]) -> bool:
        """Whether a source partition of its re-keyed inputs that another instance reads has not
        marked this partition yet."""
        return any(
            not expected.difference(owned) <= self.channels[stream].keys()
            for stream, expected in self.expected.items()
        )

    def mark(self, stream: str, source: tuple[str, int], time: int) -> None:
        """A source partition's mark: how far it has read, or that it is idle (`IDLE_MARK`), which
        a time it marked before outranks."""
        marks = self.channels[stream]
        if time == IDLE_MARK:
            marks.setdefault(source, IDLE_MARK)
        elif time > marks.get(source, IDLE_MARK):
            marks[source] = time

    def save_clock(self) -> None:
        self.store.put(self._clock_key(), self.stream_time)
        for stream, t in self.input_times.items():
            self.store.put(self._clock_key(stream), t)
            if self.channels[stream]:
                marks = [[topic, p, time] for (topic, p), time in sorted(self.channels[stream].items())]
                self.store.put(self._clock_key(stream) + SEP + CHANNELS, marks)


class Applied(NamedTuple):
    """What applying reference records did (`Engine.apply_reference`)."""

    missed: list[int]  # per record dated before a watermark already passed: by how many ms
    alerts: list[Alert]  # what the detectors found judging again what those records changed


class StageProgress(NamedTuple):
    """How far the tasks of a detector have marked one partition of its stage (`Engine.stage_progress`)."""

    kind: str  # the detector
    partition: int  # the stage's
    waiting: tuple[int, ...]  # the partitions of the tasks that never marked it: it settles nothing
    slowest: tuple[int, ...]  # else those of the tasks with input at the least mark, the stage's watermark
    least: int | None  # that mark (None while some never marked, or none had input)
    lag_ms: int  # event time from the least mark of the tasks with input to their newest


def stage_mark(marks: dict[tuple[str, int], int], sources: frozenset[tuple[str, int]]) -> int | None:
    """The least mark of the tasks with input (`IDLE_MARK` is none's), once every task of `sources`
    has marked; None before, or while none has had input. A task that has had none is idle, as a
    Flink source is: it holds no one back, and rejoins the least with its first mark of a time."""
    if not sources <= marks.keys():
        return None
    return min((marks[s] for s in sources if marks[s] != IDLE_MARK), default=None)


def _progress(
    kind: str, partition: int, marks: dict[tuple[str, int], int], sources: frozenset[tuple[str, int]]
) -> StageProgress:
    """`StageProgress` of one stage partition from the marks it holds of its `sources`."""
    waiting = tuple(sorted(p for s, p in sources - marks.keys()))
    times = {p: marks[(s, p)] for s, p in sources & marks.keys() if marks[(s, p)] != IDLE_MARK}
    if not times:
        return StageProgress(kind, partition, waiting, (), None, 0)
    least = min(times.values())
    lag = max(times.values()) - least
    if waiting:
        return StageProgress(kind, partition, waiting, (), None, lag)
    return StageProgress(
        kind, partition, (), tuple(sorted(p for p, t in times.items() if t == least)), least, lag
    )


@dataclass(frozen=True)
class StageSpec(DetectorSpec):
    """A detector's second stage (`stage`: the stream and key its partials travel by): a task of
    its own on the partition its partials' key lands on, its namespace and timers apart from the
    detector's, its watermark the least of every task's of the detector (`Engine._stage_watermark`)."""

    @property
    def kind(self) -> str:
        return self.cls.kind + STAGE

    @property
    def inputs(self) -> dict[str, str]:
        stream, key = self.cls.stage
        return {stream: key}


class Engine:
    def __init__(
        self,
        specs: Sequence[DetectorSpec],
        catalog: Catalog,
        pseudonymize: Callable[[str], str],
        allowed_lateness_ms: int = 60_000,
        rollup_block: int = 10_000,
        state_dir: Path | None = None,
    ):
        """`state_dir` holds each partition's RocksDB store: a cache of its changelog, rebuilt
        from it after a restart; without one (a replay, a test) a temporary folder is used."""
        if state_dir is None:
            state_dir = Path(tempfile.mkdtemp(prefix="lifemon-state-"))
            weakref.finalize(self, shutil.rmtree, state_dir, True)
        self.state_dir = Path(state_dir)
        self.stores: dict[int, KeyedStore] = {}
        self.specs = list(specs)
        self.catalog: Catalog = catalog
        self._statement_fields = StatementFields(catalog, catalog.policy.table_columns)
        self._system_spelling = named_spelling(  # a system's names over another id spelled as one
            catalog.system_names, others=False, dressed=False
        )
        retention = catalog.policy.retention
        self._reversible = method_terms(retention.reversible_anonymization or ["\x00"])  # none: nothing
        self._erasing = frozenset(map(method_key, retention.erasing_methods))
        self._masking = method_terms(retention.masking_methods or ["\x00"])
        self._role_spelling = named_spelling(catalog.role_names, others=False)
        self._purpose_spelling = named_spelling(catalog.purpose_names)
        self._purpose_channel = channel_in_purpose(
            self._purpose_spelling,
            catalog.contact_purposes,  # what the bank contacts customers for: `wechat_payment` is no channel's
            {c.value: c.value for c in Channel} | ENUM_WORDS["Channel"],
        )
        self._refused_on_every_channel = frozenset(
            pid
            for pid in catalog.contact_purposes
            if catalog.purposes[pid].withdrawal_scope is WithdrawalScope.all_channels
        )
        organisation = catalog.policy.organisation
        self._employee_spelling = spelled_as(organisation.employee_id_form, within=True, bare=True)
        self._signer_spelling = spelled_as(organisation.employee_id_form, within=True)
        self._unit_of = organisation.unit_of()  # a department's org: the levels count no departments
        if hasattr(pseudonymize, "spell_ids_as"):  # a plain function (tests, tools) spells nothing
            pseudonymize.spell_ids_as(organisation.customer_id_form)
        self.pseudonymize = pseudonymize
        # a card or ID number inside a name the producer gave is sealed under the same key as the
        # pseudonyms (a plain function, in tests and tools, fingerprints through itself); then a
        # customer id of the bank's form there becomes its pseudonym
        self.names = DoorSeals(
            organisation.customer_id_form,
            pseudonymize,
            getattr(pseudonymize, "digest", lambda text: pseudonymize("number:" + text)),
            organisation.employee_id_form,
        )
        declared = catalog.policy.recipients.recipients
        recipient = declared_spelling(declared, self.names.text)
        self._transfer_ids = {
            "recipient_id": declared_spelling(
                declared,
                self.names.text,
                ((n, i) for i, r in declared.items() for n in r.also),  # its own names, not descriptions
            ),
            # a declared recipient passing data on (transfer_policy `onward_transfer`), by its id: a
            # sending system's name is the bank's own system's
            "sender_system": recipient,
            "contract_id": declared_spelling(
                (c.id for r in declared.values() for c in r.contracts), self.names.text
            ),
            "assessment_id": declared_spelling(
                (a.id for r in declared.values() for a in r.assessments), self.names.text
            ),
        }
        self.lateness = allowed_lateness_ms
        self.rollup_block = rollup_block
        self.org_tree = OrgTree(organisation.head_office, catalog.policy.org_changes_at())
        self.entitlements = EntitlementRegistry()  # the engine's own view: what it decided of versions
        # the customers stream's registry: how many customers it names bounds any count of the
        # bank's customers (`customers_named`)
        self.customers: AsOfRegistry[Any] = AsOfRegistry("customer_id")
        self.refs = References(
            entitlements=self.entitlements,
            consents=ConsentRegistry(catalog.contact_purposes),
            customers=self.customers,
            orgs=self.org_tree,
        )
        # what the detectors read: the same, with a merged outlet's orgs read as merged from its day
        self.judged_refs = self.refs
        if self.org_tree.merged:
            self.judged_refs = References(
                entitlements=MergedOrgs(self.entitlements, self.org_tree),
                consents=self.refs.consents,
                customers=MergedOrgs(self.refs.customers, self.org_tree),
                orgs=self.org_tree,
            )
        self.known_orgs: set[str] = set()
        # the SDK stream's extra rollup cells: one per distinct field, by (sdk, version, host, field)
        self._sdk_cells = (
            ("sdk_id", "app_version", "dest_host", "fields"),
            Labels(self._sdk_field_cell),
            SDK_LABEL_BUCKET_S,
        )
        self._rollup_labels: dict[str, RollupLabels] = {}  # stream -> its rollups' label caches
        self.tasks: dict[tuple[int, str], Task] = {}
        # partition -> its inputs with more to read, as the last `advance` was told
        self._behind: dict[int, set[str]] = {}
        # re-keyed inputs (stream, key) -> the source partitions (topic, partition) that feed their
        # repartition topic (set by the runtime), the latest event time read from each source
        # partition, and what the last `advance` found those still being read hold each input at
        self.repartition_sources: dict[tuple[str, str], frozenset[tuple[str, int]]] = {}
        self.source_times: dict[tuple[str, int], int] = {}
        self._saved_source_times: dict[tuple[str, int], int] = {}
        self._held: dict[tuple[str, str], int] = {}
        self._owned_sources: frozenset[tuple[str, int]] | None = None  # as the last `advance` was told
        # the stage after the detectors: leakage-class alerts grouped into incidents, per partition
        # number like the detectors whose alerts it reads (streams/incidents.py)
        self.incident_stages: dict[int, IncidentStage] = {}
        self.incident_groups: dict[str, list[str]] = defaultdict(list)  # group -> detectors feeding it
        for kind, group in catalog.policy.incidents.group_by.items():
            self.incident_groups[group].append(kind)
        self.incidents: dict[str, Revised] = {}  # newest revision per id, until `take_incidents`
        self.rollups: dict[tuple[str, int], PartitionRollup] = {}
        # topic -> its Kafka topic id (KIP-516), set by the runtime before a restore (`resume`);
        # a topic without one (a replay, a test, a broker without ids) counts under NO_TOPIC_ID
        self.topic_ids: dict[str, str] = {}
        # (topic, partition) -> the ids of earlier incarnations its restored state was counted under
        self.reincarnated: dict[tuple[str, int], set[str]] = {}
        # rows for the lifecycle dashboard, collected only where a runtime writes them at its checkpoint
        # (a replay has no table to fill, and would hold every deletion of months of history)
        self.deletions: DeletionLedger | None = None
        self.transfers: TransferLedger | None = None  # the transfer ledger's rows, likewise
        # (topic, partition) -> its newest event ids, as digests under a key of this process's
        self.seen_ids: dict[tuple[str, int], IdWindow] = {}
        self._dedupe_key = os.urandom(16)
        # whether a checkpoint saves the window's ids for a restore: a replay, which never
        # restores, keeps none (up to 250 000 strings a window between its checkpoints, a review's)
        self.saves_seen = True
        # of each source's ids in the store: its chunks' (sequence, ids), oldest first; and the last
        # chunk's ids while it is small (written again with the next checkpoint's)
        self._seen_chunks: dict[tuple[str, int], deque[tuple[int, int]]] = {}
        self._seen_tail: dict[tuple[str, int], list[str]] = {}
        # topic -> the name its duplicates are looked for under: a replay's files of one stream are
        # one stream's exports, which overlap (`lifemon replay`); a live topic is its own
        self.dedupe_as: dict[str, str] = {}
        self.duplicates: Counter = Counter()  # stream -> upstream duplicates dropped
        self.sections = {s.kind: s.section for s in self.specs}
        # (stream, key) -> the detectors that read the stream keyed so
        self.readers: dict[tuple[str, str], list[DetectorSpec]] = defaultdict(list)
        for spec in self.specs:
            for s, key in spec.inputs.items():
                self.readers[(s, key)].append(spec)
        # inputs keyed otherwise than their topic: the runtime re-keys them through repartition
        # topics; without one (a replay, a test) `process` re-keys them in place (`rekey_locally`)
        self.rekeyed = sorted(k for k in self.readers if k[1] != STREAM_KEYS[k[0]])
        # a re-keyed input carries only what its readers read: filtered before the repartition
        # topic, as a query planner pushes a filter below a shuffle (retention reads only the
        # accesses that name records, a few in a thousand: the rest would cross Kafka twice for nothing)
        self.needs = {at: self._needs(at) for at in self.rekeyed}
        self.rekey_locally = True
        # a detector reads the lifecycle by customer: a record's events that name none are given
        # the customer its other events named (`_owners`)
        self.by_customer = ("lifecycle", "subject_id") in self.readers
        # how long a deleted or anonymized record's entry is kept: as long as its readers remember
        # the record (`forget_deleted_days`); none of them says: until its destruction
        self.owners_kept_ms = DAY_MS * max(
            (
                getattr(s.params, "forget_deleted_days", 0)
                for s in self.readers.get(("lifecycle", "subject_id"), ())
            ),
            default=0,
        )
        self.owner_timers: dict[int, TimerService] = {}
        # the detectors whose clock ends those entries
        self.owner_readers = frozenset(s.kind for s in self.readers.get(("lifecycle", "subject_id"), ()))
        self._tied: list[Any] = []  # held lifecycle events the batch's named ones tied (`_owners`)
        # a detector whose findings span partitions hands partials to a second stage keyed otherwise
        # (retention's batches, by system: docs/architecture.md#roll-ups-across-partitions); what
        # its tasks handed on, for the runtime to send to the stage's repartition topic, in order
        self.stages = {
            s.kind: StageSpec(s.cls, s.section, s.params) for s in self.specs if hasattr(s.cls, "stage")
        }
        self.partials: list[tuple[str, Sequence[tuple[str, Any]]]] = []  # (kind, its (key, partial)s)

    def _needs(self, at: tuple[str, str]) -> tuple[str, ...]:
        """The attributes of which a record of re-keyed input `at` must carry one for some reader to
        read it; none: every record (a reader declares no `needs` for it)."""
        wanted = [spec.needs.get(at[0]) for spec in self.readers[at]]
        return () if None in wanted else tuple(sorted(set(wanted)))  # type: ignore[arg-type]

    def rekeyed_events(self, stream: str, key: str, events: Sequence[Any]) -> list[tuple[str, Any]]:
        """`rekey` for input (stream, key), leaving out what none of its readers reads. The lifecycle
        by customer also takes the events held until the batch named their customer (`_owners`),
        and those that name none yet, under `UNNAMED`: what a record's own event decides (another
        bank's card data stored, a destruction record's content) needs no customer, and a record
        no event ever ties to one (another bank's cardholder at the acquiring system) went unjudged."""
        if (stream, key) != ("lifecycle", "subject_id"):
            return rekey(key, events, self.needs.get((stream, key), ()))
        unnamed = [(UNNAMED, ev) for ev in events if not ev.subject_id]
        if self._tied:
            events, self._tied = [*events, *self._tied], []
        return rekey(key, events) + unnamed

    # -- input ----------------------------------------------------------------------------------
    def forget_reference(self, stream: str, keys: Iterable[str]) -> int:
        """Tombstones on a reference topic: their keys (an employee id; a customer's, pseudonymized
        here) have no record any more, as a compacted topic read from its start says (a probe's
        tombstoned employee stayed entitled live, and was unknown after a restart). Returns how
        many keys the registry held."""
        if stream == "entitlements":  # sealed, then spelled, as the records' ids are (`apply_reference`)
            forgotten = {self._employee_spelling(self.names.text(k)) for k in keys}
        else:
            forgotten = {self.pseudonymize(k) for k in keys}
        registry: AsOfRegistry[Any] = getattr(self.refs, stream)
        return registry.forget(forgotten)

    def apply_reference(self, stream: str, records: Sequence[Any]) -> Applied:
        """The records applied to their as-of registry. Returns, for each one dated before a
        watermark some task has already passed, by how many ms it missed it: what that task judged
        between the record's time and its watermark did not see it (docs/operations.md#late-reference-data);
        and the alerts of the detectors that judge again what such records change
        (`on_late_reference`)."""
        judged = max((t.ctx.watermark for t in self.tasks.values()), default=0)  # 0: nothing yet
        missed = [judged - r.ts for r in records if r.ts <= judged] if judged > 0 else []
        registry: AsOfRegistry[Any] = getattr(self.refs, stream)
        placed: list[tuple[str, Any, Any]] = []  # records of earlier batches placed in the org tree again
        self._pseudonymize(stream, records)
        if stream == "consents":
            fold(records, "purpose", self._purpose_spelling)
            records = self._channels_of_consents(records)
        elif stream == "entitlements":
            fold(records, "actor_id", self._employee_spelling)
            fold_lists(records, "roles", self._role_spelling)
            approvals = [a for r in records for a in r.approvals]
            fold(approvals, "approver_id", self._signer_spelling)
            fold(approvals, "purpose", self._purpose_spelling)
            fold_lists(approvals, "categories", self.catalog.scope_spelling)
            fold_lists(approvals, "fields", self.catalog.field_spelling)
            for a in approvals:
                a.systems = [self._system_spelling(s) or s for s in a.systems]
        if stream != "consents":
            fold(records, "org_id", self._org_spelling)
            fold_lists(records, "org_path", self._org_spelling)
            placed = self.org_tree.place(stream, records)
            for r in records:
                self.known_orgs.update(r.org_path, (r.org_id,))
        if stream == "entitlements":  # its orgs compared as spelled and placed above
            at_new_post(records, self.entitlements)
        news = self._news(registry, records)
        for r in records:
            registry.put(r)
        for s, was, now in placed:
            placed_in: AsOfRegistry[Any] = getattr(self.refs, s)
            if placed_in.as_of(placed_in.key_of(was), was.ts) is was:  # not since replaced
                placed_in.put(now)
        if stream != "consents":
            for labels in self._rollup_labels.values():
                labels.orgs.clear()  # an org labelled `other` may be known now
        return Applied(missed, self._late_reference(stream, news) if news else [])

    def _channels_of_consents(self, consents: Sequence[Any]) -> list[Any]:
        """The consents with the channels they speak for. One whose purpose names its channel too
        (`channel_in_purpose`) is for that purpose, on that channel where the record names none: the
        platform scoped it so. A withdrawal whose purpose names none, logged on a channel, is the
        customer's refusal of the purpose where its `withdrawal_scope` is `all_channels`: a refusal
        on every channel, each its own record, so an opt-in on one channel later reopens that one
        alone and a bundled re-acceptance none (seed 004 流程描述(4)②: 在客户明确表示拒绝接受营销的
        情况下, 应当立即停止利用; a probe's customers who refused by SMS, by calling 95526 or in the
        app were marketed to on WeChat and by phone unseen). Each derived record names the channel
        the refusal was said on (`said_elsewhere`), for the alert. The records said on each channel
        come after those derived, so one at the same time is the channel's word."""
        derived: list[Any] = []
        for c in consents:
            if c.purpose not in self.catalog.purposes and (split := self._purpose_channel(c.purpose)):
                c.purpose = split[0]
                c.channel = c.channel or Channel(split[1])
            elif (
                c.channel is not None
                and c.status is not ConsentStatus.granted
                and c.purpose in self._refused_on_every_channel
            ):
                derived += [said_elsewhere(c, ch) for ch in Channel if ch != c.channel]
        return [*derived, *consents]

    def _news(self, registry: AsOfRegistry[Any], records: Sequence[Any]) -> list[tuple[Any, Any]]:
        """(record, the version it replaces at its own time or None) of the records a detector may
        judge again by (`on_late_reference`): dated at or before the latest event time of a task
        that does, and not already the version in force then (a nightly export that sends every
        customer again, each with its valid-from time, changes nothing and judges nothing again).
        Asked before the records go in: a correction at the same time replaces what it corrects."""
        read = max(
            (t.stream_time for t in self.tasks.values() if hasattr(t.detector, "on_late_reference")),
            default=0,
        )
        news = []
        for r in records:
            if r.ts <= read and (was := registry.as_of(registry.key_of(r), r.ts)) != r:
                news.append((r, was if was is not None and was.ts == r.ts else None))
        return news

    def _late_reference(self, stream: str, records: Sequence[tuple[Any, Any]]) -> list[Alert]:
        """Each task's detector that judges again (`on_late_reference`) gets the records dated at
        or before the latest event time it has read, once they are in the registry: its watermark
        may have been past them before and moved back since (a quiet partition followed the
        instance clock, then its own records came)."""
        alerts: list[Alert] = []
        said: set[tuple[str, int]] = set()  # a notice about the record itself, which every task gives
        for (partition, _), task in self.tasks.items():
            again = getattr(task.detector, "on_late_reference", None)
            if again is None:
                continue
            late = [(r, was) for r, was in records if r.ts <= task.stream_time]
            if late:
                found = [f for f in again(stream, late, task.ctx) if (f.alert_id, f.revision) not in said]
                said.update((f.alert_id, f.revision) for f in found)
                alerts += self._alerts(found, partition)
        return alerts

    def process(
        self, stream: str, topic: str, partition: int, decoded: Sequence[tuple[RawRecord, Any]]
    ) -> list[Alert]:
        """One partition's decoded events of a stream's own topic, in offset order."""
        events = self.ingest(stream, topic, partition, decoded)
        alerts = self.feed(stream, STREAM_KEYS[stream], partition, events)
        if self.rekey_locally:
            for s, key in self.rekeyed:
                if s == stream:
                    alerts += self.feed(
                        s, key, partition, [ev for _, ev in self.rekeyed_events(s, key, events)]
                    )
        return alerts

    def ingest(
        self, stream: str, topic: str, partition: int, decoded: Sequence[tuple[RawRecord, Any]]
    ) -> list[Any]:
        """What every record of a source topic goes through once, whoever reads it: customer ids
        pseudonymized, duplicates dropped, counted in the rollups. Returns the events."""
        events = list(map(itemgetter(1), decoded))
        if events:
            newest = _newest(events)
            if newest > self.source_times.get((topic, partition), 0):
                self.source_times[(topic, partition)] = newest
            self._pseudonymize(stream, events)
            # after the seals: the dedupe window goes into the checkpoint, and an event id may hold a
            # card number or a customer id (the copies of an event are sealed alike)
            decoded = self._first_deliveries(stream, topic, partition, decoded)
            events = list(map(itemgetter(1), decoded))
            if not events:
                return events
            if stream == "marketing":
                _no_placeholders(events, ("approver_id",), _NO_PERSON)
            # the folds' columns read at once (`fold_columns`): each fold takes its own, once
            columns = fold_columns(stream)
            seen = dict(zip(columns, _door.distinct_each(events, columns), strict=True))
            for attr in EMPLOYEE_ATTRS.get(stream, ()):
                fold(events, attr, self._employee_spelling, seen.pop((attr, False), None))
            for attr in SIGNER_ATTRS.get(stream, ()):
                fold(events, attr, self._signer_spelling, seen.pop((attr, False), None))
            if stream in PURPOSE_STREAMS:
                fold(events, "purpose", self._purpose_spelling, seen.pop(("purpose", False), None))
            if stream in SYSTEM_ATTR:
                fold(
                    events,
                    SYSTEM_ATTR[stream],
                    self._system_spelling,
                    seen.pop((SYSTEM_ATTR[stream], False), None),
                )
            if stream == "transfer":
                _no_placeholders(events, ("contract_id", "assessment_id", "approval_id"))
                for attr, respell in self._transfer_ids.items():
                    fold(events, attr, respell)
            names = seen.pop((FIELD_LISTS[stream], True), None) if stream in FIELD_LISTS else None
            if stream == "access":  # its field names as read_statements left them: one set for both
                names = read_statements(events, self._statement_fields.read, names)
            if stream in FIELD_LISTS:
                fold_lists(events, FIELD_LISTS[stream], self.catalog.field_spelling, names)
            for attr in ORG_ATTRS.get(stream, ()):
                fold(events, attr, self._org_spelling, seen.pop((attr, False), None))
            for attr in ORG_LISTS.get(stream, ()):
                fold_lists(events, attr, self._org_spelling, seen.pop((attr, True), None))
            if stream in ORG_ATTRS:  # after the spelling: a merged outlet's id as the policy writes it
                self.org_tree.merge_events(events, ORG_ATTRS[stream], ORG_LISTS.get(stream, ()))
            if stream == "access" and any(map(_RECORD_IDS, events)):
                _rows_named(events)
            if stream == "lifecycle":
                self._pseudonymized_only(events)
            if stream == "lifecycle" and self.by_customer:
                self._tied = self._owners(partition, events)
            self._rollup(stream, topic, partition, decoded, events)
            if stream == "lifecycle" and self.deletions is not None:
                self.deletions.add(events)
            if stream == "transfer" and self.transfers is not None:
                classes = self._labels(stream, ROLLUP_DIMENSIONS[stream][1]).coverage
                self.transfers.add(events, lambda fields: classes[fields][0])
        return events

    def _pseudonymized_only(self, events: Sequence[Any]) -> None:
        """An `anonymize` whose method only encrypts or hashes (retention.yaml
        `reversible_anonymization`, and no erasing term: a key destroyed erases) leaves the record
        held: read as a `store`. A probe's CRM "anonymized" on request with AES-256加密, and the
        request counted answered, the location trace removed in time. So does one that masks
        (`masking_methods`, not said undone), whatever erasure it names beside: what the mask
        leaves still names the customer (seed 004 流程描述(4)⑤: 脱敏 covers 去标识化; a probe's 脱敏处理
        and 掩码 answered deletion requests)."""
        for ev in events:
            if ev.stage is LifecycleStage.anonymize and ev.method:
                key = method_key(ev.method)
                # a key said not destroyed (未销毁密钥, crypto-shred skipped) erases nothing
                if affirms(key, self._masking) or (
                    self._reversible.search(key) and not erases(key, self._erasing)
                ):
                    ev.stage = LifecycleStage.store

    def _owners(self, partition: int, events: Sequence[Any]) -> list[Any]:
        """A lifecycle event that names its record but not the customer gets the customer the
        record's earlier events named: a deletion system that logs only the record id would
        otherwise never reach the detectors keyed by customer, and the customer's request stayed
        overdue (a probe's timely purge was an open high alert). The lifecycle topic is keyed by
        record, so a record's events share a partition and its index entry travels with the
        partition's state; one key per record, on disk. An entry ends with its record's destruction,
        or `forget_deleted_days` after its deletion or anonymization, when its readers have
        forgotten the record (a soak's entries of deleted records grew a quarter of the records a
        day, for ever); a record collected anew under its id after its removal keeps it until its
        next removal.
        An event read before any that names its customer (a replay reads separate files side by
        side; a late backfill) is held, and returned, its customer named, once one is: the customer
        side then gets it as any late lifecycle event, so the order of arrival does not decide."""
        store = self.store(partition)
        tied: list[Any] = []
        for ev in events:
            if not (rid := ev.record_id):
                continue
            key = OWNERS + rid
            known = store.get(key)  # the customer, or the events held until one is named
            if not ev.subject_id:
                if isinstance(known, str):
                    ev.subject_id = known
                elif len(known or ()) < HELD_PER_RECORD:
                    store.put(key, [*(known or ()), msgspec.to_builtins(ev)])
            elif isinstance(known, str) and ev.stage in _ASKED_BY_ANYONE:
                # a request is about the record's customer, whoever filed it: an agent's request
                # logged under the agent's own customer number stayed overdue after the record's
                # timely deletion (a probe's), and moved the record to the agent
                ev.subject_id = known
            elif known != ev.subject_id:
                if isinstance(known, list):
                    tied += [msgspec.convert(h | {"subject_id": ev.subject_id}, type(ev)) for h in known]
                store.put(key, ev.subject_id)
            if ev.stage is LifecycleStage.destroy and ev.subject_id:
                store.delete(key)
                store.delete(OWNERS_DUE + rid)
            elif ev.stage in _REMOVED and ev.subject_id and self.owners_kept_ms:
                due = ev.ts + self.owners_kept_ms
                if due > (store.get(OWNERS_DUE + rid) or 0):  # a later removal keeps it longer
                    store.put(OWNERS_DUE + rid, due)
                    self._owner_timers(partition).register(rid, due)
            elif ev.stage is LifecycleStage.collect and store.get(OWNERS_DUE + rid) is not None:
                store.delete(OWNERS_DUE + rid)  # collected anew: held again, until its next removal
        return tied

    def _owner_timers(self, partition: int) -> TimerService:
        found = self.owner_timers.get(partition)
        if found is None:
            found = self.owner_timers[partition] = TimerService(self.store(partition), OWNERS_TIMERS)
        return found

    def _forget_owners(self, partition: int, watermark: int) -> None:
        """The entries of records removed `forget_deleted_days` before the watermark end (`_owners`)."""
        store = self.store(partition)
        for rid, deadline in self._owner_timers(partition).due(watermark):
            due = store.get(OWNERS_DUE + rid)
            if due is not None and due <= deadline:  # none: destroyed, or collected anew since
                store.delete(OWNERS + rid)
                store.delete(OWNERS_DUE + rid)

    def process_rekeyed(
        self, stream: str, key: str, topic: str, partition: int, decoded: Sequence[tuple[RawRecord, Any]]
    ) -> list[Alert]:
        """Events of a repartition topic (already ingested at their source): to the detectors
        that read `stream` keyed by `key`. One event fanned out to several keys is one record per
        key, so a duplicate is the same event id with the same key."""
        decoded = self._first_deliveries(stream, topic, partition, decoded, key)
        return self.feed(stream, key, partition, [ev for _, ev in decoded])

    def mark(self, stream: str, key: str, partition: int, marks: Iterable[tuple[str, int, int]]) -> None:
        """Marks read from a repartition topic's partition: (source topic, source partition,
        latest event time read from it when it re-keyed what precedes the mark), to the tasks
        that read `stream` keyed by `key` there (`Task._input_time`)."""
        specs = self.readers.get((stream, key), ())
        for topic, source, time in marks:
            for spec in specs:
                self.task(partition, spec).mark(stream, (topic, source), time)

    def feed(self, stream: str, key: str, partition: int, events: Sequence[Any]) -> list[Alert]:
        """Events keyed by `key` to the tasks on `partition` that read them so."""
        if not events:
            return []
        newest = _newest(events)
        findings: list[Finding] = []
        for spec in self.readers.get((stream, key), ()):
            task = self.task(partition, spec)
            task.accept(stream, newest)
            task.ctx.watermark = (
                self._held_at(task, task.aligned(self._behind.get(partition, ()))) - self.lateness
            )
            findings.extend(task.detector.process(stream, events, task.ctx))
            self._hand_on(task)
        return self._alerts(findings, partition)

    # -- second stages ----------------------------------------------------------------------------
    def _hand_on(self, task: Task) -> None:
        """What a task's detector hands its second stage after a pass (`partials`): for the runtime
        to send through the stage's repartition topic, once it has told the stage's sources (the
        tasks that mark it), or else, in one process, to the stage in place (all on partition 0:
        one process holds every task of the detector)."""
        stage = self.stages.get(task.spec.kind)
        if stage is None:
            return
        handed = task.detector.partials(task.ctx)  # type: ignore[attr-defined]
        if handed and stage.cls.stage in self.repartition_sources:
            self.partials.append((task.spec.kind, handed))
        elif handed:
            self.process_partials(task.spec.kind, 0, [value for _, value in handed])

    def process_partials(
        self, kind: str, partition: int, partials: Sequence[Any], marks: Iterable[tuple[str, int, int]] = ()
    ) -> None:
        """Partials of detector `kind` and the marks of its tasks (source kind, source partition,
        watermark), as its stage's repartition topic's `partition` carries them, to that stage."""
        stage = self.task(partition, self.stages[kind])
        if partials:
            stage.detector.on_partials(partials, stage.ctx)  # type: ignore[attr-defined]
        (stream,) = stage.spec.inputs
        for source, p, time in marks:
            if time == IDLE_MARK:  # its task never had input: what it marked before followed a clock
                stage.channels[stream][(source, p)] = IDLE_MARK
            else:
                stage.mark(stream, (source, p), time)

    def _stage_watermark(self, stage: Task) -> int | None:
        """How far every task of the stage's detector has come, and handed on what it found by then:
        the least of their marks once each has marked, a task that never had input holding nothing
        (live: `stage_mark`), or of their watermarks (one process). None: not known yet, nothing is
        settled."""
        (stream,) = stage.spec.inputs
        expected = stage.expected.get(stream)
        if expected:
            return stage_mark(stage.channels[stream], expected)
        return min(
            (t.ctx.watermark for (_, k), t in self.tasks.items() if k == stage.spec.cls.kind), default=None
        )

    def stage_progress(self) -> list[StageProgress]:
        """Each stage partition here whose sources a runtime told: which of its detector's tasks
        hold it back, and by how much event time (the runtime says so: streams/stage_watch.py)."""
        found = []
        for (partition, _), stage in sorted(self.tasks.items()):
            if isinstance(stage.spec, StageSpec):
                (stream,) = stage.spec.inputs
                if expected := stage.expected.get(stream):
                    found.append(_progress(stage.spec.cls.kind, partition, stage.channels[stream], expected))
        return found

    def _pseudonymize(self, stream: str, records: Sequence[Any]) -> None:
        """Customer ids become keyed HMAC pseudonyms before any detector or registry sees them,
        looked up in the pseudonymizer's cache by one C loop over the batch (streams/_door.c);
        only an id not cached yet calls the pseudonymizer. A card, resident ID or mobile number
        in a name a producer chose is sealed, and a customer id of the bank's form there becomes
        its pseudonym (streams/personal_numbers.py `NAMES`)."""
        cache = getattr(self.pseudonymize, "cache", None)  # a plain function (tests, tools) has none
        records = records if isinstance(records, list) else list(records)
        # the same loop hands back the few records whose customers need `_named_subjects`
        blank = self._blank if stream in LIST_SUBJECTS or stream in UNNAMED_SUBJECTS else None
        for attr in SUBJECT_FIELDS.get(stream, ()):
            named = _door.pseudonymize(
                records, attr, {} if cache is None else cache, self.pseudonymize, blank
            )
            if named:
                self._named_subjects(stream, named, attr)
        _spell_record_ids(stream, records)
        self.names.records(stream, records)

    def _named_subjects(self, stream: str, records: list[Any], attr: str) -> None:
        """A list of customers names each once, and a blank entry none: a probe's print of one own
        customer logged as `["C0000002", "c0000002 "]` (or with `""` beside it) was two customers,
        a take-out, not that customer's copy. A blank customer id of a record that may name none is
        none (every such record had been one customer's). After pseudonymizing, which spells them
        alike. `records`: those the pseudonymizing loop found holding more than one or the blank one."""
        blank = self._blank
        if stream in LIST_SUBJECTS:
            for r in records:
                ids = getattr(r, attr)
                if len(ids) > 1 or (ids and ids[0] == blank):
                    setattr(r, attr, [i for i in dict.fromkeys(ids) if i != blank])
        elif stream in UNNAMED_SUBJECTS:
            for r in records:
                if getattr(r, attr) == blank:
                    setattr(r, attr, None)

    @cached_property
    def _blank(self) -> str:
        """The pseudonym an empty (or blank) customer id would get."""
        return self.pseudonymize("")

    def _org_spelling(self, org: str) -> str | None:
        """An org id as every feed's is compared (`code_form`: HR's `s0101` is the customers feed's
        S0101), a department as its org (organisation.yaml `department_form`: HO_RETAIL is HO, at the
        head office's level: a probe's head-office advisor in 总行零售银行部 saw as a branch, and its
        department head's approvals covered no sub-branch); None: already so. In a path, a
        department's org takes its place, and is listed once."""
        spelled = code_form(org)
        if self._unit_of is not None:
            spelled = self._unit_of(spelled)
        return spelled if spelled != org else None

    def _first_deliveries(
        self,
        stream: str,
        topic: str,
        partition: int,
        decoded: Sequence[tuple[RawRecord, Any]],
        key: str | None = None,
    ) -> Sequence[tuple[RawRecord, Any]]:
        """Drop upstream duplicates (the same event_id and time delivered again at another
        offset): a shipper's retry must not count twice. An id alone is no event's: two systems
        numbering their logs from one counter repeat it (a probe's CRM harvest was dropped as core
        banking's day). A duplicate lands in the same partition (same key), so one bounded set of
        recent ids per partition catches it. On a repartition topic the id is the event's with its
        key (an event fanned out to several customers is one per key)."""
        scope = (self.dedupe_as.get(topic, topic), partition)
        ids = (
            None
            if key is None
            else [f"{ev.event_id}{SEP}{ev.ts}{SEP}{_one(getattr(ev, key))}" for _, ev in decoded]
        )
        kept, dropped = self._window(scope).first(list(decoded), ids)  # one C loop (streams/_ids.c)
        if dropped:
            self.duplicates[stream] += dropped
        return kept

    def _window(self, scope: tuple[str, int]) -> IdWindow:
        window = self.seen_ids.get(scope)
        if window is None:
            window = self.seen_ids[scope] = IdWindow(
                DEDUP_IDS_PER_TOPIC_PARTITION, self._dedupe_key, keeps_fresh=self.saves_seen
            )
        return window

    def _save_seen(self, partition: int, store: KeyedStore) -> None:
        """The ids first delivered since the last checkpoint, to the partition's state: after a
        restart or a rebalance, a retry of an event read before is still a duplicate (a probe's
        1 500 events sent again after a restart counted twice: 7 of 56 alerts changed). Chunks
        past the window's bound (DEDUP_IDS_PER_TOPIC_PARTITION) are deleted, oldest first."""
        small = min(SEEN_SMALL, SEEN_CHUNK)
        for scope, window in self.seen_ids.items():
            if scope[1] != partition or not (new := window.take_fresh()):
                continue
            chunks = self._seen_chunks.setdefault(scope, deque())
            tail = self._seen_tail.pop(scope, None)
            if tail:  # a quiet one's last chunk grows (what the window no longer holds left out)
                seq, _ = chunks.pop()
                new = (tail + new)[-DEDUP_IDS_PER_TOPIC_PARTITION:]
            else:
                seq = chunks[-1][0] + 1 if chunks else 0
            for i in range(0, len(new), SEEN_CHUNK):
                part = new[i : i + SEEN_CHUNK]
                store.put_cold(f"{SEEN}{scope[0]}{SEP}{seq:012d}", part)
                chunks.append((seq, len(part)))
                seq += 1
            if len(part) < small:
                self._seen_tail[scope] = part
            total = sum(n for _, n in chunks)
            while total - chunks[0][1] >= DEDUP_IDS_PER_TOPIC_PARTITION:
                old, n = chunks.popleft()
                total -= n
                store.delete(f"{SEEN}{scope[0]}{SEP}{old:012d}")

    def _load_seen(self, partition: int, store: KeyedStore) -> None:
        """The dedupe window as the last checkpoint left it (`_save_seen`), in the order first seen."""
        last: dict[tuple[str, int], list[str]] = {}
        for key, ids in list(store.items(SEEN)):
            name, _, seq = key.removeprefix(SEEN).rpartition(SEP)
            scope = (name, partition)
            self._window(scope).add_saved(ids)
            self._seen_chunks.setdefault(scope, deque()).append((int(seq), len(ids)))
            last[scope] = ids
        for scope, ids in last.items():
            if len(ids) < min(SEEN_SMALL, SEEN_CHUNK):
                self._seen_tail[scope] = list(ids)

    # -- time -----------------------------------------------------------------------------------
    def clock(self) -> int:
        """The instance clock: the latest stream time of any task here."""
        return max((t.stream_time for t in self.tasks.values()), default=0)

    def advance(
        self,
        caught_up: Collection[tuple[str, int]] = (),
        final: bool = False,
        clock: int | None = None,
        behind: Collection[tuple[str, int]] = (),
        sources_behind: Collection[tuple[str, int]] = (),
        sources_owned: Collection[tuple[str, int]] | None = None,
    ) -> list[Alert]:
        """Fire the timers each task's watermark has passed. `caught_up` holds the (stream,
        partition) inputs with nothing left to read: a task whose inputs all are follows the
        instance clock, or `clock` if that is earlier (the live runtime passes the clock as it
        stood a few seconds ago). `behind` holds those known to have more: a task's watermark
        waits for the earliest of them (`Task.aligned`). `sources_behind` holds the (topic,
        partition) of source topics with more to read: a re-keyed input waits for the earliest
        event time read from those that feed it (`_held_at`). `final` (end of a finite input)
        advances every task to the last event time. `sources_owned` (the live runtime's source
        partitions): a re-keyed input fed by source partitions another instance reads waits for
        their marks, caught up or not (`Task.foreign_marks`); without it (an idle exit, a replay,
        a test) no other instance is waited for."""
        clock = self.clock() if clock is None else min(clock, self.clock())
        self._owned_sources = None if sources_owned is None else frozenset(sources_owned)
        self._behind = defaultdict(set)
        for s, p in behind:
            self._behind[p].add(s)
        self._held = self._held_by(sources_behind)
        findings: dict[int, list[Finding]] = defaultdict(list)
        watermarks: dict[int, dict[str, int]] = defaultdict(dict)  # partition -> detector -> watermark
        for (p, kind), task in list(self.tasks.items()):  # a task's partials may open its stage's
            if isinstance(task.spec, StageSpec):
                continue  # after every task of its detector, whose partials it settles
            if final:
                wm = clock
            elif all((s, p) in caught_up for s in task.spec.inputs):
                wm = self._held_at(task, max(task.stream_time, clock)) - self.lateness
            else:
                wm = self._held_at(task, task.aligned(self._behind.get(p, ()))) - self.lateness
            task.ctx.watermark = watermarks[p][kind] = wm
            for key, deadline in task.timers.due(wm):
                findings[p].extend(task.detector.on_timer(key, deadline, task.ctx))
            self._hand_on(task)
        for (p, _), task in list(self.tasks.items()):
            if isinstance(task.spec, StageSpec) and (settled := self._stage_watermark(task)) is not None:
                task.ctx.watermark = settled
                for key, deadline in task.timers.due(settled):
                    findings[p].extend(task.detector.on_timer(key, deadline, task.ctx))
        alerts = [a for p, found in findings.items() for a in self._alerts(found, p)]
        for p, marks in watermarks.items():
            clocks = [wm for kind, wm in marks.items() if kind in self.owner_readers]
            if clocks and self.owners_kept_ms:
                self._forget_owners(p, min(clocks))
        # an incident closes on the clock of the detectors whose alerts it groups, the slowest of
        # them on the partition: their own timers have closed those alerts by then
        for p, marks in watermarks.items():
            stage = self.incident_stage(p)
            for group, timers in stage.timers.items():
                clocks = [marks[k] for k in self.incident_groups.get(group, ()) if k in marks]
                for key, deadline in timers.due(min(clocks)) if clocks else ():
                    self._incident_revisions(stage.on_timer(key, deadline, min(clocks)))
        return alerts

    def _held_by(self, sources_behind: Collection[tuple[str, int]]) -> dict[tuple[str, str], int]:
        """Per re-keyed input, the earliest event time read so far from the source partitions that
        feed it and still have records to read. Any partition of the source may re-key a record
        into any task, so a task reading the input is no further on than that, as Flink's watermark
        after a shuffle is the minimum over every upstream partition. A source partition not read
        from yet holds its inputs at 0: at a start, the lifecycle history it holds would otherwise
        arrive after the accesses had moved the watermark on, and a timer judged without it cannot
        be judged again (a lost alert: the retention and deleted-record fixes, 6cc709b, 9c47a01)."""
        held: dict[tuple[str, str], int] = {}
        for topic, p in sources_behind:
            t = self.source_times.get((topic, p), 0)
            for rekeyed, sources in self.repartition_sources.items():
                if (topic, p) in sources and t < held.get(rekeyed, t + 1):
                    held[rekeyed] = t
        return held

    def _held_at(self, task: Task, time: int) -> int:
        """`time`, or earlier where a re-keyed input of the task is held by its sources (`_held_by`)."""
        if self._owned_sources is not None and task.expected:
            foreign = task.foreign_marks(self._owned_sources)
            if foreign is not None and foreign < time:
                time = foreign
        if not self._held:
            return time
        return min([time, *(self._held[k] for k in task.spec.inputs.items() if k in self._held)])

    def prune_references(self, history_ms: int) -> int:
        """Forget reference versions superseded more than `history_ms` before the instance clock:
        reference memory follows the keys, not their history. Returns how many were dropped."""
        clock = self.clock()
        if not clock:
            return 0
        registries = (self.refs.entitlements, self.refs.consents, self.refs.customers)
        return sum(r.prune(clock - history_ms) for r in registries)  # type: ignore[attr-defined]

    def drain(self) -> list[Alert]:
        """End of a finite input: every task reaches the last event time seen (never infinity: a
        record still inside its retention at the end of the input must not fire). A timer that
        firing registers at or before that time fires too (transfers released from an inbox open
        a volume period already over): passes repeat until none is due."""
        alerts = self.advance(final=True)
        clock = self.clock()
        for _ in range(DRAIN_PASSES):
            due = (t.timers.next_deadline() for t in self.tasks.values())
            if not any(d is not None and d <= clock for d in due):
                break
            alerts += self.advance(final=True)
        return alerts

    def awaiting_first_marks(self) -> bool:
        """Whether a detector's task here waits for the first mark of a source partition another
        instance reads (`Task.awaits_foreign`; the sources this instance owns as the last `advance`
        was told): that instance has read nothing of it yet (it restores, or joined late), and an
        end of input here would judge without what it is still to re-key here (`Monitor.finished`).
        A stage's tasks wait for their detector's, which the final drain settles."""
        owned = self._owned_sources
        return owned is not None and any(
            not isinstance(task.spec, StageSpec) and task.awaits_foreign(owned)
            for task in self.tasks.values()
        )

    # -- tasks ----------------------------------------------------------------------------------
    def task(self, partition: int, spec: DetectorSpec) -> Task:
        found = self.tasks.get((partition, spec.kind))
        if found is None:
            found = self.tasks[(partition, spec.kind)] = Task(
                spec, self.store(partition), self.catalog, self.judged_refs, partition
            )
            found.expected = {
                s: self.repartition_sources[(s, key)]
                for s, key in spec.inputs.items()
                if (s, key) in self.repartition_sources
            }
        return found

    def store(self, partition: int) -> KeyedStore:
        found = self.stores.get(partition)
        if found is None:
            found = self.stores[partition] = self._new_store(partition)
            self._check_pseudonym_version(partition, found)  # empty: records the key version
        return found

    def _alerts(self, findings: list[Finding], partition: int) -> list[Alert]:
        built = [build_alert(self._with_org(f), self.sections[f.detector]) for f in findings]
        alerts = latest(built)
        if findings:
            newest = {a.alert_id: a for a in alerts}
            pairs = [(f, a) for f, a in zip(findings, built, strict=True) if newest[a.alert_id] is a]
            self._incident_revisions(self.incident_stage(partition).observe(pairs))
        return alerts

    def _with_org(self, finding: Finding) -> Finding:
        """An employee's alert names the employee's org, as the entitlements stream has it when the
        finding was last seen, where its detector did not (a probe's destruction record signed by
        E000022 named no org, and the overview's panel of orgs missed its alert)."""
        if finding.actor_org is None and finding.actor_id and actor_kind(finding) == "employee":
            ent = self.judged_refs.entitlements.as_of(finding.actor_id, finding.last_seen)
            finding.actor_org = ent.org_id if ent is not None else None
        return finding

    # -- incidents ------------------------------------------------------------------------------
    def incident_stage(self, partition: int) -> IncidentStage:
        found = self.incident_stages.get(partition)
        if found is None:
            keys = Namespace(self.store(partition), INCIDENTS, lambda value: value)
            found = self.incident_stages[partition] = IncidentStage(
                self.catalog.policy.incidents, self.catalog, keys
            )
        return found

    def _incident_revisions(self, revised: Iterable[Revised]) -> None:
        for r in revised:
            known = self.incidents.get(r.incident_id)
            if known is None or r.revision >= known.revision:
                self.incidents[r.incident_id] = r

    def take_incidents(self) -> list[Incident]:
        """Incident revisions since the last call, newest per id, drafted now: the runtime writes
        them to `pfi.incidents` at its checkpoint, before it commits."""
        out, self.incidents = [r.incident() for r in self.incidents.values()], {}
        return out

    def count_gaps(
        self, stream: str, topic: str, partition: int, gaps: Sequence[tuple[int, int, str, str]]
    ) -> None:
        """Objects a raw log names that the source mapping lacks, (offset, event time, kind, name):
        counted in the same replay-safe rollups as unknown field ids, stream `coverage_gap`, with the
        kind as class and the name as org (the `coverage_gaps` view reads them). Names come from
        the source mapping's vocabulary (tables, logins, accounts), not from a record's values."""
        roll = self._partition_rollup(topic, partition)
        by_block: dict[int, Counter] = defaultdict(Counter)
        for offset, ts, kind, name in gaps:
            name = self.names.text(name)  # a folder or table named after a card is still the log's
            by_block[offset // roll.block_size][
                (ts // 60_000 * 60, COVERAGE_GAP, kind, name, stream, NO_ACTION)
            ] += 1
        for block, counted in by_block.items():
            roll.add(block, counted, counted.total())

    def _partition_rollup(self, topic: str, partition: int) -> PartitionRollup:
        roll = self.rollups.get((topic, partition))
        if roll is None:
            roll = self.rollups[(topic, partition)] = PartitionRollup(
                self.rollup_block, self.topic_ids.get(topic, NO_TOPIC_ID)
            )
        return roll

    def _rollup(
        self,
        stream: str,
        topic: str,
        partition: int,
        decoded: Sequence[tuple[RawRecord, Any]],
        events: list[Any],
    ) -> None:
        dims = ROLLUP_DIMENSIONS.get(stream)
        if dims is None:
            return  # a repartition topic: its records were counted on their source topic
        fields_attr, org_attr, outcome_attr, action_attr = dims
        roll = self._partition_rollup(topic, partition)
        labels = self._labels(stream, org_attr)
        for block, start, end in self._block_spans(roll.block_size, decoded):
            span = events[start:end]
            counted: Counter = Counter()
            # one C loop labels and counts the span (streams/_door.c): a class for a field set, a
            # known id or `other` for an org, a name for an enum, each a dict lookup; Python runs
            # only for a value never seen (the Labels' __missing__)
            gaps = _door.count_rollup(
                span,
                stream,
                fields_attr,
                org_attr,
                outcome_attr,
                action_attr,
                labels.coverage,
                labels.orgs,
                labels.outcomes,
                counted,
                self._sdk_cells if stream == "sdk" else None,
            )
            for minute, unknown in gaps:
                for field in unknown:
                    # a coverage gap rides the same replay-safe rollups: stream `coverage_gap`,
                    # org = a keyed fingerprint of the unknown id (it may be a value typed into the
                    # wrong place, a card number even), outcome = the stream it appeared on
                    counted[(minute, COVERAGE_GAP, "", self.fingerprint(field), stream, NO_ACTION)] += 1
            if (unnamed := UNNAMED_GAPS.get(stream)) is not None and not all(map(unnamed[0], span)):
                named, kind, said = unnamed
                for ev in span:
                    if not named(ev):
                        counted[(ev.ts // 60_000 * 60, COVERAGE_GAP, kind, said, stream, NO_ACTION)] += 1
            roll.add(block, counted, end - start)

    @staticmethod
    def _block_spans(block_size: int, decoded: Sequence[tuple[RawRecord, Any]]) -> list[tuple[int, int, int]]:
        """(block, start, end) of each offset block the batch touches, in order; a batch mostly
        lies in one block, told by its first and last offsets alone."""
        first, last = decoded[0][0].offset // block_size, decoded[-1][0].offset // block_size
        if first == last:
            return [(first, 0, len(decoded))]
        blocks = map(floordiv, map(attrgetter("offset"), map(itemgetter(0), decoded)), repeat(block_size))
        spans, start = [], 0
        for block, run in groupby(blocks):  # offsets ascend: one run per block
            end = start + sum(1 for _ in run)
            spans.append((block, start, end))
            start = end
        return spans

    def _labels(self, stream: str, org_attr: str | None) -> RollupLabels:
        found = self._rollup_labels.get(stream)
        if found is None:
            found = self._rollup_labels[stream] = RollupLabels(
                lambda fields: self.catalog.coverage(stream, fields),
                (lambda value: self._org_label(org_attr, value)) if org_attr else _unlabelled,
            )
        return found

    def _org_label(self, attr: str, value: Any) -> str:
        """An org-like dimension reaches a table only as a known id: an org seen in the reference
        streams, an SDK or a recipient the policy declares; anything else is counted as `other`,
        `undeclared_sdk` or `undeclared_recipient`."""
        if attr == "sdk_id":  # a declared SDK by any of its names
            return self.catalog.sdk.resolve(value) or "undeclared_sdk"
        if attr == "recipient_id":
            return value if value in self.catalog.policy.recipients.recipients else UNDECLARED
        return value if value in self.known_orgs else OTHER

    def _sdk_field_cell(self, key: tuple[str, str, str | None, str]) -> tuple[str, str, str, str, str]:
        """(stream, class, "<sdk>:<field>", label, no action): one field's cell as an SDK build (sdk, version,
        host) reports it, the SDK x field x label matrix against the declarations. The C counts
        one per distinct field of an observation, each looked up by its build and field
        (`_sdk_cells`): an app's field sets vary (18 497 sets in 24 000 observations of the
        generated day, 75 builds), the cells they are made of do not. Only known ids reach the
        table: an undeclared SDK is `undeclared_sdk`, an unknown field its fingerprint."""
        reported, version, host, field = key
        decl = self.catalog.sdk
        sid, declared = decl.observed(reported, version, host)
        org = sid if sid and declared is not None else "undeclared_sdk"
        fid = decl.field_id(field)
        known = decl.fields.get(fid) if fid else None
        label = decl.label(sid, version, fid or field).value if org != "undeclared_sdk" else "omitted"
        cls = (known.jr_class.value if known.jr_class else "C1") if known else "C1"
        return (SDK_LABEL, cls, f"{org}:{fid or self.fingerprint(field)}", label, NO_ACTION)

    def fingerprint(self, field_id: str) -> str:
        """streams.pseudonym.fingerprint with this engine's key; `lifemon fingerprint NAME` tells an
        analyst which candidate name it is."""
        return fingerprint(self.pseudonymize, field_id)

    def rollup_rows(self) -> list[tuple]:
        """(topic, partition, block, minute_s, stream, jr_class, org, outcome, action, events,
        version, topic_id): ROLLUP_COLUMNS of streams/sinks/clickhouse.py."""
        return [row for (t, p), roll in self.rollups.items() for row in roll.drain(t, p)]

    # -- checkpoint -----------------------------------------------------------------------------
    def changes(self, partition: int) -> list[Change]:
        """What partition number `partition` changed since the last call: its tasks' keys, timers
        and clocks, and its topics' rollups, encoded for the changelog (and already in RocksDB)."""
        store = self.store(partition)
        for (p, _), task in self.tasks.items():
            if p == partition:
                task.save_clock()
        for (topic, p), roll in self.rollups.items():
            if p == partition:
                roll.save(store, ROLLUP + topic + SEP)
        for (topic, p), t in self.source_times.items():
            if p == partition and self._saved_source_times.get((topic, p)) != t:
                store.put(SOURCE_TIME + topic, t)
                self._saved_source_times[(topic, p)] = t
        self._save_seen(partition, store)
        return store.changes()

    def dirty_count(self) -> int:
        """State keys changed since the last checkpoint, over every partition's store."""
        return sum(store.dirty_count for store in self.stores.values())

    def changed(self, partition: int) -> bool:
        """Whether the partition's state changed since the last `changes(partition)`, read records
        or not: a timer the instance clock fired on a quiet partition, a raw log's held statements
        flushed, keys a restore found changed after the last marker. Such a change must reach the
        changelog like any other, or a restore brings back what was before it."""
        store = self.stores.get(partition)
        if store is not None and store.dirty_count:
            return True
        return any(roll.unsaved for (_, p), roll in self.rollups.items() if p == partition)

    def open_partition(self, partition: int) -> KeyedStore:
        """A fresh, empty store for the partition: the changelog, not the local disk, is the truth."""
        self.drop(partition)
        self.stores[partition] = store = self._new_store(partition)
        return store

    def _new_store(self, partition: int) -> KeyedStore:
        path = self.state_dir / f"p{partition}"
        shutil.rmtree(path, ignore_errors=True)
        return KeyedStore(path, encode=state_encode)

    def resume(self, partition: int) -> None:
        """After the partition's store was restored: rebuild its tasks and rollups from it."""
        store = self.store(partition)
        self._check_pseudonym_version(partition, store)
        for spec in [*self.specs, *self.stages.values()]:
            task = self.task(partition, spec)
            # a detector that judges its state again under the policy it restarted with
            if (resumed := getattr(task.detector, "resumed", None)) is not None:
                resumed(task.ctx)
        for key, t in store.items(SOURCE_TIME):
            self.source_times[(key.removeprefix(SOURCE_TIME), partition)] = t
            self._saved_source_times[(key.removeprefix(SOURCE_TIME), partition)] = t
        self._load_seen(partition, store)
        for key, value in list(store.items(ROLLUP)):
            topic, _, rest = key.removeprefix(ROLLUP).partition(SEP)
            if rest:
                self._partition_rollup(topic, partition).load(rest, value)
            else:  # one value per topic, as lifemon kept it before: rewritten per minute from now on
                self._partition_rollup(topic, partition).load_whole(value)
                store.delete(key)
        for (topic, p), roll in self.rollups.items():
            # restored blocks of an earlier incarnation of the topic are forgotten
            if p == partition and (earlier := roll.incarnation(self.topic_ids.get(topic, NO_TOPIC_ID))):
                self.reincarnated[(topic, p)] = earlier

    def _check_pseudonym_version(self, partition: int, store: KeyedStore) -> None:
        """State keyed by pseudonyms continues only under the key that made them: its version
        (streams/pseudonym.py), and the key itself (`Pseudonymizer.key_check`), which a restart
        may have changed under the same version. State saved before versions were recorded was made
        by version 1; before checks were, its check is recorded now."""
        current = getattr(self.pseudonymize, "version", None)
        if current is None:  # a plain function (tests, tools): no key, no version
            return
        saved = store.get(PSEUDONYM_VERSION_KEY)
        if saved is None:  # recorded from now on; a new partition's state starts under this key
            saved = 1 if next(iter(store.items()), None) is not None else current
            store.put(PSEUDONYM_VERSION_KEY, saved)
        if saved != current:
            self.drop(partition)
            raise PseudonymKeyMismatch(partition, saved, current)
        check, made_by = self.pseudonymize.key_check(), store.get(PSEUDONYM_CHECK_KEY)  # type: ignore[attr-defined]
        if made_by is None:
            store.put(PSEUDONYM_CHECK_KEY, check)
        elif made_by != check:
            self.drop(partition)
            raise PseudonymKeyChanged(partition, current)

    def close(self) -> None:
        """Free every store; the folders are caches of the changelog, never needed again."""
        for partition in list(self.stores):
            self.drop(partition)
        shutil.rmtree(self.state_dir, ignore_errors=True)

    def restore(self, partition: int, changes: list[Change]) -> None:
        """In-process restore from changes (tests, tools); the runtime replays a changelog instead."""
        self.open_partition(partition).apply(changes)
        self.resume(partition)

    def drop(self, partition: int) -> None:
        """A revoked partition's state leaves with it (after its final checkpoint)."""
        for task in [k for k in self.tasks if k[0] == partition]:
            del self.tasks[task]
        self.incident_stages.pop(partition, None)
        self.owner_timers.pop(partition, None)
        for source in [k for k in self.rollups if k[1] == partition]:
            del self.rollups[source]
        for source in [k for k in self.seen_ids if k[1] == partition]:
            del self.seen_ids[source]
            self._seen_chunks.pop(source, None)
            self._seen_tail.pop(source, None)
        for source in [k for k in self.source_times if k[1] == partition]:
            del self.source_times[source]
            self._saved_source_times.pop(source, None)
        store = self.stores.pop(partition, None)
        if store is not None:
            store.destroy()
