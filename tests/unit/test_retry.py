"""The retry record: attempt count and due time, and the request's own headers kept."""

from __future__ import annotations

from common.backoff import exponential, jittered
from resize_worker.retry import ATTEMPT_HEADER, NOT_BEFORE_HEADER, retry_headers


def test_retry_headers_keep_the_requests_own_and_replace_the_previous_schedule() -> None:
    original = [("traceparent", b"00-abc-01"), (ATTEMPT_HEADER, b"2"), (NOT_BEFORE_HEADER, b"1"), ("tenant", b"t-9")]
    headers = retry_headers(3, 1.5, now=1000.0, original=original)
    assert headers == [
        ("traceparent", b"00-abc-01"),
        ("tenant", b"t-9"),
        (ATTEMPT_HEADER, b"3"),
        (NOT_BEFORE_HEADER, b"1001500"),
    ]


def test_backoff_stays_within_its_bounds() -> None:
    for attempt in range(1, 12):
        delay = jittered(attempt, 0.5, 10.0)
        assert 0.0 <= delay <= 10.0
        assert delay <= exponential(attempt, 0.5, 10.0)


def test_one_exponential_formula_for_every_retry() -> None:
    assert [exponential(n, 0.5, 3.0) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert exponential(0, 0.5, 3.0) == 0.5  # attempt numbers start at 1; less is the first attempt


def test_stopping_while_the_broker_is_away_raises_stopped_and_commits_nothing() -> None:
    """An unacknowledged outcome and a stop request: Stopped, not a silent return the loop could commit after."""
    import threading

    import pytest
    from confluent_kafka import Producer

    from common.settings import Settings
    from resize_worker.delivery import AtLeastOnce, Record, Stopped

    settings = Settings(kafka_bootstrap_servers="127.0.0.1:1", produce_timeout_seconds=0.5)
    producer = Producer({"bootstrap.servers": "127.0.0.1:1", "message.timeout.ms": 500, "log_level": 0})
    stop = threading.Event()
    threading.Timer(1.0, stop.set).start()
    delivery = AtLeastOnce(settings, producer, stop)
    with pytest.raises(Stopped):
        delivery.send(Record("results", "task", b"outcome"))


def test_done_retry_or_dead_letter_is_decided_in_one_place() -> None:
    from resize_worker.retry import Step, next_step

    assert next_step(False, False, 1, 5) is Step.DONE  # a success
    assert next_step(True, False, 1, 5) is Step.DONE  # a permanent failure: another attempt would repeat it
    assert next_step(True, True, 1, 5) is Step.RETRY
    assert next_step(True, True, 4, 5) is Step.RETRY
    assert next_step(True, True, 5, 5) is Step.DEAD_LETTER


def test_a_bounded_retry_raises_the_last_transient_failure_once_its_time_is_up() -> None:
    import threading

    import pytest

    from resize_worker.delivery import until_done

    calls = []

    def refused() -> None:
        calls.append(1)
        raise TimeoutError("the group is rebalancing")

    with pytest.raises(TimeoutError):
        until_done(refused, lambda e: True, "send_offsets", threading.Event(), first_wait=0.01, give_up_after=0.2)
    assert len(calls) >= 2  # tried again before giving up


def test_a_transactional_call_that_blocks_past_its_bound_is_a_fatal_error() -> None:
    import threading

    import pytest
    from confluent_kafka import KafkaException

    from resize_worker.delivery import bounded
    from resize_worker.worker import starts_over

    release = threading.Event()
    with pytest.raises(KafkaException) as stuck:
        bounded(lambda: release.wait(10), 0.2, "send_offsets")
    release.set()
    assert stuck.value.args[0].fatal()
    assert starts_over(stuck.value.args[0])  # the worker starts fresh clients, it does not stop
    bounded(lambda: None, 1.0, "commit_transaction")  # a call that returns in time is left alone
    with pytest.raises(ValueError):
        bounded(lambda: int("x"), 1.0, "abort_transaction")  # its own error is its own
