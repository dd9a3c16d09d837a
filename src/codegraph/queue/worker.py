"""The worker: claim jobs, run them under a heartbeat-renewed lease, sweep expired leases.

One process runs up to `concurrency` jobs on threads (a pipeline run parallelises inside itself
with its own process pool). The main thread owns claiming, the rescue sweep and shutdown:
SIGTERM (or Ctrl-C) stops claiming; running jobs get `grace` seconds to finish, then each is
released — back to queued without spending an attempt — and its later writes are fenced off.
"""

from __future__ import annotations

import importlib
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codegraph.errors import UserError
from codegraph.jobs import Job, RetryPolicy
from codegraph.queue.base import DEFAULT_LEASE_SECONDS, JobQueue, Lease
from codegraph.queue.run import JobRun

Runner = Callable[[JobRun], dict[str, Any] | None]


def pipeline_runner(vectors: bool = True, workers: int = 2, cache: str | Path | None = None,
                    model: str | None = None, embed_runtime: str = "auto",
                    quantisation: str | None = None) -> Runner:
    """The real thing: index the job's repository into the store at the worker's --db, embedding
    with `model` (None: the bundled one), `embed_runtime` and `quantisation` as `index` does.
    Those are checked here, once: a bad one raises `UserError` before any job is claimed.

    A local directory without a rev is indexed as it is. A URL, or a local git repository at a
    rev, is fetched into this worker's git cache (`cache`, default `source.default_cache_dir()`)
    and the commit's tree is indexed from a checkout of its own; either way snapshots are
    recorded under the repository's identity, so any worker continues from any other's."""

    import dataclasses
    import json

    from codegraph.embed import DEFAULT_QUANTISATION, MODEL_NAME
    from codegraph.pipeline import IndexOptions
    from codegraph.stages import IndexConfig

    config = IndexConfig(vectors=vectors, workers=workers, model_name=model or MODEL_NAME,
                         embed_runtime=embed_runtime, quantisation=quantisation or DEFAULT_QUANTISATION)
    if vectors:
        config.producer()  # the same checks `index` makes (a model directory is hashed once)

    def run(job: JobRun) -> dict[str, Any]:
        from codegraph.pipeline import index
        from codegraph.source import GitCache, parse_source

        # What the enqueuer chose (`enqueue --model …`, `queue.run_options`) wins over the
        # worker's own flags; a job without options runs with the worker's.
        chosen = json.loads(job.job.options) if job.job.options else {}
        names = {"model": "model_name", "embed_runtime": "embed_runtime", "quantize": "quantisation"}
        options = IndexOptions(dataclasses.replace(config, **{names[k]: v for k, v in chosen.items()
                                                              if k in names}))
        source = parse_source(job.job.repo)
        if not source.is_url and job.job.rev is None:
            return index(source.location, job.db, options, job=job)
        with GitCache(cache).checkout(source, job.job.rev) as checkout:
            return index(checkout.path, job.db, options, job=job, repo=source.identity,
                         commit=checkout.commit)

    return run


def load_runner(spec: str) -> Runner:
    """`module:function` — for tests and benchmarks (a no-op pipeline)."""
    module_name, _, attr = spec.partition(":")
    try:
        runner = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise UserError(f"cannot load runner {spec!r}: {exc}") from exc
    if not callable(runner):
        raise UserError(f"runner {spec!r} is not callable")
    return runner  # type: ignore[no-any-return]


@dataclass
class WorkerConfig:
    db: str
    concurrency: int = 1
    burst: bool = False
    lease: float = DEFAULT_LEASE_SECONDS
    grace: float = 10.0
    poll: float = 1.0
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    worker_id: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")

    @property
    def sweep_interval(self) -> float:
        # A dead worker's job is rescued within lease + sweep_interval of its last heartbeat.
        return max(0.05, min(self.lease / 4, 5.0))


@dataclass
class WorkerStats:
    claimed: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    rescued: int = 0
    abandoned: int = 0  # runs still winding down at exit (their jobs were released, fenced off)


