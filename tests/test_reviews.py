"""An analyst's review of an alert, apart from its status (the detector's episode): the probe found
alerts that "closed themselves" (12 high ones nobody had looked at, among them reads after an
employee left) and no way to record a review. `lifemon alerts ack` / `resolve` on chDB, through the
CLI and streams/reviews.py."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from test_alert_query import BULK, TWIN, alert, root_logging, shown  # noqa: F401 (fixtures)
from test_personal_numbers import CARD, MOBILE, RIC

from schemas.models import AlertStatus
from streams.alert_query import query_alert, query_alerts
from streams.cli import main
from streams.reviews import ALERTS, record_review, redact
from streams.sinks.clickhouse import ALERT_COLUMNS, ClickHouseTableSink, alert_row

TABLE = ALERTS.table


@pytest.fixture
def cli(ch, shown, capsys, monkeypatch, root_logging):  # noqa: F811
    """`lifemon alerts ...` on the `shown` database (BULK closed at revision 3, TWIN open), as
    analyst e900001: (exit status, stdout lines, stderr)."""
    monkeypatch.setattr("streams.clickhouse.connect", lambda dsn: ch)
    monkeypatch.setenv("LIFEMON_ANALYST", "e900001")
    name, config = shown

    def run(*argv: str) -> tuple[int, list[str], str]:
        status = main(["alerts", *argv, "--config", config])
        out, err = capsys.readouterr()
        return status, out.splitlines(), err

    return run


def listed(run: Any, *argv: str) -> dict[str, str]:
    """alert id (12 characters) -> the first line the list prints for it."""
    status, out, _ = run(*argv)
    assert status == 0
    return {line[-13:-1]: line for line in out if line.startswith("2026-")}


def test_a_closed_alert_nobody_reviewed_stays_in_the_queue_until_resolved(cli) -> None:
    # BULK's episode closed: `--status active` drops it, the analyst's queue does not
    assert set(listed(cli, "--status", "active")) == {TWIN[:12]}
    queue = listed(cli, "--review", "unreviewed", "--severity", "high")
    assert set(queue) == {BULK[:12]} and " closed  unreviewed " in queue[BULK[:12]]
    # as a SOC writes them (a probe's --severity HIGH was an invalid choice)
    assert listed(cli, "--review", "Unreviewed", "--severity", "HIGH", "--status", "CLOSED") == queue

    status, out, _ = cli("ack", BULK[:8], "--note", "asked the line manager")
    assert status == 0
    assert out[0].startswith(f"acknowledged {BULK[:12]} by e900001 at 20")
    assert out[0].endswith(
        "(revision 3, its events to 2026-01-01 01:35:00 UTC); note: asked the line manager"
    )
    assert listed(cli, "--review", "unreviewed", "--severity", "high") == {}
    rows = listed(cli, "--review", "acknowledged")
    assert set(rows) == {BULK[:12]} and " closed  acknowledged " in rows[BULK[:12]]  # status as it was
    assert set(listed(cli, "--review", "unresolved")) == {BULK[:12], TWIN[:12]}

    status, out, _ = cli(
        "resolve", BULK, "--as", "resolved", "--by", "e900002", "--note", "no approval: suspended"
    )
    assert status == 0 and out[0].startswith(f"resolved {BULK[:12]} by e900002 ")
    assert set(listed(cli, "--review", "resolved")) == {BULK[:12]}
    assert set(listed(cli, "--review", "unresolved")) == {TWIN[:12]}
    assert set(listed(cli, "--status", "closed")) == {BULK[:12]}  # the episode is the detector's
    rows = listed(cli)
    assert " open    unreviewed " in rows[TWIN[:12]] and " closed  resolved " in rows[BULK[:12]]


def test_show_gives_the_review_and_its_history(cli) -> None:
    status, out, _ = cli("show", BULK)
    assert status == 0
    assert any(line.split()[:3] == ["review", "复核", "unreviewed:"] for line in out)
    assert out[-2:] == ["reviews / 复核记录 (oldest first; the newest counts)", "  none"]
    assert cli("ack", BULK[:8], "--by", "e900001")[0] == 0  # any start no other id shares
    cli(
        "resolve", BULK, "--as", "false_positive", "--by", "e900002", "--note", "approved export, ticket 4411"
    )
    status, out, _ = cli("show", BULK[:12])
    assert status == 0
    (review,) = [line for line in out if line.startswith("  review")]
    # the name given, and the ClickHouse account the server saw store it (chDB's is `default`)
    assert "false_positive by e900002 (account default) at 20" in review
    assert "closed (revision 3): the detector's episode, not a review" in "\n".join(out)
    history = out[out.index("reviews / 复核记录 (oldest first; the newest counts)") + 1 :]
    assert history[0].split() == ["at", "state", "analyst", "account", "revision", "note"]
    assert [line.split()[3:] for line in history[1:]] == [
        ["acknowledged", "e900001", "default", "3", "—"],
        ["false_positive", "e900002", "default", "3", "approved", "export,", "ticket", "4411"],
    ]


def test_events_after_a_review_put_the_alert_back_in_the_queue(ch, shown, cli) -> None:  # noqa: F811
    """A resolution covers the alert as the analyst saw it: an employee who goes on reading after
    it is not resolved."""
    name, _ = shown
    assert cli("resolve", TWIN, "--as", "resolved")[0] == 0
    assert query_alerts(ch, name, review="unreviewed", actor="e2").rows == []
    sink = ClickHouseTableSink(ch, f"{name}.alerts", ALERT_COLUMNS, alert_row, "alerts")
    sink.write(
        [alert(TWIN, "unauthorized_lookup", "medium", "e2", 50, revision=2, status=AlertStatus.updated)]
    )
    rows = query_alerts(ch, name, review="unreviewed", actor="e2").rows
    assert [(r["alert_id"], r["review"], r["status"]) for r in rows] == [(TWIN, "unreviewed", "updated")]
    _, out, _ = cli("show", TWIN)
    (review,) = [line for line in out if line.startswith("  review")]
    assert "unreviewed: events after its last review (resolved by e900001" in review
    assert "which saw its events to 2026-01-01 00:20:00 UTC" in review
    # a new review covers the new events
    assert cli("ack", TWIN)[0] == 0
    assert [r["review"] for r in query_alerts(ch, name, actor="e2").rows] == ["acknowledged"]


def test_the_note_keeps_no_card_id_or_phone_number(ch, shown) -> None:  # noqa: F811
    name, _ = shown
    review = record_review(
        ch, name, BULK, "acknowledged", "e900001", f"called {MOBILE} about card {CARD}, ID\n{RIC}"
    )
    assert review.note == "called {cn_mobile} about card {bank_card}, ID {cn_ric}"
    stored = ch.query(f"SELECT note, analyst, state, alert_revision FROM {name}.{TABLE}").result_rows
    assert stored == [(review.note, "e900001", "acknowledged", 3)]
    # a number typed with a wrong check digit, or grouped, still names its customer; a date, a
    # time and a ticket number are kept
    mistyped = record_review(
        ch,
        name,
        BULK,
        "acknowledged",
        "e900001",
        "card 6222020200001234561 (6222 0202 0000 123) ID 11010519491231002Y, 2026-01-05 10:30 ticket 48213",
    )
    assert mistyped.note == "card {number} ({number}) ID {number}Y, 2026-01-05 10:30 ticket 48213"
    # split by double spaces, tabs, a line break or a spaced dash: folded after the mask, never before
    spread = record_review(
        ch, name, BULK, "acknowledged", "e900001", "6222  0202\t0000\n1234 561 or 6222 - 0202 - 0000 - 1234"
    )
    assert spread.note == "{number} or {number}"
    with pytest.raises(ValueError, match="review state 'closed'"):  # the detector's word, not a review's
        record_review(ch, name, BULK, "closed", "e900001")


def test_the_note_and_analyst_keep_no_customer_id_or_pseudonym(ch, shown, cli) -> None:  # noqa: F811
    """The reviewer's note: a customer id and a pseudonym were stored as typed (the table promises
    neither, and has no TTL). The CLI masks the policy's customer id form (organisation.yaml
    `C[0-9]{7}`) and pseudonyms of any key version, in the note and in the analyst's name."""
    name, _ = shown
    note = f"customer C0000022 (p_0123456789abcdef01234567) card {CARD} called back"
    status, out, _ = cli("ack", BULK, "--note", note, "--by", "e900001 re C0000022")
    assert status == 0
    stored = ch.query(f"SELECT note, analyst FROM {name}.{TABLE}").result_rows
    assert stored == [
        ("customer {customer} ({pseudonym}) card {bank_card} called back", "e900001 re {customer}")
    ]
    assert out[0].endswith("; note: customer {customer} ({pseudonym}) card {bank_card} called back")
    # beside CJK text, of a later key version, mistyped longer; a ticket or a longer id that only
    # contains the form is no customer id
    review = record_review(
        ch,
        name,
        TWIN,
        "resolved",
        "e900002",
        "客户C0000022来电，p2_0123456789abcdef01234567。p_0123456789abcdef012345679 ticket INC00000221",
        customer_id_form="C[0-9]{7}",
    )
    assert review.note == "客户{customer}来电，{pseudonym}。{pseudonym}9 ticket INC00000221"
    # typed in Chinese input mode: the id in full width is the customer's too, the punctuation kept
    typed = record_review(
        ch,
        name,
        TWIN,
        "resolved",
        "e900002",
        "客户Ｃ０００００２２来电，已核实",
        customer_id_form="C[0-9]{7}",
    )
    assert typed.note == "客户{customer}来电，已核实"
    # a card typed one digit long, or a longer account number holding a card's digits, leaves no
    # digit of it (a probe's note kept "{bank_card}3"); a number of a form, however grouped, keeps it
    assert redact("card 6222021234567890123, acct 62220212345678901234567") == "card {number}, acct {number}"
    # digits apart from a form keep their meaning: a date or a ticket beside a phone number
    assert redact("called 2026-01-05 13800138000 back, ticket 4411 13800138000") == (
        "called 2026-01-05 {cn_mobile} back, ticket 4411 {cn_mobile}"
    )
    assert redact("ids 12345678901 13800138000") == "ids {number} {cn_mobile}"
    assert (
        redact(f"card {CARD[:4]} {CARD[4:8]}-{CARD[8:]} or +86 138 1234 5678")
        == "card {bank_card} or {cn_mobile}"
    )
    # a secret typed beside its word, or a passport number: the word kept, the value gone (a probe's
    # notes kept "pw Passw0rd!" and "CVN 123 exp 12/28" in an append-only table)
    assert redact("ack: passport E12345678; CVN 123 exp 12/28, pw Passw0rd! reset") == (
        "ack: passport {secret}; CVN {secret} exp {secret}, pw {secret} reset"
    )
    assert redact("客户密码123456已重置，验证码 884512 作废; password: hunter") == (
        "客户密码{secret}，验证码 {secret} 作废; password: {secret}"
    )
    assert redact("the PIN was reset, PIN pad replaced") == "the PIN was reset, PIN pad replaced"
    assert redact("客户 ouyang.feng@example.com 已回电") == "客户 {email} 已回电"
    # a review's: glued to its word, an abbreviation, a pass phrase, a date with spaces
    assert redact("CVV123 PIN1234 exp. 12/28 expiry 12 / 28 ok") == (
        "CVV{secret} PIN{secret} exp. {secret} expiry {secret} ok"
    )
    assert redact("password: correct horse battery staple") == "password: {secret}"
    assert redact("approval expires 2026-02-01") == "approval expires 2026-02-01"
    # in lower case, or full width lower case, it still names the customer
    assert redact("called c0000022, ｃ０００００２３ too", "C[0-9]{7}") == "called {customer}, {customer} too"
    # without a form of the bank's (none in its organisation.yaml), pseudonyms are still masked
    assert (
        record_review(ch, name, TWIN, "acknowledged", "e1", "p_0123456789abcdef01234567").note
        == "{pseudonym}"
    )


