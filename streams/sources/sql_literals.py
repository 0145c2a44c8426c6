"""The value a statement compares, however its client wrote it: a probe of real servers
(probe_q5 #7, #8) found one-customer look-ups that named no customer because the literal came
wrapped (`E'C1'`, `_utf8mb4'K1'`, `N'K1'`, `BINARY 'K1'`, `'K1' COLLATE utf8mb4_bin`,
`CAST('C1' AS text)`, `CONVERT('K1' USING utf8mb4)`, `$$C1$$`), inside MariaDB's `NAME_CONST('p_cust',
...)` (how a stored procedure's variable is logged), or before the column (`'C1' = customer_id`).

`plain(text, dialect)` rewrites each such form as the plain literal `customer_id = 'C1'`, so the
one reading of `= value` / `IN (values)` (sql_where._subjects, _key_compared) serves them all. It
works on a statement's text (comments blanked, literals kept) and on its code (strings blanked
to `''`) alike. A cast changes no customer id's characters; a collation changes only how it
compares."""

from __future__ import annotations

import re

# a literal as each dialect writes it (in the code, a string is `''`), a number, a placeholder; at
# most 128 characters, a customer id's length many times over: a pattern that may start inside a
# string must not read on to its end from each place (`AND '' = ` 30 000 times took 74 s)
_LITERAL = {
    "pgaudit": r"(?:'(?:[^']|''){0,128}+'(?!')|\d{1,64}+(?![\w.])|\$\d{1,6}+)",
    "mariadb": r"""(?:'(?:[^'\\]|\\.|''){0,128}+'(?!')|"(?:[^"\\]|\\.|""){0,128}+"(?!")|\d{1,64}+(?![\w.])|\?)""",
}
_NAME = r"""(?:"[^"]*+"|`[^`]*+`|[^\W\d][\w$]*+)"""
# PostgreSQL: a dollar-quoted string and an E'' string (backslash escapes) say a plain literal
_DOLLAR = re.compile(r"(?<![\w$])\$((?:[A-Za-z_]\w{0,62}+)?)\$(.{0,128}?)\$\1\$", re.S)
_ESCAPED = re.compile(r"(?<![\w$])[Ee]'((?:[^'\\]|\\.|''){0,128}+)'")
# MariaDB: a character set introducer, the national prefix, BINARY: how the string is read, not what
_INTRODUCER = re.compile(r"""(?<![\w$.`'"])(?:_[A-Za-z0-9]++|[Nn]|BINARY\s)\s*+(?=['"])""", re.I)


def _wrapping(literal: str) -> list[tuple[re.Pattern[str], str]]:
    """Each form's pattern and how it is written plainly, by the word `_TRIGGERS` finds it by."""
    value = f"({literal})"
    return [
        (re.compile(rf"{value}\s*+COLLATE\s++(?:{_NAME}|'[^']*+')", re.I), r"\1"),
        (re.compile(rf"\bCAST\s*+\(\s*+{value}\s++AS\s++[\w ]+?(?:\(\s*+\d++(?:\s*+,\s*+\d++)?\s*+\))?\s*+\)", re.I), r"\1"),
        (re.compile(rf"\bCONVERT\s*+\(\s*+{value}\s*+(?:USING\s++\w++|,\s*+[\w ]+?(?:\(\s*+\d++\s*+\))?)\s*+\)", re.I), r"\1"),
        # MariaDB logs a routine's variable as NAME_CONST('var', value) (sp_head::make_name_const)
        (re.compile(rf"\bNAME_CONST\s*+\(\s*+{_LITERAL['mariadb']}\s*+,\s*+{value}\s*+\)", re.I), r"\1"),
        # `'C1' = customer_id` is `customer_id = 'C1'`: only where a term starts (after WHERE, AND,
        # OR, ON, a parenthesis, a condition's start), and not `'a' || 'C1' = customer_id`, whose value is 'aC1'
        (
            re.compile(
                rf"((?:^\s*+|\b(?:WHERE|AND|OR|ON|WHEN)\s++|\(\s*+|&&\s*+)){value}\s*+(<=>|=)\s*+"
                rf"({_NAME}(?:\s*+\.\s*+{_NAME}){{0,3}})(?![\w$.(])(?!\s*+(?:\|\||[-+*/%^]|::|\())",
                re.I,
            ),
            r"\1\4 \3 \2",
        ),
    ]  # fmt: skip


