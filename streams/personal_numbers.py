"""Card, resident ID and mobile numbers inside the names producers give.

A producer may build an event id, a record id, an actor, a recipient, a system or a path from a
customer's number (`REC-6222020200001234562`, `/upload/6222…/statement.csv`, an SDK host
`13812345678.push.example`). Each such number is found by its form and checksum, however it is
spelled: digits in any width, with spaces, dashes, dots, slashes or underscores between groups,
beside other digits (`20260101` + a card), behind `+86` or `0086`.

- `NumberSeal` replaces it where an event enters the engine (streams/engine.py `ingest`), in every
  name the event carries, by its form and a keyed fingerprint: `{bank_card:9f2c41d07a3b}`. One
  record id still matches itself across streams, in state, repartition topics and tables, and the
  number cannot be read back (docs/security.md).
- `mask` replaces it by its form alone (`{bank_card}`): the alert step's last pass over the text
  a detector composed (streams/alerts.py).
"""

from __future__ import annotations

import base64
import re
import unicodedata
from collections.abc import Callable, Iterable
from types import UnionType
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel

from schemas.models import EVENT_MODELS, SUBJECT_FIELDS, ValueType
from streams import _door

_PERSONAL = frozenset({ValueType.bank_card, ValueType.cn_ric, ValueType.cn_mobile})
_CHECKED = frozenset({ValueType.bank_card, ValueType.cn_ric})  # forms with a check digit
_SEPARATORS = "[" + re.escape(" \t\u00a0\u3000._/\\-") + "]"  # what goes between a number's groups
_IPV4 = r"\d{1,3}(?:\.\d{1,3}){3}(?![.\d])"  # a client's address: dotted, never a number of one
# a run of at least 11 digits (in any width) with at most two separators between any two, and an X
# (a resident ID's check digit): the only text a personal number can hide in
RUN = re.compile(rf"(?<!\d)(?!{_IPV4})\+?\d(?:{_SEPARATORS}{{0,2}}\d){{10,}}[Xx]?")
_SPLIT = re.compile(f"({_SEPARATORS}+)")
# a card's or resident ID's length: in a longer run of digits, one may sit at either end (a date
# before it, a sequence number after). A mobile number has no check digit: found there, it would
# be any long number that starts with 13-19 (an epoch in milliseconds).
_LENGTHS = (19, 18, 17, 16)

Token = Callable[[ValueType, str], str]  # (form, canonical number) -> what replaces it


def _form_of(text: str) -> tuple[ValueType, str] | None:
    # imported here: streams.sources imports this module's users
    from streams.sources.data_types import recognize

    found = recognize(text)
    return found if found is not None and found[0] in _PERSONAL else None


def _within(group: str) -> tuple[ValueType, str, int, int] | None:
    """A personal number that is the whole of `group` (digits, a + before, an X after), or a card
    or resident ID at one of its ends: (form, canonical number, start, end)."""
    found = _form_of(group)
    if found is not None:
        return (*found, 0, len(group))
    if group.startswith(("0086", "86")):  # a mobile number written with the country code
        a = len(group) - 11
        found = _form_of(group[a:]) if a in (2, 4) else None
        if found is not None:
            return (*found, a, len(group))
    for n in _LENGTHS:
        for a in (0, len(group) - n) if n < len(group) else ():
            found = _form_of(group[a : a + n])
            if found is not None and found[0] in _CHECKED:
                return (*found, a, a + n)
    return None


def _replace_run(run: str, token: Token) -> str:
    """The run with each personal number in it replaced: the widest span of whole digit groups
    that is one, from the left (a card written 6222 0202 ...), or one inside a single group; then
    the rest of the run likewise."""
    parts = _SPLIT.split(unicodedata.normalize("NFKC", run))  # groups at even places, separators between
    groups = len(parts) // 2 + 1
    for i in range(groups):
        for j in range(groups, i, -1):
            digits = "".join(parts[2 * i : 2 * j - 1 : 2])
            whole = _form_of(digits) if j - i > 1 else None
            found = (*whole, 0, len(digits)) if whole is not None else _within(digits) if j - i == 1 else None
            if found is None:
                continue
            form, number, a, b = found
            head, tail = "".join(parts[: 2 * i]), "".join(parts[2 * j - 1 :])
            return head + digits[:a] + token(form, number) + _replace_text(digits[b:] + tail, token)
    return run


def _replace_text(text: str, token: Token) -> str:
    return RUN.sub(lambda m: _replace_run(m.group(), token), text) if text else text


def mask(text: str) -> str:
    """`text` with every card, resident ID and mobile number in it replaced by its form."""
    return _replace_text(text, lambda form, _: f"{{{form.value}}}")


Fields = tuple[tuple[str, ...], dict[str, Any]]  # names a producer gives; nested records' own


def _named_fields(model: Any, skip: Iterable[str] = ()) -> Fields:
    """The fields of a record that a producer fills with names of its own (text, or a list of
    text), and the same of its lists of nested records (an entitlement's approvals); customer ids
    (pseudonymized), enums and numbers are none."""
    named, nested = [], {}
    for name, f in model.model_fields.items():
        union = get_origin(f.annotation) in (Union, UnionType)
        options = get_args(f.annotation) if union else (f.annotation,)
        if name in skip:
            continue
        if any(o is str or o == list[str] for o in options):
            named.append(name)
        for o in options:
            inner = get_args(o) if get_origin(o) is list else ()
            if inner and isinstance(inner[0], type) and issubclass(inner[0], BaseModel):
                nested[name] = _named_fields(inner[0])
    return tuple(named), nested


def _letters(digest: str) -> str:
    """12 characters of a keyed digest (`fp_…` or `p_…` hex) in base32: no run of digits in it
    for `mask` to take for a number."""
    return base64.b32encode(bytes.fromhex(digest.rpartition("_")[2][:20])).decode().lower()[:12]


class NumberSeal:
    """Seals personal numbers in the names a stream's records carry, a batch at a time."""

    def __init__(self, digest: Callable[[str], str]):
        self._token: Token = lambda form, number: f"{{{form.value}:{_letters(digest(number))}}}"
        self.fields = {
            stream: _named_fields(model, SUBJECT_FIELDS.get(stream, ()))
            for stream, model in EVENT_MODELS.items()
        }

    def text(self, text: str) -> str:
        return _replace_text(text, self._token)

    def records(self, stream: str, records: list[Any]) -> None:
        self._seal(records, self.fields[stream])

    def _seal(self, records: list[Any], fields: Fields) -> None:
        """Each name of the records with a number of such a form in it, sealed in place. The names
        to look at are found in C (streams/_door.c `long_numbers`): 11 digits or more in a run."""
        for i, name in _door.long_numbers(records, fields[0]):
            value = getattr(records[i], name)
            if isinstance(value, str):
                setattr(records[i], name, self.text(value))
            else:
                setattr(records[i], name, [self.text(x) if RUN.search(x) else x for x in value])
        for name, inner_fields in fields[1].items():
            inner = [x for r in records for x in getattr(r, name)]
            if inner:
                self._seal(inner, inner_fields)
