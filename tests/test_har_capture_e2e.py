"""A real capture tool end to end: mitmproxy 11 (`mitmdump`, its own tool venv made by `make
test-deps`) on a loopback port answers every request itself (`connection_strategy=lazy`, an
addon: nothing leaves the machine) and writes the HAR (`hardump`) of an app's traffic over HTTP
and HTTPS, trusting mitmproxy's CA. `lifemon ship --format har` sends it to a real Tansu broker,
the monitor judges it into chDB, and exactly the expected findings come out, with their PoliCheck
labels, and no others. The same capture on the HAR raw topic gives the very same alerts."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from confluent_kafka import Producer
from receivers import free_port
from test_har import CARD, IMEI, IMEI_BAD, PHONE, RIC, SIGNATURES
from test_pipeline import ROOT, latest_alerts, make_config, monitor, read_all

from streams.alerts import actor_of

pytestmark = pytest.mark.integration
ADDON = Path(__file__).resolve().parent / "fixtures" / "har" / "answer_all.py"
TOOL = ROOT / ".lifemon" / "tools" / "mitmproxy" / "bin" / "mitmdump"  # made by `make test-deps`
APP, VERSION = "cn.bank.mobilebanking", "9.2.0"
BANK = "mbank.bjbank.example"  # policy/traffic.yaml first_party_hosts


def mitmdump() -> str | None:
    """The pinned tool venv's mitmdump (Makefile MITMPROXY), else LIFEMON_MITMDUMP or one on PATH."""
    return os.environ.get("LIFEMON_MITMDUMP") or (str(TOOL) if TOOL.exists() else shutil.which("mitmdump"))


def _wait_port(port: int, proc: subprocess.Popen, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"mitmdump exited: {proc.stdout.read() if proc.stdout else ''}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError("mitmdump did not listen")


def app_traffic(proxy: str, ca: Path) -> None:
    """What a banking app and its SDKs send, in order: one SDK call before the user agrees to the
    privacy policy, the agreement, then declared and undeclared fields, an SMS code, an undeclared
    SDK, a tracker named by a signature, a declared SDK abroad, first-party calls, and collection
    after the user withdrew the agreement."""
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({"http": proxy, "https": proxy}),
        urllib.request.HTTPSHandler(context=ssl.create_default_context(cafile=str(ca))),
    )

    def send(url: str, json_body: Any = None, form: dict[str, str] | None = None) -> None:
        data, headers = None, {"User-Agent": "BankApp/9.2.0 (Android 14; Pixel 8)"}
        if json_body is not None:
            data, headers["Content-Type"] = json.dumps(json_body).encode(), "application/json"
        if form is not None:
            data, headers["Content-Type"] = urlencode(form).encode(), "application/x-www-form-urlencoded"
        with opener.open(urllib.request.Request(url, data=data, headers=headers), timeout=10) as r:
            assert r.status == 200
        time.sleep(0.01)  # distinct request times: the timeline decides consent

    sensors = "https://datasink.sensorsdata.cn/sa?project=bank"
    send(
        sensors, {"event": "$AppStart", "properties": {"$model": "Pixel 8", "$os": "Android"}}
    )  # before consent
    send(f"https://{BANK}/api/privacy/agree", {"version": "2024-06"})
    send(f"http://api.xmpush.xiaomi.com/v1/reg?imei={IMEI}&oaid=a1b2c3d4")  # declared: silent
    send(
        sensors,
        {"event": "$AppClick", "properties": {"phone": PHONE, "$latitude": 39.91, "$model": "Pixel 8",
                                              "contacts": ["Zhang San 13900001111"]}},
    )  # fmt: skip
    send("https://tmf.qq.com/report", form={"model": "Pixel 8", "k1": IMEI_BAD})  # fails the check: silent
    send("https://tmf.qq.com/report", form={"model": "Pixel 8", "k1": IMEI})  # an IMEI TMF does not declare
    send(
        sensors, {"event": "$AppClick", "properties": {"idNo": RIC}}
    )  # the policy says analytics never gets it
    send("https://api.xmpush.xiaomi.com/v2/ack", form={"regId": "r-1", "smsCode": "382916"})
    send(f"https://{BANK}/api/login", {"phone": PHONE, "smsCode": "382916", "card": CARD})  # first party
    send(f"https://{BANK}/bsfit/collect", {"imei": IMEI, "mac": "AC:DE:48:00:11:22"})  # declared endpoint
    send(
        "https://apilocate.amap.com/mobile/binary", form={"imei": IMEI, "gps": "116.397128,39.916527"}
    )  # vague
    send("https://collect.adtrack.example/p?oaid=a1b2c3d4")  # nobody declares or signs it
    send(
        "https://t.appsflyer.com/api/v4/androidevent",
        {"advertiserId": "6D92078A-8246-4BA4-AE5B-76104861E7DC"},
    )
    send("http://api.xmpush.global.xiaomi.com/v1/reg", form={"regId": "r-1"})  # push, abroad
    # the user turns authorization off, in the app's signed envelope, Retrofit's trailing slash
    # (probe_t1 F9, F9b): what the location SDK sends after it is collection without consent (F4)
    send(
        f"https://{BANK}/api/privacy/agree/", {"data": {"agree": False, "version": "2024-06"}, "sign": "ab12"}
    )
    send("https://apilocate.amap.com/mobile/binary", form={"gps": "116.397128,39.916527"})


