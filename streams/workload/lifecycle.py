"""The lifecycle of stored records (`pfi.lifecycle`): normal collection, storage, timely deletion and
destruction, and the retention violations with their near misses.

Sizes come from the seeds and the bank's retention catalog (policy/retention.yaml: the periods and
the bank's 15-day deletion SLA), never from the detector's params. Every line is a
period of calendar days or years in the bank's calendar, ending at 24:00 of its last day
(`Policy.retention_end`, Civil Code art. 201-203): each violation crosses it by a day or more; each
near miss stays a day (or an hour) inside it.
"""

from __future__ import annotations

from policy.model import RetentionRule
from schemas.models import Action, ConsentStatus, LifecycleStage
from streams.workload.base import DAY, HOUR, MINUTE, SYSADMINS, Base, Employee

L = LifecycleStage
DETECTOR = "retention_overrun"
ACCOUNT = ["customer_name", "id_document_no", "mobile_phone", "payment_account_no", "kyc_photo"]
KYC = ["customer_name", "id_document_no", "kyc_photo"]
LOCATION = ["location_trace"]
# before a customer's first location trace, the customer turned location on: before the end of a
# relationship the trace of a former customer follows (a month at most: the injected case's)
LOCATION_ON_BEFORE = 60 * DAY
READ = ("crm", ["customer_name", "mobile_phone"])  # what a use of a stored contact record reads
VARIANTS = 9


