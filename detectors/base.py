"""The one interface every detector implements, and the data it returns.

A detector is a pure function of events, its own keyed state, reference data as of event time and
policy (STYLE.md). It never touches Kafka, ClickHouse or the clock, so the native runtime, a file
replay and a test all run the very same code and get the same findings.

What the engine gives a detector (issue "Engine v2"):
- **inputs**: it declares the streams it reads and the attribute each must be keyed by; the engine
  runs one instance per partition number (a *task*, as in Kafka Streams), fed the records of that
  partition of every input, re-keyed through a repartition topic where a topic is keyed otherwise;
- **a keyed store** that checkpoints only what changed and travels with its partition;
- **event-time timers**: `ctx.timers.register(key, deadline)`, then `on_timer` once the task's
  watermark passes the deadline, even on a quiet partition (docs/architecture.md#event-time);
- **reference data as of event time**: entitlements, consents (by subject, purpose and channel)
  and customers (managing org and status);
- **pseudonyms at the door**: customer ids arrive already replaced by keyed HMAC pseudonyms.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any, ClassVar, Protocol
from zoneinfo import ZoneInfo

import msgspec
from pydantic import BaseModel

from policy.catalog import Catalog
from policy.clause import Clause
from policy.model import DetectorSection
from schemas.models import (
    MAX_TS,
    Action,
    Channel,
    Consent,
    ConsentStatus,
    Customer,
    CustomerStatus,
    Entitlement,
    Outcome,
    Severity,
)


def _reaccepted(general: Consent, own: Consent) -> bool:
    """A bundled grant for every channel after the channel's own withdrawal: no opt-in to it."""
    return (
        own.status is not ConsentStatus.granted
        and general.status is ConsentStatus.granted
        and not general.separate
    )


def iso_minute(ms: int) -> str:
    """An event time to the minute, in UTC, as alert summaries write it: 2026-01-01T09:30Z. A value
    no millisecond time (an approval's expiry in microseconds: year 57971, past what datetime
    holds, stopped the detector) is said as it is."""
    return _iso(ms, "%Y-%m-%dT%H:%MZ")


def iso_second(ms: int) -> str:
    """`iso_minute` to the second, where a summary's figures are seconds apart (a device-hour's
    collections): 2026-01-01T09:30:05Z."""
    return _iso(ms, "%Y-%m-%dT%H:%M:%SZ")


def _iso(ms: int, form: str) -> str:
    if not 0 <= ms <= MAX_TS:
        return f"{ms} (no time in milliseconds)"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime(form)


@lru_cache(maxsize=8)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def bank_day(ts: int, timezone: str) -> date:
    """The calendar day of epoch ms `ts` in the bank's `timezone` (policy/recipients.yaml): what a
    compliance officer in Beijing dates it."""
    return datetime.fromtimestamp(ts / 1000, _zone(timezone)).date()


def n_of(n: int, noun: str, plural: str = "") -> str:
    """`n` of an English noun, singular for one: "1 customer", "2,000 records" (`plural` where
    an s does not make it: "pushes")."""
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {plural or noun + 's'}"


# A finding's counts key set to 1 when the incident path must consider it (issue 14: C3 reaching a
# third party, unauthorized cross-border transfers); the alert's OCSF labels carry it too.
LEAKAGE_CANDIDATE = "leakage_candidate"
# A finding's counts key set to 1 when the data it concerns names, counts and lists no one (an
# aggregate statistical report: the 1104 statements): no one's personal information (PIPL art. 4),
# so no notice to draft; the alert stays, and the incident stage passes it by.
AGGREGATE = "aggregate"
DAY_MS = 86_400_000  # a day of event time: the policy's "days" and "per day" measures
# the key a lifecycle event by customer that names none goes under (`Engine.rekeyed_events`): no
# pseudonym's form, and not empty, which a producer's partitioner would scatter at random
UNNAMED = "~"


class AsOf(Protocol):
    """A reference registry looked up as of an event's time."""

    def as_of(self, key: Any, ts: int) -> Any: ...
    def as_of_many(self, keys: Sequence[Any], times: Sequence[int]) -> list[Any]: ...


class Entitlements(AsOf, Protocol):
    """Employees' records as of time, with when each approval they carry was granted (streams.registries)."""

    def granted(self, key: Any, ts: int, approval_id: str) -> int | None: ...
    def signed(self, approver: str, approval_id: str, ts: int) -> tuple[Any, Any] | None: ...

    def history(self, key: Any) -> list[tuple[int, Any]]: ...


