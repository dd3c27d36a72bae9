"""The janitor loop: a member of one consumer group on the results topic.

- Every TaskDeleted is taken once it is LIFECYCLE_DELETE_RECHECK_SECONDS old and
  the task's objects are erased again (the API erased them at once; this catches
  a result written by a resize that read the original just before the deletion,
  and a deletion whose erasure failed). Its offset is committed only after.
- The member that holds partition 0 of the results topic holds the sweep lease:
  it sweeps the bucket for expired objects every LIFECYCLE_SWEEP_SECONDS (where the
  store has no lifecycle rules of its own). The group gives the partition to one
  member at a time, and to another when that one dies: no lock server.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta

from confluent_kafka import Consumer, Message, TopicPartition

from common import metrics
from common.encoding import EventCodec
from common.erasure import erase_task
from common.errors import ImageServiceError
from common.kafka import coordinates, is_record, make_consumer, next_batch
from common.settings import Settings
from common.store import ObjectStore
from schemas import SerializationError, TaskDeleted
from store_janitor.sweep import sweep

log = logging.getLogger(__name__)

# A partition whose erasure failed (the store away) is tried again after this long.
_RETRY_SECONDS = 5.0


def sweeps_needed(settings: Settings, store: ObjectStore) -> bool:
    """Whether this janitor must sweep: per LIFECYCLE_SWEEP, after offering the store lifecycle rules."""
    if settings.lifecycle_sweep != "auto":
        return settings.lifecycle_sweep == "always"
    retention = settings.retention
    try:
        taken = settings.lifecycle_rules and store.set_expiry_rules(retention.rules())
    except ImageServiceError as e:
        log.warning("lifecycle rules not set (%s); sweeping instead", e)
        taken = False
    if taken and retention.rules_cover_everything:
        log.info("the store expires objects by its own lifecycle rules: %s", retention.rules())
        return False
    log.info("sweeping for expired objects every %.0f s", settings.lifecycle_sweep_seconds)
    return True


class Janitor:
    def __init__(self, settings: Settings, codec: EventCodec | None = None) -> None:
        self.settings = settings
        self.codec = codec or EventCodec(settings)
        self.store = ObjectStore(settings)
        self.recheck = timedelta(seconds=settings.lifecycle_delete_recheck_seconds)
        self._consumer: Consumer = make_consumer(
            settings,
            group_id=settings.lifecycle_group,
            client_id="store-janitor",
            # A janitor that dies hands the lease on within this, not the default 45 s. Offsets are stored
            # as records are done and committed every few seconds: most results are not deletions, and a
            # commit per batch cost the broker a write per event; a record read again after a crash is
            # only rechecked again (erasing is idempotent).
            **{"session.timeout.ms": 10_000, "heartbeat.interval.ms": 2_000},
        )
        # Partitions waiting for a TaskDeleted to come of age (or for the store), and when to resume them.
        self._paused: dict[TopicPartition, float] = {}
        self._lease = threading.Event()
        self._sweep_stop = threading.Event()
        self._sweeper: threading.Thread | None = None
        self.rechecked = 0
        self.sweeps = 0

    # -- the group ----------------------------------------------------------

    def _assigned(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if any(tp.partition == 0 for tp in partitions):
            log.info("holding the sweep lease (results partition 0)")
            self._lease.set()
            metrics.JANITOR_LEASE.set(1)

    def _revoked(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self._paused.pop(TopicPartition(tp.topic, tp.partition), None)
        if any(tp.partition == 0 for tp in partitions):
            log.info("sweep lease given up")
            self._lease.clear()
            self._sweep_stop.set()
            metrics.JANITOR_LEASE.set(0)

    # -- deletions ----------------------------------------------------------

    def _due(self, event: TaskDeleted) -> float:
        """Seconds until the deletion is old enough to recheck (0: now)."""
        return max(0.0, (event.occurred_at + self.recheck - datetime.now(UTC)).total_seconds())

    def _hold(self, msg: Message, seconds: float) -> None:
        """Come back to this record (and its partition) in `seconds`."""
        topic, partition, offset = coordinates(msg)
        tp = TopicPartition(topic, partition)
        self._consumer.seek(TopicPartition(topic, partition, offset))
        self._consumer.pause([tp])
        self._paused[tp] = time.monotonic() + seconds

    def _handle(self, messages: list[Message]) -> None:
        """Recheck the due deletions of a batch, in order per partition; store the offsets of what is done."""
        done: dict[tuple[str, int], int] = {}
        held: set[tuple[str, int]] = set()
        for msg in messages:
            if not is_record(msg, "the janitor"):
                continue
            topic, partition, offset = coordinates(msg)
            if (topic, partition) in held:
                continue  # comes back after the record it waits on
            event = self._deletion(msg)
            if event is not None:
                wait = self._due(event)
                if wait == 0:
                    wait = self._erase(event)
                if wait > 0:
                    held.add((topic, partition))
                    self._hold(msg, wait)
                    continue
            done[(topic, partition)] = offset + 1
        if done:
            self._consumer.store_offsets(offsets=[TopicPartition(t, p, o) for (t, p), o in done.items()])

    def _deletion(self, msg: Message) -> TaskDeleted | None:
        try:
            event = self.codec.decode(msg.value(), msg.topic() or "")
        except SerializationError:
            return None  # the projector dead-letters undecodable results
        return event if isinstance(event, TaskDeleted) else None

    def _erase(self, event: TaskDeleted) -> float:
        """Erase the deleted task's objects; 0 when done, else the seconds before trying again."""
        try:
            erased = erase_task(self.store, self.settings, event.task_id, event.source)
        except ImageServiceError as e:
            log.warning("erasure of a deleted task failed, trying again: %s", e, extra={"task_id": event.task_id})
            return _RETRY_SECONDS
        self.rechecked += 1
        if erased.objects:
            # Left behind by a resize that raced the deletion, or by an erasure that failed.
            log.info("erased %d objects of a deleted task", erased.objects, extra={"task_id": event.task_id})
            metrics.ERASED_OBJECTS.labels("deleted").inc(erased.objects)
            metrics.ERASED_BYTES.labels("deleted").inc(erased.bytes)
        return 0.0

    def _resume_due(self) -> None:
        now = time.monotonic()
        due = [tp for tp, at in self._paused.items() if at <= now]
        if due:
            self._consumer.resume(due)
            for tp in due:
                del self._paused[tp]

    # -- sweeps -------------------------------------------------------------

    def _sweep_once(self) -> None:
        try:
            report = sweep(
                self.store,
                self.settings.retention,
                self.settings.lifecycle_delete_rate,
                self.settings.lifecycle_batch,
                self._sweep_stop,
            )
        except ImageServiceError as e:
            metrics.JANITOR_SWEEPS.labels("failed").inc()
            log.warning("sweep failed: %s", e)
            return
        self.sweeps += 1
        metrics.JANITOR_SWEEPS.labels("stopped" if self._sweep_stop.is_set() else "done").inc()
        log.info(
            "sweep: %d listed, %d expired, %d deleted (%d bytes) in %.1f s",
            report.listed,
            report.expired,
            report.deleted,
            report.bytes,
            report.seconds,
        )

    def _start_sweep(self) -> None:
        """A sweep in a thread of its own, so the group membership (polls) goes on meanwhile."""
        self._sweep_stop.clear()
        self._sweeper = threading.Thread(target=self._sweep_once, name="sweep", daemon=True)
        self._sweeper.start()

    def _sweeping(self) -> bool:
        return self._sweeper is not None and self._sweeper.is_alive()

    # -- the loop -----------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        sweeping = sweeps_needed(self.settings, self.store)
        self._consumer.subscribe([self.settings.results_topic], on_assign=self._assigned, on_revoke=self._revoked)
        sweep_due = 0.0
        try:
            while not stop.is_set():
                self._resume_due()
                if sweeping and self._lease.is_set() and not self._sweeping() and time.monotonic() >= sweep_due:
                    self._start_sweep()
                    sweep_due = time.monotonic() + self.settings.lifecycle_sweep_seconds
                messages = next_batch(self._consumer, 500, wait=0.5)
                if messages:
                    self._handle(messages)
        finally:
            self._sweep_stop.set()
            if self._sweeper is not None:
                self._sweeper.join(timeout=30)

    def close(self) -> None:
        self._consumer.close()
        self.codec.close()
