"""Bulk query: one employee reading many customers' PFI in a short event-time window.

Unapproved queries of PFI are the most-fined violation (seed 001 §一); the SPC/SPP interpretation
on personal-information crimes, art. 5, makes 50 records of credit/property data or 500 records of
transaction data a criminal matter (seed 001 §五.1). Access follows role, least privilege and
graded approval (seed 004, 流程描述(4)④⑤).

Per actor, a sliding window of `window_minutes` scores each *distinct* customer once, by the
heaviest access to it in the window: class weight (C3 > C2 > C1) x action weight (export / download
/ print > view). Accesses under a valid approval do not count. When the score reaches the actor's
role threshold an *episode* opens: one alert, id = hash(actor, window start), that grows while the
actor keeps reading (revisions, never new alerts) and closes when the watermark passes its end.
Each actor has one event-time timer: at its episode's end, or at the end of its window, when its
state is forgotten. State is keyed by actor in the task's store; only actors that read since the
last checkpoint are written at the next one.
Severity escalates at the legal record thresholds, counted in distinct customers per category.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from detectors.base import Context, Finding, Store
from policy.model import CLASS_RANK, DetectorSection, JrClass
from schemas.models import SEVERITY_RANK, Action, EmployeeStatus, Outcome, Severity

RANK_CLASS = {rank: cls.value for cls, rank in CLASS_RANK.items()}
APPROVAL = "approval:"  # store key prefix of an approval's records used; actors are stored by id
MILLI = 1000  # scores and weights in thousandths, as integers


class Escalation(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    severity: Severity
    min_records: int = Field(gt=0)
    categories: list[str] = Field(min_length=1, description="category ids whose distinct records are counted")
    regulation: str


class BulkQueryParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    window_minutes: int = Field(gt=0, description="sliding event-time window length")
    class_weights: dict[JrClass, float]
    action_weights: dict[Action, float]
    default_threshold: float = Field(gt=0, description="weighted score that opens an alert for unknown roles")
    role_thresholds: dict[str, float] = Field(default_factory=dict, description="role id -> weighted score")
    base_severity: Severity = Severity.medium
    escalation: list[Escalation] = Field(default_factory=list)
    sample_size: int = Field(default=10, ge=0)
    evidence_limit: int = Field(default=50, ge=1)


class Episode:
    """The customers one alert is about, from window start to window end."""

    __slots__ = (
        "start",
        "end",
        "customers",
        "evidence",
        "severity",
        "revision",
        "first_seen",
        "last_seen",
        "actor_org",
        "threshold",
        "score",
        "emitted_records",
        "emitted_last_seen",
    )

    def __init__(self, start: int, end: int, threshold: int):
        self.start, self.end, self.threshold = start, end, threshold
        self.customers: dict[str, list] = {}  # cid -> [records, categories (set), class rank]
        self.evidence: list[str] = []
        self.severity = Severity.info
        self.revision = 0
        self.first_seen = self.last_seen = start
        self.actor_org: str | None = None
        self.score = 0
        self.emitted_records = 0  # records in the last emitted revision
        self.emitted_last_seen = 0  # and its last access: a re-read of known customers is news too

    def add(self, cid: str, n: int, cats: Iterable[str], rank: int) -> None:
        known = self.customers.get(cid)
        if known is None:
            self.customers[cid] = [n, set(cats), rank]
        else:
            known[1].update(cats)
            known[2] = max(known[2], rank)

    def records(self, categories: Iterable[str] | None = None) -> int:
        wanted = set(categories) if categories is not None else None
        return sum(c[0] for c in self.customers.values() if wanted is None or c[1] & wanted)

    def to_json(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "end": self.end,
            "threshold": self.threshold,
            "score": self.score,
            "customers": {k: [v[0], sorted(v[1]), v[2]] for k, v in self.customers.items()},
            "evidence": self.evidence,
            "severity": self.severity.value,
            "revision": self.revision,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "actor_org": self.actor_org,
            "emitted_records": self.emitted_records,
            "emitted_last_seen": self.emitted_last_seen,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Episode:
        ep = cls(d["start"], d["end"], d["threshold"])
        ep.customers = {k: [v[0], set(v[1]), v[2]] for k, v in d["customers"].items()}
        ep.evidence, ep.severity, ep.revision = d["evidence"], Severity(d["severity"]), d["revision"]
        ep.first_seen, ep.last_seen, ep.actor_org, ep.score = (
            d["first_seen"],
            d["last_seen"],
            d["actor_org"],
            d["score"],
        )
        ep.emitted_records, ep.emitted_last_seen = d["emitted_records"], d["emitted_last_seen"]
        return ep


class ActorWindow:
    """Sliding window of one actor: its in-window accesses, in event-time order.

    `total` (every access's weight added up) bounds the score from above, and costs one addition
    per access. The exact score, each distinct customer counted once at its heaviest access, needs
    a multiset of weights per customer: it is kept only while the bound reaches the lowest
    threshold, which most actors' windows never do (`exact()`)."""

    __slots__ = ("entries", "total", "weights", "score", "episode", "last_ts")

    def __init__(self) -> None:
        self.entries: deque[tuple[int, str, int, int, tuple[str, ...], int]] = deque()
        self.total = 0
        self.weights: dict[str, dict[int, int]] | None = None  # cid -> {weight: occurrences}
        self.score = 0  # milli-units, exact while `weights` is kept; integers, so restore is exact
        self.episode: Episode | None = None
        self.last_ts = 0

    def add(self, entries: list[tuple[int, str, int, int, tuple[str, ...], int]]) -> None:
        """One access's entries (same time)."""
        ts = entries[0][0]
        if not self.entries or self.entries[-1][0] <= ts:
            self.entries.extend(entries)
        else:  # an out-of-order access keeps its place in time
            i = len(self.entries)
            while i and self.entries[i - 1][0] > ts:
                i -= 1
            for e in reversed(entries):
                self.entries.insert(i, e)
        for e in entries:
            self.total += e[2]
        if self.weights is not None:
            for e in entries:
                self._count(e[1], e[2], 1)

    def exact(self) -> int:
        """The exact score, building the per-customer weights the first time it is asked."""
        if self.weights is None:
            self.weights, self.score = {}, 0
            for e in self.entries:
                self._count(e[1], e[2], 1)
        return self.score

    def _count(self, cid: str, w: int, delta: int) -> None:
        weights = self.weights
        assert weights is not None
        seen = weights.get(cid)
        if seen is None:  # the common cases first: a new customer, and its only access leaving
            weights[cid] = {w: delta}
            self.score += w
            return
        if delta < 0 and len(seen) == 1 and seen.get(w) == 1:
            del weights[cid]
            self.score -= w
            return
        before = max(seen)
        left = seen.get(w, 0) + delta
        if left:
            seen[w] = left
        else:
            del seen[w]
        self.score += (max(seen) if seen else 0) - before

    def evict_until(self, horizon: int) -> None:
        """Drop accesses at or before `horizon` (event time), keeping the score exact."""
        entries = self.entries
        while entries and entries[0][0] <= horizon:
            _, cid, w, _, _, _ = entries.popleft()
            self.total -= w
            if self.weights is not None:
                self._count(cid, w, -1)

    def to_json(self) -> dict[str, Any]:
        return {
            "entries": [list(e) for e in self.entries],
            "last_ts": self.last_ts,
            "episode": self.episode.to_json() if self.episode else None,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ActorWindow:
        win = cls()
        win.entries.extend((ts, cid, w, n, tuple(cats), rank) for ts, cid, w, n, cats, rank in d["entries"])
        win.total = sum(e[2] for e in win.entries)
        win.last_ts = d["last_ts"]
        win.episode = Episode.from_json(d["episode"]) if d["episode"] else None
        if win.episode is not None:
            win.exact()
        return win


class BulkQueryDetector:
    kind: ClassVar[str] = "bulk_query"
    inputs: ClassVar[dict[str, str]] = {"access": "actor_id"}
    Params: ClassVar[type[BaseModel]] = BulkQueryParams

    def __init__(self, section: DetectorSection, params: BulkQueryParams, store: Store):
        self.section, self.p, self.store = section, params, store
        self.window_ms = params.window_minutes * 60_000
        self._weight = {
            (c, a): round(params.class_weights.get(c, 1.0) * params.action_weights.get(a, 1.0) * MILLI)
            for c in JrClass
            for a in Action
        }
        self._escalation = sorted(params.escalation, key=lambda e: SEVERITY_RANK[e.severity])
        self._lowest_threshold = round(
            min([params.default_threshold, *params.role_thresholds.values()]) * MILLI
        )

    @staticmethod
    def load_value(data: Any) -> Any:
        return ActorWindow.from_json(data) if isinstance(data, dict) else data

    # -- events ---------------------------------------------------------------------------------
    def process(self, stream: str, events: Sequence[Any], ctx: Context) -> Iterable[Finding]:
        touched: dict[str, ActorWindow] = {}
        for ev in events:
            if ev.outcome is not Outcome.success:
                continue  # a denied access returned no data
            if ev.approval_id and self._approved(ev, ctx):
                continue  # seed 004 流程描述(4)④: graded approval covers this access
            win = touched.get(ev.actor_id) or self.store.get(ev.actor_id)  # one lookup per actor and batch
            if win is None:
                win = ActorWindow()
                self.store.put(ev.actor_id, win)
                ctx.timers.register(ev.actor_id, ev.ts + self.window_ms)
            if win.episode is not None and ev.ts >= win.episode.end:
                # the actor's own clock passed the episode: close it before a new one can open
                yield self._close(ev.actor_id, win)
            self._add(win, ev, ctx)
            touched[ev.actor_id] = win
        for actor, win in touched.items():
            self.store.touch(actor)
            ep = win.episode
            if ep is not None and (
                self._refresh_severity(ep)
                or ep.records() > ep.emitted_records
                or ep.last_seen > ep.emitted_last_seen
            ):  # at most one revision per actor and batch; the runtime sends the newest per checkpoint
                yield self._finding(actor, ep, closed=False)

    def _approved(self, ev: Any, ctx: Context) -> bool:
        """An approval covers an access of an active employee, for its purpose, before it expires
        and within its record budget (seed 004 流程描述(4)④⑤: graded approval, least privilege)."""
        ent = ctx.entitlement(ev.actor_id, ev.ts)
        if ent is None or ent.status is not EmployeeStatus.active:
            return False
        approval = next((a for a in ent.approvals if a.approval_id == ev.approval_id), None)
        if approval is None or ev.ts > approval.expires_ts or (ev.purpose and ev.purpose != approval.purpose):
            return False
        key = APPROVAL + approval.approval_id
        used = self.store.get(key, 0) + max(ev.row_count, len(ev.subject_ids))
        if used > approval.max_records:
            return False
        self.store.put(key, used)
        return True

    def _add(self, win: ActorWindow, ev: Any, ctx: Context) -> None:
        if ev.ts <= win.last_ts - self.window_ms:
            return  # older than the actor's current window: it can no longer change the score
        cls, cats = ctx.catalog.profile(ev.fields)
        rank = CLASS_RANK[cls]
        w = self._weight[(cls, ev.action)]
        horizon = ev.ts - self.window_ms
        if win.entries and win.entries[0][0] <= horizon:
            win.evict_until(horizon)
        if ev.ts > win.last_ts:
            win.last_ts = ev.ts
        ids = dict.fromkeys(ev.subject_ids)
        entries = [(ev.ts, cid, w, 1, cats, rank) for cid in ids]
        unidentified = ev.row_count - len(ids)
        if unidentified > 0:  # rows the log counts but does not name: each is a record (条)
            entries.append((ev.ts, f"#{ev.event_id}", w * unidentified, unidentified, cats, rank))
        if entries:
            win.add(entries)
        ep = win.episode
        if ep is None:
            if win.total < self._lowest_threshold or win.exact() < self._lowest_threshold:
                if win.weights is not None and win.total < self._lowest_threshold // 2:
                    win.weights = None  # far below again: back to the running total alone
                return  # no role could cross yet: skip the entitlement lookup
            ent = ctx.entitlement(ev.actor_id, ev.ts)
            threshold = self._threshold(ent)
            if win.score < threshold:
                return
            ep = win.episode = Episode(ev.ts - self.window_ms, ev.ts + self.window_ms, threshold)
            for _, cid, _, n, ecats, erank in win.entries:
                ep.add(cid, n, ecats, erank)
            ep.first_seen = win.entries[0][0]
            ep.actor_org = ev.actor_org or (ent.org_id if ent else None)
        else:
            for e in entries:
                ep.add(e[1], e[3], cats, rank)
        ep.score = max(ep.score, win.exact())
        self._note(ep, ev)

    def _note(self, ep: Episode, ev: Any) -> None:
        ep.last_seen = max(ep.last_seen, ev.ts)
        if len(ep.evidence) < self.p.evidence_limit:
            ep.evidence.append(ev.event_id)

    def _threshold(self, ent: Any) -> int:
        """Milli-units. An employee not active (transferred away, suspended, terminated) keeps no role
        allowance: seed 004 人员管理(4)(5), permissions change at once."""
        if ent is None or ent.status is not EmployeeStatus.active:
            return round(self.p.default_threshold * MILLI)
        known = [self.p.role_thresholds[r] for r in ent.roles if r in self.p.role_thresholds]
        return round((max(known) if known else self.p.default_threshold) * MILLI)  # the most reading role

    def _refresh_severity(self, ep: Episode) -> bool:
        """Set the episode's severity from its counts; True when the alert must be (re)emitted."""
        sev = self.p.base_severity
        for step in self._escalation:
            if (
                ep.records(step.categories) >= step.min_records
                and SEVERITY_RANK[step.severity] > SEVERITY_RANK[sev]
            ):
                sev = step.severity
        if ep.revision == 0 or SEVERITY_RANK[sev] > SEVERITY_RANK[ep.severity]:
            ep.severity = sev
            return True
        return False

    # -- time -----------------------------------------------------------------------------------
    def on_timer(self, actor: str, deadline_ms: int, ctx: Context) -> Iterable[Finding]:
        """Close a due episode; forget an actor whose window emptied; else wait for what is next."""
        win = self.store.get(actor)
        if win is None:
            return
        if win.episode is not None and ctx.watermark >= win.episode.end:
            yield self._close(actor, win)
            self.store.touch(actor)
        due = win.episode.end if win.episode is not None else win.last_ts + self.window_ms
        if win.episode is None and due <= ctx.watermark:
            self.store.delete(actor)
        else:
            ctx.timers.register(actor, due)

    def _close(self, actor: str, win: ActorWindow) -> Finding:
        ep = win.episode
        assert ep is not None
        win.episode = None
        # what the episode reported must not open the next one: a new alert needs new reading
        win.evict_until(ep.end - 1)
        self._refresh_severity(ep)
        return self._finding(actor, ep, closed=True)

    # -- output ---------------------------------------------------------------------------------
    def _finding(self, actor: str, ep: Episode, closed: bool) -> Finding:
        ep.revision += 1
        ep.emitted_records, ep.emitted_last_seen = ep.records(), ep.last_seen
        by_class = {"C3": 0, "C2": 0, "C1": 0}
        by_category: dict[str, int] = {}
        for n, cats, rank in ep.customers.values():
            by_class[RANK_CLASS[rank]] += n
            for c in cats:
                by_category[c] = by_category.get(c, 0) + n
        total = sum(by_class.values())
        top = next(c for c in ("C3", "C2", "C1") if by_class[c]) if total else "C1"
        named = [c for c in ep.customers if not c.startswith("#")]
        legal = [
            f"{s.min_records}+ {'/'.join(s.categories)} records ({s.regulation})"
            for s in self._escalation
            if ep.records(s.categories) >= s.min_records
        ]
        summary = (
            f"{actor} read PFI of {total} distinct customers (C3 {by_class['C3']}, C2 {by_class['C2']}, "
            f"C1 {by_class['C1']}) without approval; its {self.p.window_minutes}-minute sliding-window score "
            f"{ep.score / MILLI:.0f} reached the role threshold {ep.threshold / MILLI:.0f}"
            + (f"; reached {'; '.join(legal)}" if legal else "")
        )
        counts = {f"class_{k}": v for k, v in by_class.items()} | {
            f"category_{k}": v for k, v in sorted(by_category.items())
        }
        counts["weighted_score"] = ep.score // MILLI
        counts["threshold"] = ep.threshold // MILLI
        return Finding(
            detector=self.kind,
            rule_id=self.section.rule_id,
            key=actor,
            window_start=ep.start,
            window_end=ep.end,
            severity=ep.severity,
            revision=ep.revision,
            closed=closed,
            summary=summary,
            jr_class=top,
            actor_id=actor,
            actor_org=ep.actor_org,
            subject_count=total,
            subject_sample=named[: self.p.sample_size],
            counts=counts,
            evidence_event_ids=list(ep.evidence),
            first_seen=ep.first_seen,
            last_seen=ep.last_seen,
        )
