"""Decoding: JSON and Avro (Confluent wire format, schema id header; a real schema registry over
HTTP in test_schema_registry.py), and a clear reason for every record that cannot be used."""

from __future__ import annotations

import io
import json
import struct
from typing import Any

import fastavro
import orjson
import pytest
from conftest import T0, access, entitlement

from schemas.models import STREAM_KEYS, Consent
from schemas.structs import from_model
from streams.codecs import (
    BLANK_KEY,
    BUILTIN_SCHEMA_IDS,
    RETIRED_SCHEMA_IDS,
    Decoder,
    EventTimeRule,
    RawRecord,
    SchemaRegistry,
    encode_avro,
)


def raw(value: bytes | None, headers=None, offset: int = 0) -> RawRecord:
    return RawRecord("pfi.access", 0, offset, value, b"e1", headers)


def test_json_and_avro_decode_to_the_same_event() -> None:
    (ev,) = access(n=1)
    reg = SchemaRegistry()
    out = Decoder(reg).decode(
        "access",
        [
            raw(ev.model_dump_json().encode()),
            raw(encode_avro("access", ev, reg), offset=1),
            raw(encode_avro("access", ev, reg, wire=False), headers=[("schema.id", b"1")], offset=2),
        ],
    )
    assert out.dead == [] and [m for _, m in out.ok] == [from_model("access", ev)] * 3
    assert [r.offset for r, _ in out.ok] == [0, 1, 2]  # offset order kept across formats


@pytest.mark.parametrize(
    ("value", "headers", "kind", "field", "text"),
    [
        (None, None, "empty", "", "no value"),
        (b'{"event_id": "x", "ts": 17', None, "malformed", "", "not valid JSON"),
        # broken after a field the schema lacks: still not JSON (a probe's was "invalid")
        (
            b'{"event_id":"pii-8","C0000479":',
            None,
            "malformed",
            "",
            "not valid JSON: Input data was truncated",
        ),
        (b"[1,2]", None, "invalid", "", "Expected `object`, got `array`"),
        (b'{"event_id":"x"}', None, "invalid", "ts", "missing required field"),
        (
            b'{"event_id":"x","ts":1767225600000,"actor_id":"a","system":"s","action":"peek"}',
            None,
            "invalid",
            "action",
            "not one of: view, query, export",
        ),
        (
            b'{"event_id":"x","ts":"1767225600000","actor_id":"a","system":"s","action":"view"}',
            None,
            "invalid",
            "ts",
            "Expected `int`, got `str`",
        ),
        (
            b'{"event_id":"x","ts":1767225600,"actor_id":"a","system":"s","action":"view"}',
            None,
            "event_time",
            "ts",
            "not epoch milliseconds",
        ),
        (
            b'{"event_id":"x","ts":1000000000000000000000000000000,"actor_id":"a","system":"s","action":"view"}',
            None,
            "event_time",
            "ts",
            "not epoch milliseconds",
        ),
        (
            b'{"event_id":"x","ts":7258118400000,"actor_id":"a","system":"s","action":"view"}',
            None,
            "event_time",
            "ts",
            "not epoch milliseconds",
        ),
        (b"\x00\x00\x00", None, "malformed", "", "5 header bytes"),
        (b"\x00\x00\x00\x00\x01\xff\xff", None, "malformed", "", "does not match schema 1"),
        (b"\x02abc", [("schema.id", b"x1")], "malformed", "", "not a number"),
        (b"\x00\x00\x00\x01\x00", None, "unknown_schema", "", "schema id 256"),
        (b"{" + b" " * 300 + b"}", None, "oversized", "", "exceeds max_record_bytes 300"),
    ],
)
def test_each_bad_record_gets_its_reason(value, headers, kind, field, text) -> None:
    out = Decoder(max_record_bytes=300).decode("access", [raw(value, headers)])
    (dead,) = out.dead
    assert (dead.kind, dead.field) == (kind, field) and text in dead.message, dead.message
    hdr = dict(dead.headers())
    assert hdr["error.kind"] == kind.encode() and hdr["source.offset"] == b"0"


