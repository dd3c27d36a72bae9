"""The quick start, walked as written: its shell commands against a stack started as `make up` starts it,
and its web page step in a real headless Chromium."""

from __future__ import annotations

import io
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import expect, sync_playwright

from bench import corpus
from bench.e2e_bench import Stack, start_stack
from tests.conftest import ROOT
from tests.e2e.test_web_page import chromium_path

pytestmark = pytest.mark.e2e

QUICKSTART = ROOT / "docs" / "quickstart.md"
DOCUMENTED_URL = "http://127.0.0.1:8080"


def shell_blocks(markdown: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", markdown, flags=re.DOTALL)


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    started = start_stack(workers=1, api_processes=1)
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
