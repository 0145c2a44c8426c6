"""SDK over-collection through the Engine: PoliCheck labels against seed 004's declarations, every
rule with a case that barely fires and a near miss that must stay silent, episodes (one alert,
revised, never repeated), replay and batch boundaries, and the label rollups."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import MINOR_CASES, T0, fed, refs

from detectors import load_detectors
from policy.catalog import Catalog
from policy.model import Policy
from policy.sdk_declarations import Label, SdkDeclarations, host_in
from schemas.models import Consent, SdkTelemetryEvent
from streams.alerts import latest
from streams.engine import SDK_LABEL, Engine
from streams.pseudonym import Pseudonymizer

MIN, HOUR = 60_000, 3_600_000
_serial = iter(range(10**9))


def obs(
    sdk: str = "push",
    fields: tuple[str, ...] = ("imei",),
    at: int = 0,
    version: str = "9.2.0",
    device: str = "D1",
    host: str | None = None,
    consented: bool = True,
    **kw: Any,
) -> SdkTelemetryEvent:
    """One observation `at` ms after T0; each gets a fresh event id."""
    return SdkTelemetryEvent(
        event_id=f"o{next(_serial)}",
        ts=T0 + at,
        app_id="cn.bank.mobilebanking",
        app_version=version,
        device_id=device,
        sdk_id=sdk,
        fields=list(fields),
        dest_host=host,
        policy_consented=consented,
        **kw,
    )


def make_engine(policy: Policy, consents: list[Consent] = ()) -> Engine:  # type: ignore[assignment]
    spec = next(s for s in load_detectors(policy) if s.kind == "sdk_overcollection")
    e = Engine([spec], Catalog(policy), Pseudonymizer(b"unit-test-key-0123456789"), rollup_block=1000)
    e.apply_reference("consents", refs("consents", list(consents)))
    return e


def run(engine: Engine, events: list[SdkTelemetryEvent], batch: int = 10_000, offset: int = 0) -> list:
    alerts = []
    for i in range(0, len(events), batch):
        chunk = fed("sdk", events[i : i + batch], "pfi.sdk", offset + i)
        alerts += engine.process("sdk", "pfi.sdk", 0, chunk) + engine.advance()
    return alerts + engine.drain()


def final(alerts: list) -> dict[str, Any]:
    out = {a.alert_id: a for a in latest(sorted(alerts, key=lambda a: a.revision))}
    return out


def rules(alerts: list) -> set[tuple[str, str]]:
    return {(a.actor_id, a.rule_id.rsplit(".", 1)[1]) for a in final(alerts).values()}


@pytest.fixture
def engine(policy):
    return make_engine(policy)


# -- labels ------------------------------------------------------------------------------------------
def test_labels_follow_the_seed_declarations(catalog) -> None:
    d = catalog.sdk
    assert d.label("push", "9.2.0", "imei") is Label.clear
    # seed 004 (10): Amap declares only 设备参数及系统信息、位置信息、网络信息
    for field in ("imei", "oaid", "android_id", "os_version", "wifi_state", "region_setting"):
        assert d.label("amap_location", "9.2.0", field) is Label.vague, field
    assert d.label("amap_location", "9.2.0", "contacts") is Label.omitted
    assert d.label("amap_location", "9.2.0", "mac_address") is Label.omitted  # not a 设备参数 here
    # seed 004 §一.(二)4: analytics data is never combined with identity entered in the app
    assert d.label("sensors_analytics", "9.2.0", "id_document_no") is Label.incorrect
    assert d.label("tencent_ocr", "9.2.0", "id_document_no") is Label.clear  # (9) 卡号及身份证件识别
    assert d.label("tencent_ocr", "9.2.0", "mobile_phone") is Label.omitted
    assert d.label("push", "9.2.0", "sms_code") is Label.incorrect
    assert d.resolve("com.tencent.smtt.sdk.WebView") == "tencent_x5"
    assert d.resolve("小米推送SDK") == "push" and d.resolve("com.example.sdk") is None
    assert d.resolve("旷视 SDK") == d.resolve("旷视SDK") == "megvii_face"  # seed 004 (1) writes a space
    # a version after the name, the word SDK left out (a probe's were high undeclared-SDK alerts)
    for name in ("神策SDK 6.8.0", "神策SDK/6.8.0", "sensors_analytics@6.8.0", "神策SDK v6.8.0", "神策"):
        assert d.resolve(name) == "sensors_analytics", name
    assert d.resolve("华为推送") == "push" and d.resolve("SDK 2.1.0") is None
    # a one-word id is a word a vendor may use: only itself, or with a version after it (reviews')
    for other in ("Push SDK", "PUSH", "Push 3.2.1", "Device Fingerprint SDK 3.1"):
        assert d.resolve(other) is None, other
    for spelled in ("amap-location", "AMAP_LOCATION", "Amap_Location@5.6.1"):  # a two-word id is its own
        assert d.resolve(spelled) == "amap_location", spelled
    assert d.recognize("com.umeng.analytics", None) == "友盟+统计SDK"
    assert d.recognize("x", "ulogs.umeng.com") == "友盟+统计SDK"


def test_declarations_are_versioned_by_app_version(policy) -> None:
    raw = policy.sdks.model_dump(by_alias=True)
    raw["sdks"]["amap_location"]["since_app_version"] = "9.2.0"
    raw["sdks"]["push"]["changes"] = [
        {"since": "9.2.1", "add_fields": ["contacts"], "remove_fields": ["imei"]}
    ]
    d = SdkDeclarations(type(policy.sdks).model_validate(raw))
    assert d.declared("amap_location", "9.1.0") is None
    assert d.declared("amap_location", "9.10.0") is not None  # numeric, not text, order
    # iOS reports the release 9.2.0 as 9.2; a build's suffix is not a lower version
    assert d.declared("amap_location", "9.2") is not None and d.declared("amap_location", "9.1.9") is None
    assert d.label("push", "9.2.1-beta", "contacts") is Label.clear
    assert d.label("push", "9.2.1.0", "contacts") is Label.clear
    assert d.label("push", "9.2.0", "contacts") is Label.omitted
    assert d.label("push", "9.2.1", "contacts") is Label.clear
    assert d.label("push", "9.2.1", "imei") is Label.omitted
    with pytest.raises(ValueError, match="changes"):
        raw["sdks"]["push"]["changes"][0]["add_fields"] = ["no_such_field"]
        type(policy.sdks).model_validate(raw)


# -- field labels through the engine -----------------------------------------------------------------
def test_vague_but_declared_fields_stay_silent(engine) -> None:
    events = [obs("amap_location", ("imei", "oaid", "android_id", "location"), at=i * MIN) for i in range(30)]
    events += [
        obs("push", ("imei", "push_token", "iccid"), host="api-push.vivo.com.cn", at=i * MIN)
        for i in range(30)
    ]
    # as the privacy policy and many SDKs spell them: IMEI is the declared imei
    events.append(obs("push", ("IMEI", "OAID", "Push_Token"), host="api-push.vivo.com.cn", at=31 * MIN))
    assert run(engine, events) == []


def test_one_omitted_field_fires_with_its_labels_counted(engine) -> None:
    (a,) = final(run(engine, [obs("amap_location", ("imei", "location", "contacts"))])).values()
    assert a.rule_id == "LM-SDK-001.omitted_field" and a.severity.value == "medium"
    assert a.counts["label_vague"] == 1 and a.counts["label_clear"] == 1 and a.counts["label_omitted"] == 1
    assert a.counts["field_contacts"] == 1 and "label_incorrect" not in a.counts
    assert a.title_en == "SDK collected a field its declaration omits" and a.title_zh.startswith("第三方SDK")
    assert a.regulation[0].startswith("《个人信息保护法》第十七条: 处理个人信息前")
    assert a.regulation[1].startswith(
        "《个人信息保护法》第六条第二款: 收集个人信息, 应当限于实现处理目的的最小范围"
    )
    assert any(r.startswith("本行《掌上银行家隐私政策》") for r in a.regulation[2:])


def test_what_left_weighs_with_the_rule_a_c2_field_is_high(engine) -> None:
    """A probe: X5 uploading an ID number its declaration omits was medium, the same number sent to
    神策 (whose policy says it never gets one) high, and a balance medium like a battery level. C2
    beyond a declaration is high whichever rule says so (least_severity); C1 keeps the rule's."""
    (a,) = final(run(engine, [obs("tencent_x5", ("device_model", "id_document_no"))])).values()
    assert (a.rule_id, a.severity.value, a.jr_class) == ("LM-SDK-001.omitted_field", "high", "C2")
    (b,) = final(run(engine, [obs("sensors_analytics", ("account_balance",), at=1, device="D2")])).values()
    assert (b.severity.value, b.jr_class) == ("high", "C2")
    (c,) = final(run(engine, [obs("tencent_x5", ("battery",), at=2, device="D3")])).values()
    assert (c.rule_id, c.severity.value) == ("LM-SDK-001.omitted_field", "medium")
    # a phone number 神策 is declared to get, beside a battery level it is not: the breach is C1
    (d,) = final(
        run(engine, [obs("sensors_analytics", ("mobile_phone", "battery"), at=3, device="D4")])
    ).values()
    assert (d.rule_id, d.severity.value, d.jr_class) == ("LM-SDK-001.omitted_field", "medium", "C2")


