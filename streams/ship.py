"""`lifemon ship`: log files to a Kafka topic, for sites without Filebeat, Fluent Bit or Vector,
and for tests with real servers. One record per log entry (a multi-line statement is one record), in batches;
with `--follow` it keeps reading appends and follows rotation and truncation (streams/tail.py).

Exactly once across restarts, without transactions:
- the producer is idempotent, so its own retries never duplicate a record;
- every record carries a header `lifemon.ship` = `<shipper id> <file identity> <offset> <skip>`,
  the position *after* it;
- the position file is written (atomically) only after the broker acknowledged the batch, together
  with the topic offset from which a later start must look for records it does not cover yet;
- a start first reads the topic from there: records of this shipper that arrived after the last
  save (a kill between the acknowledgement and the save, or mid-batch) are noted by file and
  partition, and skipped as the files are read on from their saved marks. Each partition holds a
  prefix of what was sent to it (idempotent producer, in order), so the skip is exact even when a
  format keys a file's records over several partitions.

A format is one entry of FORMATS: how a file's bytes become records (`split`), and the topic they
go to by default. `split(buf, final)` gets the unread bytes and returns the complete chunks in
them, each `(bytes consumed, [(key, value), ...])`; `final` says no more bytes will follow (end of
a file not followed, or a file that stayed quiet), so a last multi-line entry is complete.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import socket
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from streams.config import Config
from streams.log_entries import Chunk, csv_records, lines, tab_continued
from streams.sinks.kafka import client_config, producer_config
from streams.tail import READ_BYTES, Follower, Mark, Positions, Reading, find_rotated, identity

Split = Callable[[bytes, bool], list[Chunk]]
HEADER = "lifemon.ship"
MAX_RECORD_BYTES = 1_000_000  # below the producer's message.max.bytes (streams/sinks/kafka.py)


@dataclass(frozen=True)
class Format:
    help: str
    split: Split
    topic: Callable[[Config], str]  # where its records go unless --topic says otherwise
    source: str = ""  # the `raw_sources` entry whose parser reads its records in `lifemon run`
    # the most bytes one chunk may span: a longer run with no complete chunk is cut there (a
    # "line" of 4 MB without a newline); a format whose chunk is a whole file raises it
    max_chunk_bytes: int = READ_BYTES


FORMATS: dict[str, Format] = {
    "pgaudit": Format(
        "PostgreSQL stderr log with pgaudit lines (a message and its tab-led lines)",
        tab_continued,
        lambda c: c.raw_sources.pgaudit.topic,
        "pgaudit",
    ),
    "pgaudit-csv": Format(
        "PostgreSQL csvlog with pgaudit lines",
        csv_records,
        lambda c: c.raw_sources.pgaudit.topic,
        "pgaudit",
    ),
    "mariadb": Format(
        "MariaDB / MySQL server_audit log", lines, lambda c: c.raw_sources.mariadb.topic, "mariadb"
    ),
    "sftp": Format(
        "OpenSSH internal-sftp lines as syslog wrote them",
        lines,
        lambda c: c.raw_sources.sftp.topic,
        "sftp",
    ),
}
_FILE_FORMAT = {"pgaudit": "stderr", "pgaudit-csv": "csvlog"}  # raw_sources.pgaudit.format of each


def unmonitored(config: Config, where: str, name: str, topic: str) -> list[str]:
    """What keeps `lifemon run`, reading this config, from monitoring records shipped as format
    `name` to `topic`: each a warning naming the key and the fix (`where`: the config file, or
    how the defaults came). A source is off by default, and an off source's topic is not read."""
    fmt = FORMATS[name]
    if not fmt.source:
        return []
    key = f"raw_sources.{fmt.source}"
    source = getattr(config.raw_sources, fmt.source)
    out = []
    if not source.enabled:
        out.append(
            f"{key}.enabled is false in {where}: `lifemon run` with this config does not read "
            f"{topic}, and nothing shipped there is monitored (its status stays at 0 records, dlq=0). "
            f"Set `{key}.enabled: true` in the config that `lifemon run` reads (docs/configuration.md), "
            "and give ship the same --config"
        )
    elif source.topic != topic:
        out.append(
            f"{key}.topic is {source.topic} in {where}: `lifemon run` with this config reads that "
            f"topic, not {topic}; set `{key}.topic: {topic}`, or ship without --topic"
        )
    want = _FILE_FORMAT.get(name)
    if want is not None and config.raw_sources.pgaudit.format != want:
        out.append(
            f"{key}.format is {config.raw_sources.pgaudit.format} in {where}, and these are "
            f"{want} files: `lifemon run` would skip their lines; set `{key}.format: {want}`"
        )
    return out


