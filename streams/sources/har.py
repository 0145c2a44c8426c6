"""HAR 1.2 captures (mitmproxy `hardump`, Charles, browser devtools) as SDK telemetry (docs/har.md).

Each captured request becomes one SdkTelemetryEvent on the SDK stream: the app, time, SDK
(`sdk_attribution`), host, path, method and the fields found in its query, form, JSON body,
headers and cookies (`data_types`), each as a sighting with where it was, its form and a keyed
fingerprint: the values themselves are never kept, nor the query string. The capture's timeline
judges consent: requests before the app's privacy-policy agreement call (traffic.yaml
`consent_endpoints`), or after its withdrawal (`withdrawal_endpoints`, or a declining agreement
call) until a new agreement, are collection without consent. The bank's own (first-party) requests are no
SDK's and are skipped, counted.

`ship_capture` and `record_of` are what `lifemon ship --format har` sends; `HarParser` is the
raw-topic source (`raw_sources.har`): one HAR document, or one entry, per record.
"""

from __future__ import annotations

import hashlib
import json
import re
import typing
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import msgspec
import orjson

from policy.model import Policy, key_form
from policy.sdk_declarations import SdkDeclarations
from policy.traffic import Traffic
from schemas.structs import STRICT
from streams.codecs import DeadLetter, RawRecord
from streams.config import Config
from streams.personal_numbers import NumberSeal
from streams.sources.data_types import (
    MAX_DEPTH,
    MAX_NODES,
    CapturedRequest,
    Recognizer,
    decode_nested,
    redact_path,
)
from streams.sources.envelope import EnvelopeError, Line
from streams.sources.records import Parsed
from streams.sources.sdk_attribution import Attributor, Tracker, load_signatures

SdkEvent = STRICT["sdk"]
Sighting = typing.get_args(next(f.type for f in msgspec.structs.fields(SdkEvent) if f.name == "sightings"))[0]


class HarError(ValueError):
    """A document or entry that is no HAR lifemon can read; the message says what is missing."""


@dataclass(frozen=True, slots=True)
class CaptureContext:
    """What a HAR file does not say: whose app, which version, which device."""

    app_id: str
    app_version: str
    device_id: str
    consented_at: int | None = None  # the agreement's time when known outside the capture; 0: before it


@dataclass
class HarCapture:
    events: list[Any] = field(default_factory=list)  # SDK stream structs, in timeline order
    skipped: Counter = field(default_factory=Counter)  # reason -> requests
    consent_ts: int | None = None  # the first agreement
    withdrawals: int = 0


@dataclass(frozen=True, slots=True)
class ConsentTimeline:
    """When the user agreed to the privacy policy and when they withdrew (sorted times). A request
    in the very millisecond of either counts as consented: which of two requests of one millisecond
    came first, a capture's order cannot say, and the verdict must not depend on how it was written."""

    agreed: list[int]
    withdrawn: list[int]

    def consented(self, ts: int) -> bool:
        """An agreement at or before ts, and no withdrawal from it until before ts (seed 004 §五.(三):
        after 关闭授权 collection stops; a later agreement opens a new span)."""
        i = bisect_right(self.agreed, ts)
        if i == 0:
            return False
        j = bisect_left(self.withdrawn, self.agreed[i - 1])
        return j == len(self.withdrawn) or self.withdrawn[j] >= ts


def har_entries(doc: Any) -> list[dict[str, Any]]:
    """The entries of a HAR document (`{"log": {"entries": [...]}}`) or a single entry."""
    if isinstance(doc, dict) and isinstance(doc.get("log"), dict):
        entries = doc["log"].get("entries")
        if not isinstance(entries, list):
            raise HarError("`log.entries` is missing or not a list")
        return entries
    if isinstance(doc, dict) and "request" in doc:
        return [doc]
    raise HarError('neither a HAR document ({"log": {"entries": ...}}) nor a HAR entry ({"request": ...})')