def test_incorrect_field_contradicts_a_negative_statement(engine) -> None:
    (a,) = final(run(engine, [obs("sensors_analytics", ("event_click", "id_document_no"))])).values()
    assert a.rule_id.endswith(".incorrect_field") and a.severity.value == "high"
    assert a.counts["label_incorrect"] == 1 and a.jr_class == "C2"
    assert a.regulation[0].startswith("《个人信息保护法》第十七条") and "真实、准确、完整" in a.regulation[0]
    assert "分析软件" in " ".join(a.regulation)


def test_an_sms_code_reaching_a_declared_sdk_is_critical_and_reported_once(engine) -> None:
    (a,) = final(run(engine, [obs("push", ("push_token", "sms_code"))])).values()
    assert a.rule_id.endswith(".c3_or_auth_helper") and a.severity.value == "critical"
    assert a.counts["label_incorrect"] == 1  # the label stays on the alert; one alert, not two


@pytest.mark.parametrize(
    "field",
    [
        "card_track_data",
        "card_pin",
        "card_expiry",
        "transaction_password",
        "biometric_template",
        "otp_code",
        "dynamic_voiceprint",
    ],  # fmt: skip
)
def test_c3_data_named_by_its_catalog_id_is_c3_at_an_sdk(engine, field) -> None:
    """The data catalog's C3 items and authentication helpers (seed 001 §二.2), which the SDK
    vocabulary does not list: named by the catalog's id, not taken for an unknown field."""
    (a,) = final(run(engine, [obs("sensors_analytics", ("event_click", field))])).values()
    assert a.rule_id.endswith(".c3_or_auth_helper") and a.severity.value == "critical"
    assert a.counts[f"field_{field}"] == 1 and a.jr_class in ("C3", "C2")


