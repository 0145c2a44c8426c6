"""The duplicates window in C (streams/_ids.c) against its contract: it answers as a plain Python
window of the newest ids does, its digest is SipHash-2-4's, it raises a clear Python exception on odd
input, survives an event whose id is computed by Python code that changes the batch, holds a full
window of 200 000 ids in a quarter of a dict's memory, and leaks nothing over many calls."""

from __future__ import annotations

import copy
import os
import random
import tracemalloc
from collections import OrderedDict
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from native import PROPERTY, ROOT, blocks_grown, leaks, no_crash

from streams._ids import IdWindow, digest

KEY = bytes(range(16))


def test_the_module_is_the_worktrees() -> None:
    import streams._ids

    assert Path(streams._ids.__file__).resolve().is_relative_to(ROOT)


# -- plain-Python references ---------------------------------------------------------------------
class RefWindow:
    """The newest `capacity` ids, first seen first out."""

    def __init__(self, capacity: int):
        self.capacity, self.ids, self.fresh = capacity, OrderedDict[str, None](), []

    def first(self, decoded: list, ids: list | None = None) -> tuple[list, int]:
        kept, duplicates = [], 0
        for i, pair in enumerate(decoded):
            key = f"{pair[1].event_id}\x1f{pair[1].ts}" if ids is None else ids[i]
            if key in self.ids:
                duplicates += 1
                continue
            self.ids[key] = None
            if len(self.ids) > self.capacity:
                self.ids.popitem(last=False)
            self.fresh.append(key)
            kept.append(pair)
        return kept, duplicates

    def take_fresh(self) -> list:
        taken, self.fresh = self.fresh[-self.capacity :], []
        return taken


def ref_siphash128(key: bytes, data: bytes) -> bytes:
    """SipHash-2-4 with its 128-bit output, as the reference implementation computes it."""
    mask = (1 << 64) - 1

    def rotl(x: int, b: int) -> int:
        return ((x << b) | (x >> (64 - b))) & mask

    def rounds(v: list[int], n: int) -> None:
        for _ in range(n):
            v[0] = (v[0] + v[1]) & mask
            v[1] = rotl(v[1], 13) ^ v[0]
            v[0] = rotl(v[0], 32)
            v[2] = (v[2] + v[3]) & mask
            v[3] = rotl(v[3], 16) ^ v[2]
            v[0] = (v[0] + v[3]) & mask
            v[3] = rotl(v[3], 21) ^ v[0]
            v[2] = (v[2] + v[1]) & mask
            v[1] = rotl(v[1], 17) ^ v[2]
            v[2] = rotl(v[2], 32)

    k0, k1 = int.from_bytes(key[:8], "little"), int.from_bytes(key[8:], "little")
    v = [
        0x736F6D6570736575 ^ k0,
        0x646F72616E646F6D ^ k1 ^ 0xEE,
        0x6C7967656E657261 ^ k0,
        0x7465646279746573 ^ k1,
    ]
    whole = len(data) - len(data) % 8
    for at in range(0, whole, 8):
        m = int.from_bytes(data[at : at + 8], "little")
        v[3] ^= m
        rounds(v, 2)
        v[0] ^= m
    b = (len(data) << 56) & mask | int.from_bytes(data[whole:], "little")
    v[3] ^= b
    rounds(v, 2)
    v[0] ^= b
    v[2] ^= 0xEE
    rounds(v, 4)
    out = (v[0] ^ v[1] ^ v[2] ^ v[3]).to_bytes(8, "little")
    v[1] ^= 0xDD
    rounds(v, 4)
    return out + (v[0] ^ v[1] ^ v[2] ^ v[3]).to_bytes(8, "little")


def events(names: list[tuple[str, int]]) -> list[tuple[int, Any]]:
    return [(n, SimpleNamespace(event_id=e, ts=t)) for n, (e, t) in enumerate(names)]


# -- the digest --------------------------------------------------------------------------------------
def test_the_digest_is_siphash_2_4_128() -> None:
    # the reference's first test vector (key 00..0f, empty message): vectors_sip128[0]
    assert digest(KEY, b"").hex() == "a3817f04ba25a8e66df67214c7550293"
    assert ref_siphash128(KEY, b"") == digest(KEY, b"")


@PROPERTY
@given(key=st.binary(min_size=16, max_size=16), data=st.binary(max_size=40))
def test_the_digest_is_the_python_reference(key: bytes, data: bytes) -> None:
    assert digest(key, data) == ref_siphash128(key, data)


