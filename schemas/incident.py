"""The incident record on `pfi.incidents` (JSON, key = incident_id): leakage-class alerts of one
actor, recipient or SDK in one window, with the PIPL art. 57 notice drafted from their evidence
and the reports that are due. Subjects appear only as keyed HMAC pseudonyms (docs/incidents.md).

`incident_id` is hash(group, key, window start), and the generation after a forgotten incident of
the same window (`follows`): a replay or restart reproduces it. `revision` is
the sum of its alerts' revisions (+1 once closed), so the same evidence always gives the same
revision, whatever the batch boundaries; the newest revision wins everywhere.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from schemas.models import Severity


class IncidentStatus(StrEnum):
    open = "open"
    updated = "updated"
    closed = "closed"


class Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MemberAlert(Part):
    alert_id: str
    revision: int
    detector: str
    rule_id: str
    severity: Severity
    jr_class: str
    leakage_class: str
    summary: str


class Unnamed(Part):
    """Customers a log counted without naming them, and that log (a transfer's id, its sender
    system, its list's id): whom the bank asks for their list, for the individuals' notice."""

    origin: str = Field(description='the log that counted them: "transfer T1 from crm, list L-7"')
    customers: int = Field(ge=0)


class Subjects(Part):
    """Distinct affected subjects (pseudonyms), by class and category: under those of what was read
    of it where its alert knows (bulk_query), else under its alert's class and every category."""

    distinct: int = Field(description="distinct pseudonyms named by the incident's alerts")
    reported: int = Field(description="subjects the alerts report, named or not, repeats included")
    unnamed: int = Field(
        default=0,
        ge=0,
        description="customers the alerts report without naming them (a log's count): beside `distinct`, "
        "never folded into it, since they may or may not be the named ones",
    )
    unnamed_from: list[Unnamed] = Field(
        default_factory=list,
        description="where the `unnamed` are listed: each log that counted customers without naming them, "
        "and how many (empty on a record from before it was kept)",
    )
    by_class: dict[str, int]
    by_category: dict[str, int]
    pseudonyms: list[str] = Field(description="sorted; at most the policy's subject_list_limit")
    truncated: bool


class Category(Part):
    id: str
    zh: str
    en: str
    jr_class: str
    subjects: int = Field(description="named customers whose data of this category the alerts report")
    unnamed: int = Field(default=0, ge=0, description="customers reported in this category without names")
    records: int = Field(
        default=0, ge=0, description="records of this category the alerts report, named customers or not"
    )
    # an SDK's collections name no customer: what its alerts count instead (each observation and
    # device of an alert under every category it carried: the detector counts per episode)
    observations: int = Field(default=0, ge=0, description="SDK observations that carried this category")
    devices: int = Field(default=0, ge=0, description="devices those observations came from")


class Text(Part):
    zh: str
    en: str


class LegalTier(Part):
    """An art. 5 tier (SPC/SPP interpretation, seed 001 §五.1) the incident's alerts reached. Art. 5
    counts a tier's categories together, so its count is said once here, never as a category's."""

    regulation: str = Field(description="the gravest step of the tier reached (bulk_query.yaml `escalation`)")
    regulation_en: str = Field(
        default="", description="its English; empty on a record stored before it was kept"
    )
    categories: list[str] = Field(description="the tier's categories the alerts read")
    records: int = Field(
        ge=0, description="the tier's count that reached the step, the largest of the alerts'"
    )
    threshold: int = Field(ge=0, description="the step's count")
    severity: Severity
    horizon_hours: int | None = Field(
        description="the hours the count spans (bulk_query `legal_horizon_hours`); 0: one episode's own "
        "records; None: not known (an alert stored before it was kept)"
    )
    said: Text = Field(description="the notice's line for it, as the cause says it too")


class Notice(Part):
    """What PIPL art. 57 ¶1 requires the notice to state, drafted from the evidence."""

    categories: list[Category]
    legal_tiers: list[LegalTier] = Field(
        default_factory=list,
        description="the art. 5 tiers reached, each once (none: no bulk_query alert did)",
    )
    cause: Text
    harm: list[Text]
    measures: list[Text]
    individuals: list[Text]
    contact: Text


class DueReport(Part):
    to: Text
    due: int = Field(description="UTC epoch ms: detected_at (first_seen before it was kept) + within_hours")
    within_hours: float
    regulation: str
    regulation_en: str = Field(
        default="", description="its English; empty on a record stored before it was kept"
    )
    notice: bool = Field(
        default=False,
        description="a report the PIPL art. 57 notice makes (policy/incidents.yaml `notice`): no longer due "
        "once the incident is reviewed as notified",
    )
    waiver: str = Field(
        default="",
        description="the clause under which the notice may be forgone (policy/incidents.yaml `waiver`): "
        "reviewed as notice_waived, it is recorded waived, not made; empty: never waived",
    )
    waiver_en: str = Field(default="", description="its English; empty on a record stored before it was kept")


class Incident(Part):
    incident_id: str
    revision: int = Field(ge=1)
    status: IncidentStatus
    group: str = Field(description="what `key` names: actor, recipient or sdk")
    key: str
    window_start: int
    window_end: int
    first_seen: int = Field(description="UTC epoch ms: the first event of its alerts, when the leak began")
    detected_at: int | None = Field(
        default=None,
        description="UTC epoch ms: when lifemon detected it (发现), the earliest time one of its alerts' "
        "detectors could first know it (bulk_query: the read that reached an art. 5 step; an alert of one "
        "event: that event); its deadlines count from it. None: a record from before it was kept, whose "
        "deadlines count from first_seen",
    )
    last_seen: int
    severity: Severity
    leakage_classes: list[str]
    title_zh: str
    title_en: str
    regulation: list[str]
    regulation_en: list[str] = Field(
        default_factory=list,
        description="the English of each clause of `regulation`, in its order; empty on a record stored "
        "before it was kept",
    )
    subjects: Subjects
    records: int
    observations: int = Field(
        default=0, ge=0, description="SDK observations its alerts count (an SDK names no customer)"
    )
    devices: int = Field(default=0, ge=0, description="devices those observations came from")
    notice: Notice
    deadlines: list[DueReport]
    alerts: list[MemberAlert]
    evidence_event_ids: list[str]
    follows: str | None = Field(
        default=None,
        description="the incident of the same key and window that was forgotten (keep_days) before a late "
        "alert came: this one holds what came after, that one keeps what it reported",
    )
