"""The job queue's contract, run against SQLite and a real PostgreSQL: leases, fencing, rescue,
retries, idempotent enqueue, cancel/retry — and workers as real processes that get SIGKILLed,
SIGSTOPped and SIGTERMed. Short leases and polling with deadlines: no sleep decides a result."""

from __future__ import annotations

import json
import os
import random
import secrets
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from codegraph.jobs import ErrorClass, IllegalTransition, Job, RetryPolicy
from codegraph.queue import JobConflict, JobQueue, Lease, open_queue
from codegraph.queue.run import JobRun
from conftest import write_tree

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
CLI = [sys.executable, "-m", "codegraph.cli"]
FAST = RetryPolicy(base=0.05, cap=0.2)


def _pg_available() -> bool:
    try:
        psycopg.connect(PG_ADMIN, connect_timeout=3).close()
        return True
    except psycopg.Error:
        return False


@contextmanager
def database(kind: str, tmp_path: Path) -> Iterator[str]:
    """A fresh queue location: a directory, or a PostgreSQL database dropped afterwards."""
    if kind == "sqlite":
        yield str(tmp_path / "queue")
        return
    if not _pg_available():
        pytest.skip("no PostgreSQL at 127.0.0.1:5432")
    name = f"codegraph_q_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def pg_url(tmp_path: Path) -> Iterator[str]:
    with database("postgres", tmp_path) as url:
        yield url


@pytest.fixture
def queue(db_url: str) -> Iterator[JobQueue]:
    q = open_queue(db_url)
    yield q
    q.close()


def wait_until(predicate: Callable[[], object], timeout: float = 20.0, what: str = "condition") -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def transitions(queue: JobQueue, job_id: int) -> list[tuple[str | None, str]]:
    return [(e.from_state, e.to_state) for e in queue.events(job_id)]


def claim(queue: JobQueue, worker: str = "w1", lease: float = 30.0) -> tuple[Job, Lease]:
    job = queue.claim(worker, lease)
    assert job is not None
    return job, Lease.of(job, lease)


# ----- the contract, in process ----------------------------------------------------------------


def test_enqueue_returns_the_active_job_of_a_snapshot_and_a_new_one_after_it_ends(queue: JobQueue) -> None:
    first, created = queue.enqueue("/repo", "s1", priority=1)
    again, created_again = queue.enqueue("/repo", "s1")
    assert created and not created_again and again.id == first.id
    other, created_other = queue.enqueue("/repo", "s2")
    assert created_other and other.id != first.id
    job, lease = claim(queue)
    assert job.id == first.id  # higher priority first
    assert queue.enqueue("/repo", "s1")[0].id == first.id  # running counts as active too
    assert queue.complete(lease, "{}")
    fresh, created_fresh = queue.enqueue("/repo", "s1")
    assert created_fresh and fresh.id not in (first.id, other.id)


def test_claim_takes_priority_then_age_and_honours_next_retry_at(queue: JobQueue) -> None:
    low = queue.enqueue("/r", "low", priority=0)[0]
    high = queue.enqueue("/r", "high", priority=5)[0]
    low2 = queue.enqueue("/r", "low2", priority=0)[0]
    order = [claim(queue)[0].id for _ in range(3)]
    assert order == [high.id, low.id, low2.id]
    assert queue.claim("w1", 30) is None

    job = queue.enqueue("/r", "retry")[0]
    _, lease = claim(queue)
    assert queue.fail(lease, "flaky", ErrorClass.TRANSIENT, RetryPolicy(base=0.5, jitter=0.0)) == "queued"
    assert queue.get(job.id).next_retry_at is not None
    assert queue.claim("w2", 30) is None  # not due yet
    retried = wait_until(lambda: queue.claim("w2", 30), 5, "the retry to become due")
    assert retried.id == job.id and retried.attempt == 2 and retried.lease_token == 2


def test_a_claim_gives_a_lease_and_heartbeats_extend_it(queue: JobQueue) -> None:
    queue.enqueue("/r", "s")
    job, lease = claim(queue, "w1", lease=5)
    assert job.state == "running" and job.worker_id == "w1" and job.attempt == 1
    assert job.lease_expires_at is not None
    assert job.lease_expires_at - job.started_at == pytest.approx(5, abs=0.5)
    time.sleep(0.05)
    assert queue.heartbeat(lease).ok
    assert queue.get(job.id).lease_expires_at > job.lease_expires_at
    assert queue.set_stage(lease, "L1_ir") == queue.heartbeat(lease)
    assert queue.get(job.id).current_stage == "L1_ir"


