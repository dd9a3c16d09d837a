"""What the stages share: `IndexConfig` and the stage cache keys, the `RunContext` of one run
(store, snapshot, a lazily created process pool, progress sink, cancel event), batching onto
the pool, and `_WriteGroups`, which lets a stage's writes share transactions of at most 2 s."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from contextlib import ExitStack
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol, TypeVar

from codegraph import embed, procs
from codegraph.dag import StageCancelled
from codegraph.languages import all_languages
from codegraph.model import FileError
from codegraph.names import L1, L2, L3, L4
from codegraph.snapshot import CONTENT_HASH_SCHEME, SourceFile
from codegraph.store.base import (
    FileRow,
    SnapshotInfo,
    Store,
)

LEXICAL_VERSION = "lex-2"  # 2: one document per unit, head/body/subtokens columns
# 2: the windows of units (codegraph.units) instead of chunks; 3: + name texts; 4: + path words
CHUNKER_VERSION = "chunk-4"
INLINE_MAX_FILES = 24  # at most this many files to parse or chunk: no worker processes
EMBED_BATCH = 32  # texts per transaction: the most a kill can cost L4 (~2 s)
WRITE_GROUP_SECONDS = 2.0  # the longest a stage's transaction stays open (see _WriteGroups)


@dataclass(frozen=True)
class IndexConfig:
    # An embedding window of a unit: about the model's 256 tokens of code (with its header).
    max_chunk_chars: int = 1000
    min_chunk_chars: int = 200
    model_name: str = embed.MODEL_NAME  # or a sentence-transformers model directory (--model)
    vectors: bool = True
    embed_runtime: str = embed.DEFAULT_RUNTIME  # "auto" (onnx where it runs, else torch), "onnx", "torch"
    quantisation: str = embed.DEFAULT_QUANTISATION  # onnx: one of embed.QUANTISATIONS
    workers: int = 2
    batch_files: int = 32

    def stage_keys(self) -> dict[str, str]:
        """Cache keys: everything that changes a stage's output for the same input."""
        extractors = ",".join(f"{lang.name}={lang.version}" for lang in all_languages())
        chunkers = ",".join(f"{lang.name}={lang.chunk_version}" for lang in all_languages())
        keys = {
            L1: f"{L1}:{extractors}:{CONTENT_HASH_SCHEME}",
            # Units are derived from L1's symbols: L2 and L3 change whenever L1's output does.
            L3: f"{L3}:{LEXICAL_VERSION}:{extractors}:{chunkers}",
            L2: f"{L2}:{CHUNKER_VERSION}:{extractors}:{chunkers}:{self.max_chunk_chars}:"
                f"{self.min_chunk_chars}",
        }
        if self.vectors:  # the vectors' producer: model (and its content), runtime, quantisation
            keys[L4] = f"{L4}:{self.producer().spec}"
        return keys

    def producer(self) -> embed.Producer:
        return embed.producer(self.model_name, self.embed_runtime, self.quantisation)


def producer_spec(key: str) -> str:
    """The producer an L4 key names (`L4_vector:<spec>`), for `embed.embed`."""
    return key.split(":", 1)[1]


class ProgressSink(Protocol):
    def start(self, stage: str, total: int) -> None: ...
    def advance(self, stage: str, n: int = 1) -> None: ...


class NoProgress:
    def start(self, stage: str, total: int) -> None:
        pass

    def advance(self, stage: str, n: int = 1) -> None:
        pass


