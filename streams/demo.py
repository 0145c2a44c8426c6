"""`lifemon demo` / `make demo`: the whole pipeline on the embedded default, scored against the
generator's ground truth, so a new user sees in one screen what lifemon finds and misses."""

from __future__ import annotations

import gc
import sys
import time
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import orjson

from detectors.base import n_of
from policy.catalog import Catalog
from policy.model import Policy
from schemas.models import REFERENCE_STREAMS, SEVERITY_RANK, Alert
from streams.alerts import to_ocsf
from streams.reviews import ALERTS, INCIDENTS


def rule_names(specs: list[Any]) -> dict[str, str]:
    """Rule id -> the rule it names, where a detector gives each rule an id of its own
    (transfer_policy's LM-TP-006: `recipient_not_approved`)."""
    return {
        spec.rule_id: name for s in specs for name, spec in s.rules.items() if getattr(spec, "rule_id", None)
    }


def named_as_alerts(
    truth: list[dict], pseudonymize: Callable[[str], str], seal: Callable[[str], str]
) -> list[dict]:
    """The ground truth as the demo's alerts name customers: its subjects by pseudonym, a customer id
    in its keys and words as the door seals one (`Engine.names`). The demo's file sits beside its
    report, and a monitor writes no customer's id, synthetic or not (a probe found 31 in it); read
    beside the alerts, each violation's subject is the pseudonym its alert names."""
    return [
        {
            **t,
            "key": seal(t["key"]),
            "description": seal(t["description"]),
            **({"subject": pseudonymize(t["subject"])} if "subject" in t else {}),
        }
        for t in truth
    ]


def score(
    alerts: list[Alert],
    truth: list[dict],
    detectors: list[str],
    pseudonymize: Callable[[str], str] = str,
    rules: dict[str, str] | None = None,
) -> dict[str, dict[str, int]]:
    """Per detector: injected violations found / missed, and alerts matching none (false alarms).
    An alert matches a violation of its detector on the same key (its actor, or a customer whose
    pseudonym it names: the violation's `subject` where its key is a record) whose time overlaps
    its window, and of its rule where the alert's rule id names one (`LM-RO-001.retention_expired`,
    or one of `rules`, `rule_names`): another rule's alert on an injected transfer is a false alarm
    (a probe's consent alert on the unlisted broker's share passed as the broker's)."""
    result = {}
    for kind in detectors:
        wanted = [t for t in truth if t["detector"] == kind]
        raised = [a for a in alerts if a.detector == kind]

        def hit(a: Alert, t: dict) -> bool:
            keyed = a.actor_id == t["key"] or pseudonymize(t.get("subject", t["key"])) in a.subjects_sample
            named = a.rule_id.partition(".")[2] or (rules or {}).get(a.rule_id)
            return (
                keyed
                and named in (None, t["rule"])
                and a.window_start <= t["ts_end"]
                and t["ts_start"] <= a.window_end
            )

        found = sum(any(hit(a, t) for a in raised) for t in wanted)
        false = sum(not any(hit(a, t) for t in wanted) for a in raised)
        result[kind] = {
            "injected": len(wanted),
            "found": found,
            "missed": len(wanted) - found,
            "false_alarms": false,
        }
    return result


# beside the embedded database: names the database the last demo created, until something else
# (`lifemon run`, a replay stored there) writes to it (`claim_embedded`)
MARKER = "demo-database"


def demos_database(config: Any) -> bool:
    """Whether the last demo made the configured embedded database (its mark names it)."""
    marker = config.data_dir / MARKER
    return marker.is_file() and marker.read_text() == config.clickhouse.database


def claim_embedded(config: Any, dsn: str | None = None) -> None:
    """What `lifemon run` or a replay stores in the embedded database is not the demo's: the next demo
    must not drop it. The demo's own synthetic day goes first, said, so what the monitor shows is
    its own (a probe's `lifemon run` kept the demo's 65 alerts and 12 incidents, their deadlines long
    passed, beside the bank's). `dsn`: the database the run or replay writes to, which claims the
    embedded one if it names it (none: it is the embedded one)."""
    if dsn and Path(dsn.removeprefix("chdb://")).resolve() != (config.data_dir / "chdb").resolve():
        return
    db, marker = config.clickhouse.database, config.data_dir / MARKER
    if demos_database(config):
        from streams.clickhouse import connect

        connect(config.clickhouse_dsn()).command(f"DROP DATABASE IF EXISTS {db}")
        print(
            f"lifemon: database {db} in {config.data_dir / 'chdb'} held the last demo's synthetic day: "
            "dropped, so what it holds from now on is this monitor's own",
            file=sys.stderr,
        )
    marker.unlink(missing_ok=True)


