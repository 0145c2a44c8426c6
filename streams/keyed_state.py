"""Keyed state of one task (a partition number): RocksDB on local disk, a bounded write-back
cache of live objects in front of it; `streams/changelog.py` lets another process rebuild it.

The model is Kafka Streams' / quix-streams' state store (quixstreams/state/rocksdb/partition.py,
quixstreams/state/recovery.py): memory follows the cache size, not the key count; a checkpoint
costs what changed since the last one; the changelog partition, not the local disk, is the truth.
docs/state.md has the design and the measured figures.
"""

from __future__ import annotations

import heapq
import re
import shutil
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, cast

import msgspec
import orjson
from rocksdict import (
    BlockBasedIndexType,
    BlockBasedOptions,
    Cache,
    DBCompressionType,
    Options,
    Rdict,
    WriteBatch,
    WriteBufferManager,
    WriteOptions,
)

Change = tuple[bytes, bytes | None]  # encoded key, encoded value or None for a tombstone
_MISSING = object()
# The default encoder. Not orjson.dumps: each bytes it returns keeps a ~4 KiB buffer (measured:
# 100,000 encoded 72-byte records held 392 MiB with orjson 3.13, 12 MiB with msgspec), and a
# checkpoint holds one per changed key. msgspec also encodes 3-10x faster; the JSON is the same.
json_encode: Callable[[Any], bytes] = msgspec.json.Encoder().encode
# A partition's store: plain data, or a detector's object that knows `to_json()`
state_encode: Callable[[Any], bytes] = msgspec.json.Encoder(enc_hook=lambda obj: obj.to_json()).encode
# Bytes of values per RocksDB write batch. Measured on a 100 000-event run's last checkpoint (12.3 MB
# in 10 059 changes over three stores, fresh process): one batch per store 17.5-21 ms of CPU, 1 MiB
# 13-16, 256 KiB 10-11, 64 KiB 9-12; written again (warm) 16-19, 14-17, 12-13, 12-15.
WRITE_BATCH_BYTES = 256 << 10


class RocksMemory:
    """One RocksDB memory budget for every store of a process, as Kafka Streams'
    BoundedMemoryRocksDBConfig: a single block cache that memtables are charged to as well, so
    RocksDB memory stays `total_bytes` whether the process runs 2 tasks or 200."""

    def __init__(self, total_bytes: int = 64 << 20, write_buffer_share: float = 0.5):
        self.total_bytes = total_bytes
        self.cache = Cache(total_bytes)
        self.write_buffers = WriteBufferManager.new_write_buffer_manager_with_cache(
            int(total_bytes * write_buffer_share), False, self.cache
        )


_process_memory: RocksMemory | None = None


def process_memory() -> RocksMemory:
    global _process_memory
    if _process_memory is None:
        _process_memory = RocksMemory()
    return _process_memory


def _rocksdb_options(memory: RocksMemory, write_buffer_bytes: int) -> Options:
    opts = Options(raw_mode=True)
    opts.create_if_missing(True)
    opts.set_write_buffer_size(write_buffer_bytes)
    opts.set_max_write_buffer_number(2)
    opts.set_write_buffer_manager(memory.write_buffers)
    opts.set_max_background_jobs(2)
    opts.set_compression_type(DBCompressionType.lz4())
    table = BlockBasedOptions()
    table.set_block_cache(memory.cache)
    table.set_bloom_filter(10, False)  # a get() of a new key (the common case) skips the disk
    table.set_cache_index_and_filter_blocks(True)  # index + filters count against the budget too
    # Partitioned: a large SST file's filter and index are many small blocks under a pinned top level,
    # not one block of megabytes. With one block, once the store passed ~1 M keys the memtables
    # charged to the same cache kept evicting it, and every get() of a new key read it back:
    # 0.05 ms became 1-4 ms, a batch of 100,000 new records 2 s CPU became 9-30 s (docs/state.md).
    table.set_partition_filters(True)
    table.set_index_type(BlockBasedIndexType.two_level_index_search())
    table.set_pin_top_level_index_and_filter(True)
    table.set_pin_l0_filter_and_index_blocks_in_cache(True)
    table.set_metadata_block_size(4096)
    opts.set_block_based_table_factory(table)
    return opts


