"""The bank: head office, branches and sub-branches, staff with the roles of seed 004, customers and
their managing sub-branch, entitlements, consents and campaigns."""

from __future__ import annotations

import math

from schemas.models import (
    Channel,
    ConsentStatus,
    EmployeeStatus,
)
from streams.workload.base import (
    AML_CASES,
    AML_HITS,
    BACK_OFFICE_FILES,
    DAY,
    HOUR,
    MINUTE,
    ROLE_WEIGHTS,
    SHARES,
    Base,
    Campaign,
    Employee,
)


class Bank(Base):
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
        aml_day = (AML_CASES[0] + AML_HITS[0], AML_CASES[1] + AML_HITS[1])
        # roles the violations, the four-eyes / destruction records and the ordinary jobs
        # (`_ordinary_jobs`) need, before random staffing
        required = {
            "head_office": ["ho_marketing_mgmt"] * (per_variant + n_approvals)
            + ["ho_sms_submitter", "ho_sms_approver", "ho_sysadmin", "ho_sysadmin", "ho_dept_head"]
            + ["aml_analyst"] * self._holders("aml_screening", aml_day),
            "branch": ["ops_back_office"] * self._holders("back_office", BACK_OFFICE_FILES),
            "sub_branch": ["lobby_manager", "wealth_manager", "sb_president"] * per_variant
            + ["sb_product_mgmt"] * self._count(1),
        }
        n_ho = max(10, n_emp // 25, len(required["head_office"]))
        n_br = max(4 * n_branches, n_emp // 12, len(required["branch"]))
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
                e.ips = self._other_ips(n)
                if not needed and rng.random() < 0.03:  # a few staff hold a second role of their level
                    e.roles.append(rng.choice([r for r in weights if r != role]))
                e.segments = [(self.start, self.end, org)]
                self.employees.append(e)
        pairs = self._teller_pairs(sbs)
        self._counters(sbs)
        self.cast = [e for e in self.employees if len(e.roles) == 1 and e not in pairs]
        rng.shuffle(self.cast)

        # graded approvals (分级授权, seed 004 流程描述(4)④) for a few head-office managers
        holders = {self._take(["ho_marketing_mgmt"]).id: k for k in range(n_approvals)}
        approver = next(e.id for e in self.employees if "ho_dept_head" in e.roles)  # 部室负责人 approves
        for e in self.employees:
            grant = []
            if e.id in holders:
                grant = [
                    {
                        "approval_id": f"AP-{self.seed}-{holders[e.id]:03d}",
                        "purpose": "regulatory_report",
                        "max_records": rng.choice((1000, 2000, 5000)),
                        "expires_ts": self.end + 7 * DAY,
                        "approver_id": approver,
                        "categories": ["identity", "transaction"],
                        "systems": ["data_warehouse"],
                    }
                ]
                self.approvals.append((e, grant[0]))
            self._entitlement(e, self.start - DAY, e.org, EmployeeStatus.active, e.roles, grant)
        self._hotline_and_batch_staff()

    def _teller_pairs(self, sbs: list[str]) -> list[Employee]:
        """Two tellers of one sub-branch for each shared-account case and near miss (`Sharing`), on
        top of the staff the day's traffic and the other cases draw from: the rest of the bank is
        staffed as without them. Sub-branches in turn, no random draw."""
        for k in range(2 * self._count(2) + 2 * self._count(1)):
            sb = sbs[k % len(sbs)]
            for _ in range(2):
                n = len(self.employees)
                e = Employee(f"E{n:06d}", sb, ["teller"], f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}")
                e.segments = [(self.start, self.end, sb)]
                self.employees.append(e)
            self.teller_pairs.append((self.employees[-2], self.employees[-1]))
        return [e for pair in self.teller_pairs for e in pair]

    def _counters(self, sbs: list[str]) -> None:
        """Each sub-branch's counter PCs, one a teller: its tellers take them in turn, a PC passing
        to the next teller at the shift change (`_address`), as a counter is staffed. No sub-branch
        PC is a desk's (10.240-247: counters, 10.249: spare PCs, `_spare_pc`)."""
        for i, sb in enumerate(sbs):
            tellers = [e for e in self.employees if e.org == sb and "teller" in e.roles]
            pcs = [f"10.{240 + (i >> 8 & 7)}.{i & 255}.{k + 1}" for k in range(len(tellers))]
            for seat, e in enumerate(tellers):
                e.counter, e.seat, e.ips = pcs, seat, []

    def _other_ips(self, n: int) -> list[str]:
        """Besides the desk PC: the VPN pool from home, and for some the mobile-banker tablet."""
        ips = [f"10.250.{self.rng.randrange(256)}.{self.rng.randrange(1, 255)}"]
        if self.rng.random() < 0.5:
            ips.append(f"10.{128 + (n >> 16 & 127)}.{n >> 8 & 255}.{n & 255}")
        return ips

    def _hotline_and_batch_staff(self) -> None:
        """Head-office hotline agents (the 95526 service line of seed 004's privacy policy) and the
        service accounts of nightly batch jobs: they read many customers, each under a graded
        approval (seed 004 流程描述(4)④) whose entitlement `_approved_traffic` writes once its budget
        is known. Hotline agents hold the hotline's role (organisation.yaml `hotline_agent`)."""
        for _ in range(max(2, len(self.employees) // 100)):
            n = len(self.employees)
            e = Employee(f"E{n:06d}", "HO", ["hotline_agent"], f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}")
            e.ips, e.segments = self._other_ips(n), [(self.start, self.end, "HO")]
            self.employees.append(e)
            self.agents.append(e)
        for k in range(2):
            e = Employee(f"SVC-BATCH-{k:02d}", "HO", [], f"10.200.0.{k + 1}")
            e.segments = [(self.start, self.end, "HO")]
            self.services.append(e)

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
        # campaigns follow each other within 45 minutes: a file batch of pushes never holds one
        # campaign's hour and another's far ahead of it (the event-time check's batch median)
        starts = sorted(self._ts(0.0, 0.8) for _ in range(n))
        for i in range(1, n):
            starts[i] = min(starts[i], starts[i - 1] + 45 * MINUTE)
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
                        starts[k],
                        eligible,
                    )
                )
