"""The SQLite read model: task rows plus the Kafka offsets they reflect, written together."""

from __future__ import annotations

import dataclasses
import sqlite3
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from common.retention import Retention
from read_model.errors import ViewError
from read_model.fold import TaskRow, apply
from schemas.events import Event

_FIELDS = [f.name for f in dataclasses.fields(TaskRow)]
_DATETIMES = {f.name for f in dataclasses.fields(TaskRow) if "datetime" in str(f.type)}
_DATETIME_INDEXES = [i for i, name in enumerate(_FIELDS) if name in _DATETIMES]
_INTS = {f.name for f in dataclasses.fields(TaskRow) if str(f.type).startswith("int")}


def _column(name: str) -> str:
    return f"{name} {'INTEGER' if name in _INTS else 'TEXT'}"


_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS tasks (
    task_id TEXT PRIMARY KEY,
    {", ".join(_column(name) for name in _FIELDS[1:])}
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS applied_offsets (
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    next_offset INTEGER NOT NULL,
    PRIMARY KEY (topic, partition)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
"""

TopicPartition = tuple[str, int]

# The tasks still waiting or running (the partial index's condition, and its queries', word for word).
_OPEN = "state NOT IN ('SUCCESS', 'FAILURE', 'DELETED')"


def _to_sql(row: TaskRow) -> list[object]:
    """The row's values in column order, times as ISO-8601 text."""
    values: list[object] = [getattr(row, name) for name in _FIELDS]
    for i in _DATETIME_INDEXES:
        if values[i] is not None:
            values[i] = values[i].isoformat()  # type: ignore[attr-defined]
    return values


# Columns named, not `*`: a view upgraded by ALTER TABLE has them in another order.
_SELECT = f"SELECT {', '.join(_FIELDS)} FROM tasks"


def _row(record: sqlite3.Row) -> TaskRow:
    """A row read with _SELECT, by position: on every status read, so no per-field lookups."""
    values = list(record)
    for i in _DATETIME_INDEXES:
        if values[i] is not None:
            values[i] = datetime.fromisoformat(values[i])
    return TaskRow(*values)


class StatusView:
    """One SQLite file in WAL mode.

    The writer (the projector, and an API host recording its own requests)
    creates the schema. A reader (`read_only=True`) runs no DDL and takes no
    lock: WAL readers never wait on a writer's batch, so status reads do not
    queue behind the projector. Readers are cheap to keep, one per thread.
    """

    def __init__(self, path: Path, read_only: bool = False, cache_kib: int | None = None) -> None:
        """`cache_kib`: this connection's page cache (SQLite's default is 2,000 KiB)."""
        self.path = path
        try:
            if read_only:
                # The file must exist: readers do not create the view (the writer does, at start-up).
                self._db = sqlite3.connect(
                    f"file:{path}?mode=ro", uri=True, timeout=10.0, isolation_level=None, check_same_thread=False
                )
                self._db.row_factory = sqlite3.Row
                self._db.execute("PRAGMA query_only=ON")
                self._cache(cache_kib)
                return
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, timeout=10.0, isolation_level=None, check_same_thread=False)
            self._db.row_factory = sqlite3.Row
            self._cache(cache_kib)
            self._prepare(time.monotonic() + 10.0)
        except sqlite3.Error as e:
            raise ViewError(f"cannot open status view {path}: {e}") from e

    def _cache(self, kib: int | None) -> None:
        if kib is not None:
            self._db.execute(f"PRAGMA cache_size=-{int(kib)}")

    def cache_kib(self) -> int:
        """This connection's page cache, in KiB."""
        pages = int(self._db.execute("PRAGMA cache_size").fetchone()[0])
        if pages < 0:
            return -pages
        return pages * int(self._db.execute("PRAGMA page_size").fetchone()[0]) // 1024

    def _prepare(self, deadline: float) -> None:
        """WAL mode and the schema, made or upgraded once by whichever writer comes first.

        Two processes opening a new file at once (an API host and its projector)
        can meet in the switch to WAL, which answers "locked" at once instead of
        waiting like other statements: try again until the deadline.
        """
        while True:
            try:
                if self._db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
                if self._schema_missing():
                    self._db.executescript(_SCHEMA)
                self._add_new_columns()
                # Open tasks per key and lane, for the backlog bound: finished and deleted tasks leave the index.
                self._db.execute("DROP INDEX IF EXISTS tasks_open_by_owner")
                self._db.execute(
                    f"CREATE INDEX IF NOT EXISTS tasks_open_by_owner_v2 ON tasks (owner, lane) WHERE {_OPEN}"
                )
                if self._db.execute("SELECT 1 FROM meta WHERE key = 'generation'").fetchone() is None:
                    self._db.execute(
                        "INSERT OR IGNORE INTO meta (key, value) VALUES ('generation', ?)", (str(uuid.uuid4()),)
                    )
                return
            except (sqlite3.OperationalError, ViewError) as e:
                if "locked" not in str(e) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _schema_missing(self) -> bool:
        names = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        return not {"tasks", "applied_offsets", "meta"} <= names

    def _add_new_columns(self) -> None:
        """A view file from an earlier version gains the columns added since (empty until refolded)."""
        present = {r["name"] for r in self._db.execute("PRAGMA table_info(tasks)")}
        missing = [name for name in _FIELDS if name not in present]
        if not missing:
            return
        with self._transaction() as db:
            for name in missing:
                db.execute(f"ALTER TABLE tasks ADD COLUMN {_column(name)}")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> StatusView:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except sqlite3.Error as e:
            raise ViewError(f"status view write failed: {e}") from e

    def get(self, task_id: str) -> TaskRow | None:
        try:
            record = self._db.execute(f"{_SELECT} WHERE task_id = ?", (task_id,)).fetchone()
        except sqlite3.Error as e:
            raise ViewError(f"status view read failed: {e}") from e
        return _row(record) if record else None

    def get_many(self, task_ids: set[str]) -> dict[str, TaskRow | None]:
        """The rows of many tasks in a few queries (SQLite allows 999 parameters a statement)."""
        return {record["task_id"]: _row(record) for record in self._where_task_in(_SELECT, task_ids)}

    def states(self, task_ids: set[str]) -> dict[str, str]:
        """Just the states of many tasks: what a watcher compares before it reads a whole row."""
        return {task_id: state for task_id, state in self._where_task_in("SELECT task_id, state FROM tasks", task_ids)}

    def _where_task_in(self, select: str, task_ids: set[str]) -> list[sqlite3.Row]:
        ids = list(task_ids)
        records: list[sqlite3.Row] = []
        try:
            for start in range(0, len(ids), 900):
                chunk = ids[start : start + 900]
                records += self._db.execute(f"{select} WHERE task_id IN ({', '.join('?' for _ in chunk)})", chunk)
        except sqlite3.Error as e:
            raise ViewError(f"status view read failed: {e}") from e
        return records

    def data_version(self) -> int:
        """Moves whenever another connection commits to the view: cheap to ask, for watchers."""
        return int(self._db.execute("PRAGMA data_version").fetchone()[0])

    def generation(self) -> str:
        """Changes when the whole view is replaced (rebuild), so a projector knows to re-seek."""
        return str(self._db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])

    def offsets(self) -> dict[TopicPartition, int]:
        """The next offset to read per (topic, partition): where a projector resumes."""
        try:
            rows = self._db.execute("SELECT topic, partition, next_offset FROM applied_offsets").fetchall()
        except sqlite3.Error as e:
            raise ViewError(f"status view read failed: {e}") from e
        return {(r["topic"], r["partition"]): r["next_offset"] for r in rows}

    def apply(
        self,
        events: Iterable[Event],
        offsets: dict[TopicPartition, int] | None = None,
        generation: str | None = None,
        lanes: Sequence[str | None] | None = None,
    ) -> bool:
        """Fold events into their rows and record `offsets`, in one transaction.

        `lanes`: per event, the lane of the topic it was read from (None: not a lane's).
        With `generation`, nothing is written (and False returned) if the view
        was replaced since the caller read its offsets.
        """
        events = list(events)
        read_from = list(lanes) if lanes is not None else [None] * len(events)
        with self._transaction() as db:
            if generation is not None and self.generation() != generation:
                return False
            rows: dict[str, TaskRow | None] = self.get_many({event.task_id for event in events})
            for event, lane in zip(events, read_from, strict=True):
                rows[event.task_id] = apply(rows.get(event.task_id), event, lane)
            placeholders = ", ".join("?" for _ in _FIELDS)
            db.executemany(
                f"INSERT OR REPLACE INTO tasks ({', '.join(_FIELDS)}) VALUES ({placeholders})",
                [_to_sql(row) for row in rows.values() if row is not None],
            )
            db.executemany(
                "INSERT INTO applied_offsets (topic, partition, next_offset) VALUES (?, ?, ?) "
                "ON CONFLICT (topic, partition) DO UPDATE SET next_offset = max(next_offset, excluded.next_offset)",
                [(topic, partition, offset) for (topic, partition), offset in (offsets or {}).items()],
            )
        return True

    def task_table_dump(self) -> str:
        """The task table as SQL text, ordered by key: equal views give equal dumps."""
        lines = []
        for record in self._db.execute(f"SELECT {', '.join(_FIELDS)} FROM tasks ORDER BY task_id"):
            lines.append(repr(tuple(record)))
        return "\n".join(lines)

    def replace_with(self, other: Path) -> None:
        """Copy another view file over this one atomically (SQLite backup), with a new generation."""
        source = sqlite3.connect(other)
        try:
            source.backup(self._db)
        finally:
            source.close()
        with self._transaction() as db:
            db.execute("UPDATE meta SET value = ? WHERE key = 'generation'", (str(uuid.uuid4()),))

    def open_tasks(self, owner: str | None, lanes: Sequence[str], bound: int) -> int:
        """How many of `owner`'s tasks in `lanes` are not finished, counted up to `bound` (and no further)."""
        if not lanes:
            return 0
        marks = ", ".join("?" for _ in lanes)
        query = f"SELECT count(*) FROM (SELECT 1 FROM tasks WHERE owner IS ? AND lane IN ({marks}) AND {_OPEN} LIMIT ?)"
        try:
            return int(self._db.execute(query, (owner, *lanes, bound)).fetchone()[0])
        except sqlite3.Error as e:
            raise ViewError(f"status view read failed: {e}") from e

    def forget(self, now: datetime, retention: Retention, batch: int = 5000) -> int:
        """Drop the rows of tasks past their status TTL (read_model.lifecycle: FORGOTTEN), a batch per
        transaction so status reads and the projector's writes go on between. Returns how many."""
        deleted_before = (now - retention.status).isoformat()
        live_before = None if retention.result is None else (now - retention.result - retention.status).isoformat()
        condition = "(state = 'DELETED' AND lifecycle_at <= ?)"
        values: list[object] = [deleted_before]
        if live_before is not None:
            condition += " OR (state != 'DELETED' AND coalesce(finished_at, created_at, lifecycle_at) <= ?)"
            values.append(live_before)
        forgotten = 0
        while True:
            with self._transaction() as db:
                cursor = db.execute(
                    f"DELETE FROM tasks WHERE task_id IN (SELECT task_id FROM tasks WHERE {condition} LIMIT ?)",
                    (*values, batch),
                )
                removed = cursor.rowcount
            forgotten += removed
            if removed < batch:
                return forgotten

    def count(self, state: str | None = None) -> int:
        if state is None:
            return int(self._db.execute("SELECT count(*) FROM tasks").fetchone()[0])
        return int(self._db.execute("SELECT count(*) FROM tasks WHERE state = ?", (state,)).fetchone()[0])
