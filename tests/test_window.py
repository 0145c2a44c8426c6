"""bulk_query's quiet path in C (detectors/_window.c) against its contract: `reads` gives what
BulkQueryDetector._entries and _sums give, `add_quietly` leaves a window as _add_quietly does (or
returns False having changed nothing), a bank day through the engine gives the same alerts and
state with it and without it, odd input and callbacks that change what it walks end in a clear
exception or a fall back to Python (never a crash), and nothing leaks."""

from __future__ import annotations

import contextlib
import copy
import gc
import sys
import weakref
from collections import deque
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from native import PROPERTY, ROOT, blocks_grown, leaks, no_crash

from detectors import _window, bulk_query, load_detectors
from detectors.bulk_query import ActorWindow
from detectors.legal_tally import LegalTally
from detectors.window_chunks import Chunks
from policy import load_policy
from policy.catalog import Catalog
from schemas.models import Action
from schemas.structs import STRICT, from_model
from streams.codecs import RawRecord
from streams.engine import Engine
from streams.pseudonym import Pseudonymizer
from streams.workload import generate

POLICY = load_policy()
CATALOG = Catalog(POLICY)
SPEC = next(s for s in load_detectors(POLICY) if s.kind == "bulk_query")
CTX = SimpleNamespace(catalog=CATALOG)  # all _entries asks of a context
Access = STRICT["access"]
T0 = 1_767_225_600_000
MIN, HOUR = 60_000, 3_600_000
# tier 0 (property), 1 (contact), 2 (authentication, C3), two and three tiers, none (C1)
FIELD_SETS = [
    ("account_balance",),
    ("mobile_phone",),
    ("card_cvn",),
    ("account_balance", "mobile_phone"),
    ("card_cvn", "account_balance", "mobile_phone"),
    ("name",),
]
ACTIONS = list(Action)


def detector() -> Any:
    return SPEC.cls(SPEC.section, SPEC.params, None)  # the store is not read by these paths


def access(
    ts: int, ids: Any, fields: Any = ("account_balance",), action: Any = Action.view, rows: int = 0
) -> Any:
    return Access(
        event_id=f"e{ts}-{len(ids)}",
        ts=ts,
        actor_id="e1",
        system="core_banking",
        action=action,
        subject_ids=list(ids),
        row_count=rows,
        fields=list(fields),
    )


def state(win: ActorWindow) -> str:
    """Everything a window holds, as a string: ints and bools apart, the chunks' bookkeeping too."""
    c = win.chunks
    return repr(
        (
            list(win.entries),
            list(win.events),
            win.role,
            win.total,
            win.last_ts,
            win.weights,
            win.score,
            win.tally.totals,
            win.tally.added,
            win.tally.known,
            (c.sealed, c.skip, c.live, c.stale, c.next, c.broken),
            win.episode.to_json() if win.episode else None,
            win.legal_since,
            win.late,
        )
    )


def add_quietly(det: Any, win: ActorWindow, evs: list, entries: list, tiers: list) -> bool:
    return _window.add_quietly(
        win, evs, entries, tiers, det.window_ms, det.horizon_ms, det._tier_sets, det._tiers_of
    )


def test_the_module_is_the_worktrees() -> None:
    assert Path(_window.__file__).resolve().is_relative_to(ROOT)
    assert bulk_query._window is _window


# -- reads: the entries and sums of _entries + _sums ---------------------------------------------
CUSTOMERS = st.sampled_from(["C1", "C2", "C3", "C4"])
ROWS = st.sampled_from([0, 1, 3, -2, 2**39])
READ = st.builds(
    access,
    ts=st.one_of(st.just(T0), st.integers(T0 - HOUR, T0 + HOUR)),
    ids=st.one_of(st.lists(CUSTOMERS, min_size=1, max_size=1), st.lists(CUSTOMERS, max_size=3)),
    fields=st.sampled_from(FIELD_SETS),
    action=st.sampled_from(ACTIONS),
    rows=ROWS,
)
PROFILED = st.lists(
    st.tuples(st.sampled_from(FIELD_SETS), st.sampled_from(ACTIONS), st.booleans()), max_size=25
)


@PROPERTY
@given(evs=st.lists(READ, max_size=10), profiled=PROFILED, data=st.data())
def test_reads_is_entries_and_sums(evs: list, profiled: list, data: st.DataObject) -> None:
    """Also where reads of one kind repeat, some of them the post's own work (`duty`): `reads`
    reuses the last profile it found for the same fields, action and duty."""
    det = detector()
    for fields, action, own in profiled:  # the field sets seen before: their profiles cached
        det._entries(access(T0, ["C0"], fields, action), CTX, own)
    duty = data.draw(st.lists(st.booleans(), min_size=len(evs), max_size=len(evs)))
    profiles = dict(det._profiles)
    got = _window.reads(evs, det._profiles, len(det._tiers), duty)
    assert det._profiles == profiles
    reads = [det._entries(ev, CTX, own) for ev, own in zip(evs, duty, strict=True)]
    keys = [
        (tuple(ev.fields), ev.action, *([True] if own else [])) for ev, own in zip(evs, duty, strict=True)
    ]
    if not all(len(ev.subject_ids) == 1 and key in profiles for ev, key in zip(evs, keys, strict=True)):
        assert got is None
        return
    assert got is not None
    assert repr(got) == repr(([r[0][0] for r in reads], [r[3] for r in reads], *det._sums(reads)))
    assert got[0] == [r[0][0] for r in reads]
    assert not any(gc.is_tracked(e) for e in got[0])  # ints, strs and a tuple of strs: no cycle


