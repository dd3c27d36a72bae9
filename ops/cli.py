"""`imgresize`: operator commands for the resize service.

topics      create the contract's topics if missing, and show them
replay      reprocess requests from a time or an offset (new results supersede old ones)
rebuild     rebuild this host's status view from the topics
apikey NAME make an API key for a client, and the hashed entry for API_KEYS
dlq list    show the dead-letter topic: id, task, source, error
dlq republish ID... | --all   send dead letters back as fresh requests
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from datetime import datetime

from common.kafka import contract_topics, ensure_topics, make_admin
from common.logs import configure_logging
from common.settings import Settings, load_settings
from ops.dead_letters import read_dead_letters, republish
from ops.replay import replay
from producer_api.auth import new_key
from status_store.rebuild import rebuild


def _topics(settings: Settings, args: argparse.Namespace) -> int:
    ensure_topics(settings)
    metadata = make_admin(settings).list_topics(timeout=10)
    for topic in contract_topics(settings):
        print(f"{topic:<32} partitions={len(metadata.topics[topic].partitions)}")
    return 0


def _replay(settings: Settings, args: argparse.Namespace) -> int:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    since = datetime.fromisoformat(args.since) if args.since else None
    count = replay(settings, since=since, offset=args.from_offset, stop=stop)
    print(f"reprocessed {count} requests")
    return 0


def _rebuild(settings: Settings, args: argparse.Namespace) -> int:
    print(f"rebuilt {settings.view_path} from {rebuild(settings)} events")
    return 0


def _apikey(settings: Settings, args: argparse.Namespace) -> int:
    key, entry = new_key(args.name)
    print(f"key (give to the client, shown once): {key}")
    print(f"API_KEYS entry (configure the service): {entry}")
    return 0


def _dlq_list(settings: Settings, args: argparse.Namespace) -> int:
    letters = read_dead_letters(settings)
    for letter in letters:
        print(f"{letter.id:<10} task={letter.key or '-':<36} source={letter.source:<40} error={letter.error}")
    print(f"{len(letters)} dead letters")
    return 0


def _dlq_republish(settings: Settings, args: argparse.Namespace) -> int:
    letters = read_dead_letters(settings)
    chosen = letters if args.all else [letter for letter in letters if letter.id in set(args.ids)]
    unknown = set(args.ids) - {letter.id for letter in chosen}
    if unknown:
        print(f"no such dead letters: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    print(f"republished {republish(settings, chosen)} records")
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="imgresize", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = root.add_subparsers(dest="command", required=True)
    commands.add_parser("topics", help="create missing topics and list them").set_defaults(run=_topics)
    replaying = commands.add_parser("replay", help="reprocess requests from a time or an offset")
    where = replaying.add_mutually_exclusive_group(required=True)
    where.add_argument("--since", help="ISO-8601 time, e.g. 2026-11-28T10:00:00+00:00")
    where.add_argument("--from-offset", type=int, help="the same offset in every partition")
    replaying.set_defaults(run=_replay)
    commands.add_parser("rebuild", help="rebuild the status view from the topics").set_defaults(run=_rebuild)
    keys = commands.add_parser("apikey", help="make a new API key and its API_KEYS entry (only the hash is kept)")
    keys.add_argument("name", help="who the key is for, e.g. billing-service")
    keys.set_defaults(run=_apikey)
    dlq = commands.add_parser("dlq", help="dead letters").add_subparsers(dest="dlq_command", required=True)
    dlq.add_parser("list", help="list dead letters").set_defaults(run=_dlq_list)
    again = dlq.add_parser("republish", help="send dead letters back as fresh requests")
    again.add_argument("ids", nargs="*", help="partition:offset as `dlq list` shows")
    again.add_argument("--all", action="store_true")
    again.set_defaults(run=_dlq_republish)
    return root


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    sys.exit(args.run(settings, args))


if __name__ == "__main__":
    main()
