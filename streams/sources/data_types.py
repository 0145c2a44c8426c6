"""The data types in a captured request, as SDK field ids of the policy's vocabulary
(`policy/traffic.yaml`, sdks.yaml `sdk_fields`): by key name (English and seed 004's Chinese names)
and by value form, with checksums from python-stdnum where a number has one (IMEI: Luhn; resident
ID: ISO 7064 mod 11-2 and a real birth date; bank card: Luhn and a scheme prefix), patterns for
the rest. A value is never kept: each sighting holds its field, where it was, its form and a keyed
fingerprint (docs/har.md)."""

from __future__ import annotations

import base64
import binascii
import re
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson
from stdnum import luhn

from policy.model import JrClass, SdkField, key_form
from policy.traffic import Traffic
from schemas.models import FoundIn, ValueType
from streams.personal_numbers import RUN, is_card, is_ric, numbers_in

MAX_DEPTH = 8  # nesting of JSON (and JSON inside strings) walked per request
FREE_TEXT = 20_000  # characters of one free-text value read for personal numbers
# values looked at per request: a huge body is sampled, never a reason to stall; and said so. 4 000
# cut a probe's Sensors batch of 100 events (its default) before the ID number in the last one
MAX_NODES = 40_000
MAX_INFLATED = 1 << 20  # a gzip-in-base64 payload is read up to 1 MiB (no zip bomb)
# sightings kept per field of a request: every field it carries is kept, a field's many values
# (an analytics batch's 60 latitudes) are not all needed to say it was sent; a cap over all
# fields let 63 events' distinct latitudes push an ID number out (a probe's Sensors batch)
MAX_SIGHTINGS_PER_FIELD = 8
# distinct phone numbers in one request that make it a contact book, whatever its keys say: an app
# sends its user's own number, not three (a probe's `contactList` of names and numbers read as the
# declared mobile_phone alone)
CONTACT_BOOK = 3

# values an SDK sends when it was not allowed to read the real one (Android's fixed MAC since 6.0,
# a zeroed advertising id): the field was not collected
_PLACEHOLDERS = frozenset(
    {"", "null", "none", "nil", "undefined", "unknown", "-1", "[]", "{}", "02:00:00:00:00:00"}
)
_ZERO = re.compile(r"[0:.\-]+")
_HEX_LETTERS = frozenset("abcdefABCDEF")
_DIGITS = re.compile(r"\d+")
_SEPARATORS = str.maketrans("", "", " -")
_MOBILE = re.compile(r"(?:\+?86)?(1[3-9]\d{9})")
_MAC = re.compile(r"[0-9a-f]{2}([:-])(?:[0-9a-f]{2}\1){4}[0-9a-f]{2}", re.IGNORECASE)
_COORDS = re.compile(r"\s*(-?\d{1,3}\.\d{4,})\s*,\s*(-?\d{1,3}\.\d{4,})\s*")
_CODE = re.compile(r"\d{4,8}")
_SMS = re.compile(r"(?:验证码|校验码|动态码|verification code)\D{0,12}?(\d{4,8})(?!\d)", re.IGNORECASE)
# headers every client sends: their names say nothing about the user
_PLAIN_HEADERS = frozenset(
    key_form(h)
    for h in (
        "host", "user-agent", "accept", "accept-encoding", "accept-language", "connection", "cookie",
        "content-type", "content-length", "content-encoding", "cache-control", "pragma", "origin",
        "referer", "te", "upgrade", "authorization", "if-none-match", "if-modified-since", "range",
        "transfer-encoding", "expect", "priority", "dnt",
    )
)  # fmt: skip


@dataclass(slots=True)
class CapturedRequest:
    """One request of a capture, as much of it as data recognition needs."""

    ts_ms: int
    method: str
    host: str
    path: str
    query: list[tuple[str, str]] = field(default_factory=list)
    headers: list[tuple[str, str]] = field(default_factory=list)
    cookies: list[tuple[str, str]] = field(default_factory=list)
    form: list[tuple[str, str]] | None = None  # form or multipart fields, when the capture parsed them
    body: str | None = None
    mime: str = ""
    status: int | None = None  # the response's HTTP status, when the capture has one


