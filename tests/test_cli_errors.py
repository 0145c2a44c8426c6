"""What `lifemon` says when the user got something wrong: a Kafka address nothing answers on, an
embedded database another lifemon holds, a read before any run, a malformed option. Each is one
line naming the fix and a distinct exit status, never librdkafka's log every 50 ms or a traceback.
Behaviour about processes is tested with real `lifemon` processes."""

from __future__ import annotations

import argparse
import logging
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from fault_injection import MOUNT_SKIP, can_mount, read_only

from detectors import REGISTRY
from policy import DEFAULT_DIR, load_policy
from streams import cli
from streams.cli import EPILOG, build_parser, main, when
from streams.clickhouse import apply_ddl, chdb_in_use
from streams.kafka_reach import KafkaUnavailable, reach

ROOT = Path(__file__).resolve().parent.parent


def closed_port() -> int:
    """A loopback port that was just bound and closed: a connection to it is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lifemon(
    *args: str, cwd: Path, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LIFEMON_LOG_FORMAT": "logfmt", **(env or {})}
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
    # 2 s, not the default 10: the wait is what is configured, and the line must say that figure
    env = {"LIFEMON_KAFKA_REACH_TIMEOUT_S": "2"}
    done = lifemon(*command, "--bootstrap", f"127.0.0.1:{port}", cwd=tmp_path, env=env)
    err = done.stderr
    assert done.returncode == 4, err
    assert "Traceback" not in err and "%3|" not in err, err  # no traceback, no raw librdkafka lines
    lines = err.splitlines()
    assert len(lines) < 5, err  # it was 215 lines
    [line] = [ln for ln in lines if "unreachable" in ln]
    assert f"Kafka at 127.0.0.1:{port} is unreachable: connection refused (" in line
    assert (
        "connection attempt(s) in 2 s); check kafka.bootstrap, --bootstrap or LIFEMON_KAFKA_BOOTSTRAP" in line
    )


def test_a_metrics_port_in_use_is_one_line_naming_the_setting(tmp_path: Path) -> None:
    """A probe's `metrics.port` another program held ended in an OSError traceback."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        env = {"LIFEMON_METRICS_PORT": str(port), "LIFEMON_METRICS_HOST": "127.0.0.1"}
        done = lifemon("run", "--quiet", "--seconds", "5", cwd=tmp_path, env=env)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    [line] = [ln for ln in done.stderr.splitlines() if "metrics" in ln]
    assert f"metrics.port: cannot serve /metrics on 127.0.0.1:{port} (Address already in use)" in line
    assert "LIFEMON_METRICS_PORT" in line


@pytest.mark.parametrize("command", [["pseudonym", "C0000001"], ["policy", "check"], ["alerts"]], ids=str)
def test_a_secrets_variable_spelt_wrong_is_named_in_one_line(tmp_path: Path, command: list[str]) -> None:
    """A probe's LIFEMON_PSEUDONYM_KEY_VERSION=two: a pydantic traceback (`pseudonym`), or an error
    blamed on the config file's first line, which has no such key."""
    (tmp_path / "ok.yaml").write_text("log:\n  level: info\n")
    env = {"LIFEMON_PSEUDONYM_KEY": "0123456789abcdef0123", "LIFEMON_PSEUDONYM_KEY_VERSION": "two"}
    done = lifemon(*command, "--config", str(tmp_path / "ok.yaml"), cwd=tmp_path, env=env)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    [line] = done.stderr.splitlines()
    assert "<environment>: LIFEMON_PSEUDONYM_KEY_VERSION: Input should be a valid integer" in line
    assert "ok.yaml" not in line


def test_an_unreachable_clickhouse_is_one_line(tmp_path: Path) -> None:
    """clickhouse-connect's pool logged a retry warning before lifemon's own line."""
    done = lifemon("alerts", "--clickhouse", f"http://127.0.0.1:{closed_port()}", cwd=tmp_path)
    assert done.returncode == 3, done.stderr
    [line] = done.stderr.splitlines()
    assert "is unreachable (connection refused)" in line


