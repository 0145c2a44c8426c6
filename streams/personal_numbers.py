"""Card, resident ID, mobile and IMEI numbers, and customer ids, inside the names producers give.

A producer may build an event id, a record id, an actor, a recipient or a path from a customer's
number (`REC-6222020200001234562`, `/upload/6222…/statement.csv`, an SDK host
`13812345678.push.example`). Each such number is found by its form: a card by its scheme prefix
and Luhn digit, a resident ID by its ISO 7064 check character and birth date, a mobile number as
11 digits 13-19 written whole, 3-4-4 or behind `+86` / `0086`. Digits may be of any width, groups
may be parted by spaces, dashes, dots, slashes or underscores (full-width ones too), and a card or
resident ID may sit beside other digits (`20260101` + a card).

- `NumberSeal` replaces it where an event enters the engine (streams/engine.py `ingest`), in the
  names a producer chooses (`NAMES`), by its form and a keyed fingerprint:
  `{bank_card:9f2c41d07a3b}`. One record id still matches itself across streams, in state,
  repartition topics and tables, and the number cannot be read back (docs/security.md). The
  policy's vocabulary (purposes, categories, versions, orgs) is compared as written and left
  alone: a sealed app version would match no declaration.
- `mask` replaces it by its form alone (`{bank_card}`): the alert step's last pass over the text
  a detector composed (streams/alerts.py).
- `CustomerIdSeal` replaces a customer id of the form the bank declares (organisation.yaml
  `customer_id_form`) in the same names by the customer's pseudonym (`C0000022-R…` -> `p_…-R…`),
  after the numbers are sealed (`DoorSeals`).
"""

from __future__ import annotations

import base64
import re
import unicodedata
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator
from datetime import date
from itertools import accumulate
from typing import Any, NamedTuple

from schemas.models import ValueType
from streams import _door
from streams.secret_words import STEMS, seal_secrets

# what goes between a number's groups, as typed in either width (NFKC folds the full-width ones);
# `,` `|` `:` `+` too, and up to three of them (` - `): a probe's `6212|2602|0001|2345|670` and
# `6212 - 2602 - …` reached alerts whole
_SEPARATORS = (
    "["
    + re.escape(
        " \t\u00a0\u3000._/\\-\uff0d\uff0e\uff0f\uff3f\u2010\u2011\u2012\u2013\u2014\u2212,|:+\uff0c\uff5c\uff1a\uff0b"
    )
    + "]"
)
_IPV4 = r"\d{1,3}(?:\.\d{1,3}){3}(?![.\d])"  # a client's address: dotted, never a number of one
# a run of at least 11 digits (in any width) with at most two separators between any two, and an X
# (a resident ID's check digit, in either width too): the only text a personal number can hide in
RUN = re.compile(rf"(?<!\d)(?!{_IPV4})\+?\d(?:{_SEPARATORS}{{0,3}}\d){{10,}}[XxＸｘ]?")
# an IPv6 address (8 groups, or fewer around `::`): with `:` between groups its digits would read as
# a card's (`2408:8207:2460:1410:…`, a client's address in `client_ip`)
_IPV6 = re.compile(
    r"((?<![\w:])(?:(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}"
    r"|(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){0,6})?::(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){0,6})?)(?![\w:]))"
)
_SPLIT = re.compile(f"({_SEPARATORS}+)")
# UnionPay 16-19 digits; Visa, Mastercard and JCB 16
_CARD = re.compile(r"62\d{14,17}|4\d{15}|(?:5[1-5]|2[2-7]|35)\d{14}")
_MOBILE = re.compile(r"1[3-9]\d{9}")
MAX_DIGITS = 19  # the longest number sealed: a UnionPay card
_MOBILE_GROUPS = ([3, 4, 4], [3, 8])  # how a mobile number is written in parts; others are no phone
# a card's or resident ID's length: in a longer run of digits, one may sit anywhere (a date before
# it, a sequence number after, both: `TXN20260101` + a card + `0001`, a probe's); a mobile number,
# IMEI or first-generation resident ID has no check digit (or a weak one) to be found so
_LENGTHS = (19, 18, 17, 16)
# a digit group longer than this is sealed whole: sliding over a hostile 250 000 digits of `6262…`
# (a UnionPay prefix at every other place) took two seconds
MAX_RUN = 256
_UNIONPAY_AT = re.compile(r"(?=62)")
_RIC_CENTURY_AT = re.compile(r"(?=1[89]|2[01])")  # a resident ID's birth year, six digits in

