"""As-of registries for reference streams (entitlements, consents), read whole like a GlobalKTable.

Each key keeps its history sorted by valid-from time, so a lookup answers "as of the event's
time": a transfer or termination that arrives late still applies to the accesses after it
(seed 004 人员管理(4)(5): permissions change at once on a transfer and end at once on termination).
"""

from __future__ import annotations

from bisect import bisect_right, insort
from typing import Generic, TypeVar

T = TypeVar("T")


class AsOfRegistry(Generic[T]):
    def __init__(self, key_attr: str) -> None:
        self._key_attr = key_attr
        self._times: dict[str, list[int]] = {}
        self._values: dict[str, list[T]] = {}

    def put(self, record: T) -> None:
        key, ts = getattr(record, self._key_attr), record.ts  # type: ignore[attr-defined]
        times = self._times.setdefault(key, [])
        values = self._values.setdefault(key, [])
        i = bisect_right(times, ts)
        if i and times[i - 1] == ts:
            values[i - 1] = record  # same key and time: the newer record replaces (compaction semantics)
            return
        insort(times, ts)
        values.insert(i, record)

    def as_of(self, key: str, ts: int) -> T | None:
        times = self._times.get(key)
        if not times:
            return None
        i = bisect_right(times, ts)
        return self._values[key][i - 1] if i else None