def test_a_setting_only_a_consumer_refuses_is_one_line_naming_the_config(
    broker: str, names: dict[str, str], tmp_path: Path
) -> None:
    """librdkafka checks some settings only when a consumer is made: the admin client's check at the
    start passed them, and the monitor's consumer then stopped `run` with a traceback (a probe's
    max.poll.interval.ms; the config refuses that one itself now)."""
    from test_pipeline import make_config, write_config

    config = make_config(
        names, broker, f"chdb://{tmp_path / 'chdb'}", kafka__client={"fetch.max.bytes": 1000}
    )
    path = write_config(config, tmp_path / "lifemon.yaml")
    done = lifemon("run", "--config", str(path), "--quiet", "--seconds", "5", cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    [line] = [ln for ln in done.stderr.splitlines() if "level=error" in ln]
    assert f"{path}: librdkafka refuses a setting: " in line and "under kafka.client" in line
    assert "`fetch.max.bytes` must be >= `message.max.bytes`" in line


def test_a_rollback_onto_a_later_releases_state_stops_in_one_line_before_any_batch(
    broker: str, names: dict[str, str], tmp_path: Path
) -> None:
    """probe_v1 F1: a release of three stops ago restored HEAD's changelog without a word and died
    with a traceback in its first batch, at every start (a crash loop). State a later format wrote is
    refused at restore: exit 2, one line naming the group, the format and the ways out; nothing read."""
    from confluent_kafka import Consumer, Producer, TopicPartition
    from conftest import access, entitlement
    from test_pipeline import make_config, send, write_config

    from streams.changelog import FORMAT_KEY, MARKER_KEY, STATE_FORMAT
    from streams.runtime import changelog_topic, ensure_topics

    config = make_config(names, broker, f"chdb://{tmp_path / 'chdb'}")
    ensure_topics(broker, config)
    later = orjson.dumps({config.topics.access: 0, FORMAT_KEY: STATE_FORMAT + 1})
    p = Producer({"bootstrap.servers": broker})
    p.produce(changelog_topic(config), key=b"anything", value=b'{"a later": "shape"}', partition=1)
    p.produce(changelog_topic(config), key=MARKER_KEY, value=later, partition=1)
    assert p.flush(10) == 0
    send(broker, config.topics.entitlements, [entitlement("e1")])
    send(broker, config.topics.access, access("e1", customers=5))

    path = write_config(config, tmp_path / "lifemon.yaml")
    done = lifemon("run", "--config", str(path), "--quiet", "--seconds", "20", cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    [line] = [ln for ln in done.stderr.splitlines() if "level=error" in ln]
    assert f"consumer group {names['group']}'s state" in line
    assert f"state format {STATE_FORMAT + 1}, written by a later release" in line
    assert "Roll forward" in line and "new kafka.group_id and replay" in line
    c = Consumer({"bootstrap.servers": broker, "group.id": names["group"]})
    committed = c.committed([TopicPartition(config.topics.access, q) for q in range(3)], timeout=10)
    c.close()
    assert all(tp.offset < 0 for tp in committed)  # no batch was judged, nothing committed


@pytest.mark.skipif(not can_mount(), reason=MOUNT_SKIP)
def test_a_data_dir_on_a_read_only_filesystem_is_one_line_naming_it(tmp_path: Path) -> None:
    """Kubernetes' readOnlyRootFilesystem with no volume mounted at data_dir was a probe's traceback."""
    ro = tmp_path / "ro"
    ro.mkdir()
    (tmp_path / "lifemon.yaml").write_text(f"data_dir: {ro / 'data'}\n")
    with read_only(ro):
        done = lifemon(
            "run", "--config", str(tmp_path / "lifemon.yaml"), "--quiet", "--seconds", "5", cwd=tmp_path
        )
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    [line] = done.stderr.splitlines()
    assert f"lifemon.yaml: data_dir: cannot create {ro / 'data'} (Read-only file system)" in line
    assert "mount a volume there" in line


def test_a_command_waits_10_s_for_the_broker_unless_told_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    from streams.config import load_config
    from streams.kafka_reach import METADATA_TIMEOUT_S

    monkeypatch.delenv("LIFEMON_KAFKA_REACH_TIMEOUT_S", raising=False)
    assert load_config(None).kafka.reach_timeout_s == METADATA_TIMEOUT_S == 10


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


def test_the_embedded_broker_says_at_start_what_a_restart_loses(tmp_path: Path, caplog) -> None:
    """probe_v1 F5: on the defaults an upgrade, like any restart, lost the monitor's state, offsets
    and reference data with the in-memory broker (18 of 59 alerts lost, 714 false ones), and nothing
    said so until then. The start says it, and what keeps them."""
    from contextlib import ExitStack

    from streams.cli import _broker
    from streams.config import Config

    with ExitStack() as stack, caplog.at_level("INFO", logger="streams.cli"):
        bootstrap = _broker(Config(data_dir=tmp_path), stack)
    (said,) = [r.getMessage() for r in caplog.records if "embedded Tansu" in r.getMessage()]
    assert said.startswith(f"started embedded Tansu broker at {bootstrap}: it lives as long as this command")
    assert "state, offsets and reference data" in said and "kafka.bootstrap" in said


def test_the_demo_keeps_what_a_run_stored_in_the_embedded_database(tmp_path: Path) -> None:
    """The demo starts its database anew; what `lifemon run` or a replay stored there is not its to
    drop: it refuses, says how to keep it or drop it, and leaves it whole."""
    chdb = tmp_path / ".lifemon" / "chdb"
    store = (
        "import sys; from streams.clickhouse import apply_ddl, connect; c = connect(sys.argv[1]); "
        "apply_ddl(c, 'lifemon'); print(c.command(\"SELECT count() FROM system.tables WHERE database = 'lifemon'\"))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def tables() -> int:
        done = subprocess.run(
            [sys.executable, "-c", store, f"chdb://{chdb}"], env=env, capture_output=True, text=True
        )
        return int(done.stdout)

    held = tables()
    done = lifemon("demo", "-n", "2000", cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert "holds what this demo did not write" in done.stderr and "lifemon demo --replace" in done.stderr
    assert "another LIFEMON_DATA_DIR" in done.stderr  # where a set one makes "another directory" no help
    assert tables() == held > 0
    # a database the last demo left is the next demo's to drop: the guard lets it go, then marks it
    # (an analyst's practice review on it goes with it, and the demo says so)
    check = (
        "import sys; from streams.clickhouse import connect; from streams.config import Config; "
        "from streams.demo import MARKER, _fresh_database; c = Config(data_dir=sys.argv[1]); "
        "(c.data_dir / MARKER).write_text('lifemon'); "
        "connect(c.clickhouse_dsn()).command(\"INSERT INTO lifemon.alert_reviews (alert_id, state) VALUES ('a', 'resolved')\"); "
        "connect(c.clickhouse_dsn()).command(\"INSERT INTO lifemon.incident_reviews (incident_id, state) VALUES ('i', 'notified')\"); "
        "print(_fresh_database(c, False), (c.data_dir / MARKER).read_text())"
    )
    again = subprocess.run(
        [sys.executable, "-c", check, str(chdb.parent)], env=env, capture_output=True, text=True
    )
    assert again.stdout.split() == ["True", "lifemon"], again.stderr
    assert "the last demo's alerts go, and the reviews of 1 alert and 1 incident with them" in again.stderr, (
        again.stderr
    )


def test_a_run_or_a_replay_into_the_embedded_database_claims_it_from_the_demo(tmp_path: Path) -> None:
    """The demo's synthetic day goes before the monitor writes there, said (a probe's `lifemon run`
    kept the demo's alerts and incidents as the bank's); what no demo wrote stays. In a process of
    its own: chDB opens one folder per process."""
    claim = (
        "import sys; from streams.clickhouse import connect; from streams.config import Config; "
        "from streams.demo import MARKER, claim_embedded; c = Config(data_dir=sys.argv[1]); "
        "ch = connect(c.clickhouse_dsn()); ch.command('CREATE DATABASE IF NOT EXISTS lifemon'); "
        "ch.command('CREATE TABLE IF NOT EXISTS lifemon.alerts (alert_id String) ENGINE = MergeTree ORDER BY alert_id'); "
        "ch.command(\"INSERT INTO lifemon.alerts VALUES ('a')\"); "
        "marked = sys.argv[2] == 'demo'; (c.data_dir / MARKER).write_text('lifemon') if marked else None; "
        "dsn = {'-': None, 'embedded': f'chdb://{c.data_dir}/chdb'}.get(sys.argv[3], sys.argv[3]); claim_embedded(c, dsn); "
        "print((c.data_dir / MARKER).exists(), ch.query(\"SELECT count() FROM system.tables WHERE database = 'lifemon'\").result_rows[0][0])"
    )  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def claimed(marked: str, dsn: str) -> tuple[list[str], str]:
        folder = tmp_path / str(len(list(tmp_path.iterdir())))
        done = subprocess.run(
            [sys.executable, "-c", claim, str(folder), marked, dsn], env=env, capture_output=True, text=True
        )
        assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
        return done.stdout.split(), done.stderr

    # a replay stored in another database: the demo's is left as it is, marked
    assert claimed("demo", "chdb:///elsewhere/chdb")[0] == ["True", "1"]
    # `lifemon run` on the embedded default: the demo's day goes, said
    kept, said = claimed("demo", "-")
    assert kept == ["False", "0"] and "held the last demo's synthetic day: dropped" in said, said
    # a replay into the embedded database, or a run with its path or an empty DSN: the same
    assert claimed("demo", "embedded")[0] == ["False", "0"]
    assert claimed("demo", "")[0] == ["False", "0"]
    # what no demo wrote (a run's, a replay's) stays
    kept, said = claimed("run", "-")
    assert kept == ["False", "1"] and said == ""


def test_a_run_given_the_embedded_databases_path_claims_it_too(tmp_path: Path) -> None:
    """A review's `lifemon run --clickhouse chdb://.lifemon/chdb` left the demo's mark, and the next
    plain run dropped what it had stored."""
    from streams.demo import MARKER

    data = tmp_path / ".lifemon"
    data.mkdir()
    (data / MARKER).write_text("lifemon")
    env = {"LIFEMON_DATA_DIR": str(data)}
    done = lifemon(
        "run", "--clickhouse", f"chdb://{data}/chdb", "--seconds", "2", "--quiet", cwd=tmp_path, env=env
    )
    assert done.returncode == 0, done.stderr
    assert not (data / MARKER).exists() and "held the last demo's synthetic day: dropped" in done.stderr


# -- 3. read commands before any run, and their options ----------------------------------------------
@pytest.mark.parametrize("command", [["alerts"], ["catalog", "gaps"], ["report"]], ids=lambda c: c[0])
def test_a_read_before_any_run_says_so_and_creates_nothing(tmp_path: Path, command: list[str]) -> None:
    done = lifemon(*command, cwd=tmp_path)
    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr
    [line] = done.stderr.splitlines()
    # a new user ran it from another directory than the demo's: where it looked, and why
    assert (
        f"no lifemon database at {tmp_path.resolve()}/.lifemon/chdb (the .lifemon of the current directory: "
        "run from where the demo ran, or set LIFEMON_DATA_DIR to its .lifemon): run `lifemon run` (or "
        "`lifemon demo`) first" in line
    )
    assert list(tmp_path.iterdir()) == []  # no .lifemon/ made by a read


@pytest.mark.parametrize("fmt", ["har", "pgaudit"])
def test_ship_names_a_missing_file_before_it_tries_the_broker(tmp_path: Path, fmt: str) -> None:
    """A new user's `ship app.har` with no app.har waited 10 s for an unreachable broker and said so."""
    done = lifemon("ship", "--format", fmt, "nothere.log", "--bootstrap", "127.0.0.1:1", cwd=tmp_path)
    assert done.returncode == 2 and "cannot use nothere.log: No such file or directory" in done.stderr
    assert "unreachable" not in done.stderr


def test_a_mistyped_option_is_named_with_its_nearest_spelling(capsys: pytest.CaptureFixture[str]) -> None:
    """`alerts --sevrity high` was blamed on `high`, no choice of {show,ack,resolve}; `--severty=high`
    on the whole line under the top-level usage."""
    for argv, said in (
        (
            ["alerts", "--sevrity", "high"],
            "lifemon alerts: error: unrecognized option --sevrity (did you mean --severity?)",
        ),
        (
            ["alerts", "--severty=high"],
            "lifemon alerts: error: unrecognized option --severty (did you mean --severity?)",
        ),
        (["incidents", "--sevrity", "critical"], "lifemon incidents: error: unrecognized option --sevrity"),
        # an option's unambiguous start is argparse's to take: the value is what is wrong
        (["alerts", "--sev", "hgh"], "argument --severity: invalid choice: 'hgh'"),
        # a subcommand's name as an option's value chose no subcommand
        (
            ["alerts", "--actor", "show", "--sevrity", "high"],
            "lifemon alerts: error: unrecognized option --sevrity",
        ),
        # an option of the list's subcommands, not of the list: who takes it
        (
            ["alerts", "--policy", "p"],
            "unrecognized option --policy (`lifemon alerts show`, `lifemon alerts ack`",
        ),
    ):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 2 and said in capsys.readouterr().err, argv


def test_each_subcommands_help_says_what_it_does(capsys: pytest.CaptureFixture[str]) -> None:
    for command, does in (
        ("run", "monitor the Kafka topics until stopped"),
        ("replay", "run the detectors over files"),
    ):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert does in capsys.readouterr().out.split("options:")[0], command


def test_lifemon_help_lists_the_incidents_subcommands_as_the_alerts_and_report_help_reads_on(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A new user's `lifemon --help` listed `alerts show`, `ack` and `resolve` but none of
    `incidents show`, `subjects`, `ack` or `resolve`; `report -h` ended `--policy`'s default with a
    stray "(the bank's timezone)" after its own parenthesis."""
    with pytest.raises(SystemExit):
        main(["--help"])
    top = " ".join(capsys.readouterr().out.split())
    assert all(f"`incidents {sub} ID`" in top for sub in ("show", "subjects", "ack", "resolve")), top
    assert all(f"`alerts {sub} ID`" in top for sub in ("show", "ack", "resolve")), top
    with pytest.raises(SystemExit):
        main(["report", "-h"])
    policy = " ".join(capsys.readouterr().out.split("--policy POLICY", 2)[2].split("\n  -", 1)[0].split())
    assert policy.endswith("else the built- in policy/); its recipients.yaml gives the bank's timezone"), (
        policy
    )
    for command in (["alerts", "show"], ["incidents", "show"], ["incidents", "subjects"], ["alerts", "ack"]):
        with pytest.raises(SystemExit):
            main([*command, "-h"])
        said = " ".join(capsys.readouterr().out.split())
        assert "policy/) (" not in said and "policy/);" in said, (command, said)


def test_catalog_help_wraps_its_kinds_to_the_terminal(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new user's `lifemon catalog --help` printed each kind's advice on one line of up to 389
    characters; each kind is still there, its advice under it."""
    from streams.catalog_gaps import WHERE_TO_ADD

    monkeypatch.setenv("COLUMNS", "80")
    with pytest.raises(SystemExit):
        main(["catalog", "--help"])
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 80
    flat = " ".join(out.split())
    for kind, said in WHERE_TO_ADD.items():
        assert f" {kind} {' '.join(said.split())}" in flat, kind


@pytest.mark.integration
def test_a_clickhouse_without_lifemons_database_says_so(
    ch: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], root_logging: None
) -> None:
    monkeypatch.setattr("streams.clickhouse.connect", lambda dsn: ch)  # the session's chDB (one per process)
    monkeypatch.setenv("LIFEMON_CLICKHOUSE_DATABASE", f"never_{uuid.uuid4().hex[:8]}")
    dsn = f"chdb://{os.environ['LIFEMON_TEST_CHDB']}"
    assert main(["alerts", "--clickhouse", dsn]) == 3
    err = capsys.readouterr().err
    assert "no lifemon database never_" in err and "run `lifemon run` (or `lifemon demo`) first" in err


@pytest.mark.integration
def test_lifemon_incidents_on_a_database_from_before_the_incidents_table_says_so(
    ch: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], root_logging: None
) -> None:
    """A database a lifemon before clickhouse/003_incidents.sql wrote has alerts and no incidents
    table (until the next `lifemon run` creates it): one line, not an UNKNOWN_TABLE traceback."""
    db = f"old_{uuid.uuid4().hex[:8]}"
    apply_ddl(ch, db)
    ch.command(f"DROP TABLE {db}.incidents")
    monkeypatch.setattr("streams.clickhouse.connect", lambda dsn: ch)
    monkeypatch.setenv("LIFEMON_CLICKHOUSE_DATABASE", db)
    assert main(["incidents", "--clickhouse", f"chdb://{os.environ['LIFEMON_TEST_CHDB']}"]) == 3
    [line] = capsys.readouterr().err.splitlines()
    assert f"no incidents table in lifemon database {db}" in line and "`lifemon run`" in line


def parse_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as caught:
        build_parser().parse_args(list(argv))
    assert caught.value.code == 2
    return capsys.readouterr().err.splitlines()[-1]


def test_malformed_alert_options_are_usage_errors_that_say_what_fits(
    capsys: pytest.CaptureFixture[str],
) -> None:
    err = parse_error(capsys, "alerts", "--since", "yesterdy")
    assert "argument --since: 'yesterdy' is not a time: give an ISO date or time" in err
    assert "today or yesterday" in err and "30m, 24h, 7d, 2w" in err
    err = parse_error(capsys, "alerts", "--until", "2026-13-01")
    assert "argument --until: '2026-13-01' is not a time (month must be in 1..12)" in err
    for bad in ("-1", "0"):
        assert f"argument --limit: {bad}: give a number of 1 or more" in parse_error(
            capsys, "alerts", "--limit", bad
        )
    assert "'ten' is not a whole number" in parse_error(capsys, "alerts", "--limit", "ten")
    for command in ("alerts", "watch"):
        err = parse_error(capsys, command, "--detector", "bulk_qery")
        assert f"unknown detector 'bulk_qery'; did you mean bulk_query? known: {', '.join(REGISTRY)}" in err


def test_until_before_since_is_refused(capsys: pytest.CaptureFixture[str], root_logging: None) -> None:
    assert main(["alerts", "--since", "today", "--until", "yesterday"]) == 2
    assert "is not after --since" in capsys.readouterr().err


def test_a_time_in_no_zone_says_the_instant_it_means(
    capsys: pytest.CaptureFixture[str], root_logging: None, tmp_path: Path
) -> None:
    """The lists print UTC; a time typed without a zone is the bank's, and the command says which
    instant it took (a new user copied 10:00 from a list and got 02:00 UTC)."""
    main(["alerts", "--since", "2026-01-01T10:00", "--clickhouse", f"chdb://{tmp_path / 'none'}"])
    assert (
        "--since 2026-01-01 10:00 is the bank's time (Asia/Shanghai): 2026-01-01 02:00 UTC"
        in capsys.readouterr().err
    )
    main(["alerts", "--since", "2026-01-01T10:00Z", "--clickhouse", f"chdb://{tmp_path / 'none'}"])
    assert "bank's time" not in capsys.readouterr().err


def test_times_take_iso_names_and_ages() -> None:
    """Today, yesterday and a time in no zone are the bank's (Asia/Shanghai as shipped): at 07:00
    in Beijing (23:00 UTC the day before), today began at 16:00 UTC that day, not 00:00 (a probe's
    `--since today` left out the night's alerts)."""
    now = datetime(2026, 12, 2, 15, 30, tzinfo=UTC)
    beijing = ZoneInfo("Asia/Shanghai")
    assert when("today", now).instant(beijing, now) == datetime(2026, 12, 1, 16, tzinfo=UTC)
    assert when("Yesterday", now).instant(beijing, now) == datetime(2026, 11, 30, 16, tzinfo=UTC)
    seven_in_beijing = datetime(2026, 12, 1, 23, tzinfo=UTC)
    assert when("today").instant(beijing, seven_in_beijing) == datetime(2026, 12, 1, 16, tzinfo=UTC)
    assert when("today").instant(ZoneInfo("UTC"), seven_in_beijing) == datetime(2026, 12, 1, tzinfo=UTC)
    assert when("now", now) == now
    assert when("7d", now) == now - timedelta(days=7)
    assert when("24h", now) == now - timedelta(hours=24)
    assert when("30m", now) == now - timedelta(minutes=30)
    assert when("2w", now) == now - timedelta(weeks=2)
    assert when("2026-12-01").instant(beijing) == datetime(2026, 11, 30, 16, tzinfo=UTC)
    assert when("2026-12-01T08:00").instant(beijing) == datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
    assert when("2026-12-01T08:00+08:00") == datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
    assert when("2026-12-01T08:00Z") == datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    parsed = build_parser().parse_args(["alerts", "--since", "7d", "--limit", "5"])
    assert isinstance(parsed.since, datetime) and parsed.limit == 5


# -- 4. help text and `lifemon detectors` ----------------------------------------------------------------
def test_every_option_says_what_it_does_and_its_default() -> None:
    from streams.ship_har import add_har_arguments

    har = argparse.ArgumentParser()
    add_har_arguments(har)
    har_only = {a.dest for a in har._actions}  # streams/ship_har.py's own options
    subparsers = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    missing = []
    for name, sp in subparsers.choices.items():
        for action in sp._actions:
            if isinstance(action, argparse._HelpAction) or action.dest in har_only:
                continue
            text = action.help or ""
            optional = bool(action.option_strings) and not action.required
            if not text or (optional and "default" not in text):
                missing.append(f"{name} {'/'.join(action.option_strings) or action.dest}: {text!r}")
    assert missing == []


def test_help_names_every_lifemon_variable_the_code_reads() -> None:
    """It listed eight of the twenty-odd: the secrets of TLS and OAuth, the key ring, the overrides."""
    from streams.config import ENV_OVERRIDES
    from streams.credentials import Secrets, env_name

    read = set(ENV_OVERRIDES) | {env_name(f) for f in Secrets.model_fields if f != "pseudonym_keys"}
    for source in (ROOT / "streams").rglob("*.py"):
        read |= set(re.findall(r"LIFEMON_[A-Z0-9_]*[A-Z0-9]", source.read_text()))
    read -= {"LIFEMON_TEST_CRASH_AT", "LIFEMON_PSEUDONYM_KEY_V"}  # a test hook; the ring's prefix (_V2, ...)
    shown = set(re.findall(r"LIFEMON_[A-Z0-9_]*[A-Z0-9]", build_parser().format_help()))
    assert read - shown == set()


def test_the_help_examples_parse_and_those_that_need_a_broker_name_one() -> None:
    """`lifemon watch --severity high`, the help's example, stopped at once: watch needs a broker."""
    parser = build_parser()
    examples = [
        shlex.split(line.split("   ")[0])[1:] for line in EPILOG.splitlines() if line.startswith("  lifemon ")
    ]
    assert len(examples) >= 10
    for argv in examples:
        args = parser.parse_args(argv)
        if argv[0] in ("watch", "notify", "ship"):  # they refuse to start on the embedded default
            assert args.bootstrap or args.config, argv


def test_a_progress_line_in_a_log_is_not_repeated_as_the_final_one(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The demo logged its final figures twice: the periodic line had just logged them, idle."""
    monkeypatch.setattr(cli, "_last_log", {"at": 0.0, "line": ""})
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    with caplog.at_level(logging.INFO, logger="streams.cli"):
        cli._progress("100 records  alerts=2")
        cli._progress("100 records  alerts=2", final=True)
        cli._progress("120 records  alerts=3")  # within 10 s of the last: not logged
        cli._progress("120 records  alerts=3", final=True)
    assert [r.message for r in caplog.records] == ["100 records  alerts=2", "120 records  alerts=3"]


def test_detectors_lists_each_rule_with_what_it_reads_and_its_basis(
    capsys: pytest.CaptureFixture[str], root_logging: None
) -> None:
    assert main(["detectors"]) == 0
    out = capsys.readouterr().out
    policy = load_policy()
    assert out.startswith(f"{len(REGISTRY)} detectors, ")
    for kind, cls in REGISTRY.items():
        rule = policy.detectors[kind]
        assert f"{kind}  enabled  {rule.rule_id} v{rule.rule_version}\n" in out
        assert f"    title      {rule.title_zh} / {rule.title_en}\n" in out
        assert f"(--rule {rule.rule_id} finds them all)" in out
        assert "    reads      " + ", ".join(f"{s} by {k}" for s, k in cls.inputs.items()) + "\n" in out
        # each clause as quoted and in English, wrapped: compared without spaces
        for clause in rule.regulation:
            assert "".join(clause.zh.split()) in "".join(out.split())
            assert "".join(clause.en.split()) in "".join(out.split())
        assert f"detectors/{kind}.yaml (params, runbook)" in out


# -- 5. where the policy comes from ----------------------------------------------------------------------
def policy_copy(folder: Path, broken: bool) -> Path:
    """The built-in policy's YAML in `folder`; `broken`: one recipient of a type that does not exist."""
    shutil.copytree(DEFAULT_DIR, folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    if broken:
        recipients = folder / "recipients.yaml"
        recipients.write_text(recipients.read_text().replace("type: processor", "type: procesor", 1))
    return folder


@pytest.mark.parametrize(
    "command",
    [["policy", "check"], ["detectors"], ["generate", "-n", "100", "--out", "gen"]],
    ids=lambda c: c[0],
)
@pytest.mark.parametrize("source", ["environment", "config"])
def test_every_command_that_reads_the_policy_reads_the_configured_folder(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    root_logging: None,
    command: list[str],
    source: str,
) -> None:
    """A broken policy in LIFEMON_POLICY_DIR or the config's policy_dir was said to be OK: the
    check read the built-in folder, while `lifemon run` and `replay` refused the same one."""
    monkeypatch.chdir(tmp_path)
    broken = policy_copy(tmp_path / "pol", broken=True)
    if source == "environment":
        monkeypatch.setenv("LIFEMON_POLICY_DIR", str(broken))
        argv = command
    else:
        (tmp_path / "c.yaml").write_text(f"policy_dir: {broken}\n")
        argv = [*command, "--config", "c.yaml"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    text = (broken / "recipients.yaml").read_text().splitlines()
    line = next(i for i, t in enumerate(text, 1) if "type: procesor" in t)
    assert f"{broken}/recipients.yaml:{line}: recipients.proc_call_center.type: Input should be" in err


@pytest.mark.parametrize(
    "command", [["generate", "-n", "200", "--out", "gen"], ["demo", "-n", "200"]], ids=lambda c: c[0]
)
def test_the_generator_refuses_a_bank_folder_lacking_the_simulated_banks_names(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    root_logging: None,
    command: list[str],
) -> None:
    """A probe's second bank pointed `generate` and `demo` at its own folder: a KeyError's
    traceback. The generator simulates the shipped bank; a folder without its names is refused in
    one line, and a copy with other thresholds runs it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LIFEMON_DATA_DIR", str(tmp_path / "data"))
    bank = policy_copy(tmp_path / "bank", broken=False)
    for path in bank.rglob("*.yaml"):
        path.write_text(path.read_text().replace("ho_marketing_mgmt", "hq_marketing"))
    assert main([*command, "--policy", str(bank)]) == 2
    err = capsys.readouterr().err
    assert "this folder lacks its roles ho_marketing_mgmt" in err and "Traceback" not in err
    tuned = policy_copy(tmp_path / "tuned", broken=False)
    thresholds = tuned / "detectors" / "bulk_query.yaml"
    thresholds.write_text(thresholds.read_text().replace("default_threshold: 30", "default_threshold: 31"))
    if command[0] == "generate":  # the demo's run is the demo's tests'
        assert main([*command, "--policy", str(tuned)]) == 0


def test_policy_check_does_not_run_an_example_naming_what_the_policy_lacks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], root_logging: None
) -> None:
    """A probe's second bank copied the shipped detector files: 54 of their 92 examples failed,
    many passed for the wrong reason, and the check failed for good. An example naming a role,
    system or field the policy does not declare is not run, said so, and fails nothing."""
    bank = policy_copy(tmp_path / "bank", broken=False)
    lookups = bank / "detectors" / "unauthorized_lookup.yaml"
    lookups.write_text(
        lookups.read_text()
        + """  - name: another bank's teller reads a far customer's balance
    fires: true
    entitlements:
      - {actor_id: e9, ts: 0, org_id: S0101, org_path: [HO, B01, S0101], roles: [teller_integrated]}
    access:
      - {event: {actor_id: e9, system: ncbs, action: query, fields: [land_contract, account_balance], subject_ids: [c-far]}}
"""
    )
    assert main(["policy", "check", "--policy", str(bank)]) == 0
    out = capsys.readouterr().out
    assert (
        "  SKIP  unauthorized_lookup: another bank's teller reads a far customer's balance  (names role "
        "'teller_integrated', which organisation.yaml roles lacks; system 'ncbs', which organisation.yaml "
        "systems lacks; field 'land_contract', which classification.yaml fields lacks)" in out
    )
    assert "NOTE  1 example(s) not run" in out and "FAIL" not in out
    assert out.count("  PASS  ") == sum(len(d.tests) for d in load_policy().detectors.values())
    # its citations' documents not named: alerts would cite `seed 004`, no document one can open
    assert "NOTE  the policy cites" not in out
    (bank / "references.yaml").unlink()
    assert main(["policy", "check", "--policy", str(bank)]) == 0
    assert (
        "NOTE  the policy cites seed 000, seed 001, seed 002, seed 003, seed 004, which references.yaml"
        in (capsys.readouterr().out)
    )


def test_policy_check_names_the_folder_it_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], root_logging: None
) -> None:
    assert main(["policy", "check"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"policy OK ({DEFAULT_DIR}): ")
    # `lifemon policy` alone is `policy check`, its one action, as `lifemon catalog` is `catalog gaps`
    # (a new user's was argparse's "the following arguments are required: check", exit status 2)
    assert main(["policy"]) == 0 and capsys.readouterr().out == out
    # a control the policy leaves off is said, the check still passing (a probe's 云证书SDK sent anywhere)
    assert (
        "NOTE  sdks.yaml cloud_certificate (云证书SDK) declares no hosts: where it sends is not judged" in out
    )
    assert "declares no assessments" not in out  # every shipped arrangement records its own
    good = policy_copy(tmp_path / "pol", broken=False)
    monkeypatch.setenv("LIFEMON_POLICY_DIR", str(good))
    assert main(["policy", "check"]) == 0
    assert capsys.readouterr().out.startswith(f"policy OK ({good}): ")
    # a bank's recipients.yaml from before the arrangements' assessments were watched
    recipients = good / "recipients.yaml"
    text = recipients.read_text()
    old = "    assessments:\n      - {id: PIA-2025-004, valid_from: 2025-02-10, valid_to: 2027-02-28}\n"
    assert old in text
    recipients.write_text(text.replace(old, ""))
    assert main(["policy", "check"]) == 0
    (note,) = [line for line in capsys.readouterr().out.splitlines() if "declares no assessments" in line]
    assert note.startswith(
        "  NOTE  recipients.yaml proc_debt_collection (委外催收机构) declares no assessments: each"
    )
    # the raw sources' mapping is checked too, not first at a run that enables them
    sources = good / "sources.yaml"
    sources.write_text(sources.read_text().replace("teller-desk: customer_service", "teller-desk: counter"))
    assert main(["policy", "check"]) == 2
    assert f"{sources}" in (err := capsys.readouterr().err) and "actors.purposes.teller-desk" in err, err


# -- 6. secrets the environment lacks --------------------------------------------------------------------
SASL = (
    "kafka:\n  bootstrap: 127.0.0.1:1\n  client:\n    security.protocol: SASL_SSL\n"
    "    sasl.mechanism: SCRAM-SHA-512\n    sasl.username: lifemon\n"
)


@pytest.mark.parametrize("command", [["run", "--quiet", "--seconds", "5"], ["watch"]], ids=lambda c: c[0])
def test_a_sasl_login_without_its_password_names_the_variable(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    root_logging: None,
    command: list[str],
) -> None:
    """It ended in librdkafka's KafkaException ("sasl.username and sasl.password must be set")."""
    # not the working directory's .lifemon: `run` claims the embedded database, and a new user's
    # `make demo` then `make test`, as the README runs them, lost the demo's day and failed here
    monkeypatch.setenv("LIFEMON_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("LIFEMON_KAFKA_SASL_PASSWORD", raising=False)
    (tmp_path / "sasl.yaml").write_text(SASL)
    assert main([*command, "--config", str(tmp_path / "sasl.yaml")]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert (
        f"{tmp_path}/sasl.yaml:4: kafka.client.security.protocol: SASL_SSL with sasl.mechanism SCRAM-SHA-512 "
        "logs in with a user name and password, and no password is set. Fix: set LIFEMON_KAFKA_SASL_PASSWORD"
    ) in line


@pytest.mark.parametrize(
    ("key", "said"),
    [
        (None, "LIFEMON_PSEUDONYM_KEY is not set: set it to the key the monitor's pseudonyms are made with"),
        (
            "short",
            "LIFEMON_PSEUDONYM_KEY must be at least 16 bytes (it has 5); generate one with `openssl rand",
        ),
    ],
    ids=["unset", "short"],
)
@pytest.mark.parametrize("command", [["pseudonym", "C1"], ["fingerprint", "card_no"]], ids=lambda c: c[0])
def test_an_unusable_pseudonym_key_is_a_config_error_naming_the_variable(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    root_logging: None,
    command: list[str],
    key: str | None,
    said: str,
) -> None:
    """A short key ended in a ValueError traceback, an unset one in a bare line with exit status 1."""
    # no demo's database: the `make demo` the README runs first leaves one in ./.lifemon, and on it
    # an unset key says the demo's was a one-off (test_incidents.py, the wrong key or none)
    monkeypatch.setenv("LIFEMON_DATA_DIR", str(tmp_path))
    if key is None:
        monkeypatch.delenv("LIFEMON_PSEUDONYM_KEY")
    else:
        monkeypatch.setenv("LIFEMON_PSEUDONYM_KEY", key)
    assert main(command) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert said in line
    assert key is None or key not in line  # the value itself is never shown


def test_a_short_pseudonym_key_stops_a_replay_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], root_logging: None
) -> None:
    monkeypatch.setenv("LIFEMON_PSEUDONYM_KEY", "short")
    (tmp_path / "pfi.access.jsonl").write_text("")
    assert main(["replay", str(tmp_path / "pfi.access.jsonl")]) == 2
    assert "LIFEMON_PSEUDONYM_KEY must be at least 16 bytes" in capsys.readouterr().err


def test_a_replay_into_clickhouse_needs_the_key_and_one_that_stores_nothing_does_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], root_logging: None
) -> None:
    """A probe replayed one day twice into one store without a key: 56 alerts, then 65 (the same
    marketing pushes under other pseudonyms). Into ClickHouse a replay needs the key, and says why
    before it reads a record; one that stores nothing gets a one-off key, as before."""
    monkeypatch.delenv("LIFEMON_PSEUDONYM_KEY")
    (tmp_path / "pfi.access.jsonl").write_text("")
    store = f"chdb://{tmp_path / 'chdb'}"
    assert main(["replay", str(tmp_path / "pfi.access.jsonl"), "--clickhouse", store]) == 2
    err = capsys.readouterr().err
    assert "LIFEMON_PSEUDONYM_KEY is not set and a replay stored with --clickhouse needs" in err, err
    assert "openssl rand -hex 32" in err and not (tmp_path / "chdb").exists()
    assert main(["replay", str(tmp_path / "pfi.access.jsonl")]) == 0
    assert "using a one-off key" in capsys.readouterr().err


# -- 7. records a replay refused -----------------------------------------------------------------------
def test_a_replay_that_dead_letters_records_says_which_and_exits_5(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], root_logging: None
) -> None:
    """A record judged too far ahead of its batch was dropped with one warning and exit 0: a user
    replaying test cases lost an event without noticing."""
    from conftest import T0

    lines = [
        orjson.dumps({"event_id": f"a{i}", "ts": T0 + i, "actor_id": "E1", "actor_org": "S0101",
                      "system": "crm", "action": "view", "subject_ids": ["C1"], "fields": ["customer_name"]})
        for i in range(6)
    ]  # fmt: skip
    lines[2] = lines[2].replace(str(T0 + 2).encode(), str(T0 + 86_400_000 * 1000).encode())  # years ahead
    lines[4] = b"{not json"
    events = tmp_path / "pfi.access.jsonl"
    events.write_bytes(b"\n".join(lines) + b"\n")
    assert main(["replay", str(events)]) == 5
    err = capsys.readouterr().err
    # accesses alone: said, since every employee and customer is then unknown to the detectors
    assert "no pfi.consents, pfi.customers, pfi.entitlements file among the inputs" in err
    assert "2 records dead-lettered, not replayed: event_time 1, malformed 1" in err
    assert "--dead-letters FILE writes all of them" in err
    assert (
        f"  {events} line 3: event_time ts: " in err
        and f"  {events} line 5: malformed: not valid JSON" in err
    )

    out = tmp_path / "dead.jsonl"
    assert main(["replay", str(events), "--dead-letters", str(out), "--allow-dead-letters"]) == 0
    assert f"all of them in {out}" in capsys.readouterr().err
    written = sorted((orjson.loads(line) for line in out.read_bytes().splitlines()), key=lambda d: d["line"])
    assert [(d["file"], d["line"], d["kind"], d["field"]) for d in written] == [
        (str(events), 3, "event_time", "ts"),
        (str(events), 5, "malformed", ""),
    ]
    assert "ahead of this machine's clock" in written[0]["reason"]


def test_a_replay_of_two_files_of_one_name_reports_each_files_dead_letters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], root_logging: None
) -> None:
    """Two days in two folders, each a pfi.access.jsonl: a refused record is reported against the
    file that holds it (both were reported against the second), and neither file's records are
    taken for the other's (each is its own log)."""
    from conftest import T0

    def access(i: int) -> bytes:
        return orjson.dumps({"event_id": f"a{i}", "ts": T0 + i, "actor_id": "E1", "actor_org": "S0101",
                             "system": "crm", "action": "view", "subject_ids": ["C1"], "fields": ["customer_name"]})  # fmt: skip

    first, second = tmp_path / "day1" / "pfi.access.jsonl", tmp_path / "day2" / "pfi.access.jsonl"
    for path, bad in ((first, 1), (second, 3)):
        path.parent.mkdir()
        lines = [access(i + 10 * bad) for i in range(4)]
        lines[bad] = b"{not json"
        path.write_bytes(b"\n".join(lines) + b"\n")
    out = tmp_path / "dead.jsonl"
    assert main(["replay", str(first.parent), str(second.parent), "--dead-letters", str(out)]) == 5
    written = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert sorted((d["file"], d["line"]) for d in written) == [(str(first), 2), (str(second), 4)]
    assert "access=6 " in capsys.readouterr().err  # three of each file: neither taken for the other


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["generate", "-n", "10", "--out", "{file}/day"], "cannot use {file}/day: Not a directory"),
        (
            ["replay", "{day}", "--alerts-out", "{tmp}/missing/a.jsonl"],
            "--alerts-out {tmp}/missing/a.jsonl: its folder",
        ),
        (["replay", "{day}", "--dead-letters", "{tmp}"], "--dead-letters {tmp}: is a folder"),
    ],
    ids=["generate-out", "alerts-out", "dead-letters"],
)
def test_an_output_path_that_cannot_be_written_is_one_line_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], root_logging: None, args: list[str], said: str
) -> None:
    """An unwritable output was a traceback, and a replay's only after all its work was done."""
    (tmp_path / "afile").write_text("")
    day = tmp_path / "day"
    day.mkdir()
    (day / "pfi.access.jsonl").write_text("")
    subst = {"file": str(tmp_path / "afile"), "day": str(day), "tmp": str(tmp_path)}
    assert main([a.format(**subst) for a in args]) == 2
    err = capsys.readouterr().err
    assert said.format(**subst) in err and "Traceback" not in err


