"""`make bench-bulk`: a catalogue import, 10,000 uploads with five renditions each, through the stack `make up` runs.

The uploads (the 1920x1080 photo-like JPEG of bench/corpus.py, `sizes` of the
five renditions of bench-peers, `priority=bulk`) are submitted by 16 clients
as fast as the API accepts them; the run ends when every task is finished.
Prints the drain rate, CPU per rendition by role, and each role's resident
memory (summed over its processes, and how many) at the start (after warm-up
tasks in both lanes), halfway through and at the end: no role's memory may
grow over the run.
"""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from bench import corpus, procstat
from bench.e2e_bench import Stack, start_stack
from bench.peers_bench import SIZES

RENDITIONS_PER_UPLOAD = SIZES.count(",") + 1


def resident_mb(pids: list[int]) -> float:
    """The resident memory of live processes, summed (VmRSS), in MB."""
    total = 0
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        total += next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
    return total / 1024


@contextmanager
def stack_running(workers: int) -> Iterator[Stack]:
    stack = start_stack(workers, 1)
    try:
        yield stack
    finally:
        stack.stop()


def submit_all(stack: Stack, image: bytes, count: int, clients: int) -> list[str]:
    ids: list[str] = []
    lock = threading.Lock()
    next_index = iter(range(count))

    def client() -> None:
        with requests.Session() as session:
            while True:
                with lock:
                    if next(next_index, None) is None:
                        return
                while True:
                    response = session.post(
                        f"{stack.base_url}/api/v1/images/resize",
                        files={"file": ("photo.jpg", image)},
                        data={"sizes": SIZES, "quality": "85", "priority": "bulk"},
                        timeout=60,
                    )
                    if response.status_code == 202:
                        break
                    # A full lane backlog says when to come back: an import client honours it.
                    time.sleep(float(response.headers.get("Retry-After", "1")))
                with lock:
                    ids.append(response.json()["task_id"])

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return ids


def wait_all(stack: Stack, ids: list[str], memory: dict[str, list[float]], processes: dict[str, list[int]]) -> int:
    """Wait until every task is finished, sampling memory halfway (each role's processes then); the number that
    failed."""
    failed = 0
    with requests.Session() as session:
        for index, task_id in enumerate(ids):
            if index == len(ids) // 2:
                for role, pids in stack.roles().items():
                    if role in memory:
                        memory[role].append(resident_mb(pids))
                        processes[role].append(len(pids))
            while True:
                state = session.get(f"{stack.base_url}/api/v1/status/{task_id}?wait=10", timeout=60).json()
                if state["status"] in {"SUCCESS", "FAILURE"}:
                    failed += state["status"] == "FAILURE"
                    break
    return failed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--uploads", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    image = corpus.photo()
    print(f"{args.uploads} uploads x {RENDITIONS_PER_UPLOAD} renditions ({SIZES}), {len(image) // 1000} KB each")
    with stack_running(args.workers) as stack:
        # Warm-up tasks so every worker's resize children (one per lane's niceness) exist before the start
        # is read: memory that grows after that is growth, not a process starting.
        for _ in range(2 * args.workers):
            for lane in ("interactive", "bulk"):
                submit = requests.post(
                    f"{stack.base_url}/api/v1/images/resize?wait=30",
                    files={"file": ("photo.jpg", image)},
                    data={"sizes": SIZES, "priority": lane},
                    timeout=60,
                )
                submit.raise_for_status()
        roles = stack.roles()
        memory = {role: [resident_mb(pids)] for role, pids in roles.items()}
        processes = {role: [len(pids)] for role, pids in roles.items()}
        cpu_before = {role: procstat.usage(pids).cpu_seconds for role, pids in roles.items()}
        started = time.monotonic()
        ids = submit_all(stack, image, args.uploads, args.clients)
        submitted = time.monotonic() - started
        failed = wait_all(stack, ids, memory, processes)
        drained = time.monotonic() - started
        roles = {role: pids for role, pids in stack.roles().items() if role in roles}
        for role, pids in roles.items():
            memory[role].append(resident_mb(pids))
            processes[role].append(len(pids))
        cpu = {role: procstat.usage(pids).cpu_seconds - cpu_before[role] for role, pids in roles.items()}
    renditions = len(ids) * RENDITIONS_PER_UPLOAD
    print(f"submitted in {submitted:.0f} s; all {len(ids)} finished in {drained:.0f} s, {failed} failed")
    print(f"drain: {len(ids) / drained:.1f} uploads/s = {renditions / drained:.1f} renditions/s")
    print(f"\n{'role':18s} {'CPU ms/rendition':>17s} {'RSS MB start':>13s} {'mid':>8s} {'end':>8s} {'processes':>10s}")
    for role in sorted(cpu):
        start, *rest = memory[role]
        mid, end = (rest + [float("nan")] * 2)[:2]
        counts = "/".join(str(n) for n in processes[role])
        print(f"{role:18s} {cpu[role] * 1000 / renditions:>17.2f} {start:>13.0f} {mid:>8.0f} {end:>8.0f} {counts:>10s}")
    grown = [role for role in cpu if memory[role][-1] > 1.2 * memory[role][0] + 20]
    print(f"\nroles whose memory grew by more than 20% + 20 MB over the run: {', '.join(grown) or 'none'}")


if __name__ == "__main__":
    main()
