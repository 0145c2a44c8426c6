"""Accesses already judged, kept for reference records that come later than the allowed lateness.

A nightly HR export posts at 02:00 a termination effective at 17:00: by then the watermark has long
passed the reads after 17:00, and they were judged against the employee as still active. A
detector that judges again what such a record changes (unauthorized_lookup) keeps its judged
accesses here for a number of hours, each with what it needs to judge it again: the time of the
entitlement version it was judged by (a restart compares it with the registry it read whole) and
the reasons it was found unauthorized then, as bits (what the new version adds is only what was
not found before).

Accesses go into the newest block until it holds `BLOCK_SIZE`, then it is packed (JSON, lz4; 55
bytes an access in blocks of 5 000, some 800 as live structs): a live run drains a few accesses
each poll, and a block per drain made the list of blocks the bulk of every checkpoint. The list,
under `~judged`, holds [number, earliest, latest time, accesses] per block and, per actor, the
alerts raised from judging again (`Kept.raised`), so that a later record revises them.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Sequence
from operator import attrgetter
from typing import Any

import lz4.frame
import msgspec

from detectors.base import Store

KEPT, BLOCK = "~judged", "~judged:"
BLOCK_SIZE = 5000
NO_VERSION = -1  # judged with no entitlement version in force
_TS = attrgetter("ts")


class Block:
    """Judged accesses in time of judgment, with the version each was judged by and the bits of
    its reasons then; `events` while the block fills, `packed` once full."""

    __slots__ = ("events", "packed", "versions", "found")

    def __init__(self, events: list[Any] | None, packed: bytes | None, versions: list[int], found: list[int]):
        self.events, self.packed, self.versions, self.found = events, packed, versions, found

    def accesses(self, decode: Any) -> list[Any]:
        return self.events if self.events is not None else decode(lz4.frame.decompress(self.packed))

    def to_json(self) -> dict[str, Any]:
        held = {"events": self.events} if self.events is not None else {"packed": self.packed}  # base64
        return held | {"versions": self.versions, "found": self.found}


class Kept:
    """The blocks, [number, earliest, latest time, accesses] each in the order kept, and per
    actor the alerts judging again raised: anchor -> [revision, signature, latest access, the
    entitlement version's time]."""

    __slots__ = ("next", "blocks", "raised")

    def __init__(self, next_block: int = 0, blocks: list[list[int]] | None = None, raised: Any = None):
        self.next, self.blocks = next_block, blocks or []
        self.raised: dict[str, dict[str, list[Any]]] = raised or {}

    def to_json(self) -> dict[str, Any]:
        return {"kept": self.blocks, "next": self.next, "raised": self.raised}


def load_value(data: Any, struct: Any) -> Kept | Block | None:
    """The list or a block from its stored JSON, or None when the value is neither."""
    if isinstance(data, dict) and "kept" in data:
        return Kept(data["next"], data["kept"], data["raised"])
    if isinstance(data, dict) and "found" in data:
        events = msgspec.convert(data["events"], list[struct]) if "events" in data else None
        packed = base64.b64decode(data["packed"]) if "packed" in data else None
        return Block(events, packed, data["versions"], data["found"])
    return None


def keep(
    store: Store, events: Sequence[Any], versions: list[int], found: list[int], horizon: int, encode: Any
) -> None:
    """Keep a drain's accesses dated at or after `horizon`; forget what is older."""
    kept = expire(store, horizon)
    rows = [i for i, ev in enumerate(events) if ev.ts >= horizon]
    if not rows:
        return
    if kept is None:
        kept = Kept()
        store.put(KEPT, kept)
    times = [events[i].ts for i in rows]
    last = kept.blocks[-1] if kept.blocks else None
    if last is not None and last[3] < BLOCK_SIZE:
        block = store.get(f"{BLOCK}{last[0]}")
        block.events += [events[i] for i in rows]
        last[1], last[2], last[3] = min(last[1], *times), max(last[2], *times), last[3] + len(rows)
    else:
        block = Block([events[i] for i in rows], None, [], [])
        last = [kept.next, min(times), max(times), len(rows)]
        kept.blocks.append(last)
        kept.next += 1
    block.versions += [versions[i] for i in rows]
    block.found += [found[i] for i in rows]
    if last[3] >= BLOCK_SIZE:
        block.packed, block.events = lz4.frame.compress(encode(block.events)), None
    store.put(f"{BLOCK}{last[0]}", block)
    store.touch(KEPT)


def expire(store: Store, horizon: int) -> Kept | None:
    """Forget the blocks whose accesses are all older than `horizon`, and the alerts raised of
    accesses that old; the list, if anything is left."""
    kept = store.get(KEPT)
    if kept is None:
        return None
    gone = [b for b in kept.blocks if b[2] < horizon]
    stale = [a for a, raised in kept.raised.items() if all(r[2] < horizon for r in raised.values())]
    if not gone and not stale:
        return kept
    for number, *_ in gone:
        store.delete(f"{BLOCK}{number}")
    kept.blocks = [b for b in kept.blocks if b[2] >= horizon]
    for actor in stale:
        del kept.raised[actor]
    if not kept.blocks and not kept.raised:
        store.delete(KEPT)
        return None
    store.touch(KEPT)
    return kept


def rows(store: Store, since: int, horizon: int, decode: Any) -> Iterator[tuple[str, Block, list[Any]]]:
    """(key, block, its accesses) of the kept blocks that hold an access at or after `since`, none
    older than `horizon`."""
    kept = store.get(KEPT)
    for number, _, last, _ in kept.blocks if kept is not None else ():
        if last >= max(since, horizon):
            block = store.get(f"{BLOCK}{number}")
            yield f"{BLOCK}{number}", block, block.accesses(decode)
