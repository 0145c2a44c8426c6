"""The detector engine: decoded events in, alerts and rollups out. No I/O, no clock.

The Kafka runtime, `lifemon replay` and the tests drive this same object, which is why a replay
gives the alerts of the live run. Keyed state lives with its partition: one detector instance per
(topic, partition) of the stream it reads, snapshotted and restored with that partition.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from detectors import DetectorSpec
from detectors.base import Context, Detector, Finding
from policy.catalog import Catalog
from schemas.models import Alert, Consent, Entitlement, Record
from streams.alerts import build_alert, latest
from streams.codecs import RawRecord
from streams.registries import AsOfRegistry

END_OF_TIME = 2**62
COVERAGE_GAP = "coverage_gap"

# stream -> (attribute with catalog field ids, org-like attribute, outcome-like attribute), for rollups
ROLLUP_DIMENSIONS: dict[str, tuple[str, str, str]] = {
    "access": ("fields", "actor_org", "outcome"),
    "transfer": ("categories", "sender_system", "recipient_type"),
    "sdk": ("fields", "sdk_id", "app_version"),
    "marketing": ("data_used", "org_id", "channel"),
    "lifecycle": ("categories", "system", "stage"),
}


class PartitionRollup:
    """Per-minute event counts of one partition, grouped in offset blocks.

    A block's row is a pure function of the records in it, and its version is how many of them
    have been counted: re-processing after a crash rewrites the same rows instead of adding to
    them (ClickHouse keeps the highest version), so the dashboards never double-count.
    """

    def __init__(self, block_size: int):
        self.block_size = block_size
        self.cells: dict[int, Counter] = defaultdict(Counter)
        self.progress: Counter = Counter()
        self.dirty: set[int] = set()

    def add(self, offset: int, cell: tuple, counts_progress: bool = True) -> None:
        block = offset // self.block_size
        self.cells[block][cell] += 1
        self.progress[block] += counts_progress
        self.dirty.add(block)

    def drain(self) -> list[tuple[int, tuple, int, int]]:
        """Rows (block, cell, count, version) of blocks changed since the last drain; forget finished blocks."""
        rows = [
            (b, cell, n, self.progress[b]) for b in sorted(self.dirty) for cell, n in self.cells[b].items()
        ]
        newest = max(self.cells, default=0)
        for b in [b for b in self.cells if b < newest]:
            del self.cells[b], self.progress[b]
        self.dirty.clear()
        return rows

    def to_json(self) -> dict[str, Any]:
        return {
            str(b): {"progress": self.progress[b], "cells": [[*c, n] for c, n in cells.items()]}
            for b, cells in self.cells.items()
        }

    def load(self, d: dict[str, Any]) -> None:
        for b, v in d.items():
            self.cells[int(b)] = Counter({tuple(c[:-1]): c[-1] for c in v["cells"]})
            self.progress[int(b)] = v["progress"]


class Engine:
    def __init__(
        self,
        specs: Sequence[DetectorSpec],
        catalog: Catalog,
        pseudonymize: Any,
        allowed_lateness_ms: int = 60_000,
        rollup_block: int = 10_000,
    ):
        self.specs = list(specs)
        self.catalog = catalog
        self.lateness = allowed_lateness_ms
        self.rollup_block = rollup_block
        self.entitlements: AsOfRegistry[Entitlement] = AsOfRegistry("actor_id")
        self.consents: AsOfRegistry[Consent] = AsOfRegistry("subject_id")
        self.ctx = Context(catalog, self.entitlements, self.consents, pseudonymize)
        self.instances: dict[tuple[str, int], dict[str, Detector]] = {}
        self.rollups: dict[tuple[str, int], PartitionRollup] = {}
        self.max_ts: dict[tuple[str, int], int] = {}  # per partition: each has its own event-time clock
        self.sections = {s.kind: s.section for s in self.specs}

    def watermark(self, topic: str, partition: int) -> int:
        """Max event time seen on this partition minus the allowed lateness. Per partition, like a
        Kafka Streams task's stream time: a faster stream or partition never closes another's windows."""
        return self.max_ts.get((topic, partition), 0) - self.lateness

    # -- input ----------------------------------------------------------------------------------
    def apply_reference(self, stream: str, records: Iterable[Record]) -> None:
        registry: AsOfRegistry[Any] = self.entitlements if stream == "entitlements" else self.consents
        for r in records:
            registry.put(r)

    def process(
        self, stream: str, topic: str, partition: int, decoded: Sequence[tuple[RawRecord, Record]]
    ) -> list[Alert]:
        """One partition's decoded events, in offset order."""
        if not decoded:
            return []
        events = [m for _, m in decoded]
        key = (topic, partition)
        self.max_ts[key] = max(self.max_ts.get(key, 0), max(e.ts for e in events))  # type: ignore[attr-defined]
        self._rollup(stream, topic, partition, decoded)
        findings: list[Finding] = []
        for detector in self._instances(stream, topic, partition).values():
            findings.extend(detector.process(events, self.ctx))
        return self._alerts(findings)

    def advance(self, watermark: int | None = None) -> list[Alert]:
        """Let every detector act on its partition's watermark (close windows, fire deadlines)."""
        findings: list[Finding] = []
        for (topic, partition), detectors in self.instances.items():
            wm = self.watermark(topic, partition) if watermark is None else watermark
            for d in detectors.values():
                findings.extend(d.on_watermark(wm, self.ctx))
        return self._alerts(findings)

    def drain(self) -> list[Alert]:
        """End of input (a finite replay): every window closes."""
        return self.advance(END_OF_TIME)

    def _instances(self, stream: str, topic: str, partition: int) -> dict[str, Detector]:
        key = (topic, partition)
        found = self.instances.get(key)
        if found is None:
            found = self.instances[key] = {s.kind: s.new() for s in self.specs if s.stream == stream}
        return found

    def _alerts(self, findings: list[Finding]) -> list[Alert]:
        return latest(build_alert(f, self.sections[f.detector]) for f in findings)

    def _rollup(
        self, stream: str, topic: str, partition: int, decoded: Sequence[tuple[RawRecord, Record]]
    ) -> None:
        fields_attr, org_attr, outcome_attr = ROLLUP_DIMENSIONS[stream]
        roll = self.rollups.get((topic, partition))
        if roll is None:
            roll = self.rollups[(topic, partition)] = PartitionRollup(self.rollup_block)
        coverage = self.catalog.coverage
        for raw, ev in decoded:
            minute = ev.ts // 60_000 * 60  # type: ignore[attr-defined]
            org = getattr(ev, org_attr) or ""
            outcome = str(getattr(ev, outcome_attr) or "")
            cls, unknown = coverage(stream, getattr(ev, fields_attr))
            roll.add(raw.offset, (minute, stream, cls.value, org, outcome))
            for field in unknown:
                # a coverage gap rides the same replay-safe rollups: stream `coverage_gap`,
                # org = the unknown field id, outcome = the stream it appeared on
                roll.add(raw.offset, (minute, COVERAGE_GAP, "", field, stream), counts_progress=False)

    def rollup_rows(self) -> list[tuple]:
        """(topic, partition, block, minute_s, stream, jr_class, org, outcome, events, version)."""
        return [
            (t, p, b, *cell, n, v) for (t, p), roll in self.rollups.items() for b, cell, n, v in roll.drain()
        ]

    # -- checkpoint -----------------------------------------------------------------------------
    def snapshot(self, topic: str, partition: int) -> dict[str, Any]:
        detectors = self.instances.get((topic, partition), {})
        roll = self.rollups.get((topic, partition))
        return {
            "max_ts": self.max_ts.get((topic, partition), 0),
            "detectors": {k: d.snapshot() for k, d in detectors.items()},
            "rollup": roll.to_json() if roll else {},
        }

    def restore(self, stream: str, topic: str, partition: int, state: dict[str, Any]) -> None:
        self.max_ts[(topic, partition)] = state.get("max_ts", 0)
        for kind, det in self._instances(stream, topic, partition).items():
            if kind in state.get("detectors", {}):
                det.restore(state["detectors"][kind])
        roll = self.rollups[(topic, partition)] = PartitionRollup(self.rollup_block)
        roll.load(state.get("rollup", {}))

    def drop(self, topic: str, partition: int) -> None:
        """A revoked partition's state leaves with it (after its final checkpoint)."""
        self.instances.pop((topic, partition), None)
        self.rollups.pop((topic, partition), None)
        self.max_ts.pop((topic, partition), None)