def test_the_privacy_policys_own_words_name_the_fields_it_declares(engine) -> None:
    """A probe wrote the seed's words for fields the privacy policy declares (推送SDK: 手机型号,
    SIM卡运营商信息, OAID/VAID/AAID; 神策: GPS位置; 听云: 剩余电量/内存/存储空间; and ⼿机电量 as
    the seed's text writes it, with a Kangxi radical): each was an unknown field, a false
    `omitted_field`. And the secrets it lists under 个人鉴别信息 (定义(5): 交易密码, 卡片验证码(CVN和
    CVN2), 预付卡支付密码) reaching an SDK were medium, C1, "(unknown field)"."""
    declared = [
        obs(
            "push",
            (
                "手机型号",
                "SIM卡运营商信息",
                "OAID/VAID/AAID",
                "⼿机电量",
                "应⽤包名",
                "simOperator",
                "sim_operator_name",
            ),
        ),
        obs("sensors_analytics", ("GPS位置", "操作系统类型", "APP版本号"), at=1),
        # the analytics SDK's own property names (a probe's were unknown fields, a false omission)
        obs("sensors_analytics", ("$device_id", "$browser", "$os", "$model"), at=4),
        obs("tingyun_apm", ("设备生产厂商", "剩余电量/内存/存储空间", "网络连接类型", "移动网络代码"), at=2),
        obs("tencent_x5", ("操作系统", "CPU类型", "WIFI参数", "应用列表"), at=3),
    ]
    assert run(engine, declared) == []
    for word, field in (("交易密码", "transaction_password"), ("卡片验证码(CVN和CVN2)", "card_cvn"), ("预付卡支付密码", "payment_password")):  # fmt: skip
        (a,) = final(run(engine, [obs("tingyun_apm", (word,), at=10, device=word)])).values()
        assert a.rule_id.endswith(".c3_or_auth_helper") and a.severity.value == "critical", word
        assert a.jr_class == "C3" and a.counts[f"field_{field}"] == 1, word


@pytest.mark.parametrize(
    ("word", "field"),
    [("银行卡有效期", "card_expiry"), ("银行卡磁道数据", "card_track_data"), ("芯片等效信息", "card_track_data"),
     ("卡片验证码", "card_cvn"), ("网络支付密码", "payment_password")],
)  # fmt: skip
def test_c3_items_as_the_seeds_write_them_are_critical(engine, word, field) -> None:
    """Seed 001 §三.3(3) and seed 002 §五(1)(4) list what no terminal or SDK may keep: 银行卡磁道数据
    (或芯片等效信息), 银行卡有效期, 卡片验证码, 网络支付密码. Each, so written, was a medium "(unknown
    field)" at an SDK (a probe), and a transfer's LM-TP-006 instead of its C3 leakage."""
    (a,) = final(run(engine, [obs("tencent_ocr", ("bank_card_image", word))])).values()
    assert a.rule_id.endswith(".c3_or_auth_helper") and a.severity.value == "critical", word
    assert a.jr_class == "C3" and a.counts[f"field_{field}"] == 1


def test_fields_as_payloads_key_them_are_those_fields_not_unknown(engine, catalog) -> None:
    """A probe's telemetry named fields as apps key them (traffic.yaml's vocabulary, which the HAR
    path already read): a card's CVV2 sent to an analytics SDK was "(unknown field)", medium, C1,
    and the analyst was not told what left the device."""
    (a,) = final(run(engine, [obs("sensors_analytics", ("event_click", "CVV2"))])).values()
    assert a.rule_id.endswith(".c3_or_auth_helper") and a.severity.value == "critical"
    assert a.jr_class == "C3" and a.counts["field_card_cvn"] == 1
    (b,) = final(run(engine, [obs("tencent_x5", ("device_model", "身份证号", "银行卡号"), at=1)])).values()
    assert {"field_id_document_no", "field_payment_account_no"} <= set(b.counts) and b.jr_class == "C2"
    assert "(unknown field)" not in b.summary
    words = {
        "余额": "account_balance",
        "经度": "location",
        "蓝牙MAC": "bluetooth_mac",
        "银行卡号": "payment_account_no",
    }
    assert {w: catalog.sdk.field_id(w) for w in words} == words


@pytest.mark.parametrize(
    ("key", "field"),
    [("pin", "card_pin"), ("track2", "card_track_data"), ("磁道信息", "card_track_data"), ("安全码", "card_cvn"),
     ("card_cvv", "card_cvn"), ("loginPwd", "login_password"), ("cardPwd", "card_pin"),
     ("tradePwd", "transaction_password"), ("动态码", "otp"), ("人脸图像", "face_image")],
)  # fmt: skip
def test_card_secrets_as_apps_key_them_are_critical(engine, key, field) -> None:
    """The names a probe's telemetry gave a PIN, track data, the card's security code (安全码, the
    word on the card), passwords, a dynamic code and a face image (classification.yaml `also`,
    traffic.yaml `keys`): each was a medium "(unknown field)", no incident."""
    (a,) = final(run(engine, [obs("tingyun_apm", ("device_model", key))])).values()
    assert a.rule_id.endswith(".c3_or_auth_helper") and a.severity.value == "critical", key
    assert a.counts[f"field_{field}"] == 1 and "(unknown field)" not in a.summary


