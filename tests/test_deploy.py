"""The production deployment, checked without Docker: docker-compose.yml, the Dockerfile, the
ClickHouse init script, Grafana provisioning and the dashboard must agree with each other and with
the code. Every dashboard panel's SQL runs against the real schema on chDB, after the Grafana
macros are expanded the way the plugin expands them, so a wrong column or table name fails here.

Plugin facts used below (grafana/clickhouse-datasource v4):
- query `format` is sqlds' numeric FormatQueryOption: 0 = time series, 1 = table (2 logs, 3 traces);
  `queryType` is 'timeseries' / 'table' (src/data/utils.ts mapQueryTypeToGrafanaFormat,
  src/types/queryBuilder.ts QueryType); `editorType` 'sql' is the raw SQL editor (src/types/sql.ts).
- macro expansions (docs/sources/query-editor.md, "Macros"): $__timeFilter(c) ->
  `c >= toDateTime(from_s) AND c <= toDateTime(to_s)` (end included: the panels write the range
  half-open with $__fromTime_ms / $__toTime_ms instead), $__timeInterval(c) ->
  `toStartOfInterval(toDateTime(c), INTERVAL n second)`, $__fromTime -> toDateTime(from_s), ...
- datasource settings (pkg/plugin/settings.go): jsonData host/port/protocol/username/
  defaultDatabase, secureJsonData password.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
import sysconfig
import tempfile
import tomllib
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from policy import load_policy
from streams.alert_query import query_alerts, records_and_customers
from streams.clickhouse import PASSWORD_ENV, apply_ddl, connect, ddl_statements
from streams.config import ENV_OVERRIDES
from streams.credentials import Secrets, env_name
from streams.incident_query import customers as customers_text
from streams.lifecycle_ledger import CONTRACT_COLUMNS, DELETION_COLUMNS
from streams.pseudonym import ENV_KEY
from streams.receivers import ALERTNAME
from streams.report import lifecycle
from streams.sinks.clickhouse import ALERT_COLUMNS, INCIDENT_COLUMNS, ROLLUP_COLUMNS
from streams.transfer_ledger import BANK_SQL, LEDGER_COLUMNS, PROVIDED_SQL

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
DATASOURCE = ROOT / "dashboards" / "provisioning" / "datasources" / "clickhouse.yaml"
PROVIDER = ROOT / "dashboards" / "provisioning" / "dashboards" / "lifemon.yaml"
DASHBOARDS = sorted((ROOT / "dashboards").glob("*.json"))
INIT_SCRIPT = ROOT / "deploy" / "clickhouse-init" / "01-lifemon-users.sh"
PROMETHEUS_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
PROMETHEUS_RULES = ROOT / "deploy" / "prometheus" / "rules.yml"
ALERTMANAGER_CONFIG = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
OPERATIONS = ROOT / "docs" / "operations.md"

PLUGIN = "grafana-clickhouse-datasource"
DS_UID = "lifemon-clickhouse"
FORMAT_TIME_SERIES, FORMAT_TABLE = 0, 1
SECRET_WORDS = ("PASSWORD", "KEY", "SECRET", "TOKEN")
REQUIRED_INTERPOLATION = re.compile(r"^\$\{([A-Z_][A-Z0-9_]*):\?[^}]*\}$")

# Seeded rows sit an hour back from now (pipeline_stats has a 90-day TTL, applied on insert, so
# fixed dates would age out); the dashboard range the SQL runs with, and one holding none of them.
BASE = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)
IN_RANGE = (BASE - timedelta(days=1), BASE + timedelta(days=1))
OUT_OF_RANGE = (BASE - timedelta(days=30), BASE - timedelta(days=2))
EPOCH = datetime.fromtimestamp(0, UTC)


# alert_reviews as the panels' SQL reads them (streams/reviews.py writes them so)
REVIEW_COLUMNS = [
    "alert_id",
    "review_id",
    "state",
    "analyst",
    "note",
    "alert_revision",
    "alert_last_seen",
    "at",
]


def _load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def _depends_on(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    deps = service.get("depends_on") or {}
    return {d: {} for d in deps} if isinstance(deps, list) else deps


def _volumes(service: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for vol in service.get("volumes") or []:
        if isinstance(vol, dict):
            out.append((str(vol.get("source", "")), str(vol["target"])))
        else:
            source, _, rest = str(vol).partition(":")
            out.append((source, rest.split(":")[0]))
    return out


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return _load_yaml(COMPOSE)


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]


@pytest.fixture(scope="module")
def datasource() -> dict[str, Any]:
    (ds,) = _load_yaml(DATASOURCE)["datasources"]
    return ds


def _panels() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in DASHBOARDS:
        for panel in json.loads(path.read_text(encoding="utf-8"))["panels"]:
            for p in [panel, *panel.get("panels", [])]:  # panels folded into a row sit inside it
                out.append((f"{path.stem}#{p['id']}", p))
    return out


PANELS = _panels()
QUERY_PANELS = [(pid, p) for pid, p in PANELS if p.get("type") != "row"]


# -- docker-compose.yml ---------------------------------------------------------------------------


def test_compose_has_its_services(services: dict[str, Any]) -> None:
    assert set(services) == {
        "kafka",
        "clickhouse",
        "grafana",
        "lifemon",
        "notify",
        "alertmanager",
        "prometheus",
    }
    assert services["kafka"]["image"] == "apache/kafka:3.9.0"
    assert services["clickhouse"]["image"].startswith("clickhouse/clickhouse-server:24.8")
    assert services["grafana"]["image"] == "grafana/grafana:11.3.0"
    assert services["alertmanager"]["image"].startswith("prom/alertmanager:v0.")
    assert services["prometheus"]["image"].startswith("prom/prometheus:v2.")  # the config is 2.x's
    assert services["lifemon"]["build"] in (".", {"context": "."})


def test_depends_on_targets_exist_and_have_healthchecks(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for target, spec in _depends_on(service).items():
            assert target in services, f"{name} depends on unknown service {target}"
            if (spec or {}).get("condition") == "service_healthy":
                assert "test" in services[target].get("healthcheck", {}), f"{target} has no healthcheck"
    assert set(_depends_on(services["lifemon"])) == {"kafka", "clickhouse"}
    assert all(spec["condition"] == "service_healthy" for spec in _depends_on(services["lifemon"]).values())
    assert _depends_on(services["grafana"])["clickhouse"]["condition"] == "service_healthy"


def test_secrets_are_required_interpolations_never_literals(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for var, value in _environment(service).items():
            if any(word in var for word in SECRET_WORDS):
                assert REQUIRED_INTERPOLATION.match(value), (
                    f"{name}.{var} must be `${{VAR:?message}}` (compose refuses to start without it), got {value!r}"
                )


def test_kafka_is_single_node_kraft_without_auto_create(services: dict[str, Any]) -> None:
    """(Its SASL listener and ACLs: tests/test_kafka_acls.py.)"""
    env = _environment(services["kafka"])
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert "SASL_PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"].split(",")
    assert "CONTROLLER" in env["KAFKA_LISTENERS"] and env["KAFKA_CONTROLLER_LISTENER_NAMES"] == "CONTROLLER"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@127.0.0.1:9093"
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert ("kafka-data", env["KAFKA_LOG_DIRS"]) in _volumes(services["kafka"])


def test_lifemon_env_is_what_the_code_reads(services: dict[str, Any]) -> None:
    env = _environment(services["lifemon"])
    known = set(ENV_OVERRIDES) | {env_name(f) for f in Secrets.model_fields}
    assert set(env) <= known, f"variables the code never reads: {set(env) - known}"
    assert {"LIFEMON_KAFKA_BOOTSTRAP", "LIFEMON_CLICKHOUSE_DSN", PASSWORD_ENV, ENV_KEY} <= set(env)
    for secret in (PASSWORD_ENV, ENV_KEY, "LIFEMON_KAFKA_SASL_PASSWORD"):
        match = REQUIRED_INTERPOLATION.match(env[secret])
        assert match and match.group(1) == secret, f"{secret} should pass through as ${{{secret}:?...}}"

    kafka_env = _environment(services["kafka"])
    assert f"SASL_PLAINTEXT://{env['LIFEMON_KAFKA_BOOTSTRAP']}" in kafka_env["KAFKA_ADVERTISED_LISTENERS"]

    dsn = urlsplit(env["LIFEMON_CLICKHOUSE_DSN"])
    assert (dsn.scheme, dsn.hostname, dsn.port, dsn.username, dsn.password) == (
        "http",
        "clickhouse",
        8123,
        "lifemon",
        None,
    )
    ch_env = _environment(services["clickhouse"])
    assert env.get("LIFEMON_CLICKHOUSE_DATABASE", "lifemon") == ch_env["CLICKHOUSE_DB"] == "lifemon"
    # the init script creates the lifemon account with this same password
    assert ch_env[PASSWORD_ENV] == env[PASSWORD_ENV]


def test_lifemon_runs_the_run_command(services: dict[str, Any]) -> None:
    cli = (ROOT / "streams" / "cli.py").read_text(encoding="utf-8")
    assert re.search(r"add_parser\(\s*\"run\"", cli), "`lifemon run` is not a CLI command"
    command = services["lifemon"]["command"]
    assert command == ["run", "--config", "/etc/lifemon/lifemon.yaml"]
    assert ("./deploy/lifemon.yaml", "/etc/lifemon/lifemon.yaml") in _volumes(services["lifemon"])
    assert services["lifemon"]["restart"] == "unless-stopped"


def _cli_commands() -> set[str]:
    cli = (ROOT / "streams" / "cli.py").read_text(encoding="utf-8")
    return set(re.findall(r"add_parser\(\s*\"([\w-]+)\"", cli))


def _mounted_config(service: dict[str, Any], path: str) -> Path:
    """The repository file a service sees at `path`."""
    mounts = {target: source for source, target in _volumes(service)}
    assert path in mounts, f"{path} is not mounted into the service"
    return (ROOT / mounts[path]).resolve()


def test_the_notifier_delivers_the_monitors_incidents(
    services: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a `lifemon notify` service the monitor writes incidents to pfi.incidents and nobody
    is ever told (docs/incidents.md#delivery)."""
    from streams.config import load_config

    notify, lifemon = services["notify"], services["lifemon"]
    assert "notify" in _cli_commands()
    # the monitor's image (built, never pulled) and the monitor's config file
    assert (notify["build"], notify["image"]) == (lifemon["build"], lifemon["image"])
    command = notify["command"]
    assert command[0] == "notify" and command == ["notify", "--config", "/etc/lifemon/lifemon.yaml"]
    assert _mounted_config(notify, command[2]) == _mounted_config(lifemon, command[2])
    assert notify["restart"] == "unless-stopped"

    env, monitor_env = _environment(notify), _environment(lifemon)
    known = set(ENV_OVERRIDES) | {env_name(f) for f in Secrets.model_fields}
    assert set(env) <= known, f"variables the code never reads: {set(env) - known}"
    # the same broker, as the same principal (its ACLs: tests/test_kafka_acls.py)
    for var in ("LIFEMON_KAFKA_BOOTSTRAP", "LIFEMON_KAFKA_SASL_PASSWORD"):
        assert env[var] == monitor_env[var], var

    deps = _depends_on(notify)
    assert deps["kafka"]["condition"] == "service_healthy"
    assert "lifemon" in deps  # the monitor creates pfi.incidents

    for var in list(os.environ):
        if var.startswith("LIFEMON_"):
            monkeypatch.delenv(var)
    monkeypatch.setenv("LIFEMON_KAFKA_BOOTSTRAP", env["LIFEMON_KAFKA_BOOTSTRAP"])
    config = load_config(_mounted_config(notify, command[2]))
    assert config.kafka.bootstrap == "kafka:9092" and config.notify.receivers, "notify needs receivers"
    for receiver in config.notify.receivers:
        url = urlsplit(receiver.url)
        if url.hostname in services:  # a receiver in this deployment: started first, on its port
            assert deps[url.hostname]["condition"] == "service_healthy", receiver.name
            check = " ".join(services[url.hostname]["healthcheck"]["test"])
            assert f":{url.port}/" in check, f"{receiver.name}: {url.hostname} does not listen on {url.port}"
    assert any(
        r.kind == "alertmanager" and urlsplit(r.url).hostname == "alertmanager"
        for r in config.notify.receivers
    )


