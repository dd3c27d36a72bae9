"""The quick start, walked as written: its shell commands against a stack started as `make up` starts it,
and its web page step in a real headless Chromium."""

from __future__ import annotations

import io
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from PIL import Image
from playwright.sync_api import expect, sync_playwright

from bench import corpus
from bench.e2e_bench import Stack, start_stack
from local_infra.process import free_port, free_port_block
from local_infra.up import NOTIFIER_METRICS_OFFSET
from tests.conftest import ROOT
from tests.e2e.test_web_page import chromium_path

pytestmark = pytest.mark.e2e

QUICKSTART = ROOT / "docs" / "quickstart.md"
DOCUMENTED_URL = "http://127.0.0.1:8080"


def shell_blocks(markdown: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", markdown, flags=re.DOTALL)


@pytest.fixture(scope="module")
def prometheus_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def stack(prometheus_port: int) -> Iterator[Stack]:
    """The stack as `make up PROMETHEUS=1` starts it, on ports of its own."""
    # A block below the ephemeral range: base + 99 (the notifier's) is not some connection's local port.
    base = free_port_block(NOTIFIER_METRICS_OFFSET + 1)
    extra = ["--prometheus", "--prometheus-port", str(prometheus_port), "--metrics-base-port", str(base)]
    started = start_stack(workers=1, api_processes=1, extra=extra)
    try:
        yield started
    finally:
        started.stop()


def test_the_quick_start_commands_as_written(stack: Stack, tmp_path: Path) -> None:
    blocks = shell_blocks(QUICKSTART.read_text())
    assert blocks[0].strip() == "make up"  # the stack above is what it starts
    commands = [line for block in blocks[1:] for line in block.strip().splitlines()]
    script = "set -euo pipefail\n" + "\n".join(c.replace(DOCUMENTED_URL, stack.base_url) for c in commands)
    (tmp_path / "photo.jpg").write_bytes(corpus.photo(1200, 800))
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    env = {**os.environ, "IMGRESIZE_URL": stack.base_url}
    done = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr

    with Image.open(tmp_path / "small.jpg") as small:
        assert (small.format, small.size) == ("JPEG", (400, 400))
    with Image.open(tmp_path / "thumb.jpg") as thumb:
        assert thumb.size == (200, 133)
    assert '"status":"SUCCESS"' in done.stdout.replace(" ", "")
    saved = sorted(p.name for p in (tmp_path / "thumbs").iterdir())
    assert saved == ["photo-100x100.webp", "photo-800x.webp", "photo.jpg"], saved
    with Image.open(tmp_path / "thumbs" / "photo-800x.webp") as wide:
        assert wide.size == (800, 533)


def test_the_quick_start_web_page(stack: Stack, tmp_path: Path) -> None:
    assert "Open http://127.0.0.1:8080/ in a browser" in QUICKSTART.read_text()
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(corpus.photo(1200, 800))
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path(),
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        try:
            page = browser.new_context(accept_downloads=True).new_page()
            page.goto(f"{stack.base_url}/")
            expect(page.locator("body[data-ready=true]")).to_be_visible()
            page.fill("#width", "400")
            page.fill("#height", "400")
            page.set_input_files("#files", str(photo))
            job = page.locator(".job").first
            expect(job.locator(".state")).to_have_text("SUCCESS", timeout=60_000)
            with page.expect_download() as download_info:
                job.locator("a.download").click()
            data = Path(download_info.value.path()).read_bytes()
        finally:
            browser.close()
    with Image.open(io.BytesIO(data)) as result:
        assert result.size == (400, 400)


def test_prometheus_scrapes_every_role_as_up(stack: Stack, prometheus_port: int) -> None:
    """`make up PROMETHEUS=1`: every role's metrics scraped, and the alert rules loaded."""
    api = f"http://127.0.0.1:{prometheus_port}/api/v1"
    deadline = time.monotonic() + 60
    targets: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        try:
            targets = requests.get(f"{api}/targets", timeout=5).json()["data"]["activeTargets"]
        except requests.RequestException:
            targets = []
        if targets and all(t["health"] == "up" for t in targets):
            break
        time.sleep(1)
    jobs = {t["labels"]["job"] for t in targets}
    assert jobs == {
        "imgresize-api",
        "imgresize-worker",
        "imgresize-projector",
        "imgresize-webhooks",
        "imgresize-janitor",
    }
    assert all(t["health"] == "up" for t in targets), [(t["scrapeUrl"], t["lastError"]) for t in targets]
    groups = requests.get(f"{api}/rules", timeout=5).json()["data"]["groups"]
    alerts = {r["name"] for g in groups for r in g["rules"] if r["type"] == "alerting"}
    assert {"ImgresizeResultLatencyHigh", "ImgresizeLaneLagGrowing", "ImgresizeRoleDown"} <= alerts
