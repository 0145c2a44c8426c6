"""Shared pieces of the fuzz tests (docs/fuzzing.md): hypothesis settings, valid records of every
stream built from the pydantic models, mutations of them, and the properties every decoder keeps.

LIFEMON_FUZZ_EXAMPLES raises the examples per property (default 200) for a longer hunt."""

from __future__ import annotations

import enum
import io
import json
import os
import types
import typing
from typing import Any

import fastavro
import msgspec
from conftest import T0
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from schemas.models import EVENT_MODELS
from streams.codecs import Decoded, RawRecord, SchemaRegistry, encode_avro

EXAMPLES = int(os.environ.get("LIFEMON_FUZZ_EXAMPLES", "200"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# One property run once per stream (or per source) shares the budget: a quarter each.
PER_STREAM = settings(FUZZ, max_examples=max(EXAMPLES // 4, 10))
# A card number (a C3 value, JR/T 0171 §4.2) planted in fuzzed fields: it must never reach a
# dead letter's reason or headers, which land on the DLQ topic, logs and dashboards.
SENTINEL = "6222021234567890123"
REGISTRY = SchemaRegistry()


def valid(model: type[BaseModel]) -> dict[str, Any]:
    """A record of `model` with every field set (optional ones too, so each can be mutated)."""
    return {name: _value(f.annotation) for name, f in model.model_fields.items()}


def _value(tp: Any) -> Any:
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (types.UnionType, typing.Union):
        return _value(next(a for a in args if a is not type(None)))
    if typing.get_origin(tp) is list:
        return [_value(args[0])]
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return valid(tp)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return next(iter(tp)).value
    return {bool: True, int: T0, str: "id-1"}[tp]


VALID = {s: valid(m) for s, m in EVENT_MODELS.items()}

text_with_sentinel = st.text(max_size=40).map(lambda t: f"{t}{SENTINEL}{t[::-1]}")
numbers = st.one_of(
    st.integers(),
    st.integers(min_value=2**63 - 3, max_value=2**70),
    st.integers(min_value=-(2**70), max_value=-1),
    st.sampled_from([T0 // 1000, T0 * 1000, -T0, T0 + 100 * 365 * 86_400_000, 10**30]),  # s, µs, years ahead
    st.floats(allow_nan=True, allow_infinity=True),
)
leaves = st.one_of(st.none(), st.booleans(), numbers, text_with_sentinel, st.just(int(SENTINEL)))
garbage = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(text_with_sentinel, inner, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def mutated(draw: st.DrawFn, stream: str) -> dict[str, Any]:
    """A valid record with one to three fields dropped, retyped or garbled, and maybe extra fields."""
    record = json.loads(json.dumps(VALID[stream]))
    names = sorted(record)
    for _ in range(draw(st.integers(1, 3))):
        name = draw(st.sampled_from(names))
        how = draw(st.sampled_from(["drop", "garbage", "sentinel", "nest", "extra"]))
        if how == "drop":
            record.pop(name, None)
        elif how == "garbage":
            record[name] = draw(garbage)
        elif how == "sentinel":
            record[name] = draw(text_with_sentinel)
        elif how == "nest":  # deeply nested JSON: 10k levels
            record[name] = draw(st.sampled_from([[], {}]))
            record["__nest__"] = draw(st.integers(1, 10_000))
        else:
            record[draw(text_with_sentinel)] = draw(garbage)
    return record


def to_json(record: dict[str, Any]) -> bytes:
    """JSON with NaN/Infinity as their non-standard tokens, and `__nest__` as that many levels."""
    depth = record.pop("__nest__", 0)
    text = json.dumps(record, allow_nan=True)
    if depth:
        text = text[:-1] + ', "deep": ' + "[" * depth + "]" * depth + "}"
    return text.encode()


@st.composite
def avro_bodies(draw: st.DrawFn, stream: str) -> tuple[bytes, list[tuple[str, bytes]] | None]:
    """Confluent wire-format or header-id Avro of a valid record, then truncated, bit-flipped, with
    wrong magic bytes or an unknown / foreign schema id."""
    record = dict(VALID[stream])
    for name, value in record.items():  # in-range values of the right type, some carrying the sentinel
        if value == "id-1":  # a free-text field (enums hold their first value)
            record[name] = draw(st.one_of(st.just(value), text_with_sentinel))
        elif isinstance(value, int) and not isinstance(value, bool):
            record[name] = draw(st.one_of(st.just(value), st.integers(-(2**63), 2**63 - 1)))
    wire = encode_avro(stream, record, REGISTRY)
    header = draw(st.booleans())
    body = wire[5:] if header else wire
    how = draw(st.sampled_from(["truncate", "flip", "magic", "schema_id", "none"]))
    if how == "truncate":
        body = body[: draw(st.integers(0, max(len(body) - 1, 0)))]
    elif how == "flip" and body:
        i = draw(st.integers(0, len(body) - 1))
        body = body[:i] + bytes([body[i] ^ draw(st.integers(1, 255))]) + body[i + 1 :]
    elif how == "magic" and not header:
        body = bytes([draw(st.integers(1, 255))]) + body[1:]
    schema_id = draw(st.integers(0, 2**32 - 1))
    if how == "schema_id" and not header:
        body = body[:1] + schema_id.to_bytes(4, "big") + body[5:]
    headers = None
    if header:
        hid = str(schema_id).encode() if how == "schema_id" else str(wire[1:5][-1]).encode()
        headers = [("schema.id", draw(st.one_of(st.just(hid), st.binary(max_size=8))))]
    return body, headers


def records_of(stream: str) -> st.SearchStrategy[tuple[bytes | None, list[tuple[str, bytes]] | None]]:
    """Every kind of bad (and some good) input a topic can carry."""
    json_records = st.one_of(st.just(VALID[stream]), mutated(stream)).map(to_json)
    bad_utf8 = json_records.map(lambda b: b.replace(b"id-1", b"id-\xff\xfe1"))
    text_field = next(k for k, v in VALID[stream].items() if v == "id-1")
    oversized = st.sampled_from([200_000, 300_000]).map(  # within and beyond max_record_bytes
        lambda n: to_json({**VALID[stream], text_field: SENTINEL * (n // len(SENTINEL))})
    )
    values = st.one_of(json_records, bad_utf8, oversized, st.binary(max_size=300), st.none(), st.just(b""))
    return st.one_of(values.map(lambda v: (v, None)), avro_bodies(stream))


def raws(topic: str, values: list[tuple[bytes | None, Any]], timestamp: int = T0) -> list[RawRecord]:
    return [RawRecord(topic, 0, i, v, b"k", h, timestamp) for i, (v, h) in enumerate(values)]


def assert_no_leak(decoded: Decoded) -> None:
    """Every dead letter has a kind and a reason, and neither echoes the planted C3 value."""
    for d in decoded.dead:
        assert d.kind and d.message, d
        for name, value in d.headers():
            assert SENTINEL.encode() not in value, (name, value)


def assert_round_trips(stream: str, decoded: Decoded) -> None:
    """A decoded record keeps the schema's bounds: it validates as the pydantic model and encodes
    to the stream's Avro schema and back unchanged."""
    model = EVENT_MODELS[stream]
    for _, ev in decoded.ok:
        data = msgspec.to_builtins(ev)
        model.model_validate(data)
        buf = io.BytesIO(encode_avro(stream, ev, REGISTRY, wire=False))
        assert msgspec.convert(fastavro.schemaless_reader(buf, REGISTRY.reader(stream)), type(ev)) == ev
