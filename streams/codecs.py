"""Decode raw records (Kafka messages or file lines) into validated models, in bulk.

Accepted on every stream: JSON objects; Avro in Confluent wire format (magic byte 0 + 4-byte schema
id + body); Avro with the schema id in a `schema.id` header. Anything else, or anything that fails
validation, becomes a DeadLetter with a reason a person can act on; nothing is dropped silently.
"""

from __future__ import annotations

import io
import json
import struct
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fastavro
from pydantic import ValidationError

from schemas.models import EVENT_MODELS, REFERENCE_STREAMS, Record

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
}
# Built-in schema ids for the embedded default, where no schema registry runs. With a registry
# (`schema_registry_url`), ids that are not here are fetched from it once and cached.
BUILTIN_SCHEMA_IDS = {stream: i for i, stream in enumerate(SCHEMA_FILES, start=1)}
SCHEMA_ID_HEADERS = ("schema.id", "value.schema.id", "lifemon.schema.id")


@dataclass(slots=True)
class RawRecord:
    topic: str
    partition: int
    offset: int
    value: bytes | None
    key: bytes | None = None
    headers: Sequence[tuple[str, bytes]] | None = None
    timestamp: int = 0


@dataclass(slots=True)
class DeadLetter:
    raw: RawRecord
    kind: str  # malformed | invalid | unknown_schema | oversized | empty
    field: str
    message: str

    def headers(self) -> list[tuple[str, bytes]]:
        return [
            ("error.kind", self.kind.encode()),
            ("error.field", self.field.encode()),
            ("error.message", self.message.encode()[:1000]),
            ("source.topic", self.raw.topic.encode()),
            ("source.partition", str(self.raw.partition).encode()),
            ("source.offset", str(self.raw.offset).encode()),
        ]


@dataclass
class Decoded:
    ok: list[tuple[RawRecord, Record]] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)


def load_schema(stream: str) -> dict[str, Any]:
    return json.loads((SCHEMA_DIR / f"{SCHEMA_FILES[stream]}.avsc").read_text(encoding="utf-8"))


class SchemaRegistryUnavailable(RuntimeError):
    """The registry could not be asked: an outage, not bad data, so no record is dead-lettered."""


class SchemaRegistry:
    """Schema id -> parsed Avro writer schema: a Confluent registry when configured, else the
    built-in ids (a registry's ids are its own, so the two never mix)."""

    def __init__(self, url: str | None = None):
        self.url = url.rstrip("/") if url else None
        self._readers: dict[str, Any] = {s: fastavro.parse_schema(load_schema(s)) for s in BUILTIN_SCHEMA_IDS}
        builtin = {i: self._readers[s] for s, i in BUILTIN_SCHEMA_IDS.items()}
        self._by_id: dict[int, Any] = {} if self.url else builtin

    def reader(self, stream: str) -> Any:
        return self._readers[stream]

    def writer(self, schema_id: int) -> Any | None:
        schema = self._by_id.get(schema_id)
        if schema is None and self.url:
            schema = self._fetch(schema_id)
        return schema

    def _fetch(self, schema_id: int) -> Any | None:
        try:
            with urllib.request.urlopen(f"{self.url}/schemas/ids/{schema_id}", timeout=5) as resp:
                body = json.load(resp)
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return None  # the registry answered: no such schema
            raise SchemaRegistryUnavailable(f"schema registry {self.url}: HTTP {e.code}") from e
        except OSError as e:
            raise SchemaRegistryUnavailable(f"schema registry {self.url} unreachable: {e}") from e
        if body.get("schemaType", "AVRO") != "AVRO":
            return None  # a Protobuf or JSON schema: not an Avro record, reported as unknown
        parsed = fastavro.parse_schema(json.loads(body["schema"]))
        self._by_id[schema_id] = parsed
        return parsed


def _validation_letter(raw: RawRecord, exc: ValidationError) -> DeadLetter:
    """The field and what was expected, never the offending value: it may be a card number or a PIN."""
    err = exc.errors(include_url=False, include_input=False)[0]
    if err["type"] == "json_invalid":
        return DeadLetter(
            raw, "malformed", "", f"not valid JSON: {err.get('ctx', {}).get('error', err['msg'])}"
        )
    loc = ".".join(str(p) for p in err["loc"])
    more = f"; {len(exc.errors()) - 1} more error(s)" if len(exc.errors()) > 1 else ""
    return DeadLetter(raw, "invalid", loc, f"{err['msg']}{more}")


class Decoder:
    def __init__(self, registry: SchemaRegistry | None = None, max_record_bytes: int = 256 * 1024):
        self.registry = registry or SchemaRegistry()
        self.max_record_bytes = max_record_bytes

    def decode(self, stream: str, raws: Sequence[RawRecord]) -> Decoded:
        """Decode one stream's records; each bad record gets its own reason."""
        model = EVENT_MODELS[stream]
        out = Decoded()
        for raw in raws:
            v = raw.value
            if not v:
                if v is None and stream in REFERENCE_STREAMS:
                    continue  # a tombstone on a reference topic deletes a key: nothing to decode
                out.dead.append(
                    DeadLetter(raw, "empty", "", "record has no value (tombstone or empty message)")
                )
            elif len(v) > self.max_record_bytes:
                out.dead.append(
                    DeadLetter(
                        raw,
                        "oversized",
                        "",
                        f"{len(v)} bytes exceeds max_record_bytes {self.max_record_bytes}",
                    )
                )
            elif (header_id := _schema_id_header(raw)) is not None or v[0] == 0:
                self._decode_avro(stream, model, raw, header_id, out)
            else:
                try:
                    out.ok.append((raw, model.model_validate_json(v)))
                except ValidationError as e:
                    out.dead.append(_validation_letter(raw, e))
        return out

    def _decode_avro(
        self, stream: str, model: type[Record], raw: RawRecord, header_id: int | None, out: Decoded
    ) -> None:
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
            out.dead.append(DeadLetter(raw, "unknown_schema", "", f"schema id {schema_id} is not registered"))
            return
        try:
            data = fastavro.schemaless_reader(io.BytesIO(body), writer, self.registry.reader(stream))
        except Exception as e:  # fastavro raises several types for truncated or mismatched bodies
            out.dead.append(
                DeadLetter(raw, "malformed", "", f"Avro body does not match schema {schema_id}: {e}")
            )
            return
        try:
            out.ok.append((raw, model.model_validate(data)))
        except ValidationError as e:
            out.dead.append(_validation_letter(raw, e))


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
def encode_avro(stream: str, record: Record | dict, registry: SchemaRegistry, wire: bool = True) -> bytes:
    """Avro body for `record`; with `wire`, in Confluent wire format with the built-in schema id."""
    data = record.model_dump(mode="json") if isinstance(record, Record) else record
    buf = io.BytesIO()
    if wire:
        buf.write(b"\x00" + struct.pack(">I", BUILTIN_SCHEMA_IDS[stream]))
    fastavro.schemaless_writer(buf, registry.reader(stream), data)
    return buf.getvalue()
