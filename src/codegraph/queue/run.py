"""A claimed job while it runs: its lease, the heartbeat that renews it, and the cancel event the
pipeline obeys.

The job stops (its cancel event is set) for one of three reasons, kept in `stop_reason`:
- "lease_lost": a fenced write did not take effect, or no heartbeat succeeded for a whole lease
  — another worker may own the job now, so this one must not go on;
- "cancel_requested": an operator ran `jobs cancel`; seen by a heartbeat or a stage write;
- "shutdown": the worker got SIGTERM and its grace period ran out.
`finish` turns the outcome into exactly one fenced transition.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from codegraph.jobs import Job, RetryPolicy, classify, describe
from codegraph.queue.base import Fenced, JobQueue, Lease


class JobRun:
    def __init__(self, queue: JobQueue, job: Job, lease_seconds: float, db: str,
                 policy: RetryPolicy | None = None) -> None:
        self.queue, self.job, self.db = queue, job, db
        self.lease = Lease.of(job, lease_seconds)
        self.policy = policy or RetryPolicy()
        self.cancel = threading.Event()
        self.stop_reason: str | None = None
        self.outcome: str | None = None  # the state `finish` wrote, or "lost"
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._valid_until = time.monotonic() + lease_seconds
        self._heartbeat: threading.Thread | None = None

    @property
    def finished(self) -> bool:
        return self.outcome is not None

    # ----- while running ---------------------------------------------------------------------

    def start_heartbeat(self) -> JobRun:
        # lease/3: two heartbeats may fail (a slow database, a GC pause) before the lease ends.
        interval = self.lease.seconds / 3

        def beat() -> None:
            while not self._closed.wait(interval):
                self._observe(lambda: self.queue.heartbeat(self.lease))

        self._heartbeat = threading.Thread(target=beat, name=f"heartbeat-{self.job.id}", daemon=True)
        self._heartbeat.start()
        return self

    def stage(self, name: str | None) -> bool:
        """Record stage progress (fenced); False when the job must stop."""
        return self._observe(lambda: self.queue.set_stage(self.lease, name))

    def _observe(self, write: Any) -> bool:
        sent = time.monotonic()
        try:
            result: Fenced = write()
        except Exception:
            # The database is unreachable: keep going while the lease may still be ours, stop
            # once it surely is not (someone may have rescued the job by now).
            if time.monotonic() > self._valid_until:
                self.stop("lease_lost")
            return not self.cancel.is_set()
        if not result.ok:
            self.stop("lease_lost")
        else:
            self._valid_until = sent + self.lease.seconds
            if result.cancel_requested:
                self.stop("cancel_requested")
        return result.ok and not result.cancel_requested

    def set_snapshot(self, key: str) -> None:
        """Best effort: the key only makes enqueues of this snapshot find this run."""
        if self.job.snapshot is None:
            # Metadata only: on a database error the run goes on; its next fenced write decides.
            with contextlib.suppress(Exception):
                self.queue.set_snapshot(self.lease, key)

    @contextlib.contextmanager
    def repo_lock(self, repo: str, on_wait: Callable[[int], None] | None = None,
                  poll: float = 0.05) -> Iterator[bool]:
        """Hold the repository's run lock (`JobQueue.lock_repo`) for the body: runs of one
        repository — watch updates, `codegraph index`, workers' jobs — go one at a time. Waits
        (polling, up to `poll` x 10 apart) while another job holds it, calling `on_wait(holder)`
        once; yields False, holding nothing, when this run must stop (lease lost, cancelled)."""
        waited, delay = False, poll
        while True:
            try:
                holder = self.queue.lock_repo(self.lease, repo)
            except Exception:  # the database is unreachable: keep trying while the lease may be ours
                holder = -1
                if time.monotonic() > self._valid_until:
                    self.stop("lease_lost")
            if holder is None:
                self.stop("lease_lost")
            if holder == self.job.id or self.cancel.is_set():
                break
            if holder and holder > 0 and self._end_if_dead(holder):
                continue
            if not waited and on_wait is not None and holder and holder > 0:
                on_wait(holder)
            waited = True
            self.cancel.wait(delay)
            delay = min(delay * 1.5, poll * 10)
        held = holder == self.job.id and not self.cancel.is_set()
        try:
            yield held
        finally:
            if holder == self.job.id:
                with contextlib.suppress(Exception):  # else it ends with this job's lease
                    self.queue.unlock_repo(self.lease, repo)

    def _end_if_dead(self, holder: int) -> bool:
        """A direct run (`codegraph index`, a watch update) of this machine whose process is gone
        (SIGKILLed) holds the lock until its lease ends; cancel it now instead (fenced by its
        lease token, like its own Ctrl-C would). Workers' jobs are left to the rescue sweep:
        they must run again. True when the holder was ended."""
        import os
        import socket

        with contextlib.suppress(Exception):
            job = self.queue.get(holder)
            prefix = f"cli-{socket.gethostname()}-"
            if job is None or job.state != "running" or not (job.worker_id or "").startswith(prefix):
                return False
            pid = int((job.worker_id or "")[len(prefix):])
            if pid == os.getpid():
                return False
            try:
                os.kill(pid, 0)
                return False
            except ProcessLookupError:
                return self.queue.acknowledge_cancel(Lease.of(job, self.lease.seconds),
                                                     "its process is gone")
            except PermissionError:
                return False
        return False

    def stop(self, reason: str) -> None:
        with self._lock:
            if self.stop_reason is None:
                self.stop_reason = reason
        self.cancel.set()

    # ----- the end ---------------------------------------------------------------------------

    def complete(self, result: dict[str, Any] | None = None) -> bool:
        with self._lock:
            if self.outcome is not None:
                return self.outcome == "completed"
            ok = self.queue.complete(self.lease, _json(result))
            self.outcome = "completed" if ok else "lost"
            return ok

    def finish(self, result: dict[str, Any] | None, error: BaseException | None) -> str:
        """The one transition that ends this run: completed when the work is done (even if a stop
        came too late to matter), else released, cancelled or failed by `stop_reason` and the
        error's class. Fenced: "lost" when the lease was no longer ours."""
        if error is None:
            self.complete(result)
            return self.outcome or "lost"
        with self._lock:
            if self.outcome is not None:
                return self.outcome
            reason = self.stop_reason
            if reason == "shutdown":
                ok, state = self.queue.release(self.lease, "worker shutting down"), "queued"
            elif reason == "cancel_requested":
                ok, state = self.queue.acknowledge_cancel(self.lease, "cancelled by request"), "cancelled"
            elif reason == "lease_lost":
                ok, state = False, "lost"
            else:
                error_class = classify(error)
                new_state = self.queue.fail(self.lease, describe(error), error_class, self.policy,
                                            _json(result))
                ok, state = new_state is not None, new_state or "lost"
            self.outcome = state if ok else "lost"
            return self.outcome

    def release_now(self, reason: str) -> bool:
        """Give the job back at once (grace period over); later writes of this run are fenced."""
        self.stop("shutdown")
        with self._lock:
            if self.outcome is not None:
                return False
            ok = self.queue.release(self.lease, reason)
            self.outcome = "queued" if ok else "lost"
            return ok

    def interrupted(self, detail: str) -> None:
        """Ctrl-C in a direct run: the user cancelled it."""
        with self._lock:
            if self.outcome is None:
                ok = self.queue.acknowledge_cancel(self.lease, detail)
                self.outcome = "cancelled" if ok else "lost"

    def close(self) -> None:
        self._closed.set()
        if self._heartbeat is not None and self._heartbeat is not threading.current_thread():
            self._heartbeat.join(timeout=5)


def _json(value: dict[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True)


__all__ = ["JobRun"]