def test_a_reference_record_dated_in_seconds_is_refused_and_history_and_always_are_kept() -> None:
    """A reference record's valid-from may lie decades back, or be 0 (in force always), but a
    time in seconds lands in January 1970: a probe's opt-out so dated was taken as a 1970 record,
    lost to the grant before it, and the push after it was never judged against it."""
    opt_out = {"subject_id": "C1", "purpose": "marketing", "status": "withdrawn", "separate": False}
    times = [1_767_232_800, 0, 631_152_000_000, T0]  # seconds; always; 1990; now
    raws = [
        RawRecord("pfi.consents", 0, i, json.dumps(opt_out | {"ts": ts}).encode(), None, None)
        for i, ts in enumerate(times)
    ]
    out = Decoder().decode("consents", raws)
    assert [ev.ts for _, ev in out.ok] == times[1:]
    (dead,) = out.dead
    assert (dead.kind, dead.field, dead.raw.offset) == ("event_time", "ts", 0)
    assert "between the years 1971 and 2100 (0: in force always)" in dead.message


def test_reasons_never_repeat_the_offending_value() -> None:
    """A DLQ reason goes to headers, ClickHouse and logs: it must not carry a card number or PIN."""
    bad = [
        b'{"event_id":"x","ts":1767225600000,"actor_id":"a","system":"s","action":"123456"}',
        b'{"event_id":"x","ts":1767225600000,"actor_id":"a","system":"s","action":"view","subject_ids":"6222020200001234567"}',
        b'{"event_id":"x","ts":"card 6222020200001234567","actor_id":"a","system":"s","action":"view"}',
        b'{"event_id":"x","ts":1767225600000,"actor_id":"a","system":"s","action":"view","channel":"6222020200001234567"}',
    ]
    out = Decoder().decode("access", [raw(v, offset=i) for i, v in enumerate(bad)])
    dead = out.dead
    assert [d.field for d in dead] == ["action", "subject_ids", "ts"]
    assert out.unknown_fields == {"channel": 1}  # an unknown field is accepted, counted, and not kept
    for d in dead:
        assert "123456" not in d.message and "6222" not in d.message
        assert all(b"123456" not in v and b"6222" not in v for k, v in d.headers())


@pytest.fixture(scope="module")
def one_of_each(policy) -> dict[str, Any]:
    """A generated record of each stream, as its producer would write it (JSON)."""
    from streams.workload import generate

    found: dict[str, Any] = {}
    for stream, _, record in generate(300, seed=5, policy=policy).records:
        found.setdefault(stream, orjson.loads(record.model_dump_json()))
    return found


@pytest.mark.parametrize("stream", sorted(STREAM_KEYS))
def test_a_record_whose_key_is_blank_is_a_dead_letter_naming_the_key(stream: str, one_of_each) -> None:
    """A probe's `actor_id: " "` (a CHAR column's padding) and `recipient_id: "\u3000"` were judged
    as one actor or recipient named "": every employee whose log line lost its user pooled into
    one bulk_query episode."""
    key, good = STREAM_KEYS[stream], one_of_each[stream]
    records = [
        RawRecord(f"pfi.{stream}", 0, i, orjson.dumps({**good, key: blank}), None, None, good["ts"])
        for i, blank in enumerate(["", " ", "\u3000", " \t\u3000 ", good[key]])
    ]
    decoder = Decoder(clock=lambda: good["ts"] / 1000)
    out = decoder.decode(stream, records)
    assert [(d.raw.offset, d.kind, d.field) for d in out.dead] == [(i, "invalid", key) for i in range(4)]
    assert {d.message for d in out.dead} == {BLANK_KEY}
    assert [getattr(ev, key) for _, ev in out.ok] == [good[key]]  # the others of the batch go on
    avro = [
        RawRecord(f"pfi.{stream}", 0, i, encode_avro(stream, {**good, key: k}, decoder.registry), None)
        for i, k in enumerate(["\u3000", good[key]])
    ]
    out = decoder.decode(stream, avro, check_time=False)  # a re-keyed copy: judged at its source
    assert len(out.ok) == 2
    out = decoder.decode(stream, avro)
    assert [(d.raw.offset, d.field, d.message) for d in out.dead] == [(0, key, BLANK_KEY)] and len(
        out.ok
    ) == 1


