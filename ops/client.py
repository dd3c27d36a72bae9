"""The HTTP client side of `imgresize`: submit files in a batch, follow them, fetch results."""

from __future__ import annotations

import mimetypes
import re
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import requests

TERMINAL = {"SUCCESS", "FAILURE"}


@dataclass
class Outcome:
    path: Path
    task_id: str | None = None
    status: str = "NOT SENT"
    detail: str = ""
    saved: list[Path] = field(default_factory=list)

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

    def delete(self, task_id: str) -> requests.Response:
        return self._session.delete(f"{self.url}/api/v1/images/{task_id}", timeout=self.timeout)

    def get(self, path: str) -> requests.Response:
        """A path the service handed out, such as a variant's result URL."""
        return self._session.get(f"{self.url}{path}", timeout=self.timeout)

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
    """`400x300`, `400x` or `x300` -> the form's width and height; several, comma-separated -> `sizes`."""
    tokens = [t.strip().lower() for t in size.split(",")]
    matches = [re.fullmatch(r"([0-9]*)x([0-9]*)", t) for t in tokens]
    for token, match in zip(tokens, matches, strict=True):
        if match is None or not any(match.groups()):
            raise ValueError(f"size {token!r} is not WIDTHxHEIGHT (either may be left out: 400x, x300)")
    if len(tokens) > 1:
        return {"sizes": ",".join(tokens)}
    first = matches[0]
    assert first is not None
    return {k: v for k, v in zip(("width", "height"), first.groups(), strict=True) if v}


def _extension(content_type: str) -> str:
    return {"image/jpeg": ".jpg"}.get(content_type) or mimetypes.guess_extension(content_type) or ".bin"


def _outputs(status: dict[str, object]) -> list[dict[str, object]]:
    """A finished task's outputs: its variants, or its one result."""
    variants = status.get("variants")
    if isinstance(variants, list) and variants:
        return [v for v in variants if isinstance(v, dict)]
    result = status.get("result")
    return [result] if isinstance(result, dict) else []


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
            outputs = _outputs(final)
            outcome.detail = ", ".join(f"{o.get('width')}x{o.get('height')}" for o in outputs)
            if out_dir is not None:
                for output in outputs:
                    image = api.get(str(output["url"]))
                    image.raise_for_status()
                    suffix = f"-{output['name']}" if output.get("name") else ""
                    target = out_dir / (path.stem + suffix + _extension(image.headers.get("Content-Type", "")))
                    target.write_bytes(image.content)
                    outcome.saved.append(target)
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
