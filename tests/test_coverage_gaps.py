"""Coverage gaps: what the real servers' logs named that policy/sources.yaml lacks (a table, a login,
an SFTP account, a directory, a cursor whose rows pgaudit cannot count) is counted by kind and name
in the replay-safe rollups, beside unknown field ids; the `coverage_gaps` view in chDB and
`lifemon catalog gaps` list them; a replay of the same records does not count them twice."""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from conftest import access, fed
from test_raw_sources import FIXTURES, TOPICS, decode_all, entries, physical_lines, raw_config, records

from detectors import load_detectors
from policy.sources import load_sources
from streams.catalog_gaps import fold_tables, query_gaps, render
from streams.cli import main
from streams.clickhouse import apply_ddl
from streams.codecs import Decoder
from streams.engine import COVERAGE_GAP, Engine
from streams.pseudonym import Pseudonymizer, fingerprint
from streams.report import gather
from streams.report import render as render_report
from streams.sinks.clickhouse import ROLLUP_COLUMNS, ClickHouseTableSink, identity_row
from streams.sources import RawDecoder, parsers_for
from streams.stats import Stats

KEY = b"unit-test-key-0123456789"
SFTP_STAMP = 1_796_143_500_000  # syslog lines carry no year: the shipper's time gives it


def mapping_lacking(tmp_path: Path, policy: Any) -> Any:
    """The bank's mapping without csr_liu's login, the hk_fx account, and with partner_ins's drop box
    moved elsewhere: the servers' lines then name three more things it does not know."""
    text = (FIXTURES.parents[2] / "policy" / "sources.yaml").read_text()
    text = text.replace("    csr_liu: E1003\n", "")
    text = text.replace(
        '{pattern: "/upload/*", fields: [customer_name, mobile_phone, income]',
        '{pattern: "/outbox/*", fields: [customer_name, mobile_phone, income]',
    )
    start = text.index("  hk_fx:")
    (tmp_path / "sources.yaml").write_text(text[:start])
    return load_sources(tmp_path, policy.classification)


def run_logs(policy: Any, catalog: Any, mapping: Any) -> Engine:
    """The fixture logs through the raw decoder and the engine's rollups, as the runtime runs them."""
    engine = Engine([], catalog, Pseudonymizer(KEY))
    sealer = Pseudonymizer(KEY).sealer()
    dec = RawDecoder(Decoder(), parsers_for(raw_config()), mapping, Stats(), engine.store, sealer)
    for topic, lines, stamp in (
        (TOPICS["pgaudit"], entries("pgaudit.log"), 0),
        (TOPICS["mariadb"], physical_lines("mariadb_audit.log"), 0),
        (TOPICS["sftp"], physical_lines("sftp.log"), SFTP_STAMP),
    ):
        stream = "transfer" if topic == TOPICS["sftp"] else "access"
        out = decode_all(dec, stream, records(topic, lines, stamp))
        engine.process(stream, topic, 0, out.ok)
        engine.count_gaps(stream, topic, 0, out.gaps)
    return engine


EXPECTED = [  # (kind, object, stream, seen)
    ("cursor_rows_unknown", "corebank.core.accounts", "access", 1),
    ("db_user", "csr_liu", "access", 5),
    # server_audit has no row count: a SELECT naming no customer may have read the whole table
    ("rows_unknown", "cards.cardholders", "access", 1),
    ("sftp_account", "hk_fx", "transfer", 1),
    ("sftp_path", "partner_ins:/upload/", "transfer", 1),
    ("table", "corebank.core.branch_targets", "access", 1),
]


def test_objects_the_logs_name_and_the_mapping_lacks_are_counted_by_kind_and_name(
    policy, catalog, tmp_path
) -> None:
    engine = run_logs(policy, catalog, mapping_lacking(tmp_path, policy))
    # (topic, partition, block, minute, stream, class = kind, org = object, outcome = stream, n, version)
    rows = [r for r in engine.rollup_rows() if r[4] == COVERAGE_GAP]
    assert sorted((r[5], r[6], r[7], r[9]) for r in rows if r[5]) == EXPECTED
    fields = {r[6] for r in rows if not r[5]}  # kind "": an unknown field id
    # the unknown table is also the field id of the access it made: only its fingerprint is stored
    assert fields == {engine.fingerprint("db:corebank.core.branch_targets")}