def test_an_unknown_field_is_accepted_and_counted_not_dead_lettered() -> None:
    """A producer that adds one optional field must not send everything to the DLQ."""
    (ev,) = access(n=1)
    newer = orjson.dumps({**orjson.loads(ev.model_dump_json()), "device_risk": 3, "colour": "red"})
    out = Decoder().decode("access", [raw(newer), raw(ev.model_dump_json().encode(), offset=1)])
    assert out.dead == [] and [m for _, m in out.ok] == [from_model("access", ev)] * 2
    assert sum(out.unknown_fields.values()) == 1


def test_event_time_is_judged_against_the_kafka_timestamp() -> None:
    """One access dated ten years ahead must not reach the engine (it would move the watermark and
    close every window); without Kafka timestamps (a file) the batch median is the reference."""
    events = access(n=5)
    far = events[2].model_copy(update={"ts": events[2].ts + 10 * 365 * 86_400_000})
    stamped = [
        RawRecord("pfi.access", 0, i, e.model_dump_json().encode(), b"e1", None, events[0].ts)
        for i, e in enumerate([*events[:2], far, *events[3:]])
    ]
    for records in (stamped, [RawRecord(r.topic, 0, r.offset, r.value) for r in stamped]):
        out = Decoder().decode("access", records)
        assert [r.offset for r, _ in out.ok] == [0, 1, 3, 4]
        (dead,) = out.dead
        assert (dead.kind, dead.field, dead.raw.offset) == (
            "event_time",
            "ts",
            2,
        ) and "ahead of" in dead.message
    late = [
        RawRecord(
            "pfi.access",
            0,
            0,
            events[0].model_dump_json().encode(),
            b"e1",
            None,
            events[0].ts + 40 * 86_400_000,
        )
    ]
    assert Decoder().decode("access", late).dead == []  # late is not poison, by default
    (dead,) = Decoder(event_time=EventTimeRule(300_000, 30 * 86_400_000)).decode("access", late).dead
    assert "behind its record's Kafka timestamp" in dead.message


def test_nothing_is_dated_ahead_of_this_machines_clock() -> None:
    """A probe's shipper stamped CreateTime with the event time: one access dated 2099, its Kafka
    timestamp 2099 too, passed both checks, and its watermark fired 73 retention timers at once.
    No event happened ahead of the monitor's own clock (beyond `max_ahead_s`), however it is stamped;
    a reference record may be (a valid-from date is a plan)."""
    (ev,) = access(n=1)
    now = ev.ts / 1000 + 3600  # the monitor's clock, an hour after the access

    def stamped(ts: int, stream: str = "access", body: Any = None) -> RawRecord:
        value = (body or ev.model_copy(update={"ts": ts})).model_dump_json().encode()
        return RawRecord(f"pfi.{stream}", 0, 0, value, b"e1", None, ts)

    clocked = Decoder(clock=lambda: now)
    year_2099 = 4070908800000
    (dead,) = clocked.decode("access", [stamped(year_2099)]).dead
    assert dead.kind == "event_time" and "ahead of this machine's clock" in dead.message
    assert "event_time.max_ahead_of_clock_s" in dead.message
    # a producer's or this machine's clock off by minutes stays within the allowance (a review: with
    # the Kafka timestamp's 300 s, a monitor 6 minutes slow refused every live record)
    soon = int(now * 1000) + 6 * 60_000
    assert clocked.decode("access", [stamped(soon)]).dead == []
    assert clocked.decode("access", [stamped(int(now * 1000) + 3_601_000)]).dead
    assert clocked.decode("access", [RawRecord("pfi.access", 0, 0, stamped(year_2099).value)]).dead
    plan = entitlement("e1").model_copy(update={"ts": year_2099})
    assert clocked.decode("entitlements", [stamped(year_2099, "entitlements", plan)]).dead == []