def test_reads_of_one_kind_own_work_or_not_keep_their_own_profiles() -> None:
    """`reads` reuses the last profile it found for the same fields, action and duty: a read of the
    post's own work (in no legal tier) beside the same read that is not keeps its own profile."""
    det = detector()
    for own in (False, True):
        det._entries(access(T0, ["C0"]), CTX, own)
    evs = [access(T0 + k, [f"C{k}"]) for k in range(4)]
    for duty in ([False, True, True, False], [True, False, False, True]):
        reads = [det._entries(ev, CTX, own) for ev, own in zip(evs, duty, strict=True)]
        got = _window.reads(evs, det._profiles, len(det._tiers), duty)
        assert repr(got) == repr(([r[0][0] for r in reads], [r[3] for r in reads], *det._sums(reads)))
        assert got[1][0] != got[1][1]  # the tiers of one and of the other


def test_a_c3_read_is_the_common_case() -> None:
    """CLASS_RANK is 1..3: a rank judged in [0, 3) sent every C3 read back to Python."""
    det = detector()
    ev = access(T0, ["C1"], ("card_cvn",), Action.export)
    read = det._entries(ev, CTX)
    assert _window.reads([ev], det._profiles, 3) == ([read[0][0]], [(1,)], 15_000, 15_000, [0, 1, 0])


def test_a_tier_named_past_int64_is_left_to_python() -> None:
    """A tier counted 2**23 times over 2**40 records passes int64: Python's ints add it, not C's."""
    ev = SimpleNamespace(fields=["a"], action="view", subject_ids=["C1"], ts=5, row_count=2**40 - 1)
    tiers = (0,) * (2**23 + 8)
    assert _window.reads([ev], {(("a",), "view"): ("C1", (), 1, 1, tiers)}, 1) is None
    assert _window.reads([ev], {(("a",), "view"): ("C1", (), 1, 1, tiers[:8])}, 1)[4] == [8 * (2**40 - 1)]


# -- add_quietly: the window _add_quietly leaves ------------------------------------------------------
DT = st.sampled_from([0, 0, 1, MIN, 40 * MIN, 2 * HOUR, 23 * HOUR, 25 * HOUR])
LATE = st.sampled_from([-1, -MIN, -2 * HOUR, -24 * HOUR, -25 * HOUR])
STEP = st.one_of(
    st.tuples(
        st.just("reads"),
        st.lists(
            st.tuples(
                st.one_of(DT, DT, LATE),
                st.lists(CUSTOMERS, max_size=3),
                st.sampled_from(FIELD_SETS),
                st.sampled_from([0, 1, 3, -2, 10**6]),  # unnamed rows weigh w x rows: under 2**40
            ),
            min_size=1,
            max_size=6,
        ),
    ),
    st.tuples(st.just("transfer"), st.one_of(DT, LATE), st.integers(0, 3), st.integers(0, 4)),
    st.tuples(st.just("moved"), DT),
    st.tuples(st.just("exact")),
    st.tuples(st.just("bound")),
    st.tuples(st.just("seal")),
    st.tuples(st.just("close"), st.sampled_from([0, MIN, HOUR])),
)
TRANSFER_CATS = [("property",), ("contact", "property"), ("marketing",), ()]  # the last two in no tier


def history(det: Any, steps: list) -> tuple[ActorWindow, int]:
    """A window after `steps` of what the detector does to one (reads, late ones too, transfers,
    the clock moved by a transfer in no tier, an exact score kept and dropped, chunks sealed, an
    episode's close), and its newest time."""
    win, clock = ActorWindow(LegalTally(len(det._tiers))), T0
    for k, step in enumerate(steps):
        if step[0] == "reads":
            evs = []
            for dt, ids, fields, rows in step[1]:
                evs.append(access(clock + dt, ids, fields, ACTIONS[k % 3], rows))
                clock = max(clock, clock + dt)
            reads = [det._entries(ev, CTX) for ev in evs]
            det._add_quietly(win, evs, [r[0] for r in reads], [r[3] for r in reads])
        elif step[0] == "transfer":
            _, dt, n, extra = step
            ts, cats = clock + dt, TRANSFER_CATS[k % len(TRANSFER_CATS)]
            entries = [(ts, f"C{i}", 0, 1, cats, 2) for i in range(n)]
            if extra:
                entries.append((ts, f"#t{k}", 0, extra, cats, 2))
            win.last_ts = max(win.last_ts, ts)
            if entries:
                det._keep(win, entries, SimpleNamespace(ts=ts, event_id=f"t{k}"), read=False)
        elif step[0] == "moved":  # a transfer in no tier: the clock moves, nothing joins or leaves
            clock += step[1]
            win.last_ts = max(win.last_ts, clock)
        elif step[0] == "exact":
            win.exact()
        elif step[0] == "bound":
            win.weights = None
        elif step[0] == "seal":
            win.chunks.seal((win.entries, win.events))
        else:
            win.evict_role(win.last_ts - step[1])
    return win, clock


def joins_in_order(win: ActorWindow, entries: list, horizon_ms: int) -> bool:
    """Each read the law's horizon has not passed comes at or after the last item of both deques."""
    last = win.last_ts
    tail = max((d[-1][0] for d in (win.entries, win.events) if d), default=None)
    for e in entries:
        if e[0] <= last - horizon_ms:
            continue
        if (tail is not None and e[0] < tail) or e[0] < last:
            return False
        tail, last = e[0], max(last, e[0])
    return True


