"""OCSF meaning, not just shape: every alert kind (each registered detector, open, updated, closed)
validates against the OCSF schema shipped by `ocsf-json-schema` (offline), and its class, activity,
status and names are the ones the schema defines for what lifemon means."""

from __future__ import annotations

import jsonschema
import orjson
import pytest
from ocsf_json_schema import OcsfJsonSchemaEmbedded, get_ocsf_schema

from detectors import REGISTRY, load_detectors
from detectors.base import Finding
from detectors.examples import run_all
from schemas.models import AlertStatus, Severity
from streams.alerts import OCSF_VERSION, actor_of, build_alert, to_ocsf

EXPOSURE = {"transfer_policy", "sdk_overcollection"}  # PFI leaving the bank or reaching a third party
CLASSES = {2004: "detection_finding", 2006: "data_security_finding"}


@pytest.fixture(scope="module")
def ocsf() -> dict:
    return get_ocsf_schema(version=OCSF_VERSION)


@pytest.fixture(scope="module")
def validate(ocsf):
    """Validate a document against its class with the profiles its metadata declares."""
    embedded, cache = OcsfJsonSchemaEmbedded(ocsf), {}

    def check(doc: dict) -> None:
        key = (doc["class_uid"], tuple(doc["metadata"].get("profiles", ())))
        if key not in cache:
            schema = embedded.get_class_schema(CLASSES[key[0]], list(key[1]))
            cache[key] = jsonschema.Draft202012Validator(schema)
        cache[key].validate(doc)

    return check


def alert(policy, detector: str, status: AlertStatus, jr_class: str = "C3", events: int = 7):
    finding = Finding(
        detector=detector,
        rule_id=f"LM-{detector}",
        key="k1",
        window_start=1000,
        window_end=2000,
        severity=Severity.critical,
        revision=1 if status is AlertStatus.open else 3,
        closed=status is AlertStatus.closed,
        summary="s",
        jr_class=jr_class,
        actor_id="e1",
        subject_count=61,
        subject_sample=["p1"],
        counts={"records": 61},
        evidence_event_ids=["a"],
        event_count=events,
        first_seen=1000,
        last_seen=1900,
    )
    a = build_alert(finding, policy.detectors[detector])
    assert a.status is status
    return a


def caption(ocsf: dict, class_uid: int, attr: str, value: int) -> str:
    return ocsf["classes"][CLASSES[class_uid]]["attributes"][attr]["enum"][str(value)]["caption"]


@pytest.mark.parametrize("status", list(AlertStatus))
@pytest.mark.parametrize("detector", sorted(REGISTRY))
def test_every_alert_kind_is_valid_ocsf_with_its_meaning(policy, ocsf, validate, detector, status) -> None:
    doc = to_ocsf(alert(policy, detector, status))
    class_uid = 2006 if detector in EXPOSURE else 2004
    assert doc["class_uid"] == class_uid
    validate(doc)
    assert doc["class_name"] == ocsf["classes"][CLASSES[class_uid]]["caption"]
    # the first revision creates the finding, a later one updates it, whatever lifemon's status:
    # New until an analyst works it; lifemon's word is unmapped
    activity_id = 1 if status is AlertStatus.open else 2
    assert doc["activity_id"] == activity_id and doc["type_uid"] == class_uid * 100 + activity_id
    assert doc["activity_name"] == caption(ocsf, class_uid, "activity_id", activity_id)
    assert (doc["status_id"], doc["status"]) == (1, caption(ocsf, class_uid, "status_id", 1)) == (1, "New")
    assert doc["unmapped"]["lifemon_status"] == status.value
    # count is OCSF's number of events in the group, not subjects: the subject count stays in unmapped
    assert doc["count"] == 7 and doc["unmapped"]["subject_count"] == 61
    # OCSF's start and end are the finding's least and most recent events, not the detector's window
    assert (doc["start_time"], doc["end_time"]) == (1000, 1900)
    assert (doc["unmapped"]["window_start"], doc["unmapped"]["window_end"]) == (1000, 2000)


def test_a_closed_finding_stays_new_to_a_siem_however_it_was_batched(policy, validate) -> None:
    """unauthorized_lookup judges an episode once the watermark passed it, so most of its alerts are
    closed at their first revision: sent as Close (status Closed), a probe's SIEM kept 12 of 15 out
    of its open queue; and revision numbers follow the batching, so the same episode went out as a
    Create from one batch and a Close from small ones (a review). A detector's window ending is no
    Close: every revision is New, created first and updated after."""
    closed = alert(policy, "unauthorized_lookup", AlertStatus.closed)
    for revision, activity in ((1, 1), (3, 2)):
        doc = to_ocsf(closed.model_copy(update={"revision": revision}))
        validate(doc)
        assert (doc["activity_id"], doc["status_id"], doc["status"]) == (activity, 1, "New")
        assert doc["unmapped"]["lifemon_status"] == "closed" and "status:closed" in doc["metadata"]["labels"]