Token = Callable[[ValueType, str], str]  # (form, canonical number) -> what replaces it
Found = tuple[ValueType, str, int, int]  # form, canonical number, where it starts and ends


_RIC_WEIGHTS = [pow(2, 17 - i, 11) for i in range(17)]


def is_ric(number: str) -> bool:
    """A resident ID (GB 11643): 17 digits, an ISO 7064 mod 11-2 check character, a real birth
    date. Its first six digits are not looked up: stdnum's table of them raised KeyError for a
    code it knows only at city level (a poison pill at the engine's door) and missed new counties."""
    if len(number) != 18 or not number[:17].isascii() or not number[:17].isdigit():
        return False
    # the birth date first: most long numbers fail it, and it costs less than the checksum
    if not ("18" <= number[6:8] <= "21" and "01" <= number[10:12] <= "12" and "01" <= number[12:14] <= "31"):
        return False
    try:
        date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return False
    check = (12 - sum(int(d) * w for d, w in zip(number[:17], _RIC_WEIGHTS, strict=True)) % 11) % 11
    return number[17].upper() == ("X" if check == 10 else str(check))


# the provinces (GB/T 2260) a resident ID's first two digits name
_PROVINCES = frozenset(
    f"{n}"
    for n in (
        *range(11, 16),
        21,
        22,
        23,
        *range(31, 38),
        *range(41, 47),
        *range(50, 55),
        *range(61, 66),
        71,
        81,
        82,
    )
)


def is_old_ric(number: str) -> bool:
    """A first-generation resident ID (GB 11643-1989, issued until 2004 and still in old records): 15
    digits, a province's code first, a real birth date in 19YYMMDD written YYMMDD, no check digit.
    A probe's record id `ric-110101900307123` reached an alert whole."""
    if len(number) != 15 or not number.isascii() or not number.isdigit() or number[:2] not in _PROVINCES:
        return False
    try:
        date(1900 + int(number[6:8]), int(number[8:10]), int(number[10:12]))
    except ValueError:
        return False
    return True


def _luhn(digits: str) -> bool:
    total = 0
    for i, d in enumerate(reversed(digits)):
        n = ord(d) - 48
        total += n if i % 2 == 0 else (n * 2 - 9 if n > 4 else n * 2)
    return total % 10 == 0


def is_card(digits: str) -> bool:
    """A payment card number: a scheme's prefix and length, and its Luhn check digit."""
    return _CARD.fullmatch(digits) is not None and _luhn(digits)


def _checked(digits: str) -> ValueType | None:
    """A card, resident ID or IMEI that is the whole of `digits` (ASCII digits, an X last for an ID).
    An IMEI is 15 digits with a Luhn check digit, as the HAR path reads one (a probe's SDK telemetry
    named devices `dev-490154203237518`, an IMEI the state changelog kept)."""
    if len(digits) == 18 and is_ric(digits):
        return ValueType.cn_ric
    return ValueType.bank_card if is_card(digits) else None


def _whole(digits: str, groups: list[int]) -> tuple[ValueType, str] | None:
    """The personal number `digits` is, written in groups of these lengths: a card or resident ID
    however grouped (its check digit tells), a mobile number only as people write one."""
    form = _checked(digits)
    if form is not None:
        return form, digits.upper()
    for code in ("", "86", "0086"):
        if digits.startswith(code) and _MOBILE.fullmatch(digits[len(code) :]):
            # a code written apart, or glued to the number's first group (`+86138-1234-5678`)
            own = groups[1:] if groups[0] == len(code) else [groups[0] - len(code), *groups[1:]]
            if own == [len(digits) - len(code)] or (code and len(own) == 1) or own in _MOBILE_GROUPS:
                return ValueType.cn_mobile, digits[len(code) :]
    # an IMEI: 15 digits written whole, a Luhn check digit, as the HAR path reads one; after the
    # mobile number dialled `0086` (as long, and its digits may pass Luhn too); not digits of other
    # groups joined (a date beside a phone number). A probe's SDK telemetry named devices
    # `dev-490154203237518`, an IMEI the state changelog kept
    if len(digits) == 15 and groups == [15] and digits.isdigit() and _luhn(digits):  # no X: a RIC's
        return ValueType.imei, digits
    # a first-generation resident ID, written whole: without a check digit, digits of other groups
    # joined (a sensor trace's readings) would read as one
    if len(digits) == 15 and groups == [15] and is_old_ric(digits):
        return ValueType.cn_ric, digits
    return None


