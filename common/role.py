"""The start of every long-running role: settings, logs, metrics, topics checked, SIGTERM to stop."""

from __future__ import annotations

import argparse
import signal
import threading
from collections.abc import Callable, Sequence

from common import metrics
from common.kafka import check_topics
from common.logs import configure_logging
from common.settings import Settings, load_settings
from common.version import service_version

_SETTINGS_HELP = """settings come from the environment, by upper-case name, for example:
  KAFKA_BOOTSTRAP_SERVERS (127.0.0.1:9092)  S3_ENDPOINT, S3_ACCESS_KEY, S3_SECRET_KEY, S3_BUCKET (images)
  METRICS_PORT (0: no metrics)  LOG_LEVEL (INFO)  LOG_FORMAT (text|json)
every setting, with its default and what it does: docs/reference/configuration.md (`make docs`)"""


def role_arguments(
    prog: str,
    description: str,
    argv: Sequence[str] | None = None,
    options: Callable[[argparse.ArgumentParser], None] | None = None,
) -> argparse.Namespace:
    """The role's command line: --help, --metrics-port and the role's own `options` (each named after the
    setting it overrides), answered without touching the network."""
    parser = argparse.ArgumentParser(
        prog=prog, description=description, epilog=_SETTINGS_HELP, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--metrics-port", type=int, help="serve Prometheus metrics on this port (0: none)")
    parser.add_argument("--version", action="version", version=f"%(prog)s {service_version()}")
    if options is not None:
        options(parser)
    return parser.parse_args(argv)


def run_role(
    run: Callable[[Settings, threading.Event], None],
    prog: str,
    description: str,
    argv: Sequence[str] | None = None,
    options: Callable[[argparse.ArgumentParser], None] | None = None,
) -> None:
    """Read the command line, set the process up from the environment, then `run(settings, stop)` until SIGTERM."""
    args = role_arguments(prog, description, argv, options)
    overrides = {name: value for name, value in vars(args).items() if value is not None and name != "version"}
    settings = load_settings(**overrides)
    configure_logging(settings.log_level, settings.log_format)
    metrics.serve(settings.metrics_port, settings.metrics_host)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    check_topics(settings)
    run(settings, stop)
