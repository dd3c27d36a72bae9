"""`make bench-e2e`: the whole pipeline through its public HTTP API, on this machine.

Starts the real stack (`local_infra.up`: Kafka, S3, granian API, workers,
projector) unless --url names one, and prints:
- closed loop at 1 and 8 clients: completed images/s, submit-to-SUCCESS latency
  p50/p90/p99 as the client sees it (long-poll), accept latency, lost jobs,
  CPU seconds per image and peak RSS per role;
- an open-loop sweep at fixed arrival rates, rising until latency bends;
- the engine alone on the same images with as many processes as workers, and
  the pipeline's efficiency against it;
- 1 vs 2 workers and 1 vs 2 API processes;
- rebuilding the view from 100,000 events.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import requests

from bench import corpus, procstat
from local_infra.process import free_port, spawn, terminate

ROOT = Path(__file__).resolve().parent.parent
TERMINAL = {"SUCCESS", "FAILURE"}


@dataclass
class Stack:
    process: subprocess.Popen[bytes]
    base_url: str
    kafka: str
    run_dir: Path
    log: Path
    s3: str = ""

    def roles(self) -> dict[str, list[int]]:
        """Process trees by role, found under the stack's supervisor."""
        found: dict[str, list[int]] = {}
        for child in procstat.children(self.process.pid):
            command = procstat.command_line(child)
            role = next(
                (
                    name
                    for key, name in (
                        ("kafka.Kafka", "kafka"),
                        ("weed", "s3"),
                        ("versitygw", "s3"),
                        ("granian", "api"),
                        ("status-projector", "projector"),
                        ("resize-worker", "workers"),
                        ("webhook-notifier", "webhooks"),
                        ("store-janitor", "janitor"),
                    )
                    if key in command
                ),
                "other",
            )
            for pid in procstat.tree(child):
                # A worker's resize runs in a child made by its fork server: counted apart, so the
                # resize's own cost under load shows beside the worker's plumbing.
                forked = role == "workers" and "multiprocessing.forkserver" in procstat.command_line(pid)
                found.setdefault("resize children" if forked else role, []).append(pid)
        return found

    def stop(self) -> None:
        """Stop every process, then remove the run's data: a run stores gigabytes of originals."""
        terminate(self.process, 60)
        if not os.environ.get("BENCH_KEEP_RUN_DIR"):
            shutil.rmtree(self.run_dir, ignore_errors=True)


