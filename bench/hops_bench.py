"""`make bench-hops`: what each hop of one image costs on its own, client and server.

An image crosses the object store four times (the upload's put, the worker's
get, the result's put, the API's get of the result) and the broker twice
(ResizeRequested, ResizeCompleted), each record fetched by the two consumer
groups of its topic. Each hop is measured here alone, one at a time, on fresh
local servers, with the project's own clients and settings: client CPU (this
process, librdkafka's threads included), server CPU (its process tree; the
broker's JIT compilers apart) and wall time. The sum is what these hops cost an
image before any HTTP, any resize or any view.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from confluent_kafka import Consumer

from bench import corpus, procstat
from bench.peers_bench import JIT_THREADS, ROOT
from common.kafka import ensure_topics, make_consumer, make_producer, produce_and_wait
from common.settings import Settings, load_settings
from common.store import ObjectStore
from local_infra.stack import provide
from resize_worker.engine import resize
from schemas.codec import Codec
from schemas.events import ObjectRef, ResizeRequested


@dataclass(frozen=True)
class Hop:
    name: str
    per_image: int
    client_ms: float
    server_ms: float
    wall_p50_ms: float


def measure(name: str, per_image: int, op: Callable[[int], object], server_pids: list[int], rounds: int) -> Hop:
    """`op` run `rounds` times after a few unmeasured ones: CPU and wall per call."""
    for i in range(10):
        op(-1 - i)
    walls = []
    server_before = procstat.usage(server_pids).cpu_seconds - procstat.thread_cpu_seconds(server_pids, JIT_THREADS)
    client_before = time.process_time()
    for i in range(rounds):
        started = time.perf_counter()
        op(i)
        walls.append(time.perf_counter() - started)
    client = time.process_time() - client_before
    server = procstat.usage(server_pids).cpu_seconds - procstat.thread_cpu_seconds(server_pids, JIT_THREADS)
    server -= server_before
    return Hop(name, per_image, client / rounds * 1000, server / rounds * 1000, statistics.median(walls) * 1000)


class FetchedByTwoGroups:
    """An acknowledged produce, done once both consumer groups of the topic hold the record."""

    def __init__(self, settings: Settings, topic: str, record: bytes) -> None:
        self.producer = make_producer(settings, "bench-hops")
        self.topic, self.record = topic, record
        self.seen: dict[str, threading.Semaphore] = {}
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        for group in ("bench-hops-a", "bench-hops-b"):
            self.seen[group] = threading.Semaphore(0)
            consumer = make_consumer(settings, group, group)
            consumer.subscribe([topic])
            thread = threading.Thread(target=self._consume, args=(consumer, self.seen[group]), daemon=True)
            thread.start()
            self.threads.append(thread)

    def _consume(self, consumer: Consumer, seen: threading.Semaphore) -> None:
        try:
            while not self.stop.is_set():
                msg = consumer.poll(0.2)
                if msg is not None and msg.error() is None:
                    seen.release()
        finally:
            consumer.close()

    def __call__(self, i: int) -> None:
        produce_and_wait(self.producer, self.topic, str(uuid.uuid4()), self.record, timeout=30)
        for seen in self.seen.values():
            if not seen.acquire(timeout=30):
                raise RuntimeError("a consumer group did not get the record in 30 s")

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()
        self.producer.flush(5)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument(
        "--broker-warmup", type=int, default=3000, help="records produced before the broker is measured"
    )
    args = parser.parse_args(argv)
    original = corpus.photo()
    result = resize(original, 400, 400, quality=85).data
    with tempfile.TemporaryDirectory(prefix="imgresize-hops.") as work, provide(Path(work), ROOT / ".cache") as infra:
        pids = {server.name: procstat.tree(server.process.popen.pid) for server in infra.local_servers}
        kafka = next(p for name, p in pids.items() if "kafka" in name.lower())
        s3 = next(p for name, p in pids.items() if "kafka" not in name.lower())
        settings = load_settings(**{k.lower(): v for k, v in infra.as_env().items()})
        ensure_topics(settings)
        store = ObjectStore(settings)
        store.ensure_bucket()
        request = ResizeRequested(task_id=str(uuid.uuid4()), source=ObjectRef(settings.s3_bucket, "originals/x"))
        record = Codec().encode(request)
        big, small = f"{len(original) // 1000} KB", f"{len(result) // 1000} KB"
        store_ops: list[tuple[str, Callable[[int], object]]] = [
            (f"S3 put, {big}", lambda i: store.put(f"o/{i}", original, "image/jpeg")),
            (f"S3 get, {big}", lambda i: store.get(f"o/{i}")),
            (f"S3 put, {small}", lambda i: store.put(f"r/{i}", result, "image/jpeg")),
            (f"S3 get, {small}", lambda i: store.get(f"r/{i}")),
        ]
        hops = [measure(name, 1, op, s3, args.rounds) for name, op in store_ops]
        fetched = FetchedByTwoGroups(settings, settings.requests_topic, record)
        try:
            started = time.monotonic()
            for i in range(args.broker_warmup):
                fetched(i)
            print(f"broker warm-up: {args.broker_warmup} records in {time.monotonic() - started:.0f} s", flush=True)
            hops.append(
                measure(f"record of {len(record)} B, acked, fetched by 2 groups", 2, fetched, kafka, args.rounds)
            )
        finally:
            fetched.close()
    report(hops, original)


def report(hops: list[Hop], original: bytes) -> None:
    started = time.process_time()
    for _ in range(20):
        resize(original, 400, 400, quality=85)
    resize_ms = (time.process_time() - started) / 20 * 1000
    print(f"\n{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, each hop alone, one at a time")
    print("| hop | per image | client CPU ms | server CPU ms | wall p50 ms |")
    print("|---|---:|---:|---:|---:|")
    for h in hops:
        print(f"| {h.name} | {h.per_image} | {h.client_ms:.2f} | {h.server_ms:.2f} | {h.wall_p50_ms:.2f} |")
    client = sum(h.client_ms * h.per_image for h in hops)
    server = sum(h.server_ms * h.per_image for h in hops)
    print(
        f"per image: client {client:.1f} ms + server {server:.1f} ms = {client + server:.1f} ms of CPU for the store "
        f"and the broker alone; the resize call alone: {resize_ms:.1f} ms"
    )


if __name__ == "__main__":
    main()