# -- which SDK -------------------------------------------------------------------------------------
def test_undeclared_sdks_by_name_package_or_host(engine) -> None:
    events = [
        obs("com.umeng.analytics", ("oaid",)),
        obs("libtrack", ("oaid",), host="alogus.umeng.com"),
        obs("unknown_ad_sdk", ("imei",), host="ads.adnet-example.com"),
    ]
    got = final(run(engine, events))
    assert rules(list(got.values())) == {
        ("com.umeng.analytics", "undeclared_sdk"),
        ("libtrack", "undeclared_sdk"),
        ("unknown_ad_sdk", "undeclared_sdk"),
    }
    summaries = {a.actor_id: a.summary for a in got.values()}
    assert "recognized as 友盟+统计SDK" in summaries["libtrack"]
    assert all(a.counts["label_omitted"] == 1 for a in got.values())


def test_an_alert_is_of_the_class_of_what_left_and_names_it(engine, policy) -> None:
    """An undeclared SDK taking a phone number and an Android id sent C2 data, and the analyst reads
    which; one carrying only a device id, or a declared SDK sending its location elsewhere, C1."""
    got = final(run(engine, [obs("com.umeng.analytics", ("mobile_phone", "android_id")), obs("amap_location", ("location",), host="collect.example-tracker.com", at=1)]))  # fmt: skip
    by_sdk = {a.actor_id: a for a in got.values()}
    umeng = by_sdk["com.umeng.analytics"]
    assert umeng.jr_class == "C2" and "carried android_id, mobile_phone" in umeng.summary
    assert by_sdk["amap_location"].jr_class == "C1" and "carried location" in by_sdk["amap_location"].summary
    (device_ids,) = final(run(make_engine(policy), [obs("com.umeng.analytics", ("oaid",))])).values()
    assert device_ids.jr_class == "C1"


def test_a_declared_sdk_under_its_package_name_or_an_obfuscated_name_is_that_sdk(engine) -> None:
    events = [
        obs("com.networkbench.agent.impl", ("device_model", "cpu_usage"), host="wkrd.tingyun.com"),
        obs("a.b.c", ("device_model",), host="wkrd.tingyun.com"),  # ProGuard-renamed, declared endpoint
        obs("基调听云SDK", ("cpu_usage",)),
    ]
    assert run(engine, events) == []


def test_an_sdk_outside_the_app_versions_that_declare_it_is_undeclared(policy) -> None:
    raw = policy.sdks.model_dump(by_alias=True)
    raw["sdks"]["amap_location"]["since_app_version"] = "9.2.0"
    versioned = policy.model_copy(update={"sdks": type(policy.sdks).model_validate(raw)})
    e = make_engine(versioned)
    got = final(
        run(
            e,
            [obs("amap_location", ("location",), version=v, at=i) for i, v in enumerate(["9.2.0", "9.1.0"])],
        )
    )
    (a,) = got.values()
    assert a.rule_id.endswith(".undeclared_sdk") and "app version 9.1.0." in a.summary
    assert "not shipped" in a.summary


# -- consent, destination, rate ------------------------------------------------------------------------
def test_collection_before_the_privacy_policy_was_agreed(policy) -> None:
    agreed = [
        Consent(subject_id="CUST-1", ts=T0 + 10 * MIN, purpose="privacy_policy", status="granted"),
        Consent(subject_id="CUST-2", ts=T0, purpose="privacy_policy", status="granted"),
        Consent(subject_id="CUST-3", ts=T0 - HOUR, purpose="privacy_policy", status="granted"),
        Consent(subject_id="CUST-3", ts=T0 - MIN, purpose="privacy_policy", status="withdrawn"),
    ]
    e = make_engine(policy, agreed)
    events = [
        obs("tencent_tmf", ("device_model",), consented=False, device="D0"),  # the app's own flag
        obs("tencent_tmf", ("device_model",), subject_id="CUST-1", device="D1"),  # agreed 10 min later
        obs("tencent_tmf", ("device_model",), subject_id="CUST-2", device="D2"),  # agreed that very ms: fine
        obs("tencent_tmf", ("device_model",), subject_id="CUST-3", device="D3"),  # withdrawn
        obs("tencent_tmf", ("device_model",), subject_id="CUST-9", device="D9"),  # no record: the flag holds
    ]
    (a,) = final(run(e, events)).values()
    assert a.rule_id.endswith(".before_consent") and a.counts["observations"] == 3
    assert a.counts["devices"] == 3 and a.subject_count == 2
    assert all(s.startswith("p_") for s in a.subjects_sample) and "CUST-" not in json.dumps(a.model_dump())
    # each reason said: a withdrawal is no "before" (seed 004 §五.(三), PIPL art. 15 cited)
    for why in (
        "the app reported no agreement to the privacy policy",
        "before the user agreed to the privacy policy",
        "after the user withdrew consent",
    ):
        assert why in a.summary, why
    assert any("第十五条" in r for r in a.regulation) and "撤回" in a.title_zh