@PROPERTY
@given(
    steps=st.lists(STEP, max_size=8),
    batch=st.lists(
        st.tuples(st.one_of(DT, DT, DT, LATE), CUSTOMERS, st.sampled_from(FIELD_SETS), ROWS), max_size=8
    ),
    forget_tiers=st.booleans(),
)
def test_add_quietly_is_add_quietly(steps: list, batch: list, forget_tiers: bool) -> None:
    det = detector()
    win, clock = history(det, steps)
    evs = []
    for dt, cid, fields, rows in batch:
        evs.append(access(clock + dt, [cid], fields, Action.query, rows))
        clock = max(clock, clock + dt)
    for ev in evs:
        det._entries(ev, CTX)
    entries, tiers, *_ = _window.reads(evs, det._profiles, len(det._tiers))
    if forget_tiers:  # as after a restart: tiers_of (Python) fills the cache again, mid-call
        det._tier_sets.clear()
    before, twin = state(win), copy.deepcopy(win)
    ok = add_quietly(det, win, evs, entries, tiers)
    assert ok is (twin.weights is None and joins_in_order(twin, entries, det.horizon_ms))
    if not ok:
        assert state(win) == before
        return
    det._add_quietly(twin, evs, [[e] for e in entries], tiers)
    assert state(win) == state(twin)


def test_ties_late_reads_and_an_empty_window() -> None:
    det = detector()
    evs = [
        access(T0, ["C1"]),
        access(T0, ["C2"], ("card_cvn",)),
        access(T0 - 25 * HOUR, ["C3"]),
        access(T0 + HOUR, ["C1"], ("name",)),
    ]
    for ev in evs:
        det._entries(ev, CTX)
    entries, tiers, *_ = _window.reads(evs, det._profiles, 3)
    win, twin = ActorWindow(LegalTally(3)), ActorWindow(LegalTally(3))
    assert add_quietly(det, win, evs, entries, tiers)
    det._add_quietly(twin, evs, [[e] for e in entries], tiers)
    assert state(win) == state(twin)
    # C3 came after the law's horizon had passed it; both reads at T0 left the role window by T0 + 1 h
    assert [e[1] for e in win.entries] == ["C1", "C2", "C1"] and win.role == 2
    assert win.tally.totals == [1, 1, 0] and [e[3] for e in win.events] == [True, True, False]


def test_a_restored_window_evicts_many_category_sets_in_c() -> None:
    """After a restart tier_sets is empty: evicting entries of six category sets calls tiers_of six
    times, the window read again after each (found by the property above with a limit of 5)."""
    det = detector()
    steps = [("reads", [(0, ["C1"], fields, 0) for fields in FIELD_SETS])]
    win, _ = history(det, steps)
    twin = copy.deepcopy(win)
    evs = [access(T0 + 25 * HOUR, ["C1"])]
    det._entries(evs[0], CTX)
    entries, tiers, *_ = _window.reads(evs, det._profiles, 3)
    det._tier_sets.clear()
    calls = []

    def tiers_of(cats: tuple) -> tuple:
        calls.append(cats)
        return det._tiers_of(cats)

    assert _window.add_quietly(
        win, evs, entries, tiers, det.window_ms, det.horizon_ms, det._tier_sets, tiers_of
    )
    assert len(calls) == len(set(calls)) == len(FIELD_SETS)
    det._add_quietly(twin, evs, [[e] for e in entries], tiers)
    assert state(win) == state(twin) and len(win.entries) == 1


def test_evictions_are_told_to_the_sealed_chunks() -> None:
    """40 reads, 32 of them sealed in a chunk: the 10 the horizon evicts are counted off the chunk."""
    det = detector()
    win = plain(40, step=30 * MIN)
    assert win.chunks.seal((win.entries, win.events))[0]
    twin = copy.deepcopy(win)
    evs = [access(T0 + 29 * HOUR, ["C9"])]
    det._entries(evs[0], CTX)
    entries, tiers, *_ = _window.reads(evs, det._profiles, 3)
    assert add_quietly(det, win, evs, entries, tiers)
    det._add_quietly(twin, evs, [[e] for e in entries], tiers)
    assert state(win) == state(twin)
    assert win.chunks.skip == [11, 11] and win.chunks.live == [21, 21]


@pytest.mark.parametrize("batch", [[], [-25 * HOUR]])
def test_a_batch_that_joins_nothing_still_evicts(batch: list) -> None:
    """The clock moved 2 h past the window's reads (a transfer in no tier: _add_transfer moves it,
    and evicts nothing): a batch the horizon passed, or none, evicts all three, the newest too."""
    det = detector()
    win = plain()
    win.last_ts = T0 + 2 * HOUR
    twin = copy.deepcopy(win)
    evs = [access(T0 + dt, ["C9"]) for dt in batch]
    for ev in evs:
        det._entries(ev, CTX)
    entries, tiers, *_ = _window.reads(evs, det._profiles, 3)
    assert add_quietly(det, win, evs, entries, tiers)
    det._add_quietly(twin, evs, [[e] for e in entries], tiers)
    assert state(win) == state(twin)
    assert win.role == 3 and win.total == 0 and len(win.entries) == 3