def test_after_a_rescue_every_write_with_the_old_lease_changes_nothing(queue: JobQueue) -> None:
    queue.enqueue("/r", "s")
    job, stale = claim(queue, "dead", lease=0.2)
    wait_until(lambda: queue.rescue_expired(FAST), 5, "the rescue")
    rescued = queue.get(job.id)
    assert rescued.state == "queued" and rescued.attempt == 1 and rescued.error_class == "transient"
    assert "lease expired" in rescued.last_error
    _, live = wait_until(lambda: _claim_or_none(queue), 5, "the backoff to pass")
    before = queue.get(job.id)
    assert live.token == stale.token + 1

    assert queue.heartbeat(stale) == queue.set_stage(stale, "L2_chunk")
    assert not queue.heartbeat(stale).ok
    assert not queue.complete(stale, '{"by": "dead"}')
    assert queue.fail(stale, "late", ErrorClass.PERMANENT, FAST) is None
    assert not queue.release(stale, "late")
    assert not queue.acknowledge_cancel(stale, "late")
    assert queue.get(job.id) == before
    assert queue.complete(live, '{"by": "alive"}')
    done = queue.get(job.id)
    assert done.state == "completed" and json.loads(done.result) == {"by": "alive"} and done.worker_id == "w"
    assert transitions(queue, job.id) == [(None, "queued"), ("queued", "running"), ("running", "queued"),
                                          ("queued", "running"), ("running", "completed")]


def test_a_job_that_keeps_killing_its_workers_fails_after_max_attempts_with_every_error(
    queue: JobQueue,
) -> None:
    job = queue.enqueue("/r", "s", max_attempts=3)[0]
    for attempt in range(1, 4):
        wait_until(lambda: queue.claim(f"w{attempt}", 0.1), 5, "a claim")  # noqa: B023
        wait_until(lambda: queue.rescue_expired(FAST), 5, "a rescue")
    final = queue.get(job.id)
    assert final.state == "failed" and final.attempt == 3 and final.finished_at is not None
    errors = json.loads(final.errors)
    assert [(e["attempt"], e["worker_id"]) for e in errors] == [(1, "w1"), (2, "w2"), (3, "w3")]
    assert all("lease expired" in e["error"] for e in errors)
    assert queue.claim("w4", 1) is None and queue.rescue_expired(FAST) == []


def test_transient_errors_back_off_and_are_kept_until_attempts_run_out(queue: JobQueue) -> None:
    job = queue.enqueue("/r", "s", max_attempts=3)[0]
    states = []
    for _ in range(3):
        _, lease = wait_until(lambda: _claim_or_none(queue), 5, "the retry")
        states.append(queue.fail(lease, f"timeout {lease.attempt}", ErrorClass.TRANSIENT, FAST))
    assert states == ["queued", "queued", "failed"]
    final = queue.get(job.id)
    assert final.error_class == "transient" and final.last_error == "timeout 3" and not final.needs_operator
    assert [e["error"] for e in json.loads(final.errors)] == ["timeout 1", "timeout 2", "timeout 3"]


def _claim_or_none(queue: JobQueue) -> tuple[Job, Lease] | None:
    job = queue.claim("w", 30)
    return (job, Lease.of(job, 30)) if job else None


def test_permanent_errors_fail_at_once_and_infrastructure_errors_flag_an_operator(queue: JobQueue) -> None:
    a = queue.enqueue("/r", "a")[0]
    _, lease = claim(queue)
    assert queue.fail(lease, "unsupported input", ErrorClass.PERMANENT, FAST) == "failed"
    b = queue.enqueue("/r", "b")[0]
    _, lease = claim(queue)
    assert queue.fail(lease, "disk full", ErrorClass.INFRASTRUCTURE, FAST) == "failed"
    assert (queue.get(a.id).attempt, queue.get(a.id).needs_operator) == (1, False)
    assert queue.get(b.id).needs_operator and queue.get(b.id).error_class == "infrastructure"


