"""`lifemon`: one command for the monitor, the generator, replays, the demo and policy checks."""

from __future__ import annotations

import argparse
import difflib
import gc
import logging
import os
import re
import shutil
import sys
import textwrap
import time
import uuid
from collections import Counter
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import orjson

from detectors.base import n_of
from policy import DEFAULT_DIR, PolicyError, load_policy
from policy.catalog import Catalog
from schemas.models import Severity
from streams import logs
from streams.changelog import StateTooNew
from streams.clickhouse import ClickHouseUnavailable, SchemaOutdated
from streams.config import POLICY_HELP
from streams.credentials import SecretUnreadable
from streams.kafka_reach import KafkaSettingRefused, KafkaUnavailable
from streams.pseudonym import ENV_KEY, ONE_OFF, PseudonymKeyError, PseudonymKeyMismatch
from streams.sealed import SealError
from streams.sinks import FatalSinkError, StoppedInOutage

EPILOG = """examples:
  lifemon demo                         generate a bank's day with violations, run the monitor, score it
  lifemon run                          monitor Kafka (embedded Tansu + chDB when nothing is configured)
  lifemon run --runtime faust          the same monitor as a Faust app (docs/runtimes.md)
  lifemon notify --config c.yaml       deliver leakage incidents to Alertmanager / webhooks / PagerDuty
  lifemon ship --config c.yaml --format pgaudit /var/log/postgresql/postgresql.log --follow
                                       ship a server's log to its raw topic, resuming where it stopped
  lifemon generate --out data/ -n 100000 --format avro
  lifemon replay data/ --alerts-out alerts.jsonl
  lifemon ship --format har app.har --app cn.bank.mobilebanking --app-version 9.2.0 --bootstrap k:9092
                                       SDK telemetry from a capture
  lifemon report --out report.html     an HTML report with charts and alerts, for management
  lifemon alerts --review unreviewed --severity high --since 24h
                                       the SOC's queue, filtered (detector, actor, status, review, time)
  lifemon alerts show cc91f269f62a     one alert: rule, regulation, runbook, evidence ids, revisions, reviews
  lifemon alerts ack cc91f269f62a --note "asked the line manager"
  lifemon alerts resolve cc91f269f62a --as false_positive --note "approved export, ticket 4411"
                                       record an analyst's review (LIFEMON_ANALYST or --by says who)
  lifemon incidents --status active    leakage incidents, the earliest report due first
  lifemon watch --bootstrap k:9092 --severity high
                                       new alerts live in the terminal, as pfi.alerts receives them
  lifemon catalog gaps                 tables, logins, SFTP accounts and fields seen that the policy lacks
  lifemon dead-letters --since 24h     the records refused, per topic and reason, and where the first lies
  lifemon policy check                 validate the policy catalog and run every detector's examples
  lifemon detectors                    list the detectors and their rules

environment (docs/configuration.md), over the --config file's keys:
  LIFEMON_KAFKA_BOOTSTRAP, LIFEMON_KAFKA_GROUP, LIFEMON_KAFKA_REACH_TIMEOUT_S (seconds to wait for the
  broker before exit status 4, default 10), LIFEMON_CLICKHOUSE_DSN, LIFEMON_CLICKHOUSE_DATABASE,
  LIFEMON_DATA_DIR, LIFEMON_POLICY_DIR, LIFEMON_SCHEMA_REGISTRY_URL, LIFEMON_METRICS_PORT,
  LIFEMON_METRICS_HOST, LIFEMON_LOG_LEVEL, LIFEMON_LOG_FORMAT (logfmt, json, console)
secrets, only from the environment (docs/security.md):
  LIFEMON_PSEUDONYM_KEY (HMAC key of customer pseudonyms, 16+ bytes: `openssl rand -hex 32`),
  LIFEMON_PSEUDONYM_KEY_V2, _V3, ... (the rotation's key ring), LIFEMON_PSEUDONYM_KEY_VERSION,
  LIFEMON_KAFKA_SASL_PASSWORD, LIFEMON_KAFKA_SSL_KEY_PASSWORD, LIFEMON_KAFKA_OAUTHBEARER_CLIENT_SECRET,
  LIFEMON_CLICKHOUSE_PASSWORD, LIFEMON_SCHEMA_REGISTRY_USER_INFO, LIFEMON_PAGERDUTY_ROUTING_KEY (notify)

exit status: 0 done; 1 failed; 2 a usage, config, policy or secret error, or state a later release
             wrote (a rollback); 3 ClickHouse unreachable, in use or without a lifemon database, or a
             sink failed; 4 Kafka unreachable; 5 replay
             dead-lettered records (without --allow-dead-letters); 130 Ctrl-C (run, watch and ship
             --follow stop cleanly on it: 0)
"""
log = logging.getLogger(__name__)
_last_log: dict[str, Any] = {"at": 0.0, "line": ""}


def _progress(line: str, final: bool = False) -> None:
    """A live line on a terminal (`final` ends it); in a log, one line every 10 s and the final one,
    unless the periodic line just logged it: a run that ends idle would log its figures twice."""
    if sys.stderr.isatty():
        print(f"\r{line}\x1b[K", end="\n" if final else "", file=sys.stderr, flush=True)
    elif line != _last_log["line"] if final else time.monotonic() - _last_log["at"] >= 10:
        _last_log.update(at=time.monotonic(), line=line)
        log.info(line.strip())


def _config(path: str | None, **overrides: Any) -> Any:
    """The config, and the logging it asks for (the environment's applies until it is read)."""
    from streams.config import load_config

    config = load_config(path, **overrides)
    logs.setup(config.log.level, config.log.format)
    return config


def _setup(args: argparse.Namespace) -> tuple[Any, Any, list[Any], Catalog]:
    from detectors import load_detectors

    config = _config(
        args.config,
        kafka__bootstrap=getattr(args, "bootstrap", None),
        clickhouse__dsn=getattr(args, "clickhouse", None),
        policy_dir=getattr(args, "policy", None),
        runtime=getattr(args, "runtime", None),
    )
    policy = load_policy(config.policy_dir)
    specs = load_detectors(policy, config.policy_dir)
    return config, policy, specs, Catalog(policy)


def _broker(config: Any, stack: ExitStack) -> str:
    """The configured broker, or an embedded Tansu started for this command."""
    if config.kafka.bootstrap:
        return config.kafka.bootstrap
    from streams.embedded import EmbeddedBroker

    broker = stack.enter_context(EmbeddedBroker(log_dir=config.data_dir))
    # an embedded broker starts empty, so state saved against an earlier one must not be resumed
    config.kafka.group_id = f"{config.kafka.group_id}-{uuid.uuid4().hex[:8]}"
    # said at the start, not found at the first upgrade (probe_v1 F5: a restart on the defaults lost
    # 18 of 59 alerts and raised 714 false ones, the state and reference data gone with the broker)
    log.info(
        f"started embedded Tansu broker at {broker.bootstrap}: it lives as long as this command, and the "
        "monitor's state, offsets and reference data with it; set kafka.bootstrap (LIFEMON_KAFKA_BOOTSTRAP) "
        "to a broker that outlives lifemon to keep them across restarts (docs/operations.md#upgrades)",
        extra={"bootstrap": broker.bootstrap},
    )
    return broker.bootstrap


def _reach(config: Any) -> None:
    """Whether the configured broker answers, before a command that reads or writes it starts:
    KafkaUnavailable in one line if not (streams/kafka_reach.py)."""
    from streams.kafka_reach import reach

    reach(config.kafka.bootstrap, config.kafka_settings(), config.kafka.reach_timeout_s)


class NoDatabase(ClickHouseUnavailable):
    """A read command found no lifemon database where the config points."""


def _read_client(config: Any, table: str = "alerts") -> Any:
    """A ClickHouse client for a command that only reads lifemon's tables. It never creates
    anything: an embedded database that is not there yet, or a server without lifemon's database,
    is said in one line (NoDatabase) instead of an UNKNOWN_DATABASE traceback; so is a `table`
    added after the lifemon that wrote the database (the next `lifemon run` creates it)."""
    from streams.clickhouse import connect, location, tables_present

    dsn = config.clickhouse_dsn()
    first = "run `lifemon run` (or `lifemon demo`) first, or point --clickhouse, clickhouse.dsn or LIFEMON_CLICKHOUSE_DSN at one"
    if dsn.startswith("chdb://") and not Path(dsn.removeprefix("chdb://")).is_dir():
        # the embedded one is under the working directory unless LIFEMON_DATA_DIR moves it: a
        # command run from elsewhere than the demo's looks in another place
        where = (
            ""
            if config.clickhouse.dsn or config.data_dir != Path(".lifemon")
            else " (the .lifemon of the current directory: run from where the demo ran, or set "
            "LIFEMON_DATA_DIR to its .lifemon)"
        )
        raise NoDatabase(f"no lifemon database at {dsn.removeprefix('chdb://')}{where}: {first}")
    client = connect(dsn)
    database = config.clickhouse.database
    tables = tables_present(client, database, ["alerts", table])
    if "alerts" not in tables:
        raise NoDatabase(f"no lifemon database {database} in ClickHouse at {location(client)}: {first}")
    if table not in tables:
        raise NoDatabase(
            f"no {table} table in lifemon database {database} at {location(client)}: a lifemon from "
            f"before it wrote the database; the next `lifemon run` creates it"
        )
    return client


def _monitor(config: Any, bootstrap: str, specs: list[Any], catalog: Catalog, quiet: bool = False) -> Any:
    from streams.clickhouse import connect
    from streams.pseudonym import Pseudonymizer
    from streams.runtime import Monitor, ensure_topics

    runtime = Monitor
    if config.runtime == "faust":  # imported only when chosen: faust takes a second to import
        from streams.faust_runtime import FaustMonitor

        runtime = FaustMonitor
    ensure_topics(bootstrap, config, config.kafka_settings(), catalog.policy.storage)
    client = connect(config.clickhouse_dsn())
    # a one-off key only with the embedded broker: elsewhere pseudonyms must survive a restart
    pseudonymize = Pseudonymizer.from_env(allow_ephemeral=not config.kafka.bootstrap)
    return runtime(
        config, bootstrap, client, specs, catalog, pseudonymize, progress=None if quiet else _progress
    )


def _data_dir(config: Any, where: str | None) -> None:
    """data_dir made, or one line naming it and the fix: a read-only root filesystem with no volume
    mounted there (Kubernetes' readOnlyRootFilesystem) was a probe's traceback."""
    try:
        config.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise PolicyError(
            where or "<config and environment>",
            "data_dir",
            f"cannot create {config.data_dir} ({e.strerror})",
            "give a folder lifemon may write (data_dir or LIFEMON_DATA_DIR): in a container with a "
            "read-only root filesystem, mount a volume there",
        ) from None


# -- commands -----------------------------------------------------------------------------------
def cmd_run(args: argparse.Namespace) -> int:
    from streams.demo import claim_embedded

    config, _, specs, catalog = _setup(args)
    # the embedded database, however named (unset, or its chdb:// path given): the demo's to drop
    # no longer (a review's run given the path left the demo's mark, and the next dropped its data)
    _data_dir(config, args.config)
    claim_embedded(config, config.clickhouse.dsn)
    with ExitStack() as stack:
        bootstrap = _broker(config, stack)
        monitor = _monitor(config, bootstrap, specs, catalog, args.quiet)
        if config.metrics.port is not None:
            from streams.metrics import Known, OpsServer

            m = config.metrics
            try:
                known = Known(
                    sorted(set(monitor.stream_of.values())),
                    [s.kind for s in specs],
                    sorted(catalog.policy.incidents.classes),
                )
                ops = OpsServer(monitor.stats, m.host, m.port, m.stall_after_s, known)
            except OSError as e:  # a port in use, a host this machine lacks: a probe's was a traceback
                raise PolicyError(
                    args.config or "<config and environment>",
                    "metrics.port",
                    f"cannot serve /metrics on {m.host}:{m.port} ({e.strerror})",
                    "choose a free port, and a host this machine has (metrics.port and metrics.host, "
                    "or LIFEMON_METRICS_PORT and LIFEMON_METRICS_HOST)",
                ) from e
            stack.enter_context(ops)
        log.info(
            f"monitoring {', '.join(monitor.event_topics)} (group {config.kafka.group_id}, "
            f"{config.runtime} runtime); Ctrl-C stops cleanly",
            extra={"group": config.kafka.group_id},
        )
        stats = monitor.run(idle_exit_s=args.until_idle, max_seconds=args.seconds)
        del monitor  # (with the gc below) its Kafka clients go before an embedded broker does
        gc.collect()  # the monitor and its consumer's callbacks form a cycle
        _progress(stats.line(final=True), final=True)
    log.info("stopped")  # the figures above may be the last periodic line's: say the run ended
    return 0


