"""Log entries from log lines, and the times they carry.

A shipper without multiline rules sends a multi-line entry (a statement with newlines) as one
record per physical line: the continuation records are joined to the entry they continue, within
the batch. A continuation with nothing before it in the batch cannot be placed and is a dead
letter, never a guess."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from streams.codecs import DeadLetter, RawRecord
from streams.sources.envelope import Line
from streams.sources.records import Entry


def join_continuations(
    items: list[tuple[RawRecord, Line]], starts_entry: Callable[[str], bool], strip: str = ""
) -> tuple[list[Entry], list[DeadLetter]]:
    entries: list[Entry] = []
    dead: list[DeadLetter] = []
    for raw, line in items:
        if starts_entry(line.text):
            entries.append((raw, line))
            continue
        if not entries:
            dead.append(
                DeadLetter(
                    raw,
                    "unparsed",
                    "message",
                    "continuation of a log entry whose first line is not in this batch; ship multi-line "
                    "entries as one record (shipper multiline rules, or `lifemon ship`)",
                )
            )
            continue
        first_raw, first = entries[-1]
        text = line.text[len(strip) :] if strip and line.text.startswith(strip) else line.text
        entries[-1] = (raw, Line(f"{first.text}\n{text}", first.ts_ms, first.host))
    return entries, dead


class Unreadable(ValueError):
    """A time or number in an entry that cannot be read (month 13, Feb 29 of a common year, a
    count of 5000 digits): the entry is a dead letter naming the field, never echoing its value."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field, self.message = field, message


MAX_COUNT = 2**63 - 1  # a count lifemon stores (Avro long, ClickHouse Int64)


def count(text: str, field: str) -> int:
    """A row or byte count: ASCII digits (str.isdigit also accepts `²`) up to MAX_COUNT."""
    if not (text.isascii() and text.isdigit()) or len(text) > 19 or int(text) > MAX_COUNT:
        raise Unreadable(field, f"{field} is not a whole number up to 2**63-1")
    return int(text)


def readable_time(field: str, parse: Callable[[], int]) -> int:
    """`parse()`'s epoch milliseconds, or Unreadable when the text is no real date and time."""
    try:
        return parse()
    except (ValueError, OverflowError, OSError):  # month 13, Feb 29 of 2025, year 10**20
        raise Unreadable(field, f"{field} is not a valid date and time") from None


def zone(name: str) -> tzinfo:
    return UTC if name.upper() in ("UTC", "GMT", "Z") else ZoneInfo(name)


def epoch_ms(dt: datetime, tz: tzinfo) -> int:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=tz)
    return int(dt.timestamp() * 1000)


# A syslog line as rsyslog or syslog-ng writes it: RFC 3339 time (or the traditional month-day time,
# which has no year; journalctl's `-o short-precise` adds microseconds to it), host, then
# `program[pid]: message` (pid optional)
_BSD = re.compile(
    r"(?:<\d{1,3}>)?(?:(?P<iso>\d{4}-\d\d-\d\dT\S+)|(?P<bsd>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d)"
    r"(?:\.(?P<frac>\d{1,9}))?)\s+"
    r"(?:(?P<host>[^\s\[]+)\s+)?(?P<prog>[\w./-]+)(?:\[(?P<pid>\d+)\])?:\s+(?P<msg>.*)",
    re.S,
)
# RFC 5424, what rsyslog (RSYSLOG_SyslogProtocol23Format) and syslog-ng forward to Kafka or a SIEM
# when told to: `<PRI>1 TIME HOST APP PROCID MSGID [SD] MSG`, `-` for a field the sender did not
# know. rsyslog's MSG keeps the space after the traditional tag's colon, hence `\s+`.
_RFC5424 = re.compile(
    r"(?:<\d{1,3}>)?1 (?P<iso>-|\d{4}-\d\d-\d\dT\S+) (?P<host>\S+) (?P<prog>\S+) (?P<pid>\S+) \S+ "
    r'(?:-|(?:\[(?:[^\]"\\]|"(?:[^"\\]|\\.)*")*\])+)(?:\s+\ufeff?(?P<msg>.*))?',
    re.S,
)
# how a reason names the headers lifemon reads (a line it cannot place is a dead letter saying so)
SYSLOG_FORMS = (
    "`[<PRI>]Mmm dd hh:mm:ss[.ffffff] [host ]prog[pid]: msg`, an ISO 8601 time in place of Mmm dd, "
    "or RFC 5424 `<PRI>1 TIME HOST APP PROCID MSGID SD MSG`"
)


@dataclass(frozen=True, slots=True)
class Syslog:
    """A syslog line's header, whichever form it came in; None where the line leaves it out."""

    iso: str | None
    bsd: str | None
    frac: str | None
    host: str | None
    prog: str | None
    pid: str | None
    msg: str


def syslog(text: str) -> Syslog | None:
    if m := _RFC5424.match(text):
        iso, host, prog, pid = (None if v == "-" else v for v in m.group("iso", "host", "prog", "pid"))
        return Syslog(iso, None, None, host, prog, pid, m.group("msg") or "")
    if m := _BSD.match(text):
        return Syslog(*m.group("iso", "bsd", "frac", "host", "prog", "pid", "msg"))
    return None


def syslog_ms(h: Syslog, line: Line, raw: RawRecord, tz: tzinfo) -> int:
    """The epoch milliseconds of a syslog header's time: a traditional time takes its year from the
    shipper's or Kafka's time of the record (`year_for`). RFC 5424's `-` (a sender without a
    clock, RFC 5424 6.2.3) is the time the record was shipped: the nearest one there is."""
    reference = line.ts_ms or raw.timestamp or int(datetime.now().timestamp() * 1000)
    if h.iso:
        return epoch_ms(datetime.fromisoformat(h.iso.replace("Z", "+00:00")), tz)
    if not h.bsd:
        return reference
    bsd = datetime.strptime("2000 " + " ".join(h.bsd.split()), "%Y %b %d %H:%M:%S")
    # to the millisecond, as an ISO time's fraction is kept
    bsd = bsd.replace(microsecond=int((h.frac or "0")[:3].ljust(3, "0")) * 1000)
    return epoch_ms(year_for(bsd, reference, tz), tz)


def year_for(month_day: datetime, reference_ms: int, tz: tzinfo) -> datetime:
    """A syslog time has no year: take the one that puts it at most a day after the reference
    (the shipper's or Kafka's time of the record), so a line of Dec 31 read on Jan 1 keeps its year."""
    ref = datetime.fromtimestamp(reference_ms / 1000, tz)
    dt = month_day.replace(year=ref.year, tzinfo=tz)
    if dt - ref > timedelta(days=1):
        dt = dt.replace(year=ref.year - 1)
    return dt
