"""The faust-streaming runtime (`lifemon run --runtime faust`) on a real Tansu broker and chDB: the
native runtime's alerts, dead letters and rollups on the same input, and offsets committed only
after every sink acknowledged, proven by crashes at each checkpoint step and by a long checkpoint
interval that leaves nothing committed until the shutdown checkpoint."""

from __future__ import annotations

import logging
import re
import time

import faust
import pytest
from confluent_kafka import ConsumerGroupState
from confluent_kafka.admin import AdminClient
from conftest import access, entitlement
from test_crash_points import crash_then_restart
from test_pipeline import (
    committed_offsets,
    latest_alerts,
    make_config,
    monitor,
    read_all,
    run_cli,
    send,
    wait_assigned,
    write_config,
)
from test_replay import live_final, replay_final

from detectors import load_detectors
from policy import PolicyError
from schemas.models import REFERENCE_STREAMS
from streams.cli import _setup, build_parser
from streams.config import Config
from streams.faust_runtime import FaustMonitor, faust_credentials
from streams.produce import produce
from streams.pseudonym import Pseudonymizer
from streams.runtime import ensure_topics
from streams.sinks import FatalSinkError
from streams.workload import generate, write_files

BAD = [b"{not json", b"\x00\x00\x00\x03\xe7\x02abc"]  # malformed JSON; Confluent wire, unknown schema 999


@pytest.fixture(scope="module")
def day(policy):
    return generate(1500, seed=3, policy=policy)  # 4016 records: the violations of every detector


def outputs_of(config: Config, names: dict[str, str], suffix: str) -> Config:
    """The same inputs, another group with its own outputs and database."""
    tag = f"{names['tag']}-{suffix}"
    topics = config.topics.model_copy(
        update={"alerts": f"pfi.alerts.{tag}", "incidents": f"pfi.incidents.{tag}", "dlq": f"pfi.dlq.{tag}"}
    )
    return config.model_copy(
        update={
            "runtime": suffix,
            "topics": topics,
            "kafka": config.kafka.model_copy(update={"group_id": f"{names['group']}-{suffix}"}),
            "clickhouse": config.clickhouse.model_copy(update={"database": f"{names['database']}_{suffix}"}),
        }
    )


@pytest.mark.integration
def test_faust_gives_the_native_runtimes_alerts_dead_letters_and_rollups(
    day, broker, ch, names, policy, catalog
) -> None:
    base = make_config(names, broker, "chdb://unused")
    ensure_topics(broker, base)
    produce(broker, base, day.records)
    send(broker, base.topics.access, BAD)
    native, on_faust = outputs_of(base, names, "native"), outputs_of(base, names, "faust")

    monitor(native, ch, policy, catalog).run(idle_exit_s=2, max_seconds=120)
    ensure_topics(broker, on_faust)
    stats = FaustMonitor(
        on_faust,
        broker,
        ch,
        load_detectors(policy),
        catalog,
        Pseudonymizer.from_env(allow_ephemeral=False),
    ).run(idle_exit_s=2, max_seconds=120)

    expected = live_final(broker, native.topics.alerts)
    assert len({v[-1] for v in expected.values()}) >= 4  # alerts of several detectors
    assert live_final(broker, on_faust.topics.alerts) == expected
    assert set(stats.alerts) == set(expected)

    def tables(config: Config) -> tuple:
        db = config.clickhouse.database
        return (
            ch.query(
                f"SELECT alert_id, subject_count, severity FROM {db}.alerts FINAL ORDER BY 1"
            ).result_rows,
            ch.query(
                f"SELECT stream, sum(events) FROM {db}.event_rollups FINAL GROUP BY 1 ORDER BY 1"
            ).result_rows,
            ch.query(f"SELECT kind, partition, offset FROM {db}.dead_letters FINAL ORDER BY 3").result_rows,
        )

    assert tables(on_faust) == tables(native)
    assert [row[0] for row in tables(on_faust)[2]] == ["malformed", "unknown_schema"]
    dlq = read_all(broker, on_faust.topics.dlq, expect_at_least=2)
    assert sorted(m.value() for m in dlq) == sorted(BAD)  # the original bytes, reason in headers
    access_events = sum(1 for s, _, _ in day.records if s == "access")
    assert committed_offsets(broker, on_faust.kafka.group_id, base.topics.access) == access_events + len(BAD)


