"""No process outlives its owner: SIGKILL of the owning process only (not its group) — during
the scan, inside L1's parse pool, inside resolution in the workers, inside L2, inside L4, and a
`codegraph worker` mid-job — leaves no process of the run behind within 2 s, none holding the
store's files open and none writing to it; the next run (or the worker that rescues the job)
then ends exactly as an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from test_resume import CLI, corpus, count_rows, export, finish, last_job_id, query, stage_of_last_job

from conftest import SHOP, write_tree

MARK = "CODEGRAPH_TEST_RUN"  # in the owner's environment, so in every process it starts
PACKAGES = ("json", "http", "email", "xml")  # > 64 files: parsing and resolution in the pool
GONE_WITHIN = 2.0


def run_processes(mark: str) -> list[int]:
    """Every live process whose environment carries `mark` (zombies have no environment)."""
    needle = f"{MARK}={mark}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/environ", "rb") as f:
                    if needle in f.read().split(b"\0"):
                        found.append(int(entry))
            except OSError:
                pass
    return found


def holders(store: Path) -> list[int]:
    """Processes other than this one with a file of the store open."""
    prefix = str(store.resolve())
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                fds = os.listdir(f"/proc/{entry}/fd")
            except OSError:
                continue
            for fd in fds:
                try:
                    if os.readlink(f"/proc/{entry}/fd/{fd}").startswith(prefix):
                        found.append(int(entry))
                        break
                except OSError:
                    pass
    return found


def store_state(store: Path) -> list[tuple[str, int, int]]:
    return sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in store.glob("index.sqlite*"))


def spawn(mark: str, *args: str) -> subprocess.Popen[str]:
    """The owner in a session of its own, as test_resume starts it; killed below by pid only."""
    return subprocess.Popen([*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env={**os.environ, MARK: mark})


def kill_owner_when(proc: subprocess.Popen[str], store: Path, mark: str, ready: Callable[[], bool],
                    what: str, timeout: float = 120.0) -> None:
    """SIGKILL only `proc` once `ready()`; then every process of its run is gone within 2 s, and
    nothing held the store open or wrote to it after the owner died."""
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, f"the run ended before {what}"
        assert time.monotonic() < deadline, f"never got to {what}"
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    died = time.monotonic()
    at_death = store_state(store)
    while run_processes(mark) and time.monotonic() - died < GONE_WITHIN:
        time.sleep(0.02)
    assert run_processes(mark) == [], f"left behind after a kill {what}"
    assert holders(store) == []
    assert store_state(store) == at_death  # nobody wrote after the owner died


def started(db: Path, after: int) -> bool:
    return last_job_id(db) > after


def in_stage(db: Path, after: int, *stages: str) -> Callable[[], bool]:
    return lambda: started(db, after) and stage_of_last_job(db, after) in stages


def test_the_processes_of_a_killed_run_end_with_it_and_the_next_run_resumes(tmp_path: Path) -> None:
    src = corpus(tmp_path / "src", PACKAGES)
    reference_db, db = tmp_path / "reference", tmp_path / "killed"
    reference = finish(src, reference_db, "--no-vectors")
    n_files = reference["files_indexed"]

    def pool_parsing(after: int) -> Callable[[], bool]:  # L1's workers parsing, not all stored
        mark_procs = lambda: len(run_processes(mark))  # noqa: E731
        return lambda: started(db, after) and 0 < count_rows(db, "ir_outputs") < n_files and mark_procs() >= 5

    def resolving(after: int) -> Callable[[], bool]:  # the owner writing resolutions from workers
        snapshot = f"(SELECT max(id) FROM snapshots WHERE job_id > {after})"
        sql = (f"SELECT 1 FROM resolutions r JOIN snapshot_files f ON f.res_id = r.res_id "
               f"WHERE f.snapshot_id = {snapshot} LIMIT 1")
        return lambda: started(db, after) and bool(query(db, sql))

    points: list[tuple[str, Callable[[int], Callable[[], bool]]]] = [
        ("during the scan", lambda after: lambda: started(db, after) and not stage_of_last_job(db, after)),
        ("inside L1's pool", pool_parsing),
        ("inside resolution in the workers", resolving),
        # L2 and L3 run side by side after L1 (both cut L1's units); the job names the later started.
        ("inside L2", lambda after: in_stage(db, after, "L2_chunk", "L3_lexical")),
    ]
    for what, ready in points:
        mark = uuid.uuid4().hex
        after = last_job_id(db)
        proc = spawn(mark, "index", str(src), "--db", str(db), "--json", "--no-vectors", "--full")
        kill_owner_when(proc, db, mark, ready(after), what)
    resumed = finish(src, db, "--no-vectors")
    assert resumed["state"] == "completed"
    assert export(db) == export(reference_db)


def test_a_run_killed_inside_l4_leaves_nothing_and_resumes(tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", SHOP)
    reference_db, db = tmp_path / "reference", tmp_path / "killed"
    finish(src, reference_db, "--no-vectors")  # the export holds no vectors: the same graph and chunks
    mark = uuid.uuid4().hex
    proc = spawn(mark, "index", str(src), "--db", str(db), "--json", "--workers", "2")
    kill_owner_when(proc, db, mark, in_stage(db, 0, "L4_vector"), "inside L4", timeout=300)
    resumed = finish(src, db)
    assert resumed["state"] == "completed" and resumed["vectors"] == resumed["chunks"]
    # The reference is built without the (slow) model: everything but the vectors equals it, and
    # every chunk has its vector (test_resume's slow test compares the vectors themselves).
    rows = [json.loads(line) for line in export(db).splitlines()]
    reference_rows = [json.loads(line) for line in export(reference_db).splitlines()]
    assert [r for r in rows if r[0] != "vector"] == reference_rows
    chunks = {(r[1], r[2]) for r in rows if r[0] == "chunk"}
    assert {(r[1], r[2]) for r in rows if r[0] == "vector"} == chunks and chunks


def test_a_killed_worker_leaves_no_process_and_its_job_is_rescued(tmp_path: Path) -> None:
    src = corpus(tmp_path / "src", PACKAGES[:3])
    reference_db, db = tmp_path / "reference", tmp_path / "queue"
    finish(src, reference_db, "--no-vectors")
    enqueued = subprocess.run([*CLI, "enqueue", str(src), "--db", str(db), "--json"], capture_output=True,
                              text=True, timeout=120)
    assert enqueued.returncode == 0, enqueued.stderr
    job_id = json.loads(enqueued.stdout)["id"]
    mark = uuid.uuid4().hex
    worker = spawn(mark, "worker", "--db", str(db), "--no-vectors", "--lease", "1", "--burst")
    # Mid-job, with its pool of parsers running (worker + tracker + forkserver + 2 workers).
    kill_owner_when(worker, db, mark, lambda: bool(stage_of_last_job(db)) and len(run_processes(mark)) >= 5,
                    "inside a worker's job")
    time.sleep(1.2)  # the dead worker's lease runs out
    rescuer = subprocess.run([*CLI, "worker", "--db", str(db), "--no-vectors", "--lease", "1", "--burst",
                              "--backoff", "0.1"],
                             capture_output=True, text=True, timeout=300)
    assert rescuer.returncode == 0, rescuer.stderr
    assert f"rescued job {job_id}" in rescuer.stderr
    state = query(db, f"SELECT state, attempt FROM jobs WHERE id = {job_id}")
    assert state == [("completed", 2)]
    assert export(db) == export(reference_db)


OWNER_SCRIPT = """
import os, sys, threading, time
from codegraph import procs

