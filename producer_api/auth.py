"""API keys: clients send `X-API-Key`; the service keeps only SHA-256 hashes of the keys."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from common.settings import comma_separated


def hash_key(key: str) -> str:
    # Keys are 256-bit random tokens, so a plain SHA-256 is enough: no dictionary to guess from.
    return hashlib.sha256(key.encode()).hexdigest()


def new_key(name: str) -> tuple[str, str]:
    """A fresh key and the `name:hash` entry for API_KEYS."""
    key = secrets.token_urlsafe(32)
    return key, f"{name}:{hash_key(key)}"


def parse_keys(config: str) -> dict[str, str]:
    """`name:hash,name:hash` -> {hash: name}. Raises ValueError on a malformed entry."""
    keys: dict[str, str] = {}
    for entry in comma_separated(config):
        name, sep, digest = entry.partition(":")
        if not sep or len(digest) != 64 or not all(c in "0123456789abcdef" for c in digest.lower()):
            raise ValueError(f"API_KEYS entry {name!r} is not name:sha256-hex")
        keys[digest.lower()] = name
    return keys


@dataclass(frozen=True)
class Verdict:
    client: str | None
    status: int = 200
    code: str = ""
    message: str = ""


def authenticate(headers: Mapping[str, str], keys: dict[str, str], required: bool) -> Verdict:
    """Who is calling: the key's name, or the reason to refuse (401 missing, 403 unknown)."""
    presented = headers.get("X-API-Key") or ""
    if not presented and (headers.get("Authorization") or "").startswith("Bearer "):
        presented = headers["Authorization"].removeprefix("Bearer ").strip()
    if not presented:
        if required:
            return Verdict(None, 401, "missing_api_key", "send an API key in the X-API-Key header")
        return Verdict(None)
    digest = hash_key(presented)
    for known, name in keys.items():
        if hmac.compare_digest(known, digest):
            return Verdict(name)
    return Verdict(None, 403, "invalid_api_key", "the API key is not valid")
