"""`lifemon alerts`: the SOC's list of alerts from ClickHouse, newest revision of each, filtered by
detector, rule, severity (at least), actor, org, subject, status (the detector's episode), review (the
analyst's, streams/reviews.py) and time range; and `lifemon alerts show ID`, one alert with
what a triage needs: why it fired (rule, regulation), what to do (the detector's runbook), which
events caused it, the revisions the table still holds and its reviews. Values reach the queries as
bound parameters, never spliced into SQL."""

from __future__ import annotations

import re
import shutil
from collections.abc import Sequence
from datetime import UTC, datetime
from itertools import zip_longest
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from detectors import REGISTRY
from detectors.base import n_of
from policy.clause import Clause
from policy.model import Runbook
from schemas.models import SEVERITY_RANK, Severity
from streams.clickhouse import column_default, has_column
from streams.reviews import ALERTS, query_reviews, render_reviews, review_line, reviewed
from streams.sinks.clickhouse import ALERT_COLUMNS
from streams.terminal import shown
from streams.text_table import aligned, display_width

COLUMNS = (
    "last_seen",
    "severity",
    "status",
    "detector",
    "actor_id",
    "subject_count",
    "counts",
    "title_zh",
    "title_en",
    "alert_id",
)

# `--status` words -> the statuses of a newest revision they select. An episode is open at its
# first revision and updated at each later one while it lives; closed says its window ended, not
# that anyone reviewed it: an analyst's review is `--review` (streams/reviews.py `Reviewed.reviews`).
STATUSES = {"active": ["open", "updated"], "open": ["open"], "updated": ["updated"], "closed": ["closed"]}


# alerts no org is known for (a recipient's, an SDK's, a system's that keeps records, an account the
# entitlements feed does not know): one named bucket, counted as an org wherever alerts are counted by
# org (the report, the overview's "Organisations with the most alerts", `lifemon alerts --org
# none`), so their totals agree; it had been left out of the panel and left blank in the report
# (probe_v3 M6). Org ids are upper case (`Engine._org_spelling`): NONE is no org of the policy.
NO_ORG = "未知机构 / no org known"
NO_ORG_WORD = "none"
# an alert's actor that is no employee has no org: said so, where "no org known" read as data
# missing (a new user's recipient); an employee no entitlement names stays NO_ORG
NOT_EMPLOYEE = {"recipient": "接收方 / a recipient", "sdk": "第三方SDK / an SDK", "system": "系统 / a system"}


def org_of(actor_org: str, detector: str) -> str:
    """An alert's actor's org: its id; for a detector whose actors are no employees (`actor_is`:
    recipients, SDKs, systems), what the actor is and that it has no org; else NO_ORG."""
    if actor_org:
        return actor_org
    kind = str(getattr(REGISTRY.get(detector), "actor_is", "employee"))
    if kind in NOT_EMPLOYEE:
        return f"{NOT_EMPLOYEE[kind]}, not an employee: no org / 非本行员工, 无所属机构"
    return NO_ORG


# `query_alerts(order=...)`: the rows a cut listing keeps, in this order. "newest" is the CLI's;
# "severity" the most severe, then the biggest (records or customers counted, as the report sorts)
ORDERS = {
    "newest": "last_seen DESC, alert_id",
    "severity": f"indexOf({[s.value for s in Severity]}, severity) DESC, "
    "greatest(counts['records'], toInt64(subject_count)) DESC, alert_id",
}


class Listing(NamedTuple):
    """The rows a listing shows and how many match its filters (more than shown when cut by --limit)."""

    rows: list[dict[str, Any]]
    total: int


def query_alerts(
    client: Any,
    database: str,
    *,
    limit: int = 50,
    order: str = "newest",  # a key of ORDERS: which rows a cut keeps, in what order
    **selection: Any,
) -> Listing:
    """Alerts as dicts of COLUMNS plus `summary` and `review` (the analyst's review state,
    reviews.review_state), newest first, selected by `alert_filters`' keywords (`selection`):
    `status` a key of STATUSES, `review` one of ALERTS.reviews. `actor` and `rule` match whatever
    their case (`e000003` finds E000003's alerts), `rule` each rule under it too (LM-TP finds
    LM-TP-005's); `subject` is a customer's pseudonym, found in each alert's kept sample of its
    subjects only."""
    filters = alert_filters(**selection)
    columns = [*COLUMNS, "summary", "review"]
    return select_latest(
        client, reviewed(client, database, ALERTS), columns, filters, ORDERS[order], limit, final=False
    )


