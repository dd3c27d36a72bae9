"""`make bench-lifecycle`: how fast the janitor empties the store of expired tasks, and what status reads
feel meanwhile.

Starts the real stack (`local_infra.up`, versitygw: no lifecycle rules, so the
janitor sweeps) with RESULT_TTL_SECONDS and ORIGINAL_TTL_SECONDS of a few
seconds and the stack's own sweeps off, submits N tasks (a 1920x1080 photo-like
JPEG -> 400x400; an original and a result each), waits until they are done and
expired, then:
1. status reads of those tasks by 4 clients for a while: p50 and p99 (before);
2. one sweep at LIFECYCLE_DELETE_RATE with the same reads running: objects and
   bytes deleted, seconds, objects per second, and the reads' p50 and p99
   (during);
3. the reads again after (after), and a listing to show the bucket empty.
Nothing is asserted: it prints numbers.
"""

from __future__ import annotations

import argparse
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from bench import corpus
from bench.e2e_bench import run_users, start_stack
from bench.edge_bench import line
from common.settings import Settings
from common.store import ObjectStore
from store_janitor.sweep import sweep

TTL_SECONDS = 60


def submit_all(base_url: str, image: bytes, count: int, clients: int = 8) -> list[str]:
    def one(_: int) -> str:
        with requests.Session() as session:
            response = session.post(
                f"{base_url}/api/v1/images/resize",
                files={"file": ("p.jpg", image)},
                data={"width": "400", "height": "400", "priority": "bulk"},
                timeout=60,
            )
            response.raise_for_status()
            return str(response.json()["task_id"])

    with ThreadPoolExecutor(clients) as pool:
        return list(pool.map(one, range(count)))


def wait_done(base_url: str, task_ids: list[str], timeout: float = 900) -> dict[str, int]:
    """Wait until every task ended; how many ended in each state."""
    deadline = time.monotonic() + timeout
    states: dict[str, str] = {}
    with requests.Session() as session:
        while time.monotonic() < deadline:
            for task_id in task_ids:
                if states.get(task_id) not in {"SUCCESS", "FAILURE"}:
                    states[task_id] = session.get(f"{base_url}/api/v1/status/{task_id}").json().get("status", "?")
            if all(state in {"SUCCESS", "FAILURE"} for state in states.values()):
                return {state: list(states.values()).count(state) for state in set(states.values())}
            time.sleep(1)
    raise TimeoutError("tasks not done")


def read_statuses(base_url: str, task_ids: list[str], stop: threading.Event, clients: int = 4) -> list[float]:
    latencies: list[float] = []
    lock = threading.Lock()

    def user() -> None:
        mine: list[float] = []
        with requests.Session() as session:
            while not stop.is_set():
                started = time.perf_counter()
                session.get(f"{base_url}/api/v1/status/{random.choice(task_ids)}", timeout=30)
                mine.append(time.perf_counter() - started)
        with lock:
            latencies.extend(mine)

    run_users(user, clients)
    return latencies


def reads_for(base_url: str, task_ids: list[str], seconds: float) -> list[float]:
    stop = threading.Event()
    threading.Timer(seconds, stop.set).start()
    return read_statuses(base_url, task_ids, stop)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--read-seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, help="LIFECYCLE_DELETE_RATE for the sweep (default: the setting's)")
    args = parser.parse_args(argv)
    os.environ.update(
        RESULT_TTL_SECONDS=str(TTL_SECONDS),
        STATUS_TTL_SECONDS="3600",
        LIFECYCLE_SWEEP="never",
        LIFECYCLE_GRACE_SECONDS="0",
        MAX_BACKLOG_PER_KEY="0",
    )
    stack = start_stack(workers=2, api_processes=1)
    try:
        settings = Settings(kafka_bootstrap_servers=stack.kafka, s3_endpoint=stack.s3)
        store = ObjectStore(settings)
        image = corpus.photo(1920, 1080)
        started = time.monotonic()
        task_ids = submit_all(stack.base_url, image, args.tasks)
        ended = wait_done(stack.base_url, task_ids)
        print(f"{args.tasks} tasks submitted and done in {time.monotonic() - started:.1f} s: {ended}")
        time.sleep(TTL_SECONDS + 1)  # every original and result now past its TTL
        objects = len(store.keys("originals/")) + len(store.keys("results/"))
        print(f"{objects} objects in the bucket, all expired")

        before = reads_for(stack.base_url, task_ids, args.read_seconds)
        stop = threading.Event()
        during: list[float] = []
        reader = threading.Thread(target=lambda: during.extend(read_statuses(stack.base_url, task_ids, stop)))
        reader.start()
        rate = args.rate or settings.lifecycle_delete_rate
        report = sweep(store, settings.retention, rate, settings.lifecycle_batch)
        stop.set()
        reader.join()
        after = reads_for(stack.base_url, task_ids, args.read_seconds)

        print(
            f"sweep: listed {report.listed}, expired {report.expired}, deleted {report.deleted} "
            f"({report.bytes / 1e6:.1f} MB) in {report.seconds:.2f} s: {report.rate:.0f} objects/s, "
            f"{report.deleted / 2 / report.seconds if report.seconds else 0:.0f} tasks/s "
            f"(LIFECYCLE_DELETE_RATE {rate:.0f}/s, batches of {settings.lifecycle_batch})"
        )
        for label, latencies in (("before", before), ("during", during), ("after", after)):
            print(line(f"status reads {label}", latencies))
        left = len(store.keys("originals/")) + len(store.keys("results/"))
        print(f"objects left in the bucket: {left}")
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
