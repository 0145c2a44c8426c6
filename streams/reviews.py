"""An analyst's review of an alert (`lifemon alerts ack` / `resolve`), or a responder's of an
incident (`lifemon incidents ack` / `resolve`), apart from its own `status`: that is the
detector's episode (open, updated, closed when its window passed), never that anyone looked at it.
Each review action is one row of `alert_reviews` (clickhouse/004_alert_reviews.sql) or
`incident_reviews` (005), kept as the audit trail; the newest row of an alert or incident is its
review state, and covers it up to its last event when reviewed: later events put it back in the
queue (an incident that grew needs its report brought up to date). A note is free text: customer
ids of the bank's form (organisation.yaml `customer_id_form`), pseudonyms, card, resident ID and
mobile numbers, any other run of eleven digits or more, and a value typed after the word for a
secret are masked before it is stored, so the table holds nothing that names a customer and needs
no TTL (JR/T 0171-2020 §7.1.4 使用: 最小必要). The server records which ClickHouse account stored
each row (`account`)."""

from __future__ import annotations

import logging
import re
import uuid
from datetime import UTC, datetime
from typing import Any, NamedTuple

from streams.clickhouse import ddl_statements, has_column, tables_present
from streams.personal_numbers import half_width, mask, whole_token
from streams.pseudonym import PSEUDONYM
from streams.secret_words import seal_secrets
from streams.text_table import aligned

log = logging.getLogger(__name__)

UNREVIEWED = "unreviewed"  # no review, or none since its last events
ACKNOWLEDGED = "acknowledged"  # an analyst took it: being looked into
FALSE_POSITIVE = "false_positive"
NOTIFIED = "notified"  # the reports the notice makes were made: the regulator's and the individuals'
# the regulator's report made, the individuals' notice waived: seed 004 应急管理(4) lets the bank
# forgo it where its measures avoided the harm (policy/incidents.yaml `waiver`)
NOTICE_WAIVED = "notice_waived"
NOTICE_GIVEN = (NOTIFIED, NOTICE_WAIVED)  # the verdicts that leave no notice owed
# the report to the authorities made, the individuals' notice (or its waiver) still to come: PIPL
# art. 57 and seed 004 应急管理(4) ask the regulator told at once, the individuals within days, and the
# team tells the PBoC branch in hours while it weighs the waiver. Only a notice that may be waived
# (`waiver`) is the individuals': it stays owed, as the reports the notice does not make do
REGULATOR_NOTIFIED = "regulator_notified"
REGULATOR_TOLD = (*NOTICE_GIVEN, REGULATOR_NOTIFIED)  # the verdicts that made the regulator's report
# the states that leave every report still to make: none, or the case only taken on. Any other
# verdict is a review that closed it out, a later release's too: rolled back onto its reviews, a
# release that owed the reports of a verdict it did not know paged the team for reports made
# (probe_v1 F4); it reads as reviewed, owing nothing, and is warned about (`unknown_verdict`)
OPEN = (UNREVIEWED, ACKNOWLEDGED)
# the verdicts that say nothing without a reason: what `--note` must then say
NOTE_NEEDED = {
    FALSE_POSITIVE: "why it was none (for {source} to come)",
    NOTICE_WAIVED: "which measures avoided the harm (《个人金融信息保护管理规定》 应急管理(4)), the regulator's "
    "report being made",
}


def owed(deadlines: list[dict[str, Any]], review: str) -> list[dict[str, Any]]:
    """The reports (an incident's `deadlines`) still the team's to make in review state `review`,
    as `OWED` says in SQL: none once closed out; `notified` and `notice_waived` leave those the
    notice does not make, `regulator_notified` those and the individuals' notice (the one the
    policy lets the team waive: it is theirs to decide yet)."""
    if review in OPEN:
        return deadlines
    return [
        d
        for d in deadlines
        if review in REGULATOR_TOLD
        and (not d.get("notice", False) or (review == REGULATOR_NOTIFIED and bool(d.get("waiver"))))
    ]