class Worker:
    def __init__(self, queue: JobQueue, runner: Runner, config: WorkerConfig,
                 log: Callable[[str], None] | None = None, handle_signals: bool = False) -> None:
        self.queue, self.runner, self.config = queue, runner, config
        self.handle_signals = handle_signals
        self.stopping = threading.Event()
        self.stats = WorkerStats()
        self._log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        self._active: dict[int, tuple[JobRun | None, threading.Thread]] = {}
        self._lock = threading.Lock()
        self._slot_free = threading.Event()

    def log(self, message: str) -> None:
        self._log(f"worker {self.config.worker_id}: {message}")

    def request_stop(self, *_: Any) -> None:
        self.stopping.set()
        self._slot_free.set()

    def run(self) -> WorkerStats:
        if self.handle_signals:
            signal.signal(signal.SIGTERM, self.request_stop)
            signal.signal(signal.SIGINT, self.request_stop)
        try:  # subscribe (PostgreSQL: LISTEN) before the first claim, so no wake-up is missed
            self.queue.wait_for_work(0)
        except Exception as exc:
            self.log(f"queue error: {type(exc).__name__}: {exc}".strip())
        self.log(f"started (concurrency {self.config.concurrency}, lease {self.config.lease:g}s)")
        last_sweep = 0.0
        while not self.stopping.is_set():
            try:
                if time.monotonic() - last_sweep >= self.config.sweep_interval:
                    last_sweep = time.monotonic()
                    self._sweep()
                if self._running() >= self.config.concurrency:
                    self._slot_free.wait(self.config.poll)
                    self._slot_free.clear()
                    continue
                job = self.queue.claim(self.config.worker_id, self.config.lease)
                if job is not None and self.stopping.is_set():  # SIGTERM came during the claim
                    self.queue.release(Lease.of(job, self.config.lease), "worker shutting down")
                    break
                if job is not None:
                    self._start(job)
                    continue
                if self.config.burst and self._running() == 0 and self.queue.pending() == 0:
                    break
                self.queue.wait_for_work(self.config.poll)
            except Exception as exc:  # the database went away: keep trying, never crash the loop
                self.log(f"queue error: {type(exc).__name__}: {exc}".strip())
                self.stopping.wait(self.config.poll)
        self._shutdown()
        return self.stats

    def _sweep(self) -> None:
        for job in self.queue.rescue_expired(self.config.policy):
            self.stats.rescued += 1
            self.log(f"rescued job {job.id} (lease expired): now {job.state}")

    def _running(self) -> int:
        with self._lock:
            return len(self._active)

    def _start(self, job: Job) -> None:
        self.stats.claimed += 1
        self.log(f"claimed job {job.id} (attempt {job.attempt}/{job.max_attempts}, "
                 f"lease token {job.lease_token})")
        thread = threading.Thread(target=self._execute, args=(job,), name=f"job-{job.id}", daemon=True)
        with self._lock:
            self._active[job.id] = (None, thread)
        thread.start()

    def _execute(self, job: Job) -> None:
        run = JobRun(self.queue, job, self.config.lease, self.config.db, self.config.policy)
        with self._lock:
            self._active[job.id] = (run, self._active[job.id][1])
        run.start_heartbeat()
        try:
            value = self.runner(run)
            outcome = run.finish(value if isinstance(value, dict) else None, None)
        except BaseException as exc:  # whatever the runner raised ends as one fenced transition
            outcome = run.finish(None, exc)
        finally:
            run.close()
            with self._lock:  # the slot is free now, not when the thread object is gone
                self._active.pop(job.id, None)
            self._slot_free.set()
        with self._lock:
            self.stats.outcomes[outcome] = self.stats.outcomes.get(outcome, 0) + 1
        reason = f" ({run.stop_reason})" if run.stop_reason else ""
        self.log(f"job {job.id} {outcome}{reason}")

    def _shutdown(self) -> None:
        deadline = time.monotonic() + self.config.grace
        with self._lock:
            active = list(self._active.values())
        if active:
            self.log(f"stopping: {len(active)} running job(s) get {self.config.grace:g}s to finish")
        for _, thread in active:
            thread.join(max(0.0, deadline - time.monotonic()))
        for run, thread in active:
            if thread.is_alive() and run is not None:
                released = run.release_now("worker shutting down, grace period over")
                self.log(f"job {run.job.id} {'released' if released else 'lost'}")
        for _, thread in active:
            thread.join(1.0)  # a stage between two batches notices the cancel event quickly
        self.stats.abandoned = sum(thread.is_alive() for _, thread in active)
        self.log("stopped")
