"""The web page at `/` in a real headless Chromium: choose and drop images, watch jobs, preview, download."""

from __future__ import annotations

import base64
import io
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, expect, sync_playwright

from producer_api.auth import hash_key
from tests.conftest import ROOT
from tests.pipeline import Pipeline, jpeg_bytes

pytestmark = pytest.mark.e2e
ARTIFACTS = ROOT / "test-artifacts"
# Debian's package; another build can be named with CHROMIUM.
CHROMIUM_CANDIDATES = ("/usr/lib/chromium/chromium", "/usr/bin/chromium", "/usr/bin/chromium-browser")


def _png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (30, 120, 200)).save(out, "PNG")
    return out.getvalue()


def chromium_path() -> str:
    given = os.environ.get("CHROMIUM")
    found = given or next((p for p in CHROMIUM_CANDIDATES if os.access(p, os.X_OK)), None) or shutil.which("chromium")
    if not found:
        pytest.fail("no Chromium: `make test` installs Debian's chromium package (or set CHROMIUM=/path)")
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium_path(),
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking"],
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1100, "height": 900}, accept_downloads=True)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    # Script errors fail the test; the browser's own note about a 4xx answer is expected.
    opened.on(
        "console",
        lambda m: errors.append(m.text) if m.type == "error" and "Failed to load resource" not in m.text else None,
    )
    yield opened
    context.close()
    assert errors == [], errors


def test_choose_and_drop_images_then_preview_and_download(pipeline: Pipeline, page: Page, tmp_path: Path) -> None:
    photo = tmp_path / "holiday photo.jpg"
    photo.write_bytes(jpeg_bytes(1200, 800))
    page.goto(pipeline.url("/"))
    expect(page.locator("body[data-ready=true]")).to_be_visible()
    page.fill("#width", "300")
    page.fill("#height", "200")
    page.select_option("#mode", "fill")
    page.select_option("#format", "webp")
    page.select_option("#gravity", "smart")
    page.select_option("#quality", "auto")
    # Gravities the page does not name are filled in from the service's OpenAPI document.
    assert "southwest" in page.locator("#gravity option").evaluate_all("options => options.map(o => o.value)")

    # Chosen with the file picker.
    page.set_input_files("#files", str(photo))
    chosen = page.locator(".job").first
    expect(chosen.locator(".state")).to_have_text("SUCCESS", timeout=60_000)
    preview = chosen.locator("img.preview")
    expect(preview).to_be_visible()
    page.wait_for_function("() => document.querySelector('img.preview').complete")
    natural = preview.evaluate("img => [img.naturalWidth, img.naturalHeight]")
    assert natural == [300, 200]
    task_id = chosen.get_attribute("data-task-id")
    status = pipeline.status(str(task_id)).json()
    assert status["result"]["content_type"] == "image/webp"
    # The page's gravity and quality choices reached the worker.
    assert status["result"]["score"] is not None and 1 <= status["result"]["quality"] <= 100
    assert [s["gravity"] for s in status["subjects"]] == ["smart"]

    with page.expect_download() as download_info:
        chosen.locator("a.download").click()
    download = download_info.value
    assert download.suggested_filename == "holiday photo.webp"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    assert saved.read_bytes()[8:12] == b"WEBP"

    # Dropped onto the page, several sizes at once, plus a file that is not an image.
    page.fill("#sizes", "80x80,160x")
    encoded = base64.b64encode(jpeg_bytes(640, 480)).decode()
    page.evaluate(
        """([encoded]) => {
            const bytes = Uint8Array.from(atob(encoded), c => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], "dropped.jpg", {type: "image/jpeg"}));
            transfer.items.add(new File(["not an image at all"], "notes.png", {type: "image/png"}));
            const drop = new DragEvent("drop", {dataTransfer: transfer, bubbles: true});
            document.getElementById("drop").dispatchEvent(drop);
        }""",
        [encoded],
    )
    dropped = page.locator(".job", has_text="dropped.jpg")
    expect(dropped.locator(".state")).to_have_text("SUCCESS", timeout=60_000)
    expect(dropped.locator("img.preview")).to_have_count(2)
    page.wait_for_function("() => [...document.querySelectorAll('img.preview')].every(i => i.complete)")
    sizes = dropped.locator("img.preview").evaluate_all("imgs => imgs.map(i => [i.naturalWidth, i.naturalHeight])")
    assert sizes == [[80, 80], [160, 120]]
    refused = page.locator(".job", has_text="notes.png")
    expect(refused.locator(".state")).to_have_text("ERROR")
    expect(refused.locator(".message")).to_contain_text("422 not_an_image")

    # "Best my browser takes": Chromium shows AVIF, so that is what comes back.
    page.fill("#sizes", "")
    page.select_option("#format", "auto")
    page.set_input_files("#files", files=[{"name": "auto.png", "mimeType": "image/png", "buffer": _png(300, 300)}])
    automatic = page.locator(".job", has_text="auto.png")
    expect(automatic.locator(".state")).to_have_text("SUCCESS", timeout=60_000)
    expect(automatic.locator("a.download")).to_have_attribute("download", "auto.avif")

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "web-page.png"), full_page=True)
    assert (ARTIFACTS / "web-page.png").stat().st_size > 10_000


def test_page_asks_for_the_key_when_the_service_wants_one(
    pipeline_factory: Callable[..., Pipeline], page: Page
) -> None:
    key = "web-page-test-key"
    pipeline = pipeline_factory(auth_required=True, api_keys=f"web:{hash_key(key)}", max_dimension=4321)
    page.goto(pipeline.url("/"))
    expect(page.locator("body[data-ready=true]")).to_be_visible()
    # The page's size bounds are the service's setting, read from its public OpenAPI document.
    assert page.get_attribute("#width", "max") == page.get_attribute("#height", "max") == "4321"
    page.set_input_files("#files", files=[{"name": "a.jpg", "mimeType": "image/jpeg", "buffer": jpeg_bytes(200, 100)}])
    expect(page.locator(".job .message")).to_contain_text("401")
    page.fill("#api-key", key)
    page.dispatch_event("#api-key", "change")
    page.set_input_files("#files", files=[{"name": "b.jpg", "mimeType": "image/jpeg", "buffer": jpeg_bytes(200, 100)}])
    second = page.locator(".job", has_text="b.jpg")
    expect(second.locator(".state")).to_have_text("SUCCESS", timeout=60_000)
    expect(second.locator("img.preview")).to_be_visible()