def test_a_producer_clock_behind_is_learned_and_a_record_ahead_of_it_still_refused() -> None:
    """A probe's shipper clock ran 6 minutes behind the systems it ships for: every access was
    "360 s ahead of its record's Kafka timestamp", refused, and 23 of 56 alerts lost. A partition's
    usual skew (the median of a batch of 5 or more stamped records) is allowed for; a record ahead
    of that by more than `max_ahead_s` is still refused, in a batch of one too; a few records
    alone teach nothing."""
    events = access(n=12, every_s=10)
    slow = 6 * 60_000

    def stamped(evs: list, offset: int = 0, partition: int = 0) -> list[RawRecord]:
        """Stamped by the slow clock when shipped: the record dated ahead was shipped with its neighbours."""
        return [
            RawRecord(
                "pfi.access",
                partition,
                offset + i,
                e.model_dump_json().encode(),
                b"e1",
                None,
                min(e.ts, events[5].ts) - slow if e.event_id == "poison" else e.ts - slow,
            )  # fmt: skip
            for i, e in enumerate(evs)
        ]

    poison = events[5].model_copy(update={"ts": events[5].ts + 2 * 3_600_000, "event_id": "poison"})
    d = Decoder(clock=lambda: events[-1].ts / 1000 + 3 * 3600)
    out = d.decode("access", stamped([*events[:5], poison, *events[5:10]]))
    assert len(out.ok) == 10 and [x.raw.offset for x in out.dead] == [5]
    assert "and the 360 s its partition's records usually run ahead of theirs" in out.dead[0].message
    assert d.decode("access", stamped(events[10:11], 20)).dead == []  # one record, judged by what was learned
    assert len(d.decode("access", stamped([poison], 21)).dead) == 1
    fresh = Decoder(clock=lambda: events[-1].ts / 1000 + 3 * 3600)  # another partition, a few records
    assert len(fresh.decode("access", stamped(events[:3], 0, 1)).dead) == 3


@pytest.mark.parametrize("allowance", [2**63, 2**80, 1e18], ids=["2**63", "2**80", "float"])
def test_an_allowance_past_64_bits_judges_as_python_does(allowance: int | float) -> None:
    """The door's C check doubts what it cannot compare exactly; Python then decides as it always
    did: a consent dated a day ahead is a plan, not poison, and an access a day behind its Kafka
    timestamp is history under an allowance as large as this."""
    day = 86_400_000
    consent = Consent(subject_id="C1", ts=T0 + day, purpose="marketing", channel=None, status="granted")
    plan = RawRecord("pfi.consents", 0, 0, consent.model_dump_json().encode(), b"C1", None, T0)
    rule = EventTimeRule(300_000, allowance)
    assert Decoder(event_time=rule).decode("consents", [plan]).dead == []
    (ev,) = access(n=1)
    late = RawRecord("pfi.access", 0, 0, ev.model_dump_json().encode(), b"e1", None, ev.ts + day)
    assert Decoder(event_time=rule).decode("access", [late]).dead == []
    early = RawRecord("pfi.access", 0, 0, ev.model_dump_json().encode(), b"e1", None, ev.ts - day)
    ahead = Decoder(event_time=EventTimeRule(allowance, None)).decode("access", [early])  # type: ignore[arg-type]
    assert ahead.dead == [] and len(ahead.ok) == 1


def test_a_sparse_file_keeps_a_record_weeks_ahead() -> None:
    """A case file of five accesses on one morning and one 19 days on (a deletion request's 15
    days passed): the batch median is the morning and the spread nil, yet the last record is kept;
    one dated 40 days on is still refused, and with a Kafka timestamp the tight rule holds."""
    events = access(n=6)
    day = 86_400_000
    for ahead, kept in ((19 * day, True), (40 * day, False)):
        last = events[5].model_copy(update={"ts": events[0].ts + ahead})
        records = [
            RawRecord("pfi.access", 0, i, e.model_dump_json().encode())
            for i, e in enumerate([*events[:5], last])
        ]
        out = Decoder().decode("access", records)
        assert (len(out.ok), len(out.dead)) == ((6, 0) if kept else (5, 1))
        stamped = [RawRecord(r.topic, 0, r.offset, r.value, None, None, events[0].ts) for r in records]
        assert len(Decoder().decode("access", stamped).dead) == 1


