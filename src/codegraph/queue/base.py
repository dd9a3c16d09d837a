"""The job queue interface: every operation on jobs, as one atomic write each.

Two kinds of writes:
- *fenced* writes about a running job (heartbeat, stage, complete, fail, release, cancel
  acknowledgement) carry the `Lease` from the claim and change nothing unless the job is still
  running under that very lease token. They report whether they took effect; a worker whose
  write did not take effect has lost the job and stops working on it.
- *operator* writes (enqueue, cancel, retry, the rescue sweep) are guarded by the states from
  which their transition is legal (`jobs.sources_of`); an illegal request raises
  `IllegalTransition` and changes nothing.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

from codegraph.jobs import ErrorClass, Job, RetryPolicy

DEFAULT_LEASE_SECONDS = 30.0


@dataclass(frozen=True)
class Lease:
    """What a claim hands out. (job_id, token) is the fencing token of every later write."""

    job_id: int
    token: int
    worker_id: str
    seconds: float
    attempt: int
    max_attempts: int

    @classmethod
    def of(cls, job: Job, seconds: float) -> Lease:
        assert job.worker_id is not None
        return cls(job.id, job.lease_token, job.worker_id, seconds, job.attempt, job.max_attempts)


@dataclass(frozen=True)
class Fenced:
    """The outcome of a fenced write: `ok` False means the lease is gone and nothing changed."""

    ok: bool
    cancel_requested: bool = False


@dataclass(frozen=True)
class JobEvent:
    at: float
    from_state: str | None
    to_state: str
    attempt: int
    worker_id: str | None
    detail: str | None


class JobConflict(Exception):
    """Another job for the same snapshot is already queued or running."""


class JobQueue(ABC):
    url: str

    # ----- producers -----------------------------------------------------------------------

    @abstractmethod
    def enqueue(self, repo: str, snapshot: str | None, rev: str | None = None, priority: int = 0,
                max_attempts: int = 3, options: str | None = None) -> tuple[Job, bool]:
        """The job for (repo, snapshot): the queued or running one if there is one (created is
        False), else a new queued job carrying `options` (JSON, for its runner). Safe under
        concurrent enqueues from many processes."""

    @abstractmethod
    def start(self, repo: str, worker_id: str, lease_seconds: float, max_attempts: int = 3) -> Job:
        """A direct run (`codegraph index`): a job enqueued and claimed in one transaction, with
        the same record and events (queued, then running) as a worker's job."""

    # ----- workers -------------------------------------------------------------------------

    @abstractmethod
    def claim(self, worker_id: str, lease_seconds: float) -> Job | None:
        """Atomically take the queued job that is due (highest priority, then oldest), give it a
        new lease token and spend an attempt. None when nothing is due."""

    @abstractmethod
    def heartbeat(self, lease: Lease) -> Fenced:
        """Extend the lease by its length from now."""

    @abstractmethod
    def set_stage(self, lease: Lease, stage: str | None) -> Fenced:
        ...

    @abstractmethod
    def set_snapshot(self, lease: Lease, snapshot: str) -> bool:
        """Key a direct run by the snapshot it scanned (fenced), unless another job of that
        snapshot is active: then the run stays unkeyed. True when the key was set."""

    @abstractmethod
    def complete(self, lease: Lease, result: str | None) -> bool:
        ...

    @abstractmethod
    def fail(self, lease: Lease, error: str, error_class: ErrorClass, policy: RetryPolicy,
             result: str | None = None) -> str | None:
        """Record the attempt's error; back to queued (transient, attempts left: after a
        backoff) or failed. Returns the new state, or None when the lease was gone."""

    @abstractmethod
    def release(self, lease: Lease, reason: str) -> bool:
        """Back to queued without spending the attempt (a worker shutting down)."""

    @abstractmethod
    def acknowledge_cancel(self, lease: Lease, detail: str) -> bool:
        """running -> cancelled, by the worker that stopped the job."""

    @abstractmethod
    def rescue_expired(self, policy: RetryPolicy) -> list[Job]:
        """The sweep: every running job whose lease expired goes back to queued (the attempt is
        spent), or to failed when it was the last one, or to cancelled when cancel was asked."""

    @abstractmethod
    def wait_for_work(self, timeout: float) -> None:
        """Block until a job may have become claimable, or at most `timeout` seconds."""

    # ----- one run of a repository at a time ---------------------------------------------------

    @abstractmethod
    def lock_repo(self, lease: Lease, repo: str) -> int | None:
        """Try to take the run lock of the repository `repo` (its identity) for the job holding
        `lease`. Returns the id of the job holding it now (`lease.job_id`: taken, or already
        held), or None when the lease is gone. The lock lasts while its job runs under that
        lease: it needs no renewal of its own and dies with a dead holder's lease."""

    @abstractmethod
    def unlock_repo(self, lease: Lease, repo: str) -> None:
        ...

    @abstractmethod
    def newer_completed(self, job_id: int, repos: Sequence[str]) -> int | None:
        """The newest completed job of the repository (`repos`: the spellings its jobs use) that
        was enqueued after `job_id`, if any: a run that finds one has been superseded."""

    @abstractmethod
    def active(self, repos: Sequence[str]) -> list[Job]:
        """The repository's queued and running jobs."""

    # ----- operators -----------------------------------------------------------------------

    @abstractmethod
    def cancel(self, job_id: int) -> Job:
        """A queued job is cancelled now; a running one is asked to stop at its next stage
        boundary (its worker acknowledges). Raises IllegalTransition for a finished job."""

    @abstractmethod
    def retry(self, job_id: int) -> Job:
        """failed -> queued with fresh attempts; earlier errors are kept."""

    @abstractmethod
    def get(self, job_id: int) -> Job | None:
        ...

    @abstractmethod
    def list(self, state: str | None = None, limit: int = 100) -> list[Job]:
        ...

    @abstractmethod
    def events(self, job_id: int) -> list[JobEvent]:
        ...

    @abstractmethod
    def pending(self) -> int:
        """How many jobs are queued (due now or later)."""

    @abstractmethod
    def close(self) -> None:
        ...
