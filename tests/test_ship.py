"""`lifemon ship`: log files to a real Tansu topic, one record per log entry, exactly once: across a
second run, appends, rotation, truncation, a `kill -9` mid-way and a death between the broker's
acknowledgement and the position save."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import Consumer, KafkaError, TopicPartition
from test_raw_sources import FIXTURES, entries

from streams.log_entries import csv_records, lines, tab_continued
from streams.ship import FORMATS

ROOT = Path(__file__).resolve().parent.parent


def split_all(split: Any, data: bytes, final: bool = True) -> list[bytes]:
    return [value for _, records in split(data, final) for _, value in records]


# -- how files become records ------------------------------------------------------------------
def test_a_pgaudit_entry_and_its_tab_led_lines_are_one_record() -> None:
    data = (FIXTURES / "pgaudit.log").read_bytes()
    assert split_all(tab_continued, data) == entries("pgaudit.log")
    # the last entry may still get tab-led lines: complete only at the end of what will come
    assert split_all(tab_continued, data, final=False) == entries("pgaudit.log")[:-1]
    # a line still being written (no newline yet) is never shipped
    assert split_all(tab_continued, b"2026-12-01 LOG:  a\n2026-12-01 LOG:  b", final=True) == [
        b"2026-12-01 LOG:  a"
    ]


def test_a_csvlog_record_ends_where_its_quotes_balance() -> None:
    data = (FIXTURES / "pgaudit.csv").read_bytes()
    records = split_all(csv_records, data, final=False)  # complete at its line end: no need to wait
    assert records == entries("pgaudit.csv")
    assert any(b"\n" in r for r in records)  # a statement with newlines stayed one record
    half = data[: data.index(b"FROM core.customers c JOIN")]  # cut inside a quoted statement
    assert len(split_all(csv_records, half, final=False)) == 6


def test_line_formats_skip_blank_lines_and_keep_the_offsets() -> None:
    chunks = lines(b"a\n\nbb\npartial", False)
    assert chunks == [(2, [(None, b"a")]), (3, []), (6, [(None, b"bb")])]
    assert set(FORMATS) >= {"pgaudit", "pgaudit-csv", "mariadb", "sftp"}


# -- stopping ------------------------------------------------------------------------------------
STOPPED_AT_EVERY_LINE = """
import signal, sys
from pathlib import Path
from streams.config import load_config
from streams.ship import FORMATS, Shipper

shipper = Shipper(load_config(None), "localhost:1", FORMATS["sftp"], [], "t", Path("unused.json"))
signal.signal(signal.SIGTERM, lambda *_: shipper.stop.set())  # as streams/cli.py does


def signal_at_every_line(frame, event, arg):
    if event == "line":
        signal.raise_signal(signal.SIGTERM)  # its handler runs right here, before the line
    return signal_at_every_line


sys.settrace(signal_at_every_line)
stopped = shipper.stop.wait(5)
sys.settrace(None)
print(stopped)
"""


def test_a_sigterm_at_any_point_of_the_idle_wait_stops_the_shipper() -> None:
    """`ship --follow` sleeps in `stop.wait` between reads, and the SIGTERM handler sets that
    stop in the same (main) thread, wherever it is: a signal at each line the wait runs, down to
    its lock's, must end it. (threading.Event's handler blocked on the lock its own thread held
    in wait(): under load, CI's `ship --follow` did not exit within 30 s of SIGTERM.)"""
    try:
        done = subprocess.run(
            [sys.executable, "-c", STOPPED_AT_EVERY_LINE],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            timeout=60,
        )
    except subprocess.TimeoutExpired:
        raise AssertionError("a SIGTERM during the shipper's wait deadlocked its handler") from None
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.strip() == b"True"


