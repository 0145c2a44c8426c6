"""lifemon keeps the personal information of its own outputs only as long as policy/storage.yaml
says: the ClickHouse columns that hold pseudonyms expire (the alert row stays as the audit trail),
and the topics holding pseudonyms or rejected records' original bytes have a retention
(docs/security.md#how-long-lifemon-keeps-personal-information)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource
from test_pipeline import make_config

from detectors import load_detectors
from policy.storage import DAY_MS, Storage
from streams.clickhouse import apply_ddl, pseudonym_columns
from streams.codecs import Decoder
from streams.engine import Engine
from streams.pseudonym import PSEUDONYM, Pseudonymizer
from streams.replay import replay, replay_files
from streams.runtime import ensure_topics
from streams.sinks.clickhouse import ALERT_COLUMNS, INCIDENT_COLUMNS, ROLLUP_COLUMNS, alert_row, incident_row
from streams.transfer_ledger import LEDGER_COLUMNS, TransferLedger, provided, render
from streams.workload import generate, write_files

SHORT = Storage(pseudonym_ttl_days=30, dead_letter_retention_days=3)
LONG = Storage(pseudonym_ttl_days=3650, dead_letter_retention_days=3)


@pytest.fixture
def db(ch: Any) -> Iterator[str]:
    name = f"ttl_{uuid.uuid4().hex[:8]}"
    yield name
    ch.command(f"DROP DATABASE IF EXISTS {name}")


def ttl_days(ch: Any, db: str) -> dict[str, str]:
    """column -> its TTL as ClickHouse shows it."""
    ((created,),) = ch.query(
        f"SELECT create_table_query FROM system.tables WHERE database = '{db}' AND name = 'alerts'"
    ).result_rows
    return {
        c: created.split(f"`{c}` ", 1)[1].split(",", 1)[0].split(" TTL ")[1]
        for c in pseudonym_columns()["alerts"]
    }


def test_every_column_a_real_day_fills_with_pseudonyms_expires(
    ch: Any, db: str, policy, catalog, tmp_path: Path
) -> None:
    """A generated bank day with every detector's violations, through the engine and the sinks'
    row functions into the real schema: the columns where pseudonyms turn up are exactly those the
    DDL gives the pseudonym TTL."""
    files = write_files(generate(3000, seed=5, policy=policy), tmp_path)
    engine = Engine(load_detectors(policy), catalog, Pseudonymizer(b"retention-test-key-0123456789"))
    engine.transfers = TransferLedger(policy)
    alerts, _ = replay(engine, Decoder(), replay_files(files))
    assert {a.detector for a in alerts} >= {"bulk_query", "offscope_marketing", "retention_overrun"}
    apply_ddl(ch, db, LONG)  # the generated day may lie further back than SHORT: kept till the scan
    ch.insert("alerts", [alert_row(a) for a in alerts], database=db, column_names=list(ALERT_COLUMNS))
    ch.insert("event_rollups", engine.rollup_rows(), database=db, column_names=list(ROLLUP_COLUMNS))
    incidents = engine.take_incidents()
    assert incidents  # the day's leaks: their records list the customers' pseudonyms
    ch.insert(
        "incidents", list(map(incident_row, incidents)), database=db, column_names=list(INCIDENT_COLUMNS)
    )
    ledger = engine.transfers.drain()
    ch.insert("transfer_ledger", ledger, database=db, column_names=list(LEDGER_COLUMNS))
    # its pseudonyms expire as they are written: emptied by the first merge, their state kept
    ch.command(f"OPTIMIZE TABLE {db}.transfer_ledger FINAL")
    holding = set()
    for table, column, kind in ch.query(
        f"SELECT table, name, type FROM system.columns WHERE database = '{db}'"
    ).result_rows:
        if kind.startswith("AggregateFunction"):  # a state of pseudonyms (transfer_ledger.customers)
            (n,) = ch.query(
                f"SELECT countIf(finalizeAggregation({column}) > 0) FROM {db}.{table}"
            ).result_rows[0]
            if n:
                holding.add((table, column))
        elif "String" in kind:
            (n,) = ch.query(
                f"SELECT countIf(match(toString({column}), {{p:String}})) FROM {db}.{table}",
                parameters={"p": PSEUDONYM.pattern},
            ).result_rows[0]
            if n:
                holding.add((table, column))
    declared = {(table, c) for table, columns in pseudonym_columns().items() for c in columns}
    assert holding == declared
    assert set(pseudonym_columns()) == {"alerts", "incidents", "transfer_ledger"}
    assert set(ttl_days(ch, db).values()) == {"toDateTime(kept_from) + toIntervalDay(3650)"}


def test_expired_pseudonyms_are_emptied_and_the_audit_row_stays(ch: Any, db: str) -> None:
    """The TTL counts from the alert's last event, or from when it was stored if that is later: an
    alert on a retention deadline a year past, stored today, keeps its pseudonyms (counted from its
    last_seen they were emptied at the first merge, and open alerts showed no summary)."""
    apply_ddl(ch, db, SHORT)
    now = datetime.now(UTC)

    def row(alert_id: str, last_seen: datetime, stored: datetime) -> list[Any]:
        return [alert_id, 1, "open", "offscope_marketing", "LM-OM-001", 1, "high", "营销", "Marketing",
                "1 push of campaign c1 to subject p_0123456789abcdef01234567", ["seed 004"], ["seed 004 (in English)"], "C2",
                "E1", "S0101", 1, ["p_0123456789abcdef01234567"], {"pushes": 1}, ["ev-1"], 1,
                last_seen, last_seen, last_seen, last_seen, '{"subjects_sample": ["p_0123456789abcdef01234567"]}', 1,
                stored]  # fmt: skip

    month = timedelta(days=31)
    ch.insert(
        "alerts",
        [
            row("old", now - month, now - month),
            row("recent", now - timedelta(days=29), now - timedelta(days=29)),
            row("late", now - 12 * month, now),  # a deadline long past, raised now
        ],
        database=db,
        column_names=[*ALERT_COLUMNS, "inserted_at"],
    )
    ch.command(f"OPTIMIZE TABLE {db}.alerts FINAL")  # TTLs act when parts merge; this merges now
    rows = {
        r[0]: r[1:]
        for r in ch.query(
            f"SELECT alert_id, summary, subjects_sample, ocsf, detector, severity, actor_id, counts, subject_count "
            f"FROM {db}.alerts FINAL"
        ).result_rows
    }
    assert rows["old"] == ("", [], "", "offscope_marketing", "high", "E1", {"pushes": 1}, 1)
    assert rows["recent"][1] == ["p_0123456789abcdef01234567"]
    assert rows["late"][0].startswith("1 push") and rows["late"][1] == ["p_0123456789abcdef01234567"]


def test_the_ledger_forgets_its_customers_after_the_pseudonym_days_and_keeps_the_rest(
    ch: Any, db: str
) -> None:
    """A transfer older than storage.yaml's days keeps its recipient, basis, class, records and count;
    its customers' state is emptied, and the report says so rather than 0 customers."""
    apply_ddl(ch, db, SHORT)
    now = datetime.now(UTC)
    sent = ("r1", "外包 / outsourcer", "processor", "contract", "C2", 2, 2, 2, ["p_a", "p_b"])
    ch.insert(
        "transfer_ledger",
        [("old", now - timedelta(days=31), *sent), ("recent", now - timedelta(days=29), *sent)],
        database=db,
        column_names=list(LEDGER_COLUMNS),
    )
    ch.command(f"OPTIMIZE TABLE {db}.transfer_ledger FINAL")
    ledger = {event: provided(ch, db, f" AND event_id = '{event}'") for event in ("old", "recent")}
    (old,), (recent,) = ledger["old"].lines, ledger["recent"].lines
    assert (old.customers, old.expired, old.records, old.transfers) == (0, True, 2, 1)
    assert (recent.customers, recent.expired) == (2, False)
    assert ch.query(f"SELECT DISTINCT subjects FROM {db}.transfer_ledger").result_rows == [([],)]
    assert "expired / 已过保存期" in render(ledger["old"], None, None, UTC)
    # a period reaching past the days: the customers counted are the recent ones, and it says so
    (both,) = provided(ch, db).lines
    assert (both.customers, both.expired, both.transfers) == (2, True, 2)
    assert "2 (partly expired / 部分已过保存期)" in render(provided(ch, db), None, None, UTC)


