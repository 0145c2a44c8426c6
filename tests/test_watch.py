"""`lifemon watch` end to end: real `lifemon watch` processes tail pfi.alerts on Tansu while the
monitor raises alerts; what they print is read back. New means produced after the watch began,
the filters are `lifemon alerts`' own, a terminal gets colours, and Ctrl-C ends it cleanly."""

from __future__ import annotations

import os
import pty
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from conftest import T0, access, entitlement
from test_alerts import finding
from test_pipeline import ROOT, make_config, monitor, send, write_config

from schemas.models import Severity
from streams.alert_query import SEVERITY_STYLE
from streams.alerts import build_alert
from streams.runtime import ensure_topics
from streams.sinks.kafka import encode_alert
from streams.watch import matches

pytestmark = pytest.mark.integration

STARTED: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _no_watch_left() -> Any:
    """A test that fails mid-way left its `lifemon watch` processes tailing the broker for good (a
    CI run under load found three an hour later): each ends with its test."""
    yield
    while STARTED:
        proc = STARTED.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


class Watch:
    """A `lifemon watch` process; its stdout (a pipe, or a terminal with `tty`) and its log lines
    collected as they come."""

    def __init__(self, config: Path, *flags: str, tty: bool = False):
        env = {**os.environ, "PYTHONPATH": str(ROOT), "LIFEMON_LOG_FORMAT": "logfmt"}
        cmd = [sys.executable, "-m", "streams.cli", "watch", "--config", str(config), *flags]
        self.out: list[str] = []
        self.log: list[str] = []
        if tty:
            master, slave = pty.openpty()
            self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=slave, stderr=subprocess.PIPE)
            os.close(slave)
            reader = os.fdopen(master, "rb", buffering=0)
        else:
            self.proc = subprocess.Popen(
                cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            reader = self.proc.stdout  # type: ignore[assignment]
        STARTED.append(self.proc)
        threading.Thread(target=self._read, args=(reader, self.out), daemon=True).start()
        threading.Thread(target=self._read, args=(self.proc.stderr, self.log), daemon=True).start()

    @staticmethod
    def _read(stream: Any, into: list[str]) -> None:
        try:
            for line in iter(stream.readline, b""):
                into.append(line.decode().rstrip("\r\n"))
        except OSError:  # the terminal closed with the process
            pass

    def wait_for(self, lines: list[str], text: str, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while not any(text in line for line in lines):
            assert self.proc.poll() is None, "\n".join(self.log)
            assert time.monotonic() < deadline, f"never saw {text!r}:\n" + "\n".join(self.out + self.log)
            time.sleep(0.1)

    def stop(self) -> None:
        """Ctrl-C, as at a terminal."""
        self.proc.send_signal(signal.SIGINT)
        assert self.proc.wait(30) == 0, "\n".join(self.log)
        time.sleep(0.2)  # the readers take the last lines

    def alerts(self) -> list[str]:
        """The alert lines (each alert's second line is its summary, indented)."""
        return [line for line in self.out if line and not line.startswith(" ")]


def old_alerts(bootstrap: str, topic: str, policy: Any) -> None:
    """Three revisions of e1's alert as the runtime produces them (the same encoder), there before any
    watch began; sent in one batch, whose end a broker may report short (Tansu reports its base + 1)."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 100})
    for revision in (1, 2, 3):
        found = finding(
            severity=Severity.critical,
            revision=revision,
            summary=f"e1 read {600 * revision} records of {600 * revision} customers",
            subject_count=600 * revision,
            event_count=600 * revision,
            last_seen=T0 + 600_000 * revision,
        )
        key, value, headers = encode_alert(build_alert(found, policy.detectors["bulk_query"]))
        producer.produce(topic, value=value, key=key, headers=headers)
    assert producer.flush(10) == 0


def actors(lines: list[str]) -> set[str]:
    return {a for line in lines for a in ("e1", "e2", "e3") if f" {a} " in line}


def test_watch_shows_new_alerts_live_filtered_and_stops_on_ctrl_c(
    broker, ch, names, policy, catalog, tmp_path
):
    config = make_config(names, broker, "chdb://unused")
    t = config.topics
    path = write_config(config, tmp_path / "lifemon.yaml")
    ensure_topics(broker, config)
    old_alerts(broker, t.alerts, policy)
    send(broker, t.entitlements, [entitlement(a) for a in ("e2", "e3")])
    live = monitor(config, ch, policy, catalog)  # joins its group while the watches start
    running = threading.Thread(target=live.run, kwargs={"max_seconds": 120}, daemon=True)
    running.start()

    everything = Watch(path)
    serious = Watch(path, "--detector", "bulk_query", "--severity", "high", tty=True)
    history = Watch(path, "--from-beginning")
    for w, where in ((everything, "from now on"), (serious, "from now on"), (history, "from the beginning")):
        w.wait_for(w.log, f"watching {t.alerts} {where}")

    # while they watch: e2 reads 45 customers (over a lobby manager's 40, under the law's 50: medium),
    # e3 reads 60 (the law's 50 for property data: high)
    send(broker, t.access, access("e2", customers=45, every_s=5), key=b"e2")
    send(broker, t.access, access("e3", customers=60, every_s=5), key=b"e3")
    for w in (everything, history):
        w.wait_for(w.out, " e2 ")
    for w in (everything, serious, history):
        w.wait_for(w.out, " e3 ")
    live.stop_event.set()
    running.join(60)
    for w in (everything, serious, history):
        w.stop()

    assert actors(everything.alerts()) == {"e2", "e3"}  # e1's alert was there before: not new
    assert sum(" e1 " in x for x in history.alerts()) == 3
    assert actors(history.alerts()) == {"e1", "e2", "e3"}
    assert actors(serious.alerts()) == {"e3"}  # medium is below the least severity asked for
    line = next(x for x in everything.alerts() if " e3 " in x)
    assert "high" in line and "bulk_query" in line and "批量查询个人金融信息 / Bulk query of personal" in line
    summary = everything.out[everything.out.index(line) + 1]
    assert summary.startswith("    e3 read 60 records of 60 customers")
    # colours only on a terminal
    assert SEVERITY_STYLE["high"] in serious.out[0] and "\x1b[" not in "".join(everything.out)
    for w in (everything, serious, history):  # a clean exit: a last log line, no traceback
        assert "stopped;" in w.log[-1] and not any("Traceback" in x for x in w.log)


def test_watch_without_the_alerts_topic_says_so(broker, names, tmp_path) -> None:
    config = make_config(names, broker, "chdb://unused")  # topics never created
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "streams.cli",
            "watch",
            "--config",
            str(write_config(config, tmp_path / "c.yaml")),
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "LIFEMON_LOG_FORMAT": "logfmt"},
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert f"topic {config.topics.alerts} does not exist" in proc.stderr.decode()


def test_a_long_actor_widens_the_column_for_the_lines_after_it(broker, names, policy, tmp_path) -> None:
    """A new user's watch printed `sensors_analytics      1 observation` and `proc_call_center  4,747
    records`: the actor column 16 wide, an SDK's or a recipient's id pushing the counts, the title
    and the id out of line. It is as wide as the widest actor shown yet: from that line on, aligned."""
    config = make_config(names, broker, "chdb://unused")
    ensure_topics(broker, config)
    producer = Producer({"bootstrap.servers": broker})
    for n, actor in enumerate(("e1", "proc_card_personalization", "e2", "sensors_analytics")):
        found = finding(key=actor, actor_id=actor, window_start=1000 + n, last_seen=T0 + n)
        key, value, headers = encode_alert(build_alert(found, policy.detectors["bulk_query"]))
        # one partition: the watch prints them in this order
        producer.produce(config.topics.alerts, value=value, key=key, headers=headers, partition=0)
    assert producer.flush(10) == 0
    history = Watch(write_config(config, tmp_path / "lifemon.yaml"), "--from-beginning")
    history.wait_for(history.out, " sensors_analytics ")
    history.stop()
    lines = {a: line for line in history.alerts() for a in ("e1", "proc_card_personalization", "e2", "sensors_analytics") if f" {a} " in line}  # fmt: skip
    counted = {a: line.index(" customers ") for a, line in lines.items()}
    # e1 came before any longer actor; every line from the recipient's on starts its counts in one column
    assert counted["proc_card_personalization"] == counted["e2"] == counted["sensors_analytics"], lines
    assert counted["e1"] < counted["e2"]


def test_filters_are_those_of_lifemon_alerts() -> None:
    row = {"detector": "bulk_query", "severity": "high"}
    assert matches(row, None, None) and matches(row, "bulk_query", Severity.high)
    assert not matches(row, "transfer_policy", None)
    assert not matches(row, None, Severity.critical) and matches(row, None, Severity.medium)
