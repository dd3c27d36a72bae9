"""The Celery-era HTTP contract, end to end on real Kafka, S3 and SQLite."""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable

import pytest
import requests
from confluent_kafka import Consumer
from PIL import Image

from common.kafka import high_watermarks, make_producer, produce_and_wait
from common.store import ObjectStore
from schemas import ObjectRef, ResizeRequested, default_codec
from tests.pipeline import Pipeline, jpeg_bytes

pytestmark = pytest.mark.e2e


def test_upload_resize_status_and_result(pipeline: Pipeline) -> None:
    response = pipeline.submit(jpeg_bytes(800, 600), width=200, height=100)
    assert response.status_code == 202, response.text
    body = response.json()
    assert set(body) == {"status", "message", "task_id"}
    assert body["status"] == "accepted" and body["message"] == "Upload complete"
    task_id = body["task_id"]
    assert str(uuid.UUID(task_id)) == task_id
    assert response.headers["Location"].endswith(f"/api/v1/status/{task_id}")

    # Right after the 202, the status is known (never 404).
    first = pipeline.status(task_id)
    assert first.status_code == 200
    assert first.json()["status"] in {"PENDING", "STARTED", "SUCCESS"}

    done = pipeline.wait_terminal(task_id)
    assert done["status"] == "SUCCESS", done
    assert done["result"]["width"] == 200 and done["result"]["height"] == 100
    assert done["result"]["source_width"] == 800
    assert done["created_at"] and done["finished_at"] and done["attempts"] == 1

    results = [pipeline.session.get(pipeline.url(f"/api/v1/images/result/{task_id}"), timeout=30) for _ in range(2)]
    for result in results:
        assert result.status_code == 200
        assert result.headers["Content-Type"] == "image/jpeg"
        assert int(result.headers["Content-Length"]) == len(result.content)
        assert result.headers["ETag"]
    assert results[0].content == results[1].content
    assert Image.open(io.BytesIO(results[0].content)).size == (200, 100)

    cached = pipeline.session.get(
        pipeline.url(f"/api/v1/images/result/{task_id}"),
        headers={"If-None-Match": results[0].headers["ETag"]},
        timeout=30,
    )
    assert cached.status_code == 304


def test_result_long_poll_answers_the_image_once_the_task_is_done(pipeline: Pipeline) -> None:
    task_id = pipeline.submit(jpeg_bytes(640, 480), width=120, height=90).json()["task_id"]
    result = pipeline.session.get(pipeline.url(f"/api/v1/images/result/{task_id}?wait=20"), timeout=30)
    assert result.status_code == 200, result.text
    assert Image.open(io.BytesIO(result.content)).size == (120, 90)

    bad = pipeline.session.get(pipeline.url(f"/api/v1/images/result/{task_id}?wait=31"), timeout=30)
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_wait"

    # A request whose original is not in the store fails in the worker (source_missing).
    failing = str(uuid.uuid4())
    request = ResizeRequested(task_id=failing, source=ObjectRef(pipeline.settings.s3_bucket, "incoming/none"), width=10)
    producer = make_producer(pipeline.settings, "test")
    produce_and_wait(producer, pipeline.settings.requests_topic, failing, default_codec().encode(request), 10)
    failed = pipeline.session.get(pipeline.url(f"/api/v1/images/result/{failing}?wait=20"), timeout=30)
    assert failed.status_code == 404 and failed.json()["code"] == "task_failed"
    assert "source_missing" in failed.json()["message"]


