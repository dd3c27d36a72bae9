"""No accepted job is lost, whatever fails: each test injects one fault into the real pipeline.

Run alone with: .venv/bin/python -m pytest -m faults -s  (the -s shows the measured numbers)
"""

from __future__ import annotations

import io
import signal
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
import requests
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from PIL import Image

from common.kafka import high_watermarks
from common.settings import Settings
from common.store import ObjectStore
from ops.dead_letters import read_dead_letters, republish
from ops.replay import replay
from read_model.view import StatusView
from resize_worker.worker import ResizeWorker
from schemas import ObjectRef, ResizeCompleted, ResizeRequested, ResizeStarted, default_codec
from schemas.codec import MARKER
from tests.faults.conftest import BIN, RestartableKafka, RestartableS3, RoleProcesses, settings_env
from tests.pipeline import Pipeline, jpeg_bytes

pytestmark = pytest.mark.faults


def completed_events(settings: Settings, isolation: str = "read_committed") -> Counter[str]:
    """How many ResizeCompleted each task has in the results topic, as a consumer with `isolation` sees it."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap_servers,
            "group.id": f"count-{uuid.uuid4()}",
            "isolation.level": isolation,
            "enable.auto.commit": False,
        }
    )
    counts: Counter[str] = Counter()
    try:
        topic = settings.results_topic
        ends = high_watermarks(consumer, topic, timeout=10)
        consumer.assign([TopicPartition(topic, p, 0) for p in ends])
        codec = default_codec()
        idle_since = time.monotonic()
        while time.monotonic() - idle_since < 3:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            idle_since = time.monotonic()
            event = codec.decode(msg.value())
            if isinstance(event, ResizeCompleted):
                counts[event.task_id] += 1
    finally:
        consumer.close()
    return counts


def view_count(settings: Settings, state: str | None = None) -> int:
    with StatusView(settings.view_path) as view:
        return view.count(state)


def test_worker_killed_mid_run_then_replaced(
    pipeline_factory: Callable[..., Pipeline], role_processes: RoleProcesses, wait_for: Callable[..., None]
) -> None:
    pipeline = pipeline_factory(workers=0)
    settings = pipeline.settings
    first = role_processes.start([str(BIN / "resize-worker")], settings_env(settings), "worker")
    task_ids = pipeline.submit_many(500)
    wait_for(lambda: view_count(settings, "SUCCESS") >= 100, 120, "100 jobs done")
    first.send_signal(signal.SIGKILL)
    first.wait()
    killed_at, killed_time = view_count(settings, "SUCCESS"), time.monotonic()
    role_processes.start([str(BIN / "resize-worker")], settings_env(settings), "worker")
    wait_for(lambda: view_count(settings, "SUCCESS") == 500, 300, "all 500 jobs done")
    recovered = time.monotonic() - killed_time

    assert view_count(settings) == 500
    results = set(ObjectStore(settings).keys("results/"))
    assert results == {f"results/{task_id}" for task_id in task_ids}
    completions = completed_events(settings)
    assert set(completions) == set(task_ids)
    duplicates = sum(n - 1 for n in completions.values())
    print(
        f"\n[faults] worker kill -9: 500 jobs, killed after {killed_at} done, lost 0, "
        f"duplicate completions {duplicates}, all done {recovered:.1f}s after the kill"
    )


def test_broker_down_for_10s_loses_no_accepted_job(
    own_kafka: RestartableKafka, pipeline_factory: Callable[..., Pipeline], wait_for: Callable[..., None]
) -> None:
    pipeline = pipeline_factory(
        workers=1, kafka_bootstrap_servers=own_kafka.bootstrap_servers, produce_timeout_seconds=3
    )
    outcomes: list[tuple[int, float, str | None]] = []
    stop = threading.Event()
    image = jpeg_bytes(120, 90)

    def keep_submitting() -> None:
        with requests.Session() as session:
            while not stop.is_set():
                started = time.monotonic()
                response = session.post(
                    pipeline.url("/api/v1/images/resize"),
                    files={"file": ("a.jpg", image)},
                    data={"width": "50"},
                    timeout=60,
                )
                task_id = response.json().get("task_id") if response.status_code == 202 else None
                outcomes.append((response.status_code, time.monotonic() - started, task_id))
                if response.status_code == 503:
                    assert response.json()["code"] == "broker_unavailable"
                    assert response.headers["Retry-After"]
                time.sleep(0.05)

    submitter = threading.Thread(target=keep_submitting)
    submitter.start()
    try:
        time.sleep(3)
        own_kafka.kill()
        down_at = time.monotonic()
        time.sleep(10)
        own_kafka.start()
        time.sleep(8)
    finally:
        stop.set()
        submitter.join(timeout=120)
    accepted = [task_id for code, _, task_id in outcomes if code == 202]
    codes = Counter(code for code, _, _ in outcomes)
    assert set(codes) <= {202, 503}, codes
    assert codes[503] > 0 and len(accepted) > 0
    slowest = max(elapsed for _, elapsed, _ in outcomes)
    assert slowest < 10, f"a submission hung for {slowest:.1f}s"

    def all_succeeded() -> bool:
        return all(pipeline.status(task_id).json()["status"] == "SUCCESS" for task_id in accepted)

    wait_for(all_succeeded, 180, "every accepted job to succeed")
    print(
        f"\n[faults] broker down 10s: {len(accepted)} accepted, {codes[503]} refused with 503, lost 0, "
        f"slowest answer {slowest:.1f}s, all done {time.monotonic() - down_at:.1f}s after the stop"
    )


def test_store_down_for_10s_shows_retry_then_success(
    own_s3: RestartableS3, pipeline_factory: Callable[..., Pipeline], wait_for: Callable[..., None]
) -> None:
    pipeline = pipeline_factory(
        workers=0,
        s3_endpoint=own_s3.server.endpoint,
        s3_access_key=own_s3.server.access_key,
        s3_secret_key=own_s3.server.secret_key,
        max_attempts=40,
        retry_backoff_seconds=0.5,
        retry_backoff_max_seconds=2.0,
    )
    task_ids = [pipeline.submit(jpeg_bytes(100, 80), width=40).json()["task_id"] for _ in range(10)]
    own_s3.kill()
    down_at = time.monotonic()
    refused = pipeline.submit(jpeg_bytes(100, 80), width=40)
    assert refused.status_code == 503 and refused.json()["code"] == "store_unavailable"
    pipeline.start_worker()
    seen: set[str] = set()

    def some_retry() -> bool:
        seen.update(pipeline.status(task_id).json()["status"] for task_id in task_ids)
        return "RETRY" in seen

    wait_for(some_retry, 20, "a task in RETRY")
    time.sleep(max(0.0, 10 - (time.monotonic() - down_at)))
    own_s3.start()
    wait_for(lambda: all(pipeline.status(t).json()["status"] == "SUCCESS" for t in task_ids), 90, "all to succeed")
    attempts = [pipeline.status(t).json()["attempts"] for t in task_ids]
    assert max(attempts) > 1
    print(
        f"\n[faults] store down 10s: 10 jobs, lost 0, attempts per job {min(attempts)}..{max(attempts)}, "
        f"all done {time.monotonic() - down_at:.1f}s after the stop"
    )


def test_undecodable_requests_go_to_the_dead_letter_topic(pipeline: Pipeline) -> None:
    settings = pipeline.settings
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap_servers, "acks": "all"})
    producer.produce(settings.requests_topic, key=b"junk", value=b"\x00not avro at all")
    request = ResizeRequested(task_id=str(uuid.uuid4()), source=ObjectRef("b", "k"))
    good = default_codec().encode(request)
    producer.produce(
        settings.requests_topic, key=b"stranger", value=MARKER + b"\x42" * 8 + good[10:], headers=[("trace", b"t-1")]
    )
    assert producer.flush(30) == 0

    deadline = time.monotonic() + 30
    letters = read_dead_letters(settings)
    while len(letters) < 2 and time.monotonic() < deadline:
        time.sleep(0.3)
        letters = read_dead_letters(settings)
    assert sorted(letter.key for letter in letters) == ["junk", "stranger"]
    by_key = {letter.key: letter for letter in letters}
    assert "marker" in by_key["junk"].error
    assert "unknown writer schema fingerprint" in by_key["stranger"].error
    assert by_key["stranger"].header("trace") == "t-1"
    assert by_key["stranger"].header("dlq.source.topic") == settings.requests_topic
    assert by_key["stranger"].value == MARKER + b"\x42" * 8 + good[10:]

    # The worker is still there, and republishing sends the records round again.
    task_id = pipeline.submit(jpeg_bytes(60, 60), width=20).json()["task_id"]
    assert pipeline.wait_terminal(task_id)["status"] == "SUCCESS"
    assert republish(settings, letters) == 2
    deadline = time.monotonic() + 30
    while len(read_dead_letters(settings)) < 4 and time.monotonic() < deadline:
        time.sleep(0.3)
    assert len(read_dead_letters(settings)) == 4


CRASH_BEFORE_COMMIT = """
import os, threading
from common.settings import load_settings
from resize_worker import delivery
from resize_worker.worker import ResizeWorker

