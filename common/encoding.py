"""Events on the wire, in either of two encodings, chosen by EVENT_ENCODING for writing and told apart by
their first byte for reading, so that a topic can move from one to the other with no downtime:

- `single_object` (default): Avro single-object encoding, `C3 01` + fingerprint + body (schemas.codec).
- `registry`: Confluent's wire format, `00` + 4-byte schema id + body, through a schema registry
  (confluent_kafka.schema_registry's AvroSerializer and AvroDeserializer), as Kafka Connect, ksqlDB,
  Flink's avro-confluent format and most Kafka UIs read it.

Subjects follow the topic-name strategy (`<topic>-value`). A requests or retry topic's value is a
ResizeRequested; the results topic carries four records, so its value schema is their union. Schemas are
registered by `imgresize topics` (register_subjects), never by a producer.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from functools import cache
from typing import Any

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient, topic_subject_name_strategy
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

from common.errors import ImageServiceError
from common.settings import Settings
from schemas import Codec, SerializationError, default_codec
from schemas.codec import SCHEMA_DIR, load_schemas
from schemas.events import Event, from_record, to_record

log = logging.getLogger(__name__)

REQUESTED = "imgresize.events.ResizeRequested"
OUTCOMES = (
    "imgresize.events.ResizeStarted",
    "imgresize.events.ResizeCompleted",
    "imgresize.events.ResizeFailed",
    "imgresize.events.TaskDeleted",
)
REGISTRY_MAGIC = 0
# How long a reader waits for an unreachable registry before it stops (a record is never dead-lettered for it).
_READ_PATIENCE_SECONDS = 30.0


class RegistryUnavailable(ImageServiceError):
    """The schema registry did not answer: transient (503 at the API)."""

    code = "registry_unavailable"


@cache
def _current() -> dict[str, dict[str, Any]]:
    return load_schemas(SCHEMA_DIR)


def results_schema() -> str:
    """The results topic's value schema: the union of the four records it carries."""
    return json.dumps([_current()[name] for name in OUTCOMES])


def requests_schema() -> str:
    return json.dumps(_current()[REQUESTED])


def value_schemas(settings: Settings) -> dict[str, str]:
    """Topic -> its value schema (Avro JSON), for every topic that carries events."""
    schemas = {settings.results_topic: results_schema()}
    for lane in settings.lane_plan:
        schemas[lane.requests_topic] = requests_schema()
        schemas[lane.retry_topic] = requests_schema()
    return schemas


def register_subjects(settings: Settings, client: SchemaRegistryClient | None = None) -> dict[str, int]:
    """Register every topic's value schema under `<topic>-value` with BACKWARD compatibility; subject -> id."""
    own = client is None
    client = client or SchemaRegistryClient({"url": settings.schema_registry_url})
    ids = {}
    try:
        for topic, schema in value_schemas(settings).items():
            subject = f"{topic}-value"
            client.set_compatibility(subject_name=subject, level="BACKWARD")
            ids[subject] = client.register_schema(subject, Schema(schema, "AVRO"))
    finally:
        if own:
            client.close()
    return ids


def _to_union(event: Event, _ctx: SerializationContext) -> Any:
    # fastavro takes (record name, record) to choose a union's branch: records sharing fields would
    # otherwise be written as whichever branch validates first.
    return (event.schema_name, to_record(event))


def _to_record(event: Event, _ctx: SerializationContext) -> Any:
    return to_record(event)


def _unreachable(error: Exception) -> bool:
    """Whether an error is the registry not answering (its HTTP client's, or the OS's), not bad data."""
    return isinstance(error, OSError) or type(error).__module__.split(".")[0] in {
        "httpx",
        "httpx2",
        "httpcore",
        "httpcore2",
    }


