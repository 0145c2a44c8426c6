"""The engine's door in C (streams/_door.c) against its contract: each function gives what a plain
Python loop gives, raises a clear Python exception on odd input (never a crash, never a value with
an error set), survives callbacks that change the lists it walks (a Labels' __missing__ runs
Python mid-loop), and leaks neither objects nor references over many calls."""

from __future__ import annotations

import copy
import gc
import sys
import weakref
from collections import Counter
from itertools import chain
from operator import attrgetter, ne
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import msgspec
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from native import PROPERTY, ROOT, blocks_grown, leaks, no_crash

from streams import _door
from streams.engine import Labels

I64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)


def test_the_module_is_the_worktrees() -> None:
    assert Path(_door.__file__).resolve().is_relative_to(ROOT)


# -- plain-Python references ---------------------------------------------------------------------
def ref_pseudonymize(records: list, attr: str, cache: dict, compute: Any, blank: Any = None) -> list | None:
    named = []
    for r in records:
        value = getattr(r, attr)
        if isinstance(value, list):
            j = 0
            while j < len(value):
                if value[j] is not None:
                    value[j] = cache[value[j]] if value[j] in cache else compute(value[j])
                j += 1
            if len(value) > 1 or (value and value[0] == blank):
                named.append(r)
        elif value is not None:
            setattr(r, attr, cache[value] if value in cache else compute(value))
            if getattr(r, attr) == blank:
                named.append(r)
    return None if blank is None else named


