"""The notifier: a consumer group on the results topic that POSTs each final outcome to its callback_url.

Batches are delivered concurrently; their offsets are stored only once every
delivery in the batch is settled, so a crash or a stop redelivers (at least
once: receivers dedupe on X-Imgresize-Event-Id). A webhook that cannot be
delivered goes to the dead-letter topic, from where `imgresize dlq
republish` sends it round again.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from confluent_kafka import Message

from common import metrics
from common.dead_letter import send_to_dead_letter
from common.kafka import make_consumer, make_producer
from common.settings import Settings
from schemas import Codec, SerializationError, default_codec, producer_name
from schemas.events import ResizeCompleted, ResizeFailed
from webhook_notifier.payload import encode, payload_of, wants_webhook
from webhook_notifier.policy import CallbackPolicy
from webhook_notifier.sender import DELIVERED, GAVE_UP, INTERRUPTED, RetryPolicy, Sender

log = logging.getLogger(__name__)
COMPONENT = "webhook_notifier"


class WebhookNotifier:
    def __init__(self, settings: Settings, codec: Codec | None = None) -> None:
        self.settings = settings
        self.codec = codec or default_codec()
        self.sender = Sender(
            settings.webhook_secret,
            CallbackPolicy.from_settings(settings.webhook_allow_private, settings.webhook_allowed_hosts),
            RetryPolicy(
                settings.webhook_max_attempts,
                settings.webhook_backoff_seconds,
                settings.webhook_backoff_max_seconds,
                settings.webhook_timeout_seconds,
            ),
            user_agent=f"imgresize-webhooks ({producer_name(COMPONENT)})",
        )
        self._consumer = make_consumer(
            settings,
            settings.webhook_group,
            COMPONENT,
            # A batch may wait out a receiver's retries (minutes at most) before the next poll.
            **{"max.poll.interval.ms": 900_000},
        )
        self._producer = make_producer(settings, COMPONENT)
        self._pool = ThreadPoolExecutor(max(1, settings.webhook_concurrency), thread_name_prefix="webhook")

    def _deliver(self, msg: Message, stop: threading.Event) -> str | None:
        """The delivery's outcome, or None when the record announces nothing."""
        try:
            event = self.codec.decode(msg.value())
        except SerializationError as e:
            # The projector and the dead-letter tooling see the same bytes; nothing to announce.
            log.warning("undecodable result record skipped: %s", e)
            return None
        if not wants_webhook(event):
            return None
        assert isinstance(event, ResizeCompleted | ResizeFailed) and event.callback_url
        body = encode(payload_of(event, self.settings.public_base_url))
        outcome = self.sender.deliver(event.callback_url, event.event_id, event.task_id, body, stop)
        if outcome != INTERRUPTED:
            metrics.WEBHOOK_DELIVERIES.labels(outcome).inc()
        if outcome == GAVE_UP:
            send_to_dead_letter(self._producer, self.settings, msg, "webhook undeliverable", COMPONENT)
        elif outcome == DELIVERED:
            log.info("webhook delivered", extra={"task_id": event.task_id})
        return outcome

    def handle(self, batch: list[Message], stop: threading.Event) -> bool:
        """Deliver a batch; True if every record is settled and its offset may be stored."""
        records = [m for m in batch if m.error() is None]
        outcomes = list(self._pool.map(lambda m: self._deliver(m, stop), records))
        if INTERRUPTED in outcomes:
            return False
        for msg in records:
            self._consumer.store_offsets(message=msg)
        return True

    def run(self, stop: threading.Event) -> None:
        self._consumer.subscribe([self.settings.results_topic])
        log.info("webhook notifier consuming %s", self.settings.results_topic)
        try:
            while not stop.is_set():
                batch = self._consumer.consume(100, 0.5)
                if batch and not self.handle(batch, stop):
                    break
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._consumer.close()
            self._producer.flush(5)
