"""A clause the policy cites (a rule's `regulation`, an art. 5 step's, a reason's `source`, an
incident report's): the text as quoted, in Chinese, and its English rendering. An English-reading
analyst or auditor saw every clause in Chinese only, where titles and runbooks were bilingual."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import ConfigDict, Field, model_validator
from pydantic.dataclasses import dataclass

# what a clause written in one language is told to become
FORM = '`{zh: "《个人信息保护法》第…条: …", en: "PIPL art. …: …"}`'


# a dataclass, not a model: a finding carries its clauses, and a detector's state writes findings
# through msgspec, which takes dataclasses as they are; frozen, so a list of them dedupes
@dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class Clause:
    zh: str = Field(min_length=1, description="the clause as quoted, verbatim: the legal text")
    en: str = Field(min_length=1, description="a faithful English rendering, its article numbers kept")

    @model_validator(mode="before")
    @classmethod
    def _both(cls, data: Any) -> Any:
        if isinstance(data, str):
            raise ValueError(
                f"holds the clause in one language; give it in both, {FORM}: zh the text as quoted, "
                "en its English rendering"
            )
        if isinstance(data, dict) and "zh" in data and not data.get("en"):
            raise ValueError(
                f"has no en; add `en:` beside its zh, the clause in English with its article numbers, {FORM}"
            )
        return data


def stored(clauses: Iterable[Clause]) -> dict[str, list[str]]:
    """Clauses as an alert or an incident record keeps them: `regulation` as quoted and
    `regulation_en` in English, in the same order (two arrays, as its titles are two strings, so
    a record stored before the English reads as it was, its `regulation_en` empty)."""
    listed = list(clauses)
    return {"regulation": [c.zh for c in listed], "regulation_en": [c.en for c in listed]}
