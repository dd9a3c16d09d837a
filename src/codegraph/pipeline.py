"""One index run, end to end: snapshot -> job -> stage DAG -> result.

This is the entry point the CLI, the tests and the benchmarks share (`codegraph.index`).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codegraph import dag
from codegraph.errors import CodegraphError, UserError
from codegraph.jobs import RetryPolicy
from codegraph.languages import get_language, language_for
from codegraph.names import DEFAULT_DB_DIRNAME
from codegraph.queue import DEFAULT_LEASE_SECONDS, open_queue
from codegraph.queue.run import JobRun
from codegraph.snapshot import DEFAULT_MAX_FILE_BYTES, Snapshot, read_text, scan
from codegraph.stages import (
    INLINE_MAX_FILES,
    L1,
    L2,
    L4,
    IndexConfig,
    NoProgress,
    ProgressSink,
    RunContext,
    pipeline_stages,
)
from codegraph.store import Store, open_store
from codegraph.store.base import FileRow, SnapshotInfo


@dataclass
class IndexOptions:
    config: IndexConfig = field(default_factory=IndexConfig)
    excludes: list[str] = field(default_factory=list)
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES


def default_db_for(root: Path) -> str:
    return str(root / DEFAULT_DB_DIRNAME)


def index(
    path: str | Path,
    db: str | None = None,
    options: IndexOptions | None = None,
    progress: ProgressSink | None = None,
    store: Store | None = None,
    full: bool = False,
    job: JobRun | None = None,
    repo: str | None = None,
    commit: str | None = None,
    on_wait: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Index the current snapshot of `path`; returns the job's result (see README, "--json").

    Incremental by default: against the repo's latest complete snapshot, unchanged files are not
    read again (size and mtime prove them unchanged) and only what a change affects is
    recomputed. `full=True` rebuilds the snapshot without a base: every file is read and hashed
    and every file resolved again (per-file outputs stored under the same content hash and stage
    key are still used: they are exactly what recomputing them would give).

    Every run is a job. A worker passes the job it claimed; without one, the run records itself
    as a job of its own (enqueued and claimed at once) in the queue beside the store. Either way
    this function ends the job (completed, failed, cancelled or released) with fenced writes, and
    stops at the next stage boundary once the job's cancel event is set (lease lost, cancel
    requested, worker shutting down).

    `repo` is the repository's identity in the store (`source.Source.identity`; default: the
    resolved path): snapshots are found and recorded under it, so a checkout of a URL in any
    directory, on any machine, updates the same repository. `commit`, when the files are a
    checkout of one, is recorded in the result.

    Runs of one repository go one at a time (the queue's per-repository lock, held from before
    the base is read until the job's final state is written; `on_wait(holder job id)` is called
    when the run has to wait). A run that gets the lock after a job enqueued later than its own
    completed indexes nothing: it completes as `superseded`, so the repository's latest snapshot
    is always the newest enqueued revision's, whatever order the runs end in."""
    options = options or IndexOptions()
    progress = progress or NoProgress()
    root = Path(path).expanduser()
    if not root.exists():
        raise UserError(f"no such directory: {path}")
    if not root.is_dir():
        raise UserError(f"not a directory: {path}")
    root = root.resolve()
    store = store or open_store(db or os.environ.get("CODEGRAPH_DB") or default_db_for(root))
    t0 = time.perf_counter()

    if job is None:
        queue = open_queue(store.url)
        # Jobs whose process died (e.g. an earlier direct run, SIGKILLed) are rescued here too,
        # not only by workers: nothing stays "running" for ever on a store without workers.
        queue.rescue_expired(RetryPolicy())
        job = JobRun(queue, queue.start(repo or str(root), f"cli-{socket.gethostname()}-{os.getpid()}",
                                        DEFAULT_LEASE_SECONDS), DEFAULT_LEASE_SECONDS, store.url)
        job.start_heartbeat()
    identity = repo or str(root)
    try:
        # One run of a repository at a time, whoever runs it (see "Runs of one repository").
        with job.repo_lock(identity, on_wait) as held:
            if not held:  # cancelled or lease lost while waiting: ends as such, nothing written
                stopped = RunStopped(f"stopped before it began ({job.stop_reason or 'cancelled'})")
                result = _empty_result(store, identity, job, "stopped", t0)
                result.update(state="failed", error=_describe(stopped))
                result["job_state"] = job.finish(result, stopped)
                return result
            newer = job.queue.newer_completed(job.job.id, sorted({identity, job.job.repo}))
            if newer is not None:
                # A revision enqueued after this one is indexed already: it stays the latest.
                result = _empty_result(store, identity, job, "superseded", t0)
                result["superseded_by"] = newer
                result["job_state"] = job.finish(result, None)
                return result
            return _run(root, identity, store, options, progress, job, t0, full, commit)
    except KeyboardInterrupt:
        job.interrupted("interrupted")
        raise
    except BaseException as exc:
        job.finish(None, exc)
        raise
    finally:
        job.close()


