"""Findings become alerts here: pseudonymized, titled in zh and en, cited, and rendered as OCSF.

Customer ids were pseudonymized as events entered the engine, and each card, resident ID or mobile
number inside a name a producer gave (an event, record or transfer id, an actor, a recipient, a
system) was sealed there (`{bank_card:…}`, streams/personal_numbers.py). The last step masks by
form whatever such number is left in the text an alert carries (`{bank_card}`): its summary,
evidence and actor. Only a number's form is masked, found by checksum, not guess: an employee id,
which the SOC groups and searches by, stays as it is.

What an alert copies from its input is bounded (`bounded`), so that an alert always fits its topic:
a producer's id may be a request's whole text.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Iterable
from typing import Any

from detectors import REGISTRY
from detectors.base import LEAKAGE_CANDIDATE, Finding
from policy.clause import stored
from policy.model import DetectorSection
from schemas.incident import Incident, IncidentStatus
from schemas.models import Alert, AlertStatus, Severity
from streams.personal_numbers import mask as mask_personal

OCSF_VERSION = "1.3.0"
_OCSF_SEVERITY = {
    Severity.info: 1,
    Severity.low: 2,
    Severity.medium: 3,
    Severity.high: 4,
    Severity.critical: 5,
}

# A probe's 240 KB event ids (each record under max_record_bytes) made a 12 MB alert that Kafka
# refused, and the monitor exited 3 at every start. The SOC needs an id to find its event, not the
# whole of it: its start, and a fingerprint of the whole that tells apart two with the same start.
# 50 evidence ids of 200 characters stay under 40 KB, an alert far under a broker's 1 MiB.
ID_CHARS = 200
SUMMARY_CHARS = 4000
_LONG_WORD = re.compile(rf"\S{{{ID_CHARS + 1},}}")


def bounded(text: str, limit: int = ID_CHARS) -> str:
    """`text` in at most `limit` characters: a longer one is its start, `…#` and 12 hex digits of
    its BLAKE2b-48 fingerprint (of its UTF-8, as the alert had it whole)."""
    if len(text) <= limit:
        return text
    digest = hashlib.blake2b(text.encode(errors="surrogatepass"), digest_size=6).hexdigest()
    return f"{text[: limit - 14]}…#{digest}"


def _copied(text: str) -> str:
    """A name from the input as an alert carries it: personal numbers masked, the length bounded."""
    return _copied_id(text) if len(text) <= ID_CHARS else bounded(mask_personal(text))


# An alert's evidence is its episode's first events, the same at each of its revisions (5 800 ids
# masked per 100 000 bulk_query events, 2 000 of them distinct). An id of a sane length is masked
# once while it is cited; an overlong one (a request's whole text) is not kept.
@functools.lru_cache(maxsize=4096)
def _copied_id(text: str) -> str:
    return bounded(mask_personal(text))


def _summary(text: str) -> str:
    """A detector's summary quotes input names (an id, a system): each overlong one is cut as the
    evidence's are, and the whole is bounded."""
    return bounded(_LONG_WORD.sub(lambda word: bounded(word.group()), mask_personal(text)), SUMMARY_CHARS)


def build_alert(finding: Finding, section: DetectorSection) -> Alert:
    status = (
        AlertStatus.closed
        if finding.closed
        else (AlertStatus.open if finding.revision == 1 else AlertStatus.updated)
    )
    return Alert(
        alert_id=finding.alert_id,
        revision=finding.revision,
        status=status,
        detector=finding.detector,
        rule_id=finding.rule_id,
        rule_version=section.rule_version,
        severity=finding.severity,
        title_zh=finding.title_zh or section.title_zh,
        title_en=finding.title_en or section.title_en,
        summary=_summary(finding.summary),
        **stored(finding.regulation or section.regulation),
        jr_class=finding.jr_class,
        actor_id=finding.actor_id and _copied(finding.actor_id),
        actor_org=finding.actor_org and _copied(finding.actor_org),
        actor_kind=actor_kind(finding),
        subject_count=finding.subject_count,
        subjects_sample=list(finding.subject_sample),
        counts=dict(finding.counts),
        evidence_event_ids=list(map(_copied, finding.evidence_event_ids)),
        event_count=finding.event_count,
        window_start=finding.window_start,
        window_end=finding.window_end,
        first_seen=finding.first_seen,
        last_seen=finding.last_seen,
    )


