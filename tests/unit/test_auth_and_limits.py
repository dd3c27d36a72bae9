"""API keys and token buckets, without a server."""

from __future__ import annotations

import pytest

from producer_api.auth import authenticate, hash_key, new_key, parse_keys
from producer_api.rate_limit import TokenBuckets


def test_a_new_key_authenticates_as_its_name() -> None:
    key, entry = new_key("billing")
    keys = parse_keys(f"other:{'0' * 64},{entry}")
    assert authenticate({"X-API-Key": key}, keys, required=True).client == "billing"
    assert authenticate({"Authorization": f"Bearer {key}"}, keys, required=True).client == "billing"
    assert key not in entry and hash_key(key) in entry


@pytest.mark.parametrize(
    ("headers", "required", "status", "code"),
    [
        ({}, True, 401, "missing_api_key"),
        ({}, False, 200, ""),
        ({"X-API-Key": "guess"}, True, 403, "invalid_api_key"),
        ({"X-API-Key": "guess"}, False, 403, "invalid_api_key"),
    ],
)
def test_refusals(headers: dict[str, str], required: bool, status: int, code: str) -> None:
    verdict = authenticate(headers, parse_keys(new_key("a")[1]), required)
    assert (verdict.status, verdict.code) == (status, code)


@pytest.mark.parametrize("config", ["nocolon", "a:123", f"a:{'g' * 64}"])
def test_malformed_key_config_is_refused(config: str) -> None:
    with pytest.raises(ValueError):
        parse_keys(config)


def test_token_bucket_allows_a_burst_then_the_rate() -> None:
    now = [0.0]
    buckets = TokenBuckets(rate=2.0, burst=3, clock=lambda: now[0])
    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a") == pytest.approx(0.5)
    assert buckets.take("b") == 0.0  # buckets are per client
    now[0] += 0.5
    assert buckets.take("a") == 0.0
    assert buckets.take("a") > 0
