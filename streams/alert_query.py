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
    severities = (
        [s.value for s in Severity if SEVERITY_RANK[s] >= SEVERITY_RANK[min_severity]]
        if min_severity
        else None
    )
    filters = [  # (condition, parameter name, value): a filter applies when its value is given
        ("detector = {detector:String}", "detector", detector),
        ("severity IN {severities:Array(String)}", "severities", severities),
        ("actor_id = {actor:String}", "actor", actor),
        ("status = {status:String}", "status", status),
        ("last_seen >= {since:DateTime64(3, 'UTC')}", "since", since),
        ("last_seen < {until:DateTime64(3, 'UTC')}", "until", until),
    ]
    where = [condition for condition, _, value in filters if value]
    params: dict[str, Any] = {name: value for _, name, value in filters if value}
    sql = (
        f"SELECT {', '.join(COLUMNS)}, summary FROM {database}.alerts FINAL"
        + (f" WHERE {' AND '.join(where)}" if where else "")
        + " ORDER BY last_seen DESC, alert_id LIMIT {limit:UInt32}"
    )
    params["limit"] = limit
    result = client.query(sql, parameters=params)
    return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]


# ANSI styles for a terminal: the severity an analyst's eye must catch first stands out most
SEVERITY_STYLE = {
    "critical": "\x1b[1;97;41m",  # bold white on red
    "high": "\x1b[1;31m",  # bold red
    "medium": "\x1b[33m",  # yellow
    "low": "\x1b[36m",  # cyan
    "info": "\x1b[2m",  # dim
}


def render_alert(r: dict[str, Any], color: bool = False) -> str:
    """One alert as two lines: what an analyst scans in a terminal, then its summary indented.
    `color`: the severity in its ANSI style (only for a terminal)."""
    severity = f"{r['severity']:<8}"
    if color:
        severity = f"{SEVERITY_STYLE.get(r['severity'], '')}{severity}\x1b[0m"
    return (
        f"{r['last_seen']:%Y-%m-%d %H:%M}  {severity} {r['status']:<7} {r['detector']:<20} "
        f"{r['actor_id']:<16} {r['subject_count']:>6}  {r['title_zh']} / {r['title_en']}  [{r['alert_id'][:12]}]"
        f"\n    {r['summary']}"
    )


def render(rows: list[dict[str, Any]], color: bool = False) -> str:
    if not rows:
        return "no alerts match"
    return "\n".join(render_alert(r, color) for r in rows)
