"""The whole pipeline with EVENT_ENCODING=registry (Confluent's wire format through a real schema registry):
uploads, renditions, deletion and a rebuild; a registry that is away; a record with an unknown schema id."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import pytest

from common.encoding import register_subjects
from common.kafka import ensure_topics, make_producer, produce_and_wait, records_to_end
from common.settings import Settings
from common.store import ObjectStore
from ops.dead_letters import read_dead_letters
from status_store.rebuild import rebuild
from tests.pipeline import Pipeline, jpeg_bytes

pytestmark = pytest.mark.e2e


def registry_pipeline(pipeline_factory: Callable[..., Pipeline], schema_registry: str, **overrides: object) -> Pipeline:
    pipeline = pipeline_factory(event_encoding="registry", schema_registry_url=schema_registry, **overrides)
    register_subjects(pipeline.settings)
    return pipeline


def first_bytes(settings: Settings, topic: str) -> set[int]:
    """The first byte of every record now in `topic`."""
    return {(m.value() or b"?")[0] for m in records_to_end(settings, topic, 20)}


def test_uploads_renditions_deletion_and_rebuild_in_the_registry_format(
    pipeline_factory: Callable[..., Pipeline], schema_registry: str
) -> None:
    pipeline = registry_pipeline(pipeline_factory, schema_registry)
    settings = pipeline.settings
    accepted = pipeline.submit(jpeg_bytes(640, 480), sizes="200x200,100x")
    assert accepted.status_code == 202, accepted.text
    task_id = accepted.json()["task_id"]
    body = pipeline.wait_terminal(task_id)
    assert body["status"] == "SUCCESS" and [v["name"] for v in body["variants"]] == ["200x200", "100x"]
    image = pipeline.session.get(pipeline.url(f"/api/v1/images/result/{task_id}/100x"))
    assert image.status_code == 200 and image.content[:2] == b"\xff\xd8"
    other = pipeline.submit(jpeg_bytes(320, 240), width="64").json()["task_id"]
    assert pipeline.wait_terminal(other)["status"] == "SUCCESS"
    assert pipeline.session.delete(pipeline.url(f"/api/v1/images/{other}")).status_code == 204

    # Every event this pipeline wrote is in Confluent's format: 00, then the schema id.
    assert first_bytes(settings, settings.requests_topic) == {0}
    assert first_bytes(settings, settings.results_topic) == {0}
    rebuild(settings)
    assert pipeline.status(task_id).json()["status"] == "SUCCESS"
    assert pipeline.status(other).json()["code"] == "deleted"


def test_a_registry_that_is_away_refuses_uploads_with_nothing_stored(
    pipeline_factory: Callable[..., Pipeline], schema_registry: str
) -> None:
    # The topics and subjects exist (registered through the live registry); the API points at a dead one.
    live = pipeline_factory(workers=0, event_encoding="registry", schema_registry_url=schema_registry)
    register_subjects(live.settings)
    away = live.settings.model_copy(update={"schema_registry_url": "http://127.0.0.1:1/apis/ccompat/v7"})
    base = live.serve_api(away)
    answer = live.session.post(
        f"{base}/api/v1/images/resize", files={"file": ("a.jpg", jpeg_bytes(64, 48))}, data={"width": "32"}
    )
    assert answer.status_code == 503, answer.text
    assert answer.headers["Retry-After"] and answer.json()["code"] == "registry_unavailable"
    assert ObjectStore(away).keys("originals/") == []


def test_an_unknown_schema_id_is_dead_lettered_and_the_worker_goes_on(
    pipeline_factory: Callable[..., Pipeline], schema_registry: str
) -> None:
    pipeline = registry_pipeline(pipeline_factory, schema_registry)
    settings = pipeline.settings
    ensure_topics(settings)
    forged = b"\x00" + (424242).to_bytes(4, "big") + b"\x02\x04\x06"
    produce_and_wait(make_producer(settings, "test"), settings.requests_topic, str(uuid.uuid4()), forged, 10)
    task_id = pipeline.submit(jpeg_bytes(320, 240), width="50").json()["task_id"]
    assert pipeline.wait_terminal(task_id)["status"] == "SUCCESS"
    deadline = time.monotonic() + 30
    letters = []
    while time.monotonic() < deadline and not letters:
        letters = [letter for letter in read_dead_letters(settings) if letter.value == forged]
        time.sleep(0.5)
    assert letters and "unknown schema id 424242" in letters[0].error, [letter.error for letter in letters]
