"""Reprocess requests from a time or an offset with a dedicated one-shot worker.

The live worker group is left alone: the replay reads the requests topic from
the chosen position up to the end it had when the replay began, through its
own consumer group, and writes new outcomes that supersede the old ones.
"""

from __future__ import annotations

import logging
import threading
import uuid
from datetime import datetime

from confluent_kafka import TopicPartition

from common.kafka import high_watermarks, make_consumer
from common.settings import Settings
from resize_worker.worker import ResizeWorker

log = logging.getLogger(__name__)


def start_offsets(settings: Settings, since: datetime | None = None, offset: int | None = None) -> dict[int, int]:
    """Per partition of the requests topic, the first offset to reprocess."""
    consumer = make_consumer(settings, f"imgresize-replay-plan-{uuid.uuid4()}", "imgresize-ops")
    topic = settings.requests_topic
    try:
        ends = high_watermarks(consumer, topic, timeout=10)
        if since is None:
            return {p: min(offset or 0, end) for p, end in ends.items()}
        millis = int(since.timestamp() * 1000)
        found = consumer.offsets_for_times([TopicPartition(topic, p, millis) for p in ends], timeout=10)
        # -1: no record at or after that time in this partition, so nothing to replay there.
        return {tp.partition: (tp.offset if tp.offset >= 0 else ends[tp.partition]) for tp in found}
    finally:
        consumer.close()


def replay(
    settings: Settings,
    since: datetime | None = None,
    offset: int | None = None,
    stop: threading.Event | None = None,
) -> int:
    """Run the requests from `since` (or `offset`) through the resize engine again. Returns how many."""
    starts = start_offsets(settings, since, offset)
    group = f"{settings.worker_group}-replay-{uuid.uuid4().hex[:8]}"
    worker = ResizeWorker(settings.model_copy(update={"worker_group": group}), name="resize_replay")
    return worker.run_range(starts, stop or threading.Event())
