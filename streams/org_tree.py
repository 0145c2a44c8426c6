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

An outlet merged into another (organisation.yaml `org_changes`, 网点撤并) is read as the other from the
day it takes effect, on every record looked up for a time from then on, whatever its feed says:
HR moves the staff on the day and the core system re-homes the customers days later, or the other
way round, and until both did every employee of the outlet read "a customer of the former org"
(`OrgTree.as_read`, `MergedOrgs`). The records keep their orgs as written; a lookup for a time
before the merger reads them so.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Hashable, Sequence
from typing import Any

import msgspec


class OrgTree:
    """Each org's ancestors, learned from the paths the reference feeds give whole."""

    def __init__(self, head_office: str | None, changes: Sequence[tuple[str, str, int]] = ()):
        self.head_office = head_office
        self._above: dict[str, list[str]] = {}  # org -> its ancestors, head office first
        # first org of a path no whole path placed yet -> (stream, record, the path as written)
        self._guessed: dict[str, list[tuple[str, Any, list[str]]]] = {}
        # org merged away -> (the org it merged into, from when): `Policy.org_changes_at`
        self.merged = {gone: (into, at) for gone, into, at in changes}
        self._when = sorted({at for _, _, at in changes})
        # id of a record -> (the record, how many of `_when` had passed, the record as then read):
        # the same copy each time, so a detector's "the same version" by identity still holds
        self._read: dict[int, tuple[Any, int, Any]] = {}

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

    def merged_into(self, org: str, ts: int) -> str:
        """The org `org` is read as at `ts`: itself, or the org it merged into by then, and so on."""
        while (change := self.merged.get(org)) is not None and change[1] <= ts:
            org = change[0]
        return org

    def as_read(self, record: Any, ts: int) -> Any:
        """A customer's or an employee's record (`org_id`, `org_path`) with its orgs as they are at
        `ts`: an org merged away by then is the org it merged into, placed where the tree has that
        one (beside it, where no whole path named it yet). The record itself where none is."""
        if record is None or not self._when or ts < self._when[0]:
            return record
        merged = self.merged
        if record.org_id not in merged and merged.keys().isdisjoint(record.org_path):
            return record
        stage = bisect_right(self._when, ts)
        known = self._read.get(id(record))
        if known is not None and known[0] is record and known[1] == stage:
            return known[2]
        org_id, path = self.merged_into(record.org_id, ts), self._merged_path(record.org_path, ts)
        read = record
        if org_id != record.org_id or path != record.org_path:
            read = msgspec.structs.replace(record, org_id=org_id, org_path=path)
        if len(self._read) >= 100_000:  # the records of merged orgs in use; a restart forgets them alike
            self._read.clear()
        self._read[id(record)] = (record, stage, read)
        return read

    def as_read_many(self, records: list[Any], times: Sequence[int]) -> list[Any]:
        """`as_read` of each record at its time; the list itself where every time is before the first merger."""
        if not self._when or not times or max(times) < self._when[0]:
            return records
        return [self.as_read(r, t) for r, t in zip(records, times, strict=True)]

    def _merged_path(self, path: Sequence[str], ts: int) -> list[str]:
        """`path` with its deepest org merged away by `ts` and everything above it replaced by the
        path of the org it merged into, until no org on it is merged away (the declarations have no
        cycle: policy/model.py `Organisation._check_org_changes`)."""
        path = list(path)
        for _ in range(len(self.merged) + 1):
            gone = [i for i, org in enumerate(path) if self.merged_into(org, ts) != org]
            if not gone:
                break
            i = gone[-1]
            into = self.merged_into(path[i], ts)
            above = self._above.get(into)
            path = [*(path[:i] if above is None else above), into, *path[i + 1 :]]
        return path

    def merge_events(self, events: Sequence[Any], attrs: Sequence[str], lists: Sequence[str] = ()) -> None:
        """Each event's orgs (`attrs`, and the lists `lists`) as they are at its time (in place): a
        campaign approved for a merged outlet's customers is approved for the org that took them."""
        if not self._when:
            return
        for ev in events:
            if ev.ts < self._when[0]:
                continue
            for attr in attrs:
                org = getattr(ev, attr)
                if org is not None:
                    setattr(ev, attr, self.merged_into(org, ev.ts))
            for attr in lists:
                orgs = getattr(ev, attr)
                if orgs:
                    setattr(ev, attr, list(dict.fromkeys(self.merged_into(o, ev.ts) for o in orgs)))


class MergedOrgs:
    """A reference registry (customers, entitlements) as the detectors read it: each record found
    with its orgs as they are at the time asked (`OrgTree.as_read`). The engine writes to the
    registry itself."""

    def __init__(self, registry: Any, tree: OrgTree):
        self.registry, self.tree = registry, tree

    def as_of(self, key: Hashable, ts: int) -> Any:
        return self.tree.as_read(self.registry.as_of(key, ts), ts)

    def as_of_many(self, keys: Sequence[Hashable], times: Sequence[int]) -> list[Any]:
        return self.tree.as_read_many(self.registry.as_of_many(keys, times), times)

    def history(self, key: Hashable) -> list[tuple[int, Any]]:
        return self.registry.history(key)  # type: ignore[no-any-return]

    def granted(self, key: Hashable, ts: int, approval_id: str) -> int | None:
        return self.registry.granted(key, ts, approval_id)  # type: ignore[no-any-return]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.registry, name)

    def __len__(self) -> int:
        return len(self.registry)

    def __contains__(self, key: Hashable) -> bool:
        return key in self.registry


def _skips(written: Sequence[str], known: Sequence[str]) -> bool:
    """`written` is `known` with some of its levels left out, in order, and at least one."""
    rest = iter(known)
    return len(written) < len(known) and all(org in rest for org in written)
