"""Runtime configuration: an optional YAML file, then environment overrides. Secrets come only from
the environment; a config file that holds one is rejected with the variable to use instead."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from policy import PolicyError, read_yaml, validate_section

SECRET_KEYS = ("password", "secret", "sasl.oauthbearer.client.secret", "ssl.key.password")
ENV_OVERRIDES = {
    "LIFEMON_KAFKA_BOOTSTRAP": ("kafka", "bootstrap"),
    "LIFEMON_KAFKA_GROUP": ("kafka", "group_id"),
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


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KafkaConfig(Strict):
    bootstrap: str | None = Field(
        default=None, description="host:port list; empty starts the embedded Tansu broker"
    )
    group_id: str = "lifemon"
    client: dict[str, Any] = Field(default_factory=dict, description="extra librdkafka settings (no secrets)")
    partitions: int = Field(default=3, ge=1, description="partitions for topics lifemon creates")
    replication_factor: int = Field(
        default=1, ge=1, description="for topics lifemon creates; 3 in production"
    )
    batch_size: int = Field(default=5000, ge=1)
    poll_timeout_s: float = Field(default=0.5, gt=0)


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
    timezone: str = Field(default="UTC", description="IANA zone for zone abbreviations in log times")


class MariadbSource(Strict):
    """MariaDB / MySQL server_audit lines."""

    enabled: bool = False
    topic: str = "pfi.raw.mariadb"
    timezone: str = Field(default="UTC", description="IANA zone of the server's local time")


class SftpSource(Strict):
    """OpenSSH internal-sftp lines through syslog."""

    enabled: bool = False
    topic: str = "pfi.raw.sftp"
    timezone: str = Field(default="UTC", description="IANA zone of syslog times without an offset")


class RawSources(Strict):
    """Raw-log topics decoded into access and transfer events (docs/sources.md)."""

    pgaudit: PgauditSource = Field(default_factory=PgauditSource)
    mariadb: MariadbSource = Field(default_factory=MariadbSource)
    sftp: SftpSource = Field(default_factory=SftpSource)

    def streams(self) -> dict[str, str]:
        """Enabled raw topic -> the canonical stream it feeds."""
        found = {"pgaudit": "access", "mariadb": "access", "sftp": "transfer"}
        return {getattr(self, n).topic: s for n, s in found.items() if getattr(self, n).enabled}


class ClickHouseConfig(Strict):
    dsn: str | None = Field(
        default=None, description="chdb:///path or http(s)://user@host:8123; empty: chDB in data_dir"
    )
    database: str = Field(default="lifemon", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")


class EventTimeConfig(Strict):
    """How far an event's `ts` may stray from its record's Kafka timestamp before it is
    dead-lettered (a clock years ahead must not move a watermark and close every window)."""

    max_ahead_s: int = Field(default=300, ge=0)
    max_behind_s: int = Field(
        default=30 * 86_400, ge=0, description="late shipping beyond this is a dead letter"
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
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"'{url}' is not an http(s) URL")
        if parts.password or parts.username:
            raise ValueError("a receiver URL may not hold credentials; put secrets in the environment")
        return url


class NotifyConfig(Strict):
    group_id: str = Field(
        default="lifemon-notify", description="the notifier's consumer group on topics.incidents"
    )
    receivers: list[Receiver] = Field(default_factory=list)
    backoff_initial_s: float = Field(default=0.5, gt=0)
    backoff_max_s: float = Field(default=60.0, gt=0)


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
    max_record_bytes: int = Field(default=256 * 1024, gt=0)
    schema_registry_url: str | None = None
    instance: str = Field(default_factory=lambda: os.environ.get("HOSTNAME", "lifemon"))

    def clickhouse_dsn(self) -> str:
        return self.clickhouse.dsn or f"chdb://{(self.data_dir / 'chdb').resolve()}"

    def topic_of(self, stream: str) -> str:
        return getattr(self.topics, stream)

    def stream_of(self, topic: str) -> str:
        """The stream a topic carries; a raw-log topic carries the stream its parser produces."""
        found = next((s for s, t in self.topics.model_dump().items() if t == topic), None)
        return found or self.raw_sources.streams()[topic]


def _reject_secrets(path: Path, data: dict[str, Any]) -> None:
    kafka = data.get("kafka")
    client = kafka.get("client") if isinstance(kafka, dict) else None
    for key in client if isinstance(client, dict) else ():  # other shapes: validation says what is wrong
        if any(s in str(key) for s in SECRET_KEYS):
            raise PolicyError(
                path,
                f"kafka.client.{key}",
                "secrets are not read from files",
                "remove it and set LIFEMON_KAFKA_SASL_PASSWORD (or the matching env var) instead",
            )


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
            raise PolicyError(file, "", "config file not found", "check the --config path")
        data, text = read_yaml(file)
        if not isinstance(data, dict):
            raise PolicyError(
                file, "", "the config must be a mapping of keys", "start from docs/configuration.md"
            )
        _reject_secrets(file, data)
    for env, keys in ENV_OVERRIDES.items():
        if os.environ.get(env):
            _put(data, keys, os.environ[env])
    for dotted, value in overrides.items():
        if value is not None:
            _put(data, dotted.split("__"), value)
    config = validate_section(file or Path("<environment>"), Config, data, text)
    if os.environ.get("LIFEMON_KAFKA_SASL_PASSWORD"):
        config.kafka.client["sasl.password"] = os.environ["LIFEMON_KAFKA_SASL_PASSWORD"]
    return config