def test_a_user_without_a_login_name_is_asked_who_reviews(ch, shown, cli, monkeypatch) -> None:  # noqa: F811
    """A container's numeric user with no passwd entry: getpass.getuser raises KeyError on Python
    3.11 (OSError from 3.13), which was a traceback."""
    import getpass

    name, _ = shown
    for env in ("LIFEMON_ANALYST", "USER", "LOGNAME", "LNAME", "USERNAME"):
        monkeypatch.delenv(env, raising=False)
    monkeypatch.setattr("os.getuid", lambda: 99999)
    with pytest.raises((KeyError, OSError)):
        getpass.getuser()  # the case itself, whatever this Python raises
    status, out, err = cli("ack", BULK)
    assert status == 2 and out == [] and "who reviews? give --by or set LIFEMON_ANALYST" in err
    assert ch.query(f"SELECT count() FROM {name}.{TABLE}").result_rows == [(0,)]
    assert cli("ack", BULK, "--by", "e900001")[0] == 0


def test_an_id_pasted_in_upper_case_is_the_same_alert(ch, shown, cli) -> None:  # noqa: F811
    name, _ = shown
    status, out, _ = cli("ack", BULK[:12].upper())
    assert status == 0 and out[0].startswith(f"acknowledged {BULK[:12]} by e900001 ")
    assert cli("resolve", BULK.upper(), "--as", "resolved")[0] == 0
    assert ch.query(f"SELECT alert_id, state FROM {name}.{TABLE} ORDER BY at").result_rows == [
        (BULK, "acknowledged"),
        (BULK, "resolved"),
    ]


