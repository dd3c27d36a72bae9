"""Which originals a task may name: read by the workers, erased with the task. Pure."""

from __future__ import annotations

from common.settings import Settings


def readable_source_problem(task_id: str, bucket: str, key: str, settings: Settings) -> str | None:
    """Why a task's original may not be read (or erased with it), or None if it may.

    Kafka is a trust boundary too: an event produced straight to the topic must
    not make a worker read a private bucket or another task's upload, nor a
    deletion erase them.
    """
    if ".." in key.split("/"):
        return "the source key may not contain '..'"
    if bucket == settings.s3_bucket and key.startswith("originals/"):
        # The API's uploads: each request may read its own and nobody else's.
        return None if key == f"originals/{task_id}" else "originals/ holds the API's uploads, one per task"
    entries = settings.source_entries
    for entry in entries:
        allowed_bucket, _, prefix = entry.partition("/")
        if bucket == allowed_bucket and key.startswith(prefix):
            return None
    return f"{bucket}/{key} is outside the allowed sources ({', '.join(entries)})"