def test_a_permission_the_declaration_neither_names_nor_implies(engine) -> None:
    """Seed 004 §一.(一).6 names each SDK's permissions: the face SDK may use the camera and storage
    it declares, the location SDK the location its declared 位置信息 needs; location or contacts for
    the face SDK are beyond it. Permissions that reach no personal information are not judged."""
    quiet = [
        obs(
            "megvii_face",
            ("accelerometer",),
            permissions=["android.permission.CAMERA", "STORAGE", "INTERNET"],
        ),
        obs("amap_location", ("location",), permissions=["android.permission.ACCESS_COARSE_LOCATION"]),
        obs(
            "push",
            ("imei",),
            permissions=["android.permission.READ_PHONE_STATE", "android.permission.WAKE_LOCK"],
        ),
        # 设备参数, a broad term the declaration uses, covers the IMEI that phone state reads
        obs("amap_location", ("location",), permissions=["android.permission.READ_PHONE_STATE"]),
    ]
    assert run(engine, quiet) == []
    media = run(
        engine, [obs("tencent_face", ("face_image",), permissions=["android.permission.READ_MEDIA_IMAGES"])]
    )
    assert "(permission storage)" in media[-1].summary  # Android 13's photo access is storage
    loud = [
        obs(
            "megvii_face",
            ("accelerometer",),
            permissions=["camera", "android.permission.ACCESS_FINE_LOCATION"],
        ),
        obs("megvii_face", ("accelerometer",), at=1, permissions=["read_contacts", " Location "]),
    ]
    (a,) = final(run(engine, loud, offset=10)).values()
    assert a.rule_id.endswith(".permission_not_declared") and a.severity.value == "medium"
    assert (
        "(permission location; permission contacts, location)" in a.summary and a.counts["observations"] == 2
    )


@pytest.mark.parametrize(
    "permission",
    ["NSMicrophoneUsageDescription", "ohos.permission.MICROPHONE", "麦克风", "麦克风权限", "ohos.permission.READ_CONTACTS",
     "通讯录权限", "短信", "NSLocationWhenInUseUsageDescription", "ohos.permission.APPROXIMATELY_LOCATION",
     # Android's other names in the groups the policy lists (a probe's passed)
     "android.permission.WRITE_CALL_LOG", "android.permission.PROCESS_OUTGOING_CALLS",
     "android.permission.ANSWER_PHONE_CALLS", "android.permission.RECEIVE_MMS", "android.permission.RECEIVE_WAP_PUSH",
     "android.permission.BODY_SENSORS_BACKGROUND", "android.permission.ACCESS_MEDIA_LOCATION",
     # current names (a probe's passed): iOS 17's calendar keys, the installed-app list, the
     # advertising id's tracking prompt, nearby Wi-Fi and Bluetooth, the key before iOS 8
     "NSCalendarsFullAccessUsageDescription", "NSCalendarsWriteOnlyAccessUsageDescription",
     "android.permission.QUERY_ALL_PACKAGES", "com.android.permission.GET_INSTALLED_APPS",
     "NSUserTrackingUsageDescription", "com.google.android.gms.permission.AD_ID",
     "android.permission.NEARBY_WIFI_DEVICES", "android.permission.BLUETOOTH_SCAN",
     "NSBluetoothAlwaysUsageDescription", "NSLocationUsageDescription"],
)  # fmt: skip
def test_a_permission_as_ios_harmonyos_or_the_policy_writes_it(engine, permission) -> None:
    """A probe's OCR SDK (declared: camera, storage) used the microphone, contacts or SMS as iOS
    (Info.plist keys), HarmonyOS (`ohos.permission.…`) and the privacy policy (麦克风, 通讯录权限)
    name them: only Android's manifest name was judged. Its own camera, so named, stays quiet."""
    quiet = [obs("tencent_ocr", ("bank_card_image",), permissions=["NSCameraUsageDescription", "相机权限"])]
    assert run(engine, quiet) == []
    (a,) = final(
        run(engine, [obs("tencent_ocr", ("bank_card_image",), at=1, permissions=[permission])])
    ).values()
    assert a.rule_id.endswith(".permission_not_declared"), permission


@pytest.mark.parametrize(
    "permission, judged_as, sdk, declared",
    [
        ("NSCalendarsFullAccessUsageDescription", "calendar", None, None),
        (
            "android.permission.READ_MEDIA_VISUAL_USER_SELECTED",
            "storage",
            "tencent_ocr",
            ("bank_card_image",),
        ),
        # seed 004 §一.(一).6: 应用安装列表 is declared by the push, performance and X5 SDKs
        ("android.permission.QUERY_ALL_PACKAGES", "installed_apps", "push", ("installed_apps",)),
        # the IDFA (and Google's advertising ID) the push, Sensors and fingerprint SDKs declare
        ("NSUserTrackingUsageDescription", "tracking", "push", ("idfa",)),
        # no location: a position from the scans needs ACCESS_FINE_LOCATION, judged as location
        ("android.permission.NEARBY_WIFI_DEVICES", "nearby_wifi", "push", ("wifi_state",)),
        ("android.permission.BLUETOOTH_SCAN", "bluetooth", "device_fingerprint", ("bluetooth_mac",)),
    ],
)
def test_a_current_permission_name_is_judged_as_what_it_reads(engine, permission, judged_as, sdk, declared) -> None:  # fmt: skip
    """A probe's iOS 17 calendar key, Android 14 partial photo access, installed-app list and ATT
    prompt passed undeclared (sdks.yaml `sensitive_permissions`). Each is named as what it reads;
    an SDK whose declaration names that data (or the permission) uses it quietly."""
    # the face SDK declares the camera alone and none of these fields
    (a,) = final(run(engine, [obs("tencent_face", ("device_model",), permissions=[permission])])).values()
    assert a.rule_id.endswith(".permission_not_declared") and a.summary.count("(permission ") == 1
    assert f"(permission {judged_as})" in a.summary and "location" not in a.summary
    if sdk is not None:  # declared through the field, or the permission, it is quiet
        assert run(engine, [obs(sdk, declared, at=1, permissions=[permission])]) == [], sdk


