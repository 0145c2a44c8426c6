"""`lifemon replay` over files gives the alerts of the live run over the same events, whatever the
batch size and whether the files are JSON lines or Avro."""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from test_pipeline import (
    committed_offsets,
    latest_alerts,
    make_config,
    monitor,
    read_all,
    run_cli,
    write_config,
)

from detectors import REGISTRY, load_detectors
from policy import load_policy
from schemas.models import RecipientType
from streams.alerts import actor_of, latest
from streams.codecs import Decoder
from streams.demo import rule_names, score
from streams.engine import Engine
from streams.produce import produce
from streams.pseudonym import Pseudonymizer
from streams.replay import replay, stream_of_file
from streams.runtime import ensure_topics
from streams.sinks.clickhouse import ROLLUP_COLUMNS
from streams.workload import generate, write_files


@pytest.fixture(scope="module")
def workload(policy):
    return generate(6000, seed=3, policy=policy)


def incident_content(o: dict) -> tuple:
    """What an incident says (not its revision or status: a live run may not have closed it yet)."""
    return (
        o["key"],
        tuple(o["leakage_classes"]),
        o["subjects"]["distinct"],
        o["subjects"]["by_category"],
        o["records"],
        tuple(a["alert_id"] for a in o["alerts"]),
    )


def replay_final(
    paths: list[Path], policy, catalog, batch_size: int | str, incidents: dict | None = None
) -> dict[str, tuple]:
    """Final content of each alert (not its revision or status: a live run may not have closed it
    yet); the replay's incidents into `incidents` if given."""
    engine = Engine(load_detectors(policy), catalog, Pseudonymizer.from_env(allow_ephemeral=False))
    alerts, dead = replay(engine, Decoder(), paths, int(batch_size) if batch_size != "avro" else 1000)
    assert dead == []
    if incidents is not None:
        incidents[batch_size] = {
            i.incident_id: incident_content(i.model_dump(mode="json")) for i in engine.take_incidents()
        }
    return {
        a.alert_id: (
            a.actor_id,
            a.subject_count,
            a.severity.value,
            tuple(a.subjects_sample),
            tuple(a.evidence_event_ids),
            a.window_start,
            a.first_seen,
            a.last_seen,
            a.summary,
            a.actor_org,  # the engine fills an employee's (`Engine._with_org`): live must too
            a.detector,
        )
        for a in latest(alerts)
    }


def alert_content(o: dict) -> tuple:
    """The content `replay_final` gives, read from an OCSF alert on the topic."""
    return (
        actor_of(o),
        o["unmapped"]["subject_count"],
        o["severity"].lower(),
        tuple(o["unmapped"]["subjects_sample"]),
        tuple(e["uid"] for e in o["finding_info"]["related_events"]),
        o["unmapped"]["window_start"],
        o["finding_info"]["first_seen_time"],
        o["finding_info"]["last_seen_time"],
        o["message"],
        o["unmapped"]["actor_org"],
        o["finding_info"]["types"][0],
    )


def live_final(broker: str, topic: str) -> dict[str, tuple]:
    """The same content of each alert on the topic, newest revision."""
    return {uid: alert_content(o) for uid, o in latest_alerts(read_all(broker, topic)).items()}


def test_a_folders_files_that_name_no_stream_are_said_not_skipped_silently(tmp_path, caplog) -> None:
    from streams.replay import replay_files

    for name in ("pfi.access.jsonl", "pfi.transfers.jsonl", "pfi.sdk.jsonl.gz", "truth.json", ".hidden"):
        (tmp_path / name).write_text("")
    with caplog.at_level(logging.WARNING, logger="streams.replay"):
        assert replay_files([tmp_path]) == [tmp_path / "pfi.access.jsonl"]
    (said,) = [r.getMessage() for r in caplog.records]
    assert (
        "pfi.sdk.jsonl.gz, pfi.transfers.jsonl" in said and "truth.json" not in said and ".hidden" not in said
    )


def test_file_names_tell_the_stream() -> None:
    assert stream_of_file(Path("out/pfi.access.jsonl")) == "access"
    assert stream_of_file(Path("sdk-2026-01-01.avro")) == "sdk"
    with pytest.raises(ValueError, match="name it like pfi.access.jsonl"):
        stream_of_file(Path("events.jsonl"))