def captured_request(entry: Any) -> CapturedRequest:
    """The parts of a HAR entry that recognition needs; HarError names what is missing."""
    if not isinstance(entry, dict) or not isinstance(entry.get("request"), dict):
        raise HarError("entry without a `request` object")
    req = entry["request"]
    url = req.get("url")
    if not isinstance(url, str) or not url:
        raise HarError("request without a `url`")
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:  # `http://[::1/`, a host NFKC would change: said without the URL's text
        raise HarError(
            "request URL that is not a URL (a bracketed host unclosed or not an IPv6 address, a host NFKC would change)"
        ) from None
    if not host:
        raise HarError("request URL without a host")
    started = entry.get("startedDateTime")
    if not isinstance(started, str):
        raise HarError("entry without `startedDateTime`")
    try:
        ts = round(datetime.fromisoformat(started.replace("Z", "+00:00")).timestamp() * 1000)
    except (ValueError, OverflowError):
        raise HarError("`startedDateTime` is not an ISO 8601 time") from None
    post = req.get("postData") if isinstance(req.get("postData"), dict) else {}
    text = post.get("text") if isinstance(post.get("text"), str) else None
    # a JSON body a capture also split as a form (mitmproxy cuts it at any `=`, a base64 pad's too:
    # a probe's X5 request gave no field) is read as the JSON it is
    params = [] if text is not None and text.lstrip()[:1] in ("{", "[") else _pairs(post.get("params"))
    response: dict[str, Any] = entry["response"] if isinstance(entry.get("response"), dict) else {}
    return CapturedRequest(
        ts_ms=ts,
        method=str(req.get("method") or "GET").upper(),
        # without the root's dot (`MBANK.BJBANK.EXAMPLE.`, RFC 3986 §3.2.2): an SDK endpoint on the
        # bank's host was skipped as first-party, the agreement call was none (probe_t1 F9b)
        host=host.lower().rstrip("."),
        path=unquote(parts.path) or "/",
        query=_pairs(req.get("queryString")) or parse_qsl(parts.query, keep_blank_values=True),
        headers=_pairs(req.get("headers")),
        # the cookie list, and the Cookie header's pairs a capture left out of it (a probe's hid two)
        cookies=_cookies(_pairs(req.get("cookies")), _pairs(req.get("headers"))),
        form=params or None,  # mitmproxy writes `params: []` for a JSON body: the text holds it
        body=text,
        mime=str(post.get("mimeType") or ""),
        status=response.get("status") if isinstance(response.get("status"), int) else None,
    )


# the field of an agreement call that says whether the user agreed, by its key form (`isAgree`); a
# field that only names a version or an optional extra (`agreeVersion`, `acceptMarketing`) is none;
# a status or flag of the agreement says it too (`agreeStatus: 0`, a probe's counted as agreement)
_ASKED = frozenset(
    {
        "agree", "agreed", "isagree", "isagreed", "consent", "consented", "isconsent", "accept", "accepted",
        "isaccept", "agreestatus", "agreeflag", "consentstatus", "consentflag", "acceptstatus", "同意",
        "同意状态", "是否同意",
    }
)  # fmt: skip
_DECLINED = frozenset(
    {
        "false",
        "0",
        "-1",
        "no",
        "n",
        "reject",
        "rejected",
        "refuse",
        "refused",
        "decline",
        "declined",
        "disagree",
        "拒绝",
        "不同意",
        "否",
    }
)
_AFFIRMED = frozenset({"true", "1", "yes", "y", "agree", "agreed", "accept", "accepted", "同意", "是"})


def declined(req: CapturedRequest, privacy: PrivacyWords | None = None) -> bool:
    """A call to the agreement endpoint says the user declined: a field `agree` (`isAgree`, 同意, ...)
    saying no, wherever the app put it. Apps sign their calls in an envelope (`{"data": {"agree":
    false}, "sign": ...}`, a probe's counted as agreement), sometimes as a JSON string. The outermost
    answers decide, and one saying yes among them outweighs one saying no: a list of documents
    agreed one by one (`[{"code": "privacy", "agree": 1}, {"code": "marketing", "agree": 0}]`)
    agrees to the privacy policy; where an answer names the privacy policy itself, it alone decides
    (a probe's privacy "no" beside a personalized ads "yes" counted as agreement). `privacy`: the
    words naming it, the policy's agreement's names among them (`PrivacyWords`)."""
    body = decode_nested(req.body) if req.body else None
    own = [str(v).strip().lower() for v in _privacy_answers(body, privacy or PrivacyWords())]
    if own:
        return bool(set(own) & _DECLINED) and not set(own) & _AFFIRMED
    answers: list[tuple[int, str]] = []
    for depth, key, value in islice(_fields_said(req, body), MAX_NODES):
        if key in _ASKED:
            answers.append((depth, str(value).strip().lower()))
    if not answers:
        return False
    top = min(depth for depth, _ in answers)
    said = {value for depth, value in answers if depth == top}
    return bool(said & _DECLINED) and not said & _AFFIRMED


# a document of a child's or a minor's privacy (儿童个人信息保护规则, `child_privacy`: PIPL art. 31
# has its own) is another document than the privacy policy, whatever privacy word it holds: an
# adult's "yes" to it answered nothing of the privacy policy's "no" beside it
_ANOTHER_SUBJECT = re.compile(r"child|kid|minor|teen|juvenile|儿童|未成年|青少年|少儿")


