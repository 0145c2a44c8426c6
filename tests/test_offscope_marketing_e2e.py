"""Off-scope marketing end to end through a running monitor, a real Tansu broker and chDB: a
withdrawal that reaches pfi.consents after the push it predates, within the allowed lateness,
still makes the push an alert; one arriving after the watermark passed the push does not."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from test_offscope_marketing import MIN, consent, push
from test_pipeline import committed_offsets, latest_alerts, make_config, monitor, read_all, send

pytestmark = pytest.mark.integration


def wait_committed(broker: str, group: str, topic: str, n: int, runner: threading.Thread) -> None:
    deadline = time.monotonic() + 30
    while committed_offsets(broker, group, topic) < n:
        assert runner.is_alive() and time.monotonic() < deadline, f"{n} pushes never checkpointed"
        time.sleep(0.2)


def test_late_withdrawal_within_the_lateness_through_tansu_and_chdb(
    broker, ch, names, policy, catalog
) -> None:
    config = make_config(names, broker, "chdb://unused")
    m = monitor(config, ch, policy, catalog)
    t, group = config.topics, names["group"]
    for subject in ("C1", "C2", "C3", "C9"):
        send(broker, t.consents, [consent(subject, channel=None)], key=subject.encode())

    def pushes(*items: Any) -> None:
        for p in items:
            send(broker, t.marketing, [p], key=p.subject_id.encode())

    runner = threading.Thread(target=m.run, kwargs={"idle_exit_s": 4, "max_seconds": 90})
    runner.start()
    # C1 and C3 are pushed while their consent stands; C2's SMS is approved by its submitter
    pushes(push("C1", at=0), push("C3", at=0), push("C2", at=30_000, approver_id="E1"))
    wait_committed(broker, group, t.marketing, 3, runner)
    # C1 withdrew ten minutes before its push, but the record arrives only now: within the lateness
    send(broker, t.consents, [consent("C1", at=-10 * MIN, status="withdrawn", channel=None)], key=b"C1")
    pushes(push("C9", at=3 * MIN))  # moves the watermark past the pushes
    wait_committed(broker, group, t.marketing, 4, runner)
    time.sleep(1.0)  # a few quiet ticks: the verdicts on C1..C3 are in
    # C3's withdrawal arrives after the watermark passed its push: too late to change the verdict
    send(broker, t.consents, [consent("C3", at=-10 * MIN, status="withdrawn", channel=None)], key=b"C3")
    pushes(push("C9", at=6 * MIN, n=1))
    runner.join(timeout=90)
    assert not runner.is_alive()

    alerts = latest_alerts(read_all(broker, t.alerts, expect_at_least=2))
    by_rule = {next(k for k in o["unmapped"]["counts"] if k.startswith("rule_")): o for o in alerts.values()}
    assert set(by_rule) == {"rule_after_withdrawal", "rule_four_eyes"}
    late = by_rule["rule_after_withdrawal"]
    assert late["unmapped"]["counts"]["opt_out_delay_s"] == 600
    assert (
        late["finding_info"]["title"]
        == "撤回同意后仍推送营销信息 / Marketing push after the subject opted out"
    )
    assert late["evidences"][0]["actor"]["user"]["uid"] == "E1"
    assert all(s.startswith("p_") for o in alerts.values() for s in o["unmapped"]["subjects_sample"])

    db = names["database"]
    rows = ch.query(
        f"SELECT title_en, severity, counts['opt_out_delay_s'] FROM {db}.alerts FINAL "
        "WHERE detector = 'offscope_marketing' ORDER BY severity"
    ).result_rows
    assert rows == [
        ("Marketing push after the subject opted out", "high", 600),
        ("Marketing SMS not submitted and approved by two people in the SMS roles of its level", "medium", 0),
    ]