def test_a_review_by_the_login_name_says_so(cli, monkeypatch) -> None:
    """A new user's review was signed `by root` with nothing to say the login name stood in."""
    monkeypatch.delenv("LIFEMON_ANALYST")
    monkeypatch.setattr("getpass.getuser", lambda: "root")
    status, out, _ = cli("ack", TWIN)
    assert status == 0 and " by root (your login name: --by or LIFEMON_ANALYST names you) at " in out[0]
    status, out, _ = cli("ack", TWIN, "--by", "e900002")
    assert status == 0 and " by e900002 at " in out[0]


def test_refusals_write_nothing(ch, shown, cli, monkeypatch) -> None:  # noqa: F811
    name, _ = shown
    status, out, err = cli("ack", "cc91f2")  # starts both ids: never guessed
    assert status == 2 and out == [] and f"cc91f2 starts 2 alert ids ({BULK}, {TWIN})" in err
    status, _, err = cli("resolve", BULK, "--as", "false_positive")
    assert status == 2 and "a false positive needs --note" in err
    assert cli("--severity", "high", "ack", BULK)[0] == 2  # the list's filters beside an id
    monkeypatch.delenv("LIFEMON_ANALYST")
    monkeypatch.setattr("getpass.getuser", lambda: "")
    status, _, err = cli("ack", BULK)
    assert status == 2 and "who reviews? give --by or set LIFEMON_ANALYST" in err
    with pytest.raises(SystemExit) as usage:
        cli("resolve", BULK)  # a verdict is never assumed
    assert usage.value.code == 2
    assert ch.query(f"SELECT count() FROM {name}.{TABLE}").result_rows == [(0,)]