def _flag(command: list[str], name: str) -> str:
    (value,) = [c.split("=", 1)[1] for c in command if c.startswith(f"--{name}=")]
    return value


def test_prometheus_scrapes_lifemon_and_alerts_through_alertmanager(services: dict[str, Any]) -> None:
    """docs/operations.md promises a Prometheus that scrapes lifemon on the compose network."""
    prometheus = services["prometheus"]
    config_path = _flag(prometheus["command"], "config.file")
    config_file = _mounted_config(prometheus, str(Path(config_path).parent)) / Path(config_path).name
    assert config_file == PROMETHEUS_CONFIG
    config = _load_yaml(PROMETHEUS_CONFIG)
    monitor = _load_yaml(_mounted_config(services["lifemon"], "/etc/lifemon/lifemon.yaml"))
    (job,) = config["scrape_configs"]
    (static,) = job["static_configs"]
    # the monitor's /metrics: its service name and metrics.port, on every interface of its container
    assert static["targets"] == [f"lifemon:{monitor['metrics']['port']}"]
    assert monitor["metrics"]["host"] == "0.0.0.0" and not _published(services["lifemon"])
    assert job.get("metrics_path", "/metrics") == "/metrics"
    assert ("prometheus-data", _flag(prometheus["command"], "storage.tsdb.path")) in _volumes(prometheus)
    (am,) = config["alerting"]["alertmanagers"]
    for target in am["static_configs"][0]["targets"]:
        host, port = target.split(":")
        assert host in services and f":{port}/" in " ".join(services[host]["healthcheck"]["test"])
    for rules in config["rule_files"]:
        assert (PROMETHEUS_CONFIG.parent / rules).is_file(), rules


def test_operations_alert_rules_are_the_ones_prometheus_evaluates() -> None:
    documented = re.search(
        r"Rules worth having[^\n]*:\n\n```yaml\n(.*?)```", OPERATIONS.read_text(encoding="utf-8"), re.S
    )
    assert documented
    shipped = {
        r["alert"]: (r["expr"], r.get("for"))
        for g in _load_yaml(PROMETHEUS_RULES)["groups"]
        for r in g["rules"]
    }
    for rule in yaml.safe_load(documented[1]):
        assert shipped[rule["alert"]] == (rule["expr"], rule.get("for")), rule["alert"]


