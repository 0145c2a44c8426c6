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

from collections import Counter
from collections.abc import Sequence
from typing import Any, Protocol

from policy import load_policy
from policy.sources import SourceMapping, load_sources
from streams.codecs import DeadLetter, Decoded, Decoder, RawRecord
from streams.config import Config
from streams.sources.canonical import Canonical
from streams.sources.envelope import EnvelopeError, Line, unwrap
from streams.sources.har import HarParser
from streams.sources.mariadb_audit import MariadbAuditParser
from streams.sources.pgaudit import PgauditParser
from streams.sources.records import DbStatement, FileHandover, Parsed
from streams.sources.sftp import SftpParser
from streams.stats import Stats


class Parser(Protocol):
    def parse(self, items: list[tuple[RawRecord, Line]]) -> Parsed: ...


def parsers_for(config: Config) -> dict[str, Parser]:
    """Enabled raw topic -> its parser."""
    rs = config.raw_sources
    found: dict[str, Parser] = {}
    if rs.pgaudit.enabled:
        pg = rs.pgaudit
        found[pg.topic] = PgauditParser(pg.log_line_prefix, pg.format == "csvlog", pg.log_rows, pg.timezone)
    if rs.mariadb.enabled:
        found[rs.mariadb.topic] = MariadbAuditParser(rs.mariadb.timezone)
    if rs.sftp.enabled:
        found[rs.sftp.topic] = SftpParser(rs.sftp.timezone)
    if rs.har.enabled:
        found[rs.har.topic] = HarParser.for_config(config)
    return found


class RawDecoder:
    def __init__(
        self, inner: Decoder, parsers: dict[str, Parser], mapping: SourceMapping, stats: Stats | None = None
    ):
        self.inner, self.parsers = inner, parsers
        stats = stats or Stats()
        self.skipped: Counter = stats.skipped  # reason -> lines that are no data access
        self.canonical = Canonical(mapping, stats.gaps)

    @classmethod
    def for_config(cls, inner: Decoder, config: Config, stats: Stats | None = None) -> RawDecoder | Decoder:
        """The canonical decoder itself when no raw source is enabled."""
        parsers = parsers_for(config)
        if not parsers:
            return inner
        policy_dir = config.policy_dir
        mapping = load_sources(policy_dir, load_policy(policy_dir).classification)
        return cls(inner, parsers, mapping, stats)

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
        parsed = parser.parse(items)
        out.dead += parsed.dead
        self.skipped.update(parsed.skipped)
        for raw, found in parsed.found:
            if isinstance(found, DbStatement):
                event = self.canonical.access(found)
            elif isinstance(found, FileHandover):
                event = self.canonical.transfer(found)
            else:  # a HAR parser finds the SDK events themselves
                event = found
            if event is None:
                self.skipped[f"{type(found).__name__}: nothing the mapping monitors"] += 1
            else:
                out.ok.append((raw, event))
        if out.ok:
            self.inner._check_time(stream, out)  # the same event-time door as every stream
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


__all__ = ["RawDecoder", "parsers_for"]
