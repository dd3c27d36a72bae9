"""docs/reference/configuration.md from the settings model: every field's name, type, default, bounds, why."""

from __future__ import annotations

from typing import Any

from pydantic.fields import FieldInfo

from common.settings import Settings

# Where each group of settings begins, in declaration order (the model's own order is kept).
SECTIONS = [
    ("kafka_bootstrap_servers", "Infrastructure"),
    ("requests_topic", "Topics"),
    ("lanes", "Lanes"),
    ("api_keys", "Ingress (the API)"),
    ("worker_group", "Workers"),
    ("webhook_secret", "Webhooks"),
    ("event_encoding", "Events"),
    ("result_ttl_seconds", "Lifecycle"),
    ("view_path", "Status view"),
    ("metrics_port", "Metrics and logs"),
]


def _type(info: FieldInfo) -> str:
    shown = getattr(info.annotation, "__name__", None) or str(info.annotation)
    return str(shown).replace("typing.", "").replace("pydantic.types.", "")


def _default(name: str, info: FieldInfo) -> str:
    if info.default_factory is not None:
        return "computed per process" if name == "worker_id" else "computed"
    value: Any = info.default
    if value is None:
        return "unset"
    if hasattr(value, "get_secret_value"):
        return "(secret)" if value.get_secret_value() else '""'
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10_000:
        return f"{value:_}".replace("_", ",")
    return str(value).lower() if isinstance(value, bool) else str(value)


def _bounds(info: FieldInfo) -> str:
    found = []
    for item in info.metadata:
        for attr, sign in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            bound = getattr(item, attr, None)
            if bound is not None:
                found.append(f"{sign} {bound}")
    return ", ".join(found)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def undocumented() -> list[str]:
    """Settings whose declaration carries no description."""
    return [name for name, info in Settings.model_fields.items() if not (info.description or "").strip()]


def render() -> str:
    starts = dict(SECTIONS)
    lines = [
        "# Configuration",
        "",
        "Every setting is an environment variable: the upper-case name below. Generated from",
        "`common/settings.py` by `make docs`; a role with a malformed value stops at its start, saying which.",
        "",
    ]
    for name, info in Settings.model_fields.items():
        if name in starts:
            lines += [
                "",
                f"## {starts[name]}",
                "",
                "| setting | type | default | bounds | what it does |",
                "|---|---|---|---|---|",
            ]
        lines.append(
            f"| `{name.upper()}` | `{_cell(_type(info))}` | `{_cell(_default(name, info))}` | "
            f"{_bounds(info)} | {_cell(info.description or '')} |"
        )
    return "\n".join(lines) + "\n"
