"""`make bench-brokers`: the same load on one broker and on a three-broker cluster, one run each.

The photo workload of `make bench-peers` (a 1920x1080 ~700 KB JPEG to 400x400,
long-poll clients) against the stack as `make up` starts it, first with one
broker (replication factor 1), then with `--brokers 3` (replication factor 3,
min.insync.replicas 2: every acknowledged event is on two brokers). All
brokers share the machine's cores with everything else, so this measures
what replication costs, not what more machines would give.

Prints images/s, p50 and p99 at 1 and 8 clients and CPU ms per image per role
(the brokers summed) for each.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import requests

from bench import corpus
from bench.e2e_bench import percentile, start_stack
from bench.peers_bench import ProjectClient, Run, check_output, closed_loop, report


def measure(brokers: int, image: bytes, warmup: float, seconds: float) -> list[Run]:
    cores = os.cpu_count() or 1
    stack = start_stack(cores, max(1, cores // 2), brokers=brokers)
    label = f"{brokers} broker{'s' if brokers > 1 else ''}"
    try:
        client = ProjectClient(stack.base_url, None)
        with requests.Session() as session:
            check_output(label, client(session, image))
        print(f"{label}: warming up for {warmup:.0f} s (the brokers' JIT)", flush=True)
        closed_loop(label, "warm-up", client, image, 8, warmup, stack.roles())
        roles = stack.roles()
        runs = []
        for clients in (1, 8):
            run = closed_loop(label, "long-poll", client, image, clients, seconds, roles)
            report(run)
            runs.append(run)
        print(f"{label}: {client.lost} lost", flush=True)
        return runs
    finally:
        stack.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each measured run")
    parser.add_argument("--warmup", type=float, default=40.0, help="warm-up at 8 clients before measuring")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args(argv)
    image = corpus.photo()
    runs = [run for brokers in (1, 3) for run in measure(brokers, image, args.warmup, args.seconds)]
    print("\n| brokers | clients | img/s | p50 ms | p99 ms | Kafka CPU ms/image | all servers CPU ms/image |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in runs:
        cpu = r.cpu_ms_per_image()
        servers = sum(ms for role, ms in cpu.items() if role != "load client")
        print(
            f"| {r.server} | {r.clients} | {r.per_second:.1f} | {percentile(r.latencies, 50) * 1000:.0f}"
            f" | {percentile(r.latencies, 99) * 1000:.0f} | {cpu.get('kafka', 0.0):.1f} | {servers:.1f} |"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps([r.row() for r in runs], indent=1))


if __name__ == "__main__":
    main()
