"""Runtime configuration: an optional YAML file, then environment overrides. Secrets come only from
the environment (streams/credentials.py); a config file that holds one, as a client setting or as a
password inside a DSN or URL, is rejected with the variable to use instead."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)

from policy import PolicyError, read_yaml, validate_section
from policy import _line_of as line_of  # the line of a key, for errors that name it
from streams.credentials import KAFKA_SECRET_WORDS, Secrets, env_name, kafka_setting_fix, url_password

ENV_OVERRIDES = {
    "LIFEMON_KAFKA_BOOTSTRAP": ("kafka", "bootstrap"),
    "LIFEMON_KAFKA_GROUP": ("kafka", "group_id"),
    "LIFEMON_KAFKA_REACH_TIMEOUT_S": ("kafka", "reach_timeout_s"),
    "LIFEMON_CLICKHOUSE_DSN": ("clickhouse", "dsn"),
    "LIFEMON_CLICKHOUSE_DATABASE": ("clickhouse", "database"),
    "LIFEMON_DATA_DIR": ("data_dir",),
    "LIFEMON_POLICY_DIR": ("policy_dir",),
    "LIFEMON_SCHEMA_REGISTRY_URL": ("schema_registry_url",),
    "LIFEMON_METRICS_PORT": ("metrics", "port"),
    "LIFEMON_METRICS_HOST": ("metrics", "host"),
    "LIFEMON_LOG_LEVEL": ("log", "level"),
    "LIFEMON_LOG_FORMAT": ("log", "format"),
}
# librdkafka's SASL mechanisms that log in with a user name and password (its default, GSSAPI, is Kerberos)
PASSWORD_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
# a raw log's local time, unless its source says otherwise: the bank's (China Standard Time), as
# the policy's own calendar is, since a server writes its host's zone
BANK_ZONE = "Asia/Shanghai"


def _zone(name: str) -> str:
    """An IANA zone this machine knows: a mistyped one stopped `lifemon run` with a traceback."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"'{name}' is no IANA time zone; write e.g. {BANK_ZONE}") from None
    return name


Zone = Annotated[str, AfterValidator(_zone)]
# every command that reads the policy takes its folder from the same places, in this order
POLICY_HELP = (
    "policy catalog folder (default: LIFEMON_POLICY_DIR, else policy_dir in the --config file, "
    "else the built-in policy/)"
)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# librdkafka settings lifemon sets itself, with why: one set in kafka.client would override them
_BOOTSTRAP = "set kafka.bootstrap (or --bootstrap, LIFEMON_KAFKA_BOOTSTRAP) instead"
_ACKS = "lifemon's producers wait for every in-sync replica (acks=all): no alert is lost"
OWN_CLIENT_SETTINGS = {  # librdkafka's aliases too: each names the same setting
    "bootstrap.servers": _BOOTSTRAP,
    "metadata.broker.list": _BOOTSTRAP,
    "group.id": "set kafka.group_id instead",
    "enable.auto.commit": "lifemon commits offsets itself, only once every sink has acknowledged",
    "enable.idempotence": "lifemon's producers are idempotent: a retry writes no duplicate",
    "acks": _ACKS,
    "request.required.acks": _ACKS,
    "transactional.id": "lifemon does not write in transactions",
    "logger": "lifemon routes librdkafka's lines through its own log format",
}


# the group's session timeout, unless kafka.client sets session.timeout.ms: a member killed is replaced
# within it, and Tansu holds a new group's first JoinGroup for half of it (a start). Its bounds are a
# Kafka broker's defaults (group.min/max.session.timeout.ms): a value outside them fails every join.
SESSION_TIMEOUT_MS, SESSION_TIMEOUT_BOUNDS_MS = 6000, (6000, 1_800_000)


# one broker of kafka.bootstrap, as librdkafka takes it: an optional protocol, a host name, an IPv4
# or a bracketed IPv6 address, and an optional port (librdkafka's default, 9092, without one)
_BROKER = re.compile(r"([A-Za-z_]+://)?(\[[0-9A-Fa-f:.]+\]|[^\s:/\[\],]+)(:[0-9]{1,5})?")


