"""Which secrets sign a task's webhooks: its API key's own, or the service's shared one.

WEBHOOK_SECRETS holds `name:secret` entries, comma-separated, one name per API key.
A name listed twice has two valid secrets while one replaces the other: webhooks
are then signed with both (the first listed first), so its receivers can switch
whenever they like. A tenant's receiver holds only its own secret, so it cannot
sign a webhook another tenant's receiver would accept.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field

from common.settings import Settings, comma_separated

MIN_SECRET_LENGTH = 16


def new_secret() -> str:
    """A fresh webhook secret: 256 random bits, URL-safe (no `,` or `:` to break an entry)."""
    return secrets.token_urlsafe(32)


def parse_secrets(config: str) -> dict[str, tuple[str, ...]]:
    """`name:secret,name:secret` -> {name: (secret, ...)}. Raises ValueError on a malformed entry."""
    found: dict[str, tuple[str, ...]] = {}
    for entry in comma_separated(config):
        name, sep, secret = entry.partition(":")
        if not sep or not name or len(secret) < MIN_SECRET_LENGTH:
            raise ValueError(f"WEBHOOK_SECRETS entry for {name!r} is not name:secret (a secret of 16+ characters)")
        found[name] = (*found.get(name, ()), secret)
    for name, listed in found.items():
        if len(listed) > 2:
            raise ValueError(f"WEBHOOK_SECRETS lists {len(listed)} secrets for {name!r}: at most two, while rotating")
    return found


@dataclass(frozen=True)
class WebhookSecrets:
    shared: tuple[str, ...] = ()
    per_key: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings) -> WebhookSecrets:
        shared_secret = settings.webhook_secret.get_secret_value()
        return cls(
            (shared_secret,) if shared_secret else (), parse_secrets(settings.webhook_secrets.get_secret_value())
        )

    def for_owner(self, owner: str | None) -> tuple[str, ...]:
        """The key's own secrets when it has some, else the shared one; empty: its webhooks cannot be signed."""
        if owner is not None and owner in self.per_key:
            return self.per_key[owner]
        return self.shared
