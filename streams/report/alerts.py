"""The report's alerts: their chart by day and severity, how the SOC handled them, by organisation,
and their table as `lifemon alerts` lists them."""

from __future__ import annotations

from datetime import datetime, timedelta
from html import escape
from typing import Any
from zoneinfo import ZoneInfo

from detectors.base import n_of
from streams.alert_query import NO_ORG, NO_ORG_WORD, Handling, org_of, records_and_customers, took
from streams.report.charts import CHART_DAYS, CHART_HOURS, SEVERITY_COLOURS, bars, busiest_days, busiest_hours
from streams.report.listing import cut, iso, listing_command, period_args, review_mark
from streams.report.period import Period, cell, in_zone


def alert_chart(
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
        (in_zone(period.since, zone).date(), in_zone(period.until - timedelta(milliseconds=1), zone).date())
        if period.since and period.until
        else None
    )
    rows, per = busiest_days(by_hour, zone, floor=0, max_days=CHART_DAYS, within=within), "day"
    if len(rows) <= 2:
        rows, per = busiest_hours(by_hour, floor=0, max_hours=CHART_HOURS, zone=zone), "hour"
    series = [s for s in SEVERITY_COLOURS if s in whole]
    title = {"day": "Alerts per day / 每日告警数", "hour": "Alerts per hour / 每小时告警数"}[per]
    return bars(
        f"{title}, by severity / 按严重程度 ({zone.key}; by last event, as the alerts table / 按末次事件时间, 同告警表)",
        rows,
        series,
        SEVERITY_COLOURS,
        whole,
        unit=f"{per}s",
    )


def _false_positives(alerts: list[dict[str, Any]]) -> str:
    n = sum(a.get("review") == "false_positive" for a in alerts)
    return f" ({n:,} of those shown / 误报{n:,}条)" if n else ""


def alerts_table(alerts: list[dict[str, Any]], total: int, period: Period, before: int = 0) -> str:
    """The alerts whose last event falls in the period, most severe and biggest first, with the id,
    detector and status `lifemon alerts` shows for them; `before`: how many stored alerts have their
    last event before the period (said, with the command that lists them)."""
    zone = period.zone
    earlier = (
        f" <b>{n_of(before, 'alert')} stored</b> have their last event before the "
        f"period (a retention or deletion deadline passed earlier, say, though the monitor first saw it "
        f"in this one): <code>lifemon alerts --until {escape(iso(period.since, zone))}</code> lists them."
        if before and period.since
        else ""
    )
    rows = "".join(
        f'<tr><td><b class="sev" style="background:{SEVERITY_COLOURS.get(a["severity"], "#999")}">'
        f"{escape(a['severity'])}</b></td><td><code class=id>{escape(a['alert_id'][:12])}</code></td>"
        f"<td>{escape(a['status'])}{review_mark(a.get('review'))}</td><td>{escape(a['detector'])}</td>"
        f"<td class=rule>{escape(a['title_zh'])}<br><small>{escape(a['title_en'])}</small></td>"
        f"<td>{escape(a['actor_id'])}<br><small>{escape(org_of(a['actor_org'], a['detector']))}</small></td>"
        f"{_counted(*records_and_customers(a['subject_count'], a['counts'] or {}))}<td>{escape(a['jr_class'])}</td>"
        f"<td class=t>{cell(a['last_seen'], zone, _first(a['first_seen'], a['last_seen'], zone))}</td>"
        f"<td class=summary><small>{escape(a['summary'])}</small></td></tr>"
        for a in alerts
    )
    return f"""<h2>Alerts / 告警</h2><p class=sub>the alerts whose <b>last event</b> falls in the period (an
alert begun earlier is here, its first event beside it; one still growing after the period's end is
in the next period's report), most severe and biggest first; <code>{escape(listing_command("alerts", period, total))}</code>
lists the same ids. status: the detector's episode (open, updated while it grows, closed: its
window passed; not a review), beneath it the analyst's review where there is one (<code>lifemon
alerts ack / resolve</code>): an alert resolved as a false positive stays listed and counted, marked
so{_false_positives(alerts)}. Records and customers as each detector counted them, — where it counts
no such thing or identified no customer; times in {escape(zone.key)}, UTC beneath.{earlier}</p>{cut(len(alerts), total, "alerts", "most severe and biggest", " (the severity figures above count them all)")}
<table class=alerts><tr><th>severity</th><th>alert id</th><th>status / 状态</th><th>detector / 检测器</th>
<th>rule / 规则</th><th>actor / 人员</th><th class=n>records / 记录</th><th class=n>customers / 客户</th><th>class</th>
<th>last event / 末次事件</th><th>summary</th></tr>{rows or "<tr><td colspan=11>no alerts in the period / 期内无告警</td></tr>"}</table>"""


def handling_table(rows: list[Handling], period: Period) -> str:
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
chooses them) by severity: their review now, as <code>lifemon alerts --review STATE{escape(period_args(period))}</code>
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


def orgs_table(rows: list[tuple[str, int, int, int]], period: Period) -> str:
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
其他机构 / other orgs); <code>lifemon alerts --org ORG{escape(period_args(period))}</code> lists an org's
(<code>--org {NO_ORG_WORD}</code>: those of no org known)</p>
<table class=orgs><tr><th>org / 机构</th><th class=n>critical / 严重</th><th class=n>high / 高</th>
<th class=n>other / 其他</th><th class=n>alerts / 告警</th></tr>{body}<tr><th>total / 合计</th>{total}</tr></table>"""


def _counted(records: int | None, customers: int | None) -> str:
    """The records and customers cells of an alert's row: a count, or — where none was made."""
    return "".join(f"<td class=n>{'—' if n is None else f'{n:,}'}</td>" for n in (records, customers))


def _first(first: datetime, last: datetime, zone: ZoneInfo) -> str:
    """An alert's first event beneath its last, the date left out on the same day; nothing when both
    fall in one minute."""
    start, end = in_zone(first, zone), in_zone(last, zone)
    if f"{start:%Y-%m-%d %H:%M}" == f"{end:%Y-%m-%d %H:%M}":
        return ""
    return (
        f"<br><small>first / 首 {start:{'%H:%M' if start.date() == end.date() else '%Y-%m-%d %H:%M'}}</small>"
    )
