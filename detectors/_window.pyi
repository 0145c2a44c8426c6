"""Types of the C module detectors/_window.c."""

from collections.abc import Callable
from typing import Any

Entry = tuple[int, str, int, int, tuple[str, ...], int]

def reads(
    evs: list[Any],
    profiles: dict[tuple[tuple[str, ...], Any], tuple[Any, tuple[str, ...], int, int, tuple[int, ...]]],
    tiers: int,
    duty: list[bool] | None = None,
) -> tuple[list[Entry], list[tuple[int, ...]], int, int, list[int]] | None: ...
def add_quietly(
    win: Any,
    evs: list[Any],
    entries: list[Entry],
    tiers: list[tuple[int, ...]],
    window_ms: int,
    horizon_ms: int,
    tier_sets: dict[tuple[str, ...], tuple[int, ...]],
    tiers_of: Callable[[tuple[str, ...]], tuple[int, ...]],
) -> bool: ...
