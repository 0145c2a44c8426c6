"""The incident policy's shape (`policy/incidents.yaml`): which alerts are leakage-class, how they
group into incidents, what the PIPL art. 57 notice says, and the reporting deadlines.

Leakage classes come from issue 14 and the seeds: bulk exports of C2/C3 data past the judicial
interpretation's art. 5 thresholds (seed 001 §五.1), C3 data or an authentication helper reaching a
third party or an SDK (seed 002 §六, seed 004 流程描述(4)⑪), cross-border provision without separate
consent or assessment (seed 002 §六.5). The notice's items are PIPL art. 57 ¶1 and seed 004 应急管理(4).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from policy.clause import Clause
from schemas.models import Severity

ClassId = Literal["C3", "C2", "C1"]  # JR/T 0171 classes (policy.model.JrClass; that module imports this one)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Bilingual(Strict):
    zh: str
    en: str


class Match(Strict):
    """Which alerts belong to a leakage class. Every given condition must hold."""

    detector: str
    rule_ids: list[str] = Field(default_factory=list, description="empty: any rule of the detector")
    leakage_candidate: bool = Field(
        default=False,
        description="the alert must carry counts.leakage_candidate = 1 (the detector's verdict)",
    )
    min_severity: Severity = Severity.info
    min_class: ClassId = "C1"


class Condition(Strict):
    """One condition of a rule whose title names several (LM-TP-005: consent, an assessment, an
    affiliate), which the alert's counts say failed: the notice's cause says it in words a
    customer reads, where the alert's summary says it for the SOC, in ids (probe_s3 #4)."""

    counts: list[str] = Field(min_length=1, description="the alert's count keys that say it")
    failed_when: Literal["positive", "zero"] = Field(
        default="positive",
        description="positive: failed where any of the counts is above 0; zero: where one is 0 "
        "(a count of 1 says the condition held)",
    )
    rule_ids: list[str] = Field(default_factory=list, description="empty: any rule of the class")
    zh: str
    en: str

    def failed(self, rule_id: str, counts: dict[str, int]) -> bool:
        if self.rule_ids and rule_id not in self.rule_ids:
            return False
        if self.failed_when == "zero":
            return any(counts.get(k) == 0 for k in self.counts)
        return any(counts.get(k, 0) > 0 for k in self.counts)


class LeakageClass(Strict):
    title: Bilingual
    regulation: list[Clause] = Field(min_length=1, description="the clauses that make it a leakage")
    match: list[Match] = Field(min_length=1)
    cause: Bilingual = Field(description="the cause, as the notice states it; {what} is filled from evidence")
    conditions: list[Condition] = Field(
        default_factory=list,
        description="what {what} says failed, where an alert's counts tell which of its rule's conditions",
    )
    harm: Bilingual = Field(description="the harm it may cause (PIPL art. 57 ¶1 (一))")
    measures: list[Bilingual] = Field(min_length=1, description="remedial measures (PIPL art. 57 ¶1 (二))")
    individuals: list[Bilingual] = Field(min_length=1, description="what individuals can do to reduce harm")


class Deadline(Strict):
    """A report the incident triggers: to whom, within how long of detection, under which clause."""

    to: Bilingual
    within_hours: float = Field(gt=0)
    regulation: Clause
    classes: list[str] = Field(default_factory=list, description="leakage classes it applies to; empty: all")
    min_severity: Severity = Severity.info
    notice: bool = Field(
        default=False,
        description="a report the PIPL art. 57 notice makes: an incident the team resolved as notified "
        "(`lifemon incidents resolve --as notified`) no longer has it due; the others stay due until "
        "it is resolved otherwise",
    )
    waiver: Clause | None = Field(
        default=None,
        description="the clause under which the bank may forgo this notice (seed 004 应急管理(4): its "
        "measures avoided the harm): a `notice` report the team may record waived (`lifemon incidents "
        "resolve --as notice_waived --note ...`) instead of made; none: never waived",
    )

    @model_validator(mode="after")
    def _waived_notice_only(self) -> Deadline:
        # a waiver stands in for the notice; a report the notice does not make (an assessor's) is
        # no notice to waive, and would be owed whatever the team recorded
        if self.waiver and not self.notice:
            raise ValueError(
                f"a waiver needs notice: true (the report to {self.to.en} is no notice to waive)"
            )
        return self


class IncidentPolicy(Strict):
    window_hours: int = Field(
        default=24,
        gt=0,
        description="alerts of one actor, recipient or SDK in one such window are one incident",
    )
    settle_minutes: int = Field(
        default=60,
        ge=0,
        description="after its window ends, how long an incident waits for its alerts to close",
    )
    keep_days: int = Field(
        default=7, gt=0, description="how long a closed incident still absorbs late alerts"
    )
    subject_list_limit: int = Field(
        default=5000, ge=0, description="pseudonyms listed in an incident record (all are counted)"
    )
    group_by: dict[str, str] = Field(
        description="detector -> what its alerts' actor_id names (actor, recipient, sdk): the incident's key"
    )
    classes: dict[str, LeakageClass] = Field(min_length=1)
    contact: Bilingual = Field(description="the contact the notice gives (PIPL art. 57 ¶1 (三))")
    undeclared_fields: Bilingual = Field(
        default=Bilingual(zh="未声明字段", en="fields the policy does not declare"),
        description="the notice's category for data whose fields neither classification.yaml nor "
        "sdks.yaml names (PIPL art. 57 ¶1: the categories are named, never left empty)",
    )
    deadlines: list[Deadline] = Field(min_length=1)

    @model_validator(mode="after")
    def _refs(self) -> IncidentPolicy:
        for cid, cls in self.classes.items():
            for i, m in enumerate(cls.match):
                if m.detector not in self.group_by:
                    raise ValueError(
                        f"classes.{cid}.match.{i}.detector '{m.detector}' has no group_by entry; "
                        "add it under group_by (actor, recipient or sdk)"
                    )
        for i, d in enumerate(self.deadlines):
            unknown = sorted(set(d.classes) - set(self.classes))
            if unknown:
                raise ValueError(f"deadlines.{i}.classes names {unknown}; use one of {sorted(self.classes)}")
        return self
