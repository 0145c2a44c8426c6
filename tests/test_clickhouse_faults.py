"""ClickHouse faults a probe found, each replayed through real parts: closed and silent ports, a
server that goes away mid-run, a chDB directory deleted under a running engine, a dropped database,
an insert acknowledged but never stored, and values a column type cannot hold
(docs/clickhouse-faults.md)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import chdb
import pytest

from streams.clickhouse import PASSWORD_ENV, ClickHouseUnavailable, apply_ddl, connect
from streams.sinks import FatalSinkError, SinkError
from streams.sinks.clickhouse import (
    DEAD_LETTER_COLUMNS,
    STATS_COLUMNS,
    ClickHouseTableSink,
    Rejected,
    identity_row,
    verify_together,
)
from streams.sinks.tables import Tables

ROOT = Path(__file__).resolve().parent.parent


def dead_letter(offset: int, partition: int = 0, seen_at: int = 1_767_225_600_000) -> tuple:
    return ("t.access", partition, offset, "schema", "actor_id", "missing", seen_at)


def dead_letter_sink(client: Any, database: str, **kw: Any) -> ClickHouseTableSink:
    return ClickHouseTableSink(
        client, f"{database}.dead_letters", DEAD_LETTER_COLUMNS, identity_row, "dlq→clickhouse", **kw
    )


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ChdbOverHttp:
    """The session's chDB engine behind a real HTTP socket, speaking as much of ClickHouse's HTTP
    interface as clickhouse-connect needs to connect and query: a server that can be stopped."""

    def __init__(self, path: str):
        conn = chdb.connect(os.path.realpath(path))

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # the test's output is its assertions
                pass

            def do_POST(self) -> None:
                url = parse_qs(urlsplit(self.path).query)
                length = int(self.headers.get("Content-Length") or 0)
                sql = url.get("query", [""])[0] + " " + self.rfile.read(length).decode()
                params = {k.removeprefix("param_"): v[0] for k, v in url.items() if k.startswith("param_")}
                fmt = url.get("default_format", ["TabSeparated"])[0]
                try:
                    body, status = conn.query(sql.strip(), fmt, params=params).bytes(), 200
                except Exception as e:  # an engine error goes back the way a server sends it
                    body, status = str(e).encode(), 500
                self.send_response(status)
                if status != 200:
                    self.send_header("X-ClickHouse-Exception-Code", "1")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.dsn = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def server(ch: Any) -> Iterator[ChdbOverHttp]:
    relay = ChdbOverHttp(os.environ["LIFEMON_TEST_CHDB"])
    yield relay
    relay.stop()


@pytest.fixture
def db(ch: Any, names: dict[str, str]) -> str:
    apply_ddl(ch, names["database"])
    return names["database"]


# -- 1. unreachable servers -------------------------------------------------------------------------
def test_a_closed_port_is_one_line_naming_the_dsn_and_no_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "env-s3cret")
    port = closed_port()
    with pytest.raises(ClickHouseUnavailable) as caught:
        connect(f"http://lifemon:dsn-s3cret@127.0.0.1:{port}")
    assert str(caught.value) == (
        f"ClickHouse at http://lifemon:***@127.0.0.1:{port} is unreachable (connection refused); "
        "check clickhouse.dsn or LIFEMON_CLICKHOUSE_DSN"
    )
    assert caught.value.__suppress_context__ is True  # no 100-line driver chain under it


def test_a_port_that_never_answers_fails_within_the_timeout() -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    held: list[socket.socket] = []  # accepted and never answered
    threading.Thread(target=lambda: [held.append(silent.accept()[0]) for _ in range(8)], daemon=True).start()
    port = silent.getsockname()[1]
    timeout_s = 1
    started = time.monotonic()
    with pytest.raises(ClickHouseUnavailable) as caught:
        connect(f"http://127.0.0.1:{port}", connect_timeout_s=timeout_s, receive_timeout_s=timeout_s)
    elapsed = time.monotonic() - started
    assert str(caught.value) == (
        f"ClickHouse at http://127.0.0.1:{port} is unreachable (no answer before the timeout); "
        "check clickhouse.dsn or LIFEMON_CLICKHOUSE_DSN"
    )
    assert elapsed < 10 * timeout_s  # one request, no silent retries of a 300 s default
    assert len(held) == 1
    for s in [*held, silent]:
        s.close()


def test_an_insert_during_an_outage_stays_transient_and_keeps_the_batch(
    ch: Any, db: str, server: ChdbOverHttp
) -> None:
    sink = dead_letter_sink(connect(server.dsn), db)
    server.stop()
    sink.add([dead_letter(1), dead_letter(2)])
    with pytest.raises(SinkError) as caught:
        sink.flush()
    assert type(caught.value) is SinkError  # not fatal and not a rejection: waiting cures it
    assert str(caught.value) == (
        f"dlq→clickhouse: insert into {db}.dead_letters failed: ClickHouse at {server.dsn} is unreachable "
        "(connection refused); check clickhouse.dsn or LIFEMON_CLICKHOUSE_DSN"
    )
    assert sink._buffer == [dead_letter(1), dead_letter(2)]


# -- 2. a flush counts only once it can be read back ---------------------------------------------------
DELETE_CHDB_MID_RUN = """
import json, shutil, sys
from streams.clickhouse import apply_ddl, connect
from streams.sinks.clickhouse import DEAD_LETTER_COLUMNS, ClickHouseTableSink, identity_row
path = sys.argv[1]
client = connect(f"chdb://{path}")
apply_ddl(client, "lifemon")
sink = ClickHouseTableSink(client, "lifemon.dead_letters", DEAD_LETTER_COLUMNS, identity_row, "dlq→clickhouse")
row = lambda offset: ("t.access", 0, offset, "schema", "actor_id", "missing", 0)
sink.add([row(1)])
first = sink.flush()
shutil.rmtree(path)
sink.add([row(2)])
try:
    sink.flush()
    outcome = {"first": first, "error": None}
