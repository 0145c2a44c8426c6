"""Operators' surfaces of `lifemon run`, checked by real processes: Debian's Prometheus scrapes a
running lifemon (Tansu + chDB) and its HTTP API must show the series with the values the run
produced; /healthz and /readyz answer as a load balancer or kubelet reads them; every log line is
structured."""

from __future__ import annotations

import logging
import re
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from conftest import access, entitlement
from receivers import free_port, ready_daemon
from test_pipeline import make_config, run_cli, send, write_config

from streams.config import load_config
from streams.metrics import OpsServer
from streams.runtime import ensure_topics
from streams.stats import Stats

PROMETHEUS = shutil.which("prometheus")
MISSING = "Debian's prometheus is not installed (apt-get install -y prometheus; `make test-deps` does)"


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def wait_for(check: Callable[[], Any], what: str, timeout_s: float = 60, proc: Any = None) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        if proc is not None:
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
        try:
            found = check()
        except OSError:
            found = None
        if found:
            return found
        assert time.monotonic() < deadline, f"{what} never came"
        time.sleep(0.3)


@contextmanager
def prometheus(target: str, folder: Path) -> Iterator[str]:
    """Prometheus on a loopback port scraping `target` (host:port) every second; yields its URL."""
    assert PROMETHEUS, MISSING
    port = free_port()
    config = folder / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        "scrape_configs:\n"
        "  - job_name: lifemon\n"
        f"    static_configs: [{{targets: ['{target}']}}]\n"
    )
    with ready_daemon(
        [
            PROMETHEUS,
            f"--config.file={config}",
            f"--storage.tsdb.path={folder / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        f"http://127.0.0.1:{port}",
    ) as url:
        yield url


def newest_severity() -> str:
    """The alerts by their newest severity, as docs/operations.md gives it to operators (raised, plus
    changes to the severity, minus changes from it): the test runs the documented expression."""
    text = (Path(__file__).resolve().parent.parent / "docs/operations.md").read_text(encoding="utf-8")
    found = re.search(r"#### Alerts by their newest severity\n.*?```promql\n(.*?)```", text, re.S)
    assert found, "docs/operations.md lost its PromQL of alerts by their newest severity"
    return found.group(1)


def query(prom: str, expr: str) -> dict[str, float]:
    """An instant query: {'label=value,...': value} of each series."""
    status, body = get(f"{prom}/api/v1/query?{urllib.parse.urlencode({'query': expr})}")
    assert status == 200, body
    out = {}
    for r in orjson.loads(body)["data"]["result"]:
        labels = ",".join(
            f"{k}={v}" for k, v in sorted(r["metric"].items()) if k not in ("__name__", "job", "instance")
        )
        out[labels] = float(r["value"][1])
    return out


@pytest.mark.integration
@pytest.mark.skipif(PROMETHEUS is None, reason=MISSING)
def test_prometheus_scrapes_a_running_lifemon(broker, names, tmp_path) -> None:
    port = free_port()
    config = make_config(names, broker, f"chdb://{tmp_path / 'chdb'}", metrics={"port": port})
    # librdkafka then speaks as each client starts and stops: every client lifemon makes must hand
    # its lines to the log format (an admin client without `logger` wrote `%7|…` to stderr)
    config.kafka.client["debug"] = "generic"
    ensure_topics(broker, config)
    t = config.topics
    send(broker, t.entitlements, [entitlement("e1")])
    send(broker, t.access, access("e1", customers=60, every_s=5))
    proc = run_cli(write_config(config, tmp_path / "lifemon.yaml"), 600, {"LIFEMON_LOG_FORMAT": "json"})
    ops = f"http://127.0.0.1:{port}"
    try:
        with prometheus(f"127.0.0.1:{port}", tmp_path) as prom:
            wait_for(lambda: get(ops + "/readyz")[0] == 200, "/readyz 200", proc=proc)
            assert get(ops + "/healthz") == (200, "ok\n")
            processed = 'lifemon_events_processed_total{stream="access"}'
            wait_for(
                lambda: query(prom, processed) == {"stream=access": 60}, "60 access events in Prometheus"
            )
            # every series a first count can raise is there at 0 from the start, so the first dead
            # letter after it is an increase the shipped rule sees (a probe's was born at 1: rate 0,
            # no page); likewise the first incident of a class
            dead = 'lifemon_dead_letters_total{stream="access",kind="malformed"}'
            wait_for(lambda: query(prom, dead) == {"kind=malformed,stream=access": 0}, "the zero series")
            assert query(prom, 'lifemon_incidents_total{class="cross_border",severity="critical"}')
            send(broker, t.access, [b"{not json"])
            rule = yaml.safe_load(
                (Path(__file__).resolve().parent.parent / "deploy/prometheus/rules.yml").read_text()
            )
            expr = next(
                r["expr"]
                for g in rule["groups"]
                for r in g["rules"]
                if r.get("alert") == "LifemonDeadLetters"
            )
            wait_for(lambda: query(prom, expr), "the first dead letter's rate in the shipped rule")
            wait_for(lambda: query(prom, "lifemon_checkpoint_duration_seconds_count > 0"), "a checkpoint")
            assert query(prom, 'up{job="lifemon"}') == {"": 1}
            assert query(prom, 'lifemon_records_consumed_total{stream="access"}') == {"stream=access": 61}
            assert query(prom, "lifemon_events_processed_total")["stream=entitlements"] == 1
            assert query(prom, "sum by (stream) (lifemon_dead_letters_total) > 0") == {"stream=access": 1}
            # counted as it is raised, which a scrape may fall just before (a loaded CI's did)
            wait_for(
                lambda: query(prom, "lifemon_alerts_total > 0") == {"detector=bulk_query,severity=high": 1},
                "the alert in Prometheus",
            )
            # 60 property records past art. 5's 50: the incident the response team must report,
            # counted when a checkpoint writes it (the alert is counted as it is raised)
            wait_for(
                lambda: query(prom, "lifemon_incidents_total > 0") == {"class=bulk_export,severity=high": 1},
                "the incident in Prometheus",
            )
            assert query(prom, 'lifemon_alert_revisions_total{status="open"}') == {
                "detector=bulk_query,status=open": 1
            }
            # probe_v3 L4: e2's 60 reads of names and mobiles open a medium alert, 1 100 more make it
            # high; it stays counted where it was raised and the change is counted, so the shipped
            # doc's expression gives each severity as ClickHouse's newest revisions do
            changed = 'lifemon_alert_severity_changes_total{detector="bulk_query",from="medium",to="high"}'
            assert query(prom, changed) == {"detector=bulk_query,from=medium,to=high": 0}  # from the start
            send(broker, t.entitlements, [entitlement("e2")], key=b"e2")
            entitlements = processed.replace("access", "entitlements")
            wait_for(lambda: query(prom, entitlements) == {"stream=entitlements": 2}, "e2's entitlement")
            names = ("customer_name", "mobile_phone")
            send(broker, t.access, access("e2", customers=60, fields=names, every_s=5), key=b"e2")
            medium = 'lifemon_alerts_total{detector="bulk_query",severity="medium"}'
            wait_for(lambda: query(prom, medium) == {"detector=bulk_query,severity=medium": 1}, "e2's medium")
            more = access("e2", customers=1100, fields=names, every_s=1, start=600_000, first_customer=100)
            send(broker, t.access, more, key=b"e2")
            wait_for(lambda: query(prom, changed + " > 0"), "e2's alert escalated")
            newest = query(prom, newest_severity())
            assert {k: v for k, v in newest.items() if v} == {"detector=bulk_query,severity=high": 2}
            assert newest["detector=bulk_query,severity=medium"] == 0
            # caught up: a series per assigned partition, all at zero, in messages and in seconds
            # (a scrape can still hold the lag of a batch before the last one: wait for it to settle)
            lag_query = f'lifemon_consumer_lag_messages{{topic="{t.access}"}}'
            wait_for(lambda: set(query(prom, lag_query).values()) == {0.0}, "no lag in messages")
            wait_for(
                lambda: set(query(prom, "lifemon_consumer_lag_seconds").values()) == {0.0},
                "no lag in seconds",
            )
            lag = query(prom, lag_query)
            assert sorted(lag) == [f"partition={p},stream=access,topic={t.access}" for p in range(3)]
            batches = query(prom, "lifemon_batch_duration_seconds_count")[""]
            assert batches >= 1
            assert query(prom, 'lifemon_batch_duration_seconds_bucket{le="+Inf"}') == {"le=+Inf": batches}
            assert 0 < query(prom, "lifemon_batch_duration_seconds_sum")[""] < 10 * batches
            assert query(prom, "lifemon_ready") == {"": 1}
            assert query(prom, "lifemon_assigned_partitions")[""] >= 3
            assert query(prom, "process_resident_memory_bytes")[""] > 10_000_000
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out.decode()
    text = out.decode()
    plain = [line for line in text.splitlines() if not line.startswith("{")]
    assert not plain, text  # every line is a JSON object
    lines = [orjson.loads(line) for line in text.splitlines()]
    assert all({"ts", "level", "logger", "msg"} <= set(line) for line in lines)
    (serving,) = [line for line in lines if line["msg"].startswith("serving /metrics")]
    assert serving["port"] == port and serving["level"] == "info"


def test_healthz_fails_when_the_loop_stalls_and_readyz_until_partitions_are_assigned() -> None:
    stats = Stats()
    with OpsServer(stats, "127.0.0.1", 0, stall_after_s=30) as server:
        url = f"http://127.0.0.1:{server.port}"
        assert get(url + "/healthz") == (200, "ok\n")
        status, body = get(url + "/readyz")
        assert status == 503 and body.startswith("not ready")
        stats.on_assigned(6)
        assert get(url + "/readyz") == (200, "ready: 6 partition(s) assigned\n")
        stats.on_revoked()  # a rebalance: no traffic until the new assignment is restored
        assert get(url + "/readyz")[0] == 503
        stats.last_tick -= 31
        status, body = get(url + "/healthz")
        assert status == 503 and body.startswith("stalled: the main loop has not moved for 31s")
        assert get(url + "/nothing")[0] == 404


def test_a_scraper_hanging_up_prints_no_traceback(capsys, caplog) -> None:
    """CI under load: Prometheus timed out a scrape and hung up mid-answer, and socketserver printed
    the BrokenPipeError's traceback on stderr, lines of the process's output that are no JSON
    object. A client's hang-up is no error of lifemon's; any other failure goes to the log."""
    with OpsServer(Stats(), "127.0.0.1", 0, stall_after_s=30) as ops:
        for error in (
            BrokenPipeError(32, "Broken pipe"),
            ConnectionResetError(104, "reset"),
            ValueError("a bug"),
        ):
            try:
                raise error
            except Exception:
                with caplog.at_level(logging.DEBUG, "streams.metrics"):
                    ops.server.handle_error(None, ("127.0.0.1", 5555))
    # stderr holds log records alone, whatever handler an earlier test gave the root logger
    err = capsys.readouterr().err
    assert "Exception occurred during processing" not in err, err
    assert all(line.startswith(("ts=", "{")) for line in err.splitlines()), err
    (failed,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert failed.exc_info is not None and failed.exc_info[0] is ValueError


def test_the_compose_healthcheck_asks_the_port_lifemon_serves() -> None:
    root = Path(__file__).resolve().parent.parent
    config = load_config(root / "deploy" / "lifemon.yaml")
    assert (config.metrics.port, config.metrics.host, config.log.format) == (9464, "0.0.0.0", "json")
    service = yaml.safe_load((root / "docker-compose.yml").read_text())["services"]["lifemon"]
    assert f"http://127.0.0.1:{config.metrics.port}/healthz" in " ".join(service["healthcheck"]["test"])
    assert "ports" not in service  # scraped on the compose network, never published


def test_an_incident_of_two_classes_counts_in_a_series_exported_from_the_start(policy) -> None:
    """`lifemon_incidents_total` counts an incident under its first class in policy order, the
    class Alertmanager's `leakage_class` label gives it: a series `Known.incidents` exports at 0, so
    `increase()` sees the first one (a probe's `c3_to_third_party+unconsented_sharing` series was
    born at 1, and a CVN sent out without consent paged no one)."""
    from types import SimpleNamespace

    from schemas.models import Severity
    from streams.metrics import Known

    classes = list(policy.incidents.classes)
    stats = Stats()
    two = SimpleNamespace(incident_id="i1", leakage_classes=classes[:2], severity=Severity.critical)
    stats.on_incidents([two, two])
    assert dict(stats.incidents) == {(classes[0], "critical"): 1}
    assert set(stats.incidents) <= set(Known(leakage_classes=classes).incidents())


def test_an_alert_escalated_counts_once_raised_and_once_changed_as_the_stored_severity_says(policy) -> None:
    """probe_v3 L4: an employee's 60 reads opened a medium alert, 1 100 more made it high: ClickHouse,
    the report and Grafana count it high (its newest revision), `/metrics` counted it medium, the
    severity it was first raised with. A counter never goes down: it stays counted where it was
    raised, and the change is counted, so raised + changes in - changes out is the stored figure."""
    from conftest import fed, refs

    from detectors import load_detectors
    from policy.catalog import Catalog
    from streams.engine import Engine
    from streams.metrics import Known
    from streams.pseudonym import Pseudonymizer

    engine = Engine(
        load_detectors(policy), Catalog(policy), pseudonymize=Pseudonymizer(b"unit-test-key-0123456789")
    )
    engine.apply_reference("entitlements", refs("entitlements", [entitlement("e1")]))
    names = ("customer_name", "mobile_phone")  # no art. 5 tier reached early: the role's threshold opens it
    reads = access("e1", customers=60, fields=names, every_s=5)
    more = access("e1", customers=1100, fields=names, every_s=1, start=600_000, first_customer=100)
    stats, newest = Stats(), {}
    with OpsServer(stats, "127.0.0.1", 0, 30, Known(detectors=["bulk_query"])) as server:
        for offset, batch in ((0, reads), (len(reads), more)):
            alerts = engine.process("access", "pfi.access", 0, fed("access", batch, "pfi.access", offset))
            alerts += engine.advance()
            stats.on_alerts(alerts)  # as the runtime does after each batch
            newest |= {a.alert_id: a.severity.value for a in alerts}
        assert list(newest.values()) == ["high"]  # one alert, raised medium (below)
        _, text = get(f"http://127.0.0.1:{server.port}/metrics")
    series = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(("lifemon_alerts_total", "lifemon_alert_severity_changes_total"))
    }
    assert series['lifemon_alerts_total{detector="bulk_query",severity="medium"}'] == 1
    assert series['lifemon_alerts_total{detector="bulk_query",severity="high"}'] == 0
    changed = 'lifemon_alert_severity_changes_total{detector="bulk_query",from="medium",to="high"}'
    assert series[changed] == 1
    # every change to a graver severity is there at 0 from the start: a rule's increase() sees the first
    assert (
        series['lifemon_alert_severity_changes_total{detector="bulk_query",from="high",to="critical"}'] == 0
    )
    assert sum(1 for k in series if k.startswith("lifemon_alert_severity_changes_total")) == 10

    # raised + changes in - changes out: the alerts by their newest severity, as ClickHouse counts them
    def scraped(name: str, label: str, sev: str) -> float:
        return sum(n for k, n in series.items() if k.startswith(name) and f'{label}="{sev}"' in k)

    stored = {
        sev: scraped("lifemon_alerts_total", "severity", sev)
        + scraped("lifemon_alert_severity_changes_total", "to", sev)
        - scraped("lifemon_alert_severity_changes_total", "from", sev)
        for sev in ("medium", "high")
    }
    assert (
        stored
        == {sev: list(newest.values()).count(sev) for sev in ("medium", "high")}
        == {"medium": 0, "high": 1}
    )
