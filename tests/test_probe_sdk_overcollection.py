"""The probe's cases for sdk_overcollection, written from seed 004's privacy policy alone (§一.(一).6:
each SDK and what it collects, in the policy's words; §一.(一).7: anything else needs consent first;
序言 and §五.(三): collection only once agreed and never after 关闭授权; §二.(一)1: collected in China,
stored in China) and its PFI rules (流程描述(4)⑪: C3 and authentication helpers are never entrusted
to a third party), not from the detector's thresholds. Each record is logged as the app's SDK
monitor would write it, fields and permissions in the privacy policy's own words or the platform's
names, and replayed through the real decoder and engine. Half are normal work near a line (silent),
half violations that barely cross it (the rules a compliance officer would name)."""

from __future__ import annotations

from itertools import count
from typing import Any

import pytest
from conftest import T0
from probe_replay import replayed

MIN, HOUR = 60_000, 3_600_000
USER = "CIF0016180339"
_ids = count()


def obs(sdk: str, fields: list[str] = (), at: int = 0, **kw: Any) -> dict[str, Any]:  # type: ignore[assignment]
    """One collection as the app's SDK monitor logs it; optional fields left out unless given."""
    return {
        "event_id": f"sdk-{next(_ids)}", "ts": T0 + at, "app_id": "cn.bjbank.mbanker", "app_version": "9.4.1",
        "device_id": "d-7f3a", "sdk_id": sdk, "fields": list(fields), "policy_consented": True, **kw,
    }  # fmt: skip


def agreed(at: int, status: str = "granted", purpose: str = "privacy_policy") -> dict[str, Any]:
    return {"subject_id": USER, "ts": T0 + at, "purpose": purpose, "status": status}


CAM, MIC = "android.permission.CAMERA", "android.permission.RECORD_AUDIO"
FINE = "android.permission.ACCESS_FINE_LOCATION"

