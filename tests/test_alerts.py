"""Alerts as the SOC receives them: valid OCSF 1.3 Detection Findings, deterministic ids,
pseudonymized subjects."""

from __future__ import annotations

import hashlib

import jsonschema
import pytest
from ocsf_json_schema import OcsfJsonSchemaEmbedded, get_ocsf_schema

from detectors.base import Finding
from schemas.models import AlertStatus, Severity
from streams.alerts import ID_CHARS, OCSF_VERSION, SUMMARY_CHARS, bounded, build_alert, latest, to_ocsf
from streams.pseudonym import Pseudonymizer


@pytest.fixture(scope="module")
def detection_finding_schema() -> dict:
    return OcsfJsonSchemaEmbedded(get_ocsf_schema(version=OCSF_VERSION)).get_class_schema(
        "detection_finding", ["data_classification"]
    )


def finding(**kw) -> Finding:
    base = dict(
        detector="bulk_query",
        rule_id="LM-BQ-001",
        key="e1",
        window_start=1000,
        window_end=2000,
        severity=Severity.high,
        revision=1,
        closed=False,
        summary="e1 read PFI of 60 customers",
        jr_class="C2",
        actor_id="e1",
        actor_org="S0101",
        subject_count=60,
        subject_sample=["C0000001", "C0000002"],
        counts={"class_C2": 60},
        evidence_event_ids=["a", "b"],
        first_seen=1000,
        last_seen=1900,
    )
    return Finding(**{**base, **kw})


def test_alert_is_a_valid_ocsf_detection_finding(policy, detection_finding_schema) -> None:
    alert = build_alert(finding(), policy.detectors["bulk_query"])
    doc = to_ocsf(alert)
    jsonschema.validate(doc, detection_finding_schema)
    assert doc["type_uid"] == 200401 and doc["finding_info"]["analytic"]["uid"] == "LM-BQ-001"
    updated = to_ocsf(alert.model_copy(update={"revision": 2, "status": AlertStatus.updated}))
    jsonschema.validate(updated, detection_finding_schema)
    assert (
        updated["activity_name"] == "Update" and updated["finding_info"]["uid"] == doc["finding_info"]["uid"]
    )
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**doc, "severity_id": "high"}, detection_finding_schema)


def test_alert_ids_are_deterministic_and_distinguish_windows() -> None:
    assert finding().alert_id == finding(revision=5, subject_count=99).alert_id
    assert finding().alert_id != finding(window_start=1001).alert_id
    assert finding().alert_id != finding(key="e2").alert_id


def test_subjects_are_pseudonymized_as_they_enter_the_engine(policy, catalog) -> None:
    """Detector state, findings and alerts only ever hold keyed pseudonyms of customer ids."""
    from conftest import access, entitlement, fed, refs

    from detectors import load_detectors
    from streams.engine import Engine

    def run(key: bytes):
        engine = Engine(load_detectors(policy), catalog, Pseudonymizer(key))
        engine.apply_reference("entitlements", refs("entitlements", [entitlement("e1")]))
        (alert,) = latest(
            engine.process("access", "t", 0, fed("access", access("e1", customers=60))) + engine.drain()
        )
        return alert, engine.changes(0)

    (a1, state1), (a2, _) = run(b"a" * 32), run(b"b" * 32)
    assert a1.subjects_sample[0] == Pseudonymizer(b"a" * 32)("C0000000") != a2.subjects_sample[0]
    assert "C000" not in str(state1) and "C000" not in a1.model_dump_json()
    with pytest.raises(ValueError, match="at least 16 bytes"):
        Pseudonymizer(b"short")


def test_latest_keeps_the_newest_revision_per_alert(policy) -> None:
    section = policy.detectors["bulk_query"]
    alerts = [build_alert(finding(revision=r, subject_count=50 + r), section) for r in (1, 3, 2)]
    (only,) = latest(alerts)
    assert only.revision == 3 and only.subject_count == 53


CARD, RIC, MOBILE = "6222020200001234562", "440304199001010038", "13912345678"  # valid check digits


def test_a_producers_ids_built_from_personal_numbers_are_masked_in_the_alert(policy) -> None:
    """Event and record ids are the producer's: one that builds them from a card, resident ID or
    mobile number must not put that number in the alert (summary, evidence, OCSF). Numbers without
    such a form (times, counts, dates, ordinary ids) stay as they are."""
    alert = build_alert(
        finding(
            summary=f"record ACCT-{CARD} on core (account) kept past its 1826-day retention, due 2031-01-01; "
            f"holder {RIC[:6]} {RIC[6:]}, phone +86 139-1234-5678, 1767225600000 ms, 60 records",
            evidence_event_ids=[f"open-{CARD}-1", f"kyc:{RIC}", f"sms-{MOBILE}", "ev-20260101-000123"],
        ),
        policy.detectors["bulk_query"],
    )
    doc = alert.model_dump_json() + str(to_ocsf(alert))
    for number in (CARD, RIC, MOBILE, RIC[6:], "139-1234-5678"):
        assert number not in doc
    assert alert.summary.startswith("record ACCT-{bank_card} on core") and "{cn_ric}" in alert.summary
    assert "phone {cn_mobile}" in alert.summary and "1767225600000 ms, 60 records" in alert.summary
    assert "due 2031-01-01" in alert.summary
    assert alert.evidence_event_ids == [
        "open-{bank_card}-1",
        "kyc:{cn_ric}",
        "sms-{cn_mobile}",
        "ev-20260101-000123",
    ]


