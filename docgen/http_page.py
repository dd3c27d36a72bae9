"""docs/reference/http.md from the OpenAPI document the API serves."""

from __future__ import annotations

import json
from typing import Any

from common.settings import Settings
from producer_api.openapi import document

_METHODS = ("get", "post", "put", "patch", "delete")


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _schema(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if "enum" in schema:
        return " \\| ".join(f"`{v}`" for v in schema["enum"])
    return _cell(json.dumps({k: v for k, v in schema.items() if k in {"type", "minimum", "maximum", "format"}}))


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, op) for path, item in spec["paths"].items() for method, op in item.items() if method in _METHODS
    ]


def undocumented() -> list[str]:
    """Operations without a summary, parameters without a description, responses without one."""
    missing = []
    for path, method, op in operations(document(Settings())):
        where = f"{method.upper()} {path}"
        if not op.get("summary", "").strip():
            missing.append(where)
        missing += [f"{where} {p['name']}" for p in op.get("parameters", []) if not p.get("description", "").strip()]
        missing += [f"{where} {code}" for code, r in op.get("responses", {}).items() if not r.get("description")]
    return missing


def render() -> str:
    spec = document(Settings())
    lines = [
        "# HTTP reference",
        "",
        f"Generated from the OpenAPI {spec['openapi']} document the API serves at `/openapi.json` (and as a page",
        "at `/docs`), by `make docs`. [The HTTP API](../http.md) explains the behaviour around it.",
        "",
        'Errors are JSON: `{"result": "error", "code": "...", "message": "..."}`, with `Retry-After` on',
        "`429` and `503`.",
    ]
    for path, method, op in operations(spec):
        lines += ["", f"## `{method.upper()} {path}`", "", _cell(op.get("summary", "")), ""]
        if op.get("description"):
            lines += [op["description"], ""]
        params = op.get("parameters", [])
        if params:
            lines += ["| parameter | in | required | schema | meaning |", "|---|---|---|---|---|"]
            for p in params:
                lines.append(
                    f"| `{p['name']}` | {p['in']} | {'yes' if p.get('required') else 'no'} | "
                    f"{_schema(p.get('schema', {}))} | {_cell(p.get('description', ''))} |"
                )
            lines.append("")
        body = op.get("requestBody", {}).get("content", {})
        for media, content in body.items():
            props = content.get("schema", {}).get("properties", {})
            if props:
                lines += [f"Body ({media}):", "", "| field | schema | meaning |", "|---|---|---|"]
                for name, schema in props.items():
                    lines.append(f"| `{name}` | {_schema(schema)} | {_cell(schema.get('description', ''))} |")
                lines.append("")
        lines += ["| status | meaning |", "|---|---|"]
        for code, response in op.get("responses", {}).items():
            lines.append(f"| {code} | {_cell(response.get('description', ''))} |")
    return "\n".join(lines) + "\n"