def test_hosts_and_countries_outside_the_declaration(engine) -> None:
    quiet = [
        obs("amap_location", ("location",), host="apilocate.amap.com", dest_country="CN"),
        obs("amap_location", ("location",), host="cn.apilocate.amap.com"),  # a subdomain of an allowed host
        obs(
            "amap_location", ("location",), host="apilocate.amap.com:443"
        ),  # its port, as a Host header says it
        obs(
            "cloud_certificate", ("device_model",), host="cert.bank.internal"
        ),  # no host declared: not judged
        # the URL it sent to, as a network log writes it (a probe's was a host not allowed)
        obs("amap_location", ("location",), host="https://apilocate.amap.com:443/v3/ip?key=1"),
        obs("amap_location", ("location",), host="apilocate.amap.com/v3/ip"),
    ]
    assert run(engine, quiet) == []
    loud = [
        obs("amap_location", ("location",), host="collect.example-tracker.com", at=1),
        obs("amap_location", ("location",), host="47.94.12.34:443", at=1),  # an address, port or not
        obs("amap_location", ("location",), host="[2001:db8::1]:443", at=1),
        obs("amap_location", ("location",), host="apilocate.amap.com.evil.cn:443", at=1),
        obs("amap_location", ("location",), host="https://apilocate.amap.com@evil.cn/x", at=1),
        obs("amap_location", ("location",), host="https://evil.cn\\@apilocate.amap.com/x", at=1),
        obs("tencent_face", ("device_model",), host="faceid.tencentcloudapi.com", dest_country="SG", at=2),
    ]
    assert rules(run(engine, loud, offset=10)) == {
        ("amap_location", "host_not_allowed"),
        ("tencent_face", "country_not_allowed"),
    }
    # a URL is judged by the host a client connects to: after an `@`, and with `\` read as `/`
    allowed = ["apilocate.amap.com"]
    assert host_in("https://apilocate.amap.com:443/v3/ip?key=1", allowed)
    assert not host_in("https://apilocate.amap.com@evil.cn/x", allowed)
    assert not host_in("https://evil.cn\\@apilocate.amap.com/x", allowed)


def test_a_declared_sdk_deployed_on_the_banks_own_servers_sends_to_no_third_party(engine) -> None:
    """sdks.yaml: TMF and 神策 are often deployed on the bank's servers. A probe's declared SDKs
    posting to the bank's own domain (traffic.yaml `first_party_hosts`: bjbank.example) were high
    `host_not_allowed`: the data reaches no third party. A look-alike domain is still another's,
    and an alert names the host it judged, not the whole URL."""
    own = [
        obs("tencent_tmf", ("device_brand",), host="tmf.bjbank.example"),
        obs("sensors_analytics", ("event_login",), host="https://mbank.bjbank.example/sa?project=production"),
    ]
    assert run(engine, own) == []
    (a,) = run(
        engine,
        [obs("sensors_analytics", ("event_login",), host="https://bjbank.example.evil.cn/sa?p=1")],
        offset=5,
    )
    assert a.rule_id.endswith("host_not_allowed") and "(host bjbank.example.evil.cn)" in a.summary


@pytest.mark.parametrize(("count", "fires"), [(60, False), (61, True)])
def test_collection_rate_is_bounded_per_device_hour(engine, count, fires) -> None:
    """amap_location declares at most 60 per device-hour: 60 at 59 s apart fit, 61 do not; another
    device and another hour start their own count."""
    events = [obs("amap_location", ("location",), at=i * 59_000) for i in range(count)]
    events += [obs("amap_location", ("location",), device="D2", at=i * 59_000) for i in range(60)]
    events += [obs("amap_location", ("location",), at=2 * HOUR + i * 59_000) for i in range(60)]
    events.sort(key=lambda e: e.ts)
    assert rules(run(engine, events, batch=17)) == ({("amap_location", "too_frequent")} if fires else set())


def test_a_too_frequent_alert_states_the_rate_and_keeps_the_collections_that_make_it(engine) -> None:
    """A new user's finding: the demo's alert said "more than 60 per device-hour", "1 observation"
    and kept 1 event id, leaving the analyst no number to check. It states how many collections in
    which device-hour, and keeps each of their ids, past the 50 ids evidence_limit keeps otherwise."""
    events = [obs("amap_location", ("location",), at=i * 55_000) for i in range(62)]
    (a,) = final(run(engine, events, batch=17)).values()
    # the 62nd is 56 min 50 s after the first's hour: the fullest hour holds all 62
    said = "62 collections by one device from 2026-01-01T00:00:00Z to 2026-01-01T00:55:55Z, within an hour, over the 60"
    assert said in a.summary
    assert a.evidence_event_ids == [e.event_id for e in events]
    assert (a.counts["device_hour_collections"], a.counts["device_hour_declared"]) == (62, 60)
    assert a.event_count == a.counts["observations"] == 62 and "; 62 observations from 1 device" in a.summary


def test_a_device_hour_an_earlier_lifemon_kept_as_times_still_counts(engine) -> None:
    """An earlier lifemon kept a device's collection times without their event ids: restored, they
    count toward the hour, and the evidence lists the ids it has."""
    times = [T0 + i * 55_000 for i in range(60)]
    engine.restore(0, [(b"sdk_overcollection\x1fdev:amap_location|D1", json.dumps(times).encode())])
    last = obs("amap_location", ("location",), at=60 * 55_000)
    (a,) = final(run(engine, [last])).values()
    assert "61 collections by one device from 2026-01-01T00:00:00Z to 2026-01-01T00:55:00Z" in a.summary
    assert a.evidence_event_ids == [last.event_id] and a.counts["device_hour_collections"] == 61


