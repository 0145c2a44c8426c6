"""Synthetic PFI workload: a bank, its normal traffic on every stream, and injected violations with
their ground truth (`Workload.truth`), so detectors can be scored as found, missed or false alarm.

Deterministic for (events, seed, start_ms): one `random.Random(seed)`, no clock, no global state
(the cyclic GC is only paused while generating, see `_collector_paused`).
Normal traffic is built to break no rule of DESIGN.md §1; the injected violations are the only
records that do. Each truth entry names the key its detector alerts on. For event rules ts_start /
ts_end are the first / last offending event; for absence rules (retention) ts_start is the event
that starts the clock and ts_end the deadline it overran.

Violations are generated first, so no id may follow generation order: event ids are numbered per
stream in time order, record and transfer ids are random.
"""

from __future__ import annotations

import gc
import heapq
import json
import math
import random
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import accumulate
from pathlib import Path
from typing import Any

import fastavro
import orjson
from pydantic import TypeAdapter

from policy import load_policy
from policy.model import Policy
from schemas.models import (
    EVENT_MODELS,
    REFERENCE_STREAMS,
    STREAM_KEYS,
    Action,
    Channel,
    ConsentStatus,
    EmployeeStatus,
    LegalBasis,
    LifecycleStage,
    RecipientType,
    Record,
)
from streams.codecs import load_schema

MINUTE, HOUR, DAY = 60_000, 3_600_000, 86_400_000
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

# Normal staff serve customers one at a time: per clock hour at most 4 distinct customers, at most
# one export of 1-2 of them (C2 x export = 3). A sliding 60 minutes spans two clock hours, so a
# normal actor scores <= 2 * (2*3 + 2*1) = 16, below the lowest bulk_query role threshold
# (sb_general_user: 20, policy/detectors/bulk_query.yaml).
HOURLY_CUSTOMERS = 4
EXPORT_RATE = 0.015

# Transfer recipients of normal traffic (seed 002 §四-六): entrusted processors get de-identified,
# encrypted data under a contract; regulators get what the law requires; internal systems stay inside.
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
UNDECLARED_FIELDS = ("contacts", "card_cvn", "sms_content", "call_log", "id_document_no", "payment_password")
DESTROY_METHODS = ("overwrite", "crypto_erase", "degauss", "shred")


@dataclass
class Workload:
    records: list[
        tuple[str, str, Record]
    ]  # (stream, key, record): reference streams first, then events by ts
    truth: list[dict]  # injected violations
    bank: dict  # summary counts, plus the org tree and each customer's managing sub-branch


@dataclass
class Employee:
    id: str
    org: str
    roles: list[str]
    ip: str
    segments: list[tuple[int, int, str]] = field(default_factory=list)  # (from, to, org) while employed


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


def generate(
    events: int, seed: int = 7, start_ms: int = 1_767_225_600_000, policy: Policy | None = None
) -> Workload:
    """A bank and about `events` event-stream records (reference records on top), with injected violations."""
    policy = policy or load_policy()
    with _collector_paused():
        return _Generator(events, seed, start_ms, policy).run()