def start_stack(
    workers: int, api_processes: int, brokers: int = 1, extra: list[str] | None = None, edge: bool = True
) -> Stack:
    """The stack as `make up` starts it; without `edge`, the API itself on the public port (no nginx)."""
    run_dir = Path(tempfile.mkdtemp(prefix="imgresize-bench."))
    api_port, kafka_port, s3_port = free_port(), free_port(), free_port()
    log = run_dir / "stack.log"
    env = {k: v for k, v in os.environ.items() if k not in {"KAFKA_BOOTSTRAP_SERVERS", "S3_ENDPOINT"}}
    env.update(
        LOCAL_INFRA_NO_DOCKER="1",
        LOG_LEVEL="WARNING",
        # One load generator is one client address: no budget may shape what is being measured.
        RATE_LIMIT_PER_SECOND="100000",
        RATE_LIMIT_BURST="100000",
        READ_RATE_LIMIT_PER_SECOND="1000000",
        READ_RATE_LIMIT_BURST="1000000",
    )
    with log.open("wb") as out:
        process = spawn(
            [
                sys.executable,
                "-m",
                "local_infra.up",
                "--workers",
                str(workers),
                "--api-processes",
                str(api_processes),
                "--brokers",
                str(brokers),
                "--api-port",
                str(api_port),
                "--kafka-port",
                str(kafka_port),
                "--s3-port",
                str(s3_port),
                "--run-dir",
                str(run_dir),
                *([] if edge else ["--no-edge"]),
                *(extra or []),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env=env,
        )
    stack = Stack(
        process, f"http://127.0.0.1:{api_port}", f"127.0.0.1:{kafka_port}", run_dir, log, f"127.0.0.1:{s3_port}"
    )
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{stack.base_url}/readyz", timeout=2).status_code == 200:
                return stack
        except requests.RequestException:
            pass
        if process.poll() is not None:
            raise RuntimeError(f"stack exited:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)
    stack.stop()
    raise TimeoutError("stack not ready")


@dataclass
class Job:
    accept_s: float
    done_s: float | None
    state: str


@dataclass
class RunResult:
    label: str
    seconds: float
    jobs: list[Job] = field(default_factory=list)
    usage: dict[str, procstat.Usage] = field(default_factory=dict)

    @property
    def completed(self) -> list[Job]:
        return [j for j in self.jobs if j.state == "SUCCESS"]

    @property
    def lost(self) -> int:
        return sum(1 for j in self.jobs if j.state not in TERMINAL)


def run_job(session: requests.Session, base_url: str, image: bytes, fields: dict[str, str]) -> Job:
    started = time.perf_counter()
    response = session.post(
        f"{base_url}/api/v1/images/resize", files={"file": ("i.jpg", image)}, data=fields, timeout=60
    )
    accept = time.perf_counter() - started
    if response.status_code != 202:
        return Job(accept, None, f"HTTP {response.status_code}")
    task_id = response.json()["task_id"]
    deadline = time.monotonic() + 120
    state = "PENDING"
    while time.monotonic() < deadline:
        state = session.get(f"{base_url}/api/v1/status/{task_id}?wait=10", timeout=60).json()["status"]
        if state in TERMINAL:
            return Job(accept, time.perf_counter() - started, state)
    return Job(accept, None, state)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def run_users(user: Callable[[], None], clients: int) -> float:
    """`clients` threads running `user` at once; returns the seconds until the last one ended."""
    threads = [threading.Thread(target=user) for _ in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.monotonic() - started


def closed_loop(stack: Stack, clients: int, seconds: float, image: bytes, fields: dict[str, str]) -> RunResult:
    """`clients` users, each submitting the next image as soon as the last one is done."""
    result = RunResult(f"closed loop, {clients} clients", seconds)
    lock = threading.Lock()
    roles = stack.roles()
    before = {role: procstat.usage(pids) for role, pids in roles.items()}
    stop_at = time.monotonic() + seconds

    def user() -> None:
        with requests.Session() as session:
            while time.monotonic() < stop_at:
                job = run_job(session, stack.base_url, image, fields)
                with lock:
                    result.jobs.append(job)

    result.seconds = run_users(user, clients)
    after = {role: procstat.usage(pids) for role, pids in roles.items()}
    result.usage = {
        role: procstat.Usage(after[role].cpu_seconds - before[role].cpu_seconds, after[role].peak_rss_mb)
        for role in after
    }
    return result


def open_loop(stack: Stack, rate: float, seconds: float, images: list[bytes], fields: dict[str, str]) -> RunResult:
    """Arrivals at a fixed rate, whatever the service does: the queue shows as latency."""
    result = RunResult(f"open loop, {rate:g}/s", seconds)
    count = int(rate * seconds)
    sessions = threading.local()

    def one(i: int) -> Job:
        if not hasattr(sessions, "s"):
            sessions.s = requests.Session()
        return run_job(sessions.s, stack.base_url, images[i % len(images)], fields)

    with ThreadPoolExecutor(max_workers=min(256, int(rate * 4) + 8)) as pool:
        started = time.monotonic()
        futures = []
        for i in range(count):
            delay = started + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            futures.append(pool.submit(one, i))
        result.jobs = [f.result() for f in futures]
    return result


def _engine_worker(args: tuple[bytes, dict[str, str], float]) -> int:
    from resize_worker.engine import resize

    image, fields, seconds = args
    count, stop_at = 0, time.monotonic() + seconds
    while time.monotonic() < stop_at:
        resize(image, int(fields["width"]), int(fields["height"]))
        count += 1
    return count


def engine_alone(processes: int, seconds: float, image: bytes, fields: dict[str, str]) -> float:
    """The same resize with no pipeline around it, in as many processes as workers: images/s."""
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        counts = pool.map(_engine_worker, [(image, fields, seconds)] * processes)
    return sum(counts) / seconds


def rebuild_benchmark(stack: Stack, events: int) -> tuple[float, float]:
    """Produce `events` events to fresh topics, then time `rebuild` of a view from them. Returns (events, events/s)."""
    from confluent_kafka import Producer

    from common.kafka import ensure_topics
    from common.settings import Settings
    from schemas import ObjectRef, ResizeCompleted, ResizeRequested, ResizeStarted, StoredImage, default_codec
    from status_store.rebuild import rebuild

    suffix = uuid.uuid4().hex[:8]
    settings = Settings(
        kafka_bootstrap_servers=stack.kafka,
        requests_topic=f"bench-requests-{suffix}",
        results_topic=f"bench-results-{suffix}",
        retry_topic=f"bench-retry-{suffix}",
        dead_letter_topic=f"bench-dlq-{suffix}",
        view_path=stack.run_dir / f"rebuild-{suffix}.sqlite3",
    )
    ensure_topics(settings)
    codec = default_codec()
    producer = Producer({"bootstrap.servers": stack.kafka, "linger.ms": 20, "batch.size": 1_000_000})
    now = datetime.now(UTC)
    for _ in range(events // 3):
        task = str(uuid.uuid4())
        image = StoredImage("images", f"results/{task}", "image/jpeg", 400, 400, 12345, "etag")
        for topic, event in (
            (
                settings.requests_topic,
                ResizeRequested(task_id=task, occurred_at=now, source=ObjectRef("images", task), width=400, height=400),
            ),
            (settings.results_topic, ResizeStarted(task_id=task, occurred_at=now)),
            (
                settings.results_topic,
                ResizeCompleted(
                    task_id=task, occurred_at=now, result=image, source_width=1920, source_height=1080, duration_ms=20
                ),
            ),
        ):
            while True:
                try:
                    producer.produce(topic, key=task.encode(), value=codec.encode(event))
                    break
                except BufferError:
                    producer.poll(0.1)
        producer.poll(0)
    producer.flush(120)
    started = time.monotonic()
    applied = rebuild(settings)
    return applied, applied / (time.monotonic() - started)


def summarize(result: RunResult) -> dict[str, object]:
    done = [j.done_s for j in result.completed if j.done_s is not None]
    accepted = [j.accept_s for j in result.jobs]
    row: dict[str, object] = {
        "run": result.label,
        "completed_per_s": len(result.completed) / result.seconds,
        "p50_ms": percentile(done, 50) * 1000,
        "p90_ms": percentile(done, 90) * 1000,
        "p99_ms": percentile(done, 99) * 1000,
        "accept_p50_ms": percentile(accepted, 50) * 1000,
        "jobs": len(result.jobs),
        "lost": result.lost,
        "failed": sum(1 for j in result.jobs if j.state != "SUCCESS") - result.lost,
    }
    completed = max(1, len(result.completed))
    for role, use in sorted(result.usage.items()):
        row[f"cpu_ms_per_image[{role}]"] = use.cpu_seconds / completed * 1000
        row[f"peak_rss_mb[{role}]"] = use.peak_rss_mb
    return row


def print_row(row: dict[str, object]) -> None:
    print(
        f"{row['run']:<28} {row['completed_per_s']:>7.1f}/s  p50 {row['p50_ms']:>6.0f} ms  p90 {row['p90_ms']:>6.0f}"
        f"  p99 {row['p99_ms']:>6.0f}  accept p50 {row['accept_p50_ms']:>5.0f} ms  jobs {row['jobs']:>5}"
        f"  lost {row['lost']}  failed {row['failed']}",
        flush=True,
    )
    roles = sorted({key.split("[")[1].rstrip("]") for key in row if key.startswith("cpu_ms")})
    if roles:
        print("    CPU ms/image: " + ", ".join(f"{r} {row[f'cpu_ms_per_image[{r}]']:.1f}" for r in roles))
        print("    peak RSS MB:  " + ", ".join(f"{r} {row[f'peak_rss_mb[{r}]']:.0f}" for r in roles))


def with_stack(workers: int, api_processes: int, action: Callable[[Stack], object]) -> object:
    stack = start_stack(workers, api_processes)
    try:
        return action(stack)
    finally:
        stack.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each closed-loop run")
    parser.add_argument("--rates", default="10,20,30,40,50,60,80", help="open-loop arrival rates, images/s")
    parser.add_argument("--rebuild-events", type=int, default=100_000)
    parser.add_argument("--json", type=Path, help="also write all rows here")
    parser.add_argument("--plot", type=Path, help="draw latency against offered load (PNG) here")
    args = parser.parse_args(argv)
    cores = os.cpu_count() or 1
    headline = corpus.jpeg(1920, 1080)
    # Sources from ~200 KB to ~5 MB.
    mix = [corpus.jpeg(1200, 675, 95), headline, corpus.jpeg(2560, 1440, 95), corpus.jpeg(4600, 3450, 98)]
    fields = {"width": "400", "height": "400"}
    print(f"sources: 1920x1080 JPEG {len(headline) // 1024} KB; mix {', '.join(f'{len(m) // 1024} KB' for m in mix)}")
    rows: list[dict[str, object]] = []

    def headline_runs(stack: Stack) -> None:
        for clients in (1, 8):
            closed_loop(stack, clients, 3, headline, fields)  # warm-up
            row = summarize(closed_loop(stack, clients, args.seconds, headline, fields))
            rows.append(row)
            print_row(row)
        for rate in (float(r) for r in args.rates.split(",")):
            row = summarize(open_loop(stack, rate, max(5.0, args.seconds / 2), mix, fields))
            rows.append(row)
            print_row(row)
            if float(row["p99_ms"]) > 3000 or row["lost"]:  # type: ignore[arg-type]  # past the knee
                break
        events, per_second = rebuild_benchmark(stack, args.rebuild_events)
        rows.append({"run": "rebuild", "events": events, "events_per_s": per_second})
        print(f"rebuild: {events:.0f} events in a fresh view at {per_second:,.0f} events/s", flush=True)

    with_stack(cores, 2, headline_runs)
    engine = engine_alone(cores, args.seconds / 2, headline, fields)
    pipeline = float(next(r for r in rows if r["run"] == "closed loop, 8 clients")["completed_per_s"])  # type: ignore[arg-type]
    rows.append({"run": "engine alone", "images_per_s": engine, "processes": cores})
    print(f"engine alone, {cores} processes: {engine:.1f} images/s; pipeline efficiency {pipeline / engine:.2f}")

    for workers, api_processes in ((1, 2), (2, 1)):
        label = f"{workers} worker(s), {api_processes} API process(es)"
        result = with_stack(workers, api_processes, lambda s: closed_loop(s, 8, args.seconds, headline, fields))
        row = summarize(result)  # type: ignore[arg-type]
        row["run"] = label
        rows.append(row)
        print_row(row)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1, default=float))
    if args.plot:
        plot(rows, args.plot)


def plot(rows: list[dict[str, object]], path: Path) -> None:
    """p50/p90/p99 submit-to-SUCCESS latency against the offered open-loop rate."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sweep = [r for r in rows if str(r["run"]).startswith("open loop")]
    rates = [float(str(r["run"]).split(", ")[1].rstrip("/s")) for r in sweep]
    figure, axes = plt.subplots(figsize=(7, 4.2))
    for key, label in (("p50_ms", "p50"), ("p90_ms", "p90"), ("p99_ms", "p99")):
        axes.plot(rates, [float(r[key]) for r in sweep], marker="o", label=label)  # type: ignore[arg-type]
    axes.set_xlabel("offered load, images/s (open loop, JPEG mix 200 KB-5 MB -> 400x400)")
    axes.set_ylabel("submit to SUCCESS, ms")
    axes.set_yscale("log")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    axes.set_title("Latency against offered load, whole stack on 2 cores")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
