"""`python -m webhook_notifier`: signed outcome POSTs; SIGTERM stops after the batch in hand."""

from __future__ import annotations

import signal
import threading

from common import metrics
from common.kafka import check_topics
from common.logs import configure_logging
from common.settings import load_settings
from webhook_notifier.notifier import WebhookNotifier


def main() -> None:
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    metrics.serve(settings.metrics_port, settings.metrics_host)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    check_topics(settings)
    WebhookNotifier(settings).run(stop)


if __name__ == "__main__":
    main()
