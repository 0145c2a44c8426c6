"""Whether a roll-up's second stage waits on a task, said once it has waited long
(docs/operations.md#a-stage-that-waits).

A stage settles a day only once every task of its detector has marked past it
(docs/architecture.md#roll-ups-across-partitions): a task that never marks (its instance down but
still in the group, a lifemon too old to mark) or whose mark stands still while the others move
(an instance whose partitions went quiet, its clock with them) holds every day after it, and the
stage's alerts with them, without any error. The runtime asks the engine each second how its stage
partitions stand (`Engine.stage_progress`) and hands it here: a hold that has not changed for
`warn_after_s` is said once, naming the tasks and since when, and its end once more: tasks that
never marked, or a least mark `STAGE_HELD_LAG_MS` or more behind the newest.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import NamedTuple

from streams.engine import StageProgress

log = logging.getLogger(__name__)

STAGE_HELD_WARN_S = 60.0  # a stage's least mark moves with its tasks' batches, a second or so apart
# a hold by a task that marks is said once that far behind: two quiet instances' clocks stand minutes
# apart every night, which holds a day only where one ends between them, and the metric shows it
STAGE_HELD_LAG_MS = 3_600_000


class Hold(NamedTuple):
    """Who holds a stage partition, and at which mark: unchanged while the others move, a hold."""

    waiting: tuple[int, ...]
    slowest: tuple[int, ...]
    least: int | None


class StageWatch:
    """Since when each stage partition here has stood as it stands (wall time), and which holds
    were said."""

    def __init__(self, group: str, warn_after_s: float = STAGE_HELD_WARN_S):
        self.group, self.warn_after_s = group, warn_after_s
        self._since: dict[tuple[str, int], tuple[Hold, float]] = {}
        self._said: set[tuple[str, int]] = set()

    def observe(self, progress: Sequence[StageProgress], now: float) -> None:
        """The stage partitions as they stand at wall time `now` (seconds since the epoch)."""
        seen = set()
        for p in progress:
            at, hold = (p.kind, p.partition), Hold(p.waiting, p.slowest, p.least)
            seen.add(at)
            was = self._since.get(at)
            if was is None or was[0] != hold:
                if at in self._said:
                    self._released(p)
                self._since[at] = (hold, now)
            elif _holds(p) and at not in self._said and now - was[1] >= self.warn_after_s:
                self._said.add(at)
                self._held(p, was[1])
        for gone in self._since.keys() - seen:  # a stage partition a rebalance took
            del self._since[gone]
            self._said.discard(gone)

    def _held(self, p: StageProgress, since: float) -> None:
        when = datetime.fromtimestamp(since, UTC).isoformat(timespec="seconds")
        stage = f"the {p.kind} stage's partition {p.partition} (group {self.group})"
        if p.waiting:
            said = (
                f"{stage} has settled nothing since {when}: the {p.kind} tasks of partitions "
                f"{_listed(p.waiting)} never marked it (an instance down but still in the group, or one "
                "too old to mark); the days it holds are said once they do"
            )
        else:
            said = (
                f"{stage} has stood {p.lag_ms / 1000:.0f} s of event time behind its newest mark since "
                f"{when}, held by the {p.kind} tasks of partitions {_listed(p.slowest)}, whose clock has "
                "not moved (their instance's partitions quiet, or its input stalled)"
            )
        log.warning(
            said + " (docs/operations.md#a-stage-that-waits)",
            extra={
                "group": self.group,
                "detector": p.kind,
                "stage_partition": p.partition,
                "waiting_for": list(p.waiting or p.slowest),
                "since": when,
                "lag_s": p.lag_ms / 1000,
            },
        )

    def _released(self, p: StageProgress) -> None:
        self._said.discard((p.kind, p.partition))
        log.info(
            f"the {p.kind} stage's partition {p.partition} (group {self.group}) moves again",
            extra={"group": self.group, "detector": p.kind, "stage_partition": p.partition},
        )


def _holds(p: StageProgress) -> bool:
    return bool(p.waiting) or p.lag_ms >= STAGE_HELD_LAG_MS


def _listed(partitions: Sequence[int]) -> str:
    return ", ".join(map(str, partitions))