def test_the_configured_default_keeps_history_a_backfill_or_a_replay_brings() -> None:
    """docs/configuration.md and docs/architecture.md: late is not poison unless max_behind_s is set.
    The config's default once dead-lettered records 30 days behind their clock: a 2012 KYC
    collection shipped today, or replayed from a file among 2026 records, never reached
    retention_overrun (a replay of the generator's own day lost 5 of its 8 retention violations)."""
    from streams.config import Config

    collected = {
        "event_id": "lcy-1",
        "ts": 1_351_210_321_924,  # 2012-10-26
        "record_id": "R1",
        "subject_id": "C0000001",
        "stage": "collect",
        "system": "core_banking",
        "categories": ["customer_name", "id_document_no"],
        "purpose": "kyc_aml",
        "own_institution": True,
    }
    now = 1_767_225_600_000  # 2026-01-01
    value = orjson.dumps(collected)
    today = [RawRecord("pfi.lifecycle", 0, 0, value, b"C0000001", None, now)]
    in_a_file = [RawRecord("pfi.lifecycle", 0, 0, value)] + [
        RawRecord("pfi.lifecycle", 0, i, orjson.dumps(collected | {"event_id": f"lcy-{i}", "ts": now + i}))
        for i in range(1, 5)
    ]
    decoder = Decoder.for_config(Config())
    for records in (today, in_a_file):
        out = decoder.decode("lifecycle", records)
        assert out.dead == [] and len(out.ok) == len(records)


def test_builtin_schema_ids_never_change() -> None:
    """Records written with a built-in id must keep their meaning when a schema is added."""
    assert BUILTIN_SCHEMA_IDS == {
        "access": 1,
        "transfer": 2,
        "sdk": 3,
        "lifecycle": 5,
        "entitlements": 6,
        "consents": 7,
        "alerts": 8,
        "customers": 9,
        "marketing": 10,
    }
    assert RETIRED_SCHEMA_IDS == {4: "marketing_push_event"}


def test_a_push_written_under_the_retired_id_reads_with_the_new_fields_default() -> None:
    """A marketing producer still on schema 4 (before `kind`) decodes, its pushes marketing as before;
    one on 10 says its notices. Under one grown schema the older body was malformed (EOF)."""
    from schemas.models import MarketingPushEvent
    from streams.codecs import _retired

    ev = MarketingPushEvent(
        event_id="m1", ts=1_767_225_600_000, subject_id="C1", channel="sms", campaign_id="NTC-1",
        purpose="account_service", personalized=False, opt_out_offered=False,
        non_personalized_option=False, submitter_id="E1", kind="notice",
    )  # fmt: skip
    older = io.BytesIO()
    fastavro.schemaless_writer(
        older, fastavro.parse_schema(_retired(4, "marketing_push_event")), ev.model_dump(mode="json")
    )
    out = Decoder().decode(
        "marketing",
        [
            RawRecord("pfi.marketing", 0, 0, b"\x00" + struct.pack(">I", 4) + older.getvalue()),
            RawRecord("pfi.marketing", 0, 1, encode_avro("marketing", ev, SchemaRegistry())),
        ],
    )
    assert out.dead == [] and [m.kind.value for _, m in out.ok] == ["marketing", "notice"]


def test_an_avro_body_with_bytes_after_its_value_is_malformed() -> None:
    """A body of a longer (newer) schema sent under an older id would lose its last fields in
    silence: a probe's record with bytes after its value was taken. Refused with how many, alone
    and in a batch beside a good one, which is taken."""
    from streams.codecs import Decoder, RawRecord, SchemaRegistry, encode_avro

    ev = access("e1", customers=1)[0]
    body = encode_avro("access", ev, SchemaRegistry())
    decoder = Decoder()
    for batch in ([body + b"\x00\x01garbage"], [body + b"\x00\x01garbage", body]):
        out = decoder.decode(
            "access", [RawRecord("pfi.access", 0, i, v, timestamp=ev.ts) for i, v in enumerate(batch)]
        )
        [(kind, message)] = [(d.kind, d.message) for d in out.dead]
        assert kind == "malformed" and message.endswith("ValueError: 9 bytes after the value"), message
        assert len(out.ok) == len(batch) - 1


def test_a_dead_letter_keeps_its_records_headers_within_a_bound() -> None:
    """The record's own headers come with its copy, lifemon's reasons after them and never
    overwritten; past 100 000 bytes they are said dropped, so a copy of a value just under its own
    cap still fits the producer's message.max.bytes (a review's)."""
    from streams.codecs import DeadLetter, RawRecord

    def copy(headers: list[tuple[str, bytes | None]]) -> dict[str, bytes]:
        return dict(
            DeadLetter(RawRecord("pfi.access", 0, 7, b"x", headers=headers), "malformed", "", "m").headers()
        )

    kept = copy([("trace", b"t-1"), ("empty", None), ("error.kind", b"forged")])
    assert (kept["trace"], kept["empty"], kept["error.kind"], kept["source.offset"]) == (
        b"t-1",
        b"",
        b"malformed",
        b"7",
    )
    huge = copy([("blob", b"b" * 150_000)])
    assert "blob" not in huge and huge["error.headers_dropped"].startswith(b"1 headers, 150004 bytes")


