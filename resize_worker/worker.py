"""The resize worker: one consumer per lane it serves, one task at a time.

pick a lane -> decode -> ResizeStarted -> attempt (get, resize, put) ->
ResizeCompleted | ResizeFailed (+ the request to its lane's retry topic, or to
the dead-letter topic when attempts are exhausted) -> commit the offset.

The lane is the highest with a record in hand, except that lower lanes get
their minimum share of the worker's time while several have work (LaneShares),
and that no lane is served below one that has not yet heard from all its
partitions (a worker that just joined looks at interactive work before bulk).
A crash before the commit redelivers the request; the result key is a
function of the task, so a redelivery overwrites the same object.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime

from confluent_kafka import KafkaError, KafkaException, Message

from common import metrics
from common.backoff import jittered
from common.dead_letter import dead_letter
from common.encoding import EventCodec, RegistryUnavailable
from common.kafka import headers_of, logged_at, make_producer
from common.lanes import Lane
from common.settings import Settings
from resize_worker.attempt import Attempts
from resize_worker.crashes import OwnStarts
from resize_worker.delivery import AtLeastOnce, Commit, Delivery, ExactlyOnce, Record, Stopped
from resize_worker.lane_consumer import LaneConsumer
from resize_worker.retry import Step, attempt_of, retry_headers
from resize_worker.shares import IdleWait, LaneShares, servable
from resize_worker.started import StartedNotice
from schemas import SerializationError, producer_name
from schemas.events import Event, ResizeFailed, ResizeRequested, ResizeStarted
from vocabulary.errors import WorkerCrashed

log = logging.getLogger(__name__)

# On a dead letter from a lane's topics: which lane it came from.
LANE_HEADER = "imgresize.lane"


# A transactional producer fenced by a newer instance of its worker slot: that instance owns the slot now.
_FENCED = {KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH, KafkaError._FENCED}


def starts_over(error: KafkaError) -> bool:
    """Whether a worker whose producer failed with `error` should go on with fresh Kafka clients.

    A fatal transactional error that is not a fencing (e.g. a commit retried after its
    coordinator died and aborted the transaction: INVALID_TXN_STATE) leaves the producer
    unusable but the worker sound. A fenced worker stops: starting over would fence the
    newer instance in turn, and the two would take the slot from each other forever.
    """
    return error.fatal() and error.code() not in _FENCED


class ResizeWorker:
    def __init__(self, settings: Settings, codec: EventCodec | None = None, name: str = "resize_worker") -> None:
        self.settings = settings
        self.codec = codec or EventCodec(settings)
        self.producer_id = producer_name(name)
        self.attempts = Attempts(settings, self.producer_id)
        self._name = name
        self._exactly_once = settings.processing_guarantee == "exactly_once"
        self._started = StartedNotice(settings.started_event_after_seconds)
        self.lanes = settings.served_lanes
        self.shares = LaneShares([lane.name for lane in self.lanes], settings.lane_min_share)
        # With one lane there is no other to look at between waits.
        self._idle_wait = IdleWait() if len(self.lanes) > 1 else IdleWait(quiet=0.2)
        self.processed = 0
        # The crash ledger's own starts per lane, kept across fresh clients (see resize_worker.crashes).
        self._own_starts: dict[str, OwnStarts] = {lane.name: {} for lane in self.lanes}
        self._connect()

    def _connect(self) -> None:
        """Fresh Kafka clients: a consumer per lane, each in its lane's group, and one producer
        (transactional in exactly-once mode: a transaction carries the offsets of any lane's group)."""
        settings = self.settings
        producer_conf: dict[str, object] = {}
        if self._exactly_once:
            producer_conf["transactional.id"] = f"{settings.worker_group}-{settings.worker_id}"
        self._producer = make_producer(settings, self._name, **producer_conf)
        self._lanes = [
            LaneConsumer(settings, lane, self._name, self._exactly_once, self._own_starts[lane.name])
            for lane in self.lanes
        ]
        self._by_name = {lane.name: lane for lane in self._lanes}

    # -- one record ---------------------------------------------------------

    def _dead_letter(self, msg: Message, error: str, lane: LaneConsumer, delivery: Delivery) -> None:
        letter = dead_letter(msg, error, "resize_worker")
        headers = [*letter.headers, (LANE_HEADER, lane.name.encode())]
        delivery.send(Record(self.settings.dead_letter_topic, letter.key, letter.value, headers))

    def _event(self, event: Event) -> Record:
        topic = self.settings.results_topic
        deadline = time.monotonic() + 6 * self.settings.produce_timeout_seconds
        while True:
            try:
                return Record(topic, event.task_id, self.codec.encode(event, topic))
            except RegistryUnavailable as e:
                # The outcome is not lost: past the deadline the worker fails, its offset uncommitted.
                if time.monotonic() > deadline:
                    raise
                log.warning("schema registry away, outcome waits: %s", e, extra={"task_id": event.task_id})
                time.sleep(1.0)

    def _handle(self, msg: Message, lane: LaneConsumer, delivery: Delivery) -> None:
        try:
            request = self.codec.decode(msg.value(), msg.topic() or "")
        except SerializationError as e:
            self._dead_letter(msg, str(e), lane, delivery)
            return
        if not isinstance(request, ResizeRequested):
            self._dead_letter(msg, f"unexpected {type(request).__name__} in the requests topic", lane, delivery)
            return
        attempt = attempt_of(msg)
        crashed = lane.crashes.start(msg, request.task_id)
        if crashed >= lane.crashes.limit > 0:
            self._give_up_after_crashes(msg, request, attempt, crashed, lane, delivery)
            return
        started = ResizeStarted(task_id=request.task_id, producer=self.producer_id, attempt=attempt)
        # Started is informational: not awaited, and only sent for an attempt that runs long.
        self._started.arm(lambda: delivery.send(self._event(started), durable=False))
        try:
            outcome, step = self.attempts.run(request, attempt, self._nice(lane.lane))
        finally:
            self._started.disarm()
        delivery.send(self._event(outcome))
        if step is Step.RETRY:
            metrics.RETRIES.inc()
            delay = jittered(attempt, self.settings.retry_backoff_seconds, self.settings.retry_backoff_max_seconds)
            delivery.send(
                Record(
                    lane.lane.retry_topic,
                    request.task_id,
                    msg.value() or b"",
                    retry_headers(attempt + 1, delay, original=headers_of(msg)),
                )
            )
        elif step is Step.DEAD_LETTER and isinstance(outcome, ResizeFailed):
            reason = f"retries exhausted after {attempt} attempts: {outcome.error_message}"
            self._dead_letter(msg, reason, lane, delivery)
        else:
            log.info("task finished", extra={"task_id": request.task_id, "attempt": attempt, "lane": lane.name})

    def _give_up_after_crashes(
        self,
        msg: Message,
        request: ResizeRequested,
        attempt: int,
        crashed: int,
        lane: LaneConsumer,
        delivery: Delivery,
    ) -> None:
        """A request whose attempts took `crashed` workers down: a final failure and a dead letter, no new attempt."""
        reason = f"{crashed} attempts at this request ended with their worker process; it is not tried again"
        log.error("request dead-lettered: %s", reason, extra={"task_id": request.task_id})
        delivery.send(self._event(self.attempts.failed(request, attempt, WorkerCrashed.code, reason, retriable=False)))
        self._dead_letter(msg, f"{WorkerCrashed.code}: {reason}", lane, delivery)

    # -- the loop -----------------------------------------------------------

    def _nice(self, lane: Lane) -> int:
        """The niceness of the resize child serving `lane`."""
        return self.settings.lower_lane_nice if lane.rank > 0 else 0

    def _start_resize_child(self) -> None:
        """The first lane's resize child, started before the first task rather than by it."""
        try:
            self.attempts.resizer(self._nice(self.lanes[0])).start()
        except Exception as e:  # noqa: BLE001 - the first task starts it again, and fails the task if it must
            log.warning("resize child not started ahead of the first task: %s", e)

    def run(self, stop: threading.Event) -> None:
        """Consume as a member of each served lane's group until `stop` is set; the task in hand is finished first."""
        self._start_resize_child()
        try:
            while True:
                for lane in self._lanes:
                    lane.subscribe()
                try:
                    self._loop(stop)
                    return
                except KafkaException as e:
                    if stop.is_set() or not starts_over(e.args[0]):
                        raise
                    # The request in hand was not committed: the group hands it out again.
                    log.error("a Kafka client failed for good, starting fresh ones: %s", e)
                    self._connect()
        finally:
            self.attempts.close()
            self.codec.close()

    def _delivery(self, stop: threading.Event) -> Delivery:
        if self._exactly_once:
            return ExactlyOnce(self.settings, self._producer, stop)
        return AtLeastOnce(self.settings, self._producer, stop)

    def _close(self) -> None:
        """Close the Kafka clients; a record in hand stays uncommitted for the next owner of its partition."""
        for lane in self._lanes:
            lane.close()
        try:
            self._producer.flush(10)
        except KafkaException as e:
            # A producer that failed for good raises its error again here; the loop has reported it.
            log.warning("producer closed with an error: %s", e)

    def _next(self) -> LaneConsumer | None:
        """The lane to serve now, after looking at every lane; None if no lane has a record in hand."""
        for lane in self._lanes:
            lane.take(0)
        now = time.monotonic()
        if any(lane.held is not None for lane in self._lanes[1:]):
            self._idle_wait.heard_other_lane(now)
        chosen = self.shares.pick(servable(self._lanes))
        if chosen is not None:
            return self._by_name[chosen]
        # Nothing to serve: wait a little on the first cold lane, else the first lane, then look again.
        waited = next((lane for lane in self._lanes if not lane.warm()), self._lanes[0])
        waited.take(self._idle_wait.seconds(now))
        return None

    def _loop(self, stop: threading.Event) -> None:
        """Pick a lane, handle its record, commit; until `stop` is set."""
        lag_due = 0.0
        try:
            delivery = self._delivery(stop)
            while not stop.is_set():
                if time.monotonic() >= lag_due:
                    for lane in self._lanes:
                        lane.report_lag()
                    lag_due = time.monotonic() + 5.0
                for lane in self._lanes:
                    lane.resume_due()
                chosen = self._next()
                if chosen is None:
                    continue
                ready = [lane.name for lane in self._lanes if lane.held is not None]
                msg = chosen.hand_over()
                began = time.monotonic()
                arrived = logged_at(msg)
                metrics.LANE_QUEUE_WAIT.labels(chosen.name).observe(since(arrived))
                delivery.begin()
                try:
                    self._handle(msg, chosen, delivery)
                    settled = delivery.commit(msg, chosen.consumer)
                except Stopped as e:
                    log.info("stopped before the request was settled: %s", e, extra={"offset": msg.offset()})
                    break
                spent = time.monotonic() - began
                self.shares.served(chosen.name, spent, ready)
                metrics.LANE_WORK_SECONDS.labels(chosen.name).inc(spent)
                if len(ready) > 1:
                    metrics.LANE_CONTENDED_SECONDS.labels(chosen.name).inc(spent)
                if settled is Commit.AGAIN:
                    continue  # rewound: the same record comes back from its lane's next poll
                chosen.crashes.settled(msg)
                metrics.LANE_RECORDS.labels(chosen.name).inc()
                metrics.LANE_REQUEST_TO_RESULT.labels(chosen.name).observe(since(arrived))
                self.processed += 1
        except Stopped as e:
            log.info("stopped before transactions could start: %s", e)
        finally:
            self._close()


def since(moment: datetime) -> float:
    return max(0.0, (datetime.now(UTC) - moment).total_seconds())
