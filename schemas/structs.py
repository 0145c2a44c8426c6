"""msgspec Structs for the hot path, generated from the pydantic models in `schemas/models.py`.

The pydantic models stay the one definition (they mirror the Avro schemas, and the generator,
policy examples and alerts use them). Decoding a pydantic object per event cost about 9 µs here;
a msgspec Struct with the same fields, types and bounds costs about 1 µs (docs/benchmarks.md), so
the decoder builds these instead. Detectors read attributes only and work on either.
"""

from __future__ import annotations

import types
import typing
from typing import Annotated, Any

import annotated_types
import msgspec
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from schemas.models import EVENT_MODELS, Record

_BOUNDS = {
    annotated_types.Ge: ("ge", "ge"),
    annotated_types.Gt: ("gt", "gt"),
    annotated_types.Le: ("le", "le"),
    annotated_types.Lt: ("lt", "lt"),
    annotated_types.MinLen: ("min_length", "min_length"),
    annotated_types.MaxLen: ("max_length", "max_length"),
}


# Every int is an Avro long (and a ClickHouse Int64/UInt64): a JSON number beyond it would decode
# here and then fail every sink that writes it, so it is a dead letter at the door instead.
LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1


def _convert(tp: Any, made: dict[type, type]) -> Any:
    """The annotation with every nested pydantic model replaced by its Struct."""
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return struct_of(tp, made)
    origin = typing.get_origin(tp)
    if origin is None:
        return tp
    args = tuple(_convert(a, made) for a in typing.get_args(tp))
    if origin in (types.UnionType, typing.Union):
        return typing.Union[args]  # noqa: UP007 - rebuilt from a runtime tuple
    return origin[args]


def struct_of(model: type[BaseModel], made: dict[type, type] | None = None, forbid: bool = True) -> type:
    """A Struct with the model's fields, types, defaults and numeric / length bounds."""
    made = {} if made is None else made
    if model in made:
        return made[model]
    fields: list[tuple[str, Any, Any]] = []
    for name, f in model.model_fields.items():
        tp = _convert(f.annotation, made)
        meta = {
            key: getattr(m, attr)
            for m in f.metadata
            for cls, (key, attr) in _BOUNDS.items()
            if isinstance(m, cls)
        }
        if tp is int and name != "ts":  # `ts` is judged at the event-time door, with a better reason
            meta = {"ge": LONG_MIN, "le": LONG_MAX, **meta}
        if meta:
            tp = Annotated[tp, msgspec.Meta(**meta)]
        if f.default_factory is not None:
            fields.append((name, tp, msgspec.field(default_factory=f.default_factory)))  # type: ignore[arg-type]
        elif f.default is not PydanticUndefined:
            fields.append((name, tp, f.default))
        else:
            fields.append((name, tp, msgspec.NODEFAULT))
    # gc=False: an event is never part of a reference cycle (its fields are strings, numbers,
    # lists of them and nested events), so the collector need not track the hundreds of thousands a
    # replay holds; they no longer count toward its young collections (+4.5 % on the mixed day,
    # docs/benchmarks.md, twenty-sixth stop)
    made[model] = struct = msgspec.defstruct(
        model.__name__, fields, kw_only=True, forbid_unknown_fields=forbid, omit_defaults=False, gc=False
    )
    return struct


# stream -> Struct: strict (an unknown field is noticed) and lenient (it is ignored and counted)
STRICT: dict[str, type] = {s: struct_of(m) for s, m in EVENT_MODELS.items()}
LENIENT: dict[str, type] = {s: struct_of(m, forbid=False) for s, m in EVENT_MODELS.items()}


def from_model(stream: str, record: Record) -> Any:
    """A pydantic record as the Struct the engine receives (tests, policy examples)."""
    return msgspec.convert(record.model_dump(mode="python"), STRICT[stream])
