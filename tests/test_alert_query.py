"""`lifemon alerts`: the SOC's filtered list, read from ClickHouse (chDB) as the monitor wrote it."""

from __future__ import annotations

import logging
import os
import uuid
from datetime import UTC, datetime

import pytest
from conftest import T0

from schemas.models import Alert, AlertStatus, Severity
from streams.alert_query import query_alerts, render, render_alert, resolve_alert_id
from streams.cli import main
from streams.clickhouse import apply_ddl
from streams.sinks.clickhouse import ALERT_COLUMNS, ClickHouseTableSink, alert_row
from streams.text_table import display_width


def alert(uid: str, detector: str, severity: str, actor: str, minute: int, revision: int = 1, **kw) -> Alert:
    """An alert of `actor`'s at minute `minute` of 2026-01-01; `kw` sets any other field."""
    ts = T0 + minute * 60_000
    fields = {
        "status": AlertStatus.open,
        "rule_id": "R",
        "rule_version": 1,
        "title_zh": "标题",
        "title_en": "title",
        "summary": f"{actor} did something",
        "regulation": ["seed"],
        "jr_class": "C2",
        "actor_org": "S0101",
        "subject_count": 3,
        "subjects_sample": ["p_1"],
        "counts": {},
        "evidence_event_ids": ["e"],
    }
    return Alert(
        alert_id=uid,
        revision=revision,
        detector=detector,
        severity=Severity(severity),
        actor_id=actor,
        window_start=ts,
        window_end=ts,
        first_seen=ts,
        last_seen=ts,
        **(fields | kw),
    )


@pytest.fixture
def db(ch):
    name = f"aq_{uuid.uuid4().hex[:8]}"
    apply_ddl(ch, name)
    sink = ClickHouseTableSink(ch, f"{name}.alerts", ALERT_COLUMNS, alert_row, "alerts")
    sink.write(
        [
            alert("a1", "bulk_query", "high", "e1", 1),
            alert("a2", "unauthorized_lookup", "medium", "e2", 2),
            alert("a3", "bulk_query", "critical", "e3", 3),
            alert("a4", "transfer_policy", "low", "acme", 4),
        ]
    )
    sink.write(
        [
            alert("a1", "bulk_query", "high", "e1", 5, revision=2, status=AlertStatus.closed),
            alert("a3", "bulk_query", "critical", "e3", 3, revision=2, status=AlertStatus.updated),
        ]
    )
    return name


def test_filters_combine_and_the_newest_revision_counts(ch, db) -> None:
    ids = lambda **kw: [r["alert_id"] for r in query_alerts(ch, db, **kw).rows]  # noqa: E731
    assert ids() == ["a1", "a4", "a3", "a2"]  # newest first, a1 by its closing revision
    assert ids(detector="bulk_query") == ["a1", "a3"]
    assert ids(min_severity=Severity.high) == ["a1", "a3"]
    assert ids(actor="e2") == ["a2"] and ids(status="closed") == ["a1"]
    # an episode that grew is updated, and still as live as an open one: Grafana's status != 'closed'
    assert ids(status="open") == ["a4", "a2"] and ids(status="updated") == ["a3"]
    assert ids(status="active") == ["a4", "a3", "a2"]
    minute = lambda m: datetime.fromtimestamp((T0 + m * 60_000) / 1000, UTC)  # noqa: E731
    assert ids(since=minute(2), until=minute(4)) == ["a3", "a2"]
    assert ids(actor="e1' OR '1'='1") == []  # a bound parameter, not SQL
    assert ids(limit=1) == ["a1"]
    assert query_alerts(ch, db, limit=3).total == 4 and query_alerts(ch, db, limit=4).total == 4
    assert query_alerts(ch, db, status="active", limit=2).total == 3


