"""What a producer wrote, shown in a terminal as text and never as a command to it.

Ids, names and summaries in alerts, incidents, gaps and dead letters come from the logs lifemon
reads: a recipient id holding `ESC[2K\\r` erased the line it was printed on and wrote a false one
over it ("info closed resolved"), `ESC[8m` hid what followed, and a newline or a right-to-left
override can fake or reorder a line as well (a probe's critical cross-border alert read as closed).
Every listing escapes them in the values it prints (`shown`), before it adds its own colours.
"""

from __future__ import annotations

import re
from typing import Any

# C0 and C1 controls (newline and tab included: a value is one cell of one line), and the
# characters that reorder text (bidirectional marks, embeddings, overrides, isolates)
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escaped(found: re.Match[str]) -> str:
    return found.group().encode("unicode_escape").decode("ascii")


def shown(value: Any) -> Any:
    """`value` with every control and reordering character in its text written as its escape
    (`\\x1b`, `\\n`, `\\u202e`), through the lists and dicts a row holds; anything else as it is."""
    if isinstance(value, str):
        return _UNSAFE.sub(_escaped, value) if _UNSAFE.search(value) else value
    if isinstance(value, list | tuple):
        return type(value)(map(shown, value))
    if isinstance(value, dict):
        return {shown(k): shown(v) for k, v in value.items()}
    return value
