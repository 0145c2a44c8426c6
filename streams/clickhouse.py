"""ClickHouse through clickhouse-connect: `chdb://` (embedded, the default) or `http(s)://` (a server).

The DDL in `clickhouse/*.sql` is applied at every start; it is idempotent by construction.
Failures are sorted here into three kinds (docs/clickhouse-faults.md): the server cannot be reached
(`ClickHouseUnavailable`, wait), the table or database is gone (stop loudly), and the data is refused
(reject those rows, keep the rest).
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import socket
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import clickhouse_connect
from clickhouse_connect.driver.exceptions import DataError, Error, OperationalError

from policy.storage import Storage, load_storage
from streams.credentials import Secrets, env_name

log = logging.getLogger(__name__)

DDL_DIR = Path(__file__).resolve().parent.parent / "clickhouse"
PASSWORD_ENV = env_name("clickhouse_password")
CONNECT_TIMEOUT_S = 10  # a server that does not take the TCP connection in 10 s is not coming back soon
RECEIVE_TIMEOUT_S = (
    30  # lifemon's inserts and queries are small; the driver's default of 300 s looks like a hang
)

# The driver logs a traceback for every failed request or serialization just before raising it; lifemon
# reports each failure itself in one line, so these would only bury that line.
for _noisy in ("clickhouse_connect.driver._backend.http_sync", "clickhouse_connect.driver.transform"):
    logging.getLogger(_noisy).setLevel(logging.CRITICAL)

# Server error codes (ClickHouse src/Common/ErrorCodes.cpp) that mean "the destination is gone".
GONE_CODES = frozenset({60, 81})  # UNKNOWN_TABLE, UNKNOWN_DATABASE
ACCESS_DENIED = 497
# a column that holds pseudonyms: its TTL counts policy/storage.yaml's days from a time column (a line
# of its own: an aggregate state's type has commas)
_PSEUDONYM_TTL = re.compile(
    r"^[ \t]+(\w+)\s[^\n]*?TTL toDateTime\((\w+)\) \+ INTERVAL \{pseudonym_ttl_days\} DAY", re.M
)
# Codes that mean "these values are refused", whatever the server's state: retrying cannot help.
DATA_CODES = frozenset(
    {
        6,  # CANNOT_PARSE_TEXT
        27,  # CANNOT_PARSE_INPUT_ASSERTION_FAILED
        38,  # CANNOT_PARSE_DATE
        41,  # CANNOT_PARSE_DATETIME
        53,  # TYPE_MISMATCH
        69,  # ARGUMENT_OUT_OF_BOUND
        70,  # CANNOT_CONVERT_TYPE
        72,  # CANNOT_PARSE_NUMBER
        117,  # INCORRECT_DATA
        131,  # TOO_LARGE_STRING_SIZE
        321,  # VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
        469,  # VIOLATED_CONSTRAINT
        691,  # UNKNOWN_ELEMENT_OF_ENUM
    }
)
_CODE_RE = re.compile(r"\bCode:\s*(\d+)")

FailureKind = Literal["outage", "gone", "data"]


_COLUMN = re.compile(r"^    (\w+)\s+(\S.*?),?$", re.M)  # a column line of a CREATE TABLE in clickhouse/*.sql
_ORDER_BY = re.compile(r"^ORDER BY (\(.*?\)|\w+)$", re.M)  # its sorting key


class SchemaOutdated(RuntimeError):
    """A table lacks a column this lifemon writes, and lifemon's account may not add it: one line
    with the statement an administrator runs."""


class ClickHouseUnavailable(RuntimeError):
    """ClickHouse cannot be reached or refuses the connection; the message is one line, fit for an
    operator, and never holds a password. The caller may wait and retry."""


def redact(dsn: str) -> str:
    """The DSN as it may be shown: a password in it becomes `***`."""
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def error_code(e: BaseException) -> int | None:
    code = getattr(e, "code", None)
    if isinstance(code, int):
        return code
    match = _CODE_RE.search(str(e))
    return int(match.group(1)) if match else None


def classify(e: BaseException) -> FailureKind:
    """What a failed insert or query means for the rows it carried.

    `data`: the driver could not serialize a value for its column type (it raises before anything is
    sent) or the server refused a value; `gone`: the table or database does not exist; `outage`: all
    else, connection errors and timeouts included, which waiting may cure."""
    if isinstance(e, DataError | ValueError | TypeError | OverflowError | struct.error):
        return "data"
    code = error_code(e)
    if code in GONE_CODES:
        return "gone"
    if code in DATA_CODES:
        return "data"
    return "outage"


def _transport_reason(e: BaseException) -> str | None:
    """Why a request never got an answer, from the driver's exception chain; None if it did get one."""
    seen: BaseException | None = e
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError):
            return "connection refused"
        if isinstance(seen, socket.gaierror):
            return "host name not found"
        if isinstance(seen, TimeoutError | socket.timeout) or type(seen).__name__ in (
            "ReadTimeoutError",
            "ConnectTimeoutError",
        ):
            return "no answer before the timeout"
        if isinstance(seen, ConnectionError | OSError) and not isinstance(seen, Error):
            return (seen.strerror or type(seen).__name__).lower() if isinstance(seen, OSError) else str(seen)
        seen = seen.__cause__ or seen.__context__
    return "connection failed" if isinstance(e, OperationalError) and error_code(e) is None else None


