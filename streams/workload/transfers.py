"""Transfers of the simulated bank: the flows its normal day sends out (seed 002 §四-六), near
misses that come close to a rule and must stay silent, and one injected violation per rule.

Recipients, contracts, agreed volumes and assessments are the bank's declarations in
`policy/recipients.yaml`, read through `policy.contracts` (what a contract says is the fact a
violation breaks, as a retention period is). Nothing here reads the detector's own policy file."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

from policy.contracts import RecipientBook
from schemas.models import ConsentStatus, LegalBasis, RecipientType
from streams.workload.base import DAY, HOUR, MINUTE
from streams.workload.traffic import Traffic

# The bank's outgoing flows: recipient -> fields sent (catalog ids). Processors get de-identified,
# encrypted data under contract, but for what their contracts let them have in clear (recipients.yaml
# `identifiable`: the phone numbers a call centre dials); regulators what the law requires; internal systems stay inside;
# partners and the overseas affiliate what each subject separately agreed to, for one purpose.
PROCESSORS = {
    "proc_call_center": ["mobile_phone", "customer_segment"],
    "proc_debt_collection": ["mobile_phone", "loan_details", "repayment_history"],
    "proc_cloud_analytics": ["transaction_record", "customer_segment", "assets"],
    "proc_card_personalization": ["payment_account_no", "customer_name"],
}
REGULATORS = {
    "reg_pbc_credit_reference": ["customer_name", "id_document_no", "loan_details", "repayment_history"],
    "reg_amlmac": ["customer_name", "id_document_no", "payment_account_no", "transaction_record"],
}
INTERNAL = {
    "int_data_warehouse": ["transaction_record", "account_balance", "customer_segment"],
    "int_risk_mgmt": ["loan_details", "repayment_history", "credit_report"],
    "int_crm": ["customer_name", "mobile_phone", "marketing_tags"],
}
PARTNERS = {  # recipient -> (fields, purpose the subjects consented to)
    "tp_insurance_partner": (["customer_name", "mobile_phone"], "insurance_referral"),
    "tp_fund_distributor": (["customer_name", "payment_account_no", "assets"], "fund_distribution"),
}
# what a partner gets de-identified, counted by a list reference: nothing that names a person
# (seed 002 §六.2(1): 确保数据接收方无法重新识别): demographics, holdings
DEIDENTIFIED = {"tp_insurance_partner": ["gender", "occupation"], "tp_fund_distributor": ["assets"]}
OVERSEAS = {
    "os_parent_group_hk": (
        ["customer_name", "payment_account_no", "transaction_record"],
        "group_risk_management",
    )
}
# C3 fields and authentication helpers a careless share might carry (JR/T 0171 §4.2, seed 002 §六.2(4))
LEAKS = (["customer_name", "card_cvn"], ["customer_name", "sms_code"], ["mobile_phone", "otp_code"])
NORMAL_CAP = 0.9  # normal traffic keeps each agreed period under 90 % of its agreement


class Transfers(Traffic):
    def _sharing_consents(self) -> None:
        """Separate consent (seed 004 流程描述(1)⑦) to each partner purpose for some customers, before the
        workload; a few withdraw during it, after which nothing is shared about them."""
        rng = self.rng
        self.book = RecipientBook(self.policy.recipients)
        self.sent: Counter[tuple[str, int]] = Counter()  # (contract, period start) -> records
        self.sharers: dict[str, dict[str, int]] = {}  # purpose -> subject -> consent ends (ms)
        customers = sorted(self.customer_org)
        for purpose in sorted({p for _, p in [*PARTNERS.values(), *OVERSEAS.values()]}):
            chosen = self.sharers[purpose] = {}
            for cid in rng.sample(customers, max(20, len(customers) // 10)):
                self._purpose_consent(
                    cid, self.start - rng.randint(1, 300) * DAY, purpose, ConsentStatus.granted
                )
                chosen[cid] = self.end + DAY
                if rng.random() < 0.1:
                    chosen[cid] = self._ts(0.1, 0.9)
                    self._purpose_consent(cid, chosen[cid], purpose, ConsentStatus.withdrawn)

    def _consenting(self, purpose: str, ts: int, k: int) -> list[str]:
        """k subjects whose separate consent to `purpose` is in force at ts."""
        live = [c for c, ends in self.sharers[purpose].items() if ends > ts]
        return self.rng.sample(live, min(k, len(live)))

    def _send(
        self,
        ts: int,
        rid: str,
        kind: RecipientType,
        fields: list[str],
        *,
        records: int,
        subjects: list[str] | None = None,
        listed: int = 0,
        encrypted: bool = True,
        deidentified: bool = False,
        public: bool = True,
        basis: LegalBasis = LegalBasis.contract,
        purpose: str = "entrusted_processing",
        assessment: str | None = None,
        record_ids: Sequence[str] = (),
    ) -> None:
        """One transfer: named `subjects`, or a reference to a list of `listed` subjects."""
        known = self.book.recipients.get(rid)
        term = self.book.in_force(rid, ts)
        if term is not None and term.contract.volume is not None:
            self.sent[(term.contract.id, self.book.period(term, ts)[0])] += records
        self.out["transfer"].append(
            {
                "ts": ts,
                "transfer_id": self._random_id("T"),
                "sender_system": self.rng.choice(("core_banking", "data_warehouse", "crm", "credit_system")),
                "actor_id": None,
                "recipient_id": rid,
                "recipient_type": kind,
                "recipient_country": known.country if known else "CN",
                "categories": fields,
                "record_count": records,
                "subject_count": len(subjects) if subjects is not None else listed,
                "subject_ids": subjects or [],
                "subject_list_id": None if subjects is not None else f"SL-{self.rng.getrandbits(32):08x}",
                "encrypted": encrypted,
                "deidentified": deidentified,
                "public_network": public,
                "contract_id": term.contract.id if term else (f"CT-{rid}" if known else None),
                "legal_basis": basis,
                "assessment_id": assessment,
                "purpose": purpose,
                "record_ids": list(record_ids),
            }
        )

    def _consented_share(
        self, ts: int, rid: str, subjects: list[str], records: int | None = None, **kw: Any
    ) -> None:
        """A share of named subjects on their separate consent to the flow's purpose (seed 004 流程描述(1)⑦)."""
        fields, purpose = PARTNERS.get(rid) or OVERSEAS[rid]
        kind = RecipientType.third_party if rid in PARTNERS else RecipientType.overseas
        self._send(
            ts,
            rid,
            kind,
            kw.pop("fields", fields),
            records=len(subjects) if records is None else records,
            subjects=subjects,
            basis=LegalBasis.separate_consent,
            purpose=purpose,
            **kw,
        )

    def _room(self, rid: str, ts: int, cap: float = NORMAL_CAP) -> int:
        """Records the recipient may still get in ts's agreed period, keeping under `cap` of it."""
        term = self.book.in_force(rid, ts)
        if term is None or term.contract.volume is None:
            return 1 << 30
        used = self.sent[(term.contract.id, self.book.period(term, ts)[0])]
        return int(term.contract.volume.max_records * cap) - used

    # -- normal day -----------------------------------------------------------------------------
    def _normal_transfer(self) -> None:
        rng = self.rng
        for ts in sorted(self._ts() for _ in range(self._target("transfer"))):
            kind = rng.choices(
                ("processor", "regulator", "internal", "partner", "overseas"), (10, 4, 6, 3, 1)
            )[0]
            if kind == "partner" and self._share(ts):
                continue
            if kind == "overseas" and self._abroad(ts):
                continue
            if kind == "processor":
                rid = rng.choice(sorted(PROCESSORS))
                n = min(rng.randint(10, 5000), self._room(rid, ts))
                if n > 0:
                    self._send(
                        ts,
                        rid,
                        RecipientType.processor,
                        PROCESSORS[rid],
                        records=n,
                        listed=rng.randint(1, n),
                        deidentified=True,
                    )
                    continue
            if kind == "internal":  # stays on the private network: encryption is the system's choice
                rid = rng.choice(sorted(INTERNAL))
                n = rng.randint(10, 5000)
                self._send(
                    ts,
                    rid,
                    RecipientType.internal,
                    INTERNAL[rid],
                    records=n,
                    listed=n,
                    encrypted=rng.random() < 0.5,
                    public=False,
                    basis=LegalBasis.none,
                    purpose="analysis",
                )
                continue
            rid = rng.choice(sorted(REGULATORS))  # a regulator: also what a full agreement falls back to
            n = rng.randint(10, 5000)
            self._send(
                ts,
                rid,
                RecipientType.regulator,
                REGULATORS[rid],
                records=n,
                listed=n,
                public=False,
                basis=LegalBasis.legal_obligation,
                purpose="regulatory_report",
            )

    def _share(self, ts: int) -> bool:
        """A partner share: named subjects who all consented (some withdraw later: a near miss in
        time), or de-identified data under a list reference, which needs no consent (seed 002 §六.2(1))."""
        rng = self.rng
        rid = rng.choice(sorted(PARTNERS))
        _, purpose = PARTNERS[rid]
        if rng.random() < 0.3:
            n = min(rng.randint(10, 300), self._room(rid, ts))
            if n <= 0:
                return False
            self._send(
                ts,
                rid,
                RecipientType.third_party,
                DEIDENTIFIED[rid],
                records=n,
                listed=n,
                deidentified=True,
                purpose=purpose,
            )
            return True
        subjects = self._consenting(purpose, ts, rng.randint(1, 20))
        n = len(subjects) * rng.randint(1, 3)
        if not subjects or n > self._room(rid, ts):
            return False
        self._consented_share(ts, rid, subjects, records=n)
        return True

    def _abroad(self, ts: int) -> bool:
        """Cross-border to the affiliate: separate consent of each subject and a valid assessment."""
        rid = next(iter(OVERSEAS))
        _, purpose = OVERSEAS[rid]
        subjects = self._consenting(purpose, ts, self.rng.randint(1, 10))
        assessment = self.book.assessment_at(rid, ts)
        if not subjects or assessment is None or len(subjects) > self._room(rid, ts):
            return False
        self._consented_share(ts, rid, subjects, assessment=assessment)
        return True

    # -- injected ---------------------------------------------------------------------------------
    def _inject_transfer_policy(self) -> None:
        """Seed 002 §四(3), §六.1-5, seed 004 流程描述(4)⑩⑪⑬: one variant per rule, in turn."""
        self._sharing_consents()
        for i in range(self._count(7)):
            variant, k = i % 7, i // 7
            rid, rule, ts, text = [
                self._leak_c3,
                self._share_without_consent,
                self._entrust_identifiable,
                self._send_in_clear,
                self._cross_border,
                self._unapproved,
                self._over_agreement,
            ][variant](k)
            self._violation("transfer_policy", rule, rid, ts, ts, text)
        self._near_full_agreement()  # last: it tops up what the violations already sent

    def _leak_c3(self, k: int) -> tuple[str, str, int, str]:
        """Seed 002 §六.2(4): C3 and authentication helpers are never shared, consent or not."""
        rid, ts = "tp_insurance_partner", self._ts(0.05, 0.95)
        _, purpose = PARTNERS[rid]
        fields = LEAKS[k % len(LEAKS)]
        subjects = self._consenting(purpose, ts, self.rng.randint(1, 5))
        self._consented_share(ts, rid, subjects, fields=fields, public=False)
        return rid, "c3_shared", ts, f"Shared {', '.join(fields)} (C3 / authentication helper) with {rid}."

    def _share_without_consent(self, k: int) -> tuple[str, str, int, str]:
        """Seed 002 §六.2(1): every subject's explicit consent; a claimed basis is not one."""
        rid, ts = "tp_insurance_partner", self._ts(0.05, 0.95)
        _, purpose = PARTNERS[rid]
        subjects = self._consenting(purpose, ts, self.rng.randint(0, 8))
        outsider = self.rng.choice([c for c in sorted(self.customer_org) if c not in self.sharers[purpose]])
        subjects.insert(self.rng.randrange(len(subjects) + 1), outsider)
        self._consented_share(ts, rid, subjects)
        return (
            rid,
            "sharing_without_consent",
            ts,
            (f"Shared {len(subjects)} customers' names and phones with {rid}; {outsider} never consented."),
        )

    def _entrust_identifiable(self, k: int) -> tuple[str, str, int, str]:
        """Seed 002 §六.4(3): entrusted data is de-identified; encryption alone does not count, nor a
        flag on a file naming a person beyond what the processor's contract lets it receive in clear
        (recipients.yaml `identifiable`). The call centre's and the collector's own flows are what
        their contracts let them have in clear (the phone numbers), flagged either way: no violation."""
        ts, n = self._ts(0.05, 0.95), self.rng.randint(10, 5000)
        if k % 2 == 0:
            rid = "proc_card_personalization"  # its cards carry the name and number, never the ID number
            fields = [*PROCESSORS[rid], "id_document_no"]
            self._send(ts, rid, RecipientType.processor, fields, records=n, listed=n, deidentified=True)
            return (
                rid,
                "entrusted_not_deidentified",
                ts,
                f"Sent {rid} ID numbers in a file flagged de-identified.",
            )
        rid = "proc_cloud_analytics"  # it gets nothing in clear; the file says it is identifiable
        self._send(ts, rid, RecipientType.processor, PROCESSORS[rid], records=n, listed=n)
        return rid, "entrusted_not_deidentified", ts, f"Entrusted {rid} with encrypted but identifiable data."

    def _send_in_clear(self, k: int) -> tuple[str, str, int, str]:
        """Seed 002 §四(3): C2 over a public network is encrypted, de-identified or not."""
        rid, ts = self.rng.choice(sorted(PROCESSORS)), self._ts(0.05, 0.95)
        n = self.rng.randint(10, 5000)
        self._send(
            ts,
            rid,
            RecipientType.processor,
            PROCESSORS[rid],
            records=n,
            listed=n,
            encrypted=False,
            deidentified=True,
        )
        return (
            rid,
            "unencrypted_public_network",
            ts,
            f"Sent C2 data to {rid} over a public network unencrypted.",
        )

    def _cross_border(self, k: int) -> tuple[str, str, int, str]:
        """Seed 002 §六.5(2)(3): separate consent of each subject, and an assessment."""
        rid, ts = next(iter(OVERSEAS)), self._ts(0.05, 0.95)
        _, purpose = OVERSEAS[rid]
        subjects = self._consenting(purpose, ts, self.rng.randint(1, 6))
        if k % 2 == 0:
            self._consented_share(ts, rid, subjects)
            return (
                rid,
                "cross_border",
                ts,
                f"Sent {len(subjects)} customers' data to {rid} without an assessment.",
            )
        bundled = self.rng.choice([c for c in sorted(self.customer_org) if c not in self.sharers[purpose]])
        self._purpose_consent(bundled, self.start - 30 * DAY, purpose, ConsentStatus.granted, separate=False)
        self._consented_share(ts, rid, [*subjects, bundled], assessment=self.book.assessment_at(rid, ts))
        return (
            rid,
            "cross_border",
            ts,
            f"Sent {bundled}'s data to {rid} on a bundled, not a separate, consent.",
        )

    def _unapproved(self, k: int) -> tuple[str, str, int, str]:
        """Seed 002 §六.2(2): a listed recipient, a contract in force, covering what is sent."""
        ts, n = self._ts(0.05, 0.95), self.rng.randint(10, 200)
        case = k % 3
        rid = ("tp_unlisted_broker", "tp_legacy_partner", "tp_insurance_partner")[case]
        # de-identified as `DEIDENTIFIED`'s (nothing that names a person: a name would need each
        # subject's consent too, a second violation the truth does not list); the insurer's balances
        # are what its contract leaves out
        fields = ["occupation", "account_balance"] if case == 2 else ["gender", "occupation"]
        self._send(
            ts,
            rid,
            RecipientType.third_party,
            fields,
            records=n,
            listed=n,
            deidentified=True,
            purpose="data_cooperation",
        )
        why = (
            "is not an approved recipient",
            "has a contract that expired",
            "has no contract covering balances",
        )
        return rid, "recipient_not_approved", ts, f"Sent de-identified data to {rid}, which {why[case]}."

    def _over_agreement(self, k: int) -> tuple[str, str, int, str]:
        """Seed 002 §六.2(2): the agreed scale. The fund distributor's day passes its agreement by
        1-10 %, over a few de-identified transfers; the last one crosses."""
        rid = "tp_fund_distributor"
        _, purpose = PARTNERS[rid]
        fields = DEIDENTIFIED[rid]
        for _ in range(50):
            t = self._ts(0.05, 0.9)
            term = self.book.in_force(rid, t)
            start, end = self.book.period(term, t) if term else (0, 0)
            if term and term.contract.volume and not self.sent[(term.contract.id, start)]:
                break
        else:
            return self._unapproved(k)  # every agreed day of the workload is taken
        agreed = term.contract.volume.max_records
        lo, hi = max(start, self.start), min(end, self.end)
        times = sorted(self.rng.randrange(max(lo, t - 2 * HOUR), hi) for _ in range(self.rng.randint(3, 6)))
        total = agreed + math.ceil(agreed * self.rng.uniform(0.01, 0.1))
        parts = self._split(agreed - self.rng.randint(1, agreed // 20), len(times) - 1)
        for ts, n in zip(times, [*parts, total - sum(parts)], strict=True):
            self._send(
                ts,
                rid,
                RecipientType.third_party,
                fields,
                records=n,
                listed=n,
                deidentified=True,
                purpose=purpose,
            )
        return (
            rid,
            "volume_exceeded",
            times[-1],
            f"Sent {rid} {total} records in a day; its contract agrees {agreed}.",
        )

    def _near_full_agreement(self) -> None:
        """A near miss: a processor's first day of the workload filled to 95-100 % of its agreement."""
        rid = "proc_debt_collection"
        term = self.book.in_force(rid, self.start)
        if term is None or term.contract.volume is None:
            return
        agreed = term.contract.volume.max_records
        start, end = self.book.period(term, self.start)
        total = agreed - self.rng.randint(0, agreed // 20) - self.sent[(term.contract.id, start)]
        hi = min(end, self.end)
        for n in self._split(total, 4) if total >= 4 else []:
            ts = self.rng.randrange(self.start, max(self.start + MINUTE, hi))
            self._send(
                ts,
                rid,
                RecipientType.processor,
                PROCESSORS[rid],
                records=n,
                listed=min(n, 10_000),
                deidentified=True,
            )

    def _split(self, total: int, parts: int) -> list[int]:
        cuts = sorted(self.rng.sample(range(1, total), parts - 1))
        return [b - a for a, b in zip([0, *cuts], [*cuts, total], strict=True)]
