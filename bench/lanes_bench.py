"""`make bench-lanes`: does a person's upload wait behind a bulk import?

Starts the real stack (`local_infra.up`, the default worker count: every
worker serves every lane) and, with a 1920x1080 photo-like JPEG -> 400x400:
1. idle: interactive uploads one at a time (submit and wait, `?wait=10`);
2. a bulk import alone: N uploads with priority=bulk, submitted by 4 clients,
   drained; its rate from the first submit to the last result;
3. the same import with the interactive client running beside it;
4. the same with lanes off: the import sent as interactive, one FIFO lane
   (the before figure);
5. an interactive and a bulk backlog queued at once (8 clients, no waiting):
   bulk's measured share of worker time while both lanes had a record waiting
   on a worker (imgresize_lane_contended_work_seconds_total);
6. the import with a worker killed by SIGKILL a third of the way (the stack
   restarts it): lost tasks and repeated outcomes, counted in the results topic.
Nothing is asserted: it prints numbers.
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import requests
from confluent_kafka import Consumer, TopicPartition

from bench import corpus, procstat
from bench.e2e_bench import Stack, percentile, start_stack
from schemas import ResizeCompleted, default_codec

FORM = {"width": "400", "height": "400"}
METRICS_BASE_PORT = 9200


class Outcomes:
    """Counts ResizeCompleted per task in the results topic, from where it stood when the run began."""

    def __init__(self, kafka: str) -> None:
        self._consumer = Consumer(
            {"bootstrap.servers": kafka, "group.id": f"bench-{uuid.uuid4()}", "isolation.level": "read_committed"}
        )
        topic = "image.resize.results"
        metadata = self._consumer.list_topics(topic, timeout=10)
        starts = []
        for partition in metadata.topics[topic].partitions:
            _, high = self._consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            starts.append(TopicPartition(topic, partition, high))
        self._consumer.assign(starts)
        self.completed: Counter[str] = Counter()
        self.last_at: dict[str, float] = {}
        self._codec = default_codec()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            msg = self._consumer.poll(0.2)
            if msg is None or msg.error():
                continue
            event = self._codec.decode(msg.value())
            if isinstance(event, ResizeCompleted):
                with self._lock:
                    self.completed[event.task_id] += 1
                    self.last_at[event.task_id] = time.time()

    def total(self) -> int:
        """Tasks with an outcome since the start."""
        with self._lock:
            return len(self.completed)

    def done(self, task_ids: list[str]) -> int:
        with self._lock:
            return sum(1 for t in task_ids if self.completed[t] > 0)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._consumer.close()


@dataclass
class Import:
    task_ids: list[str] = field(default_factory=list)
    refused: int = 0
    started: float = 0.0
    finished: float = 0.0

    @property
    def rate(self) -> float:
        return len(self.task_ids) / (self.finished - self.started) if self.finished > self.started else 0.0


def submit(stack: Stack, image: bytes, lanes: list[str], clients: int) -> tuple[dict[str, list[str]], int]:
    """One upload per entry of `lanes`, in that lane, from `clients` threads: the task ids by lane, and
    how many were refused."""
    accepted: dict[str, list[str]] = {lane: [] for lane in lanes}
    refused = 0
    lock = threading.Lock()

    def one(lane: str) -> None:
        with requests.Session() as session:
            response = session.post(
                f"{stack.base_url}/api/v1/images/resize",
                files={"file": ("i.jpg", image)},
                data={**FORM, "priority": lane},
                timeout=120,
            )
        nonlocal refused
        with lock:
            if response.status_code == 202:
                accepted[lane].append(response.json()["task_id"])
            else:
                refused += 1

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, lanes))
    return accepted, refused


def submit_import(stack: Stack, image: bytes, count: int, priority: str, clients: int = 4) -> Import:
    """Submit `count` uploads in `priority` from `clients` threads (returns once all are accepted)."""
    made = Import(started=time.time())
    accepted, made.refused = submit(stack, image, [priority] * count, clients)
    made.task_ids = accepted[priority]
    return made


def drain(outcomes: Outcomes, made: Import, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while outcomes.done(made.task_ids) < len(made.task_ids) and time.monotonic() < deadline:
        time.sleep(0.2)
    with outcomes._lock:
        made.finished = max((outcomes.last_at.get(t, 0.0) for t in made.task_ids), default=time.time())


def interactive_once(session: requests.Session, stack: Stack, image: bytes) -> float | None:
    """One upload, submit-and-wait: seconds until the result is in hand (None if it did not end in 10 s)."""
    started = time.perf_counter()
    response = session.post(
        f"{stack.base_url}/api/v1/images/resize?wait=10",
        files={"file": ("i.jpg", image)},
        data={**FORM, "priority": "interactive"},
        timeout=60,
    )
    return time.perf_counter() - started if response.status_code == 200 else None


class InteractiveProbe:
    """One person: an upload, a pause, the next, until stopped."""

    def __init__(self, stack: Stack, image: bytes, pause: float = 0.2) -> None:
        self.latencies: list[float] = []
        self.timeouts = 0
        self._stop = threading.Event()

        def run() -> None:
            with requests.Session() as session:
                while not self._stop.is_set():
                    took = interactive_once(session, stack, image)
                    if took is None:
                        self.timeouts += 1
                    else:
                        self.latencies.append(took)
                    self._stop.wait(pause)

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def lane_work_seconds(series: str = "imgresize_lane_contended_work_seconds_total") -> dict[str, float]:
    """Worker time per lane while another lane also had work waiting, summed over the workers' /metrics."""
    spent: dict[str, float] = {}
    for offset in range(1, 17):
        try:
            text = requests.get(f"http://127.0.0.1:{METRICS_BASE_PORT + offset}/metrics", timeout=1).text
        except requests.RequestException:
            continue
        for line in text.splitlines():
            if line.startswith(series + "{"):
                lane = line.split('lane="', 1)[1].split('"', 1)[0]
                spent[lane] = spent.get(lane, 0.0) + float(line.rsplit(" ", 1)[1])
    return spent