class Consents(AsOf, Protocol):
    """Consents as of time, where a separate consent stands until withdrawn (streams.registries)."""

    ever_separate: set[Any]
    channeled: set[str]

    def __contains__(self, key: Any) -> bool: ...

    def separate_since(self, key: Any, ts: int) -> int | None: ...
    def withdrawn_within(self, key: Any, start: int, end: int) -> bool: ...


class Orgs(Protocol):
    """The org tree the reference feeds' whole paths gave (streams/org_tree.py)."""

    merged: dict[str, tuple[str, int]]  # org merged away -> (the org it merged into, when)

    def path_of(self, org: str, written: Sequence[str]) -> Sequence[str]: ...
    def as_read(self, record: Any, ts: int) -> Any: ...


class Store(Protocol):
    """A task's keyed state. `get` returns the live object; after changing it in place, `touch`
    it so the next checkpoint writes it (and only what was touched)."""

    def get(self, key: str, default: Any = None) -> Any: ...
    def put(self, key: str, value: Any) -> None: ...
    def put_cold(self, key: str, value: Any) -> None: ...  # encoded now, never read back live
    def setdefault(self, key: str, new: Callable[[], Any]) -> Any: ...
    def touch(self, key: str) -> None: ...
    def delete(self, key: str) -> None: ...
    def items(self, prefix: str = "", start: str | None = None) -> Iterator[tuple[str, Any]]: ...


class Timers(Protocol):
    """A task's event-time timers."""

    def register(self, key: str, deadline_ms: int) -> None: ...
    def cancel(self, key: str, deadline_ms: int) -> None: ...


def uses_records(stream: str, ev: Any) -> bool:
    """Whether an access or transfer used the records it names: a refused access read nothing,
    and a deletion purges its copy, the act seed 004 定义(11) asks for (删除是使个人金融信息及加工信息
    不可被检索、访问的过程), whoever removed the record first."""
    return stream != "access" or (ev.outcome is Outcome.success and ev.action is not Action.delete)


def fed(registry: Any) -> bool:
    """A reference stream the deployment feeds at all: where it feeds none, a missing key is the
    deployment's choice (bulk-only setups, tests), not a per-record gap, and decides nothing."""
    return len(registry) > 0


@dataclass
class References:
    entitlements: Entitlements  # by actor_id
    consents: Consents  # by (subject_id, purpose, channel)
    customers: AsOf  # by customer_id
    # where an org sits, where a record's own path says less (a level its feed skips); None: the paths alone
    orgs: Orgs | None = None


