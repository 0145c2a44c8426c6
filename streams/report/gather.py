"""What the report shows, read from ClickHouse for its period: each section's rows by the column
that dates them (see streams/report/__init__.py), through the CLI's own queries where it has one."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, NamedTuple

from schemas.models import SEVERITY_RANK
from streams.alert_query import NO_ORG, Listing, handling, query_alerts
from streams.clickhouse import tables_present
from streams.engine import COVERAGE_GAP, SDK_LABEL
from streams.incident_query import query_incidents
from streams.report.lifecycle_figures import lifecycle
from streams.report.period import Period
from streams.report.take_outs import take_outs
from streams.transfer_ledger import LEDGER, provided

# at most this many alerts and incidents in a report's tables; a longer list says how many it cut
TABLE_LIMIT = 5000


def _hourly(
    client: Any, column: str, counted: str, table: str, where: str, params: dict[str, Any], period: Period
) -> list[tuple[datetime, str, int]]:
    """(the bank's hour of `column`, a label, its count) for `counted` ("label, count") of `table`
    where `where`: hours of the bank's zone (one of a half-hour offset starts at :30 UTC)."""
    return [
        (datetime.fromtimestamp(h, UTC), label, n)
        for h, label, n in client.query(
            f"SELECT toUnixTimestamp(toStartOfHour({column}, {{zone:String}})), {counted} FROM {table} "
            f"WHERE {where} GROUP BY 1, 2 ORDER BY 1",
            parameters={**params, "zone": period.zone.key},
        ).result_rows
    ]


# the stream whose event time may be a record's own date, not when lifemon saw it: a record still
# held is logged with its collection (a demo's from 2007); the days it was collected are history
# (the retention detector's), not the data window
RECORD_DATED = "lifecycle"


class BackDated(NamedTuple):
    """The record-dated events before the data window: how many, and the earliest's minute."""

    events: int
    earliest: datetime


def _window(
    client: Any, db: str, where: str, params: dict[str, Any]
) -> tuple[tuple[datetime, datetime] | None, BackDated | None]:
    """The minutes of the first and the last event the page counts, the period its figures cover,
    and the record-dated events before it. The window starts at the first event of the other
    streams where they have any: a new user's one-day demo read "data window 2007-10-18 16:19 –
    2026-01-01", its start a record's collection date."""
    spans = {
        dated: (first, last)
        for dated, first, last in client.query(
            f"SELECT stream = '{RECORD_DATED}' AS dated, toUnixTimestamp(min(minute)), "
            f"toUnixTimestamp(max(minute)) FROM {db}.event_rollups FINAL WHERE {where} "
            "GROUP BY dated HAVING sum(events) > 0",
            parameters=params,
        ).result_rows
    }
    if not spans:
        return None, None
    first = (spans.get(False) or spans[True])[0]
    last = max(end for _, end in spans.values())
    window = (datetime.fromtimestamp(first, UTC), datetime.fromtimestamp(last, UTC))
    dated = spans.get(True)
    if dated is None or dated[0] >= first:
        return window, None
    n, earliest = client.query(
        f"SELECT sum(events), toUnixTimestamp(min(minute)) FROM {db}.event_rollups FINAL WHERE {where} "
        f"AND stream = '{RECORD_DATED}' AND minute < toDateTime({{first:UInt32}}, 'UTC')",
        parameters={**params, "first": first},
    ).result_rows[0]
    return window, BackDated(n, datetime.fromtimestamp(earliest, UTC))


def gather(client: Any, db: str, period: Period | None = None) -> dict[str, Any]:
    """What the page shows, within `period` (default: everything stored, in UTC)."""
    period = period or Period()
    q = client.query
    events = f"stream NOT IN ('{COVERAGE_GAP}', '{SDK_LABEL}')"
    in_minutes, params = period.where("minute")
    by_hour = _hourly(
        client,
        "minute",
        "stream, sum(events)",
        f"{db}.event_rollups FINAL",
        f"{events}{in_minutes}",
        params,
        period,
    )
    by_class = q(
        f"SELECT stream, jr_class, sum(events) FROM {db}.event_rollups FINAL "
        f"WHERE {events}{in_minutes} GROUP BY 1, 2 ORDER BY 1",
        parameters=params,
    ).result_rows
    gaps = q(
        f"SELECT kind, object, stream, sum(seen) FROM {db}.coverage_gaps WHERE 1{in_minutes} "
        "GROUP BY 1, 2, 3 ORDER BY 4 DESC LIMIT 20",
        parameters=params,
    ).result_rows
    # alerts whose last event is in the period: `lifemon alerts --since --until`'s query, so the
    # ids are the CLI's, cut (past TABLE_LIMIT) to the most severe and biggest, never to the newest;
    # then what the page shows and the list does not (org, class, first event)
    listed = query_alerts(
        client, db, since=period.since, until=period.until, limit=TABLE_LIMIT, order="severity"
    )
    # every alert of the period (the same filter), not the rows shown, by the bank's hour of its last
    # event and severity: the alerts chart, and the severity figures summed from it
    in_last, last_params = period.where("last_seen")
    alerts_by_hour = _hourly(
        client, "last_seen", "severity, count()", f"{db}.alerts FINAL", f"1{in_last}", last_params, period
    )
    alert_severities: dict[str, int] = {}
    for _, severity, n in alerts_by_hour:
        alert_severities[severity] = alert_severities.get(severity, 0) + n
    # and by org, those of none in one named bucket: the overview's org panel's rows, its query's
    # order (the most critical and high first)
    by_org = q(
        f"SELECT if(actor_org = '', {{none:String}}, actor_org) AS org, countIf(severity = 'critical') AS c, "
        f"countIf(severity = 'high') AS h, count() - c - h AS o FROM {db}.alerts FINAL WHERE 1{in_last} "
        "GROUP BY org ORDER BY c + h DESC, c + h + o DESC, org",
        parameters={**last_params, "none": NO_ORG},
    ).result_rows
    # alerts whose last event precedes the period: a record overdue since an earlier month that
    # the monitor first saw in this one (a new user's January report had 60 of the demo's 64)
    before = (
        q(
            f"SELECT count() FROM {db}.alerts FINAL WHERE last_seen < {{since:DateTime64(3, 'UTC')}}",
            parameters={"since": period.since},
        ).result_rows[0][0]
        if period.since
        else 0
    )
    more = {
        row[0]: row[1:]
        for row in q(
            f"SELECT alert_id, actor_org, jr_class, first_seen FROM {db}.alerts FINAL "
            "WHERE alert_id IN {ids:Array(String)}",
            parameters={"ids": [r["alert_id"] for r in listed.rows]},
        ).result_rows
    }
    alerts = [
        dict(
            r,
            actor_org=more[r["alert_id"]][0],
            jr_class=more[r["alert_id"]][1],
            first_seen=more[r["alert_id"]][2],
        )
        for r in listed.rows
        if r["alert_id"] in more
    ]
    # the most severe first, then the biggest: what management reads first
    alerts.sort(
        key=lambda a: (
            -SEVERITY_RANK.get(a["severity"], -1),
            -max((a["counts"] or {}).get("records", 0), a["subject_count"]),
            a["alert_id"],
        )
    )
    in_seen, seen_params = period.where("seen_at")
    dead = q(
        f"SELECT kind, count() FROM {db}.dead_letters FINAL WHERE 1{in_seen} GROUP BY kind ORDER BY 2 DESC",
        parameters=seen_params,
    ).result_rows
    window, back_dated = _window(client, db, f"{events}{in_minutes}", params)
    # a database a lifemon before the incidents table wrote has none yet (the next run creates it);
    # incidents first seen in the period, as `lifemon incidents --since --until` lists them
    # (earliest deadline first, so a cut keeps the earliest: its caption counts every severity)
    has_incidents = tables_present(client, db, ["incidents"])
    incidents = (
        query_incidents(client, db, since=period.since, until=period.until, limit=TABLE_LIMIT)
        if has_incidents
        else Listing([], 0)
    )
    in_first, first_params = period.where("first_seen")
    incident_severities = (
        dict(
            q(
                f"SELECT severity, count() FROM {db}.incidents FINAL WHERE 1{in_first} GROUP BY severity",
                parameters=first_params,
            ).result_rows
        )
        if has_incidents
        else {}
    )
    return {
        "period": period,
        "by_hour": by_hour,
        "by_class": by_class,
        "alerts": alerts,
        "alerts_total": sum(alert_severities.values()),
        "alert_severities": alert_severities,
        "alerts_by_hour": alerts_by_hour,
        "alerts_by_org": by_org,
        "alerts_before": before,
        "incidents": incidents.total,
        "incident_rows": incidents.rows,
        "incident_severities": incident_severities,
        "dead": dead,
        "window": window,
        "back_dated": back_dated,
        "gaps": gaps,
        "take_outs": take_outs(client, db, period),
        "lifecycle": lifecycle(client, db, period),
        # a database no lifemon with the ledger has started on yet has no table: no section, not "none"
        "provided": provided(client, db, *period.where("ts"))
        if tables_present(client, db, [LEDGER])
        else None,
        # the same alerts (last event in the period), as `lifemon alerts --review` times them
        "handling": handling(client, db, since=period.since, until=period.until),
    }
