"""The Job value and its state machine. Pure: the store applies transitions atomically.

queued -> running -> completed | failed | cancelled, running -> queued (retry or rescue),
queued -> cancelled, failed -> queued (an operator's retry).
"""

from __future__ import annotations

from dataclasses import dataclass
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


class IllegalTransition(Exception):
    def __init__(self, job_id: int, current: str, target: str) -> None:
        super().__init__(f"job {job_id}: illegal transition {current} -> {target}")
        self.job_id, self.current, self.target = job_id, current, target


def check_transition(job_id: int, current: str, target: str) -> None:
    if JobState(target) not in LEGAL_TRANSITIONS[JobState(current)]:
        raise IllegalTransition(job_id, current, target)


@dataclass(frozen=True)
class Job:
    id: int
    repo: str
    snapshot: str | None
    priority: int
    state: str
    attempt: int
    max_attempts: int
    queued_at: float
    started_at: float | None
    finished_at: float | None
    next_retry_at: float | None
    worker_id: str | None
    current_stage: str | None
    last_error: str | None
    error_class: str | None
    result: str | None
