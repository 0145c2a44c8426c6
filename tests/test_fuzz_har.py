"""Fuzzed HAR records through the raw-source decoder (docs/fuzzing.md, docs/har.md): real-shaped
entries with garbage in their URL, times, headers, query and bodies, whole documents, shipper
envelopes and random bytes. Nothing raises or stalls; a dead letter has a kind and a reason; an
event keeps the schema's bounds; and a value planted anywhere in a request (a card number) never
appears in an event or a dead letter: only its keyed fingerprint does."""

from __future__ import annotations

import base64
import copy
import gzip
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec
import yaml
from conftest import T0
from fuzzing import FUZZ, PER_STREAM, SENTINEL, assert_no_leak, assert_round_trips, garbage
from hypothesis import given
from hypothesis import strategies as st
from test_fuzz_files import FILES, mutated_yaml
from test_har import entry, har
from test_raw_sources import records

from policy import DEFAULT_DIR, PolicyError, load_policy
from policy.traffic import load_traffic
from streams.codecs import Decoder
from streams.config import load_config
from streams.sources import RawDecoder

TOPIC = "pfi.raw.har"
DECODER = RawDecoder.for_config(
    Decoder(), load_config(None, raw_sources={"har": {"enabled": True, "app_version": "9.2.0"}})
)
SDKS = load_policy().sdks
TRAFFIC = yaml.safe_load((DEFAULT_DIR / "traffic.yaml").read_text(encoding="utf-8"))
URLS = [
    "https://datasink.sensorsdata.cn/sa?project=bank",
    "http://api.xmpush.xiaomi.com/v1/reg",
    "https://mbank.bjbank.example/bsfit/collect",
    "https://mbank.bjbank.example/api/privacy/agree",
    "https://collect.adtrack.example/p",
]


def assert_value_never_kept(decoded: Any) -> None:
    for _, ev in decoded.ok:
        assert SENTINEL not in msgspec.json.encode(ev).decode(), ev


@st.composite
def fuzzed_entry(draw: st.DrawFn) -> dict[str, Any]:
    body = draw(st.dictionaries(st.text(max_size=12), garbage, max_size=5))
    body[draw(st.sampled_from(["card", "k", "", "手机号"]))] = SENTINEL
    e = entry(
        draw(st.sampled_from(URLS))
        + draw(st.sampled_from(["", f"/{SENTINEL}", f"?k={SENTINEL}", "/%ff%00"])),
        draw(st.sampled_from(["GET", "POST", "", "\x00"])),
        at=draw(st.integers(0, 10**6)),
        json=body,
        headers=[(draw(st.text(max_size=10)), SENTINEL), ("X-IMEI", draw(st.text(max_size=20)))],
        cookies=[(draw(st.text(max_size=10)), draw(st.text(max_size=20)))],
    )
    if draw(st.booleans()):  # a field made the wrong type, or removed
        where = draw(st.sampled_from(["startedDateTime", "request", "postData", "queryString", "headers"]))
        target = e if where in ("startedDateTime", "request") else e["request"]
        target[where] = draw(garbage)
    return e


@PER_STREAM
@given(st.lists(fuzzed_entry(), min_size=1, max_size=6), st.sampled_from(["document", "entries", "envelope"]))
def test_har_records_never_crash_or_keep_values(items: list[dict[str, Any]], shape: str) -> None:
    if shape == "document":
        values = [json.dumps(har(*items)).encode()]
    elif shape == "entries":
        values = [json.dumps(i).encode() for i in items]
    else:
        values = [json.dumps({"message": json.dumps(har(*items)), "host": "capture-box"}).encode()]
    decoded = DECODER.decode("sdk", records(TOPIC, values, T0 + 10**6))
    assert_no_leak(decoded)
    assert_value_never_kept(decoded)
    assert_round_trips("sdk", decoded)


@FUZZ
@given(st.one_of(st.binary(max_size=2000), garbage.map(lambda g: json.dumps(g).encode())))
def test_random_records_never_raise(value: bytes) -> None:
    assert_no_leak(DECODER.decode("sdk", records(TOPIC, [value], T0)))


def test_hostile_bodies_are_judged_in_bounded_time() -> None:
    """A gzip bomb (20 MB of JSON in 30 KB of base64), JSON nested 5 000 deep, a list of
    200 000 values: each request is read up to its limits, never to exhaustion."""
    bomb = base64.b64encode(gzip.compress(b"[" + b"0," * 10_000_000 + b"0]")).decode()
    deep = "[" * 5000 + "]" * 5000
    wide = json.dumps([SENTINEL] * 200_000)
    values = [
        json.dumps(entry(URLS[0], "POST", form={"data_list": bomb})).encode(),
        json.dumps(entry(URLS[0], "POST", text=deep)).encode(),
        json.dumps(entry(URLS[0], "POST", text=wide)).encode(),
    ]
    started = time.process_time()
    decoded = DECODER.decode("sdk", records(TOPIC, values, T0))
    assert time.process_time() - started < 3
    assert len(decoded.ok) == 3 and not decoded.dead
    assert_value_never_kept(decoded)


@FILES
@given(st.data())
def test_a_mutated_traffic_policy_fails_with_file_key_and_fix(data: st.DataObject) -> None:
    """policy/traffic.yaml with a node dropped, retyped or garbled: a PolicyError naming the file and
    the fix, never another exception."""
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "traffic.yaml").write_bytes(data.draw(mutated_yaml(copy.deepcopy(TRAFFIC))))
        try:
            load_traffic(folder, SDKS)
        except PolicyError as e:
            assert e.file.endswith("traffic.yaml") and e.fix and "Fix: " in str(e), str(e)