def cmd_notify(args: argparse.Namespace) -> int:
    """Deliver incidents from pfi.incidents to the configured receivers (docs/incidents.md)."""
    from streams.notify import Notifier

    config = _config(args.config, kafka__bootstrap=args.bootstrap)
    if not config.kafka.bootstrap:
        log.error("notify reads pfi.incidents from a running broker: set kafka.bootstrap or --bootstrap")
        return 2
    if not config.notify.receivers:
        log.error("no receivers: add notify.receivers to the config (docs/configuration.md)")
        return 2
    _reach(config)
    try:
        notifier = Notifier(config, config.kafka.bootstrap)
    except ValueError as e:  # a receiver's secret is missing from the environment
        log.error(str(e))
        return 2
    if notifier.reviews.dsn is None:
        log.info(
            "incident reviews are not read (the embedded chDB is lifemon run's to open): a revision of an "
            "incident the team already closed out fires again; with a ClickHouse server "
            "(LIFEMON_CLICKHOUSE_DSN) it is delivered as ended"
        )
    names = ", ".join(f"{r.name} ({r.kind})" for r in config.notify.receivers)
    log.info(
        f"delivering {config.topics.incidents} to {names} (group {config.notify.group_id}); Ctrl-C stops"
    )
    delivered = notifier.run(idle_exit_s=args.until_idle, max_seconds=args.seconds)
    log.info(
        "delivered: " + (", ".join(f"{k} {v}" for k, v in sorted(delivered.items())) or "nothing"),
        extra={"delivered": dict(delivered)},
    )
    if notifier.undelivered:  # stopped while a receiver still refused it: nothing was committed
        incident, revision, receivers = notifier.undelivered
        log.error(
            f"incident {incident} rev {revision} not delivered to {', '.join(receivers)} (still failing): "
            "fix the receiver and run lifemon notify again, which resumes from this incident",
            extra={"incident_id": incident, "revision": revision, "receivers": receivers},
        )
        return 3
    return 0


def cmd_ship(args: argparse.Namespace) -> int:
    """Log files to a raw topic, exactly once across restarts (streams/ship.py); HAR captures to
    the SDK topic as telemetry (streams/ship_har.py)."""
    import hashlib
    import signal

    from streams.config import load_config

    if not args.follow:  # an input that is not there is said before the broker is tried (10 s)
        for f in args.files:
            open(f, "rb").close()
    if args.format == "har":
        from streams.ship_har import ship_har

        config = load_config(args.config, kafka__bootstrap=args.bootstrap)
        if config.kafka.bootstrap:  # ship_har says it when there is none
            _reach(config)
        return ship_har(args)
    from streams.ship import FORMATS, ShipError, Shipper, unmonitored

    config = load_config(args.config, kafka__bootstrap=args.bootstrap)
    if not config.kafka.bootstrap:
        log.error(
            "ship needs a broker: --bootstrap, LIFEMON_KAFKA_BOOTSTRAP or kafka.bootstrap in the config"
        )
        return 2
    fmt = FORMATS[args.format]
    topic = args.topic or fmt.topic(config)
    files = sorted(str(Path(f).absolute()) for f in args.files)
    positions = (
        Path(args.positions)
        if args.positions
        else (
            config.data_dir
            / "ship"
            / f"{topic}-{hashlib.sha1(chr(0).join(files).encode()).hexdigest()[:10]}.json"
        )
    )
    shipper = Shipper(
        config, config.kafka.bootstrap, fmt, files, topic, positions, args.key, args.follow, args.batch,
        warn=log.warning,
    )  # fmt: skip
    for sig in (signal.SIGTERM, signal.SIGINT):  # finish the batch in flight, save, stop
        signal.signal(sig, lambda *_: shipper.stop.set())
    where = args.config or "the defaults (no --config)"
    for warning in unmonitored(config, where, args.format, topic):
        log.warning(warning)
    log.info(f"shipping {len(files)} file(s) as {args.format} to {topic}; positions in {positions}")
    try:
        shipper.run(progress=lambda line, final: _progress(line, final))
    except (ShipError, ValueError) as e:
        log.error(str(e))
        return 1
    return 0


def _simulated(config: Any, policy: Any) -> None:
    """The generator's bank is the shipped one: a policy folder lacking its names cannot run it."""
    from streams.workload import unsimulated

    missing = unsimulated(policy)
    if missing:
        raise PolicyError(
            config.policy_dir or DEFAULT_DIR,
            "policy_dir",
            "the generated workload simulates the shipped bank, and this folder lacks its "
            + "; ".join(missing),
            "run `generate` and `demo` with the shipped policy (no --policy, LIFEMON_POLICY_DIR or "
            "policy_dir), or keep the shipped ids in the folder (a copy of policy/ with other "
            "thresholds or periods runs them)",
        )


def cmd_generate(args: argparse.Namespace) -> int:
    from streams.workload import generate, write_files

    config = _config(args.config, kafka__bootstrap=args.bootstrap, policy_dir=args.policy)
    policy = load_policy(config.policy_dir)
    _simulated(config, policy)
    workload = generate(args.events, seed=args.seed, policy=policy)
    if args.out:
        paths = write_files(workload, Path(args.out), args.format)
        log.info(
            f"wrote {len(workload.records)} records to {len(paths)} files in {args.out} "
            f"({len(workload.truth)} injected violations in truth.json)"
        )
        return 0
    from streams.produce import produce
    from streams.runtime import ensure_topics

    if not config.kafka.bootstrap:
        log.error("generate needs --out DIR or a broker (--bootstrap / LIFEMON_KAFKA_BOOTSTRAP)")
        return 2
    ensure_topics(config.kafka.bootstrap, config, config.kafka_settings())
    n = produce(
        config.kafka.bootstrap,
        config,
        workload.records,
        "avro" if args.format == "avro" else "json",
        progress=lambda k: _progress(f"produced {k}"),
    )
    _progress(f"produced {n} records to {config.kafka.bootstrap}", final=True)
    return 0


def _writable(flag: str, path: str | None) -> None:
    """ValueError naming the flag unless `path` can be written: a folder that exists and may be
    written to, and no folder of that name."""
    if path is None:
        return
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    why = (
        "is a folder"
        if target.is_dir()
        else f"its folder {folder} does not exist"
        if not folder.is_dir()
        else "lifemon may not write there"
        if not os.access(target if target.exists() else folder, os.W_OK)
        else None
    )
    if why:
        raise ValueError(f"{flag} {path}: {why}; give a file in a folder lifemon may write to")


def cmd_replay(args: argparse.Namespace) -> int:
    from schemas.models import REFERENCE_STREAMS
    from streams.codecs import Decoder
    from streams.engine import Engine
    from streams.lifecycle_ledger import DeletionLedger
    from streams.pseudonym import Pseudonymizer
    from streams.replay import ReplayFileError, replay, replay_files, stream_of_file, topics_of
    from streams.stats import Stats
    from streams.transfer_ledger import TransferLedger

    config, _, specs, catalog = _setup(args)
    try:
        files = replay_files([Path(f) for f in args.files])
        for flag, path in (
            ("--alerts-out", args.alerts_out),
            ("--incidents-out", args.incidents_out),
            ("--dead-letters", args.dead_letters),
        ):
            _writable(flag, path)  # before the replay: its work must not be lost at the end
    except ValueError as e:
        log.error(str(e))
        return 2
    missing = sorted(set(REFERENCE_STREAMS) - {stream_of_file(p) for p in files})
    if missing:
        log.warning(
            f"no {', '.join(f'pfi.{s}' for s in missing)} file among the inputs: the detectors judge "
            "without that reference data (an employee, customer or consent it would name is unknown: "
            "roles fall back to defaults, consents count as absent); replay the folder, or add the files"
        )
    # what a replay stores outlives it: under a one-off key the next replay of the same files would
    # name the same customers otherwise, and store their alerts again under other ids (a probe's
    # second replay: 65 alerts for 56)
    pseudonymize = Pseudonymizer.from_env(
        allow_ephemeral=not args.clickhouse,
        why=" and a replay stored with --clickhouse needs the store's own key, or replaying the same "
        "files again stores their alerts again under other pseudonyms",
    )
    engine = Engine(specs, catalog, pseudonymize, allowed_lateness_ms=config.allowed_lateness_s * 1000)
    engine.deletions = DeletionLedger(catalog.policy)  # the lifecycle panels' deletion requests
    engine.transfers = TransferLedger(catalog.policy)  # and the transfer ledger
    stats = Stats()
    try:
        alerts, dead = replay(
            engine, Decoder.for_config(config), files, args.batch_size, stats, config.checkpoint_dirty_keys
        )
    except ReplayFileError as e:
        log.error(str(e))
        return 2
    final = sorted(stats.alerts.values(), key=lambda a: (a.first_seen, a.alert_id))
    if args.alerts_out:
        with open(args.alerts_out, "wb") as f:
            for a in final:
                f.write(orjson.dumps(a.model_dump(mode="json")) + b"\n")
    incidents = sorted(engine.take_incidents(), key=lambda i: (i.first_seen, i.incident_id))
    if args.incidents_out:  # the newest revision of each, as pfi.incidents would hold them
        with open(args.incidents_out, "wb") as f:
            for i in incidents:
                f.write(orjson.dumps(i.model_dump(mode="json")) + b"\n")
    log.info(stats.line(final=True).strip() + f", {n_of(len(incidents), 'incident')}")
    if args.clickhouse:
        from streams.demo import claim_embedded

        claim_embedded(config, args.clickhouse)
        _store_replay(
            args.clickhouse, config.clickhouse.database, engine, final, incidents, dead, args.beside_live
        )
    print_alerts(final, written=args.alerts_out)
    if not dead:
        return 0
    topics = topics_of(files)
    _say_dead_letters(dead, {topics[p]: p for p in files}, args.dead_letters, args.allow_dead_letters)
    return 0 if args.allow_dead_letters else DEAD_LETTERS


def _store_replay(
    dsn: str,
    db: str,
    engine: Any,
    alerts: list[Any],
    incidents: list[Any],
    dead: list[Any],
    beside_live: bool = False,
) -> None:
    """What a live run would have left in ClickHouse: alerts, incidents, dead letters, the event and
    coverage-gap rollups, deletion requests and the policy's contracts, so `lifemon report`,
    `incidents` and `catalog gaps` read the replay."""
    from streams.clickhouse import apply_ddl, connect
    from streams.sinks.tables import Tables

    client = connect(dsn)
    apply_ddl(client, db)
    tables = Tables.of(client, db, engine.catalog.recipient_book)
    rollups = engine.rollup_rows()
    _refuse_live_overlap(client, dsn, db, rollups, beside_live)
    tables.alerts.add(alerts)
    tables.incidents.add(incidents)
    tables.dead_letters.add(dead)  # dated when the replay refused them (`DeadLetter.refused_at`)
    tables.rollups.add(rollups)
    tables.deletions.add(engine.deletions.drain())
    tables.transfers.add(engine.transfers.drain())
    for sink in (
        tables.alerts,
        tables.incidents,
        tables.dead_letters,
        tables.rollups,
        tables.deletions,
        tables.contracts,
        tables.transfers,
    ):
        sink.flush()


