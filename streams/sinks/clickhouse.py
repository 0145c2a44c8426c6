"""ClickHouse outputs: column-oriented batch inserts, each with an insert_deduplication_token
derived from its content, so a retried or replayed insert is dropped by the server.

A flush counts as written only once it can be read back (`verify`), and rows the server refuses
for good are split off and handed to `on_reject` instead of blocking the batch forever
(docs/clickhouse-faults.md)."""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import Any

import orjson

from schemas.incident import Incident
from schemas.models import Alert
from streams.alerts import alert_version, incident_version, to_ocsf
from streams.clickhouse import classify, location, unavailable
from streams.codecs import DeadLetter
from streams.sinks import native
from streams.sinks.base import FatalSinkError, Sink, SinkError

log = logging.getLogger(__name__)

# key columns of these types can be bound as query parameters exactly as they were inserted
_BINDABLE = re.compile(r"^(LowCardinality\()?(String|U?Int(8|16|32|64))\)?$")


@dataclass(frozen=True)
class Rejected:
    """An item ClickHouse refused for good (a value its column type cannot hold), and why."""

    item: Any
    reason: str


@dataclass(frozen=True)
class _Probe:
    """What the sink learns of its table once: the type of each column it inserts (so an insert
    need not ask the server with DESCRIBE first), and how to read a batch back: the bindable
    leading key columns, and for chDB the table's metadata file."""

    column_types: list[str] | None  # None: a column the table lacks; the driver then asks and says so
    key: list[tuple[int, str, str]]  # (index in the row, column, type)
    metadata_file: Path | None


def _one_line(e: BaseException) -> str:
    """The first line of an error and of its innermost cause, which names the bad value."""
    text = (str(e).strip().splitlines() or [type(e).__name__])[0]
    inner = e.__cause__
    while inner is not None and inner.__cause__ is not None:
        inner = inner.__cause__
    if inner is not None and str(inner).strip():
        text = f"{text.removesuffix(': error')}: {str(inner).strip().splitlines()[0]}"
    return text[:400]


def _report(name: str, table: str, rejected: list[Rejected]) -> None:
    log.error(
        f"{name}: {len(rejected)} row(s) refused by {table} for good and not stored: {rejected[0].reason}",
        extra={"sink": name, "table": table, "rows": len(rejected)},
    )


