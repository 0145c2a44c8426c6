"""A quiet partition follows the instance clock as it stood a few seconds ago (streams/idleness.py):
a backlog fetched first on one partition never closes the windows of another whose records are
still on their way, as the fault matrix's broker restart found (docs/faults.md)."""

from __future__ import annotations

import threading
import time

import pytest
from confluent_kafka import Producer
from conftest import T0, access, entitlement, fed, refs
from test_engine import engine
from test_pipeline import latest_alerts, make_config, monitor, read_all

from streams.idleness import LaggedClock

HOUR = 3_600_000


def test_the_clock_followed_is_the_one_that_stood_lag_s_ago() -> None:
    clock = LaggedClock(lag_s=5)
    assert clock.observe(100, now=0.0) == 0  # nothing stood 5 s ago yet
    assert clock.observe(100, now=5.0) == 100
    assert clock.observe(9_000, now=6.0) == 100  # a backlog moved the clock: not followed yet
    assert clock.observe(9_000, now=10.9) == 100
    assert clock.observe(9_000, now=11.0) == 9_000
    assert clock.observe(50, now=12.0) == 9_000  # partitions left: the engine caps it at its own


def test_a_quiet_task_is_not_overtaken_by_a_clock_it_may_not_follow_yet(policy, catalog) -> None:
    """e1 read 40 customers on partition 1 (threshold 50); partition 0's backlog moves the
    instance clock 30 h on. Followed now, e1's window would be forgotten before its next 20 reads."""
    e = engine(policy, catalog)
    e.apply_reference("entitlements", refs("entitlements", [entitlement("e1", role="outreach_marketing")]))
    e.apply_reference("entitlements", refs("entitlements", [entitlement("e2")]))
    e.process("access", "t", 1, fed("access", access("e1", customers=40, every_s=5)))
    e.process("access", "t", 0, fed("access", access("e2", customers=3, start=30 * HOUR)))
    quiet = {(s, p) for s in ("access", "transfer") for p in (0, 1)}
    assert e.advance(caught_up=quiet, clock=0) == []  # the lagged clock: nothing moves
    more = access("e1", customers=20, first_customer=40, start=400_000, every_s=5)
    (alert,) = e.process("access", "t", 1, fed("access", more, offset=40))
    assert alert.subject_count == 60


def test_a_quiet_task_following_the_clock_now_forgets_what_it_had(policy, catalog) -> None:
    """The hazard the lag is for: followed at once, the clock 30 h ahead ends e1's window."""
    e = engine(policy, catalog)
    e.apply_reference("entitlements", refs("entitlements", [entitlement("e1", role="outreach_marketing")]))
    e.process("access", "t", 1, fed("access", access("e1", customers=40, every_s=5)))
    e.process("access", "t", 0, fed("access", access("e2", customers=3, start=30 * HOUR)))
    e.advance(caught_up={(s, p) for s in ("access", "transfer") for p in (0, 1)})
    more = access("e1", customers=20, first_customer=40, start=400_000, every_s=5)
    assert e.process("access", "t", 1, fed("access", more, offset=40)) == []


def produce_to(bootstrap: str, topic: str, partition: int, events: list) -> None:
    p = Producer({"bootstrap.servers": bootstrap})
    for ev in events:
        p.produce(
            topic,
            ev.model_dump_json().encode(),
            key=ev.actor_id.encode(),
            partition=partition,
            timestamp=ev.ts,
        )
    assert p.flush(10) == 0


@pytest.mark.integration
def test_a_backlog_on_one_partition_does_not_close_another_partitions_window(
    broker, ch, names, policy, catalog
) -> None:
    """A shipper flushes its backlog one partition after the other: the monitor judges partition
    0's records, 30 h ahead, while partition 1 still looks caught up. e1's window on partition 1
    must still be open when its 20 last reads arrive: one alert, 60 customers."""
    config = make_config(names, broker, "chdb://unused")
    m = monitor(config, ch, policy, catalog)
    t = config.topics
    produce_to(broker, t.entitlements, 0, [entitlement("e1", role="outreach_marketing"), entitlement("e2")])
    produce_to(broker, t.access, 1, access("e1", customers=40, every_s=5))
    runner = threading.Thread(target=m.run, kwargs={"idle_exit_s": 4, "max_seconds": 120})
    runner.start()
    deadline = time.monotonic() + 60
    while m.positions.get((t.access, 1), 0) < 40:  # read and judged, then quiet
        assert time.monotonic() < deadline, "the first reads were never processed"
        time.sleep(0.1)
    time.sleep(1)
    produce_to(broker, t.access, 0, access("e2", customers=3, start=30 * HOUR))  # the backlog, first part
    while m.engine.clock() < T0 + 30 * HOUR:  # judged: partition 1 looks caught up meanwhile
        assert time.monotonic() < deadline, "the backlog was never processed"
        time.sleep(0.05)
    produce_to(broker, t.access, 1, access("e1", customers=20, first_customer=40, start=400_000, every_s=5))
    runner.join(120)
    assert not runner.is_alive()
    (alert,) = latest_alerts(read_all(broker, t.alerts)).values()
    assert alert["unmapped"]["subject_count"] == 60


