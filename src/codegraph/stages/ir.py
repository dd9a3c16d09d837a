"""L1: per file, parse (content-keyed, in worker processes); per snapshot, resolve names across
files, with a base snapshot only the files that changed and those that read a changed fact."""

from __future__ import annotations

import gc
from collections.abc import Hashable, Iterable, Mapping
from concurrent.futures import as_completed
from contextlib import suppress
from functools import cached_property
from pathlib import Path
from typing import Any

import msgspec

from codegraph.confine import open_root
from codegraph.languages import Language, Resolver, get_language, language_for
from codegraph.model import FileIR, Read
from codegraph.snapshot import read_text
from codegraph.stages.context import (
    _UNREADABLE,
    L1,
    BatchResult,
    RunContext,
    _balanced_batches,
    _run_batches,
    _unique_by_hash,
    _WriteGroups,
    worker_store,
)
from codegraph.store.base import (
    FileRow,
    ResolvedFile,
    Store,
    SymbolRow,
    payload_checksum,
    read_key,
)

_ENCODE_IR = msgspec.msgpack.Encoder()
_DECODE_IR = msgspec.msgpack.Decoder(FileIR)


class _IndexOnly(msgspec.Struct, frozen=True, gc=False):
    """A stored IR's `index` alone: decoding it skips the other fields (no objects made)."""

    index: dict[str, tuple[tuple[str | tuple[str, ...], ...], ...]] = msgspec.field(
        default_factory=dict)


_DECODE_INDEX = msgspec.msgpack.Decoder(_IndexOnly)
_DECODE_ENTRIES = msgspec.msgpack.Decoder(tuple[tuple[str | tuple[str, ...], ...], ...])
_DECODE_RESOLVED = msgspec.msgpack.Decoder(list[ResolvedFile])


def _fact_rows(rows: list[tuple[str, bytes | None, str | None]]) -> list[tuple[str, str, bytes]]:
    """The "@" facts of new IR rows as the store keeps them by key (`Store.put_ir`), with the
    row that says each content's facts are all there (a failed file has none)."""
    out: list[tuple[str, str, bytes]] = []
    for content_hash, payload, _ in rows:
        if payload is not None:
            index = _DECODE_INDEX.decode(payload).index
            out.extend((content_hash, key, _ENCODE_IR.encode(entries)) for key, entries in index.items())
        out.append((content_hash, "", b""))
    return out


def _extract_batch(root: str, batch: list[tuple[str, str]]) -> BatchResult:
    out = []
    tree = open_root(root)  # None: the root is gone, and each read says so
    # Extraction makes many short-lived containers and no cycles (refcounting frees them): the
    # cyclic GC's collections would only walk them (~3% of Python's extraction on the stdlib).
    collecting = gc.isenabled()
    gc.disable()
    try:
        for path, content_hash in batch:
            lang = language_for(path)
            try:
                text = read_text(Path(root), path, content_hash, tree)
                assert lang is not None
                out.append((path, content_hash, _ENCODE_IR.encode(lang.extract(text)), None))
            except OSError as exc:
                out.append((path, content_hash, None, f"{_UNREADABLE}{exc}"))
            except RecursionError:
                out.append((path, content_hash, None, "nesting too deep to analyse"))
            except Exception as exc:
                out.append((path, content_hash, None, f"{type(exc).__name__}: {exc}"))
    finally:
        if collecting:
            gc.enable()
        if tree is not None:
            tree.close()
    return out



