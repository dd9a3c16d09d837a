"""`codegraph watch PATH…` (and `mcp --watch`, `serve --watch`): keep indexes up to date as
files change.

One thread per repository waits for file events (`watchfiles`, which coalesces a burst: it
yields once no new event came for `step` ms, or after `debounce` ms); one updater thread runs
an incremental `pipeline.index` per burst, repository after repository. A branch switch or a
`git pull` is a burst like any other — its files change — and the update indexes the new tree
(recording HEAD's commit); runs of one repository never overlap a manual `codegraph index` or a
worker's job (the queue's per-repository lock).

A save in the middle of an update is never lost: the changed paths a burst reports are moved
out of `pending` when the update starts, and any event after that lands in a fresh `pending`,
which makes the updater run again; the scan of the next update reads every file whose size or
mtime moved (and every file touched within 2 s of the previous scan). Deleted, recreated or
unreadable files are the scan's business (an unreadable file is reported, not fatal). A
repository moved away is reported (`problem`) and its last snapshot stays served; when the
directory comes back, it is watched and updated again. Every process an update starts (parser
pools, git) ends with this one (`codegraph.procs`).
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codegraph import procs
from codegraph.errors import UserError

IGNORED_DIRS = {".codegraph", "__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".venv",
                "node_modules"}
GIT_MARKERS = ("HEAD", "index", "ORIG_HEAD", "FETCH_HEAD", "packed-refs")


@dataclass
class RepoWatch:
    root: Path
    identity: str
    pending: set[str] = field(default_factory=set)  # relative paths changed since the last update began
    updating: bool = False
    problem: str | None = None
    last_result: dict[str, Any] | None = None
    updates: int = 0
    last_event_at: float = 0.0  # monotonic time of the newest event in `pending`
    last_indexed_at: float = 0.0  # monotonic time an update last completed


class Watcher:
    def __init__(self, paths: list[str], db: str | None = None, vectors: bool | None = None,
                 workers: int = 2, debounce_ms: int = 1000, step_ms: int = 50,
                 log: Callable[[str], None] | None = None,
                 on_update: Callable[[RepoWatch, dict[str, Any]], None] | None = None) -> None:
        if not paths:
            raise UserError("watch needs at least one directory")
        self.repos: list[RepoWatch] = []
        for p in paths:
            root = Path(p).expanduser()
            if not root.is_dir():
                raise UserError(f"not a directory: {p}")
            root = root.resolve()
            self.repos.append(RepoWatch(root, str(root)))
        self.db = db
        self.vectors, self.workers = vectors, workers
        self.debounce_ms, self.step_ms = debounce_ms, step_ms
        self._log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        self.on_update = on_update
        self.stop_event = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self.ready = threading.Event()  # set once every repository had its first update

    def log(self, message: str) -> None:
        self._log(f"watch: {message}")

    # ----- LiveState (what `tools.Tools` reports as freshness) -------------------------------

    def live_state(self, repo: str) -> dict[str, Any] | None:
        for r in self.repos:
            if r.identity == repo:
                with self._lock:
                    return {"pending": sorted(r.pending), "updating": r.updating, "problem": r.problem}
        return None

    # ----- running -----------------------------------------------------------------------------

    def start(self) -> Watcher:
        for repo in self.repos:
            with self._lock:
                repo.pending.add("")  # the first update: catch up with whatever changed meanwhile
            t = threading.Thread(target=self._watch, args=(repo,), name=f"watch-{repo.root.name}",
                                 daemon=True)
            t.start()
            self._threads.append(t)
        t = threading.Thread(target=self._update_loop, name="watch-updater", daemon=True)
        t.start()
        self._threads.append(t)
        self._wake.set()
        return self

    def stop(self) -> None:
        self.stop_event.set()
        self._wake.set()
        for t in self._threads:
            t.join(timeout=10)

    def run_forever(self) -> None:
        self.start()
        try:
            while not self.stop_event.wait(0.5):
                pass
        finally:
            self.stop()

    def _watch(self, repo: RepoWatch) -> None:
        import watchfiles

        while not self.stop_event.is_set():
            if not repo.root.is_dir():
                with self._lock:
                    if repo.problem is None:
                        self.log(f"{repo.root} is gone (moved or deleted): serving its last snapshot")
                    repo.problem = f"{repo.root} is gone (moved or deleted): serving the last snapshot"
                self.stop_event.wait(1.0)
                continue
            if repo.problem is not None and repo.problem.endswith("serving the last snapshot"):
                self.log(f"{repo.root} is back: updating")
                with self._lock:
                    repo.problem = None
                self._changed(repo, {""})
            try:
                for changes in watchfiles.watch(repo.root, stop_event=self.stop_event,
                                                debounce=self.debounce_ms, step=self.step_ms,
                                                rust_timeout=1000, yield_on_timeout=True,
                                                watch_filter=_Filter(repo.root), raise_interrupt=False,
                                                ignore_permission_denied=True):
                    if not repo.root.is_dir():
                        break
                    if changes:
                        self._changed(repo, {_relative(repo.root, p) for _, p in changes})
            except Exception as exc:  # the directory vanished under the watcher, or an OS limit
                if not self.stop_event.is_set() and repo.root.is_dir():
                    self.log(f"{repo.root}: watching failed ({type(exc).__name__}: {exc}); retrying")
                    self.stop_event.wait(1.0)

    def _changed(self, repo: RepoWatch, paths: set[str]) -> None:
        with self._lock:
            repo.pending |= paths
            repo.last_event_at = time.monotonic()
        self._wake.set()

    def _update_loop(self) -> None:
        while not self.stop_event.is_set():
            self._wake.wait(1.0)
            self._wake.clear()
            for repo in self.repos:
                if self.stop_event.is_set():
                    return
                with self._lock:
                    if not repo.pending:
                        continue
                    if not repo.root.is_dir():
                        continue  # reported by its watch thread; updated once it is back
                    paths, repo.pending = repo.pending, set()
                    repo.updating = True
                try:
                    self._update(repo, paths)
                finally:
                    with self._lock:
                        repo.updating = False
                        if repo.pending:
                            self._wake.set()
            if all(r.updates or r.problem for r in self.repos):
                self.ready.set()

    def _update(self, repo: RepoWatch, paths: set[str]) -> None:
        from codegraph.pipeline import IndexOptions, index
        from codegraph.stages import IndexConfig

        started = time.monotonic()
        try:
            options = IndexOptions(IndexConfig(vectors=self._vectors(repo), workers=self.workers))
            result = index(repo.root, self.db, options, commit=_head(repo.root),
                           on_wait=lambda job: self.log(f"{repo.root.name}: waiting for job {job} "
                                                        "(another run of this repository)"))
        except Exception as exc:  # never stops watching: reported, the last snapshot stays served
            message = " ".join(f"{type(exc).__name__}: {exc}".split())
            with self._lock:
                repo.problem = f"update failed: {message}"
                repo.pending |= paths if repo.root.is_dir() else set()
            self.log(f"{repo.root.name}: update failed: {message}")
            self.stop_event.wait(1.0)  # a persistent failure is retried at most once a second
            return
        with self._lock:
            repo.problem = None if result["state"] == "completed" else f"update {result['state']}"
            repo.last_result = result
            repo.updates += 1
            repo.last_indexed_at = time.monotonic()
        changed = result["changed_files"]
        n = sum(map(len, changed.values()))
        self.log(f"{repo.root.name}: {result['state']} ({n} files changed, "
                 f"{len(result.get('files_failed', []))} failed) in {time.monotonic() - started:.2f} s")
        if self.on_update is not None:
            self.on_update(repo, result)

    def _vectors(self, repo: RepoWatch) -> bool:
        """The flag, else what the repository's index has (never embed a --no-vectors index)."""
        if self.vectors is not None:
            return self.vectors
        from codegraph.pipeline import default_db_for
        from codegraph.stages import L4
        from codegraph.store import open_store

        with contextlib.suppress(Exception):
            latest = open_store(self.db or default_db_for(repo.root)).latest_snapshot(repo.identity)
            if latest is not None:
                return L4 in latest.stage_keys
        return True


class _Filter:
    """Events worth an update: files of the work tree (not the store, caches or .git's
    internals), and .git's HEAD, index and refs (a branch switch, a pull, a commit)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def __call__(self, change: Any, path: str) -> bool:
        parts = Path(path).relative_to(self.root).parts if path.startswith(str(self.root)) else ()
        if not parts:
            return True
        if parts[0] == ".git":
            return (len(parts) == 2 and parts[1] in GIT_MARKERS) or (len(parts) > 2 and parts[1] == "refs")
        if any(p in IGNORED_DIRS for p in parts):
            return False
        return not parts[-1].endswith((".pyc", ".swp", "~"))


def _relative(root: Path, path: str) -> str:
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return path


def _head(root: Path) -> str | None:
    """HEAD's commit when `root` is a git work tree's top (recorded with each update)."""
    if not (root / ".git").exists():
        return None
    try:
        proc = procs.run(["git", "-C", str(root), "rev-parse", "--verify", "--quiet", "HEAD"],
                         capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() or None if proc.returncode == 0 else None
