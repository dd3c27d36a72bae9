"""The I/O behind the routes: store the original, produce the request, read the view."""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
import uuid
from typing import Literal

from confluent_kafka import KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import OffsetSpec

from common.encoding import EventCodec
from common.erasure import Erased, erase_task
from common.errors import BrokerUnavailable, ImageServiceError, ObjectExists, ObjectNotFound
from common.kafka import make_admin, make_producer, produce_and_wait, requests_topics
from common.lanes import Lane
from common.settings import Settings
from common.store import ObjectStore
from producer_api.errors import ApiError, IdempotencyConflict
from producer_api.validation import NamedOrder, ResizeOrder
from producer_api.views import ViewConnections
from read_model.errors import ViewError
from read_model.fold import TaskRow
from read_model.view import StatusView
from schemas import ObjectRef, ResizeRequested, TaskDeleted, VariantSpec, producer_name
from vocabulary.probe import ImageInfo

log = logging.getLogger(__name__)


_IDEMPOTENCY_NAMESPACE = uuid.UUID("5b6f0c1e-7a42-4c0b-9d1e-0f6f3a1d2c77")


def idempotent_task_id(secret: str, client: str, key: str) -> str:
    """The task id of (client, Idempotency-Key): the same on every API replica, unguessable without the secret.

    HMAC-SHA256 under IDEMPOTENCY_SECRET, as a version-4-shaped UUID. Without a
    secret (local use) it is a uuid5 anyone can compute from the key's name.
    """
    material = f"{client}\n{key}"
    if not secret:
        return str(uuid.uuid5(_IDEMPOTENCY_NAMESPACE, material))
    digest = hmac.new(secret.encode(), material.encode(), hashlib.sha256).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


_FINGERPRINT = "request-sha256"
# A full backlog drains at the lane's pace; asking again within seconds would only be refused again.
BACKLOG_RETRY_AFTER_SECONDS = 30


def body_fingerprint(order: ResizeOrder, data: bytes) -> str:
    """What makes two requests the same request: the options and the image bytes."""
    digest = hashlib.sha256(repr(order).encode())
    digest.update(data)
    return digest.hexdigest()


def original_key(task_id: str) -> str:
    """Where an uploaded original lives: a function of the task id alone."""
    return f"originals/{task_id}"


def _variant_spec(variant: NamedOrder) -> VariantSpec:
    return VariantSpec(name=variant.name, **variant.options.fields())


