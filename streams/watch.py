"""`lifemon watch`: new alerts live in a terminal, as `pfi.alerts` receives them (OCSF JSON).

Every revision is shown as it arrives (open, updated, closed), filtered as `lifemon alerts` filters:
by detector and by least severity. "New" means produced after the watch started: it reads each
partition from its end, and what a first fetch still returns from before that end (a broker may
report the end of its last batch short) is skipped until the partition reports it is caught up.
`--from-beginning` shows the topic's whole history first.

It joins no consumer group and commits nothing: any number of analysts may watch at once, and
none of them moves anyone's offsets.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, KafkaError, TopicPartition

from schemas.models import SEVERITY_RANK, Severity
from streams.alert_query import ACTOR_WIDTH, render_alert
from streams.alerts import actor_of
from streams.terminal import shown as escaped

log = logging.getLogger(__name__)
CATCH_UP_S = 10.0  # a partition that never reports its end is taken as caught up after this


class TopicMissing(RuntimeError):
    pass


def alert_row(doc: dict[str, Any]) -> dict[str, Any]:
    """The fields `lifemon alerts` shows, from an alert's OCSF document (docs/ocsf.md)."""
    info, unmapped = doc["finding_info"], doc["unmapped"]
    return {
        "last_seen": datetime.fromtimestamp(info["last_seen_time"] / 1000, UTC),
        "severity": doc["severity"].lower(),
        "status": unmapped["lifemon_status"],
        "detector": info["analytic"]["name"],
        "actor_id": actor_of(doc),
        "subject_count": unmapped["subject_count"],
        "counts": unmapped.get("counts") or {},
        "title_zh": unmapped["title_zh"],
        "title_en": unmapped["title_en"],
        "alert_id": info["uid"],
        "summary": doc.get("message", ""),
    }


def matches(row: dict[str, Any], detector: str | None, min_severity: Severity | None) -> bool:
    if detector and row["detector"] != detector:
        return False
    return min_severity is None or SEVERITY_RANK[Severity(row["severity"])] >= SEVERITY_RANK[min_severity]


def watch(
    consumer_config: dict[str, Any],
    topic: str,
    show: Callable[[str], None],
    *,
    from_beginning: bool = False,
    detector: str | None = None,
    min_severity: Severity | None = None,
    color: bool = False,
    stop: threading.Event | None = None,
) -> int:
    """Show alerts until `stop` is set (SIGINT and SIGTERM set it); returns how many were shown."""
    stop = stop or _stop_on_signals()
    consumer = Consumer(
        {
            **consumer_config,
            "group.id": f"lifemon-watch-{uuid.uuid4().hex[:8]}",  # never joined: partitions are assigned
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    shown = 0
    # the actor column as wide as the widest actor shown yet, as `lifemon alerts` sizes it to its
    # list's: an SDK's or a recipient's id pushed every later column out of line with an employee's
    actor_width = ACTOR_WIDTH
    try:
        known = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if known is None or known.error is not None or not known.partitions:
            raise TopicMissing(f"topic {topic} does not exist; is `lifemon run` writing alerts there?")
        start = OFFSET_BEGINNING if from_beginning else OFFSET_END
        consumer.assign([TopicPartition(topic, p, start) for p in known.partitions])
        # partitions still returning what was there before the watch began
        settling = set() if from_beginning else set(known.partitions)
        settle_by = time.monotonic() + CATCH_UP_S
        announced = False
        while not stop.is_set():
            if not announced and (not settling or time.monotonic() > settle_by):
                announced = True
                where = "from the beginning" if from_beginning else "from now on"
                log.info(f"watching {topic} {where}; Ctrl-C stops", extra={"topic": topic})
            for msg in consumer.consume(500, 0.5):
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        settling.discard(msg.partition())
                    else:
                        log.warning("consumer error", extra={"error": str(err)})
                    continue
                if msg.partition() in settling and time.monotonic() <= settle_by:
                    continue
                try:
                    row = alert_row(orjson.loads(msg.value() or b""))
                except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
                    log.warning(
                        f"{topic}[{msg.partition()}]@{msg.offset()} is not an OCSF alert; skipped",
                        extra={"partition": msg.partition(), "offset": msg.offset()},
                    )
                    continue
                if matches(row, detector, min_severity):
                    actor_width = max(actor_width, len(escaped(row["actor_id"])))
                    show(render_alert(row, color, actor_width))
                    shown += 1
    finally:
        consumer.close()
    return shown


def _stop_on_signals() -> threading.Event:
    """Ctrl-C (and SIGTERM) end the watch between two fetches, cleanly: no traceback."""
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
    return stop
