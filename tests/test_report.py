"""The HTML report reads the real schema on chDB and shows counts, charts and alerts."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

from conftest import T0, access, entitlement, fed, refs

from detectors import load_detectors
from schemas.models import LifecycleEvent
from streams.clickhouse import apply_ddl
from streams.engine import Engine
from streams.pseudonym import Pseudonymizer
from streams.report import Period, busiest_hours, gather, render
from streams.sinks.clickhouse import (
    ALERT_COLUMNS,
    INCIDENT_COLUMNS,
    ROLLUP_COLUMNS,
    ClickHouseTableSink,
    alert_row,
    identity_row,
    incident_row,
)


def store_day(ch, db: str, policy, catalog, events: list, lifecycle: list | None = None) -> None:
    """The alerts and rollups of e1's and e2's accesses (and of `lifecycle` events, read first) in
    ClickHouse, as the runtime stores them."""
    apply_ddl(ch, db)
    engine = Engine(load_detectors(policy), catalog, Pseudonymizer(b"r" * 32))
    engine.apply_reference("entitlements", refs("entitlements", [entitlement("e1"), entitlement("e2")]))
    alerts = (
        engine.process("lifecycle", "pfi.lifecycle", 0, fed("lifecycle", lifecycle, "pfi.lifecycle"))
        if lifecycle
        else []
    )
    alerts += engine.process("access", "pfi.access", 0, fed("access", events, "pfi.access"))
    alerts += engine.drain()
    sink = ClickHouseTableSink(ch, f"{db}.alerts", ALERT_COLUMNS, alert_row, "alerts")
    sink.add(alerts)
    sink.flush()
    rollups = ClickHouseTableSink(ch, f"{db}.event_rollups", ROLLUP_COLUMNS, identity_row, "rollups")
    rollups.add(engine.rollup_rows())
    rollups.flush()
    incidents = ClickHouseTableSink(ch, f"{db}.incidents", INCIDENT_COLUMNS, incident_row, "incidents")
    incidents.add(engine.take_incidents())
    incidents.flush()


def test_report_from_clickhouse(ch, names, policy, catalog) -> None:
    db = names["database"]
    store_day(
        ch,
        db,
        policy,
        catalog,
        access("e1", customers=70, every_s=20) + access("e2", customers=3, start=10_000),
    )

    html = render(gather(ch, db))
    assert "个人金融信息生命周期监测报告" in html and "批量查询个人金融信息" in html
    assert ">73<" in html.replace(",", "")  # events monitored
    assert "C00000" not in html  # no raw customer id anywhere, only pseudonyms
    alerts = html.split("<h2>Alerts / 告警</h2>", 1)[1]
    assert alerts.count('class="sev"') == 1 and "<svg" in html
    # e1's 70 balances passed art. 5's 50: one leakage incident for management too
    assert "<b>1</b><span>leakage incidents / 泄露事件" in html
    assert "false positive / 误报" not in alerts
    # an alert the analyst resolved as a false positive stays listed and counted, marked so
    from streams.reviews import record_review

    (alert_id,) = [r[0] for r in ch.query(f"SELECT alert_id FROM {db}.alerts FINAL").result_rows]
    record_review(ch, db, alert_id, "false_positive", "e900001", "approved by phone")
    alerts = render(gather(ch, db)).split("<h2>Alerts / 告警</h2>", 1)[1]
    assert (
        "<small class=review>false positive / 误报</small>" in alerts
        and "(1 of those shown / 误报1条)" in alerts
    )
    # the incident's regulator told, the individuals' decision pending: marked so, their notice next due
    from streams.reviews import INCIDENTS

    (incident_id,) = [r[0] for r in ch.query(f"SELECT incident_id FROM {db}.incidents FINAL").result_rows]
    record_review(ch, db, incident_id, "regulator_notified", "e900001", "PBoC told", kind=INCIDENTS)
    incidents = render(gather(ch, db)).split("<h2>Leakage incidents / 泄露事件</h2>", 1)[1]
    assert "<small class=review>regulator notified / 已报告监管</small>" in incidents
    assert "受影响的个人 / the individuals affected</small>" in incidents


def counted_alerts(policy, catalog) -> list[Any]:
    """Alerts of two real detectors whose counts are not customers alone: bulk_query reads
    70 customers, 3 rows each, "210 records of 70 customers" (it keeps the records in
    `subject_count`); transfer_policy's volume alert counts the 5 001 records a fund distributor
    got against 5 000 agreed, and no customer (`subject_count` 0)."""
    from test_transfer_policy import HOUR, consent, fund, run

    bulk = Engine(load_detectors(policy), catalog, Pseudonymizer(b"r" * 32))
    bulk.apply_reference("entitlements", refs("entitlements", [entitlement("e1")]))
    alerts = bulk.process("access", "pfi.access", 0, fed("access", access("e1", customers=70, row_count=3)))
    alerts += bulk.drain()
    spec = next(s for s in load_detectors(policy) if s.kind == "transfer_policy")
    transfers = Engine([spec], catalog, Pseudonymizer(b"r" * 32))
    transfers.apply_reference("consents", refs("consents", [consent()]))
    alerts += run(transfers, fund(T0, 5000, 1), fund(T0 + HOUR, 1, 2)).values()
    return alerts


def test_alert_columns_are_records_and_customers_as_each_detector_counts_them(
    ch, names, policy, catalog
) -> None:
    """The report once headed `subject_count` "customers": 210 "customers" for an employee whose
    own summary said 210 records of 70 customers, and 0 for 5 001 records sent to a recipient."""
    db = names["database"]
    apply_ddl(ch, db)
    alerts = counted_alerts(policy, catalog)
    assert sorted(a.detector for a in alerts) == ["bulk_query", "transfer_policy"]
    assert "210 records of 70 customers" in next(a.summary for a in alerts if a.detector == "bulk_query")
    sink = ClickHouseTableSink(ch, f"{db}.alerts", ALERT_COLUMNS, alert_row, "alerts")
    sink.add(alerts)
    sink.flush()

    html = render(gather(ch, db))
    header = re.search(r"<h2>Alerts / 告警</h2>.*?</tr>", html, re.S)
    assert header is not None
    assert [re.sub(r"<.*?>", "", h) for h in re.findall(r"<th.*?</th>", header[0])] == [
        "severity",
        "alert id",
        "status / 状态",
        "detector / 检测器",
        "rule / 规则",
        "actor / 人员",
        "records / 记录",
        "customers / 客户",
        "class",
        "last event / 末次事件",
        "summary",
    ]

    def counted(actor: str) -> list[str]:
        row = next(r for r in re.findall(r"<tr>.*?</tr>", html, re.S) if f"<td>{actor}<br>" in r)
        return re.findall(r"<td class=n>(.*?)</td>", row)

    assert counted("e1") == ["210", "70"]  # records, customers
    assert counted("tp_fund_distributor") == ["5,001", "—"]  # records; customers not counted


def test_busiest_hours_ignore_back_dated_stragglers() -> None:
    t = datetime.fromtimestamp(T0 / 1000, UTC)
    rows = [(t - timedelta(days=900), "lifecycle", 3)] + [
        (t + timedelta(hours=h), "access", 1000) for h in (0, 1, 3)
    ]
    labels = [label for label, _ in busiest_hours(rows)]
    assert labels == [
        "2026-01-01 00:00",
        "2026-01-01 01:00",
        "2026-01-01 02:00",
        "2026-01-01 03:00",
    ]  # the gap filled, 2023 dropped
    # the legend counts the charted hours and says what lies outside them (the demo's summary counts all)
    from streams.report.charts import bars

    chart = bars(
        "t",
        busiest_hours(rows),
        ["access", "lifecycle"],
        {"access": "#1", "lifecycle": "#2"},
        {"access": 3000, "lifecycle": 3},
    )
    assert "access 3,000</span>" in chart and "lifecycle 0 (+3 outside these hours)</span>" in chart
    # a new user read ticks at 5,877 and 2,938, and could not see 15 C3 events of 50 000: round
    # ticks, and a segment of a few events drawn 4 px high (a one-alert bar beside 75 was a 2 px hairline)
    few = bars("t", [("h1", {"C2": 5877, "C3": 3})], ["C2", "C3"], {"C2": "#1", "C3": "#2"})
    ticks = re.findall(r'class="axis" text-anchor="end">([^<]*)</text>', few)
    assert ticks == ["3,000", "6,000"]
    (c3,) = re.findall(r'height="([0-9.]+)" fill="#2"', few)
    assert float(c3) == 4.0
    # a peak of 25 has its half at 12.5, not "12"
    halves = bars("t", [("h", {"C2": 25})], ["C2"], {"C2": "#1"})
    assert re.findall(r'text-anchor="end">([^<]*)</text>', halves) == ["12.5", "25"]


def test_a_charts_first_last_and_tallest_bars_carry_their_dates() -> None:
    """A new user's "Alerts per day" ran 2025-11-28 … 2025-12-30 on its axis, and its last bar,
    2026-01-01 with 75 of the 79 alerts, had no date: every 4th bar was labelled from the first."""
    from streams.report.charts import bars

    days = [f"{date(2025, 11, 28) + timedelta(days=d):%Y-%m-%d}" for d in range(35)]  # the demo's
    rows = [(d, {"high": 75 if d == "2026-01-01" else 1 if d.endswith(("05", "17")) else 0}) for d in days]
    chart = bars("t", rows, ["high"], {"high": "#1"}, unit="days")
    dated = re.findall(r"<tspan[^>]*>([0-9-]+)</tspan>", chart)
    assert {"2025-11-28", "2026-01-01"} <= set(dated) and 5 <= len(dated) <= 10
    middle = [(d, {"high": 75 if d == "2025-12-15" else 1}) for d in days]
    assert "2025-12-15" in re.findall(
        r"<tspan[^>]*>([0-9-]+)</tspan>", bars("t", middle, ["high"], {"high": "#1"})
    )
    # no two labels closer than a date's width (64 of the chart's 760): they would overprint; the
    # demo's 35 days once had 2025-12-30 two bars before 2026-01-01
    placed = sorted(
        float(x)
        for x in re.findall(r'<text x="([0-9.]+)" y="[0-9.]+" class="axis" text-anchor="middle"', chart)
    )
    assert min(b - a for a, b in itertools.pairwise(placed)) >= 64


def test_a_rerun_with_fewer_revisions_still_replaces_the_old_rows(ch, names, policy) -> None:
    """After a crash the re-run may batch differently and reach `closed` at revision 2, where the
    first run had emitted revision 8 `updated`: the closed state must win."""
    from test_alerts import finding

    from schemas.models import AlertStatus
    from streams.alerts import build_alert

    db = names["database"]
    apply_ddl(ch, db)
    section = policy.detectors["bulk_query"]
    first_run = build_alert(finding(revision=8, last_seen=1900), section)
    rerun = build_alert(finding(revision=2, closed=True, last_seen=1900), section)
    for batch in ([first_run], [rerun]):
        sink = ClickHouseTableSink(ch, f"{db}.alerts", ALERT_COLUMNS, alert_row, "alerts")
        sink.add(batch)
        sink.flush()
    rows = ch.query(f"SELECT status, revision FROM {db}.alerts FINAL").result_rows
    assert rows == [(AlertStatus.closed.value, 2)]


def test_a_stale_revision_re_sent_after_a_crash_does_not_replace_one_that_says_more(
    ch, names, policy
) -> None:
    """A crash re-sends revisions from the last checkpoint: revision 2 (54 records) can reach the
    table after revision 3 (55, the last one an access dated earlier that arrived late, so the same
    last event). Ranked by last event alone the two tied and the last inserted won."""
    from test_alerts import finding

    from streams.alerts import build_alert

    db = names["database"]
    apply_ddl(ch, db)
    section = policy.detectors["bulk_query"]
    newer = build_alert(finding(revision=3, last_seen=1900, event_count=55), section)
    stale = build_alert(finding(revision=2, last_seen=1900, event_count=54), section)
    for batch in ([newer], [stale]):
        sink = ClickHouseTableSink(ch, f"{db}.alerts", ALERT_COLUMNS, alert_row, "alerts")
        sink.add(batch)
        sink.flush()
    assert ch.query(f"SELECT revision, event_count FROM {db}.alerts FINAL").result_rows == [(3, 55)]


def test_an_alerts_time_is_when_its_events_happened_not_its_detector_window(
    ch, names, policy, catalog
) -> None:
    """The report once showed the alert's window: a bulk query's ends an hour after its last
    access (12:45 for reads that stopped at 11:45), an SDK finding's a day after one observation."""
    db = names["database"]
    apply_ddl(ch, db)
    alerts = counted_alerts(policy, catalog)
    bulk = next(a for a in alerts if a.detector == "bulk_query")
    assert bulk.window_end > bulk.last_seen
    sink = ClickHouseTableSink(ch, f"{db}.alerts", ALERT_COLUMNS, alert_row, "alerts")
    sink.add(alerts)
    sink.flush()
    html = render(gather(ch, db))
    row = next(r for r in re.findall(r"<tr>.*?</tr>", html, re.S) if "<td>e1<br>" in r)

    def t(ms: int, fmt: str = "%Y-%m-%d %H:%M") -> str:
        return datetime.fromtimestamp(ms / 1000, UTC).strftime(fmt)

    # the last event, then the first beneath it (one day, one date)
    assert f"{t(bulk.last_seen)}<br><small>first / 首 {t(bulk.first_seen, '%H:%M')}</small>" in row


