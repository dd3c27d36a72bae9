"""Records no consumer can use go to the dead-letter topic, with why and where from."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from confluent_kafka import Message, Producer

from common import metrics
from common.kafka import Headers, headers_of, produce_and_wait
from common.settings import Settings

log = logging.getLogger(__name__)


def text_key(msg: Message) -> str:
    """A record's key as text (task ids are text; anything else is shown, not trusted)."""
    key = msg.key()
    return key.decode(errors="replace") if key else ""


@dataclass(frozen=True)
class DeadLetter:
    """What goes to the dead-letter topic: the original key and bytes, and why, from where."""

    key: str
    value: bytes
    headers: Headers


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


def dead_letter(msg: Message, error: str, component: str) -> DeadLetter:
    """The dead letter for a record; counted and logged here, produced by the caller."""
    metrics.DEAD_LETTERS.labels(component).inc()
    log.warning(
        "dead-lettering record: %s",
        error,
        extra={"topic": msg.topic(), "partition": msg.partition(), "offset": msg.offset(), "component": component},
    )
    return DeadLetter(text_key(msg), msg.value() or b"", dead_letter_headers(msg, error, component))


def send_to_dead_letter(producer: Producer, settings: Settings, msg: Message, error: str, component: str) -> None:
    """Produce the record to the dead-letter topic and wait for the ack."""
    letter = dead_letter(msg, error, component)
    produce_and_wait(
        producer,
        settings.dead_letter_topic,
        letter.key,
        letter.value,
        settings.produce_timeout_seconds,
        headers=letter.headers,
    )
