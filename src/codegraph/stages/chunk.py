"""L2: per file content, its units' embedding windows (codegraph.units), from the file's text and
its L1 IR. No parsing: units come from L1's symbols. Cutting units and turning them into a
stage's output is pure per-file work: `units_work` runs it on the worker pool (in this process
for a few files), for L2's windows and L3's documents alike; the stages only write."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, as_completed
from pathlib import Path
from typing import Any

import msgspec

from codegraph.confine import RootDir, open_root
from codegraph.languages import language_for
from codegraph.model import Chunk, FileIR
from codegraph.snapshot import read_text
from codegraph.stages.context import (
    _UNREADABLE,
    INLINE_MAX_FILES,
    L1,
    L2,
    RunContext,
    _balanced_batches,
    _batches,
    _by_content,
    _unique_by_hash,
    worker_store,
)
from codegraph.store.base import Store
from codegraph.units import Unit, unit_chunks, units_for

_DECODE_IR = msgspec.msgpack.Decoder(FileIR)
UNITS_BATCH = 64  # files whose IR is read at once (and at most this many in one pool task)

# (path, content hash, the stage's output of its units or None, error)
WorkResult = list[tuple[str, str, Any, str | None]]


def file_units(root: Path, path: str, content_hash: str, payload: bytes | None,
               tree: RootDir | None = None) -> list[Unit]:
    """The units of one file content: from its L1 IR (`payload`; None when L1 failed on it, then
    line windows as for a file without a language). `tree`: the root, opened once (`confine`)."""
    text = read_text(root, path, content_hash, tree)
    ir = _DECODE_IR.decode(payload) if payload is not None else None
    return units_for(language_for(path), text, ir)


def units_work_batch(store: Store, root: str, l1_key: str, batch: Sequence[tuple[str, str]],
                     work: Callable[..., Any], args: tuple[Any, ...]) -> WorkResult:
    """`work(path, units, *args)` for each (path, content hash) of `batch`: its units cut from its text
    and stored IR. Errors that are facts of the content are returned as such (output None);
    unreadable files carry the `_UNREADABLE` prefix (reported for this run only)."""
    tree = open_root(root)  # None: the root is gone, and each read says so
    try:
        irs = store.ir_rows(l1_key, [h for _, h in batch])
        out: WorkResult = []
        for path, content_hash in batch:
            payload = irs.get(content_hash, (None, None, None))[0]
            try:
                units = file_units(Path(root), path, content_hash, payload, tree)
                out.append((path, content_hash, work(path, units, *args), None))
            except msgspec.DecodeError as exc:
                out.append((path, content_hash, None, f"undecodable L1 output: {exc}"))
            except (OSError, ValueError) as exc:
                out.append((path, content_hash, None, f"{_UNREADABLE}{exc}"))
            except RecursionError:
                out.append((path, content_hash, None, "nesting too deep for units"))
        return out
    finally:
        if tree is not None:
            tree.close()


def _units_work_in_worker(store_url: str, root: str, l1_key: str, batch: list[tuple[str, str]],
                          work: Callable[..., Any], args: tuple[Any, ...]) -> WorkResult:
    return units_work_batch(worker_store(store_url), root, l1_key, batch, work, args)


def units_work(ctx: RunContext, todo: Sequence[tuple[str, str]], work: Callable[..., Any],
               *args: Any) -> Iterator[WorkResult]:
    """`work(path, units, *args)` (a module-level function: it runs in worker processes) for every
    (path, content hash) of `todo`, a batch at a time, as batches complete. A few files (a
    typical update) are done in this process: starting workers costs more."""
    key = ctx.keys[L1]
    if len(todo) <= INLINE_MAX_FILES:
        for batch in _batches(todo, UNITS_BATCH):
            ctx.check_cancelled()
            yield units_work_batch(ctx.store, str(ctx.root), key, batch, work, args)
        return
    futures: list[Future[Any]] = [
        ctx.pool().submit(_units_work_in_worker, ctx.store.url, str(ctx.root), key, batch, work, args)
        for batch in _balanced_batches(list(todo), ctx.sizes, ctx.config.workers, UNITS_BATCH)
    ]
    try:
        for future in as_completed(futures):
            ctx.check_cancelled()
            yield future.result()
    finally:
        for future in futures:
            future.cancel()


def chunks_of(path: str, units: list[Unit], max_chars: int, min_chars: int) -> list[Chunk]:
    """L2's output for one file content: its units' windows, placed by its path (a worker-side
    `work`)."""
    return unit_chunks(units, max_chars, min_chars, path)


# ----- L2 -----------------------------------------------------------------------------------


class ChunkStage:
    name = L2
    depends_on: tuple[str, ...] = (L1,)

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
        # The windows are cut on the worker pool; this thread only writes, a transaction per
        # batch (L3 writes beside it: no transaction is held open while waiting for results).
        for results in units_work(ctx, todo, chunks_of, ctx.config.max_chunk_chars,
                                  ctx.config.min_chunk_chars):
            rows: list[tuple[str, list[Chunk] | None, str | None]] = []
            for path, content_hash, chunks, error in results:
                if error is not None and error.startswith(_UNREADABLE):
                    ctx.fail_file(path, "L2", error)
                elif chunks is None:  # reported from the store, by this run and every later one
                    rows.append((content_hash, None, error or "no units"))
                else:
                    rows.append((content_hash, chunks, None))
            ctx.store.put_chunks(key, rows)
            if bad_texts:  # put_chunks keeps a stored text: put the recomputed one over it
                ctx.store.replace_texts(sorted({(c.text_hash, c.text) for _, chunks, _ in rows
                                                for c in chunks or [] if c.text_hash in bad_texts}))
            ctx.progress.advance(self.name, len(results))
        return {"files_chunked": len(todo), "files_reused": len(ctx.files) - len(todo),
                "files_repaired": len(damaged),
                "chunks": ctx.store.snapshot_chunk_count(ctx.snapshot_id, key)}