# -- the engine, with and without the C: a bank day -------------------------------------------------
def test_a_bank_day_gives_the_same_alerts_and_state_without_the_c(monkeypatch: pytest.MonkeyPatch) -> None:
    workload = generate(40_000, seed=11, policy=POLICY)
    day = [r for s, _, r in workload.records if s == "access"]
    # the door pseudonymizes reference records in place: each run gets its own, or the second run's
    # customers are pseudonyms of pseudonyms and no read is of anyone's book
    refs = lambda: {  # noqa: E731
        r: [from_model(r, x) for s, _, x in workload.records if s == r] for r in ("entitlements", "customers")
    }
    taken = [0, 0]
    real = _window.add_quietly

    def counted(*args: Any) -> bool:
        ok = real(*args)
        taken[ok] += 1
        return ok

    def run() -> tuple[list, list]:
        engine = Engine([SPEC], CATALOG, Pseudonymizer(b"unit-test-key-0123456789"))
        for ref, records in refs().items():
            engine.apply_reference(ref, records)
        alerts = []
        for i in range(0, len(day), 2000):
            batch = [
                (RawRecord("pfi.access", 0, i + j, None), from_model("access", a))
                for j, a in enumerate(day[i : i + 2000])
            ]
            alerts += engine.process("access", "pfi.access", 0, batch) + engine.advance()
        alerts += engine.drain()
        keys = engine.tasks[(0, "bulk_query")].keys.items()
        return [a.model_dump() for a in alerts], [
            (k, state(v) if isinstance(v, ActorWindow) else v) for k, v in keys
        ]

    monkeypatch.setattr(_window, "add_quietly", counted)
    fast = run()
    assert taken[True] > 1000 and taken[False] < taken[True] / 2, taken  # the C did most of the day
    monkeypatch.setattr(_window, "reads", lambda *_: None)
    calls = list(taken)
    slow = run()
    assert taken == calls  # Python did all of it
    assert len(fast[0]) > 10 and fast[0] == slow[0]
    assert len(fast[1]) > 100 and fast[1] == slow[1]


# -- odd input: a clear exception, or None / False with nothing changed ------------------------------
class Boom(Exception):
    pass


class Stop(BaseException):  # not an Exception: never taken for "not the common case"
    pass


def _raise(*_: Any) -> Any:
    raise Boom


def _stop(*_: Any) -> Any:
    raise Stop


_DET = detector()


def tiers_of(cats: tuple) -> tuple:
    """The detector's tiers_of as a plain function: a deep copy of a bound method copies the detector."""
    return _DET._tiers_of(cats)


class Call:
    """A call on fresh deep copies of its arguments each time."""

    def __init__(self, fn: Any, *args: Any) -> None:
        self.fn, self.args = fn, args

    def __call__(self) -> Any:
        return self.fn(*copy.deepcopy(self.args))


def plain(n: int = 3, ts0: int = T0, step: int = MIN, **kw: Any) -> ActorWindow:
    """A window of `n` property reads, `step` apart, its figures as the detector keeps them."""
    win = ActorWindow(LegalTally(3))
    for i in range(n):
        win.entries.append((ts0 + i * step, f"C{i}", 1000, 1, ("property",), 2))
        win.events.append((ts0 + i * step, f"e{i}", True, True))
        win.tally.add(1, (0,))
        win.total += 1000
    win.last_ts = ts0 + (n - 1) * step if n else 0
    for k, v in kw.items():
        if k in ("totals", "added"):
            setattr(win.tally, k, v)
        else:
            setattr(win, k, v)
    return win


READ_AT = T0 + HOUR


def _aq(win: Any = None, evs: Any = None, entries: Any = None, tiers: Any = None, **kw: Any) -> Any:
    """add_quietly on fresh copies: one read an hour after a plain window, unless told otherwise."""
    args = dict(
        win=plain() if win is None else win,
        evs=[SimpleNamespace(event_id="x")] if evs is None else evs,
        entries=[(READ_AT, "C9", 1000, 1, ("property",), 2)] if entries is None else entries,
        tiers=[(0,)] if tiers is None else tiers,
        window_ms=_DET.window_ms,
        horizon_ms=_DET.horizon_ms,
        tier_sets={("property",): (0,)},
        tiers_of=tiers_of,
    )
    args.update(kw)
    return Call(_window.add_quietly, *args.values())


LATE_READ = (T0 + 25 * HOUR, "C9", 1, 1, (), 2)  # the plain window's reads are 25 h old by then


def _evicting(tiers_of: Any) -> Any:
    """add_quietly of a read that evicts the plain window's reads, no tiers cached: `tiers_of` is asked."""
    return _aq(entries=[LATE_READ], tiers=[()], tier_sets={}, tiers_of=tiers_of)


def _rd(evs: Any, profiles: Any = None, ntiers: Any = 3) -> Any:
    profiles = {(("a",), "view"): ("C2", ("property",), 2, 1000, (0,))} if profiles is None else profiles
    return Call(_window.reads, evs, profiles, ntiers)


def _ev(**kw: Any) -> SimpleNamespace:
    fields = dict(fields=["a"], action="view", subject_ids=["C1"], ts=T0, row_count=1, event_id="x")
    fields.update(kw)
    return SimpleNamespace(**{k: v for k, v in fields.items() if v is not _MISSING})


def _profile(**kw: Any) -> dict:
    p = dict(cls="C2", cats=("property",), rank=2, weight=1000, tiers=(0,))
    p.update(kw)
    return {(("a",), "view"): tuple(p.values())}


class SubDeque(deque):
    pass


