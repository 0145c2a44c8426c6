"""As-of registries: a batch lookup gives what one lookup per (key, time) gives."""

from __future__ import annotations

from conftest import T0, entitlement, refs

from streams.registries import AsOfRegistry


def test_a_batch_lookup_agrees_with_one_lookup_each() -> None:
    registry: AsOfRegistry = AsOfRegistry("actor_id")
    versions = [
        entitlement("once", ts=T0),
        entitlement("twice", ts=T0),
        entitlement("twice", role="wealth_manager", ts=T0 + 1000),
        entitlement("late", ts=T0 + 5000),
    ]
    for record in refs("entitlements", versions):
        registry.put(record)
    keys = ["once", "twice", "late", "nobody"]
    times = [T0 - 1, T0, T0 + 999, T0 + 1000, T0 + 4999, T0 + 5000, T0 + 10**9]
    pairs = [(k, t) for k in keys for t in times]
    found = registry.as_of_many([k for k, _ in pairs], [t for _, t in pairs])
    assert found == [registry.as_of(k, t) for k, t in pairs]
    assert found[times.index(T0 + 999) + len(times)].roles == ["lobby_manager"]  # "twice" before its change
    assert found[times.index(T0 + 1000) + len(times)].roles == ["wealth_manager"]
    assert sum(v is None for v in found) == 1 + 1 + 5 + len(times)  # before a first version, or unknown