class Ingress:
    """Long-lived clients of one API process, shared by its request threads."""

    def __init__(self, settings: Settings, codec: EventCodec | None = None) -> None:
        self.settings = settings
        self.codec = codec or EventCodec(settings)
        self.store = ObjectStore(settings)
        # Set by librdkafka's error callback when no broker answers; cleared by a metadata probe.
        self._broker_down = threading.Event()
        self.producer = make_producer(settings, "producer_api", error_cb=self._on_kafka_error)
        self.producer_id = producer_name("producer_api")
        self._admin = make_admin(settings)
        self._partitions: tuple[float, list[TopicPartition]] = (0.0, [])
        self.views = ViewConnections(settings.view_path)
        # Requests naming one idempotent task take turns from the check to the acknowledged event:
        # of two bodies sent at once with one key, one is accepted and the other is a 422.
        self._idempotent_turns = [threading.Lock() for _ in range(64)]

    def view(self) -> StatusView:
        """This thread's read-only connection to the status view."""
        return self.views.reader()

    def _on_kafka_error(self, error: KafkaError) -> None:
        if error.code() in (KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT, KafkaError._RESOLVE):
            self._broker_down.set()

    def _require_broker(self) -> None:
        """Fail fast with 503 while Kafka is known to be away, instead of waiting out a produce timeout."""
        self.producer.poll(0)  # serve pending error callbacks
        if not self._broker_down.is_set():
            return
        try:
            self.producer.list_topics(self.settings.requests_topic, timeout=1.0)
        except KafkaException as e:
            raise BrokerUnavailable(f"Kafka unreachable: {e}") from e
        self._broker_down.clear()

    def check_backlog(self, owner: str | None, lane: Lane) -> None:
        """429 backlog_full when `owner` already has MAX_BACKLOG_PER_KEY open tasks in the lanes below the first.

        Counted in this host's view, which holds this host's own acceptances at once and
        the other replicas' as the projector folds them. The first lane is never refused.
        """
        bound = self.settings.max_backlog_per_key
        if lane.rank == 0 or bound == 0:
            return
        lower = [other.name for other in self.settings.lane_plan if other.rank > 0]
        if self.view().open_tasks(owner, lower, bound) >= bound:
            raise ApiError(
                429,
                "backlog_full",
                f"this key already has {bound} tasks waiting or running in the lanes {', '.join(lower)}; "
                "submit more as they finish",
                retry_after=BACKLOG_RETRY_AFTER_SECONDS,
            )

    def submit(
        self,
        order: ResizeOrder,
        data: bytes,
        info: ImageInfo,
        idempotency: tuple[str, str] | None = None,
        owner: str | None = None,
        lane: Lane | None = None,
    ) -> tuple[str, bool]:
        """Store the original and emit ResizeRequested to `lane`'s topic (default: the first lane), acknowledged
        by Kafka. Returns (task id, created).

        With `idempotency` = (client, key) the task id is derived from them, so a
        retried request names the same task; if that task is already accepted
        with the same body, nothing is stored or emitted again. `owner`: the API
        key's name, the only one that may read the task.
        """
        self._require_broker()
        lane = lane or self.settings.lane_plan[0]
        if idempotency is None:
            return self._accept(str(uuid.uuid4()), order, data, info, None, owner, lane), True
        # Only a retried request needs telling apart from another body: hash just then.
        fingerprint = body_fingerprint(order, data)
        task_id = idempotent_task_id(self.settings.idempotency_secret.get_secret_value(), *idempotency)
        metadata = {_FINGERPRINT: fingerprint}
        with self._idempotent_turns[hash(task_id) % len(self._idempotent_turns)]:
            if self._already_accepted(task_id, fingerprint):
                return task_id, False
            try:
                # Stored only if no original is there: of two API processes racing on one key, one writes.
                return self._accept(task_id, order, data, info, metadata, owner, lane, store="new"), True
            except ObjectExists:
                # Another process stored it since the check: its body decides (a different one is a 422).
                if self._already_accepted(task_id, fingerprint):
                    return task_id, False
                # The same body, its event not in the log yet: emit it from here too (the fold and
                # the workers take a request twice as once).
                return self._accept(task_id, order, data, info, metadata, owner, lane, store="no"), True

    def _accept(
        self,
        task_id: str,
        order: ResizeOrder,
        data: bytes,
        info: ImageInfo,
        metadata: dict[str, str] | None,
        owner: str | None,
        lane: Lane,
        store: Literal["always", "new", "no"] = "always",
    ) -> str:
        """Store the original, emit its ResizeRequested and wait for Kafka's ack, record it here.

        `store`: overwrite (a fresh random id), only if absent (ObjectExists otherwise), or not at all
        (the same body is already there).
        """
        key = original_key(task_id)
        request = ResizeRequested(
            task_id=task_id,
            producer=self.producer_id,
            source=ObjectRef(self.store.bucket, key),
            **order.options.fields(),
            content_type=info.content_type,
            variants=tuple(_variant_spec(v) for v in order.variants),
            callback_url=order.callback_url,
            owner=owner,
        )
        # Encoded before anything is stored: a registry that is away refuses the upload with nothing left behind.
        value = self.codec.encode(request, lane.requests_topic)
        if store != "no":
            self.store.put(key, data, info.content_type, metadata=metadata, if_absent=store == "new")
        try:
            produce_and_wait(self.producer, lane.requests_topic, task_id, value, self.settings.produce_timeout_seconds)
        except BrokerUnavailable:
            if store == "no":
                raise  # the original is another request's, which settles it
            # No event, no task: the original must not stay behind either.
            try:
                self.store.delete(key)
            except ImageServiceError:
                log.warning("could not remove original of refused task", extra={"task_id": task_id})
            raise
        self.record_locally(request, lane.name)
        return task_id

    def delete(self, row: TaskRow, deleted_by: str | None) -> Erased | None:
        """Delete a task: its TaskDeleted acknowledged by Kafka first, then its objects erased.

        Returns what was erased, or None if the store failed after the event: the
        deletion stands (the status says deleted) and the janitor erases the bytes
        when it rechecks the deletion. No event, no erasure: a broker away is a 503
        and nothing is touched.
        """
        self._require_broker()
        source = ObjectRef(row.source_bucket, row.source_key) if row.source_bucket and row.source_key else None
        event = TaskDeleted(task_id=row.task_id, producer=self.producer_id, owner=deleted_by, source=source)
        produce_and_wait(
            self.producer,
            self.settings.results_topic,
            row.task_id,
            self.codec.encode(event, self.settings.results_topic),
            self.settings.produce_timeout_seconds,
        )
        try:
            self.views.writer().apply([event])
        except ImageServiceError:
            log.warning("local view not updated; the projector will catch up", extra={"task_id": row.task_id})
        try:
            return erase_task(self.store, self.settings, row.task_id, source)
        except ImageServiceError as e:
            log.warning("task deleted, its objects not yet erased: %s", e, extra={"task_id": row.task_id})
            return None

    def _already_accepted(self, task_id: str, fingerprint: str) -> bool:
        """True if this idempotent task exists with this body; 422 if it exists with another."""
        try:
            stored = self.store.stat(original_key(task_id))
        except ObjectNotFound:
            return False
        if stored.metadata.get(_FINGERPRINT) != fingerprint:
            raise IdempotencyConflict("this Idempotency-Key was used with a different request")
        # The original alone is not enough: the earlier attempt may have died before its event.
        return self.find_task(task_id) is not None

    def record_locally(self, request: ResizeRequested, lane: str | None = None) -> None:
        """Fold the acknowledged request, produced to `lane`, into this host's view now, so status never 404s here.

        The projector folds the same event later; the fold is idempotent.
        """
        try:
            self.views.writer().apply([request], lanes=[lane])
        except ImageServiceError:
            log.warning("local view not updated; the projector will catch up", extra={"task_id": request.task_id})

    def _requests_partitions(self) -> list[TopicPartition]:
        """Every partition of every lane's requests topic, looked up again every PARTITION_CHECK_SECONDS."""
        listed_at, partitions = self._partitions
        if partitions and time.monotonic() - listed_at < self.settings.partition_check_seconds:
            return partitions
        found = []
        for topic in requests_topics(self.settings):
            metadata = self.producer.list_topics(topic, timeout=2)
            found += [TopicPartition(topic, p) for p in sorted(metadata.topics[topic].partitions)]
        self._partitions = (time.monotonic(), found)
        return found

    def requests_log_end(self, timeout: float = 2.0) -> dict[tuple[str, int], int]:
        """The log end of every lane's requests topic, per partition: one ListOffsets request per broker.

        Retried within `timeout`: right after a topic is created, or while a leader moves,
        the broker briefly answers "not leader".
        """
        deadline = time.monotonic() + timeout
        renewed = False
        while True:
            try:
                asked = {tp: OffsetSpec.latest() for tp in self._requests_partitions()}
                answers = self._admin.list_offsets(asked, request_timeout=timeout)
                return {(tp.topic, tp.partition): f.result(timeout=timeout + 1).offset for tp, f in answers.items()}
            except Exception as e:  # noqa: BLE001 - any client error means we cannot know the log end
                # A fresh client, once per call: after a broker restart the old one keeps asking with a
                # leader epoch the broker has fenced (FENCED_LEADER_EPOCH) instead of looking leaders up.
                if not renewed:
                    self._admin, renewed = make_admin(self.settings), True
                    self._partitions = (0.0, [])
                if time.monotonic() > deadline:
                    raise BrokerUnavailable(f"cannot read the log end of the requests topics: {e}") from e
                time.sleep(0.05)

    def find_task(self, task_id: str) -> TaskRow | None:
        """The task's row; for an id not in the view yet, first wait for the view to reach the log end."""
        row = self.view().get(task_id)
        if row is not None:
            return row
        return self.caught_up_row(task_id)

    def caught_up_row(self, task_id: str) -> TaskRow | None:
        """The task's row once this view has folded every lane's requests topic up to its end as of now.

        A task accepted by any replica is in its lane's requests topic before its 202,
        so once this view has folded the topics up to their current ends, a missing
        row means an unknown id. A view that cannot catch up in time is a 503.
        """
        view = self.view()
        log_end = self.requests_log_end()
        deadline = time.monotonic() + self.settings.view_catch_up_seconds
        while True:
            applied = view.offsets()
            if all(applied.get(tp, 0) >= high for tp, high in log_end.items()):
                return view.get(task_id)
            if time.monotonic() > deadline:
                raise ViewError("the status view is behind the log; retry shortly")
            time.sleep(0.02)
            row = view.get(task_id)
            if row is not None:
                return row

    def readiness(self) -> dict[str, str]:
        """Each dependency's state: "ok" or why not. Ready when all are "ok"."""
        # Open to anyone: states only; the reasons (hosts, ports, exception text) go to the log.
        checks: dict[str, str] = {}
        try:
            self.producer.list_topics(self.settings.requests_topic, timeout=1.0)
            checks["kafka"] = "ok"
        except KafkaException as e:
            log.warning("readiness: Kafka unreachable: %s", e.args[0].str() if e.args else e)
            checks["kafka"] = "unreachable"
        try:
            self.store.ensure_bucket()
            checks["store"] = "ok"
        except ImageServiceError as e:
            log.warning("readiness: store unreachable: %s", e)
            checks["store"] = "unreachable"
        if checks["kafka"] == "ok":
            try:
                applied = self.view().offsets()
                lag = sum(max(0, high - applied.get(tp, 0)) for tp, high in self.requests_log_end().items())
                bound = self.settings.readiness_max_lag
                checks["projector"] = "ok" if lag <= bound else f"{lag} requests behind (bound {bound})"
            except ImageServiceError as e:
                log.warning("readiness: view unreadable: %s", e)
                checks["projector"] = "unknown"
        else:
            checks["projector"] = "unknown: Kafka unreachable"
        return checks

    def close(self) -> None:
        self.producer.flush(5)
        self.codec.close()
