"""Single-object encoding: round trips, the spec's fingerprint, schema resolution, bad bytes."""

from __future__ import annotations

import copy

import pytest

from schemas import (
    Codec,
    ObjectRef,
    ResizeCompleted,
    ResizeFailed,
    ResizeRequested,
    ResizeStarted,
    SerializationError,
    StoredImage,
    default_codec,
)
from schemas.codec import MARKER, SCHEMA_DIR, load_schemas, schema_fingerprint

TASK = "0b8e6f4e-1f0a-4a55-9f49-0a3d5f7e2c11"

EVENTS = [
    ResizeRequested(task_id=TASK, source=ObjectRef("images", "originals/x"), width=10, height=None, format="png"),
    ResizeStarted(task_id=TASK, attempt=2, producer="w@h"),
    ResizeCompleted(
        task_id=TASK,
        attempt=1,
        result=StoredImage("images", "results/x", "image/png", 10, 5, 123, "abc"),
        source_width=20,
        source_height=10,
        duration_ms=7,
    ),
    ResizeFailed(task_id=TASK, error_code="corrupt_image", error_message="bad", retriable=False),
]


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
def test_round_trip(event: object) -> None:
    codec = default_codec()
    data = codec.encode(event)  # type: ignore[arg-type]
    assert data[:2] == MARKER
    assert data[2:10] == schema_fingerprint(load_schemas(SCHEMA_DIR)[event.schema_name])  # type: ignore[attr-defined]
    assert codec.decode(data) == event


def test_fingerprint_matches_the_avro_spec_vector() -> None:
    # CRC-64-AVRO of the canonical form "int" is 0x7275d51a3f395c8f, laid out little-endian.
    assert schema_fingerprint("int") == bytes.fromhex("8f5c393f1ad57572")  # type: ignore[arg-type]


GOOD = default_codec().encode(EVENTS[0])
BAD = {
    "none": None,
    "empty": b"",
    "short": MARKER + b"\x00\x01",
    "no marker": b"\x00\x00" + GOOD[2:],
    "unknown fingerprint": MARKER + b"\xff" * 8 + GOOD[10:],
    "truncated body": GOOD[:-5],
    "trailing bytes": GOOD + b"\x00\x00",
    "json": b'{"task_id": "x"}',
}


@pytest.mark.parametrize("data", BAD.values(), ids=BAD.keys())
def test_bad_bytes_raise_serialization_error(data: bytes | None) -> None:
    with pytest.raises(SerializationError):
        default_codec().decode(data)


def test_old_writer_is_resolved_against_the_new_reader() -> None:
    """A producer still on an older schema (no `format`, no `content_type`) is read with defaults."""
    current = load_schemas(SCHEMA_DIR)
    old = copy.deepcopy(current["imgresize.events.ResizeRequested"])
    old["fields"] = [f for f in old["fields"] if f["name"] not in {"format", "content_type"}]
    old_only = {**current, "imgresize.events.ResizeRequested": old}
    data = Codec(old_only).encode(ResizeRequested(task_id=TASK, source=ObjectRef("b", "k"), width=3))
    decoded = Codec(extra_writer_schemas=[old]).decode(data)
    assert isinstance(decoded, ResizeRequested)
    assert decoded.width == 3 and decoded.format is None and decoded.content_type is None
    # Without that writer schema kept, the same bytes are refused rather than misread.
    with pytest.raises(SerializationError):
        Codec().decode(data)