# -- the window --------------------------------------------------------------------------------------
@PROPERTY
@given(
    names=st.lists(
        # times of every kind the key writes: an epoch in ms, negative, past 64 bits, an int subclass
        st.tuples(
            st.sampled_from(["a", "b", "c", "é", "客户", "𝒜", "\ud800"]),
            st.sampled_from([1, 2, 0, -7, 1767223609497, 2**63 - 1, -(2**63), 2**63, 2**70, True]),
        ),
        max_size=30,
    ),
    capacity=st.integers(min_value=1, max_value=6),
    keyed=st.booleans(),
    batch=st.integers(min_value=1, max_value=7),
)
def test_the_window_is_the_python_window(names: list, capacity: int, keyed: bool, batch: int) -> None:
    """Batch by batch the same kept pairs, the same count left out and the same fresh ids as a
    window of the newest `capacity` ids: an id that left is new again."""
    window, ref = IdWindow(capacity, KEY), RefWindow(capacity)
    decoded = events(names)
    for at in range(0, len(decoded), batch):
        part = decoded[at : at + batch]
        ids = [f"{ev.event_id}|k" for _, ev in part] if keyed else None
        assert window.first(list(part), ids) == ref.first(list(part), ids)
        assert len(window) == len(ref.ids)
        if at % 2:
            assert window.take_fresh() == ref.take_fresh()
    fresh, expected = window.take_fresh(), ref.take_fresh()
    # the same strings, canonical too: an ASCII key that is no ASCII str compares equal, but its
    # isascii() and encodings read otherwise
    assert fresh == expected and list(map(str.isascii, fresh)) == list(map(str.isascii, expected))
    assert all(key in window for key in ref.ids)


def test_a_long_run_through_a_crowded_table_is_the_python_window() -> None:
    """Thousands of ids leaving a table about half full: each departure moves the ids that probed
    past it back (backward-shift deletion), and every answer stays the plain window's."""
    rng = random.Random(7)
    window, ref = IdWindow(1_000, os.urandom(16)), RefWindow(1_000)
    for _ in range(40):
        part = events([(f"e{rng.randrange(3_000)}", 1) for _ in range(500)])
        assert window.first(list(part)) == ref.first(list(part))
    assert len(window) == 1_000 and all(key in window for key in ref.ids)
    assert sum(f"e{i}\x1f1" in window for i in range(3_000)) == 1_000


def test_saved_ids_are_held_and_not_taken_again() -> None:
    window = IdWindow(3, KEY)
    window.add_saved(["a\x1f1", "b\x1f1"])
    kept, dropped = window.first(events([("a", 1), ("c", 1), ("d", 1)]))
    assert ([ev.event_id for _, ev in kept], dropped) == (["c", "d"], 1)
    assert window.take_fresh() == ["c\x1f1", "d\x1f1"] and window.take_fresh() == []
    # the window keeps the newest three: "a" left when "d" came
    assert "a\x1f1" not in window and "b\x1f1" in window


def test_fresh_ids_between_checkpoints_are_the_newest_capacity() -> None:
    window = IdWindow(4, KEY)
    for i in range(20):
        window.first(events([(f"e{i}", 1)]))
    assert window.take_fresh() == [f"e{i}\x1f1" for i in range(16, 20)]


def test_a_full_window_costs_a_quarter_of_a_dicts_memory() -> None:
    """200 000 ids (the engine's DEDUP_IDS_PER_TOPIC_PARTITION) as the engine keeps them: the
    window's ring and table, after a checkpoint took the strings. A dict of the strings, the
    window before, held 21 MB (tracemalloc traces PyMem, where the window allocates)."""
    ids = [f"{i:08x}-2c6e-4f0b-9d1e-5a7b3c9e1f20\x1f17646{i:08d}" for i in range(200_000)]
    pairs = [(0, None)] * len(ids)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        window = IdWindow(200_000, KEY)
        window.first(pairs, ids)
        window.take_fresh()
        window_bytes = tracemalloc.get_traced_memory()[0] - before
        before = tracemalloc.get_traced_memory()[0]
        as_dict = dict.fromkeys(ids)
        dict_bytes = tracemalloc.get_traced_memory()[0] - before + sum(map(len, ids)) + 49 * len(ids)
    finally:
        tracemalloc.stop()
    assert len(window) == len(as_dict) == 200_000
    assert window_bytes < 6 << 20
    assert window_bytes * 4 < dict_bytes


# -- odd input and callbacks ---------------------------------------------------------------------------
def _first(*given: Any) -> Any:
    return lambda: IdWindow(4, KEY).first(*copy.deepcopy(given))


