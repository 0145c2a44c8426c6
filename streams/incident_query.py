"""`lifemon incidents`: the incident-response team's list of leakage incidents from ClickHouse
(clickhouse/003_incidents.sql), newest revision of each: what leaked, from whom, how many
customers, and when the first report is due (docs/incidents.md). Filters as `lifemon alerts`.
`lifemon incidents show ID`: one incident's notice (PIPL art. 57), deadlines, alerts and reviews
(`lifemon incidents ack` / `resolve`, streams/reviews.py: whether the report was made, which lifemon
cannot see for itself)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import orjson

from detectors.base import n_of
from schemas.models import Severity
from streams.alert_query import (
    SEVERITY_STYLE,
    STATUSES,
    Listing,
    at_least,
    clause_lines,
    resolve_incident_id,
    select_latest,
    value_width,
)
from streams.clickhouse import tables_present
from streams.receivers import counted, text_of, unnamed, who
from streams.reviews import (
    FALSE_POSITIVE,
    INCIDENTS,
    NOTICE_WAIVED,
    NOTIFIED,
    OPEN,
    REGULATOR_NOTIFIED,
    REGULATOR_TOLD,
    UNREVIEWED,
    alerts_false_positive,
    aware,
    covers,
    owed,
    render_reviews,
    review_line,
    review_state,
    reviewed,
    said,
)
from streams.terminal import shown
from streams.text_table import display_width

# the review states that close an incident out: its deadlines are no longer the team's to meet,
# but `notified` and `notice_waived` (the report was made; the individuals' notice too, or waived)
# close only those the notice makes (DueReport.notice), `regulator_notified` only the regulator's
DONE = frozenset(INCIDENTS.resolving)


def _sql(states: frozenset[str]) -> str:
    return ", ".join(f"'{s}'" for s in sorted(states))


# The reports still the team's to make, the earliest first: (due, UTC epoch ms; to whom, in English
# and Chinese). An incident whose record the TTL emptied (pseudonym_ttl_days) owes its first one.
# Owed by the states that owe (OPEN), not by those that close out: a verdict a later release
# added closes out too (reviews.OPEN). A report the notice does not make stays owed by the verdicts
# that made the regulator's, and the individuals' notice (the one that may be waived) by
# `regulator_notified`, as `owed` says.
OWED = (
    f"if(incident = '', if(review IN ({_sql(frozenset(OPEN))}), "
    "[(toUnixTimestamp64Milli(first_due), 'the first report', '首次报告')], []), "
    "arraySort(arrayMap(d -> (JSONExtractInt(d, 'due'), JSONExtractString(d, 'to', 'en'), "
    "JSONExtractString(d, 'to', 'zh')), arrayFilter(d -> "
    f"review IN ({_sql(frozenset(OPEN))}) OR (review IN ({_sql(frozenset(REGULATOR_TOLD))}) "
    "AND NOT JSONExtractBool(d, 'notice')) "
    f"OR (review = '{REGULATOR_NOTIFIED}' AND JSONExtractString(d, 'waiver') != ''), "
    "JSONExtractArrayRaw(incident, 'deadlines'))))) AS owed"
)

COLUMNS = [
    "first_seen",
    # when lifemon detected it (发现), its deadlines' start; NULL for a record from before it was kept
    "JSONExtract(incident, 'detected_at', 'Nullable(Int64)') AS detected_at",
    "severity",
    "status",
    "key_kind",
    "key",
    "subjects_distinct",
    # a transfer log may report how many customers it sent without naming them (subjects.unnamed; a
    # record from before it knew them only where it named nobody: receivers.unnamed)
    "JSONExtractUInt(incident, 'subjects', 'reported') AS subjects_reported",
    "if(JSONHas(incident, 'subjects', 'unnamed'), JSONExtractUInt(incident, 'subjects', 'unnamed'), "
    "if(subjects_distinct = 0, subjects_reported, 0)) AS subjects_unnamed",
    "records",
    # an SDK's collections name no customer: its observations and devices (incidents before them: 0)
    "JSONExtractUInt(incident, 'observations') AS observations",
    "JSONExtractUInt(incident, 'devices') AS devices",
    "leakage_classes",
    "title_zh",
    "title_en",
    "first_due",
    OWED,
    "alert_ids",
    "revision",
    "incident_id",
    "review",
]


def query_incidents(
    client: Any,
    database: str,
    *,
    min_severity: Severity | None = None,
    status: str | None = None,
    review: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    raised_since: datetime | None = None,
    subject: str | None = None,
    limit: int = 50,
) -> Listing:
    """Incidents as dicts of COLUMNS, the earliest report still owed first (the order they must be
    handled in), those owing none last; `status` a key of STATUSES, `review` of INCIDENTS.reviews;
    `subject` a customer's pseudonym, among every one the incident names (an alert keeps a sample:
    a probe's examiner found no alert about a customer two alerts and an incident were about)."""
    filters = [
        (
            "has(JSONExtract(incident, 'subjects', 'pseudonyms', 'Array(String)'), {subject:String})",
            "subject",
            subject,
        ),
        ("severity IN {severities:Array(String)}", "severities", at_least(min_severity)),
        ("status IN {statuses:Array(String)}", "statuses", STATUSES.get(status or "")),
        ("review IN {reviews:Array(String)}", "reviews", INCIDENTS.reviews.get(review or "")),
        ("first_seen >= {since:DateTime64(3, 'UTC')}", "since", since),
        ("first_seen < {until:DateTime64(3, 'UTC')}", "until", until),
        # stored since: raised or revised then, whatever its events' time (a late log, a deadline
        # passed, a backfill: a probe's `--since 1h` found none of the alerts a replay had just stored)
        ("inserted_at >= {raised:DateTime64(3, 'UTC')}", "raised", raised_since),
    ]
    listing = select_latest(
        client,
        reviewed(client, database, INCIDENTS),
        COLUMNS,
        filters,
        "empty(owed), owed[1].1, first_due, incident_id",
        limit,
        final=False,
    )
    links = linked(client, database, [r["incident_id"] for r in listing.rows])
    for r in listing.rows:
        r["linked"] = links.get(r["incident_id"], [])
    return listing


