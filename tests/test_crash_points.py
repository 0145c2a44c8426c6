"""The promise "offsets are committed only after every sink acknowledged and the state is stored",
proven where it can break: the real `lifemon run` process dies (`os._exit`, like `kill -9`) at each
step of a checkpoint, is restarted, and must end with the alerts topic and the ClickHouse tables of
an uninterrupted run: nothing lost, nothing twice."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from test_pipeline import ROOT, make_config, run_cli, write_config
from test_replay import live_final, replay_final

from schemas.models import REFERENCE_STREAMS
from streams.produce import produce
from streams.runtime import CRASH_ENV, ensure_topics
from streams.workload import generate, write_files

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def day(policy):
    return generate(6000, seed=5, policy=policy)


def run(config_path, env_extra: dict[str, str]) -> tuple[int, str]:
    proc = run_cli(config_path, until_idle=2, env_extra=env_extra)
    out, _ = proc.communicate(timeout=180)
    return proc.returncode, out.decode()


def clickhouse_totals(dsn: str, db: str) -> dict:
    """Read the run's chDB from a fresh process: chDB allows one data path per process."""
    code = f"""
import json
from streams.clickhouse import connect
c = connect({dsn!r})
alerts = c.query("SELECT alert_id, subject_count FROM {db}.alerts FINAL ORDER BY alert_id").result_rows
rollups = c.query("SELECT stream, sum(events) FROM {db}.event_rollups FINAL GROUP BY stream").result_rows
ledger = c.query("SELECT count(), sum(records) FROM {db}.transfer_ledger FINAL").result_rows[0]
print(json.dumps({{"alerts": alerts, "rollups": dict(rollups), "ledger": ledger}}))
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, timeout=120, check=True)
    return json.loads(out.stdout.decode().strip().splitlines()[-1])


@pytest.mark.parametrize("point", ["after_flush", "after_state", "after_commit"])
def test_a_crash_at_each_checkpoint_step_loses_and_duplicates_nothing(
    point, day, broker, names, policy, catalog, tmp_path
) -> None:
    dsn = f"chdb://{tmp_path / 'chdb'}"
    config = make_config(names, broker, dsn, checkpoint_interval_s=0.2)
    config.kafka.batch_size = 200  # many checkpoints: the crash lands mid-day, with windows open
    ensure_topics(broker, config)
    path = write_config(config, tmp_path / "lifemon.yaml")
    produce(broker, config, day.records)
    crash_then_restart(path, f"{point}@2000", config, day, broker, policy, catalog, tmp_path)


def crash_then_restart(path, crash_at: str, config, day, broker, policy, catalog, tmp_path) -> None:
    """`lifemon run` dies at `crash_at` (step@records), runs again to the end, and leaves the
    replay's alerts on the topic, each once in ClickHouse, and every record counted once."""
    code, out = run(path, {CRASH_ENV: crash_at})
    assert code == 137, out
    code, out = run(path, {})
    assert code == 0, out

    events = write_files(day, tmp_path / "files", "jsonl")
    expected = replay_final([p for p in events if p.suffix == ".jsonl"], policy, catalog, 500)
    assert expected and live_final(broker, config.topics.alerts) == expected
    totals = clickhouse_totals(config.clickhouse.dsn, config.clickhouse.database)
    assert sorted(a for a, _ in totals["alerts"]) == sorted(expected)  # each alert once
    produced: dict[str, int] = {}
    for stream, _, _ in day.records:
        if stream not in REFERENCE_STREAMS:
            produced[stream] = produced.get(stream, 0) + 1
    assert {s: n for s, n in totals["rollups"].items() if s in produced} == produced  # counted once
    transfers = [r for s, _, r in day.records if s == "transfer"]
    assert totals["ledger"] == [len(transfers), sum(r.record_count for r in transfers)]  # each transfer once
