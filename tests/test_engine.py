"""Engine rollups: per-minute counts by class, coverage gaps, and replay-safe versions."""

from __future__ import annotations

import tracemalloc
from collections import Counter
from types import SimpleNamespace

import msgspec
from conftest import T0, access, entitlement, fed, refs, stored_text

from detectors import load_detectors
from schemas.models import SdkTelemetryEvent
from streams.engine import (
    COVERAGE_GAP,
    ROLLUP,
    SEP,
    Engine,
    PartitionRollup,
    _cells,
    _slot_values,
    named_spelling,
)
from streams.pseudonym import Pseudonymizer


def engine(policy, catalog) -> Engine:
    return Engine(load_detectors(policy), catalog, Pseudonymizer(b"e" * 32), rollup_block=100)


def rows_of(e: Engine) -> dict[tuple, tuple[int, int]]:
    return {tuple(r[3:9]): (r[9], r[10]) for r in e.rollup_rows()}


def test_unknown_field_ids_are_coverage_gaps_not_silence(policy, catalog) -> None:
    e = engine(policy, catalog)
    e.apply_reference("entitlements", refs("entitlements", [entitlement("e1", org="S0101")]))
    events = access(n=3, fields=("account_balance", "frobnicate"))
    e.process("access", "t", 0, fed("access", events))
    rows = rows_of(e)
    minute = T0 // 1000
    assert rows[(minute, "access", "C2", "S0101", "success", "query")] == (3, 3)
    assert rows[(minute, COVERAGE_GAP, "", e.fingerprint("frobnicate"), "access", "")] == (3, 3)


def test_no_value_from_an_event_reaches_a_table_unless_it_is_a_known_id(policy, catalog) -> None:
    """A card number typed into `fields`, an org nobody declared: counted, never copied."""
    e = engine(policy, catalog)
    card = "6222020200001234567"
    events = [
        e.model_copy(update={"actor_org": "Zhang San's desk"})
        for e in access(n=2, fields=("customer_name", card))
    ]
    e.process("access", "t", 0, fed("access", events))
    rows = e.rollup_rows()
    assert card not in str(rows) and "Zhang" not in str(rows)
    cells = {tuple(r[4:8]): r[9] for r in rows}
    assert cells[("access", "C2", "other", "success")] == 2
    assert cells[(COVERAGE_GAP, "", e.fingerprint(card), "access")] == 2


def test_transfers_are_counted_by_declared_recipient_only(policy, catalog) -> None:
    """A recipient from recipients.yaml reaches the table by its id; a name typed by a sender does not."""
    from schemas.models import TransferEvent

    e = engine(policy, catalog)
    declared = next(iter(policy.recipients.recipients))

    def sent(i: int, recipient: str) -> TransferEvent:
        return TransferEvent(
            event_id=f"t{i}",
            ts=T0,
            transfer_id=f"T{i}",
            sender_system="data_warehouse",
            recipient_id=recipient,
            recipient_type="third_party",
            categories=["credit_report"],
            record_count=1,
            subject_count=1,
            encrypted=True,
            deidentified=False,
            public_network=False,
        )

    # a regulator's report is the regulator's on the dashboards, not an undeclared recipient's
    reports = [sent(0, declared), sent(1, "Li Si's USB stick"), sent(2, "reg_pbc_credit_reference")]
    e.process("transfer", "t", 0, fed("transfer", reports, "t"))
    cells = {tuple(r[4:8]): r[9] for r in e.rollup_rows()}
    assert cells[("transfer", "C2", declared, "third_party")] == 1
    assert cells[("transfer", "C2", "reg_pbc_credit_reference", "third_party")] == 1
    assert cells[("transfer", "C2", "undeclared_recipient", "third_party")] == 1
    assert "Li Si" not in str(cells)


def test_detectors_and_their_state_see_only_pseudonyms(policy, catalog) -> None:
    """The engine replaces customer ids at its door: a detector cannot forget to."""
    e = engine(policy, catalog)
    e.apply_reference("entitlements", refs("entitlements", [entitlement("e1")]))
    e.process("access", "t", 0, fed("access", access("e1", customers=45)))
    state = stored_text(e.changes(0))
    assert "C00000" not in state and Pseudonymizer(b"e" * 32)("C0000001") in state


def test_an_upstream_duplicate_is_counted_once(policy, catalog) -> None:
    """A shipper's retry delivers the same event_id again at another offset."""
    e = engine(policy, catalog)
    events = access(n=84, customers=84)
    e.process("access", "t", 0, fed("access", events + events[:4]))
    assert sum(r[9] for r in e.rollup_rows() if r[4] == "access") == 84
    assert e.duplicates["access"] == 4


