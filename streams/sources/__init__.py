"""Raw-log sources: database audit and SFTP log lines, as shippers put them on Kafka, decoded in the
same batch pipeline into the canonical AccessEvent / TransferEvent (docs/sources.md); HAR captures
into SdkTelemetryEvents (docs/har.md).

`RawDecoder` wraps the canonical `Decoder` and has its interface: records of a raw topic are
unwrapped (plain line or shipper JSON envelope), parsed by the topic's parser, mapped through
`policy/sources.yaml`, then judged at the same event-time door as every other event; records of
any other topic go to the canonical decoder. Noise (server messages, connection lines) is
skipped and counted in `skipped`; an entry that should have parsed and did not is a dead letter
with its reason; objects the mapping does not know are counted in `gaps`.
"""

from __future__ import annotations

import logging
import traceback
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import orjson

from policy import load_policy
from policy.sources import SourceMapping, load_sources
from streams.codecs import DeadLetter, Decoded, Decoder, RawRecord
from streams.config import Config
from streams.sealed import SEALED, Sealed, Sealer
from streams.sources.canonical import Canonical
from streams.sources.envelope import EnvelopeError, Line, unwrap
from streams.sources.har import HarParser
from streams.sources.mariadb_audit import MariadbAuditParser
from streams.sources.pgaudit import PgauditParser
from streams.sources.records import DbStatement, FileHandover, Parsed
from streams.sources.sftp import SftpParser
from streams.stats import Stats

log = logging.getLogger(__name__)


class Parser(Protocol):
    def parse(
        self, items: list[tuple[RawRecord, Line]], carry: dict[str, Any], final: bool = False
    ) -> Parsed:
        """What a batch of one partition's lines completes. `carry` holds what the parser keeps
        for the partition's next batch (JSON, or objects with `to_json()`): a statement whose last
        line may be there, table lines before their query's line. `final`: no more lines are
        coming for now, so no statement may be kept waiting for one."""
        ...


CARRY = "~raw\x1f"  # + topic: a raw topic's carry in its partition's store (one key, beside the detectors')


def parsers_for(config: Config) -> dict[str, Parser]:
    """Enabled raw topic -> its parser."""
    rs = config.raw_sources
    found: dict[str, Parser] = {}
    if rs.pgaudit.enabled:
        pg = rs.pgaudit
        found[pg.topic] = PgauditParser(pg.log_line_prefix, pg.format == "csvlog", pg.log_rows, pg.timezone)
    if rs.mariadb.enabled:
        found[rs.mariadb.topic] = MariadbAuditParser(rs.mariadb.timezone, rs.mariadb.query_log_limit)
    if rs.sftp.enabled:
        found[rs.sftp.topic] = SftpParser(rs.sftp.timezone)
    if rs.har.enabled:
        found[rs.har.topic] = HarParser.for_config(config)
    return found


def _zone_hours(offset_ms: int) -> int | None:
    """The whole hours (1 to 14, within a quarter hour) an offset is, a time zone's worth; else None."""
    seconds = abs(offset_ms) // 1000
    hours = round(seconds / 3600)
    return hours if 1 <= hours <= 14 and abs(seconds - hours * 3600) <= 900 else None


def _zone_hint(offset_ms: int) -> str:
    """A raw log's time off by about a whole number of hours is a log read in the wrong zone."""
    if hours := _zone_hours(offset_ms):
        return (
            f"; about {hours} h off, a time zone's worth: is the source's `timezone` "
            "(raw_sources.<source>.timezone) the server's?"
        )
    return ""


# A raw partition's records behind their Kafka timestamps by the same whole hours for this long
# of Kafka time: a log read in the wrong zone (a UTC server read as Asia/Shanghai lands 8 h early,
# accepted, since late lines are legal). One batch cannot tell that from a replay of old logs; a
# replay's lag is not steady for an hour, as it ships hours of log in minutes
STEADY_BEHIND_MS = 3_600_000


def withheld_topics(config: Config) -> frozenset[str]:
    """Raw topics whose dead letters keep no byte of the record (streams/sinks/kafka.py
    `withholding_dead_letters`): a HAR capture holds the app's login passwords."""
    har = config.raw_sources.har
    return frozenset({har.topic}) if har.enabled else frozenset()


def unread_raw_topics(config: Config, existing: set[str] | dict[str, Any]) -> list[str]:
    """Warnings for raw topics on the broker whose source this config leaves off: `lifemon run`
    does not read them, so what a shipper (`lifemon ship`, Filebeat) put there is not monitored."""
    return [
        f"topic {source.topic} is on the broker, but raw_sources.{name}.enabled is false in this "
        f"config: its records are not read; set `raw_sources.{name}.enabled: true` to monitor them"
        for name in type(config.raw_sources).model_fields
        if not (source := getattr(config.raw_sources, name)).enabled and source.topic in existing
    ]


