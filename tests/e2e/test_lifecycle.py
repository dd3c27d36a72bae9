"""Deletion and expiry, end to end on real Kafka, a real S3 server and real SQLite views.

Every check of the store lists the bucket: an object is gone when no listing shows it.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from PIL import Image

from common.kafka import make_producer, produce_and_wait, records_to_end
from common.settings import Settings
from common.store import ObjectStore
from ops.replay import replay
from producer_api import create_app
from producer_api.auth import new_key
from read_model.view import StatusView
from schemas import Event, ResizeFailed, default_codec
from status_store.rebuild import rebuild
from tests.pipeline import Pipeline, jpeg_bytes

pytestmark = pytest.mark.e2e

BIN = Path(sys.executable).parent


def task_objects(settings: Settings, task_id: str) -> list[str]:
    store = ObjectStore(settings)
    return sorted(key for prefix in ("originals/", "results/") for key in store.keys(f"{prefix}{task_id}"))


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    """Seconds until `predicate` held; fails the test after `timeout`."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.05)
    return time.monotonic() - started


def events_of(settings: Settings, task_id: str) -> list[Event]:
    """Every event of the task in the results topic, as of now."""
    codec = default_codec()
    return [
        codec.decode(m.value())
        for m in records_to_end(settings, settings.results_topic, 20)
        if m.key() == task_id.encode()
    ]


def failures_of(settings: Settings, task_id: str) -> list[str]:
    return [e.error_code for e in events_of(settings, task_id) if isinstance(e, ResizeFailed)]


def succeeded(pipeline: Pipeline, headers: dict[str, str] | None = None, **fields: str) -> str:
    response = pipeline.session.post(
        pipeline.url("/api/v1/images/resize"),
        files={"file": ("a.jpg", jpeg_bytes(320, 240))},
        data=fields or {"width": "64"},
        headers=headers or {},
    )
    assert response.status_code == 202, response.text
    task_id = str(response.json()["task_id"])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        body = pipeline.session.get(pipeline.url(f"/api/v1/status/{task_id}"), headers=headers or {}).json()
        if body.get("status") == "SUCCESS":
            return task_id
        time.sleep(0.05)
    raise AssertionError(f"{task_id} did not succeed")


def warmed_up(pipeline: Pipeline) -> None:
    """One task through to its end, however it ends: the worker has joined its group and is quick from now on.

    With TTLs of seconds, a request that waits for the worker's first rebalance may expire before it is read.
    """
    task_id = pipeline.session.post(
        pipeline.url("/api/v1/images/resize"), files={"file": ("w.jpg", jpeg_bytes(32, 32))}, data={"width": "8"}
    ).json()["task_id"]

    def ended() -> bool:
        answer = pipeline.status(task_id)
        return answer.status_code != 200 or answer.json()["status"] in {"SUCCESS", "FAILURE"}

    wait_for(ended, 60, "the warm-up task ended")


def test_delete_erases_every_object_and_nothing_brings_the_task_back(pipeline_factory: Callable[..., Pipeline]) -> None:
    pipeline = pipeline_factory()
    settings = pipeline.settings
    task_id = succeeded(pipeline, sizes="200x200,100x100")
    before = task_objects(settings, task_id)
    assert f"originals/{task_id}" in before and f"results/{task_id}/200x200" in before, before

    deleted = pipeline.session.delete(pipeline.url(f"/api/v1/images/{task_id}"))
    assert deleted.status_code == 204, deleted.text
    took = wait_for(lambda: not task_objects(settings, task_id), 5, "every object of the task gone")
    print(f"objects gone {took:.2f} s after the DELETE answered")

    for path in (
        f"/api/v1/status/{task_id}",
        f"/api/v1/images/result/{task_id}",
        f"/api/v1/images/result/{task_id}/200x200",
    ):
        answer = pipeline.session.get(pipeline.url(path))
        assert answer.status_code == 410, (path, answer.text)
        assert answer.json()["code"] == "deleted"
    assert pipeline.session.delete(pipeline.url(f"/api/v1/images/{task_id}")).status_code == 204  # twice: no error

    rebuild(settings)
    assert pipeline.session.get(pipeline.url(f"/api/v1/status/{task_id}")).json()["code"] == "deleted"

    # A replay from the beginning skips the deleted task ...
    replay(settings, offset=0)
    # ... and a copy produced straight to a requests topic anyway finds its original gone.
    request = next(e for e in _requests_of(settings, task_id))
    produce_and_wait(make_producer(settings, "test"), settings.lane_plan[-1].requests_topic, task_id, request, 10)
    wait_for(lambda: "source_missing" in failures_of(settings, task_id), 30, "the copy's attempt failed")
    assert task_objects(settings, task_id) == []
    rebuild(settings)
    assert pipeline.session.get(pipeline.url(f"/api/v1/status/{task_id}")).status_code == 410


