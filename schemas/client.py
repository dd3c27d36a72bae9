"""For other services: request a resize over Kafka and read its outcome, with this package alone.

    from confluent_kafka import Producer
    from schemas.client import produce_request, resize_request

    request = resize_request(bucket="images", key="uploads/cat.jpg", width=400, height=400)
    produce_request(Producer({"bootstrap.servers": "kafka:9092", "acks": "all"}), request)
    # later, from the results topic: decode_outcome(msg.value())

Needs confluent-kafka for producing; building and decoding need only fastavro.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

from schemas import REQUESTS_TOPIC, default_codec
from schemas.errors import SerializationError
from schemas.events import (
    Event,
    ObjectRef,
    ResizeCompleted,
    ResizeFailed,
    ResizeRequested,
    ResizeStarted,
    TaskDeleted,
    VariantSpec,
    variant_names_problem,
)

if TYPE_CHECKING:
    from confluent_kafka import Producer


def resize_request(
    *,
    bucket: str,
    key: str,
    width: int | None = None,
    height: int | None = None,
    mode: str = "fill",
    format: str | None = None,  # noqa: A002 - the contract's field name
    quality: int | None = None,
    gravity: str = "centre",
    upscale: bool | None = None,
    task_id: str | None = None,
    producer: str = "external",
    variants: Sequence[VariantSpec] = (),
    callback_url: str | None = None,
) -> ResizeRequested:
    """A valid ResizeRequested for an original already in the object store.

    With `variants`, several named outputs come from one decode; the first one
    also fills the top-level fields, so readers of older schemas make it.
    """
    if variants:
        first = variants[0]
        width, height, mode, format = first.width, first.height, first.mode, first.format  # noqa: A001
        quality, gravity, upscale = first.quality, first.gravity, first.upscale
        problem = variant_names_problem([v.name for v in variants])
        if problem:
            raise ValueError(problem)
        if any(v.width is None and v.height is None for v in variants):
            raise ValueError("every variant needs a width or a height")
    if width is None and height is None:
        raise ValueError("width or height is required")
    return ResizeRequested(
        task_id=task_id or str(uuid.uuid4()),
        producer=producer,
        source=ObjectRef(bucket, key),
        width=width,
        height=height,
        mode=mode,
        format=format,
        quality=quality,
        gravity=gravity,
        upscale=upscale,
        variants=tuple(variants),
        callback_url=callback_url,
    )


def produce_request(
    producer: Producer, request: ResizeRequested, topic: str = REQUESTS_TOPIC, timeout: float = 30
) -> None:
    """Produce keyed by task id and wait until the broker acknowledged it; raises RuntimeError if not."""
    failures: list[object] = []
    producer.produce(
        topic,
        key=request.task_id.encode(),
        value=default_codec().encode(request),
        on_delivery=lambda err, _msg: failures.append(err) if err else None,
    )
    if producer.flush(timeout) != 0 or failures:
        raise RuntimeError(f"ResizeRequested {request.task_id} not acknowledged: {failures or 'timed out'}")


def decode_outcome(value: bytes) -> ResizeStarted | ResizeCompleted | ResizeFailed | TaskDeleted:
    """A record of the results topic as its event (TaskDeleted since v6); SerializationError for anything else."""
    event: Event = default_codec().decode(value)
    if not isinstance(event, ResizeStarted | ResizeCompleted | ResizeFailed | TaskDeleted):
        raise SerializationError(f"{type(event).__name__} is not a result event")
    return event
