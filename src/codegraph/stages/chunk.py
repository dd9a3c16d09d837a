"""L2: per file content, syntax-aware chunks (worker processes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from codegraph.chunking import chunk_plain_text
from codegraph.confine import open_root
from codegraph.languages import language_for
from codegraph.model import Chunk
from codegraph.snapshot import read_text
from codegraph.stages.context import (
    _UNREADABLE,
    L1,
    L2,
    L3,
    RunContext,
    _by_content,
    _run_batches,
    _unique_by_hash,
    _WriteGroups,
)

_ENCODE_CHUNKS = msgspec.msgpack.Encoder()
_DECODE_CHUNKS = msgspec.msgpack.Decoder(list[Chunk])


def _chunk_batch(
    root: str, batch: list[tuple[str, str]], max_chars: int, min_chars: int
) -> list[tuple[str, str, bytes | None, str | None]]:
    out = []
    tree = open_root(root)  # None: the root is gone, and each read says so
    try:
        for path, content_hash in batch:
            lang = language_for(path)
            try:
                text = read_text(Path(root), path, content_hash, tree)
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
    finally:
        if tree is not None:
            tree.close()
    return out



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
