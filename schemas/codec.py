"""Avro single-object encoding of the contract's events, with schema resolution.

Layout of every Kafka value: `C3 01`, the writer schema's 8-byte little-endian
CRC-64-AVRO fingerprint, then the Avro binary body. A reader finds the writer
schema by fingerprint and resolves it against its own reader schema.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form

from schemas.errors import SerializationError
from schemas.events import EVENT_TYPES, Event, from_record, to_record

MARKER = b"\xc3\x01"
HEADER_SIZE = len(MARKER) + 8
SCHEMA_DIR = Path(__file__).parent / "avro"
HISTORY_DIR = Path(__file__).parent / "history"


def load_schemas(directory: Path) -> dict[str, dict[str, Any]]:
    """Every `.avsc` in a directory, by full name."""
    schemas: dict[str, dict[str, Any]] = {}
    for path in sorted(directory.glob("*.avsc")):
        schema = json.loads(path.read_text())
        schemas[f"{schema['namespace']}.{schema['name']}"] = schema
    return schemas


def schema_fingerprint(schema: dict[str, Any]) -> bytes:
    """The 8 bytes of CRC-64-AVRO over the Parsing Canonical Form, as the spec lays them out."""
    return bytes.fromhex(fingerprint(to_parsing_canonical_form(schema), "CRC-64-AVRO"))


def _history_dirs() -> list[Path]:
    return sorted(p for p in HISTORY_DIR.iterdir() if p.is_dir()) if HISTORY_DIR.exists() else []


class Codec:
    """Encodes with the current schemas; decodes anything written with a known schema."""

    def __init__(
        self,
        reader_schemas: dict[str, dict[str, Any]] | None = None,
        extra_writer_schemas: Iterable[dict[str, Any]] = (),
    ) -> None:
        readers = reader_schemas if reader_schemas is not None else load_schemas(SCHEMA_DIR)
        self._readers = {name: fastavro.parse_schema(s) for name, s in readers.items()}
        self._fingerprints = {name: schema_fingerprint(s) for name, s in readers.items()}
        self._writers: dict[bytes, tuple[str, Any]] = {}
        for name in readers:
            self._writers[self._fingerprints[name]] = (name, self._readers[name])
        for schema in extra_writer_schemas:
            name = f"{schema['namespace']}.{schema['name']}"
            self._writers.setdefault(schema_fingerprint(schema), (name, fastavro.parse_schema(schema)))

    def encode(self, event: Event) -> bytes:
        name = event.schema_name
        if name not in self._readers:
            raise SerializationError(f"no schema for {name}")
        out = io.BytesIO()
        out.write(MARKER)
        out.write(self._fingerprints[name])
        try:
            fastavro.schemaless_writer(out, self._readers[name], to_record(event))
        except (ValueError, TypeError, AttributeError) as e:
            raise SerializationError(f"cannot encode {name}: {e}") from e
        return out.getvalue()

    def decode(self, data: bytes | None) -> Event:
        if data is None or len(data) < HEADER_SIZE:
            raise SerializationError("too short for an Avro single-object encoded event")
        if data[:2] != MARKER:
            raise SerializationError("missing the Avro single-object marker C3 01")
        writer = self._writers.get(bytes(data[2:HEADER_SIZE]))
        if writer is None:
            raise SerializationError(f"unknown writer schema fingerprint {data[2:HEADER_SIZE].hex()}")
        name, writer_schema = writer
        reader_schema = self._readers.get(name)
        if reader_schema is None:
            raise SerializationError(f"no reader schema for {name}")
        body = io.BytesIO(data[HEADER_SIZE:])
        try:
            record = fastavro.schemaless_reader(body, writer_schema, reader_schema)
        except Exception as e:  # noqa: BLE001 - fastavro raises many types on bad bytes
            raise SerializationError(f"corrupt {name} body: {e}") from e
        if body.tell() != len(data) - HEADER_SIZE:
            raise SerializationError(f"{name} body has trailing bytes")
        if not isinstance(record, dict):
            raise SerializationError(f"{name} body is not a record")
        try:
            return from_record(name, record)
        except (KeyError, TypeError, ValueError) as e:
            raise SerializationError(f"{name} record does not fit the contract: {e}") from e


@lru_cache(maxsize=1)
def default_codec() -> Codec:
    """The codec for the schemas shipped here, able to read every kept past version."""
    history = [s for d in _history_dirs() for s in load_schemas(d).values()]
    return Codec(extra_writer_schemas=history)


__all__ = ["Codec", "EVENT_TYPES", "MARKER", "default_codec", "load_schemas", "schema_fingerprint"]
