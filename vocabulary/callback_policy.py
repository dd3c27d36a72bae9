"""Which callback URLs may be called: http(s) only, and no private addresses unless allowed.

Checked twice: when a request is accepted (a clear 422 for the client), and
again right before each POST against the addresses it will connect to, so a
name that later resolves to a private address (DNS rebinding) is still refused.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from common.settings import Settings

Resolver = Callable[[str, int], Sequence[str]]
MAX_URL_LENGTH = 2048


class CallbackRefused(ValueError):
    """The URL may not be called; the message says why."""


@dataclass(frozen=True)
class CallbackPolicy:
    allow_private: bool = False
    allowed_hosts: frozenset[str] = frozenset()

    @classmethod
    def from_settings(cls, settings: Settings) -> CallbackPolicy:
        return cls(settings.webhook_allow_private, settings.callback_hosts)


@dataclass(frozen=True)
class CallbackTarget:
    """A checked URL and the addresses it may be reached at."""

    url: str
    scheme: str
    host: str
    port: int
    addresses: tuple[str, ...]


def ascii_host(host: str) -> str:
    """The host as it goes on the wire (DNS, Host, SNI): IDNA-encoded, lower case.

    IDNA's mapping also folds look-alikes such as fullwidth digits, so
    `１.２.３.４` is checked, and called, as the address 1.2.3.4 it names.
    """
    try:
        return host.encode("idna").decode("ascii").lower()
    except UnicodeError as e:
        raise CallbackRefused(f"callback host {host!r} is not a valid host name: {e}") from e


def resolve(host: str, port: int) -> list[str]:
    """Every address a host name resolves to (an IP literal resolves to itself)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as e:
        raise CallbackRefused(f"callback host {host!r} does not resolve: {e}") from e
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


# IPv6 ranges whose last 32 bits are an IPv4 address: NAT64 (well-known and local-use prefixes),
# IPv4-translated (SIIT) and IPv4-compatible.
_EMBEDDING_IPV4 = [
    ipaddress.ip_network("64:ff9b::/96"),
    ipaddress.ip_network("64:ff9b:1::/48"),
    ipaddress.ip_network("::ffff:0:0:0/96"),
    ipaddress.ip_network("::/96"),
]


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, compatible, translated, NAT64, 6to4, Teredo), if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if int(ip) > 1 and any(ip in network for network in _EMBEDDING_IPV4):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_public(address: str) -> bool:
    """Whether an address may be called: global unicast, and so is any IPv4 address it embeds."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = embedded_ipv4(ip)
        if embedded is not None:
            return is_public(str(embedded))
        if ip.is_site_local or ip.is_reserved:
            return False
    return ip.is_global and not ip.is_multicast


def check(url: str, policy: CallbackPolicy, resolver: Resolver = resolve) -> CallbackTarget:
    """The target to call, or CallbackRefused with the reason."""
    if len(url) > MAX_URL_LENGTH:
        raise CallbackRefused(f"callback_url is longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise CallbackRefused(f"callback_url is not a valid URL: {e}") from e
    if parts.scheme not in {"http", "https"}:
        raise CallbackRefused("callback_url must be an http or https URL")
    host = ascii_host(parts.hostname or "")
    if not host:
        raise CallbackRefused("callback_url has no host")
    if parts.username is not None or parts.password is not None:
        raise CallbackRefused("callback_url must not carry credentials")
    port = port or (443 if parts.scheme == "https" else 80)
    addresses = tuple(resolver(host, port))
    if not addresses:
        raise CallbackRefused(f"callback host {host!r} has no address")
    if not policy.allow_private and host not in policy.allowed_hosts:
        private = [a for a in addresses if not is_public(a)]
        if private:
            raise CallbackRefused(f"callback host {host!r} resolves to a non-public address ({private[0]})")
    return CallbackTarget(url, parts.scheme, host, port, addresses)
