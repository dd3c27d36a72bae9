"""The retry record: attempt count and due time, and the request's own headers kept."""

from __future__ import annotations

from resize_worker.retry import ATTEMPT_HEADER, NOT_BEFORE_HEADER, backoff_delay, retry_headers


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
        delay = backoff_delay(attempt, 0.5, 10.0)
        assert 0.0 <= delay <= 10.0