def test_operator_transitions_are_legal_or_raise_and_change_nothing(queue: JobQueue) -> None:
    queued = queue.enqueue("/r", "q")[0]
    assert queue.cancel(queued.id).state == "cancelled"  # queued -> cancelled
    with pytest.raises(IllegalTransition, match="cancelled -> cancelled"):
        queue.cancel(queued.id)
    with pytest.raises(IllegalTransition, match="cancelled -> queued"):
        queue.retry(queued.id)

    job = queue.enqueue("/r", "r")[0]
    with pytest.raises(IllegalTransition, match="queued -> queued"):
        queue.retry(job.id)
    _, lease = claim(queue)
    with pytest.raises(IllegalTransition, match="running -> queued"):
        queue.retry(job.id)
    asked = queue.cancel(job.id)  # running: asked, the worker acknowledges at a stage boundary
    assert asked.state == "running" and asked.cancel_requested
    assert queue.heartbeat(lease).cancel_requested and queue.set_stage(lease, "L1_ir").cancel_requested
    assert queue.acknowledge_cancel(lease, "stopped")
    assert queue.get(job.id).state == "cancelled"

    failed = queue.enqueue("/r", "f")[0]
    _, lease = claim(queue)
    queue.fail(lease, "bad", ErrorClass.PERMANENT, FAST)
    blocker = queue.enqueue("/r", "f")[0]  # the snapshot is active again under a new job
    with pytest.raises(JobConflict):
        queue.retry(failed.id)
    queue.cancel(blocker.id)
    again = queue.retry(failed.id)  # failed -> queued, fresh attempts, errors kept
    assert again.state == "queued" and again.attempt == 0 and json.loads(again.errors)[0]["error"] == "bad"

    done = queue.enqueue("/r", "d")[0]
    _, lease = claim(queue)
    while lease.job_id != done.id:  # `failed` was queued again before it
        queue.complete(lease, None)
        _, lease = claim(queue)
    queue.complete(lease, None)
    before = queue.get(done.id)
    for op in (queue.cancel, queue.retry):
        with pytest.raises(IllegalTransition, match="completed -> "):
            op(done.id)
    assert queue.get(done.id) == before
    assert transitions(queue, done.id) == [(None, "queued"), ("queued", "running"), ("running", "completed")]


def test_a_direct_run_takes_its_snapshot_key_unless_that_snapshot_is_already_active(
    queue: JobQueue,
) -> None:
    first = JobRun(queue, queue.start("/r", "cli-1", 30), 30, queue.url)
    first.set_snapshot("s")
    assert queue.get(first.job.id).snapshot == "s"
    assert queue.enqueue("/r", "s") == (queue.get(first.job.id), False)  # finds the running run
    second = JobRun(queue, queue.start("/r", "cli-2", 30), 30, queue.url)
    second.set_snapshot("s")
    assert queue.get(second.job.id).snapshot is None
    assert [(e.from_state, e.to_state) for e in queue.events(second.job.id)] == [
        (None, "queued"), ("queued", "running")]


def test_a_release_does_not_spend_an_attempt(queue: JobQueue) -> None:
    job = queue.enqueue("/r", "s")[0]
    _, lease = claim(queue)
    assert queue.release(lease, "shutting down")
    released = queue.get(job.id)
    assert released.state == "queued" and released.attempt == 0 and released.lease_expires_at is None
    assert claim(queue)[0].attempt == 1


def test_a_cancelled_running_job_stops_at_its_next_stage_boundary(
    queue: JobQueue, shop_repo: Path, tmp_path: Path
) -> None:
    from codegraph.pipeline import IndexOptions, index
    from codegraph.stages import IndexConfig

    job = queue.enqueue(str(shop_repo), "s")[0]
    claimed, _ = claim(queue)
    queue.cancel(job.id)
    run = JobRun(queue, claimed, 30, str(tmp_path / "store"))
    result = index(shop_repo, str(tmp_path / "store"), IndexOptions(IndexConfig(vectors=False)), job=run)
    assert result["job_state"] == "cancelled" and run.stop_reason == "cancel_requested"
    assert {s["name"]: s["status"] for s in result["stages"]}["L2_chunk"] == "skipped"
    assert queue.get(job.id).state == "cancelled"
    assert transitions(queue, job.id)[-1] == ("running", "cancelled")


