"""HAR captures as SDK telemetry, without a broker: reading HAR 1.2, SDK attribution in its order,
data types by key and by value (with the near misses that must not count), the capture's consent
timeline, values never kept, policy and signature-file errors that teach, and the converted
events judged by the real sdk_overcollection detector through the Engine."""

from __future__ import annotations

import base64
import gzip
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import msgspec
import pytest
from test_sdk_overcollection import make_engine, rules, run

from detectors import load_detectors
from policy import DEFAULT_DIR, PolicyError, load_policy
from policy.catalog import Catalog
from policy.model import KnownSdk
from policy.sdk_declarations import SdkDeclarations
from policy.traffic import load_traffic
from schemas.models import Attribution, FoundIn, SdkTelemetryEvent, ValueType
from streams.config import load_config
from streams.engine import Engine
from streams.pseudonym import Pseudonymizer
from streams.sources.har import CaptureContext, HarConverter, HarError, captured_request, har_entries
from streams.sources.sdk_attribution import Attributor, Owner, load_signatures

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "har"
SIGNATURES = FIXTURES / "exodus_trackers.json"
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
IMEI, IMEI_BAD = "490154203237518", "490154203237517"  # the second fails the Luhn check digit
RIC, RIC_BAD = "11010519491231002X", "110105194912310021"  # the second has a wrong ISO 7064 check
CARD, CARD_BAD = "6222021234567894", "6222021234567890"
PHONE = "13812345678"
KEY = b"har-unit-test-key-0123456789"
AMAP = "https://restsdk.amap.com/v3/log"
TINGYUN = "https://wkrd.tingyun.com/data"


def entry(url: str, method: str = "GET", at: int = 0, **kw: Any) -> dict[str, Any]:
    """A HAR 1.2 entry `at` ms after T0; json= / form= / text= bodies, headers= / cookies= pairs."""
    started = datetime.fromtimestamp((T0 + at) / 1000, UTC).isoformat()
    req: dict[str, Any] = {
        "method": method,
        "url": url,
        "httpVersion": "HTTP/1.1",
        "headers": [{"name": n, "value": v} for n, v in kw.get("headers", ())],
        "cookies": [{"name": n, "value": v} for n, v in kw.get("cookies", ())],
        "queryString": [],
        "headersSize": -1,
        "bodySize": -1,
    }
    if "json" in kw:
        req["postData"] = {"mimeType": "application/json", "text": json.dumps(kw["json"], ensure_ascii=False)}
    if "form" in kw:
        pairs = list(kw["form"].items())
        req["postData"] = {
            "mimeType": "application/x-www-form-urlencoded",
            "text": urlencode(pairs),
            "params": [{"name": n, "value": v} for n, v in pairs],
        }
    if "text" in kw:
        req["postData"] = {"mimeType": "text/plain", "text": kw["text"]}
    return {"startedDateTime": started, "time": 1, "request": req, "response": {}, "cache": {}, "timings": {}}


def har(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"log": {"version": "1.2", "creator": {"name": "test", "version": "1"}, "entries": list(entries)}}


@pytest.fixture(scope="module")
def converter(policy) -> HarConverter:
    return HarConverter(
        Catalog(policy).sdk,
        load_traffic(None, policy.sdks),
        Pseudonymizer(KEY).digest,
        load_signatures(SIGNATURES),
    )


def convert(converter: HarConverter, *entries: dict[str, Any], consented_at: int | None = 0) -> list[Any]:
    ctx = CaptureContext("cn.bank.mobilebanking", "9.2.0", "D1", consented_at)
    return converter.convert(har_entries(har(*entries)), ctx).events


def fields_of(converter: HarConverter, e: dict[str, Any]) -> dict[str, set[tuple[FoundIn, ValueType]]]:
    (ev,) = convert(converter, e)
    out: dict[str, set[tuple[FoundIn, ValueType]]] = {}
    for s in ev.sightings:
        out.setdefault(s.field, set()).add((s.found_in, s.value_type))
    assert sorted(out) == ev.fields
    return out


# -- reading HAR ---------------------------------------------------------------------------------
def test_documents_entries_and_what_is_no_har() -> None:
    one = entry("https://tmf.qq.com/a")
    assert har_entries(har(one, one)) == [one, one] and har_entries(one) == [one]
    for bad, why in (
        ({"log": {"entries": None}}, "log.entries"),
        ([1, 2], "neither a HAR document"),
        ({"log": {}}, "log.entries"),
    ):
        with pytest.raises(HarError, match=why):
            har_entries(bad)
    for broken, why in (
        ({**one, "request": {"url": "http://[::1/collect"}}, "not a URL"),
        ({**one, "request": {"url": "http://[zz]/"}}, "not a URL"),
        ({**one, "request": {"url": "http://\u2100.com/"}}, "not a URL"),
        ({"request": {"url": "https://x.cn/"}}, "startedDateTime"),
        ({**one, "startedDateTime": "yesterday"}, "ISO 8601"),
        ({**one, "request": {"method": "GET"}}, "url"),
        ({**one, "request": {"url": "/relative/only"}}, "host"),
    ):
        with pytest.raises(HarError, match=why):
            captured_request(broken)


def test_query_from_the_url_when_the_capture_has_no_query_list() -> None:
    req = captured_request(entry(f"http://API.xmpush.xiaomi.com/v1/reg?imei={IMEI}&oaid=x"))
    assert req.host == "api.xmpush.xiaomi.com" and req.path == "/v1/reg"
    assert req.query == [("imei", IMEI), ("oaid", "x")] and req.ts_ms == T0


def test_unreadable_entries_and_first_party_requests_are_counted_not_sent(converter) -> None:
    ctx = CaptureContext("app", "9.2.0", "D1", 0)
    capture = converter.convert(
        [
            entry("https://mbank.bjbank.example/api/login", json={"smsCode": "382916"}),
            entry("https://bjbank.example/"),
            {"request": {"url": "https://x.cn/"}},
            entry("https://tmf.qq.com/report", json={"model": "Pixel 8"}),
        ],
        ctx,
    )
    assert [e.sdk_id for e in capture.events] == ["tencent_tmf"]
    assert capture.skipped == {
        "first-party request": 2,
        "unreadable entry: entry without `startedDateTime`": 1,
    }