def _progress(ends: dict[str, int], starts: dict[str, int], positions: dict) -> tuple:
    """`Monitor._input_progress` over a consumer that reports these ends and first offsets."""
    from types import SimpleNamespace

    from streams.runtime import Monitor

    fake = SimpleNamespace(
        _read_to=lambda: {},  # position(): invalid for a partition no message came from
        _assignment=lambda: [(t, 0) for t in ends],
        _end_offset=lambda t, p: ends[t],
        _start_offset=lambda t, p: starts[t],
        repartition={},
        repartition_sinks={},
        positions=positions,
        stream_of={"pfi.access": "access", "pfi.transfer": "transfer"},
    )
    return Monitor._input_progress(fake)


def test_a_partition_retention_emptied_is_read_to_its_end() -> None:
    """A new group never gets a message from a partition whose 57 records the broker's retention
    deleted (its first offset is its end): read to its end, it holds nothing back (found by a
    review: it held bulk_query's re-keyed transfers at 0 for good)."""
    ends = {"pfi.access": 120, "pfi.transfer": 57}
    _, _, behind = _progress(ends, {"pfi.access": 0, "pfi.transfer": 57}, {("pfi.access", 0): 120})
    assert behind == set()
    _, _, behind = _progress(ends, {"pfi.access": 0, "pfi.transfer": 0}, {("pfi.access", 0): 120})
    assert behind == {("pfi.transfer", 0)}  # records still there: it will deliver them


def test_an_unread_partition_holds_the_re_keyed_inputs_for_a_while_only(monkeypatch, caplog) -> None:
    """One that reports records and delivers none (only aborted transactions in it) holds the inputs
    it feeds at 0 for UNREAD_HOLD_S, then lets go, said once in the log; one read from holds as the
    engine says."""
    from types import SimpleNamespace

    from streams import runtime
    from streams.runtime import Monitor

    now = [1000.0]
    monkeypatch.setattr(runtime.time, "monotonic", lambda: now[0])
    ends = {"pfi.transfer": -1, "pfi.access": 120}  # no fetch has reported the transfer partition yet
    m = SimpleNamespace(
        engine=SimpleNamespace(source_times={("pfi.access", 0): T0}),
        _unread_since={},
        _unread_released=set(),
        _end_offset=lambda t, p: ends[t],
    )
    behind = {("pfi.transfer", 0), ("pfi.access", 0)}
    now[0] += 2 * runtime.UNREAD_HOLD_S
    assert Monitor._holding(m, behind) == behind  # its wait starts with the fetch that reports its end
    ends["pfi.transfer"] = 57
    behind = {("pfi.transfer", 0), ("pfi.access", 0)}
    assert Monitor._holding(m, behind) == behind
    now[0] += runtime.UNREAD_HOLD_S - 1
    assert Monitor._holding(m, behind) == behind
    now[0] += 2
    with caplog.at_level("WARNING"):
        assert Monitor._holding(m, behind) == {("pfi.access", 0)}
        assert Monitor._holding(m, behind) == {("pfi.access", 0)}
    assert [r.getMessage() for r in caplog.records].count(
        f"pfi.transfer[0] reports records and delivered none in {runtime.UNREAD_HOLD_S:.0f} s: it no "
        "longer holds the re-keyed inputs it feeds (docs/architecture.md#event-time)"
    ) == 1
    m.engine.source_times[("pfi.transfer", 0)] = T0  # a record came after all: it holds as it reads
    assert Monitor._holding(m, behind) == behind