def test_an_enum_value_in_another_case_is_the_schemas() -> None:
    """A consent platform wrote `"channel": "SMS", "status": "WITHDRAWN"`: a dead letter, and the
    opt-out was lost to every push after it (a probe). Every enum value is lower case: read so.
    A value no case makes one of the schema's is still refused, with its reason."""
    from streams.codecs import Decoder, RawRecord

    opt_out = b'{"subject_id":"C1","ts":0,"purpose":"marketing","channel":" SMS","status":"WITHDRAWN"}'
    fax = b'{"subject_id":"C1","ts":0,"purpose":"marketing","channel":"FAX","status":"granted"}'
    out = Decoder().decode("consents", [RawRecord("c", 0, 0, opt_out), RawRecord("c", 0, 1, fax)])
    ((_, consent),) = out.ok
    assert (consent.channel.value, consent.status.value) == ("sms", "withdrawn")
    assert [(d.raw.offset, d.kind, d.field) for d in out.dead] == [(1, "invalid", "channel")]


def test_an_enum_value_in_a_producers_words_is_the_schemas() -> None:
    """A probe's HR feed posted a resignation as `离职`: the record was a dead letter, the employee
    stayed active, and every read after it was silent (seed 004 人员管理(5)). A refusal written
    `failure`, a read written `SELECT` or `COPY` were dead letters too. schemas/enum_words.yaml
    reads producers' words for each enum, by the field's enum: `inactive` is a suspended employee
    and a dormant customer. A word it does not list, or one of two meanings, is still refused."""
    from streams.codecs import Decoder, RawRecord

    def decoded(stream: str, records: list[str]) -> tuple[list[Any], list[int]]:
        raws = [RawRecord("t", 0, i, r.encode()) for i, r in enumerate(records)]
        out = Decoder().decode(stream, raws)
        return [ev for _, ev in out.ok], [d.raw.offset for d in out.dead]

    ent = '{"actor_id":"E1","ts":0,"org_id":"S1","org_path":["HO","S1"],"status":"%s"}'
    statuses, dead = decoded("entitlements", [ent % w for w in ("离职", "Resigned", "inactive", "调岗", "T")])
    assert [e.status.value for e in statuses] == ["terminated", "terminated", "suspended", "transferred"]
    assert dead == [4]
    cust = '{"customer_id":"C1","ts":0,"org_id":"S1","org_path":["HO","S1"],"status":"%s"}'
    customers, _ = decoded("customers", [cust % w for w in ("inactive", "销户", "transferred", "迁出")])
    assert [c.status.value for c in customers] == ["dormant", "closed", "active", "active"]
    access = (
        '{"event_id":"e%d","ts":1767225600000,"actor_id":"E1","system":"crm","action":"%s","outcome":"%s",'
        '"subject_ids":["C1"],"fields":["customer_name"]}'
    )
    said = [
        ("SELECT", "refused"),
        ("DUMP", "403"),
        ("导出", "拒绝"),
        ("read", "OK"),
        ("peek", "denied"),
        ("COPY", "failure"),
    ]
    events, dead = decoded("access", [access % (i, a, o) for i, (a, o) in enumerate(said)])
    assert [(e.action.value, e.outcome.value) for e in events] == [
        ("query", "denied"),
        ("export", "denied"),
        ("export", "denied"),
        ("view", "success"),
    ]
    # a peek, a COPY (an import too) and a failure (a timeout too) say not which: refused
    assert dead == [4, 5]
    life = '{"event_id":"l%d","ts":1767225600000,"record_id":"R1","stage":"%s","system":"crm"}'
    # a CDC feed's past tense and a Chinese core system's verb (a probe's `deleted` and 删除 were dead
    # letters, and the deleted record's later use went unseen)
    words = (
        "撤回删除申请",
        "Request Withdrawn",
        "deleted",
        "删除",
        "Purged",
        "销毁",
        "匿名化",
        "已收集",
        "销户",
        "to be deleted",
    )
    stages, dead = decoded("lifecycle", [life % (i, w) for i, w in enumerate(words)])
    assert [e.stage.value for e in stages] == [
        "deletion_withdrawn",
        "deletion_withdrawn",
        "delete",
        "delete",
        "delete",
        "destroy",
        "anonymize",
        "collect",
        "account_closed",
    ]
    assert dead == [9]  # a word it does not list is still refused


