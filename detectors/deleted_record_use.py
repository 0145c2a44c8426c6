"""Deleted record use: a stored record read or sent after it was deleted, where the log names the
record and not its customer.

A report download, a batch extract or a file sent to a processor often logs the records it read
(`record_ids`) and no customer (`subject_ids` empty). retention_overrun, keyed by customer, never
sees such a use. This detector is keyed by record instead: lifecycle events on their own topic
(keyed by `record_id`), accesses and transfers re-keyed by their `record_ids`, so a record's
removal and every use that names it meet in one task. A use that names its customer is left to
retention_overrun, which judges it with the customer's whole lifecycle (deadlines too): the two
never alert on the same use.

One rule, `used_after_deletion` (seed 002 §六.6(1): deletion leaves the data 不可被检索和访问;
seed 004 定义(11)): a successful access or a transfer, dated after the record's earliest delete,
anonymize or destroy event. A refused access read nothing. Judged on the record's latest uses
whenever a use or a removal arrives, so inputs interleaved differently (live, replay) end with one
alert, revised as uses are added.

State is one small key per record (docs/state.md): a removed record is remembered for
`forget_deleted_days`, a use of a record not known removed waits `late_deletion_days` of event
time for a removal dated before it that is reported late, then is forgotten.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from detectors.base import Context, Finding, Store
from detectors.offscope_marketing import RuleSpec
from detectors.retention_records import GONE_STAGES
from policy.catalog import Catalog
from policy.model import CLASS_RANK, DetectorSection, JrClass
from schemas.models import Outcome

DAY_MS = 86_400_000
RULE = "used_after_deletion"


class DeletedRecordUseParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    rules: dict[str, RuleSpec] = Field(description=f"the detector's one rule, {RULE}")
    forget_deleted_days: int = Field(
        gt=0, description="how long a removed record is remembered, so a later use of it is seen"
    )
    late_deletion_days: int = Field(
        gt=0,
        description="how long, in event time, a use of a record not known removed waits for a removal "
        "dated before it that a system reports late",
    )
    evidence_limit: int = Field(default=20, ge=1, description="the latest uses kept per record")

    def model_post_init(self, _: Any) -> None:
        if set(self.rules) != {RULE}:
            raise ValueError(f"rules: give exactly one rule, {RULE} (its severity, titles and regulation)")


class Kept:
    """One record: when it was first removed (0: not known removed), where, whose (a pseudonym), how
    many uses after the removal were alerted, and its latest uses [ts, event_id, stream, actor or
    recipient, class], by time."""

    __slots__ = ("gone", "system", "subject", "fired", "uses")

    def __init__(self) -> None:
        self.gone, self.system, self.subject, self.fired = 0, "", "", 0
        self.uses: list[list[Any]] = []

    def to_json(self) -> list[Any]:
        return [self.gone, self.system, self.subject, self.fired, self.uses]

    @classmethod
    def from_json(cls, row: list[Any]) -> Kept:
        kept = cls.__new__(cls)
        kept.gone, kept.system, kept.subject, kept.fired, kept.uses = row
        return kept

    def after_gone(self) -> list[list[Any]]:
        return [u for u in self.uses if self.gone and u[0] > self.gone]


class DeletedRecordUseDetector:
    kind: ClassVar[str] = "deleted_record_use"
    inputs: ClassVar[dict[str, str]] = {
        "lifecycle": "record_id",
        "access": "record_ids",
        "transfer": "record_ids",
    }
    Params: ClassVar[type[BaseModel]] = DeletedRecordUseParams

    def __init__(self, section: DetectorSection, params: DeletedRecordUseParams, store: Store):
        self.section, self.p, self.store = section, params, store
        self.forget_ms = params.forget_deleted_days * DAY_MS
        self.late_ms = params.late_deletion_days * DAY_MS

    @staticmethod
    def load_value(data: Any) -> Any:
        return Kept.from_json(data)

    def process(self, stream: str, events: Sequence[Any], ctx: Context) -> Iterable[Finding]:
        if stream == "lifecycle":
            for ev in events:
                if ev.stage.value in GONE_STAGES:
                    yield from self._removed(ev, ctx)
            return
        for ev in events:
            if ev.subject_ids or (stream == "access" and ev.outcome is not Outcome.success):
                continue  # named customers: retention_overrun's; refused: nothing was read
            yield from self._used(stream, ev, ctx)

    def _kept(self, rid: str) -> Kept:
        kept = self.store.get(rid)
        if kept is None:
            kept = Kept()
            self.store.put(rid, kept)
        return kept

    def _removed(self, ev: Any, ctx: Context) -> Iterator[Finding]:
        kept = self._kept(ev.record_id)
        if kept.gone and kept.gone <= ev.ts:
            return  # removed earlier already: this removal changes nothing
        kept.gone, kept.system, kept.subject = ev.ts, ev.system, ev.subject_id or ""
        self.store.touch(ev.record_id)
        ctx.timers.register(ev.record_id, ev.ts + self.forget_ms)  # then the record is forgotten
        yield from self._judge(ev.record_id, kept, ctx.catalog)

    def _used(self, stream: str, ev: Any, ctx: Context) -> Iterator[Finding]:
        (rid,) = ev.record_ids  # re-keyed: one record per event
        kept = self._kept(rid)
        if any(u[1] == ev.event_id for u in kept.uses):
            return
        fields = ev.fields if stream == "access" else ev.categories
        who = ev.actor_id if stream == "access" else ev.recipient_id
        kept.uses.append([ev.ts, ev.event_id, stream, who, ctx.catalog.profile(fields)[0].value])
        kept.uses.sort()
        del kept.uses[: -self.p.evidence_limit]  # the latest few: state stays small
        self.store.touch(rid)
        if not kept.gone:  # a removal dated before it may still be reported
            ctx.timers.register(rid, ev.ts + self.late_ms)
        yield from self._judge(rid, kept, ctx.catalog)

    def _judge(self, rid: str, kept: Kept, catalog: Catalog) -> Iterator[Finding]:
        """Seed 002 §六.6(1): each new use after the removal revises the record's one alert."""
        offending = kept.after_gone()
        if len(offending) <= kept.fired:
            return
        n = kept.fired = len(offending)
        ts, event_id, stream, who, _ = offending[-1]
        spec = self.p.rules[RULE]
        jr_class = max((u[4] for u in offending), key=lambda c: CLASS_RANK[JrClass(c)])
        verb = "read by" if stream == "access" else "sent to"
        yield Finding(
            detector=self.kind,
            rule_id=f"{self.section.rule_id}.{RULE}",
            key=rid,
            window_start=kept.gone,
            window_end=ts,
            severity=spec.severity,
            revision=n,
            closed=False,
            summary=f"record {rid} on {kept.system}, deleted {catalog.policy.local_date(kept.gone)}, {verb} {who} "
            f"({stream} {event_id}, naming the record and not its customer); {n} use(s) so far",
            jr_class=jr_class,
            actor_id=who,
            subject_count=1 if kept.subject else 0,
            subject_sample=[kept.subject] if kept.subject else [],
            counts={"uses": n},
            evidence_event_ids=[u[1] for u in offending],
            event_count=n,
            first_seen=offending[0][0],
            last_seen=ts,
            title_zh=spec.title_zh,
            title_en=spec.title_en,
            regulation=spec.regulation,
        )

    # -- timers -----------------------------------------------------------------------------------
    def on_timer(self, key: str, deadline_ms: int, ctx: Context) -> Iterable[Finding]:
        """Forget what can no longer decide anything: a record removed `forget_deleted_days` ago,
        and uses whose wait for a late removal is over (the watermark passed it)."""
        kept = self.store.get(key)
        if kept is None:
            return ()
        wm = ctx.watermark
        if kept.gone and kept.gone + self.forget_ms <= wm:
            self.store.delete(key)
            return ()
        kept.uses = [u for u in kept.uses if u[0] > kept.gone > 0 or u[0] + self.late_ms > wm]
        if kept.gone or kept.uses:
            self.store.touch(key)
        else:
            self.store.delete(key)
        return ()