# -- attribution -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("host", "path", "owner"),
    [
        ("api.xmpush.xiaomi.com", "/", ("push", Attribution.declared)),
        ("cn.apilocate.amap.com", "/", ("amap_location", Attribution.declared)),  # a subdomain
        ("mbank.bjbank.example", "/bsfit/collect", ("device_fingerprint", Attribution.declared)),  # endpoint
        ("mbank.bjbank.example", "/bsfit", ("device_fingerprint", Attribution.declared)),
        (
            "mbank.bjbank.example",
            "//bsfit/collect",
            ("device_fingerprint", Attribution.declared),
        ),  # a probe's
        ("mbank.bjbank.example", "/BSFIT/collect", ("device_fingerprint", Attribution.declared)),
        ("mbank.bjbank.example", "/bsfitness/x", None),  # a path prefix is whole segments
        ("mbank.bjbank.example", "/api/privacy/agree", None),  # first party
        ("static.bjbank.example", "/bsfit/collect", None),  # the endpoint is on one host only
        ("alog.umeng.com", "/", ("umeng", Attribution.known)),  # sdks.yaml known_sdks before signatures
        ("api.xmpush.global.xiaomi.com", "/", ("push", Attribution.signature)),  # code signature -> push
        ("t.appsflyer.com", "/", ("AppsFlyer", Attribution.signature)),
        ("collect.adtrack.example", "/", ("collect.adtrack.example", Attribution.unknown)),
        ("evil-xmpush.xiaomi.com.example", "/", ("evil-xmpush.xiaomi.com.example", Attribution.unknown)),
        # probe_t1 F6: a declared SDK's other host, under its hosts' registrable domain, is its own
        ("aps.amap.com", "/", ("amap_location", Attribution.declared)),
        ("m.api-push.vivo.com.cn", "/", ("push", Attribution.declared)),  # three labels under com.cn
        ("www.com.cn", "/", ("www.com.cn", Attribution.unknown)),
        ("amap.com.evil.example", "/", ("amap.com.evil.example", Attribution.unknown)),
        ("evil-amap.com", "/", ("evil-amap.com", Attribution.unknown)),
        ("e.qq.com", "/", ("e.qq.com", Attribution.unknown)),  # qq.com: TMF's, X5's and Bugly's (known)
        ("iai.tencentcloudapi.com", "/", ("iai.tencentcloudapi.com", Attribution.unknown)),  # two SDKs'
        ("203.0.113.7", "/", ("203.0.113.7", Attribution.unknown)),
    ],
)
def test_attribution_order(converter, host: str, path: str, owner: tuple | None) -> None:
    found = converter.attributor.owner(host, path)
    assert (found and (found.sdk_id, found.how)) == owner


def test_no_signature_file_leaves_unknown_third_parties(policy) -> None:
    plain = Attributor(Catalog(policy).sdk, load_traffic(None, policy.sdks))
    assert plain.owner("t.appsflyer.com", "/").how is Attribution.unknown  # type: ignore[union-attr]
    # Xiaomi's global push host is push's by its vendor domain, xiaomi.com, no signature needed
    assert plain.owner("api.xmpush.global.xiaomi.com", "/") == Owner("push", Attribution.declared)


def test_a_shared_cloud_domain_is_no_vendors(policy) -> None:
    """A domain of many companies' hosts (traffic.yaml `shared_domains`: a cloud's storage, a CDN)
    names no SDK whichever one declares a host there."""
    traffic = load_traffic(None, policy.sdks)
    assert "aliyuncs.com" in traffic.shared_domains
    shared = Attributor(Catalog(policy).sdk, traffic.model_copy(update={"shared_domains": ["amap.com"]}))
    assert shared.owner("aps.amap.com", "/") == Owner("aps.amap.com", Attribution.unknown)
    assert shared.owner("restsdk.amap.com", "/") == Owner("amap_location", Attribution.declared)
    # a vendor's second product the bank recognizes (known_sdks) makes the domain two products':
    # its other hosts name neither
    known = {**policy.sdks.known_sdks, "amap_ads": KnownSdk(name="高德广告", hosts=["ads.amap.com"])}
    sdks = policy.sdks.model_copy(update={"known_sdks": known})
    two = Attributor(SdkDeclarations(sdks, policy.classification.fields, policy.vocabulary), traffic)
    assert two.owner("aps.amap.com", "/") == Owner("aps.amap.com", Attribution.unknown)
    assert two.owner("x.ads.amap.com", "/") == Owner("amap_ads", Attribution.known)


def test_host_countries_by_most_specific_domain(converter) -> None:
    a = converter.attributor
    assert a.country("api.xmpush.global.xiaomi.com") == "SG" and a.country("t.appsflyer.com") == "US"
    assert a.country("api.xmpush.xiaomi.com") is None  # not known: never guessed


@pytest.mark.parametrize(
    ("doc", "where", "why"),
    [
        (
            '{"trackers": {"7": {"name": "X", "network_signature": "a(b"}}}',
            "trackers.7.network_signature",
            "regex",
        ),
        ('{"trackers": {"7": {"network_signature": "a"}}}', "trackers.7", "name"),
        ('{"trackers": []}', "trackers", "Exodus format"),
        ("not json", "", "not JSON"),
    ],
)
def test_signature_file_errors_name_the_tracker_and_the_fix(tmp_path, doc: str, where: str, why: str) -> None:
    path = tmp_path / "trackers.json"
    path.write_text(doc)
    with pytest.raises(PolicyError, match=why) as e:
        load_signatures(path)
    assert e.value.key == where and e.value.file == str(path) and "Fix:" in str(e.value)


# -- data types by key -------------------------------------------------------------------------------
def test_keys_in_english_chinese_and_any_spelling(converter) -> None:
    found = fields_of(
        converter,
        entry(
            "https://datasink.sensorsdata.cn/sa?Android_ID=a1b2c3&OAID=x-1",
            "POST",
            json={
                "properties": {
                    "$os_version": "14",
                    "$model": "Pixel 8",
                    "手机号": PHONE,
                    "经纬度": "116.39,39.91",
                },
                "GPS位置": {"lat": 39.9, "lng": 116.3},
                "应用列表": ["com.a", "com.b"],
            },
            headers=[("X-IMEI", IMEI), ("User-Agent", "model/9")],
            cookies=[("idfa", "6D92078A-8246-4BA4-AE5B-76104861E7DC")],
        ),
    )
    assert found == {
        "android_id": {(FoundIn.query, ValueType.text)},
        "oaid": {(FoundIn.query, ValueType.text)},
        "os_version": {(FoundIn.json, ValueType.text)},
        "device_model": {(FoundIn.json, ValueType.text)},
        "mobile_phone": {(FoundIn.json, ValueType.cn_mobile)},
        "location": {
            (FoundIn.json, ValueType.text),
            (FoundIn.json, ValueType.object),
            (FoundIn.json, ValueType.number),
        },
        "installed_apps": {(FoundIn.json, ValueType.list)},
        "imei": {(FoundIn.header, ValueType.imei)},
        "idfa": {(FoundIn.cookie, ValueType.text)},
    }  # the User-Agent header is every client's: its name says nothing


