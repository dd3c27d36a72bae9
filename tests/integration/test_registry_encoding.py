"""Confluent's wire format through a real schema registry (Apicurio): subjects by topic name with BACKWARD
compatibility, every event round-tripped, a topic half in each encoding read whole, and the failures."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator

import pytest
import requests
from confluent_kafka import TopicPartition

from common.encoding import EventCodec, RegistryUnavailable, register_subjects, results_schema
from common.kafka import ensure_topics, high_watermarks, make_consumer, make_producer, produce_and_wait
from common.settings import Settings
from schemas import SerializationError
from schemas.vectors import EXAMPLES

TASK = "6f1c1c0e-8a43-4d4b-9a38-2f6a4b0e7c11"


@pytest.fixture
def codecs() -> Iterator[Callable[[Settings], EventCodec]]:
    """EventCodecs, closed after the test (their registry clients keep connections)."""
    made: list[EventCodec] = []

    def make(settings: Settings) -> EventCodec:
        made.append(EventCodec(settings))
        return made[-1]

    yield make
    for codec in made:
        codec.close()


@pytest.fixture
def registry_settings(settings_factory: Callable[..., Settings], schema_registry: str) -> Settings:
    settings = settings_factory(event_encoding="registry", schema_registry_url=schema_registry)
    ensure_topics(settings)
    register_subjects(settings)
    return settings


def test_subjects_by_topic_name_with_backward_compatibility(registry_settings: Settings, schema_registry: str) -> None:
    subject = f"{registry_settings.results_topic}-value"
    config = requests.get(f"{schema_registry}/config/{subject}", timeout=10).json()
    assert config["compatibilityLevel"] == "BACKWARD"
    latest = requests.get(f"{schema_registry}/subjects/{subject}/versions/latest", timeout=10).json()
    assert json.loads(latest["schema"]) == json.loads(results_schema())
    # An incompatible change (a field without a default) is refused.
    union = json.loads(results_schema())
    union[0]["fields"].append({"name": "worker_host", "type": "string"})
    refused = requests.post(
        f"{schema_registry}/subjects/{subject}/versions",
        json={"schema": json.dumps(union), "schemaType": "AVRO"},
        timeout=10,
    )
    assert refused.status_code == 409, refused.text


def test_every_event_round_trips_in_the_registry_format(
    registry_settings: Settings, codecs: Callable[[Settings], EventCodec]
) -> None:
    codec = codecs(registry_settings)
    requests_topic, results_topic = registry_settings.requests_topic, registry_settings.results_topic
    for name, event in EXAMPLES.items():
        topic = requests_topic if name == "ResizeRequested" else results_topic
        value = codec.encode(event, topic)
        assert value[0] == 0 and int.from_bytes(value[1:5], "big") > 0
        assert codec.decode(value, topic) == event


def test_a_topic_half_in_each_encoding_is_read_whole(
    registry_settings: Settings, codecs: Callable[[Settings], EventCodec]
) -> None:
    registry = codecs(registry_settings)
    single = codecs(registry_settings.model_copy(update={"event_encoding": "single_object"}))
    producer = make_producer(registry_settings, "test")
    topic = registry_settings.results_topic
    written = []
    for i, codec in enumerate([single, registry] * 5):
        event = EXAMPLES["ResizeCompleted" if i % 3 else "TaskDeleted"]
        event = type(event)(**{**event.__dict__, "event_id": str(uuid.uuid4())})
        written.append(event)
        produce_and_wait(producer, topic, event.task_id, codec.encode(event, topic), 10)
    consumer = make_consumer(registry_settings, f"probe-{uuid.uuid4()}", "test")
    ends = high_watermarks(consumer, topic, timeout=10)
    consumer.assign([TopicPartition(topic, p, 0) for p in ends])
    read = []
    while len(read) < len(written):
        msg = consumer.poll(5)
        assert msg is not None, f"only {len(read)} of {len(written)} read"
        read.append(single.decode(msg.value(), topic))  # a reader in single-object mode reads both
    consumer.close()
    assert sorted(e.event_id for e in read) == sorted(e.event_id for e in written)


def test_an_unknown_schema_id_is_undecodable_not_fatal(
    registry_settings: Settings, codecs: Callable[[Settings], EventCodec]
) -> None:
    codec = codecs(registry_settings)
    with pytest.raises(SerializationError, match="unknown schema id"):
        codec.decode(b"\x00" + (987654).to_bytes(4, "big") + b"\x02\x04", registry_settings.results_topic)
    no_registry = EventCodec(
        registry_settings.model_copy(update={"schema_registry_url": "", "event_encoding": "single_object"})
    )
    value = codec.encode(EXAMPLES["ResizeStarted"], registry_settings.results_topic)
    with pytest.raises(SerializationError, match="SCHEMA_REGISTRY_URL is not set"):
        no_registry.decode(value, registry_settings.results_topic)


def test_a_registry_that_is_away_is_transient_for_writers(
    registry_settings: Settings, codecs: Callable[[Settings], EventCodec]
) -> None:
    away = EventCodec(
        registry_settings.model_copy(update={"schema_registry_url": "http://127.0.0.1:1/apis/ccompat/v7"})
    )
    with pytest.raises(RegistryUnavailable):
        away.encode(EXAMPLES["ResizeRequested"], registry_settings.requests_topic)
