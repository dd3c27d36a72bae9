"""Lanes through the real pipeline: choosing a lane, admission, interactive first, dead letters, replays."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime

import pytest
import requests
from confluent_kafka import Consumer, Producer, TopicPartition

from common.kafka import high_watermarks, make_consumer
from common.settings import Settings
from common.store import ObjectStore
from ops.replay import REPLAYED_FROM, replay
from producer_api.auth import new_key
from resize_worker.worker import LANE_HEADER, ResizeWorker
from tests.faults.test_guarantees import completed_events
from tests.pipeline import Pipeline, jpeg_bytes

pytestmark = pytest.mark.e2e


def _records(settings: Settings, topic: str) -> int:
    consumer = make_consumer(settings, f"count-{uuid.uuid4()}", "tests")
    try:
        return sum(high_watermarks(consumer, topic, timeout=10).values())
    finally:
        consumer.close()


def test_an_upload_goes_to_the_lane_it_asks_for_and_its_status_shows_it(pipeline: Pipeline) -> None:
    bulk = pipeline.settings.lane("bulk")
    interactive = pipeline.settings.lane("interactive")
    asked = pipeline.submit(jpeg_bytes(120, 90), width=30, priority="bulk")
    plain = pipeline.submit(jpeg_bytes(120, 90), width=30)
    assert asked.status_code == 202 and plain.status_code == 202
    assert (asked.headers["Lane"], plain.headers["Lane"]) == ("bulk", "interactive")
    assert _records(pipeline.settings, bulk.requests_topic) == 1
    assert _records(pipeline.settings, interactive.requests_topic) == 1
    for response, lane in ((asked, "bulk"), (plain, "interactive")):
        body = pipeline.wait_terminal(response.json()["task_id"])
        assert (body["status"], body["lane"]) == ("SUCCESS", lane)


def test_an_unknown_lane_is_a_422_and_nothing_is_stored_or_produced(pipeline: Pipeline) -> None:
    response = pipeline.submit(jpeg_bytes(120, 90), width=30, priority="urgent")
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_priority"
    assert ObjectStore(pipeline.settings).keys("originals/") == []
    assert all(_records(pipeline.settings, lane.requests_topic) == 0 for lane in pipeline.settings.lane_plan)


def test_a_key_is_served_at_most_in_its_ceiling_lane(pipeline_factory: Callable[..., Pipeline]) -> None:
    importer_key, importer = new_key("importer")
    person_key, person = new_key("person")
    pipeline = pipeline_factory(api_keys=f"{importer},{person}", auth_required=True, key_lanes="importer:bulk:bulk")
    url = pipeline.url("/api/v1/images/resize")

    def lane_of(key: str, **form: str) -> str:
        files = {"file": ("a.jpg", jpeg_bytes(60, 40))}
        response = requests.post(url, files=files, data={"width": "20", **form}, headers={"X-API-Key": key}, timeout=30)
        assert response.status_code == 202, response.text
        return response.headers["Lane"]

    assert lane_of(importer_key, priority="interactive") == "bulk"
    assert lane_of(importer_key) == "bulk"
    assert lane_of(person_key) == "interactive"
    assert lane_of(person_key, priority="bulk") == "bulk"


def test_a_full_bulk_backlog_refuses_bulk_uploads_of_that_key_only(pipeline_factory: Callable[..., Pipeline]) -> None:
    alice_key, alice = new_key("alice")
    bob_key, bob = new_key("bob")
    # No workers: accepted tasks stay open, so the backlog only grows.
    pipeline = pipeline_factory(workers=0, api_keys=f"{alice},{bob}", auth_required=True, max_backlog_per_key=3)
    url = pipeline.url("/api/v1/images/resize")

    def submit(key: str, priority: str) -> requests.Response:
        files = {"file": ("a.jpg", jpeg_bytes(60, 40))}
        form = {"width": "20", "priority": priority}
        return requests.post(url, files=files, data=form, headers={"X-API-Key": key}, timeout=30)

    assert [submit(alice_key, "bulk").status_code for _ in range(3)] == [202, 202, 202]
    refused = submit(alice_key, "bulk")
    assert refused.status_code == 429
    assert refused.json()["code"] == "backlog_full"
    assert int(refused.headers["Retry-After"]) > 0
    assert _records(pipeline.settings, pipeline.settings.lane("bulk").requests_topic) == 3
    assert len(ObjectStore(pipeline.settings).keys("originals/")) == 3  # the refused upload left nothing
    assert submit(alice_key, "interactive").status_code == 202  # the first lane is never refused
    assert submit(bob_key, "bulk").status_code == 202  # another key's backlog is its own


def _assigned(worker: ResizeWorker) -> bool:
    return all(lane.consumer.assignment() for lane in worker._lanes)


def test_interactive_uploads_overtake_a_bulk_backlog(pipeline_factory: Callable[..., Pipeline]) -> None:
    pipeline = pipeline_factory(workers=0)
    image = jpeg_bytes(1600, 1200)
    bulk_ids = pipeline.submit_many(80, clients=4, image=image, width=400, height=400, priority="bulk")
    pipeline.start_worker()
    worker = pipeline.workers[0]
    deadline = time.monotonic() + 60
    while not _assigned(worker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _assigned(worker)

    interactive = []
    for _ in range(3):
        task_id = pipeline.submit(image, width=400, height=400).json()["task_id"]
        body = pipeline.wait_terminal(task_id)
        assert (body["status"], body["lane"]) == ("SUCCESS", "interactive")
        interactive.append(body)
    bulk = [pipeline.wait_terminal(task_id, timeout=120) for task_id in bulk_ids]
    assert all(body["status"] == "SUCCESS" for body in bulk)
    bulk_finished = sorted(datetime.fromisoformat(body["finished_at"]) for body in bulk)
    for body in interactive:
        began, ended = datetime.fromisoformat(body["created_at"]), datetime.fromisoformat(body["finished_at"])
        if bulk_finished[-1] < ended:
            continue  # the backlog had drained: nothing to overtake
        # Bulk tasks that finished while this upload waited: the one in hand when it came, and
        # at most one owed for bulk's share. In one FIFO lane it would wait for every bulk
        # task queued before it in its partition (a third of the backlog here).
        overtaken_by = [at for at in bulk_finished if began < at < ended]
        assert len(overtaken_by) <= 3, f"{len(overtaken_by)} bulk tasks finished while an interactive one waited"
    assert any(bulk_finished[-1] > datetime.fromisoformat(body["finished_at"]) for body in interactive)


def test_an_undecodable_record_in_a_lane_is_dead_lettered_with_its_lane(pipeline: Pipeline) -> None:
    settings = pipeline.settings
    bulk = settings.lane("bulk")
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap_servers})
    producer.produce(bulk.requests_topic, key=b"junk", value=b"\x00not avro")
    producer.flush(10)
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap_servers, "group.id": f"dlq-{uuid.uuid4()}"})
    try:
        consumer.assign([TopicPartition(settings.dead_letter_topic, p, 0) for p in range(settings.topic_partitions)])
        deadline = time.monotonic() + 30
        msg = None
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and not msg.error():
                break
        assert msg is not None and not msg.error(), "no dead letter"
        headers = dict(msg.headers() or [])
        assert headers[LANE_HEADER] == b"bulk"
        assert headers["dlq.source.topic"] == bulk.requests_topic.encode()
    finally:
        consumer.close()
    # The worker went on: a good bulk request after the junk still succeeds.
    task_id = pipeline.submit(jpeg_bytes(60, 40), width=20, priority="bulk").json()["task_id"]
    assert pipeline.wait_terminal(task_id)["status"] == "SUCCESS"


def test_a_replay_is_queued_in_the_bulk_lane_and_reprocesses_each_task_once(pipeline: Pipeline) -> None:
    settings = pipeline.settings
    task_ids = [pipeline.submit(jpeg_bytes(80, 60), width=20).json()["task_id"] for _ in range(3)]
    task_ids.append(pipeline.submit(jpeg_bytes(80, 60), width=20, priority="bulk").json()["task_id"])
    for task_id in task_ids:
        pipeline.wait_terminal(task_id)
    bulk_before = _records(settings, settings.lane("bulk").requests_topic)

    assert replay(settings, offset=0) == 4
    assert _records(settings, settings.lane("bulk").requests_topic) == bulk_before + 4
    # A second replay of everything copies the originals again, not the first replay's copies.
    assert replay(settings, offset=0) == 4

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        counts = completed_events(settings)
        if all(counts[t] == 3 for t in task_ids):
            break
        time.sleep(0.5)
    assert {t: counts[t] for t in task_ids} == dict.fromkeys(task_ids, 3)
    for task_id in task_ids:
        assert pipeline.status(task_id).json()["status"] == "SUCCESS"


def test_replay_copies_carry_where_they_came_from(pipeline_factory: Callable[..., Pipeline]) -> None:
    pipeline = pipeline_factory(workers=0)
    settings = pipeline.settings
    task_id = pipeline.submit(jpeg_bytes(80, 60), width=20).json()["task_id"]
    assert replay(settings, offset=0, target=settings.lane("bulk")) == 1
    consumer = make_consumer(settings, f"read-{uuid.uuid4()}", "tests")
    try:
        consumer.assign(
            [TopicPartition(settings.lane("bulk").requests_topic, p, 0) for p in range(settings.topic_partitions)]
        )
        msg = None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and (msg is None or msg.error()):
            msg = consumer.poll(0.5)
        assert msg is not None and not msg.error()
        assert msg.key() == task_id.encode()
        origin = dict(msg.headers() or [])[REPLAYED_FROM].decode()
        assert origin.startswith(f"{settings.requests_topic}:")
    finally:
        consumer.close()


def test_exactly_once_with_two_lanes_commits_each_lanes_offsets_in_its_own_group(
    pipeline_factory: Callable[..., Pipeline],
) -> None:
    pipeline = pipeline_factory(workers=1, processing_guarantee="exactly_once", worker_id="slot-lanes")
    settings = pipeline.settings
    ids = [pipeline.submit(jpeg_bytes(80, 60), width=20, priority=p).json()["task_id"] for p in ("bulk", "interactive")]
    ids += [pipeline.submit(jpeg_bytes(80, 60), width=20, priority="bulk").json()["task_id"]]
    for task_id in ids:
        assert pipeline.wait_terminal(task_id)["status"] == "SUCCESS"
    assert all(completed_events(settings, "read_committed")[t] == 1 for t in ids)
    # Each lane's group committed past its records: a new member of either group has nothing to redo.
    for lane in settings.lane_plan:
        reader = make_consumer(settings, lane.group, "tests")
        try:
            ends = high_watermarks(reader, lane.requests_topic)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                committed = reader.committed([TopicPartition(lane.requests_topic, p) for p in ends], timeout=10)
                if sum(max(0, tp.offset) for tp in committed) == sum(ends.values()):
                    break
                time.sleep(0.2)
            assert sum(max(0, tp.offset) for tp in committed) == sum(ends.values()), lane.name
        finally:
            reader.close()


def test_a_worker_given_one_lane_serves_only_that_lane(pipeline_factory: Callable[..., Pipeline]) -> None:
    pipeline = pipeline_factory(workers=0)
    settings = pipeline.settings
    stop = threading.Event()
    worker = ResizeWorker(settings.model_copy(update={"worker_lanes": "bulk", "worker_id": "bulk-only"}))
    running = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    running.start()
    try:
        # Its resize child runs before any task, at the niceness of the lane it serves.
        deadline = time.monotonic() + 30
        while not worker.attempts.children() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert list(worker.attempts.children()) == [settings.lower_lane_nice]
        bulk_id = pipeline.submit(jpeg_bytes(80, 60), width=20, priority="bulk").json()["task_id"]
        interactive_id = pipeline.submit(jpeg_bytes(80, 60), width=20).json()["task_id"]
        assert pipeline.wait_terminal(bulk_id)["status"] == "SUCCESS"
        time.sleep(1.0)
        assert pipeline.status(interactive_id).json()["status"] == "PENDING"
    finally:
        stop.set()
        running.join(timeout=30)
    pipeline.start_worker()
    assert pipeline.wait_terminal(interactive_id)["status"] == "SUCCESS"
