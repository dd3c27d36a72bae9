"""The upload form's fields as a pydantic model: it validates them, and the OpenAPI document is generated from it.

One model per size limit (MAX_DIMENSION is a setting), made once. Multipart
fields arrive as strings: an empty one is left out (the option's default), and
each other is parsed by the same rules before pydantic sees it (ASCII digits
only, case-insensitive names); the model's types and bounds are what the
document shows.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, create_model

from producer_api.errors import ApiError
from vocabulary.options import (
    ALL_GRAVITIES,
    AUTO,
    HTTP_OPTIONS,
    MODES,
    OUTPUT_FORMATS,
    QUALITY_RANGE,
    RULES,
    parse_focus,
)

_ASCII_INTEGER = re.compile(r"[0-9]{1,6}")
BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
FORMATS = (*OUTPUT_FORMATS, "auto")


def _integer(value: Any) -> Any:
    """An integer from ASCII digits only: int() and str.isdigit() also take other scripts' digits."""
    if isinstance(value, str):
        text = value.strip()
        if not _ASCII_INTEGER.fullmatch(text):
            raise ValueError("not an integer")
        return int(text)
    return value


def _name(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


def _boolean(value: Any) -> Any:
    value = _name(value)
    if isinstance(value, str):
        if value not in BOOLEANS:
            raise ValueError("not a boolean")
        return BOOLEANS[value]
    return value


_Name = BeforeValidator(_name)


def _quality(value: Any) -> Any:
    value = _name(value)
    return value if value == AUTO else _integer(value)


def _focus(value: Any) -> Any:
    if isinstance(value, str):
        parse_focus(value)  # ValueError: a 422 invalid_focus
        return value.strip()
    return value


# Each option's pydantic type for the form, by its declaration's name; a new option without one fails here.
def _form_types(max_dimension: int) -> dict[str, tuple[Any, Any]]:
    # The bounds go on the integer inside the optional, so an absent field is not compared.
    dimension = Annotated[Annotated[int, Field(ge=1, le=max_dimension)] | None, BeforeValidator(_integer)]
    low, high = QUALITY_RANGE
    return {
        "width": (dimension, None),
        "height": (dimension, None),
        "mode": (Annotated[Literal[MODES], _Name], "fill"),  # type: ignore[valid-type]
        "format": (Annotated[Literal[FORMATS] | None, _Name], None),  # type: ignore[valid-type]
        "quality": (
            Annotated[Annotated[int, Field(ge=low, le=high)] | Literal["auto"] | None, BeforeValidator(_quality)],
            None,
        ),
        "gravity": (Annotated[Literal[ALL_GRAVITIES], _Name], "centre"),  # type: ignore[valid-type]
        "upscale": (Annotated[bool | None, BeforeValidator(_boolean)], None),
        "focus": (
            Annotated[str | None, BeforeValidator(_focus), Field(pattern=r"^\s*[0-9.]+\s*,\s*[0-9.]+\s*$")],
            None,
        ),
    }


@functools.lru_cache(maxsize=8)
def upload_form(max_dimension: int) -> type[BaseModel]:
    """The model of the form's fields (all but the file) for this size limit."""
    types = _form_types(max_dimension)
    if set(types) != set(HTTP_OPTIONS):
        raise RuntimeError(f"the form has no type for {sorted(set(HTTP_OPTIONS) ^ set(types))}")
    fields: dict[str, Any] = {
        name: (kind, Field(default, description=RULES[name].doc)) for name, (kind, default) in types.items()
    }
    fields.update(
        {
            "sizes": (
                str | None,
                Field(
                    None,
                    description="Several outputs from one upload, e.g. 100x100,400x400,800x; each is named after its "
                    "size. Instead of width and height.",
                    examples=["100x100,400x400"],
                ),
            ),
            "variants": (
                str | None,
                Field(
                    None,
                    description="Several outputs as a JSON list of objects with name, "
                    + ", ".join(HTTP_OPTIONS)
                    + "; unset fields take the form's top-level values. Instead of width, height and sizes.",
                    examples=['[{"name":"thumb","width":100,"height":100,"format":"webp"}]'],
                ),
            ),
            "priority": (
                str | None,
                Field(
                    None,
                    description="The lane: interactive (a person waits) or bulk (imports, batches), or another lane "
                    "of LANES. Default: the API key's default lane. A key is served at most in its ceiling lane, and "
                    "first-lane uploads over its allowance go to the next lane; the status shows the lane used.",
                    examples=["bulk"],
                ),
            ),
            "callback_url": (
                str | None,
                Field(
                    None,
                    description="http(s) URL that receives a JSON POST signed with HMAC-SHA256 "
                    "(X-Imgresize-Signature) when the task succeeds or fails. Private and loopback addresses "
                    "are refused.",
                    json_schema_extra={"format": "uri"},
                ),
            ),
        }
    )
    return create_model(  # type: ignore[call-overload, no-any-return]
        "UploadForm", __config__=ConfigDict(extra="ignore"), **fields
    )


def validated_options(form: Mapping[str, str], max_dimension: int) -> BaseModel:
    """The option fields of `form`, validated; a 422 with the field's own code if one is wrong."""
    # An empty field is an absent one: it takes the option's default.
    given = {name: form[name] for name in HTTP_OPTIONS if str(form.get(name) or "").strip()}
    try:
        return upload_form(max_dimension).model_validate(given)
    except ValidationError as e:
        name = str(e.errors()[0]["loc"][0])
        # The option's own code and message (its declaration's), whatever pydantic calls the failure.
        code, message = RULES[name].code, RULES[name].message
        raise ApiError(422, code, message.format(max_dimension=max_dimension)) from None


def form_schema(max_dimension: int) -> dict[str, Any]:
    """The multipart body's JSON schema: the file, and the model's fields as a form sends them (no nulls)."""
    generated = upload_form(max_dimension).model_json_schema()
    properties: dict[str, Any] = {"file": {"type": "string", "format": "binary"}}
    for name, schema in generated["properties"].items():
        branches = [b for b in schema.pop("anyOf", []) if b.get("type") != "null"]
        if len(branches) == 1:
            schema.update(branches[0])
        elif branches:
            schema["anyOf"] = branches
        schema.pop("title", None)
        if schema.get("default") is None:
            schema.pop("default", None)
        properties[name] = schema
    return {"type": "object", "required": ["file"], "properties": properties}
