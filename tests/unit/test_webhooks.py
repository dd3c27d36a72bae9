"""Webhooks: which URLs may be called, the signature, the body, the retry schedule."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from common.settings import Settings
from schemas import ResizeCompleted, ResizeFailed, StoredImage, VariantImage
from schemas.webhook import sign, verify
from vocabulary.callback_policy import CallbackPolicy, CallbackRefused, check, is_public
from vocabulary.webhook_secrets import WebhookSecrets, parse_secrets
from webhook_notifier.payload import payload_of, wants_webhook
from webhook_notifier.sender import RetryPolicy

# Names resolve through this table only: no DNS in unit tests.
NAMES = {
    "hooks.example.com": ["93.184.216.34"],
    "rebind.example.com": ["93.184.216.34", "10.1.2.3"],
    "internal.example.com": ["10.0.0.7"],
    "v6.example.com": ["2606:2800:220:1:248:1893:25c8:1946"],
}


def fake_resolve(host: str, port: int) -> list[str]:
    if host in NAMES:
        return NAMES[host]
    try:
        is_public(host)
    except ValueError:
        raise CallbackRefused(f"callback host {host!r} does not resolve") from None
    return [host]


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://hooks.example.com/x", "http or https"),
        ("file:///etc/passwd", "http or https"),
        ("gopher://hooks.example.com", "http or https"),
        ("http:///path-only", "no host"),
        ("http://user:secret@hooks.example.com/", "credentials"),
        ("http://127.0.0.1:8080/hook", "non-public"),
        ("http://10.0.0.1/hook", "non-public"),
        ("http://172.16.5.4/hook", "non-public"),
        ("http://192.168.1.1/hook", "non-public"),
        ("http://169.254.169.254/latest/meta-data/", "non-public"),
        ("http://0.0.0.0/", "non-public"),
        ("http://[::1]/hook", "non-public"),
        ("http://[fd00::1]/hook", "non-public"),
        ("http://[::ffff:127.0.0.1]/hook", "non-public"),
        ("http://100.64.0.1/hook", "non-public"),
        ("http://internal.example.com/hook", "non-public"),
        # One private address among public ones is enough to refuse.
        ("http://rebind.example.com/hook", "non-public"),
        ("http://nowhere.invalid/hook", "does not resolve"),
        ("http://hooks.example.com:99999/", "not a valid URL"),
        ("https://hooks.example.com/" + "a" * 3000, "longer than"),
    ],
)
def test_refused_callbacks_say_why(url: str, reason: str) -> None:
    with pytest.raises(CallbackRefused, match=reason):
        check(url, CallbackPolicy(), fake_resolve)


def test_real_resolution_of_localhost_and_numeric_tricks_is_refused() -> None:
    # The system resolver: 'localhost' and the hex form of 127.0.0.1 both land on loopback.
    for url in ("http://localhost:8080/", "http://0x7f000001/", "http://2130706433/"):
        with pytest.raises(CallbackRefused, match="non-public"):
            check(url, CallbackPolicy())


@pytest.mark.parametrize(
    "url", ["https://hooks.example.com/h?x=1", "http://93.184.216.34:8080/", "https://v6.example.com/"]
)
def test_public_callbacks_are_allowed(url: str) -> None:
    target = check(url, CallbackPolicy(), fake_resolve)
    assert target.url == url and target.addresses


def test_configuration_can_allow_private_addresses_or_named_hosts() -> None:
    assert check("http://127.0.0.1:9/h", CallbackPolicy(allow_private=True), fake_resolve).port == 9
    allowed = CallbackPolicy.from_settings(Settings(webhook_allowed_hosts="Internal.example.com, other"))
    assert check("http://internal.example.com/h", allowed, fake_resolve).addresses == ("10.0.0.7",)
    with pytest.raises(CallbackRefused):
        check("http://10.0.0.1/h", allowed, fake_resolve)
    with pytest.raises(CallbackRefused, match="http or https"):
        check("ftp://127.0.0.1/", CallbackPolicy(allow_private=True), fake_resolve)


def test_signature_verifies_only_the_signed_body_with_the_secret_in_time() -> None:
    body = b'{"task_id":"t"}'
    header = sign("s3cret", body, timestamp=1_700_000_000)
    assert verify("s3cret", body, header, now=1_700_000_100)
    assert not verify("s3cret", body + b" ", header, now=1_700_000_100)
    assert not verify("other", body, header, now=1_700_000_100)
    assert not verify("s3cret", body, header, now=1_700_000_000 + 301)
    assert not verify("s3cret", body, header.replace("t=1700000000", "t=1700000100"), now=1_700_000_100)
    assert not verify("s3cret", body, "garbage", now=1_700_000_100)
    # Any malformed header is a False, never an exception.
    for malformed in ("t=1700000000,v1=ünïcödé", "t=1700000000,v1=", "t=x,v1=00", ",,,=", "t=1700000000"):
        assert not verify("s3cret", body, malformed, now=1_700_000_100)


def test_while_a_secret_rotates_the_webhook_verifies_with_either_and_no_other() -> None:
    body = b'{"task_id":"t"}'
    header = sign(("new-secret-0123456", "old-secret-0123456"), body, timestamp=1_700_000_000)
    assert header.count("v1=") == 2
    assert verify("new-secret-0123456", body, header, now=1_700_000_000)
    assert verify("old-secret-0123456", body, header, now=1_700_000_000)
    assert not verify("third-secret-01234", body, header, now=1_700_000_000)
    # A second timestamp is not a way to slip an old signature in.
    assert not verify("new-secret-0123456", body, header + ",t=1", now=1_700_000_000)


def test_each_key_signs_with_its_own_secrets_and_keys_without_use_the_shared_one() -> None:
    secrets = WebhookSecrets(
        ("shared-secret-0123",),
        parse_secrets("alpha:alpha-secret-new-1,beta:beta-secret-0123456,alpha:alpha-secret-old-1"),
    )
    assert secrets.for_owner("alpha") == ("alpha-secret-new-1", "alpha-secret-old-1")
    assert secrets.for_owner("beta") == ("beta-secret-0123456",)
    assert secrets.for_owner("gamma") == secrets.for_owner(None) == ("shared-secret-0123",)
    assert WebhookSecrets((), parse_secrets("alpha:alpha-secret-new-1")).for_owner("gamma") == ()
    for malformed in (
        "alpha",
        "alpha:short",
        ":no-name-secret-0123",
        "a:s-0123456789abcdef,a:t-0123456789abcdef,a:u-0123456789abcdef",
    ):
        with pytest.raises(ValueError):
            parse_secrets(malformed)


IMAGE = StoredImage("images", "results/t/thumb", "image/webp", 100, 80, 1234, "e1")
TASK = "0c7c5a8e-3b1c-4d4e-9d7b-1a2b3c4d5e6f"
AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_payload_of_a_success_lists_result_and_variant_urls() -> None:
    event = ResizeCompleted(
        task_id=TASK,
        event_id="e-1",
        occurred_at=AT,
        result=IMAGE,
        source_width=1000,
        source_height=800,
        duration_ms=5,
        variants=(VariantImage("thumb", IMAGE),),
        callback_url="https://hooks.example.com/h",
    )
    body = payload_of(event, "https://img.example.com/")
    assert body["type"] == "resize.completed" and body["status"] == "SUCCESS"
    assert body["occurred_at"] == "2026-01-02T03:04:05Z"
    assert body["result"]["url"] == f"https://img.example.com/api/v1/images/result/{TASK}"
    assert body["variants"] == [
        {
            "name": "thumb",
            "url": f"https://img.example.com/api/v1/images/result/{TASK}/thumb",
            "content_type": "image/webp",
            "width": 100,
            "height": 80,
            "size_bytes": 1234,
        }
    ]
    json.dumps(body)


def test_only_final_outcomes_with_a_callback_are_announced() -> None:
    failed = ResizeFailed(task_id=TASK, error_code="corrupt_image", error_message="bad", callback_url="https://h/")
    assert wants_webhook(failed)
    assert payload_of(failed)["error"] == {"code": "corrupt_image", "message": "bad"}
    assert not wants_webhook(
        ResizeFailed(task_id=TASK, error_code="x", error_message="y", retriable=True, callback_url="https://h/")
    )
    assert not wants_webhook(ResizeFailed(task_id=TASK, error_code="x", error_message="y"))


def test_backoff_doubles_up_to_its_cap() -> None:
    retry = RetryPolicy(max_attempts=6, backoff_seconds=0.5, backoff_max_seconds=3.0)
    assert [retry.delay(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


@pytest.mark.parametrize(
    "address",
    [
        "::127.0.0.1",  # IPv4-compatible
        "::ffff:0:127.0.0.1",  # IPv4-translated (SIIT)
        "64:ff9b::10.0.0.5",  # NAT64, well-known prefix
        "64:ff9b:1::a9fe:a9fe",  # NAT64, local-use prefix: 169.254.169.254
        "2002:a9fe:a9fe::",  # 6to4 of 169.254.169.254
        "2001:0:4136:e378:8000:63bf:3f57:fdf2",  # Teredo, client 192.168.2.13
        "fec0::1",  # site-local
        "::ffff:10.1.2.3",  # IPv4-mapped
    ],
)
def test_ipv6_forms_of_private_ipv4_and_reserved_ranges_are_refused(address: str) -> None:
    with pytest.raises(CallbackRefused, match="non-public"):
        check(f"http://[{address}]/hook", CallbackPolicy(), fake_resolve)


@pytest.mark.parametrize("address", ["64:ff9b::5db8:d822", "::ffff:93.184.216.34", "2002:5db8:d822::"])
def test_ipv6_forms_of_public_ipv4_are_judged_by_the_ipv4_rules(address: str) -> None:
    assert check(f"http://[{address}]/hook", CallbackPolicy(), fake_resolve).addresses == (address,)
