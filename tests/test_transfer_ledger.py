"""The transfer ledger's rows (streams/transfer_ledger.py): what reaches the table of each transfer. A
recipient only as an id the policy declares, its direction as the policy declares it, whatever the
sending system's log calls it. The whole pipeline, the report and the panel: tests/test_lifecycle_panels.py."""

from __future__ import annotations

from typing import Any

import pytest
from test_transfer_policy import transfer

from streams.transfer_ledger import UNDECLARED, UNDECLARED_NAME, TransferLedger


def labels(policy: Any, **kw: Any) -> tuple:
    """(recipient id, name, direction, basis, class, records, subject count, named, subjects) of one transfer."""
    ledger = TransferLedger(policy)
    ledger.add([transfer(**kw)], lambda categories: "C2" if "mobile_phone" in categories else "C1")
    (row,) = ledger.drain()
    return row[2:]


@pytest.mark.parametrize(
    ("sent", "expected"),
    [
        ({}, ("tp_insurance_partner", "third_party")),
        # the bank's record decides: declared abroad is cross-border, whatever the log's country
        ({"recipient_id": "os_parent_group_hk", "recipient_type": "third_party"}, ("os_parent_group_hk", "cross_border")),
        ({"recipient_id": "reg_amlmac", "recipient_type": "third_party"}, ("reg_amlmac", "regulator")),
        # an undeclared one the log calls internal is another controller (recipients.yaml), by no free-text id
        ({"recipient_id": "int_new_subsidiary", "recipient_type": "internal"}, (UNDECLARED, "third_party")),
        ({"recipient_id": "tp_overseas_broker", "recipient_country": "US"}, (UNDECLARED, "cross_border")),
        # a court's asset inquiry under a legal obligation: its declared class of authorities
        (
            {"recipient_id": "court_bj_chaoyang", "recipient_type": "regulator", "legal_basis": "legal_obligation"},
            ("court", "regulator"),
        ),
        # a foreign court's request is provision abroad all the same (PIPL art. 41)
        (
            {"recipient_id": "court_hk_high", "recipient_type": "regulator", "legal_basis": "legal_obligation",
             "recipient_country": "HK"},
            ("court", "cross_border"),
        ),
    ],
)  # fmt: skip
def test_a_recipient_reaches_the_table_as_the_policy_declares_it(policy, sent, expected) -> None:
    rid, _, direction, *_ = labels(policy, **sent)
    assert (rid, direction) == expected


def test_a_row_names_the_declared_recipient_and_counts_its_customers(policy) -> None:
    assert labels(policy) == (
        "tp_insurance_partner",
        f"{policy.recipients.recipients['tp_insurance_partner'].name_zh} / "
        f"{policy.recipients.recipients['tp_insurance_partner'].name_en}",
        "third_party",
        "separate_consent",
        "C2",
        1,
        1,
        1,
        ["C0000001"],
    )
    court = labels(policy, recipient_id="court_x", recipient_type="regulator", legal_basis="legal_obligation")
    assert court[1] == "人民法院 / people's courts"
    # a filing that only counts its customers: none named, its count kept to be read as not named
    counted = labels(policy, recipient_id="nobody", subject_ids=[], subject_count=2400, categories=["branch"])
    assert counted[1:] == (UNDECLARED_NAME, "third_party", "separate_consent", "C1", 1, 2400, 0, [])


def test_one_recipients_labels_serve_its_later_transfers_and_not_anothers(policy) -> None:
    """The labels are looked up once per recipient, type, country and basis."""
    ledger = TransferLedger(policy)
    sent = [
        transfer(n=1),
        transfer(n=2, recipient_id="os_parent_group_hk"),
        transfer(n=3),
        transfer(n=4, recipient_id="court_y", recipient_type="regulator", legal_basis="legal_obligation"),
    ]
    ledger.add(sent, lambda categories: "C2")
    assert [(r[0], r[2], r[4]) for r in ledger.drain()] == [
        (sent[0].event_id, "tp_insurance_partner", "third_party"),
        (sent[1].event_id, "os_parent_group_hk", "cross_border"),
        (sent[2].event_id, "tp_insurance_partner", "third_party"),
        (sent[3].event_id, "court", "regulator"),
    ]
    assert ledger.drain() == []
