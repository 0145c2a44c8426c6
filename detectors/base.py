"""The one interface every detector implements, and the data it returns.

A detector is a pure function of events, its own keyed state, reference data as of event time and
policy (STYLE.md). It never touches Kafka, ClickHouse or the clock, so the native runtime, a file
replay and a test all run the very same code and get the same findings.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel

from policy.catalog import Catalog
from policy.model import DetectorSection
from schemas.models import Entitlement, Record, Severity


class AsOf(Protocol):
    """A reference registry looked up as of an event's time (entitlements, consents)."""

    def as_of(self, key: str, ts: int) -> Any: ...


@dataclass(frozen=True)
class Context:
    """What a detector may read besides its events: policy and reference data, never I/O.

    `pseudonymize` turns a customer id into its keyed HMAC pseudonym. Detectors keep pseudonyms,
    never raw ids, in their state: state is snapshotted to ClickHouse and must hold no PFI."""

    catalog: Catalog
    entitlements: AsOf
    consents: AsOf
    pseudonymize: Callable[[str], str]

    def entitlement(self, actor_id: str, ts: int) -> Entitlement | None:
        return self.entitlements.as_of(actor_id, ts)


@dataclass
class Finding:
    """A detector's verdict on one key and window. The engine turns it into an Alert.
    `subject_sample` holds pseudonyms (Context.pseudonymize), never raw customer ids."""

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
    subject_count: int = 0
    subject_sample: Sequence[str] = ()
    counts: dict[str, int] = field(default_factory=dict)
    evidence_event_ids: Sequence[str] = ()
    first_seen: int = 0
    last_seen: int = 0

    @property
    def alert_id(self) -> str:
        """hash(detector, rule, key, window start): the same on every replay and restart (DESIGN.md §3)."""
        raw = f"{self.detector}\x1f{self.rule_id}\x1f{self.key}\x1f{self.window_start}".encode()
        return hashlib.sha256(raw).hexdigest()[:32]


class Detector(Protocol):
    """One detector kind. The engine makes one instance per partition of `stream`: keyed state lives
    with its partition, so a consumer-group rebalance moves state with the data."""

    kind: ClassVar[str]  # its name in policy, alerts and docs
    stream: ClassVar[str]  # the event stream it reads (a key of schemas.models.EVENT_MODELS)
    Params: ClassVar[type[BaseModel]]  # its `params` policy section (extra="forbid", frozen)

    def __init__(self, section: DetectorSection, params: BaseModel) -> None: ...

    def process(self, events: Sequence[Record], ctx: Context) -> Iterable[Finding]:
        """Events of one partition, in offset order, in; findings out."""
        ...

    def on_watermark(self, watermark_ms: int, ctx: Context) -> Iterable[Finding]:
        """Close windows and fire deadlines that the event-time watermark has passed."""
        ...

    def snapshot(self) -> dict[str, Any]:
        """The keyed state as plain JSON-able data, for a checkpoint."""
        ...

    def restore(self, state: dict[str, Any]) -> None: ...
