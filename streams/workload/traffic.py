"""Normal traffic on every stream, built to break no rule of DESIGN.md §1."""

from __future__ import annotations

from collections import Counter
from itertools import accumulate

from schemas.models import (
    Action,
    Outcome,
)
from streams.workload.base import (
    C1_EXPORT,
    EXPORT_RATE,
    HOUR,
    HOURLY_CUSTOMERS,
    MARKETING_DATA,
    MINUTE,
    READS,
    SDK_WEIGHTS,
    SYSADMINS,
    SYSTEM_CUM_WEIGHTS,
    SYSTEMS,
    UPDATES,
    Employee,
)
from streams.workload.violations import Violations


class Traffic(Violations):
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
        denied = [-1] * len(staff)  # the clock hour of an employee's last denied attempt
        for ts, i, org in plan:
            e = staff[i]
            if ts // HOUR != hour[i]:
                hour[i], seen[i], exported[i] = ts // HOUR, [], False
            book = self._book(org)
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
                subjects = list(dict.fromkeys(self._pick(seen[i], book) for _ in range(rng.randint(1, 2))))
                self._access(ts, e, org, system, Action.export, subjects, C1_EXPORT)
            elif (
                org in self.customers  # only the managing sub-branch updates
                and rng.random() < 0.04
                and self._may(e, Action.update, "core_banking", update)
            ):
                self._access(ts, e, org, "core_banking", Action.update, [self._pick(seen[i], book)], update)
            else:
                action = Action.view if rng.random() < 0.6 else Action.query
                reads = [f for f in READS[system] if self._may(e, action, system, f)]
                # now and then a click the system refuses: one an hour at most, never a pattern
                outcome = Outcome.success
                if denied[i] != ts // HOUR and rng.random() < 0.01:
                    denied[i], outcome = ts // HOUR, Outcome.denied
                subjects = [self._pick(seen[i], book)]
                self._access(ts, e, org, system, action, subjects, rng.choice(reads), outcome=outcome)

    def _may(self, e: Employee, action: Action, system: str, fields: list[str]) -> bool:
        """The employee's roles allow this action on these fields in this system (organisation.yaml)."""
        return all(self.catalog.role_grants(e.roles, action, system, fields))

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

    def _normal_marketing(self) -> None:
        """Pushes within an hour of their campaign, only while the subject's consent stands."""
        rng = self.rng
        pushes: list[tuple] = []
        # near misses (seed 004 (三)②): a push minutes before the subject withdraws is in time
        for c in rng.sample(self.campaigns, min(len(self.campaigns), self._count(2))):
            subject = rng.choice(c.eligible)
            if subject not in self.used and subject not in self.withdrawn:
                self.used.add(subject)
                ts = c.t0 + rng.randrange(HOUR)
                self._withdraw(subject, ts + rng.randint(1, 10) * MINUTE)
                pushes.append((ts, c.id, subject, c))
        todo = self._target("marketing")
        while len(pushes) < todo:
            c = rng.choice(self.campaigns)
            subject, ts = rng.choice(c.eligible), c.t0 + rng.randrange(HOUR)
            if ts < self.withdrawn.get(subject, self.end + 1):
                pushes.append((ts, c.id, subject, c))
        for ts, _, subject, c in sorted(pushes, key=lambda p: p[:3]):
            if c.personalized:
                # near misses: data the privacy policy names for marketing (seed 004 §一.(二).3), and
                # often an opt-out alone, which suffices for a personalized push (seed 004 (三)③)
                self._push(c, subject, ts, data_used=rng.choice(MARKETING_DATA), choice=rng.random() < 0.5)
            else:
                self._push(c, subject, ts)
