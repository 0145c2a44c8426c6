"""Types of the C module streams/_door.c."""

from collections.abc import Callable, Iterable, Mapping
from typing import Any

def pseudonymize(
    records: list[Any],
    attr: str,
    cache: dict[str, str],
    compute: Callable[[str], str],
    blank: str | None = None,
) -> list[Any] | None: ...
def count_rollup(
    events: list[Any],
    stream: str,
    fields_attr: str,
    org_attr: str | None,
    outcome_attr: str,
    action_attr: str | None,
    coverage: Mapping[tuple[str, ...], tuple[str, tuple[str, ...]]],
    orgs: Mapping[Any, str],
    outcomes: Mapping[Any, str],
    counted: dict[tuple[Any, ...], int],
    extra: tuple[tuple[str, ...], Mapping[tuple[Any, ...], tuple[Any, ...]], int] | None = None,
) -> list[tuple[int, tuple[str, ...]]]: ...
def group_slots(
    cells: dict[tuple[Any, ...], int], slots: Iterable[int], slot_s: int
) -> dict[int, tuple[dict[tuple[Any, ...], int], list[int]]]: ...
def decode_json(
    raws: list[Any], decode: Callable[[bytes], Any], max_bytes: int
) -> tuple[list[tuple[Any, Any]], int]: ...
def doubtful_times(
    pairs: list[tuple[Any, Any]], low: int, high: int, ahead: int, behind: int, reference: bool
) -> list[tuple[Any, Any]]: ...
def names_scan(
    records: list[Any],
    attrs: tuple[str, ...],
    words: tuple[str, ...],
    form: tuple[str, int] | None = None,
    joined: bool = True,
) -> tuple[
    str | None,
    list[tuple[int, str]],
    list[tuple[int, str]],
    list[tuple[int, str]] | None,
    list[tuple[int, str]],
]: ...
def distinct(records: list[Any], attr: str, items: bool = False) -> set[Any]: ...
def distinct_each(records: list[Any], attrs: tuple[tuple[str, bool], ...]) -> list[set[Any]]: ...
def misrouted(decoded: list[tuple[Any, Any]], attr: str) -> int: ...
def any_blank(decoded: list[tuple[Any, Any]], attr: str) -> bool: ...
def newest(events: list[Any]) -> int | None: ...
def share(
    decoded: list[tuple[Any, Any]], attrs: tuple[str, ...], pool: dict[str, str], most: int, longest: int
) -> None: ...
