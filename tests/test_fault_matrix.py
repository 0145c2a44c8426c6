"""The fault matrix (issue 18, docs/faults.md): real `lifemon run` and `lifemon notify` processes, a
real Tansu broker, chDB and HTTP receivers, no mocks. Each case injects one fault into a bank's day
of traffic: it must end with the alerts, incidents and event counts of the run no fault touched,
lost and duplicate records counted (tests/fault_matrix.py), or, where nothing can be saved, stop
loudly. Every case writes its row of the table of faults survived (tests/fault_table.py).

`make test` runs one case of each kind; the slow ones (`-m slow`) run in `make test-all`."""

from __future__ import annotations

import fcntl
import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Producer
from fault_injection import MOUNT_SKIP, Running, can_mount, fill, mounted_tmpfs, read_only
from fault_matrix import (
    Outcome,
    Tally,
    as_json,
    bank_day,
    fault_config,
    halves,
    outcome,
    prepare,
    record,
    tally,
    untouched_run,
)
from receivers import Receiver
from s3_server import S3Server
from tcp_proxy import CuttableProxy
from test_metrics import get
from test_pipeline import committed_offsets, make_config, write_config
from test_replay import incident_content

from streams.embedded import EmbeddedBroker, free_port
from streams.produce import produce
from streams.runtime import create_missing, ensure_topics

pytestmark = pytest.mark.integration
ASSIGNED = "this instance now runs partitions"  # in whichever log format
SURVIVED = "survived: the untouched run's alerts and incidents"


