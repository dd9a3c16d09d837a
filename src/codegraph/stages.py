"""The four stages. Each one: find the files (or texts) whose output for the current cache key is
not stored yet, compute exactly those, and record them in batches.

    L1 IR       per file: symbols, imports, calls (tree-sitter, in worker processes);
                per snapshot: cross-file resolution -> symbols, edges, reverse deps
    L3 Lexical  per file: one BM25 document (identifiers whole + split parts)
    L2 Chunk    per file: syntax-aware chunks (worker processes)
    L4 Vector   per distinct chunk text: one embedding (never the same text twice)

Stages share nothing but the store and the read-only `RunContext`.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol, TypeVar

import msgspec

from codegraph import embed, lexical
from codegraph.chunking import chunk_plain_text
from codegraph.dag import StageCancelled
from codegraph.languages import Language, Resolver, all_languages, get_language, language_for
from codegraph.model import Chunk, FileError, FileIR
from codegraph.snapshot import SourceFile, read_text
from codegraph.store.base import (
    FileRow,
    LexicalDoc,
    ResolvedFile,
    SnapshotInfo,
    Store,
    SymbolRow,
    payload_checksum,
    read_key,
    text_ok,
)

_ENCODE_IR = msgspec.msgpack.Encoder()
_DECODE_IR = msgspec.msgpack.Decoder(FileIR)
_ENCODE_CHUNKS = msgspec.msgpack.Encoder()
_DECODE_CHUNKS = msgspec.msgpack.Decoder(list[Chunk])

L1, L2, L3, L4 = "L1_ir", "L2_chunk", "L3_lexical", "L4_vector"
LEXICAL_VERSION = "lex-1"
CHUNKER_VERSION = "chunk-1"
INLINE_MAX_FILES = 24  # at most this many files to parse or chunk: no worker processes
EMBED_BATCH = 32  # texts per transaction: the most a kill can cost L4 (~2 s)
WRITE_GROUP_SECONDS = 2.0  # the longest a stage's transaction stays open (see _WriteGroups)


@dataclass(frozen=True)
class IndexConfig:
    max_chunk_chars: int = 1500
    min_chunk_chars: int = 300
    model_name: str = embed.MODEL_NAME
    vectors: bool = True
    workers: int = 2
    batch_files: int = 32

    def stage_keys(self) -> dict[str, str]:
        """Cache keys: everything that changes a stage's output for the same input."""
        extractors = ",".join(f"{lang.name}={lang.version}" for lang in all_languages())
        chunkers = ",".join(f"{lang.name}={lang.chunk_version}" for lang in all_languages())
        keys = {
            L1: f"{L1}:{extractors}",
            L3: f"{L3}:{LEXICAL_VERSION}",
            L2: f"{L2}:{CHUNKER_VERSION}:{chunkers}:{self.max_chunk_chars}:{self.min_chunk_chars}",
        }
        if self.vectors:
            keys[L4] = f"{L4}:{self.model_name}"
        return keys


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
                # forkserver: children start from a clean single-threaded process, never from
                # a fork of this one while another stage's thread holds a lock.
                ctx = multiprocessing.get_context("forkserver")
                ctx.set_forkserver_preload(["codegraph.stages"])
                self._pool = ProcessPoolExecutor(max_workers=self.config.workers, mp_context=ctx)
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


