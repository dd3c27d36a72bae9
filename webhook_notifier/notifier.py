"""The notifier: a consumer group on the results topic that POSTs each final outcome to its callback_url.

Webhooks settle independently: attempts run on a small thread pool, failed
ones wait in a schedule for their backoff without holding a thread, and the
consumer keeps reading meanwhile, so one slow or dead receiver does not delay
anyone else's webhooks. A partition's offset is stored only up to its first
unsettled webhook (at least once: receivers dedupe on X-Imgresize-Event-Id).
A webhook never accepted goes to the dead-letter topic, from where `imgresize
dlq republish` sends it round again.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from confluent_kafka import KafkaException, Message, TopicPartition

from common import metrics
from common.dead_letter import send_to_dead_letter
from common.encoding import EventCodec
from common.kafka import coordinates, make_consumer, make_producer, next_batch
from common.settings import Settings
from schemas import SerializationError
from schemas.events import ResizeCompleted, ResizeFailed
from vocabulary.callback_policy import CallbackPolicy
from vocabulary.webhook_secrets import WebhookSecrets
from webhook_notifier.payload import encode, payload_of, wants_webhook
from webhook_notifier.progress import OffsetTracker
from webhook_notifier.sender import DELIVERED, FAILED, GAVE_UP, Attempt, RetryPolicy, Sender

log = logging.getLogger(__name__)
COMPONENT = "webhook_notifier"
# How soon a webhook whose host is at its concurrency cap is looked at again.
_HOST_BUSY_DELAY = 0.05


@dataclass(eq=False)
class Delivery:
    """One webhook on its way, and the record it came from."""

    msg: Message
    url: str
    event_id: str
    task_id: str
    body: bytes
    secrets: tuple[str, ...]
    attempts: int = 0

    @property
    def host(self) -> str:
        """The receiver: host and port, as one service listens there."""
        try:
            parts = urlsplit(self.url)
            return f"{(parts.hostname or '').lower()}:{parts.port or parts.scheme}"
        except ValueError:
            return self.url  # refused by the policy on its attempt; its own share meanwhile

    @property
    def coordinates(self) -> tuple[tuple[str, int], int]:
        topic, partition, offset = coordinates(self.msg)
        return (topic, partition), offset


@dataclass
class _Schedule:
    """Deliveries by the time their next attempt is due."""

    heap: list[tuple[float, int, Delivery]] = field(default_factory=list)
    order: itertools.count[int] = field(default_factory=itertools.count)

    def add(self, due: float, delivery: Delivery) -> None:
        heapq.heappush(self.heap, (due, next(self.order), delivery))

    def pop_due(self, now: float) -> Delivery | None:
        if self.heap and self.heap[0][0] <= now:
            return heapq.heappop(self.heap)[2]
        return None

    def next_due(self) -> float | None:
        return self.heap[0][0] if self.heap else None


class WebhookNotifier:
    def __init__(self, settings: Settings, codec: EventCodec | None = None) -> None:
        self.settings = settings
        self.codec = codec or EventCodec(settings)
        self.retry = RetryPolicy(
            settings.webhook_max_attempts, settings.webhook_backoff_seconds, settings.webhook_backoff_max_seconds
        )
        self.secrets = WebhookSecrets.from_settings(settings)
        self.sender = Sender(
            CallbackPolicy.from_settings(settings),
            settings.webhook_timeout_seconds,
            user_agent="imgresize-webhooks",
            concurrency=max(1, settings.webhook_concurrency),
        )
        gather: dict[str, object] = {}
        if settings.webhook_fetch_wait_ms:
            # A fetch waits for a megabyte or the interval, whichever comes first: the interval, in practice.
            gather = {"fetch.min.bytes": 1 << 20, "fetch.wait.max.ms": settings.webhook_fetch_wait_ms}
        self._consumer = make_consumer(settings, settings.webhook_group, COMPONENT, **gather)
        self._producer = make_producer(settings, COMPONENT)
        self._concurrency = max(1, settings.webhook_concurrency)
        self._pool = ThreadPoolExecutor(self._concurrency, thread_name_prefix="webhook")
        self._tracker = OffsetTracker()
        self._schedule = _Schedule()
        self._running: dict[Future[Attempt], Delivery] = {}
        self._per_host: Counter[str] = Counter()
        self._host_concurrency = max(1, min(self._concurrency, settings.webhook_host_concurrency))
        self._paused = False

    # -- reading ------------------------------------------------------------

    def _admit(self, msg: Message) -> None:
        topic, partition, offset = coordinates(msg)
        tp = (topic, partition)
        try:
            event = self.codec.decode(msg.value(), msg.topic() or "")
        except SerializationError as e:
            # The projector and the dead-letter tooling see the same bytes; nothing to announce.
            log.warning("undecodable result record skipped: %s", e)
            self._tracker.seen(tp, offset, settled=True)
            return
        if not wants_webhook(event):
            self._tracker.seen(tp, offset, settled=True)
            return
        assert isinstance(event, ResizeCompleted | ResizeFailed) and event.callback_url
        body = encode(payload_of(event, self.settings.public_base_url))
        self._tracker.seen(tp, offset, settled=False)
        secrets = self.secrets.for_owner(event.owner)
        self._schedule.add(
            time.monotonic(), Delivery(msg, event.callback_url, event.event_id, event.task_id, body, secrets)
        )

    def _revoked(self, _consumer: object, partitions: list[TopicPartition]) -> None:
        self._store_offsets()
        self._tracker.forget([(p.topic, p.partition) for p in partitions])

    # -- delivering ---------------------------------------------------------

    def _start_due(self) -> None:
        now = time.monotonic()
        while len(self._running) < self._concurrency:
            delivery = self._schedule.pop_due(now)
            if delivery is None:
                return
            if not self._tracker.is_tracked(*delivery.coordinates):
                continue  # its partition went to another notifier, which redoes it
            if self._per_host[delivery.host] >= self._host_concurrency:
                # A slow receiver holds its own share of the threads, not everyone's: wait, uncounted.
                self._schedule.add(now + _HOST_BUSY_DELAY, delivery)
                continue
            future = self._pool.submit(
                self.sender.attempt, delivery.url, delivery.event_id, delivery.body, delivery.secrets
            )
            self._running[future] = delivery
            self._per_host[delivery.host] += 1

    def _finish(self, delivery: Delivery, attempt: Attempt) -> None:
        if not self._tracker.is_tracked(*delivery.coordinates):
            return
        delivery.attempts += 1
        extra = {"task_id": delivery.task_id, "attempt": delivery.attempts}
        if attempt.outcome == FAILED and delivery.attempts < self.retry.max_attempts:
            delay = self.retry.delay(delivery.attempts)
            log.info("webhook attempt failed: %s; next in %.1fs", attempt.problem, delay, extra=extra)
            self._schedule.add(time.monotonic() + delay, delivery)
            return
        outcome = GAVE_UP if attempt.outcome == FAILED else attempt.outcome
        metrics.WEBHOOK_DELIVERIES.labels(outcome).inc()
        if outcome == DELIVERED:
            log.info("webhook delivered", extra=extra)
        else:
            log.warning("webhook %s: %s", outcome, attempt.problem, extra=extra)
        if outcome == GAVE_UP:
            send_to_dead_letter(self._producer, self.settings, delivery.msg, "webhook undeliverable", COMPONENT)
        self._tracker.settle(*delivery.coordinates)

    def _collect(self, timeout: float) -> None:
        if not self._running:
            return
        done, _ = wait(list(self._running), timeout=timeout, return_when=FIRST_COMPLETED)
        for future in done:
            delivery = self._running.pop(future)
            self._per_host[delivery.host] -= 1
            if not self._per_host[delivery.host]:
                del self._per_host[delivery.host]
            self._finish(delivery, future.result())

    def _store_offsets(self) -> None:
        for (topic, partition), offset in self._tracker.committable().items():
            try:
                self._consumer.store_offsets(offsets=[TopicPartition(topic, partition, offset)])
            except KafkaException as e:
                log.warning("offset %s[%d]@%d not stored: %s", topic, partition, offset, e)

    def _flow_control(self) -> None:
        """Stop reading while too many webhooks are unsettled; the group still sees us polling."""
        full = self._tracker.unsettled >= self.settings.webhook_max_pending
        if full != self._paused:
            assignment = self._consumer.assignment()
            (self._consumer.pause if full else self._consumer.resume)(assignment)
            self._paused = full

    def _wait_budget(self) -> float:
        """How long the next poll may block: short while attempts run or retries come due."""
        budget = 0.5
        due = self._schedule.next_due()
        if due is not None:
            budget = min(budget, max(0.0, due - time.monotonic()))
        return 0.02 if self._running else budget

    # -- the loop -----------------------------------------------------------

    def step(self) -> None:
        self._start_due()
        self._collect(timeout=0)
        self._store_offsets()
        self._flow_control()
        for msg in next_batch(self._consumer, 100, self._wait_budget()):
            if msg.error() is None:
                self._admit(msg)
        self._start_due()
        self._collect(timeout=0.01)

    def run(self, stop: threading.Event) -> None:
        self._consumer.subscribe([self.settings.results_topic], on_revoke=self._revoked)
        log.info("webhook notifier consuming %s", self.settings.results_topic)
        try:
            while not stop.is_set():
                self.step()
        finally:
            # Attempts under way finish; anything unsettled is redone after a restart.
            self._pool.shutdown(wait=True, cancel_futures=True)
            self.sender.pools.close()
            self._store_offsets()
            self._consumer.close()
            self.codec.close()
            self._producer.flush(5)
