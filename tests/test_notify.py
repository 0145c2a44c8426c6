"""Incidents from the live pipeline to real receivers: the monitor writes them to pfi.incidents
(Tansu + chDB), `lifemon notify` delivers them to Debian's Prometheus Alertmanager, which hands
them to a webhook in the test; and a receiver that refuses for a while (503) loses nothing and gets
no duplicate, across a notifier restart too. Offsets are committed only after a 2xx."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from confluent_kafka import Producer
from conftest import T0, fed, refs
from receivers import ALERTMANAGER, MISSING, Receiver, alertmanager
from test_incidents import HOUR, KEY, cvn, sdk_seen, traffic, transfer
from test_pipeline import ROOT, committed_offsets, make_config, monitor, read_all, send, write_config

from detectors import load_detectors
from schemas.models import Consent
from streams.cli import main
from streams.config import Config
from streams.config import Receiver as ReceiverSpec
from streams.engine import Engine
from streams.incident_query import UNJUDGED
from streams.notify import Notifier, TeamReviews
from streams.pseudonym import Pseudonymizer
from streams.receivers import HttpReceiver, alertmanager_payload, idempotency_key, scale
from streams.reviews import INCIDENTS, record_review
from streams.runtime import ensure_topics
from streams.sinks.kafka import encode_incident

pytestmark = pytest.mark.integration


def incidents_topic_records(config: Config, n: int) -> list[dict]:
    return [orjson.loads(m.value()) for m in read_all(config.kafka.bootstrap, config.topics.incidents, n)]


def wait_for(check: Any, timeout_s: float = 20, what: str = "") -> Any:
    deadline = time.monotonic() + timeout_s
    while not (found := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return found


@pytest.mark.skipif(ALERTMANAGER is None, reason=MISSING)
def test_an_incident_reaches_alertmanager_and_its_webhook(
    broker, ch, names, policy, catalog, tmp_path
) -> None:
    hook = Receiver()
    with alertmanager(hook.url + "/am", tmp_path) as am_url:
        config = notify_config(names, broker, [{"name": "am", "kind": "alertmanager", "url": am_url}])
        m = monitor(config, ch, policy, catalog)
        send(
            broker,
            config.topics.consents,
            [
                Consent(
                    subject_id="C0000000", ts=0, purpose="insurance_referral", status="granted", separate=True
                )
            ],
            key=b"C0000000",
        )
        send(broker, config.topics.transfer, [cvn(1, subjects=range(3))], key=b"tp_insurance_partner")
        m.run(idle_exit_s=2, max_seconds=60)
        (incident,) = incidents_topic_records(config, 1)
        assert (incident["key"], incident["leakage_classes"]) == (
            "tp_insurance_partner",
            ["c3_to_third_party", "unconsented_sharing"],  # two of its three customers never consented
        )
        assert incident["subjects"]["by_class"] == {"C3": 3} and b"C000000" not in orjson.dumps(incident)

        proc = subprocess.Popen(
            notify_command(config, tmp_path, "--until-idle", "3"),
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        out = proc.communicate(timeout=60)[0].decode()
        assert proc.returncode == 0, out
        assert "delivered: am 1" in out
        (notification,) = wait_for(lambda: hook.bodies("/am"), what="alertmanager's webhook")
        (alert,) = notification["alerts"]
        assert alert["status"] == "firing"
        assert alert["labels"] == {
            "alertname": "PFILeakageIncident",
            "incident_id": incident["incident_id"],
            "group": "recipient",
            "key": "tp_insurance_partner",
            "severity": "critical",  # for routes: severity="critical" -> the pager
            "leakage_class": "c3_to_third_party",  # the first of its classes in policy order
            "scale": "1+",  # 3 customers: its reach to a power of ten
        }
        assert alert["annotations"]["leakage_classes"] == "c3_to_third_party,unconsented_sharing"
        assert alert["annotations"]["severity"] == "critical"
        assert (
            "95526" in alert["annotations"]["contact"]
            and "authentication data (C3) 3 customers" in alert["annotations"]["categories"]
        )
        # `lifemon notify` gives the deadlines in the bank's zone too (the policy's recipients.yaml),
        # and PIPL art. 57's harm, measures and what individuals can do
        assert "Asia/Shanghai)" in alert["annotations"]["deadlines_zh"]
        assert all(alert["annotations"][k] for k in ("harm", "measures_zh", "individuals"))
        assert committed_offsets(broker, config.notify.group_id, config.topics.incidents) == 1
    hook.close()


@pytest.mark.skipif(ALERTMANAGER is None, reason=MISSING)
def test_an_incident_the_team_closes_out_ends_at_alertmanager(
    broker, ch, names, policy, catalog, tmp_path, monkeypatch, capsys
) -> None:
    """A probe resolved an incident as a false positive in lifemon: Alertmanager kept it firing to
    its last deadline, its route re-sending it every hour. A review that leaves no report to make
    ends it at every receiver `lifemon notify` delivers to (Alertmanager, a webhook); `notified`
    leaves a critical incident's assessor's report owed, so it keeps firing and says why."""
    hook = Receiver()
    with alertmanager(hook.url + "/am", tmp_path, send_resolved=True) as am_url:
        receivers = [
            {"name": "am", "kind": "alertmanager", "url": am_url},
            {"name": "soar", "kind": "webhook", "url": hook.url + "/soar"},
        ]
        config = notify_config(names, broker, receivers)
        m = monitor(config, ch, policy, catalog)
        send(broker, config.topics.transfer, [cvn(1, subjects=range(3))], key=b"tp_insurance_partner")
        m.run(idle_exit_s=2, max_seconds=60)
        (incident,) = incidents_topic_records(config, 1)
        assert incident["severity"] == "critical"
        Notifier(config, broker).run(idle_exit_s=2, max_seconds=60)
        wait_for(lambda: hook.bodies("/am"), what="the incident firing")
        delivered = hook.bodies("/soar")  # the incident's revisions, as `lifemon notify` posts them

        def held() -> list[dict]:
            with urllib.request.urlopen(f"{am_url}/api/v2/alerts") as resp:
                return [
                    a
                    for a in orjson.loads(resp.read())
                    if a["labels"].get("alertname") == "PFILeakageIncident"
                ]

        monkeypatch.setattr("streams.clickhouse.connect", lambda dsn: ch)
        cli = [
            "--by", "e900001", "--config", str(write_config(config, tmp_path / "c.yaml")),
            "--clickhouse", f"chdb://{os.environ['LIFEMON_TEST_CHDB']}",
        ]  # fmt: skip
        iid = incident["incident_id"]
        # the regulator told, the individuals' notice pending: still owed, so firing, and posted again
        told = ["--as", "regulator_notified", "--note", "PBoC told", *cli]
        assert main(["incidents", "resolve", iid[:12], *told]) == 0
        out = capsys.readouterr().out
        assert (
            "left firing at the receivers: the incident still owes the individuals affected, an external "
            "security assessor (results to the sector regulator)"
        ) in out, out
        assert len(held()) == 1 and hook.bodies("/soar") == delivered
        reviews = TeamReviews(config, client=ch)
        assert not reviews.standing(incident).closed
        assert [i["incident_id"] for i in reviews.owing(since_days=3650) or []] == [iid]
        # posted again, it no longer pages for the report made, and says who recorded it when
        regulator = next(d["to"]["en"] for d in incident["deadlines"] if not d.get("waiver"))
        assert regulator in held()[0]["annotations"]["deadlines_passed"]
        config.notify.resend_days = 3650  # the incident's events are the test's, months ago
        assert Notifier(config, broker, reviews=reviews).keep_firing() == 1
        (again,) = held()
        assert regulator not in again["annotations"]["deadlines_passed"]
        assert "the individuals affected" in again["annotations"]["deadlines_passed"]
        assert again["annotations"]["review"].startswith("regulator_notified by e900001 at ")
        assert main(["incidents", "resolve", iid[:12], "--as", "notified", "--note", "PBoC told", *cli]) == 0
        out = capsys.readouterr().out
        assert "left firing at the receivers: the incident still owes an external security assessor" in out, (
            out
        )
        assert len(held()) == 1 and hook.bodies("/soar") == delivered
        assert (
            main(
                [
                    "incidents",
                    "resolve",
                    iid[:12],
                    "--as",
                    "false_positive",
                    "--note",
                    "approved sample",
                    *cli,
                ]
            )
            == 0
        )
        out = capsys.readouterr().out
        assert "am: told the incident is false_positive, its alert ended" in out, out
        assert "soar: told the incident is false_positive" in out
        assert held() == []
        (resolved,) = wait_for(
            lambda: [a for n in hook.bodies("/am") for a in n["alerts"] if a["status"] == "resolved"],
            what="alertmanager's resolved notification",
        )
        assert resolved["labels"]["incident_id"] == iid
        assert resolved["annotations"]["review"].startswith("false_positive by e900001 at ")
        (told,) = hook.bodies("/soar")[len(delivered) :]
        assert told["dedup_key"] == iid and told["resolved"].endswith(": approved sample")
    hook.close()


def test_a_revision_the_team_closed_out_while_notify_was_behind_is_delivered_as_ended(
    broker, ch, names, policy, catalog
) -> None:
    """Notify was down while the response team resolved an incident as a false positive; back up, it
    fired the incident again (the SOAR reopened it, Alertmanager would page until its last deadline).
    A revision a closing review covers is delivered as ended; one that grew after the review fires."""
    hook = Receiver()
    config = notify_config(names, broker, [{"name": "soar", "kind": "webhook", "url": hook.url + "/soar"}])
    database = config.clickhouse.database
    m = monitor(config, ch, policy, catalog)  # its topics first: a producer's would be auto-created
    send(broker, config.topics.transfer, [cvn(1, subjects=range(3))], key=b"tp_insurance_partner")
    m.run(idle_exit_s=2, max_seconds=60)
    (incident,) = incidents_topic_records(config, 1)
    iid = incident["incident_id"]
    record_review(ch, database, iid, "false_positive", "e900001", "approved sample", kind=INCIDENTS)
    reviews = TeamReviews(config, client=ch)
    Notifier(config, broker, reviews=reviews).run(idle_exit_s=2, max_seconds=60)
    (told,) = hook.bodies("/soar")
    assert (told["dedup_key"], told["revision"]) == (iid, incident["revision"])
    assert told["resolved"].startswith("false_positive by e900001 at ") and told["resolved"].endswith(
        ": approved sample"
    )

    # the same day, three more customers' codes to the same insurer: the incident grew past its review
    send(
        broker, config.topics.transfer, [cvn(2, T0 + HOUR, subjects=range(3, 6))], key=b"tp_insurance_partner"
    )
    monitor(config, ch, policy, catalog).run(idle_exit_s=2, max_seconds=60)
    Notifier(config, broker, reviews=reviews).run(idle_exit_s=2, max_seconds=60)
    grown = hook.bodies("/soar")[1:]
    assert grown and {b["dedup_key"] for b in grown} == {iid}
    assert all("resolved" not in b for b in grown) and grown[-1]["incident"]["subjects"]["distinct"] == 6
    hook.close()


def test_reviews_clickhouse_cannot_give_hold_back_no_incident(names, broker, caplog, monkeypatch) -> None:
    """The review store down (or the embedded chDB, the monitor's) never keeps an incident from
    firing; the outage is said once, not per incident."""
    config = notify_config(names, broker, [])
    assert TeamReviews(config).dsn is None  # chdb://: lifemon run's to open
    config.clickhouse.dsn = "http://127.0.0.1:9"  # nothing listens on discard
    reviews = TeamReviews(config)
    inc = {"incident_id": "i1", "revision": 1}
    asked: list[tuple] = []
    with caplog.at_level(logging.WARNING, logger="streams.notify"):
        assert reviews.standing(inc) == UNJUDGED
        monkeypatch.setattr("streams.notify.connect", lambda *a: asked.append(a))
        assert all(reviews.standing(inc) == UNJUDGED for _ in range(20))
    (said,) = [r.getMessage() for r in caplog.records if r.name == "streams.notify"]
    assert said.startswith("incident reviews unreadable (") and "delivered firing" in said
    assert asked == []  # a backlog of 20 during the outage asked nothing more, waited out no timeout


@pytest.mark.skipif(ALERTMANAGER is None, reason=MISSING)
def test_alertmanager_keeps_an_incident_firing_until_its_reports_are_due(policy, catalog, tmp_path) -> None:
    """lifemon posts each revision once: an alert without an end would be resolved by Alertmanager
    after its resolve_timeout (5 minutes by default; 1 s here), telling the response team that a
    leak is over while its regulator report is still due."""
    e = Engine(load_detectors(policy), catalog, pseudonymize=Pseudonymizer(KEY))
    e.process("transfer", "t", 0, fed("transfer", [cvn(1, subjects=range(2))], "t", 0))
    e.drain()  # the input ends: the transfer, waiting for the watermark, is judged
    (incident,) = [orjson.loads(encode_incident(i)[1]) for i in e.take_incidents()]
    hook = Receiver()
    with alertmanager(hook.url + "/am", tmp_path, resolve_timeout="1s", send_resolved=True) as am_url:
        am = HttpReceiver(ReceiverSpec(name="am", kind="alertmanager", url=am_url))
        sent_ms = int(time.time() * 1000)
        am.send(incident)
        wait_for(lambda: hook.bodies("/am"), what="the firing notification")
        time.sleep(3)  # past resolve_timeout
        with urllib.request.urlopen(am_url + "/api/v2/alerts", timeout=5) as r:
            held = [
                a for a in orjson.loads(r.read()) if a["labels"]["incident_id"] == incident["incident_id"]
            ]
        assert [a["status"]["state"] for a in held] == ["active"]
        ends = datetime.fromisoformat(held[0]["endsAt"].replace("Z", "+00:00")).timestamp() * 1000
        # the last report's due time, or a day after delivery for one found after its deadlines
        assert ends >= max([d["due"] for d in incident["deadlines"]] + [sent_ms + 24 * HOUR]) - 1000
        assert [a["status"] for n in hook.bodies("/am") for a in n["alerts"]] == ["firing"]
    hook.close()


def test_an_alertmanager_behind_a_proxy_that_refuses_get_still_gets_the_incident(
    policy, catalog, caplog
) -> None:
    """Asking Alertmanager which alerts of the incident it holds is a GET before the POST (a review:
    a proxy that lets POST through and refuses GET blocked every delivery, retried for ever). The
    incident is posted all the same, said once in the log."""
    e = Engine(load_detectors(policy), catalog, pseudonymize=Pseudonymizer(KEY))
    e.process("transfer", "t", 0, fed("transfer", [cvn(1, subjects=range(2))], "t", 0))
    e.drain()
    (incident,) = [orjson.loads(encode_incident(i)[1]) for i in e.take_incidents()]
    proxy = Receiver()  # POST only: a GET is answered 501, as by a proxy that refuses it
    am = HttpReceiver(ReceiverSpec(name="am", kind="alertmanager", url=proxy.url))
    with caplog.at_level("WARNING"):
        am.send(incident)
        am.send(incident)
    assert [path for path, _, _ in proxy.accepted] == ["/api/v2/alerts"] * 2
    assert sum("without resolving an earlier revision's alert" in r.getMessage() for r in caplog.records) == 1
    proxy.close()


def test_a_rate_limited_get_is_retried_not_taken_for_a_refusal(policy, catalog) -> None:
    """A 429 or 408 passes: the delivery is retried, not posted without resolving (the reviewer: a
    passing rate limit left an earlier revision's alert firing for days)."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from streams.receivers import DeliveryError

    class Limited(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            self.send_response(429)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Limited)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    e = Engine(load_detectors(policy), catalog, pseudonymize=Pseudonymizer(KEY))
    e.process("transfer", "t", 0, fed("transfer", [cvn(1, subjects=range(2))], "t", 0))
    e.drain()
    (incident,) = [orjson.loads(encode_incident(i)[1]) for i in e.take_incidents()]
    am = HttpReceiver(
        ReceiverSpec(name="am", kind="alertmanager", url=f"http://127.0.0.1:{server.server_port}")
    )
    with pytest.raises(DeliveryError, match="HTTP 429"):
        am.send(incident)
    server.shutdown()


def test_alertmanager_annotations_carry_the_regulations_chinese_terms(policy, catalog) -> None:
    """The notice and the report to the regulator are written in Chinese: the categories (鉴别信息),
    the cause and who is due what (监管部门) reach Alertmanager in both languages."""
    e = Engine(load_detectors(policy), catalog, pseudonymize=Pseudonymizer(KEY))
    e.process("transfer", "t", 0, fed("transfer", [cvn(1, subjects=range(2))], "t", 0))
    e.drain()  # the input ends: the transfer, waiting for the watermark, is judged
    (incident,) = [orjson.loads(encode_incident(i)[1]) for i in e.take_incidents()]
    (alert,) = alertmanager_payload(incident, now_ms=0)
    notes = alert["annotations"]
    assert "鉴别信息 (C3) 2 名客户, 2 条记录" in notes["categories_zh"]
    assert "authentication data (C3) 2 customers, 2 records" in notes["categories"]
    assert notes["cause_zh"].startswith("鉴别信息或C3类别信息被发送至行外接收方") and notes[
        "contact_zh"
    ].startswith("客服电话")
    regulator = incident["deadlines"][0]
    due = datetime.fromtimestamp(regulator["due"] / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    assert f"监管部门 (人民银行分支机构): {due} 前" in notes["deadlines_zh"]
    assert f"the regulator (PBOC branch) by {due}" in notes["deadlines"]
    assert (
        notes["deadlines_passed"] == "none" and notes["deadlines_passed_zh"] == "无"
    )  # delivered at epoch 0
    # PIPL art. 57 ¶1: the harm, the measures taken and what individuals can do, in both languages
    notice = incident["notice"]
    for key in ("harm", "measures", "individuals"):
        assert notes[key] == "\n".join(t["en"] for t in notice[key]) and notes[key]
        assert notes[f"{key}_zh"] == "\n".join(t["zh"] for t in notice[key]) and notes[f"{key}_zh"]
    # the deadlines in the bank's zone too, as the report and the CLI give them
    (local,) = alertmanager_payload(incident, now_ms=0, zone=ZoneInfo("Asia/Shanghai"))
    beijing = datetime.fromtimestamp(regulator["due"] / 1000, ZoneInfo("Asia/Shanghai"))
    assert f"{due} 前 ({beijing:%Y-%m-%d %H:%M} Asia/Shanghai)" in local["annotations"]["deadlines_zh"]
    # the leak's first event and lifemon's detection (发现), from which the deadlines count
    detected = datetime.fromtimestamp(incident["detected_at"] / 1000, UTC).isoformat()[:19]
    assert (
        local["annotations"]["detected"].startswith(detected)
        and "Asia/Shanghai" in local["annotations"]["detected"]
    )
    assert (
        local["annotations"]["detected_zh"].startswith(f"发现于 {detected}")
        and "报告时限自此起算" in local["annotations"]["detected_zh"]
    )
    assert regulator["due"] == incident["detected_at"] + 24 * HOUR
    older = alertmanager_payload({k: v for k, v in incident.items() if k != "detected_at"}, now_ms=0)[0]
    assert older["annotations"]["detected"] == "not kept: the deadlines count from the first event"
    # delivered a week after its first event: every deadline has passed, and the annotation says whose
    (late,) = alertmanager_payload(incident, now_ms=incident["first_seen"] + 7 * 24 * HOUR + 1)
    assert late["annotations"]["deadlines_passed_zh"].startswith("监管部门")
    assert late["annotations"]["deadlines_passed"].count(";") == len(incident["deadlines"]) - 1


def engine_revisions(policy: Any, catalog: Any, *batches: tuple[str, list[Any]]) -> list[dict]:
    """The incident records the engine writes, batch by batch (and at the input's end), as JSON."""
    e = Engine(load_detectors(policy), catalog, pseudonymize=Pseudonymizer(KEY))
    consented = [
        Consent(subject_id=f"C{i:07d}", ts=0, purpose="insurance_referral", status="granted", separate=True)
        for i in range(20)
    ]
    e.apply_reference("consents", refs("consents", consented))
    out = []
    for i, (stream, events) in enumerate(batches):
        e.process(stream, "t", 0, fed(stream, events, "t", i))
        e.advance()
        out += [orjson.loads(encode_incident(inc)[1]) for inc in e.take_incidents()]
    e.drain()
    return out + [orjson.loads(encode_incident(inc)[1]) for inc in e.take_incidents()]


@pytest.mark.skipif(ALERTMANAGER is None, reason=MISSING)
def test_an_incident_that_grows_tenfold_is_told_again(policy, catalog, tmp_path) -> None:
    """A probe's CVN incident grew from 60 customers to 600: Alertmanager holds the new numbers but
    notifies on labels only, and the team heard nothing until its repeat. The reach to a power of
    ten is a label: growing tenfold fires anew, the earlier alert ends (superseded); growing less
    refreshes the alert quietly."""
    small, same, grown = engine_revisions(
        policy,
        catalog,
        ("transfer", [cvn(1, subjects=range(3))]),
        ("transfer", [cvn(2, T0 + HOUR, subjects=range(3, 6))]),  # 6 customers: the same power of ten
        ("transfer", [cvn(3, T0 + 2 * HOUR, subjects=range(6, 40))]),  # 40: tenfold
    )[:3]
    assert [i["subjects"]["distinct"] for i in (small, same, grown)] == [3, 6, 40]
    hook = Receiver()
    with alertmanager(hook.url + "/team", tmp_path, send_resolved=True) as am_url:
        am = HttpReceiver(ReceiverSpec(name="am", kind="alertmanager", url=am_url))
        am.send(small)
        (told,) = wait_for(lambda: hook.bodies("/team"), what="the first notification")
        am.send(same)
        time.sleep(2.5)  # two group intervals: nothing new to tell
        assert len(hook.bodies("/team")) == 1
        am.send(grown)
        again = wait_for(lambda: hook.bodies("/team")[1:], what="the grown incident's notification")
        alerts = [a for n in again for a in n["alerts"]]
        assert ("firing", "10+") in [(a["status"], a["labels"]["scale"]) for a in alerts]
        ended = wait_for(
            lambda: [a for n in hook.bodies("/team") for a in n["alerts"] if a["status"] == "resolved"],
            what="the smaller alert resolved",
        )
        assert ended[0]["labels"]["scale"] == "1+" and ended[0]["annotations"]["superseded_by"]
        # an older revision posted after a later one (ClickHouse behind the topic, a backlog behind
        # a re-post: a review's) is not posted: it would supersede the later one and page again
        told_so_far = len(hook.bodies("/team"))
        am.send(small)
        time.sleep(2.5)
        assert len(hook.bodies("/team")) == told_so_far
        with urllib.request.urlopen(f"{am_url}/api/v2/alerts?active=true&silenced=false", timeout=5) as r:
            held = [(a["labels"]["scale"], a["annotations"]["revision"]) for a in orjson.loads(r.read())]
        assert held == [("10+", str(grown["revision"]))]
    hook.close()
    # the reach is the customers where the incident counts any, its records only where it names none
    # (the same 3 customers' codes sent four times are 12 records, not a tenfold incident)
    assert scale(small | {"records": 12}) == "1+" and scale(small | {"subjects": {}, "records": 12}) == "10+"


@pytest.mark.skipif(ALERTMANAGER is None, reason=MISSING)
def test_an_alertmanager_restart_forgets_no_open_incident(
    broker, ch, names, policy, catalog, tmp_path
) -> None:
    """Alertmanager keeps alerts in memory: a probe restarted it and every open incident was gone,
    lifemon having posted each revision once. `lifemon notify` posts the incidents still owing a
    report again (`notify.resend_s`), read from ClickHouse; one the team closed out is not."""
    hook = Receiver()
    with alertmanager(hook.url + "/am", tmp_path) as am_url:
        receivers = [{"name": "am", "kind": "alertmanager", "url": am_url}]
        config = notify_config(names, broker, receivers, resend_days=3650)  # the test's events are of 2026-01
        m = monitor(config, ch, policy, catalog)
        send(broker, config.topics.transfer, [cvn(1, subjects=range(3))], key=b"tp_insurance_partner")
        other = transfer(2, T0, range(3), recipient_id="tp_other", categories=["customer_name", "card_cvn"])
        send(broker, config.topics.transfer, [other], key=b"tp_other")
        m.run(idle_exit_s=2, max_seconds=60)
        open_one, reviewed_one = sorted(incidents_topic_records(config, 2), key=lambda i: i["key"])
        record_review(
            ch,
            config.clickhouse.database,
            reviewed_one["incident_id"],
            "resolved",
            "e9",
            "done",
            kind=INCIDENTS,
        )
        reviews = TeamReviews(config, client=ch)
        notifier = Notifier(config, broker, reviews=reviews)
        assert notifier.keep_firing() == 1
        # one the team closes out while a pass is under way (read before, posted after) is not posted
        listed = reviews.owing(3650)
        database = config.clickhouse.database
        record_review(ch, database, open_one["incident_id"], "false_positive", "e9", "sample", kind=INCIDENTS)
        reviews.owing = lambda days: listed  # type: ignore[method-assign]
        assert notifier.keep_firing() == 0
    # acknowledged after it: the incident owes its reports again (a review's newest row decides)
    record_review(ch, database, open_one["incident_id"], "acknowledged", "e9", "on it", kind=INCIDENTS)
    del reviews.owing  # read from ClickHouse again
    with alertmanager(hook.url + "/am", tmp_path) as am_url:  # another Alertmanager: nothing held
        notifier.receivers = [HttpReceiver(ReceiverSpec(name="am", kind="alertmanager", url=am_url))]
        assert notifier.keep_firing() == 1
        with urllib.request.urlopen(f"{am_url}/api/v2/alerts", timeout=5) as r:
            held = orjson.loads(r.read())
        assert [a["labels"]["incident_id"] for a in held] == [open_one["incident_id"]]
    hook.close()


def test_an_sdk_incidents_alert_names_what_it_sent_and_counts_devices_not_a_bare_0(policy, catalog) -> None:
    """An SDK sending usage events abroad reached Alertmanager with `categories: ""`, `0 subjects
    (C1 0)` and `0 条记录`, although its alert counted 1 observation from 1 device: PIPL art. 57
    wants the categories named."""
    seen = sdk_seen(1, ["event_launch", "event_login", "mobile_phone"])
    (incident,) = engine_revisions(policy, catalog, ("sdk", [seen]))
    (alert,) = alertmanager_payload(incident, now_ms=0)
    notes = alert["annotations"]
    assert notes["categories"] == (
        "contact data (C2) customers not named, 1 observation, 1 device; "
        "app launches (C1) customers not named, 1 observation, 1 device; "
        "logins (C1) customers not named, 1 observation, 1 device"
    )
    assert notes["categories_zh"] == (
        "通讯联络信息 (C2) 客户未具名, 1 次采集, 1 台设备; 启动 (C1) 客户未具名, 1 次采集, 1 台设备; "
        "登录 (C1) 客户未具名, 1 次采集, 1 台设备"
    )
    assert notes["summary"].endswith(
        "sdk sensors_analytics, customers not named, 1 observation, 1 device (C2)"
    )
    assert (
        "（本告警计 1 次采集，1 台设备）" in notes["cause_zh"]
        and "(this alert: 1 collection, 1 device)" in notes["cause"]
    )
    assert "0 条记录" not in notes["cause_zh"] and "0 subjects" not in notes["summary"]
    assert (alert["labels"]["severity"], alert["labels"]["leakage_class"]) == ("critical", "cross_border")


@pytest.mark.skipif(ALERTMANAGER is None, reason=MISSING)
def test_an_incident_whose_severity_rises_stays_one_alert_routed_by_its_severity(
    policy, catalog, tmp_path
) -> None:
    """Routes match labels: severity and the leakage class are labels. Alertmanager tells alerts
    apart by their labels, so a revision that raises the severity (a CVN sent to a recipient already
    in an incident for a share without consent) resolves the alert its earlier revision fired: one
    incident, one firing alert, now on the pager's route."""
    first, second = engine_revisions(
        policy,
        catalog,
        ("transfer", [transfer(1, subjects=range(30, 33))]),  # no consent: high
        ("transfer", [cvn(2, T0 + HOUR, subjects=range(2))]),  # a CVN: critical
    )
    assert first["incident_id"] == second["incident_id"]
    assert [(i["severity"], i["leakage_classes"][0]) for i in (first, second)] == [
        ("high", "unconsented_sharing"),
        ("critical", "c3_to_third_party"),
    ]
    hook = Receiver()
    routes = {'severity="critical"': hook.url + "/pager"}
    with alertmanager(hook.url + "/team", tmp_path, send_resolved=True, routes=routes) as am_url:
        am = HttpReceiver(ReceiverSpec(name="am", kind="alertmanager", url=am_url))
        am.send(first)
        (told,) = wait_for(lambda: hook.bodies("/team"), what="the team's notification")
        assert [(a["status"], a["labels"]["severity"]) for a in told["alerts"]] == [("firing", "high")]
        am.send(second)
        (paged,) = wait_for(lambda: hook.bodies("/pager"), what="the pager's notification")
        assert [(a["status"], a["labels"]["leakage_class"]) for a in paged["alerts"]] == [
            ("firing", "c3_to_third_party")
        ]
        query = f"{am_url}/api/v2/alerts?filter=incident_id%3D%22{first['incident_id']}%22"
        with urllib.request.urlopen(query, timeout=5) as r:
            held = orjson.loads(r.read())
        assert [(a["status"]["state"], a["labels"]["severity"]) for a in held] == [("active", "critical")]
        # the team's route hears that its alert ended, and why
        ended = wait_for(
            lambda: [a for n in hook.bodies("/team") for a in n["alerts"] if a["status"] == "resolved"],
            what="the superseded alert resolved",
        )
        assert ended[0]["annotations"]["superseded_by"].startswith(
            f"revision {second['revision']}: severity critical"
        )
        am.send(second)  # a redelivery (a crash before the commit) changes nothing
        with urllib.request.urlopen(query, timeout=5) as r:
            assert [a["labels"]["severity"] for a in orjson.loads(r.read())] == ["critical"]
    hook.close()


def day_incidents(policy: Any, catalog: Any) -> list[tuple[bytes, bytes, list]]:
    """Every revision of a day's incidents (the engine's output, batch by batch), encoded for pfi.incidents."""
    e = Engine(load_detectors(policy), catalog, pseudonymize=Pseudonymizer(KEY))
    encoded = []
    events = traffic() + [
        cvn(200, 0 + traffic()[0].ts + 30 * HOUR),
        transfer(201, traffic()[0].ts + 60 * HOUR),
    ]
    for i in range(0, len(events) + 5, 5):  # and after the last batch, the input's end
        if i < len(events):
            e.process("transfer", "t", 0, fed("transfer", events[i : i + 5], "t", i))
            e.advance()
        else:
            e.drain()
        encoded += map(encode_incident, e.take_incidents())
    return encoded


def put(config: Config, encoded: list[tuple[bytes, bytes, list]]) -> list[tuple[str, int]]:
    """Encoded incident revisions on pfi.incidents, in order; their (incident id, revision)."""
    p = Producer({"bootstrap.servers": config.kafka.bootstrap})
    for key, value, headers in encoded:
        p.produce(config.topics.incidents, value=value, key=key, headers=headers)
    assert p.flush(10) == 0
    return [(key.decode(), int(dict(headers)["lifemon.revision"])) for key, _, headers in encoded]


def produce_incidents(config: Config, policy: Any, catalog: Any) -> list[tuple[str, int]]:
    """Every revision of a day's incidents on pfi.incidents."""
    return put(config, day_incidents(policy, catalog))


def notify_config(names: dict[str, str], broker: str, receivers: list[dict], **notify: Any) -> Config:
    """A test's config whose `notify` section delivers to `receivers` (its own consumer group)."""
    return make_config(
        names,
        broker,
        "chdb://unused",
        notify={"group_id": f"notify-{names['tag']}", "receivers": receivers, **notify},
    )


def notify_command(config: Config, tmp_path: Path, *options: str) -> list[str]:
    """`lifemon notify` with the config written out, as a cron job or a service runs it."""
    return [
        sys.executable,
        "-m",
        "streams.cli",
        "notify",
        "--config",
        str(write_config(config, tmp_path / "c.yaml")),
        *options,
    ]


def refusing_hook(names: dict[str, str], broker: str, **backoff: float) -> tuple[Receiver, Config]:
    """A webhook refusing (503) until told otherwise, and a config delivering to it alone, its topics made."""
    hook = Receiver()
    hook.failing = True
    config = notify_config(
        names, broker, [{"name": "hook", "kind": "webhook", "url": hook.url + "/hook"}], **backoff
    )
    ensure_topics(broker, config)
    return hook, config


def in_order(revisions: list[tuple[str, int]]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for incident, revision in revisions:
        out.setdefault(incident, []).append(revision)
    return out


def test_a_receiver_down_for_a_while_loses_nothing_and_gets_no_duplicate(
    broker, names, policy, catalog, tmp_path, caplog
) -> None:
    hook = Receiver()
    hook.failing = True
    config = notify_config(
        names,
        broker,
        [
            {"name": "hook", "kind": "webhook", "url": hook.url + "/hook"},
            {"name": "pd", "kind": "pagerduty", "url": hook.url + "/pd", "routing_key_env": "TEST_PD_KEY"},
        ],
        backoff_initial_s=0.05,
        backoff_max_s=0.2,
    )
    os.environ["TEST_PD_KEY"] = "R0UTINGKEY"
    ensure_topics(broker, config)
    sent = produce_incidents(config, policy, catalog)
    assert len(sent) >= 6 and len({i for i, _ in sent}) == 4
    topic, group = config.topics.incidents, config.notify.group_id

    # down: the notifier retries, commits nothing, and is stopped while the receiver is still down
    first = Notifier(config, broker)
    runner = threading.Thread(target=first.run, kwargs={"max_seconds": 30})
    runner.start()
    wait_for(lambda: hook.refused >= 5, 60, what="retries against the failing receiver")
    first.stop_event.set()
    runner.join(20)
    assert hook.accepted == [] and committed_offsets(broker, group, topic) == 0

    # back up after a few more refusals: a new notifier resumes from the committed offset
    hook.failing, hook.fail_first, hook.refused = False, 3, 0
    second = Notifier(config, broker)
    with caplog.at_level(logging.INFO, logger="streams.notify"):
        delivered = second.run(idle_exit_s=3, max_seconds=60)
    assert delivered == {"hook": len(sent), "pd": len(sent)}
    # the response team's record of when each revision was told: one line each, after every receiver took it
    told = [r.getMessage() for r in caplog.records if "delivered to hook, pd" in r.getMessage()]
    assert in_order([(w[1], int(w[3])) for w in map(str.split, told)]) == in_order(sent)
    got = [(b["dedup_key"], b["revision"]) for b in hook.bodies("/hook")]
    assert in_order(got) == in_order(sent)  # every revision, once, in order (per incident: per partition)
    pd = hook.bodies("/pd")
    assert in_order([(b["dedup_key"], b["payload"]["custom_details"]["revision"]) for b in pd]) == in_order(
        sent
    )
    assert pd[0]["routing_key"] == "R0UTINGKEY" and pd[0]["event_action"] == "trigger"
    assert pd[0]["payload"]["severity"] == "critical" and pd[0]["payload"]["source"] == "lifemon"
    assert committed_offsets(broker, group, topic) == len(sent)
    headers = [h for p, _, h in hook.accepted if p == "/hook"]
    bodies = hook.bodies("/hook")
    assert [h["Idempotency-Key"] for h in headers] == [idempotency_key(b["incident"]) for b in bodies]
    assert [k.rsplit(":", 1)[0] for k in (h["Idempotency-Key"] for h in headers)] == [
        f"{i}:{r}" for i, r in got
    ]
    hook.close()


def test_a_receiver_down_for_longer_than_until_idle_still_gets_every_incident(
    broker, names, policy, catalog
) -> None:
    """`--until-idle` counts from the end of a delivery: it counted from the record's arrival, so
    once a receiver had been down for longer, the run ended 0 at the first poll that found nothing
    after the receiver took the incident, and the incidents that came next went undelivered (a
    fault-matrix case that failed under load)."""
    hook, config = refusing_hook(names, broker, backoff_initial_s=0.1, backoff_max_s=0.2)
    first, *rest = day_incidents(policy, catalog)
    sent = put(config, [first])
    notifier = Notifier(config, broker)
    runner = threading.Thread(target=notifier.run, kwargs={"idle_exit_s": 4, "max_seconds": 90})
    runner.start()
    # 25 refusals are 24 backoffs apart (0.1 s, then 0.2 s): the receiver is down for over 4.7 s
    wait_for(lambda: hook.refused >= 25, 60, what="refusals for longer than the idle time")
    hook.failing = False
    wait_for(lambda: hook.bodies("/hook"), 60, what="the first incident taken")
    time.sleep(1)  # the next incidents come a second later: past a poll, well within the idle time
    sent += put(config, rest)
    runner.join(120)
    hook.close()
    assert not runner.is_alive() and notifier.undelivered is None
    assert notifier.delivered == {"hook": len(sent)}
    assert committed_offsets(broker, config.notify.group_id, config.topics.incidents) == len(sent)


def test_notify_stops_on_time_with_a_receiver_down_and_says_what_it_left_undelivered(
    broker, names, policy, catalog, tmp_path
) -> None:
    """`--seconds` once bound only the wait for new incidents: with a receiver down the backoff
    went on until a signal, and the run then ended 0 with "delivered: nothing"."""
    hook, config = refusing_hook(names, broker, backoff_initial_s=0.5, backoff_max_s=60)
    produce_incidents(config, policy, catalog)
    started = time.monotonic()
    proc = subprocess.run(
        notify_command(config, tmp_path, "--seconds", "12"),  # its group join included
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        timeout=60,
        text=True,
    )
    took = time.monotonic() - started
    assert hook.refused >= 2 and hook.accepted == []
    assert proc.returncode == 3, proc.stderr
    assert (
        "not delivered to hook (still failing)" in proc.stderr and "run lifemon notify again" in proc.stderr
    )
    assert took < 35, f"--seconds 12 took {took:.0f} s"  # without the bound: the 60 s timeout
    assert committed_offsets(broker, config.notify.group_id, config.topics.incidents) == 0
    hook.close()


def test_runs_out_of_time_with_a_receiver_down_each_name_the_incident_and_try_nothing_after(
    broker, names, policy, catalog, caplog
) -> None:
    """Once `max_seconds` was up during a receiver's backoff, notify went on polling: a consumer that
    refetches at once after its pause (a small fetch.wait.max.ms) tried incidents behind it, named the
    last one tried as where the next run resumes, and a receiver back in that moment would have taken
    a later incident and had its offset committed past the one it never got. Three runs, as a cron
    job's while the receiver stays down: each tries one incident and names it (whether a refetch
    beats the poll after the pause varies, hence three)."""
    hook, config = refusing_hook(names, broker, backoff_initial_s=0.5, backoff_max_s=60)
    config.kafka.client = {"fetch.wait.max.ms": 10}
    produce_incidents(config, policy, catalog)
    for _ in range(3):
        caplog.clear()
        notifier = Notifier(config, broker)
        with caplog.at_level(logging.WARNING, logger="streams.notify"):
            notifier.run(max_seconds=8)  # its group join included
        assert notifier.undelivered is not None
        incident, revision, _ = notifier.undelivered
        tried = {r.getMessage().split(":")[0] for r in caplog.records if "retry in" in r.getMessage()}
        assert tried == {f"incident {incident} rev {revision}"}
    hook.close()
    assert hook.accepted == []
    assert committed_offsets(broker, config.notify.group_id, config.topics.incidents) == 0


def test_a_receiver_url_with_a_password_is_refused(tmp_path: Path) -> None:
    from policy import PolicyError
    from streams.config import load_config

    path = tmp_path / "c.yaml"
    path.write_text(
        "notify:\n  receivers:\n    - {name: am, kind: alertmanager, url: 'http://lifemon:hunter2@am:9093'}\n"
    )
    with pytest.raises(PolicyError, match="notify.receivers.0.url") as e:
        load_config(path)
    assert "hunter2" not in str(e.value)


def test_a_replay_that_revised_an_incident_otherwise_is_not_dropped_as_a_repeat() -> None:
    """A revision's number follows how the input was batched: after a crash, the replay may send
    other content under a revision number a receiver already took. The key follows the content."""
    sent = {"incident_id": "i1", "revision": 3, "status": "updated", "subjects": {"distinct": 50}}
    again = dict(reversed(list(sent.items())))  # the same record, its keys in another order
    replayed = {**sent, "status": "closed", "subjects": {"distinct": 63}}
    assert idempotency_key(sent) == idempotency_key(again) != idempotency_key(replayed)
    assert idempotency_key(sent).startswith("i1:3:")