def ref_count_rollup(
    events,
    stream,
    fields_attr,
    org_attr,
    outcome_attr,
    action_attr,
    coverage,
    orgs,
    outcomes,
    counted,
    extra=None,
) -> list:
    gaps = []
    for ev in events:
        minute = ev.ts // 60_000 * 60
        cls, unknown = coverage[tuple(getattr(ev, fields_attr))]
        org = "" if org_attr is None else orgs[getattr(ev, org_attr)]
        outcome = "" if outcome_attr is None else outcomes[getattr(ev, outcome_attr)]
        action = "" if action_attr is None else outcomes[getattr(ev, action_attr)]
        cell = (minute, stream, cls, org, outcome, action)
        counted[cell] = counted[cell] + 1 if cell in counted else 1
        if extra is not None:
            attrs, labels, bucket = extra
            *head, items = (getattr(ev, a) for a in attrs)
            for item in dict.fromkeys(items):  # each distinct item once, in its order
                full = (ev.ts // (bucket * 1000) * bucket, *labels[(*head, item)])
                counted[full] = counted[full] + 1 if full in counted else 1
        if unknown:
            gaps.append((minute, unknown))
    return gaps


def ref_decode_json(raws: list, decode: Any, max_bytes: int) -> tuple[list, int]:
    ok = []
    for i, raw in enumerate(raws):
        v = raw.value
        if raw.headers or not isinstance(v, bytes) or not v or len(v) > max_bytes or v[0] == 0:
            return ok, i
        try:
            ok.append((raw, decode(v)))
        except Exception:
            return ok, i
    return ok, len(raws)


LIMIT = 2**62  # past it, doubtful_times doubts rather than risk an overflow


def ref_doubtful_times(pairs: list, low: Any, high: Any, ahead: Any, behind: Any, reference: bool) -> list:
    def exact(v: Any) -> bool:
        return isinstance(v, int) and -(2**63) <= v < 2**63

    bounded = all(map(exact, (low, high, ahead, behind))) and low > -LIMIT and high < LIMIT
    out = []
    for pair in pairs:
        raw, ev = pair
        ts = ev.ts
        sure = bounded and exact(ts) and low <= ts < high
        if sure and not reference:
            stamp = raw.timestamp
            sure = exact(stamp) and 0 < stamp < LIMIT and ts - stamp <= ahead and stamp - ts <= behind
        if not sure:
            out.append(pair)
    return out


# -- equal to the references on random input -------------------------------------------------------
IDS = st.one_of(st.none(), st.sampled_from(["C1", "C2", "C3", "", "é"]), st.text(max_size=4), st.integers())


@PROPERTY
@given(
    rows=st.lists(st.tuples(st.lists(IDS, max_size=6), IDS), max_size=8),
    cached=st.dictionaries(st.sampled_from(["C1", "C2", "", 7]), st.text(max_size=3), max_size=4),
    caching=st.booleans(),
    blank=st.sampled_from([None, "p:''", "p1"]),
)
def test_pseudonymize_is_the_python_loop(rows: list, cached: dict, caching: bool, blank: str | None) -> None:
    """And with a blank id's pseudonym, the records it hands back to the engine's `_named_subjects`
    are those the Python loop picks: a list of more than one, or of the blank one alone; the blank."""

    def run(fn: Any) -> tuple[list, dict, list, list]:
        records = [SimpleNamespace(ids=list(ids), one=one) for ids, one in rows]
        cache, calls = dict(cached), []

        def compute(i: Any) -> str:
            calls.append(i)
            p = f"p:{i!r}"
            if caching:
                cache[i] = p
            return p

        named = [fn(records, "ids", cache, compute, blank), fn(records, "one", cache, compute, blank)]
        where = {id(r): k for k, r in enumerate(records)}
        found = [None if n is None else [where[id(r)] for r in n] for n in named]
        return [(r.ids, r.one) for r in records], cache, calls, found

    assert run(_door.pseudonymize) == run(ref_pseudonymize)


class Ev:
    def __init__(
        self,
        ts: Any,
        fields: Any,
        org: Any,
        outcome: Any,
        sdk: Any = "s",
        hosts: Any = (),
        action: Any = "view",
    ):
        self.ts, self.fields, self.org, self.outcome = ts, fields, org, outcome
        self.sdk, self.hosts, self.event_id, self.action = sdk, list(hosts), f"e{ts}", action


def labels_of(limit: int) -> tuple[Labels, Labels, Labels, Labels]:
    """Fresh label caches like the engine's (RollupLabels, _sdk_cells): small, so they clear mid-batch."""
    coverage = Labels(
        lambda fields: ("known" if all(f < "m" for f in fields) else "partial", fields[1:]), limit
    )
    orgs = Labels(lambda org: org if org in ("o1", "o2") else "other", limit)
    outcomes = Labels(lambda outcome: f"out-{outcome}", limit)
    extra = Labels(lambda key: (key[1], key[0]), limit)
    return coverage, orgs, outcomes, extra


# counts already in `counted`: small ones, and at the C long's end and past it
COUNTS = st.one_of(
    st.integers(0, 300), st.sampled_from([2**31, sys.maxsize - 1, sys.maxsize, 2**63, 2**64 + 5])
)
EVENTS = st.lists(
    st.builds(
        Ev,
        ts=st.one_of(I64, st.integers(min_value=-(10**6), max_value=10**6)),
        fields=st.lists(st.sampled_from("abmxz"), max_size=4),
        org=st.sampled_from(["o1", "o2", "o3", 4]),
        outcome=st.sampled_from(["ok", "denied", 0]),
        sdk=st.sampled_from(["s1", "s2"]),
        hosts=st.lists(st.sampled_from(["h1", "h2", "h3"]), max_size=3),
        action=st.sampled_from(["view", "export", 0]),
    ),
    max_size=12,
)


@PROPERTY
@given(
    events=EVENTS,
    limit=st.integers(min_value=1, max_value=4),
    org_attr=st.sampled_from(["org", None]),
    action_attr=st.sampled_from(["action", None]),
    with_extra=st.booleans(),
    bucket=st.sampled_from([60, 120, 3600, 86_400]),
    data=st.data(),
)
def test_count_rollup_is_the_python_loop(
    events: list,
    limit: int,
    org_attr: str | None,
    action_attr: str | None,
    with_extra: bool,
    bucket: int,
    data: st.DataObject,
) -> None:
    def run(fn: Any, counted: dict) -> tuple[list, dict]:
        coverage, orgs, outcomes, extra = labels_of(limit)
        span = copy.deepcopy(events)
        ex = (("sdk", "hosts"), extra, bucket) if with_extra else None
        gaps = fn(
            span, "access", "fields", org_attr, "outcome", action_attr, coverage, orgs, outcomes, counted, ex
        )
        return gaps, dict(counted)

    # counts already there, some past a C long: counted[cell] += 1 whatever the count
    cells = sorted(run(ref_count_rollup, {})[1], key=repr)
    seeded = {c: data.draw(COUNTS) for c in cells if data.draw(st.booleans())}
    assert run(_door.count_rollup, Counter(seeded)) == run(ref_count_rollup, Counter(seeded))


def test_count_rollup_reads_labels_as_their_class_does() -> None:
    """count_rollup looks a label up in the dict itself where the labels' class keeps dict's own []
    (the engine's Labels, whose __missing__ still makes a new value's label), and through the class's
    [] where it has its own: each answers as `labels[value]` in Python."""

    class Spelled(dict):  # its own []: every label said its way
        def __getitem__(self, key: Any) -> Any:
            found = super().__getitem__(key)
            return (f"<{found[0]}>", found[1]) if isinstance(key, tuple) else f"<{found}>"

    class Missing(dict):  # dict's own [], and a label made for a value not there
        def __missing__(self, key: Any) -> Any:
            return ("new", ()) if isinstance(key, tuple) else f"new-{key}"

    events = [Ev(60_000 * i, ["a", "b"][: i % 3], f"o{i % 3}", ["ok", "no"][i % 2]) for i in range(9)]
    coverage = {(): ("c0", ()), ("a",): ("c1", ()), ("a", "b"): ("c2", ("b",))}
    orgs, outcomes = {"o0": "O0", "o1": "O1", "o2": "O2"}, {"ok": "OK", "no": "NO", "view": "V"}
    for kind in (dict, Spelled, Missing):
        some = 1 if kind is Missing else 3  # Missing makes the rest
        labels = [kind(dict(list(d.items())[:some])) for d in (coverage, orgs, outcomes)]
        counted, expected = Counter(), Counter()
        args = ("access", "fields", "org", "outcome", "action", *labels)
        gaps = _door.count_rollup(copy.deepcopy(events), *args, counted)
        assert gaps == ref_count_rollup(copy.deepcopy(events), *args, expected)
        assert counted == expected and sum(counted.values()) == len(events), kind


class Raw(msgspec.Struct):  # as streams.codecs.RawRecord: the attributes the door reads
    value: Any
    headers: Any = None
    timestamp: Any = 0


class Point(msgspec.Struct):
    ts: int
    event_id: str = "e"


POINT = msgspec.json.Decoder(Point)
VALUES = st.one_of(
    st.sampled_from(
        [b'{"ts": 1}', b'{"ts": 2, "event_id": "x"}', b'{"ts": "1"}', b"{", b"", b"\x00\x02ab", b"[]"]
    ),
    st.none(),
    st.just("a str"),
    st.binary(max_size=12),
)


@PROPERTY
@given(
    rows=st.lists(st.tuples(VALUES, st.sampled_from([None, [], [("k", b"v")]])), max_size=10),
    max_bytes=st.sampled_from([0, 8, 10, 1_000_000]),
)
def test_decode_json_is_the_python_loop(rows: list, max_bytes: int) -> None:
    raws = [Raw(v, h) for v, h in rows]
    got, stop = _door.decode_json(raws, POINT.decode, max_bytes)
    want, want_stop = ref_decode_json(raws, POINT.decode, max_bytes)
    assert (stop, [(r, e) for r, e in got]) == (want_stop, want)
    assert all(type(pair) is tuple and pair[0] is raw for pair, raw in zip(got, raws, strict=False))


def _doubtful_as_python(rows: list, args: tuple) -> None:
    pairs = [(Raw(b"", None, stamp), SimpleNamespace(ts=ts)) for ts, stamp in rows]
    got, want = _door.doubtful_times(pairs, *args), ref_doubtful_times(pairs, *args)
    assert list(map(id, got)) == list(map(id, want))


@PROPERTY
@given(
    rows=st.lists(st.tuples(st.integers(-5, 12), st.integers(-5, 12)), max_size=10),
    bounds=st.tuples(st.integers(-3, 3), st.integers(0, 12), st.integers(-2, 6), st.integers(-2, 6)),
    reference=st.booleans(),
)
@example(rows=[(0, 0)], bounds=(-3, 10, 5, 5), reference=False)  # no Kafka timestamp: doubtful
def test_doubtful_times_is_the_python_loop(rows: list, bounds: tuple, reference: bool) -> None:
    """Small numbers, so that every edge of the bounds is met often."""
    _doubtful_as_python(rows, (*bounds, reference))


ODD_TIME = st.one_of(
    I64,
    st.integers(-5, 5),
    st.sampled_from([2**62 - 1, 2**62, 2**63 - 1, 2**63, -(2**63) - 1, 10**30]),
    st.just(None),
    st.just(1.5),
)


@PROPERTY
@given(rows=st.lists(st.tuples(ODD_TIME, ODD_TIME), max_size=10), bounds=st.tuples(*[ODD_TIME] * 4))
def test_doubtful_times_doubts_what_it_cannot_compare(rows: list, bounds: tuple) -> None:
    """Past 64 bits, or past 2**62 where a difference could overflow, or no int at all: doubtful,
    for the caller to judge in Python."""
    for reference in (False, True):
        _doubtful_as_python(rows, (*bounds, reference))


def test_the_decoder_keeps_record_order_around_a_bad_record() -> None:
    """From the first record the C loop leaves to Python, records are decoded one by one in order:
    a dead letter in the middle of a batch moves nothing."""
    from streams.codecs import Decoder, RawRecord  # noqa: PLC0415 - the door's caller

    def raw(offset: int, value: bytes | None, headers: Any = None) -> RawRecord:
        return RawRecord("pfi.access", 0, offset, value, None, headers, 1_767_225_600_000)

    good = (
        b'{"event_id":"a%d","ts":1767225600000,"actor_id":"E1","actor_org":"S0101","system":"crm",'
        b'"action":"view","subject_ids":["C1"],"fields":["customer_name"],"outcome":"success"}'
    )
    batch = [
        raw(0, good % 0),
        raw(1, b"{not json"),
        raw(2, good % 2),
        raw(3, None),
        raw(4, good % 4, [("trace", b"x")]),
        raw(5, good % 5),
    ]
    out = Decoder().decode("access", batch)
    assert [r.offset for r, _ in out.ok] == [0, 2, 4, 5]
    assert [ev.event_id for _, ev in out.ok] == ["a0", "a2", "a4", "a5"]
    assert [(d.raw.offset, d.kind) for d in out.dead] == [(1, "malformed"), (3, "empty")]


def test_minutes_floor_like_python_at_the_int64_ends() -> None:
    for ts in (-(2**63), -60_001, -60_000, -1, 0, 59_999, 60_000, 2**63 - 1):
        counted: dict = {}
        _door.count_rollup(
            [Ev(ts, [], "o1", "ok")], "s", "fields", None, None, None, {(): ("c", ())}, {}, {}, counted
        )
        assert list(counted) == [(ts // 60_000 * 60, "s", "c", "", "", "")]


def test_a_count_past_a_c_long_goes_on_counting() -> None:
    """n + 1 on a C long at its maximum is undefined behaviour (in practice a negative count)."""
    cell = (0, "s", "c", "", "", "")
    for before, after in ((sys.maxsize, sys.maxsize + 1), (2**64, 2**64 + 1), (True, 2), (1.5, 2.5)):
        counted = {cell: before}
        _door.count_rollup(
            [Ev(0, [], "o", "ok")], "s", "fields", None, None, None, {(): ("c", ())}, {}, {}, counted
        )
        assert counted == {cell: after} and type(counted[cell]) is type(after)


def test_msgspec_structs_as_the_engine_reads_them() -> None:
    class Access(msgspec.Struct):
        ts: int
        fields: list[str]
        subject_ids: list[str | None]
        subject: str | None
        event_id: str

    class Frozen(msgspec.Struct, frozen=True):
        subject: str

    events = [Access(61_000, ["a"], ["C1", None], "C2", "e1"), Access(1, [], [], None, "e1")]
    _door.pseudonymize(events, "subject_ids", {"C1": "p1"}, lambda i: "p-" + i)
    _door.pseudonymize(events, "subject", {}, lambda i: "p-" + i)
    assert [(e.subject_ids, e.subject) for e in events] == [(["p1", None], "p-C2"), ([], None)]
    with pytest.raises(AttributeError):
        _door.pseudonymize([Frozen("C1")], "subject", {}, lambda i: "p-" + i)


@PROPERTY
@given(
    values=st.lists(
        st.one_of(st.none(), st.sampled_from(["a", "b", "", "é"]), st.lists(st.sampled_from("abc")))
    )
)
def test_distinct_is_the_set_python_makes(values: list) -> None:
    records = [SimpleNamespace(v=v) for v in values]
    hashable = [v for v in values if not isinstance(v, list)]
    if len(hashable) == len(values):
        assert _door.distinct(records, "v") == set(map(attrgetter("v"), records))
    else:
        with pytest.raises(TypeError):
            _door.distinct(records, "v")
    if all(isinstance(v, list | str) for v in values):
        assert _door.distinct(records, "v", True) == set(chain.from_iterable(map(attrgetter("v"), records)))
    else:
        with pytest.raises(TypeError):
            _door.distinct(records, "v", True)


@PROPERTY
@given(
    pairs=st.lists(
        st.tuples(
            st.one_of(st.none(), st.binary(max_size=4), st.sampled_from([b"E1", "é".encode()])),
            st.one_of(st.text(max_size=3), st.sampled_from(["E1", "é", "\ud800"])),
        ),
        max_size=8,
    )
)
def test_misrouted_counts_as_python_compares(pairs: list) -> None:
    """`_door.misrouted` is `Monitor._check_keys`'s Python count: a key unequal to the value in UTF-8,
    a missing one counted, a value UTF-8 cannot hold (a lone surrogate) raising as str.encode does."""
    decoded = [(SimpleNamespace(key=k), SimpleNamespace(actor_id=v)) for k, v in pairs]
    try:
        expected = sum(map(ne, (k for k, _ in pairs), map(str.encode, (v for _, v in pairs))))
    except UnicodeEncodeError:
        with pytest.raises(UnicodeEncodeError):
            _door.misrouted(decoded, "actor_id")
    else:
        assert _door.misrouted(decoded, "actor_id") == expected
    with pytest.raises(TypeError):
        _door.misrouted([(SimpleNamespace(key=b"1"), SimpleNamespace(actor_id=1))], "actor_id")


@PROPERTY
@given(
    keys=st.lists(
        st.one_of(
            st.text(alphabet=" \t\n\x1c\x85\xa0\u2028\u3000ax客", max_size=3), st.none(), st.integers()
        ),
        max_size=6,
    )
)
def test_any_blank_is_the_key_check_of_python(keys: list) -> None:
    """`_door.any_blank` is `Decoder._check_keys`'s test of a batch: a key that str.strip() leaves
    empty (whitespace of any script), and a key that is no str (str.strip raises on it, in the
    caller's own loop that then runs), say the batch needs that loop; no other does."""
    decoded = [(None, SimpleNamespace(actor_id=k)) for k in keys]
    expected = not all(isinstance(k, str) and k.strip() for k in keys)
    assert _door.any_blank(decoded, "actor_id") is expected


@PROPERTY
@given(times=st.lists(st.one_of(I64, st.integers(), st.booleans(), st.floats(allow_nan=False)), max_size=6))
def test_newest_is_max_of_the_times(times: list) -> None:
    """`_door.newest` is max() of the events' `ts` where each is an int of 64 bits, and leaves any
    other time to Python's max (the engine's `_newest`), which then gives the same."""
    from streams.engine import _newest

    events = [SimpleNamespace(ts=t) for t in times]
    exact = bool(times) and all(type(t) is int and -(2**63) <= t < 2**63 for t in times)
    assert _door.newest(events) == (max(times) if exact else None)
    if times:
        assert _newest(events) == max(times) and type(_newest(events)) is type(max(times))


@PROPERTY
@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from(["a", "b", None, 1]), st.lists(st.sampled_from(["x", "y", "z"]), max_size=3)
        ),
        max_size=8,
    )
)
def test_distinct_each_is_distinct_of_each_column(rows: list) -> None:
    """`_door.distinct_each` reads every column asked in one pass and gives what `_door.distinct`
    gives for each alone; a column asked twice comes twice."""
    records = [SimpleNamespace(one=a, many=b) for a, b in rows]
    columns = (("one", False), ("many", True), ("one", False))
    assert _door.distinct_each(records, columns) == [_door.distinct(records, a, i) for a, i in columns]
    with pytest.raises(TypeError):
        _door.distinct_each(records, ("one",))