def test_a_buffer_uploaded_again_under_new_event_ids_is_one_collection_each(engine) -> None:
    """A probe's: the app's offline buffer re-sent 40 location collections under new event ids,
    the same times: 80 in the hour, over the 60 declared. A device collects once a millisecond."""
    first = [obs("amap_location", ("location",), at=i * 59_000) for i in range(40)]
    again = [obs("amap_location", ("location",), at=i * 59_000 + 1) for i in range(40)]  # new ids
    copies = [e.model_copy(update={"ts": f.ts}) for e, f in zip(again, first, strict=True)]
    assert rules(run(engine, first + copies, batch=17)) == set()
    assert rules(run(engine, again, batch=17, offset=100)) == {("amap_location", "too_frequent")}


def test_a_shuffled_upload_is_the_same_alert(policy) -> None:
    """A device's buffered upload arrives in any order: 61 collections 55 s apart, in time order or
    shuffled, in one batch, are one alert, the same id and evidence (a probe's shuffled upload gave
    another id, so a replay and a live run stored two alerts for one episode)."""
    import random

    events = [obs("amap_location", ("location",), at=i * 55_000) for i in range(61)]
    shuffled = random.Random(7).sample(events, len(events))
    got = [final(run(make_engine(policy), order)) for order in (events, shuffled)]
    assert [list(g) for g in got][0] == [list(g) for g in got][1] and len(got[0]) == 1
    assert [a.evidence_event_ids for a in got[0].values()] == [a.evidence_event_ids for a in got[1].values()]


# -- episodes ------------------------------------------------------------------------------------------
def test_one_alert_per_episode_revised_then_a_new_one_after_the_quiet_period(engine) -> None:
    first = [obs("push", ("imei", "contacts"), at=i * MIN, device=f"D{i}") for i in range(40)]
    alerts = run(engine, first, batch=3)
    got = final(alerts)
    (a,) = got.values()
    assert a.counts["observations"] == 40 and a.counts["devices"] == 40
    assert max(x.revision for x in alerts) == 14  # one revision per batch that added to it, no new alert
    other = [obs("push", ("imei", "contacts"), version="9.2.1", at=41 * MIN)]  # another app version
    other += [obs("push", ("contacts", "call_log"), at=42 * MIN)]  # another field set
    later = [obs("push", ("contacts",), at=30 * HOUR), obs("push", ("imei", "contacts"), at=30 * HOUR)]
    more = final(run(engine, other + later, offset=100))
    closed = more.pop(a.alert_id)
    assert closed.status.value == "closed" and closed.revision > a.revision
    # 9.2.1; contacts + call_log; and contacts again 30 h later (imei is declared: not in the set)
    assert len(more) == 3 and a.alert_id not in more
    assert sorted(x.summary.split(". ")[0] for x in more.values()) == [
        *["SDK push, app version 9.2.0"] * 2,
        "SDK push, app version 9.2.1",
    ]


def test_replay_and_batch_boundaries_give_the_same_alerts(policy) -> None:
    events = (
        [obs("amap_location", ("location", "contacts"), at=i * 7_000, device=f"D{i % 5}") for i in range(50)]
        + [obs("com.umeng.analytics", ("oaid",), at=i * 11_000) for i in range(20)]
        + [obs("amap_location", ("location",), at=i * 50_000) for i in range(80)]
    )
    events.sort(key=lambda e: e.ts)
    reference = final(run(make_engine(policy), events))
    assert len(reference) == 3
    for batch in (1, 13):
        got = final(run(make_engine(policy), events, batch=batch))
        assert {k: (a.rule_id, a.counts) for k, a in got.items()} == {
            k: (a.rule_id, a.counts) for k, a in reference.items()
        }
    engine = make_engine(policy)
    once = final(run(engine, events))
    again = run(engine, events)  # the same records delivered again: the engine drops them
    assert again == [] and set(once) == set(reference)


def test_state_survives_a_restart(policy) -> None:
    events = [obs("push", ("contacts",), at=i * MIN) for i in range(10)]
    before = make_engine(policy)
    (a,) = final(run(before, events[:6])).values()
    restored = make_engine(policy)
    restored.restore(0, before.changes(0))
    (b,) = final(run(restored, events[6:], offset=6)).values()
    assert b.alert_id == a.alert_id and b.counts["observations"] == 10


# -- rollups -------------------------------------------------------------------------------------------
def test_labels_reach_the_rollups_as_known_ids_only(engine) -> None:
    events = [
        obs("amap_location", ("imei", "location", "contacts")),
        obs("com.umeng.analytics", ("oaid",)),
        obs("com.tencent.smtt.sdk", ("device_model", "6222020200001234567")),
        obs("amap_location", ("IMEI", "Contacts")),  # a field's id whatever its case
    ]
    run(engine, events)
    rows = {tuple(r[4:8]): r[9] for r in engine.rollup_rows() if r[4] == SDK_LABEL}
    card = engine.fingerprint("6222020200001234567")
    assert rows == {
        (SDK_LABEL, "C1", "amap_location:imei", "vague"): 2,
        (SDK_LABEL, "C1", "amap_location:location", "clear"): 1,
        (SDK_LABEL, "C1", "amap_location:contacts", "omitted"): 2,
        (SDK_LABEL, "C1", "undeclared_sdk:oaid", "omitted"): 1,
        (SDK_LABEL, "C1", "tencent_x5:device_model", "clear"): 1,
        (SDK_LABEL, "C1", f"tencent_x5:{card}", "omitted"): 1,
    }
    sdk_orgs = {r[6] for r in engine.rollup_rows() if r[4] == "sdk"}
    assert "1234567" not in json.dumps(engine.rollup_rows())
    assert sdk_orgs <= {"amap_location", "tencent_x5", "undeclared_sdk"}


