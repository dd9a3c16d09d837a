"""The PostgreSQL queue (psycopg 3): many workers on many machines against one database.

A claim is one statement: the due job with the highest priority is picked and locked with
`FOR UPDATE SKIP LOCKED` (concurrent claimers skip rows another transaction holds instead of
waiting for them) and updated in the same statement. Every write a worker makes is one
autocommitted statement, so a worker paused mid-job (SIGSTOP, a long GC) never holds a row lock
that would block the claims and rescues of others. Idle workers wait on LISTEN/NOTIFY
(`codegraph_jobs`, sent when a job becomes claimable) with polling as the fallback for jobs that
become due by time (a retry's backoff) and for lost notifications.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from typing import Any

import psycopg
from psycopg import errors as pg_errors

from codegraph.errors import StoreError
from codegraph.jobs import JOB_COLUMNS, Job
from codegraph.queue.sql import COLS, Exec, SqlJobQueue, job_of

CHANNEL = "codegraph_jobs"
# One key for "the queue's DDL": concurrent first opens serialise on it instead of racing.
_SCHEMA_LOCK = 0x636F64656772  # "codegr"
_schema_ready: set[str] = set()
_schema_lock = threading.Lock()

_CLAIM = (
    "UPDATE jobs SET state = 'running', attempt = jobs.attempt + 1, lease_token = jobs.lease_token + 1,"
    " worker_id = :worker, started_at = {now}, lease_expires_at = {now} + :lease, heartbeat_at = {now},"
    " next_retry_at = NULL, current_stage = NULL"
    " FROM (SELECT id FROM jobs WHERE state = 'queued' AND (next_retry_at IS NULL OR next_retry_at <= {now})"
    " ORDER BY priority DESC, id LIMIT 1 FOR UPDATE SKIP LOCKED) AS due"
    " WHERE jobs.id = due.id"
)
_PARAM = re.compile(r"(?<![:\w]):(\w+)")


class PostgresJobQueue(SqlJobQueue):
    NOW = "extract(epoch from clock_timestamp())::double precision"
    APPEND_ERROR = "(errors::jsonb || jsonb_build_array(:err::jsonb))::text"

    def __init__(self, url: str) -> None:
        self.url = url
        self._idle: list[psycopg.Connection[Any]] = []
        self._pool_lock = threading.Lock()
        self._listener: psycopg.Connection[Any] | None = None
        self._sql_cache: dict[str, str] = {}
        with _schema_lock:
            if url not in _schema_ready:
                self._create_schema()
                _schema_ready.add(url)

    def _create_schema(self) -> None:
        ddl = resources.files("codegraph.queue").joinpath("postgres_schema.sql").read_text()
        try:
            conn = self._conn()
        except psycopg.OperationalError as exc:  # at open: a user error (bad URL, server down)
            raise StoreError(f"cannot connect to {self._safe_url()}: {exc}".strip()) from exc
        try:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                conn.execute(ddl.encode())  # no parameters: sent as one multi-statement script
        except psycopg.Error as exc:
            raise StoreError(f"cannot create the job tables in {self._safe_url()}: {exc}") from exc
        finally:
            self._put_back(conn)

    def _safe_url(self) -> str:
        return re.sub(r"//[^@/]*@", "//", self.url)  # never print a password

    def _connect(self) -> psycopg.Connection[Any]:
        # Later failures stay psycopg.OperationalError: transient, retried by whoever called.
        return psycopg.connect(self.url, autocommit=True, connect_timeout=10)

    def _conn(self) -> psycopg.Connection[Any]:
        """An idle pooled connection, or a new one. Worker threads are short-lived (one per job),
        so a connection per thread would pay a connect for every job."""
        with self._pool_lock:
            while self._idle:
                conn = self._idle.pop()
                if not conn.closed:
                    return conn
        return self._connect()

    def _put_back(self, conn: psycopg.Connection[Any]) -> None:
        with self._pool_lock:
            if not conn.closed and conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
                self._idle.append(conn)
                return
        conn.close()

    def _sql(self, text: str) -> str:
        cached = self._sql_cache.get(text)
        if cached is None:
            cached = _PARAM.sub(r"%(\1)s", super()._sql(text))
            self._sql_cache[text] = cached
        return cached

    @contextmanager
    def _tx(self, write: bool = True, block: bool = True) -> Iterator[Exec]:
        conn = self._conn()

        def x(sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
            cursor = conn.execute(sql.encode(), params)  # type: ignore[call-overload]
            return list(cursor.fetchall()) if cursor.description else []

        try:
            if block and write:  # reads are single statements: no BEGIN/COMMIT round trips
                with conn.transaction():
                    yield x
            else:  # autocommit: one statement is its own transaction, without BEGIN/COMMIT trips
                yield x
        except psycopg.OperationalError:
            # A lost connection: drop it so the next call reconnects; the caller sees the error
            # (classified transient) and retries, or its lease runs out and the job is rescued.
            conn.close()
            raise
        finally:
            self._put_back(conn)

    def _statement(self, text: str, **params: Any) -> list[tuple[Any, ...]]:
        with self._tx(block=False) as x:
            return self._run(x, text, **params)

    def _change(self, update: str, src: str, dst: str, detail_sql: str = ":ev_detail",
                notify: bool = False, returning: str = COLS, **params: Any) -> Job | None:
        # The update and its audit row in one statement (a data-modifying CTE): one round trip.
        notify_sql = f", pg_notify('{CHANNEL}', '')" if notify else ""
        rows = self._statement(
            f"WITH changed AS ({update} RETURNING {returning}),"
            " logged AS (INSERT INTO job_events(job_id, at, from_state, to_state, attempt, worker_id, detail)"
            f" SELECT id, {{now}}, :ev_src, :ev_dst, attempt, worker_id, {detail_sql} FROM changed)"
            f" SELECT {COLS}{notify_sql} FROM changed", ev_src=src, ev_dst=dst, **params)
        return job_of(rows[0][: len(JOB_COLUMNS)]) if rows else None

    def _claim_returning(self) -> str:
        return ", ".join(f"jobs.{c}" for c in JOB_COLUMNS)

    def _claim_sql(self) -> str:
        return _CLAIM

    def _is_unique_violation(self, exc: BaseException) -> bool:
        return isinstance(exc, pg_errors.UniqueViolation)

    def _notify(self, x: Exec) -> None:
        x(f"SELECT pg_notify('{CHANNEL}', '')", {})

    def wait_for_work(self, timeout: float) -> None:
        try:
            if self._listener is None or self._listener.closed:
                self._listener = self._connect()
                self._listener.execute(f"LISTEN {CHANNEL}")
            for _ in self._listener.notifies(timeout=timeout, stop_after=1):
                pass
        except psycopg.OperationalError:
            self._listener = None  # the polling fallback covers the gap until we reconnect
            threading.Event().wait(timeout)

    def close(self) -> None:
        with self._pool_lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
        if self._listener is not None:
            self._listener.close()
            self._listener = None
