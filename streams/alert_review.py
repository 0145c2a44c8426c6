"""An analyst's review of an alert (`lifemon alerts ack` / `resolve`), apart from the alert's own
`status`: that is the detector's episode (open, updated, closed when its window passed), never
that anyone looked at it. Each review action is one row of `alert_reviews`
(clickhouse/004_alert_reviews.sql), kept as the audit trail; the newest row of an alert is its
review state, and covers the alert up to its last event when reviewed: later events put it back
in the queue. A note is free text: customer ids of the bank's form (organisation.yaml
`customer_id_form`), pseudonyms, card, resident ID and mobile numbers and any other run of eleven
digits or more in it are masked before it
is stored, so the table holds nothing that names a customer and needs no TTL (JR/T 0171-2020
§7.1.4 使用: 最小必要). The server records which ClickHouse account stored each row (`account`)."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any, NamedTuple

from streams.clickhouse import ddl_statements, tables_present
from streams.personal_numbers import half_width, mask, whole_token
from streams.pseudonym import PSEUDONYM
from streams.text_table import aligned

TABLE = "alert_reviews"
UNREVIEWED = "unreviewed"  # no review, or none since the alert's last events
ACKNOWLEDGED = "acknowledged"  # an analyst took it: being looked into
RESOLVING = ("resolved", "false_positive")  # closed out: handled, or the detector was wrong
STATES = (ACKNOWLEDGED, *RESOLVING)

# `--review` words -> the review states they select; `unresolved` is the queue Grafana's overview
# counts ("Alerts awaiting review"): no review that closed it out covers its last events
REVIEWS = {
    UNREVIEWED: [UNREVIEWED],
    ACKNOWLEDGED: [ACKNOWLEDGED],
    "unresolved": [UNREVIEWED, ACKNOWLEDGED],
    "resolved": ["resolved"],
    "false_positive": ["false_positive"],
}
NOTE_MAX = 500  # characters kept of a note: a reason, not a report
REVIEW_COLUMNS = ("at", "state", "analyst", "account", "note", "alert_revision", "alert_last_seen")

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
_DIGITS = re.compile(r"(?<!\d)\+?\d(?:[\s\-–—]*\d){10,}[Xx]?(?!\d)")  # a +86, an ID's X: its form


def redact(text: str, customer_id_form: str | None = None) -> str:
    """`text` as a review stores it: customer ids of the bank's form (organisation.yaml
    `customer_id_form`; none without one) become `{customer}`, pseudonyms `{pseudonym}`, then card,
    resident ID and mobile numbers their forms (personal_numbers.mask), any other run of eleven
    digits or more `{number}` (a mistyped one still names its customer), and whitespace is folded.
    Pseudonyms and ids first: a pseudonym's hex can hold a run of digits `mask` would take. A note
    typed in Chinese input mode writes an id in full width (Ｃ０００００２２): read in ASCII, in
    either case."""
    text = half_width(text)
    if customer_id_form:  # a note typed in haste (c0000022) names its customer too
        text = re.sub(whole_token(customer_id_form), "{customer}", text, flags=re.IGNORECASE)
    text = _DIGITS.sub(_number, _PSEUDONYM.sub("{pseudonym}", text))
    return " ".join(mask(text).split())


def _number(run: re.Match[str]) -> str:
    """A run of eleven digits or more as its form, if it is one number of a form throughout; else
    `{number}`: a card mistyped one digit long must not leave that digit beside its form ("card
    {bank_card}3", a probe's note), nor a longer run its tail."""
    masked = mask(run.group())
    return "{number}" if any(c.isdigit() for c in masked) else masked


def latest_reviews(database: str, present: bool = True) -> str:
    """A subquery: each reviewed alert's newest review (`state`, `analyst`, `reviewed_at`) and the
    last event time it covers (`covered_until`). `present`: whether the table exists (a database
    from before it has no reviews, and the subquery is empty)."""
    if not present:
        return (
            "(SELECT '' AS alert_id, '' AS state, '' AS analyst, toDateTime64(0, 3, 'UTC') AS reviewed_at, "
            "toDateTime64(0, 3, 'UTC') AS covered_until WHERE 0)"
        )
    newest = "(at, review_id)"
    return (
        f"(SELECT alert_id, argMax(state, {newest}) AS state, argMax(analyst, {newest}) AS analyst, "
        f"max(at) AS reviewed_at, argMax(alert_last_seen, {newest}) AS covered_until "
        f"FROM {database}.{TABLE} GROUP BY alert_id)"
    )


def review_state(state: str, covered_until: Any, last_seen: Any) -> str:
    """The review state an alert is in: its newest review's, if that covers its last event."""
    return state if state and covered_until >= last_seen else UNREVIEWED


class Review(NamedTuple):
    """A review as stored: what `record_review` wrote."""

    alert_id: str
    state: str
    analyst: str
    note: str
    alert_revision: int
    alert_last_seen: datetime
    at: datetime


def record_review(
    client: Any,
    database: str,
    alert_id: str,
    state: str,
    analyst: str,
    note: str = "",
    at: datetime | None = None,
    customer_id_form: str | None = None,
) -> Review:
    """Store one review of `alert_id` (an id `resolve_alert_id` returned) as it is now: its newest
    revision and last event. The note and the analyst are redacted (`redact`: customer ids of
    `customer_id_form`, the policy's, pseudonyms, card, ID and mobile numbers) and
    whitespace-folded; the table is created if the database predates it (the same DDL as
    `lifemon run` applies)."""
    if state not in STATES:
        raise ValueError(f"review state {state!r}: one of {', '.join(STATES)}")
    analyst = redact(analyst, customer_id_form)
    if not analyst:
        raise ValueError("a review needs the analyst who made it")
    ensure_table(client, database)
    newest = client.query(
        f"SELECT revision, last_seen FROM {database}.alerts FINAL WHERE alert_id = {{id:String}}",
        parameters={"id": alert_id},
    ).result_rows
    if not newest:
        raise LookupError(f"no alert {alert_id}")
    ((revision, last_seen),) = newest
    review = Review(
        alert_id,
        state,
        analyst,
        redact(note, customer_id_form)[:NOTE_MAX],  # masked whole: a cut number would escape the mask
        revision,
        last_seen,
        at or datetime.now(UTC),
    )
    client.insert(
        TABLE,
        [[review.alert_id, uuid.uuid4().hex, *review[1:]]],
        database=database,
        column_names=["alert_id", "review_id", *Review._fields[1:]],
    )
    return review


def ensure_table(client: Any, database: str) -> None:
    """Create `alert_reviews` where a lifemon from before it made the database: its statement of
    clickhouse/*.sql, nothing else (a read command never changes the other tables)."""
    if tables_present(client, database, [TABLE]):
        return
    (create,) = [
        s for s in ddl_statements(database) if s.startswith(f"CREATE TABLE IF NOT EXISTS {database}.{TABLE}")
    ]
    client.command(create)


def query_reviews(client: Any, database: str, alert_id: str) -> list[dict[str, Any]]:
    """Every review of `alert_id`, oldest first, as dicts of REVIEW_COLUMNS (none where the
    database predates the table)."""
    if not tables_present(client, database, [TABLE]):
        return []
    # the server's account column, '' where the table predates it and no `lifemon run` added it yet
    has_account = client.query(
        "SELECT count() FROM system.columns WHERE database = {db:String} AND table = {t:String} "
        "AND name = 'account'",
        parameters={"db": database, "t": TABLE},
    ).result_rows[0][0]
    columns = [c if c != "account" or has_account else "'' AS account" for c in REVIEW_COLUMNS]
    result = client.query(
        f"SELECT {', '.join(columns)} FROM {database}.{TABLE} WHERE alert_id = {{id:String}} "
        "ORDER BY at, review_id",
        parameters={"id": alert_id},
    )
    return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]