def actor_kind(finding: Finding) -> str:
    """What the finding's actor_id names: its own word, else its detector's (`actor_is`)."""
    return finding.actor_kind or str(getattr(REGISTRY.get(finding.detector), "actor_is", "employee"))


def content_version(last_seen: int, amount: int, closed: bool) -> int:
    """Which of two revisions of one alert (or incident) says more, by what they say, never by
    their revision numbers (a re-run after a crash batches otherwise, numbers the same content
    lower, and re-sends older revisions after newer ones): the later last event, then more events
    (or records) aggregated, since an event dated earlier that arrived late adds to a revision
    without moving its last event, then closed after open. ClickHouse keeps the highest
    (`version`); the topics carry it as the `lifemon.version` header."""
    return (last_seen << 21) | (min(amount, (1 << 20) - 1) << 1) | closed


def alert_version(alert: Alert) -> int:
    return content_version(alert.last_seen, alert.event_count, alert.status is AlertStatus.closed)


def incident_version(incident: Incident) -> int:
    return content_version(incident.last_seen, incident.records, incident.status is IncidentStatus.closed)


def latest(alerts: Iterable[Alert]) -> list[Alert]:
    """One alert per id, the newest revision: a batch never emits a storm of intermediate states.
    A newest revision that folds in the first one that was to be sent is marked so (`first_sent`):
    it creates the finding at the SIEM, which would otherwise get an Update with no Create."""
    best: dict[str, Alert] = {}
    first: set[str] = set()
    for a in alerts:
        if a.first_sent:
            first.add(a.alert_id)
        known = best.get(a.alert_id)
        if known is None or a.revision >= known.revision:
            best[a.alert_id] = a
    return [a.folding_first() if a.alert_id in first and not a.first_sent else a for a in best.values()]


# an account's OCSF user type: an employee's is a User, a system's a System
_USER_TYPE = {"employee": {"type_id": 1, "type": "User"}, "system": {"type_id": 3, "type": "System"}}
# A JR/T 0171 class is the bank's own confidentiality scale, not OCSF's: Other, named in `confidentiality`.
_PFI_CATEGORY = {"category_id": 3, "category": "Financial"}


def _classification(alert: Alert) -> dict:
    """Where OCSF puts a data classification: personal financial information at its JR/T 0171 class."""
    return _PFI_CATEGORY | {"confidentiality_id": 99, "confidentiality": f"JR/T 0171-2020 {alert.jr_class}"}


def actor_of(doc: dict) -> str:
    """The actor_id of an alert's OCSF document (`to_ocsf`): a recipient's endpoint, an SDK's app,
    an employee's user (on top in a Data Security Finding, in evidences otherwise); "" for none."""
    evidence = (doc.get("evidences") or [{}])[0]
    who = doc.get("actor") or doc.get("dst_endpoint") or evidence.get("actor") or evidence.get("dst_endpoint")
    if not who:
        return ""
    if "user" in who:
        return str(who["user"]["uid"])
    return str(who.get("app_uid") or who["uid"])


def is_data_exposure(detector: str) -> bool:
    """Detectors that report PFI leaving the bank or exposed to a third party (the DLP kind of finding)."""
    return bool(getattr(REGISTRY.get(detector), "data_exposure", False))


def _digest(alert: Alert) -> str:
    return hashlib.blake2b(alert.model_dump_json().encode(), digest_size=4).hexdigest()


