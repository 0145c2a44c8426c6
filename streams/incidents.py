"""Leakage incidents: the engine's stage after the detectors (issue 14, docs/incidents.md).

Leakage-class alerts (policy/incidents.yaml `classes`: bulk exports past the art. 5 thresholds,
C3 to a third party or an SDK, unauthorized cross-border transfers) of one actor, recipient or SDK
whose first event falls in one `window_hours` window are one incident. The stage runs beside the
detectors of each partition number: a detector's alerts about one actor / recipient / SDK all come
from the partition that key hashes to, so the incident's state (a keyed store entry per incident,
checkpointed with the partition) sees every one of them, live or in a replay.

What makes replay equal live:
- the window is fixed by the alert's own window start (aligned to the bank's calendar:
  recipients.yaml `timezone`, so a 24 h window is the bank's day, not the UTC day that splits a
  Beijing morning at 08:00), part of the alert's id, so every revision of an alert joins the same
  incident whatever order revisions come in;
- the incident id is hash(group, key, window start), the key as the detector named it (a card,
  ID or mobile number in it sealed at the engine's door, streams/personal_numbers.py, and masked by
  form where the incident shows it: streams/alerts.py `mask_personal`);
- the incident is a function of its alerts' newest revisions, and its revision is the sum of
  theirs (+1 once closed): however batches fall, the same alerts give the same record (its
  `detected_at` too: the time its detector could first know, `Finding.detected_at`, not a
  revision's last event, which a bigger batch places later);
- it closes on an event-time timer `settle_minutes` after its window (or after the latest of its
  alerts' own windows, if that ends later), and is forgotten
  `keep_days` after that, on the clock of the detectors that feed its group (the slowest of them
  on the partition): a faster stream on the same partition, a month of lifecycle history, must
  not close and forget an incident while its own detector is still reading that day.

Pseudonyms only: customer ids were replaced at the engine's door; summaries hold no C3 value.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from detectors.base import AGGREGATE, LEAKAGE_CANDIDATE, Finding, n_of
from policy.catalog import UNKNOWN_FIELD_CLASS, Catalog
from policy.clause import stored
from policy.incidents import IncidentPolicy, LeakageClass
from schemas.incident import (
    Category,
    DueReport,
    Incident,
    IncidentStatus,
    LegalTier,
    MemberAlert,
    Notice,
    Subjects,
    Text,
    Unnamed,
)
from schemas.models import SEVERITY_RANK, Alert, Severity
from streams.alert_query import records_and_customers
from streams.alerts import mask_personal

if TYPE_CHECKING:
    from streams.engine import Namespace

HOUR_MS = 3_600_000
INCIDENT = "i:"  # store key prefix: the incident's state
EVIDENCE_LIMIT = 200
CLASS_ORDER = ("C3", "C2", "C1")
# the notice's category for fields neither classification.yaml nor sdks.yaml names (its words:
# policy/incidents.yaml `undeclared_fields`)
UNDECLARED = "undeclared_fields"
# a forgotten incident's state: its generation and id, kept so a late member never reuses the id
FORGOTTEN = "forgotten"
MEMBERS = "member_ids"  # the stored incident's: its members are keys of their own (`member_key`)


def member_key(ikey: str, alert_id: str) -> str:
    """Unique per (incident, alert): an incident's key ends in its window's start, after a '/'."""
    return f"{INCIDENT}{ikey}\x1f{alert_id}"


# A member's lists of customers grow with its alert's revisions: a spree's thousands, rewritten at
# every revision, made its changelog grow with the square of the spree (2.9 of 41.5 MB at a
# checkpoint every 100 events). They are kept in parts of their own (`_put_member`): a revision
# that only adds to them writes what it adds; the first revision, one that takes a customer out
# (an alert's sample), and every PART_LIMIT-th write them whole, the older parts deleted.
GROWING = ("subjects", "by_category", "by_class")
PART_LIMIT = 8


def part_key(ikey: str, alert_id: str, seq: int) -> str:
    """Unique per (member, seq): an alert id holds no '#'."""
    return f"{member_key(ikey, alert_id)}#{seq}"


class StoredMember:
    """A member in the store: its value without the lists its parts hold (`GROWING`)."""

    __slots__ = ("member",)

    def __init__(self, member: dict[str, Any]) -> None:
        self.member = member

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.member.items() if k not in GROWING}


def _added(known: dict[str, Any], member: dict[str, Any]) -> dict[str, Any] | None:
    """What the member's lists hold that the revision before's did not; None where one lost an
    item or a list came or went (written whole then)."""
    added: dict[str, Any] = {}
    for name in GROWING:
        old, new = known.get(name), member[name]
        if old is None or new is None:
            if old is not new:  # a list came or went
                return None
            added[name] = None
        elif name == "subjects":
            if (gained := _gained(old, new)) is None:
                return None
            added[name] = gained
        else:
            if not old.keys() <= new.keys():
                return None
            per = {k: _gained(old.get(k, ()), v) for k, v in new.items()}
            if any(p is None for p in per.values()):
                return None
            added[name] = {k: v for k, v in per.items() if v}
    return added


def _gained(old: list[str], new: list[str]) -> list[str] | None:
    """The items of `new` not in `old`, or None if `old` has one `new` lacks."""
    before = set(old)
    gained = [x for x in new if x not in before]
    return gained if len(new) - len(gained) == len(before) else None


def _joined(member: dict[str, Any], parts: list[dict[str, Any]]) -> dict[str, Any]:
    """A member stored in parts, its lists whole again (each sorted, as a revision makes them)."""
    whole = dict(member)
    whole["subjects"] = sorted({s for p in parts for s in p["subjects"]})
    for name in ("by_category", "by_class"):
        if parts[0][name] is None:
            whole[name] = None
            continue
        merged: dict[str, set[str]] = {}
        for p in parts:
            for k, v in p[name].items():
                merged.setdefault(k, set()).update(v)
        whole[name] = {k: sorted(v) for k, v in merged.items()}
    return whole


class Stored:
    """An incident's state in the store: its members as keys of their own, so a checkpoint writes
    the member a revision changed, not the incident (a day's spree and its transfers, 32 kB, were
    rewritten at every checkpoint one of them was revised in)."""

    __slots__ = ("state",)

    def __init__(self, state: dict[str, Any]) -> None:
        self.state = state

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.state.items() if k != "members"} | {
            MEMBERS: sorted(self.state["members"])
        }


def incident_id(group: str, key: str, window_start: int, generation: int = 0) -> str:
    """hash(group, key, window start), and the generation past the first: a window's incident that
    was forgotten and then got a late member is a new incident, never the old id over less."""
    later = f"\x1f{generation}" if generation else ""
    raw = f"incident\x1f{group}\x1f{key}\x1f{window_start}{later}".encode()
    return hashlib.sha256(raw).hexdigest()[:32]


class Revised:
    """An incident's revision, drafted when it is taken (`Engine.take_incidents`, at a checkpoint):
    the sinks take the newest revision per id, and a spree's incident, revised with each of its
    alerts, was drafted whole (its customers unioned, its notice written) at each revision, to be
    replaced by the next before a checkpoint wrote it. Its state changes only by a later revision
    of the same id, which replaces this one."""

    __slots__ = ("incident_id", "revision", "stage", "state")

    def __init__(self, stage: IncidentStage, state: dict[str, Any]) -> None:
        self.stage, self.state = stage, state
        self.incident_id, self.revision = stage.identify(state), _revision(state)

    def incident(self) -> Incident:
        return self.stage.incident(self.state)


class IncidentStage:
    """One partition number's incidents: fed (finding, alert) pairs, returns incident revisions."""

    def __init__(self, policy: IncidentPolicy, catalog: Catalog, store: Namespace):
        self.p, self.catalog, self.store = policy, catalog, store
        # one timer service per group: each closes on its own detectors' clock (`Engine.advance`)
        self.timers = {g: store.timers(f"t{g}:") for g in sorted(set(policy.group_by.values()))}
        self.window_ms = policy.window_hours * HOUR_MS
        self.tz = ZoneInfo(catalog.policy.recipients.timezone)
        self.checked = {k for c in policy.classes.values() for cond in c.conditions for k in cond.counts}
        # the highest class of any field each category holds (`_category_top`), read once: a notice
        # asked it of every field of the policy for each of its categories and members
        self.tops: dict[str, str] = {}
        for f in catalog.policy.classification.fields.values():
            if _class_rank(f.jr_class.value) > _class_rank(self.tops.get(f.category, "")):
                self.tops[f.category] = f.jr_class.value

    # -- input ----------------------------------------------------------------------------------
    def leakage_class(self, alert: Alert) -> str | None:
        """The first leakage class whose match the alert meets (policy order), or None."""
        for cid, cls in self.p.classes.items():
            for m in cls.match:
                if (
                    m.detector == alert.detector
                    and (not m.rule_ids or alert.rule_id in m.rule_ids)
                    and (not m.leakage_candidate or alert.counts.get(LEAKAGE_CANDIDATE) == 1)
                    and SEVERITY_RANK[alert.severity] >= SEVERITY_RANK[m.min_severity]
                    and _class_rank(alert.jr_class) >= _class_rank(m.min_class)
                ):
                    return cid
        return None

    def observe(self, pairs: Iterable[tuple[Finding, Alert]]) -> list[Revised]:
        """Alerts (newest revision per id) in; the incidents they changed out."""
        changed: dict[str, dict[str, Any]] = {}
        for finding, alert in pairs:
            cid = self.leakage_class(alert)
            # an aggregate report names no one: nothing of anyone's leaked, no one to notify
            if cid is None or not alert.actor_id or alert.counts.get(AGGREGATE):
                continue
            group = self.p.group_by[alert.detector]
            start = self._window_of(alert.window_start)
            # grouped by the actor as named, not by the incident's masked key: two employees whose
            # ids hold different mobile numbers would share one incident, and one id
            ikey = f"{group}/{alert.actor_id}/{start}"
            state = self._state(ikey)
            if state is None or FORGOTTEN in state:
                state = {
                    "group": group,
                    "key": alert.actor_id,
                    "start": start,
                    "closed": False,
                    "members": {},
                    **_successor(state),
                }
                self.store.put(INCIDENT + ikey, Stored(state))
                self.timers[group].register(ikey, start + self.window_ms + self.p.settle_minutes * 60_000)
            known = state["members"].get(alert.alert_id)
            if known is not None and known["revision"] >= alert.revision:
                continue  # a revision already counted (a replay of the same output)
            member = self._member(finding, alert, cid)
            # detected (发现): when its detector could first know it, as its first leakage-class
            # revision said (`Finding.detected_at`, else its first event), kept as later revisions
            # move on; a member stored before it was kept has none
            member["detected"] = (
                known.get("detected")
                if known is not None
                else finding.detected_at
                if finding.detected_at is not None
                else alert.first_seen
            )
            state["members"][alert.alert_id] = member
            self._put_member(ikey, alert.alert_id, member, known)
            if known is None:  # the stored incident lists its members; put, not touch: the
                # member's put may have pushed it out of the cache
                self.store.put(INCIDENT + ikey, Stored(state))
            changed[ikey] = state
        return [Revised(self, state) for state in changed.values()]

    def _put_member(
        self, ikey: str, alert_id: str, member: dict[str, Any], known: dict[str, Any] | None
    ) -> None:
        """The member's value, and a part with what its lists gained since `known` (the revision
        before), or with the lists whole (`GROWING`)."""
        parts: list[int] = (known or {}).get("parts", [])
        added = _added(known, member) if known is not None and "parts" in known else None
        seq = (known or {}).get("next_part", 0)
        if added is None or len(parts) >= PART_LIMIT:
            for old in parts:
                self.store.delete(part_key(ikey, alert_id, old))
            parts, added = [], {name: member[name] for name in GROWING}
        self.store.put(part_key(ikey, alert_id, seq), added)
        member["parts"], member["next_part"] = [*parts, seq], seq + 1
        self.store.put(member_key(ikey, alert_id), StoredMember(member))

    def _stored_member(self, ikey: str, alert_id: str) -> dict[str, Any] | None:
        """A member as the store holds it, its lists whole (read from its parts if they hold them)."""
        value = self.store.get(member_key(ikey, alert_id))
        if isinstance(value, StoredMember):
            return value.member
        if value is None or "parts" not in value:  # none, or stored whole before the parts
            return value
        parts = [self.store.get(part_key(ikey, alert_id, seq)) for seq in value["parts"]]
        if any(p is None for p in parts):
            raise RuntimeError(
                f"incidents: member {alert_id} of {ikey!r} names a part its store does not hold"
            )
        member = _joined(value, parts)
        self.store.adopt(member_key(ikey, alert_id), StoredMember(member))
        return member

    def _state(self, ikey: str) -> dict[str, Any] | None:
        """The incident's state with its members, a tombstone, or None. Read from the store, its
        members are read from their keys; stored whole by a lifemon before the forty-fourth stop,
        its members go to their keys now."""
        value = self.store.get(INCIDENT + ikey)
        if isinstance(value, Stored):
            return value.state
        if value is None or FORGOTTEN in value:
            return value
        if MEMBERS in value:
            ids = value.pop(MEMBERS)
            members = {a: self._stored_member(ikey, a) for a in ids}
            if any(m is None for m in members.values()):
                raise RuntimeError(f"incidents: state of {ikey!r} names a member its store does not hold")
            value["members"] = members
            self.store.adopt(INCIDENT + ikey, Stored(value))  # the same value, live: nothing to write
        else:
            for alert_id, member in value["members"].items():
                self.store.put(member_key(ikey, alert_id), member)
            self.store.put(INCIDENT + ikey, Stored(value))
        return value

    def _window_of(self, ts: int) -> int:
        """The start of the window holding `ts`, windows counted from midnight in the bank's
        calendar (its UTC offset at `ts`)."""
        offset = datetime.fromtimestamp(ts / 1000, UTC).astimezone(self.tz).utcoffset()
        shift = int(offset.total_seconds() * 1000) if offset else 0
        return (ts + shift) // self.window_ms * self.window_ms - shift

    def on_timer(self, ikey: str, deadline_ms: int, clock_ms: int | None = None) -> list[Revised]:
        """The window has settled: close the incident, unless an alert's own window still runs
        (an overnight spree joins the day it began: its incident waits for the spree to settle);
        `keep_days` later, forget it."""
        state = self._state(ikey)
        if state is None:
            return []
        if FORGOTTEN in state:
            return []
        if state["closed"]:
            # the members go (keep_days bounds the store), a tombstone stays: a late log for this
            # window then opens the next generation's incident, which names this one, instead of
            # reusing its id with only the late member and replacing the stored incident with less
            # (probe_q4 #1: 101 customers became 1)
            for alert_id, member in state["members"].items():
                self.store.delete(member_key(ikey, alert_id))
                for seq in member.get("parts", ()):
                    self.store.delete(part_key(ikey, alert_id, seq))
            self.store.put(
                INCIDENT + ikey,
                {FORGOTTEN: state.get("generation", 0), "incident_id": self.identify(state)},
            )
            return []
        settled = max((m.get("window_end", 0) for m in state["members"].values()), default=0)
        if settled + self.p.settle_minutes * 60_000 > deadline_ms:
            self.timers[state["group"]].register(ikey, settled + self.p.settle_minutes * 60_000)
            return []
        state["closed"] = True
        self.store.put(INCIDENT + ikey, Stored(state))
        # keep_days from when the clock closed it: a late log's incident (its window days behind the
        # clock) would otherwise be forgotten at once, and each further late record open another
        closed_at = max(deadline_ms, clock_ms or 0)
        self.timers[state["group"]].register(ikey, closed_at + self.p.keep_days * 24 * HOUR_MS)
        return [Revised(self, state)]

    def _member(self, finding: Finding, alert: Alert, cid: str) -> dict[str, Any]:
        categories = {k[len("category_") :] for k in alert.counts if k.startswith("category_")}
        # an SDK counts observations, not records; the other detectors count a record per subject
        records = alert.counts.get("records", 0 if "observations" in alert.counts else alert.subject_count)
        # PIPL art. 57 ¶1 names the categories: an alert that names none the policy knows says so
        sent = _fields(finding, alert)
        every = sorted(categories | {self._category(f) for f in sent}) or [UNDECLARED]
        return {
            "revision": alert.revision,
            "class": cid,
            "detector": alert.detector,
            "rule_id": alert.rule_id,
            "severity": alert.severity.value,
            "jr_class": alert.jr_class,
            "summary": alert.summary,
            "title_zh": alert.title_zh,
            "title_en": alert.title_en,
            # the counts that say which of its rule's conditions failed (`LeakageClass.conditions`)
            "checks": {k: n for k, n in alert.counts.items() if k in self.checked},
            "categories": every,
            # a category's records where the alert counts them, else every record holds each category
            "records_by_category": {c: alert.counts.get(f"category_{c}", records) for c in every},
            "class_by_category": self._sent_classes(sent),
            "subjects": sorted(set(finding.subjects or alert.subjects_sample)),
            # what was read of whom, where the finding knows it per subject (None: all of it of each)
            "by_category": {c: sorted(s) for c, s in finding.subjects_by_category.items()} or None,
            "by_class": {c: sorted(s) for c, s in finding.subjects_by_class.items()} or None,
            # the customers as `lifemon alerts` counts them (unnamed rows are no customers)
            "reported": records_and_customers(alert.subject_count, alert.counts)[1] or 0,
            "records": records,
            # bulk_query: the count art. 5 judges (the day's) and the step it reached, and each tier's
            "legal_records": alert.counts.get("legal_records", 0),
            "legal_threshold": alert.counts.get("legal_threshold", 0),
            "legal_tiers": [
                {
                    "tier": list(t.tier),
                    "read": list(t.read),
                    "records": t.records,
                    "threshold": t.threshold,
                    "severity": t.severity.value,
                    "regulation": t.regulation.zh,
                    "regulation_en": t.regulation.en,
                    "horizon_hours": t.horizon_hours,
                }
                for t in finding.legal
            ],
            # an SDK's collections name no customer (docs/incidents.md): it counts these instead
            "observations": alert.counts.get("observations", 0),
            "devices": alert.counts.get("devices", 0),
            "evidence": list(alert.evidence_event_ids),
            "origin": mask_personal(finding.origin),
            "first_seen": alert.first_seen,
            "last_seen": alert.last_seen,
            "window_end": alert.window_end,
        }

    def _sent_classes(self, fields: list[str]) -> dict[str, str]:
        """Each category's class as the fields sent in it make it: an SMS code alone is C2 (JR/T
        0171 §4.2 C2 c)), though its category holds C3 secrets; a combination the fields complete
        (an account number with its SMS code, C3) raises the categories of its own fields only."""
        found: dict[str, str] = {}

        def raise_to(category: str, cls: str) -> None:
            if _class_rank(cls) > _class_rank(found.get(category, "")):
                found[category] = cls

        for f in fields:
            raise_to(self._category(f), self._field_class(f))
        sent = frozenset(fields)
        for combo, cls in self.catalog.combinations:
            if combo <= sent:
                for f in combo:
                    raise_to(self._category(f), cls.value)
        return found

    def _field_class(self, field_id: str) -> str:
        cls = self.catalog.field_class.get(field_id)
        if cls is None:
            sdk_field = self.catalog.policy.sdks.sdk_fields.get(field_id)
            cls = sdk_field.jr_class if sdk_field and sdk_field.jr_class else UNKNOWN_FIELD_CLASS
        return cls.value

    def _category(self, field_id: str) -> str:
        """A catalog field's category; an SDK field the catalog does not list stands for itself
        (named by sdks.yaml); a field neither names is undeclared (an SDK's `(unknown field)`)."""
        if field_id in self.catalog.field_category:
            return self.catalog.field_category[field_id]
        return field_id if field_id in self.catalog.policy.sdks.sdk_fields else UNDECLARED

    # -- output ---------------------------------------------------------------------------------
    @staticmethod
    def identify(state: dict[str, Any]) -> str:
        return incident_id(state["group"], state["key"], state["start"], state.get("generation", 0))

    def incident(self, state: dict[str, Any]) -> Incident:
        members = [state["members"][a] | {"alert_id": a} for a in sorted(state["members"])]
        classes = sorted({m["class"] for m in members}, key=list(self.p.classes).index)
        policies = [self.p.classes[c] for c in classes]
        severity = max((Severity(m["severity"]) for m in members), key=SEVERITY_RANK.__getitem__)
        first = min(m["first_seen"] for m in members)
        detected = _detected(members)
        named: set[str] = set()
        by_class: dict[str, set[str]] = {}
        by_category: dict[str, set[str]] = {}
        for m in members:
            named.update(m["subjects"])
            # members stored before per-subject figures count every subject under all of them
            for cls, subjects in (m.get("by_class") or {m["jr_class"]: m["subjects"]}).items():
                by_class.setdefault(cls, set()).update(subjects)
            for c, subjects in (
                m.get("by_category") or dict.fromkeys(m["categories"], m["subjects"])
            ).items():
                by_category.setdefault(c, set()).update(subjects)
        listed = sorted(named)
        revision = _revision(state)
        status = (
            IncidentStatus.closed
            if state["closed"]
            else IncidentStatus.open
            if revision == 1
            else IncidentStatus.updated
        )
        evidence = list(dict.fromkeys(e for m in members for e in m["evidence"]))[:EVIDENCE_LIMIT]
        groups = _by_evidence(members)
        return Incident(
            incident_id=self.identify(state),
            follows=state.get("follows"),
            revision=revision,
            status=status,
            group=state["group"],
            key=mask_personal(state["key"]),
            window_start=state["start"],
            window_end=state["start"] + self.window_ms,
            first_seen=first,
            detected_at=detected,
            last_seen=max(m["last_seen"] for m in members),
            severity=severity,
            leakage_classes=classes,
            title_zh="; ".join(c.title.zh for c in policies),
            title_en="; ".join(c.title.en for c in policies),
            **stored(list(dict.fromkeys(r for c in policies for r in c.regulation))),
            subjects=Subjects(
                distinct=len(named),
                reported=_once_per_evidence(groups, "reported"),
                unnamed=_once_per_evidence(groups, _unnamed()),
                unnamed_from=_unnamed_from(members),
                by_class={c: len(by_class[c]) for c in CLASS_ORDER if c in by_class},
                by_category={c: len(s) for c, s in sorted(by_category.items())},
                pseudonyms=listed[: self.p.subject_list_limit],
                truncated=len(listed) > self.p.subject_list_limit,
            ),
            records=_at_least_legal(_once_per_evidence(groups, "records"), members),
            observations=_once_per_evidence(groups, _figure("observations")),
            devices=_once_per_evidence(groups, _figure("devices")),
            notice=self._notice(members, groups, classes, by_category),
            deadlines=self._deadlines(classes, severity, detected if detected is not None else first),
            alerts=[
                MemberAlert(
                    alert_id=m["alert_id"],
                    revision=m["revision"],
                    detector=m["detector"],
                    rule_id=m["rule_id"],
                    severity=Severity(m["severity"]),
                    jr_class=m["jr_class"],
                    leakage_class=m["class"],
                    summary=m["summary"],
                )
                for m in members
            ],
            evidence_event_ids=evidence,
        )

    def _notice(
        self,
        members: Sequence[dict[str, Any]],
        groups: Sequence[list[dict[str, Any]]],
        classes: Sequence[str],
        by_category: dict[str, set[str]],
    ) -> Notice:
        """PIPL art. 57 ¶1: categories, cause and possible harm; measures and what individuals can
        do; a contact. The categories and the cause come from the alerts, the rest from policy.
        Each class's cause cites the alerts of that class only (a CVN sent is no consent missing)."""
        policies: list[LeakageClass] = [self.p.classes[c] for c in classes]
        of_class = [[m for m in members if m["class"] == c] for c in classes]
        tiers = [self._legal_tiers(ms) for ms in of_class]
        cause = Text(
            zh="\n".join(
                p.cause.zh.format(what=_what(ms, p, ts, zh=True))
                for p, ms, ts in zip(policies, of_class, tiers, strict=True)
            ),
            en="\n".join(
                p.cause.en.format(what=_what(ms, p, ts, zh=False))
                for p, ms, ts in zip(policies, of_class, tiers, strict=True)
            ),
        )
        # a category the alerts read of no named customer (a download's unnamed rows) is still read
        read = sorted(set(by_category).union(*(m["categories"] for m in members)))
        return Notice(
            categories=[
                self._category_entry(
                    c,
                    self._sent_class(members, c),
                    len(by_category.get(c, ())),
                    _once_per_evidence(groups, _unnamed(c)),
                    # its own records: the art. 5 count is its tier's (`legal_tiers`), not each category's
                    _once_per_evidence(groups, _records_of(c)),
                    _once_per_evidence(groups, _figure("observations", c)),
                    _once_per_evidence(groups, _figure("devices", c)),
                )
                for c in read
            ],
            legal_tiers=self._legal_tiers(members),
            cause=cause,
            harm=[Text(zh=c.harm.zh, en=c.harm.en) for c in policies],
            measures=_unique(t for c in policies for t in c.measures),
            individuals=_unique(t for c in policies for t in c.individuals),
            contact=Text(zh=self.p.contact.zh, en=self.p.contact.en),
        )

    def _legal_tiers(self, members: Sequence[dict[str, Any]]) -> list[LegalTier]:
        """Each art. 5 tier the members reached, once: its largest count (each alert's is the day's
        up to it, a later one's holds the earlier's) and the gravest step reached, the gravest
        tier first. A member stored before tiers were kept gives its gravest step's, span unknown."""
        found: dict[tuple[str, ...], dict[str, Any]] = {}
        read: dict[tuple[str, ...], set[str]] = {}
        for m in members:
            for t in m.get("legal_tiers", _stored_tier(m)):
                key = tuple(sorted(t["tier"]))  # a tier's steps may list its categories in other orders
                read.setdefault(key, set()).update(t["read"])
                known = found.get(key)
                if known is None or _step_rank(t) > _step_rank(known):
                    found[key] = t | {"records": max(t["records"], known["records"] if known else 0)}
                elif t["records"] > known["records"]:
                    known.update(records=t["records"], horizon_hours=t["horizon_hours"])
        return [
            self._legal_tier(t, sorted(read[key], key=t["tier"].index))
            for key, t in sorted(found.items(), key=lambda kt: _step_rank(kt[1]), reverse=True)
        ]

    def _legal_tier(self, t: dict[str, Any], read: list[str]) -> LegalTier:
        """A tier's line, `交易信息、账户信息（解释第五条第一款(四)）24 小时内累计 1,107 条记录，达到 500 条标准（情节严重）`:
        the clause of its regulation, not its words (the categories say what was read)."""
        cats = self.catalog.policy.classification.categories
        zh_names = "、".join(cats[c].zh if c in cats else c for c in read)
        en_names = ", ".join(cats[c].en if c in cats else c for c in read)
        clause = _article(t["regulation"]) or "解释第五条"
        # a member stored before the English was kept names it in Chinese in both lines
        clause_en = _article(t.get("regulation_en", "")) or clause
        zh_tier, en_tier = TIERS.get(t["severity"], ("", ""))
        hours = t["horizon_hours"]
        zh_span, en_span = (
            ("本次批量查询", "in one episode")
            if hours == 0
            else ("累计", "counted")
            if hours is None
            else (f"{hours} 小时内累计", f"over {hours} h")
        )
        return LegalTier(
            regulation=t["regulation"],
            regulation_en=t.get("regulation_en", ""),
            categories=read,
            records=t["records"],
            threshold=t["threshold"],
            severity=Severity(t["severity"]),
            horizon_hours=hours,
            said=Text(
                zh=f"{zh_names}（{clause}）{zh_span} {t['records']:,} 条记录，达到 {t['threshold']:,} 条标准"
                + (f"（{zh_tier}）" if zh_tier else ""),
                en=f"{en_names} ({clause_en}): {t['records']:,} records {en_span} reached {t['threshold']:,}"
                + (f" ({en_tier}, {zh_tier})" if en_tier else ""),
            ),
        )

    def _sent_class(self, members: Sequence[dict[str, Any]], category: str) -> str:
        """The highest class the members sent in `category` (`_sent_classes`). A member that kept
        none for it (bulk_query's alerts count categories, not fields; an earlier lifemon's member)
        counts the category's highest class, never above its alert's."""
        found = []
        for m in members:
            if category not in m["categories"]:
                continue
            sent = m.get("class_by_category", {}).get(category)
            if sent is None:
                top = self._category_top(category)
                sent = min(top, m["jr_class"], key=_class_rank) if m["jr_class"] in CLASS_ORDER else top
            found.append(sent)
        return max(found, key=_class_rank, default=self._category_top(category))

    def _category_top(self, cid: str) -> str:
        """The highest class of any field the policy puts in category `cid` (C1 for none)."""
        if cid == UNDECLARED:  # JR/T 0171 §4.2 C1 c): what the policy does not class is C1
            return UNKNOWN_FIELD_CLASS.value
        if cid in self.catalog.policy.classification.categories:
            return self.tops.get(cid, "C1")
        sdk_field = self.catalog.policy.sdks.sdk_fields.get(cid)
        return sdk_field.jr_class.value if sdk_field and sdk_field.jr_class else "C1"

    def _category_entry(
        self, cid: str, cls: str, subjects: int, unnamed: int, records: int, observations: int, devices: int
    ) -> Category:
        """The notice's line for category `cid`: its names, the class `cls` of what was sent in it,
        and its figures."""
        counted = {
            "subjects": subjects,
            "unnamed": unnamed,
            "records": records,
            "observations": observations,
            "devices": devices,
        }
        cats = self.catalog.policy.classification.categories
        if cid == UNDECLARED:
            said = self.p.undeclared_fields
            return Category(id=cid, zh=said.zh, en=said.en, jr_class=cls, **counted)
        if cid in cats:
            return Category(id=cid, zh=cats[cid].zh, en=cats[cid].en, jr_class=cls, **counted)
        sdk_field = self.catalog.policy.sdks.sdk_fields.get(cid)
        zh, en = (sdk_field.zh, sdk_field.en or cid) if sdk_field else (cid, cid)
        return Category(id=cid, zh=zh, en=en, jr_class=cls, **counted)

    def _deadlines(self, classes: Sequence[str], severity: Severity, since: int) -> list[DueReport]:
        """The reports owed, each `within_hours` of `since`: the regulators' clocks run from
        discovery (发现, PIPL art. 57 立即; seed 004 应急管理(4)), not from the leak's first event."""
        return [
            DueReport(
                to=Text(zh=d.to.zh, en=d.to.en),
                due=since + int(d.within_hours * HOUR_MS),
                within_hours=d.within_hours,
                regulation=d.regulation.zh,
                regulation_en=d.regulation.en,
                notice=d.notice,
                waiver=d.waiver.zh if d.waiver else "",
                waiver_en=d.waiver.en if d.waiver else "",
            )
            for d in self.p.deadlines
            if (not d.classes or set(d.classes) & set(classes))
            and SEVERITY_RANK[severity] >= SEVERITY_RANK[d.min_severity]
        ]


