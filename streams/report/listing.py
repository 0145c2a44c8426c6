"""What the report's alert and incident tables share with `lifemon alerts` and `lifemon incidents`:
the command that lists the same rows, the line a cut table says, a review's mark."""

from __future__ import annotations

from datetime import datetime
from html import escape
from zoneinfo import ZoneInfo

from streams.report.charts import SEVERITY_COLOURS
from streams.report.period import Period, in_zone


def iso(t: datetime, zone: ZoneInfo) -> str:
    """A period's end as `lifemon alerts --since` takes it: the bank's time, its offset (+08:00)."""
    return in_zone(t, zone).isoformat(timespec="minutes")


def listing_command(command: str, period: Period, total: int) -> str:
    """The CLI command that lists the same rows as the report's table, to cross-check it."""
    return f"lifemon {command}{period_args(period)} --limit {max(total, 1)}"


def period_args(period: Period) -> str:
    """` --since … --until …`: the period as `lifemon alerts` takes it."""
    ends = [(f"--{n}", t) for n, t in (("since", period.since), ("until", period.until)) if t]
    return "".join(f" {flag} {iso(t, period.zone)}" for flag, t in ends)


def cut(shown: int, total: int, what: str, kept: str, note: str = "") -> str:
    """A cut table's line: which `shown` rows of `total` it kept (`kept`: "the most severe")."""
    if total <= shown:
        return ""
    return f"<p class=sub><b>the {shown:,} {kept} of {total:,} {what} shown</b>{note}</p>"


def by_severity(counts: dict[str, int]) -> str:
    """`1 critical, 5,000 high`: most severe first."""
    order = [*(s for s in SEVERITY_COLOURS if s in counts), *(s for s in counts if s not in SEVERITY_COLOURS)]
    return ", ".join(f"{counts[s]:,} {s}" for s in order if counts[s])


# the verdicts whose name alone a manager would misread: `regulator_notified` is not the notice
# given to the individuals, which it leaves owed
REVIEW_LABELS = {
    "false_positive": "false positive / 误报",
    "regulator_notified": "regulator notified / 已报告监管",
}


def review_mark(review: str | None) -> str:
    """An alert's or incident's review under its status; nothing for one not reviewed (most)."""
    if not review or review == "unreviewed":
        return ""
    shown = REVIEW_LABELS.get(review, review)
    return f"<br><small class=review>{escape(shown)}</small>"
