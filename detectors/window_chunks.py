"""The older part of a bulk_query window, kept in the store as sealed chunks.

An active employee's window holds a day of accesses (the law's 24 h count). Kept as one value, all
of it was encoded, stored and sent to the changelog at every checkpoint the employee read anything:
a checkpoint's cost followed the size of the state, not what changed (benchmarks/checkpoint_bytes.py
measured 6.7 kB of changelog per event with a checkpoint every 100 events). Now the window's value
holds only its newest items; every CHUNK items are sealed into a key of their own, written once and
deleted once the window has evicted all of it.

The window's two deques (entries and events) are sealed together: a chunk is their items from the
last seal on, CHUNK of the one that filled first and what the other has gained meanwhile. The rare
access that arrives out of order and lands inside the sealed part breaks the seal: the window is
then stored whole, its chunks deleted, and sealed again from the start.
"""

from __future__ import annotations

from collections import deque
from itertools import islice
from typing import Any

# items per sealed chunk: the window's own value holds up to CHUNK - 1 of each deque, written at every
# checkpoint the employee read anything, and one [seq, entries, events] per chunk. Measured (benchmarks/
# checkpoint_bytes.py, a checkpoint every 100 events): 64 wrote 1 998 bytes per event, 32 1 141, 16 704;
# again at the forty-third stop, with the books and day measures since added: 32 1 357, 16 1 016, 8 851
# (8 doubles the chunk list a busy employee's value carries for a sixth less)
CHUNK = 16


def chunk_key(actor: str, seq: int) -> str:
    """Unique per (actor, seq): the actor is everything between the prefix and the last '#'."""
    return f"c:{actor}#{seq}"


def _items(d: deque[Any], start: int, stop: int) -> list[Any]:
    """`d[start:stop]`, walked from the nearer end: the items sealed or stored are a window's newest,
    behind up to a day of older ones (islice from the front walked all of those at every seal)."""
    n = len(d)
    stop = min(stop, n)
    if start >= stop:
        return []
    if n - start < start:
        return list(islice(reversed(d), n - stop, n - start))[::-1]
    return list(islice(d, start, stop))


class Chunks:
    """Which of a window's items are sealed, and in which keys. Index 0 is the entries deque, 1 the
    events deque."""

    __slots__ = ("sealed", "skip", "live", "stale", "next", "broken")

    def __init__(self) -> None:
        self.sealed: list[list[int]] = []  # [seq, entries, events] per chunk, oldest first
        self.skip = [0, 0]  # items of the oldest chunks the window has evicted since sealing them
        self.live = [0, 0]  # sealed items still in each deque: its first `live[i]`
        self.stale: list[int] = []  # chunks no longer part of the window, deleted at the next seal
        self.next = 0  # seq of the next chunk
        self.broken = False  # an item was inserted among the sealed ones

    def popped(self, which: int, n: int) -> None:
        """`n` items left deque `which` from its front (evicted). detectors/_window.c's add_quietly
        does the same on `live` and `skip` for the reads it adds."""
        gone = min(n, self.live[which])
        self.live[which] -= gone
        self.skip[which] += gone

    def inserted(self, which: int, at: int) -> None:
        """An item went into deque `which` at index `at`."""
        if at < self.live[which]:
            self.broken = True

    def due(self, entries: deque[Any], events: deque[Any]) -> bool:
        """Whether `seal` has anything to put or delete: a chunk filled, a stale or evicted one to
        delete, or the seal broken. Most batches of an employee's reads fill no chunk."""
        live, sealed = self.live, self.sealed
        return (
            len(entries) - live[0] >= CHUNK
            or len(events) - live[1] >= CHUNK
            or self.broken
            or bool(self.stale)
            or bool(sealed and self.skip[0] >= sealed[0][1] and self.skip[1] >= sealed[0][2])
        )

    def seal(
        self, deques: tuple[deque[Any], deque[Any]]
    ) -> tuple[list[tuple[int, list[list[Any]]]], list[int]]:
        """(chunks to put: [(seq, [entries, events])], seqs to delete) to bring the store in line."""
        deletes, self.stale = self.stale, []
        if self.broken:
            deletes += [c[0] for c in self.sealed]
            self.sealed, self.skip, self.live, self.broken = [], [0, 0], [0, 0], False
        while self.sealed and self.skip[0] >= self.sealed[0][1] and self.skip[1] >= self.sealed[0][2]:
            seq, n_entries, n_events = self.sealed.pop(0)
            self.skip = [self.skip[0] - n_entries, self.skip[1] - n_events]
            deletes.append(seq)
        puts = []
        entries, events = deques
        live = self.live
        while len(entries) - live[0] >= CHUNK or len(events) - live[1] >= CHUNK:
            parts = [_items(entries, live[0], live[0] + CHUNK), _items(events, live[1], live[1] + CHUNK)]
            puts.append((self.next, parts))
            self.sealed.append([self.next, len(parts[0]), len(parts[1])])
            live = self.live = [live[0] + len(parts[0]), live[1] + len(parts[1])]
            self.next += 1
        return puts, deletes

    def tails(self, deques: tuple[deque[Any], deque[Any]]) -> list[list[Any]]:
        """The items the window's own value holds: all of them while the seal is broken."""
        if self.broken:
            return [list(d) for d in deques]
        return [_items(d, live, len(d)) for d, live in zip(deques, self.live, strict=True)]

    def all_keys(self) -> list[int]:
        """Every chunk this window has in the store (to delete it with the window)."""
        return [c[0] for c in self.sealed] + self.stale

    def to_json(self) -> dict[str, Any]:
        if self.broken:  # stored whole: the old chunks are stale from now on
            return {"sealed": [], "skip": [0, 0], "stale": self.all_keys(), "next": self.next}
        return {"sealed": self.sealed, "skip": self.skip, "stale": self.stale, "next": self.next}

    @classmethod
    def from_json(cls, d: dict[str, Any] | None) -> Chunks:
        chunks = cls()
        if d:
            chunks.sealed, chunks.skip = [list(c) for c in d["sealed"]], list(d["skip"])
            chunks.stale, chunks.next = list(d["stale"]), d["next"]
        return chunks

    def fill(self, deques: tuple[deque[Any], deque[Any]], items: tuple[list[Any], list[Any]]) -> None:
        """Put the sealed items (every chunk's, oldest first) in front of the deques, which hold the
        window's own items, less what the window evicted since."""
        for which, (d, found) in enumerate(zip(deques, items, strict=True)):
            kept = found[self.skip[which] :]
            d.extendleft(reversed(kept))
            self.live[which] = len(kept)