@dataclass(slots=True)
class Outgoing:
    key: bytes
    value: bytes
    partition: int
    position: bytes  # the `lifemon.ship` header: shipper, file, offset and skip after this record


class Stop:
    """A stop request that a signal handler may make. `threading.Event.set()` takes the lock
    that `Event.wait()` holds on either side of its sleep, and Python runs a handler in the main
    thread between two bytecodes: a SIGTERM landing on those lines blocked its handler on a lock
    its own thread held, and `ship --follow` never exited (once in CI, under load). `set()` here
    takes no lock, so it is safe from a handler and from another thread; the byte it writes wakes
    a `wait()` sleeping in poll."""

    def __init__(self) -> None:
        self._set = False
        self._r, self._w = os.pipe()
        os.set_blocking(self._w, False)
        self._poll = select.poll()  # not select(): a test process may hold descriptors past 1024
        self._poll.register(self._r, select.POLLIN)

    def set(self) -> None:
        if not self._set:
            self._set = True
            with contextlib.suppress(OSError):  # closed: nobody waits any more
                os.write(self._w, b"x")

    def is_set(self) -> bool:
        return self._set

    def wait(self, timeout: float) -> bool:
        if not self._set:
            self._poll.poll(timeout * 1000)
        return self._set

    def __del__(self) -> None:
        for fd in (getattr(self, "_r", -1), getattr(self, "_w", -1)):
            with contextlib.suppress(OSError):
                os.close(fd)


class ShipError(RuntimeError):
    """Shipping cannot go on (broker refused the records, position file in use); the saved
    position is where a restart resumes."""


