"""Parsed statements and file handovers become the canonical AccessEvent / TransferEvent through
the bank's mapping (`policy/sources.yaml`). What the mapping does not know is kept and reported:
an unknown table reads as the field id `db:<database>.<table>` (the engine's coverage-gap rollups
count it, JR/T 0171 §4.2 C1 c) classes it C1 until it is catalogued); an unmapped login stays
its own actor id and is counted as a gap."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from typing import Any

from policy.sources import SourceMapping, TableEntry
from schemas.models import Action, Outcome
from schemas.structs import STRICT
from streams.sources.records import DbStatement, FileHandover

# What the logs may name that policy/sources.yaml lacks, and where it goes there (`lifemon catalog gaps`)
GAP_KINDS = {
    "lifecycle_without_subject": "the source's lifecycle events: name the customer (subject_id) on each, "
    "or retention_overrun sees them only for records an earlier event named the customer of "
    "(a deletion unseen leaves its request overdue)",
    "table": "policy/sources.yaml databases.<database>.tables",
    "db_user": "policy/sources.yaml actors.db_users (or applications / service_users)",
    "service_application": "policy/sources.yaml actors.applications; `(none logged)`: the server's "
    "log_line_prefix lacks %a (pgaudit) or the client sets no application name",
    "sftp_account": "policy/sources.yaml sftp_accounts",
    "sftp_path": "policy/sources.yaml sftp_accounts.<account>.directories",
    "cursor_rows_unknown": "a visibility finding: pgaudit does not audit FETCH, the rows read are unknown",
    "copy_rows_unknown": "a visibility finding: pgaudit logs 0 rows for COPY of a whole table, the rows are unknown",
    "rows_unknown": "a visibility finding: the log has no row count (server_audit, or pgaudit with log_rows "
    "off) and the read names no customer, so it counts as one record",
    "aggregated_rows_unknown": "a visibility finding: the read folds rows into one (string_agg, json_agg, "
    "group_concat, ...), so the log's row count is not the records read; each is counted as one",
    "query_truncated": "a visibility finding: server_audit cut the statement at server_audit_query_log_limit, "
    "customers named after the cut are not seen (raise the limit, and the source's query_log_limit with it)",
}
_WORD = re.compile(r'"?([^\W\d][\w$]*)"?(?:\s*\.\s*"?([^\W\d][\w$]*)"?)?')  # any script's letters
# a string: its text names no table (`... WHERE table_name = 'cardholders'`, mysqldump's look-ups in
# INFORMATION_SCHEMA; `PREPARE s FROM '...'`); MariaDB escapes a quote in one with a backslash
_STRING = {"pgaudit": re.compile(r"'(?:[^']|'')*'"), "mariadb": re.compile(r"'(?:[^'\\]|\\.|'')*'", re.S)}
_WHOLE_TABLE_COPY = re.compile(r"\s*COPY\s+[^\s(]+\s+(?:TO|FROM)\b", re.I)  # no column list: every column
_ACTIONS = {"SELECT": Action.query, "DECLARE CURSOR": Action.query, "COPY": Action.export, "COPY FROM": Action.update,
            "SELECT INTO OUTFILE": Action.export, "INSERT": Action.update, "UPDATE": Action.update,
            "MERGE": Action.update, "DELETE": Action.delete, "TRUNCATE": Action.delete}  # fmt: skip
# a read or export whose size the log may not say
_READS = frozenset({"SELECT", "WITH", "TABLE", "SELECT INTO OUTFILE"})
_COMMENT = re.compile(r"/\*.*?\*/|--[^\n]*", re.S)  # a query tag, a note: neither names a column read
# every column: a select list's or RETURNING's `*`, or `t.*` (not count(*), not a product)
_STAR = re.compile(r"(?:\bSELECT(?:\s+(?:DISTINCT|ALL))?|\bRETURNING|,)\s*\*|\.\s*\*", re.I)
# an aggregate that folds many rows into one value: the log's row count is 1 whatever was read
_FOLDS = re.compile(
    r"\b(?:string_agg|array_agg|jsonb?_agg|jsonb?_object_agg|xmlagg|group_concat|listagg|json_arrayagg)\s*\(",
    re.I,
)
# what a read takes its rows from, by name: a relation (`core.v_balances`, `tmp_x`) or a
# schema's function (`core.all_phones()`); an unqualified function is the server's (generate_series)
_SOURCE = re.compile(
    r'\b(?:FROM|JOIN|COPY|TABLE)\s+(?:ONLY\s+)?("?[^\W\d][\w$]*"?(?:\s*\.\s*"?[^\W\d][\w$]*"?)?)(\s*\()?',
    re.I,
)
# what narrows a read to some rows: without one, a read takes the whole table
_NARROWS = re.compile(r"\b(?:WHERE|LIMIT|FETCH\s+FIRST|OFFSET|TABLESAMPLE|HAVING)\b", re.I)
_CTE = re.compile(r'\b("?[^\W\d][\w$]*"?)\s+AS\s+(?:NOT\s+)?(?:MATERIALIZED\s+)?\(', re.I)


class Canonical:
    def __init__(
        self,
        mapping: SourceMapping,
        gaps: Counter | None = None,
        fingerprint: Callable[[str], str] | None = None,
    ):
        """`fingerprint`: a keyed fingerprint for what a log names that a bank may build from a
        customer's id (a transferred file's name); without one (tests, tools) it stays as logged."""
        self.m = mapping
        self.gaps: Counter = Counter() if gaps is None else gaps  # "table corebank.core.x" -> times seen
        self.found: list[tuple[str, str]] = []  # (kind, object) of each gap, until the caller takes them
        self.fingerprint = fingerprint

    def _gap(self, kind: str, name: str) -> None:
        """An object the mapping lacks (GAP_KINDS), reported by name: a table, login, account or
        directory is the catalog's vocabulary, never a value from a record."""
        self.gaps[f"{kind} {name}"] += 1
        self.found.append((kind, name))

    def access(self, st: DbStatement) -> Any | None:
        """The AccessEvent of a statement, or None when it touched only the server's own schemas."""
        db = self.m.databases.get(st.database)
        named = st.tables or self._tables_in(st) or self._sources_in(st)
        ignored = set(db.ignore_schemas) if db else set()
        tables = [t for t in named if t.split(".", 1)[0] not in ignored or "." not in t]
        if st.source == "mariadb":  # server_audit names `database.table`; the catalog keys tables by name
            tables = [t.split(".", 1)[1] if t.startswith(f"{st.database}.") else t for t in tables]
        if not tables and not st.denied:
            return None
        fields: list[str] = []
        subjects: list[str] = []
        for name in tables:
            found = self.m.table(st.database, name)
            if found is None:
                self._gap("table", f"{st.database}.{name}")
                fields.append(f"db:{st.database}.{name}")
                continue
            _, entry = found
            fields += [f for f in _fields_read(entry, st.statement) if f not in fields]
            subjects += [s for s in _subjects(entry, st) if s not in subjects]
        rows = st.rows
        folded = bool(rows and not subjects and _FOLDS.search(_COMMENT.sub(" ", st.statement)))
        if folded:  # one row holding a table's worth: shown as unseen
            self._gap("aggregated_rows_unknown", f"{st.database}.{'+'.join(tables)}")
        if rows == 0 and not st.denied:
            # the log counted no row: nothing of the customers the statement names came back or
            # changed (a deleted or mistyped id). Named with row_count 0 they would read as a record
            # each: the access schema's 0 is also a producer's "not counted"
            subjects = []
        if rows is None:
            if st.command == "DECLARE CURSOR":  # pgaudit does not audit FETCH: a visibility gap, shown
                self._gap("cursor_rows_unknown", f"{st.database}.{'+'.join(tables)}")
            elif st.command.startswith("COPY"):  # nor the rows of COPY <table> TO|FROM
                self._gap("copy_rows_unknown", f"{st.database}.{'+'.join(tables)}")
            elif not subjects and not st.denied and st.command in _READS:
                # a read of unknown size: SELECT * FROM cardholders may be one row or all of them
                self._gap("rows_unknown", f"{st.database}.{'+'.join(tables)}")
        if (rows is None or folded) and not subjects and not st.denied:
            # all of a table the bank gives the size of counts that many (a probe's `COPY
            # core.accounts TO` counted as one record, a `string_agg` over 700 customers as one);
            # else the query counts by what it names
            rows = self._whole_table(st, tables) or rows
        if rows is None:
            rows = len(subjects) or (0 if st.denied else 1)  # counted by query when the log has no count
        if st.truncated:
            self._gap("query_truncated", f"{st.database}.{'+'.join(tables)}")
        return STRICT["access"](
            event_id=st.event_id,
            ts=st.ts_ms,
            actor_id=self._actor(st),
            purpose=self.m.actors.purposes.get(st.application or ""),
            system=db.system if db else st.database or "unknown",
            action=_ACTIONS.get(st.command.upper(), Action.query),
            subject_ids=subjects,
            row_count=0 if st.denied else max(rows, 0),
            fields=fields,
            outcome=Outcome.denied if st.denied else Outcome.success,
            client_ip=st.client_ip,
        )

    def transfer(self, f: FileHandover) -> Any | None:
        account = self.m.sftp_accounts.get(f.account)
        if account is None:
            self._gap("sftp_account", f.account)
            return None
        d = self.m.directory(account, f.path)
        if d is None:
            self._gap("sftp_path", f"{f.account}:{f.path.rsplit('/', 1)[0]}/")
            return None
        sent = f.bytes_written if d.sends_on == "write" else f.bytes_read
        if sent <= 0:
            return None  # the other direction: data coming in, not leaving
        records = -(-sent // d.bytes_per_record) if d.bytes_per_record else 0
        # the ids reach alerts (evidence, summary): a file named for its customer ("C000042_stmt.pdf")
        # is shown by its declared directory and a keyed fingerprint of its name
        shown = self._file(f.path)
        return STRICT["transfer"](
            event_id=f.event_id.replace(f.path, shown, 1),
            ts=f.ts_ms,
            transfer_id=f"{f.account}:{shown}:{f.ts_ms}",
            sender_system=account.sender_system,
            actor_id=account.actor,
            recipient_id=account.recipient_id,
            recipient_type=account.recipient_type,
            recipient_country=account.recipient_country,
            categories=list(d.fields),
            record_count=records,
            subject_count=records,
            encrypted=True,  # SSH encrypts the channel
            deidentified=d.deidentified,
            public_network=account.public_network,
            contract_id=account.contract_id,
            legal_basis=account.legal_basis,
            assessment_id=account.assessment_id,
        )

    def _file(self, path: str) -> str:
        if self.fingerprint is None:
            return path
        folder, _, name = path.rpartition("/")
        return f"{folder}/{self.fingerprint(name)}"

    def _actor(self, st: DbStatement) -> str:
        a = self.m.actors
        if st.user in a.service_users and st.application in a.applications:
            return a.applications[st.application]
        if st.user in a.db_users:
            return a.db_users[st.user]
        if st.application in a.applications:
            return a.applications[st.application]
        if st.user in a.service_users:
            # a shared login is known, its application is not: no name in the log, or one unmapped
            self._gap("service_application", f"{st.user}:{st.application or '(none logged)'}")
        else:
            self._gap("db_user", st.user)
        return st.user or "unknown"

    def _tables_in(self, st: DbStatement) -> list[str]:
        """Catalogued tables a statement names in its text (a denied query, a cursor), outside its
        strings."""
        db = self.m.databases.get(st.database)
        if db is None:
            return []
        text = _STRING[st.source].sub("''", st.statement) if "'" in st.statement else st.statement
        words = {(f"{a}.{b}" if b else a).lower() for a, b in _WORD.findall(text)}
        return [q for q in db.tables if q.lower() in words or q.rsplit(".", 1)[-1].lower() in words]

    def _whole_table(self, st: DbStatement, tables: list[str]) -> int:
        """The rows sources.yaml says the largest of `tables` holds, if the statement reads or
        exports all of it (nothing narrows it: no WHERE, LIMIT, ...); else 0."""
        if not (st.command in _READS or st.command in ("COPY", "DECLARE CURSOR")):
            return 0
        text = _COMMENT.sub(" ", st.statement)
        if _NARROWS.search(_STRING[st.source].sub("''", text) if "'" in text else text):
            return 0
        sizes = [found[1].rows or 0 for name in tables if (found := self.m.table(st.database, name))]
        return max(sizes, default=0)

    def _sources_in(self, st: DbStatement) -> list[str]:
        """What a read or export of a pgaudit log that names no catalogued table takes its rows from,
        by name (a view or a function over a catalogued table, a copy of one, pgaudit with
        log_relation off): each becomes a table gap and a field `db:...` as any unknown table,
        where it was dropped unseen (a probe's `SELECT * FROM core.all_phones()`, 700 customers).
        Not the server's own: its schemas (`ignore_schemas`), `pg_` names, unqualified functions."""
        if st.source != "pgaudit" or not (st.command in _READS or st.command.startswith(("COPY", "DECLARE"))):
            return []
        text = _COMMENT.sub(" ", st.statement)
        text = _STRING[st.source].sub("''", text) if "'" in text else text
        ctes = {name.strip('"').lower() for name in _CTE.findall(text)}
        found = []
        for name, call in _SOURCE.findall(text):
            name = re.sub(r'\s|"', "", name)
            if (
                name.lower() in ctes
                or name.split(".", 1)[-1].lower().startswith("pg_")
                or ("." not in name and call)
            ):
                continue
            if name not in found:
                found.append(name)
        return found


def _fields_read(entry: TableEntry, statement: str) -> list[str]:
    """The catalogued columns a statement names, or all of them for `*` (a rough but honest reading:
    SQL is not parsed, so a column named anywhere in the text counts as read; a comment names none:
    a probe's `/*A7 mixed case*/` tag had read every column)."""
    statement = _COMMENT.sub(" ", statement)
    if _STAR.search(statement) or _WHOLE_TABLE_COPY.match(statement):
        return list(dict.fromkeys(entry.columns.values()))
    words = {w.lower() for pair in _WORD.findall(statement) for w in pair if w}
    return list(dict.fromkeys(f for col, f in entry.columns.items() if col.lower() in words))


# a whole literal: quoted, or a number (a bigint customer key: `cust_no = 10042`, never the start
# of `10042.5` or `1e5`); or a bound parameter
_VALUE = r"'(?:[^']|'')*'(?!')|\$\d+|\d+(?![\w.])"


def _subjects(entry: TableEntry, st: DbStatement) -> list[str]:
    """Customer ids the statement compares its customer-key column with: `= value` (not the start
    of an expression: `'C0000' || $1`) or `IN (values)`, each a literal (quoted, or a number: the
    key may be a bigint) or a bound parameter. A subquery, another column or an expression names no
    customer: its literals are other columns'. A list cut short (server_audit_query_log_limit
    truncates statements) names the customers it holds, not the one cut in two."""
    if not entry.customer_key:
        return []
    key = re.escape(entry.customer_key)
    out: list[str] = []
    for m in re.finditer(
        rf"\b{key}\"?\s*(?:=\s*({_VALUE})(?!\s*(?:\|\||[-+*/%^]))|IN\s*\(\s*((?:{_VALUE})(?:\s*,\s*(?:{_VALUE}))*)\s*(?:\)|,\s*(?:'[^']*|\d*)$))",
        st.statement,
        re.I,
    ):
        for value in re.findall(r"'((?:[^']|'')*)'|\$(\d+)|(\d+)", m.group(1) or m.group(2)):
            literal, param, number = value
            if literal or number:
                out.append(number or literal.replace("''", "'"))
            elif param and len(param) <= 6 and int(param) <= len(st.parameters):  # not $9999...9
                out.append(st.parameters[int(param) - 1])
    return out