# -- through a real broker -----------------------------------------------------------------------
def ship(
    broker: str,
    files: list[Path],
    topic: str,
    positions: Path,
    *extra: str,
    env: dict[str, str] | None = None,
) -> subprocess.Popen:
    fmt = extra[0] if extra and not extra[0].startswith("-") else "sftp"
    args = [a for a in extra if a != fmt]
    return subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "ship", "--format", fmt, *map(str, files), "--topic", topic,
         "--bootstrap", broker, "--positions", str(positions), "--key", "db1", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )  # fmt: skip


def topic_records(broker: str, topic: str) -> list[Any]:
    """Every record of the topic, partition by partition, read to the end."""
    c = Consumer(
        {"bootstrap.servers": broker, "group.id": f"r-{time.time_ns()}", "enable.partition.eof": True}
    )
    parts = c.list_topics(topic, timeout=10).topics[topic].partitions
    c.assign([TopicPartition(topic, p, 0) for p in parts])
    out, pending, deadline = [], set(parts), time.monotonic() + 20
    while pending and time.monotonic() < deadline:
        for m in c.consume(1000, 0.5):
            if m.error() is None:
                out.append(m)
            elif m.error().code() == KafkaError._PARTITION_EOF:
                pending.discard(m.partition())
    c.close()
    return sorted(out, key=lambda m: (m.partition(), m.offset()))


def values(broker: str, topic: str) -> list[bytes]:
    return [m.value() for m in topic_records(broker, topic)]


def wait_for(broker: str, topic: str, n: int, timeout_s: float = 30) -> list[bytes]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = values(broker, topic)
        if len(got) >= n:
            return got
        time.sleep(0.3)
    raise AssertionError(f"{topic}: {len(got)} records, expected {n}")


def kill_mid_way(broker: str, topic: str, proc: subprocess.Popen, at_least: int) -> None:
    """SIGKILL once the topic holds `at_least` records: a consumer that stays assigned counts them."""
    c = Consumer({"bootstrap.servers": broker, "group.id": f"k-{time.time_ns()}", "fetch.wait.max.ms": 10})
    parts = c.list_topics(topic, timeout=10).topics[topic].partitions
    c.assign([TopicPartition(topic, p, 0) for p in parts])
    seen, deadline = 0, time.monotonic() + 30
    while seen < at_least and time.monotonic() < deadline:
        seen += sum(m.error() is None for m in c.consume(1000, 0.05))
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    c.close()


def numbered(start: int, stop: int) -> list[bytes]:
    return [f"<38>Dec  1 16:44:04 internal-sftp[{i}]: line {i:06d}".encode() for i in range(start, stop)]


def write(path: Path, records: list[bytes], mode: str = "ab") -> None:
    with open(path, mode) as f:
        f.write(b"".join(r + b"\n" for r in records))


@pytest.mark.integration
def test_ship_twice_sends_each_entry_once_with_its_position(broker, names, tmp_path) -> None:
    topic, positions = f"raw.{names['tag']}", tmp_path / "pos.json"
    log = tmp_path / "postgresql.log"
    log.write_bytes((FIXTURES / "pgaudit.log").read_bytes())
    for _ in range(2):
        p = ship(broker, [log], topic, positions, "pgaudit")
        assert p.wait(60) == 0, p.stderr.read() if p.stderr else ""
    got = topic_records(broker, topic)
    assert [m.value() for m in got] == entries("pgaudit.log")
    assert {m.key() for m in got} == {b"db1"} and len({m.partition() for m in got}) == 1
    shipper, ident, offset, skip = dict(got[-1].headers())["lifemon.ship"].decode().split()
    saved = orjson.loads(positions.read_bytes())
    assert (
        saved["shipper"] == shipper and saved["marks"][ident]["offset"] == int(offset) == log.stat().st_size
    )
    assert skip == "0"


