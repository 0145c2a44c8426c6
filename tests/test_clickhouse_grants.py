"""The ClickHouse accounts of deploy/clickhouse-init, tried on chDB with ClickHouse's own access
control (tests/chdb_account.py): lifemon's writer starts, writes and reads alerts, and every way to
delete or rewrite the alert audit trail is refused; Grafana's account runs every dashboard panel
and may do nothing else."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from chdb_account import users_xml
from test_deploy import IN_RANGE, INIT_SCRIPT, QUERY_PANELS, expand_macros, init_sql

HELPER = Path(__file__).resolve().parent / "chdb_account.py"
ACCESS_DENIED = 497

# Every statement that would delete, rewrite or hide alerts, or reach beyond lifemon's tables.
TAMPERING = [
    "ALTER TABLE lifemon.alerts DELETE WHERE 1",
    "DELETE FROM lifemon.alerts WHERE 1",
    "ALTER TABLE lifemon.alerts UPDATE summary = '' WHERE 1",
    "ALTER TABLE lifemon.alerts MODIFY COLUMN summary TTL toDateTime(last_seen) + INTERVAL 1 DAY",
    "ALTER TABLE lifemon.alerts MODIFY TTL toDateTime(last_seen) + INTERVAL 1 DAY",
    "ALTER TABLE lifemon.alerts DROP COLUMN summary",
    "ALTER TABLE lifemon.alerts CLEAR COLUMN subjects_sample",
    "ALTER TABLE lifemon.alerts DROP PARTITION tuple()",
    "ALTER TABLE lifemon.alerts DETACH PARTITION tuple()",
    "TRUNCATE TABLE lifemon.alerts",
    "DROP TABLE lifemon.alerts",
    "DETACH TABLE lifemon.alerts",
    "DROP DATABASE lifemon",
    "RENAME TABLE lifemon.alerts TO lifemon.alerts_gone",
    "EXCHANGE TABLES lifemon.alerts AND lifemon.dead_letters",
    "CREATE OR REPLACE TABLE lifemon.alerts (x UInt8) ENGINE = MergeTree ORDER BY x",
    "OPTIMIZE TABLE lifemon.alerts FINAL DEDUPLICATE",
    "CREATE USER intruder",
    "SELECT count() FROM file('/etc/passwd', 'LineAsString')",
    "INSERT INTO FUNCTION file('/tmp/lifemon-alerts-copy.csv', 'CSV') SELECT * FROM lifemon.alerts",
    # the analysts' reviews are the triage's audit trail: added to, never rewritten
    "ALTER TABLE lifemon.alert_reviews DELETE WHERE 1",
    "ALTER TABLE lifemon.alert_reviews UPDATE state = 'resolved' WHERE 1",
    "TRUNCATE TABLE lifemon.alert_reviews",
    "DROP TABLE lifemon.alert_reviews",
]


def grants_of(user: str) -> list[str]:
    """The init script's GRANT statements for `user`, as `GRANT ... ON ...` (users.xml's form)."""
    found = []
    for statement in init_sql():
        m = re.fullmatch(r"GRANT (.+) ON (\S+) TO (\w+)(.*)", statement, re.S)
        if m and m[3] == user:
            found.append(f"GRANT {m[1]} ON {m[2]}{m[4]}")
    assert found, f"the init script grants {user} nothing"
    return found


def as_account(tmp: Path, config: Path, steps: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str]:
    (tmp / "steps.json").write_text(json.dumps(steps), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(HELPER), str(tmp / "data"), str(config), str(tmp / "steps.json")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    results = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(results) == len(steps), done.stderr[-2000:]
    return results, done.stderr


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A chDB data folder with lifemon's schema and one alert, made by an administrator."""
    tmp = tmp_path_factory.mktemp("grants")
    admin = users_xml(tmp / "admin.xml", [], admin=True)
    results, _ = as_account(tmp, admin, [{"apply_ddl": 365}, {"write_alert": "a1"}])
    assert all(r["ok"] for r in results), results
    return tmp


LIFEMON_START = [
    {"apply_ddl": 365},  # every start applies the DDL
    {"write_alert": "a2"},
    {"sql": "SELECT alert_id FROM lifemon.alerts FINAL ORDER BY alert_id"},
    {"write_review": "a2"},  # `lifemon alerts ack` with lifemon's account
    {"apply_ddl": 30},  # policy changed the TTL: lifemon may not ALTER, and says what to run
]


@pytest.fixture(scope="module")
def as_lifemon(deployed: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]], str]:
    """(its start's results, the tampering attempts' results, its log), in one chDB process."""
    config = users_xml(deployed / "lifemon.xml", grants_of("lifemon"))
    steps = LIFEMON_START + [{"sql": sql} for sql in TAMPERING]
    steps.append({"sql": "SELECT count() FROM lifemon.alerts FINAL"})
    steps.append({"sql": "SELECT state FROM lifemon.alert_reviews"})
    results, log = as_account(deployed, config, steps)
    n = len(LIFEMON_START)
    return results[:n], results[n:], log


def test_lifemon_starts_writes_and_reads_with_its_grants(as_lifemon: Any) -> None:
    start, _, log = as_lifemon
    assert [r["ok"] for r in start] == [True] * 5, start
    assert start[2]["rows"] == [["a1"], ["a2"]]
    assert "an administrator runs: ALTER TABLE lifemon.alerts MODIFY COLUMN summary TTL" in log