def test_a_run_whose_lease_was_taken_stops_and_writes_nothing(
    queue: JobQueue, shop_repo: Path, tmp_path: Path
) -> None:
    from codegraph.pipeline import IndexOptions, index
    from codegraph.stages import IndexConfig

    job = queue.enqueue(str(shop_repo), "s")[0]
    claimed, _ = claim(queue, "slow", lease=0.1)
    wait_until(lambda: queue.rescue_expired(FAST), 5, "the rescue")
    _, live = wait_until(lambda: _claim_or_none(queue), 5, "the second claim")
    run = JobRun(queue, claimed, 0.1, str(tmp_path / "store"))
    result = index(shop_repo, str(tmp_path / "store"), IndexOptions(IndexConfig(vectors=False)), job=run)
    assert result["job_state"] == "lost" and run.stop_reason == "lease_lost"
    after = queue.get(job.id)
    assert after.state == "running" and after.lease_token == live.token and after.current_stage is None


def test_a_worker_retries_transient_errors_and_fails_the_others_by_their_class(queue: JobQueue) -> None:
    from codegraph.queue.testing import by_rev
    from codegraph.queue.worker import Worker, WorkerConfig

    ids = {rev: queue.enqueue("/r", f"rev:{rev}", rev=rev)[0].id
           for rev in ("transient", "permanent", "disk_full", "ok")}
    config = WorkerConfig(queue.url, concurrency=2, burst=True, lease=5, poll=0.02, policy=FAST)
    stats = Worker(queue, by_rev, config, log=lambda _: None).run()
    jobs = {rev: queue.get(job_id) for rev, job_id in ids.items()}
    assert {rev: (j.state, j.attempt, j.error_class) for rev, j in jobs.items()} == {
        "transient": ("failed", 3, "transient"), "permanent": ("failed", 1, "permanent"),
        "disk_full": ("failed", 1, "infrastructure"), "ok": ("completed", 1, None)}
    assert [e["error"] for e in json.loads(jobs["transient"].errors)] == [
        "TransientJobError: the database went away"] * 3
    assert jobs["disk_full"].needs_operator and not jobs["permanent"].needs_operator
    assert stats.claimed == 6 and stats.outcomes == {"queued": 2, "failed": 3, "completed": 1}


def test_heartbeats_keep_a_job_longer_than_its_lease_from_being_rescued(queue: JobQueue) -> None:
    queue.enqueue("/r", "long")
    job, _ = claim(queue, "w", lease=0.6)
    run = JobRun(queue, job, 0.6, queue.url).start_heartbeat()
    try:
        deadline = time.monotonic() + 1.8  # three leases long
        while time.monotonic() < deadline:
            assert queue.rescue_expired(FAST) == []
            time.sleep(0.02)
        assert not run.cancel.is_set() and run.complete({"long": True})
    finally:
        run.close()
    assert queue.get(job.id).state == "completed"


OLD_JOBS_TABLES = """
CREATE TABLE jobs (id {serial} PRIMARY KEY, repo TEXT NOT NULL, snapshot TEXT,
    priority INTEGER NOT NULL DEFAULT 0, state TEXT NOT NULL, attempt INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL DEFAULT 3, queued_at {real} NOT NULL, started_at {real},
    finished_at {real}, next_retry_at {real}, worker_id TEXT, current_stage TEXT, last_error TEXT,
    error_class TEXT, result TEXT);
CREATE TABLE job_events (id {serial} PRIMARY KEY, job_id INTEGER NOT NULL, at {real} NOT NULL,
    from_state TEXT, to_state TEXT NOT NULL, detail TEXT);
INSERT INTO jobs(repo, state, attempt, queued_at, finished_at) VALUES ('/old', 'completed', 1, 1.0, 2.0);
"""


def test_job_tables_of_the_first_store_schema_are_upgraded_in_place(db_url: str) -> None:
    if db_url.startswith("postgresql://"):
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute(OLD_JOBS_TABLES.format(serial="bigserial", real="double precision").encode())
    else:
        import sqlite3

        Path(db_url).mkdir()
        with sqlite3.connect(Path(db_url) / "index.sqlite") as conn:
            conn.executescript(OLD_JOBS_TABLES.format(serial="INTEGER", real="REAL"))
    queue = open_queue(db_url)
    old = queue.get(1)
    assert old is not None and old.state == "completed" and old.lease_token == 0 and old.errors == "[]"
    job = queue.enqueue("/new", "s")[0]
    _, lease = claim(queue)
    assert lease.job_id == job.id and queue.complete(lease, None)
    assert [e.worker_id for e in queue.events(job.id)] == [None, "w1", "w1"]
    queue.close()


