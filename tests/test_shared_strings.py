"""Repeating strings shared at decode (`_door.share`, `Decoder.decode`, schemas.models.REPEATING):
equal systems, purposes and field ids come out as one object, and nothing else about a record
changes; the pool stays within its bound whatever a producer sends."""

from __future__ import annotations

import copy
import typing
from types import SimpleNamespace
from typing import Any

import msgspec
import orjson
import pytest
from conftest import access
from hypothesis import given
from hypothesis import strategies as st
from native import PROPERTY, blocks_grown

import streams.codecs as codecs
from schemas.models import EVENT_MODELS, REPEATING
from schemas.structs import STRICT
from streams import _door
from streams.codecs import Decoder, RawRecord, SchemaRegistry, encode_avro


def ref_share(pairs: list, attrs: tuple, pool: dict, most: int, longest: int) -> None:
    """`_door.share` in Python."""

    def one(v: Any) -> Any:
        if type(v) is not str or len(v) > longest:
            return v
        if v in pool:
            return pool[v]
        if len(pool) < most:
            pool[v] = v
        return v

    for _, ev in pairs:
        for a in attrs:
            v = getattr(ev, a)
            if type(v) is list:
                for j in range(len(v)):
                    v[j] = one(v[j])
            elif (new := one(v)) is not v:
                setattr(ev, a, new)


class Sub(str):
    pass


Rec = msgspec.defstruct("Rec", [("a", Any), ("b", Any), ("n", int, 0)], gc=False)
# fresh str objects of few values (joined at run time: literals would be one object already)
FRESH = st.sampled_from(["sys", "crm", "目的", "x" * 9, "", "é"]).map(lambda s: "".join(list(s)))
VALUES = st.one_of(
    FRESH,
    st.text(max_size=12),
    st.none(),
    st.integers(),
    FRESH.map(Sub),
    st.lists(st.one_of(FRESH, st.text(max_size=3), st.integers(), st.none(), FRESH.map(Sub)), max_size=5),
)


@PROPERTY
@given(
    rows=st.lists(st.tuples(VALUES, VALUES), max_size=8),
    pool=st.dictionaries(FRESH, st.just(None), max_size=3),
    most=st.integers(0, 6),
    longest=st.integers(0, 10),
    struct=st.booleans(),
)
def test_share_is_the_python_loop(rows: list, pool: dict, most: int, longest: int, struct: bool) -> None:
    """Same values at the same places, the same objects chosen, the same pool, on msgspec Structs
    (written at their slots) and on any object (written by setattr)."""
    make = (lambda a, b: Rec(a=a, b=b)) if struct else (lambda a, b: SimpleNamespace(a=a, b=b, n=0))
    pool = {k: k for k in pool}
    pairs = [(None, make(a, b)) for a, b in rows]
    mine, theirs = copy.deepcopy(pairs), copy.deepcopy(pairs)  # str objects are not copied
    mine_pool, their_pool = dict(pool), dict(pool)
    _door.share(mine, ("a", "b", "n"), mine_pool, most, longest)
    ref_share(theirs, ("a", "b", "n"), their_pool, most, longest)
    assert list(mine_pool.items()) == list(their_pool.items())
    assert all(v is their_pool[k] for k, v in mine_pool.items())
    for (_, m), (_, t), (_, before) in zip(mine, theirs, pairs, strict=True):
        for attr in ("a", "b", "n"):
            got, want, was = getattr(m, attr), getattr(t, attr), getattr(before, attr)
            assert got == was and type(got) is type(was)
            # a str subclass is deep-copied into a new object each time: equal and of its type is all
            for x, y in zip(*((got, want) if type(got) is list else ([got], [want])), strict=True):
                assert x is y if type(y) is str else (x == y and type(x) is type(y))


def test_only_an_exact_str_is_pooled_and_the_pool_stays_within_its_bound() -> None:
    pool: dict[str, str] = {}
    pairs = [(None, Rec(a="".join(["s", str(i % 3)]), b=Sub("s0"))) for i in range(9)]
    _door.share(pairs, ("a", "b"), pool, 2, 5)
    assert list(pool) == ["s0", "s1"]  # the bound: s2 stays as decoded
    assert [ev.a is pool.get(ev.a) for _, ev in pairs] == [True, True, False] * 3
    assert all(type(ev.b) is Sub for _, ev in pairs)
    long = [(None, Rec(a="".join(["l"] * 6), b=None))]
    _door.share(long, ("a",), fresh := {}, 9, 5)
    assert fresh == {}  # past `longest`, not pooled


@pytest.mark.parametrize(
    "call",
    [
        lambda: _door.share([(None, Rec(a="s", b=1))], ("a",), {}, 9),
        lambda: _door.share(((None, Rec(a="s", b=1)),), ("a",), {}, 9, 9),
        lambda: _door.share([(None, Rec(a="s", b=1))], ("a",), [], 9, 9),
        lambda: _door.share([(None, Rec(a="s", b=1))], (1,), {}, 9, 9),
        lambda: _door.share([Rec(a="s", b=1)], ("a",), {}, 9, 9),
        lambda: _door.share([(None, Rec(a="s", b=1))], ("a",), {}, "9", 9),
        lambda: _door.share([(None, Rec(a="s", b=1))], ("a",), {}, 9, -1),
    ],
)
def test_odd_input_raises_a_type_or_value_error(call: Any) -> None:
    with pytest.raises((TypeError, ValueError)):
        call()


def test_a_missing_attribute_raises() -> None:
    with pytest.raises(AttributeError):
        _door.share([(None, SimpleNamespace(a="s"))], ("a", "nope"), {}, 9, 9)


