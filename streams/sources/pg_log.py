"""PostgreSQL's log as the server writes it (runtime-config-logging, "Where to Log"): stderr lines
behind its `log_line_prefix`, csvlog records, or jsonlog records (PostgreSQL 15+, one JSON object a
line, read as such whichever format the source is set to); in English or in a language PostgreSQL
translates it into (`lc_messages`, streams/sources/pg_messages.py). Each entry becomes a row of the fields
lifemon reads (time, user, database, application, client, pid, session, line number, SQLSTATE,
level, message; the query of an error in csvlog), whatever format it came in; an entry that gives
none is said why: lost data access (an AUDIT line, a denial) as a dead letter, anything else as
the skip reason it is counted under.
"""

from __future__ import annotations

import csv
import io
import re
from functools import cached_property
from typing import Any

import orjson

from streams.codecs import DeadLetter, RawRecord
from streams.sources.envelope import Line
from streams.sources.envelope import unwrap as unwrap_envelope
from streams.sources.lines import join_continuations
from streams.sources.pg_messages import DENIED, MARKERS, SEVERITY, TRANSLATIONS

Row = dict[str, str]

# log_line_prefix escapes (PostgreSQL docs, "log_line_prefix") -> what they match
_ESCAPES = {
    "a": r"(?P<app>.*?)",
    "u": r"(?P<user>.*?)",
    "d": r"(?P<db>.*?)",
    "r": r"(?P<client>[^\s(]*)(?:\(\d+\))?",
    "h": r"(?P<client>\S*?)",
    "b": r".*?",
    "p": r"(?P<pid>\d+)",
    "P": r"\d*",
    "t": r"(?P<time>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?: [A-Za-z0-9+:-]+)?)",
    "m": r"(?P<time>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+(?: [A-Za-z0-9+:-]+)?)",
    "n": r"(?P<epoch>\d+\.\d+)",
    "i": r".*?",
    "e": r"(?P<sqlstate>[0-9A-Z]{5})",
    "c": r"(?P<session>[0-9a-f]+\.[0-9a-f]+)",
    "l": r"(?P<line_no>\d+)",
    "s": r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?: [A-Za-z0-9+:-]+)?",
    "v": r"\S*?",
    "x": r"\d+",
    "Q": r"-?\d+",
}
# log_error_verbosity = verbose writes the SQLSTATE after the severity (`LOG:  00000: AUDIT: ...`), and
# a LOCATION line (untranslated in every language) after each message. A SQLSTATE holds a digit, so
# pgaudit's `AUDIT: ` is never taken for one
_STATE = r"(?:(?=[0-9A-Z]{0,4}\d)[0-9A-Z]{5}: )?"
_LEVEL = (
    r"(?P<level>LOG|ERROR|STATEMENT|DETAIL|HINT|CONTEXT|LOCATION|FATAL|PANIC|WARNING|NOTICE|INFO|DEBUG\d?):  "
    + _STATE
    + "(?P<msg>.*)"
)
# the same in the languages PostgreSQL translates its log into (lc_messages): the level is the marker,
# read as its English level (MARKERS); the longest first, so `致命错误:  ` is not taken for `错误:  `
_TRANSLATED_LEVEL = (
    "(?P<level>"
    + "|".join(re.escape(m) for m in sorted(MARKERS, key=len, reverse=True))
    + ")"
    + _STATE
    + "(?P<msg>.*)"
)
# any word of letters (in any script) before `:  `: a line in a language lifemon does not know
# fits the prefix with it
_UNKNOWN_LEVEL = r"(?P<level>[^\W\d_]+(?: [^\W\d_]+)?) ?:  (?P<msg>.*)"
# what a line that does not fit the configured prefix is: lost data access (an AUDIT line in any
# language, pgaudit's payload is never translated; a denial), another server line, or no PostgreSQL
# line at all
_ACCESS_LINE = re.compile(r":  AUDIT: |" + DENIED.pattern)
_ANY_LEVEL = re.compile(_LEVEL.split("(?P<msg>")[0] + "|" + "|".join(re.escape(m) for m in MARKERS))
PREFIX_FIX = "set raw_sources.pgaudit.log_line_prefix to the server's own (psql: SHOW log_line_prefix)"
_LANGUAGES = "English, or PostgreSQL 15's " + " ".join(TRANSLATIONS)
# The prefix's lazy `.*?` fields backtrack quadratically over a line with no level in it (a 32 KB
# line took 7 s): the prefix and level must fit in the line's first MAX_PREFIX characters, as a real
# prefix does (names are at most 63 bytes, a host name 255).
MAX_PREFIX = 1024
_CSV_START = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
# A jsonlog record always has this key (elog.c write_jsonlog); a shipper's envelope has none, and one
# that wraps a jsonlog line holds it escaped (`\"error_severity\":`)
_JSONLOG_KEY = b'"error_severity":'
# jsonlog keys (runtime-config-logging, "Using JSON-Format Log Output") -> a row's fields
_JSONLOG = {"time": "timestamp", "user": "user", "db": "dbname", "app": "application_name",
            "client": "remote_host", "pid": "pid", "session": "session_id", "line_no": "line_num",
            "sqlstate": "state_code", "query": "statement"}  # fmt: skip
