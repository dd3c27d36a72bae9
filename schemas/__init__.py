"""The event contract: Avro schemas, event dataclasses and the single-object codec.

Importable on its own by any service that produces or consumes resize events.
"""

from schemas.codec import Codec, default_codec
from schemas.errors import SerializationError
from schemas.events import (
    Event,
    ObjectRef,
    ResizeCompleted,
    ResizeFailed,
    ResizeRequested,
    ResizeStarted,
    StoredImage,
    TaskDeleted,
    VariantImage,
    VariantSpec,
    producer_name,
)

REQUESTS_TOPIC = "image.resize.requested"
RESULTS_TOPIC = "image.resize.results"
DEAD_LETTER_TOPIC = "image.resize.dead-letter"
RETRY_TOPIC = "image.resize.retry"

__all__ = [
    "Codec",
    "DEAD_LETTER_TOPIC",
    "Event",
    "ObjectRef",
    "REQUESTS_TOPIC",
    "RESULTS_TOPIC",
    "RETRY_TOPIC",
    "ResizeCompleted",
    "ResizeFailed",
    "ResizeRequested",
    "ResizeStarted",
    "SerializationError",
    "StoredImage",
    "TaskDeleted",
    "VariantImage",
    "VariantSpec",
    "default_codec",
    "producer_name",
]