def unavailable(where: str, e: BaseException) -> ClickHouseUnavailable | None:
    """`e` as a one-line ClickHouseUnavailable if it means the server could not be reached, else None."""
    reason = _transport_reason(e)
    if reason is None:
        return None
    return ClickHouseUnavailable(
        f"ClickHouse at {redact(where)} is unreachable ({reason}); "
        "check clickhouse.dsn or LIFEMON_CLICKHOUSE_DSN"
    )


def connect(
    dsn: str, connect_timeout_s: int = CONNECT_TIMEOUT_S, receive_timeout_s: int = RECEIVE_TIMEOUT_S
) -> Any:
    """A clickhouse-connect client. The password, if any, comes from the environment only.

    A server that cannot be reached, or that takes the connection and never answers, raises
    ClickHouseUnavailable within the timeouts instead of a driver traceback or a hang."""
    kwargs: dict[str, Any] = {}
    embedded = Path(dsn.removeprefix("chdb://")) if dsn.startswith("chdb://") else None
    if embedded is not None:
        held = chdb_in_use(embedded)
        if held:  # before chDB tries and prints "Cannot lock file" on stderr
            raise ClickHouseUnavailable(held)
    else:
        password = Secrets().clickhouse_password
        if password is not None:
            kwargs["password"] = password.get_secret_value()
        # the driver takes whole seconds, and 0 would mean "fail at once"
        kwargs["connect_timeout"] = max(int(connect_timeout_s), 1)
        kwargs["send_receive_timeout"] = max(int(receive_timeout_s), 1)
        kwargs["query_retries"] = 0  # lifemon's callers retry with backoff and say so
    try:
        return clickhouse_connect.get_client(dsn=dsn, **kwargs)
    except Exception as e:  # the driver raises many types; sort them into one message
        failure = unavailable(dsn, e)
        if failure is not None:
            raise failure from None  # the reason is in the message; the driver's chain is 100 lines
        held = chdb_in_use(embedded, probe=True) if embedded is not None else None
        if held:
            raise ClickHouseUnavailable(held) from None
        if isinstance(e, Error):
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ClickHouseUnavailable(
                f"ClickHouse at {redact(dsn)} refused the connection: {first[:300]}; "
                f"check clickhouse.dsn, LIFEMON_CLICKHOUSE_DSN and {PASSWORD_ENV}"
            ) from None
        raise


