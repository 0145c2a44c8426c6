"""What a batch run does with what its consumer group gives it, through a real Tansu broker: an
instance given no partition ends idle beside the one that has them, and a group that gives nothing
at all (Tansu 0.6 after a member left during a rebalance) stops a batch run with the reason, where
it had ended at --seconds having read nothing, or never."""

from __future__ import annotations

import logging
import subprocess
import threading
import time
from typing import Any

import pytest
from confluent_kafka import Consumer
from test_pipeline import make_config, run_cli, send, wait_assigned, write_config
from test_repartition import KEY, SPEC, reads

from streams.pseudonym import Pseudonymizer
from streams.runtime import GroupNeverAssigned, Monitor, ensure_topics

pytestmark = pytest.mark.integration


def monitors(
    n: int, names: dict[str, str], broker: str, ch: Any, catalog: Any, tmp_path: Any, **kafka: Any
) -> list[Monitor]:
    out = []
    for i in range(n):
        config = make_config({**names, "database": f"{names['database']}_{i}"}, broker, "chdb://unused")
        config.kafka = config.kafka.model_copy(update=kafka)
        config.data_dir = tmp_path / f"i{i}"
        out.append(Monitor(config, broker, ch, [SPEC], catalog, Pseudonymizer(KEY)))
    return out


def test_a_second_until_idle_run_given_no_partition_ends_beside_the_first(broker, names, tmp_path) -> None:
    """Two `lifemon run --until-idle 3` of one group over one partition a topic: the group gives one
    of them none, and the other reads accesses that keep coming for FEED_S. The one with nothing to
    read ends idle (exit 0) while the other reads on; it waited for inputs it did not hold, for ever
    (a second run beside a first did not end in 180 s), and the other then ends once the feed stops."""
    procs: list[subprocess.Popen] = []
    try:
        for i in range(2):
            config = make_config(
                {**names, "database": f"{names['database']}_{i}"}, broker, f"chdb://{tmp_path / f'chdb{i}'}"
            )
            config.kafka = config.kafka.model_copy(update={"partitions": 1})
            config.data_dir = tmp_path / f"i{i}"
            ensure_topics(broker, config)
            procs.append(run_cli(write_config(config, tmp_path / f"lifemon{i}.yaml"), until_idle=3))
            wait_assigned(broker, config.kafka.group_id, procs[-1])
        feeding = threading.Thread(target=feed, args=(broker, config.topics.access, FEED_S))
        feeding.start()
        first = wait_first(procs, FEED_S)
        assert first is not None, "neither run ended while the other was reading"
        assert first.returncode == 0, first.stdout.read().decode() if first.stdout else ""
        assert all(p.poll() is None for p in procs if p is not first)  # the other reads on
        feeding.join()
        for p in procs:
            out, _ = p.communicate(timeout=120)
            assert p.returncode == 0, out.decode()
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()


def wait_first(procs: list[subprocess.Popen], timeout_s: float) -> subprocess.Popen | None:
    """The first of `procs` to end within `timeout_s`, if one does."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for p in procs:
            if p.poll() is not None:
                return p
        time.sleep(0.2)
    return None


FEED_S = 45.0


def feed(broker: str, topic: str, seconds: float) -> None:
    """The test's accesses again and again, a batch every 0.3 s for `seconds`: whoever reads them is
    never idle meanwhile."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for ev in reads():
            send(broker, topic, [ev], key=ev.actor_id.encode())
        time.sleep(0.3)


def leave_together(broker: str, group: str, topic: str) -> None:
    """Two members of `group`, settled, then the one that joined last leaves and the first a moment
    after, during the rebalance the first leave began: how two instances ending idle together left."""
    members = []
    for _ in range(2):
        c = Consumer({"bootstrap.servers": broker, "group.id": group, "session.timeout.ms": 6000})
        given: list[int] = []
        c.subscribe([topic], on_assign=lambda _, ps, given=given: given.append(len(ps)))
        members.append((c, given))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (given and len(members[0][1]) == len(members)):
            for m, _ in members:
                m.poll(0.1)
    assert [len(g) for _, g in members] == [2, 1]  # the first rebalanced once the second joined
    members[1][0].close()
    time.sleep(0.2)
    members[0][0].close()


def test_a_group_that_never_assigns_stops_a_batch_run_and_is_said_by_a_service(
    broker, ch, catalog, names, tmp_path, caplog
) -> None:
    """After two members left so, Tansu 0.6 answers every join with the departed leader and no
    assignment ever comes. A batch run stops once a rebalance timeout and a session timeout have
    passed (6 + 6 s here), naming the group; a service says so once and waits on."""
    batch, service = monitors(2, names, broker, ch, catalog, tmp_path, client={"max.poll.interval.ms": 6000})
    ensure_topics(broker, batch.config)
    leave_together(broker, batch.config.kafka.group_id, batch.config.topics.access)
    began = time.monotonic()
    with pytest.raises(GroupNeverAssigned, match=batch.config.kafka.group_id):
        batch.run(idle_exit_s=1.5, max_seconds=60)
    assert time.monotonic() - began < 40
    caplog.set_level(logging.ERROR, logger="streams.runtime")
    service.run(max_seconds=20)
    said = [r.getMessage() for r in caplog.records if "gave this instance no assignment" in r.getMessage()]
    assert len(said) == 1 and "lifemon waits on" in said[0]
