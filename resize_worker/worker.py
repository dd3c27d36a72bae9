"""The resize worker: one consumer in the group, one task at a time, at-least-once.

poll -> decode -> ResizeStarted -> get original -> resize -> put result ->
ResizeCompleted/ResizeFailed acknowledged -> store the offset. A crash at any
point before the last step redelivers the request; the result key is a
function of the task, so the redelivery overwrites the same object.
"""

from __future__ import annotations

import logging
import random
import threading
import time

from confluent_kafka import KafkaError, Message

from common.dead_letter import send_to_dead_letter
from common.errors import BrokerUnavailable, ObjectNotFound, StoreUnavailable
from common.kafka import make_consumer, make_producer, produce_and_wait
from common.settings import Settings
from common.store import ObjectStore
from resize_worker.engine import resize
from resize_worker.errors import ResizeError
from schemas import Codec, SerializationError, default_codec, producer_name
from schemas.events import Event, ResizeCompleted, ResizeFailed, ResizeRequested, ResizeStarted, StoredImage

log = logging.getLogger(__name__)


def result_key(task_id: str) -> str:
    """Where a task's result lives: the same key for every attempt and every replay."""
    return f"results/{task_id}"


def backoff_delay(attempt: int, base: float, cap: float) -> float:
    """Exponential backoff with full jitter."""
    return random.uniform(0, min(cap, base * 2 ** (attempt - 1)))


class ResizeWorker:
    def __init__(self, settings: Settings, codec: Codec | None = None, name: str = "resize_worker") -> None:
        self.settings = settings
        self.codec = codec or default_codec()
        self.producer_id = producer_name(name)
        self._stores: dict[str, ObjectStore] = {}
        self._producer = make_producer(settings, name, **{"linger.ms": 1})
        self._consumer = make_consumer(
            settings,
            settings.worker_group,
            name,
            # One task can take seconds; leave room before the group thinks we died.
            **{"max.poll.interval.ms": 300_000, "session.timeout.ms": 15_000},
        )
        self.processed = 0

    def _store(self, bucket: str) -> ObjectStore:
        if bucket not in self._stores:
            self._stores[bucket] = ObjectStore(self.settings, bucket=bucket)
        return self._stores[bucket]

    def _emit(self, event: Event, stop: threading.Event, wait: bool = True) -> bool:
        """Produce an event for the task; retried until acknowledged or stopping."""
        value = self.codec.encode(event)
        if not wait:
            self._producer.produce(self.settings.results_topic, key=event.task_id.encode(), value=value)
            self._producer.poll(0)
            return True
        attempt = 0
        while True:
            attempt += 1
            try:
                produce_and_wait(
                    self._producer,
                    self.settings.results_topic,
                    event.task_id,
                    value,
                    self.settings.produce_timeout_seconds,
                )
                return True
            except BrokerUnavailable as e:
                log.warning("result event not acknowledged, retrying: %s", e, extra={"task_id": event.task_id})
                if stop.wait(backoff_delay(attempt, 0.5, 5.0)):
                    return False

    def _attempt(self, request: ResizeRequested, attempt: int) -> Event:
        started = time.monotonic()
        original = self._store(request.source.bucket).get(request.source.key)
        resized = resize(
            original.data,
            request.width,
            request.height,
            request.mode,
            request.format,
            max_pixels=self.settings.max_pixels,
        )
        key = result_key(request.task_id)
        store = self._store(self.settings.s3_bucket)
        etag = store.put(key, resized.data, resized.content_type)
        return ResizeCompleted(
            task_id=request.task_id,
            producer=self.producer_id,
            attempt=attempt,
            result=StoredImage(
                bucket=store.bucket,
                key=key,
                content_type=resized.content_type,
                width=resized.width,
                height=resized.height,
                size_bytes=len(resized.data),
                etag=etag,
            ),
            source_width=resized.source_width,
            source_height=resized.source_height,
            duration_ms=int((time.monotonic() - started) * 1000),
        )

    def _failed(self, request: ResizeRequested, attempt: int, code: str, message: str, retriable: bool) -> ResizeFailed:
        return ResizeFailed(
            task_id=request.task_id,
            producer=self.producer_id,
            attempt=attempt,
            error_code=code,
            error_message=message[:1000],
            retriable=retriable,
        )

    def handle(self, request: ResizeRequested, stop: threading.Event) -> bool:
        """Take one task to SUCCESS or FAILURE. False if stopped before its outcome was acknowledged."""
        extra = {"task_id": request.task_id}
        attempt = 0
        while True:
            attempt += 1
            self._emit(
                ResizeStarted(task_id=request.task_id, producer=self.producer_id, attempt=attempt), stop, wait=False
            )
            try:
                outcome: Event = self._attempt(request, attempt)
                log.info("resized", extra={**extra, "attempt": attempt})
            except ResizeError as e:
                outcome = self._failed(request, attempt, e.code, str(e), retriable=False)
            except ObjectNotFound as e:
                outcome = self._failed(request, attempt, "source_missing", str(e), retriable=False)
            except StoreUnavailable as e:
                final = attempt >= self.settings.max_attempts
                outcome = self._failed(request, attempt, e.code, str(e), retriable=not final)
            except Exception as e:  # noqa: BLE001 - a bug must fail the task, not the worker
                log.exception("unexpected error", extra=extra)
                outcome = self._failed(request, attempt, "internal_error", f"{type(e).__name__}: {e}", retriable=False)
            if isinstance(outcome, ResizeFailed):
                log.warning(
                    "attempt failed: %s %s",
                    outcome.error_code,
                    outcome.error_message,
                    extra={**extra, "attempt": attempt},
                )
            if not self._emit(outcome, stop):
                return False
            if not (isinstance(outcome, ResizeFailed) and outcome.retriable):
                return True
            delay = backoff_delay(attempt, self.settings.retry_backoff_seconds, self.settings.retry_backoff_max_seconds)
            if stop.wait(delay):
                return False

    def _handle_message(self, msg: Message, stop: threading.Event) -> bool:
        try:
            event = self.codec.decode(msg.value())
        except SerializationError as e:
            send_to_dead_letter(self._producer, self.settings, msg, str(e), "resize_worker")
            return True
        if not isinstance(event, ResizeRequested):
            send_to_dead_letter(
                self._producer, self.settings, msg, f"unexpected {type(event).__name__}", "resize_worker"
            )
            return True
        return self.handle(event, stop)

    def run(self, stop: threading.Event) -> None:
        """Consume until `stop` is set; the task in hand is finished first."""
        self._consumer.subscribe([self.settings.requests_topic])
        try:
            while not stop.is_set():
                msg = self._consumer.poll(0.5)
                if msg is None:
                    continue
                error = msg.error()
                if error is not None:
                    if error.code() != KafkaError._PARTITION_EOF:
                        log.warning("consume error: %s", error)
                    continue
                try:
                    done = self._handle_message(msg, stop)
                except BrokerUnavailable as e:
                    # Not even the dead letter could be written: leave the offset, try again later.
                    log.error("could not dead-letter record: %s", e)
                    done = False
                if not done:
                    break
                self._consumer.store_offsets(message=msg)
                self.processed += 1
        finally:
            # close() commits the stored offsets and leaves the group at once.
            self._consumer.close()
            self._producer.flush(10)
