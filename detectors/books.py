"""A post's books (`ActorWindow.own_read`): the customers it read as its own work, each with its
last such read, stored in buckets of their own by a hash of the customer. A checkpoint writes the
buckets a batch's reads changed, not the book: a teller's book of a day's customers, rewritten
whole at every checkpoint that touched her, was a fifth of bulk_query's changelog at live rates."""

from __future__ import annotations

import zlib
from typing import Any

from detectors.base import DAY_MS

BUCKETS = 16  # a read rewrites 1/16 of its book; a restore reads 16 keys a book at most


def book_key(actor: str, book: str, bucket: int) -> str:
    """Unique per (actor, book, bucket): a book id (a policy permission set's) holds no \\x1f, so
    the actor is everything after the first."""
    return f"k:{bucket}:{book}\x1f{actor}"


def _bucket(cid: str) -> int:
    # stable across processes, as the keys must be (str hashes are salted per process)
    return zlib.crc32(cid.encode()) & (BUCKETS - 1)


def buckets_of(mask: int) -> list[int]:
    """The bits set in `mask`, lowest first: a batch touches one or two of a book's buckets."""
    found = []
    while mask:
        low = mask & -mask
        found.append(low.bit_length() - 1)
        mask ^= low
    return found


class Bucket:
    """A bucket as the store holds it: the book's own dict, flattened to [customer, time, …] only
    when a checkpoint writes it (flattened at each batch that touched it, it was 4 % of bulk_query's
    profile on a day of tellers)."""

    __slots__ = ("customers",)

    def __init__(self, customers: dict[str, int]) -> None:
        self.customers = customers

    def to_json(self) -> list[Any]:
        return [x for item in self.customers.items() for x in item]

    def __eq__(self, other: object) -> bool:  # a value, as the flat list it stood for was
        return isinstance(other, Bucket) and other.customers == self.customers


class Book:
    """One book's customers in `BUCKETS` dicts; `touched`: the buckets changed since the last
    `seal`, `stored`: those with a key in the store (bit masks)."""

    __slots__ = ("buckets", "n", "touched", "stored")

    def __init__(self) -> None:
        self.buckets: list[dict[str, int]] = [{} for _ in range(BUCKETS)]
        self.n = 0
        self.touched = 0
        self.stored = 0

    def read(self, cid: str, ts: int, most: int) -> bool:
        """Whether a read of `cid` is still the post's own work: the customer is one of the `most`
        distinct customers read in the book over the last day (rolling 24 h of event time)."""
        b = _bucket(cid)
        bucket = self.buckets[b]
        last = bucket.get(cid)
        if last is None:
            if self.n >= most:
                self._purge(ts - DAY_MS)
                if self.n >= most:
                    return False
            self.n += 1
        elif last >= ts:
            return True
        bucket[cid] = ts
        self.touched |= 1 << b
        return True

    def _purge(self, horizon: int) -> None:
        for b, bucket in enumerate(self.buckets):
            gone = [c for c, t in bucket.items() if t <= horizon]
            for c in gone:
                del bucket[c]
            if gone:
                self.n -= len(gone)
                self.touched |= 1 << b

    def seal(self) -> tuple[list[tuple[int, Bucket]], list[int]]:
        """(buckets to put; buckets to delete) to bring the store in line with the changes since
        the last seal. A bucket put is the book's live dict: a read changes it, and seals again,
        before the next checkpoint encodes it."""
        puts, deletes = [], []
        for b in buckets_of(self.touched):
            bucket = self.buckets[b]
            if bucket:
                puts.append((b, Bucket(bucket)))
                self.stored |= 1 << b
            elif self.stored >> b & 1:
                deletes.append(b)
                self.stored &= ~(1 << b)
        self.touched = 0
        return puts, deletes

    def stored_buckets(self) -> list[int]:
        """The buckets this book has in the store."""
        return buckets_of(self.stored)

    @classmethod
    def stored_as(cls, mask: int, values: list[Bucket | list[Any]]) -> Book:
        """The book whose buckets `mask` names, from their stored values (in `keys` order): a
        bucket still cached as it was put, or its flat list as read back."""
        book = cls()
        book.stored = mask
        for b, value in zip(buckets_of(mask), values, strict=True):
            book.buckets[b] = (
                value.customers
                if isinstance(value, Bucket)
                else dict(zip(value[::2], value[1::2], strict=True))
            )
            book.n += len(book.buckets[b])
        return book

    @classmethod
    def whole(cls, customers: dict[str, int]) -> Book:
        """A book an earlier lifemon stored inside the window's value: every bucket to write."""
        book = cls()
        for cid, ts in customers.items():
            b = _bucket(cid)
            book.buckets[b][cid] = ts
            book.touched |= 1 << b
        book.n = len(customers)
        return book