@dataclass(frozen=True, slots=True)
class Sighting:
    field: str
    found_in: FoundIn
    value_type: ValueType
    fingerprint: str


def recognize(text: str) -> tuple[ValueType, str] | None:
    """(form, canonical text) of a value that has one of the recognized forms; None otherwise.
    The canonical text is what the fingerprint hashes: one IMEI written two ways is one value."""
    t = text.strip()
    # every form is 11 to ~40 characters and starts with a digit, +, - or (a MAC) a hex letter:
    # most values (names, versions, flags) stop here, before any pattern or checksum runs
    if not 11 <= len(t) <= 64 or (t[0].isalpha() and t[0] not in _HEX_LETTERS):
        return None
    compact = t.translate(_SEPARATORS)
    if compact[:1] == "(" or compact.startswith("0086"):
        # a country code written `(+86)` or dialled `0086` (a probe's `(+86)138-...` was no phone,
        # `0086138...` an IMEI): the mobile number it prefixes, if one follows
        international = "+86" + compact.removeprefix("(+86)").removeprefix("(86)").removeprefix("0086")
        if (m := _MOBILE.fullmatch(international)) is not None:
            return ValueType.cn_mobile, m.group(1)
    if compact.isascii() and compact.isdigit():
        if _ZERO.fullmatch(compact):
            return None
        n = len(compact)
        # stdnum's IMEI check is its Luhn checksum over the 15 digits checked here (imei.validate);
        # calling the checksum alone halves the cost. 14 digits have no check digit: no guess
        if n == 15 and luhn.checksum(compact) == 0:
            return ValueType.imei, compact
        if is_card(compact):
            return ValueType.bank_card, compact
        m = _MOBILE.fullmatch(compact)
        if m:
            return ValueType.cn_mobile, m.group(1)
        if n == 18 and is_ric(compact):  # most resident IDs end in a digit, not X
            return ValueType.cn_ric, compact
        return None
    if len(compact) == 18 and compact[:17].isdigit() and is_ric(compact):
        return ValueType.cn_ric, compact.upper()
    if compact.startswith("+86") and (m := _MOBILE.fullmatch(compact)):
        return ValueType.cn_mobile, m.group(1)
    if _MAC.fullmatch(t):
        mac = t.lower().replace("-", ":")
        return None if _ZERO.fullmatch(mac) or mac in _PLACEHOLDERS else (ValueType.mac, mac)
    m = _COORDS.fullmatch(t)
    if m:
        a, b = float(m.group(1)), float(m.group(2))
        if (abs(a) <= 90 and abs(b) <= 180) or (abs(a) <= 180 and abs(b) <= 90):
            return ValueType.coordinates, f"{m.group(1)},{m.group(2)}"
    return None


_LONG_NUMBER = re.compile(r"\d{6,}")


def redact_path(path: str) -> str:
    """The URL path as events keep it: a segment holding a recognized value becomes its form
    (`/device/{imei}/register`), one with a long number `{id}` (an account or customer number,
    `6222.0202.…` too)."""
    out = []
    for segment in path.split("/"):
        found = recognize(segment)
        long = _LONG_NUMBER.search(segment) or RUN.search(segment)  # a card in dotted groups too
        out.append(f"{{{found[0].value}}}" if found else "{id}" if long else segment)
    return "/".join(out)


def _shape(value: Any) -> ValueType:
    if isinstance(value, bool):
        return ValueType.boolean
    if isinstance(value, int | float):
        return ValueType.number
    if isinstance(value, list):
        return ValueType.list
    if isinstance(value, dict):
        return ValueType.object
    return ValueType.text


def _placeholder(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, list | dict):
        return not value
    if isinstance(value, bool | int | float):
        return False
    s = value.strip().lower()
    return s in _PLACEHOLDERS or bool(_ZERO.fullmatch(s))


