from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Generic, TypeVar

T = TypeVar("T")


class SinkError(RuntimeError):
    """A sink could not confirm a write (yet); the runtime keeps the batch, does not commit, and
    flushes again later."""


class FatalSinkError(SinkError):
    """The destination is gone or refuses this data for good (a vanished topic, a dropped table):
    retrying cannot help, so the runtime says so loudly and stops without committing."""


class StoppedInOutage(RuntimeError):
    """Asked to stop (SIGTERM, Ctrl-C) while a checkpoint or a decode waited out a destination that
    is down. Nothing is lost: what the last written checkpoint did not cover is not committed, and
    the next start resumes there. So it is a clean stop, said in one line (a probe's rolling restart
    during a ClickHouse outage ended in exit 1 and 80 lines of the driver's traceback)."""

    def __init__(self, what: str, error: Exception):
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        super().__init__(
            f"stopped during an outage: {what} ({reason[:200]}); nothing after the last checkpoint "
            "written is committed, so the next start resumes from there and loses nothing"
        )


class Sink(ABC, Generic[T]):
    name: str = "sink"

    def __init__(self) -> None:
        self._buffer: list[T] = []

    def add(self, items: Iterable[T]) -> None:
        self._buffer.extend(items)

    def flush(self, stop: threading.Event | None = None) -> int:
        """Write everything buffered and wait until the destination acknowledged it.

        On failure the items stay buffered (nothing is lost) and the error propagates, so the
        runtime retries the flush and never commits past unwritten output. `stop` lets a sink that
        waits on acknowledgements give up early on shutdown; one blocking write ignores it."""
        if not self._buffer:
            return 0
        items = self._buffer
        self._buffer = []
        try:
            self.write(items)
        except Exception:
            self._buffer = items + self._buffer
            raise
        return len(items)

    @abstractmethod
    def write(self, items: list[T]) -> None:
        """Write one batch; return only once it is durable, raise SinkError otherwise."""
