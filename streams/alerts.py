"""Findings become alerts here: pseudonymized, titled in zh and en, cited, and rendered as OCSF.

Customer ids were pseudonymized as they entered the engine, so nothing here can leak one.
"""

from __future__ import annotations

from collections.abc import Iterable

from detectors.base import LEAKAGE_CANDIDATE, Finding
from policy.model import DetectorSection
from schemas.models import Alert, AlertStatus, Severity

OCSF_VERSION = "1.3.0"
_OCSF_SEVERITY = {
    Severity.info: 1,
    Severity.low: 2,
    Severity.medium: 3,
    Severity.high: 4,
    Severity.critical: 5,
}


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
        summary=finding.summary,
        regulation=list(finding.regulation or section.regulation),
        jr_class=finding.jr_class,
        actor_id=finding.actor_id,
        actor_org=finding.actor_org,
        subject_count=finding.subject_count,
        subjects_sample=list(finding.subject_sample),
        counts=dict(finding.counts),
        evidence_event_ids=list(finding.evidence_event_ids),
        window_start=finding.window_start,
        window_end=finding.window_end,
        first_seen=finding.first_seen,
        last_seen=finding.last_seen,
    )


def latest(alerts: Iterable[Alert]) -> list[Alert]:
    """One alert per id, the newest revision: a batch never emits a storm of intermediate states."""
    best: dict[str, Alert] = {}
    for a in alerts:
        known = best.get(a.alert_id)
        if known is None or a.revision >= known.revision:
            best[a.alert_id] = a
    return list(best.values())


def to_ocsf(alert: Alert) -> dict:
    """OCSF 1.3 Detection Finding (class 2004). lifemon-specific fields go under `unmapped`."""
    activity_id = 1 if alert.revision == 1 else 2  # Create, then Update: the same finding uid throughout
    return {
        "class_uid": 2004,
        "class_name": "Detection Finding",
        "category_uid": 2,
        "category_name": "Findings",
        "activity_id": activity_id,
        "activity_name": "Create" if activity_id == 1 else "Update",
        "type_uid": 2004 * 100 + activity_id,
        "severity_id": _OCSF_SEVERITY[alert.severity],
        "severity": alert.severity.value.capitalize(),
        "status_id": 1,
        "status": "New",
        "time": alert.last_seen,
        "start_time": alert.window_start,
        "end_time": alert.window_end,
        "count": alert.subject_count,
        "message": alert.summary,
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
        "evidences": [{"actor": {"user": {"uid": alert.actor_id, "type_id": 1, "type": "User"}}}]
        if alert.actor_id
        else [],
        "metadata": {
            "version": OCSF_VERSION,
            "product": {"name": "lifemon", "vendor_name": "lifemon"},
            "uid": f"{alert.alert_id}-{alert.revision}",
            "correlation_uid": alert.alert_id,
            "labels": [f"jr_class:{alert.jr_class}", f"status:{alert.status.value}"]
            + ([LEAKAGE_CANDIDATE] if alert.counts.get(LEAKAGE_CANDIDATE) else []),
        },
        "unmapped": {
            "title_zh": alert.title_zh,
            "title_en": alert.title_en,
            "revision": alert.revision,
            "lifemon_status": alert.status.value,
            "regulation": alert.regulation,
            "jr_class": alert.jr_class,
            "actor_org": alert.actor_org,
            "subjects_sample": alert.subjects_sample,
            "counts": alert.counts,
        },
    }