def _refuse_live_overlap(client: Any, dsn: str, db: str, rollups: list[tuple], beside_live: bool) -> None:
    """A replay counts its events by file and line, a live run by topic, partition and offset
    block: neither replaces the other's rollups. Where ClickHouse holds a live run's counts of the
    replay's streams in the replay's minutes, the same records would count twice (an operator
    probe's backfill of a day the monitor had seen doubled every event in the report): refused,
    before anything is written, unless `beside_live` (--beside-live) says to count them beside."""
    if not rollups:
        return
    minutes = [r[3] for r in rollups]
    first, last, streams = min(minutes), max(minutes), sorted({r[4] for r in rollups})
    (live,) = client.query(
        f"SELECT sum(events) FROM {db}.event_rollups FINAL WHERE topic_id != '' "
        "AND stream IN {streams:Array(String)} AND toUnixTimestamp(minute) BETWEEN {first:Int64} AND {last:Int64}",
        parameters={"streams": streams, "first": first, "last": last},
    ).result_rows[0]
    if not live:
        return
    said = (
        f"ClickHouse already holds {live:,} events a live run counted in the replay's span "
        f"({datetime.fromtimestamp(first, UTC):%Y-%m-%d %H:%M} to {datetime.fromtimestamp(last, UTC):%Y-%m-%d %H:%M} UTC, "
        f"{', '.join(streams)}): the replay's events would count beside them, so records the live "
        "run read count twice in the report and the dashboards (alerts and incidents replace theirs)"
    )
    if not beside_live:
        raise PolicyError(
            dsn,
            f"{db}.event_rollups",
            said + "; nothing was stored",
            "backfill only what the monitor did not read, or pass --beside-live to count them beside "
            "it anyway (docs/operations.md)",
        )
    log.warning(said + "; counted beside them (--beside-live)")


DEAD_LETTERS = 5  # replay's exit status when records were dead-lettered: a test case silently lost


def _say_dead_letters(dead: list[Any], paths: dict[str, Path], out: str | None, allowed: bool) -> None:
    """How many records a replay refused, by kind, the first few reasons and where all of them are
    (the live run sends them to pfi.dlq; a replay has only this summary and `--dead-letters`)."""
    from streams.replay import dead_letter_line

    lines = [dead_letter_line(d, paths[d.raw.topic]) for d in dead]
    if out:
        with open(out, "wb") as f:
            f.writelines(orjson.dumps(line) + b"\n" for line in lines)
    kinds = Counter(d.kind for d in dead)
    say = log.warning if allowed else log.error
    say(
        f"{n_of(len(dead), 'record')} dead-lettered, not replayed: "
        + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items(), key=lambda kn: (-kn[1], kn[0])))
        + (f"; all of them in {out}" if out else "; --dead-letters FILE writes all of them")
    )
    for line in lines[:5]:
        at = f"line {line['line']}" if "line" in line else f"record {line['record']}"
        what = " ".join(filter(None, (str(line["kind"]), str(line["field"]))))
        say(f"  {line['file']} {at}: {what}: {line['reason']}")


def cmd_demo(args: argparse.Namespace) -> int:
    from streams.demo import run_demo

    config, policy, specs, catalog = _setup(args)
    _simulated(config, policy)
    # always the embedded default: synthetic violations must never reach a real broker or database
    config.kafka.bootstrap = None
    config.clickhouse.dsn = None
    return run_demo(config, policy, specs, catalog, args.events, args.seed, args.replace)


def cmd_report(args: argparse.Namespace) -> int:
    """`report`: the HTML page for management (streams/report/), for a period: `--month` (the
    bank's calendar month, recipients.yaml `timezone`) or `--since` / `--until` (as `lifemon alerts`)."""
    from streams.report import Period, gather, month_period, render

    if args.month and (args.since or args.until):
        log.error("--month is a period of its own: give it, or --since / --until, not both")
        return 2
    config = _config(args.config, clickhouse__dsn=args.clickhouse, policy_dir=args.policy)
    if not in_bank_zone(args, config):
        return 2
    timezone = load_policy(config.policy_dir).recipients.timezone
    period = month_period(args.month, timezone) if args.month else Period(args.since, args.until, timezone)
    html = render(gather(_read_client(config), config.clickhouse.database, period))
    Path(args.out).write_text(html, encoding="utf-8")
    log.info(f"wrote {args.out}")
    return 0


def month(text: str) -> str:
    """`report --month`: YYYY-MM (argparse's type)."""
    try:
        datetime.strptime(text.strip(), "%Y-%m")
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a month: give YYYY-MM, e.g. 2026-01") from None
    return text.strip()


# what each status of a listing's newest revision means, for `lifemon alerts` and `lifemon incidents`
STATUS_HELP = {
    "alerts": "open (its first revision), updated (a later revision of an episode still live, e.g. one "
    "that grew), closed (the detector's episode ended: its window passed; not that anyone reviewed "
    "it: --review says that), or active (open or updated)",
    "incidents": "open (its first revision), updated (a later one: another alert joined, or one grew), "
    "closed (its window settled: no alert can join any more; not that it was reported), or active "
    "(open or updated)",
}


LIST_LIMIT = 50  # `--limit`'s default


def _listing_options(sp: argparse.ArgumentParser, what: str, seen: str, order: str) -> None:
    """The filters `lifemon alerts` and `lifemon incidents` share."""
    sp.add_argument(
        "--severity",
        type=str.lower,  # HIGH as a SOC writes it
        choices=[s.value for s in Severity],
        help="at least this severity (default: all)",
    )
    from streams.alert_query import STATUSES

    sp.add_argument(
        "--status",
        type=str.lower,
        choices=list(STATUSES),
        help=f"only {what} whose newest revision has this status: {STATUS_HELP[what]} (default: all)",
    )
    from streams.reviews import ALERTS, INCIDENTS

    kind = ALERTS if what == "alerts" else INCIDENTS
    sp.add_argument(
        "--review",
        type=str.lower,
        choices=list(kind.reviews),
        metavar="REVIEW",  # its states are told below; listed here, the line ran to 94 columns
        help=f"only {what} in this review state: unreviewed (no review, or events after the newest "
        f"one: the queue), acknowledged (`lifemon {what} ack`), {' or '.join(kind.resolving)} "
        f"(`lifemon {what} resolve`), or unresolved (unreviewed or acknowledged"
        + (', as Grafana\'s "Alerts awaiting review" counts' if kind is ALERTS else "")
        + "".join(f", or {state}: a report still owed" for state in kind.partial)
        + ") (default: all)",
    )
    sp.add_argument(
        "--since", type=when, metavar="WHEN", help=f"{seen} at or after WHEN: {WHEN_HELP} (default: any time)"
    )
    sp.add_argument(
        "--until", type=when, metavar="WHEN", help=f"{seen} before WHEN, as --since (default: any time)"
    )
    sp.add_argument(
        "--raised-since",
        type=when,
        metavar="WHEN",
        help=f"only {what} raised or revised (stored) at or after WHEN, as --since, whatever their events' "
        "time: what is new since an analyst last looked (default: any time)",
    )
    sp.add_argument(
        "--limit",
        type=positive,
        default=LIST_LIMIT,
        metavar="N",
        help=f"at most N {what}, {order} (default {LIST_LIMIT})",
    )
    sp.add_argument("--config", help=CONFIG_HELP)
    sp.add_argument("--clickhouse", help=CLICKHOUSE_READ_HELP)


def _list(
    args: argparse.Namespace,
    table: str,
    query: Any,
    render: Any,
    seen: str,
    footer: Any = None,
    **only: Any,
) -> int:
    """`lifemon alerts` and `lifemon incidents`: what their filters select, as a terminal shows it;
    `seen`: the time column --since and --until filter on; `footer(client, database, **filters)`:
    lines said under a selection that is not empty."""
    from streams.alert_query import stored

    config = _config(args.config, clickhouse__dsn=args.clickhouse)
    if not in_bank_zone(args, config):
        return 2
    client = _read_client(config, table)
    filters = {
        "min_severity": Severity(args.severity) if args.severity else None,
        "status": args.status,
        "review": args.review,
        "since": args.since,
        "until": args.until,
        "raised_since": args.raised_since,
        **only,
    }
    listing = query(client, config.clickhouse.database, limit=args.limit, **filters)
    print(render(listing.rows, color=sys.stdout.isatty()))
    if listing.total > len(listing.rows):
        print(
            f"{len(listing.rows):,} of {listing.total:,} {table} shown; --limit {listing.total} shows them all"
        )
    elif listing.rows:  # the whole selection: its size said, so nobody counts lines
        print(n_of(listing.total, table[:-1]))
    elif held := stored(client, config.clickhouse.database, table, seen):
        print(held)  # why nothing matched: what is there, and when (the demo's day is not today's)
    if footer and listing.rows:
        print(footer(client, config.clickhouse.database, **filters))
    return 0


def _pseudonym_given(args: argparse.Namespace, table: str) -> bool:
    """`--subject` as `lifemon pseudonym` prints it, whatever case it was typed or pasted in; False
    (said) when it is no pseudonym."""
    if args.subject and not re.match(r"p\d*_", args.subject.strip(), re.I):
        # alerts and incidents hold pseudonyms only: a customer id can match none (a probe's "no
        # alerts match"); the message never repeats it, a customer's id in the log an operator ships
        log.error(
            f"--subject takes a pseudonym (p_…), not a customer id: {table} name customers by "
            "pseudonym only; `lifemon pseudonym <customer id>` gives a customer's, with the "
            "store's LIFEMON_PSEUDONYM_KEY set"
        )
        return False
    if args.subject:
        args.subject = args.subject.strip().lower()
    return True


def _alerts_and_incidents(client: Any, database: str, **selection: Any) -> Any:
    """`query_alerts`, each row with the incidents its alert opened or joined (`incidents`)."""
    from streams.alert_query import query_alerts
    from streams.incident_query import incidents_of

    listing = query_alerts(client, database, **selection)
    found = incidents_of(client, database, [r["alert_id"] for r in listing.rows])
    for r in listing.rows:
        r["incidents"] = found.get(r["alert_id"], [])
    return listing


def cmd_alerts(args: argparse.Namespace) -> int:
    from streams.alert_query import render

    if not _pseudonym_given(args, "alerts"):
        return 2
    args.rule = args.rule and args.rule.strip()  # as typed or pasted, blanks around it
    if args.rule and not _policy_has_rule(args):
        # a typo lists nothing, as a rule no longer in the policy may still list its old alerts
        log.warning(f"no rule of the policy is {args.rule} or under it: `lifemon detectors` lists them")
    only = {
        "detector": args.detector,
        "actor": args.actor,
        "org": args.org,
        "rule": args.rule,
        "subject": args.subject,
    }
    # a review queue, or what was resolved, says how fast the SOC handled what it lists (probe_v3 H2)
    footer = _handling_footer if args.review else None
    status = _list(args, "alerts", _alerts_and_incidents, render, "last_seen", footer, **only)
    if args.subject:
        # an alert keeps a sample of the customers it counts: the examiner's "every alert about this
        # customer" read "no alerts match" for one two alerts were about (probe_v3 M3)
        print(
            "an alert keeps a sample of its customers (sample_size): one about more may concern this "
            f"customer unlisted; `lifemon incidents --subject {args.subject}` searches the incidents' "
            "full lists"
        )
    return status


def _handling_footer(client: Any, database: str, **filters: Any) -> str:
    from streams.alert_query import handling, render_handling

    return "\n".join(render_handling(h) for h in handling(client, database, **filters) if h.severity == "")


def _policy_has_rule(args: argparse.Namespace) -> bool:
    """Whether `--rule` names a rule of the policy or a part of one, as the list matches it
    (`alert_query`: whole parts of the id; LM-RO is LM-RO-001 and LM-RO-002, two detectors; a
    detector's named rules are `LM-RO-001.retention_expired`). A policy that does not load says
    nothing here: the listing reads what is stored."""
    from streams.demo import rule_names

    try:
        _, policy, specs, _ = _setup(args)
    except PolicyError:
        return True
    ids = [s.rule_id for s in policy.detectors.values()] + list(rule_names(specs))
    ids += [f"{s.section.rule_id}.{name}" for s in specs for name in s.rules]
    rule = args.rule.lower()
    return any(rule == i.lower() or i.lower().startswith((f"{rule}-", f"{rule}.")) for i in ids)


# the list's filters, which `alerts show`, `ack` and `resolve` refuse rather than ignore: an id
# names one alert
LIST_ONLY = (
    "detector",
    "actor",
    "org",
    "rule",
    "subject",
    "severity",
    "status",
    "review",
    "since",
    "until",
    "raised_since",
)
INCIDENT_FILTERS = LIST_ONLY[LIST_ONLY.index("subject") :]  # `lifemon incidents` filters by these alone


