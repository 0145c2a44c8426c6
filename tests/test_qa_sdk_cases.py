"""Acceptance cases for sdk_overcollection that its own tests never saw, written from seed 004's
privacy policy (§一.(一).6: the eleven SDKs, word for word, and the fields each collects; §一.(一).7:
anything not declared needs consent first; 序言: the policy binds once the user agrees; §二.(一)1:
what is collected in China stays in China; 本政策适用中华人民共和国法律, 不包括香港、澳门特别行政区
法律和台湾地区有关规定) and from seed 001 §三.2(5), §三.3(4), §五.4, not from the detector's constants.

Normal work that comes near a line stays silent: an SDK reported under the very name the privacy
policy gives it, under a pre-release or build version string, at its declared host however the app
spells it, a device that uploads a buffered reading from yesterday. Violations raise exactly the
rule a compliance officer would name, with its severity and both titles.
"""

from __future__ import annotations

from typing import Any

import pytest
from conftest import T0, fed, refs

from detectors import load_detectors
from policy.catalog import Catalog
from schemas.models import Consent, SdkTelemetryEvent
from streams.alerts import latest
from streams.engine import Engine
from streams.pseudonym import Pseudonymizer

MIN, HOUR, DAY = 60_000, 3_600_000, 86_400_000
CUSTOMER = "CIF0031415926"
APP = "cn.bjbank.mbanker"
_serial = iter(range(10**9))

# seed 004 (7) 性能监控SDK, a selection of its list: 设备生产厂商、设备型号、操作系统名称、操作系统版本、CPU使用率、
# 剩余内存、剩余电量、网络连接类型、IP地址
TINGYUN = ["device_manufacturer", "device_model", "os_type", "os_version", "cpu_usage", "device_memory",
           "battery", "network_type", "ip_address"]  # fmt: skip
# seed 004 (2) 推送SDK: 设备品牌、手机型号、系统版本、Push Token、AAID、应用包名、IMEI、OAID、AndroidID
PUSH = ["device_brand", "device_model", "os_version", "push_token", "aaid", "app_package_name", "imei",
        "oaid", "android_id"]  # fmt: skip


def obs(sdk: str, fields: list[str], at: int = 0, device: str = "dev-01", **kw: Any) -> SdkTelemetryEvent:
    """One collection as the app's SDK monitor reports it."""
    return SdkTelemetryEvent(
        event_id=f"sdk-{next(_serial)}", ts=T0 + at, app_id=APP, app_version=kw.pop("version", "9.4.1"),
        device_id=device, sdk_id=sdk, fields=fields, policy_consented=kw.pop("consented", True), **kw,
    )  # fmt: skip


def run(policy: Any, *batches: list[SdkTelemetryEvent], consents: list[Consent] = ()) -> list[Any]:  # type: ignore[assignment]
    """The batches in arrival order through the real engine; the newest revision of each alert."""
    spec = next(s for s in load_detectors(policy) if s.kind == "sdk_overcollection")
    e = Engine([spec], Catalog(policy), Pseudonymizer(b"qa-sdk-cases-key-0123456789"))
    e.apply_reference("consents", refs("consents", list(consents)))
    alerts: list[Any] = []
    offset = 0
    for batch in batches:
        alerts += e.process("sdk", "pfi.sdk", 0, fed("sdk", batch, "pfi.sdk", offset)) + e.advance()
        offset += len(batch)
    alerts += e.drain()
    out = {a.alert_id: a for a in latest(sorted(alerts, key=lambda a: a.revision))}
    for a in out.values():
        assert CUSTOMER not in a.model_dump_json(), a.summary
        assert a.title_zh and a.title_en and a.regulation, a.rule_id
    return list(out.values())


def rules(alerts: list[Any]) -> dict[str, str]:
    """rule -> severity of each alert."""
    return {a.rule_id.rsplit(".", 1)[1]: a.severity.value for a in alerts}


def agreed(at: int, status: str = "granted", channel: str | None = None) -> Consent:
    return Consent(subject_id=CUSTOMER, ts=T0 + at, purpose="privacy_policy", status=status, channel=channel)


# -- normal work near the lines: silent --------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "fields"),
    [
        ("性能监控SDK", TINGYUN),
        ("推送SDK", PUSH),
        ("华为推送SDK", PUSH),
        ("神策SDK", ["event_click", "mobile_phone"]),
    ],
)
def test_an_sdk_reported_under_the_name_the_privacy_policy_gives_it_is_that_sdk(policy, name, fields) -> None:
    """Seed 004 §一.(一).6 (2) "我行掌上银行家使用了推送SDK", (7) "我行掌上银行家使用了性能监控SDK": the app
    reports each SDK by the policy's own name; collecting the declared fields is not an undeclared SDK."""
    assert run(policy, [obs(name, fields)]) == []


