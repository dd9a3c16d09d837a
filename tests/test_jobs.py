"""The pure parts of jobs: every legal and illegal transition, the backoff schedule, and error
classification by exception type."""

from __future__ import annotations

import errno
import random
import sqlite3
import tempfile
from collections.abc import Callable
from itertools import product
from pathlib import Path

import psycopg
import pytest

from codegraph.errors import UserError
from codegraph.jobs import (
    LEGAL_TRANSITIONS,
    ErrorClass,
    IllegalTransition,
    JobState,
    RetryPolicy,
    TransientJobError,
    check_transition,
    classify,
    decide_failure,
    sources_of,
)

LEGAL = {
    ("queued", "running"), ("queued", "cancelled"),
    ("running", "completed"), ("running", "failed"), ("running", "cancelled"), ("running", "queued"),
    ("failed", "queued"),
}


@pytest.mark.parametrize(("current", "target"), list(product([s.value for s in JobState], repeat=2)))
def test_every_pair_of_states_is_legal_exactly_when_the_issue_says(current: str, target: str) -> None:
    if (current, target) in LEGAL:
        check_transition(1, current, target)
    else:
        with pytest.raises(IllegalTransition, match=f"{current} -> {target}"):
            check_transition(1, current, target)


def test_terminal_states_have_no_way_out_and_guards_list_the_sources() -> None:
    assert LEGAL_TRANSITIONS[JobState.COMPLETED] == LEGAL_TRANSITIONS[JobState.CANCELLED] == frozenset()
    assert sources_of("running") == ("queued",)
    assert sources_of("queued") == ("failed", "running")
    assert sources_of("cancelled") == ("queued", "running")


def test_backoff_doubles_per_attempt_up_to_the_cap_with_bounded_jitter() -> None:
    policy = RetryPolicy(base=2.0, cap=60.0, jitter=0.5, rng=random.Random(7))
    assert [policy.ceiling(n) for n in range(1, 8)] == [2, 4, 8, 16, 32, 60, 60]
    for attempt in range(1, 10):
        delays = [policy.delay(attempt) for _ in range(200)]
        ceiling = policy.ceiling(attempt)
        assert all(ceiling * 0.5 <= d <= ceiling for d in delays)
        assert max(delays) - min(delays) > ceiling * 0.3  # jitter actually spreads retries
    assert RetryPolicy(base=1.0, jitter=0.0).delay(3) == 4.0


def test_a_failure_is_retried_only_when_transient_and_attempts_remain() -> None:
    policy = RetryPolicy(base=1.0, jitter=0.0)
    retry = decide_failure(ErrorClass.TRANSIENT, 1, 3, policy)
    assert (retry.target, retry.retry_in, retry.needs_operator) == (JobState.QUEUED, 1.0, False)
    assert decide_failure(ErrorClass.TRANSIENT, 2, 3, policy).retry_in == 2.0
    assert decide_failure(ErrorClass.TRANSIENT, 3, 3, policy).target == JobState.FAILED
    assert decide_failure(ErrorClass.PERMANENT, 1, 3, policy).target == JobState.FAILED
    infra = decide_failure(ErrorClass.INFRASTRUCTURE, 1, 3, policy)
    assert infra.target == JobState.FAILED and infra.needs_operator


@pytest.mark.parametrize(("exc", "expected"), [
    (TimeoutError("slow"), ErrorClass.TRANSIENT),
    (ConnectionResetError(errno.ECONNRESET, "reset"), ErrorClass.TRANSIENT),
    (psycopg.OperationalError("server closed the connection unexpectedly"), ErrorClass.TRANSIENT),
    (psycopg.errors.AdminShutdown("terminating connection"), ErrorClass.TRANSIENT),
    (psycopg.errors.DiskFull("could not extend file"), ErrorClass.INFRASTRUCTURE),
    (OSError(errno.EIO, "I/O error"), ErrorClass.TRANSIENT),
    (TransientJobError("x"), ErrorClass.TRANSIENT),
    (OSError(errno.ENOSPC, "No space left on device"), ErrorClass.INFRASTRUCTURE),
    (MemoryError(), ErrorClass.INFRASTRUCTURE),
    (UserError("no such directory: /x"), ErrorClass.PERMANENT),
    (FileNotFoundError(errno.ENOENT, "gone"), ErrorClass.PERMANENT),
    (ValueError("connection timed out"), ErrorClass.PERMANENT),  # the message never counts
    (RuntimeError("No space left on device"), ErrorClass.PERMANENT),
])
def test_errors_are_classified_by_type_never_by_message(exc: BaseException, expected: ErrorClass) -> None:
    assert classify(exc) == expected


def _sqlite_error(setup: Callable[[sqlite3.Connection, sqlite3.Connection], None]) -> sqlite3.Error:
    with tempfile.TemporaryDirectory() as tmp:
        a = sqlite3.connect(Path(tmp) / "x.db", timeout=0, isolation_level=None)
        b = sqlite3.connect(Path(tmp) / "x.db", timeout=0, isolation_level=None)
        a.execute("CREATE TABLE t(x)")
        try:
            setup(a, b)
        except sqlite3.Error as exc:
            return exc
        finally:
            a.close()
            b.close()
    raise AssertionError("no error")


def _locked(a: sqlite3.Connection, b: sqlite3.Connection) -> None:
    a.execute("BEGIN IMMEDIATE")
    b.execute("BEGIN IMMEDIATE")


def _full(a: sqlite3.Connection, b: sqlite3.Connection) -> None:
    a.execute("PRAGMA max_page_count = 3")
    for _ in range(100):
        a.execute("INSERT INTO t VALUES (randomblob(2000))")


def test_real_sqlite_errors_are_classified_by_their_result_code() -> None:
    busy, full = _sqlite_error(_locked), _sqlite_error(_full)
    assert type(busy) is type(full) is sqlite3.OperationalError  # one type, told apart by code
    assert classify(busy) == ErrorClass.TRANSIENT
    assert classify(full) == ErrorClass.INFRASTRUCTURE
    assert classify(sqlite3.OperationalError("database is locked")) == ErrorClass.PERMANENT  # no code
