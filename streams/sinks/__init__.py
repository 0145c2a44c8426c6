"""Outputs. Every sink is a subclass of `Sink`: the runtime adds to them, flushes them all, and
only then commits offsets (quix-streams' sink idea). No sink commits on its own."""

from streams.sinks.base import FatalSinkError, Sink, SinkError, StoppedInOutage

__all__ = ["FatalSinkError", "Sink", "SinkError", "StoppedInOutage"]