class ClickHouseTableSink(Sink[Any]):
    """One ClickHouse table. `write` raises SinkError while the server is unreachable (retry),
    FatalSinkError when the table, its database or chDB's data directory is gone (stop: retrying
    writes into nothing), and hands refused rows to `on_reject` (default: one error log line)."""

    def __init__(
        self,
        client: Any,
        table: str,
        columns: Sequence[str],
        to_row: Callable[[Any], Sequence[Any]],
        name: str,
        on_reject: Callable[[list[Rejected]], None] | None = None,
        settings: dict[str, Any] | None = None,
    ):
        super().__init__()
        self.settings = settings or {}  # the table's own insert settings, beside the dedup token
        self.client, self.table, self.columns, self.to_row, self.name = (
            client,
            table,
            list(columns),
            to_row,
            name,
        )
        self.on_reject = on_reject or (lambda rejected: _report(name, table, rejected))
        self._probe: _Probe | None = None
        # None: each write reads its batch back itself. A list (the runtime's sinks): the batches
        # written, with the last row each, that `verify_together` reads back in one query
        self.unverified: list[tuple[list[Any], Sequence[Any]]] | None = None
        # the sinks (of the same client) whose tables this one's probe asks about too, in the same
        # two queries: one table's took ~3.5 ms of CPU, and the runtime's first checkpoint asked for
        # five (`Tables.read_back_together` sets it)
        self.probed_with: list[ClickHouseTableSink] = []

    def write(self, items: list[Any]) -> None:
        # rows built upstream (rollups: about one per event in a replay) are not copied one by one
        rows = items if self.to_row is identity_row else [self.to_row(i) for i in items]
        # asked before the insert, whose errors are sorted as one insert's: a table gone already
        # is FatalSinkError from here, not an outage to wait out
        types = (self._probe or self._load_probe("insert into")).column_types
        if set(map(len, rows)) - {len(self.columns)}:  # lifemon's own fault, not the data's: stop
            raise FatalSinkError(
                f"{self.name}: a row built for {self.table} does not have its {len(self.columns)} columns"
            )
        rejected = self._insert_or_split(items, rows, types)
        if rejected and types is not None:
            rejected = self._retyped(items, rows, types, rejected)
        if len(rejected) < len(items):
            last = rows[-1] if not rejected else self._last_accepted(items, rows, rejected)
            if self.unverified is None:
                self.verify(last)
            elif not rejected:  # the batch itself, which `flush` handed over (rollups: ~1 row an event)
                self.unverified.append((items, last))
            else:
                refused = {id(r.item) for r in rejected}
                self.unverified.append(([i for i in items if id(i) not in refused], last))
        if rejected:
            self.on_reject(rejected)

    def _retyped(
        self, items: list[Any], rows: list[Sequence[Any]], types: list[str], rejected: list[Rejected]
    ) -> list[Rejected]:
        """Refused rows once more if the table was altered or re-created since its types were
        learnt: what the old types could not encode may fit the table's own. They were never
        inserted, so their tokens are new and nothing is written twice."""
        fresh = self._load_probe("insert into").column_types
        if fresh == types:
            return rejected
        refused = {id(r.item) for r in rejected}
        again = [(i, row) for i, row in zip(items, rows, strict=True) if id(i) in refused]
        return self._insert_or_split([i for i, _ in again], [row for _, row in again], fresh)

    # -- insert ---------------------------------------------------------------------------------
    def _insert(self, rows: list[Sequence[Any]], types: list[str] | None) -> None:
        # strings and integers only (the rollups): Native blocks built in C, not by the driver
        columns = native.columns(self.columns, types)
        encoded = native.blocks(rows, columns) if columns is not None and rows else None
        if encoded is not None:
            self.client.raw_insert(
                self.table,
                self.columns,
                encoded,
                settings={**self.settings, "insert_deduplication_token": hashlib.sha256(encoded).hexdigest()},
                fmt="Native",
            )
            return
        try:
            content = orjson.dumps(rows, default=str)
        except TypeError:  # an int beyond 64 bits: let the driver refuse it, naming the column
            content = repr(rows).encode()
        token = hashlib.sha256(content).hexdigest()
        # a column at a time in C: zip(*rows) over a replay's ~100 000 rollup rows cost 2-4x more
        data = [list(map(itemgetter(i), rows)) for i in range(len(self.columns))]
        self.client.insert(
            self.table,
            data,
            column_names=self.columns,
            # known types spare the query the driver sends before each insert (DESCRIBE TABLE),
            # one chDB statement of ~1.5 ms CPU per table per checkpoint (docs/benchmarks.md)
            column_type_names=types,
            column_oriented=True,
            settings={**self.settings, "insert_deduplication_token": token},
        )

    def _insert_or_split(
        self, items: list[Any], rows: list[Sequence[Any]], types: list[str] | None
    ) -> list[Rejected]:
        """Insert the rows; on refused data, bisect to find the refused ones and insert the rest.

        k bad rows among n cost O(k log n) inserts. The halves are deterministic, so a batch retried
        after an outage in mid-split re-sends the same sub-batches and their tokens drop repeats."""
        try:
            self._insert(rows, types)
            return []
        except Exception as e:  # the driver raises many types; classify sorts them
            kind = classify(e)
            if kind == "gone":
                raise self._gone(_one_line(e)) from e
            if kind == "outage":
                raise self._outage("insert into", e) from e
            if len(rows) == 1:
                return [Rejected(items[0], f"{self.table} refused the row: {_one_line(e)}")]
        mid = len(rows) // 2
        return self._insert_or_split(items[:mid], rows[:mid], types) + self._insert_or_split(
            items[mid:], rows[mid:], types
        )

    @staticmethod
    def _last_accepted(
        items: list[Any], rows: list[Sequence[Any]], rejected: list[Rejected]
    ) -> Sequence[Any]:
        refused = {id(r.item) for r in rejected}
        return next(
            row for item, row in zip(reversed(items), reversed(rows), strict=True) if id(item) not in refused
        )

    # -- verify ---------------------------------------------------------------------------------
    def verify(self, row: Sequence[Any]) -> None:
        """Prove the batch whose last row is `row` is stored, before the runtime commits past it.

        One query per flush: the table exists and a row with `row`'s leading key is readable. With
        chDB also the table's metadata file must still be on disk: an engine whose directory was
        deleted keeps accepting and even reading rows from memory, but loses them all at restart."""
        count, parameters = self._count_query(row, "")
        if not self._read("read-back from", f"SELECT {count}", parameters)[0][0]:
            raise self._unreadable()

    def _count_query(self, row: Sequence[Any], tag: str) -> tuple[str, dict[str, Any]]:
        """The subquery that counts the rows with `row`'s leading key, its parameters named after
        `tag`; FatalSinkError if chDB's metadata file of the table has gone."""
        probe = self._probe or self._load_probe("read-back from")
        if probe.metadata_file is not None and not probe.metadata_file.exists():
            raise self._gone(f"chDB's file {probe.metadata_file} has vanished (data directory deleted?)")
        where = " AND ".join(f"`{col}` = {{{tag}k{i}:{typ}}}" for i, (_, col, typ) in enumerate(probe.key))
        parameters = {f"{tag}k{i}": row[idx] for i, (idx, _, _) in enumerate(probe.key)}
        return f"(SELECT count() FROM {self.table} WHERE {where or '1'})", parameters

    def _unreadable(self) -> SinkError:
        cols = ", ".join(col for _, col, _ in (self._probe.key if self._probe else ())) or "any row"
        return SinkError(
            f"{self.name}: {self.table} acknowledged the insert but its last row ({cols}) "
            "cannot be read back; the batch is kept and sent again"
        )

    def take_back(self) -> None:
        """The batches written since the last `verify_together` go back into the buffer, unproven."""
        for items, _ in reversed(self.unverified or []):
            self._buffer = items + self._buffer
        if self.unverified is not None:
            self.unverified = []

    def _read(self, action: str, sql: str, parameters: dict[str, Any]) -> Sequence[Sequence[Any]]:
        """A query's rows; its failure as the sink's: the table gone, or an outage to wait out."""
        try:
            return self.client.query(sql, parameters=parameters).result_rows
        except Exception as e:  # the driver raises many types; classify sorts them
            if classify(e) == "gone":
                raise self._gone(_one_line(e)) from e
            raise self._outage(action, e) from e

    def _load_probe(self, action: str) -> _Probe:
        """The table's column types and read-back key, asked once (with those of the tables of
        `probed_with` not asked yet); `action` names the step that needed them in the message of
        an outage."""
        due = [self, *(s for s in self.probed_with if s is not self and s._probe is None)]
        named = [s.table.rpartition(".")[::2] for s in due]  # (database, table); '' the current one
        parameters = {"d": sorted({d for d, _ in named}), "t": sorted({t for _, t in named})}
        among = "database IN arrayMap(d -> if(d = '', currentDatabase(), d), {d:Array(String)}) AND"
        try:
            found = self.client.query(
                "SELECT database, name, metadata_path, sorting_key, currentDatabase() FROM system.tables "
                f"WHERE {among} name IN {{t:Array(String)}}",
                parameters=parameters,
            ).result_rows
            types: dict[tuple[str, str], dict[str, str]] = {}
            if found:
                for database, table, column, column_type in self.client.query(
                    f"SELECT database, table, name, type FROM system.columns WHERE {among} table IN {{t:Array(String)}}",
                    parameters=parameters,
                ).result_rows:
                    types.setdefault((database, table), {})[column] = column_type
        except Exception as e:  # the driver raises many types; classify sorts them
            if classify(e) == "gone":
                raise self._gone(_one_line(e)) from e
            raise self._outage(action, e) from e
        tables = {(row[0], row[1]): row for row in found}
        current = found[0][4] if found else ""
        wheres = [(database or current, table) for database, table in named]
        if wheres[0] not in tables:
            raise self._gone("no such table")
        for sink, where in zip(due[1:], wheres[1:], strict=True):
            if where in tables:  # another sink's table missing: its own probe says so, when it needs one
                sink._probe = sink._probe_of(tables[where][2], tables[where][3], types.get(where, {}))
        _, _, metadata_path, sorting_key, _ = tables[wheres[0]]
        self._probe = self._probe_of(metadata_path, sorting_key, types.get(wheres[0], {}))
        return self._probe

    def _probe_of(self, metadata_path: str, sorting_key: str, types: dict[str, str]) -> _Probe:
        """The probe of this sink's table from what system.tables and system.columns say of it."""
        key = []
        for col in (c.strip().strip("`") for c in sorting_key.split(",") if c.strip()):
            # the prefix stops at an expression, a column not inserted, or a type not bound exactly
            if col not in self.columns or not _BINDABLE.match(types.get(col, "")):
                break
            key.append((self.columns.index(col), col, types[col].removeprefix("LowCardinality(").rstrip(")")))
        chdb_path = None if getattr(self.client, "url", None) else getattr(self.client, "path", None)
        metadata_file = (
            Path(chdb_path).resolve() / metadata_path if chdb_path and chdb_path != ":memory:" else None
        )
        column_types = [types[c] for c in self.columns] if set(self.columns) <= types.keys() else None
        return _Probe(column_types, key, metadata_file)

    # -- errors ---------------------------------------------------------------------------------
    def _gone(self, why: str) -> FatalSinkError:
        return FatalSinkError(
            f"{self.name}: {self.table} is gone ({why}); nothing more can be stored there. "
            "Everything it held is lost: restart lifemon to re-create the schema, then replay the "
            "source topics to rebuild alerts and state (docs/clickhouse-faults.md)"
        )

    def _outage(self, action: str, e: BaseException) -> SinkError:
        failure = unavailable(location(self.client), e)
        return SinkError(f"{self.name}: {action} {self.table} failed: {failure or _one_line(e)}")