def _utc(t: datetime) -> str:
    return f"{(t if t.tzinfo else t.replace(tzinfo=UTC)):%Y-%m-%d %H:%M:%S} UTC"


def review_line(reviews: list[dict[str, Any]], last_seen: datetime) -> str:
    """An alert's review state in one line, for `lifemon alerts show`: whose newest review, when,
    and whether events came after it (then the alert is unreviewed again)."""
    if not reviews:
        return f"{UNREVIEWED}: nobody has reviewed it (`lifemon alerts ack` / `resolve`)"
    newest = reviews[-1]
    by = f"{newest['state']} by {_who(newest)} at {_utc(newest['at'])}"
    if review_state(newest["state"], newest["alert_last_seen"], last_seen) == UNREVIEWED:
        return f"{UNREVIEWED}: events after its last review ({by}, which saw them to {_utc(newest['alert_last_seen'])})"
    return by


def _who(review: dict[str, Any]) -> str:
    """The analyst a review names, and the ClickHouse account that stored it where it differs."""
    account = review["account"]
    return (
        review["analyst"]
        if account in ("", review["analyst"])
        else f"{review['analyst']} (account {account})"
    )


def render_reviews(reviews: list[dict[str, Any]]) -> list[str]:
    """The review history under `lifemon alerts show`: each action, oldest first (the newest counts)."""
    head = ["", "reviews / 复核记录 (oldest first; the newest counts)"]
    if not reviews:
        return [*head, "  none"]
    table = [
        (
            _utc(r["at"]),
            r["state"],
            r["analyst"],
            r["account"] or "—",
            str(r["alert_revision"]),
            r["note"] or "—",
        )
        for r in reviews
    ]
    header = ("at", "state", "analyst", "account", "revision", "note")
    return head + ["  " + line for line in aligned(header, table)]