def _batches(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


# ----- worker-process functions (module level, so they pickle) --------------------------------


BatchResult = list[tuple[str, str, bytes | None, str | None]]  # (path, hash, payload, error)
# A file that could not be read (again) is a fact about this run, not about its content: such
# errors are reported but never stored under the content hash.
_UNREADABLE = "unreadable: "


def _extract_batch(root: str, batch: list[tuple[str, str]]) -> BatchResult:
    out = []
    for path, content_hash in batch:
        lang = language_for(path)
        try:
            text = read_text(Path(root), path, content_hash)
            assert lang is not None
            out.append((path, content_hash, _ENCODE_IR.encode(lang.extract(text)), None))
        except OSError as exc:
            out.append((path, content_hash, None, f"{_UNREADABLE}{exc}"))
        except RecursionError:
            out.append((path, content_hash, None, "nesting too deep to analyse"))
        except Exception as exc:
            out.append((path, content_hash, None, f"{type(exc).__name__}: {exc}"))
    return out


def _chunk_batch(
    root: str, batch: list[tuple[str, str]], max_chars: int, min_chars: int
) -> list[tuple[str, str, bytes | None, str | None]]:
    out = []
    for path, content_hash in batch:
        lang = language_for(path)
        try:
            text = read_text(Path(root), path, content_hash)
            chunks = (
                lang.chunk(text, max_chars, min_chars) if lang is not None
                else chunk_plain_text(text, max_chars, min_chars)
            )
            out.append((path, content_hash, _ENCODE_CHUNKS.encode(chunks), None))
        except OSError as exc:
            out.append((path, content_hash, None, f"{_UNREADABLE}{exc}"))
        except RecursionError:
            out.append((path, content_hash, None, "nesting too deep to chunk"))
        except Exception as exc:
            out.append((path, content_hash, None, f"{type(exc).__name__}: {exc}"))
    return out


def _verified_ir(payload: bytes, checksum: str | None) -> FileIR | None:
    if checksum != payload_checksum(payload):
        return None
    try:
        return _DECODE_IR.decode(payload)
    except msgspec.DecodeError:
        return None


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


# ----- L1 -----------------------------------------------------------------------------------


class IRStage:
    """Per file: parse (content-keyed, workers). Per snapshot: resolve names across files; with a
    base snapshot, only the files that changed and the files that read a changed fact."""

    name = L1
    depends_on: tuple[str, ...] = ()

    def run(self, ctx: RunContext) -> dict[str, Any]:
        key = ctx.keys[L1]
        code_files = [f for f in ctx.files if language_for(f.path) is not None]
        hashes = {f.content_hash for f in code_files}
        existing = ctx.stored(L1, hashes, ctx.store.existing_ir)
        todo = _unique_by_hash(code_files, hashes - existing)
        ctx.progress.start(self.name, len(code_files))
        ctx.progress.advance(self.name, len(code_files) - len(todo))
        resolution = _Resolution(ctx)
        # One transaction per batch, not write groups: L3 runs beside this loop and writes too.
        for results in _run_batches(ctx, self.name, _extract_batch, todo):
            rows = [(h, payload, error) for _, h, payload, error in ctx.stored_results(L1, results)]
            ctx.store.put_ir(key, rows)
            resolution.parsed(rows)  # the first call also reads the base IR: the workers are busy
        ctx.check_cancelled()
        resolved = resolution.run()
        repaired = resolved["files_repaired"]
        return {"files_parsed": len(todo) + repaired,
                "files_reused": len(code_files) - len(todo) - repaired, **resolved}


class _IRSource:
    """Per-file IR for resolution, loaded on demand and verified: a damaged stored IR is
    recomputed from the file (and reported), never used. Used in this process and in workers."""

    def __init__(self, root: Path, store: Store, key: str) -> None:
        self.root = root
        self.store = store
        self.key = key
        self.rows: dict[str, tuple[bytes | None, str | None, str | None]] = {}  # hash -> stored row
        self.repairs: dict[str, tuple[bytes | None, str | None]] = {}  # hash -> recomputed row
        self.warnings: list[str] = []
        # The last IR decoded: a file's rows and its resolution both ask for it, one after the other.
        self._recent: tuple[str, FileIR] | None = None

    def prefetch(self, content_hashes: Iterable[str]) -> None:
        missing = sorted({h for h in content_hashes if h not in self.rows})
        if missing:
            self.rows.update(self.store.ir_rows(self.key, missing))

    def ir(self, path: str, content_hash: str) -> FileIR:
        if self._recent is not None and self._recent[0] == content_hash:
            return self._recent[1]
        ir = self._decoded(path, content_hash)
        self._recent = (content_hash, ir)
        return ir

    def _decoded(self, path: str, content_hash: str) -> FileIR:
        row = self.rows.get(content_hash)
        if row is None:
            row = self.store.ir_rows(self.key, [content_hash]).get(content_hash, (None, "no IR", None))
            self.rows[content_hash] = row
        payload, error, checksum = row
        if payload is None:
            return _EMPTY_IR  # its error is reported from the store (`stage_errors`)
        ir = _verified_ir(payload, checksum)
        if ir is None:
            self.warnings.append(f"corrupt L1 output for {path} ({content_hash}): recomputed")
            (_, _, payload, error), = _extract_batch(str(self.root), [(path, content_hash)])
            self.repairs[content_hash] = (payload, error)
            self.rows[content_hash] = (payload, error, payload_checksum(payload))
            return _DECODE_IR.decode(payload) if payload is not None else _EMPTY_IR
        return ir


def _resolve_paths(source: _IRSource, resolver: Resolver, hashes: dict[str, str],
                   modules: Mapping[str, str], paths: list[str]) -> tuple[list[ResolvedFile], int]:
    """Resolve `paths`; their results as stored rows, and how many had syntax errors."""
    out: list[ResolvedFile] = []
    syntax_errors = 0
    for path in paths:
        ir = source.ir(path, hashes[path])  # first: the resolver's load of it is then no decode
        res = resolver.resolve_file(path)
        syntax_errors += ir.syntax_errors > 0
        module = modules[path]
        symbols = []
        for s in ir.symbols:
            qname = f"{module}.{s.local_name}" if s.local_name else module
            symbols.append(SymbolRow(qname, qname.rpartition(".")[2], s.kind, path,
                                     s.start_line, s.end_line, s.signature, s.docstring))
        out.append(ResolvedFile(
            path, hashes[path], symbols, res.edges, sorted(res.deps),
            sorted({read_key(p, k) for p, k in res.reads}), res.unresolved_calls))
    return out, syntax_errors


# A worker's resolver for the snapshot it is resolving now, kept between its batches: answers
# about shared modules (exports, class bases) are worked out once per worker, not once per batch.
_WORKER_RESOLVER: dict[tuple[str, str, int, str], tuple[_IRSource, Resolver]] = {}
_WORKER_STORES: dict[str, Store] = {}


def _resolve_batch(root: str, store_url: str, key: str, snapshot_id: int, lang_name: str,
                   modules: dict[str, str], hashes: dict[str, str], paths: list[str]) -> tuple[
                       list[ResolvedFile], int, dict[str, tuple[bytes | None, str | None]], list[str]]:
    """Worker side of a parallel resolution: the store is opened once per worker process."""
    from codegraph.store import open_store

    store = _WORKER_STORES.get(store_url)
    if store is None:
        store = _WORKER_STORES[store_url] = open_store(store_url)
    cache_key = (store_url, key, snapshot_id, lang_name)
    if cache_key not in _WORKER_RESOLVER:
        _WORKER_RESOLVER.clear()
        source = _IRSource(Path(root), store, key)
        resolver = get_language(lang_name).resolver(modules, lambda p: source.ir(p, hashes[p]))
        _WORKER_RESOLVER[cache_key] = source, resolver
    source, resolver = _WORKER_RESOLVER[cache_key]
    source.prefetch(hashes[p] for p in paths)
    rows, syntax_errors = _resolve_paths(source, resolver, hashes, modules, paths)
    repairs, warnings = source.repairs, source.warnings
    source.repairs, source.warnings = {}, []
    return rows, syntax_errors, repairs, warnings


class _Resolution:
    """The second half of L1 for one snapshot."""

    def __init__(self, ctx: RunContext):
        self.ctx = ctx
        self.key = ctx.keys[L1]
        self.source = _IRSource(ctx.root, ctx.store, self.key)
        self.repaired: set[str] = set()
        self.syntax_errors = 0
        # Against a base: the changed files' interface diffs, worked out while the others parse.
        self._diff_when_parsed: dict[str, list[tuple[Language, str]]] = {}  # new hash -> files
        self._changed_facts: dict[str, set[int]] = {}  # path -> facts its change touched
        self._expecting = False

    def _expect_changes(self) -> None:
        """Note which changed files to diff once their new IR is parsed, and fetch their base
        IR (once, when the first parsed batch arrives: by then every batch is submitted)."""
        ctx = self.ctx
        self._expecting = True
        if ctx.base is None:
            return
        old_hashes = []
        for lang, modules in self._languages.items():
            base = self._base_files(lang)
            for path in self._changed(lang, modules, base):
                self._diff_when_parsed.setdefault(ctx.hashes[path], []).append((lang, path))
                if path in base:
                    old_hashes.append(base[path].content_hash)
        self.source.prefetch(old_hashes)

    def parsed(self, rows: list[tuple[str, bytes | None, str | None]]) -> None:
        """New IR, just stored: keep it for resolution, and diff the changed files it belongs to
        (the main thread would otherwise wait for the workers doing nothing)."""
        if not self._expecting:
            self._expect_changes()
        self.source.rows.update((h, (payload, error, payload_checksum(payload)))
                                for h, payload, error in rows)
        for content_hash, _, _ in rows:
            for lang, path in self._diff_when_parsed.pop(content_hash, []):
                with suppress(_BaseUnusable):  # said (and acted on) when `affected` meets it again
                    self._changed_facts[path] = self._file_facts(lang, path)

    @cached_property
    def _languages(self) -> dict[Language, dict[str, str]]:
        """Per language of the snapshot: its files, path -> module name."""
        by_lang: dict[str, dict[str, str]] = {}
        for f in self.ctx.files:
            lang = language_for(f.path)
            if lang is not None:
                by_lang.setdefault(lang.name, {})[f.path] = self.ctx.modules.get(f.path) or ""
        return {get_language(name): modules for name, modules in sorted(by_lang.items())}

    def _base_files(self, lang: Language) -> dict[str, FileRow]:
        return {path: row for path, row in self.ctx.base_files.items() if row.language == lang.name}

    def _changed(self, lang: Language, modules: dict[str, str], base: dict[str, FileRow]) -> set[str]:
        hashes = self.ctx.hashes
        return {p for p, module in modules.items()
                if p not in base or base[p].content_hash != hashes[p] or base[p].module != module
                or base[p].res_id is None}

    def ir(self, path: str, content_hash: str) -> FileIR:
        ir = self.source.ir(path, content_hash)
        self._record_repairs(self.source.repairs, self.source.warnings)
        self.source.repairs, self.source.warnings = {}, []
        return ir

    def _record_repairs(self, repairs: dict[str, tuple[bytes | None, str | None]],
                        warnings: list[str]) -> None:
        fresh = {h: row for h, row in repairs.items() if h not in self.repaired}
        if fresh:  # two workers may have repaired one content: store and report it once
            self.ctx.store.put_ir(self.key, [(h, payload, error) for h, (payload, error) in fresh.items()])
            self.repaired.update(fresh)
            self.ctx.warnings.extend(w for w in warnings if any(h in w for h in fresh))

    def _record(self, rows: list[ResolvedFile], syntax_errors: int, group: _WriteGroups) -> None:
        self.syntax_errors += syntax_errors
        if rows:
            self.ctx.store.put_resolutions(self.ctx.snapshot_id, rows)
            group.wrote()

    def run(self) -> dict[str, Any]:
        ctx = self.ctx
        hashes = ctx.hashes
        affected: list[str] = []
        with _WriteGroups(ctx.store) as group:
            for lang, modules in self._languages.items():
                affected.extend(self._resolve_language(lang, modules, hashes, group))
        ctx.affected_files = sorted(affected)
        symbols, edges = ctx.store.graph_counts(ctx.snapshot_id)
        return {"files_resolved": len(affected), "symbols": symbols, "edges": edges,
                "unresolved_calls": ctx.store.unresolved_calls(ctx.snapshot_id),
                "files_with_syntax_errors": self.syntax_errors, "files_repaired": len(self.repaired)}

    def _resolve_language(self, lang: Language, modules: dict[str, str], hashes: dict[str, str],
                          group: _WriteGroups) -> list[str]:
        """Resolve what needs it among one language's files; the files resolved. The others keep
        the base's resolution, which the snapshot's files were created pointing at."""
        ctx = self.ctx
        try:
            todo = sorted(modules) if ctx.base is None else self.affected(lang, modules, hashes)
        except _BaseUnusable as exc:
            ctx.warn(f"resolving every {lang.name} file: {exc}")
            todo = sorted(modules)
        if len(todo) > PARALLEL_RESOLVE_MIN_FILES and ctx.config.workers > 1:
            self._resolve_in_workers(lang.name, modules, hashes, todo, group)
            return todo
        # One query for what resolving `todo` will surely read, not one per file.
        wanted = set(todo) if ctx.base is None else (
            set(todo) | (ctx.store.dependencies(ctx.base.id, todo) & set(modules)))
        self.source.prefetch(hashes[p] for p in wanted)
        resolver = lang.resolver(modules, lambda p: self.ir(p, hashes[p]))
        for i in range(0, len(todo), RESOLVE_BATCH):
            ctx.check_cancelled()
            rows, syntax_errors = _resolve_paths(self.source, resolver, hashes, modules,
                                                 todo[i : i + RESOLVE_BATCH])
            self._record_repairs(self.source.repairs, self.source.warnings)
            self._record(rows, syntax_errors, group)
        return todo

    def _resolve_in_workers(self, lang_name: str, modules: dict[str, str], hashes: dict[str, str],
                            todo: list[str], group: _WriteGroups) -> None:
        """Files resolve independently (each result is a function of the snapshot alone), so
        batches of them go to the worker pool; each worker loads the IR its lookups reach."""
        ctx = self.ctx
        lang_hashes = {p: hashes[p] for p in modules}
        # Many small batches: each worker keeps its resolver between them, and results arrive
        # (to be written while the workers go on) steadily rather than all at the end.
        futures = [
            ctx.pool().submit(_resolve_batch, str(ctx.root), ctx.store.url, self.key,
                              ctx.snapshot_id, lang_name, modules, lang_hashes, batch)
            for batch in _balanced_batches(todo, ctx.sizes, ctx.config.workers, 64, per_worker=8)
        ]
        try:
            for future in as_completed(futures):
                ctx.check_cancelled()
                rows, syntax_errors, repairs, warnings = future.result()
                self._record_repairs(repairs, warnings)
                self._record(rows, syntax_errors, group)
        finally:
            for future in futures:
                future.cancel()

    def affected(self, lang: Language, modules: dict[str, str], hashes: dict[str, str]) -> list[str]:
        """The files to re-resolve against the base snapshot: changed ones, and those whose
        recorded reads include a fact that changed (the early cutoff: a body-only edit changes
        no fact another file can read, so it re-resolves no other file)."""
        ctx = self.ctx
        base = self._base_files(lang)
        changed = self._changed(lang, modules, base)
        deleted = set(base) - set(modules)
        self.source.prefetch(base[p].content_hash for p in changed | deleted if p in base)
        facts: set[int] = set()
        for path in changed | deleted:
            known = self._changed_facts.get(path)
            facts.update(known if known is not None else self._file_facts(lang, path))
        before = lang.namespace({p: r.module or "" for p, r in base.items()})
        after = lang.namespace(modules)
        facts.update(read_key("", k) for k in before.keys() | after.keys()
                     if before.get(k, _ABSENT) != after.get(k, _ABSENT))
        readers = ctx.store.readers(ctx.base.id, facts) if facts and ctx.base else set()
        return sorted(changed | (readers & set(modules)))

    def _file_facts(self, lang: Language, path: str) -> set[int]:
        """The read keys of the facts of `path` that differ between the base and this snapshot."""
        ctx = self.ctx
        row = ctx.base_files.get(path)
        if row is not None and row.language != lang.name:
            row = None
        if row is None:
            old: Mapping[str, Hashable] = {}
        elif row.content_hash not in self.source.rows:  # prefetched when it exists
            # Without the old facts the diff could miss a removed name: resolve everything.
            raise _BaseUnusable(f"the base snapshot's L1 output for {path} is gone")
        else:
            old = lang.interface(path, row.module or "", self.ir(path, row.content_hash))
        new = (lang.interface(path, ctx.modules.get(path) or "", self.ir(path, ctx.hashes[path]))
               if path in ctx.hashes else {})
        return {read_key(path, k) for k in old.keys() | new.keys()
                if old.get(k, _ABSENT) != new.get(k, _ABSENT)}


class _BaseUnusable(Exception):
    pass


_ABSENT = object()
_EMPTY_IR = FileIR([], [], [], None, 0)
RESOLVE_BATCH = 256  # files resolved in this process between cancellation checks
PARALLEL_RESOLVE_MIN_FILES = 64  # fewer files are resolved in this process


# ----- L3 -----------------------------------------------------------------------------------


class LexicalStage:
    name = L3
    depends_on: tuple[str, ...] = ()

    def run(self, ctx: RunContext) -> dict[str, Any]:
        key = ctx.keys[L3]
        existing = ctx.stored(L3, {f.content_hash for f in ctx.files}, ctx.store.existing_lexical)
        damaged: dict[str, str] = {}
        if ctx.verify_all and existing:
            damaged = _by_content(ctx.store.damaged_lexical(ctx.snapshot_id, key))
            for content_hash, path in damaged.items():
                ctx.warn(f"corrupt L3 output for {path} ({content_hash}): recomputed")
            if ctx.store.verify_lexical_index():
                ctx.warn("corrupt L3 full-text index: rebuilt from the stored documents")
        todo = _unique_by_hash(ctx.files, {f.content_hash for f in ctx.files} - (existing - set(damaged)))
        ctx.progress.start(self.name, len(ctx.files))
        ctx.progress.advance(self.name, len(ctx.files) - len(todo))
        for batch in _batches(todo, ctx.config.batch_files * 4):
            ctx.check_cancelled()
            docs = []
            for path, content_hash in batch:
                try:
                    text = read_text(ctx.root, path, content_hash)
                except (OSError, ValueError) as exc:
                    ctx.fail_file(path, "L3", str(exc))
                    continue
                docs.append(LexicalDoc(content_hash, text, lexical.subtokens(text)))
            ctx.store.put_lexical(key, docs)
            ctx.progress.advance(self.name, len(batch))
        return {"documents_written": len(todo), "documents_reused": len(ctx.files) - len(todo),
                "documents_repaired": len(damaged)}


# ----- L2 -----------------------------------------------------------------------------------


class ChunkStage:
    name = L2
    depends_on: tuple[str, ...] = (L1, L3)

    def run(self, ctx: RunContext) -> dict[str, Any]:
        key = ctx.keys[L2]
        existing = ctx.stored(L2, {f.content_hash for f in ctx.files}, ctx.store.existing_chunk_sets)
        damaged: dict[str, str] = {}
        bad_texts: set[str] = set()
        if ctx.verify_all and existing:
            damaged_paths, bad_texts = ctx.store.damaged_chunk_sets(ctx.snapshot_id, key)
            damaged = _by_content(damaged_paths)
            for content_hash, path in damaged.items():
                ctx.warn(f"corrupt L2 output for {path} ({content_hash}): recomputed")
        todo = _unique_by_hash(ctx.files, {f.content_hash for f in ctx.files} - (existing - set(damaged)))
        ctx.progress.start(self.name, len(ctx.files))
        ctx.progress.advance(self.name, len(ctx.files) - len(todo))
        cfg = ctx.config
        with _WriteGroups(ctx.store) as group:
            for results in _run_batches(
                ctx, self.name, _chunk_batch, todo, cfg.max_chunk_chars, cfg.min_chunk_chars
            ):
                rows: list[tuple[str, list[Chunk] | None, str | None]] = []
                for _path, content_hash, payload, error in ctx.stored_results(L2, results):
                    if payload is None:  # reported from the store, by this run and every later one
                        rows.append((content_hash, None, error or "no chunks"))
                    else:
                        rows.append((content_hash, _DECODE_CHUNKS.decode(payload), None))
                ctx.store.put_chunks(key, rows)
                if bad_texts:  # put_chunks keeps a stored text: put the recomputed one over it
                    ctx.store.replace_texts(sorted({(c.text_hash, c.text) for _, chunks, _ in rows
                                                    for c in chunks or [] if c.text_hash in bad_texts}))
                group.wrote()
        return {"files_chunked": len(todo), "files_reused": len(ctx.files) - len(todo),
                "files_repaired": len(damaged),
                "chunks": ctx.store.snapshot_chunk_count(ctx.snapshot_id, key)}


# ----- L4 -----------------------------------------------------------------------------------


class VectorStage:
    name = L4
    depends_on: tuple[str, ...] = (L2,)

    def run(self, ctx: RunContext) -> dict[str, Any]:
        import numpy as np  # here, not at the top: worker processes and most CLI runs never need it

        model_key = ctx.keys[L4]
        chunk_key = ctx.keys[L2]
        repaired = 0
        if ctx.verify_all:
            damaged = sorted(ctx.store.damaged_embeddings(
                ctx.snapshot_id, chunk_key, model_key, embed.dimensions(ctx.config.model_name)))
            for text_hash in damaged:
                ctx.warn(f"corrupt L4 output for text {text_hash}: embedded again")
            if damaged:  # dropped, they are texts without an embedding like any other: embedded below
                ctx.store.delete_embeddings(model_key, damaged)
            repaired = len(damaged)
        todo = ctx.store.texts_without_embedding(ctx.snapshot_id, chunk_key, model_key)
        todo, texts_repaired = self._verified_texts(ctx, todo)
        # Similar lengths side by side: a batch then falls in one or two padded lengths.
        todo.sort(key=lambda item: (len(item[1]), item[0]))
        ctx.progress.start(self.name, len(todo))
        for batch in _batches(todo, EMBED_BATCH):
            ctx.check_cancelled()
            vectors = embed.embed([text for _, text in batch], ctx.config.model_name)
            ctx.store.put_embeddings(
                model_key,
                [(h, np.ascontiguousarray(v, dtype=np.float32).tobytes())
                 for (h, _), v in zip(batch, vectors, strict=True)],
            )
            ctx.progress.advance(self.name, len(batch))
        vectors = ctx.store.count_embedded(ctx.snapshot_id, chunk_key, model_key)
        return {"embedded": len(todo), "texts_reused": vectors - len(todo), "vectors": vectors,
                "vectors_repaired": repaired, "texts_repaired": texts_repaired}

    @staticmethod
    def _verified_texts(ctx: RunContext, todo: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], int]:
        """The texts to embed, each checked against its hash: a damaged one is chunked again
        from a file that holds it (L2's own computation), stored again, and that text embedded."""
        bad = {h for h, text in todo if not text_ok(text, h)}
        if not bad:
            return todo, 0
        owners = ctx.store.text_owners(ctx.snapshot_id, ctx.keys[L2], sorted(bad))
        fixed: dict[str, str] = {}
        cfg = ctx.config
        for path, content_hash in sorted(set(owners.values())):
            for _, _, payload, _ in _chunk_batch(str(ctx.root), [(path, content_hash)],
                                                  cfg.max_chunk_chars, cfg.min_chunk_chars):
                for chunk in _DECODE_CHUNKS.decode(payload) if payload is not None else []:
                    if chunk.text_hash in owners:
                        fixed[chunk.text_hash] = chunk.text
        for text_hash in sorted(bad):
            path = owners.get(text_hash, ("?", ""))[0]
            ctx.warn(f"corrupt L2 text {text_hash} (of {path}): "
                     + ("chunked again" if text_hash in fixed else "not embedded: its file is gone"))
        ctx.store.replace_texts(sorted(fixed.items()))
        return [(h, fixed.get(h, text)) for h, text in todo if h in fixed or h not in bad], len(fixed)


def pipeline_stages(config: IndexConfig) -> list[Any]:
    stages: list[Any] = [IRStage(), LexicalStage(), ChunkStage()]
    if config.vectors:
        stages.append(VectorStage())
    return stages