class Shipper:
    def __init__(
        self,
        config: Config,
        bootstrap: str,
        fmt: Format,
        files: list[str],
        topic: str,
        positions: Path,
        key: str | None = None,
        follow: bool = False,
        batch: int = 5000,
        settle_s: float = 1.0,
        warn: Callable[[str], None] = print,
    ):
        self.config, self.bootstrap, self.fmt, self.topic = config, bootstrap, fmt, topic
        self.files = [str(Path(f).absolute()) for f in files]
        self.positions_path, self.follow, self.batch, self.settle_s, self.warn = (
            positions,
            follow,
            batch,
            settle_s,
            warn,
        )
        self.key = (key or socket.gethostname()).encode()
        self.client = config.kafka_settings()  # kafka.client and the Kafka secrets from the environment
        self.stop = Stop()  # set by SIGTERM/SIGINT (streams/cli.py) or another thread
        self.shipped = 0  # records acknowledged in this run
        self.skipped_large = 0
        self.partitions = 0  # of the topic, once started
        # file -> partition -> the position after the last of this shipper's records found there at
        # the start beyond the saved marks (sent before a crash): reading skips up to it
        self.landed: dict[str, dict[int, tuple[int, int]]] = {}
        self._acked: dict[int, int] = {}  # partition -> highest acknowledged offset in this batch
        self._failed: KafkaError | None = None

    # -- start: lock, positions, what the topic already holds ----------------------------------
    def _start(self) -> tuple[Positions, list[Follower]]:
        from streams.runtime import create_missing

        self.positions_path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = open(self.positions_path.with_name(self.positions_path.name + ".lock"), "w")  # noqa: SIM115
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ShipError(f"{self.positions_path} is in use by another lifemon ship") from None
        create_missing(self.bootstrap, self.config, {self.topic: {}}, self.client)
        self.producer = Producer(producer_config(self.bootstrap, self.client))
        self.partitions = self._partition_count()
        pos = Positions.load(self.positions_path)
        if pos is None:  # before the first record: where a restart must look for ours
            pos = Positions(self.positions_path, _new_id(), self.topic, self._ends(self.partitions))
            pos.save()
        elif pos.topic != self.topic:
            raise ShipError(
                f"{self.positions_path} holds positions for topic {pos.topic}, not {self.topic}; "
                "give another --positions file"
            )
        self.shipper_id = pos.shipper
        self._catch_up(pos)
        followers = [Follower(f, pos.marks, self.warn) for f in self.files]
        return pos, followers

    def _partition_count(self) -> int:
        md = self.producer.list_topics(self.topic, timeout=10)
        t = md.topics.get(self.topic)
        if t is None or t.error is not None or not t.partitions:
            raise ShipError(f"topic {self.topic} is not available on {self.bootstrap}")
        return len(t.partitions)

    def _consumer(self) -> Consumer:
        return Consumer(
            client_config(
                self.bootstrap,
                {
                    "group.id": f"lifemon-ship-{_new_id()}",
                    "enable.auto.commit": False,
                    "enable.partition.eof": True,
                    "fetch.wait.max.ms": 10,  # the end of the topic is what it looks for
                    **self.config.consumer_settings(),
                },
            )
        )

    def _ends(self, partitions: int) -> dict[int, int]:
        c = self._consumer()
        try:
            return {
                p: c.get_watermark_offsets(TopicPartition(self.topic, p), timeout=10)[1]
                for p in range(partitions)
            }
        finally:
            c.close()

    def _catch_up(self, pos: Positions, timeout_s: float = 60.0) -> None:
        """Read the topic from where the position file says records of this shipper may not be
        covered yet: what arrived is remembered by file and partition (`landed`), so reading resumes
        at the saved marks and skips exactly those records. (A file's records may go to several
        partitions when a format keys them; each partition holds a prefix of what was sent to it.)"""
        c = self._consumer()
        c.assign([TopicPartition(self.topic, p, off) for p, off in pos.scan_from.items()])
        me = pos.shipper.encode() + b" "
        pending, deadline, found = set(pos.scan_from), time.monotonic() + timeout_s, 0
        try:
            # a stop here leaves `landed` partial, which is harmless: run() then reads no file
            while pending and not self.stop.is_set():
                if time.monotonic() > deadline:
                    raise ShipError(f"could not read {self.topic} to its end within {timeout_s:.0f}s")
                for m in c.consume(1000, 0.5):
                    err = m.error()
                    if err is not None:
                        if err.code() == KafkaError._PARTITION_EOF:
                            pending.discard(m.partition())
                        continue
                    header = dict(m.headers() or ()).get(HEADER)
                    if isinstance(header, bytes) and header.startswith(me):
                        found += 1
                        _, ident, offset, skip = header.decode().split(" ")
                        parts, p = self.landed.setdefault(ident, {}), m.partition() or 0
                        parts[p] = max(parts.get(p, (0, 0)), (int(offset), int(skip)))
        finally:
            c.close()
        for ident in self.landed:
            if ident not in pos.marks:  # first shipped after the last save: which path's file is it?
                pos.marks[ident] = Mark(self._path_of(ident))
        if found:
            self.warn(
                f"{found} record(s) on {self.topic} arrived after the last saved position: not sent again"
            )

    def _path_of(self, ident: str) -> str:
        for f in self.files:
            try:
                if identity(Path(f).stat()) == ident or find_rotated(Path(f), ident):
                    return f
            except FileNotFoundError:
                continue
        return ""

    # -- the loop -------------------------------------------------------------------------------
    def run(self, progress: Callable[[str, bool], None] | None = None) -> int:
        """Ship until the files are read (or, following, until stopped). Returns records shipped."""
        pos, followers = self._start()
        started = last_progress = time.monotonic()
        try:
            while not self.stop.is_set():
                out, retired = self._take(followers)
                if out or retired:
                    self._send(out)
                    self._save(pos, followers)
                elif not self.follow:
                    break
                else:
                    self.stop.wait(0.2)
                if progress and time.monotonic() - last_progress >= 1.0:
                    last_progress = time.monotonic()
                    progress(self._line(started), False)
        finally:
            self.producer.flush(10)
            for f in followers:
                for r in f.readings:
                    r.close()
            self._lock.close()
        if progress:
            progress(self._line(started), True)
        for f in followers:
            for r in f.readings:
                if r.buf.strip():
                    self.warn(f"{r.path}: {len(r.buf)} bytes of an unfinished entry left for the next run")
        return self.shipped

    def _line(self, started: float) -> str:
        rate = self.shipped / max(time.monotonic() - started, 1e-9)
        big = f", {self.skipped_large} too large skipped" if self.skipped_large else ""
        return f"shipped {self.shipped:,} records to {self.topic} ({rate:,.0f}/s){big}"

    def _take(self, followers: list[Follower]) -> tuple[list[Outgoing], list[Reading]]:
        """Up to `batch` records from the files, oldest file of each path first; readings of rotated
        files that are done."""
        out: list[Outgoing] = []
        retired: list[Reading] = []
        for fol in followers:
            for r in list(fol.readings):
                self._read(r, out)
                if len(out) >= self.batch:
                    return out, retired
                if r.rotated and self._quiet(r):  # read to its end: the path's next file takes over
                    if r.buf:
                        self.warn(
                            f"{r.path}: rotated with an unterminated last line; {len(r.buf)} bytes dropped"
                        )
                    fol.finished(r)
                    retired.append(r)
            if self.follow and (not fol.readings or fol.readings[-1].at_eof):
                fol.check()
        return out, retired

    def _quiet(self, r: Reading) -> bool:
        """No more bytes to expect for now: the end of a file not followed, or a followed file that
        has not grown for `settle_s` (a last multi-line entry is complete then)."""
        return r.at_eof and (not self.follow or time.monotonic() - r.grew_at >= self.settle_s)

    def _read(self, r: Reading, out: list[Outgoing]) -> None:
        while len(out) < self.batch:
            grew = r.fill(self.fmt.max_chunk_bytes)
            chunks = self.fmt.split(r.buf, self._quiet(r))
            if not chunks and len(r.buf) >= self.fmt.max_chunk_bytes:  # a runaway entry: cut it
                chunks = self.fmt.split(r.buf, True) or [(len(r.buf), [(None, r.buf)])]
            if not chunks:
                if grew:  # read on: the end of the file decides whether a last entry is complete
                    continue
                return
            done = 0
            for end, records in chunks:
                for i in range(r.skip, len(records)):
                    if len(out) >= self.batch:
                        r.consumed(done, i)
                        return
                    key, value = records[i]
                    after = (r.offset + end, 0) if i == len(records) - 1 else (r.offset + done, i + 1)
                    key = key or self.key
                    partition = zlib.crc32(key) % self.partitions  # one key, one partition, in order
                    if self.landed.get(r.ident, {}).get(partition, (-1, 0)) >= after:
                        continue  # on the topic already: sent before a crash, after the last save
                    if len(value) > MAX_RECORD_BYTES:
                        self.skipped_large += 1
                        self.warn(
                            f"{r.path}: a {len(value):,}-byte entry at byte {r.offset + done} is too large; skipped"
                        )
                        continue
                    header = f"{self.shipper_id} {r.ident} {after[0]} {after[1]}".encode()
                    out.append(Outgoing(key, value, partition, header))
                done, r.skip = end, 0
            r.consumed(done, 0)
            if not grew:
                return

    def _send(self, out: list[Outgoing]) -> None:
        self._acked, self._failed = {}, None
        for o in out:
            while True:
                try:
                    self.producer.produce(
                        self.topic,
                        o.value,
                        o.key,
                        partition=o.partition,
                        headers=[(HEADER, o.position)],
                        on_delivery=self._delivered,
                    )
                    break
                except BufferError:
                    self.producer.poll(0.1)
        waited = 0
        while self.producer.flush(1.0) and self._failed is None:
            waited += 1
            if waited % 10 == 0:
                self.warn(
                    f"waiting {waited}s for {self.bootstrap} to acknowledge {len(self.producer)} record(s)"
                )
            if self.stop.is_set() and waited >= 10:
                raise ShipError(
                    "stopped before the broker acknowledged the batch; the next start finds what arrived"
                )
        if self._failed is not None:
            raise ShipError(
                f"the broker refused records for {self.topic}: {self._failed}; nothing more saved"
            )
        self.shipped += len(out)

    def _delivered(self, err: KafkaError | None, msg: Any) -> None:
        if err is not None:
            self._failed = self._failed or err
        else:
            p = msg.partition()
            self._acked[p] = max(self._acked.get(p, -1), msg.offset())

    def _save(self, pos: Positions, followers: list[Follower]) -> None:
        from streams.runtime import crash_point

        crash_point("ship_acked", self.shipped)
        # the files being read, nothing else: a retired (rotated, finished) file's mark goes
        pos.marks = {r.ident: r.mark() for fol in followers for r in fol.readings}
        # records found on the topic at the start and not yet read past must stay findable
        self.landed = {
            ident: parts
            for ident, parts in self.landed.items()
            if ident in pos.marks and max(parts.values()) > (pos.marks[ident].offset, pos.marks[ident].skip)
        }
        ahead = {p for parts in self.landed.values() for p in parts}
        for p, offset in self._acked.items():
            if p not in ahead:
                pos.scan_from[p] = offset + 1
        pos.save()


def _new_id() -> str:
    import uuid

    return uuid.uuid4().hex[:16]