class Slotted:
    __slots__ = ("ts", "fields", "org", "outcome", "name")

    def __init__(self, ts: int, fields: list, org: str, outcome: str, name: str):
        self.ts, self.fields, self.org, self.outcome, self.name = ts, fields, org, outcome, name


def test_an_attribute_is_read_as_getattr_reads_it_whoever_holds_it() -> None:
    """The C loops read a Struct's field at its slot (streams/_slots.h), remembered per name while
    the record's type and its version stay: records of several types in one batch, the same name at
    another offset, a slot left empty, a subclass's property over a field, a plain object, and a type
    changed between two of its records by Python the loop runs, are each read as getattr reads them."""

    class Rec(msgspec.Struct):
        ts: int
        fields: list[str]
        org: str
        outcome: str
        name: str

    class Wider(msgspec.Struct):  # the same names at other offsets
        pad: str
        name: str
        outcome: str
        org: str
        fields: list[str]
        ts: int

    class Shown(Rec):
        @property  # type: ignore[misc]
        def name(self) -> str:
            return "shown"

    empty = Slotted(1, ["b"], "o2", "denied", "e")
    del empty.name
    records = [
        Rec(60_000, ["a"], "o1", "ok", "r1"),
        Wider("p", "w1", "denied", "o2", ["b"], 120_000),
        Rec(61_000, ["a"], "o1", "ok", "r2"),
        Slotted(0, ["a", "b"], "o3", "ok", "s1"),
        Shown(1, [], "o1", "ok", "hidden"),
        SimpleNamespace(ts=2, fields=["a"], org="o2", outcome="ok", name="n1"),
        Rec(3, ["b"], "o1", "denied", "r3"),
    ]
    text = _door.names_scan(records, ("name", "org"), ())[0]
    assert text == "\x1f".join(f"{r.name}\x1f{r.org}\x1f\x1e" for r in records)
    with pytest.raises(AttributeError):
        _door.names_scan([records[0], empty], ("org", "name"), ())
    coverage = {("a",): ("c1", ()), ("b",): ("c2", ()), ("a", "b"): ("c3", ()), (): ("c0", ())}
    orgs, outcomes = {o: o.upper() for o in ("o1", "o2", "o3")}, {"ok": "OK", "denied": "NO"}
    counted, expected = {}, {}
    assert (
        _door.count_rollup(records, "s", "fields", "org", "outcome", None, coverage, orgs, outcomes, counted)
        == []
    )
    ref_count_rollup(records, "s", "fields", "org", "outcome", None, coverage, orgs, outcomes, expected)
    assert counted == expected and sum(counted.values()) == len(records)

    class Changing:
        __slots__ = ("subject",)

        def __init__(self, subject: str):
            self.subject = subject

    written: list[str] = []

    def compute(i: str) -> str:
        # Python run between two records of one type gives the field a property: the next is read through it
        Changing.subject = property(lambda self: "C9", lambda self, v: written.append(v))  # type: ignore[assignment]
        return "p-" + i

    _door.pseudonymize([Changing("C1"), Changing("C2")], "subject", {"C9": "p9"}, compute)
    assert written == ["p-C1", "p9"]


