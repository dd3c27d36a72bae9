"""The real broker does what the pipeline relies on: groups, rebalance, commits, offset replay."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from local_infra.stack import Infrastructure
from tests.conftest import unique

pytestmark = pytest.mark.integration

PARTITIONS = 6


def _consumer(bootstrap: str, group: str) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
        }
    )


def _create_topic(admin: AdminClient, topic: str) -> None:
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result(timeout=30)


def _produce(bootstrap: str, topic: str, count: int, start: int = 0) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for i in range(start, start + count):
        producer.produce(topic, key=f"k{i}".encode(), value=str(i).encode(), partition=i % PARTITIONS)
    assert producer.flush(30) == 0


def _drain(consumers: list[Consumer], want: int, timeout: float = 30.0) -> dict[int, list[int]]:
    """Poll all consumers in turn until `want` records arrived; values by consumer index."""
    seen: dict[int, list[int]] = {i: [] for i in range(len(consumers))}
    deadline = time.monotonic() + timeout
    while sum(len(v) for v in seen.values()) < want and time.monotonic() < deadline:
        for i, consumer in enumerate(consumers):
            msg = consumer.poll(0.1)
            if msg is not None and not msg.error():
                seen[i].append(int(msg.value()))
    return seen


def _assigned(consumer: Consumer) -> set[int]:
    return {tp.partition for tp in consumer.assignment()}


def _wait_assignment(consumers: list[Consumer], total: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for c in consumers:
            c.poll(0.1)
        if sum(len(_assigned(c)) for c in consumers) == total and all(_assigned(c) for c in consumers):
            return
    raise AssertionError([_assigned(c) for c in consumers])


def test_group_splits_rebalances_resumes_and_replays(infrastructure: Infrastructure) -> None:
    bootstrap = infrastructure.kafka_bootstrap_servers
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topic, group = unique("topic"), unique("group")
    _create_topic(admin, topic)
    assert len(admin.list_topics(topic, timeout=10).topics[topic].partitions) == PARTITIONS

    first, second = _consumer(bootstrap, group), _consumer(bootstrap, group)
    first.subscribe([topic])
    second.subscribe([topic])
    _wait_assignment([first, second], PARTITIONS)
    # Two members of one group split the six partitions with no overlap.
    assert _assigned(first).isdisjoint(_assigned(second))
    assert _assigned(first) | _assigned(second) == set(range(PARTITIONS))

    _produce(bootstrap, topic, 60)
    seen = _drain([first, second], 60)
    assert sorted(seen[0] + seen[1]) == list(range(60))
    assert seen[0] and seen[1], "both members received records"
    first.commit(asynchronous=False)
    second.commit(asynchronous=False)

    # Closing one member hands all its partitions to the other.
    first.close()
    _wait_assignment([second], PARTITIONS)
    assert _assigned(second) == set(range(PARTITIONS))

    # Committed offsets resume exactly: only the new records arrive, each once.
    _produce(bootstrap, topic, 12, start=60)
    resumed = _drain([second], 12)[0]
    time.sleep(1.0)
    extra = _drain([second], 1, timeout=1.0)[0]
    assert sorted(resumed + extra) == list(range(60, 72))
    second.commit(asynchronous=False)
    second.close()

    # alter_consumer_group_offsets rewinds the (now empty) group: everything replays.
    rewind = [TopicPartition(topic, p, 0) for p in range(PARTITIONS)]
    futures = admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(group, rewind)])
    for future in futures.values():
        future.result(timeout=30)
    replayer = _consumer(bootstrap, group)
    replayer.subscribe([topic])
    replayed = _drain([replayer], 72)[0]
    replayer.close()
    assert sorted(replayed) == list(range(72))