def test_a_duplicate_after_a_restart_or_a_rebalance_is_still_one(policy, catalog, monkeypatch) -> None:
    """A probe's: a shipper sent 1 500 events again after lifemon restarted (or a second instance
    took the partition over), and each counted twice: the ids seen lived in memory only. The
    window goes into the checkpoint, in chunks, and comes back with the partition's state."""
    from streams import engine as engine_module

    def seen_keys(changes) -> list[bytes]:
        return [k for k, v in changes if k.startswith(b"~engine\x1fseen") and v is not None]

    e = engine(policy, catalog)
    events = access(n=84, customers=84)
    e.process("access", "t", 0, fed("access", events))
    e.process_rekeyed("access", "subject_ids", "rp", 0, fed("access", events, "rp"))
    saved = e.changes(0)
    later = engine(policy, catalog)
    later.restore(0, saved)
    new = access(n=3, customers=3, first_customer=500, start=9_000_000)
    later.process("access", "t", 0, fed("access", events[:40] + new, "t", 84))
    later.process_rekeyed("access", "subject_ids", "rp", 0, fed("access", events[:10], "rp", 84))
    assert later.duplicates["access"] == 50
    assert sum(r[9] for r in later.rollup_rows() if r[4] == "access") == 3
    # a quiet partition, an event a checkpoint: one key, written again, not a key a checkpoint
    quiet, log = engine(policy, catalog), []
    for i in range(5):
        quiet.process("access", "t", 0, fed("access", events[i : i + 1], "t", i))
        log += quiet.changes(0)
    assert len([k for k, _ in quiet.store(0).items("~engine\x1fseen")]) == 1
    again = engine(policy, catalog)
    again.restore(0, log)
    again.process("access", "t", 0, fed("access", events[:5], "t", 5))
    assert again.duplicates["access"] == 5
    # chunked, SEEN_CHUNK ids a key; chunks past the window's bound deleted, oldest first
    monkeypatch.setattr(engine_module, "SEEN_CHUNK", 10)
    monkeypatch.setattr(engine_module, "DEDUP_IDS_PER_TOPIC_PARTITION", 30)
    small = engine(policy, catalog)
    small.process("access", "t", 0, fed("access", events[:25]))
    log = small.changes(0)
    assert len(seen_keys(log)) == 3
    small.process("access", "t", 0, fed("access", events[25:], "t", 25))
    log += small.changes(0)
    kept = [ids for _, ids in small.store(0).items("~engine\x1fseen")]
    assert [len(ids) for ids in kept] == [10, 10, 10]
    assert sum(kept, []) == [f"{ev.event_id}\x1f{ev.ts}" for ev in events[-30:]]  # the newest 30 of 84
    again = engine(policy, catalog)
    again.restore(0, log)
    again.process("access", "t", 0, fed("access", events[-30:] + events[:5], "t", 84))
    assert again.duplicates["access"] == 30


def test_a_checkpointed_duplicates_window_holds_its_digests_not_its_strings(policy, catalog) -> None:
    """A review's: the chunks of ids a checkpoint wrote stayed in the store's cache of live values
    (up to 100 000 keys), the strings' only owner once the window kept digests: a full window,
    checkpointed every 2 500 events as a live run does, held 25.5 MB, what the dict of strings had."""
    e = engine(policy, catalog)
    store = e.store(0)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for at in range(0, 200_000, 2_500):
            ids = [f"{i:08x}-2c6e-4f0b-9d1e-5a7b3c9e1f20" for i in range(at, at + 2_500)]
            pairs = [(None, SimpleNamespace(event_id=i, ts=1_767_225_600_000)) for i in ids]
            assert len(e._first_deliveries("access", "t", 0, pairs)) == 2_500
            del ids, pairs
            e.changes(0)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert held < 8 << 20, f"{held / 2**20:.1f} MB"
    # and the store still gives them back to a restore
    saved = [ids for key, ids in store.items("~engine\x1fseen")]
    assert sum(map(len, saved)) == 200_000


def test_an_event_id_another_system_used_too_is_another_event(policy, catalog) -> None:
    """A probe's: core banking and the CRM number their logs from one counter, so the CRM's reads
    repeat core banking's event ids at other times, and were dropped as its duplicates (a harvest
    of 60 customers counted 20). A retry repeats the id and the time; an id alone is no event's."""
    e = engine(policy, catalog)
    core = access(n=40, customers=40)
    crm = [
        ev.model_copy(update={"ts": ev.ts + 4 * 3_600_000, "system": "crm"})
        for ev in access(n=60, customers=60, first_customer=100)
    ]
    assert {ev.event_id for ev in crm} > {ev.event_id for ev in core}
    e.process("access", "t", 0, fed("access", core + crm + crm[:3]))
    assert sum(r[9] for r in e.rollup_rows() if r[4] == "access") == 100
    assert e.duplicates["access"] == 3


