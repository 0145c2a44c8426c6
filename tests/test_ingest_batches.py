"""The per-record path before the detectors works a batch at a time where that pays (an Avro
batch read at once, pseudonyms and rollup labels looked up by C loops): a batch must give exactly
what its records give one by one, bad records included, each with its own dead-letter reason, and
the rollups' label caches must follow the reference data."""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace
from typing import Any

from conftest import T0, access, entitlement, fed, refs
from fuzzing import FUZZ, VALID, avro_bodies, mutated, to_json
from hypothesis import given
from hypothesis import strategies as st

from streams import _door
from streams.codecs import Decoded, Decoder, RawRecord, encode_avro
from streams.engine import Engine
from streams.pseudonym import Pseudonymizer

DECODER = Decoder(max_record_bytes=20_000)


def outcome(decoded: Decoded) -> tuple[list[tuple[int, Any]], list[tuple[int, str, str, str]], Counter]:
    """What a decode gave, by offset: events, dead letters (kind, field, message), unknown fields."""
    ok = [(r.offset, ev) for r, ev in decoded.ok]
    dead = sorted((d.raw.offset, d.kind, d.field, d.message) for d in decoded.dead)
    return ok, dead, decoded.unknown_fields


def one_by_one(stream: str, batch: list[RawRecord]) -> tuple[list, list, Counter]:
    ok, dead, unknown = [], [], Counter()
    for r in batch:
        o, d, u = outcome(DECODER.decode(stream, [r]))
        ok += o
        dead += d
        unknown += u
    return ok, sorted(dead), unknown


def stamped(values: list[bytes | None], headers: dict[int, Any] | None = None) -> list[RawRecord]:
    """Records with Kafka timestamps, so each event time is judged on its own (not by a batch median)."""
    return [RawRecord("pfi.access", 0, i, v, b"k", (headers or {}).get(i), T0) for i, v in enumerate(values)]


def good(i: int) -> bytes:
    (ev,) = access(f"e{i}", n=1, start=i)
    return ev.model_dump_json().encode()