def test_placeholders_are_not_collection(converter) -> None:
    """What an SDK sends when it may not read the real value is no collection of it."""
    (ev,) = convert(
        converter,
        entry(
            "https://datasink.sensorsdata.cn/sa",
            "POST",
            form={
                "imei": "",
                "mac": "02:00:00:00:00:00",
                "idfa": "00000000-0000-0000-0000-000000000000",
                "oaid": "null",
            },
        ),
    )
    assert ev.fields == [] and ev.sightings == []


# -- data types by value -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "field", "vt"),
    [
        (IMEI, "imei", ValueType.imei),
        ("49 015420 323751 8", "imei", ValueType.imei),
        (RIC, "id_document_no", ValueType.cn_ric),
        (RIC.lower(), "id_document_no", ValueType.cn_ric),
        (CARD, "payment_account_no", ValueType.bank_card),
        ("4111 1111 1111 1111", "payment_account_no", ValueType.bank_card),
        (PHONE, "mobile_phone", ValueType.cn_mobile),
        ("+86 138-1234-5678", "mobile_phone", ValueType.cn_mobile),
        ("(+86)138-1234-5678", "mobile_phone", ValueType.cn_mobile),  # a probe's was no phone
        ("0086" + PHONE, "mobile_phone", ValueType.cn_mobile),  # a probe's was an IMEI
        ("AC:DE:48:00:11:22", "mac_address", ValueType.mac),
        ("116.397128,39.916527", "location", ValueType.coordinates),
        ("【某银行】您的验证码为 382916，5分钟内有效", "sms_code", ValueType.sms_code),
    ],
)
def test_values_recognized_under_keys_that_say_nothing(
    converter, value: str, field: str, vt: ValueType
) -> None:
    assert fields_of(converter, entry("https://tmf.qq.com/r", "POST", form={"k1": value})) == {
        field: {(FoundIn.form, vt)}
    }


@pytest.mark.parametrize(
    "value",
    [
        IMEI_BAD,  # 15 digits failing the IMEI check digit
        IMEI[:14],  # 14 digits have no check digit to test
        "000000000000000",  # zeros pass Luhn: a stand-in, not an IMEI
        RIC_BAD,
        "11010519491331002X",  # month 13
        CARD_BAD,
        "9222021234567890",  # Luhn-valid length, no card scheme's prefix
        "1381234567",  # 10 digits
        "12812345678",  # 12x is no mobile prefix
        "1733080000000",  # a millisecond timestamp
        "AC:DE:48:00:11",
        "216.397128,99.916527",  # out of range both ways
        "116.39,39.91",  # too few decimals to be a position
        "error code 382916",  # no 验证码 / verification code before it
        "v9.2.0",
    ],
)
def test_near_misses_are_not_recognized(converter, value: str) -> None:
    (ev,) = convert(converter, entry("https://tmf.qq.com/r", "POST", form={"k1": value}))
    assert ev.fields == []


def test_a_field_carrying_its_own_form_is_not_reported_twice(converter) -> None:
    """A MAC under `bssid` is the access point's; a phone number under `uid` is a phone number too."""
    found = fields_of(
        converter,
        entry(
            "https://tmf.qq.com/r",
            "POST",
            json={"bssid": "AC:DE:48:00:11:22", "uid": PHONE, "smsCode": "382916"},
        ),
    )
    assert found == {
        "wifi_info": {(FoundIn.json, ValueType.mac)},
        "user_id": {(FoundIn.json, ValueType.cn_mobile)},
        "mobile_phone": {(FoundIn.json, ValueType.cn_mobile)},
        "sms_code": {(FoundIn.json, ValueType.sms_code)},
    }


def test_json_and_gzip_base64_inside_values(converter) -> None:
    """Analytics SDKs post batches as `data_list=<base64(gzip(json))>`; JSON rides inside forms."""
    batch = base64.b64encode(gzip.compress(json.dumps([{"properties": {"imei": IMEI}}]).encode())).decode()
    found = fields_of(
        converter,
        entry(
            "https://datasink.sensorsdata.cn/sa",
            "POST",
            form={"data_list": batch, "ext": json.dumps({"k": PHONE})},
        ),
    )
    assert found == {
        "imei": {(FoundIn.json, ValueType.imei)},
        "mobile_phone": {(FoundIn.json, ValueType.cn_mobile)},
    }


def test_what_an_sdk_sends_is_found_however_a_page_or_a_capture_wraps_it(converter) -> None:
    """A probe's real captures: an H5 page's hash-routed address (`/h5/#/transfer?idNo=...`), a crash
    message's free text (`实名认证失败 idNo=...`), and a JSON body mitmproxy also split as a form at a
    base64 pad's `=`: each hid the ID number an SDK sent. A Sensors batch of 100 events is read
    whole (4 000 values cut it before its last event)."""
    page = {"$url": f"https://mbank.bjbank.example/h5/#/transfer?idNo={RIC}", "$os": "Android"}
    assert "id_document_no" in fields_of(
        converter, entry("https://datasink.sensorsdata.cn/sa", "POST", json=page)
    )
    crash = {"message": f"实名认证失败 idNo={RIC} retry", "ts": 1}
    assert "id_document_no" in fields_of(
        converter, entry("https://wkrd.tingyun.com/crash/upload", "POST", json=crash)
    )
    said = {"note": f"customer called from {PHONE} about it"}  # no name for it: the number itself
    assert "mobile_phone" in fields_of(
        converter, entry("https://wkrd.tingyun.com/crash/upload", "POST", json=said)
    )
    body = {"token": "dGVzdA==", "idNo": RIC}
    split = entry("https://log.tbs.qq.com/ajax", "POST", json=body)
    split["request"]["postData"]["params"] = [{"name": '{"token": "dGVzdA', "value": '=", "idNo": "x"}'}]
    assert "id_document_no" in fields_of(converter, split)
    # compact JSON under a form's content type (how mitmproxy sees an SDK that mislabels it)
    compact = entry("https://log.tbs.qq.com/ajax", "POST", text=json.dumps(body, separators=(",", ":")))
    compact["request"]["postData"]["mimeType"] = "application/x-www-form-urlencoded"
    assert "id_document_no" in fields_of(converter, compact)
    # free text names a field only by a number of its form (a review's `mobile=true`, `tel:95526`,
    # `uid: anonymous`, `gps: disabled` were false fields of declared SDKs)
    said = {"log": "load page mobile=true tel:95526 uid: anonymous gps: disabled by user wifi: off"}
    assert fields_of(converter, entry("https://wkrd.tingyun.com/crash/upload", "POST", json=said)) == {}
    batch = [{"properties": {f"p{k}": f"v{k}" for k in range(40)}} for _ in range(99)]
    batch.append({"properties": {"idNo": RIC}})
    found = fields_of(
        converter, entry("https://datasink.sensorsdata.cn/sa", "POST", json={"data_list": batch})
    )
    assert "id_document_no" in found


