"""Log entries from log lines, and the times they carry.

A shipper without multiline rules sends a multi-line entry (a statement with newlines) as one
record per physical line: the continuation records are joined to the entry they continue, within
the batch. A continuation with nothing before it in the batch cannot be placed and is a dead
letter, never a guess."""

from __future__ import annotations

from collections.abc import Callable
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


def zone(name: str) -> tzinfo:
    return UTC if name.upper() in ("UTC", "GMT", "Z") else ZoneInfo(name)


def epoch_ms(dt: datetime, tz: tzinfo) -> int:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=tz)
    return int(dt.timestamp() * 1000)


def year_for(month_day: datetime, reference_ms: int, tz: tzinfo) -> datetime:
    """A syslog time has no year: take the one that puts it at most a day after the reference
    (the shipper's or Kafka's time of the record), so a line of Dec 31 read on Jan 1 keeps its year."""
    ref = datetime.fromtimestamp(reference_ms / 1000, tz)
    dt = month_day.replace(year=ref.year, tzinfo=tz)
    if dt - ref > timedelta(days=1):
        dt = dt.replace(year=ref.year - 1)
    return dt
