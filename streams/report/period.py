"""The report's period (`--month`, `--since` / `--until`) and how its times are said: in the bank's
zone (recipients.yaml `timezone`), UTC beside them for a SIEM."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class Period:
    """The report's period: [since, until) in UTC, either end open (None), said in the bank's zone
    (recipients.yaml `timezone`). `month`: the bank's calendar month it is, when `--month` chose it."""

    since: datetime | None = None
    until: datetime | None = None
    timezone: str = "UTC"
    month: str | None = None

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def ms(self) -> tuple[int | None, int | None]:
        """(since, until) in ms since the epoch; None where open."""
        since, until = (None if t is None else int(t.timestamp() * 1000) for t in (self.since, self.until))
        return since, until

    def where(self, column: str) -> tuple[str, dict[str, Any]]:
        """` AND column` within the period (bound parameters), and the parameters."""
        sql, params = "", {}
        if self.since:
            sql += f" AND {column} >= {{since:DateTime64(3, 'UTC')}}"
            params["since"] = self.since
        if self.until:
            sql += f" AND {column} < {{until:DateTime64(3, 'UTC')}}"
            params["until"] = self.until
        return sql, params


def month_period(month: str, timezone: str) -> Period:
    """`--month 2026-01`: the bank's calendar month, from its first midnight in `timezone` to the
    next month's (Asia/Shanghai's January: 2025-12-31 16:00 to 2026-01-31 16:00 UTC)."""
    year, number = (int(part) for part in month.split("-"))
    zone = ZoneInfo(timezone)
    start = datetime(year, number, 1, tzinfo=zone)
    end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=zone)
    return Period(start.astimezone(UTC), end.astimezone(UTC), timezone, month)


def time_range(first: datetime, last: datetime | None, zone: ZoneInfo, html: bool = True) -> str:
    """`first – last` in the bank's zone, and in UTC beside it (where it differs)."""
    local = f"{in_zone(first, zone):%Y-%m-%d %H:%M}" + (
        f" – {in_zone(last, zone):%Y-%m-%d %H:%M}" if last else ""
    )
    if zone.key == "UTC":
        return f"{local} UTC"
    utc = f"{in_zone(first, UTC):%Y-%m-%d %H:%M}" + (
        f" – {in_zone(last, UTC):%Y-%m-%d %H:%M}" if last else ""
    )
    return f"{local} {zone.key} " + (f"<small>({utc} UTC)</small>" if html else f"({utc} UTC)")


def when(t: datetime, zone: ZoneInfo) -> str:
    """One time in the bank's zone, UTC beside it."""
    return time_range(t, None, zone, html=False)


def cell(t: datetime, zone: ZoneInfo, beneath: str = "") -> str:
    """A table cell's time: the bank's zone, then `beneath` (html), then UTC for a SIEM."""
    utc = "" if zone.key == "UTC" else f"<br><small>{in_zone(t, UTC):%Y-%m-%d %H:%M} UTC</small>"
    return f"{in_zone(t, zone):%Y-%m-%d %H:%M}{beneath}{utc}"


def in_zone(t: datetime, zone: ZoneInfo | Any) -> datetime:
    """`t` in `zone`; ClickHouse's DateTime64(3, 'UTC') may come back naive, meaning UTC."""
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).astimezone(zone)
