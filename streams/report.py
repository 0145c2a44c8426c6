"""`lifemon report`: one self-contained HTML page for compliance management, read from ClickHouse.

Charts are inline SVG (no scripts, no network), so the page can be mailed or archived as evidence.
It shows only what the tables hold: counts, pseudonyms and summaries, never a PFI value.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html import escape
from typing import Any

from streams.alert_query import records_and_customers
from streams.clickhouse import tables_present
from streams.engine import COVERAGE_GAP, SDK_LABEL

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


def _bars(
    title: str,
    rows: list[tuple[str, dict[str, int]]],
    series: list[str],
    colours: dict[str, str],
    whole: dict[str, int] | None = None,
) -> str:
    """A stacked bar chart: one bar per row label, one stack segment per series. `whole`: each
    series' count beyond the rows too (events dated outside the charted hours), said in the legend."""
    width, height, left, bottom = 760, 220, 50, 40
    peak = max((sum(v.values()) for _, v in rows), default=0) or 1
    bar_w = (width - left - 10) / max(len(rows), 1)
    parts = [f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">']
    for frac in (0.5, 1.0):
        y = height - bottom - frac * (height - bottom - 10)
        parts.append(
            f'<line x1="{left}" x2="{width}" y1="{y:.0f}" y2="{y:.0f}" class="grid"/>'
            f'<text x="{left - 6}" y="{y + 4:.0f}" class="axis" text-anchor="end">{peak * frac:,.0f}</text>'
        )
    for i, (label, values) in enumerate(rows):
        x, y = left + i * bar_w, height - bottom
        for s in series:
            h = values.get(s, 0) / peak * (height - bottom - 10)
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
        + (f" (+{beyond[s]:,} outside these hours)" if beyond[s] > 0 else "")
        + "</span>"
        for s in series
    )
    return f'<figure><figcaption>{escape(title)}</figcaption>{"".join(parts)}</svg><div class="legend">{legend}</div></figure>'


def gather(client: Any, db: str) -> dict[str, Any]:
    q = client.query
    by_hour = [
        (datetime.fromtimestamp(h, UTC), stream, n)
        for h, stream, n in q(
            f"SELECT toUnixTimestamp(toStartOfHour(minute)), stream, sum(events) FROM {db}.event_rollups FINAL "
            f"WHERE stream NOT IN ('{COVERAGE_GAP}', '{SDK_LABEL}') GROUP BY 1, 2 ORDER BY 1"
        ).result_rows
    ]
    by_class = q(
        f"SELECT stream, jr_class, sum(events) FROM {db}.event_rollups FINAL "
        f"WHERE stream NOT IN ('{COVERAGE_GAP}', '{SDK_LABEL}') "
        "GROUP BY 1, 2 ORDER BY 1"
    ).result_rows
    gaps = q(
        f"SELECT kind, object, stream, sum(seen) FROM {db}.coverage_gaps GROUP BY 1, 2, 3 ORDER BY 4 DESC LIMIT 20"
    ).result_rows
    alerts = q(
        f"SELECT severity, title_zh, title_en, actor_id, actor_org, subject_count, counts, jr_class, "
        f"first_seen, last_seen, summary, status, detector FROM {db}.alerts FINAL "
        "ORDER BY multiIf(severity = 'critical', 0, severity = 'high', 1, severity = 'medium', 2, 3), "
        "greatest(counts['records'], subject_count) DESC, alert_id"
    ).result_rows
    dead = q(f"SELECT kind, count() FROM {db}.dead_letters FINAL GROUP BY kind ORDER BY 2 DESC").result_rows
    # the minutes of the first and the last event the page counts: the period its figures cover
    first, last, events = q(
        f"SELECT toUnixTimestamp(min(minute)), toUnixTimestamp(max(minute)), sum(events) "
        f"FROM {db}.event_rollups FINAL WHERE stream NOT IN ('{COVERAGE_GAP}', '{SDK_LABEL}')"
    ).result_rows[0]
    window = (datetime.fromtimestamp(first, UTC), datetime.fromtimestamp(last, UTC)) if events else None
    # a database a lifemon before the incidents table wrote has none yet (the next run creates it)
    has_incidents = tables_present(client, db, ["incidents"])
    incidents = q(f"SELECT count() FROM {db}.incidents FINAL").result_rows[0][0] if has_incidents else 0
    return {
        "by_hour": by_hour,
        "by_class": by_class,
        "alerts": alerts,
        "incidents": incidents,
        "dead": dead,
        "window": window,
        "gaps": gaps,
        "lifecycle": lifecycle(client, db),
    }


