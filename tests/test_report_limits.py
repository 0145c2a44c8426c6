"""What `lifemon report` shows when a period holds more than its tables or its chart can: the
severity figures count every alert of the period, a cut table keeps the most severe and says so,
and back-dated records years before the events do not stretch the chart to thousands of bars.
Real chDB."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from conftest import T0, access
from test_report import store_day

from streams.clickhouse import apply_ddl
from streams.report import CHART_DAYS, TABLE_LIMIT, Period, gather, render

N = TABLE_LIMIT + 1


def kpis(html: str) -> list[tuple[str, str]]:
    return re.findall(r'<div class="kpi"><b>([^<]*)</b><span>([^<]*)</span></div>', html)


def test_a_cut_alert_table_keeps_the_most_severe_and_the_figures_count_them_all(ch, names) -> None:
    """5 001 alerts in the period, the oldest critical: the table kept the 5 000 newest and the
    severity figures were counted from them, so the page showed 5 000 low alerts and no critical
    one at all, while the alert itself was not on the page. An alert before the period (critical
    too) stays out of every figure."""
    db = names["database"]
    apply_ddl(ch, db)
    ch.command(
        f"INSERT INTO {db}.alerts (alert_id, revision, status, detector, rule_id, rule_version, severity, "
        "title_zh, title_en, summary, jr_class, actor_id, actor_org, subject_count, counts, first_seen, "
        "last_seen, window_start, window_end, version) "
        "SELECT lower(hex(MD5(toString(number)))), 1, 'open', 'bulk_query', 'LM-BQ-001', 1, "
        "multiIf(number IN (0, 5001), 'critical', number IN (1, 2), 'high', 'low'), 'z', 'e', 's', 'C2', "
        "concat('e', toString(number)), 'S0101', multiIf(number = 1, 10, number = 2, 20, 1), "
        "if(number = 1, map('records', 500), map()), t, t, t, t, 1 FROM (SELECT number, "
        "if(number = 5001, toDateTime64('2025-06-01 00:00:00', 3, 'UTC'), "
        "toDateTime64('2026-01-01 00:00:00', 3, 'UTC') + toIntervalSecond(number)) AS t FROM numbers(5002))"
    )
    data = gather(ch, db, Period(since=datetime.fromtimestamp(T0 / 1000, UTC)))
    assert data["alerts_total"] == N and len(data["alerts"]) == TABLE_LIMIT
    # the critical one first, then the high ones, the biggest (500 records) before 20 customers
    assert [(a["severity"], a["actor_id"]) for a in data["alerts"][:3]] == [
        ("critical", "e0"),
        ("high", "e1"),
        ("high", "e2"),
    ]
    html = render(data)
    assert ("5,001", "alerts / 告警") in kpis(html)
    assert [k for k in kpis(html) if k[1].split(" /")[0] in ("critical", "high", "low")] == [
        ("1", "critical / 严重"),
        ("2", "high / 高"),
        ("4,998", "low / 低"),
    ]
    alerts = html.split("<h2>Alerts / 告警</h2>", 1)[1]
    assert "the 5,000 most severe and biggest of 5,001 alerts shown" in alerts
    assert "(the newest)" not in alerts
    assert alerts.count("<code class=id>") == TABLE_LIMIT


def test_a_cut_incident_table_says_which_it_kept_and_counts_every_severity(ch, names) -> None:
    """5 001 incidents, the one with the latest deadline critical: the table keeps the earliest
    deadlines, as `lifemon incidents` lists them; it said it kept "the newest" and nothing said a
    critical incident was left out."""
    db = names["database"]
    apply_ddl(ch, db)
    ch.command(
        f"INSERT INTO {db}.incidents (incident_id, revision, status, key_kind, key, severity, "
        "leakage_classes, title_zh, title_en, subjects_distinct, records, first_seen, last_seen, first_due, "
        "alert_ids, incident, version) "
        "SELECT lower(hex(MD5(toString(number)))), 1, 'open', 'actor', concat('e', toString(number)), "
        f"if(number = {N - 1}, 'critical', 'high'), ['bulk_export'], 'z', 'e', 1, 1, t, t, "
        "t + toIntervalHour(24), [], '', 1 FROM (SELECT number, "
        f"toDateTime64('2026-01-01 00:00:00', 3, 'UTC') + toIntervalSecond(number) AS t FROM numbers({N}))"
    )
    data = gather(ch, db)
    assert data["incidents"] == N and len(data["incident_rows"]) == TABLE_LIMIT
    incidents = render(data).split("<h2>Leakage incidents / 泄露事件</h2>", 1)[1].split("</table>")[0]
    assert "the 5,000 with the earliest report owed of 5,001 incidents shown" in incidents
    assert "of all 5,001 in the period: 1 critical, 5,000 high" in incidents
    assert "(the newest)" not in incidents


def test_everything_stored_charts_the_last_weeks_and_says_what_lies_outside(
    ch, names, policy, catalog
) -> None:
    """Everything stored, with 5 retention records dated three years before the day's 70 reads
    (above 1 % of the busiest hour): the chart ran from 2023 in 1 097 daily bars. Record-dated
    lifecycle events before the other streams' first start neither the window nor the chart: the
    day's hours, the 5 said outside it."""
    db = names["database"]
    store_day(ch, db, policy, catalog, access("e1", customers=70, every_s=20))
    ch.command(
        f"INSERT INTO {db}.event_rollups (topic, partition, block, minute, stream, jr_class, org, outcome, "
        "events, version) VALUES ('t', 0, 1, '2023-01-01 00:00:00', 'lifecycle', 'C2', 'S0101', 'ok', 5, 5)"
    )
    html = render(gather(ch, db))
    chart = html.split("</figure>", 1)[0]
    # the bars' dates: their axis labels and their tooltips
    dates = sorted(set(re.findall(r"(?:<tspan[^>]*>|<title>)(\d{4}-\d\d-\d\d)", chart)))
    start = datetime.fromtimestamp(T0 / 1000, UTC)
    assert dates[0] >= f"{start - timedelta(days=CHART_DAYS):%Y-%m-%d}", dates[:3]
    assert dates[-1] == f"{start:%Y-%m-%d}"
    caption = re.search(r"<figcaption>(.*?)</figcaption>", chart)
    assert caption and "5 events outside the chart" in caption[1] and "earliest 2023-01-01" in caption[1]
    assert "lifecycle 0 (+5 outside these hours)</span>" in chart
    assert "70</span>" in chart  # the day's reads, all charted