def verify_together(sinks: Sequence[ClickHouseTableSink]) -> None:
    """`verify` every batch the sinks wrote since the last call (`unverified`), in one query of a
    subquery each: a chDB statement costs ~1.5 ms of CPU and a subquery ~0.2 ms more, and each
    checkpoint wrote alerts, incidents, rollups and stats, read back one query each. A sink whose
    batch is not proven stored takes its batches back (`take_back`) and raises the error its own
    `verify` would; the others' count as written. A query that fails is asked again sink by sink,
    for the error of the table at fault. The sinks share one client (the runtime's `Tables`)."""
    due = [(sink, row) for sink in sinks for _, row in sink.unverified or ()]
    if not due:
        return
    queries: list[tuple[str, dict[str, Any]]] = []
    for j, (sink, row) in enumerate(due):
        try:
            queries.append(sink._count_query(row, f"s{j}"))
        except SinkError:
            sink.take_back()
            raise
    parameters = {name: value for _, named in queries for name, value in named.items()}
    try:
        sql = "SELECT " + ", ".join(count for count, _ in queries)
        found = due[0][0].client.query(sql, parameters=parameters).result_rows[0]
    except Exception:  # the driver raises many types: the sinks' own queries sort them
        for sink, row in due:
            try:
                sink.verify(row)
            except SinkError:
                sink.take_back()
                raise
        found = [1] * len(due)
    unproven = [sink for (sink, _), n in zip(due, found, strict=True) if not n]
    for sink, _ in due:  # the others' batches count as written
        if sink in unproven:
            sink.take_back()
        else:
            sink.unverified = []
    if unproven:
        raise unproven[0]._unreadable()


