"""L2: per file content, its units' embedding windows (codegraph.units), from the file's text and
its L1 IR. No parsing: units come from L1's symbols, so this runs in-process."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import msgspec

from codegraph.confine import RootDir, open_root
from codegraph.languages import language_for
from codegraph.model import Chunk, FileIR
from codegraph.snapshot import read_text
from codegraph.stages.context import (
    _UNREADABLE,
    L1,
    L2,
    RunContext,
    _batches,
    _by_content,
    _unique_by_hash,
    _WriteGroups,
)
from codegraph.units import Unit, unit_chunks, units_for

_DECODE_IR = msgspec.msgpack.Decoder(FileIR)
UNITS_BATCH = 64  # files whose IR is read at once

# (path, content hash, its units or None, error)
UnitsResult = list[tuple[str, str, list[Unit] | None, str | None]]


def file_units(root: Path, path: str, content_hash: str, payload: bytes | None,
               tree: RootDir | None = None) -> list[Unit]:
    """The units of one file content: from its L1 IR (`payload`; None when L1 failed on it, then
    line windows as for a file without a language). `tree`: the root, opened once (`confine`)."""
    text = read_text(root, path, content_hash, tree)
    ir = _DECODE_IR.decode(payload) if payload is not None else None
    return units_for(language_for(path), text, ir)


def units_batches(ctx: RunContext, todo: Sequence[tuple[str, str]]) -> Iterator[UnitsResult]:
    """The units of every (path, content hash) of `todo`, a batch at a time. Errors that are
    facts of the content are returned; unreadable files are reported for this run only."""
    tree = open_root(ctx.root)  # None: the root is gone, and each read says so
    try:
        yield from _units_batches(ctx, todo, tree)
    finally:
        if tree is not None:
            tree.close()


def _units_batches(ctx: RunContext, todo: Sequence[tuple[str, str]],
                   tree: RootDir | None) -> Iterator[UnitsResult]:
    for batch in _batches(todo, UNITS_BATCH):
        ctx.check_cancelled()
        irs = ctx.store.ir_rows(ctx.keys[L1], [h for _, h in batch])
        out: UnitsResult = []
        for path, content_hash in batch:
            payload = irs.get(content_hash, (None, None, None))[0]
            try:
                out.append((path, content_hash, file_units(ctx.root, path, content_hash, payload, tree),
                            None))
            except msgspec.DecodeError as exc:
                out.append((path, content_hash, None, f"undecodable L1 output: {exc}"))
            except (OSError, ValueError) as exc:
                out.append((path, content_hash, None, f"{_UNREADABLE}{exc}"))
            except RecursionError:
                out.append((path, content_hash, None, "nesting too deep for units"))
        yield out


def chunks_of(units: list[Unit], ctx: RunContext) -> list[Chunk]:
    return unit_chunks(units, ctx.config.max_chunk_chars, ctx.config.min_chunk_chars)


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
        with _WriteGroups(ctx.store) as group:
            for results in units_batches(ctx, todo):
                rows: list[tuple[str, list[Chunk] | None, str | None]] = []
                for path, content_hash, units, error in results:
                    if error is not None and error.startswith(_UNREADABLE):
                        ctx.fail_file(path, "L2", error)
                    elif units is None:  # reported from the store, by this run and every later one
                        rows.append((content_hash, None, error or "no units"))
                    else:
                        rows.append((content_hash, chunks_of(units, ctx), None))
                ctx.store.put_chunks(key, rows)
                if bad_texts:  # put_chunks keeps a stored text: put the recomputed one over it
                    ctx.store.replace_texts(sorted({(c.text_hash, c.text) for _, chunks, _ in rows
                                                    for c in chunks or [] if c.text_hash in bad_texts}))
                group.wrote()
                ctx.progress.advance(self.name, len(results))
        return {"files_chunked": len(todo), "files_reused": len(ctx.files) - len(todo),
                "files_repaired": len(damaged),
                "chunks": ctx.store.snapshot_chunk_count(ctx.snapshot_id, key)}