@pytest.mark.parametrize("seconds", ["-5", "0", "soon"])
def test_a_run_for_no_time_is_refused_by_the_parser(seconds: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args(["run", "--seconds", seconds])
    assert e.value.code == 2 and "argument --seconds" in capsys.readouterr().err


def test_every_option_with_a_default_says_it() -> None:
    """`--help` is where a user learns what an option does when left out (a new user's `ship --app`
    shipped captures as app "app", said nowhere)."""
    from streams.cli import build_parser

    unsaid = []

    def walk(parser: argparse.ArgumentParser, path: list[str]) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, [*path, name])
            elif (
                action.option_strings
                and action.help not in (None, argparse.SUPPRESS)
                and action.default not in (None, False, argparse.SUPPRESS)
                and "default" not in action.help.lower()
            ):
                unsaid.append(f"lifemon {' '.join(path)} {action.option_strings[-1]}")

    walk(build_parser(), [])
    assert unsaid == []


def test_the_version_is_one_line() -> None:
    """What an analyst pastes into a ticket (a new user's `lifemon --version` was an unknown option)."""
    from importlib.metadata import version

    done = lifemon("--version", cwd=ROOT)
    assert done.returncode == 0 and done.stdout == f"lifemon {version('lifemon')}\n", done


def test_an_incidents_show_takes_the_incident_lists_filters_only_to_refuse_them() -> None:
    """`incidents show ID --severity high` is the one-line refusal (`_one_id_only`); `--rule`, a
    filter of the alerts list, is no option of it (a review's was refused as "the list's filter")."""
    from streams.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["incidents", "show", "abcdef123456", "--severity", "high"]).severity == "high"
    with pytest.raises(SystemExit):
        parser.parse_args(["incidents", "show", "abcdef123456", "--rule", "LM-TP"])
    assert parser.parse_args(["alerts", "show", "abcdef123456", "--rule", "LM-TP"]).rule == "LM-TP"


