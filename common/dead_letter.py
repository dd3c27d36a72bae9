"""Records no consumer can use go to the dead-letter topic, with why and where from."""

from __future__ import annotations

import logging

from confluent_kafka import Message, Producer

from common import metrics
from common.kafka import Headers, headers_of, produce_and_wait
from common.settings import Settings

log = logging.getLogger(__name__)


def dead_letter_headers(msg: Message, error: str, component: str) -> Headers:
    """The original headers, plus the error and the record's source coordinates."""
    headers = headers_of(msg)
    headers += [
        ("dlq.error", error.encode()[:1000]),
        ("dlq.source.topic", str(msg.topic()).encode()),
        ("dlq.source.partition", str(msg.partition()).encode()),
        ("dlq.source.offset", str(msg.offset()).encode()),
        ("dlq.component", component.encode()),
    ]
    return headers


def send_to_dead_letter(producer: Producer, settings: Settings, msg: Message, error: str, component: str) -> None:
    """Produce the original key and bytes to the dead-letter topic and wait for the ack."""
    metrics.DEAD_LETTERS.labels(component).inc()
    key = msg.key()
    produce_and_wait(
        producer,
        settings.dead_letter_topic,
        key.decode(errors="replace") if key else "",
        msg.value() or b"",
        settings.produce_timeout_seconds,
        headers=dead_letter_headers(msg, error, component),
    )
    log.warning(
        "dead-lettered undecodable record",
        extra={"topic": msg.topic(), "partition": msg.partition(), "offset": msg.offset(), "error": error},
    )
