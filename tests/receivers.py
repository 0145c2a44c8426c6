"""Real receivers for the notifier tests: a local HTTP server that records what it accepts (and can
refuse on purpose for a while), and Debian's Prometheus Alertmanager on a loopback port."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson

from streams.embedded import free_port

ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
MISSING = "Debian's prometheus-alertmanager is not installed (apt-get install -y prometheus-alertmanager; .ci/run does)"


class Receiver:
    """POSTs to any path: answers 503 while `failing` (or for the first `fail_first` requests),
    2xx otherwise; `accepted` holds (path, JSON body, headers) of what it took, in order."""

    def __init__(self, fail_first: int = 0, port: int = 0):
        """`port`: a fixed one, for a receiver that comes back where it was (0: any free port)."""
        self.fail_first = fail_first
        self.failing = False
        self.refused = 0
        self.accepted: list[tuple[str, Any, dict[str, str]]] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with outer.lock:
                    if outer.failing or outer.refused < outer.fail_first:
                        outer.refused += 1
                        code = 503
                    else:
                        outer.accepted.append((self.path, orjson.loads(body), dict(self.headers)))
                        code = 202
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def bodies(self, path: str) -> list[Any]:
        with self.lock:
            return [b for p, b, _ in self.accepted if p == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def alertmanager(
    webhook_url: str,
    folder: Path,
    resolve_timeout: str = "5m",
    send_resolved: bool = False,
    routes: dict[str, str] | None = None,
) -> Iterator[str]:
    """Alertmanager on a loopback port, routing every alert at once to `webhook_url`; yields its URL.
    `resolve_timeout`: when it resolves an alert that came without an end (its default, 5m).
    `routes`: matcher (`severity="critical"`) -> the webhook its alerts go to instead."""
    assert ALERTMANAGER, MISSING
    port = free_port()
    config = folder / "alertmanager.yml"
    hooks = {"hook": webhook_url} | {f"route{i}": url for i, url in enumerate((routes or {}).values())}
    config.write_text(
        f"global:\n  resolve_timeout: {resolve_timeout}\n"
        "route:\n"
        "  receiver: hook\n"
        "  group_by: [incident_id]\n"
        "  group_wait: 100ms\n"
        "  group_interval: 1s\n"
        "  repeat_interval: 1h\n"
        + ("  routes:\n" if routes else "")
        + "".join(
            f"    - matchers: ['{matcher}']\n      receiver: route{i}\n"
            for i, matcher in enumerate((routes or {}).keys())
        )
        + "receivers:\n"
        + "".join(
            f"  - name: {name}\n"
            "    webhook_configs:\n"
            f"      - url: {url}\n"
            f"        send_resolved: {str(send_resolved).lower()}\n"
            for name, url in hooks.items()
        )
    )
    with ready_daemon(
        [
            ALERTMANAGER,
            f"--config.file={config}",
            f"--storage.path={folder / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",  # one instance, no gossip port
        ],
        f"http://127.0.0.1:{port}",
    ) as url:
        yield url


@contextmanager
def ready_daemon(cmd: list[str], url: str, timeout_s: float = 30) -> Iterator[str]:
    """A Prometheus-family daemon until the `with` ends, once its `/-/ready` answers 200; yields `url`."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            try:
                with urllib.request.urlopen(url + "/-/ready", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"{cmd[0]} did not become ready"
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