@pytest.mark.integration
def test_follow_appends_rotation_truncation_and_kill_9_exactly_once(broker, names, tmp_path) -> None:
    topic, positions, log = f"raw.{names['tag']}", tmp_path / "pos.json", tmp_path / "auth.log"
    write(log, numbered(0, 200), "wb")
    proc = ship(broker, [log], topic, positions, "--follow", "--batch", "50")
    try:
        wait_for(broker, topic, 200)
        write(log, numbered(200, 300))  # an append
        wait_for(broker, topic, 300)
        os.rename(log, tmp_path / "auth.log.1")  # rotation: the writer finishes the old file first
        write(tmp_path / "auth.log.1", numbered(300, 350))
        write(log, numbered(350, 400), "wb")
        wait_for(broker, topic, 400)
        write(log, numbered(400, 20_000))  # a burst, killed mid-way
        kill_mid_way(broker, topic, proc, 1000)
        assert len(values(broker, topic)) < 20_000, (
            "the kill came after everything was shipped: nothing tested"
        )
        os.rename(log, tmp_path / "auth.log.2")  # rotated while lifemon was down
        write(tmp_path / "auth.log.2", numbered(20_000, 20_100))
        write(log, numbered(20_100, 20_200), "wb")
        proc = ship(broker, [log], topic, positions, "--follow", "--batch", "5000")
        wait_for(broker, topic, 20_200)
        # copytruncate: the file is cut to nothing and written again from its start, here to the
        # very size it had (the size alone cannot tell)
        os.truncate(log, 0)
        write(log, numbered(20_200, 20_300))
        got = wait_for(broker, topic, 20_300)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    assert got == numbered(0, 20_300)  # each line once, in the order written
    assert set(orjson.loads(positions.read_bytes())["marks"]) == {f"{log.stat().st_dev}:{log.stat().st_ino}"}


@pytest.mark.integration
def test_a_death_between_acknowledgement_and_save_sends_nothing_twice(broker, names, tmp_path) -> None:
    """The position file lags what the broker holds: the next start finds the rest on the topic."""
    topic, positions, log = f"raw.{names['tag']}", tmp_path / "pos.json", tmp_path / "mariadb.log"
    write(log, numbered(0, 2000), "wb")
    p = ship(
        broker,
        [log],
        topic,
        positions,
        "mariadb",
        "--batch",
        "300",
        env={"LIFEMON_TEST_CRASH_AT": "ship_acked@900"},
    )
    assert p.wait(60) == 137
    assert len(values(broker, topic)) == 900  # acknowledged, never saved: the file says 600
    p = ship(broker, [log], topic, positions, "mariadb", "--batch", "300")
    assert p.wait(60) == 0
    assert b"300 record(s) on" in (p.stderr.read() if p.stderr else b"")  # found there, not sent again
    assert values(broker, topic) == numbered(0, 2000)


@pytest.mark.integration
def test_keyed_records_across_partitions_resume_exactly_once(broker, names, tmp_path, monkeypatch) -> None:
    """A format that keys its records (as HAR -> SDK telemetry will, by SDK) spreads a file over
    partitions. A death after the acknowledgement and before the save, then records of a batch that
    only partly arrived (one partition's did, another's did not): each line ends up on the topic once."""
    from confluent_kafka import Producer

    from streams.config import load_config
    from streams.ship import Format, Shipper

    def by_last_digit(buf: bytes, final: bool) -> list:
        return [(end, [(value[-1:], value) for _, value in records]) for end, records in lines(buf, final)]

    keyed = Format("test: a key per record", by_last_digit, lambda c: "unused")
    topic, positions, log = f"raw.{names['tag']}", tmp_path / "pos.json", tmp_path / "keyed.log"
    write(log, numbered(0, 60), "wb")
    config = load_config(None, kafka={"bootstrap": broker, "partitions": 3})

    def shipper() -> Shipper:
        return Shipper(config, broker, keyed, [str(log)], topic, positions, batch=20, warn=lambda m: None)

    real_save = Shipper._save
    saves: list[int] = []

    def dies_at_second_save(self: Shipper, *args: Any) -> None:
        saves.append(1)
        if len(saves) == 2:
            raise RuntimeError("killed after the acknowledgement, before the save")
        real_save(self, *args)

    monkeypatch.setattr(Shipper, "_save", dies_at_second_save)
    with pytest.raises(RuntimeError):
        shipper().run()
    monkeypatch.setattr(Shipper, "_save", real_save)
    assert sorted(values(broker, topic)) == sorted(numbered(0, 40))  # saved up to line 20, acknowledged to 40
    # a batch that arrived in one partition only: lines 40-49 ending in 7 (say), as the dead shipper sent them
    shipper_id = orjson.loads(positions.read_bytes())["shipper"]
    st = log.stat()
    offsets, pos = [], 0
    for line in numbered(0, 60):
        pos += len(line) + 1
        offsets.append(pos)
    p = Producer({"bootstrap.servers": broker, "enable.idempotence": True})
    arrived = [i for i in range(40, 50) if numbered(i, i + 1)[0].endswith(b"7")]
    for i in arrived:
        header = f"{shipper_id} {st.st_dev}:{st.st_ino} {offsets[i]} 0".encode()
        p.produce(
            topic,
            numbered(i, i + 1)[0],
            b"7",
            partition=zlib.crc32(b"7") % 3,
            headers=[("lifemon.ship", header)],
        )
    assert p.flush(10) == 0
    assert shipper().run() == 60 - 40 - len(arrived)
    assert sorted(values(broker, topic)) == sorted(numbered(0, 60))  # each line once
    assert len({m.partition() for m in topic_records(broker, topic)}) == 3