def test_an_sdk_payload_is_read_in_each_encoding_apps_send_it_in(converter) -> None:
    """A probe hid an IMEI and an ID number from X5 in each of: URL-safe gzip+base64, gzip of JSON
    after a newline or a byte-order mark, base64 of pretty-printed JSON, base64 of a query string,
    and a Cookie header a capture left out of its cookie list."""
    data = {"imei": IMEI, "idNo": RIC}
    pretty = json.dumps(data, indent=2).encode()
    urlsafe = next(
        e for n in range(200) if "-" in (e := base64.urlsafe_b64encode(gzip.compress(json.dumps(data | {"n": n}).encode())).decode()) or "_" in e
    )  # fmt: skip
    bodies = [
        urlsafe,
        base64.b64encode(gzip.compress(b"\n" + pretty)).decode(),
        base64.b64encode(gzip.compress(b"\xef\xbb\xbf" + pretty)).decode(),
        base64.b64encode(pretty).decode(),
        base64.b64encode(f"imei={IMEI}&idNo={RIC}".encode()).decode(),
    ]
    for body in bodies:
        found = fields_of(converter, entry("https://log.tbs.qq.com/ajax", "POST", form={"d": body}))
        assert {"imei", "id_document_no"} <= set(found), body
    cookie = entry("https://log.tbs.qq.com/ajax", headers=[("Cookie", f"sid=1; imei={IMEI}; idNo={RIC}")])
    assert {"imei", "id_document_no"} <= set(fields_of(converter, cookie))
    # a review's: the header beside a partial cookie list, a quoted value, MIME base64's line breaks
    partial = entry(
        "https://log.tbs.qq.com/ajax", cookies=[("sid", "1")], headers=[("Cookie", f'sid=1; u="{IMEI}"')]
    )
    assert "imei" in fields_of(converter, partial)
    mime = base64.encodebytes(gzip.compress(json.dumps([data] * 5).encode())).decode()
    assert "\n" in mime
    found = fields_of(
        converter, entry("https://datasink.sensorsdata.cn/sa", "POST", form={"data_list": mime})
    )
    assert {"imei", "id_document_no"} <= set(found)


def test_a_request_carrying_several_phone_numbers_carries_a_contact_book(converter) -> None:
    """A probe's Sensors request sent `{"contactList": [{"name": ..., "num": "139..."}, ...]}`:
    only mobile_phone, which Sensors declares, was found. Three distinct numbers in one request
    are a contact book, whatever its keys; one number, the user's own, is not."""
    book = {"contactList": [{"name": "张三", "num": f"1391234567{i}"} for i in range(3)]}
    assert "contacts" in fields_of(converter, entry("https://datasink.sensorsdata.cn/sa", "POST", json=book))
    # a contact book as a map keyed by the numbers (a probe's gave no field)
    keyed = {"book": {f"1391234567{i}": "张三" for i in range(3)}}
    assert "contacts" in fields_of(converter, entry("https://datasink.sensorsdata.cn/sa", "POST", json=keyed))
    own = {"contactList": [{"name": "我", "num": PHONE}, {"name": "我", "num": PHONE}]}
    assert "contacts" not in fields_of(
        converter, entry("https://datasink.sensorsdata.cn/sa", "POST", json=own)
    )


def test_a_contact_book_or_a_phone_in_text_that_is_no_one_token_is_read(converter) -> None:
    """A probe's map SDK received a contact book as CSV, as vCards, a phone in `k:v;k:v`, a phone
    inside protobuf's bytes and a JSON body in hex: each was no field, since only a text with a
    space was searched. A single token (an id, base64, a URL) is still no text."""
    numbers = [f"1391234567{i}" for i in range(3)]
    csv = "name,phone\n" + "".join(f"A{i},{n}\n" for i, n in enumerate(numbers))
    vcards = "".join(f"BEGIN:VCARD\nTEL;TYPE=CELL:{n}\nEND:VCARD\n" for n in numbers)
    for book in (csv, vcards):
        assert {"contacts", "mobile_phone"} <= set(fields_of(converter, entry(AMAP, "POST", text=book)))
    hexed = json.dumps({"mobile": PHONE}).encode().hex()
    for body in (f"ver:2;tel:{PHONE};model:Pixel8", f"\n\x0b{PHONE}\x12\x06Pixel8", hexed):
        assert "mobile_phone" in fields_of(converter, entry(AMAP, "POST", text=body)), body
    assert fields_of(converter, entry(AMAP, "POST", text="dGhpcyBpcyBubyBwaG9uZSBudW1iZXI-x_y")) == {}


