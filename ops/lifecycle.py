"""`imgresize lifecycle status|run`: what the TTLs promise, what the store and the topics keep, a sweep now."""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka.admin import ConfigResource

from common.kafka import make_admin
from common.settings import Settings
from common.store import ObjectStore
from store_janitor.sweep import SweepReport, count_expired, sweep


@dataclass(frozen=True)
class TopicKeep:
    topic: str
    retention_ms: int | None  # as the broker has it; None: not found
    enough: bool


@dataclass(frozen=True)
class LifecycleStatus:
    ttls: dict[str, int | None]  # seconds; None: for ever
    promised_ms: int | None
    store_rules: list[tuple[str, int]] | None  # None: the store has no lifecycle
    listed: int
    expired: int
    expired_bytes: int
    topics: list[TopicKeep]


def _seconds(ttl: object) -> int | None:
    return int(ttl.total_seconds()) if ttl is not None else None  # type: ignore[attr-defined]


def topic_retention(settings: Settings) -> list[TopicKeep]:
    """Each requests topic's and the results topic's retention.ms as the broker has it, against the promise."""
    topics = [*(lane.requests_topic for lane in settings.lane_plan), settings.results_topic]
    admin = make_admin(settings)
    futures = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, t) for t in topics])
    promised = settings.retention.promised_ms
    kept = []
    for resource, future in futures.items():
        try:
            entry = future.result(timeout=10).get("retention.ms")
            retention = int(entry.value) if entry is not None else None
        except Exception:  # noqa: BLE001 - a missing topic is shown as such
            retention = None
        enough = retention == -1 or (retention is not None and promised is not None and retention >= promised)
        kept.append(TopicKeep(resource.name, retention, enough))
    return sorted(kept, key=lambda k: topics.index(k.topic))


def lifecycle_status(settings: Settings) -> LifecycleStatus:
    retention = settings.retention
    store = ObjectStore(settings)
    listed, expired, size = count_expired(store, retention)
    return LifecycleStatus(
        ttls={
            "RESULT_TTL_SECONDS": _seconds(retention.result),
            "ORIGINAL_TTL_SECONDS": _seconds(retention.original),
            "STATUS_TTL_SECONDS": _seconds(retention.status),
        },
        promised_ms=retention.promised_ms,
        store_rules=store.expiry_rules(),
        listed=listed,
        expired=expired,
        expired_bytes=size,
        topics=topic_retention(settings),
    )


def run_sweep(settings: Settings) -> SweepReport:
    """One sweep now, at the janitor's pace. Safe beside a running janitor: deletes are idempotent."""
    return sweep(ObjectStore(settings), settings.retention, settings.lifecycle_delete_rate, settings.lifecycle_batch)
