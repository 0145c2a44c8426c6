"""Shared state of the workload generator: the bank's constants, and the writers that turn one
record at a time into the rows each stream gets (ids, timestamps, validation comes later)."""

from __future__ import annotations

import random
import re
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any

from policy.catalog import Catalog
from policy.model import Policy
from schemas.models import (
    EVENT_MODELS,
    Action,
    Channel,
    ConsentStatus,
    EmployeeStatus,
    LifecycleStage,
    Outcome,
)

MINUTE, HOUR, DAY = 60_000, 3_600_000, 86_400_000
DIGIT_RUN = re.compile(r"[0-9]{11}")
EVENT_STREAMS = ("access", "sdk", "marketing", "lifecycle", "transfer")
SHARES = {"access": 0.70, "sdk": 0.12, "marketing": 0.08, "lifecycle": 0.07, "transfer": 0.03}
ID_PREFIX = {"access": "acc", "sdk": "sdk", "marketing": "mkt", "lifecycle": "lcy", "transfer": "trf"}

# Staff mix per org level (roles of policy/organisation.yaml, seed 004 角色设置); weights are the
# simulated bank's, not policy.
ROLE_WEIGHTS = {
    "head_office": {
        "ho_dept_head": 2,
        "ho_product_mgmt": 2,
        "ho_marketing_mgmt": 3,
        "ho_sms_submitter": 1,
        "ho_sms_approver": 1,
        "ho_investment_advisor": 2,
        "ho_sysadmin": 1,
    },
    "branch": {
        "br_dept_head": 2,
        "br_product_mgmt": 2,
        "br_marketing_mgmt": 3,
        "br_sms_submitter": 1,
        "br_sms_approver": 1,
        "br_investment_advisor": 2,
        "br_sysadmin": 1,
    },
    "sub_branch": {
        "wealth_manager": 30,
        "lobby_manager": 15,
        "outreach_marketing": 15,
        "sb_general_user": 25,
        "sb_product_mgmt": 10,
        "sb_president": 5,
        "teller": 20,
    },
}
SYSADMINS = ("ho_sysadmin", "br_sysadmin")  # operate systems, never read customers' data

# Normal reads: C1/C2 field sets per system, never a C3 field nor a C3 combination (JR/T 0171 §4.2).
READS = {
    "core_banking": [
        ["customer_name", "account_balance"],
        ["customer_name", "transaction_record"],
        ["customer_name", "payment_account_no", "account_open_date"],
        ["customer_name", "mobile_phone", "id_document_no"],
    ],
    "mobile_banker": [
        ["customer_name", "assets", "customer_segment"],
        ["customer_name", "mobile_phone"],
        ["customer_segment", "marketing_tags"],
    ],
    "crm": [
        ["customer_name", "customer_segment", "marketing_tags"],
        ["customer_name", "mobile_phone", "home_address"],
        ["customer_name", "occupation", "income"],
    ],
    "card_system": [["customer_name", "payment_account_no"], ["payment_account_no", "transaction_record"]],
    "credit_system": [
        ["customer_name", "loan_details", "repayment_history"],
        ["customer_name", "credit_report"],
    ],
    "data_warehouse": [["customer_segment", "assets"], ["transaction_record", "customer_segment"]],
}
SYSTEMS = list(READS)
SYSTEM_CUM_WEIGHTS = list(accumulate([30, 25, 20, 10, 8, 7]))
PURPOSE = {
    "core_banking": "customer_service",
    "mobile_banker": "wealth_advice",
    "crm": "customer_service",
    "card_system": "card_service",
    "credit_system": "credit_review",
    "data_warehouse": "analysis",
}
UPDATES = [["mobile_phone"], ["home_address"], ["occupation"]]  # a sub-branch maintains its own customers
# Normal exports are marketing lists of C1 tags: C2 leaves a system only under an approval (seed 004
# 流程描述(4)⑤), which the approval holders' exports carry.
C1_EXPORT = ["customer_segment", "marketing_tags"]