@pytest.mark.parametrize(
    ("key", "value", "field"),
    [
        ("密码", "Tr0ub4dor&3", "login_password"),
        ("userPwd", "abc12345", "login_password"),
        ("安全码", "847", "card_cvn"),
        ("cardCvv2", "847", "card_cvn"),
        ("payPin", "902614", "payment_password"),
        ("cardExpiry", "1229", "card_expiry"),
        ("isSetPwd", True, None),
        ("needPwd", 1, None),
        ("forgetPwd", 2, None),  # a review's: a page's state, no password
        ("rememberPwd", "on", None),
        # a probe's seventeen false leakage incidents: states, algorithms, pages, placeholders, masks
        ("showPwd", "visible", None),
        ("payPwd", "SET", None),
        ("encryptPwd", "SM2", None),
        ("resetPwd", "/user/resetPwd.html", None),
        ("changePwd", "https://m.bjbank.example/h5/#/changePwd?from=1", None),
        ("pwd", "[REDACTED]", None),
        ("pwd", "<hidden>", None),
        ("oldPwd", "●●●●●●", None),
        # a review's: what only looks like one is the secret (an algorithm with digits, a path, braces)
        ("pwd", "sm2024", "login_password"),
        ("pwd", "des123456", "login_password"),
        ("pwd", "/Abc123!", "login_password"),
        ("pwd", "{ab12cd}", "login_password"),
        ("pwd", "******", None),
        ("tokenExpiry", "3600", None),
    ],
)
def test_a_secret_under_the_keys_apps_give_it_is_c3_and_a_flag_or_mask_is_none(
    converter, key: str, value: Any, field: str | None
) -> None:
    """A probe's 密码, 安全码, payPin, userPwd and cardExpiry reached an APM SDK with no alert: a
    secret's key is read by its end too (traffic.yaml `ends`: userPwd, cardCvv2) and by the data
    catalog's words (安全码); a flag or a mask in its place sent no secret, and an end names only a
    secret (a token's expiry is none)."""
    found = fields_of(converter, entry(TINGYUN, "POST", json={key: value}))
    assert ({field} if field else set()) == set(found) - {"os_version"}


def test_a_secret_named_in_free_text_is_read_when_its_value_holds_a_digit(converter) -> None:
    """A probe's crash text `submit failed cvv2=847 password=Tr0ub4dor&3` found nothing: a name of
    a secret in free text is the secret when its value holds a digit; `password: incorrect` or
    `pwd=null` in a login error's text is none."""
    crash = "java.lang.RuntimeException: submit failed cvv2=847 password=Tr0ub4dor&3\n\tat a.b(C.java)"
    assert {"card_cvn", "login_password"} <= set(fields_of(converter, entry(TINGYUN, "POST", text=crash)))
    error = "login failed, password: incorrect, pwd=null, retry later"
    assert fields_of(converter, entry(TINGYUN, "POST", text=error)) == {}
    # placeholders an error prints in the value's place hold digits too (a probe's)
    sql = "SQL error: update t set password={1} where u.password=?2) args password=%1$s password=***(len=8)"
    assert fields_of(converter, entry(TINGYUN, "POST", text=sql)) == {}


def test_a_url_an_sdk_reports_is_read_for_its_query(converter) -> None:
    """A probe's Tingyun APM trace held the bank's own request, `.../api/acct?mobile=138...&cardNo=
    6222...`, as a JSON value: only device_model was found, the phone and card sent to a third
    party unseen. A whole URL in a value is read for its query as a request's query is."""
    trace = {
        "device_model": "Pixel 8",
        "url": f"https://mbank.example.cn/api/acct?mobile={PHONE}&cardNo={CARD}",
    }
    found = fields_of(converter, entry("https://tingyun.com/apm", "POST", json=trace))
    assert {"mobile_phone", "payment_account_no"} <= set(found), found


def test_a_body_that_is_no_utf8_leaves_the_rest_of_the_capture_read(converter) -> None:
    """mitmproxy writes a body that is no UTF-8 (an SDK's gzip posted as application/json without
    Content-Encoding) as lone-surrogate escapes; `lifemon ship` refused a probe's whole capture as
    "not JSON", its other requests unjudged. The capture is read, that body unreadable."""
    from streams.sources.har import ship_capture

    binary = entry("https://tmf.qq.com/r", "POST", text="\udc8b\udc08\x00x")
    binary["request"]["postData"]["mimeType"] = "application/json"
    imei = entry("https://tmf.qq.com/r", "POST", at=1, json={"imei": IMEI})
    data = json.dumps(har(binary, imei)).encode()  # the escapes as the file holds them
    ctx = CaptureContext("cn.bank.mobilebanking", "9.2.0", "D1", 0)
    capture = ship_capture(data, converter, ctx)
    events = capture.events
    assert len(events) == 2 and "imei" in events[1].fields, [e.fields for e in events]
    # and the capture says a body went unread (a probe's gzip without its header left no trace)
    assert capture.skipped["SDK request body unreadable (binary or undecoded)"] == 1, capture.skipped


def test_a_batch_of_many_values_of_one_field_keeps_every_field_it_carries(converter) -> None:
    """A probe's Sensors batch: 100 events, each with its own latitude, then one with an ID number.
    Sightings were capped at 64 over all fields, so the 63rd event's latitudes pushed the ID number
    out and its High alert never fired. Every field is kept; a field's many values are not."""
    events = [{"properties": {"$latitude": 39.0 + i / 1000}} for i in range(100)]
    events.append({"properties": {"idNo": "11010519491231002X"}})
    batch = base64.b64encode(gzip.compress(json.dumps(events).encode())).decode()
    (ev,) = convert(converter, entry("https://datasink.sensorsdata.cn/sa", "POST", form={"data_list": batch}))
    assert "id_document_no" in ev.fields, ev.fields
    assert sum(s.field == "location" for s in ev.sightings) <= 8


def test_base64_json_in_a_query_multipart_parts_and_json_posted_as_a_form(converter) -> None:
    """Sensors' web SDK sends `sa.gif?data=<base64 JSON>`; SDKs post multipart/form-data; a JSON
    body sent under a form content type reaches the HAR as one form name without a value."""
    data = base64.b64encode(json.dumps({"properties": {"imei": IMEI}}).encode()).decode().rstrip("=")
    assert fields_of(converter, entry(f"https://datasink.sensorsdata.cn/sa.gif?data={data}")) == {
        "imei": {(FoundIn.json, ValueType.imei)}
    }
    multipart = entry("https://tmf.qq.com/report", "POST")
    body = f'--b1\r\nContent-Disposition: form-data; name="imei"\r\n\r\n{IMEI}\r\n--b1--\r\n'
    multipart["request"]["postData"] = {
        "mimeType": "multipart/form-data; boundary=b1",
        "text": body,
        "params": [],
    }
    assert fields_of(converter, multipart) == {"imei": {(FoundIn.form, ValueType.imei)}}
    as_form = entry("https://datasink.sensorsdata.cn/sa", "POST", form={json.dumps({"imei": IMEI}): ""})
    assert fields_of(converter, as_form) == {"imei": {(FoundIn.json, ValueType.imei)}}


def test_values_in_the_url_path(converter) -> None:
    assert fields_of(converter, entry(f"https://tmf.qq.com/v1/device/{IMEI}/register")) == {
        "imei": {(FoundIn.path, ValueType.imei)}
    }


