"""Which rows a statement's WHERE bounds, and the customers it names: its outer condition (not a
subquery's, `_top_where`), read term by term through its ORs and parentheses (`_bounded`), the
customer key compared with values (`_key_compared`), and the values themselves (`_subjects`: literals,
bound parameters, placeholders whose values the log does not carry)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from policy.sources import TableEntry
from streams.sources.sql_literals import plain

_WORD = re.compile(r'"?([^\W\d][\w$]*)"?(?:\s*\.\s*"?([^\W\d][\w$]*)"?)?')  # any script's letters

# a whole literal: quoted, or a number (a bigint customer key: `cust_no = 10042`, never the start
# of `10042.5` or `1e5`); or a bound parameter. MariaDB also quotes strings with `"` and escapes a
# quote with a backslash (a probe's `customer_id = "K000060"` named no customer)
_VALUE = r"'(?:[^']|'')*'(?!')|\$\d+|\d+(?![\w.])"
_MARIADB_VALUE = r"'(?:[^'\\]|\\.|'')*'(?!')|\"(?:[^\"\\]|\\.|\"\")*\"(?!\")|\d+(?![\w.])|\?"
_LITERALS = {
    "mariadb": re.compile(r"'((?:[^'\\]|\\.|'')*)'|\"((?:[^\"\\]|\\.|\"\")*)\"|(\?)|(\d+)"),
}
_LITERAL = re.compile(r"'((?:[^']|'')*)'|()\$(\d+)|(\d+)")
_BACKSLASHED = re.compile(r"\\(.)", re.S)
# what a WHERE condition is read by: its parentheses, and OR / AND (MariaDB's || and && too, and
# XOR), outside quoted identifiers; and where the condition ends
_LOGIC = {
    "pgaudit": re.compile(r'"[^"]*"|[()]|\b(?:OR|AND|XOR)\b', re.I),
    "mariadb": re.compile(r"`[^`]*`|[()]|\b(?:OR|AND|XOR)\b|\|\||&&", re.I),
}
_CONDITION = re.compile(
    r"[();]|\b(?:WHERE|GROUP|HAVING|ORDER|LIMIT|WINDOW|OFFSET|FETCH|FOR|LOCK|RETURNING|UNION|EXCEPT|INTERSECT)\b",
    re.I,
)
_QUERY_JOINS = frozenset({"UNION", "EXCEPT", "INTERSECT"})
_AND = frozenset({"AND", "&&"})
# a value as the code holds it (strings blanked): a string, a bound parameter, a number
_CODE_VALUE = r"(?:''|\"\"|\$\d+|\?|\d+(?:\.\d+)?)(?:\s*+::\s*+\w+)?"  # PostgreSQL's `'C1'::text` too


def _top_where(code: str) -> str | None:
    """The statement's own WHERE condition (not a subquery's): from its WHERE at the outer level to
    what ends it there (GROUP, ORDER, LIMIT ...); "" with none; None when the statement joins
    another query to it (UNION, EXCEPT, INTERSECT), which its WHERE does not bound."""
    depth, where = 0, None
    for m in _CONDITION.finditer(code):
        token = m.group().upper()
        if token == "(":
            depth += 1
        elif token == ")":
            depth = max(depth - 1, 0)
        elif depth:
            continue
        elif token in _QUERY_JOINS:
            return None
        elif token == "WHERE" and where is None:
            where = m.end()
        elif where is not None and token != "WHERE":
            return code[where : m.start()]
    return "" if where is None else code[where:]


def _names_its_customers(code: str, key: str, dialect: str) -> bool:
    """Whether the rows a statement reads are the customers it names: no WHERE (the customers a join
    names elsewhere are taken as they are), a WHERE each OR alternative of which compares the key
    with values, or a UNION of queries each so bounded (a probe's `... WHERE customer_id = 'C1'
    UNION ALL ... WHERE customer_id = 'C2'` named neither); EXCEPT and INTERSECT are not read."""
    compared = _key_compared(key)
    where = _top_where(code)
    if where is not None:
        return not where.strip() or _bounded(plain(where, dialect), compared, dialect)
    branches = _united(code)
    return bool(branches) and all(
        (w := _top_where(b)) and _bounded(plain(w, dialect), compared, dialect) for b in branches
    )


def _united(code: str) -> list[str]:
    """The queries a top-level UNION joins, or [] when another set operation joins them."""
    depth, start, found = 0, 0, []
    for m in _CONDITION.finditer(code):
        token = m.group().upper()
        if token in "()":
            depth = max(depth + (1 if token == "(" else -1), 0)
        elif depth == 0 and token in _QUERY_JOINS:
            if token != "UNION":
                return []
            found.append(code[start : m.start()])
            start = m.end()
    return [*found, code[start:]]


def _narrowing(entry: TableEntry) -> Callable[[str], bool]:
    """A term that narrows a table's rows: one comparing a catalogued column (`balance > 0`), or the
    customer key compared with values (`_key_compared`); any other use of the key (`customer_id
    LIKE '%'`, `NOT customer_id = 'C1'`, `customer_id <> 'C1'`) narrows nothing."""
    columns = {c.lower() for c in entry.columns}
    key = (entry.customer_key or "").lower()
    compared = _key_compared(key) if key else (lambda term: False)

    def narrows(term: str) -> bool:
        words = {w.lower() for pair in _WORD.findall(term) for w in pair if w}
        return compared(term) if key in words else bool(columns & words)

    return narrows


def _key_compared(key: str) -> Callable[[str], bool]:
    """A term that is the customer key compared with values alone: `customer_id = 'C1'`, `IN ('C1',
    $2)`. `customer_id = customer_id`, `= ANY(SELECT ...)`, `IN (SELECT ...)`, or a comparison
    followed by more (`= 'C1' IS NOT TRUE`, MariaDB's `= 'K1' = 0`) bound nothing."""
    values = rf"{_CODE_VALUE}(?:\s*+,\s*+{_CODE_VALUE})*+"
    # a list cut short (server_audit's query limit) ends the statement: the customers it holds count
    listed = (
        rf"IN\s*+\(\s*+{values}\s*+(?:\)|,[^()]*+)?|=\s*+ANY\s*+\(\s*+ARRAY\s*+\[\s*+{values}\s*+\]\s*+\)"
    )
    # `db.table.column` (MariaDB) and `schema.table.column` too
    qualified = r"(?:[\"`]?\w+[\"`]?\s*+\.\s*+){0,2}"
    whole = re.compile(
        rf"\s*+{qualified}[\"`]?{re.escape(key)}[\"`]?\s*+(?:(?:<=>|=)\s*+{_CODE_VALUE}|{listed})\s*+", re.I
    )
    return lambda term: whole.fullmatch(term) is not None


def _bounded(condition: str, narrows: Callable[[str], bool], dialect: str) -> bool:
    """Each of the condition's OR (or XOR) alternatives holds, among its ANDed terms, one that
    `narrows`, or a parenthesized condition so bounded: `customer_id = 'C1' OR 1=1` is not bounded
    by the customer it names; `customer_id = 'C1' AND (a OR b)` and `customer_id = 'C1' OR
    customer_id = 'C2'` are. One pass, a stack for the parentheses (nested thousands deep, a
    recursion failed and each level read the rest again)."""
    logic = _LOGIC.get(dialect, _LOGIC["pgaudit"])
    # per open group: [alternatives all bounded, current alternative bounded, term start, the
    # bound of a group that closed just before (None: no group ends the term so far), opaque depth]
    frames: list[list[Any]] = [[True, False, 0, None, 0]]

    def term_ends(frame: list[Any], end: int) -> None:
        text = condition[frame[2] : end]
        closed = frame[3]
        ok = (
            closed
            if closed is not None
            and not text[text.rfind(")") + 1 :].strip()
            and text.lstrip().startswith("(")
            else narrows(text)
        )
        frame[1] = frame[1] or bool(ok)
        frame[3] = None

    for m in logic.finditer(condition):
        token, frame = m.group().upper(), frames[-1]
        if token[0] in '"`':
            continue
        if frame[4]:  # inside a call's or a list's parentheses: part of the term
            frame[4] += token == "("
            frame[4] -= token == ")"
            continue
        if token == "(":
            if condition[frame[2] : m.start()].strip():
                frame[4] = 1  # `IN (`, `f(`: the term's own parentheses
            else:
                frames.append([True, False, m.end(), None, 0])  # a group: a condition of its own
        elif token == ")":
            if len(frames) == 1:
                continue
            term_ends(frame, m.start())
            frames.pop()
            frames[-1][3] = frame[0] and frame[1]
        elif token in _AND:
            term_ends(frame, m.start())
            frame[2] = m.end()
        else:  # OR, ||, XOR
            term_ends(frame, m.start())
            frame[0], frame[1], frame[2] = frame[0] and frame[1], False, m.end()
    while len(frames) > 1:  # a group left open: the statement cut short
        frame = frames.pop()
        term_ends(frame, len(condition))
        frames[-1][3] = frame[0] and frame[1]
    frame = frames[0]
    term_ends(frame, len(condition))
    return bool(frame[0] and frame[1])


def _subjects(
    entry: TableEntry, text: str, parameters: list[str], source: str = "pgaudit"
) -> tuple[list[str], int]:
    """Customer ids the statement compares its customer-key column with: `= value` (not the start
    of an expression: `'C0000' || $1`) or `IN (values)`, each a literal (quoted, or a number: the
    key may be a bigint) or a bound parameter. A subquery, another column or an expression names no
    customer: its literals are other columns'. A list cut short (server_audit_query_log_limit
    truncates statements) names the customers it holds, not the one cut in two. With them, how many
    placeholders the key is compared with whose values the log does not carry (pgaudit's `$1` with
    log_parameter off, `<not logged>`; MariaDB's `?` of a server-side prepared statement)."""
    if not entry.customer_key:
        return [], 0
    key = re.escape(entry.customer_key)
    value = _MARIADB_VALUE if source == "mariadb" else _VALUE
    literals = _LITERALS.get(source, _LITERAL)
    out: list[str] = []
    unlogged = 0
    for m in re.finditer(
        rf"\b{key}[\"`]?\s*(?:(?:<=>|=)\s*({value})(?!\s*(?:\|\||[-+*/%^]))|IN\s*\(\s*((?:{value})(?:\s*,\s*(?:{value}))*)\s*(?:\)|,\s*(?:'[^']*|\d*)$)"
        rf"|=\s*ANY\s*\(\s*ARRAY\s*\[\s*((?:{value})(?:\s*,\s*(?:{value}))*)\s*\]\s*\))",
        text,
        re.I,
    ):
        for single, double, param, number in literals.findall(m.group(1) or m.group(2) or m.group(3)):
            if single or double or number:
                quoted = single.replace("''", "'") or double.replace('""', '"')
                out.append(number or (_BACKSLASHED.sub(r"\1", quoted) if source == "mariadb" else quoted))
            elif param == "?" or (param and len(param) <= 6 and int(param) > len(parameters)):
                unlogged += 1
            elif param and len(param) <= 6 and parameters[int(param) - 1]:
                out.append(parameters[int(param) - 1])  # not $9999...9, nor a NULL bound
    return out, unlogged
