"""detectors/legal_tally.py's counts against each other: what a close records of every tier in one
pass is what `count` gives tier by tier."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.legal_tally import count, records_by_tier

CATEGORY_TIERS = {(): (), ("a",): (0,), ("b",): (1,), ("a", "b"): (0, 1), ("c",): (2,), ("a", "c"): (0, 2)}
ENTRY = st.tuples(
    st.integers(0, 20),  # ts
    st.sampled_from(["c1", "c2", "c3", "#e9"]),  # customers, and rows naming none
    st.just(1000),
    st.integers(1, 40),  # records
    st.sampled_from(sorted(CATEGORY_TIERS)),
    st.integers(1, 3),
)


@settings(max_examples=300, deadline=None, database=None)
@given(entries=st.lists(ENTRY, max_size=30), since=st.integers(-1, 20))
def test_records_by_tier_is_count_of_each_tier(entries: list, since: int) -> None:
    by_tier = records_by_tier(3, entries, since, CATEGORY_TIERS.__getitem__)
    assert by_tier == [count(i, entries, since, CATEGORY_TIERS.__getitem__)[0] for i in range(3)]
