"""A summary cites the clause it stands on as quoted and in English (`Clause.cited`): an
English-reading analyst read art. 5's tiers, an authority step's count and the seed rule a reason
enforces in Chinese only, in the summary the SOC reads, the OCSF `message` and `lifemon alerts
show`. The ids stay those of before: hash(detector, rule, key, window), no text in it."""

from __future__ import annotations

import re
import shutil
from dataclasses import replace
from typing import Any

import pytest
from conftest import T0, access, entitlement, fed, refs
from test_transfer_policy import inquiry

from detectors import load_detectors
from policy import DEFAULT_DIR, load_policy
from policy.catalog import Catalog
from schemas.models import AccessEvent, Customer
from streams.alerts import latest, to_ocsf
from streams.engine import Engine
from streams.pseudonym import Pseudonymizer

HOUR = 3_600_000
B01 = ["HO", "B01"]


def customer(cid: str, org: str) -> Customer:
    return Customer(customer_id=cid, ts=0, org_id=org, org_path=[*B01, org])


def params_of(policy: Any, kind: str) -> Any:
    """`kind`'s parameters as its detector reads them (each `seed NNN` named as policy/references.yaml says)."""
    return next(s for s in load_detectors(policy) if s.kind == kind).params


def judged(
    policy: Any,
    kind: str,
    stream: str,
    events: list[Any],
    params: dict | None = None,
    **references: list[Any],
) -> list[Any]:
    """The newest revision of each alert `kind` raises on `events`, once the input has ended;
    `params`: its parameters changed, as a bank's folder would."""
    (spec,) = [s for s in load_detectors(policy) if s.kind == kind]
    spec = replace(spec, params=spec.params.model_copy(update=params or {}))
    engine = Engine([spec], Catalog(policy), pseudonymize=Pseudonymizer(b"unit-test-key-0123456789"))
    for name, records in references.items():
        engine.apply_reference(name, refs(name, records))
    alerts = engine.process(stream, "t", 0, fed(stream, sorted(events, key=lambda e: e.ts), "t"))
    return latest(sorted(alerts + engine.advance() + engine.drain(), key=lambda a: a.revision))


def slow_property_reads() -> list[AccessEvent]:
    """12 customers' balances an hour for 5 hours: under every role threshold, past art. 5's 50."""
    return [
        e for h in range(5) for e in access(customers=12, first_customer=h * 100, start=h * HOUR, every_s=300)
    ]


def a_days_list() -> list[AccessEvent]:
    """A branch product manager's 160 customers' names, IDs and mobiles in 8 hours, 20 an hour (under
    the role's hourly 150): past the role's day measure of 150."""
    return [
        AccessEvent(
            event_id=f"p-{i}",
            ts=T0 + HOUR + i * 180_000,
            actor_id="p1",
            actor_org="B01",
            system="crm",
            action="query",
            subject_ids=[f"C{i:07d}"],
            purpose="marketing",
            fields=["customer_name", "id_document_no", "mobile_phone"],
        )  # fmt: skip
        for i in range(160)
    ]


# each case: what it runs, the clause its summary cites, and the id its alert had before the
# summary cited the English (lifemon before the forty-seventh stop, the same input)
CASES = {
    "art. 5 tier": (
        lambda p: judged(p, "bulk_query", "access", slow_property_reads(), entitlements=[entitlement()]),
        lambda p: params_of(p, "bulk_query").escalation[0].regulation,
        "4a72e27f3482a87ff5b253c424279c08",
    ),
    "day measure": (
        lambda p: judged(
            p,
            "bulk_query",
            "access",
            a_days_list(),
            entitlements=[entitlement("p1", role="br_product_mgmt", org="B01")],
        ),  # fmt: skip
        lambda p: params_of(p, "bulk_query").day_measure_regulation,
        "69fbffae7520b3c252d5c99a2d6db0fa",
    ),
    "authority step": (
        lambda p: judged(p, "transfer_policy", "transfer", [inquiry(50)]),
        lambda p: params_of(p, "transfer_policy").authority_provision.steps[0].regulation,
        "666bfa5c4ac4e0af407fdd8957a081f7",
    ),
    "reason's source": (
        lambda p: judged(
            p,
            "unauthorized_lookup",
            "access",
            access(customers=1, first_customer=10, start=HOUR),
            entitlements=[entitlement()],
            customers=[customer("C0000010", "S0102")],
        ),  # fmt: skip
        lambda p: params_of(p, "unauthorized_lookup").reasons["out_of_scope"].source,
        "8c2fbb8b4ac454fdde7fdcf7e4a3c135",
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_a_summary_cites_its_clause_as_quoted_and_in_english_under_the_id_it_had(policy, case) -> None:
    run, clause_of, before = CASES[case]
    (alert,) = run(policy)
    clause = clause_of(policy)
    assert f"{clause.zh} / {clause.en}" in alert.summary, alert.summary
    assert to_ocsf(alert)["message"] == alert.summary  # what a SIEM shows
    assert alert.alert_id == before


@pytest.fixture(scope="module")
def reworded(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The shipped policy with the English of every clause of the detectors' files reworded."""
    folder = tmp_path_factory.mktemp("reworded") / "policy"
    shutil.copytree(DEFAULT_DIR, folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    for path in folder.glob("detectors/*.yaml"):
        text = path.read_text(encoding="utf-8")
        path.write_text(re.sub(r'\ben: "', 'en: "(reworded) ', text), encoding="utf-8")
    return load_policy(folder)


@pytest.mark.parametrize("case", CASES)
def test_a_clauses_english_reworded_is_the_summarys_and_the_id_stays(policy, reworded, case) -> None:
    """The English a bank's folder writes is the one cited; the id does not follow the text."""
    run, clause_of, before = CASES[case]
    (shipped,), (alert,) = run(policy), run(reworded)
    clause = clause_of(reworded)
    assert clause.en.startswith("(reworded) ") and f"{clause.zh} / {clause.en}" in alert.summary
    assert alert.summary != shipped.summary and alert.alert_id == shipped.alert_id == before


def test_a_folder_naming_no_day_measure_clause_cites_none(policy) -> None:
    """`day_measure_regulation` is the bank's own rule: a folder written before it was cites none,
    never the shipped bank's."""
    ent = entitlement("p1", role="br_product_mgmt", org="B01")
    (alert,) = judged(
        policy, "bulk_query", "access", a_days_list(), {"day_measure_regulation": None}, entitlements=[ent]
    )
    assert alert.summary.endswith("reached the role day measure of 150")