def _run(root: Path, repo: str, store: Store, options: IndexOptions, progress: ProgressSink,
         job: JobRun, t0: float, full: bool, commit: str | None) -> dict[str, Any]:
    config = options.config
    keys = config.stage_keys()
    job_id = job.job.id
    # The base is the repository's, wherever it was built: `root` is only where files are read.
    base = None if full else store.latest_snapshot(repo)
    base_files = {r.path: r for r in store.snapshot_files(base.id)} if base is not None else {}
    progress.start("scan", 0)
    # Size/mtime hints only from a base whose L1 key (which names the content hash scheme and
    # every language's version) is ours: its hashes are made as ours are (after an upgrade that
    # changes either, every file is read once; L1 parses them all again anyway).
    hinted = base is not None and base.stage_keys.get(L1) == keys[L1]
    snapshot = scan(root, options.excludes, options.max_file_bytes,
                    on_file=lambda: progress.advance("scan"),
                    known={p: (r.size, r.mtime_ns, r.content_hash) for p, r in base_files.items()}
                    if hinted else {},
                    known_scanned_at=base.created_at if base is not None else 0.0)
    job.set_snapshot(snapshot.manifest_hash)
    change = _diff(base_files, snapshot)
    mode = "full" if base is None else "incremental"
    if base is not None and base.manifest_hash == snapshot.manifest_hash and base.stage_keys == keys:
        # Nothing changed: the latest snapshot is this one, complete.
        result = _unchanged_result(store, base, snapshot, repo, job_id, keys)
        duration_ms = (time.perf_counter() - t0) * 1000
        result.update(duration_ms=round(duration_ms, 1), **_speedup(store, repo, mode, duration_ms),
                      **({"commit": commit} if commit else {}))
        result["job_state"] = job.finish(result, None)
        return result

    languages: dict[str, tuple[str | None, str | None]] = {}
    modules_by_family: dict[str, list[str]] = {}  # a family's files are named together
    for f in snapshot.files:
        lang = language_for(f.path)
        languages[f.path] = (lang.name if lang else None, None)
        if lang is not None:
            modules_by_family.setdefault(lang.family, []).append(f.path)
    hashes = {f.path: f.content_hash for f in snapshot.files}

    def read(path: str) -> str | None:
        try:
            return read_text(root, path, hashes[path])
        except (OSError, ValueError):
            return None

    for family, paths in modules_by_family.items():
        for p, module in get_language(family).module_names(paths, root.name, read).items():
            languages[p] = (languages[p][0], module)
    # Resolutions can be carried over only from a base resolved by the same L1: each file starts
    # with its base resolution, and L1 re-points those it resolves again (see _Resolution).
    carry = base is not None and base.stage_keys.get(L1) == keys[L1]
    snapshot_id = store.create_snapshot(
        repo, root.name, snapshot, languages, keys, job_id, mode,
        resolutions={p: r.res_id for p, r in base_files.items()} if carry else None)

    cancel = job.cancel
    ctx = RunContext(root, store, snapshot_id, snapshot.files, config, keys, cancel, progress,
                     modules={p: m for p, (_, m) in languages.items()})
    if carry:
        ctx.base, ctx.base_files = base, base_files

    def on_stage(name: str, status: dag.StageStatus | None) -> None:
        if status is None:
            job.stage(name)  # a fenced write: sets `cancel` when the job must stop

    try:
        # A small update (a typical commit) runs its stages in turn: see dag.execute.
        small = base is not None and sum(map(len, change.values())) <= INLINE_MAX_FILES
        run = dag.execute(pipeline_stages(config), ctx, cancel, on_stage, concurrent=not small)
    except KeyboardInterrupt:
        cancel.set()
        raise
    finally:
        ctx.shutdown()
    store.settle()  # a checkpoint of the stages' writes still running is part of this run

    problems = [(path, "failed", f"{stage}: {error}")
                for path, stage, error in store.stage_errors(snapshot_id, keys[L1], keys[L2])]
    problems += [(e.path, "failed", e.reason) for e in ctx.file_errors]
    if problems:
        store.add_file_problems(snapshot_id, problems)
    counters: dict[str, Any] = {}
    for outcome in run.outcomes:
        counters.update(outcome.counters)
    duration_ms = (time.perf_counter() - t0) * 1000
    if run.ok:
        store.complete_snapshot(snapshot_id, duration_ms)
    # L1 counted the graph when it ran; only a run that stopped before it needs the query.
    symbols, edges = ((counters["symbols"], counters["edges"]) if "symbols" in counters
                      else store.graph_counts(snapshot_id))
    result: dict[str, Any] = {
        "job_id": job_id,
        "state": "completed" if run.ok else "failed",
        "mode": mode,
        "repo": repo,
        **({"commit": commit} if commit else {}),
        "db": store.url,
        "snapshot": snapshot.manifest_hash,
        "snapshot_id": snapshot_id,
        **_files_report(snapshot, [(path, reason) for path, _, reason in problems]),
        "changed_files": change,
        "affected_files": ctx.affected_files,
        "symbols": symbols,
        "edges": edges,
        "unresolved_calls": counters.get("unresolved_calls", 0),
        # L2 counts them when it ran; only a run that stopped before it needs the query.
        "chunks": counters["chunks"] if "chunks" in counters
        else store.snapshot_chunk_count(snapshot_id, keys[L2]),
        "embedded": counters.get("embedded", 0),
        "vectors": counters.get("vectors", 0) if L4 in keys else 0,
        "embedder": _embedder(keys),
        "stages": [
            {"name": o.name, "status": str(o.status), "duration_ms": round(o.duration_ms, 1),
             **o.counters, **({"error": _describe(o.error)} if o.error else {})}
            for o in run.outcomes
        ],
        "reused": _reuse(run),
        "warnings": list(ctx.warnings),
        "duration_ms": round(duration_ms, 1),
        **_speedup(store, repo, mode, duration_ms),
    }
    error = None if run.ok else run.first_error() or RuntimeError("run did not complete")
    if error is not None:
        result["error"] = _describe(error)
    # The job's final state, as written: failed/queued (a retry) by the error's class, cancelled,
    # queued (released), or "lost" when another worker owns the job now.
    result["job_state"] = job.finish(result, error)
    return result


