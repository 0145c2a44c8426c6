"""When a quiet partition may follow the instance clock (docs/architecture.md#event-time).

A task whose inputs are all caught up follows the instance clock, so its timers fire while its
partition is quiet. Followed as it stands *now*, that clock races the fetches: when a backlog
arrives (a broker back after an outage, a shipper flushing its queue), the partition fetched first
moves the clock hours ahead while another partition still looks caught up, because the response
carrying its share of the backlog has not come yet; that partition's windows then close early and
its own records arrive late (the fault matrix's broker restart lost an alert so, docs/faults.md).

So a quiet partition follows the clock as it stood `lag_s` ago, as Flink marks a split idle only
after `withIdleness(timeout)`: records that reach it within `lag_s` of another partition's are
never overtaken. Wall time decides only *when* a quiet task catches up, never what an event means.
"""

from __future__ import annotations

from collections import deque

IDLE_AFTER_S = 5.0  # well above a fetch round (fetch.wait.max.ms 500) on a loaded machine
# how long a source partition that reports records and has delivered none may hold the re-keyed
# inputs it feeds (streams/runtime.py `_holding`): fetches reach every assigned partition long before
UNREAD_HOLD_S = 60.0


class LaggedClock:
    """The instance clock as it stood `lag_s` seconds ago (0 before any was seen)."""

    def __init__(self, lag_s: float = IDLE_AFTER_S):
        self.lag_s = lag_s
        self._changes: deque[tuple[float, int]] = deque()  # (monotonic time, clock from then on)

    def observe(self, clock: int, now: float) -> int:
        if not self._changes or self._changes[-1][1] != clock:
            self._changes.append((now, clock))
        cut = now - self.lag_s
        while len(self._changes) > 1 and self._changes[1][0] <= cut:
            self._changes.popleft()  # a later value already stood at the cut
        since, value = self._changes[0]
        return value if since <= cut else 0
