"""The contract from another language: a Java program written from docs/EVENTS.md, with Apache Avro's and Kafka's
own Java libraries (conformance/java), checks the test vectors and drives a real resize through the topics.

Built by Maven (as the broker's jars are) with the JDK the broker already needs.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from common.store import ObjectStore
from schemas.vectors import VECTORS_DIR
from tests.pipeline import Pipeline, jpeg_bytes

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
PROJECT = ROOT / "conformance" / "java"


@pytest.fixture(scope="module")
def java_program() -> list[str]:
    """The command that runs the conformance program, built on first use."""
    if shutil.which("mvn") is None or shutil.which("java") is None:
        pytest.fail("Maven and a JDK are needed (the local broker needs them too)")
    subprocess.run(
        ["mvn", "-q", "-B", "package", "dependency:copy-dependencies"]
        + ["-DoutputDirectory=target/lib", "-DincludeScope=runtime"],
        cwd=PROJECT,
        check=True,
        timeout=600,
    )
    classpath = f"{PROJECT / 'target' / 'classes'}:{PROJECT / 'target' / 'lib'}/*"
    return ["java", "-cp", classpath, "imgresize.conformance.Conformance"]


def test_apache_avro_for_java_agrees_with_every_vector(java_program: list[str]) -> None:
    done = subprocess.run(
        [*java_program, "vectors", str(ROOT / "schemas"), str(VECTORS_DIR)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    checked = sorted(line.removeprefix("ok ") for line in done.stdout.splitlines() if line.startswith("ok "))
    assert checked == sorted(f.name for f in VECTORS_DIR.glob("*.json"))


def test_a_java_producer_gets_its_image_resized(
    java_program: list[str], pipeline_factory: Callable[..., Pipeline]
) -> None:
    pipeline = pipeline_factory()
    settings = pipeline.settings
    key = "incoming/from-java.jpg"
    ObjectStore(settings).put(key, jpeg_bytes(320, 240), "image/jpeg")
    done = subprocess.run(
        [*java_program, "request", str(ROOT / "schemas"), settings.kafka_bootstrap_servers]
        + [settings.requests_topic, settings.results_topic, settings.s3_bucket, key],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome["event"] == "ResizeCompleted"
    assert (outcome["width"], outcome["height"], outcome["content_type"]) == (64, 48, "image/png")
    # The service saw the same task: its status and its result through the HTTP API.
    status = pipeline.wait_terminal(outcome["task_id"])
    assert status["status"] == "SUCCESS"
    result = pipeline.session.get(pipeline.url(f"/api/v1/images/result/{outcome['task_id']}"), timeout=30)
    assert Image.open(io.BytesIO(result.content)).size == (64, 48)


def test_a_java_consumer_reads_the_registry_encoded_outcome(
    java_program: list[str], pipeline_factory: Callable[..., Pipeline], schema_registry: str
) -> None:
    """Confluent's wire format from another language: the schema fetched from the registry by its id."""
    from common.encoding import register_subjects

    pipeline = pipeline_factory(event_encoding="registry", schema_registry_url=schema_registry)
    settings = pipeline.settings
    register_subjects(settings)
    task_id = pipeline.submit(jpeg_bytes(320, 240), width="80", height="60", format="webp").json()["task_id"]
    assert pipeline.wait_terminal(task_id)["status"] == "SUCCESS"
    done = subprocess.run(
        [*java_program, "registry", schema_registry, settings.kafka_bootstrap_servers, settings.results_topic, task_id],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome["event"] == "ResizeCompleted" and outcome["schema_id"] > 0
    assert (outcome["key"], outcome["content_type"]) == (f"results/{task_id}", "image/webp")
    assert (outcome["width"], outcome["height"]) == (80, 60)
