"""Types of the C module streams/_native.c."""

from typing import Any

def block(rows: list[Any], columns: list[tuple[str, str, int, int]]) -> bytes: ...