def test_declared_fields_under_pre_release_and_build_version_strings_are_silent(policy) -> None:
    events = [obs("push", PUSH, version=v) for v in ("9.4.1-rc2", "9.4.1+build.4711", "10", "v9.5")]
    events += [obs("tencent_x5", ["device_model", "cpu_info", "installed_apps"], version="9.4.1.20260101")]
    assert run(policy, events) == []


def test_amap_reading_the_timezone_through_its_declared_system_information_is_silent(policy) -> None:
    """Seed 004 (10) 高德定位SDK declares 设备参数及系统信息、位置信息、网络信息: the time zone and the
    carrier are system and network information (vague, not omitted)."""
    assert (
        run(policy, [obs("amap_location", ["location", "timezone", "carrier_name", "serial_number"])]) == []
    )


def test_the_ocr_sdk_receiving_the_card_and_id_images_it_exists_to_read_is_silent(policy) -> None:
    """Seed 004 (9): 为了向您提供卡号及身份证件识别服务 ... 用于实现身份认证、银行卡识别功能."""
    assert run(policy, [obs("tencent_ocr", ["bank_card_image", "id_document_image"])]) == []
    # and the numbers it reads off them: the service it is declared for
    assert (
        run(policy, [obs("tencent_ocr", ["bank_card_image", "payment_account_no", "id_document_no"])]) == []
    )


def test_the_analytics_sdk_receiving_the_phone_and_account_number_it_declares_is_silent(policy) -> None:
    """Seed 004 (4) 神策SDK lists 手机号、交易账号 among its fields, uncomfortable as that is."""
    fields = ["event_login", "mobile_phone", "payment_account_no", "idfv"]
    assert run(policy, [obs("sensors_analytics", fields, dest_host="datasink.sensorsdata.cn")]) == []


def test_a_declared_host_written_in_capitals_is_the_declared_host(policy) -> None:
    """Host names are case-insensitive (RFC 3986 §3.2.2); the app reports what the SDK's URL says."""
    events = [
        obs("amap_location", ["location"], dest_host="ApiLocate.AMap.com"),
        obs("tencent_tmf", ["device_model"], dest_host="TMF.QQ.COM"),
    ]
    assert run(policy, events) == []


def test_a_buffered_reading_from_yesterday_does_not_make_todays_hour_a_burst(policy) -> None:
    """A phone offline overnight uploads one Amap reading from yesterday after today's 60 readings
    in one hour (the bank's bound for Amap: 60 per device-hour). No hour holds 61."""
    today = [obs("amap_location", ["location"], at=10 * HOUR + i * MIN) for i in range(60)]
    yesterday = [obs("amap_location", ["location"], at=10 * HOUR - DAY)]
    assert run(policy, today, yesterday) == []


def test_a_user_who_agreed_again_after_withdrawing_may_be_collected_from(policy) -> None:
    consents = [agreed(-30 * DAY), agreed(-2 * HOUR, "withdrawn"), agreed(-MIN)]
    assert run(policy, [obs("tencent_tmf", ["device_model"], subject_id=CUSTOMER)], consents=consents) == []


# -- violations -------------------------------------------------------------------------------------
def test_a_late_reading_that_completes_a_burst_is_still_caught(policy) -> None:
    """60 readings from 10:00 to 10:59, then a late upload of one taken at 10:30: the hour to 10:59
    holds 61."""
    burst = [obs("amap_location", ["location"], at=10 * HOUR + i * MIN) for i in range(60)]
    late = [obs("amap_location", ["location"], at=10 * HOUR + 30 * MIN + 1000)]
    assert rules(run(policy, burst, late)) == {"too_frequent": "medium"}


def test_an_undeclared_tracker_sending_to_the_united_states_is_cross_border_critical(policy) -> None:
    """Seed 004 §二.(一)1 binds everything collected in China, declared SDK or not; seed 001 §三.2(5)."""
    ev = obs(
        "com.acme.insight",
        ["oaid", "installed_apps"],
        dest_host="collect.acme-insight.com",
        dest_country="US",
    )
    got = run(policy, [ev])
    assert rules(got) == {"undeclared_sdk": "high", "country_not_allowed": "critical"}
    border = next(a for a in got if a.rule_id.endswith("country_not_allowed"))
    assert "US" in border.summary and "com.acme.insight" in border.summary


