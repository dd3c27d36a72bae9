"""Another service, in its own process, with only `schemas`, minio and confluent-kafka, gets a resize done."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.pipeline import Pipeline

pytestmark = pytest.mark.e2e

OTHER_SERVICE = """
import io, json, sys, uuid
from confluent_kafka import Consumer, Producer
from minio import Minio
from PIL import Image
from schemas.client import decode_outcome, produce_request, resize_request
from schemas import ResizeCompleted, ResizeFailed

config = json.loads(sys.argv[1])
store = Minio(config["s3"], access_key=config["key"], secret_key=config["secret"], secure=False)
picture = io.BytesIO()
Image.new("RGB", (640, 360), (30, 120, 200)).save(picture, "JPEG")
key = f"incoming/{uuid.uuid4()}.jpg"
data = picture.getvalue()
store.put_object(config["bucket"], key, io.BytesIO(data), len(data), content_type="image/jpeg")

group = f"other-{uuid.uuid4()}"
results = Consumer({"bootstrap.servers": config["kafka"], "group.id": group, "auto.offset.reset": "earliest"})
results.subscribe([config["results"]])
request = resize_request(bucket=config["bucket"], key=key, width=160, mode="fit", producer="other-service")
produce_request(Producer({"bootstrap.servers": config["kafka"], "acks": "all"}), request, topic=config["requests"])
while True:
    msg = results.poll(1.0)
    if msg is None or msg.error():
        continue
    outcome = decode_outcome(msg.value())
    if outcome.task_id == request.task_id and isinstance(outcome, (ResizeCompleted, ResizeFailed)):
        break
results.close()
print(json.dumps({"task_id": request.task_id, "outcome": type(outcome).__name__,
                  "size": [getattr(outcome, "result").width, getattr(outcome, "result").height]}))
"""


def test_a_separate_service_requests_a_resize_over_kafka(pipeline: Pipeline) -> None:
    settings = pipeline.settings
    config = {
        "kafka": settings.kafka_bootstrap_servers,
        "s3": settings.s3_endpoint_host,
        "key": settings.s3_access_key,
        "secret": settings.s3_secret_key.get_secret_value(),
        "bucket": settings.s3_bucket,
        "requests": settings.requests_topic,
        "results": settings.results_topic,
    }
    done = subprocess.run(
        [sys.executable, "-c", OTHER_SERVICE, json.dumps(config)], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["outcome"] == "ResizeCompleted" and report["size"] == [160, 90]
    # The outcome is in the results topic; the view folds it a moment later (it is a projection of the log).
    status = pipeline.wait_terminal(report["task_id"])
    assert status["status"] == "SUCCESS" and status["result"]["width"] == 160
