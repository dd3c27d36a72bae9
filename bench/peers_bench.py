"""`make bench-peers`: this project, thumbor and imaginary on one machine, one image, one run.

The workload a user choosing an image service would try: a 1920x1080 photo-like
JPEG of ~700 KB (quality 90, per-pixel grain) to 400x400 fill, JPEG quality 85
out, by closed-loop clients on the same machine as the servers. For this
project a client's image is done when it holds the result's bytes: submit, wait
for SUCCESS (long-poll `?wait=10`, or a status GET every 100 ms), GET the
result; or long-poll the result URL (two requests), or submit and wait in one
(`POST ...?wait=10`). The peers answer the resize in the response.

Prints images/s, p50 and p99 at 1 and 8 clients, the ratios, and CPU ms per
image per role (the load client included); then status GETs/s of one API
process for an existing task, and the plumbing's CPU against the resize call's.

The renditions scenario: five outputs per upload (1600x900, 800x450, 400x400,
200x200, 100x100, fill, JPEG quality 85), as catalogue imports and CMS
uploads ask. The peers get five requests per upload, one per rendition; this
project one upload with `sizes`, counted done when the task succeeded
("stored") or when the client also holds all five images ("delivered").
Rates are uploads/s.
"""

from __future__ import annotations

import argparse
import functools
import io
import json
import multiprocessing
import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import requests
from PIL import Image

from bench import corpus, procstat
from bench.e2e_bench import Stack, percentile, run_users, start_stack
from bench.peers import Peer, start_imaginary, start_thumbor

ROOT = Path(__file__).resolve().parent.parent
WIDTH = HEIGHT = 400
RENDITIONS = ((1600, 900), (800, 450), (400, 400), (200, 200), (100, 100))
SIZES = ",".join(f"{w}x{h}" for w, h in RENDITIONS)
TERMINAL = {"SUCCESS", "FAILURE"}
# After the least warm-up, the broker's JIT is looked at over rounds of this length; the warm-up ends
# after this many quiet rounds in a row (one quiet round is often followed by another burst).
WARM_ROUND_SECONDS = 10.0
QUIET_ROUNDS = 2

Fetch = Callable[[requests.Session, bytes], object]


