"""MariaDB / MySQL server_audit lines, as its file output writes them:

    timestamp,serverhost,username,host,connectionid,queryid,operation,database,object,retcode

or its syslog output (`server_audit_output_type=syslog`): a syslog header, whose time is the
line's, then the same fields without the timestamp.

With the TABLE event on, each table a query touches is a READ/WRITE line before the QUERY line of
the same (connection, query id): the QUERY line closes the statement and carries its return code.
The object of a QUERY line is the statement, single-quoted with backslash escapes (commas and
newlines inside). A table line names the table's database, the QUERY line the session's current
one: an access is of the tables' database (`cards.cardholders` read while connected to `crm` is
the card system's), one access per database when a query reads tables of several. server_audit
has no row count. The return code is MariaDB's error number (mariadb.com/kb "MariaDB Error Codes"):
0 ran; the access-denied errors on data (DENIED_CODES) are denied attempts, whose query has no
table lines and names its tables only in its text, where the catalog finds them; an interrupted
statement may have sent rows before it stopped, so it is still a read; any other error stopped
the statement before it read (unknown column, syntax, no such table ...): nothing was read.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime
from typing import Any

from streams.codecs import DeadLetter, RawRecord
from streams.sources.envelope import Line
from streams.sources.lines import Syslog, Unreadable, epoch_ms, readable_time, syslog, syslog_ms, zone
from streams.sources.records import DbStatement, Parsed

# ER_DBACCESS_DENIED_ERROR, ER_ACCESS_DENIED_ERROR (on a query: the FILE privilege an INTO OUTFILE
# export needs), ER_TABLEACCESS_DENIED_ERROR, ER_COLUMNACCESS_DENIED_ERROR, ER_PROCACCESS_DENIED_ERROR
# (a routine, which may read data). 1227 ER_SPECIFIC_ACCESS_DENIED_ERROR is a server privilege (SUPER,
# PROCESS), no customer's data, except on an export to a file: MariaDB 10.11 refuses a SELECT ... INTO
# OUTFILE without the FILE privilege so (a probe's refused exports were skipped as errors).
DENIED_CODES = frozenset({1044, 1045, 1142, 1143, 1370})
FILE_DENIED = 1227
# ER_QUERY_INTERRUPTED (KILL QUERY), ER_STATEMENT_TIMEOUT (max_statement_time): stopped while it ran
INTERRUPTED_CODES = frozenset({1317, 1969})
_FIELDS = (
    r"(?P<server>[^,]*),(?P<user>[^,]*),(?P<host>[^,]*),(?P<conn>\d+),"
    r"(?P<query>\d+),(?P<op>[A-Z_]+),(?P<db>[^,]*),(?P<rest>.*)"
)
_LINE = re.compile(r"(?P<ts>\d{8} \d\d:\d\d:\d\d)," + _FIELDS, re.S)  # server_audit_output_type=file
_SYSLOG_BODY = re.compile(_FIELDS, re.S)  # =syslog: the time is the syslog header's
_TABLE_OPS = frozenset({"READ", "WRITE"})
# MariaDB's own databases: a query's plan reads mysql.table_stats, column_stats and index_stats (its
# table lines come with the query's own); no customer's data is kept there
_SERVER_DATABASES = frozenset({"mysql", "information_schema", "performance_schema", "sys"})
# statements that read no rows: a prepared statement's text (its EXECUTE is logged with it, and its
# table lines, as the access), a table's definition or a query's plan (mysqldump's SHOW CREATE TABLE)
_NOT_ACCESS = {"PREPARE": "the EXECUTE that follows is the access", "DEALLOCATE": "not data access",
               "SHOW": "a definition, not rows", "DESCRIBE": "a definition, not rows",
               "DESC": "a definition, not rows", "EXPLAIN": "a plan, not rows",
               # a DBA's table maintenance and mysqldump's locks read no row out (a probe's ANALYZE,
               # OPTIMIZE, CHECK TABLE and LOCK TABLES raised bulk and unauthorized-access alerts)
               "ANALYZE": "table maintenance, no rows read out", "OPTIMIZE": "table maintenance, no rows read out",
               "CHECK": "table maintenance, no rows read out", "REPAIR": "table maintenance, no rows read out",
               "CHECKSUM": "table maintenance, no rows read out", "LOCK": "a lock, no rows read out",
               "UNLOCK": "a lock, no rows read out", "FLUSH": "server maintenance, no rows read out",
               # a definition changed (an index added on a PFI column reads no row out: a probe's
               # `ALTER TABLE cardholders ADD INDEX (mobile_phone)` was a query of phone numbers)
               "ALTER": "a definition, no rows read out"}  # fmt: skip
# ANALYZE of a table reads no row out (`ANALYZE TABLE t`); `ANALYZE DELETE FROM t` deletes its rows
_TABLE_WORK = re.compile(
    r"(?:\s+|\(|/\*.*?\*/|--[^\n]*\n|#[^\n]*\n)*\w+\s+(?:(?:LOCAL|NO_WRITE_TO_BINLOG)\s+)?TABLES?\b",
    re.I | re.S,
)
_SESSION_OPS = frozenset({"CONNECT", "DISCONNECT", "FAILED_CONNECT", "CHANGEUSER", "PROXY_CONNECT"})
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "0": "\0"}
# a statement's verb past the comments and parentheses before it (`/* teller-desk */ SELECT ...`)
_VERB = re.compile(r"(?:\s+|\(|/\*.*?\*/|--[^\n]*\n|#[^\n]*\n)*(\w*)", re.S)
_ANALYZED = re.compile(r"\s*(?:FORMAT\s*=\s*\w+)?", re.I)  # `ANALYZE FORMAT=JSON <statement>`
# SELECT ... INTO OUTFILE | DUMPFILE writes the rows to a file on the server: MariaDB's COPY ... TO
_INTO_FILE = re.compile(r"\bINTO\s+(?:OUTFILE|DUMPFILE)\b", re.I)
_LITERAL = re.compile(r"'(?:[^'\\]|\\.|'')*'" + r'|"(?:[^"\\]|\\.|"")*"', re.S)  # strings, backslash escapes


class MariadbAuditParser:
    def __init__(self, timezone: str, query_log_limit: int = 1024):
        self.tz, self.query_log_limit = zone(timezone), query_log_limit

    def parse(
        self, items: list[tuple[RawRecord, Line]], carry: dict[str, Any], final: bool = False
    ) -> Parsed:
        """`carry`: "server:connection" -> [query id, db.table...], the table lines of a query whose
        QUERY line has not come yet (the next batch, or a long query's end). One query runs at a
        time on a connection: a table line of another query replaces it, a disconnect drops it.
        Nothing waits to be emitted, so `final` changes nothing."""
        out = Parsed()
        for raw, line in items:
            m = _LINE.match(line.text)
            header = None
            if m is None and (header := syslog(line.text)) is not None:
                m = _SYSLOG_BODY.match(header.msg)
            if m is None:
                if line.text.count(",") >= 9:
                    out.dead.append(
                        DeadLetter(
                            raw,
                            "unparsed",
                            "message",
                            "not a server_audit line (timestamp,serverhost,username,host,connectionid,"
                            "queryid,operation,database,object,retcode)",
                        )
                    )
                else:
                    out.skipped["mariadb: not a server_audit line"] += 1
                continue
            g = m.groupdict()
            op, conn = g["op"], f"{g['server']}:{g['conn']}"
            if op in _TABLE_OPS:
                held = carry.get(conn)
                if held is None or held[0] != g["query"]:
                    held = carry[conn] = [g["query"]]
                if g["db"] not in _SERVER_DATABASES:  # the plan's statistics, not the query's tables
                    held.append(f"{g['db']}.{g['rest'].rstrip(',')}")
                continue
            if op in _SESSION_OPS:
                carry.pop(conn, None)
                out.skipped[f"mariadb: {op}"] += 1
                continue
            if op != "QUERY":
                out.skipped[f"mariadb: {op} (not data access)"] += 1
                continue
            statement, _, code = g["rest"].rpartition(",")
            if not (code.isascii() and code.isdigit() and len(code) < 10) or not (
                statement.startswith("'") and statement.endswith("'")
            ):
                out.dead.append(
                    DeadLetter(
                        raw, "unparsed", "object", "QUERY line without a quoted statement and return code"
                    )
                )
                continue
            held = carry.get(conn)
            seen = carry.pop(conn)[1:] if held is not None and held[0] == g["query"] else []
            error, text = int(code), _unquote(statement)
            denied = error in DENIED_CODES or (
                error == FILE_DENIED and _command(text) == "SELECT INTO OUTFILE"
            )
            if error and not denied and error not in INTERRUPTED_CODES:
                out.skipped["mariadb: statement failed before it read (an error, not a denial)"] += 1
                continue
            try:
                st = self._statement(g, header, line, raw, text, denied, seen)
                # the limit counts the logged (escaped) text between the quotes
                st.truncated = len(statement) - 2 >= self.query_log_limit
            except Unreadable as e:
                out.dead.append(DeadLetter(raw, "unparsed", e.field, e.message))
                continue
            if st.command in _NOT_ACCESS:
                out.skipped[f"mariadb: {st.command} ({_NOT_ACCESS[st.command]})"] += 1
                continue
            out.found += [(raw, one) for one in _per_database(st)]
        return out

    def _statement(
        self,
        g: dict[str, str],
        header: Syslog | None,
        line: Line,
        raw: RawRecord,
        text: str,
        denied: bool,
        seen: list[str],
    ) -> DbStatement:
        if header is None:
            ts = readable_time(
                "timestamp", lambda: epoch_ms(datetime.strptime(g["ts"], "%Y%m%d %H:%M:%S"), self.tz)
            )
        else:
            ts = readable_time("timestamp", lambda: syslog_ms(header, line, raw, self.tz))
        return DbStatement(
            "mariadb",
            f"my:{g['server']}:{g['conn']}:{g['query']}:{g.get('ts') or ts}",
            ts,
            line.host or g["server"],
            g["db"],
            g["user"],
            None,
            g["host"] or None,
            _command(text),
            seen,
            text,
            denied=denied,
        )


def _per_database(st: DbStatement) -> list[DbStatement]:
    """The statement as accesses of its tables' databases (each table line's `database.table`), not
    of the session's current database the QUERY line names: one per database, told apart by it."""
    databases = list(dict.fromkeys(t.split(".", 1)[0] for t in st.tables))
    if len(databases) < 2:
        st.database = databases[0] if databases else st.database
        return [st]
    return [
        replace(
            st,
            event_id=f"{st.event_id}:{db}",
            database=db,
            tables=[t for t in st.tables if t.startswith(f"{db}.")],
        )
        for db in databases
    ]


