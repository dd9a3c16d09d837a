"""The standard library (.py files, no vectors) indexed by queue workers into SQLite, into
PostgreSQL with 1 worker process and into PostgreSQL with 2 worker processes, in one run.

    PYTHONPATH=src .venv/bin/python bench/bench_pg.py [--fraction 1] [--workers 2]

How the work is split: a job is one repository snapshot, and one job runs on one worker (its
parsing fans out to the job's own `--workers` parser processes); two workers cannot share one
job. So the stdlib is copied as two repositories of about equal size (its top-level modules and
packages dealt out, largest first, to the smaller half), both are enqueued, and
- SQLite, 1 worker: one worker runs both jobs, one after the other;
- PostgreSQL, 1 worker: the same, against PostgreSQL;
- PostgreSQL, 2 workers: two worker processes, one job each, at the same time.
The halves are equal in files, not in bytes (the stdlib's `test/` is one top-level entry).
Every configuration starts from an empty store (full builds). The time is from the first job's
start to the last job's end (the queue's timestamps: worker start-up is not counted).

On one machine the two workers share its cores, so their ratio over one worker measures how
much of a job's time is waiting (the database, one transaction at a time per stage), not the
added cores two machines would bring. Creates a scratch database on 127.0.0.1:5432.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).parent))
from bench_index import copy_fraction

from codegraph.queue import enqueue_path, open_queue

ADMIN = os.environ.get("CODEGRAPH_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
CLI = [sys.executable, "-m", "codegraph.cli"]


@contextmanager
def scratch_database() -> Iterator[str]:
    name = f"codegraph_pgbench_{secrets.token_hex(4)}"
    with psycopg.connect(ADMIN, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield ADMIN.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def split_in_two(tree: Path, dest: Path) -> list[tuple[Path, int]]:
    """Deal the tree's top-level entries out to two repositories of about equal file counts."""
    sizes = {entry: (sum(1 for _ in entry.rglob("*.py")) if entry.is_dir() else 1)
             for entry in tree.iterdir()}
    halves: list[tuple[Path, list[Path]]] = [(dest / "stdlib-a", []), (dest / "stdlib-b", [])]
    counts = [0, 0]
    for entry in sorted(sizes, key=lambda e: (-sizes[e], e.name)):
        i = 0 if counts[0] <= counts[1] else 1
        halves[i][1].append(entry)
        counts[i] += sizes[entry]
    for (root, entries), _ in zip(halves, counts, strict=True):
        root.mkdir(parents=True)
        for entry in entries:
            shutil.move(str(entry), root / entry.name)
    return [(root, n) for (root, _), n in zip(halves, counts, strict=True)]


def run(db: str, repos: list[Path], n_workers: int, parsers: int, logs: Path) -> tuple[float, list[float]]:
    """Enqueue every repository, run `n_workers` worker processes until the queue is empty;
    (seconds from the first start to the last finish, each job's seconds)."""
    queue = open_queue(db)
    ids = [enqueue_path(queue, repo)[0].id for repo in repos]
    procs = []
    for i in range(n_workers):
        with open(logs / f"worker-{secrets.token_hex(3)}-{i}.log", "wb") as log:
            procs.append(subprocess.Popen(
                [*CLI, "worker", "--db", db, "--burst", "--no-vectors", "--workers", str(parsers),
                 "--poll", "0.05"], stdout=log, stderr=log))
    for proc in procs:
        if proc.wait(timeout=3600) != 0:
            raise SystemExit(f"a worker failed: see {logs}")
    jobs = [queue.get(i) for i in ids]
    queue.close()
    for job in jobs:
        assert job is not None and job.state == "completed", job
        assert job.started_at is not None and job.finished_at is not None
    span = max(j.finished_at or 0 for j in jobs) - min(j.started_at or 0 for j in jobs)  # type: ignore[union-attr]
    return span, [(j.finished_at or 0) - (j.started_at or 0) for j in jobs]  # type: ignore[union-attr]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fraction", type=float, default=1.0, help="of the stdlib's .py files")
    parser.add_argument("--workers", type=int, default=2, help="parser processes per job")
    args = parser.parse_args()
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        total = copy_fraction(stdlib, tmp / "copy", args.fraction)
        halves = split_in_two(tmp / "copy", tmp)
        repos = [root for root, _ in halves]
        logs = tmp / "logs"
        logs.mkdir()
        print(f"{total} files of {stdlib}, as two repositories: "
              + ", ".join(f"{root.name} {n} files" for root, n in halves))
        print(f"each job: --no-vectors, --workers {args.workers} parser processes; "
              f"this machine: {os.cpu_count()} cores, shared (load average {load[0]:.1f} at start)")
        rows = []
        span, jobs = run(str(tmp / "sqlite-db"), repos, 1, args.workers, logs)
        rows.append(("SQLite", 1, span, jobs))
        with scratch_database() as db:
            span, jobs = run(db, repos, 1, args.workers, logs)
            rows.append(("PostgreSQL", 1, span, jobs))
        with scratch_database() as db:
            span, jobs = run(db, repos, 2, args.workers, logs)
            rows.append(("PostgreSQL", 2, span, jobs))
    base = total / rows[0][2]
    print(f"{'store':<11} {'workers':>7} {'seconds':>8} {'files/s':>8} {'vs SQLite':>9}  job seconds")
    for store, workers, span, jobs in rows:
        rate = total / span
        print(f"{store:<11} {workers:>7} {span:>8.2f} {rate:>8.1f} {rate / base:>8.2f}x  "
              + ", ".join(f"{s:.2f}" for s in jobs))
    print(f"PostgreSQL 2 workers / 1 worker: {rows[1][2] / rows[2][2]:.2f}x the files/s")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