def test_the_report_states_its_data_window_and_never_hides_c3(ch, names, policy, catalog) -> None:
    """The page said when it was generated, not what period it covers, and its dates had no year;
    on the linear class chart 14 C3 events under tens of thousands of C2 drew nothing while the
    legend listed C3, so a reader could take it for no C3 at all."""
    db = names["database"]
    store_day(
        ch,
        db,
        policy,
        catalog,
        access("e1", customers=3000, every_s=1, n=3000)  # C2 balances
        + access("e2", customers=3, start=7_200_000, fields=("card_cvn",), n=3),  # C3
    )
    data = gather(ch, db)
    html = render(data)
    start = datetime.fromtimestamp(T0 / 1000, UTC)
    last = start + timedelta(hours=2)  # e2's accesses, its last minute
    assert f"<b>{start:%Y-%m-%d %H:%M} – {last:%Y-%m-%d %H:%M} UTC</b>" in html
    hourly = html.split("</figure>", 1)[0]
    assert f"{start:%Y-%m-%d}" in re.findall(
        r"<tspan[^>]*>([^<]*)</tspan>", hourly
    )  # axis dates have the year
    c3 = sum(n for _, cls, n in data["by_class"] if cls == "C3")
    assert c3 == 3 and sum(n for _, cls, n in data["by_class"] if cls == "C2") >= 1000 * c3
    assert "<b>3</b><span>C3 events / C3 类事件" in html
    assert re.search(r"<i [^>]*></i>C3 3</span>", html)  # in the legend, with its count
    counts = re.search(r'<table class="classes">.*?</table>', html, re.S)
    assert counts and re.search(r"<tr><td>access</td><td class=\"n c3\">3</td>", counts[0]), counts
    assert re.search(r"<tr><th>total / 合计</th><td class=\"n c3\">3</td>", counts[0])


