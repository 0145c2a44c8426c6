"""Following log files for `lifemon ship`: what was read of each file, across appends, rotation,
truncation and restarts.

A file is known by its identity `dev:inode`, which it keeps when it is renamed, not by its path:
- **rotation** (logrotate's rename, PostgreSQL's `log_filename` switch): the path names a new
  file. The old one is read to its end first, then the new one from its start;
- **truncation** (logrotate's copytruncate): the same file is shorter than what was read. It is read
  again from its start, and the loss of lines written between the last read and the truncation
  (inherent to copytruncate) is said on stderr;
- **a restart**: each file resumes from its saved mark. A file rotated away while lifemon was
  down is looked for beside its path, by identity, and finished first. A new file that reuses an
  old inode is told apart by the hash of its first bytes.

Marks are saved atomically (temporary file, fsync, rename) by the caller once the broker has
acknowledged what they cover (streams/ship.py)."""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

HEAD_BYTES = 1024  # a file's first bytes, hashed: an inode reused by a new file has other ones
READ_BYTES = 4 << 20  # read at most this much of a file at a time


def identity(st: os.stat_result) -> str:
    return f"{st.st_dev}:{st.st_ino}"


def head_hash(f: IO[bytes], length: int) -> str:
    f.seek(0)
    return hashlib.sha1(f.read(length)).hexdigest()


@dataclass
class Mark:
    """How far a file has been shipped: every record up to byte `offset`, and the first `skip`
    records of the chunk that starts there (a HAR file is one chunk of many records)."""

    path: str
    offset: int = 0
    skip: int = 0
    head: str = ""  # sha1 of the first `head_len` bytes
    head_len: int = 0

    def after(self, offset: int, skip: int) -> bool:
        return (offset, skip) > (self.offset, self.skip)


@dataclass
class Positions:
    """The position file: which shipper wrote it (its id tags its records on the topic), where to
    look on the topic for records not yet acknowledged when it was saved, and each file's mark."""

    path: Path
    shipper: str
    topic: str
    scan_from: dict[int, int] = field(default_factory=dict)  # partition -> first offset to look at
    marks: dict[str, Mark] = field(default_factory=dict)  # identity -> mark

    @classmethod
    def load(cls, path: Path) -> Positions | None:
        try:
            doc = orjson.loads(path.read_bytes())
        except FileNotFoundError:
            return None
        except orjson.JSONDecodeError as e:
            raise ValueError(
                f"{path}: not a lifemon ship position file ({e}); move it away to start over"
            ) from None
        return cls(
            path,
            doc["shipper"],
            doc["topic"],
            {int(p): o for p, o in doc["scan_from"].items()},
            {i: Mark(**m) for i, m in doc["marks"].items()},
        )

    def save(self) -> None:
        doc = {
            "shipper": self.shipper,
            "topic": self.topic,
            "scan_from": {str(p): o for p, o in sorted(self.scan_from.items())},
            "marks": {i: m.__dict__ for i, m in self.marks.items()},
        }
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the rename itself survives a power cut
        finally:
            os.close(dir_fd)


class Reading:
    """One open file, read from `offset`: `buf` holds the bytes read past it, not yet shipped."""

    def __init__(self, path: str, f: IO[bytes], ident: str, mark: Mark):
        self.path, self.f, self.ident = path, f, ident
        self.offset, self.skip = mark.offset, mark.skip
        self.head, self.head_len = mark.head, mark.head_len
        self.buf = b""
        self.rotated = False  # the path names another file now: read this one to its end, then close
        self.at_eof = False
        self.grew_at = time.monotonic()
        f.seek(self.offset)

    def fill(self, limit: int = READ_BYTES) -> bool:
        """Read what the file gained, keeping at most `limit` unshipped bytes (and reading at most
        READ_BYTES at a time); True when it gained something."""
        if len(self.buf) >= limit:
            return False
        data = self.f.read(min(READ_BYTES, limit - len(self.buf)))
        self.at_eof = not data
        if data:
            self.buf += data
            self.grew_at = time.monotonic()
        return bool(data)

    def consumed(self, nbytes: int, skip: int) -> None:
        self.buf = self.buf[nbytes:]
        self.offset += nbytes
        self.skip = skip

    def truncated(self) -> bool:
        """Shorter than what was read, or other first bytes: copytruncate, then as many bytes
        written again as were there (the size alone cannot tell)."""
        if os.fstat(self.f.fileno()).st_size < self.offset + len(self.buf):
            return True
        return bool(self.head_len) and self._hash(self.head_len) != self.head

    def restart(self) -> None:
        self.f.seek(0)
        self.offset, self.skip, self.buf, self.head, self.head_len = 0, 0, b"", "", 0

    def mark(self) -> Mark:
        length = min(self.offset + len(self.buf), HEAD_BYTES)
        if length != self.head_len:
            self.head, self.head_len = self._hash(length), length
        return Mark(self.path, self.offset, self.skip, self.head, self.head_len)

    def _hash(self, length: int) -> str:
        pos = self.f.tell()
        try:
            return head_hash(self.f, length)
        finally:
            self.f.seek(pos)

    def close(self) -> None:
        self.f.close()


