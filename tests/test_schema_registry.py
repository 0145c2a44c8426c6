"""A Confluent schema registry over HTTP: ids it holds are fetched, ids it lacks and schemas it
holds but lifemon cannot read are dead letters with their reason, and a registry that cannot be
asked is an outage, waited out (streams/runtime.py `_decode`), never a record's fault."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import fastavro
import pytest
from conftest import access

from schemas.structs import from_model
from streams.codecs import (
    Decoder,
    RawRecord,
    SchemaRegistry,
    SchemaRegistryUnavailable,
    encode_avro,
    load_schema,
)

ACCESS = load_schema("access")
ADDRESS_FIELD = {"name": "addr", "type": ["null", "com.bank.Address"], "default": None}
# id -> the registry's answer for GET /schemas/ids/{id}
ANSWERS: dict[int, dict[str, Any]] = {
    4242: {"schema": json.dumps(ACCESS)},
    101: {
        "schema": json.dumps({**ACCESS, "fields": [*ACCESS["fields"], ADDRESS_FIELD]}),
        "references": [{"name": "com.bank.Address", "subject": "address-value", "version": 1}],
    },
    102: {"schema": json.dumps({"type": "record", "name": "X", "fields": [{"name": "a", "type": "nosuch"}]})},
    105: {
        "schema": json.dumps(
            {"type": "record", "name": "Y", "fields": [{"name": "a", "type": "string", "default": 5}]}
        )
    },
    100: {"schema": "{not json"},
}


class Registry:
    """A registry answering from ANSWERS (404 for any other id), counting what it was asked."""

    def __init__(self) -> None:
        asked = self.asked = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                schema_id = int(self.path.rsplit("/", 1)[-1])
                asked.append(schema_id)
                answer = ANSWERS.get(schema_id)
                self.send_response(200 if answer else 404)
                self.end_headers()
                self.wfile.write(json.dumps(answer or {"error_code": 40403}).encode())

            def log_message(self, *args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def registry() -> Iterator[Registry]:
    served = Registry()
    yield served
    served.stop()


def wire(schema_id: int, offset: int = 0) -> RawRecord:
    """An access in Confluent wire format under `schema_id`."""
    (ev,) = access(n=1)
    body = encode_avro("access", ev, SchemaRegistry(), wire=False)
    return RawRecord("pfi.access", 0, offset, b"\x00" + schema_id.to_bytes(4, "big") + body, b"e1")


def test_unknown_ids_are_fetched_from_a_schema_registry(registry: Registry) -> None:
    reg = SchemaRegistry(registry.url)
    (ev,) = access(n=1)
    out = Decoder(reg).decode("access", [wire(4242), wire(4243, 1), wire(1, 2)])
    assert [m for _, m in out.ok] == [from_model("access", ev)]
    # 4243 is not in the registry; built-in id 1 is not consulted when a registry is configured
    assert [(d.kind, d.message) for d in out.dead] == [
        ("unknown_schema", "schema id 4243 is not registered"),
        ("unknown_schema", "schema id 1 is not registered"),
    ]
    registry.stop()
    with pytest.raises(SchemaRegistryUnavailable):  # an outage is not bad data: nothing is dead-lettered
        Decoder(reg).decode("access", [wire(4243)])


@pytest.mark.parametrize(
    ("schema_id", "reason"),
    [
        (
            101,
            "schema 101 cannot be read: it references com.bank.Address; schema references are not "
            "supported (register it with the referenced types written inline)",
        ),
        (
            102,
            "schema 102 cannot be read: it uses type nosuch, which it does not define and Avro does not have",
        ),
        (
            105,
            "schema 105 cannot be read: fastavro refuses it (SchemaParseException: Default value <5> "
            "must match schema type: string)",
        ),
        (
            100,
            "schema 100 cannot be read: the registry's schema text is not JSON (Expecting property "
            "name enclosed in double quotes at character 1)",
        ),
    ],
    ids=["schema references", "unknown type", "bad default", "schema text not JSON"],
)
def test_a_registered_schema_lifemon_cannot_read_is_a_dead_letter_naming_why(
    registry: Registry, schema_id: int, reason: str
) -> None:
    """A probe's one record under a schema with Confluent references stopped `lifemon run`, and
    every restart: the registry answered, so the record is bad data, and the others carry on."""
    (ev,) = access(n=1)
    out = Decoder(SchemaRegistry(registry.url)).decode("access", [wire(schema_id), wire(4242, 1)])
    assert [(d.raw.offset, d.kind, d.field, d.message) for d in out.dead] == [
        (0, "unknown_schema", "", reason)
    ]
    assert [(r.offset, m) for r, m in out.ok] == [(1, from_model("access", ev))]


def test_an_unreadable_schema_is_judged_once(registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    """A registry never changes the schema behind an id: the verdict stands, and a stream of such
    records costs neither a request nor a parse each, nor does a batch of them (read one by one
    after the batch path)."""
    decoder = Decoder(SchemaRegistry(registry.url))
    records = [wire(101, offset) for offset in range(3)]
    parsed = []
    parse = fastavro.parse_schema
    monkeypatch.setattr(
        fastavro, "parse_schema", lambda schema, **kw: parsed.append(1) or parse(schema, **kw)
    )
    first = decoder.decode("access", records[:1])
    again = decoder.decode("access", records[1:])
    assert registry.asked == [101] and len(parsed) == 1
    assert [d.message for d in again.dead] == [first.dead[0].message] * 2
