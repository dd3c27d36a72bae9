"""Erasing one task's objects from the store: its results, every variant, and its original.

Used by DELETE (at once) and by the janitor (again, after the deletion settles):
idempotent, so running it twice, or after a crash half-way, is safe.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

from common.errors import ObjectNotFound, StoreUnavailable
from common.settings import Settings
from common.sources import readable_source_problem
from common.store import ObjectStore
from schemas.events import ObjectRef

log = logging.getLogger(__name__)


def results_prefix(task_id: str) -> str:
    """The prefix of every result of the task: `results/<id>` and `results/<id>/<variant>` (ids are UUIDs)."""
    return f"results/{task_id}"


@dataclass(frozen=True)
class Erased:
    objects: int
    bytes: int


def erase_task(store: ObjectStore, settings: Settings, task_id: str, source: ObjectRef | None) -> Erased:
    """Delete the task's original (if it is one the task may name) and every result object; listed, not assumed.

    The original goes first: a worker that finishes a resize checks that its
    original is still there after storing its result, so once the original is
    gone no new result stays behind (resize_worker.attempt).
    """
    erased = Erased(0, 0)
    if source is not None:
        problem = readable_source_problem(task_id, source.bucket, source.key, settings)
        if problem is None:
            owner = store if source.bucket == store.bucket else ObjectStore(settings, bucket=source.bucket)
            # Already gone: deleting again is no error, and counts nothing.
            with contextlib.suppress(ObjectNotFound):
                erased = Erased(1, owner.stat(source.key).size)
            owner.delete(source.key)
        else:
            log.warning("original not erased: %s", problem, extra={"task_id": task_id})
    results = list(store.listed(results_prefix(task_id)))
    for start in range(0, len(results), 1000):
        batch = results[start : start + 1000]
        refused = store.delete_many([o.key for o in batch])
        if refused:
            raise StoreUnavailable(f"the store refused to delete {len(refused)} objects of task {task_id}")
    return Erased(erased.objects + len(results), erased.bytes + sum(o.size for o in results))