class Handling(NamedTuple):
    """How the SOC handled the alerts of one severity ("" for all of them): how many, each review
    state's now (`reviews.reviewed`: a review events came after is none), and the seconds from when
    lifemon first stored each (`raised_at`) to its first review of any verdict (to acknowledge)
    and to its first that closed it out (to resolve: resolved or a false positive), as the median
    and the 90th percentile of the alerts so timed (None where none is)."""

    severity: str
    alerts: int
    acknowledged: int
    resolved: int
    false_positive: int
    unreviewed: int
    acknowledge_timed: int
    acknowledge_median_s: float | None
    acknowledge_p90_s: float | None
    resolve_timed: int
    resolve_median_s: float | None
    resolve_p90_s: float | None


def _seconds_to(at: str, raised: str) -> str:
    """SQL: the seconds from `raised` to `at`; NULL where there is no such review (1970), when the
    alert was first stored is unknown (revised before raised_at was kept), or the review is older
    than that (its alerts table rebuilt by a replay since): none of them is a time the SOC took."""
    return f"if({at} >= {raised}, (toUnixTimestamp64Milli({at}) - toUnixTimestamp64Milli({raised})) / 1000, NULL)"


def handling(client: Any, database: str, **selection: Any) -> list[Handling]:
    """How the SOC handled the alerts `query_alerts` selects with the same filters (`selection`,
    its keywords): by severity, most severe first, then all of them. Read as the overview
    dashboard's "Alert handling" panel reads it (tests/test_deploy.py holds the two alike). A
    database no `lifemon run` gave `raised_at` yet reads what the column's DEFAULT would."""
    raised = (
        "raised_at"
        if has_column(client, database, "alerts", "raised_at")
        else f"({column_default('alerts', 'raised_at')})"
    )
    where, params = where_clause(alert_filters(**selection))
    timed = (
        f"SELECT severity, review, {_seconds_to('acknowledged_at', raised)} AS ack, "
        f"{_seconds_to('resolved_at', raised)} AS res FROM {reviewed(client, database, ALERTS)}{where}"
    )
    rows = client.query(
        "SELECT severity, count(), countIf(review = 'acknowledged'), countIf(review = 'resolved'), "
        "countIf(review = 'false_positive'), countIf(review = 'unreviewed'), count(ack), "
        "quantileExactInclusive(0.5)(ack), quantileExactInclusive(0.9)(ack), count(res), "
        "quantileExactInclusive(0.5)(res), quantileExactInclusive(0.9)(res) "
        f"FROM ({timed}) GROUP BY ROLLUP(severity)",
        parameters=params,
    ).result_rows
    found = [Handling(*row) for row in rows if row[1]]  # a quantile of no time is NULL: None
    rank = {s.value: SEVERITY_RANK[s] for s in Severity}
    return sorted(found, key=lambda h: (h.severity == "", -rank.get(h.severity, -1), h.severity))


