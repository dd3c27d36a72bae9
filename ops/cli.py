"""`imgresize`: the resize service from the command line.

Clients (over HTTP; IMGRESIZE_URL, IMGRESIZE_API_KEY or --url, --api-key):
submit FILES|DIRS --size 400x400   upload a batch, with a progress bar and a summary
status ID                          a task's status as JSON
delete ID                          delete a task: its original, results and variants
result ID -o FILE                  download a result

Operators (straight to Kafka; settings from the environment, as the services):
topics      create the contract's topics if missing, and show them by lane
lanes       each lane's topics, what its workers have done and what waits (lag)
replay      reprocess requests from a time or an offset in the bulk lane (new results supersede old ones)
rebuild     rebuild this host's status view from the topics
apikey NAME make an API key for a client, its hashed entry for API_KEYS and a WEBHOOK_SECRETS entry
lifecycle status   the TTLs, the store's rules, expired objects waiting, topic retention against the promise
lifecycle run      sweep expired objects now (safe beside a running janitor)
dlq list    show the dead-letter topic: id, task, source, error
dlq republish ID... | --all   send dead letters back as fresh requests (in the bulk lane)
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from datetime import datetime
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from common.encoding import register_subjects
from common.kafka import ensure_topics, make_admin
from common.lanes import Lane
from common.logs import configure_logging
from common.settings import Settings, load_settings
from common.version import service_version
from ops.client import Api, collect, parse_size, run_batch
from ops.dead_letters import read_dead_letters, republish
from ops.lanes import lane_backlogs
from ops.lifecycle import lifecycle_status, run_sweep
from ops.replay import replay
from producer_api.auth import new_key
from status_store.rebuild import rebuild
from vocabulary.options import MODES, OUTPUT_FORMATS
from vocabulary.webhook_secrets import new_secret


def _api(args: argparse.Namespace) -> Api:
    return Api(args.url, args.api_key)


def _submit(args: argparse.Namespace) -> int:
    try:
        fields = parse_size(args.size)
    except ValueError as e:
        print(e, file=sys.stderr)
        return 2
    fields.update({k: v for k, v in (("mode", args.mode), ("format", args.format), ("priority", args.priority)) if v})
    files = collect(args.paths)
    if not files:
        print("no files to submit", file=sys.stderr)
        return 2
    console = Console(stderr=True)
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    ) as progress:
        bar = progress.add_task("resizing" if args.wait or args.out else "uploading", total=len(files))
        outcomes = run_batch(
            _api(args), files, fields, args.wait, args.out, args.concurrency, lambda _: progress.advance(bar)
        )
    table = Table(title=f"{len(files)} files")
    for column in ("file", "task", "status", "detail", "saved as"):
        table.add_column(column)
    for o in outcomes:
        style = "green" if o.ok else "red"
        table.add_row(
            str(o.path), o.task_id or "-", f"[{style}]{o.status}[/]", o.detail, ", ".join(p.name for p in o.saved)
        )
    Console().print(table)
    failed = sum(1 for o in outcomes if not o.ok)
    console.print(f"{len(outcomes) - failed} succeeded, {failed} failed")
    return 1 if failed else 0


def _status(args: argparse.Namespace) -> int:
    response = _api(args).status(args.task_id)
    print(json.dumps(response.json(), indent=2))
    return 0 if response.ok else 1


def _result(args: argparse.Namespace) -> int:
    response = _api(args).result(args.task_id)
    if not response.ok:
        print(response.text, file=sys.stderr)
        return 1
    args.output.write_bytes(response.content)
    print(f"{args.output}: {len(response.content)} bytes, {response.headers.get('Content-Type')}")
    return 0


def _topics(settings: Settings, args: argparse.Namespace) -> int:
    ensure_topics(settings)
    if settings.schema_registry_url:
        for subject, schema_id in register_subjects(settings).items():
            print(f"registry subject {subject:<45} schema id {schema_id} (compatibility BACKWARD)")
    metadata = make_admin(settings).list_topics(timeout=10)

    def partitions(topic: str) -> int:
        return len(metadata.topics[topic].partitions)

    for lane in settings.lane_plan:
        for kind, topic in (("requests", lane.requests_topic), ("retry", lane.retry_topic)):
            print(
                f"lane {lane.name:<12} {kind:<9} {topic:<40} partitions={partitions(topic)} "
                f"retention_ms={lane.retention_ms} group={lane.group}"
            )
    for kind, topic in (("results", settings.results_topic), ("dead-letter", settings.dead_letter_topic)):
        print(f"{'':<17} {kind:<9} {topic:<40} partitions={partitions(topic)}")
    return 0


def _lanes(settings: Settings, args: argparse.Namespace) -> int:
    table = Table(title="lanes, highest priority first")
    for column in ("lane", "topic", "group", "log end", "done", "waiting"):
        # Topic and group names are the point of the table: folded onto a second line, never cut.
        table.add_column(column, overflow="fold")
    for backlog in lane_backlogs(settings):
        table.add_row(
            backlog.lane.name,
            backlog.topic,
            backlog.lane.group,
            str(backlog.log_end),
            str(backlog.committed),
            str(backlog.lag),
        )
    Console().print(table)
    return 0


def _lane_arg(settings: Settings, name: str | None) -> Lane | None:
    if name is None:
        return None
    try:
        return settings.lane(name)
    except KeyError:
        raise SystemExit(f"no lane {name!r}; LANES is {settings.lanes!r}") from None


def _replay(settings: Settings, args: argparse.Namespace) -> int:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    since = datetime.fromisoformat(args.since) if args.since else None
    sources = [_lane_arg(settings, name) for name in args.lane] if args.lane else None
    target = _lane_arg(settings, args.to) or settings.replay_target
    count = replay(
        settings,
        since=since,
        offset=args.from_offset,
        stop=stop,
        sources=[lane for lane in sources or [] if lane] or None,
        target=target,
    )
    print(f"queued {count} requests for reprocessing in lane {target.name} ({target.requests_topic})")
    return 0


def _rebuild(settings: Settings, args: argparse.Namespace) -> int:
    print(f"rebuilt {settings.view_path} from {rebuild(settings)} events")
    return 0


def _apikey(settings: Settings, args: argparse.Namespace) -> int:
    key, entry = new_key(args.name)
    print(f"key (give to the client, shown once): {key}")
    print(f"API_KEYS entry (configure the service): {entry}")
    # The client's own webhook secret: its receiver verifies with it, and no other tenant holds it.
    # To rotate, list a new entry for the same name beside the old one, then drop the old one.
    print(f"WEBHOOK_SECRETS entry (the service, and the client's webhook receiver): {args.name}:{new_secret()}")
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
    print(f"republished {republish(settings, chosen, _lane_arg(settings, args.to))} records")
    return 0


def _lifecycle_status(settings: Settings, args: argparse.Namespace) -> int:
    status = lifecycle_status(settings)
    for name, seconds in status.ttls.items():
        print(f"{name:<22} {'for ever' if seconds is None else f'{seconds} s'}")
    rules = status.store_rules
    if rules is None:
        print("store rules            none: the store has no lifecycle (the janitor sweeps)")
    else:
        print(f"store rules            {', '.join(f'{p} {d} d' for p, d in rules) or 'none set'}")
    print(f"objects                {status.listed} listed, {status.expired} expired ({status.expired_bytes} bytes)")
    promise = "for ever" if status.promised_ms is None else f"{status.promised_ms} ms"
    print(f"view answers for       {promise} after a task's last event")
    worst = 0
    for keep in status.topics:
        shown = "missing" if keep.retention_ms is None else f"{keep.retention_ms} ms"
        print(f"topic {keep.topic:<40} retention {shown:<16} {'ok' if keep.enough else 'SHORTER THAN THE VIEW'}")
        worst = worst or (0 if keep.enough else 1)
    return worst


def _lifecycle_run(settings: Settings, args: argparse.Namespace) -> int:
    report = run_sweep(settings)
    print(
        f"listed {report.listed}, expired {report.expired}, deleted {report.deleted} ({report.bytes} bytes) "
        f"in {report.seconds:.1f} s ({report.rate:.0f}/s)"
    )
    for key in report.refused:
        print(f"refused by the store: {key}", file=sys.stderr)
    return 1 if report.refused else 0


def _delete(args: argparse.Namespace) -> int:
    response = _api(args).delete(args.task_id)
    if not response.ok:
        print(response.text, file=sys.stderr)
        return 1
    erased = "erased" if response.status_code == 204 else "deleted; its images are erased shortly"
    print(f"{args.task_id}: {erased}")
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="imgresize", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    root.add_argument("--version", action="version", version=f"%(prog)s {service_version()}")
    commands = root.add_subparsers(dest="command", required=True)
    clients = argparse.ArgumentParser(add_help=False)
    clients.add_argument("--url", default=os.environ.get("IMGRESIZE_URL", "http://127.0.0.1:8080"))
    clients.add_argument("--api-key", default=os.environ.get("IMGRESIZE_API_KEY"))
    submit = commands.add_parser("submit", parents=[clients], help="upload images (files or directories)")
    submit.add_argument("paths", nargs="+", type=Path)
    submit.add_argument(
        "--size",
        required=True,
        help="WIDTHxHEIGHT, e.g. 400x400, 400x, x300; several: 100x100,800x (one upload, a result per size)",
    )
    submit.add_argument("--mode", choices=MODES)
    submit.add_argument("--format", choices=[*OUTPUT_FORMATS, "auto"])
    submit.add_argument("--wait", action="store_true", help="wait until every task is done")
    submit.add_argument("--out", type=Path, help="save results here (implies --wait)")
    submit.add_argument("--concurrency", type=int, default=8)
    submit.add_argument("--priority", help="the lane, e.g. interactive or bulk (default: the API key's default lane)")
    submit.set_defaults(client=_submit)
    status = commands.add_parser("status", parents=[clients], help="a task's status")
    status.add_argument("task_id")
    status.set_defaults(client=_status)
    delete = commands.add_parser("delete", parents=[clients], help="delete a task and erase its images")
    delete.add_argument("task_id")
    delete.set_defaults(client=_delete)
    result = commands.add_parser("result", parents=[clients], help="download a task's result")
    result.add_argument("task_id")
    result.add_argument("-o", "--output", type=Path, required=True)
    result.set_defaults(client=_result)
    commands.add_parser("topics", help="create missing topics and list them").set_defaults(run=_topics)
    replaying = commands.add_parser("replay", help="reprocess requests from a time or an offset")
    where = replaying.add_mutually_exclusive_group(required=True)
    where.add_argument("--since", help="ISO-8601 time, e.g. 2026-11-28T10:00:00+00:00")
    where.add_argument("--from-offset", type=int, help="the same offset in every partition")
    replaying.add_argument(
        "--lane", action="append", help="replay only this lane's requests (repeatable; default: every lane)"
    )
    replaying.add_argument("--to", help="the lane that reprocesses them (default: REPLAY_LANE, else the last lane)")
    replaying.set_defaults(run=_replay)
    commands.add_parser("lanes", help="each lane's backlog, as its worker group stands").set_defaults(run=_lanes)
    commands.add_parser("rebuild", help="rebuild the status view from the topics").set_defaults(run=_rebuild)
    keys = commands.add_parser("apikey", help="make a new API key and its API_KEYS entry (only the hash is kept)")
    keys.add_argument("name", help="who the key is for, e.g. billing-service")
    keys.set_defaults(run=_apikey)
    lifecycle = commands.add_parser("lifecycle", help="expiry and erasure").add_subparsers(
        dest="lifecycle_command", required=True
    )
    lifecycle.add_parser("status", help="TTLs, store rules, expired objects, topic retention").set_defaults(
        run=_lifecycle_status
    )
    lifecycle.add_parser("run", help="sweep expired objects now").set_defaults(run=_lifecycle_run)
    dlq = commands.add_parser("dlq", help="dead letters").add_subparsers(dest="dlq_command", required=True)
    dlq.add_parser("list", help="list dead letters").set_defaults(run=_dlq_list)
    again = dlq.add_parser("republish", help="send dead letters back as fresh requests")
    again.add_argument("ids", nargs="*", help="partition:offset as `dlq list` shows")
    again.add_argument("--all", action="store_true")
    again.add_argument("--to", help="the lane that reprocesses them (default: REPLAY_LANE, else the last lane)")
    again.set_defaults(run=_dlq_republish)
    return root


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    if hasattr(args, "client"):
        sys.exit(args.client(args))
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    sys.exit(args.run(settings, args))


if __name__ == "__main__":
    main()