@pytest.mark.integration
def test_replay_equals_live(workload, broker, ch, names, policy, catalog, tmp_path) -> None:
    jsonl = write_files(workload, tmp_path / "jsonl", "jsonl")
    avro = write_files(workload, tmp_path / "avro", "avro")
    events = [p for p in jsonl if p.suffix == ".jsonl"]
    replayed: dict[int | str, dict[str, tuple]] = {}  # batch size -> the replay's incidents
    by_batch = {n: replay_final(events, policy, catalog, n, replayed) for n in (1, 97, 5000)}
    avro_events = [p for p in avro if p.suffix == ".avro"]
    by_batch["avro"] = replay_final(avro_events, policy, catalog, "avro", replayed)

    config = make_config(names, broker, "chdb://unused")
    m = monitor(config, ch, policy, catalog)
    produce(broker, config, workload.records)
    m.run(idle_exit_s=2, max_seconds=120)
    live = live_final(broker, config.topics.alerts)

    injected = {t["key"] for t in workload.truth if t["detector"] == "bulk_query"}
    bulk = {v[0] for uid, v in live.items() if v[-1] == "bulk_query"}
    assert bulk == injected  # every injected bulk query, nothing else
    for name, final in by_batch.items():
        assert final == live, f"replay ({name}) differs from the live run"
    # the live run equals the replay, so scoring the replay's alerts scores the live run: every rule
    # of every detector that the day injects is found end to end, and its near misses stay silent
    pz = Pseudonymizer.from_env(allow_ephemeral=False)
    specs = load_detectors(policy)
    alerts, _ = replay(Engine(specs, catalog, pz), Decoder(), events, 5000)
    scored = score(latest(alerts), workload.truth, list(REGISTRY), pz, rule_names(specs))
    assert all(r["injected"] for r in scored.values()), scored
    assert {k: (r["missed"], r["false_alarms"]) for k, r in scored.items()} == dict.fromkeys(REGISTRY, (0, 0))
    newest: dict[str, dict] = {}
    for msg in read_all(broker, config.topics.incidents):
        o = orjson.loads(msg.value())
        if o["revision"] >= newest.get(o["incident_id"], {"revision": 0})["revision"]:
            newest[o["incident_id"]] = o
    live_incidents = {uid: incident_content(o) for uid, o in newest.items()}
    assert live_incidents, "the workload's leakage violations open incidents"
    for name, incidents in replayed.items():
        assert incidents == replayed[1], f"replay ({name}) incidents differ from the replay in batches of 1"
    # the live run opens the same incidents, holding the same alerts
    assert live_incidents == replayed[1]


@pytest.mark.integration
def test_kill_9_mid_stream_gives_the_replay_alerts(
    workload, broker, names, policy, catalog, tmp_path
) -> None:
    """Crash the monitor hard in the middle of a bank day, restart it, and the alerts it ends with
    are exactly the replay's: none missing, none twice, none different."""

    config = make_config(names, broker, f"chdb://{tmp_path / 'chdb'}", checkpoint_interval_s=0.2)
    config.kafka.batch_size = 100  # small batches: many checkpoints to crash between
    ensure_topics(broker, config)
    path = write_config(config, tmp_path / "lifemon.yaml")
    # The day arrives in two halves; the crash comes while the first is being worked through or just
    # after, with windows open across the split, and the second half arrives while nobody runs.
    split = len(workload.records) // 2
    produce(broker, config, workload.records[:split])
    first_half = sum(1 for s, _, _ in workload.records[:split] if s == "access")

    first = run_cli(path, until_idle=120)
    deadline = time.monotonic() + 90
    while committed_offsets(broker, names["group"], config.topics.access) < first_half // 3:
        assert first.poll() is None and time.monotonic() < deadline, "the first run never got a third in"
        time.sleep(0.05)
    first.kill()
    first.wait()
    produce(broker, config, workload.records[split:])

    second = run_cli(path, until_idle=2)
    out, _ = second.communicate(timeout=120)
    assert second.returncode == 0, out.decode()
    live = live_final(broker, config.topics.alerts)
    events = write_files(workload, tmp_path / "files", "jsonl")
    assert live == replay_final([p for p in events if p.suffix == ".jsonl"], policy, catalog, 500)


