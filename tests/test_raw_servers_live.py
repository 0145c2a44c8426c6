"""Run the real PostgreSQL + pgaudit, MariaDB + server_audit and sshd now, put the files they wrote
on Tansu with `lifemon ship`, run the monitor, and assert the exact alerts on the alerts topic and in
ClickHouse (a new server version changing its format shows here first). `make test` installs the
servers (as root, `make test-deps`); where they cannot run, the skip says why."""

from __future__ import annotations

import shutil

import pytest
import realservers
from conftest import entitlement
from test_pipeline import latest_alerts, make_config, monitor, read_all, send
from test_raw_sources import PG_EXPECTED, TOPICS, decode_all, decoder, raw_topics, records, summary
from test_ship import ship, values

from streams.alerts import actor_of

why = realservers.available()
pytestmark = [pytest.mark.skipif(why is not None, reason=why or ""), pytest.mark.integration]

EXPECTED_ALERTS = [  # (rule, actor, severity): the same traffic as the committed fixtures
    ("LM-BQ-001", "E1002", "Critical"),  # the analyst's 600 balances (pgaudit's row count)
    ("LM-BQ-001", "svc-batch-export", "High"),  # what the batch account sent over SFTP
    ("LM-TP-002", "sunrise-insurance", "High"),  # a third party with neither consent nor contract
    # (the collector's file, the name and phone its contract lets it have in clear, is silent)
    ("LM-TP-005", "hk-fx-partner", "Critical"),  # overseas with no assessment
    ("LM-TP-006", "sunrise-insurance", "High"),
]


def test_live_servers_shipped_to_tansu_give_the_exact_alerts(
    broker, ch, names, policy, catalog, tmp_path
) -> None:
    with realservers.postgres() as logs:
        shutil.copy(logs / "postgresql", tmp_path / "postgresql.log")
        shutil.copy(logs / "postgresql.csv", tmp_path / "postgresql.csv")
    with realservers.mariadb() as audit:
        shutil.copy(audit, tmp_path / "server_audit.log")
    with realservers.sftp() as lines:  # as rsyslog writes what internal-sftp sent to /dev/log
        (tmp_path / "auth.log").write_text("".join(f"{line}\n" for line in lines))

    raw = raw_topics(names["tag"])
    config = make_config(names, broker, "chdb://unused", raw_sources=raw)
    m = monitor(config, ch, policy, catalog)
    send(
        broker,
        config.topics.entitlements,
        [entitlement("E1001", "lobby_manager"), entitlement("E1002", "br_dept_head", org="B01"),
         entitlement("E1003", "lobby_manager")],
    )  # fmt: skip
    csv_topic = f"pfi.raw.pgaudit-csv.{names['tag']}"
    shippers = [
        ship(broker, [tmp_path / file], topic, tmp_path / f"{fmt}.pos", fmt)
        for fmt, file, topic in (
            ("pgaudit", "postgresql.log", raw["pgaudit"]["topic"]),
            ("pgaudit-csv", "postgresql.csv", csv_topic),
            ("mariadb", "server_audit.log", raw["mariadb"]["topic"]),
            ("sftp", "auth.log", raw["sftp"]["topic"]),
        )
    ]
    assert [p.wait(60) for p in shippers] == [0, 0, 0, 0]
    stats = m.run(idle_exit_s=1.5, max_seconds=90)

    assert stats.events["access"] == 12 and stats.events["transfer"] == 3
    assert sum(stats.dead.values()) == 0
    alerts = latest_alerts(read_all(broker, config.topics.alerts))
    found = sorted(
        (a["finding_info"]["analytic"]["uid"], actor_of(a), a["severity"]) for a in alerts.values()
    )
    assert found == EXPECTED_ALERTS
    db = names["database"]
    rows = ch.query(f"SELECT rule_id, actor_id, severity FROM {db}.alerts FINAL ORDER BY rule_id, actor_id")
    assert rows.result_rows == [(r, actor, sev.lower()) for r, actor, sev in EXPECTED_ALERTS]
    gaps = ch.query(
        f"SELECT kind, object FROM {db}.coverage_gaps WHERE kind != 'field' GROUP BY 1, 2 ORDER BY 1"
    ).result_rows
    assert gaps == [
        ("cursor_rows_unknown", "corebank.core.accounts"),
        ("rows_unknown", "cards.cardholders"),  # server_audit: a SELECT naming no customer
        ("table", "corebank.core.branch_targets"),
    ]

    # the csvlog, as `lifemon ship --format pgaudit-csv` put it on its topic, gives the same accesses
    dec, _ = decoder(format="csvlog")
    shipped = decode_all(dec, "access", records(TOPICS["pgaudit"], values(broker, csv_topic)))
    assert shipped.dead == [] and [summary(ev) for _, ev in shipped.ok] == PG_EXPECTED
