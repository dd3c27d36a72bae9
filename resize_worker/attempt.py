"""One attempt at one task: get the original, resize, put the result, say how it went."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from common import metrics
from common.errors import ObjectNotFound, StoreUnavailable
from common.settings import Settings
from common.sources import readable_source_problem
from common.store import ObjectStore
from resize_worker.auto_quality import AutoQuality
from resize_worker.engine import ResizedImage, Target
from resize_worker.isolation import IsolatedResizer
from resize_worker.retry import Step, next_step
from schemas.events import (
    CropSubject,
    Event,
    ResizeCompleted,
    ResizeFailed,
    ResizeRequested,
    StoredImage,
    VariantImage,
    variant_names_problem,
)
from vocabulary.errors import InvalidRequest, ResizeError, SourceDeleted, SourceExpired, SourceNotAllowed
from vocabulary.options import ResizeOptions

log = logging.getLogger(__name__)


def result_key(task_id: str, variant: str | None = None) -> str:
    """Where a task's result lives: the same key for every attempt and every replay."""
    return f"results/{task_id}" if variant is None else f"results/{task_id}/{variant}"


def outputs_of(request: ResizeRequested, max_variants: int) -> list[tuple[str | None, Target]]:
    """The outputs a request asks for: its named variants, or the one its top-level fields describe."""
    if not request.variants:
        return [(None, ResizeOptions.of(request))]
    # Requests produced straight to Kafka are not checked by the API.
    if len(request.variants) > max_variants:
        raise InvalidRequest(f"{len(request.variants)} variants asked; at most {max_variants}")
    problem = variant_names_problem([v.name for v in request.variants])
    if problem:
        raise InvalidRequest(problem)
    return [(v.name, ResizeOptions.of(v)) for v in request.variants]


def source_problem(request: ResizeRequested, settings: Settings) -> str | None:
    """Why the workers may not read the request's original, or None if they may (common.sources)."""
    return readable_source_problem(request.task_id, request.source.bucket, request.source.key, settings)


def _stored(bucket: str, key: str, image: ResizedImage, etag: str) -> StoredImage:
    return StoredImage(
        bucket=bucket,
        key=key,
        content_type=image.content_type,
        width=image.width,
        height=image.height,
        size_bytes=len(image.data),
        etag=etag,
        quality=image.quality,
        score=image.score,
    )


def subjects_of(resized: list[ResizedImage]) -> tuple[CropSubject, ...]:
    """What the content-aware crops found, once each (outputs with the same gravity share one finding)."""
    found: list[CropSubject] = []
    for image in resized:
        if image.subject is not None and image.subject not in found:
            found.append(image.subject)
    return tuple(found)


