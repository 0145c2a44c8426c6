"""Each Avro schema and its pydantic model must agree field for field: name, type, nullability,
enum symbols and defaults. This test fails the moment one is edited without the other."""

from __future__ import annotations

import enum
import json
import types
import typing

import pytest
from pydantic import BaseModel

from schemas.models import ALL_MODELS
from streams.codecs import SCHEMA_DIR, SCHEMA_FILES

AVRO_FOR = {str: "string", bool: "boolean"}


def expected_avro(annotation: typing.Any) -> typing.Any:
    """The Avro type a pydantic annotation must have (ints may be int or long)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        (inner,) = [a for a in typing.get_args(annotation) if a is not type(None)]
        return ["null", expected_avro(inner)]
    if origin is list:
        return {"array": expected_avro(typing.get_args(annotation)[0])}
    if origin is dict:
        return {"map": expected_avro(typing.get_args(annotation)[1])}
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return {"enum": [e.value for e in annotation]}
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return {"record": annotation.avro_name}
    if annotation is int:
        return "int|long"
    return AVRO_FOR[annotation]


def actual(avro: typing.Any, named: dict[str, typing.Any]) -> typing.Any:
    if isinstance(avro, list):
        return [actual(a, named) for a in avro]
    if isinstance(avro, str):
        if avro in ("int", "long"):
            return "int|long"
        return actual(named[avro.split(".")[-1]], named) if avro.split(".")[-1] in named else avro
    t = avro["type"]
    if t == "array":
        return {"array": actual(avro["items"], named)}
    if t == "map":
        return {"map": actual(avro["values"], named)}
    if t == "enum":
        named[avro["name"]] = avro
        return {"enum": avro["symbols"]}
    if t == "record":
        named[avro["name"]] = avro
        return {"record": avro["name"]}
    return actual(t, named)


def schema_for(model: type) -> dict:
    name = next(
        n
        for n in SCHEMA_FILES.values()
        if json.loads((SCHEMA_DIR / f"{n}.avsc").read_text())["name"] == model.avro_name
    )
    return json.loads((SCHEMA_DIR / f"{name}.avsc").read_text())


@pytest.mark.parametrize("model", ALL_MODELS, ids=lambda m: m.avro_name)
def test_schema_and_model_agree(model: type[BaseModel]) -> None:
    schema = schema_for(model)
    named: dict[str, typing.Any] = {}
    avro_fields = {f["name"]: f for f in schema["fields"]}
    assert list(avro_fields) == list(model.model_fields), f"{model.avro_name}: field names or order differ"
    for name, field in model.model_fields.items():
        f = avro_fields[name]
        assert actual(f["type"], named) == expected_avro(field.annotation), (
            f"{model.avro_name}.{name}: type differs"
        )
        if field.is_required():
            assert "default" not in f, f"{model.avro_name}.{name}: required in the model, defaulted in Avro"
        else:
            default = field.get_default(call_default_factory=True)
            assert f.get("default", "<none>") == (
                default.value if isinstance(default, enum.Enum) else default
            ), f"{model.avro_name}.{name}: default differs"


def test_every_stream_has_a_schema_file() -> None:
    for stream, name in SCHEMA_FILES.items():
        assert (SCHEMA_DIR / f"{name}.avsc").is_file(), stream


def test_a_drifted_schema_is_caught() -> None:
    """The comparison itself must be able to fail: a renamed enum symbol is a mismatch."""
    from schemas.models import AccessEvent

    schema = schema_for(AccessEvent)
    action = next(f for f in schema["fields"] if f["name"] == "action")
    action["type"]["symbols"] = ["view", "read"]
    assert actual(action["type"], {}) != expected_avro(AccessEvent.model_fields["action"].annotation)