def test_an_undeclared_sdk_collecting_before_the_user_agreed_is_also_before_consent(policy) -> None:
    """Seed 004 序言 and §一.(一).7: nothing is collected before the user agrees, least of all by an SDK
    the policy never named."""
    got = run(policy, [obs("com.umeng.analytics", ["oaid"], consented=False)])
    assert rules(got) == {"undeclared_sdk": "high", "before_consent": "high"}
    assert "友盟+统计SDK" in next(a for a in got if a.rule_id.endswith("undeclared_sdk")).summary


@pytest.mark.parametrize("country", ["HK", "hk", "HKG", "344"])
def test_a_declared_sdk_sending_to_hong_kong_is_abroad(policy, country) -> None:
    """Seed 004: 本政策适用中华人民共和国法律(不包括香港...): Hong Kong is outside for the policy."""
    got = run(policy, [obs("tencent_x5", ["device_model"], dest_host="log.tbs.qq.com", dest_country=country)])
    assert rules(got) == {"country_not_allowed": "critical"} and "HK" in got[0].summary


@pytest.mark.parametrize("country", ["cn", "CHN", "156", "中国境内", "中华人民共和国境内", "Mainland"])
@pytest.mark.parametrize("sdk", ["tencent_x5", "com.umeng.analytics"])
def test_a_home_country_written_in_lower_case_is_home(policy, sdk, country) -> None:
    """A monitor that reports `cn`, or ISO 3166's alpha-3 or numeric code: a declared SDK, and an
    undeclared one held to the home country. Or the seed's own words (seed 004 §二.(一)1: 在中华人民
    共和国境内收集和产生的个人信息, 将存储在中华人民共和国境内): a probe's 中国境内 was a critical alert,
    and its `Mainland` (mainland China, as 大陆 is) too."""
    got = run(policy, [obs(sdk, ["device_model"], dest_host="log.tbs.qq.com", dest_country=country)])
    assert "country_not_allowed" not in rules(got)


@pytest.mark.parametrize(
    ("sdk", "field"),
    [
        ("push", "AndroidID"),
        ("push", "Android ID"),
        ("push", "SerialNumber"),
        ("push", "Push Token"),
        ("push", "Google AdvertisingID"),
        ("push", "IP地址"),
        ("push", "UserID"),
        ("push", "EMMCID/UFSID"),
        ("sensors_analytics", "手机号"),
        ("sensors_analytics", "交易账号"),
        ("tencent_x5", "剪切板"),
        ("tencent_x5", "剪切板内容"),
        ("megvii_face", "设备加速器"),
        ("device_fingerprint", "亮度"),
        ("device_fingerprint", "语言"),
        ("device_fingerprint", "运营商统一匿名标识"),
        ("tingyun_apm", "App包名"),
    ],
)
def test_a_declared_field_written_as_the_privacy_policy_writes_it_is_that_field(policy, sdk, field) -> None:
    """Seed 004 §一.(一).6 lists each SDK's fields in its own words (推送SDK: AndroidID、Push Token、
    IP地址…; 神策: 手机号、交易账号; X5: 剪切板; 旷视: 设备加速器; 设备指纹: 亮度、语言、运营商统一匿名标识;
    性能监控: App包名): an SDK monitor reporting them so reports declared fields, whatever its case,
    spaces or punctuation (a probe's 设备加速器, 亮度 and App包名 were unknown fields)."""
    hosts = {
        "sensors_analytics": "datasink.sensorsdata.cn",
        "device_fingerprint": "mbank.bjbank.example/bsfit/",
    }
    assert run(policy, [obs(sdk, [field], dest_host=hosts.get(sdk))]) == []


def test_a_customers_name_sent_to_an_sdk_is_the_catalogs_c2(policy) -> None:
    """classification.yaml makes customer_name C2; sdks.yaml, naming it for over-collection, gives no
    class of its own: the alert says C2, as for an ID number."""
    got = run(
        policy,
        [obs("sensors_analytics", ["event_login", "customer_name"], dest_host="datasink.sensorsdata.cn")],
    )
    assert [a.jr_class for a in got] == ["C2"]


def test_the_ocr_sdk_receiving_an_sms_code_is_critical(policy) -> None:
    """Seed 004 流程描述(4)⑪, seed 001 §三.3(4): authentication helpers are never entrusted."""
    got = run(policy, [obs("tencent_ocr", ["bank_card_image", "sms_code"])])
    assert rules(got) == {"c3_or_auth_helper": "critical"} and "sms_code" in got[0].summary


