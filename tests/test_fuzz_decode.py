"""Fuzzed records of every stream through the canonical decoder (docs/fuzzing.md): JSON and Avro
(Confluent wire format and schema-id header), mutated from valid records and pure random bytes.
Nothing raises; each record is decoded or dead-lettered with a kind and a reason that echoes no
value; what decodes keeps the schema's bounds."""

from __future__ import annotations

import json

import pytest
from conftest import T0
from fuzzing import (
    FUZZ,
    PER_STREAM,
    REGISTRY,
    SENTINEL,
    VALID,
    assert_no_leak,
    assert_round_trips,
    raws,
    records_of,
)
from hypothesis import given
from hypothesis import strategies as st

from schemas.models import EVENT_MODELS, REFERENCE_STREAMS
from streams.codecs import Decoder, RawRecord, encode_avro

DECODER = Decoder()


@pytest.mark.parametrize("stream", list(EVENT_MODELS))
def test_every_record_is_decoded_or_dead_lettered_without_echoing_values(stream: str) -> None:
    @PER_STREAM
    @given(st.lists(records_of(stream), min_size=1, max_size=5), st.sampled_from([T0, 0]))
    def check(values, stamp) -> None:
        batch = raws(f"pfi.{stream}", values, stamp)
        decoded = DECODER.decode(stream, batch)
        seen = [r.offset for r, _ in decoded.ok] + [d.raw.offset for d in decoded.dead]
        tombstones = [r.offset for r in batch if r.value is None and stream in REFERENCE_STREAMS]
        assert sorted(seen + tombstones) == list(range(len(batch)))  # each exactly once
        assert_no_leak(decoded)
        assert_round_trips(stream, decoded)

    check()


@FUZZ
@given(st.binary(max_size=2000), st.sampled_from(list(EVENT_MODELS)))
def test_random_bytes_never_raise(value: bytes, stream: str) -> None:
    decoded = DECODER.decode(stream, [RawRecord(f"pfi.{stream}", 0, 0, value, None, None, T0)])
    assert len(decoded.ok) + len(decoded.dead) == 1
    assert_no_leak(decoded)
    assert_round_trips(stream, decoded)


def test_regressions_found_by_fuzzing() -> None:
    """Each of these raised out of decode or let a number through that no sink can write."""
    base = VALID["access"]
    cases = {
        "nested unknown field": b'{"event_id": "x", "deep": ' + b'{"a": ' * 10_000 + b"1" + b"}" * 10_001,
        "row_count beyond a long": json.dumps({**base, "row_count": 2**64}).encode(),
        "negative beyond a long": json.dumps({**base, "row_count": -(2**64)}).encode(),
    }
    decoded = DECODER.decode("access", raws("pfi.access", [(v, None) for v in cases.values()]))
    assert decoded.ok == []
    assert [(d.kind, d.field) for d in decoded.dead] == [
        ("malformed", ""),
        ("invalid", "row_count"),
        ("invalid", "row_count"),
    ]
    nested_key = json.dumps(
        {**VALID["entitlements"], "approvals": [{**VALID["entitlements"]["approvals"][0], SENTINEL: 1}]}
    ).encode()
    (dead,) = DECODER.decode("entitlements", raws("pfi.entitlements", [(nested_key, None)])).dead
    assert SENTINEL not in dead.message  # an unknown key in a nested object was echoed
    avro = encode_avro("access", {**base, "event_id": SENTINEL, "row_count": 2**63 - 1}, REGISTRY)
    (ok,) = DECODER.decode("access", raws("pfi.access", [(avro, None)])).ok
    assert ok[1].row_count == 2**63 - 1  # the bound itself is a long, and passes