def test_a_submit_with_wait_answers_the_result_the_failure_or_the_usual_202(pipeline: Pipeline) -> None:
    def submit(data: bytes, query: str) -> requests.Response:
        return pipeline.session.post(
            pipeline.url(f"/api/v1/images/resize{query}"),
            files={"file": ("a.jpg", data)},
            data={"width": "120", "height": "90"},
            timeout=30,
        )

    done = submit(jpeg_bytes(640, 480), "?wait=20")
    assert done.status_code == 200, done.text
    assert done.headers["Content-Type"] == "image/jpeg"
    assert Image.open(io.BytesIO(done.content)).size == (120, 90)
    task_id = done.headers["Task-Id"]
    assert done.headers["Location"].endswith(f"/api/v1/status/{task_id}")
    assert pipeline.status(task_id).json()["status"] == "SUCCESS"
    again = pipeline.session.get(pipeline.url(f"/api/v1/images/result/{task_id}"), timeout=30)
    assert again.content == done.content and again.headers["ETag"] == done.headers["ETag"]

    # Passes the API's header checks, fails in the worker: the failure comes back on the submit.
    failed = submit(jpeg_bytes(400, 300)[:1500], "?wait=20")
    assert failed.status_code == 422, failed.text
    assert failed.json()["code"] == "task_failed" and "corrupt_image" in failed.json()["message"]
    assert pipeline.status(failed.headers["Task-Id"]).json()["status"] == "FAILURE"

    # Still running when the wait ends: the usual answer, and the task goes on.
    early = submit(jpeg_bytes(640, 480), "?wait=0.001")
    assert early.status_code == 202, early.text
    assert set(early.json()) == {"status", "message", "task_id"}
    assert pipeline.wait_terminal(early.json()["task_id"])["status"] == "SUCCESS"

    # A wait out of range is refused before anything is stored or produced.
    consumer = Consumer({"bootstrap.servers": pipeline.settings.kafka_bootstrap_servers, "group.id": "wm"})
    try:
        before = high_watermarks(consumer, pipeline.settings.requests_topic)
        bad = submit(jpeg_bytes(640, 480), "?wait=31")
        assert bad.status_code == 422 and bad.json()["code"] == "invalid_wait"
        assert high_watermarks(consumer, pipeline.settings.requests_topic) == before
    finally:
        consumer.close()


def test_results_large_and_small_are_served_whole_and_a_lost_object_is_a_json_404(pipeline: Pipeline) -> None:
    from bench.corpus import photo

    small = pipeline.submit(jpeg_bytes(400, 300), width=100).json()["task_id"]
    # A grainy PNG of ~1.1 MP is well over the 1 MiB that is read whole: this one is streamed.
    large = pipeline.submit(photo(1400, 788), width=1400, format="png").json()["task_id"]
    for task_id, fmt in ((small, "JPEG"), (large, "PNG")):
        done = pipeline.wait_terminal(task_id)
        assert done["status"] == "SUCCESS", done
        result = pipeline.session.get(pipeline.url(f"/api/v1/images/result/{task_id}"), timeout=30)
        assert result.status_code == 200
        assert int(result.headers["Content-Length"]) == len(result.content) == done["result"]["size_bytes"]
        assert Image.open(io.BytesIO(result.content)).format == fmt
    assert len(result.content) > 1024 * 1024

    store = ObjectStore(pipeline.settings)
    for task_id in (small, large):
        store.delete(f"results/{task_id}")
        gone = pipeline.session.get(pipeline.url(f"/api/v1/images/result/{task_id}"), timeout=30)
        assert gone.status_code == 404 and gone.json()["code"] == "result_missing"


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        (f"/api/v1/status/{uuid.uuid4()}", 404, "not_found"),
        ("/api/v1/status/not-a-uuid", 404, "not_found"),
        (f"/api/v1/images/result/{uuid.uuid4()}", 404, "not_found"),
        ("/api/v1/images/result/12345", 404, "not_found"),
        ("/no/such/route", 404, "not_found"),
    ],
)
def test_unknown_ids_and_routes_are_json_404(pipeline: Pipeline, path: str, status: int, code: str) -> None:
    response = pipeline.session.get(pipeline.url(path), timeout=30)
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/json"
    assert response.json()["result"] == "error"
    assert response.json()["code"] == code


def test_wrong_method_is_json_405(pipeline: Pipeline) -> None:
    response = pipeline.session.get(pipeline.url("/api/v1/images/resize"), timeout=30)
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