@dataclass
class Run:
    server: str
    client_kind: str
    clients: int
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    # The share of the machine's CPU left idle during the run: the most that overlapping waits could use.
    idle_share: float = 0.0
    # The share the hypervisor gave to other guests while this one had work: a slower machine, not slower code.
    stolen_share: float = 0.0

    @property
    def per_second(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def cpu_ms_per_image(self) -> dict[str, float]:
        done = max(1, len(self.latencies))
        return {role: cpu / done * 1000 for role, cpu in self.cpu_seconds.items()}

    def row(self) -> dict[str, object]:
        return {
            "server": self.server,
            "client": self.client_kind,
            "clients": self.clients,
            "images_per_s": round(self.per_second, 1),
            "p50_ms": round(percentile(self.latencies, 50) * 1000, 1),
            "p99_ms": round(percentile(self.latencies, 99) * 1000, 1),
            "done": len(self.latencies),
            "errors": self.errors,
            "cpu_ms_per_image": {k: round(v, 1) for k, v in self.cpu_ms_per_image().items()},
            "idle_share": round(self.idle_share, 3),
            "stolen_share": round(self.stolen_share, 3),
        }

    def machine_ms_per_image(self) -> float:
        """CPU per image of every role counted, the load client's included."""
        return sum(self.cpu_ms_per_image().values())


# The client kind of thumbor's run made before this project's runs.
BEFORE = "request, before"

# Roles that are the object store and the broker, not this project's own processes.
INFRASTRUCTURE = frozenset({"s3", "kafka", "kafka JIT"})

# HotSpot's compiler threads, by the names the JVM gives them.
JIT_THREADS = ("C1 CompilerThre", "C2 CompilerThre")


def closed_loop(
    server: str, kind: str, fetch: Fetch, image: bytes, clients: int, seconds: float, roles: dict[str, list[int]]
) -> Run:
    """`clients` users, each asking for the next image as soon as it holds the last one."""
    run = Run(server, kind, clients)
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def user() -> None:
        with requests.Session() as session:
            while time.monotonic() < stop_at:
                started = time.perf_counter()
                try:
                    fetch(session, image)
                except Exception:  # noqa: BLE001 - counted, and the user goes on
                    with lock:
                        run.errors += 1
                    continue
                with lock:
                    run.latencies.append(time.perf_counter() - started)

    before = {role: procstat.usage(pids).cpu_seconds for role, pids in roles.items()}
    jit_before = procstat.thread_cpu_seconds(roles.get("kafka", []), JIT_THREADS)
    client_before = time.process_time()
    machine_before = procstat.machine_time()
    run.seconds = run_users(user, clients)
    machine_after = procstat.machine_time()
    idle = machine_after.idle - machine_before.idle
    busy = machine_after.busy - machine_before.busy
    stolen = machine_after.stolen - machine_before.stolen
    run.idle_share = idle / max(1e-9, idle + busy)
    run.stolen_share = stolen / max(1e-9, idle + busy + stolen)
    run.cpu_seconds = {role: procstat.usage(pids).cpu_seconds - before[role] for role, pids in roles.items()}
    run.cpu_seconds["load client"] = time.process_time() - client_before
    if "kafka" in roles:
        # The broker's JIT compilers are still at work minutes into the load: start-up, not steady state.
        jit = procstat.thread_cpu_seconds(roles["kafka"], JIT_THREADS) - jit_before
        run.cpu_seconds["kafka"] -= jit
        run.cpu_seconds["kafka JIT"] = jit
    return run


# -- this project as a client sees it ---------------------------------------


class ProjectClient:
    """Submit, wait, download: waiting by long-poll on the status (`?wait=10`), by a status GET every
    `poll_every` seconds, with `result_wait` by long-polling the result URL itself (two requests), or with
    `submit_wait` in the submit itself (`POST ...?wait=10`, one request; the result URL if still running)."""

    def __init__(
        self, base_url: str, poll_every: float | None, result_wait: bool = False, submit_wait: bool = False
    ) -> None:
        self.base_url = base_url
        self.poll_every = poll_every
        self.result_wait = result_wait or submit_wait
        self.submit_wait = submit_wait
        self.lost = 0

    def renditions(self, session: requests.Session, image: bytes, deliver: bool) -> list[bytes]:
        """One upload with the five renditions, waited for by status long-poll; with `deliver`, all five fetched."""
        response = session.post(
            f"{self.base_url}/api/v1/images/resize",
            files={"file": ("photo.jpg", image)},
            data={"sizes": SIZES, "quality": "85"},
            timeout=60,
        )
        if response.status_code != 202:
            raise RuntimeError(f"submit answered {response.status_code}")
        task_id = response.json()["task_id"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status = session.get(f"{self.base_url}/api/v1/status/{task_id}?wait=10", timeout=60).json()
            if status["status"] in TERMINAL:
                break
        else:
            self.lost += 1
            raise RuntimeError(f"task {task_id} not finished in 60 s")
        if status["status"] != "SUCCESS":
            raise RuntimeError(f"task {task_id}: {status.get('error')}")
        if not deliver:
            return []
        images = []
        for variant in status["variants"]:
            result = session.get(f"{self.base_url}{variant['url']}", timeout=60)
            result.raise_for_status()
            images.append(result.content)
        return images

    def __call__(self, session: requests.Session, image: bytes) -> bytes:
        response = session.post(
            f"{self.base_url}/api/v1/images/resize{'?wait=10' if self.submit_wait else ''}",
            files={"file": ("photo.jpg", image)},
            data={"width": str(WIDTH), "height": str(HEIGHT), "quality": "85"},
            timeout=60,
        )
        if self.submit_wait and response.status_code == 200:
            return response.content
        if response.status_code != 202:
            raise RuntimeError(f"submit answered {response.status_code}")
        task_id = response.json()["task_id"]
        result_url = f"{self.base_url}/api/v1/images/result/{task_id}"
        if self.result_wait:
            return self._long_poll_result(session, task_id, result_url)
        status_url = f"{self.base_url}/api/v1/status/{task_id}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.poll_every is None:
                state = session.get(f"{status_url}?wait=10", timeout=60).json()["status"]
            else:
                time.sleep(self.poll_every)
                state = session.get(status_url, timeout=60).json()["status"]
            if state in TERMINAL:
                break
        else:
            self.lost += 1
            raise RuntimeError(f"task {task_id} not finished in 60 s")
        result = session.get(result_url, timeout=60)
        result.raise_for_status()
        return result.content

    def _long_poll_result(self, session: requests.Session, task_id: str, result_url: str) -> bytes:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            result = session.get(f"{result_url}?wait=10", timeout=60)
            if result.status_code == 200:
                return result.content
            if result.json().get("code") != "result_not_ready":
                raise RuntimeError(f"task {task_id}: {result.status_code} {result.text[:200]}")
        self.lost += 1
        raise RuntimeError(f"task {task_id} not finished in 60 s")


def _status_hammer(args: tuple[str, int, str, float, int]) -> int:
    """One process of the status-GET load: `threads` kept-alive connections, 200 answers counted.

    Raw sockets and a prebuilt request: http.client's own CPU per request would
    otherwise be a large part of what the two cores can give the server.
    """
    host, port, path, seconds, threads = args
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
    counts = [0] * threads
    stop_at = time.monotonic() + seconds

    def receive(sock: socket.socket) -> bytes:
        chunk = sock.recv(65536)
        if not chunk:
            # The server closed the connection (a keep-alive limit): counted so far, and a new one follows.
            raise ConnectionResetError("closed by the server")
        return chunk

    def one(i: int) -> None:
        while time.monotonic() < stop_at:
            try:
                exchange(i)
            except OSError:
                continue

    def exchange(i: int) -> None:
        with socket.create_connection((host, port), timeout=10) as sock:
            buffered = b""
            while time.monotonic() < stop_at:
                sock.sendall(request)
                while b"\r\n\r\n" not in buffered:
                    buffered += receive(sock)
                head, _, buffered = buffered.partition(b"\r\n\r\n")
                length = int(
                    next(line for line in head.lower().split(b"\r\n") if line.startswith(b"content-length:"))[15:]
                )
                while len(buffered) < length:
                    buffered += receive(sock)
                buffered = buffered[length:]
                if head.startswith(b"HTTP/1.1 200"):
                    counts[i] += 1

    workers = [threading.Thread(target=one, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return sum(counts)


def status_gets_per_second(stack: Stack, task_id: str, seconds: float, clients: int = 8) -> float:
    """GETs/s of the status of one existing task, `clients` kept-alive connections in two processes."""
    port = int(stack.base_url.rsplit(":", 1)[1])
    path = f"/api/v1/status/{task_id}"
    per_process = [clients // 2, clients - clients // 2]
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        counts = pool.map(_status_hammer, [("127.0.0.1", port, path, seconds, n) for n in per_process])
    return sum(counts) / seconds


def resize_cpu_ms(image: bytes, rounds: int = 40) -> float:
    """The resize call's own CPU per image, in this process: the engine without any pipeline."""
    from resize_worker.engine import resize

    resize(image, WIDTH, HEIGHT, quality=85)
    started = time.process_time()
    for _ in range(rounds):
        resize(image, WIDTH, HEIGHT, quality=85)
    return (time.process_time() - started) / rounds * 1000


def check_output(name: str, data: bytes) -> None:
    with Image.open(io.BytesIO(data)) as out:
        if out.format != "JPEG" or out.size != (WIDTH, HEIGHT):
            raise RuntimeError(f"{name} answered {out.format} {out.size}, not a {WIDTH}x{HEIGHT} JPEG")


# -- the runs -----------------------------------------------------------------


def jit_ms_per_second(run: Run) -> float:
    """CPU the broker's JIT compilers used per second of this run, in ms."""
    return run.cpu_seconds.get("kafka JIT", 0.0) * 1000 / max(1e-9, run.seconds)


def jit_quiet(run: Run, limit_ms_per_s: float) -> bool:
    """Whether the broker's JIT compilers used less than `limit_ms_per_s` of CPU per second of this run."""
    return jit_ms_per_second(run) < limit_ms_per_s


def warm_up(args: argparse.Namespace, client: ProjectClient, image: bytes, roles: dict[str, list[int]]) -> None:
    """At least --warmup seconds at 8 clients, then rounds of 10 s until the broker's JIT compilers are quiet
    (--jit-quiet) in two rounds in a row, or --warmup-max seconds have passed.

    A fresh broker compiles its hot paths for minutes, in bursts (~8 ms per image in its first 20 s,
    1-3 ms a minute later, under 0.2 ms after three): the runs are to measure a broker in its steady
    state, as a long-lived one runs, not its start-up. The JIT is still reported apart in every run.
    """
    print(f"this project: warming up for {args.warmup:.0f}-{args.warmup_max:.0f} s (the broker's JIT)", flush=True)
    spent = closed_loop("this project", "warm-up", client, image, 8, args.warmup, roles).seconds
    quiet_rounds = 0
    while spent < args.warmup_max and quiet_rounds < QUIET_ROUNDS:
        last = closed_loop("this project", "warm-up", client, image, 8, WARM_ROUND_SECONDS, roles)
        spent += last.seconds
        quiet_rounds = quiet_rounds + 1 if jit_quiet(last, args.jit_quiet) else 0
        jit = jit_ms_per_second(last)
        print(f"    after {spent:.0f} s: the broker's JIT at {jit:.0f} ms of CPU per second", flush=True)


def bench_project(args: argparse.Namespace, image: bytes, runs: list[Run]) -> float | None:
    cores = os.cpu_count() or 1
    # The peers run bare, so this project does too by default: the edge's per-client request limit
    # would cap one load generator's address (all of its requests) long before the service does.
    stack = start_stack(cores, max(1, cores // 2), edge=args.edge)
    try:
        long_poll = ProjectClient(stack.base_url, None)
        with requests.Session() as session:
            check_output("this project", long_poll(session, image))
        warm_up(args, long_poll, image, stack.roles())
        # After the warm-up every worker has had tasks: its resize child (and the fork server
        # that makes it) exists and belongs to its process tree.
        roles = stack.roles()
        polling = ProjectClient(stack.base_url, 0.1)
        on_result = ProjectClient(stack.base_url, None, result_wait=True)
        on_submit = ProjectClient(stack.base_url, None, submit_wait=True)
        kinds = (
            ("long-poll", long_poll),
            ("poll 100 ms", polling),
            ("result ?wait", on_result),
            ("submit ?wait", on_submit),
        )
        for kind, client in kinds:
            for clients in (1, 8):
                run = closed_loop("this project", kind, client, image, clients, args.seconds, roles)
                runs.append(run)
                report(run)
        if args.renditions:
            stored = functools.partial(_project_renditions, long_poll, False)
            delivered = functools.partial(_project_renditions, long_poll, True)
            with requests.Session() as session:
                check_renditions("this project", long_poll.renditions(session, image, True))
            for kind, fetch in ((STORED, stored), (DELIVERED, delivered)):
                for clients in (1, 8):
                    run = closed_loop("this project", kind, fetch, image, clients, args.seconds, roles)
                    runs.append(run)
                    report(run)
        lost = long_poll.lost + polling.lost + on_result.lost + on_submit.lost
        print(f"this project: {lost} lost", flush=True)
        with requests.Session() as session:
            response = session.post(
                f"{stack.base_url}/api/v1/images/resize",
                files={"file": ("photo.jpg", image)},
                data={"width": "400", "height": "400"},
                timeout=60,
            )
            task_id = response.json()["task_id"]
        rate = status_gets_per_second(stack, task_id, args.status_seconds)
        print(f"this project: one API process, status GETs of an existing task at 8 clients: {rate:.0f}/s", flush=True)
        return rate
    finally:
        stack.stop()


def bench_peer(
    args: argparse.Namespace,
    peer: Peer,
    image: bytes,
    runs: list[Run],
    kind: str = "request",
    client_counts: tuple[int, ...] = (1, 8),
    renditions: bool = False,
) -> None:
    try:
        roles = {peer.name.split()[0]: peer.pids()}

        def fetch(session: requests.Session, source: bytes) -> bytes:
            return peer.fetch(session, source, WIDTH, HEIGHT)

        def fetch_renditions(session: requests.Session, source: bytes) -> list[bytes]:
            return [peer.fetch(session, source, w, h) for w, h in RENDITIONS]

        with requests.Session() as session:
            check_output(peer.name, fetch(session, image))
            if renditions:
                check_renditions(peer.name, fetch_renditions(session, image))
        closed_loop(peer.name, "warm-up", fetch, image, 8, args.peer_warmup, roles)
        for clients in client_counts:
            run = closed_loop(peer.name, kind, fetch, image, clients, args.seconds, roles)
            runs.append(run)
            report(run)
        if renditions:
            for clients in client_counts:
                run = closed_loop(peer.name, RENDITIONS_KIND, fetch_renditions, image, clients, args.seconds, roles)
                runs.append(run)
                report(run)
    finally:
        peer.stop()


# Client kinds of the renditions scenario: the peers' five requests, and this project's one upload.
RENDITIONS_KIND = "5 requests"
STORED = "5 sizes, stored"
DELIVERED = "5 sizes, delivered"


def _project_renditions(client: ProjectClient, deliver: bool, session: requests.Session, image: bytes) -> list[bytes]:
    return client.renditions(session, image, deliver)


def check_renditions(name: str, made: list[bytes]) -> None:
    sizes = []
    for data in made:
        with Image.open(io.BytesIO(data)) as out:
            if out.format != "JPEG":
                raise RuntimeError(f"{name} answered {out.format}, not JPEG")
            sizes.append(out.size)
    if sizes != list(RENDITIONS):
        raise RuntimeError(f"{name} made {sizes}, not {list(RENDITIONS)}")


def report(run: Run) -> None:
    cpu = ", ".join(f"{role} {ms:.1f}" for role, ms in sorted(run.cpu_ms_per_image().items()))
    print(
        f"{run.server:<18} {run.client_kind:<12} {run.clients} client(s): {run.per_second:6.1f} img/s"
        f"  p50 {percentile(run.latencies, 50) * 1000:6.0f} ms  p99 {percentile(run.latencies, 99) * 1000:6.0f} ms"
        f"  errors {run.errors}  machine idle {run.idle_share:.0%}, stolen by the hypervisor {run.stolen_share:.0%}"
        f"\n    CPU ms/image: {cpu}",
        flush=True,
    )


def find(runs: list[Run], server: str, kind: str, clients: int) -> Run | None:
    matching = (r for r in runs if r.server.startswith(server) and r.client_kind == kind and r.clients == clients)
    return next(matching, None)


def parity_budget(ours: Run, thumbor: Run | None, imaginary: Run | None) -> None:
    """How much CPU per image this project would have to shed to reach each target on this machine.

    When every run keeps the cores busy, images/s is the cores divided by the CPU per image, the load
    client's included: matching a rate means matching that CPU.
    """
    mine = ours.machine_ms_per_image()
    line = f"CPU per image at 8 clients, every role and the load client: this project {mine:.1f} ms"
    for name, peer, share in (("thumbor", thumbor, 1.0), ("imaginary", imaginary, 0.8)):
        if peer is not None:
            allowed = peer.machine_ms_per_image() / share
            line += f"; {share:g}x {name}'s images/s allows {allowed:.1f} ms ({mine - allowed:+.1f} ms to shed)"
    runs = [r for r in (ours, thumbor, imaginary) if r is not None]
    idle = ", ".join(f"{r.server} {r.idle_share:.0%}" for r in runs)
    stolen = ", ".join(f"{r.server} {r.stolen_share:.0%}" for r in runs)
    print(f"{line}\nmachine idle during those runs: {idle}\nstolen by the hypervisor: {stolen}")
    cpu = ours.cpu_ms_per_image()
    infrastructure = sum(ms for role, ms in cpu.items() if role in INFRASTRUCTURE)
    own = sum(ms for role, ms in cpu.items() if role not in INFRASTRUCTURE and role != "load client")
    print(
        f"of which the store and the broker (on machines of their own in production): {infrastructure:.1f} ms; "
        f"this project's own processes: {own:.1f} ms; the load client: {cpu.get('load client', 0.0):.1f} ms"
    )


def bracket(runs: list[Run], ours: Run | None) -> None:
    """thumbor's 8-client rate before and after this project's runs, and this project's against each."""
    before, after = find(runs, "thumbor", BEFORE, 8), find(runs, "thumbor", "request", 8)
    if not (before and after):
        return
    line = (
        f"thumbor at 8 clients before this project's runs: {before.per_second:.1f} img/s; after: {after.per_second:.1f}"
    )
    if ours:
        line += (
            f"; this project's status long-poll {ours.per_second / before.per_second:.2f}x the first"
            f" and {ours.per_second / after.per_second:.2f}x the second"
        )
    print(line)


def other_kind(runs: list[Run], kind: str, label: str, ours: Run) -> None:
    """One of this project's other client kinds against the status long-poll and the peers."""
    eight, one = find(runs, "this project", kind, 8), find(runs, "this project", kind, 1)
    if not (eight and one):
        return
    line = f"{label}: {eight.per_second:.1f} img/s at 8 clients"
    line += f" ({eight.per_second / ours.per_second:.2f}x the status long-poll"
    thumbor = find(runs, "thumbor", "request", 8)
    if thumbor:
        line += f", {eight.per_second / thumbor.per_second:.2f}x thumbor's"
    line += f"), 1-client p50 {percentile(one.latencies, 50) * 1000:.0f} ms"
    imaginary = find(runs, "imaginary", "request", 1)
    if imaginary:
        line += f" ({percentile(one.latencies, 50) / percentile(imaginary.latencies, 50):.2f}x imaginary's)"
    print(line)


def summary(runs: list[Run], resize_ms: float, status_rate: float | None) -> None:
    print("\n| server | client | clients | img/s | p50 ms | p99 ms |")
    print("|---|---|---:|---:|---:|---:|")
    for r in runs:
        p50, p99 = percentile(r.latencies, 50) * 1000, percentile(r.latencies, 99) * 1000
        print(f"| {r.server} | {r.client_kind} | {r.clients} | {r.per_second:.1f} | {p50:.0f} | {p99:.0f} |")
    ours = find(runs, "this project", "long-poll", 8)
    ours_one = find(runs, "this project", "long-poll", 1)
    polled = find(runs, "this project", "poll 100 ms", 8)
    print()
    for peer in ("thumbor", "imaginary"):
        theirs, theirs_one = find(runs, peer, "request", 8), find(runs, peer, "request", 1)
        if ours and theirs and ours_one and theirs_one:
            print(
                f"this project / {peer}: img/s at 8 clients {ours.per_second / theirs.per_second:.2f}x, "
                f"p99 {percentile(ours.latencies, 99) / percentile(theirs.latencies, 99):.2f}x, "
                f"1-client p50 {percentile(ours_one.latencies, 50) / percentile(theirs_one.latencies, 50):.2f}x"
            )
    bracket(runs, ours)
    if ours and polled:
        print(f"polling every 100 ms / long-poll, img/s at 8 clients: {polled.per_second / ours.per_second:.2f}")
    if ours:
        parity_budget(ours, find(runs, "thumbor", "request", 8), find(runs, "imaginary", "request", 8))
        for kind, label in (
            ("result ?wait", "long-poll on the result URL (two requests per image)"),
            ("submit ?wait", "submit and wait in one request (`POST ...?wait=10`)"),
        ):
            other_kind(runs, kind, label, ours)
    if ours:
        cpu = ours.cpu_ms_per_image()
        plumbing = sum(ms for role, ms in cpu.items() if role != "load client") - resize_ms
        jit = cpu.get("kafka JIT", 0.0)
        print(
            f"resize call alone: {resize_ms:.1f} ms CPU per image; plumbing (all server roles minus the resize): "
            f"{plumbing:.1f} ms = {plumbing / resize_ms:.2f}x the resize; without the broker's JIT "
            f"({jit:.1f} ms): {plumbing - jit:.1f} ms = {(plumbing - jit) / resize_ms:.2f}x"
        )
        in_load = cpu.get("resize children", 0.0)
        if in_load:
            rest = sum(ms for role, ms in cpu.items() if role not in {"load client", "resize children"})
            print(
                f"the resize children under this load: {in_load:.1f} ms CPU per image; every other server role: "
                f"{rest:.1f} ms = {rest / in_load:.2f}x the resize as it runs here"
            )
    renditions_summary(runs)
    single_targets(runs)
    if status_rate is not None:
        print(f"status GETs/s, one API process, 8 clients: {status_rate:.0f}")


# The targets: this project's uploads/s against each peer's at 8 clients.
RENDITION_TARGETS = {STORED: {"thumbor": 1.7, "imaginary": 1.4}, DELIVERED: {"thumbor": 1.5, "imaginary": 1.2}}


def renditions_summary(runs: list[Run]) -> None:
    """Five renditions per upload: this project's stored and delivered rates against each peer's five requests."""
    for kind, targets in RENDITION_TARGETS.items():
        ours = find(runs, "this project", kind, 8)
        if ours is None:
            continue
        for peer, target in targets.items():
            theirs = find(runs, peer, RENDITIONS_KIND, 8)
            if theirs is None:
                continue
            ratio = ours.per_second / theirs.per_second
            verdict = "reached" if ratio >= target else "NOT reached"
            print(
                f"five renditions, {kind.split(', ')[1]}: this project {ours.per_second:.1f} uploads/s, {peer} "
                f"{theirs.per_second:.1f}: {ratio:.2f}x (target {target}x: {verdict})"
            )
        one, theirs_one = find(runs, "this project", kind, 1), find(runs, "thumbor", RENDITIONS_KIND, 1)
        if one and theirs_one:
            print(
                f"    1 client p50: this project {percentile(one.latencies, 50) * 1000:.0f} ms, "
                f"thumbor {percentile(theirs_one.latencies, 50) * 1000:.0f} ms"
            )


def single_targets(runs: list[Run]) -> None:
    """One output per upload: >= 0.9x thumbor's img/s at 8 clients, and a 1-client p50 no worse than thumbor's."""
    ours, thumbor = find(runs, "this project", "long-poll", 8), find(runs, "thumbor", "request", 8)
    ours_one, thumbor_one = find(runs, "this project", "long-poll", 1), find(runs, "thumbor", "request", 1)
    if ours and thumbor:
        ratio = ours.per_second / thumbor.per_second
        verdict = "reached" if ratio >= 0.9 else "NOT reached"
        print(f"one output: {ratio:.2f}x thumbor at 8 clients (target 0.9x: {verdict})")
    if ours_one and thumbor_one:
        mine, theirs = percentile(ours_one.latencies, 50), percentile(thumbor_one.latencies, 50)
        verdict = "reached" if mine <= theirs else "NOT reached"
        print(f"one output, 1-client p50: {mine * 1000:.0f} ms against thumbor's {theirs * 1000:.0f} ms ({verdict})")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each measured run")
    parser.add_argument("--warmup", type=float, default=40.0, help="this project's least warm-up at 8 clients")
    parser.add_argument("--warmup-max", type=float, default=240.0, help="its longest, if the JIT is still busy")
    parser.add_argument(
        "--jit-quiet", type=float, default=10.0, help="the warm-up ends once the JIT uses less CPU, ms per second"
    )
    parser.add_argument("--peer-warmup", type=float, default=5.0)
    parser.add_argument("--status-seconds", type=float, default=5.0)
    parser.add_argument("--only", choices=["project", "thumbor", "imaginary"], action="append")
    parser.add_argument(
        "--edge", action="store_true", help="run this project behind its nginx edge (limits: 200 requests/s a client)"
    )
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument(
        "--no-renditions", dest="renditions", action="store_false", help="skip the five-renditions scenario"
    )
    args = parser.parse_args(argv)
    only = set(args.only or ["project", "thumbor", "imaginary"])
    image = corpus.photo()
    resize_ms = resize_cpu_ms(image)
    print(f"source: 1920x1080 photo-like JPEG, {len(image) // 1000} KB; resize call alone {resize_ms:.1f} ms CPU")
    cache = ROOT / ".cache"
    runs: list[Run] = []
    status_rate = None
    with tempfile.TemporaryDirectory(prefix="imgresize-peers.") as work:
        if {"project", "thumbor"} <= only:
            # thumbor at 8 clients before this project's runs as well as after them: the machine's
            # speed drifts over those minutes, and the two readings bracket it.
            bench_peer(args, start_thumbor(cache, Path(work), image), image, runs, BEFORE, (8,))
        if "project" in only:
            status_rate = bench_project(args, image, runs)
        if "thumbor" in only:
            bench_peer(args, start_thumbor(cache, Path(work), image), image, runs, renditions=args.renditions)
        if "imaginary" in only:
            imaginary = start_imaginary(cache, Path(work))
            if imaginary is not None:
                bench_peer(args, imaginary, image, runs, renditions=args.renditions)
    summary(runs, resize_ms, status_rate)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        rows = [r.row() for r in runs]
        args.json.write_text(json.dumps({"resize_cpu_ms": resize_ms, "status_gets_per_s": status_rate, "runs": rows}))


if __name__ == "__main__":
    main()