def test_the_cli_prints_one_line_and_the_summary_per_alert(ch, db, capsys, monkeypatch, tmp_path) -> None:
    monkeypatch.setattr("streams.clickhouse.connect", lambda dsn: ch)
    config = tmp_path / "lifemon.yaml"
    config.write_text(f"clickhouse: {{database: {db}, dsn: 'chdb://{os.environ['LIFEMON_TEST_CHDB']}'}}\n")
    assert (
        main(["alerts", "--config", str(config), "--detector", "bulk_query", "--severity", "critical"]) == 0
    )
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 3 and "critical" in out[0] and "e3" in out[0] and out[1].strip() == "e3 did something"
    assert out[2] == "1 alert"  # the whole selection counted, singular for one
    # --since / --until take dates and ages; the alerts are from 2026-01-01, minutes 1 to 5
    assert main(["alerts", "--config", str(config), "--since", "2026-01-01", "--until", "2026-01-02"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 9 and out[-1] == "4 alerts"
    # a list cut by --limit says so, and how many there are
    assert main(["alerts", "--config", str(config), "--limit", "3"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 7 and out[-1] == "3 of 4 alerts shown; --limit 4 shows them all"
    assert main(["alerts", "--config", str(config), "--limit", "4"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 9
    # a filter that matched nothing says what is stored, and when: the demo's day is not today's
    # (probe_s3 #6: `--since 24h` after `make demo` printed only "no alerts match")
    assert main(["alerts", "--config", str(config), "--since", "7d"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "no alerts match",
        "(4 alerts stored, last seen 2026-01-01 00:02 … 2026-01-01 00:05 UTC)",
    ]
    assert render([]) == "no alerts match"
    # what was stored lately, whatever its events' time: those 2026-01-01 alerts, stored by this test
    # (a probe's `--since 1h` found none of what a replay had just stored)
    assert main(["alerts", "--config", str(config), "--raised-since", "1h"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "4 alerts"
    assert main(["alerts", "--config", str(config), "--raised-since", "2099-01-01T00:00Z"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "no alerts match"
    # an empty table has nothing to say more
    assert main(["incidents", "--config", str(config), "--raised-since", "1h"]) == 0
    assert capsys.readouterr().out.splitlines() == ["no incidents match"]


def test_records_and_customers_are_labelled_and_times_say_utc(ch, policy, catalog) -> None:
    """`lifemon alerts` once printed `subject_count` in an unlabelled column: bulk_query's records
    read as customers, 0 for a volume alert of 5 001 records, times without a zone. `lifemon watch`
    renders the same alert from its OCSF document the same way."""
    from test_report import counted_alerts

    from streams.alerts import to_ocsf
    from streams.watch import alert_row as watched

    name = f"aq_{uuid.uuid4().hex[:8]}"
    apply_ddl(ch, name)
    alerts = counted_alerts(policy, catalog)
    ClickHouseTableSink(ch, f"{name}.alerts", ALERT_COLUMNS, alert_row, "alerts").write(alerts)
    listed = {r["detector"]: render_alert(r).splitlines()[0] for r in query_alerts(ch, name).rows}
    assert "    210 records           70 customers  " in listed["bulk_query"]
    assert "  5,001 records            — customers  " in listed["transfer_policy"]
    # one is singular, and the columns after it stay where the plural's are
    one = dict(query_alerts(ch, name).rows[0], subject_count=1, counts={"records": 1, "customers": 1})
    line = render_alert(one).splitlines()[0]
    assert "      1 record             1 customer   " in line
    assert line.index(one["title_zh"]) == listed[one["detector"]].index(one["title_zh"])
    # a new user's finding: an unauthorized_lookup alert listed 36 records where its summary counts
    # 12 accesses; the column counts what each detector counts, and stays aligned
    counts = {"accesses": 12, "records": 36, "customers": 36}
    lookup = render_alert(dict(one, detector="unauthorized_lookup", counts=counts)).splitlines()[0]
    assert "     12 accesses          36 customers  " in lookup
    assert lookup.index(one["title_zh"]) == line.index(one["title_zh"])
    assert all(line.startswith("2026-01-01 ") and line[16:20] == " UTC" for line in listed.values())
    # a live revision carries no review: the list's column beside its status is all that differs
    live = {
        a.detector: render_alert({**watched(to_ocsf(a)), "review": "unreviewed"}).splitlines()[0]
        for a in alerts
    }
    assert live == listed


def test_columns_stay_aligned_when_a_recipients_id_is_longer_than_an_employees() -> None:
    rows = [
        {"last_seen": datetime(2026, 1, 1, tzinfo=UTC), "severity": "high", "status": "open", "alert_id": "a" * 32,
         "detector": "transfer_policy", "actor_id": actor, "subject_count": 3, "counts": {"records": 3},
         "title_zh": "标题", "title_en": "title", "summary": "s"}
        for actor in ("e1", "proc_card_personalization")
    ]  # fmt: skip
    first, second = (line for line in render(rows).splitlines() if "UTC" in line)
    assert first.index("3 records") == second.index("3 records")


def test_a_producers_control_characters_are_shown_escaped_never_obeyed() -> None:
    """A recipient id holding `ESC[2K` and a carriage return erased its line in a terminal and wrote
    a false "info closed resolved" over a critical alert (a probe); a newline or a right-to-left
    override fakes or reorders a line too. Shown escaped, in the list and in colour alike; the
    list's own colour codes stay."""
    evil = "evil\x1b[2K\r2026-01-01 01:00 UTC  info  closed\nfake\u202e\x9b"
    row = {"last_seen": datetime(2026, 1, 1, tzinfo=UTC), "severity": "critical", "status": "open",
           "alert_id": "a" * 32, "detector": "transfer_policy", "actor_id": evil, "subject_count": 1,
           "counts": {"records": 1}, "title_zh": "标题", "title_en": "title", "summary": f"sent to {evil}"}  # fmt: skip
    for color in (False, True):
        text = render([row], color)
        assert text.count("\n") == 1 and "\r" not in text and "\u202e" not in text and "\x9b" not in text
        assert text.count("\x1b") == (2 if color else 0)  # its severity's style and reset, nothing else
        assert "evil\\x1b[2K\\r2026" in text and "\\u202e" in text
    from streams.incident_query import render as render_incidents

    incident = {"first_seen": row["last_seen"], "severity": "critical", "status": "open", "key_kind": "recipient",
                "key": evil, "subjects_distinct": 1, "subjects_reported": 1, "subjects_unnamed": 0, "records": 1, "owed": [],
                "incident_id": "b" * 32, "revision": 1, "title_zh": "标题", "title_en": "title", "alert_ids": ["a" * 32]}  # fmt: skip
    text = render_incidents([incident], datetime(2026, 1, 2, tzinfo=UTC), color=False)
    assert "\x1b" not in text and "\r" not in text and "evil\\x1b[2K" in text


# -- `lifemon alerts show ID`: one alert for triage ------------------------------------------------
BULK = "cc91f269f62a087aa24c9e8917a53515"  # two ids sharing their first 7 characters, as hashes may
TWIN = "cc91f26aa0b1c2d3e4f5061728394a5b"
MARKETING = "5e1f0a7c3b2d4e6f8091a2b3c4d5e6f7"


@pytest.fixture
def root_logging():
    """`main` sets up its logging on the root logger; the test process keeps its own."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    yield
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


@pytest.fixture
def shown(ch, policy, tmp_path):
    """A database whose bulk_query alert was written at three checkpoints (merges stopped, so the
    table still holds each row, as it does until ClickHouse merges them), and a config to read it."""
    name = f"aq_{uuid.uuid4().hex[:8]}"
    apply_ddl(ch, name)
    ch.command(f"SYSTEM STOP MERGES {name}.alerts")
    sink = ClickHouseTableSink(ch, f"{name}.alerts", ALERT_COLUMNS, alert_row, "alerts")
    section = policy.detectors["bulk_query"]
    for revision, status, minute, events in [
        (1, AlertStatus.open, 10, 30),
        (2, AlertStatus.updated, 40, 61),
        (3, AlertStatus.closed, 95, 75),
    ]:
        sink.write(
            [
                alert(
                    BULK, "bulk_query", "high", "E000003", minute, revision, status=status,
                    rule_id=section.rule_id, regulation=["解释第五条第一款(四): 交易信息等500条"],
                    regulation_en=["Interpretation art. 5 ¶1 (4): 500 records of transaction information"],
                    subjects_sample=["p_aaa", "p_bbb"], counts={"records": 65 + minute, "customers": 33},
                    evidence_event_ids=[f"acc-{i}" for i in range(1, revision + 2)], event_count=events,
                )
            ]
        )  # fmt: skip
    sink.write([alert(TWIN, "unauthorized_lookup", "medium", "e2", 20, rule_id="LM-UL-001")])
    config = tmp_path / "lifemon.yaml"
    config.write_text(f"clickhouse: {{database: {name}, dsn: 'chdb://{os.environ['LIFEMON_TEST_CHDB']}'}}\n")
    return name, str(config)


def show(capsys, config: str, given: str) -> tuple[int, str, str]:
    status = main(["alerts", "show", given, "--config", config])
    out, err = capsys.readouterr()
    return status, out, err


def flat(text: str) -> str:
    return " ".join(text.split())  # a value wrapped over lines reads on as one


def test_show_says_why_it_fired_what_to_do_and_what_caused_it(
    ch, shown, policy, capsys, monkeypatch, root_logging
) -> None:
    """The probe: an alert did not tell its rule, its regulation, its evidence or what to do. The
    runbook and the detector's basis come from the policy; the rest is the newest row's."""
    monkeypatch.setattr("streams.clickhouse.connect", lambda dsn: ch)
    monkeypatch.setenv("COLUMNS", "100")
    _, config = shown
    status, out, _ = show(capsys, config, BULK[:12])  # the 12 characters the list shows
    assert status == 0
    section = policy.detectors["bulk_query"]
    assert out.splitlines()[0] == f"alert / 告警 {BULK}"
    fields = {line.split()[0]: line for line in out.splitlines() if line.startswith("  ") and line[2] != " "}
    assert f"{section.rule_id} v1 of bulk_query" in fields["rule"]
    assert "closed (revision 3)" in fields["status"] and "high" in fields["severity"]
    assert "标题 / title" in fields["title"] and "E000003, org S0101" in fields["actor"]
    # times in UTC, and in the bank's zone (recipients.yaml): minute 95 of 2026-01-01 is 09:35 in Beijing
    assert policy.recipients.timezone == "Asia/Shanghai"
    assert "last  2026-01-01 01:35:00 UTC  (2026-01-01 09:35:00 Asia/Shanghai)" in out
    assert "160 records, 33 customers" in fields["counted"]
    assert "2 pseudonyms kept, a sample:" in fields["subjects"] and "p_aaa, p_bbb" in out
    # the clause this alert cites, as quoted and in English, then apart the detector's basis for
    # all its rules, each clause once, each wrapped to the terminal with its English under it
    own = out.split("法规依据", 1)[1].split("  basis", 1)[0]
    assert [line.strip() for line in own.splitlines()] == [
        "解释第五条第一款(四): 交易信息等500条",
        "Interpretation art. 5 ¶1 (4): 500 records of transaction information",
    ]
    basis = out.split("检测器依据", 1)[1].split("  evidence", 1)[0]
    head, *clauses = [line.strip() for line in basis.splitlines()]
    assert head == "the detector's, for all its rules / 该检测器全部规则的依据:"
    # compared without spaces: the Chinese breaks between any two characters, the English at spaces
    assert "".join(clauses).replace(" ", "") == "".join(c.zh + c.en for c in section.regulation).replace(
        " ", ""
    )
    assert max(display_width(line) for line in out.splitlines() if "policy/detectors" not in line) <= 100
    assert "75 events aggregated; 4 event ids kept:" in fields["evidence"]
    assert "acc-1, acc-2, acc-3, acc-4" in out
    runbook = flat(out.split("处置步骤", 1)[1].split("revisions stored", 1)[0])
    # both languages: the Chinese wrapped between any two characters, so compared without spaces
    assert "".join(section.runbook.zh.split()) in "".join(runbook.split())
    assert flat(section.runbook.en) in runbook
    said = out.split("处置步骤", 1)[1].split("revisions stored", 1)[0].splitlines()
    assert max(display_width(line) for line in said[:-2]) <= 100, said  # the file's path aside
    assert runbook.endswith("policy/detectors/bulk_query.yaml")


def test_a_summarys_word_longer_than_the_line_breaks_after_its_slashes() -> None:
    """A new user's `alerts show` of a spree: its categories joined by slashes were one word 140
    columns long, past a terminal of 100. Such a word breaks after a slash; the words around it
    wrap as before, and no character is lost."""
    from streams.alert_query import _wrapped

    cats = "/".join(["transaction", "account", "authentication", "identity", "contact", "property"] * 3)
    summary = f"E000006 read 1,014 records of 927 customers ({cats}) in 13 minutes"
    lines = _wrapped(summary, 60)
    assert max(map(display_width, lines)) <= 60 and len(lines) >= 3, lines
    assert "".join(lines).replace(" ", "") == summary.replace(" ", "")
    assert all(line.endswith("/") for line in lines[1:-2]), lines  # broken where a slash ends a part
    assert _wrapped("a b c", 60) == ["a b c"]


def test_show_says_a_recipient_is_no_employee_and_why_the_window_is_wider_than_the_events(
    ch, shown, capsys, monkeypatch, root_logging
) -> None:
    """A new user read a recipient's alert as `org 未知机构 / no org known`, data missing rather than
    no employee, and a bulk query's window that began eight minutes before its first event, with
    no word why. An employee whom no entitlement names still has no org known."""
    monkeypatch.setattr("streams.clickhouse.connect", lambda dsn: ch)
    name, config = shown
    sink = ClickHouseTableSink(ch, f"{name}.alerts", ALERT_COLUMNS, alert_row, "alerts")
    wide = "a1" * 16
    sink.write(
        [
            alert("b1" * 16, "transfer_policy", "high", "tp_unlisted_broker", 30, actor_org=None),
            alert("b2" * 16, "bulk_query", "high", "e9", 31, actor_org=None),
            alert(wide, "bulk_query", "high", "e8", 40).model_copy(
                update={"window_start": T0 + 32 * 60_000, "window_end": T0 + 100 * 60_000}
            ),
        ]
    )  # fmt: skip

    def fields(out: str) -> dict[str, str]:
        return {
            line.split()[0]: line for line in out.splitlines() if line.startswith("  ") and line[2] != " "
        }

    out = show(capsys, config, "b1" * 6)[1]
    assert fields(out)["actor"].split("行为方")[1].strip() == (
        "tp_unlisted_broker, 接收方 / a recipient, not an employee: no org / 非本行员工, 无所属机构"
    )
    assert "未知机构" not in out and "window" not in fields(out)  # its window is its one event
    out = show(capsys, config, "b2" * 6)[1]
    assert fields(out)["actor"].endswith("e9, org 未知机构 / no org known")
    # the report's alerts table says the same beneath each actor
    from streams.report import Period
    from streams.report.alerts import alerts_table

    rows = [
        {c: r[c] for c in ("severity", "alert_id", "status", "detector", "title_zh", "title_en", "actor_id",
                           "actor_org", "subject_count", "counts", "jr_class", "last_seen", "first_seen", "summary")}
        for r in ch.query(f"SELECT * FROM {name}.alerts FINAL WHERE alert_id IN ('{'b1' * 16}', '{'b2' * 16}') "
                          "ORDER BY alert_id").named_results()
    ]  # fmt: skip
    page = alerts_table(rows, 2, Period())
    assert (
        "<td>tp_unlisted_broker<br><small>接收方 / a recipient, not an employee: no org / 非本行员工, 无所属机构</small>"
        in page
    )
    assert "<td>e9<br><small>未知机构 / no org known</small>" in page
    out = show(capsys, config, wide[:12])[1]
    window = flat(out.split("窗口", 1)[1].split("  counted", 1)[0])
    assert (
        "(it starts before the first event: the detector's window reaches back over earlier events" in window
    )
    assert "it ends after the last: the episode stays open while another event could join it" in window


def test_show_gives_a_kept_time_as_a_time_and_a_delay_in_hours(
    ch, shown, capsys, monkeypatch, root_logging
) -> None:
    """A new user's finding: `alerts show` printed an opt-out's time as `opt_out_ts 1,767,236,516,353`,
    an epoch in milliseconds with thousands separators. It is a time, in UTC and the bank's zone."""
    monkeypatch.setattr("streams.clickhouse.connect", lambda dsn: ch)
    name, config = shown
    sink = ClickHouseTableSink(ch, f"{name}.alerts", ALERT_COLUMNS, alert_row, "alerts")
    opted_out = T0 + 21 * 3_600_000 + 10 * 60_000 + 16_353  # 2026-01-01T21:10:16.353Z
    counts = {"pushes": 1, "opt_out_ts": opted_out, "opt_out_delay_s": 16_260}
    sink.write([alert(MARKETING, "offscope_marketing", "high", "E000009", 1, counts=counts)])
    status, out, _ = show(capsys, config, MARKETING)
    assert status == 0
    said = flat(out.split("计数", 1)[1].split("  summary", 1)[0])
    assert said == (
        "pushes 1, opt_out_ts 2026-01-01 21:10:16 UTC (2026-01-02 05:10:16 Asia/Shanghai), "
        "opt_out_delay_s 16,260 (4 h 31 min)"
    )


def test_show_lists_the_revisions_the_table_holds_in_order(
    ch, shown, capsys, monkeypatch, root_logging
) -> None:
    monkeypatch.setattr("streams.clickhouse.connect", lambda dsn: ch)
    name, config = shown
    status, out, _ = show(capsys, config, BULK)
    assert status == 0
    table = out.split("revisions stored", 1)[1].split("\n\n", 1)[0].splitlines()[1:]  # the reviews follow
    assert table[0].split() == ["revision", "last", "seen", "events", "status"]
    rows = [line.split() for line in table[1:]]
    assert rows == [
        ["1", "2026-01-01", "00:10:00", "UTC", "30", "open"],
        ["2", "2026-01-01", "00:40:00", "UTC", "61", "updated"],
        ["3", "2026-01-01", "01:35:00", "UTC", "75", "closed"],
    ]
    # once ClickHouse merges the parts, only the newest row is left, and that is all it shows
    ch.command(f"SYSTEM START MERGES {name}.alerts")
    ch.command(f"OPTIMIZE TABLE {name}.alerts FINAL")
    _, out, _ = show(capsys, config, BULK)
    revisions = out.split("revisions stored", 1)[1].split("\n\n", 1)[0]
    assert [line.split()[0] for line in revisions.splitlines()[2:]] == ["3"]


def test_show_takes_a_unique_prefix_and_refuses_an_ambiguous_or_unknown_one(
    ch, shown, capsys, monkeypatch, root_logging
) -> None:
    monkeypatch.setattr("streams.clickhouse.connect", lambda dsn: ch)
    name, config = shown
    status, out, _ = show(capsys, config, BULK[:8])  # cc91f269: this one only
    assert status == 0 and out.startswith(f"alert / 告警 {BULK}\n")
    status, out, _ = show(capsys, config, TWIN[:8])
    assert status == 0 and out.startswith(f"alert / 告警 {TWIN}\n") and "LM-UL-001" in out
    status, out, err = show(capsys, config, "cc91f2")  # both start so: which one is never guessed
    assert status == 2 and out == ""
    [line] = err.splitlines()
    assert f"cc91f2 starts 2 alert ids ({BULK}, {TWIN}); give more of the id" in line
    assert f"lifemon database {name}" in line
    status, out, err = show(capsys, config, "ffffff00")
    assert status == 2 and out == "" and "no alert id starts with ffffff00" in err
    # fewer than 6 characters, or the list's filters beside an id: usage errors, nothing read
    with pytest.raises(SystemExit) as caught:
        main(["alerts", "show", "cc91f", "--config", config])
    assert caught.value.code == 2 and "first 6 characters or more" in capsys.readouterr().err
    assert main(["alerts", "--severity", "high", "--config", config, "show", BULK]) == 2
    assert "not the list's filters (--severity)" in capsys.readouterr().err
    # after the id too: the same line, not argparse's usage of the whole program (a new user's)
    for action, extra in (("show", []), ("ack", []), ("resolve", ["--as", "resolved"])):
        assert (
            main(["alerts", action, BULK, *extra, "--config", config, "--severity", "high", "--limit", "3"])
            == 2
        )
        [line] = capsys.readouterr().err.splitlines()
        assert "not the list's filters (--severity, --limit)" in line, action


def test_show_and_resolve_take_an_id_in_upper_case(ch, shown, capsys, monkeypatch, root_logging) -> None:
    """Ids are lower-case hex; one pasted in upper case (a ticket system, a spreadsheet) said "no
    alert id starts with"."""
    monkeypatch.setattr("streams.clickhouse.connect", lambda dsn: ch)
    name, config = shown
    assert resolve_alert_id(ch, name, BULK.upper()) == BULK
    assert resolve_alert_id(ch, name, TWIN[:8].upper()) == TWIN
    status, out, _ = show(capsys, config, BULK[:12].upper())
    assert status == 0 and out.startswith(f"alert / 告警 {BULK}\n")


def test_options_before_show_still_count_and_the_list_keeps_its_flags(shown) -> None:
    from streams.cli import build_parser, cmd_alert_show

    _, config = shown
    args = build_parser().parse_args(["alerts", "--config", config, "show", BULK[:6]])
    assert args.func is cmd_alert_show and args.config == config and args.alert_id == BULK[:6]
    args = build_parser().parse_args(["alerts", "--status", "active", "--config", config])
    assert args.func.__name__ == "cmd_alerts" and args.status == "active" and args.config == config


def test_actor_matches_whatever_its_case_and_rule_and_subject_filter(ch, shown) -> None:
    """`--actor e000003` silently matched nothing: the ids are E000003."""
    name, _ = shown
    ids = lambda **kw: [r["alert_id"] for r in query_alerts(ch, name, **kw).rows]  # noqa: E731
    assert ids(actor="e000003") == ids(actor="E000003") == [BULK]
    assert ids(actor="E2") == [TWIN]
    assert ids(rule="lm-ul-001") == ids(rule="LM-UL-001") == [TWIN]
    # the detector's id, as `lifemon detectors` lists it, finds the rules raised under it: a new
    # user's `--rule LM-SDK-001` found none of its LM-SDK-001.c3_or_auth_helper alerts
    sdk = "5" * 32
    ClickHouseTableSink(ch, f"{name}.alerts", ALERT_COLUMNS, alert_row, "alerts").write(
        [alert(sdk, "sdk_overcollection", "high", "x", 5, rule_id="LM-SDK-001.c3_or_auth_helper")]
    )
    assert ids(rule="lm-ul") == [TWIN] and ids(rule="LM-SDK-001") == [sdk] and ids(rule="LM-U") == []
    assert ids(rule="LM-SDK-001.c3_or_auth_helper") == [sdk] and ids(rule="LM-SDK-00") == []
    # the rule's ORs stay inside their filter: the reviewer's `--rule LM-UL --actor nobody` listed it
    assert ids(rule="LM-UL", actor="nobody") == [] and ids(rule="LM-UL", detector="bulk_query") == []
    assert ids(subject="p_bbb") == [BULK] and ids(subject="p_zzz") == []
    assert ids(subject="p_") == []  # a whole pseudonym, not a part of one


def test_the_cli_list_filters_by_rule_subject_and_actor_in_any_case(
    ch, shown, capsys, monkeypatch, root_logging
) -> None:
    monkeypatch.setattr("streams.clickhouse.connect", lambda dsn: ch)
    _, config = shown
    for argv in (
        ["--actor", "e000003"],
        ["--rule", "LM-BQ-001"],
        ["--subject", "p_aaa"],
        ["--subject", " P_AAA"],
    ):
        assert main(["alerts", "--config", config, *argv]) == 0
        out = capsys.readouterr().out.splitlines()
        assert out[0].endswith(f"[{BULK[:12]}]") and out[2] == "1 alert", argv
        # a subject's list may be incomplete, and says where every customer is (probe_v3 M3)
        caveat = [line for line in out[3:] if line.startswith("an alert keeps a sample")]
        assert len(out) == 3 + len(caveat) and bool(caveat) == ("--subject" in argv), argv
    # a customer's own id can match no alert: said, with how to get its pseudonym, and never
    # repeated (a probe's log line, which an operator ships, held the id)
    assert main(["alerts", "--config", config, "--subject", "C0000302"]) == 2
    err = capsys.readouterr().err
    assert "`lifemon pseudonym <customer id>` gives a customer's" in err and "C0000302" not in err
    # one no sample holds: said that alerts keep samples, and where every customer is (probe_v3 M3)
    assert main(["alerts", "--config", config, "--subject", "p_zzz"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("no alerts match") and "`lifemon incidents --subject p_zzz` searches" in out
    # a rule no detector of the policy has: said, and listed all the same (an old rule's alerts
    # stay findable); a part of a real one (two detectors' LM-RO) is no typo
    assert main(["alerts", "--config", config, "--rule", "LM-XX"]) == 0
    captured = capsys.readouterr()
    assert "no rule of the policy is LM-XX or under it" in captured.err and "no alerts match" in captured.out
    for known in ("lm-ro", "LM-TP-006", "LM-SDK-001.c3_or_auth_helper", "LM-BQ-001", " LM-BQ-001 "):
        main(["alerts", "--config", config, "--rule", known])
        assert "no rule of the policy" not in capsys.readouterr().err, known
    # a named rule misspelt is said too (a review's `LM-RO-001.retention_expird` passed as known); one
    # with blanks around it lists what it names
    main(["alerts", "--config", config, "--rule", "LM-RO-001.retention_expird"])
    assert "no rule of the policy is LM-RO-001.retention_expird" in capsys.readouterr().err
    assert main(["alerts", "--config", config, "--rule", " LM-BQ-001 "]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "1 alert"


def test_an_alert_stored_before_the_english_clauses_reads_before_and_after_the_upgrade(
    ch, capsys, monkeypatch, root_logging, tmp_path
) -> None:
    """An alert a lifemon stored before it kept the clauses in English (fix_regulation #1): `alerts
    show` reads it from a table no `lifemon run` upgraded yet, and after the start that adds the
    column, the row as it was, its clauses as quoted and a line saying the English was not kept."""
    monkeypatch.setattr("streams.clickhouse.connect", lambda dsn: ch)
    name = f"aq_{uuid.uuid4().hex[:8]}"
    apply_ddl(ch, name)
    ch.command(f"ALTER TABLE {name}.alerts DROP COLUMN regulation_en")  # the table as it was
    old = [c for c in ALERT_COLUMNS if c != "regulation_en"]
    row = dict(zip(ALERT_COLUMNS, alert_row(alert(BULK, "bulk_query", "high", "E000003", 10)), strict=True))
    row["regulation"] = ["解释第五条第一款(四): 交易信息等500条"]
    ch.insert("alerts", [[row[c] for c in old]], database=name, column_names=old)
    config = tmp_path / "lifemon.yaml"
    config.write_text(f"clickhouse: {{database: {name}, dsn: 'chdb://{os.environ['LIFEMON_TEST_CHDB']}'}}\n")
    for upgraded in (False, True):
        if upgraded:
            apply_ddl(ch, name)  # what the next `lifemon run` does: the column added, the row kept
            assert ch.query(f"SELECT regulation, regulation_en FROM {name}.alerts").result_rows == [
                (row["regulation"], [])
            ]
        status, out, _ = show(capsys, str(config), BULK)
        assert status == 0, out
        own = out.split("法规依据", 1)[1].split("  basis", 1)[0]
        assert [line.strip() for line in own.splitlines()] == [
            "解释第五条第一款(四): 交易信息等500条",
            "(stored before lifemon kept the clauses in English / 存储时未含英文译文)",
        ], upgraded
