"""A local S3 server (moto's server mode, a real HTTP process) for Tansu's `s3://` storage engine:
a broker on it keeps its topics and committed offsets across a restart, which the in-memory
default does not, so a test can stop the broker and start it again with its data."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from streams.embedded import EmbeddedBroker, free_port


class S3Server:
    def __init__(self, log_dir: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_dir / f"moto-{self.port}.log"
        self._proc: subprocess.Popen | None = None

    def start(self, timeout_s: float = 30) -> S3Server:
        log = open(self.log_path, "wb")  # noqa: SIM115 - owned by the child for its lifetime
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout_s
        while True:
            assert self._proc.poll() is None, f"moto server exited; see {self.log_path}"
            try:
                urllib.request.urlopen(self.url, timeout=1).close()
                return self
            except OSError:
                assert time.monotonic() < deadline, f"moto server not up within {timeout_s}s"
                time.sleep(0.2)

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(10)
            self._proc = None

    def bucket(self, name: str) -> str:
        """Create a bucket; returns Tansu's storage URL for it."""
        urllib.request.urlopen(urllib.request.Request(f"{self.url}/{name}", method="PUT"), timeout=10).close()
        return f"s3://{name}/"

    def broker(
        self, bucket: str, port: int | None = None, advertised_port: int | None = None
    ) -> EmbeddedBroker:
        """A Tansu broker storing in `bucket` (same port again after a restart: clients reconnect)."""
        env = {
            "AWS_ACCESS_KEY_ID": "lifemon-test",
            "AWS_SECRET_ACCESS_KEY": "lifemon-test",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT": self.url,
            "AWS_ALLOW_HTTP": "true",
        }
        return EmbeddedBroker(port=port, advertised_port=advertised_port, storage=bucket, env=env)