def test_the_ledger_speaks_only_for_the_time_since_it_began(ch: Any, db: str) -> None:
    """A period before the ledger's first transfer is not "none provided": the release before kept no
    ledger, so the report leaves the section out; a period the ledger began in says from when."""
    apply_ddl(ch, db, SHORT)
    began = datetime(2026, 3, 10, 4, tzinfo=UTC)
    sent = ("r1", "外包 / outsourcer", "processor", "contract", "C2", 2, 2, 2, ["p_a", "p_b"])
    ch.insert("transfer_ledger", [("e1", began, *sent)], database=db, column_names=list(LEDGER_COLUMNS))
    ms = int(began.timestamp() * 1000)
    zone = ZoneInfo("Asia/Shanghai")
    february = provided(
        ch, db, " AND ts < {until:DateTime64(3, 'UTC')}", {"until": began - timedelta(days=9)}
    )
    assert february.lines == [] and render(february, ms - 40 * DAY_MS, ms - 9 * DAY_MS, zone) == ""
    march = render(provided(ch, db), ms - 9 * DAY_MS, ms + 21 * DAY_MS, zone)
    assert "recorded from 2026-03-10 only" in march and "外包 / outsourcer" in march
    assert "recorded from" not in render(provided(ch, db), ms, ms + DAY_MS, zone)