def _verified_ir(payload: bytes, checksum: str | None) -> FileIR | None:
    if checksum != payload_checksum(payload):
        return None
    try:
        return _DECODE_IR.decode(payload)
    except msgspec.DecodeError:
        return None



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
        # Batches share write groups: each commit writes every page it dirtied, and the facts'
        # rows land all over their table, so a commit per batch wrote most of it 57 times over
        # on the stdlib (put_ir 1.2 s of the main process's CPU; grouped, ~0.8 s). No other
        # stage runs beside this loop (L2 and L3 wait for L1), so no one waits on the group.
        with _WriteGroups(ctx.store) as group:
            for results in _run_batches(ctx, self.name, _extract_batch, todo):
                rows = [(h, payload, error) for _, h, payload, error in ctx.stored_results(L1, results)]
                ctx.store.put_ir(key, rows, _fact_rows(rows))
                group.wrote()
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
        # Once this source feeds a resolver (`keep_decoded`): every IR decoded, by content hash.
        self._kept: dict[str, FileIR] | None = None
        # read -> its `read_key`, for the resolutions this source feeds: files read the same
        # facts (the stdlib's 1789 files record 277k reads of 58k facts), each hashed once.
        self.read_keys: dict[Read, int] = {}

    def prefetch(self, content_hashes: Iterable[str]) -> None:
        missing = sorted({h for h in content_hashes if h not in self.rows})
        if missing:
            self.rows.update(self.store.ir_rows(self.key, missing))

    def keep_decoded(self) -> None:
        """Keep every IR decoded from now on. For resolution: a resolver keeps every file it
        loads, so keeping them here too costs no memory, and a file it loaded as a dependency
        of an earlier one is not decoded again for its own rows (a full build of the stdlib
        decoded 3144 IRs for 1789 files without this)."""
        if self._kept is None:
            self._kept = dict([self._recent]) if self._recent is not None else {}

    def release_decoded(self) -> None:
        """The resolver is done: keep no more than the last IR again."""
        self._kept = None

    def ir(self, path: str, content_hash: str) -> FileIR:
        kept = self._kept
        if kept is not None:
            ir = kept.get(content_hash)
            if ir is None:
                ir = kept[content_hash] = self._decoded(path, content_hash)
            return ir
        if self._recent is not None and self._recent[0] == content_hash:
            return self._recent[1]
        ir = self._decoded(path, content_hash)
        self._recent = (content_hash, ir)
        return ir

    def indexes(self, hashes: Mapping[str, str]) -> dict[str, Mapping[str, tuple[Any, ...]]]:
        """Every file's `FileIR.index` (path -> its "@" facts; `hashes`: path -> content
        hash), in one query, each verified, the rest of each IR skipped."""
        self.prefetch(hashes.values())
        out: dict[str, Mapping[str, tuple[Any, ...]]] = {}
        for path, content_hash in hashes.items():
            payload, _, checksum = self.rows.get(content_hash, (None, None, None))
            if payload is not None and checksum == payload_checksum(payload):
                with suppress(msgspec.DecodeError):
                    out[path] = _DECODE_INDEX.decode(payload).index
                    continue
            out[path] = self.ir(path, content_hash).index  # none, or damaged: as `ir` says
        return out

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


class _SnapshotFacts:
    """`LoadFacts` over one snapshot's files (path -> content hash): one "@" key's entries, as
    (path, entry) in path order. `per_key`: each key is read from the store's `ir_facts` (an
    update asks a few keys: it reads those, not every file's IR); otherwise (a full build asks
    most of them) every file's index is decoded from its IR at the first ask. Contents whose
    facts the store does not hold (stored before `ir_facts`) are read from their IR either way,
    and so is a content whose stored entries do not decode."""

    def __init__(self, source: _IRSource, hashes: Mapping[str, str], per_key: bool) -> None:
        self.source = source
        self.hashes = hashes
        self.per_key = per_key
        self._held: dict[str, str] | None = None  # content hash -> path: facts in `ir_facts`
        self._from_ir: dict[str, list[tuple[str, tuple[Any, ...]]]] = {}

    def __call__(self, key: str) -> list[tuple[str, tuple[Any, ...]]]:
        if self._held is None:
            self._prepare()
        assert self._held is not None
        out = list(self._from_ir.get(key, ()))
        if self._held:
            source = self.source
            for content_hash, blob in source.store.ir_facts(source.key, key):
                path = self._held.get(content_hash)
                if path is None:
                    continue  # another snapshot's content
                try:
                    entries = _DECODE_ENTRIES.decode(blob)
                except msgspec.DecodeError:
                    entries = source.ir(path, content_hash).index.get(key, ())  # verified
                out.extend((path, entry) for entry in entries)
            out.sort(key=_path_of)  # stable: a file's entries keep their order
        return out

    def _prepare(self) -> None:
        source, hashes = self.source, self.hashes
        held = source.store.with_ir_facts(source.key, hashes.values()) if self.per_key else set()
        self._held = {h: p for p, h in hashes.items() if h in held}
        rest = {p: h for p, h in hashes.items() if h not in held}
        files = source.indexes(rest) if rest else {}
        for path in sorted(files):
            for name, entries in files[path].items():
                self._from_ir.setdefault(name, []).extend((path, entry) for entry in entries)


def _path_of(fact: tuple[str, tuple[Any, ...]]) -> str:
    return fact[0]


def _resolve_paths(source: _IRSource, resolver: Resolver, hashes: dict[str, str],
                   modules: Mapping[str, str], paths: list[str]) -> tuple[list[ResolvedFile], int]:
    """Resolve `paths`; their results as stored rows, and how many had syntax errors."""
    source.keep_decoded()
    collecting = gc.isenabled()
    # The resolver's memo only grows, and holds no cycles: each collection of the oldest
    # generation would walk all of it again (a third of the resolution time on the stdlib).
    gc.disable()
    try:
        return _resolve_each(source, resolver, hashes, modules, paths)
    finally:
        if collecting:
            gc.enable()