@dataclass
class Context:
    """What a detector may read besides its events: policy, reference data as of event time, its
    task's timers and watermark; never I/O."""

    catalog: Catalog
    refs: References
    timers: Timers
    watermark: int = 0
    # the task's partition number: what a finding over keys of several partitions (retention_overrun's
    # batches, one system's records of many customers) names, so two tasks never raise one alert id
    partition: int = 0

    def entitlement(self, actor_id: str, ts: int) -> Entitlement | None:
        return self.refs.entitlements.as_of(actor_id, ts)

    def as_read_at(self, record: Any, ts: int) -> Any:
        """A customer's or employee's record looked up for another time, with its orgs as they are
        at `ts` (an outlet merged since, organisation.yaml `org_changes`): two records compared
        read one org tree."""
        orgs = self.refs.orgs
        return record if orgs is None else orgs.as_read(record, ts)

    def org_of(self, actor_id: str, ts: int) -> str | None:
        """The employee's org as of `ts`, as the entitlements stream has it; None if not known."""
        ent = self.entitlement(actor_id, ts)
        return ent.org_id if ent is not None else None

    def consent(self, subject: str, purpose: str, channel: str | None, ts: int) -> Consent | None:
        """The subject's consent for this purpose on this channel as of `ts`; a consent given for
        the purpose without a channel covers every channel unless a channel's own record is newer.
        A bundled grant is read as separate while a separate consent stands before it, on its own
        record or the other: only a withdrawal ends one (streams.registries.ConsentRegistry). Nor
        does a bundled grant for every channel (the privacy policy accepted again) undo the
        channel's own refusal: the customer's choice stands (seed 004 流程描述(1)④, (4)②)."""
        consents = self.refs.consents
        own_key: tuple[str, str, str | None] = (subject, purpose, channel)
        general_key: tuple[str, str, str | None] = (subject, purpose, None)
        own = consents.as_of(own_key, ts) if channel else None
        general = consents.as_of(general_key, ts)
        if own is not None and (general is None or own.ts >= general.ts or _reaccepted(general, own)):
            found, found_key, other_key = own, own_key, general_key
        else:
            found, found_key, other_key = general, general_key, own_key
        if found is None or found.separate or found.status is not ConsentStatus.granted:
            return found
        if found_key not in consents.ever_separate and other_key not in consents.ever_separate:
            return found  # no separate grant ever on either: nothing to look back for
        # a separate grant on either record, with no withdrawal on either since (a withdrawal for
        # every channel ends the channel's own separate consent too); without a channel both
        # records are the general one
        for key, other in ((found_key, other_key), (other_key, found_key)):
            since = consents.separate_since(key, ts)
            if since is not None and not consents.withdrawn_within(other, since, ts):
                return msgspec.structs.replace(found, separate=True)
        return found

    def consent_to_use(self, subject: str, purpose: str, ts: int) -> Consent | None:
        """The subject's consent for a use that contacts nobody (a collection, a share, a transfer
        abroad, an SDK's collection under the privacy policy) as of `ts`, whichever channel it was
        recorded on. For a contact purpose (purposes.yaml `channels`: marketing) a consent's
        channel is where the customer may be contacted, so a grant standing on any channel is
        consent to the purpose, and an opt-out of one channel leaves the others' (a withdrawal of the
        purpose itself, logged on a channel, was recorded on every channel at the door where the
        purpose's `withdrawal_scope` says all_channels: streams.engine). For any other
        purpose a channel can only say where the customer said it (a separate consent captured in
        the app: `app_push`), so the newest word decides, and a withdrawal made there ends it
        (seed 004 基本规定(4)③: 客户有权撤回其同意, wherever the customer says it)."""
        consents = self.refs.consents
        # the channels this customer's consents to the purpose were recorded on (most: none)
        channels: list[Channel | None] = [None]
        if purpose in consents.channeled:
            channels += [ch for ch in Channel if (subject, purpose, ch) in consents]
        found = [c for ch in channels if (c := self.consent(subject, purpose, ch, ts)) is not None]
        known = self.catalog.purposes.get(purpose)
        if known is not None and known.channels:
            # each channel's word (its own record, or the general one where that is newer): a grant
            # for no channel that every channel's newer withdrawal overrides stands nowhere (a probe's
            # customer who refused marketing by phone, SMS, app and WeChat was marketed to)
            words = found if len(channels) == 1 else [
                c for ch in dict.fromkeys([*known.channels, *channels[1:]])
                if (c := self.consent(subject, purpose, ch, ts)) is not None
            ]  # fmt: skip
            granted = [c for c in words if c.status is ConsentStatus.granted]
            if granted:  # a separate grant standing anywhere first
                return max(granted, key=lambda c: (c.separate, c.ts))
        # at one time, the separate reading: the channel's own look back may find a separate grant
        # standing under a bundled re-acceptance that the general record alone reads as bundled
        return max(found, key=lambda c: (c.ts, c.separate), default=None)

    def customer(self, customer_id: str, ts: int) -> Customer | None:
        return self.refs.customers.as_of(customer_id, ts)


@dataclass(frozen=True)
class LegalCount:
    """An art. 5 tier (SPC/SPP interpretation, seed 001 §五.1) a finding's count reached: art. 5
    counts a tier's categories together (交易信息等…500条), so its count is no category's own records
    (probe_v3 H3: a notice told 1 account record as the tier's 1 107)."""

    tier: tuple[str, ...]  # the tier's categories, as the policy's step lists them
    read: tuple[str, ...]  # those of them the finding read
    records: int
    threshold: int  # the gravest step of the tier reached, its severity and its regulation
    severity: Severity
    regulation: Clause
    horizon_hours: int  # the count's span; 0: the episode's own records, more than the horizon's


