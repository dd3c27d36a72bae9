"""Every schema stays backward and forward compatible with each version kept in schemas/history."""

from __future__ import annotations

import copy
import io
from typing import Any

import fastavro
import pytest
from fastavro.utils import generate_many

from schemas.codec import HISTORY_DIR, SCHEMA_DIR, load_schemas

CURRENT = load_schemas(SCHEMA_DIR)
HISTORY = [
    (version.name, name, schema)
    for version in sorted(HISTORY_DIR.iterdir())
    for name, schema in load_schemas(version).items()
]


def compatible(writer: dict[str, Any], reader: dict[str, Any], samples: int = 50) -> bool:
    """Data written with `writer` can be read with `reader` (Avro schema resolution)."""
    parsed_writer, parsed_reader = fastavro.parse_schema(writer), fastavro.parse_schema(reader)
    for record in generate_many(parsed_writer, samples):
        buffer = io.BytesIO()
        fastavro.schemaless_writer(buffer, parsed_writer, record)
        buffer.seek(0)
        try:
            fastavro.schemaless_reader(buffer, parsed_writer, parsed_reader)
        except Exception:  # noqa: BLE001 - any resolution failure means incompatible
            return False
    return True


def test_every_event_has_a_kept_version() -> None:
    assert {name for _, name, _ in HISTORY} >= set(CURRENT)


@pytest.mark.parametrize(("version", "name", "old"), HISTORY, ids=[f"{v}:{n.rsplit('.', 1)[1]}" for v, n, _ in HISTORY])
def test_current_schema_reads_old_data_and_old_reads_new(version: str, name: str, old: dict[str, Any]) -> None:
    assert name in CURRENT, f"{name} was removed"
    assert compatible(old, CURRENT[name]), "backward: the current reader cannot read old data"
    assert compatible(CURRENT[name], old), "forward: old readers cannot read current data"


def test_the_check_catches_a_field_added_without_default() -> None:
    schema = CURRENT["imgresize.events.ResizeStarted"]
    broken = copy.deepcopy(schema)
    broken["fields"].append({"name": "worker_host", "type": "string"})
    assert not compatible(schema, broken)
    assert compatible(broken, schema)  # dropping a field stays readable
