"""Kafka client construction, topic setup and acknowledged produce, in one place."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka import Consumer as KafkaConsumer
from confluent_kafka.admin import AdminClient, NewTopic

from common.errors import BrokerUnavailable
from common.settings import Settings

log = logging.getLogger(__name__)

Headers = list[tuple[str, str | bytes | None]]


# librdkafka's own messages (connection failures and the like) go through logging,
# so they come out in the process's format (JSON in production) instead of raw on stderr.
# They are handed over when the client is polled.
CLIENT_LOG = logging.getLogger("librdkafka")


def _base(settings: Settings, client_id: str) -> dict[str, Any]:
    return {"bootstrap.servers": settings.kafka_bootstrap_servers, "client.id": client_id, "logger": CLIENT_LOG}


def make_producer(settings: Settings, client_id: str, **overrides: Any) -> Producer:
    """An idempotent producer: acks=all, no duplicates on internal retries.

    murmur2 keys partition exactly as Java producers do, so events of one task
    land on one partition whichever language produced them.
    """
    conf = {
        **_base(settings, client_id),
        "acks": "all",
        "enable.idempotence": True,
        # Every caller waits for its own record's ack: lingering only delays it (2 ms of
        # linger made an acknowledged produce take 4.6 ms instead of 1.0 here). Records
        # queued while a request is in flight still go together.
        "linger.ms": 0,
        "partitioner": "murmur2_random",
        "message.timeout.ms": int(settings.produce_timeout_seconds * 1000),
        **overrides,
    }
    return Producer(conf)


def make_consumer(settings: Settings, group_id: str, client_id: str, **overrides: Any) -> KafkaConsumer:
    conf = {
        **_base(settings, client_id),
        "group.id": group_id,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": True,
        # Offsets are stored by hand, only once a record's effects are acknowledged.
        "enable.auto.offset.store": False,
        "isolation.level": "read_committed",
        # A fetch returns as soon as a record arrives; the wait only bounds empty fetches
        # (half as many as at the default 500 ms). Longer would hold up metadata requests
        # queued behind a fetch on the same connection.
        "fetch.wait.max.ms": 1000,
        **overrides,
    }
    return KafkaConsumer(conf)


def make_admin(settings: Settings) -> AdminClient:
    conf: dict[str, Any] = {"bootstrap.servers": settings.kafka_bootstrap_servers, "logger": CLIENT_LOG}
    return AdminClient(conf)


def contract_topics(settings: Settings) -> list[str]:
    """Every lane's requests and retry topics, the results topic and the dead-letter topic."""
    lanes = [topic for lane in settings.lane_plan for topic in (lane.requests_topic, lane.retry_topic)]
    return [*lanes, settings.results_topic, settings.dead_letter_topic]


def requests_topics(settings: Settings) -> list[str]:
    """The requests topic of every lane, highest priority first."""
    return [lane.requests_topic for lane in settings.lane_plan]


def ensure_topics(settings: Settings, timeout: float = 30.0) -> None:
    """Create the contract's topics if missing; existing ones are left as they are."""
    admin = make_admin(settings)

    def topic(name: str, partitions: int, retention_ms: int) -> NewTopic:
        config = {
            "retention.ms": str(retention_ms),
            "cleanup.policy": "delete",
            "min.insync.replicas": str(settings.topic_min_insync_replicas),
        }
        return NewTopic(name, partitions, settings.topic_replication_factor, config=config)

    wanted = [
        topic(name, lane.partitions, lane.retention_ms)
        for lane in settings.lane_plan
        for name in (lane.requests_topic, lane.retry_topic)
    ]
    wanted += [
        topic(name, settings.topic_partitions, settings.topic_retention_ms)
        for name in (settings.results_topic, settings.dead_letter_topic)
    ]
    for name, future in admin.create_topics(wanted, request_timeout=timeout).items():
        try:
            future.result(timeout=timeout)
        except KafkaException as e:
            if e.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise BrokerUnavailable(f"cannot create topic {name}: {e}") from e
    _wait_for_leaders(admin, [t.topic for t in wanted], timeout)


