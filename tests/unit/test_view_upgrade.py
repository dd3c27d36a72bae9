"""A status view file written before a column existed still opens, and gains the column."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from read_model.fold import requested_variants
from read_model.view import StatusView
from schemas import ObjectRef, ResizeRequested, VariantSpec

TASK = "0b8e6f4e-1f0a-4a55-9f49-0a3d5f7e2c11"


def test_old_view_file_gains_new_columns_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with StatusView(path) as view:
        view.apply([ResizeRequested(task_id=TASK, source=ObjectRef("b", "k"), width=10)])
    # As an earlier version left it: without the variant columns.
    db = sqlite3.connect(path)
    db.execute("ALTER TABLE tasks DROP COLUMN variants")
    db.execute("ALTER TABLE tasks DROP COLUMN variant_results")
    db.commit()
    db.close()

    with StatusView(path) as view:
        row = view.get(TASK)
        assert row is not None and row.width == 10 and row.variants is None
        other = "1c9f7a5f-2a1b-4b66-8a5a-1b4e6a8f3d22"
        view.apply([ResizeRequested(task_id=other, source=ObjectRef("b", "k"), variants=(VariantSpec("a", 5),))])
        stored = view.get(other)
        assert stored is not None and [v["name"] for v in requested_variants(stored)] == ["a"]


def test_the_api_threads_keep_small_page_caches_and_other_connections_the_default(tmp_path: Path) -> None:
    from producer_api.views import THREAD_CACHE_KIB, ViewConnections

    connections = ViewConnections(tmp_path / "view.db")
    assert connections.reader().cache_kib() == THREAD_CACHE_KIB
    assert connections.writer().cache_kib() == THREAD_CACHE_KIB
    with StatusView(tmp_path / "view.db") as projector_like:
        assert projector_like.cache_kib() == 2000  # SQLite's default, for the projector's batches