def linked(client: Any, database: str, ids: list[str]) -> dict[str, list[str]]:
    """Per incident of `ids`, the others that share an evidence event with it ("<id> <key_kind>
    <key>"): one leak seen from two sides. A file an employee sends to an unapproved broker is the
    employee's art. 5 count (grouped by actor) and the broker's receipt (by recipient), two
    incidents of the same customers; the regulator must get one report of them (PIPL art. 57),
    so each names the other (probe_q4 #4). Read here, not in the engine: the two keys hash to
    different partitions, whose incident stages never see each other."""
    if not ids:
        return {}
    table = f"{database}.incidents"
    events = "arrayJoin(JSONExtract(incident, 'evidence_event_ids', 'Array(String)')) AS event"
    found = client.query(
        f"SELECT a.incident_id, b.incident_id, any(b.key_kind), any(b.key) "
        f"FROM (SELECT incident_id, {events} FROM {table} FINAL WHERE incident_id IN {{ids:Array(String)}}) AS a "
        f"INNER JOIN (SELECT incident_id, key_kind, key, {events} FROM {table} FINAL) AS b ON a.event = b.event "
        "WHERE a.incident_id != b.incident_id GROUP BY a.incident_id, b.incident_id ORDER BY b.incident_id",
        parameters={"ids": ids},
    )
    links: dict[str, list[str]] = {}
    for mine, other, kind, key in found.result_rows:
        links.setdefault(mine, []).append(f"{other} {kind} {key}")
    return links