class Weighted:
    @property
    def weights(self) -> Any:
        raise Boom


class IdsRaise:  # a getter with an error pending would be a SystemError
    fields, action, row_count = ["a"], "view", 1

    @property
    def subject_ids(self) -> Any:
        raise Boom

    @property
    def ts(self) -> int:
        return T0


class Chunky:
    """No Chunks: add_quietly reads their `live` and `skip` before it changes anything."""


def odd_chunks(**kw: Any) -> Chunks:
    chunks = Chunks()
    for k, v in kw.items():
        setattr(chunks, k, v)
    return chunks


_MISSING = object()
BIG = (2**40, 2**61, 2**62, 2**63, 2**64 + 5)
ODD: dict[str, tuple[Any, Any]] = {
    # reads: arguments
    "rd-no-args": (lambda: _window.reads(), TypeError),
    "rd-evs-tuple": (_rd((_ev(),)), TypeError),
    "rd-profiles-list": (_rd([_ev()], []), TypeError),
    "rd-tiers-float": (_rd([_ev()], ntiers=3.0), TypeError),
    "rd-tiers-negative": (_rd([_ev()], ntiers=-1), ValueError),
    "rd-tiers-65": (_rd([_ev()], ntiers=65), ValueError),
    "rd-tiers-huge": (_rd([_ev()], ntiers=2**70), OverflowError),
    # reads: accesses Python must do, or cannot
    "rd-no-fields": (_rd([_ev(fields=_MISSING)]), AttributeError),
    "rd-no-action": (_rd([_ev(action=_MISSING)]), AttributeError),
    "rd-no-ids": (_rd([_ev(subject_ids=_MISSING)]), AttributeError),
    "rd-no-ts": (_rd([_ev(ts=_MISSING)]), AttributeError),
    "rd-no-rows": (_rd([_ev(row_count=_MISSING)]), AttributeError),
    "rd-ids-raise-ts-python": (_rd([IdsRaise()]), Boom),
    "rd-field-unhashable": (_rd([_ev(fields=[["a"]])]), TypeError),
    "rd-fields-tuple": (_rd([_ev(fields=("a",))]), None),
    "rd-not-profiled": (_rd([_ev(fields=["b"])]), None),
    "rd-two-ids": (_rd([_ev(subject_ids=["C1", "C2"])]), None),
    "rd-no-customer": (_rd([_ev(subject_ids=[])]), None),
    "rd-id-none": (_rd([_ev(subject_ids=[None])]), None),
    "rd-id-int": (_rd([_ev(subject_ids=[1])]), None),
    "rd-ids-tuple": (_rd([_ev(subject_ids=("C1",))]), None),
    "rd-ts-float": (_rd([_ev(ts=1.5)]), None),
    "rd-ts-bool": (_rd([_ev(ts=True)]), None),
    "rd-ts-none": (_rd([_ev(ts=None)]), None),
    "rd-rows-float": (_rd([_ev(row_count=2.0)]), None),
    "rd-rows-none": (_rd([_ev(row_count=None)]), None),
    **{f"rd-ts-{b.bit_length()}-bits": (_rd([_ev(ts=b)]), None) for b in BIG[1:]},
    **{f"rd-rows-{b.bit_length()}-bits": (_rd([_ev(row_count=b)]), None) for b in BIG},
    **{f"rd-weight-{b.bit_length()}-bits": (_rd([_ev()], _profile(weight=b)), None) for b in BIG},
    "rd-weight-float": (_rd([_ev()], _profile(weight=1000.0)), None),
    "rd-weight-negative": (_rd([_ev()], _profile(weight=-1)), None),
    "rd-profile-list": (_rd([_ev()], {(("a",), "view"): ["C2", ("property",), 2, 1000, (0,)]}), None),
    "rd-profile-short": (_rd([_ev()], {(("a",), "view"): ("C2", ("property",), 2, 1000)}), None),
    "rd-cats-list": (_rd([_ev()], _profile(cats=["property"])), None),
    "rd-tier-past": (_rd([_ev()], _profile(tiers=(3,))), None),
    "rd-tier-negative": (_rd([_ev()], _profile(tiers=(-1,))), None),
    "rd-tier-bool": (_rd([_ev()], _profile(tiers=(True,))), None),
    "rd-tiers-list": (_rd([_ev()], _profile(tiers=[0])), None),
    "rd-too-many": (lambda: _window.reads([_ev()] * (2**20 + 1), _profile(), 3), None),
    # add_quietly: arguments
    "aq-no-args": (lambda: _window.add_quietly(), TypeError),
    "aq-evs-tuple": (_aq(evs=(SimpleNamespace(event_id="x"),)), TypeError),
    "aq-tier-sets-list": (_aq(tier_sets=[]), TypeError),
    "aq-window-negative": (_aq(window_ms=-1), ValueError),
    "aq-window-float": (_aq(window_ms=1.0), ValueError),
    "aq-horizon-huge": (_aq(horizon_ms=2**63), ValueError),
    "aq-sizes": (_aq(evs=[]), ValueError),
    "aq-tiers-short": (_aq(tiers=[]), ValueError),
    # add_quietly: the window
    "aq-win-object": (_aq(win=object()), AttributeError),
    "aq-weights-raise": (_aq(win=Weighted()), Boom),
    "aq-weights-kept": (_aq(win=plain(weights={})), False),
    "aq-entries-list": (_aq(win=plain(entries=[])), False),
    "aq-entries-subclass": (_aq(win=plain(entries=SubDeque())), False),
    "aq-events-maxlen": (_aq(win=plain(events=deque(maxlen=5))), False),
    "aq-no-tally": (_aq(win=plain(tally=None)), AttributeError),
    "aq-totals-tuple": (_aq(win=plain(totals=(0, 0, 0))), False),
    "aq-totals-65": (_aq(win=plain(totals=[0] * 65, added=[0] * 65)), False),
    "aq-added-short": (_aq(win=plain(added=[0, 0])), False),
    "aq-totals-float": (_aq(win=plain(totals=[0.0, 0, 0])), False),
    "aq-totals-huge": (_aq(win=plain(totals=[2**62, 0, 0])), False),
    "aq-role-negative": (_aq(win=plain(role=-1)), False),
    "aq-role-float": (_aq(win=plain(role=0.0)), False),
    "aq-total-huge": (_aq(win=plain(total=2**63)), False),
    "aq-last-none": (_aq(win=plain(last_ts=None)), False),
    "aq-old-entry-short": (_aq(win=plain(entries=deque([(T0 - 30 * HOUR, "C", 1, 1, ())]))), False),
    "aq-old-event-list": (_aq(win=plain(events=deque([[T0 - 30 * HOUR, "e", True, True]]))), False),
    "aq-old-weight-float": (
        _aq(win=plain(entries=deque([(T0 - 30 * MIN, "C", 1.0, 1, ("property",), 2)]))),
        False,
    ),
    # an entry that stays is only timed: Python's + is never asked of its figures
    "aq-old-weight-float-stays": (
        _aq(win=plain(entries=deque([(T0 + 30 * MIN, "C", 1.0, 1, ("property",), 2)]))),
        True,
    ),
    # add_quietly: the reads
    "aq-out-of-order": (_aq(entries=[(T0, "C9", 1000, 1, ("property",), 2)]), False),
    "aq-entry-list": (_aq(entries=[[READ_AT, "C9", 1000, 1, ("property",), 2]]), False),
    "aq-entry-short": (_aq(entries=[(READ_AT, "C9", 1000, 1, ("property",))]), False),
    "aq-ts-float": (_aq(entries=[(float(READ_AT), "C9", 1000, 1, ("property",), 2)]), False),
    "aq-ts-bool": (_aq(win=plain(0), entries=[(True, "C9", 1000, 1, ("property",), 2)]), False),
    **{f"aq-ts-{b.bit_length()}-bits": (_aq(entries=[(b, "C9", 1, 1, (), 2)]), False) for b in BIG[1:]},
    **{f"aq-weight-{b.bit_length()}-bits": (_aq(entries=[(READ_AT, "C9", b, 1, (), 2)]), False) for b in BIG},
    **{f"aq-rows-{b.bit_length()}-bits": (_aq(entries=[(READ_AT, "C9", 1, b, (), 2)]), False) for b in BIG},
    "aq-weight-negative": (_aq(entries=[(READ_AT, "C9", -1, 1, ("property",), 2)]), False),
    "aq-tiers-list": (_aq(tiers=[[0]]), False),
    "aq-tier-past": (_aq(tiers=[(3,)]), False),
    "aq-tier-negative": (_aq(tiers=[(-1,)]), False),
    "aq-tier-bool": (_aq(tiers=[(False,)]), False),
    # add_quietly: the horizon's evictions (the plain window's reads are 25 h old by then)
    "aq-tiers-of-raises": (
        _evicting(_raise),
        Boom,
    ),
    "aq-tiers-of-stops": (
        _evicting(_stop),
        Stop,
    ),
    "aq-tiers-of-past": (
        _evicting(lambda c: (3,)),
        False,
    ),
    "aq-tiers-of-list": (
        _evicting(lambda c: [0]),
        False,
    ),
    "aq-tiers-of-none": (
        _evicting(None),
        TypeError,
    ),
    # one that does not fill tier_sets: the second look leaves it to Python
    "aq-tiers-of-forgets": (
        _evicting(lambda c: (0,)),
        False,
    ),
    "aq-tier-sets-unhashable": (
        _aq(win=plain(entries=deque([(T0 - 30 * HOUR, "C", 1, 1, [], 2)]))),
        TypeError,
    ),
    "aq-event-id-missing": (_aq(evs=[SimpleNamespace()]), False),
    "aq-event-id-raises": (_aq(evs=[type("E", (), {"event_id": property(_raise)})()]), False),
    "aq-event-id-stops": (_aq(evs=[type("E", (), {"event_id": property(_stop)})()]), Stop),
    "aq-chunks-none": (_aq(entries=[LATE_READ], tiers=[()], win=plain(chunks=Chunky())), AttributeError),
    "aq-chunks-live-tuple": (
        _aq(entries=[LATE_READ], tiers=[()], win=plain(chunks=odd_chunks(live=(0, 0)))),
        False,
    ),
    "aq-chunks-skip-3": (
        _aq(entries=[LATE_READ], tiers=[()], win=plain(chunks=odd_chunks(skip=[0, 0, 0]))),
        False,
    ),
    "aq-chunks-live-float": (
        _aq(entries=[LATE_READ], tiers=[()], win=plain(chunks=odd_chunks(live=[0.0, 0]))),
        False,
    ),
}