ALERT_COLUMNS = (
    "alert_id",
    "revision",
    "status",
    "detector",
    "rule_id",
    "rule_version",
    "severity",
    "title_zh",
    "title_en",
    "summary",
    "regulation",
    "regulation_en",
    "jr_class",
    "actor_id",
    "actor_org",
    "subject_count",
    "subjects_sample",
    "counts",
    "evidence_event_ids",
    "event_count",
    "window_start",
    "window_end",
    "first_seen",
    "last_seen",
    "ocsf",
    "version",
)


def alert_row(a: Alert) -> tuple:
    return (
        a.alert_id,
        a.revision,
        a.status.value,
        a.detector,
        a.rule_id,
        a.rule_version,
        a.severity.value,
        a.title_zh,
        a.title_en,
        a.summary,
        a.regulation,
        a.regulation_en,
        a.jr_class,
        a.actor_id or "",
        a.actor_org or "",
        a.subject_count,
        a.subjects_sample,
        a.counts,
        a.evidence_event_ids,
        a.event_count,
        a.window_start,
        a.window_end,
        a.first_seen,
        a.last_seen,
        orjson.dumps(to_ocsf(a)).decode(),
        alert_version(a),
    )


RAISED_LOOKUP = 2000  # alert ids asked at once: 2 000 of 64 characters, 130 kB of a URL


