"""The checked-in test vectors are what the code writes, and what the contract's rules give by hand."""

from __future__ import annotations

import io
import json
from pathlib import Path

import fastavro
import pytest

from schemas.codec import HEADER_SIZE, MARKER, SCHEMA_DIR, default_codec, load_schemas, schema_fingerprint
from schemas.vectors import VECTORS_DIR, vectors

FILES = sorted(VECTORS_DIR.glob("*.json"))


def crc64_avro(data: bytes) -> int:
    """CRC-64-AVRO as the Avro specification writes it out (empty: 0xc15d213aa4d7a795)."""
    empty = 0xC15D213AA4D7A795
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (empty & -(fp & 1))
        table.append(fp)
    fp = empty
    for byte in data:
        fp = (fp >> 8) ^ table[(fp ^ byte) & 0xFF]
    return fp


def test_the_checked_in_vectors_are_what_the_code_writes() -> None:
    made = vectors()
    assert sorted(made) == [f.name for f in FILES], "run python -m schemas.vectors --write"
    for file in FILES:
        assert json.loads(file.read_text()) == made[file.name], f"{file.name} is stale"


@pytest.mark.parametrize("file", FILES, ids=lambda f: f.name)
def test_a_vector_follows_the_documented_rules(file: Path) -> None:
    vector = json.loads(file.read_text())
    encoded = bytes.fromhex(vector["encoded_hex"])
    # The fingerprint: CRC-64-AVRO of the Parsing Canonical Form (no logicalType, no doc), little-endian.
    assert '"logicalType"' not in vector["parsing_canonical_form"]
    fingerprint = crc64_avro(vector["parsing_canonical_form"].encode())
    assert fingerprint.to_bytes(8, "little") == bytes.fromhex(vector["fingerprint_wire_hex"])
    assert int.from_bytes(fingerprint.to_bytes(8, "little"), "little", signed=True) == vector["fingerprint_int64"]
    assert encoded[:2] == MARKER and encoded[2:HEADER_SIZE].hex() == vector["fingerprint_wire_hex"]
    # The body: plain Avro binary of the values. Read with the canonical form itself (no logical types), it
    # gives back the values exactly as the vector states them.
    canonical = fastavro.parse_schema(json.loads(vector["parsing_canonical_form"]))
    body = io.BytesIO(encoded[HEADER_SIZE:])
    assert fastavro.schemaless_reader(body, canonical) == vector["values"]
    assert body.read() == b""
    # Readers of the current contract take every version.
    event = default_codec().decode(encoded)
    assert type(event).__name__ == vector["event"]
    assert event.task_id == vector["values"]["task_id"]


def test_the_fingerprint_table_in_the_docs_is_the_current_schemas() -> None:
    table = (Path(__file__).resolve().parents[2] / "docs" / "EVENTS.md").read_text()
    for name, schema in load_schemas(SCHEMA_DIR).items():
        wire = schema_fingerprint(schema)
        signed = int.from_bytes(wire, "little", signed=True)
        row = f"| `{name.rsplit('.', 1)[-1]}` (current) | {signed} | `{wire.hex(' ')}` |"
        assert row in table, row
