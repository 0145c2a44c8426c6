"""The lifecycle dashboard over a real run: a generated bank day through a Tansu broker, the Monitor
and chDB, then each panel's own SQL (dashboards/lifemon-lifecycle.json, Grafana's macros expanded as
the plugin expands them) read back and compared with what the generator made: the records it kept
past their deadline, the deletion requests it answered or left open, the contracts of the policy and
the transfers it sent. Then a replay (a new consumer group, no state, the same topics and database)
must leave every panel as it was: nothing counted twice."""

from __future__ import annotations

import gc
import math
import re
import statistics
import uuid
from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from test_deploy import QUERY_PANELS, expand_macros
from test_pipeline import make_config, monitor

from policy.contracts import RecipientBook
from schemas.models import REFERENCE_STREAMS, LifecycleStage, RecipientType, TransferEvent
from streams.clickhouse import apply_ddl
from streams.produce import produce
from streams.pseudonym import Pseudonymizer
from streams.report import Period, gather, lifecycle, render
from streams.sinks.clickhouse import STATS_COLUMNS
from streams.transfer_ledger import LEDGER_COLUMNS, provided
from streams.workload import Workload, generate

pytestmark = pytest.mark.integration
DAY = 86_400_000
PANELS = (
    "Retention backlog",
    "Overdue records",
    "Deletion requests",
    "contracts by expiry",
    "provided to others",
)
UNNAMED = ("unnamed_at_least", "unnamed_at_most", "unnamed_transfers")
EXECUTED = {LifecycleStage.delete, LifecycleStage.anonymize, LifecycleStage.destroy}
AGE_LIMITS, AGE_BUCKETS = (30, 90, 365), ("< 30 d", "30-90 d", "90 d-1 y", ">= 1 y")  # days overdue


def events(day: Workload, stream: str) -> list[Any]:
    return [r for s, _, r in day.records if s == stream]


def legacy_transfers(day: Workload) -> list[tuple[str, str, TransferEvent]]:
    """Two de-identified shares to the former co-branding partner, whose contract ended the day before
    the workload's day (recipients.yaml: valid_to 2025-12-31): sent after its expiry."""
    start = min(r.ts for r in events(day, "transfer"))
    return [
        (
            "transfer",
            "tp_legacy_partner",
            TransferEvent(
                event_id=f"legacy-{i}", ts=start + i * 3_600_000, transfer_id=f"TL{i}", sender_system="crm",
                recipient_id="tp_legacy_partner", recipient_type=RecipientType.third_party,
                categories=["customer_name"], record_count=20, subject_count=20, encrypted=True,
                deidentified=True, public_network=True,
            ),
        )
        for i in (1, 2)
    ]  # fmt: skip


def read_panels(ch: Any, db: str, span: tuple[datetime, datetime]) -> dict[str, list[dict[str, Any]]]:
    out = {}
    for part in PANELS:
        ((_, panel),) = [(pid, p) for pid, p in QUERY_PANELS if part in p["title"]]
        sql = expand_macros(panel["targets"][0]["rawSql"], *span).replace("lifemon.", f"{db}.")
        result = ch.query(sql)
        out[part] = [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]
    return out


@pytest.fixture(scope="module")
def day(policy: Any) -> Workload:
    return generate(4000, seed=3, policy=policy)


