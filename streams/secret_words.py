"""A value typed after the word for a secret: one rule for what a person types into a review note
(streams/reviews.py `redact`) and what a producer typed into a name or a policy word at the
engine's door (streams/personal_numbers.py `SecretSeal`).

C3 (JR/T 0171 §4.2 C3 a: user-authentication data, and card data) and a passport: a probe's notes
kept "pw Passw0rd!" and "CVN 123 exp 12/28", and a probe's producers' ids and purposes
(`pwd=hunter2`, `CVV2=739`, `密码:123456`) reached alerts, ClickHouse and the changelog. After a
`:`, `=` or "is" (是) any value is one; else one holding a digit ("the PIN was reset" keeps "was").
After the word, a value may follow glued to it (CVV123), and after `:` it runs to the clause's end
("password: correct horse battery staple"; a review's cases). The word's own digit is the word's
(`CVV2` alone, as traffic.yaml names the field, is no CVV of 2); a bracket after it names the
thing (`卡片验证码(CVN/CVN2)`, classification.yaml's name for the field), and a value glued to it
starts with an ASCII letter or digit (`CVN/CVN2`, `CVN和CVN2` list words): the door seals the policy's words too,
which the catalog reads after it."""

from __future__ import annotations

import re

# the words: an ASCII one in any case, whole from where a word starts, an `_` starting one too and
# an upper-case letter after a lower-case one (a producer's snake- or camel-case key,
# `db_password=hunter2`, `loginPwd=hunter2`, passed `\b`); the others anywhere
_ASCII = (
    "passwords?", "passwd", "passcodes?", "pass", "pwd", "psw", "pw", "pins?", "cvv2?+", "cvn2?+", "cvc2?+", r"security\s+codes?",
    "otp", r"sms\s+codes?", r"verification\s+codes?", r"exp(?:iry)?\.?", "passports?",
)  # fmt: skip
_OTHERS = ("密码", "口令", "验证码", "动态码", "安全码", "校验码", "有效期", "护照(?:号码?)?")
_WORD = rf"(?P<word>(?:(?<![^\W_])|(?-i:(?<=[a-z])(?=[A-Z])))(?:{'|'.join(_ASCII)})(?![a-z])码?|{'|'.join(_OTHERS)})"  # an ASCII word takes a 码 ("code") after it as its own: `PIN码:1234`, as Chinese writes it
_VALUE = (
    r"(?:(?P<said>\s*(?:[:=：＝]|\bis\b|是)\s*)[^;,，；。\n]+"
    r"|(?P<gap>\s*)(?![(（\[])(?:(?<=\s)|(?=[A-Za-z0-9]))[^\s;,，；。]*\d[^;,，；。\n]*?(?=\s+[^\d\s/]|[;,，；。\n]|$))"
)
SECRET = re.compile(f"(?i){_WORD}{_VALUE}")


def _stem(word: str) -> str:
    """What every match of `word` starts with: its plain characters up to the pattern's first own
    one, less the last if a quantifier makes it optional (`pins?` -> `pin`)."""
    plain = re.match(r"[^\\()\[\]?*+{}.|]*", word)[0]  # type: ignore[index]
    return plain[:-1] if word[len(plain) : len(plain) + 1] in ("?", "*", "{") else plain


# what the door's C search (streams/_door.c `secret_words`) looks for before the rule is read: a
# regular expression over every name costs more than the rest of the door together
STEMS = tuple(dict.fromkeys(_stem(word) for word in (*_ASCII, *_OTHERS)))


def seal_secrets(text: str) -> str:
    """`text` with each value typed after the word for a secret `{secret}`, the word kept: the
    reason or name stays readable."""
    return SECRET.sub(lambda m: f"{m['word']}{m['said'] or m['gap'] or ''}{{secret}}", text)