class Recognizer:
    def __init__(self, traffic: Traffic, sdk_fields: dict[str, SdkField], fingerprint: Callable[[str], str]):
        self.sampled = False  # the last request's values were more than MAX_NODES (`sightings`)
        # each field's zh name and other words (`also`) are keys; traffic.yaml adds the names SDKs use
        self.by_key = {key_form(word): fid for fid, f in sdk_fields.items() for word in (f.zh, *f.also)}
        self.by_key |= {key_form(k): fid for fid, e in traffic.fields.items() for k in e.keys}
        # a secret's key ends in its name (payPin, userPwd, 旧密码): longest end first
        self.ends = sorted(
            ((key_form(end), fid) for fid, e in traffic.fields.items() for end in e.ends),
            key=lambda x: -len(x[0]),
        )
        self.secrets = frozenset(
            fid for fid, f in sdk_fields.items() if f.jr_class is JrClass.C3 or f.auth_helper
        )
        self.carries = {fid: frozenset(e.values) for fid, e in traffic.fields.items()}
        self.value_field = dict(traffic.value_types)
        self.fingerprint = fingerprint
        self._keys: dict[str, str | None] = {}
        self._headers: dict[str, str | None] = {}

    def field_of(self, key: str) -> str | None:
        """The field a key names; memoized, since a capture repeats a few hundred key names."""
        if key in self._keys:
            return self._keys[key]
        form = key_form(key)
        fid = self.by_key.get(form)
        if fid is None:
            fid = next((f for end, f in self.ends if form.endswith(end)), None)
        if len(self._keys) < 100_000:
            self._keys[key] = fid
        return fid

    def _header_key(self, name: str) -> str | None:
        """The key a header stands for (`X-IMEI` -> imei); None for the headers every client sends."""
        if name not in self._headers:
            form = key_form(name)
            k = (
                None
                if form in _PLAIN_HEADERS
                else form[1:]
                if form[:1] == "x" and form[1:] in self.by_key
                else form
            )
            if len(self._headers) < 10_000:
                self._headers[name] = k
            return k
        return self._headers[name]

    def sightings(self, req: CapturedRequest) -> list[Sighting]:
        """Every field the request carries, once per (field, place, value)."""
        walk = _Walk(self)
        for segment in req.path.split("/"):
            walk.value(FoundIn.path, None, segment, 0)
        for name, value in req.query:
            walk.value(FoundIn.query, name, value, 0)
        for name, value in req.cookies:
            walk.value(FoundIn.cookie, name, value, 0)
        for name, value in req.headers:
            k = self._header_key(name)
            if k is not None:
                walk.value(FoundIn.header, k, value, 0)
        if req.form is not None:
            walk.form(req.form)
        elif req.body:
            walk.body(req.body, req.mime)
        self.sampled = walk.nodes > MAX_NODES  # the request's values were not all looked at
        phones = sorted({s.fingerprint for s in walk.found.values() if s.value_type is ValueType.cn_mobile})
        if len(phones) >= CONTACT_BOOK:
            where = next(s.found_in for s in walk.found.values() if s.value_type is ValueType.cn_mobile)
            walk._add("contacts", where, ValueType.list, "|".join(phones))
        per_field: Counter[str] = Counter()
        kept = []
        for (fid, _, _), sighting in walk.found.items():
            per_field[fid] += 1
            if per_field[fid] <= MAX_SIGHTINGS_PER_FIELD:
                kept.append(sighting)
        return kept


