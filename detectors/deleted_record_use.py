"""Deleted record use: a stored record read or sent after it was deleted, where the log names the
record and not the customer its deletion names.

A report download, a batch extract or a file sent to a processor often logs the records it read
(`record_ids`) and no customer (`subject_ids` empty), or customers other than the record's.
retention_overrun, keyed by customer, never sees such a use. This detector is keyed by record
instead: lifecycle events on their own topic (keyed by `record_id`), accesses and transfers
re-keyed by their `record_ids`, so a record's removal and every use that names it meet in one task.
A use that names the customer the record's removal or anonymization names is left to
retention_overrun, which judges it with the customer's whole lifecycle (deadlines too): the two
never alert on the same use.

One rule, `used_after_deletion` (seed 002 §六.6(1): deletion leaves the data 不可被检索和访问;
seed 004 定义(11)): a successful access or a transfer, dated after a delete or
destroy event of the record with no collection of it anew between (a record deleted, collected anew
and deleted again is deleted again); or after one that names categories (it removed those alone) and reading one of them. A refused access read nothing, and one that deletes a copy purges it (`uses_records`). An anonymized record is no longer personal financial
information (seed 004 定义(1): 不包括匿名化处理后的信息), and the bank's rules anonymize as they delete
(流程描述(3)①: 删除或匿名化处理; the employees' app's privacy policy (二)5 says it analyses such data): a
use after its anonymization that names no customer is that analysis. One that names a customer links the anonymized data to a person (seed
002 §五(6): 去标识化、匿名化后的信息与个人金融信息不被混用), and is judged like a use after deletion.

One alert per record, whatever order its uses and removals arrive in: its id hashes the record, not
the removal's time (`Finding.anchor`), since an earlier removal reported late moves that time
back. Its revision is the uses counted plus the removals known, less one: it grows with each
new fact, and a replay that reads them in another order ends at the same number.

State is one small key per record (docs/state.md): a removed record is remembered for
`forget_deleted_days`; a use not (yet) after a removal waits `late_deletion_days` of event time for
one dated before it that a system reports late, then is forgotten: one waiting timer per record,
and a timer at each use's time, which judges it once the watermark has passed it.
"""

from __future__ import annotations

from bisect import bisect_right, insort
from collections.abc import Callable, Iterable, Iterator, Sequence
from operator import itemgetter
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from detectors.base import DAY_MS, Context, Finding, Store, n_of, uses_records
from detectors.offscope_marketing import RuleSpec
from detectors.retention_records import GONE_STAGES
from policy.model import CLASS_RANK, DetectorSection, JrClass