@dataclass
class Finding:
    """A detector's verdict on one key and window. The engine turns it into an Alert.
    `subject_sample` holds pseudonyms (the engine replaced every customer id at its door)."""

    detector: str
    rule_id: str
    key: str
    window_start: int
    window_end: int
    severity: Severity
    revision: int
    closed: bool
    summary: str
    jr_class: str
    actor_id: str | None = None
    actor_org: str | None = None
    # what actor_id names, where the detector's `actor_is` does not say it for every finding (a
    # deleted record's last use: a read by an employee, or a transfer to a recipient)
    actor_kind: str | None = None
    subject_count: int = 0
    subject_sample: Sequence[str] = ()
    counts: dict[str, int] = field(default_factory=dict)
    evidence_event_ids: Sequence[str] = ()
    # the events this finding aggregates (OCSF `count`), however many `evidence_event_ids` keeps;
    # 0 for a finding raised by an absence (a deadline passed with nothing done)
    event_count: int = 0
    first_seen: int = 0
    last_seen: int = 0
    # when the detector could first know what the finding says, in event time, where that is later
    # than its first event and not a batch's end (bulk_query: the read that reached art. 5's step);
    # None: its first event (streams/incidents.py counts an incident's deadlines from it)
    detected_at: int | None = None
    # a detector with several rules names the one that fired; empty: the policy section's
    title_zh: str = ""
    title_en: str = ""
    regulation: Sequence[Clause] = ()
    # every pseudonym the finding concerns (`subject_sample` is its head) and the catalog field ids
    # involved: the incident stage counts affected subjects by class and category from them
    # (streams/incidents.py); they stay in the engine, an alert carries only the sample
    subjects: Sequence[str] = ()
    fields: Sequence[str] = ()
    # where the subjects differ in what was read of them (bulk_query: one customer's balance, another's
    # account number too): category -> its subjects, class -> its subjects. Empty: every subject
    # concerns every category of the finding, and its class (a transfer sends the same of each)
    subjects_by_category: Mapping[str, Sequence[str]] = field(default_factory=dict)
    subjects_by_class: Mapping[str, Sequence[str]] = field(default_factory=dict)
    # the log that counted customers it did not name ("transfer T1 from crm, list L-7"): who holds
    # their list, which the individuals' notice needs and lifemon never had (streams/incidents.py)
    origin: str = ""
    # the art. 5 tiers the finding's counts reached, each once (bulk_query): the incident's notice says them
    legal: Sequence[LegalCount] = ()
    # what the alert id hashes in place of window_start, for a finding whose start may move back
    # when an earlier event arrives later (deleted_record_use: an earlier removal reported late)
    anchor: int | None = None

    @property
    def alert_id(self) -> str:
        """hash(detector, rule, key, window start or anchor): the same on every replay and restart
        (DESIGN.md §3)."""
        start = self.window_start if self.anchor is None else self.anchor
        raw = f"{self.detector}\x1f{self.rule_id}\x1f{self.key}\x1f{start}".encode()
        return hashlib.sha256(raw).hexdigest()[:32]


def book_holds(scope: str, customer: Customer | None, org_id: str) -> bool:
    """The customer is of a post's own book (organisation.yaml `own_book`, its `scope`) whose
    holder works in `org_id`: one its org manages (org) or sees (sight), as `pfi.customers` has
    it; a closed relationship is no one's book."""
    return (
        customer is not None
        and customer.status is not CustomerStatus.closed
        and (customer.org_id == org_id if scope == "org" else org_id in customer.org_path)
    )


class Detector(Protocol):
    """One detector kind. The engine makes one instance per partition number (task): keyed state
    lives with its partition, so a consumer-group rebalance moves state with the data.

    Optional: `needs: ClassVar[dict[str, str]]`, stream -> an attribute a record must carry
    (non-empty) for the detector to read it. A re-keyed input then leaves the others out of its
    repartition topic, unless another reader of that input needs them (`Engine.needs`).
    `data_exposure: ClassVar[bool]`: its alerts report PFI leaving the bank (OCSF Data Security
    Finding); `actor_is: ClassVar[str]`, "recipient" or "sdk": what its alerts' actor_id names
    (`Alert.actor_kind`, where OCSF puts it), an employee's or a system's account otherwise; a
    finding may say it for itself (`Finding.actor_kind`).
    `on_late_reference(stream, late, ctx) -> Iterable[Finding]`: (record, the version it replaced
    at its own time or None) of reference records dated at or before the latest event time the
    task has read, already in the registry: the detector may judge again what it judged without
    them (unauthorized_lookup: a nightly HR export's terminations)."""

    kind: ClassVar[str]  # its name in policy, alerts and docs
    inputs: ClassVar[dict[str, str]]  # stream -> the attribute its records must be keyed by
    Params: ClassVar[type[BaseModel]]  # its `params` policy section (extra="forbid", frozen)

    def __init__(self, section: DetectorSection, params: BaseModel, store: Store) -> None: ...

    def process(self, stream: str, events: Sequence[Any], ctx: Context) -> Iterable[Finding]:
        """Events of one input partition, in offset order, in; findings out."""
        ...

    def on_timer(self, key: str, deadline_ms: int, ctx: Context) -> Iterable[Finding]:
        """A timer this task registered: the watermark passed `deadline_ms`."""
        ...

    @staticmethod
    def load_value(data: Any) -> Any:
        """A stored value from its JSON (stored values are plain data, or objects with `to_json()`)."""
        ...
