"""OpenSSH internal-sftp (or sftp-server) at INFO level, as syslog carries it:

    [<PRI>]Mmm dd hh:mm:ss [host ]internal-sftp[pid]: session opened for local user U from [IP]
    (or any header `streams.sources.lines.syslog` reads: ISO 8601 time, RFC 5424)
    ... open "PATH" flags WRITE,CREATE,TRUNCATE mode 0644
    ... close "PATH" bytes read N written M   (`forced close` when the session was cut)
    ... posix-rename old "PATH" new "PATH2"   (or `rename`: an upload staged, then moved)
    ... session closed for local user U from [IP]

A `close` line carries the bytes but not the account: the session's `session opened` line, by
the same host and pid, says whose it is. Open sessions are kept in the partition's carry (its
checkpointed store), so they outlive batches and restarts; a close whose `session opened` line
was never read (shipped before the topic's retention, or lost) is a dead letter with that reason.
"""

from __future__ import annotations

import re
from typing import Any

from streams.codecs import DeadLetter, RawRecord
from streams.sources.envelope import Line
from streams.sources.lines import (
    SYSLOG_FORMS,
    Syslog,
    Unreadable,
    count,
    readable_time,
    syslog,
    syslog_ms,
    zone,
)
from streams.sources.records import FileHandover, Parsed

_PROGRAMS = frozenset({"internal-sftp", "sftp-server", "sshd"})
_OPENED = re.compile(r"session opened for local user (?P<user>\S+) from \[(?P<ip>[^\]]*)\]")
_CLOSED = re.compile(r"session closed for local user ")
# OpenSSH logs the path between quotes without escaping it: a name may hold `"` and even the text
# ` bytes read 0 written 1`. The counts are the line's last words, so the path is all before them.
# A session cut mid-transfer logs `forced close`: what was written by then reached the recipient (a
# probe's upload cut at 783 360 bytes, some 3 900 records abroad, was skipped unjudged)
_CLOSE = re.compile(
    r'(?:forced )?close "(?P<path>.*)" bytes read (?P<read>\d+) written (?P<written>\d+)\s*$', re.S
)
# an upload written to a staging folder, then renamed into the recipient's drop box (a probe's
# `/staging/leads.tmp` -> `/upload/leads.csv` was no transfer): the file's close is remembered per
# session, a few, so its rename hands the same bytes over at the new path
_RENAME = re.compile(r'(?:posix-)?rename old "(?P<old>.*)" new "(?P<new>.*)"\s*$', re.S)
# A line lifemon cannot place must not pass as noise when it may hold a transfer: one naming the sftp
# server whose header is in a form not read (a probe's RFC 5424 and journalctl short-precise lines,
# uploads abroad among them, were "not an sftp syslog line"), and a close or rename the patterns
# above do not read (a relay cut `... bytes read 0 writ`: "other sftp message")
_NAMES_SFTP = re.compile(r"internal-sftp|sftp-server")
_HANDS_OVER = re.compile(r'(?:forced )?close "|(?:posix-)?rename ')
UNREAD_HEADER = (
    f"a line naming internal-sftp or sftp-server whose syslog header is not read: expected {SYSLOG_FORMS}"
)
NO_PID = (
    "an sftp close or rename without the server's process id (`internal-sftp[pid]:`, RFC 5424's "
    "PROCID): the session, and so the account, it belongs to cannot be found"
)
UNREAD_MESSAGE = (
    'an sftp close or rename that is not read (cut short by a relay?): expected `[forced ]close "PATH" '
    'bytes read N written M` or `[posix-]rename old "PATH" new "PATH2"`'
)
CLOSES_PER_SESSION = 32
MAX_SESSIONS = 100_000  # open sessions remembered per partition; the oldest are forgotten first