def _within(group: str) -> list[Found]:
    """The personal numbers in one group of digits: the whole group, or each card or resident ID
    in a window of it, left to right. Away from the group's ends only a resident ID or a UnionPay
    card (62, the bank's own cards) is taken: a Visa, Mastercard or JCB prefix is one digit or two
    a date or a time spells (`2026…`, `…1245…`), and sliding them over every window sealed one
    timestamped id in nine (`20260101123045` + a sequence); at an end, as before. Windows that overlap are sealed as one span, by the
    strongest number among them (a resident ID's check, then UnionPay's 62, then the longest): a
    window that passes by chance beside a card (a date's `26` reads as a Mastercard prefix, and one
    in ten such windows passes Luhn) would else leave part of the card in the clear."""
    found = _whole(group, [len(group)])
    if found is not None:
        return [(*found, 0, len(group))]
    last = len(group)
    if last < min(_LENGTHS):  # a group of a sensor trace's few digits: no window to read
        return []
    if last > MAX_RUN:  # no id a log needs is that long, and a card may hide anywhere in it
        return [(ValueType.number, group.upper(), 0, last)]
    # away from the ends, only where a UnionPay card or a resident ID (its birth year's century, as
    # `is_ric` takes it) may start: a hostile run of 250 000 digits took a second window by window
    starts = sorted(
        {
            0,
            *range(max(0, last - max(_LENGTHS)), last - min(_LENGTHS) + 1),
            *(m.start() for m in _UNIONPAY_AT.finditer(group)),
            *(m.start() - 6 for m in _RIC_CENTURY_AT.finditer(group, 6)),
        }
    )
    windows = [
        (a, a + n, form)
        for a in starts
        for n in _LENGTHS
        if a + n <= last
        and (a == 0 or a + n == last or group.startswith("62", a) or n == 18)
        and (form := _checked(group[a : a + n])) is not None
        and (a == 0 or a + n == last or form is ValueType.cn_ric or group.startswith("62", a))
    ]
    spans: list[Found] = []
    while windows:
        start, end, _ = windows[0]
        overlapping = []
        for window in windows:
            if window[0] >= end:
                break
            overlapping.append(window)
            end = max(end, window[1])
        a, b, form = max(
            overlapping, key=lambda w: (w[2] is ValueType.cn_ric, group.startswith("62", w[0]), w[1] - w[0])
        )
        spans.append((form, group[a:b].upper(), start, end))
        windows = windows[len(overlapping) :]
    return spans


def _first_number(run: str, token: Token) -> tuple[str, ValueType, str] | None:
    """(the run up to its first personal number, that number replaced (and the others in its group);
    the last one's form; the rest of the run), or None: the widest span of whole digit groups that
    is one, from the left (a card written 6222 0202 ...), or those inside a single group. A span is
    at most 19 digits (no card, resident ID or mobile number is longer): a run of a thousand groups was tried whole, each span joined anew, and a
    sensor trace of 1 200 numbers took 54 s (a review)."""
    text = run if run.isascii() else unicodedata.normalize("NFKC", run)
    parts = _SPLIT.split(text.lstrip("+"))  # groups at even places, separators between
    head_plus = text[: len(text) - len(text.lstrip("+"))]
    groups = len(parts) // 2 + 1
    ends = list(accumulate(len(parts[2 * k]) for k in range(groups)))  # digits up to each group
    for i in range(groups):
        widest = max(i + 1, bisect_right(ends, (ends[i - 1] if i else 0) + MAX_DIGITS))
        for j in range(min(widest, groups), i, -1):
            digits = "".join(parts[2 * i : 2 * j - 1 : 2])
            if j - i > 1:
                whole = _whole(digits, [len(g) for g in parts[2 * i : 2 * j - 1 : 2]])
                found = [(*whole, 0, len(digits))] if whole is not None else []
            else:
                found = _within(digits)
            if not found:
                continue
            head = head_plus * (i == 0 and found[0][0] is not ValueType.cn_mobile) + "".join(parts[: 2 * i])
            sealed, at = [head], 0
            for form, number, a, b in found:
                sealed += [digits[at:a], token(form, number)]
                at = b
            return "".join(sealed), found[-1][0], digits[at:] + "".join(parts[2 * j - 1 :])
    return None


