"""`lifemon dead-letters`: the records the monitor refused, one line per topic and reason, with how
many, when lifemon refused them (a live run's or a replay's), and where the first one
lies (partition:offset; a replayed file's line), so the operator fixes the producer or the config
that made them. Reasons never hold a value of the record (streams/codecs.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from streams.terminal import shown
from streams.text_table import aligned


def query_dead_letters(
    client: Any, database: str, since: datetime | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """Each (topic, kind, field, reason) with its count, first and last time seen and its earliest
    record's place, most refused first."""
    where = " WHERE seen_at >= {since:DateTime64(3)}" if since else ""
    sql = (
        "SELECT topic, kind, field, message, count() AS records, min(seen_at) AS first_seen, "
        "max(seen_at) AS last_seen, min((seen_at, partition, offset)) AS first, "
        "count() OVER () AS lines "
        f"FROM {database}.dead_letters FINAL{where} GROUP BY topic, kind, field, message "
        "ORDER BY records DESC, topic, kind, message LIMIT {limit:UInt32}"
    )
    params: dict[str, Any] = {"limit": limit} | ({"since": since} if since else {})
    result = client.query(sql, parameters=params)
    return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]


def file_place(topic: str, offset: int) -> dict[str, int] | None:
    """Where a replayed file's record lies, as its reader counts: a JSON line from 1, an Avro
    record by its offset; None for a Kafka topic's."""
    if topic.endswith(".jsonl"):
        return {"line": offset + 1}
    return {"record": offset} if topic.endswith(".avro") else None


def _place(topic: str, partition: int, offset: int) -> str:
    return (
        " ".join(f"{k} {v}" for k, v in place.items())
        if (place := file_place(topic, offset))
        else f"{partition}:{offset}"
    )


def _time(t: datetime) -> str:
    """A record's Kafka time; a file replayed has none (epoch 0)."""
    return f"{t:%Y-%m-%d %H:%M}" if t.timestamp() > 0 else "—"


def render(rows: list[dict[str, Any]]) -> str:
    """An aligned table, the reason last and whole."""
    if not rows:
        return "no dead letters: every record was read"
    rows = shown(rows)
    cells = [
        (r["topic"], " ".join(filter(None, (r["kind"], r["field"]))), f"{r['records']:,}",
         _time(r["first_seen"]), _time(r["last_seen"]), _place(r["topic"], *r["first"][1:]), r["message"])
        for r in rows
    ]  # fmt: skip
    header = ("TOPIC", "KIND", "RECORDS", "FIRST SEEN (UTC)", "LAST SEEN (UTC)", "FIRST AT", "REASON")
    table = "\n".join(aligned(header, cells, right={2}))
    lines = rows[0].get("lines", len(rows))
    cut = f"\n{len(rows)} of {lines} lines shown, most refused first; --limit {lines} shows them all"
    return table + (cut if lines > len(rows) else "")