def test_an_sdk_and_a_recipient_are_no_user_accounts(policy, validate) -> None:
    """The probe: a Hong Kong affiliate and an SDK went out as `actor.user` of type User, which a
    SIEM reads as a login account. An SDK is the app code that collected; a recipient is where the
    data went; an employee stays a user."""
    sdk = to_ocsf(alert(policy, "sdk_overcollection", AlertStatus.open))
    validate(sdk)
    assert sdk["actor"] == {"app_name": "e1", "app_uid": "e1"}
    sent = to_ocsf(alert(policy, "transfer_policy", AlertStatus.open))
    validate(sent)
    assert sent["dst_endpoint"] == {"name": "e1", "uid": "e1"} and "actor" not in sent
    read = to_ocsf(alert(policy, "bulk_query", AlertStatus.open))
    assert read["evidences"] == [{"actor": {"user": {"uid": "e1", "type_id": 1, "type": "User"}}}]
    # a deleted record's last use, a transfer: the recipient in a Detection Finding's evidence
    used = alert(policy, "deleted_record_use", AlertStatus.open).model_copy(
        update={"actor_kind": "recipient"}
    )
    doc = to_ocsf(used)
    validate(doc)
    assert doc["evidences"] == [{"dst_endpoint": {"name": "e1", "uid": "e1"}}]
    assert {actor_of(d) for d in (sdk, sent, read, doc)} == {"e1"}
    # a system's account, as a retention deadline's alert names the system keeping the record
    kept = alert(policy, "retention_overrun", AlertStatus.open).model_copy(update={"actor_kind": "system"})
    doc = to_ocsf(kept)
    validate(doc)
    assert doc["evidences"] == [{"actor": {"user": {"uid": "e1", "type_id": 3, "type": "System"}}}]


def test_a_finding_raised_by_an_absence_has_no_count(policy, validate) -> None:
    """A retention deadline that passed aggregates no event: OCSF's count would claim occurrences."""
    doc = to_ocsf(alert(policy, "retention_overrun", AlertStatus.open, events=0))
    validate(doc)
    assert "count" not in doc


def test_every_detector_counts_the_events_it_aggregates(policy, catalog) -> None:
    """Over every detector's example cases: an alert's count covers its evidence (which keeps only
    the first few) and is zero exactly when nothing but an absence raised it."""
    seen = set()
    for result in run_all(load_detectors(policy), catalog):
        for a in result.alerts:
            seen.add(a.detector)
            assert a.event_count >= len(a.evidence_event_ids), (result.name, a.event_count)
            assert (a.event_count == 0) == (not a.evidence_event_ids), result.name
    assert seen == set(REGISTRY)


def test_jr_class_goes_where_ocsf_puts_a_data_classification(policy, validate) -> None:
    leak = to_ocsf(alert(policy, "transfer_policy", AlertStatus.open, jr_class="C3"))
    ds = leak["data_security"]
    assert (ds["confidentiality_id"], ds["confidentiality"]) == (99, "JR/T 0171-2020 C3")
    assert ds["category_id"] == 3 and ds["data_lifecycle_state_id"] == 2 and "resources" not in leak
    read = to_ocsf(alert(policy, "bulk_query", AlertStatus.open, jr_class="C2"))
    (resource,) = read["resources"]
    assert resource["data_classification"]["confidentiality"] == "JR/T 0171-2020 C2"
    assert "data_security" not in read
    # the schema would catch a classification outside OCSF's enum
    with pytest.raises(jsonschema.ValidationError):
        validate({**leak, "data_security": {**ds, "confidentiality_id": 7}})
    with pytest.raises(jsonschema.ValidationError):  # nor a classification without its profile
        validate({**read, "metadata": {**read["metadata"], "profiles": []}})


def test_the_first_revision_sent_creates_the_finding_whatever_its_number(policy, validate) -> None:
    """probe_v1 F7: a checkpoint sends each alert's newest revision, so one opened and revised
    within it went out as revision 2, an Update of a finding the SIEM never had (7 of 59 alerts).
    The first revision sent creates it; a later checkpoint's updates it."""
    from streams.alerts import latest

    first, second, third = (
        alert(policy, "bulk_query", AlertStatus.open).model_copy(update={"revision": n}) for n in (1, 2, 3)
    )
    (folded,) = latest([first, second])
    (again,) = latest([folded, third])  # the runtime folds the engine's batches until its checkpoint
    for sent in (folded, again):
        doc = to_ocsf(sent)
        validate(doc)
        assert (doc["activity_id"], doc["activity_name"], doc["type_uid"]) == (1, "Create", 200401)
    (later,) = latest([second, third])  # revision 1 went out in an earlier checkpoint
    assert (to_ocsf(later)["activity_id"], to_ocsf(later)["type_uid"]) == (2, 200402)
    assert folded.model_dump() == second.model_dump()  # nothing of it in the record itself


@pytest.mark.integration
def test_an_alert_opened_and_revised_in_one_checkpoint_reaches_the_topic_as_a_create(
    broker, ch, names, policy, catalog
) -> None:
    """Through the runtime on Tansu: a spree opened and revised within one checkpoint is one record
    on pfi.alerts, a Create; after a restart (its revision number restored from the changelog) the
    next revision is an Update, never a second Create."""
    from conftest import access, entitlement
    from test_pipeline import make_config, monitor, read_all, send

    config = make_config(names, broker, "chdb://unused", checkpoint_interval_s=3600)
    # batches of 20 between checkpoints: the spree opens in one batch and grows in the next ones
    config = config.model_copy(update={"kafka": config.kafka.model_copy(update={"batch_size": 20})})
    t = config.topics
    first = monitor(config, ch, policy, catalog)
    send(broker, t.entitlements, [entitlement("e1")])
    send(broker, t.access, access("e1", customers=70, every_s=5))
    first.run(idle_exit_s=1.5, max_seconds=60)
    sent = [orjson.loads(m.value()) for m in read_all(broker, t.alerts)]
    assert [(d["unmapped"]["revision"] > 1, d["activity_name"]) for d in sent] == [(True, "Create")]

    send(broker, t.access, access("e1", customers=10, first_customer=70, start=350_000, every_s=5))
    monitor(config, ch, policy, catalog).run(idle_exit_s=1.5, max_seconds=60)
    sent = [orjson.loads(m.value()) for m in read_all(broker, t.alerts, expect_at_least=2)]
    assert [d["activity_name"] for d in sent] == ["Create", "Update"], sent
    assert sent[1]["unmapped"]["revision"] > sent[0]["unmapped"]["revision"]
