"""Structured logs: one line per record, its `extra` as fields, at the configured level, in the
configured format (streams/logs.py). tests/test_metrics.py reads a running lifemon's JSON lines."""

from __future__ import annotations

import io
import logging
import re
import sys
from collections.abc import Callable, Iterator

import orjson
import pytest

from streams import logs
from streams.config import load_config


@pytest.fixture
def stderr(capsys) -> Iterator[Callable[[], str]]:
    """What the handler writes (it takes sys.stderr when set up, inside the test), with the root
    logger as it was afterwards."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    root.handlers[:] = []  # a handler an earlier test in this worker set up (a CLI run in process)
    yield lambda: capsys.readouterr().err
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


def emit(level: int = logging.WARNING) -> None:
    logging.getLogger("streams.runtime").log(
        level, 'checkpoint failed: "ch" down', extra={"retry_in_s": 0.5, "sink": "alerts→clickhouse"}
    )


def test_logfmt_quotes_what_needs_quoting(stderr) -> None:
    logs.setup("info", "logfmt")
    emit()
    line = stderr()
    assert re.fullmatch(
        r"ts=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z level=warning logger=streams.runtime "
        r'msg="checkpoint failed: \\"ch\\" down" retry_in_s=0.5 sink=alerts→clickhouse\n',
        line,
    ), line


def test_json_lines_carry_the_extra_fields(stderr) -> None:
    logs.setup("info", "json")
    emit()
    try:
        raise ValueError("bad")
    except ValueError:
        logging.getLogger("x").exception("with a traceback")
    first, second = (orjson.loads(line) for line in stderr().splitlines())
    assert first["level"] == "warning" and first["retry_in_s"] == 0.5 and first["sink"] == "alerts→clickhouse"
    assert second["msg"].startswith("with a traceback\nTraceback") and "ValueError: bad" in second["msg"]


def test_the_level_filters_and_the_console_speaks_plainly(stderr) -> None:
    logs.setup("error", "console")
    emit(logging.WARNING)
    assert stderr() == ""
    logs.setup("warning", "console")  # a second setup replaces the handler: one line, not two
    emit(logging.WARNING)
    assert stderr() == 'lifemon: checkpoint failed: "ch" down  (retry_in_s=0.5 sink=alerts→clickhouse)\n'


def test_log_settings_come_from_the_config_or_the_environment(monkeypatch, tmp_path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("log: {level: debug, format: json}\n")
    assert load_config(path).log.model_dump() == {"level": "debug", "format": "json"}
    monkeypatch.setenv("LIFEMON_LOG_FORMAT", "logfmt")
    assert load_config(path).log.format == "logfmt"
    path.write_text("log: {level: loud}\n")
    with pytest.raises(Exception, match="log.level"):
        load_config(path)


def test_the_handler_writes_where_stderr_is_now(stderr, monkeypatch) -> None:
    """Set up once, then sys.stderr replaced (a test's capture ends, a command runs in-process):
    records go to the stream of the moment, never to a closed one."""
    logs.setup("info", "console")
    later = io.StringIO()
    monkeypatch.setattr(sys, "stderr", later)
    emit()
    assert later.getvalue().startswith('lifemon: checkpoint failed: "ch" down')


def test_librdkafkas_repeated_lines_are_held_back_and_counted() -> None:
    """A lost broker: every client retries and says so, ~20 lines a second (a probe's 95 s outage
    logged 4 071, 482 distinct). A line like one said in the last minute is held back; the next let
    through says how many were."""
    assert any(isinstance(f, logs.Repeats) for f in logs.KAFKA.filters)
    repeats = logs.Repeats(window_s=60)

    def said(message: str, at: float, level: int = logging.ERROR) -> str | None:
        record = logging.LogRecord("librdkafka", level, "", 0, message, None, None)
        record.created = at
        return record.getMessage() if repeats.filter(record) else None

    refused = "Connect to ipv4#127.0.0.1:{} failed: Connection refused (after {}ms in state CONNECT)"
    lines = [said(refused.format(19092 + i % 3, i), 1000 + i * 0.05) for i in range(200)]
    assert [line for line in lines if line] == [refused.format(19092, 0)]
    assert said("GroupCoordinator: broker down", 1005) is not None  # another line is no repeat
    assert said(refused.format(19092, 7), 1070) == refused.format(19092, 7) + " (199 like it held back)"
    assert said(refused.format(19093, 8), 1071) is None
    # `kafka.client.debug` output was asked for: every line of it
    assert all(said("Sent FetchRequest (v11, 1 bytes)", 1072 + i, logging.DEBUG) for i in range(3))
