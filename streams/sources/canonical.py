"""Parsed statements and file handovers become the canonical AccessEvent / TransferEvent through
the bank's mapping (`policy/sources.yaml`). What the mapping does not know is kept and reported:
an unknown table reads as the field id `db:<database>.<table>` (the engine's coverage-gap rollups
count it, JR/T 0171 §4.2 C1 c) classes it C1 until it is catalogued); an unmapped login stays
its own actor id and is counted as a gap."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import lru_cache
from itertools import chain, repeat
from typing import Any

from policy.catalog import UNREAD_COLUMN, Catalog
from policy.sources import SourceMapping, TableEntry
from schemas.models import Action, Outcome
from schemas.structs import STRICT
from streams.sources.records import DbStatement, FileHandover
from streams.sources.sql_literals import plain, routine_variable
from streams.sources.sql_text import split
from streams.sources.sql_where import (
    _WORD,
    _bounded,
    _names_its_customers,
    _narrowing,
    _subjects,
    _top_where,
    _united,
)

# What the logs may name that policy/sources.yaml lacks, and where it goes there (`lifemon catalog gaps`)
GAP_KINDS = {
    "lifecycle_without_subject": "the source's lifecycle events: name the customer (subject_id) on each, "
    "or retention_overrun sees them only for records an earlier event named the customer of "
    "(a deletion unseen leaves its request overdue)",
    "transfer_without_categories": "the source's transfer log: name the data each transfer sent "
    "(categories), or no contract can be shown to cover it (seed 002 §六.2(2))",
    "table": "policy/sources.yaml databases.<database>.tables",
    "db_user": "policy/sources.yaml actors.db_users (or applications / service_users)",
    "service_application": "policy/sources.yaml actors.applications; `(none logged)`: the server's "
    "log_line_prefix lacks %a (pgaudit) or the client sets no application name",
    "sftp_account": "policy/sources.yaml sftp_accounts",
    "sftp_path": "policy/sources.yaml sftp_accounts.<account>.directories",
    "cursor_rows_unknown": "a visibility finding: pgaudit does not audit FETCH, the rows read are unknown "
    "(policy/sources.yaml databases.<database>.tables.<table>.rows counts a cursor over all of it)",
    "copy_rows_unknown": "a visibility finding: pgaudit logs 0 rows for COPY of a whole table, the rows are "
    "unknown (policy/sources.yaml databases.<database>.tables.<table>.rows counts them)",
    "rows_unknown": "a visibility finding: the log has no row count (server_audit, or pgaudit with log_rows "
    "off) and the read names no customer, so it counts as one record",
    "aggregated_rows_unknown": "a visibility finding: the read folds rows into one (string_agg, json_agg, "
    "group_concat, ...), so the log's row count is not the records read (policy/sources.yaml "
    "databases.<database>.tables.<table>.rows counts a fold of all of it)",
    "routine_variable": "a visibility finding: a stored function's statement compares the customer key with "
    "its variable, and pgaudit logs the function's variables unnamed, several holding values, so which "
    "is the customer is unknown (pass the customer as the function's only argument set so far)",
    "parameters_not_logged": "a visibility finding: the statement compares the customer key with bound values "
    "the log does not carry, so its customers are not named and its rows count as no one's (pgaudit: set "
    "pgaudit.log_parameter = on; MariaDB server_audit never logs a server-side prepared statement's values: "
    "have the client send the executed statement, Connector/J useServerPrepStmts=false)",
    "query_truncated": "a visibility finding: server_audit cut the statement at server_audit_query_log_limit, "
    "customers named after the cut are not seen (raise the limit, and the source's query_log_limit with it)",
}
_WHOLE_TABLE_COPY = re.compile(r"\s*COPY\s+[^\s(]+\s+(?:TO|FROM)\b", re.I)  # no column list: every column
_ACTIONS = {"SELECT": Action.query, "DECLARE CURSOR": Action.query, "COPY": Action.export, "COPY FROM": Action.update,
            "SELECT INTO OUTFILE": Action.export, "INSERT": Action.update, "UPDATE": Action.update,
            "MERGE": Action.update, "REPLACE": Action.update, "DELETE": Action.delete,
            "TRUNCATE": Action.delete, "DROP": Action.delete}  # fmt: skip
# a read or export whose size the log may not say
_READS = frozenset({"SELECT", "WITH", "TABLE", "SELECT INTO OUTFILE"})
# what a statement that fills a table begins with, up to the table's name
_FILLS = (
    r"^\s*+(?:INSERT\s++(?:IGNORE\s++)?INTO|REPLACE\s++INTO|CREATE\s++(?:OR\s++REPLACE\s++)?(?:TEMPORARY\s++)?TABLE"
    r"(?:\s++IF\s++NOT\s++EXISTS)?)"
)
# a statement that copies what a query reads into a table: `CREATE TABLE t AS SELECT`, `INSERT INTO t
# SELECT … FROM`: a read of the query's tables (a probe's copy of 700 customers' credit limits was 1
# record); `CREATE VIEW … AS SELECT` defines, and `INSERT … SELECT 'K9'` reads no table
_COPIES = re.compile(_FILLS + r"\b.*?\b(?P<select>SELECT)\b.*?\bFROM\b", re.I | re.S)
# the outer query's row limit: `LIMIT 50`, `LIMIT 100, 50` (MariaDB: offset, count), `FETCH FIRST 50 ROWS`
_LIMIT_ROWS = re.compile(r"\bLIMIT\s++(?:\d++\s*+,\s*+)?(\d++)|\bFETCH\s++(?:FIRST|NEXT)\s++(\d++)", re.I)
# a query whose select list is counts alone: `SELECT count(*) FROM ...`, `count(DISTINCT x) AS n`
_COUNT = r"count\s*+\([^()]*+\)(?:\s++(?:AS\s++)?(?!FROM\b)\w+)?"
_ONLY_COUNTS = re.compile(
    rf"^(?:DECLARE\s.*?\bFOR\s++)?\s*+SELECT\s++{_COUNT}(?:\s*+,\s*+{_COUNT})*+\s++FROM\b", re.I | re.S
)
# every column: a `*` a select list, RETURNING or INTO OUTFILE ends with (`SELECT *`, `t.*`,
# `DISTINCT ON (k) *`, `SQL_NO_CACHE *`), never count(*) nor a product (`a * b`)
_STAR = re.compile(
    r"\*\s*+(?=,|\bFROM\b|\bINTO\b|;|\)\s*+(?:TO|AS)\b)|\.\s*+\*|\b(?:RETURNING|SELECT)\s++\*\s*+$", re.I
)
# what a `*` names no column in: count(*), and a subquery that only asks whether rows exist
# (`WHERE EXISTS (SELECT * FROM core.customers ...)` read every customer column before)
_NO_COLUMNS = re.compile(r"\bcount\s*+\(\s*+\*\s*+\)|\b(?:EXISTS|IN)\s*+\(\s*+SELECT\s++\*", re.I)
# what folds many rows into one value: the log's row count is 1 whatever was read
_FOLDS = re.compile(
    r"\b(?:string_agg|array_agg|jsonb?_agg|jsonb?_object_agg|xmlagg|group_concat|listagg|json_arrayagg)\s*\("
    r"|\bARRAY\s*\(\s*SELECT\b",
    re.I,
)
_NAME = r'(?:"[^"]+"|[^\W\d][\w$]*)'  # an identifier, quoted or not
_QUALIFIED = rf"{_NAME}(?:\s*+\.\s*+{_NAME}){{0,2}}"
_COPY_TARGET = re.compile(_FILLS + r"\s++(" + _QUALIFIED + ")", re.I)  # the table a copy fills
# what a read takes its rows from, by name: each item of a FROM list (`FROM a x, b y`), what a JOIN
# or COPY names (`core.v_balances`, `tmp_x`), LATERAL and ROWS FROM aside; and a schema's function
# called anywhere (`SELECT core.all_phones()`): an unqualified function is the server's
# (generate_series), a qualified name not called may be a column (`a.balance`)
_FROM = re.compile(r"\bFROM\b", re.I)
# possessive (`*+`): a statement an audited user writes must not make a pattern backtrack (a FROM
# and 8 000 spaces took 1.9 s, the review found)
_ITEM = re.compile(
    rf"\s*+(?:(?:ONLY|LATERAL|ROWS\s++FROM)\b\s*+)?(?:\(\s*+)?(?!(?:SELECT|VALUES|WITH)\b)({_QUALIFIED})\s*+(\()?",
    re.I,
)
_CLAUSE = r"(?:WHERE|GROUP|ORDER|LIMIT|JOIN|INNER|LEFT|RIGHT|FULL|CROSS|NATURAL|UNION|EXCEPT|INTERSECT|HAVING|WINDOW|OFFSET|FETCH|FOR|ON|USING|TABLESAMPLE|TO|INTO|WITH|SELECT|RETURNING)\b"
_ALIAS = re.compile(rf"\s*+(?:AS\s++)?(?!{_CLAUSE}){_NAME}(?:\s*+\([^()]*\))?", re.I)
_COMMA = re.compile(r"\s*+,")
_NAMED = re.compile(rf"\b(?:JOIN(?:\s++LATERAL)?|COPY|TABLE)\s++(?:ONLY\s++)?({_QUALIFIED})(\s*+\()?", re.I)
_CALLED = re.compile(rf"({_NAME}\s*+\.\s*+{_NAME})\s*+\(")
# functions whose parentheses hold a FROM of their own (`extract(year FROM ts)`, `trim(x FROM y)`)
_FROM_FUNCTIONS = re.compile(r"\b(?:extract|trim|substring|overlay|position)\s*\([^()]*\)", re.I)
# a read narrowed to some rows: a LIMIT, a sample, or a WHERE comparing a column (`WHERE 1=1`,
# `WHERE true` narrow nothing); without one, a read takes the whole table
_LIMITS = re.compile(r"\b(?:LIMIT|FETCH\s+FIRST|TABLESAMPLE)\b", re.I)
_WHERE = re.compile(r"\bWHERE\b(.*)", re.I | re.S)
_CTE = re.compile(rf"\b({_NAME})(?:\s*+\([^()]*\))?\s++AS\s++(?:NOT\s++)?(?:MATERIALIZED\s++)?\(", re.I)


def _name(text: str) -> str:
    """A name as the server resolves it: unquoted parts folded to lower case, quotes dropped."""
    return ".".join(part[1:-1] if part.startswith('"') else part.lower() for part in re.findall(_NAME, text))


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
        # names are read from the code (strings and comments blanked), customers from the text
        # (comments blanked: a query tag after `= $1` hid the customer, one naming another added it)
        code, text = split(st.statement, st.source)
        said = plain(text, st.source)  # `'C1' = customer_id`, `_utf8mb4'K1'` ... as `customer_id = 'C1'`
        named = st.tables or self._tables_in(st, code) or self._sources_in(st, code)
        if st.partial:  # an object audit's lines name only the audited tables of a join: the text the rest
            named = [*named, *(t for t in self._tables_in(st, code) if t not in named)]
        ignored = set(db.ignore_schemas) if db else set()
        tables = [t for t in named if t.split(".", 1)[0] not in ignored or "." not in t]
        if st.source == "mariadb":  # server_audit names `database.table`; the catalog keys tables by name
            tables = [t.split(".", 1)[1] if t.startswith(f"{st.database}.") else t for t in tables]
        if st.source == "pgaudit":
            code, said = self._routine_variables(st, tables, code, said)
        if not tables and not st.denied:
            return None
        # a copy reads its query's tables; the one it fills is written, not read, nor sized (a
        # review's `INSERT INTO cardholders … SELECT … FROM staging` counted all of cardholders)
        copied, read = _COPIES.search(code), []
        if copied:
            query, target = code[copied.start("select") :], _target(code, tables)
            read = [t for t in tables if t != target and _table_named(query, t)]
        if read:
            tables, code = read, query
        copies = bool(read)
        fields: list[str] = []
        subjects: list[str] = []
        unlogged = 0  # customers compared through placeholders whose values the log does not carry
        for name in tables:
            found = self.m.table(st.database, name)
            if found is None:
                self._gap("table", f"{st.database}.{name}")
                fields.append(f"db:{st.database}.{name}")
                continue
            _, entry = found
            fields += [f for f in _fields_read(entry, code) if f not in fields]
            if entry.customer_key and not _names_its_customers(code, entry.customer_key, st.source):
                continue  # `WHERE customer_id = 'C1' OR 1=1` names a customer and reads every row
            named, unseen = _subjects(entry, said, st.parameters, st.source)
            subjects += [s for s in named if s not in subjects]
            unlogged += unseen
            subjects = list(dict.fromkeys(subjects))  # `IN ('C1', 'C1')` is one customer
        if subjects and self._others_joined(st, code):
            # a probe's teller read 1 000 balances of every branch "of the same product as C000003":
            # booked as that customer's, the counter's 2 000 rows per customer passed them; read as
            # no one's, they count as the rows they are
            subjects = []
        if not fields and not st.denied and (st.command == "UPDATE" or _ONLY_COUNTS.search(code)):
            # a count, or an update of none of the catalogued columns, reads and writes no customer's
            # data (a probe's DBA `SELECT count(*)` and `UPDATE accounts SET org_id` were counted as
            # records and raised bulk and unauthorized-access alerts); a whole row read another way
            # (`SELECT c FROM customers c`, `TABLE customers`) is still a read
            return None
        rows = st.rows
        reads = st.command in _READS or copies
        folded = bool(rows and not subjects and _FOLDS.search(code))
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
            elif not subjects and not unlogged and not st.denied and reads:
                # a read of unknown size: SELECT * FROM cardholders may be one row or all of them
                self._gap("rows_unknown", f"{st.database}.{'+'.join(tables)}")
        if (rows is None or folded) and not subjects and not st.denied:
            # all of a table the bank gives the size of counts that many (a probe's `COPY
            # core.accounts TO` counted as one record, a `string_agg` over 700 customers as one);
            # else the query counts by what it names
            rows = (
                self._whole_table(st, code, tables, reads) if fields else 0
            ) or rows  # count(*) reads none
        # a page of a table no WHERE narrows: what its outer LIMIT returns, counted so, at most the
        # table's rows where sources.yaml gives them (a probe's 600 transactions paged 50 at a time
        # were 12 records, `SELECT * FROM cardholders LIMIT 60` one); beside a WHERE that narrows
        # it, a LIMIT is a cap, not a count (a GUI client adds LIMIT 500 to every query), and
        # `WHERE 1=1` narrows nothing (a review's: it made a LIMIT 500 one record)
        where = _top_where(code)
        if (
            rows is None
            and reads
            and fields
            and not subjects
            and not st.denied
            and not (where and self._narrowed(st, where, tables))
        ):
            rows = self._capped(st, tables, _limit(code))
        if unlogged:
            # the customers are bound values the log does not carry: said so, with the setting that
            # logs them (a probe's teller day with log_parameter off named no one, and the only gap
            # was `rows_unknown`); their rows still count, unnamed, as bulk_query counts a report's
            # (turning log_parameter off must not hide a loop over every customer)
            self._gap("parameters_not_logged", f"{st.database}.{'+'.join(tables)}")
        if rows is None:
            # counted by query when the log has no count: each customer named or bound at least one
            rows = len(subjects) + unlogged or (0 if st.denied else 1)
        if st.truncated:
            self._gap("query_truncated", f"{st.database}.{'+'.join(tables)}")
        return STRICT["access"](
            event_id=st.event_id,
            ts=st.ts_ms,
            actor_id=self._actor(st),
            purpose=self.m.actors.purposes.get(st.application or ""),
            system=db.system if db else st.database or "unknown",
            action=Action.query if copies else _ACTIONS.get(st.command.upper(), Action.query),
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
        if f.renamed_from is not None and (
            d is None or self.m.directory(account, f.renamed_from) is not None
        ):
            return (
                None  # moved within what the mapping watches (`.filepart` -> the name): counted at its close
            )
        if d is None:
            self._gap("sftp_path", f"{f.account}:{f.path.rsplit('/', 1)[0]}/")
            return None
        sent = f.bytes_written if d.sends_on == "write" else f.bytes_read
        if sent <= 0:
            return None  # the other direction: data coming in, not leaving
        records = -(-sent // d.bytes_per_record) if d.bytes_per_record else 0
        # the ids reach alerts (evidence, summary): a file named for its customer ("C000042_stmt.pdf")
        # is shown by its declared directory and a keyed fingerprint of its name
        shown = self._file(f.path, d.pattern)
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

    def _file(self, path: str, pattern: str) -> str:
        """The path with each part below its declared directory fingerprinted: a folder may be
        named for its customer too (a probe's `/upload/C000042/statement.pdf` reached a critical
        alert's summary)."""
        if self.fingerprint is None:
            return path
        declared = re.split(r"[*?\[]", pattern, maxsplit=1)[0].rpartition("/")[0] + "/"
        base = declared if path.startswith(declared) else path.rpartition("/")[0] + "/"
        return base + "/".join(map(self.fingerprint, path[len(base) :].split("/")))

    def _routine_variables(self, st: DbStatement, tables: list[str], code: str, said: str) -> tuple[str, str]:
        """A PL/pgSQL function's statement compares the customer key with its variable: the customer
        is the one value the log gives for the function's variables (a probe's teller day through
        `core.get_balance(p_cust)` named no customer, and was a high art. 5 alert); where several
        hold a value, which is the customer is unknown, and said as the gap `routine_variable`."""
        if not st.parameters or _PLACEHOLDER.search(code):
            return code, said  # a client's own statement (placeholders, or no parameters): no variable
        entries = [found[1] for name in tables if (found := self.m.table(st.database, name))]
        columns = frozenset(c.lower() for e in entries for c in (*e.columns, e.customer_key or ""))
        for key in dict.fromkeys(e.customer_key for e in entries if e.customer_key):
            code, said, read = routine_variable(code, said, key, st.parameters, columns)
            if read is False:
                self._gap("routine_variable", f"{st.database}.{'+'.join(tables)}")
        return code, said

    def _others_joined(self, st: DbStatement, code: str) -> bool:
        """Whether the query joins a customer table's rows the customers it names do not bound: each
        catalogued table with a customer key that its outer query reads (by alias) must be one the
        WHERE compares the key of with values, or joined to one by the key (`ON a.customer_id =
        c.customer_id`, `USING (customer_id)`). `accounts a1 JOIN accounts a2 ON a2.product =
        a1.product WHERE a1.customer_id = 'C1'` returns every holder of C1's product. Each query
        of a UNION on its own."""
        if not _JOINED.search(code):
            return False  # one relation read: most statements
        return any(self._joins_others(st, query) for query in _united(code) or [code])

    def _joins_others(self, st: DbStatement, code: str) -> bool:
        refs: list[tuple[str, str]] = []  # (alias, customer key) of each customer table read
        joined: list[tuple[str, str]] = []  # aliases joined by a customer key
        for m in _REFERENCE.finditer(code):
            found = self.m.table(st.database, _name(m["table"]))
            if found is None or not found[1].customer_key:
                continue
            if code.count("(", 0, m.start()) > code.count(")", 0, m.start()):
                continue  # a subquery's table: its rows are not the statement's
            alias = _name(m["alias"] or m["table"]).rsplit(".", 1)[-1]
            key = found[1].customer_key.lower()
            if m["using"] and key in {_name(c) for c in m["using"].split(",")}:
                joined += [(alias, other) for other, _ in refs]
            refs.append((alias, key))
        if len(refs) < 2:
            return False
        keys = {key for _, key in refs}
        for a, ka, b, kb in _KEYS_EQUAL.findall(code):
            if _name(ka) in keys and _name(kb) in keys:
                joined.append((_name(a).rsplit(".", 1)[-1], _name(b).rsplit(".", 1)[-1]))
        # the WHERE's terms, and a join's ON without an OR (`ON a2.product = a1.product AND
        # a2.customer_id = 'C1'` bounds a2)
        ons = [on for on in _ON.findall(code) if not _OR.search(on)]
        where = plain(" ".join([_top_where(code) or "", *ons]), st.source)
        bounded = {
            _name(alias).rsplit(".", 1)[-1] for alias, key in _KEY_VALUED.findall(where) if _name(key) in keys
        }
        if any(not alias for alias, key in _KEY_VALUED.findall(where) if _name(key) in keys):
            return False  # an unqualified key: USING's, or the one table's that has it
        linked: dict[str, set[str]] = {}
        for a, b in joined:
            linked.setdefault(a, set()).add(b)
            linked.setdefault(b, set()).add(a)
        reached, todo = set(bounded), list(bounded)
        while todo:  # each alias once: a chain of thousands of joins is read in its length
            for other in linked.get(todo.pop(), ()):
                if other not in reached:
                    reached.add(other)
                    todo.append(other)
        return any(alias not in reached for alias, _ in refs)

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

    def _tables_in(self, st: DbStatement, code: str) -> list[str]:
        """Catalogued tables a statement names in its text (a denied query, a cursor), outside its
        strings and comments (`code`)."""
        db = self.m.databases.get(st.database)
        return [] if db is None else _named_tables(db.tables, code)

    def _whole_table(self, st: DbStatement, code: str, tables: list[str], reads: bool) -> int:
        """The rows sources.yaml says the largest of `tables` holds, if the statement reads or
        exports all of it; else 0. What narrows a table is in the query that reads it (`_clause`:
        a LIMIT in a subquery of the select list narrows nothing): a LIMIT or sample, or a WHERE
        that compares one of its catalogued columns or its customer key (`WHERE 1=1` does not). A
        join is narrowed as one: a WHERE comparing another joined table's column bounds the rows
        this one joins (a probe's 50 large transactions joined to their cardholders counted all 700
        cardholders, as transaction records)."""
        if not (reads or st.command in ("COPY", "DECLARE CURSOR")):
            return 0
        sizes: list[int] = []
        for name in tables:
            found = self.m.table(st.database, name)
            if found is None or not found[1].rows:
                continue
            clause = _clause(code, name)
            where = _top_where(clause)
            if not _LIMITS.search(clause) and not (where and self._narrowed(st, where, tables)):
                sizes.append(found[1].rows or 0)
        return max(sizes, default=0)

    def _capped(self, st: DbStatement, tables: list[str], rows: int | None) -> int | None:
        """`rows`, at most the most rows sources.yaml gives any of `tables` (all of them given)."""
        sizes = [found[1].rows if found else None for found in (self.m.table(st.database, t) for t in tables)]
        if rows is None or not sizes or None in sizes:
            return rows
        return min(rows, max(s or 0 for s in sizes))

    def _narrowed(self, st: DbStatement, where: str, tables: list[str]) -> bool:
        """Whether a WHERE bounds the rows of a statement's tables: it compares a catalogued column
        or the customer key of any of them (a join is narrowed as one)."""
        entries = [found[1] for name in tables if (found := self.m.table(st.database, name))]
        return bool(where.strip()) and any(_bounded(where, _narrowing(e), st.source) for e in entries)

    def _sources_in(self, st: DbStatement, code: str) -> list[str]:
        """What a read or export of a pgaudit log that names no catalogued table takes its rows from,
        by name (a view or a function over a catalogued table, a copy of one, pgaudit with
        log_relation off): each becomes a table gap and a field `db:...` as any unknown table,
        where it was dropped unseen (a probe's `SELECT * FROM core.all_phones()`, 700 customers).
        Not the server's own: its schemas (`ignore_schemas`), `pg_` schemas or unqualified `pg_`
        names, unqualified functions; nor a query's CTE names."""
        if st.source != "pgaudit" or not (st.command in _READS or st.command.startswith(("COPY", "DECLARE"))):
            return []
        text = _FROM_FUNCTIONS.sub(" ", code)
        ctes = {_name(name) for name in _CTE.findall(text)}
        named = [
            *_from_items(text),
            *_NAMED.findall(text),
            *((called, "(") for called in _CALLED.findall(text)),
        ]
        found: list[str] = []
        for raw, call in named:
            name = _name(raw)
            first = name.split(".", 1)[0]
            if name in ctes or first.startswith("pg_") or ("." not in name and call) or name in found:
                continue
            found.append(name)
        return found


# a table a query reads and its alias: `FROM core.accounts a1`, `JOIN core.accounts AS a2 ... USING
# (customer_id)`, an item of a FROM list
_REFERENCE = re.compile(
    rf"(?:\bFROM|\bJOIN|,)\s*+(?P<table>{_QUALIFIED})(?:\s++(?:AS\s++)?(?!{_CLAUSE}|FROM\b)(?P<alias>{_NAME}))?"
    rf"(?:\s*+\bUSING\s*+\((?P<using>[^()]*+)\))?",
    re.I,
)
# a query reading more than one relation: a JOIN, or a FROM list (`FROM a x, b`)
_PLACEHOLDER = re.compile(r"\$\d")  # a client's bound value: `$1`
_JOINED = re.compile(r"\bJOIN\b|\bFROM\s++[^\s,()]++(?:\s++(?:AS\s++)?[^\s,()]++)?\s*+,", re.I)
_ON = re.compile(
    r"\bON\b(.*?)(?=\b(?:JOIN|WHERE|GROUP|ORDER|LIMIT|UNION|INNER|LEFT|RIGHT|FULL|CROSS|NATURAL)\b|$)",
    re.I | re.S,
)
_OR = re.compile(r"\bOR\b|\|\||\bXOR\b", re.I)
_KEYS_EQUAL = re.compile(rf"({_NAME})\s*+\.\s*+({_NAME})\s*+=\s*+({_NAME})\s*+\.\s*+({_NAME})")
_KEY_VALUED = re.compile(
    rf"(?:({_NAME})\s*+\.\s*+)?({_NAME})\s*+(?:<=>|=|\bIN\b)\s*+(?:\(\s*+|ANY\s*+\(\s*+ARRAY\s*+\[\s*+)?(?:''|\"\"|\$\d|\?|\d)",
    re.I,
)


def _from_items(text: str) -> Iterator[tuple[str, str]]:
    """(name, "(" if called) of each item of each FROM list, its call's arguments and its alias
    passed over: `FROM generate_series(1,1) g, core.all_phones() p` names both."""
    closing: dict[int, int] | None = None
    for start in _FROM.finditer(text):
        pos = start.end()
        while item := _ITEM.match(text, pos):
            yield item[1], item[2] or ""
            if item[2]:
                closing = _closing(text) if closing is None else closing
                pos = closing.get(item.end() - 1, len(text))
            else:
                pos = item.end()
            if alias := _ALIAS.match(text, pos):
                pos = alias.end()
            if not (comma := _COMMA.match(text, pos)):
                break
            pos = comma.end()


def _limit(code: str) -> int | None:
    """The rows the outer query's limit allows (one in no parentheses: a subquery's limits its own),
    if any."""
    for m in reversed(list(_LIMIT_ROWS.finditer(code))):
        if code.count("(", 0, m.start()) == code.count(")", 0, m.start()):
            return int(m.group(1) or m.group(2))
    return None


def _target(code: str, tables: list[str]) -> str | None:
    """Of `tables`, the one a copy fills, named after its INTO or TABLE: an upsert names it again in
    its query (`… WHERE NOT EXISTS (SELECT 1 FROM target …)`), unread."""
    found = _COPY_TARGET.match(code)
    if found is None:
        return None
    name = _name(found.group(1)).rsplit(".", 1)[-1]
    return next((t for t in tables if t.rsplit(".", 1)[-1].lower() == name), None)


def _table_named(code: str, table: str) -> re.Match[str] | None:
    """Where `code` names `table` (its last part, qualified or not, quoted or not)."""
    last = re.escape(table.rsplit(".", 1)[-1])
    return re.search(rf"(?<![\w$.])(?:{_NAME}\s*+\.\s*+)*+\"?{last}\"?(?![\w$])", code, re.I)


def _clause(code: str, table: str) -> str:
    """The query that reads `table` in `code`, from where it names the table to the end of that
    query, the subqueries in it blanked; the whole code where the table is not named as written."""
    named = _table_named(code, table)
    if named is None:
        return code
    start, closing = named.start(), _closing(code)
    opened = [i for i, c in enumerate(code[:start]) if c == "("]
    enclosing = [i for i in opened if closing.get(i, len(code) + 1) > start]
    end = closing[enclosing[-1]] - 1 if enclosing and enclosing[-1] in closing else len(code)
    out, pos = [], start
    for i in sorted(k for k in closing if start <= k < end):
        if i >= pos:
            out.append(code[pos:i])
            pos = closing[i]
    out.append(code[pos:end])
    return " ".join(out)


def _closing(text: str) -> dict[int, int]:
    """Each opening parenthesis's place -> the place past its closing one, in one pass (one left
    open: none)."""
    opened: list[int] = []
    found: dict[int, int] = {}
    for j, c in enumerate(text):
        if c == "(":
            opened.append(j)
        elif c == ")" and opened:
            found[opened.pop()] = j + 1
    return found


def _named_tables(tables: Iterable[str], code: str) -> list[str]:
    """Of `tables` (`schema.table` or `table`), those `code` names, qualified or not."""
    words = {(f"{a}.{b}" if b else a).lower() for a, b in _WORD.findall(code)}
    return [q for q in tables if q.lower() in words or q.rsplit(".", 1)[-1].lower() in words]


def _fields_read(entry: TableEntry, code: str) -> list[str]:
    """The catalogued columns a statement's `code` names, or all of them for a select list's `*` (a
    rough but honest reading: SQL is not parsed, so a column named anywhere counts as read; a
    comment or a string names none: a probe's `/*A7 mixed case*/` tag had read every column)."""
    if _STAR.search(_NO_COLUMNS.sub(" ", code)) or _WHOLE_TABLE_COPY.match(code):
        return list(dict.fromkeys(entry.columns.values()))
    words = {w.lower() for pair in _WORD.findall(code) for w in pair if w}
    return list(dict.fromkeys(f for col, f in entry.columns.items() if col.lower() in words))


# -- an access's field list that is a SQL text -------------------------------------------------
# A DWH or BI tool may log the statement it ran where an access's fields belong (a probe's
# `["SELECT cust_name, cert_no, mobile_no, aum_bal FROM dw.cust_360"]`, judged as naming no data).
# Its outer select list says what was read or taken out; nothing else of the text is kept (its
# WHERE may compare an ID number). Read as the raw sources read a statement: strings and comments
# blanked (`split`), names folded as the server folds them (`_name`), tables found as `_tables_in`.
_STATEMENT = re.compile(r"\s*+(?:\(\s*+)*+(?:SELECT|WITH)\s", re.I)
# a sealed value (streams/personal_numbers.py: `{resident_id:…}`) is a literal, no column
_SEALED = re.compile(r"\{[^{}]*+\}")
# what opens, nests, splits and ends a select list
_LIST_TOKENS = re.compile(
    r"[(),]|\b(?:SELECT|FROM|INTO|WHERE|GROUP|HAVING|ORDER|LIMIT|UNION|EXCEPT|INTERSECT|WINDOW|FETCH|OFFSET)\b",
    re.I,
)
_MODIFIERS = re.compile(
    r"\s*+(?:(?:DISTINCT\s++ON\s*+\([^()]*+\)|DISTINCT|ALL|UNIQUE|TOP\s++\d++|SQL_\w++|STRAIGHT_JOIN|HIGH_PRIORITY)\s*+)*+",
    re.I,
)
_STAR_ITEM = re.compile(rf"\s*+(?:{_QUALIFIED}\s*+\.\s*+)?\*\s*+")
# an item's tokens: a name (qualified or not), a number, a `::` cast, any other character
_TOKEN = re.compile(rf"({_QUALIFIED})|\d[\w.]*+|(::)|(\S)")
# the words of an expression that name no column: SQL's own, a date part, a type after a cast
# fmt: off
_NOT_COLUMNS = frozenset({
    "SELECT", "FROM", "AS", "CASE", "WHEN", "THEN", "ELSE", "END", "NULL", "TRUE", "FALSE", "UNKNOWN",
    "AND", "OR", "NOT", "XOR", "IS", "IN", "LIKE", "ILIKE", "RLIKE", "REGEXP", "SIMILAR", "BETWEEN",
    "DISTINCT", "ALL", "ANY", "SOME", "EXISTS", "CAST", "INTERVAL", "OVER", "PARTITION", "BY", "ORDER",
    "ASC", "DESC", "NULLS", "FIRST", "LAST", "ROWS", "ROW", "RANGE", "UNBOUNDED", "PRECEDING",
    "FOLLOWING", "CURRENT", "FILTER", "WITHIN", "GROUP", "ESCAPE", "COLLATE", "AT", "TIME", "ZONE",
    "LOCAL", "DATE", "TIMESTAMP", "YEAR", "MONTH", "DAY", "HOUR", "MINUTE", "SECOND", "EPOCH", "WEEK",
    "QUARTER", "DOW", "DOY", "BOTH", "LEADING", "TRAILING", "FOR", "SEPARATOR", "USING", "PRECISION",
    "VARYING", "DIV", "MOD", "CURRENT_DATE", "CURRENT_TIME", "CURRENT_TIMESTAMP", "CURRENT_USER",
    "SESSION_USER", "SYSDATE", "SYSTIMESTAMP", "ROWNUM", "LEVEL", "LOCALTIME", "LOCALTIMESTAMP"
})
# fmt: on


def is_statement(entry: str) -> bool:
    """A field list's entry is a SELECT statement's text."""
    return _STATEMENT.match(entry) is not None


def _select_items(code: str) -> tuple[list[str], list[str]]:
    """The items of the select lists of `code`, split at their commas: (the outer ones, the least
    nested SELECTs': each query a UNION joins; the rest: a CTE's, a FROM's or a condition's
    subquery, whose columns the outer list may rename)."""
    depth, least, starts = 0, None, []
    for m in _LIST_TOKENS.finditer(code):
        token = m.group()
        depth += (token == "(") - (token == ")")
        if token.upper() == "SELECT":
            least = depth if least is None else min(least, depth)
            starts.append((depth, m.end()))
    outer: list[str] = []
    inner: list[str] = []
    for d, at in starts:
        (outer if d == least else inner).extend(_list_at(code, _MODIFIERS.match(code, at).end()))  # type: ignore[union-attr]
    return outer, inner


def _list_at(code: str, at: int) -> list[str]:
    """The items of the select list that begins at `at`: to its FROM (INTO, WHERE ...) or the
    parenthesis closing its query."""
    items, depth, start, end = [], 0, at, len(code)
    for m in _LIST_TOKENS.finditer(code, at):
        token = m.group()
        if token == "(":
            depth += 1
        elif token == ")":
            depth -= 1
            if depth < 0:
                end = m.start()
                break
        elif depth:
            continue
        elif token == ",":
            items.append(code[start : m.start()])
            start = m.end()
        else:
            end = m.start()
            break
    items.append(code[start:end])
    return items


def _select_columns(code: str) -> Iterator[tuple[str, str, bool, bool]]:
    """(qualifier, column, quoted, outer) of each column a select list names, (qualifier, "*")
    for every column: through functions, casts and CASE, an alias passed over, a scalar subquery
    read by its own select list. `quoted`: the column's name is in double quotes; `outer`: the
    statement's own list's (`_select_items`)."""
    outer, inner = _select_items(code)
    for item, own in chain(zip(outer, repeat(True)), zip(inner, repeat(False))):
        yield from ((q, c, quoted, own) for q, c, quoted in _item_columns(item))


def _item_columns(item: str) -> Iterator[tuple[str, str, bool]]:
    """(qualifier, column, quoted) of each column one select list item names (`_select_columns`)."""
    if _STAR_ITEM.fullmatch(item) is not None:
        yield (_name(item.rsplit(".", 1)[0]) if "." in item else ""), "*", False
        return
    tokens = list(_TOKEN.finditer(item))
    if len(tokens) > 1 and _alias(tokens[-1], tokens[-2]):
        tokens.pop()
    closing: dict[int, int] | None = None
    past = -1  # where a scalar subquery read as a whole ends
    for i, t in enumerate(tokens):
        if t.start() < past:
            continue
        after = tokens[i + 1] if i + 1 < len(tokens) else None
        if t.group() == "(" and after is not None and (after[1] or "").upper() in ("SELECT", "WITH"):
            closing = _closing(item) if closing is None else closing
            past = closing.get(t.start(), len(item))
            yield from ((q, c, x) for q, c, x, own in _select_columns(item[t.end() : past - 1]) if own)
            continue
        name = t[1]
        if name is None or ("." not in name and name.upper() in _NOT_COLUMNS):
            continue
        before = tokens[i - 1].group() if i else ""
        if (after is not None and after.group() == "(") or before == "::" or before.upper() == "AS":
            continue  # a function's name, a cast's type
        qualifier, _, column = _name(name).rpartition(".")
        yield qualifier, column, name.endswith('"')


def _alias(last: re.Match[str], before: re.Match[str]) -> bool:
    """The item's last token is its alias: a name after AS, or after a name, a literal or a `)`."""
    if last[1] is None or "." in last[1] or last[1].upper() in _NOT_COLUMNS:
        return False
    prev = before.group()
    if prev.upper() == "AS":
        return True
    return (
        (before[1] is not None and prev.upper() not in _NOT_COLUMNS)
        or prev in (")", "'", '"')
        or prev[0].isdigit()
    )


class StatementFields:
    """The catalog field ids a field list's SQL text (`is_statement`) stands for on a system: each
    column of its select list as the system's catalogued tables the statement names map it
    (sources.yaml `databases.<db>.tables.<t>.columns`, as a raw source reads it), else as the
    catalog spells it (`Catalog.field_spelling`: cert_no, t_card.cvv2); a `*` over those tables
    is all of their columns. A column neither knows is `UNREAD_COLUMN` + its name, and a `*` over
    a table the system does not catalogue stays `*`: parts naming no data, judged as such beside
    the fields named (`Catalog.access_class`). Memoized: a tool's statements repeat."""

    def __init__(self, catalog: Catalog, tables: Mapping[str, Mapping[str, Mapping[str, str]]]):
        self.catalog, self.tables = catalog, tables
        self.read = lru_cache(maxsize=4096)(self._read)

    def _read(self, text: str, system: str) -> tuple[str, ...]:
        # a backtick quotes a MySQL name, and there `"` a string; elsewhere `"` quotes a name
        dialect = "mariadb" if "`" in text else "pgaudit"
        code = split(_SEALED.sub("''", text), dialect)[0].replace("`", '"')
        tables = self.tables.get(system, {})
        named = _named_tables(tables, code)
        columns = {c.lower(): f for t in named for c, f in tables[t].items()}
        found: list[str] = []
        for qualifier, column, quoted, outer in _select_columns(code):
            if column == "*":
                found += [f for t in named for f in tables[t].values()]
                if outer and not (named and self._catalogued(code, tables)):
                    found.append("*")
                continue
            fid = columns.get(column.lower()) or self._field(qualifier, column)
            if fid is not None:
                found.append(fid)
            elif outer:  # a subquery's column the outer list renames: only if known
                # a name in double quotes may be MySQL's or Hive's string, a value: not said
                found.append(UNREAD_COLUMN + (f'"{len(found)}' if quoted else column[:64]))
        return tuple(dict.fromkeys(found))

    def _field(self, qualifier: str, column: str) -> str | None:
        """The field the catalog spells the column as: itself, or by its words (qualified, a C3
        field: `t_card.cvv2`)."""
        catalog = self.catalog
        if column in catalog.field_class:
            return column
        return catalog.field_spelling(column) or (
            catalog.field_spelling(f"{qualifier}.{column}") if qualifier else None
        )

    @staticmethod
    def _catalogued(code: str, tables: Mapping[str, Any]) -> bool:
        """Every relation the statement reads (`_from_items`, a JOIN) is one of `tables`."""
        relations = [raw for raw, _ in _from_items(code)] + [raw for raw, _ in _NAMED.findall(code)]
        return all(_named_tables(tables, _name(raw)) for raw in relations)
