"""Jobs end to end: a durable queue with leases and fencing, on SQLite or PostgreSQL.

`open_queue(url)` picks the backend the way `store.open_store` does: `postgresql://…` is
PostgreSQL, anything else is the SQLite file of the index store at that location.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from codegraph import procs
from codegraph.errors import StoreError, UserError
from codegraph.jobs import Job
from codegraph.queue.base import DEFAULT_LEASE_SECONDS, Fenced, JobConflict, JobEvent, JobQueue, Lease


def is_postgres(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


def open_queue(url: str) -> JobQueue:
    try:
        if is_postgres(url):
            from codegraph.queue.postgres import PostgresJobQueue

            return PostgresJobQueue(url)
        if "://" in url and not url.startswith("sqlite://"):
            raise UserError(f"unsupported --db URL scheme: {url.split('://')[0]}://")
        from codegraph.queue.sqlite import SqliteJobQueue
        from codegraph.store.sqlite import resolve_sqlite_path

        return SqliteJobQueue(resolve_sqlite_path(url))
    except StoreError as exc:
        raise UserError(str(exc)) from exc


def repo_root(path: str | Path) -> Path:
    root = Path(path).expanduser()
    if not root.exists():
        raise UserError(f"no such directory: {path}")
    if not root.is_dir():
        raise UserError(f"not a directory: {path}")
    return root.resolve()


def snapshot_key(root: Path, rev: str | None) -> str:
    """What makes two enqueues "the same snapshot": the commit a rev names (a git repository),
    the rev itself (anything else), or without a rev the manifest hash of the files as they are
    now — the same hash the run records."""
    if rev is None:
        from codegraph.snapshot import scan

        return scan(root).manifest_hash
    try:
        proc = procs.run(["git", "-C", str(root), "rev-parse", "--verify", "--quiet",
                               f"{rev}^{{commit}}"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return f"rev:{rev}"
    if proc.returncode == 0:
        return f"rev:{proc.stdout.strip()}"
    if (root / ".git").exists():
        raise UserError(f"{root}: no commit named {rev!r}")
    # The worker checks the rev out of the repository: a directory git does not know has none.
    raise UserError(f"{root}: --rev needs a git repository")


def enqueue_path(queue: JobQueue, path: str | Path, rev: str | None = None, priority: int = 0,
                 max_attempts: int = 3, options: dict[str, Any] | None = None) -> tuple[Job, bool]:
    """Queue a run of a source: a local directory (or git repository), or a git URL.

    `options` are the run's own settings (`run_options`), which its worker uses instead of its
    own; they are part of what makes two enqueues the same job."""
    from codegraph.source import check_rev, parse_source

    source = parse_source(str(path))
    check_rev(rev)
    encoded = json.dumps(options, sort_keys=True, separators=(",", ":")) if options else None
    suffix = f" {encoded}" if encoded else ""
    if source.is_url:
        # The producer need not reach the git host: the worker resolves and fetches the rev.
        # A branch name keys the job by name; the result records the commit it indexed.
        return queue.enqueue(source.location, f"rev:{rev or 'HEAD'}{suffix}", rev, priority,
                             max_attempts, encoded)
    root = Path(source.location)
    return queue.enqueue(str(root), snapshot_key(root, rev) + suffix, rev, priority, max_attempts,
                         encoded)


def run_options(model: str | None = None, embed_runtime: str | None = None,
                quantize: str | None = None) -> dict[str, Any]:
    """A job's embedding settings, checked as `index` checks them (a bad one is a `UserError`):
    the model directory as an absolute path, and only what was given."""
    from codegraph import embed

    embed.producer(model, embed_runtime or embed.DEFAULT_RUNTIME, quantize or embed.DEFAULT_QUANTISATION)
    if model is not None and model != embed.MODEL_NAME:
        model = str(Path(model).expanduser().resolve())
    chosen = {"model": model,
              "embed_runtime": embed_runtime, "quantize": quantize}
    return {k: v for k, v in chosen.items() if v is not None}


__all__ = ["DEFAULT_LEASE_SECONDS", "Fenced", "JobConflict", "JobEvent", "JobQueue", "Lease",
           "enqueue_path", "open_queue", "run_options", "snapshot_key"]
