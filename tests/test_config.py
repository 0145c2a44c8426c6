"""Runtime config: the file, the key, the line and the fix; secrets only from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from policy import PolicyError
from streams.config import load_config


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "lifemon.yaml"
    p.write_text(text, encoding="utf-8")
    return p


def test_a_misspelt_key_gets_its_correct_spelling(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as e:
        load_config(write(tmp_path, "kafka:\n  bootstrap: k:9092\n  batchsize: 10\n"))
    assert (e.value.key, e.value.line, e.value.fix) == (
        "kafka.batchsize",
        3,
        "rename `batchsize` to `batch_size`",
    )


def test_secrets_are_refused_in_files_and_taken_from_the_environment(tmp_path: Path, monkeypatch) -> None:
    with pytest.raises(PolicyError, match="secrets are not read from files") as e:
        load_config(write(tmp_path, "kafka:\n  client:\n    sasl.password: hunter2\n"))
    assert "LIFEMON_KAFKA_SASL_PASSWORD" in e.value.fix and "hunter2" not in str(e.value)
    monkeypatch.setenv("LIFEMON_KAFKA_SASL_PASSWORD", "from-env")
    monkeypatch.setenv("LIFEMON_KAFKA_BOOTSTRAP", "broker:9093")
    config = load_config(write(tmp_path, "kafka:\n  bootstrap: ignored:9092\n"))
    assert config.kafka.bootstrap == "broker:9093" and config.kafka_settings()["sasl.password"] == "from-env"


def test_a_sasl_login_needs_its_user_name_and_password_only_to_connect(tmp_path: Path, monkeypatch) -> None:
    """Loading the config never asks for the password (`lifemon alerts` never connects to Kafka);
    the settings a Kafka client is made with do, with what to set."""
    monkeypatch.delenv("LIFEMON_KAFKA_SASL_PASSWORD", raising=False)
    path = write(
        tmp_path, "kafka:\n  client:\n    security.protocol: sasl_plaintext\n    sasl.mechanism: PLAIN\n"
    )
    config = load_config(path)
    with pytest.raises(PolicyError) as e:
        config.kafka_settings()
    assert (e.value.file, e.value.key, e.value.line) == (str(path), "kafka.client.security.protocol", 3)
    assert (
        "SASL_PLAINTEXT with sasl.mechanism PLAIN logs in with a user name and password, and no user name or password is set"
        in str(e.value)
    )
    assert e.value.fix == (
        f"set kafka.client.sasl.username in {path} and set LIFEMON_KAFKA_SASL_PASSWORD "
        "(secrets come only from the environment)"
    )
    config.kafka.client["sasl.mechanism"] = "GSSAPI"  # Kerberos: no user name or password to ask for
    assert config.kafka_settings()["sasl.mechanism"] == "GSSAPI"
    monkeypatch.setenv("LIFEMON_KAFKA_SASL_PASSWORD", "from-env")
    config = load_config(path)
    config.kafka.client["sasl.username"] = "lifemon"
    assert config.kafka_settings()["sasl.password"] == "from-env"


def test_a_log_line_prefix_with_two_q_escapes_reads_as_the_server_writes_it() -> None:
    """PostgreSQL's first %q ends what sessionless processes print; a probe's prefix with a second
    one stopped `lifemon run` with a regex error."""
    from streams.sources.pg_log import prefix_pattern

    line = "2026-01-01 10:00:00.123 CST [42] alice@core LOG:  AUDIT: ..."
    for prefix in ("%m [%p] %q%u@%d %q", "%m [%p] %q%u@%d %q%q"):
        found = prefix_pattern(prefix).match(line)
        assert found and found["user"] == "alice" and found["db"] == "core", prefix


def test_broken_yaml_and_wrong_values(tmp_path: Path) -> None:
    # a folder given for the file: said so, not "not found" (a probe's `--config /tmp`)
    with pytest.raises(
        PolicyError, match="a folder, not a config file. Fix: give --config the YAML file's path"
    ):
        load_config(tmp_path)
    with pytest.raises(PolicyError, match="config file not found"):
        load_config(tmp_path / "none.yaml")
    with pytest.raises(PolicyError, match="not valid YAML"):
        load_config(write(tmp_path, "kafka: [unclosed\n"))
    with pytest.raises(PolicyError, match="must be a mapping"):
        load_config(write(tmp_path, "- a\n"))
    with pytest.raises(PolicyError) as e:
        load_config(write(tmp_path, "checkpoint_interval_s: -1\n"))
    assert e.value.key == "checkpoint_interval_s" and "greater than 0" in str(e.value)
    # two wrong values: both said, each with its line and fix, so one edit mends them
    with pytest.raises(PolicyError) as e:
        load_config(write(tmp_path, "kafka:\n  partitions: six\ncheckpoint_interval_s: -2\n"))
    assert (e.value.key, e.value.line) == ("kafka.partitions", 2)
    assert str(e.value).endswith(
        "Also line 3, checkpoint_interval_s: Input should be greater than 0. Fix: use a larger number."
    )


@pytest.mark.parametrize(
    ("text", "key", "line", "said"),
    [
        ("topics:\n  dlq: pfi.access\n", "topics.dlq", 2, "is pfi.access, as topics.access is"),
        ("topics:\n  access: ' '\n", "topics.access", 2, "is empty"),
        (
            "raw_sources:\n  sftp:\n    enabled: true\n    topic: pfi.transfer\n",
            "raw_sources.sftp.topic",
            4,
            "as topics.transfer is",
        ),
        ("kafka:\n  client:\n    acks: 1\n", "kafka.client", 3, "acks is lifemon's own setting"),
        (
            "kafka:\n  client:\n    bootstrap.servers: a:9092\n",
            "kafka.client.bootstrap.servers",
            3,
            "set kafka.bootstrap",
        ),
        # a probe's: each stopped `lifemon run` with a traceback, or hung it in librdkafka
        ("kafka:\n  group_id: ''\n", "kafka.group_id", 2, "at least 1 character"),
        ("raw_sources:\n  pgaudit:\n    timezone: Mars/Olympus\n", "raw_sources.pgaudit.timezone", 3,
         "is no IANA time zone"),
        ("raw_sources:\n  sftp:\n    timezone: UTC+8\n", "raw_sources.sftp.timezone", 3, "is no IANA time zone"),
        ("schema_registry_url: notaurl\n", "schema_registry_url", 1, "is not an http(s) URL"),
        # a probe's: 30 000 was silently overridden then (honoured now); below a broker's minimum,
        # every join would fail
        ("kafka:\n  client:\n    session.timeout.ms: 3000\n", "kafka.client.session.timeout.ms", 3,
         ": 3000 is not a whole number of milliseconds from 6000 to 1800000"),
        # a probe's max.poll.interval.ms 10 000 was a traceback; one under the session timeout
        # librdkafka refuses to take at all
        ("kafka:\n  client:\n    max.poll.interval.ms: 5000\n", "kafka.client.max.poll.interval.ms", 3,
         ": 5000 is below session.timeout.ms (6000, lifemon's default)"),
    ],
    ids=[
        "two-on-one-topic", "empty-topic", "raw-on-a-stream-topic", "acks", "bootstrap", "empty-group",
        "zone", "zone-offset", "registry-url", "session-timeout", "poll-interval",
    ],
)  # fmt: skip
def test_topics_shared_or_empty_and_lifemons_own_client_settings_are_config_errors(
    tmp_path: Path, text: str, key: str, line: int, said: str
) -> None:
    """Two streams on one topic crashed `run` at its first record; an `acks: 1` under kafka.client
    silently overrode the producers' acks=all, a bootstrap.servers there the --bootstrap given."""
    with pytest.raises(PolicyError) as e:
        load_config(write(tmp_path, text))
    assert (e.value.key, e.value.line) == (key, line) and said in str(e.value) and e.value.fix


