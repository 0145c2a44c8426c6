"""Incident receivers: the payload each one expects, and one HTTP POST that says whether it took it.

- Prometheus Alertmanager, `POST /api/v2/alerts`: one alert, labelled alertname, incident_id,
  group, key, and `severity` and `leakage_class` (the first of its classes in policy order) for
  routes to match, and `scale` (its reach to a power of ten: growing tenfold notifies anew); the
  notice rides in annotations. Alertmanager tells alerts apart by their
  labels, and a later revision may raise the severity or add a class that comes first (a CVN sent
  to a recipient already in an incident for a share without consent): the notifier asks
  Alertmanager which alerts of the incident it holds and resolves, in the same request, those
  whose labels this revision no longer carries, so an incident stays one firing alert.
  The alert carries its own `endsAt` (`FIRING_AT_LEAST_MS`): without one, Alertmanager resolves it
  after its `resolve_timeout` (5 minutes by default) and tells the team a leak is over that nobody
  has dealt with; and `lifemon notify` posts the incidents still owing a report again every
  `notify.resend_s` (`Notifier.keep_firing`), since Alertmanager forgets its alerts when restarted.
- PagerDuty Events API v2: a `trigger` with `dedup_key` = incident id, so revisions update one
  PagerDuty incident; the integration key comes from the environment, never from a file.
- A generic JSON webhook: the incident record itself, with `dedup_key` (incident id) and
  `Idempotency-Key: <incident id>:<revision>:<digest>`, so a receiver can drop a redelivery
  (`idempotency_key`).

Only a 2xx counts as delivered (docs/incidents.md#delivery).
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from detectors.base import n_of
from streams.config import Receiver
from streams.reviews import UNREVIEWED, owed

log = logging.getLogger(__name__)

ALERTNAME = "PFILeakageIncident"
# An incident fires in Alertmanager until its last report is due, and at least this long after it
# was delivered: one delivered after its deadlines (found late, or replayed) is overdue, not over.
FIRING_AT_LEAST_MS = 24 * 3_600_000
# PagerDuty knows four severities (Events API v2 `payload.severity`)
PAGERDUTY_SEVERITY = {
    "critical": "critical",
    "high": "error",
    "medium": "warning",
    "low": "info",
    "info": "info",
}


class DeliveryError(RuntimeError):
    """The receiver did not take the incident (down, slow, or not 2xx): retry later."""


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def unnamed(subjects: dict[str, Any]) -> int:
    """An incident's customers reported without names; a record from before lifemon kept them
    apart knew them only where it named nobody (its `reported`)."""
    if "unnamed" in subjects:
        return int(subjects["unnamed"])
    return 0 if subjects.get("distinct") else int(subjects.get("reported", 0))


def who(named: int, unnamed: int, zh: bool = False) -> str:
    """The customers an incident or a notice category concerns: the named and those a log only
    counted, side by side (a probe's 1 named beside 5 000 counted read `1 customer` everywhere),
    never a bare 0 (it reads as nobody to notify)."""
    if named and unnamed:
        if zh:
            return f"{named:,} 名客户具名 + {unnamed:,} 名客户报告未具名"
        return f"{n_of(named, 'customer')} named + {unnamed:,} reported, not named"
    if unnamed:
        return f"报告{unnamed:,}名客户,未具名" if zh else f"{n_of(unnamed, 'customer')} reported, none named"
    if named:
        return f"{named} 名客户" if zh else n_of(named, "customer")
    return "客户未具名" if zh else "customers not named"


def counted(c: dict[str, Any], zh: bool = False) -> str:
    """What an incident or a notice category counts: its customers (`who`), records, and an SDK's
    observations and devices, each only where counted; nothing counted at all is said so."""
    units = ("条记录", "次采集", "台设备") if zh else ("record", "observation", "device")
    figures = [c.get("records", 0), c.get("observations", 0), c.get("devices", 0)]
    said = [f"{n} {unit}" if zh else n_of(n, unit) for n, unit in zip(figures, units, strict=True) if n]
    if c.get("subjects", 0) or c.get("unnamed", 0) or said:
        said.insert(0, who(c.get("subjects", 0), c.get("unnamed", 0), zh))
    return ", ".join(said) or ("未计数" if zh else "not counted")


def _summary(inc: dict[str, Any]) -> str:
    subjects = inc["subjects"]
    named = [f"{k} {v}" for k, v in subjects["by_class"].items() if v]
    classes = ", ".join(named) or ", ".join(subjects["by_class"])
    figures = [n_of(inc[k], k[:-1]) for k in ("records", "observations", "devices") if inc.get(k)]
    return (
        f"[{inc['severity']}] {inc['title_en']}: {inc['group']} {inc['key']}, "
        f"{', '.join([who(subjects['distinct'], unnamed(subjects)), *figures])}"
        + (f" ({classes})" if classes else "")
    )


def alertmanager_labels(inc: dict[str, Any]) -> dict[str, str]:
    """The labels routes match on. `leakage_class` is one string, the first of the incident's
    classes in policy order (the order policy/incidents.yaml tries them in); all of them are in the
    `leakage_classes` annotation."""
    return {
        "alertname": ALERTNAME,
        "incident_id": inc["incident_id"],
        "group": inc["group"],
        "key": inc["key"],
        "severity": inc["severity"],
        "leakage_class": inc["leakage_classes"][0],
        "scale": scale(inc),
    }


def scale(inc: dict[str, Any]) -> str:
    """The incident's reach to a power of ten (`100+`: 100 to 999 customers): its customers where
    it names or counts any, else its records, else an SDK's devices. A label: Alertmanager notifies
    again when labels change, not annotations, so an incident that crosses a power of ten reaches
    the team (a probe's 60 customers became 600 and nobody was told)."""
    subjects = inc.get("subjects") or {}
    customers = max(subjects.get("distinct", 0), subjects.get("reported", 0))
    reach = customers or inc.get("records", 0) or inc.get("devices", 0) or 1
    return f"{10 ** (len(str(reach)) - 1)}+"


def _revision(held: dict[str, Any]) -> int:
    """The incident revision an alert Alertmanager holds was posted for (0: unsaid)."""
    said = held.get("annotations", {}).get("revision", "")
    return int(said) if said.isdigit() else 0


def idempotency_key(inc: dict[str, Any]) -> str:
    """`<incident id>:<revision>:<digest of the record>`: a redelivery of the same record carries the
    same key, and a replay after a crash that revised the incident otherwise (a revision's number
    follows how the input was batched) carries a new one, so a receiver never drops news as a repeat."""
    digest = hashlib.sha256(orjson.dumps(inc, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]
    return f"{inc['incident_id']}:{inc['revision']}:{digest}"


def alertmanager_payload(
    inc: dict[str, Any],
    now_ms: int | None = None,
    held: list[dict[str, Any]] | None = None,
    zone: ZoneInfo | None = None,
    review: str = UNREVIEWED,
    said: str | None = None,
) -> list[dict[str, Any]]:
    """The incident as one Alertmanager alert, firing until its last report owed is due (at least
    `FIRING_AT_LEAST_MS` after `now_ms`, the delivery time). `held`: the alerts Alertmanager holds
    (`GET /api/v2/alerts`); those of this incident whose labels this revision no longer carries (an
    earlier revision's severity or class) are resolved as of `now_ms` in the same request, so one
    incident stays one firing alert. `zone`: the bank's (recipients.yaml `timezone`), in which each
    deadline is also given, as the report and the CLI give it. `review`: the state the team's reviews
    leave it in, `said` the review in one line: a report the team recorded made is no deadline passed."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    zone = zone or ZoneInfo("UTC")
    labels = alertmanager_labels(inc)
    owing = owed(inc["deadlines"], review)
    ends = max([d["due"] for d in owing] + [now_ms + FIRING_AT_LEAST_MS])
    notice = inc["notice"]
    due = "; ".join(f"{d['to']['en']} by {_iso(d['due'])}{_local(d['due'], zone)}" for d in inc["deadlines"])
    # the regulation's own terms (监管部门, 鉴别信息, ...) for the notice and the report to the regulator
    due_zh = "; ".join(
        f"{d['to']['zh']}: {_iso(d['due'])} 前{_local(d['due'], zone)}" for d in inc["deadlines"]
    )
    # an incident found after a deadline (a late log, a backfill) says so when it is delivered: the
    # deadlines count from its detection's event time, and only the delivery knows the time
    # the reports still owed: the regulator's, once the team recorded it told, is no page's business
    passed = [d for d in owing if d["due"] <= now_ms]
    superseded = [
        {
            "labels": h["labels"],
            # the younger alert's annotations win: the route that had it is told why it ended
            "annotations": {
                **h.get("annotations", {}),
                "superseded_by": f"revision {inc['revision']}: severity {inc['severity']}, "
                f"leakage_class {labels['leakage_class']}",
            },
            "startsAt": _iso(min(inc["first_seen"], now_ms)),  # Alertmanager keeps the earlier start
            "endsAt": _iso(now_ms),
            "generatorURL": f"lifemon:incident/{inc['incident_id']}",
        }
        for h in held or []
        if h["labels"] != labels
        and h["labels"].get("alertname") == ALERTNAME
        and h["labels"].get("incident_id") == inc["incident_id"]
    ]
    return [
        {
            "labels": labels,
            "annotations": {
                "summary": _summary(inc),
                "severity": inc["severity"],
                "revision": str(inc["revision"]),
                "status": inc["status"],
                "title_zh": inc["title_zh"],
                "leakage_classes": ",".join(inc["leakage_classes"]),
                "categories": "; ".join(
                    f"{c['en']} ({c['jr_class']}) {counted(c)}" for c in notice["categories"]
                ),
                "categories_zh": "; ".join(
                    f"{c['zh']} ({c['jr_class']}) {counted(c, zh=True)}" for c in notice["categories"]
                ),
                # art. 5 counts a tier's categories together: its count once, never as a category's
                # records (probe_v3 H3); none where no bulk_query alert reached a tier
                **(_texts(notice, "legal_tiers") if notice.get("legal_tiers") else {}),
                "cause": notice["cause"]["en"],
                "cause_zh": notice["cause"]["zh"],
                # PIPL art. 57 ¶1 (一)(二): the possible harm, the remedial measures and what
                # individuals can do to lessen it, as the webhook's and PagerDuty's notice carry them;
                # the measures are the policy's plan, to take: a revision delivered firing is one no
                # review closed out (`lifemon incidents show` says them taken once notified or resolved)
                **_texts(notice, "harm", "measures", "individuals"),
                "contact": notice["contact"]["en"],
                "contact_zh": notice["contact"]["zh"],
                # when the leak began and when lifemon detected it (发现), the deadlines' start
                **_began_and_detected(inc, zone),
                "deadlines": due,
                "deadlines_zh": due_zh,
                "deadlines_passed": "; ".join(d["to"]["en"] for d in passed) or "none",
                "deadlines_passed_zh": "; ".join(d["to"]["zh"] for d in passed) or "无",
                # what the team recorded of it so far: the on-call reads who told the regulator when
                **({"review": said} if said else {}),
            },
            "startsAt": _iso(inc["first_seen"]),
            "endsAt": _iso(ends),
            "generatorURL": f"lifemon:incident/{inc['incident_id']}",
        },
        *superseded,
    ]


def _began_and_detected(inc: dict[str, Any], zone: ZoneInfo) -> dict[str, str]:
    """The leak's first event and lifemon's detection (发现), from which the deadlines count; a
    record from before detections were kept counts from its first event, and says so."""
    detected = inc.get("detected_at")
    return {
        "began": f"{_iso(inc['first_seen'])}{_local(inc['first_seen'], zone)}",
        "detected": f"{_iso(detected)}{_local(detected, zone)}"
        if detected
        else "not kept: the deadlines count from the first event",
        "detected_zh": f"发现于 {_iso(detected)}{_local(detected, zone)}，报告时限自此起算"
        if detected
        else "未记录发现时间，报告时限自首个事件起算",
    }


def _local(ms: int, zone: ZoneInfo) -> str:
    """` (2026-01-02 08:17 Asia/Shanghai)`: a deadline in the bank's zone too; nothing in UTC."""
    if zone.key == "UTC":
        return ""
    return f" ({datetime.fromtimestamp(ms / 1000, zone):%Y-%m-%d %H:%M} {zone.key})"


def text_of(part: dict[str, Any]) -> dict[str, str]:
    """A notice part's text (`zh`, `en`): the part itself, or an art. 5 tier's line (`said`)."""
    return part.get("said", part)


def _texts(notice: dict[str, Any], *keys: str) -> dict[str, str]:
    """The notice's lists of texts as annotations, one line each, in English and (`_zh`) Chinese."""
    out = {}
    for key in keys:
        items = [text_of(t) for t in (notice[key] if isinstance(notice[key], list) else [notice[key]])]
        out[key] = "\n".join(t["en"] for t in items)
        out[f"{key}_zh"] = "\n".join(t["zh"] for t in items)
    return out


def pagerduty_payload(inc: dict[str, Any], routing_key: str) -> dict[str, Any]:
    return {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": inc["incident_id"],
        "payload": {
            "summary": _summary(inc)[:1024],
            "source": "lifemon",
            "severity": PAGERDUTY_SEVERITY[inc["severity"]],
            "timestamp": _iso(inc["first_seen"]),
            "component": inc["group"],
            "group": inc["key"],
            "class": ",".join(inc["leakage_classes"]),
            "custom_details": {
                "revision": inc["revision"],
                "detected_at": _iso(inc["detected_at"]) if inc.get("detected_at") else None,
                "subjects": {
                    **{k: inc["subjects"][k] for k in ("distinct", "reported", "by_class", "by_category")},
                    "unnamed": unnamed(inc["subjects"]),
                },
                "notice": inc["notice"],
                "deadlines": inc["deadlines"],
                "alerts": [a["alert_id"] for a in inc["alerts"]],
            },
        },
    }


def webhook_payload(inc: dict[str, Any]) -> dict[str, Any]:
    return {"dedup_key": inc["incident_id"], "revision": inc["revision"], "incident": inc}


class HttpReceiver:
    def __init__(self, spec: Receiver, zone: ZoneInfo | None = None):
        """`zone`: the bank's, for the deadlines Alertmanager's notice gives (UTC without one)."""
        self.spec = spec
        self.zone = zone
        self.name = spec.name
        self._routing_key: str | None = None
        self._unasked = False  # Alertmanager refused to say which alerts it holds (said once)
        if spec.kind == "pagerduty":
            env = spec.routing_key_env or "LIFEMON_PAGERDUTY_ROUTING_KEY"
            self._routing_key = os.environ.get(env)
            if not self._routing_key:
                raise ValueError(f"receiver {spec.name}: set {env} to the PagerDuty integration key")

    def request(
        self, inc: dict[str, Any], review: str = UNREVIEWED, said: str | None = None
    ) -> tuple[str, Any]:
        """(url, JSON body) for this receiver. Alertmanager is asked first which alerts of the
        incident it holds: those an earlier revision labelled otherwise are resolved in the body.
        `review`, `said`: where the team's reviews leave it (`alertmanager_payload`)."""
        if self.spec.kind == "alertmanager":
            url = self.spec.url.rstrip("/") + "/api/v2/alerts"
            held = self._held(url, inc["incident_id"])
            if any(_revision(h) > inc["revision"] for h in held):
                # Alertmanager holds a later revision (ClickHouse behind the topic, or a backlog
                # behind a re-post): an older one would supersede it and page the team twice
                return url, None
            return url, alertmanager_payload(inc, held=held, zone=self.zone, review=review, said=said)
        if self.spec.kind == "pagerduty":
            assert self._routing_key is not None
            return self.spec.url, pagerduty_payload(inc, self._routing_key)
        return self.spec.url, webhook_payload(inc)

    def _held(self, url: str, incident_id: str) -> list[dict[str, Any]]:
        """The incident's alerts Alertmanager holds (firing, silenced or inhibited: its defaults)."""
        matchers = [("filter", f'alertname="{ALERTNAME}"'), ("filter", f'incident_id="{incident_id}"')]
        query = f"{url}?{urllib.parse.urlencode(matchers)}"
        try:
            with urllib.request.urlopen(query, timeout=self.spec.timeout_s) as resp:  # noqa: S310 - http(s) only (config)
                return list(orjson.loads(resp.read()))
        except urllib.error.HTTPError as e:
            # not for GET here (a proxy's 403, 405, 501); a timeout, a rate limit or a 5xx is retried
            refused = (400 <= e.code < 500 and e.code not in (408, 429)) or e.code == 501
            if refused and not self._unasked:
                # a proxy that lets POST through and refuses GET: the incident is delivered all the
                # same, and an alert an earlier revision labelled otherwise is left to its end time
                self._unasked = True
                log.warning(
                    f"{self.name}: HTTP {e.code} asking {url} which alerts it holds; incidents are posted "
                    "without resolving an earlier revision's alert (allow GET /api/v2/alerts: "
                    "docs/incidents.md#delivery-lifemon-notify)",
                    extra={"receiver": self.name, "status": e.code},
                )
            if refused:
                return []
            raise DeliveryError(
                f"{self.name}: HTTP {e.code} from {url} asked for incident {incident_id}"
            ) from e
        except (urllib.error.URLError, OSError, orjson.JSONDecodeError) as e:
            raise DeliveryError(f"{self.name}: {url} unreachable: {e}") from e

    def send(self, inc: dict[str, Any], review: str = UNREVIEWED, said: str | None = None) -> None:
        url, body = self.request(inc, review, said)
        if body is not None:
            self._post(url, body, idempotency_key(inc))

    def resolve(self, inc: dict[str, Any], review: str, now_ms: int | None = None) -> None:
        """Tell the receiver the response team closed the incident out (`review`: what they
        recorded, "resolved by e9 at …"), as it stands: Alertmanager's alert ends now, PagerDuty's
        incident is resolved, a webhook gets the incident with `resolved`. A later revision (the
        incident grew, back in the queue) fires it again."""
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        if self.spec.kind == "alertmanager":
            url = self.spec.url.rstrip("/") + "/api/v2/alerts"
            body: Any = alertmanager_payload(inc, now_ms, self._held(url, inc["incident_id"]), self.zone)
            body[0]["endsAt"] = _iso(now_ms)
            body[0]["annotations"]["review"] = review
        elif self.spec.kind == "pagerduty":
            url, body = (
                self.spec.url,
                {
                    "routing_key": self._routing_key,
                    "event_action": "resolve",
                    "dedup_key": inc["incident_id"],
                },
            )
        else:
            url, body = self.spec.url, webhook_payload(inc) | {"resolved": review}
        self._post(url, body, f"{idempotency_key(inc)}:resolved")

    def _post(self, url: str, body: Any, key: str) -> None:
        req = urllib.request.Request(
            url,
            data=orjson.dumps(body),
            method="POST",
            headers={
                "Content-Type": "application/json",
                "Idempotency-Key": key,
                "User-Agent": "lifemon-notify",
            },
        )
        try:
            with urllib.request.urlopen(req, timeout=self.spec.timeout_s) as resp:  # noqa: S310 - http(s) only (config)
                status = resp.status
        except urllib.error.HTTPError as e:
            raise DeliveryError(f"{self.name}: HTTP {e.code} from {url}") from e
        except (urllib.error.URLError, OSError) as e:
            raise DeliveryError(f"{self.name}: {url} unreachable: {e}") from e
        if not 200 <= status < 300:
            raise DeliveryError(f"{self.name}: HTTP {status} from {url}")