class Reviewed(NamedTuple):
    """What is reviewed: its table (`source`), where its reviews are kept (`table`, columns
    `{noun}_id`, `{noun}_revision`, `{noun}_last_seen` and `{noun}_{c}` of each `extent` column),
    and the verdicts that close it out. A review covers what it saw: the events to its last, no
    more of what `extent` counts, and no member (an `_ids` column) it did not see (an incident that
    grew by a late alert with earlier events has more to notify, its last event unmoved)."""

    noun: str
    source: str
    table: str
    resolving: tuple[str, ...]
    resolving_help: str
    extent: tuple[str, ...] = ()
    # verdicts that record part of what is owed: the case stays in the `unresolved` queue
    partial: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return f"{self.noun}_id"

    @property
    def states(self) -> tuple[str, ...]:
        return (ACKNOWLEDGED, *self.resolving)

    @property
    def reviews(self) -> dict[str, list[str]]:
        """`--review` words -> the review states they select; `unresolved` is the queue (Grafana's
        overview counts the alerts': "Alerts awaiting review"): no review that closed it out covers
        its last events."""
        return {
            UNREVIEWED: [UNREVIEWED],
            ACKNOWLEDGED: [ACKNOWLEDGED],
            "unresolved": [UNREVIEWED, ACKNOWLEDGED, *self.partial],
            **{state: [state] for state in self.resolving},
        }


ALERTS = Reviewed(
    "alert",
    "alerts",
    "alert_reviews",
    ("resolved", "false_positive"),
    "resolved: a real finding, handled; false_positive: the detector was wrong (needs --note)",
)
# the response team's: the notice given (PIPL art. 57: the authorities and the individuals told),
# the authorities told and the individuals' notice lawfully waived, the authorities told and the
# individuals' notice pending, handled otherwise, or no leakage at all
INCIDENTS = Reviewed(
    "incident",
    "incidents",
    "incident_reviews",
    (NOTIFIED, NOTICE_WAIVED, REGULATOR_NOTIFIED, "resolved", FALSE_POSITIVE),
    "notified: the report and the individuals' notice were made (PIPL art. 57); regulator_notified: "
    "the report to the authorities was made, the individuals' notice still pending (`notified` or "
    "`notice_waived` once decided); notice_waived: the "
    "report was made and the individuals' notice waived, the measures having avoided the harm "
    "(《个人金融信息保护管理规定》 应急管理(4), PIPL art. 57 ¶2; needs --note naming them; `notified` "
    "once the regulator asks for it after all); "
    "resolved: handled otherwise (--note says how); false_positive: no leakage (needs --note)",
    ("subjects_distinct", "records", "alert_ids"),
    (REGULATOR_NOTIFIED,),
)


def _members(c: str) -> bool:
    """An extent column that lists members (ids) rather than counting."""
    return c.endswith("_ids")


def _covered(c: str) -> str:
    """The SQL that a review's `seen_{c}` covers the row's `c`: all its members, or as much."""
    return f"hasAll(r.seen_{c}, s.{c})" if _members(c) else f"r.seen_{c} >= s.{c}"


NOTE_MAX = 500  # characters kept of a note: a reason, not a report

# streams/pseudonym.py's pattern without its \b, which a CJK character next to it defeats: only an
# ASCII letter or digit before it makes it part of another word, as for a customer id
# (`personal_numbers.whole_token`); masked even when more hex follows (a mistyped one still names
# the customer)
_PSEUDONYM = re.compile(r"(?<![A-Za-z0-9])" + PSEUDONYM.pattern.removeprefix(r"\b").removesuffix(r"\b"))
# what `mask` leaves of a number it cannot read as a card, ID or mobile (a check digit mistyped, a
# card written in groups of four with one group short): eleven or more digits, any whitespace and
# dashes between them (the note's whitespace is folded after: a number split by tabs or newlines
# must not come out whole). A reason needs no such number; the mask costs a ticket number that
# long, and two dates side by side ("2026-01-05 2026-01-06": write "to" between them)
_TOUCHING = re.compile(r"\d\{|\}\d")  # a digit beside a form mask gave: what is left of one number
_DIGITS = re.compile(r"(?<!\d)\+?\d(?:[\s\-–—]*\d){10,}[Xx]?(?!\d)")  # a +86, an ID's X: its form
# an e-mail address: a customer's, typed into a note (a probe's "ouyang.feng@example.com" was kept)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


def redact(text: str, customer_id_form: str | None = None) -> str:
    """`text` as a review stores it: customer ids of the bank's form (organisation.yaml
    `customer_id_form`; none without one) become `{customer}`, pseudonyms `{pseudonym}`, then card,
    resident ID, mobile and IMEI numbers their forms (personal_numbers.mask), e-mail addresses
    `{email}`, any other run of eleven
    digits or more `{number}` (a mistyped one still names its customer), a value typed after the
    word for a secret or a passport `{secret}` (streams/secret_words.py), and whitespace is folded.
    Pseudonyms and ids first: a pseudonym's hex can hold a run of digits `mask` would take. A note
    typed in Chinese input mode writes an id in full width (Ｃ０００００２２): read in ASCII, in
    either case."""
    text = half_width(text)
    if customer_id_form:  # a note typed in haste (c0000022) names its customer too
        text = re.sub(whole_token(customer_id_form), "{customer}", text, flags=re.IGNORECASE)
    text = _DIGITS.sub(_number, _PSEUDONYM.sub("{pseudonym}", _EMAIL.sub("{email}", text)))
    text = seal_secrets(text)  # the word for a secret kept, its value gone
    return " ".join(mask(text).split())


