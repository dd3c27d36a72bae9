"""Kafka is a trust boundary too: events produced straight to the topics cannot make the service
read what it should not, or serve what it did not make."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
import requests
from confluent_kafka import Producer

from common.store import ObjectStore
from schemas import ObjectRef, ResizeCompleted, ResizeFailed, ResizeRequested, StoredImage, default_codec
from schemas.events import Event, VariantSpec
from tests.pipeline import Pipeline, jpeg_bytes

pytestmark = pytest.mark.e2e


def _produce(pipeline: Pipeline, topic: str, event: Event) -> None:
    producer = Producer({"bootstrap.servers": pipeline.settings.kafka_bootstrap_servers, "acks": "all"})
    producer.produce(topic, key=event.task_id.encode(), value=default_codec().encode(event))
    assert producer.flush(30) == 0


def _completion(task_id: str, result: StoredImage, attempt: int) -> ResizeCompleted:
    """An outcome as a producer writing straight to Kafka would send it, for a 60x40 source."""
    return ResizeCompleted(
        task_id=task_id, result=result, source_width=60, source_height=40, duration_ms=1, attempt=attempt
    )


def _request(pipeline: Pipeline, bucket: str, key: str, **fields: object) -> dict[str, object]:
    task_id = str(uuid.uuid4())
    request = ResizeRequested(task_id=task_id, source=ObjectRef(bucket, key), width=40, **fields)  # type: ignore[arg-type]
    _produce(pipeline, pipeline.settings.requests_topic, request)
    return pipeline.wait_terminal(task_id)


def test_direct_requests_cannot_read_outside_the_allowed_sources(pipeline: Pipeline) -> None:
    store = ObjectStore(pipeline.settings)
    # Another tenant's upload through the API: its original is originals/<its task id>.
    theirs = pipeline.submit(jpeg_bytes(60, 40), width=20).json()["task_id"]
    assert pipeline.wait_terminal(theirs)["status"] == "SUCCESS"
    store.put("private/payroll.jpg", jpeg_bytes(60, 40), "image/jpeg")
    store.put("incoming/ok.jpg", jpeg_bytes(60, 40), "image/jpeg")
    for bucket, key in [
        (store.bucket, f"originals/{theirs}"),  # another task's upload
        (store.bucket, "private/payroll.jpg"),  # outside the allowed prefixes
        ("another-bucket", "incoming/ok.jpg"),  # a bucket the workers are not given
        (store.bucket, "incoming/../private/payroll.jpg"),
    ]:
        done = _request(pipeline, bucket, key)
        assert done["status"] == "FAILURE" and done["error"]["code"] == "source_not_allowed", (key, done)
    assert _request(pipeline, store.bucket, "incoming/ok.jpg")["status"] == "SUCCESS"


def test_the_variant_cap_holds_for_direct_requests(pipeline: Pipeline) -> None:
    ObjectStore(pipeline.settings).put("incoming/v.jpg", jpeg_bytes(60, 40), "image/jpeg")
    many = tuple(VariantSpec(f"v{n}", 10) for n in range(200))
    done = _request(pipeline, pipeline.settings.s3_bucket, "incoming/v.jpg", variants=many)
    assert done["status"] == "FAILURE" and done["error"]["code"] == "invalid_request", done


def test_a_forged_completion_is_not_served(pipeline: Pipeline) -> None:
    store = ObjectStore(pipeline.settings)
    html = b"<script>fetch('/api/v1/status').then(r => r.text())</script>"
    store.put("incoming/page.html", html, "text/html")
    task_id = pipeline.submit(jpeg_bytes(60, 40), width=20).json()["task_id"]
    assert pipeline.wait_terminal(task_id)["status"] == "SUCCESS"
    genuine = requests.get(pipeline.url(f"/api/v1/images/result/{task_id}"), timeout=30)
    assert genuine.status_code == 200
    assert genuine.headers["X-Content-Type-Options"] == "nosniff"
    assert genuine.headers["Content-Security-Policy"].startswith("default-src 'none'")
    # A later outcome for the same task, produced straight to Kafka, points at the HTML object.
    forged = _completion(
        task_id, StoredImage(store.bucket, "incoming/page.html", "text/html", 1, 1, len(html), "e"), attempt=9
    )
    _produce(pipeline, pipeline.settings.results_topic, forged)
    deadline_reads = 0
    while pipeline.status(task_id).json().get("result", {}).get("content_type") != "text/html":
        deadline_reads += 1
        assert deadline_reads < 600, "the forged outcome never reached the view"
    answer = requests.get(pipeline.url(f"/api/v1/images/result/{task_id}"), timeout=30)
    assert answer.status_code == 404
    assert html not in answer.content


def test_an_outcome_dated_far_ahead_does_not_win_its_task_for_ever(
    pipeline_factory: Callable[..., Pipeline],
) -> None:
    """A ResizeFailed dated 9999 produced straight to Kafka is folded at its record's log time (skew 0 here):
    a later genuine outcome still supersedes it."""
    pipeline = pipeline_factory(event_clock_skew_seconds=0)
    task_id = pipeline.submit(jpeg_bytes(60, 40), width=20).json()["task_id"]
    genuine = pipeline.wait_terminal(task_id)
    assert genuine["status"] == "SUCCESS"
    forged = ResizeFailed(
        task_id=task_id,
        occurred_at=datetime(9999, 1, 1, tzinfo=UTC),
        attempt=9,
        error_code="internal_error",
        error_message="forged",
    )
    _produce(pipeline, pipeline.settings.results_topic, forged)
    reads = 0
    while (body := pipeline.status(task_id).json())["status"] != "FAILURE":
        reads += 1
        assert reads < 600, "the forged outcome never reached the view"
    assert not body["finished_at"].startswith("9999")
    assert datetime.fromisoformat(body["finished_at"]) <= datetime.now(UTC)

    result = genuine["result"]
    stored = StoredImage(
        pipeline.settings.s3_bucket,
        f"results/{task_id}",
        result["content_type"],
        result["width"],
        result["height"],
        result["size_bytes"],
        "e",
    )
    redo = _completion(task_id, stored, attempt=10)
    _produce(pipeline, pipeline.settings.results_topic, redo)
    reads = 0
    while pipeline.status(task_id).json()["status"] != "SUCCESS":
        reads += 1
        assert reads < 600, "a later genuine outcome did not supersede the far-future one"
