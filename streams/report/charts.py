"""The report's bar charts, inline SVG (no script, no network): the stacked bars themselves, and which
hours or days of the bank's calendar they draw; the severity palette the charts and tables share."""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, timedelta
from html import escape
from zoneinfo import ZoneInfo

SEVERITY_COLOURS = {
    "critical": "#7b1f1f",
    "high": "#c0392b",
    "medium": "#e67e22",
    "low": "#f1c40f",
    "info": "#95a5a6",
}


def _round_up(n: int) -> int:
    """The axis's top: `n` rounded up to 1, 2, 2.5, 3, 4, 5, 6 or 8 times a power of ten (35 089 ->
    40 000), so its ticks read as round numbers."""
    mag = 10 ** (len(str(max(n, 1))) - 1)
    return next(int(m * mag) for m in (1, 2, 2.5, 3, 4, 5, 6, 8, 10) if m * mag >= n)


# a segment's least height: a one-alert bar beside 75 was a hairline (2 px) nobody saw
MIN_SEGMENT_PX = 4.0


# a bar's date label in the chart's units: "2026-01-01" in the 10 px axis font, and a gap
LABEL_WIDTH = 64


def labelled(totals: list[int], bar_w: float, most: int = 8) -> set[int]:
    """Which bars get a label: all of a dozen or fewer; of more, the first, the last and the tallest,
    which a reader looks for (a month's 2026-01-01 bar, 75 of its 79 alerts, had no date), and
    about `most` evenly spaced between them, none within a label's width of another (`bar_w`: a
    bar's width), whose dates would overprint."""
    n = len(totals)
    if n <= 12:
        return set(range(n))
    apart = math.ceil(LABEL_WIDTH / bar_w)
    step = max(n // most, apart)
    needed = {0, n - 1, max(range(n), key=totals.__getitem__)}
    return needed | {i for i in range(0, n, step) if all(abs(i - j) >= apart for j in needed)}


def bars(
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
    totals_per_bar = [sum(v.values()) for _, v in rows]
    shown = labelled(totals_per_bar, bar_w)
    for frac in (0.5, 1.0):
        y = height - bottom - frac * (height - bottom - 10)
        parts.append(
            f'<line x1="{left}" x2="{width}" y1="{y:.0f}" y2="{y:.0f}" class="grid"/>'
            f'<text x="{left - 6}" y="{y + 4:.0f}" class="axis" text-anchor="end">{peak * frac:,.{0 if peak * frac % 1 == 0 else 1}f}</text>'
        )
    for i, (label, values) in enumerate(rows):
        x, y = left + i * bar_w, height - bottom
        for s in series:
            # a segment of a few events is drawn MIN_SEGMENT_PX high, or it would vanish beside
            # thousands: 15 C3 events of 50 000 were nowhere to be seen (its count is in its tooltip
            # and the legend)
            h = values.get(s, 0) and max(values[s] / peak * (height - bottom - 10), MIN_SEGMENT_PX)
            if h:
                y -= h
                parts.append(
                    f'<rect x="{x + 1:.1f}" y="{y:.1f}" width="{max(bar_w - 2, 1):.1f}" height="{h:.1f}" '
                    f'fill="{colours[s]}"><title>{escape(label)} {escape(s)}: {values[s]:,}</title></rect>'
                )
        if i in shown:
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


# the events chart: two weeks of events by the hour; longer, by the bank's day, at most the last
# CHART_DAYS (a quarter), what lies earlier said in its caption and legend
CHART_HOURS = 14 * 24
CHART_DAYS = 92


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