def test_a_policy_section_without_every_rule_names_the_fix(policy, tmp_path) -> None:
    import shutil

    from detectors import load_detectors
    from policy import DEFAULT_DIR, PolicyError, load_policy

    shutil.copytree(DEFAULT_DIR, tmp_path / "p", ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    path = tmp_path / "p" / "detectors" / "sdk_overcollection.yaml"
    path.write_text(
        path.read_text(encoding="utf-8").replace("    too_frequent:", "    too_often:"), encoding="utf-8"
    )
    with pytest.raises(PolicyError, match="sdk_overcollection.yaml.*params.rules"):
        load_detectors(load_policy(tmp_path / "p"), tmp_path / "p")


# -- a logged-in minor (seed 004 定义(10), 流程描述(1)③; retention.yaml `minors`) ------------------------
@pytest.mark.parametrize(
    ("born", "given", "fires"),
    [
        ("2013-06-01", ("subject", False), True),  # 12: the child tapped "agree" themself
        ("2013-06-01", ("subject", True), True),  # the child's own, though separate
        ("2013-06-01", ("guardian", True), False),
        ("2013-06-01", ("guardian", False), True),
        ("2013-06-01", None, True),  # no agreement on record: the app's flag says nothing of whose
        ("2012-01-01", ("subject", True), True),  # the 14th birthday: still 13
        ("2011-12-31", ("subject", True), False),  # 14 since today
        ("2011-12-31", ("subject", False), True),
        ("2008-01-02", ("subject", True), False),  # 17, a separate agreement of their own
        ("2007-12-31", ("subject", False), False),  # 18 since today: judged as any adult
        (None, ("subject", False), False),  # no birth date
        ("unknown", ("subject", False), False),  # not on the customers stream
    ],
    ids=MINOR_CASES,
)
def test_an_sdk_collecting_from_a_logged_in_minor_needs_a_separate_agreement_a_guardians_under_14(
    policy, born, given, fires
) -> None:
    """A probe's logged-in 12-year-old agreed to the privacy policy themself, and the push SDK's
    collection was silent. A minor's data (seed 004 流程描述(1)③; under 14 sensitive too, 定义(10)):
    an SDK collects it only on a separate agreement, under 14 the guardian's, aged the day after the birthday on the bank's
    calendar day (T0: 08:00 on 1 January 2026 in Beijing). Everything else about the collection is
    as declared."""
    from schemas.models import ConsentStatus, Customer

    consents = [Consent(subject_id="C9", ts=0, purpose="privacy_policy", status=ConsentStatus.granted)]
    if given is not None:
        by, separate = given
        consents.append(
            Consent(subject_id="C1", ts=T0 - HOUR, purpose="privacy_policy", status=ConsentStatus.granted,
                    separate=separate, given_by=by)
        )  # fmt: skip
    e = make_engine(policy, consents)
    if born != "unknown":
        c1 = Customer(
            customer_id="C1", ts=0, org_id="S0101", org_path=["HO", "B01", "S0101"], birth_date=born
        )
        e.apply_reference("customers", refs("customers", [c1]))
    ev = obs("push", ("imei", "oaid"), host="api.xmpush.xiaomi.com", subject_id="C1")
    alerts = final(run(e, [ev, obs("push", ("imei",), host="api.xmpush.xiaomi.com", device="D2")]))
    assert {a.rule_id.rsplit(".", 1)[1] for a in alerts.values()} == (
        {"minor_collected_without_consent"} if fires else set()
    )
    if fires:
        (a,) = alerts.values()
        band = "under 14" if born > "2011-12-31" else "aged 14 to 17"
        assert a.severity.value == "high" and f"a logged-in customer {band} without" in a.summary
        assert a.subject_count == 1 and a.counts["observations"] == 1 and born not in a.summary
        assert a.regulation[0].startswith("《个人信息保护法》第三十一条")


def test_a_banks_own_agreement_id_keeps_the_withdrawal_rule(tmp_path) -> None:
    """probe_u2 H1: a second bank's privacy policy is `app_privacy`; its detector file sets no
    `consent_purpose` and reads the one agreement purposes.yaml declares, so a withdrawal its
    consent platform writes 个人信息保护政策 stops the SDKs (the shipped `privacy_policy` looked up
    consents no one records: no alert)."""
    import shutil

    from policy import DEFAULT_DIR, load_policy

    folder = tmp_path / "policy"
    shutil.copytree(DEFAULT_DIR, folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    purposes = folder / "purposes.yaml"
    text = purposes.read_text(encoding="utf-8")
    purposes.write_text(
        text.replace("agreements:\n  privacy_policy:", "agreements:\n  app_privacy:"), "utf-8"
    )
    policy = load_policy(folder)
    consents = [
        Consent(subject_id="CUST-3", ts=T0 - HOUR, purpose="个人信息保护政策", status="granted"),
        Consent(subject_id="CUST-3", ts=T0 - MIN, purpose="个人信息保护政策", status="withdrawn"),
    ]
    spec = next(s for s in load_detectors(policy, folder) if s.kind == "sdk_overcollection")
    e = Engine([spec], Catalog(policy), Pseudonymizer(b"unit-test-key-0123456789"), rollup_block=1000)
    e.apply_reference("consents", refs("consents", consents))
    (a,) = final(run(e, [obs("tencent_tmf", ("device_model",), subject_id="CUST-3", device="D3")])).values()
    assert a.rule_id.endswith(".before_consent") and "after the user withdrew consent" in a.summary