def test_a_table_whose_ttl_counted_from_last_seen_counts_from_kept_from_after_an_upgrade(
    ch: Any, db: str
) -> None:
    from streams.clickhouse import ddl_statements

    (create,) = [
        s for s in ddl_statements(db, SHORT) if s.startswith(f"CREATE TABLE IF NOT EXISTS {db}.alerts")
    ]
    # a table from before kept_from, and so before raised_at too
    before = "\n".join(
        line for line in create.splitlines() if not line.strip().startswith(("kept_from", "raised_at"))
    )
    ch.command(f"CREATE DATABASE {db}")
    ch.command(
        before.replace(
            "inserted_at         DateTime64(3, 'UTC') DEFAULT now64(3),",
            "inserted_at         DateTime64(3, 'UTC') DEFAULT now64(3)",
        ).replace("toDateTime(kept_from)", "toDateTime(last_seen)")
    )
    assert set(ttl_days(ch, db).values()) == {"toDateTime(last_seen) + toIntervalDay(30)"}
    apply_ddl(ch, db, SHORT)
    assert set(ttl_days(ch, db).values()) == {"toDateTime(kept_from) + toIntervalDay(30)"}


def test_a_changed_ttl_is_applied_at_start_and_only_then(ch: Any, db: str) -> None:
    apply_ddl(ch, db, SHORT)
    apply_ddl(ch, db, Storage(pseudonym_ttl_days=90, dead_letter_retention_days=3))
    assert set(ttl_days(ch, db).values()) == {"toDateTime(kept_from) + toIntervalDay(90)"}

    def mutations() -> int:
        return ch.query(f"SELECT count() FROM system.mutations WHERE database = '{db}'").result_rows[0][0]

    before = mutations()
    apply_ddl(ch, db, Storage(pseudonym_ttl_days=90, dead_letter_retention_days=3))
    assert mutations() == before  # a start under the same policy alters nothing


def test_topics_with_pseudonyms_or_original_bytes_have_a_retention(
    broker: str, names: dict[str, str]
) -> None:
    config = make_config(names, broker, "chdb://unused")
    ensure_topics(broker, config, storage=SHORT)
    admin = AdminClient({"bootstrap.servers": broker})
    t = config.topics
    wanted = {
        t.dlq: ("delete", 3 * DAY_MS),
        t.alerts: ("compact,delete", 30 * DAY_MS),
        t.incidents: ("compact,delete", 30 * DAY_MS),
    }
    for topic, (policy, retention) in wanted.items():
        (future,) = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, topic)]).values()
        found = future.result(timeout=10)
        assert (found["cleanup.policy"].value, int(found["retention.ms"].value)) == (policy, retention), topic
