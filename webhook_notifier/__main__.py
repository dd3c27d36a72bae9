"""`webhook-notifier`: signed outcome POSTs; SIGTERM stops after the batch in hand."""

from __future__ import annotations

from common.role import run_role
from webhook_notifier.notifier import WebhookNotifier


def main() -> None:
    run_role(lambda settings, stop: WebhookNotifier(settings).run(stop), "webhook-notifier", __doc__ or "")


if __name__ == "__main__":
    main()