# -- the end of a file not followed completes its last entry -------------------------------------
FIXTURE_OF = {
    "pgaudit": "pgaudit.log",
    "pgaudit-csv": "pgaudit.csv",
    "mariadb": "mariadb_audit.log",
    "sftp": "sftp.log",
}


def ship_once(
    broker: str, fmt: str, log: Path, topic: str, positions: Path, **kw: Any
) -> tuple[int, list[str]]:
    """One in-process `lifemon ship` (follow off unless asked): records shipped, warnings."""
    from streams.config import load_config
    from streams.ship import Shipper

    warned: list[str] = []
    config = load_config(None, kafka={"bootstrap": broker})
    shipper = Shipper(
        config, broker, FORMATS[fmt], [str(log)], topic, positions, key="db1", warn=warned.append, **kw
    )
    return shipper.run(), warned


@pytest.mark.integration
@pytest.mark.parametrize("fmt", list(FIXTURE_OF))
def test_a_file_of_one_entry_ships_it_without_follow(broker, names, tmp_path, fmt: str) -> None:
    """The file's only entry (for pgaudit a statement with tab-led lines) is complete at the end of
    the file: shipped by the first run, not left as "an unfinished entry" run after run."""
    topic, positions, log = f"raw.{names['tag']}", tmp_path / "pos.json", tmp_path / "one.log"
    entry = max(entries(FIXTURE_OF[fmt]), key=lambda e: (b"\n" in e, b"AUDIT" in e or b"QUERY" in e))
    log.write_bytes(entry + b"\n")
    shipped, warned = ship_once(broker, fmt, log, topic, positions)
    assert (shipped, warned) == (1, [])
    assert ship_once(broker, fmt, log, topic, positions) == (0, [])
    assert values(broker, topic) == [entry]


@pytest.mark.integration
def test_an_entry_appended_between_two_runs_ships_exactly_once(broker, names, tmp_path) -> None:
    topic, positions, log = f"raw.{names['tag']}", tmp_path / "pos.json", tmp_path / "postgresql.log"
    pg = entries("pgaudit.log")
    log.write_bytes(b"".join(e + b"\n" for e in pg[5:7]))
    assert ship_once(broker, "pgaudit", log, topic, positions) == (2, [])
    write(log, [pg[7]])  # one statement with tab-led lines, written while ship was not running
    assert ship_once(broker, "pgaudit", log, topic, positions) == (1, [])
    assert ship_once(broker, "pgaudit", log, topic, positions) == (0, [])
    assert values(broker, topic) == pg[5:8]
    assert orjson.loads(positions.read_bytes())["marks"].popitem()[1]["offset"] == log.stat().st_size


