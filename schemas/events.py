"""The events of the resize contract, as frozen dataclasses mirroring the `.avsc` files."""

from __future__ import annotations

import dataclasses
import re
import socket
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar


def new_event_id() -> str:
    return str(uuid.uuid4())


def utc_now() -> datetime:
    # Avro timestamp-micros keeps microseconds; nothing finer, so equality survives a round trip.
    return datetime.now(UTC)


def producer_name(component: str) -> str:
    """`component@host`, the value of every event's `producer` field."""
    return f"{component}@{socket.gethostname()}"


@dataclass(frozen=True)
class ObjectRef:
    """Where an object lives in the store."""

    bucket: str
    key: str


@dataclass(frozen=True)
class FocalPoint:
    """A point of the upright source, relative: (0, 0) top left, (1, 1) bottom right."""

    x: float
    y: float


@dataclass(frozen=True)
class Box:
    """A region of the upright source, relative to its size like FocalPoint."""

    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class CropSubject:
    """Since v7: what a content-aware crop (gravity face or smart) found in the source, and centred on."""

    # The gravity whose finding this is: face or smart (a face gravity that fell back says smart).
    gravity: str
    focus: FocalPoint
    # The faces found (gravity face), largest first.
    boxes: tuple[Box, ...] = ()
    # Why the gravity asked for was not the one used: no_face, detector_failed (None: it was).
    fallback: str | None = None


@dataclass(frozen=True)
class StoredImage:
    """A resized image written to the store."""

    bucket: str
    key: str
    content_type: str
    width: int
    height: int
    size_bytes: int
    etag: str
    # Since v7: the encoder quality used (None: a lossless format), and with quality=auto the score it met.
    quality: int | None = None
    score: float | None = None


VARIANT_NAME = re.compile(r"[a-z0-9_-]{1,40}")


def variant_names_problem(names: Sequence[str]) -> str | None:
    """Why these variant names cannot name one request's results, or None if they can."""
    if len(set(names)) != len(names):
        return "variant names must be unique"
    bad = next((n for n in names if not VARIANT_NAME.fullmatch(n)), None)
    if bad is not None:
        return f"variant name {bad!r} must match [a-z0-9_-]{{1,40}}"
    return None


@dataclass(frozen=True)
class VariantSpec:
    """One of several outputs a request asks for, named so its result can be found."""

    name: str
    width: int | None = None
    height: int | None = None
    mode: str = "fill"
    format: str | None = None
    quality: int | None = None
    gravity: str = "centre"
    upscale: bool | None = None
    # Since v7.
    focus: FocalPoint | None = None
    auto_quality: bool = False


@dataclass(frozen=True)
class VariantImage:
    """The stored image of one named variant."""

    name: str
    image: StoredImage


@dataclass(frozen=True, kw_only=True)
class Event:
    """Fields every event carries."""

    schema_name: ClassVar[str] = ""
    task_id: str
    event_id: str = field(default_factory=new_event_id)
    occurred_at: datetime = field(default_factory=utc_now)
    producer: str = "unknown"


@dataclass(frozen=True, kw_only=True)
class ResizeRequested(Event):
    schema_name: ClassVar[str] = "imgresize.events.ResizeRequested"
    source: ObjectRef
    width: int | None = None
    height: int | None = None
    mode: str = "fill"
    format: str | None = None
    content_type: str | None = None
    quality: int | None = None
    gravity: str = "centre"
    upscale: bool | None = None
    variants: tuple[VariantSpec, ...] = ()
    callback_url: str | None = None
    # Since v4: the name of the API key that created the task (None: no key).
    owner: str | None = None
    # Since v7: the client's focal point, and quality=auto.
    focus: FocalPoint | None = None
    auto_quality: bool = False


@dataclass(frozen=True, kw_only=True)
class ResizeStarted(Event):
    schema_name: ClassVar[str] = "imgresize.events.ResizeStarted"
    attempt: int = 1


@dataclass(frozen=True, kw_only=True)
class ResizeCompleted(Event):
    schema_name: ClassVar[str] = "imgresize.events.ResizeCompleted"
    attempt: int = 1
    result: StoredImage
    source_width: int
    source_height: int
    duration_ms: int
    variants: tuple[VariantImage, ...] = ()
    callback_url: str | None = None
    # Since v5: copied from the request, so the notifier knows whose webhook secret signs it.
    owner: str | None = None
    # Since v7: what the content-aware crops centred on, once per gravity.
    subjects: tuple[CropSubject, ...] = ()


@dataclass(frozen=True, kw_only=True)
class ResizeFailed(Event):
    schema_name: ClassVar[str] = "imgresize.events.ResizeFailed"
    attempt: int = 1
    error_code: str
    error_message: str
    retriable: bool = False
    callback_url: str | None = None
    # Since v5: copied from the request, so the notifier knows whose webhook secret signs it.
    owner: str | None = None


@dataclass(frozen=True, kw_only=True)
class TaskDeleted(Event):
    """Since v6, on the results topic: the task is deleted, and nothing brings it back."""

    schema_name: ClassVar[str] = "imgresize.events.TaskDeleted"
    # The API key that deleted it (None: a task created without a key).
    owner: str | None = None
    # The task's original, deleted with it (None: not known to the deleter).
    source: ObjectRef | None = None


EVENT_TYPES: dict[str, type[Event]] = {
    cls.schema_name: cls for cls in (ResizeRequested, ResizeStarted, ResizeCompleted, ResizeFailed, TaskDeleted)
}


def _variant_image(record: dict[str, Any]) -> VariantImage:
    return VariantImage(name=record["name"], image=StoredImage(**record["image"]))


def _focus(record: dict[str, Any] | None) -> FocalPoint | None:
    return FocalPoint(**record) if record is not None else None


def _variant_spec(record: dict[str, Any]) -> VariantSpec:
    return VariantSpec(**{**record, "focus": _focus(record.get("focus"))})


def _subject(record: dict[str, Any]) -> CropSubject:
    return CropSubject(
        gravity=record["gravity"],
        focus=FocalPoint(**record["focus"]),
        boxes=tuple(Box(**b) for b in record["boxes"]),
        fallback=record["fallback"],
    )


# How to rebuild each nested record, by event type and field.
_NESTED: dict[tuple[type[Event], str], Callable[[Any], Any]] = {
    (ResizeRequested, "source"): lambda r: ObjectRef(**r),
    (ResizeRequested, "variants"): lambda items: tuple(_variant_spec(r) for r in items),
    (ResizeRequested, "focus"): _focus,
    (ResizeCompleted, "subjects"): lambda items: tuple(_subject(r) for r in items),
    (ResizeCompleted, "result"): lambda r: StoredImage(**r),
    (ResizeCompleted, "variants"): lambda items: tuple(_variant_image(r) for r in items),
    (TaskDeleted, "source"): lambda r: ObjectRef(**r) if r is not None else None,
}


def to_record(event: Event) -> dict[str, Any]:
    """The Avro record (a plain dict) for an event."""
    return dataclasses.asdict(event)


def from_record(schema_name: str, record: dict[str, Any]) -> Event:
    """The event for a record already resolved to this contract's reader schema."""
    cls = EVENT_TYPES[schema_name]
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        value = record[f.name]
        if (cls, f.name) in _NESTED:
            value = _NESTED[cls, f.name](value)
        elif isinstance(value, uuid.UUID):
            value = str(value)
        values[f.name] = value
    return cls(**values)
