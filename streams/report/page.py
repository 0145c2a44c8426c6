"""The report's page: its head, the key figures, and its sections in the order management reads
them (each section's module renders it)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from html import escape
from typing import Any

from streams.report.alerts import alert_chart, alerts_table, handling_table, orgs_table
from streams.report.charts import SEVERITY_COLOURS
from streams.report.events import chart_rows, events_charts, gaps_table, no_events
from streams.report.gather import BackDated
from streams.report.incidents import incidents_table
from streams.report.lifecycle_figures import lifecycle_table
from streams.report.period import Period, in_zone, time_range, when
from streams.report.take_outs import take_outs_table
from streams.transfer_ledger import render as render_provided

SEVERITY_ZH = {"critical": "严重", "high": "高", "medium": "中", "low": "低", "info": "提示"}


def render(data: dict[str, Any], generated: datetime | None = None) -> str:
    period: Period = data.get("period") or Period()
    zone = period.zone
    window = data.get("window")
    back: BackDated | None = data.get("back_dated")
    # the chart spans the data window; the events before it are said in its caption
    start = window[0] if window and back else None
    charted = [r for r in data["by_hour"] if start is None or r[0] + timedelta(hours=1) > start]
    hours, per = chart_rows(charted, zone)
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
    covered = time_range(window[0], window[1], zone) if window else no_events(period)
    dated = ""
    if back:
        dated = (
            f" <small>· {back.events:,} lifecycle events dated before it, back to "
            f"{in_zone(back.earliest, zone):%Y-%m-%d}: dated by their records' own history (collected, "
            f"stored), not when lifemon saw them / {back.events:,} 条生命周期事件按记录自身的采集、存储日期早于此, "
            f"最早 {in_zone(back.earliest, zone):%Y-%m-%d}</small>"
        )
    first_bar = f"{in_zone(window[0], zone):%Y-%m-%d %H:00}" if window else ""
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
<p class="window">data window / 数据时间范围: <b>{covered}</b> <small>(first and last event in the period, to the minute / 期内首末事件时间)</small>{dated}</p>
<p class="sub">generated {when(generated or datetime.now(UTC), zone)} · times in {escape(zone.key)}, UTC beside
them · customer ids are HMAC pseudonyms · JR/T 0171-2020, PIPL</p>
<div class="kpis">{"".join(f'<div class="kpi"><b>{v}</b><span>{escape(k)}</span></div>' for k, v in kpis)}</div>
{incidents_table(data.get("incident_rows", []), data.get("incidents", 0), period, generated or datetime.now(UTC), data.get("incident_severities") or {})}
{events_charts(data["by_hour"], data["by_class"], hours, per, period)}
{alert_chart(data.get("alerts_by_hour"), data.get("alert_severities") or {}, period)}
{take_outs_table(data.get("take_outs") or [], bool(total))}
{lifecycle_table(data.get("lifecycle"), zone)}
{render_provided(data.get("provided"), *period.ms, zone)}
{gaps_table(data.get("gaps", []))}
{handling_table(data.get("handling") or [], period)}
{orgs_table(data.get("alerts_by_org") or [], period)}
{alerts_table(data["alerts"], alerts_total, period, data.get("alerts_before", 0))}
</body></html>"""


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
        text = time_range(period.since, period.until, zone, html)
    elif period.since:
        text = f"from / 自 {time_range(period.since, None, zone, html)}"
    elif period.until:
        text = f"before / 截至 {time_range(period.until, None, zone, html)}"
    month = f"{period.month} ({zone.key} calendar month / 本行所在时区自然月) · " if period.month else ""
    end = " <small>(start included, end excluded / 含起不含止)</small>" if html else ""
    return month + text + end
