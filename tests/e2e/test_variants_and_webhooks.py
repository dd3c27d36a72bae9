"""Variants and webhooks through the real pipeline: Kafka, S3, SQLite, HTTP on both ends."""

from __future__ import annotations

import io
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from confluent_kafka import Producer
from PIL import Image

from common import metrics
from common.store import ObjectStore
from ops.dead_letters import read_dead_letters, republish
from producer_api.auth import hash_key
from schemas import ObjectRef, ResizeRequested, default_codec
from schemas.webhook import EVENT_ID_HEADER, SIGNATURE_HEADER, verify
from tests.pipeline import Pipeline, jpeg_bytes
from webhook_notifier.notifier import WebhookNotifier

pytestmark = pytest.mark.e2e
SECRET = "webhook-test-secret"


def test_sizes_give_one_result_per_variant_and_status_lists_them(pipeline: Pipeline) -> None:
    response = pipeline.submit(jpeg_bytes(1200, 900), sizes="100x100,400x,x60", format="webp")
    assert response.status_code == 202, response.text
    task_id = response.json()["task_id"]
    pending = pipeline.status(task_id).json()
    assert [v["name"] for v in pending["request"]["variants"]] == ["100x100", "400x", "x60"]

    done = pipeline.wait_terminal(task_id)
    assert done["status"] == "SUCCESS", done
    expected = {"100x100": (100, 100), "400x": (400, 300), "x60": (80, 60)}
    assert [v["name"] for v in done["variants"]] == list(expected)
    for variant in done["variants"]:
        image_response = pipeline.session.get(pipeline.url(variant["url"]), timeout=30)
        assert image_response.status_code == 200
        assert image_response.headers["Content-Type"] == "image/webp"
        assert int(image_response.headers["Content-Length"]) == variant["size_bytes"]
        image = Image.open(io.BytesIO(image_response.content))
        assert (image.format, image.size) == ("WEBP", expected[variant["name"]])
        assert (variant["width"], variant["height"]) == expected[variant["name"]]
    # The plain result URL serves the first variant; an unknown name is a JSON 404.
    first = pipeline.session.get(pipeline.url(done["result"]["url"]), timeout=30)
    assert Image.open(io.BytesIO(first.content)).size == (100, 100)
    missing = pipeline.session.get(pipeline.url(f"/api/v1/images/result/{task_id}/nope"), timeout=30)
    assert missing.status_code == 404 and missing.json()["code"] == "unknown_variant"
    keys = ObjectStore(pipeline.settings).keys()
    assert sorted(k for k in keys if k.startswith("results/")) == sorted(f"results/{task_id}/{n}" for n in expected)


def test_json_variants_each_with_their_own_format(pipeline: Pipeline) -> None:
    spec = [
        {"name": "thumb", "width": 64, "height": 64, "format": "png"},
        {"name": "card", "width": 300, "height": 200, "mode": "pad", "format": "jpeg", "quality": 60},
    ]
    response = pipeline.submit(jpeg_bytes(800, 800), variants=json.dumps(spec))
    assert response.status_code == 202, response.text
    done = pipeline.wait_terminal(response.json()["task_id"])
    assert done["status"] == "SUCCESS", done
    got = {v["name"]: (v["content_type"], v["width"], v["height"]) for v in done["variants"]}
    assert got == {"thumb": ("image/png", 64, 64), "card": ("image/jpeg", 300, 200)}


@dataclass
class Receiver:
    """A webhook receiver on loopback that answers from a script of status codes."""

    answers: list[int]
    calls: list[tuple[float, dict[str, str], bytes]] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)
    url: str = ""

    def wait_for(self, count: int, timeout: float = 60.0) -> list[tuple[float, dict[str, str], bytes]]:
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.calls) >= count, timeout), self.calls
            return list(self.calls)


@pytest.fixture
def receiver_factory() -> Iterator[Callable[..., Receiver]]:
    servers: list[ThreadingHTTPServer] = []

    def start(answers: list[int] | None = None, delay: float = 0.0) -> Receiver:
        state = Receiver(answers=answers or [])

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server hook name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                time.sleep(delay)
                with state.arrived:
                    status = state.answers[len(state.calls)] if len(state.calls) < len(state.answers) else 200
                    state.calls.append((time.monotonic(), dict(self.headers), body))
                    state.arrived.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        state.url = f"http://127.0.0.1:{server.server_port}/hooks/imgresize?source=test"
        return state

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def receiver(receiver_factory: Callable[..., Receiver]) -> Receiver:
    return receiver_factory()