class RunStopped(CodegraphError):
    """The run's job was cancelled, or its lease lost, before it could begin."""


def _empty_result(store: Store, repo: str, job: JobRun, mode: str, t0: float) -> dict[str, Any]:
    """The result of a run that indexed nothing (superseded, or stopped before it began): the
    repository's latest snapshot is what it was."""
    latest = store.latest_snapshot(repo)
    return {
        "job_id": job.job.id, "state": "completed", "mode": mode,
        "repo": repo, "db": store.url,
        "snapshot": latest.manifest_hash if latest else None,
        "snapshot_id": latest.id if latest else None,
        "files_total": 0, "files_indexed": 0, "files_read": 0, "files_failed": [], "files_skipped": [],
        "changed_files": {"added": [], "modified": [], "deleted": []}, "affected_files": [],
        "symbols": 0, "edges": 0, "unresolved_calls": 0, "chunks": 0, "embedded": 0, "vectors": 0,
        "stages": [], "reused": {"stages": [], "files": {}}, "warnings": [],
        "duration_ms": round((time.perf_counter() - t0) * 1000, 1), "speedup": None,
    }


def _diff(base_files: dict[str, FileRow], snapshot: Snapshot) -> dict[str, list[str]]:
    now = {f.path: f.content_hash for f in snapshot.files}
    return {
        "added": sorted(p for p in now if p not in base_files),
        "modified": sorted(p for p, h in now.items() if p in base_files and base_files[p].content_hash != h),
        "deleted": sorted(p for p in base_files if p not in now),
    }