def _successor(tombstone: dict[str, Any] | None) -> dict[str, Any]:
    """A new incident's generation: the first, or the one after a forgotten incident of the same
    key and window, which it names (`follows`)."""
    if tombstone is None:
        return {}
    return {"generation": tombstone[FORGOTTEN] + 1, "follows": tombstone["incident_id"]}


def _revision(state: dict[str, Any]) -> int:
    """The sum of its alerts' revisions, +1 once closed: the same alerts give the same revision,
    however batches fell."""
    return sum(m["revision"] for m in state["members"].values()) + (1 if state["closed"] else 0)


def _detected(members: Sequence[dict[str, Any]]) -> int | None:
    """When lifemon detected the incident: the earliest of its members' detections. None where a
    member was stored before detections were kept (an incident open across the upgrade): when its
    alert became leakage-class is not known, and its deadlines count from its first event as before."""
    found = [m.get("detected") for m in members]
    return None if None in found else min(d for d in found if d is not None)


def _by_evidence(members: Sequence[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The members, grouped by their set of evidence events (`_once_per_evidence`), once per draft:
    a notice's every figure of every category sorted each member's evidence again."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for m in members:
        # no evidence: each alert its own
        groups.setdefault(tuple(sorted(m["evidence"])) or (m["alert_id"],), []).append(m)
    return list(groups.values())


def _once_per_evidence(
    groups: Sequence[list[dict[str, Any]]], figure: str | Callable[[dict[str, Any]], int]
) -> int:
    """A figure (a member's key, or a function of the member) summed over the alerts, once per
    distinct set of evidence events (`_by_evidence`): two rules broken by one transfer (no consent,
    an unapproved recipient) are one transfer's records, not two."""
    of = (lambda m: m[figure]) if isinstance(figure, str) else figure
    return sum(max(0, *map(of, group)) for group in groups)


def _unnamed(category: str | None = None) -> Callable[[dict[str, Any]], int]:
    """The customers a member reports beyond those it names (a transfer log's `subject_count` for
    a batch it does not list), of `category` where given. Kept apart from the named: PIPL art. 57
    wants the people affected, and 5 000 counted are not 0 because one other was named."""
    return lambda m: (
        max(0, int(m["reported"]) - len(m["subjects"]))
        if category is None or category in m["categories"]
        else 0
    )


def _unnamed_from(members: Sequence[dict[str, Any]]) -> list[Unnamed]:
    """Each log whose customers members count without naming them, and how many: two rules broken
    by one transfer count its customers once. A member stored before origins were kept has none."""
    counted: dict[str, int] = {}
    for m in members:
        if (origin := m.get("origin")) and (n := _unnamed()(m)):
            counted[origin] = max(counted.get(origin, 0), n)
    return [Unnamed(origin=o, customers=n) for o, n in sorted(counted.items())]


def _at_least_legal(records: int, members: Sequence[dict[str, Any]]) -> int:
    """Records, at least the count art. 5 judged for any member: the day's count of an employee's
    spree holds the reads of episodes that reached no legal step (medium ones, no members), and the
    regulator's report carries the law's count (seed 001 §五.1), not the sum of two episodes (a
    probe's 5 390 reported as 980). A tier's count: the categories keep their own records."""
    return max(records, *(m.get("legal_records", 0) for m in members))


def _article(clause: str) -> str:
    """The article a clause cites, its words left out: `解释第五条第一款(三)`, `Interpretation art. 5 ¶1 (3)`."""
    return clause.split(":")[0].strip()


def _step_rank(t: dict[str, Any]) -> tuple[int, int]:
    return SEVERITY_RANK[Severity(t["severity"])], t["threshold"]


def _stored_tier(m: dict[str, Any]) -> list[dict[str, Any]]:
    """The tier of a member an earlier lifemon stored (within `keep_days` of an upgrade): its gravest
    step's count, over the categories of that tier it read, the span and regulation not kept."""
    if not m.get("legal_threshold"):
        return []
    read = sorted(m.get("legal_by_category", {}))
    return [
        {
            "tier": read,
            "read": read,
            "records": m["legal_records"],
            "threshold": m["legal_threshold"],
            "severity": m["severity"],
            "regulation": "",
            "horizon_hours": None,
        }
    ]


def _records_of(category: str) -> Callable[[dict[str, Any]], int]:
    """A member's records of `category` (0 for a member stored before they were kept)."""
    return lambda m: int(m.get("records_by_category", {}).get(category, 0))


def _figure(name: str, category: str | None = None) -> Callable[[dict[str, Any]], int]:
    """A member's observations or devices (an SDK alert's), of `category` where given: the alert's
    under each category it carried. 0 for a member stored before they were kept."""
    return lambda m: int(m.get(name, 0)) if category is None or category in m["categories"] else 0


def _fields(finding: Finding, alert: Alert) -> list[str]:
    """The catalog or SDK field ids an alert's data was sent in: the finding's (for an SDK rule
    that names no field, a host, a country or an undeclared SDK, what its observations carried)
    and the alert's `field_` counts."""
    return list(finding.fields) + [k[len("field_") :] for k in alert.counts if k.startswith("field_")]


def _class_rank(jr_class: str) -> int:
    return 3 - CLASS_ORDER.index(jr_class) if jr_class in CLASS_ORDER else 0


# the SPC/SPP interpretation's art. 5: its ¶1 counts make a case 情节严重, ten times them (¶2 (三))
# 情节特别严重; bulk_query's escalation gives the ¶2 steps critical, the ¶1 steps high
TIERS = {"critical": ("情节特别严重", "especially serious"), "high": ("情节严重", "serious")}


def _what(members: Sequence[dict[str, Any]], cls: LeakageClass, tiers: Sequence[LegalTier], zh: bool) -> str:
    """What a class's first three alerts say happened, the same in both languages, in words a
    customer and a regulator read (PIPL art. 57 ¶1: 原因): each alert's title, the conditions of
    its rule that its counts say failed (`cls.conditions`), what it counted, and each art. 5 tier
    the alerts reached (`tiers`, the notice's lines). No rule id, transfer or field id, employee id, score or threshold of a
    detector: those are the member alerts' (their summaries), which the regulator's report lists
    (probe_s3 #4: the English cause carried a bulk_query's "sliding-window score 218"). A member
    stored before titles or counts were kept shows its rule id, and no conditions."""
    said = []
    for m in members[:3]:
        title = m.get("title_zh" if zh else "title_en") or m["rule_id"]
        failed = [c.zh if zh else c.en for c in cls.conditions if c.failed(m["rule_id"], m.get("checks", {}))]
        figures = _figures(m, zh)
        if zh:
            said.append(f"{title}" + (f"：{'、'.join(failed)}" if failed else "") + f"（{figures}）")
        else:
            said.append(f"{title}" + (f": {'; '.join(failed)}" if failed else "") + f" ({figures})")
    more = len(members) - 3
    if zh:
        return "；".join([*said, *([f"另有 {more} 条告警"] if more > 0 else []), *(t.said.zh for t in tiers)])
    return "; ".join(
        [*said, *([f"and {n_of(more, 'more alert')}"] if more > 0 else []), *(t.said.en for t in tiers)]
    )


def _figures(m: dict[str, Any], zh: bool) -> str:
    """What an alert counted, as the notice says it, labelled the alert's; what it did not count is
    left out (an SDK's collections name no record: never `0 条记录`)."""
    counted = (
        (m["records"], "条记录", "record"),
        (m["reported"], "名客户", "customer"),
        (m.get("observations", 0), "次采集", "collection"),
        (m.get("devices", 0), "台设备", "device"),
    )
    # the alert's own figures, named so beside an art. 5 tier's (its categories over 24 h: 1,002 of
    # the episode's 1,014 records), in one number format (a new user read "1014 条记录" over "1,002")
    if zh:
        said = "，".join(f"{n:,} {unit}" for n, unit, _ in counted if n)
        return f"本告警计 {said}" if said else "数量未报告"
    said = ", ".join(n_of(n, noun) for n, _, noun in counted if n)
    return f"this alert: {said}" if said else "figures not reported"


def _unique(texts: Iterable[Any]) -> list[Text]:
    seen = dict.fromkeys((t.zh, t.en) for t in texts)
    return [Text(zh=zh, en=en) for zh, en in seen]