def test_records_collected_years_ago_neither_start_the_data_window_nor_bury_the_incidents(
    ch, names, policy, catalog
) -> None:
    """A new user's one-day demo report read "data window 2007-10-18 16:19 – 2026-01-01": a record
    still held is logged with the day it was collected, and that lifecycle event's time started the
    window. It starts at the first event of the other streams, the record-dated ones before it said
    apart; and the leakage incidents, what management must act on, came ~4,500 px down the page,
    after the tables: they come right after the key figures."""
    db = names["database"]
    collected = [
        LifecycleEvent(
            event_id=f"col-{i}",
            ts=T0 - (5 + i) * 365 * 86_400_000,
            record_id=f"R{i}",
            subject_id=f"C{i:07d}",
            stage="collect",
            system="crm",
            categories=["mobile_phone"],
            purpose="customer_service",
        )  # fmt: skip
        for i in range(3)
    ]
    store_day(ch, db, policy, catalog, access("e1", customers=70, every_s=20, start=3_600_000), collected)
    data = gather(ch, db)
    start = datetime.fromtimestamp((T0 + 3_600_000) / 1000, UTC)
    assert data["window"][0] == start and data["back_dated"].events == 3
    earliest = datetime.fromtimestamp(collected[-1].ts / 1000, UTC)
    assert data["back_dated"].earliest == earliest.replace(second=0, microsecond=0)
    html = render(data)
    assert f"<b>{start:%Y-%m-%d %H:%M} – " in html and f"{earliest:%Y}-" not in html.split("</b>", 2)[1]
    assert f"3 lifecycle events dated before it, back to {earliest:%Y-%m-%d}" in html
    assert "Events per hour by stream" in html and "3 events outside the chart" in html
    assert data["incidents"] == 1
    order = [
        html.index(h) for h in ("<h2>Leakage incidents", "Events per hour", "<h2>Lifecycle", "<h2>Alerts /")
    ]
    assert order == sorted(order), order
    # with no event of another stream, the record-dated ones are the window
    other = names["database"] + "_l"
    store_day(ch, other, policy, catalog, [], collected)
    data = gather(ch, other)
    assert data["window"][0] == earliest.replace(second=0, microsecond=0) and data["back_dated"] is None


