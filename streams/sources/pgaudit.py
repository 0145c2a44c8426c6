"""pgaudit lines from PostgreSQL's log (its formats and languages are read into rows by
streams/sources/pg_log.py):

    <prefix>LOG:  AUDIT: SESSION|OBJECT,stmt_id,substmt_id,class,command,object_type,object_name,
                         statement,parameters,rows

The statement is CSV-quoted when it holds commas, quotes or newlines; with `pgaudit.log_parameter`
the bound parameters are one field, itself a CSV line of them (`_parameters`); `pgaudit.log_rows`
appends the row count. A join logs one
line per table with the same statement ids: they merge into one statement. A permission-denied
error (SQLSTATE 42501; in stderr, the message, with its STATEMENT line) is a denied attempt.
Only READ and WRITE classes are data access; everything else the server logs is skipped noise.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from dataclasses import asdict
from datetime import datetime, tzinfo
from functools import lru_cache
from typing import Any

from streams.codecs import DeadLetter, RawRecord
from streams.sources.envelope import Line
from streams.sources.lines import Unreadable, count, epoch_ms, readable_time, zone
from streams.sources.pg_log import MAX_PREFIX, Bad, PostgresLog, Row, unwrap
from streams.sources.pg_messages import DENIED
from streams.sources.records import DbStatement, Parsed

_DATA_CLASSES = ("READ", "WRITE")
_NOT_ACCESS = frozenset({"PREPARE", "DEALLOCATE"})
# pgaudit.log_statement_once: a statement's later lines (a join's other tables) log this for its
# text and parameters, which are on its first line (pgaudit README, "pgaudit.log_statement_once")
_ONCE = "<previously logged>"
_ONCE_UNREAD = (
    "pgaudit.log_statement_once: this table's line refers to its statement's first line, which was "
    "not read before it (lost, or completed before this line came): the columns and customers it "
    "read are unknown; turn pgaudit.log_statement_once off to log them on every line"
)
# A query string holding several statements (psql -c, a script, a driver's batch): pgaudit logs the
# whole string on each statement's line. Its pieces, quotes, dollar quotes and comments kept whole:
_SQL_PIECE = re.compile(
    r"""'(?:[^']|'')*'|"(?:[^"]|"")*"|(\$\w*\$).*?\1|--[^\n]*|/\*.*?\*/|[^'";$/-]+|.""", re.S
)
_SCRIPT = "\x1fscript"  # carry key suffix: how far a session's multi-statement string is read
# A statement's lines are written within moments of each other: a line of the same server this much
# newer means no more are coming for a statement still open (its session may never log again).
HOLD_MS = 1000


