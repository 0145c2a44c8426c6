"""How many records (条) one employee read per tier of the judicial interpretation, over a day.

The SPC/SPP interpretation on personal-information crimes, art. 5 (seed 001 §五.1), counts records
cumulatively, whatever the window or the employee's role: 50 of credit, property, location or
communication content, 500 of transaction, identity and the like, 5 000 of the rest, ten times as
many for 情节特别严重. Categories in one tier add up. Each customer's records count once however
often they are read; rows a log counts without naming a customer (`row_count`) are records too.

The accesses themselves are the actor's window entries, kept for the horizon (bulk_query's
ActorWindow): this tally only counts over them. A running sum per tier bounds the exact figure
from above, so the exact count (each customer once) is only taken when the bound reaches a tier's
lowest threshold.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from operator import itemgetter

# ts, customer (or #event), weight, records, categories, class rank
Entry = tuple[int, str, int, int, tuple[str, ...], int]
TiersOf = Callable[[tuple[str, ...]], tuple[int, ...]]


class LegalTally:
    __slots__ = ("totals", "added", "known")

    def __init__(self, tiers: int) -> None:
        self.totals = [0] * tiers  # per tier: records of every entry in it, repeats included
        # records added since, and the last exact count with `added` at the time; the exact count
        # cannot have grown by more than what was added since (it only shrinks else)
        self.added = [0] * tiers
        self.known: list[tuple[int, int] | None] = [None] * tiers

    @classmethod
    def of(cls, tiers: int, entries: Iterable[Entry], tiers_of: TiersOf) -> LegalTally:
        tally = cls(tiers)
        for e in entries:
            tally.add(e[3], tiers_of(e[4]))
        return tally

    def add(self, records: int, tiers: tuple[int, ...]) -> None:
        for i in tiers:
            self.totals[i] += records
            self.added[i] += records

    def remove(self, records: int, tiers: tuple[int, ...]) -> None:
        for i in tiers:
            self.totals[i] -= records

    def bound(self, tier: int) -> int:
        """The tier's count cannot exceed this: its running sum, or its last exact count plus
        what was added since."""
        known = self.known[tier]
        if known is None:
            return self.totals[tier]
        return min(self.totals[tier], known[0] + self.added[tier] - known[1])

    def reached(
        self, tier: int, floor: int, entries: Iterable[Entry], since: int, tiers_of: TiersOf
    ) -> tuple[int, int, int, int] | None:
        """The tier's figures (see `count`) if its exact count reached `floor`, else None; counted
        exactly only when the bounds allow it."""
        if self.bound(tier) < floor:
            return None
        figures = self.recount(tier, entries, since, tiers_of)
        return figures if figures[0] >= floor else None

    def recount(
        self, tier: int, entries: Iterable[Entry], since: int, tiers_of: TiersOf
    ) -> tuple[int, int, int, int]:
        """The tier's figures (see `count`), its exact count the bound's new base."""
        figures = count(tier, entries, since, tiers_of)
        self.known[tier] = (figures[0], self.added[tier])
        return figures


def count(tier: int, entries: Iterable[Entry], since: int, tiers_of: TiersOf) -> tuple[int, int, int, int]:
    """(records, named customers, first ts, last ts) of a tier after `since`: each customer's
    records once, at the most rows any one access returned for it."""
    most: dict[str, int] = {}
    first, last = 0, 0
    for ts, cid, _, n, cats, _ in entries:
        if ts > since and tier in tiers_of(cats):
            if n > most.get(cid, 0):
                most[cid] = n
            first = ts if not first else min(first, ts)
            last = max(last, ts)
    return sum(most.values()), sum(1 for c in most if not c.startswith("#")), first, last


def records_by_tier(tiers: int, entries: Iterable[Entry], since: int, tiers_of: TiersOf) -> list[int]:
    """Each tier's records after `since`, as `count` counts them, in one pass over the entries."""
    most: list[dict[str, int]] = [{} for _ in range(tiers)]
    for ts, cid, _, n, cats, _ in entries:
        if ts > since:
            for i in tiers_of(cats):
                if n > most[i].get(cid, 0):
                    most[i][cid] = n
    return [sum(m.values()) for m in most]


def reached_at(tier: int, floor: int, entries: Iterable[Entry], since: int, tiers_of: TiersOf) -> int | None:
    """The time of the entry at which the tier's count after `since` (see `count`) first reached
    `floor`, in event time (ties in arrival order); None if it has not. The same entries give the
    same time whatever batches brought them: what the count was at a revision does not."""
    most: dict[str, int] = {}
    total = 0
    for ts, cid, _, n, cats, _ in sorted(entries, key=itemgetter(0)):
        if ts > since and tier in tiers_of(cats) and n > most.get(cid, 0):
            total += n - most.get(cid, 0)
            most[cid] = n
            if total >= floor:
                return ts
    return None