def worker_pids(stack: Stack) -> list[int]:
    return [pid for pid in procstat.children(stack.process.pid) if "resize-worker" in procstat.command_line(pid)]


def latency_line(label: str, latencies: list[float], timeouts: int, idle: tuple[float, float] | None = None) -> str:
    """p50, p90 and max in ms; with `idle` (its p50 and max, ms), the ratios to them."""
    p50, top = percentile(latencies, 50) * 1000, max(latencies, default=float("nan")) * 1000
    ratios = ""
    if idle:
        ratios = f" ({p50 / idle[0]:.2f}x idle p50; max {top / idle[0]:.2f}x idle p50, {top / idle[1]:.2f}x idle max)"
    return (
        f"{label:<44} n={len(latencies):<4} p50 {p50:7.1f} ms  p90 {percentile(latencies, 90) * 1000:7.1f} ms"
        f"  max {top:7.1f} ms{ratios}" + (f"  timeouts {timeouts}" if timeouts else "")
    )


def import_with_probe(
    stack: Stack, outcomes: Outcomes, image: bytes, count: int, priority: str, kill_at: float | None = None
) -> tuple[Import, InteractiveProbe, int | None]:
    baseline = outcomes.total()
    probe = InteractiveProbe(stack, image)
    killed: int | None = None
    holder: dict[str, Import] = {}
    submitter = threading.Thread(target=lambda: holder.update(made=submit_import(stack, image, count, priority)))
    submitter.start()
    if kill_at is not None:
        while outcomes.total() - baseline < count * kill_at:
            time.sleep(0.1)
        killed = worker_pids(stack)[0]
        os.kill(killed, signal.SIGKILL)
    submitter.join()
    made = holder["made"]
    drain(outcomes, made)
    probe.stop()
    return made, probe, killed