def _resolve_each(source: _IRSource, resolver: Resolver, hashes: dict[str, str],
                  modules: Mapping[str, str], paths: list[str]) -> tuple[list[ResolvedFile], int]:
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
        out.append(ResolvedFile(path, hashes[path], symbols, res.edges, sorted(res.deps),
                                _read_keys(res.reads, source.read_keys), res.unresolved_calls))
    return out, syntax_errors


def _read_keys(reads: set[Read], known: dict[Read, int]) -> list[int]:
    """The sorted read keys of `reads`, those not in `known` computed (and added to it)."""
    for read in reads.difference(known):  # facts no file resolved before read (a C loop)
        known[read] = read_key(*read)
    return sorted(set(map(known.__getitem__, reads)))


# A worker's resolver for the snapshot it is resolving now, kept between its batches: answers
# about shared modules (exports, class bases) are worked out once per worker, not once per batch.
_WORKER_RESOLVER: dict[tuple[str, str, int, str], tuple[_IRSource, Resolver]] = {}


def _resolve_batch(root: str, store_url: str, key: str, snapshot_id: int, lang_name: str,
                   modules: dict[str, str], hashes: dict[str, str], paths: list[str]) -> tuple[
                       bytes, int, dict[str, tuple[bytes | None, str | None]], list[str]]:
    """Worker side of a parallel resolution: the store is opened once per worker process. The
    rows go back msgpack-encoded (`_DECODE_RESOLVED`): pickling the stdlib's 229k edges cost the
    workers 0.6 s and the main process 0.5 s, msgspec 0.07 s and 0.4 s."""
    store = worker_store(store_url)
    cache_key = (store_url, key, snapshot_id, lang_name)
    if cache_key not in _WORKER_RESOLVER:
        _WORKER_RESOLVER.clear()
        source = _IRSource(Path(root), store, key)
        resolver = get_language(lang_name).resolver(
            modules, lambda p: source.ir(p, hashes[p]), _SnapshotFacts(source, hashes, per_key=False))
        _WORKER_RESOLVER[cache_key] = source, resolver
    source, resolver = _WORKER_RESOLVER[cache_key]
    source.prefetch(hashes[p] for p in paths)
    rows, syntax_errors = _resolve_paths(source, resolver, hashes, modules, paths)
    repairs, warnings = source.repairs, source.warnings
    source.repairs, source.warnings = {}, []
    return _ENCODE_IR.encode(rows), syntax_errors, repairs, warnings


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
        by_family: dict[str, dict[str, str]] = {}
        for f in self.ctx.files:
            lang = language_for(f.path)
            if lang is not None:
                by_family.setdefault(lang.family, {})[f.path] = self.ctx.modules.get(f.path) or ""
        return {get_language(name): modules for name, modules in sorted(by_family.items())}

    def _base_files(self, lang: Language) -> dict[str, FileRow]:
        return {path: row for path, row in self.ctx.base_files.items()
                if _family_name(row.language) == lang.family}

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
        # An update reads the "@" facts it asks by key; a full build decodes every file's.
        facts = _SnapshotFacts(self.source, {p: hashes[p] for p in modules}, per_key=ctx.base is not None)
        resolver = lang.resolver(modules, lambda p: self.ir(p, hashes[p]), facts)
        for i in range(0, len(todo), RESOLVE_BATCH):
            ctx.check_cancelled()
            rows, syntax_errors = _resolve_paths(self.source, resolver, hashes, modules,
                                                 todo[i : i + RESOLVE_BATCH])
            self._record_repairs(self.source.repairs, self.source.warnings)
            self._record(rows, syntax_errors, group)
        self.source.release_decoded()  # with `resolver`, which held them too
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
                encoded, syntax_errors, repairs, warnings = future.result()
                self._record_repairs(repairs, warnings)
                self._record(_DECODE_RESOLVED.decode(encoded), syntax_errors, group)
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
        if row is not None and _family_name(row.language) != lang.family:
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
        # A key starting with "@" is a fact many files contribute to (e.g. "which files of
        # package P define N"): it is read, and so diffed, under the snapshot (path "").
        return {read_key("" if k.startswith("@") else path, k) for k in old.keys() | new.keys()
                if old.get(k, _ABSENT) != new.get(k, _ABSENT)}


def _family_name(language: str | None) -> str | None:
    """The family of a stored file's language (None for one no longer known)."""
    try:
        return get_language(language).family if language else None
    except KeyError:
        return None


class _BaseUnusable(Exception):
    pass


_ABSENT = object()
_EMPTY_IR = FileIR([], [], [], None, 0)
RESOLVE_BATCH = 256  # files resolved in this process between cancellation checks
PARALLEL_RESOLVE_MIN_FILES = 64  # fewer files are resolved in this process