def test_a_report_without_events_says_so_instead_of_a_window(ch, names, policy, catalog) -> None:
    """And instead of its charts: two empty ones drew an axis of 0 to 1 events with a tick at 0.5
    (probe_s3 #10, a `--since 30d` report of the demo's store)."""
    db = names["database"]
    apply_ddl(ch, db)
    html = render(gather(ch, db))
    assert "no events yet / 尚无事件" in html and "<b>0</b><span>events monitored" in html
    assert "<svg" not in html and '<p class="nocharts">no events yet / 尚无事件: no chart' in html
    # a period after the store's day: none of its events are in it
    store_day(ch, db, policy, catalog, access("e1", customers=3, n=3))
    assert "<svg" in render(gather(ch, db))
    later = Period(since=datetime.fromtimestamp(T0 / 1000, UTC) + timedelta(days=30))
    html = render(gather(ch, db, later))
    assert "<svg" not in html and "0.5" not in html
    assert '<p class="nocharts">no events in the period / 期内无事件: no chart' in html
    assert "none in the period / 期内无对外提供" in html  # the transfer ledger's section, empty


def test_a_store_from_before_the_transfer_ledger_has_no_section_rather_than_none(ch, names) -> None:
    """`lifemon report` never creates tables: over a database an earlier lifemon wrote, the section
    would say "none" of transfers it never recorded."""
    db = names["database"]
    apply_ddl(ch, db)
    ch.command(f"DROP TABLE {db}.transfer_ledger")
    data = gather(ch, db)
    assert data["provided"] is None and "Personal information provided to others" not in render(data)