def open_reading(path: str, marks: dict[str, Mark], warn: Any, name: str | None = None) -> Reading | None:
    """The file at `path` now (or `name`, a rotated file of `path`), from its mark if it has one
    and is still that file."""
    try:
        f = open(name or path, "rb")  # noqa: SIM115 - owned by the Reading until it is closed
    except FileNotFoundError:
        return None
    ident = identity(os.fstat(f.fileno()))
    mark = marks.get(ident)
    if mark is not None and not _same_file(f, mark):
        warn(f"{path}: a new file with the inode of one shipped before: read from its start")
        mark = None
    if mark is not None and mark.offset > os.fstat(f.fileno()).st_size:
        warn(
            f"{path}: shorter than shipped before (truncated while lifemon was stopped): read from its start"
        )
        mark = None
    return Reading(path, f, ident, mark or Mark(path))


def _same_file(f: IO[bytes], mark: Mark) -> bool:
    if not mark.head_len:
        return True
    same = head_hash(f, mark.head_len) == mark.head
    f.seek(0)
    return same


class Follower:
    """One path given to `lifemon ship`: the file it names now, and older files it named (rotated
    away) that are still being read to their end, oldest first."""

    def __init__(self, path: str, marks: dict[str, Mark], warn: Any):
        self.path, self.warn = path, warn
        self.readings: list[Reading] = []
        current = open_reading(path, marks, warn)
        for ident, mark in list(marks.items()):
            if mark.path != path or (current and ident == current.ident):
                continue
            found = find_rotated(Path(path), ident)
            if found is None:
                warn(
                    f"{path}: the file shipped up to byte {mark.offset} was rotated away and is gone; "
                    "lines written to it after that are lost"
                )
                continue
            reading = open_reading(path, {ident: mark}, warn, str(found))
            if reading is not None and reading.ident == ident:
                reading.rotated = True
                self.readings.append(reading)
        self.readings.sort(key=lambda r: os.fstat(r.f.fileno()).st_mtime)
        if current is not None:
            self.readings.append(current)

    def check(self) -> None:
        """At the end of what the current file holds: has the path moved on (rotation), or was
        the file cut short (truncation)?"""
        current = self.readings[-1] if self.readings and not self.readings[-1].rotated else None
        if current is not None and current.truncated():
            self.warn(
                f"{self.path}: truncated at byte {current.offset + len(current.buf)} (copytruncate): read "
                "from its start again; lines written between the last read and the truncation are lost"
            )
            current.restart()
            return
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            st = None  # rotated, the new file not created yet
        if current is not None and (st is None or identity(st) != current.ident):
            current.rotated = True
        if st is not None and (current is None or current.rotated):
            fresh = open_reading(self.path, {}, self.warn)
            if fresh is not None and all(r.ident != fresh.ident for r in self.readings):
                self.readings.append(fresh)

    def finished(self, reading: Reading) -> None:
        reading.close()
        self.readings.remove(reading)


def find_rotated(path: Path, ident: str) -> Path | None:
    """A file with this identity beside `path` (`pg.log.1`, `pg.log-20261201`, any name)."""
    try:
        entries = list(os.scandir(path.parent))
    except FileNotFoundError:
        return None
    for entry in entries:
        try:
            if entry.is_file() and identity(entry.stat()) == ident:
                return Path(entry.path)
        except FileNotFoundError:
            continue
    return None
