"""Runners for tests and benchmarks: a pipeline that does nothing, quickly or slowly.

Configured by environment variables because the worker runs in its own process:
- CODEGRAPH_NOOP_SECONDS: how long a run takes (default 0), in small sleeps;
- CODEGRAPH_NOOP_STUBBORN=1: ignore the cancel event (a worker that never checks), so a late
  `complete` can be observed being fenced off;
- CODEGRAPH_LEDGER: a file that gets one line "job token worker completed|stale" per attempt
  to complete — the test's independent record of who completed what.
"""

from __future__ import annotations

import os
import time
from typing import Any

from codegraph.dag import StageCancelled
from codegraph.jobs import InfrastructureJobError, PermanentJobError, TransientJobError
from codegraph.queue.run import JobRun


def noop(run: JobRun) -> dict[str, Any]:
    seconds = float(os.environ.get("CODEGRAPH_NOOP_SECONDS", "0"))
    stubborn = os.environ.get("CODEGRAPH_NOOP_STUBBORN") == "1"
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if run.cancel.is_set() and not stubborn:
            raise StageCancelled(f"stopped: {run.stop_reason}")
        time.sleep(min(0.02, max(0.0, deadline - time.monotonic())))
    result = {"noop": True, "worker": run.lease.worker_id}
    ok = run.complete(result)
    ledger = os.environ.get("CODEGRAPH_LEDGER")
    if ledger:
        line = f"{run.job.id} {run.lease.token} {run.lease.worker_id} {'completed' if ok else 'stale'}\n"
        fd = os.open(ledger, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())  # one write with O_APPEND: lines never interleave
        finally:
            os.close(fd)
    return result


def by_rev(run: JobRun) -> dict[str, Any] | None:
    """The job's rev names the runner: "transient", "permanent", "disk_full", else `noop`."""
    chosen = {"transient": transient, "permanent": permanent, "disk_full": disk_full}.get(run.job.rev or "")
    return (chosen or noop)(run)


def transient(run: JobRun) -> dict[str, Any]:
    raise TransientJobError("the database went away")


def permanent(run: JobRun) -> dict[str, Any]:
    raise PermanentJobError("unsupported input")


def disk_full(run: JobRun) -> dict[str, Any]:
    raise OSError(28, "No space left on device")


__all__ = ["InfrastructureJobError", "by_rev", "disk_full", "noop", "permanent", "transient"]


def slow_pipeline(run: JobRun) -> dict[str, Any] | None:
    """The real pipeline (no vectors), started late for the job whose rev is CODEGRAPH_SLOW_REV
    (by CODEGRAPH_SLOW_SECONDS): lets a test make workers finish in the order it wants."""
    from codegraph.queue.worker import pipeline_runner

    if run.job.rev is not None and run.job.rev == os.environ.get("CODEGRAPH_SLOW_REV"):
        run.cancel.wait(float(os.environ.get("CODEGRAPH_SLOW_SECONDS", "0")))
    return pipeline_runner(vectors=False, workers=1)(run)
