"""ClickHouse outputs: column-oriented batch inserts, each with an insert_deduplication_token
derived from its content, so a retried or replayed insert is dropped by the server."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from schemas.models import Alert, AlertStatus
from streams.alerts import to_ocsf
from streams.codecs import DeadLetter
from streams.sinks.base import Sink, SinkError


class ClickHouseTableSink(Sink[Any]):
    def __init__(
        self,
        client: Any,
        table: str,
        columns: Sequence[str],
        to_row: Callable[[Any], Sequence[Any]],
        name: str,
    ):
        super().__init__()
        self.client, self.table, self.columns, self.to_row, self.name = (
            client,
            table,
            list(columns),
            to_row,
            name,
        )

    def write(self, items: list[Any]) -> None:
        rows = [self.to_row(i) for i in items]
        token = hashlib.sha256(orjson.dumps(rows, default=str)).hexdigest()
        data = [list(col) for col in zip(*rows, strict=True)]
        try:
            self.client.insert(
                self.table,
                data,
                column_names=self.columns,
                column_oriented=True,
                settings={"insert_deduplication_token": token},
            )
        except Exception as e:  # the driver raises many types; all mean "not written"
            raise SinkError(f"{self.name}: insert into {self.table} failed: {e}") from e


ALERT_COLUMNS = (
    "alert_id",
    "revision",
    "status",
    "detector",
    "rule_id",
    "rule_version",
    "severity",
    "title_zh",
    "title_en",
    "summary",
    "regulation",
    "jr_class",
    "actor_id",
    "actor_org",
    "subject_count",
    "subjects_sample",
    "counts",
    "evidence_event_ids",
    "window_start",
    "window_end",
    "first_seen",
    "last_seen",
    "ocsf",
    "version",
)


def alert_row(a: Alert) -> tuple:
    return (
        a.alert_id,
        a.revision,
        a.status.value,
        a.detector,
        a.rule_id,
        a.rule_version,
        a.severity.value,
        a.title_zh,
        a.title_en,
        a.summary,
        a.regulation,
        a.jr_class,
        a.actor_id or "",
        a.actor_org or "",
        a.subject_count,
        a.subjects_sample,
        a.counts,
        a.evidence_event_ids,
        a.window_start,
        a.window_end,
        a.first_seen,
        a.last_seen,
        orjson.dumps(to_ocsf(a)).decode(),
        a.last_seen * 2 + (a.status is AlertStatus.closed),
    )


ROLLUP_COLUMNS = (
    "topic",
    "partition",
    "block",
    "minute",
    "stream",
    "jr_class",
    "org",
    "outcome",
    "events",
    "version",
)
DEAD_LETTER_COLUMNS = ("topic", "partition", "offset", "kind", "field", "message", "seen_at")
STATS_COLUMNS = ("ts", "instance", "stream", "events", "dead_letters", "alerts", "lag", "events_per_s")


def dead_letter_row(d: DeadLetter) -> tuple:
    return (d.raw.topic, d.raw.partition, d.raw.offset, d.kind, d.field, d.message, d.raw.timestamp)


def identity_row(row: Sequence[Any]) -> Sequence[Any]:
    return row
