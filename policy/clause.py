"""A clause the policy cites (a rule's `regulation`, an art. 5 step's, a reason's `source`, an
incident report's): the text as quoted, in Chinese, and its English rendering. An English-reading
analyst or auditor saw every clause in Chinese only, where titles and runbooks were bilingual."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import ConfigDict, Field, model_validator
from pydantic.dataclasses import dataclass

# what a clause written in one language is told to become
FORM = '`{zh: "《个人信息保护法》第…条: …", en: "PIPL art. …: …"}`: zh the text as quoted, en its English'


def in_both(data: Any, form: str) -> Any:
    """A bilingual value as given (a clause, a runbook), refused when it is one text where a zh and
    an en belong: `form` says what to write. A zh without its en is pydantic's `required` error,
    at the key `…en` itself."""
    if isinstance(data, str):
        raise ValueError(f"holds one text, not a zh and an en; give it in both languages, {form}")
    return data


# a dataclass, not a model: a finding carries its clauses, and a detector's state writes findings
# through msgspec, which takes dataclasses as they are; frozen, so a list of them dedupes
@dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class Clause:
    zh: str = Field(min_length=1, description="the clause as quoted, verbatim: the legal text")
    en: str = Field(min_length=1, description="a faithful English rendering, its article numbers kept")

    @model_validator(mode="before")
    @classmethod
    def _both(cls, data: Any) -> Any:
        return in_both(data, FORM)

    @property
    def cited(self) -> str:
        """The clause as an alert's prose cites it (a summary's art. 5 tier, a reason's source): as
        quoted, the legal text, then its English, as an alert's title reads `zh / en`."""
        return f"{self.zh} / {self.en}"


def stored(clauses: Iterable[Clause]) -> dict[str, list[str]]:
    """Clauses as an alert or an incident record keeps them: `regulation` as quoted and
    `regulation_en` in English, in the same order (two arrays, as its titles are two strings, so
    a record stored before the English reads as it was, its `regulation_en` empty)."""
    listed = list(clauses)
    return {"regulation": [c.zh for c in listed], "regulation_en": [c.en for c in listed]}
