"""Ordinary jobs that read many customers a day by their nature (probe_u4 L1): a customer manager
calling a 名单式 campaign's list, an AML analyst clearing cases and name-screening hits, a back-office
clerk reviewing the branch's account openings or card files. Normal traffic: none of them breaks a
rule, and a monitor that alerts on them alerts on a bank's ordinary day."""

from __future__ import annotations

from schemas.models import Action
from streams.workload.base import (
    AML_CASE_READ,
    AML_CASE_ROWS,
    AML_CASES,
    AML_HIT_READ,
    AML_HITS,
    BACK_OFFICE_FILES,
    BACK_OFFICE_WORK,
    LIST_CALLERS,
    LIST_CALLS,
    LIST_READ,
    OFFICE_HOURS,
    Employee,
)
from streams.workload.sharing import Sharing


class Jobs(Sharing):
    def _ordinary_jobs(self) -> None:
        """Each job's day at its pace (`_paced`), by the staff who hold it: the AML analysts and
        back-office clerks staffed for it (`_build_bank`), whose whole day it is, and customer
        managers the campaign's list is dispatched to, who serve their own customers besides."""
        rng = self.rng
        for e in self._holding("aml_analyst"):
            for ts in self._paced(AML_CASES):  # the case customer's flows, read for the duty the law sets
                rows = rng.randint(*AML_CASE_ROWS)
                cid = rng.choice(self._book("HO"))
                self._access(
                    ts, e, "HO", "core_banking", Action.query, [cid], AML_CASE_READ, rows, purpose="kyc_aml"
                )
            # a hit: is this customer the listed person? each hit of the day another customer
            hits = self._paced(AML_HITS)
            for ts, cid in zip(hits, rng.sample(self._book("HO"), len(hits)), strict=True):
                self._access(ts, e, "HO", "core_banking", Action.view, [cid], AML_HIT_READ, purpose="kyc_aml")
        for e in self._holding("ops_back_office"):
            system, fields = rng.choice(BACK_OFFICE_WORK)  # a clerk's desk: openings, or card files
            for ts in self._paced(BACK_OFFICE_FILES):
                cid = rng.choice(self._book(e.org))
                self._access(ts, e, e.org, system, Action.view, [cid], fields, purpose="account_service")
        for e in self._list_callers():
            self._call_list(e)

    def _holding(self, role: str) -> list[Employee]:
        """The staff whose one role is the job's; their day is the job's alone."""
        staff = [e for e in self.employees if e.roles == [role]]
        self.quiet.update(e.id for e in staff)
        return staff

    def _list_callers(self) -> list[Employee]:
        """The customer managers the list is dispatched to: at their sub-branch all the workload
        (no transfer, no termination) and in no injected case."""
        whole = [(self.start, self.end)]
        staff = [
            e
            for e in self.cast
            if e.roles[0] in LIST_CALLERS
            and e.id not in self.used
            and e.id not in self.quiet
            and [s[:2] for s in e.segments] == whole
        ]
        return self.rng.sample(staff, min(len(staff), self._holders("list_calls", LIST_CALLS)))

    def _call_list(self, e: Employee) -> None:
        """A caller's share of the list, a new part each office day: its sub-branch's customers with
        a standing marketing consent (seed 004 流程描述(4)②), each called once. They stay out of
        the marketing near misses, whose withdrawal would fall after a call was planned."""
        rng = self.rng
        pool = [
            c
            for c in self.customers[e.org]
            if c in self.consent and c not in self.withdrawn and c not in self.used and c not in self.former
        ]
        rng.shuffle(pool)
        for ts in self._paced(LIST_CALLS):
            if not pool:
                return
            cid = pool.pop()
            self.used.add(cid)
            self._access(ts, e, e.org, "mobile_banker", Action.view, [cid], LIST_READ, purpose="marketing")

    def _paced(self, per_day: tuple[int, int]) -> list[int]:
        """A job's times at its pace: each office day `per_day` of them (drawn), evenly through
        its office hours with a little jitter; those inside the workload."""
        rng = self.rng
        times = []
        for nine in self._office_days():
            n = rng.randint(*per_day)
            step = OFFICE_HOURS // n
            for j in range(n):
                ts = nine + j * step + rng.randrange(step // 2)
                if self.start <= ts < self.end:
                    times.append(ts)
        return times