def _fresh_database(config: Any, replace: bool) -> bool:
    """Start the embedded demo database anew: drop it if the last demo created it (or `replace`).
    False, after saying why and what to do, if it holds what a run or a replay stored."""
    from streams.clickhouse import connect, tables_present

    db, marker = config.clickhouse.database, config.data_dir / MARKER
    client = connect(config.clickhouse_dsn())
    held = tables_present(client, db, ["alerts", ALERTS.table, INCIDENTS.table])
    ours = demos_database(config)
    if "alerts" in held and not ours and not replace:
        print(
            f"lifemon demo: database {db} in {config.data_dir / 'chdb'} holds what this demo did not write "
            "(a `lifemon run`, a replay, or a demo of an earlier lifemon), and the demo starts its "
            "database anew. Keep it: move the folder aside, or run the demo with another "
            "LIFEMON_DATA_DIR (unset, it is ./.lifemon: another directory). Drop it: lifemon demo --replace",
            file=sys.stderr,
        )
        return False
    # an analyst's or responder's practice on the last demo goes with it: said, not silent
    reviewed = [
        n_of(n, kind.noun)
        for kind in (ALERTS, INCIDENTS)
        if kind.table in held
        and (n := client.query(f"SELECT uniqExact({kind.id}) FROM {db}.{kind.table}").result_rows[0][0])
    ]
    if reviewed:
        print(
            f"lifemon demo: the last demo's alerts go, and the reviews of {' and '.join(reviewed)} with them",
            file=sys.stderr,
        )
    client.command(f"DROP DATABASE IF EXISTS {db}")
    config.data_dir.mkdir(parents=True, exist_ok=True)
    marker.write_text(db)
    return True


def run_demo(
    config: Any,
    policy: Policy,
    specs: list[Any],
    catalog: Catalog,
    events: int,
    seed: int,
    replace: bool = False,
) -> int:
    from streams.cli import _broker, _monitor, _progress
    from streams.produce import produce
    from streams.runtime import ensure_topics
    from streams.workload import generate

    t0 = time.monotonic()
    if not _fresh_database(config, replace):
        return 2  # as a usage error
    with ExitStack() as stack:
        bootstrap = _broker(config, stack)
        ensure_topics(bootstrap, config)
        workload = generate(events, seed=seed, policy=policy)
        n = produce(
            bootstrap, config, workload.records, progress=lambda k: _progress(f"producing: {k:>9} records")
        )
        size = ", ".join(
            f"{k.replace('_', ' ')}: {v}" for k, v in workload.bank.items() if isinstance(v, int)
        )
        refs = sum(1 for s, _, _ in workload.records if s in REFERENCE_STREAMS)
        _progress(
            f"produced {n} records ({refs} entitlement, consent and customer reference records, {n - refs} events); "
            f"bank: {size}",
            final=True,
        )
        monitor = _monitor(config, bootstrap, specs, catalog)
        stats = monitor.run(idle_exit_s=3.0)
        pseudonymize = monitor.engine.pseudonymize
        config.data_dir.mkdir(parents=True, exist_ok=True)
        truth = named_as_alerts(workload.truth, pseudonymize, monitor.engine.names.text)
        (config.data_dir / "truth.json").write_bytes(orjson.dumps(truth, option=orjson.OPT_INDENT_2))
        del monitor  # (with the gc below) its Kafka clients go before the embedded broker does
        gc.collect()  # the monitor and its consumer's callbacks form a cycle
        _progress(stats.line(final=True), final=True)
    elapsed = time.monotonic() - t0
    alerts = sorted(stats.alerts.values(), key=lambda a: a.first_seen)
    print("== lifemon demo ==")
    print("events processed by stream: " + ", ".join(f"{s} {n}" for s, n in sorted(stats.events.items())))
    print(
        f"dead letters: {sum(stats.dead.values())}   elapsed: {elapsed:.1f}s (broker start, generation, "
        f"producing and monitoring)"
    )
    from streams.catalog_gaps import summary
    from streams.clickhouse import connect

    client = connect(config.clickhouse_dsn())
    print(f"{summary(client, config.clickhouse.database)}   (lifemon catalog gaps lists them)")
    sev = Counter((a.detector, a.severity.value) for a in alerts)
    print(
        "alerts by detector and severity: "
        + (", ".join(f"{d}/{s} {n}" for (d, s), n in sorted(sev.items())) or "none")
    )
    print("\ndetection against ground truth:")
    print(f"  {'detector':<22}{'injected':>9}{'found':>7}{'missed':>8}{'false alarms':>14}")
    scored = score(alerts, workload.truth, [s.kind for s in specs], pseudonymize, rule_names(specs))
    for kind, s in scored.items():
        print(f"  {kind:<22}{s['injected']:>9}{s['found']:>7}{s['missed']:>8}{s['false_alarms']:>14}")
    if alerts:
        a = max(alerts, key=lambda a: (SEVERITY_RANK[a.severity], a.subject_count))
        o = to_ocsf(a)
        print(f"\none alert as the SOC sees it on pfi.alerts (OCSF {o['class_name']}):")
        print(f"  {o['finding_info']['title']}  severity={o['severity']}  uid={o['finding_info']['uid']}")
        print(f"  {a.summary}")
        print(f"  regulation: {'; '.join(a.regulation)}")
        print(f"              {'; '.join(a.regulation_en)}")
        print(f"  subjects (HMAC pseudonyms): {', '.join(a.subjects_sample[:3])} ...")
    from streams.report import Period, gather, render

    # the bank's zone, as `lifemon report` shows it
    stored = gather(client, config.clickhouse.database, Period(timezone=policy.recipients.timezone))
    print(
        f"\nleakage incidents for the response team: {stored['incidents']}   (lifemon incidents lists them)"
    )
    report = config.data_dir / "report.html"
    report.write_text(render(stored), encoding="utf-8")
    print(f"\nreport: {report}")
    print(f"ClickHouse: {config.clickhouse_dsn()} (database {config.clickhouse.database})")
    print(f"ground truth: {config.data_dir / 'truth.json'}")
    missed = sum(s["missed"] + s["false_alarms"] for s in scored.values())
    return 0 if missed == 0 else 1
