"""Broker faults through the real `lifemon run` process and a real Tansu broker of its own: a broker
that comes back empty is said loudly and ends the run; SIGTERM ends it in bounded time even while
the broker is down."""

from __future__ import annotations

import time

import orjson
import pytest
from conftest import access, entitlement
from test_pipeline import make_config, read_all, run_cli, send, write_config

from streams.embedded import EmbeddedBroker
from streams.runtime import SHUTDOWN_GRACE_S, ensure_topics

pytestmark = pytest.mark.integration


def start_monitor(names, bootstrap, tmp_path):
    config = make_config(names, bootstrap, f"chdb://{tmp_path / 'chdb'}")
    ensure_topics(bootstrap, config)
    path = write_config(config, tmp_path / "lifemon.yaml")
    send(bootstrap, config.topics.entitlements, [entitlement("e1")])
    send(bootstrap, config.topics.access, access("e1", customers=60, every_s=5))
    proc = run_cli(path, until_idle=600)
    assert len(read_all(bootstrap, config.topics.alerts, timeout_s=60)) >= 1, "the monitor never alerted"
    return config, proc


def test_a_broker_restarted_empty_stops_the_run_loudly(names, tmp_path) -> None:
    broker = EmbeddedBroker().start()
    try:
        config, proc = start_monitor(names, broker.bootstrap, tmp_path)
        broker.stop()
        broker = EmbeddedBroker(port=broker.port).start()  # same address, no topics
        out, _ = proc.communicate(timeout=90)
        assert proc.returncode == 3, out.decode()
        # whichever notices first, the input check or a sink's flush, says what happened
        assert "on the broker (was it restarted empty?)" in out.decode()
    finally:
        broker.stop()


def test_sigterm_ends_the_run_in_bounded_time_while_the_broker_is_down(names, tmp_path) -> None:
    broker = EmbeddedBroker().start()
    try:
        _, proc = start_monitor(names, broker.bootstrap, tmp_path)
        broker.stop()
        send_time = time.monotonic()
        time.sleep(2)  # let it notice
        proc.terminate()
        proc.communicate(timeout=3 * SHUTDOWN_GRACE_S + 30)
        assert proc.returncode is not None
        assert time.monotonic() - send_time < 3 * SHUTDOWN_GRACE_S + 30
    finally:
        broker.stop()


@pytest.mark.slow  # the fault matrix's broker_cut_off case runs a shorter outage in `make test`
def test_a_broker_unreachable_for_20_s_loses_nothing_and_the_run_still_ends(names, tmp_path) -> None:
    """The fault probe's outage: the broker keeps its data but nobody reaches it for 20 s. lifemon
    survives, `--until-idle` still ends the run, every partition is committed to its end (also
    those finished before the outage), and no alert revision is written twice."""
    from collections import Counter

    from tcp_proxy import CuttableProxy
    from test_pipeline import committed_offsets

    from streams.embedded import free_port

    proxy_port = free_port()
    broker = EmbeddedBroker(advertised_port=proxy_port).start()
    proxy = CuttableProxy(proxy_port, broker.port).start()
    bootstrap = f"127.0.0.1:{proxy_port}"
    try:
        config = make_config(names, bootstrap, f"chdb://{tmp_path / 'chdb'}")
        ensure_topics(bootstrap, config)
        path = write_config(config, tmp_path / "lifemon.yaml")
        t = config.topics
        actors = [f"e{i}" for i in range(6)]  # spread over the partitions
        for a in actors:
            send(bootstrap, t.entitlements, [entitlement(a)], key=a.encode())
            send(bootstrap, t.access, access(a, customers=60, every_s=5), key=a.encode())
        # idle longer than librdkafka's longest reconnect backoff (10 s): after the outage the run
        # must see the new records, not end before its client is back
        proc = run_cli(path, until_idle=15)
        deadline = time.monotonic() + 60
        while committed_offsets(bootstrap, names["group"], t.access) < 6 * 60:
            assert proc.poll() is None and time.monotonic() < deadline, "never processed the first half"
            time.sleep(0.3)
        proxy.cut()
        time.sleep(20)
        proxy.restore()
        for a in actors[:2]:  # more work after the outage, on some partitions only
            send(bootstrap, t.access, access(a, customers=60, start=4 * 3_600_000, every_s=5), key=a.encode())
        out, _ = proc.communicate(timeout=180)
        assert proc.returncode == 0, out.decode()
        assert committed_offsets(bootstrap, names["group"], t.access) == 8 * 60
        msgs = read_all(bootstrap, t.alerts, expect_at_least=8)
        revisions = Counter(
            (o["finding_info"]["uid"], o["unmapped"]["revision"])
            for o in (orjson.loads(m.value()) for m in msgs)
        )
        assert len({uid for uid, _ in revisions}) == 8  # each actor's burst, and two more after
        assert max(revisions.values()) == 1  # no revision written twice
    finally:
        proxy.cut()
        broker.stop()