class PrivacyWords:
    """What names the privacy policy among an agreement call's documents: `privacy` and 隐私 and
    the policy's agreement's id and names (purposes.yaml `agreements`: a bank's 个人信息保护政策 or
    `pipp`, a probe's declined one beside an accepted marketing item counted as agreement), inside
    a name in any case and spacing; a child's or a minor's document is none."""

    def __init__(self, names: Iterable[str] = ()):
        self.words = tuple(dict.fromkeys(w for w in map(key_form, ("privacy", "隐私", *names)) if w))

    def __call__(self, name: Any) -> bool:
        said = key_form(str(name))
        return any(w in said for w in self.words) and not _ANOTHER_SUBJECT.search(said)


def _privacy_answers(body: Any, privacy: PrivacyWords) -> list[Any]:
    """The answers that name the privacy policy in a request's decoded body: an agreement field
    beside a value naming it (`{"type": "privacy", "agree": false}`), or a field naming it inside an
    agreement field (`{"consent": {"privacy": false, "ads": true}}`)."""
    found: list[Any] = []

    def walk(node: Any, depth: int) -> None:
        if depth > MAX_DEPTH or len(found) > 16:
            return
        if isinstance(node, list):
            for item in node:
                walk(item, depth + 1)
            return
        if not isinstance(node, dict):
            return
        asked = [k for k in node if key_form(str(k)) in _ASKED]
        names = [v for k, v in node.items() if k not in asked and isinstance(v, str)]
        if asked and any(map(privacy, names)):
            found.extend(node[k] for k in asked if not isinstance(node[k], dict | list))
        for k in asked:
            if isinstance(node[k], dict):
                found.extend(v for n, v in node[k].items() if privacy(n))
        for value in node.values():
            walk(decode_nested(value) if isinstance(value, str) else value, depth + 1)

    walk(body, 0)
    return [a for a in found if not isinstance(a, dict | list)]


def _fields_said(req: CapturedRequest, body: Any) -> Iterator[tuple[int, str, Any]]:
    """(depth, key form, value) of each field of a request's form, query and decoded body, nested
    ones too."""
    yield from _walk_fields([*(req.form or []), *req.query], 0)
    if isinstance(body, dict | list):
        yield from _walk_fields(_items(body), 0)


def _walk_fields(items: Iterable[tuple[Any, Any]], depth: int) -> Iterator[tuple[int, str, Any]]:
    if depth > MAX_DEPTH:
        return
    for key, value in items:
        if key is not None:
            yield depth, key_form(str(key)), value
        inner = decode_nested(value) if isinstance(value, str) else value
        if isinstance(inner, dict | list):
            yield from _walk_fields(_items(inner), depth + 1)


def _items(value: dict[Any, Any] | list[Any]) -> Iterable[tuple[Any, Any]]:
    return value.items() if isinstance(value, dict) else ((None, v) for v in value)


