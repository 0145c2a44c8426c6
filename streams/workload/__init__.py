"""Synthetic PFI workload: a bank, its normal traffic on every stream, and injected violations with
their ground truth (`Workload.truth`), so detectors can be scored as found, missed or false alarm.

Deterministic for (events, seed, start_ms): one `random.Random(seed)`, no clock, no global state
(the cyclic GC is only paused while generating, see `_collector_paused`).
Normal traffic is built to break no rule of DESIGN.md §1; the injected violations are the only
records that do. Each truth entry names the key its detector alerts on. For event rules ts_start /
ts_end are the first / last offending event; for absence rules (retention) ts_start is the event
that starts the clock and ts_end the deadline it overran.

Violations are generated first, so no id may follow generation order: event ids are numbered per
stream in time order, record and transfer ids are random."""

from __future__ import annotations

import gc
import heapq
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastavro
import orjson
from pydantic import TypeAdapter

from policy import load_policy
from policy.model import Policy
from schemas.models import EVENT_MODELS, REFERENCE_STREAMS, STREAM_KEYS, Record
from streams.codecs import load_schema
from streams.workload.base import EVENT_STREAMS, ID_PREFIX
from streams.workload.record_uses import RecordUses

__all__ = ["Workload", "generate", "write_files", "read_truth", "unsimulated"]


@dataclass
class Workload:
    records: list[
        tuple[str, str, Record]
    ]  # (stream, key, record): reference streams first, then events by ts
    truth: list[dict]  # injected violations
    bank: dict  # summary counts, plus the org tree and each customer's managing sub-branch


# what the simulated bank names, by the part of the policy that declares it
_NAMED = {
    "roles": lambda p: p.organisation.roles,
    "permission sets": lambda p: p.organisation.permissions,
    "systems": lambda p: p.organisation.systems,
    "purposes": lambda p: p.purposes.purposes,
    "fields": lambda p: p.classification.fields,
    "recipients": lambda p: p.recipients.recipients,
    "SDKs": lambda p: p.sdks.sdks,
}


def unsimulated(policy: Policy) -> list[str]:
    """What the generator's bank names that `policy` does not declare, by kind ("roles a, b"). The
    generator simulates the shipped bank (its roles, systems, purposes, fields, recipients and
    SDKs, throughout streams/workload): a copy of the shipped policy with other thresholds or
    periods runs it, another bank's folder cannot (a probe's second bank's was a KeyError)."""
    shipped = load_policy()
    missing = []
    for kind, named in _NAMED.items():
        lacking = sorted(set(named(shipped)) - set(named(policy)))
        if lacking:
            missing.append(f"{kind} {', '.join(lacking[:4])}{', …' if len(lacking) > 4 else ''}")
    return missing


def generate(
    events: int, seed: int = 7, start_ms: int = 1_767_225_600_000, policy: Policy | None = None
) -> Workload:
    """A bank and about `events` event-stream records (reference records on top), with injected violations."""
    policy = policy or load_policy()
    with _collector_paused():
        return _Generator(events, seed, start_ms, policy).run()


@contextmanager
def _collector_paused() -> Iterator[None]:
    """The workload holds no reference cycles, so the cyclic GC only costs time here (about half of it at
    100k events); plain reference counting still frees everything."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def write_files(workload: Workload, out_dir: Path, fmt: str = "jsonl") -> list[Path]:
    """One `pfi.<stream>.jsonl|avro` per stream in record order, plus `truth.json`; returns the paths."""
    if fmt not in ("jsonl", "avro"):
        raise ValueError(f"unknown format {fmt!r}: use jsonl or avro")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows: dict[str, list[dict[str, Any]]] = {s: [] for s in EVENT_MODELS}
    for stream, _key, rec in workload.records:
        rows[stream].append(rec.model_dump(mode="json"))
    paths = []
    for stream, items in rows.items():
        path = out_dir / f"pfi.{stream}.{fmt}"
        if fmt == "jsonl":
            path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in items))
        else:
            with path.open("wb") as fo:
                fastavro.writer(fo, fastavro.parse_schema(load_schema(stream)), items)
        paths.append(path)
    truth = out_dir / "truth.json"
    truth.write_text(json.dumps(workload.truth, indent=1, ensure_ascii=False), encoding="utf-8")
    return [*paths, truth]


def read_truth(path: Path) -> list[dict]:
    return json.loads(Path(path).read_text(encoding="utf-8"))


class _Generator(RecordUses):
    def run(self) -> Workload:
        self._build_bank()
        self._inject_bulk_query()  # first: it needs particular roles from the cast
        self._inject_slow_reading()
        self._inject_day_harvest()
        self._inject_shared_accounts()  # before the lookups, which take the rest of the desks
        self._shared_near_misses()
        self._staff_changes()
        self._inject_unauthorized_lookup()
        self._consents()
        self._plan_campaigns()
        self._inject_offscope_marketing()
        self._inject_retention_overrun()
        self._inject_sdk_overcollection()
        self._inject_transfer_policy()
        self._inject_deleted_record_use()  # after: it sends under the contracts that one reads
        self._normal_access()
        self._normal_sdk()
        self._normal_marketing()
        self._normal_lifecycle()
        self._normal_transfer()
        self._customer_records()
        return Workload(self._records(), self._numbered_truth(), self._summary())

    def _customer_records(self) -> None:
        """Each customer's managing sub-branch (seed 004: customers are managed in one sub-branch),
        from before the workload's day; last, since injections may open customer books."""
        for cid, sb in self.customer_org.items():
            self.out["customers"].append(
                {
                    "customer_id": cid,
                    "ts": self.start - 400 * 86_400_000,
                    "org_id": sb,
                    "org_path": self.paths[sb],
                }
            )

    def _records(self) -> list[tuple[str, str, Record]]:
        out: list[tuple[str, str, Record]] = []
        per_stream = []
        for stream in (*REFERENCE_STREAMS, *EVENT_STREAMS):
            rows = sorted(self.out.pop(stream), key=lambda r: r["ts"])  # the dicts go once validated
            if stream in ID_PREFIX:  # ids in time order: an id tells nothing about injection
                prefix = f"{ID_PREFIX[stream]}-{self.seed}-"
                for i, kw in enumerate(rows):
                    kw["event_id"] = f"{prefix}{i}"
            # one validation call per stream: ~1.7x faster than a model per call
            models = TypeAdapter(list[EVENT_MODELS[stream]]).validate_python(rows)  # type: ignore[valid-type]
            key = STREAM_KEYS[stream]
            keyed = [(stream, getattr(m, key), m) for m in models]
            if stream in REFERENCE_STREAMS:
                out.extend(keyed)
            else:
                per_stream.append(keyed)
        # stable: equal times keep stream order, as one sorted() over all event streams would
        out.extend(heapq.merge(*per_stream, key=lambda r: r[2].ts))  # type: ignore[attr-defined]
        return out

    def _numbered_truth(self) -> list[dict]:
        ordered = sorted(self.truth, key=lambda v: (v["ts_start"], v["detector"], v["key"]))
        return [{"id": f"V{i:04d}", **v} for i, v in enumerate(ordered, 1)]

    def _summary(self) -> dict:
        return {
            "branches": sum(1 for p in self.paths.values() if len(p) == 2),
            "second_branches": sum(
                1 for o, p in self.paths.items() if len(p) == 3 and o not in self.customers
            ),
            "sub_branches": len(self.customers),
            "employees": len(self.employees),
            "customers": len(self.customer_org),
            "orgs": self.paths,
            "customer_org": self.customer_org,
        }
