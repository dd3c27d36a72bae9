"""What each lane holds: per topic, the log end, what its worker group has committed, and the lag."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from confluent_kafka import TopicPartition

from common.kafka import high_watermarks, make_consumer
from common.lanes import Lane
from common.settings import Settings


@dataclass(frozen=True)
class TopicBacklog:
    lane: Lane
    topic: str
    log_end: int
    committed: int

    @property
    def lag(self) -> int:
        return max(0, self.log_end - self.committed)


def lane_backlogs(settings: Settings) -> list[TopicBacklog]:
    """Every lane's requests and retry topics, summed over partitions, as its group stands now."""
    backlogs = []
    for lane in settings.lane_plan:
        # The group's committed offsets are read through a consumer in that group that never joins it.
        reader = make_consumer(settings, lane.group, f"imgresize-ops-{uuid.uuid4().hex[:6]}")
        try:
            for topic in (lane.requests_topic, lane.retry_topic):
                ends = high_watermarks(reader, topic, timeout=10)
                committed = reader.committed([TopicPartition(topic, p) for p in ends], timeout=10)
                done = sum(max(0, tp.offset) for tp in committed)
                backlogs.append(TopicBacklog(lane, topic, sum(ends.values()), done))
        finally:
            reader.close()
    return backlogs