_WRAPPING = {dialect: _wrapping(literal) for dialect, literal in _LITERAL.items()}
# what each rewrite needs to find in the text, in `_WRAPPING`'s order: most statements hold none, and
# a pattern run only when its word is there kept the decode's cost (every rewrite on every `$1`
# statement doubled it)
_TRIGGERS = [
    re.compile(r"\bCOLLATE\b", re.I),
    re.compile(r"\bCAST\b", re.I),
    re.compile(r"\bCONVERT\b", re.I),
    re.compile(r"\bNAME_CONST\b", re.I),
    re.compile(r"(?:'|\d|\?)\s*+(?:<=>|=)\s*+[^\W\d]"),
]
_DOLLAR_OPENS = re.compile(r"(?<![\w$])\$(?:[A-Za-z_]\w*+)?\$")
_ESCAPE_OPENS = re.compile(r"(?<![\w$])[Ee]'")
_ANY = re.compile("|".join(p.pattern for p in (*_TRIGGERS, _DOLLAR_OPENS, _ESCAPE_OPENS, _INTRODUCER)), re.I)


def _unescaped(m: re.Match[str]) -> str:
    """An E'' string's body as a plain literal: `\\'` is a quote, doubled as a plain one is."""
    return (
        "'"
        + re.sub(r"\\(.)", lambda e: "''" if e.group(1) == "'" else e.group(1), m.group(1), flags=re.S)
        + "'"
    )


def plain(text: str, dialect: str) -> str:
    """`text` with each wrapped literal written plainly and each reversed comparison turned round."""
    if not _ANY.search(text):
        return text
    if dialect == "pgaudit":
        if _DOLLAR_OPENS.search(text):
            text = _DOLLAR.sub(lambda m: "'" + m.group(2).replace("'", "''") + "'", text)
        if _ESCAPE_OPENS.search(text):
            text = _ESCAPED.sub(_unescaped, text)
    elif dialect == "mariadb":
        text = _INTRODUCER.sub("", text)
    for (pattern, written), trigger in zip(_WRAPPING.get(dialect, ()), _TRIGGERS, strict=False):
        if trigger.search(text):
            text = pattern.sub(written, text)
    return text


# PL/pgSQL runs a function's statement with its variables as parameters: pgaudit logs the text as
# written (`WHERE a.customer_id = p_cust`) and every variable of the function, unnamed, as the
# parameters (`"C000003,,,,"`: the argument, then its OUT columns and locals, NULL so far)
_PLACEHOLDER = re.compile(r"\$\d")
_NOT_VARIABLES = frozenset(
    {"null", "true", "false", "default", "any", "all", "some", "user", "current_user", "session_user"}
)


def routine_variable(
    code: str, text: str, key: str, parameters: list[str], columns: frozenset[str] = frozenset()
) -> tuple[str, str, bool | None]:
    """(code, text, read) with `key = variable` written `key = $n` where the variable can only be
    the one parameter that holds a value: read True; False where several hold one (which is the
    customer is unknown); None where the statement has placeholders of its own, no parameters, or
    compares the key with no bare name but `columns` (`customer_id = customer_id` is no variable)."""
    others = _NOT_VARIABLES | columns | {key.lower()}
    if not parameters or _PLACEHOLDER.search(code):
        return code, text, None
    compared = re.compile(rf"(\b{re.escape(key)}[\"]?\s*+=\s*+)([^\W\d][\w$]*+)(?![\w$.]|\s*+[.(])", re.I)
    if not any(m.group(2).lower() not in others for m in compared.finditer(code)):
        return code, text, None
    held = [i for i, value in enumerate(parameters) if value]
    if len(held) != 1:
        return code, text, False

    def bound(m: re.Match[str]) -> str:
        return m.group(0) if m.group(2).lower() in others else f"{m.group(1)}${held[0] + 1}"

    return compared.sub(bound, code), compared.sub(bound, text), True
