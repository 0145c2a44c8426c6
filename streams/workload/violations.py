"""Injected violations, one method per detector, each recorded in the ground truth with the key its
detector alerts on."""

from __future__ import annotations

import math

from schemas.models import (
    Action,
    Channel,
    ConsentStatus,
    EmployeeStatus,
    Outcome,
)
from streams.workload.bank import Bank
from streams.workload.base import (
    DAY,
    HARVEST_READ,
    HOUR,
    LAW_SENSITIVE_RECORDS,
    LIST_CALLS,
    LOAN_APPLICATION_DATA,
    MINUTE,
    ROLE_WEIGHTS,
    SYSADMINS,
    Campaign,
    Employee,
)


class Violations(Bank):
    def _inject_bulk_query(self) -> None:
        """Seed 001 §一 (unapproved queries) and §五.1 (50 / 500 records): each burst reads more records
        than the judicial interpretation's threshold for its category, inside one hour. Sized from the
        law, never from the detector's own settings, so the detector is judged, not mirrored."""
        rng = self.rng

        for i in range(self._count(4)):
            variant, t = i % 4, self._ts(0.1, 0.8)
            first = len(self.out["access"])
            if variant == 0:
                e = self._take(["lobby_manager"])
                n = rng.randint(60, 150)  # balances: property data, 50 records (art. 5 ¶1 (4))
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
                n = rng.randint(30, 45)  # C3 card data, exported in threes: never to leave unapproved
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
                batches = rng.randint(6, 9)  # 600-900 transaction records: 500 (art. 5 ¶1 (5))
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
                rows = 70  # credit reports: 50 records (art. 5 ¶1 (3))
                self._access(
                    t, e, e.org, "credit_system", Action.download, [], ["credit_report"], row_count=rows
                )
                rule = "unnamed_rows"
                text = f"Sub-branch president {e.id} ({e.org}) downloaded {rows} customers' credit reports in one report"
            burst = self.out["access"][first:]
            ts0, ts1 = burst[0]["ts"], max(a["ts"] for a in burst)
            within = f" within {(ts1 - ts0) // MINUTE + 1} min" if ts1 > ts0 else ""
            self._violation(
                "bulk_query",
                rule,
                e.id,
                ts0,
                ts1,
                f"{text}{within}, past the judicial interpretation's record threshold.",
            )
            if variant:  # C3, or C2 exported / downloaded, with no approval: unauthorized as well (seed 004 流程描述(4)⑤)
                self._violation(
                    "unauthorized_lookup",
                    f"{rule}_unapproved",
                    e.id,
                    ts0,
                    ts1,
                    f"{text} without an approval.",
                )

    def _inject_slow_reading(self) -> None:
        """Seed 001 §五.1: art. 5 counts records over a day, not per hour. A lobby or wealth manager
        pulls a few of their own customers' credit reports, repayment records and loan files an hour
        all day (征信, the
        data most often sold; credit and loans add up in one tier), each an access the role allows
        but none the post's own work (seed 004 角色设置(5)③: its book is served from balances and
        holdings, not credit reports): from the law's 50 records up is a case, and 49 is a near
        miss that must stay silent. Their whole day is this reading, so the count is exactly what
        was drawn."""
        rng = self.rng
        reads = (
            ("credit_system", ["customer_name", "credit_report"]),
            ("credit_system", ["customer_name", "repayment_history"]),
            ("credit_system", ["customer_name", "loan_details"]),
        )
        cases = [True] * self._count(1) + [False] * self._count(1)
        for case in cases:
            e = self._take(["lobby_manager", "wealth_manager"])
            self.quiet.add(e.id)
            n = (
                rng.randint(LAW_SENSITIVE_RECORDS, LAW_SENSITIVE_RECORDS + 25)
                if case
                else LAW_SENSITIVE_RECORDS - 1
            )
            times = self._through_a_day(n, (5, 12))  # a few an hour
            for ts, cid in zip(times, rng.sample(self._ensure_book(e.org, n), n), strict=True):
                system, fields = rng.choice(reads)
                self._access(ts, e, e.org, system, Action.view, [cid], fields)
            if case:
                self._violation(
                    "bulk_query",
                    "low_and_slow",
                    e.id,
                    times[0],
                    times[-1],
                    f"{e.roles[0].replace('_', ' ').capitalize()} {e.id} ({e.org}) read {n} customers' credit "
                    f"or loan data in {(times[-1] - times[0]) // HOUR + 1} h, a few an hour: past the judicial "
                    f"interpretation's {LAW_SENSITIVE_RECORDS} records over a day.",
                )

    def _through_a_day(self, n: int, minutes: tuple[int, int]) -> list[int]:
        """`n` times, `minutes` apart (drawn once) with a little jitter, from 09:00 of a day early in
        the workload, or through its first hours in a short one (closer together then, all of
        them inside it)."""
        rng = self.rng
        t0 = self._work_day(self._ts(0.0, 0.3))
        if t0 + 10 * HOUR > self.end:  # a short workload: its first hours
            t0 = self.start + self.span // 20
        gap = min(rng.randint(*minutes) * MINUTE, (self.end - t0) * 9 // 10 // n)
        return [t0 + j * gap + rng.randrange(gap // 2) for j in range(n)]

    def _inject_day_harvest(self) -> None:
        """Seed 004 流程描述(4)④ (仅可在完成本职工作时查询, 原则上限制批量查询) and 掌上银行家 基本原则(1)
        (最小必要): a sub-branch product manager, whose post handles materials and sales requests and
        calls no list (organisation.yaml `product_management`), reads a list caller's day of its
        sub-branch's customers (LIST_CALLS: names, ID numbers, mobiles) at a caller's pace, a few
        minutes apart all day. No hour holds many and no count is art. 5's (5 000 such records):
        the same day is a list caller's work and no work of this post's, so what tells them apart
        is the day's customers read by whom, not how many. Their whole day is this reading."""
        rng = self.rng
        for _ in range(self._count(1)):
            e = self._take(["sb_product_mgmt"])
            self.quiet.add(e.id)
            n = rng.randint(*LIST_CALLS)
            times = self._through_a_day(n, (3, 5))
            for ts, cid in zip(times, rng.sample(self._ensure_book(e.org, n), n), strict=True):
                self._access(ts, e, e.org, "crm", Action.view, [cid], HARVEST_READ)
            self._violation(
                "bulk_query",
                "day_harvest",
                e.id,
                times[0],
                times[-1],
                f"Sub-branch product manager {e.id} ({e.org}) read {n} customers' names, ID numbers and "
                f"mobiles in {(times[-1] - times[0]) // HOUR + 1} h, a few minutes apart: a list caller's "
                "day of customers, by a post that calls no list.",
            )

    def _inject_unauthorized_lookup(self) -> None:
        """Seed 004 机构设置, 客户管理机构, 角色设置, 人员管理(4)(5), 流程描述(4)④⑤ and seed 001 §一: one
        case per way an access is unauthorized, each by its own employee, plus near misses that keep
        to the rules (an approved cross-org query). Sized from the rules, never from the detector's settings."""
        rng = self.rng
        sb_roles, managers = (
            ROLE_WEIGHTS["sub_branch"],
            ["wealth_manager", "lobby_manager", "outreach_marketing"],
        )
        branch_staff = [r for r in ROLE_WEIGHTS["branch"] if r not in SYSADMINS]
        fields = ["customer_name", "account_balance"]
        for i in range(self._count(12)):
            variant, t = i % 12, self._ts(0.2, 0.7)
            e = self._take(
                {3: branch_staff, 4: ["sb_general_user"]}.get(
                    variant, managers if variant in (5, 6, 7, 8, 10, 11) else sb_roles
                )
            )
            ts, last = t, t
            if variant == 0:
                other = self._other_sb(e.org)
                cid = rng.choice(self.customers[other])
                self._access(
                    t, e, e.org, "mobile_banker", Action.view, [cid], ["customer_name", "mobile_phone"]
                )
                rule, text = (
                    "out_of_org_scope",
                    f"{e.id} of sub-branch {e.org} viewed customer {cid} managed by {other}.",
                )
            elif variant == 1:
                old = e.org
                self._terminate_staff(e, t)
                ts = last = t + rng.randint(10 * MINUTE, min(2 * HOUR, self.end - t - MINUTE))
                cid = rng.choice(self.customers[old])
                self._access(ts, e, old, "mobile_banker", Action.view, [cid], ["customer_name", "assets"])
                rule, text = (
                    "after_termination",
                    f"{e.id} viewed customer {cid} {(ts - t) // MINUTE} min after termination.",
                )
            elif variant == 2:
                old = e.org
                new = self._transfer_staff(e, t)
                ts = last = t + MINUTE + rng.randint(10 * MINUTE, min(2 * HOUR, self.end - t - 2 * MINUTE))
                cid = rng.choice(self.customers[old])
                self._access(
                    ts, e, new, "mobile_banker", Action.view, [cid], ["customer_name", "mobile_phone"]
                )
                rule = "after_transfer"
                text = f"{e.id}, transferred from {old} to {new}, viewed {old}'s customer {cid} after the transfer."
            # in the mobile banker a branch may query its sub-branches' customers, never change them
            elif variant == 3:
                sb = rng.choice([s for s in self.customers if e.org in self.paths[s] and self.customers[s]])
                cid = rng.choice(self.customers[sb])
                self._access(t, e, e.org, "mobile_banker", Action.update, [cid], ["mobile_phone"])
                rule, text = (
                    "change_outside_managing_org",
                    f"{e.id} of branch {e.org} changed customer {cid} managed by {sb}.",
                )
            elif variant == 4:  # all-staff marketing users see contact data, not income
                cid = rng.choice(self.customers[e.org])
                self._access(
                    t, e, e.org, "crm", Action.view, [cid], ["customer_name", "occupation", "income"]
                )
                rule, text = "role_not_permitted", f"{e.id} ({e.roles[0]}) viewed customer {cid}'s income."
            elif variant == 5:
                cid = rng.choice(self.customers[e.org])
                self._access(
                    t,
                    e,
                    e.org,
                    "data_warehouse",
                    Action.query,
                    [cid],
                    ["transaction_record", "customer_segment"],
                )
                rule, text = "system_not_permitted", f"{e.id} ({e.roles[0]}) queried the data warehouse."
            elif variant == 6:
                cid = rng.choice(self.customers[e.org])
                self._access(
                    t, e, e.org, "card_system", Action.view, [cid], ["payment_account_no", "card_cvn"]
                )
                rule, text = (
                    "c3_without_approval",
                    f"{e.id} viewed customer {cid}'s card security code without an approval.",
                )
            elif variant == 7:  # an approval the requester granted themselves is none
                grant = self._grant(
                    e, t, "customer_service", e.id, ["identity", "transaction"], ["core_banking"]
                )
                ts = last = t + MINUTE
                cid = rng.choice(self.customers[e.org])
                self._access(
                    ts,
                    e,
                    e.org,
                    "core_banking",
                    Action.export,
                    [cid],
                    ["customer_name", "transaction_record"],
                    approval_id=grant,
                    purpose="customer_service",
                )
                rule, text = (
                    "self_approved_export",
                    f"{e.id} exported customer {cid}'s transactions under self-approved {grant}.",
                )
            elif (
                variant == 8
            ):  # an approval for one purpose does not open another org's customers for another
                grant = self._grant(
                    e, t, "complaint_handling", self._approver(e), ["identity", "property"], ["core_banking"]
                )
                ts = last = t + MINUTE
                cid = rng.choice(self.customers[self._other_sb(e.org)])
                self._access(
                    ts,
                    e,
                    e.org,
                    "core_banking",
                    Action.query,
                    [cid],
                    fields,
                    approval_id=grant,
                    purpose="marketing",
                )
                rule, text = (
                    "approval_beyond_purpose",
                    f"{e.id} used complaint approval {grant} to query customer {cid} for marketing.",
                )
            elif variant == 10:  # an approval's budget is spent: the next cross-org query is unapproved
                budget = rng.randint(3, 10)
                grant = self._grant(
                    e,
                    t,
                    "complaint_handling",
                    self._approver(e),
                    ["identity", "property"],
                    ["core_banking"],
                    max_records=budget,
                )
                over = rng.randint(1, 3)
                times = [t + (j + 1) * rng.randint(MINUTE, 3 * MINUTE) for j in range(budget + over)]
                times.sort()
                for ts in times:
                    cid = rng.choice(self.customers[self._other_sb(e.org)])
                    self._access(
                        ts,
                        e,
                        e.org,
                        "core_banking",
                        Action.query,
                        [cid],
                        fields,
                        approval_id=grant,
                        purpose="complaint_handling",
                    )
                ts, last = times[budget], times[-1]
                rule = "approval_beyond_budget"
                text = f"{e.id} queried {budget + over} other orgs' customers under {grant}, approved for {budget} records."
            elif variant == 11:  # an approval covers its own data and systems only
                grant = self._grant(
                    e, t, "complaint_handling", self._approver(e), ["identity", "property"], ["core_banking"]
                )
                ts = last = t + MINUTE
                cid = rng.choice(self.customers[self._other_sb(e.org)])
                system, read = rng.choice(
                    (
                        ("credit_system", ["customer_name", "credit_report"]),
                        ("core_banking", ["customer_name", "transaction_record"]),
                    )
                )
                self._access(
                    ts,
                    e,
                    e.org,
                    system,
                    Action.query,
                    [cid],
                    read,
                    approval_id=grant,
                    purpose="complaint_handling",
                )
                rule = "approval_beyond_scope"
                text = f"{e.id} read {read[-1]} of customer {cid} on {system} under {grant}, approved for identity and property data on core_banking."
            else:  # probing: a run of refused lookups of other orgs' customers within minutes
                n = rng.randint(5, 8)
                other = self._other_sb(e.org)
                for j in range(n):
                    last = t + j * rng.randint(20_000, 40_000)
                    cid = rng.choice(self.customers[other])
                    self._access(
                        last, e, e.org, "core_banking", Action.query, [cid], fields, outcome=Outcome.denied
                    )
                rule, text = (
                    "repeated_denials",
                    f"{e.id} was refused {n} lookups of {other}'s customers in {(last - t) // MINUTE + 1} min.",
                )
            self._violation("unauthorized_lookup", rule, e.id, ts, last, text)
        for _ in range(self._count(2)):  # near misses: approved cross-org queries, for their purpose and data
            e = self._take(managers)
            t = self._ts(0.2, 0.7)
            grant = self._grant(
                e, t, "complaint_handling", self._approver(e), ["identity", "property"], ["core_banking"]
            )
            for j in range(rng.randint(1, 3)):
                cid = rng.choice(self.customers[self._other_sb(e.org)])
                self._access(
                    t + (j + 1) * MINUTE,
                    e,
                    e.org,
                    "core_banking",
                    Action.query,
                    [cid],
                    fields,
                    approval_id=grant,
                    purpose="complaint_handling",
                )

        for _ in range(self._count(1)):  # near miss: an approval used up to exactly its budget
            e = self._take(managers)
            t, budget = self._ts(0.2, 0.7), rng.randint(3, 10)
            grant = self._grant(
                e,
                t,
                "complaint_handling",
                self._approver(e),
                ["identity", "property"],
                ["core_banking"],
                max_records=budget,
            )
            for j in range(budget):
                cid = rng.choice(self.customers[self._other_sb(e.org)])
                self._access(
                    t + (j + 1) * MINUTE,
                    e,
                    e.org,
                    "core_banking",
                    Action.query,
                    [cid],
                    fields,
                    approval_id=grant,
                    purpose="complaint_handling",
                )

    def _other_sb(self, org: str) -> str:
        return self.rng.choice([s for s in self.customers if s != org and self.customers[s]])

    def _approver(self, e: Employee) -> str:
        """The branch department head above who approves (seed 004 用户角色申请流程 ④: the sub-branch
        president applies, the branch's 部室负责人 approves), else head office's."""
        return next(
            (
                x.id
                for x in self.employees
                if x.id != e.id and "br_dept_head" in x.roles and x.org in self.paths[e.org]
            ),
            next(x.id for x in self.employees if "ho_dept_head" in x.roles),
        )

    def _grant(
        self,
        e: Employee,
        ts: int,
        purpose: str,
        approver: str,
        cats: list[str],
        systems: list[str],
        max_records: int = 20,
    ) -> str:
        """A new entitlement version for `e` at `ts` holding one graded approval; returns its id."""
        aid = f"AP-{self.seed}-{e.id}"
        approval = {
            "approval_id": aid,
            "purpose": purpose,
            "max_records": max_records,
            "expires_ts": ts + DAY,
            "approver_id": approver,
            "categories": cats,
            "systems": systems,
        }
        self._entitlement(e, ts, e.org, EmployeeStatus.active, e.roles, [approval])
        return aid

    def _inject_offscope_marketing(self) -> None:
        """Seeds 000, 004 流程描述(4)使用②③⑩, (1)收集⑧ and 角色设置: a push needs the subject's consent on its channel, stops
        at once on withdrawal, offers a refusal, uses data collected for marketing, is approved by a
        second person if it is an SMS, and reaches only the audience its campaign was approved for.
        One variant per rule, each to its own subject and campaign."""
        rng = self.rng
        sms = [c for c in self.campaigns if c.channel is Channel.sms]
        free = [s for s in self.customer_org if s not in self.withdrawn]
        rng.shuffle(free)
        for i in range(self._count(9)):
            variant = i % 9
            c = rng.choice(sms if variant == 2 else self.campaigns)
            ts = c.t0 + rng.randrange(HOUR)
            pick = self._subject
            if variant == 0:
                subject = pick(free, c)
                t_w = c.t0 - rng.randint(HOUR, 6 * HOUR)
                self._withdraw(subject, t_w)
                self._push(c, subject, ts)  # seed 004 流程描述(4)使用②: marketing stops at once on withdrawal
                rule = "after_withdrawal"
                text = f"{c.channel.value} push of {c.id} {(ts - t_w) // MINUTE} min after the consent was withdrawn"
            elif variant == 1:
                subject = pick(free, c)
                self._push(c, subject, ts, personalized=True, opt_out=False)
                rule, text = (
                    "personalized_without_choice",
                    f"Personalized push of {c.id} offered neither opt-out nor a non-personalized option",
                )
            elif variant == 2:
                subject = pick(free, c)
                self._push(c, subject, ts, approver=c.submitter)
                rule, text = (
                    "four_eyes",
                    f"Marketing SMS {c.id} was submitted and approved by the same employee {c.submitter}",
                )
            elif variant == 3:
                subject = pick(free, c, consent=None)
                self._push(c, subject, ts)
                rule, text = (
                    "no_consent",
                    f"{c.channel.value} push of {c.id} to a subject who never consented to marketing",
                )
            elif variant == 4:
                other = Channel.app_push if c.channel is Channel.sms else Channel.sms
                subject = pick(free, c, consent=other)
                self._push(c, subject, ts)
                rule, text = (
                    "channel_not_covered",
                    f"{c.channel.value} push of {c.id} to a subject who consented on {other.value} only",
                )
            elif variant == 5:
                subject = pick(free, c)
                data = rng.choice(LOAN_APPLICATION_DATA)
                self._push(c, subject, ts, personalized=True, data_used=data)
                rule, text = (
                    "off_purpose",
                    f"Push of {c.id} targeted with loan-application data ({', '.join(data)})",
                )
            elif variant == 7:
                subject = pick(free, c)
                self._push(c, subject, ts, personalized=False, opt_out=False)
                rule, text = (
                    "no_refusal_offered",
                    f"{c.channel.value} push of {c.id} offered no way to refuse further marketing",
                )
            elif variant == 8:  # refused this channel, still consents on another: a refusal all the same
                subject = pick(free, c)
                other = Channel.app_push if c.channel is Channel.sms else Channel.sms
                t_w = c.t0 - rng.randint(HOUR, 6 * HOUR)
                self._consent(subject, t_w - DAY, other, ConsentStatus.granted)
                # an opt-out of this channel alone names it in its purpose, as an SMS "TD" platform
                # logs it; one of `marketing` refuses every channel (purposes.yaml `withdrawal_scope`)
                self._withdraw(subject, t_w, f"marketing_{c.channel.value}")
                self._push(c, subject, ts)
                rule = "channel_refused"
                text = (
                    f"{c.channel.value} push of {c.id} on a channel refused {(ts - t_w) // MINUTE} min before"
                )
            else:
                subject, c = self._outside_audience(free, c)
                ts = c.t0 + rng.randrange(HOUR)
                self._push(c, subject, ts)
                rule, text = (
                    "audience_outside_approval",
                    f"Push of {c.id}, approved for {', '.join(c.audience)} only, to a customer of {self.customer_org[subject]}",
                )
            self._violation("offscope_marketing", rule, subject, ts, ts, f"{text} ({subject}).")

    def _subject(self, free: list[str], c: Campaign, consent: Channel | None | str = "campaign") -> str:
        """An unused customer in the campaign's audience whose marketing consent is on `consent` (the
        campaign's channel by default, None: no consent at all)."""
        want = c.channel if consent == "campaign" else consent
        scope = (
            set(c.eligible) if want is c.channel else set(self._book(c.audience[0] if c.audience else c.org))
        )
        for k, s in enumerate(free):
            if s in scope and self.consent.get(s) is want and s not in self.used:
                self.used.add(s)
                del free[k]
                return s
        raise RuntimeError(f"no unused customer for {c.id} with consent on {want}")

    def _outside_audience(self, free: list[str], base: Campaign) -> tuple[str, Campaign]:
        """A head-office campaign approved for one branch's customers (seed 004 角色设置: list-based
        campaigns per org), pushed to a consented customer of another branch. Its in-audience pushes
        are the near misses: made by `_normal_marketing` like every campaign's."""
        rng = self.rng
        branches = sorted({p[1] for p in self.paths.values() if len(p) >= 2})
        branch = rng.choice(branches)
        inside = [s for s in self._book(branch) if self.consent.get(s) is base.channel]
        # a head-office campaign is submitted and approved by head office's SMS team (seed 004 总行④⑤)
        ho = next(x for x in self.campaigns if x.org == "HO")
        c = Campaign(
            f"CMP-{self.seed}-A{len(self.campaigns):04d}",
            "HO",
            base.channel,
            base.personalized,
            ho.submitter,
            ho.approver,
            min(base.t0 + rng.randrange(45 * MINUTE), self.start + self.span * 4 // 5),  # beside another
            inside,
            [branch],
        )
        self.campaigns.append(c)
        elsewhere = [
            s
            for s, ch in self.consent.items()
            if ch is c.channel and branch not in self.paths[self.customer_org[s]]
        ]
        return self._subject(free, Campaign(c.id, "HO", c.channel, False, "", "", 0, elsewhere)), c

    def _inject_sdk_overcollection(self) -> None:
        """Seed 004 §一.(一).6-7 and 流程描述(4)⑪, seed 001 §二(5) §四.4: only declared SDKs, only the
        fields each declares, only after the user agreed to the privacy policy, never C3 data or
        authentication helpers, only to declared hosts inside China, no more often than declared.
        Each case is one observation past the line; the near misses (`_sdk_near_misses`) stay short of it."""
        rng = self.rng
        sdks = self.policy.sdks
        decls = sdks.sdks
        secret = self._sdk_secret()
        for i in range(self._count(8)):
            ts, variant = self._ts(0.05, 0.9), i % 8
            sid = rng.choice(sorted(decls))
            decl = decls[sid]
            fields = rng.sample([f for f in decl.fields if f not in secret], min(3, len(decl.fields)))
            host = rng.choice(decl.hosts) if decl.hosts else None
            if variant == 0:
                extra = rng.choice(
                    [f for f in ("contacts", "sms_content", "call_log") if f not in decl.fields]
                )
                self._sdk(ts, sid, [*fields, extra], [], host, True)
                rule, text = "omitted_field", f"SDK {sid} collected '{extra}', which its declaration omits."
            elif variant == 1:
                known = rng.choice(sorted(sdks.known_sdks.values(), key=lambda k: k.name))
                by_host = i % 2 == 1
                sid = f"sdk_{i}" if by_host else f"{known.package_prefixes[0]}agent{i}"
                self._sdk(ts, sid, ["imei", "oaid", "installed_apps"], [], f"log.{known.hosts[0]}", True)
                rule, text = "undeclared_sdk", f"{known.name}, never declared, collected device ids as {sid}."
            elif variant == 2:
                self._sdk(ts, sid, fields, [], host, False)
                rule, text = (
                    "before_consent",
                    f"SDK {sid} collected {', '.join(fields)} before the user agreed.",
                )
            elif variant == 3:
                code = rng.choice(sorted(f for f in secret if sdks.sdk_fields[f].auth_helper))
                self._sdk(ts, sid, [*fields, code], [], host, True)
                rule, text = "c3_or_auth_helper", f"SDK {sid} received an authentication helper ({code})."
            elif variant == 4:
                stmt = rng.choice([s for s in sdks.not_collected if s.sdks])
                sid = rng.choice(stmt.sdks or [])
                said = rng.choice(stmt.fields)
                self._sdk(ts, sid, [decls[sid].fields[0], said], [], None, True)
                rule, text = (
                    "incorrect_field",
                    f"SDK {sid} collected '{said}', which the policy says it does not get.",
                )
            elif variant in (5, 6):
                sid = rng.choice(sorted(s for s, d in decls.items() if d.hosts))
                fields = [f for f in decls[sid].fields if f not in secret][:2]
                if variant == 5:
                    self._sdk(ts, sid, fields, [], f"collect{i}.example-tracker.com", True)
                    rule, text = "host_not_allowed", f"SDK {sid} sent data to an undeclared host."
                else:
                    self._sdk(ts, sid, fields, [], decls[sid].hosts[0], True, country="SG")
                    rule, text = "country_not_allowed", f"SDK {sid} sent data to an endpoint in SG."
            else:
                sid, limit = next(
                    (s, d.max_per_device_hour) for s, d in sorted(decls.items()) if d.max_per_device_hour
                )
                device, gap = self.rng.randrange(len(self.customer_org)), 50 * MINUTE // (limit + 1)
                for k in range(limit + 1):  # one more than the declared bound within 50 minutes
                    self._sdk(
                        ts + k * gap, sid, decls[sid].fields[:1], [], decls[sid].hosts[0], True, device=device
                    )
                ts_end = ts + limit * gap
                self._violation(
                    "sdk_overcollection",
                    "too_frequent",
                    sid,
                    ts_end,
                    ts_end,
                    f"SDK {sid} collected from one device {limit + 1} times within an hour (declared: {limit}).",
                )
                continue
            self._violation("sdk_overcollection", rule, sid, ts, ts, text)
        self._sdk_near_misses()

    def _sdk_secret(self) -> set[str]:
        """C3 fields and authentication helpers: never for an SDK (seed 004 流程描述(4)⑪)."""
        return {f for f, d in self.policy.sdks.sdk_fields.items() if d.jr_class == "C3" or d.auth_helper}

    def _sdk_near_misses(self) -> None:
        """Normal-looking observations close to each rule: fields reached through a declared broad
        term (PoliCheck `vague`), a declared SDK reported by its package name, a device exactly at its
        declared rate, a subdomain of a declared host. None breaks a rule."""
        rng = self.rng
        decls, covers, secret = self.policy.sdks.sdks, self.policy.sdks.broad_terms, self._sdk_secret()
        for i in range(self._count(4)):
            ts = self._ts(0.05, 0.9)
            broad = [(s, t) for s, d in sorted(decls.items()) for t in d.fields if t in covers]
            sid, term = rng.choice(broad)
            host = decls[sid].hosts[0] if decls[sid].hosts else None
            self._sdk(ts, sid, [term, *covers[term][:3]], [], host, True)
            sid = rng.choice(sorted(s for s, d in decls.items() if d.package_prefixes and d.hosts))
            d = decls[sid]
            plain = [f for f in d.fields if f not in secret][:2]
            self._sdk(ts, f"{d.package_prefixes[0]}core", plain, [], f"edge{i}.{d.hosts[0]}", True)
        sid, limit = next(
            (s, d.max_per_device_hour) for s, d in sorted(decls.items()) if d.max_per_device_hour
        )
        device, ts = rng.randrange(len(self.customer_org)), self._ts(0.05, 0.9)
        for k in range(limit):  # exactly the declared bound within one hour
            self._sdk(
                ts + k * (HOUR // limit),
                sid,
                decls[sid].fields[:1],
                [],
                decls[sid].hosts[0],
                True,
                device=device,
            )
