"""The resize options are declared once (vocabulary.options); every other place that names them agrees with it."""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
from pathlib import Path
from typing import Any

from producer_api import validation
from producer_api.form import form_schema, upload_form
from resize_worker import engine
from schemas.client import option_names
from schemas.events import ResizeRequested, VariantSpec
from vocabulary.options import HTTP_OPTIONS, OPTION_NAMES, RULES, ResizeOptions

ROOT = Path(__file__).resolve().parents[2]


def _defaults(cls: type) -> dict[str, Any]:
    return {f.name: f.default for f in dataclasses.fields(cls)}


def _avro_fields(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["name"]: f for f in record["fields"]}


def _variant_record(request: dict[str, Any]) -> dict[str, Any]:
    variants = _avro_fields(request)["variants"]
    record: dict[str, Any] = variants["type"]["items"]
    return record


def test_every_option_has_a_rule_with_a_code_a_message_and_a_description() -> None:
    assert tuple(f.name for f in dataclasses.fields(ResizeOptions)) == OPTION_NAMES
    for name, rule in RULES.items():
        assert rule.code.startswith("invalid_") and rule.message and rule.doc, name


def test_the_event_records_carry_every_option_with_the_same_default() -> None:
    options = _defaults(ResizeOptions)
    for record in (VariantSpec, ResizeRequested):
        carried = _defaults(record)
        missing = set(options) - set(carried)
        assert not missing, f"{record.__name__} lacks {missing}"
        assert {name: carried[name] for name in options} == options, record.__name__
    assert option_names() == OPTION_NAMES


def test_the_avro_schemas_carry_every_option_with_the_same_default() -> None:
    request = json.loads((ROOT / "schemas" / "avro" / "ResizeRequested.avsc").read_text())
    options = _defaults(ResizeOptions)
    for record in (request, _variant_record(request)):
        fields = _avro_fields(record)
        for name, default in options.items():
            assert name in fields, f"{record['name']} lacks {name}"
            assert fields[name].get("default", "no default") == default, (record["name"], name)
            assert fields[name].get("doc"), (record["name"], name)


def test_the_form_the_variants_and_the_openapi_document_take_every_http_option() -> None:
    assert set(HTTP_OPTIONS) == set(OPTION_NAMES) - {"auto_quality"}
    model = upload_form(10_000)
    for name in HTTP_OPTIONS:
        assert model.model_fields[name].description == RULES[name].doc
    properties = form_schema(10_000)["properties"]
    assert set(HTTP_OPTIONS) <= set(properties)
    assert {"name", *HTTP_OPTIONS} == validation._VARIANT_KEYS
    assert properties["quality"]["anyOf"][1] == {"const": "auto", "type": "string"}
    # A bound taken from the settings, not copied: the form's width follows MAX_DIMENSION.
    assert upload_form(77).model_json_schema()["properties"]["width"]["anyOf"][0]["maximum"] == 77


def test_the_engine_takes_every_option_by_name() -> None:
    accepted = inspect.signature(engine.resize).parameters
    positional = [n for n, p in accepted.items() if p.kind is p.POSITIONAL_OR_KEYWORD][1:]
    assert positional == list(OPTION_NAMES[:4])
    assert any(p.kind is p.VAR_KEYWORD for p in accepted.values())
    # Every option reaches the target through the declaration itself.
    for name in OPTION_NAMES[4:]:
        assert name in {f.name for f in dataclasses.fields(engine.Target)}


def test_the_event_contract_page_names_every_option() -> None:
    page = (ROOT / "docs" / "EVENTS.md").read_text()
    for name in OPTION_NAMES:
        assert re.search(rf"`{name}`", page), name


def test_engine_limits_are_the_settings_defaults() -> None:
    from common.settings import Settings

    for name in ("max_pixels", "max_frames", "max_output_pixels", "max_dimension"):
        assert getattr(engine, f"DEFAULT_{name.upper()}") == Settings.model_fields[name].default
