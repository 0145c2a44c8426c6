"""`lifemon report` for a period: `--month` (the bank's calendar month in its zone) or `--since` /
`--until` (as `lifemon alerts`), every section kept to it, alert and incident ids a manager can
cross-check with `lifemon alerts` and `lifemon incidents` for the same period, times in the bank's
zone with UTC beside them. Real chDB, the alerts and incidents of real detectors."""

from __future__ import annotations

import logging
import os
import re
from datetime import UTC, datetime, timedelta
from html import escape
from pathlib import Path
from typing import Any

import pytest
from conftest import T0, access
from test_report import store_day

from streams.cli import main
from streams.report import Period, busiest_days, gather, month_period, render
from streams.report.incidents import incidents_table

HOUR = 3_600_000
BEIJING = "Asia/Shanghai"  # policy/recipients.yaml `timezone`, the built-in policy's


def utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


@pytest.fixture
def days(ch, names, policy, catalog) -> str:
    """Four employees' bulk reads around the turn of the year. T0 is 2026-01-01 00:00 UTC, 08:00 in
    Beijing: e9 reads at 23:00 on 31 December in Beijing (15:00 UTC), e0 at 01:00 on 1 January in
    Beijing, still 31 December in UTC (17:00); e1 at T0, e2 two hours later. Every one passes the
    bulk_query threshold; all but e2 (45 customers) pass art. 5's 50 and open a leakage incident;
    e9's and e0's night reads are unauthorized_lookup alerts too."""
    db = names["database"]
    store_day(
        ch,
        db,
        policy,
        catalog,
        access("e9", customers=55, start=-9 * HOUR, every_s=20)
        + access("e0", customers=60, start=-7 * HOUR, every_s=20)
        + access("e1", customers=70, every_s=20)
        + access("e2", customers=45, start=2 * HOUR, every_s=20),
    )
    return db


def cli(
    args: list[str], db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: Any, ch
) -> str:
    """`lifemon ARGS` against the session's chDB; what it printed (stdout)."""
    monkeypatch.setattr("streams.clickhouse.connect", lambda dsn: ch)
    config = tmp_path / "lifemon.yaml"
    config.write_text(f"clickhouse: {{database: {db}}}\n")
    root = logging.getLogger()
    saved = root.handlers[:], root.level  # the command sets up its logging; the test process keeps its own
    try:
        assert (
            main(
                [*args, "--config", str(config), "--clickhouse", f"chdb://{os.environ['LIFEMON_TEST_CHDB']}"]
            )
            == 0
        )
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    return capsys.readouterr().out


def report(args: list[str], db: str, tmp_path: Path, capsys: Any, monkeypatch: Any, ch) -> str:
    out = tmp_path / "report.html"
    cli(["report", *args, "--out", str(out)], db, tmp_path, capsys, monkeypatch, ch)
    return out.read_text(encoding="utf-8")


def section(html: str, heading: str) -> str:
    found = re.search(rf"<h2>{re.escape(heading)}</h2>.*?</table>", html, re.S)
    assert found, heading
    return found[0]


def ids(html: str, heading: str) -> list[str]:
    """The short ids of a report table's rows, in their order."""
    return re.findall(r"<code class=id>([0-9a-f]{12})</code>", section(html, heading))


def actors(html: str) -> set[str]:
    return set(re.findall(r"<td class=rule>[^<]*<br><small>[^<]*</small></td><td>(e\d)<br>", html))


def test_a_month_is_the_banks_calendar_month_in_its_zone() -> None:
    january = month_period("2026-01", BEIJING)
    assert (january.since, january.until) == (
        datetime(2025, 12, 31, 16, tzinfo=UTC),
        datetime(2026, 1, 31, 16, tzinfo=UTC),
    )
    december = month_period("2025-12", BEIJING)  # the next month is in the next year
    assert (december.since, december.until) == (datetime(2025, 11, 30, 16, tzinfo=UTC), january.since)
    assert month_period("2026-02", "UTC").until == datetime(2026, 3, 1, tzinfo=UTC)


