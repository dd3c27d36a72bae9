"""The start of every long-running role: settings, logs, metrics, topics checked, SIGTERM to stop."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable

from common import metrics
from common.kafka import check_topics
from common.logs import configure_logging
from common.settings import Settings, load_settings


def run_role(run: Callable[[Settings, threading.Event], None]) -> None:
    """Set the process up from the environment, then `run(settings, stop)` until SIGTERM or SIGINT."""
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    metrics.serve(settings.metrics_port, settings.metrics_host)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    check_topics(settings)
    run(settings, stop)