class PgauditParser:
    unwrap = staticmethod(unwrap)  # a jsonlog record is JSON, but no shipper's envelope

    def __init__(self, log_line_prefix: str, csvlog: bool, log_rows: bool, timezone: str):
        self.log = PostgresLog(log_line_prefix, csvlog)
        self.log_rows, self.tz = log_rows, zone(timezone)

    def parse(
        self, items: list[tuple[RawRecord, Line]], carry: dict[str, Any], final: bool = False
    ) -> Parsed:
        """The statements these lines complete. A session's latest statement is carried to the next
        batch (`carry`: session -> Open, kept in the partition's checkpointed store) while more of
        its lines may come: a join's next table line, a denial's STATEMENT line. It is complete
        when the session logs another statement, when a line of its server is HOLD_MS newer, or
        when `final` says nothing more is coming for now (the partition is read to its end)."""
        rows, dead = self.log.rows(items)
        out = Parsed(dead=dead)
        newest: dict[str, int] = {}  # server -> its newest statement time in this batch
        for raw, line, row in rows:
            if row is None:
                why = self.log.unread(line.text[:MAX_PREFIX])
                if isinstance(why, Bad):
                    out.dead.append(DeadLetter(raw, "unparsed", why.field, why.message))
                else:
                    out.skipped[why] += 1
                continue
            session = row["session"] or f"{line.host or '-'}:{row['pid']}"
            held = Open.held(carry, session)
            if row["level"] == "STATEMENT":
                if held is None or not held.awaits_statement:
                    out.skipped["pgaudit: STATEMENT of a server message"] += 1
                else:
                    denied = held.parts[""][1]
                    denied.statement = row["msg"]
                    if not row["line_no"]:
                        denied.event_id += (
                            ":" + hashlib.blake2b(row["msg"].encode(), digest_size=6).hexdigest()
                        )
                    held.parts[""] = (raw, denied)
                    out.found += held.statements()  # a denial is whole with its statement
                    del carry[session]
                continue
            try:
                result = self._statement(row, line, session, carry)
            except Unreadable as e:
                result = Bad(e.field, e.message)
            if isinstance(result, tuple):
                result = self.log.misnamed(row, line.text) or result
            if isinstance(result, str):
                out.skipped[result] += 1
            elif isinstance(result, Bad):
                out.dead.append(DeadLetter(raw, "unparsed", result.field, result.message))
            else:
                key, st = result
                newest[st.host or "-"] = max(newest.get(st.host or "-", 0), st.ts_ms)
                if held is not None and key is not None and held.stmt == key[0]:
                    held.add(raw, key[1], st)  # another table of the statement, or a sub-statement
                    continue
                if st.statement == _ONCE:
                    out.dead.append(DeadLetter(raw, "unparsed", "statement", _ONCE_UNREAD))
                    continue
                if held is not None:
                    out.found += held.statements()  # the session moved on
                carry[session] = Open(key[0] if key else None, {key[1] if key else "": (raw, st)})
        for session in list(carry):
            if session.endswith(_SCRIPT):
                continue
            held = Open.load(carry[session])
            if final or newest.get(held.host, 0) - held.ts_ms > HOLD_MS:
                out.found += held.statements()
                del carry[session]
                carry.pop(session + _SCRIPT, None)  # its script, if any, is done: kept no longer
        # a statement counts at its last line: in the order statements completed
        out.found.sort(key=lambda rs: rs[0].offset)
        return out

    def _statement(
        self, row: Row, line: Line, session: str, carry: dict[str, Any]
    ) -> tuple[tuple[str, str] | None, DbStatement] | Bad | str:
        """(merge key, statement), a dead-letter reason, or the skip reason of a line."""
        msg, level = row["msg"], row["level"]
        if level == "ERROR":
            if not _is_denial(row):
                return "pgaudit: error other than permission denied"
            ts = self._ts(row, line)
            # a denial has no pgaudit statement id, and a script's denials share a millisecond: the
            # session's line number (%l, csvlog's session_line_num) tells them apart; without it, a
            # digest of its STATEMENT line does, added when that line comes (`parse`). Never the
            # record's offset: a line a shipper sends twice must stay one event.
            seq = f":{row['line_no']}" if row["line_no"] else ""
            return None, DbStatement(
                "pgaudit",
                f"pg:{session}:denied:{ts}{seq}",
                ts,
                line.host,
                row["db"],
                row["user"],
                row["app"] or None,
                _ip(row["client"]),
                "SELECT",
                [],  # the message names the table unqualified: the catalog finds it in the statement
                row.get("query", ""),
                denied=True,
            )
        if not msg.startswith("AUDIT: "):
            return "pgaudit: server message (not AUDIT)"
        try:
            fields = next(csv.reader(io.StringIO(msg[7:])))
        except (csv.Error, StopIteration):
            return Bad("message", "AUDIT payload is not valid CSV")
        if len(fields) < 9 or fields[0] not in ("SESSION", "OBJECT"):
            return Bad(
                "message",
                f"AUDIT payload has {len(fields)} fields; expected SESSION|OBJECT,stmt_id,substmt_id,class,"
                "command,object_type,object_name,statement,parameter[,rows]",
            )
        kind, stmt_id, sub_id, cls, command, _obj_type, obj_name, statement, *rest = fields
        if cls not in _DATA_CLASSES:
            return f"pgaudit: {cls} class (not data access)"
        if command in _NOT_ACCESS:
            return f"pgaudit: {command} (the EXECUTE that follows is the access)"
        rows = None
        if self.log_rows:
            if not rest or not rest[-1].isdigit():
                return Bad(
                    "rows",
                    "no row count ends the line: turn pgaudit.log_rows on, or set the source's log_rows: false",
                )
            rows = count(rest.pop(), "rows")
        # COPY <table> TO|FROM names no object and logs 0 rows: pgaudit never counts them
        if command == "COPY" and not obj_name:
            rows = None
            command = "COPY FROM" if cls == "WRITE" else command
        params = _parameters(rest[0]) if rest else []
        ts = self._ts(row, line)
        return (stmt_id, sub_id), DbStatement(
            "pgaudit",
            f"pg:{session}:{stmt_id}:{sub_id}:{ts}",
            ts,
            line.host,
            row["db"],
            row["user"],
            row["app"] or None,
            _ip(row["client"]),
            command,
            [_unquoted(obj_name)] if obj_name else [],
            statement
            if statement == _ONCE
            else _own_statement(carry, session, stmt_id, command, _unquoted(obj_name), statement),
            params,
            rows if command != "DECLARE CURSOR" else None,  # pgaudit does not audit FETCH
            partial=kind == "OBJECT",
        )

    def _ts(self, row: Row, line: Line) -> int:
        return readable_time("time", lambda: self._read_ts(row, line))

    def _read_ts(self, row: Row, line: Line) -> int:
        if row["epoch"]:
            return int(float(row["epoch"]) * 1000)
        text = row["time"]
        if not text:
            return line.ts_ms or 0
        stamp, _, tzname = text.partition(" ")[2].partition(" ")
        day = text.split(" ", 1)[0]
        dt = datetime.fromisoformat(f"{day} {stamp}")
        return epoch_ms(dt, _tz_of(tzname, self.tz))


