"""Structured logs on stderr, through `logging` (docs/operations.md#logging).

Every diagnostic goes through a module's logger (`logging.getLogger(__name__)`); what a line is
about beyond its message goes in `extra={...}` and comes out as fields. Three formats:
- `logfmt`: `ts=… level=warning logger=streams.runtime msg="checkpoint failed …" retry_in_s=0.5`,
  the default when stderr is not a terminal (a container, a service, a pipe);
- `json`: one JSON object per line with the same fields, for shippers that want JSON;
- `console`: `lifemon: message (field=value …)`, the default on a terminal.
A command's own output (`lifemon alerts`, `policy check`, the demo's summary) stays on stdout.
"""

from __future__ import annotations

import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

Format = Literal["auto", "logfmt", "json", "console"]
LEVELS = ("debug", "info", "warning", "error")
# what a LogRecord holds by itself: anything else on it came through `extra`
_BUILTIN = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
# librdkafka's own lines (connection failures, broker errors) come here through a client's `logger`
# setting, instead of straight to stderr in its `%3|…|FAIL|…` format
KAFKA = logging.getLogger("librdkafka")
REPEAT_WINDOW_S = 60.0
_DIGITS = re.compile(r"\d+")


class Repeats(logging.Filter):
    """A line like one said in the last `window_s` seconds (the same but for its numbers: a port,
    a count, a time) is held back; the next one let through says how many were. Every client of
    every broker retries a lost connection and says so: a probe's 95 s outage logged 4 071 lines,
    482 of them distinct."""

    def __init__(self, window_s: float = REPEAT_WINDOW_S):
        super().__init__()
        self.window_s = window_s
        self._said: dict[tuple[int, str], list[float]] = {}  # line -> [when said, how many held since]

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:  # `kafka.client.debug` output is asked for: all of it
            return True
        key = (record.levelno, _DIGITS.sub("#", record.getMessage()))
        seen = self._said.get(key)
        if seen is not None and record.created - seen[0] < self.window_s:
            seen[1] += 1
            return False
        if seen is not None and seen[1]:
            record.msg, record.args = f"{record.getMessage()} ({seen[1]} like it held back)", None
        if len(self._said) >= 10_000:  # lines that never repeat must not grow it
            self._said.clear()
        self._said[key] = [record.created, 0]
        return True


KAFKA.addFilter(Repeats())


def fields(record: logging.LogRecord) -> dict[str, Any]:
    """The record's `extra` fields, in the order given."""
    return {k: v for k, v in vars(record).items() if k not in _BUILTIN and not k.startswith("_")}


def _text(record: logging.LogRecord) -> str:
    text = record.getMessage()
    if record.exc_info:
        text += "\n" + logging.Formatter().formatException(record.exc_info)
    return text


def _logfmt_value(value: Any) -> str:
    text = value if isinstance(value, str) else orjson.dumps(value, default=str).decode()
    if text and not any(c in text for c in ' ="\\\n\t'):
        return text
    return (
        '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t") + '"'
    )


def _iso(record: logging.LogRecord) -> str:
    return (
        datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


def _document(record: logging.LogRecord) -> dict[str, Any]:
    """A record as the fields of its line: time, level, logger, message, then its `extra`."""
    return {
        "ts": _iso(record),
        "level": record.levelname.lower(),
        "logger": record.name,
        "msg": _text(record),
        **fields(record),
    }


class LogfmtFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return " ".join(f"{k}={_logfmt_value(v)}" for k, v in _document(record).items())


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return orjson.dumps(_document(record), default=str).decode()


class ConsoleFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extra = fields(record)
        tail = f"  ({' '.join(f'{k}={_logfmt_value(v)}' for k, v in extra.items())})" if extra else ""
        return f"lifemon: {_text(record)}{tail}"


class StderrHandler(logging.StreamHandler):
    """Writes to sys.stderr as it is at each record, never to a stream bound when logging was set
    up and closed since (a command run inside a test whose captured stderr is gone)."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _: Any) -> None:
        pass


FORMATTERS: dict[str, type[logging.Formatter]] = {
    "logfmt": LogfmtFormatter,
    "json": JsonFormatter,
    "console": ConsoleFormatter,
}


def setup(level: str = "info", format: Format = "auto") -> None:
    """One handler on the root logger, writing to stderr: lifemon's loggers, librdkafka's (through
    the clients' `logger` setting) and the libraries' all come out in one format. Called again,
    it replaces its handler (the config file may change what the environment set)."""
    chosen = format if format != "auto" else ("console" if sys.stderr.isatty() else "logfmt")
    handler = StderrHandler()
    handler.setFormatter(FORMATTERS[chosen]())
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, StderrHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # clickhouse-connect's pool says "Retrying ... connection broken" before every unreachable
    # ClickHouse, which lifemon then says in one line of its own (ClickHouseUnavailable)
    logging.getLogger("urllib3.connectionpool").setLevel(max(logging.ERROR, root.level))