def test_consents_are_looked_up_by_subject_purpose_and_channel(policy, catalog) -> None:
    """A later grant for another purpose must not hide an earlier withdrawal. The withdrawals are
    of one channel's marketing each (`marketing_sms`, as the platforms scope an opt-out)."""
    from schemas.models import Consent

    e = engine(policy, catalog)
    consents = [
        Consent(subject_id="C1", ts=T0, purpose="marketing", channel="sms", status="granted"),
        Consent(subject_id="C1", ts=T0 + 10, purpose="marketing_sms", status="withdrawn"),
        Consent(subject_id="C1", ts=T0 + 20, purpose="credit_assessment", status="granted"),
        Consent(subject_id="C1", ts=T0 + 30, purpose="marketing", status="granted"),
        Consent(subject_id="C1", ts=T0 + 40, purpose="marketing:app_push", status="withdrawn"),
    ]
    e.apply_reference("consents", refs("consents", consents))
    ctx = e.task(0, e.specs[0]).ctx
    subject = Pseudonymizer(b"e" * 32)("C1")
    assert ctx.consent(subject, "marketing", "sms", T0 + 5).status == "granted"
    assert ctx.consent(subject, "marketing", "sms", T0 + 25).status == "withdrawn"
    # the general grant is newer, but bundled (the privacy policy accepted again): no opt-in to SMS
    assert ctx.consent(subject, "marketing", "sms", T0 + 35).status == "withdrawn"
    assert ctx.consent(subject, "marketing", "app_push", T0 + 50).status == "withdrawn"
    assert ctx.consent(subject, "marketing", "email", T0 + 50).status == "granted"
    assert ctx.consent(subject, "credit_assessment", "sms", T0 + 15) is None


def test_a_timer_fires_on_a_quiet_partition(policy, catalog) -> None:
    """Partition 1 goes quiet inside an episode; traffic on partition 0 moves the instance clock,
    and the quiet task's episode closes once its input is caught up."""
    e = engine(policy, catalog)
    e.apply_reference("entitlements", refs("entitlements", [entitlement("e1"), entitlement("e2")]))
    (opened,) = e.process("access", "t", 1, fed("access", access("e1", customers=60, every_s=5)))
    e.process("access", "t", 0, fed("access", access("e2", customers=3, start=3 * 3_600_000)))
    assert e.advance() == []  # partition 1 may still have data coming: its own clock holds
    # every input of the task is caught up: bulk_query reads transfers (by sender) as well
    (closed,) = e.advance(caught_up={(s, p) for s in ("access", "transfer") for p in (0, 1)})
    assert closed.alert_id == opened.alert_id and closed.status.value == "closed"


def test_sdk_fields_are_classed_by_the_sdk_catalog(policy, catalog) -> None:
    e = engine(policy, catalog)
    face = SdkTelemetryEvent(
        event_id="s1",
        ts=T0,
        app_id="app",
        app_version="1",
        device_id="d",
        sdk_id="tencent_face",
        fields=["face_image", "device_model"],
        policy_consented=True,
    )
    e.process("sdk", "s", 0, fed("sdk", [face], "s"))
    (cell,) = [k for k in rows_of(e) if k[1] == "sdk"]
    assert cell[2] == "C3"  # face images used for authentication (sdks.yaml)


def final(*drains: list[tuple]) -> dict[tuple, int]:
    """What `event_rollups FINAL` shows after these drains were inserted: per key (the cell, then
    the topic id), the count of the row with the highest version (ReplacingMergeTree(version))."""
    newest: dict[tuple, tuple[int, int]] = {}
    for row in (r for rows in drains for r in rows):
        key, count, version = (*row[:9], row[11]), row[9], row[10]
        if key not in newest or version > newest[key][1]:
            newest[key] = (count, version)
    return {k: v[0] for k, v in newest.items()}


def test_a_block_reprocessed_from_its_snapshot_rewrites_the_same_rows(policy, catalog) -> None:
    events = access(n=150, customers=150, every_s=1)
    raws = fed("access", events)
    whole = engine(policy, catalog)
    whole.process("access", "t", 0, raws)
    expected = final(whole.rollup_rows())
    first = engine(policy, catalog)
    first.process("access", "t", 0, raws[:120])
    sent = first.rollup_rows()  # a checkpoint inserted these...
    changes = first.changes(0)
    second = engine(policy, catalog)  # ...then a crash and a restart from the changelog
    second.restore(0, changes)
    second.process("access", "t", 0, raws[120:])
    assert final(sent, second.rollup_rows()) == expected


