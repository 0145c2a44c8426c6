"""`lifemon report`: one self-contained HTML page for compliance management, read from ClickHouse.

Charts are inline SVG (no scripts, no network), so the page can be mailed or archived as evidence.
It shows only what the tables hold: counts, pseudonyms and summaries, never a PFI value.

A report covers a period (`--month`, the bank's calendar month; `--since` / `--until`; default
everything stored) and every section keeps to it: events and coverage gaps by their minute, alerts
by their last event (as `lifemon alerts --since/--until` selects them, through the same query, so
the two list the same ids), incidents by their first event (as `lifemon incidents` does, through
its query), dead letters by when lifemon refused them. Times are in the bank's zone
(recipients.yaml `timezone`), UTC beside them for a SIEM.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from html import escape
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from detectors.base import n_of
from schemas.models import READS, SEVERITY_RANK, Action
from streams.alert_query import (
    NO_ORG,
    NO_ORG_WORD,
    Handling,
    Listing,
    handling,
    query_alerts,
    records_and_customers,
    took,
)
from streams.clickhouse import has_column, tables_present
from streams.engine import COVERAGE_GAP, SDK_LABEL
from streams.incident_query import SAME_LEAK, amounts, customers, next_owed, query_incidents
from streams.transfer_ledger import LEDGER, provided
from streams.transfer_ledger import render as render_provided

SEVERITY_ZH = {"critical": "严重", "high": "高", "medium": "中", "low": "低", "info": "提示"}
SEVERITY_COLOURS = {
    "critical": "#7b1f1f",
    "high": "#c0392b",
    "medium": "#e67e22",
    "low": "#f1c40f",
    "info": "#95a5a6",
}
STREAM_COLOURS = ["#2c7fb8", "#7fcdbb", "#f03b20", "#756bb1", "#fdae6b"]
CLASS_COLOURS = {"C3": "#c0392b", "C2": "#e67e22", "C1": "#7f8c8d"}


def _round_up(n: int) -> int:
    """The axis's top: `n` rounded up to 1, 2, 2.5, 3, 4, 5, 6 or 8 times a power of ten (35 089 ->
    40 000), so its ticks read as round numbers."""
    mag = 10 ** (len(str(max(n, 1))) - 1)
    return next(int(m * mag) for m in (1, 2, 2.5, 3, 4, 5, 6, 8, 10) if m * mag >= n)


def _bars(
    title: str,
    rows: list[tuple[str, dict[str, int]]],
    series: list[str],
    colours: dict[str, str],
    whole: dict[str, int] | None = None,
    unit: str = "hours",
) -> str:
    """A stacked bar chart: one bar per row label, one stack segment per series. `whole`: each
    series' count beyond the rows too (events dated outside the charted `unit`), said in the legend."""
    width, height, left, bottom = 760, 220, 50, 40
    peak = _round_up(max((sum(v.values()) for _, v in rows), default=0))
    # the right margin holds half a date: the label of a month's last day, centred under its bar,
    # was cut at the edge ("2026-01-3")
    bar_w = (width - left - 30) / max(len(rows), 1)
    parts = [f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">']
    for frac in (0.5, 1.0):
        y = height - bottom - frac * (height - bottom - 10)
        parts.append(
            f'<line x1="{left}" x2="{width}" y1="{y:.0f}" y2="{y:.0f}" class="grid"/>'
            f'<text x="{left - 6}" y="{y + 4:.0f}" class="axis" text-anchor="end">{peak * frac:,.{0 if peak * frac % 1 == 0 else 1}f}</text>'
        )
    for i, (label, values) in enumerate(rows):
        x, y = left + i * bar_w, height - bottom
        for s in series:
            # a segment of a few events is drawn 2 px high, or it would vanish beside thousands: 15
            # C3 events of 50 000 were nowhere to be seen (its count is in its tooltip and the legend)
            h = values.get(s, 0) and max(values[s] / peak * (height - bottom - 10), 2.0)
            if h:
                y -= h
                parts.append(
                    f'<rect x="{x + 1:.1f}" y="{y:.1f}" width="{max(bar_w - 2, 1):.1f}" height="{h:.1f}" '
                    f'fill="{colours[s]}"><title>{escape(label)} {escape(s)}: {values[s]:,}</title></rect>'
                )
        if len(rows) <= 12 or i % max(len(rows) // 8, 1) == 0:
            # "2026-01-01 13:00" on two lines (date under the hour), so a full date fits under a bar
            lines = label.split(" ", 1) if re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", label) else [label]
            spans = "".join(
                f'<tspan x="{x + bar_w / 2:.0f}" dy="{12 if n else 0}">{escape(t)}</tspan>'
                for n, t in enumerate(reversed(lines))
            )
            parts.append(
                f'<text x="{x + bar_w / 2:.0f}" y="{height - bottom + 16}" class="axis" '
                f'text-anchor="middle">{spans}</text>'
            )
    # each series' total in the legend: a segment too thin to see is still counted here
    totals = {s: sum(v.get(s, 0) for _, v in rows) for s in series}
    beyond = {s: (whole or {}).get(s, 0) - totals[s] for s in series}
    legend = "".join(
        f'<span><i style="background:{colours[s]}"></i>{escape(s)} {totals[s]:,}'
        + (f" (+{beyond[s]:,} outside these {unit})" if beyond[s] > 0 else "")
        + "</span>"
        for s in series
    )
    return f'<figure><figcaption>{escape(title)}</figcaption>{"".join(parts)}</svg><div class="legend">{legend}</div></figure>'


# The take-outs as the detectors tell them (schemas.models TAKES_OUT, tests/test_report.py holds the
# two together), each a column of the section and of the overview dashboard's panel; a read is a
# view or a query (READS)
TAKEN_OUT = {
    Action.export: "exported / 导出",
    Action.download: "downloaded / 下载",
    Action.print: "printed / 打印",
}


class TakeOuts(NamedTuple):
    """One org's access events of one JR/T 0171 class in the period, by what they did with the data:
    each take-out action, read (view or query), and unknown (counted before the rollups kept the
    action). The overview dashboard's panel "Data taken out by org and class" counts the same."""

    org: str
    jr_class: str
    taken_out: tuple[int, ...]  # in TAKEN_OUT's order
    read: int
    unknown: int


def take_outs(client: Any, db: str, period: Period) -> list[TakeOuts]:
    """Per org and class, the access events that took data out against those that only read it
    (probe_v3 H4); the orgs that took out the most C3 data first, then the most C2. A table no `lifemon run`
    has upgraded yet has no action column: all of its events are unknown."""
    action = "action" if has_column(client, db, "event_rollups", "action") else "''"
    reads = ", ".join(f"'{a.value}'" for a in Action if a in READS)
    columns = "".join(f"sumIf(events, {action} = '{a.value}'), " for a in TAKEN_OUT)
    in_minutes, params = period.where("minute")
    rows = client.query(
        f"SELECT org, jr_class, [{columns.rstrip(', ')}] AS taken_out, "
        f"sumIf(events, {action} IN ({reads})) AS read, sumIf(events, {action} = '') AS unknown "
        f"FROM {db}.event_rollups FINAL WHERE stream = 'access'{in_minutes} GROUP BY org, jr_class "
        "HAVING arraySum(taken_out) + read + unknown > 0 "
        "ORDER BY sum(if(jr_class = 'C3', arraySum(taken_out), 0)) OVER (PARTITION BY org) DESC, "
        "sum(if(jr_class = 'C2', arraySum(taken_out), 0)) OVER (PARTITION BY org) DESC, org, jr_class DESC",
        parameters=params,
    ).result_rows
    return [TakeOuts(org, cls, tuple(out), read, unknown) for org, cls, out, read, unknown in rows]


# at most this many alerts and incidents in a report's tables; a longer list says how many it cut
TABLE_LIMIT = 5000
# the events chart: two weeks of events by the hour; longer, by the bank's day, at most the last
# CHART_DAYS (a quarter), what lies earlier said in its caption and legend
CHART_HOURS = 14 * 24
CHART_DAYS = 92


@dataclass(frozen=True)
class Period:
    """The report's period: [since, until) in UTC, either end open (None), said in the bank's zone
    (recipients.yaml `timezone`). `month`: the bank's calendar month it is, when `--month` chose it."""

    since: datetime | None = None
    until: datetime | None = None
    timezone: str = "UTC"
    month: str | None = None

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def ms(self) -> tuple[int | None, int | None]:
        """(since, until) in ms since the epoch; None where open."""
        since, until = (None if t is None else int(t.timestamp() * 1000) for t in (self.since, self.until))
        return since, until

    def where(self, column: str) -> tuple[str, dict[str, Any]]:
        """` AND column` within the period (bound parameters), and the parameters."""
        sql, params = "", {}
        if self.since:
            sql += f" AND {column} >= {{since:DateTime64(3, 'UTC')}}"
            params["since"] = self.since
        if self.until:
            sql += f" AND {column} < {{until:DateTime64(3, 'UTC')}}"
            params["until"] = self.until
        return sql, params


def month_period(month: str, timezone: str) -> Period:
    """`--month 2026-01`: the bank's calendar month, from its first midnight in `timezone` to the
    next month's (Asia/Shanghai's January: 2025-12-31 16:00 to 2026-01-31 16:00 UTC)."""
    year, number = (int(part) for part in month.split("-"))
    zone = ZoneInfo(timezone)
    start = datetime(year, number, 1, tzinfo=zone)
    end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=zone)
    return Period(start.astimezone(UTC), end.astimezone(UTC), timezone, month)


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
    # the minutes of the first and the last event the page counts: the period its figures cover
    first, last, total = q(
        f"SELECT toUnixTimestamp(min(minute)), toUnixTimestamp(max(minute)), sum(events) "
        f"FROM {db}.event_rollups FINAL WHERE {events}{in_minutes}",
        parameters=params,
    ).result_rows[0]
    window = (datetime.fromtimestamp(first, UTC), datetime.fromtimestamp(last, UTC)) if total else None
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


def lifecycle(client: Any, db: str, period: Period | None = None) -> dict[str, Any] | None:
    """The lifecycle dashboard's figures in one line each, as of the period's end, or of the last
    event seen when none came after it (a demo or a replayed day is judged at its own end, not by the
    wall clock): the retention backlog, deletion requests made by then and open then, and those open
    past their deadline, contracts ended or ending within 90 days. The backlog is a state: the
    retention alerts whose deadline had passed by then and that are not closed now (an alert keeps
    its newest status only), a record overdue across a month end in both months'; `overdue_since`,
    those of them whose deadline passed in the period, counts each record in one period alone. The
    lifecycle panels' figures at the same instant (a probe's `--month 2025-10` counted requests made
    in December, and records stored by then, not due; probe_v3 M7: a deadline passed after a month's
    last event was in its alerts and in the next month's backlog only)."""
    q = client.query
    period = period or Period()
    in_minutes, params = period.where("minute")
    seen, last, latest = q(
        f"SELECT countIf(1{in_minutes}), toUnixTimestamp(maxIf(minute, 1{in_minutes}) + 60) * 1000, "
        f"toUnixTimestamp(max(minute) + 60) * 1000 FROM {db}.event_rollups FINAL "
        f"WHERE stream NOT IN ('{COVERAGE_GAP}', '{SDK_LABEL}')",
        parameters=params,
    ).result_rows[0]
    if not seen:
        return None  # no event yet: nothing to judge against
    # the period's end where later events say the monitor's clock passed it (each deadline before it
    # has fired), to the second as Grafana's $__toTime; else the minute after its last event
    as_of = min(int(period.until.timestamp()) * 1000, latest) if period.until else last
    start = period.ms[0] or 0
    # due strictly before then, as the backlog panel (`window_end < $__toTime_ms`): a deadline at a
    # period's end is the next period's, as an alert's time is. Records, not alerts: a batch's alert
    # counts those it still keeps (retention_overrun `Batch`)
    backlog, since, oldest = q(
        f"SELECT sum(records), sumIf(records, due >= {start}), intDiv({as_of} - min(due), 86400000) FROM (SELECT "
        f"toUnixTimestamp64Milli(window_end) AS due, if(mapContains(counts, 'kept'), counts['kept'], 1) AS records "
        f"FROM {db}.alerts FINAL WHERE detector = 'retention_overrun' "
        f"AND endsWith(rule_id, '.retention_expired') AND status != 'closed') WHERE due < {as_of}"
    ).result_rows[0]
    # executed in the period, as the lifecycle panel counts them: those past their 15 days too (a
    # probe's examiner found a request executed 4 days late in the panel, and nowhere in the report)
    executed = f"executed >= {start} AND executed <= {as_of}"
    requests, overdue, done, late, longest = q(
        f"SELECT countIf(requested <= {as_of} AND (done = 0 OR done > {as_of})), "
        f"countIf(due <= {as_of} AND (done = 0 OR done > {as_of})), "
        f"countIf({executed}), countIf({executed} AND executed > due), "
        f"if(countIf({executed}) = 0, 0, maxIf(greatest(executed - requested, 0), {executed})) "
        "FROM (SELECT minIf(toUnixTimestamp64Milli(ts), stage = 'deletion_requested') AS requested, "
        "minIf(toUnixTimestamp64Milli(due), stage = 'deletion_requested') AS due, "
        "minIf(toUnixTimestamp64Milli(ts), stage != 'deletion_requested') AS done, "
        "minIf(toUnixTimestamp64Milli(ts), stage NOT IN "
        "('deletion_requested', 'deletion_refused', 'deletion_withdrawn')) AS executed "
        f"FROM {db}.deletion_events GROUP BY record_id HAVING countIf(stage = 'deletion_requested') > 0)"
    ).result_rows[0]
    ended, ending = q(
        f"SELECT countIf(ends <= {as_of}), countIf(ends > {as_of} AND ends <= {as_of} + 90 * 86400000) "
        "FROM (SELECT max(toUnixTimestamp64Milli(valid_until)) AS ends "
        f"FROM {db}.recipient_contracts FINAL WHERE policy_loaded = "
        f"(SELECT max(policy_loaded) FROM {db}.recipient_contracts) GROUP BY recipient_id)"
    ).result_rows[0]
    return {
        "as_of": datetime.fromtimestamp(as_of / 1000, UTC),
        "backlog": backlog,
        "overdue_since": since,
        "oldest_days": oldest if backlog else 0,
        "requests": requests,
        "overdue": overdue,
        "executed": done,
        "executed_late": late,
        "longest_days": longest / 86_400_000,
        "ended": ended,
        "ending": ending,
    }


def busiest_hours(
    by_hour: list[tuple[datetime, str, int]],
    floor: float = 0.01,
    max_hours: int = 336,
    zone: ZoneInfo | None = None,
) -> list:
    """Hours from the first to the last with at least `floor` of the peak hour's events (at most
    two weeks, the latest), gaps filled with zeros: a few back-dated lifecycle records must not
    squeeze the days that matter into one corner of the chart. Labelled in `zone` (default UTC)."""
    hours: dict[datetime, dict[str, int]] = {}
    for hour, stream, n in by_hour:
        hours.setdefault(hour, {})[stream] = hours.get(hour, {}).get(stream, 0) + n
    if not hours:
        return []
    peak = max(sum(v.values()) for v in hours.values())
    busy = sorted(h for h, v in hours.items() if sum(v.values()) >= peak * floor)
    first = max(busy[0], busy[-1] - timedelta(hours=max_hours - 1))
    count = int((busy[-1] - first).total_seconds() // 3600) + 1
    return [
        (
            (first + timedelta(hours=i)).astimezone(zone or UTC).strftime("%Y-%m-%d %H:00"),
            hours.get(first + timedelta(hours=i), {}),
        )
        for i in range(count)
    ]


def busiest_days(
    by_hour: list[tuple[datetime, str, int]],
    zone: ZoneInfo,
    floor: float = 0.01,
    max_days: int = 10**6,
    within: tuple[date, date] | None = None,
) -> list:
    """As busiest_hours, by the bank's calendar day: a month's events in 31 bars, not its last two
    weeks in hours; at most the last `max_days`. `within`: the first and last day to draw, those
    without a count too (a month's alerts on every day of it, not from its first alert's day)."""
    days: dict[date, dict[str, int]] = {}
    for hour, stream, n in by_hour:
        day = days.setdefault(hour.astimezone(zone).date(), {})
        day[stream] = day.get(stream, 0) + n
    if not days:
        return []
    peak = max(sum(v.values()) for v in days.values())
    busy = sorted(d for d, v in days.items() if sum(v.values()) >= peak * floor)
    first, last = within or (busy[0], busy[-1])
    span = range(max(first.toordinal(), last.toordinal() - max_days + 1), last.toordinal() + 1)
    return [(f"{date.fromordinal(n):%Y-%m-%d}", days.get(date.fromordinal(n), {})) for n in span]


def render(data: dict[str, Any], generated: datetime | None = None) -> str:
    period: Period = data.get("period") or Period()
    zone = period.zone
    hours = busiest_hours(data["by_hour"], max_hours=CHART_HOURS + 1, zone=zone)
    per = "hour"
    if len(hours) > CHART_HOURS:  # more than two weeks (a month): a bar per day of the bank's calendar
        # at most the last CHART_DAYS: records back-dated years (retention, everything stored) must
        # not draw thousands of bars; the caption says what lies outside
        hours, per = busiest_days(data["by_hour"], zone, max_days=CHART_DAYS), "day"
    volume: dict[str, int] = {}
    for _, stream, n in data["by_hour"]:
        volume[stream] = volume.get(stream, 0) + n
    streams = sorted(volume, key=volume.__getitem__, reverse=True)  # the biggest at the bottom
    classes: dict[str, dict[str, int]] = {}
    for stream, cls, n in data["by_class"]:
        classes.setdefault(stream, {})[cls] = n
    total = sum(n for _, _, n in data["by_hour"])
    severities: dict[str, int] = data.get("alert_severities") or {}
    if "alert_severities" not in data:  # a page built from a list of alerts alone (no gather)
        for a in data["alerts"]:
            severities[a["severity"]] = severities.get(a["severity"], 0) + 1
    alerts_total = data.get("alerts_total", len(data["alerts"]))
    kpis = [("events monitored / 监测事件", f"{total:,}"), ("alerts / 告警", f"{alerts_total:,}")]
    kpis += [(f"{s} / {SEVERITY_ZH[s]}", f"{severities[s]:,}") for s in SEVERITY_COLOURS if s in severities]
    c3 = sum(n for _, cls, n in data["by_class"] if cls == "C3")
    # authentication data (JR/T 0171 C3) is a few events among tens of thousands: counted on its own
    kpis.insert(1, ("C3 events / C3 类事件", f"{c3:,}"))
    kpis.append(("leakage incidents / 泄露事件", f"{data.get('incidents', 0):,}"))
    kpis.append(("dead letters / 死信", f"{sum(n for _, n in data['dead']):,}"))
    stream_colours = {s: STREAM_COLOURS[i % len(STREAM_COLOURS)] for i, s in enumerate(streams)}
    title = {
        "hour": "Events per hour by stream / 各数据流每小时事件数",
        "day": "Events per day by stream / 各数据流每日事件数",
    }
    charted = sum(sum(v.values()) for _, v in hours)
    outside = ""
    if total > charted:
        earliest = _local(min(h for h, _, _ in data["by_hour"]), zone)
        outside = (
            f" — {total - charted:,} events outside the chart (earliest {earliest:%Y-%m-%d}) / "
            f"{total - charted:,} 条事件在图外"
        )
    window = data.get("window")
    bounded = period.since or period.until
    empty = "no events in the period / 期内无事件" if bounded else "no events yet / 尚无事件"
    if total or classes:
        charts = _bars(
            f"{title[per]} ({zone.key}){outside}", hours, streams, stream_colours, volume, unit=f"{per}s"
        )
        present = [c for c in CLASS_COLOURS if any(c in v for v in classes.values())]
        class_chart = _bars(
            "Events by JR/T 0171 class / 按敏感类别 (C3/C2/C1)",
            sorted(classes.items()),
            present,
            CLASS_COLOURS,
        )
        charts += f'<div class="beside">{class_chart}{_class_counts(classes)}</div>'
    else:  # two empty charts drew an axis of 0 to 1 events with a tick at 0.5 (probe_s3 #10)
        charts = f'<p class="nocharts">{empty}: no chart of events / 无事件图表</p>'
    covered = _range(window[0], window[1], zone) if window else empty
    first_bar = f"{_local(window[0], zone):%Y-%m-%d %H:00}" if window else ""
    if window and hours and hours[0][0] > first_bar[: len(hours[0][0])]:
        # back-dated lifecycle history starts the window years early; the chart skips it
        covered += f" · chart / 图: {hours[0][0]} – {hours[-1][0]} {zone.key}"
    return f"""<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<title>lifemon report / 个人金融信息生命周期监测报告{escape(_title(period))}</title><style>
body{{font-family:"Noto Sans CJK SC","Noto Sans",sans-serif;margin:24px;color:#222;max-width:1280px}}
h1{{font-size:22px;margin:0}} .sub{{color:#666;margin:4px 0 18px}}
.kpis{{display:flex;gap:12px;flex-wrap:wrap}} .kpi{{border:1px solid #ddd;border-radius:6px;padding:8px 14px}}
.kpi b{{display:block;font-size:22px}} .kpi span{{color:#666;font-size:12px}}
figure{{margin:18px 0}} figcaption{{font-weight:600;margin-bottom:4px}} svg{{width:100%;height:auto}}
.grid{{stroke:#eee}} .axis{{font-size:10px;fill:#666}} .legend span{{margin-right:12px;font-size:12px}}
.legend i{{display:inline-block;width:10px;height:10px;margin-right:4px}}
table{{border-collapse:collapse;width:100%;font-size:13px}} td,th{{border-bottom:1px solid #eee;padding:6px;text-align:left;vertical-align:top}}
.n{{text-align:right}} .sev{{color:#fff;padding:2px 6px;border-radius:4px;font-size:11px}}
.window{{margin:8px 0 0;font-size:15px}} .beside{{display:flex;gap:18px;align-items:center}}
.beside figure{{flex:1 1 auto}} .beside table{{width:auto;flex:none}} .c3{{color:#c0392b;font-weight:700}}
code{{font-size:12px}} small{{color:#555}} td.t{{white-space:nowrap}} table.orgs{{width:auto;min-width:50%}}
.passed{{color:#c0392b;font-weight:600}} td.rule{{min-width:180px}} td.summary{{min-width:220px;overflow-wrap:anywhere}}
</style></head><body>
<h1>lifemon — 个人金融信息生命周期监测报告 / PFI lifecycle report</h1>
<p class="period">report period / 报告期: <b>{_period(period)}</b></p>
<p class="window">data window / 数据时间范围: <b>{covered}</b> <small>(first and last event in the period, to the minute / 期内首末事件时间)</small></p>
<p class="sub">generated {_when(generated or datetime.now(UTC), zone)} · times in {escape(zone.key)}, UTC beside
them · customer ids are HMAC pseudonyms · JR/T 0171-2020, PIPL</p>
<div class="kpis">{"".join(f'<div class="kpi"><b>{v}</b><span>{escape(k)}</span></div>' for k, v in kpis)}</div>
{charts}
{_alert_chart(data.get("alerts_by_hour"), data.get("alert_severities") or {}, period)}
{_take_outs(data.get("take_outs") or [], bool(total))}
{_lifecycle(data.get("lifecycle"), zone)}
{render_provided(data.get("provided"), *period.ms, zone)}
{_gaps(data.get("gaps", []))}
{_incidents(data.get("incident_rows", []), data.get("incidents", 0), period, generated or datetime.now(UTC), data.get("incident_severities") or {})}
{_handling(data.get("handling") or [], period)}
{_orgs(data.get("alerts_by_org") or [], period)}
{_alerts(data["alerts"], alerts_total, period, data.get("alerts_before", 0))}
</body></html>"""


def _alert_chart(
    by_hour: list[tuple[datetime, str, int]] | None, whole: dict[str, int], period: Period
) -> str:
    """The period's alerts by the day of their last event (by the hour, when they fall in two days
    or fewer) and severity, as the alerts table selects them: management looks at it before it reads
    the table (probe_v3 M5). A bounded period draws each of its days, an alert-free one too."""
    if by_hour is None:  # a page built from a list of alerts alone (no gather)
        return ""
    if not by_hour:
        return '<p class="nocharts">no alerts in the period / 期内无告警: no chart of alerts / 无告警图表</p>'
    zone = period.zone
    within = (
        (_local(period.since, zone).date(), _local(period.until - timedelta(milliseconds=1), zone).date())
        if period.since and period.until
        else None
    )
    rows, per = busiest_days(by_hour, zone, floor=0, max_days=CHART_DAYS, within=within), "day"
    if len(rows) <= 2:
        rows, per = busiest_hours(by_hour, floor=0, max_hours=CHART_HOURS, zone=zone), "hour"
    series = [s for s in SEVERITY_COLOURS if s in whole]
    title = {"day": "Alerts per day / 每日告警数", "hour": "Alerts per hour / 每小时告警数"}[per]
    return _bars(
        f"{title}, by severity / 按严重程度 ({zone.key}; by last event, as the alerts table / 按末次事件时间, 同告警表)",
        rows,
        series,
        SEVERITY_COLOURS,
        whole,
        unit=f"{per}s",
    )


def _title(period: Period) -> str:
    if period.month:
        return f" {period.month}"
    return "" if not (period.since or period.until) else f" {_period(period, html=False)}"


def _period(period: Period, html: bool = True) -> str:
    """The period chosen, in the bank's zone with UTC beside it; start included, end not."""
    zone = period.zone
    if not (period.since or period.until):
        return "everything stored / 全部数据" + (
            " <small>(no --month, --since or --until)</small>" if html else ""
        )
    if period.since and period.until:
        text = _range(period.since, period.until, zone, html)
    elif period.since:
        text = f"from / 自 {_range(period.since, None, zone, html)}"
    elif period.until:
        text = f"before / 截至 {_range(period.until, None, zone, html)}"
    month = f"{period.month} ({zone.key} calendar month / 本行所在时区自然月) · " if period.month else ""
    end = " <small>(start included, end excluded / 含起不含止)</small>" if html else ""
    return month + text + end


def _range(first: datetime, last: datetime | None, zone: ZoneInfo, html: bool = True) -> str:
    """`first – last` in the bank's zone, and in UTC beside it (where it differs)."""
    local = f"{_local(first, zone):%Y-%m-%d %H:%M}" + (
        f" – {_local(last, zone):%Y-%m-%d %H:%M}" if last else ""
    )
    if zone.key == "UTC":
        return f"{local} UTC"
    utc = f"{_local(first, UTC):%Y-%m-%d %H:%M}" + (f" – {_local(last, UTC):%Y-%m-%d %H:%M}" if last else "")
    return f"{local} {zone.key} " + (f"<small>({utc} UTC)</small>" if html else f"({utc} UTC)")


def _when(t: datetime, zone: ZoneInfo) -> str:
    """One time in the bank's zone, UTC beside it."""
    return _range(t, None, zone, html=False)


def _cell(t: datetime, zone: ZoneInfo, beneath: str = "") -> str:
    """A table cell's time: the bank's zone, then `beneath` (html), then UTC for a SIEM."""
    utc = "" if zone.key == "UTC" else f"<br><small>{_local(t, UTC):%Y-%m-%d %H:%M} UTC</small>"
    return f"{_local(t, zone):%Y-%m-%d %H:%M}{beneath}{utc}"


def _local(t: datetime, zone: ZoneInfo | Any) -> datetime:
    """`t` in `zone`; ClickHouse's DateTime64(3, 'UTC') may come back naive, meaning UTC."""
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).astimezone(zone)


def _iso(t: datetime, zone: ZoneInfo) -> str:
    """A period's end as `lifemon alerts --since` takes it: the bank's time, its offset (+08:00)."""
    return _local(t, zone).isoformat(timespec="minutes")


def _listing_command(command: str, period: Period, total: int) -> str:
    """The CLI command that lists the same rows as the report's table, to cross-check it."""
    return f"lifemon {command}{_period_args(period)} --limit {max(total, 1)}"


def _period_args(period: Period) -> str:
    """` --since … --until …`: the period as `lifemon alerts` takes it."""
    ends = [(f"--{n}", t) for n, t in (("since", period.since), ("until", period.until)) if t]
    return "".join(f" {flag} {_iso(t, period.zone)}" for flag, t in ends)


def _cut(shown: int, total: int, what: str, kept: str, note: str = "") -> str:
    """A cut table's line: which `shown` rows of `total` it kept (`kept`: "the most severe")."""
    if total <= shown:
        return ""
    return f"<p class=sub><b>the {shown:,} {kept} of {total:,} {what} shown</b>{note}</p>"


def _severities(counts: dict[str, int]) -> str:
    """`1 critical, 5,000 high`: most severe first."""
    order = [*(s for s in SEVERITY_COLOURS if s in counts), *(s for s in counts if s not in SEVERITY_COLOURS)]
    return ", ".join(f"{counts[s]:,} {s}" for s in order if counts[s])


def _review(review: str | None) -> str:
    """An alert's or incident's review under its status; nothing for one not reviewed (most)."""
    if not review or review == "unreviewed":
        return ""
    shown = "false positive / 误报" if review == "false_positive" else review
    return f"<br><small class=review>{escape(shown)}</small>"


def _false_positives(alerts: list[dict[str, Any]]) -> str:
    n = sum(a.get("review") == "false_positive" for a in alerts)
    return f" ({n:,} of those shown / 误报{n:,}条)" if n else ""


def _alerts(alerts: list[dict[str, Any]], total: int, period: Period, before: int = 0) -> str:
    """The alerts whose last event falls in the period, most severe and biggest first, with the id,
    detector and status `lifemon alerts` shows for them; `before`: how many stored alerts have their
    last event before the period (said, with the command that lists them)."""
    zone = period.zone
    earlier = (
        f" <b>{n_of(before, 'alert')} stored</b> have their last event before the "
        f"period (a retention or deletion deadline passed earlier, say, though the monitor first saw it "
        f"in this one): <code>lifemon alerts --until {escape(_iso(period.since, zone))}</code> lists them."
        if before and period.since
        else ""
    )
    rows = "".join(
        f'<tr><td><b class="sev" style="background:{SEVERITY_COLOURS.get(a["severity"], "#999")}">'
        f"{escape(a['severity'])}</b></td><td><code class=id>{escape(a['alert_id'][:12])}</code></td>"
        f"<td>{escape(a['status'])}{_review(a.get('review'))}</td><td>{escape(a['detector'])}</td>"
        f"<td class=rule>{escape(a['title_zh'])}<br><small>{escape(a['title_en'])}</small></td>"
        f"<td>{escape(a['actor_id'])}<br><small>{escape(a['actor_org'] or NO_ORG)}</small></td>"
        f"{_counted(*records_and_customers(a['subject_count'], a['counts'] or {}))}<td>{escape(a['jr_class'])}</td>"
        f"<td class=t>{_cell(a['last_seen'], zone, _first(a['first_seen'], a['last_seen'], zone))}</td>"
        f"<td class=summary><small>{escape(a['summary'])}</small></td></tr>"
        for a in alerts
    )
    return f"""<h2>Alerts / 告警</h2><p class=sub>the alerts whose <b>last event</b> falls in the period (an
alert begun earlier is here, its first event beside it; one still growing after the period's end is
in the next period's report), most severe and biggest first; <code>{escape(_listing_command("alerts", period, total))}</code>
lists the same ids. status: the detector's episode (open, updated while it grows, closed: its
window passed; not a review), beneath it the analyst's review where there is one (<code>lifemon
alerts ack / resolve</code>): an alert resolved as a false positive stays listed and counted, marked
so{_false_positives(alerts)}. Records and customers as each detector counted them, — where it counts
no such thing or identified no customer; times in {escape(zone.key)}, UTC beneath.{earlier}</p>{_cut(len(alerts), total, "alerts", "most severe and biggest", " (the severity figures above count them all)")}
<table class=alerts><tr><th>severity</th><th>alert id</th><th>status / 状态</th><th>detector / 检测器</th>
<th>rule / 规则</th><th>actor / 人员</th><th class=n>records / 记录</th><th class=n>customers / 客户</th><th>class</th>
<th>last event / 末次事件</th><th>summary</th></tr>{rows or "<tr><td colspan=11>no alerts in the period / 期内无告警</td></tr>"}</table>"""


def _handling(rows: list[Handling], period: Period) -> str:
    """How the SOC handled the period's alerts, by severity: each review state's count now, and how
    long it took to acknowledge and to resolve them (the overview dashboard's "Alert handling")."""
    if not rows:
        return ""
    body = "".join(
        f"<tr><td>{escape(h.severity or 'all / 合计')}</td>"
        + "".join(
            f"<td class=n>{n:,}</td>"
            for n in (h.alerts, h.acknowledged, h.resolved, h.false_positive, h.unreviewed)
        )
        + "".join(
            f"<td class=n>{took(median)}</td><td class=n>{took(p90)}</td><td class=n>{n:,}</td>"
            for n, median, p90 in (
                (h.acknowledge_timed, h.acknowledge_median_s, h.acknowledge_p90_s),
                (h.resolve_timed, h.resolve_median_s, h.resolve_p90_s),
            )
        )
        + "</tr>"
        for h in rows
    )
    times = "<th class=n>median / 中位数</th><th class=n>p90</th><th class=n>timed / 计时</th>"
    return f"""<h2>Alert handling / 告警处置时效</h2><p class=sub>the period's alerts (as the table below
chooses them) by severity: their review now, as <code>lifemon alerts --review STATE{escape(_period_args(period))}</code>
lists them (acknowledged: taken, not closed out; a review that events came after counts as
none), and the time from when lifemon first stored each alert to its first review of any kind (to
acknowledge) and to its first <code>lifemon alerts resolve</code>, as resolved or a false positive (to
resolve). timed: the alerts so reviewed whose first storage is known (one revised before this
release kept it is counted, not timed)</p>
<table class=handling><tr><th rowspan=2>severity / 严重程度</th><th class=n rowspan=2>alerts / 告警</th>
<th class=n rowspan=2>acknowledged / 已确认</th><th class=n rowspan=2>resolved / 已处置</th>
<th class=n rowspan=2>false positive / 误报</th><th class=n rowspan=2>unreviewed / 未复核</th>
<th colspan=3>time to acknowledge / 确认用时</th><th colspan=3>time to resolve / 处置用时</th></tr>
<tr>{times}{times}</tr>{body}</table>"""


def _orgs(rows: list[tuple[str, int, int, int]], period: Period) -> str:
    """The period's alerts by the org of the employee each is about, by severity, the alerts no org
    is known for in one named row, so the rows add up to every alert of the period (probe_v3 M6)."""
    if not rows:
        return ""
    counts = [(c, h, o, c + h + o) for _, c, h, o in rows]
    body = "".join(
        f"<tr><td>{escape(org)}</td>" + "".join(f"<td class=n>{n:,}</td>" for n in ns) + "</tr>"
        for (org, *_), ns in zip(rows, counts, strict=True)
    )
    total = "".join(f"<th class=n>{sum(column):,}</th>" for column in zip(*counts, strict=True))
    return f"""<h2>Alerts by organisation / 各机构告警</h2><p class=sub>the period's alerts (as the table below
chooses them) by the org of the employee each is about, as the entitlements feed had it; <b>{escape(NO_ORG)}</b>:
the alerts no org is known for (a recipient's, an SDK's, a system's that keeps the records, an account the
feed does not know), counted so the rows add up to every alert of the period. The overview dashboard's
"Organisations with the most alerts" counts them alike (its 19 with the most, this row, the rest as
其他机构 / other orgs); <code>lifemon alerts --org ORG{escape(_period_args(period))}</code> lists an org's
(<code>--org {NO_ORG_WORD}</code>: those of no org known)</p>
<table class=orgs><tr><th>org / 机构</th><th class=n>critical / 严重</th><th class=n>high / 高</th>
<th class=n>other / 其他</th><th class=n>alerts / 告警</th></tr>{body}<tr><th>total / 合计</th>{total}</tr></table>"""


def _incidents(
    rows: list[dict[str, Any]],
    total: int,
    period: Period,
    now: datetime,
    severities: dict[str, int] | None = None,
) -> str:
    """Leakage incidents first seen in the period, as `lifemon incidents` lists them (the earliest
    report still owed first): the response team's deadlines, for management."""
    zone = period.zone
    body = "".join(
        f"<tr><td><code class=id>{escape(r['incident_id'][:12])}</code></td>"
        f'<td><b class="sev" style="background:{SEVERITY_COLOURS.get(r["severity"], "#999")}">'
        f"{escape(r['severity'])}</b></td><td>{escape(r['status'])}{_review(r.get('review'))}</td>"
        f"<td class=rule>{escape(r['title_zh'])}<br><small>{escape(r['key_kind'])} {escape(r['key'])}</small>"
        + "".join(f"<br><small>{escape(SAME_LEAK)}: {escape(o[:12])}</small>" for o in r.get("linked", []))
        + "</td>"
        f"<td class=t>{_cell(r['first_seen'], zone)}</td>"
        f"<td class=t>{_next_report(r['owed'], zone, now)}</td>"
        f"<td>{escape(customers(r['subjects_distinct'], r['subjects_unnamed']))}</td>"
        # as `lifemon incidents` says it: an SDK names no record, and counts observations and devices
        f"<td>{escape(amounts(r['records'], r.get('observations', 0), r.get('devices', 0)))}</td>"
        f"<td>{escape(', '.join(r['leakage_classes']))}</td></tr>"
        for r in rows
    )
    return f"""<h2>Leakage incidents / 泄露事件</h2><p class=sub>incidents <b>first seen</b> in the period, the
earliest report owed first, as <code>{escape(_listing_command("incidents", period, total))}</code> lists
them (docs/incidents.md); status: the incident's, beneath it the response team's review where there is one
(<code>lifemon incidents ack / resolve</code>); deadline: the next report still owed (none once a review closed the incident
out; a notified one still owes an assessor's), passed as of this report's generation; times in
{escape(zone.key)}, UTC beneath</p>{_cut(len(rows), total, "incidents", "with the earliest report owed", f"; of all {total:,} in the period: {_severities(severities or {})}")}
<table class=incidents><tr><th>incident id</th><th>severity</th><th>status / 状态</th><th>what / 事件</th>
<th>opened / 发现</th><th>next report due / 待报时限</th><th>customers affected / 涉及客户</th>
<th>counted / 数量</th><th>classes / 泄露类别</th></tr>{body or "<tr><td colspan=9>no incidents in the period / 期内无泄露事件</td></tr>"}</table>"""


def _next_report(owed: list[tuple[int, str, str]], zone: ZoneInfo, now: datetime) -> str:
    found = next_owed(owed, now)
    if found is None:
        return "none / 无待报"
    when, en, zh, passed = found
    beneath = "<br><span class=passed>passed / 已过</span>" if passed else ""
    return f"{_cell(when, zone, beneath)}<br><small>{escape(zh)} / {escape(en)}</small>"


def _class_counts(classes: dict[str, dict[str, int]]) -> str:
    """The class chart's figures beside it: on a linear axis 14 C3 events under 30 000 C2 draw no
    bar, and a reader must never take that for no C3 at all."""
    columns = list(CLASS_COLOURS)  # every class, a zero said as 0 rather than left out
    total = {c: sum(v.get(c, 0) for v in classes.values()) for c in columns}

    def cells(values: dict[str, int]) -> str:
        return "".join(
            f'<td class="n{" c3" if c == "C3" and values.get(c) else ""}">{values.get(c, 0):,}</td>'
            for c in columns
        )

    body = "".join(f"<tr><td>{escape(stream)}</td>{cells(v)}</tr>" for stream, v in sorted(classes.items()))
    head = "".join(f"<th class=n>{c}</th>" for c in columns)
    return (
        f'<table class="classes"><tr><th>stream / 数据流</th>{head}</tr>{body}'
        f"<tr><th>total / 合计</th>{cells(total)}</tr></table>"
    )


def _take_outs(rows: list[TakeOuts], counted: bool) -> str:
    """Who took how much C3 and C2 data out of the bank's systems, against what they only read."""
    if not counted:
        return ""
    head = "".join(f"<th class=n>{escape(label)}</th>" for label in TAKEN_OUT.values())
    body = "".join(
        f"<tr><td>{escape(r.org)}</td><td{' class=c3' if r.jr_class == 'C3' and any(r.taken_out) else ''}>"
        f"{escape(r.jr_class)}</td>{''.join(f'<td class=n>{n:,}</td>' for n in r.taken_out)}"
        f"<td class=n>{r.read:,}</td><td class=n>{r.unknown:,}</td></tr>"
        for r in rows
    )
    unknown = (
        "<p class=sub>unknown: access events counted before lifemon kept their action "
        "(docs/operations.md, the forty-third stop) / 未知：升级前计数、未记录操作类型的访问事件</p>"
        if any(r.unknown for r in rows)
        else ""
    )
    return (
        "<h2>Data taken out by org and class / 按机构和类别的数据导出</h2>"
        "<p class=sub>access events by the org of who acted and the highest JR/T 0171 class of the fields "
        "they touched: exports, downloads and prints take data out of the bank's systems, views and "
        "queries only read it; the orgs that took out the most C3 data first, then the most C2 / 按操作人"
        "所属机构和所涉字段的最高类别统计访问事件：导出、下载、打印为数据取出，查看、查询为只读；C3、C2 取出最多的机构在前</p>"
        f"{unknown}<table><tr><th>org / 机构</th><th>class / 类别</th>{head}<th class=n>read / 查看</th>"
        f"<th class=n>unknown / 未知</th></tr>{body or f'<tr><td colspan={len(TAKEN_OUT) + 4}>none / 无</td></tr>'}</table>"
    )


def _lifecycle(fig: dict[str, Any] | None, zone: ZoneInfo | None = None) -> str:
    """Three lines of dashboards/lifemon-lifecycle.json: what is kept, asked and contracted past its time."""
    if not fig:
        return ""
    rows = [
        (
            "retention backlog at the period's end / 期末超期留存积压",
            fig["backlog"],
            f"oldest {fig['oldest_days']:,} days overdue; a state: a record stays in each period's "
            "backlog until it goes / 期末状态，未删除前逐期计入"
            if fig["backlog"]
            else "none",
        ),
        (
            "of them overdue since the period began / 其中本期新增超期",
            fig["overdue_since"],
            "each record counted in the period its deadline passed alone / 每条记录仅计入到期所在期",
        ),
        ("deletion requests open / 未执行的删除请求", fig["requests"], f"{fig['overdue']:,} past 15 days"),
        (
            "deletion requests executed in the period / 期内执行的删除请求",
            fig["executed"],
            f"{fig['executed_late']:,} after their 15 days, the longest {fig['longest_days']:.1f} days"
            if fig["executed"]
            else "none",
        ),
        ("contracts ended / 已到期的接收方合同", fig["ended"], f"{fig['ending']:,} more end within 90 days"),
    ]
    body = "".join(
        f"<tr><td>{escape(name)}</td><td class=n>{n:,}</td><td>{escape(note)}</td></tr>"
        for name, n, note in rows
    )
    return (
        f"<h2>Lifecycle / 生命周期</h2><p class=sub>as of the period's end, or of the last event seen when "
        f"none came after it: {_when(fig['as_of'], zone or ZoneInfo('UTC'))}; the lifecycle dashboard "
        "shows the same figures with its range ending then</p>"
        f"<table>{body}</table>"
    )


def _gaps(gaps: list[tuple[str, str, str, int]]) -> str:
    """What the streams and logs named that the policy does not know: coverage to fix in policy/,
    never silently C1 (`lifemon catalog gaps` lists them all, with where each goes)."""
    if not gaps:
        return ""
    rows = "".join(
        f"<tr><td>{escape(k)}</td><td><code>{escape(o)}</code></td><td>{escape(s)}</td><td class=n>{n:,}</td></tr>"
        for k, o, s, n in gaps
    )
    return (
        "<h2>Coverage gaps / 数据目录未覆盖对象</h2><p class=sub>field ids (as keyed fingerprints), tables, "
        "logins and SFTP accounts seen that the policy does not know; add them to policy/classification.yaml "
        "or policy/sources.yaml (<code>lifemon catalog gaps</code> says where)</p>"
        f"<table><tr><th>kind</th><th>object</th><th>stream</th><th>seen</th></tr>{rows}</table>"
    )


def _counted(records: int | None, customers: int | None) -> str:
    """The records and customers cells of an alert's row: a count, or — where none was made."""
    return "".join(f"<td class=n>{'—' if n is None else f'{n:,}'}</td>" for n in (records, customers))


def _first(first: datetime, last: datetime, zone: ZoneInfo) -> str:
    """An alert's first event beneath its last, the date left out on the same day; nothing when both
    fall in one minute."""
    start, end = _local(first, zone), _local(last, zone)
    if f"{start:%Y-%m-%d %H:%M}" == f"{end:%Y-%m-%d %H:%M}":
        return ""
    return (
        f"<br><small>first / 首 {start:{'%H:%M' if start.date() == end.date() else '%Y-%m-%d %H:%M'}}</small>"
    )
