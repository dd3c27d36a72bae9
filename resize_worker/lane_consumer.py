"""One lane as a worker serves it: a consumer in the lane's group, its crash ledger, and the record in hand.

Each lane has a consumer of its own, so a lane's prefetched records wait in
that consumer's queue, never in front of another lane's. The worker takes at
most one record from each lane at a time and leaves it "in hand" until it
serves it; a record in hand is not committed, so a worker that dies holding it
leaves it to the next owner of its partition, like any record not yet done.

A lane is "warm" once it has heard from every partition it was given: a record,
or the end of the partition (`enable.partition.eof`). Until then the worker does
not serve the lanes below it, for a bounded time: a worker that just joined
would otherwise start on a bulk backlog while its interactive consumer is still
looking up where to begin.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

from common import metrics
from common.kafka import coordinates, is_record, make_consumer
from common.lanes import Lane
from common.settings import Settings
from resize_worker.crashes import CrashLedger, OwnStarts
from resize_worker.retry import not_before_of

log = logging.getLogger(__name__)

# How long lower lanes wait for a cold lane: bounds the stall when a partition has no leader to fetch from.
WARM_UP_SECONDS = 5.0


class LaneConsumer:
    def __init__(
        self, settings: Settings, lane: Lane, client_id: str, exactly_once: bool, own_starts: OwnStarts | None = None
    ) -> None:
        self.lane = lane
        conf: dict[str, Any] = {
            # One task can take seconds, and a lane's record in hand waits while other lanes are
            # served: leave room before the group thinks we died. A dead worker's partitions move
            # on after session.timeout.ms; a short commit interval bounds what a crash makes the
            # next worker redo.
            "max.poll.interval.ms": 300_000,
            "session.timeout.ms": 10_000,
            "auto.commit.interval.ms": 1000,
            # Tells the lane it has read a partition to its end, so it is warm (see above).
            "enable.partition.eof": True,
        }
        if exactly_once:
            conf["enable.auto.commit"] = False
        self.consumer: Consumer = make_consumer(settings, lane.group, f"{client_id}-{lane.name}", **conf)
        self.crashes = CrashLedger(self.consumer, settings.worker_crash_limit, own_starts)
        # Retry partitions whose head is not due yet, and when to look again.
        self._paused: dict[tuple[str, int], float] = {}
        self.held: Message | None = None
        # Assigned partitions not heard from yet, and since when the lane has been cold.
        self._unheard: set[tuple[str, int]] = set()
        self._cold_since = 0.0

    @property
    def name(self) -> str:
        return self.lane.name

    def subscribe(self) -> None:
        self.consumer.subscribe(
            [self.lane.requests_topic, self.lane.retry_topic], on_assign=self._on_assign, on_revoke=self._on_revoke
        )

    def take(self, timeout: float) -> None:
        """Put the lane's next due record in hand, if none is and one comes within `timeout`."""
        if self.held is not None:
            return
        msg = self.consumer.poll(timeout)
        if msg is None:
            return
        self._unheard.discard((msg.topic(), msg.partition()))
        if not is_record(msg, f"lane {self.name}"):
            return
        if self._defer_if_not_due(msg):
            return
        self.held = msg

    def warm(self) -> bool:
        """Heard from every assigned partition, or cold for longer than lower lanes wait for it."""
        if not self._unheard:
            return True
        return time.monotonic() - self._cold_since > WARM_UP_SECONDS

    def hand_over(self) -> Message:
        """The record in hand, which the caller now serves."""
        msg, self.held = self.held, None
        assert msg is not None
        return msg

    def _defer_if_not_due(self, msg: Message) -> bool:
        """A retry whose time has not come: rewind and pause its partition until then."""
        if msg.topic() != self.lane.retry_topic:
            return False
        due = not_before_of(msg)
        if due <= time.time():
            return False
        topic, partition, offset = coordinates(msg)
        tp = TopicPartition(topic, partition, offset)
        self.consumer.pause([tp])
        self.consumer.seek(tp)
        self._paused[(topic, partition)] = due
        return True

    def resume_due(self) -> None:
        now = time.time()
        for (topic, partition), due in list(self._paused.items()):
            if due <= now:
                self.consumer.resume([TopicPartition(topic, partition)])
                del self._paused[(topic, partition)]

    def report_lag(self) -> None:
        """Consumer lag per assigned partition, and over the lane: log end minus our position."""
        try:
            total = 0
            for tp in self.consumer.position(self.consumer.assignment()):
                _, high = self.consumer.get_watermark_offsets(tp, timeout=1, cached=True)
                lag = max(0, high - tp.offset) if tp.offset >= 0 else high
                total += lag
                metrics.CONSUMER_LAG.labels("resize_worker", tp.topic, str(tp.partition)).set(lag)
            metrics.LANE_LAG.labels(self.name).set(total)
        except KafkaException:
            pass  # metrics must never stop the work

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.crashes.forget(partitions)
        if not self._unheard:
            self._cold_since = time.monotonic()
        self._unheard.update((tp.topic, tp.partition) for tp in partitions)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.crashes.forget(partitions)
        revoked = {(tp.topic, tp.partition) for tp in partitions}
        self._unheard -= revoked
        for key in revoked:
            self._paused.pop(key, None)
        # Rebalances run inside poll(), which is only called with nothing in hand; should one come
        # anyway, a record of a partition we lost is the new owner's, uncommitted here.
        if self.held is not None and (self.held.topic(), self.held.partition()) in revoked:
            self.held = None

    def close(self) -> None:
        """close() commits stored offsets (at-least-once) and leaves the group at once."""
        self.consumer.close()