pools = []

def start_pool():  # the thread that starts the forkserver ends at once: the pool must live on
    pools.append(procs.process_pool(2))
    pools[0].submit(time.sleep, 0).result()

thread = threading.Thread(target=start_pool)
thread.start()
thread.join()
time.sleep(0.3)
child = threading.Thread(target=procs.run, args=(["sleep", "60"],), daemon=True)
child.start()
print(pools[0].submit(os.getpid).result(), flush=True)
time.sleep(60)
"""


def test_the_mechanism_outlives_the_thread_that_started_it_and_covers_subprocesses(tmp_path: Path) -> None:
    mark = uuid.uuid4().hex
    proc = subprocess.Popen([CLI[0], "-c", OWNER_SCRIPT], stdout=subprocess.PIPE, text=True,
                            start_new_session=True, env={**os.environ, MARK: mark})
    assert proc.stdout is not None
    worker = int(proc.stdout.readline())  # a pool worker answered after its starter thread ended
    deadline = time.monotonic() + 30
    while not any(_cmdline(pid).startswith("sleep") for pid in run_processes(mark)):
        assert time.monotonic() < deadline, "the subprocess never started"
        time.sleep(0.02)
    assert worker in run_processes(mark)
    kill_owner_when(proc, tmp_path, mark, lambda: True, "with a subprocess running")


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode()
    except OSError:
        return ""