@pytest.mark.parametrize("case", ODD)
def test_odd_input_raises_or_falls_back(case: str) -> None:
    call, expected = ODD[case]
    if isinstance(expected, type):
        with pytest.raises(expected):
            call()
    else:
        assert call() is expected


UNCHANGED = [
    case
    for case, (call, expected) in ODD.items()
    if isinstance(call, Call)
    and isinstance(call.args[0], ActorWindow)
    and isinstance(call.args[0].tally, LegalTally)
    and expected is not True
    and case != "aq-chunks-none"  # no Chunks for `state` to show
]


@pytest.mark.parametrize("case", UNCHANGED)
def test_false_or_an_exception_changes_nothing(case: str) -> None:
    """The window of each add_quietly case of ODD is as it was, after False or an exception."""
    call, expected = ODD[case]
    args = copy.deepcopy(call.args)
    before = state(args[0])
    with contextlib.suppress(*([expected] if isinstance(expected, type) else [])):
        assert _window.add_quietly(*args) is False
    assert state(args[0]) == before


def test_a_tier_summed_past_int64_in_the_window_is_left_to_python() -> None:
    """2**23 times 2**40 - 1 records on top of 2**62 - 1: False, and the window as it was."""
    win = plain(totals=[2**62 - 1, 0, 0])
    before = state(win)
    read = [(READ_AT, "C9", 1, 2**40 - 1, ("property",), 2)]
    args = (_DET.window_ms, _DET.horizon_ms, {}, tiers_of)
    assert _window.add_quietly(win, [_ev()], read, [(0,) * 2**23], *args) is False
    assert state(win) == before
    assert _window.add_quietly(win, [_ev()], read, [(0,) * 2**21], *args) is True
    assert win.tally.totals == [2**62 - 1 + 2**21 * (2**40 - 1), 0, 0]