# a card's track data right after its number (track 2 `;PAN=YYMM…?`, track 1 `%BPAN^NAME^YYMM…?`,
# EMV tag 57 `PANDYYMM…F`): the expiry, service code and discretionary data are card data (C3), and
# a probe's `;{bank_card:…}=25121010000012300000?` kept them once the number was sealed
_TRACK = re.compile(r"(=|\^[^^\n]{0,26}\^|D)\d{4,}F?")


def _replace_text(text: str, token: Token) -> str:
    """`text` with each personal number in its runs of digits replaced, left to right (a loop, not a
    recursion per number found: a text of a thousand numbers overflowed the stack), and a card's
    track data after it `{secret}`."""
    # addresses at odd places. One holds `::` or seven `:`: a text with a time or two in it (an
    # alert's summary: 13 of the 53 µs masking it took) is not searched for them
    if ("::" in text or text.count(":") >= 7) and len(addressed := _IPV6.split(text)) > 1:
        return "".join(part if k % 2 else _replace_text(part, token) for k, part in enumerate(addressed))
    out: list[str] = []
    while text and (m := RUN.search(text)) is not None:
        out.append(text[: m.start()])
        first = _first_number(m.group(), token)
        if first is None and m.group()[-1] in "XxＸｘ":  # no resident ID's: a letter after another number
            first = _first_number(m.group()[:-1], token)
            first = first and (first[0], first[1], first[2] + m.group()[-1])
        if first is None:
            out.append(m.group())
            text = text[m.end() :]
        else:
            head, form, rest = first
            out.append(head)
            text = rest + text[m.end() :]
            if form is ValueType.bank_card and (track := _TRACK.match(text)) is not None:
                out.append(track[1][0] + "{secret}")
                text = text[track.end() :]
    out.append(text)
    return "".join(out)


def numbers_in(text: str) -> list[tuple[ValueType, str]]:
    """(form, number) of each card, resident ID and mobile number inside a text, as the door finds them."""
    found: list[tuple[ValueType, str]] = []

    def note(form: ValueType, number: str) -> str:
        found.append((form, number))
        return number

    _replace_text(text, note)
    return found


# what lifemon itself writes into a text: a customer's pseudonym, a value's or a field's keyed
# fingerprint. Hex, so a run of its digits may read as a phone or a card (p_51eeea17510050586ca87e91:
# about one pseudonym in 900 has one); never a number a producer wrote
_OWN = re.compile(r"((?<![A-Za-z0-9])(?:p\d*_[0-9a-f]{24}|fp_[0-9a-f]{20}|gap_[0-9a-f]{12})(?![A-Za-z0-9]))")


def mask(text: str) -> str:
    """`text` with every card, resident ID and mobile number in it replaced by its form; the
    pseudonyms and fingerprints in it are left whole."""
    parts = _OWN.split(text)  # lifemon's own tokens at odd places
    parts[::2] = [_replace_text(part, lambda form, _: f"{{{form.value}}}") for part in parts[::2]]
    return "".join(parts)


# the names a producer chooses, per stream: ids, free text and the systems it names (one with a card
# in it matches no system of the policy, sealed or not). The policy's vocabulary (purposes,
# categories, roles, versions, countries, orgs) stays as written, to be compared with it
NAMES: dict[str, tuple[str, ...]] = {
    "access": ("event_id", "actor_id", "system", "record_ids", "approval_id"),
    "transfer": (
        "event_id",
        "transfer_id",
        "sender_system",
        "actor_id",
        "recipient_id",
        "subject_list_id",
        "record_ids",
        "contract_id",
        "assessment_id",
        "approval_id",
    ),
    "sdk": ("event_id", "device_id", "sdk_id", "dest_host", "dest_path"),
    "marketing": ("event_id", "campaign_id", "submitter_id", "approver_id", "approval_id"),
    "lifecycle": ("event_id", "record_id", "system", "method", "operator_id", "supervisor_id"),
    "entitlements": ("actor_id",),
    "consents": (),
    "customers": (),
}
# The values that should hold the policy's words (a purpose, field ids, a country, an org) or an
# address: a personal number a producer typed there instead (a card in `purpose`, an ID number in
# `client_ip`) reached the state changelog and the repartition topics in the clear (a probe), so
# numbers are sealed there too, and so is a customer id of the bank's form (a probe's CRM and HR
# feeds with customer numbers in `org_id`, `roles` or `dest_country` reached alerts and ClickHouse:
# the promise is "pseudonyms in every output", whatever the door's cost).
WORDS: dict[str, tuple[str, ...]] = {
    "access": ("actor_org", "client_ip", "purpose", "fields"),
    "transfer": ("purpose", "categories", "recipient_country"),
    "sdk": ("app_id", "app_version", "fields", "permissions", "method", "dest_country"),
    "marketing": ("org_id", "approved_audience", "purpose", "data_used"),
    "lifecycle": ("purpose", "categories"),
    "entitlements": ("org_id", "org_path", "roles"),
    "consents": ("purpose",),
    "customers": ("org_id", "org_path"),
}
NESTED: dict[str, dict[str, tuple[str, ...]]] = {
    "entitlements": {"approvals": ("approval_id", "approver_id")}
}


