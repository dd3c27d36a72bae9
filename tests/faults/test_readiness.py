"""/readyz follows the broker: unready while it is down, ready again after."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.faults.conftest import RestartableKafka
from tests.pipeline import Pipeline

pytestmark = pytest.mark.faults


def test_readyz_turns_unready_while_the_broker_is_down(
    own_kafka: RestartableKafka, pipeline_factory: Callable[..., Pipeline], wait_for: Callable[..., None]
) -> None:
    pipeline = pipeline_factory(kafka_bootstrap_servers=own_kafka.bootstrap_servers)

    def readiness() -> tuple[int, dict[str, object]]:
        response = pipeline.session.get(pipeline.url("/readyz"), timeout=30)
        return response.status_code, response.json()

    wait_for(lambda: readiness()[0] == 200, 30, "ready")
    assert readiness()[1]["checks"] == {"kafka": "ok", "store": "ok", "projector": "ok"}
    own_kafka.kill()
    status, body = readiness()
    assert status == 503
    assert body["code"] == "not_ready" and str(body["checks"]["kafka"]).startswith("unreachable")  # type: ignore[index]
    assert pipeline.session.get(pipeline.url("/healthz"), timeout=30).status_code == 200
    own_kafka.start()
    wait_for(lambda: readiness()[0] == 200, 60, "ready again")
