"""A projector started before partitions were added reads the new ones too."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewPartitions

from common.kafka import ensure_topics
from common.settings import Settings
from read_model.view import StatusView
from schemas import ObjectRef, ResizeRequested, default_codec
from status_store.projector import Projector

pytestmark = pytest.mark.integration


def test_partitions_added_while_running_are_projected(settings_factory: Callable[..., Settings]) -> None:
    settings = settings_factory(topic_partitions=1, partition_check_seconds=0.3)
    ensure_topics(settings)
    projector = Projector(settings)
    stop = threading.Event()
    thread = threading.Thread(target=projector.run, args=(stop,), daemon=True)
    thread.start()
    try:
        admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap_servers})
        for future in admin.create_partitions([NewPartitions(settings.requests_topic, 3)]).values():
            future.result(30)
        task_id = str(uuid.uuid4())
        topic = settings.requests_topic
        producer = Producer({"bootstrap.servers": settings.kafka_bootstrap_servers, "acks": "all"})
        deadline = time.monotonic() + 30
        while len(producer.list_topics(topic, timeout=5).topics[topic].partitions) < 3:
            assert time.monotonic() < deadline, "the new partitions never showed in the metadata"
            time.sleep(0.1)
        request = ResizeRequested(task_id=task_id, source=ObjectRef("b", "k"), width=10)
        errors: list[object] = []
        # Straight onto a partition that did not exist when the projector started.
        producer.produce(
            topic,
            key=task_id.encode(),
            value=default_codec().encode(request),
            partition=2,
            on_delivery=lambda err, _msg: errors.append(err) if err else None,
        )
        assert producer.flush(30) == 0 and errors == []
        deadline = time.monotonic() + 30
        with StatusView(settings.view_path) as view:
            while view.get(task_id) is None and time.monotonic() < deadline:
                time.sleep(0.1)
            assert view.get(task_id) is not None
            assert view.offsets()[(settings.requests_topic, 2)] == 1
    finally:
        stop.set()
        thread.join(30)
        projector.close()
