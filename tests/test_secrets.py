"""Secrets come only from the environment and never show: not in a config dump, a repr, an error
message, or the output of a process whose connection fails (docs/security.md#secrets)."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from pydantic import SecretStr
from test_pipeline import ROOT, make_config, write_config

from policy import PolicyError
from streams.cli import main
from streams.codecs import SchemaRegistry, SchemaRegistryUnavailable
from streams.config import load_config
from streams.credentials import Secrets

SASL, CH, REGISTRY, KEY = "sasl-Hunter2-x", "ch-Hunter2-y", "reg-Hunter2-z", "pseudonym-Hunter2-key-0123"
SECRET_ENV = {
    "LIFEMON_KAFKA_SASL_PASSWORD": SASL,
    "LIFEMON_CLICKHOUSE_PASSWORD": CH,
    "LIFEMON_SCHEMA_REGISTRY_USER_INFO": f"lifemon:{REGISTRY}",
    "LIFEMON_PSEUDONYM_KEY": KEY,
}


def leaked(text: str) -> list[str]:
    return [s for s in (SASL, CH, REGISTRY, KEY, "Hunter2") if s in text]


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in SECRET_ENV.items():
        monkeypatch.setenv(k, v)


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "lifemon.yaml"
    p.write_text(text, encoding="utf-8")
    return p


@pytest.mark.parametrize(
    ("text", "key", "line", "variable"),
    [
        ("clickhouse:\n  dsn: https://lifemon:Hunter2@ch:8443\n", "clickhouse.dsn", 2, "LIFEMON_CLICKHOUSE_PASSWORD"),
        ("schema_registry_url: https://sr:Hunter2@registry:8081\n", "schema_registry_url", 1, "LIFEMON_SCHEMA_REGISTRY_USER_INFO"),
        ("kafka:\n  client:\n    sasl.password: Hunter2\n", "kafka.client.sasl.password", 3, "LIFEMON_KAFKA_SASL_PASSWORD"),
        ("kafka:\n  client:\n    ssl.key.password: Hunter2\n", "kafka.client.ssl.key.password", 3, "LIFEMON_KAFKA_SSL_KEY_PASSWORD"),
        ("kafka:\n  client:\n    ssl.key.pem: Hunter2\n", "kafka.client.ssl.key.pem", 3, "LIFEMON_KAFKA_SASL_PASSWORD"),
        ("notify:\n  receivers:\n    - {name: am, kind: webhook, url: 'https://u:Hunter2@hooks'}\n", "notify.receivers.0.url", 3, "environment"),
    ],
)  # fmt: skip
def test_a_secret_in_the_config_file_is_refused_with_file_key_and_fix(
    tmp_path: Path, text: str, key: str, line: int, variable: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(PolicyError) as e:
        load_config(path)
    assert (e.value.file, e.value.key, e.value.line) == (str(path), key, line)
    assert variable in str(e.value)
    assert not leaked(str(e.value)), str(e.value)


def test_a_dsn_with_a_user_only_is_fine_and_the_password_comes_from_the_environment(
    tmp_path: Path, secret_env: None
) -> None:
    config = load_config(write(tmp_path, "clickhouse:\n  dsn: https://lifemon@ch:8443\n"))
    assert config.clickhouse.dsn == "https://lifemon@ch:8443"
    assert config.secrets.clickhouse_password is not None
    assert config.secrets.clickhouse_password.get_secret_value() == CH


def test_a_password_in_a_url_from_the_environment_or_command_line_is_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LIFEMON_CLICKHOUSE_DSN", "http://lifemon:Hunter2@ch:8123")
    with pytest.raises(PolicyError) as e:
        load_config()
    assert (e.value.file, e.value.key) == ("<environment>", "LIFEMON_CLICKHOUSE_DSN")
    assert "LIFEMON_CLICKHOUSE_PASSWORD" in e.value.fix and not leaked(str(e.value))
    monkeypatch.delenv("LIFEMON_CLICKHOUSE_DSN")
    # the CLI says it in one line and exits 2, as for any config error
    assert main(["report", "--clickhouse", "http://lifemon:Hunter2@ch:8123", "--out", os.devnull]) == 2
    err = capsys.readouterr().err
    assert "<command line>: clickhouse.dsn" in err and "LIFEMON_CLICKHOUSE_PASSWORD" in err
    assert not leaked(err), err


def test_secrets_never_show_in_a_dump_or_a_repr(secret_env: None) -> None:
    config = load_config()
    # they are there, for the client libraries that need them ...
    assert config.kafka_settings()["sasl.password"] == SASL
    assert config.secrets.key_ring() == {1: KEY.encode()}
    # ... and nowhere else
    shown = [
        config.model_dump_json(),
        str(config.model_dump()),
        repr(config),
        str(config),
        repr(config.kafka),
        repr(config.secrets),
        config.secrets.model_dump_json(),
        str(Secrets()),
    ]
    for text in shown:
        assert not leaked(text), text
    assert "**********" in config.secrets.model_dump_json()
    assert "sasl.password" not in config.model_dump_json()  # kafka.client holds no secret


def test_a_failing_connection_logs_no_secret(
    tmp_path: Path, broker: str, names: dict[str, str], secret_env: None
) -> None:
    """`lifemon run` with every secret set, librdkafka's debug log on (it prints its settings),
    and a ClickHouse that refuses the connection: it stops with the reason, and its whole output
    holds no secret."""
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = make_config(names, broker, f"http://lifemon@127.0.0.1:{port}")
    config.kafka.client.update({"debug": "conf,security", "sasl.username": "lifemon"})
    path = write_config(config, tmp_path / "lifemon.yaml")
    # librdkafka's lines come through lifemon's logging, at their level: debug shows them
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LIFEMON_LOG_LEVEL": "debug"}
    done = subprocess.run(
        [sys.executable, "-m", "streams.cli", "run", "--config", str(path), "--quiet", "--seconds", "5"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 3, out
    assert f"127.0.0.1:{port} is unreachable (connection refused)" in out
    assert "sasl.username" in out  # librdkafka did print its settings ...
    assert not leaked(out), leaked(out)  # ... and no secret among them


def test_the_registry_password_goes_only_into_the_basic_auth_header() -> None:
    """A real HTTP server stands in for the registry: it sees the credentials in the header, and
    the error of a registry that fails names the URL and the status, never them."""
    seen: list[str | None] = []

    class Registry(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            seen.append(self.headers.get("Authorization"))
            status = 404 if self.path.endswith("/123") else 500
            body = json.dumps({"error_code": 40403 if status == 404 else 50001, "message": "no"}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Registry)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        registry = SchemaRegistry(url, SecretStr(f"lifemon:{REGISTRY}"))
        assert registry.writer(123) is None  # the registry answered: no such schema
        assert seen[0] == "Basic " + base64.b64encode(f"lifemon:{REGISTRY}".encode()).decode()
        with pytest.raises(SchemaRegistryUnavailable) as e:
            registry.writer(124)
        assert url in str(e.value) and not leaked(str(e.value)) and not leaked(repr(registry.__dict__))
    finally:
        server.shutdown()