def test_what_lifemon_writes_is_its_owners_alone(tmp_path: Path) -> None:
    """A probe found the demo's folder 0755 and its files 0644 on a shared host: alerts name
    pseudonyms and employees. Folders 0700, files 0600."""
    done = lifemon("generate", "--out", "day", "-n", "200", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    day = tmp_path / "day"
    files = [p for p in day.iterdir() if p.is_file()]
    assert files and day.stat().st_mode & 0o777 == 0o700
    assert {p.stat().st_mode & 0o777 for p in files} == {0o600}


@pytest.mark.parametrize("command", ["alerts", "incidents"])
def test_a_spelled_out_usage_names_every_option_of_the_list(command: str) -> None:
    """`alerts` and `incidents` write their usage by hand (argparse's showed the sub-command as
    required): every option of the list is in it (a new user found `--raised-since` missing)."""
    from streams.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    listing = sub.choices[command]
    usage = listing.format_usage()
    options = [o for a in listing._actions for o in a.option_strings if o.startswith("--") and o != "--help"]
    assert options and [o for o in options if o not in usage] == []


@pytest.mark.parametrize("columns", [60, 80, 140])
@pytest.mark.parametrize(
    "command", [["alerts"], ["incidents"], ["alerts", "resolve"], ["incidents", "resolve"]]
)
def test_the_listings_help_fits_the_terminal(
    command: list[str], columns: int, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`lifemon alerts --help` and `incidents --help` ran to 113 columns (their usage, spelled out by
    hand, was not wrapped; the review states and verdicts were listed in a line of their own): each
    line is within the width argparse wraps the rest to, the terminal's less 2, and each form of
    the usage keeps its words in order."""
    monkeypatch.setenv("COLUMNS", str(columns))
    with pytest.raises(SystemExit):
        main([*command, "--help"])
    out = capsys.readouterr().out
    assert max(map(len, out.splitlines())) <= columns - 2
    usage = " ".join(out.split("\n\n")[0].split())
    if len(command) == 1:
        assert f"lifemon {command[0]} show " in usage and "[--clickhouse CLICKHOUSE]" in usage