@pytest.fixture(scope="module")
def capture(tmp_path_factory) -> Iterator[Path]:
    tool = mitmdump()
    if tool is None:
        pytest.skip("mitmproxy 11 is not installed: `make test-deps` puts it in .lifemon/tools/mitmproxy")
    work = tmp_path_factory.mktemp("mitm")
    har, port = work / "capture.har", free_port()
    proc = subprocess.Popen(
        [tool, "--listen-host", "127.0.0.1", "-p", str(port), "-s", str(ADDON),
         "--set", f"confdir={work / 'conf'}", "--set", "connection_strategy=lazy", "--set", f"hardump={har}"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        _wait_port(port, proc)
        app_traffic(f"http://127.0.0.1:{port}", work / "conf" / "mitmproxy-ca-cert.pem")
    finally:
        proc.send_signal(signal.SIGINT)  # mitmdump writes the HAR as it shuts down
        proc.wait(timeout=60)
    yield har


EXPECTED = {  # (actor, rule) -> (severity, fields, labels)
    ("sensors_analytics", "before_consent"): ("High", [], {"label_clear": 2}),
    ("sensors_analytics", "omitted_field"): ("Medium", ["contacts"], {"label_clear": 3, "label_omitted": 1}),
    ("sensors_analytics", "incorrect_field"): ("High", ["id_document_no"], {"label_incorrect": 1}),
    ("tencent_tmf", "omitted_field"): ("Medium", ["imei"], {"label_clear": 1, "label_omitted": 1}),
    ("push", "c3_or_auth_helper"): ("Critical", ["sms_code"], {"label_clear": 1, "label_incorrect": 1}),
    ("push", "host_not_allowed"): ("High", [], {"label_clear": 1}),
    ("push", "country_not_allowed"): ("Critical", [], {"label_clear": 1}),
    ("collect.adtrack.example", "undeclared_sdk"): ("High", [], {"label_omitted": 1}),
    ("AppsFlyer", "undeclared_sdk"): ("High", [], {"label_omitted": 1}),
    # an SDK the policy never named is held to the bank's home country: AppsFlyer sends to the US
    ("AppsFlyer", "country_not_allowed"): ("Critical", [], {"label_omitted": 1}),
    ("amap_location", "before_consent"): ("High", [], {"label_clear": 1}),
}


def findings(alerts: dict[str, dict]) -> dict[tuple[str, str], tuple[str, list[str], dict[str, int]]]:
    out = {}
    for o in alerts.values():
        counts = o["unmapped"]["counts"]
        assert counts["observations"] == 1, o["finding_info"]["desc"]
        key = (actor_of(o), o["finding_info"]["analytic"]["uid"].rsplit(".", 1)[1])
        labels = {k: v for k, v in counts.items() if k.startswith("label_")}
        out[key] = (o["severity"], sorted(k[6:] for k in counts if k.startswith("field_")), labels)
    return out


def test_mitmproxy_capture_shipped_and_judged(capture, broker, ch, names, policy, catalog) -> None:
    entries = json.loads(capture.read_text())["log"]["entries"]
    assert len(entries) == 16 and {e["request"]["url"].split(":")[0] for e in entries} == {"http", "https"}
    config = make_config(names, broker, "chdb://unused")
    m = monitor(config, ch, policy, catalog)  # creates the topics
    shipped = subprocess.run(
        [sys.executable, "-m", "streams.cli", "ship", "--format", "har", str(capture), "--topic", config.topics.sdk,
         "--bootstrap", broker, "--app", APP, "--app-version", VERSION, "--signatures", str(SIGNATURES)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert shipped.returncode == 0, shipped.stderr
    assert "shipped 13 SDK request(s)" in shipped.stderr and "3 first-party request" in shipped.stderr
    assert "withdrew the agreement 1 time(s)" in shipped.stderr
    m.run(idle_exit_s=1.5, max_seconds=60)

    alerts = latest_alerts(read_all(broker, config.topics.alerts, expect_at_least=len(EXPECTED)))
    assert findings(alerts) == EXPECTED
    summaries = {
        (actor_of(o), o["finding_info"]["analytic"]["uid"].rsplit(".", 1)[1]): o["finding_info"]["desc"]
        for o in alerts.values()
    }
    undeclared = "undeclared_sdk"
    assert (
        "unknown third party at collect.adtrack.example" in summaries[("collect.adtrack.example", undeclared)]
    )
    assert "named by a tracker signature at t.appsflyer.com US" in summaries[("AppsFlyer", undeclared)]
    assert "sent personal information abroad (country US)" in summaries[("AppsFlyer", "country_not_allowed")]
    wire = json.dumps(list(alerts.values()), ensure_ascii=False)
    assert not [v for v in (IMEI, RIC, CARD, PHONE, "382916") if v in wire]  # no value reaches an alert

    db = names["database"]
    rows = ch.query(f"SELECT actor_id, rule_id, severity FROM {db}.alerts FINAL ORDER BY actor_id, rule_id")
    assert len(rows.result_rows) == len(EXPECTED)
    matrix = ch.query(
        f"SELECT org, outcome, sum(events) FROM {db}.event_rollups FINAL WHERE stream = 'sdk_label' "
        "GROUP BY org, outcome ORDER BY org"
    ).result_rows
    assert ("amap_location:imei", "vague", 1) in matrix and (
        "device_fingerprint:mac_address",
        "clear",
        1,
    ) in matrix


def test_the_har_raw_topic_gives_the_same_alerts(capture, broker, ch, names, policy, catalog) -> None:
    topic = f"pfi.raw.har.{names['tag']}"
    raw = {"har": {"enabled": True, "topic": topic, "app_id": APP, "app_version": VERSION,
                   "signatures": str(SIGNATURES)}}  # fmt: skip
    config = make_config(names, broker, "chdb://unused", raw_sources=raw)
    m = monitor(config, ch, policy, catalog)
    document = capture.read_bytes()
    last = max(e["startedDateTime"] for e in json.loads(document)["log"]["entries"])
    p = Producer({"bootstrap.servers": broker, "message.max.bytes": 10_000_000})
    # one capture per record, stamped when it ends (as a shipper would); the key names the device
    stamp = round(datetime.fromisoformat(last).timestamp() * 1000) + 1000
    p.produce(topic, value=document, key=b"capture", timestamp=stamp)
    p.produce(topic, value=b'{"log": {"entries": "none"}}', key=b"capture", timestamp=stamp)
    # a capture cut short (a shipper's size limit): its login request holds the card and the phone
    p.produce(topic, value=document[:-200], key=b"cut", timestamp=stamp)
    assert p.flush(10) == 0
    stats = m.run(idle_exit_s=1.5, max_seconds=60)

    assert stats.events["sdk"] == 13 and stats.skipped["har: first-party request"] == 3
    alerts = latest_alerts(read_all(broker, config.topics.alerts, expect_at_least=len(EXPECTED)))
    assert findings(alerts) == EXPECTED
    dead = read_all(broker, config.topics.dlq)
    # one dead letter of each kind, in whichever order the DLQ's partitions are read
    kinds = {dict(d.headers())["error.kind"]: d for d in dead}
    assert len(dead) == 2 and sorted(kinds) == [b"malformed", b"unparsed"]
    assert b"log.entries" in dict(kinds[b"unparsed"].headers())["error.message"]
    # probe_t1 F8: a HAR's dead letter keeps no byte of it, only what finds and tells it
    malformed = kinds[b"malformed"]
    cut = dict(malformed.headers())
    assert malformed.value() is None and malformed.key() == b"cut" and b"not JSON" in cut["error.message"]
    assert cut["error.value_bytes"] == str(len(document) - 200).encode()
    assert (
        cut["error.value_digest"].startswith(b"fp_") and {"source.partition", "source.offset"} <= cut.keys()
    )
    assert re.fullmatch(rb"HAR 1\.2 by mitmproxy 11\.[\d.]+", cut["error.value_creator"])
    kept = b"".join((d.value() or b"") + b"".join(v for _, v in d.headers()) for d in dead)
    assert not [v for v in (IMEI, RIC, CARD, PHONE, "382916") if v.encode() in kept]