def saturated_share(stack: Stack, outcomes: Outcomes, image: bytes, each: int) -> tuple[float, float, tuple[int, int]]:
    """Queue `each` interactive and `each` bulk uploads at once (8 clients, no waiting); from the first
    submit until the interactive backlog is drained, bulk's share of the workers' contended time."""
    before, began = lane_work_seconds(), time.monotonic()
    ids, _ = submit(stack, image, ["interactive", "bulk"] * each, 8)
    done_before = (0, 0)
    while outcomes.done(ids["interactive"]) < len(ids["interactive"]) and time.monotonic() - began < 600:
        time.sleep(0.05)
    after, window = lane_work_seconds(), time.monotonic() - began
    counts = (outcomes.done(ids["interactive"]) - done_before[0], outcomes.done(ids["bulk"]) - done_before[1])
    spent = {lane: after.get(lane, 0.0) - before.get(lane, 0.0) for lane in after}
    drain(outcomes, Import(task_ids=ids["bulk"]))
    return spent.get("bulk", 0.0) / max(1e-9, sum(spent.values())), window, counts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bulk", type=int, default=2000, help="uploads in each bulk import")
    parser.add_argument("--idle-uploads", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=600, help="uploads to warm the broker and the workers")
    parser.add_argument("--workers", default=str(os.cpu_count() or 2))
    args = parser.parse_args(argv)
    image = corpus.photo()
    print(f"source: 1920x1080 photo-like JPEG, {len(image) // 1000} KB -> 400x400; workers: {args.workers}")
    stack = start_stack(args.workers, max(1, (os.cpu_count() or 2) // 2))
    outcomes = Outcomes(stack.kafka)
    try:
        warm = submit_import(stack, image, args.warmup, "bulk", clients=8)
        drain(outcomes, warm)
        print(f"warm-up: {len(warm.task_ids)} bulk uploads drained at {warm.rate:.1f}/s")

        with requests.Session() as session:
            idle = [t for t in (interactive_once(session, stack, image) for _ in range(args.idle_uploads)) if t]
        idle_p50 = (percentile(idle, 50) * 1000, max(idle) * 1000)
        print(latency_line("1. interactive, idle stack", idle, 0))

        alone = submit_import(stack, image, args.bulk, "bulk")
        drain(outcomes, alone)
        print(f"2. bulk import alone: {len(alone.task_ids)} drained at {alone.rate:.1f}/s ({alone.refused} refused)")

        with_lanes, probe, _ = import_with_probe(stack, outcomes, image, args.bulk, "bulk")
        print(latency_line("3. interactive while bulk drains (lanes)", probe.latencies, probe.timeouts, idle_p50))
        print(
            f"   bulk import beside it: {with_lanes.rate:.1f}/s = {with_lanes.rate / alone.rate:.2f}x alone"
            f" (target >= 0.9x)"
        )

        one_lane, probe, _ = import_with_probe(stack, outcomes, image, args.bulk, "interactive")
        print(latency_line("4. the same, lanes off (one FIFO lane)", probe.latencies, probe.timeouts, idle_p50))
        print(f"   import beside it: {one_lane.rate:.1f}/s")

        share, window, counts = saturated_share(stack, outcomes, image, args.bulk // 2)
        print(
            f"5. {args.bulk // 2} interactive and {args.bulk // 2} bulk uploads queued at once: while both lanes had "
            f"work ({window:.1f} s, {counts[0]} interactive and {counts[1]} bulk done) bulk got {share:.1%} of "
            f"the workers' contended time (floor LANE_MIN_SHARE 20%)"
        )
        faulted, probe, killed = import_with_probe(stack, outcomes, image, args.bulk, "bulk", kill_at=1 / 3)
        with outcomes._lock:
            lost = sum(1 for t in faulted.task_ids if outcomes.completed[t] == 0)
            repeated = sum(1 for t in faulted.task_ids if outcomes.completed[t] > 1)
        print(
            f"6. kill -9 of worker pid {killed} a third into a {len(faulted.task_ids)}-upload import: "
            f"{lost} lost, {repeated} tasks with more than one ResizeCompleted (at-least-once redo of the "
            f"killed worker's uncommitted records; the result object is the same key), drained at {faulted.rate:.1f}/s"
        )
        print(latency_line("   interactive during that run", probe.latencies, probe.timeouts, idle_p50))

    finally:
        outcomes.close()
        stack.stop()


if __name__ == "__main__":
    main()
