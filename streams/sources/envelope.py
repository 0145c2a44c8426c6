"""Take a log line out of what a shipper put on Kafka: the plain line, or the JSON envelope of
Filebeat (`message`, `@timestamp`, `host.name`), Vector (`message`, `timestamp`, `host`) or
Fluent Bit (`log` or `message`, `@timestamp` as epoch seconds or ISO 8601, `hostname`/`host`).
The envelope's time and host are kept: a syslog line carries no year, and a database log may
carry no host."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import orjson


@dataclass(slots=True)
class Line:
    text: str
    ts_ms: int | None = None  # the shipper's time of the line, when it says
    host: str | None = None


class EnvelopeError(ValueError):
    """A JSON value that is no envelope lifemon knows."""


def unwrap(value: bytes) -> Line:
    if not value.startswith(b"{"):
        return Line(value.decode("utf-8", errors="replace").rstrip("\r\n"))
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError as e:
        raise EnvelopeError(f"starts like a JSON envelope but is not JSON ({e.args[0]})") from None
    if not isinstance(doc, dict):
        raise EnvelopeError("a JSON envelope must be an object")
    text = doc.get("message", doc.get("log"))
    if not isinstance(text, str):
        raise EnvelopeError(
            "JSON envelope without a `message` (Filebeat, Vector) or `log` (Fluent Bit) text field"
        )
    return Line(text.rstrip("\r\n"), _time(doc), _host(doc))


def _time(doc: dict) -> int | None:
    raw = doc.get("@timestamp", doc.get("timestamp"))
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        ms = raw * 1000  # Fluent Bit: epoch seconds with a fraction
        # one past an int64 of milliseconds is no time (a fuzzer's 1.8e305 was infinity here, and
        # round() of it stopped the decode): the line's own time stands, as for an unreadable string
        return round(ms) if abs(ms) < 2**63 else None
    if isinstance(raw, str):
        try:
            return round(datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp() * 1000)
        except ValueError:
            return None
    return None


def _host(doc: dict) -> str | None:
    host = doc.get("host", doc.get("hostname"))
    if isinstance(host, dict):  # Filebeat / ECS: host.name
        host = host.get("name") or host.get("hostname")
    return host if isinstance(host, str) else None
