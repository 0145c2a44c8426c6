"""The forty-fourth stop's state shapes (a post's books in buckets, packed inbox blocks with their
released mark, incident members as keys of their own) through restores at every checkpoint and
caches too small to hold a batch's keys: the alerts and incidents of a run never interrupted, and
nothing left behind (a reviewer's probes)."""

from __future__ import annotations

import orjson
from conftest import fed
from test_books import DAY, engine, feed
from test_qa_access_cases import HOUR, OPEN, ids, spread

from streams.engine import Engine
from streams.keyed_state import state_encode


def engine2(policy, catalog) -> Engine:
    return engine(policy, catalog, "w:w1", "w1")


def books_of(e: Engine, actor: str) -> dict:
    win = e.tasks[(0, "bulk_query")].detector._window(actor)
    return {bid: {c: t for bucket in b.buckets for c, t in bucket.items()} for bid, b in win.books.items()}


def test_a_legacy_window_of_employee_w_colon_moved_aside_keeps_its_book(policy, catalog) -> None:
    """An earlier lifemon kept employee "w:w1"'s window under the bare key "w:w1" (books inside).
    Reading employee "w1" moves it to "w:w:w1" without loading it; a checkpoint, then a restore:
    the book must still be there."""
    from detectors.bulk_query import ActorWindow

    e = engine2(policy, catalog)
    feed(e, spread("w:w1", ids("A", 60), OPEN, OPEN + 4 * HOUR, **DAY), 0)
    held = books_of(e, "w:w1")
    assert held and len(next(iter(held.values()))) == 60
    det = e.tasks[(0, "bulk_query")].detector
    win = det._window("w:w1")
    d = orjson.loads(state_encode(win))
    d["entries"] = orjson.loads(state_encode(list(win.entries)))
    d["events"] = orjson.loads(state_encode(list(win.events)))
    del d["chunks"]  # legacy: an earlier lifemon's window, no chunks, book inside
    d["books"] = held
    for key in [k for k, _ in det.store.items()]:
        det.store.delete(key)
    det.store.put("w:w1", ActorWindow.from_json(d))  # the bare id "w:w1" == WINDOW + "w1"
    e.changes(0)
    assert det._window("w1") is None  # employee w1 reads first: w:w1's window moves aside
    restored = engine2(policy, catalog)
    restored.restore(0, e.changes(0))
    assert books_of(restored, "w:w1") == held


def test_incidents_restore_after_every_event_with_a_tiny_cache_and_forget_leaves_no_member(
    policy, catalog
) -> None:
    from test_incidents import HOUR as IH
    from test_incidents import T0, incident_engine, traffic, transfer

    def make(cache: int | None) -> Engine:
        e = incident_engine(policy, catalog)
        if cache:
            e.store(0).cache_size = cache
        return e

    events = traffic() + [transfer(98, T0 + 10 * 24 * IH)]  # past keep_days: the incidents are forgotten

    def go(e: Engine, evs, off: int) -> None:
        e.process("transfer", "pfi.transfer", 0, fed("transfer", evs, "pfi.transfer", off))
        e.advance()

    whole = make(None)
    go(whole, events, 0)
    whole.drain()
    expect = {i.incident_id: i for i in whole.take_incidents()}
    for cache in (3,):
        e, log, got = make(cache), [], {}
        for i, ev in enumerate(events):
            go(e, [ev], i)
            for inc in e.take_incidents():
                got[inc.incident_id] = inc
            log += e.changes(0)
            if i % 3 == 0:  # a restart every third checkpoint: an engine a restart costs a second
                e = make(cache)
                e.restore(0, log)
        e.drain()
        for inc in e.take_incidents():
            got[inc.incident_id] = inc
        assert got == expect, cache
        ns = b"~incidents\x1fi:"
        left = {}
        for k, v in log:
            if k.startswith(ns):
                left[k] = v
        live = {k: v for k, v in left.items() if v is not None}
        members = [k for k in live if b"\x1f" in k[len(ns) :]]
        assert not members, members[:3]


def test_inbox_restore_after_every_batch_with_a_tiny_cache(policy, catalog) -> None:
    import random

    from conftest import access
    from test_unauthorized_lookup import HOUR as UH
    from test_unauthorized_lookup import NIGHT_SHIFT, late_engine

    from streams.alerts import latest

    rng = random.Random(7)
    evs = access("e1", customers=30, first_customer=20, start=10 * UH, every_s=7) + access(
        "e2", customers=30, first_customer=15, start=10 * UH + 3000, every_s=11
    )
    evs.sort(key=lambda ev: ev.ts + rng.randint(0, 40_000))  # out of order within the minute's lateness
    evs += access("e2", customers=1, start=14 * UH)
    batches, i = [], 0
    while i < len(evs):
        n = rng.randint(1, 5)
        batches.append((i, evs[i : i + n]))
        i += n

    def make(cache):
        e = late_engine(policy, catalog, NIGHT_SHIFT)
        if cache:
            e.store(0).cache_size = cache
        return e

    def go(e, off, b):
        return e.process("access", "t", 0, fed("access", b, "t", off)) + e.advance()

    whole = make(None)
    expect = [a for off, b in batches for a in go(whole, off, b)] + whole.drain()
    want = {
        a.alert_id: (a.status.value, a.counts.get("accesses"), a.evidence_event_ids) for a in latest(expect)
    }
    assert want
    for cache, restart_every in ((4, 1),):
        e, log, found = make(cache), [], []
        for j, (off, b) in enumerate(batches):
            found += go(e, off, b)
            log += e.changes(0)
            if j % restart_every == 0:
                e = make(cache)
                e.restore(0, log)
        found += e.drain()
        got = {
            a.alert_id: (a.status.value, a.counts.get("accesses"), a.evidence_event_ids)
            for a in latest(found)
        }
        assert got == want, (cache, restart_every)


def test_books_restore_after_every_batch_with_a_tiny_cache(policy, catalog) -> None:

    from streams.alerts import latest

    morning = spread("w1", ids("A", 100), OPEN, OPEN + 4 * HOUR, **DAY)
    afternoon = spread("w1", ids("A", 70, 100), OPEN + 5 * HOUR, OPEN + 9 * HOUR, **DAY)
    nextday = spread("w1", ids("A", 130, 20), OPEN + 30 * HOUR, OPEN + 33 * HOUR, **DAY)
    evs = morning + afternoon + nextday
    whole = engine(policy, catalog)
    want = latest(
        [a for off in range(0, len(evs), 19) for a in feed(whole, evs[off : off + 19], off)] + whole.drain()
    )
    assert want
    for cache in (5,):
        e, log, found = engine(policy, catalog), [], []
        if cache:
            e.store(0).cache_size = cache
        for off in range(0, len(evs), 19):
            found += feed(e, evs[off : off + 19], off)
            log += e.changes(0)
            e = engine(policy, catalog)
            e.restore(0, log)
            if cache:
                e.store(0).cache_size = cache
        found += e.drain()
        g = [(a.alert_id, a.revision, a.summary[:300]) for a in latest(found)]
        w = [(a.alert_id, a.revision, a.summary[:300]) for a in want]
        assert g == w, cache