class _Walk:
    """One request's values, walked once: nested JSON, JSON or gzip+base64 inside strings."""

    def __init__(self, r: Recognizer):
        self.r = r
        self.found: dict[tuple[str, FoundIn, str], Sighting] = {}
        self.nodes = 0

    def body(self, text: str, mime: str) -> None:
        kind, _, rest = mime.partition(";")
        kind = kind.strip().lower()
        if text.lstrip()[:1] in ("{", "[") and (decoded := decode_nested(text)) is not None:
            # JSON whatever the content type says: parsed as a form, it was cut at a base64 pad's
            # `=` (mitmproxy splits only urlencoded bodies: a review)
            self._read(FoundIn.json, None, decoded, 0)
        elif kind == "application/x-www-form-urlencoded":
            self.form(parse_qsl(text, keep_blank_values=True))
        elif kind == "multipart/form-data" and (boundary := _boundary(rest)):
            self.form(_multipart(text, boundary))
        else:
            self.value(FoundIn.json if "json" in kind else FoundIn.text, None, text, 0)

    def form(self, pairs: list[tuple[str, str]]) -> None:
        for name, value in pairs:
            if not value and (decoded := decode_nested(name)) is not None:
                # a JSON body sent as a form: the capture parsed it into one name without a value
                self._read(FoundIn.json, None, decoded, 0)
            else:
                self.value(FoundIn.form, name, value, 0)

    def value(self, where: FoundIn, key: str | None, value: Any, depth: int) -> None:
        """A key names a field (unless its value is a stand-in); a value of a recognized form under
        a key that does not already carry that form is its own field (a phone number sent as a
        user id is a phone number); an SMS code inside a text is one too."""
        self.nodes += 1
        if self.nodes > MAX_NODES or depth > MAX_DEPTH:
            return
        if isinstance(value, str):
            nested = decode_nested(value)
            if nested is not None:
                value, where = nested, FoundIn.json
            elif "?" in value and "=" in value and _URL.match(value):
                # a URL an SDK reports (an APM's traced request): its query names fields of its own
                # (a probe's Tingyun trace of `/api/acct?mobile=138...&cardNo=6222...` found none),
                # and a page's hash route its own (`/h5/#/transfer?cardNo=...`, an H5 page's address)
                parts = urlsplit(value.strip())
                routed = parts.fragment.partition("?")[2]
                for name, inner in parse_qsl(f"{parts.query}&{routed}", keep_blank_values=True):
                    self.value(FoundIn.query, name, inner, depth + 1)
            elif len(value) > 16 and (not value.isascii() or not _TOKEN.fullmatch(value)):
                # free text (a crash message, a log line, a CSV or vCard file, `k:v;k:v`, a binary
                # body's strings: any value that is no one token; a probe's contact book as CSV was
                # read only once spaces parted its numbers): the personal numbers in it, and the
                # names it gives them (`idNo=1101...X`: a probe's was no field); a name whose value
                # is no such number says nothing (`mobile=true`, `tel:95526`, `gps: disabled` were
                # false fields, a review found), unless it names a secret and the value holds a
                # digit (`cvv2=847`, `password=Tr0ub4dor`; `password: incorrect` is none); the
                # first FREE_TEXT characters
                said = value[:FREE_TEXT]
                for name, inner in _SAID.findall(said):
                    if recognize(inner) is not None or (
                        self.r.field_of(name) in self.r.secrets
                        and _DIGIT.search(inner)
                        and not no_secret(inner)
                    ):
                        self.value(FoundIn.json, name, inner, depth + 1)
                for found in numbers_in(said):
                    self._own_field(where, found)
        self._read(where, key, value, depth)

    def _read(self, where: FoundIn, key: str | None, value: Any, depth: int) -> None:
        """A value as it is (a string already decoded): the field its key names, its own form's."""
        fid = self.r.field_of(key) if key else None
        if isinstance(value, dict | list):
            if fid is not None and value:
                self._add(
                    fid, where, _shape(value), orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
                )
            for k, v in (
                value.items() if isinstance(value, dict) else ((None if fid else key, v) for v in value)
            ):
                # a number used as a key (a contact book as {phone: name}: a probe's was no field)
                as_key = recognize(str(k)) if isinstance(value, dict) else None
                if as_key is not None:
                    self._own_field(where, as_key)
                self.value(where, k if k is None else str(k), v, depth + 1)
            return
        if _placeholder(value):
            return
        text = value if isinstance(value, str) else str(value)
        found = None if isinstance(value, bool | float) else recognize(text)
        if found is None and isinstance(value, str) and len(text) > 8 and (m := _SMS.search(text)):
            found = (ValueType.sms_code, m.group(1))
        carried = self.r.carries.get(fid, frozenset()) if fid else frozenset()
        if fid in self.r.secrets and no_secret(text):
            fid = None  # a flag or a mask (`hasPwd: true`, `pwd: ******`): the secret was not sent
        if fid is not None:
            if found is None and ValueType.sms_code in carried and _CODE.fullmatch(text):
                found = (ValueType.sms_code, text)
            vt, canonical = found or (_shape(value), text)
            self._add(fid, where, vt, canonical)
        if found is not None and found[0] not in carried:
            self._own_field(where, found)

    def _own_field(self, where: FoundIn, found: tuple[ValueType, str]) -> None:
        """A value of a recognized form is the field that form is (a phone number is `mobile`)."""
        other = self.r.value_field.get(found[0])
        if other is not None:
            self._add(other, where, *found)

    def _add(self, fid: str, where: FoundIn, vt: ValueType, canonical: str) -> None:
        fp = self.r.fingerprint(f"{vt.value}:{canonical}")
        self.found.setdefault((fid, where, fp), Sighting(fid, where, vt, fp))