@pytest.mark.integration
def test_faust_commits_nothing_before_the_checkpoint(broker, names, tmp_path) -> None:
    """Faust's own committer runs every 2.8 s and at a rebalance or stop; with the input declared
    acks=False it commits nothing: an hour-long checkpoint interval leaves the group's offsets at 0
    while the events are processed, until the shutdown checkpoint commits all 70."""
    config = make_config(names, broker, f"chdb://{tmp_path / 'chdb'}", checkpoint_interval_s=3600)
    config.runtime = "faust"
    ensure_topics(broker, config)
    path = write_config(config, tmp_path / "lifemon.yaml")
    send(broker, config.topics.entitlements, [entitlement("e1")])
    send(broker, config.topics.access, access("e1", customers=70, every_s=5))
    proc = run_cli(path, until_idle=600)
    wait_assigned(broker, names["group"], proc)
    time.sleep(6)  # the 70 events are processed; faust's committer has run twice
    assert committed_offsets(broker, names["group"], config.topics.access) == 0 and proc.poll() is None
    proc.terminate()
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out.decode()
    assert "faust runtime" in out.decode()
    assert committed_offsets(broker, names["group"], config.topics.access) == 70
    (alert,) = latest_alerts(read_all(broker, config.topics.alerts)).values()
    assert alert["unmapped"]["subject_count"] == 70


@pytest.mark.integration
def test_a_faust_run_killed_after_the_flush_loses_and_duplicates_nothing(
    day, broker, names, policy, catalog, tmp_path
) -> None:
    """The faust process dies (`os._exit`) after the sinks flushed and before the state is stored
    and the offsets committed; restarted, it ends with the replay's alerts, each once in
    ClickHouse, and every record counted once: the assign handler rebuilt the state from the
    changelog (without it the restart neither equals the replay nor finds its inputs caught up)."""
    dsn = f"chdb://{tmp_path / 'chdb'}"
    config = make_config(names, broker, dsn, checkpoint_interval_s=0.2)
    config.runtime = "faust"
    config.kafka.batch_size = 100
    ensure_topics(broker, config)
    path = write_config(config, tmp_path / "lifemon.yaml")
    produce(broker, config, day.records)
    crash_then_restart(path, "after_flush@1500", config, day, broker, policy, catalog, tmp_path)


def records_of(output: bytes) -> int:
    """The record count of a `lifemon run`'s final progress line."""
    return int(re.findall(r"(\d+) records \(", output.decode())[-1])


@pytest.mark.integration
def test_two_faust_instances_give_the_alerts_of_one(day, broker, names, policy, catalog, tmp_path) -> None:
    """A second faust worker joins mid-day: faust's assignor moves partitions, the revoke handler
    checkpoints them, the new owner restores them from the changelog. The two together process
    every record once and end with the replay's alerts."""
    paths = []
    for name in ("a", "b"):
        config = make_config(names, broker, f"chdb://{tmp_path / name / 'chdb'}", checkpoint_interval_s=0.3)
        config.runtime, config.data_dir, config.kafka.batch_size = "faust", tmp_path / name, 100
        ensure_topics(broker, config)
        paths.append(write_config(config, tmp_path / f"{name}.yaml"))
    references = [r for r in day.records if r[0] in REFERENCE_STREAMS]
    events = [r for r in day.records if r[0] not in REFERENCE_STREAMS]
    half = len(events) // 2
    produce(broker, config, references + events[:half])
    a = run_cli(paths[0], until_idle=10)
    deadline = time.monotonic() + 90
    while committed_offsets(broker, names["group"], config.topics.access) == 0:
        assert a.poll() is None and time.monotonic() < deadline, "the first worker never checkpointed"
        time.sleep(0.2)
    b = run_cli(paths[1], until_idle=10)
    assert b.stdout and b"monitoring" in b.stdout.readline()
    rebalanced(broker, names["group"])  # the second worker joined: the rest is shared
    produce(broker, config, events[half:])
    outputs = []
    for proc in (a, b):
        out, _ = proc.communicate(timeout=180)
        assert proc.returncode == 0, out.decode()
        outputs.append(records_of(out))
    assert all(outputs) and sum(outputs) == len(events)  # both worked, no record twice
    files = write_files(day, tmp_path / "files", "jsonl")
    expected = replay_final([p for p in files if p.suffix == ".jsonl"], policy, catalog, 500)
    assert expected and live_final(broker, config.topics.alerts) == expected


