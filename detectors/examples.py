"""Run the example cases that each detector's policy file carries (panther-analysis `Tests:`).

A case lists reference records and compact event steps; each step repeats an event `count` times,
`every_s` seconds apart, with `subjects` fresh customer ids per event (or the same ones with
`same_subjects: true`); a transfer repeated is another transfer (its `transfer_id` numbered). The case passes when the detector fires or stays silent as it says, at the
severity it names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

from detectors import DetectorSpec
from policy.catalog import Catalog
from schemas.models import Alert
from schemas.structs import STRICT
from streams.alerts import latest
from streams.codecs import RawRecord
from streams.engine import Engine, named_spelling

CASE_START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


@dataclass
class CaseResult:
    detector: str
    name: str
    passed: bool | None  # None: not run, it names what the policy does not know (`foreign_names`)
    alerts: list[Alert]
    reason: str


# what a case's records name, by key: the kind of id, and where the policy declares it
_NAMED_BY = {
    "roles": ("role", "organisation.yaml roles"),
    "system": ("system", "organisation.yaml systems"),
    "fields": ("field", "classification.yaml fields"),
    "categories": ("field", "classification.yaml"),
}


def foreign_names(case: dict[str, Any], catalog: Catalog) -> list[str]:
    """The roles, systems and fields a case's records name that the policy knows by none of their
    names: an example written for another bank's policy (a probe's second bank, copying the shipped
    detector files, had 54 of 92 fail and many pass for the wrong reason). Not purposes: an access
    stating a purpose the policy lacks is an example of its own (unauthorized_lookup's)."""
    spelled = {
        "role": named_spelling(catalog.role_names, others=False),
        "system": named_spelling(catalog.system_names, others=False, dressed=False),
    }
    declared = {"role": catalog.role_names, "system": catalog.system_names}
    categories = catalog.policy.classification.categories

    def known(kind: str, name: str) -> bool:
        if kind == "sdk field":  # an SDK's telemetry names its own fields (sdks.yaml `sdk_fields`)
            return catalog.sdk.field_id(name) is not None
        if kind == "field":
            return (
                name in catalog.field_class or name in categories or catalog.field_spelling(name) is not None
            )
        return name in declared[kind] or spelled[kind](name) is not None

    foreign: dict[str, str] = {}
    for stream, steps in case.items():
        for step in steps if isinstance(steps, list) else ():
            record = step.get("event", step) if isinstance(step, dict) else {}
            for key, (kind, where) in _NAMED_BY.items():
                if stream == "sdk" and kind == "field":
                    kind, where = "sdk field", "sdks.yaml sdk_fields"
                value = record.get(key)
                for name in [value] if isinstance(value, str) else value or ():
                    if isinstance(name, str) and not known(kind, name):
                        foreign.setdefault(f"{kind} {name!r}", where)
    return [f"{name}, which {where} lacks" for name, where in foreign.items()]


def expand_steps(name: str, stream: str, steps: list[dict[str, Any]]) -> list[Any]:
    struct = STRICT[stream]
    events: list[Any] = []
    ts, serial = CASE_START_MS, 0
    for s, step in enumerate(steps):
        for i in range(step.get("count", 1)):
            ev = dict(step["event"])
            n = step.get("subjects", 1)
            first = 0 if step.get("same_subjects") else serial
            if "subject_ids" in getattr(struct, "__struct_fields__", ()):  # streams that name their customers
                ev.setdefault("subject_ids", [f"c{s}-{first + j}" for j in range(n)])
            if not step.get("same_subjects"):
                serial += n
            if "transfer_id" in ev and step.get("count", 1) > 1:
                ev["transfer_id"] = f"{ev['transfer_id']}.{i}"  # a transfer repeated is another transfer
            events.append(msgspec.convert({"event_id": f"{name}#{s}.{i}", "ts": ts, **ev}, struct))
            ts += int(step.get("every_s", 1) * 1000)
    return events


def run_case(spec: DetectorSpec, catalog: Catalog, case: dict[str, Any]) -> CaseResult:
    foreign = foreign_names(case, catalog)
    if foreign:
        return CaseResult(spec.kind, case["name"], None, [], "names " + "; ".join(foreign))
    engine = Engine([spec], catalog, pseudonymize=lambda s: f"p_{s}")
    for stream in ("entitlements", "consents", "customers"):
        engine.apply_reference(stream, [msgspec.convert(r, STRICT[stream]) for r in case.get(stream, [])])
    alerts = []
    for stream in spec.inputs:
        events = expand_steps(case["name"], stream, case.get(stream, []))
        raws = [(RawRecord(stream, 0, i, None), ev) for i, ev in enumerate(events)]
        alerts += engine.process(stream, stream, 0, raws)
    alerts += engine.drain()
    fired = latest(alerts)
    want_fire, want_sev = case["fires"], case.get("severity")
    if bool(fired) != want_fire:
        return CaseResult(
            spec.kind, case["name"], False, fired, f"expected fires={want_fire}, got {len(fired)} alert(s)"
        )
    if want_sev and any(a.severity.value != want_sev for a in fired):
        got = sorted({a.severity.value for a in fired})
        return CaseResult(spec.kind, case["name"], False, fired, f"expected severity {want_sev}, got {got}")
    return CaseResult(spec.kind, case["name"], True, fired, "ok")


def run_all(specs: list[DetectorSpec], catalog: Catalog) -> list[CaseResult]:
    return [run_case(spec, catalog, case) for spec in specs for case in spec.section.tests]