def test_a_field_another_type_borrowed_is_refused_as_getattr_refuses_it() -> None:
    """A slot's descriptor set on a type whose records have no such slot (`Borrower.subject =
    Owner.subject`) is refused by getattr (the descriptor checks the record's type): the C loops
    refuse it too, where they read what lay at the slot's offset (here the record's weak references)."""

    class Owner:
        __slots__ = ("subject", "__weakref__")

    class Borrower:
        pass

    Borrower.subject = Owner.__dict__["subject"]  # type: ignore[attr-defined]
    record = Borrower()
    alive = weakref.ref(record)  # something at the offset to read
    with pytest.raises(TypeError):
        record.subject  # type: ignore[attr-defined]  # noqa: B018
    with pytest.raises(TypeError):
        _door.distinct([record], "subject")
    with pytest.raises(TypeError):
        _door.names_scan([record], ("subject",), ())
    with pytest.raises(TypeError):
        _door.pseudonymize([record], "subject", {}, str)
    assert alive() is record


# -- odd input: a clear exception, never a crash nor a SystemError ------------------------------------
class Boom(Exception):
    pass


class Unbool:
    def __bool__(self) -> bool:
        raise Boom


def _raise(*_: Any) -> Any:
    raise Boom


def _interrupt(*_: Any) -> Any:
    raise KeyboardInterrupt


