"""The whole pipeline on real Kafka, S3 and SQLite as fixtures: HTTP server, workers and projector."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from flask import Flask
from PIL import Image
from werkzeug.serving import BaseWSGIServer, make_server

from common.kafka import ensure_topics
from common.settings import Settings
from common.store import ObjectStore
from producer_api import create_app
from resize_worker.worker import ResizeWorker
from status_store.projector import Projector
from store_janitor.janitor import Janitor
from webhook_notifier.notifier import WebhookNotifier

TERMINAL = {"SUCCESS", "FAILURE"}


def jpeg_bytes(width: int = 640, height: int = 480, color: tuple[int, int, int] = (200, 40, 40)) -> bytes:
    image = Image.new("RGB", (width, height), color)
    # A gradient, so resizes have real content to get wrong.
    for x in range(0, width, 8):
        image.paste((x % 256, 80, 255 - x % 256), (x, 0, x + 4, height))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


@dataclass
class Pipeline:
    settings: Settings
    base_url: str
    stop: threading.Event
    threads: list[threading.Thread] = field(default_factory=list)
    servers: list[BaseWSGIServer] = field(default_factory=list)
    closers: list[Callable[[], None]] = field(default_factory=list)
    apps: list[Flask] = field(default_factory=list)
    workers: list[ResizeWorker] = field(default_factory=list)
    session: requests.Session = field(default_factory=requests.Session)

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def submit(self, data: bytes, filename: str = "image.jpg", **fields: Any) -> requests.Response:
        form = {k: str(v) for k, v in fields.items()}
        return self.session.post(
            self.url("/api/v1/images/resize"), files={"file": (filename, data)}, data=form, timeout=30
        )

    def submit_many(self, count: int, clients: int = 16, image: bytes | None = None, **fields: Any) -> list[str]:
        """`count` uploads from `clients` threads, each with its own connection; every one must be a 202."""
        data = image or jpeg_bytes(160, 120)
        form = {k: str(v) for k, v in (fields or {"width": 64, "height": 64}).items()}

        def one(i: int) -> str:
            with requests.Session() as session:
                response = session.post(
                    self.url("/api/v1/images/resize"), files={"file": (f"{i}.jpg", data)}, data=form, timeout=60
                )
            assert response.status_code == 202, response.text
            return str(response.json()["task_id"])

        with ThreadPoolExecutor(clients) as pool:
            return list(pool.map(one, range(count)))

    def status(self, task_id: str, base_url: str | None = None) -> requests.Response:
        return self.session.get(f"{base_url or self.base_url}/api/v1/status/{task_id}", timeout=30)

    def wait_terminal(self, task_id: str, timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            response = self.status(task_id)
            assert response.status_code == 200, response.text
            body = response.json()
            if body["status"] in TERMINAL:
                return body  # type: ignore[no-any-return]
            time.sleep(0.05)
        raise AssertionError(f"task {task_id} not finished in {timeout}s: {body}")

    def serve_api(self, settings: Settings) -> str:
        """Another API replica (own view file) on its own port; returns its base URL."""
        app = create_app(settings)
        self.apps.append(app)
        server = make_server("127.0.0.1", 0, app, threaded=True)
        self.servers.append(server)
        # shutdown() waits for the serving loop's next look at its flag: 0.5 s at the default interval.
        self._spawn(lambda: server.serve_forever(poll_interval=0.02), "api")
        self.closers.append(app.extensions["ingress"].close)
        return f"http://127.0.0.1:{server.server_port}"

    def start_projector(self, settings: Settings) -> None:
        projector = Projector(settings)
        self._spawn(lambda: projector.run(self.stop), "projector")
        self.closers.append(projector.close)

    def start_worker(self) -> None:
        # Workers of one process would share its default worker id, and with it a transactional.id:
        # each would fence the other. Separate worker processes have ids of their own.
        slot = f"{self.settings.worker_id}-{len(self.workers) + 1}"
        worker = ResizeWorker(self.settings.model_copy(update={"worker_id": slot}))
        self.workers.append(worker)
        self._spawn(lambda: worker.run(self.stop), "worker")

    def start_notifier(self) -> None:
        notifier = WebhookNotifier(self.settings)
        self._spawn(lambda: notifier.run(self.stop), "webhook-notifier")

    def start_janitor(self) -> Janitor:
        janitor = Janitor(self.settings)
        self._spawn(lambda: janitor.run(self.stop), "janitor")
        self.closers.append(janitor.close)
        return janitor

    def _spawn(self, target: Callable[[], object], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self.threads.append(thread)

    def shutdown(self) -> None:
        self.stop.set()
        for server in self.servers:
            server.shutdown()
        for thread in self.threads:
            thread.join(timeout=30)
        for close in self.closers:
            close()
        for server in self.servers:
            server.server_close()
        self.session.close()


def submit_until_accepted(
    base_url: str, image: bytes, job: int, width: int, refusals_expected: frozenset[int] = frozenset({503})
) -> tuple[str, int]:
    """One job, as a careful client sends it: retried with the same Idempotency-Key until accepted.

    A 503 while a server is down may follow a write the broker kept but could not
    acknowledge; the key makes the retry land on the same task, not a second one.
    Any answer other than a 202 or one of `refusals_expected` fails the test.
    Returns the task id and how many answers were refusals.
    """
    refusals = 0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            response = requests.post(
                f"{base_url}/api/v1/images/resize",
                files={"file": ("a.jpg", image)},
                data={"width": str(width)},
                headers={"Idempotency-Key": f"job-{job}"},
                timeout=30,
            )
        except requests.RequestException:
            response = None
        if response is not None and response.status_code == 202:
            return str(response.json()["task_id"]), refusals
        assert response is None or response.status_code in refusals_expected, response.text
        refusals += 1
        time.sleep(0.3)
    raise AssertionError(f"job {job} never accepted")


def start_pipeline(
    settings: Settings, started: list[Pipeline], workers: int = 1, notifier: bool = False, janitor: bool = False
) -> Pipeline:
    """Topics, bucket, API, projector and workers on `settings`; the pipeline is added to `started`
    before anything runs, so whoever shuts `started` down stops a half-started one too."""
    ensure_topics(settings)
    ObjectStore(settings).ensure_bucket()
    pipeline = Pipeline(settings=settings, base_url="", stop=threading.Event())
    started.append(pipeline)
    pipeline.base_url = pipeline.serve_api(settings)
    pipeline.start_projector(settings)
    for _ in range(workers):
        pipeline.start_worker()
    if notifier:
        pipeline.start_notifier()
    if janitor:
        pipeline.start_janitor()
    return pipeline


@pytest.fixture
def pipeline_factory(settings_factory: Callable[..., Settings]) -> Iterator[Callable[..., Pipeline]]:
    started: list[Pipeline] = []

    def start(workers: int = 1, notifier: bool = False, janitor: bool = False, **overrides: Any) -> Pipeline:
        return start_pipeline(settings_factory(**overrides), started, workers, notifier, janitor)

    yield start
    for pipeline in started:
        pipeline.shutdown()


@pytest.fixture
def pipeline(pipeline_factory: Callable[..., Pipeline]) -> Pipeline:
    return pipeline_factory()