@pytest.mark.integration
def test_the_coverage_gaps_view_and_catalog_gaps_list_them_once_after_a_replay(
    policy, catalog, tmp_path, ch, names, capsys, monkeypatch
) -> None:
    db = names["database"]
    apply_ddl(ch, db)
    apply_ddl(ch, db)  # idempotent
    sink = ClickHouseTableSink(ch, f"{db}.event_rollups", ROLLUP_COLUMNS, identity_row, "rollups")
    mapping = mapping_lacking(tmp_path, policy)
    for _ in range(2):  # a crash before the commit: the same records processed again from the checkpoint
        sink.write(run_logs(policy, catalog, mapping).rollup_rows())
    rows = query_gaps(ch, db)
    by_kind = sorted((r["kind"], r["object"], r["stream"], r["seen"]) for r in rows if r["kind"] != "field")
    assert by_kind == EXPECTED
    assert [r["kind"] for r in fold_tables(rows, lambda f: fingerprint(Pseudonymizer(KEY), f))].count(
        "field"
    ) == 0

    monkeypatch.setenv("LIFEMON_CLICKHOUSE_DATABASE", db)
    monkeypatch.setenv("LIFEMON_PSEUDONYM_KEY", KEY.decode())
    dsn = f"chdb://{os.environ['LIFEMON_TEST_CHDB']}"  # the session's chDB (one data path per process)
    assert main(["catalog", "gaps", "--kind", "table", "--clickhouse", dsn]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == [
        "KIND",
        "OBJECT",
        "STREAM",
        "SEEN",
        "FIRST",
        "SEEN",
        "(UTC)",
        "LAST",
        "SEEN",
        "(UTC)",
    ]
    assert out[1].split()[:4] == ["table", "corebank.core.branch_targets", "access", "1"]
    assert out[0].index("SEEN") + len("SEEN") == out[1].index(" 1 ") + 2  # counts align right
    assert "policy/sources.yaml databases.<database>.tables" in out[-1]
    assert render([]).startswith("no coverage gaps")
    # `lifemon catalog` alone is `catalog gaps`, its one action (a new user's was argparse's error)
    assert main(["catalog", "--kind", "table", "--clickhouse", dsn]) == 0
    assert capsys.readouterr().out.splitlines()[1].split()[:2] == ["table", "corebank.core.branch_targets"]
    report = render_report(gather(ch, db))  # the management report lists them too
    assert "corebank.core.branch_targets" in report and "partner_ins:/upload/" in report


def test_a_gap_is_counted_however_many_field_sets_with_unknown_ids_came_before(policy, catalog) -> None:
    """A long-running instance fed junk field ids (each a new field set) still reports the next
    unknown id: the label cache that fills up forgets classes and unknown ids together."""
    engine = Engine([], catalog, Pseudonymizer(b"e" * 32))
    (template,) = access("e1", n=1)

    def gaps_after(batches: list[list[str]], offset: int) -> int:
        events = [
            template.model_copy(update={"event_id": f"x{offset + i}", "fields": fields})
            for i, fields in enumerate(batches)
        ]
        engine.process("access", "t", 0, fed("access", events, offset=offset))
        return sum(r[9] for r in engine.rollup_rows() if r[4] == COVERAGE_GAP)

    junk = [["account_balance", f"junk{i}"] for i in range(100_000)]  # the label cache's size
    assert sum(gaps_after(junk[k : k + 10_000], k) for k in range(0, len(junk), 10_000)) == 100_000
    assert gaps_after([["account_balance", "card_no_typed_as_field"]], len(junk)) == 1


def test_a_transfer_naming_no_data_is_a_coverage_gap(catalog) -> None:
    """A transfer whose log names no category cannot be shown to be within its contract (seed 002
    §六.2(2)): a probe's passed the contract check unseen. `lifemon catalog gaps` says so."""
    from conftest import T0

    from schemas.models import TransferEvent

    sent = TransferEvent(
        event_id="t1", ts=T0, transfer_id="T1", sender_system="crm", recipient_id="proc_call_center",
        recipient_type="processor", categories=["mobile_phone"], record_count=1, subject_count=1,
        encrypted=True, deidentified=False, public_network=False, legal_basis="contract",
    )  # fmt: skip
    blank = sent.model_copy(update={"event_id": "t2", "categories": []})
    engine = Engine([], catalog, Pseudonymizer(b"e" * 32))
    engine.process("transfer", "t", 0, fed("transfer", [sent, blank]))
    gaps = [(*r[4:8], r[9]) for r in engine.rollup_rows() if r[4] == COVERAGE_GAP]
    assert gaps == [(COVERAGE_GAP, "transfer_without_categories", "(no categories)", "transfer", 1)]


def test_a_lifecycle_event_naming_no_customer_is_a_coverage_gap(catalog) -> None:
    """retention_overrun is keyed by customer: a deletion whose event names none never reaches it,
    and the customer's request stays overdue. The operator sees why in `lifemon catalog gaps`."""
    from conftest import T0

    from schemas.models import LifecycleEvent, LifecycleStage

    engine = Engine([], catalog, Pseudonymizer(b"e" * 32))
    named = LifecycleEvent(
        event_id="l1", ts=T0, record_id="R1", subject_id="C1", stage="delete", system="crm"
    )
    unnamed = named.model_copy(update={"event_id": "l2", "subject_id": None})
    engine.process(
        "lifecycle", "t", 0, fed("lifecycle", [named, unnamed, unnamed.model_copy(update={"event_id": "l3"})])
    )
    gaps = [(*r[4:8], r[9]) for r in engine.rollup_rows() if r[4] == COVERAGE_GAP]
    assert gaps == [(COVERAGE_GAP, "lifecycle_without_subject", "(no subject_id)", "lifecycle", 2)]
    # with retention_overrun on, an event of a record whose earlier events named its customer is
    # given that customer: only a record never named (R2), or one destroyed since, is a gap
    retention = next(s for s in load_detectors(catalog.policy) if s.kind == "retention_overrun")
    engine = Engine([retention], catalog, Pseudonymizer(b"e" * 32))
    destroyed = unnamed.model_copy(update={"event_id": "l4", "stage": LifecycleStage.destroy, "ts": T0 + 1})
    after = unnamed.model_copy(update={"event_id": "l5", "ts": T0 + 2})
    other = unnamed.model_copy(update={"event_id": "l6", "record_id": "R2"})
    events = fed("lifecycle", [named, unnamed, other, destroyed, after])
    engine.process("lifecycle", "t", 0, events)
    assert [ev.subject_id for _, ev in events] == [
        named_as := events[0][1].subject_id,
        named_as,
        None,
        named_as,
        None,
    ]
    gaps = [(*r[4:8], r[9]) for r in engine.rollup_rows() if r[4] == COVERAGE_GAP]
    assert gaps == [(COVERAGE_GAP, "lifecycle_without_subject", "(no subject_id)", "lifecycle", 2)]
    assert "name the customer (subject_id)" in render(
        [
            {
                "kind": "lifecycle_without_subject",
                "object": "(no subject_id)",
                "stream": "lifecycle",
                "seen": 2,
                "first_seen": _minute(T0),
                "last_seen": _minute(T0),
            }
        ]
    )


def _minute(ts: int) -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts / 1000, UTC)


def test_a_chinese_table_name_keeps_the_columns_aligned() -> None:
    """A table named `core."客户备注"` took two terminal columns a character and pushed its row's
    columns out of line."""
    from datetime import UTC, datetime

    at = datetime(2026, 12, 1, tzinfo=UTC)
    rows = [
        {"kind": "table", "object": name, "stream": "access", "seen": 1, "first_seen": at, "last_seen": at}
        for name in ("corebank.core.客户备注", "corebank.core.branch_targets")
    ]
    first, second = render(rows).splitlines()[1:3]

    def column(line: str, text: str) -> int:  # terminal columns before `text`
        return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in line[: line.index(text)])

    assert column(first, "access") == column(second, "access")