def _wait_for_leaders(admin: AdminClient, topics: list[str], timeout: float) -> None:
    """A new topic is usable once every partition has a leader."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        metadata = admin.list_topics(timeout=timeout)
        if all(
            topic in metadata.topics
            and metadata.topics[topic].error is None
            and metadata.topics[topic].partitions
            and all(p.leader >= 0 for p in metadata.topics[topic].partitions.values())
            for topic in topics
        ):
            return
        time.sleep(0.1)
    raise BrokerUnavailable(f"topics {topics} have no leaders after {timeout:.0f}s")


def produce_and_wait(
    producer: Producer,
    topic: str,
    key: str,
    value: bytes,
    timeout: float,
    headers: Headers | None = None,
) -> Message:
    """Produce one record and return only once the broker acknowledged it.

    Safe from many threads: each caller waits on its own delivery report while
    any of them serves the producer's callbacks.
    """
    done = threading.Event()
    outcome: dict[str, Any] = {}

    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        outcome["err"], outcome["msg"] = err, msg
        done.set()

    try:
        producer.produce(topic, key=key.encode(), value=value, headers=headers, on_delivery=on_delivery)
    except BufferError:
        producer.poll(0.5)
        producer.produce(topic, key=key.encode(), value=value, headers=headers, on_delivery=on_delivery)
    except KafkaException as e:
        raise BrokerUnavailable(f"produce to {topic} refused: {e}") from e
    # The delivery report always arrives within message.timeout.ms; the margin
    # only guards against a producer that is no longer polled.
    deadline = time.monotonic() + timeout + 5.0
    while not done.is_set():
        if time.monotonic() > deadline:
            raise BrokerUnavailable(f"no delivery report from {topic} in {timeout:.0f}s")
        producer.poll(0.05)
    if outcome["err"] is not None:
        raise BrokerUnavailable(f"{topic} did not acknowledge: {outcome['err']}")
    return outcome["msg"]  # type: ignore[no-any-return]


def high_watermarks(consumer: KafkaConsumer, topic: str, timeout: float = 5.0) -> dict[int, int]:
    """The log-end offset of every partition of a topic.

    Retried within `timeout`: right after a topic is created, or while a
    leader moves, the broker briefly answers "not leader".
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            metadata = consumer.list_topics(topic, timeout=timeout)
            marks = {}
            for partition in metadata.topics[topic].partitions:
                tp = TopicPartition(topic, partition)
                marks[partition] = consumer.get_watermark_offsets(tp, timeout=timeout, cached=False)[1]
            return marks
        except KafkaException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def check_topics(settings: Settings, timeout: float = 30.0) -> None:
    """At a role's start: the contract's topics exist (created by `imgresize topics`)."""
    metadata = make_admin(settings).list_topics(timeout=timeout)
    missing = [t for t in contract_topics(settings) if t not in metadata.topics]
    if missing:
        raise BrokerUnavailable(f"missing topics {missing}: run `imgresize topics` first")


def records_to_end(settings: Settings, topic: str, patience: float | None = None) -> Iterator[Message]:
    """Every record now in `topic`, from its start to its log end as of this call; `patience`: give up after
    that many seconds (None: read it all).

    The end is judged by the consumer's positions, not by the offsets seen: transaction markers (the
    results topic in exactly-once mode) take offsets but are never delivered.
    """
    consumer = make_consumer(settings, f"imgresize-reader-{uuid.uuid4()}", "imgresize-reader")
    try:
        ends = {p: end for p, end in high_watermarks(consumer, topic, timeout=10).items() if end > 0}
        consumer.assign([TopicPartition(topic, p, 0) for p in ends])
        deadline = None if patience is None else time.monotonic() + patience
        read = 0
        while ends and (deadline is None or time.monotonic() < deadline):
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                yield msg
                read += 1
                _, partition, offset = coordinates(msg)
                if offset + 1 < ends.get(partition, 0) and read % 1000:
                    continue  # positions are asked at a partition's end, and every 1,000 records
            for tp in consumer.position([TopicPartition(topic, p) for p in ends]):
                if tp.offset >= ends[tp.partition]:
                    del ends[tp.partition]
    finally:
        consumer.close()


def is_record(msg: Message, reader: str) -> bool:
    """Whether a polled message is a record; a consume error is logged (the end of a partition quietly)."""
    error = msg.error()
    if error is None:
        return True
    if error.code() != KafkaError._PARTITION_EOF:
        log.warning("consume error in %s: %s", reader, error)
    return False


def next_batch(consumer: KafkaConsumer, size: int, wait: float) -> list[Message]:
    """What is there now, up to `size`; else wait up to `wait` for the first record and take what came with it.

    consume(n, timeout) waits the whole timeout for a batch that is not full,
    which would add that much latency to every record.
    """
    batch = consumer.consume(size, timeout=0)
    if batch:
        return batch
    first = consumer.poll(wait)
    if first is None:
        return []
    return [first, *consumer.consume(size - 1, timeout=0)]


def coordinates(msg: Message) -> tuple[str, int, int]:
    """(topic, partition, offset) of a consumed record."""
    return str(msg.topic()), int(msg.partition() or 0), int(msg.offset() or 0)


def logged_at(msg: Message) -> datetime:
    """When the record entered the log, by its timestamp (now, for a record without one)."""
    kind, millis = msg.timestamp()
    if kind == TIMESTAMP_NOT_AVAILABLE or millis < 0:
        return datetime.now(UTC)
    return datetime.fromtimestamp(millis / 1000, UTC)


def headers_of(msg: Message) -> Headers:
    raw = msg.headers() or []
    return list(raw.items()) if isinstance(raw, dict) else list(raw)
