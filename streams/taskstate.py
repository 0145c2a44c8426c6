"""A task's keyed state and event-time timers, in memory, checkpointed by what changed.

`MemoryStore` keeps live objects and remembers which keys were put, touched or deleted since the
last checkpoint; `changes()` hands over only those, encoded by the detector's own `dump_value`, so
a checkpoint costs what changed, not the size of the state. `Timers` is a heap of (deadline, key)
with lazy cancellation.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from typing import Any

TOMBSTONE = None


class MemoryStore:
    def __init__(self, dump: Callable[[Any], Any], load: Callable[[Any], Any]):
        self._data: dict[str, Any] = {}
        self._dirty: set[str] = set()
        self._dump, self._load = dump, load

    def get(self, key: str, default: Any = None) -> Any:
        return self._data.get(key, default)

    def put(self, key: str, value: Any) -> None:
        self._data[key] = value
        self._dirty.add(key)

    def touch(self, key: str) -> None:
        self._dirty.add(key)

    def delete(self, key: str) -> None:
        if self._data.pop(key, TOMBSTONE) is not TOMBSTONE:
            self._dirty.add(key)

    def items(self, prefix: str = "") -> Iterator[tuple[str, Any]]:
        return ((k, v) for k, v in list(self._data.items()) if k.startswith(prefix))

    def changes(self) -> dict[str, Any]:
        """{key: encoded value, or None for a deletion} since the last call."""
        out = {k: (self._dump(self._data[k]) if k in self._data else TOMBSTONE) for k in self._dirty}
        self._dirty.clear()
        return out

    def dump_all(self) -> dict[str, Any]:
        self._dirty.clear()
        return {k: self._dump(v) for k, v in self._data.items()}

    def apply(self, changes: dict[str, Any]) -> None:
        """Restore: apply encoded changes in order (a later change of a key replaces an earlier)."""
        for k, v in changes.items():
            if v is TOMBSTONE:
                self._data.pop(k, None)
            else:
                self._data[k] = self._load(v)

    def __len__(self) -> int:
        return len(self._data)


class Timers:
    def __init__(self) -> None:
        self._heap: list[tuple[int, str]] = []
        self._live: set[tuple[int, str]] = set()
        self.changed = False

    def register(self, key: str, deadline_ms: int) -> None:
        entry = (deadline_ms, key)
        if entry not in self._live:
            self._live.add(entry)
            heapq.heappush(self._heap, entry)
            self.changed = True

    def cancel(self, key: str, deadline_ms: int) -> None:
        if (deadline_ms, key) in self._live:
            self._live.discard((deadline_ms, key))
            self.changed = True

    def due(self, watermark_ms: int) -> list[tuple[str, int]]:
        """Pop the timers at or before the watermark, in deadline order."""
        out = []
        while self._heap and self._heap[0][0] <= watermark_ms:
            entry = heapq.heappop(self._heap)
            if entry in self._live:
                self._live.discard(entry)
                out.append((entry[1], entry[0]))
        if out:
            self.changed = True
        return out

    def next_deadline(self) -> int | None:
        while self._heap and self._heap[0] not in self._live:
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None

    def to_json(self) -> list[list[Any]]:
        return [[d, k] for d, k in sorted(self._live)]

    def load(self, entries: list[list[Any]]) -> None:
        self._live = {(d, k) for d, k in entries}
        self._heap = sorted(self._live)

    def __len__(self) -> int:
        return len(self._live)
