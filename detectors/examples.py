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
from streams.engine import Engine

CASE_START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


@dataclass
class CaseResult:
    detector: str
    name: str
    passed: bool
    alerts: list[Alert]
    reason: str


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
