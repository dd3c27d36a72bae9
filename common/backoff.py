"""How long to wait before trying again: one formula for every retry in the service."""

from __future__ import annotations

import random


def exponential(attempt: int, base: float, cap: float) -> float:
    """base, 2 x base, 4 x base, ... for attempts 1, 2, 3, ..., never more than cap."""
    return float(min(cap, base * 2 ** (max(1, attempt) - 1)))


def jittered(attempt: int, base: float, cap: float) -> float:
    """Full jitter: uniform in [0, exponential(...)], so many tasks failing together do not retry together."""
    return random.uniform(0, exponential(attempt, base, cap))