def _number(run: re.Match[str]) -> str:
    """A run of eleven digits or more with its numbers masked by form, unless a digit is left
    touching a form (a card mistyped one digit long: "card {bank_card}3", a probe's note; a longer
    run's tail): then `{number}`. Digits apart from a form keep their meaning (a date beside a
    phone number), and any long run still left is a number."""
    masked = mask(run.group())
    return "{number}" if _TOUCHING.search(masked) else _DIGITS.sub("{number}", masked)


def reviewed(client: Any, database: str, kind: Reviewed) -> str:
    """A subquery: each alert's or incident's newest revision (its table FINAL), with `review`, the
    state it is in (`review_state`), `acknowledged_at`, its first review of any verdict (someone
    took it), and `resolved_at`, its first that closed it out (`lifemon alerts resolve`, resolved or
    a false positive): the ends of the times to acknowledge and to resolve (`alert_query.handling`);
    1970 where there is none."""
    newest = "(at, review_id)"
    extent = "".join(f", argMax({kind.noun}_{c}, {newest}) AS seen_{c}" for c in kind.extent)
    never = "toDateTime64(0, 3, 'UTC')"
    closing = ", ".join(f"'{state}'" for state in kind.resolving)
    latest = (
        f"(SELECT {kind.id}, argMax(state, {newest}) AS state, argMax({kind.noun}_last_seen, {newest}) "
        # `v.state`: the row's, not the newest's that `state` names here
        f"AS covered_until{extent}, min(at) AS first_at, minIf(at, v.state IN ({closing})) "
        f"AS closed_at FROM {database}.{kind.table} AS v GROUP BY {kind.id})"
        if tables_present(client, database, [kind.table])
        # a database from before the table: no reviews
        else f"(SELECT '' AS {kind.id}, '' AS state, {never} AS covered_until"
        + "".join(f", {'CAST([] AS Array(String))' if _members(c) else 0} AS seen_{c}" for c in kind.extent)
        + f", {never} AS first_at, {never} AS closed_at WHERE 0)"
    )
    if tables_present(client, database, [kind.table]):
        stored = client.query(f"SELECT DISTINCT state FROM {database}.{kind.table}").result_rows
        for (state,) in stored:
            unknown_verdict(state, kind)
    covered = "".join(f" AND {_covered(c)}" for c in kind.extent)
    # an incident no review of its own covers follows its alerts: every one judged a false positive
    otherwise = f"'{UNREVIEWED}'"
    if kind is INCIDENTS and tables_present(client, database, [ALERTS.table]):
        # IN, not a second join: with two, ClickHouse names the row's id `s.incident_id`
        cleared = f"SELECT of_incident FROM {_alerts_false_positive(database)} WHERE all_false_positive"
        otherwise = f"if(s.incident_id IN ({cleared}), '{FALSE_POSITIVE}', '{UNREVIEWED}')"
    # join_use_nulls 0: no review reads ''
    return (
        f"(SELECT s.*, if(r.state != '' AND r.covered_until >= s.last_seen{covered}, r.state, {otherwise}) "
        "AS review, r.first_at AS acknowledged_at, r.closed_at AS resolved_at "
        f"FROM {database}.{kind.source} AS s FINAL LEFT JOIN {latest} AS r "
        f"ON r.{kind.id} = s.{kind.id} SETTINGS join_use_nulls = 0)"
    )


def _alerts_false_positive(database: str) -> str:
    """A subquery: per incident, whether the SOC reviewed every member alert a false positive, each
    at the revision the incident holds or later (`alerts_false_positive` in Python). A probe's
    incident whose two alerts the SOC cleared stayed unreviewed, a regulator report due, and was
    posted to Alertmanager again every few minutes."""
    newest = "(at, review_id)"
    return (
        "(SELECT i.incident_id AS of_incident, "
        f"min(v.state = '{FALSE_POSITIVE}' AND v.revision >= i.revision) AS all_false_positive "
        "FROM (SELECT incident_id, m.1 AS alert_id, m.2 AS revision FROM (SELECT incident_id, "
        "arrayJoin(JSONExtract(incident, 'alerts', 'Array(Tuple(alert_id String, revision UInt32))')) AS m "
        f"FROM {database}.incidents FINAL)) AS i "
        f"LEFT JOIN (SELECT alert_id, argMax(state, {newest}) AS state, argMax(alert_revision, {newest}) AS revision "
        f"FROM {database}.{ALERTS.table} GROUP BY alert_id) AS v ON v.alert_id = i.alert_id "
        "GROUP BY i.incident_id)"
    )


