"""The JSON bodies the API answers with, as typed dictionaries: the routes build them (mypy checks each key and
type), and the OpenAPI document's schemas are generated from them (pydantic), so the two cannot drift."""

from __future__ import annotations

from typing import Annotated, Any, Literal, NotRequired

from pydantic import ConfigDict, Field, TypeAdapter, with_config
from pydantic.json_schema import JsonSchemaValue
from typing_extensions import TypedDict

Uuid = Annotated[str, Field(json_schema_extra={"format": "uuid"})]
Time = Annotated[str | None, Field(json_schema_extra={"format": "date-time"})]
State = Literal["PENDING", "STARTED", "RETRY", "SUCCESS", "FAILURE"]

_DOCUMENTED = ConfigDict(use_attribute_docstrings=True)


@with_config(_DOCUMENTED)
class ErrorBody(TypedDict):
    """Every error, from the API and from the edge in front of it."""

    result: Literal["error"]
    message: str
    """What went wrong, for people."""
    code: str
    """A stable machine-readable code, e.g. not_an_image, rate_limited, expired."""


@with_config(_DOCUMENTED)
class AcceptedBody(TypedDict):
    """A submit's 202: the Celery-era body, exactly."""

    status: Literal["accepted"]
    message: str
    task_id: Uuid
    """The task's id: GET /api/v1/status/{task_id} (also in the Location header)."""


@with_config(_DOCUMENTED)
class DeletingBody(TypedDict):
    """A DELETE's 202: the deletion stands; the store erases the objects shortly."""

    task_id: Uuid
    status: Literal["DELETED"]
    erased: bool
    """False: the objects are erased later, by the janitor."""


@with_config(_DOCUMENTED)
class RequestedVariant(TypedDict):
    name: str
    width: int | None
    height: int | None
    mode: str | None
    format: str | None


@with_config(_DOCUMENTED)
class RequestedBody(TypedDict):
    """What the task asked for."""

    width: int | None
    height: int | None
    mode: str | None
    format: str | None
    variants: NotRequired[list[RequestedVariant]]
    """The requested variants, for a request with sizes or variants."""


@with_config(_DOCUMENTED)
class ResultBody(TypedDict):
    """The stored result (with variants: the first one)."""

    url: str
    """Where to GET the image."""
    content_type: str | None
    width: int | None
    height: int | None
    size_bytes: int | None
    source_width: int | None
    source_height: int | None
    quality: int | None
    """The encoder quality used (JPEG, WebP, AVIF; null: lossless, or a task finished before 0.4)."""
    score: float | None
    """With quality=auto: the SSIM the chosen quality met against the unencoded resize; else null."""


@with_config(_DOCUMENTED)
class VariantBody(TypedDict):
    name: str
    url: str
    """Where to GET this variant's image."""
    content_type: str
    width: int
    height: int
    size_bytes: int
    quality: int | None
    """The encoder quality used (JPEG, WebP, AVIF; null: lossless, or a task finished before 0.4)."""
    score: float | None
    """With quality=auto: the SSIM the chosen quality met against the unencoded resize; else null."""


@with_config(_DOCUMENTED)
class PointBody(TypedDict):
    x: float
    """0 left .. 1 right of the upright source."""
    y: float
    """0 top .. 1 bottom of the upright source."""


@with_config(_DOCUMENTED)
class BoxBody(TypedDict):
    x: float
    y: float
    width: float
    height: float


@with_config(_DOCUMENTED)
class SubjectBody(TypedDict):
    """What a content-aware crop (gravity face or smart) found in the source and centred on."""

    gravity: Literal["face", "smart"]
    """face, or smart when no face was found or the detector failed (see fallback)."""
    focus: PointBody
    """The point the crops centre on, as far as each output's frame allows."""
    boxes: list[BoxBody]
    """The faces found, relative to the upright source, largest first."""
    fallback: str | None
    """Why the gravity asked for was not the one used: no_face, detector_failed; null: it was."""


@with_config(_DOCUMENTED)
class TaskErrorBody(TypedDict):
    code: str
    """The failure's code, e.g. not_an_image, source_missing, resource_limit."""
    message: str | None


@with_config(_DOCUMENTED)
class StatusBody(TypedDict):
    """A task's status: the Celery-era state vocabulary plus the task's details."""

    task_id: Uuid
    status: State
    lane: str | None
    """The lane the request was queued in (null for tasks from before lanes)."""
    attempts: Annotated[int, Field(ge=0)]
    created_at: Time
    started_at: Time
    finished_at: Time
    expires_at: Time
    """When the result and the task expire (410 expired after); null: kept for ever."""
    request: RequestedBody
    result: NotRequired[ResultBody]
    """Once the task succeeded."""
    variants: NotRequired[list[VariantBody]]
    """One entry per requested variant, once the task succeeded."""
    subjects: NotRequired[list[SubjectBody]]
    """What the face and smart crops found, once per gravity, once the task succeeded (for a client to show
    or correct with focus=X,Y)."""
    error: NotRequired[TaskErrorBody]
    """The last failure, while retrying or for good."""


BODIES: dict[str, Any] = {
    "Error": ErrorBody,
    "Accepted": AcceptedBody,
    "Deleting": DeletingBody,
    "Status": StatusBody,
}


def component_schemas() -> dict[str, JsonSchemaValue]:
    """OpenAPI components for every body, nested ones included, referenced as #/components/schemas/<name>."""
    adapters = [(name, "serialization", TypeAdapter(body)) for name, body in BODIES.items()]
    by_key, top = TypeAdapter.json_schemas(adapters, ref_template="#/components/schemas/{model}")  # type: ignore[arg-type]
    schemas: dict[str, JsonSchemaValue] = dict(top.get("$defs", {}))
    for (name, _), schema in by_key.items():
        if "$ref" in schema:
            target = schema["$ref"].rsplit("/", 1)[-1]
            schemas[name] = schemas.pop(target) if target != name else schemas[target]
        else:
            schemas[name] = schema
    return schemas
