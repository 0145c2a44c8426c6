"""The ClickHouse tables one monitor writes (clickhouse/*.sql), a sink each: the runtime flushes them
at every checkpoint, `lifemon replay --clickhouse` once at its end, so the report, `lifemon
incidents` and `lifemon catalog gaps` read a replay as they read a live run."""

from __future__ import annotations

import time
from dataclasses import dataclass
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

        def table(name: str, columns: tuple[str, ...], row: Any, label: str) -> ClickHouseTableSink:
            return ClickHouseTableSink(client, f"{db}.{name}", columns, row, label)

        tables = cls(
            AlertSink(client, f"{db}.alerts", "alerts→clickhouse"),
            table("incidents", INCIDENT_COLUMNS, incident_row, "incidents→clickhouse"),
            table("dead_letters", DEAD_LETTER_COLUMNS, dead_letter_row, "dlq→clickhouse"),
            table("event_rollups", ROLLUP_COLUMNS, identity_row, "rollups"),
            table("deletion_events", DELETION_COLUMNS, identity_row, "deletions"),
            table("recipient_contracts", CONTRACT_COLUMNS, identity_row, "contracts"),
            table(LEDGER, LEDGER_COLUMNS, identity_row, "transfer ledger"),
            table("pipeline_stats", STATS_COLUMNS, identity_row, "stats"),
        )
        tables.contracts.add(contract_rows(book, int(time.time() * 1000)))
        return tables