def lifecycle(client: Any, db: str) -> dict[str, Any] | None:
    """The lifecycle dashboard's figures in one line each, as of the last event seen (a demo or a
    replayed day is judged at its own end, not by the wall clock): the retention backlog, deletion
    requests open and open past their deadline, contracts ended or ending within 90 days."""
    q = client.query
    as_of = q(
        f"SELECT if(count() = 0, 0, toUnixTimestamp(max(minute) + 60) * 1000) FROM {db}.event_rollups FINAL "
        f"WHERE stream NOT IN ('{COVERAGE_GAP}', '{SDK_LABEL}')"
    ).result_rows[0][0]
    if not as_of:
        return None  # no event yet: nothing to judge against
    backlog, oldest = q(
        f"SELECT count(), intDiv({as_of} - toUnixTimestamp64Milli(min(window_end)), 86400000) "
        f"FROM {db}.alerts FINAL WHERE detector = 'retention_overrun' "
        "AND endsWith(rule_id, '.retention_expired') AND status != 'closed'"
    ).result_rows[0]
    requests, overdue = q(
        f"SELECT countIf(done = 0 OR done > {as_of}), countIf(due <= {as_of} AND (done = 0 OR done > {as_of})) "
        "FROM (SELECT minIf(toUnixTimestamp64Milli(due), stage = 'deletion_requested') AS due, "
        "minIf(toUnixTimestamp64Milli(ts), stage != 'deletion_requested') AS done "
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
        "oldest_days": oldest if backlog else 0,
        "requests": requests,
        "overdue": overdue,
        "ended": ended,
        "ending": ending,
    }


def busiest_hours(
    by_hour: list[tuple[datetime, str, int]], floor: float = 0.01, max_hours: int = 336
) -> list:
    """Hours from the first to the last with at least `floor` of the peak hour's events (at most
    two weeks, the latest), gaps filled with zeros: a few back-dated lifecycle records must not
    squeeze the days that matter into one corner of the chart."""
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
        ((first + timedelta(hours=i)).strftime("%Y-%m-%d %H:00"), hours.get(first + timedelta(hours=i), {}))
        for i in range(count)
    ]