def test_values_are_never_kept_only_keyed_fingerprints(converter, policy) -> None:
    secret = [IMEI, RIC, CARD, PHONE, "382916"]
    (ev,) = convert(
        converter,
        entry(
            f"https://tmf.qq.com/v1/{IMEI}?phone={PHONE}",
            "POST",
            json={"idNo": RIC, "card": CARD, "smsCode": "382916"},
        ),
    )
    wire = msgspec.json.encode(ev).decode()
    assert not [s for s in secret if s in wire]
    assert ev.dest_path == "/v1/{imei}"  # a value in the path is redacted to its form
    spaced = convert(converter, entry("https://tmf.qq.com/r", "POST", form={"k": "49 015420 323751 8"}))[0]
    plain = convert(converter, entry("https://tmf.qq.com/r", "POST", form={"k": IMEI}))[0]
    assert spaced.sightings[0].fingerprint == plain.sightings[0].fingerprint  # one IMEI, two spellings
    other = HarConverter(
        Catalog(policy).sdk, load_traffic(None, policy.sdks), Pseudonymizer(b"another-key-0123456789").digest
    )
    moved = convert(other, entry("https://tmf.qq.com/r", "POST", form={"k": IMEI}))[0]
    assert moved.sightings[0].fingerprint != plain.sightings[0].fingerprint  # keyed: no key, no match


def test_a_number_in_a_host_or_a_grouped_path_is_not_kept(converter) -> None:
    """An unknown host names its SDK: one built from a phone number keeps it sealed in the event's
    SDK id and host; a card written in dotted groups in the path is redacted as a plain one is."""
    (ev,) = convert(converter, entry(f"https://{PHONE}.evil-sdk.example/v1/u/6222.0202.0000.1234.562/x"))
    wire = msgspec.json.encode(ev).decode()
    assert PHONE not in wire and "6222.0202" not in wire
    assert (
        ev.sdk_id == ev.dest_host
        and ev.sdk_id.startswith("{cn_mobile:")
        and ev.sdk_id.endswith(".evil-sdk.example")
    )
    assert ev.dest_path == "/v1/u/{id}/x"


# -- consent timeline --------------------------------------------------------------------------------
def test_consent_by_the_capture_timeline(converter) -> None:
    agree = entry("https://mbank.bjbank.example/api/privacy/agree", "POST", at=5_000)
    events = convert(
        converter,
        entry("https://tmf.qq.com/late", at=9_000),  # written out of order: the timeline sorts it
        entry("https://tmf.qq.com/early", at=1_000),
        agree,
        entry("https://tmf.qq.com/same-ms", at=5_000),
        consented_at=None,
    )
    assert [(e.dest_path, e.policy_consented) for e in events] == [
        ("/early", False),
        ("/same-ms", True),
        ("/late", True),
    ]
    nothing = convert(converter, entry("https://tmf.qq.com/x", at=1_000), consented_at=None)
    assert nothing[0].policy_consented is False  # no agreement in the capture: before consent
    told = convert(converter, entry("https://tmf.qq.com/x", at=1_000), consented_at=0)
    assert told[0].policy_consented is True  # `--consented-at start`
    get = convert(
        converter,
        entry("https://mbank.bjbank.example/api/privacy/agree", at=0),
        entry("https://tmf.qq.com/x", at=1),
        consented_at=None,
    )
    assert get[0].policy_consented is False  # only the declared method records the agreement
    # a probe's: an agreement the server refused, or one the user declined, is no agreement
    refused = {**agree, "response": {"status": 500}}
    declined = entry(
        "https://mbank.bjbank.example/api/privacy/agree", "POST", at=5_000, json={"agree": False}
    )
    for call in (refused, declined):
        after = convert(converter, call, entry("https://tmf.qq.com/x", at=6_000), consented_at=None)
        assert after[0].policy_consented is False, call
    # and a real agreement is one: taken, cached (0), redirected or not modified; one naming a
    # version, turning down an optional extra, or a revocation flag that says no (a review's denials)
    url = "https://mbank.bjbank.example/api/privacy/agree"
    for call in (
        {**agree, "response": {"status": 200}},
        {**agree, "response": {"status": 0}},
        {**agree, "response": {"status": 302}},
        {**agree, "response": {"status": 304}},
        entry(url, "POST", at=5_000, json={"agree": True, "agreeVersion": "0"}),
        entry(url, "POST", at=5_000, json={"accepted": True, "acceptMarketing": False}),
        entry(url, "POST", at=5_000, json={"consent": "1", "consentRevoked": "no"}),
        entry(url + "?agreeType=0", "POST", at=5_000),
    ):
        after = convert(converter, call, entry("https://tmf.qq.com/x", at=6_000), consented_at=None)
        assert after[0].policy_consented is True, call


AGREE = "https://mbank.bjbank.example/api/privacy/agree"


def consented(converter: HarConverter, *calls: dict[str, Any], consented_at: int | None = None) -> list[bool]:
    """Whether an SDK request after each of `calls` (at 0, 1000, ...) counts as consented; a call
    `at` its place in the list."""
    sdk = [entry(f"https://tmf.qq.com/{i}", at=i * 1_000 + 500) for i in range(len(calls))]
    timed = [
        {**c, "startedDateTime": entry(AGREE, at=i * 1_000)["startedDateTime"]} for i, c in enumerate(calls)
    ]
    events = convert(
        converter, *reversed(timed), *sdk, consented_at=consented_at
    )  # any order: the timeline sorts
    return [e.policy_consented for e in events]


