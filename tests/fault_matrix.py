"""The fault matrix's common parts (docs/faults.md): one bank's day of traffic, the run that no
fault touches, what a run leaves behind (the alerts and incidents topics, ClickHouse), and the
comparison of the two with lost and duplicate counts, each case's counts written where
`tests/fault_table.py` makes the README's table of them.

Lost and duplicate, per kind of record:
- events: per stream, what ClickHouse's rollups counted against what was produced;
- alerts and incidents: the final revision of each id, compared in content with the untouched
  run's; an id missing or with other content is lost, an id the untouched run has not is a
  duplicate (a window split in two, or counted twice); ClickHouse's alert ids are compared too;
- re-sent: alert revisions written to the topic more than once. At-least-once allows these (the
  id and revision make them harmless), so they are shown, not asserted.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson
from fault_injection import Running
from fault_table import RESULTS_DIR
from test_pipeline import ROOT, make_config, read_all, write_config
from test_replay import alert_content, incident_content

from schemas.models import REFERENCE_STREAMS
from streams.config import Config
from streams.produce import produce
from streams.runtime import ensure_topics
from streams.workload import Workload, generate

DAY_EVENTS, DAY_SEED = 3000, 5  # ~5,600 records with references; 52 alerts, 7 incidents


def bank_day(policy: Any) -> Workload:
    return generate(DAY_EVENTS, seed=DAY_SEED, policy=policy)


def halves(day: Workload) -> tuple[list[Any], list[Any]]:
    """The references and the first half of the events; the second half. A window open across
    the split is carried through the fault by the checkpointed state."""
    refs = sum(1 for stream, _, _ in day.records if stream in REFERENCE_STREAMS)
    cut = refs + (len(day.records) - refs) // 2
    return day.records[:cut], day.records[cut:]


def produced_events(day: Workload) -> dict[str, int]:
    return dict(Counter(stream for stream, _, _ in day.records if stream not in REFERENCE_STREAMS))


def fault_config(
    names: dict[str, str], bootstrap: str, dsn: str | None, client: dict[str, Any] | None = None
) -> Config:
    """Small batches and frequent checkpoints, so that a fault lands between checkpoints with
    windows open; librdkafka reconnects within a second once the broker is back. `dsn` None: the
    embedded chDB in data_dir."""
    config = make_config(
        names,
        bootstrap,
        dsn,  # type: ignore[arg-type]
        checkpoint_interval_s=0.3,
        kafka__client={"reconnect.backoff.max.ms": 1000, **(client or {})},
    )
    config.kafka.batch_size = 200
    return config


def prepare(config: Config, path: Path, records: list[Any]) -> Path:
    ensure_topics(config.kafka.bootstrap, config, dict(config.kafka.client))
    if records:
        produce(config.kafka.bootstrap, config, records)
    return write_config(config, path)


def untouched_run(bootstrap: str, policy: Any, folder: Path) -> Outcome:
    """The day through `lifemon run` with no fault: what every case must end with."""
    tag = f"untouched{time.time_ns() % 10**8}"
    names = {"tag": tag, "group": f"g-{tag}", "database": f"t_{tag}"}
    day = bank_day(policy)
    dsn = f"chdb://{folder / 'chdb'}"
    config = fault_config(names, bootstrap, dsn)
    Running.run(prepare(config, folder / "lifemon.yaml", day.records), until_idle=2).finish()
    out = outcome(bootstrap, config, [dsn])
    produced = produced_events(day)
    assert {s: n for s, n in out.events.items() if s in produced} == produced  # every event, once
    assert len(out.alerts) > 40 and len(out.incidents) > 3, "the day lost its violations"
    return out


# -- what a run leaves behind --------------------------------------------------------------------
@dataclass
class Outcome:
    """What a run left behind; JSON all through, so one run's can be shared between test workers."""

    alerts: dict[str, str]  # alert id -> final content (JSON)
    incidents: dict[str, str]  # incident id -> final content (JSON)
    resent: int  # alert revisions written to the topic more than once
    incident_records: list[str]  # every incident revision on the topic, in order per partition
    events: dict[str, int] = field(default_factory=dict)  # stream -> events ClickHouse counted
    stored_alerts: list[str] = field(default_factory=list)  # alert ids in ClickHouse


def as_json(content: Any) -> str:
    return orjson.dumps(content, option=orjson.OPT_SORT_KEYS).decode()


def newest(msgs: list[Any], uid: Any, revision: Any) -> dict[str, dict]:
    best: dict[str, dict] = {}
    for m in msgs:
        o = orjson.loads(m.value())
        if uid(o) not in best or revision(o) >= revision(best[uid(o)]):
            best[uid(o)] = o
    return best


