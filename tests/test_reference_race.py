"""Reference data is applied by event time: an entitlement the broker acknowledged just before the
accesses it governs were produced is in force for them, through a running `lifemon run` process
(the landed code judged them before reading it, 4 times out of 4)."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Producer
from conftest import T0, access, entitlement
from test_pipeline import committed_offsets, latest_alerts, make_config, read_all, run_cli, send, write_config

from streams.runtime import ensure_topics

pytestmark = pytest.mark.integration


def test_entitlements_acknowledged_just_before_the_accesses_are_in_force(broker, names, tmp_path) -> None:
    config = make_config(names, broker, f"chdb://{tmp_path / 'chdb'}")
    ensure_topics(broker, config)
    path = write_config(config, tmp_path / "lifemon.yaml")
    t = config.topics
    send(broker, t.access, access("warmup", customers=1), key=b"warmup")
    proc = run_cli(path, until_idle=600)
    try:
        deadline = time.monotonic() + 60
        while committed_offsets(broker, names["group"], t.access) < 1:  # running, caught up and idle
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read().decode()
            time.sleep(0.2)
        producer = Producer({"bootstrap.servers": broker, "linger.ms": 0})
        rounds = 5
        for r in range(rounds):
            start = 3_600_000 * (r + 1) * 3
            lobby, head = f"lobby{r}", f"head{r}"
            # a new lobby manager (threshold 40, not the default 30) and a department head
            # (threshold 200) terminated a second before they read: acknowledged, then at once the reads
            for key, ent in [
                (lobby, entitlement(lobby, ts=T0 + start - 1000)),
                (head, entitlement(head, role="br_dept_head", org="B01", ts=0)),
                (
                    head,
                    entitlement(
                        head, role="br_dept_head", org="B01", ts=T0 + start - 1000, status="terminated"
                    ),
                ),
            ]:
                producer.produce(t.entitlements, ent.model_dump_json().encode(), key.encode())
            assert producer.flush(10) == 0
            for key, events in [
                (lobby, access(lobby, customers=35, start=start, every_s=2)),
                (head, access(head, customers=60, start=start, every_s=2)),
            ]:
                for ev in events:
                    producer.produce(t.access, ev.model_dump_json().encode(), key.encode(), timestamp=ev.ts)
            assert producer.flush(10) == 0
            time.sleep(0.3)
        # the topic read again until every round's bulk alert is there: the unauthorized lookups'
        # alerts come too, and a loaded machine may not have written the last round's yet (a CI's)
        deadline = time.monotonic() + 60
        while True:
            alerts = latest_alerts(read_all(broker, t.alerts, expect_at_least=rounds, timeout_s=60))
            actors = sorted(
                o["evidences"][0]["actor"]["user"]["uid"]
                for o in alerts.values()
                if o["finding_info"]["title"].endswith("Bulk query of personal financial information")
            )  # the terminated heads' reads are unauthorized lookups too: judged by their own detector
            if len(actors) >= rounds or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert actors == [f"head{r}" for r in range(rounds)]  # every terminated head, no lobby manager
    finally:
        proc.terminate()
        proc.communicate(timeout=60)