def _log_end(pipeline: Pipeline) -> int:
    consumer = Consumer({"bootstrap.servers": pipeline.settings.kafka_bootstrap_servers, "group.id": "probe"})
    try:
        return sum(high_watermarks(consumer, pipeline.settings.requests_topic, timeout=10).values())
    finally:
        consumer.close()


INVALID = [
    ({"width": 0, "height": 10}, "image.jpg", True, "invalid_dimension"),
    ({"width": 10001, "height": 10}, "image.jpg", True, "invalid_dimension"),
    ({"width": "abc", "height": 10}, "image.jpg", True, "invalid_dimension"),
    ({"width": "12.5", "height": 10}, "image.jpg", True, "invalid_dimension"),
    ({"width": -5}, "image.jpg", True, "invalid_dimension"),
    ({}, "image.jpg", True, "missing_dimension"),
    ({"width": 10, "mode": "squash"}, "image.jpg", True, "invalid_mode"),
    ({"width": 10, "format": "bmp"}, "image.jpg", True, "invalid_format"),
    ({"width": 10, "height": 10}, None, False, "missing_file"),
    ({"width": 10, "height": 10}, "photo.jpg", "garbage", "not_an_image"),
    ({"width": 10, "height": 10}, "photo.jpg", "empty", "empty_file"),
    ({"sizes": "100xx"}, "image.jpg", True, "invalid_sizes"),
    ({"sizes": "10x10", "width": 5}, "image.jpg", True, "invalid_variants"),
    ({"variants": '[{"name":"a","width":10},{"name":"a","width":20}]'}, "image.jpg", True, "invalid_variants"),
    ({"variants": "not json"}, "image.jpg", True, "invalid_variants"),
    ({"variants": '[{"name":"a","width":10,"mode":"squash"}]'}, "image.jpg", True, "invalid_mode"),
    ({"width": 10, "callback_url": "https://example.com/hook"}, "image.jpg", True, "webhooks_disabled"),
]


@pytest.mark.parametrize(("fields", "filename", "payload", "code"), INVALID)
def test_invalid_input_is_json_422_and_leaves_nothing(
    pipeline: Pipeline, fields: dict[str, object], filename: str | None, payload: object, code: str
) -> None:
    form = {k: str(v) for k, v in fields.items()}
    files = None
    if filename is not None:
        data = {True: jpeg_bytes(64, 48), "garbage": b"this is not a jpeg at all" * 20, "empty": b""}[payload]  # type: ignore[index]
        files = {"file": (filename, data, "image/jpeg")}
    response = pipeline.session.post(pipeline.url("/api/v1/images/resize"), data=form, files=files, timeout=30)
    assert response.status_code == 422, response.text
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {"result": "error", "message": response.json()["message"], "code": code}
    assert ObjectStore(pipeline.settings).keys() == []
    assert _log_end(pipeline) == 0


def test_body_over_the_limit_is_json_413(pipeline_factory: Callable[..., Pipeline]) -> None:
    pipeline = pipeline_factory(max_upload_bytes=100_000)
    response = pipeline.submit(b"\xff\xd8\xff" + b"\0" * 200_000, width=10, height=10)
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert ObjectStore(pipeline.settings).keys() == []


def test_status_on_another_replica_right_after_202(pipeline: Pipeline, tmp_path: object) -> None:
    """A replica with its own view, fed only by its projector, never answers 404 for an accepted task."""
    other_settings = pipeline.settings.model_copy(
        update={"view_path": pipeline.settings.view_path.with_name("replica.sqlite3")}
    )
    pipeline.start_projector(other_settings)
    replica = pipeline.serve_api(other_settings)
    for _ in range(5):
        task_id = pipeline.submit(jpeg_bytes(64, 48), width=32).json()["task_id"]
        response = pipeline.status(task_id, base_url=replica)
        assert response.status_code == 200, response.text
        assert response.json()["task_id"] == task_id