def test_lifemon_cannot_erase_or_rewrite_the_alert_audit_trail(as_lifemon: Any) -> None:
    _, tampering, _ = as_lifemon
    allowed = [
        (sql, r) for sql, r in zip(TAMPERING, tampering, strict=False) if r.get("code") != ACCESS_DENIED
    ]
    assert not allowed, f"lifemon's account may: {allowed}"
    assert tampering[-2]["ok"] and int(tampering[-2]["rows"][0][0]) == 2  # the alerts are all there
    assert tampering[-1]["rows"] == [["acknowledged"]]  # and the review


INCIDENT_REVIEW = (
    "INSERT INTO lifemon.incident_reviews (incident_id, review_id, state, analyst, note, incident_revision, "
    "incident_last_seen, at) VALUES ('i1', 'r', 'notified', 'e9', '', 1, now(), now())"
)


def test_an_analyst_reads_and_adds_reviews_under_the_account_it_logged_in_with(deployed: Path) -> None:
    """An analyst's own account (the init script's lifemon_analyst role): it reads the alerts and
    adds a review, which stores the account the server saw; it cannot write alerts, name another
    account for its review, or erase or rewrite the reviews."""
    config = users_xml(deployed / "analyst.xml", grants_of("lifemon_analyst"))
    forged = (
        "INSERT INTO lifemon.alert_reviews (alert_id, review_id, state, analyst, note, alert_revision, "
        "alert_last_seen, at, account) VALUES ('a1', 'r', 'resolved', 'e9', '', 1, now(), now(), 'someone')"
    )
    reviews = [sql for sql in TAMPERING if "alert_reviews" in sql]
    results, _ = as_account(
        deployed,
        config,
        [
            {"write_review": "a1"},
            {"sql": "SELECT analyst, account FROM lifemon.alert_reviews WHERE alert_id = 'a1'"},
            {"sql": "SELECT count() FROM lifemon.alerts"},
            {"write_alert": "a4"},
            {"sql": forged},
            *({"sql": sql} for sql in reviews),
            # a responder's review of an incident (`lifemon incidents resolve --as notified`): added,
            # never erased
            {"sql": INCIDENT_REVIEW},
            {"sql": "ALTER TABLE lifemon.incident_reviews DELETE WHERE 1"},
        ],
    )
    *results, incident_review, erased = results
    assert incident_review["ok"] and erased.get("code") == ACCESS_DENIED, (incident_review, erased)
    assert [r["ok"] for r in results[:3]] == [True] * 3, results
    assert results[1]["rows"] == [["e900001", "default"]]  # chDB's session account is `default`
    assert not results[3]["ok"] and not results[4]["ok"], results
    assert all(r.get("code") == ACCESS_DENIED for r in [results[3], *results[5:]]), results


def test_lifemon_starts_on_a_database_from_before_the_review_account_column(tmp_path: Path) -> None:
    """`alert_reviews.account` came after deployments whose lifemon account may not ALTER: the
    column is the server's to fill, so its start goes on, says what an administrator runs, and
    reviews are stored (their account read as '') until then."""
    admin = users_xml(tmp_path / "admin.xml", [], admin=True)
    results, _ = as_account(
        tmp_path,
        admin,
        [
            {"apply_ddl": 365},
            {"write_alert": "a1"},
            {"sql": "ALTER TABLE lifemon.alert_reviews DROP COLUMN account"},
        ],
    )
    assert all(r["ok"] for r in results), results
    config = users_xml(tmp_path / "lifemon.xml", grants_of("lifemon"))
    results, log = as_account(tmp_path, config, [{"apply_ddl": 365}, {"write_review": "a1"}])
    assert [r["ok"] for r in results] == [True, True], results
    assert "lacks the column account" in log and "ADD COLUMN IF NOT EXISTS account" in log


def test_grafana_reads_its_tables_and_nothing_else(deployed: Path) -> None:
    config = users_xml(deployed / "grafana.xml", grants_of("grafana_ro"), readonly=True)
    assert "readonly = 1" in INIT_SCRIPT.read_text(encoding="utf-8")
    results, _ = as_account(
        deployed,
        config,
        [
            {"sql": "SELECT count() FROM lifemon.alerts"},
            {"sql": "SELECT count() FROM lifemon.event_rollups"},
            {"write_alert": "a3"},
            {"sql": "CREATE TABLE lifemon.x (a UInt8) ENGINE = Memory"},
            {"sql": "ALTER TABLE lifemon.alerts DELETE WHERE 1"},
        ],
    )
    assert [r["ok"] for r in results] == [True, True, False, False, False], results
    assert results[4]["code"] == ACCESS_DENIED


def test_grafana_runs_every_dashboard_panel_with_its_grants(deployed: Path) -> None:
    """What tests/test_deploy.py derives from the panels' SQL, ClickHouse's own access control
    confirms: a panel reading a table (or a view over one) the account lacks is refused here."""
    config = users_xml(deployed / "grafana-panels.xml", grants_of("grafana_ro"), readonly=True)
    queries = [(pid, t["rawSql"]) for pid, panel in QUERY_PANELS for t in panel["targets"]]
    steps = [{"sql": expand_macros(sql, *IN_RANGE)} for _, sql in queries]
    steps.append({"sql": "SELECT count() FROM lifemon.coverage_gaps"})  # no panel reads it
    results, _ = as_account(deployed, config, steps)
    refused = [(pid, r) for (pid, _), r in zip(queries, results, strict=False) if not r["ok"]]
    assert not refused, refused
    assert results[-1]["code"] == ACCESS_DENIED