def test_a_record_decode_refuses_is_left_to_the_caller() -> None:
    raws = [Raw(b'{"ts": 1}'), Raw(b"{}"), Raw(b'{"ts": 2}')]
    assert _door.decode_json(raws, _raise, 100) == ([], 0)
    ok, stop = _door.decode_json(raws, POINT.decode, 100)  # {} lacks ts: msgspec refuses it
    assert ([ev.ts for _, ev in ok], stop) == ([1], 1)


class NoSet:
    @property
    def x(self) -> str:
        return "C1"


def _rollup(events: Any = None, **kw: Any) -> Any:
    args = dict(
        stream="s",
        fields_attr="fields",
        org_attr="org",
        outcome_attr="outcome",
        action_attr="action",
        coverage={("a",): ("c", ())},
        orgs={"o": "o"},
        outcomes={"ok": "ok", "view": "view"},
        counted={},
    )
    args.update(kw)
    extra = args.pop("extra", None)
    events = [Ev(0, ["a"], "o", "ok")] if events is None else events
    given = (events, *args.values(), *([] if extra is None else [extra]))
    return lambda: _door.count_rollup(*copy.deepcopy(given))


def _pz(records: Any, attr: Any = "x", cache: Any = None, compute: Any = str.upper) -> Any:
    given = (records, attr, {} if cache is None else cache, compute)
    return lambda: _door.pseudonymize(*copy.deepcopy(given))


def _dj(raws: Any, max_bytes: Any = 100) -> Any:
    return lambda: _door.decode_json(*copy.deepcopy((raws, POINT.decode, max_bytes)))


def _dt(pairs: Any, reference: Any = False) -> Any:
    return lambda: _door.doubtful_times(*copy.deepcopy((pairs, 0, 10, 1, 1, reference)))


def _ns(**kw: Any) -> SimpleNamespace:
    return SimpleNamespace(**kw)


def _ev(**kw: Any) -> Ev:
    ev = Ev(0, ["a"], "o", "ok")
    for k, v in kw.items():
        if v is _MISSING:
            delattr(ev, k)
        else:
            setattr(ev, k, v)
    return ev


