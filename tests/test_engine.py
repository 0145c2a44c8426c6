"""Engine rollups: per-minute counts by class, coverage gaps, and replay-safe versions."""

from __future__ import annotations

from conftest import T0, access

from detectors import load_detectors
from schemas.models import SdkTelemetryEvent
from streams.codecs import RawRecord
from streams.engine import COVERAGE_GAP, Engine
from streams.pseudonym import Pseudonymizer


def engine(policy, catalog) -> Engine:
    return Engine(load_detectors(policy), catalog, Pseudonymizer(b"e" * 32), rollup_block=100)


def rows_of(e: Engine) -> dict[tuple, tuple[int, int]]:
    return {tuple(r[3:8]): (r[8], r[9]) for r in e.rollup_rows()}


def test_unknown_field_ids_are_coverage_gaps_not_silence(policy, catalog) -> None:
    e = engine(policy, catalog)
    events = access(n=3, fields=("account_balance", "frobnicate"))
    e.process("access", "t", 0, [(RawRecord("t", 0, i, None), ev) for i, ev in enumerate(events)])
    rows = rows_of(e)
    minute = T0 // 1000
    assert rows[(minute, "access", "C2", "S0101", "success")] == (3, 3)
    assert rows[(minute, COVERAGE_GAP, "", "frobnicate", "access")] == (3, 3)


def test_sdk_fields_are_classed_by_the_sdk_catalog(policy, catalog) -> None:
    e = engine(policy, catalog)
    face = SdkTelemetryEvent(
        event_id="s1",
        ts=T0,
        app_id="app",
        app_version="1",
        device_id="d",
        sdk_id="tencent_face",
        fields=["face_image", "device_model"],
        policy_consented=True,
    )
    e.process("sdk", "s", 0, [(RawRecord("s", 0, 0, None), face)])
    (cell,) = [k for k in rows_of(e) if k[1] == "sdk"]
    assert cell[2] == "C3"  # face images used for authentication (sdks.yaml)


def test_a_block_reprocessed_from_its_snapshot_rewrites_the_same_rows(policy, catalog) -> None:
    events = access(n=150, customers=150, every_s=1)
    raws = [(RawRecord("t", 0, i, None), ev) for i, ev in enumerate(events)]
    whole = engine(policy, catalog)
    whole.process("access", "t", 0, raws)
    expected = rows_of(whole)
    first = engine(policy, catalog)
    first.process("access", "t", 0, raws[:120])
    first.rollup_rows()  # a checkpoint drained these...
    snapshot = first.snapshot("t", 0)
    second = engine(policy, catalog)  # ...then a crash and a restart from the snapshot
    second.restore("access", "t", 0, snapshot)
    second.process("access", "t", 0, raws[120:])
    got = rows_of(second)
    assert {k: v for k, v in got.items() if v[1] == 50} == {k: v for k, v in expected.items() if v[1] == 50}
