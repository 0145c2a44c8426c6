"""The ClickHouse tables one monitor writes (clickhouse/*.sql), a sink each: the runtime flushes them
at every checkpoint, `lifemon replay --clickhouse` once at its end, so the report, `lifemon
incidents` and `lifemon catalog gaps` read a replay as they read a live run."""

from __future__ import annotations

import time
from dataclasses import dataclass, fields
from typing import Any

from policy.contracts import RecipientBook
from streams.lifecycle_ledger import CONTRACT_COLUMNS, DELETION_COLUMNS, contract_rows
from streams.sinks.clickhouse import (
    DEAD_LETTER_COLUMNS,
    INCIDENT_COLUMNS,
    ROLLUP_COLUMNS,
    STATS_COLUMNS,
    AlertSink,
    ClickHouseTableSink,
    dead_letter_row,
    identity_row,
    incident_row,
)
from streams.transfer_ledger import LEDGER, LEDGER_COLUMNS


@dataclass(frozen=True)
class Tables:
    alerts: ClickHouseTableSink
    incidents: ClickHouseTableSink
    dead_letters: ClickHouseTableSink
    rollups: ClickHouseTableSink  # events and coverage gaps (the coverage_gaps view reads them)
    # the lifecycle dashboard's: deletion requests as they come, the policy's contracts at start
    deletions: ClickHouseTableSink
    contracts: ClickHouseTableSink
    transfers: ClickHouseTableSink  # the transfer ledger: one row per transfer (streams/transfer_ledger.py)
    stats: ClickHouseTableSink

    @classmethod
    def of(cls, client: Any, db: str, book: RecipientBook) -> Tables:
        """The sinks, the policy's contracts (`book`) already added as they stand at start."""

        def table(
            name: str, columns: tuple[str, ...], row: Any, label: str, **settings: Any
        ) -> ClickHouseTableSink:
            return ClickHouseTableSink(client, f"{db}.{name}", columns, row, label, settings=settings)

        tables = cls(
            AlertSink(client, f"{db}.alerts", "alerts→clickhouse"),
            table("incidents", INCIDENT_COLUMNS, incident_row, "incidents→clickhouse"),
            table("dead_letters", DEAD_LETTER_COLUMNS, dead_letter_row, "dlq→clickhouse"),
            # every reader asks FINAL, which keeps a cell's newest version however many rows hold
            # it: the replacing merge of each inserted block, half the insert's CPU, is left out (a
            # block has one row per cell, unless a failed flush left an earlier drain in it)
            table("event_rollups", ROLLUP_COLUMNS, identity_row, "rollups", optimize_on_insert=0),
            table("deletion_events", DELETION_COLUMNS, identity_row, "deletions"),
            table("recipient_contracts", CONTRACT_COLUMNS, identity_row, "contracts"),
            table(LEDGER, LEDGER_COLUMNS, identity_row, "transfer ledger"),
            table("pipeline_stats", STATS_COLUMNS, identity_row, "stats"),
        )
        tables.contracts.add(contract_rows(book, int(time.time() * 1000)))
        return tables

    def read_back_together(self) -> list[ClickHouseTableSink]:
        """Every sink, set to leave its batches for `verify_together` to read back: a checkpoint
        that wrote several tables proves them stored in one query. The first sink to need its
        table's column types and key asks for every sink's in the same two queries."""
        sinks = [getattr(self, f.name) for f in fields(self)]
        for sink in sinks:
            sink.unverified = []
            sink.probed_with = sinks  # and the first that needs its table's types asks for all
        return sinks