def test_a_database_from_before_reviews_lists_every_alert_unreviewed_and_ack_creates_the_table(
    ch,
    shown,  # noqa: F811
    cli,
) -> None:
    name, _ = shown
    ch.command(f"DROP TABLE {name}.{TABLE}")
    assert {r["review"] for r in query_alerts(ch, name).rows} == {"unreviewed"}
    assert listed(cli, "--review", "acknowledged") == {}
    assert query_alert(ch, name, BULK).reviews == []
    assert cli("ack", BULK)[0] == 0
    assert [r["alert_id"] for r in query_alerts(ch, name, review="acknowledged").rows] == [BULK]


def test_the_newest_review_wins_whatever_order_the_rows_come_in(ch) -> None:
    from streams.clickhouse import apply_ddl

    name = f"ar_{uuid.uuid4().hex[:8]}"
    apply_ddl(ch, name)
    ClickHouseTableSink(ch, f"{name}.alerts", ALERT_COLUMNS, alert_row, "alerts").write(
        [alert("r1", "bulk_query", "high", "e1", 1)]
    )
    at = lambda h: datetime(2026, 1, 2, h, tzinfo=UTC)  # noqa: E731
    record_review(ch, name, "r1", "resolved", "e900002", at=at(12))  # inserted first, newest
    record_review(ch, name, "r1", "acknowledged", "e900001", at=at(9))
    assert [r["review"] for r in query_alerts(ch, name).rows] == ["resolved"]
    assert [r["state"] for r in query_alert(ch, name, "r1").reviews] == ["acknowledged", "resolved"]


def test_reviews_stored_before_the_account_column_are_read_and_the_column_is_added(ch, shown, cli) -> None:  # noqa: F811
    """A database from before `account`: `alerts show` reads its reviews (no account, `—`) and
    `ack` still stores one; the next start's DDL adds the column, and the reviews after it name
    the account that stored them."""
    from streams.clickhouse import apply_ddl
    from streams.reviews import query_reviews

    name, _ = shown
    ch.command(f"ALTER TABLE {name}.{TABLE} DROP COLUMN IF EXISTS account")
    assert cli("ack", BULK, "--note", "before")[0] == 0
    status, out, _ = cli("show", BULK)
    assert status == 0 and "acknowledged by e900001 at 20" in "\n".join(out)
    assert [r["account"] for r in query_reviews(ch, name, BULK)] == [""]
    apply_ddl(ch, name)  # `lifemon run`'s start
    assert cli("resolve", BULK, "--as", "resolved")[0] == 0
    assert [r["account"] for r in query_reviews(ch, name, BULK)] == ["", "default"]
