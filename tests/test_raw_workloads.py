"""Bank workloads on the real servers, as lifemon reads them: lines written by PostgreSQL 15.18 +
pgaudit (`log_line_prefix` '%m [%p] %q%u@%d app=%a ', log_rows and log_parameter on) and MariaDB
10.11 server_audit (tests/realservers.py) for COPY exports, subqueries, joins, quoted and Chinese
identifiers and denied columns, copied verbatim; then the same traffic on the live servers where
they run (skipped with the reason where they cannot)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import realservers
from test_raw_sources import (
    FIXTURES,
    TOPICS,
    ZH_EXPECTED,
    decode_all,
    decoder,
    entries,
    raw_config,
    records,
    summary,
)

from policy.sources import load_sources
from streams.codecs import Decoder
from streams.sources import RawDecoder, parsers_for
from streams.stats import Stats

PG = "2026-12-02 15:57:43.{ms} UTC [7350] analyst_zhao@corebank app=bi-report LOG:  AUDIT: SESSION,"


def pg_events(*lines: str, **pgaudit: Any) -> list[Any]:
    dec, _ = decoder(**pgaudit)
    out = decode_all(dec, "access", records(TOPICS["pgaudit"], [line.encode() for line in lines]))
    assert out.dead == []
    return [ev for _, ev in out.ok]


def test_copy_of_a_query_is_one_export_of_the_querys_rows() -> None:
    """pgaudit logs `COPY (SELECT ...) TO STDOUT` as the SELECT (its table, 700 rows) and then the
    COPY (no table, 0 rows), both with the COPY's text. They were a query of 700 rows and an export
    of none: the bulk export was not an export to bulk_query (action weights, C3 export)."""
    copy = (
        '"COPY (SELECT customer_id, customer_name, id_document_no FROM core.customers) TO STDOUT WITH CSV;"'
    )
    [ev] = pg_events(
        PG.format(ms=875) + f"2,1,READ,SELECT,TABLE,core.customers,{copy},<none>,700",
        PG.format(ms=876) + f"2,2,READ,COPY,,,{copy},<none>,0",
    )
    assert (ev.action.value, ev.row_count, ev.fields) == ("export", 700, ["customer_name", "id_document_no"])
    assert ev.event_id.endswith(":2:1:1796227063875")


def test_copy_of_a_query_is_one_export_with_pgaudits_default_log_relation_off_too() -> None:
    """With pgaudit.log_relation off (its default) neither line names a table: the COPY of a query
    was a query of its 3000 rows, an export of 1 and a false `copy_rows_unknown` gap. The same
    traffic as the zh_CN server's, as PostgreSQL 15.18 logged it with `%t [%p]: user=%u,db=%d,...`."""
    dec, stats = decoder(log_line_prefix="%t [%p]: user=%u,db=%d,app=%a,client=%h ", timezone="Asia/Shanghai")
    out = decode_all(dec, "access", records(TOPICS["pgaudit"], entries("pgaudit_log_relation_off.log")))
    assert out.dead == [] and [summary(ev) for _, ev in out.ok] == ZH_EXPECTED
    assert [(ev.action.value, ev.row_count) for _, ev in out.ok if ev.action.value == "export"] == [
        ("export", 1),  # COPY core.customers TO STDOUT: its rows are unknown
        ("export", 3000),  # COPY (SELECT ... FROM core.accounts) TO STDOUT
        ("export", 1),  # COPY core.accounts TO '<file>'
    ]
    assert stats.gaps == {
        "copy_rows_unknown corebank.core.customers": 1,
        "copy_rows_unknown corebank.core.accounts": 1,
    }