def test_sharing_leaks_nothing() -> None:
    pool: dict[str, str] = {}

    def step() -> None:
        pairs = [(None, Rec(a="".join(["s", "1"]), b=["".join(["f", "1"]), 3]))]
        _door.share(pairs, ("a", "b"), pool, 99, 99)

    assert blocks_grown(step, 2000) < 50


# -- the decoder ---------------------------------------------------------------------------------
def _str_or_strs(tp: Any) -> bool:
    """str, list[str], or either or None."""
    args = (
        set(typing.get_args(tp)) - {type(None)}
        if typing.get_origin(tp) in (typing.Union, type(str | None))
        else {tp}
    )
    return args in ({str}, {list[str]})


def test_every_stream_names_its_repeating_fields_and_each_is_a_str_or_a_list_of_them() -> None:
    assert REPEATING.keys() == EVENT_MODELS.keys()
    for stream, attrs in REPEATING.items():
        fields = EVENT_MODELS[stream].model_fields
        assert all(_str_or_strs(fields[a].annotation) for a in attrs), stream


def _raws(events: list, offset: int = 0, avro: bool = False) -> list[RawRecord]:
    reg = SchemaRegistry()
    body = (lambda e: encode_avro("access", e, reg)) if avro else (lambda e: e.model_dump_json().encode())
    return [RawRecord("pfi.access", 0, offset + i, body(e), None, None, e.ts) for i, e in enumerate(events)]


@pytest.mark.parametrize("avro", [False, True])
def test_equal_values_are_one_object_across_records_and_batches(avro: bool) -> None:
    evs = access(n=6, fields=("account_balance", "mobile"), purpose="collection")
    dec = Decoder(clock=lambda: 2e9)
    first = dec.decode("access", _raws(evs[:3], avro=avro)).ok
    # the one-by-one path too: a record with a field the schema lacks
    odd = orjson.loads(evs[3].model_dump_json()) | {"extra": 1}
    second = dec.decode(
        "access", [*_raws(evs[4:], 4, avro), RawRecord("pfi.access", 0, 9, orjson.dumps(odd))]
    )
    got = [ev for _, ev in first + second.ok]
    assert len(got) == 6
    for attr in ("system", "purpose", "actor_org"):
        assert len({id(getattr(ev, attr)) for ev in got}) == 1, attr
    assert len({id(f) for ev in got for f in ev.fields}) == 2
    assert len({id(ev.event_id) for ev in got}) == 6  # not a repeating field: as decoded


SYSTEMS = st.sampled_from(["core", "crm", "目的", "c" * 130, " "])


@PROPERTY
@given(
    rows=st.lists(
        st.fixed_dictionaries(
            {"system": SYSTEMS, "purpose": st.one_of(st.none(), SYSTEMS, st.text(max_size=4))},
            optional={"actor_org": st.one_of(st.none(), SYSTEMS), "fields": st.lists(SYSTEMS, max_size=4)},
        ),
        min_size=1,
        max_size=6,
    ),
    batches=st.integers(1, 3),
)
def test_every_record_equals_what_it_decodes_to_without_the_pool(rows: list, batches: int) -> None:
    bodies = [
        orjson.dumps(
            {"event_id": f"e{i}", "ts": 1_767_225_600_000 + i, "actor_id": "a", "action": "view", **r}
        )
        for i, r in enumerate(rows)
    ]
    dec = Decoder(clock=lambda: 2e9)
    got = []
    for _ in range(batches):
        raws = [RawRecord("pfi.access", 0, i, v) for i, v in enumerate(bodies)]
        got += [ev for _, ev in dec.decode("access", raws, check_time=False).ok]
    plain = [msgspec.json.decode(v, type=STRICT["access"]) for v in bodies] * batches
    assert got == plain
    assert all(len(v) <= codecs.POOL_LONGEST for v in dec.pool)
    shared = {id(v) for ev in got for v in (ev.system, *ev.fields) if len(v) <= codecs.POOL_LONGEST}
    assert len(shared) == len(
        {v for ev in got for v in (ev.system, *ev.fields) if len(v) <= codecs.POOL_LONGEST}
    )


def test_a_producer_sending_a_new_value_each_time_cannot_grow_the_pool(monkeypatch) -> None:
    monkeypatch.setattr(codecs, "POOL_MOST", 5)
    dec = Decoder(clock=lambda: 2e9)
    for batch in range(3):
        evs = [e.model_copy(update={"system": f"s{batch}-{i}"}) for i, e in enumerate(access(n=4))]
        ok = dec.decode("access", _raws(evs, batch * 4)).ok
        assert [ev.system for _, ev in ok] == [e.system for e in evs]
    assert len(dec.pool) == 5


def test_values_of_one_length_past_the_calls_memo_each_keep_their_own() -> None:
    """More values of one length than the C memo of a call has places: values that share a place
    are told apart by their bytes, never taken for one another."""
    values = [f"v{i:05d}" for i in range(5000)]
    pool: dict[str, str] = {}
    pairs = [
        (None, Rec(a="".join(list(v)), b=["".join(list(w)) for w in values[i::997]]))
        for i, v in enumerate(values)
    ]
    pairs += [(None, Rec(a="".join(list(v)), b=None)) for v in values]
    _door.share(pairs, ("a", "b"), pool, 99_999, 99)
    assert [ev.a for _, ev in pairs] == values * 2
    assert all(ev.a is pool[ev.a] for _, ev in pairs)
    assert all(ev.b == values[i::997] for i, (_, ev) in enumerate(pairs[:5000]))
