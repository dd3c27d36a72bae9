"""API keys and token buckets, without a server."""

from __future__ import annotations

import pytest

from producer_api.auth import authenticate, hash_key, new_key, parse_keys
from producer_api.rate_limit import LongPollSlots, TokenBuckets


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


def test_idle_buckets_are_dropped_once_refilled() -> None:
    now = [0.0]
    buckets = TokenBuckets(rate=1.0, burst=5, clock=lambda: now[0])
    for n in range(1000):
        buckets.take(f"client-{n}")
    assert len(buckets) == 1000
    now[0] = 31.0  # every bucket has refilled to its burst: as good as none
    buckets.take("another")
    assert len(buckets) == 1


def test_a_spent_bucket_survives_the_sweep() -> None:
    now = [0.0]
    buckets = TokenBuckets(rate=0.01, burst=2, clock=lambda: now[0])
    buckets.take("busy")
    buckets.take("busy")
    now[0] = 31.0
    buckets.take("other")
    assert buckets.take("busy") > 0  # still short of tokens: not forgotten


def test_long_poll_slots_cap_the_total_and_each_client() -> None:
    slots = LongPollSlots(total=3, per_client=2)
    assert slots.acquire("a") and slots.acquire("a")
    assert not slots.acquire("a")  # a's share
    assert slots.acquire("b")
    assert not slots.acquire("c")  # the process's share
    slots.release("a")
    assert slots.acquire("c")
    slots.release("b")
    slots.release("c")
    slots.release("a")
    assert slots.acquire("a") and slots.acquire("a")


def test_apikey_makes_a_key_its_hashed_entry_and_a_webhook_secret_of_its_own(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from ops.cli import main
    from producer_api.auth import authenticate, parse_keys
    from vocabulary.webhook_secrets import parse_secrets

    secrets_made = []
    for _ in range(2):
        with pytest.raises(SystemExit) as exited:
            main(["apikey", "catalogue"])
        assert exited.value.code == 0
        lines = dict(line.split(": ", 1) for line in capsys.readouterr().out.splitlines())
        key = lines["key (give to the client, shown once)"]
        keys = parse_keys(lines["API_KEYS entry (configure the service)"])
        assert authenticate({"X-API-Key": key}, keys, required=True).client == "catalogue"
        made = parse_secrets(lines["WEBHOOK_SECRETS entry (the service, and the client's webhook receiver)"])
        assert list(made) == ["catalogue"]
        secrets_made.append(made["catalogue"][0])
    assert secrets_made[0] != secrets_made[1]