_URL = re.compile(r"\s*(?:https?|wss?)://[^\s?]+\?[^\s]*\s*$", re.I)  # a whole URL with a query, nothing else
_SAID = re.compile(r"([A-Za-z_][\w.-]{1,40})\s*[=:]\s*([^\s&,;，；]{3,64})")  # `idNo=1101...` inside a text
_DIGIT = re.compile(r"\d")
# one token, as an id, a version, a URL, base64 or a MAC is: no free text
_TOKEN = re.compile(r"[\w+/=.:@#%-]*")
# what stands in a secret's place when the secret is not sent (a critical alert opens a leakage
# incident, so each of these was a false one, a probe's): a flag or a state (`showPwd: visible`,
# `payPwd: SET`, 已设置), a count of one or two digits (`forgetPwd: 2`: no card code or PIN is that
# short), a mask (`******`, `●●●●●●`, `***(len=8)`), a placeholder (`[REDACTED]`, `<hidden>`, `{1}`,
# `?2`, `%1$s`, `${pwd}`), a page's URL or path (`resetPwd: /user/resetPwd.html`), an algorithm's
# name (`encryptPwd: SM2`)
_NO_SECRET = re.compile(
    r"true|false|yes|no|on|off|[yn]|n/?a|null|none|nil|set|unset|not_?set|enabled|disabled|visible|hidden|"
    r"encrypted|masked|required|optional|已设置|未设置|已加密|已隐藏|隐藏|显示|"
    r"[0-9]{1,2}|[*•●○·xX#]+(?:\s*\(len(?:gth)?[=:]\s*\d+\))?|"
    r"\[[A-Za-z][\w -]*\]|<[A-Za-z][\w:. -]*>|\{\d+\}|\$\{[A-Za-z_][\w.]*\}|\?\d*|%(?:\d+\$)?[sd]|"
    r"(?:https?://|#/)\S*|/[^/\s]+/\S*|\S+\.html?(?:[?#]\S*)?|"
    # an algorithm's name, alone or with its key size or mode: `sm2024` or `des123456` is a password
    r"rsa(?:[-_]?(?:1024|2048|3072|4096))?|sm[234]|aes(?:[-_]?(?:128|192|256))?(?:[-_]?(?:gcm|cbc|ecb))?|"
    r"3?des|md5|sha(?:[-_]?(?:1|224|256|384|512))?|bcrypt|pbkdf2",
    re.IGNORECASE,
)


def no_secret(text: str) -> bool:
    """What stands in a secret's place is no secret (`_NO_SECRET`), its quotes and the punctuation a
    text closes it with aside (`u.password=?2)`)."""
    said = text.strip().strip("'\"")
    return bool(_NO_SECRET.fullmatch(said) or _NO_SECRET.fullmatch(said.rstrip(").,;:")))