def test_after_tiers_of_the_window_is_read_again() -> None:
    """tiers_of (Python) ran since the window was read: what it changed is what the call sees."""
    det = detector()
    win, twin = plain(), plain()

    def tiers_of(cats: tuple) -> tuple:
        win.entries.append((T0 + 24 * HOUR, "C8", 7, 1, ("contact",), 2))  # as a late read would
        win.events.append((T0 + 24 * HOUR, "e8", True, True))
        win.tally.add(1, (1,))
        win.total += 7
        return det._tiers_of(cats)

    read = [LATE_READ]
    assert _window.add_quietly(
        win,
        [SimpleNamespace(event_id="x")],
        read,
        [()],
        det.window_ms,
        det.horizon_ms,
        det._tier_sets,
        tiers_of,
    )
    twin.entries.append((T0 + 24 * HOUR, "C8", 7, 1, ("contact",), 2))
    twin.events.append((T0 + 24 * HOUR, "e8", True, True))
    twin.tally.add(1, (1,))
    twin.total += 7
    det._add_quietly(twin, [SimpleNamespace(ts=read[0][0], event_id="x")], [read], [()])
    assert state(win) == state(twin)
    assert [e[1] for e in win.entries] == ["C8", "C9"]


# -- the cycle collector: tuples untracked only when nothing in them can hold a cycle ----------------
def test_untracked_tuples_hold_nothing_that_can_cycle() -> None:
    det = detector()

    class Id(str):
        pass

    class Held:
        pass

    win = ActorWindow(LegalTally(3))
    atomic, cyclic = Id("e-sub"), Held()
    cyclic.win = win  # event -> Held -> window -> events deque -> event: a cycle only gc frees
    evs = [SimpleNamespace(event_id="e1"), SimpleNamespace(event_id=atomic), SimpleNamespace(event_id=cyclic)]
    entries = [(T0 + i, f"C{i}", 1000, 1, ("property",), 2) for i in range(3)]
    assert add_quietly(det, win, evs, entries, [(0,)] * 3)
    plain_event, sub_event, cyclic_event = win.events
    assert not gc.is_tracked(plain_event)
    assert gc.is_tracked(sub_event) and gc.is_tracked(cyclic_event)  # a str subclass has a __dict__
    gone = weakref.ref(cyclic)
    del win, cyclic, evs, plain_event, sub_event, cyclic_event
    gc.collect()
    assert gone() is None
    # an entry whose rank or categories are not plain stays tracked too
    profiles = {(("a",), "view"): ("C2", ("property", Id("x")), [2], 1000, (0,))}
    (entry,), *_ = _window.reads([_ev()], profiles, 3)
    assert gc.is_tracked(entry)


# -- callbacks that change what the loops walk: in a child, whose freed memory is poisoned -----------
PRELUDE = (
    "from collections import deque\nfrom detectors import _window\n"
    "from detectors.bulk_query import ActorWindow\nfrom detectors.legal_tally import LegalTally\n"
)


