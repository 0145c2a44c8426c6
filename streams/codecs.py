"""Decode raw records (Kafka messages or file lines) into validated event structs, in bulk.

Accepted on every stream: JSON objects; Avro in Confluent wire format (magic byte 0 + 4-byte schema
id + body); Avro with the schema id in a `schema.id` header. Anything else, or anything that fails
validation, becomes a DeadLetter with a reason a person can act on; nothing is dropped silently.

Records decode into msgspec Structs generated from the pydantic models (`schemas/structs.py`):
the same fields and bounds at a ninth of the cost. A field the schema does not know is accepted
and counted (a producer that adds an optional field must not dead-letter everything); Avro
follows its own reader/writer schema resolution.

Event time is checked at the door (issue "Engine v2" §4): a `ts` outside the years 2000-2100 is
not epoch milliseconds (seconds, microseconds, 10**30), and an event stamped further ahead of its
record's Kafka timestamp than `event_time.max_ahead_s` (or, if configured, further behind than
`max_behind_s`) is dead-lettered, so one bad clock can never move a watermark and close every
window. Records without a Kafka timestamp (file replay) are judged against their batch's median.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import io
import json
import logging
import re
import struct
import time
import typing
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter, itemgetter
from pathlib import Path
from typing import Any

import fastavro
import msgspec
from pydantic import SecretStr

import schemas
import schemas.models
from policy.model import method_key
from schemas.models import EVENT_MODELS, MAX_TS, REFERENCE_MIN_TS, REFERENCE_STREAMS, REPEATING, STREAM_KEYS
from schemas.structs import LENIENT, STRICT
from streams import _door
from streams.avro_decode import Reader, Unsupported, compile_reader

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"
SCHEMA_FILES = {
    "access": "access_event",
    "transfer": "transfer_event",
    "sdk": "sdk_telemetry_event",
    "marketing": "marketing_push_event",
    "lifecycle": "lifecycle_event",
    "entitlements": "entitlement",
    "consents": "consent",
    "alerts": "alert",
    "customers": "customer",
}
# Built-in schema ids for the embedded default, where no schema registry runs. Written out, never
# derived from SCHEMA_FILES' order: a record written with id 3 must mean the same schema forever,
# so a new schema takes the next free number. With a registry (`schema_registry_url`) the
# registry's own ids are used instead.
BUILTIN_SCHEMA_IDS = {
    "access": 1,
    "transfer": 2,
    "sdk": 3,
    "lifecycle": 5,
    "entitlements": 6,
    "consents": 7,
    "alerts": 8,
    "customers": 9,
    "marketing": 10,  # with `kind`; 4 is the schema before it (RETIRED_SCHEMA_IDS)
}
# A built-in id whose stream's schema has since grown a field: the bodies written under it are read
# with the schema they were written with (schemas/retired/<file>.<id>.avsc), resolved to the
# stream's own, so a producer still on the older schema decodes with the new field's default (a
# body short of a field it never wrote was malformed under the grown schema).
RETIRED_SCHEMA_IDS = {4: "marketing_push_event"}
SCHEMA_ID_HEADERS = ("schema.id", "value.schema.id", "lifemon.schema.id")

MIN_TS = 946_684_800_000  # 2000-01-01: below it a `ts` is seconds, not milliseconds
log = logging.getLogger(__name__)
SKEW_SAMPLE = 5  # stamped records a batch needs to tell its partition's usual skew (`Decoder._usual_skew`)
# the most lifemon's producers send in one message (streams/sinks/kafka.py `message.max.bytes`):
# the limit of a re-keyed record too, written by lifemon from one accepted at its source
MESSAGE_MAX_BYTES = 2_000_000
TOO_DEEP = "JSON nested too deeply to be an event"
BLANK_KEY = (
    "blank (empty, or only spaces, full-width ones too): the stream is keyed and judged by it, "
    "and blank ones would be judged together as one nameless party"
)
_UNKNOWN_FIELD = re.compile(r"unknown field `([^`]*)`")
_QUOTED = re.compile(r"'[^']*'")
_MISSING = re.compile(r"missing required field `([^`]*)`")
# A Decoder's pool of repeating strings (schemas.models.REPEATING): past this many, or this long, a
# string stays as decoded, so a producer sending a new value in every event cannot grow memory
# (at most ~2 MB of short strings, 8 if all are wide)
POOL_MOST = 16_384
POOL_LONGEST = 120


class RawRecord(msgspec.Struct, gc=False):
    """One record as read: built per record on the hot path, hence a Struct (its constructor is
    C code, a dataclass's is Python), untracked by the collector as the events are (bytes, numbers
    and header tuples: never in a cycle)."""

    topic: str
    partition: int
    offset: int
    value: bytes | None
    key: bytes | None = None
    headers: Sequence[tuple[str, bytes]] | None = None
    timestamp: int = 0


# msgspec's word for an enum value it does not know, at a top-level field
_BAD_ENUM = re.compile(r"^Invalid enum value '[^']*' - at `\$\.(\w+)`$")


def _enum_words() -> dict[str, dict[str, str]]:
    """schemas/enum_words.yaml: enum name -> word as `method_key` folds it -> the value."""
    import yaml

    words: dict[str, dict[str, str]] = {}
    for name, values in yaml.safe_load(
        (Path(schemas.__file__).parent / "enum_words.yaml").read_text()
    ).items():
        members = {e.value for e in getattr(schemas.models, name)}
        for value, said in values.items():
            if value not in members:
                raise ValueError(f"schemas/enum_words.yaml: {name}.{value} is not one of {sorted(members)}")
            words.setdefault(name, {}).update(dict.fromkeys(map(method_key, said), value))
    return words


ENUM_WORDS = _enum_words()


def _enums_spelled(stream: str, raw: RawRecord, exc: Exception) -> Any | None:
    """The record, its top-level enum values read as the schema writes them: in lower case, with
    underscores for spaces and hyphens, or by a word producers write for the value
    (schemas/enum_words.yaml). A consent platform's `"channel": "SMS", "status": "WITHDRAWN"` was a
    dead letter, and the opt-out it recorded was lost to every push after it (a probe). None when
    that is not what was wrong."""
    found = _BAD_ENUM.match(str(exc))
    if found is None:
        return None
    try:
        data = msgspec.json.decode(raw.value)  # type: ignore[arg-type]
    except (msgspec.DecodeError, RecursionError):
        return None
    for _ in range(len(data) if isinstance(data, dict) else 0):
        value = data.get(found.group(1))
        if not isinstance(value, str):
            return None
        key = method_key(value)
        enum_type = _enum_type(stream, found.group(1))
        spelled = ENUM_WORDS.get(enum_type.__name__, {}).get(key, key) if enum_type else key
        if spelled == value:
            return None
        data[found.group(1)] = spelled
        try:
            return msgspec.convert(data, STRICT[stream])
        except msgspec.ValidationError as e:
            if (found := _BAD_ENUM.match(str(e))) is None:
                return None
    return None


def _malformed(raw: RawRecord, exc: Exception) -> DeadLetter:
    """A record that is not JSON, and why (the decoder's words, without what it quoted)."""
    if raw.value and raw.value.startswith(b"\xef\xbb\xbf"):
        return DeadLetter(
            raw, "malformed", "", "starts with a UTF-8 byte-order mark: send the JSON without it"
        )
    return DeadLetter(raw, "malformed", "", f"not valid JSON: {_QUOTED.sub('', str(exc))}")


def _name_of(schema: Any) -> str | None:
    """A record schema's full name, as fastavro parsed it (`cn.lifemon.pfi.Consent`)."""
    return schema.get("name") if isinstance(schema, dict) else None


HEADERS_KEPT = 100_000  # bytes of a refused record's own headers its dead-letter copy carries


# why a record was refused: the dead-letter topic's `error.kind`, and /metrics' `kind` label
DEAD_LETTER_KINDS = (
    "malformed", "invalid", "unknown_schema", "oversized", "empty", "event_time", "parser_error", "unparsed"
)  # fmt: skip


@dataclass(slots=True)
class DeadLetter:
    raw: RawRecord
    kind: str  # one of DEAD_LETTER_KINDS
    field: str
    message: str
    # when lifemon refused it, what `dead-letters --since` asks of: not its Kafka time, which a
    # producer may set to its event's (a probe's refusals of a minute ago listed as 11 months old)
    refused_at: int = dataclasses.field(default_factory=lambda: time.time_ns() // 1_000_000)

    def headers(self) -> list[tuple[str, bytes]]:
        """The record's own headers (a schema id sent as one, a producer's trace id: what repairing
        and replaying it needs), then why it was refused and where it lay."""
        own = [
            ("error.kind", self.kind.encode()),
            ("error.field", self.field.encode()),
            ("error.message", self.message.encode()[:1000]),
            ("source.topic", self.raw.topic.encode()),
            ("source.partition", str(self.raw.partition).encode()),
            ("source.offset", str(self.raw.offset).encode()),
        ]
        ours = {name for name, _ in own}
        given = self.raw.headers or ()
        pairs = given.items() if isinstance(given, Mapping) else given  # faust may give a mapping
        kept = [(name, value or b"") for name, value in pairs if name not in ours]
        size = sum(len(name) + len(value) for name, value in kept)
        if size > HEADERS_KEPT:  # with the value's own cap, the copy stays under message.max.bytes
            kept = [
                (
                    "error.headers_dropped",
                    f"{len(kept)} headers, {size} bytes: read them at the source offset".encode(),
                )
            ]
        return [*kept, *own]


@dataclass
class Decoded:
    ok: list[tuple[RawRecord, Any]] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    unknown_fields: Counter = field(default_factory=Counter)  # field name -> records that carried it
    # raw logs: objects the source mapping lacks, (offset, event time, kind, name) (streams/sources)
    gaps: list[tuple[int, int, str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class EventTimeRule:
    """How far an event's own time may stray from its record's Kafka timestamp."""

    max_ahead_ms: int = 300_000
    max_behind_ms: int | None = None  # late is not poison: history (a 2012 collection) is legitimate
    # a file's records are judged against their batch's median, which a sparse case file (a deletion
    # request, then one record three weeks on) puts far behind its last record
    file_max_ahead_ms: int = 31 * 86_400_000
    # nothing has happened ahead of this machine's clock, beyond its skew from the producers' clocks
    max_ahead_of_clock_ms: int = 3_600_000


def load_schema(stream: str) -> dict[str, Any]:
    return json.loads((SCHEMA_DIR / f"{SCHEMA_FILES[stream]}.avsc").read_text(encoding="utf-8"))


def _retired(schema_id: int, name: str) -> dict[str, Any]:
    return json.loads((SCHEMA_DIR / "retired" / f"{name}.{schema_id}.avsc").read_text(encoding="utf-8"))


class SchemaRegistryUnavailable(RuntimeError):
    """The registry could not be asked: an outage, not bad data, so no record is dead-lettered."""


class SchemaRegistry:
    """Schema id -> parsed Avro writer schema: a Confluent registry when configured (through
    confluent_kafka.schema_registry), else the built-in ids (a registry's ids are its own, so the
    two never mix).

    A schema the registry holds but lifemon cannot read (Confluent schema references, a type it
    does not define, a default of the wrong type) is bad data, not an outage: its records are
    dead-lettered with the reason (`unusable`), and the verdict is kept, since a registry never
    changes the schema behind an id. A probe's one such record stopped the monitor on every start."""

    def __init__(self, url: str | None = None, user_info: SecretStr | None = None):
        self.url = url.rstrip("/") if url else None
        self._user_info = user_info  # basic auth, from LIFEMON_SCHEMA_REGISTRY_USER_INFO
        self._readers: dict[str, Any] = {s: fastavro.parse_schema(load_schema(s)) for s in BUILTIN_SCHEMA_IDS}
        builtin = {i: self._readers[s] for s, i in BUILTIN_SCHEMA_IDS.items()}
        builtin |= {i: fastavro.parse_schema(_retired(i, name)) for i, name in RETIRED_SCHEMA_IDS.items()}
        self._by_id: dict[int, Any] = {} if self.url else builtin
        self._unreadable: dict[int, str] = {}  # schema id -> why the registry's schema cannot be read
        self._client: Any = None
        self._compiled: dict[tuple[str, int], Reader | None] = {}
        self._by_stream: dict[str, Reader | None] = {}

    def reader(self, stream: str) -> Any:
        return self._readers[stream]

    def compiled(self, stream: str, schema_id: int, writer: Any) -> Reader | None:
        """A compiled reader (streams/avro_decode.py) for bodies `writer` wrote, when it reads them
        exactly as fastavro would: the writer is the stream's own schema, so nothing is resolved."""
        key = (stream, schema_id)
        if key not in self._compiled:
            self._compiled[key] = self._stream_reader(stream) if writer == self._readers[stream] else None
        return self._compiled[key]

    def _stream_reader(self, stream: str) -> Reader | None:
        """The stream's own schema compiled, once for every schema id that names it."""
        if stream not in self._by_stream:
            self._by_stream[stream] = None  # fastavro reads what the compiler cannot write code for
            with contextlib.suppress(Unsupported):
                self._by_stream[stream] = compile_reader(
                    fastavro.parse_schema(load_schema(stream), expand=True)
                )
        return self._by_stream[stream]

    def writer(self, schema_id: int) -> Any | None:
        """The writer schema, or None: `unusable` says why."""
        schema = self._by_id.get(schema_id)
        if schema is None and self.url and schema_id not in self._unreadable:
            schema = self._fetch(schema_id)
        return schema

    def unusable(self, schema_id: int) -> str:
        """Why `writer(schema_id)` is None, as a dead letter's reason."""
        return self._unreadable.get(schema_id) or f"schema id {schema_id} is not registered"

    def _fetch(self, schema_id: int) -> Any | None:
        from confluent_kafka.schema_registry import SchemaRegistryClient
        from confluent_kafka.schema_registry.error import SchemaRegistryError

        if self._client is None:
            auth = {"basic.auth.user.info": self._user_info.get_secret_value()} if self._user_info else {}
            self._client = SchemaRegistryClient({"url": self.url, "max.retries": 1, "timeout": 5, **auth})
        try:
            found = self._client.get_schema(schema_id)
        except SchemaRegistryError as e:
            if e.http_status_code == 404:
                return None  # the registry answered: no such schema
            raise SchemaRegistryUnavailable(f"schema registry {self.url}: HTTP {e.http_status_code}") from e
        except Exception as e:  # httpx raises several connection types; all mean "could not ask"
            raise SchemaRegistryUnavailable(f"schema registry {self.url} unreachable: {e}") from e
        if (found.schema_type or "AVRO") != "AVRO":
            return None  # a Protobuf or JSON schema: not an Avro record, reported as unknown
        try:
            parsed = fastavro.parse_schema(json.loads(found.schema_str))
        except Exception as e:  # json's and fastavro's several types, deep nesting's RecursionError
            self._unreadable[schema_id] = _unreadable(schema_id, found, e)  # the runtime logs each refusal
            return None
        self._by_id[schema_id] = parsed
        return parsed


def _unreadable(schema_id: int, found: Any, error: Exception) -> str:
    """Why a schema the registry answered with cannot be read, with what to do, in a line (a
    dead letter's reason is cut at 1000 bytes; fastavro's message may dump a whole schema)."""
    references = [r.name for r in found.references or () if r.name]
    if references:
        why = (
            f"it references {', '.join(references)}; schema references are not supported "
            "(register it with the referenced types written inline)"
        )
    elif isinstance(error, json.JSONDecodeError):
        why = f"the registry's schema text is not JSON ({error.msg} at character {error.pos})"
    elif isinstance(error, fastavro.schema.UnknownType):
        why = f"it uses type {error.name}, which it does not define and Avro does not have"
    else:
        said = str(error).split("\n", 1)[0][:160]
        why = f"fastavro refuses it ({type(error).__name__}: {said})"
    return f"schema {schema_id} cannot be read: {why}"


def _reason(stream: str, exc: Exception) -> tuple[str, str]:
    """(field, message) of a validation error, never the offending value: it may be a card number."""
    text = str(exc)
    msg, _, where = text.partition(" - at `")
    path = re.sub(r"\[\d+\]", "", where.rstrip("`").removeprefix("$").lstrip("."))
    missing = _MISSING.search(msg)
    if missing:
        return ".".join(p for p in (path, missing.group(1)) if p), msg
    if path == STREAM_KEYS[stream] and msg == "Expected `str` of length >= 1":
        return path, BLANK_KEY  # said as `Decoder._check_keys` says a key of blanks
    if msg.startswith("Invalid enum value"):
        allowed = _enum_values(stream, path)
        return path, f"not one of: {', '.join(allowed)}" if allowed else "not an allowed value"
    # a key is input too (a card number can be one): "unknown field `6222...`" names no key
    return path, _UNKNOWN_FIELD.sub("an unknown field", _QUOTED.sub("a value", msg))


def _enum_values(stream: str, path: str) -> list[str]:
    """The allowed values of a top-level enum field (`Channel | None` included)."""
    found = _enum_type(stream, path)
    return [e.value for e in found] if found else []


def _enum_type(stream: str, path: str) -> type[enum.Enum] | None:
    f = EVENT_MODELS[stream].model_fields.get(path)
    candidates = (f.annotation, *typing.get_args(f.annotation)) if f else ()
    return next((a for a in candidates if isinstance(a, type) and issubclass(a, enum.Enum)), None)


class Decoder:
    def __init__(
        self,
        registry: SchemaRegistry | None = None,
        max_record_bytes: int = 256 * 1024,
        event_time: EventTimeRule | None = None,
        clock: Callable[[], float] = time.time,
    ):
        """`clock`: this machine's, in seconds: no event is dated ahead of it."""
        self.registry = registry or SchemaRegistry()
        self.max_record_bytes = max_record_bytes
        self.event_time = event_time or EventTimeRule()
        self.clock = clock
        self._strict: dict[str, msgspec.json.Decoder] = {
            s: msgspec.json.Decoder(t) for s, t in STRICT.items()
        }
        self._lenient: dict[str, msgspec.json.Decoder] = {
            s: msgspec.json.Decoder(t) for s, t in LENIENT.items()
        }
        # a batch of Avro, transcoded to msgpack in C, into a list of Structs by one call
        self._batches: dict[str, msgspec.msgpack.Decoder] = {
            s: msgspec.msgpack.Decoder(list[t])  # type: ignore[valid-type]
            for s, t in STRICT.items()
        }
        # (topic, partition) -> how far its records' event times usually run ahead of their Kafka
        # timestamps (`_usual_skew`): a producer whose clock is behind the systems it ships for
        self.skews: dict[tuple[str, int], int] = {}
        self.pool: dict[str, str] = {}  # the repeating strings, one object each (`decode`)

    @classmethod
    def for_config(cls, config: Any) -> Decoder:
        """The decoder a streams.config.Config asks for (registry, record size, event-time rule)."""
        et = config.event_time
        rule = EventTimeRule(
            et.max_ahead_s * 1000,
            et.max_behind_s * 1000 if et.max_behind_s is not None else None,
            et.file_max_ahead_s * 1000,
            et.max_ahead_of_clock_s * 1000,
        )
        return cls(
            SchemaRegistry(config.schema_registry_url, config.secrets.schema_registry_user_info),
            config.max_record_bytes,
            rule,
        )

    def decode(self, stream: str, raws: Sequence[RawRecord], check_time: bool = True) -> Decoded:
        """Decode one stream's records; each bad record gets its own reason. `check_time=False`
        for records judged at their source (a repartition topic's): their event time, and their
        size, which pseudonyms longer than the ids they replace may have grown past the limit."""
        out = Decoded()
        strict = self._strict[stream]
        limit = self.max_record_bytes if check_time else MESSAGE_MAX_BYTES
        if raws and raws[0].value and raws[0].value[0] == 0 and self._decode_avro_batch(stream, raws, out):
            raws = ()  # every record read at once
        elif raws:
            # plain JSON records in one C loop, up to the first record that needs a word (or is not
            # JSON): from there on, one by one
            raws = raws if isinstance(raws, list) else list(raws)
            out.ok, stop = _door.decode_json(raws, strict.decode, limit)
            raws = raws[stop:]
        for raw in raws:
            v = raw.value
            if not v:
                if v is None and stream in REFERENCE_STREAMS:
                    continue  # a tombstone on a reference topic deletes a key: nothing to decode
                out.dead.append(
                    DeadLetter(raw, "empty", "", "record has no value (tombstone or empty message)")
                )
            elif len(v) > limit:
                out.dead.append(
                    DeadLetter(raw, "oversized", "", f"{len(v)} bytes exceeds max_record_bytes {limit}")
                )
            elif raw.headers and (header_id := _schema_id_header(raw)) is not None:
                self._decode_avro(stream, raw, header_id, out)
            elif v[0] == 0:
                self._decode_avro(stream, raw, None, out)
            else:
                try:
                    out.ok.append((raw, strict.decode(v)))
                except msgspec.DecodeError as e:
                    self._lenient_json(stream, raw, e, out)
                except RecursionError:  # msgspec's own depth limit on objects nested thousands deep
                    out.dead.append(DeadLetter(raw, "malformed", "", TOO_DEEP))
        if out.ok and check_time:
            self._check_keys(stream, out)
            self._check_time(stream, out)
        # equal systems, purposes, field ids... as one object: hashed once, and every dict lookup
        # downstream (profiles, rollups, folds) finds its key by identity (docs/benchmarks.md, fiftieth stop)
        _door.share(out.ok, REPEATING[stream], self.pool, POOL_MOST, POOL_LONGEST)
        return out

    def _check_keys(self, stream: str, out: Decoded) -> None:
        """Refuse the records whose key (`STREAM_KEYS`: the actor, recipient, SDK, subject or record
        the stream is keyed and judged by) is blank: empty, or blanks only, full-width ones too, as
        `policy.model.id_spelling` trims them. A probe's `actor_id: " "` (a CHAR column's padding)
        and `recipient_id: "\u3000"` were judged as one actor named "", every employee whose log
        line lost its user pooled into one bulk_query. One C pass over the batch when none is."""
        if not _door.any_blank(out.ok, STREAM_KEYS[stream]):  # one C pass over the batch
            return
        key = _KEY_OF[stream]
        kept = []
        for pair in out.ok:
            if key(pair[1]).strip():
                kept.append(pair)
            else:
                out.dead.append(DeadLetter(pair[0], "invalid", STREAM_KEYS[stream], BLANK_KEY))
        out.ok = kept

    def _lenient_json(self, stream: str, raw: RawRecord, exc: Exception, out: Decoded) -> None:
        unknown = _UNKNOWN_FIELD.search(str(exc))
        if unknown is None:
            if isinstance(exc, msgspec.ValidationError):
                if (spelled := _enums_spelled(stream, raw, exc)) is not None:
                    out.ok.append((raw, spelled))
                    return
                out.dead.append(DeadLetter(raw, "invalid", *_reason(stream, exc)))
            else:
                out.dead.append(_malformed(raw, exc))
            return
        try:
            lenient = self._lenient[stream].decode(raw.value)  # type: ignore[arg-type]
        except msgspec.ValidationError as e:
            out.dead.append(DeadLetter(raw, "invalid", *_reason(stream, e)))
            return
        except msgspec.DecodeError as e:  # broken after the unknown field (a probe's was "invalid")
            out.dead.append(_malformed(raw, e))
            return
        except RecursionError:  # an unknown field whose value nests thousands deep
            out.dead.append(DeadLetter(raw, "malformed", "", TOO_DEEP))
            return
        # the same Struct types as every other record of the stream, nested ones (an entitlement's
        # approvals) included: the rare path pays the copy
        out.ok.append((raw, msgspec.convert(msgspec.to_builtins(lenient), STRICT[stream])))
        out.unknown_fields[unknown.group(1)] += 1

    def _check_time(self, stream: str, out: Decoded, note: Callable[[int], str] | None = None) -> None:
        """Refuse the records whose event time strays from its clock; `note(offset_ms)` may add to
        the reason (a raw log's source knows what a whole number of hours off means)."""
        reference = stream in REFERENCE_STREAMS  # valid-from: 0 means always, a future date is a plan
        # a reference record's history may go back decades, but not to 1970: a valid-from in seconds
        # lands there (a probe's opt-out in seconds was a 1970 record, and lost to the grant before it)
        low = REFERENCE_MIN_TS if reference else MIN_TS
        ahead, behind = self.event_time.max_ahead_ms, self.event_time.max_behind_ms
        if behind is None:
            behind = MAX_TS
        # nothing has happened ahead of this machine's clock: a shipper that stamps CreateTime with
        # the event time passed a record dated 2099 (a probe: 73 retention timers fired at once)
        now, skew = int(self.clock() * 1000), self.event_time.max_ahead_of_clock_ms
        high = MAX_TS if reference else min(MAX_TS, now + skew)
        # the common case passes in C, without a call per record; what C cannot compare exactly
        # (a number past 64 bits, an allowance given as a float) it doubts, and Python decides
        doubtful = [
            pair
            for pair in _door.doubtful_times(out.ok, low, high, ahead, behind, reference)
            if not (
                (low <= (ts := pair[1].ts) < high or (reference and ts == 0))
                and (
                    reference
                    or ((stamp := pair[0].timestamp) > 0 and ts - stamp <= ahead and stamp - ts <= behind)
                )
            )
        ]
        if not doubtful:
            return
        usual = {} if reference else self._usual_skew(out.ok)
        times = sorted(ev.ts for _, ev in out.ok)
        n = len(times)
        median, spread = times[n // 2], times[(3 * n) // 4] - times[n // 4]
        rejected = set()
        for pair in doubtful:
            raw, ev = pair
            if not low <= ev.ts < MAX_TS:
                why: str | None = (
                    "not epoch milliseconds between the years 1971 and 2100 (0: in force always)"
                    if reference
                    else "not epoch milliseconds between the years 2000 and 2100"
                )
            elif ev.ts >= high:
                why = (
                    f"{(ev.ts - now) // 1000} s ahead of this machine's clock, beyond the allowed "
                    f"{skew // 1000} s (event_time.max_ahead_of_clock_s)"
                )
            else:
                why = self._skew(
                    ev.ts, raw.timestamp, median, spread, usual.get((raw.topic, raw.partition), 0)
                )
                if why and note is not None:
                    why += note(ev.ts - (raw.timestamp if raw.timestamp > 0 else median))
            if why:
                out.dead.append(DeadLetter(raw, "event_time", "ts", why))
                rejected.add(id(pair))
        out.ok = [pair for pair in out.ok if id(pair) not in rejected]

    def _usual_skew(self, pairs: list[tuple[Any, Any]]) -> dict[tuple[str, int], int]:
        """Per source partition, how far its records' event times usually run ahead of their Kafka
        timestamps: the median over a batch of SKEW_SAMPLE stamped records or more, else what the
        partition's last such batch said. A producer whose clock is 6 minutes behind the systems'
        had every record refused (a probe's: 23 of 56 alerts lost); a record ahead of its own
        partition's usual still is. Only a skew ahead is learned, and the machine's clock still
        bounds every record (`max_ahead_of_clock_s`)."""
        offsets: dict[tuple[str, int], list[int]] = {}
        for raw, ev in pairs:
            if raw.timestamp > 0:
                offsets.setdefault((raw.topic, raw.partition), []).append(ev.ts - raw.timestamp)
        for tp, found in offsets.items():
            if len(found) >= SKEW_SAMPLE:
                skew = sorted(found)[len(found) // 2]
                if skew > self.event_time.max_ahead_ms and tp not in self.skews:
                    log.warning(
                        f"records on {tp[0]} partition {tp[1]} are dated {skew // 1000} s ahead of their "
                        "Kafka timestamps: the producer's clock is behind the systems it ships for. Each "
                        "is judged against that partition's usual skew; fix the producer's clock (NTP)",
                        extra={"topic": tp[0], "partition": tp[1], "skew_s": skew // 1000},
                    )
                if skew > 0:
                    self.skews[tp] = skew
                else:
                    self.skews.pop(tp, None)
        return {tp: self.skews.get(tp, 0) for tp in offsets}

    def _skew(self, ts: int, kafka_ts: int, median: int, spread: int, usual: int = 0) -> str | None:
        """Why `ts` strays too far from its clock, or None. The clock is the record's Kafka
        timestamp, and the skew ahead of it its partition's records usually have (`usual`);
        without one (a file) it is the batch's median, and a file batch may span a day
        or years of history, so the allowance ahead grows with the batch's interquartile spread,
        and is never less than `file_max_ahead_ms`."""
        rule = self.event_time
        if kafka_ts > 0:
            ref, ahead, key = kafka_ts + usual, rule.max_ahead_ms, "max_ahead_s"
            what = "its record's Kafka timestamp" + (
                f" and the {usual // 1000} s its partition's records usually run ahead of theirs"
                if usual
                else ""
            )
        else:
            ref, what, key = median, "the median of its batch", "file_max_ahead_s"
            ahead = max(rule.max_ahead_ms, rule.file_max_ahead_ms, 4 * spread)
        behind = rule.max_behind_ms
        if ts - ref > ahead:
            return f"{(ts - ref) // 1000} s ahead of {what}, beyond the allowed {ahead // 1000} s (event_time.{key})"
        if behind is not None and ref - ts > behind:
            return f"{(ref - ts) // 1000} s behind {what}, beyond the allowed {behind // 1000} s (event_time.max_behind_s)"
        return None

    def _decode_avro_batch(self, stream: str, raws: Sequence[RawRecord], out: Decoded) -> bool:
        """A batch of Avro in wire format, every record under one schema id the compiled reader
        takes, read and validated by C loops over the batch (a Python step per record cost a
        third of the decode). False, with nothing decoded, if the batch is not such or any record
        fails: then each is decoded alone, with its own reason."""
        values = list(map(_value, raws))
        if not all(values) or max(map(len, values)) > self.max_record_bytes or any(map(_headers, raws)):
            return False  # an empty record, an oversized one, or one whose schema id may be a header
        heads = set(map(itemgetter(slice(0, 5)), values))
        if len(heads) != 1 or len(head := heads.pop()) != 5:
            return False
        schema_id = struct.unpack(">I", head[1:])[0]
        writer = self.registry.writer(schema_id)
        reader = self.registry.compiled(stream, schema_id, writer) if writer is not None else None
        if reader is None:
            return False
        try:
            events = reader.many(values, 5, self._batches[stream])
        except Exception:  # a body the reader cannot take, a value out of bounds: record by record
            return False
        out.ok += zip(raws, events, strict=True)
        return True

    def _mismatch(self, stream: str, schema_id: int, writer: Any, error: Exception) -> str:
        """Why a body does not read, in a line: another stream's schema named as such, else the
        error's first words (fastavro's message may dump a whole schema)."""
        wrote, wanted = _name_of(writer), _name_of(self.registry.reader(stream))
        if wrote and wanted and wrote.rsplit(".", 1)[-1] != wanted.rsplit(".", 1)[-1]:
            return f"schema {schema_id} is {wrote}, not {stream}'s {wanted}: the producer used another stream's schema"
        said = str(error).split("\n", 1)[0]
        said = said.split(": {", 1)[0].split(" {", 1)[0][:160]  # up to a dumped schema
        return f"Avro body does not match schema {schema_id} ({wrote or 'unnamed'}): {type(error).__name__}: {said}"

    def _decode_avro(self, stream: str, raw: RawRecord, header_id: int | None, out: Decoded) -> None:
        value = raw.value
        assert value is not None
        if header_id is not None:
            schema_id, body = header_id, value
        elif len(value) >= 5:
            schema_id, body = struct.unpack(">I", value[1:5])[0], value[5:]
        else:
            out.dead.append(DeadLetter(raw, "malformed", "", "Avro wire format needs 5 header bytes"))
            return
        if schema_id < 0:
            out.dead.append(DeadLetter(raw, "malformed", "", "schema id header is not a number"))
            return
        writer = self.registry.writer(schema_id)
        if writer is None:
            out.dead.append(DeadLetter(raw, "unknown_schema", "", self.registry.unusable(schema_id)))
            return
        data: Any = None
        compiled = self.registry.compiled(stream, schema_id, writer)
        if compiled is not None:
            with contextlib.suppress(Exception):  # straight into its Struct, as a batch is read
                out.ok.append((raw, compiled.many([body], 0, self._batches[stream])[0]))
                return
            with contextlib.suppress(Exception):  # fastavro reads it again below, naming what is wrong
                data = compiled(body)
        if data is None:
            read = io.BytesIO(body)
            try:
                data = fastavro.schemaless_reader(read, writer, self.registry.reader(stream))
                if read.tell() != len(body):  # what the C reader refuses too (streams/_avro.c)
                    raise ValueError(f"{len(body) - read.tell()} bytes after the value")
            except Exception as e:  # fastavro raises several types for truncated or mismatched bodies
                out.dead.append(
                    DeadLetter(raw, "malformed", "", self._mismatch(stream, schema_id, writer, e))
                )
                return
        try:
            out.ok.append((raw, msgspec.convert(data, STRICT[stream])))
        except msgspec.ValidationError as e:
            out.dead.append(DeadLetter(raw, "invalid", *_reason(stream, e)))


_value = attrgetter("value")
_headers = attrgetter("headers")
_KEY_OF = {stream: attrgetter(key) for stream, key in STREAM_KEYS.items()}


def _schema_id_header(raw: RawRecord) -> int | None:
    if not raw.headers:
        return None
    for k, v in raw.headers:
        if k in SCHEMA_ID_HEADERS:
            try:
                return int(v)
            except (TypeError, ValueError):
                return -1
    return None


# -- encoding (generator, tests, benchmarks) -----------------------------------------------------
def encode_avro(stream: str, record: Any, registry: SchemaRegistry, wire: bool = True) -> bytes:
    """Avro body for `record` (a model, a struct or a dict); with `wire`, in Confluent wire format
    with the built-in schema id."""
    if hasattr(record, "model_dump"):
        data = record.model_dump(mode="json")
    elif isinstance(record, msgspec.Struct):
        data = msgspec.to_builtins(record)
    else:
        data = record
    buf = io.BytesIO()
    if wire:
        buf.write(b"\x00" + struct.pack(">I", BUILTIN_SCHEMA_IDS[stream]))
    fastavro.schemaless_writer(buf, registry.reader(stream), data)
    return buf.getvalue()
