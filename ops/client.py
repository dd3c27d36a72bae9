"""The HTTP client side of `imgresize`: submit files in a batch, follow them, fetch results."""

from __future__ import annotations

import mimetypes
import re
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import requests

TERMINAL = {"SUCCESS", "FAILURE"}


@dataclass
class Outcome:
    path: Path
    task_id: str | None = None
    status: str = "NOT SENT"
    detail: str = ""
    saved: Path | None = None

    @property
    def ok(self) -> bool:
        return self.status in {"SUCCESS", "accepted"}


class Api:
    """A thread-safe client of one service (one connection pool per thread)."""

    def __init__(self, url: str, api_key: str | None = None, timeout: float = 60.0) -> None:
        self.url = url.rstrip("/")
        self.headers = {"X-API-Key": api_key} if api_key else {}
        self.timeout = timeout
        self._local = threading.local()

    @property
    def _session(self) -> requests.Session:
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
            self._local.session.headers.update(self.headers)
        return self._local.session  # type: ignore[no-any-return]

    def submit(self, path: Path, fields: dict[str, str]) -> requests.Response:
        with path.open("rb") as file:
            return self._session.post(
                f"{self.url}/api/v1/images/resize", files={"file": (path.name, file)}, data=fields, timeout=self.timeout
            )

    def status(self, task_id: str, wait: float = 0) -> requests.Response:
        query = f"?wait={wait:g}" if wait else ""
        return self._session.get(f"{self.url}/api/v1/status/{task_id}{query}", timeout=self.timeout + wait)

    def result(self, task_id: str) -> requests.Response:
        return self._session.get(f"{self.url}/api/v1/images/result/{task_id}", timeout=self.timeout)

    def wait_terminal(self, task_id: str, patience: float = 600) -> dict[str, object]:
        body: dict[str, object] = {}
        for _ in range(int(patience / 10) + 1):
            response = self.status(task_id, wait=10)
            response.raise_for_status()
            body = response.json()
            if body["status"] in TERMINAL:
                break
        return body


def collect(paths: Iterable[Path]) -> list[Path]:
    """Files named, and the files under directories named, in a stable order."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.is_file()))
        else:
            found.append(path)
    return found


def parse_size(size: str) -> dict[str, str]:
    """`400x300`, `400x` or `x300` -> the form's width and height."""
    match = re.fullmatch(r"([0-9]*)x([0-9]*)", size.strip().lower())
    if match is None or not any(match.groups()):
        raise ValueError(f"size {size!r} is not WIDTHxHEIGHT (either may be left out: 400x, x300)")
    return {k: v for k, v in zip(("width", "height"), match.groups(), strict=True) if v}


def _extension(content_type: str) -> str:
    return {"image/jpeg": ".jpg"}.get(content_type) or mimetypes.guess_extension(content_type) or ".bin"


def process(
    api: Api,
    path: Path,
    fields: dict[str, str],
    wait: bool,
    out_dir: Path | None,
) -> Outcome:
    """One file: submit, and when asked, wait for it and save its result."""
    outcome = Outcome(path)
    try:
        response = api.submit(path, fields)
        if response.status_code != 202:
            error = response.json() if response.headers.get("Content-Type") == "application/json" else {}
            outcome.status, outcome.detail = f"HTTP {response.status_code}", str(error.get("code", response.text[:80]))
            return outcome
        outcome.task_id, outcome.status = response.json()["task_id"], "accepted"
        if not wait and out_dir is None:
            return outcome
        final = api.wait_terminal(outcome.task_id)
        outcome.status = str(final.get("status"))
        if outcome.status == "FAILURE":
            error = final.get("error") or {}
            outcome.detail = str(error.get("code", "")) if isinstance(error, dict) else ""
        elif outcome.status == "SUCCESS":
            result = final.get("result") or {}
            if isinstance(result, dict):
                outcome.detail = f"{result.get('width')}x{result.get('height')}"
            if out_dir is not None:
                image = api.result(outcome.task_id)
                image.raise_for_status()
                target = out_dir / (path.stem + _extension(image.headers.get("Content-Type", "")))
                target.write_bytes(image.content)
                outcome.saved = target
    except (requests.RequestException, ValueError, OSError) as e:
        outcome.detail = f"{type(e).__name__}: {e}"[:200]
    return outcome


def run_batch(
    api: Api,
    files: list[Path],
    fields: dict[str, str],
    wait: bool,
    out_dir: Path | None,
    concurrency: int,
    on_done: Callable[[Outcome], None],
) -> list[Outcome]:
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)

    def one(path: Path) -> Outcome:
        outcome = process(api, path, fields, wait, out_dir)
        on_done(outcome)
        return outcome

    with ThreadPoolExecutor(max(1, concurrency)) as pool:
        return list(pool.map(one, files))