def topics_outcome(bootstrap: str, config: Config) -> Outcome:
    alert_msgs = read_all(bootstrap, config.topics.alerts, expect_at_least=0, timeout_s=30)
    parsed = [orjson.loads(m.value()) for m in alert_msgs]
    written = Counter((o["finding_info"]["uid"], o["unmapped"]["revision"]) for o in parsed)
    alerts = newest(alert_msgs, lambda o: o["finding_info"]["uid"], lambda o: o["unmapped"]["revision"])
    incident_msgs = read_all(bootstrap, config.topics.incidents, expect_at_least=0, timeout_s=30)
    incidents = newest(incident_msgs, lambda o: o["incident_id"], lambda o: o["revision"])
    return Outcome(
        alerts={uid: as_json(alert_content(o)) for uid, o in alerts.items()},
        incidents={uid: as_json(incident_content(o)) for uid, o in incidents.items()},
        resent=sum(n - 1 for n in written.values()),
        incident_records=[m.value().decode() for m in incident_msgs],
    )


def clickhouse_rows(dsn: str, database: str) -> tuple[list[list[Any]], list[str]]:
    """Rollup rows ([key..., version, events]) and alert ids, each table FINAL, read in a fresh
    process (chDB allows one data path per process)."""
    code = f"""
import json
from streams.clickhouse import connect
c = connect({dsn!r})
ids = [r[0] for r in c.query("SELECT alert_id FROM {database}.alerts FINAL").result_rows]
rollups = c.query(
    "SELECT topic, partition, block, toString(minute), stream, jr_class, org, outcome, action, version, events "
    "FROM {database}.event_rollups FINAL"
).result_rows
print(json.dumps({{"ids": ids, "rollups": rollups}}))
"""
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    got = json.loads(done.stdout.decode().strip().splitlines()[-1])
    return got["rollups"], got["ids"]


def outcome(bootstrap: str, config: Config, dsns: list[str]) -> Outcome:
    """The topics, and the ClickHouse tables of every instance of the run (each has its own chDB):
    merged as one shared ClickHouse would merge them, the highest version of each rollup key."""
    out = topics_outcome(bootstrap, config)
    rollups: dict[tuple, tuple[int, int]] = {}
    stored: set[str] = set()
    for dsn in dsns:
        rows, ids = clickhouse_rows(dsn, config.clickhouse.database)
        for *key, version, events in rows:
            if tuple(key) not in rollups or version > rollups[tuple(key)][0]:
                rollups[tuple(key)] = (version, events)
        stored |= set(ids)
    out.stored_alerts = sorted(stored)
    by_stream: Counter = Counter()
    for key, (_, events) in rollups.items():
        by_stream[key[4]] += events
    out.events = dict(by_stream)
    return out


# -- the comparison ----------------------------------------------------------------------------------
@dataclass
class Tally:
    """Lost and duplicate records of one case; None where the case does not touch that kind."""

    events_lost: int | None = None
    events_duplicated: int | None = None
    alerts_lost: int | None = None
    alerts_duplicated: int | None = None
    incidents_lost: int | None = None
    incidents_duplicated: int | None = None
    resent: int | None = None
    differences: list[str] = field(default_factory=list, repr=False)  # for the failure message

    def assert_clean(self) -> None:
        counted = {k: v for k, v in asdict(self).items() if k not in ("resent", "differences")}
        assert all(v in (0, None) for v in counted.values()), "\n".join([str(self), *self.differences])


def lost_and_duplicated(expected: dict[str, str], got: dict[str, str]) -> tuple[set[str], set[str]]:
    """Ids whose final content is missing or other; ids that should not be there."""
    return {k for k, v in expected.items() if got.get(k) != v}, {k for k in got if k not in expected}


def tally(baseline: Outcome, run: Outcome) -> Tally:
    """The run against the untouched one; events per stream as ClickHouse's rollups count them
    (the untouched run's counts equal what was produced: `untouched_run` checks)."""
    produced = baseline.events
    streams = set(produced) | set(run.events)
    alerts_lost, alerts_dup = lost_and_duplicated(baseline.alerts, run.alerts)
    stored = set(run.stored_alerts)
    alerts_lost |= {a for a in baseline.alerts if a not in stored}  # on the topic, not in ClickHouse
    alerts_dup |= stored - set(baseline.alerts)
    incidents_lost, incidents_dup = lost_and_duplicated(baseline.incidents, run.incidents)
    return Tally(
        events_lost=sum(max(produced.get(s, 0) - run.events.get(s, 0), 0) for s in streams),
        events_duplicated=sum(max(run.events.get(s, 0) - produced.get(s, 0), 0) for s in streams),
        alerts_lost=len(alerts_lost),
        alerts_duplicated=len(alerts_dup),
        incidents_lost=len(incidents_lost),
        incidents_duplicated=len(incidents_dup),
        resent=run.resent,
        differences=[
            f"{what} {k}:\n  untouched {expected.get(k)}\n  this run  {got.get(k)}"
            for what, keys, expected, got in (
                ("alert", alerts_lost | alerts_dup, baseline.alerts, run.alerts),
                ("incident", incidents_lost | incidents_dup, baseline.incidents, run.incidents),
            )
            for k in sorted(keys)
        ],
    )


def record(case: str, injected: str, result: str, counts: Tally, started: float) -> None:
    """One row of the table of faults survived (tests/fault_table.py), kept per case."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    counted = {k: v for k, v in asdict(counts).items() if k != "differences"}
    row = {"case": case, "injected": injected, "result": result, **counted}
    row["seconds"] = round(time.monotonic() - started, 1)
    (RESULTS_DIR / f"{case}.json").write_text(json.dumps(row) + "\n")