class Attempts:
    """Runs attempts; owns one store client per bucket (other services may use their own bucket)."""

    def __init__(self, settings: Settings, producer_id: str) -> None:
        self.settings = settings
        self.producer_id = producer_id
        self._stores: dict[str, ObjectStore] = {}
        # One resize child per niceness: the first lane's at the worker's own, the lower lanes' at
        # LOWER_LANE_NICE, so on a busy machine the OS runs interactive resizes (and the API, the
        # store, the broker) before bulk ones.
        self._resizers: dict[int, IsolatedResizer] = {}
        self._uploads = ThreadPoolExecutor(max_workers=4, thread_name_prefix="result-upload")

    def resizer(self, nice: int = 0) -> IsolatedResizer:
        if nice not in self._resizers:
            self._resizers[nice] = IsolatedResizer(
                self.settings.resize_memory_limit_mb, self.settings.resize_time_limit_seconds, nice
            )
        return self._resizers[nice]

    def children(self) -> dict[int, int]:
        """The resize children started so far, by niceness: their process ids."""
        return {nice: pid for nice, r in self._resizers.items() if (pid := r.child_pid) is not None}

    def close(self) -> None:
        for resizer in self._resizers.values():
            resizer.close()
        self._uploads.shutdown(wait=True)

    def _store(self, bucket: str) -> ObjectStore:
        if bucket not in self._stores:
            self._stores[bucket] = ObjectStore(self.settings, bucket=bucket)
        return self._stores[bucket]

    def _succeed(self, request: ResizeRequested, attempt: int, nice: int) -> ResizeCompleted:
        started = time.monotonic()
        metrics.QUEUE_WAIT.observe(max(0.0, (datetime.now(UTC) - request.occurred_at).total_seconds()))
        problem = source_problem(request, self.settings)
        if problem:
            raise SourceNotAllowed(problem)
        self._check_not_expired(request.occurred_at, "the request")
        source = self._store(request.source.bucket)
        with metrics.DOWNLOAD_SECONDS.time():
            original = source.get(request.source.key)
        if original.last_modified is not None:
            self._check_not_expired(original.last_modified, "the original")
        named = outputs_of(request, self.settings.max_variants)
        with metrics.RESIZE_SECONDS.time():
            resized = self.resizer(nice).resize_many(
                original.data,
                [target for _, target in named],
                max_pixels=self.settings.max_pixels,
                max_frames=self.settings.max_frames,
                max_output_pixels=self.settings.max_output_pixels,
                max_dimension=self.settings.max_dimension,
                auto=AutoQuality.of(self.settings),
            )
        store = self._store(self.settings.s3_bucket)
        keys = [result_key(request.task_id, name) for name, _ in named]

        def put(key: str, image: ResizedImage) -> str:
            return store.put(key, image.data, image.content_type)

        with metrics.UPLOAD_SECONDS.time():
            # Side by side: a task's renditions cost one round trip to the store, not one each. A single
            # output is stored from this thread: a hand-over to the pool would only add a thread switch.
            etags = [put(keys[0], resized[0])] if len(keys) == 1 else list(self._uploads.map(put, keys, resized))
        stored = [
            VariantImage(name or "", _stored(store.bucket, key, image, etag))
            for (name, _), key, image, etag in zip(named, keys, resized, etags, strict=True)
        ]
        self._check_still_there(source, request, [v.image.key for v in stored])
        metrics.REQUEST_TO_RESULT.observe(max(0.0, (datetime.now(UTC) - request.occurred_at).total_seconds()))
        return ResizeCompleted(
            task_id=request.task_id,
            producer=self.producer_id,
            attempt=attempt,
            result=stored[0].image,
            source_width=resized[0].source_width,
            source_height=resized[0].source_height,
            duration_ms=int((time.monotonic() - started) * 1000),
            variants=tuple(stored) if request.variants else (),
            callback_url=request.callback_url,
            owner=request.owner,
            subjects=subjects_of(resized),
        )

    def _check_not_expired(self, since: datetime, what: str) -> None:
        ttl = self.settings.retention.original
        if ttl is not None and since + ttl <= datetime.now(UTC):
            raise SourceExpired(f"{what} is older than ORIGINAL_TTL_SECONDS ({int(ttl.total_seconds())} s)")

    def _check_still_there(self, source: ObjectStore, request: ResizeRequested, written: list[str]) -> None:
        """The original is still in the store after the results were stored; else the task was deleted meanwhile.

        A deletion erases the original before the results (common.erasure). If the
        original is still here now, the deletion's own sweep comes after these writes
        and removes them; if it is gone, the deletion may have swept before they
        landed, so this attempt removes what it wrote.
        """
        try:
            source.stat(request.source.key)
        except ObjectNotFound:
            self._store(self.settings.s3_bucket).delete_many(written)
            raise SourceDeleted(
                "the original was deleted while it was being resized; its results were removed"
            ) from None

    def run(self, request: ResizeRequested, attempt: int, nice: int = 0) -> tuple[Event, Step]:
        """The outcome event, and what follows it (a ResizeFailed says retriable=True exactly when a retry does).

        `nice`: the niceness of the resize child (the lane's)."""
        try:
            return self._succeed(request, attempt, nice), Step.DONE
        except ResizeError as e:
            code, message, transient = e.code, str(e), False
        except ObjectNotFound as e:
            code, message, transient = "source_missing", str(e), False
        except StoreUnavailable as e:
            code, message, transient = e.code, str(e), True
        except Exception as e:  # noqa: BLE001 - a bug must fail the task, not the worker
            log.exception("unexpected error", extra={"task_id": request.task_id})
            code, message, transient = "internal_error", f"{type(e).__name__}: {e}", False
        step = next_step(True, transient, attempt, self.settings.max_attempts)
        retriable = step is Step.RETRY
        log.warning(
            "attempt failed: %s %s",
            code,
            message,
            extra={"task_id": request.task_id, "attempt": attempt, "retriable": retriable},
        )
        return self.failed(request, attempt, code, message, retriable), step

    def failed(self, request: ResizeRequested, attempt: int, code: str, message: str, retriable: bool) -> ResizeFailed:
        """The ResizeFailed of an attempt, counted by its code."""
        metrics.RESIZE_FAILURES.labels(code).inc()
        return ResizeFailed(
            task_id=request.task_id,
            producer=self.producer_id,
            attempt=attempt,
            error_code=code,
            error_message=message[:1000],
            retriable=retriable,
            callback_url=request.callback_url,
            owner=request.owner,
        )