def incidents_of(client: Any, database: str, alert_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Per alert of `alert_ids`, the incidents it opened or joined (the newest revision of each:
    `incident_id`, `status`, `review` and the reports it still `owed`), the earliest report first.
    A new user's `alerts show` said `leakage_candidate 1` and, in its runbook, "open a leakage
    assessment": nothing of the incident lifemon had opened, its regulator's report due in 72 h.
    None before a lifemon that stored incidents."""
    if not alert_ids or not tables_present(client, database, ["incidents"]):
        return {}
    found = client.query(
        f"SELECT incident_id, status, review, {OWED}, arrayJoin(arrayIntersect(alert_ids, "
        f"{{ids:Array(String)}})) AS alert_id FROM {reviewed(client, database, INCIDENTS)} "
        "WHERE hasAny(alert_ids, {ids:Array(String)}) ORDER BY empty(owed), owed[1].1, incident_id",
        parameters={"ids": alert_ids},
    )
    by_alert: dict[str, list[dict[str, Any]]] = {}
    for row in found.result_rows:
        incident = dict(zip(found.column_names, row, strict=True))
        by_alert.setdefault(incident.pop("alert_id"), []).append(incident)
    return by_alert


def render_incidents_of(incidents: list[dict[str, Any]], now: datetime) -> list[str]:
    """`alerts show`'s lines of the incidents an alert opened or joined (`incidents_of`): each id,
    its status and review, the command that shows it, then its next report still owed."""
    return [
        line
        for i in incidents
        for line in (
            f"{i['incident_id'][:12]} ({i['status']}, {i['review']}): `lifemon incidents show {i['incident_id'][:12]}`",
            f"  {next_report(i['owed'], now)}",
        )
    ]


def owing(client: Any, database: str, since: datetime, limit: int = 10_000) -> list[dict[str, Any]]:
    """The newest revision of each incident first seen since `since` that still owes a report, as
    `lifemon notify` delivers it (its record; none once the TTL emptied it)."""
    found = select_latest(
        client,
        reviewed(client, database, INCIDENTS),
        ["incident", OWED],
        [("first_seen >= {since:DateTime64(3, 'UTC')}", "since", since)],
        "first_seen, incident_id",
        limit,
        final=False,
    )
    return [orjson.loads(r["incident"]) for r in found.rows if r["owed"] and r["incident"]]


def customers(distinct: int, unnamed: int) -> str:
    """How many customers an incident concerns, named and reported without names side by side
    (`receivers.who`). The dashboards' incident panel says the same in SQL."""
    if distinct and not unnamed:
        return f"{n_of(distinct, 'customer')} / 客户"
    return f"{who(distinct, unnamed)} / {who(distinct, unnamed, zh=True)}"


def amounts(records: int, observations: int = 0, devices: int = 0) -> str:
    """What else an incident counts: its records, and an SDK's observations and devices where its
    alerts counted those (an SDK names no record: `0 records` would read as nothing sent)."""
    said = [f"{n_of(records, 'record')} / 记录"] if records or not (observations or devices) else []
    if observations:
        said.append(f"{n_of(observations, 'observation')} / 次采集")
    if devices:
        said.append(f"{n_of(devices, 'device')} / 台设备")
    return ", ".join(said)


def waivable(inc: dict[str, Any]) -> list[dict[str, Any]]:
    """The reports of `inc` its policy let the team record waived (`notice_waived`): the individuals'
    notice, where the measures avoided the harm (policy/incidents.yaml `waiver`); none on a record
    raised before the policy said so. What `regulator_notified` leaves owed of the notice, too: on
    such a record nothing tells the individuals' notice from the regulator's report."""
    return [d for d in inc["deadlines"] if d.get("notice", False) and d.get("waiver")]


def extent(inc: dict[str, Any]) -> dict[str, Any]:
    """What a review must have seen of the incident `inc` (a record as `lifemon notify` delivers
    it) to cover it (`review_state`): its last event, customers, records and member alerts."""
    return {
        "last_seen": datetime.fromtimestamp(inc["last_seen"] / 1000, UTC),
        "subjects_distinct": inc["subjects"]["distinct"],
        "records": inc["records"],
        "alert_ids": [a["alert_id"] for a in inc["alerts"]],
    }


class Standing(NamedTuple):
    """Where the team's reviews leave an incident as it stands."""

    state: str  # its review state (`review_state`): unreviewed, acknowledged or a verdict
    review: dict[str, Any] | None  # the review that covers it; None while none does
    closed: bool  # that review left no report to make: its alert ends at the receivers

    def said(self) -> str | None:
        """The covering review in one line, as the receivers are told it (`reviews.said`)."""
        return None if self.review is None else said(self.review)


UNJUDGED = Standing(UNREVIEWED, None, False)  # reviews unread: the incident fires as it is


def standing(inc: dict[str, Any], reviews: list[dict[str, Any]]) -> Standing:
    """Where `reviews` (oldest first) leave the incident as `inc` stands: a review covers this
    revision, or the incident grew since (unreviewed); closed out once it leaves no report to make."""
    state = review_state(reviews, extent(inc), INCIDENTS)
    if state == UNREVIEWED:
        return UNJUDGED
    return Standing(state, reviews[-1], state not in OPEN and not owed(inc["deadlines"], state))


# the list's review column: as wide as the longest verdict, so every row's key starts in one column
REVIEW_WIDTH = max(map(len, (*OPEN, *INCIDENTS.resolving)))


def _who_and_counted(r: dict[str, Any]) -> tuple[str, str]:
    """The list's two columns of varying width: who leaked (its kind and key), and what it counted."""
    counted = f"{customers(r['subjects_distinct'], r['subjects_unnamed'])}, "
    counted += amounts(r["records"], r.get("observations", 0), r.get("devices", 0))
    return f"{r['key_kind']} {r['key']}", counted


def _padded(text: str, width: int) -> str:
    """`text` filled to `width` terminal columns (a Chinese character takes two)."""
    return text + " " * (width - display_width(text))


def render_incident(
    r: dict[str, Any], now: datetime, color: bool = False, widths: tuple[int, int] = (0, 0)
) -> str:
    """Two lines: what the team must see first (severity, who, how many customers, the next report
    still owed, to whom and whether its deadline has passed), then the leakage classes and the
    member alerts. `widths`: the who and counted columns' in the list (`render`), so each row's
    next report starts in one column."""
    r = shown(r)
    severity = f"{r['severity']:<8}"
    if color:
        severity = f"{SEVERITY_STYLE.get(r['severity'], '')}{severity}\x1b[0m"
    who_leaked, counted = _who_and_counted(r)
    return (
        f"{r['first_seen']:%Y-%m-%d %H:%M} UTC  {severity} {r['status']:<7} {r.get('review', UNREVIEWED):<{REVIEW_WIDTH}} "
        f"{_padded(who_leaked, widths[0])}  {_padded(counted, widths[1])}  "
        f"{next_report(r['owed'], now)}  [{r['incident_id'][:12]} rev {r['revision']}]"
        f"\n    {r['title_zh']} / {r['title_en']}; {n_of(len(r['alert_ids']), 'alert')}: "
        + ", ".join(a[:12] for a in r["alert_ids"])
        + "".join(
            f"\n    {SAME_LEAK}: {other[:12]} {other.split(' ', 1)[1]}" for other in r.get("linked", [])
        )
    )


def next_owed(owed: list[tuple[int, str, str]], now: datetime) -> tuple[datetime, str, str, bool] | None:
    """The next report an incident owes (`OWED`): when, to whom (English, Chinese), whether its
    deadline has passed; None when it owes none. A `notified` incident still owes the reports its
    notice does not make (an assessor's)."""
    if not owed:
        return None
    due, en, zh = owed[0]
    return datetime.fromtimestamp(due / 1000, UTC), en, zh, due <= now.timestamp() * 1000


def next_report(owed: list[tuple[int, str, str]], now: datetime) -> str:
    """`next_owed` in a line of the list."""
    found = next_owed(owed, now)
    if found is None:
        return "no report due / 无待报"
    when, en, _, passed = found
    return f"next report due {when:%Y-%m-%d %H:%M} UTC{' (passed / 已过)' if passed else ''} to {en}"


def render(rows: list[dict[str, Any]], now: datetime | None = None, color: bool = False) -> str:
    if not rows:
        return "no incidents match"
    now = now or datetime.now(UTC)
    # a recipient's or an SDK's id is longer than an employee's, a log's unnamed customers longer
    # than a count: each column as wide as its widest row, as `lifemon alerts` lists its actors
    columns = [_who_and_counted(shown(r)) for r in rows]
    widths = (max(display_width(w) for w, _ in columns), max(display_width(c) for _, c in columns))
    return "\n".join(render_incident(r, now, color, widths) for r in rows)


# -- one incident: `lifemon incidents show ID` -----------------------------------------------------


def query_incident(client: Any, database: str, given: str) -> tuple[str, dict[str, Any] | None]:
    """(the incident id `given` starts, its newest revision as `lifemon notify` delivers it; None
    once the table's TTL emptied it: `pseudonym_ttl_days`, as its pseudonyms). AlertNotFound
    when no id, or more than one, starts with `given`."""
    table = f"{database}.incidents"
    incident_id = resolve_incident_id(client, database, given)
    ((text,),) = client.query(
        f"SELECT incident FROM {table} FINAL WHERE incident_id = {{id:String}}",
        parameters={"id": incident_id},
    ).result_rows
    return incident_id, (orjson.loads(text) if text else None)


def _when(ms: int, zone: ZoneInfo) -> str:
    utc = datetime.fromtimestamp(ms / 1000, UTC)
    local = "" if zone.key == "UTC" else f" ({utc.astimezone(zone):%Y-%m-%d %H:%M} {zone.key})"
    return f"{utc:%Y-%m-%d %H:%M} UTC{local}"


# the notice's measures are the policy's (incidents.yaml `measures`), drafted when the incident is
# raised: taken once the team recorded it notified or resolved (reviews.INCIDENTS), or told the
# regulator (seed 004 应急管理(4): remedial measures at once, reported at the same time), before that
# only planned (probe_s3 #10: an incident nobody reviewed read "measures taken: suspend the
# employee's access")
MEASURES_TAKEN = "measures taken / 采取的补救措施"
MEASURES_TO_TAKE = (
    "measures to take (draft until the regulator is told or the incident resolved) / 拟采取的补救措施（草稿）"
)
# a waived notice rests on the measures taken (seed 004 应急管理(4))
MEASURES_TAKEN_ONCE = (*REGULATOR_TOLD, "resolved")

# the heading of the notice's art. 5 tiers (Notice.legal_tiers)
LEGAL_TIERS = "art. 5 counts reached / 达到解释第五条标准的数量"

# what an incident says of another with which it shares evidence events (`linked`)
SAME_LEAK = "same events as / 同一事件 (one report to the regulator / 合并报告)"


def render_incident_view(
    inc: dict[str, Any],
    now: datetime,
    zone: ZoneInfo,
    reviews: list[dict[str, Any]] | None = None,
    linked: list[str] | None = None,
    alert_reviews: dict[str, list[dict[str, Any]]] | None = None,
) -> str:
    """The incident as the response team drafts its reports from it: who and what, the deadlines
    (passed or not, in UTC and the bank's zone), the notice PIPL art. 57 ¶1 asks for in both
    languages (categories with what each counts, cause, harm, measures, what individuals can do,
    contact), the regulation, the member alerts (`lifemon alerts show` each), and its reviews. A
    `notified` incident has the reports its notice makes (DueReport.notice) no longer due, its
    other reports still are."""
    # the notice's texts are split into their lines before escaping: a two-class cause is two
    # lines the team copies into its report, and escaped first it read as one with a literal \n;
    # split only at the \n the stage joins classes with: any other break in a summary stays escaped
    texts_of = {
        key: [
            shown(line)
            # an art. 5 tier is its figures and the line that says them
            for t in (v if isinstance(v, list) else [v])
            for line in (*text_of(t)["zh"].split("\n"), *text_of(t)["en"].split("\n"))
        ]
        for key, v in inc["notice"].items()
        if key != "categories"
    }
    inc, reviews, alert_reviews = shown(inc), shown(reviews or []), shown(alert_reviews or {})
    notice, subjects = inc["notice"], inc["subjects"]
    current = extent(inc)
    state = review_state(reviews, current, INCIDENTS)
    by_alerts = state == UNREVIEWED and alerts_false_positive(inc, alert_reviews)
    if by_alerts:  # as `lifemon incidents` and notify's resend judge it (reviews.reviewed)
        state = FALSE_POSITIVE
    # a class none of whose customers is named is no figure: `(C2 0)` read as nobody (probe_q4 #9)
    by_class = ", ".join(f"{c} {n}" for c, n in subjects["by_class"].items() if n)
    lines = [
        f"incident  {inc['incident_id']}  revision {inc['revision']}, {inc['status']}, {inc['severity']}",
        f"          {inc['title_zh']} / {inc['title_en']}",
        f"who       {inc['group']} {inc['key']}",
        *_began_and_detected(inc, zone),
        *(
            [
                f"follows   {inc['follows']} (forgotten before a late alert of its window came; it keeps what it reported)"
            ]
            if inc.get("follows")
            else []
        ),
        f"counted   {customers(subjects['distinct'], unnamed(subjects))}"
        + (f" ({by_class})" if by_class else "")
        + f", {amounts(inc['records'], inc.get('observations', 0), inc.get('devices', 0))}",
        # the individuals' notice needs every customer, not a count (a new user never found the list)
        *(f"          {line}" for line in whom_to_notify(inc)),
        *(f"linked    {other}: {SAME_LEAK}" for other in linked or []),
        "review    "
        + (
            f"{FALSE_POSITIVE}: the SOC reviewed every alert of it a false positive (below); "
            "`lifemon incidents resolve` records the team's own verdict"
            if by_alerts
            else review_line(reviews, current, INCIDENTS)
        ),
        "",
        "reports due / 报告时限 ("
        + (
            "counted from detection / 自发现起算)"
            if inc.get("detected_at")
            else "counted from the first event / 自首个事件起算)"
        ),
    ]
    owing = owed(inc["deadlines"], state)
    waived_any = False
    for d in inc["deadlines"]:
        waived = False
        if d in owing:
            passed = "  passed / 已过" if d["due"] <= now.timestamp() * 1000 else ""
        elif state in REGULATOR_TOLD and d.get("notice", False):
            waived = state == NOTICE_WAIVED and bool(d.get("waiver"))
            passed = _notice_made(d, reviews, current, waived, zone)
        else:
            passed = ""
        lines.append(f"  {d['to']['zh']} / {d['to']['en']}: {_when(d['due'], zone)}{passed}")
        lines += [f"    {line}" for line in deadline_basis(d, waivable_now=d in owing)]
        if waived:  # under the line it waives (a probe read it under the assessor's, as if that were)
            waived_any = True
            lines += [
                *(
                    f"    {line}"
                    for line in clause_lines([d["waiver"]], [d.get("waiver_en", "")], value_width(4))
                ),
                "    the measures that avoided the harm: the review's note below; the regulator may still ask "
                "for the notice (make it, then `lifemon incidents resolve --as notified`) / 监管部门要求通知个人的, "
                "通知后记录为 notified",
            ]
    drafted = " (drafted, not sent: waived / 草稿，未发送：不通知个人)" if waived_any else ""
    lines += ["", f"notice / 告知内容 (PIPL art. 57 ¶1){drafted}", f"  categories / 信息种类{_overlap(inc)}"]
    for c in notice["categories"]:
        lines.append(f"    {c['zh']} / {c['en']} ({c['jr_class']}): {counted(c, zh=True)}; {counted(c)}")
    if texts_of.get("legal_tiers"):  # once per tier, never as a category's records (probe_v3 H3)
        lines.append(f"  {LEGAL_TIERS}")
        lines += [f"    {line}" for line in texts_of["legal_tiers"]]
    for key, heading in (
        ("cause", "cause / 原因"),
        ("harm", "possible harm / 可能造成的危害"),
        ("measures", MEASURES_TAKEN if state in MEASURES_TAKEN_ONCE else MEASURES_TO_TAKE),
        ("individuals", "what individuals can do / 个人可以采取的减轻危害的措施"),
        ("contact", "contact / 联系方式"),
    ):
        lines.append(f"  {heading}")
        lines += [f"    {line}" for line in texts_of[key]]
    cited = clause_lines(inc["regulation"], inc.get("regulation_en", []), value_width(2))
    lines += ["", "regulation / 依据", *(f"  {line}" for line in cited)]
    lines += ["", f"alerts / 告警 ({len(inc['alerts'])}; `lifemon alerts show ID` for each)"]
    for a in inc["alerts"]:
        lines.append(
            f"  {a['alert_id'][:12]}  {a['severity']:<8} {a['rule_id']:<28} {a['jr_class']}  {a['summary']}"
        )
        if verdicts := alert_reviews.get(a["alert_id"]):  # the SOC's word on it, beside it
            lines.append(f"      review: {said(verdicts[-1])}")
    return "\n".join(lines + render_reviews(reviews))


def whom_to_notify(inc: dict[str, Any]) -> list[str]:
    """Where the individuals' notice finds its customers: `incidents subjects` for those the
    incident names; for those a log counted without naming them, that log (`subjects.unnamed_from`),
    whose owner holds their list. A new user's incident of 99 customers a transfer named none of
    pointed to `incidents subjects`, which printed nothing."""
    subjects = inc["subjects"]
    lines = (
        [
            f"whom to notify / 通知对象: `lifemon incidents subjects {inc['incident_id'][:12]} --customers FILE`"
        ]
        if subjects["distinct"]
        else ["whom to notify / 通知对象: no customer named in the logs / 日志未列明客户"]
    )
    return lines + [f"  {line}" for line in not_named(subjects)]


def not_named(subjects: dict[str, Any]) -> list[str]:
    """Each log that counted customers without naming them, and how many: ask its owner for the
    list. A record from before the logs were kept (`unnamed_from`) says its alerts name them."""
    sources = subjects.get("unnamed_from", [])
    lines = [
        f"{u['origin']}: {n_of(u['customers'], 'customer')} not named in the log: ask its owner for the list "
        f"/ 日志未列明的 {u['customers']:,} 名客户: 向其负责人索取名单"
        for u in sources
    ]
    left = unnamed(subjects) - sum(u["customers"] for u in sources)
    if left > 0:
        lines.append(
            f"{n_of(left, 'customer')} not named in the logs: `lifemon alerts show ID` of its alerts names each "
            "transfer; ask its owner for the list / 日志未列明客户: 见各告警所列传输, 向其负责人索取名单"
        )
    return lines


def deadline_basis(d: dict[str, Any], waivable_now: bool = True) -> list[str]:
    """Under a report due (one of an incident's `deadlines`, as the webhook's payload carries them):
    its period and the clause that sets it, and, for a notice policy/incidents.yaml lets the team
    waive, the clause that allows it (`waivable_now`: while the team has not recorded its verdict).
    A new user's `incidents show` gave deadlines with no basis and never said the individuals'
    notice may be waived, which the same incident's webhook said."""
    hours = f"{d['within_hours']:g}"
    width = value_width(6)
    lines = [f"within {hours} h / {hours} 小时内; basis / 依据:"]
    lines += [f"  {line}" for line in clause_lines([d["regulation"]], [d.get("regulation_en", "")], width)]
    if d.get("waiver") and waivable_now:
        lines.append("may be waived / 可不通知 (`lifemon incidents resolve --as notice_waived --note`):")
        lines += [f"  {line}" for line in clause_lines([d["waiver"]], [d.get("waiver_en", "")], width)]
    return lines


def _overlap(inc: dict[str, Any]) -> str:
    """Said beside the categories where their records add up to more than the incident's: a record
    counts in each category it holds (a new user's three categories of 3 records each, of 3 records)."""
    listed = sum(c.get("records", 0) for c in inc["notice"]["categories"])
    if listed <= inc["records"]:
        return ""
    return (
        f" (a record counts in each category it holds: together {listed:,}, of {n_of(inc['records'], 'record')} "
        f"/ 一条记录含多类信息的, 各类分别计数)"
    )


def _began_and_detected(inc: dict[str, Any], zone: ZoneInfo) -> list[str]:
    """When the leak began (its first event) and when lifemon detected it (发现: when a detector
    could first know it, `Finding.detected_at`), apart: a spree that began at 09:56 reached art. 5's
    count hours later, and the regulators' clocks run from discovery. A record from before
    detections were kept says so, its reports counted from the first event."""
    detected = inc.get("detected_at")
    return [
        f"began     {_when(inc['first_seen'], zone)} (first event / 首个事件), "
        f"last event {_when(inc['last_seen'], zone)}",
        f"detected  {_when(detected, zone)} (发现: the alert that made it an incident; reports count from it)"
        if detected
        else "detected  not kept (opened before lifemon kept it / 未记录); reports count from the first event",
    ]


def _notice_made(
    d: dict[str, Any], reviews: list[dict[str, Any]], current: dict[str, Any], waived: bool, zone: ZoneInfo
) -> str:
    """What a deadline of the notice (`d`) says once reviewed so: made, or waived, when the team
    first recorded it of the incident as it stands (a notice of fewer customers is no notice of
    these), in time or late, never silently met (a new user's notice recorded eleven months on read
    as on track). The regulator's report was made by any of the three verdicts; the individuals'
    notice by `notified` only, its waiver by `notice_waived`."""
    made_by = (NOTICE_WAIVED,) if waived else (NOTIFIED,) if d.get("waiver") else REGULATOR_TOLD
    at = next(
        (aware(r["at"]) for r in reviews if r["state"] in made_by and covers(r, current, INCIDENTS)), None
    )
    if at is None:
        return ""
    late = at.timestamp() * 1000 > d["due"]
    if waived:
        said = "waived after its deadline / 逾期决定不通知个人" if late else "waived / 不通知个人"
    else:
        said = "notified late / 逾期告知" if late else "notified / 已告知"
    return f"  {said} {_when(int(at.timestamp() * 1000), zone)}"