def test_a_checkpoint_sends_the_cells_that_changed_not_the_whole_block(policy, catalog) -> None:
    """A live block fills for hours: each drain carries only what the records since the last one
    changed, and the table's newest rows still give every count."""
    e = engine(policy, catalog)
    raws = fed("access", access(n=90, customers=90, every_s=60))  # one record a minute, one block
    drains = []
    for i in range(0, 90, 10):
        e.process("access", "t", 0, raws[i : i + 10])
        drains.append(e.rollup_rows())
    assert [len(d) for d in drains] == [10] * 9  # a new minute per record: ten new cells each time
    assert sorted(final(*drains).values()) == [1] * 90
    e.process("access", "t", 0, raws[:10])  # already seen: nothing new to send
    assert e.rollup_rows() == []


def test_reference_history_is_pruned_to_the_version_in_force(policy, catalog) -> None:
    """Old versions go; the one in force at the horizon and everything after it stay."""
    e = engine(policy, catalog)
    versions = [
        entitlement("e1", role=r, ts=T0 + i * 1000)
        for i, r in enumerate(("lobby_manager", "wealth_manager", "sb_president"))
    ]
    e.apply_reference("entitlements", refs("entitlements", versions))
    e.process("access", "t", 0, fed("access", access("e2", start=10_000)))
    assert e.prune_references(history_ms=8_500) == 1  # the clock is T0 + 10 s: versions before T0 + 1.5 s
    assert e.refs.entitlements.as_of("e1", T0 + 1_500).roles == ["wealth_manager"]
    assert e.refs.entitlements.as_of("e1", T0 + 5_000).roles == ["sb_president"]
    assert e.refs.entitlements.as_of("e1", T0 + 500) is None  # forgotten: older than the history kept


def test_a_batch_is_counted_as_its_records_one_by_one(policy, catalog) -> None:
    """Rollups count a batch per block it touches, and pseudonyms are put in place over the batch:
    neither may depend on how the records were batched (a lone id, several ids, no id)."""
    lone = access("e1", customers=130, every_s=7)
    several = access("e2", customers=60, per_event=3, every_s=7)
    unnamed = access("e3", n=10, customers=0, row_count=5, every_s=7)
    records = sorted([*lone, *several, *unnamed], key=lambda ev: ev.ts)
    whole, one_by_one = engine(policy, catalog), engine(policy, catalog)
    whole.process("access", "t", 0, fed("access", records))
    for i, r in enumerate(records):
        one_by_one.process("access", "t", 0, fed("access", [r], offset=i))
    rows = rows_of(whole)
    assert rows == rows_of(one_by_one) and len({k[0] for k in rows}) > 1  # the batch spans blocks
    state, pz = stored_text(whole.changes(0)), Pseudonymizer(b"e" * 32)  # every id replaced, each by its own
    assert "C00000" not in state and all(pz(c) in state for r in records for c in r.subject_ids)


def test_a_checkpoint_saves_the_slots_that_changed_not_the_whole_block(policy, catalog) -> None:
    """The rollup state follows what changed: a record in a new ten-minute slot of a live block
    saves that slot and the block's progress, not every slot the block holds."""
    e = engine(policy, catalog)
    raws = fed("access", access(n=62, customers=62, every_s=60))  # one record a minute, one block
    e.process("access", "t", 0, raws[:60])
    e.rollup_rows()
    first = {k for k, _ in e.changes(0) if k.startswith(ROLLUP.encode())}
    assert len(first) == 7  # six slots of ten minutes and the block's progress
    slot = T0 // 1000 + 3600
    for i in (60, 61):  # a new slot's first minute, then its second
        e.process("access", "t", 0, raws[i : i + 1])
        e.rollup_rows()
        saved = {k for k, _ in e.changes(0) if k.startswith(ROLLUP.encode())}
        assert saved == {f"{ROLLUP}t{SEP}0".encode(), f"{ROLLUP}t{SEP}0{SEP}{slot}".encode()}


