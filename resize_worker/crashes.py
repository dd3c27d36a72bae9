"""Attempts that took their worker down with them, counted in the consumer group's own offsets.

The resize runs in a child process, so a crafted image kills only the child.
Anything that still kills the worker process itself (a native crash outside the
child, an operator's kill -9 at the wrong time, a bug) redelivers the request to
the next worker, which could die the same way: a poison pill walking the group.

Before an attempt starts, the worker stores the record's own offset (not the
next one) with a note in the offset's metadata: "this record has been started k
times". A record handled to the end moves the offset past it, so the note only
survives a worker that died mid-attempt. Whoever is given the partition next
reads the note for the record it is about to start: after `limit` such deaths
the request is dead-lettered instead of tried again. The note lives with the
group's offsets in Kafka, so it follows the partition to any worker on any host.

When the note reaches Kafka: every note is committed at once, asynchronously
(the attempt takes far longer than the commit's trip). The auto-commit cannot
carry it: librdkafka leaves out a stored offset equal to the committed one,
whatever its metadata, and a record's own offset is exactly what is committed
once the record before it was done and auto-committed, as it is after any idle
second. The note is stored too, so that an auto-commit sent before the note's
own commit lands writes the note, not a bare offset.

A worker whose Kafka client fails for good starts fresh clients in the same
process (worker.starts_over), and the group hands it the record in hand again,
note and all. Those starts did not take the process down: the ledger keeps the
starts its own process made (`OwnStarts`, which outlives the clients) and
counts only the others as deaths. Before, two client failures during broker
failovers dead-lettered a healthy request as `worker_crashed`.
"""

from __future__ import annotations

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

from common.kafka import coordinates

_PREFIX = "imgresize-started:"

# Per record (topic, partition, offset): how many of its starts this process made and has not settled.
# An entry stays if its partition is taken away before the record is settled: one per rebalance at most.
OwnStarts = dict[tuple[str, int, int], int]


def note(starts: int, task_id: str) -> str:
    return f"{_PREFIX}{starts}:{task_id}"


def starts_in(metadata: str | None, task_id: str) -> int:
    """How many starts a committed note records for this task (0 for another task's note, or none)."""
    if not metadata or not metadata.startswith(_PREFIX):
        return 0
    count, _, noted_task = metadata.removeprefix(_PREFIX).partition(":")
    if noted_task != task_id or not count.isdigit():
        return 0
    return int(count)


def crashes(noted: int, own: int) -> int:
    """Starts that took their worker down: the noted ones, less those this living process made."""
    return max(0, noted - own)


class CrashLedger:
    """Per record: how many earlier attempts died with their worker; marks this attempt as started."""

    def __init__(self, consumer: Consumer, limit: int, own: OwnStarts | None = None) -> None:
        self._consumer = consumer
        self.limit = limit
        self._own: OwnStarts = {} if own is None else own
        # Partitions this worker has been handling since they were assigned: their next record
        # is new to the group, so there is no note to read for it.
        self._continuing: set[tuple[str, int]] = set()

    def forget(self, partitions: list[TopicPartition]) -> None:
        """On assignment or revocation: the next record of these partitions may be a redelivery."""
        for tp in partitions:
            self._continuing.discard((tp.topic, tp.partition))

    def start(self, msg: Message, task_id: str) -> int:
        """Earlier starts of this record that never finished; this one is noted before it begins."""
        if self.limit <= 0:
            return 0
        topic, partition, offset = coordinates(msg)
        # A round trip to the group coordinator, only for a partition's first record.
        first = (topic, partition) not in self._continuing
        noted = self._earlier_starts(topic, partition, offset, task_id) if first else 0
        self._continuing.add((topic, partition))
        mine = self._own.get((topic, partition, offset), 0)
        self._own[(topic, partition, offset)] = mine + 1
        marked = [TopicPartition(topic, partition, offset, metadata=note(noted + 1, task_id))]
        self._consumer.store_offsets(offsets=marked)
        # Asynchronous: a note lost on the way only means one more attempt before the dead letter.
        self._consumer.commit(offsets=marked, asynchronous=True)
        return crashes(noted, mine)

    def settled(self, msg: Message) -> None:
        """The record's outcome and offset are settled: its starts need no more remembering."""
        self._own.pop(coordinates(msg), None)

    def _earlier_starts(self, topic: str, partition: int, offset: int, task_id: str) -> int:
        try:
            committed = self._consumer.committed([TopicPartition(topic, partition)], timeout=5)[0]
        except KafkaException:
            return 0  # unknown: the attempt goes ahead, as it would have without a ledger
        if committed.offset != offset:
            return 0
        return starts_in(committed.metadata, task_id)
