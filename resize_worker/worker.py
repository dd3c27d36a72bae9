"""The resize worker: one consumer in the group, one task at a time.

poll -> decode -> ResizeStarted -> attempt (get, resize, put) ->
ResizeCompleted | ResizeFailed (+ the request to the retry topic, or to the
dead-letter topic when attempts are exhausted) -> commit the offset.

A crash before the commit redelivers the request; the result key is a
function of the task, so a redelivery overwrites the same object.
"""

from __future__ import annotations

import logging
import threading
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from common import metrics
from common.backoff import jittered
from common.dead_letter import dead_letter
from common.kafka import coordinates, headers_of, high_watermarks, make_consumer, make_producer
from common.settings import Settings
from resize_worker.attempt import Attempts
from resize_worker.crashes import CrashLedger
from resize_worker.delivery import AtLeastOnce, Commit, Delivery, ExactlyOnce, Record, Stopped
from resize_worker.retry import Step, attempt_of, not_before_of, retry_headers
from resize_worker.started import StartedNotice
from schemas import Codec, SerializationError, default_codec, producer_name
from schemas.events import Event, ResizeFailed, ResizeRequested, ResizeStarted
from vocabulary.errors import WorkerCrashed

log = logging.getLogger(__name__)


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
    def __init__(self, settings: Settings, codec: Codec | None = None, name: str = "resize_worker") -> None:
        self.settings = settings
        self.codec = codec or default_codec()
        self.producer_id = producer_name(name)
        self.attempts = Attempts(settings, self.producer_id)
        self._name = name
        self._exactly_once = settings.processing_guarantee == "exactly_once"
        self._started = StartedNotice(settings.started_event_after_seconds)
        self.processed = 0
        self._connect()

    def _connect(self) -> None:
        """Fresh Kafka clients: a consumer in the group, and a producer (transactional in exactly-once mode)."""
        settings = self.settings
        producer_conf: dict[str, object] = {}
        if self._exactly_once:
            producer_conf["transactional.id"] = f"{settings.worker_group}-{settings.worker_id}"
        self._producer = make_producer(settings, self._name, **producer_conf)
        self._consumer: Consumer = make_consumer(
            settings,
            settings.worker_group,
            self._name,
            # One task can take seconds; leave room before the group thinks we died.
            # A dead worker's partitions move on after session.timeout.ms; a short commit
            # interval bounds how much a crash makes the next worker redo.
            **{"max.poll.interval.ms": 300_000, "session.timeout.ms": 10_000, "auto.commit.interval.ms": 1000},
            **({"enable.auto.commit": False} if self._exactly_once else {}),
        )
        self._crashes = CrashLedger(self._consumer, settings.worker_crash_limit)
        # Retry partitions whose head is not due yet, and when to look again.
        self._paused: dict[tuple[str, int], float] = {}

    # -- one record ---------------------------------------------------------

    def _dead_letter(self, msg: Message, error: str, delivery: Delivery) -> None:
        letter = dead_letter(msg, error, "resize_worker")
        delivery.send(Record(self.settings.dead_letter_topic, letter.key, letter.value, letter.headers))

    def _event(self, event: Event) -> Record:
        return Record(self.settings.results_topic, event.task_id, self.codec.encode(event))

    def _handle(self, msg: Message, delivery: Delivery) -> None:
        try:
            request = self.codec.decode(msg.value())
        except SerializationError as e:
            self._dead_letter(msg, str(e), delivery)
            return
        if not isinstance(request, ResizeRequested):
            self._dead_letter(msg, f"unexpected {type(request).__name__} in the requests topic", delivery)
            return
        attempt = attempt_of(msg)
        crashed = self._crashes.start(msg, request.task_id)
        if crashed >= self._crashes.limit > 0:
            self._give_up_after_crashes(msg, request, attempt, crashed, delivery)
            return
        started = ResizeStarted(task_id=request.task_id, producer=self.producer_id, attempt=attempt)
        # Started is informational: not awaited, and only sent for an attempt that runs long.
        self._started.arm(lambda: delivery.send(self._event(started), durable=False))
        try:
            outcome, step = self.attempts.run(request, attempt)
        finally:
            self._started.disarm()
        delivery.send(self._event(outcome))
        if step is Step.RETRY:
            metrics.RETRIES.inc()
            delay = jittered(attempt, self.settings.retry_backoff_seconds, self.settings.retry_backoff_max_seconds)
            delivery.send(
                Record(
                    self.settings.retry_topic,
                    request.task_id,
                    msg.value() or b"",
                    retry_headers(attempt + 1, delay, original=headers_of(msg)),
                )
            )
        elif step is Step.DEAD_LETTER and isinstance(outcome, ResizeFailed):
            self._dead_letter(msg, f"retries exhausted after {attempt} attempts: {outcome.error_message}", delivery)
        else:
            log.info("task finished", extra={"task_id": request.task_id, "attempt": attempt})

    def _give_up_after_crashes(
        self, msg: Message, request: ResizeRequested, attempt: int, crashed: int, delivery: Delivery
    ) -> None:
        """A request whose attempts took `crashed` workers down: a final failure and a dead letter, no new attempt."""
        reason = f"{crashed} attempts at this request ended with their worker process; it is not tried again"
        log.error("request dead-lettered: %s", reason, extra={"task_id": request.task_id})
        delivery.send(self._event(self.attempts.failed(request, attempt, WorkerCrashed.code, reason, retriable=False)))
        self._dead_letter(msg, f"{WorkerCrashed.code}: {reason}", delivery)

    # -- the loop -----------------------------------------------------------

    def _defer_if_not_due(self, msg: Message) -> bool:
        """A retry whose time has not come: rewind and pause its partition until then."""
        if msg.topic() != self.settings.retry_topic:
            return False
        due = not_before_of(msg)
        if due <= time.time():
            return False
        topic, partition, offset = coordinates(msg)
        tp = TopicPartition(topic, partition, offset)
        self._consumer.pause([tp])
        self._consumer.seek(tp)
        self._paused[(topic, partition)] = due
        return True

    def _resume_due(self) -> None:
        now = time.time()
        for (topic, partition), due in list(self._paused.items()):
            if due <= now:
                self._consumer.resume([TopicPartition(topic, partition)])
                del self._paused[(topic, partition)]

    def _report_lag(self) -> None:
        """Consumer lag per assigned partition: log end minus our position."""
        try:
            assigned = self._consumer.assignment()
            for tp in self._consumer.position(assigned):
                _, high = self._consumer.get_watermark_offsets(tp, timeout=1, cached=True)
                lag = max(0, high - tp.offset) if tp.offset >= 0 else high
                metrics.CONSUMER_LAG.labels("resize_worker", tp.topic, str(tp.partition)).set(lag)
        except KafkaException:
            pass  # metrics must never stop the work

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._crashes.forget(partitions)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._crashes.forget(partitions)
        for tp in partitions:
            self._paused.pop((tp.topic, tp.partition), None)

    def run(self, stop: threading.Event) -> None:
        """Consume as a member of the worker group until `stop` is set; the task in hand is finished first."""
        topics = [self.settings.requests_topic, self.settings.retry_topic]
        try:
            while True:
                self._consumer.subscribe(topics, on_assign=self._on_assign, on_revoke=self._on_revoke)
                try:
                    self._loop(stop, until=None)
                    return
                except KafkaException as e:
                    if stop.is_set() or not starts_over(e.args[0]):
                        raise
                    # The request in hand was not committed: the group hands it out again.
                    log.error("a Kafka client failed for good, starting fresh ones: %s", e)
                    self._connect()
        finally:
            self.attempts.close()

    def run_range(self, starts: dict[int, int], stop: threading.Event) -> int:
        """Process the requests topic from `starts` (per partition) to its end as of now. Returns records handled."""
        topic = self.settings.requests_topic
        ends = high_watermarks(self._consumer, topic, timeout=10)
        pending = {p: end for p, end in ends.items() if starts.get(p, end) < end}
        try:
            if not pending:
                self._close()
                return 0
            self._consumer.assign([TopicPartition(topic, p, starts[p]) for p in pending])
            self._loop(stop, until=pending)
            return self.processed
        finally:
            self.attempts.close()

    def _delivery(self, stop: threading.Event) -> Delivery:
        if self._exactly_once:
            return ExactlyOnce(self.settings, self._producer, self._consumer, stop)
        return AtLeastOnce(self.settings, self._producer, self._consumer, stop)

    def _close(self) -> None:
        """Close the Kafka clients; close() commits stored offsets (at-least-once) and leaves the group at once."""
        self._consumer.close()
        try:
            self._producer.flush(10)
        except KafkaException as e:
            # A producer that failed for good raises its error again here; the loop has reported it.
            log.warning("producer closed with an error: %s", e)

    def _loop(self, stop: threading.Event, until: dict[int, int] | None) -> None:
        """Poll, handle, commit; with `until`, stop once every listed partition reached its end offset."""
        remaining = dict(until) if until is not None else None
        lag_due = 0.0
        try:
            delivery = self._delivery(stop)
            while not stop.is_set() and remaining != {}:
                if time.monotonic() >= lag_due:
                    self._report_lag()
                    lag_due = time.monotonic() + 5.0
                self._resume_due()
                msg = self._consumer.poll(0.2)
                if msg is None:
                    continue
                error = msg.error()
                if error is not None:
                    if error.code() != KafkaError._PARTITION_EOF:
                        log.warning("consume error: %s", error)
                    continue
                if self._defer_if_not_due(msg):
                    continue
                delivery.begin()
                try:
                    self._handle(msg, delivery)
                    settled = delivery.commit(msg)
                except Stopped as e:
                    log.info("stopped before the request was settled: %s", e, extra={"offset": msg.offset()})
                    break
                if settled is Commit.AGAIN:
                    continue  # rewound: not done, and its partition's end is not reached
                self.processed += 1
                _, partition, offset = coordinates(msg)
                if remaining is not None and offset + 1 >= remaining.get(partition, 0):
                    remaining.pop(partition, None)
        except Stopped as e:
            log.info("stopped before transactions could start: %s", e)
        finally:
            self._close()