def _command(text: str) -> str:
    """The statement's verb, or `SELECT INTO OUTFILE` for a SELECT that exports to a server file
    (INTO OUTFILE or DUMPFILE, outside a string)."""
    words = text.lstrip("( \n").split(None, 1)
    verb = words[0] if words else ""
    if verb[:1] in ("/", "-", "#"):  # a comment first: a client's tag, or one to hide the verb
        verb = _VERB.match(text).group(1)  # type: ignore[union-attr]  # it matches any text
    verb = verb.upper()
    if verb == "ANALYZE" and not _TABLE_WORK.match(text):
        # `ANALYZE DELETE FROM t` runs the DELETE, and reports on it (`ANALYZE FORMAT=JSON SELECT`
        # too); its verb past the comments before either (`/* tag */ ANALYZE DELETE`)
        rest = text[_VERB.match(text).end() :]  # type: ignore[union-attr]  # it matches any text
        inner = rest[_ANALYZED.match(rest).end() :]  # type: ignore[union-attr]
        return _command(inner) if inner.strip() else verb
    # the regex only where the word is (a case-insensitive regex scans slowly)
    if verb in ("SELECT", "WITH") and "FILE" in text.upper() and _INTO_FILE.search(_LITERAL.sub("''", text)):
        return "SELECT INTO OUTFILE"
    return verb


def _unquote(quoted: str) -> str:
    body = quoted[1:-1]
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), body, flags=re.S)