def test_an_idle_postgres_worker_is_woken_by_notify_not_by_polling(pg_url: str, tmp_path: Path) -> None:
    queue = open_queue(pg_url)
    workers = Workers(pg_url, tmp_path, "--lease", "5")
    try:
        workers.start("--poll", "60")  # the last --poll wins: polling alone would take a minute
        wait_until(lambda: "started" in workers.logs(), 30, "the worker")
        time.sleep(0.3)  # let it reach its wait (a job enqueued sooner is claimed at once anyway)
        job = queue.enqueue("/repo", "rev:notify")[0]
        wait_until(lambda: queue.get(job.id).state == "completed", 10, "a NOTIFY wake-up")
    finally:
        workers.stop_all()
        queue.close()


# ----- workers as processes ---------------------------------------------------------------------


class Workers:
    """Worker processes on one queue, each logging to its own file."""

    def __init__(self, db: str, tmp: Path, *args: str, **env: str) -> None:
        self.db, self.tmp, self.args, self.env = db, tmp, args, env
        self.procs: dict[int, subprocess.Popen[bytes]] = {}

    def start(self, *extra: str, **env: str) -> subprocess.Popen[bytes]:
        log = open(self.tmp / f"worker-{len(self.procs)}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [*CLI, "worker", "--db", self.db, "--runner", "codegraph.queue.testing:noop", "--poll", "0.05",
             "--backoff", "0.05", *self.args, *extra],
            stdout=log, stderr=log, env={**os.environ, **self.env, **env}, start_new_session=True)
        log.close()
        self.procs[proc.pid] = proc
        return proc

    def owner(self, job: Job) -> subprocess.Popen[bytes] | None:
        pid = int((job.worker_id or "-0").rsplit("-", 1)[1])
        proc = self.procs.get(pid)
        return proc if proc is not None and proc.poll() is None else None

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGCONT)
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    def logs(self) -> str:
        return "\n".join(p.read_text() for p in sorted(self.tmp.glob("worker-*.log")))