# csvlog columns (PostgreSQL 13+): the ones lifemon reads
_C_TIME, _C_USER, _C_DB, _C_PID, _C_CLIENT, _C_SESSION, _C_LINE = 0, 1, 2, 3, 4, 5, 6
_C_SEVERITY, _C_STATE, _C_MESSAGE, _C_QUERY, _C_APP = 11, 12, 13, 19, 22


def prefix_pattern(log_line_prefix: str, level: str = _LEVEL) -> re.Pattern[str]:
    """A regex for lines written with this `log_line_prefix`, then the `level` (English severity
    words unless told). `%q` ends the part that processes without a session (checkpointer,
    autovacuum) leave out."""
    out, optional, i, seen = [], False, 0, set()
    while i < len(log_line_prefix):
        c = log_line_prefix[i]
        if c != "%" or i + 1 >= len(log_line_prefix):
            out.append(re.escape(c))
            i += 1
            continue
        m = re.match(r"-?\d*([a-zA-Z%])", log_line_prefix[i + 1 :])
        esc = m.group(1) if m else "%"
        i += 1 + (m.end() if m else 1)
        if esc == "%":
            out.append("%")
        elif esc == "q":
            if not optional:  # the first %q ends what sessionless processes print; a second adds nothing
                out.append("(?:")
            optional = True
        else:
            piece = _ESCAPES.get(esc, r".*?")
            name = re.search(r"\?P<(\w+)>", piece)
            if name and name.group(1) in seen:  # %r and %h both name the client: keep the first
                piece = re.sub(r"\?P<\w+>", "?:", piece)
            elif name:
                seen.add(name.group(1))
            out.append(r"\s*" + piece if m and m.group(0)[:-1] else piece)
    return re.compile("^" + "".join(out) + (")?" if optional else "") + level, re.S)


def unwrap(value: bytes) -> Line:
    """A record as a shipper sent it (plain, or in its envelope: streams/sources/envelope.py), but a
    jsonlog record, a JSON object like an envelope, is the log entry itself: kept whole for its row."""
    if value.startswith(b"{") and _JSONLOG_KEY in value:
        return Line(value.decode("utf-8", errors="replace").rstrip("\r\n"))
    return unwrap_envelope(value)


class Bad:
    """A dead letter's field and reason."""

    __slots__ = ("field", "message")

    def __init__(self, field: str, message: str):
        self.field, self.message = field, message