def test_copy_of_a_whole_table_reads_every_column_and_its_rows_are_a_visibility_gap() -> None:
    """`COPY core.customers TO STDOUT` (psql's `\\copy` too) is logged with no table and 0 rows:
    it was an export of no field and no row, nothing for any detector. It reads every column; its
    rows are unknown (counted once, as a cursor's) and shown as the gap `copy_rows_unknown`.
    `COPY ... FROM STDIN` (class WRITE) writes the table: an update, not an export."""
    dec, stats = decoder()
    lines = [
        PG.format(ms=874) + "1,1,READ,COPY,,,COPY core.customers TO STDOUT;,<none>,0",
        PG.format(ms=882) + "4,1,READ,COPY,,,COPY  core.accounts TO STDOUT ,<none>,0",
        PG.format(ms=883)
        + '5,1,READ,COPY,,,"COPY core.customers (customer_id, mobile_phone) TO STDOUT;",<none>,0',
        PG.format(ms=884) + "6,1,WRITE,COPY,,,COPY core.customers FROM STDIN;,<none>,0",
    ]
    out = decode_all(dec, "access", records(TOPICS["pgaudit"], [line.encode() for line in lines]))
    assert [(ev.action.value, ev.row_count, ev.fields) for _, ev in out.ok] == [
        ("export", 1, ["customer_name", "id_document_no", "mobile_phone"]),
        ("export", 1, ["payment_account_no", "account_balance"]),
        ("export", 1, ["mobile_phone"]),  # a column list reads those columns
        ("update", 1, ["customer_name", "id_document_no", "mobile_phone"]),
    ]
    assert stats.gaps == {
        "copy_rows_unknown corebank.core.customers": 3,
        "copy_rows_unknown corebank.core.accounts": 1,
    }


TELLER = "2026-12-02 15:57:43.{ms} UTC [7348] teller_wang@corebank app=teller-desk LOG:  AUDIT: SESSION,"


def test_a_literal_of_a_subquery_join_or_expression_is_no_customer() -> None:
    """The customer key compared with a subquery, another column or an expression names no
    customer; the literal after it belongs to another column. They became the accesses'
    subjects: a balance threshold, a mobile phone number, an array, a prefix and a parameter. So
    10 customers read through a subquery were one customer to bulk_query's window (a named
    customer scores once; unnamed rows score each)."""
    sub = "SELECT customer_name FROM core.customers WHERE customer_id IN (SELECT customer_id FROM core.accounts WHERE balance > '6900');"
    join = (
        '"SELECT c.customer_name, a.balance FROM core.customers c JOIN core.accounts a '
        "ON a.customer_id = c.customer_id WHERE c.mobile_phone = '13800000012';\""
    )
    events = pg_events(
        TELLER.format(ms=789) + f"3,1,READ,SELECT,TABLE,core.customers,{sub},<none>,10",
        TELLER.format(ms=790) + f"3,1,READ,SELECT,TABLE,core.accounts,{sub},<none>,10",
        TELLER.format(ms=791) + f"4,1,READ,SELECT,TABLE,core.customers,{join},<none>,1",
        TELLER.format(ms=791) + f"4,1,READ,SELECT,TABLE,core.accounts,{join},<none>,1",
        TELLER.format(ms=802)
        + "12,1,READ,SELECT,TABLE,core.customers,\"SELECT customer_id FROM core.customers WHERE customer_id = ANY('{C000019,C000020}');\",<none>,2",
        TELLER.format(ms=803)
        + "13,1,READ,SELECT,TABLE,core.customers,\"SELECT customer_name, mobile_phone FROM core.customers WHERE customer_id = 'C0000' || $1;\",42,1",
    )
    assert [(ev.subject_ids, ev.row_count) for ev in events] == [([], 10), ([], 1), ([], 2), ([], 1)]
    # what names customers still does: a literal, a list, a bound parameter, a list cut short
    named = pg_events(
        TELLER.format(ms=804)
        + "14,1,READ,SELECT,TABLE,core.customers,SELECT 1 FROM core.customers WHERE customer_id = 'C1'::text;,<none>,1",
        TELLER.format(ms=805)
        + "15,1,READ,SELECT,TABLE,core.customers,\"SELECT 1 FROM core.customers c WHERE c.customer_id IN ('C2', $1) AND x = 'y';\",C3,2",
        TELLER.format(ms=806)
        + "16,1,READ,SELECT,TABLE,core.customers,\"SELECT 1 FROM core.customers WHERE customer_id IN ('C4','C5','C\",<none>,2",
    )
    assert [ev.subject_ids for ev in named] == [["C1"], ["C2", "C3"], ["C4", "C5"]]


