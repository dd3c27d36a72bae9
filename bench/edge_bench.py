"""`make bench-edge`: what the edge (nginx) costs per request, measured on one stack both ways.

Starts the stack as `make up` does (the edge on the public port, the API on a
loopback port of its own) and runs the same load through the edge and straight
to the API, alternating, so the machine's drift falls on both:
- submit-and-wait (`POST ...?wait=10`, 1920x1080 photo-like JPEG -> 400x400) at
  1 and 8 clients: images/s and latency p50/p99;
- status GETs from 1 client: latency p50/p99;
and nginx's CPU per request. Nothing is asserted: it prints numbers.
"""

from __future__ import annotations

import argparse
import os
import re
import threading
import time

import requests

from bench import corpus, procstat
from bench.e2e_bench import Stack, percentile, run_users, start_stack

FORM = {"width": "400", "height": "400"}


def api_url(stack: Stack) -> str:
    """The API's own address behind the edge, from the edge's configuration."""
    conf = (stack.run_dir / "edge" / "nginx.conf").read_text()
    match = re.search(r"server (127\.0\.0\.1:\d+);", conf)
    assert match, "no upstream in the edge's configuration"
    return f"http://{match.group(1)}"


def nginx_pids(stack: Stack) -> list[int]:
    return [
        pid
        for child in procstat.children(stack.process.pid)
        if "nginx" in procstat.command_line(child)
        for pid in procstat.tree(child)
    ]


def submit_and_wait(base: str, image: bytes, clients: int, seconds: float) -> tuple[int, list[float]]:
    latencies: list[float] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def user() -> None:
        with requests.Session() as session:
            while time.monotonic() < stop_at:
                started = time.perf_counter()
                response = session.post(
                    f"{base}/api/v1/images/resize?wait=10", files={"file": ("i.jpg", image)}, data=FORM, timeout=60
                )
                if response.status_code == 200:
                    with lock:
                        latencies.append(time.perf_counter() - started)

    run_users(user, clients)
    return len(latencies), latencies


def status_gets(base: str, task_id: str, count: int) -> list[float]:
    latencies = []
    with requests.Session() as session:
        for _ in range(count):
            started = time.perf_counter()
            session.get(f"{base}/api/v1/status/{task_id}", timeout=10).raise_for_status()
            latencies.append(time.perf_counter() - started)
    return latencies


def line(label: str, latencies: list[float], per_second: float | None = None) -> str:
    rate = f"{per_second:6.1f}/s  " if per_second is not None else ""
    return (
        f"{label:<40} {rate}p50 {percentile(latencies, 50) * 1000:7.2f} ms  "
        f"p99 {percentile(latencies, 99) * 1000:7.2f} ms  n={len(latencies)}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=60.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    image = corpus.photo()
    stack = start_stack(os.cpu_count() or 2, max(1, (os.cpu_count() or 2) // 2))
    try:
        routes = {"through the edge": stack.base_url, "straight to the API": api_url(stack)}
        print(f"source: 1920x1080 photo-like JPEG, {len(image) // 1000} KB -> 400x400; warm-up {args.warmup:.0f} s")
        submit_and_wait(stack.base_url, image, 8, args.warmup)
        task_id = requests.post(
            f"{stack.base_url}/api/v1/images/resize?wait=10", files={"file": ("i.jpg", image)}, data=FORM, timeout=60
        ).headers["Task-Id"]
        edge = nginx_pids(stack)
        for round_number in range(1, args.rounds + 1):
            for clients in (1, 8):
                for label, base in routes.items():
                    before = procstat.usage(edge)
                    done, latencies = submit_and_wait(base, image, clients, args.seconds)
                    spent = procstat.usage(edge).cpu_seconds - before.cpu_seconds
                    nginx_ms = f"  nginx {spent * 1000 / max(1, done):.2f} ms CPU/image" if "edge" in label else ""
                    print(
                        line(f"round {round_number}, {clients} clients, {label}", latencies, done / args.seconds)
                        + nginx_ms
                    )
            for label, base in routes.items():
                before = procstat.usage(edge)
                latencies = status_gets(base, task_id, 500)
                spent = procstat.usage(edge).cpu_seconds - before.cpu_seconds
                nginx_ms = f"  nginx {spent * 1000 / 500:.3f} ms CPU/request" if "edge" in label else ""
                print(line(f"round {round_number}, status GET, {label}", latencies) + nginx_ms)
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
