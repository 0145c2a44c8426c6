"""The report's "Data taken out by org and class": who exported, downloaded or printed how much C3
and C2 data, against what they only read; the overview dashboard's panel counts the same."""

from __future__ import annotations

from html import escape
from typing import Any, NamedTuple

from schemas.models import READS, Action
from streams.clickhouse import has_column
from streams.report.period import Period

# The take-outs as the detectors tell them (schemas.models TAKES_OUT, tests/test_report.py holds the
# two together), each a column of the section and of the overview dashboard's panel; a read is a
# view or a query (READS)
TAKEN_OUT = {
    Action.export: "exported / 导出",
    Action.download: "downloaded / 下载",
    Action.print: "printed / 打印",
}


class TakeOuts(NamedTuple):
    """One org's access events of one JR/T 0171 class in the period, by what they did with the data:
    each take-out action, read (view or query), and unknown (counted before the rollups kept the
    action). The overview dashboard's panel "Data taken out by org and class" counts the same."""

    org: str
    jr_class: str
    taken_out: tuple[int, ...]  # in TAKEN_OUT's order
    read: int
    unknown: int


def take_outs(client: Any, db: str, period: Period) -> list[TakeOuts]:
    """Per org and class, the access events that took data out against those that only read it
    (probe_v3 H4); the orgs that took out the most C3 data first, then the most C2. A table no `lifemon run`
    has upgraded yet has no action column: all of its events are unknown."""
    action = "action" if has_column(client, db, "event_rollups", "action") else "''"
    reads = ", ".join(f"'{a.value}'" for a in Action if a in READS)
    columns = "".join(f"sumIf(events, {action} = '{a.value}'), " for a in TAKEN_OUT)
    in_minutes, params = period.where("minute")
    rows = client.query(
        f"SELECT org, jr_class, [{columns.rstrip(', ')}] AS taken_out, "
        f"sumIf(events, {action} IN ({reads})) AS read, sumIf(events, {action} = '') AS unknown "
        f"FROM {db}.event_rollups FINAL WHERE stream = 'access'{in_minutes} GROUP BY org, jr_class "
        "HAVING arraySum(taken_out) + read + unknown > 0 "
        "ORDER BY sum(if(jr_class = 'C3', arraySum(taken_out), 0)) OVER (PARTITION BY org) DESC, "
        "sum(if(jr_class = 'C2', arraySum(taken_out), 0)) OVER (PARTITION BY org) DESC, org, jr_class DESC",
        parameters=params,
    ).result_rows
    return [TakeOuts(org, cls, tuple(out), read, unknown) for org, cls, out, read, unknown in rows]


def take_outs_table(rows: list[TakeOuts], counted: bool) -> str:
    """Who took how much C3 and C2 data out of the bank's systems, against what they only read."""
    if not counted:
        return ""
    head = "".join(f"<th class=n>{escape(label)}</th>" for label in TAKEN_OUT.values())
    body = "".join(
        f"<tr><td>{escape(r.org)}</td><td{' class=c3' if r.jr_class == 'C3' and any(r.taken_out) else ''}>"
        f"{escape(r.jr_class)}</td>{''.join(f'<td class=n>{n:,}</td>' for n in r.taken_out)}"
        f"<td class=n>{r.read:,}</td><td class=n>{r.unknown:,}</td></tr>"
        for r in rows
    )
    unknown = (
        "<p class=sub>unknown: access events counted before lifemon kept their action "
        "(docs/operations.md, the forty-third stop) / 未知：升级前计数、未记录操作类型的访问事件</p>"
        if any(r.unknown for r in rows)
        else ""
    )
    return (
        "<h2>Data taken out by org and class / 按机构和类别的数据导出</h2>"
        "<p class=sub>access events by the org of who acted and the highest JR/T 0171 class of the fields "
        "they touched: exports, downloads and prints take data out of the bank's systems, views and "
        "queries only read it; the orgs that took out the most C3 data first, then the most C2 / 按操作人"
        "所属机构和所涉字段的最高类别统计访问事件：导出、下载、打印为数据取出，查看、查询为只读；C3、C2 取出最多的机构在前</p>"
        f"{unknown}<table><tr><th>org / 机构</th><th>class / 类别</th>{head}<th class=n>read / 查看</th>"
        f"<th class=n>unknown / 未知</th></tr>{body or f'<tr><td colspan={len(TAKEN_OUT) + 4}>none / 无</td></tr>'}</table>"
    )
