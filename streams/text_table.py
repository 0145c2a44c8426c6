"""Aligned text tables for the read commands (`catalog gaps`, `dead-letters`): a Chinese name's
characters take two terminal columns each."""

from __future__ import annotations

import unicodedata
from collections.abc import Collection, Sequence


def display_width(text: str) -> int:
    """The terminal columns `text` takes: two for each wide (CJK) character."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _pad(text: str, width: int, right: bool) -> str:
    fill = " " * (width - display_width(text))
    return fill + text if right else text + fill


def aligned(header: Sequence[str], cells: Sequence[Sequence[str]], right: Collection[int] = ()) -> list[str]:
    """The header and rows, each column as wide as its widest cell; columns in `right` align right."""
    widths = [max(display_width(c[i]) for c in [header, *cells]) for i in range(len(header))]
    return [
        "  ".join(
            _pad(v, w, right=i in right) for i, (v, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in [header, *cells]
    ]
