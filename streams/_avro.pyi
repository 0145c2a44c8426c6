"""Types of the C module streams/_avro.c."""

from typing import Any

def read(program: tuple[Any, ...], body: bytes) -> Any: ...