def chdb_in_use(path: Path, probe: bool = False) -> str | None:
    """If another process has the embedded database at `path` open (chDB, like a ClickHouse server,
    holds an exclusive lock on its `status` file), a one-line message saying so, else None.

    Read from /proc/locks, which takes no lock itself; `probe`: where that is not available, try
    the lock (only after chDB failed to open the path, so no start of another process can lose it)."""
    status = path / "status"
    try:
        st = status.stat()
    except OSError:
        return None
    # /proc/locks names a file as major:minor:inode, the device numbers in hex (an inode alone can
    # be another file's on another filesystem)
    where = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    holder: int | None = None
    try:
        for line in Path("/proc/locks").read_text().splitlines():
            fields = line.split()  # 1: FLOCK ADVISORY WRITE <pid> <maj:min:inode> 0 EOF
            mine = len(fields) > 5 and fields[1] == "FLOCK" and fields[5] == where
            if mine and int(fields[4]) != os.getpid():
                holder = int(fields[4])
    except (OSError, ValueError):
        if not probe:
            return None
        try:
            with open(status, "rb") as f:
                fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = 0
        except OSError:
            return None
    if holder is None:
        return None
    try:  # the server writes its PID and start time there
        info = dict(
            line.split(": ", 1) for line in status.read_text(errors="replace").splitlines() if ": " in line
        )
    except OSError:
        info = {}
    who = f"pid {info.get('PID', holder or '?')}" + (
        f", started {info['Started at']}" if "Started at" in info else ""
    )
    return (
        f"the embedded ClickHouse at {path} is in use by another lifemon process ({who}): chDB lets "
        "one process open it at a time, so stop that one first; to read while `lifemon run` runs, "
        "give lifemon a ClickHouse server (clickhouse.dsn or LIFEMON_CLICKHOUSE_DSN), which any "
        "number of processes can use at once"
    )


def preload_driver() -> None:
    """Import now what the driver imports lazily at its first insert: it probes for pandas (to take
    DataFrames, which lifemon never passes), ~0.6 s of CPU that would otherwise stall the first
    checkpoint in the middle of the stream, and whose objects the heap freeze (`freeze_heap`) would
    then miss, so the collector would scan them again and again (docs/benchmarks.md)."""
    from clickhouse_connect.driver import options

    _ = options.pd  # the module's lazy attribute: resolving it imports pandas if installed


def tables_present(client: Any, database: str, names: Sequence[str]) -> set[str]:
    """Which of `names` exist in `database`: a database an earlier lifemon wrote lacks the tables
    added since, until the next `lifemon run` creates them."""
    return {
        name
        for (name,) in client.query(
            "SELECT name FROM system.tables WHERE database = {db:String} AND name IN {names:Array(String)}",
            parameters={"db": database, "names": list(names)},
        ).result_rows
    }


def location(client: Any) -> str:
    """Where a client points, for messages: the server URL or the chDB path."""
    url = getattr(client, "url", None)
    return str(url) if url else f"chdb://{getattr(client, 'path', '?')}"


def _statements() -> list[str]:
    """The DDL's statements, comments stripped, `{db}` and `{pseudonym_ttl_days}` still in them."""
    statements = []
    for path in sorted(DDL_DIR.glob("*.sql")):
        text = re.sub(r"--[^\n]*", "", path.read_text(encoding="utf-8"))
        statements += [s.strip() for s in text.split(";") if s.strip()]
    return statements


def ddl_statements(database: str, storage: Storage | None = None) -> list[str]:
    days = str((storage or load_storage()).pseudonym_ttl_days)
    return [s.replace("{db}", database).replace("{pseudonym_ttl_days}", days) for s in _statements()]


def pseudonym_columns() -> dict[str, dict[str, str]]:
    """table -> {column that holds pseudonyms: the time column its TTL counts from}, as the DDL
    marks them (a TTL of `{pseudonym_ttl_days}`)."""
    found: dict[str, dict[str, str]] = {}
    for statement in _statements():
        table = re.match(r"CREATE TABLE IF NOT EXISTS \{db\}\.(\w+)", statement)
        for column, clock in _PSEUDONYM_TTL.findall(statement):
            found.setdefault(table[1] if table else "?", {})[column] = clock
    return found


def column_default(table: str, column: str) -> str:
    """The DEFAULT expression the DDL gives `table`.`column`: what a row stored before the column
    reads, for a read command to say the same of a table no `lifemon run` has upgraded yet."""
    for statement in _statements():
        if re.match(rf"CREATE TABLE IF NOT EXISTS \{{db\}}\.{table}\b", statement):
            for name, definition in _COLUMN.findall(statement):
                default = re.search(r"\bDEFAULT (.+)$", definition)
                if name == column and default:
                    return default[1]
    raise LookupError(f"clickhouse/*.sql gives {table}.{column} no DEFAULT")


def has_column(client: Any, database: str, table: str, column: str) -> bool:
    return bool(
        client.query(
            "SELECT count() FROM system.columns WHERE database = {db:String} AND table = {t:String} "
            "AND name = {c:String}",
            parameters={"db": database, "t": table, "c": column},
        ).result_rows[0][0]
    )


