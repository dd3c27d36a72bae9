"""Load, replay and other services' events through the real pipeline."""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable

import pytest
from confluent_kafka import Producer
from PIL import Image

from common.encoding import register_subjects
from common.store import ObjectStore
from read_model.view import StatusView
from schemas import ObjectRef, ResizeRequested, default_codec
from status_store.rebuild import rebuild
from tests.pipeline import Pipeline, jpeg_bytes

pytestmark = pytest.mark.e2e


@pytest.fixture(params=["single_object", "registry"])
def pipeline(request: pytest.FixtureRequest, pipeline_factory: Callable[..., Pipeline]) -> Pipeline:
    """The pipeline writing each encoding; requests produced below by "another service" stay single-object,
    so in registry mode the topics carry both."""
    if request.param == "single_object":
        return pipeline_factory()
    registry = request.getfixturevalue("schema_registry")
    started = pipeline_factory(event_encoding="registry", schema_registry_url=registry)
    register_subjects(started.settings)
    return started


def test_burst_of_300_jobs_from_16_clients(pipeline_factory: Callable[..., Pipeline]) -> None:
    pipeline = pipeline_factory(workers=2)
    task_ids = pipeline.submit_many(300, clients=16, image=jpeg_bytes(120, 90), width=40, height=30)
    assert len(set(task_ids)) == 300

    outcomes = [pipeline.wait_terminal(task_id, timeout=180)["status"] for task_id in task_ids]
    assert outcomes.count("SUCCESS") == 300
    with StatusView(pipeline.settings.view_path) as view:
        assert view.count() == 300
        assert view.count("SUCCESS") == 300


def _produce_request(pipeline: Pipeline, request: ResizeRequested) -> None:
    producer = Producer({"bootstrap.servers": pipeline.settings.kafka_bootstrap_servers, "acks": "all"})
    producer.produce(
        pipeline.settings.requests_topic, key=request.task_id.encode(), value=default_codec().encode(request)
    )
    assert producer.flush(30) == 0


def test_event_produced_straight_to_kafka_is_resized(pipeline: Pipeline) -> None:
    """Another service: put the original, produce ResizeRequested, read status and result over HTTP."""
    store = ObjectStore(pipeline.settings)
    task_id = str(uuid.uuid4())
    png = io.BytesIO()
    Image.new("RGBA", (300, 200), (10, 200, 10, 128)).save(png, "PNG")
    store.put(f"incoming/{task_id}.png", png.getvalue(), "image/png")
    _produce_request(
        pipeline,
        ResizeRequested(
            task_id=task_id,
            producer="other-service",
            source=ObjectRef(store.bucket, f"incoming/{task_id}.png"),
            width=90,
            mode="fit",
        ),
    )
    done = pipeline.wait_terminal(task_id)
    assert done["status"] == "SUCCESS", done
    result = pipeline.session.get(pipeline.url(f"/api/v1/images/result/{task_id}"), timeout=30)
    assert result.headers["Content-Type"] == "image/png"
    image = Image.open(io.BytesIO(result.content))
    assert image.size == (90, 60)
    assert image.mode == "RGBA"


def test_corrupt_and_missing_sources_fail_with_stable_codes(pipeline: Pipeline) -> None:
    store = ObjectStore(pipeline.settings)
    truncated = jpeg_bytes(400, 300)[:600]
    store.put("incoming/truncated.jpg", truncated, "image/jpeg")
    cases = {
        "corrupt_image": ObjectRef(store.bucket, "incoming/truncated.jpg"),
        "source_missing": ObjectRef(store.bucket, "incoming/never-uploaded.jpg"),
    }
    task_ids = {}
    for code, source in cases.items():
        task_ids[code] = str(uuid.uuid4())
        _produce_request(pipeline, ResizeRequested(task_id=task_ids[code], source=source, width=50, height=50))
    for code, task_id in task_ids.items():
        done = pipeline.wait_terminal(task_id)
        assert done["status"] == "FAILURE"
        assert done["error"]["code"] == code
        result = pipeline.session.get(pipeline.url(f"/api/v1/images/result/{task_id}"), timeout=30)
        assert result.status_code == 404
        assert result.json()["code"] == "task_failed"
    # The worker is still alive and serving after the failures.
    ok = pipeline.submit(jpeg_bytes(100, 100), width=10).json()["task_id"]
    assert pipeline.wait_terminal(ok)["status"] == "SUCCESS"


def test_rebuild_from_topics_gives_an_identical_task_table(pipeline: Pipeline) -> None:
    task_ids = [pipeline.submit(jpeg_bytes(90 + i, 60), width=30 + i).json()["task_id"] for i in range(12)]
    broken = str(uuid.uuid4())
    _produce_request(
        pipeline, ResizeRequested(task_id=broken, source=ObjectRef(pipeline.settings.s3_bucket, "absent"), width=5)
    )
    for task_id in [*task_ids, broken]:
        pipeline.wait_terminal(task_id)
    # Wait until the live view has folded everything the log holds.
    with StatusView(pipeline.settings.view_path) as live:
        before = live.task_table_dump()
    assert before.count("SUCCESS") == 12 and before.count("FAILURE") == 1

    fresh = pipeline.settings.view_path.with_name("fresh.sqlite3")
    rebuild(pipeline.settings, fresh)
    with StatusView(fresh) as rebuilt, StatusView(pipeline.settings.view_path) as live:
        assert rebuilt.task_table_dump() == live.task_table_dump()
        assert rebuilt.offsets() == live.offsets()

    # Rebuilding the live file in place, with its projector running, changes nothing either.
    rebuild(pipeline.settings)
    with StatusView(pipeline.settings.view_path) as live:
        assert live.task_table_dump() == before
    later = pipeline.submit(jpeg_bytes(50, 50), width=20).json()["task_id"]
    assert pipeline.wait_terminal(later)["status"] == "SUCCESS"
