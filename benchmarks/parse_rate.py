"""Raw-log sources: the parse rate of each format (lines per CPU-second: unwrap, parse, map through
policy/sources.yaml, the event-time check) and the end-to-end rate from a raw topic to alerts (the
whole monitor: consume, parse, re-key through the repartition topic, detectors, sinks, checkpoints),
each beside the raw librdkafka consume rate of the same topic measured in the same run (the ceiling).

    python benchmarks/parse_rate.py [--lines 100000] [--formats pgaudit,sftp] [--bootstrap host:port]

The lines are the real servers' (tests/fixtures/raw/), cut into records exactly as `lifemon ship`
cuts them, repeated with each copy's sessions, connections and processes renumbered so that no
two copies share a statement or an SFTP session.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from confluent_kafka import Producer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from e2e_throughput import raw_consume  # noqa: E402

from detectors import load_detectors  # noqa: E402
from policy import load_policy  # noqa: E402
from policy.catalog import Catalog  # noqa: E402
from schemas.models import EVENT_MODELS, Entitlement  # noqa: E402
from streams.clickhouse import connect  # noqa: E402
from streams.codecs import Decoder, RawRecord  # noqa: E402
from streams.config import Config, load_config  # noqa: E402
from streams.embedded import EmbeddedBroker  # noqa: E402
from streams.engine import freeze_heap  # noqa: E402
from streams.pseudonym import Pseudonymizer  # noqa: E402
from streams.runtime import Monitor, ensure_topics  # noqa: E402
from streams.ship import FORMATS  # noqa: E402
from streams.sources import RawDecoder  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "raw"
PG_PREFIX = "%m [%p] %q%u@%d app=%a "  # as tests/realservers.py configured the server
BATCH = 5000


def _renumber(pattern: bytes, step: int) -> Callable[[bytes, int], bytes]:
    """Copy i of a line: the number the pattern's group 2 matches, plus i * step."""
    rx = re.compile(pattern)
    return lambda line, i: rx.sub(
        lambda m: m.group(1) + str(int(m.group(2)) + i * step).encode(), line, count=1
    )


def _csv_session(line: bytes, i: int) -> bytes:  # csvlog: the pid column and the %c session id
    line = _renumber(rb"^([^,]*,[^,]*,[^,]*,)(\d+)", 100_000)(line, i)
    return re.sub(rb",([0-9a-f]{8})\.([0-9a-f]+),", lambda m: b",%s.%x," % (m.group(1), i), line, count=1)


PG_TIME = rb"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3})"


def _pg_time(dt: datetime) -> str:
    return f"{dt:%Y-%m-%d %H:%M:%S}.{dt.microsecond // 1000:03d}"


def _syslog_time(dt: datetime) -> str:
    return f"{dt:%b} {dt.day:>2} {dt:%H:%M:%S}"


@dataclass(frozen=True)
class Source:
    fixture: str
    source: str  # its raw_sources entry
    settings: dict
    stream: str
    renumber: Callable[[bytes, int], bytes]  # copy i of a record: its own sessions, connections, pids
    time: bytes  # a regex whose group 1 is the record's time
    read: str  # strptime format of that time
    write: Callable[[datetime], str]
    logins: bytes | None = None  # a regex whose group 2 is a database login: spread over EMPLOYEES


SOURCES = {
    "pgaudit": Source("pgaudit.log", "pgaudit", {"log_line_prefix": PG_PREFIX}, "access",
                      _renumber(rb"(\[)(\d+)", 100_000), PG_TIME, "%Y-%m-%d %H:%M:%S.%f", _pg_time,
                      rb"(\] )(teller_wang|analyst_zhao)(?=@)"),
    "pgaudit-csv": Source("pgaudit.csv", "pgaudit", {"format": "csvlog"}, "access", _csv_session, PG_TIME,
                          "%Y-%m-%d %H:%M:%S.%f", _pg_time, rb'^([^,]*,")(teller_wang|analyst_zhao)(?=")'),
    "mariadb": Source("mariadb_audit.log", "mariadb", {}, "access",
                      _renumber(rb"^(\d{8} [\d:]+,[^,]*,[^,]*,[^,]*,)(\d+)", 1000), rb"^(\d{8} \d\d:\d\d:\d\d)",
                      "%Y%m%d %H:%M:%S", lambda dt: f"{dt:%Y%m%d %H:%M:%S}", rb"^(\d{8} [\d:]+,[^,]*,)(csr_liu)(?=,)"),
    "sftp": Source("sftp.log", "sftp", {}, "transfer", _renumber(rb"(internal-sftp\[)(\d+)", 100_000),
                   rb"^<\d+>([A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d)", "%Y %b %d %H:%M:%S", _syslog_time),
}  # fmt: skip
# A bank day, not one employee doing the work of a branch: each copy a minute after the one before,
# its logins one of EMPLOYEES per login of the fixture (unmapped logins are their own actor ids,
# entitled as the fixture's employees are), so no actor's window holds more than a day's share.
STEP_MS = 60_000
EMPLOYEES = 200
ROLES = {"teller_wang": ("lobby_manager", "S0101"), "analyst_zhao": ("br_dept_head", "B01"),
         "csr_liu": ("lobby_manager", "S0101")}  # fmt: skip