RULE = "used_after_deletion"
# a use: [ts, event_id, stream, reader or recipient, system it came from, class, customers named,
# counted (1: a use after the removal, in the alert), the category ids it read (absent: kept by an
# earlier lifemon)]
TS, EVENT, STREAM, WHO, VIA, CLASS, NAMED, COUNTED, READ = range(9)
COLLECTIONS = 8  # the latest collections kept per record


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
    """One record: its earliest removal (0: none known) with its stage and system; its earliest
    anonymization (0: none); every whole removal and anonymization; its customer (a pseudonym) as the earliest removal or anonymization
    naming one names it; the removal and anonymization events known; the uses counted against it;
    the deadline of its waiting timer (0: none); its latest uses, by time; and each customer a
    removal or anonymization names, with the earliest such event's time: from then on
    retention_overrun holds the record under that customer and judges the uses naming it."""

    __slots__ = (
        "gone",
        "stage",
        "system",
        "removals",
        "counted",
        "wait",
        "uses",
        "anon",
        "named",
        "collected",
        "revised",
        "parts",
        "outs",
    )

    def __init__(self) -> None:
        self.gone, self.stage, self.system = 0, "", ""
        self.removals: list[str] = []
        self.counted = self.wait = self.anon = 0
        self.uses: list[list[Any]] = []
        self.named: dict[str, int] = {}
        # the latest collections seen while the record is kept, [time, system] by time: one after
        # it left, on the system it left (or, after a purge job's removal, one it was on), makes
        # it a record anew (kept apart from the removal, which may be reported after it)
        self.collected: list[list[Any]] = []
        self.revised = 0  # the alert's latest revision raised (0: none)
        # the removals that name categories, [time, stage, category ids] by time: each takes those
        # alone, and a use reading another reads data still held (gone, anon: the whole record's)
        self.parts: list[list[Any]] = []
        # every whole removal and anonymization, [time, stage] by time: a record deleted, collected
        # anew and deleted again is judged by the removal before each use, not by its first alone
        self.outs: list[list[Any]] = []

    def to_json(self) -> list[Any]:
        return [self.gone, self.stage, self.system, self.subject, self.removals, self.counted, self.wait, self.uses, self.anon, self.named, self.collected, self.revised, *([self.parts, self.outs] if self.outs else [self.parts] if self.parts else [])]  # fmt: skip

    @classmethod
    def from_json(cls, row: list[Any]) -> Kept:
        kept = cls.__new__(cls)
        (kept.gone, kept.stage, kept.system, subject, kept.removals) = row[:5]
        (kept.counted, kept.wait, kept.uses) = row[5:8]
        kept.anon, kept.named = row[8:10] if len(row) > 9 else (0, {})
        collected = row[10] if len(row) > 10 else []
        collected = collected if isinstance(collected, list) else [collected] if collected else []
        # an earlier lifemon kept times alone: of any system, as it judged them
        kept.collected = [c if isinstance(c, list) else [c, ""] for c in collected]
        # an earlier lifemon raised a revision whenever a fact came: the latest is the count's
        kept.revised = row[11] if len(row) > 11 else kept.revision() if kept.counted else 0
        kept.parts = row[12] if len(row) > 12 else []  # every removal an earlier lifemon kept was whole
        if len(row) < 10:  # kept by a lifemon that counted an anonymization as a removal
            kept.named = {subject: kept.gone} if subject else {}
            if kept.stage == "anonymize" and len(kept.removals) == 1:  # else a later delete's time is lost
                kept.anon, kept.gone, kept.stage = kept.gone, 0, ""
        # an earlier lifemon kept the earliest removal and anonymization alone
        kept.outs = row[13] if len(row) > 13 else [[t, s] for t, s in sorted([(kept.gone, kept.stage), (kept.anon, "anonymize")]) if t]  # fmt: skip
        return kept

    @property
    def subject(self) -> str:
        """The record's customer: the one its earliest removal or anonymization naming one names
        (kept in the row's fourth place, where an earlier lifemon reads it)."""
        return min(self.named, key=self.named.__getitem__, default="")

    def left_at(self) -> list[int]:
        """The time of each removal and anonymization known."""
        return [o[0] for o in self.outs] + [p[0] for p in self.parts]

    def since(self) -> int:
        """When the record, or a part of it, left its identifiable form: its earliest removal or
        anonymization (0: none known; the earliest whole ones, `gone` and `anon`, are among `outs`)."""
        return min(self.left_at(), default=0)

    def latest(self) -> int:
        """Its latest removal or anonymization known, which it is remembered from."""
        return max(self.left_at(), default=0)

    def offends(self, use: list[Any], systems: frozenset[str], now: Callable[[str], str] = str) -> bool:
        """After a removal, or after an anonymization and naming a customer, with no collection of
        the record anew between them; and not one retention_overrun judges (naming the customer,
        after an event that names it)."""
        named = bool(use[NAMED])
        # of a part removed: a use reading it, or one that says not what it read (no field list, words
        # the catalog does not know): the detector never learns what a record holds, so a destruction
        # record listing all of it is a part too, and a use after it must still be seen (a review's)
        read = use[READ] if len(use) > READ else ()
        left = [t for t, stage in self.outs if stage != "anonymize" or named] + [
            t
            for t, stage, cats in self.parts
            if (not read or not set(cats).isdisjoint(read)) and (stage != "anonymize" or named)
        ]
        after = any(t < use[TS] and not 0 < self.anew(systems, t, now) <= use[TS] for t in left)
        return after and not any(0 < self.named.get(c, 0) < use[TS] for c in use[NAMED])

    def revision(self) -> int:
        """The alert's revision: it grows with each use counted and each removal known."""
        return self.counted + len(self.removals) - 1

    def anew(self, systems: frozenset[str], since: int = 0, now: Callable[[str], str] = str) -> int:
        """The record's first collection after it left (`since`: its earliest removal or
        anonymization unless given), on the system it left (0: none known). One
        on another system is a copy of what left (a warehouse's load from a stale staging copy: a
        probe's download of the deleted record after it was silent), not an id reused. A removal
        on a system the record is on nowhere known, neither by a collection seen nor by the policy
        (`systems`: a purge job logging its own name, crm_purge, 数据清理平台), removed every copy, as
        retention_overrun reads it: then a collection on a system the record was collected on
        before it left is the id reused; where none was seen (this detector learns of most records
        from their removal), one on any system the policy names (a probe's returning customer,
        collected anew on the CRM after the purge job's deletion, was a use after deletion on
        every read). `now`: a system id kept in state as today's policy names it (`Catalog.current`:
        a collection on crm_core after crm was renamed so is on the system the record left)."""
        since = since or self.since()
        if not since:
            return 0
        system, collected = now(self.system), [(t, now(s)) for t, s in self.collected]
        homes = {"", system}
        if system not in systems and all(s != system for _, s in collected):
            homes |= {s for t, s in collected if t <= since} or systems
        return next((t for t, s in collected if t > since and s in homes), 0)

    def waiting(self) -> list[list[Any]]:
        """Uses not counted: an earlier removal reported late may still make them count."""
        return [u for u in self.uses if not u[COUNTED]]


