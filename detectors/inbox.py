"""Events that wait for the watermark, a batch at a time.

A detector that judges an event only once the watermark has passed its time (so that reference
data arriving late, within the allowed lateness, still decides it) keeps the events waiting here
instead of one key and one timer per event: each batch is one *block* of the store, written once
and deleted once released, an inbox key lists the blocks with their earliest and latest event
times, and one timer per task wakes the detector at the earliest. A checkpoint then writes each
waiting event once, whatever the lateness, and an event released before the checkpoint is never
written at all.

The keys start with `~inbox` and share the detector's store with its own rows, which a detector
keys so that no id from an event can spell them: offscope_marketing and retention_overrun by
customer pseudonym (`p_…`), unauthorized_lookup under `a:` + the employee id, transfer_policy
under fixed prefixes (`volume:`, `raised:`, `forgotten:`).
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import attrgetter
from typing import Any

import msgspec

from detectors.base import Context, Store

INBOX = "~inbox"  # store key of the blocks waiting for the watermark
BLOCK = "~inbox:"  # + block number: one batch's events
_TS = attrgetter("ts")


class Inbox:
    """The batches waiting for the watermark: [block number, earliest, latest event time] each,
    in arrival order."""

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

    def to_json(self) -> list[Any]:
        return self.events


def load_value(data: Any, struct: Any) -> Inbox | Block | None:
    """The inbox or a block from its stored JSON (a block's events as `struct`), or None when the
    value is not the inbox's."""
    if isinstance(data, list):
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
    inbox.blocks.append([inbox.next, first, max(times)])
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
        number, first, last = entry
        if first > wm:
            waiting.append(entry)
            continue
        key = f"{BLOCK}{number}"
        block = store.get(key)
        if last <= wm:
            ready += block.events
            store.delete(key)
        else:
            ready += [ev for ev in block.events if ev.ts <= wm]
            block.events = [ev for ev in block.events if ev.ts > wm]
            store.touch(key)
            waiting.append([number, min(map(_TS, block.events)), last])
    if waiting:
        inbox.blocks = waiting
        store.touch(INBOX)
        ctx.timers.register(INBOX, min(b[1] for b in waiting))
    else:
        store.delete(INBOX)
    return ready
