"""The report's leakage incidents, as `lifemon incidents` lists them: the response team's
deadlines, for management."""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape
from typing import Any
from zoneinfo import ZoneInfo

from streams.incident_query import SAME_LEAK, amounts, customers, next_owed
from streams.report.charts import SEVERITY_COLOURS
from streams.report.listing import by_severity, cut, listing_command, review_mark
from streams.report.period import Period, cell


def incidents_table(
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
        f"{escape(r['severity'])}</b></td><td>{escape(r['status'])}{review_mark(r.get('review'))}</td>"
        # in both languages, as the alerts table below titles its rules (a new user read it in Chinese only)
        f"<td class=rule>{escape(r['title_zh'])}<br><small>{escape(r['title_en'])}</small>"
        f"<br><small>{escape(r['key_kind'])} {escape(r['key'])}</small>"
        + "".join(f"<br><small>{escape(SAME_LEAK)}: {escape(o[:12])}</small>" for o in r.get("linked", []))
        + "</td>"
        f"<td class=t>{cell(r['first_seen'], zone)}</td><td class=t>{_detected(r, zone)}</td>"
        f"<td class=t>{_next_report(r['owed'], zone, now)}</td>"
        f"<td>{escape(customers(r['subjects_distinct'], r['subjects_unnamed']))}</td>"
        # as `lifemon incidents` says it: an SDK names no record, and counts observations and devices
        f"<td>{escape(amounts(r['records'], r.get('observations', 0), r.get('devices', 0)))}</td>"
        f"<td>{escape(', '.join(r['leakage_classes']))}</td></tr>"
        for r in rows
    )
    return f"""<h2>Leakage incidents / 泄露事件</h2><p class=sub>incidents <b>first seen</b> in the period, the
earliest report owed first, as <code>{escape(listing_command("incidents", period, total))}</code> lists
them (docs/incidents.md); status: the incident's, beneath it the response team's review where there is one
(<code>lifemon incidents ack / resolve</code>); began: the leak's first event; detected: when lifemon knew it (the
alert that made it an incident), from which the regulators' deadlines count; deadline: the next report still owed (none once a review closed the incident
out; a notified one still owes an assessor's, one whose regulator alone was told the individuals' notice too), passed as of this report's generation; times in
{escape(zone.key)}, UTC beneath</p>{cut(len(rows), total, "incidents", "with the earliest report owed", f"; of all {total:,} in the period: {by_severity(severities or {})}")}
<table class=incidents><tr><th>incident id</th><th>severity</th><th>status / 状态</th><th>what / 事件</th>
<th>began / 开始</th><th>detected / 发现</th><th>next report due / 待报时限</th><th>customers affected / 涉及客户</th>
<th>counted / 数量</th><th>classes / 泄露类别</th></tr>{body or "<tr><td colspan=10>no incidents in the period / 期内无泄露事件</td></tr>"}</table>"""


def _detected(r: dict[str, Any], zone: ZoneInfo) -> str:
    """When lifemon detected the incident, or that a record from before it was kept does not say
    (its deadlines count from its first event)."""
    if r.get("detected_at") is None:
        return "not kept / 未记录"
    return cell(datetime.fromtimestamp(r["detected_at"] / 1000, UTC), zone)


def _next_report(owed: list[tuple[int, str, str]], zone: ZoneInfo, now: datetime) -> str:
    found = next_owed(owed, now)
    if found is None:
        return "none / 无待报"
    when, en, zh, passed = found
    beneath = "<br><span class=passed>passed / 已过</span>" if passed else ""
    return f"{cell(when, zone, beneath)}<br><small>{escape(zh)} / {escape(en)}</small>"