# The judicial interpretation on personal-information crimes, art. 5 (seed 001 §五.1): 50 records
# (条) of credit, property, location or communication content make a case, counted cumulatively.
# The generator sizes its low-and-slow reading from the law, never from a detector's settings.
LAW_SENSITIVE_RECORDS = 50
# Beijing working time (UTC+8): share of a weekday's peak hour per local hour; weekends are quiet.
WORKDAY = (0.01,) * 7 + (0.05, 0.3, 1.0, 1.0, 0.9, 0.25, 0.5, 1.0, 1.0, 0.9, 0.5, 0.15, 0.06) + (0.02,) * 4
WEEKEND = 0.12
LOCAL_OFFSET_H = 8
# where staff work from (`Base._address`): a place is kept for a stretch of the day; a VPN session
# lasts at most so long before the pool gives the next address; counter PCs change hands at 13:00
PLACE_STRETCH = 2 * HOUR
VPN_SESSION = 40 * MINUTE
SHIFT_CHANGE_H = 13

# Normal staff serve customers one at a time, a quarter of an hour each at the least: at most 4 new
# customers per clock hour, now and then one export of 1-2 of them, and a desk's day is at most
# CASELOAD customers (a rolling day). A statement lookup returns a screen of STATEMENT_ROWS rows.
HOURLY_CUSTOMERS = 4
CASELOAD = 40
STATEMENT_ROWS = (3, 12)
EXPORT_RATE = 0.015
# A visit to the counter (柜员, organisation.yaml `counter_service`): what it logs and for which purpose.
# Now and then the customer is another branch's, who walked in (the counter serves whoever comes).
COUNTER_WORK = (
    (Action.view, ["customer_name", "id_document_no"], "account_service"),
    (Action.update, ["transaction_instruction", "account_balance"], "payment"),
    (Action.query, ["customer_name", "account_balance"], "customer_service"),
    (Action.print, ["transaction_record"], "customer_service"),
)
WALK_INS = 0.2

# Ordinary jobs that read many customers a day by their nature (probe_u4): each holder works the
# job's day at its pace through OFFICE_HOURS from 09:00 Beijing time, and the job's share of all
# accesses (JOB_SHARES) sets how many hold it, as a tenth sets the hotline's calls. Sized from the
# work, never from a detector's settings: that the day measure lets them be is what is judged.
OFFICE_HOURS = 8 * HOUR + 30 * MINUTE
JOB_SHARES = {"list_calls": 0.05, "aml_screening": 0.02, "back_office": 0.03}
# 名单式客户营销活动 (seed 004 角色设置(3)③(4)③: 总行/分行营销管理 create the list, the sub-branch carries
# it out): a customer manager calls its share of the list, a call every three to five minutes of the
# office day, the name and mobile of customers of its own sub-branch who agreed to marketing
LIST_CALLERS = ("wealth_manager", "lobby_manager", "outreach_marketing")
LIST_CALLS = (100, 150)
LIST_READ = ["customer_name", "mobile_phone", "customer_segment"]
# 反洗钱监测分析 (seed 004 流程描述(1)⑬a, the duty the AML Law sets): a day's suspicious-transaction
# cases, each customer's flows of months (the rows of a year at most), and the name-screening hits
# cleared beside them (is this customer the listed person?), any branch's customers
AML_CASES = (10, 20)
AML_CASE_ROWS = (100, 400)
AML_CASE_READ = ["customer_name", "id_document_no", "transaction_record"]
AML_HITS = (150, 230)
AML_HIT_READ = ["customer_name", "id_document_no", "home_address", "occupation"]
# 集中运营: the account openings (the applicant's identity, contact and ID photo) or the card files
# (the mailer's name, address and mobile) the branch's sub-branches send, a file every two to three
# minutes of the office day
BACK_OFFICE_FILES = (150, 220)
BACK_OFFICE_WORK = (
    ("core_banking", ["customer_name", "id_document_no", "home_address", "mobile_phone", "kyc_photo"]),
    ("card_system", ["customer_name", "home_address", "mobile_phone"]),
)
# What a post that calls no list takes when it reads a list caller's day (the injected day harvest)
HARVEST_READ = ["customer_name", "id_document_no", "mobile_phone"]

