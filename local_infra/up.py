"""`make up`: Kafka, S3, the API, the resize workers, the projector, the webhook notifier and the store janitor,
in the foreground.

Each role's output is shown line by line behind its name. A role that dies is
restarted with backoff; so are the broker and the S3 server when they run here
as local processes (on the same data, the same ports), while the roles
reconnect on their own. Ctrl-C or SIGTERM stops every process started here, by
PID, and the infrastructure last.
"""

from __future__ import annotations

import argparse
import os
import queue
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from common.backoff import exponential
from common.encoding import register_subjects
from common.kafka import ensure_topics
from common.settings import Settings, load_settings
from common.store import ObjectStore
from common.version import service_version
from local_infra.edge import Edge, EdgeConfig, self_signed_certificate, start_edge
from local_infra.process import free_port, spawn, terminate
from local_infra.prometheus import prometheus_argv, scrape_config
from local_infra.registry import start_registry
from local_infra.stack import LocalServer, provide

ROOT = Path(__file__).resolve().parent.parent
_print_lock = threading.Lock()


def say(role: str, line: str) -> None:
    with _print_lock:
        sys.stdout.write(f"{role:<12}| {line}\n")
        sys.stdout.flush()


@dataclass
class Role:
    """One supervised process: started, piped to the console, restarted if it dies."""

    name: str
    argv: list[str]
    env: dict[str, str]
    popen: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    next_start: float = 0.0
    started_at: float = field(default=0.0)

    def start(self) -> None:
        self.popen = spawn(
            self.argv, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        self.started_at = time.monotonic()
        threading.Thread(target=self._pump, args=(self.popen,), daemon=True).start()
        say(self.name, f"started, pid {self.popen.pid}")

    def _pump(self, popen: subprocess.Popen[bytes]) -> None:
        assert popen.stdout is not None
        for raw in popen.stdout:
            say(self.name, raw.decode(errors="replace").rstrip())

    def supervise(self, now: float) -> None:
        """Restart a dead process, waiting longer after each quick death."""
        if self.popen is None or self.popen.poll() is None:
            return
        if self.next_start == 0.0:
            ran_for = now - self.started_at
            self.restarts = 0 if ran_for > 60 else self.restarts + 1
            delay = backoff(self.restarts)
            say(self.name, f"exited with {self.popen.returncode}; restarting in {delay:.1f}s")
            self.next_start = now + delay
        elif now >= self.next_start:
            self.next_start = 0.0
            self.start()

    def stop(self, timeout: float = 20.0) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        terminate(self.popen, timeout)
        say(self.name, f"stopped (pid {self.popen.pid})")


def backoff(restarts: int) -> float:
    """Seconds to wait before a restart: doubling after each quick death, capped."""
    return exponential(restarts + 1, 0.5, 30.0)


class ServerWatch:
    """Restarts a broker or S3 server that died, from a thread of its own (being ready takes seconds)."""

    def __init__(self, server: LocalServer) -> None:
        self.server = server
        self.restarts = 0
        self.started_at = time.monotonic()
        self._delays: queue.Queue[float] = queue.Queue()
        self._busy = threading.Event()
        threading.Thread(target=self._restarter, name=f"restart-{server.name}", daemon=True).start()

    def supervise(self) -> None:
        if self._busy.is_set() or self.server.process.alive():
            return
        self.restarts = 0 if time.monotonic() - self.started_at > 60 else self.restarts + 1
        delay = backoff(self.restarts)
        say(self.server.name, f"exited with {self.server.process.popen.returncode}; restarting in {delay:.1f}s")
        self._busy.set()
        self._delays.put(delay)

    def _restarter(self) -> None:
        while True:
            time.sleep(self._delays.get())
            try:
                self.server.restart()
                self.started_at = time.monotonic()
                say(
                    self.server.name,
                    f"restarted, pid {self.server.process.pid}, ready in {self.server.ready_seconds:.1f}s",
                )
            except Exception as e:  # noqa: BLE001 - reported; the next supervision round tries again
                say(self.server.name, f"restart failed: {e}")
            finally:
                self._busy.clear()


METRICS_BASE_PORT = 9200
# The janitor's metrics port, as an offset from the base.
JANITOR_METRICS_OFFSET = 98
# The notifier's metrics port, as an offset from the base (the workers take base+1 onwards).
NOTIFIER_METRICS_OFFSET = 99
# glibc's malloc hands allocations over 128 KiB (a 700 KB upload, a decoded photo) to mmap and gives
# them back on free, so every request and every resize faulted its buffers in afresh: ~1,100 page
# faults per image in a resize child, ~200 in the API. Served from the heap and kept there instead;
# allocations over 16 MiB (a huge decode) still go straight back to the system.
MALLOC_TUNABLES = "glibc.malloc.mmap_threshold=16777216:glibc.malloc.trim_threshold=33554432"
# Webhooks are signed with this unless WEBHOOK_SECRET is set: fine on loopback, never in production.
LOCAL_WEBHOOK_SECRET = "imgresize-local-webhook-secret"


def worker_slots(spec: str) -> list[str]:
    """`--workers`: a count (each worker serves every lane) or `lane=count,...` (dedicated workers);
    the WORKER_LANES value of each worker slot."""
    spec = spec.strip()
    if spec.isdigit():
        return [""] * int(spec)
    slots: list[str] = []
    for entry in (e.strip() for e in spec.split(",") if e.strip()):
        lanes, sep, count = entry.partition("=")
        if not sep or not count.strip().isdigit() or not lanes.strip():
            raise argparse.ArgumentTypeError(f"--workers entry {entry!r} is not lane=count (or a plain count)")
        slots += [lanes.strip().replace("+", ",")] * int(count)
    return slots


def roles(
    env: dict[str, str],
    workers: list[str],
    api_port: int,
    api_processes: int,
    run_dir: Path,
    access_log: bool = False,
    metrics_base_port: int = METRICS_BASE_PORT,
) -> list[Role]:
    """The API (granian), the projector, the workers and the webhook notifier, each with its own metrics.

    Metrics ports: the projector on the base port, worker i on base+i, the notifier on base+99; base 0: none.
    """

    def metrics_port(offset: int) -> str:
        return str(metrics_base_port + offset if metrics_base_port else 0)

    bin_dir = Path(sys.executable).parent
    # The API may run several processes: their metrics meet in one directory.
    prometheus_dir = run_dir / "prometheus"
    shutil.rmtree(prometheus_dir, ignore_errors=True)
    prometheus_dir.mkdir(parents=True)
    api_env = {**env, "PROMETHEUS_MULTIPROC_DIR": str(prometheus_dir)}
    api = Role(
        "api",
        [
            str(bin_dir / "granian"),
            "--interface",
            "wsgi",
            "--host",
            "127.0.0.1",
            "--port",
            str(api_port),
            "--workers",
            str(api_processes),
            # Threads running the app: long-poll requests hold one each while they wait.
            "--blocking-threads",
            "32",
            # Without the edge in front, a client that never finishes its header frees its slot after 10 s.
            "--http1-header-read-timeout",
            "10000",
            "--workers-kill-timeout",
            "20",
            # Written in the request's thread under the GIL: a third of a status GET's CPU.
            # Counts and latencies by route and status are in /metrics either way.
            "--access-log" if access_log else "--no-access-log",
            "--factory",
            "producer_api:wsgi_app",
        ],
        api_env,
    )
    projector = Role("projector", [str(bin_dir / "status-projector"), "run"], {**env, "METRICS_PORT": metrics_port(0)})
    resize_workers = [
        Role(
            f"worker-{i + 1}" + (f"-{lanes.replace(',', '+')}" if lanes else ""),
            [str(bin_dir / "resize-worker")],
            # A stable id per slot: with exactly_once, a restarted slot fences its predecessor.
            {
                **env,
                "METRICS_PORT": metrics_port(1 + i),
                "WORKER_ID": f"{socket.gethostname()}-{i + 1}",
                **({"WORKER_LANES": lanes} if lanes else {}),
            },
        )
        for i, lanes in enumerate(workers)
    ]
    notifier = Role(
        "webhooks", [str(bin_dir / "webhook-notifier")], {**env, "METRICS_PORT": metrics_port(NOTIFIER_METRICS_OFFSET)}
    )
    janitor = Role(
        "janitor", [str(bin_dir / "store-janitor")], {**env, "METRICS_PORT": metrics_port(JANITOR_METRICS_OFFSET)}
    )
    return [projector, *resize_workers, notifier, janitor, api]


def prometheus_role(args: argparse.Namespace, running: list[Role], api_port: int) -> Role:
    """Prometheus scraping the API (its /metrics) and every role with a metrics port, by job."""
    if not args.metrics_base_port:
        raise SystemExit("--prometheus needs metrics ports (--metrics-base-port other than 0)")
    jobs: dict[str, list[str]] = {"imgresize-api": [f"127.0.0.1:{api_port}"]}
    for role in running:
        port = role.env.get("METRICS_PORT", "0")
        if port != "0":
            job = "imgresize-worker" if role.name.startswith("worker-") else f"imgresize-{role.name}"
            jobs.setdefault(job, []).append(f"127.0.0.1:{port}")
    config = args.run_dir / "prometheus.yml"
    config.write_text(scrape_config(jobs))
    data = args.run_dir / "prometheus-data"
    data.mkdir(exist_ok=True)
    say("prometheus", f"on http://127.0.0.1:{args.prometheus_port}, scraping {', '.join(sorted(jobs))}")
    return Role("prometheus", prometheus_argv(config, data, args.prometheus_port), dict(os.environ))


def kept_secret(path: Path) -> str:
    """A random secret made on the stack's first start and kept with its data (mode 0600)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as out:
            out.write(secrets.token_urlsafe(32))
    return path.read_text().strip()


def start_stack_edge(args: argparse.Namespace, settings: Settings) -> Edge:
    """nginx on the public port in front of an API on a free loopback port."""
    certificate = self_signed_certificate(args.run_dir / "tls") if args.tls else None
    config = EdgeConfig(
        listen_port=args.api_port,
        api_port=free_port(),
        max_body_bytes=settings.max_upload_bytes,
        state_dir=args.run_dir / "edge",
        tls=certificate,
    )
    return start_edge(config, ROOT / ".cache")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="imgresize-stack", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {service_version()}")
    parser.add_argument(
        "--workers",
        type=worker_slots,
        default=worker_slots(str(os.cpu_count() or 1)),
        help="resize worker processes: a count (each serves every lane, interactive first), or dedicated "
        "ones per lane, e.g. interactive=2,bulk=1 (interactive+bulk=2: serving both)",
    )
    parser.add_argument("--api-port", type=int, default=8080, help="the public port (the edge's; the API's without it)")
    parser.add_argument(
        "--no-edge", action="store_true", help="no nginx in front: the API itself listens on the public port"
    )
    parser.add_argument("--tls", action="store_true", help="the edge speaks HTTPS, with a self-signed certificate")
    # On a small machine that also runs Kafka and S3, fewer API processes contend less (docs/PERFORMANCE.md).
    parser.add_argument("--api-processes", type=int, default=max(1, (os.cpu_count() or 2) // 2))
    parser.add_argument("--kafka-port", type=int, default=9092, help="the first broker's port (a cluster: and after)")
    parser.add_argument(
        "--brokers", type=int, default=1, choices=[1, 3], help="Kafka brokers (3: a replicated cluster)"
    )
    parser.add_argument("--s3-port", type=int, default=8333)
    parser.add_argument("--run-dir", type=Path, default=ROOT / "var" / "stack")
    parser.add_argument("--access-log", action="store_true", help="log every API request (costs ~0.3 ms CPU each)")
    parser.add_argument(
        "--metrics-base-port",
        type=int,
        default=METRICS_BASE_PORT,
        help="projector metrics here, worker i at +i, the janitor at +98, the notifier at +99 (0: no metrics ports)",
    )
    parser.add_argument(
        "--infra-only", action="store_true", help="start only Kafka and S3, print how to reach them, and wait"
    )
    parser.add_argument(
        "--prometheus",
        action="store_true",
        help="also run Prometheus (Debian's, unpacked into .cache/) scraping every role, with monitoring/rules.yml",
    )
    parser.add_argument("--prometheus-port", type=int, default=9090)
    parser.add_argument(
        "--registry",
        action="store_true",
        help="also run a schema registry (Apicurio, from Maven Central into .cache/) and write events in "
        "Confluent's wire format through it (EVENT_ENCODING=registry)",
    )
    parser.add_argument("--registry-port", type=int, default=8081)
    args = parser.parse_args(argv)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    args.run_dir.mkdir(parents=True, exist_ok=True)
    with provide(
        args.run_dir, ROOT / ".cache", kafka_port=args.kafka_port, s3_port=args.s3_port, brokers=args.brokers
    ) as infra:
        env = {
            **os.environ,
            **infra.as_env(),
            "IDEMPOTENCY_SECRET": os.environ.get("IDEMPOTENCY_SECRET")
            or kept_secret(args.run_dir / "idempotency-secret"),
            "VIEW_PATH": str(args.run_dir / "status.sqlite3"),
            "PYTHONUNBUFFERED": "1",
            "GLIBC_TUNABLES": os.environ.get("GLIBC_TUNABLES") or MALLOC_TUNABLES,
            "WEBHOOK_SECRET": os.environ.get("WEBHOOK_SECRET") or LOCAL_WEBHOOK_SECRET,
        }
        registry = start_registry(args.run_dir, args.registry_port) if args.registry and not args.infra_only else None
        if registry is not None:
            env.update(EVENT_ENCODING="registry", SCHEMA_REGISTRY_URL=registry.url)
            say("registry", f"Apicurio Registry on {registry.url}, pid {registry.process.pid}")
        settings = load_settings(
            **{k.lower(): v for k, v in infra.as_env().items()},
            **({"event_encoding": "registry", "schema_registry_url": registry.url} if registry else {}),
        )
        ensure_topics(settings)
        if registry is not None:
            for subject, schema_id in register_subjects(settings).items():
                say("registry", f"{subject}: schema id {schema_id}, compatibility BACKWARD")
        ObjectStore(settings).ensure_bucket()
        say(
            "stack",
            f"Kafka {infra.kafka_bootstrap_servers}, S3 http://{infra.s3_endpoint} (bucket {settings.s3_bucket})",
        )
        if args.infra_only:
            running = []
            for name, value in infra.as_env().items():
                say("stack", f"export {name}={value}")
            say("stack", "Kafka and S3 only (topics and bucket made) - Ctrl-C stops them")
        else:
            edge = None if args.no_edge else start_stack_edge(args, settings)
            if edge is not None:
                # The API behind the edge: on a port of its own, trusting the edge's X-Forwarded-For.
                env["TRUSTED_PROXY_HOPS"] = "1"
                say("edge", f"nginx on {edge.url}, pid {edge.process.pid}, ready in {edge.ready_seconds:.1f}s")
            running = roles(
                env,
                args.workers,
                edge.config.api_port if edge is not None else args.api_port,
                args.api_processes,
                args.run_dir,
                args.access_log,
                args.metrics_base_port,
            )
            if args.prometheus:
                running.append(
                    prometheus_role(args, running, edge.config.api_port if edge is not None else args.api_port)
                )
            for role in running:
                role.start()
            base = args.metrics_base_port
            ports = (
                f"projector metrics on :{base}, workers on :{base + 1}.., janitor on :{base + JANITOR_METRICS_OFFSET}, "
                f"webhooks on :{base + NOTIFIER_METRICS_OFFSET}"
                if base
                else "no metrics ports"
            )
            public = edge.url if edge is not None else f"http://127.0.0.1:{args.api_port}"
            say("stack", f"API on {public} (docs /docs, metrics /metrics); {ports}")
            say("stack", "Ctrl-C stops everything")
        supervised: list[LocalServer] = [*infra.local_servers]
        if not args.infra_only and edge is not None:
            supervised.append(edge)
        servers = [ServerWatch(server) for server in supervised]
        try:
            while not stop.wait(0.5):
                now = time.monotonic()
                for role in running:
                    role.supervise(now)
                for server in servers:
                    server.supervise()
        finally:
            say("stack", "stopping")
            for role in reversed(running):
                role.stop()
            if not args.infra_only and edge is not None:
                edge.stop()
            if registry is not None:
                registry.stop()
    say("stack", "all stopped")


if __name__ == "__main__":
    main()