def test_a_replay_checkpoints_its_state_as_it_goes_and_alerts_the_same(
    workload, policy, catalog, tmp_path
) -> None:
    """Every `checkpoint_keys` changed keys the replay writes its state to the engine's local store,
    as the runtime's checkpoint does: what it holds unwritten stays under that bound (unbounded, a
    day's replay held all it changed, and each timer scan went through it), and the alerts are
    those of a replay that writes nothing until the end."""
    events = [p for p in write_files(workload, tmp_path, "jsonl") if p.suffix == ".jsonl"]
    finals, held = [], []
    for keys in (300, 10**9):
        engine = Engine(load_detectors(policy), catalog, Pseudonymizer.from_env(allow_ephemeral=False))
        alerts, _ = replay(engine, Decoder(), events, 200, checkpoint_keys=keys)
        finals.append({a.alert_id: (a.revision, a.summary) for a in latest(alerts)})
        held.append(engine.dirty_count())
    assert finals[0] == finals[1] and len(finals[0]) > 10
    assert held[0] < 300 + 1_000 < held[1]  # the bound, and at most a round's changes over it
    # a replay never restores: its duplicates windows keep no id strings for a checkpoint (up to
    # 250 000 a window between its checkpoints, a review's), and its store no chunk of them
    assert engine.seen_ids and not any(window.take_fresh() for window in engine.seen_ids.values())
    assert not any(
        key.startswith("~engine\x1fseen") for p in engine.stores for key, _ in engine.store(p).items()
    )


def test_one_access_dated_ten_years_ahead_does_not_hide_a_burst(policy, catalog, tmp_path) -> None:
    """Measured on the landed code: this burst gave no alert at all, the poisoned watermark
    having closed its window. Now the poison is a dead letter and the burst alerts."""
    from conftest import access, entitlement

    burst = access("e1", customers=60, every_s=5)
    poison = burst[30].model_copy(update={"event_id": "poison", "ts": burst[30].ts + 10 * 365 * 86_400_000})
    events = [*burst[:30], poison, *burst[30:]]
    (tmp_path / "pfi.access.jsonl").write_bytes(
        b"".join(e.model_dump_json().encode() + b"\n" for e in events)
    )
    (tmp_path / "pfi.entitlements.jsonl").write_bytes(entitlement("e1").model_dump_json().encode() + b"\n")
    engine = Engine(load_detectors(policy), catalog, Pseudonymizer.from_env(allow_ephemeral=False))
    alerts, dead = replay(
        engine, Decoder(), [tmp_path / "pfi.entitlements.jsonl", tmp_path / "pfi.access.jsonl"]
    )
    assert [(d.kind, d.raw.offset) for d in dead] == [("event_time", 30)]
    (alert,) = latest(alerts)
    assert alert.subject_count == 60 and alert.actor_id == "e1"


def test_an_event_in_two_overlapping_exports_is_one(policy, catalog, tmp_path) -> None:
    """Two exports of the access log overlap: the 55 reads in both were 110 customers' reads to
    bulk_query, an alert for a lobby manager allowed 40 (a probe's two denials in both of two files
    were "3 denied in 10 min"). One event, one read, whichever files hold it."""
    from conftest import access, entitlement

    reads = access("e1", customers=55, every_s=60, first_customer=0)
    lines = [e.model_dump_json().encode() + b"\n" for e in reads]
    (tmp_path / "pfi.access.morning.jsonl").write_bytes(b"".join(lines[:35]))
    (tmp_path / "pfi.access.noon.jsonl").write_bytes(b"".join(lines[20:]))
    (tmp_path / "pfi.entitlements.jsonl").write_bytes(entitlement("e1").model_dump_json().encode() + b"\n")
    one = tmp_path / "one"
    one.mkdir()
    (one / "pfi.access.jsonl").write_bytes(b"".join(lines))
    (one / "pfi.entitlements.jsonl").write_bytes((tmp_path / "pfi.entitlements.jsonl").read_bytes())
    found = []
    for folder in (tmp_path, one):
        files = sorted(f for f in folder.iterdir() if f.is_file())
        engine = Engine(load_detectors(policy), catalog, Pseudonymizer.from_env(allow_ephemeral=False))
        found.append(latest(replay(engine, Decoder(), files)[0]))
    assert [(a.alert_id, a.subject_count, a.event_count) for a in found[0]] == [
        (a.alert_id, a.subject_count, a.event_count) for a in found[1]
    ]
    assert len(found[1]) == 1 and found[1][0].event_count == 55