_MISSING = object()
# each call on fresh copies: a reference leaked on any path keeps them, and shows in the blocks
ODD: dict[str, tuple[Any, type[BaseException]]] = {
    # pseudonymize
    "pz-no-args": (lambda: _door.pseudonymize(), TypeError),
    "pz-records-tuple": (_pz((_ns(x="C1"),)), TypeError),
    "pz-attr-bytes": (_pz([_ns(x="C1")], attr=b"x"), TypeError),
    "pz-cache-list": (lambda: _door.pseudonymize([_ns(x="C1")], "x", [], str), TypeError),
    "pz-no-attr": (_pz([_ns(y="C1")]), AttributeError),
    "pz-record-none": (_pz([None]), AttributeError),
    "pz-id-unhashable": (_pz([_ns(x={"a": 1})]), TypeError),
    "pz-id-in-list-unhashable": (_pz([_ns(x=["C1", ["C2"]])]), TypeError),
    "pz-id-int": (_pz([_ns(x=5)]), TypeError),  # str.upper(5)
    "pz-compute-raises": (_pz([_ns(x=["C1"])], compute=_raise), Boom),
    "pz-compute-not-callable": (_pz([_ns(x="C1")], compute=None), TypeError),
    "pz-read-only": (_pz([NoSet()]), AttributeError),
    # count_rollup
    "cr-no-args": (lambda: _door.count_rollup(), TypeError),
    "cr-events-tuple": (_rollup(events=(Ev(0, ["a"], "o", "ok"),)), TypeError),
    "cr-counted-list": (_rollup(counted=[]), TypeError),
    "cr-extra-shape": (_rollup(extra=("sdk",)), TypeError),
    "cr-extra-attrs-list": (_rollup(extra=(["sdk"], {}, 60)), TypeError),
    "cr-no-ts": (_rollup([_ev(ts=_MISSING)]), AttributeError),
    "cr-ts-float": (_rollup([_ev(ts=1.5)]), TypeError),
    "cr-ts-str": (_rollup([_ev(ts="0")]), TypeError),
    "cr-ts-none": (_rollup([_ev(ts=None)]), TypeError),
    "cr-ts-huge": (_rollup([_ev(ts=2**63)]), OverflowError),
    "cr-fields-none": (_rollup([_ev(fields=None)]), TypeError),
    "cr-fields-attr-int": (_rollup(fields_attr=3), TypeError),
    "cr-field-unhashable": (_rollup([_ev(fields=[["a"]])]), TypeError),
    "cr-coverage-missing": (_rollup([_ev(fields=["zz"])]), KeyError),
    "cr-coverage-shape": (_rollup(coverage={("a",): ("c",)}), TypeError),
    "cr-coverage-list": (_rollup(coverage={("a",): ["c", ()]}), TypeError),
    "cr-coverage-raises": (_rollup(coverage=Labels(_raise)), Boom),
    "cr-org-unhashable": (_rollup([_ev(org=["o"])]), TypeError),
    "cr-org-raises": (_rollup(orgs=Labels(_raise)), Boom),
    "cr-outcome-missing": (_rollup([_ev(outcome="no")]), KeyError),
    "cr-no-org-attr": (_rollup([_ev(org=_MISSING)]), AttributeError),
    "cr-action-missing": (_rollup([_ev(action="no")]), KeyError),
    "cr-no-action-attr": (_rollup([_ev(action=_MISSING)]), AttributeError),
    "cr-action-unhashable": (_rollup([_ev(action=["view"])]), TypeError),
    "cr-cell-unhashable": (_rollup(orgs={"o": ["o"]}), TypeError),
    "cr-unknown-bool-raises": (_rollup(coverage={("a",): ("c", Unbool())}), Boom),
    "cr-extra-no-attrs": (_rollup(extra=((), {}, 60)), TypeError),
    "cr-extra-no-attr": (_rollup(extra=(("nope",), {}, 60)), AttributeError),
    "cr-extra-no-head-attr": (_rollup(extra=(("nope", "fields"), {}, 60)), AttributeError),
    "cr-extra-attr-int": (_rollup(extra=((1,), {}, 60)), TypeError),
    "cr-extra-items-str": (_rollup(extra=(("sdk",), {}, 60)), TypeError),
    "cr-extra-missing": (_rollup(extra=(("sdk", "fields"), {}, 60)), KeyError),
    "cr-extra-not-tuple": (_rollup(extra=(("sdk", "fields"), {("s", "a"): ["x"]}, 60)), TypeError),
    "cr-extra-cell-unhashable": (_rollup(extra=(("sdk", "fields"), {("s", "a"): (["x"],)}, 60)), TypeError),
    "cr-extra-item-unhashable": (_rollup([_ev(hosts=[["h"]])], extra=(("hosts",), {}, 60)), TypeError),
    "cr-extra-head-unhashable": (
        _rollup([_ev(hosts=[["h"]])], extra=(("hosts", "fields"), {}, 60)),
        TypeError,
    ),
    "cr-extra-raises": (_rollup(extra=(("sdk", "fields"), Labels(_raise), 60)), Boom),
    "cr-extra-two": (_rollup(extra=(("sdk", "fields"), {})), TypeError),
    "cr-extra-bucket-str": (_rollup(extra=(("sdk", "fields"), {}, "60")), TypeError),
    "cr-extra-bucket-part-minute": (_rollup(extra=(("sdk", "fields"), {}, 90)), ValueError),
    "cr-extra-bucket-zero": (_rollup(extra=(("sdk", "fields"), {}, 0)), ValueError),
    "cr-extra-bucket-negative": (_rollup(extra=(("sdk", "fields"), {}, -3600)), ValueError),
    # decode_json
    "dj-no-args": (lambda: _door.decode_json(), TypeError),
    "dj-raws-tuple": (_dj((Raw(b'{"ts": 1}'),)), TypeError),
    "dj-max-bytes-str": (_dj([], max_bytes="9"), TypeError),
    "dj-no-value": (_dj([_ns(headers=None)]), AttributeError),
    "dj-no-headers": (_dj([_ns(value=b'{"ts": 1}')]), AttributeError),
    "dj-headers-unbool": (_dj([Raw(b'{"ts": 1}', Unbool())]), Boom),
    # an interrupt in decode is no refusal of the record, to retry in Python: it goes on up
    "dj-decode-interrupted": (lambda: _door.decode_json([Raw(b"{}")], _interrupt, 100), KeyboardInterrupt),
    # doubtful_times
    "dt-no-args": (lambda: _door.doubtful_times(), TypeError),
    "dt-pairs-tuple": (_dt(((Raw(b""), _ns(ts=5)),)), TypeError),
    "dt-not-a-pair": (_dt([(Raw(b""), _ns(ts=5), 1)]), TypeError),
    "dt-a-list-pair": (_dt([[Raw(b""), _ns(ts=5)]]), TypeError),
    "dt-no-ts": (_dt([(Raw(b""), _ns())]), AttributeError),
    "dt-no-timestamp": (_dt([(_ns(), _ns(ts=5))]), AttributeError),
    "dt-reference-unbool": (_dt([], reference=Unbool()), Boom),
}


