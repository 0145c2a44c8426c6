"""The transfer ledger (clickhouse/006_transfer_ledger.sql): to whom the bank provided personal
information, under which legal basis, which classes, and how many customers, records and transfers.

An examiner asks it per period (PIPL art. 55-56; seed 002 §六.2(2): the scale, purpose and recipient
of every share recorded). The rollups count transfer events; they cannot say how many distinct
customers went to one recipient. Here each transfer is one row keyed by its event id, so a replay or a
restart rewrites the same rows, whatever its batches (a row per batch would change with the batch
boundaries after a crash, and count twice). Its customers' pseudonyms are emptied at the table's first
merge; what stays is their `uniqExact` state, which the table computes on insert and keeps for
policy/storage.yaml's pseudonym days, like every pseudonym lifemon keeps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from html import escape
from typing import Any, NamedTuple

from policy.model import Policy, Recipients
from schemas.models import RecipientType
from streams.clickhouse import has_column

LEDGER = "transfer_ledger"
LEDGER_COLUMNS = (
    "event_id",
    "ts",
    "recipient_id",
    "recipient_name",
    "direction",
    "legal_basis",
    "jr_class",
    "records",
    "subject_count",
    "named",
    "subjects",
)
UNDECLARED = "undeclared_recipient"  # the rollups' label: an undeclared id is free text, kept out
UNDECLARED_NAME = "未声明的接收方 / undeclared recipients (transfer_policy alerts name them)"
# PIPL art. 38-39: provision abroad is its own kind, whatever the recipient's type
CROSS_BORDER = "cross_border"
LABELS_HELD = 10_000


class TransferLedger:
    """Transfers seen since the last `drain`, as `transfer_ledger` rows. `cls` gives a transfer's
    JR/T 0171 class from its categories (the rollups' label, combinations included)."""

    def __init__(self, policy: Policy):
        self.recipients = policy.recipients
        self.rows: list[tuple] = []
        # (recipient id, logged type, country, basis) -> its labels: a few dozen keys, looked up per
        # transfer (a transfer cost 8.6 µs without it, 3.2-3.9 µs with it: transfers are ~2% of a day)
        self._labels: dict[tuple, tuple[str, str, str]] = {}

    def add(self, events: Iterable[Any], cls: Callable[[tuple[str, ...]], str]) -> None:
        labels = self._labels
        for ev in events:
            key = (ev.recipient_id, ev.recipient_type, ev.recipient_country, ev.legal_basis)
            found = labels.get(key)
            if found is None:
                if len(labels) >= LABELS_HELD:  # free-text ids of undeclared recipients: bounded
                    labels.clear()
                found = labels[key] = self._recipient(ev)
            rid, name, direction = found
            ids = ev.subject_ids
            self.rows.append(
                (
                    ev.event_id,
                    ev.ts,
                    rid,
                    name,
                    direction,
                    ev.legal_basis.value,
                    cls(tuple(ev.categories)),
                    ev.record_count,
                    ev.subject_count,
                    len(ids),
                    ids,  # pseudonyms already (Engine.ingest): the table keeps their uniqExact state
                )
            )

    def _recipient(self, ev: Any) -> tuple[str, str, str]:
        """(recipient as a known id, its declared name, direction). Only ids the policy declares reach
        the table: a declared recipient, else the declared class of authorities it belongs to (a
        court), else `undeclared_recipient`. The direction is the declared type (`kind_of`: a log's
        `internal` or `regulator` lifts nothing), or cross_border when it goes to another country."""
        book: Recipients = self.recipients
        declared = book.recipients.get(ev.recipient_id)
        kind = book.kind_of(ev.recipient_id, ev.recipient_type)
        country = declared.country if declared is not None else ev.recipient_country
        abroad = kind is RecipientType.overseas or (country is not None and country != book.home_country)
        direction = CROSS_BORDER if abroad else kind.value
        if declared is not None:
            return ev.recipient_id, f"{declared.name_zh} / {declared.name_en}", direction
        authority = book.authority_of(ev.recipient_id, ev.recipient_type, ev.legal_basis)
        if authority is not None:
            found = book.authorities[authority]
            # a foreign court's or regulator's request is provision abroad all the same (PIPL art. 41)
            return authority, f"{found.name_zh} / {found.name_en}", CROSS_BORDER if abroad else "regulator"
        return UNDECLARED, UNDECLARED_NAME, direction

    def drain(self) -> list[tuple]:
        out, self.rows = self.rows, []
        return out


# What the report and the lifecycle dashboard's panel read: provision to others, the bank's own
# systems left out (seed 002 §六: 共享、转让、委托处理、公开披露、境外提供). FINAL: a transfer written twice
# (a crash between the write and the offset commit) is one row. `{where}` bounds `ts` half-open. A
# recipient renamed in the policy reads by its newest transfer's name. `{bank}`: the customers the
# bank's customers stream names (BANK_SQL; 0: not known), the most the customers of transfers naming
# none can be, however many transfers counted them: their sum is `unnamed_sum`, `unnamed_at_most`
# that capped, unless one transfer alone counted more than the bank has (a sender's count to check).
PROVIDED_SQL = """WITH {bank} AS bank
SELECT recipient_id, argMax(recipient_name, ts) AS recipient, direction, legal_basis, jr_class,
    uniqExactMerge(customers) AS customers, maxIf(subject_count, named = 0) AS unnamed_at_least,
    if(bank > 0 AND unnamed_at_least <= bank, least(unnamed_sum, bank), unnamed_sum) AS unnamed_at_most,
    countIf(named = 0 AND subject_count > 0) AS unnamed_transfers,
    sum(records) AS records, count() AS transfers, countIf(named > 0 AND finalizeAggregation(transfer_ledger.customers) = 0) > 0 AS expired,
    sumIf(subject_count, named = 0) AS unnamed_sum
FROM {db}.transfer_ledger FINAL
WHERE direction != 'internal'{where}
GROUP BY recipient_id, direction, legal_basis, jr_class
ORDER BY customers + unnamed_at_least DESC, records DESC, recipient_id, legal_basis, jr_class"""
# the most customers a monitor's customers stream named at any checkpoint still kept (90 days)
BANK_SQL = "(SELECT max(customers) FROM {db}.pipeline_stats)"


@dataclass(frozen=True)
class Provided:
    """One line of the section: a recipient, direction, legal basis and class in the period."""

    recipient_id: str
    recipient: str
    direction: str
    legal_basis: str
    jr_class: str
    customers: int  # distinct named customers (their pseudonyms' uniqExact)
    # customers of transfers naming none, as their senders counted them: no one can de-duplicate
    # them (a daily report to the AML centre counts the same customers every day), so the distinct
    # number lies between the largest transfer's count and the counts added up
    unnamed_at_least: int
    unnamed_at_most: int  # their sum, at most the bank's customers (PROVIDED_SQL)
    unnamed_transfers: int
    records: int
    transfers: int
    # some of its transfers' customers outlived policy/storage.yaml's pseudonym days (a row that named
    # some holds an empty state): `customers` counts the rest only (none left: every one expired)
    expired: bool
    unnamed_sum: int  # the counts of the transfers naming none, added up


class Ledger(NamedTuple):
    """The section's lines, the first transfer the ledger holds (ms; None: none yet), and the
    customers the bank's customers reference stream names (0: not known)."""

    lines: list[Provided]
    since: int | None
    customers: int = 0


def provided(client: Any, db: str, where: str = "", parameters: dict[str, Any] | None = None) -> Ledger:
    """The ledger's lines, `where` an ` AND ...` on `ts` (Period.where), when it began, and the
    most customers a monitor's customers stream named at any checkpoint still kept (pipeline_stats,
    90 days): no count of the bank's customers can be more."""
    bank = BANK_SQL if has_column(client, db, "pipeline_stats", "customers") else "0"
    sql = PROVIDED_SQL.replace("{bank}", bank).replace("{db}", db).replace("{where}", where)
    lines = [Provided(*row) for row in client.query(sql, parameters=parameters or {}).result_rows]
    (first,) = client.query(
        f"SELECT if(count() = 0, NULL, toUnixTimestamp64Milli(min(ts))) FROM {db}.transfer_ledger"
    ).result_rows[0]
    (known,) = client.query(f"SELECT {bank.replace('{db}', db)}").result_rows[0]
    return Ledger(lines, first, known)


DIRECTION_NAMES = {
    "processor": "委托处理 / entrusted processing",
    "third_party": "共享、转让 / provided to a third party",
    CROSS_BORDER: "境外提供 / cross-border",
    "regulator": "依法报送 / reported by law",
    "public": "公开披露 / public disclosure",
}


def render(ledger: Ledger | None, since: int | None, until: int | None, zone: tzinfo) -> str:
    """The report's section "Personal information provided to others / 对外提供个人金融信息" for the
    period [since, until) (ms; None: open); nothing where the ledger has no table (None) or began
    after the period, which it cannot speak for: a month before the upgrade is not "none"."""
    if ledger is None or (until is not None and (ledger.since is None or ledger.since >= until)):
        return ""
    lines = ledger.lines
    partly = ledger.since is not None and (since is None or since < ledger.since)
    head = (
        "<h2>Personal information provided to others / 对外提供个人金融信息</h2>"
        "<p class=sub>per recipient, legal basis and JR/T 0171 class in the period (PIPL art. 55-56, "
        "seed 002 §六.2(2)); customers named are distinct pseudonyms; the customers of transfers naming "
        "none cannot be de-duplicated: one transfer's are as its sender counted them, several transfers' "
        "lie between the largest one's count and their sum (a daily report names the same customers each "
        "day) / 未列名客户无法去重：多次传输的人数介于单次最大值与各次之和之间; a basis claimed for a recipient "
        "the policy does not approve is marked claimed / 未经批准的接收方，其合法性基础仅为发送方声称; the "
        "bank's own systems are left out"
        + (
            f"; recorded from {_day(ledger.since, zone)} only, when the ledger began / 自{_day(ledger.since, zone)}起记录"
            if partly and ledger.since is not None
            else ""
        )
        + "</p>"
    )
    if not lines:
        return head + "<p>none in the period / 期内无对外提供</p>"
    rows = "".join(
        f"<tr><td>{escape(p.recipient)}<br><small><code>{escape(p.recipient_id)}</code></small></td>"
        f"<td>{escape(DIRECTION_NAMES.get(p.direction, p.direction))}</td><td>{_basis(p)}</td>"
        f"<td{' class=c3' if p.jr_class == 'C3' else ''}>{escape(p.jr_class)}</td>"
        f"<td class=n>{_customers(p)}</td>"
        f"<td class=n>{_unnamed(p, ledger.customers)}</td><td class=n>{p.records:,}</td><td class=n>{p.transfers:,}</td></tr>"
        for p in lines
    )
    return (
        f"{head}<table><tr><th>recipient / 接收方</th><th>direction / 方式</th><th>legal basis / 合法性基础</th>"
        "<th>class / 类别</th><th class=n>customers named / 列名客户（去重）</th>"
        "<th class=n>customers not named, not de-duplicated / 未列名客户（无法去重）</th>"
        f"<th class=n>records / 记录数</th><th class=n>transfers / 传输次数</th></tr>{rows}</table>"
    )


def _unnamed(p: Provided, bank: int = 0) -> str:
    """The customers of the transfers that named none: one transfer's count as sent, several as the
    range the distinct number lies in (the counts added up were 865 046 customers to the AML centre
    in a day, of a bank of 10 000): at most their sum, and at most the `bank`'s customers, which the
    customers reference stream names (0: not known, said; a new user read "4,986 – 865,046"). The
    figures are the query's (PROVIDED_SQL, the dashboard's panel too); this says which bound holds."""
    if p.unnamed_transfers <= 1 or p.unnamed_at_least == p.unnamed_sum:
        return f"{p.unnamed_at_most:,}"
    most = p.unnamed_at_most
    if not bank:
        bound = (
            "at most their sum, which no customers stream bounds: lifemon has read none, so it does not "
            "know how many customers the bank has / 至多为各次之和（未读取客户参考流，本行客户总数未知）"
        )
    elif p.unnamed_at_least > bank:  # no bound holds a count above it: the sender's to check
        bound = (
            f"the largest alone is more than the bank's {bank:,} customers (its customers stream): a sender's "
            f"count to check / 单次计数已超过本行客户数 {bank:,}，请核对发送方计数"
        )
    elif p.unnamed_sum > most:
        bound = (
            f"at most the bank's {bank:,} customers (its customers stream), not their sum "
            f"{p.unnamed_sum:,} / 至多为本行客户数 {bank:,}（客户参考流）"
        )
    else:
        bound = "at most their sum / 至多为各次之和"
    span = f"{p.unnamed_at_least:,} – {most:,}" if most > p.unnamed_at_least else f"{most:,}"
    return (
        f"{span}<br><small>{p.unnamed_transfers:,} transfers: "
        f"at least the largest / {p.unnamed_transfers:,} 次传输：至少为单次最大值; {bound}</small>"
    )


def _basis(p: Provided) -> str:
    """The legal basis, marked as only claimed where the recipient is none the policy approves
    (an undeclared broker's `contract` is no contract the bank holds)."""
    if p.recipient_id != UNDECLARED:
        return escape(p.legal_basis)
    return (
        f"{escape(p.legal_basis)}<br><small>claimed by the sender, recipient not approved / "
        "发送方声称，接收方未经批准</small>"
    )


def _customers(p: Provided) -> str:
    if not p.expired:
        return f"{p.customers:,}"
    if not p.customers:
        return "expired / 已过保存期"
    return f"{p.customers:,} (partly expired / 部分已过保存期)"


def _day(ms: int, zone: tzinfo) -> str:
    return datetime.fromtimestamp(ms / 1000, zone).strftime("%Y-%m-%d")