SDK_WEIGHTS = {
    "push": 25,
    "sensors_analytics": 25,
    "tencent_tmf": 10,
    "tingyun_apm": 10,
    "device_fingerprint": 10,
    "tencent_x5": 8,
    "amap_location": 5,
}  # others (face, OCR, certificate) are rare flows: weight 2
APP_ID, APP_VERSIONS = "cn.bank.mobilebanking", ("9.1.0", "9.2.0", "9.2.1")
# What the bank lets marketing use (purposes.yaml `collected_for`: identity, transactions, derived
# tags; location too, but it is sensitive and needs a separate consent, seed 004 基本规定(4)①), and
# loan-application data it does not list; the generator's own reading of it.
MARKETING_DATA = (
    ["transaction_record", "customer_segment"],
    ["home_address", "marketing_tags"],
    ["occupation"],
)
LOAN_APPLICATION_DATA = (
    ["loan_details", "customer_segment"],
    ["credit_report"],
    ["repayment_history", "income"],
)
DESTROY_METHODS = ("overwrite", "crypto_erase", "degauss", "shred")


@dataclass
class Employee:
    id: str
    org: str
    roles: list[str]
    ip: str  # the desk PC
    segments: list[tuple[int, int, str]] = field(default_factory=list)  # (from, to, org) while employed
    ips: list[str] = field(default_factory=list)  # other addresses: VPN, the mobile-banker tablet
    # a teller's: the counter PCs of its sub-branch, and its seat among them (`_address`)
    counter: list[str] = field(default_factory=list)
    seat: int = 0


@dataclass
class Campaign:
    id: str
    org: str
    channel: Channel
    personalized: bool
    submitter: str
    approver: str
    t0: int
    eligible: list[str]  # customers in the org's scope with granted consent on this channel
    audience: list[str] = field(default_factory=list)  # orgs its approval covers; empty: its own org