def test_a_slot_is_stored_as_its_labels_once_and_a_flat_list_of_cells() -> None:
    """`_slot_values` (a C loop) keeps the cells of the slots asked, each labels tuple once in order
    of first appearance, and restores them exactly, whatever order the cells were counted in."""
    labels = [("access", "C2", f"S01{i:02d}", "success", "view") for i in range(5)]
    cells = {(60 * m, *labels[(m * 7) % 5]): m + 1 for m in (31, 0, 12, 9, 10, 45, 3, 11, 1)}
    cells[(600, *labels[0])] = 99
    values = _slot_values(cells, {0, 600, 3000})
    for slot, value in values.items():
        expected = {c: n for c, n in cells.items() if c[0] - c[0] % 600 == slot}
        assert _cells(msgspec.json.decode(msgspec.json.encode(value)), slot) == expected
        seen = list(dict.fromkeys(c[1:] for c in expected))
        assert [tuple(label) for label in value["labels"]] == seen
        assert value["cells"] == [x for c, n in expected.items() for x in (c[0] - slot, seen.index(c[1:]), n)]
    assert values[3000] == {"labels": [], "cells": []}  # a slot asked that holds nothing
    assert 1800 not in values  # minute 31's slot, not asked


def slot_rows(key: bytes, value: bytes) -> list[list]:
    """A stored slot's cells as the rows `[*cell, count]` lifemon stored before the forty-ninth stop."""
    slot = int(key.rsplit(SEP.encode(), 1)[1])
    return [[*c, n] for c, n in _cells(msgspec.json.decode(value), slot).items()]


def test_slots_stored_as_rows_by_an_earlier_lifemon_restore(policy, catalog) -> None:
    """The slots the forty-eighth stop's lifemon stored as rows `[*cell, count]` restore as they
    stand, and a slot saved again is stored the new way."""
    raws = fed("access", access(n=30, customers=30, every_s=60))
    expected, earlier = whole_and_part(policy, catalog, raws, 25)
    sent = earlier.rollup_rows()
    changes = [
        (k, msgspec.json.encode(slot_rows(k, v)))
        if k.startswith(f"{ROLLUP}t{SEP}0{SEP}".encode())
        else (k, v)
        for k, v in earlier.changes(0)
    ]
    assert sum(v.startswith(b"[[") for k, v in changes if k.startswith(ROLLUP.encode())) == 3
    later = engine(policy, catalog)
    later.restore(0, changes)
    assert later.rollups[("t", 0)].cells == earlier.rollups[("t", 0)].cells
    later.process("access", "t", 0, raws[25:])
    assert final(sent, later.rollup_rows()) == expected
    last = f"{ROLLUP}t{SEP}0{SEP}{T0 // 1000 + 1200}".encode()
    assert msgspec.json.decode(dict(later.changes(0))[last]).keys() == {"labels", "cells"}


def whole_and_part(policy, catalog, raws: list, upto: int) -> tuple[dict, Engine]:
    """The rollups of the records processed at once, and an engine that processed the first `upto`."""
    whole = engine(policy, catalog)
    whole.process("access", "t", 0, raws)
    part = engine(policy, catalog)
    part.process("access", "t", 0, raws[:upto])
    return final(whole.rollup_rows()), part


def test_per_minute_rollup_keys_of_an_earlier_lifemon_fold_into_slots(policy, catalog) -> None:
    """State saved with a key per minute restores as it stands; the next save writes each slot it
    touches whole and deletes its minutes' keys, and what it leaves restores alone."""
    raws = fed("access", access(n=30, customers=30, every_s=60))
    expected, earlier = whole_and_part(policy, catalog, raws, 25)
    sent = earlier.rollup_rows()
    changes = [(k, v) for k, v in earlier.changes(0) if SEP.encode() + b"0" + SEP.encode() not in k]
    by_minute: dict[int, list] = {}
    for cell, n in earlier.rollups[("t", 0)].cells[0].items():
        by_minute.setdefault(cell[0], []).append([*cell, n])
    minute_keys = {f"{ROLLUP}t{SEP}0{SEP}{m}".encode(): cells for m, cells in by_minute.items()}
    changes += [(k, msgspec.json.encode(cells)) for k, cells in minute_keys.items()]
    later = engine(policy, catalog)
    later.restore(0, changes)
    later.process("access", "t", 0, raws[25:])
    assert final(sent, later.rollup_rows()) == expected
    saved = dict(later.changes(0))
    start = T0 // 1000
    gone = {k for k in minute_keys if int(k.rsplit(SEP.encode(), 1)[1]) % 600}
    assert gone and all(saved[k] is None for k in gone)  # minutes 1-9, 11-19, 21-24
    assert {k for k, v in saved.items() if v is not None and k.startswith(ROLLUP.encode())} == {
        f"{ROLLUP}t{SEP}0".encode(),
        *(f"{ROLLUP}t{SEP}0{SEP}{start + s}".encode() for s in (0, 600, 1200)),
    }
    restarted = engine(policy, catalog)
    restarted.restore(0, [*changes, *saved.items()])
    assert restarted.rollups[("t", 0)].cells == later.rollups[("t", 0)].cells