class SftpParser:
    def __init__(self, timezone: str):
        self.tz = zone(timezone)

    def parse(
        self, items: list[tuple[RawRecord, Line]], carry: dict[str, Any], final: bool = False
    ) -> Parsed:
        """`carry`: "host:pid" -> [user, client ip, {path: [bytes read, written]} of its last closes]
        of each open session (insertion order: oldest first)."""
        out = Parsed()
        for raw, line in items:
            h = syslog(line.text)
            if h is None or h.prog not in _PROGRAMS or h.pid is None:
                if (why := _unplaced(h, line.text)) is None:
                    out.skipped["sftp: not an sftp syslog line"] += 1
                else:
                    out.dead.append(DeadLetter(raw, "unparsed", *why))
                continue
            host = h.host or line.host or "-"
            session = f"{host}:{h.pid}"
            msg = h.msg
            if opened := _OPENED.match(msg):
                carry.pop(session, None)  # a reused pid: the newest session is last
                carry[session] = [opened.group("user"), opened.group("ip"), {}]
                while len(carry) > MAX_SESSIONS:
                    del carry[next(iter(carry))]
                out.skipped["sftp: session opened"] += 1
            elif _CLOSED.match(msg):
                carry.pop(session, None)
                out.skipped["sftp: session closed"] += 1
            elif found := _CLOSE.match(msg) or _RENAME.match(msg):
                who = carry.get(session)
                if who is None and "old" in found.groupdict():
                    # a rename hands over only a file the session's close was read for: nothing lost
                    out.skipped["sftp: rename of a file not closed in the session"] += 1
                    continue
                if who is None:
                    out.dead.append(
                        DeadLetter(
                            raw,
                            "unparsed",
                            "message",
                            # a reason never echoes what a log line holds (a mangled line's host or
                            # pid may be anything, a card number even): the record itself is kept
                            "close of a file in an sftp session whose `session opened` line was not "
                            "read (shipped before lifemon started, or lost)",
                        )
                    )
                    continue
                if len(who) < 3:  # a session carried by a lifemon from before renames counted
                    who.append({})
                try:
                    ts = readable_time("time", lambda: syslog_ms(h, line, raw, self.tz))  # noqa: B023 - called here
                    handover = _handover(found, who, f"sftp:{host}:{h.pid}:{ts}", ts, host)
                except Unreadable as e:
                    out.dead.append(DeadLetter(raw, "unparsed", e.field, e.message))
                    continue
                if handover is None:
                    out.skipped["sftp: rename of a file not closed in the session"] += 1
                else:
                    out.found.append((raw, handover))
            elif _HANDS_OVER.match(msg):
                out.dead.append(DeadLetter(raw, "unparsed", "message", UNREAD_MESSAGE))
            else:
                out.skipped["sftp: other sftp message"] += 1
        return out


def _unplaced(h: Syslog | None, text: str) -> tuple[str, str] | None:
    """Why a line that is no readable sftp line is a dead letter (the field and reason), or None
    when it is noise (sshd's own lines, cron's)."""
    if h is None or h.prog is None:
        return ("header", UNREAD_HEADER) if _NAMES_SFTP.search(text) else None
    if h.prog in _PROGRAMS and _HANDS_OVER.match(h.msg):  # the sftp server's, without its pid
        return ("pid", NO_PID)
    return None


def _handover(found: re.Match[str], who: list[Any], prefix: str, ts: int, host: str) -> FileHandover | None:
    """The file a close (its bytes each way) or a rename (the bytes of the file's close in the
    session, at its new path) hands over; None for a rename of a file the session did not close.
    `who`: the session's user, client ip and last closes."""
    closes: dict[str, list[int]] = who[2]
    if "path" in found.groupdict():
        path = found.group("path")
        sizes = [count(found.group("read"), "bytes read"), count(found.group("written"), "bytes written")]
        renamed_from = None
        event_id = f"{prefix}:{path}:{found.group('written')}"
    else:
        renamed_from, path = found.group("old"), found.group("new")
        if renamed_from not in closes:
            return None
        sizes = closes.pop(renamed_from)
        event_id = f"{prefix}:{path}:renamed"
    closes.pop(path, None)
    closes[path] = sizes
    while len(closes) > CLOSES_PER_SESSION:
        del closes[next(iter(closes))]
    read, written = sizes
    return FileHandover(
        event_id, ts, None if host == "-" else host, who[0], who[1] or None, path, read, written, renamed_from
    )