WEBHOOKS = {
    "webhook_secret": SECRET,
    "webhook_backoff_seconds": 0.3,
    "webhook_timeout_seconds": 2.0,
}


def test_signed_webhook_is_retried_with_backoff_until_accepted(
    pipeline_factory: Callable[..., Pipeline], receiver: Receiver
) -> None:
    # The receiver is on loopback, so this deployment allows private callbacks by configuration.
    pipeline = pipeline_factory(
        notifier=True, webhook_allow_private=True, public_base_url="https://img.test", **WEBHOOKS
    )
    receiver.answers = [500, 503]
    response = pipeline.submit(jpeg_bytes(400, 300), sizes="40x30,200x", callback_url=receiver.url)
    assert response.status_code == 202, response.text
    task_id = response.json()["task_id"]

    calls = receiver.wait_for(3)
    times = [t for t, _, _ in calls]
    assert times[1] - times[0] >= 0.3 and times[2] - times[1] >= 0.6, times  # 0.3 s, then doubled
    for _, headers, body in calls:
        assert verify(SECRET, body, headers[SIGNATURE_HEADER])
        assert not verify("another-secret", body, headers[SIGNATURE_HEADER])
        assert headers["Content-Type"] == "application/json"
    payload = json.loads(calls[-1][2])
    assert calls[-1][1][EVENT_ID_HEADER] == payload["event_id"]
    assert payload["task_id"] == task_id and payload["status"] == "SUCCESS"
    assert payload["status_url"] == f"https://img.test/api/v1/status/{task_id}"
    assert [(v["name"], v["width"], v["height"]) for v in payload["variants"]] == [
        ("40x30", 40, 30),
        ("200x", 200, 150),
    ]
    time.sleep(1.0)
    assert len(receiver.calls) == 3, "an accepted webhook is not sent again"


def test_failure_is_announced_too(pipeline_factory: Callable[..., Pipeline], receiver: Receiver) -> None:
    pipeline = pipeline_factory(notifier=True, webhook_allow_private=True, **WEBHOOKS)
    truncated = jpeg_bytes(400, 300)[:1500]
    response = pipeline.submit(truncated, width=50, callback_url=receiver.url)
    assert response.status_code == 202, response.text
    _, headers, body = receiver.wait_for(1)[0]
    assert verify(SECRET, body, headers[SIGNATURE_HEADER])
    payload = json.loads(body)
    assert payload["status"] == "FAILURE" and payload["error"]["code"] == "corrupt_image"


def test_private_callback_is_refused_at_the_door_and_leaves_nothing(
    pipeline_factory: Callable[..., Pipeline], receiver: Receiver
) -> None:
    pipeline = pipeline_factory(notifier=True, **WEBHOOKS)
    for url in (receiver.url, "http://localhost/x", "http://169.254.169.254/latest", "http://[::1]/", "ftp://h/"):
        response = pipeline.submit(jpeg_bytes(60, 60), width=10, callback_url=url)
        assert response.status_code == 422, (url, response.text)
        assert response.json()["code"] == "invalid_callback_url"
    assert ObjectStore(pipeline.settings).keys() == []
    assert receiver.calls == []


def _produce(pipeline: Pipeline, request: ResizeRequested) -> None:
    producer = Producer({"bootstrap.servers": pipeline.settings.kafka_bootstrap_servers, "acks": "all"})
    producer.produce(
        pipeline.settings.requests_topic, key=request.task_id.encode(), value=default_codec().encode(request)
    )
    assert producer.flush(30) == 0


