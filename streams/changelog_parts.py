"""Large state values in the changelog: a value over `PART_BYTES` travels as parts.

A broker refuses a record over its size limit (Kafka's default `message.max.bytes` is 1 MiB, and
lifemon's producer refuses one over 2 MB itself), and one detector key can outgrow that: an
unauthorized-lookup episode remembers every customer an employee read out of scope, 5.6 MB for one
employee in a benchmark run. So `split` writes such a value as parts under derived keys, then a
*head* record at the value's own key that names them; `Reassembly` puts it back together on restore.
docs/state.md#large-values has the protocol and the measured cost.

- **Part keys** are `\\x00part:` + key + `\\x00` + digest + `:` + index. State keys never start with
  `\\x00` (reserved, as the commit marker's is), so a part key cannot be a real key; the digest and
  index have a fixed width, so two different parts cannot share a key.
- **The digest** (BLAKE2b, 8 bytes) of the whole value is in the part keys. A new value's parts never
  overwrite the parts of the value the last commit marker stands for, so a crash between them and
  the marker leaves that value whole, even on a compacted topic.
- **The head** is the key's record with header `lifemon.parts`; its value is
  `{"parts": n, "bytes": size, "blake2b": digest}`. Restore checks the size and the digest.
- **Order within a checkpoint**: new parts, the head, then tombstones of the parts the key's previous
  head named (a value that shrank, was deleted, or changed). A compacted topic then drops them.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import orjson

from streams.keyed_state import Change

log = logging.getLogger(__name__)

# Half of Kafka's default record-batch limit (message.max.bytes = 1,048,588, checked on the batch
# after compression). librdkafka's batch.size (1,000,000) keeps two parts out of one batch, and the
# rest of the 1 MiB covers the key, the headers, the batch overhead and lz4's worst case on
# incompressible bytes. Managed Kafkas (MSK, Event Hubs, Redpanda) default to 1 MiB as well.
PART_BYTES = 512 << 10
PART_PREFIX = b"\x00part:"
HEAD_HEADER = "lifemon.parts"
HEAD_HEADERS: list[tuple[str, str | bytes | None]] = [(HEAD_HEADER, b"1")]
_DIGEST_BYTES = 8

Headers = list[tuple[str, str | bytes | None]] | None
Record = tuple[bytes, bytes | None, Headers]  # key, value (None: tombstone), headers


def digest(value: bytes) -> bytes:
    return hashlib.blake2b(value, digest_size=_DIGEST_BYTES).hexdigest().encode()


def part_keys(key: bytes, value_digest: bytes, count: int) -> list[bytes]:
    return [PART_PREFIX + key + b"\x00" + value_digest + b":" + b"%08x" % i for i in range(count)]


def split(
    changes: list[Change], heads: dict[bytes, list[bytes]], part_bytes: int = PART_BYTES
) -> tuple[list[Record], dict[bytes, list[bytes]]]:
    """The records that carry `changes`, and the part keys each key's head names once they are
    committed (`[]`: none any more). `heads` holds the part keys of the last committed heads."""
    records: list[Record] = []
    named: dict[bytes, list[bytes]] = {}
    for key, value in changes:
        if key[:1] == b"\x00":  # reserved keys: only the tombstone of a stale part is ever written
            if value is not None:
                raise ValueError(f"state key {key!r} starts with \\x00, which the changelog reserves")
            records.append((key, None, None))
            continue
        parts: list[bytes] = []
        if value is not None and len(value) > part_bytes:
            d = digest(value)
            parts = part_keys(key, d, -(-len(value) // part_bytes))
            view = memoryview(value)
            records += [
                (pk, bytes(view[i * part_bytes : (i + 1) * part_bytes]), None) for i, pk in enumerate(parts)
            ]
            head = {"parts": len(parts), "bytes": len(value), "blake2b": d.decode()}
            records.append((key, orjson.dumps(head), HEAD_HEADERS))
        else:
            records.append((key, value, None))
        old = heads.get(key)
        if old or parts:  # a large value, now or at the last commit (a few keys of thousands)
            records += [(pk, None, None) for pk in old or () if pk not in parts]
            named[key] = parts
    return records, named


def is_head(headers: Any) -> bool:
    return bool(headers) and any(name == HEAD_HEADER for name, _ in headers)


class DamagedChangelog(RuntimeError):
    """A committed head names a part the changelog does not hold, or parts that do not add up."""


class Reassembly:
    """The restore side of one changelog partition. `note` sees every record in log order (so it
    knows which part keys still hold a value); `committed` turns the records a marker commits into
    the changes to apply, assembling each head from the parts before it."""

    def __init__(self, topic: str, partition: int):
        self.where = f"changelog {topic}[{partition}]"
        self.heads: dict[bytes, list[bytes]] = {}  # committed heads: key -> its part keys
        self.live: set[bytes] = set()  # part keys whose latest record is a value

    def note(self, key: bytes, value: bytes | None) -> None:
        if key.startswith(PART_PREFIX):
            if value is None:
                self.live.discard(key)
            else:
                self.live.add(key)

    def committed(self, records: list[tuple[bytes, bytes | None, bool]]) -> list[Change]:
        # A head's parts are written in its checkpoint, right before it: the parts held here are
        # this marker's only.
        parts: dict[bytes, bytes] = {}
        out: list[Change] = []
        for key, value, head in records:
            if key.startswith(PART_PREFIX):
                if value is None:
                    parts.pop(key, None)
                else:
                    parts[key] = value
            elif head and value is not None:
                out.append((key, self._assemble(key, orjson.loads(value), parts)))
            else:
                self.heads.pop(key, None)
                out.append((key, value))
        return out

    def _assemble(self, key: bytes, head: dict[str, Any], parts: dict[bytes, bytes]) -> bytes:
        keys = part_keys(key, head["blake2b"].encode(), head["parts"])
        missing = [i for i, pk in enumerate(keys) if pk not in parts]
        value = b"" if missing else b"".join(parts[pk] for pk in keys)
        if missing or len(value) != head["bytes"] or digest(value).decode() != head["blake2b"]:
            what = f"part(s) {missing[:5]} missing" if missing else "parts that do not match its digest"
            raise DamagedChangelog(
                f"{self.where}: the value of key {key!r} ({head['bytes']} B in {head['parts']} parts) has "
                f"{what}; the changelog was changed by something other than lifemon (compacted sooner "
                "than min.compaction.lag.ms allows, or records deleted)"
            )
        self.heads[key] = keys
        return value

    def stale(self) -> set[bytes]:
        """Part keys that still hold a value no committed head names (parts of a writer that died
        before its marker): tombstone them, or a compacted topic keeps them for ever."""
        named = {pk for keys in self.heads.values() for pk in keys}
        return self.live - named
