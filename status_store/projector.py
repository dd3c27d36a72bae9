"""The projector loop: consume every lane's requests topic and the results topic, fold into the view,
resume from the view's offsets."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from confluent_kafka import OFFSET_BEGINNING, Message, TopicPartition

from common import metrics
from common.dead_letter import send_to_dead_letter
from common.encoding import EventCodec
from common.kafka import (
    coordinates,
    high_watermarks,
    is_record,
    logged_at,
    make_consumer,
    make_producer,
    next_batch,
    requests_topics,
)
from common.settings import Settings
from read_model.errors import ViewError
from read_model.fold import bounded_in_time
from read_model.view import StatusView
from schemas import SerializationError
from schemas.events import Event

log = logging.getLogger(__name__)

BATCH_SIZE = 2000


class Projector:
    """Folds every event of the lanes' requests topics and the results topic into one SQLite view.

    Partitions are assigned by hand, not by a consumer group: every API host
    keeps its own view, and its position lives in the view itself, written in
    the same transaction as the rows.
    """

    def __init__(self, settings: Settings, view_path: Path | None = None, codec: EventCodec | None = None) -> None:
        self.settings = settings
        self.view_path = view_path or settings.view_path
        self.codec = codec or EventCodec(settings)
        self._skew = timedelta(seconds=settings.event_clock_skew_seconds)
        self.topics = (*requests_topics(settings), settings.results_topic)
        self._lanes = {lane.requests_topic: lane.name for lane in settings.lane_plan}
        self._consumer = make_consumer(
            settings,
            group_id=f"status-projector-{uuid.uuid4()}",
            client_id="status-projector",
            **{"enable.auto.commit": False},
        )
        self._producer = make_producer(settings, "status-projector")
        self.applied = 0

    def _assign(self, view: StatusView) -> None:
        stored = view.offsets()
        assignment = []
        for topic in self.topics:
            metadata = self._consumer.list_topics(topic, timeout=10)
            for partition in metadata.topics[topic].partitions:
                offset = stored.get((topic, partition), OFFSET_BEGINNING)
                assignment.append(TopicPartition(topic, partition, offset))
        self._consumer.assign(assignment)

    def _partitions_grew(self) -> bool:
        """True if a topic now has partitions this projector does not read (added after it started)."""
        assigned = {(tp.topic, tp.partition) for tp in self._consumer.assignment()}
        try:
            for topic in self.topics:
                metadata = self._consumer.list_topics(topic, timeout=5)
                if any((topic, p) not in assigned for p in metadata.topics[topic].partitions):
                    return True
        except Exception:  # noqa: BLE001 - a metadata hiccup is no reason to stop projecting
            log.debug("partition check failed", exc_info=True)
        return False

    def _decode(self, msg: Message) -> Event | None:
        try:
            return self.codec.decode(msg.value(), msg.topic() or "")
        except SerializationError as e:
            # Result records have no other owner: this projector dead-letters them.
            # Bad requests are the workers' to dead-letter; skipping them here is enough.
            if msg.topic() not in self._lanes:
                send_to_dead_letter(self._producer, self.settings, msg, str(e), "status-projector")
            else:
                log.warning("skipped undecodable request record", extra={"offset": msg.offset(), "error": str(e)})
            return None

    def _apply(self, view: StatusView, messages: list[Message], generation: str) -> bool:
        events: list[Event] = []
        lanes: list[str | None] = []
        offsets: dict[tuple[str, int], int] = {}
        for msg in messages:
            if not is_record(msg, "the projector"):
                continue
            topic, partition, offset = coordinates(msg)
            offsets[(topic, partition)] = offset + 1
            event = self._decode(msg)
            if event is not None:
                events.append(bounded_in_time(event, logged_at(msg), self._skew))
                lanes.append(self._lanes.get(topic))
        applied = view.apply(events, offsets, generation, lanes)
        if applied:
            self.applied += len(events)
            metrics.PROJECTED_EVENTS.inc(len(events))
        return applied

    def _log_end(self) -> dict[tuple[str, int], int]:
        """Log-end offsets, asked before partitions are assigned (no fetch in flight to wait behind)."""
        return {
            (topic, partition): high
            for topic in self.topics
            for partition, high in high_watermarks(self._consumer, topic, timeout=30).items()
        }

    def _report_lag(self, view: StatusView) -> None:
        # Cached high watermarks (from fetch responses): a fresh ListOffsets request would
        # queue behind the consumer's own long-polling fetch on the same connection.
        try:
            applied = view.offsets()
            for tp in self._consumer.assignment():
                _, high = self._consumer.get_watermark_offsets(tp, timeout=1, cached=True)
                lag = max(0, high - applied.get((tp.topic, tp.partition), 0))
                metrics.CONSUMER_LAG.labels("status_projector", tp.topic, str(tp.partition)).set(lag)
        except Exception:  # noqa: BLE001 - metrics must never stop the projection
            log.debug("lag not reported", exc_info=True)

    def _forget_old(self, view: StatusView) -> None:
        """Drop rows past their status TTL: reads already answer 404 for them (read_model.lifecycle)."""
        try:
            forgotten = view.forget(datetime.now(UTC), self.settings.retention)
        except ViewError as e:
            log.warning("old rows not dropped this time: %s", e)
            return
        if forgotten:
            metrics.FORGOTTEN_TASKS.inc(forgotten)
            log.info("dropped %d task rows past their status TTL", forgotten)

    def _caught_up(self, view: StatusView, targets: dict[tuple[str, int], int]) -> bool:
        stored = view.offsets()
        return all(stored.get(tp, 0) >= high for tp, high in targets.items())

    def run(self, stop: threading.Event | None = None, until_caught_up: bool = False) -> int:
        """Project until `stop` is set, or until the log ends seen at start. Returns events applied."""
        stop = stop or threading.Event()
        view = StatusView(self.view_path)
        targets = self._log_end() if until_caught_up else {}
        try:
            generation = view.generation()
            self._assign(view)
            lag_due = 0.0
            purge_due = 0.0
            partitions_due = time.monotonic() + self.settings.partition_check_seconds
            while not stop.is_set():
                if until_caught_up and self._caught_up(view, targets):
                    break
                if time.monotonic() >= lag_due:
                    self._report_lag(view)
                    lag_due = time.monotonic() + 5.0
                if time.monotonic() >= purge_due:
                    self._forget_old(view)
                    purge_due = time.monotonic() + self.settings.view_purge_seconds
                if time.monotonic() >= partitions_due:
                    partitions_due = time.monotonic() + self.settings.partition_check_seconds
                    if self._partitions_grew():
                        # Everything read so far is applied, so the view's offsets are the positions.
                        log.info("topics gained partitions; reading them from the start")
                        self._assign(view)
                messages = next_batch(self._consumer, BATCH_SIZE, wait=0.2)
                if not messages:
                    continue
                if not self._apply(view, messages, generation):
                    log.info("view was replaced; resuming from its offsets")
                    generation = view.generation()
                    self._assign(view)
        finally:
            view.close()
        return self.applied

    def close(self) -> None:
        self._consumer.close()
        self._producer.flush(5)
        self.codec.close()
