"""`lifemon report`: one self-contained HTML page for compliance management, read from ClickHouse.

Charts are inline SVG (no scripts, no network), so the page can be mailed or archived as evidence.
It shows only what the tables hold: counts, pseudonyms and summaries, never a PFI value.

A report covers a period (`--month`, the bank's calendar month; `--since` / `--until`; default
everything stored) and every section keeps to it: events and coverage gaps by their minute, alerts
by their last event (as `lifemon alerts --since/--until` selects them, through the same query, so
the two list the same ids), incidents by their first event (as `lifemon incidents` does, through
its query), dead letters by when lifemon refused them. Times are in the bank's zone
(recipients.yaml `timezone`), UTC beside them for a SIEM.

`gather` reads the figures, `render` (page.py) lays out the page from its sections: events.py,
take_outs.py, lifecycle_figures.py, streams/transfer_ledger.py (what was provided to whom),
incidents.py and alerts.py; charts.py draws their bars, period.py and listing.py say their times and
the CLI commands that list the same rows.
"""

from streams.report.charts import CHART_DAYS, busiest_days, busiest_hours
from streams.report.gather import TABLE_LIMIT, gather
from streams.report.lifecycle_figures import lifecycle
from streams.report.page import render
from streams.report.period import Period, month_period
from streams.report.take_outs import TAKEN_OUT, take_outs

__all__ = [
    "CHART_DAYS",
    "TABLE_LIMIT",
    "TAKEN_OUT",
    "Period",
    "busiest_days",
    "busiest_hours",
    "gather",
    "lifecycle",
    "month_period",
    "render",
    "take_outs",
]