@pytest.mark.parametrize("case", ODD)
def test_odd_input_raises_a_clear_exception(case: str) -> None:
    call, expected = ODD[case]
    with pytest.raises(expected):
        call()


def test_extra_cells_one_per_distinct_item_keyed_with_the_other_attrs() -> None:
    counted: dict = {}
    extra = Labels(lambda key: (key[1], key[0]))
    for hosts in ([], ["h", "i", "h"]):
        events = [Ev(0, ["a"], "o", "ok", "s1", hosts)]
        args = ("s", "fields", "org", "outcome", None, {("a",): ("c", ())}, {"o": "o"}, {"ok": "ok"}, counted)
        assert _door.count_rollup(events, *args, (("sdk", "hosts"), extra, 60)) == []
    assert extra == {("s1", "h"): ("h", "s1"), ("s1", "i"): ("i", "s1")}
    assert counted == {(0, "s", "c", "o", "ok", ""): 2, (0, "h", "s1"): 1, (0, "i", "s1"): 1}


# -- callbacks that change what the loop walks: in a child, whose freed memory is poisoned -----------
PRELUDE = "from streams import _door\n"


MUTATING: dict[str, tuple[str, str]] = {
    # compute drops the record from the batch before the record is set
    "pseudonymize-record": (
        """
        class R: pass
        records = [R()]
        records[0].x = "C" * 30
        held = []
        def compute(i):
            records.clear(); gc.collect(); held.extend(R() for _ in range(50))
            return "p"
        print(_door.pseudonymize(records, "x", {}, compute))
        """,
        "None",
    ),
    # a cache key's __eq__ takes the id out of its list mid-lookup; compute then gets the id
    "pseudonymize-id": (
        """
        class K:
            def __init__(self, h): self.h = h
            def __hash__(self): return self.h
            def __eq__(self, other): ids.clear(); return False
        one = "".join(["C", "1"])
        ids = [one]
        cache = {K(hash(one)): "no"}
        del one
        class R: pass
        r = R(); r.x = ids
        got = []
        try:
            _door.pseudonymize([r], "x", cache, lambda v: got.append(str(v)) or "p")
        except IndexError:  # as `ids[0] = ...` on the emptied list
            print(got)
        """,
        "['C1']",
    ),
    # a Labels' __missing__ (Python) empties the batch while its event is being counted
    "count_rollup-event": (
        """
        class Ev:
            def __init__(self): self.ts, self.fields, self.org, self.out = 60_000, ["f"], "o", "x"
        events = [Ev()]
        class Cov(dict):
            def __missing__(self, k):
                events.clear(); gc.collect(); [Ev() for _ in range(50)]
                return ("c", ())
        counted = {}
        print(_door.count_rollup(events, "s", "fields", "org", "out", None, Cov(), {"o": "O"}, {"x": "X"}, counted))
        print(counted)
        """,
        "[]\n{(60, 's', 'c', 'O', 'X', ''): 1}",
    ),
    # an extra label's __missing__ empties the items list being walked, and the batch
    "count_rollup-extra-items": (
        """
        class Ev:
            def __init__(self):
                self.ts, self.fields, self.org, self.out = 60_000, ["f"], "o", "x"
                self.sdk, self.hosts = "s", ["".join(["h", str(i)]) for i in range(3)]
        events = [Ev()]
        class Cells(dict):
            def __missing__(self, k):
                events[0].hosts.clear() if events else None; events.clear(); gc.collect()
                return (k[1],)
        counted = {}
        extra = (("sdk", "hosts"), Cells(), 60)
        print(_door.count_rollup(events, "s", "fields", "org", "out", None, {("f",): ("c", ())}, {"o": "O"}, {"x": "X"}, counted, extra))
        print(sorted(counted.items()))
        """,
        "[]\n[((60, 'h0'), 1), ((60, 'h1'), 1), ((60, 'h2'), 1), ((60, 's', 'c', 'O', 'X', ''), 1)]",
    ),
    # a Python decode empties the batch while its record is decoded
    "decode_json-raw": (
        """
        class Raw:
            def __init__(self): self.value, self.headers = bytes([123, 125]), None
        raws = [Raw(), Raw()]
        def decode(v):
            raws.clear(); gc.collect(); [Raw() for _ in range(50)]
            return "ev"
        ok, stop = _door.decode_json(raws, decode, 100)
        print(len(ok), stop, ok[0][1])
        """,
        "1 1 ev",
    ),
    # an event's `ts` property empties the pairs while its pair is judged
    "doubtful_times-pair": (
        """
        class Ev:
            @property
            def ts(self):
                pairs.clear(); gc.collect(); [Ev() for _ in range(50)]
                return 5
        class Raw:
            timestamp = 5
        pairs = [(Raw(), Ev()), (Raw(), Ev())]
        print(_door.doubtful_times(pairs, 0, 10, 1, 1, False))
        """,
        "[]",
    ),
    # a review's: a name's property drops the record from the batch while its names are read
    "names_scan-text-record": (
        """
        class Rec:
            @property
            def a(self):
                recs.clear(); gc.collect(); [Rec() for _ in range(50)]
                return "x"
            b = "y"
        recs = [Rec()]
        print(repr(_door.names_scan(recs, ("a", "b"), ())[0]))
        """,
        "'x\\x1fy\\x1f\\x1e'",
    ),
    "names_scan-secrets-record": (
        """
        class Rec:
            @property
            def a(self):
                recs.clear(); gc.collect(); [Rec() for _ in range(50)]
                return "x"
            b = "pwd=hunter2"
        recs = [Rec()]
        print(_door.names_scan(recs, ("a", "b"), ("pwd",))[2])
        """,
        "[(0, 'b')]",
    ),
    # a review's: a name's property calls the search again, with other words, mid-scan
    "names_scan-reentered": (
        """
        class Rec:
            @property
            def a(self):
                _door.names_scan([], ("a",), ("zzz",))[2]
                return "x"
        class Plain:
            a = "pwd=hunter2"
        print(_door.names_scan([Rec(), Plain()], ("a",), ("pwd",))[2])
        """,
        "[(1, 'a')]",
    ),
}