def decode_nested(text: str) -> Any | None:
    """JSON in a string (`data={"imei": ...}`), or base64 of it, or gzip+base64 of it, the way
    analytics SDKs post their batches (`data_list=H4sI...`), in either base64 alphabet; a query string
    in base64 as its pairs; None when the string is a plain value. A probe hid an ID number in each of
    URL-safe gzip+base64, gzip of JSON after a byte-order mark or a newline, base64 of pretty-printed
    JSON and base64 of a query string."""
    t = text.strip()
    if t[:1] in ("{", "[") and t[-1:] in ("}", "]"):
        try:
            return orjson.loads(t)
        except orjson.JSONDecodeError:
            return None
    if any(c.isspace() for c in t):  # MIME base64 (Android's Base64.DEFAULT) breaks its lines
        t = "".join(t.split())
    if len(t) < 8 or not _BASE64.fullmatch(t):
        return None
    if len(t) >= 16 and t[:2].lower() in _HEX_HEADS and _HEX.fullmatch(t):
        # hex of JSON or of gzip (`7b226d6f...`: a probe's phone number to a map SDK went unread)
        raw = bytes.fromhex(t)
        if raw[:2] != b"\x1f\x8b":
            return _read_decoded(raw, inflated=False)
        try:
            return _read_decoded(zlib.decompressobj(wbits=31).decompress(raw, MAX_INFLATED), inflated=True)
        except zlib.error:
            return None
    standard = t.translate(_URLSAFE)
    if t.startswith("H4sI") and len(t) >= 20:  # base64 of a gzip header
        try:
            raw = base64.b64decode(standard + "=" * (-len(t) % 4))
            return _read_decoded(zlib.decompressobj(wbits=31).decompress(raw, MAX_INFLATED), inflated=True)
        except (binascii.Error, zlib.error, ValueError):
            return None
    if t[0] in "eWYZabcd":  # base64 of `{`, `[`, or a query string's first letter: kept if it reads
        try:
            return _read_decoded(base64.b64decode(standard + "=" * (-len(t) % 4)), inflated=False)
        except (binascii.Error, ValueError):
            return None
    return None


_BASE64 = re.compile(r"[A-Za-z0-9+/_-]+={0,2}")
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})+")
_HEX_HEADS = ("7b", "5b", "1f")  # `{`, `[`, gzip's first byte
_URLSAFE = str.maketrans("-_", "+/")
_QUERY = re.compile(r"[A-Za-z_][\w.-]*=[^&=]*(?:&[A-Za-z_][\w.-]*=[^&=]*)+")


def _read_decoded(data: bytes, inflated: bool) -> Any | None:
    """What decoded bytes hold: JSON (after a byte-order mark or whitespace), a query string's
    pairs; an inflated text as it is; None for anything else (a base64-looking plain value)."""
    body = data.lstrip(b"\xef\xbb\xbf \t\r\n")
    if body[:1] in (b"{", b"["):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("utf-8", "replace") if inflated else None
    if _QUERY.fullmatch(text.strip()):
        return dict(parse_qsl(text.strip(), keep_blank_values=True))
    return text if inflated else None


def _boundary(params: str) -> str | None:
    for param in params.split(";"):
        name, _, value = param.strip().partition("=")
        if name.lower() == "boundary" and value:
            return value.strip('"')
    return None


def _multipart(text: str, boundary: str) -> list[tuple[str, str]]:
    """(name, value) of each part of a multipart/form-data body; a file part's bytes are its value."""
    out = []
    for part in text.split(f"--{boundary}")[1:]:
        head, sep, value = part.partition("\r\n\r\n") if "\r\n\r\n" in part else part.partition("\n\n")
        name = re.search(r'\bname="([^"]*)"', head)
        if sep and name:
            out.append((name.group(1), value.removesuffix("\r\n").removesuffix("\n")))
    return out


__all__ = ["CapturedRequest", "Recognizer", "Sighting", "decode_nested", "recognize", "redact_path"]
