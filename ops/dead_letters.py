"""Read the dead-letter topic and send chosen records back where they came from."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from confluent_kafka import Consumer, TopicPartition

from common.dead_letter import text_key
from common.kafka import (
    Headers,
    coordinates,
    headers_of,
    high_watermarks,
    make_consumer,
    make_producer,
    produce_and_wait,
)
from common.lanes import Lane
from common.settings import Settings
from resize_worker.retry import ATTEMPT_HEADER, NOT_BEFORE_HEADER


@dataclass(frozen=True)
class DeadLetter:
    partition: int
    offset: int
    key: str
    value: bytes
    headers: Headers

    def header(self, name: str) -> str:
        for key, value in self.headers:
            if key == name and value is not None:
                return value.decode(errors="replace") if isinstance(value, bytes) else value
        return ""

    @property
    def error(self) -> str:
        return self.header("dlq.error")

    @property
    def source(self) -> str:
        topic, partition = self.header("dlq.source.topic"), self.header("dlq.source.partition")
        return f"{topic}[{partition}]@{self.header('dlq.source.offset')}"

    @property
    def id(self) -> str:
        """partition:offset in the dead-letter topic, how operators name a record."""
        return f"{self.partition}:{self.offset}"


def read_dead_letters(settings: Settings) -> list[DeadLetter]:
    """Every record now in the dead-letter topic, oldest first per partition."""
    consumer: Consumer = make_consumer(
        settings, "imgresize-dlq-reader", "imgresize-ops", **{"enable.auto.commit": False}
    )
    topic = settings.dead_letter_topic
    try:
        ends = high_watermarks(consumer, topic, timeout=10)
        wanted = {p: end for p, end in ends.items() if end > 0}
        letters: list[DeadLetter] = []
        if not wanted:
            return letters
        consumer.assign([TopicPartition(topic, p, 0) for p in wanted])
        done: set[int] = set()
        while len(done) < len(wanted):
            msg = consumer.poll(5.0)
            if msg is None:
                break
            if msg.error():
                continue
            _, partition, offset = coordinates(msg)
            letters.append(DeadLetter(partition, offset, text_key(msg), msg.value() or b"", headers_of(msg)))
            if offset + 1 >= wanted[partition]:
                done.add(partition)
        return sorted(letters, key=lambda letter: (letter.partition, letter.offset))
    finally:
        consumer.close()


def republish(settings: Settings, letters: Iterable[DeadLetter], lane: Lane | None = None) -> int:
    """Produce each record again as a fresh request (attempts start over) in `lane` (by default REPLAY_LANE's,
    the last lane). Returns how many."""
    requests_topic = (lane or settings.replay_target).requests_topic
    producer = make_producer(settings, "imgresize-ops")
    count = 0
    for letter in letters:
        source = letter.header("dlq.source.topic")
        # Exhausted retries came from the retry topic; both go back as new requests.
        target = settings.results_topic if source == settings.results_topic else requests_topic
        headers = [
            (k, v)
            for k, v in letter.headers
            if not k.startswith("dlq.") and k not in {ATTEMPT_HEADER, NOT_BEFORE_HEADER}
        ]
        headers.append(("imgresize.republished-from", f"{settings.dead_letter_topic}:{letter.id}".encode()))
        produce_and_wait(producer, target, letter.key, letter.value, settings.produce_timeout_seconds, headers)
        count += 1
    return count