BAD = {
    "malformed": b'{"event_id": "x", "ts": 17',
    "invalid": b'{"event_id":"x","ts":1767225600000,"actor_id":"a","system":"s","action":"peek"}',
    "unknown field": good(900)[:-1] + b', "colour": "red"}',
    "too deep": b'{"event_id": "x", "deep": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    "poisoned time": good(901).replace(str(T0 + 901).encode(), str(T0 + 10 * 365 * 86_400_000).encode()),
    "seconds": good(902).replace(str(T0 + 902).encode(), str((T0 + 902) // 1000).encode()),
    "avro": encode_avro("access", access("e903", n=1)[0], DECODER.registry),
    "damaged avro": b"\x00\x00\x00\x00\x01\xff\xff",
}


def test_a_json_batch_with_bad_records_among_good_ones_decodes_as_they_do_one_by_one() -> None:
    """Every good record comes through in offset order, every bad one (an Avro one among them)
    with its own reason."""
    values = [good(0), good(1)]
    for i, bad in enumerate(BAD.values()):
        values += [bad, good(10 + i), good(20 + i)]
    values += [BAD["malformed"], BAD["invalid"]]  # at the end, one after another
    batch = stamped(values)
    got = outcome(DECODER.decode("access", batch))
    assert got == one_by_one("access", batch)
    ok, dead, unknown = got
    assert len(ok) == len(values) - len(dead) and unknown == {"colour": 1}
    assert [k for _, k, _, _ in dead].count("event_time") == 2  # the poisoned time and the seconds
    assert {k for _, k, _, _ in dead} == {"malformed", "invalid", "event_time"}


def test_an_avro_batch_with_a_damaged_record_decodes_as_it_does_one_by_one() -> None:
    events = access("e1", n=30)
    values: list[bytes | None] = [encode_avro("access", ev, DECODER.registry) for ev in events]
    values[7] = values[7][:20]  # truncated
    values[12] = b"\x00\x00\x00\x01\x00" + values[12][5:]  # an unknown schema id
    values.append(good(99))  # a JSON record among Avro ones
    batch = stamped(values)
    got = outcome(DECODER.decode("access", batch))
    assert got == one_by_one("access", batch)
    assert [(o, k) for o, k, _, _ in got[1]] == [(7, "malformed"), (12, "unknown_schema")]
    assert len(got[0]) == 29
    whole = outcome(DECODER.decode("access", stamped(values[:7])))  # every record readable: one C loop
    assert [ev.event_id for _, ev in whole[0]] == [ev.event_id for ev in events[:7]] and whole[1] == []


def test_empty_oversized_and_header_records_in_a_batch_decode_as_they_do_one_by_one() -> None:
    """A batch holding records the fast loops cannot take is decoded record by record."""
    avro = encode_avro("access", access("e5", n=1)[0], DECODER.registry, wire=False)
    values = [good(0), None, good(1), b"", good(2), b"{" + b" " * 25_000 + b"}", good(3), avro, good(4)]
    batch = stamped(values, headers={7: [("schema.id", b"1")], 8: [("traceparent", b"00-ab")]})
    got = outcome(DECODER.decode("access", batch))
    assert got == one_by_one("access", batch)
    assert [o for o, _ in got[0]] == [0, 2, 4, 6, 7, 8]


@FUZZ
@given(
    st.lists(
        st.one_of(
            st.integers(0, 50).map(good),
            mutated("access").map(to_json),
            avro_bodies("access").filter(lambda b: b[1] is None).map(lambda b: b[0]),
            st.just(to_json(dict(VALID["access"]))),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_any_batch_decodes_as_its_records_one_by_one(values: list[bytes]) -> None:
    batch = stamped([v or b"{}" for v in values])
    assert outcome(DECODER.decode("access", batch)) == one_by_one("access", batch)


def test_an_org_learnt_from_reference_data_is_counted_by_its_id_from_then_on(policy, catalog) -> None:
    """Rollup labels are cached per value; an org counted as `other` before its entitlement was
    read is counted by its id after it."""
    e = Engine([], catalog, Pseudonymizer(b"e" * 32))
    first = [ev.model_copy(update={"actor_org": "S0199"}) for ev in access("e1", n=3)]
    e.process("access", "t", 0, fed("access", first))
    e.apply_reference("entitlements", refs("entitlements", [entitlement("e9", org="S0199")]))
    later = [ev.model_copy(update={"actor_org": "S0199"}) for ev in access("e2", n=2, start=60_000)]
    e.process("access", "t", 0, fed("access", later, offset=3))
    cells = {(r[3], r[6]): r[9] for r in e.rollup_rows()}
    assert cells == {(T0 // 1000, "other"): 3, (T0 // 1000 + 60, "S0199"): 2}


def test_rollups_count_each_record_under_its_labels(policy, catalog) -> None:
    """Counted from first principles, record by record: class of the field set, a known org or
    `other`, the outcome's and the action's names, the minute in seconds."""
    e = Engine([], catalog, Pseudonymizer(b"e" * 32), rollup_block=7)
    e.apply_reference("entitlements", refs("entitlements", [entitlement("e1", org="S0101")]))
    events = []
    for i, (fields, org, result, action) in enumerate(
        [
            (("account_balance",), "S0101", "success", "view"),
            (("customer_name",), "S0101", "denied", "export"),
            (("customer_name", "id_document_no"), None, "success", "print"),
            (("account_balance", "frobnicate"), "elsewhere", "success", "download"),
            (("customer_name", "biometric_template"), "HO", "denied", "query"),
        ]
        * 5
    ):
        (ev,) = access("e1", n=1, start=i * 17_000, fields=fields, outcome=result, action=action)
        events.append(ev.model_copy(update={"actor_org": org}))
    e.process("access", "t", 0, fed("access", events))
    known = e.known_orgs
    expected = Counter(
        (
            ev.ts // 60_000 * 60,
            "access",
            catalog.coverage("access", ev.fields)[0].value,
            ev.actor_org if ev.actor_org in known else "other",
            ev.outcome.value,
            ev.action.value,
        )
        for ev in events
    )
    got: Counter = Counter()
    for r in e.rollup_rows():
        if r[4] == "access":
            got[tuple(r[3:9])] += r[9]
    assert got == expected and len({c for _, _, c, _, _, _ in expected}) > 1
    assert len({a for *_, a in expected}) == 5


def test_a_batch_of_ids_gets_the_pseudonym_of_each_id(policy, catalog) -> None:
    """Known ids from the cache, new ones computed (and cached) once, a missing id left missing, a
    list changed in place and a plain attribute set (streams/_door.c): whatever the mix, each id
    gets its own pseudonym."""
    pz, alone = Pseudonymizer(b"p" * 32), Pseudonymizer(b"p" * 32)
    pz("C1")  # known
    records = [SimpleNamespace(ids=["C1", "C2", None, "C2"], one="C3"), SimpleNamespace(ids=[], one=None)]
    ids = records[0].ids
    _door.pseudonymize(records, "ids", pz.cache, pz)
    _door.pseudonymize(records, "one", pz.cache, pz)
    assert records[0].ids is ids and ids == [alone("C1"), alone("C2"), None, alone("C2")]
    assert records[0].one == alone("C3") and records[1].one is None and records[1].ids == []
    assert set(pz.cache) == {"C1", "C2", "C3"} and Pseudonymizer(b"q" * 32)("C1") != alone("C1")
    e = Engine([], catalog, pz)
    events = [*access("e1", customers=4), *access("e2", customers=6, per_event=3, first_customer=2)]
    batch = fed("access", events)
    e.process("access", "t", 0, batch)
    assert [ev.subject_ids for _, ev in batch] == [[alone(c) for c in ev.subject_ids] for ev in events]


def test_a_full_pseudonym_cache_keeps_the_latest_ids(monkeypatch) -> None:
    """Past `CACHE_IDS` ids the oldest go and new ones are still cached: a bank with more customers
    than the cache holds keeps its busy ones looked up in C, not hashed again on every read."""
    monkeypatch.setattr(Pseudonymizer, "CACHE_IDS", 80)
    pz, alone = Pseudonymizer(b"p" * 32), Pseudonymizer(b"p" * 32)
    for i in range(200):
        assert pz(f"C{i}") == alone(f"C{i}")
    assert len(pz.cache) <= 80 and "C199" in pz.cache and "C0" not in pz.cache
    assert all(pz.cache[c] == alone(c) for c in pz.cache)
