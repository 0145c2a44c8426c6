"""`lifemon replay`: the same decode + engine over files, for audits, tests and benchmarks.

Files are JSON lines or Avro object container files, one stream per file, recognised by name
(`pfi.access.jsonl`, `access.avro`, ...). Reference files are applied first, as the live runtime
reads reference topics to their end first; at the end of input every task reaches the last event
time (never beyond it: what is still inside its window or retention then stays open).
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import fastavro
import orjson

from schemas.models import EVENT_MODELS, REFERENCE_STREAMS, Alert
from streams.codecs import DeadLetter, Decoder, RawRecord
from streams.dead_letter_query import file_place
from streams.engine import Engine, long_lived_load
from streams.stats import Stats

log = logging.getLogger(__name__)
BOM = b"\xef\xbb\xbf"
_STREAM_RE = re.compile(r"(?:^|[._-])(" + "|".join(EVENT_MODELS) + r")(?:[._-]|$)")


class ReplayFileError(ValueError):
    """A replay file that cannot be read on (a corrupt or truncated Avro container)."""


def stream_of_file(path: Path) -> str:
    m = _STREAM_RE.search(path.name)
    if not m:
        raise ValueError(
            f"{path}: cannot tell the stream from the file name; name it like pfi.access.jsonl "
            f"(streams: {', '.join(EVENT_MODELS)})"
        )
    return m.group(1)


def replay_files(paths: list[Path]) -> list[Path]:
    """Files to replay: folders expand to their stream files; the generator's truth.json is skipped."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.is_file() and not f.name.startswith("."))
            read = [f for f in found if f.suffix in (".jsonl", ".avro") and _STREAM_RE.search(f.name)]
            left = [f.name for f in found if f not in read and f.name != "truth.json"]
            if left:  # a misspelt stream or a compressed file must not drop a stream's alerts unseen
                log.warning(
                    f"{p}: not replayed, their names tell no stream: {', '.join(left[:10])}"
                    + (f" and {len(left) - 10} more" if len(left) > 10 else "")
                    + f"; name a stream's file like pfi.access.jsonl or .avro, uncompressed "
                    f"(streams: {', '.join(EVENT_MODELS)})",
                    extra={"folder": str(p), "files": len(left)},
                )
            out += read
        elif p.name != "truth.json":
            if not p.is_file():
                raise ValueError(f"{p}: no such file")
            stream_of_file(p)
            out.append(p)
    if not out:
        raise ValueError(
            f"no stream files among {', '.join(map(str, paths))}; expected names like pfi.access.jsonl"
        )
    return out


def topics_of(files: list[Path]) -> dict[Path, str]:
    """Each file's topic: its name, or its path where two folders hold files of one name (each file
    is one partition's log: two sharing a topic would share their offsets, and their dead letters
    would be reported against one of them)."""
    names = Counter(p.name for p in files)
    return {p: p.name if names[p.name] == 1 else str(p) for p in files}


def read_raw(path: Path, topic: str | None = None) -> Iterator[RawRecord]:
    """Records of a file as RawRecords: topic = `topic` (the file name unless told), partition 0,
    offset = record number."""
    topic = topic or path.name
    if path.suffix == ".avro":
        i = 0
        with path.open("rb") as f:
            try:
                for i, rec in enumerate(fastavro.reader(f)):
                    # Decimal, UUID, bytes of a foreign schema as text: the decoder judges them
                    yield RawRecord(topic, 0, i, orjson.dumps(rec, default=str))
            # fastavro raises many types for a corrupt file (MemoryError on a bogus length)
            except Exception as e:
                raise ReplayFileError(
                    f"{path}: not a readable Avro object container file at record {i} "
                    f"({type(e).__name__}); replace it with an intact copy"
                ) from None
        return
    with path.open("rb") as f:
        for i, line in enumerate(f):
            line = line.rstrip(b"\r\n")
            if i == 0:
                line = line.removeprefix(BOM)  # a Windows export's byte-order mark is the file's, not data
            if line:
                yield RawRecord(topic, 0, i, line)


def replay(
    engine: Engine,
    decoder: Decoder,
    files: list[Path],
    batch_size: int = 5000,
    stats: Stats | None = None,
    checkpoint_keys: int = 100_000,
) -> tuple[list[Alert], list[DeadLetter]]:
    """The alerts and dead letters of the files, read as a consumer would read their topics.
    Every `checkpoint_keys` state keys changed, the state goes to the engine's local store as a
    checkpoint would take it, without a changelog: otherwise a replay holds all it changed in
    memory, and each timer scan looks through it (`TimerService._scan`)."""
    stats = stats or Stats()
    stats.begin()
    streams = {p: stream_of_file(p) for p in files}
    ordered = sorted(files, key=lambda p: streams[p] not in REFERENCE_STREAMS)
    alerts: list[Alert] = []
    dead: list[DeadLetter] = []
    # Event files are merged by record number, batch by batch, the way a consumer interleaves partitions.
    topics = topics_of(ordered)
    # a stream's files are its exports, and exports overlap: an event in two of them is one (a
    # probe's two denials, in both of two overlapping exports, were "3 denied in 10 min")
    engine.dedupe_as.update({topics[p]: f"{streams[p]}\x1ffiles" for p in ordered})
    engine.saves_seen = False  # a replay never restores: its duplicates window needs no saving
    readers = {p: read_raw(p, topics[p]) for p in ordered}
    with long_lived_load():
        for p in ordered:
            if streams[p] in REFERENCE_STREAMS:
                for batch in _batches(readers.pop(p), batch_size):
                    decoded = decoder.decode(streams[p], batch)
                    engine.apply_reference(streams[p], [m for _, m in decoded.ok])
                    stats.on_decoded(streams[p], len(decoded.ok), decoded.dead)
                    dead += decoded.dead
    iters: dict[Path, Iterator[list[RawRecord]]] = {p: _batches(r, batch_size) for p, r in readers.items()}
    finished: set[tuple[str, int]] = set()  # streams read to their end follow the instance clock
    while iters:
        for p in list(iters):
            batch = next(iters[p], [])
            if not batch:
                del iters[p]
                finished.add((streams[p], 0))
                continue
            decoded = decoder.decode(streams[p], batch)
            stats.on_decoded(streams[p], len(decoded.ok), decoded.dead, sum(decoded.unknown_fields.values()))
            dead += decoded.dead
            alerts += engine.process(streams[p], topics[p], 0, decoded.ok)
        # a stream with a file still being read holds back the timers of the tasks it feeds, even
        # when another of its files has ended
        behind = {(streams[p], 0) for p in iters}
        alerts += engine.advance(finished - behind, behind=behind)
        if engine.dirty_count() >= checkpoint_keys:
            for partition in list(engine.stores):
                engine.changes(partition)
    alerts += engine.drain()
    stats.on_alerts(alerts)
    return alerts, dead


def dead_letter_line(d: DeadLetter, path: Path) -> dict[str, object]:
    """A dead letter as `--dead-letters` writes it: where the record is and why it was refused. The
    record itself is left out: it may hold a customer's data, and its file and line find it."""
    where = file_place(path.name, d.raw.offset) or {"line": d.raw.offset + 1}
    return {"file": str(path), **where, "kind": d.kind, "field": d.field, "reason": d.message}


def _batches(records: Iterator[RawRecord], size: int) -> Iterator[list[RawRecord]]:
    batch: list[RawRecord] = []
    for r in records:
        batch.append(r)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