def render(data: dict[str, Any], generated: datetime | None = None) -> str:
    hours = busiest_hours(data["by_hour"])
    volume: dict[str, int] = {}
    for _, stream, n in data["by_hour"]:
        volume[stream] = volume.get(stream, 0) + n
    streams = sorted(volume, key=volume.__getitem__, reverse=True)  # the biggest at the bottom
    classes: dict[str, dict[str, int]] = {}
    for stream, cls, n in data["by_class"]:
        classes.setdefault(stream, {})[cls] = n
    total = sum(n for _, _, n in data["by_hour"])
    severities: dict[str, int] = {}
    for a in data["alerts"]:
        severities[a[0]] = severities.get(a[0], 0) + 1
    kpis = [("events monitored / 监测事件", f"{total:,}"), ("alerts / 告警", f"{len(data['alerts']):,}")]
    kpis += [(f"{s} / {SEVERITY_ZH[s]}", f"{severities[s]:,}") for s in SEVERITY_COLOURS if s in severities]
    c3 = sum(n for _, cls, n in data["by_class"] if cls == "C3")
    # authentication data (JR/T 0171 C3) is a few events among tens of thousands: counted on its own
    kpis.insert(1, ("C3 events / C3 类事件", f"{c3:,}"))
    kpis.append(("leakage incidents / 泄露事件 (lifemon incidents)", f"{data.get('incidents', 0):,}"))
    kpis.append(("dead letters / 死信", f"{sum(n for _, n in data['dead']):,}"))
    alerts = data["alerts"]
    rows = "".join(
        f'<tr><td><b class="sev" style="background:{SEVERITY_COLOURS.get(sev, "#999")}">{escape(sev)}</b></td>'
        f"<td>{escape(zh)}<br><small>{escape(en)}</small></td><td>{escape(actor)}<br><small>{escape(org)}</small></td>"
        f"{_counted(*records_and_customers(subject_count, counts))}<td>{escape(cls)}</td>"
        f"<td><small>{_span(first, last)}</small></td><td><small>{escape(summary)}</small></td></tr>"
        for sev, zh, en, actor, org, subject_count, counts, cls, first, last, summary, _status, _det in alerts
    )
    stream_colours = {s: STREAM_COLOURS[i % len(STREAM_COLOURS)] for i, s in enumerate(streams)}
    charts = _bars("Events per hour by stream / 各数据流每小时事件数", hours, streams, stream_colours, volume)
    present = [c for c in CLASS_COLOURS if any(c in v for v in classes.values())]
    class_chart = _bars(
        "Events by JR/T 0171 class / 按敏感类别 (C3/C2/C1)", sorted(classes.items()), present, CLASS_COLOURS
    )
    charts += f'<div class="beside">{class_chart}{_class_counts(classes)}</div>'
    when = (generated or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    window = data.get("window")
    covered = (
        f"{window[0]:%Y-%m-%d %H:%M} – {window[1]:%Y-%m-%d %H:%M} UTC"
        if window
        else "no events yet / 尚无事件"
    )
    if window and hours and hours[0][0] > f"{window[0]:%Y-%m-%d %H:00}":
        # back-dated lifecycle history starts the window years early; the hourly chart skips it
        covered += f" · hourly chart / 每小时图: {hours[0][0]} – {hours[-1][0]} UTC"
    return f"""<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<title>lifemon report / 个人金融信息生命周期监测报告</title><style>
body{{font-family:"Noto Sans CJK SC","Noto Sans",sans-serif;margin:24px;color:#222;max-width:1100px}}
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
</style></head><body>
<h1>lifemon — 个人金融信息生命周期监测报告 / PFI lifecycle report</h1>
<p class="window">data window / 数据时间范围: <b>{covered}</b> <small>(first and last event, to the minute / 首末事件时间)</small></p>
<p class="sub">generated {when} · customer ids are HMAC pseudonyms · JR/T 0171-2020, PIPL</p>
<div class="kpis">{"".join(f'<div class="kpi"><b>{v}</b><span>{escape(k)}</span></div>' for k, v in kpis)}</div>
{charts}
{_lifecycle(data.get("lifecycle"))}
{_gaps(data.get("gaps", []))}
<h2>Alerts / 告警</h2><p class=sub>records and customers as each detector counted them, — where it counts
no such thing or identified no customer; times in UTC</p><table><tr><th>severity</th>
<th>rule / 规则</th><th>actor / 人员</th><th class=n>records / 记录</th><th class=n>customers / 客户</th><th>class</th>
<th>first – last event (UTC) / 首末事件时间</th><th>summary</th></tr>{rows or "<tr><td colspan=8>no alerts</td></tr>"}</table>
</body></html>"""


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


def _lifecycle(fig: dict[str, Any] | None) -> str:
    """Three lines of dashboards/lifemon-lifecycle.json: what is kept, asked and contracted past its time."""
    if not fig:
        return ""
    rows = [
        ("retention backlog / 超期留存积压", fig["backlog"], f"oldest {fig['oldest_days']:,} days overdue"),
        ("deletion requests open / 未执行的删除请求", fig["requests"], f"{fig['overdue']:,} past 15 days"),
        ("contracts ended / 已到期的接收方合同", fig["ended"], f"{fig['ending']:,} more end within 90 days"),
    ]
    body = "".join(
        f"<tr><td>{escape(name)}</td><td class=n>{n:,}</td><td>{escape(note)}</td></tr>"
        for name, n, note in rows
    )
    return (
        f"<h2>Lifecycle / 生命周期</h2><p class=sub>as of the last event seen, {_t(fig['as_of'])} UTC</p>"
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


def _span(first: datetime, last: datetime) -> str:
    """First – last event; the date once when both fall on the same day."""
    return f"{_t(first)} – {last:%H:%M}" if first.date() == last.date() else f"{_t(first)} – {_t(last)}"


def _t(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M")