def ledger_lines(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


def test_workers_drain_every_job_exactly_once_while_being_sigkilled(
    queue: JobQueue, db_url: str, tmp_path: Path
) -> None:
    n_jobs, kills_wanted = 50, 5
    ledger = tmp_path / "ledger"
    jobs = [queue.enqueue("/repo", f"rev:{i}", rev=str(i))[0].id for i in range(n_jobs)]
    workers = Workers(db_url, tmp_path, "--lease", "1", CODEGRAPH_NOOP_SECONDS="0.1",
                      CODEGRAPH_LEDGER=str(ledger))
    rng = random.Random(3)
    kills = landed = 0
    try:
        for _ in range(3):
            workers.start()
        deadline = time.monotonic() + 90
        done_at_last_kill = 0
        while True:
            states = Counter(queue.get(j).state for j in jobs)
            if states["completed"] + states["failed"] + states["cancelled"] == n_jobs:
                break
            assert time.monotonic() < deadline, f"not drained: {states}\n{workers.logs()}"
            # SIGKILL a worker in the middle of a job, once the others made some progress.
            if landed < kills_wanted and states["completed"] >= done_at_last_kill + 4:
                running = [j for j in queue.list("running") if workers.owner(j) is not None]
                if running:
                    target = rng.choice(running)
                    victim = workers.owner(target)
                    assert victim is not None
                    os.killpg(victim.pid, signal.SIGKILL)
                    victim.wait()
                    kills += 1
                    after = queue.get(target.id)
                    # It landed mid-job unless the job finished in the instant before the kill.
                    landed += after.state == "running" and after.lease_token == target.lease_token
                    done_at_last_kill = states["completed"]
                    workers.start()
            time.sleep(0.02)
    finally:
        workers.stop_all()

    final = {j: queue.get(j) for j in jobs}
    completed = {j for j, job in final.items() if job.state == "completed"}
    ledger_done = [int(line[0]) for line in ledger_lines(ledger) if line[3] == "completed"]
    assert landed == kills_wanted
    assert len(ledger_done) == len(set(ledger_done)), "a job was completed twice"
    assert set(ledger_done) <= completed
    assert len(completed - set(ledger_done)) <= kills  # killed between commit and ledger write
    for job_id in jobs:
        events = transitions(queue, job_id)
        assert events.count(("running", "completed")) == (1 if job_id in completed else 0)
        if final[job_id].state == "failed":  # killed on every attempt: possible, never looping
            assert final[job_id].attempt == 3 and len(json.loads(final[job_id].errors)) == 3
    rescues = sum(1 for j in jobs for e in queue.events(j) if (e.detail or "").startswith("rescued"))
    assert rescues >= landed  # every job whose worker was killed mid-job was rescued


def test_a_worker_stopped_past_its_lease_cannot_complete_the_job_it_lost(
    queue: JobQueue, db_url: str, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger"
    job = queue.enqueue("/repo", "rev:stop")[0]
    workers = Workers(db_url, tmp_path, "--lease", "1", CODEGRAPH_LEDGER=str(ledger))
    try:
        # The stubborn runner never looks at its cancel event: only fencing can stop its write.
        stopped = workers.start(CODEGRAPH_NOOP_SECONDS="1.5", CODEGRAPH_NOOP_STUBBORN="1")
        wait_until(lambda: queue.get(job.id).state == "running", 20, "the first claim")
        os.killpg(stopped.pid, signal.SIGSTOP)
        rescuer = workers.start()
        wait_until(lambda: queue.get(job.id).state == "completed", 20, "rescue and completion elsewhere")
        finished = queue.get(job.id)
        os.killpg(stopped.pid, signal.SIGCONT)
        lines = wait_until(lambda: [x for x in ledger_lines(ledger) if x[2].endswith(f"-{stopped.pid}")],
                           20, "the stopped worker's late write")
        wait_until(lambda: f"job {job.id} lost" in workers.logs(), 20, "the stopped worker to give up")
    finally:
        workers.stop_all()
    assert lines == [[str(job.id), "1", lines[0][2], "stale"]]
    assert queue.get(job.id) == finished  # the late complete, heartbeat and finish changed nothing
    assert finished.worker_id.endswith(f"-{rescuer.pid}") and finished.lease_token == 2
    assert json.loads(finished.result)["worker"] == finished.worker_id
    assert transitions(queue, job.id).count(("running", "completed")) == 1
    assert [x[3] for x in ledger_lines(ledger)].count("completed") == 1


ENQUEUE_AT_ONCE = """
import json, os, sys, time
from codegraph.queue import enqueue_path, open_queue
queue = open_queue(sys.argv[1])
open(os.path.join(sys.argv[3], f"ready-{os.getpid()}"), "w").close()
while not os.path.exists(os.path.join(sys.argv[3], "go")):
    time.sleep(0.001)
job, created = enqueue_path(queue, sys.argv[2])
print(json.dumps([job.id, created]))
"""


def test_twenty_processes_enqueuing_one_snapshot_at_once_make_one_job(
    queue: JobQueue, db_url: str, tmp_path: Path
) -> None:
    repo = write_tree(tmp_path / "repo", {"a.py": "def a():\n    return 1\n"})
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    procs = [subprocess.Popen([sys.executable, "-c", ENQUEUE_AT_ONCE, db_url, str(repo), str(barrier)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(20)]
    try:
        wait_until(lambda: len(list(barrier.glob("ready-*"))) == 20, 60, "20 processes ready")
        (barrier / "go").touch()
        outputs = [p.communicate(timeout=60) for p in procs]
    finally:
        for p in procs:
            p.kill() if p.poll() is None else None
    assert all(p.returncode == 0 for p in procs), [err for _, err in outputs]
    answers = [json.loads(out) for out, _ in outputs]
    assert len({job_id for job_id, _ in answers}) == 1
    assert sum(created for _, created in answers) == 1
    assert len(queue.list()) == 1 and transitions(queue, answers[0][0]) == [(None, "queued")]


def test_sigterm_releases_a_running_job_after_the_grace_period_without_spending_an_attempt(
    queue: JobQueue, db_url: str, tmp_path: Path
) -> None:
    job = queue.enqueue("/repo", "rev:term")[0]
    workers = Workers(db_url, tmp_path, "--lease", "2", "--grace", "0.5", CODEGRAPH_NOOP_SECONDS="60")
    try:
        proc = workers.start()
        wait_until(lambda: queue.get(job.id).state == "running", 20, "the claim")
        # Running in the worker, not just claimed: a SIGTERM between the claim's commit and the
        # job's start releases it at once (nothing ran), with no grace period to wait for.
        claimed = queue.get(job.id).lease_expires_at
        wait_until(lambda: queue.get(job.id).lease_expires_at != claimed, 20, "a heartbeat")
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        elapsed = time.monotonic() - t0
    finally:
        workers.stop_all()
    released = queue.get(job.id)
    assert released.state == "queued" and released.attempt == 0 and released.lease_expires_at is None
    assert 0.5 <= elapsed < 10, workers.logs()
    assert queue.events(job.id)[-1].detail == "released: worker shutting down, grace period over"


def test_cli_cancel_stops_a_running_job_and_retry_requeues_a_failed_one(
    queue: JobQueue, db_url: str, tmp_path: Path
) -> None:
    job = queue.enqueue("/repo", "rev:cancel")[0]
    workers = Workers(db_url, tmp_path, "--lease", "1", CODEGRAPH_NOOP_SECONDS="60")
    try:
        workers.start()
        wait_until(lambda: queue.get(job.id).state == "running", 20, "the claim")
        proc = subprocess.run([*CLI, "jobs", "cancel", str(job.id), "--db", db_url, "--json"],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["cancel_requested"] is True
        wait_until(lambda: queue.get(job.id).state == "cancelled", 20, "the worker to stop the job")
    finally:
        workers.stop_all()
    again = subprocess.run([*CLI, "jobs", "cancel", str(job.id), "--db", db_url],
                           capture_output=True, text=True, timeout=60)
    assert again.returncode == 2 and again.stderr.strip() == (
        f"error: job {job.id}: illegal transition cancelled -> cancelled")

    failing = queue.enqueue("/repo", "rev:fail")[0]
    _, lease = claim(queue)
    queue.fail(lease, "unsupported input", ErrorClass.PERMANENT, FAST)
    proc = subprocess.run([*CLI, "jobs", "retry", str(failing.id), "--db", db_url],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and queue.get(failing.id).state == "queued"
    shown = subprocess.run([*CLI, "jobs", "show", str(failing.id), "--db", db_url, "--json"],
                           capture_output=True, text=True, timeout=60)
    trail = json.loads(shown.stdout)
    assert [(e["from_state"], e["to_state"]) for e in trail["events"]] == [
        (None, "queued"), ("queued", "running"), ("running", "failed"), ("failed", "queued")]
    assert trail["errors"][0]["error"] == "unsupported input"


def test_the_real_pipeline_runs_as_an_enqueued_job(shop_repo: Path, tmp_path: Path) -> None:
    db = str(tmp_path / "db")
    proc = subprocess.run([*CLI, "enqueue", str(shop_repo), "--db", db, "--json"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    job_id = json.loads(proc.stdout)["id"]
    proc = subprocess.run([*CLI, "worker", "--db", db, "--burst", "--no-vectors", "--json"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["outcomes"] == {"completed": 1}
    shown = json.loads(subprocess.run([*CLI, "jobs", "show", str(job_id), "--db", db, "--json"],
                                      capture_output=True, text=True, timeout=60).stdout)
    assert shown["state"] == "completed" and shown["result"]["files_indexed"] == 5
    assert shown["result"]["snapshot"] == shown["snapshot"]  # enqueue keyed the job by the manifest
    listing = subprocess.run([*CLI, "jobs", "--db", db], capture_output=True, text=True, timeout=60)
    assert listing.returncode == 0 and "completed" in listing.stdout
    human = subprocess.run([*CLI, "jobs", "show", str(job_id), "--db", db], capture_output=True,
                           text=True, timeout=60)
    assert human.returncode == 0 and "running -> completed" in human.stdout
    hits = subprocess.run([*CLI, "search", "total_price", "--db", db, "--json"],
                          capture_output=True, text=True, timeout=60)
    assert json.loads(hits.stdout)["hits"][0]["path"] == "shop/pricing.py"
