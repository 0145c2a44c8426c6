"""Scale-out through real `lifemon run` processes sharing one consumer group, each with its own
embedded chDB (they cannot share one): detector state travels with its partition through the
changelog topic, so two instances give the alerts of one, and a survivor that takes a killed
instance's partitions carries on its windows."""

from __future__ import annotations

import time

import pytest
from conftest import access, entitlement
from test_pipeline import committed_offsets, latest_alerts, make_config, read_all, run_cli, send, write_config
from test_replay import live_final, replay_final

from streams.produce import produce
from streams.runtime import ensure_topics
from streams.workload import generate, write_files

pytestmark = pytest.mark.integration


def instance_config(names, broker, tmp_path, name: str, **kw):
    config = make_config(names, broker, f"chdb://{tmp_path / name / 'chdb'}", **kw)
    config.data_dir = tmp_path / name
    ensure_topics(broker, config)
    path = write_config(config, tmp_path / f"{name}.yaml")
    return config, path


def test_two_instances_give_the_alerts_of_one(broker, names, policy, catalog, tmp_path) -> None:
    day = generate(6000, seed=9, policy=policy)
    config, first_path = instance_config(names, broker, tmp_path, "a", checkpoint_interval_s=0.3)
    _, second_path = instance_config(names, broker, tmp_path, "b", checkpoint_interval_s=0.3)
    produce(broker, config, day.records)
    a = run_cli(first_path, until_idle=6)
    time.sleep(1.5)  # the second joins while the first is at work: a rebalance moves partitions
    b = run_cli(second_path, until_idle=6)
    for proc in (a, b):
        out, _ = proc.communicate(timeout=180)
        assert proc.returncode == 0, out.decode()
    events = write_files(day, tmp_path / "files", "jsonl")
    expected = replay_final([p for p in events if p.suffix == ".jsonl"], policy, catalog, 500)
    assert expected and live_final(broker, config.topics.alerts) == expected


def test_a_survivor_takes_over_the_killed_instances_windows(broker, names, tmp_path) -> None:
    """40 lookups on instance A, checkpointed; A is killed; B takes its partitions and the 20
    lookups that follow complete the window: 60 customers, one alert."""
    config, first_path = instance_config(names, broker, tmp_path, "a")
    _, second_path = instance_config(names, broker, tmp_path, "b")
    t = config.topics
    send(broker, t.entitlements, [entitlement("e1", role="outreach_marketing")])  # threshold 50
    send(broker, t.access, access("e1", customers=40, every_s=10))
    a = run_cli(first_path, until_idle=600)
    deadline = time.monotonic() + 60
    while committed_offsets(broker, names["group"], t.access) < 40:
        assert a.poll() is None and time.monotonic() < deadline, "the first instance never checkpointed"
        time.sleep(0.2)
    b = run_cli(second_path, until_idle=600)
    time.sleep(3)  # B joined the group
    a.kill()  # no goodbye: B gets A's partitions when A's session times out
    a.wait()
    send(broker, t.access, access("e1", customers=20, first_customer=40, start=400_000, every_s=10))
    try:
        alerts = latest_alerts(read_all(broker, t.alerts, expect_at_least=1, timeout_s=60))
        assert [o["unmapped"]["subject_count"] for o in alerts.values()] == [60]
    finally:
        b.terminate()
        b.communicate(timeout=60)