def to_ocsf(alert: Alert) -> dict:
    """OCSF 1.3: a Data Security Finding (2006) for data exposure, a Detection Finding (2004) otherwise.

    `count` is OCSF's "number of times that events in the same logical group occurred" in
    start..end: the events the finding aggregates (accesses, transfers, observations, pushes), which
    `finding_info.related_events` lists the first of. A finding raised by an absence (a deadline
    passed) aggregates none and has no `count`. Subjects are no events: their count stays in
    `unmapped`, with the other lifemon-specific fields."""
    # The first revision sent creates the finding, a later one updates it: the first sent, not
    # number 1, which a checkpoint may fold into a later one (a probe's SIEM got 7 of 59 alerts as
    # an Update with no Create). Its status is New until an
    # analyst works it in the SIEM. A detector's window ending is no Close: sent so, a probe's SIEM
    # kept 12 of 15 unauthorized_lookup findings (closed at their first revision) out of its open
    # queue, and as revision numbers follow the batching, live and replay sent other activities
    # (a review). lifemon's own status is in `unmapped.lifemon_status` and the `status:` label.
    activity_id, activity = (1, "Create") if alert.first_sent else (2, "Update")
    status_id, status = 1, "New"
    exposure = is_data_exposure(alert.detector)
    class_uid, class_name = (2006, "Data Security Finding") if exposure else (2004, "Detection Finding")
    doc: dict[str, Any] = {
        "class_uid": class_uid,
        "class_name": class_name,
        "category_uid": 2,
        "category_name": "Findings",
        "activity_id": activity_id,
        "activity_name": activity,
        "type_uid": class_uid * 100 + activity_id,
        "type_name": f"{class_name}: {activity}",
        "severity_id": _OCSF_SEVERITY[alert.severity],
        "severity": alert.severity.value.capitalize(),
        "status_id": status_id,
        "status": status,
        "time": alert.last_seen,
        # OCSF's least and most recent event of the finding: the detector's window is in unmapped
        "start_time": alert.first_seen,
        "end_time": alert.last_seen,
        "message": alert.summary,
        **({"count": alert.event_count} if alert.event_count else {}),
        "finding_info": {
            "uid": alert.alert_id,
            "title": f"{alert.title_zh} / {alert.title_en}",
            "desc": alert.summary,
            "types": [alert.detector],
            "first_seen_time": alert.first_seen,
            "last_seen_time": alert.last_seen,
            "analytic": {
                "uid": alert.rule_id,
                "name": alert.detector,
                "type_id": 1,
                "type": "Rule",
                "version": str(alert.rule_version),
            },
            "related_events": [{"uid": e} for e in alert.evidence_event_ids],
        },
        "metadata": {
            "version": OCSF_VERSION,
            "product": {"name": "lifemon", "vendor_name": "lifemon"},
            # the revision's content in its id too: a re-run after a crash may number other content
            # alike, and a SIEM that drops a uid it has seen would keep the stale one
            "uid": f"{alert.alert_id}-{alert.revision}-{_digest(alert)}",
            "correlation_uid": alert.alert_id,
            "labels": [f"jr_class:{alert.jr_class}", f"status:{alert.status.value}"]
            + ([LEAKAGE_CANDIDATE] if alert.counts.get(LEAKAGE_CANDIDATE) else []),
        },
        "unmapped": {
            "title_zh": alert.title_zh,
            "title_en": alert.title_en,
            "revision": alert.revision,
            "lifemon_status": alert.status.value,
            "window_start": alert.window_start,
            "window_end": alert.window_end,
            "regulation": alert.regulation,
            "regulation_en": alert.regulation_en,
            "jr_class": alert.jr_class,
            "actor_org": alert.actor_org,
            "subject_count": alert.subject_count,
            "subjects_sample": alert.subjects_sample,
            "counts": alert.counts,
        },
    }
    actor = endpoint = None
    if alert.actor_id and alert.actor_kind == "recipient":  # the organisation the data went to
        endpoint = {"name": alert.actor_id, "uid": alert.actor_id}
    elif alert.actor_id:  # an SDK is the third-party code that collected, not a login account
        who = alert.actor_id
        actor = (
            {"app_name": who, "app_uid": who}
            if alert.actor_kind == "sdk"
            else {"user": {"uid": who, **_USER_TYPE[alert.actor_kind]}}
        )
    if exposure:
        if actor:  # a Data Security Finding names its actor through the host profile
            doc["actor"] = actor
            doc["metadata"]["profiles"] = ["host"]
        if endpoint:
            doc["dst_endpoint"] = endpoint
        doc["data_security"] = _classification(alert) | {
            "data_lifecycle_state_id": 2,
            "data_lifecycle_state": "Data in-Transit",
            "detection_pattern": alert.rule_id,
        }
    else:
        doc["evidences"] = [{"actor": actor}] if actor else [{"dst_endpoint": endpoint}] if endpoint else []
        # a Detection Finding carries a classification through the data_classification profile
        doc["resources"] = [
            {"name": "Personal financial information", "data_classification": _classification(alert)}
        ]
        doc["metadata"]["profiles"] = ["data_classification"]
    return doc
