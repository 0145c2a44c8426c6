"""Shared accounts (seed 004 流程描述(4)④ 严禁共用账户): two people at once under one login, one PC
driving two logins at once, and beside them what one person's day looks like from near (a quick
trip to the laptop and back, a counter PC handed over at the shift change with a customer finished
after it). Sized from how people take turns, never from the detectors' settings."""

from __future__ import annotations

from schemas.models import Action
from streams.workload.base import HOUR, MINUTE, Employee
from streams.workload.violations import Violations

# what a teller reads of its sub-branch's customers while the account is shared: balances on core
# banking, as at the counter (organisation.yaml `counter_service`)
DESK_READ = ("core_banking", ["customer_name", "account_balance"])


class Sharing(Violations):
    def _inject_shared_accounts(self) -> None:
        """Per case: a teller's account used at its counter PC and, by a colleague, at a spare PC of
        the sub-branch, by turns; and a spare PC where two tellers each work under their own login
        by turns. Each turn is a read of one of the sub-branch's customers a minute or three
        after the last; 5 to 7 turns are 3 to 5 returns to a place (an account) left minutes before."""
        for _ in range(self._count(2)):
            e, _ = self._pair()
            pc, times = self._spare_pc(), self._turns()
            counter = self._address(e, times[0])
            places = [counter, pc]
            for j, ts in enumerate(times):
                self._desk_read(ts, e, places[j % 2])
            self._violation(
                "shared_account",
                "used_from_two_workstations",
                e.id,
                times[0],
                times[-1],
                f"Teller {e.id}'s account ({e.org}) used at counter PC {counter} and at spare PC {pc} by turns, "
                f"{len(times)} reads in {(times[-1] - times[0]) // MINUTE} minutes: two people under one login.",
            )
        for _ in range(self._count(2)):
            a, b = self._pair()
            pc, times = self._spare_pc(), self._turns()
            for j, ts in enumerate(times):
                self._desk_read(ts, (a, b)[j % 2], pc)
            self._violation(
                "shared_workstation",
                "several_accounts_at_one_workstation",
                pc,
                times[0],
                times[-1],
                f"Spare PC {pc} ({a.org}) used under {a.id}'s and {b.id}'s logins by turns, {len(times)} "
                f"reads in {(times[-1] - times[0]) // MINUTE} minutes.",
            )

    def _shared_near_misses(self) -> None:
        """Normal work that comes near: a trip from the counter to the back office's PC and back
        within minutes (one return), and a PC handed over with the outgoing teller finishing one
        customer after the next teller's first (two returns). Not violations."""
        for _ in range(self._count(1)):
            e, _ = self._pair()
            n = self.own_rng.randint(2, 4)
            times = self._turns(2 * n + self.own_rng.randint(1, 2))
            counter, away = self._address(e, times[0]), self._spare_pc()
            places = [counter] * n + [away] * (len(times) - 2 * n) + [counter] * n
            for ts, place in zip(times, places, strict=True):
                self._desk_read(ts, e, place)
        for _ in range(self._count(1)):
            out, nxt = self._pair()
            n = self.own_rng.randint(2, 4)
            hands = [out] * n + [nxt, out] + [nxt] * n
            pc = self._spare_pc()
            for ts, who in zip(self._turns(len(hands)), hands, strict=True):
                self._desk_read(ts, who, pc)

    def _pair(self) -> tuple[Employee, Employee]:
        """Two tellers of one sub-branch kept for these cases (`Bank._teller_pairs`), doing nothing
        else all day: their accesses are the case's alone."""
        pair = self.teller_pairs.pop()
        self.quiet.update(e.id for e in pair)
        return pair

    def _spare_pc(self) -> str:
        """A PC no desk, counter or VPN session has (10.249.x.y): a back-office or spare machine."""
        n = len(self.spare_pcs)
        self.spare_pcs.append(f"10.249.{n >> 8 & 255}.{n % 254 + 1}")
        return self.spare_pcs[-1]

    def _turns(self, n: int | None = None) -> list[int]:
        """The times of `n` (5 to 7) reads a minute or three apart, in the first office day the
        workload holds (anywhere in it, if it holds none), all inside it."""
        n = n or self.own_rng.randint(5, 7)
        nine = self._work_day(self.start)
        lo, hi = (nine, min(self.end, nine + 8 * HOUR)) if nine + HOUR < self.end else (self.start, self.end)
        t = self.own_rng.randrange(lo, hi - n * 3 * MINUTE)
        times = []
        for _ in range(n):
            times.append(t)
            t += self.own_rng.randint(60, 180) * 1000
        return times

    def _desk_read(self, ts: int, e: Employee, place: str) -> None:
        """A read of one of the employee's sub-branch's customers from `place`."""
        system, fields = DESK_READ
        cid = self.own_rng.choice(self._ensure_book(e.org, 1))
        self._access(ts, e, e.org, system, Action.view, [cid], fields, client_ip=place)