@dataclass
class RunContext:
    root: Path
    store: Store
    snapshot_id: int
    files: list[SourceFile]
    config: IndexConfig
    keys: dict[str, str]
    cancel: threading.Event
    progress: ProgressSink = field(default_factory=NoProgress)
    modules: dict[str, str | None] = field(default_factory=dict)  # path -> module name
    # Incremental: the snapshot this one is diffed against (None: resolve every file).
    base: SnapshotInfo | None = None
    base_files: dict[str, FileRow] = field(default_factory=dict)
    affected_files: list[str] = field(default_factory=list)
    _pool: ProcessPoolExecutor | None = None
    _pool_lock: threading.Lock = field(default_factory=threading.Lock)
    file_errors: list[FileError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def pool(self) -> ProcessPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                # None of its processes outlives this one, whatever kills it (procs).
                self._pool = procs.process_pool(self.config.workers, ["codegraph.stages"])
            return self._pool

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    @cached_property
    def hashes(self) -> dict[str, str]:
        """path -> content hash, for every file of the snapshot."""
        return {f.path: f.content_hash for f in self.files}

    @cached_property
    def sizes(self) -> dict[str, int]:
        """path -> size in bytes, for every file of the snapshot."""
        return {f.path: f.size for f in self.files}

    def stored(self, stage: str, hashes: set[str], lookup: Any) -> set[str]:
        """Which of `hashes` already have the stage's output. Contents of a complete base snapshot
        built with the same key have it (prune never drops what a kept snapshot needs): only the
        others are looked up."""
        known: set[str] = set()
        if self.base is not None and self.base.stage_keys.get(stage) == self.keys[stage]:
            known = {row.content_hash for row in self.base_files.values()} & hashes
        return known | lookup(self.keys[stage], hashes - known)

    @property
    def verify_all(self) -> bool:
        """Without a base (`--full`, or a first build) every stored output the snapshot uses is
        verified: what a run computes itself is not read back, so a first build pays nothing."""
        return self.base is None

    def check_cancelled(self) -> None:
        if self.cancel.is_set():
            raise StageCancelled("cancelled")

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    def fail_file(self, path: str, stage: str, reason: str) -> None:
        self.file_errors.append(FileError(path, f"{stage}: {reason}"))

    def stored_results(self, stage: str, results: BatchResult) -> BatchResult:
        """The results to store; unreadable files are reported for this run only."""
        keep = []
        for path, content_hash, payload, error in results:
            if error is not None and error.startswith(_UNREADABLE):
                self.fail_file(path, stage, error)
            else:
                keep.append((path, content_hash, payload, error))
        return keep


_WORKER_STORES: dict[str, Store] = {}


def worker_store(url: str) -> Store:
    """A worker process's store, opened once per process and URL (`codegraph.store.open_store`)."""
    store = _WORKER_STORES.get(url)
    if store is None:
        from codegraph.store import open_store

        store = _WORKER_STORES[url] = open_store(url)
    return store


def _batches(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


# ----- worker-process functions (module level, so they pickle) --------------------------------


BatchResult = list[tuple[str, str, bytes | None, str | None]]  # (path, hash, payload, error)
# A file that could not be read (again) is a fact about this run, not about its content: such
# errors are reported but never stored under the content hash.
_UNREADABLE = "unreadable: "



def _unique_by_hash(files: Sequence[SourceFile], wanted: set[str]) -> list[tuple[str, str]]:
    """One (path, hash) per distinct content that still needs work: equal bytes, equal output."""
    seen: set[str] = set()
    out = []
    for f in files:
        if f.content_hash in wanted and f.content_hash not in seen:
            seen.add(f.content_hash)
            out.append((f.path, f.content_hash))
    return out


def _by_content(damaged: dict[str, str]) -> dict[str, str]:
    """path -> content hash of damaged outputs, as content hash -> its first path (one output
    per content, however many paths share it), in path order."""
    out: dict[str, str] = {}
    for path, content_hash in sorted(damaged.items()):
        out.setdefault(content_hash, path)
    return out


def _run_batches(ctx: RunContext, stage: str, fn: Any, todo: list[tuple[str, str]],
                 *args: Any) -> Iterator[BatchResult]:
    """Farm batches out to the worker pool; yield each batch's results as it completes. A few
    files (a typical incremental update) are done in this process: starting workers costs more."""
    if len(todo) <= INLINE_MAX_FILES:
        for batch in _batches(todo, ctx.config.batch_files):
            ctx.check_cancelled()
            results = fn(str(ctx.root), list(batch), *args)
            ctx.progress.advance(stage, len(results))
            yield results
        return
    futures: list[Future[Any]] = [
        ctx.pool().submit(fn, str(ctx.root), list(batch), *args)
        for batch in _balanced_batches(todo, ctx.sizes, ctx.config.workers, ctx.config.batch_files)
    ]
    try:
        for future in as_completed(futures):
            ctx.check_cancelled()
            results = future.result()
            ctx.progress.advance(stage, len(results))
            yield results
    finally:
        for future in futures:
            future.cancel()


_T = TypeVar("_T", str, tuple[str, str])  # a path, or (path, content hash)


def _balanced_batches(todo: Sequence[_T], sizes: Mapping[str, int], workers: int, max_files: int,
                      per_worker: int = 4) -> list[list[_T]]:
    """`todo` (paths, or (path, ...) tuples) largest file first, in batches of about
    1/`per_worker` of a worker's share of the bytes and at most `max_files` files: a large file
    starts first and small ones fill in behind it, so the workers finish together. (By file
    count, a batch holding one 750 KB file kept one worker busy long after the other finished.)"""

    def size(item: _T) -> int:
        return sizes.get(item if isinstance(item, str) else item[0], 0)

    ordered = sorted(todo, key=lambda item: (-size(item), item))
    budget = max(1, sum(map(size, ordered)) // (workers * per_worker))
    batches: list[list[_T]] = []
    batch: list[_T] = []
    batch_bytes = 0
    for item in ordered:
        batch.append(item)
        batch_bytes += size(item)
        if batch_bytes >= budget or len(batch) >= max_files:
            batches.append(batch)
            batch, batch_bytes = [], 0
    if batch:
        batches.append(batch)
    return batches


class _WriteGroups:
    """A stage's writes share transactions (`Store.write_group`) of at most WRITE_GROUP_SECONDS:
    few commits, and still a bounded wait for other writers (a sibling stage, the heartbeat)
    and a bounded loss when the process is killed."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.stack = ExitStack()
        self.started = 0.0

    def __enter__(self) -> _WriteGroups:
        self._begin()
        return self

    def _begin(self) -> None:
        self.stack.enter_context(self.store.write_group())
        self.started = time.monotonic()

    def wrote(self) -> None:
        """After a write: end the group (commit) once it is old enough, and begin the next."""
        if time.monotonic() - self.started >= WRITE_GROUP_SECONDS:
            self.stack.close()
            self._begin()

    def __exit__(self, *exc: Any) -> None:
        self.stack.__exit__(*exc)