class KafkaConfig(Strict):
    bootstrap: str | None = Field(
        default=None, description="host:port list; empty starts the embedded Tansu broker"
    )
    group_id: str = Field(default="lifemon", min_length=1)  # librdkafka hangs on an empty one
    client: dict[str, Any] = Field(default_factory=dict, description="extra librdkafka settings (no secrets)")
    partitions: int = Field(default=3, ge=1, description="partitions for topics lifemon creates")
    replication_factor: int = Field(
        default=1, ge=1, description="for topics lifemon creates; 3 in production"
    )
    # librdkafka's consume() takes at most 10**6 records a call (a probe's 2 000 000 passed, then
    # stopped `lifemon run` with a ValueError at its first poll)
    batch_size: int = Field(default=5000, ge=1, le=1_000_000)
    poll_timeout_s: float = Field(default=0.5, gt=0)
    reach_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="how long a command waits for the broker's first answer before it says the broker is unreachable",
    )

    @field_validator("bootstrap")
    @classmethod
    def _hosts_and_ports(cls, bootstrap: str | None) -> str | None:
        """Each broker as host:port. A new user copied `127.0.0.1:41927:` out of `lifemon run`'s
        "started embedded Tansu broker at 127.0.0.1:41927: it lives…" and was told "host name not
        found" after 10 s."""
        for broker in bootstrap.split(",") if bootstrap else ():  # empty: the embedded broker
            if broker.strip() and not _BROKER.fullmatch(broker.strip()):  # a trailing comma: librdkafka's too
                raise ValueError(
                    f"holds {broker.strip()!r}, not a broker's host:port; give each broker as its host name "
                    "or address, a colon and its port (127.0.0.1:41927, kafka:9092), several comma-separated"
                )
        return bootstrap

    @field_validator("client")
    @classmethod
    def _not_lifemons_own(cls, client: dict[str, Any]) -> dict[str, Any]:
        for key, why in OWN_CLIENT_SETTINGS.items():
            if key in client:
                raise ValueError(f"{key} is lifemon's own setting ({why}); remove it from kafka.client")
        low, high = SESSION_TIMEOUT_BOUNDS_MS
        session = client.get("session.timeout.ms", SESSION_TIMEOUT_MS)
        if not isinstance(session, int) or not low <= session <= high:
            raise ValueError(
                f"session.timeout.ms {session!r} is not a whole number of milliseconds from {low} to {high} "
                "(a Kafka broker refuses a group member's session outside them); give one within them, "
                f"or remove it for lifemon's default, {SESSION_TIMEOUT_MS}"
            )
        # librdkafka refuses a consumer whose poll interval is below its session timeout (a probe's
        # max.poll.interval.ms: 10000 alone was a traceback: its reference consumer had 45 s)
        poll = client.get("max.poll.interval.ms")
        if poll is not None and (not isinstance(poll, int) or poll < session):
            whose = "" if "session.timeout.ms" in client else ", lifemon's default"
            raise ValueError(
                f"max.poll.interval.ms {poll!r} is below session.timeout.ms ({session}{whose}), and "
                "librdkafka refuses a consumer so set; give max.poll.interval.ms at least the session timeout"
            )
        return client

    @property
    def session_timeout_s(self) -> float:
        """The consumer group's session timeout (kafka.client's session.timeout.ms, else 6 s)."""
        return float(self.client.get("session.timeout.ms", SESSION_TIMEOUT_MS)) / 1000


class Topics(Strict):
    access: str = "pfi.access"
    transfer: str = "pfi.transfer"
    sdk: str = "pfi.sdk"
    marketing: str = "pfi.marketing"
    lifecycle: str = "pfi.lifecycle"
    entitlements: str = "pfi.entitlements"
    consents: str = "pfi.consents"
    customers: str = "pfi.customers"
    alerts: str = "pfi.alerts"
    incidents: str = "pfi.incidents"
    dlq: str = "pfi.dlq"


