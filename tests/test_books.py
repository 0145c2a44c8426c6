"""A post's books (detectors/books.py): the customers it read as its own work travel with its
state, a bucket at a time, and a restore decides as the uninterrupted run does."""

from __future__ import annotations

import orjson
from conftest import fed, refs
from test_qa_access_cases import HOUR, OPEN, _ent, book, ids, spread

from detectors import load_detectors
from detectors.books import BUCKETS
from streams.alerts import latest
from streams.engine import Engine
from streams.pseudonym import Pseudonymizer

# a wealth manager's holdings reads of her own customers: her book's measure is 120 a day
DAY = {"fields": ("customer_name", "assets"), "purpose": "wealth_advice"}


def engine(policy, catalog, *actors: str) -> Engine:
    """bulk_query, its wealth managers (`actors`, or w1) of sub-branch S0101 and its customers."""
    spec = next(s for s in load_detectors(policy) if s.kind == "bulk_query")
    e = Engine([spec], catalog, pseudonymize=Pseudonymizer(b"unit-test-key-0123456789"))
    ents = [_ent(a, "wealth_manager", "S0101") for a in actors or ("w1",)]
    e.apply_reference("entitlements", refs("entitlements", ents))
    e.apply_reference("customers", refs("customers", book(2000)))
    return e


def feed(e: Engine, events: list, offset: int) -> list:
    return e.process("access", "t", 0, fed("access", events, "t", offset)) + e.advance()


def books_of(e: Engine) -> dict:
    win = e.tasks[(0, "bulk_query")].detector._window("w1")
    return {bid: {c: t for bucket in b.buckets for c, t in bucket.items()} for bid, b in win.books.items()}


def test_a_restored_book_decides_as_the_uninterrupted_one(policy, catalog) -> None:
    """100 of her customers in the morning, a restart from the changelog, then 70 more in the
    afternoon: the 50 past the day's 120 count as anyone's, an art. 5 alert, as without the restart."""
    morning = spread("w1", ids("A", 100), OPEN, OPEN + 4 * HOUR, **DAY)
    afternoon = spread("w1", ids("A", 70, 100), OPEN + 5 * HOUR, OPEN + 9 * HOUR, **DAY)
    whole = engine(policy, catalog)
    uninterrupted = feed(whole, morning, 0) + feed(whole, afternoon, 100) + whole.drain()
    before = engine(policy, catalog)
    first = feed(before, morning, 0)
    restored = engine(policy, catalog)
    restored.restore(0, before.changes(0))
    assert books_of(restored) == books_of(before) and len(next(iter(books_of(before).values()))) == 100
    after = first + feed(restored, afternoon, 100) + restored.drain()
    assert latest(after) == latest(uninterrupted)
    assert [a for a in latest(after) if "reached 50 (" in a.summary], "the day's measure was never passed"


def test_a_checkpoint_after_one_read_writes_a_bucket_of_the_book_not_the_book(policy, catalog) -> None:
    """A book of 110 customers (under the day's 120), then one read: the checkpoint writes the
    bucket the read changed; the window's value names its book's buckets, not its customers."""
    e = engine(policy, catalog)
    feed(e, spread("w1", ids("A", 110), OPEN, OPEN + 8 * HOUR, **DAY), 0)
    e.changes(0)
    feed(e, spread("w1", ["A0500"], OPEN + 8 * HOUR + 60_000, OPEN + 9 * HOUR, **DAY), 200)
    changed = [(k.decode(errors="replace"), v) for k, v in e.changes(0) if k.startswith(b"bulk_query")]
    customers = set(next(iter(books_of(e).values())))
    written = {c for _, v in changed for c in customers if v and c.encode() in v}
    buckets = [orjson.loads(v) for k, v in changed if k.startswith("bulk_query\x1fk:")]
    assert len(buckets) == 1 and len(buckets[0]) // 2 < 2 * 111 // BUCKETS, buckets
    # the rest is the window's unsealed tail of reads, never the book
    assert len(written) < 111 // 4, len(written)


def test_a_book_an_earlier_lifemon_kept_in_the_window_moves_to_buckets(policy, catalog) -> None:
    """A window stored before the buckets held its book whole: read, the book is the same, written
    to its buckets, and a restore from the changelog after it has it."""
    from detectors.bulk_query import WINDOW, ActorWindow

    e = engine(policy, catalog)
    feed(e, spread("w1", ids("A", 60), OPEN, OPEN + 4 * HOUR, **DAY), 0)
    held = books_of(e)
    detector = e.tasks[(0, "bulk_query")].detector
    old = detector._window("w1").to_json() | {"books": held}
    for key in [k for k, _ in detector.store.items("k:")]:
        detector.store.delete(key)
    detector.store.put(WINDOW + "w1", ActorWindow.from_json(orjson.loads(orjson.dumps(old))))
    assert books_of(e) == held
    restored = engine(policy, catalog)
    restored.restore(0, e.changes(0))
    assert books_of(restored) == held


def test_a_forgotten_window_leaves_no_bucket_behind(policy, catalog) -> None:
    """A day after her last read the window is forgotten, and its book's buckets with it."""
    e = engine(policy, catalog)
    feed(e, spread("w1", ids("A", 60), OPEN, OPEN + 4 * HOUR, **DAY), 0)
    keys = e.tasks[(0, "bulk_query")].keys
    assert [k for k, _ in keys.items() if k.startswith("k:")]
    feed(e, spread("w2", ids("A", 1, 900), OPEN + 3 * 24 * HOUR, OPEN + 3 * 24 * HOUR, **DAY), 100)
    e.advance(final=True)
    assert not [k for k, _ in keys.items() if k.startswith("k:")]


def test_a_window_read_back_with_its_book_is_no_change_to_write(policy, catalog) -> None:
    """Restored, a window read (its book's buckets with it) and not changed writes nothing at the
    next checkpoint: a timer that only waits again must not rewrite the employee's state."""
    e = engine(policy, catalog)
    feed(e, spread("w1", ids("A", 60), OPEN, OPEN + 4 * HOUR, **DAY), 0)
    restored = engine(policy, catalog)
    restored.restore(0, e.changes(0))
    assert len(next(iter(books_of(restored).values()))) == 60  # read whole, from its buckets
    assert [k for k, _ in restored.changes(0) if k.startswith(b"bulk_query")] == []
