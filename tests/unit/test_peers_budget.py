"""The peers benchmark's parity budget: CPU per image to shed to reach a peer's rate on the same cores."""

from __future__ import annotations

import pytest

from bench.peers_bench import BEFORE, Run, bracket, jit_quiet, other_kind, parity_budget


def _run(server: str, images: int, cpu_seconds: dict[str, float], idle: float) -> Run:
    return Run(server, "request", 8, seconds=10.0, latencies=[0.1] * images, cpu_seconds=cpu_seconds, idle_share=idle)


def test_the_budget_is_the_gap_in_cpu_per_image_load_client_included(capsys: pytest.CaptureFixture[str]) -> None:
    ours = _run("this project", 100, {"api": 3.0, "resize children": 2.0, "load client": 0.5}, 0.04)
    thumbor = _run("thumbor 7.8.0", 100, {"thumbor": 4.0, "load client": 0.2}, 0.02)
    imaginary = _run("imaginary v1.2.4", 100, {"imaginary": 2.8, "load client": 0.2}, 0.01)

    parity_budget(ours, thumbor, imaginary)

    out = capsys.readouterr().out
    assert "this project 55.0 ms" in out
    assert "1x thumbor's images/s allows 42.0 ms (+13.0 ms to shed)" in out
    # 0.8x of imaginary's rate allows 30 / 0.8 ms per image.
    assert "0.8x imaginary's images/s allows 37.5 ms (+17.5 ms to shed)" in out
    assert "this project 4%, thumbor 7.8.0 2%, imaginary v1.2.4 1%" in out
    assert "stolen by the hypervisor: this project 0%, thumbor 7.8.0 0%" in out


def test_the_store_and_the_broker_are_told_apart_from_the_projects_own_processes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    cpu = {"api": 1.0, "workers": 0.5, "s3": 0.6, "kafka": 0.3, "kafka JIT": 0.1, "load client": 0.2}

    parity_budget(_run("this project", 100, cpu, 0.0), None, None)

    out = capsys.readouterr().out
    assert "the store and the broker (on machines of their own in production): 10.0 ms" in out
    assert "this project's own processes: 15.0 ms; the load client: 2.0 ms" in out


def test_without_peers_only_this_project_is_told(capsys: pytest.CaptureFixture[str]) -> None:
    parity_budget(_run("this project", 10, {"api": 1.0}, 0.5), None, None)
    out = capsys.readouterr().out
    assert "this project 100.0 ms" in out and "thumbor" not in out


def test_another_client_kind_is_set_against_the_status_long_poll_and_the_peers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def run(server: str, kind: str, clients: int, images: int, latency: float) -> Run:
        return Run(server, kind, clients, seconds=10.0, latencies=[latency] * images)

    runs = [
        run("this project", "submit ?wait", 8, 400, 0.2),
        run("this project", "submit ?wait", 1, 200, 0.045),
        run("thumbor 7.8.0", "request", 8, 500, 0.2),
        run("imaginary v1.2.4", "request", 1, 300, 0.030),
    ]
    other_kind(runs, "submit ?wait", "submit and wait", run("this project", "long-poll", 8, 320, 0.25))

    out = capsys.readouterr().out
    assert "submit and wait: 40.0 img/s at 8 clients (1.25x the status long-poll, 0.80x thumbor's)" in out
    assert "1-client p50 45 ms (1.50x imaginary's)" in out
    other_kind(runs, "result ?wait", "never ran", runs[0])
    assert capsys.readouterr().out == ""


def test_the_warm_up_ends_once_the_jit_uses_less_than_the_limit_per_second() -> None:
    busy = _run("this project", 400, {"kafka": 1.0, "kafka JIT": 0.3}, 0.0)  # 30 ms per second over 10 s
    quiet = _run("this project", 400, {"kafka": 1.0, "kafka JIT": 0.05}, 0.0)  # 5 ms per second
    never = _run("this project", 400, {"api": 1.0}, 0.0)  # no broker among the roles

    assert not jit_quiet(busy, 10.0)
    assert jit_quiet(busy, 40.0)
    assert jit_quiet(quiet, 10.0)
    assert jit_quiet(never, 10.0)


def test_thumbors_runs_before_and_after_bracket_this_projects(capsys: pytest.CaptureFixture[str]) -> None:
    def run(server: str, kind: str, images: int) -> Run:
        return Run(server, kind, 8, seconds=10.0, latencies=[0.1] * images)

    ours = run("this project", "long-poll", 400)
    runs = [run("thumbor 7.8.0", BEFORE, 500), ours, run("thumbor 7.8.0", "request", 625)]

    bracket(runs, ours)

    out = capsys.readouterr().out
    assert "before this project's runs: 50.0 img/s; after: 62.5" in out
    assert "status long-poll 0.80x the first and 0.64x the second" in out


def test_without_a_run_before_there_is_no_bracket(capsys: pytest.CaptureFixture[str]) -> None:
    bracket([Run("thumbor 7.8.0", "request", 8, seconds=1.0, latencies=[0.1])], None)
    assert capsys.readouterr().out == ""