class AlertSink(ClickHouseTableSink):
    """The alerts table's sink: ALERT_COLUMNS and `raised_at`, when lifemon first stored the alert
    (clickhouse/001_lifemon.sql), where the SOC's times to acknowledge and resolve it start.

    The table keeps an alert's newest row only, so the time is carried forward here: each write
    reads it from the rows stored of its alerts (the first revision's while unmerged, then the
    newest's, which carries it), and gives an alert none is stored of this write's time (`clock`),
    every revision of it in the batch alike. A revised alert stored before the column carries its
    NULL (unknown) on. A batch sent again after an outage reads what its first try stored, builds
    the same rows, and their token drops the repeat; a replay into a database that holds its
    alerts keeps their first time."""

    def __init__(
        self,
        client: Any,
        table: str,
        name: str,
        on_reject: Callable[[list[Rejected]], None] | None = None,
        clock: Callable[[], float] = time.time,
    ):
        super().__init__(client, table, (*ALERT_COLUMNS, "raised_at"), self._row, name, on_reject)
        self.clock = clock
        self._raised: dict[str, int | None] = {}

    def write(self, items: list[Alert]) -> None:
        ids = list(dict.fromkeys(a.alert_id for a in items))
        self._raised = dict.fromkeys(ids, int(self.clock() * 1000))
        # in slices: a server takes the ids in the request's URL, which it caps (1 MiB by default)
        for start in range(0, len(ids), RAISED_LOOKUP):
            stored = self._read(
                "read raised_at from",
                f"SELECT alert_id, toUnixTimestamp64Milli(min(raised_at)) FROM {self.table} "
                "WHERE alert_id IN {ids:Array(String)} GROUP BY alert_id",
                {"ids": ids[start : start + RAISED_LOOKUP]},
            )
            self._raised.update((alert_id, at) for alert_id, at in stored)
        super().write(items)

    def _row(self, a: Alert) -> tuple:
        return (*alert_row(a), self._raised[a.alert_id])


INCIDENT_COLUMNS = (
    "incident_id",
    "revision",
    "status",
    "key_kind",
    "key",
    "severity",
    "leakage_classes",
    "title_zh",
    "title_en",
    "subjects_distinct",
    "records",
    "first_seen",
    "last_seen",
    "first_due",
    "alert_ids",
    "incident",
    "version",
)


def incident_row(i: Incident) -> tuple:
    return (
        i.incident_id,
        i.revision,
        i.status.value,
        i.group,
        i.key,
        i.severity.value,
        i.leakage_classes,
        i.title_zh,
        i.title_en,
        i.subjects.distinct,
        i.records,
        i.first_seen,
        i.last_seen,
        min((d.due for d in i.deadlines), default=i.first_seen),
        [a.alert_id for a in i.alerts],
        orjson.dumps(i.model_dump(mode="json")).decode(),
        # by content, as the alerts' (clickhouse/001_lifemon.sql): its revision, the sum of its
        # alerts' (revised at most once per batch), is lower in a replay that batches differently
        incident_version(i),
    )


ROLLUP_COLUMNS = (
    "topic",
    "partition",
    "block",
    "minute",
    "stream",
    "jr_class",
    "org",
    "outcome",
    "action",  # an access event's (view, export, ...); '' on other streams and rows from before it
    "events",
    "version",
    "topic_id",  # the incarnation of the topic the block was read from (clickhouse/001_lifemon.sql)
)
DEAD_LETTER_COLUMNS = ("topic", "partition", "offset", "kind", "field", "message", "seen_at")
STATS_COLUMNS = (
    "ts",
    "instance",
    "stream",
    "events",
    "dead_letters",
    "alerts",
    "lag",
    "events_per_s",
    "customers",
)


def dead_letter_row(d: DeadLetter) -> tuple:
    return (d.raw.topic, d.raw.partition, d.raw.offset, d.kind, d.field, d.message, d.refused_at)


def identity_row(row: Sequence[Any]) -> Sequence[Any]:
    return row