def _letters(digest: str) -> str:
    """12 characters of a keyed digest (`fp_…` or `p_…` hex) in base32: no run of digits in it
    for `mask` to take for a number."""
    return base64.b32encode(bytes.fromhex(digest.rpartition("_")[2][:20])).decode().lower()[:12]


class Scan(NamedTuple):
    """One pass over a batch's names, shared by the seals (streams/_door.c `names_scan`): the names
    joined (None: no seal searches them), and those holding a long number, a word for a secret, a
    customer id's letters and digits (None: a form the C search does not read, searched in the
    names joined) or an `@`."""

    text: str | None
    numbers: list[tuple[int, str]]
    secrets: list[tuple[int, str]]
    customers: list[tuple[int, str]] | None
    emails: list[tuple[int, str]]


class NameSeal:
    """Replaces what it finds in the names a stream's records carry (`NAMES`, `NESTED`; and `WORDS`
    where `words`), a batch at a time."""

    def text(self, text: str) -> str:
        raise NotImplementedError

    words = False  # the values that should hold the policy's words (`WORDS`) too

    def seal(self, records: list[Any], names: tuple[str, ...], scan: Scan) -> None:
        """Seals the records' `names`, found by `scan` of them as they came (`DoorSeals`)."""
        for i, name in self._candidates(records, names, scan):
            value = getattr(records[i], name)
            if isinstance(value, str):
                setattr(records[i], name, self.text(value))
            elif value:
                setattr(records[i], name, list(map(self.text, value)))

    def _candidates(
        self, records: list[Any], names: tuple[str, ...], scan: Scan
    ) -> Iterable[tuple[int, str]]:
        """(index, name) of the records' names that may hold what is sealed."""
        raise NotImplementedError


class NumberSeal(NameSeal):
    """Seals personal numbers in the names a stream's records carry, and in its words."""

    words = True

    def __init__(self, digest: Callable[[str], str]):
        self._token: Token = lambda form, number: f"{{{form.value}:{_letters(digest(number))}}}"

    def text(self, text: str) -> str:
        return _replace_text(text, self._token)

    def _candidates(
        self, records: list[Any], names: tuple[str, ...], scan: Scan
    ) -> Iterable[tuple[int, str]]:
        """Found in C (streams/_door.c `names_scan`): 11 digits or more in a run."""
        return scan.numbers


