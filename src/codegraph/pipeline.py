"""One index run, end to end: snapshot -> job -> stage DAG -> result.

This is the entry point the CLI, the tests and the benchmarks share (`codegraph.index`).
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codegraph import dag
from codegraph.errors import UserError
from codegraph.languages import get_language, language_for
from codegraph.queue import DEFAULT_LEASE_SECONDS, open_queue
from codegraph.queue.run import JobRun
from codegraph.snapshot import DEFAULT_MAX_FILE_BYTES, scan
from codegraph.stages import L2, L4, IndexConfig, NoProgress, ProgressSink, RunContext, pipeline_stages
from codegraph.store import Store, open_store

DEFAULT_DB_DIRNAME = ".codegraph"


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
    job: JobRun | None = None,
) -> dict[str, Any]:
    """Index the current snapshot of `path`; returns the job's result (see README, "--json").

    Every run is a job. A worker passes the job it claimed; without one, the run records itself
    as a job of its own (enqueued and claimed at once) in the queue beside the store. Either way
    this function ends the job (completed, failed, cancelled or released) with fenced writes, and
    stops at the next stage boundary once the job's cancel event is set (lease lost, cancel
    requested, worker shutting down)."""
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
        job = JobRun(queue, queue.start(str(root), f"cli-{socket.gethostname()}-{os.getpid()}",
                                        DEFAULT_LEASE_SECONDS), DEFAULT_LEASE_SECONDS, store.url)
        job.start_heartbeat()
    try:
        return _run(root, store, options, progress, job, t0)
    except KeyboardInterrupt:
        job.interrupted("interrupted")
        raise
    except BaseException as exc:
        job.finish(None, exc)
        raise
    finally:
        job.close()


def _run(root: Path, store: Store, options: IndexOptions, progress: ProgressSink, job: JobRun,
         t0: float) -> dict[str, Any]:
    config = options.config
    keys = config.stage_keys()
    job_id = job.job.id
    progress.start("scan", 0)
    snapshot = scan(root, options.excludes, options.max_file_bytes,
                    on_file=lambda: progress.advance("scan"))
    job.set_snapshot(snapshot.manifest_hash)
    languages: dict[str, tuple[str | None, str | None]] = {}
    modules_by_lang: dict[str, list[str]] = {}
    for f in snapshot.files:
        lang = language_for(f.path)
        languages[f.path] = (lang.name if lang else None, None)
        if lang is not None:
            modules_by_lang.setdefault(lang.name, []).append(f.path)
    for lang_name, paths in modules_by_lang.items():
        for p, module in get_language(lang_name).module_names(paths, root.name).items():
            languages[p] = (lang_name, module)
    snapshot_id = store.create_snapshot(str(root), root.name, snapshot, languages, keys, job_id)

    cancel = job.cancel
    ctx = RunContext(root, store, snapshot_id, snapshot.files, config, keys, cancel, progress)

    def on_stage(name: str, status: dag.StageStatus | None) -> None:
        if status is None:
            job.stage(name)  # a fenced write: sets `cancel` when the job must stop

    try:
        run = dag.execute(pipeline_stages(config), ctx, cancel, on_stage)
    except KeyboardInterrupt:
        cancel.set()
        raise
    finally:
        ctx.shutdown()

    if ctx.file_errors:
        store.add_file_problems(snapshot_id, [(e.path, "failed", e.reason) for e in ctx.file_errors])
    counters: dict[str, Any] = {}
    for outcome in run.outcomes:
        counters.update(outcome.counters)
    if run.ok:
        store.complete_snapshot(snapshot_id)
    symbols, edges = store.graph_counts(snapshot_id)
    result: dict[str, Any] = {
        "job_id": job_id,
        "state": "completed" if run.ok else "failed",
        "repo": str(root),
        "db": store.url,
        "snapshot": snapshot.manifest_hash,
        "snapshot_id": snapshot_id,
        "files_total": len(snapshot.files) + len(snapshot.failed) + len(snapshot.skipped),
        "files_indexed": len(snapshot.files) - len({e.path for e in ctx.file_errors}),
        "files_failed": sorted(
            ({"path": e.path, "reason": e.reason} for e in [*snapshot.failed, *ctx.file_errors]),
            key=lambda e: (e["path"], e["reason"]),
        ),
        "files_skipped": [{"path": e.path, "reason": e.reason} for e in snapshot.skipped],
        "symbols": symbols,
        "edges": edges,
        "unresolved_calls": counters.get("unresolved_calls", 0),
        "chunks": counters.get("chunks", store.snapshot_chunk_count(snapshot_id, keys[L2])),
        "embedded": counters.get("embedded", 0),
        "vectors": counters.get("vectors", 0) if L4 in keys else 0,
        "stages": [
            {"name": o.name, "status": str(o.status), "duration_ms": round(o.duration_ms, 1),
             **o.counters, **({"error": _describe(o.error)} if o.error else {})}
            for o in run.outcomes
        ],
        "reused": _reuse(run),
        "warnings": list(ctx.warnings),
        "duration_ms": round((time.perf_counter() - t0) * 1000, 1),
    }
    error = None if run.ok else run.first_error() or RuntimeError("run did not complete")
    if error is not None:
        result["error"] = _describe(error)
    # The job's final state, as written: failed/queued (a retry) by the error's class, cancelled,
    # queued (released), or "lost" when another worker owns the job now.
    result["job_state"] = job.finish(result, error)
    return result


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
