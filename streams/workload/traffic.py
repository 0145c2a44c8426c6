"""Normal traffic on every stream, built to break no rule of DESIGN.md §1."""

from __future__ import annotations

from collections import Counter, OrderedDict
from itertools import accumulate

from schemas.models import (
    Action,
    EmployeeStatus,
    Outcome,
)
from streams.workload.base import (
    C1_EXPORT,
    CASELOAD,
    COUNTER_WORK,
    DAY,
    EXPORT_RATE,
    HOUR,
    HOURLY_CUSTOMERS,
    MARKETING_DATA,
    MINUTE,
    READS,
    SDK_WEIGHTS,
    STATEMENT_ROWS,
    SYSADMINS,
    SYSTEM_CUM_WEIGHTS,
    SYSTEMS,
    UPDATES,
    WALK_INS,
    Employee,
)
from streams.workload.jobs import Jobs

# what a hotline agent looks up after identifying the caller (seed 004's 95526 service line)
HOTLINE_READS = (
    ["customer_name", "account_balance"],
    ["customer_name", "transaction_record"],
    ["customer_name", "home_address"],
)


class Traffic(Jobs):
    def _normal_access(self) -> None:
        """Staff serve their own scope's customers a few at a time, in working hours (see
        HOURLY_CUSTOMERS, CASELOAD); hotline agents, batch jobs and HO approval holders read many
        customers under their approvals (`_approved_traffic`), and the ordinary jobs of a bank's
        day read many by their nature (`_ordinary_jobs`): each a share of the accesses."""
        rng = self.rng
        self._approved_traffic()
        self._ordinary_jobs()
        apart = self.quiet | {e.id for e in self.agents}
        staff = [e for e in self.employees if not set(e.roles) <= set(SYSADMINS) and e.id not in apart]
        counts = Counter(
            rng.choices(
                range(len(staff)), [rng.lognormvariate(0, 0.5) for _ in staff], k=self._target("access")
            )
        )
        # all staff's accesses in time order (records made in time order are faster to validate and merge)
        plan = sorted((ts, i, org) for i, e in enumerate(staff) for ts, org in self._timeline(e, counts[i]))
        hour: list[int] = [-1] * len(staff)
        seen: list[list[str]] = [[] for _ in staff]  # customers served this clock hour
        day: list[OrderedDict[str, int]] = [OrderedDict() for _ in staff]  # customer -> last read, a day back
        exported = [False] * len(staff)
        denied = [-1] * len(staff)  # the clock hour of an employee's last denied attempt
        for ts, i, org in plan:
            e = staff[i]
            if ts // HOUR != hour[i]:
                hour[i], seen[i], exported[i] = ts // HOUR, [], False
            if "teller" in e.roles:
                self._counter(ts, e, org, seen[i], day[i])
                continue
            system = rng.choices(SYSTEMS, cum_weights=SYSTEM_CUM_WEIGHTS)[0]
            if not self._may(e, Action.view, system, []):
                system = rng.choice([s for s in SYSTEMS if self._may(e, Action.view, s, [])])
            update = rng.choice(UPDATES)
            if (
                not exported[i]
                and rng.random() < EXPORT_RATE
                and self._may(e, Action.export, system, C1_EXPORT)
            ):
                exported[i] = True
                subjects = list(
                    dict.fromkeys(self._pick(seen[i], day[i], ts, org) for _ in range(rng.randint(1, 2)))
                )
                self._access(ts, e, org, system, Action.export, subjects, C1_EXPORT)
            elif (
                org in self.customers  # only the managing sub-branch updates
                and rng.random() < 0.04
                and self._may(e, Action.update, "core_banking", update)
            ):
                cid = self._pick(seen[i], day[i], ts, org)
                self._access(ts, e, org, "core_banking", Action.update, [cid], update)
            else:
                action = Action.view if rng.random() < 0.6 else Action.query
                fields = rng.choice([f for f in READS[system] if self._may(e, action, system, f)])
                # now and then a click the system refuses: one an hour at most, never a pattern
                outcome = Outcome.success
                if denied[i] != ts // HOUR and rng.random() < 0.01:
                    denied[i], outcome = ts // HOUR, Outcome.denied
                rows = rng.randint(*STATEMENT_ROWS) if "transaction_record" in fields else None
                subjects = [self._pick(seen[i], day[i], ts, org)]
                self._access(ts, e, org, system, action, subjects, fields, row_count=rows, outcome=outcome)

    def _counter(self, ts: int, e: Employee, org: str, seen: list[str], day: OrderedDict[str, int]) -> None:
        """A teller's counter visit: an ID check, a posting, a balance or a printed statement, for a
        customer of its sub-branch or, now and then, another branch's who walked in (within the
        same hourly and daily caseload as any desk)."""
        rng = self.rng
        action, fields, purpose = rng.choice(COUNTER_WORK)
        if rng.random() < WALK_INS and len(seen) < HOURLY_CUSTOMERS and len(day) < CASELOAD:
            cid = self._served(seen, day, ts, rng.choice(self.customers[self._other_sb(org)]))
        else:
            cid = self._pick(seen, day, ts, org)
        rows = rng.randint(*STATEMENT_ROWS) if action is Action.print else None
        self._access(ts, e, org, "core_banking", action, [cid], fields, row_count=rows, purpose=purpose)

    def _approved_traffic(self) -> None:
        """Reading that is only normal under a graded approval (seed 004 流程描述(4)④): hotline agents
        take calls all working day, each call a customer of any org; batch service accounts export
        the regulatory report's transactions at night; HO approval holders run approved exports.
        Each approval covers its purpose, data and systems, and its budget is what the work needs
        (rounded up; the batch's exactly, a near miss at the budget)."""
        rng = self.rng
        approver = next(e.id for e in self.employees if "ho_dept_head" in e.roles)
        customers = list(self.customer_org)
        expires = self.end + 7 * DAY
        calls = self._target("access") // 40  # ~3 accesses a call: about a tenth of all accesses
        for k, e in enumerate(self.agents):
            aid, used = f"AP-{self.seed}-HOTLINE-{k:03d}", 0
            for ts, _ in self._timeline(e, calls // len(self.agents)):
                cid = rng.choice(customers)
                steps = [["customer_name", "mobile_phone", "id_document_no"], *rng.sample(HOTLINE_READS, 2)]
                for j, fields in enumerate(steps[: rng.randint(1, 3)]):
                    rows = rng.randint(*STATEMENT_ROWS) if "transaction_record" in fields else None
                    self._access(
                        ts + j * rng.randint(20_000, 90_000),
                        e,
                        "HO",
                        "core_banking",
                        Action.query,
                        [cid],
                        fields,
                        row_count=rows,
                        approval_id=aid,
                        purpose="customer_service",
                    )
                    used += rows or 1
            budget = -(-used // 500) * 500
            grant = self._approval(aid, "customer_service", budget, expires, approver)
            grant |= {
                "categories": ["identity", "contact", "property", "transaction"],
                "systems": ["core_banking"],
            }
            self._entitlement(e, self.start - DAY, "HO", EmployeeStatus.active, e.roles, [grant])
        nights = range(self._work_day(self.start) - 7 * HOUR, self.end - HOUR, DAY)  # 02:00 Beijing time
        for k, e in enumerate(self.services):
            aid, used = f"AP-{self.seed}-BATCH-{k:02d}", 0
            for night in [n for n in nights if n >= self.start] or [self._ts(0.1, 0.3)]:
                for j in range(rng.randint(2, 5)):
                    chunk = rng.sample(customers, min(500, len(customers)))
                    ts = night + k * 20 * MINUTE + j * rng.randint(MINUTE, 3 * MINUTE)
                    fields = ["customer_name", "transaction_record"]
                    self._access(
                        ts,
                        e,
                        "HO",
                        "data_warehouse",
                        Action.export,
                        chunk,
                        fields,
                        approval_id=aid,
                        purpose="regulatory_report",
                    )
                    used += len(chunk)
            grant = self._approval(aid, "regulatory_report", used, expires, approver)
            grant |= {"categories": ["identity", "transaction"], "systems": ["data_warehouse"]}
            self._entitlement(e, self.start - DAY, "HO", EmployeeStatus.active, e.roles, [grant])
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

    def _may(self, e: Employee, action: Action, system: str, fields: list[str]) -> bool:
        """The employee's roles allow this action on these fields in this system (organisation.yaml)."""
        if self.catalog.never_allows(system, action):
            return False
        return all(self.catalog.role_grants(e.roles, action, system, fields))

    def _timeline(self, e: Employee, k: int) -> list[tuple[int, str]]:
        """k sorted times inside the employee's employment segments, each with the org of the time,
        as busy as the bank's clock hour (`_hour_weight`: working hours, lunch, weekends)."""
        slots = []  # (from, to, org): the segments cut at clock hours
        for t0, t1, org in e.segments:
            while t0 < t1:
                cut = min(t1, (t0 // HOUR + 1) * HOUR)
                slots.append((t0, cut, org))
                t0 = cut
        if not slots:
            return []
        cum = list(accumulate(self._hour_weight(a) * (b - a) for a, b, _ in slots))
        picked = self.rng.choices(slots, cum_weights=cum, k=k)
        return sorted((a + self.rng.randrange(b - a), org) for a, b, org in picked)

    def _pick(self, seen: list[str], day: OrderedDict[str, int], ts: int, org: str) -> str:
        """A customer for the next access: mostly one already served this hour, never a 5th new one
        in the hour nor a new one past the day's caseload (then a customer served earlier today)."""
        while day and next(iter(day.values())) <= ts - DAY:
            day.popitem(last=False)
        if seen and (len(seen) >= HOURLY_CUSTOMERS or self.rng.random() < 0.6):
            cid = self.rng.choice(seen)
        elif len(day) >= CASELOAD:  # of today's customers, one the desk still sees (after a transfer)
            mine = [c for c in day if org in self.paths[self.customer_org[c]]]
            cid = self.rng.choice(mine or self._book(org))
        else:
            cid = self.rng.choice(self._book(org))
        return self._served(seen, day, ts, cid)

    @staticmethod
    def _served(seen: list[str], day: OrderedDict[str, int], ts: int, cid: str) -> str:
        """`cid` served at `ts`: among the hour's customers, the day's latest."""
        if cid not in seen:
            seen.append(cid)
        day[cid] = ts
        day.move_to_end(cid)
        return cid

    def _approval(self, aid: str, purpose: str, budget: int, expires: int, approver: str) -> dict:
        return {
            "approval_id": aid,
            "purpose": purpose,
            "max_records": budget,
            "expires_ts": expires,
            "approver_id": approver,
        }

    def _normal_sdk(self) -> None:
        rng = self.rng
        decls = self.policy.sdks.sdks
        ids = sorted(decls)
        cum_weights = list(accumulate(SDK_WEIGHTS.get(s, 2) for s in ids))
        secret = self._sdk_secret()
        fields_of = {sid: [f for f in d.fields if f not in secret] for sid, d in decls.items()}
        for ts in sorted(self._ts() for _ in range(self._target("sdk"))):
            d = decls[sid := rng.choices(ids, cum_weights=cum_weights)[0]]
            fields = rng.sample(fields_of[sid], rng.randint(1, min(6, len(fields_of[sid]))))
            perms = rng.sample(d.permissions, rng.randint(0, len(d.permissions)))
            self._sdk(ts, sid, fields, perms, rng.choice(d.hosts) if d.hosts else None, True)

    def _mass_notice(self) -> None:
        """A rate-change notice the bank sends through its marketing platform, written to its one
        log as a notice (seed 004 流程描述(1)⑥): to every customer who had refused marketing by
        then and to one in forty of the rest, addressed by name and number, with no opt-out. It
        raises nothing (probe_v2 F4: one alert per refuser)."""
        c = self.campaigns[0]  # head office's SMS team sends it
        ts = self.start + self.span * 9 // 10
        told = sorted({*(s for s, at in self.withdrawn.items() if at < ts), *list(self.customer_org)[::40]})
        for k, subject in enumerate(told):
            self.out["marketing"].append(
                {
                    "ts": ts + k * 1000,
                    "subject_id": subject,
                    "channel": c.channel,
                    "campaign_id": f"NTC-{self.seed}-RATE",
                    "purpose": "account_service",
                    "data_used": ["customer_name", "mobile_phone"],
                    "personalized": False,
                    "opt_out_offered": False,
                    "non_personalized_option": False,
                    "submitter_id": c.submitter,
                    "org_id": c.org,
                    "kind": "notice",
                }
            )

    def _normal_marketing(self) -> None:
        """Pushes within an hour of their campaign, only while the subject's consent stands."""
        rng = self.rng
        pushes: list[tuple] = []
        # near misses (seed 004 流程描述(4)使用②): a push minutes before the subject withdraws is in time
        for c in rng.sample(self.campaigns, min(len(self.campaigns), self._count(2))):
            subject = rng.choice(c.eligible)
            if subject not in self.used and subject not in self.withdrawn:
                self.used.add(subject)
                ts = c.t0 + rng.randrange(HOUR)
                self._withdraw(subject, ts + rng.randint(1, 10) * MINUTE)
                pushes.append((ts, c.id, subject, c))
        self._mass_notice()
        todo = self._target("marketing")
        while len(pushes) < todo:
            c = rng.choice(self.campaigns)
            subject, ts = rng.choice(c.eligible), c.t0 + rng.randrange(HOUR)
            if ts < self.withdrawn.get(subject, self.end + 1):
                pushes.append((ts, c.id, subject, c))
        for ts, _, subject, c in sorted(pushes, key=lambda p: p[:3]):
            if c.personalized:
                # near misses: data the bank lets marketing use (purposes.yaml), and
                # often an opt-out alone, which suffices for a personalized push (seed 004 流程描述(4)使用③)
                self._push(c, subject, ts, data_used=rng.choice(MARKETING_DATA), choice=rng.random() < 0.5)
            else:
                self._push(c, subject, ts)