def _requests_of(settings: Settings, task_id: str) -> list[bytes]:
    return [m.value() for m in records_to_end(settings, settings.requests_topic, 20) if m.key() == task_id.encode()]


def test_only_the_owner_deletes_and_bad_ids_are_404(pipeline_factory: Callable[..., Pipeline]) -> None:
    owner_key, owner = new_key("owner")
    other_key, other = new_key("other")
    pipeline = pipeline_factory(api_keys=f"{owner},{other}", auth_required=True)
    task_id = succeeded(pipeline, headers={"X-API-Key": owner_key})

    for raw, key in (("not-a-uuid", owner_key), (str(uuid.uuid4()), owner_key), (task_id, other_key)):
        answer = pipeline.session.delete(pipeline.url(f"/api/v1/images/{raw}"), headers={"X-API-Key": key})
        assert answer.status_code == 404, answer.text
        assert answer.headers["Content-Type"] == "application/json"
        assert answer.json()["code"] == "not_found"
    assert len(task_objects(pipeline.settings, task_id)) == 2  # the other key's DELETE touched nothing
    unauthenticated = pipeline.session.delete(pipeline.url(f"/api/v1/images/{task_id}"))
    assert unauthenticated.status_code == 401
    assert (
        pipeline.session.delete(pipeline.url(f"/api/v1/images/{task_id}"), headers={"X-API-Key": owner_key}).status_code
        == 204
    )
    assert task_objects(pipeline.settings, task_id) == []


def test_delete_while_kafka_is_away_is_a_503_and_erases_nothing(pipeline_factory: Callable[..., Pipeline]) -> None:
    pipeline = pipeline_factory()
    task_id = succeeded(pipeline)
    # An API host of the same service whose broker does not answer (the same view file and bucket).
    cut_off = pipeline.settings.model_copy(
        update={"kafka_bootstrap_servers": "127.0.0.1:1", "produce_timeout_seconds": 1.5}
    )
    client: FlaskClient = create_app(cut_off).test_client()
    answer = client.delete(f"/api/v1/images/{task_id}")
    assert answer.status_code == 503, answer.text
    assert answer.headers["Retry-After"]
    assert answer.json["code"] == "broker_unavailable"
    assert len(task_objects(pipeline.settings, task_id)) == 2
    assert pipeline.session.get(pipeline.url(f"/api/v1/status/{task_id}")).json()["status"] == "SUCCESS"


def _slow_photo() -> bytes:
    """A noisy 35-megapixel JPEG (6.7 MB): its decode and five PNG encodes take seconds, time to delete it meanwhile."""
    size = (7000, 5000)
    image = Image.blend(Image.effect_noise(size, 12), Image.linear_gradient("L").resize(size), 0.5).convert("RGB")
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def test_a_delete_arriving_mid_resize_leaves_no_result(pipeline_factory: Callable[..., Pipeline]) -> None:
    pipeline = pipeline_factory(started_event_after_seconds=0.05)
    settings = pipeline.settings
    response = pipeline.session.post(
        pipeline.url("/api/v1/images/resize"),
        files={"file": ("big.jpg", _slow_photo())},
        data={"sizes": "4000x3000,3000x2000,2000x1500,1000x750,400x300", "format": "png"},
    )
    assert response.status_code == 202, response.text
    task_id = response.json()["task_id"]
    wait_for(
        lambda: pipeline.session.get(pipeline.url(f"/api/v1/status/{task_id}")).json()["status"] == "STARTED",
        30,
        "the resize started",
    )
    assert pipeline.session.delete(pipeline.url(f"/api/v1/images/{task_id}")).status_code == 204
    wait_for(lambda: bool(failures_of(settings, task_id)), 60, "the attempt ended")
    # The worker found its original gone after storing its results, and removed them.
    assert failures_of(settings, task_id) == ["source_deleted"]
    assert task_objects(settings, task_id) == []
    assert pipeline.session.get(pipeline.url(f"/api/v1/status/{task_id}")).json()["code"] == "deleted"