def lines_of(fmt: str, n: int) -> list[bytes]:
    """n records: the fixture's, copy after copy, renumbered and moved on in time so that the last
    copy ends a minute ago (a line from the future would be an event-time dead letter)."""
    src = SOURCES[fmt]
    data = (FIXTURES / src.fixture).read_bytes()
    one = [value for _, records in FORMATS[fmt].split(data, True) for _, value in records]
    copies = n // len(one) + 1
    rx, logins = re.compile(src.time), re.compile(src.logins) if src.logins else None
    year = f"{datetime.now(UTC).year} " if "%Y %b" in src.read else ""
    first = min(
        datetime.strptime(year + m.group(1).decode(), src.read) for line in one if (m := rx.search(line))
    )
    start = (
        datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=1, milliseconds=copies * STEP_MS) - first
    )

    def moved(line: bytes, i: int) -> bytes:
        shift = start + timedelta(milliseconds=i * STEP_MS)
        line = rx.sub(
            lambda m: m.group(0).replace(
                m.group(1),
                src.write(datetime.strptime(year + m.group(1).decode(), src.read) + shift).encode(),
            ),
            line,
            count=1,
        )
        if logins is None:
            return line
        return logins.sub(lambda m: m.group(1) + m.group(2) + b"_%d" % (i % EMPLOYEES), line, count=1)

    return [moved(src.renumber(line, i), i) for i in range(copies) for line in one][:n]


def source_config(fmt: str, topic: str, **kw: object) -> Config:
    src = SOURCES[fmt]
    return load_config(
        None, raw_sources={src.source: {"enabled": True, "topic": topic, **src.settings}}, **kw
    )


def parse_rate(fmt: str, lines: list[bytes]) -> tuple[float, int]:
    """(lines per CPU-second, events) of the raw decoder alone, in batches as the monitor reads them."""
    topic = f"bench.raw.{fmt}"
    dec = RawDecoder.for_config(Decoder(), source_config(fmt, topic))
    assert isinstance(dec, RawDecoder)
    stream = SOURCES[fmt].stream
    stamp = int(time.time() * 1000)
    batches = [
        [RawRecord(topic, 0, off + i, v, None, None, stamp) for i, v in enumerate(lines[off : off + BATCH])]
        for off in range(0, len(lines), BATCH)
    ]
    freeze_heap()
    cpu0 = time.process_time()
    events = sum(len(dec.decode(stream, b).ok) for b in batches) + len(dec.flush(stream, topic, 0).ok)
    return len(lines) / (time.process_time() - cpu0), events


def end_to_end(fmt: str, lines: list[bytes], bootstrap: str, ch: object, policy: object) -> tuple:
    """((lines/s wall, per CPU-s) of the monitor, alerts, (ceiling wall, per CPU-s)) on one topic."""
    tag = uuid.uuid4().hex[:6]
    topic = f"bench.raw.{fmt}.{tag}"
    config = source_config(
        fmt,
        topic,
        kafka={"bootstrap": bootstrap, "group_id": f"bench-{tag}", "partitions": 3, "batch_size": BATCH,
               "poll_timeout_s": 0.2},
        topics={s: f"bench.{s}.{tag}" for s in [*EVENT_MODELS, "alerts", "incidents", "dlq"]},
        clickhouse={"dsn": "chdb://unused", "database": f"bench_{tag}"},
    )  # fmt: skip
    ensure_topics(bootstrap, config)
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "compression.type": "lz4",
                  "queue.buffering.max.messages": 2_000_000})  # fmt: skip
    for who, role, org in (("E1001", "lobby_manager", "S0101"), ("E1002", "br_dept_head", "B01"),
                           ("E1003", "lobby_manager", "S0101")):  # fmt: skip
        ent = Entitlement(
            actor_id=who,
            ts=0,
            org_id=org,
            org_path=["HO", org[:3], org][: 2 if org == "B01" else 3],
            roles=[role],
        )
        p.produce(config.topics.entitlements, ent.model_dump_json().encode(), who.encode())
    for line in lines:
        p.produce(topic, line, b"server1")  # one server: its sessions in one partition, as ship keys them
    while p.flush(10):  # every record on the topic before the ceiling counts them
        pass
    ceiling = raw_consume(bootstrap, [topic], len(lines))
    specs = load_detectors(policy)
    monitor = Monitor(config, bootstrap, ch, specs, Catalog(policy), Pseudonymizer(os.urandom(32)))
    stats = monitor.run(idle_exit_s=3.0, max_seconds=900)
    wall, cpu = stats.busy()
    return (len(lines) / wall, len(lines) / cpu), len(stats.alerts), ceiling


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=100_000, help="log records per format")
    ap.add_argument("--formats", default=",".join(SOURCES), help="comma-separated, of: " + ", ".join(SOURCES))
    ap.add_argument("--bootstrap", help="use this broker instead of an embedded Tansu")
    args = ap.parse_args()
    policy = load_policy()
    ch = connect(f"chdb://{tempfile.mkdtemp(prefix='lifemon-bench-')}")
    formats = args.formats.split(",")
    with EmbeddedBroker() as broker:
        bootstrap = args.bootstrap or broker.bootstrap
        print(
            f"raw-log sources: {args.lines} records per format, every detector, {os.cpu_count()} cores, broker {bootstrap}"
        )
        print(f"{'format':<13}{'ceiling /CPU-s':>15}{'parse /CPU-s':>14}{'ratio':>7}"
              f"{'e2e /s':>10}{'e2e /CPU-s':>12}{'ratio (wall / CPU)':>20}  events, alerts")  # fmt: skip
        for fmt in formats:
            lines = lines_of(fmt, args.lines)
            (e_wall, e_cpu), alerts, (c_wall, c_cpu) = end_to_end(fmt, lines, bootstrap, ch, policy)
            rate, events = parse_rate(fmt, lines)
            print(
                f"{fmt:<13}{c_cpu:>15,.0f}{rate:>14,.0f}{rate / c_cpu:>7.3f}{e_wall:>10,.0f}{e_cpu:>12,.0f}"
                f"{e_wall / c_wall:>11.3f} / {e_cpu / c_cpu:.3f}  {events}, {alerts}"
            )


if __name__ == "__main__":
    main()