class Base:
    def __init__(self, events: int, seed: int, start: int, policy: Policy):
        self.rng = random.Random(seed)
        self.events, self.seed, self.policy = events, seed, policy
        self.catalog = Catalog(policy)  # roles' permission sets: normal staff keep to them
        self.start = start
        # ~1 simulated day per 100k events; at least 6 h so staff changes and campaigns fit in
        self.span = max(events * DAY // 100_000, 6 * HOUR)
        self.end = start + self.span
        self.per_detector = (
            events // 10_000
        )  # ~1 violation per 10k events per detector, each variant at least once
        self.out: dict[str, list[dict[str, Any]]] = {s: [] for s in EVENT_MODELS}
        self.truth: list[dict] = []
        self.paths: dict[str, list[str]] = {}
        self.customer_org: dict[str, str] = {}
        self.customers: dict[str, list[str]] = {}  # sub-branch -> customers it manages
        self.employees: list[Employee] = []
        self.cast: list[Employee] = []  # single-role staff, shuffled: violation actors and staff changes
        self.used: set[str] = set()
        self.former: set[str] = set()  # customers whose relationship ended: nothing is collected of them
        self.consent: dict[str, Channel] = {}  # subject -> channel of granted marketing consent
        self.withdrawn: dict[str, int] = {}  # subject -> ts of withdrawal
        self.located: dict[str, int] = {}  # subject -> ts of the separate consent to the app's location
        self.campaigns: list[Campaign] = []
        self.approvals: list[tuple[Employee, dict[str, Any]]] = []  # HO holders of a graded approval
        self.agents: list[Employee] = []  # hotline agents, under approvals (bank.py)
        self.services: list[Employee] = []  # batch service accounts, under approvals
        # employees whose whole day is an injected case, a near miss or an ordinary job (`_ordinary_jobs`)
        self.quiet: set[str] = set()
        self.spare_pcs: list[str] = []  # PCs no one sits at by default (`Sharing._spare_pc`)
        self.teller_pairs: list[tuple[Employee, Employee]] = []  # `Sharing`'s, one a case
        # `Sharing`'s draws, apart: its cases move nothing the other streams draw
        self.own_rng = random.Random(f"{seed}/sharing")
        self._books: dict[str, list[str]] = {}
        self.record_ids: set[str] = set()

    def _ts(self, lo: float = 0.0, hi: float = 1.0) -> int:
        return self.rng.randrange(self.start + int(self.span * lo), self.start + int(self.span * hi))

    def _hour_weight(self, ts: int) -> float:
        """How busy the bank is in the clock hour of `ts` (Beijing time, weekdays, lunch)."""
        busy = WORKDAY[(ts // HOUR + LOCAL_OFFSET_H) % 24]
        return busy * WEEKEND if self._weekend(ts) else busy

    @staticmethod
    def _weekend(ts: int) -> bool:
        """`ts` falls on a Saturday or Sunday, Beijing time."""
        return ((ts // HOUR + LOCAL_OFFSET_H) // 24 + 3) % 7 >= 5  # 1970-01-01 was a Thursday

    def _office_days(self) -> list[int]:
        """09:00 Beijing time of each weekday whose office hours (OFFICE_HOURS) meet the workload."""
        nine = self._work_day(self.start) - DAY
        days = []
        while nine < self.end:
            if nine + OFFICE_HOURS > self.start and not self._weekend(nine):
                days.append(nine)
            nine += DAY
        return days

    def _holders(self, job: str, per_day: tuple[int, int]) -> int:
        """How many hold an ordinary job: its share of all accesses (JOB_SHARES) over what one
        holder reads in the workload's office hours at the job's mean pace; one at least."""
        office = sum(
            min(nine + OFFICE_HOURS, self.end) - max(nine, self.start) for nine in self._office_days()
        )
        one = (per_day[0] + per_day[1]) / 2 * office / OFFICE_HOURS
        share = self.events * SHARES["access"] * JOB_SHARES[job]
        return max(1, round(share / one)) if one else 1

    def _work_day(self, ts: int) -> int:
        """9:00 Beijing time on the day of `ts` (or the next day's when past it)."""
        local = ts + LOCAL_OFFSET_H * HOUR
        nine = local // DAY * DAY + 9 * HOUR
        return (nine if nine >= local else nine + DAY) - LOCAL_OFFSET_H * HOUR

    def _target(self, stream: str) -> int:
        """Normal records still to make so the stream reaches its share of `events`."""
        return max(0, round(self.events * SHARES[stream]) - len(self.out[stream]))

    def _count(self, variants: int) -> int:
        return max(variants, self.per_detector)

    def _random_id(self, prefix: str) -> str:
        """A random id (a record's, a transfer's): injected ones are made first, and a sequence would
        tell. None holds eleven digits in a row: the door reads such a run as a personal number and
        seals it (streams/personal_numbers.py), and R14459476613c, Te13121962375 were phone numbers
        to it."""
        while DIGIT_RUN.search(rid := f"{prefix}{self.rng.getrandbits(48):012x}"):
            pass
        return rid

    def _record_id(self) -> str:
        """A new stored-record id, unused."""
        while (rid := self._random_id("R")) in self.record_ids:
            pass
        self.record_ids.add(rid)
        return rid

    def _violation(
        self,
        detector: str,
        rule: str,
        key: str,
        ts_start: int,
        ts_end: int,
        description: str,
        subject: str | None = None,
    ) -> None:
        """`subject`: the customer an alert names when its key (a record id) is not the alert's."""
        self.truth.append(
            {
                "detector": detector,
                "rule": rule,
                "key": key,
                "ts_start": ts_start,
                "ts_end": ts_end,
                "description": description,
            }
            | ({"subject": subject} if subject else {})
        )

    def _take(self, roles: Iterable[str]) -> Employee:
        """An unused single-role employee with one of `roles`: each violation gets its own actor."""
        wanted = set(roles)
        for e in self.cast:
            if e.id not in self.used and e.roles[0] in wanted:
                self.used.add(e.id)
                return e
        raise RuntimeError(f"no unused employee with a role in {sorted(wanted)}")

    def _book(self, org: str) -> list[str]:
        """Customers an org sees (seed 004 机构设置): HO all, a branch its sub-branches', a sub-branch its own."""
        if org not in self._books:
            if org in self.customers:
                self._books[org] = self.customers[org]
            else:
                self._books[org] = [
                    c for sb, cs in self.customers.items() if org in self.paths[sb] for c in cs
                ]
        return self._books[org]

    def _ensure_book(self, sb: str, need: int) -> list[str]:
        """Give a sub-branch at least `need` customers, so a bulk burst stays inside the actor's own scope."""
        book = self.customers[sb]
        while len(book) < need:
            cid = f"C{len(self.customer_org):07d}"
            self.customer_org[cid] = sb
            book.append(cid)
        return book

    def _entitlement(
        self,
        e: Employee,
        ts: int,
        org: str,
        status: EmployeeStatus,
        roles: list[str],
        approvals: Sequence[dict[str, Any]] = (),
    ) -> None:
        self.out["entitlements"].append(
            {
                "actor_id": e.id,
                "ts": ts,
                "org_id": org,
                "org_path": self.paths[org],
                "roles": roles,
                "status": status,
                "approvals": list(approvals),
            }
        )

    def _access(
        self,
        ts: int,
        e: Employee,
        org: str,
        system: str,
        action: Action,
        subjects: list[str],
        fields: list[str],
        row_count: int | None = None,
        approval_id: str | None = None,
        purpose: str | None = None,
        outcome: Outcome = Outcome.success,
        record_ids: Sequence[str] = (),
        client_ip: str | None = None,
    ) -> None:
        self.out["access"].append(
            {
                "ts": ts,
                "actor_id": e.id,
                "actor_org": org,
                "system": system,
                "action": action,
                "subject_ids": subjects,
                "row_count": len(subjects) if row_count is None else row_count,
                "fields": fields,
                "purpose": purpose or PURPOSE.get(system, "report"),
                "approval_id": approval_id,
                "outcome": outcome,
                "client_ip": client_ip or self._address(e, ts),
                "record_ids": list(record_ids),
            }
        )

    def _address(self, e: Employee, ts: int) -> str:
        """Where the employee works from at `ts`, one place at a time, as one person does: a teller
        at a counter PC of its sub-branch, the PCs passed round at the shift change; anyone else at
        the desk PC, and for a stretch of some days at its tablet or through the VPN, whose pool
        gives each session a new address. Each change is a switch to stay, never back and forth
        within minutes (shared_account's near misses). Drawn from the employee and the time, not
        the generator's random stream, so adding accesses moves no one else's place."""
        local = ts + LOCAL_OFFSET_H * HOUR
        if e.counter:
            shift = local // DAY * 2 + (local % DAY >= SHIFT_CHANGE_H * HOUR)
            return e.counter[(e.seat + shift) % len(e.counter)]
        pick = zlib.crc32(f"{self.seed}/{e.id}/{local // PLACE_STRETCH}".encode())
        if not e.ips or pick % 4:
            return e.ip
        away = e.ips[pick // 4 % len(e.ips)]
        if away != e.ips[0]:
            return away
        pool, _, host = away.rpartition(".")  # the VPN: a session of `VPN_SESSION`, then a new address
        return f"{pool}.{(int(host) + local // VPN_SESSION) % 254 + 1}"

    def _consent(
        self, cid: str, ts: int, channel: Channel, status: ConsentStatus, purpose: str = "marketing"
    ) -> None:
        self.out["consents"].append(
            {"subject_id": cid, "ts": ts, "purpose": purpose, "channel": channel, "status": status}
        )

    def _purpose_consent(
        self, cid: str, ts: int, purpose: str, status: ConsentStatus, separate: bool = True
    ) -> None:
        """A consent to a purpose given on no channel: separate unless said (单独同意)."""
        self.out["consents"].append(
            {
                "subject_id": cid,
                "ts": ts,
                "purpose": purpose,
                "channel": None,
                "status": status,
                "separate": separate,
            }
        )

    def _withdraw(self, cid: str, ts: int, purpose: str = "marketing") -> None:
        self.withdrawn[cid] = ts
        self._consent(cid, ts, self.consent[cid], ConsentStatus.withdrawn, purpose)

    def _push(
        self,
        c: Campaign,
        subject: str,
        ts: int,
        *,
        personalized: bool | None = None,
        opt_out: bool = True,
        approver: str | None = None,
        data_used: list[str] | None = None,
        choice: bool | None = None,
    ) -> None:
        """`choice`: a non-personalized option besides the opt-out (default: personalized ones offer it)."""
        personalized = c.personalized if personalized is None else personalized
        if data_used is None:
            data_used = ["customer_segment", "marketing_tags"] if personalized else []
        self.out["marketing"].append(
            {
                "ts": ts,
                "subject_id": subject,
                "channel": c.channel,
                "campaign_id": c.id,
                "purpose": "marketing",
                "data_used": data_used,
                "personalized": personalized,
                "opt_out_offered": opt_out,
                "non_personalized_option": personalized and opt_out if choice is None else choice,
                "submitter_id": c.submitter,
                "approver_id": approver or c.approver,
                "org_id": c.org,
                "approved_audience": c.audience,
            }
        )

    def _sdk(
        self,
        ts: int,
        sid: str,
        fields: list[str],
        permissions: list[str],
        host: str | None,
        consented: bool,
        device: int | None = None,
        country: str | None = None,
    ) -> None:
        device = self.rng.randrange(len(self.customer_org)) if device is None else device
        self.out["sdk"].append(
            {
                "ts": ts,
                "app_id": APP_ID,
                "app_version": self.rng.choice(APP_VERSIONS),
                "device_id": f"D{device:07d}",
                "subject_id": f"C{device:07d}" if self.rng.random() < 0.8 else None,
                "sdk_id": sid,
                "fields": fields,
                "permissions": permissions,
                "dest_host": host,
                "policy_consented": consented,
                "dest_country": country,
            }
        )

    def _lifecycle(
        self,
        ts: int,
        rid: str,
        subject: str | None,
        stage: LifecycleStage,
        system: str,
        cats: list[str],
        purpose: str | None,
        own: bool = True,
        method: str | None = None,
        operator: str | None = None,
        supervisor: str | None = None,
    ) -> None:
        self.out["lifecycle"].append(
            {
                "ts": ts,
                "record_id": rid,
                "subject_id": subject,
                "stage": stage,
                "system": system,
                "categories": cats,
                "purpose": purpose,
                "own_institution": own,
                "method": method,
                "operator_id": operator,
                "supervisor_id": supervisor,
            }
        )

    def _destroy(self, after: int, rid: str, cid: str, admins: list[str], content: list[str]) -> None:
        """Destruction states content, method, time, operator and a different supervisor (seed 002 §七)."""
        op, sup = self.rng.sample(admins, 2)
        ts = after + self.rng.randrange(max(1, min(DAY, self.end - after)))
        self._lifecycle(
            ts,
            rid,
            cid,
            LifecycleStage.destroy,
            "core_banking",
            content,
            None,
            method=self.rng.choice(DESTROY_METHODS),
            operator=op,
            supervisor=sup,
        )