def _refuses_list_filters(parser: argparse.ArgumentParser, source: str) -> None:
    """The list's filters given after the id (`alerts show ID --severity high`) are taken, unlisted,
    for `_one_id_only` to refuse in one line; unknown to `show`, they were argparse's two-line error
    with the whole program's usage (a new user's). Only the `source` list's own: `incidents show ID
    --rule X` is an unknown option, not a filter of a list that has none."""
    for name in (*(LIST_ONLY if source == "alerts" else INCIDENT_FILTERS), "limit"):
        parser.add_argument(f"--{name.replace('_', '-')}", default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def _one_id_only(args: argparse.Namespace, command: str, action: str) -> bool:
    """Whether `lifemon alerts|incidents ACTION ID` came without the list's filters (else said,
    and False)."""
    given = [f"--{name.replace('_', '-')}" for name in LIST_ONLY if getattr(args, name, None)]
    if given or args.limit != LIST_LIMIT:
        listed = ", ".join(given + (["--limit"] if args.limit != LIST_LIMIT else []))
        noun = command.removesuffix("s")
        log.error(
            f"`lifemon {command} {action} {noun.upper()}_ID` takes an {noun} id, not the list's filters ({listed})"
        )
        return False
    return True


def cmd_alert_show(args: argparse.Namespace) -> int:
    """`alerts show ID`: one alert for triage (streams/alert_query.py `render_alert_view`), with
    its detector's regulation and runbook from the policy."""
    from policy import detector_file
    from streams.alert_query import AlertNotFound, query_alert, render_alert_view, resolve_alert_id
    from streams.clickhouse import location
    from streams.incident_query import incidents_of, render_incidents_of

    if not _one_id_only(args, "alerts", args.alerts_action):
        return 2
    config = _config(args.config, clickhouse__dsn=args.clickhouse, policy_dir=getattr(args, "policy", None))
    policy = load_policy(config.policy_dir)
    client = _read_client(config)
    database = config.clickhouse.database
    try:
        view = query_alert(client, database, resolve_alert_id(client, database, args.alert_id))
    except AlertNotFound as e:
        log.error(f"{e} (lifemon database {database} at {location(client)})")
        return 2
    detector = view.alert["detector"]
    section = policy.detectors.get(detector)
    # the rule's version now, to say it changed since the alert (a sub-rule's id has no version)
    now = section.rule_version if section and section.rule_id == view.alert["rule_id"] else None
    alert_id = view.alert["alert_id"]
    incidents = incidents_of(client, database, [alert_id]).get(alert_id, [])
    print(
        render_alert_view(
            view,
            regulation=section.regulation if section else (),
            runbook=section.runbook if section else None,
            rule_file=str(detector_file(detector, config.policy_dir)),
            policy_rule_version=now,
            timezone=policy.recipients.timezone,
            incidents=render_incidents_of(incidents, datetime.now(UTC)),
        )
    )
    return 0


ANALYST_ENV = "LIFEMON_ANALYST"


def cmd_review(args: argparse.Namespace) -> int:
    """`alerts|incidents ack ID` / `resolve ID --as ...`: one review of one alert or incident, stored
    in its reviews' table (streams/reviews.py); its own status is left as it is."""
    import getpass

    from streams.alert_query import AlertNotFound, resolve_alert_id, resolve_incident_id
    from streams.clickhouse import location
    from streams.incident_query import query_incident, waivable
    from streams.reviews import (
        ACKNOWLEDGED,
        ALERTS,
        INCIDENTS,
        NOTE_NEEDED,
        NOTICE_WAIVED,
        REGULATOR_NOTIFIED,
        record_review,
    )

    kind = args.kind
    action = getattr(args, f"{kind.source}_action")
    if not _one_id_only(args, kind.source, action):
        return 2
    state = ACKNOWLEDGED if action == "ack" else args.verdict
    if state in NOTE_NEEDED and not (args.note or "").strip():
        why = NOTE_NEEDED[state].format(source=kind.source)
        log.error(f"{'a false positive' if state == 'false_positive' else state} needs --note: {why}")
        return 2
    try:
        analyst = (args.by or os.environ.get(ANALYST_ENV) or getpass.getuser()).strip()
    except (OSError, KeyError):  # no login name to fall back on (a container's numeric user with no
        analyst = ""  # passwd entry: KeyError from pwd on Python 3.11, OSError from 3.13)
    if not analyst:
        log.error(f"who reviews? give --by or set {ANALYST_ENV}")
        return 2
    config = _config(args.config, clickhouse__dsn=args.clickhouse, policy_dir=getattr(args, "policy", None))
    # the bank's customer id form, masked in the note and the analyst's name as pseudonyms are
    customer_id_form = load_policy(config.policy_dir).organisation.customer_id_form
    # reads the alert or incident; writes the review only (the table if missing)
    client = _read_client(config)
    database = config.clickhouse.database
    given = getattr(args, kind.id)
    try:
        resolve = resolve_alert_id if kind is ALERTS else resolve_incident_id
        reviewed_id = resolve(client, database, given)
        # an incident raised before the policy said which notice may be waived, or under one that
        # says none, has nothing to waive, and no individuals' notice to leave pending apart from
        # the regulator's report: its record is the one the team reports from
        splits = state in (NOTICE_WAIVED, REGULATOR_NOTIFIED)
        inc = query_incident(client, database, reviewed_id)[1] if splits else None
        if inc is not None and not waivable(inc):
            log.error(
                f"incident {reviewed_id[:12]} has no notice that may be waived (policy/incidents.yaml "
                "deadlines `waiver`, as the incident was raised), so none to tell apart from the "
                "regulator's report: record notified, ack --note, or resolved --note"
            )
            return 2
        review = record_review(
            client,
            database,
            reviewed_id,
            state,
            analyst,
            args.note or "",
            customer_id_form=customer_id_form,
            kind=kind,
        )
    except AlertNotFound as e:
        log.error(f"{e} (lifemon database {database} at {location(client)})")
        return 2
    # the login name stood in for the analyst's: said so, with how to name oneself
    login = (
        ""
        if args.by or os.environ.get(ANALYST_ENV)
        else f" (your login name: --by or {ANALYST_ENV} names you)"
    )
    print(
        f"{review.state} {review.id[:12]} by {review.analyst}{login} at {review.at:%Y-%m-%d %H:%M:%S} UTC "
        f"(revision {review.revision}, its events to {review.last_seen:%Y-%m-%d %H:%M:%S} UTC)"
        + (f"; note: {review.note}" if review.note else "")
    )
    if kind is INCIDENTS and config.notify.receivers:
        _tell_receivers(config, client, database, review)
    return 0


def _tell_receivers(config: Any, client: Any, database: str, review: Any) -> None:
    """A review that leaves an incident no report to make (`reviews.owed`) ends it at the
    receivers `lifemon notify` delivers to (Alertmanager's alert would fire, and repeat, until its
    last deadline); one that leaves a report says which keeps it firing."""
    from streams.incident_query import DONE, query_incident
    from streams.notify import tell_closed_out
    from streams.reviews import owed, said

    _, inc = query_incident(client, database, review.id)
    if inc is None or review.state not in DONE:
        return
    left = owed(inc["deadlines"], review.state)
    if left:
        print(
            f"left firing at the receivers: the incident still owes {', '.join(d['to']['en'] for d in left)}"
        )
        return
    for name, why in tell_closed_out(config, inc, said(review._asdict())):
        if why is None:
            print(f"{name}: told the incident is {review.state}, its alert ended")
        else:
            log.warning(f"{name} was not told the incident is {review.state} ({why}): end its alert there")


def cmd_incidents(args: argparse.Namespace) -> int:
    from streams.incident_query import query_incidents, render

    if not _pseudonym_given(args, "incidents"):
        return 2
    return _list(args, "incidents", query_incidents, render, "first_seen", subject=args.subject)


def _incident_of(args: argparse.Namespace, action: str) -> tuple[Any, Any, str, dict[str, Any] | None] | None:
    """`lifemon incidents ACTION ID`'s config, ClickHouse client, the incident's whole id and its
    newest revision (None once its notice was emptied); None, said, for a list filter given or an
    id no incident has."""
    from streams.alert_query import AlertNotFound
    from streams.clickhouse import location
    from streams.incident_query import query_incident

    if not _one_id_only(args, "incidents", action):
        return None
    config = _config(args.config, clickhouse__dsn=args.clickhouse, policy_dir=getattr(args, "policy", None))
    client = _read_client(config, "incidents")
    try:
        return config, client, *query_incident(client, config.clickhouse.database, args.incident_id)
    except AlertNotFound as e:
        log.error(f"{e} (lifemon database {config.clickhouse.database} at {location(client)})")
        return None


def cmd_incident_show(args: argparse.Namespace) -> int:
    """`incidents show ID`: one incident's notice, deadlines and alerts (streams/incident_query.py)."""
    from streams.incident_query import linked, render_incident_view
    from streams.reviews import ALERTS, INCIDENTS, query_reviews, render_reviews

    if (found := _incident_of(args, "show")) is None:
        return 2
    config, client, incident_id, incident = found
    zone = ZoneInfo(load_policy(config.policy_dir).recipients.timezone)
    reviews = query_reviews(client, config.clickhouse.database, incident_id, INCIDENTS)
    if incident is None:  # the response's audit trail holds no personal data: it stays readable
        print(
            f"incident  {incident_id}: its notice was emptied after policy/storage.yaml pseudonym_ttl_days, "
            "as its pseudonyms are; `lifemon incidents` still lists it"
        )
        print("\n".join(render_reviews(reviews)))
        return 0
    others = linked(client, config.clickhouse.database, [incident_id]).get(incident_id, [])
    by_alert = {
        a["alert_id"]: query_reviews(client, config.clickhouse.database, a["alert_id"], ALERTS)
        for a in incident["alerts"]
    }
    print(render_incident_view(incident, datetime.now(UTC), zone, reviews, others, by_alert))
    return 0


def cmd_incident_subjects(args: argparse.Namespace) -> int:
    """`incidents subjects ID`: whom the notice PIPL art. 57 owes individuals goes to. lifemon keeps
    pseudonyms only; given the bank's customer ids (`--customers FILE`, `-` for standard input),
    the ones the incident names, as given, else its pseudonyms. A probe's responder found no way to
    the 930 customers of an incident but SQL on its JSON and hashing the customer base by hand."""
    from streams.incident_query import not_named, whom_to_notify

    if (one := _incident_of(args, "subjects")) is None:
        return 2
    config, _, incident_id, incident = one
    if incident is None:
        log.error(
            f"incident {incident_id}: its pseudonyms were emptied after policy/storage.yaml pseudonym_ttl_days"
        )
        return 2
    subjects = incident["subjects"]
    named = set(subjects["pseudonyms"])
    if not named:  # no list to print or match: where it is kept, on stdout, not an empty output
        print("\n".join(whom_to_notify(incident)))
        return 0
    if args.customers is None:
        print("\n".join(subjects["pseudonyms"]))
        found = f"{n_of(len(named), 'pseudonym')}; --customers FILE turns them into the bank's customer ids"
    else:
        pseudonymize = _bank_pseudonymizer(config)
        read, matched = 0, set[str]()
        with sys.stdin if args.customers == "-" else open(args.customers, encoding="utf-8-sig") as ids:
            for line in ids:
                if customer := line.strip():
                    read += 1
                    found_as = named.intersection(pseudonymize.every_version(customer).values())
                    if found_as and not found_as <= matched:  # each customer once, however often listed
                        matched |= found_as
                        print(customer)
        found = (
            f"{len(matched)} of its {n_of(len(named), 'customer')} named found among {read:,} customer ids"
        )
        if read and not matched:  # under another key every customer is "not named": say which key counts
            found += (
                f"; if some should be, {ENV_KEY} is not the key its pseudonyms were made with ({ONE_OFF})"
            )
    reported, distinct = subjects["reported"], subjects["distinct"]
    log.info(
        f"incident {incident_id[:12]}: {found}"
        + (
            f"; it keeps {len(named):,} of the {distinct:,} its alerts named (subject_list_limit)"
            if subjects["truncated"]
            else ""
        )
        + (
            f"; its alerts reported {reported:,} customers, named or not: the logs behind them name the rest"
            if reported > distinct
            else ""
        )
        + "".join(f"; {line}" for line in not_named(subjects))
    )
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    """New alerts live, from pfi.alerts (streams/watch.py)."""
    from streams.sinks.kafka import client_config
    from streams.watch import TopicMissing, watch

    config = _config(args.config, kafka__bootstrap=args.bootstrap)
    if not config.kafka.bootstrap:
        log.error("watch reads pfi.alerts from a running broker: set kafka.bootstrap or --bootstrap")
        return 2
    _reach(config)
    try:
        shown = watch(
            client_config(config.kafka.bootstrap, config.consumer_settings()),
            config.topics.alerts,
            lambda text: print(text, flush=True),
            from_beginning=args.from_beginning,
            detector=args.detector,
            min_severity=Severity(args.severity) if args.severity else None,
            color=sys.stdout.isatty(),
        )
    except TopicMissing as e:
        log.error(str(e))
        return 2
    log.info(f"stopped; {shown} alert revision(s) shown", extra={"shown": shown})
    return 0


def cmd_catalog(args: argparse.Namespace) -> int:
    """`catalog gaps`: what was seen and the policy does not know (streams/catalog_gaps.py)."""
    from functools import partial

    from streams.catalog_gaps import fold_tables, query_gaps, render
    from streams.config import load_config
    from streams.credentials import Secrets
    from streams.pseudonym import Pseudonymizer, fingerprint

    config = load_config(args.config, clickhouse__dsn=args.clickhouse)
    rows = query_gaps(_read_client(config), config.clickhouse.database, args.kind, args.limit)
    # field-id fingerprints need the key that made them; without it they are listed as they are
    keyed = Secrets().key_ring() and partial(fingerprint, Pseudonymizer.from_env(allow_ephemeral=False))
    print(render(fold_tables(rows, keyed or None)))
    return 0


def cmd_dead_letters(args: argparse.Namespace) -> int:
    """`dead-letters`: why records were refused (streams/dead_letter_query.py)."""
    from streams.config import load_config
    from streams.dead_letter_query import query_dead_letters, render

    config = load_config(args.config, clickhouse__dsn=args.clickhouse)
    if not in_bank_zone(args, config):
        return 2
    client = _read_client(config, "dead_letters")
    print(render(query_dead_letters(client, config.clickhouse.database, args.since, args.limit)))
    return 0


WHEN_HELP = (
    "an ISO date or time (2026-12-01, 2026-12-01T08:30: the bank's, policy recipients.yaml "
    "`timezone`, Asia/Shanghai as shipped; or with +08:00 or Z), today or yesterday (the bank's "
    "midnight), now, or an age: 30m, 24h, 7d, 2w"
)
_AGE_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class BankTime(NamedTuple):
    """A `--since` / `--until` in no zone: the bank's wall clock (a date or time as written, or the
    midnight `days_back` days before today's), an instant once its zone is known (`instant`). A
    probe's `alerts --since today` at 07:00 in Beijing began at 08:00 the day before, UTC's
    midnight, and left out the night's alerts and incidents."""

    wall: datetime | None
    days_back: int = 0

    def instant(self, zone: ZoneInfo, now: datetime | None = None) -> datetime:
        if self.wall is not None:
            return self.wall.replace(tzinfo=zone).astimezone(UTC)
        day = (now or datetime.now(UTC)).astimezone(zone).date() - timedelta(days=self.days_back)
        return datetime.combine(day, datetime.min.time(), zone).astimezone(UTC)


def when(text: str, now: datetime | None = None) -> datetime | BankTime:
    """`--since` / `--until`: a point in time, as WHEN_HELP says (argparse's type); one in no zone
    is the bank's (`BankTime`, made an instant by `in_bank_zone`)."""
    now = now or datetime.now(UTC)
    word = text.strip().lower()
    named = {"today": BankTime(None), "yesterday": BankTime(None, 1)}
    if word == "now":
        return now
    if word in named:
        return named[word]
    if len(word) > 1 and word[-1] in _AGE_UNITS and word[:-1].isdigit():
        return now - timedelta(**{_AGE_UNITS[word[-1]]: int(word[:-1])})
    try:
        found = datetime.fromisoformat(text.strip())
    except ValueError as e:
        why = "" if "isoformat" in str(e) else f" ({e})"
        raise argparse.ArgumentTypeError(f"'{text}' is not a time{why}: give {WHEN_HELP}") from None
    return found.astimezone(UTC) if found.tzinfo else BankTime(found)


def in_bank_zone(args: argparse.Namespace, config: Any) -> bool:
    """`--since` and `--until` as instants, those given in no zone in the bank's (its policy's
    recipients.yaml `timezone`, read only then); False, said, when --until is not after --since."""
    given = [a for a in ("since", "until", "raised_since") if isinstance(getattr(args, a, None), BankTime)]
    if given:
        zone = ZoneInfo(load_policy(config.policy_dir).recipients.timezone)
        for a in given:
            wall = getattr(args, a).wall
            setattr(args, a, getattr(args, a).instant(zone))
            if wall is not None and zone.key != "UTC":
                # the lists print UTC: a time copied from one without its Z is 8 hours off in Beijing
                # (a new user's `--since 2026-01-01T10:00` listed 36 alerts, not the 4 after 10:00 UTC)
                log.info(
                    f"--{a.replace('_', '-')} {wall:%Y-%m-%d %H:%M} is the bank's time ({zone.key}): "
                    f"{getattr(args, a):%Y-%m-%d %H:%M} UTC (add Z for UTC)"
                )
    since, until = getattr(args, "since", None), getattr(args, "until", None)
    if since and until and until <= since:
        log.error(f"--until ({until:%Y-%m-%d %H:%M} UTC) is not after --since ({since:%Y-%m-%d %H:%M} UTC)")
        return False
    return True


def seconds(text: str) -> float:
    """A time of more than 0 seconds (argparse's type), as `positive` is a count."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} is not more than 0")
    return value


def _listed(name: str, said: str, width: int = 80) -> str:
    """An epilog's `name  what` line wrapped to `width` under a hanging indent, a name too long for
    its column on a line of its own (catalog --help printed lines of 389 characters)."""
    indent = " " * 24
    head = f"  {name:<20}  " if len(name) <= 20 else f"  {name}\n{indent}"
    return textwrap.fill(said, width, initial_indent=indent, subsequent_indent=indent).replace(
        indent, head, 1
    )


# a word of a usage form: an option and its value in brackets stay on one line
_USAGE_WORD = re.compile(r"\[[^\]]*\]|\S+")


def _usage(prog: str, *forms: str) -> str:
    """The usage of a command with sub-commands, spelled out (argparse's own showed the
    sub-command as required): each form on a line of its own, wrapped under the first option to
    the width argparse wraps the rest of the help to, the terminal's less 2 (alerts --help and
    incidents --help ran to 113 columns)."""
    width = shutil.get_terminal_size().columns - 2
    hang = " " * len(f"usage: {prog}")
    lines: list[str] = []
    for form in forms:
        line = f"{'usage: ' if not lines else ' ' * len('usage: ')}{prog}"
        for word in _USAGE_WORD.findall(form):
            if len(line) > len(hang) and len(line) + 1 + len(word) > width:
                lines.append(line)
                line = hang
            line += f" {word}"
        lines.append(line)
    return "\n".join(lines).removeprefix("usage: ")


def positive(text: str) -> int:
    """A count of at least 1 (argparse's type)."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"{n}: give a number of 1 or more")
    return n


def id_prefix(noun: str) -> Any:
    """The argparse type of `alerts show`'s ALERT_ID (`noun` "alert") or `incidents show`'s: an
    id, or enough of its start to pick it."""
    from streams.alert_query import MIN_ID_PREFIX

    def parse(text: str) -> str:
        given = text.strip()
        if len(given) < MIN_ID_PREFIX:
            raise argparse.ArgumentTypeError(
                f"'{text}' is too short: give the {noun}'s id or its first {MIN_ID_PREFIX} characters or "
                f"more (`lifemon {noun}s` shows 12)"
            )
        return given

    return parse


def detector_kind(text: str) -> str:
    """A registered detector's name (argparse's type): a typo is named, with the known ones."""

    from detectors import REGISTRY

    if text in REGISTRY:
        return text
    close = difflib.get_close_matches(text, REGISTRY, n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    raise argparse.ArgumentTypeError(f"unknown detector '{text}'; {hint}known: {', '.join(REGISTRY)}")


def cmd_policy(args: argparse.Namespace) -> int:
    from detectors.examples import run_all
    from policy.sources import SOURCES_FILE, load_sources

    config, policy, specs, catalog = _setup(args)
    c = policy.classification
    folder = config.policy_dir or DEFAULT_DIR
    # the raw sources' mapping is policy too: checked here, not first at a run that enables them
    tables = (
        sum(
            len(db.tables)
            for db in load_sources(
                folder, c, policy.purposes.purposes, policy.organisation
            ).databases.values()
        )
        if (Path(folder) / SOURCES_FILE).is_file()
        else None
    )
    by_class = Counter(f.jr_class.value for f in c.fields.values())
    print(
        f"policy OK ({Path(folder).resolve()}): {len(c.fields)} classified fields (C3 {by_class['C3']}, C2 {by_class['C2']}, "
        f"C1 {by_class['C1']}), "
        f"{len(policy.organisation.roles)} roles, {len(policy.sdks.sdks)} SDK declarations, "
        f"{len(specs)} detector(s)" + ("" if tables is None else f", {tables} raw-source tables mapped")
    )
    # what loads but leaves a control off: the bank fills it in (a probe's 云证书SDK, no host declared,
    # sent to any host in China unjudged, and the check had said nothing)
    for sdk_id, sdk in policy.sdks.sdks.items():
        if not sdk.hosts:
            print(
                f"  NOTE  sdks.yaml {sdk_id} ({sdk.name_zh}) declares no hosts: where it sends is not judged "
                "(sdk_overcollection host_not_allowed); fill in `hosts`"
            )
    # a citation references.yaml does not resolve reaches alerts as the short form, which names no
    # document an analyst can open (a probe's second bank's alerts said `seed 004`)
    uncited = sorted(
        set(re.findall(r"\bseed \d{3}\b", orjson.dumps(policy.model_dump(mode="json")).decode()))
    )
    if uncited:
        print(
            f"  NOTE  the policy cites {', '.join(uncited)}, which references.yaml does not name: alerts "
            "would say so, not which document; add a `seed NNN: 《…》` line for each"
        )
    # an arrangement with no impact assessment on record: once the bank records any, every transfer
    # under its contract fires (transfer_policy provided_without_assessment), which is the point, but
    # a bank upgrading its own recipients.yaml should hear it here first, not from a day of alerts
    transfers = next((s for s in specs if s.kind == "transfer_policy"), None)
    arranged = transfers.params.arrangement_types if transfers is not None else []
    tracked = catalog.recipient_book.records_assessments(arranged)  # else the rule waits
    for rid, r in policy.recipients.recipients.items():
        if r.type in arranged and r.contracts and not r.assessments:
            fires = "each transfer to it under its contract fires" if tracked else "once one recipient records its own, each transfer to it under its contract fires"  # fmt: skip
            print(
                f"  NOTE  recipients.yaml {rid} ({r.name_zh}) declares no assessments: {fires} "
                "provided_without_assessment (seed 004 基本规定(3)③: 事前进行个人金融信息保护影响评估); record its "
                "arrangement's impact assessment under `assessments`"
            )
    results = run_all(specs, catalog)
    for r in results:
        said = "PASS" if r.passed else "SKIP" if r.passed is None else "FAIL"
        print(f"  {said}  {r.detector}: {r.name}" + ("" if r.passed else f"  ({r.reason})"))
    skipped = sum(r.passed is None for r in results)
    if skipped:
        # not a failure: a bank that copied the shipped detector files must be able to check its own
        # policy; the examples are rewritten in its names at leisure
        print(
            f"  NOTE  {skipped} example(s) not run: they name roles, systems or fields this "
            "policy does not declare (written for another bank's policy); rewrite them in this bank's "
            "names under each detector file's `tests`"
        )
    return 1 if any(r.passed is False for r in results) else 0


def cmd_detectors(args: argparse.Namespace) -> int:
    """Each registered detector and its rule from the policy: id and version, title, the streams it
    reads (and by which key), the regulation it enforces, its examples, and the file that holds it."""
    from detectors import REGISTRY
    from policy import detector_file
    from streams.alert_query import clause_lines, value_width

    config, policy, _, _ = _setup(args)
    enabled = sum(1 for kind in REGISTRY if kind in policy.detectors and policy.detectors[kind].enabled)
    print(
        f"{len(REGISTRY)} detectors, {enabled} enabled; rules from "
        f"{detector_file('*', config.policy_dir).parent.resolve()}"
    )
    for kind, cls in REGISTRY.items():
        s = policy.detectors.get(kind)
        reads = ", ".join(f"{stream} by {key}" for stream, key in cls.inputs.items())
        print()
        if s is None:
            print(f"{kind}  no rule in the policy")
            print(f"    reads      {reads}")
            continue
        print(f"{kind}  {'enabled' if s.enabled else 'disabled'}  {s.rule_id} v{s.rule_version}")
        print(
            f"    alerts     rule {s.rule_id}, {s.rule_id}-… or {s.rule_id}.… (--rule {s.rule_id} finds them all)"
        )
        print(f"    title      {s.title_zh} / {s.title_en}")
        print(f"    reads      {reads}")
        # each clause as quoted, its English under it, wrapped past the label's 15 columns
        basis = clause_lines([c.zh for c in s.regulation], [c.en for c in s.regulation], value_width(15))
        for i, line in enumerate(basis):
            print(f"    {'basis' if i == 0 else '':<10} {line}")
        print(f"    examples   {len(s.tests)} (lifemon policy check runs them)")
        print(f"    rule file  {detector_file(kind, config.policy_dir)} (params, runbook)")
    return 0


def cmd_fingerprint(args: argparse.Namespace) -> int:
    """Coverage-gap rows hold a keyed fingerprint of an unknown field id, never the id itself (it
    may be a value typed into the wrong place): this tells which candidate names they are. A name
    with a card, resident ID or mobile number in it is kept sealed, and a customer id in it as its
    pseudonym: its kept form is said too, to find its record, alerts and rows by
    (docs/security.md#personal-numbers-in-names)."""
    from streams.personal_numbers import DoorSeals
    from streams.pseudonym import fingerprint

    config = _config(args.config, policy_dir=args.policy)
    pseudonymize = _bank_pseudonymizer(config)
    organisation = load_policy(config.policy_dir).organisation
    seal = DoorSeals(
        organisation.customer_id_form, pseudonymize, pseudonymize.digest, organisation.employee_id_form
    ).text
    for name in args.names:
        # a gap row holds the fingerprint of the name as kept: a probe followed the raw name's
        # fingerprint, which matched no row
        kept = seal(name)
        print(f"{fingerprint(pseudonymize, kept)}  {name}")
        if kept != name:
            print(f"  kept as {kept}")
    return 0


def _bank_pseudonymizer(config: Any) -> Any:
    """The environment's key ring, spelling customer ids in the case the bank's customer id form
    takes, as the engine spells them."""
    from streams.demo import demos_database
    from streams.pseudonym import Pseudonymizer

    # a new user followed the README from `lifemon demo` to `incidents subjects --customers` and
    # was told to set the monitor's key: the demo's, exported or not, is what the database holds
    why = f" (the last demo's database: {ONE_OFF}; export one and run `lifemon demo` again)"
    pseudonymize = Pseudonymizer.from_env(allow_ephemeral=False, why=why if demos_database(config) else "")
    pseudonymize.spell_ids_as(load_policy(config.policy_dir).organisation.customer_id_form)
    return pseudonymize


def cmd_pseudonym(args: argparse.Namespace) -> int:
    """A customer's pseudonym under every key of the ring: finds their alerts from before a key
    rotation too (a subject's access request), as long as the old key is kept."""
    pseudonymize = _bank_pseudonymizer(_config(args.config, policy_dir=args.policy))
    for subject in args.subjects:
        print("  ".join(f"v{v} {p}" for v, p in pseudonymize.every_version(subject).items()) + f"  {subject}")
    return 0


def print_alerts(alerts: list[Any], limit: int = 10, written: str | None = None) -> None:
    """A replay's alerts, counted by detector and severity, then the `limit` last seen, newest
    first, as `lifemon alerts` lists them; `written`: the file that holds them all."""
    from streams.alert_query import alert_row, render

    if not alerts:
        print("no alerts")
        return
    by = Counter((a.detector, a.severity.value) for a in alerts)
    print(f"{n_of(len(alerts), 'alert')}: " + ", ".join(f"{d}/{s}={n}" for (d, s), n in sorted(by.items())))
    newest = sorted(alerts, key=lambda a: (a.last_seen, a.alert_id), reverse=True)[:limit]
    print(render([alert_row(a) for a in newest], color=sys.stdout.isatty()))
    if len(alerts) > limit:
        rest = f"{written} holds them all" if written else "--alerts-out FILE writes them all"
        print(f"{limit} of {len(alerts)} alerts shown, the last seen first; {rest}")


CONFIG_HELP = (
    "YAML config file (default: none: built-in defaults and LIFEMON_* variables; docs/configuration.md)"
)
BOOTSTRAP_HELP = (
    "Kafka bootstrap servers, host:port[,host:port] (default: kafka.bootstrap or LIFEMON_KAFKA_BOOTSTRAP)"
)
CLICKHOUSE_READ_HELP = (
    "ClickHouse DSN to read, chdb:///path or http://user@host:8123 (default: clickhouse.dsn or "
    "LIFEMON_CLICKHOUSE_DSN; without either, the embedded chDB in data_dir)"
)


def _review_parsers(actions: Any, kind: Any) -> None:
    """`alerts|incidents ack` and `resolve`: a review, kept beside the alert or incident, never in it."""
    from streams.alert_query import MIN_ID_PREFIX
    from streams.reviews import NOTE_MAX

    noun, source = kind.noun, kind.source
    what = {
        "alert": ("an analyst is looking into it", "a real finding, handled, e.g. its runbook followed"),
        "incident": (
            "the response team is handling it",
            "notified (the report to the authorities and the individuals' notice made, PIPL art. "
            "57: the list then shows it so, not as a deadline passed), regulator_notified (the report "
            "to the authorities made, the individuals' notice still pending: it stays owed), "
            "notice_waived (the report made, "
            "the individuals' notice waived as 《个人金融信息保护管理规定》 应急管理(4) allows: --note names the measures "
            "that avoided the harm), resolved (handled otherwise: --note says how)",
        ),
    }[noun]
    ack = actions.add_parser(
        "ack",
        prog=f"lifemon {source} ack",
        help=f"acknowledge an {noun}: {what[0]} (it leaves the unreviewed queue)",
        description=f"Record that someone took the {noun}: its review becomes acknowledged. Its "
        f"status is left as it is. Events after the review put it back in the unreviewed queue. "
        f"Each review is a row of {kind.table}, kept as the audit trail (`lifemon {source} show` lists them).",
    )
    resolve = actions.add_parser(
        "resolve",
        prog=f"lifemon {source} resolve",
        help=f"close out an {noun}: {', '.join(kind.resolving)}",
        description=f"Record a verdict on the {noun}: {what[1]} or false_positive (none: --note says "
        f"why). It leaves the unreviewed queue until events come after the review. Its status is left "
        "as it is.",
    )
    resolve.add_argument(
        "--as",
        dest="verdict",
        required=True,
        type=str.lower,
        choices=list(kind.resolving),
        metavar="VERDICT",  # each is told in its help; listed in the usage, a line ran past 80 columns
        help=kind.resolving_help,
    )
    for sp in (ack, resolve):
        sp.add_argument(
            kind.id,
            type=id_prefix(noun),
            metavar=f"{noun.upper()}_ID",
            help=f"the {noun}'s id, or its first {MIN_ID_PREFIX} characters or more, if no other {noun}'s "
            "id starts with them",
        )
        sp.add_argument(
            "--note",
            metavar="TEXT",
            help=f"why, in a sentence (at most {NOTE_MAX} characters kept): a ticket, whom you asked. No "
            "personal data: never a customer's name, id or account; customer ids of the bank's form "
            "(the policy's customer_id_form) become {customer}, pseudonyms {pseudonym}, and card, ID "
            "and phone numbers are masked before it is stored (default: none)",
        )
        sp.add_argument(
            "--by",
            metavar="ANALYST",
            help=f"who reviews: your employee id (default: {ANALYST_ENV}, else your login name; on the "
            "compose deployment every `exec` runs as the same user, so give it)",
        )
        _refuses_list_filters(sp, source)
        sp.add_argument("--config", default=argparse.SUPPRESS, help=CONFIG_HELP)
        sp.add_argument("--clickhouse", default=argparse.SUPPRESS, help=CLICKHOUSE_READ_HELP)
        sp.add_argument(
            "--policy",
            default=argparse.SUPPRESS,
            help=POLICY_HELP + "; it gives the customer id form masked in --note and --by",
        )
        sp.set_defaults(func=cmd_review, kind=kind)


class Parser(argparse.ArgumentParser):
    """argparse, naming a mistyped option as such (and its nearest spelling): `alerts --sevrity
    high` was blamed on `high` as no choice of {show,ack,resolve}, `--severty=high` on the whole
    command line under the top-level usage. A subcommand's help page leads with what it does."""

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        self._given = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(args, namespace)

    def _options(self) -> set[str]:
        """The options the given words may use: this parser's, and the subcommand's they chose."""
        sub = self._subcommand()
        return set(self._option_string_actions) | (sub._options() if sub is not None else set())

    def _takers(self, option: str) -> list[str]:
        """The subcommands under this parser that take `option` (`lifemon alerts show` --policy)."""
        found = []
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in dict.fromkeys(action.choices.values()):
                    if option in sub._option_string_actions:
                        found.append(sub.prog)
                    if isinstance(sub, Parser):
                        found += sub._takers(option)
        return found

    def describe(self) -> None:
        """Each subcommand's help page leads with the line `lifemon --help` gives it, where it has
        no description of its own."""
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                for choice in action._choices_actions:
                    sub = action.choices[choice.dest]
                    sub.description = sub.description or choice.help
                    if isinstance(sub, Parser):
                        sub.describe()

    def error(self, message: str) -> Any:  # type: ignore[override]
        known = self._options()
        for word in getattr(self, "_given", []):
            if word == "--":
                break
            name = word.split("=", 1)[0]
            # argparse takes an option's unambiguous start (`--sev`): no mistake of spelling
            if name.startswith("--") and not any(k.startswith(name) for k in known):
                close = difflib.get_close_matches(name, known, n=1)
                takers = self._takers(name)
                hint = (
                    f" (did you mean {close[0]}?)"
                    if close
                    else f" (`{'`, `'.join(takers)}` take{'s' if len(takers) == 1 else ''} it)"
                    if takers
                    else ""
                )
                message = f"unrecognized option {name}{hint}"
                sub = self._subcommand()
                if sub is not None:  # its usage, not the top level's
                    sub.error(message)
                break
        super().error(message)

    def _subcommand(self) -> Parser | None:
        """The subcommand parser the given words chose, if this parser has subcommands: the first
        that is no option's value (`alerts --actor show` chose none)."""
        subs = next((a for a in self._actions if isinstance(a, argparse._SubParsersAction)), None)
        if subs is None:
            return None
        words = getattr(self, "_given", [])
        for i, word in enumerate(words):
            before = words[i - 1] if i else ""
            option = self._option_string_actions.get(before) if "=" not in before else None
            if word in subs.choices and not (option is not None and option.nargs != 0):
                found = subs.choices[word]
                return found if isinstance(found, Parser) else None
        return None


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("lifemon")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "(not installed)"


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="lifemon",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EPILOG,
        description="Streaming monitor of the personal-financial-information lifecycle "
        "(JR/T 0171-2020, PIPL): Kafka in, detectors, alerts and metrics out.",
    )
    p.add_argument(
        "--version", action="version", version=f"lifemon {_version()}", help="print the version, for a ticket"
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common(sp: argparse.ArgumentParser, kafka: bool = True) -> None:
        sp.add_argument("--config", help=CONFIG_HELP)
        sp.add_argument("--policy", help=POLICY_HELP)
        if kafka:
            sp.add_argument(
                "--bootstrap",
                help="Kafka bootstrap servers, host:port[,host:port] (default: kafka.bootstrap or "
                "LIFEMON_KAFKA_BOOTSTRAP; without either, an embedded Tansu)",
            )
            sp.add_argument(
                "--clickhouse",
                help="ClickHouse DSN, chdb:///path or http://user@host:8123 (default: clickhouse.dsn or "
                "LIFEMON_CLICKHOUSE_DSN; without either, chDB in data_dir)",
            )

    sp = sub.add_parser("run", help="monitor the Kafka topics until stopped")
    common(sp)
    sp.add_argument(
        "--until-idle",
        type=float,
        metavar="S",
        help="stop after S seconds without new data (default: never). A live run judges what waits for "
        "the watermark (unauthorized_lookup, offscope_marketing) once later events, on any partition, "
        "move event time past it by allowed_lateness_s; a run stopped before keeps it in its checkpoint "
        "for the next run (`lifemon replay` of the same records ends at their last event time and "
        "judges it at once)",
    )
    sp.add_argument("--seconds", type=seconds, metavar="S", help="stop after S seconds (default: never)")
    sp.add_argument("--quiet", action="store_true", help="no live progress line (default: shown)")
    sp.add_argument(
        "--runtime",
        choices=["native", "faust"],
        help="the consumer loop: confluent-kafka (default) or a Faust app (docs/runtimes.md)",
    )
    sp.set_defaults(func=cmd_run)

    sp = sub.add_parser("notify", help="deliver incidents to Alertmanager, webhooks and PagerDuty")
    sp.add_argument(
        "--config",
        help="YAML config file with notify.receivers (default: none, and notify needs receivers; docs/configuration.md)",
    )
    sp.add_argument("--bootstrap", help=BOOTSTRAP_HELP)
    sp.add_argument(
        "--until-idle",
        type=float,
        metavar="S",
        help="stop after S seconds without an incident (default: never)",
    )
    sp.add_argument("--seconds", type=seconds, metavar="S", help="stop after S seconds (default: never)")
    sp.set_defaults(func=cmd_notify)

    from streams.ship import FORMATS
    from streams.ship_har import add_har_arguments

    sp = sub.add_parser(
        "ship",
        help="ship log files to a raw topic (a built-in Filebeat), resuming where it stopped",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Read log files and produce one record per log entry (a multi-line statement is one\n"
        "record) to a Kafka topic, in batches. A restart resumes from the position file: nothing\n"
        "lost, nothing sent twice (a position is saved only once the broker acknowledged it, and\n"
        "records that arrived after the last save are found on the topic). With --follow,\n"
        "appends, rotation (the path names a new file) and truncation are followed.",
        epilog="formats:\n"
        + "\n".join(f"  {name:<13}{f.help}" for name, f in FORMATS.items())
        + f"\n  {'har':<13}HAR 1.2 captures (mitmproxy, Charles, devtools) as SDK telemetry (docs/har.md)",
    )
    sp.add_argument(
        "files", nargs="+", metavar="FILE", help="log files (a path keeps being followed across rotation)"
    )
    sp.add_argument(
        "--format", required=True, choices=[*FORMATS, "har"], help="how the files are written (below)"
    )
    sp.add_argument(
        "--topic", help="topic to produce to (default: the format's raw_sources topic in the config)"
    )
    sp.add_argument(
        "--follow",
        action="store_true",
        help="keep reading appends and rotated files until stopped (default: stop at the end of the files)",
    )
    sp.add_argument(
        "--positions", metavar="PATH", help="position file (default: data_dir/ship/<topic>-<files hash>.json)"
    )
    sp.add_argument(
        "--key", help="record key: the server's name (default: this host's name); one key, one partition"
    )
    sp.add_argument(
        "--batch", type=int, default=5000, metavar="N", help="records per acknowledged batch (default 5000)"
    )
    add_har_arguments(sp)
    sp.add_argument("--config", help=CONFIG_HELP)
    sp.add_argument("--bootstrap", help=BOOTSTRAP_HELP)
    sp.set_defaults(func=cmd_ship)

    sp = sub.add_parser("generate", help="generate a realistic workload with injected violations")
    sp.add_argument(
        "-n", "--events", type=int, default=100_000, help="about how many events (default 100000)"
    )
    sp.add_argument(
        "--seed", type=int, default=7, help="random seed: the same seed, the same workload (default 7)"
    )
    sp.add_argument(
        "--out", help="write files to this folder instead of producing to Kafka (default: produce to Kafka)"
    )
    sp.add_argument(
        "--format",
        choices=["jsonl", "avro"],
        default="jsonl",
        help="file format, or wire format on Kafka (default jsonl)",
    )
    sp.add_argument("--config", help=CONFIG_HELP)
    sp.add_argument(
        "--policy",
        help=POLICY_HELP + "; the generated bank is the shipped one, so the folder must keep its ids",
    )
    sp.add_argument(
        "--bootstrap",
        help="Kafka bootstrap servers to produce to, without --out "
        "(default: kafka.bootstrap or LIFEMON_KAFKA_BOOTSTRAP)",
    )
    sp.set_defaults(func=cmd_generate)

    sp = sub.add_parser("replay", help="run the detectors over files (same alerts as the live run)")
    sp.add_argument("files", nargs="+", help="pfi.<stream>.jsonl / .avro files, or folders of them")
    sp.add_argument(
        "--batch-size",
        type=positive,
        default=5000,
        metavar="N",
        help="records handed to the engine at a time, as the live run's batches (default 5000)",
    )
    sp.add_argument(
        "--alerts-out", metavar="PATH", help="write the final alerts as JSON lines (default: none)"
    )
    sp.add_argument(
        "--incidents-out",
        metavar="PATH",
        help="write the final leakage incidents as JSON lines (default: none)",
    )
    sp.add_argument(
        "--dead-letters",
        metavar="PATH",
        help="write each record refused (dead-lettered) as a JSON line: file, line (or Avro record), "
        "kind, field and reason (default: only a summary and the first 5 on stderr)",
    )
    sp.add_argument(
        "--allow-dead-letters",
        action="store_true",
        help=f"exit 0 when records were dead-lettered (default: exit status {DEAD_LETTERS})",
    )
    sp.add_argument("--config", help=CONFIG_HELP)
    sp.add_argument("--policy", help=POLICY_HELP)
    sp.add_argument(
        "--clickhouse",
        metavar="DSN",
        help="also store what a live run would (alerts, incidents, dead letters, event and coverage-gap "
        "rollups, deletion requests, contracts) in this ClickHouse, for `lifemon report`, `incidents` "
        "and `catalog gaps` (default: not stored)",
    )
    sp.add_argument(
        "--beside-live",
        action="store_true",
        help="with --clickhouse: store even where a live run counted the replay's streams in its span, "
        "each record then counted twice (default: refused, nothing stored)",
    )
    sp.set_defaults(func=cmd_replay)

    sp = sub.add_parser(
        "demo", help="the whole pipeline on the embedded default, scored against ground truth"
    )
    common(sp, kafka=False)
    sp.add_argument(
        "-n",
        "--events",
        type=positive,
        default=50_000,
        help="about how many events to generate (default 50000)",
    )
    sp.add_argument(
        "--seed", type=int, default=7, help="random seed: the same seed, the same day and score (default 7)"
    )
    sp.add_argument(
        "--replace",
        action="store_true",
        help="drop what `lifemon run` or a replay stored in the embedded database (the demo starts it "
        "anew; default: refuse, and say how to keep it)",
    )
    sp.set_defaults(func=cmd_demo)

    sp = sub.add_parser(
        "report",
        help="write an HTML report (charts, incidents, alerts) from ClickHouse, for a month or period",
    )
    sp.add_argument(
        "--out",
        default="lifemon-report.html",
        metavar="PATH",
        help="the HTML file to write (default: lifemon-report.html in the current folder)",
    )
    sp.add_argument(
        "--month",
        type=month,
        metavar="YYYY-MM",
        help="the bank's calendar month, midnight to midnight in its timezone (policy recipients.yaml "
        "`timezone`); not with --since / --until (default: everything stored)",
    )
    sp.add_argument(
        "--since",
        type=when,
        metavar="WHEN",
        help=f"from WHEN: events by minute, alerts by last event, incidents by first event; {WHEN_HELP} "
        "(default: any time)",
    )
    sp.add_argument("--until", type=when, metavar="WHEN", help="before WHEN, as --since (default: any time)")
    sp.add_argument("--config", help=CONFIG_HELP)
    sp.add_argument("--clickhouse", help=CLICKHOUSE_READ_HELP)
    sp.add_argument("--policy", help=POLICY_HELP + "; its recipients.yaml gives the bank's timezone")
    sp.set_defaults(func=cmd_report)

    from streams import alert_query
    from streams.reviews import ALERTS, INCIDENTS

    sp = sub.add_parser(
        "alerts",
        help="list alerts from ClickHouse, filtered (newest revision of each); `alerts show ID`: one "
        "alert; `alerts ack ID`, `alerts resolve ID`: record a review",
        description="The detectors' alerts, newest revision of each. Two states per alert: its status "
        "is the detector's episode (open, updated while it grows, closed when its window passed, "
        "not a review); its review is the analyst's (unreviewed until `ack` or `resolve` "
        "records one, and again when events come after the newest review). The analyst's queue: "
        "`lifemon alerts --review unreviewed --severity high`.",
    )
    sp.usage = _usage(
        sp.prog,
        "[--detector DETECTOR] [--actor ACTOR] [--org ORG] [--rule RULE_ID] [--subject PSEUDONYM] "
        "[--severity SEVERITY] [--status STATUS] [--review REVIEW] [--since WHEN] [--until WHEN] "
        "[--raised-since WHEN] [--limit N] [--config CONFIG] [--clickhouse CLICKHOUSE]",
        "show ALERT_ID [--config CONFIG] [--clickhouse CLICKHOUSE] [--policy POLICY]",
        "ack ALERT_ID [--note TEXT] [--by ANALYST] [--config CONFIG] [--clickhouse CLICKHOUSE] [--policy POLICY]",
        "resolve ALERT_ID --as VERDICT [--note TEXT] [--by ANALYST] [--config CONFIG] "
        "[--clickhouse CLICKHOUSE] [--policy POLICY]",
    )
    sp.add_argument(
        "--detector", type=detector_kind, help="only this detector (default: all; see `lifemon detectors`)"
    )
    sp.add_argument(
        "--actor", help="only this employee id (or recipient, SDK), whatever its case (default: all)"
    )
    sp.add_argument(
        "--org",
        help="only the alerts of this org id (the employee's, as the entitlements feed has it), whatever "
        f"its case; `{alert_query.NO_ORG_WORD}`: those no org is known for (a recipient's, an SDK's, a system's, an "
        "account HR does not know), counted as 未知机构 / no org known in the report and on Grafana "
        "(default: all)",
    )
    sp.add_argument(
        "--rule",
        metavar="RULE_ID",
        help="only this rule id and the rules under it, by whole parts of the id (LM-TP: LM-TP-001 to "
        "LM-TP-015; LM-SDK-001: LM-SDK-001.c3_or_auth_helper, ...; LM-RO: LM-RO-001 and LM-RO-002, "
        "two detectors), whatever its case (default: all; see `lifemon detectors`)",
    )
    sp.add_argument(
        "--subject",
        metavar="PSEUDONYM",
        help="only alerts whose sample of customers holds this pseudonym (`lifemon pseudonym` gives a "
        "customer's). A sample only: an alert about more customers than it keeps may concern one "
        "and not list it; emptied after pseudonym_ttl_days (default: all)",
    )
    _listing_options(
        sp, "alerts", "last seen (event time: its newest event, or the deadline it is about)", "newest first"
    )
    sp.set_defaults(func=cmd_alerts)
    actions = sp.add_subparsers(
        dest="alerts_action",
        metavar="{show,ack,resolve} ALERT_ID",
        required=False,
        help="one alert in full, or a review of it, instead of the list (default: the list; "
        "`lifemon alerts show -h`, `ack -h`, `resolve -h`)",
    )
    show = actions.add_parser(
        "show",
        prog="lifemon alerts show",  # not the list's whole usage, which `alerts` spells out
        help="one alert for triage: why it fired (rule, regulation), what to do (its runbook), its "
        "evidence and revisions",
        description="One alert from ClickHouse, its newest revision: detector, rule and version, "
        "titles, severity, status, actor, times (UTC and the bank's zone), customers counted and "
        "the pseudonyms kept, counts, summary, the regulation it cites and its detector's basis, "
        "the event ids kept as evidence, the detector's runbook (from the policy), and the "
        "revisions the table still holds.",
    )
    show.add_argument(
        "alert_id",
        type=id_prefix("alert"),
        metavar="ALERT_ID",
        help=f"the alert's id, or its first {alert_query.MIN_ID_PREFIX} characters or more (as `lifemon alerts` shows "
        "12), if no other alert's id starts with them",
    )
    # SUPPRESS: given before `show` (`alerts --config c.yaml show ID`), the value still counts
    show.add_argument("--config", default=argparse.SUPPRESS, help=CONFIG_HELP)
    show.add_argument("--clickhouse", default=argparse.SUPPRESS, help=CLICKHOUSE_READ_HELP)
    show.add_argument(
        "--policy", default=argparse.SUPPRESS, help=POLICY_HELP + "; it gives the runbook and basis"
    )
    _refuses_list_filters(show, "alerts")
    show.set_defaults(func=cmd_alert_show)
    _review_parsers(actions, ALERTS)

    sp = sub.add_parser(
        "incidents",
        help="list leakage incidents from ClickHouse, the earliest report due first; `incidents show "
        "ID`: one incident, its notice and reports due; `incidents subjects ID`: whom to notify; "
        "`incidents ack ID`, `incidents resolve ID`: record the team's review (docs/incidents.md)",
    )
    sp.usage = _usage(
        sp.prog,
        "[--subject PSEUDONYM] [--severity SEVERITY] [--status STATUS] [--review REVIEW] [--since WHEN] "
        "[--until WHEN] [--raised-since WHEN] [--limit N] [--config CONFIG] [--clickhouse CLICKHOUSE]",
        "show INCIDENT_ID [--config CONFIG] [--clickhouse CLICKHOUSE] [--policy POLICY]",
        "subjects INCIDENT_ID [--customers FILE] [--config CONFIG] [--clickhouse CLICKHOUSE]",
        "ack INCIDENT_ID [--note TEXT] [--by ANALYST] [--config CONFIG] [--clickhouse CLICKHOUSE]",
        "resolve INCIDENT_ID --as VERDICT [--note TEXT] "
        "[--by ANALYST] [--config CONFIG] [--clickhouse CLICKHOUSE]",
    )
    sp.add_argument(
        "--subject",
        metavar="PSEUDONYM",
        help="only incidents about this customer (`lifemon pseudonym` gives a customer's pseudonym): "
        "an incident keeps every customer its alerts named, where an alert keeps a sample; emptied "
        "after pseudonym_ttl_days (default: all)",
    )
    _listing_options(sp, "incidents", "first seen", "the earliest report due first")
    sp.set_defaults(func=cmd_incidents)
    actions = sp.add_subparsers(
        dest="incidents_action",
        metavar="{show,subjects,ack,resolve} INCIDENT_ID",
        required=False,
        help="one incident in full, the customers it names, or a review of it, instead of the list "
        "(default: the list; `lifemon incidents show -h`, `subjects -h`, `ack -h`, `resolve -h`)",
    )
    show = actions.add_parser(
        "show",
        prog="lifemon incidents show",
        help="one incident: its notice (PIPL art. 57), reports due and alerts",
        description="One incident from ClickHouse, its newest revision, as `lifemon notify` delivers it: "
        "who and what, the reports due (UTC and the bank's zone, whether passed), the notice PIPL art. 57 "
        "asks for in Chinese and English (categories and what each counts, cause, possible harm, measures "
        "to take, what individuals can do, contact), the regulation, and its alerts.",
    )
    show.add_argument(
        "incident_id",
        type=id_prefix("incident"),
        metavar="INCIDENT_ID",
        help="the incident's id, or its first 6 characters or more (as `lifemon incidents` shows 12), if "
        "no other incident's id starts with them",
    )
    show.add_argument("--config", default=argparse.SUPPRESS, help=CONFIG_HELP)
    show.add_argument("--clickhouse", default=argparse.SUPPRESS, help=CLICKHOUSE_READ_HELP)
    show.add_argument(
        "--policy",
        default=argparse.SUPPRESS,
        help=POLICY_HELP + "; its recipients.yaml gives the bank's timezone",
    )
    _refuses_list_filters(show, "incidents")
    show.set_defaults(func=cmd_incident_show)
    who = actions.add_parser(
        "subjects",
        prog="lifemon incidents subjects",
        help="the customers an incident names, for their notice: its pseudonyms, or the bank's ids",
        description="The customers one incident names, one per line, for the notice PIPL art. 57 owes "
        "them: its pseudonyms; with --customers, those of the bank's customer ids whose pseudonym (under "
        "any key of LIFEMON_PSEUDONYM_KEY's ring) it names, as given. What it counts and keeps is said "
        "on standard error.",
    )
    who.add_argument("incident_id", type=id_prefix("incident"), metavar="INCIDENT_ID", help="as for show")
    who.add_argument(
        "--customers",
        metavar="FILE",
        help="the bank's customer ids, one per line (- reads standard input); default: print the pseudonyms",
    )
    who.add_argument("--config", default=argparse.SUPPRESS, help=CONFIG_HELP)
    who.add_argument("--clickhouse", default=argparse.SUPPRESS, help=CLICKHOUSE_READ_HELP)
    who.add_argument(
        "--policy", default=argparse.SUPPRESS, help=POLICY_HELP + "; it gives the customer id form"
    )
    _refuses_list_filters(who, "incidents")
    who.set_defaults(func=cmd_incident_subjects)
    _review_parsers(actions, INCIDENTS)

    sp = sub.add_parser("watch", help="show new alerts live as pfi.alerts receives them (Ctrl-C stops)")
    sp.add_argument(
        "--detector", type=detector_kind, help="only this detector (default: all; see `lifemon detectors`)"
    )
    sp.add_argument(
        "--severity",
        type=str.lower,  # HIGH as a SOC writes it
        choices=[s.value for s in Severity],
        help="at least this severity (default: all)",
    )
    sp.add_argument(
        "--from-beginning",
        action="store_true",
        help="first every alert the topic holds, then new ones (default: new ones only)",
    )
    sp.add_argument("--config", help=CONFIG_HELP)
    sp.add_argument("--bootstrap", help=BOOTSTRAP_HELP)
    sp.set_defaults(func=cmd_watch)
    from streams.catalog_gaps import WHERE_TO_ADD

    sp = sub.add_parser(
        "catalog",
        help="coverage gaps: fields, tables, logins and SFTP accounts seen that the policy lacks",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="List what the streams and raw logs named that the policy does not know,\n"
        "read from ClickHouse (the coverage_gaps view): one line per kind, object and\n"
        "stream, with how often and when it was seen. Unknown field ids are shown as\n"
        "keyed fingerprints.",
        epilog="kinds, and where to add them:\n" + "\n".join(_listed(k, w) for k, w in WHERE_TO_ADD.items()),
    )
    sp.add_argument(
        "action",
        nargs="?",
        default="gaps",
        choices=["gaps"],
        metavar="gaps",
        help="gaps: list the coverage gaps (default: gaps; `lifemon catalog` alone lists them too)",
    )
    sp.add_argument(
        "--kind",
        choices=list(WHERE_TO_ADD),
        metavar="KIND",
        help="only this kind of gap (default: all; the kinds are below)",
    )
    sp.add_argument("--limit", type=positive, default=200, help="at most this many lines (default 200)")
    sp.add_argument("--config", help=CONFIG_HELP)
    sp.add_argument("--clickhouse", help=CLICKHOUSE_READ_HELP)
    sp.set_defaults(func=cmd_catalog)

    sp = sub.add_parser(
        "dead-letters",
        help="the records refused (pfi.dlq), one line per topic and reason, most first",
        description="List the records the monitor or a stored replay refused, read from ClickHouse\n"
        "(the dead_letters table): per topic and reason, how many, when, and the partition:offset\n"
        "of the first, so the producer or the config that made them can be fixed. A reason never\n"
        "holds a value of the record.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sp.add_argument("--since", type=when, help=f"only records refused since (default: all): {WHEN_HELP}")
    sp.add_argument("--limit", type=positive, default=100, help="at most this many lines (default 100)")
    sp.add_argument("--config", help=CONFIG_HELP)
    sp.add_argument("--clickhouse", help=CLICKHOUSE_READ_HELP)
    sp.set_defaults(func=cmd_dead_letters)

    sp = sub.add_parser("policy", help="validate the policy catalog and run detector examples")
    sp.add_argument(
        "action",
        nargs="?",
        default="check",
        choices=["check"],
        metavar="check",
        help="check: validate it and run every detector's examples (default: check; `lifemon policy` "
        "alone checks it too)",
    )
    sp.add_argument("--config", help=CONFIG_HELP)
    sp.add_argument("--policy", help=POLICY_HELP)
    sp.set_defaults(func=cmd_policy)

    sp = sub.add_parser(
        "fingerprint",
        help="the coverage-gap fingerprint of candidate field ids; how a name holding a card or a "
        "customer id is kept",
    )
    sp.add_argument(
        "names", nargs="+", help="field ids or other names to fingerprint (uses LIFEMON_PSEUDONYM_KEY)"
    )
    sp.add_argument("--config", help=CONFIG_HELP)
    sp.add_argument("--policy", help=POLICY_HELP)
    sp.set_defaults(func=cmd_fingerprint)

    sp = sub.add_parser("pseudonym", help="a customer id's pseudonym under each key of the ring")
    sp.add_argument("subjects", nargs="+", help="customer ids (uses LIFEMON_PSEUDONYM_KEY, _V2, ...)")
    sp.add_argument("--config", help=CONFIG_HELP)
    sp.add_argument("--policy", help=POLICY_HELP)
    sp.set_defaults(func=cmd_pseudonym)

    sp = sub.add_parser(
        "detectors",
        help="list the detectors and their rules: rule id, title, streams read, regulation basis",
    )
    sp.add_argument("--config", help=CONFIG_HELP)
    sp.add_argument("--policy", help=POLICY_HELP)
    sp.set_defaults(func=cmd_detectors)
    p.describe()
    return p


def entry() -> None:
    """The `lifemon` program. What it writes (the embedded database, state, the broker's log,
    reports, generated days) is its owner's alone: alerts name pseudonyms and employees, and a
    shared host's other users read the probe's 0644 .lifemon; the embedded broker inherits the
    mask. Set here, not in `main`, which tests call in a process whose other files other users read."""
    os.umask(0o077)
    sys.exit(main())


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _early_logging()
    try:
        return args.func(args)
    except (PolicyError, PseudonymKeyError, SecretUnreadable, StateTooNew) as e:
        log.error(str(e))
        return 2
    except KafkaSettingRefused as e:
        config = getattr(args, "config", None)
        log.error(f"{config}: {e}" if config else str(e))
        return 2
    except (ClickHouseUnavailable, FatalSinkError, PseudonymKeyMismatch, SealError, SchemaOutdated) as e:
        log.error(str(e))
        return 3
    except KafkaUnavailable as e:  # one line, instead of librdkafka's every 50 ms and a traceback
        log.error(str(e))
        return 4
    except StoppedInOutage as e:  # a stop asked for while starting (the schema registry down)
        log.warning(str(e))
        return 0
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `lifemon ... | head`: the reader left, nothing more to say
        sys.stderr.close()
        return 0
    except (PermissionError, FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError) as e:
        if e.filename is None:
            raise
        # an output (or input) path the command was given: one line naming it, no traceback
        log.error(f"cannot use {e.filename}: {e.strerror}; give a path lifemon can read or write there")
        return 2


def _early_logging() -> None:
    """Logging as the environment asks, until a command reads its config (a value the environment
    spells wrong falls back to the default here; the config's validation names it)."""
    level = os.environ.get("LIFEMON_LOG_LEVEL", "info").lower()
    form = os.environ.get("LIFEMON_LOG_FORMAT", "auto").lower()
    logs.setup(
        level if level in logs.LEVELS else "info",
        form if form in logs.FORMATTERS else "auto",  # type: ignore[arg-type]
    )


if __name__ == "__main__":
    entry()