def test_a_batch_size_past_what_librdkafka_consumes_is_a_config_error(tmp_path: Path) -> None:
    """A probe's 2 000 000 passed, then stopped `lifemon run` at its first poll with librdkafka's
    ValueError (consume() takes at most 1 000 000 records)."""
    path = write(tmp_path, "kafka:\n  bootstrap: k:9092\n  batch_size: 2000000\n")
    with pytest.raises(PolicyError) as e:
        load_config(path)
    assert str(e.value) == (
        f"{path}:3: kafka.batch_size: Input should be less than or equal to 1000000. Fix: use a smaller number."
    )
    assert load_config(write(tmp_path, "kafka:\n  batch_size: 1000000\n")).kafka.batch_size == 1_000_000


@pytest.mark.parametrize("text", ["", "# kafka:\n#   bootstrap: k:9092\n", "\n  \n", "---\n"])
def test_an_empty_config_file_is_a_config_error_not_an_embedded_broker(
    tmp_path: Path, text: str, caplog
) -> None:
    """A config step that rendered an empty file (a wrong ConfigMap key, a failed template) gave a
    probe's `lifemon run` an embedded in-memory broker: healthy, exit 0, and watching nothing."""
    from streams.cli import main

    path = write(tmp_path, text)
    with pytest.raises(PolicyError) as e:
        load_config(path)
    assert (e.value.file, e.value.key) == (str(path), "")
    assert str(e.value).startswith(
        f"{path}: (top level): the file is empty or only comments, so it sets nothing."
    )
    assert "leave out --config" in e.value.fix
    assert main(["run", "--config", str(path), "--until-idle", "1"]) == 2
    assert not any("embedded Tansu" in r.getMessage() for r in caplog.records)
    assert load_config(write(tmp_path, "{}\n")).kafka.bootstrap is None  # written out: the defaults, meant
    with pytest.raises(PolicyError, match="must be a mapping"):
        load_config(write(tmp_path, "[]\n"))


