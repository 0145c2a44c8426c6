"""How log files are cut into records for `lifemon ship`: one record per log entry, and never a
line still being written (no newline yet). Each function takes the unread bytes of a file and
`final` (no more bytes will follow for now) and returns the complete chunks in them, each
`(bytes consumed, [(key, value), ...])`; a key of None is the shipper's."""

from __future__ import annotations

Record = tuple[bytes | None, bytes]  # (key, or None for the shipper's key; value)
Chunk = tuple[int, list[Record]]  # (bytes of the buffer it ends at, the records it makes)


def lines(buf: bytes, final: bool) -> list[Chunk]:
    """One record per line (server_audit escapes newlines in statements; syslog lines are one line)."""
    out: list[Chunk] = []
    pos = 0
    for line in buf.split(b"\n")[:-1]:  # after the last newline: a line still being written
        pos += len(line) + 1
        out.append((pos, [(None, line)] if line.strip() else []))
    return out


def tab_continued(buf: bytes, final: bool) -> list[Chunk]:
    """PostgreSQL's stderr log: a message's later lines start with a tab. An entry is complete when
    the next one starts, or when no more bytes follow."""
    out: list[Chunk] = []
    pos, start = 0, -1
    for line in buf.split(b"\n")[:-1]:
        if start < 0 or not line.startswith(b"\t"):
            if start >= 0:
                out.append((pos, [(None, buf[start : pos - 1])]))
            start = pos if line.strip() else -1
            if start < 0:
                out.append((pos + len(line) + 1, []))
        pos += len(line) + 1
    if start >= 0 and final:
        out.append((pos, [(None, buf[start : pos - 1])]))
    return out


def csv_records(buf: bytes, final: bool) -> list[Chunk]:
    """PostgreSQL's csvlog: a record ends at the line end where its double quotes balance (a
    statement's newlines are inside quotes)."""
    out: list[Chunk] = []
    pos, start, quotes = 0, -1, 0
    for line in buf.split(b"\n")[:-1]:
        if start < 0:
            start, quotes = pos, 0
        quotes += line.count(b'"')
        pos += len(line) + 1
        if quotes % 2 == 0:
            out.append((pos, [(None, buf[start : pos - 1])] if buf[start : pos - 1].strip() else []))
            start = -1
    if start >= 0 and final:  # quotes that never balance: shipped as they are, the parser says why
        out.append((pos, [(None, buf[start : pos - 1])]))
    return out