def test_private_callback_in_an_event_from_another_service_is_refused_at_send_time(
    pipeline_factory: Callable[..., Pipeline], receiver: Receiver
) -> None:
    """Events produced straight to Kafka skip the API's check; the notifier checks again."""
    pipeline = pipeline_factory(notifier=True, **WEBHOOKS)
    refused_before = metrics.WEBHOOK_DELIVERIES.labels("refused")._value.get()
    store = ObjectStore(pipeline.settings)
    task_id = str(uuid.uuid4())
    store.put(f"incoming/{task_id}", jpeg_bytes(100, 100), "image/jpeg")
    _produce(
        pipeline,
        ResizeRequested(
            task_id=task_id, source=ObjectRef(store.bucket, f"incoming/{task_id}"), width=20, callback_url=receiver.url
        ),
    )
    assert pipeline.wait_terminal(task_id)["status"] == "SUCCESS"
    deadline = time.monotonic() + 20
    while metrics.WEBHOOK_DELIVERIES.labels("refused")._value.get() == refused_before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert metrics.WEBHOOK_DELIVERIES.labels("refused")._value.get() == refused_before + 1
    assert receiver.calls == []


def test_undeliverable_webhook_goes_to_the_dead_letter_topic(
    pipeline_factory: Callable[..., Pipeline], receiver: Receiver
) -> None:
    pipeline = pipeline_factory(notifier=True, webhook_allow_private=True, **{**WEBHOOKS, "webhook_max_attempts": 2})
    receiver.answers = [500, 500]  # both attempts fail; a third would be accepted
    task_id = pipeline.submit(jpeg_bytes(60, 60), width=10, callback_url=receiver.url).json()["task_id"]
    receiver.wait_for(2)
    deadline = time.monotonic() + 20
    letters = read_dead_letters(pipeline.settings)
    while not letters and time.monotonic() < deadline:
        time.sleep(0.2)
        letters = read_dead_letters(pipeline.settings)
    assert [(letter.key, letter.error) for letter in letters] == [(task_id, "webhook undeliverable")]
    assert letters[0].header("dlq.source.topic") == pipeline.settings.results_topic
    assert len(receiver.calls) == 2

    # Once the receiver is back, the operator sends the dead letter round again.
    assert republish(pipeline.settings, letters) == 1
    calls = receiver.wait_for(3)
    assert calls[2][1][EVENT_ID_HEADER] == calls[0][1][EVENT_ID_HEADER]
    assert json.loads(calls[2][2])["task_id"] == task_id


def test_a_failing_receiver_does_not_hold_up_other_webhooks(
    pipeline_factory: Callable[..., Pipeline], receiver_factory: Callable[..., Receiver]
) -> None:
    settings = {**WEBHOOKS, "webhook_backoff_seconds": 2.0, "webhook_max_attempts": 5}
    pipeline = pipeline_factory(notifier=True, webhook_allow_private=True, **settings)
    down = receiver_factory(answers=[503] * 10)
    up = receiver_factory()
    pipeline.submit(jpeg_bytes(60, 60), width=10, callback_url=down.url)
    down.wait_for(1)
    for _ in range(5):
        assert pipeline.submit(jpeg_bytes(60, 60), width=10, callback_url=up.url).status_code == 202
    up.wait_for(5)
    # The other receiver's webhooks all arrived while the failing one is still in its backoff
    # (2, 4, 8, 16 s): retries wait in a schedule, not in front of the queue.
    assert len(down.calls) < 5, [t - down.calls[0][0] for t, _, _ in down.calls]


def test_a_slow_receiver_holds_only_its_own_share_of_the_attempts(
    pipeline_factory: Callable[..., Pipeline], receiver_factory: Callable[..., Receiver]
) -> None:
    settings = {**WEBHOOKS, "webhook_timeout_seconds": 10.0, "webhook_concurrency": 2, "webhook_host_concurrency": 1}
    pipeline = pipeline_factory(notifier=True, webhook_allow_private=True, **settings)
    slow = receiver_factory(delay=4.0)
    fast = receiver_factory()
    for _ in range(3):
        assert pipeline.submit(jpeg_bytes(60, 60), width=10, callback_url=slow.url).status_code == 202
    slow.wait_for(1)
    for _ in range(3):
        assert pipeline.submit(jpeg_bytes(60, 60), width=10, callback_url=fast.url).status_code == 202
    fast.wait_for(3, timeout=30)
    # Both attempt threads could have been the slow receiver's; the cap left one to the others.
    assert len(slow.calls) == 1


