"""The JSON body of a webhook POST, built from an outcome event. Pure."""

from __future__ import annotations

import json
from typing import Any

from schemas.events import Event, ResizeCompleted, ResizeFailed, StoredImage


def wants_webhook(event: Event) -> bool:
    """Only final outcomes are announced: a failure with another attempt to come is not one."""
    if isinstance(event, ResizeCompleted):
        return bool(event.callback_url)
    return isinstance(event, ResizeFailed) and not event.retriable and bool(event.callback_url)


def _image(image: StoredImage, url: str) -> dict[str, Any]:
    return {
        "url": url,
        "content_type": image.content_type,
        "width": image.width,
        "height": image.height,
        "size_bytes": image.size_bytes,
    }


def payload_of(event: ResizeCompleted | ResizeFailed, base_url: str = "") -> dict[str, Any]:
    """What the receiver learns: the same vocabulary as GET /api/v1/status/<id>, with result URLs."""
    task = event.task_id
    base = base_url.rstrip("/")
    body: dict[str, Any] = {
        "type": "resize.completed" if isinstance(event, ResizeCompleted) else "resize.failed",
        "event_id": event.event_id,
        "task_id": task,
        "occurred_at": event.occurred_at.isoformat().replace("+00:00", "Z"),
        "attempt": event.attempt,
        "status_url": f"{base}/api/v1/status/{task}",
    }
    if isinstance(event, ResizeCompleted):
        body["status"] = "SUCCESS"
        body["result"] = _image(event.result, f"{base}/api/v1/images/result/{task}")
        if event.variants:
            body["variants"] = [
                {"name": v.name, **_image(v.image, f"{base}/api/v1/images/result/{task}/{v.name}")}
                for v in event.variants
            ]
    else:
        body["status"] = "FAILURE"
        body["error"] = {"code": event.error_code, "message": event.error_message}
    return body


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
