"""Runs of one repository never race (issue 14, point 3): the per-repository lock on both
stores, the newest enqueued revision staying the latest snapshot when two workers finish out of
order, and two processes reading one SQLite store while it is updated."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from codegraph.queue import enqueue_path, open_queue
from codegraph.queue.run import JobRun
from conftest import write_tree

CLI = [sys.executable, "-m", "codegraph.cli"]


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
                          check=True, capture_output=True, text=True).stdout.strip()


def test_one_run_of_a_repository_at_a_time_and_a_dead_holder_frees_the_lock(store_url: str) -> None:
    queue = open_queue(store_url)
    first = JobRun(queue, queue.start("/repo", "w1", 30.0), 30.0, store_url)
    second = JobRun(queue, queue.start("/repo", "w2", 30.0), 30.0, store_url)
    other = JobRun(queue, queue.start("/other", "w3", 30.0), 30.0, store_url)
    waited: list[int] = []
    order: list[str] = []
    with first.repo_lock("/repo") as held:
        assert held
        with other.repo_lock("/other") as other_held:  # another repository is not held up
            assert other_held

        def contender() -> None:
            with second.repo_lock("/repo", on_wait=waited.append) as got:
                order.append(f"second {got}")

        thread = threading.Thread(target=contender)
        thread.start()
        time.sleep(0.5)
        assert order == [] and waited == [first.job.id]
        order.append("first done")
    thread.join(10)
    assert order == ["first done", "second True"]
    # A holder that died (no heartbeat, never released) holds the lock only until its lease ends.
    dead = JobRun(queue, queue.start("/repo", "w4", 0.5), 0.5, store_url)
    with dead.repo_lock("/repo") as held:
        assert held
        late = JobRun(queue, queue.start("/repo", "w5", 30.0), 30.0, store_url)
        t0 = time.monotonic()
        with late.repo_lock("/repo") as got:
            assert got and 0.2 < time.monotonic() - t0 < 5
    # A cancelled waiter gives up without holding anything.
    with late.repo_lock("/repo"):
        quitter = JobRun(queue, queue.start("/repo", "w6", 30.0), 30.0, store_url)
        threading.Timer(0.3, quitter.cancel.set).start()
        with quitter.repo_lock("/repo") as got:
            assert not got


def test_a_sigkilled_direct_run_does_not_hold_the_lock_until_its_lease_ends(store_url: str) -> None:
    import socket

    from codegraph.queue.base import Lease

    queue = open_queue(store_url)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    dead = queue.start("/repo", f"cli-{socket.gethostname()}-{int(gone.stdout)}", 30.0)
    assert queue.lock_repo(Lease.of(dead, 30.0), "/repo") == dead.id
    run = JobRun(queue, queue.start("/repo", "w2", 30.0), 30.0, store_url)
    t0 = time.monotonic()
    with run.repo_lock("/repo") as got:
        assert got and time.monotonic() - t0 < 5  # not the 30 s of the dead run's lease
    after = queue.get(dead.id)
    assert after is not None and after.state == "cancelled"


def test_the_newest_enqueued_revision_stays_latest_when_workers_finish_out_of_order(
    store_url: str, tmp_path: Path
) -> None:
    import codegraph

    repo = write_tree(tmp_path / "repo", {"pkg/__init__.py": "",
                                          "pkg/a.py": "def old_name():\n    return 1\n"})
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "one")
    rev1 = _git(repo, "rev-parse", "HEAD")
    (repo / "pkg" / "a.py").write_text("def new_name():\n    return 2\n")
    _git(repo, "commit", "-qam", "two")
    rev2 = _git(repo, "rev-parse", "HEAD")
    queue = open_queue(store_url)
    older, _ = enqueue_path(queue, repo, rev1)
    newer, _ = enqueue_path(queue, repo, rev2)
    # The older revision's worker starts its run 4 s late: the newer one is indexed first.
    env = {**os.environ, "CODEGRAPH_SLOW_REV": rev1, "CODEGRAPH_SLOW_SECONDS": "4",
           "CODEGRAPH_CACHE": str(tmp_path / "cache")}
    workers = [subprocess.Popen([*CLI, "worker", "--db", store_url, "--burst", "--poll", "0.05",
                                 "--runner", "codegraph.queue.testing:slow_pipeline"],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
               for _ in range(2)]
    try:
        for w in workers:
            assert w.wait(timeout=120) == 0, w.stderr.read().decode() if w.stderr else ""
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
    a, b = queue.get(older.id), queue.get(newer.id)
    assert a is not None and b is not None and a.state == b.state == "completed"
    assert a.worker_id != b.worker_id  # two workers, one job each
    assert (a.finished_at or 0) > (b.finished_at or 0)  # the older revision's job finished last
    import json

    assert json.loads(a.result or "{}")["mode"] == "superseded"
    idx = codegraph.open(store_url)
    assert [r["name"] for r in idx.graph("defs", "new_name")] == ["new_name"]
    assert idx.graph("defs", "old_name") == []


@pytest.mark.slow
def test_two_processes_read_one_sqlite_store_while_it_is_updated(tmp_path: Path) -> None:
    files = {f"pkg/mod{i}.py": "".join(f"def fn_{i}_{j}(x):\n    return fn_{i}_{j - 1}(x) + {j}\n\n"
                                       for j in range(1, 60)) for i in range(50)}
    repo = write_tree(tmp_path / "repo", {"pkg/__init__.py": "", **files})
    db = str(tmp_path / "db")
    subprocess.run([*CLI, "index", str(repo), "--db", db, "--no-vectors", "--json"], check=True,
                   capture_output=True)
    reader = (
        "import sys, time, json\n"
        "from codegraph.tools import Tools\n"
        "t = Tools.open(sys.argv[1]); worst = 0.0; n = 0; end = time.monotonic() + float(sys.argv[2])\n"
        "while time.monotonic() < end:\n"
        "    t0 = time.perf_counter(); t.search('fn_3_7', limit=3); t.callers('fn_5_9')\n"
        "    worst = max(worst, time.perf_counter() - t0); n += 1\n"
        "print(json.dumps({'worst': worst, 'n': n}))\n"
    )
    readers = [subprocess.Popen([sys.executable, "-c", reader, db, "3"], stdout=subprocess.PIPE, text=True)
               for _ in range(2)]
    time.sleep(0.5)
    update = subprocess.run([*CLI, "index", str(repo), "--db", db, "--no-vectors", "--full", "--json"],
                            capture_output=True, text=True, timeout=120)
    assert update.returncode == 0, update.stderr
    import json

    for r in readers:
        out, _ = r.communicate(timeout=60)
        stats = json.loads(out)
        # Reads go on during the whole update (WAL): none waits for the writer's transactions.
        assert stats["n"] >= 10 and stats["worst"] < 2.0, stats