@pytest.mark.skipif(not shutil.which("promtool"), reason="no promtool (apt-get install -y prometheus)")
def test_promtool_accepts_the_prometheus_config_and_rules() -> None:
    done = subprocess.run(
        ["promtool", "check", "config", PROMETHEUS_CONFIG.name],
        cwd=PROMETHEUS_CONFIG.parent,  # rule_files are relative to the config, as in the container
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 1 rule files found" in done.stdout + done.stderr


@pytest.mark.skipif(
    not shutil.which("amtool"), reason="no amtool (apt-get install -y prometheus-alertmanager)"
)
def test_amtool_accepts_the_alertmanager_config_and_routes_incidents(services: dict[str, Any]) -> None:
    am = services["alertmanager"]
    config_path = _flag(am["command"], "config.file")
    assert _mounted_config(am, config_path) == ALERTMANAGER_CONFIG
    done = subprocess.run(
        ["amtool", "check-config", str(ALERTMANAGER_CONFIG)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # `lifemon notify`'s alerts take the incident-response route, one notification per incident
    routed = subprocess.run(
        ["amtool", "config", "routes", "test", f"--config.file={ALERTMANAGER_CONFIG}", "--verify.receivers=incident-response",
         f"alertname={ALERTNAME}", "incident_id=i1"],
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    assert routed.returncode == 0, routed.stdout + routed.stderr


# what each analyst command reads, and the variables of its service that point it there
NEEDS = {
    "alerts": {"LIFEMON_CLICKHOUSE_DSN", PASSWORD_ENV},
    "incidents": {"LIFEMON_CLICKHOUSE_DSN", PASSWORD_ENV},
    "report": {"LIFEMON_CLICKHOUSE_DSN", PASSWORD_ENV},
    "watch": {"LIFEMON_KAFKA_BOOTSTRAP", "LIFEMON_KAFKA_SASL_PASSWORD"},
}


def test_the_analyst_commands_in_operations_md_run_in_the_compose_services(services: dict[str, Any]) -> None:
    """Kafka and ClickHouse are not published, so docs/operations.md tells analysts to run the
    commands in the monitor's container: each must name a service, a mounted config, options the
    CLI has, and a service whose environment reaches what the command reads."""
    import shlex

    from streams.cli import build_parser

    text = OPERATIONS.read_text(encoding="utf-8")
    section = text.split("## Analysts on the compose deployment", 1)[1].split("\n## ", 1)[0]
    lines = [ln for ln in section.splitlines() if ln.startswith("docker compose ")]
    ran = set()
    workdir = [v for k, v in _instructions(DOCKERFILE) if k == "WORKDIR"][-1]
    for line in lines:
        words = shlex.split(line)
        if words[2] == "cp":  # copying a file a command wrote in the working directory
            service, _, path = words[3].partition(":")
            assert service in services and Path(path).parent == Path(workdir), line
            assert ("report", Path(path).name) in ran, f"{line}: no command above writes {path}"
            continue
        assert words[2] == "exec" and words[4] == "lifemon", line
        service, argv = words[3], words[5:]
        assert service in services, f"{line}: no service {service}"
        args = build_parser().parse_args(argv)  # exits on an option the CLI does not have
        assert args.config and _mounted_config(services[service], args.config).is_file(), line
        missing = NEEDS[argv[0]] - set(_environment(services[service]))
        assert not missing, f"{line}: {service} has no {missing}"
        ran.add((argv[0], getattr(args, "out", "") or ""))
    assert {"alerts", "watch"} <= {command for command, _ in ran}


def test_relative_volume_sources_exist(services: dict[str, Any], compose: dict[str, Any]) -> None:
    for name, service in services.items():
        for source, target in _volumes(service):
            if source.startswith((".", "/")):
                assert (ROOT / source).resolve().exists(), (
                    f"{name}: volume source {source} -> {target} is missing"
                )
            else:
                assert source in (compose.get("volumes") or {}), (
                    f"{name}: named volume {source} is not declared"
                )


# -- Dockerfile -------------------------------------------------------------------------------------


def _instructions(path: Path) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8"))
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    return [(ln.split(None, 1)[0].upper(), ln.split(None, 1)[1] if " " in ln else "") for ln in lines]


def test_dockerfile_installs_the_package_and_drops_root() -> None:
    steps = _instructions(DOCKERFILE)
    kinds = [k for k, _ in steps]
    assert steps[0] == ("FROM", "python:3.11.11-slim-bookworm")  # pinned (test_images_are_pinned)
    assert ("COPY", ". /app") in steps
    install = next(
        i for i, (k, v) in enumerate(steps) if k == "RUN" and "pip install --no-cache-dir -e ." in v
    )
    user = max(i for i, k in enumerate(kinds) if k == "USER")
    assert user > install and steps[user][1] not in ("root", "0"), "the image must run as a non-root user"
    assert json.loads(dict(steps)["ENTRYPOINT"]) == ["lifemon"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    assert "lifemon" in scripts


def test_dockerfile_builds_the_c_extensions_it_declares() -> None:
    """pyproject declares C extensions (the engine's door): the image has no compiler, so the
    install step must install one first, and the build context must carry the sources, never a
    library built for the host's Python."""
    modules = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"][
        "ext-modules"
    ]
    install = next(v for k, v in _instructions(DOCKERFILE) if k == "RUN" and "pip install" in v)
    compiler = re.search(r"apt-get install [^&]*\bgcc\b", install)
    assert compiler and compiler.start() < install.index("pip install"), "gcc must be installed before pip"
    patterns = [ln.strip() for ln in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()]
    patterns = [p for p in patterns if p and not p.startswith("#")]
    for module in modules:
        for source in module["sources"]:
            assert (ROOT / source).is_file() and not _ignored(source, patterns), source
        built = module["name"].replace(".", "/") + sysconfig.get_config_var("EXT_SUFFIX")
        assert _ignored(built, patterns), f"{built}: a host build must not reach the image"


def test_make_install_rebuilds_when_any_c_source_changes() -> None:
    """`make install` builds the C extensions once and only again when its prerequisites change:
    every source pyproject declares must be among them, or an edited kernel runs stale."""
    modules = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"][
        "ext-modules"
    ]
    rule = next(
        ln
        for ln in (ROOT / "Makefile").read_text(encoding="utf-8").splitlines()
        if ln.startswith("$(VENV)/.installed:")
    )
    prerequisites = rule.split(":", 1)[1].split("#")[0]
    globs = [g for w in re.findall(r"\$\(wildcard ([^)]*)\)", prerequisites) for g in w.split()]
    for module in modules:
        for source in module["sources"]:
            assert any(fnmatch.fnmatch(source, g) for g in globs) or source in prerequisites.split(), source


def _ignored(rel: str, patterns: list[str]) -> bool:
    parts = rel.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        pattern = pattern.strip("/")
        if pattern.startswith("**/"):
            if any(fnmatch.fnmatch(p, pattern[3:]) for p in parts):
                return True
        elif any(fnmatch.fnmatch(prefix, pattern) for prefix in prefixes):
            return True
    return False


def test_dockerignore_keeps_what_the_build_and_runtime_read() -> None:
    patterns = [ln.strip() for ln in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()]
    patterns = [p for p in patterns if p and not p.startswith("#")]
    assert not any(p.startswith("!") for p in patterns), "negations are not modelled by this test"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    packages = [p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]]
    needed = ["pyproject.toml", str(project["project"].get("readme", "README.md"))]
    # the packages, and the DDL that streams/clickhouse.py reads from the source tree
    for top in [*packages, "clickhouse"]:
        needed += [
            str(p.relative_to(ROOT))
            for p in (ROOT / top).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".so"  # .so: built here
        ]
    assert any(n.startswith("clickhouse/") and n.endswith(".sql") for n in needed)
    kept_out = [n for n in needed if _ignored(n, patterns)]
    assert not kept_out, f".dockerignore excludes files the image needs: {kept_out}"
    for local in (".git", ".env", ".lifemon", ".venv"):
        assert _ignored(local, patterns), f"{local} should stay out of the build context"


# -- ClickHouse accounts ----------------------------------------------------------------------------


def init_sql() -> list[str]:
    text = INIT_SCRIPT.read_text(encoding="utf-8")
    body = re.search(r"<<SQL\n(.*?)\nSQL\n", text, re.S)
    assert body, "the init script's SQL heredoc was not found"
    sql = body.group(1).replace("${db}", "lifemon")
    sql = re.sub(r"\$\{\w+_hash\}", "0" * 64, sql)
    assert "$" not in sql, "unexpected shell expansion in the init SQL"
    return [s.strip() for s in sql.split(";") if s.strip()]


def test_init_script_creates_least_privilege_accounts(
    services: dict[str, Any], datasource: dict[str, Any]
) -> None:
    ch = services["clickhouse"]
    assert ("./deploy/clickhouse-init", "/docker-entrypoint-initdb.d") in _volumes(ch)
    env = _environment(ch)
    assert env["CLICKHOUSE_DEFAULT_ACCESS_MANAGEMENT"] == "1" and env["CLICKHOUSE_USER"] != "lifemon"
    for var in re.findall(r"\$\{(\w+):\?", INIT_SCRIPT.read_text(encoding="utf-8")):
        assert var in env, f"the init script needs {var}, which the clickhouse service does not get"

    sql = "\n".join(init_sql())
    dsn_user = urlsplit(_environment(services["lifemon"])["LIFEMON_CLICKHOUSE_DSN"]).username
    ro_user = datasource["jsonData"]["username"]
    assert re.search(rf"CREATE USER IF NOT EXISTS {dsn_user} IDENTIFIED WITH sha256_hash", sql)
    assert re.search(rf"CREATE USER IF NOT EXISTS {ro_user} IDENTIFIED WITH sha256_hash", sql)
    assert "readonly = 1" in sql and "CHANGEABLE_IN_READONLY" in sql
    grants = re.findall(rf"GRANT (.+) ON (\S+) TO {ro_user}\b", sql)
    # exactly the tables the dashboards read, nothing else
    assert sorted(grants) == sorted(("SELECT", f"lifemon.{t}") for t in panel_tables()), (
        f"{ro_user} grants: {grants}"
    )


# a table a query reads: after FROM or JOIN (not ARRAY JOIN), not a function or a subquery
READS = re.compile(r"\b(?:FROM|(?<!ARRAY\s)JOIN)\s+([\w.]+)(?![\w.]|\s*\()", re.I)


def panel_tables() -> set[str]:
    """The tables every dashboard panel's SQL reads, from the SQL itself: what Grafana's read-only
    account needs, and all it may have."""
    tables = set()
    for pid, panel in QUERY_PANELS:
        for target in panel["targets"]:
            sql = target["rawSql"]
            named = set(re.findall(r"\b(\w+)\s+AS\s*\(", sql, re.I))  # WITH x AS (...): not a table
            for name in READS.findall(sql):
                database, _, table = name.rpartition(".")
                if not database and table in named:
                    continue
                # the datasource's defaultDatabase would find it unqualified, but the panel tests
                # run each panel in a database of their own by rewriting `lifemon.`
                assert database == "lifemon", f"{pid}: qualify {name} as lifemon.{table}"
                tables.add(table)
    return tables


def test_panel_tables_are_read_from_the_sql() -> None:
    assert panel_tables() >= {"alerts", "event_rollups", "incidents"}
    assert READS.findall("SELECT k FROM lifemon.alerts ARRAY JOIN mapKeys(counts) AS k") == ["lifemon.alerts"]
    assert READS.findall("SELECT 1 FROM (SELECT 1 FROM lifemon.x) JOIN lifemon.y USING a") == [
        "lifemon.x",
        "lifemon.y",
    ]


def test_what_the_docs_say_grafana_may_read_is_what_it_is_granted(datasource: dict[str, Any]) -> None:
    """The datasource once said `SELECT on lifemon.*` and the init script "six dashboard tables"
    while it granted seven: each place that describes the account says what the grants are."""
    ro_user = datasource["jsonData"]["username"]
    security = (ROOT / "docs" / "security.md").read_text(encoding="utf-8")
    listed = re.search(rf"- `{ro_user}`: `SELECT` on the dashboard tables \(([^)]*)\)", security)
    assert listed, f"docs/security.md no longer lists {ro_user}'s tables"
    assert set(re.findall(r"`(\w+)`", listed[1])) == panel_tables()
    for path in (INIT_SCRIPT, DATASOURCE):
        said = " ".join(
            ln.lstrip("# ") for ln in path.read_text(encoding="utf-8").splitlines() if ln.startswith("#")
        )
        (claim,) = re.findall(rf"{ro_user}\W[^.]*", said)
        assert "lifemon.*" not in claim, f"{path.name}: {claim}"
        assert not re.search(
            r"\b(?:one|two|three|four|five|six|seven|eight|nine|ten|\d+) (?:dashboard )?tables", claim
        ), f"{path.name} counts the tables; say which: {claim}"


def test_init_sql_parses(_deploy_chdb: Any) -> None:
    for statement in init_sql():
        _deploy_chdb.query("SELECT formatQuery({q:String})", parameters={"q": statement})


# -- exposure, pinned images, the Grafana plugin ---------------------------------------------------

PINNED_IMAGE = re.compile(r"^[\w./-]+(:v?\d+\.\d+\.\d+[\w.-]*)?(@sha256:[0-9a-f]{64})?$")
PLUGINS_LOCK = ROOT / "deploy" / "grafana" / "plugins.lock"
OFFLINE = ROOT / "deploy" / "grafana" / "offline.yml"


def _published(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(host address, container port) of each published port; "" for every interface."""
    out = []
    for port in service.get("ports") or []:
        if isinstance(port, dict):
            out.append((str(port.get("host_ip", "")), str(port["target"])))
        else:
            parts = str(port).split(":")
            out.append((parts[0] if len(parts) == 3 else "", parts[-1]))
    return out


def test_nothing_is_published_on_every_interface_without_tls(services: dict[str, Any]) -> None:
    for name, service in services.items():
        tls = _environment(service).get("GF_SERVER_PROTOCOL") in ("https", "h2")
        for host, port in _published(service):
            assert tls or host in ("127.0.0.1", "::1"), (
                f"{name} publishes {port} on {host or 'every interface'} without TLS"
            )
    assert _published(services["grafana"]) == [("127.0.0.1", "3000")]


def test_images_are_pinned(services: dict[str, Any]) -> None:
    for name, service in services.items():
        if "build" in service:
            continue  # built from the Dockerfile, whose base is pinned (below)
        image = service["image"]
        assert PINNED_IMAGE.match(image) and (":" in image or "@" in image), f"{name}: {image} is not pinned"
    base = dict(_instructions(DOCKERFILE))["FROM"]
    assert PINNED_IMAGE.match(base) and re.search(r":\d+\.\d+\.\d+", base), f"Dockerfile FROM {base}"


def test_the_grafana_plugin_is_pinned_online_and_offline(services: dict[str, Any]) -> None:
    from deploy_grafana import pinned

    lock = pinned(PLUGINS_LOCK)
    assert set(lock) == {PLUGIN} and re.fullmatch(r"\d+\.\d+\.\d+", lock[PLUGIN])
    assert _environment(services["grafana"])["GF_INSTALL_PLUGINS"] == f"{PLUGIN} {lock[PLUGIN]}"
    offline = _load_yaml(OFFLINE)["services"]["grafana"]
    assert offline["environment"]["GF_INSTALL_PLUGINS"] == ""  # nothing downloaded
    assert (f"./deploy/grafana/plugins/{PLUGIN}", f"/var/lib/grafana/plugins/{PLUGIN}") in _volumes(offline)


def _plugin_zip(path: Path, plugin: str, version: str) -> Path:
    import zipfile

    with zipfile.ZipFile(path, "w") as z:
        z.writestr(f"{plugin}/plugin.json", json.dumps({"id": plugin, "info": {"version": version}}))
        exe = zipfile.ZipInfo(f"{plugin}/gpx_clickhouse_linux_amd64")
        exe.external_attr = 0o755 << 16
        z.writestr(exe, b"\x7fELF")
        z.writestr(f"{plugin}/../../escape.txt", b"never written outside the plugin's folder")
    return path


def test_vendor_plugin_unpacks_only_the_pinned_version(tmp_path: Path) -> None:
    from deploy_grafana import pinned, vendor

    version = pinned(PLUGINS_LOCK)[PLUGIN]
    target = vendor(_plugin_zip(tmp_path / "ok.zip", PLUGIN, version), tmp_path / "plugins")
    assert target == tmp_path / "plugins" / PLUGIN
    assert json.loads((target / "plugin.json").read_text())["info"]["version"] == version
    assert os.access(target / "gpx_clickhouse_linux_amd64", os.X_OK)  # Grafana runs the backend
    assert not list(tmp_path.rglob("escape.txt"))
    with pytest.raises(SystemExit, match=f"pins {version}"):
        vendor(_plugin_zip(tmp_path / "old.zip", PLUGIN, "4.0.0"), tmp_path / "plugins")
    with pytest.raises(SystemExit, match="not pinned"):
        vendor(_plugin_zip(tmp_path / "other.zip", "someone-else-datasource", version), tmp_path / "plugins")


# -- Grafana provisioning ---------------------------------------------------------------------------


def test_datasource_provisioning(datasource: dict[str, Any], services: dict[str, Any]) -> None:
    assert datasource["type"] == PLUGIN and datasource["uid"] == DS_UID
    jd, secure = datasource["jsonData"], datasource["secureJsonData"]
    assert jd["host"] in services
    assert (jd["protocol"], int(jd["port"])) in {("native", 9000), ("http", 8123)}
    assert jd["username"] == "grafana_ro" and jd["defaultDatabase"] == "lifemon"
    assert set(secure) == {"password"}, "the plugin reads only the password from secureJsonData"
    env_ref = re.fullmatch(r"\$__env\{(\w+)\}", secure["password"])
    assert env_ref, "the password must come from the environment"
    grafana_env = _environment(services["grafana"])
    assert REQUIRED_INTERPOLATION.match(grafana_env[env_ref.group(1)])
    assert PLUGIN in grafana_env["GF_INSTALL_PLUGINS"]


def test_grafana_mounts_match_provisioning(services: dict[str, Any]) -> None:
    mounts = dict((target, source) for source, target in _volumes(services["grafana"]))
    assert (ROOT / mounts["/etc/grafana/provisioning/datasources"]).resolve() == DATASOURCE.parent
    assert (ROOT / mounts["/etc/grafana/provisioning/dashboards"]).resolve() == PROVIDER.parent
    (provider,) = _load_yaml(PROVIDER)["providers"]
    assert provider["type"] == "file"
    assert (ROOT / mounts[provider["options"]["path"]]).resolve() == ROOT / "dashboards"
    home = _environment(services["grafana"]).get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
    if home:
        assert Path(home).parent == Path(provider["options"]["path"])
        assert (ROOT / "dashboards" / Path(home).name).is_file()


# -- dashboards -------------------------------------------------------------------------------------


def test_dashboards_are_valid() -> None:
    assert [p.name for p in DASHBOARDS] == [
        "lifemon-consent-sdk.json",
        "lifemon-lifecycle.json",
        "lifemon-overview.json",
    ]
    uids = set()
    for path in DASHBOARDS:
        dash = json.loads(path.read_text(encoding="utf-8"))
        uids.add(dash["uid"])
        assert dash["uid"] == path.stem
        # in the bank's zone, as every report and deadline is (a viewer's browser in UTC, or abroad,
        # showed a Beijing night's alerts on the day before)
        assert dash["timezone"] == load_policy().recipients.timezone, path.name
        assert re.search(r"[\u4e00-\u9fff]", dash["title"]) and re.search(r"[A-Za-z]", dash["title"])
        ids = [p["id"] for p in dash["panels"]]
        assert len(ids) == len(set(ids)), f"{path.name}: duplicate panel ids"
        cells: set[tuple[int, int]] = set()
        for panel in dash["panels"]:
            g = panel["gridPos"]
            assert set(g) == {"x", "y", "w", "h"} and g["w"] > 0 and g["h"] > 0 and g["x"] + g["w"] <= 24, (
                panel["title"]
            )
            mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
            assert not (cells & mine), f"{path.name}: panel {panel['id']} overlaps another"
            cells |= mine
    assert len(uids) == len(DASHBOARDS)


@pytest.mark.parametrize(("pid", "panel"), QUERY_PANELS, ids=[pid for pid, _ in QUERY_PANELS])
def test_panel_is_bilingual_and_uses_the_provisioned_datasource(
    pid: str, panel: dict[str, Any], datasource: dict[str, Any]
) -> None:
    expected = {"type": datasource["type"], "uid": datasource["uid"]}
    title = panel["title"]
    assert re.search(r"[\u4e00-\u9fff]", title) and re.search(r"[A-Za-z]{3}", title) and " / " in title, title
    assert panel["datasource"] == expected
    assert panel["targets"], f"{pid} has no query"
    for target in panel["targets"]:
        assert target["datasource"] == expected
        assert target["editorType"] == "sql" and target["rawSql"].strip()
        if panel["type"] == "timeseries":
            assert (target["format"], target["queryType"]) == (FORMAT_TIME_SERIES, "timeseries"), pid
        else:
            assert (target["format"], target["queryType"]) == (FORMAT_TABLE, "table"), pid


# -- every panel's SQL on chDB ----------------------------------------------------------------------


def expand_macros(sql: str, start: datetime, end: datetime, interval_s: int = 60) -> str:
    """Grafana + plugin macro expansion, as documented in the plugin's query-editor.md."""
    f, t = int(start.timestamp()), int(end.timestamp())
    col = r"\(\s*([^()]+?)\s*\)"
    rules: list[tuple[str, Any]] = [
        (
            rf"\$__timeFilter_ms{col}",
            lambda m: (
                f"{m[1]} >= fromUnixTimestamp64Milli({f * 1000}) AND {m[1]} <= fromUnixTimestamp64Milli({t * 1000})"
            ),
        ),
        (rf"\$__timeFilter{col}", lambda m: f"{m[1]} >= toDateTime({f}) AND {m[1]} <= toDateTime({t})"),
        (rf"\$__timeFrom{col}", lambda m: f"{m[1]} >= toDateTime({f})"),
        (rf"\$__timeTo{col}", lambda m: f"{m[1]} <= toDateTime({t})"),
        (
            rf"\$__timeInterval_ms{col}",
            lambda m: f"toStartOfInterval(toDateTime64({m[1]}, 3), INTERVAL {interval_s * 1000} millisecond)",
        ),
        (
            rf"\$__timeInterval{col}",
            lambda m: f"toStartOfInterval(toDateTime({m[1]}), INTERVAL {interval_s} second)",
        ),
        (r"\$__fromTime_ms\b", lambda m: f"fromUnixTimestamp64Milli({f * 1000})"),
        (r"\$__toTime_ms\b", lambda m: f"fromUnixTimestamp64Milli({t * 1000})"),
        (r"\$__fromTime\b", lambda m: f"toDateTime({f})"),
        (r"\$__toTime\b", lambda m: f"toDateTime({t})"),
        (r"\$__interval_s\b", lambda m: str(interval_s)),
    ]
    for pattern, repl in rules:
        sql = re.sub(pattern, repl, sql)
    assert "$" not in sql, f"unexpanded macro or variable left in:\n{sql}"
    return sql


@pytest.fixture(scope="session")
def _deploy_chdb() -> Any:
    """The process's chDB (one data path per process): the same path as the other tests use."""
    path = os.environ.get("LIFEMON_TEST_CHDB") or str(
        Path(tempfile.gettempdir()) / f"lifemon-test-chdb-{os.getpid()}"
    )
    return connect(f"chdb://{path}")


def _ts(minute: int, second: int = 0) -> datetime:
    return BASE + timedelta(minutes=minute, seconds=second)


def _insert(client: Any, db: str, table: str, columns: list[str], rows: list[tuple]) -> None:
    data = [list(col) for col in zip(*rows, strict=True)]
    client.insert(table, data, database=db, column_names=columns, column_oriented=True)


def _alert(
    alert_id: str, revision: int, status: str, detector: str, severity: str, actor: str, minute: int
) -> tuple:
    return (
        alert_id,
        revision,
        status,
        detector,
        f"{detector}.r1",
        1,
        severity,
        "批量查询客户信息",
        "Bulk customer lookup",
        f"{actor} looked up 120 customers",
        ["JR/T 0171-2020 7.1.3"],
        ["JR/T 0171-2020 7.1.3 (in English)"],
        "C3",
        actor,
        "S0101",
        120,
        ["p:ab12"],
        {"events": 40},
        ["ev-1"],
        40,  # event_count
        _ts(0),
        _ts(5),
        _ts(minute),
        _ts(minute),
        "{}",
        revision,
    )


def _overrun(
    alert_id: str, revision: int, status: str, deadline: datetime, counts: dict[str, int] | None = None
) -> tuple:
    """A retention_expired alert on a crm record, its window ending at the record's deadline; or,
    with `counts`, a batch's (records due that day, those still kept)."""
    row = list(_alert(alert_id, revision, status, "retention_overrun", "medium", "crm", 0))
    row[ALERT_COLUMNS.index("rule_id")] = "LM-RO-001.retention_expired"
    if counts is not None:
        row[ALERT_COLUMNS.index("counts")] = counts
    row[ALERT_COLUMNS.index("window_start")] = deadline - timedelta(days=30)
    for col in ("window_end", "first_seen", "last_seen"):
        row[ALERT_COLUMNS.index(col)] = deadline
    return tuple(row)


def _incident(
    incident_id: str,
    revision: int,
    customers: int,
    first: datetime,
    due: datetime,
    reported: int | None = None,
    assessor: datetime | None = None,
    unnamed: int | None = None,
    individuals: datetime | None = None,
) -> tuple:
    """`reported`: the customers its alerts reported, named or not (default: the named ones);
    `unnamed`: those reported without names (None: a record from before lifemon kept them apart).
    `due`: the regulator's report, which the notice makes; `assessor`: a report it does not;
    `individuals`: the individuals' notice, which the notice makes and its `waiver` may forgo."""
    sdk = {"observations": 3, "devices": 2} if incident_id == "i-unnamed" else {}
    reports = [({"zh": "监管部门", "en": "the regulator"}, due, True, "")]
    if individuals:
        reports.append(
            ({"zh": "受影响的个人", "en": "the individuals affected"}, individuals, True, "PIPL 57 ¶2")
        )
    if assessor:
        reports.append(
            ({"zh": "外部安全评估机构", "en": "an external security assessor"}, assessor, False, "")
        )
    deadlines = [
        {"to": to, "due": int(at.timestamp() * 1000), "notice": notice, "waiver": waiver}
        for to, at, notice, waiver in reports
    ]
    incident = json.dumps(
        {"subjects": {"distinct": customers, "reported": customers if reported is None else reported}}
        | (
            {"subjects": {"distinct": customers, "reported": customers + unnamed, "unnamed": unnamed}}
            if unnamed
            else {}
        )
        | {"deadlines": deadlines}
        | sdk
    )
    return (incident_id, revision, "open" if revision == 1 else "updated", "actor", "E1", "high",
            ["bulk_export"], "批量导出", "Bulk export", customers, customers, first, first, due,
            ["a1"], incident, revision)  # fmt: skip


def _seed(client: Any, db: str) -> None:
    """A few rows per table. Later inserts supersede earlier ones (separate parts), so a panel
    that forgets FINAL on a Replacing table counts wrong in the checks below. pfi.access was
    deleted and re-created once (topic ids A, then B): the second incarnation's block 0 adds to
    the first's, and a row written before topic ids (topic_id '') stays readable."""
    _insert(
        client,
        db,
        "event_rollups",
        ROLLUP_COLUMNS,
        [
            # a partial block, superseded
            ("pfi.access", 0, 0, _ts(0), "access", "C3", "S0101", "ok", "", 3, 3, "A"),
        ],
    )
    _insert(
        client,
        db,
        "event_rollups",
        ROLLUP_COLUMNS,
        [
            # topic A's block 0 was counted before the rollups kept the action: its rows read ''
            ("pfi.access", 0, 0, _ts(0), "access", "C3", "S0101", "ok", "", 5, 5, "A"),
            ("pfi.access", 0, 0, _ts(1), "access", "C2", "S0101", "ok", "view", 7, 7, "A"),
            ("pfi.access", 1, 0, _ts(0), "access", "C3", "S0102", "denied", "print", 4, 4, "A"),
            # the re-created topic
            ("pfi.access", 0, 0, _ts(0), "access", "C3", "S0101", "ok", "export", 2, 2, "B"),
            ("pfi.transfer", 0, 0, _ts(0), "transfer", "C1", "acme-collections", "processor", "", 2, 2, ""),
            ("pfi.sdk", 0, 0, _ts(0), "sdk_label", "C2", "amap_location:imei", "vague", "", 3, 3, "S"),
            ("pfi.sdk", 0, 0, _ts(0), "sdk_label", "C2", "amap_location:contacts", "omitted", "", 1, 3, "S"),
            ("pfi.marketing", 0, 0, _ts(0), "marketing", "C1", "S0101", "sms", "", 8, 8, "M"),
        ],
    )
    _insert(
        client,
        db,
        "alerts",
        ALERT_COLUMNS,
        [
            _alert("a1", 1, "open", "bulk_query", "critical", "e1", 1),
            _alert("a2", 1, "open", "off_hours", "high", "e2", 2),
        ],
    )
    _insert(
        client,
        db,
        "alerts",
        ALERT_COLUMNS,
        [
            _alert("a1", 2, "closed", "bulk_query", "critical", "e1", 3),
            _alert("a3", 2, "updated", "bulk_query", "medium", "e1", 4),
            _alert("m1", 1, "open", "offscope_marketing", "high", "e3", 5)[: ALERT_COLUMNS.index("counts")]
            + ({"rule_after_withdrawal": 1, "pushes": 2, "opt_out_delay_s": 600},)
            + _alert("m1", 1, "open", "offscope_marketing", "high", "e3", 5)[
                ALERT_COLUMNS.index("counts") + 1 :
            ],
        ],
    )
    day = timedelta(days=1)
    _insert(  # an overrun still open (the backlog), and one its record's late deletion closed
        client,
        db,
        "alerts",
        ALERT_COLUMNS,
        [_overrun("r1", 1, "open", BASE - 40 * day), _overrun("r2", 2, "closed", BASE - 60 * day)],
    )
    # analysts' reviews (streams/reviews.py): a2 resolved while its episode is still open, r2
    # closed out as a false positive, m1 acknowledged only, a3 resolved before its last events
    # (minute 4), and a1, closed by its detector, reviewed by nobody
    review_columns = REVIEW_COLUMNS
    _insert(
        client,
        db,
        "alert_reviews",
        review_columns,
        [
            ("a2", "v1", "acknowledged", "e900001", "", 1, _ts(2), _ts(10)),
            ("a3", "v2", "resolved", "e900001", "", 1, _ts(3), _ts(3, 30)),
            (
                "r2",
                "v3",
                "false_positive",
                "e900002",
                "deleted late, by a request",
                2,
                BASE - 60 * day,
                _ts(12),
            ),
            ("m1", "v4", "acknowledged", "e900002", "", 1, _ts(5), _ts(12)),
        ],
    )
    _insert(  # a later part: the newest review wins, whichever part holds it
        client,
        db,
        "alert_reviews",
        review_columns,
        [("a2", "v5", "resolved", "e900002", "ticket 4411", 1, _ts(2), _ts(11))],
    )
    _insert(
        client,
        db,
        "deletion_events",
        DELETION_COLUMNS,
        [  # a request executed after 2.5 days, one open for 20 days, a deletion nobody requested, and a
            # request refused as the law allows (answered, not executed: neither open nor executed)
            ("R1", "e1", "deletion_requested", BASE - 3 * day, BASE + 12 * day, "crm"),
            ("R1", "e2", "delete", BASE - day / 2, EPOCH, "crm"),
            ("R2", "e3", "deletion_requested", BASE - 20 * day, BASE - 5 * day, "crm"),
            ("R3", "e4", "delete", BASE, EPOCH, "crm"),
            ("R4", "e5", "deletion_requested", BASE - 4 * day, BASE + 11 * day, "crm"),
            ("R4", "e6", "deletion_refused", BASE - day / 4, EPOCH, "crm"),
            # and one refused after its 15 days: answered late
            ("R5", "e7", "deletion_requested", BASE - 20 * day, BASE - 5 * day, "crm"),
            ("R5", "e8", "deletion_refused", BASE - day / 8, EPOCH, "crm"),
        ],
    )
    entrusted = ("p1", "外包 / outsourcer", "processor", "contract", "C2")
    ledger = list(LEDGER_COLUMNS)
    _insert(  # two files to the outsourcer, customer pb in both; one to the bank's own warehouse
        client,
        db,
        "transfer_ledger",
        ledger,
        [
            # under the name the policy gave the outsourcer before: the newest transfer's name is read
            ("t1", _ts(0), "p1", "旧名 / old name", *entrusted[2:], 3, 3, 3, ["pa", "pb", "pc"]),
            ("t2", _ts(1), *entrusted, 2, 2, 2, ["pb", "pd"]),
            ("t3", _ts(2), "int_dw", "数据仓库 / data warehouse", "internal", "none", "C2", 9, 9, 1, ["pa"]),
        ],
    )
    # t2 written again by a replay, in a part of its own: counted once
    _insert(client, db, "transfer_ledger", ledger, [("t2", _ts(1), *entrusted, 2, 2, 2, ["pb", "pd"])])
    contract = ("p1", "CT-1", "processor", "CN", "外包", "outsourcer", ["contact"], BASE.date())
    old_policy = [
        (*contract, BASE - 400 * day, BASE + 10 * day, 0, "", 1),
        ("p0", "CT-0", "processor", "CN", "旧", "old", ["contact"], BASE.date(), BASE, BASE + day, 0, "", 1),
    ]
    _insert(client, db, "recipient_contracts", CONTRACT_COLUMNS, old_policy)
    # the newest start renewed p1's contract and dropped p0: only its rows count
    _insert(
        client,
        db,
        "recipient_contracts",
        CONTRACT_COLUMNS,
        [(*contract, BASE - 400 * day, BASE + 40 * day, 0, "", 2)],
    )
    dl_columns = ["topic", "partition", "offset", "kind", "field", "message", "seen_at"]
    _insert(
        client,
        db,
        "dead_letters",
        dl_columns,
        [
            ("pfi.access", 0, 10, "schema", "ts", "missing field", _ts(0)),
            ("pfi.access", 0, 11, "decode", "", "not JSON", _ts(1)),
        ],
    )
    _insert(
        client,
        db,
        "dead_letters",
        dl_columns,
        [("pfi.access", 0, 10, "schema", "ts", "missing field (retry)", _ts(0))],
    )
    # found late, its first report and its assessor's already due; the second revision supersedes the first
    for revision, customers in ((1, 50), (2, 63)):
        late = _incident("i-late", revision, customers, _ts(0), _ts(-30), assessor=_ts(-20))
        _insert(client, db, "incidents", list(INCIDENT_COLUMNS), [late])
    # 5 customers named, and a log's 1 200 it only counted
    ahead = _incident("i-ahead", 1, 5, _ts(1), _ts(1) + timedelta(days=1), unnamed=1200)
    # the response team notified i-late as it stands; i-ahead before it counted its fifth customer
    # (a review covering less than the incident is none)
    _insert(
        client,
        db,
        "incident_reviews",
        [
            "incident_id",
            "review_id",
            "state",
            "analyst",
            "note",
            "incident_revision",
            "incident_last_seen",
            "at",
            "incident_subjects_distinct",
            "incident_records",
            "incident_alert_ids",
        ],
        [
            ("i-late", "n1", "notified", "e900003", "", 2, _ts(0), _ts(12), 63, 63, ["a1"]),
            # i-ahead was notified at 4 customers, its last event the same: it grew since, by a late alert
            ("i-ahead", "n2", "notified", "e900003", "", 1, _ts(1), _ts(12), 4, 4, ["a1"]),
            # i-unnamed, as many customers and records, but another alert than the one it holds
            ("i-unnamed", "n3", "notified", "e900003", "", 1, _ts(1), _ts(12), 0, 0, ["a0"]),
            # i-done, resolved as it stands: it owes nothing
            ("i-done", "n4", "resolved", "e900003", "checked", 1, _ts(2), _ts(12), 2, 2, ["a1"]),
        ],
    )
    # a transfer log that reported 142 customers and named none
    unnamed = _incident("i-unnamed", 1, 0, _ts(1), _ts(1) + timedelta(days=2), reported=142)
    done = _incident("i-done", 1, 2, _ts(2), _ts(2) + timedelta(days=1))
    _insert(client, db, "incidents", list(INCIDENT_COLUMNS), [ahead, unnamed, done])
    stats_columns = ["ts", "instance", "stream", "events", "dead_letters", "alerts", "lag", "events_per_s"]
    _insert(
        client,
        db,
        "pipeline_stats",
        stats_columns,
        [
            (_ts(0), "i1", "access", 1000, 1, 0, 50, 900.0),
            (_ts(0, 30), "i1", "access", 2000, 1, 1, 20, 1100.0),
            (_ts(0, 30), "i2", "access", 1500, 0, 0, 10, 800.0),
            (_ts(1), "i1", "transfer", 300, 0, 0, 0, 40.0),
        ],
    )


@pytest.fixture(scope="module")
def deploy_db(_deploy_chdb: Any) -> Iterator[str]:
    """The real DDL in a database of its own, so other tests sharing the chDB never see these rows."""
    db = f"deploy_{uuid.uuid4().hex[:8]}"
    apply_ddl(_deploy_chdb, db)
    _seed(_deploy_chdb, db)
    yield db
    _deploy_chdb.command(f"DROP DATABASE IF EXISTS {db}")


SCHEMA_TABLES = {
    m.group(1)
    for s in ddl_statements("lifemon")
    if (m := re.match(r"CREATE TABLE IF NOT EXISTS lifemon\.(\w+)", s))
}


def _run(client: Any, sql: str, db: str, span: tuple[datetime, datetime]) -> Any:
    tables = set(re.findall(r"\blifemon\.(\w+)", sql))
    assert tables and tables <= SCHEMA_TABLES, f"unknown tables {tables - SCHEMA_TABLES}"
    return client.query(re.sub(r"\blifemon\.(?=\w)", f"{db}.", expand_macros(sql, *span)))


@pytest.mark.parametrize(("pid", "panel"), QUERY_PANELS, ids=[pid for pid, _ in QUERY_PANELS])
def test_panel_sql_runs_on_the_real_schema(
    pid: str, panel: dict[str, Any], _deploy_chdb: Any, deploy_db: str
) -> None:
    for target in panel["targets"]:
        result = _run(_deploy_chdb, target["rawSql"], deploy_db, IN_RANGE)
        assert result.result_rows, f"{pid} ({panel['title']}) returned no rows over seeded tables"
        if target["format"] == FORMAT_TIME_SERIES:
            # sqlds turns a long frame into series: time first, ascending, then labels and values
            assert result.column_names[0] == "time" and "DateTime" in result.column_types[0].name, pid
            times = [row[0] for row in result.result_rows]
            assert times == sorted(times), f"{pid}: rows must be ordered by time"
        if "$__fromTime_ms AND" in target["rawSql"] and panel["title"] not in OWED_WHATEVER_THE_RANGE:
            outside = _run(_deploy_chdb, target["rawSql"], deploy_db, OUT_OF_RANGE)
            assert not outside.result_rows, f"{pid}: the time filter does not restrict the rows"


# the incidents list: one still owing a report stays whatever the range (its deadlines run on);
# test_the_incidents_panel_lists_the_latest_revision_earliest_report_first checks the range
# and the contracts: each listed whatever the range, its transfers in the range beside it
OWED_WHATEVER_THE_RANGE = {
    p["title"]
    for _, p in QUERY_PANELS
    if p["title"].endswith(("Leakage incidents (earliest report owed first)", "contracts by expiry horizon"))
}


def _panel_rows(
    title_part: str, client: Any, db: str, span: tuple[datetime, datetime] = IN_RANGE
) -> list[dict[str, Any]]:
    ((_, panel),) = [(pid, p) for pid, p in QUERY_PANELS if title_part in p["title"]]
    result = _run(client, panel["targets"][0]["rawSql"], db, span)
    return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]


def test_panel_titles_say_class_and_severity_in_the_standards_words() -> None:
    """probe_v3 M4: 级别 titled both the JR/T 0171 class and the alert's severity on one dashboard.
    JR/T 0171-2020 §4.2 (seed 001 §二.2) says C3类别; a severity is 告警级别."""
    for pid, panel in QUERY_PANELS:
        title = panel["title"]
        assert "级别" not in title.replace("告警级别", ""), (pid, title)
        if "class" in title.split(" / ", 1)[-1]:
            assert "类别" in title, (pid, title)


def test_a_row_at_a_ranges_end_is_in_the_next_range_alone(_deploy_chdb: Any, deploy_db: str) -> None:
    """probe_v3 M1: the plugin's `$__timeFilter(c)` includes the range's end, so a retention deadline
    alert, dated the bank's midnight by construction, counted in both days on Grafana and in one in
    the report (whose period includes its start, not its end). Every panel filters half-open,
    `c >= $__fromTime_ms AND c < $__toTime_ms`, as the report does."""
    for pid, panel in QUERY_PANELS:
        for target in panel["targets"]:
            sql = target["rawSql"]
            assert "$__timeFilter" not in sql and "<= $__toTime" not in sql, (pid, panel["title"])
    seen = {r["alert_id"]: r["last_seen"] for r in _panel_rows("Latest alerts", _deploy_chdb, deploy_db)}
    at = datetime.fromisoformat(str(seen["a1"])) if not isinstance(seen["a1"], datetime) else seen["a1"]
    at = at if at.tzinfo else at.replace(tzinfo=UTC)
    assert at.microsecond == 0, at  # the cut below falls on it exactly
    before = _panel_rows("Latest alerts", _deploy_chdb, deploy_db, (IN_RANGE[0], at))
    after = _panel_rows("Latest alerts", _deploy_chdb, deploy_db, (at, IN_RANGE[1]))
    assert "a1" not in {r["alert_id"] for r in before} and "a1" in {r["alert_id"] for r in after}


def test_consent_and_sdk_panels_count_what_management_asks(_deploy_chdb: Any, deploy_db: str) -> None:
    matrix = {(r["sdk"], r["field"]): r for r in _panel_rows("SDK × field", _deploy_chdb, deploy_db)}
    assert matrix[("amap_location", "contacts")]["omitted"] == 1  # the latest version of its block
    assert matrix[("amap_location", "imei")]["vague"] == 3
    assert list(matrix)[0] == ("amap_location", "contacts")  # findings first
    (coverage,) = _panel_rows("raising no off-scope alert", _deploy_chdb, deploy_db)
    assert coverage["pushes_within_scope"] == 0.75  # 2 of 8 pushes in an off-scope alert
    (latency,) = _panel_rows("Opt-out latency", _deploy_chdb, deploy_db)
    assert latency["median_s"] == 600 and latency["max_s"] == 600
    (sent,) = _panel_rows("Transfers by recipient", _deploy_chdb, deploy_db)
    assert sent == {"recipient": "acme-collections", "C3": 0, "C2": 0, "C1": 2}
    (by_rule,) = _panel_rows("by rule", _deploy_chdb, deploy_db)
    assert by_rule == {"rule": "after_withdrawal", "alerts": 1}


def test_the_marketing_rules_panel_names_each_rule_as_the_policy_titles_it(policy) -> None:
    """A new user read `four_eyes` and `off_purpose` on the bars: the rule's key, where the policy
    titles it in both languages. The panel maps each key to its titles; a rule the policy adds
    or retitles must be mapped too."""
    ((_, panel),) = [(pid, p) for pid, p in QUERY_PANELS if "by rule" in p["title"]]
    (override,) = [o for o in panel["fieldConfig"]["overrides"] if o["matcher"]["options"] == "rule"]
    (mapping,) = [p["value"][0]["options"] for p in override["properties"] if p["id"] == "mappings"]
    rules = policy.detectors["offscope_marketing"].params["rules"]
    assert {k: m["text"] for k, m in mapping.items()} == {
        k: f"{r['title_zh']} / {r['title_en']}" for k, r in rules.items()
    }


def test_the_incidents_panel_lists_the_latest_revision_earliest_report_first(
    _deploy_chdb: Any, deploy_db: str
) -> None:
    rows = _panel_rows("Leakage incidents", _deploy_chdb, deploy_db)
    assert [(r["incident_id"], r["revision"], r["customers"]) for r in rows] == [
        ("i-late", 2, "63"),
        ("i-ahead", 1, customers_text(5, 1200)),  # the named beside those a log only counted
        (
            "i-unnamed",
            1,
            customers_text(0, 142),
        ),  # the words of `lifemon incidents`, not 0 (nobody to notify)
        ("i-done", 1, "2"),  # resolved as it stands: no report owed, last
    ]
    assert rows[2]["customers"] == "142 customers reported, none named / 报告142名客户,未具名"
    assert (
        rows[1]["customers"]
        == "5 customers named + 1,200 reported, not named / 5 名客户具名 + 1,200 名客户报告未具名"
    )
    # an SDK's incident counts observations and devices, as `lifemon incidents` says them
    assert [(r["sdk_observations"], r["sdk_devices"]) for r in rows] == [(0, 0), (0, 0), (3, 2), (0, 0)]
    # i-late's report to the regulator was due long ago, and was made (lifemon incidents resolve --as
    # notified); its assessor's, which the notice does not make, is owed and passed
    assert [r["review"] for r in rows] == ["notified", "unreviewed", "unreviewed", "resolved"]
    assert [r["report_to"] for r in rows] == [
        "外部安全评估机构 / an external security assessor",
        "监管部门 / the regulator",
        "监管部门 / the regulator",
        "无待报 / none",
    ]
    assert [r["due"] for r in rows] == ["已过 / passed", "", "", ""]
    assert rows[0]["next_due"].replace(tzinfo=UTC) == _ts(-20)
    # a range that ends before they began: the incidents still owing a report are listed, their
    # deadlines run on (a probe's 6-hour view at 22:00 showed none of the day's 12); i-done owes none
    outside = _panel_rows("Leakage incidents", _deploy_chdb, deploy_db, OUT_OF_RANGE)
    assert [r["incident_id"] for r in outside] == ["i-late", "i-ahead", "i-unnamed"]


def test_the_incident_panel_reads_a_waived_notice_as_lifemon_incidents_does(_deploy_chdb: Any) -> None:
    """probe_t2 M2: `notice_waived` (the regulator told, the individuals' notice waived under seed 004
    应急管理(4)) leaves only the reports the notice does not make, as `notified` does: the panel
    showed the waived incident's notice deadline as owed, and passed. A verdict a later release adds
    (read after a rollback) owes nothing, as in `lifemon incidents` (probe_v1 F4). `regulator_notified`
    (the regulator told, the individuals' decision pending) leaves their notice owed too, until a
    later `notice_waived` or `notified`."""
    db = f"deploy_{uuid.uuid4().hex[:8]}"
    apply_ddl(_deploy_chdb, db)
    try:
        rows = [
            _incident("i-waived", 1, 3, _ts(0), _ts(-30), assessor=_ts(-20)),
            _incident("i-waived-plain", 1, 3, _ts(1), _ts(-30)),
            _incident("i-later-verdict", 1, 3, _ts(2), _ts(-30), assessor=_ts(-20)),
            # the regulator told, the individuals' decision pending: their notice owed, passed, first
            _incident("i-told", 1, 3, _ts(3), _ts(-30), assessor=_ts(-20), individuals=_ts(-25)),
            _incident("i-told-waived", 1, 3, _ts(4), _ts(-30), individuals=_ts(-25)),
        ]
        _insert(_deploy_chdb, db, "incidents", list(INCIDENT_COLUMNS), rows)
        columns = ["incident_id", "review_id", "state", "analyst", "note", "incident_revision"]
        columns += ["incident_last_seen", "at", "incident_subjects_distinct", "incident_records"]
        reviews = [
            (i, f"w{n}", verdict, "e900003", "card reissued", 1, first, _ts(12), 3, 3, ["a1"])
            for n, (i, first, verdict) in enumerate(
                (
                    ("i-waived", _ts(0), "notice_waived"),
                    ("i-waived-plain", _ts(1), "notice_waived"),
                    ("i-later-verdict", _ts(2), "referred_to_court"),
                    ("i-told", _ts(3), "regulator_notified"),
                    ("i-told-waived", _ts(4), "regulator_notified"),
                )
            )
        ]
        # the decision made later: waived (the newest review counts)
        later = (
            "i-told-waived",
            "w9",
            "notice_waived",
            "e900003",
            "file deleted",
            1,
            _ts(4),
            _ts(13),
            3,
            3,
            ["a1"],
        )
        reviews.append(later)
        _insert(_deploy_chdb, db, "incident_reviews", [*columns, "incident_alert_ids"], reviews)
        found = {r["incident_id"]: r for r in _panel_rows("Leakage incidents", _deploy_chdb, db)}
        assert {i: (r["review"], r["report_to"], r["due"]) for i, r in found.items()} == {
            "i-waived": (
                "notice_waived",
                "外部安全评估机构 / an external security assessor",
                "已过 / passed",
            ),
            "i-waived-plain": ("notice_waived", "无待报 / none", ""),
            "i-later-verdict": ("referred_to_court", "无待报 / none", ""),
            "i-told": ("regulator_notified", "受影响的个人 / the individuals affected", "已过 / passed"),
            "i-told-waived": ("notice_waived", "无待报 / none", ""),
        }
    finally:
        _deploy_chdb.command(f"DROP DATABASE IF EXISTS {db}")


def test_the_alert_trend_and_org_panels_count_each_alert_once(_deploy_chdb: Any, deploy_db: str) -> None:
    """A manager's two questions: are alerts growing, and where. a1's two revisions are one alert
    (the alerts of no org known, a bucket of their own, are checked below)."""
    trend = _panel_rows("New alerts over time", _deploy_chdb, deploy_db)
    by_detector: dict[str, int] = {}
    for r in trend:
        by_detector[r["detector"]] = by_detector.get(r["detector"], 0) + r["alerts"]
    assert by_detector["bulk_query"] == 2 and by_detector["offscope_marketing"] == 1
    (org,) = _panel_rows("Organisations with the most alerts", _deploy_chdb, deploy_db)
    assert (org["org"], org["critical"], org["high"]) == ("S0101", 1, 2)


def test_the_org_panel_counts_every_alert_of_the_range_as_the_report_does(_deploy_chdb: Any) -> None:
    """probe_v3 M6: 22 orgs' alerts and 3 of no org known. The panel shows the 19 orgs with the most,
    the named bucket of no org known, and the rest as 其他机构 / other orgs: its rows add up to
    every alert of the range, the total of `lifemon report`'s "Alerts by organisation"."""
    from streams.alert_query import NO_ORG
    from streams.report import Period, gather

    db = f"deploy_{uuid.uuid4().hex[:8]}"
    apply_ddl(_deploy_chdb, db)
    try:

        def of(org: str, uid: str, severity: str) -> tuple:
            made = _alert(uid, 1, "open", "bulk_query", severity, "e1", 1)
            at = ALERT_COLUMNS.index("actor_org")
            return (*made[:at], org, *made[at + 1 :])

        # S0000 to S0021 with 1, 2 or 3 alerts each (43), 3 alerts of no org (an SDK's, say)
        rows = [
            of(f"S{i:04d}", f"o{i}-{k}", "high" if k else "critical")
            for i in range(22)
            for k in range(1 + i % 3)
        ]
        rows += [of("", f"x{k}", "low") for k in range(3)]
        _insert(_deploy_chdb, db, "alerts", ALERT_COLUMNS, rows)
        panel = _panel_rows("Organisations with the most alerts", _deploy_chdb, db)
        assert len(panel) == 21 and panel[-1]["org"] == "其他机构 / other orgs"
        assert {r["org"]: r["other"] for r in panel}[NO_ORG] == 3
        report = gather(_deploy_chdb, db, Period(*IN_RANGE))
        assert len(report["alerts_by_org"]) == 23
        counted = [sum(r[1:]) for r in report["alerts_by_org"]]
        assert sum(r["critical"] + r["high"] + r["other"] for r in panel) == sum(counted) == 43 + 3
        assert [tuple(r.values()) for r in panel[:19]] == report["alerts_by_org"][:19]  # the same order
    finally:
        _deploy_chdb.command(f"DROP DATABASE IF EXISTS {db}")


def test_the_take_out_panel_counts_each_org_and_class_as_lifemon_report_does(
    _deploy_chdb: Any, deploy_db: str
) -> None:
    """probe_v3 H4: how much C3 and C2 data each org took out (exported, downloaded, printed)
    against what it only read. The org that took out the most C3 data first; rows counted before
    the rollups kept the action are unknown; the figures are `lifemon report`'s, row for row."""
    from streams.report import Period, take_outs

    panel = _panel_rows("Data taken out by org and class", _deploy_chdb, deploy_db)
    got = [tuple(r.values()) for r in panel]
    assert got == [
        ("S0102", "C3", 0, 0, 4, 0, 0),
        ("S0101", "C3", 2, 0, 0, 0, 5),  # the re-created topic's export, the first one's 5 unknown
        ("S0101", "C2", 0, 0, 0, 7, 0),
    ]
    report = take_outs(_deploy_chdb, deploy_db, Period(*IN_RANGE))
    assert got == [(r.org, r.jr_class, *r.taken_out, r.read, r.unknown) for r in report]


def test_the_take_out_panel_names_the_actions_the_detectors_call_take_outs_and_reads() -> None:
    """The panel's columns are the report's (streams/report/take_outs.py TAKEN_OUT), whose actions are the
    ones the detectors call a take-out (schemas.models TAKES_OUT); a read is a view or a query."""
    from schemas.models import READS, TAKES_OUT
    from streams.report import TAKEN_OUT

    ((_, panel),) = [(pid, p) for pid, p in QUERY_PANELS if "Data taken out by org" in p["title"]]
    sql = panel["targets"][0]["rawSql"]
    taken = re.findall(r"sumIf\(events, action = '(\w+)'\) AS (\w+)", sql)
    assert [a for a, _ in taken if a] == [a.value for a in TAKEN_OUT] and set(TAKEN_OUT) == TAKES_OUT
    (reads,) = re.findall(r"action IN \(([^)]*)\)\) AS read", sql)
    assert set(re.findall(r"'(\w+)'", reads)) == {a.value for a in READS}


def test_panels_read_the_latest_version_of_each_row(_deploy_chdb: Any, deploy_db: str) -> None:
    by_class = {r["class"]: r["events"] for r in _panel_rows("Events by JR/T", _deploy_chdb, deploy_db)}
    # SDK label cells are not events; C3 adds the re-created pfi.access's 2 to the first one's 5 + 4
    assert by_class == {"C3": 11, "C2": 7, "C1": 10}
    queue = _panel_rows("Alerts awaiting review", _deploy_chdb, deploy_db)
    counts = {r["detector"]: (r["critical"], r["high"], r["medium"]) for r in queue}
    assert counts == {
        "bulk_query": (1, 0, 1),  # a1 closed by its detector, unreviewed; a3 grew after its resolution
        "offscope_marketing": (0, 1, 0),  # m1 acknowledged: taken, not resolved
        "retention_overrun": (0, 0, 1),  # r1; r2 a false positive
    }  # a2's episode is still open, and resolved: off_hours has nothing waiting
    dead = {r["kind"]: r["dead_letters"] for r in _panel_rows("Dead letters", _deploy_chdb, deploy_db)}
    assert dead == {"schema": 1, "decode": 1}
    latest = _panel_rows("Latest alerts", _deploy_chdb, deploy_db)
    assert [r["alert_id"] for r in latest] == ["m1", "a3", "a1", "a2"]
    assert {
        "title_zh",
        "title_en",
        "severity",
        "actor_id",
        "records",
        "customers",
        "summary",
        "last_seen",
        "review",
    } <= set(latest[0])
    # the analyst's review beside each alert, as `lifemon alerts` says it (probe_s3 #5: a resolved
    # alert looked like one nobody had seen): a2 resolved while its episode is open, m1 taken, a3
    # resolved before its last events and so waiting again, a1 reviewed by nobody
    reviews = {r["alert_id"]: r["review"] for r in latest}
    assert reviews == {"m1": "acknowledged", "a3": "unreviewed", "a1": "unreviewed", "a2": "resolved"}
    listed = query_alerts(_deploy_chdb, deploy_db, limit=1000).rows
    assert reviews == {r["alert_id"]: r["review"] for r in listed if r["alert_id"] in reviews}


def test_the_review_queue_panel_is_lifemon_alerts_review_unresolved(
    _deploy_chdb: Any, deploy_db: str
) -> None:
    """The panel once counted `status != 'closed'`: every unauthorized_lookup alert of the demo, its
    episode closed, was missing from it, reviewed or not. It counts the alerts that `lifemon
    alerts --review unresolved` lists, by detector and severity."""
    listed = query_alerts(_deploy_chdb, deploy_db, review="unresolved", limit=1000).rows
    assert {r["alert_id"] for r in listed} == {"a1", "a3", "m1", "r1"}
    assert {r["alert_id"]: r["status"] for r in listed}["a1"] == "closed"
    expected: dict[str, dict[str, int]] = {}
    for r in listed:
        expected.setdefault(r["detector"], dict.fromkeys(["critical", "high", "medium", "low", "info"], 0))
        expected[r["detector"]][r["severity"]] += 1
    panel = {r.pop("detector"): r for r in _panel_rows("Alerts awaiting review", _deploy_chdb, deploy_db)}
    assert panel == expected


def test_the_review_queue_panel_takes_a_review_covering_later_events_as_the_cli_does(
    _deploy_chdb: Any, deploy_db: str
) -> None:
    """The panel once left out only the alerts whose resolution saw exactly their last event: a
    review that covers the alert to a later time (written after a later revision that ClickHouse
    has since merged away, as FINAL reads the newest row kept) closes it out for `lifemon alerts
    --review unresolved`, which takes `covered_until >= last_seen`, but not for the panel."""
    (r1,) = [r for r in query_alerts(_deploy_chdb, deploy_db, limit=1000).rows if r["alert_id"] == "r1"]
    later = r1["last_seen"].replace(tzinfo=UTC) + timedelta(hours=1)
    _insert(
        _deploy_chdb,
        deploy_db,
        "alert_reviews",
        ["alert_id", "review_id", "state", "analyst", "note", "alert_revision", "alert_last_seen", "at"],
        [("r1", "v9", "resolved", "e900001", "", 2, later, later)],
    )
    listed = query_alerts(_deploy_chdb, deploy_db, review="unresolved", limit=1000).rows
    assert {r["alert_id"] for r in listed} == {"a1", "a3", "m1"}
    panel = {r.pop("detector"): r for r in _panel_rows("Alerts awaiting review", _deploy_chdb, deploy_db)}
    assert "retention_overrun" not in panel  # r1 was its one alert waiting
    expected: dict[str, dict[str, int]] = {}
    for r in listed:
        expected.setdefault(r["detector"], dict.fromkeys(["critical", "high", "medium", "low", "info"], 0))
        expected[r["detector"]][r["severity"]] += 1
    assert panel == expected


def test_the_alert_handling_panel_times_the_reviews_as_lifemon_report_does(_deploy_chdb: Any) -> None:
    """probe_v3 H2: how many alerts the SOC acknowledged and resolved, and how fast, from when
    lifemon first stored each (`raised_at`, carried by the sink). The panel's figures are
    `alert_query.handling`'s, which `lifemon report` and `lifemon alerts --review` print."""
    from test_alert_query import alert

    from streams.alert_query import handling
    from streams.reviews import record_review
    from streams.sinks.clickhouse import AlertSink, alert_row

    db = f"deploy_{uuid.uuid4().hex[:8]}"
    apply_ddl(_deploy_chdb, db)
    try:
        raised = BASE - timedelta(minutes=30)
        clock = [raised]
        sink = AlertSink(_deploy_chdb, f"{db}.alerts", "alerts", clock=lambda: clock[0].timestamp())
        at_base = {"last_seen": int(BASE.timestamp() * 1000), "first_seen": int(BASE.timestamp() * 1000)}

        def made(uid: str, severity: str, revision: int = 1) -> Any:
            return alert(uid, "bulk_query", severity, "e1", 0, revision=revision).model_copy(update=at_base)

        sink.write([made("c1", "critical"), made("h1", "high"), made("m1", "medium")])
        clock[0] += timedelta(minutes=5)
        sink.write([made("h2", "high")])
        # stored before raised_at was kept, at its second revision: when it was raised is lost
        _insert(_deploy_chdb, db, "alerts", list(ALERT_COLUMNS), [alert_row(made("h3", "high", 2))])
        for alert_id, state, after in (
            ("c1", "acknowledged", timedelta(minutes=10)),
            ("c1", "resolved", timedelta(hours=1)),
            ("h1", "acknowledged", timedelta(minutes=2)),
            ("h2", "false_positive", timedelta(minutes=25)),  # 20 minutes after it was raised
            ("h3", "acknowledged", timedelta(minutes=3)),
        ):
            record_review(_deploy_chdb, db, alert_id, state, "e900001", "a note", at=raised + after)
        panel = _panel_rows("Alert handling", _deploy_chdb, db)
        assert [r["severity"] for r in panel] == ["critical", "high", "medium", "all / 合计"]
        total = panel[-1]
        assert (total["alerts"], total["acknowledged"], total["resolved"]) == (5, 2, 1)
        assert (total["false_positive"], total["unreviewed"]) == (1, 1)
        # acknowledged after 10 min, 2 min and 20 min (h3 not timed); resolved after 1 h and 20 min
        assert (total["acknowledge_timed"], total["acknowledge_median_s"], total["acknowledge_p90_s"]) == (
            3,
            600,
            1080,
        )
        assert (total["resolve_timed"], total["resolve_median_s"], total["resolve_p90_s"]) == (2, 2400, 3360)
        high = panel[1]
        assert (high["acknowledge_timed"], high["acknowledge_median_s"], high["acknowledge_p90_s"]) == (
            2,
            660,
            1092,
        )
        # the report's and the CLI's figures, row for row
        span = {"since": IN_RANGE[0], "until": IN_RANGE[1]}
        assert [tuple(r.values())[1:] for r in panel] == [
            tuple(h)[1:] for h in handling(_deploy_chdb, db, **span)
        ]
        assert _panel_rows("Alert handling", _deploy_chdb, db, OUT_OF_RANGE) == []
    finally:
        _deploy_chdb.command(f"DROP DATABASE IF EXISTS {db}")


def test_alert_panels_count_records_and_customers_as_lifemon_alerts_does(_deploy_chdb: Any) -> None:
    """subject_count is not one measure: bulk_query's older alerts hold records there, a volume alert 0, an
    unauthorized lookup its customers and unnamed rows. The panels show records and customers as
    `lifemon alerts` and the report do (streams/alert_query.py records_and_customers)."""
    db = f"deploy_{uuid.uuid4().hex[:8]}"
    apply_ddl(_deploy_chdb, db)
    try:
        rows = []
        for alert_id, detector, actor, subject_count, counts in [
            ("b1", "bulk_query", "e1", 1004, {"records": 1004, "customers": 830}),
            ("v1", "transfer_policy", "tp1", 0, {"records": 5138, "transfers": 3}),
            ("u1", "unauthorized_lookup", "e2", 50, {"customers_unnamed": 50}),
            ("u2", "unauthorized_lookup", "e3", 3, {}),
            ("d1", "deleted_record_use", "proc1", 1, {}),  # a processor used a deleted record
        ]:
            row = list(_alert(alert_id, 1, "open", detector, "high", actor, 1))
            row[ALERT_COLUMNS.index("subject_count")] = subject_count
            row[ALERT_COLUMNS.index("counts")] = counts
            rows.append(tuple(row))
        _insert(_deploy_chdb, db, "alerts", ALERT_COLUMNS, rows)
        _insert(_deploy_chdb, db, "recipient_contracts", ["recipient_id", "contract_id"], [("proc1", "CT-1")])
        expected = {
            r[ALERT_COLUMNS.index("alert_id")]: records_and_customers(
                r[ALERT_COLUMNS.index("subject_count")], r[ALERT_COLUMNS.index("counts")]
            )
            for r in rows
        }
        assert expected == {
            "b1": (1004, 830),
            "v1": (5138, None),
            "u1": (None, None),
            "u2": (None, 3),
            "d1": (None, 1),
        }
        latest = {
            r["alert_id"]: (r["records"], r["customers"])
            for r in _panel_rows("Latest alerts", _deploy_chdb, db)
        }
        assert latest == expected
        actors = {r["actor_id"]: r for r in _panel_rows("Top actors", _deploy_chdb, db)}
        assert (actors["e1"]["max_records"], actors["e1"]["max_customers"]) == (1004, 830)
        # a recipient is no employee: the panel says which kind each actor is
        # a recipient is no employee: the panel says which kind each actor is, a processor whose
        # alert is not transfer_policy's (a deleted record it used) by its contract
        assert (actors["e1"]["kind"], actors["tp1"]["kind"], actors["proc1"]["kind"]) == (
            "员工或系统 / staff or system",
            "接收方 / recipient",
            "接收方 / recipient",
        )
        assert (actors["tp1"]["max_records"], actors["tp1"]["max_customers"]) == (5138, None)
    finally:
        _deploy_chdb.command(f"DROP DATABASE IF EXISTS {db}")


def test_top_actors_leave_out_the_alerts_reviewed_a_false_positive(_deploy_chdb: Any) -> None:
    """A false positive is nobody's misdeed: an employee's alert the analyst cleared is not counted
    against them, unless events came after the review; `Latest alerts` still lists it, as such."""
    db = f"deploy_{uuid.uuid4().hex[:8]}"
    apply_ddl(_deploy_chdb, db)
    try:
        alerts = [
            _alert("f1", 1, "closed", "bulk_query", "high", "e1", 1),  # cleared
            _alert("f2", 1, "closed", "bulk_query", "high", "e1", 2),
            _alert("f3", 1, "open", "bulk_query", "high", "e2", 3),  # cleared before its last events
            _alert("f4", 1, "open", "bulk_query", "medium", "e3", 4),  # cleared: e3 has none left
        ]
        _insert(_deploy_chdb, db, "alerts", ALERT_COLUMNS, alerts)
        columns = REVIEW_COLUMNS
        _insert(
            _deploy_chdb,
            db,
            "alert_reviews",
            columns,
            [
                ("f1", "v1", "false_positive", "e900001", "", 1, _ts(1), _ts(10)),
                ("f3", "v2", "false_positive", "e900001", "", 1, _ts(2), _ts(10)),
                ("f4", "v3", "false_positive", "e900001", "", 1, _ts(4), _ts(10)),
            ],
        )
        actors = {r["actor_id"]: r for r in _panel_rows("Top actors", _deploy_chdb, db)}
        assert {a: (r["alerts"], r["high_or_critical"]) for a, r in actors.items()} == {
            "e1": (1, 1),
            "e2": (1, 1),
        }
        latest = {r["alert_id"]: r["review"] for r in _panel_rows("Latest alerts", _deploy_chdb, db)}
        assert latest == {
            "f1": "false_positive",
            "f2": "unreviewed",
            "f3": "unreviewed",
            "f4": "false_positive",
        }
    finally:
        _deploy_chdb.command(f"DROP DATABASE IF EXISTS {db}")


def test_the_retention_backlog_counts_a_batchs_alert_as_the_records_it_keeps(_deploy_chdb: Any) -> None:
    """A purge job's backlog is one alert (retention_overrun `Batch`, probe_v2 F6): the panel and
    `lifemon report` count the records it still keeps, not one."""
    db = f"deploy_{uuid.uuid4().hex[:8]}"
    apply_ddl(_deploy_chdb, db)
    try:
        day = timedelta(days=1)
        rows = [
            _overrun("r1", 1, "open", BASE - 40 * day),
            _overrun("b1", 36, "updated", BASE - 100 * day, {"records": 60, "kept": 25}),
            _overrun("b2", 61, "closed", BASE - 100 * day, {"records": 60, "kept": 0}),
        ]
        _insert(_deploy_chdb, db, "alerts", ALERT_COLUMNS, rows)
        (backlog,) = _panel_rows("Retention backlog", _deploy_chdb, db)
        assert backlog == {"system_class": "crm · C3", "< 30 d": 0, "30-90 d": 1, "90 d-1 y": 25, ">= 1 y": 0}
        seen = ("pfi.lifecycle", 0, 0, _ts(0), "lifecycle", "C2", "S0101", "ok", "", 1, 1, "A")
        _insert(_deploy_chdb, db, "event_rollups", ROLLUP_COLUMNS, [seen])  # as of BASE
        figures = lifecycle(_deploy_chdb, db)
        assert figures is not None and figures["backlog"] == 26
    finally:
        _deploy_chdb.command(f"DROP DATABASE IF EXISTS {db}")


def test_lifecycle_panels_read_the_newest_state(_deploy_chdb: Any, deploy_db: str) -> None:
    """The range ends a day after BASE. tests/test_lifecycle_panels.py checks the same panels against a
    generated bank day through the whole pipeline."""
    (backlog,) = _panel_rows("Retention backlog", _deploy_chdb, deploy_db)
    assert backlog == {"system_class": "crm · C3", "< 30 d": 0, "30-90 d": 1, "90 d-1 y": 0, ">= 1 y": 0}
    # r1 overdue since 40 days before BASE: in the backlog at the range's end, not new in the range
    (overdue,) = _panel_rows("Overdue records", _deploy_chdb, deploy_db)
    assert overdue == {"backlog_at_range_end": 1, "overdue_since_range_start": 0, "oldest_days_overdue": 41}
    (deletions,) = _panel_rows("Deletion requests", _deploy_chdb, deploy_db)
    assert deletions == {
        "open_requests": 1,
        "open_past_15_days": 1,
        "executed": 1,
        "executed_late": 0,
        "median_days_to_execute": 2.5,
        "max_days_to_execute": 2.5,
        "refused": 2,
        "refused_late": 1,
    }
    (contract,) = _panel_rows("contracts", _deploy_chdb, deploy_db)  # p0 left the newest policy
    assert (contract["recipient"], contract["days_left"], contract["horizon"]) == ("p1", 39, "30-90 d")
    # the report's query over Grafana's range, so the two never drift apart
    ((_, panel),) = [(pid, p) for pid, p in QUERY_PANELS if "provided to others" in p["title"]]
    assert panel["targets"][0]["rawSql"] == PROVIDED_SQL.replace("{bank}", BANK_SQL).replace(
        "{db}", "lifemon"
    ).replace("{where}", " AND ts >= $__fromTime_ms AND ts < $__toTime_ms")
    # the counts added up are the report's to name, not a figure to read: the panel hides them
    assert panel["transformations"] == [
        {"id": "organize", "options": {"excludeByName": {"unnamed_sum": True}}}
    ]
    (provided,) = _panel_rows("provided to others", _deploy_chdb, deploy_db)  # the warehouse is the bank's
    assert provided == {
        "recipient_id": "p1",
        "recipient": "外包 / outsourcer",
        "direction": "processor",
        "legal_basis": "contract",
        "jr_class": "C2",
        "customers": 4,
        "unnamed_at_least": 0,
        "unnamed_at_most": 0,
        "unnamed_transfers": 0,
        "records": 5,
        "transfers": 2,
        "expired": False,
        "unnamed_sum": 0,
    }
