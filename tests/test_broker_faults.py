"""Broker faults through the real `lifemon run` process and a real Tansu broker of its own: a broker
that comes back empty is said loudly and ends the run; SIGTERM ends it in bounded time even while
the broker is down."""

from __future__ import annotations

import time

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
        assert "no longer exists on the broker (was it restarted empty?)" in out.decode()
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