def apply_ddl(client: Any, database: str, storage: Storage | None = None) -> None:
    """Create what is missing, then give the pseudonym columns policy/storage.yaml's TTL if a
    table was made under another one (an ALTER only when they differ)."""
    storage = storage or load_storage()
    for statement in ddl_statements(database, storage):
        client.command(statement)
        created = re.match(rf"CREATE TABLE IF NOT EXISTS {re.escape(database)}\.(\w+)", statement)
        if created:
            key = _ORDER_BY.search(statement)
            _add_missing_columns(
                client, database, created[1], _COLUMN.findall(statement), key[1] if key else None
            )
    for table, columns in pseudonym_columns().items():
        _apply_pseudonym_ttl(client, database, table, columns, storage.pseudonym_ttl_days)


def _add_missing_columns(
    client: Any, database: str, table: str, columns: list[tuple[str, str]], order_by: str | None = None
) -> None:
    """A table made by an earlier release gains the columns added to its CREATE since, in their
    place (CREATE ... IF NOT EXISTS leaves an existing table as it is). A column the CREATE's
    sorting key names joins the key in the same ALTER: ClickHouse lets a key grow only so, by
    columns at its end without a DEFAULT clause (event_rollups' topic_id, then action). The key
    each ALTER gives names only the columns there by then: a table from before both gains them
    one ALTER at a time."""
    have = {
        name
        for (name,) in client.query(
            "SELECT name FROM system.columns WHERE database = {db:String} AND table = {t:String}",
            parameters={"db": database, "t": table},
        ).result_rows
    }
    previous = None
    for name, definition in columns:
        if name not in have:
            place = f"AFTER {previous}" if previous else "FIRST"
            alter = f"ALTER TABLE {database}.{table} ADD COLUMN IF NOT EXISTS {name} {definition} {place}"
            if order_by and re.search(rf"\b{name}\b", order_by):
                have.add(name)
                key = [k for k in re.findall(r"\w+", order_by) if k in have]
                alter += f", MODIFY ORDER BY ({', '.join(key)})"
            try:
                client.command(alter)
            except Error as e:
                if error_code(e) != ACCESS_DENIED:
                    raise
                if re.match(r"\S+\s+(MATERIALIZED|ALIAS)\b", definition):
                    # the server fills it and lifemon never writes it: the table works without it
                    # (alert_reviews.account reads '' until it is added), so the start goes on
                    log.warning(
                        f"{database}.{table} lacks the column {name}, which lifemon's ClickHouse account may "
                        f"not add (deploy/clickhouse-init); until an administrator runs {alter}, it reads ''",
                        extra={"table": table, "column": name},
                    )
                    continue
                raise SchemaOutdated(
                    f"{database}.{table} lacks the column {name} this lifemon writes, and lifemon's ClickHouse "
                    f"account may not add it (deploy/clickhouse-init); an administrator runs: {alter}"
                ) from None
        previous = name


def _apply_pseudonym_ttl(client: Any, database: str, table: str, columns: dict[str, str], days: int) -> None:
    ((created,),) = client.query(
        "SELECT create_table_query FROM system.tables WHERE database = {db:String} AND name = {t:String}",
        parameters={"db": database, "t": table},
    ).result_rows
    for column, clock in columns.items():
        now = re.search(rf"`{column}` [^`]*?TTL toDateTime\((\w+)\) \+ toIntervalDay\((\d+)\)", created)
        if now and now[1] == clock and int(now[2]) == days:
            continue
        alter = f"ALTER TABLE {database}.{table} MODIFY COLUMN {column} TTL toDateTime({clock}) + INTERVAL {days} DAY"
        try:
            client.command(alter)
        except Error as e:
            if error_code(e) != ACCESS_DENIED:
                raise
            # lifemon's account may not alter tables (deploy/clickhouse-init): the operator does it
            log.warning(
                "%s.%s.%s keeps pseudonyms %s, policy/storage.yaml says %d days after %s, and "
                "lifemon's ClickHouse account may not change a table; an administrator runs: %s",
                database,
                table,
                column,
                f"{now[2]} days after {now[1]}" if now else "forever",
                days,
                clock,
                alter,
            )
