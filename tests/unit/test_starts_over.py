"""Which fatal producer errors a worker survives with fresh Kafka clients, and which stop it."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError

from resize_worker.worker import starts_over


def test_a_fatal_error_that_is_not_a_fencing_starts_over() -> None:
    # A commit retried after its coordinator died finds the transaction aborted by the new one.
    assert starts_over(KafkaError(KafkaError.INVALID_TXN_STATE, "Failed to end transaction", fatal=True))


@pytest.mark.parametrize("code", [KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH, KafkaError._FENCED])
def test_a_fenced_worker_stops_instead_of_fencing_the_newer_instance(code: int) -> None:
    assert not starts_over(KafkaError(code, "fenced", fatal=True))


def test_an_error_that_is_not_fatal_is_left_to_the_caller() -> None:
    assert not starts_over(KafkaError(KafkaError._TIMED_OUT, "retry", retriable=True))