def test_rollups_saved_whole_by_an_earlier_lifemon_are_restored_and_saved_per_slot(policy, catalog) -> None:
    """State from before keys per minute or slot (one value per topic) restores, and is rewritten in slots."""
    raws = fed("access", access(n=30, customers=30, every_s=60))
    expected, earlier = whole_and_part(policy, catalog, raws, 20)
    roll = earlier.rollups[("t", 0)]
    old = {
        str(b): {"progress": roll.progress[b], "cells": [[*c, n] for c, n in cells.items()]}
        for b, cells in roll.cells.items()
    }
    sent = earlier.rollup_rows()
    changes = [(k, v) for k, v in earlier.changes(0) if not k.startswith(ROLLUP.encode())]
    changes.append((f"{ROLLUP}t".encode(), msgspec.json.encode(old)))
    later = engine(policy, catalog)
    later.restore(0, changes)
    later.process("access", "t", 0, raws[20:])
    assert final(sent, later.rollup_rows()) == expected
    saved = dict(later.changes(0))
    assert saved[f"{ROLLUP}t".encode()] is None  # the old value is deleted...
    restarted = engine(policy, catalog)  # ...and what replaced it restores alone
    restarted.restore(0, [(k, v) for k, v in saved.items()])
    assert restarted.rollups[("t", 0)].cells == later.rollups[("t", 0)].cells


def by_cell(counts: dict[tuple, int]) -> dict[tuple, int]:
    """`final`'s counts summed over topic ids: what a dashboard's `sum(events)` shows per cell."""
    out: dict[tuple, int] = {}
    for key, n in counts.items():
        out[key[:-1]] = out.get(key[:-1], 0) + n
    return out


def test_rows_carry_the_topic_id_and_a_restore_keeps_it(policy, catalog) -> None:
    """A block's rows name the incarnation of the topic it was read from; its state keeps the id,
    so rows written after a restart replace the ones written before it."""
    raws = fed("access", access(n=150, customers=150, every_s=1))
    whole = engine(policy, catalog)
    whole.topic_ids["t"] = "A"
    whole.process("access", "t", 0, raws)
    expected = final(whole.rollup_rows())
    assert {k[-1] for k in expected} == {"A"}
    first = engine(policy, catalog)
    first.topic_ids["t"] = "A"
    first.process("access", "t", 0, raws[:120])
    sent, changes = first.rollup_rows(), first.changes(0)
    second = engine(policy, catalog)
    second.topic_ids["t"] = "A"
    second.restore(0, changes)
    assert second.rollups[("t", 0)].ids == {1: "A"}  # the open block, with its topic's id
    second.process("access", "t", 0, raws[120:])
    assert final(sent, second.rollup_rows()) == expected


def test_a_re_created_topic_counts_beside_the_old_one_and_forgets_its_blocks(policy, catalog) -> None:
    """State restored from the changelog of a topic since deleted and re-created (a new topic id):
    the old incarnation's open block is forgotten, state keys and all, and the new topic's blocks,
    which start again at offset 0, write rows of their own next to the old ones."""
    raws = fed("access", access(n=150, customers=150, every_s=1))
    old = engine(policy, catalog)
    old.topic_ids["t"] = "A"
    old.process("access", "t", 0, raws)
    sent, changes = old.rollup_rows(), old.changes(0)
    new = engine(policy, catalog)
    new.topic_ids["t"] = "B"
    new.restore(0, changes)
    assert not new.rollups[("t", 0)].cells  # block 1 of topic A: its offsets name other records now
    later = fed("access", access(n=150, customers=150, every_s=1, start=3_600_000))
    new.process("access", "t", 0, later)  # the same offsets, of the new topic, an hour on
    counts = final(sent, new.rollup_rows())
    assert {k[-1] for k in counts} == {"A", "B"}
    assert sum(counts.values()) == 2 * sum(final(sent).values()) == 300
    saved = new.changes(0)
    assert msgspec.json.decode(dict(saved)[f"{ROLLUP}t{SEP}1".encode()]) == [50, "B"]
    restarted = engine(policy, catalog)  # the changelog: topic A's keys, then these changes
    restarted.topic_ids["t"] = "B"
    restarted.restore(0, [*changes, *saved])
    assert restarted.rollups[("t", 0)].cells == new.rollups[("t", 0)].cells  # topic A's minutes are gone


