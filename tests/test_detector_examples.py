"""Every detector's example cases from its policy file (panther-analysis style), one test each."""

from __future__ import annotations

import pytest

from detectors import load_detectors
from detectors.examples import run_case
from policy import load_policy
from policy.catalog import Catalog

_policy = load_policy()
_specs = load_detectors(_policy)
CASES = [(spec, case) for spec in _specs for case in spec.section.tests]


@pytest.mark.parametrize(("spec", "case"), CASES, ids=[f"{s.kind}: {c['name']}" for s, c in CASES])
def test_example(spec, case) -> None:
    result = run_case(spec, Catalog(_policy), case)
    assert result.passed, result.reason


def test_every_detector_has_firing_and_quiet_examples() -> None:
    for spec in _specs:
        outcomes = {c["fires"] for c in spec.section.tests}
        assert outcomes == {True, False}, f"{spec.kind} needs examples that fire and that must not"
