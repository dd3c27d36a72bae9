"""Browsers on other origins: a page served from origin B submits, long-polls and downloads from the API on
origin A in headless Chromium; a page from an origin not allowed gets nothing it may read."""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from playwright.sync_api import sync_playwright

from producer_api.auth import new_key
from tests.e2e.test_web_page import chromium_path
from tests.pipeline import Pipeline, jpeg_bytes

pytestmark = pytest.mark.e2e

PAGE = b"<!doctype html><html><head><title>another origin</title></head><body>origin B</body></html>"

# Submit (multipart, with an API key and an Idempotency-Key: a preflight), long-poll the status, download.
CLIENT = """async ([api, key, encoded]) => {
  const bytes = Uint8Array.from(atob(encoded), c => c.charCodeAt(0));
  const form = new FormData();
  form.append("file", new Blob([bytes], {type: "image/jpeg"}), "p.jpg");
  form.append("width", "120");
  try {
    const headers = {"X-API-Key": key};
    const submitted = await fetch(api + "/api/v1/images/resize", {
      method: "POST", body: form, headers: {...headers, "Idempotency-Key": "cors-1"}});
    const accepted = await submitted.json();
    let status = {status: "PENDING"};
    for (let i = 0; i < 20 && !["SUCCESS", "FAILURE"].includes(status.status); i++) {
      status = await (await fetch(api + "/api/v1/status/" + accepted.task_id + "?wait=10", {headers})).json();
    }
    const result = await fetch(api + "/api/v1/images/result/" + accepted.task_id + "?wait=20", {headers});
    const image = new Uint8Array(await result.arrayBuffer());
    return {submit: submitted.status, location: submitted.headers.get("Location"), lane: submitted.headers.get("Lane"),
            status: status.status, result: result.status, etag: result.headers.get("ETag"),
            type: result.headers.get("Content-Type"), size: image.length, magic: Array.from(image.slice(0, 2))};
  } catch (e) {
    return {blocked: String(e)};
  }
}"""


@contextmanager
def origin_server() -> Iterator[str]:
    """A page on a loopback origin of its own."""

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the handler's own name
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(PAGE)))
            self.end_headers()
            self.wfile.write(PAGE)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_page_on_another_origin_submits_polls_and_downloads(pipeline_factory: Callable[..., Pipeline]) -> None:
    key, entry = new_key("spa")
    with origin_server() as allowed, origin_server() as stranger:
        pipeline = pipeline_factory(api_keys=entry, auth_required=True, cors_allowed_origins=allowed)
        encoded = base64.b64encode(jpeg_bytes(480, 320)).decode()
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=chromium_path(), headless=True, args=["--no-sandbox", "--disable-gpu"]
            )
            try:
                page = browser.new_page()
                page.goto(allowed)
                done = page.evaluate(CLIENT, [pipeline.base_url, key, encoded])
                page.goto(stranger)
                refused = page.evaluate(CLIENT, [pipeline.base_url, key, encoded])
            finally:
                browser.close()
    assert "blocked" not in done, done
    assert done["submit"] == 202 and done["location"].startswith("/api/v1/status/") and done["lane"] == "interactive"
    assert done["status"] == "SUCCESS" and done["result"] == 200
    assert done["type"] == "image/jpeg" and done["magic"] == [0xFF, 0xD8] and done["size"] > 100 and done["etag"]
    assert "Failed to fetch" in refused["blocked"], refused


def test_preflights_answer_only_what_the_api_has(pipeline_factory: Callable[..., Pipeline]) -> None:
    pipeline = pipeline_factory(workers=0, cors_allowed_origins="https://app.example.com")
    url = pipeline.url("/api/v1/images/resize")

    def preflight(origin: str, method: str) -> requests.Response:
        return requests.options(
            url,
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": method,
                "Access-Control-Request-Headers": "x-api-key, idempotency-key, content-type",
            },
            timeout=10,
        )

    allowed = preflight("https://app.example.com", "POST")
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert set(allowed.headers["Access-Control-Allow-Methods"].split(", ")) == {"GET", "HEAD", "POST", "DELETE"}
    assert allowed.headers["Access-Control-Allow-Headers"] == "content-type, idempotency-key, x-api-key"
    assert allowed.headers["Access-Control-Max-Age"] == "600"
    assert "Vary" in allowed.headers and "Origin" in allowed.headers["Vary"]
    assert "Access-Control-Allow-Credentials" not in allowed.headers

    unknown_method = preflight("https://app.example.com", "PATCH")
    assert "Access-Control-Allow-Methods" not in unknown_method.headers
    assert "Access-Control-Allow-Headers" not in unknown_method.headers

    for stranger in (
        preflight("https://evil.example", "POST"),
        requests.get(
            pipeline.url("/api/v1/status/00000000-0000-4000-8000-000000000000"),
            headers={"Origin": "https://evil.example"},
            timeout=10,
        ),
    ):
        assert not any(name.lower().startswith("access-control-") for name in stranger.headers), stranger.headers

    read = requests.get(pipeline.url("/openapi.json"), headers={"Origin": "https://app.example.com"}, timeout=10)
    assert read.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    exposed = set(read.headers["Access-Control-Expose-Headers"].split(", "))
    assert {"Location", "ETag", "Retry-After", "Task-Id"} <= exposed


def test_cors_can_be_turned_off(pipeline_factory: Callable[..., Pipeline]) -> None:
    pipeline = pipeline_factory(workers=0, cors_allowed_origins="")
    answer = requests.get(pipeline.url("/openapi.json"), headers={"Origin": "https://app.example.com"}, timeout=10)
    assert "Access-Control-Allow-Origin" not in answer.headers
