"""`lifemon catalog gaps`: what the streams and raw logs named that the policy does not know (the
`coverage_gaps` view over the replay-safe rollups), one line per object, with where to add it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from streams.sources.canonical import GAP_KINDS
from streams.terminal import shown
from streams.text_table import aligned

WHERE_TO_ADD = {
    "field": "policy/classification.yaml (or sdks.yaml); `lifemon fingerprint NAME` tells the name",
    **GAP_KINDS,
}
COLUMNS = ("kind", "object", "stream", "seen", "first_seen", "last_seen")


def query_gaps(client: Any, database: str, kind: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
    """Each gap (kind, object, stream) with how often and when it was seen, most seen first."""
    sql = (
        "SELECT kind, object, stream, sum(seen) AS seen, min(minute) AS first_seen, max(minute) AS last_seen "
        f"FROM {database}.coverage_gaps"
        + (" WHERE kind = {kind:String}" if kind else "")
        + " GROUP BY kind, object, stream ORDER BY kind, seen DESC, object LIMIT {limit:UInt32}"
    )
    result = client.query(sql, parameters={"kind": kind, "limit": limit} if kind else {"limit": limit})
    return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]


def summary(client: Any, database: str) -> str:
    """One line: how many objects of each kind are gaps, and how often they were seen."""
    rows = client.query(
        f"SELECT kind, uniqExact(object), sum(seen) FROM {database}.coverage_gaps GROUP BY kind ORDER BY kind"
    ).result_rows
    if not rows:
        return "coverage gaps: none"
    return "coverage gaps: " + ", ".join(f"{n} {kind} ({seen:,} seen)" for kind, n, seen in rows)


def fold_tables(rows: list[dict[str, Any]], fingerprint: Callable[[str], str] | None) -> list[dict[str, Any]]:
    """An unknown table is also an unknown field id `db:<database>.<table>` on the access events
    it made: with the pseudonym key at hand, that fingerprint's row is the table's, not another gap."""
    if fingerprint is None:
        return rows
    tables = {fingerprint(f"db:{r['object']}") for r in rows if r["kind"] == "table"}
    return [r for r in rows if not (r["kind"] == "field" and r["object"] in tables)]


def render(rows: list[dict[str, Any]]) -> str:
    """An aligned table, then where each kind listed goes in the policy."""
    if not rows:
        return "no coverage gaps: every field, table, login and account seen is in the policy"
    rows = shown(rows)
    cells = [
        (r["kind"], r["object"], r["stream"], f"{r['seen']:,}", f"{r['first_seen']:%Y-%m-%d %H:%M}",
         f"{r['last_seen']:%Y-%m-%d %H:%M}")
        for r in rows
    ]  # fmt: skip
    header = ("KIND", "OBJECT", "STREAM", "SEEN", "FIRST SEEN (UTC)", "LAST SEEN (UTC)")
    lines = aligned(header, cells, right={3})
    kinds = sorted({r["kind"] for r in rows})
    lines += ["", "where to add them:"] + [f"  {k:<20} {WHERE_TO_ADD.get(k, '')}" for k in kinds]
    return "\n".join(lines)
