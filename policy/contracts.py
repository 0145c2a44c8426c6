"""Recipients and their contracts as event-time lookups: which contract is in force at a moment,
and the agreed-volume period a moment falls in. Dates in `recipients.yaml` are days of the bank's
calendar (its `timezone`); a contract is in force from the start of `valid_from` to the end of
`valid_to`. The transfer detector and the workload generator both read contracts through here, so
"in force" means one thing."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from policy.model import Contract, Recipient, Recipients, VolumePeriod
from schemas.models import RecipientType


@dataclass(frozen=True)
class ContractTerm:
    contract: Contract
    start_ms: int  # first millisecond in force
    end_ms: int  # first millisecond no longer in force
    categories: frozenset[str]


class RecipientBook:
    def __init__(self, recipients: Recipients):
        self.tz = ZoneInfo(recipients.timezone)
        self.home_country = recipients.home_country
        self.recipients: dict[str, Recipient] = dict(recipients.recipients)
        self.terms: dict[str, list[ContractTerm]] = {
            rid: [self._term(c) for c in r.contracts] for rid, r in self.recipients.items()
        }
        self.contract_of: dict[str, str] = {t.contract.id: rid for rid, ts in self.terms.items() for t in ts}
        self.assessments: dict[str, list[tuple[str, int, int]]] = {
            rid: [
                (a.id, self.day_start(a.valid_from), self.day_start(a.valid_to + timedelta(days=1)))
                for a in r.assessments
            ]
            for rid, r in self.recipients.items()
        }
        self._assessed_types = frozenset(r.type for r in self.recipients.values() if r.assessments)

    def day_start(self, day: date) -> int:
        return int(datetime.combine(day, time(), self.tz).timestamp() * 1000)

    def _term(self, c: Contract) -> ContractTerm:
        return ContractTerm(
            c,
            self.day_start(c.valid_from),
            self.day_start(c.valid_to + timedelta(days=1)),
            frozenset(c.categories),
        )

    def in_force(self, recipient_id: str, ts: int, contract_id: str | None = None) -> ContractTerm | None:
        """The named contract if it is this recipient's and in force at `ts`; without a name, the
        recipient's contract in force at `ts` (the latest to start, when several are)."""
        live = [t for t in self.terms.get(recipient_id, ()) if t.start_ms <= ts < t.end_ms]
        if contract_id is not None:
            live = [t for t in live if t.contract.id == contract_id]
        return max(live, key=lambda t: t.start_ms, default=None)

    def assessed(self, recipient_id: str, assessment_id: str | None, ts: int) -> bool:
        """The assessment is one declared for this recipient and valid at `ts`."""
        return any(
            a == assessment_id and start <= ts < end
            for a, start, end in self.assessments.get(recipient_id, ())
        )

    def records_assessments(self, types: Iterable[RecipientType]) -> bool:
        """Some recipient of these types has an assessment on record: the bank keeps them here."""
        return not self._assessed_types.isdisjoint(types)

    def declared(self, recipient_id: str, assessment_id: str) -> bool:
        """The assessment is one recipients.yaml declares for this recipient, at any time."""
        return any(a == assessment_id for a, _, _ in self.assessments.get(recipient_id, ()))

    def assessment_at(self, recipient_id: str, ts: int) -> str | None:
        """An assessment declared for this recipient and valid at `ts` (the first declared), or None."""
        return next(
            (a for a, start, end in self.assessments.get(recipient_id, ()) if start <= ts < end), None
        )

    def period(self, term: ContractTerm, ts: int) -> tuple[int, int]:
        """[start, end) in epoch ms of the agreed-volume period `ts` falls in."""
        volume = term.contract.volume
        if volume is None or volume.per is VolumePeriod.term:
            return term.start_ms, term.end_ms
        day = datetime.fromtimestamp(ts / 1000, self.tz).date()
        if volume.per is VolumePeriod.day:
            first, after = day, day + timedelta(days=1)
        elif volume.per is VolumePeriod.month:
            first = day.replace(day=1)
            after = date(first.year + first.month // 12, first.month % 12 + 1, 1)
        else:
            first, after = date(day.year, 1, 1), date(day.year + 1, 1, 1)
        return self.day_start(first), self.day_start(after)