def test_the_browser_kernel_reading_sms_content_is_an_omitted_field(policy) -> None:
    """SMS content is 通信内容, C2 (art. 5's 50 tier; the catalog's communication_text): high, as the
    catalog's call_log is, however the telemetry spells it (a review's 短信内容 was C1, 聊天记录 C2)."""
    for said in ("sms_content", "短信内容", "聊天记录", "call_log"):
        got = run(policy, [obs("tencent_x5", ["device_model", said])])
        assert rules(got) == {"omitted_field": "high"} and got[0].jr_class == "C2", said
    got = run(policy, [obs("tencent_x5", ["device_model", "sms_content"])])
    assert "sms_content" in got[0].summary and got[0].counts["label_clear"] == 1


def test_clipboard_content_on_an_sdk_that_declares_none_is_named_as_the_clipboard(policy) -> None:
    """Seed 004 §一.(一).6 declares X5's 剪切板, TMF's not: TMF reporting 剪切板内容 (the clipboard's
    content, as monitors write it) collects a field it omits, and the alert names the field, not
    "(unknown field)" (a probe's)."""
    (a,) = run(policy, [obs("tencent_tmf", ["device_model", "剪切板内容"], dest_host="tmf.qq.com")])
    assert a.rule_id.endswith("omitted_field") and "clipboard" in a.summary, a.summary
    assert "(unknown field)" not in a.summary


def test_the_apm_sdk_receiving_the_customer_name_contradicts_the_policy(policy) -> None:
    """Seed 004 §一.(二)4: 我行不会将存储在分析软件中的信息与您在使用服务过程中输入的任何个人身份信息相结合."""
    got = run(policy, [obs("tingyun_apm", ["cpu_usage", "customer_name"], subject_id=CUSTOMER)])
    assert rules(got) == {"incorrect_field": "high"}


def test_collection_while_the_privacy_policy_agreement_is_withdrawn(policy) -> None:
    consents = [agreed(-30 * DAY), agreed(-MIN, "withdrawn")]
    got = run(policy, [obs("tencent_tmf", ["device_model"], subject_id=CUSTOMER)], consents=consents)
    assert rules(got) == {"before_consent": "high"}
    # a consent platform that logs where the user said it (in the app): the same withdrawal, and
    # the same agreement again (a probe's withdrawal logged so was missed)
    in_app = [agreed(-30 * DAY, channel="app_push"), agreed(-MIN, "withdrawn", channel="app_push")]
    got = run(policy, [obs("tencent_tmf", ["device_model"], subject_id=CUSTOMER)], consents=in_app)
    assert rules(got) == {"before_consent": "high"}
    again = [*in_app, agreed(-MIN // 2, channel="app_push")]
    assert run(policy, [obs("tencent_tmf", ["device_model"], subject_id=CUSTOMER)], consents=again) == []


@pytest.mark.parametrize(
    "said",
    [
        "隐私政策",
        "《隐私政策》",
        "掌上银行家隐私政策",
        "个人信息保护政策",
        "privacy_policy_v5.2",
        "隐私政策授权",
    ],
)
def test_a_privacy_policy_agreement_by_its_chinese_name_or_version_is_the_agreement(policy, said) -> None:
    """Seed 004 隐私政策 (三): 关闭授权…我行将不再继续采集. A consent platform logs the agreement by the
    policy's own name or with its version: a probe's SDK collected unseen after such a withdrawal, and
    before the first agreement (purposes.yaml `agreements`)."""
    consents = [agreed(-30 * DAY), agreed(-MIN, "withdrawn").model_copy(update={"purpose": said})]
    got = run(policy, [obs("tencent_tmf", ["device_model"], subject_id=CUSTOMER)], consents=consents)
    assert rules(got) == {"before_consent": "high"}
    first = [agreed(MIN).model_copy(update={"purpose": said})]
    got = run(policy, [obs("tencent_tmf", ["device_model"], subject_id=CUSTOMER)], consents=first)
    assert rules(got) == {"before_consent": "high"}
    # agreed under that name, the SDK collects as declared
    assert (
        run(
            policy,
            [obs("tencent_tmf", ["device_model"], subject_id=CUSTOMER)],
            consents=first[:0] + [agreed(-MIN).model_copy(update={"purpose": said})],
        )
        == []
    )
