"""Test vectors of the event contract: per event type and schema version, the field values and the exact bytes.

`python -m schemas.vectors --write` regenerates `schemas/vectors/*.json` from the
examples below; a test checks the files against this code, and the Java
conformance program checks them against Apache Avro's own Java library. Values
are given as Avro's underlying types, as any Avro library takes them: a uuid is
its string, a timestamp-micros is microseconds since the epoch (a long).
"""

from __future__ import annotations

import argparse
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fastavro
from fastavro.schema import to_parsing_canonical_form

from schemas.codec import HISTORY_DIR, MARKER, SCHEMA_DIR, load_schemas, schema_fingerprint
from schemas.events import (
    Box,
    CropSubject,
    Event,
    FocalPoint,
    ObjectRef,
    ResizeCompleted,
    ResizeFailed,
    ResizeRequested,
    ResizeStarted,
    StoredImage,
    TaskDeleted,
    VariantImage,
    VariantSpec,
    to_record,
)

VECTORS_DIR = Path(__file__).resolve().parent / "vectors"
_AT = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
_TASK = "6f1c1c0e-8a43-4d4b-9a38-2f6a4b0e7c11"
_IMAGE = StoredImage("images", f"results/{_TASK}/thumb", "image/webp", 200, 150, 5123, "9f86d081884c7d65", 71, 0.9712)

# The examples: every field set, so every field's encoding is pinned.
EXAMPLES: dict[str, Event] = {
    "ResizeRequested": ResizeRequested(
        task_id=_TASK,
        source=ObjectRef("images", f"originals/{_TASK}"),
        width=400,
        height=300,
        mode="fit",
        format="webp",
        quality=80,
        gravity="entropy",
        upscale=False,
        content_type="image/jpeg",
        variants=(VariantSpec("thumb", 200, 150, "fill", "webp", None, "face", None, FocalPoint(0.25, 0.4), True),),
        focus=FocalPoint(0.625, 0.375),
        auto_quality=False,
        callback_url="https://hooks.example.com/imgresize",
        event_id="0b9e4f2a-5c3d-4e8f-a1b2-c3d4e5f60718",
        occurred_at=_AT,
        producer="catalogue@host-1",
    ),
    "ResizeStarted": ResizeStarted(
        task_id=_TASK,
        attempt=2,
        event_id="1c0f5a3b-6d4e-4f90-b2c3-d4e5f6071829",
        occurred_at=_AT,
        producer="resize_worker@host-2",
    ),
    "ResizeCompleted": ResizeCompleted(
        task_id=_TASK,
        attempt=2,
        result=_IMAGE,
        source_width=1920,
        source_height=1080,
        duration_ms=42,
        variants=(VariantImage("thumb", _IMAGE),),
        callback_url="https://hooks.example.com/imgresize",
        owner="catalogue",
        subjects=(
            CropSubject(
                "face", FocalPoint(0.3125, 0.25), (Box(0.25, 0.125, 0.125, 0.25), Box(0.5, 0.5, 0.0625, 0.125))
            ),
            CropSubject("smart", FocalPoint(0.5, 0.75), (), "no_face"),
        ),
        event_id="2d106b4c-7e5f-4a01-83d4-e5f60718293a",
        occurred_at=_AT,
        producer="resize_worker@host-2",
    ),
    "ResizeFailed": ResizeFailed(
        task_id=_TASK,
        attempt=1,
        error_code="corrupt_image",
        error_message="JPEG data cannot be decoded: image file is truncated",
        retriable=False,
        callback_url=None,
        owner="catalogue",
        event_id="3e217c5d-8f60-4b12-94e5-f60718293a4b",
        occurred_at=_AT,
        producer="resize_worker@host-2",
    ),
    "TaskDeleted": TaskDeleted(
        task_id=_TASK,
        owner="catalogue",
        source=ObjectRef("images", f"originals/{_TASK}"),
        event_id="4f328d6e-9071-4c23-a5f6-0718293a4b5c",
        occurred_at=_AT,
        producer="producer_api@host-1",
    ),
}


