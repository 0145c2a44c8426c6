"""Fast lookups derived once from a validated Policy: the class of a set of fields (with the
combination rule of JR/T 0171 §4.2), categories, roles. Detectors call these per event."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache

from policy.model import CLASS_RANK, JrClass, Policy
from policy.sdk_declarations import SdkDeclarations

UNKNOWN_FIELD_CLASS = JrClass.C1  # JR/T 0171 §4.2 C1 c): PFI not listed under C2/C3 is C1


class Catalog:
    def __init__(self, policy: Policy):
        self.policy = policy
        fields = policy.classification.fields
        self.field_class = {fid: f.jr_class for fid, f in fields.items()}
        self.field_category = {fid: f.category for fid, f in fields.items()}
        self.auth_helpers = frozenset(fid for fid, f in fields.items() if f.auth_helper)
        self.combinations = [(frozenset(c.fields), c.jr_class) for c in policy.classification.combinations]
        self.roles = policy.organisation.roles
        # SDK telemetry names SDK field ids (policy/sdks.yaml), some of which are PFI with a class
        self.sdk_field_class = {fid: f.jr_class for fid, f in policy.sdks.sdk_fields.items()}
        self.sdk = SdkDeclarations(policy.sdks)  # declarations by SDK and app version, PoliCheck labels
        self._classify = lru_cache(maxsize=65536)(self._classify_uncached)
        self._profiles: dict[tuple[str, ...], tuple[JrClass, tuple[str, ...]]] = {}
        self._sdk_profiles: dict[tuple[str, ...], tuple[JrClass, tuple[str, ...]]] = {}

    def classify(self, field_ids: Iterable[str]) -> JrClass:
        """Highest class among the fields and the combinations they complete."""
        return self._classify(frozenset(field_ids))

    def _classify_uncached(self, fids: frozenset[str]) -> JrClass:
        best = UNKNOWN_FIELD_CLASS
        for fid in fids:
            cls = self.field_class.get(fid, UNKNOWN_FIELD_CLASS)
            if CLASS_RANK[cls] > CLASS_RANK[best]:
                best = cls
        for combo, cls in self.combinations:
            if CLASS_RANK[cls] > CLASS_RANK[best] and combo <= fids:
                best = cls
        return best

    def profile(self, field_ids: Sequence[str]) -> tuple[JrClass, tuple[str, ...]]:
        """(class, sorted categories) of a field list; memoized, since events repeat a few field sets."""
        key = tuple(field_ids)
        found = self._profiles.get(key)
        if found is None:
            found = (self.classify(key), tuple(sorted(self.categories(key))))
            if len(self._profiles) < 100_000:
                self._profiles[key] = found
        return found

    def categories(self, field_ids: Iterable[str]) -> frozenset[str]:
        return frozenset(self.field_category[f] for f in field_ids if f in self.field_category)

    def coverage(self, stream: str, field_ids: Sequence[str]) -> tuple[JrClass, tuple[str, ...]]:
        """(class, field ids the catalog does not know) for a stream's field list. Unknown ids are a
        coverage gap to report, never to drop (DESIGN.md §2); they count as C1 (JR/T 0171 §4.2 C1 c))."""
        if stream != "sdk":
            cls, _ = self.profile(field_ids)
            return cls, tuple(f for f in field_ids if f not in self.field_class)
        key = tuple(field_ids)
        found = self._sdk_profiles.get(key)
        if found is None:
            ranks = [CLASS_RANK[c] for f in key if (c := self.sdk_field_class.get(f)) is not None]
            best = max(ranks, default=CLASS_RANK[UNKNOWN_FIELD_CLASS])
            cls = next(c for c, r in CLASS_RANK.items() if r == best)
            found = (cls, tuple(f for f in key if f not in self.sdk_field_class))
            if len(self._sdk_profiles) < 100_000:
                self._sdk_profiles[key] = found
        return found