def zones_by_default(config: Config) -> list[str]:
    """Warnings for enabled raw sources whose `timezone` the config does not set: a time without an
    offset is then read in the bank's zone, the default since lifemon read UTC; a server on UTC
    must say so, or every time it writes is read 8 hours early."""
    return [
        f"raw_sources.{name}.timezone is not set: times the server writes without an offset are read "
        f"as {source.timezone} (the bank's; UTC before); set it to the server's zone (`timezone: UTC` "
        "for a server on UTC)"
        for name in type(config.raw_sources).model_fields
        if (source := getattr(config.raw_sources, name)).enabled
        and "timezone" in type(source).model_fields
        and "timezone" not in source.model_fields_set
    ]


class RawDecoder:
    def __init__(
        self,
        inner: Decoder,
        parsers: dict[str, Parser],
        mapping: SourceMapping,
        stats: Stats | None = None,
        state: Callable[[int], Any] | None = None,
        sealer: Sealer | None = None,
        fingerprint: Callable[[str], str] | None = None,
    ):
        """`state(partition)`: the partition's checkpointed store (the engine's), where a parser's
        carry waits for the next batch, sealed by `sealer` (it holds statements as the database
        logged them); without a store (tests, tools) it waits in memory. `fingerprint`: keyed, for
        names a log holds that may be built from a customer's id (streams/sources/canonical.py)."""
        if state is not None and sealer is None:
            raise ValueError("a raw decoder that keeps its carry in a store needs a sealer for it")
        self.inner, self.parsers, self.state, self.sealer = inner, parsers, state, sealer
        stats = stats or Stats()
        self.skipped: Counter = stats.skipped  # reason -> lines that are no data access
        self.canonical = Canonical(mapping, stats.gaps, fingerprint)
        self._carried: dict[tuple[str, int], dict[str, Any]] = {}
        # (topic, partition) -> (whole hours, Kafka time since when) its records have run that far
        # behind, while they do; and those warned of
        self._behind: dict[tuple[str, int], tuple[int, int]] = {}
        self._warned_behind: set[tuple[str, int]] = set()

    @classmethod
    def for_config(
        cls,
        inner: Decoder,
        config: Config,
        stats: Stats | None = None,
        state: Callable[[int], Any] | None = None,
        sealer: Sealer | None = None,
        fingerprint: Callable[[str], str] | None = None,
    ) -> RawDecoder | Decoder:
        """The canonical decoder itself when no raw source is enabled."""
        parsers = parsers_for(config)
        if not parsers:
            return inner
        policy_dir = config.policy_dir
        policy = load_policy(policy_dir)
        mapping = load_sources(
            policy_dir, policy.classification, policy.purposes.purposes, policy.organisation
        )
        return cls(inner, parsers, mapping, stats, state, sealer, fingerprint)

    @property
    def topics(self) -> list[str]:
        return list(self.parsers)

    def decode(self, stream: str, raws: Sequence[RawRecord], check_time: bool = True) -> Decoded:
        parser = self.parsers.get(raws[0].topic) if raws else None
        if parser is None:
            return self.inner.decode(stream, raws, check_time)
        out = Decoded()
        items = []
        read = getattr(parser, "unwrap", unwrap)  # a HAR record is JSON itself, not a log line in an envelope
        for raw in raws:
            if not raw.value:
                out.dead.append(
                    DeadLetter(raw, "empty", "", "record has no value (tombstone or empty message)")
                )
                continue
            try:
                items.append((raw, read(raw.value)))
            except EnvelopeError as e:
                out.dead.append(DeadLetter(raw, "malformed", "", str(e)))
        carry = self._carry(raws[0].topic, raws[0].partition)
        try:
            parsed = parser.parse(items, carry)
        except Exception as e:  # a parser's defect: the batch again a record at a time, the culprit dead
            parsed = self._one_by_one(parser, items, carry, e)
        self._keep(raws[0].topic, raws[0].partition, carry)
        return self._finish(stream, parsed, out)

    @staticmethod
    def _one_by_one(
        parser: Any, items: list[tuple[RawRecord, Any]], carry: dict[str, Any], first: Exception
    ) -> Parsed:
        """A parser that raised on a batch is given its records one at a time: those it reads go
        on, each it fails on is a dead letter, and the process never dies on data. The failure
        is logged by type and place, never its message (it may quote the record). What the failed
        attempt held (an open session, a statement) stays held: a copy of it before every batch
        cost 0.2 s a batch with 100 000 SFTP sessions open, to guard a defect's path."""
        where = traceback.extract_tb(first.__traceback__)[-1]
        log.error(
            f"the {items[0][0].topic} parser failed ({type(first).__name__} at "
            f"{Path(where.filename).name}:{where.lineno}), a lifemon defect: its records are read one "
            "at a time and each it fails on goes to the dead-letter topic; please report it with one",
            extra={"topic": items[0][0].topic},
        )
        out = Parsed()
        for raw, item in items:
            try:
                one = parser.parse([(raw, item)], carry)
            except Exception as e:
                reason = f"the parser failed on it ({type(e).__name__}): a lifemon defect, please report it"
                out.dead.append(DeadLetter(raw, "parser_error", "", reason))
                continue
            out.found += one.found
            out.skipped.update(one.skipped)
            out.dead += one.dead
        return out

    def flush(self, stream: str, topic: str, partition: int) -> Decoded:
        """The partition is read to its end: what its parser kept waiting for a line that has not
        come (the last statement of each session) is complete now."""
        carry = self._carry(topic, partition)
        if not carry:
            return Decoded()
        parsed = self.parsers[topic].parse([], carry, final=True)
        self._keep(topic, partition, carry)
        return self._finish(stream, parsed, Decoded())

    def _finish(self, stream: str, parsed: Parsed, out: Decoded) -> Decoded:
        out.dead += parsed.dead
        self.skipped.update(parsed.skipped)
        gaps = self.canonical.found
        for raw, found in parsed.found:
            try:
                if isinstance(found, DbStatement):
                    event = self.canonical.access(found)
                elif isinstance(found, FileHandover):
                    event = self.canonical.transfer(found)
                else:  # a HAR parser finds the SDK events themselves
                    event = found
            except Exception as e:  # the process never dies on data, and the batch's others stand
                gaps.clear()
                log.error(
                    f"reading a {raw.topic} record failed ({type(e).__name__}), a lifemon defect: please report it"
                )
                reason = f"reading it failed ({type(e).__name__}): a lifemon defect, please report it"
                out.dead.append(DeadLetter(raw, "parser_error", "", reason))
                continue
            out.gaps += [(raw.offset, found.ts_ms, kind, name) for kind, name in gaps]
            gaps.clear()
            if event is None:
                self.skipped[f"{type(found).__name__}: nothing the mapping monitors"] += 1
            else:
                out.ok.append((raw, event))
        if out.ok:  # the same door as every stream: a blank key, an event time astray
            self.inner._check_keys(stream, out)
            self.inner._check_time(stream, out, _zone_hint)
            self._steadily_behind(out.ok)
        return out

    def _steadily_behind(self, pairs: list[tuple[RawRecord, Any]]) -> None:
        """Warn once per partition whose accepted records have run the same whole hours behind
        their Kafka timestamps for `STEADY_BEHIND_MS`: the event-time rule refuses a log hours
        ahead with a hint, and only this says it of one hours behind."""
        stamped: dict[tuple[str, int], list[tuple[int, int | None]]] = {}
        for raw, ev in pairs:
            if raw.timestamp > 0:
                lag = raw.timestamp - ev.ts
                stamped.setdefault((raw.topic, raw.partition), []).append(
                    (raw.timestamp, _zone_hours(lag) if lag > 0 else None)
                )
        for tp, found in stamped.items():
            hours = {h for _, h in found}
            if len(hours) != 1 or (h := hours.pop()) is None:
                self._behind.pop(tp, None)
                continue
            run = self._behind.get(tp)
            since = run[1] if run is not None and run[0] == h else min(t for t, _ in found)
            self._behind[tp] = (h, since)
            if max(t for t, _ in found) - since >= STEADY_BEHIND_MS and tp not in self._warned_behind:
                self._warned_behind.add(tp)
                log.warning(
                    f"records on {tp[0]} partition {tp[1]} have been dated about {h} h behind their "
                    f"Kafka timestamps for {STEADY_BEHIND_MS // 60_000} minutes: is the source's "
                    "`timezone` (raw_sources.<source>.timezone) the server's? (a UTC log read as "
                    "Asia/Shanghai lands 8 h early, and every time it holds with it)",
                    extra={"topic": tp[0], "partition": tp[1], "behind_h": h},
                )

    def _carry(self, topic: str, partition: int) -> dict[str, Any]:
        if self.state is None:
            return self._carried.setdefault((topic, partition), {})
        held = self.state(partition).get(CARRY + topic)
        if isinstance(held, Sealed):
            return held.value
        if held and isinstance(
            held.get(SEALED), str
        ):  # restored from a checkpoint (a session's value is a dict)
            assert self.sealer is not None
            return orjson.loads(self.sealer.open(held[SEALED]))
        return held or {}  # nothing held, or held in the clear by a lifemon before sealing

    def _keep(self, topic: str, partition: int, carry: dict[str, Any]) -> None:
        """The carry goes into the partition's store, so the next checkpoint saves it with the
        offsets past its lines: a restart resumes with it (checkpoint-safe)."""
        if self.state is None:
            return
        store = self.state(partition)
        if carry:
            assert self.sealer is not None
            store.put(CARRY + topic, Sealed(carry, self.sealer))
        elif store.get(CARRY + topic) is not None:
            store.delete(CARRY + topic)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


__all__ = ["RawDecoder", "parsers_for", "unread_raw_topics", "withheld_topics"]