def _cookies(listed: list[tuple[str, str]], headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The request's cookies: its cookie list, and the pairs of its Cookie headers not in it; a value
    in double quotes as the value inside them (RFC 6265 allows the quotes)."""
    said = [
        (name.strip(), value.strip())
        for key, line in headers
        if key.lower() == "cookie"
        for name, _, value in (part.partition("=") for part in line.split(";"))
        if name.strip()
    ]
    return [
        (name, value[1:-1] if len(value) > 1 and value[0] == value[-1] == '"' else value)
        for name, value in dict.fromkeys([*listed, *said])
    ]


def _pairs(items: Any) -> list[tuple[str, str]]:
    """HAR name/value lists (query, headers, cookies, params); a file part has no value to read."""
    if not isinstance(items, list):
        return []
    return [
        (str(i["name"]), i["value"] if isinstance(i.get("value"), str) else "")
        for i in items
        if isinstance(i, dict) and "name" in i
    ]


def privacy_words(policy: Policy) -> PrivacyWords:
    """The privacy policy's words for a policy: its agreement's names, the one sdk_overcollection
    reads (`consent_purpose`, unset the one agreement declared), or every agreement's where none
    is chosen."""
    section = policy.detectors.get("sdk_overcollection")
    written = section.params.get("consent_purpose") if section else None
    purposes = policy.purposes
    return PrivacyWords(purposes.agreement_names(purposes.agreement(str(written) if written else None)))


class HarConverter:
    """Captured requests -> SDK telemetry, against the policy and an optional tracker signature file."""

    def __init__(
        self,
        decl: SdkDeclarations,
        traffic: Traffic,
        fingerprint: Callable[[str], str],
        trackers: list[Tracker] | None = None,
        privacy: PrivacyWords | None = None,
    ):
        self.attributor = Attributor(decl, traffic, trackers)
        self.privacy = privacy or PrivacyWords()
        self.recognizer = Recognizer(traffic, decl.fields, fingerprint)
        self.fingerprint = fingerprint
        # an unknown host names its SDK: one built from a card or phone number keeps it sealed
        self.seal = NumberSeal(fingerprint).text

    @classmethod
    def for_config(cls, config: Config, signatures: Path | None, ephemeral_key: bool = False) -> HarConverter:
        """The converter for the configured policy, fingerprints keyed by LIFEMON_PSEUDONYM_KEY (a
        one-off key only where nothing outlives the run: the embedded broker)."""
        from policy import load_policy
        from policy.traffic import load_traffic
        from streams.pseudonym import Pseudonymizer

        policy = load_policy(config.policy_dir)
        sdks = policy.sdks
        return cls(
            SdkDeclarations(sdks, policy.classification.fields, policy.vocabulary),
            load_traffic(config.policy_dir, sdks),
            Pseudonymizer.from_env(allow_ephemeral=ephemeral_key).digest,
            load_signatures(signatures) if signatures else None,
            privacy_words(policy),
        )

    def convert(self, entries: list[Any], ctx: CaptureContext) -> HarCapture:
        out = HarCapture()
        requests = []
        for entry in entries:
            try:
                requests.append(captured_request(entry))
            except HarError as e:
                out.skipped[f"unreadable entry: {e}"] += 1
        requests.sort(key=lambda r: r.ts_ms)  # the capture's timeline, whatever order it was written in
        timeline = self._timeline(requests, ctx)
        out.consent_ts = timeline.agreed[0] if timeline.agreed else None
        out.withdrawals = len(timeline.withdrawn)
        for req in requests:
            owner = self.attributor.owner(req.host, req.path)
            if owner is None:
                out.skipped["first-party request"] += 1
                continue
            sightings = self.recognizer.sightings(req)
            if self.recognizer.sampled:
                out.skipped[f"SDK request body sampled: its first {MAX_NODES:,} values read"] += 1
            if not sightings and req.body and _UNREADABLE.search(req.body):
                # a body no decoder reads (binary, a compression without its header): the request is
                # still judged by what else it carries, and the capture says a body went unread
                out.skipped["SDK request body unreadable (binary or undecoded)"] += 1
            out.events.append(
                SdkEvent(
                    event_id=self._event_id(req, ctx),
                    ts=req.ts_ms,
                    app_id=ctx.app_id,
                    app_version=ctx.app_version,
                    device_id=ctx.device_id,
                    sdk_id=self.seal(owner.sdk_id),
                    fields=sorted({s.field for s in sightings}),
                    dest_host=self.seal(req.host),
                    policy_consented=timeline.consented(req.ts_ms),
                    dest_country=self.attributor.country(req.host),
                    method=req.method,
                    dest_path=redact_path(req.path)[:256],
                    attribution=owner.how,
                    sightings=[
                        Sighting(
                            field=s.field,
                            found_in=s.found_in,
                            value_type=s.value_type,
                            fingerprint=s.fingerprint,
                        )
                        for s in sightings
                    ],
                )
            )
        return out

    def _timeline(self, requests: list[CapturedRequest], ctx: CaptureContext) -> ConsentTimeline:
        """The agreements and withdrawals of a capture. A withdrawal is the user's: a call to a
        withdrawal endpoint, or one to the agreement endpoint that declines, counts whatever the
        server answered (a failure to record it leaves no consent to collect under)."""
        agreements = [] if ctx.consented_at is None else [ctx.consented_at]
        withdrawals = []
        for req in requests:
            if self.attributor.is_withdrawal(req.method, req.host, req.path):
                withdrawals.append(req.ts_ms)
            elif self.attributor.is_consent(req.method, req.host, req.path):
                if declined(req, self.privacy):
                    withdrawals.append(req.ts_ms)
                # an agreement the server refused (a status of 400 or more: a probe's 500 counted as
                # consent) is none; 0, a cached response, and a redirect are no refusal
                elif req.status is None or req.status < 400:
                    agreements.append(req.ts_ms)
        return ConsentTimeline(sorted(agreements), withdrawals)

    def _event_id(self, req: CapturedRequest, ctx: CaptureContext) -> str:
        """Deterministic (a re-shipped capture is the same events) and keyed: the request's text
        may hold an IMEI, so even its hash is only ever a keyed one."""
        body = hashlib.sha256((req.body or "").encode()).hexdigest()
        text = f"event|{ctx.device_id}|{req.ts_ms}|{req.method}|{req.host}|{req.path}|{req.query}|{req.form}|{body}"
        return "har-" + self.fingerprint(text)[3:]


# what a text body holds when no decoder could read it: a replacement character (bytes that were no
# UTF-8) or a control character other than whitespace
_UNREADABLE = re.compile("[\ufffd\x00-\x08\x0e-\x1f]")


def loads(data: bytes | str) -> Any:
    """A HAR document's JSON. mitmproxy writes a body that is no UTF-8 (an SDK's gzip posted as
    application/json without Content-Encoding) as lone-surrogate escapes (`\\udc8b`), which JSON
    allows and orjson refuses: one such body made a probe's whole capture "not JSON", its other 24
    requests unjudged. Such a document is read by the standard library, each lone surrogate a
    U+FFFD (the body unreadable, the capture read)."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as e:
        if "surrogate" not in str(e):
            raise
        try:
            doc = json.loads(data)
        except ValueError:  # no JSON at all, or bytes that are no UTF-8: orjson's reason stands
            raise e from None
    return _without_surrogates(doc)