except Exception as e:
    outcome = {"first": first, "error": type(e).__name__, "message": str(e), "kept": len(sink._buffer)}
print(json.dumps(outcome))
"""


def test_a_chdb_directory_deleted_mid_run_stops_the_flush_loudly(tmp_path: Path) -> None:
    # chDB allows one data path per process, and the session's is in use: delete one in a child
    path = tmp_path / "chdb"
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(DELETE_CHDB_MID_RUN), str(path)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome["first"] == 1
    assert outcome["error"] == "FatalSinkError"
    assert outcome["kept"] == 1  # nothing counted as written, so nothing is committed past it
    assert "lifemon.dead_letters is gone (chDB's file" in outcome["message"]
    assert "has vanished (data directory deleted?)" in outcome["message"]


def test_a_dropped_database_is_fatal_not_retried_forever(ch: Any, db: str) -> None:
    sink = dead_letter_sink(ch, db)
    sink.add([dead_letter(1)])
    assert sink.flush() == 1
    connect(f"chdb://{os.environ['LIFEMON_TEST_CHDB']}").command(f"DROP DATABASE {db}")
    sink.add([dead_letter(2)])
    with pytest.raises(FatalSinkError) as caught:
        sink.flush()
    assert str(caught.value).startswith(f"dlq→clickhouse: {db}.dead_letters is gone (")
    assert "UNKNOWN_DATABASE" in str(caught.value)
    assert sink._buffer == [dead_letter(2)]


def test_a_database_dropped_before_the_first_flush_is_fatal_too(ch: Any, db: str) -> None:
    # the sink learns its table's column types at its first flush: a table already gone then is
    # no outage to wait out
    sink = dead_letter_sink(ch, db)
    connect(f"chdb://{os.environ['LIFEMON_TEST_CHDB']}").command(f"DROP DATABASE {db}")
    sink.add([dead_letter(1)])
    with pytest.raises(FatalSinkError) as caught:
        sink.flush()
    assert str(caught.value).startswith(f"dlq→clickhouse: {db}.dead_letters is gone (")
    assert sink._buffer == [dead_letter(1)]


@pytest.mark.parametrize(
    "change",
    [
        "ALTER TABLE {t} MODIFY COLUMN n UInt32",  # widened: 70 000 no longer fits the learnt UInt8
        "DROP TABLE {t} SYNC; CREATE TABLE {t} (k UInt32, v String, n UInt32) ENGINE = MergeTree ORDER BY k",
    ],
    ids=["widened", "re-created"],
)
def test_a_table_changed_while_running_still_takes_the_rows_it_accepts(ch: Any, db: str, change: str) -> None:
    # the sink learns its table's column types once (no DESCRIBE before each insert); rows the old
    # types cannot encode are not refused for good while the table itself takes them
    table = f"{db}.t"
    ch.command(f"CREATE TABLE {table} (k UInt32, v String, n UInt8) ENGINE = MergeTree ORDER BY k")
    refused: list[Rejected] = []
    sink = ClickHouseTableSink(ch, table, ["k", "v", "n"], identity_row, "t", on_reject=refused.extend)
    sink.write([(1, "a", 1)])
    for statement in change.format(t=table).split("; "):
        ch.command(statement)
    sink.write([(2, "b", 70_000), (3, "c", 5)])
    assert refused == []
    assert ch.query(f"SELECT k, n FROM {table} WHERE k > 1 ORDER BY k").result_rows == [(2, 70_000), (3, 5)]


def test_an_insert_acknowledged_but_not_stored_is_not_counted(ch: Any, db: str) -> None:
    # a Null-engine table takes every insert and keeps nothing: the acknowledgement alone proves nothing
    ch.command(f"CREATE TABLE {db}.void AS {db}.dead_letters ENGINE = Null")
    sink = ClickHouseTableSink(ch, f"{db}.void", DEAD_LETTER_COLUMNS, identity_row, "dlq→clickhouse")
    sink.add([dead_letter(1)])
    with pytest.raises(SinkError) as caught:
        sink.flush()
    assert type(caught.value) is SinkError
    assert str(caught.value) == (
        f"dlq→clickhouse: {db}.void acknowledged the insert but its last row (any row) cannot be read "
        "back; the batch is kept and sent again"
    )
    assert sink._buffer == [dead_letter(1)]


def test_a_verified_flush_reads_back_by_the_leading_key(ch: Any, db: str) -> None:
    sink = dead_letter_sink(ch, db)
    sink.add([dead_letter(7, partition=3)])
    assert sink.flush() == 1
    assert sink._probe is not None
    assert [(col, typ) for _, col, typ in sink._probe.key] == [
        ("topic", "String"),
        ("partition", "UInt32"),
        ("offset", "UInt64"),
    ]
    assert sink._probe.metadata_file is not None and sink._probe.metadata_file.exists()


class Counted:
    """The session's client, counting the queries sent through it."""

    def __init__(self, client: Any):
        self.client, self.queries = client, 0

    def query(self, *args: Any, **kw: Any) -> Any:
        self.queries += 1
        return self.client.query(*args, **kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


def together(client: Any, db: str) -> tuple[ClickHouseTableSink, ClickHouseTableSink]:
    """A dead-letter sink and a stats sink that leave their batches to `verify_together`, probed."""
    dead = dead_letter_sink(client, db)
    stats = ClickHouseTableSink(client, f"{db}.pipeline_stats", STATS_COLUMNS, identity_row, "stats")
    for sink in (dead, stats):
        sink.unverified = []
        sink._load_probe("read-back from")
    return dead, stats


def stats_row(events: int) -> tuple:
    return (int(time.time() * 1000), "i-1", "access", events, 0, 0, 0, 0.0, 0)  # within the table's TTL


def test_batches_of_several_tables_are_read_back_in_one_query(ch: Any, db: str) -> None:
    """The runtime's sinks leave their batches to one read-back query per checkpoint
    (`verify_together`), which proves each table's last row as each sink's own `verify` did."""
    client = Counted(ch)
    dead, stats = together(client, db)
    dead.add([dead_letter(1), dead_letter(2)])
    stats.add([stats_row(5)])
    before = client.queries
    assert dead.flush() == 2 and stats.flush() == 1
    assert client.queries == before  # inserts only
    verify_together([dead, stats])
    assert client.queries == before + 1
    assert dead.unverified == stats.unverified == [] and dead._buffer == stats._buffer == []
    verify_together([dead, stats])  # nothing left to prove: no query
    assert client.queries == before + 1


def test_the_tables_of_sinks_probed_together_are_asked_in_two_queries(ch: Any, db: str) -> None:
    """The first sink that needs its table's column types and key asks for those of every sink of
    `probed_with` in the same two queries, and each gets what its own probe alone would; a table of
    the group that is missing leaves its sink unprobed, and that sink's own probe says it is gone."""
    client = Counted(ch)
    alone = [*together(ch, db), ClickHouseTableSink(ch, f"{db}.void", STATS_COLUMNS, identity_row, "void")]
    with pytest.raises(FatalSinkError):
        alone[2]._load_probe("insert into")
    group = [
        dead_letter_sink(client, db),
        ClickHouseTableSink(client, f"{db}.pipeline_stats", STATS_COLUMNS, identity_row, "stats"),
        ClickHouseTableSink(client, f"{db}.void", STATS_COLUMNS, identity_row, "void"),
    ]
    for sink in group:
        sink.probed_with = group
    group[0].add([dead_letter(1)])
    assert group[0].flush() == 1
    assert client.queries == 2 + 1  # the probes, then the read-back
    assert [s._probe for s in group] == [alone[0]._probe, alone[1]._probe, None]
    with pytest.raises(FatalSinkError) as caught:
        group[2]._load_probe("insert into")
    assert str(caught.value).startswith(f"void: {db}.void is gone (no such table)")
    assert group[1]._probe == alone[1]._probe


def test_the_runtimes_tables_are_all_probed_by_the_first_write(ch: Any, db: str, catalog: Any) -> None:
    client = Counted(ch)
    sinks = Tables.of(client, db, catalog.recipient_book).read_back_together()
    stats = next(s for s in sinks if s.table == f"{db}.pipeline_stats")
    stats.add([stats_row(1)])
    assert stats.flush() == 1
    assert client.queries == 2  # the probes; the read-back is left to verify_together
    assert all(s._probe is not None and s._probe.column_types for s in sinks)


def test_a_batch_read_back_together_and_not_found_goes_back_to_its_sink(ch: Any, db: str) -> None:
    """A table that acknowledges inserts and keeps nothing, read back with another: its batch is
    kept and sent again, with the error its own read-back gives; the other's counts as written."""
    ch.command(f"CREATE TABLE {db}.void AS {db}.dead_letters ENGINE = Null")
    dead, stats = together(ch, db)
    void = ClickHouseTableSink(ch, f"{db}.void", DEAD_LETTER_COLUMNS, identity_row, "dlq→clickhouse")
    void.unverified = []
    stats.add([stats_row(7)])
    void.add([dead_letter(1)])
    assert stats.flush() == 1 and void.flush() == 1 and void._buffer == []
    with pytest.raises(SinkError) as caught:
        verify_together([dead, stats, void])
    assert type(caught.value) is SinkError
    assert str(caught.value).startswith(f"dlq→clickhouse: {db}.void acknowledged the insert but its last row")
    assert void._buffer == [dead_letter(1)] and void.unverified == []
    assert stats.unverified == [] and stats._buffer == []


def test_a_table_dropped_before_the_read_back_together_is_fatal_and_named(ch: Any, db: str) -> None:
    dead, stats = together(ch, db)
    dead.add([dead_letter(1)])
    stats.add([stats_row(1)])
    assert dead.flush() == 1 and stats.flush() == 1
    ch.command(f"DROP TABLE {db}.pipeline_stats")
    with pytest.raises(FatalSinkError) as caught:
        verify_together([dead, stats])
    assert str(caught.value).startswith(f"stats: {db}.pipeline_stats is gone (")
    assert len(stats._buffer) == 1


# -- 3. refused values become rejections, the rest is written -------------------------------------------
def test_refused_rows_are_split_off_and_the_rest_is_written(ch: Any, db: str) -> None:
    rejected: list[Rejected] = []
    sink = dead_letter_sink(ch, db, on_reject=rejected.extend)
    negative_partition = dead_letter(3, partition=-1)  # UInt32 cannot hold it
    far_future = dead_letter(6, seen_at=10**22)  # beyond DateTime64(3)
    batch = [dead_letter(1), dead_letter(2), negative_partition, dead_letter(4), dead_letter(5), far_future]
    sink.add(batch)
    assert sink.flush() == 6
    assert [r.item for r in rejected] == [negative_partition, far_future]
    assert rejected[0].reason == (
        f"{db}.dead_letters refused the row: Unable to create native array for column `partition`: "
        "argument out of range"
    )
    assert rejected[1].reason.startswith(
        f"{db}.dead_letters refused the row: Unable to create native array for column `seen_at`"
    )
    stored = ch.query(f"SELECT offset FROM {db}.dead_letters ORDER BY offset").result_rows
    assert stored == [(1,), (2,), (4,), (5,)]
    assert sink._buffer == []


def test_refused_rows_without_a_handler_are_reported_in_one_line(
    ch: Any, db: str, caplog: pytest.LogCaptureFixture
) -> None:
    sink = dead_letter_sink(ch, db)
    sink.add([dead_letter(1), dead_letter(2, partition=2**40)])
    assert sink.flush() == 2
    (record,) = [r for r in caplog.records if r.name == "streams.sinks.clickhouse"]
    assert record.levelname == "ERROR" and record.rows == 1
    assert record.getMessage() == (
        f"dlq→clickhouse: 1 row(s) refused by {db}.dead_letters for good and not stored: "
        f"{db}.dead_letters refused the row: Unable to create native array for column `partition`: "
        "'I' format requires 0 <= number <= 4294967295"
    )
    assert ch.query(f"SELECT offset FROM {db}.dead_letters").result_rows == [(1,)]
