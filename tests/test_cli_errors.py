"""What `lifemon` says when the user got something wrong: a Kafka address nothing answers on, an
embedded database another lifemon holds, a read before any run, a malformed option. Each is one
line naming the fix and a distinct exit status, never librdkafka's log every 50 ms or a traceback.
Behaviour about processes is tested with real `lifemon` processes."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.clickhouse import chdb_in_use
from streams.kafka_reach import KafkaUnavailable, reach

ROOT = Path(__file__).resolve().parent.parent


def closed_port() -> int:
    """A loopback port that was just bound and closed: a connection to it is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lifemon(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LIFEMON_LOG_FORMAT": "logfmt"}
    return subprocess.run(
        [sys.executable, "-m", "streams.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def root_logging() -> Iterator[None]:
    """`main` sets up its logging on the root logger; the test process keeps its own."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    yield
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


# -- 1. a Kafka address nothing answers on ----------------------------------------------------------
@pytest.mark.parametrize(
    "command",
    [["run", "--quiet", "--seconds", "30"], ["generate", "-n", "100"], ["watch"]],
    ids=["run", "generate", "watch"],
)
def test_an_unreachable_broker_is_one_line_naming_where_it_is_set(tmp_path: Path, command: list[str]) -> None:
    port = closed_port()
    done = lifemon(*command, "--bootstrap", f"127.0.0.1:{port}", cwd=tmp_path)
    err = done.stderr
    assert done.returncode == 4, err
    assert "Traceback" not in err and "%3|" not in err, err  # no traceback, no raw librdkafka lines
    lines = err.splitlines()
    assert len(lines) < 5, err  # it was 215 lines
    [line] = [ln for ln in lines if "unreachable" in ln]
    assert f"Kafka at 127.0.0.1:{port} is unreachable: connection refused (" in line
    assert (
        "connection attempt(s) in 10 s); check kafka.bootstrap, --bootstrap or LIFEMON_KAFKA_BOOTSTRAP"
        in line
    )


def test_an_unknown_host_name_is_named_as_such(caplog: pytest.LogCaptureFixture) -> None:
    started = time.monotonic()
    with caplog.at_level(logging.DEBUG, logger="librdkafka"), pytest.raises(KafkaUnavailable) as caught:
        reach("no-such-broker.invalid:9092", timeout_s=2)
    assert time.monotonic() - started < 6
    assert str(caught.value).startswith(
        "Kafka at no-such-broker.invalid:9092 is unreachable: host name not found"
    )
    # librdkafka's lines: each kind once, at debug, however often it repeated
    lines = [r for r in caplog.records if r.name == "librdkafka"]
    assert lines and all(r.levelno == logging.DEBUG for r in lines)
    assert len({r.getMessage() for r in lines}) == len(lines)


@pytest.mark.integration
def test_a_broker_that_answers_gives_its_topics(broker: str) -> None:
    admin, metadata = reach(broker)
    assert metadata.brokers and admin is not None


# -- 2. the embedded database held by another lifemon ---------------------------------------------
@pytest.mark.integration
def test_a_read_next_to_a_running_monitor_says_another_lifemon_holds_the_database(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LIFEMON_LOG_FORMAT": "logfmt"}
    run = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "run", "--quiet", "--seconds", "120"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    chdb = tmp_path / ".lifemon" / "chdb"
    try:
        deadline = time.monotonic() + 60
        while not chdb_in_use(chdb) and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert run.poll() is None, run.stderr.read() if run.stderr else ""
        for command in (["alerts"], ["report", "--out", str(tmp_path / "r.html")]):
            done = lifemon(*command, cwd=tmp_path)
            assert done.returncode == 3, done.stderr
            assert "Traceback" not in done.stderr and "Cannot lock file" not in done.stderr, done.stderr
            [line] = done.stderr.splitlines()
            assert (
                f"the embedded ClickHouse at {chdb.resolve()} is in use by another lifemon process (pid {run.pid}, "
                in line
            )
            assert "a ClickHouse server (clickhouse.dsn or LIFEMON_CLICKHOUSE_DSN)" in line
    finally:
        run.send_signal(signal.SIGTERM)
        run.wait(60)
    done = lifemon("alerts", cwd=tmp_path)  # once it stopped, the database is there to read
    assert done.returncode == 0 and done.stdout.strip() == "no alerts match", done.stderr
