"""The Job value, its state machine, error classes and the retry schedule. Pure: no I/O.

queued -> running -> completed | failed | cancelled, running -> queued (retry, rescue or
release), queued -> cancelled, failed -> queued (an operator's retry). The queues in
`codegraph.queue` apply these transitions atomically; every write there is guarded by the source
states allowed here, so an illegal transition can neither be requested nor happen in a race.
"""

from __future__ import annotations

import errno
import random
import socket
import sqlite3
from dataclasses import dataclass, field
from enum import StrEnum


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


LEGAL_TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.QUEUED: frozenset({JobState.RUNNING, JobState.CANCELLED}),
    JobState.RUNNING: frozenset(
        {JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED, JobState.QUEUED}
    ),
    JobState.FAILED: frozenset({JobState.QUEUED}),
    JobState.COMPLETED: frozenset(),
    JobState.CANCELLED: frozenset(),
}

TERMINAL = frozenset({JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED})
ACTIVE = frozenset({JobState.QUEUED, JobState.RUNNING})  # at most one per (repo, snapshot)


class IllegalTransition(Exception):
    def __init__(self, job_id: int, current: str, target: str) -> None:
        super().__init__(f"job {job_id}: illegal transition {current} -> {target}")
        self.job_id, self.current, self.target = job_id, current, target


def is_legal(current: str, target: str) -> bool:
    return JobState(target) in LEGAL_TRANSITIONS[JobState(current)]


def check_transition(job_id: int, current: str, target: str) -> None:
    if not is_legal(current, target):
        raise IllegalTransition(job_id, current, target)


def sources_of(target: str) -> tuple[str, ...]:
    """The states from which `target` is legal: the WHERE clause of every state-changing write."""
    return tuple(sorted(s.value for s, targets in LEGAL_TRANSITIONS.items() if JobState(target) in targets))


# ----- errors -------------------------------------------------------------------------------


class ErrorClass(StrEnum):
    TRANSIENT = "transient"  # retried with backoff while attempts remain
    PERMANENT = "permanent"  # failed at once: retrying cannot help
    INFRASTRUCTURE = "infrastructure"  # failed and flagged for an operator (disk, memory)


class JobError(Exception):
    """Raise a subclass from a runner to state the class explicitly."""

    error_class: ErrorClass = ErrorClass.PERMANENT


class TransientJobError(JobError):
    error_class = ErrorClass.TRANSIENT


class PermanentJobError(JobError):
    error_class = ErrorClass.PERMANENT


class InfrastructureJobError(JobError):
    error_class = ErrorClass.INFRASTRUCTURE


_INFRA_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.ENOMEM, errno.EROFS, errno.EMFILE, errno.ENFILE})
_TRANSIENT_ERRNOS = frozenset({errno.EAGAIN, errno.EINTR, errno.EIO, errno.EBUSY, errno.ETIMEDOUT,
                               errno.ECONNRESET, errno.ECONNREFUSED, errno.ECONNABORTED, errno.EPIPE,
                               errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ESTALE})


# SQLite's primary result codes (the low byte of `sqlite_errorcode`): a number, not a message.
_SQLITE_INFRA = frozenset({7, 11, 13, 26})  # NOMEM, CORRUPT, FULL, NOTADB
_SQLITE_TRANSIENT = frozenset({5, 6, 10, 14, 15})  # BUSY, LOCKED, IOERR, CANTOPEN, PROTOCOL


def _driver_types() -> tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...]]:
    """(infrastructure, transient) exception types of the database drivers."""
    infra: list[type[BaseException]] = []
    transient: list[type[BaseException]] = [TimeoutError, ConnectionError, socket.timeout]
    try:  # lost PostgreSQL connections, server shutdown, serialization failures
        import psycopg

        infra += [psycopg.errors.DiskFull, psycopg.errors.OutOfMemory]
        transient += [psycopg.OperationalError, psycopg.errors.SerializationFailure,
                      psycopg.errors.DeadlockDetected]
    except ImportError:  # pragma: no cover - psycopg is a dependency, but keep this module pure
        pass
    return tuple(infra), tuple(transient)


def classify(exc: BaseException) -> ErrorClass:
    """By exception type (and errno / SQLite result code), never by message text. Unknown types
    are permanent: a bug does not go away on retry, and a wrong guess costs one failed job, not
    a retry loop."""
    from codegraph.errors import UserError

    infra_types, transient_types = _driver_types()
    if isinstance(exc, JobError):
        return exc.error_class
    if isinstance(exc, (MemoryError, *infra_types)):
        return ErrorClass.INFRASTRUCTURE
    if isinstance(exc, OSError) and exc.errno in _INFRA_ERRNOS:
        return ErrorClass.INFRASTRUCTURE
    if isinstance(exc, sqlite3.Error):
        code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
        if code in _SQLITE_INFRA:
            return ErrorClass.INFRASTRUCTURE
        return ErrorClass.TRANSIENT if code in _SQLITE_TRANSIENT else ErrorClass.PERMANENT
    if isinstance(exc, UserError):  # invalid repository, unsupported input
        return ErrorClass.PERMANENT
    if isinstance(exc, transient_types):
        return ErrorClass.TRANSIENT
    if isinstance(exc, OSError) and exc.errno in _TRANSIENT_ERRNOS:
        return ErrorClass.TRANSIENT
    return ErrorClass.PERMANENT


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


# ----- retries ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """Capped exponential backoff with jitter: attempt n (1-based) that failed waits
    min(cap, base * 2**(n-1)) scaled by a random factor in [1 - jitter, 1]."""

    base: float = 2.0
    cap: float = 300.0
    jitter: float = 0.5
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def ceiling(self, attempt: int) -> float:
        return min(self.cap, self.base * 2.0 ** max(0, attempt - 1))

    def delay(self, attempt: int) -> float:
        # Jitter spreads workers that failed together (a database restart) so they do not
        # all come back in the same instant.
        return self.ceiling(attempt) * (1.0 - self.jitter * self.rng.random())


@dataclass(frozen=True)
class FailureDecision:
    target: JobState
    retry_in: float | None
    needs_operator: bool


def decide_failure(error_class: ErrorClass, attempt: int, max_attempts: int,
                   policy: RetryPolicy) -> FailureDecision:
    """What a failed attempt leads to: another try later, or the end."""
    if error_class == ErrorClass.TRANSIENT and attempt < max_attempts:
        return FailureDecision(JobState.QUEUED, policy.delay(attempt), False)
    return FailureDecision(JobState.FAILED, None, error_class == ErrorClass.INFRASTRUCTURE)


# ----- the value ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    id: int
    repo: str
    rev: str | None
    snapshot: str | None  # idempotency key: manifest hash, or "rev:<rev>"; NULL for direct runs
    priority: int
    state: str
    attempt: int  # claims so far, minus releases (a release does not spend an attempt)
    max_attempts: int
    queued_at: float
    started_at: float | None
    finished_at: float | None
    next_retry_at: float | None
    worker_id: str | None
    lease_token: int  # bumped by every claim: the fencing token
    lease_expires_at: float | None
    heartbeat_at: float | None
    current_stage: str | None
    cancel_requested: bool
    last_error: str | None
    error_class: str | None
    errors: str  # JSON list: one {attempt, error_class, error, at} per failed attempt
    needs_operator: bool
    result: str | None
    # JSON: the options the enqueuer chose for the run ({"model", "embed_runtime", "quantize"});
    # None: the worker's own
    options: str | None = None


JOB_COLUMNS: tuple[str, ...] = tuple(Job.__dataclass_fields__)