def took(seconds: float | None) -> str:
    """A time the SOC took, as a reader says it (`2 h 05 min`, `3 d 4 h`); "—" where none is timed."""
    if seconds is None:
        return "—"
    whole = round(seconds)
    days, rest = divmod(whole, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def render_handling(h: Handling) -> str:
    """`lifemon alerts --review`'s footer: how the alerts listed were handled, and how fast."""
    states = (
        f"acknowledged / 已确认 {h.acknowledged:,}, resolved / 已处置 {h.resolved:,}, "
        f"false positive / 误报 {h.false_positive:,}, unreviewed / 未复核 {h.unreviewed:,}"
    )
    times = "; ".join(
        f"{what} median / 中位数 {took(median)}, p90 {took(p90)} ({n_of(n, 'alert')} timed)"
        for what, n, median, p90 in (
            (
                "time to acknowledge / 确认用时",
                h.acknowledge_timed,
                h.acknowledge_median_s,
                h.acknowledge_p90_s,
            ),
            ("time to resolve / 处置用时", h.resolve_timed, h.resolve_median_s, h.resolve_p90_s),
        )
    )
    return (
        f"handling / 处置 ({n_of(h.alerts, 'alert')}, timed from when lifemon first stored each): "
        f"{states}\n{times}"
    )


def alert_filters(
    *,
    detector: str | None = None,
    min_severity: Severity | None = None,
    actor: str | None = None,
    org: str | None = None,
    rule: str | None = None,
    subject: str | None = None,
    status: str | None = None,
    review: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    raised_since: datetime | None = None,
) -> list[tuple[str, str, Any]]:
    """`query_alerts`' filters as (condition, parameter name, value), over `reviews.reviewed`'s
    subquery: `handling` times the alerts the list selects."""
    severities = at_least(min_severity)
    return [  # (condition, parameter name, value): a filter applies when its value is given
        ("detector = {detector:String}", "detector", detector),
        ("severity IN {severities:Array(String)}", "severities", severities),
        ("lowerUTF8(actor_id) = lowerUTF8({actor:String})", "actor", actor),
        # an org id whatever its case, or NO_ORG_WORD: the alerts of no org known
        (
            f"if(actor_org = '', '{NO_ORG_WORD}', lowerUTF8(actor_org)) = lowerUTF8({{org:String}})",
            "org",
            org,
        ),
        # a detector's rule id stands for the rules it raises under it (LM-TP: LM-TP-005; LM-SDK-001:
        # LM-SDK-001.c3_or_auth_helper), as `lifemon detectors` lists them
        (
            "lowerUTF8(rule_id) = lowerUTF8({rule:String}) OR "
            "startsWith(lowerUTF8(rule_id), concat(lowerUTF8({rule:String}), '-')) OR "
            "startsWith(lowerUTF8(rule_id), concat(lowerUTF8({rule:String}), '.'))",
            "rule",
            rule,
        ),
        ("has(subjects_sample, {subject:String})", "subject", subject),
        ("status IN {statuses:Array(String)}", "statuses", STATUSES.get(status or "")),
        ("review IN {reviews:Array(String)}", "reviews", ALERTS.reviews.get(review or "")),
        ("last_seen >= {since:DateTime64(3, 'UTC')}", "since", since),
        ("last_seen < {until:DateTime64(3, 'UTC')}", "until", until),
        # stored since: raised or revised then, whatever its events' time (a late log, a deadline
        # passed, a backfill: a probe's `--since 1h` found none of the alerts a replay had just stored)
        ("inserted_at >= {raised:DateTime64(3, 'UTC')}", "raised", raised_since),
    ]


def select_latest(
    client: Any,
    table: str,
    columns: list[str],
    filters: list[tuple[str, str, Any]],
    order_by: str,
    limit: int,
    final: bool = True,
) -> Listing:
    """Up to `limit` rows of `table` FINAL (the newest revision of each id) as dicts of `columns`,
    and how many match; `final` False: `table` is a subquery that reads its table FINAL itself.
    `filters`: (condition, parameter name, value), applied where a value is given, bound, never
    spliced. One row past the limit says whether it cut; only then are the matches counted, in a
    second query."""
    where, params = where_clause(filters)
    matching = f"FROM {table}{' FINAL' if final else ''}{where}"
    result = client.query(
        f"SELECT {', '.join(columns)} {matching} ORDER BY {order_by} LIMIT {{limit:UInt32}}",
        parameters={**params, "limit": limit + 1},
    )
    rows = [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]
    if len(rows) <= limit:
        return Listing(rows, len(rows))
    return Listing(
        rows[:limit], client.query(f"SELECT count() {matching}", parameters=params).result_rows[0][0]
    )


def where_clause(filters: list[tuple[str, str, Any]]) -> tuple[str, dict[str, Any]]:
    """` WHERE` the filters given a value (or nothing), and their bound parameters."""
    # each condition whole: one of ORs (a rule and the rules under it) once escaped the others
    where = [f"({condition})" for condition, _, value in filters if value]
    params: dict[str, Any] = {name: value for _, name, value in filters if value}
    return (f" WHERE {' AND '.join(where)}" if where else ""), params


def stored(client: Any, database: str, table: str, seen: str) -> str:
    """What `table` holds, in one line for a listing its filters emptied: how many (the newest
    revision of each) and the span of their `seen` times in UTC; "" for an empty table. A new
    user's `--since 24h` on the demo's day printed "no alerts match" with no hint that all of
    them were of 2026-01-01 (probe_s3 #6)."""
    ((count, first, last),) = client.query(
        f"SELECT count(), min({seen}), max({seen}) FROM {database}.{table} FINAL"
    ).result_rows
    if not count:
        return ""
    word = seen.replace("_", " ")
    return f"({n_of(count, table[:-1])} stored, {word} {first:%Y-%m-%d %H:%M} … {last:%Y-%m-%d %H:%M} UTC)"


def at_least(severity: Severity | None) -> list[str] | None:
    """The severities at or above `severity` (None: no filter)."""
    if severity is None:
        return None
    return [s.value for s in Severity if SEVERITY_RANK[s] >= SEVERITY_RANK[severity]]


# ANSI styles for a terminal: the severity an analyst's eye must catch first stands out most
SEVERITY_STYLE = {
    "critical": "\x1b[1;97;41m",  # bold white on red
    "high": "\x1b[1;31m",  # bold red
    "medium": "\x1b[33m",  # yellow
    "low": "\x1b[36m",  # cyan
    "info": "\x1b[2m",  # dim
}


def records_and_customers(subject_count: int, counts: dict[str, int]) -> tuple[int | None, int | None]:
    """What an alert counted, as (records, customers); None where its detector did not count it.

    `subject_count` counts customers, but not alike everywhere: transfer_policy's volume alert
    leaves it 0 (its counts hold the records sent to the recipient, no customers), and
    unauthorized_lookup's alerts stored before it counted `customers` counted the rows a log counted
    without naming any customer in it too (`counts["customers_unnamed"]`, which are no customers). Alerts stored before bulk_query
    counted its customers there hold its records in it, and its records and customers in `counts`.
    So: records only from `counts["records"]`; customers from
    `counts["customers"]` or `counts["subjects"]` where the detector put them there, else
    `subject_count` less any unnamed rows; 0 customers means none was identified, shown as
    unknown, never as zero."""
    records = counts.get("records")
    customers = counts.get(
        "customers", counts.get("subjects", subject_count - counts.get("customers_unnamed", 0))
    )
    return records, customers or None


class Tally(NamedTuple):
    """What a detector counts first: its `counts` key and the key's noun."""

    key: str
    noun: str
    plural: str


RECORDS = Tally("records", "record", "records")
# the list's first count is what each detector counts: records, unless it counts something else
# (a new user read an unauthorized_lookup alert's 36 records beside its summary's 12 accesses)
TALLIES = {
    "unauthorized_lookup": Tally("accesses", "access", "accesses"),
    "sdk_overcollection": Tally("observations", "observation", "observations"),
    "offscope_marketing": Tally("pushes", "push", "pushes"),
    "shared_account": Tally("workstations", "workstation", "workstations"),
    "shared_workstation": Tally("accounts", "account", "accounts"),
}
_TALLY_UNIT = max(len(t.plural) for t in (RECORDS, *TALLIES.values()))


def tally(detector: str) -> Tally:
    return TALLIES.get(detector, RECORDS)


def _count(n: int | None, noun: str, width: int, plural: str = "", unit_width: int = 0) -> str:
    """A column of counts: the noun's plural unless one, padded so the next column still aligns."""
    unit = noun if n == 1 else plural or f"{noun}s"
    return f"{'—' if n is None else f'{n:,}':>{width}} {unit:<{max(unit_width, len(noun) + 1)}}"


ACTOR_WIDTH = 16  # the actor column at its narrowest: an employee's id, a workstation's address


def render_alert(r: dict[str, Any], color: bool = False, actor_width: int = ACTOR_WIDTH) -> str:
    """One alert as two lines: what an analyst scans in a terminal, then its summary indented.
    The time is the alert's last event time, in UTC; the detector's episode status, then the
    analyst's review state where the row has one (the list's, not `lifemon watch`'s: a live
    revision carries none); records and customers are labelled, "—" where the detector does not
    count them. `color`: the severity in its ANSI style (only for a terminal)."""
    r = shown(r)
    severity = f"{r['severity']:<8}"
    if color:
        severity = f"{SEVERITY_STYLE.get(r['severity'], '')}{severity}\x1b[0m"
    counts = r.get("counts") or {}
    customers = records_and_customers(r["subject_count"], counts)[1]
    counted = tally(r["detector"])
    first = _count(counts.get(counted.key), counted.noun, 6, counted.plural, _TALLY_UNIT + 1)
    review = f"{r['review']:<14} " if "review" in r else ""
    return (
        f"{r['last_seen']:%Y-%m-%d %H:%M} UTC  {severity} {r['status']:<7} {review}{r['detector']:<20} "
        f"{r['actor_id']:<{actor_width}} {first} {_count(customers, 'customer', 6)}  "
        # the id last, where a line's reader (and a script) finds it
        f"{r['title_zh']} / {r['title_en']}{_in_incidents(r.get('incidents', []))}  [{r['alert_id'][:12]}]"
        f"\n    {r['summary']}"
    )


def _in_incidents(incidents: Sequence[dict[str, Any]]) -> str:
    """The list's marker of the incidents an alert opened or joined (`incident_query.incidents_of`)."""
    if not incidents:
        return ""
    noun = "incident" if len(incidents) == 1 else "incidents"
    return f"  {noun} / 事件 {', '.join(i['incident_id'][:12] for i in incidents)}"


def alert_row(alert: Any) -> dict[str, Any]:
    """An Alert (a replay's) as a row of the alerts table: the listing renders both alike."""
    row = {c: getattr(alert, c) for c in COLUMNS if c != "last_seen"}
    row.update(
        last_seen=datetime.fromtimestamp(alert.last_seen / 1000, UTC).replace(tzinfo=None),
        severity=alert.severity.value,
        status=alert.status.value,
        actor_id=alert.actor_id or "",
        summary=alert.summary,
    )
    return row


def render(rows: list[dict[str, Any]], color: bool = False) -> str:
    if not rows:
        return "no alerts match"
    width = max(
        ACTOR_WIDTH, *(len(shown(r["actor_id"])) for r in rows)
    )  # a recipient's id is longer than an employee's
    return "\n".join(render_alert(r, color, width) for r in rows)


# -- one alert: `lifemon alerts show ID` -----------------------------------------------------------

MIN_ID_PREFIX = 6  # the list shows 12 characters of an id; an analyst copies some of them

SHOWN = tuple(c for c in ALERT_COLUMNS if c not in ("ocsf", "version"))  # what an analyst reads
REVISION_COLUMNS = ("revision", "status", "last_seen", "event_count", "version")


class AlertNotFound(LookupError):
    """No alert (or incident), or more than one, has an id that starts with what the user gave."""


class AlertView(NamedTuple):
    """An alert's newest revision (a dict of SHOWN), the rows of its revisions the table still
    holds, as dicts of REVISION_COLUMNS, by revision, and its reviews, oldest first
    (reviews.query_reviews)."""

    alert: dict[str, Any]
    revisions: list[dict[str, Any]]
    reviews: list[dict[str, Any]] = []


def resolve_alert_id(client: Any, database: str, given: str) -> str:
    """The one alert id equal to `given` or starting with it (`resolve_id`); an incident's id
    pasted in its place is said to be one (a probe's `alerts ack` of an incident: "no alert id")."""
    return _resolve_or_say(
        client, database, given, "alert", "incident",
        f"`lifemon incidents show {given}` lists its alerts, each reviewed by its own id",
    )  # fmt: skip


def resolve_incident_id(client: Any, database: str, given: str) -> str:
    """The one incident id equal to `given` or starting with it; an alert's id pasted in its place
    is said to be one (a probe's `incidents show` of an alert: "no incident id")."""
    return _resolve_or_say(
        client, database, given, "incident", "alert",
        f"`lifemon alerts show {given}` shows it; `lifemon incidents` lists the incidents",
    )  # fmt: skip


def _resolve_or_say(client: Any, database: str, given: str, noun: str, other: str, instead: str) -> str:
    """`resolve_id` among the `noun`s (alerts, incidents), saying so where `given` starts an
    `other`'s id instead, and `instead` what to run."""
    try:
        return resolve_id(client, f"{database}.{noun}s", f"{noun}_id", given, noun, f"lifemon {noun}s")
    except AlertNotFound:
        found = client.query(
            f"SELECT count() FROM {database}.{other}s WHERE startsWith({other}_id, {{given:String}})",
            parameters={"given": given.lower()},
        ).result_rows[0][0]
        if not found:
            raise
        raise AlertNotFound(f"{given} is {_a(other)}'s id, not {_a(noun)}'s: {instead}") from None


def _a(noun: str) -> str:
    return f"{'an' if noun[0] in 'aeiou' else 'a'} {noun}"


def resolve_id(client: Any, table: str, column: str, given: str, noun: str, lister: str) -> str:
    """The one id of `column` in `table` equal to `given` or starting with it. AlertNotFound when
    none does, or when several do (naming some of them): a prefix must pick one, never the first
    of many. Ids are lower-case hex: one pasted or typed in upper case is the same id."""
    given = given.lower()
    matches = [
        found
        for (found,) in client.query(
            f"SELECT DISTINCT {column} FROM {table} WHERE startsWith({column}, {{given:String}}) "
            f"ORDER BY {column} LIMIT 5",
            parameters={"given": given},
        ).result_rows
    ]
    if given in matches:
        return given
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise AlertNotFound(f"no {noun} id starts with {given}; `{lister}` lists them")
    total = client.query(
        f"SELECT uniqExact({column}) FROM {table} WHERE startsWith({column}, {{given:String}})",
        parameters={"given": given},
    ).result_rows[0][0]
    more = f" and {total - len(matches)} more" if total > len(matches) else ""
    raise AlertNotFound(
        f"{given} starts {total} {noun} ids ({', '.join(matches)}{more}); give more of the id"
    )


def query_alert(client: Any, database: str, alert_id: str) -> AlertView:
    """The alert `alert_id` names (an id `resolve_alert_id` returned): its newest revision, as
    the list shows it (FINAL), and each revision row still stored. ClickHouse keeps an alert's
    newest row: older ones last only until it merges the table's parts, and a checkpoint writes
    only the newest revision it holds, so the list may start late or skip numbers."""
    table = f"{database}.alerts"
    params = {"alert_id": alert_id}
    # a database no `lifemon run` gave the English clauses yet reads what the column's DEFAULT would
    columns = [
        f"{column_default('alerts', c)} AS {c}"
        if c == "regulation_en" and not has_column(client, database, "alerts", c)
        else c
        for c in SHOWN
    ]
    newest = client.query(
        f"SELECT {', '.join(columns)} FROM {table} FINAL WHERE alert_id = {{alert_id:String}}",
        parameters=params,
    )
    if not newest.result_rows:
        raise AlertNotFound(f"no alert {alert_id}; `lifemon alerts` lists them")
    revisions = client.query(
        f"SELECT DISTINCT {', '.join(REVISION_COLUMNS)} FROM {table} WHERE alert_id = {{alert_id:String}} "
        "ORDER BY revision, version",
        parameters=params,
    )
    return AlertView(
        dict(zip(newest.column_names, newest.result_rows[0], strict=True)),
        [dict(zip(revisions.column_names, row, strict=True)) for row in revisions.result_rows],
        query_reviews(client, database, alert_id),
    )


def _utc(t: datetime) -> datetime:
    return t if t.tzinfo else t.replace(tzinfo=UTC)  # DateTime64(3, 'UTC') may come back naive


def _when(t: datetime, zone: ZoneInfo | None) -> str:
    """A time in UTC, as everything lifemon prints, and in the bank's zone beside it."""
    utc = _utc(t)
    text = f"{utc:%Y-%m-%d %H:%M:%S} UTC"
    if zone is None or zone.key == "UTC":
        return text
    return f"{text}  ({utc.astimezone(zone):%Y-%m-%d %H:%M:%S} {zone.key})"


def _window_note(a: dict[str, Any], width: int) -> list[str]:
    """Why the detector's window is not the span of the alert's events: a new user read a window
    that began eight minutes before the first event, unexplained."""
    said = []
    if a["window_start"] < a["first_seen"]:
        said.append(
            "it starts before the first event: the detector's window reaches back over earlier events it counts"
        )
    if a["window_end"] > a["last_seen"]:
        said.append("it ends after the last: the episode stays open while another event could join it")
    return _wrapped(f"({'; '.join(said)} / 检测窗口, 非事件起止)", width) if said else []


def _counted(name: str, value: int, zone: ZoneInfo | None) -> str:
    """One of an alert's counts as a reader takes it in: a time a detector kept (`_ts`, epoch ms)
    as a time, in the bank's zone too (an opt-out's read 1,767,236,516,353), a duration (`_s`) also
    as hours and minutes."""
    if name.endswith("_ts"):
        return f"{name} {_when(datetime.fromtimestamp(value / 1000, UTC), zone)}"
    if name.endswith("_s"):
        return f"{name} {value:,} ({took(value)})"
    return f"{name} {value:,}"


# the columns before a field's value: two spaces, its English label (10 at most), two, its
# Chinese one (5 characters, 10 columns), two
LABELS = 26

# under a runbook that says to open a leakage assessment, where lifemon opened it already
OPENED = "lifemon opened the leakage assessment: the incident above / 泄露事件已立项, 见上"


def value_width(before: int = LABELS) -> int:
    """The columns a value may take after `before` columns: the terminal's (100 when not a
    terminal) less them, 40 at least (a regulation clause of 130 columns ran past the terminal)."""
    return max(40, shutil.get_terminal_size((100, 24)).columns - before)


def _wrapped(text: str, width: int) -> list[str]:
    """Prose (a summary, a runbook) in lines of at most `width` columns, a CJK character two; a word
    longer than a line (categories joined by slashes: a spree's ran 40 columns past the terminal)
    breaks after a slash."""
    lines = _packed(text.split(), width, " ")
    return [
        part
        for line in lines
        for part in (_at_slashes(line, width) if display_width(line) > width else [line])
    ]


def _at_slashes(word: str, width: int) -> list[str]:
    """A word too long for `width` in lines broken after its slashes (as long as it has some)."""
    lines = [""]
    for part in re.split(r"(?<=/)", word):
        if lines[-1] and display_width(lines[-1] + part) > width:
            lines.append("")
        lines[-1] += part
    return lines


# a run of anything but spaces and CJK characters (a word, "(4)⑤:"), or one CJK character with
# the punctuation after it, which never begins a line (a clause's line began ": (一)制定…")
_ZH_TOKEN = re.compile(r"[^\s\u2e80-\u9fff\u3000-\u303f\uff00-\uffef]+|\S[:;,.!?)、，。：；！？）]*")


def _wrapped_zh(text: str, width: int) -> list[str]:
    """Chinese prose in lines of at most `width` columns: it has no spaces to break at, so a line
    breaks between any two CJK characters, or at a space, never inside a Latin word."""
    lines = [""]
    for word in re.split(r"(\s+)", text.strip()):
        if word.isspace():
            lines[-1] += " "
            continue
        for token in _ZH_TOKEN.findall(word):
            if lines[-1].strip() and display_width(lines[-1] + token) > width:
                lines[-1] = lines[-1].rstrip()
                lines.append("")
            lines[-1] += token
    return [line.rstrip() for line in lines]


def _packed(items: Sequence[str], width: int, sep: str = ", ") -> list[str]:
    """`items` joined by `sep` in lines of at most `width` columns, never breaking an item (an id,
    a pseudonym, a count and its name)."""
    lines: list[str] = []
    for item in items:
        if lines and display_width(lines[-1] + sep + item) <= width:
            lines[-1] += sep + item
        else:
            if lines:
                lines[-1] += sep.rstrip()  # "a, b," then "c" on the next line
            lines.append(item)
    return lines or [""]


def clause_lines(zh: Sequence[str], en: Sequence[str], width: int) -> list[str]:
    """Clauses as quoted, each with its English under it, wrapped to `width`; a record stored
    before lifemon kept the English (`en` empty) says so under its clauses."""
    lines = [
        line
        for quoted, english in zip_longest(zh, en, fillvalue="")
        for line in _wrapped_zh(quoted, width) + (_wrapped(english, width) if english else [])
    ]
    if zh and not en:
        lines.append("(stored before lifemon kept the clauses in English / 存储时未含英文译文)")
    return lines


def render_alert_view(
    view: AlertView,
    *,
    regulation: Sequence[Clause] = (),
    runbook: Runbook | None = None,
    rule_file: str = "",
    policy_rule_version: int | None = None,
    timezone: str | None = None,
    incidents: Sequence[str] = (),
) -> str:
    """One alert for triage, labelled in zh and en: why it fired (detector, rule, the clauses it
    cites; apart, the detector's basis for all its rules from the policy, what it does not repeat), whom and what it
    counted, the events behind it, the detector's runbook (`rule_file`'s, the policy read now:
    `policy_rule_version` says when that rule changed since the alert), and its revisions.
    Times in UTC, and in `timezone` (the bank's, recipients.yaml) beside them. `incidents`: the
    lines of the leakage incidents it opened or joined (`incident_query.render_incidents_of`)."""
    view = AlertView(*shown(tuple(view)))
    a = view.alert
    width = value_width()
    zone = ZoneInfo(timezone) if timezone else None
    records, customers = records_and_customers(a["subject_count"], a["counts"] or {})
    rows: list[tuple[str, str, str]] = []

    def field(en: str, zh: str, *lines: str) -> None:
        rows.extend((en if i == 0 else "", zh if i == 0 else "", line) for i, line in enumerate(lines))

    field("title", "标题", f"{a['title_zh']} / {a['title_en']}")
    field("severity", "告警级别", a["severity"])
    field("status", "状态", f"{a['status']} (revision {a['revision']}): the detector's episode, not a review")
    field("review", "复核", review_line(view.reviews, a))
    if incidents:
        field("incident", "泄露事件", *incidents)
    changed = (
        f"; the policy now has v{policy_rule_version}"
        if policy_rule_version and policy_rule_version != a["rule_version"]
        else ""
    )
    field("rule", "规则", f"{a['rule_id']} v{a['rule_version']} of {a['detector']}{changed}")
    field("class", "分级", f"JR/T 0171-2020 {a['jr_class']}")
    actor = a["actor_id"] or "—"
    org = org_of(a["actor_org"], a["detector"])
    field("actor", "行为方", f"{actor}, {'org ' if org in (a['actor_org'], NO_ORG) else ''}{org}")
    field("seen", "发生时间", f"first {_when(a['first_seen'], zone)}", f"last  {_when(a['last_seen'], zone)}")
    if (a["window_start"], a["window_end"]) != (a["first_seen"], a["last_seen"]):
        field(
            "window",
            "窗口",
            f"{_when(a['window_start'], zone)} to",
            _when(a["window_end"], zone),
            *_window_note(a, width),
        )
    counted = tally(a["detector"])
    tallied = [] if counted is RECORDS else [(a["counts"].get(counted.key), counted.noun, counted.plural)]
    field(
        "counted",
        "数量",
        ", ".join(
            f"— {plural or noun + 's'}" if n is None else n_of(n, noun, plural)
            for n, noun, plural in (*tallied, (records, "record", ""), (customers, "customer", ""))
        ),
    )
    sample = a["subjects_sample"]
    field(
        "subjects",
        "客户样本",
        *(
            [f"{n_of(len(sample), 'pseudonym')} kept, a sample:", *_packed(sample, width)]
            if sample
            else ["none kept (the detector named none, or pseudonym_ttl_days emptied them)"]
        ),
    )
    if a["counts"]:
        field("counts", "计数", *_packed([_counted(k, v, zone) for k, v in a["counts"].items()], width))
    field("summary", "摘要", *_wrapped(a["summary"] or "— (emptied after pseudonym_ttl_days)", width))
    # the clauses the alert's rule cites, then the detector's basis for all its rules apart: a
    # domestic contract's expiry once read as if PIPL art. 38's cross-border conditions were its own
    own = a["regulation"]
    field("regulation", "法规依据", *(clause_lines(own, a["regulation_en"], width) or ["—"]))
    rest = [c for c in dict.fromkeys(regulation) if c.zh not in own]
    if rest:
        field(
            "basis",
            "检测器依据",
            "the detector's, for all its rules / 该检测器全部规则的依据:",
            *clause_lines([c.zh for c in rest], [c.en for c in rest], width),
        )
    evidence = a["evidence_event_ids"]
    aggregated = f"{n_of(a['event_count'], 'event')} aggregated; " if a["event_count"] else ""
    field(
        "evidence",
        "证据",
        f"{aggregated}{n_of(len(evidence), 'event id')} kept{':' if evidence else ''}",
        *(_packed(evidence, width) if evidence else []),
    )
    where = f" ({rule_file})" if rule_file else ""
    field(
        "runbook",
        "处置步骤",
        *(
            _wrapped_zh(runbook.zh, width)
            + _wrapped(runbook.en, width)
            + ([f"from {rule_file}"] if rule_file else [])
            + ([OPENED] if incidents else [])
            if runbook
            else [f"none{where}"]
        ),
    )
    lines = [f"alert / 告警 {a['alert_id']}"]
    lines += ["  " + line for line in aligned(("", "", ""), rows)[1:]]
    lines += ["", "revisions stored / 修订记录 (ClickHouse keeps the newest; older ones until it merges)"]
    table = [
        (
            str(r["revision"]),
            f"{_utc(r['last_seen']):%Y-%m-%d %H:%M:%S} UTC",
            f"{r['event_count']:,}",
            r["status"],
        )
        for r in view.revisions
    ]
    lines += [
        "  " + line for line in aligned(("revision", "last seen", "events", "status"), table, right={0, 2})
    ]
    return "\n".join(lines + render_reviews(view.reviews))