def _speedup(store: Store, repo: str, mode: str, duration_ms: float) -> dict[str, Any]:
    """Measured: the repo's last full build's recorded duration over this run's."""
    if mode != "incremental":
        return {"speedup": None}
    full_ms = store.last_full_duration(repo)
    if full_ms is None:
        return {"speedup": None}
    return {"speedup": round(full_ms / max(duration_ms, 0.001), 2), "full_build_ms": round(full_ms, 1)}


def _embedder(keys: dict[str, str]) -> str | None:
    """The vectors' producer (`<model>:<runtime>`), None without vectors."""
    return keys[L4].split(":", 1)[1] if L4 in keys else None


def _unchanged_result(
    store: Store, base: SnapshotInfo, snapshot: Snapshot, repo: str, job_id: int, keys: dict[str, str]
) -> dict[str, Any]:
    symbols, edges = store.graph_counts(base.id)
    problems = store.stage_errors(base.id, keys[L1], keys[L2])
    return {
        "job_id": job_id, "state": "completed", "mode": "incremental", "repo": repo,
        "db": store.url, "snapshot": snapshot.manifest_hash, "snapshot_id": base.id,
        **_files_report(snapshot, [(path, f"{stage}: {error}") for path, stage, error in problems]),
        "changed_files": {"added": [], "modified": [], "deleted": []},
        "affected_files": [],
        "symbols": symbols, "edges": edges,
        "unresolved_calls": store.unresolved_calls(base.id),
        "chunks": store.snapshot_chunk_count(base.id, keys[L2]),
        "embedded": 0,
        "vectors": store.count_embedded(base.id, keys[L2], keys[L4]) if L4 in keys else 0,
        "embedder": _embedder(keys),
        "stages": [],
        "reused": {"stages": list(keys), "files": {}},
        "warnings": [],
    }


def _files_report(snapshot: Snapshot, problems: list[tuple[str, str]]) -> dict[str, Any]:
    """The result's file counts and lists: the scan's problems and the stages' (path, reason)."""
    return {
        "files_total": len(snapshot.files) + len(snapshot.failed) + len(snapshot.skipped),
        "files_indexed": len(snapshot.files) - len({path for path, _ in problems}),
        "files_read": snapshot.files_read,
        "files_failed": sorted(
            [{"path": e.path, "reason": e.reason} for e in snapshot.failed]
            + [{"path": path, "reason": reason} for path, reason in problems],
            key=lambda e: (e["path"], e["reason"]),
        ),
        "files_skipped": [{"path": e.path, "reason": e.reason} for e in snapshot.skipped],
    }


def _describe(error: BaseException | None) -> str:
    return f"{type(error).__name__}: {error}" if error is not None else ""


def _reuse(run: dag.DagRun) -> dict[str, Any]:
    """What an earlier run (or another snapshot) had already recorded: stages with no per-file
    work left, and per stage the files (L4: texts) whose stored outputs were used as they were."""
    work = {"L1_ir": "files_parsed", "L3_lexical": "documents_written", "L2_chunk": "files_chunked",
            "L4_vector": "embedded"}
    reused_counts = {"L1_ir": "files_reused", "L3_lexical": "documents_reused",
                     "L2_chunk": "files_reused", "L4_vector": "texts_reused"}
    done = [o for o in run.outcomes if o.status == dag.StageStatus.COMPLETED]
    return {
        "stages": [o.name for o in done if o.counters.get(work.get(o.name, ""), 1) == 0],
        "files": {o.name: o.counters.get(reused_counts.get(o.name, ""), 0) for o in done},
    }