def _parameters(field: str) -> list[str]:
    """The bound parameters, $1 first. pgaudit (1.7, log_audit_event) writes them as ONE field: each
    value CSV-quoted where it holds a comma, quote or newline, joined by commas, a NULL empty, and
    the whole CSV-quoted again. Read as one value, a JDBC statement binding (product, customer) named
    the customer `savings,C000006`, and five bound ids one customer that does not exist (probe_q5
    #1). `<none>` (no parameters), `<not logged>` (log_parameter off) and `<previously logged>`
    hold none; a NULL stays in its place as "" so $2 is still the second."""
    if field in ("<none>", "<not logged>", _ONCE):
        return []
    try:
        return next(csv.reader(io.StringIO(field)), [])
    except csv.Error:
        return []


def _own_statement(
    carry: dict[str, Any], session: str, stmt_id: str, command: str, table: str, text: str
) -> str:
    """The statement a line logs, out of a query string that holds several: its statements are
    logged in order, so each line takes the next one of its command that names its table (a join's
    other tables, same statement id, take the same one). Without this a script's every line read
    every column and customer of the whole script. The whole text when no piece fits."""
    key = session + _SCRIPT
    pieces = _split_statements(text)
    if len(pieces) < 2:
        carry.pop(key, None)
        return text
    digest = hashlib.blake2b(text.encode(), digest_size=8).hexdigest()
    read = carry.get(key)
    if not read or read[0] != digest:
        read = [digest, None, -1]
    if read[1] == stmt_id:
        return pieces[read[2]]
    verb = command.split(None, 1)[0].upper()
    named = re.compile(rf"(?<![\w$]){re.escape(table.rsplit('.', 1)[-1])}(?![\w$])", re.I) if table else None
    at = next(
        (
            i
            for i in range(read[2] + 1, len(pieces))
            if pieces[i].split(None, 1)[0].upper() in (verb, "WITH")
            and (named is None or named.search(pieces[i]))
        ),
        None,
    )
    if at is None:
        return text
    carry[key] = [digest, stmt_id, at]
    return pieces[at]


def _split_statements(text: str) -> tuple[str, ...]:
    """The statements of a query string, split at the semicolons outside quotes and comments."""
    if ";" not in text.rstrip().rstrip(";"):
        return (text,)
    return _pieces(text)


@lru_cache(maxsize=64)
def _pieces(text: str) -> tuple[str, ...]:
    """`_split_statements` of a string that may hold several: each of its lines asks, split once."""
    pieces, start = [], 0
    for m in _SQL_PIECE.finditer(text):
        if m.group(0) == ";":
            pieces.append(text[start : m.start()])
            start = m.end()
    pieces.append(text[start:])
    return tuple(p.strip() for p in pieces if p.strip())