def test_a_setting_librdkafka_does_not_know_is_one_line_naming_it(tmp_path: Path, caplog) -> None:
    from streams.cli import main

    path = write(tmp_path, "kafka:\n  client:\n    no.such.setting: 1\n")
    assert main(["watch", "--config", str(path), "--bootstrap", "127.0.0.1:9"]) == 2
    (said,) = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert said.startswith(f"{path}: librdkafka refuses a setting") and '"no.such.setting"' in said


def test_a_value_from_the_environment_or_a_flag_is_named_as_such(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("LIFEMON_METRICS_PORT", "abc")
    with pytest.raises(PolicyError) as e:
        load_config(write(tmp_path, "log:\n  level: info\n"))
    assert (e.value.file, e.value.key) == ("<the environment's LIFEMON_METRICS_PORT>", "metrics.port")
    monkeypatch.delenv("LIFEMON_METRICS_PORT")
    with pytest.raises(PolicyError) as e:
        load_config(None, clickhouse__dsn="/var/lib/lifemon/chdb")  # a path, as users type it
    assert (e.value.file, e.value.key) == ("<the command line>", "clickhouse.dsn")
    assert "is no ClickHouse DSN" in str(e.value) and "chdb:///" in e.value.fix


def test_a_bootstrap_that_is_no_host_and_port_is_a_config_error_at_once(tmp_path: Path) -> None:
    """A new user copied `127.0.0.1:41927:` out of `lifemon run`'s "started embedded Tansu broker at
    127.0.0.1:41927: it lives…" into `watch --bootstrap` and, 10 s later, read "host name not found".
    Each broker is a host and port; what librdkafka takes besides passes as before."""
    with pytest.raises(PolicyError) as e:
        load_config(None, kafka__bootstrap="127.0.0.1:41927:")
    assert (e.value.file, e.value.key) == ("<the command line>", "kafka.bootstrap")
    assert (
        "holds '127.0.0.1:41927:', not a broker's host:port" in str(e.value)
        and "127.0.0.1:41927" in e.value.fix
    )
    path = write(tmp_path, "kafka:\n  bootstrap: 'kafka:9092,kafka2:port'\n")
    with pytest.raises(PolicyError) as e:
        load_config(path)
    assert (e.value.file, e.value.key, e.value.line) == (str(path), "kafka.bootstrap", 2)
    assert "holds 'kafka2:port'" in str(e.value)
    for bootstrap in [
        "kafka:9092",
        "a:1, b:2,",
        "[::1]:9092",
        "SASL_SSL://k.bank.internal:9093",
        "localhost",
        "",
    ]:
        assert load_config(None, kafka__bootstrap=bootstrap).kafka.bootstrap == bootstrap