def test_rollups_saved_before_topic_ids_keep_counting_their_block_without_one(policy, catalog) -> None:
    """An upgrade: the open block was saved without a topic id, and its rows are in the table with
    topic_id ''. It goes on under '' (rows under the topic's id would add to those rows); the
    blocks after it count under the topic's id."""
    raws = fed("access", access(n=150, customers=150, every_s=1))
    whole = engine(policy, catalog)
    whole.process("access", "t", 0, raws)
    expected = final(whole.rollup_rows())
    earlier = engine(policy, catalog)  # no topic ids: state as an earlier lifemon saved it
    earlier.process("access", "t", 0, raws[:50])
    sent, changes = earlier.rollup_rows(), earlier.changes(0)
    assert msgspec.json.decode(dict(changes)[f"{ROLLUP}t{SEP}0".encode()]) == 50  # the progress alone
    later = engine(policy, catalog)
    later.topic_ids["t"] = "A"
    later.restore(0, changes)
    later.process("access", "t", 0, raws[50:])
    counts = final(sent, later.rollup_rows())
    assert by_cell(counts) == by_cell(expected)
    assert {k[2]: k[-1] for k in counts} == {0: "", 1: "A"}


def test_rollups_saved_before_actions_keep_their_counts_under_none(policy, catalog) -> None:
    """An upgrade: the open block's cells were saved without an action, and their rows are in the
    table with action ''. They restore under '' and keep their counts (rows under an action would
    add to those rows); what the block counts after the upgrade has its action (probe_v3 H4). A
    cell of no action (a coverage gap here) counted on in the minute of the upgrade adds to its
    old count: its row replaces the one written before."""
    events = access(n=30, customers=30, every_s=10, action="export", fields=("account_balance", "frobnicate"))
    raws = fed("access", events)  # six a minute: the upgrade (after 25) falls in the fifth
    expected, earlier = whole_and_part(policy, catalog, raws, 25)
    sent = [(*r[:8], "", *r[9:]) for r in earlier.rollup_rows()]  # the column read '' before it was added
    changes = [
        (k, msgspec.json.encode([[*c[:5], c[6]] for c in slot_rows(k, v)]))
        if k.startswith(f"{ROLLUP}t{SEP}0{SEP}".encode())  # a slot's cells, as rows five wide then
        else (k, v)
        for k, v in earlier.changes(0)
    ]
    later = engine(policy, catalog)
    later.restore(0, changes)
    later.process("access", "t", 0, raws[25:])
    counts = final(sent, later.rollup_rows())
    without_action = Counter[tuple]()
    for key, n in counts.items():
        without_action[(*key[:8], key[9])] += n
    assert without_action == Counter({(*k[:8], k[9]): n for k, n in expected.items()})
    by_action = Counter[str]()
    for key, n in counts.items():
        if key[4] == "access":
            by_action[key[8]] += n
    assert by_action == {"": 25, "export": 5}


def test_a_broker_without_topic_ids_keeps_the_ids_a_block_was_restored_with(policy, catalog) -> None:
    roll = PartitionRollup(100, "A")
    roll.add(0, {(60, "access", "C2", "S0101", "success", "view"): 3}, 3)
    roll.incarnation("")  # no id now: not a sign of another topic
    assert roll.drain("t", 0) == [("t", 0, 0, 60, "access", "C2", "S0101", "success", "view", 3, 3, "A")]


def test_a_purpose_is_read_by_its_names_and_with_any_separator(catalog) -> None:
    """purposes.yaml's own names (`营销`, `wealth advice`), case and blanks aside; spaces and
    hyphens are the ids' underscores, for a purpose the policy does not name too (sdk_overcollection's
    `privacy_policy`: a probe's withdrawal written `Privacy Policy` was lost). None: kept as written."""
    respell = named_spelling({k: (p.zh, p.en) for k, p in catalog.purposes.items()})
    assert [respell(s) for s in ("营销", " Marketing ", "wealth advice", "Wealth-Advice", "marketing")] == [
        "marketing", "marketing", "wealth_advice", "wealth_advice", None,
    ]  # fmt: skip
    assert [respell(s) for s in ("Privacy Policy", "privacy-policy", "privacy_policy")] == [
        "privacy_policy", "privacy_policy", None,
    ]  # fmt: skip
    # a version or a consent word after a known name says no more; after an unknown one it is kept
    # (a review's `loan_agreement` had become `loan`)
    assert [respell(s) for s in ("marketing_v2", "营销授权", "loan_agreement", "covid19")] == [
        "marketing", "marketing", None, None,
    ]  # fmt: skip


