"""Statements whose lines fall in two consumer batches: a pgaudit join (one line per table), a
denial (its ERROR, then its STATEMENT line), a server_audit query (its tables, then its QUERY line).
Counted once, whatever the split, and across a checkpoint and restart in between (what waits for
the next batch is in the partition's store)."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import entitlement, refs
from test_raw_sources import (
    ONCE_EXPECTED,
    PG_EXPECTED,
    TOPICS,
    ZH,
    entries,
    physical_lines,
    raw_config,
    records,
    summary,
)

from detectors import load_detectors
from policy import load_policy
from policy.sources import load_sources
from streams.codecs import Decoder, RawRecord
from streams.engine import PSEUDONYM_CHECK_KEY, Engine
from streams.pseudonym import Pseudonymizer, PseudonymKeyChanged
from streams.sealed import SealError
from streams.sources import RawDecoder, parsers_for
from streams.sources.pgaudit import HOLD_MS
from streams.stats import Stats

TOPIC = TOPICS["pgaudit"]
CONFIG = raw_config()
MAPPING = load_sources(None, load_policy().classification)


KEY = b"unit-test-key-0123456789"


def fresh(state: Any = None, key: bytes = KEY) -> RawDecoder:
    """A new raw decoder (as after a restart), without reading the policy again; with a store, its
    carry is sealed under `key` (the runtime's pseudonym key)."""
    sealer = Pseudonymizer(key).sealer() if state is not None else None
    return RawDecoder(Decoder(), parsers_for(CONFIG), MAPPING, Stats(), state, sealer)


LINES = entries("pgaudit.log")  # 16 entries; the last two are the analyst's join of 600 rows


def batch(values: list[bytes], first_offset: int) -> list[RawRecord]:
    return [RawRecord(TOPIC, 0, first_offset + i, v) for i, v in enumerate(values)]


def test_every_split_of_the_log_into_two_batches_gives_the_same_accesses() -> None:
    for k in range(1, len(LINES)):
        dec = fresh()
        first = dec.decode("access", batch(LINES[:k], 0))
        second = dec.decode("access", batch(LINES[k:], k))
        rest = dec.flush("access", TOPIC, 0)  # the partition read to its end
        got = [summary(ev) for _, ev in first.ok + second.ok + rest.ok]
        assert got == PG_EXPECTED, f"split after entry {k}"


def test_every_split_of_a_log_statement_once_join_gives_the_same_accesses() -> None:
    """pgaudit.log_statement_once: a join's later table line has no text of its own; in the next
    batch, it still takes the text from its first line, held in the carry."""
    lines, config = entries("pgaudit_statement_once.log"), raw_config(**ZH)
    for k in range(1, len(lines)):
        dec = RawDecoder(Decoder(), parsers_for(config), MAPPING, Stats())
        first = dec.decode("access", batch(lines[:k], 0))
        second = dec.decode("access", batch(lines[k:], k))
        rest = dec.flush("access", TOPIC, 0)
        assert [summary(ev) for _, ev in first.ok + second.ok + rest.ok] == ONCE_EXPECTED, f"split after {k}"


def test_every_split_of_the_server_audit_log_gives_the_same_accesses() -> None:
    """server_audit logs a query's tables before its QUERY line: the tables wait for it."""
    lines, topic = physical_lines("mariadb_audit.log"), TOPICS["mariadb"]
    whole = [summary(ev) for _, ev in fresh().decode("access", records(topic, lines)).ok]
    assert len(whole) == 5
    for k in range(1, len(lines)):
        dec = fresh()
        first = dec.decode("access", [RawRecord(topic, 0, i, v) for i, v in enumerate(lines[:k])])
        second = dec.decode("access", [RawRecord(topic, 0, k + i, v) for i, v in enumerate(lines[k:])])
        assert [summary(ev) for _, ev in first.ok + second.ok] == whole, f"split after line {k}"


def test_sftp_sessions_outlive_a_checkpoint_and_restart(catalog) -> None:
    """internal-sftp names the account on `session opened` only: a close after a restart of the
    monitor still knows whose session it is (the open sessions are in the partition's store)."""
    lines, topic, stamp = physical_lines("sftp.log"), TOPICS["sftp"], 1_796_143_500_000
    whole = [summary(ev) for _, ev in fresh().decode("transfer", records(topic, lines, stamp)).ok]
    assert len(whole) == 3
    # restarts right after each `session opened` and each `close`: between a session's lines
    for k in [i + 1 for i, line in enumerate(lines) if b"session opened" in line or b'close "' in line]:
        engine = Engine([], catalog, pseudonymize=Pseudonymizer(KEY))
        dec = fresh(engine.store)
        first = dec.decode("transfer", records(topic, lines[:k], stamp))
        checkpoint = engine.changes(0)
        engine.close()
        engine = Engine([], catalog, pseudonymize=Pseudonymizer(KEY))
        engine.restore(0, checkpoint)
        dec = fresh(engine.store)
        rest = [RawRecord(topic, 0, k + i, v, timestamp=stamp) for i, v in enumerate(lines[k:])]
        second = dec.decode("transfer", rest)
        assert second.dead == [], f"restart after line {k}"
        assert [summary(ev) for _, ev in first.ok + second.ok] == whole, f"restart after line {k}"
        engine.close()


def test_a_statement_is_held_only_until_its_session_or_its_server_moves_on() -> None:
    dec = fresh()
    first = dec.decode("access", batch(LINES[:7], 0))  # ends inside the teller's session
    # the teller's join (entries 6 and 7) is still open: its second table may come next
    assert [summary(ev)[3:] for _, ev in first.ok] == [(["C000042"], 1, ["customer_name", "mobile_phone"])]
    # the analyst's lines come 53 ms later from the same server: not yet HOLD_MS, so the teller's
    # last statement (branch_targets) waits too, then the partition's end completes both
    second = dec.decode("access", batch(LINES[7:], 7))
    assert len(second.ok) == 4
    assert [summary(ev) for _, ev in dec.flush("access", TOPIC, 0).ok] == PG_EXPECTED[5:]
    assert HOLD_MS == 1000


def test_a_join_split_across_a_checkpoint_and_restart_is_counted_once(policy, catalog) -> None:
    """The analyst's 600-row join: its first table line is the last record before a checkpoint,
    the second comes after a restart. One access of 600 rows, one alert of 600 (not 1 200)."""
    spec = next(s for s in load_detectors(policy) if s.kind == "bulk_query")

    def engine_and_decoder() -> tuple[Engine, Any]:
        engine = Engine([spec], catalog, pseudonymize=Pseudonymizer(KEY))
        engine.apply_reference(
            "entitlements",
            refs("entitlements", [entitlement("E1001"), entitlement("E1002", "br_dept_head", org="B01")]),
        )
        return engine, fresh(engine.store)

    engine, dec = engine_and_decoder()
    out = dec.decode("access", batch(LINES[:15], 0))
    alerts = engine.process("access", TOPIC, 0, out.ok)
    checkpoint = engine.changes(0)  # what the runtime writes to the changelog with offset 15
    engine.close()

    engine, dec = engine_and_decoder()
    engine.restore(0, checkpoint)
    assert dec.decode("access", batch(LINES[15:], 15)).ok == []  # still open: its session may go on
    out = dec.flush("access", TOPIC, 0)
    alerts += engine.process("access", TOPIC, 0, out.ok) + engine.drain()
    assert {(a.actor_id, a.counts["records"], a.counts.get("category_property")) for a in alerts} == {
        ("E1002", 600, 600)
    }
    # the teller's last statement and the analyst's join came back from the checkpoint; the join is
    # one access, at its last line, with the id its first line gives it (the same in any replay)
    assert [summary(ev) for _, ev in out.ok] == PG_EXPECTED[5:]
    raw, access = out.ok[-1]
    assert (raw.offset, access.event_id) == (15, "pg:-:15505:1:1:1796143436163")


def test_a_held_statement_reaches_the_changelog_without_a_raw_customer_id(catalog) -> None:
    """The session's last statement waits in the partition's carry for the next line, and the carry
    is state: the checkpoint sends it to the changelog topic. No raw customer id (nor a C3 value
    typed into a WHERE clause) may reach a topic (docs/security.md: the changelog holds pseudonyms);
    the statement's text names customer C000042."""
    k = next(i for i in range(1, len(LINES) + 1) if b"C000042" in b"".join(LINES[:i]))
    engine = Engine([], catalog, pseudonymize=Pseudonymizer(KEY))
    fresh(engine.store).decode("access", batch(LINES[:k], 0))
    changes = engine.changes(0)
    assert any(key.startswith(b"~raw") for key, _ in changes)  # the statement waits in the carry
    assert b"C000042" not in b"".join(v or b"" for _, v in changes)
    engine.close()


def test_a_carry_sealed_under_another_key_is_refused_by_name(catalog) -> None:
    """A restart with another pseudonym key of the same version: the state is refused as it is
    restored (its key check); state from before the check was kept still cannot open the held
    statements: said, not read as garbage (nor silently dropped)."""
    k = next(i for i in range(1, len(LINES) + 1) if b"C000042" in b"".join(LINES[:i]))
    engine = Engine([], catalog, pseudonymize=Pseudonymizer(KEY))
    fresh(engine.store).decode("access", batch(LINES[:k], 0))
    checkpoint = engine.changes(0)
    engine.close()
    other = b"another-key-9876543210"
    engine = Engine([], catalog, pseudonymize=Pseudonymizer(other))
    with pytest.raises(PseudonymKeyChanged):
        engine.restore(0, checkpoint)
    engine.close()
    engine = Engine([], catalog, pseudonymize=Pseudonymizer(other))
    engine.restore(0, [c for c in checkpoint if PSEUDONYM_CHECK_KEY.encode() not in c[0]])
    with pytest.raises(SealError, match="does not open with its pseudonym key"):
        fresh(engine.store, other).decode("access", batch(LINES[k:], k))
    engine.close()
