"""The embedded Tansu broker lives no longer than the process that started it: a `lifemon run`
killed with -9 (or by the OOM killer) must not leave a broker holding its port and its memory."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

STARTS_AND_DIES = """
import os, signal
from streams.embedded import EmbeddedBroker
b = EmbeddedBroker().start()
print(b.port, b._proc.pid, flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # no atexit, no stop(): only the kernel can end the broker
"""


def gone(pid: int) -> bool:
    """Exited: no such process, or a zombie its new parent has not reaped (a container's init may never)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith(("Z", "X"))
    except (FileNotFoundError, ProcessLookupError):
        return True


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_the_broker_dies_with_a_process_killed_with_minus_9() -> None:
    proc = subprocess.run([sys.executable, "-c", STARTS_AND_DIES], cwd=ROOT, capture_output=True, timeout=60)
    assert proc.returncode == -9, proc.stderr.decode()
    port, pid = map(int, proc.stdout.split())
    deadline = time.monotonic() + 10
    while not (gone(pid) and not listening(port)) and time.monotonic() < deadline:
        time.sleep(0.1)
    try:
        assert gone(pid) and not listening(port), f"Tansu (pid {pid}) outlived its parent on port {port}"
    finally:
        if not gone(pid):
            subprocess.run(["kill", "-9", str(pid)], check=False)
