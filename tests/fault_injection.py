"""How the fault matrix injects faults into real processes (docs/faults.md): a `lifemon` process
whose output is read as it comes, a directory made read-only or a small filesystem of its own
(kernel mounts: root only; the tests that need them skip otherwise), and a disk filled to the last
byte."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from test_pipeline import ROOT, run_cli

MOUNT_SKIP = "needs root to mount (a read-only bind mount or a small tmpfs)"


def can_mount() -> bool:
    return os.geteuid() == 0


class Running:
    """A `lifemon` process; its output (stdout and stderr) is collected line by line."""

    def __init__(self, proc: subprocess.Popen):
        self.proc = proc
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @classmethod
    def run(cls, config_path: Path, until_idle: float) -> Running:
        """`lifemon run --quiet --until-idle`."""
        return cls(run_cli(config_path, until_idle=until_idle))

    @classmethod
    def notify(cls, config_path: Path, until_idle: float) -> Running:
        """`lifemon notify --until-idle`."""
        command = ["notify", "--config", str(config_path), "--until-idle", str(until_idle)]
        return cls(
            subprocess.Popen(
                [sys.executable, "-m", "streams.cli", *command],
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
        )

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.decode(errors="replace").rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def count(self, text: str) -> int:
        return sum(text in line for line in list(self.lines))

    def wait_for(self, text: str, timeout_s: float = 60, times: int = 1) -> None:
        deadline = time.monotonic() + timeout_s
        while self.count(text) < times:
            assert self.proc.poll() is None or self._reader.is_alive(), f"exited:\n{self.output}"
            assert time.monotonic() < deadline, f"no {text!r} within {timeout_s}s:\n{self.output}"
            time.sleep(0.1)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait(self, timeout_s: float = 180) -> int:
        try:
            code = self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"still running after {timeout_s}s:\n{self.output}") from None
        self._reader.join(10)
        return code

    def finish(self, timeout_s: float = 180) -> str:
        """Waits for a clean end (exit 0); returns the output."""
        code = self.wait(timeout_s)
        assert code == 0, f"exit {code}:\n{self.output}"
        return self.output

    def kill(self) -> None:
        if self.alive():
            self.proc.kill()
            self.proc.wait(30)


@contextlib.contextmanager
def mounted_tmpfs(path: Path, size_mb: int) -> Iterator[Path]:
    """A filesystem of `size_mb` at `path`: a data directory that can really fill up."""
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[None]:
    """`path` read-only for everyone, root included (a bind mount of itself, remounted ro), until
    the block ends; the processes using it keep their open files."""
    subprocess.run(["mount", "--bind", str(path), str(path)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(path)], check=True)
        yield
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(path: Path) -> Path:
    """Write zeros into `path/filler` until the disk refuses (ENOSPC); remove the file to free it."""
    filler = path / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        for size in (1 << 20, 4096, 1):  # then whatever is left of the last block
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * size)
    finally:
        os.close(fd)
    return filler