@pytest.mark.parametrize(
    ("stream", "record", "field", "words", "values"),
    [
        # an MFT or API-gateway transfer log's class of counterparty (seed 001 §三(5), §四; seed 004)
        ("transfer", "transfer", "recipient_type",
         ["境外", "境外机构", "跨境", "Cross-Border", "foreign", "第三方", "Vendor", "外包", "委托处理", "外包服务商", "监管机构"],
         ["overseas"] * 5 + ["third_party"] * 2 + ["processor"] * 3 + ["regulator"]),
        # the basis it claims (seed 004 隐私政策 (三); PIPL art. 13 ¶1)
        ("transfer", "transfer", "legal_basis",
         ["单独同意", "法定义务", "法律义务", "合同", "contract_necessity", "无", "N/A"],
         ["separate_consent", "legal_obligation", "legal_obligation", "contract", "contract", "none", "none"]),
        # an SMS platform's, the app's, WeChat's and a call centre's send logs
        ("marketing", "push", "channel",
         ["手机短信", "APP推送", "站内信", "手机银行APP", "微信公众号", "企业微信", "WeChat Work", "外呼", "电销", "智能外呼"],
         ["sms"] + ["app_push"] * 3 + ["wechat"] * 3 + ["phone"] * 3),
        # an app's toggle, an SMS gateway's unsubscribe (seed 004 隐私政策: 开启, 关闭"信息推送")
        ("consents", "consent", "status",
         ["关闭", "已关闭", "不同意", "取消授权", "退订成功", "TD", "OFF", "disabled", "开启", "已开启", "ON", "enabled"],
         ["withdrawn"] * 8 + ["granted"] * 4),
    ],
)  # fmt: skip
def test_transfer_push_and_consent_words_are_the_schemas(stream, record, field, words, values) -> None:
    """A probe's transfer to an undeclared vendor in Singapore classed 境外 was a dead letter and no
    cross-border alert; its pushes on 手机短信 and its opt-outs written 退订成功 were dead letters too
    (schemas/enum_words.yaml RecipientType, LegalBasis, Channel, ConsentStatus). A word of two
    meanings (Y, 0, true; 5G消息, which an SMS consent may or may not cover) is still refused."""
    from streams.codecs import Decoder, RawRecord

    base = {
        "transfer": {"event_id": "t", "ts": 1767225600000, "transfer_id": "T", "sender_system": "core", "recipient_id": "x",
                     "recipient_type": "third_party", "recipient_country": "SG", "categories": ["customer_name"],
                     "record_count": 1, "subject_count": 1, "subject_ids": ["C1"], "encrypted": True,
                     "deidentified": False, "public_network": False},
        "push": {"event_id": "m", "ts": 1767225600000, "subject_id": "C1", "channel": "sms", "campaign_id": "CMP",
                 "purpose": "marketing", "personalized": False, "opt_out_offered": True,
                 "non_personalized_option": False, "submitter_id": "E1", "approver_id": "E2", "org_id": "HO"},
        "consent": {"subject_id": "C1", "ts": 0, "purpose": "marketing", "status": "granted"},
    }[record]  # fmt: skip
    ambiguous = {"transfer": "Y", "push": "5G消息", "consent": "0"}[record]
    raws = [
        RawRecord("t", 0, i, json.dumps({**base, field: w}, ensure_ascii=False).encode())
        for i, w in enumerate([*words, ambiguous])
    ]
    out = Decoder().decode(stream, raws)
    assert [getattr(ev, field).value for _, ev in out.ok] == values
    assert [(d.raw.offset, d.kind, d.field) for d in out.dead] == [(len(words), "invalid", field)]
    assert out.dead[0].message.startswith("not one of: ")