def test_an_unsettled_webhook_survives_a_notifier_restart(
    pipeline_factory: Callable[..., Pipeline], receiver: Receiver
) -> None:
    pipeline = pipeline_factory(**{**WEBHOOKS, "webhook_allow_private": True, "webhook_backoff_seconds": 60.0})
    settings = pipeline.settings
    receiver.answers = [500]
    first_stop = threading.Event()
    first = WebhookNotifier(settings)
    first_thread = threading.Thread(target=first.run, args=(first_stop,), daemon=True)
    first_thread.start()
    task_id = pipeline.submit(jpeg_bytes(60, 60), width=10, callback_url=receiver.url).json()["task_id"]
    receiver.wait_for(1)
    # Stopped during a 60 s backoff: the webhook is unsettled, so its offset was not stored.
    first_stop.set()
    first_thread.join(timeout=30)

    second_stop = threading.Event()
    second = WebhookNotifier(settings)
    second_thread = threading.Thread(target=second.run, args=(second_stop,), daemon=True)
    second_thread.start()
    try:
        calls = receiver.wait_for(2)
    finally:
        second_stop.set()
        second_thread.join(timeout=30)
    assert [json.loads(body)["task_id"] for _, _, body in calls] == [task_id, task_id]
    assert calls[0][1][EVENT_ID_HEADER] == calls[1][1][EVENT_ID_HEADER]
    assert verify(SECRET, calls[1][2], calls[1][1][SIGNATURE_HEADER])


def test_each_tenant_receives_webhooks_signed_with_its_own_secret_only(
    pipeline_factory: Callable[..., Pipeline], receiver_factory: Callable[..., Receiver]
) -> None:
    """A tenant's receiver holds its own secret: it cannot forge (or verify) another tenant's webhooks."""
    keys = {"alpha": "alpha-api-key-0123456789", "beta": "beta-api-key-0123456789"}
    own = {"alpha": "alpha-webhook-secret-new", "beta": "beta-webhook-secret-0123"}
    alpha_old = "alpha-webhook-secret-old"  # alpha is rotating: both of its secrets are valid for now
    pipeline = pipeline_factory(
        notifier=True,
        webhook_allow_private=True,
        auth_required=True,
        api_keys=",".join(f"{name}:{hash_key(key)}" for name, key in keys.items()),
        webhook_secrets=f"alpha:{own['alpha']},beta:{own['beta']},alpha:{alpha_old}",
        webhook_secret="",
        webhook_backoff_seconds=0.3,
    )
    received = {}
    for name, key in keys.items():
        receiver = receiver_factory()
        response = pipeline.session.post(
            pipeline.url("/api/v1/images/resize"),
            files={"file": ("a.jpg", jpeg_bytes(200, 150))},
            data={"width": "50", "height": "50", "callback_url": receiver.url},
            headers={"X-API-Key": key},
            timeout=30,
        )
        assert response.status_code == 202, response.text
        received[name] = receiver.wait_for(1)[0]
    for name, (_, headers, body) in received.items():
        other = "beta" if name == "alpha" else "alpha"
        assert verify(own[name], body, headers[SIGNATURE_HEADER])
        assert not verify(own[other], body, headers[SIGNATURE_HEADER])
        assert not verify(SECRET, body, headers[SIGNATURE_HEADER])
    assert verify(alpha_old, received["alpha"][2], received["alpha"][1][SIGNATURE_HEADER])
    assert not verify(alpha_old, received["beta"][2], received["beta"][1][SIGNATURE_HEADER])
    # With no shared secret, a key without one of its own cannot ask for webhooks at all.
    gamma = pipeline_factory(
        auth_required=True,
        api_keys=f"gamma:{hash_key('gamma-api-key-0123456789')}",
        webhook_secrets=f"alpha:{own['alpha']}",
        webhook_secret="",
        webhook_allow_private=True,
    )
    refused = gamma.session.post(
        gamma.url("/api/v1/images/resize"),
        files={"file": ("a.jpg", jpeg_bytes(200, 150))},
        data={"width": "50", "callback_url": "http://127.0.0.1:9/hook"},
        headers={"X-API-Key": "gamma-api-key-0123456789"},
        timeout=30,
    )
    assert refused.status_code == 422 and refused.json()["code"] == "webhooks_disabled", refused.text