ODD: dict[str, tuple[Any, Any]] = {
    "new-no-args": (lambda: IdWindow(), TypeError),
    "new-zero": (lambda: IdWindow(0, KEY), ValueError),
    "new-too-big": (lambda: IdWindow(2**31, KEY), ValueError),
    "new-short-key": (lambda: IdWindow(4, b"k"), ValueError),
    "new-str-key": (lambda: IdWindow(4, "k" * 16), TypeError),
    "first-no-args": (lambda: IdWindow(4, KEY).first(), TypeError),
    "first-three-args": (_first([], None, None), TypeError),
    "first-decoded-tuple": (_first(()), TypeError),
    "first-ids-short": (_first([(1, 2)], []), TypeError),
    "first-ids-tuple": (_first([(1, 2)], ("a",)), TypeError),
    "first-not-a-pair": (_first([(1, 2, 3)]), TypeError),
    "first-a-list-pair": (_first([[1, SimpleNamespace(event_id="a", ts=1)]]), TypeError),
    "first-no-event-id": (_first([(1, SimpleNamespace(ts=1))]), AttributeError),
    "first-no-ts": (_first([(1, SimpleNamespace(event_id="a"))]), AttributeError),
    "first-id-not-str": (_first([(1, 2)], [b"a"]), TypeError),
    "add-saved-int": (lambda: IdWindow(4, KEY).add_saved(3), TypeError),
    "add-saved-not-str": (lambda: IdWindow(4, KEY).add_saved([1]), TypeError),
    "digest-short-key": (lambda: digest(b"k", b""), ValueError),
}


@pytest.mark.parametrize("case", ODD)
def test_odd_input_is_a_clear_error(case: str) -> None:
    call, expected = ODD[case]
    with pytest.raises(expected):
        call()


def test_an_event_id_property_emptying_the_batch_is_no_crash() -> None:
    no_crash(
        "from streams._ids import IdWindow\n",
        """
        class Ev:
            ts = 1
            @property
            def event_id(self):
                decoded.clear(); gc.collect()
                return "e1"
        decoded = [("raw", Ev()), ("raw2", Ev())]
        kept, dropped = IdWindow(4, bytes(16)).first(decoded)
        print([raw for raw, _ in kept], dropped)
        """,
        "['raw'] 0",
    )


def test_any_str_is_an_id_and_equal_bytes_of_two_widths_are_two() -> None:
    """A lone surrogate (a producer's broken escape) is an id like any other, not an error that
    stops the batch; "\u0100" and "\x00\x01" hold the same two bytes in their strings."""
    window = IdWindow(8, KEY)
    ids = ["\ud800", "\u0100", "\x00\x01", "𝒜", "\ud800"]
    kept, dropped = window.first([(i, None) for i in range(5)], ids)
    assert ([i for i, _ in kept], dropped) == ([0, 1, 2, 3], 1)


def test_an_id_whose_del_changes_the_batch_is_no_crash() -> None:
    """A review's: the window kept a str subclass's id itself, and trimming its fresh ids ran the
    id's __del__ mid-loop, which emptied `ids` while the loop read past its end. The window keeps
    plain copies, and checks the lists' sizes at each id."""
    no_crash(
        "from streams._ids import IdWindow\n",
        """
        decoded, ids = [], []
        class Id(str):
            def __del__(self):
                ids.clear()
        w = IdWindow(4, bytes(16))
        w.first([(i, None) for i in range(5)], [Id(f"old{i}") for i in range(5)])
        decoded = [(i, None) for i in range(8)]
        ids = [f"new{i}" for i in range(8)]
        kept, dropped = w.first(decoded, ids)
        print(len(kept), dropped, [type(t).__name__ for t in w.take_fresh()])
        """,
        "8 0 ['str', 'str', 'str', 'str']",
    )


def test_a_window_that_keeps_nothing_fresh_takes_nothing() -> None:
    window = IdWindow(4, KEY, keeps_fresh=False)
    assert window.first(events([("a", 1), ("a", 1), ("b", 1)]))[1] == 1
    assert window.take_fresh() == [] and "b\x1f1" in window


def test_a_long_run_and_the_error_paths_leak_nothing() -> None:
    window = IdWindow(50, KEY)
    n = [0]

    def step() -> None:
        n[0] += 1
        ev = SimpleNamespace(event_id=f"e{n[0]}", ts=n[0])
        kept, _ = window.first([(n[0], ev), (n[0], ev)], [f"k{n[0]}", f"k{n[0]}"])
        assert len(kept) == 1
        window.first([(n[0], ev)])
        if n[0] % 10 == 0:
            window.take_fresh()

    assert blocks_grown(step, 100_000) < 2_000
    assert leaks(ODD, 1_000) == {}