def rebalanced(bootstrap: str, group: str, timeout_s: float = 90) -> None:
    """Until the group has left its stable state for a rebalance and come back to it: a fixed
    sleep was too short on a loaded machine, and the first worker then read everything."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    deadline, moved = time.monotonic() + timeout_s, False
    while True:
        assert time.monotonic() < deadline, f"group {group} never rebalanced for the second worker"
        state = admin.describe_consumer_groups([group])[group].result(timeout=10).state
        moved = moved or state != ConsumerGroupState.STABLE
        if moved and state == ConsumerGroupState.STABLE:
            return
        time.sleep(0.05)


@pytest.mark.integration
def test_a_fatal_sink_error_on_faust_stops_the_run_and_commits_nothing(
    broker, ch, names, policy, catalog
) -> None:
    """A destination that is gone (its ClickHouse database dropped) fails the first checkpoint:
    the run raises that error, as the native runtime does, rather than faust logging it and
    carrying on, and no offset is committed."""
    config = make_config(names, broker, "chdb://unused")
    ensure_topics(broker, config)
    send(broker, config.topics.entitlements, [entitlement("e1")])
    send(broker, config.topics.access, access("e1", customers=70, every_s=5))
    m = FaustMonitor(
        config, broker, ch, load_detectors(policy), catalog, Pseudonymizer.from_env(allow_ephemeral=False)
    )
    ch.command(f"DROP DATABASE {config.clickhouse.database}")
    with pytest.raises(FatalSinkError, match=rf"{config.clickhouse.database}\.\w+ is gone"):
        m.run(idle_exit_s=1, max_seconds=60)
    assert committed_offsets(broker, names["group"], config.topics.access) == 0


def test_the_runtime_is_chosen_by_flag_or_config(monkeypatch) -> None:
    root = logging.getLogger()  # `_setup` sets up lifemon's logging: undone after the test
    monkeypatch.setattr(root, "handlers", root.handlers[:])
    monkeypatch.setattr(root, "level", root.level)
    args = build_parser().parse_args(["run", "--runtime", "faust"])
    config, *_ = _setup(args)
    assert config.runtime == "faust"
    config, *_ = _setup(build_parser().parse_args(["run"]))
    assert config.runtime == "native"


def test_librdkafka_security_settings_become_faust_credentials() -> None:
    assert faust_credentials({}) is None
    scram = faust_credentials(
        {
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "SCRAM-SHA-512",
            "sasl.username": "lifemon",
            "sasl.password": "pw",
        }
    )
    assert isinstance(scram, faust.SASLCredentials)
    assert (scram.username, scram.password, scram.mechanism.value) == ("lifemon", "pw", "SCRAM-SHA-512")
    with pytest.raises(
        PolicyError, match="kafka.client: .* sasl.mechanism GSSAPI is not supported by the faust"
    ):
        faust_credentials({"security.protocol": "SASL_SSL", "sasl.mechanism": "GSSAPI"})
