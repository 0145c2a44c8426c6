"""`lifemon alerts`: the SOC's list of alerts from ClickHouse, newest revision of each, filtered by
detector, severity (at least), actor, status and time range. Values reach the query as bound
parameters, never spliced into SQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, NamedTuple

from schemas.models import SEVERITY_RANK, Severity

COLUMNS = (
    "last_seen",
    "severity",
    "status",
    "detector",
    "actor_id",
    "subject_count",
    "counts",
    "title_zh",
    "title_en",
    "alert_id",
)

# `--status` words -> the statuses of a newest revision they select. An episode is open at its
# first revision and updated at each later one while it lives; closed says its window ended, not
# that anyone reviewed it. `active` is what Grafana's "Open alerts" panel counts: status != 'closed'.
STATUSES = {"active": ["open", "updated"], "open": ["open"], "updated": ["updated"], "closed": ["closed"]}


class Listing(NamedTuple):
    """The rows a listing shows and how many match its filters (more than shown when cut by --limit)."""

    rows: list[dict[str, Any]]
    total: int


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
) -> Listing:
    """Alerts as dicts of COLUMNS plus `summary`, newest first; `status` a key of STATUSES."""
    severities = at_least(min_severity)
    filters = [  # (condition, parameter name, value): a filter applies when its value is given
        ("detector = {detector:String}", "detector", detector),
        ("severity IN {severities:Array(String)}", "severities", severities),
        ("actor_id = {actor:String}", "actor", actor),
        ("status IN {statuses:Array(String)}", "statuses", STATUSES.get(status or "")),
        ("last_seen >= {since:DateTime64(3, 'UTC')}", "since", since),
        ("last_seen < {until:DateTime64(3, 'UTC')}", "until", until),
    ]
    return select_latest(
        client, f"{database}.alerts", [*COLUMNS, "summary"], filters, "last_seen DESC, alert_id", limit
    )


def select_latest(
    client: Any,
    table: str,
    columns: list[str],
    filters: list[tuple[str, str, Any]],
    order_by: str,
    limit: int,
) -> Listing:
    """Up to `limit` rows of `table` FINAL (the newest revision of each id) as dicts of `columns`,
    and how many match. `filters`: (condition, parameter name, value), applied where a value is
    given, bound, never spliced. One row past the limit says whether it cut; only then are the
    matches counted, in a second query."""
    where = [condition for condition, _, value in filters if value]
    params: dict[str, Any] = {name: value for _, name, value in filters if value}
    matching = f"FROM {table} FINAL" + (f" WHERE {' AND '.join(where)}" if where else "")
    result = client.query(
        f"SELECT {', '.join(columns)} {matching} ORDER BY {order_by} LIMIT {{limit:UInt32}}",
        parameters={**params, "limit": limit + 1},
    )
    rows = [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]
    if len(rows) <= limit:
        return Listing(rows, len(rows))
    return Listing(
        rows[:limit], client.query(f"SELECT count() {matching}", parameters=params).result_rows[0][0]
    )


def at_least(severity: Severity | None) -> list[str] | None:
    """The severities at or above `severity` (None: no filter)."""
    if severity is None:
        return None
    return [s.value for s in Severity if SEVERITY_RANK[s] >= SEVERITY_RANK[severity]]


# ANSI styles for a terminal: the severity an analyst's eye must catch first stands out most
SEVERITY_STYLE = {
    "critical": "\x1b[1;97;41m",  # bold white on red
    "high": "\x1b[1;31m",  # bold red
    "medium": "\x1b[33m",  # yellow
    "low": "\x1b[36m",  # cyan
    "info": "\x1b[2m",  # dim
}


def records_and_customers(subject_count: int, counts: dict[str, int]) -> tuple[int | None, int | None]:
    """What an alert counted, as (records, customers); None where its detector did not count it.

    `subject_count` counts customers, but not alike everywhere: transfer_policy's volume alert
    leaves it 0 (its counts hold the records sent to the recipient, no customers), and
    unauthorized_lookup counts the rows a log counted without naming any customer in it too
    (`counts["customers_unnamed"]`, which are no customers). Alerts stored before bulk_query
    counted its customers there hold its records in it, and its records and customers in `counts`.
    So: records only from `counts["records"]`; customers from
    `counts["customers"]` or `counts["subjects"]` where the detector put them there, else
    `subject_count` less any unnamed rows; 0 customers means none was identified, shown as
    unknown, never as zero."""
    records = counts.get("records")
    customers = counts.get(
        "customers", counts.get("subjects", subject_count - counts.get("customers_unnamed", 0))
    )
    return records, customers or None


def _count(n: int | None, unit: str, width: int) -> str:
    return f"{'—' if n is None else f'{n:,}':>{width}} {unit}"


def render_alert(r: dict[str, Any], color: bool = False, actor_width: int = 16) -> str:
    """One alert as two lines: what an analyst scans in a terminal, then its summary indented.
    The time is the alert's last event time, in UTC; records and customers are labelled, "—"
    where the detector does not count them. `color`: the severity in its ANSI style (only for a
    terminal)."""
    severity = f"{r['severity']:<8}"
    if color:
        severity = f"{SEVERITY_STYLE.get(r['severity'], '')}{severity}\x1b[0m"
    records, customers = records_and_customers(r["subject_count"], r.get("counts") or {})
    return (
        f"{r['last_seen']:%Y-%m-%d %H:%M} UTC  {severity} {r['status']:<7} {r['detector']:<20} "
        f"{r['actor_id']:<{actor_width}} {_count(records, 'records', 6)} {_count(customers, 'customers', 6)}  "
        f"{r['title_zh']} / {r['title_en']}  [{r['alert_id'][:12]}]"
        f"\n    {r['summary']}"
    )


def alert_row(alert: Any) -> dict[str, Any]:
    """An Alert (a replay's) as a row of the alerts table: the listing renders both alike."""
    row = {c: getattr(alert, c) for c in COLUMNS if c != "last_seen"}
    row.update(
        last_seen=datetime.fromtimestamp(alert.last_seen / 1000, UTC).replace(tzinfo=None),
        severity=alert.severity.value,
        status=alert.status.value,
        actor_id=alert.actor_id or "",
        summary=alert.summary,
    )
    return row


def render(rows: list[dict[str, Any]], color: bool = False) -> str:
    if not rows:
        return "no alerts match"
    width = max(16, *(len(r["actor_id"]) for r in rows))  # a recipient's id is longer than an employee's
    return "\n".join(render_alert(r, color, width) for r in rows)