class PgauditSource(Strict):
    """PostgreSQL's log with pgaudit (docs/sources.md): stderr lines or csvlog records."""

    enabled: bool = False
    topic: str = "pfi.raw.pgaudit"
    format: Literal["stderr", "csvlog"] = "stderr"
    log_line_prefix: str = Field(
        default="%m [%p] %q%u@%d ", description="the server's log_line_prefix (stderr format)"
    )
    log_rows: bool = Field(default=True, description="the server has pgaudit.log_rows on")
    timezone: Zone = Field(default=BANK_ZONE, description="IANA zone for zone abbreviations in log times")

    @field_validator("log_line_prefix")
    @classmethod
    def _prefix(cls, prefix: str) -> str:
        from streams.sources.pg_log import prefix_pattern

        try:
            prefix_pattern(prefix)
        except re.error as e:
            raise ValueError(
                f"'{prefix}' cannot be read as a log_line_prefix ({e}); copy the server's own"
            ) from None
        return prefix


class MariadbSource(Strict):
    """MariaDB / MySQL server_audit lines."""

    enabled: bool = False
    topic: str = "pfi.raw.mariadb"
    timezone: Zone = Field(default=BANK_ZONE, description="IANA zone of the server's local time")
    query_log_limit: int = Field(
        default=1024,
        gt=0,
        description="the server's server_audit_query_log_limit: a statement logged that long was cut",
    )


class SftpSource(Strict):
    """OpenSSH internal-sftp lines through syslog."""

    enabled: bool = False
    topic: str = "pfi.raw.sftp"
    timezone: Zone = Field(default=BANK_ZONE, description="IANA zone of syslog times without an offset")


class HarSource(Strict):
    """HAR captures of an app's traffic, one document or entry per record (docs/har.md)."""

    enabled: bool = False
    topic: str = "pfi.raw.har"
    app_id: str = Field(default="app", description="the app the captures are of")
    app_version: str = Field(default="0", description="its version (the SDK declarations may depend on it)")
    consented_before_capture: bool = Field(
        default=False,
        description="the user had agreed to the privacy policy before any capture began; otherwise "
        "requests before the capture's own agreement call are collection before consent",
    )
    signatures: Path | None = Field(default=None, description="an Exodus Privacy tracker signature file")


class RawSources(Strict):
    """Raw-log topics decoded into access, transfer and SDK events (docs/sources.md, docs/har.md)."""

    pgaudit: PgauditSource = Field(default_factory=PgauditSource)
    mariadb: MariadbSource = Field(default_factory=MariadbSource)
    sftp: SftpSource = Field(default_factory=SftpSource)
    har: HarSource = Field(default_factory=HarSource)

    def streams(self) -> dict[str, str]:
        """Enabled raw topic -> the canonical stream it feeds."""
        found = {"pgaudit": "access", "mariadb": "access", "sftp": "transfer", "har": "sdk"}
        return {getattr(self, n).topic: s for n, s in found.items() if getattr(self, n).enabled}


