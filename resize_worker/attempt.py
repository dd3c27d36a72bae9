"""One attempt at one task: get the original, resize, put the result, say how it went."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from common import metrics
from common.errors import ObjectNotFound, StoreUnavailable
from common.settings import Settings
from common.store import ObjectStore
from resize_worker.engine import resize
from resize_worker.errors import ResizeError
from schemas.events import Event, ResizeCompleted, ResizeFailed, ResizeRequested, StoredImage

log = logging.getLogger(__name__)


def result_key(task_id: str) -> str:
    """Where a task's result lives: the same key for every attempt and every replay."""
    return f"results/{task_id}"


class Attempts:
    """Runs attempts; owns one store client per bucket (other services may use their own bucket)."""

    def __init__(self, settings: Settings, producer_id: str) -> None:
        self.settings = settings
        self.producer_id = producer_id
        self._stores: dict[str, ObjectStore] = {}

    def _store(self, bucket: str) -> ObjectStore:
        if bucket not in self._stores:
            self._stores[bucket] = ObjectStore(self.settings, bucket=bucket)
        return self._stores[bucket]

    def _succeed(self, request: ResizeRequested, attempt: int) -> ResizeCompleted:
        started = time.monotonic()
        metrics.QUEUE_WAIT.observe(max(0.0, (datetime.now(UTC) - request.occurred_at).total_seconds()))
        with metrics.DOWNLOAD_SECONDS.time():
            original = self._store(request.source.bucket).get(request.source.key)
        with metrics.RESIZE_SECONDS.time():
            resized = resize(
                original.data,
                request.width,
                request.height,
                request.mode,
                request.format,
                quality=request.quality,
                gravity=request.gravity,
                upscale=request.upscale,
                max_pixels=self.settings.max_pixels,
                max_frames=self.settings.max_frames,
            )
        key = result_key(request.task_id)
        store = self._store(self.settings.s3_bucket)
        with metrics.UPLOAD_SECONDS.time():
            etag = store.put(key, resized.data, resized.content_type)
        metrics.REQUEST_TO_RESULT.observe(max(0.0, (datetime.now(UTC) - request.occurred_at).total_seconds()))
        return ResizeCompleted(
            task_id=request.task_id,
            producer=self.producer_id,
            attempt=attempt,
            result=StoredImage(
                bucket=store.bucket,
                key=key,
                content_type=resized.content_type,
                width=resized.width,
                height=resized.height,
                size_bytes=len(resized.data),
                etag=etag,
            ),
            source_width=resized.source_width,
            source_height=resized.source_height,
            duration_ms=int((time.monotonic() - started) * 1000),
        )

    def run(self, request: ResizeRequested, attempt: int) -> tuple[Event, bool]:
        """The outcome event, and whether the failure (if any) was transient.

        ResizeFailed has retriable=True only for a transient fault with attempts left.
        """
        try:
            return self._succeed(request, attempt), False
        except ResizeError as e:
            code, message, transient = e.code, str(e), False
        except ObjectNotFound as e:
            code, message, transient = "source_missing", str(e), False
        except StoreUnavailable as e:
            code, message, transient = e.code, str(e), True
        except Exception as e:  # noqa: BLE001 - a bug must fail the task, not the worker
            log.exception("unexpected error", extra={"task_id": request.task_id})
            code, message, transient = "internal_error", f"{type(e).__name__}: {e}", False
        retriable = transient and attempt < self.settings.max_attempts
        metrics.RESIZE_FAILURES.labels(code).inc()
        log.warning(
            "attempt failed: %s %s",
            code,
            message,
            extra={"task_id": request.task_id, "attempt": attempt, "retriable": retriable},
        )
        failed = ResizeFailed(
            task_id=request.task_id,
            producer=self.producer_id,
            attempt=attempt,
            error_code=code,
            error_message=message[:1000],
            retriable=retriable,
        )
        return failed, transient