class PostgresLog:
    """One server's log entries as rows, in the format the source is set to."""

    def __init__(self, log_line_prefix: str, csvlog: bool):
        self.prefix, self.log_line_prefix = prefix_pattern(log_line_prefix), log_line_prefix
        self.translated = prefix_pattern(log_line_prefix, _TRANSLATED_LEVEL)
        self.csvlog = csvlog

    @cached_property
    def _any_language(self) -> re.Pattern[str]:
        """The prefix, then any word as the level: only asked of a line that fits no known language."""
        return prefix_pattern(self.log_line_prefix, _UNKNOWN_LEVEL)

    def rows(
        self, items: list[tuple[RawRecord, Line]]
    ) -> tuple[list[tuple[RawRecord, Line, Row | None]], list[DeadLetter]]:
        """Each entry (its continuation lines joined) with its row, None when it gives none. A
        jsonlog record is one line, and read as one whichever format is set."""
        if self.csvlog:
            entries, dead = join_continuations(
                items, lambda t: bool(_CSV_START.match(t)) or t.startswith("{")
            )
            read = self._csv_row
        else:
            entries, dead = join_continuations(items, lambda t: not t.startswith("\t"), strip="\t")
            read = self._stderr_row
        rows = [
            (raw, line, _json_row(t) if (t := line.text).startswith("{") else read(t))
            for raw, line in entries
        ]
        return rows, dead

    def misnamed(self, row: Row, text: str) -> Bad | None:
        """A stderr line's row whose user or database name holds a space: read with a prefix that
        is not the server's (csvlog's columns and jsonlog's keys are the server's own)."""
        if self.csvlog or text.startswith("{") or not _blank_in_name(row):
            return None
        return Bad(
            "log_line_prefix",
            "a user or database name read with the configured log_line_prefix "
            f"{self.log_line_prefix!r} holds a space: the server's prefix likely has more "
            f"after it (app=%a, say) than the configured one; {PREFIX_FIX}",
        )

    def unread(self, head: str) -> Bad | str:
        """Why an entry gave no row. Lost data access (an AUDIT line, a denial) is a dead letter
        saying what to set; any other line is skipped, counted by what it is."""
        if head.startswith("{"):
            if "AUDIT: " in head or '"42501"' in head:
                return Bad(
                    "message",
                    "a jsonlog record with a pgaudit line or a denial that is not one JSON object with "
                    "error_severity and message (cut short, or two records in one: ship jsonlog "
                    "one record a line, `lifemon ship --format pgaudit`)",
                )
            return "pgaudit: not a PostgreSQL log line"
        if self.csvlog:
            if "AUDIT: " in head or ",42501," in head:
                return Bad("message", "a csvlog record with a pgaudit line or a denial, cut short or garbled")
            return "pgaudit: not a PostgreSQL log line"
        if _ACCESS_LINE.search(head):
            m = self._any_language.match(head)
            if m is not None and not _blank_in_name(_fields(m, head)):
                return Bad(
                    "lc_messages",
                    "a pgaudit line whose severity word is in a language lifemon does not read "
                    f"({_LANGUAGES}): set the server's lc_messages to 'C' (or one of those)",
                )
            return Bad(
                "log_line_prefix",
                "a pgaudit line that does not fit the configured log_line_prefix "
                f"{self.log_line_prefix!r}: {PREFIX_FIX}",
            )
        if _ANY_LEVEL.search(head):
            return "pgaudit: server line that does not fit log_line_prefix"
        return "pgaudit: not a PostgreSQL log line"

    # -- one entry --------------------------------------------------------------------------------
    def _stderr_row(self, text: str) -> Row | None:
        head = text[:MAX_PREFIX]
        m = self.prefix.match(head)
        if m is None:
            # lc_messages other than English (a zh_CN host's initdb): asked only where English did not fit
            m = self.translated.match(head)
            if m is None:
                return None
            return _fields(m, text) | {"level": MARKERS[m["level"]]}
        return _fields(m, text)

    def _csv_row(self, text: str) -> Row | None:
        try:
            cols = next(csv.reader(io.StringIO(text)))
        except (csv.Error, StopIteration):
            return None
        if len(cols) < 23:
            return None
        return {
            "time": cols[_C_TIME],
            "epoch": "",
            "user": cols[_C_USER],
            "db": cols[_C_DB],
            "app": cols[_C_APP],
            "client": cols[_C_CLIENT].rsplit(":", 1)[0],
            "pid": cols[_C_PID],
            "session": cols[_C_SESSION],
            "line_no": cols[_C_LINE],
            "sqlstate": cols[_C_STATE],
            "level": SEVERITY.get(cols[_C_SEVERITY], cols[_C_SEVERITY]),  # csvlog writes it translated
            "msg": cols[_C_MESSAGE],
            "query": cols[_C_QUERY],
        }


def _fields(m: re.Match[str], text: str) -> Row:
    """A stderr line's row, from its prefix match."""
    g = m.groupdict()
    g["msg"] = text[m.start("msg") :]
    return {
        "time": g.get("time") or "",
        "epoch": g.get("epoch") or "",
        "user": g.get("user") or "",
        "db": g.get("db") or "",
        "app": g.get("app") or "",
        "client": g.get("client") or "",
        "pid": g.get("pid") or "",
        "session": g.get("session") or "",
        "line_no": g.get("line_no") or "",
        "sqlstate": g.get("sqlstate") or "",
        "level": g["level"],
        "msg": g["msg"],
    }


def _blank_in_name(row: Row) -> bool:
    """A user or database name with a space in it: a prefix's lazy `%u`/`%d` took in what the
    configured prefix lacks (`corebank app=teller-desk` for `%d` before the server's ` app=%a`).
    PostgreSQL allows a quoted name with a space; banks' logins and databases have none."""
    return " " in row["db"] or " " in row["user"] or "\t" in row["db"] or "\t" in row["user"]


def _json_row(text: str) -> Row | None:
    """A jsonlog record's row: its keys are left out where empty, its numbers are numbers."""
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict):
        return None
    severity, msg = doc.get("error_severity"), doc.get("message")
    if not isinstance(severity, str) or not isinstance(msg, str):
        return None
    row = {field: _json_text(doc.get(key)) for field, key in _JSONLOG.items()}
    return row | {"epoch": "", "level": SEVERITY.get(severity, severity), "msg": msg}


def _json_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else ""
