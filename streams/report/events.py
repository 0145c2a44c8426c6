"""The report's events: by stream, by the hour (by the bank's day past two weeks), and by JR/T 0171
class with its figures beside the chart; and the coverage gaps the streams named."""

from __future__ import annotations

from datetime import datetime
from html import escape
from zoneinfo import ZoneInfo

from streams.report.charts import CHART_DAYS, CHART_HOURS, bars, busiest_days, busiest_hours
from streams.report.period import Period, in_zone

STREAM_COLOURS = ["#2c7fb8", "#7fcdbb", "#f03b20", "#756bb1", "#fdae6b"]
CLASS_COLOURS = {"C3": "#c0392b", "C2": "#e67e22", "C1": "#7f8c8d"}


def chart_rows(by_hour: list[tuple[datetime, str, int]], zone: ZoneInfo) -> tuple[list, str]:
    """The events chart's bars and what each is: an hour, or past two weeks (a month) a day of the
    bank's calendar."""
    hours = busiest_hours(by_hour, max_hours=CHART_HOURS + 1, zone=zone)
    if len(hours) > CHART_HOURS:
        # at most the last CHART_DAYS: records back-dated years (retention, everything stored) must
        # not draw thousands of bars; the caption says what lies outside
        return busiest_days(by_hour, zone, max_days=CHART_DAYS), "day"
    return hours, "hour"


def no_events(period: Period) -> str:
    bounded = period.since or period.until
    return "no events in the period / 期内无事件" if bounded else "no events yet / 尚无事件"


def events_charts(
    by_hour: list[tuple[datetime, str, int]],
    by_class: list[tuple[str, str, int]],
    rows: list,
    per: str,
    period: Period,
) -> str:
    """Events by stream on `rows` (chart_rows), the biggest stream at the bottom, and by class."""
    zone = period.zone
    volume: dict[str, int] = {}
    for _, stream, n in by_hour:
        volume[stream] = volume.get(stream, 0) + n
    streams = sorted(volume, key=volume.__getitem__, reverse=True)  # the biggest at the bottom
    classes: dict[str, dict[str, int]] = {}
    for stream, cls, n in by_class:
        classes.setdefault(stream, {})[cls] = n
    total = sum(volume.values())
    if not (
        total or classes
    ):  # two empty charts drew an axis of 0 to 1 events with a tick at 0.5 (probe_s3 #10)
        return f'<p class="nocharts">{no_events(period)}: no chart of events / 无事件图表</p>'
    stream_colours = {s: STREAM_COLOURS[i % len(STREAM_COLOURS)] for i, s in enumerate(streams)}
    title = {
        "hour": "Events per hour by stream / 各数据流每小时事件数",
        "day": "Events per day by stream / 各数据流每日事件数",
    }
    charted = sum(sum(v.values()) for _, v in rows)
    outside = ""
    if total > charted:
        earliest = in_zone(min(h for h, _, _ in by_hour), zone)
        outside = (
            f" — {total - charted:,} events outside the chart (earliest {earliest:%Y-%m-%d}) / "
            f"{total - charted:,} 条事件在图外"
        )
    charts = bars(
        f"{title[per]} ({zone.key}){outside}", rows, streams, stream_colours, volume, unit=f"{per}s"
    )
    present = [c for c in CLASS_COLOURS if any(c in v for v in classes.values())]
    class_chart = bars(
        "Events by JR/T 0171 class / 按敏感类别 (C3/C2/C1)",
        sorted(classes.items()),
        present,
        CLASS_COLOURS,
    )
    return charts + f'<div class="beside">{class_chart}{_class_counts(classes)}</div>'


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


def gaps_table(gaps: list[tuple[str, str, str, int]]) -> str:
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
