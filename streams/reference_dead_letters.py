"""Which reference records went to the dead-letter topic at an earlier start.

Every start reads the reference topics (entitlements, consents, customers) from their beginning, so
a record refused once was refused again at every start: a probe's bad customers record was on the
dead-letter topic three times after three starts, each start's progress line said `dlq=1`, and the
operator's warning came again with nothing new. How far the dead letters of each reference
partition were sent is kept as that partition's committed offset in a consumer group of its own
(`<group_id>-reference-dead-letters`, which no consumer joins), moved on only after a checkpoint
flushed the dead-letter sinks: a record refused below it is not sent or counted again. A crash
between the flush and the mark sends it once more (at least once, as every output).
"""

from __future__ import annotations

import logging
from typing import Any

from confluent_kafka import KafkaException, TopicPartition

from streams.kafka_reach import consumer

log = logging.getLogger(__name__)


class ReferenceDeadLetters:
    def __init__(self, consumer_conf: dict[str, Any], group_id: str):
        self.group = f"{group_id}-reference-dead-letters"
        self._client = consumer({**consumer_conf, "group.id": self.group, "enable.auto.commit": False})
        self.marks: dict[tuple[str, int], int] = {}  # (topic, partition) -> first offset not yet sent
        self.again = 0  # refused records not sent again, this start

    def load(self, partitions: list[TopicPartition]) -> None:
        """The marks an earlier start left for these reference partitions."""
        asked = [TopicPartition(tp.topic, tp.partition) for tp in partitions]
        for tp in self._client.committed(asked, timeout=10):
            if tp.offset >= 0:
                self.marks[(tp.topic, tp.partition)] = tp.offset

    def fresh(self, dead: list[Any]) -> list[Any]:
        """The dead letters not sent at an earlier start."""
        new = [d for d in dead if d.raw.offset >= self.marks.get((d.raw.topic, d.raw.partition), 0)]
        self.again += len(dead) - len(new)
        return new

    def mark(self, positions: dict[tuple[str, int], int]) -> None:
        """After a checkpoint flushed the dead letters of the records before `positions`: sent."""
        due = {tp: off for tp, off in positions.items() if off > self.marks.get(tp, 0)}
        if not due:
            return
        try:
            self._client.commit(
                offsets=[TopicPartition(t, p, off) for (t, p), off in due.items()], asynchronous=False
            )
            self.marks.update(due)
        except KafkaException as e:  # the next checkpoint tries again; meanwhile a restart resends
            log.warning(f"reference dead-letter marks not stored ({e})", extra={"group": self.group})

    def close(self) -> None:
        self._client.close()
