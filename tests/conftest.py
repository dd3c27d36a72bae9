"""Session-wide fixtures: real Kafka and S3, fresh names per test."""

from __future__ import annotations

import os
import signal
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from common.kafka import ensure_topics
from common.settings import Settings
from common.store import ObjectStore
from local_infra.stack import Infrastructure, provide

ROOT = Path(__file__).resolve().parent.parent
# The whole pipeline (API, workers, projector) as fixtures, for the e2e and fault tests.
pytest_plugins = ["tests.pipeline"]
hypothesis_settings.register_profile("ci", max_examples=200, deadline=None)
hypothesis_settings.load_profile("ci")


def _sigterm_as_interrupt(signum: int, frame: object) -> None:
    # A terminated test run still runs fixture finalizers, so every server stops by PID.
    raise KeyboardInterrupt


signal.signal(signal.SIGTERM, _sigterm_as_interrupt)


@pytest.fixture(scope="session")
def infrastructure() -> Iterator[Infrastructure]:
    """A real broker and S3 server for the whole session (given addresses win)."""
    run_dir = os.environ.get("LOCAL_INFRA_RUN_DIR")
    with (
        tempfile.TemporaryDirectory(prefix="imgresize-test.", dir=run_dir) as tmp,
        provide(Path(tmp), ROOT / ".cache") as infra,
    ):
        yield infra


@pytest.fixture(scope="session")
def schema_registry() -> Iterator[str]:
    """A real Confluent-compatible schema registry (Apicurio, in memory) for the session: its URL.
    SCHEMA_REGISTRY_URL in the environment wins."""
    given = os.environ.get("SCHEMA_REGISTRY_URL")
    if given:
        yield given
        return
    from local_infra.registry import start_registry

    run_dir = os.environ.get("LOCAL_INFRA_RUN_DIR")
    with tempfile.TemporaryDirectory(prefix="imgresize-registry.", dir=run_dir) as tmp:
        registry = start_registry(Path(tmp))
        try:
            yield registry.url
        finally:
            registry.stop()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _fresh_names(infrastructure: Infrastructure, view_path: Path) -> dict[str, object]:
    """Settings on the real infrastructure with fresh topics, groups and bucket of their own."""
    suffix = uuid.uuid4().hex[:10]
    defaults = {
        "kafka_bootstrap_servers": infrastructure.kafka_bootstrap_servers,
        "s3_endpoint": infrastructure.s3_endpoint,
        "s3_access_key": infrastructure.s3_access_key,
        "s3_secret_key": infrastructure.s3_secret_key,
        "s3_bucket": f"bucket-{suffix}",
        # Every topic of the contract, so no two tests ever share one.
        **{
            name: f"{name.removesuffix('_topic')}-{suffix}" for name in Settings.model_fields if name.endswith("_topic")
        },
        "worker_group": f"workers-{suffix}",
        "webhook_group": f"webhooks-{suffix}",
        "lifecycle_group": f"janitor-{suffix}",
        "view_path": view_path,
        "topic_partitions": 3,
        "retry_backoff_seconds": 0.05,
        # Load tests share one client address; the rate-limit test sets its own.
        "rate_limit_per_second": 100_000.0,
        "rate_limit_burst": 100_000,
        "read_rate_limit_per_second": 100_000.0,
        "read_rate_limit_burst": 100_000,
        # Likewise the first lane's allowance: a test's uploads stay in the lane they ask for.
        "interactive_rate_per_second": 100_000.0,
        "interactive_burst": 100_000,
    }
    return defaults


def settings_on(infrastructure: Infrastructure, view_path: Path, **overrides: object) -> Settings:
    """Settings of their own on the real infrastructure, for fixtures wider than one test."""
    return Settings(**{**_fresh_names(infrastructure, view_path), **overrides})  # type: ignore[arg-type]


@pytest.fixture
def settings_factory(infrastructure: Infrastructure, tmp_path: Path) -> Callable[..., Settings]:
    """Settings on the real infrastructure with this test's own topics, group, bucket and view."""
    defaults = _fresh_names(infrastructure, tmp_path / "view.sqlite3")

    def make(**overrides: object) -> Settings:
        return Settings(**{**defaults, **overrides})  # type: ignore[arg-type]

    return make


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    """Provisioned settings: topics and bucket exist."""
    made = settings_factory()
    ensure_topics(made)
    ObjectStore(made).ensure_bucket()
    return made
