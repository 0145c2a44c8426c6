"""What the log parsers find, before the mapping turns it into canonical events: one database
statement (`DbStatement`) or one file handed over SFTP (`FileHandover`), and what a parser tells
about lines it did not turn into either (skipped noise, dead letters)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from streams.codecs import DeadLetter, RawRecord
from streams.sources.envelope import Line


@dataclass(slots=True)
class DbStatement:
    """One audited statement, merged from all its log lines (a join logs one line per table)."""

    source: str  # pgaudit | mariadb
    event_id: str
    ts_ms: int
    host: str | None
    database: str
    user: str
    application: str | None
    client_ip: str | None
    command: str  # SELECT, INSERT, UPDATE, DELETE, COPY, DECLARE CURSOR, SELECT INTO OUTFILE, ...
    tables: list[str]  # as the log names them (schema.table or table); empty: find them in the text
    statement: str
    parameters: list[str] = field(default_factory=list)
    rows: int | None = None  # None: the log does not say (server_audit, a cursor)
    denied: bool = False
    truncated: bool = False  # the log cut the statement (server_audit_query_log_limit)
    # `tables` are some of those it read: pgaudit's object audit logs only the relations its role is
    # granted (pgaudit.role): the others are found in the text
    partial: bool = False


@dataclass(slots=True)
class FileHandover:
    """One file closed in an SFTP session, with the bytes each way."""

    event_id: str
    ts_ms: int
    host: str | None
    account: str
    client_ip: str | None
    path: str
    bytes_read: int
    bytes_written: int
    renamed_from: str | None = None  # a rename moved the file closed at this path here


@dataclass
class Parsed:
    found: list[tuple[RawRecord, Any]] = field(default_factory=list)  # attributed to the entry's last line
    skipped: Counter = field(default_factory=Counter)  # reason -> lines that are not data access
    dead: list[DeadLetter] = field(default_factory=list)


Entry = tuple[RawRecord, Line]  # one log entry: its (last) record and its text, continuations joined
