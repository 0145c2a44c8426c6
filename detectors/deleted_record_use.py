"""Deleted record use: a stored record read or sent after it was deleted, where the log names the
record and not the customer its deletion names.

A report download, a batch extract or a file sent to a processor often logs the records it read
(`record_ids`) and no customer (`subject_ids` empty), or customers other than the record's.
retention_overrun, keyed by customer, never sees such a use. This detector is keyed by record
instead: lifecycle events on their own topic (keyed by `record_id`), accesses and transfers
re-keyed by their `record_ids`, so a record's removal and every use that names it meet in one task.
A use that names the customer the removal names is left to retention_overrun, which judges it with
the customer's whole lifecycle (deadlines too): the two never alert on the same use.

One rule, `used_after_deletion` (seed 002 §六.6(1): deletion leaves the data 不可被检索和访问;
seed 004 定义(11)): a successful access or a transfer, dated after the record's earliest delete or
destroy event. A refused access read nothing. An anonymized record is no longer personal financial
information (seed 004 定义(1): 不包括匿名化处理后的信息), and the bank analyses anonymized data as its
privacy policy says it will (seed 004 隐私政策 (二)5): a use that names it and no customer is that
analysis. One that names the customer links it to a person again (seed 002 §五(6): 不被混用), which
is retention_overrun's `used_after_deletion`, which counts anonymization as a removal.

One alert per record, whatever order its uses and removals arrive in: its id hashes the record, not
the removal's time (`Finding.anchor`), since an earlier removal reported late moves that time
back. Its revision is the uses counted plus the removals known, less one: it grows with each
new fact, and a replay that reads them in another order ends at the same number.

State is one small key per record (docs/state.md): a removed record is remembered for
`forget_deleted_days`; a use not (yet) after a removal waits `late_deletion_days` of event time for
one dated before it that a system reports late, then is forgotten. One waiting timer per record.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from detectors.base import Context, Finding, Store
from detectors.offscope_marketing import RuleSpec
from policy.catalog import Catalog
from policy.model import CLASS_RANK, DetectorSection, JrClass
from schemas.models import Outcome

DAY_MS = 86_400_000
RULE = "used_after_deletion"
REMOVED = {"delete": "deleted", "destroy": "destroyed"}  # the removals a use comes after (not anonymize)
# a use: [ts, event_id, stream, reader or recipient, system it came from, class, customers named,
# counted (1: a use after the removal, in the alert)]
TS, EVENT, STREAM, WHO, VIA, CLASS, NAMED, COUNTED = range(8)


class DeletedRecordUseParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    rules: dict[str, RuleSpec] = Field(description=f"the detector's one rule, {RULE}")
    forget_deleted_days: int = Field(
        gt=0, description="how long a removed record is remembered, so a later use of it is seen"
    )
    late_deletion_days: int = Field(
        gt=0,
        description="how long, in event time, a use not after a known removal waits for one dated "
        "before it that a system reports late",
    )
    evidence_limit: int = Field(default=20, ge=1, description="the latest uses kept per record")

    def model_post_init(self, _: Any) -> None:
        if set(self.rules) != {RULE}:
            raise ValueError(f"rules: give exactly one rule, {RULE} (its severity, titles and regulation)")


class Kept:
    """One record: its earliest removal (0: none known) with its stage, system and customer (a
    pseudonym); the removal events known; the uses counted against it; the deadline of its
    waiting timer (0: none); its latest uses, by time."""

    __slots__ = ("gone", "stage", "system", "subject", "removals", "counted", "wait", "uses")

    def __init__(self) -> None:
        self.gone, self.stage, self.system, self.subject = 0, "", "", ""
        self.removals: list[str] = []
        self.counted = self.wait = 0
        self.uses: list[list[Any]] = []

    def to_json(self) -> list[Any]:
        return [self.gone, self.stage, self.system, self.subject, self.removals, self.counted, self.wait, self.uses]  # fmt: skip

    @classmethod
    def from_json(cls, row: list[Any]) -> Kept:
        kept = cls.__new__(cls)
        (
            kept.gone,
            kept.stage,
            kept.system,
            kept.subject,
            kept.removals,
            kept.counted,
            kept.wait,
            kept.uses,
        ) = row
        return kept

    def after_removal(self, use: list[Any]) -> bool:
        """Dated after the removal, and not one retention_overrun judges (it names the customer)."""
        return 0 < self.gone < use[TS] and self.subject not in use[NAMED]

    def waiting(self) -> list[list[Any]]:
        """Uses not counted: an earlier removal reported late may still make them count."""
        return [u for u in self.uses if not u[COUNTED]]


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
                if ev.stage.value in REMOVED:
                    yield from self._removed(ev, ctx)
            return
        for ev in events:
            if stream == "access" and ev.outcome is not Outcome.success:
                continue  # refused: nothing was read, and the deletion held
            yield from self._used(stream, ev, ctx)

    def _removed(self, ev: Any, ctx: Context) -> Iterator[Finding]:
        kept = self.store.setdefault(ev.record_id, Kept)
        if ev.event_id in kept.removals:
            return
        kept.removals.append(ev.event_id)
        if not kept.gone or ev.ts < kept.gone:  # the earliest removal is the one a use is judged by
            kept.gone, kept.stage, kept.system = ev.ts, ev.stage.value, ev.system
            kept.subject = ev.subject_id or ""
            ctx.timers.register(ev.record_id, ev.ts + self.forget_ms)  # then the record is forgotten
        self.store.touch(ev.record_id)
        yield from self._judge(ev.record_id, kept, ctx.catalog, news=1)

    def _used(self, stream: str, ev: Any, ctx: Context) -> Iterator[Finding]:
        (rid,) = ev.record_ids  # re-keyed: one record per event
        kept = self.store.setdefault(rid, Kept)
        if any(u[EVENT] == ev.event_id for u in kept.uses):
            return
        if stream == "access":
            fields, who, via = ev.fields, ev.actor_id, ev.system
        else:
            fields, who, via = ev.categories, ev.recipient_id, ev.sender_system
        cls = ctx.catalog.profile(fields)[0].value
        kept.uses.append([ev.ts, ev.event_id, stream, who, via, cls, list(ev.subject_ids), 0])
        kept.uses.sort()
        del kept.uses[: -self.p.evidence_limit]  # the latest few: state stays small
        self.store.touch(rid)
        self._wait(rid, kept, ctx)
        yield from self._judge(rid, kept, ctx.catalog, news=0)

    def _wait(self, rid: str, kept: Kept, ctx: Context) -> None:
        """One timer per record, at the end of its earliest waiting use's wait."""
        waiting = kept.waiting()
        if waiting:
            due = waiting[0][TS] + self.late_ms
            if not kept.wait or due < kept.wait:
                kept.wait = due
                ctx.timers.register(rid, due)

    def _judge(self, rid: str, kept: Kept, catalog: Catalog, news: int) -> Iterator[Finding]:
        """Seed 002 §六.6(1): each new use after the removal, or a new removal, revises the record's
        one alert (`news`: the facts this event added besides the uses it makes count)."""
        for u in kept.uses:
            if not u[COUNTED] and kept.after_removal(u):
                u[COUNTED] = 1
                kept.counted += 1
                news += 1
        if not kept.counted or not news:
            return
        n, offending = kept.counted, [u for u in kept.uses if u[COUNTED]]
        last = offending[-1]
        spec = self.p.rules[RULE]
        verb = f"read by {last[WHO]} on" if last[STREAM] == "access" else f"sent to {last[WHO]} from"
        yield Finding(
            detector=self.kind,
            rule_id=f"{self.section.rule_id}.{RULE}",
            key=rid,
            anchor=0,  # one alert per record: its removal's time may move back
            window_start=kept.gone,
            window_end=last[TS],
            severity=spec.severity,
            revision=n + len(kept.removals) - 1,
            closed=False,
            summary=f"record {rid} on {kept.system}, {REMOVED[kept.stage]} {catalog.policy.local_date(kept.gone)}, "
            f"{verb} {last[VIA]} ({last[STREAM]} {last[EVENT]}, naming the record and not its customer); "
            f"{n} use(s) so far",
            jr_class=max((u[CLASS] for u in offending), key=lambda c: CLASS_RANK[JrClass(c)]),
            actor_id=last[WHO],
            subject_count=1 if kept.subject else 0,
            subject_sample=[kept.subject] if kept.subject else [],
            counts={"uses": n},
            evidence_event_ids=[u[EVENT] for u in offending],
            event_count=n,
            first_seen=offending[0][TS],
            last_seen=last[TS],
            title_zh=spec.title_zh,
            title_en=spec.title_en,
            regulation=spec.regulation,
        )

    # -- timers -----------------------------------------------------------------------------------
    def on_timer(self, key: str, deadline_ms: int, ctx: Context) -> Iterable[Finding]:
        """Forget what can no longer decide anything: a record removed `forget_deleted_days` ago,
        and uses whose wait for a late removal is over."""
        kept = self.store.get(key)
        if kept is None:
            return ()
        wm = ctx.watermark
        if kept.gone and kept.gone + self.forget_ms <= wm:
            self.store.delete(key)
            return ()
        if deadline_ms >= kept.wait:
            kept.wait = 0
        kept.uses = [u for u in kept.uses if u[COUNTED] or u[TS] + self.late_ms > wm]
        if not (kept.gone or kept.uses):
            self.store.delete(key)
            return ()
        self.store.touch(key)
        self._wait(key, kept, ctx)
        return ()