def test_report_month_counts_the_banks_january_not_utcs(days, ch, tmp_path, capsys, monkeypatch) -> None:
    """e0 read at 01:00 on 1 January in Beijing (31 December in UTC): January's; e9 at 23:00 on 31
    December in Beijing: December's, though both are 31 December in UTC."""
    html = report(["--month", "2026-01"], days, tmp_path, capsys, monkeypatch, ch)
    assert actors(html) == {"e0", "e1", "e2"}
    assert "<b>175</b><span>events monitored / 监测事件" in html  # 60 + 70 + 45, not e9's 55
    assert (
        "<b>2026-01 (Asia/Shanghai calendar month / 本行所在时区自然月) · 2026-01-01 00:00 – 2026-02-01 00:00 "
        "Asia/Shanghai <small>(2025-12-31 16:00 – 2026-01-31 16:00 UTC)</small>" in html
    )
    incidents = section(html, "Leakage incidents / 泄露事件")
    assert incidents.count("<code class=id>") == 2 and "actor e9" not in incidents  # e0's and e1's
    december = report(["--month", "2025-12"], days, tmp_path, capsys, monkeypatch, ch)
    assert actors(december) == {"e9"} and "<b>55</b><span>events monitored" in december
    assert "2025-12-01 00:00 – 2026-01-01 00:00 Asia/Shanghai" in december