class ClickHouseConfig(Strict):
    dsn: str | None = Field(
        default=None, description="chdb:///path or http(s)://user@host:8123; empty: chDB in data_dir"
    )
    database: str = Field(default="lifemon", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")

    @field_validator("dsn")
    @classmethod
    def _a_dsn(cls, dsn: str | None) -> str | None:
        # a bare path or another scheme was tried as http on port 8123 and said to be unreachable
        if dsn and not dsn.startswith(("chdb://", "http://", "https://")):
            raise ValueError(
                f"{dsn} is no ClickHouse DSN; write chdb:///absolute/path (or chdb://relative/path) for "
                "the embedded engine, or http(s)://user@host:8123 for a server"
            )
        return dsn


class EventTimeConfig(Strict):
    """How far an event's `ts` may stray from its record's Kafka timestamp before it is
    dead-lettered (a clock years ahead must not move a watermark and close every window)."""

    max_ahead_s: int = Field(default=300, ge=0)
    file_max_ahead_s: int = Field(
        default=31 * 86_400,
        ge=0,
        description="for a record without a Kafka timestamp (a file), the least allowance ahead of its "
        "batch's median: a case file that jumps weeks ahead to show a missed 15-day deletion deadline "
        "must not lose that record, while a clock years ahead is still refused",
    )
    max_ahead_of_clock_s: int = Field(
        default=3600,
        ge=0,
        description="ts further ahead of this machine's own clock is a dead letter, however its record "
        "is stamped (a shipper that sets CreateTime to the event time passed a record dated 2099); "
        "the machine's skew from the producers' clocks, and a replay of files dated ahead, fit in it",
    )
    max_behind_s: int | None = Field(
        default=None,
        ge=0,
        description="late shipping beyond this is a dead letter; unset: late is not poison (a "
        "2012 collection record shipped today is history retention_overrun needs)",
    )


class Receiver(Strict):
    """Where `lifemon notify` delivers incidents (docs/incidents.md#receivers)."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    kind: Literal["alertmanager", "webhook", "pagerduty"]
    url: str = Field(
        description="alertmanager: its base URL (http://host:9093); webhook: the URL to POST to; "
        "pagerduty: the Events API v2 enqueue URL"
    )
    routing_key_env: str | None = Field(
        default=None, description="pagerduty: the environment variable holding the integration key"
    )
    timeout_s: float = Field(default=10.0, gt=0)

    @field_validator("url")
    @classmethod
    def _no_credentials(cls, url: str) -> str:
        parts = _http_url(url)
        if parts.password or parts.username:
            raise ValueError("a receiver URL may not hold credentials; put secrets in the environment")
        return url


def _http_url(url: str, example: str = "") -> Any:
    """`url`'s parts, if it is an http(s) URL with a host; else a ValueError saying so."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"'{url}' is not an http(s) URL" + (f"; write e.g. {example}" if example else ""))
    return parts


class NotifyConfig(Strict):
    group_id: str = Field(
        min_length=1,
        default="lifemon-notify",
        description="the notifier's consumer group on topics.incidents",
    )
    receivers: list[Receiver] = Field(default_factory=list)
    backoff_initial_s: float = Field(default=0.5, gt=0)
    backoff_max_s: float = Field(default=60.0, gt=0)
    resend_s: float = Field(
        default=300.0,
        ge=0,
        description="how often the incidents still owing a report are posted to Alertmanager again "
        "(it keeps alerts in memory: a restart of it forgets them); 0: never. Needs a ClickHouse server",
    )
    resend_days: int = Field(
        default=30, gt=0, description="how far back, by first event, incidents are posted again"
    )


class MetricsConfig(Strict):
    """`lifemon run`'s HTTP endpoints for operators: /metrics, /healthz, /readyz (docs/operations.md)."""

    port: int | None = Field(
        default=None, ge=0, le=65535, description="empty: no endpoint; 0: any free port (logged)"
    )
    host: str = Field(default="127.0.0.1", description="0.0.0.0 in a container Prometheus scrapes")
    stall_after_s: float = Field(
        default=120.0, gt=0, description="/healthz fails once the main loop has not moved this long"
    )


class LogConfig(Strict):
    """Structured logs on stderr (docs/operations.md#logging)."""

    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "logfmt", "json", "console"] = Field(
        default="auto", description="auto: console on a terminal, logfmt elsewhere"
    )


