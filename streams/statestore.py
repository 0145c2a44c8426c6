"""Detector and rollup state per partition number (task), kept in ClickHouse beside the outputs.

Written at each checkpoint *before* offsets are committed; a restarted or rebalanced instance
resumes each partition from its snapshot and the offsets stored with it (one per input topic), so
a window that held 40 lookups before a crash still holds them after.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from streams.clickhouse import location, unavailable
from streams.sinks.clickhouse import ClickHouseTableSink, identity_row

STATE_COLUMNS = ("consumer_group", "topic", "partition", "next_offset", "state")
TASK = "*"  # the `topic` of a task's row: a task spans every input topic's partition of its number


class StateStore:
    def __init__(self, client: Any, database: str, group: str):
        self.client, self.table, self.group = client, f"{database}.detector_state", group
        self.sink = ClickHouseTableSink(client, self.table, STATE_COLUMNS, identity_row, "state→clickhouse")

    def save(self, snapshots: Iterable[tuple[int, dict[str, Any]]]) -> None:
        """(partition, state) rows, written and acknowledged before returning. `next_offset`, the
        row's version, is the sum of the task's offsets: it only grows as the task moves on."""
        self.sink.add(
            (self.group, TASK, p, sum(state["offsets"].values()), orjson.dumps(state).decode())
            for p, state in snapshots
        )
        self.sink.flush()

    def load(self, partitions: list[int]) -> dict[int, dict[str, Any]]:
        """The newest snapshot of each partition number that has one.

        Raises ClickHouseUnavailable (one line, fit for the runtime's retry message) when the server
        cannot be reached; other errors propagate as the driver raised them."""
        if not partitions:
            return {}
        try:
            result = self.client.query(
                f"SELECT partition, argMax(state, (next_offset, written_at)) FROM {self.table} "
                "WHERE consumer_group = {g:String} AND topic = {t:String} AND partition IN {ps:Array(UInt32)} "
                "GROUP BY partition",
                parameters={"g": self.group, "t": TASK, "ps": partitions},
            )
        except Exception as e:  # the driver raises many types; only "unreachable" is reworded
            failure = unavailable(location(self.client), e)
            if failure is None:
                raise
            raise failure from None  # the reason is in the message; the driver's chain is 100 lines
        return {p: orjson.loads(state) for p, state in result.result_rows}