class CustomerIdSeal(NameSeal):
    """A customer id of the bank's form (organisation.yaml `customer_id_form`) inside a name a
    producer chose becomes the customer's pseudonym, as in the fields that hold customer ids:
    `C0000022-acct-1` -> `p_…-acct-1`. A record's id still joins across streams, and an alert on it
    names the pseudonym its subject has. In the policy's words too (`WORDS`): an org, role,
    category or country a producer filled with customer numbers. Found as a whole token (no letter
    or digit touching it), so `REC0000022` or `C00000221` is no customer of the form `C[0-9]{7}`."""

    words = True

    def __init__(self, form: str, pseudonymize: Callable[[str], str]):
        # in any case, as the fields that hold customer ids read them (`pseudonym.spelled_as`): a
        # review's `acct-c0000306-1` kept the id a lower-case `c0000306` field was pseudonymized from
        self._anywhere = re.compile(form, re.IGNORECASE)  # a batch's one search: no lookbehind to slow it
        self._anywhere_ascii = _ascii_search(form) or self._anywhere.finditer
        self._whole = re.compile(whole_token(form), re.IGNORECASE)
        self._pseudonym = lambda found: pseudonymize(found.group())
        self.scan_form = letters_and_digits(form)

    def text(self, text: str) -> str:
        """`text` with each customer id in it replaced; one typed in full width (Ｃ０００００２２)
        is the customer's too, as the fields that hold ids read it (`policy.model.id_spelling`)."""
        plain = half_width(text)
        sealed = self._whole.sub(self._pseudonym, plain)
        return sealed if sealed != plain else text

    def _candidates(
        self, records: list[Any], names: tuple[str, ...], scan: Scan
    ) -> Iterable[tuple[int, str]]:
        """The names holding the form's letters and digits anywhere, found in C (`letters_and_digits`);
        for another form, every name of the records whose names hold it anywhere, found in the
        batch's names joined: a batch without one, the rule, costs one search; one with a few, a
        search and the records they are in (every name of the batch was rewritten once one held
        the form: 116 000 rewrites of the mixed day's)."""
        if scan.customers is not None:  # a form of letters then digits, found in C name by name
            return scan.customers
        assert scan.text is not None  # joined for a form the C search does not read (`DoorSeals`)
        text = half_width(scan.text)  # the same length: one character each
        search = self._anywhere_ascii if text.isascii() else self._anywhere.finditer
        found = [m.start() for m in search(text)]
        if not found:
            return ()
        if text.count("\x1e") != len(records):  # a name holds the end mark itself: every record, as before
            return ((i, name) for i in range(len(records)) for name in names)
        # where each record's names end: a match before the i-th end and after the one before is the i-th's
        ends = list(accumulate(len(part) + 1 for part in text.split("\x1e")))
        return ((i, name) for i in sorted({bisect_right(ends, at) for at in found}) for name in names)


# a form of letters, then digits, each digit maybe repeated (`C[0-9]{7}`, `CU[0-9]{2,4}`, `C[0-9]{6}7`)
_LETTERS_THEN_DIGITS = re.compile(r"([A-Za-z]{1,24})((?:(?:\[0-9\]|[0-9])(?:\{[0-9]+(?:,[0-9]*)?\})?)+)")
_DIGITS = re.compile(r"(?:\[0-9\]|[0-9])(?:\{([0-9]+)(?:,[0-9]*)?\})?")


def letters_and_digits(form: str) -> tuple[str, int] | None:
    """What streams/_door.c `names_scan` looks for in each name where a customer id of `form` may be:
    its letters (in any case or width) and the fewest digits after them, where the form is letters
    then digits; None for another form. A name of the batch's joined and lowered, searched by `re`,
    was about 0.13 µs an access event."""
    found = _LETTERS_THEN_DIGITS.fullmatch(form)
    if found is None:
        return None
    digits = sum(int(m[1] or 1) for m in _DIGITS.finditer(found[2]))
    return (found[1].lower(), digits) if digits else None


def _ascii_search(form: str) -> Callable[[str], Iterator[re.Match[str]]] | None:
    """The form's search where a batch's names are all ASCII, as they nearly always are: with ASCII
    case folding, a quarter off Unicode's. None where that could find less: a form holding a letter
    Unicode folds to an ASCII one (ſ is s)."""
    return re.compile(form, re.IGNORECASE | re.ASCII).finditer if form.isascii() else None


class SecretSeal(NameSeal):
    """A value typed after the word for a secret in a name or a policy word (`pwd=hunter2`,
    `CVV2=739`, `密码:123456`, `cvn2 739`) becomes `{secret}`, by the rule review notes follow
    (streams/secret_words.py): C3 is written nowhere, and a probe's producers' ids, purposes and
    systems carried such values into alerts, incidents, ClickHouse, the changelog, the repartition
    topics and the report. No fingerprint is kept: a secret names no record to join."""

    words = True

    def text(self, text: str) -> str:
        plain = half_width(text)  # ＰＷＤ typed in Chinese input mode is the word too
        sealed = seal_secrets(plain)
        return sealed if sealed != plain else text

    def _candidates(
        self, records: list[Any], names: tuple[str, ...], scan: Scan
    ) -> Iterable[tuple[int, str]]:
        """The names holding a word for a secret, found in C (streams/_door.c `names_scan`)."""
        return scan.secrets