def crash(self, msg, consumer):
    self._producer.flush(10)  # the outcome reached the log, inside an open transaction
    os._exit(17)

delivery.ExactlyOnce.commit = crash
ResizeWorker(load_settings()).run(threading.Event())
"""


def test_exactly_once_worker_killed_before_commit_leaves_no_duplicate(
    pipeline_factory: Callable[..., Pipeline], role_processes: RoleProcesses, wait_for: Callable[..., None]
) -> None:
    pipeline = pipeline_factory(workers=0, processing_guarantee="exactly_once", worker_id="slot-1")
    settings = pipeline.settings
    task_id = pipeline.submit(jpeg_bytes(200, 100), width=50).json()["task_id"]
    crashing = role_processes.start([sys.executable, "-c", CRASH_BEFORE_COMMIT], settings_env(settings), "crashing")
    assert crashing.wait(timeout=60) == 17
    role_processes.start([str(BIN / "resize-worker")], settings_env(settings), "worker")
    assert pipeline.wait_terminal(task_id, timeout=60)["status"] == "SUCCESS"

    assert completed_events(settings, "read_committed")[task_id] == 1
    # The crashed attempt's completion is in the log, but aborted: only an uncommitted reader sees it.
    assert completed_events(settings, "read_uncommitted")[task_id] == 2


class _FailsFirstCommit:
    """The worker's real transactional producer, but its first commit_transaction raises `error`
    (by default a timeout, which requires an abort)."""

    def __init__(self, producer: Producer, error: KafkaError | None = None) -> None:
        self._producer = producer
        self._error = error or KafkaError(KafkaError._TIMED_OUT, "injected commit timeout", txn_requires_abort=True)
        self.failed = 0

    def commit_transaction(self, *args: object) -> None:
        if not self.failed:
            self.failed += 1
            raise KafkaException(self._error)
        self._producer.commit_transaction(*args)

    def __getattr__(self, name: str) -> object:
        return getattr(self._producer, name)


def test_an_aborted_transaction_in_the_bulk_lane_is_processed_again_not_skipped(
    pipeline_factory: Callable[..., Pipeline],
) -> None:
    pipeline = pipeline_factory(workers=0, processing_guarantee="exactly_once", worker_id="slot-bulk")
    settings = pipeline.settings
    task_ids = [pipeline.submit(jpeg_bytes(80, 80), width=20, priority="bulk").json()["task_id"] for _ in range(3)]
    worker = ResizeWorker(settings)
    injected = _FailsFirstCommit(worker._producer)
    worker._producer = injected  # type: ignore[assignment]
    stop = threading.Event()
    running = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    running.start()
    try:
        for task_id in task_ids:
            assert pipeline.wait_terminal(task_id, timeout=60)["status"] == "SUCCESS"
        assert injected.failed == 1
        assert all(completed_events(settings, "read_committed")[task_id] == 1 for task_id in task_ids)
    finally:
        stop.set()
        running.join(timeout=30)


def test_a_worker_whose_transactional_producer_fails_for_good_starts_fresh_clients_and_loses_nothing(
    pipeline_factory: Callable[..., Pipeline],
) -> None:
    pipeline = pipeline_factory(workers=0, processing_guarantee="exactly_once", worker_id="slot-fatal")
    settings = pipeline.settings
    worker = ResizeWorker(settings)
    # A fatal error that is not a fencing, as a commit retried after its coordinator died gets
    # when the new coordinator has aborted the transaction.
    aborted = KafkaError(KafkaError.INVALID_TXN_STATE, "injected: transaction aborted", fatal=True)
    injected = _FailsFirstCommit(worker._producer, aborted)
    worker._producer = injected  # type: ignore[assignment]
    stop = threading.Event()
    running = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    running.start()
    try:
        task_id = pipeline.submit(jpeg_bytes(80, 80), width=20).json()["task_id"]
        assert pipeline.wait_terminal(task_id, timeout=60)["status"] == "SUCCESS"
        assert injected.failed == 1
        assert running.is_alive()  # the worker went on with fresh clients instead of dying
        assert completed_events(settings, "read_committed")[task_id] == 1
    finally:
        stop.set()
        running.join(timeout=30)


def test_fresh_clients_twice_on_one_request_are_not_counted_as_worker_crashes(
    pipeline_factory: Callable[..., Pipeline],
) -> None:
    """The worker's Kafka clients fail for good twice while one request is in hand, as in broker
    failovers: the process never died, so the crash limit (2) must not dead-letter the request."""
    pipeline = pipeline_factory(workers=0, processing_guarantee="exactly_once", worker_id="slot-twice")
    settings = pipeline.settings
    assert settings.worker_crash_limit == 2
    worker = ResizeWorker(settings)
    aborted = KafkaError(KafkaError.INVALID_TXN_STATE, "injected: transaction aborted", fatal=True)
    injected = [_FailsFirstCommit(worker._producer, aborted)]
    worker._producer = injected[0]  # type: ignore[assignment]
    connect = worker._connect

    def connect_and_fail_once_more() -> None:
        connect()
        if len(injected) < 2:
            injected.append(_FailsFirstCommit(worker._producer, aborted))
            worker._producer = injected[-1]  # type: ignore[assignment]

    worker._connect = connect_and_fail_once_more  # type: ignore[method-assign]
    stop = threading.Event()
    running = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    running.start()
    try:
        task_id = pipeline.submit(jpeg_bytes(80, 80), width=20).json()["task_id"]
        body = pipeline.wait_terminal(task_id, timeout=60)
        assert body["status"] == "SUCCESS", body
        assert [producer.failed for producer in injected] == [1, 1]
        assert completed_events(settings, "read_committed")[task_id] == 1
        assert not [letter for letter in read_dead_letters(settings) if letter.key == task_id]
    finally:
        stop.set()
        running.join(timeout=30)


def test_replay_from_a_time_reprocesses_exactly_the_later_jobs(pipeline: Pipeline) -> None:
    before = [pipeline.submit(jpeg_bytes(80, 80), width=20).json()["task_id"] for _ in range(4)]
    for task_id in before:
        pipeline.wait_terminal(task_id)
    time.sleep(0.2)
    since = datetime.now(UTC)
    time.sleep(0.2)
    after = [pipeline.submit(jpeg_bytes(80, 80), width=20).json()["task_id"] for _ in range(3)]
    finished = {task_id: pipeline.wait_terminal(task_id)["finished_at"] for task_id in after}

    assert replay(pipeline.settings, since=since) == 3

    # The copies are reprocessed by the bulk lane's workers, after the replay has queued them.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        counts = completed_events(pipeline.settings)
        if all(counts[task_id] == 2 for task_id in after):
            break
    counts = completed_events(pipeline.settings)
    assert {task_id: counts[task_id] for task_id in before} == dict.fromkeys(before, 1)
    assert {task_id: counts[task_id] for task_id in after} == dict.fromkeys(after, 2)
    # The new outcomes supersede the old ones in the view.
    for task_id in after:
        deadline = time.monotonic() + 20
        while pipeline.status(task_id).json()["finished_at"] == finished[task_id] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert pipeline.status(task_id).json()["finished_at"] > finished[task_id]


def test_projector_killed_repeatedly_resumes_exactly_and_converges(
    pipeline: Pipeline, role_processes: RoleProcesses, wait_for: Callable[..., None]
) -> None:
    settings = pipeline.settings
    second = settings.model_copy(update={"view_path": settings.view_path.with_name("second.sqlite3")})
    env = settings_env(second)
    projector = role_processes.start([str(BIN / "status-projector"), "run"], env, "projector")
    submitted: list[str] = []
    for _ in range(4):
        submitted += pipeline.submit_many(20, clients=4)
        time.sleep(0.5)
        projector.send_signal(signal.SIGKILL)
        projector.wait()
        projector = role_processes.start([str(BIN / "status-projector"), "run"], env, "projector")
    for task_id in submitted:
        pipeline.wait_terminal(task_id)

    def converged() -> bool:
        with StatusView(settings.view_path) as first, StatusView(second.view_path) as other:
            return first.task_table_dump() == other.task_table_dump() and first.offsets() == other.offsets()

    wait_for(converged, 60, "the two views to converge")
    with StatusView(second.view_path) as other:
        rows = other._db.execute("select task_id, state, attempts, error_code, error_message from tasks").fetchall()
        extra = [tuple(r) for r in rows if r[0] not in set(submitted)]
        assert len(set(submitted)) == 80 and extra == [], extra[:5]
        assert other.count() == 80 and other.count("SUCCESS") == 80


def _started_attempts(settings: Settings, task_id: str) -> int:
    """ResizeStarted records of one task in the results topic: one per attempt that ran past 0.25 s."""
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap_servers, "group.id": f"count-{uuid.uuid4()}"})
    try:
        topic = settings.results_topic
        ends = high_watermarks(consumer, topic, timeout=10)
        consumer.assign([TopicPartition(topic, p, 0) for p, end in ends.items() if end > 0])
        codec, found, seen = default_codec(), 0, 0
        while seen < sum(ends.values()):
            msg = consumer.poll(2.0)
            if msg is None:
                break
            if msg.error():
                continue
            seen += 1
            event = codec.decode(msg.value())
            found += isinstance(event, ResizeStarted) and event.task_id == task_id
        return found
    finally:
        consumer.close()


@pytest.mark.parametrize("first_worker", ["new to the partition", "already handling the partition"])
def test_a_request_that_takes_workers_down_is_dead_lettered_after_the_limit(
    pipeline_factory: Callable[..., Pipeline],
    role_processes: RoleProcesses,
    wait_for: Callable[..., None],
    first_worker: str,
) -> None:
    """A worker process dying mid-attempt twice on one request (WORKER_CRASH_LIMIT=2): the third worker
    gives up on it with worker_crashed and a dead letter, and goes on with the next request.

    A worker already handling the partition, after an idle second in which the record before was
    auto-committed, commits its note all the same: the auto-commit would leave out a stored offset
    equal to the committed one, note and all."""
    pipeline = pipeline_factory(workers=0, topic_partitions=1)
    settings = pipeline.settings
    assert settings.worker_crash_limit == 2
    # Seconds of resizing (~6.5 s alone here), time to see the attempt start and kill its worker. Grain,
    # not a gradient: a gradient's PNG is done in under 2 s on an idle machine, before the kill comes.
    big = Image.effect_noise((7000, 7000), 24).convert("RGB")
    buffer = io.BytesIO()
    big.save(buffer, "JPEG", quality=80)
    continuing = first_worker == "already handling the partition"
    if continuing:
        first = role_processes.start([str(BIN / "resize-worker")], settings_env(settings), "worker-1")
        warm_up = pipeline.submit(jpeg_bytes(80, 60), width="40").json()["task_id"]
        assert pipeline.wait_terminal(warm_up, timeout=60)["status"] == "SUCCESS"
        time.sleep(1.5)  # past auto.commit.interval.ms: the poison's own offset is the committed one
    poison = pipeline.submit(buffer.getvalue(), width="6900", height="6900", mode="fit", format="png")
    assert poison.status_code == 202, poison.text
    task_id = poison.json()["task_id"]
    for crash in (1, 2):
        if crash == 1 and continuing:
            worker = first
        else:
            worker = role_processes.start([str(BIN / "resize-worker")], settings_env(settings), f"worker-{crash}")
        wait_for(lambda n=crash: _started_attempts(settings, task_id) >= n, 120, f"attempt {crash} started")
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    role_processes.start([str(BIN / "resize-worker")], settings_env(settings), "worker-3")
    after = pipeline.submit(jpeg_bytes(80, 60), width="40").json()["task_id"]

    body = pipeline.wait_terminal(task_id, timeout=120)
    assert body["status"] == "FAILURE", body
    assert body["error"]["code"] == "worker_crashed"
    assert "2 attempts" in body["error"]["message"]
    assert _started_attempts(settings, task_id) == 2  # the third worker did not try it again
    letters = [letter for letter in read_dead_letters(settings) if letter.key == task_id]
    assert len(letters) == 1 and letters[0].error.startswith("worker_crashed")
    assert pipeline.wait_terminal(after, timeout=60)["status"] == "SUCCESS"