def test_a_declined_agreement_inside_the_apps_envelope_is_no_agreement(converter) -> None:
    """probe_t1 F9: `{"data": {"agree": false}, "sign": ...}`, a bank app's signed envelope, counted
    as agreement, and the collection after it was silent."""
    declined = [
        {"data": {"agree": False, "version": "2024-06"}, "sign": "ab12"},
        {"req": {"body": {"isAgree": "N"}}, "sign": "ab12"},
        {"data": json.dumps({"agree": False}), "sign": "ab12"},  # the envelope's data as a JSON string
        {"data": base64.b64encode(b'{"consent": "0"}').decode()},  # or as base64 of it
        {"agree": False, "data": {"accepted": True}},  # the outermost answer decides
        {"data": {"agreeStatus": 0}, "sign": "ab12"},  # a status or flag says it too (a probe's)
        {"是否同意": "否"},
        {"agree": "refuse"},
        {"agree": -1},
        # the privacy policy's own answer decides, whatever an optional document's says (a probe's)
        {"agreements": [{"type": "privacy", "agree": False}, {"type": "personalized_ads", "agree": True}]},
        {"consent": {"privacy": False, "ads": True}},
    ]
    for body in declined:
        assert consented(converter, entry(AGREE, "POST", json=body)) == [False], body
    form = entry(AGREE, "POST", form={"data": json.dumps({"agree": "false"}), "sign": "ab12"})
    assert consented(converter, form) == [False]
    # an envelope that agrees is an agreement; so is a list of documents agreed one by one, the
    # optional one declined
    agreed = [
        {"data": {"agree": True, "version": "2024-06"}, "sign": "ab12"},
        {"agreements": [{"code": "privacy", "agree": 1}, {"code": "marketing", "agree": 0}]},
        {"data": {"version": "2024-06", "marketing": {"accepted": False}}, "agree": "1"},
    ]
    for body in agreed:
        assert consented(converter, entry(AGREE, "POST", json=body)) == [True], body


def test_a_withdrawal_closes_the_consented_span(converter) -> None:
    """probe_t1 F4: after the user agreed, a call declining it, or one to a withdrawal endpoint
    (traffic.yaml `withdrawal_endpoints`), and the SDK collection after it was still consented
    (seed 004 §五.(三): after 关闭授权 collection stops). A new agreement opens a new span."""
    revoke = "https://mbank.bjbank.example/api/privacy/revoke"
    calls = [
        entry(AGREE, "POST", json={"agree": True}),
        entry(AGREE, "POST", json={"data": {"agree": False}, "sign": "ab12"}),  # declines: withdraws
        entry(AGREE, "POST", json={"agree": True}),
        {**entry(revoke, "POST"), "response": {"status": 500}},  # the user's, whatever the server said
        entry(revoke, "GET"),  # not the declared method: nothing
        entry(AGREE, "POST", json={"agree": True}),
        {**entry(AGREE, "POST", json={"agree": True}), "response": {"status": 500}},  # a failed re-agreement
    ]
    assert consented(converter, *calls) == [True, False, True, False, False, True, True]
    # agreed before the capture (`--consented-at start`, the raw topic's consented_before_capture)
    assert consented(converter, entry(revoke, "POST"), consented_at=0) == [False]
    # the very millisecond of a withdrawal still counts as consented, whatever order the capture wrote
    same_ms = [
        entry(AGREE, "POST", at=0, json={"agree": True}),
        entry("https://tmf.qq.com/same-ms", at=1_000),
        entry(revoke, "POST", at=1_000),
        entry("https://tmf.qq.com/after", at=1_001),
    ]
    for order in (same_ms, same_ms[::-1]):
        assert [e.policy_consented for e in convert(converter, *order, consented_at=None)] == [True, False]


def test_consent_calls_are_matched_as_sdk_endpoints_are(converter) -> None:
    """probe_t1 F9b: `/api/privacy/agree/` (Retrofit's trailing slash) and `MBANK.BJBANK.EXAMPLE.`
    were no agreement, every later request judged before consent; and an SDK endpoint on the bank's
    host with the root's dot was skipped as first-party."""
    for url in (
        AGREE + "/",
        "https://MBANK.BJBANK.EXAMPLE./api/privacy/agree",
        "https://mbank.bjbank.example//API/Privacy//agree",
    ):
        assert consented(converter, entry(url, "post", json={"agree": True})) == [True], url
    withdrawn = entry("https://MBANK.bjbank.example./api/privacy/revoke/", "POST")
    assert consented(converter, withdrawn, consented_at=0) == [False]
    (ev,) = convert(
        converter, entry("https://MBANK.BJBANK.EXAMPLE./bsfit/collect", "POST", json={"imei": IMEI})
    )
    assert (ev.sdk_id, ev.dest_host) == ("device_fingerprint", "mbank.bjbank.example")


def test_collection_after_a_withdrawal_is_before_consent_through_the_engine(converter, policy) -> None:
    events = convert(
        converter,
        entry(AGREE, "POST", at=0, json={"agree": True}),
        entry("https://datasink.sensorsdata.cn/sa", "POST", at=1_000, json={"model": "Pixel 8"}),
        entry(AGREE, "POST", at=2_000, json={"data": {"agree": False}, "sign": "ab12"}),
        entry("https://apilocate.amap.com/r", "POST", at=3_000, form={"lat": "39.9"}),
        consented_at=None,
    )
    found = rules(
        run(make_engine(policy), [SdkTelemetryEvent.model_validate(msgspec.to_builtins(e)) for e in events])
    )
    assert found == {("amap_location", "before_consent")}


