"""Events that wait for the watermark, a batch at a time.

A detector that judges an event only once the watermark has passed its time (so that reference
data arriving late, within the allowed lateness, still decides it) keeps the events waiting here
instead of one key and one timer per event: each batch is one *block* of the store, packed (JSON,
lz4) and written once, deleted once all of it is released; an inbox key lists the blocks with their
earliest waiting and latest event times and how far each is released, and one timer per task wakes
the detector at the earliest. A checkpoint then writes each waiting event once, whatever the
lateness, and an event released before the checkpoint is never written at all. A block released in
part after a checkpoint wrote it stays as written: its entry says how far (the block was rewritten
at every checkpoint a part of it was released before: 11.7 of the 16 MB of unauthorized_lookup's
changelog at a checkpoint every 100 events, unpacked).

The keys start with `~inbox` and share the detector's store with its own rows, which a detector
keys so that no id from an event can spell them: offscope_marketing and retention_overrun by
customer pseudonym (`p_…`), unauthorized_lookup under `a:` + the employee id, transfer_policy
under fixed prefixes (`volume:`, `raised:`, `forgotten:`).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from operator import attrgetter
from typing import Any

import lz4.frame
import msgspec

from detectors.base import Context, Store

INBOX = "~inbox"  # store key of the blocks waiting for the watermark
BLOCK = "~inbox:"  # + block number: one batch's events
NOTHING = -(2**63)  # a block's entry: released up to before any event time
_TS = attrgetter("ts")


class Inbox:
    """The batches waiting for the watermark: [block number, earliest waiting, latest event time,
    released up to] each, in arrival order (an earlier lifemon's have no fourth: none released)."""

    __slots__ = ("next", "blocks")

    def __init__(self, next_block: int = 0, blocks: list[list[int]] | None = None) -> None:
        self.next, self.blocks = next_block, blocks or []

    def to_json(self) -> dict[str, Any]:
        return {"next": self.next, "blocks": self.blocks}


class Block:
    """One batch's events (the decoder's structs: msgspec encodes them in C)."""

    __slots__ = ("events",)

    def __init__(self, events: list[Any]) -> None:
        self.events = events

    def to_json(self) -> dict[str, bytes]:
        return {"block": lz4.frame.compress(msgspec.json.encode(self.events))}  # bytes go as base64


def load_value(data: Any, struct: Any) -> Inbox | Block | None:
    """The inbox or a block from its stored JSON (a block's events as `struct`), or None when the
    value is not the inbox's."""
    if isinstance(data, dict) and "block" in data:
        packed = lz4.frame.decompress(base64.b64decode(data["block"]))
        return Block(msgspec.json.decode(packed, type=list[struct]))
    if isinstance(data, list):  # stored unpacked, by a lifemon before the forty-fourth stop
        return Block(msgspec.convert(data, list[struct]))
    if isinstance(data, dict) and "blocks" in data:
        return Inbox(data["next"], data["blocks"])
    return None


def hold(store: Store, events: Sequence[Any], ctx: Context) -> None:
    """The batch waits as one block until the watermark passes its events."""
    if not events:
        return
    inbox = store.get(INBOX)
    if inbox is None:
        inbox = Inbox()
        store.put(INBOX, inbox)
    times = list(map(_TS, events))
    first = min(times)
    if not inbox.blocks or first < min(b[1] for b in inbox.blocks):
        ctx.timers.register(INBOX, first)
    store.put(f"{BLOCK}{inbox.next}", Block(list(events)))
    inbox.blocks.append([inbox.next, first, max(times), NOTHING])
    inbox.next += 1
    store.touch(INBOX)


def release(store: Store, ctx: Context) -> list[Any]:
    """The events the watermark has passed, in arrival order, taken out of the inbox; the inbox's
    timer moves to the earliest event still waiting."""
    inbox, wm = store.get(INBOX), ctx.watermark
    if inbox is None or all(b[1] > wm for b in inbox.blocks):
        return []
    ready: list[Any] = []
    waiting = []
    for entry in inbox.blocks:
        number, first, last, released = (*entry, NOTHING)[:4]
        if first > wm:
            waiting.append(entry)
            continue
        key = f"{BLOCK}{number}"
        block = store.get(key)
        if last <= wm:
            ready += [ev for ev in block.events if ev.ts > released]
            store.delete(key)
        else:  # its entry says how far it is released, so the block need not be written again
            ready += [ev for ev in block.events if released < ev.ts <= wm]
            # trimmed in memory only: a checkpoint not yet past it writes what waits (a replay's
            # batch releases most of its block at once), one past it keeps what it wrote
            block.events = [ev for ev in block.events if ev.ts > wm]
            waiting.append([number, min(map(_TS, block.events)), last, wm])
    if waiting:
        inbox.blocks = waiting
        store.touch(INBOX)
        ctx.timers.register(INBOX, min(b[1] for b in waiting))
    else:
        store.delete(INBOX)
    return ready
