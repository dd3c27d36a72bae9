"""Retries through the retry topic: the request travels again with its attempt and a not-before time.

A failed attempt never blocks its partition: the request is re-produced to the
retry topic and its offset committed; the worker pauses only the retry
partition whose head is not due yet.
"""

from __future__ import annotations

import enum
import time

from confluent_kafka import Message

from common.kafka import headers_of

ATTEMPT_HEADER = "imgresize.attempt"
NOT_BEFORE_HEADER = "imgresize.not-before-ms"


class Step(enum.Enum):
    """What follows an attempt."""

    DONE = "done"  # a success, or a failure that another attempt would repeat
    RETRY = "retry"  # a transient failure with attempts left: through the retry topic
    DEAD_LETTER = "dead_letter"  # a transient failure with no attempts left


def next_step(failed: bool, transient: bool, attempt: int, max_attempts: int) -> Step:
    """The one place that decides between done, retry and dead letter."""
    if not (failed and transient):
        return Step.DONE
    return Step.RETRY if attempt < max_attempts else Step.DEAD_LETTER


def _header(msg: Message, name: str) -> bytes | None:
    for key, value in headers_of(msg):
        if key == name and isinstance(value, bytes):
            return value
    return None


def attempt_of(msg: Message) -> int:
    """Which attempt this delivery is: 1 for a fresh request, more for a retry."""
    raw = _header(msg, ATTEMPT_HEADER)
    try:
        return max(1, int(raw)) if raw else 1
    except ValueError:
        return 1


def not_before_of(msg: Message) -> float:
    """Epoch seconds before which a retry must not run (0 for none)."""
    raw = _header(msg, NOT_BEFORE_HEADER)
    try:
        return int(raw) / 1000 if raw else 0.0
    except ValueError:
        return 0.0


def retry_headers(
    next_attempt: int,
    delay: float,
    now: float | None = None,
    original: list[tuple[str, str | bytes | None]] | None = None,
) -> list[tuple[str, str | bytes | None]]:
    """The retry record's headers: the request's own (a trace id, say), then the attempt and when it is due."""
    not_before_ms = int(((now if now is not None else time.time()) + delay) * 1000)
    kept = [(k, v) for k, v in original or [] if k not in {ATTEMPT_HEADER, NOT_BEFORE_HEADER}]
    return [*kept, (ATTEMPT_HEADER, str(next_attempt).encode()), (NOT_BEFORE_HEADER, str(not_before_ms).encode())]