class Lifecycle(Base):
    def _rule(self, name: str) -> RetentionRule:
        return self.policy.retention.rules[name]

    def _collect_location(self, ts: int, rid: str, cid: str) -> None:
        """The app's location trace for the nearby-branch service, of a customer who turned location
        on (the privacy policy's 您可开启定位服务) weeks before: a separate consent (seed 004 基本规定
        (4)①, a location trace is sensitive), once, before the customer's earliest collection."""
        if ts <= self.located.get(cid, ts):
            self.located[cid] = ts - LOCATION_ON_BEFORE
            self._purpose_consent(cid, ts - LOCATION_ON_BEFORE, "branch_service", ConsentStatus.granted)
        self._lifecycle(ts, rid, cid, L.collect, "mobile_banker", LOCATION, "branch_service")

    def _due(self, start: int, rule: RetentionRule) -> int:
        """The end of the rule's period counted from the day after `start`."""
        return self.policy.retention_end(start, rule)

    def _past(self, rule: RetentionRule, days: int) -> int:
        """A start whose period under `rule` ended `days` days or more before the workload starts."""
        return self.policy.retention_start(self.start - days * DAY, rule) - DAY

    def _inject_retention_overrun(self) -> None:
        """Seed 002 §五-§七, seed 004 流程描述(1)⑫, (3)①, (5), JR/T 0171 §6.1.3 a), AML Law
        art. 34."""
        rng = self.rng
        location, account = self._rule("location_trace"), self._rule("account_after_closure")
        sla = self.policy.retention.deletion_request_sla_days
        customers = list(self.customer_org)
        for i in range(self._count(VARIANTS)):
            rid, cid, variant = self._record_id(), rng.choice(customers), i % VARIANTS
            if variant == 0:  # a location trace kept a day or more past its 30 days
                ts = self._past(location, rng.randint(1, 60)) - rng.randrange(DAY)
                self._collect_location(ts, rid, cid)
                self._truth(
                    "retention_expired",
                    rid,
                    cid,
                    ts,
                    self._due(ts, location),
                    "location trace kept past 30 days",
                )
            elif variant == 1:  # account data kept past its years after the account's closure
                closed = self._past(account, rng.randint(1, 90))
                cats = ["payment_account_no", "account_open_date"]
                self._lifecycle(closed - rng.randint(365, 3000) * DAY, rid, cid, L.collect, "core_banking", cats, "account_service")  # fmt: skip
                self._lifecycle(closed, rid, cid, L.account_closed, "core_banking", [], None)
                self._truth(
                    "retention_expired",
                    rid,
                    cid,
                    closed,
                    self._due(closed, account),
                    f"account data kept past closure + {account.period}",
                )
            elif variant == 2:  # a deletion request still open a day or more after 15 days
                ts = self.start - (sla + 1 + rng.randint(1, 30)) * DAY - rng.randrange(DAY)
                self._lifecycle(ts - rng.randint(200, 1500) * DAY, rid, cid, L.collect, "crm", READ[1], "customer_service")  # fmt: skip
                self._lifecycle(ts, rid, cid, L.deletion_requested, "crm", [], None)
                self._truth(
                    "deletion_request_overdue",
                    rid,
                    cid,
                    ts,
                    self.policy.deletion_due(ts),
                    "deletion request open past 15 days",
                )
            elif variant == 3:  # another institution's card data kept (the cardholder is not our customer)
                ts, holder = self._ts(0.1, 0.9), f"X{rng.getrandbits(32):08x}"
                cats = [rng.choice(self.policy.retention.forbidden_foreign_c3), "payment_account_no"]
                self._lifecycle(ts, rid, holder, L.store, "card_system", cats, "payment", own=False)
                self._truth(
                    "foreign_c3_stored", rid, holder, ts, ts, f"another institution's {cats[0]} stored"
                )
            elif variant == 4:  # a destruction record without an independent supervisor
                ts = self._ts(0.1, 0.9)
                self._lifecycle(ts - DAY, rid, cid, L.delete, "crm", READ[1], None, method="logical_delete")
                op = rng.choice(self._admins())
                sup = rng.choice((op, None))
                self._lifecycle(ts, rid, cid, L.destroy, "crm", READ[1], None, method="shred", operator=op, supervisor=sup)  # fmt: skip
                self._truth(
                    "destruction_record_incomplete", rid, cid, ts, ts, "destruction record unsupervised"
                )
            elif variant == 5:  # a record kept past its years after the relationship ended, and read
                e, cid = self._reader()
                keep = self._rule("kyc_after_relationship")
                ended = self._past(keep, rng.randint(1, 60))
                self._lifecycle(ended - rng.randint(365, 3000) * DAY, rid, cid, L.collect, "crm", READ[1], "customer_service")  # fmt: skip
                self._lifecycle(ended, rid, cid, L.relationship_ended, "crm", [], None)
                self.former.add(cid)
                used = self._ts(0.1, 0.9)
                self._access(used, e, e.org, READ[0], Action.view, [cid], READ[1], record_ids=[rid])
                self._truth(
                    "used_after_deadline",
                    rid,
                    cid,
                    ended,
                    used,
                    f"record read {keep.period} after the relationship ended",
                )
                # and, never deleted, it is kept past that deadline too: part of the retention backlog
                self._truth(
                    "retention_expired",
                    rid,
                    cid,
                    ended,
                    self._due(ended, keep),
                    "KYC data kept past its years",
                )
            elif variant == 6:  # a transaction record deleted the day before its minimum's last day
                gone, minimum = self._ts(0.1, 0.9), self.policy.retention.minimums["aml_transactions"]
                # the same hour its years less a day before: the day before the last day of its
                # years (the bank's calendar keeps no daylight saving), early by the least a calendar can tell
                stored = self.policy.retention_start(gone, minimum) + DAY
                cats = ["payment_account_no", "transaction_record"]
                self._lifecycle(stored, rid, cid, L.store, "core_banking", cats, "payment")
                self._lifecycle(gone, rid, cid, L.delete, "core_banking", cats, None, method="logical_delete")
                self._truth(
                    "removed_before_minimum", rid, cid, stored, gone, "AML transaction record deleted early"
                )
            elif variant == 7:  # a former customer's location collected days after the relationship ended
                cid = f"F{rng.getrandbits(32):08x}"
                collected = self._ts(0.1, 0.9)
                ended = collected - rng.randint(1, 30) * DAY
                self._lifecycle(ended - rng.randint(365, 3000) * DAY, self._record_id(), cid, L.collect, "core_banking", KYC, "kyc_aml")  # fmt: skip
                self._lifecycle(ended, rid, cid, L.relationship_ended, "core_banking", [], None)
                self._collect_location(collected, rid, cid)
                self._truth(
                    "collected_after_relationship_ended",
                    rid,
                    cid,
                    ended,
                    collected,
                    "collected after the end",
                )
            else:  # a deleted record read again by its customer's own sub-branch
                gone = self._ts(0.1, 0.5)
                e, cid = self._reader()
                self._lifecycle(gone - rng.randint(30, 300) * DAY, rid, cid, L.collect, "crm", READ[1], "customer_service")  # fmt: skip
                self._lifecycle(gone, rid, cid, L.delete, "crm", READ[1], None, method="logical_delete")
                used = gone + rng.randint(HOUR, 3 * HOUR)
                self._access(used, e, e.org, READ[0], Action.view, [cid], READ[1], record_ids=[rid])
                self._truth("used_after_deletion", rid, cid, gone, used, "deleted record read")

    def _truth(self, rule: str, rid: str, subject: str, start: int, end: int, what: str) -> None:
        self._violation(DETECTOR, rule, rid, start, end, f"Record {rid}: {what}.", subject=subject)

    def _admins(self) -> list[str]:
        return [e.id for e in self.employees if set(e.roles) & set(SYSADMINS)]

    def _reader(self) -> tuple[Employee, str]:
        """A sub-branch employee in post all along (no violation's actor, no staff change) who may
        read contact data in the CRM, and one of its customers whose relationship goes on (a
        collection for a former one would be one after the end)."""
        whole = [(self.start, self.end)]
        staff = [
            e
            for e in self.employees
            if e.org in self.customers and e.id not in self.used and [s[:2] for s in e.segments] == whole
        ]
        while True:
            e = self.rng.choice(staff)
            current = [c for c in self.customers[e.org] if c not in self.former]
            if current and all(self.catalog.role_grants(e.roles, Action.view, READ[0], READ[1])):
                return e, self.rng.choice(current)

    def _normal_lifecycle(self) -> None:
        """Collect/store, deletes and anonymizations inside their period (a location trace deleted on
        the last of its 30 days, an hour before that day ends at the latest; a former customer's KYC
        record on the last day of its years, the bank's period and the AML minimum alike; other
        records a day before the deadline at the closest), deletion requests executed by day 14, complete
        destruction records, reads of a record an hour before its deletion, another bank's C2 payee
        data."""
        rng = self.rng
        admins = self._admins()
        location, keep_kyc = self._rule("location_trace"), self._rule("kyc_after_relationship")
        sla = self.policy.retention.deletion_request_sla_days * DAY
        customers = [c for c in self.customer_org if c not in self.former]
        goal = len(self.out["lifecycle"]) + self._target("lifecycle")
        while len(self.out["lifecycle"]) < goal:
            rid, cid, t = self._record_id(), rng.choice(customers), self._ts(0.0, 0.98)
            story = rng.choices(
                ("account", "transaction", "location", "near", "erasure", "expired", "foreign", "read"),
                (20, 25, 15, 5, 10, 10, 10, 5),
            )[0]
            if story == "account":
                self._lifecycle(t, rid, cid, L.collect, "core_banking", ACCOUNT, "account_service")
                self._lifecycle(t + rng.randint(1_000, MINUTE), rid, cid, L.store, "core_banking", ACCOUNT, "account_service")  # fmt: skip
            elif story == "transaction":
                self._lifecycle(t, rid, cid, L.store, "core_banking", ["payment_account_no", "transaction_record"], "payment")  # fmt: skip
            elif story == "location":  # deleted or anonymized inside the 30 days, inside the workload
                self._collect_location(t, rid, cid)
                done = t + rng.randrange(max(1, min(self._due(t, location), self.end) - t))
                self._lifecycle(done, rid, cid, rng.choice((L.delete, L.anonymize)), "mobile_banker", LOCATION, None)  # fmt: skip
            elif story == "near":  # deleted on the last of its 30 days, later in the day than collected
                collected = (
                    self.policy.retention_start(t, location) - HOUR
                )  # 30 x 24 h would call it an hour late
                t = min(t, self._due(collected, location) - HOUR)  # an hour before that day ends
                self._collect_location(collected, rid, cid)
                self._lifecycle(t, rid, cid, L.delete, "mobile_banker", LOCATION, None)
            elif story == "erasure":  # inside the bank's 15 days: executed by day 14 at the latest
                asked = t - rng.randint(0, sla - DAY)  # a day inside the SLA at the latest
                self._lifecycle(asked, rid, cid, L.deletion_requested, "crm", [], None)
                done = max(t, asked + 1)
                self._lifecycle(done, rid, cid, L.delete, "crm", READ[1], None, method="logical_delete")
                self._destroy(done, rid, cid, admins, READ[1])
            elif (
                story == "expired"
            ):  # a former customer, gone the period's years: deleted on the last day of them,
                # neither kept too long nor destroyed before the AML minimum (the same period here)
                cid, ended = f"F{rng.getrandbits(32):08x}", self.policy.retention_start(t, keep_kyc)
                t = min(t, self._due(ended, keep_kyc) - HOUR)
                self._lifecycle(ended - rng.randint(365, 3000) * DAY, rid, cid, L.collect, "core_banking", KYC, "kyc_aml")  # fmt: skip
                self._lifecycle(ended, rid, cid, L.relationship_ended, "core_banking", [], None)
                self._lifecycle(t, rid, cid, L.delete, "core_banking", KYC, None, method="logical_delete")
                self._destroy(t, rid, cid, admins, KYC)
            elif story == "foreign":  # another bank's payee account for an interbank transfer: C2, allowed
                payee = f"X{rng.getrandbits(32):08x}"
                self._lifecycle(t, rid, payee, L.store, "core_banking", ["payment_account_no", "customer_name"], "payment", own=False)  # fmt: skip
            else:  # a record read by its customer's sub-branch an hour before it is deleted
                e, cid = self._reader()
                t = max(t, self.start + HOUR)
                self._lifecycle(t - rng.randint(30, 300) * DAY, rid, cid, L.collect, "crm", READ[1], "customer_service")  # fmt: skip
                self._access(t - HOUR, e, e.org, READ[0], Action.view, [cid], READ[1], record_ids=[rid])
                self._lifecycle(t, rid, cid, L.delete, "crm", READ[1], None, method="logical_delete")