@pytest.mark.integration
def test_follow_still_waits_for_a_quiet_file_before_a_last_entry_is_complete(broker, names, tmp_path) -> None:
    """Followed, the file's end is no proof: a last entry is complete once the file stayed quiet
    for `settle_s`, so tab-led lines written a moment after their first line stay in its record."""
    import threading

    from streams.config import load_config
    from streams.ship import Shipper

    topic, positions, log = f"raw.{names['tag']}", tmp_path / "pos.json", tmp_path / "postgresql.log"
    pg = entries("pgaudit.log")
    log.write_bytes(pg[5] + b"\n")
    config = load_config(None, kafka={"bootstrap": broker})
    shipper = Shipper(
        config, broker, FORMATS["pgaudit"], [str(log)], topic, positions, key="db1", follow=True,
        settle_s=1.5, warn=lambda m: None,
    )  # fmt: skip
    t = threading.Thread(target=shipper.run, daemon=True)
    t.start()
    try:
        assert wait_for(broker, topic, 1) == [pg[5]]
        first, *rest = pg[7].split(b"\n")  # a statement whose later lines come a moment after its first
        write(log, [first])
        time.sleep(0.3)
        write(log, [b"\n".join(rest)])
        assert wait_for(broker, topic, 2) == [pg[5], pg[7]]
        write(log, [pg[8]])
        assert wait_for(broker, topic, 3) == [pg[5], pg[7], pg[8]]
    finally:
        shipper.stop.set()
        t.join(30)
    assert values(broker, topic) == [pg[5], pg[7], pg[8]]


# -- a raw source left off in the config ---------------------------------------------------------
@pytest.mark.integration
def test_ship_warns_once_when_the_config_leaves_the_raw_source_off(broker, names, tmp_path) -> None:
    topic, log = f"raw.{names['tag']}", tmp_path / "postgresql.log"
    log.write_bytes(entries("pgaudit.log")[5] + b"\n")
    p = ship(broker, [log], topic, tmp_path / "pos.json", "pgaudit")
    assert p.wait(60) == 0
    err = p.stderr.read().decode() if p.stderr else ""
    assert err.count("raw_sources.pgaudit.enabled is false") == 1, err
    assert "the defaults (no --config)" in err and "raw_sources.pgaudit.enabled: true" in err
    on = tmp_path / "lifemon.yaml"
    on.write_text(f"raw_sources:\n  pgaudit:\n    enabled: true\n    topic: {topic}\n")
    p = ship(broker, [log], topic, tmp_path / "pos2.json", "pgaudit", "--config", str(on))
    assert p.wait(60) == 0
    err = p.stderr.read().decode() if p.stderr else ""
    assert "raw_sources" not in err, err


def test_what_keeps_run_from_reading_the_shipped_records_is_named() -> None:
    from streams.config import load_config
    from streams.ship import unmonitored

    off = load_config(None)
    [warning] = unmonitored(off, "the defaults (no --config)", "sftp", "pfi.raw.sftp")
    assert warning.startswith("raw_sources.sftp.enabled is false in the defaults (no --config)")
    on = load_config(None, raw_sources={"pgaudit": {"enabled": True}, "mariadb": {"enabled": True}})
    assert unmonitored(on, "c.yaml", "pgaudit", "pfi.raw.pgaudit") == []
    assert unmonitored(on, "c.yaml", "mariadb", "elsewhere") == [
        "raw_sources.mariadb.topic is pfi.raw.mariadb in c.yaml: `lifemon run` with this config reads "
        "that topic, not elsewhere; set `raw_sources.mariadb.topic: elsewhere`, or ship without --topic"
    ]
    [wrong] = unmonitored(on, "c.yaml", "pgaudit-csv", "pfi.raw.pgaudit")
    assert "raw_sources.pgaudit.format: csvlog" in wrong
