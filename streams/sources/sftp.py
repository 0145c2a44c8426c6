"""OpenSSH internal-sftp (or sftp-server) at INFO level, as syslog carries it:

    [<PRI>]Mmm dd hh:mm:ss [host ]internal-sftp[pid]: session opened for local user U from [IP]
    ... open "PATH" flags WRITE,CREATE,TRUNCATE mode 0644
    ... close "PATH" bytes read N written M   (`forced close` when the session was cut)
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
from streams.sources.lines import SYSLOG, Unreadable, count, readable_time, syslog_ms, zone
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
MAX_SESSIONS = 100_000  # open sessions remembered per partition; the oldest are forgotten first


class SftpParser:
    def __init__(self, timezone: str):
        self.tz = zone(timezone)

    def parse(
        self, items: list[tuple[RawRecord, Line]], carry: dict[str, Any], final: bool = False
    ) -> Parsed:
        """`carry`: "host:pid" -> [user, client ip] of each open session (insertion order: oldest first)."""
        out = Parsed()
        for raw, line in items:
            m = SYSLOG.match(line.text)
            if m is None or m.group("prog") not in _PROGRAMS or m.group("pid") is None:
                out.skipped["sftp: not an sftp syslog line"] += 1
                continue
            host = m.group("host") or line.host or "-"
            session = f"{host}:{m.group('pid')}"
            msg = m.group("msg")
            if opened := _OPENED.match(msg):
                carry.pop(session, None)  # a reused pid: the newest session is last
                carry[session] = [opened.group("user"), opened.group("ip")]
                while len(carry) > MAX_SESSIONS:
                    del carry[next(iter(carry))]
                out.skipped["sftp: session opened"] += 1
            elif _CLOSED.match(msg):
                carry.pop(session, None)
                out.skipped["sftp: session closed"] += 1
            elif close := _CLOSE.match(msg):
                who = carry.get(session)
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
                try:
                    ts = readable_time("time", lambda: syslog_ms(m, line, raw, self.tz))  # noqa: B023 - called here
                    read, written = (
                        count(close.group("read"), "bytes read"),
                        count(close.group("written"), "bytes written"),
                    )
                except Unreadable as e:
                    out.dead.append(DeadLetter(raw, "unparsed", e.field, e.message))
                    continue
                out.found.append(
                    (
                        raw,
                        FileHandover(
                            f"sftp:{host}:{m.group('pid')}:{ts}:{close.group('path')}:{close.group('written')}",
                            ts,
                            None if host == "-" else host,
                            who[0],
                            who[1] or None,
                            close.group("path"),
                            read,
                            written,
                        ),
                    )
                )
            else:
                out.skipped["sftp: other sftp message"] += 1
        return out