# (case, the SDK monitor's records, consents, the rules the seed gives, why)
CASES: list[tuple[str, list[dict[str, Any]], list[dict[str, Any]], set[str], str]] = [
    # -- normal work near a line: silent ------------------------------------------------------------
    ("megvii_liveness", [obs("旷视SDK", ["设备加速器"], permissions=[CAM, "android.permission.WRITE_EXTERNAL_STORAGE"])], [], set(),
     "§一.(一).6(1): 访问相机、存储权限、设备加速器 for 活体识别"),
    ("xiaomi_push_words", [obs("小米推送SDK", ["设备品牌", "手机型号", "系统版本", "Push Token", "IMEI", "AndroidID", "应⽤包名", "⼿机电量"],
                               dest_host="api.xmpush.xiaomi.com")], [], set(),
     "§一.(一).6(2) 推送SDK, in the policy's own spelling (Kangxi ⽤, ⼿)"),
    ("huawei_push_rare_words", [obs("华为推送SDK", ["HMSCore版本号", "AAID", "UserID", "Google AdvertisingID", "设备归属地(国家或地区)",
                                               "⼿机Region设置", "锁屏状态", "移动国家码", "移动网号", "SIM卡运营商信息"])], [], set(),
     "§一.(一).6(2): every one of these is in the push SDKs' list"),
    ("push_location_permission", [obs("OPPO推送SDK", ["位置信息"], permissions=[FINE])], [], set(),
     "§一.(一).6(2): the push SDKs declare 位置信息, which needs the location permission"),
    ("tmf_words", [obs("腾讯TMF SDK", ["手机存储容量", "固件版本", "分辨率", "cpuinfo", "设备平台", "设备厂商", "SIM卡信息", "WIFI状态"])], [], set(),
     "§一.(一).6(3) TMF's list word for word"),
    ("sensors_events_and_ids", [obs("神策SDK 6.8.0", ["启动", "点击", "浏览", "报错", "使用时间", "GPS位置", "Mac地址", "手机号", "交易账号", "运营商名称"],
                                    permissions=["android.permission.READ_PHONE_STATE", FINE, "android.permission.CALL_PHONE"],
                                    dest_host="datasink.sensorsdata.cn")], [], set(),
     "§一.(一).6(4): 神策 declares these fields and 电话状态、电话、位置 permissions"),
    ("cloud_cert_no_host", [obs("云证书SDK", ["设备名称", "SE标识", "Android ID", "IDFV", "MAC地址", "IP地址"])], [], set(),
     "§一.(一).6(5): 云证书's list; the policy names no host to hold it to"),
    ("fingerprint_words", [obs("设备指纹SDK", ["IMEI", "IMSI", "蓝牙地址", "内网IP", "WIFI信息", "经纬度信息", "亮度", "语言", "时区"])], [], set(),
     "§一.(一).6(6): 设备基础信息(型号、存储、电量、亮度)、系统基础信息(系统版本、语言、时区)"),
    ("tingyun_words", [obs("性能监控SDK", ["是否越狱或root", "是否打开GPS", "应用安装列表", "发行渠道ID", "CPU指令集架构", "剩余电量"],
                           dest_host="wkrd.tingyun.com")], [], set(),
     "§一.(一).6(7) 性能监控SDK's list"),
    ("ocr_camera_media", [obs("OCR扫描SDK", [], permissions=[CAM, "android.permission.READ_MEDIA_IMAGES"])], [], set(),
     "§一.(一).6(9): 访问相机、存储权限 (Android 13's photo permission is 存储)"),
    ("amap_package_name", [obs("com.amap.api.location", ["位置信息", "网络信息"], permissions=["android.permission.ACCESS_COARSE_LOCATION"])], [], set(),
     "§一.(一).6(10): 高德定位SDK, reported by its package name"),
    ("x5_mic_camera_clipboard", [obs("com.tencent.smtt.sdk", ["剪切板", "应用列表", "WIFI参数"], permissions=[MIC, CAM])], [], set(),
     "§一.(一).6(11): X5 declares 剪切板、应用列表、WIFI参数、摄像头权限、麦克风权限"),
    ("mixed_case_id", [obs("SENSORS_ANALYTICS", ["IDFA", "OAID"])], [], set(),
     "§一.(一).6(4): the same SDK however the app capitalizes its id"),
    ("no_optional_fields", [obs("腾讯人脸识别SDK", ["设备型号", "网络状态", "IP地址"])], [], set(),
     "§一.(一).6(8): no subject, host, country or permissions logged: nothing to hold against it"),
    ("late_record_after_agreement", [obs("神策SDK", ["点击"], at=5 * HOUR, subject_id=USER),
                                     obs("神策SDK", ["浏览"], at=HOUR, subject_id=USER)], [agreed(0)], set(),
     "序言: agreed at 00:00; the 01:00 collection arrives after the 05:00 one"),
    ("agreed_again_after_closing", [obs("高德定位SDK", ["位置信息"], at=2 * HOUR, subject_id=USER)],
     [agreed(0), agreed(HOUR, "withdrawn"), agreed(90 * MIN)], set(),
     "§五.(三): 随时给予或撤销您的授权同意; agreed again before the collection"),
    ("hms_push_package_name", [obs("com.huawei.hms.push", ["Push Token", "AAID"])], [], set(),
     "§一.(一).6(2): 华为推送SDK, reported by its package name"),
    ("permissions_in_the_policys_words", [obs("旷视SDK", [], permissions=["访问相机", "存储权限"])], [], set(),
     "§一.(一).6(1): 该SDK 需要获取访问相机、存储权限, as the policy writes them"),
    ("full_width_and_combined_terms", [obs("腾讯TMF SDK", ["mcc/mnc", "系统增量版本/可视版本"]),
                                       obs("推送SDK", ["设备归属地（国家或地区）"])], [], set(),
     "§一.(一).6(2)(3): the policy's own combined terms, full-width brackets as Chinese text writes them"),
    ("fingerprint_carrier_anonymous_id", [obs("设备指纹SDK", ["运营商统一匿名标识", "联网方式和状态"])], [], set(),
     "§一.(一).6(6): 联网方式和状态及运营商统一匿名标识"),
    ("tingyun_cell_sensor", [obs("性能监控SDK", ["基站传感器信息", "屏幕信息", "WIFI接入点"])], [], set(),
     "§一.(一).6(7): 基站传感器信息、屏幕信息、WIFI接入点"),
    ("permission_words_of_x5_and_face", [obs("腾讯X5浏览器内核SDK", [], permissions=["摄像头权限", "地理位置"]),
                                         obs("腾讯人脸识别SDK", [], permissions=["访问相机权限"])], [], set(),
     "§一.(一).6(8)(11): 摄像头权限、地理位置; 访问相机权限, the policy's words for what they declare"),
    ("tingyun_app_name_words", [obs("性能监控SDK", ["App名称(发布名称或显示名称)", "App bundle ID(iOS)或App包名(Android)"])], [], set(),
     "§一.(一).6(7): the policy's own terms for the app's name and package"),
    # -- violations that barely cross: the rules the seed gives -----------------------------------------
    ("cloud_cert_imei", [obs("云证书SDK", ["IMEI"])], [], {"omitted_field"},
     "§一.(一).6(5): 云证书 lists MAC地址、Android ID、IDFV, not IMEI"),
    ("tmf_imei", [obs("腾讯TMF SDK", ["IMEI"])], [], {"omitted_field"},
     "§一.(一).6(3): TMF's list has no device identifier"),
    ("face_sdk_id_number", [obs("腾讯人脸识别SDK", ["身份证号"])], [], {"omitted_field"},
     "§一.(一).6(8): 人脸图像信息、设备型号、操作系统、网络状态、IP地址 only"),
    ("fingerprint_phone_number", [obs("设备指纹SDK", ["手机号"])], [], {"omitted_field"},
     "§一.(一).6(6): no phone number in 设备指纹's list"),
    ("push_contacts", [obs("vivo推送SDK", ["通讯录"])], [], {"omitted_field"},
     "§一.(一).6(2): the push SDKs' long list has no address book"),
    ("megvii_microphone", [obs("旷视SDK", [], permissions=[MIC])], [], {"permission_not_declared"},
     "§一.(一).6(1): 相机、存储、加速器 only"),
    ("ocr_location", [obs("OCR扫描SDK", [], permissions=[FINE])], [], {"permission_not_declared"},
     "§一.(一).6(9): 访问相机、存储权限 only"),
    ("push_read_sms", [obs("华为推送SDK", [], permissions=["android.permission.READ_SMS"])], [], {"permission_not_declared"},
     "§一.(一).6(2): 通知栏权限 and the fields listed; no SMS"),
    ("tingyun_sms_code", [obs("性能监控SDK", ["短信验证码"])], [], {"c3_or_auth_helper"},
     "流程描述(4)⑪: C2 用户鉴别辅助信息 are never entrusted to a third party"),
    ("ocr_cvn2", [obs("OCR扫描SDK", ["卡片验证码(CVN和CVN2)"])], [], {"c3_or_auth_helper"},
     "定义 C3①: the card's CVN2, even by the SDK that reads the card"),
    ("jpush_undeclared", [obs("极光推送SDK", ["设备品牌"])], [], {"undeclared_sdk"},
     "§一.(一).6(2) names 小米、华为、VIVO、OPPO push only; §一.(一).7"),
    ("honor_push_undeclared", [obs("荣耀推送SDK", ["设备品牌"])], [], {"undeclared_sdk"},
     "§一.(一).6(2): Honor is not among the four push vendors"),
    ("umeng_undeclared", [obs("com.umeng.analytics", ["AndroidID"])], [], {"undeclared_sdk"},
     "§一.(一).7: an SDK the policy never names"),
    ("tingyun_singapore", [obs("性能监控SDK", ["设备型号"], dest_host="wkrd.tingyun.com", dest_country="SG")], [], {"country_not_allowed"},
     "§二.(一)1: 在中华人民共和国境内收集和产生的个人信息, 将存储在中华人民共和国境内"),
    ("before_agreeing", [obs("神策SDK", ["启动"], policy_consented=False)], [], {"before_consent"},
     "序言: 如您不同意…请不要点击同意; no collection before the tap"),
    ("after_closing_authorisation", [obs("高德定位SDK", ["位置信息"], at=2 * HOUR, subject_id=USER)],
     [agreed(0), agreed(HOUR, "取消授权", "隐私政策")], {"before_consent"},
     "§五.(三): 关闭后我行将不再继续采集"),
    ("megvii_microphone_in_words", [obs("旷视SDK", [], permissions=["麦克风权限"])], [], {"permission_not_declared"},
     "§一.(一).6(1): the microphone, as the policy names it for X5, is not 旷视's"),
    ("ocr_ios_location", [obs("OCR扫描SDK", [], permissions=["NSLocationWhenInUseUsageDescription"])], [], {"permission_not_declared"},
     "§一.(一).6(9): an iOS build asking for location"),
    ("megvii_harmony_contacts", [obs("旷视SDK", [], permissions=["ohos.permission.READ_CONTACTS"])], [], {"permission_not_declared"},
     "§一.(一).6(1): a HarmonyOS build reading contacts"),
    ("megvii_location_in_words", [obs("旷视SDK", [], permissions=["位置权限"])], [], {"permission_not_declared"},
     "§一.(一).6(1): 位置权限, 神策's word for it, is not 旷视's"),
    ("ocr_phone_state_in_words", [obs("OCR扫描SDK", [], permissions=["电话状态权限"])], [], {"permission_not_declared"},
     "§一.(一).6(9): 电话状态权限, as 神策's item words it, is not OCR's"),
    ("sensors_camera_in_words", [obs("神策SDK", [], permissions=["摄像头权限"])], [], {"permission_not_declared"},
     "§一.(一).6(4): 神策 asks 网络、电话状态、存储、GET_TASK、电话、位置; no camera"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "records", "consents", "expected", "why"), CASES, ids=[c[0] for c in CASES])
def test_the_seed_gives_this_verdict(
    tmp_path, policy, catalog, case, records, consents, expected, why
) -> None:
    alerts, dead = replayed(tmp_path, policy, catalog, "sdk_overcollection", sdk=records, consents=consents)
    assert dead == [], dead
    got = {a.rule_id.rsplit(".", 1)[1] for a in alerts}
    assert got == expected, f"{why}: {[(a.rule_id, a.severity.value, a.summary) for a in alerts]}"