def _untagged(value: Any) -> Any:
    """The record with every (name, record) pair a union gave back (return_record_name) replaced by the record."""
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str) and isinstance(value[1], dict):
        return _untagged(value[1])
    if isinstance(value, dict):
        return {k: _untagged(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_untagged(v) for v in value]
    return value


class EventCodec:
    """Encodes with EVENT_ENCODING; decodes both encodings (registry ones only with SCHEMA_REGISTRY_URL)."""

    def __init__(self, settings: Settings, single: Codec | None = None) -> None:
        self.settings = settings
        self.single = single or default_codec()
        self.writes_registry = settings.event_encoding == "registry"
        url = settings.schema_registry_url
        # A bounded wait per registry request: the client's own default is none, and a registry that stops
        # answering mid-request (a dropped kept-alive connection) would hold a worker for ever, silently.
        timeout = max(1, int(settings.produce_timeout_seconds))
        self._client = SchemaRegistryClient({"url": url, "timeout": timeout}) if url else None
        self._schemas = value_schemas(settings)
        self._serializers: dict[str, AvroSerializer] = {}
        self._deserializers: dict[str, AvroDeserializer] = {}
        self._lock = threading.Lock()

    def _serializer(self, topic: str) -> AvroSerializer:
        with self._lock:
            if topic not in self._serializers:
                if self._client is None or topic not in self._schemas:
                    raise SerializationError(f"no registry schema for topic {topic}")
                union = self._schemas[topic].startswith("[")
                to_dict: Callable[[Any, SerializationContext], Any] = _to_union if union else _to_record
                self._serializers[topic] = AvroSerializer(
                    self._client,
                    self._schemas[topic],
                    to_dict,  # type: ignore[arg-type]
                    conf={
                        "auto.register.schemas": False,
                        "normalize.schemas": False,
                        "subject.name.strategy": topic_subject_name_strategy,
                    },
                )
            return self._serializers[topic]

    def _deserializer(self, topic: str) -> AvroDeserializer:
        with self._lock:
            if topic not in self._deserializers:
                assert self._client is not None
                # Read into this version's schemas: a record written with an older one is resolved.
                reader = self._schemas.get(topic) or results_schema()
                self._deserializers[topic] = AvroDeserializer(self._client, reader, return_record_name=True)
            return self._deserializers[topic]

    def encode(self, event: Event, topic: str) -> bytes:
        if not self.writes_registry:
            return self.single.encode(event)
        try:
            value = self._serializer(topic)(event, SerializationContext(topic, MessageField.VALUE))
        except SchemaRegistryError as e:
            if e.http_status_code and 400 <= e.http_status_code < 500:
                raise SerializationError(f"the registry has no schema for {topic}-value: {e}") from e
            raise RegistryUnavailable(f"schema registry: {e}") from e
        except Exception as e:  # noqa: BLE001 - the registry's HTTP client raises its own types
            if _unreachable(e):
                raise RegistryUnavailable(f"schema registry unreachable: {e}") from e
            raise SerializationError(f"cannot encode {event.schema_name}: {e}") from e
        assert value is not None
        return value

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def decode(self, data: bytes | None, topic: str) -> Event:
        if not data or data[0] != REGISTRY_MAGIC:
            return self.single.decode(data)
        if self._client is None:
            raise SerializationError(
                "missing the Avro single-object marker C3 01; the first byte 00 would be the schema-registry "
                "encoding, but SCHEMA_REGISTRY_URL is not set"
            )
        if len(data) < 5:
            raise SerializationError("too short for a schema-registry encoded record")
        deadline = time.monotonic() + _READ_PATIENCE_SECONDS
        while True:
            try:
                decoded = self._deserializer(topic)(data, SerializationContext(topic, MessageField.VALUE))
                break
            except SchemaRegistryError as e:
                if e.http_status_code and 400 <= e.http_status_code < 500:
                    raise SerializationError(f"unknown schema id {int.from_bytes(data[1:5], 'big')}: {e}") from e
                failure: Exception = e
            except Exception as e:  # noqa: BLE001 - fastavro and the HTTP client raise many types
                if not _unreachable(e):
                    raise SerializationError(f"corrupt registry-encoded record: {e}") from e
                failure = e
            if time.monotonic() > deadline:
                # Not the record's fault: no dead letter. The role stops with its offset uncommitted and reads
                # the record again when it is restarted.
                raise RegistryUnavailable(f"schema registry unreachable for {_READ_PATIENCE_SECONDS:.0f} s: {failure}")
            log.warning("schema registry unreachable, retrying: %s", failure)
            time.sleep(1.0)
        if isinstance(decoded, tuple):
            name, record = decoded
        else:
            name, record = REQUESTED, decoded
        try:
            return from_record(name, _untagged(record))
        except (KeyError, TypeError, ValueError) as e:
            raise SerializationError(f"{name} record does not fit the contract: {e}") from e
