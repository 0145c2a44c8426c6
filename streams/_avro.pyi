"""Types of the C module streams/_avro.c."""

from typing import Any

def transcode(program: tuple[Any, ...], bodies: list[bytes], skip: int) -> bytes: ...
