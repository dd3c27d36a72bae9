"""docs/reference/events.md from the .avsc files: every record's fields, their docs, the fingerprints."""

from __future__ import annotations

import json
from typing import Any

from schemas.codec import SCHEMA_DIR, load_schemas, schema_fingerprint


def _type(schema: Any) -> str:
    if isinstance(schema, list):
        return " \\| ".join(_type(s) for s in schema)
    if isinstance(schema, dict):
        kind = schema["type"]
        if kind == "record":
            return f"record `{schema['name']}`"
        if kind == "array":
            return f"array of {_type(schema['items'])}"
        if "logicalType" in schema:
            return f"{kind} ({schema['logicalType']})"
        return _type(kind)
    return str(schema)


def _records(schema: dict[str, Any], found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The schema and every record nested in it, each once, outermost first."""
    if schema.get("type") == "record" and all(r["name"] != schema["name"] for r in found):
        found.append(schema)
    for field in schema.get("fields", []):
        for part in field["type"] if isinstance(field["type"], list) else [field["type"]]:
            if isinstance(part, dict):
                _records(part if part.get("type") != "array" else part["items"], found)
    return found


def undocumented() -> list[str]:
    """Fields (record.field) of the current schemas without a doc."""
    missing = []
    for schema in load_schemas(SCHEMA_DIR).values():
        for record in _records(schema, []):
            missing += [f"{record['name']}.{f['name']}" for f in record["fields"] if not f.get("doc", "").strip()]
            if not record.get("doc", "").strip():
                missing.append(record["name"])
    return missing


def _default(field: dict[str, Any]) -> str:
    return f"`{json.dumps(field['default'])}`" if "default" in field else "required"


def render() -> str:
    lines = [
        "# Event reference",
        "",
        "Generated from `schemas/avro/*.avsc` by `make docs`. Every value on a topic is Avro single-object",
        "encoded: `C3 01`, the writer schema's 8-byte little-endian CRC-64-AVRO fingerprint, the body",
        "([Events](../EVENTS.md) explains the topics, the encoding and the rules).",
        "",
        "| record | fingerprint (signed 64-bit) | on the wire |",
        "|---|---|---|",
    ]
    schemas = load_schemas(SCHEMA_DIR)
    for full, schema in schemas.items():
        wire = schema_fingerprint(schema)
        signed = int.from_bytes(wire, "little", signed=True)
        lines.append(f"| `{full}` | {signed} | `{wire.hex(' ')}` |")
    for schema in schemas.values():
        lines += ["", f"## {schema['name']}", "", schema.get("doc", ""), ""]
        for record in _records(schema, []):
            if record is not schema:
                lines += [f"Nested record `{record['name']}`: {record.get('doc', '')}", ""]
            lines += ["| field | type | default | meaning |", "|---|---|---|---|"]
            for field in record["fields"]:
                doc = " ".join(field.get("doc", "").split()).replace("|", "\\|")
                lines.append(f"| `{field['name']}` | {_type(field['type'])} | {_default(field)} | {doc} |")
            lines.append("")
    return "\n".join(lines) + "\n"
