"""The queue's operations as SQL, shared by the SQLite and PostgreSQL queues.

Statements are written once with `:name` parameters and two dialect tokens: `{now}` (SQLite: the
caller's clock, one machine; PostgreSQL: the database's clock, so workers on machines with
skewed clocks agree on lease expiry) and `{append_error}` (JSON append). Each operation is one
transaction: the state change and its job_events row commit together or not at all.
"""

from __future__ import annotations

import json
import time
from abc import abstractmethod
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

from codegraph.jobs import (
    JOB_COLUMNS,
    ErrorClass,
    IllegalTransition,
    Job,
    JobState,
    RetryPolicy,
    decide_failure,
)
from codegraph.queue.base import Fenced, JobConflict, JobEvent, JobQueue, Lease

Exec = Callable[[str, dict[str, Any]], list[tuple[Any, ...]]]

COLS = ", ".join(JOB_COLUMNS)
FENCE = "id = :id AND lease_token = :token AND state = 'running'"
ACTIVE_STATES = "('queued', 'running')"  # must match the partial unique index, word for word


def job_of(row: tuple[Any, ...]) -> Job:
    values = dict(zip(JOB_COLUMNS, row, strict=True))
    values["cancel_requested"] = bool(values["cancel_requested"])
    values["needs_operator"] = bool(values["needs_operator"])
    return Job(**values)