class KeyedStore:
    """One task's keyed state: RocksDB on local disk (rocksdict, raw bytes), a bounded in-memory
    write-back cache of live Python objects, dirty tracking.

    A value changed since the last `changes()` is either a dirty cache entry (encoded at checkpoint)
    or, once evicted, its encoding in `_pending`. So memory is cache_size live objects plus one
    encoded value per key changed in the current checkpoint interval; the engine can checkpoint
    early when `dirty_count` grows. Keys are str; RocksDB orders their UTF-8 bytes, which is the
    same order as Python's str comparison. Keys starting with "\\x00" are reserved (changelog marker).

    The local RocksDB runs without a write-ahead log (as Kafka Streams does): it is a cache of the
    changelog, so a store left behind by a crash is destroyed and restored, never trusted.
    """

    def __init__(
        self,
        path: Path,
        encode: Callable[[Any], bytes] = json_encode,
        decode: Callable[[bytes], Any] = orjson.loads,
        cache_size: int = 100_000,
        memory: RocksMemory | None = None,
        write_buffer_bytes: int = 16 << 20,
    ):
        self.path, self.encode, self.decode, self.cache_size = Path(path), encode, decode, cache_size
        self.path.mkdir(parents=True, exist_ok=True)
        self._db = Rdict(str(self.path), _rocksdb_options(memory or process_memory(), write_buffer_bytes))
        self._write_opts = WriteOptions()
        self._write_opts.disable_wal = True  # type: ignore[method-assign,assignment]  # a property at runtime
        self._cache: OrderedDict[str, Any] = OrderedDict()  # LRU: least recently used first
        self._dirty: set[str] = set()  # keys whose cached object changed; always a subset of _cache
        self._pending: dict[str, bytes | None] = {}  # evicted dirty values and tombstones; no dirty key
        self._forced: set[bytes] = set()  # keys the changelog holds otherwise than RocksDB (mark_changed)

    # -- reads and writes --------------------------------------------------------------------
    def get(self, key: str, default: Any = None) -> Any:
        """The cached live object (decoded once); mutate it, then `touch(key)`."""
        value = self._cache.get(key, _MISSING)
        if value is not _MISSING:
            self._cache.move_to_end(key)
            return value
        raw = self._pending[key] if key in self._pending else self._db.get(key.encode())
        if raw is None:
            return default
        value = self.decode(raw)
        self._cache[key] = value
        self._evict()
        return value

    def put(self, key: str, value: Any) -> None:
        cache = self._cache
        cache[key] = value
        cache.move_to_end(key)
        if key in self._dirty:
            # put again before a checkpoint wrote it (half of bulk_query's puts, measured: a window and
            # its books at every batch): dirty, so neither pending nor new to the cache to evict for
            return
        self._dirty.add(key)
        self._pending.pop(key, None)
        self._evict()

    def put_cold(self, key: str, value: Any) -> None:
        """`put` a value written once and seldom read (a duplicates window's chunk of ids, a bulk_query
        window's sealed chunk): encoded now and held only until the next checkpoint writes it, never
        as a live object in the cache, where 100 000 keys of them outlived their use (a review
        measured 25 MB a window so)."""
        self._cache.pop(key, None)
        self._dirty.discard(key)
        self._pending[key] = self.encode(value)

    def adopt(self, key: str, value: Any) -> None:
        """Replace the cached decoding of `key` by a live object built from it (a detector's
        class from its JSON): not a change, so nothing is written at the next checkpoint."""
        if key in self._cache:
            self._cache[key] = value

    def touch(self, key: str) -> None:
        """The caller mutated the object `get(key)` returned. Touch it before `cache_size` other
        keys are read, or the object has left the cache and its change would be lost."""
        if key not in self._cache:
            raise LookupError(
                f"touch({key!r}): the key is no longer cached, so its in-place change cannot be seen; "
                "touch right after mutating, or put() the object"
            )
        self._dirty.add(key)
        self._pending.pop(key, None)  # a key is dirty or pending, never both: changes() relies on it

    def delete(self, key: str) -> bool:
        """A tombstone for the next checkpoint only where RocksDB may hold the key (or the changelog
        must carry it again): a key put and deleted between two checkpoints, as most timers are,
        is forgotten here instead of counted in `dirty_count`, where a replay's fired timers had
        brought its first checkpoint forward (+92 MB of peak memory on a mixed day, for nothing to
        write; the filter ran in `changes` before, at the same cost). Returns whether it wrote one."""
        self._cache.pop(key, None)
        self._dirty.discard(key)
        raw = key.encode()
        if raw in self._forced or self._db.key_may_exist(raw):
            self._pending[key] = None
            return True
        self._pending.pop(key, None)
        return False

    def _evict(self) -> None:
        while len(self._cache) > self.cache_size:
            key, value = self._cache.popitem(last=False)
            if key in self._dirty:  # keep the change, as bytes, until the next checkpoint
                self._dirty.remove(key)
                self._pending[key] = self.encode(value)

    def unwritten(self, key: str) -> bool:
        """A change of `key`, a value or a deletion, that no checkpoint has written yet."""
        return key in self._dirty or key in self._pending

    def unwritten_value(self, key: str) -> bool:
        """A value of `key` that no checkpoint has written yet."""
        return key in self._dirty or self._pending.get(key) is not None

    def items(
        self, prefix: str = "", start: str | None = None, among: Iterable[str] | None = None
    ) -> Iterator[tuple[str, Any]]:
        """(key, value) with `key.startswith(prefix)` and `key >= start`, in key order, including
        changes not yet checkpointed. Values not in the cache are decoded, not cached (a scan must
        not flush the working set), so put() a changed one rather than touch() it. Do not change
        the store while iterating: collect first (as `TimerService.due` does).

        `among`: the keys under `prefix` whose unwritten change the scan must merge, from a caller
        that tracks its own (`TimerService`); without it, every key changed since the checkpoint."""
        low = max(prefix, start or "")
        changed = (*self._dirty, *self._pending) if among is None else among
        overlay = sorted(k for k in changed if k.startswith(prefix) and k >= low)
        raw_prefix = prefix.encode()
        i, n = 0, len(overlay)
        rows = cast(Iterator[tuple[bytes, bytes]], self._db.items(from_key=low.encode()))
        for raw_key, raw_value in rows:
            if not raw_key.startswith(raw_prefix):
                break
            key = raw_key.decode()
            while i < n and overlay[i] < key:
                yield from self._overlay_item(overlay[i])
                i += 1
            if i < n and overlay[i] == key:  # the overlay supersedes what RocksDB holds
                yield from self._overlay_item(key)
                i += 1
                continue
            cached = self._cache.get(key, _MISSING)
            yield key, self.decode(raw_value) if cached is _MISSING else cached
        for key in overlay[i:]:
            yield from self._overlay_item(key)

    def _overlay_item(self, key: str) -> Iterator[tuple[str, Any]]:
        if key in self._dirty:
            yield key, self._cache[key]
            return
        raw = self._pending[key]
        if raw is not None:  # None: a tombstone, the key is gone
            cached = self._cache.get(key, _MISSING)
            yield key, self.decode(raw) if cached is _MISSING else cached

    # -- checkpoint and restore --------------------------------------------------------------
    @property
    def dirty_count(self) -> int:
        """Keys changed since the last `changes()`: what the next checkpoint will carry."""
        return len(self._dirty) + len(self._pending)

    def changes(self) -> list[Change]:
        """Encoded (key, value-or-None) of every key changed since the last call, written to
        RocksDB and forgotten as dirty. The caller must hold on to the list until the changelog
        has acknowledged it (RocksDB is already ahead; a retry sends the same list)."""
        # A key put and deleted since the last checkpoint, never written, has no tombstone here
        # (`delete`): about as many as the values in a day of timers (measured: 41 % of a mixed
        # day's records). The local store holds what the changelog does as of the last call, bar
        # keys `mark_changed`.
        pending = self._pending
        out: list[Change] = list(zip(map(str.encode, pending), pending.values(), strict=True))
        self._pending, self._forced = {}, set()
        dirty, cache, encode = self._dirty, self._cache, self.encode
        if len(dirty) * 8 > len(cache):
            # Many dirty: walk the cache in its order, which is close to allocation order, so
            # the CPU cache helps (measured 2x faster than visiting the objects in set order).
            out += [(k.encode(), encode(v)) for k, v in cache.items() if k in dirty]
        else:
            out += [(k.encode(), encode(cache[k])) for k in dirty]
        dirty.clear()
        # In key order: RocksDB takes a sorted batch ~5x faster (measured, 100k keys: 30 ms vs 170 ms).
        out.sort(key=lambda change: change[0])
        self._write(out)
        return out

    def apply(self, changes: Iterable[Change]) -> None:
        """Restore path: write raw changelog entries, dropping any cached copy of those keys."""
        changes = list(changes)
        for raw_key, _ in changes:
            key = raw_key.decode()
            self._cache.pop(key, None)
            self._dirty.discard(key)
            self._pending.pop(key, None)
        self._write(changes)

    def mark_changed(self, raw_keys: Iterable[bytes]) -> None:
        """Make the next `changes()` carry these keys' stored values (or tombstones) again: used
        after a restore met changes without a marker, so a compacted changelog cannot keep an
        uncommitted value as a key's latest record."""
        for raw_key in raw_keys:
            key = raw_key.decode()
            self._forced.add(raw_key)
            if key not in self._dirty:
                self._pending[key] = self._db.get(raw_key)

    def _write(self, changes: list[Change]) -> None:
        """In batches of about WRITE_BATCH_BYTES, not one: RocksDB copies a batch into its memtable
        while the batch is still in the CPU's cache. Not atomic, and need not be: a store a crash
        left behind is destroyed and restored, never trusted (the class's docstring)."""
        batch, size = WriteBatch(raw_mode=True), 0
        for raw_key, raw_value in changes:
            if raw_value is None:
                batch.delete(raw_key)
            else:
                batch.put(raw_key, raw_value)
                size += len(raw_value)
                if size > WRITE_BATCH_BYTES:
                    self._db.write(batch, self._write_opts)
                    batch, size = WriteBatch(raw_mode=True), 0
        self._db.write(batch, self._write_opts)

    def __len__(self) -> int:
        """Approximate: RocksDB's `rocksdb.estimate-num-keys` (which counts a key again until
        compaction merges its versions, and deleted keys until their tombstones are compacted)
        plus the keys changed since the last checkpoint."""
        return (self._db.property_int_value("rocksdb.estimate-num-keys") or 0) + self.dirty_count

    def disk_bytes(self) -> int:
        return sum(f.stat().st_size for f in self.path.rglob("*") if f.is_file())

    def close(self) -> None:
        """Close without checkpointing: changes since the last `changes()` are dropped, as they
        never reached the changelog. The memtables are flushed (there is no WAL), so a cleanly
        closed store opens again with everything `changes()` wrote."""
        self._cache.clear()
        self._dirty.clear()
        self._pending.clear()
        self._forced.clear()
        self._db.flush()
        self._db.close()

    def destroy(self) -> None:
        self.close()
        Rdict.destroy(str(self.path))
        shutil.rmtree(self.path, ignore_errors=True)


