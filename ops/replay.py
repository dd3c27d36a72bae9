"""Reprocess requests from a time or an offset: copy them into a lane (bulk by default) for its workers.

The copies go through the same workers, groups, retries and guarantees as any
request of that lane, so a replay of a million requests is scaled, watched and
throttled like any bulk import, and interactive uploads keep their lane while
it drains. A record copied from a lane's topic carries the header
`imgresize.replayed-from` (topic:partition:offset); copies are not copied again
by a later replay, so replaying twice from the same time reprocesses each task
twice, not four times. Each copy keeps its key and bytes: a new outcome
supersedes the old one in the view.

Deleted and expired tasks are not copied: a request whose task has a TaskDeleted
in the results topic, or whose original is past ORIGINAL_TTL_SECONDS, is skipped
(and a worker given one anyway finds its original gone and writes no result).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from confluent_kafka import KafkaError, Message, Producer, TopicPartition

from common.encoding import EventCodec
from common.errors import BrokerUnavailable
from common.kafka import (
    Headers,
    coordinates,
    headers_of,
    high_watermarks,
    make_consumer,
    make_producer,
    records_to_end,
)
from common.lanes import Lane
from common.settings import Settings
from schemas import SerializationError, TaskDeleted
from schemas.codec import MARKER, SCHEMA_DIR, load_schemas, schema_fingerprint

log = logging.getLogger(__name__)

REPLAYED_FROM = "imgresize.replayed-from"


@dataclass
class Skipped:
    deleted: int = 0
    expired: int = 0


@dataclass(frozen=True)
class ReplayPlan:
    """Per requests topic and partition, the offsets [start, end) to copy."""

    target: Lane
    ranges: dict[tuple[str, int], tuple[int, int]]

    @property
    def records(self) -> int:
        return sum(end - start for start, end in self.ranges.values())


def plan_replay(
    settings: Settings,
    sources: Iterable[Lane] | None = None,
    target: Lane | None = None,
    since: datetime | None = None,
    offset: int | None = None,
) -> ReplayPlan:
    """What a replay from `since` (or `offset`, per partition) of the `sources` lanes' requests would copy."""
    consumer = make_consumer(settings, f"imgresize-replay-plan-{uuid.uuid4()}", "imgresize-ops")
    ranges: dict[tuple[str, int], tuple[int, int]] = {}
    try:
        for lane in sources or settings.lane_plan:
            topic = lane.requests_topic
            ends = high_watermarks(consumer, topic, timeout=10)
            if since is None:
                starts = {p: min(offset or 0, end) for p, end in ends.items()}
            else:
                millis = int(since.timestamp() * 1000)
                found = consumer.offsets_for_times([TopicPartition(topic, p, millis) for p in ends], timeout=10)
                # -1: no record at or after that time in this partition, so nothing to replay there.
                starts = {tp.partition: (tp.offset if tp.offset >= 0 else ends[tp.partition]) for tp in found}
            for partition, end in ends.items():
                if starts[partition] < end:
                    ranges[(topic, partition)] = (starts[partition], end)
    finally:
        consumer.close()
    return ReplayPlan(target or settings.replay_target, ranges)


def replay(
    settings: Settings,
    since: datetime | None = None,
    offset: int | None = None,
    stop: threading.Event | None = None,
    sources: Iterable[Lane] | None = None,
    target: Lane | None = None,
) -> int:
    """Copy the requests from `since` (or `offset`) into the target lane, acknowledged. Returns how many."""
    plan = plan_replay(settings, sources, target, since, offset)
    return copy_requests(settings, plan, stop or threading.Event())


def copy_requests(settings: Settings, plan: ReplayPlan, stop: threading.Event) -> int:
    """Copy every planned record that is not itself a replay's copy, nor of a deleted or expired task;
    waits for every acknowledgement."""
    if not plan.ranges:
        return 0
    deleted = deleted_tasks(settings)
    codec = EventCodec(settings)
    skipped = Skipped()
    consumer = make_consumer(settings, f"imgresize-replay-{uuid.uuid4()}", "imgresize-ops")
    producer = make_producer(settings, "imgresize-replay")
    failures: list[KafkaError] = []
    copied = 0

    def on_delivery(err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            failures.append(err)

    remaining = dict(plan.ranges)
    try:
        consumer.assign([TopicPartition(topic, p, start) for (topic, p), (start, _) in remaining.items()])
        while remaining and not stop.is_set() and not failures:
            msg = consumer.poll(1.0)
            if msg is None or msg.error() is not None:
                continue
            topic, partition, position = coordinates(msg)
            span = remaining.get((topic, partition))
            if span is None:
                continue
            if position < span[1] and not _is_copy(msg) and _live(msg, codec, settings, deleted, skipped):
                headers = [*headers_of(msg), (REPLAYED_FROM, f"{topic}:{partition}:{position}".encode())]
                _produce(
                    producer, plan.target.requests_topic, msg.key() or b"", msg.value() or b"", headers, on_delivery
                )
                copied += 1
            if position + 1 >= span[1]:
                del remaining[(topic, partition)]
        producer.flush(settings.produce_timeout_seconds + 5)
    finally:
        consumer.close()
        codec.close()
    if failures or len(producer) > 0:
        raise BrokerUnavailable(f"replay: {len(failures) or len(producer)} copies not acknowledged; replay again")
    log.info(
        "replay copied %d requests into lane %s; skipped %d of deleted and %d of expired tasks",
        copied,
        plan.target.name,
        skipped.deleted,
        skipped.expired,
    )
    return copied


def _live(msg: Message, codec: EventCodec, settings: Settings, deleted: set[str], skipped: Skipped) -> bool:
    """Whether the request's task may be reprocessed: not deleted, its original not past its TTL."""
    if (msg.key() or b"").decode(errors="replace") in deleted:
        skipped.deleted += 1
        return False
    ttl = settings.retention.original
    if ttl is None:
        return True
    try:
        request = codec.decode(msg.value(), msg.topic() or "")
    except SerializationError:
        return True  # the workers dead-letter it, as they would the original record
    if request.occurred_at + ttl <= datetime.now(UTC):
        skipped.expired += 1
        return False
    return True


def deleted_tasks(settings: Settings) -> set[str]:
    """The ids of every task with a TaskDeleted in the results topic, read up to its current end.

    Of single-object records, only those carrying TaskDeleted's fingerprint are decoded; registry-encoded
    ones (first byte 0) all are.
    """
    codec = EventCodec(settings)
    marker = MARKER + schema_fingerprint(load_schemas(SCHEMA_DIR)[TaskDeleted.schema_name])
    found: set[str] = set()
    try:
        for msg in records_to_end(settings, settings.results_topic):
            value = msg.value() or b""
            if value.startswith(marker) or value[:1] == b"\x00":
                try:
                    event = codec.decode(value, settings.results_topic)
                except SerializationError:
                    continue  # the projector dead-letters it
                if isinstance(event, TaskDeleted):
                    found.add(event.task_id)
    finally:
        codec.close()
    return found


def _is_copy(msg: Message) -> bool:
    return any(name == REPLAYED_FROM for name, _ in headers_of(msg))


def _produce(
    producer: Producer,
    topic: str,
    key: bytes,
    value: bytes,
    headers: Headers,
    on_delivery: Callable[[KafkaError | None, Message], None],
) -> None:
    while True:
        try:
            producer.produce(topic, key=key, value=value, headers=headers, on_delivery=on_delivery)
            producer.poll(0)
            return
        except BufferError:
            producer.poll(0.5)