def report_and_panel_agree(ch: Any, db: str, workload: Any) -> None:
    """The report's take-outs by org and class are the overview panel's, row for row, over the whole
    day and over its second half (both half-open); together they count each access event of the
    day once, under its action (probe_v3 H4)."""
    from test_deploy import _panel_rows

    from streams.report import Period, take_outs

    times = [r.ts for s, _, r in workload.records if s == "access"]
    start, end = (datetime.fromtimestamp(t // 60_000 * 60, UTC) for t in (min(times), max(times) + 60_000))
    halves = []
    for since in (start, (start + (end - start) / 2).replace(second=0, microsecond=0)):
        panel = [
            tuple(r.values()) for r in _panel_rows("Data taken out by org and class", ch, db, (since, end))
        ]
        report = take_outs(ch, db, Period(since, end))
        assert panel == [(r.org, r.jr_class, *r.taken_out, r.read, r.unknown) for r in report] != []
        halves.append([sum(column) for column in zip(*(row[2:] for row in panel), strict=True)])
    actions = Counter(r.action.value for s, _, r in workload.records if s == "access")
    day = [actions["export"], actions["download"], actions["print"], actions["view"] + actions["query"], 0]
    assert halves[0] == day and 0 < sum(halves[1]) < sum(day)


def test_a_replay_stored_in_clickhouse_reads_as_a_live_run(
    workload, tmp_path: Path, ch, names, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`replay --clickhouse` stored its alerts only: the report then showed no events, `lifemon
    incidents` none, `catalog gaps` no gap and the lifecycle panels no deletion request, though the
    replay had them all."""
    from streams.cli import main
    from streams.report import gather

    files = [p for p in write_files(workload, tmp_path / "jsonl", "jsonl") if p.suffix == ".jsonl"]
    access = next(p for p in files if p.name == "pfi.access.jsonl")
    first, rest = access.read_bytes().split(b"\n", 1)
    odd = orjson.loads(first) | {"fields": ["customer_name", "loyalty_points"]}  # unknown to the catalog
    access.write_bytes(orjson.dumps(odd) + b"\n" + rest)
    db = names["database"]
    config = tmp_path / "lifemon.yaml"
    config.write_text(f"clickhouse:\n  database: {db}\n")
    monkeypatch.setattr("streams.clickhouse.connect", lambda dsn: ch)  # the session's chDB
    alerts_out = tmp_path / "alerts.jsonl"
    args = ["replay", *map(str, files), "--config", str(config), "--clickhouse", "chdb://session"]
    assert main([*args, "--alerts-out", str(alerts_out)]) == 0
    printed = capsys.readouterr()
    # the ten last seen, newest first, as `lifemon alerts` lists them, and the file that holds them
    # all; the reference files are among the inputs, so no warning of their absence
    n = len(alerts_out.read_bytes().splitlines())
    assert (
        n > 10 and f"10 of {n} alerts shown, the last seen first; {alerts_out} holds them all" in printed.out
    )
    times = re.findall(r"^(\d{4}-\d\d-\d\d \d\d:\d\d) UTC  ", printed.out, re.M)
    assert len(times) == 10 and times == sorted(times, reverse=True)
    assert "among the inputs" not in printed.err

    data = gather(ch, db)
    events = sum(n for _, _, n in data["by_class"])
    assert events == sum(
        1 for s, _, _ in workload.records if s not in ("entitlements", "consents", "customers")
    )
    assert len(data["alerts"]) == len(alerts_out.read_bytes().splitlines()) > 0
    assert data["incidents"] > 0
    assert any(kind == "field" for kind, *_ in data["gaps"])
    report_and_panel_agree(ch, db, workload)
    deletions = ch.query(
        f"SELECT countIf(stage = 'deletion_requested') FROM {db}.deletion_events"
    ).result_rows[0][0]
    assert deletions == sum(
        1 for s, _, r in workload.records if s == "lifecycle" and r.stage == "deletion_requested"
    )
    # the transfer ledger too: every transfer to others (not the bank's own systems) once
    book = load_policy().recipients
    assert (
        sum(p.transfers for p in data["provided"].lines)
        == sum(
            1
            for s, _, r in workload.records
            if s == "transfer"
            and book.kind_of(r.recipient_id, r.recipient_type) is not RecipientType.internal
        )
        > 0
    )
    assert "a live run counted" not in printed.err
    # a live run's counts in the replay's minutes: the same records would count twice, and the
    # replay says so (an operator probe's backfill doubled every event in the report unseen)
    (minute,) = ch.query(f"SELECT min(minute) FROM {db}.event_rollups WHERE stream = 'access'").result_rows[0]
    row = ("pfi.access", 0, 0, minute, "access", "C2", "S0101", "ok", "view", 7, 1, "A")
    ch.insert(
        "event_rollups",
        [list(c) for c in zip(row)],
        database=db,
        column_names=list(ROLLUP_COLUMNS),
        column_oriented=True,
    )

    def access_events() -> int:
        q = f"SELECT sum(events) FROM {db}.event_rollups FINAL WHERE stream = 'access'"
        return ch.query(q).result_rows[0][0]

    before = access_events()
    # refused before anything is stored (a probe's replay doubled the counts and exited 0)
    assert main(args) == 2
    said = capsys.readouterr().err
    assert "ClickHouse already holds 7 events a live run counted in the replay's span" in said, said
    assert "nothing was stored" in said and "--beside-live" in said and access_events() == before
    assert main([*args, "--beside-live"]) == 0
    said = capsys.readouterr().err
    assert "counted beside them (--beside-live)" in said, said


def test_a_replays_dead_letters_are_listed_by_when_it_read_them_and_by_line(
    tmp_path: Path, ch, names, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A probe's replay stored its refused records at 1970-01-01 (a file has no Kafka time), so
    `lifemon dead-letters --since 24h` and the dashboard's time filter showed none, and the first
    one's place read `0:208` for line 209. Now: dated when the replay read them, placed by line."""
    from streams.cli import main
    from streams.dead_letter_query import query_dead_letters, render

    access = tmp_path / "pfi.access.jsonl"
    access.write_bytes(b"\n".join([b'{"event_id": "e1"}', b"not json", b"[]"]) + b"\n")
    config = tmp_path / "lifemon.yaml"
    config.write_text(f"clickhouse:\n  database: {names['database']}\n")
    monkeypatch.setattr("streams.clickhouse.connect", lambda dsn: ch)  # the session's chDB
    before = time.time()
    args = ["replay", str(access), "--config", str(config), "--clickhouse", "chdb://session"]
    assert main([*args, "--allow-dead-letters"]) == 0
    capsys.readouterr()
    from datetime import UTC, datetime, timedelta

    listed = query_dead_letters(ch, names["database"], since=datetime.now(UTC) - timedelta(hours=24))
    assert sum(r["records"] for r in listed) == 3, listed
    assert all(r["first_seen"].timestamp() >= before - 1 for r in listed)
    text = render(listed)
    # no partition:offset `0:1` (a whole token: the table's times, 10:13, hold those characters)
    assert "line 2" in text and " — " not in text and not re.search(r"(?<![\d:])0:1(?![\d:])", text), text


def test_a_files_byte_order_mark_is_no_record_and_a_records_is_named(tmp_path) -> None:
    """Windows exports start with a UTF-8 byte-order mark: a file's is left out, a Kafka record's
    dead letter says what it is."""
    from streams.codecs import RawRecord
    from streams.replay import read_raw

    line = b'{"event_id": "e1"}'
    path = tmp_path / "pfi.access.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + line + b"\r\n" + line + b"\n")
    assert [r.value for r in read_raw(path)] == [line, line]
    (dead,) = Decoder().decode("access", [RawRecord("pfi.access", 0, 0, b"\xef\xbb\xbf" + line)]).dead
    assert dead.message == "starts with a UTF-8 byte-order mark: send the JSON without it"


def test_the_clauses_english_changes_no_alert_or_incident_id(workload, policy, tmp_path) -> None:
    """An alert's id is hash(detector, rule, key, window) and an incident's its key and window: the
    clauses an alert cites, now in two languages (fix_regulation #1), enter neither. A replay of the
    demo's generator under a policy whose every clause reads otherwise gives the same ids, the
    English of the clauses in its alerts and incidents changed with the policy."""
    import shutil

    from policy import DEFAULT_DIR
    from policy.catalog import Catalog

    folder = tmp_path / "policy"
    shutil.copytree(DEFAULT_DIR, folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    for path in [*folder.glob("detectors/*.yaml"), folder / "incidents.yaml"]:
        path.write_text(
            re.sub(r'\ben: "', 'en: "(reworded) ', path.read_text(encoding="utf-8")), encoding="utf-8"
        )
    events = [p for p in write_files(workload, tmp_path / "day", "jsonl") if p.suffix == ".jsonl"]
    said = []
    for chosen in (policy, load_policy(folder)):
        engine = Engine(
            load_detectors(chosen), Catalog(chosen), Pseudonymizer.from_env(allow_ephemeral=False)
        )
        alerts, _ = replay(engine, Decoder(), events, 1000)
        said.append(
            (
                {a.alert_id: a.regulation_en for a in latest(alerts)},
                {i.incident_id: i.regulation_en for i in engine.take_incidents()},
            )
        )
    (alerts_as_shipped, incidents_as_shipped), (alerts_reworded, incidents_reworded) = said
    assert len(alerts_as_shipped) > 10 and incidents_as_shipped
    assert alerts_as_shipped.keys() == alerts_reworded.keys()
    assert incidents_as_shipped.keys() == incidents_reworded.keys()
    for shipped, reworded in (
        (alerts_as_shipped, alerts_reworded),
        (incidents_as_shipped, incidents_reworded),
    ):
        for uid, english in shipped.items():
            assert english and reworded[uid] == [f"(reworded) {en}" for en in english], uid
