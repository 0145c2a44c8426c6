"""What an audited SQL statement holds, read in one linear pass: its code, with strings and
comments blanked (what names of tables and columns are read from), and its text with comments
only blanked (what the customers it compares are read from: literals kept, a query tag's
`customer_id = 'C7'` not).

A regex over the whole statement cannot tell a `--` inside a string from a comment, nor nest
PostgreSQL's comments; a review found a `'--'` in a select list hiding every column after it, and
a tag after `= $1` hiding the customer. So the statement is walked from one token that opens a
string, a comment or a quoted identifier to the next:
- PostgreSQL: `'...'` (`''` inside), `E'...'` (backslash escapes), `$tag$...$tag$` (a `$` that does
  not end a name: `a$b` is a name), nested `/* */`, `--` to the end of its line; `"..."` names are
  code as written.
- MariaDB: `'...'` and `"..."` strings (backslash escapes, doubled quotes), `` `...` `` names kept,
  `#` and `-- ` to the end of the line, `/* */` comments; what `/*!NNNNN ... */` and `/*M!NNNNNN
  ... */` hold is run by the server, so only their markers go."""

from __future__ import annotations

import re

_OPENS = {
    "pgaudit": re.compile(r"""--|/\*|(?<![\w$])[Ee]'|'|(?<![\w$])\$(?:[A-Za-z_]\w*)?\$|\""""),
    "mariadb": re.compile(r"""--(?=\s)|#|/\*M?!\d*|/\*|\*/|'|"|`"""),
}
_PG_STRING = re.compile(r"'(?:[^']|'')*'")  # from its opening quote
_BACKSLASHED = {q: re.compile(rf"{q}(?:[^{q}\\]|\\.|{q}{q})*{q}", re.S) for q in "'\"`"}
_PG_NAME = re.compile(r'"(?:[^"]|"")*"')
_COMMENTS = re.compile(r"/\*|\*/")
# what only the walk reads right: without any (and no string cut short), a statement's strings are
# its only non-code, blanked by one regex (most statements; the walk took half again as long)
_UNUSUAL = re.compile(r"""--|/\*|\*/|\$|"|#|`|\\""")
_PLAIN_STRING = re.compile(r"'(?:[^']|'')*'")


def split(statement: str, dialect: str) -> tuple[str, str]:
    """(code, text) of `statement`: strings as `''` and comments as a space in the code; comments
    only as a space in the text. A dialect it does not know is read as written."""
    opens = _OPENS.get(dialect)
    if opens is None:
        return statement, statement
    if not _UNUSUAL.search(statement) and statement.count("'") % 2 == 0:  # a string cut short: walked
        return _PLAIN_STRING.sub("''", statement), statement
    code: list[str] = []
    text: list[str] = []
    pos, n, executable = 0, len(statement), 0  # MariaDB: the /*! comments open around the cursor
    while (m := opens.search(statement, pos)) is not None:
        start, token = m.start(), m.group()
        code.append(statement[pos:start])
        text.append(statement[pos:start])
        if token in ("--", "#"):
            end = statement.find("\n", start)
            end = n if end < 0 else end  # the newline stays: the next line is code
            code.append(" ")
            text.append(" ")
        elif token == "/*" and dialect == "pgaudit":
            end = _nested_end(statement, start)
            code.append(" ")
            text.append(" ")
        elif token == "/*":
            close = statement.find("*/", start + 2)
            end = n if close < 0 else close + 2
            code.append(" ")
            text.append(" ")
        elif token.startswith("/*"):  # MariaDB's executable comment: its content is code
            executable += 1
            end = m.end()
            code.append(" ")
            text.append(" ")
        elif token == "*/":  # closes an executable comment (a stray one is code)
            end = m.end()
            kept = " " if executable else token
            executable = max(executable - 1, 0)
            code.append(kept)
            text.append(kept)
        elif (dialect == "pgaudit" and token == '"') or token == "`":  # a quoted name
            found = (_PG_NAME if token == '"' else _BACKSLASHED["`"]).match(statement, start)
            end = found.end() if found else n
            code.append(statement[start:end])
            text.append(statement[start:end])
        else:  # a string
            if token.startswith("$"):
                close = statement.find(token, m.end())
                end = n if close < 0 else close + len(token)
            elif dialect == "pgaudit" and token == "'":
                found = _PG_STRING.match(statement, start)
                end = found.end() if found else n
            else:  # E'...' or a MariaDB string: backslash escapes
                quote = token[-1]
                found = _BACKSLASHED[quote].match(statement, m.end() - 1)
                end = found.end() if found else n
            code.append("''")
            text.append(statement[start:end])
        pos = end
    code.append(statement[pos:])
    text.append(statement[pos:])
    return "".join(code), "".join(text)


def _nested_end(statement: str, start: int) -> int:
    """Past the `*/` that closes the PostgreSQL comment opened at `start` (they nest)."""
    depth, pos = 0, start
    for m in _COMMENTS.finditer(statement, start):
        depth += 1 if m.group() == "/*" else -1
        pos = m.end()
        if depth == 0:
            return pos
    return len(statement)