def test_every_section_keeps_to_the_period(days, ch, policy) -> None:
    """From T0 + 1 h: e2's reads only. Events, the hourly chart, alerts, incidents (none: e2 read 45
    customers), coverage gaps, dead letters and the lifecycle figures' `as of` are all the period's."""
    ch.command(
        f"INSERT INTO {days}.event_rollups (topic, partition, block, minute, stream, jr_class, org, outcome, "
        f"events, version) VALUES ('t', 0, 1, '2025-12-31 17:00:00', 'coverage_gap', 'table', 'before.t', 'access', "
        f"1, 1), ('t', 0, 2, '2026-01-01 02:00:00', 'coverage_gap', 'table', 'within.t', 'access', 1, 1)"
    )
    ch.command(
        f"INSERT INTO {days}.dead_letters VALUES ('pfi.access', 0, 1, 'decode', '', 'x', '2025-12-31 17:00:00'), "
        "('pfi.access', 0, 2, 'schema', '', 'y', '2026-01-01 03:00:00'), "
        "('pfi.access', 0, 3, 'schema', '', 'z', '2026-01-01 03:01:00')"
    )
    everything = gather(ch, days)
    assert sum(n for _, _, n in everything["by_class"]) == 230 and everything["incidents"] == 3
    period = Period(since=utc(T0 + HOUR), timezone=BEIJING)
    data = gather(ch, days, period)
    assert sum(n for _, _, n in data["by_class"]) == 45
    assert {h for h, _, _ in data["by_hour"]} == {utc(T0 + 2 * HOUR)}
    assert [a["actor_id"] for a in data["alerts"]] == ["e2"] and data["alerts_total"] == 1
    assert data["incidents"] == 0 and data["incident_rows"] == []
    assert [g[1] for g in data["gaps"]] == ["within.t"]
    assert data["dead"] == [("schema", 2)]
    last_e2 = T0 + 2 * HOUR + 44 * 20_000  # 45 reads 20 s apart
    assert data["lifecycle"]["as_of"] == utc((last_e2 // 60_000 + 1) * 60_000)
    assert data["window"] == (utc(T0 + 2 * HOUR), utc(last_e2 // 60_000 * 60_000))
    html = render(data)
    assert "<b>45</b><span>events monitored" in html and "<b>2</b><span>dead letters" in html
    assert "from / 自 2026-01-01 09:00 Asia/Shanghai <small>(2026-01-01 01:00 UTC)</small>" in html
    assert "no incidents in the period / 期内无泄露事件" in html
    # the stored alerts whose last event came before the period are said, with their command (a
    # new user's January report had 60 of the demo's 64, and said nothing of the other 4)
    assert data["alerts_before"] == 5
    assert "<b>5 alerts stored</b> have their last event before the period" in html
    assert "<code>lifemon alerts --until 2026-01-01T09:00" in html
    until = gather(ch, days, Period(until=utc(T0 + HOUR), timezone=BEIJING))
    assert (
        sorted(a["actor_id"] for a in until["alerts"]) == ["e0", "e0", "e1", "e9", "e9"]
        and until["incidents"] == 3
    )


@pytest.mark.parametrize(
    ("window", "alerts"),
    [
        ([], 6),
        (["--since", "2026-01-01T08:00"], 2),  # the bank's zone, 00:00 UTC: e1's and e2's
        (["--until", "2026-01-01T01:00+08:00"], 2),  # e9's two (e0 began at that minute)
        (["--since", "2025-12-31T16:00Z", "--until", "2026-01-01T09:00+08:00"], 3),  # e0's two, e1's
    ],
    ids=["everything", "since", "until", "both"],
)
def test_the_reports_alert_and_incident_ids_are_the_clis_for_the_same_window(
    window, alerts, days, ch, tmp_path, capsys, monkeypatch
) -> None:
    """A manager checks the report against `lifemon alerts --since … --until …` and `lifemon
    incidents` with the same window: the same ids, the report's in the short form the CLI prints."""
    html = report(window, days, tmp_path, capsys, monkeypatch, ch)
    listed = cli(["alerts", *window, "--limit", "1000"], days, tmp_path, capsys, monkeypatch, ch)
    cli_ids = re.findall(r"\[([0-9a-f]{12})\]$", listed, re.M)
    assert len(cli_ids) == alerts and sorted(ids(html, "Alerts / 告警")) == sorted(cli_ids)
    incidents = cli(["incidents", *window, "--limit", "1000"], days, tmp_path, capsys, monkeypatch, ch)
    assert ids(html, "Leakage incidents / 泄露事件") == re.findall(r"\[([0-9a-f]{12}) rev \d+\]", incidents)


def test_alert_and_incident_rows_show_id_detector_status_and_times_in_the_banks_zone(
    days, ch, policy
) -> None:
    data = gather(ch, days, Period(since=utc(T0), until=utc(T0 + HOUR), timezone=BEIJING))
    (alert,) = data["alerts"]
    html = render(data, generated=datetime(2026, 12, 5, tzinfo=UTC))
    alerts = section(html, "Alerts / 告警")
    headers = [re.sub(r"<.*?>", "", h) for h in re.findall(r"<th.*?</th>", alerts)]
    assert headers[:4] == ["severity", "alert id", "status / 状态", "detector / 检测器"]
    assert "last event / 末次事件" in headers
    last = alert["last_seen"].replace(tzinfo=UTC)
    row = re.search(r"<tr><td><b class=\"sev\".*?</tr>", alerts, re.S)
    assert row
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row[0], re.S)
    assert cells[1:4] == [f"<code class=id>{alert['alert_id'][:12]}</code>", alert["status"], "bulk_query"]
    beijing = last + timedelta(hours=8)
    first = alert["first_seen"].replace(tzinfo=UTC) + timedelta(hours=8)
    assert (
        f"{beijing:%Y-%m-%d %H:%M}<br><small>first / 首 {first:%H:%M}</small>"
        f"<br><small>{last:%Y-%m-%d %H:%M} UTC</small>" in row[0]
    )
    assert alert["status"] in {"open", "updated", "closed"}

    incidents = section(html, "Leakage incidents / 泄露事件")
    headers = [re.sub(r"<.*?>", "", h) for h in re.findall(r"<th.*?</th>", incidents)]
    assert headers == [
        "incident id",
        "severity",
        "status / 状态",
        "what / 事件",
        "began / 开始",
        "detected / 发现",
        "next report due / 待报时限",
        "customers affected / 涉及客户",
        "counted / 数量",
        "classes / 泄露类别",
    ]
    (incident,) = data["incident_rows"]
    cells = re.findall(r"<td[^>]*>(.*?)</td>", incidents.split("</tr>", 1)[1], re.S)
    began, due = (incident[k].replace(tzinfo=UTC) for k in ("first_seen", "first_due"))
    detected = datetime.fromtimestamp(incident["detected_at"] / 1000, UTC)
    assert cells[0] == f"<code class=id>{incident['incident_id'][:12]}</code>"
    assert cells[2] == incident["status"] and "actor e1" in cells[3]
    # what leaked, in both languages, as the alerts table titles its rules
    assert cells[3].startswith(f"{incident['title_zh']}<br><small>{escape(incident['title_en'])}</small>")
    for at, shown in ((began, cells[4]), (detected, cells[5])):
        assert shown == f"{at + timedelta(hours=8):%Y-%m-%d %H:%M}<br><small>{at:%Y-%m-%d %H:%M} UTC</small>"
    # the leak began at its first read; the regulator's 24 h run from when lifemon knew it
    assert detected > began and due == detected + timedelta(hours=24)
    assert cells[6].startswith(f"{due + timedelta(hours=8):%Y-%m-%d %H:%M}<br>")
    assert "passed / 已过" in cells[6]  # due a day after 2026-01-01, long before the page was made
    assert cells[6].endswith("<small>监管部门 (人民银行分支机构) / the regulator (PBOC branch)</small>")
    assert cells[7] == "70 customers / 客户" and cells[9] == ", ".join(incident["leakage_classes"]) != ""
    assert cells[8] == f"{incident['records']:,} records / 记录"
    # a record stored before detections were kept says so, not a time
    assert "not kept / 未记录" in incidents_table(
        [dict(incident, detected_at=None)], 1, data["period"], datetime.now(UTC)
    )
    # an SDK's incident counts observations and devices, as `lifemon incidents` says: not "0" records
    sdk = dict(incident, records=0, observations=2, devices=1)
    page = incidents_table([sdk], 1, data["period"], datetime.now(UTC))
    assert "2 observations / 次采集, 1 device / 台设备" in page and ">0<" not in page


def test_report_refuses_a_month_with_since_and_a_malformed_month(tmp_path) -> None:
    out = tmp_path / "r.html"
    assert main(["report", "--month", "2026-01", "--since", "2026-01-05", "--out", str(out)]) == 2
    assert main(["report", "--since", "2026-01-05", "--until", "2026-01-01", "--out", str(out)]) == 2
    with pytest.raises(SystemExit) as usage:
        main(["report", "--month", "2026-13", "--out", str(out)])
    assert usage.value.code == 2 and not out.exists()


def test_a_month_is_charted_by_the_banks_days_not_its_last_two_weeks_of_hours() -> None:
    """busiest_hours keeps two weeks: a month's first half went missing from its chart."""
    zone = Period(timezone=BEIJING).zone
    start = datetime(2025, 12, 31, 16, tzinfo=UTC)  # 1 January, midnight in Beijing
    rows = [(start + timedelta(hours=h), "access", 10) for h in range(0, 31 * 24, 6)]
    days = busiest_days(rows, zone)
    assert [d for d, _ in days][:2] == ["2026-01-01", "2026-01-02"] and len(days) == 31
    assert days[0][1] == {"access": 40}  # four 6-hour marks a day
    html = render(
        {"period": Period(timezone=BEIJING), "by_hour": rows, "by_class": [], "alerts": [], "dead": []}
    )
    assert "Events per day by stream / 各数据流每日事件数 (Asia/Shanghai)" in html


def test_the_report_charts_the_periods_alerts_by_day_and_severity(
    days, ch, tmp_path, capsys, monkeypatch
) -> None:
    """probe_v3 M5: management would rather look at a chart of the alerts than read their table.
    January's, by the bank's day of their last event and severity: every day of the month drawn,
    the bars the alerts `lifemon alerts` lists for the month, by the day in Beijing of the time it
    prints in UTC; a day-long period, by the hour."""
    html = report(["--month", "2026-01"], days, tmp_path, capsys, monkeypatch, ch)
    chart = re.search(r"<figcaption>Alerts per day / 每日告警数.*?</figure>", html, re.S)
    assert chart, "no chart of alerts"
    drawn = {(d, s): int(n) for d, s, n in re.findall(r"<title>(\S+) (\w+): (\d+)</title>", chart[0])}
    axis = re.findall(r"<tspan[^>]*>(\d{4}-\d\d-\d\d)</tspan>", chart[0])
    assert axis[0] == "2026-01-01" and axis[-1] == "2026-01-31"  # the whole month, not its alerts' days
    listed = cli(
        ["alerts", "--since", "2026-01-01T00:00+08:00", "--until", "2026-02-01T00:00+08:00", "--limit", "99"],
        days, tmp_path, capsys, monkeypatch, ch,
    )  # fmt: skip
    by_day: dict[tuple[str, str], int] = {}
    for when, severity in re.findall(r"^(\S+ \S+) UTC  (\w+)", listed, re.M):
        day = f"{datetime.fromisoformat(when).replace(tzinfo=UTC) + timedelta(hours=8):%Y-%m-%d}"
        by_day[(day, severity)] = by_day.get((day, severity), 0) + 1
    assert drawn == by_day and sum(drawn.values()) == 4  # e0's two, e1's and e2's
    assert f"<b>{sum(drawn.values())}</b><span>alerts / 告警" in html
    hours = render(gather(ch, days, Period(since=utc(T0), until=utc(T0 + 24 * HOUR), timezone=BEIJING)))
    assert "<figcaption>Alerts per hour / 每小时告警数, by severity" in hours
    none = render(gather(ch, days, Period(since=utc(T0 + 48 * HOUR), timezone=BEIJING)))
    assert "no alerts in the period / 期内无告警: no chart of alerts" in none


def org_rows(html: str) -> dict[str, tuple[int, ...]]:
    """The report's "Alerts by organisation" rows: org -> (critical, high, other, alerts)."""
    table = section(html, "Alerts by organisation / 各机构告警")
    return {
        org: tuple(int(n.replace(",", "")) for n in ns)
        for org, *ns in re.findall(
            r"<tr><t[dh]>([^<]+)</t[dh]>" + r"<t[dh] class=n>([\d,]+)</t[dh]>" * 4, table
        )
    }


def test_alerts_of_no_org_known_count_alike_in_the_report_the_panel_and_the_cli(
    days, ch, tmp_path, capsys, monkeypatch
) -> None:
    """probe_v3 M6: e0's night read names no org (HR's feed does not know e0; its bulk read takes
    the org its log line names). The org panel left such alerts out, the report's table left the org
    blank, `alerts show` said none: the totals of orgs disagreed. Now one named bucket, 未知机构 / no
    org known, in all three, every total the month's."""
    from test_deploy import _panel_rows

    from streams.alert_query import NO_ORG

    window = ["--since", "2026-01-01T00:00+08:00", "--until", "2026-02-01T00:00+08:00"]
    html = report(["--month", "2026-01"], days, tmp_path, capsys, monkeypatch, ch)
    rows = org_rows(html)
    assert rows == {"S0101": (0, 2, 1, 3), NO_ORG: (0, 0, 1, 1), "total / 合计": (0, 2, 2, 4)}
    assert "<b>4</b><span>alerts / 告警" in html and f"<small>{NO_ORG}</small>" in section(
        html, "Alerts / 告警"
    )
    january = month_period("2026-01", BEIJING)
    panel = _panel_rows("Organisations with the most alerts", ch, days, (january.since, january.until))
    assert {r["org"]: (r["critical"], r["high"], r["other"]) for r in panel} == {
        org: counts[:3] for org, counts in rows.items() if org != "total / 合计"
    }
    for org, word in (("S0101", "s0101"), (NO_ORG, "none")):
        listed = cli(["alerts", "--org", word, *window], days, tmp_path, capsys, monkeypatch, ch)
        assert listed.rstrip().endswith(f"{rows[org][3]} alert{'s' * (rows[org][3] > 1)}"), listed
    unknown = cli(["alerts", "--org", "none", *window], days, tmp_path, capsys, monkeypatch, ch)
    assert set(re.findall(r"(e\d) ", unknown)) == {"e0"}
    (e0,) = re.findall(r"\[([0-9a-f]{12})\]", unknown)[:1]
    shown = cli(["alerts", "show", e0], days, tmp_path, capsys, monkeypatch, ch)
    assert f"e0, org {NO_ORG}" in shown
