"""Debian's Chromium, headless, driven through the DevTools protocol: open a page, read what it
rendered, take a screenshot, and collect every error its console shows (console.error, uncaught
exceptions, resources that failed to load)."""

from __future__ import annotations

import base64
import itertools
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import orjson
import websocket
from receivers import free_port

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
MISSING = (
    "Debian's chromium is not installed (apt-get install -y chromium fonts-noto-cjk; `make test-deps` does)"
)


class Page:
    """One tab. Events that arrive while waiting for a command's answer are kept in `events`."""

    def __init__(self, ws_url: str):
        self.ws = websocket.create_connection(ws_url, timeout=30, suppress_origin=True)
        self.events: list[dict[str, Any]] = []
        self._ids = itertools.count(1)

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        n = next(self._ids)
        self.ws.send(orjson.dumps({"id": n, "method": method, "params": params}).decode())
        while True:
            msg = orjson.loads(self.ws.recv())
            if msg.get("id") == n:
                assert "error" not in msg, msg
                return msg["result"]
            self.events.append(msg)

    def wait_event(self, method: str, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while not any(e.get("method") == method for e in self.events):
            assert time.monotonic() < deadline, f"{method} never came"
            self.events.append(orjson.loads(self.ws.recv()))

    def drain(self, seconds: float) -> None:
        """Collect what the page still logs for a moment (late errors of a loaded page)."""
        self.ws.settimeout(0.1)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with suppress(websocket.WebSocketTimeoutException):
                self.events.append(orjson.loads(self.ws.recv()))
        self.ws.settimeout(30)

    def open(self, url: str, width: int = 1200, height: int = 1600) -> None:
        self.send("Runtime.enable")
        self.send("Log.enable")
        self.send("Page.enable")
        self.send(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )
        self.send("Page.navigate", url=url)
        self.wait_event("Page.loadEventFired")
        self.drain(0.5)

    def evaluate(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        assert "exceptionDetails" not in result, result
        return result["result"]["value"]

    def screenshot(self) -> bytes:
        return base64.b64decode(self.send("Page.captureScreenshot", format="png")["data"])

    def console_errors(self) -> list[str]:
        """What a developer would see in red in the console."""
        found = []
        for e in self.events:
            method, p = e.get("method"), e.get("params", {})
            if method == "Runtime.consoleAPICalled" and p["type"] in ("error", "assert"):
                found.append(" ".join(str(a.get("value", a.get("description", ""))) for a in p["args"]))
            elif method == "Runtime.exceptionThrown":
                details = p["exceptionDetails"]
                found.append(details.get("exception", {}).get("description") or details["text"])
            elif method == "Log.entryAdded" and p["entry"]["level"] == "error":
                found.append(f"{p['entry']['text']} {p['entry'].get('url', '')}".strip())
        return found

    def close(self) -> None:
        self.ws.close()


@contextmanager
def chromium(profile: Path) -> Iterator[Page]:
    """Headless Chromium on a loopback debugging port (as root it needs --no-sandbox); yields its tab."""
    assert CHROMIUM, MISSING
    port = free_port()
    proc = subprocess.Popen(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            f"--user-data-dir={profile}",
            f"--remote-debugging-port={port}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    page = None
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, "chromium exited"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as r:
                    tabs = [t for t in orjson.loads(r.read()) if t["type"] == "page"]
                if tabs:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "chromium's debugging port never answered"
            time.sleep(0.2)
        page = Page(tabs[0]["webSocketDebuggerUrl"])
        yield page
    finally:
        if page is not None:
            page.close()
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
