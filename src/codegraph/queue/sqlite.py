"""The embedded queue: the jobs tables in the index store's SQLite file (WAL).

SQLite serialises writers, so a claim is simply one `UPDATE … WHERE id = (SELECT … LIMIT 1)
RETURNING` inside `BEGIN IMMEDIATE`: two workers can never take the same job. Waiting for work
is polling (there is no NOTIFY); workers on one machine share the file.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from codegraph.errors import StoreError
from codegraph.queue.sql import Exec, SqlJobQueue
from codegraph.store import connections
from codegraph.store.base import Owned

# Columns an index store of schema 1 created `jobs`/`job_events` without.
_UPGRADES = {
    "jobs": {
        "rev": "TEXT", "lease_token": "INTEGER NOT NULL DEFAULT 0", "lease_expires_at": "REAL",
        "heartbeat_at": "REAL", "cancel_requested": "INTEGER NOT NULL DEFAULT 0",
        "errors": "TEXT NOT NULL DEFAULT '[]'", "needs_operator": "INTEGER NOT NULL DEFAULT 0",
        "options": "TEXT",
    },
    "job_events": {"attempt": "INTEGER NOT NULL DEFAULT 0", "worker_id": "TEXT"},
}

_CLAIM = (
    "UPDATE jobs SET state = 'running', attempt = attempt + 1, lease_token = lease_token + 1,"
    " worker_id = :worker, started_at = {now}, lease_expires_at = {now} + :lease, heartbeat_at = {now},"
    " next_retry_at = NULL, current_stage = NULL"
    " WHERE state = 'queued' AND id = (SELECT id FROM jobs WHERE state = 'queued'"
    " AND (next_retry_at IS NULL OR next_retry_at <= {now}) ORDER BY priority DESC, id LIMIT 1)"
)


class SqliteJobQueue(SqlJobQueue):
    NOW = ":now"
    APPEND_ERROR = "json_insert(errors, '$[#]', json(:err))"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.url = str(path)
        self._local = threading.local()
        self._checkpointer = connections.checkpointer_for(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._create_schema(self._conn())
        except OSError as exc:
            raise StoreError(f"cannot create {path.parent}: {exc.strerror or exc}") from exc
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{path} is not a usable codegraph store: {exc}") from exc

    def _create_schema(self, conn: sqlite3.Connection) -> None:
        schema = resources.files("codegraph.queue").joinpath("sqlite_schema.sql").read_text()
        conn.execute("BEGIN IMMEDIATE")  # many workers may open a fresh file at once
        try:
            for table, columns in _UPGRADES.items():
                have = {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
                if have:
                    for name, decl in columns.items():
                        if name not in have:
                            conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {decl}")
            for statement in re.sub(r"--[^\n]*", "", schema).split(";"):
                if statement.strip():
                    conn.execute(statement)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _conn(self) -> sqlite3.Connection:
        owned: Owned[sqlite3.Connection] | None = getattr(self._local, "conn", None)
        if owned is None:
            owned = self._local.conn = Owned(connections.connect(self.path))
        return owned.conn

    @contextmanager
    def _tx(self, write: bool = True) -> Iterator[Exec]:
        conn = self._conn()

        def x(sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
            cursor = conn.execute(sql, params)
            return list(cursor.fetchall()) if cursor.description else []

        if not write:  # a single autocommitted read sees one consistent WAL snapshot
            yield x
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield x
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        self._checkpointer.wrote()

    def _claim_sql(self) -> str:
        return _CLAIM

    def _is_unique_violation(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.IntegrityError)

    def wait_for_work(self, timeout: float) -> None:
        if timeout > 0:
            time.sleep(timeout)

    def close(self) -> None:
        self._local.conn = None  # its Owned closes it
