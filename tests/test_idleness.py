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