_TIMER = re.compile(r"[0-9a-f]{16}:")  # a timer key after its prefix: the deadline, then the key


class TimerService:
    """Event-time timers of one task on top of its KeyedStore: keys 't:{deadline:016x}:{key}', so
    RocksDB keeps them in deadline order and 10 M timers cost disk, not memory (Kafka Streams'
    punctuations fire on stream time the same way). A timer is (key, deadline): registering it
    twice is one timer. Timers are state, so they reach the changelog and survive a restore."""

    def __init__(self, store: KeyedStore, prefix: str = "t:"):
        self.store: KeyedStore = store
        self.prefix = prefix  # one store can hold several services, each under its own prefix
        # The earliest deadline, kept so that `due` costs nothing until a timer is due;
        # `_known` is False when it must be looked up again (after a restore or a cancel).
        self._next: int | None = None
        self._known = False
        # The timer changes a scan merges over RocksDB, instead of every key the store changed since
        # its checkpoint (a replay, which checkpoints only every 100 000 changed keys, spent 10 % of
        # its CPU going through those at 800 000 events). Timers put since they were last seen
        # written, as a heap: a scan takes those up to its watermark, not the years of deadlines
        # beyond it. Timers deleted whose copy in RocksDB the deletion must hide: few, since most
        # timers fire before a checkpoint writes them. Both drop what a checkpoint wrote when seen.
        self._added: list[str] = []
        self._pruned_at = 0  # how many `_added` kept at its last pruning
        self._removed: set[str] = set()

    def _key(self, key: str, deadline_ms: int) -> str:
        if deadline_ms < 0:
            raise ValueError(f"timer {key!r}: deadline {deadline_ms} is negative; use epoch milliseconds")
        return f"{self.prefix}{deadline_ms:016x}:{key}"

    def register(self, key: str, deadline_ms: int) -> None:
        tkey = self._key(key, deadline_ms)
        known = self.store.unwritten_value(tkey)  # registered again before a checkpoint: in the heap
        self.store.put(tkey, 1)
        if not known:
            heapq.heappush(self._added, tkey)
        if len(self._added) > 2 * self._pruned_at + 1024:  # amortized: memory follows the unwritten
            unwritten = self.store.unwritten_value
            self._added = [k for k in self._added if unwritten(k)]
            heapq.heapify(self._added)
            self._pruned_at = len(self._added)
        if self._known and (self._next is None or deadline_ms < self._next):
            self._next = deadline_ms

    def cancel(self, key: str, deadline_ms: int) -> None:
        self._delete(self._key(key, deadline_ms))
        if self._known and self._next == deadline_ms:
            self._known = False

    def _delete(self, tkey: str) -> None:
        if self.store.delete(tkey):  # a copy in RocksDB to hide
            self._removed.add(tkey)

    def _scan(self, before: int = 0) -> Iterator[tuple[str, int]]:
        """(key, deadline) of the timers in deadline order (ties in key order): those due before
        `before`, then the next. The added ones due before it leave the heap: the caller fires
        them. A key under the prefix that is no timer (a detector's key for an id that happens to
        start like the prefix) is passed over: data must not stop the clock."""
        bound, at = f"{self.prefix}{before:016x}", len(self.prefix)
        unwritten, added = self.store.unwritten_value, self._added
        removed = self._removed = {k for k in self._removed if self.store.unwritten(k)}
        among = {*removed}
        while added and (added[0] < bound or not unwritten(added[0])):
            tkey = heapq.heappop(added)
            if unwritten(tkey):
                among.add(tkey)
        if added:
            among.add(added[0])  # the first after: the next deadline
        for tkey, _ in self.store.items(prefix=self.prefix, among=among):
            if _TIMER.match(tkey, at):
                yield tkey[at + 17 :], int(tkey[at : at + 16], 16)

    def next_deadline(self) -> int | None:
        if not self._known:
            first = next(self._scan(), None)
            self._next, self._known = (None if first is None else first[1]), True
        return self._next

    def due(self, watermark_ms: int) -> list[tuple[str, int]]:
        """Pops the (key, deadline) timers with deadline <= watermark, in deadline order (ties in
        key order)."""
        first = self.next_deadline()
        if first is None or first > watermark_ms:
            return []
        fired: list[tuple[str, int]] = []
        self._next = None
        for key, deadline in self._scan(watermark_ms + 1):
            if deadline > watermark_ms:
                self._next = deadline
                break
            fired.append((key, deadline))
        for key, deadline in fired:
            self._delete(self._key(key, deadline))
        return fired
