"""The job queue on PostgreSQL with a no-op pipeline: claim -> complete throughput with 1, 2 and 4
worker processes, and the time from a worker's SIGKILL to its job's rescue.

    PYTHONPATH=src .venv/bin/python bench/bench_queue.py [--jobs 500] [--lease 2] [--trials 3]

Creates a scratch database (codegraph_qbench_<random>) on 127.0.0.1:5432 and drops it after.
Throughput counts from the first claim to the last completion (database timestamps), so worker
start-up is not included; every job is a full cycle: claim (+ event), heartbeat thread, complete
(+ event).
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

from codegraph.queue import JobQueue, open_queue

sys.path.insert(0, str(Path(__file__).parent))
from bench_pg import ADMIN, scratch_database  # one scratch-database helper for the benches

CLI = [sys.executable, "-m", "codegraph.cli"]


def worker(url: str, log: Path, *args: str, **env: str) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [*CLI, "worker", "--db", url, "--runner", "codegraph.queue.testing:noop", "--poll", "0.05",
             *args], stdout=out, stderr=out, env={**os.environ, **env}, start_new_session=True)


def wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.01)


def throughput(url: str, n_workers: int, n_jobs: int, tmp: Path) -> tuple[float, float, float]:
    queue = open_queue(url)
    tag = f"w{n_workers}-{secrets.token_hex(2)}"
    ids = [queue.enqueue("/bench", f"rev:{tag}:{i}", rev=str(i))[0].id for i in range(n_jobs)]
    procs = [worker(url, tmp / f"tp-{tag}.log", "--burst", "--lease", "30") for _ in range(n_workers)]
    for p in procs:
        if p.wait(timeout=600) != 0:
            raise SystemExit(f"worker failed: see {tmp}")
    with psycopg.connect(url) as conn:
        first, last, completed = conn.execute(
            "SELECT min(started_at), max(finished_at), count(*) FILTER (WHERE state = 'completed')"
            " FROM jobs WHERE id = ANY(%s)", (ids,)).fetchone()
        latencies = [r[0] for r in conn.execute(
            "SELECT finished_at - started_at FROM jobs WHERE id = ANY(%s)", (ids,))]
    assert completed == n_jobs, f"{completed} of {n_jobs} completed"
    queue.close()
    return n_jobs / (last - first), statistics.median(latencies) * 1000, max(latencies) * 1000


def rescue_times(url: str, lease: float, trials: int, tmp: Path) -> list[tuple[float, float]]:
    queue: JobQueue = open_queue(url)
    results = []
    for trial in range(trials):
        job = queue.enqueue("/bench", f"rev:rescue-{secrets.token_hex(4)}")[0]
        victim = worker(url, tmp / f"victim-{trial}.log", "--lease", str(lease),
                        CODEGRAPH_NOOP_SECONDS="600")
        wait_for(lambda: queue.get(job.id).state == "running", 60, "the victim's claim")  # noqa: B023
        # The rescuer starts only now, so that it cannot take the job first; it idles, sweeping.
        log = tmp / f"rescuer-{trial}.log"
        rescuer = worker(url, log, "--lease", str(lease))
        wait_for(lambda: log.exists() and "started" in log.read_text(), 60, "the rescuer")  # noqa: B023
        killed_at = time.time()
        os.killpg(victim.pid, signal.SIGKILL)
        victim.wait()
        wait_for(lambda: queue.get(job.id).state == "completed", 120, "rescue and completion")  # noqa: B023
        events = queue.events(job.id)
        rescued = next(e.at for e in events if (e.detail or "").startswith("rescued"))
        completed = next(e.at for e in events if e.to_state == "completed")
        results.append((rescued - killed_at, completed - killed_at))
        os.killpg(rescuer.pid, signal.SIGTERM)
        rescuer.wait(timeout=60)
    queue.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--lease", type=float, default=2.0)
    parser.add_argument("--trials", type=int, default=3)
    args = parser.parse_args()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"PostgreSQL {ADMIN.rsplit('@', 1)[1].split('/')[0]}, no-op runner, {os.cpu_count()} CPUs "
          f"(load average {load}), {args.jobs} jobs per row")
    with scratch_database() as url, tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        open_queue(url).close()  # create the tables before the workers race to
        print(f"\n{'workers':>7}  {'jobs/s':>8}  {'claim->complete p50 ms':>22}  {'max ms':>8}")
        for n in (int(x) for x in args.workers.split(",")):
            rate, p50, worst = throughput(url, n, args.jobs, tmp)
            print(f"{n:>7}  {rate:>8.0f}  {p50:>22.1f}  {worst:>8.1f}", flush=True)
        sweep = max(0.05, min(args.lease / 4, 5.0))
        print(f"\nSIGKILL -> rescue, lease {args.lease:g} s (heartbeat every {args.lease / 3:.2f} s, "
              f"sweep every {sweep:.2f} s; bound: lease + sweep = {args.lease + sweep:.2f} s)")
        print(f"{'trial':>5}  {'kill->rescued s':>15}  {'kill->completed elsewhere s':>27}")
        times = rescue_times(url, args.lease, args.trials, tmp)
        for i, (rescued, completed) in enumerate(times, 1):
            print(f"{i:>5}  {rescued:>15.2f}  {completed:>27.2f}")
        print(f"{'max':>5}  {max(r for r, _ in times):>15.2f}  {max(c for _, c in times):>27.2f}")
        print("(completed elsewhere = rescued + the retry backoff, 1-2 s at the default base of 2 s,"
              " + one claim and run)")


if __name__ == "__main__":
    main()
