"""For other services: request a resize over Kafka and read its outcome, with this package alone.

    from confluent_kafka import Producer
    from schemas.client import produce_request, resize_request

    request = resize_request(bucket="images", key="uploads/cat.jpg", width=400, height=400)
    produce_request(Producer({"bootstrap.servers": "kafka:9092", "acks": "all"}), request)
    # later, from the results topic: decode_outcome(msg.value())

Needs confluent-kafka for producing; building and decoding need only fastavro.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

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
    task_id: str | None = None,
    producer: str = "external",
    variants: Sequence[VariantSpec] = (),
    callback_url: str | None = None,
    **options: Any,
) -> ResizeRequested:
    """A valid ResizeRequested for an original already in the object store.

    `options` are the output's: width, height, mode, format, quality, gravity,
    upscale, focus (a FocalPoint), auto_quality; the same as a VariantSpec's.
    With `variants`, several named outputs come from one decode; the first one
    also fills the top-level fields, so readers of older schemas make it.
    """
    allowed = option_names()
    unknown = set(options) - set(allowed)
    if unknown:
        raise TypeError(f"unknown resize options {sorted(unknown)}; the options are {', '.join(allowed)}")
    if variants:
        options = {name: getattr(variants[0], name) for name in allowed}
        problem = variant_names_problem([v.name for v in variants])
        if problem:
            raise ValueError(problem)
        if any(v.width is None and v.height is None for v in variants):
            raise ValueError("every variant needs a width or a height")
    if options.get("width") is None and options.get("height") is None:
        raise ValueError("width or height is required")
    return ResizeRequested(
        task_id=task_id or str(uuid.uuid4()),
        producer=producer,
        source=ObjectRef(bucket, key),
        variants=tuple(variants),
        callback_url=callback_url,
        **options,
    )


def option_names() -> tuple[str, ...]:
    """The options of one output, as the contract's VariantSpec carries them."""
    return tuple(f.name for f in dataclasses.fields(VariantSpec) if f.name != "name")


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