class SqlJobQueue(JobQueue):
    NOW: str
    APPEND_ERROR: str

    @abstractmethod
    def _tx(self, write: bool = True) -> AbstractContextManager[Exec]:
        """One transaction; yields a function that runs a statement and returns its rows."""

    @abstractmethod
    def _claim_sql(self) -> str:
        ...

    @abstractmethod
    def _is_unique_violation(self, exc: BaseException) -> bool:
        ...

    def _notify(self, x: Exec) -> None:
        """Wake idle workers (PostgreSQL: NOTIFY, delivered at commit)."""

    def _sql(self, text: str) -> str:
        return text.replace("{now}", self.NOW).replace("{append_error}", self.APPEND_ERROR)

    def _run(self, x: Exec, text: str, **params: Any) -> list[tuple[Any, ...]]:
        params.setdefault("now", time.time())
        return x(self._sql(text), params)

    def _event(self, x: Exec, job_id: int, from_state: str | None, to_state: str, attempt: int,
               worker_id: str | None, detail: str | None = None) -> None:
        self._run(x, "INSERT INTO job_events(job_id, at, from_state, to_state, attempt, worker_id, detail)"
                  " VALUES (:job, {now}, :src, :dst, :attempt, :worker, :detail)",
                  job=job_id, src=from_state, dst=to_state, attempt=attempt, worker=worker_id,
                  detail=detail)

    def _statement(self, text: str, **params: Any) -> list[tuple[Any, ...]]:
        """One statement, atomic on its own (PostgreSQL: no BEGIN/COMMIT round trips)."""
        with self._tx() as x:
            return self._run(x, text, **params)

    def _change(self, update: str, src: str, dst: str, detail_sql: str = ":ev_detail",
                notify: bool = False, returning: str = COLS, **params: Any) -> Job | None:
        """A guarded UPDATE (`update`, without RETURNING) and its job_events row, atomically.
        None when the guard matched no row: nothing changed."""
        with self._tx() as x:
            rows = self._run(x, f"{update} RETURNING {returning}", **params)
            if not rows:
                return None
            job = job_of(rows[0])
            self._run(x, "INSERT INTO job_events(job_id, at, from_state, to_state, attempt, worker_id,"
                      f" detail) SELECT id, {{now}}, :ev_src, :ev_dst, attempt, worker_id, {detail_sql}"
                      " FROM jobs WHERE id = :ev_id", ev_src=src, ev_dst=dst, ev_id=job.id, **params)
            if notify:
                self._notify(x)
        return job

    # ----- producers -----------------------------------------------------------------------

    def enqueue(self, repo: str, snapshot: str | None, rev: str | None = None, priority: int = 0,
                max_attempts: int = 3, options: str | None = None) -> tuple[Job, bool]:
        for _ in range(20):  # the active job we collided with may finish before we read it
            with self._tx() as x:
                # ON CONFLICT on the partial unique index: of N concurrent enqueues exactly one
                # inserts; the others wait for it to commit and then insert nothing.
                rows = self._run(
                    x, "INSERT INTO jobs(repo, rev, snapshot, priority, state, max_attempts, queued_at,"
                    " options) VALUES (:repo, :rev, :snapshot, :priority, 'queued', :max_attempts, {now},"
                    " :options)"
                    f" ON CONFLICT (repo, snapshot) WHERE state IN {ACTIVE_STATES} DO NOTHING"
                    f" RETURNING {COLS}",
                    repo=repo, rev=rev, snapshot=snapshot, priority=priority, max_attempts=max_attempts,
                    options=options)
                if rows:
                    job = job_of(rows[0])
                    self._event(x, job.id, None, "queued", 0, None, f"enqueued (priority {priority})")
                    self._notify(x)
                    return job, True
                rows = self._run(x, f"SELECT {COLS} FROM jobs WHERE repo = :repo AND snapshot = :snapshot"
                                 f" AND state IN {ACTIVE_STATES}", repo=repo, snapshot=snapshot)
                if rows:
                    return job_of(rows[0]), False
        raise JobConflict(f"could not enqueue {repo} @ {snapshot}: its active job keeps changing")

    def start(self, repo: str, worker_id: str, lease_seconds: float, max_attempts: int = 3) -> Job:
        with self._tx() as x:
            rows = self._run(
                x, "INSERT INTO jobs(repo, priority, state, attempt, max_attempts, queued_at, started_at,"
                " worker_id, lease_token, lease_expires_at, heartbeat_at)"
                " VALUES (:repo, 0, 'running', 1, :max_attempts, {now}, {now}, :worker, 1,"
                " {now} + :lease, {now}) RETURNING " + COLS,
                repo=repo, max_attempts=max_attempts, worker=worker_id, lease=lease_seconds)
            job = job_of(rows[0])
            self._event(x, job.id, None, "queued", 0, None, "direct run")
            self._event(x, job.id, "queued", "running", 1, worker_id, "claimed")
        return job

    # ----- workers -------------------------------------------------------------------------

    def claim(self, worker_id: str, lease_seconds: float) -> Job | None:
        return self._change(self._claim_sql(), "queued", "running", "'claimed, lease token ' || lease_token",
                            returning=self._claim_returning(), worker=worker_id, lease=lease_seconds)

    def _claim_returning(self) -> str:
        return COLS

    def heartbeat(self, lease: Lease) -> Fenced:
        return self._fenced_update(lease, "lease_expires_at = {now} + :lease, heartbeat_at = {now}")

    def set_stage(self, lease: Lease, stage: str | None) -> Fenced:
        return self._fenced_update(lease, "current_stage = :stage", stage=stage)

    def _fenced_update(self, lease: Lease, assignments: str, **params: Any) -> Fenced:
        rows = self._statement(f"UPDATE jobs SET {assignments} WHERE {FENCE} RETURNING cancel_requested",
                               id=lease.job_id, token=lease.token, lease=lease.seconds, **params)
        return Fenced(True, bool(rows[0][0])) if rows else Fenced(False)

    def set_snapshot(self, lease: Lease, snapshot: str) -> bool:
        try:
            rows = self._statement(
                f"UPDATE jobs SET snapshot = :snapshot WHERE {FENCE} AND snapshot IS NULL AND NOT EXISTS"
                " (SELECT 1 FROM jobs AS other WHERE other.repo = jobs.repo AND other.snapshot = :snapshot"
                f" AND other.state IN {ACTIVE_STATES}) RETURNING id",
                id=lease.job_id, token=lease.token, snapshot=snapshot)
        except Exception as exc:
            if self._is_unique_violation(exc):  # an enqueue of that snapshot won the race
                return False
            raise
        return bool(rows)

    def _fenced_transition(self, lease: Lease, target: str, assignments: str, detail: str,
                           **params: Any) -> bool:
        job = self._change(f"UPDATE jobs SET state = :target, lease_expires_at = NULL, {assignments}"
                           f" WHERE {FENCE}", "running", target, notify=target == JobState.QUEUED,
                           target=target, id=lease.job_id, token=lease.token, ev_detail=detail, **params)
        return job is not None

    def complete(self, lease: Lease, result: str | None) -> bool:
        return self._fenced_transition(lease, "completed", "finished_at = {now}, current_stage = NULL,"
                                       " result = :result", "completed", result=result)

    def fail(self, lease: Lease, error: str, error_class: ErrorClass, policy: RetryPolicy,
             result: str | None = None) -> str | None:
        decision = decide_failure(error_class, lease.attempt, lease.max_attempts, policy)
        record = json.dumps({"attempt": lease.attempt, "error_class": str(error_class), "error": error,
                             "worker_id": lease.worker_id, "at": time.time()})
        common = ("last_error = :error, error_class = :class, errors = {append_error}, result = :result,"
                  " current_stage = NULL")
        if decision.target == JobState.QUEUED:
            ok = self._fenced_transition(
                lease, "queued", common + ", next_retry_at = {now} + :delay",
                f"{error_class} error, retry in {decision.retry_in:.1f}s: {error}",
                error=error, err=record, delay=decision.retry_in, result=result,
                **{"class": str(error_class)})
        else:
            ok = self._fenced_transition(
                lease, "failed", common + ", finished_at = {now}, needs_operator = :operator",
                f"{error_class} error: {error}", error=error, err=record, result=result,
                operator=decision.needs_operator, **{"class": str(error_class)})
        return str(decision.target) if ok else None

    def release(self, lease: Lease, reason: str) -> bool:
        # attempt - 1: a worker going away cleanly did not try and fail; the job is owed the try.
        return self._fenced_transition(lease, "queued", "attempt = attempt - 1, current_stage = NULL,"
                                       " next_retry_at = NULL", f"released: {reason}")

    def acknowledge_cancel(self, lease: Lease, detail: str) -> bool:
        return self._fenced_transition(lease, "cancelled", "finished_at = {now}", detail)

    def rescue_expired(self, policy: RetryPolicy) -> list[Job]:
        with self._tx(write=False) as x:
            expired = self._run(x, "SELECT id, lease_token, attempt, max_attempts, cancel_requested,"
                                " worker_id FROM jobs WHERE state = 'running' AND lease_expires_at < {now}")
        rescued = []
        for job_id, token, attempt, max_attempts, cancel_requested, worker in expired:
            lease = Lease(job_id, token, worker or "?", 0.0, attempt, max_attempts)
            if self._rescue(lease, bool(cancel_requested), policy):
                job = self.get(job_id)
                if job is not None:
                    rescued.append(job)
        return rescued

    def _rescue(self, lease: Lease, cancel_requested: bool, policy: RetryPolicy) -> bool:
        error = f"lease expired: worker {lease.worker_id} stopped renewing it"
        decision = decide_failure(ErrorClass.TRANSIENT, lease.attempt, lease.max_attempts, policy)
        target = JobState.CANCELLED if cancel_requested else decision.target
        retry = target == JobState.QUEUED
        record = json.dumps({"attempt": lease.attempt, "error_class": "transient", "error": error,
                             "worker_id": lease.worker_id, "at": time.time()})
        if retry:
            detail = f"rescued, retry in {decision.retry_in:.1f}s: {error}"
        elif cancel_requested:
            detail = f"rescued, cancel was requested: {error}"
        else:
            detail = f"rescued, attempts exhausted ({lease.attempt}/{lease.max_attempts}): {error}"
        # Fenced by the token *and* the expiry: a heartbeat that lands between the sweep's
        # SELECT and this write keeps the job with its worker.
        job = self._change(
            "UPDATE jobs SET state = :target, lease_expires_at = NULL, current_stage = NULL,"
            " last_error = :error, error_class = 'transient', errors = {append_error},"
            + (" next_retry_at = {now} + :delay" if retry else " finished_at = {now}")
            + f" WHERE {FENCE} AND lease_expires_at < {{now}}", "running", str(target), notify=retry,
            target=str(target), id=lease.job_id, token=lease.token, error=error, err=record,
            delay=decision.retry_in, ev_detail=detail)
        return job is not None

    # ----- one run of a repository at a time ---------------------------------------------------

    def lock_repo(self, lease: Lease, repo: str) -> int | None:
        held = ("(SELECT 1 FROM jobs AS h WHERE h.id = repo_locks.job_id AND h.lease_token ="
                " repo_locks.token AND h.state = 'running' AND h.lease_expires_at > {now})")
        with self._tx() as x:
            # Taken when free, or when its holder's lease is gone (finished, rescued, expired);
            # only by a job that still runs under `lease` (fenced like every write of a run).
            rows = self._run(
                x, "INSERT INTO repo_locks(repo, job_id, token, acquired_at)"
                " SELECT :repo, :id, :token, {now} WHERE EXISTS"
                f" (SELECT 1 FROM jobs WHERE {FENCE})"
                " ON CONFLICT (repo) DO UPDATE SET job_id = excluded.job_id, token = excluded.token,"
                f" acquired_at = excluded.acquired_at WHERE NOT EXISTS {held} RETURNING job_id",
                repo=repo, id=lease.job_id, token=lease.token)
            if rows:
                return int(rows[0][0])
            rows = self._run(x, f"SELECT 1 FROM jobs WHERE {FENCE}", id=lease.job_id, token=lease.token)
            if not rows:
                return None
            rows = self._run(x, "SELECT job_id FROM repo_locks WHERE repo = :repo", repo=repo)
        return int(rows[0][0]) if rows else lease.job_id

    def unlock_repo(self, lease: Lease, repo: str) -> None:
        self._statement("DELETE FROM repo_locks WHERE repo = :repo AND job_id = :id AND token = :token",
                        repo=repo, id=lease.job_id, token=lease.token)

    def newer_completed(self, job_id: int, repos: Sequence[str]) -> int | None:
        names = {f"r{i}": r for i, r in enumerate(repos)}
        with self._tx(write=False) as x:
            rows = self._run(x, "SELECT max(id) FROM jobs WHERE state = 'completed' AND id > :id AND repo IN"
                             f" ({', '.join(':' + n for n in names)})", id=job_id, **names)
        return int(rows[0][0]) if rows and rows[0][0] is not None else None

    def active(self, repos: Sequence[str]) -> list[Job]:
        names = {f"r{i}": r for i, r in enumerate(repos)}
        with self._tx(write=False) as x:
            rows = self._run(x, f"SELECT {COLS} FROM jobs WHERE state IN {ACTIVE_STATES} AND repo IN"
                             f" ({', '.join(':' + n for n in names)}) ORDER BY id", **names)
        return [job_of(r) for r in rows]

    # ----- operators -----------------------------------------------------------------------

    def cancel(self, job_id: int) -> Job:
        for _ in range(20):  # the job may move between our guarded writes; try again
            with self._tx() as x:
                rows = self._run(x, "UPDATE jobs SET state = 'cancelled', finished_at = {now}"
                                 " WHERE id = :id AND state = 'queued' RETURNING attempt", id=job_id)
                if rows:
                    self._event(x, job_id, "queued", "cancelled", int(rows[0][0]), None, "cancelled")
                    break
                rows = self._run(x, "UPDATE jobs SET cancel_requested = TRUE"
                                 " WHERE id = :id AND state = 'running' RETURNING attempt", id=job_id)
                if rows:
                    break
                state = self._state(x, job_id)
            if state not in (JobState.QUEUED, JobState.RUNNING):
                raise IllegalTransition(job_id, state, "cancelled")
        job = self.get(job_id)
        assert job is not None
        return job

    def retry(self, job_id: int) -> Job:
        try:
            with self._tx() as x:
                rows = self._run(
                    x, "UPDATE jobs SET state = 'queued', attempt = 0, next_retry_at = NULL,"
                    " finished_at = NULL, needs_operator = FALSE, cancel_requested = FALSE,"
                    " current_stage = NULL WHERE id = :id AND state = 'failed' RETURNING attempt",
                    id=job_id)
                if rows:
                    self._event(x, job_id, "failed", "queued", 0, None, "retried by an operator")
                    self._notify(x)
                else:
                    raise IllegalTransition(job_id, self._state(x, job_id), "queued (retry)")
        except Exception as exc:
            if self._is_unique_violation(exc):
                raise JobConflict(f"job {job_id}: another job for the same snapshot is queued or running"
                                  ) from exc
            raise
        job = self.get(job_id)
        assert job is not None
        return job

    def _state(self, x: Exec, job_id: int) -> str:
        rows = self._run(x, "SELECT state FROM jobs WHERE id = :id", id=job_id)
        if not rows:
            raise KeyError(job_id)
        return str(rows[0][0])

    def get(self, job_id: int) -> Job | None:
        with self._tx(write=False) as x:
            rows = self._run(x, f"SELECT {COLS} FROM jobs WHERE id = :id", id=job_id)
        return job_of(rows[0]) if rows else None

    def list(self, state: str | None = None, limit: int = 100) -> list[Job]:
        where = "WHERE state = :state" if state else ""
        with self._tx(write=False) as x:
            rows = self._run(x, f"SELECT {COLS} FROM jobs {where} ORDER BY id DESC LIMIT :limit",
                             state=state, limit=limit)
        return [job_of(r) for r in rows]

    def events(self, job_id: int) -> list[JobEvent]:
        with self._tx(write=False) as x:
            rows = self._run(x, "SELECT at, from_state, to_state, attempt, worker_id, detail FROM job_events"
                             " WHERE job_id = :id ORDER BY id", id=job_id)
        return [JobEvent(*r) for r in rows]

    def pending(self) -> int:
        with self._tx(write=False) as x:
            rows = self._run(x, "SELECT count(*) FROM jobs WHERE state = 'queued'")
        return int(rows[0][0])


def rows_of(cursor: Any) -> list[tuple[Any, ...]]:
    return list(cursor.fetchall()) if cursor.description else []
