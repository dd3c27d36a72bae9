"""`make bench-webhooks`: webhook throughput and latency on a real broker, healthy and with a dead receiver.

Produces ResizeCompleted events with a callback_url straight to a results
topic, runs the notifier in this process and receives the POSTs on loopback
(a Python http.server: part of what is measured). Latency is from the produce
call to the receiver's arrival. Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from confluent_kafka import Producer
from pydantic import SecretStr

from common.kafka import ensure_topics
from common.settings import Settings
from local_infra.stack import provide
from schemas import ResizeCompleted, StoredImage, default_codec
from schemas.webhook import EVENT_ID_HEADER
from webhook_notifier.notifier import WebhookNotifier

ROOT = Path(__file__).resolve().parent.parent


class Receiver:
    """Records when each event id arrived; `dead` answers 503 to everything."""

    def __init__(self, dead: bool = False) -> None:
        self.arrivals: dict[str, float] = {}
        self.posts = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - the http.server hook name
                self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    receiver.posts += 1
                    receiver.arrivals.setdefault(self.headers[EVENT_ID_HEADER], time.time())
                self.send_response(503 if dead else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def scenario(kafka: str, count: int, rate: float, dead_share: float, concurrency: int) -> dict[str, float]:
    """`count` events at `rate` per second (0: all before the notifier starts)."""
    suffix = uuid.uuid4().hex[:8]
    fields: dict[str, Any] = {
        name: f"bench-{name}-{suffix}" for name in Settings.model_fields if name.endswith("_topic")
    }
    settings = Settings(
        kafka_bootstrap_servers=kafka,
        webhook_group=f"bench-webhooks-{suffix}",
        webhook_secret=SecretStr("bench-secret"),
        webhook_allow_private=True,
        webhook_backoff_seconds=0.5,
        webhook_max_attempts=3,
        webhook_concurrency=concurrency,
        **fields,
    )
    ensure_topics(settings)
    healthy, dead = Receiver(), Receiver(dead=True)
    codec = default_codec()
    producer = Producer({"bootstrap.servers": kafka, "linger.ms": 5})
    sent: dict[str, float] = {}
    dead_every = round(1 / dead_share) if dead_share else 0
    notifier = WebhookNotifier(settings)
    stop = threading.Event()
    thread = threading.Thread(target=notifier.run, args=(stop,), daemon=True)
    if rate:
        thread.start()
    image = StoredImage("images", "results/x", "image/jpeg", 400, 400, 12345, "etag")
    started = time.time()
    for i in range(count):
        to_dead = bool(dead_every) and i % dead_every == 0
        event = ResizeCompleted(
            task_id=str(uuid.uuid4()),
            result=image,
            source_width=1920,
            source_height=1080,
            duration_ms=10,
            callback_url=dead.url if to_dead else healthy.url,
        )
        if not to_dead:
            sent[event.event_id] = time.time()
        producer.produce(settings.results_topic, key=event.task_id.encode(), value=codec.encode(event))
        producer.poll(0)
        if rate:
            time.sleep(max(0.0, started + (i + 1) / rate - time.time()))
    producer.flush(30)
    if not rate:
        # A backlog: throughput from the notifier's start.
        started = time.time()
        sent = dict.fromkeys(sent, started)
        thread.start()
    deadline = time.time() + 120
    while len(healthy.arrivals) < len(sent) and time.time() < deadline:
        time.sleep(0.05)
    stop.set()
    thread.join(30)
    healthy.close()
    dead.close()
    latencies = [(healthy.arrivals[e] - t) * 1000 for e, t in sent.items() if e in healthy.arrivals]
    last = max(healthy.arrivals.values())
    return {
        "delivered": len(latencies),
        "expected": len(sent),
        "dead_posts": dead.posts,
        "per_second": len(latencies) / (last - started),
        "p50": statistics.median(latencies),
        "p99": percentile(latencies, 0.99),
        "max": max(latencies),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=100.0, help="events per second for the latency runs")
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="imgresize-bench.") as tmp, provide(Path(tmp), ROOT / ".cache") as infra:
        print(f"{args.count} completions with a callback per run, notifier concurrency {args.concurrency}")
        print(f"{'run':<44} {'delivered':>11} {'per s':>7} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7}")
        runs = (
            ("backlog, all receivers healthy", 0.0, 0.0),
            (f"{args.rate:g}/s, all receivers healthy", args.rate, 0.0),
            (f"{args.rate:g}/s, 10% to a dead receiver (503)", args.rate, 0.1),
        )
        for label, rate, share in runs:
            r = scenario(infra.kafka_bootstrap_servers, args.count, rate, share, args.concurrency)
            note = f" (+{r['dead_posts']:.0f} POSTs to the dead one)" if share else ""
            print(
                f"{label:<44} {r['delivered']:>5.0f}/{r['expected']:<5.0f} {r['per_second']:>7.0f} "
                f"{r['p50']:>7.1f} {r['p99']:>7.1f} {r['max']:>7.1f}{note}"
            )


if __name__ == "__main__":
    main()