def _micros(value: datetime) -> int:
    return (value - datetime(1970, 1, 1, tzinfo=UTC)) // datetime.resolution


def _named_types(schema: Any, found: dict[str, Any]) -> dict[str, Any]:
    if isinstance(schema, dict):
        if isinstance(schema.get("type"), str) and schema["type"] in {"record", "enum", "fixed"}:
            found[schema["name"]] = schema
        for value in schema.values():
            _named_types(value, found)
    elif isinstance(schema, list):
        for item in schema:
            _named_types(item, found)
    return found


def _project(schema: Any, value: Any, named: dict[str, Any]) -> Any:
    """`value` as the schema holds it: only the schema's fields, logical types as their underlying values."""
    if isinstance(schema, str) and schema in named:
        schema = named[schema]
    if isinstance(schema, list):  # every union here is ["null", T]
        if value is None:
            return None
        return _project(next(s for s in schema if s != "null"), value, named)
    if isinstance(schema, dict):
        kind = schema["type"]
        if kind == "record":
            return {f["name"]: _project(f["type"], value.get(f["name"]), named) for f in schema["fields"]}
        if kind == "array":
            return [_project(schema["items"], item, named) for item in value]
        if schema.get("logicalType") == "timestamp-micros":
            return _micros(value)
        return _project(kind, value, named)
    return value


def _plain(value: Any) -> Any:
    """dataclasses.asdict output as JSON-ready values (tuples to lists)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def vector(name: str, schema: dict[str, Any], version: str) -> dict[str, Any]:
    """One vector: the example event as this schema version holds it, and its bytes."""
    values = _project(schema, _plain(to_record(EXAMPLES[name])), _named_types(schema, {}))
    wire_fingerprint = schema_fingerprint(schema)
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(schema), values)
    return {
        "event": name,
        "schema_version": version,
        "parsing_canonical_form": to_parsing_canonical_form(schema),
        "fingerprint_int64": int.from_bytes(wire_fingerprint, "little", signed=True),
        "fingerprint_wire_hex": wire_fingerprint.hex(),
        "values": values,
        "encoded_hex": (MARKER + wire_fingerprint + body.getvalue()).hex(),
    }


def schema_versions() -> dict[str, Path]:
    """Every kept version's schema folder; the current schemas too, under 'current', while unreleased."""
    versions = {p.name: p for p in sorted(HISTORY_DIR.iterdir()) if p.is_dir()}
    if not any(_fingerprints(folder) == _fingerprints(SCHEMA_DIR) for folder in versions.values()):
        versions["current"] = SCHEMA_DIR
    return versions


def _fingerprints(folder: Path) -> dict[str, bytes]:
    """What identifies a version on the wire (doc strings are not part of it)."""
    return {name: schema_fingerprint(schema) for name, schema in load_schemas(folder).items()}


def vectors() -> dict[str, dict[str, Any]]:
    """File name -> vector, for every event type of every version."""
    made = {}
    for version, folder in schema_versions().items():
        for full_name, schema in load_schemas(folder).items():
            name = full_name.rsplit(".", 1)[-1]
            made[f"{version}-{name}.json"] = vector(name, schema, version)
    return made


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help=f"write the vectors into {VECTORS_DIR}")
    args = parser.parse_args(argv)
    made = vectors()
    if not args.write:
        print(json.dumps(made, indent=2))
        return
    VECTORS_DIR.mkdir(exist_ok=True)
    for old in VECTORS_DIR.glob("*.json"):
        old.unlink()
    for file_name, content in made.items():
        (VECTORS_DIR / file_name).write_text(json.dumps(content, indent=2) + "\n")
    print(f"{len(made)} vectors written to {VECTORS_DIR}")


if __name__ == "__main__":
    main()