def test_expired_tasks_lose_their_objects_then_their_status(pipeline_factory: Callable[..., Pipeline]) -> None:
    ttl, status_ttl, sweep_every, grace = 3, 3, 1.0, 1.0
    pipeline = pipeline_factory(
        janitor=True,
        lifecycle_grace_seconds=grace,
        result_ttl_seconds=ttl,
        status_ttl_seconds=status_ttl,
        lifecycle_sweep_seconds=sweep_every,
        view_purge_seconds=0.5,
    )
    settings = pipeline.settings
    warmed_up(pipeline)
    task_id = succeeded(pipeline)
    body = pipeline.session.get(pipeline.url(f"/api/v1/status/{task_id}")).json()
    assert body["expires_at"] is not None
    written = time.monotonic()
    assert len(task_objects(settings, task_id)) == 2

    took = wait_for(lambda: not task_objects(settings, task_id), ttl + grace + sweep_every + 3, "expired objects gone")
    print(f"objects gone {took:.2f} s after the check (TTL {ttl} s, grace {grace} s, sweep every {sweep_every} s)")
    # Never before the status says expired: the grace covers a result written before its outcome.
    for path in (f"/api/v1/status/{task_id}", f"/api/v1/images/result/{task_id}"):
        answer = pipeline.session.get(pipeline.url(path))
        assert answer.status_code == 410, answer.text
        assert answer.json()["code"] == "expired"

    wait_for(
        lambda: pipeline.session.get(pipeline.url(f"/api/v1/status/{task_id}")).status_code == 404,
        ttl + status_ttl + 5,
        "the status forgotten",
    )
    assert time.monotonic() - written >= status_ttl
    with StatusView(settings.view_path, read_only=True) as view:
        wait_for(lambda: view.get(task_id) is None, 5, "the row dropped from the view")
    # A rebuild answers the same: the task is forgotten, not back.
    rebuild(settings)
    assert pipeline.session.get(pipeline.url(f"/api/v1/status/{task_id}")).status_code == 404


def test_a_janitor_killed_mid_sweep_resumes_and_spares_live_objects(
    pipeline_factory: Callable[..., Pipeline], tmp_path: Path
) -> None:
    pipeline = pipeline_factory(workers=0)
    settings = pipeline.settings.model_copy(
        update={
            "result_ttl_seconds": 1,
            "lifecycle_grace_seconds": 0.0,
            "original_ttl_seconds": 24 * 3600,
            "status_ttl_seconds": 0,
            "lifecycle_delete_rate": 150.0,
            "lifecycle_batch": 25,
            "lifecycle_sweep_seconds": 1.0,
        }
    )
    store = ObjectStore(settings)
    expired = [f"results/{uuid.uuid4()}" for _ in range(600)]
    live = [f"originals/{uuid.uuid4()}" for _ in range(100)]
    for key in [*expired, *live]:
        store.put(key, b"x" * 100, "image/jpeg")
    time.sleep(1.2)  # every result now past its 1 s TTL; the originals are a day from theirs

    env = {**os.environ, **settings.as_env(), "LOG_LEVEL": "INFO"}
    log = (tmp_path / "janitor.log").open("w")  # noqa: SIM115 - closed at the end; both janitors write to it
    first = subprocess.Popen([str(BIN / "store-janitor")], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: len(store.keys("results/")) < len(expired) - 50, 30, "the sweep under way")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        left = len(store.keys("results/"))
        assert 0 < left < len(expired), left  # killed mid-sweep
        second = subprocess.Popen([str(BIN / "store-janitor")], env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: not store.keys("results/"), 30, "the rest swept by the next janitor")
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(30)
    finally:
        if first.poll() is None:
            first.kill()
        log.close()
    assert sorted(store.keys("originals/")) == sorted(live)


def test_the_command_line_deletes_reports_and_sweeps(pipeline_factory: Callable[..., Pipeline]) -> None:
    pipeline = pipeline_factory(result_ttl_seconds=2, status_ttl_seconds=60, lifecycle_grace_seconds=0.0)
    settings = pipeline.settings
    warmed_up(pipeline)
    kept, removed = succeeded(pipeline), succeeded(pipeline)
    env = {**os.environ, **settings.as_env()}

    def imgresize(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(BIN / "imgresize"), *args], capture_output=True, text=True, timeout=120, env=env)

    deleted = imgresize("delete", removed, "--url", pipeline.base_url)
    assert deleted.returncode == 0 and "erased" in deleted.stdout, deleted.stderr
    assert task_objects(settings, removed) == []

    time.sleep(2.2)  # the kept task's original and result are past their 2 s TTL now
    status = imgresize("lifecycle", "status")
    assert status.returncode == 0, status.stdout + status.stderr
    assert "RESULT_TTL_SECONDS     2 s" in status.stdout
    assert "none: the store has no lifecycle" in status.stdout  # versitygw answers 501
    everything = len(ObjectStore(settings).keys("originals/")) + len(ObjectStore(settings).keys("results/"))
    assert everything >= 2 and f"{everything} expired" in status.stdout  # all written over 2 s ago
    assert status.stdout.count(" ok") == len(settings.lane_plan) + 1  # every requests topic and the results topic
    swept = imgresize("lifecycle", "run")
    assert swept.returncode == 0, swept.stderr
    assert f"deleted {everything} " in swept.stdout
    assert task_objects(settings, kept) == []