class EmailSeal(NameSeal):
    """An email address in a name a producer chose (a record id, an event id, a list id) is sealed
    as a personal number is: a probe's record ids `alice.wang@example.com` reached alerts whole
    (seed 004 定义(2): 电子邮箱 is personal information). A staff address whose local part is an
    employee id of the bank's form (`E300011@bank.com.cn`) is kept: the door reads the employee from
    it. An SDK's destination host and path are the receiver's, not a person's (`user@host` is a trick
    the host check must see)."""

    _NOT_ADDRESSES = frozenset({"dest_host", "dest_path"})

    def __init__(self, digest: Callable[[str], str], employee_id_form: str | None):
        self._token = lambda found: f"{{email:{_letters(digest(found.group().casefold()))}}}"
        self._staff = re.compile(employee_id_form, re.IGNORECASE).fullmatch if employee_id_form else None

    def text(self, text: str) -> str:
        return _EMAIL.sub(self._sealed, text) if "@" in text else text

    def _sealed(self, found: re.Match[str]) -> str:
        if self._staff is not None and self._staff(found.group(1)):
            return found.group()
        return self._token(found)

    def _candidates(
        self, records: list[Any], names: tuple[str, ...], scan: Scan
    ) -> Iterable[tuple[int, str]]:
        """The names holding an `@`, found in C (streams/_door.c `names_scan`); no seal before this
        one writes an `@`."""
        return [(i, n) for i, n in scan.emails if n in names and n not in self._NOT_ADDRESSES]


_EMAIL = re.compile(
    r"(?<![\w.+\-])([\w.+\-]+)@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}(?![A-Za-z0-9])"
)


# full-width letters and digits (Ｃ０００００２２, typed in Chinese input mode) -> ASCII; punctuation kept
_HALF_WIDTH = {
    c: c - 0xFEE0 for r in ((0xFF10, 0xFF1A), (0xFF21, 0xFF3B), (0xFF41, 0xFF5B)) for c in range(*r)
}


def half_width(text: str) -> str:
    """`text` with full-width letters and digits in ASCII, as a customer id is read."""
    return text if text.isascii() else text.translate(_HALF_WIDTH)


def whole_token(form: str) -> str:
    """A customer id form found only as a whole token: no ASCII letter or digit touching it (an
    id beside CJK text, `客户C0000022`, is one; `REC0000022` and `C00000221` are none)."""
    return rf"(?<![A-Za-z0-9])(?:{form})(?![A-Za-z0-9])"


class DoorSeals:
    """What the engine's door does to the names a producer chose, in order: a value typed after the
    word for a secret is sealed, a personal number is sealed, then a customer id of the bank's
    form becomes its pseudonym (the other way round, the seal took the digits of about one
    pseudonym in 800 for a card), then an email address is sealed. `lifemon fingerprint` says a
    name's kept form by the same steps."""

    def __init__(
        self,
        customer_id_form: str | None,
        pseudonymize: Callable[[str], str],
        digest: Callable[[str], str],
        employee_id_form: str | None = None,
    ):
        self._seals: list[NameSeal] = [SecretSeal(), NumberSeal(digest)]
        self._form = None  # the customer id's letters and digits, for the C scan
        self._joined = False  # whether a seal searches the batch's names joined
        if customer_id_form:
            customers = CustomerIdSeal(customer_id_form, pseudonymize)
            self._seals.append(customers)
            self._form = customers.scan_form
            self._joined = self._form is None
        self._seals.append(EmailSeal(digest, employee_id_form))

    def text(self, text: str) -> str:
        for seal in self._seals:
            text = seal.text(text)
        return text

    def records(self, stream: str, records: list[Any]) -> None:
        self._seal(records, NAMES.get(stream, ()), WORDS.get(stream, ()))
        for name, inner in NESTED.get(stream, {}).items():
            nested = [x for r in records for x in getattr(r, name)]
            if nested:
                self._seal(nested, inner, ())

    def _seal(self, records: list[Any], names: tuple[str, ...], words: tuple[str, ...]) -> None:
        """Each seal in turn, its candidates found by one scan of the names as they came: exact,
        because no seal writes what a later one looks for (a token `{bank_card:…}` or a pseudonym
        `p_…` holds no `@`, no run of 11 digits and no whole customer id; the seals run on each name
        alone give the same: `test_a_batch_seals_each_name_as_the_seals_in_turn_seal_it_alone`)."""
        if names + words:
            scan = Scan(*_door.names_scan(records, names + words, STEMS, self._form, self._joined))
            for seal in self._seals:
                seal.seal(records, names + words if seal.words else names, scan)