def alerts_false_positive(inc: dict[str, Any], alert_reviews: dict[str, list[dict[str, Any]]]) -> bool:
    """Whether the SOC reviewed every alert of `inc` a false positive, each at the revision the
    incident holds or later (its newest review): then the incident is one too, unless a review of
    its own says otherwise."""
    alerts = inc.get("alerts") or []
    return bool(alerts) and all(
        (rs := alert_reviews.get(a["alert_id"]))
        and rs[-1]["state"] == FALSE_POSITIVE
        and rs[-1]["revision"] >= a["revision"]
        for a in alerts
    )


def review_state(reviews: list[dict[str, Any]], current: dict[str, Any], kind: Reviewed = ALERTS) -> str:
    """The review state an alert or incident (`current`: its last_seen and extent) is in: its newest
    review's, if that covers it: its last event (times from ClickHouse, which gives them without a
    zone) and all it counts."""
    if not reviews:
        return UNREVIEWED
    if not covers(reviews[-1], current, kind):
        return UNREVIEWED
    unknown_verdict(reviews[-1]["state"], kind)
    return str(reviews[-1]["state"])


_warned: set[tuple[str, str]] = set()  # (table, verdict): said once a process (notify reads them every pass)


def unknown_verdict(state: str, kind: Reviewed) -> bool:
    """Whether `state` is a verdict this release does not know (a later release's, read after a
    rollback): it counts as reviewed, owing nothing (`OPEN`), and is warned about once."""
    if state in (UNREVIEWED, *kind.states):
        return False
    if (kind.table, state) not in _warned:
        _warned.add((kind.table, state))
        log.warning(
            f"{kind.table} holds the verdict {state!r}, which this release does not know (a later "
            f"release's? docs/operations.md#rolling-back): its {kind.source} read as reviewed, no "
            "report owed; roll forward to the release that wrote it to read what it means"
        )
    return True


def covers(review: dict[str, Any], current: dict[str, Any], kind: Reviewed = ALERTS) -> bool:
    """Whether `review` saw all `current` holds: its last event and all it counts."""
    return aware(review["last_seen"]) >= aware(current["last_seen"]) and all(
        set(current[c]) <= set(review[c]) if _members(c) else review[c] >= current[c] for c in kind.extent
    )


def aware(t: datetime) -> datetime:
    return t if t.tzinfo else t.replace(tzinfo=UTC)


class Review(NamedTuple):
    """A review as stored: what `record_review` wrote (of the alert or incident `id`: its
    revision and last event then)."""

    id: str
    state: str
    analyst: str
    note: str
    revision: int
    last_seen: datetime
    at: datetime


def record_review(
    client: Any,
    database: str,
    reviewed_id: str,
    state: str,
    analyst: str,
    note: str = "",
    at: datetime | None = None,
    customer_id_form: str | None = None,
    kind: Reviewed = ALERTS,
) -> Review:
    """Store one review of `reviewed_id` (an id `resolve_id` returned) as it is now: its newest
    revision and last event. The note and the analyst are redacted (`redact`: customer ids of
    `customer_id_form`, the policy's, pseudonyms, card, ID and mobile numbers) and
    whitespace-folded; the table is created if the database predates it (the same DDL as
    `lifemon run` applies)."""
    if state not in kind.states:
        raise ValueError(f"review state {state!r}: one of {', '.join(kind.states)}")
    analyst = redact(analyst, customer_id_form)
    if not analyst:
        raise ValueError("a review needs the analyst who made it")
    ensure_table(client, database, kind)
    newest = client.query(
        f"SELECT revision, last_seen{''.join(f', {c}' for c in kind.extent)} FROM {database}.{kind.source} "
        f"FINAL WHERE {kind.id} = {{id:String}}",
        parameters={"id": reviewed_id},
    ).result_rows
    if not newest:
        raise LookupError(f"no {kind.noun} {reviewed_id}")
    ((revision, last_seen, *extent),) = newest
    review = Review(
        reviewed_id,
        state,
        analyst,
        redact(note, customer_id_form)[:NOTE_MAX],  # masked whole: a cut number would escape the mask
        revision,
        last_seen,
        at or datetime.now(UTC),
    )
    client.insert(
        kind.table,
        [[review.id, uuid.uuid4().hex, *review[1:], *extent]],
        database=database,
        column_names=[
            kind.id,
            "review_id",
            "state",
            "analyst",
            "note",
            f"{kind.noun}_revision",
            f"{kind.noun}_last_seen",
            "at",
            *(f"{kind.noun}_{c}" for c in kind.extent),
        ],
    )
    return review