def _without_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    if isinstance(value, dict):
        return {_without_surrogates(k): _without_surrogates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_surrogates(v) for v in value]
    return value


def ship_capture(data: bytes, converter: HarConverter, ctx: CaptureContext) -> HarCapture:
    """A HAR file's bytes as a capture: what `lifemon ship --format har` sends, each event as a
    record keyed by its SDK (`record_of`). HarError says why a file is no HAR."""
    try:
        doc = loads(data)
    except json.JSONDecodeError as e:  # orjson's is one
        raise HarError(f"not JSON ({e.args[0]})") from None
    return converter.convert(har_entries(doc), ctx)


def record_of(event: Any) -> tuple[bytes, bytes, int]:
    """(key, value, Kafka timestamp) of an SDK event: keyed as the SDK topic is, stamped with the
    request's time as a log shipper stamps a line."""
    return event.sdk_id.encode(), msgspec.json.encode(event), event.ts


class HarParser:
    """The raw-topic source: each record one HAR document (a capture, its own timeline) or one
    entry, as plain JSON or in a shipper's envelope (`message`). The app and version come from the
    source's config, the device from the record key."""

    def __init__(self, converter: HarConverter, app_id: str, app_version: str, consented_before: bool):
        self.converter = converter
        self.app_id, self.app_version = app_id, app_version
        self.consented_at = 0 if consented_before else None

    @classmethod
    def for_config(cls, config: Config) -> HarParser:
        har = config.raw_sources.har
        converter = HarConverter.for_config(config, har.signatures, ephemeral_key=not config.kafka.bootstrap)
        return cls(converter, har.app_id, har.app_version, har.consented_before_capture)

    @staticmethod
    def unwrap(value: bytes) -> Line:
        """The HAR JSON itself, or the `message` text of a Filebeat / Vector / Fluent Bit envelope."""
        try:
            doc = loads(value)
        except json.JSONDecodeError as e:  # orjson's is one
            raise EnvelopeError(f"HAR: not JSON ({e.args[0]})") from None
        text = doc.get("message", doc.get("log")) if isinstance(doc, dict) else None
        if isinstance(text, str):
            return Line(text)
        return Line(value.decode())

    def parse(
        self, items: list[tuple[RawRecord, Line]], carry: dict[str, Any], final: bool = False
    ) -> Parsed:
        """Each record is a whole capture or entry: nothing waits in `carry` for the next batch."""
        out = Parsed()
        for raw, line in items:
            try:
                entries = har_entries(loads(line.text))
            except (json.JSONDecodeError, HarError) as e:
                reason = e.args[0] if isinstance(e, HarError) else f"not JSON ({e.args[0]})"
                out.dead.append(DeadLetter(raw, "unparsed", "value", f"HAR: {reason}"))
                continue
            device = raw.key.decode("utf-8", "replace") if raw.key else "capture"
            ctx = CaptureContext(self.app_id, self.app_version, device, self.consented_at)
            capture = self.converter.convert(entries, ctx)
            out.skipped.update({f"har: {k}": v for k, v in capture.skipped.items()})
            out.found += [(raw, ev) for ev in capture.events]
        return out


__all__ = [
    "CaptureContext",
    "HarCapture",
    "HarConverter",
    "HarError",
    "HarParser",
    "har_entries",
    "record_of",
    "ship_capture",
]