class Config(Strict):
    runtime: Literal["native", "faust"] = Field(
        default="native", description="consumer loop: confluent-kafka, or a Faust app (docs/runtimes.md)"
    )
    kafka: KafkaConfig = Field(default_factory=KafkaConfig)
    topics: Topics = Field(default_factory=Topics)
    raw_sources: RawSources = Field(default_factory=RawSources)
    clickhouse: ClickHouseConfig = Field(default_factory=ClickHouseConfig)
    data_dir: Path = Path(".lifemon")
    policy_dir: Path | None = None
    allowed_lateness_s: int = Field(default=60, ge=0)
    event_time: EventTimeConfig = Field(default_factory=EventTimeConfig)
    notify: NotifyConfig = Field(default_factory=NotifyConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    log: LogConfig = Field(default_factory=LogConfig)
    reference_history_s: int = Field(
        default=90 * 86_400,
        gt=0,
        description="reference versions superseded this long before the newest event are forgotten",
    )
    checkpoint_interval_s: float = Field(default=2.0, gt=0)
    checkpoint_dirty_keys: int = Field(
        default=100_000,
        gt=0,
        description="state keys changed since the last checkpoint that bring the next one forward",
    )
    max_record_bytes: int = Field(default=256 * 1024, gt=0)
    schema_registry_url: str | None = None
    instance: str = Field(default_factory=lambda: os.environ.get("HOSTNAME", "lifemon"))
    # read from the environment when the config is made; private, so no dump or validation sees it
    _secrets: Secrets = PrivateAttr(default_factory=Secrets)
    _file: Path | None = PrivateAttr(default=None)  # the --config file, for errors found after loading

    @field_validator("schema_registry_url")
    @classmethod
    def _registry_url(cls, url: str | None) -> str | None:
        """A URL the registry client can take: a mistyped one (`notaurl`) passed, and the first
        Avro record of a schema not cached yet stopped the monitor (a probe's crash loop)."""
        if url is not None:
            _http_url(url, "http://schema-registry:8081")
        return url

    @model_validator(mode="after")
    def _one_topic_each(self) -> Config:
        """Each stream, output and raw source has a topic of its own: two on one would decode one's
        records as the other's (lifemon would read its own dead letters back as accesses)."""
        named = [(f"topics.{name}", topic) for name, topic in self.topics.model_dump().items()]
        for source in ("pgaudit", "mariadb", "sftp", "har"):
            if getattr(self.raw_sources, source).enabled:
                named.append((f"raw_sources.{source}.topic", getattr(self.raw_sources, source).topic))
        seen: dict[str, str] = {}
        for key, topic in named:
            if not topic.strip():
                raise ValueError(f"{key} is empty; name its topic")
            if topic in seen:
                raise ValueError(f"{key} is {topic}, as {seen[topic]} is; give each its own topic")
            seen[topic] = key
        return self

    @property
    def secrets(self) -> Secrets:
        return self._secrets

    def kafka_settings(self) -> dict[str, Any]:
        """kafka.client plus the Kafka secrets from the environment: what librdkafka connects with."""
        settings = {**self.kafka.client, **self._secrets.kafka_settings()}
        self._check_sasl_login(settings)
        return settings

    def consumer_settings(self) -> dict[str, Any]:
        """`kafka_settings` with the group's session timeout, for every consumer lifemon makes:
        librdkafka's own (45 s) would refuse a max.poll.interval.ms the group's takes."""
        return {"session.timeout.ms": int(self.kafka.session_timeout_s * 1000), **self.kafka_settings()}

    def _check_sasl_login(self, settings: dict[str, Any]) -> None:
        """A SASL login short of its user name or password, said with what to set. librdkafka
        refuses it only when a client is made, in an exception; checked here, not when the config
        loads, because commands that never reach Kafka (alerts, report) need no Kafka password."""
        protocol = str(settings.get("security.protocol", "")).upper()
        mechanism = str(settings.get("sasl.mechanism", settings.get("sasl.mechanisms", "GSSAPI"))).upper()
        if not protocol.startswith("SASL_") or mechanism not in PASSWORD_MECHANISMS:
            return
        where = self._file or Path("<environment>")
        fixes = {
            "user name": f"set kafka.client.sasl.username in {where}",
            "password": f"set {env_name('kafka_sasl_password')} (secrets come only from the environment)",
        }
        missing = [
            what
            for what, setting in (("user name", "sasl.username"), ("password", "sasl.password"))
            if not settings.get(setting)
        ]
        if missing:
            key = ("kafka", "client", "security.protocol")
            raise PolicyError(
                where,
                ".".join(key),
                f"{protocol} with sasl.mechanism {mechanism} logs in with a user name and password, "
                f"and no {' or '.join(missing)} is set",
                " and ".join(fixes[what] for what in missing),
                line_of(yaml.compose(where.read_text(), Loader=yaml.SafeLoader), key) if self._file else None,
            )

    def clickhouse_dsn(self) -> str:
        return self.clickhouse.dsn or f"chdb://{(self.data_dir / 'chdb').resolve()}"

    def topic_of(self, stream: str) -> str:
        return getattr(self.topics, stream)

    def stream_of(self, topic: str) -> str:
        """The stream a topic carries; a raw-log topic carries the stream its parser produces."""
        found = next((s for s, t in self.topics.model_dump().items() if t == topic), None)
        return found or self.raw_sources.streams()[topic]


# Config keys holding a URL whose password is a secret -> the variable that carries it instead.
URL_SECRETS = {
    ("clickhouse", "dsn"): ("clickhouse_password", "keep the user (https://lifemon@host:8443)"),
    ("schema_registry_url",): ("schema_registry_user_info", "remove the user too"),
}


def _reject_url_password(
    where: Path, key: str, keys: tuple[str, ...], url: Any, line: int | None = None
) -> None:
    if keys in URL_SECRETS and isinstance(url, str) and url_password(url) is not None:
        field, advice = URL_SECRETS[keys]
        raise PolicyError(
            where,
            key,
            "a password inside a URL is a secret, and secrets are read only from the environment",
            f"remove the password from the URL ({advice}) and set {env_name(field)}",
            line,
        )


def _reject_secrets(path: Path, data: dict[str, Any], text: str) -> None:
    """A secret in the file stops the start, named by file and key with the variable to set
    instead; the value itself is never shown."""
    kafka = data.get("kafka")
    client = kafka.get("client") if isinstance(kafka, dict) else None
    for key in client if isinstance(client, dict) else ():  # other shapes: validation says what is wrong
        if any(s in str(key) for s in KAFKA_SECRET_WORDS):
            raise PolicyError(
                path,
                f"kafka.client.{key}",
                "secrets are not read from files",
                kafka_setting_fix(str(key)),
                line_of(yaml.compose(text, Loader=yaml.SafeLoader), ("kafka", "client", str(key))),
            )
    for keys in URL_SECRETS:
        node: Any = data
        for k in keys:
            node = node.get(k) if isinstance(node, dict) else None
        if isinstance(node, str):
            line = line_of(yaml.compose(text, Loader=yaml.SafeLoader), keys)
            _reject_url_password(path, ".".join(keys), keys, node, line)


def _put(data: dict[str, Any], keys: Sequence[str], value: Any) -> None:
    node = data
    for k in keys[:-1]:
        node = node.setdefault(k, {})
        if not isinstance(node, dict):
            return  # `kafka: 5` in the file: validation names that key, an override cannot fix it
    node[keys[-1]] = value


def load_config(path: Path | str | None = None, **overrides: Any) -> Config:
    data: dict[str, Any] = {}
    text = ""
    file = Path(path) if path else None
    if file is not None:
        if not file.is_file():
            raise PolicyError(
                file,
                "",
                "a folder, not a config file" if file.is_dir() else "config file not found",
                "give --config the YAML file's path (docs/configuration.md)"
                if file.is_dir()
                else "check the --config path",
            )
        data, text = read_yaml(file)
        if data == {}:  # read_yaml's for no document, and for `false` or `[]`, too
            data = yaml.safe_load(text)
        if data is None:
            # a config management step that rendered nothing (a wrong ConfigMap key) started a
            # monitor on an embedded in-memory broker, healthy and watching nothing (a probe's)
            raise PolicyError(
                file,
                "",
                "the file is empty or only comments, so it sets nothing",
                "write the settings into it (docs/configuration.md), or leave out --config to run on "
                "the built-in defaults (an embedded in-memory broker when kafka.bootstrap is unset)",
            )
        if not isinstance(data, dict):
            raise PolicyError(
                file, "", "the config must be a mapping of keys", "start from docs/configuration.md"
            )
        _reject_secrets(file, data, text)
    given: dict[str, str] = {}  # key -> where it was set, when not in the file
    for env, keys in ENV_OVERRIDES.items():
        if os.environ.get(env):
            _reject_url_password(Path("<environment>"), env, keys, os.environ[env])
            _put(data, keys, os.environ[env])
            given[".".join(keys)] = f"the environment's {env}"
    for dotted, value in overrides.items():
        if value is not None:
            keys = tuple(dotted.split("__"))
            _reject_url_password(Path("<command line>"), ".".join(keys), keys, value)
            _put(data, keys, value)
            given[".".join(keys)] = "the command line"
    try:
        config = validate_section(file or Path("<environment>"), Config, data, text)
    except PolicyError as e:
        # a value the environment or a flag gave: named as such, not as a line of the file
        origin = next((o for k, o in given.items() if e.key == k or e.key.startswith(k + ".")), None)
        if origin is None:
            raise
        raise PolicyError(f"<{origin}>", e.key, e.message, e.fix, also=e.also) from None
    config._file = file
    return config
