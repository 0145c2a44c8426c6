"""Uses that name a stored record and not its customer (`record_ids` set, `subject_ids` empty): a
report built from the CRM, a file sent to a processor. The injected violations read or send a record
after its deletion (seed 002 §六.6(1)); beside each, the near misses a report brings: the same kind
of report an hour before another record's deletion, and one the system refused after it."""

from __future__ import annotations

from schemas.models import Action, Outcome, RecipientType
from streams.workload.base import DAY, HOUR
from streams.workload.lifecycle import READ, L, Lifecycle
from streams.workload.transfers import PROCESSORS, Transfers

DETECTOR = "deleted_record_use"
PROCESSOR = "proc_call_center"


class RecordUses(Lifecycle, Transfers):
    def _inject_deleted_record_use(self) -> None:
        rng = self.rng
        for i in range(self._count(2)):
            e, cid = self._reader()
            rid, gone = self._deleted_record(cid)
            used = gone + rng.randint(HOUR, 3 * HOUR)
            if i % 2 == 0 or self.book.in_force(PROCESSOR, used) is None:
                self._access(used, e, e.org, READ[0], Action.view, [], READ[1], row_count=1, record_ids=[rid])
                what = "a report read the deleted record, naming no customer"
            else:  # de-identified, encrypted, under contract: nothing else is wrong with it
                fields = PROCESSORS[PROCESSOR]
                self._send(used, PROCESSOR, RecipientType.processor, fields, records=1, listed=1, deidentified=True, record_ids=[rid])  # fmt: skip
                what = f"the deleted record sent to {PROCESSOR} in a list naming no customer"
            self._violation(
                DETECTOR, "used_after_deletion", rid, gone, used, f"Record {rid}: {what}.", subject=cid
            )
            early, gone = self._deleted_record(cid)
            self._access(gone - rng.randint(HOUR, 2 * HOUR), e, e.org, READ[0], Action.view, [], READ[1], row_count=1, record_ids=[early])  # fmt: skip
            refused = gone + rng.randint(HOUR, 3 * HOUR)
            self._access(refused, e, e.org, READ[0], Action.view, [], READ[1], row_count=0, outcome=Outcome.denied, record_ids=[early])  # fmt: skip

    def _deleted_record(self, cid: str) -> tuple[str, int]:
        """A contact record of `cid` collected months ago and deleted during the day: (id, deletion)."""
        rid, gone = self._record_id(), self._ts(0.1, 0.6)
        self._lifecycle(gone - self.rng.randint(30, 300) * DAY, rid, cid, L.collect, "crm", READ[1], "customer_service")  # fmt: skip
        self._lifecycle(gone, rid, cid, L.delete, "crm", READ[1], None, method="logical_delete")
        return rid, gone
