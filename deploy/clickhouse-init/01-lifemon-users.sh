#!/bin/bash
# Runs once, when the ClickHouse container starts on an empty data volume
# (/docker-entrypoint-initdb.d of the clickhouse/clickhouse-server image), as the admin account
# CLICKHOUSE_USER. It creates the two accounts of docker-compose.yml, each with least privilege:
#
#   lifemon     the monitor: creates the lifemon database and tables (its DDL is applied at every
#               start, idempotently), inserts, reads. Nothing else: no ALTER (so no ALTER ... DELETE
#               or UPDATE, no TTL or column change), DELETE, TRUNCATE, DROP, RENAME, OPTIMIZE, no file
#               or URL functions, no user management, no other database: a stolen lifemon password
#               cannot erase or rewrite the alerts, the audit trail (tests/test_clickhouse_grants.py
#               runs these grants on chDB and tries each way). A TTL changed in policy/storage.yaml is
#               applied by an administrator; lifemon logs the ALTER to run.
#   grafana_ro  the dashboards: SELECT on exactly the tables their panels read (docs/security.md
#               lists them; tests/test_deploy.py derives them from the panels' SQL and compares),
#               readonly = 1. max_execution_time stays changeable because the Grafana plugin's driver
#               sets it on every query (the plugin's documented requirement for a read-only user,
#               docs/sources/configure.md).
#   lifemon_analyst  a role for the SOC's analysts, one ClickHouse account each (docs/security.md):
#               SELECT on lifemon's tables, INSERT into alert_reviews and incident_reviews only (the
#               response team's members hold it too: `lifemon incidents ack`). A review stores the
#               account that wrote it (the server sets it), so it shows who was logged in.
#
# Passwords come from the container environment and reach ClickHouse only as SHA-256 hashes, so
# no plaintext secret appears in a statement, the query log or a process list.
#
# The entrypoint sources a script that is not executable; the subshell keeps `set -u` and friends
# from leaking into it either way.
(
    set -euo pipefail

    : "${CLICKHOUSE_USER:?}" "${CLICKHOUSE_PASSWORD:?}"
    : "${LIFEMON_CLICKHOUSE_PASSWORD:?LIFEMON_CLICKHOUSE_PASSWORD must be set for the lifemon account}"
    : "${CLICKHOUSE_GRAFANA_PASSWORD:?CLICKHOUSE_GRAFANA_PASSWORD must be set for the grafana_ro account}"
    db="${CLICKHOUSE_DB:-lifemon}"

    sha256_hex() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }
    lifemon_hash="$(sha256_hex "$LIFEMON_CLICKHOUSE_PASSWORD")"
    grafana_hash="$(sha256_hex "$CLICKHOUSE_GRAFANA_PASSWORD")"

    clickhouse-client --host 127.0.0.1 --user "$CLICKHOUSE_USER" --password "$CLICKHOUSE_PASSWORD" \
        --multiquery <<SQL
CREATE DATABASE IF NOT EXISTS ${db};

CREATE USER IF NOT EXISTS lifemon IDENTIFIED WITH sha256_hash BY '${lifemon_hash}';
GRANT CREATE DATABASE, CREATE TABLE, INSERT, SELECT ON ${db}.* TO lifemon;

CREATE ROLE IF NOT EXISTS lifemon_analyst;
GRANT SELECT ON ${db}.* TO lifemon_analyst;
GRANT INSERT ON ${db}.alert_reviews TO lifemon_analyst;
GRANT INSERT ON ${db}.incident_reviews TO lifemon_analyst;

CREATE SETTINGS PROFILE IF NOT EXISTS grafana_ro_profile
    SETTINGS readonly = 1,
             max_execution_time = 60 MIN 1 MAX 600 CHANGEABLE_IN_READONLY;
CREATE USER IF NOT EXISTS grafana_ro IDENTIFIED WITH sha256_hash BY '${grafana_hash}'
    SETTINGS PROFILE 'grafana_ro_profile';
GRANT SELECT ON ${db}.alerts TO grafana_ro;
GRANT SELECT ON ${db}.alert_reviews TO grafana_ro;
GRANT SELECT ON ${db}.incident_reviews TO grafana_ro;
GRANT SELECT ON ${db}.event_rollups TO grafana_ro;
GRANT SELECT ON ${db}.pipeline_stats TO grafana_ro;
GRANT SELECT ON ${db}.dead_letters TO grafana_ro;
GRANT SELECT ON ${db}.deletion_events TO grafana_ro;
GRANT SELECT ON ${db}.recipient_contracts TO grafana_ro;
GRANT SELECT ON ${db}.transfer_ledger TO grafana_ro;
GRANT SELECT ON ${db}.incidents TO grafana_ro;
SQL
    echo "lifemon: created ClickHouse users lifemon (writer on ${db}.*) and grafana_ro (read-only on the dashboard tables), and the role lifemon_analyst (reads, adds reviews)"
)