@pytest.mark.parametrize("case", MUTATING)
def test_a_callback_changing_the_lists_is_no_crash(case: str) -> None:
    no_crash(PRELUDE, *MUTATING[case])


# -- no leak of objects or references over many calls -------------------------------------------------


def test_a_long_run_keeps_its_memory_and_references() -> None:
    def own(text: str) -> str:  # not a constant other code shares
        return "".join(["<", text, ">"])

    stream, cls, org, outcome, unknown = own("access"), own("c"), own("o"), own("ok"), (own("u1"),)
    cover, org_value, outcome_value, action_value = (cls, unknown), own("org"), own("outcome"), own("view")
    action = own("v")
    coverage, orgs = {("a", "b"): cover}, {org_value: org}
    outcomes = {outcome_value: outcome, action_value: action}
    extra_cell = (own("x"), own("y"))
    extra = (("sdk", "hosts"), {("s", "h"): extra_cell}, 60)
    pseudonym = own("p-C1")
    cache = {"C1": pseudonym}
    shared = [stream, cover, org, outcome, unknown, extra_cell, pseudonym, cache, coverage, org_value]
    shared += [outcome_value, cls, action_value, action]
    gc.collect()
    refs = [sys.getrefcount(o) for o in shared]
    counted: Counter = Counter()
    n = [0]

    def step() -> None:
        n[0] += 1
        ev = Ev(n[0] * 1000, ["a", "b"], org_value, outcome_value, "s", ["h"], action_value)
        rec = SimpleNamespace(ids=["C1", f"N{n[0]}", None], one="C1")
        _door.pseudonymize([rec], "ids", cache, str.lower)
        _door.pseudonymize([rec], "one", cache, str.lower)
        assert _door.pseudonymize([rec, rec], "ids", cache, str.lower, pseudonym) == [rec, rec]
        assert _door.distinct([ev, ev], "org") == {org_value} and _door.distinct([ev], "hosts", True) == {"h"}
        assert _door.names_scan([rec], ("one", "ids"), (), ("n", 1))[3] == [(0, "ids")]
        assert (
            _door.misrouted([(SimpleNamespace(key=b"x"), rec), (SimpleNamespace(key=None), rec)], "one") == 2
        )
        gaps = _door.count_rollup(
            [ev], stream, "fields", "org", "outcome", "action", coverage, orgs, outcomes, counted, extra
        )
        assert gaps[0][1] is unknown
        counted.clear()  # the counts are fresh objects kept by design: not what is measured
        raws = [Raw(b'{"ts": %d}' % n[0]), Raw(b"{"), Raw(b"{}")]
        ok, stop = _door.decode_json(raws, POINT.decode, 100)
        assert (len(ok), stop) == (1, 1)
        pairs = [(Raw(b"", None, ev.ts), ev), (Raw(b"", None, 0), ev)]
        assert _door.doubtful_times(pairs, 0, 2**62 - 1, 0, 0, False) == pairs[1:]

    assert blocks_grown(step, 200_000) < 5_000
    assert [sys.getrefcount(o) for o in shared] == refs


def test_the_error_paths_leak_nothing() -> None:
    """Each odd input of ODD, a thousand times over fresh copies: no path out leaves an object behind."""
    assert leaks(ODD, 1_000) == {}