def test_the_privacy_policy_is_known_by_the_policys_agreement_names(tmp_path, monkeypatch) -> None:
    """probe_u2 H3: which answer of an agreement call is the privacy policy's was `privacy` or 隐私
    in the code, so a declined 个人信息保护政策 (a name purposes.yaml gives the agreement) beside an
    accepted marketing item counted as agreement, and an SDK's IMEI after it was silent. The words
    are the policy's agreement's id and names, as the converter every source builds reads them; a
    second bank's agreement `pipp` is known by its id too. Through the converter and the engine."""
    monkeypatch.setenv("LIFEMON_PSEUDONYM_KEY", KEY.decode())
    folder = tmp_path / "policy"
    shutil.copytree(DEFAULT_DIR, folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    purposes = folder / "purposes.yaml"
    purposes.write_text(
        purposes.read_text(encoding="utf-8").replace(
            "agreements:\n  privacy_policy:", "agreements:\n  pipp:"
        ),
        encoding="utf-8",
    )
    bodies = [
        [{"code": "个人信息保护政策", "agree": 0}, {"code": "营销", "agree": 1}],
        [{"code": "pipp", "agree": 0}, {"code": "mkt", "name": "营销推送", "agree": 1}],
        [
            {"code": "privacy", "agree": 0},
            {"code": "child_privacy", "agree": 1},
        ],  # a child's rules are another
    ]
    policy = load_policy(folder)
    converter = HarConverter.for_config(load_config(None, policy_dir=folder), None)
    for body in bodies:
        events = convert(
            converter,
            entry(AGREE, "POST", at=0, json={"agree": True}),
            entry(AGREE, "POST", at=1_000, json=body),
            entry("https://tmf.qq.com/report", "POST", at=2_000, form={"model": "Pixel 8", "k1": IMEI}),
            consented_at=None,
        )
        assert [e.policy_consented for e in events] == [False], body
        spec = next(s for s in load_detectors(policy, folder) if s.kind == "sdk_overcollection")
        engine = Engine([spec], Catalog(policy), Pseudonymizer(KEY), rollup_block=1000)
        got = rules(run(engine, [SdkTelemetryEvent.model_validate(msgspec.to_builtins(e)) for e in events]))
        assert ("tencent_tmf", "before_consent") in got, body
    # a child's document declined beside the privacy policy agreed is no withdrawal of it
    agreed = [
        {"code": "child_privacy", "name": "儿童个人信息保护规则", "agree": 0},
        {"code": "pipp", "agree": 1},
    ]
    assert consented(converter, entry(AGREE, "POST", json=agreed)) == [True]


# -- the policy file ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("edit", "key", "why"),
    [
        (lambda d: d["fields"]["oaid"]["keys"].append("imei1"), "fields.oaid.keys", "already names imei"),
        (lambda d: d["fields"].update({"no_such": {"keys": ["x"]}}), "fields.no_such", "not an SDK field id"),
        (
            lambda d: d["fields"]["oaid"].update({"ends": ["id"]}),
            "fields.oaid.ends",
            "only a C3 field or an authentication helper",
        ),
        (lambda d: d["host_countries"].update({"x.cn": "China"}), "host_countries", "ISO 3166"),
        (lambda d: d["value_types"].update({"text": "imei"}), "value_types", "not a recognized form"),
        (
            lambda d: d.update({"first_party_hosts": ["https://bank.cn/"]}),
            "first_party_hosts",
            "not a host name",
        ),
        (
            lambda d: d["withdrawal_endpoints"].append(
                {"method": "post", "host": "MBANK.bjbank.example", "path": "/api/privacy/agree/"}
            ),
            "withdrawal_endpoints",
            "is a consent endpoint too",
        ),
        (
            lambda d: d["withdrawal_endpoints"].append({"host": "bjbank.example"}),
            "withdrawal_endpoints",
            "path",
        ),
    ],
)
def test_traffic_policy_errors_name_file_key_and_fix(tmp_path, policy, edit, key: str, why: str) -> None:
    import yaml

    from policy import DEFAULT_DIR

    data = yaml.safe_load((DEFAULT_DIR / "traffic.yaml").read_text(encoding="utf-8"))
    edit(data)
    (tmp_path / "traffic.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(PolicyError, match=why) as e:
        load_traffic(tmp_path, policy.sdks)
    assert e.value.key.startswith(key) and "traffic.yaml" in e.value.file and "Fix:" in str(e.value)


# -- judged by the real detector ------------------------------------------------------------------------
def test_capture_events_through_the_engine(converter, policy) -> None:
    events = convert(
        converter,
        entry("https://tmf.qq.com/r", "POST", at=1_000, json={"model": "Pixel 8", "k": IMEI_BAD}),  # silent
        entry(
            "https://apilocate.amap.com/r", "POST", at=1_500, form={"imei": IMEI, "lat": "39.9"}
        ),  # vague: silent
        entry(
            "https://tmf.qq.com/r", "POST", at=2_000, json={"model": "Pixel 8", "k": IMEI}
        ),  # IMEI by value
        entry("https://datasink.sensorsdata.cn/sa", "POST", at=3_000, json={"idNo": RIC}),
        entry("https://api.xmpush.xiaomi.com/r", "POST", at=4_000, form={"smsCode": "382916"}),
        entry("https://api.xmpush.global.xiaomi.com/r", "POST", at=5_000, form={"regId": "r1"}),
        entry("https://collect.adtrack.example/r", at=6_000),
        entry("https://aps.amap.com/APS/r", at=7_000),  # amap_location's other host
        consented_at=0,
    )
    found = rules(
        run(make_engine(policy), [SdkTelemetryEvent.model_validate(msgspec.to_builtins(e)) for e in events])
    )
    assert found == {
        ("tencent_tmf", "omitted_field"),
        ("sensors_analytics", "incorrect_field"),
        ("push", "c3_or_auth_helper"),
        ("push", "host_not_allowed"),
        ("push", "country_not_allowed"),
        ("collect.adtrack.example", "undeclared_sdk"),
        ("amap_location", "host_not_allowed"),  # not "unknown third party at aps.amap.com" (probe_t1 F6)
    }


# -- lifemon ship, what it says before any record leaves -------------------------------------------------
def test_ship_names_a_file_that_is_no_har_and_warns_without_consent(tmp_path, capsys, broker) -> None:
    from streams.cli import main

    bad = tmp_path / "notes.har"
    bad.write_text('{"log": {"entries": 3}}')
    assert main(["ship", "--format", "har", str(bad), "--bootstrap", broker]) == 2
    assert f"{bad}: `log.entries` is missing or not a list" in capsys.readouterr().err
    only_bank = tmp_path / "bank.har"
    only_bank.write_text(json.dumps(har(entry("https://mbank.bjbank.example/api/home"))))
    assert main(["ship", "--format", "har", str(only_bank), "--bootstrap", broker]) == 0
    err = capsys.readouterr().err
    assert "no privacy-policy agreement in the capture" in err and "shipped 0 SDK request(s)" in err
    assert "1 first-party request" in err
    with pytest.raises(SystemExit):
        main(["ship", "--format", "har", str(only_bank), "--consented-at", "after lunch"])


def test_ship_connects_with_the_configs_client_settings_and_says_what_was_not_delivered(
    tmp_path, capsys, broker
) -> None:
    """The HAR shipper's producer takes kafka.client (TLS, SASL) like every other: here TLS against
    a plaintext broker, so nothing is delivered, and it says so with exit 3 (it said "shipped")."""
    from streams.cli import build_parser
    from streams.ship_har import ship_har

    capture = tmp_path / "app.har"
    capture.write_text(
        json.dumps(har(entry("https://collect.adtrack.example/v1/track?imei=490154203237518")))
    )
    config = tmp_path / "lifemon.yaml"
    config.write_text(
        f"kafka:\n  bootstrap: {broker}\n  client:\n    security.protocol: SSL\n    message.timeout.ms: 2000\n"
    )
    args = build_parser().parse_args(["ship", "--format", "har", str(capture), "--config", str(config)])
    assert ship_har(args) == 3
    assert "1 of 1 record(s) not delivered to pfi.sdk" in capsys.readouterr().err
