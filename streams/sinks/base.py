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