def _today(ctx: Context) -> Callable[[str], str]:
    """A system id kept in state, as today's policy names it (a rename keeps the old id in `also`)."""
    current = ctx.catalog.current
    return lambda system: current("system", system) or system


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
        """What each event tells is kept; the uses are judged by a timer once the watermark has
        passed them (`on_timer`), when every lifecycle event dated before them is known."""
        if stream == "lifecycle":
            for ev in events:
                if ev.stage.value in GONE_STAGES:
                    self._removed(ev, ctx)
                elif ev.stage.value == "collect" and not ctx.catalog.restores(ev.method):
                    self._collected(ev, ctx)
        else:
            for ev in events:
                if uses_records(stream, ev):
                    self._used(stream, ev, ctx)
        return ()

    def _collected(self, ev: Any, ctx: Context) -> None:
        """A record collected again after it left (an id a system reuses for a returning customer):
        its uses since are of the new record. A collection is noted on a record already kept,
        whether its removal is known yet or not (one dated before it may be reported after it);
        the collections of the others are not tracked (retention_overrun holds them, by customer).
        A restore from a backup (retention.yaml `restoring_methods`) is the record that left: its
        uses stay uses of the deleted record (a probe's restored record read by a report was silent)."""
        kept = self.store.get(ev.record_id)
        seen = [ev.ts, ev.system]
        if kept is not None and seen not in kept.collected:
            insort(kept.collected, seen)
            if len(kept.collected) > COLLECTIONS:  # the latest, and those that made the record anew
                systems, now = ctx.catalog.systems, _today(ctx)
                firsts = {kept.anew(systems, t, now) for t in kept.left_at()}
                latest = kept.collected[-(COLLECTIONS - 1) :]
                kept.collected = [c for c in kept.collected if c in latest or c[0] in firsts]
            self.store.touch(ev.record_id)

    def _removed(self, ev: Any, ctx: Context) -> None:
        kept = self.store.setdefault(ev.record_id, Kept)
        if ev.event_id in kept.removals:
            return
        kept.removals.append(ev.event_id)
        latest = kept.latest()
        if ev.subject_id:
            kept.named[ev.subject_id] = min(kept.named.get(ev.subject_id, ev.ts), ev.ts)
        # a removal naming categories takes those alone (retention_overrun reads it so): a use of
        # another is of data still held (a report of a card's address after its phone's deletion)
        part = ctx.catalog.profile(ev.categories)[1]
        if part:
            insort(kept.parts, [ev.ts, ev.stage.value, list(part)])
            kept.system = kept.system or ev.system
        else:
            insort(kept.outs, [ev.ts, ev.stage.value])
            if ev.stage.value == "anonymize":
                kept.anon = min(kept.anon or ev.ts, ev.ts)
                kept.system = kept.system or ev.system
            elif not kept.gone or ev.ts < kept.gone:  # the earliest: the alert's, and where it left
                kept.gone, kept.stage, kept.system = ev.ts, ev.stage.value, ev.system
        if kept.latest() != latest:
            ctx.timers.register(ev.record_id, kept.latest() + self.forget_ms)  # then it is forgotten
        self.store.touch(ev.record_id)
        ctx.timers.register(ev.record_id, ev.ts)  # its uses judged again

    def _used(self, stream: str, ev: Any, ctx: Context) -> None:
        (rid,) = ev.record_ids  # re-keyed: one record per event
        kept = self.store.setdefault(rid, Kept)
        if any(u[EVENT] == ev.event_id for u in kept.uses):
            return
        if stream == "access":
            fields, who, via = ev.fields, ev.actor_id, ev.system
        else:
            fields, who, via = ev.categories, ev.recipient_id, ev.sender_system
        cls, cats = ctx.catalog.profile(fields)
        kept.uses.append(
            [ev.ts, ev.event_id, stream, who, via, cls.value, list(ev.subject_ids), 0, list(cats)]
        )
        kept.uses.sort()
        self.store.touch(rid)
        self._wait(rid, kept, ctx)
        ctx.timers.register(rid, ev.ts)  # judged once every input has passed it

    def _wait(self, rid: str, kept: Kept, ctx: Context) -> None:
        """The record's timer at the end of its earliest waiting use's wait (`on_timer` may set
        another, at the earliest use still ahead of the watermark)."""
        waiting = kept.waiting()
        if waiting:
            due = waiting[0][TS] + self.late_ms
            if not kept.wait or due < kept.wait:
                kept.wait = due
                ctx.timers.register(rid, due)

    def _judge(self, rid: str, kept: Kept, ctx: Context) -> Iterator[Finding]:
        """Seed 002 §六.6(1): each new use after the removal, up to the watermark, or a new removal
        revises the record's one alert."""
        for u in kept.uses:
            if (
                u[TS] <= ctx.watermark
                and not u[COUNTED]
                and kept.offends(u, ctx.catalog.systems, _today(ctx))
            ):
                u[COUNTED] = 1
                kept.counted += 1
        if not kept.counted or kept.revision() <= kept.revised:
            return
        kept.revised = kept.revision()
        n, offending = kept.counted, [u for u in kept.uses if u[COUNTED]]
        last = offending[-1]
        spec = self.p.rules[RULE]
        verb = f"read by {last[WHO]} on" if last[STREAM] == "access" else f"sent to {last[WHO]} from"
        left = ", ".join(
            f"{what}{GONE_STAGES[stage]} {ctx.catalog.policy.local_date(t)}"
            for t, stage, what in sorted(
                [*((t, s, "") for t, s in kept.outs), *((t, s, f"{', '.join(c)} ") for t, s, c in kept.parts)]
            )
        )
        named = n_of(len(last[NAMED]), "customer") if last[NAMED] else "no customer"
        yield Finding(
            detector=self.kind,
            rule_id=f"{self.section.rule_id}.{RULE}",
            key=rid,
            anchor=0,  # one alert per record: its removal's time may move back
            window_start=kept.since(),
            window_end=last[TS],
            severity=spec.severity,
            revision=kept.revised,
            closed=False,
            summary=f"record {rid} on {kept.system}, {left}, {verb} {last[VIA]} ({last[STREAM]} "
            f"{last[EVENT]}, naming the record and {named}); {n_of(n, 'use')} so far",
            jr_class=max((u[CLASS] for u in offending), key=lambda c: CLASS_RANK[JrClass(c)]),
            actor_id=last[WHO],
            actor_org=ctx.org_of(last[WHO], last[TS]) if last[STREAM] == "access" else None,
            actor_kind="employee" if last[STREAM] == "access" else "recipient",
            subject_count=1 if kept.subject else 0,
            subject_sample=[kept.subject] if kept.subject else [],
            counts={"records": 1, "uses": n},
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
        """Judge the uses the watermark has passed; forget what can no longer decide anything: a
        record last removed or anonymized `forget_deleted_days` ago, uses whose wait for a late
        removal is over, and all but the latest `evidence_limit` uses judged. The timer comes again
        at the earliest use still ahead (its own may have fired before the watermark moved back)."""
        kept = self.store.get(key)
        if kept is None:
            return []
        wm, latest = ctx.watermark, kept.latest()
        if latest and latest + self.forget_ms <= wm:
            self.store.delete(key)
            return []
        found = list(self._judge(key, kept, ctx))
        if deadline_ms >= kept.wait:
            kept.wait = 0
        kept.uses = [u for u in kept.uses if u[COUNTED] or u[TS] + self.late_ms > wm]
        del kept.uses[: max(0, bisect_right(kept.uses, wm, key=itemgetter(TS)) - self.p.evidence_limit)]
        if not (latest or kept.uses):
            self.store.delete(key)
            return found
        self.store.touch(key)
        self._wait(key, kept, ctx)
        # a use still ahead is judged by a timer at its time, which may have fired already: the
        # watermark moves back when an input that had delivered nothing (and so held nothing back)
        # delivers its first records, a removal's history, and the use is ahead of it again
        ahead = [u[TS] for u in kept.uses if not u[COUNTED] and u[TS] > wm]
        if ahead:
            ctx.timers.register(key, min(ahead))
        return found