@pytest.fixture(scope="module")
def span(day: Workload) -> tuple[datetime, datetime]:
    """The dashboard's range: the workload's day, to the second after its last event."""
    stamps = [r.ts for s, _, r in day.records if s not in REFERENCE_STREAMS]
    start = datetime.fromtimestamp(min(r.ts for r in events(day, "access")) // 1000, UTC)
    return start, datetime.fromtimestamp(math.ceil(max(stamps) / 1000), UTC)


@pytest.fixture(scope="module")
def dashboard(day, span, broker, ch, policy, catalog) -> Iterator[tuple[dict, dict, str]]:
    """The panels after the live run and after a replay of the same topics into the same database,
    and that database."""
    tag = uuid.uuid4().hex[:8]
    names = {"tag": tag, "group": f"g-{tag}", "database": f"t_{tag}"}
    config = make_config(names, broker, "chdb://unused")
    live = monitor(config, ch, policy, catalog)
    produce(broker, config, [*day.records, *legacy_transfers(day)])
    live.run(idle_exit_s=1.5, max_seconds=120)
    first = read_panels(ch, names["database"], span)
    replay = monitor(
        make_config({**names, "group": f"{names['group']}-replay"}, broker, "chdb://unused"),
        ch,
        policy,
        catalog,
    )
    replay.run(idle_exit_s=1.5, max_seconds=120)
    yield first, read_panels(ch, names["database"], span), names["database"]
    ch.command(f"DROP DATABASE IF EXISTS {names['database']}")
    del live, replay
    gc.collect()  # the monitors' Kafka clients go now, not after the session's broker


def test_retention_backlog_is_the_records_the_generator_kept_past_their_deadline(
    day, span, dashboard, catalog, policy, ch
) -> None:
    """Aged from each record's deadline: the end (24:00, Beijing) of the last calendar day of its
    period (`Policy.retention_end`, as a deletion request's 15 days), the same instant for the
    generator's truth and the detector's alerts, so no record moves bucket by a few hours."""
    systems = {r.record_id: r for r in events(day, "lifecycle") if r.stage is LifecycleStage.collect}
    as_of = int(span[1].timestamp() * 1000)
    expected: dict[str, Counter] = defaultdict(Counter)
    kept = [t for t in day.truth if t["rule"] == "retention_expired"]
    rules = policy.retention.rules.values()
    for t in kept:
        assert any(t["ts_end"] == policy.retention_end(t["ts_start"], rule) for rule in rules), t
    # every overrun alert (open or closed) is a kept record's, with the generator's deadline (by
    # system and clock start: the summary, holding the record id, is emptied by the pseudonym TTL)
    alerted = ch.query(
        "SELECT actor_id, toUnixTimestamp64Milli(window_start), toUnixTimestamp64Milli(window_end) "
        f"FROM {dashboard[2]}.alerts FINAL "
        "WHERE detector = 'retention_overrun' AND endsWith(rule_id, '.retention_expired')"
    ).result_rows
    assert sorted(alerted) == sorted((systems[t["key"]].system, t["ts_start"], t["ts_end"]) for t in kept)
    for t in kept:  # key: the record; ts_end: its deadline
        rec = systems[t["key"]]
        overdue = (as_of - t["ts_end"]) // DAY
        bucket = AGE_BUCKETS[bisect_right(AGE_LIMITS, overdue)]
        expected[f"{rec.system} · {catalog.profile(rec.categories)[0].value}"][bucket] += 1
    got = {
        r["system_class"]: Counter({k: r[k] for k in AGE_BUCKETS if r[k]})
        for r in dashboard[0]["Retention backlog"]
    }
    assert got == expected and sum(c.total() for c in got.values()) == len(kept) >= 3


def test_deletion_requests_against_their_15_day_deadline(day, span, dashboard, policy, ch) -> None:
    requested: dict[str, int] = {}
    done: dict[str, int] = {}
    for r in events(day, "lifecycle"):
        if r.stage is LifecycleStage.deletion_requested:
            requested[r.record_id] = min(requested.get(r.record_id, r.ts), r.ts)
        elif r.stage in EXECUTED:
            done[r.record_id] = min(done.get(r.record_id, r.ts), r.ts)
    start, as_of = (int(t.timestamp() * 1000) for t in span)
    sla = policy.retention.deletion_request_sla_days * DAY
    still_open = [rid for rid, ts in requested.items() if ts <= as_of and done.get(rid, as_of + 1) > as_of]
    executed = sorted(
        (done[rid] - ts) / DAY for rid, ts in requested.items() if start <= done.get(rid, 0) <= as_of
    )
    overdue = [t for t in day.truth if t["rule"] == "deletion_request_overdue"]
    (got,) = dashboard[0]["Deletion requests"]
    assert got == {
        "open_requests": len(still_open),
        "open_past_15_days": len(overdue),  # every injected overdue request, no other
        "executed": len(executed),
        "executed_late": 0,  # the generator executes on day 14 at the latest
        "median_days_to_execute": round(statistics.median(executed), 1),  # an even count's middle two
        "max_days_to_execute": round(executed[-1], 1),
        "refused": 0,  # the generated day refuses none
        "refused_late": 0,
    }
    assert len(still_open) == len(overdue) >= 1 and len(executed) >= 5 and executed[-1] < sla / DAY
    # a range in which none was executed: no figure for their days, not NaN and 0 (a probe's December)
    first = min(done.values())
    (before,) = read_panels(ch, dashboard[2], (span[0], datetime.fromtimestamp((first - 1) // 1000, UTC)))[
        "Deletion requests"
    ]
    assert before["executed"] == 0
    assert (before["median_days_to_execute"], before["max_days_to_execute"]) == (None, None)


def test_contracts_by_expiry_with_the_transfers_sent_after_it(day, span, dashboard, policy) -> None:
    book = RecipientBook(policy.recipients)
    start, as_of = (int(t.timestamp() * 1000) for t in span)
    sent = Counter(
        r.recipient_id
        for _, _, r in [*[(0, 0, e) for e in events(day, "transfer")], *legacy_transfers(day)]
        if start <= r.ts <= as_of
    )
    rows = {r["recipient"]: r for r in dashboard[0]["contracts by expiry"]}
    # every recipient under contract; the bank's own internal systems have none
    assert set(rows) == {rid for rid in book.recipients if policy.recipients.recipients[rid].contracts}
    for rid, terms in book.terms.items():
        if not terms:
            continue
        last = max(terms, key=lambda t: t.end_ms)
        row = rows[rid]
        assert (row["contract"], row["valid_to"], row["transfers"]) == (
            last.contract.id,
            last.contract.valid_to,
            sent[rid],
        )
        assert (row["horizon"] == "expired") is (last.end_ms <= as_of)
        assert row["days_left"] == (last.end_ms - as_of) // DAY
    legacy = rows["tp_legacy_partner"]
    assert (legacy["horizon"], legacy["transfers_after_expiry"]) == ("expired", 2)
    assert sum(r["transfers_after_expiry"] for r in rows.values()) == 2
    assert (
        rows["tp_insurance_partner"]["horizon"] == ">= 180 d"
    )  # valid to 2026-06-30: 180 days and some hours


def test_the_ledger_says_what_went_to_whom_under_which_basis(day, span, dashboard, policy, catalog) -> None:
    """probe_v3 H1: an examiner asks how many customers' information went to each recipient, under
    which legal basis, of which class (PIPL art. 55-56). Each line against the generator's transfers:
    the customers they named (distinct), those they only counted, records and transfers; the bank's
    own systems left out, an undeclared recipient never by its free-text id."""
    start, end = (int(t.timestamp() * 1000) for t in span)
    book = policy.recipients
    expected: dict[tuple, dict[str, Any]] = {}
    sent = [*events(day, "transfer"), *(e for _, _, e in legacy_transfers(day))]
    for ev in (e for e in sent if start <= e.ts < end):
        if book.kind_of(ev.recipient_id, ev.recipient_type) is RecipientType.internal:
            continue
        rid = ev.recipient_id if ev.recipient_id in book.recipients else "undeclared_recipient"
        line = expected.setdefault(
            (rid, ev.legal_basis.value, catalog.profile(ev.categories)[0].value),
            {
                "customers": set(),
                "unnamed_at_least": 0,
                "unnamed_at_most": 0,
                "unnamed_transfers": 0,
                "records": 0,
                "transfers": 0,
            },
        )
        line["customers"] |= set(ev.subject_ids)
        unnamed = 0 if ev.subject_ids else ev.subject_count
        line["unnamed_at_least"] = max(line["unnamed_at_least"], unnamed)
        line["unnamed_at_most"] += unnamed
        line["unnamed_transfers"] += unnamed > 0
        line["records"] += ev.record_count
        line["transfers"] += 1
    # their sum stops at the bank's customers, as the customers stream names them, unless one
    # transfer alone counted more
    bank = len({r.customer_id for s, _, r in day.records if s == "customers"})
    for line in expected.values():
        line["unnamed_sum"] = line["unnamed_at_most"]
        if line["unnamed_at_least"] <= bank:
            line["unnamed_at_most"] = min(line["unnamed_sum"], bank)
    rows = dashboard[0]["provided to others"]
    got = {(r["recipient_id"], r["legal_basis"], r["jr_class"]): r for r in rows}
    assert {k: {**v, "customers": len(v["customers"])} for k, v in expected.items()} == {
        k: {c: r[c] for c in ("customers", *UNNAMED, "unnamed_sum", "records", "transfers")}
        for k, r in got.items()
    }
    directions = {r["recipient_id"]: r["direction"] for r in rows}
    assert {rid: directions[rid] for rid in ("os_parent_group_hk", "proc_call_center", "reg_amlmac")} == {
        "os_parent_group_hk": "cross_border",
        "proc_call_center": "processor",
        "reg_amlmac": "regulator",
    }
    assert directions["undeclared_recipient"] == "third_party" and "internal" not in directions.values()
    assert {r["recipient"] for r in rows if r["recipient_id"] == "reg_amlmac"} == {
        "中国反洗钱监测分析中心 / China AML Monitoring and Analysis Center"
    }
    assert sum(r["customers"] for r in rows) > 0 and sum(r["unnamed_sum"] for r in rows) > 10_000


def test_the_ledger_keeps_no_customer_id_and_no_pseudonym(day, dashboard, ch) -> None:
    """Once merged, the table holds only the uniqExact state of the pseudonyms (`subjects` expires
    at the first merge), never a customer id."""
    named = {i for ev in events(day, "transfer") for i in ev.subject_ids}
    pseudonymize = Pseudonymizer.from_env(allow_ephemeral=False)
    ch.command(f"OPTIMIZE TABLE {dashboard[2]}.transfer_ledger FINAL")  # as the first merge does
    sql = f"SELECT * EXCEPT customers, hex(customers) FROM {dashboard[2]}.transfer_ledger"
    stored = repr(ch.query(sql).result_rows)
    spelled = {i for raw in named for i in (raw, pseudonymize(raw))}
    assert named and not [i for i in spelled if i in stored or i.encode().hex().upper() in stored]


def test_the_report_lists_what_the_ledger_panel_shows(day, span, dashboard, ch) -> None:
    """The report's section "对外提供个人金融信息" and the panel, over the same half-open range."""
    _, _, db = dashboard
    data = gather(ch, db, Period(since=span[0], until=span[1]))
    assert [vars(p) for p in data["provided"].lines] == dashboard[0]["provided to others"]
    html = render(data)
    assert "Personal information provided to others / 对外提供个人金融信息" in html
    top = data["provided"].lines[0]
    assert f"<td class=n>{top.records:,}</td><td class=n>{top.transfers:,}</td></tr>" in html
    # a range ending at a transfer's instant leaves it to the next range, in both
    last = max(e.ts for e in events(day, "transfer"))
    cut = (span[0], datetime.fromtimestamp(last / 1000, UTC))
    before = provided(ch, db, *Period(since=cut[0], until=cut[1]).where("ts")).lines
    assert [vars(p) for p in before] == read_panels(ch, db, cut)["provided to others"]
    assert sum(p.transfers for p in before) == sum(p.transfers for p in data["provided"].lines) - 1


def test_the_report_never_adds_up_unnamed_customers_as_if_distinct_nor_holds_a_claimed_basis(
    day, span, dashboard, ch
) -> None:
    """A new user's report read 865 046 customers sent to the AML centre in a day, of a bank of
    10 000: the counts of transfers naming none, added up. Several such transfers give the range
    the distinct number lies in, labelled so; an undeclared broker's `contract` is the sender's claim."""
    _, _, db = dashboard
    data = gather(ch, db, Period(since=span[0], until=span[1]))
    html = render(data)
    aml = next(p for p in data["provided"].lines if p.recipient_id == "reg_amlmac")
    assert aml.unnamed_transfers > 1 and aml.unnamed_at_least < aml.unnamed_at_most
    # the bank's customers, as the live run's customers stream named them, bound the range's top
    bank = data["provided"].customers
    assert bank == len({r.customer_id for s, _, r in day.records if s == "customers"}) > 0
    cell = re.search(
        rf"<td class=n>{aml.unnamed_at_least:,} – {aml.unnamed_at_most:,}<br><small>{aml.unnamed_transfers:,} "
        r"transfers: at least the largest / [^;]*; ([^/]*)/",
        html,
    )
    # this generated bank's AML counts are its whole base each, more than its customers stream names
    assert cell and aml.unnamed_at_least > bank, (bank, aml)
    assert cell[1] == (
        f"the largest alone is more than the bank's {bank:,} customers (its customers stream): a sender's "
        "count to check "
    )
    assert "customers not named, not de-duplicated / 未列名客户（无法去重）" in html
    assert f"<td class=n>{aml.unnamed_at_most:,}</td><td class=n>{aml.records:,}</td>" not in html
    (broker,) = [p for p in data["provided"].lines if p.recipient_id == "undeclared_recipient"]
    assert (
        f"<td>{broker.legal_basis}<br><small>claimed by the sender, recipient not approved / 发送方声称，接收方未经批准"
        in html
    )
    declared = next(p for p in data["provided"].lines if p.recipient_id == "proc_call_center")
    assert f"<td>{declared.legal_basis}</td>" in html


def test_unnamed_customers_are_at_most_the_banks_or_said_unbounded() -> None:
    """A new user's report read "4,986 – 865,046" customers for a bank of 10,000: the top of the range
    is at most the customers the bank's customers stream names; where lifemon read none, it says so.
    The figures are the query's (the test below); the page says which bound holds."""
    from streams.transfer_ledger import Ledger, Provided
    from streams.transfer_ledger import render as render_provided

    # 348 transfers to the AML centre naming none, 865 046 customers added up, as PROVIDED_SQL gives
    # them for a bank of 10 000: their sum stopped at the bank's
    aml = Provided("reg_amlmac", "AML", "regulator", "legal_obligation", "C2", 0, 4_986, 10_000, 348, 865_046, 348, False, 865_046)  # fmt: skip
    unbounded = replace(aml, unnamed_at_most=865_046)  # for no bank known, one of a million, or 1 000
    every = replace(aml, unnamed_at_least=10_000)
    page = lambda lines, bank: render_provided(Ledger(lines, 0, bank), None, None, UTC)  # noqa: E731
    assert "<td class=n>4,986 – 10,000<br><small>348 transfers: at least the largest" in page([aml], 10_000)
    assert "at most the bank's 10,000 customers (its customers stream), not their sum 865,046" in page(
        [aml], 10_000
    )
    assert "<td class=n>10,000<br><small>" in page([every], 10_000)  # one figure, not "10,000 – 10,000"
    unknown = page([unbounded], 0)
    assert "<td class=n>4,986 – 865,046<br>" in unknown
    assert "lifemon has read none, so it does not know how many customers the bank has" in unknown
    assert "at most their sum / 至多为各次之和</small>" in page([unbounded], 1_000_000)
    below = page([unbounded], 1_000)
    assert "<td class=n>4,986 – 865,046<br>" in below and "a sender's count to check" in below


def test_the_panels_unnamed_customers_stop_at_the_banks_as_the_reports_do(ch) -> None:
    """The panel added up the counts of the transfers naming none (865 046 customers to the AML centre
    in a day, of a bank of 10 000) where the report stopped at the bank's customers. Both read
    PROVIDED_SQL now: the range's top is at most the most customers any checkpoint's customers stream
    named (pipeline_stats, any instance), unless one transfer alone counted more (a sender's count to
    check, left as sent); with no customers stream read, it is their sum."""
    db = f"t_{uuid.uuid4().hex[:8]}"
    apply_ddl(ch, db)
    now = datetime.now(UTC).replace(microsecond=0)
    span = (now - timedelta(hours=1), now + timedelta(hours=1))
    counts = {"reg_a": (400, 300, 500), "reg_b": (1_500, 100), "reg_c": (100, 200)}
    rows = [
        (f"{rid}-{i}", now, rid, rid, "regulator", "legal_obligation", "C2", n, n, 0, [])
        for rid, sent in counts.items()
        for i, n in enumerate(sent)
    ]
    ch.insert("transfer_ledger", rows, database=db, column_names=list(LEDGER_COLUMNS))

    def bounds() -> dict[str, tuple[int, int, int]]:
        (panel,) = [p for _, p in QUERY_PANELS if "provided to others" in p["title"]]
        sql = expand_macros(panel["targets"][0]["rawSql"], *span).replace("lifemon.", f"{db}.")
        got = ch.query(sql)
        lines = [dict(zip(got.column_names, row, strict=True)) for row in got.result_rows]
        report = provided(ch, db, *Period(since=span[0], until=span[1]).where("ts")).lines
        assert [vars(p) for p in report] == lines  # the report's figures, whatever the bank
        return {
            r["recipient_id"]: (r["unnamed_at_least"], r["unnamed_at_most"], r["unnamed_sum"]) for r in lines
        }

    try:
        unbounded = {"reg_a": (500, 1_200, 1_200), "reg_b": (1_500, 1_600, 1_600), "reg_c": (200, 300, 300)}
        assert bounds() == unbounded  # no customers stream read: their sum
        stats = [(now, i, "customers", 0, 0, 0, 0, 0.0, c) for i, c in (("i1", 900), ("i2", 1_000))]
        ch.insert("pipeline_stats", stats, database=db, column_names=STATS_COLUMNS)
        assert bounds() == {
            "reg_a": (500, 1_000, 1_200),
            "reg_b": (1_500, 1_600, 1_600),
            "reg_c": (200, 300, 300),
        }
    finally:
        ch.command(f"DROP DATABASE IF EXISTS {db}")


def test_a_replay_counts_nothing_twice(dashboard) -> None:
    live, replayed, _ = dashboard
    assert replayed == live and all(live.values())


def test_the_report_says_what_the_panels_show(day, span, dashboard, ch) -> None:
    panels, _, db = dashboard
    fig = lifecycle(ch, db, Period(since=span[0]))  # the panels' range: deletions executed in it
    last = max(r.ts for s, _, r in day.records if s not in REFERENCE_STREAMS)
    (deletions,) = panels["Deletion requests"]
    contracts = Counter(r["horizon"] for r in panels["contracts by expiry"])
    assert fig == {
        "as_of": datetime.fromtimestamp((last // 60_000 + 1) * 60, UTC),  # the minute after the last event's
        "backlog": sum(sum(r[k] for k in AGE_BUCKETS) for r in panels["Retention backlog"]),
        "overdue_since": panels["Overdue records"][0]["overdue_since_range_start"],
        "oldest_days": fig["oldest_days"],
        "requests": deletions["open_requests"],
        "overdue": deletions["open_past_15_days"],
        "executed": deletions["executed"],
        "executed_late": deletions["executed_late"],
        "longest_days": fig["longest_days"],
        "ended": contracts["expired"],
        "ending": contracts["< 30 d"] + contracts["30-90 d"],
    }
    assert round(fig["longest_days"], 1) == deletions["max_days_to_execute"]
    deadlines = [t["ts_end"] for t in day.truth if t["rule"] == "retention_expired"]
    assert fig["oldest_days"] == (int(fig["as_of"].timestamp() * 1000) - min(deadlines)) // DAY
    html = render(gather(ch, db))
    assert (
        f"<td>retention backlog at the period&#x27;s end / 期末超期留存积压</td><td class=n>{fig['backlog']}</td>"
        in html
    )


def test_the_report_of_an_earlier_period_says_what_the_panels_show_then(day, span, dashboard, ch) -> None:
    """`lifemon report --month` of a month before the latest: the requests made by its end and open
    then, the records due by then (a probe's October counted December's requests, and the records
    stored by then rather than due)."""
    _, _, db = dashboard
    deadlines = sorted({t["ts_end"] for t in day.truth if t["rule"] == "retention_expired"})
    requested = sorted(r.ts for r in events(day, "lifecycle") if r.stage is LifecycleStage.deletion_requested)
    assert len(deadlines) > 1 and len(requested) > 1
    cuts = {deadlines[0] + DAY, deadlines[-1] - 1, requested[0] + 60_000, requested[len(requested) // 2]}
    seen = set()
    for cut in sorted(cuts):
        fig = lifecycle(ch, db, Period(until=datetime.fromtimestamp(cut / 1000, UTC)))
        assert fig is not None
        panels = read_panels(ch, db, (span[0], fig["as_of"]))
        (deletions,) = panels["Deletion requests"]
        figures = (fig["backlog"], fig["requests"], fig["overdue"])
        assert figures == (
            sum(sum(r[k] for k in AGE_BUCKETS) for r in panels["Retention backlog"]),
            deletions["open_requests"],
            deletions["open_past_15_days"],
        ), datetime.fromtimestamp(cut / 1000, UTC)
        seen.add(figures)
    assert len(seen) > 1  # the cuts tell the periods apart


def test_the_report_says_a_deletion_executed_late_as_the_panel_does(ch) -> None:
    """probe_v3 M2: three requests of December 2025, executed after 19 days, after 5 days, and never.
    The panel said 2 executed, 1 late, the longest 19 days; `lifemon report --month 2025-12` said only
    "1 open, 1 past 15 days", and the late one was nowhere in it (seed 004 §五.(四): 15日内答复)."""
    db = f"lc_{uuid.uuid4().hex[:8]}"
    apply_ddl(ch, db)
    t0 = datetime(2025, 12, 1, 2, tzinfo=UTC)
    rows = []
    for rid, done_after in (("R-late", 19), ("R-ok", 5), ("R-open", None)):
        asked = t0.timestamp() * 1000
        rows.append((rid, f"{rid}-q", "deletion_requested", asked, asked + 15.5 * DAY, "crm"))
        if done_after is not None:
            rows.append((rid, f"{rid}-d", "delete", asked + done_after * DAY, 0, "crm"))
    ch.insert(
        f"{db}.deletion_events",
        [[r[0], r[1], r[2], datetime.fromtimestamp(r[3] / 1000, UTC), datetime.fromtimestamp(r[4] / 1000, UTC), r[5]] for r in rows],
        column_names=["record_id", "event_id", "stage", "ts", "due", "system"],
    )  # fmt: skip
    ch.insert(
        f"{db}.event_rollups",
        [["lifecycle", datetime(2025, 12, 30, tzinfo=UTC), 1]],
        column_names=["stream", "minute", "events"],
    )
    month = Period(since=datetime(2025, 11, 30, 16, tzinfo=UTC), until=datetime(2025, 12, 31, 16, tzinfo=UTC))
    fig = lifecycle(ch, db, month)
    assert fig is not None
    (panel,) = read_panels(ch, db, (month.since, fig["as_of"]))["Deletion requests"]  # type: ignore[arg-type]
    assert (
        (fig["requests"], fig["overdue"], fig["executed"], fig["executed_late"])
        == (
            panel["open_requests"],
            panel["open_past_15_days"],
            panel["executed"],
            panel["executed_late"],
        )
        == (1, 1, 2, 1)
    )
    assert round(fig["longest_days"], 1) == panel["max_days_to_execute"] == 19.0
    html = render(gather(ch, db, month))
    assert "期内执行的删除请求</td><td class=n>2</td><td>1 after their 15 days, the longest 19.0 days" in html
    assert "期末超期留存积压</td><td class=n>0</td><td>none" in html


def test_a_record_overdue_across_a_month_end_is_in_each_backlog_and_new_in_one_month(ch) -> None:
    """probe_v3 M7: a record overdue on 20 January and still kept was in January's backlog and in
    February's, and nothing said it was one record. The backlog is a state at the period's end (the
    record is in both), named so; "overdue since the period began" counts it in January alone, so
    the months add up. A deadline passed at 23:30 on 31 January, after January's last event, is
    January's (its alerts table lists it there) and in January's backlog, judged at the month's
    end now that February's events show the monitor's clock passed it. The report and the panels,
    set to each month, agree."""
    from test_deploy import _overrun

    from streams.report import month_period
    from streams.sinks.clickhouse import ALERT_COLUMNS

    db = f"lc_{uuid.uuid4().hex[:8]}"
    apply_ddl(ch, db)
    beijing = ZoneInfo("Asia/Shanghai")

    def at(*when: int) -> datetime:
        return datetime(*when, tzinfo=beijing).astimezone(UTC)

    ch.insert(
        f"{db}.alerts",
        [
            _overrun("jan", 1, "open", at(2026, 1, 20)),
            _overrun("jan-end", 1, "open", at(2026, 1, 31, 23, 30)),
            _overrun("jan-deleted", 2, "closed", at(2026, 1, 25)),  # deleted late: out of the backlog
            _overrun("feb", 1, "open", at(2026, 2, 10)),
        ],
        column_names=list(ALERT_COLUMNS),
    )
    ch.insert(
        f"{db}.event_rollups",
        [["access", at(2026, 1, 31, 20), 1], ["access", at(2026, 2, 27), 1]],
        column_names=["stream", "minute", "events"],
    )
    figures = {}
    for month in ("2026-01", "2026-02"):
        period = month_period(month, "Asia/Shanghai")
        fig = lifecycle(ch, db, period)
        assert fig is not None
        (panel,) = read_panels(ch, db, (period.since, fig["as_of"]))["Overdue records"]  # type: ignore[arg-type]
        backlog = read_panels(ch, db, (period.since, fig["as_of"]))["Retention backlog"]  # type: ignore[arg-type]
        assert (fig["backlog"], fig["overdue_since"], fig["oldest_days"]) == (
            panel["backlog_at_range_end"],
            panel["overdue_since_range_start"],
            panel["oldest_days_overdue"],
        )
        assert fig["backlog"] == sum(sum(r[k] for k in AGE_BUCKETS) for r in backlog)
        figures[month] = (fig["backlog"], fig["overdue_since"], fig["as_of"])
        html = render(gather(ch, db, period))
        assert f"期末超期留存积压</td><td class=n>{fig['backlog']}</td>" in html
        assert f"其中本期新增超期</td><td class=n>{fig['overdue_since']}</td>" in html
    assert figures["2026-01"] == (2, 2, month_period("2026-02", "Asia/Shanghai").since)  # at January's end
    assert figures["2026-02"][:2] == (3, 1)  # jan and jan-end carried over, feb new
    assert figures["2026-01"][1] + figures["2026-02"][1] == 3  # each kept record once
