"""`status-projector run|rebuild`: keep this host's view current, or rebuild it from the topics."""

from __future__ import annotations

import argparse
import signal
import threading

from common import metrics
from common.kafka import check_topics
from common.logs import configure_logging
from common.settings import load_settings
from common.version import service_version
from status_store.projector import Projector
from status_store.rebuild import rebuild


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="status-projector", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {service_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="fold new events into the view until SIGTERM")
    sub.add_parser("rebuild", help="replay both topics from the start into a fresh view and swap it in")
    args = parser.parse_args(argv)
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    metrics.serve(settings.metrics_port, settings.metrics_host)
    check_topics(settings)
    if args.command == "rebuild":
        events = rebuild(settings)
        print(f"rebuilt {settings.view_path} from {events} events")
        return
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    projector = Projector(settings)
    try:
        projector.run(stop)
    finally:
        projector.close()


if __name__ == "__main__":
    main()