def ensure_table(client: Any, database: str, kind: Reviewed = ALERTS) -> None:
    """Create the reviews' table where a lifemon from before it made the database: its statement
    of clickhouse/*.sql, nothing else (a read command never changes the other tables)."""
    if tables_present(client, database, [kind.table]):
        return
    (create,) = [
        s
        for s in ddl_statements(database)
        if s.startswith(f"CREATE TABLE IF NOT EXISTS {database}.{kind.table}")
    ]
    client.command(create)


def query_reviews(
    client: Any, database: str, reviewed_id: str, kind: Reviewed = ALERTS
) -> list[dict[str, Any]]:
    """Every review of `reviewed_id`, oldest first, as dicts of at, state, analyst, account, note,
    revision and last_seen (none where the database predates the table)."""
    if not tables_present(client, database, [kind.table]):
        return []
    # the server's account column, '' where the table predates it and no `lifemon run` added it yet
    has_account = has_column(client, database, kind.table, "account")
    columns = ["at", "state", "analyst", "account" if has_account else "'' AS account", "note"]
    columns += [f"{kind.noun}_revision AS revision", f"{kind.noun}_last_seen AS last_seen"]
    columns += [f"{kind.noun}_{c} AS {c}" for c in kind.extent]
    result = client.query(
        f"SELECT {', '.join(columns)} FROM {database}.{kind.table} WHERE {kind.id} = {{id:String}} "
        "ORDER BY at, review_id",
        parameters={"id": reviewed_id},
    )
    return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]


def _utc(t: datetime) -> str:
    return f"{aware(t):%Y-%m-%d %H:%M:%S} UTC"


def review_line(reviews: list[dict[str, Any]], current: dict[str, Any], kind: Reviewed = ALERTS) -> str:
    """An alert's or incident's review state in one line, for `lifemon alerts show` and `incidents
    show`: whose newest review, when, and whether events came after it (then it is unreviewed again)."""
    if not reviews:
        return f"{UNREVIEWED}: nobody has reviewed it (`lifemon {kind.source} ack` / `resolve`)"
    newest = reviews[-1]
    by = f"{newest['state']} by {_who(newest)} at {_utc(newest['at'])}"
    if review_state(reviews, current, kind) == UNREVIEWED:
        what = "it grew after its last review" if kind.extent else "events after its last review"
        return f"{UNREVIEWED}: {what} ({by}, which saw its events to {_utc(newest['last_seen'])})"
    if unknown_verdict(newest["state"], kind):
        return f"{by} (reviewed; a verdict unknown to this release, read as owing nothing)"
    return by


def said(review: dict[str, Any]) -> str:
    """A review in one line, as the receivers are told it ended an incident (`HttpReceiver.resolve`):
    "false_positive by e900001 at 2026-01-01 08:00 UTC: approved sample"."""
    at = f"{aware(review['at']):%Y-%m-%d %H:%M} UTC"
    return f"{review['state']} by {review['analyst']} at {at}" + (
        f": {review['note']}" if review["note"] else ""
    )


def _who(review: dict[str, Any]) -> str:
    """The analyst a review names, and the ClickHouse account that stored it where it differs."""
    account = review["account"]
    return (
        review["analyst"]
        if account in ("", review["analyst"])
        else f"{review['analyst']} (account {account})"
    )


def render_reviews(reviews: list[dict[str, Any]]) -> list[str]:
    """The review history under `lifemon alerts show` or `incidents show`: each action, oldest
    first (the newest counts)."""
    head = ["", "reviews / 复核记录 (oldest first; the newest counts)"]
    if not reviews:
        return [*head, "  none"]
    table = [
        (
            _utc(r["at"]),
            r["state"],
            r["analyst"],
            r["account"] or "—",
            str(r["revision"]),
            r["note"] or "—",
        )
        for r in reviews
    ]
    header = ("at", "state", "analyst", "account", "revision", "note")
    return head + ["  " + line for line in aligned(header, table)]