@contextmanager
def _collector_paused() -> Iterator[None]:
    """The workload holds no reference cycles, so the cyclic GC only costs time here (about half of it at
    100k events); plain reference counting still frees everything."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def write_files(workload: Workload, out_dir: Path, fmt: str = "jsonl") -> list[Path]:
    """One `pfi.<stream>.jsonl|avro` per stream in record order, plus `truth.json`; returns the paths."""
    if fmt not in ("jsonl", "avro"):
        raise ValueError(f"unknown format {fmt!r}: use jsonl or avro")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows: dict[str, list[dict[str, Any]]] = {s: [] for s in EVENT_MODELS}
    for stream, _key, rec in workload.records:
        rows[stream].append(rec.model_dump(mode="json"))
    paths = []
    for stream, items in rows.items():
        path = out_dir / f"pfi.{stream}.{fmt}"
        if fmt == "jsonl":
            path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in items))
        else:
            with path.open("wb") as fo:
                fastavro.writer(fo, fastavro.parse_schema(load_schema(stream)), items)
        paths.append(path)
    truth = out_dir / "truth.json"
    truth.write_text(json.dumps(workload.truth, indent=1, ensure_ascii=False), encoding="utf-8")
    return [*paths, truth]


def read_truth(path: Path) -> list[dict]:
    return json.loads(Path(path).read_text(encoding="utf-8"))


class _Generator:
    def __init__(self, events: int, seed: int, start: int, policy: Policy):
        self.rng = random.Random(seed)
        self.events, self.seed, self.policy = events, seed, policy
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
        self.consent: dict[str, Channel] = {}  # subject -> channel of granted marketing consent
        self.withdrawn: dict[str, int] = {}  # subject -> ts of withdrawal
        self.campaigns: list[Campaign] = []
        self.approvals: list[tuple[Employee, dict[str, Any]]] = []  # HO holders of a graded approval
        self._books: dict[str, list[str]] = {}
        self.record_ids: set[str] = set()

    def run(self) -> Workload:
        self._build_bank()
        self._inject_bulk_query()  # first: it needs particular roles from the cast
        self._staff_changes()
        self._inject_unauthorized_lookup()
        self._consents()
        self._plan_campaigns()
        self._inject_offscope_marketing()
        self._inject_retention_overrun()
        self._inject_sdk_overcollection()
        self._inject_transfer_policy()
        self._normal_access()
        self._normal_sdk()
        self._normal_marketing()
        self._normal_lifecycle()
        self._normal_transfer()
        return Workload(self._records(), self._numbered_truth(), self._summary())

    # -- helpers --------------------------------------------------------------------------------
    def _ts(self, lo: float = 0.0, hi: float = 1.0) -> int:
        return self.rng.randrange(self.start + int(self.span * lo), self.start + int(self.span * hi))

    def _target(self, stream: str) -> int:
        """Normal records still to make so the stream reaches its share of `events`."""
        return max(0, round(self.events * SHARES[stream]) - len(self.out[stream]))

    def _count(self, variants: int) -> int:
        return max(variants, self.per_detector)

    def _record_id(self) -> str:
        """A new random stored-record id: injected records are made first, and a sequence would tell."""
        while (rid := f"R{self.rng.getrandbits(48):012x}") in self.record_ids:
            pass
        self.record_ids.add(rid)
        return rid

    def _violation(
        self, detector: str, rule: str, key: str, ts_start: int, ts_end: int, description: str
    ) -> None:
        self.truth.append(
            {
                "detector": detector,
                "rule": rule,
                "key": key,
                "ts_start": ts_start,
                "ts_end": ts_end,
                "description": description,
            }
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
                "client_ip": e.ip,
            }
        )

    # -- the bank -------------------------------------------------------------------------------
    def _build_bank(self) -> None:
        rng = self.rng
        n_branches = max(3, self.events // 50_000)
        self.paths["HO"] = ["HO"]
        branches = []
        for b in range(1, n_branches + 1):
            bid = f"B{b:02d}"
            branches.append(bid)
            self.paths[bid] = ["HO", bid]
            parents = [self.paths[bid]]
            for k in range(rng.choice((0, 0, 1, 2))):  # optional second-tier branches (二级分行)
                path = ["HO", bid, f"{bid}{chr(65 + k)}"]
                self.paths[path[-1]] = path
                parents.append(path)
            for s in range(1, rng.randint(4, 12) + 1):
                sid = f"S{b:02d}{s:02d}"
                self.paths[sid] = [*rng.choice(parents), sid]
                self.customers[sid] = []
        sbs = list(self.customers)

        # customers are managed by one sub-branch each; 1000 at least so a 600+ record export exists
        sb_weights = [rng.uniform(0.5, 2.0) for _ in sbs]
        for i, sb in enumerate(rng.choices(sbs, sb_weights, k=max(1000, self.events // 5))):
            cid = f"C{i:07d}"
            self.customer_org[cid] = sb
            self.customers[sb].append(cid)

        n_emp = max(60, self.events // 250)
        per_variant = math.ceil(self._count(4) / 4)
        n_approvals = max(2, self.events // 200_000)
        # roles the violations and the four-eyes / destruction records need, before random staffing
        required = {
            "head_office": ["ho_marketing_mgmt"] * (per_variant + n_approvals)
            + ["ho_sms_submitter", "ho_sms_approver", "ho_sysadmin", "ho_sysadmin"],
            "branch": [],
            "sub_branch": ["lobby_manager", "wealth_manager", "sb_president"] * per_variant,
        }
        n_ho = max(10, n_emp // 25, len(required["head_office"]))
        n_br = max(4 * n_branches, n_emp // 12)
        extra_sb_staff = max(0, n_emp - n_ho - n_br - len(sbs))  # one per sub-branch, the rest by customers
        placement = {
            "head_office": ["HO"] * n_ho,
            "branch": [branches[i % n_branches] for i in range(n_br)],
            "sub_branch": sbs + rng.choices(sbs, [len(self.customers[s]) for s in sbs], k=extra_sb_staff),
        }
        for level, orgs in placement.items():
            weights = ROLE_WEIGHTS[level]
            roles = [(r, True) for r in required[level]] + [
                (r, False)
                for r in rng.choices(
                    list(weights), list(weights.values()), k=len(orgs) - len(required[level])
                )
            ]
            rng.shuffle(roles)
            for org, (role, needed) in zip(orgs, roles, strict=True):
                n = len(self.employees)
                e = Employee(f"E{n:06d}", org, [role], f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}")
                if not needed and rng.random() < 0.03:  # a few staff hold a second role of their level
                    e.roles.append(rng.choice([r for r in weights if r != role]))
                e.segments = [(self.start, self.end, org)]
                self.employees.append(e)
        self.cast = [e for e in self.employees if len(e.roles) == 1]
        rng.shuffle(self.cast)

        # graded approvals (分级授权, seed 004 流程描述(4)④) for a few head-office managers
        holders = {self._take(["ho_marketing_mgmt"]).id: k for k in range(n_approvals)}
        for e in self.employees:
            grant = []
            if e.id in holders:
                grant = [
                    {
                        "approval_id": f"AP-{self.seed}-{holders[e.id]:03d}",
                        "purpose": "regulatory_report",
                        "max_records": rng.choice((1000, 2000, 5000)),
                        "expires_ts": self.end + 7 * DAY,
                    }
                ]
                self.approvals.append((e, grant[0]))
            self._entitlement(e, self.start - DAY, e.org, EmployeeStatus.active, e.roles, grant)

    def _transfer_staff(self, e: Employee, ts: int) -> str:
        """Move a sub-branch employee to another sub-branch at `ts`: permissions change at once (seed 004 人员管理(4))."""
        new = self.rng.choice([s for s in self.customers if s != e.org])
        self._entitlement(e, ts, e.org, EmployeeStatus.transferred, e.roles)
        self._entitlement(e, ts + MINUTE, new, EmployeeStatus.active, e.roles)
        # work at the new desk starts on the next clock hour, so no hour mixes the two orgs' customers
        e.segments = [(self.start, ts, e.org), (-(-(ts + MINUTE) // HOUR) * HOUR, self.end, new)]
        return new

    def _terminate_staff(self, e: Employee, ts: int) -> None:
        """Termination revokes every permission at once (seed 004 人员管理(5))."""
        self._entitlement(e, ts, e.org, EmployeeStatus.terminated, [])
        e.segments = [(self.start, ts, e.org)]

    def _staff_changes(self) -> None:
        """Ordinary transfers and terminations, followed by no access they would forbid."""
        sb_roles = ROLE_WEIGHTS["sub_branch"]
        for _ in range(max(2, len(self.employees) // 100)):
            self._transfer_staff(self._take(sb_roles), self._ts(0.2, 0.8))
        for _ in range(max(1, len(self.employees) // 200)):
            self._terminate_staff(self._take(sb_roles), self._ts(0.2, 0.8))

    def _consents(self) -> None:
        """Marketing consent (seed 004 流程描述(4)②) for most customers; some withdraw mid-workload."""
        rng = self.rng
        for cid in self.customer_org:
            if rng.random() < 0.85:
                channel = rng.choice((Channel.sms, Channel.app_push))
                self.consent[cid] = channel
                self._consent(
                    cid, self.start - DAY - rng.randrange(700 * DAY), channel, ConsentStatus.granted
                )
                if rng.random() < 0.03:
                    self._withdraw(cid, self._ts())

    def _consent(self, cid: str, ts: int, channel: Channel, status: ConsentStatus) -> None:
        self.out["consents"].append(
            {"subject_id": cid, "ts": ts, "purpose": "marketing", "channel": channel, "status": status}
        )

    def _withdraw(self, cid: str, ts: int) -> None:
        self.withdrawn[cid] = ts
        self._consent(cid, ts, self.consent[cid], ConsentStatus.withdrawn)

    def _plan_campaigns(self) -> None:
        """Campaigns of HO and branches that have an SMS submitter and a different approver (seed 004 四眼)."""
        rng = self.rng
        roles = self.policy.organisation.roles
        duty: dict[str, dict[str, list[str]]] = {}  # org -> submit|approve -> employees
        for e in self.employees:
            for r in e.roles:
                if roles[r].marketing_sms:
                    duty.setdefault(e.org, {}).setdefault(str(roles[r].marketing_sms), []).append(e.id)
        teams = {
            org: pairs
            for org, d in duty.items()
            if (pairs := [(s, a) for s in d.get("submit", []) for a in d.get("approve", []) if s != a])
        }
        n = max(4, round(self.events * SHARES["marketing"]) // 300)
        eligible_by: dict[tuple[str, Channel], list[str]] = {}
        for k in range(n):
            org = "HO" if k < 2 else rng.choice(sorted(teams))
            channel = (
                (Channel.sms, Channel.app_push)[k] if k < 2 else rng.choice((Channel.sms, Channel.app_push))
            )
            submitter, approver = rng.choice(teams[org])
            if (org, channel) not in eligible_by:
                eligible_by[org, channel] = [c for c in self._book(org) if self.consent.get(c) is channel]
            if eligible := eligible_by[org, channel]:
                self.campaigns.append(
                    Campaign(
                        f"CMP-{self.seed}-{k:04d}",
                        org,
                        channel,
                        rng.random() < 0.5,
                        submitter,
                        approver,
                        self._ts(0.0, 0.95),
                        eligible,
                    )
                )

    def _push(
        self,
        c: Campaign,
        subject: str,
        ts: int,
        *,
        personalized: bool | None = None,
        opt_out: bool = True,
        approver: str | None = None,
    ) -> None:
        personalized = c.personalized if personalized is None else personalized
        self.out["marketing"].append(
            {
                "ts": ts,
                "subject_id": subject,
                "channel": c.channel,
                "campaign_id": c.id,
                "purpose": "marketing",
                "data_used": ["customer_segment", "marketing_tags"] if personalized else [],
                "personalized": personalized,
                "opt_out_offered": opt_out,
                "non_personalized_option": personalized and opt_out,
                "submitter_id": c.submitter,
                "approver_id": approver or c.approver,
                "org_id": c.org,
            }
        )

    # -- injected violations --------------------------------------------------------------------
    def _inject_bulk_query(self) -> None:
        """Seed 001 §一 (unapproved queries) and §五.1 (50 / 500 records): each burst scores at least 1.5x the
        actor's role threshold in policy/detectors/bulk_query.yaml, inside one 60-minute window."""
        rng = self.rng
        p = self.policy.detectors["bulk_query"].params
        roles_t, cw, aw = p["role_thresholds"], p["class_weights"], p["action_weights"]

        def need(e: Employee, weight: float) -> int:
            threshold = max((roles_t[r] for r in e.roles if r in roles_t), default=p["default_threshold"])
            return math.ceil(1.5 * threshold / weight)

        for i in range(self._count(4)):
            variant, t = i % 4, self._ts(0.1, 0.8)
            first = len(self.out["access"])
            if variant == 0:
                e = self._take(["lobby_manager"])
                n = max(rng.randint(60, 150), need(e, cw["C2"] * aw["query"]))
                book = self._ensure_book(e.org, n)
                gap = 45 * MINUTE // n
                for j, cid in enumerate(rng.sample(book, n)):
                    self._access(
                        t + j * gap,
                        e,
                        e.org,
                        "core_banking",
                        Action.query,
                        [cid],
                        ["customer_name", "account_balance"],
                    )
                rule, text = (
                    "query_burst",
                    f"Lobby manager {e.id} ({e.org}) queried {n} customers' balances (C2)",
                )
            elif variant == 1:
                e = self._take(["wealth_manager"])
                n = max(rng.randint(30, 45), need(e, cw["C3"] * aw["export"]))
                book = self._ensure_book(e.org, n)
                chosen = rng.sample(book, n)
                gap = 45 * MINUTE // math.ceil(n / 3)
                for j in range(0, n, 3):
                    self._access(
                        t + j // 3 * gap,
                        e,
                        e.org,
                        "card_system",
                        Action.export,
                        chosen[j : j + 3],
                        ["customer_name", "payment_account_no", "card_expiry"],
                    )
                rule, text = (
                    "c3_export",
                    f"Wealth manager {e.id} ({e.org}) exported {n} customers' card data (C3)",
                )
            elif variant == 2:
                e = self._take(["ho_marketing_mgmt"])
                batches = max(rng.randint(6, 9), math.ceil(need(e, cw["C2"] * aw["export"]) / 100))
                chosen = rng.sample(list(self.customer_org), batches * 100)
                for j in range(batches):
                    self._access(
                        t + j * 4 * MINUTE + rng.randrange(MINUTE),
                        e,
                        "HO",
                        "data_warehouse",
                        Action.export,
                        chosen[j * 100 : (j + 1) * 100],
                        ["transaction_record"],
                    )
                rule = "unapproved_export"
                text = (
                    f"Head-office marketing manager {e.id} exported {batches * 100} customers' transaction records "
                    "without an approval"
                )
            else:
                e = self._take(["sb_president"])
                rows = max(70, need(e, cw["C2"] * aw["download"]))
                self._access(
                    t, e, e.org, "credit_system", Action.download, [], ["credit_report"], row_count=rows
                )
                rule = "unnamed_rows"
                text = f"Sub-branch president {e.id} ({e.org}) downloaded {rows} customers' credit reports in one report"
            burst = self.out["access"][first:]
            ts0, ts1 = burst[0]["ts"], max(a["ts"] for a in burst)
            within = f" within {(ts1 - ts0) // MINUTE + 1} min" if ts1 > ts0 else ""
            self._violation(
                "bulk_query", rule, e.id, ts0, ts1, f"{text}{within}, far above the role's threshold."
            )

    def _inject_unauthorized_lookup(self) -> None:
        """Seed 004 机构设置 / 人员管理(4)(5): a sub-branch sees only itself; a transfer changes and a
        termination revokes permissions at once."""
        rng = self.rng
        sb_roles = ROLE_WEIGHTS["sub_branch"]
        fields = ["customer_name", "account_balance"]
        for i in range(self._count(3)):
            e = self._take(sb_roles)
            t = self._ts(0.2, 0.7)
            if i % 3 == 0:
                other = rng.choice([s for s in self.customers if s != e.org and self.customers[s]])
                cid = rng.choice(self.customers[other])
                self._access(t, e, e.org, "core_banking", Action.view, [cid], fields)
                self._violation(
                    "unauthorized_lookup",
                    "out_of_org_scope",
                    e.id,
                    t,
                    t,
                    f"{e.id} of sub-branch {e.org} viewed customer {cid} managed by {other}.",
                )
            elif i % 3 == 1:
                old = e.org
                self._terminate_staff(e, t)
                ts = t + rng.randint(10 * MINUTE, min(2 * HOUR, self.end - t - MINUTE))
                cid = rng.choice(self.customers[old])
                self._access(ts, e, old, "mobile_banker", Action.view, [cid], ["customer_name", "assets"])
                self._violation(
                    "unauthorized_lookup",
                    "after_termination",
                    e.id,
                    ts,
                    ts,
                    f"{e.id} viewed customer {cid} {(ts - t) // MINUTE} min after termination.",
                )
            else:
                old = e.org
                new = self._transfer_staff(e, t)
                ts = t + MINUTE + rng.randint(10 * MINUTE, min(2 * HOUR, self.end - t - 2 * MINUTE))
                cid = rng.choice(self.customers[old])
                self._access(ts, e, new, "core_banking", Action.view, [cid], fields)
                self._violation(
                    "unauthorized_lookup",
                    "after_transfer",
                    e.id,
                    ts,
                    ts,
                    f"{e.id}, transferred from {old} to {new}, viewed {old}'s customer {cid} after the transfer.",
                )

    def _inject_offscope_marketing(self) -> None:
        """Seeds 000, 004 流程描述(4)②: consent and opt-out for marketing; SMS submitted and approved by two people."""
        rng = self.rng
        sms = [c for c in self.campaigns if c.channel is Channel.sms]
        for i in range(self._count(3)):
            c = rng.choice(sms if i % 3 == 2 else self.campaigns)
            subject = rng.choice([s for s in c.eligible if s not in self.withdrawn and s not in self.used])
            self.used.add(subject)
            if i % 3 == 0:
                t_w = self._ts(0.2, 0.5)
                self._withdraw(subject, t_w)
                ts = t_w + rng.randint(HOUR, self.end - t_w - HOUR)
                self._push(c, subject, ts)
                rule, text = (
                    "after_withdrawal",
                    f"{c.channel.value} push of {c.id} to {subject} {(ts - t_w) // HOUR} h after the consent was withdrawn.",
                )
            elif i % 3 == 1:
                ts = c.t0 + rng.randrange(HOUR)
                self._push(c, subject, ts, personalized=True, opt_out=False)
                rule, text = (
                    "no_opt_out",
                    f"Personalized push of {c.id} to {subject} offered neither opt-out nor a non-personalized option.",
                )
            else:
                ts = c.t0 + rng.randrange(HOUR)
                self._push(c, subject, ts, approver=c.submitter)
                rule, text = (
                    "four_eyes",
                    f"Marketing SMS {c.id} to {subject} was submitted and approved by the same employee {c.submitter}.",
                )
            self._violation("offscope_marketing", rule, subject, ts, ts, text)

    def _inject_retention_overrun(self) -> None:
        """Seeds 002 §五, 004 §五.(四): location kept 30 days at most, deletion requests answered in 15 days;
        JR/T 0171 §6.1.3 a): another institution's C3 is never stored."""
        rng = self.rng
        keep_location = self.policy.retention.rules["location_trace"].keep_days * DAY
        sla = self.policy.retention.deletion_request_sla_days * DAY
        forbidden = self.policy.retention.forbidden_foreign_c3
        customers = list(self.customer_org)
        for i in range(self._count(3)):
            rid, cid = self._record_id(), rng.choice(customers)
            if i % 3 == 0:
                ts = self.start - rng.randint(keep_location // DAY + 5, 90) * DAY - rng.randrange(DAY)
                self._lifecycle(
                    ts,
                    rid,
                    cid,
                    LifecycleStage.collect,
                    "mobile_banker",
                    ["location_trace"],
                    "nearby_branch_service",
                )
                self._violation(
                    "retention_overrun",
                    "location_trace_30d",
                    rid,
                    ts,
                    ts + keep_location,
                    f"Location trace {rid} of {cid} collected and still kept after {keep_location // DAY} days.",
                )
            elif i % 3 == 1:
                ts = self.start - rng.randint(sla // DAY + 2, 45) * DAY - rng.randrange(DAY)
                self._lifecycle(
                    ts - rng.randint(200, 1500) * DAY,
                    rid,
                    cid,
                    LifecycleStage.collect,
                    "crm",
                    ["customer_name", "mobile_phone", "occupation"],
                    "customer_service",
                )
                self._lifecycle(ts, rid, cid, LifecycleStage.deletion_requested, "crm", [], "subject_request")
                self._violation(
                    "retention_overrun",
                    "deletion_request_15d",
                    rid,
                    ts,
                    ts + sla,
                    f"Deletion request for {rid} of {cid} not fulfilled within {sla // DAY} days.",
                )
            else:
                ts = self._ts(0.1, 0.9)
                cats = [
                    rng.choice(forbidden),
                    *rng.sample(["payment_account_no", "customer_name"], rng.randint(0, 2)),
                ]
                self._lifecycle(
                    ts, rid, None, LifecycleStage.store, "card_system", cats, "acquiring", own=False
                )
                self._violation(
                    "retention_overrun",
                    "foreign_c3_stored",
                    rid,
                    ts,
                    ts,
                    f"Record {rid} stores another institution's C3 data ({', '.join(cats)}).",
                )

    def _inject_sdk_overcollection(self) -> None:
        """Seed 004 §一.(一).6: only declared SDKs, only declared fields, only after the user agreed."""
        rng = self.rng
        sdks = self.policy.sdks
        for i in range(self._count(3)):
            ts = self._ts(0.05, 0.95)
            if i % 3 == 1:
                sid = "unknown_ad_sdk" if i == 1 else f"unknown_ad_sdk_{i // 3}"
                self._sdk(
                    ts,
                    sid,
                    ["imei", "oaid", "installed_apps", "location"],
                    ["phone_state", "location"],
                    "ads.adnet-example.com",
                    True,
                )
                self._violation(
                    "sdk_overcollection",
                    "undeclared_sdk",
                    sid,
                    ts,
                    ts,
                    f"SDK {sid}, not declared in the privacy policy, collected device ids, app list and location.",
                )
                continue
            sid = rng.choice(sorted(sdks.sdks))
            decl = sdks.sdks[sid]
            fields = rng.sample(decl.fields, rng.randint(1, min(4, len(decl.fields))))
            host = rng.choice(decl.hosts) if decl.hosts else None
            if i % 3 == 0:
                extra = rng.choice(
                    [f for f in UNDECLARED_FIELDS if f in sdks.sdk_fields and f not in decl.fields]
                )
                self._sdk(ts, sid, [*fields, extra], [], host, True)
                self._violation(
                    "sdk_overcollection",
                    "undeclared_field",
                    sid,
                    ts,
                    ts,
                    f"SDK {sid} collected '{extra}', which the privacy policy does not declare for it.",
                )
            else:
                self._sdk(ts, sid, fields, [], host, False)
                self._violation(
                    "sdk_overcollection",
                    "before_consent",
                    sid,
                    ts,
                    ts,
                    f"SDK {sid} collected {', '.join(fields)} before the user agreed to the privacy policy.",
                )

    def _inject_transfer_policy(self) -> None:
        """Seed 002 §四-六: no C3 or auth helper leaves the bank; C2 on public networks is encrypted;
        cross-border needs separate consent and an assessment; entrusted data is de-identified."""
        rng = self.rng
        for i in range(self._count(4)):
            ts, k = self._ts(0.05, 0.95), i // 4
            if i % 4 == 0:
                rid = f"tp_marketing_partner_{k}"
                cats = rng.choice(
                    (["payment_account_no", "sms_code"], ["customer_name", "payment_account_no", "card_cvn"])
                )
                self._transfer(
                    ts,
                    rid,
                    RecipientType.third_party,
                    cats,
                    encrypted=True,
                    deidentified=False,
                    public=True,
                    basis=LegalBasis.consent,
                    contract=f"CT-TP-{k:03d}",
                    purpose="joint_marketing",
                )
                rule, text = (
                    "c3_or_auth_helper_shared",
                    f"Shared {', '.join(cats)} (C3 / authentication helper) with third party {rid}.",
                )
            elif i % 4 == 2:
                rid = f"os_group_analytics_sg_{k}"
                self._transfer(
                    ts,
                    rid,
                    RecipientType.overseas,
                    ["customer_name", "assets", "transaction_record"],
                    encrypted=True,
                    deidentified=False,
                    public=True,
                    basis=LegalBasis.consent,
                    country="SG",
                    purpose="group_analytics",
                )
                rule, text = (
                    "cross_border_without_assessment",
                    f"Cross-border transfer to {rid} (SG) on general consent, without separate consent or an assessment.",
                )
            else:  # an entrusted processor: plain text on a public network, or encrypted but identifiable
                rid = rng.choice(sorted(PROCESSORS))
                plain = i % 4 == 1
                self._transfer(
                    ts,
                    rid,
                    RecipientType.processor,
                    PROCESSORS[rid],
                    encrypted=not plain,
                    deidentified=plain,
                    public=True,
                    basis=LegalBasis.contract,
                    contract=f"CT-{rid}",
                )
                rule, text = (
                    (
                        "unencrypted_public_network",
                        f"Sent C2 data to {rid} over a public network unencrypted.",
                    )
                    if plain
                    else (
                        "processor_not_deidentified",
                        f"Entrusted {rid} with data that was encrypted but not de-identified.",
                    )
                )
            self._violation("transfer_policy", rule, rid, ts, ts, text)

    # -- normal traffic -------------------------------------------------------------------------
    def _normal_access(self) -> None:
        """Staff serve their own scope's customers a few at a time (see HOURLY_CUSTOMERS); HO approval
        holders run approved exports."""
        rng = self.rng
        for e, grant in self.approvals:
            for _ in range(rng.randint(1, 3)):  # 3 x 100 rows stay under every grant's max_records
                self._access(
                    self._ts(),
                    e,
                    "HO",
                    "data_warehouse",
                    Action.export,
                    rng.sample(self._book("HO"), 100),
                    ["customer_name", "transaction_record"],
                    approval_id=grant["approval_id"],
                    purpose=grant["purpose"],  # an approval covers its own purpose only
                )
        staff = [e for e in self.employees if not set(e.roles) <= set(SYSADMINS)]
        counts = Counter(
            rng.choices(
                range(len(staff)), [rng.lognormvariate(0, 0.5) for _ in staff], k=self._target("access")
            )
        )
        # all staff's accesses in time order (records made in time order are faster to validate and merge)
        plan = sorted((ts, i, org) for i, e in enumerate(staff) for ts, org in self._timeline(e, counts[i]))
        hour: list[int] = [-1] * len(staff)
        seen: list[list[str]] = [[] for _ in staff]  # customers served this clock hour
        exported = [False] * len(staff)
        for ts, i, org in plan:
            e = staff[i]
            if ts // HOUR != hour[i]:
                hour[i], seen[i], exported[i] = ts // HOUR, [], False
            book = self._book(org)
            system = rng.choices(SYSTEMS, cum_weights=SYSTEM_CUM_WEIGHTS)[0]
            if not exported[i] and rng.random() < EXPORT_RATE:
                exported[i] = True
                subjects = list(dict.fromkeys(self._pick(seen[i], book) for _ in range(rng.randint(1, 2))))
                self._access(ts, e, org, system, Action.export, subjects, rng.choice(READS[system]))
            elif org in self.customers and rng.random() < 0.04:  # only the managing sub-branch updates
                self._access(
                    ts,
                    e,
                    org,
                    "core_banking",
                    Action.update,
                    [self._pick(seen[i], book)],
                    rng.choice(UPDATES),
                )
            else:
                action = Action.view if rng.random() < 0.6 else Action.query
                self._access(
                    ts, e, org, system, action, [self._pick(seen[i], book)], rng.choice(READS[system])
                )

    def _timeline(self, e: Employee, k: int) -> list[tuple[int, str]]:
        """k sorted times inside the employee's employment segments, each with the org of the time."""
        total = sum(t1 - t0 for t0, t1, _ in e.segments)
        out = []
        for off in sorted(self.rng.randrange(total) for _ in range(k)):
            for t0, t1, org in e.segments:
                if off < t1 - t0:
                    out.append((t0 + off, org))
                    break
                off -= t1 - t0
        return out

    def _pick(self, seen: list[str], book: list[str]) -> str:
        """A customer for the next access: mostly one already served this hour, never a 5th new one."""
        if seen and (len(seen) >= HOURLY_CUSTOMERS or self.rng.random() < 0.6):
            return self.rng.choice(seen)
        cid = self.rng.choice(book)
        if cid not in seen:
            seen.append(cid)
        return cid

    def _sdk(
        self, ts: int, sid: str, fields: list[str], permissions: list[str], host: str | None, consented: bool
    ) -> None:
        device = self.rng.randrange(len(self.customer_org))
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
            }
        )

    def _normal_sdk(self) -> None:
        rng = self.rng
        decls = self.policy.sdks.sdks
        ids = sorted(decls)
        cum_weights = list(accumulate(SDK_WEIGHTS.get(s, 2) for s in ids))
        for ts in sorted(self._ts() for _ in range(self._target("sdk"))):
            d = decls[sid := rng.choices(ids, cum_weights=cum_weights)[0]]
            fields = rng.sample(d.fields, rng.randint(1, min(6, len(d.fields))))
            perms = rng.sample(d.permissions, rng.randint(0, len(d.permissions)))
            self._sdk(ts, sid, fields, perms, rng.choice(d.hosts) if d.hosts else None, True)

    def _normal_marketing(self) -> None:
        """Pushes within an hour of their campaign, only while the subject's consent stands."""
        rng = self.rng
        todo = self._target("marketing")
        pushes: list[tuple] = []
        while len(pushes) < todo:
            c = rng.choice(self.campaigns)
            subject, ts = rng.choice(c.eligible), c.t0 + rng.randrange(HOUR)
            if ts < self.withdrawn.get(subject, self.end + 1):
                pushes.append((ts, c.id, subject, c))
        for ts, _, subject, c in sorted(pushes, key=lambda p: p[:3]):
            self._push(c, subject, ts)

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

    def _normal_lifecycle(self) -> None:
        """Collect/store, timely deletes and anonymization, deletion requests answered within the SLA, and
        destruction recorded (see `_destroy`)."""
        rng = self.rng
        admins = [e.id for e in self.employees if set(e.roles) & set(SYSADMINS)]
        keep_location = self.policy.retention.rules["location_trace"].keep_days * DAY
        keep_closed = self.policy.retention.rules["kyc_after_closure"].keep_days * DAY
        sla = self.policy.retention.deletion_request_sla_days * DAY
        customers = list(self.customer_org)
        L = LifecycleStage
        goal = len(self.out["lifecycle"]) + self._target("lifecycle")
        while len(self.out["lifecycle"]) < goal:
            rid, cid, t = self._record_id(), rng.choice(customers), self._ts(0.0, 0.98)
            story = rng.choices(
                ("account", "transaction", "location", "erasure", "expired", "foreign"),
                (25, 25, 20, 10, 10, 10),
            )[0]
            if story == "account":
                cats = ["customer_name", "id_document_no", "mobile_phone", "payment_account_no", "kyc_photo"]
                self._lifecycle(t, rid, cid, L.collect, "core_banking", cats, "account_opening")
                self._lifecycle(
                    t + rng.randint(1_000, MINUTE), rid, cid, L.store, "core_banking", cats, "account_opening"
                )
            elif story == "transaction":
                self._lifecycle(
                    t,
                    rid,
                    cid,
                    L.store,
                    "core_banking",
                    ["payment_account_no", "transaction_record"],
                    "payment",
                )
            elif (
                story == "location"
            ):  # deleted or anonymized well inside the 30 days, and inside the workload
                self._lifecycle(
                    t, rid, cid, L.collect, "mobile_banker", ["location_trace"], "nearby_branch_service"
                )
                done = t + rng.randrange(max(1, min(keep_location, self.end - t)))
                self._lifecycle(
                    done,
                    rid,
                    cid,
                    rng.choice((L.delete, L.anonymize)),
                    "mobile_banker",
                    ["location_trace"],
                    None,
                )
            elif story == "erasure":  # seed 004 §五.(四): answered inside the SLA and inside the workload
                self._lifecycle(t, rid, cid, L.deletion_requested, "crm", [], "subject_request")
                done = t + rng.randrange(max(1, min(sla, self.end - t)))
                self._lifecycle(
                    done, rid, cid, L.delete, "crm", [], "subject_request", method="logical_delete"
                )
                self._destroy(done, rid, cid, admins)
            elif (
                story == "expired"
            ):  # closed ~5 years ago (AML Law art. 19): deleted just before the deadline
                closed = t - keep_closed + rng.randint(HOUR, 3 * DAY)
                cats = ["customer_name", "id_document_no", "transaction_record"]
                self._lifecycle(
                    closed - rng.randint(365, 3000) * DAY,
                    rid,
                    cid,
                    L.collect,
                    "core_banking",
                    cats,
                    "account_opening",
                )
                self._lifecycle(closed, rid, cid, L.account_closed, "core_banking", [], None)
                self._lifecycle(
                    t, rid, cid, L.delete, "core_banking", cats, "retention_expired", method="logical_delete"
                )
                self._destroy(t, rid, cid, admins)
            else:  # another bank's payee account for an interbank transfer: C2, allowed
                self._lifecycle(
                    t,
                    rid,
                    None,
                    L.store,
                    "core_banking",
                    ["payment_account_no", "customer_name"],
                    "interbank_transfer",
                    own=False,
                )

    def _destroy(self, after: int, rid: str, cid: str, admins: list[str]) -> None:
        """Destruction states content, method, time, operator and a different supervisor (seed 002 §七)."""
        op, sup = self.rng.sample(admins, 2)
        ts = after + self.rng.randrange(max(1, min(DAY, self.end - after)))
        self._lifecycle(
            ts,
            rid,
            cid,
            LifecycleStage.destroy,
            "core_banking",
            [],
            None,
            method=self.rng.choice(DESTROY_METHODS),
            operator=op,
            supervisor=sup,
        )

    def _transfer(
        self,
        ts: int,
        rid: str,
        kind: RecipientType,
        cats: list[str],
        *,
        encrypted: bool,
        deidentified: bool,
        public: bool,
        basis: LegalBasis,
        contract: str | None = None,
        country: str = "CN",
        purpose: str = "entrusted_processing",
    ) -> None:
        n = self.rng.randint(10, 5000)
        self.out["transfer"].append(
            {
                "ts": ts,
                "transfer_id": f"T{self.rng.getrandbits(48):012x}",  # random, like record ids
                "sender_system": self.rng.choice(("core_banking", "data_warehouse", "crm", "credit_system")),
                "actor_id": None,
                "recipient_id": rid,
                "recipient_type": kind,
                "recipient_country": country,
                "categories": cats,
                "record_count": n,
                "subject_count": self.rng.randint(1, n),
                "encrypted": encrypted,
                "deidentified": deidentified,
                "public_network": public,
                "contract_id": contract,
                "legal_basis": basis,
                "assessment_id": None,
                "purpose": purpose,
            }
        )

    def _normal_transfer(self) -> None:
        rng = self.rng
        for ts in sorted(self._ts() for _ in range(self._target("transfer"))):
            kind = rng.choices(("processor", "regulator", "internal"), (5, 2, 3))[0]
            if kind == "processor":
                rid = rng.choice(sorted(PROCESSORS))
                self._transfer(
                    ts,
                    rid,
                    RecipientType.processor,
                    PROCESSORS[rid],
                    encrypted=True,
                    deidentified=True,
                    public=True,
                    basis=LegalBasis.contract,
                    contract=f"CT-{rid}",
                )
            elif kind == "regulator":
                rid = rng.choice(sorted(REGULATORS))
                self._transfer(
                    ts,
                    rid,
                    RecipientType.regulator,
                    REGULATORS[rid],
                    encrypted=True,
                    deidentified=False,
                    public=False,
                    basis=LegalBasis.legal_obligation,
                    purpose="regulatory_report",
                )
            else:
                rid = rng.choice(sorted(INTERNAL))
                self._transfer(
                    ts,
                    rid,
                    RecipientType.internal,
                    INTERNAL[rid],
                    encrypted=rng.random() < 0.5,
                    deidentified=False,
                    public=False,
                    basis=LegalBasis.none,
                    purpose="analysis",
                )

    # -- output ---------------------------------------------------------------------------------
    def _records(self) -> list[tuple[str, str, Record]]:
        out: list[tuple[str, str, Record]] = []
        per_stream = []
        for stream in (*REFERENCE_STREAMS, *EVENT_STREAMS):
            rows = sorted(self.out.pop(stream), key=lambda r: r["ts"])  # the dicts go once validated
            if stream in ID_PREFIX:  # ids in time order: an id tells nothing about injection
                prefix = f"{ID_PREFIX[stream]}-{self.seed}-"
                for i, kw in enumerate(rows):
                    kw["event_id"] = f"{prefix}{i}"
            # one validation call per stream: ~1.7x faster than a model per call
            models = TypeAdapter(list[EVENT_MODELS[stream]]).validate_python(rows)  # type: ignore[valid-type]
            key = STREAM_KEYS[stream]
            keyed = [(stream, getattr(m, key), m) for m in models]
            if stream in REFERENCE_STREAMS:
                out.extend(keyed)
            else:
                per_stream.append(keyed)
        # stable: equal times keep stream order, as one sorted() over all event streams would
        out.extend(heapq.merge(*per_stream, key=lambda r: r[2].ts))  # type: ignore[attr-defined]
        return out

    def _numbered_truth(self) -> list[dict]:
        ordered = sorted(self.truth, key=lambda v: (v["ts_start"], v["detector"], v["key"]))
        return [{"id": f"V{i:04d}", **v} for i, v in enumerate(ordered, 1)]

    def _summary(self) -> dict:
        return {
            "branches": sum(1 for p in self.paths.values() if len(p) == 2),
            "second_branches": sum(
                1 for o, p in self.paths.items() if len(p) == 3 and o not in self.customers
            ),
            "sub_branches": len(self.customers),
            "employees": len(self.employees),
            "customers": len(self.customer_org),
            "orgs": self.paths,
            "customer_org": self.customer_org,
        }