def test_a_column_denied_by_mariadb_is_a_denied_access() -> None:
    """csr_liu may read credit_limits.customer_id only; reading credit_limit fails with 1143
    (SELECT command denied for column): it was a successful read of loan details."""
    lines = [
        "20261202 15:58:58,vm,csr_liu,localhost,4,21,READ,cards,credit_limits,",
        "20261202 15:58:58,vm,csr_liu,localhost,4,21,READ,mysql,table_stats,",
        "20261202 15:58:58,vm,csr_liu,localhost,4,21,QUERY,cards,'SELECT credit_limit FROM credit_limits WHERE customer_id=\\'K000002\\'',1143",
    ]
    dec, _ = decoder()
    out = decode_all(dec, "access", records(TOPICS["mariadb"], [line.encode() for line in lines]))
    [(_, ev)] = out.ok
    assert (ev.outcome.value, ev.row_count, ev.fields) == ("denied", 0, ["loan_details"])


def test_quoted_and_chinese_table_and_column_names_find_their_mapping(tmp_path: Path, policy: Any) -> None:
    """pgaudit writes a relation whose name is not all lower-case ASCII quoted (`core."客户备注"`,
    `core."Accounts_Hist"`), as quote_identifier() does; the mapping names the table as the
    catalog has it. They never matched (each a coverage gap and a C1 `db:` field), and a column
    named in Chinese was never read."""
    text = (FIXTURES.parents[2] / "policy" / "sources.yaml").read_text()
    text = text.replace(
        "      core.credit_reports:",
        "      core.客户备注: {customer_key: customer_id, columns: {备注: customer_name}}\n"
        "      core.Accounts_Hist: {customer_key: Customer_Id, columns: {balance: account_balance}}\n"
        "      core.credit_reports:",
    )
    (tmp_path / "sources.yaml").write_text(text)
    stats = Stats()
    dec = RawDecoder(
        Decoder(), parsers_for(raw_config()), load_sources(tmp_path, policy.classification), stats
    )
    lines = [
        TELLER.format(ms=797)
        + '7,1,READ,SELECT,TABLE,"core.""Accounts_Hist""","SELECT ""Customer_Id"", balance FROM core.""Accounts_Hist"" WHERE ""Customer_Id"" = \'C000015\';",<none>,1',
        TELLER.format(ms=797)
        + '8,1,READ,SELECT,TABLE,"core.""客户备注""","SELECT ""备注"" FROM core.""客户备注"" WHERE customer_id = \'C000016\';",<none>,1',
    ]
    out = decode_all(dec, "access", records(TOPICS["pgaudit"], [line.encode() for line in lines]))
    assert [(ev.subject_ids, ev.fields) for _, ev in out.ok] == [
        (["C000015"], ["account_balance"]),
        (["C000016"], ["customer_name"]),
    ]
    assert stats.gaps == {}


EXPORTS = """
COPY core.customers TO STDOUT;
COPY (SELECT customer_id, customer_name, id_document_no FROM core.customers) TO STDOUT WITH CSV;
SELECT customer_name FROM core.customers WHERE customer_id IN (SELECT customer_id FROM core.accounts WHERE balance > '6900');
"""


@pytest.mark.integration
@pytest.mark.skipif(realservers.available() is not None, reason=realservers.available() or "")
def test_live_postgres_exports_as_lifemon_reads_them() -> None:
    """The same statements on PostgreSQL + pgaudit now, stderr log and csvlog."""
    with realservers.postgres([("analyst_zhao", "bi-report", EXPORTS)]) as logs:
        stderr, csvlog = (logs / "postgresql").read_text(), (logs / "postgresql.csv").read_text()
    for text, opts in ((stderr, {}), (csvlog, {"format": "csvlog"})):
        dec, stats = decoder(**opts)
        lines = [line.encode() for line in text.splitlines()]
        out = decode_all(dec, "access", records(TOPICS["pgaudit"], lines))
        assert out.dead == []
        assert [(ev.action.value, ev.row_count, ev.subject_ids, ev.fields) for _, ev in out.ok] == [
            ("export", 1, [], ["customer_name", "id_document_no", "mobile_phone"]),
            ("export", 700, [], ["customer_name", "id_document_no"]),
            ("query", 10, [], ["customer_name", "account_balance"]),
        ], opts
        assert stats.gaps == {"copy_rows_unknown corebank.core.customers": 1}
