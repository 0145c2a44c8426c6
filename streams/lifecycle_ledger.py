"""Rows for the lifecycle dashboard's tables (clickhouse/002_lifecycle.sql) that neither an alert nor
an event rollup holds: deletion requests with their execution, and the recipients' contracts.

Both are pure functions of their input (a lifecycle event, the policy), keyed so that a replay or a
restart rewrites the same rows: the engine collects deletion rows as events enter it, the runtime
writes them at its checkpoint with the rollups, before it commits the offsets they came from.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from policy.contracts import RecipientBook
from policy.model import Policy
from schemas.models import LifecycleStage

# seed 004 流程描述(5): a request, then its execution (the retention_overrun detector's "gone" stages)
REQUESTED = LifecycleStage.deletion_requested
EXECUTED = frozenset({LifecycleStage.delete, LifecycleStage.anonymize, LifecycleStage.destroy})
# a request the law allows the bank to refuse, answered in its 15 days, or the customer withdrew:
# closes it, executes nothing
ANSWERED = EXECUTED | {LifecycleStage.deletion_refused, LifecycleStage.deletion_withdrawn}

DELETION_COLUMNS = ("record_id", "event_id", "stage", "ts", "due", "system")
CONTRACT_COLUMNS = (
    "recipient_id",
    "contract_id",
    "recipient_type",
    "country",
    "name_zh",
    "name_en",
    "categories",
    "valid_to",
    "valid_from",
    "valid_until",
    "max_records",
    "volume_per",
    "policy_loaded",
)


class DeletionLedger:
    """Deletion requests and executions seen since the last `drain`, as `deletion_events` rows; a
    request is due when the retention_overrun detector says (`Policy.deletion_due`)."""

    def __init__(self, policy: Policy):
        self.due = policy.deletion_due
        self.rows: list[tuple] = []

    def add(self, events: Iterable[Any]) -> None:
        for ev in events:
            if ev.stage is REQUESTED:
                self.rows.append(
                    (ev.record_id, ev.event_id, ev.stage.value, ev.ts, self.due(ev.ts), ev.system)
                )
            elif ev.stage in ANSWERED:
                self.rows.append((ev.record_id, ev.event_id, ev.stage.value, ev.ts, 0, ev.system))

    def drain(self) -> list[tuple]:
        out, self.rows = self.rows, []
        return out


def contract_rows(book: RecipientBook, loaded_ms: int) -> list[Sequence[Any]]:
    """One `recipient_contracts` row per contract of the policy, stamped with this start's time."""
    return [
        (
            rid,
            term.contract.id,
            r.type.value,
            r.country,
            r.name_zh,
            r.name_en,
            sorted(term.categories),
            term.contract.valid_to,
            term.start_ms,
            term.end_ms,
            term.contract.volume.max_records if term.contract.volume else 0,
            term.contract.volume.per.value if term.contract.volume else "",
            loaded_ms,
        )
        for rid, r in sorted(book.recipients.items())
        for term in book.terms[rid]
    ]
