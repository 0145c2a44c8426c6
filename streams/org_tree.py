"""Org paths read from the head office down, however a feed writes them.

An org sees by its level, its depth on its `org_path` (seed 004 掌上银行家系统机构设置(1)-(4),
`Organisation.sees_at_depth`). An HR or customers feed that writes only the org (`[S0101]`) or the
path below the head office (`[B01]`) put the org at the head office's depth, with sight of every
customer: a probe's sub-branch wealth manager read another branch's customers and nothing was
said, and a branch manager reading her own branch's customer was out of scope. A path is
completed from the ancestors full paths gave its first org, or put under the head office alone
when no full path named them yet: at most the org and what lies below it, never the whole bank.
Such a record is placed again once a whole path names its org, whichever feed is read first (a
review's replay read the customers before the entitlements that placed them).

A whole path that skips a level the tree knows (the second-level branch a customers feed leaves out)
does not make the tree forget that level, and what an org sees is judged on the tree's path where it
knows more (`OrgTree.path_of`). The record keeps its path as written: read first, it could not be
placed again without keeping every record. A sub-branch moved out from under a second-level branch
by a path that only drops that level stays under it in the tree.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec


class OrgTree:
    """Each org's ancestors, learned from the paths the reference feeds give whole."""

    def __init__(self, head_office: str | None):
        self.head_office = head_office
        self._above: dict[str, list[str]] = {}  # org -> its ancestors, head office first
        # first org of a path no whole path placed yet -> (stream, record, the path as written)
        self._guessed: dict[str, list[tuple[str, Any, list[str]]]] = {}

    def place(self, stream: str, records: Sequence[Any]) -> list[tuple[str, Any, Any]]:
        """Every record's `org_path` from the head office down to its org (in place). Returns
        (stream, record, its copy placed again) of records an earlier batch put under the head
        office alone, whose first org a whole path here names. None named (organisation.yaml has
        no `head_office`): paths are read as given."""
        root = self.head_office
        if root is None:
            return []
        whole = []
        for r in records:
            path = r.org_path
            if path and path[-1] == root and path[0] != root:
                path = path[::-1]  # written from the org up
            if root in path:
                path = path[path.index(root) :]
                whole.append(path)
            r.org_path = path
        learned = set()
        for path in whole:  # before the partial ones: a batch may hold the org's whole path too
            for depth, org in enumerate(path):
                known = self._above.get(org)
                if known != path[:depth] and not (known and _skips(path[:depth], known)):
                    self._above[org] = path[:depth]
                    learned.add(org)
        for r in records:
            if root not in r.org_path:
                written = r.org_path or [r.org_id]
                if written[0] not in self._above:
                    self._guessed.setdefault(written[0], []).append((stream, r, written))
                r.org_path = [*self._above.get(written[0], [root]), *written]
        return [
            (s, r, msgspec.structs.replace(r, org_path=[*self._above[org], *written]))
            for org in learned & self._guessed.keys()
            for s, r, written in self._guessed.pop(org)
        ]

    def path_of(self, org: str, written: Sequence[str]) -> Sequence[str]:
        """The org's path from the head office as the tree knows it, where that holds every org the
        written path does and more; else as written. Seed 004 机构设置(3): the mobile banker's
        administrator creates a second-level branch (二级分行) by hand, so HR places a sub-branch
        under it (HO/B01/B01A/S0111) while the core system's customer export, by its accounting
        hierarchy, skips it (HO/B01/S0111): a probe's second-level head reading her own
        sub-branch's customers was out of scope. Read only where a path missed its reader."""
        above = self._above.get(org)
        if above is None:
            return written
        known = [*above, org]
        return known if _skips(written, known) else written


def _skips(written: Sequence[str], known: Sequence[str]) -> bool:
    """`written` is `known` with some of its levels left out, in order, and at least one."""
    rest = iter(known)
    return len(written) < len(known) and all(org in rest for org in written)