class Open:
    """A session's statement that may get more lines: its parts by sub-statement id (a join's
    tables merge into one part), each with its latest record. A denial is one part, `""`."""

    __slots__ = ("stmt", "parts")

    def __init__(self, stmt: str | None, parts: dict[str, tuple[RawRecord, DbStatement]]):
        self.stmt, self.parts = stmt, parts

    @classmethod
    def held(cls, carry: dict[str, Any], session: str) -> Open | None:
        """The session's open statement in the carry, as a live object (kept there as one)."""
        value = carry.get(session)
        if value is None:
            return None
        carry[session] = found = cls.load(value)
        return found

    @classmethod
    def load(cls, value: Any) -> Open:
        """The live object, or rebuilt from the JSON a restored checkpoint holds."""
        if isinstance(value, Open):
            return value
        return cls(
            value["stmt"],
            {
                sub: (RawRecord(raw[0], raw[1], raw[2], None, timestamp=raw[3]), DbStatement(**st))
                for sub, raw, st in value["parts"]
            },
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "stmt": self.stmt,
            "parts": [
                [sub, [raw.topic, raw.partition, raw.offset, raw.timestamp], asdict(st)]
                for sub, (raw, st) in self.parts.items()
            ],
        }

    @property
    def awaits_statement(self) -> bool:
        return self.stmt is None and not self.parts[""][1].statement

    @property
    def ts_ms(self) -> int:
        return min(st.ts_ms for _, st in self.parts.values())

    @property
    def host(self) -> str:
        return next(iter(self.parts.values()))[1].host or "-"

    def add(self, raw: RawRecord, sub: str, st: DbStatement) -> None:
        held = self.parts.get(sub)
        if st.statement == _ONCE:  # the text and parameters are on the statement's first line
            first = (held or next(iter(self.parts.values())))[1]
            st.statement, st.parameters = first.statement, first.parameters
        if held is None or held[1].statement != st.statement:
            self.parts[sub] = (raw, st)
            return
        held[1].tables += [t for t in st.tables if t not in held[1].tables]
        held[1].partial = held[1].partial or st.partial
        self.parts[sub] = (raw, held[1])

    def statements(self) -> list[tuple[RawRecord, DbStatement]]:
        """The statement's accesses. `COPY (query) TO` logs the query's rows (and, with
        pgaudit.log_relation on, its tables) as sub-statements with the COPY's text, then the COPY
        itself with neither: one export of those rows, not a query of them and an export of
        nothing whose rows are unknown."""
        parts = list(self.parts.values())
        copies = {st.statement: raw for raw, st in parts if st.command == "COPY" and not st.tables}
        if not any(st.statement in copies and st.command != "COPY" for _, st in parts):
            return parts
        found = []
        for raw, st in parts:
            if st.statement in copies and st.command != "COPY":  # the query
                st.command = "COPY"
                found.append((copies[st.statement], st))  # counted at the COPY's line, the last
            elif st.statement not in copies:
                found.append((raw, st))
        return found


def _tz_of(name: str, default: tzinfo) -> tzinfo:
    """`UTC`/`GMT` or a numeric offset (`+08`) say themselves; an abbreviation (`CST`) is ambiguous,
    so the source's configured `timezone` decides."""
    if name in ("UTC", "GMT", ""):
        from datetime import UTC

        return UTC if name else default
    m = re.fullmatch(r"([+-])(\d\d):?(\d\d)?", name)
    if m:
        from datetime import timedelta, timezone

        delta = timedelta(hours=int(m.group(2)), minutes=int(m.group(3) or 0))
        return timezone(-delta if m.group(1) == "-" else delta)
    return default


def _is_denial(row: Row) -> bool:
    """An ERROR that refused access: SQLSTATE 42501 insufficient_privilege where the log has it
    (csvlog, jsonlog, `%e`), else the message, in any language PostgreSQL writes it in."""
    if row["sqlstate"]:
        return row["sqlstate"] == "42501"
    return DENIED.match(row["msg"]) is not None


def _unquoted(name: str) -> str:
    """A relation's name as its catalog has it: pgaudit quotes a part that is not all lower-case
    ASCII (`core."Accounts_Hist"`, `core."客户备注"`), doubling a quote inside."""
    return ".".join(
        q.replace('""', '"') if q else p for q, p in re.findall(r'"((?:[^"]|"")*)"|([^."]+)', name)
    )


def _ip(client: str) -> str | None:
    return client if client and client not in ("[local]", "") else None