def test_a_revision_says_its_content_in_its_uid_and_its_rank_in_a_header(policy) -> None:
    """After a crash the same revision number can go out with other content (54 records, then 55):
    the OCSF uid names the content, so a SIEM that drops a uid it has seen keeps both, and the
    `lifemon.version` header ranks them as ClickHouse does (the fuller wins, whatever came last)."""
    from streams.sinks.kafka import encode_alert

    section = policy.detectors["bulk_query"]
    first = build_alert(finding(revision=2, event_count=54), section)
    again = build_alert(finding(revision=2, event_count=54), section)
    other = build_alert(finding(revision=2, event_count=55), section)
    uid = [to_ocsf(a)["metadata"]["uid"] for a in (first, again, other)]
    assert uid[0] == uid[1] != uid[2] and uid[0].startswith(f"{first.alert_id}-2-")
    version = [int(dict(encode_alert(a)[2])["lifemon.version"]) for a in (first, other)]
    assert version[0] < version[1]
    closed = build_alert(finding(revision=3, event_count=55, closed=True), section)
    later = build_alert(finding(revision=1, event_count=1, last_seen=1901), section)
    assert (
        version[1]
        < int(dict(encode_alert(closed)[2])["lifemon.version"])
        < int(dict(encode_alert(later)[2])["lifemon.version"])
    )


# a shipper that copies a request's whole line into the event id (a probe's: each record under
# max_record_bytes, and the alert Kafka refused): ids alike up to their last characters
REQUEST = "GET /api/customer/query?" + "x" * 240_000


def test_an_alert_of_50_events_with_240_kb_ids_fits_well_under_a_mebibyte_and_names_each_apart(
    policy,
) -> None:
    ids = [f"acc-7-{REQUEST}-{i}" for i in range(50)]
    alert = build_alert(finding(evidence_event_ids=ids), policy.detectors["bulk_query"])
    assert len(alert.model_dump_json()) < 20_000 and len(str(to_ocsf(alert))) < 30_000
    kept = alert.evidence_event_ids
    assert len(set(kept)) == 50 and all(len(e) == ID_CHARS for e in kept)
    # findable: the id's start, then a fingerprint of the whole id
    assert all(e.startswith("acc-7-GET /api/customer/query?xxx") for e in kept)
    assert kept[3].endswith("…#" + hashlib.blake2b(ids[3].encode(), digest_size=6).hexdigest())
    short = build_alert(
        finding(evidence_event_ids=["acc-7-2087", "x" * ID_CHARS]), policy.detectors["bulk_query"]
    )
    assert short.evidence_event_ids == ["acc-7-2087", "x" * ID_CHARS]  # an id of a sane length stays whole


def test_an_id_cited_again_is_masked_alike_and_an_overlong_one_is_not_kept(policy) -> None:
    """An id is masked once while alerts cite it (`_copied_id`): a later revision's evidence reads
    as the first's, and a request's whole text is masked at each revision rather than held."""
    from streams.alerts import _copied_id

    section = policy.detectors["bulk_query"]
    ids = [f"open-{CARD}-1", f"sms-{MOBILE}", f"acc-7-{REQUEST}-1"]
    _copied_id.cache_clear()
    first, again = (build_alert(finding(revision=r, evidence_event_ids=ids), section) for r in (1, 2))
    assert again.evidence_event_ids == first.evidence_event_ids
    assert first.evidence_event_ids[:2] == ["open-{bank_card}-1", "sms-{cn_mobile}"]
    assert len(first.evidence_event_ids[2]) == ID_CHARS
    # the two ids and the actor and org (e1, S0101), not the 240 kB one
    assert _copied_id.cache_info().currsize == 4


def test_an_alert_cuts_an_overlong_name_in_its_summary_and_actor_and_keeps_the_rest(policy) -> None:
    transfer_id, actor = "T" + "ab" * 120_000, f"svc-{REQUEST}"
    alert = build_alert(
        finding(
            summary=f"Transfer {transfer_id} from core_banking sent C2 data to proc_call_center unencrypted",
            actor_id=actor,
            actor_org=f"org-{REQUEST}",
        ),
        policy.detectors["bulk_query"],
    )
    assert alert.summary == (
        f"Transfer {bounded(transfer_id)} from core_banking sent C2 data to proc_call_center unencrypted"
    )
    assert alert.actor_id == bounded(actor) and len(alert.actor_id) == ID_CHARS
    assert alert.actor_org is not None and len(alert.actor_org) == ID_CHARS
    # two actors alike up to their last characters stay two
    other = build_alert(finding(actor_id=f"{actor}-2"), policy.detectors["bulk_query"])
    assert other.actor_id != alert.actor_id
    words = " ".join(["word"] * 10_000)  # a summary of ordinary words, too many of them
    assert len(build_alert(finding(summary=words), policy.detectors["bulk_query"]).summary) == SUMMARY_CHARS


def test_an_alert_carries_its_clauses_as_quoted_and_in_english_and_an_older_record_still_reads(
    policy,
) -> None:
    """An alert keeps the clauses its rule cites as quoted (`regulation`, the legal text) and their
    English in the same order (`regulation_en`), in ClickHouse's columns and OCSF's `unmapped`
    alike; a record a lifemon wrote before it kept the English reads with it empty
    (fix_regulation #1)."""
    from schemas.models import Alert

    section = policy.detectors["bulk_query"]
    alert = build_alert(finding(), section)
    assert alert.regulation == [c.zh for c in section.regulation]
    assert alert.regulation_en == [c.en for c in section.regulation]
    assert alert.regulation_en[0].startswith("PIPL art. 51: ")
    unmapped = to_ocsf(alert)["unmapped"]
    assert (unmapped["regulation"], unmapped["regulation_en"]) == (alert.regulation, alert.regulation_en)
    older = alert.model_dump(mode="json")
    del older["regulation_en"]
    assert Alert.model_validate(older).regulation_en == []
