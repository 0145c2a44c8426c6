"""QA cases for sdk_overcollection, written from seed 004 §一.(一).6 (the bank's privacy policy lists
each third-party SDK and the fields it collects) rather than from the detector's constants.

Near misses: an SDK collecting exactly what the policy declares for it, in an app version released
after the policy; the declared vendor endpoints; a collection in the very millisecond the user
agreed. Violations: one field the policy does not declare for that SDK (the device IMEI, the
location), a field the policy says the analytics SDK never gets, collection a second before the
user agreed, an SMS code reaching an SDK.
"""

from __future__ import annotations

from typing import Any

from conftest import T0, fed, refs

from detectors import load_detectors
from policy.catalog import Catalog
from schemas.models import Consent, SdkTelemetryEvent
from streams.alerts import latest
from streams.engine import Engine
from streams.pseudonym import Pseudonymizer

MIN, HOUR = 60_000, 3_600_000
CUSTOMER = "CIF0055501234"
NEW_VERSION = "10.1.0"  # a release after every declaration of policy/sdks.yaml

# seed 004 (3) 腾讯TMF SDK, word for word: 手机存储容量、mcc/mnc、手机型号、系统版本、固件版本、分辨率、cpuinfo、
# 设备品牌、系统增量版本/可视版本、设备厂商、设备名称、设备平台、网络状态,WIFI状态、SIM卡信息
TMF = ["storage_capacity", "mcc", "mnc", "device_model", "os_version", "firmware_version", "screen_resolution",
       "cpu_info", "device_brand", "os_incremental_version", "os_display_version", "device_manufacturer",
       "device_name", "device_platform", "network_state", "wifi_state", "sim_info"]  # fmt: skip
# seed 004 (5) 云证书SDK: 设备名称、设备型号、系统类型、系统版本、网络类型、IP地址、MAC地址、SE标识、Android ID、IDFV
CLOUD_CERT = ["device_name", "device_model", "os_type", "os_version", "network_type", "ip_address",
              "mac_address", "se_id", "android_id", "idfv"]  # fmt: skip
_serial = iter(range(10**9))


def obs(sdk: str, fields: list[str], at: int = 0, device: str = "dev-7f3a", **kw: Any) -> SdkTelemetryEvent:
    return SdkTelemetryEvent(
        event_id=f"sdk-{next(_serial)}", ts=T0 + at, app_id="cn.bjbank.mbanker", app_version=kw.pop("version", NEW_VERSION),
        device_id=device, sdk_id=sdk, fields=fields, policy_consented=kw.pop("consented", True), **kw,
    )  # fmt: skip


def run(policy: Any, events: list[SdkTelemetryEvent], consents: list[Consent] = ()) -> list[Any]:  # type: ignore[assignment]
    spec = next(s for s in load_detectors(policy) if s.kind == "sdk_overcollection")
    e = Engine([spec], Catalog(policy), Pseudonymizer(b"qa-sdk-key-0123456789abcd"), rollup_block=1000)
    e.apply_reference("consents", refs("consents", list(consents)))
    alerts = e.process("sdk", "pfi.sdk", 0, fed("sdk", events, "pfi.sdk")) + e.advance() + e.drain()
    out = {a.alert_id: a for a in latest(sorted(alerts, key=lambda a: a.revision))}
    return list(out.values())


def rule(a: Any) -> str:
    return a.rule_id.rsplit(".", 1)[1]


def clean(alerts: list[Any]) -> None:
    for a in alerts:
        assert CUSTOMER not in a.model_dump_json(), a.summary


def test_tmf_collecting_exactly_its_declared_fields_in_a_new_version_is_silent(policy) -> None:
    assert run(policy, [obs("tencent_tmf", TMF, dest_host="tmf.qq.com", subject_id=CUSTOMER)]) == []


def test_every_declared_sdk_at_its_declared_endpoint_is_silent(policy) -> None:
    events = [
        obs("cloud_certificate", CLOUD_CERT),
        obs("com.huawei.hms.push.HmsMessageService", ["push_token", "aaid", "device_brand", "hms_core_version"],
            dest_host="push-api.cloud.huawei.com"),
        obs("device_fingerprint", ["imei", "oaid", "bluetooth_mac", "location", "battery", "timezone"],
            dest_host="mbank.bjbank.example", dest_path="/bsfit/collect"),
        obs("sensors_analytics", ["event_click", "location", "mobile_phone", "payment_account_no"],
            dest_host="datasink.sensorsdata.cn"),
    ]  # fmt: skip
    assert run(policy, events) == []


def test_tmf_adding_the_device_imei_fires_medium_naming_it(policy) -> None:
    (a,) = run(policy, [obs("tencent_tmf", [*TMF, "imei"], dest_host="tmf.qq.com", subject_id=CUSTOMER)])
    assert rule(a) == "omitted_field" and a.severity.value == "medium"
    assert "imei" in a.summary and NEW_VERSION in a.summary and a.counts["label_clear"] == len(TMF)
    assert a.title_zh and a.title_en and a.regulation
    clean([a])


def test_the_e_signature_sdk_reading_the_location_fires(policy) -> None:
    (a,) = run(policy, [obs("cloud_certificate", [*CLOUD_CERT, "location"])])
    assert rule(a) == "omitted_field" and a.severity.value == "medium" and "location" in a.summary


def test_the_analytics_sdk_combining_the_customer_name_contradicts_the_policy(policy) -> None:
    """seed 004 §一.(二)4: analytics data is never combined with identity entered in the app."""
    (a,) = run(policy, [obs("sensors_analytics", ["event_login", "customer_name"], subject_id=CUSTOMER)])
    assert rule(a) == "incorrect_field" and a.severity.value == "high"
    clean([a])


def test_consent_in_the_same_millisecond_is_in_time_a_second_early_is_not(policy) -> None:
    agreed = Consent(subject_id=CUSTOMER, ts=T0, purpose="privacy_policy", status="granted")
    assert run(policy, [obs("tencent_tmf", TMF[:3], subject_id=CUSTOMER)], [agreed]) == []
    (a,) = run(policy, [obs("tencent_tmf", TMF[:3], at=-1000, subject_id=CUSTOMER)], [agreed])
    assert rule(a) == "before_consent" and a.severity.value == "high"
    clean([a])


def test_an_sms_code_reaching_the_push_sdk_is_critical(policy) -> None:
    (a,) = run(policy, [obs("push", ["push_token", "sms_code"], dest_host="api.xmpush.xiaomi.com")])
    assert rule(a) == "c3_or_auth_helper" and a.severity.value == "critical" and a.jr_class == "C2"


def test_an_offline_device_uploading_late_joins_the_episode_it_belongs_to(policy) -> None:
    """Devices upload buffered telemetry late: an observation of 09:00 arrives after one of 10:00.
    One alert, whose first sighting is the earliest observation."""
    events = [
        obs("tencent_tmf", ["imei"], at=HOUR, device="dev-1"),
        obs("tencent_tmf", ["imei"], at=0, device="dev-2"),
    ]
    (a,) = run(policy, events)
    assert a.counts["observations"] == 2 and a.counts["devices"] == 2
    assert (a.first_seen, a.last_seen) == (T0, T0 + HOUR)