MUTATING: dict[str, tuple[str, str]] = {
    # the profile's last reference goes with the lookup's key: an action whose __del__ empties profiles
    "reads-profile-freed": (
        """
        keep = []
        class A:
            def __hash__(self): return 7
            def __eq__(self, other): return True
            def __del__(self):
                profiles.clear(); gc.collect()
                keep.extend((str(i) * 3,) for i in range(200))
                keep.extend((i, i, i, str(i), (str(i),)) for i in range(200))
        class Ev:
            fields, row_count, subject_ids, ts = ["a"], 1, ["c"], 5
            @property
            def action(self): return A()
        profiles = {(("a",), A.__new__(A)): ("C1", ("".join(["q"] * 5),), 1, 1000, ())}
        entries, tiers, *sums = _window.reads([Ev()], profiles, 0)
        print(entries, tiers, sums)
        """,
        "[(5, 'c', 1000, 1, ('qqqqq',), 1)] [()] [1000, 1000, []]",
    ),
    # a ts property empties the batch mid-read: the read goes on with the event it holds
    "reads-batch-emptied": (
        """
        class Ev:
            fields, action, row_count = ["a"], "view", 1
            def __init__(self, cid): self.subject_ids = [cid]
            @property
            def ts(self):
                evs.clear(); gc.collect(); [Ev(str(i)) for i in range(50)]
                return 5
        evs = [Ev("".join(["C", "1"])), Ev("C2")]
        got = _window.reads(evs, {(("a",), "view"): ("C1", (), 1, 10, ())}, 0)
        print(got)
        """,
        "([(5, 'C1', 10, 1, (), 1)], [()], 10, 10, [])",
    ),
    # an event_id property empties every list of the batch: the call goes on with the batch as it was
    "add_quietly-batch-emptied": (
        """
        class Ev:
            @property
            def event_id(self):
                evs.clear(); entries.clear(); tiers.clear(); gc.collect()
                [("x" * i, i, (i,)) for i in range(100)]
                return "e"
        win = ActorWindow(LegalTally(1))
        evs, entries, tiers = [Ev(), Ev()], [(5, "".join(["C", "1"]), 1, 2, ("p",), 1), (6, "C2", 1, 3, (), 1)], [(0,), ()]
        print(_window.add_quietly(win, evs, entries, tiers, 10, 100, {}, lambda c: ()))
        print(list(win.entries), list(win.events), win.total, win.tally.totals)
        """,
        "True\n[(5, 'C1', 1, 2, ('p',), 1), (6, 'C2', 1, 3, (), 1)] "
        "[(5, 'e', True, True), (6, 'e', True, False)] 2 [2]",
    ),
    # tiers_of empties the window's deques while their items are being evicted
    "add_quietly-tiers-of-empties": (
        """
        win = ActorWindow(LegalTally(1))
        for t in range(3):
            win.entries.append((t, "C" + str(t), 1, 1, ("p" + str(t),), 1)); win.events.append((t, "e", True, True))
        win.total, win.last_ts, win.tally.totals = 3, 2, [3]
        cache = {}
        def tiers_of(cats):
            win.entries.clear(); win.events.clear(); gc.collect(); [(i, str(i)) for i in range(100)]
            cache[cats] = (0,)
            return (0,)
        print(_window.add_quietly(win, [type("E", (), {"event_id": "x"})()], [(500, "C9", 1, 1, (), 1)], [()], 10, 100, cache, tiers_of))
        print(list(win.entries), list(win.events), win.role, win.total, win.tally.totals)
        """,
        "True\n[(500, 'C9', 1, 1, (), 1)] [(500, 'x', True, False)] 0 4 [3]",
    ),
    # an evicted event's id whose __del__ changes the window: it runs once the window is whole
    "add_quietly-evicted-del": (
        """
        class Id:
            def __del__(self): win.events.appendleft((-1, "del", True, True)); win.total += 100
        win = ActorWindow(LegalTally(1))
        win.events.append((0, Id(), True, True)); win.last_ts = 0
        print(_window.add_quietly(win, [type("E", (), {"event_id": "x"})()], [(500, "C9", 1, 1, (), 1)], [()], 10, 100, {}, lambda c: ()))
        print(list(win.events), win.total)
        """,
        "True\n[(-1, 'del', True, True), (500, 'x', True, False)] 101",
    ),
}


@pytest.mark.parametrize("case", MUTATING)
def test_a_callback_changing_what_is_walked_is_no_crash(case: str) -> None:
    no_crash(PRELUDE, *MUTATING[case])


# -- no leak of objects or references over many calls -------------------------------------------------


def test_a_long_run_keeps_its_memory_and_references() -> None:
    """A window sliding for many days of reads (each evicting one from the role window and one
    from the law's horizon, tiers_of called now and then): its size and every shared object's
    references stay as they were."""
    det = detector()
    evs = [access(T0, ["C1"], fields) for fields in FIELD_SETS[:3]]
    for ev in evs:
        det._entries(ev, CTX)
    shared = [
        *det._profiles.values(),
        *(p[1] for p in det._profiles.values()),
        *(p[4] for p in det._profiles.values()),
    ]
    win, clock = ActorWindow(LegalTally(3)), [T0]

    def step() -> None:
        clock[0] += 2 * HOUR
        batch = [access(clock[0] + i, [f"C{clock[0] % 97}"], FIELD_SETS[i]) for i in range(3)]
        got = _window.reads(batch, det._profiles, 3)
        assert got is not None
        if clock[0] % 7 == 0:
            det._tier_sets.clear()
        assert add_quietly(det, win, batch, got[0], got[1])
        win.chunks.seal((win.entries, win.events))

    for _ in range(50):  # a full window: 12 entries per categories tuple
        step()
    gc.collect()
    refs = [sys.getrefcount(o) for o in shared]
    assert blocks_grown(step, 20_000) < 2_000
    assert len(win.entries) == 36 and win.role == 33 and win.tally.totals == [12, 12, 12]
    gc.collect()
    assert [sys.getrefcount(o) for o in shared] == refs


def test_the_error_paths_leak_nothing() -> None:
    """Each odd input of ODD, five hundred times over fresh copies: no path out leaves an object."""
    slow = ("rd-too-many",)  # its big list makes the blocks move on their own
    assert leaks({case: odd for case, odd in ODD.items() if case not in slow}, 500) == {}
