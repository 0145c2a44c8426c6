"""How many records (条) one employee read per tier of the judicial interpretation, over a day.

The SPC/SPP interpretation on personal-information crimes, art. 5 (seed 001 §五.1), counts records
cumulatively, whatever the window or the employee's role: 50 of credit, property, location or
communication content, 500 of transaction, identity and the like, 5 000 of the rest, ten times as
many for 情节特别严重. Categories in one tier add up. Each customer's records count once however
often they are read; rows a log counts without naming a customer (`row_count`) are records too.

Every access is kept for the horizon with the tiers its categories fall in; a running sum per
tier bounds the exact figure from above, so the exact count (each customer once) is only taken
when the bound reaches a tier's lowest threshold.
"""

from __future__ import annotations

from collections import deque
from typing import Any

Entry = tuple[
    int, str, int, tuple[str, ...], int
]  # ts, customer (or #event), records, categories, class rank


class LegalTally:
    __slots__ = ("entries", "events", "totals", "added", "known")

    def __init__(self, tiers: int) -> None:
        self.entries: deque[Entry] = deque()
        self.events: deque[tuple[int, str]] = deque()  # (ts, event id) of each access or transfer tallied
        self.totals = [0] * tiers  # per tier: records of every entry in it, repeats included
        # not stored: records added since, and the last exact count with `added` at the time; the
        # exact count cannot have grown by more than what was added since (it only shrinks else)
        self.added = [0] * tiers
        self.known: list[tuple[int, int] | None] = [None] * tiers

    def add(self, entry: Entry, mask: int) -> None:
        self.entries.append(entry)
        for i in range(len(self.totals)):
            if mask >> i & 1:
                self.totals[i] += entry[2]
                self.added[i] += entry[2]

    def reached(self, tier: int, floor: int, since: int, mask_of: Any) -> tuple[int, int, int, int] | None:
        """The tier's figures (see `count`) if its exact count reached `floor`, else None; counted
        exactly only when the bounds allow it."""
        known = self.known[tier]
        if self.totals[tier] < floor or (known and known[0] + self.added[tier] - known[1] < floor):
            return None
        figures = self.count(tier, since, mask_of)
        self.known[tier] = (figures[0], self.added[tier])
        return figures if figures[0] >= floor else None

    def evict_until(self, horizon: int, mask_of: Any) -> None:
        """Forget entries at or before `horizon`. Entries arrive nearly in time order; one that came
        late waits behind newer ones and leaves a little later, and `count` never counts it."""
        while self.entries and self.entries[0][0] <= horizon:
            entry = self.entries.popleft()
            mask = mask_of(entry[3])
            for i in range(len(self.totals)):
                if mask >> i & 1:
                    self.totals[i] -= entry[2]
        while self.events and self.events[0][0] <= horizon:
            self.events.popleft()

    def events_since(self, since: int) -> list[str]:
        """Ids of the events tallied at or after `since`: what an episode opened on the count aggregates."""
        return [eid for ts, eid in self.events if ts >= since]

    def count(self, tier: int, since: int, mask_of: Any) -> tuple[int, int, int, int]:
        """(records, named customers, first ts, last ts) of a tier after `since`: each customer's
        records once, at the most rows any one access returned for it."""
        most: dict[str, int] = {}
        first, last = 0, 0
        for ts, cid, n, cats, _ in self.entries:
            if ts > since and mask_of(cats) >> tier & 1:
                if n > most.get(cid, 0):
                    most[cid] = n
                first = ts if not first else min(first, ts)
                last = max(last, ts)
        return sum(most.values()), sum(1 for c in most if not c.startswith("#")), first, last

    def to_json(self) -> dict[str, Any]:
        return {
            "entries": [list(e) for e in self.entries],
            "events": [list(e) for e in self.events],
            "totals": self.totals,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LegalTally:
        tally = cls(len(data["totals"]))
        tally.entries.extend((ts, cid, n, tuple(cats), rank) for ts, cid, n, cats, rank in data["entries"])
        tally.events.extend((ts, eid) for ts, eid in data.get("events", ()))  # none in older snapshots
        tally.totals = list(data["totals"])
        return tally
