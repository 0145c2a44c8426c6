"""`lifemon alerts`: the SOC's list of alerts from ClickHouse, newest revision of each, filtered by
detector, severity (at least), actor, status and time range. Values reach the query as bound
parameters, never spliced into SQL."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from schemas.models import SEVERITY_RANK, Severity

COLUMNS = (
    "last_seen",
    "severity",
    "status",
    "detector",
    "actor_id",
    "subject_count",
    "title_zh",
    "title_en",
    "alert_id",
)


def query_alerts(
    client: Any,
    database: str,
    *,
    detector: str | None = None,
    min_severity: Severity | None = None,
    actor: str | None = None,
    status: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """Alerts as dicts of COLUMNS plus `summary`, newest first."""
    where: list[str] = []
    params: dict[str, Any] = {}
    if detector:
        where.append("detector = {detector:String}")
        params["detector"] = detector
    if min_severity is not None:
        names = [s.value for s in Severity if SEVERITY_RANK[s] >= SEVERITY_RANK[min_severity]]
        where.append("severity IN {severities:Array(String)}")
        params["severities"] = names
    if actor:
        where.append("actor_id = {actor:String}")
        params["actor"] = actor
    if status:
        where.append("status = {status:String}")
        params["status"] = status
    if since:
        where.append("last_seen >= {since:DateTime64(3, 'UTC')}")
        params["since"] = since
    if until:
        where.append("last_seen < {until:DateTime64(3, 'UTC')}")
        params["until"] = until
    sql = (
        f"SELECT {', '.join(COLUMNS)}, summary FROM {database}.alerts FINAL"
        + (f" WHERE {' AND '.join(where)}" if where else "")
        + " ORDER BY last_seen DESC, alert_id LIMIT {limit:UInt32}"
    )
    params["limit"] = limit
    result = client.query(sql, parameters=params)
    return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]


def render(rows: list[dict[str, Any]]) -> str:
    """One line per alert, then its summary indented: what an analyst scans in a terminal."""
    if not rows:
        return "no alerts match"
    lines = []
    for r in rows:
        lines.append(
            f"{r['last_seen']:%Y-%m-%d %H:%M}  {r['severity']:<8} {r['status']:<7} {r['detector']:<20} "
            f"{r['actor_id']:<16} {r['subject_count']:>6}  {r['title_zh']} / {r['title_en']}  [{r['alert_id'][:12]}]"
        )
        lines.append(f"    {r['summary']}")
    return "\n".join(lines)