@pytest.fixture(scope="session")
def untouched(broker, policy, tmp_path_factory, worker_id) -> Outcome:
    """Computed once per test session, by whichever worker asks first; the others read it."""
    base = tmp_path_factory.getbasetemp()
    shared = (base if worker_id == "master" else base.parent) / "fault-matrix-untouched.json"
    with open(shared.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not shared.exists():
            run = untouched_run(broker, policy, tmp_path_factory.mktemp("untouched"))
            shared.write_bytes(orjson.dumps(run.__dict__))
    return Outcome(**orjson.loads(shared.read_bytes()))


@pytest.fixture(scope="session")
def s3(tmp_path_factory) -> Iterator[S3Server]:
    server = S3Server(tmp_path_factory.mktemp("s3")).start()
    yield server
    server.stop()


def wait_committed(bootstrap: str, group: str, topic: str, run: Running, at_least: int = 1) -> int:
    deadline = time.monotonic() + 90
    while (done := committed_offsets(bootstrap, group, topic)) < at_least:
        assert run.alive(), run.output
        assert time.monotonic() < deadline, f"{topic}: {at_least} offsets never committed\n{run.output}"
        time.sleep(0.2)
    return done


def survived(case: str, injected: str, untouched: Outcome, got: Outcome, started: float) -> None:
    counts = tally(untouched, got)
    record(case, injected, SURVIVED, counts, started)
    counts.assert_clean()


# -- the broker ------------------------------------------------------------------------------------
def test_a_broker_cut_off_mid_run_loses_nothing(untouched, names, policy, tmp_path: Path) -> None:
    """The broker keeps its data but nobody reaches it for 7 s (clients reach it through a TCP proxy
    it advertises, and the proxy is cut): longer than the session timeout, so lifemon is back in a
    rebuilt group with its partitions restored from the changelog. It waits, never exits."""
    started = time.monotonic()
    first, second = halves(bank_day(policy))
    proxy_port = free_port()
    broker = EmbeddedBroker(advertised_port=proxy_port).start()
    proxy = CuttableProxy(proxy_port, broker.port).start()
    bootstrap, dsn = f"127.0.0.1:{proxy_port}", f"chdb://{tmp_path / 'chdb'}"
    try:
        config = fault_config(names, bootstrap, dsn)
        run = Running.run(prepare(config, tmp_path / "lifemon.yaml", first), until_idle=9)
        wait_committed(bootstrap, names["group"], config.topics.access, run)
        proxy.cut()
        time.sleep(7)
        assert run.alive(), run.output
        proxy.restore()
        produce(bootstrap, config, second)
        run.finish()
        got = outcome(bootstrap, config, [dsn])
    finally:
        proxy.cut()
        broker.stop()
    survived("broker_cut_off", "broker unreachable for 7 s mid-run (TCP proxy cut)", untouched, got, started)


@pytest.mark.slow
def test_a_broker_restarted_with_its_data(untouched, s3, names, policy, tmp_path: Path) -> None:
    """Tansu on S3 storage is stopped mid-run and started again on its port with its topics and
    offsets: lifemon reconnects, waits without exiting, and ends as the untouched run."""
    started = time.monotonic()
    first, second = halves(bank_day(policy))
    broker = s3.broker(s3.bucket(names["tag"])).start()
    dsn = f"chdb://{tmp_path / 'chdb'}"
    try:
        config = fault_config(names, broker.bootstrap, dsn)
        run = Running.run(prepare(config, tmp_path / "lifemon.yaml", first), until_idle=10)
        wait_committed(broker.bootstrap, names["group"], config.topics.access, run)
        broker.stop()
        time.sleep(3)
        assert run.alive(), run.output
        broker.start()
        produce(broker.bootstrap, config, second)
        run.finish(600)
        got = outcome(broker.bootstrap, config, [dsn])
    finally:
        broker.stop()
    survived(
        "broker_restart",
        "Tansu (S3 storage) stopped mid-run, started again with its data",
        untouched,
        got,
        started,
    )


@pytest.mark.slow
def test_a_broker_back_empty_with_its_topics_recreated_stops_loudly(names, policy, tmp_path: Path) -> None:
    """The broker comes back without its data and another instance's start re-creates the topics
    empty: offsets lifemon read are gone. It says so and exits 3, rather than wait forever for
    them or start over as if nothing had been. (Topics that stay gone: test_broker_faults.py.)"""
    started = time.monotonic()
    first, _ = halves(bank_day(policy))
    broker = EmbeddedBroker().start()
    try:
        config = fault_config(names, broker.bootstrap, f"chdb://{tmp_path / 'chdb'}")
        run = Running.run(prepare(config, tmp_path / "lifemon.yaml", first), until_idle=60)
        wait_committed(broker.bootstrap, names["group"], config.topics.access, run)
        os.kill(run.proc.pid, signal.SIGSTOP)  # it sees the broker neither go nor come back
        try:
            broker.stop()
            broker = EmbeddedBroker(port=broker.port).start()
            # every topic it reads (repartition topics too, which a starting instance also creates)
            said = next(line for line in run.lines if "monitoring " in line)
            reads = said.split("monitoring ", 1)[1].split(" (group")[0].split(", ")
            ensure_topics(broker.bootstrap, config)
            create_missing(broker.bootstrap, config, dict.fromkeys(reads, {}))
        finally:
            os.kill(run.proc.pid, signal.SIGCONT)
        # a sink's flush first waits out its timeout against a producer the empty broker forgot
        # (docs/faults.md), then the failing checkpoint asks the broker: 87 s on a loaded machine;
        # without asking, the group's rejoin told it in 284 s, or nothing did for 400 s
        assert run.wait(200) == 3, run.output
    finally:
        broker.stop()
    assert "(was the broker restarted empty and the topic re-created?)" in run.output, run.output
    record(
        "broker_back_empty",
        "broker restarted without its data, topics re-created empty",
        "stopped loudly: exit 3, names the partition and the offsets lost",
        Tally(),
        started,
    )


# -- ClickHouse ------------------------------------------------------------------------------------
@pytest.mark.skipif(not can_mount(), reason=MOUNT_SKIP)
def test_clickhouse_unwritable_pauses_then_catches_up(
    untouched, broker, names, policy, tmp_path: Path
) -> None:
    """chDB's directory turns read-only for longer than max.poll.interval.ms (10 s): the checkpoint
    retries with partitions paused, nothing is committed meanwhile, the instance keeps its place in
    the group (no new assignment), and everything lands once it is writable again."""
    started = time.monotonic()
    first, second = halves(bank_day(policy))
    chdb_dir = tmp_path / "chdb"
    chdb_dir.mkdir()
    config = fault_config(
        names,
        broker,
        f"chdb://{chdb_dir}",
        client={"max.poll.interval.ms": 10_000, "session.timeout.ms": 6000},
    )
    t = config.topics
    run = Running.run(prepare(config, tmp_path / "lifemon.yaml", first), until_idle=4)
    wait_committed(broker, names["group"], t.access, run)
    with read_only(chdb_dir):
        produce(broker, config, second)
        run.wait_for("checkpoint failed, retrying")
        assigned = run.count(ASSIGNED)
        held = committed_offsets(broker, names["group"], t.access)
        time.sleep(11)
        assert committed_offsets(broker, names["group"], t.access) == held
        assert run.alive(), run.output
    run.finish()
    assert run.count(ASSIGNED) == assigned, run.output  # never evicted, never rejoined
    assert "Read-only file system" in run.output
    # the end of the outage is said once, as its start was (a probe's log fell silent after it)
    assert run.output.count("checkpoint written again after") == 1, run.output
    got = outcome(broker, config, [f"chdb://{chdb_dir}"])
    survived(
        "clickhouse_unwritable",
        "chDB directory read-only for 12 s mid-run (max.poll.interval.ms 10 s)",
        untouched,
        got,
        started,
    )


@pytest.mark.skipif(not can_mount(), reason=MOUNT_SKIP)
# native's wait ticks in make test's clickhouse_unwritable, and its stop is save()'s, which faust shares
@pytest.mark.parametrize("runtime", [pytest.param("native", marks=pytest.mark.slow), "faust"])
def test_a_clickhouse_outage_keeps_healthz_and_a_stop_during_it_is_clean(
    untouched, broker, names, policy, runtime: str, tmp_path: Path
) -> None:
    """During a ClickHouse outage /healthz stays 200 past `stall_after_s` (a probe's faust pod went
    503 and a liveness probe would have restarted it); SIGTERM then stops cleanly: one line, exit
    0, nothing committed (a probe's: exit 1 and the driver's traceback). The next start catches up."""
    started = time.monotonic()
    first, second = halves(bank_day(policy))
    chdb_dir = tmp_path / "chdb"
    chdb_dir.mkdir()
    config = fault_config(names, broker, f"chdb://{chdb_dir}")
    config.runtime, config.metrics.port, config.metrics.stall_after_s = runtime, free_port(), 1.5
    path = prepare(config, tmp_path / "lifemon.yaml", first)
    run = Running.run(path, until_idle=60)
    wait_committed(broker, names["group"], config.topics.access, run)
    with read_only(chdb_dir):
        produce(broker, config, second)
        run.wait_for("checkpoint failed, retrying")
        held = committed_offsets(broker, names["group"], config.topics.access)
        healthz = f"http://127.0.0.1:{config.metrics.port}/healthz"
        statuses = []
        for _ in range(8):  # 4 s: over twice stall_after_s
            statuses.append(get(healthz)[0])
            time.sleep(0.5)
        assert statuses == [200] * 8, run.output
        run.proc.send_signal(signal.SIGTERM)
        assert run.wait(30) == 0, run.output
    assert run.count("stopped during an outage: the last checkpoint could not be written") == 1, run.output
    assert "Traceback" not in run.output, run.output
    assert committed_offsets(broker, names["group"], config.topics.access) == held
    Running.run(path, until_idle=3).finish()
    got = outcome(broker, config, [f"chdb://{chdb_dir}"])
    survived(
        f"clickhouse_outage_stop_{runtime}",
        f"{runtime}: chDB read-only, /healthz polled past stall_after_s, SIGTERM, restart once writable",
        untouched,
        got,
        started,
    )


# -- rebalance --------------------------------------------------------------------------------------
# slow: two monitors and a group rebalance take over a minute on a shared machine; CI still runs a
# kill -9 takeover in tests/test_scale_out.py
@pytest.mark.slow
def test_an_instance_killed_9_hands_its_partitions_over(
    untouched, broker, names, policy, tmp_path: Path
) -> None:
    """Two instances share the group, each with its own chDB; one is killed with SIGKILL while the
    second half arrives. The survivor takes its partitions once its session times out, restores
    their state from the changelog, and together they give the untouched run's alerts."""
    started = time.monotonic()
    first, second = halves(bank_day(policy))
    paths, dsns = [], []
    for name in ("a", "b"):
        dsn = f"chdb://{tmp_path / name / 'chdb'}"
        config = fault_config(names, broker, dsn)
        config.data_dir = tmp_path / name
        paths.append(prepare(config, tmp_path / f"{name}.yaml", []))
        dsns.append(dsn)
    produce(broker, config, first)
    a = Running.run(paths[0], until_idle=12)
    wait_committed(broker, names["group"], config.topics.access, a)
    b = Running.run(paths[1], until_idle=10)
    b.wait_for(ASSIGNED)  # the group shares the partitions between them
    produce(broker, config, second)
    time.sleep(0.5)  # a is at work on the second half
    a.kill()
    b.finish()
    assert f"{ASSIGNED} [0, 1, 2]" in b.output, b.output  # the survivor ends with every partition
    got = outcome(broker, config, dsns)
    survived("rebalance_kill_9", "one of two instances killed (SIGKILL) mid-run", untouched, got, started)


# -- incident receivers ----------------------------------------------------------------------------
def test_a_receiver_down_gets_every_incident_once_it_returns(
    untouched, broker, names, tmp_path: Path
) -> None:
    """`lifemon notify` delivers the untouched run's incidents to a webhook whose server is down
    (connection refused) for longer than `--until-idle`: it retries without committing, and once
    the server is back on its address every incident revision arrives, once, and the newest of
    each says what the untouched run's incident says."""
    started = time.monotonic()
    port = free_port()
    config = make_config(
        names,
        broker,
        "chdb://unused",
        notify={
            "group_id": f"notify-{names['tag']}",
            "backoff_initial_s": 0.1,
            "backoff_max_s": 0.5,
            "receivers": [{"name": "hook", "kind": "webhook", "url": f"http://127.0.0.1:{port}/hook"}],
        },
    )
    ensure_topics(broker, config)
    producer = Producer({"bootstrap.servers": broker})
    for value in untouched.incident_records:
        producer.produce(
            config.topics.incidents, value.encode(), key=orjson.loads(value)["incident_id"].encode()
        )
    assert producer.flush(10) == 0
    notify = Running.notify(write_config(config, tmp_path / "lifemon.yaml"), until_idle=5)
    # down until the 14th refusal, 13 backoffs (0.1, 0.2, 0.4, then 0.5 s) and over 5.7 s after the
    # first: longer than --until-idle, however loaded the machine (a sleep made that a matter of load)
    notify.wait_for("retry in", times=14)
    assert committed_offsets(broker, config.notify.group_id, config.topics.incidents) == 0
    hook = Receiver(port=port)
    try:
        notify.finish()
        bodies = hook.bodies("/hook")
    finally:
        hook.close()
    sent = Counter((o["incident_id"], o["revision"]) for o in map(orjson.loads, untouched.incident_records))
    delivered = Counter((b["dedup_key"], b["revision"]) for b in bodies)
    newest = {b["dedup_key"]: as_json(incident_content(b["incident"])) for b in bodies}  # in order
    counts = Tally(
        incidents_lost=len(set(sent) - set(delivered))
        + sum(1 for i, c in untouched.incidents.items() if newest.get(i) != c),
        incidents_duplicated=sum(n - 1 for n in delivered.values()) + len(set(delivered) - set(sent)),
    )
    record(
        "receiver_outage",
        "incident webhook refusing connections for longer than --until-idle (5 s)",
        "survived: every incident revision delivered once",
        counts,
        started,
    )
    counts.assert_clean()


# -- disk ------------------------------------------------------------------------------------------
@pytest.mark.skipif(not can_mount(), reason=MOUNT_SKIP)
def test_a_full_data_directory_is_said_and_survived(untouched, broker, names, policy, tmp_path: Path) -> None:
    """The data directory (chDB and the state stores, on a 64 MB filesystem of its own) fills up
    mid-run: every checkpoint says the disk is full and retries, nothing is committed, and once
    space is freed lifemon carries on by itself to the untouched run's end."""
    started = time.monotonic()
    first, second = halves(bank_day(policy))
    with mounted_tmpfs(tmp_path / "data", size_mb=64) as data:
        config = fault_config(names, broker, None)
        config.data_dir = data
        t = config.topics
        run = Running.run(prepare(config, tmp_path / "lifemon.yaml", first), until_idle=4)
        wait_committed(broker, names["group"], t.access, run)
        filler = fill(data)
        produce(broker, config, second)
        run.wait_for("not enough space")
        held = committed_offsets(broker, names["group"], t.access)
        time.sleep(2)
        assert committed_offsets(broker, names["group"], t.access) == held and run.alive()
        filler.unlink()
        run.finish()
        got = outcome(broker, config, [config.clickhouse_dsn()])
    survived(
        "disk_full", "data directory (64 MB tmpfs) filled to the last byte mid-run", untouched, got, started
    )


@pytest.mark.slow
@pytest.mark.skipif(not can_mount(), reason=MOUNT_SKIP)
def test_a_data_directory_full_at_start_stops_loudly_then_resumes(
    untouched, broker, names, policy, tmp_path: Path
) -> None:
    """A restart onto a full disk: lifemon names the folder and exits 3 instead of a traceback;
    started again once there is space, it resumes from its last checkpoint to the untouched end."""
    started = time.monotonic()
    first, second = halves(bank_day(policy))
    with mounted_tmpfs(tmp_path / "data", size_mb=64) as data:
        config = fault_config(names, broker, None)
        config.data_dir = data
        path = prepare(config, tmp_path / "lifemon.yaml", first)
        run = Running.run(path, until_idle=3)
        run.finish()
        filler = fill(data)
        produce(broker, config, second)
        full = Running.run(path, until_idle=3)
        assert full.wait(120) == 3, full.output
        assert "is full" in full.output and "Traceback" not in full.output, full.output
        filler.unlink()
        Running.run(path, until_idle=3).finish()
        got = outcome(broker, config, [config.clickhouse_dsn()])
    survived(
        "disk_full_at_start", "restart onto a full data directory, then space freed", untouched, got, started
    )