def test_a_channel_is_read_in_a_contact_purposes_name_alone(catalog) -> None:
    """An opt-out logged as `marketing_sms` or 短信营销 is marketing on SMS; `wechat_payment` is no
    payment on WeChat (a review's): only a purpose the bank contacts customers for (purposes.yaml
    `channels`) is named with a channel."""
    from schemas.models import Consent

    said = ("marketing_sms", "短信营销", "wechat_payment", "marketing")
    consents = refs("consents", [Consent(subject_id="C1", ts=0, purpose=p, status="withdrawn") for p in said])
    Engine([], catalog, pseudonymize=Pseudonymizer(b"k" * 32)).apply_reference("consents", consents)
    assert [(c.purpose, c.channel and c.channel.value) for c in consents] == [
        ("marketing", "sms"), ("marketing", "sms"), ("wechat_payment", None), ("marketing", None),
    ]  # fmt: skip


def test_a_tombstones_key_is_read_as_the_records_keys_are(policy, catalog) -> None:
    """A tombstone deletes the key its record was kept under: an employee id sealed and spelled at
    the door (a mobile number in it: a review's forgot nothing), a customer's id pseudonymized."""
    from schemas.models import Consent

    e = engine(policy, catalog)
    odd = "e1-13812345678"  # an employee id holding a mobile number: sealed at the door
    e.apply_reference("entitlements", refs("entitlements", [entitlement(odd), entitlement("e2")]))
    consent = Consent(subject_id=" C1", ts=T0, purpose="marketing", channel="sms", status="granted")
    e.apply_reference("consents", refs("consents", [consent]))
    assert len(e.refs.entitlements) == 2 and "13812345678" not in str(e.refs.entitlements._versions)
    assert e.forget_reference("entitlements", [odd]) == 1 and len(e.refs.entitlements) == 1
    assert e.forget_reference("consents", ["C1"]) == 1 and len(e.refs.consents) == 0


def test_the_folds_read_their_columns_at_once_as_each_would_alone(policy, catalog, monkeypatch) -> None:
    """`ingest` reads the distinct values of the columns it folds in one pass before the folds
    (`fold_columns`): every stream's events, their people, purposes, systems, orgs, field lists and
    placeholders spelled in odd ways, come out as when each fold reads its own column at its turn."""
    import copy
    import random
    from collections.abc import Callable

    import streams.engine as engine_module
    from schemas.structs import from_model
    from streams.codecs import RawRecord
    from streams.workload import generate

    rng = random.Random(3)
    odd = {
        "purpose": str.upper,
        "system": lambda v: f" {v.upper()}",
        "sender_system": str.title,
        "actor_id": str.lower,
        "approver_id": lambda v: "N/A",
        "submitter_id": str.lower,
        "operator_id": lambda v: f"{v} ",
        "actor_org": str.lower,
        "org_id": str.lower,
        "contract_id": lambda v: "无",
    }
    batches: dict[str, list] = {}
    for stream, _, record in generate(2000, seed=5, policy=policy).records:
        if stream not in ("access", "transfer", "sdk", "marketing", "lifecycle"):
            continue
        ev = from_model(stream, record)
        for attr, spell in odd.items():
            if isinstance(getattr(ev, attr, None), str) and rng.random() < 0.3:
                setattr(ev, attr, spell(getattr(ev, attr)))
        for attr in ("fields", "categories", "data_used", "approved_audience"):
            if getattr(ev, attr, None) and rng.random() < 0.3:
                setattr(ev, attr, [v.upper() for v in getattr(ev, attr)])
        batches.setdefault(stream, []).append(ev)
    assert set(batches) == {"access", "transfer", "sdk", "marketing", "lifecycle"}

    def ingested(columns: Callable[[str], tuple]) -> dict[str, list]:
        monkeypatch.setattr(engine_module, "fold_columns", columns)
        e = Engine([], catalog, Pseudonymizer(b"k" * 32))
        return {
            stream: msgspec.to_builtins(
                e.ingest(
                    stream,
                    f"pfi.{stream}",
                    0,
                    [
                        (RawRecord(f"pfi.{stream}", 0, i, b"", None, None, ev.ts), copy.deepcopy(ev))
                        for i, ev in enumerate(evs)
                    ],
                )
            )
            for stream, evs in batches.items()
        }

    at_once, alone = ingested(engine_module.fold_columns), ingested(lambda stream: ())
    assert at_once == alone
    assert at_once != {s: msgspec.to_builtins(evs) for s, evs in batches.items()}  # the folds changed some
