"""The sender against hostile receivers and odd hosts: no attempt raises, none holds memory or time.

Receivers are raw sockets on 127.0.0.1 started here; names resolve through a table (no DNS).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from vocabulary.callback_policy import CallbackPolicy, CallbackRefused, check, is_public
from webhook_notifier.sender import DELIVERED, FAILED, MAX_RESPONSE_BYTES, REFUSED, Sender

LOOPBACK = CallbackPolicy(allow_private=True)
SECRETS = ("secret-of-sixteen-chars",)


def table_resolve(host: str, port: int) -> list[str]:
    names = {"xn--bcher-kva.example": ["93.184.216.34"]}
    if host in names:
        return names[host]
    is_public(host)  # an IP literal resolves to itself; anything else raises ValueError
    return [host]


class Receiver:
    """A one-connection-at-a-time HTTP receiver whose answer is a function of the socket."""

    def __init__(self, answer: Callable[[socket.socket, bytes], None]) -> None:
        self.answer = answer
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.requests: list[bytes] = []
        self.sent = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with conn:
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    head += chunk
                self.requests.append(head)
                # OSError: the sender hung up, which is what these receivers are here to see.
                with contextlib.suppress(OSError):
                    self.answer(conn, head)

    def close(self) -> None:
        self.server.close()


@pytest.fixture
def receivers() -> Iterator[Callable[[Callable[[socket.socket, bytes], None]], Receiver]]:
    started: list[Receiver] = []

    def start(answer: Callable[[socket.socket, bytes], None]) -> Receiver:
        started.append(Receiver(answer))
        return started[-1]

    yield start
    for receiver in started:
        receiver.close()


def sender(timeout: float = 2.0) -> Sender:
    return Sender(LOOPBACK, timeout_seconds=timeout, user_agent="imgresize-webhooks")


def test_a_huge_response_body_is_not_read(receivers: Callable[..., Receiver]) -> None:
    def huge(conn: socket.socket, head: bytes) -> None:
        size = 200 * 1024 * 1024
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
        block = b"x" * 65536
        receiver.sent = 0
        while receiver.sent < size:
            conn.sendall(block)
            receiver.sent += len(block)

    receiver = receivers(huge)
    attempt = sender().attempt(f"http://127.0.0.1:{receiver.port}/hook", "e1", b"{}", SECRETS)
    assert attempt.outcome == DELIVERED
    time.sleep(0.2)
    # The sender hung up after its cap: the receiver could not push the 200 MiB through.
    assert receiver.sent < 32 * 1024 * 1024, receiver.sent
    assert MAX_RESPONSE_BYTES <= 64 * 1024


def test_a_trickling_body_cannot_hold_an_attempt_past_its_timeout(receivers: Callable[..., Receiver]) -> None:
    def trickle(conn: socket.socket, head: bytes) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
        for _ in range(1000):
            conn.sendall(b"x")
            time.sleep(0.3)

    receiver = receivers(trickle)
    started = time.monotonic()
    attempt = sender(timeout=1.0).attempt(f"http://127.0.0.1:{receiver.port}/hook", "e2", b"{}", SECRETS)
    assert time.monotonic() - started < 2.5
    assert attempt.outcome == DELIVERED  # the status was a 200; the rest of the body is not waited for


def test_a_non_ascii_path_is_percent_encoded(receivers: Callable[..., Receiver]) -> None:
    def ok(conn: socket.socket, head: bytes) -> None:
        conn.sendall(b"HTTP/1.1 204 No Content\r\n\r\n")

    receiver = receivers(ok)
    attempt = sender().attempt(f"http://127.0.0.1:{receiver.port}/hoök?name=ü", "e3", b"{}", SECRETS)
    assert attempt.outcome == DELIVERED
    assert receiver.requests[0].startswith(b"POST /ho%C3%B6k?name=%C3%BC HTTP/1.1\r\n")


def test_a_receiver_that_hangs_up_is_a_failed_attempt_not_an_exception(receivers: Callable[..., Receiver]) -> None:
    receiver = receivers(lambda conn, head: conn.sendall(b"garbage\r\n\r\n"))
    assert sender().attempt(f"http://127.0.0.1:{receiver.port}/hook", "e4", b"{}", SECRETS).outcome == FAILED


def test_fullwidth_digits_are_checked_as_the_address_they_name() -> None:
    with pytest.raises(CallbackRefused, match="non-public"):
        check("http://１２７.０.０.１/hook", CallbackPolicy(), table_resolve)
    target = check("http://１.２.３.４/hook", CallbackPolicy(), table_resolve)
    assert target.host == "1.2.3.4" and target.addresses == ("1.2.3.4",)


def test_an_idn_host_is_used_in_its_ascii_form() -> None:
    target = check("https://Bücher.example/hook", CallbackPolicy(), table_resolve)
    assert target.host == "xn--bcher-kva.example"


def test_a_host_idna_cannot_encode_is_refused_by_the_sender() -> None:
    attempt = sender().attempt("http://" + "a" * 70 + ".example/hook", "e5", b"{}", SECRETS)
    assert attempt.outcome == REFUSED and "not a valid host name" in attempt.problem
