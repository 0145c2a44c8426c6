"""Accesses already judged, kept for reference records that come later than the allowed lateness.

A nightly HR export posts at 02:00 a termination effective at 17:00: by then the watermark has long
passed the reads after 17:00, and they were judged against the employee as still active. A
detector that judges again what such a record changes (unauthorized_lookup) keeps its judged
accesses here for a number of hours, each with what it needs to judge it again: the time of the
entitlement version it was judged by (a restart compares it with the registry it read whole) and
the reasons it was found unauthorized then, as bits (what the new version adds is only what was
not found before).

Each drain's accesses are one *segment* (`~judged:<n>`), packed at once (JSON, lz4) and written
once: a live run drains a few accesses each poll, and a block that filled over many polls was
written again at every checkpoint it grew in. The list under `~judged` covers the segments by
*pages* of at most `PAGE_SIZE` consecutive ones spanning at most `PAGE_SPAN_MS`, [first number,
last number, earliest, latest time, accesses] each, so that it stays a few hundred bytes through a
day and a half of polls (a list
entry per segment was 2.3 MB of every checkpoint, a review measured). A segment's versions and bits
stay as judged first: judging again rewrites none (the detector keeps what it raised apart).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Sequence
from operator import attrgetter
from typing import Any

import lz4.frame

from detectors.base import Store

KEPT, SEGMENT = "~judged", "~judged:"
PAGE_SIZE = 1000  # consecutive segments a page of the list covers, at most
# and the time its accesses span, at most: a page goes only once all of it is past the kept hours,
# so a page of a thousand drains of a quiet partition or a replay kept days (a soak's 174 MB)
PAGE_SPAN_MS = 3_600_000
NO_VERSION = -1  # judged with no entitlement version in force
_TS = attrgetter("ts")


class Segment:
    """One drain's judged accesses, packed, their earliest and latest time, and per access the
    version it was judged by and the bits of its reasons then."""

    __slots__ = ("packed", "first", "last", "versions", "found")

    def __init__(self, packed: bytes, first: int, last: int, versions: list[int], found: list[int]):
        self.packed, self.first, self.last, self.versions, self.found = packed, first, last, versions, found

    def accesses(self, decode: Any) -> list[Any]:
        return decode(lz4.frame.decompress(self.packed))  # type: ignore[no-any-return]

    def to_json(self) -> dict[str, Any]:
        return {s: getattr(self, s) for s in self.__slots__}  # bytes go to JSON as base64


class Kept:
    """The pages of segments, [first number, last number, earliest, latest time, accesses] each in
    the order kept, and the accesses held past the kept hours: employee -> the earliest access of
    an alert judging again raised, which a later record may still revise (`hold`)."""

    __slots__ = ("next", "pages", "held")

    def __init__(self, next_segment: int = 0, pages: list[list[int]] | None = None, held: Any = None):
        self.next, self.pages = next_segment, pages or []
        self.held: dict[str, int] = held or {}

    def to_json(self) -> dict[str, Any]:
        return {"kept": self.pages, "next": self.next, "held": self.held}

    def horizon(self, horizon: int, actor: str | None = None) -> int:
        """The earliest access kept: of `actor`, or of anyone."""
        held = (
            self.held.get(actor, horizon) if actor is not None else min(self.held.values(), default=horizon)
        )
        return min(horizon, held)


def load_value(data: Any) -> Kept | Segment | None:
    """The list or a segment from its stored JSON, or None when the value is neither."""
    if isinstance(data, dict) and "kept" in data:
        return Kept(data["next"], data["kept"], data.get("held"))
    if isinstance(data, dict) and "found" in data:
        return Segment(
            base64.b64decode(data["packed"]), data["first"], data["last"], data["versions"], data["found"]
        )
    return None


def keep(
    store: Store, events: Sequence[Any], versions: list[int], found: list[int], horizon: int, encode: Any
) -> None:
    """Keep a drain's accesses dated at or after `horizon` as a segment; forget what is older."""
    kept = expire(store, horizon)
    times = list(map(_TS, events))
    if min(times) < horizon:  # released only now, after a record far ahead moved the watermark
        rows = [i for i, t in enumerate(times) if t >= horizon]
        if not rows:
            return
        events, times = [events[i] for i in rows], [times[i] for i in rows]
        versions, found = [versions[i] for i in rows], [found[i] for i in rows]
    if kept is None:
        kept = Kept()
        store.put(KEPT, kept)
    first, last, n = min(times), max(times), kept.next
    store.put(f"{SEGMENT}{n}", Segment(lz4.frame.compress(encode(events)), first, last, versions, found))
    kept.next += 1
    page = kept.pages[-1] if kept.pages else None
    if page is None or page[1] - page[0] + 1 >= PAGE_SIZE or last - page[2] > PAGE_SPAN_MS:
        kept.pages.append([n, n, first, last, len(times)])
    else:
        page[1], page[2], page[3], page[4] = n, min(page[2], first), max(page[3], last), page[4] + len(times)
    store.touch(KEPT)


def expire(store: Store, horizon: int) -> Kept | None:
    """Forget the pages whose accesses are all older than `horizon` and than every access held;
    the list, if anything is left."""
    kept = store.get(KEPT)
    if kept is None:
        return None
    horizon = kept.horizon(horizon)
    gone = [p for p in kept.pages if p[3] < horizon]
    if not gone:
        return kept
    for lo, hi, *_ in gone:
        for n in range(lo, hi + 1):
            store.delete(f"{SEGMENT}{n}")
    kept.pages = [p for p in kept.pages if p[3] >= horizon]
    if not kept.pages and not kept.held:
        store.delete(KEPT)
        return None
    store.touch(KEPT)
    return kept


def hold(store: Store, actor: str, earliest: int | None) -> None:
    """Keep the employee's accesses from `earliest` on past the kept hours (None: no longer)."""
    kept = store.get(KEPT)
    if kept is None:
        return
    if earliest is None:
        kept.held.pop(actor, None)
    else:
        kept.held[actor] = earliest
    store.touch(KEPT)


def rows(store: Store, since: int, horizon: int, decode: Any) -> Iterator[tuple[str, Segment, list[Any]]]:
    """(key, segment, its accesses) of the kept segments that hold an access at or after `since`,
    none older than `horizon` and every access held."""
    kept = store.get(KEPT)
    after = max(since, kept.horizon(horizon) if kept is not None else horizon)
    for lo, hi, _, last, _ in kept.pages if kept is not None else ():
        if last < after:
            continue
        for n in range(lo, hi + 1):
            segment = store.get(f"{SEGMENT}{n}")
            if segment is not None and segment.last >= after:
                yield f"{SEGMENT}{n}", segment, segment.accesses(decode)
