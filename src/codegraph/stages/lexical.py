"""L3: one BM25 document per file content."""

from __future__ import annotations

from typing import Any

from codegraph import lexical
from codegraph.confine import RootDir, open_root
from codegraph.snapshot import read_text
from codegraph.stages.context import L3, RunContext, _batches, _by_content, _unique_by_hash
from codegraph.store.base import (
    LexicalDoc,
)

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
        tree = open_root(ctx.root)  # None: the root is gone, and each read says so
        try:
            self._write(ctx, key, todo, tree)
        finally:
            if tree is not None:
                tree.close()
        return {"documents_written": len(todo), "documents_reused": len(ctx.files) - len(todo),
                "documents_repaired": len(damaged)}

    @staticmethod
    def _write(ctx: RunContext, key: str, todo: list[tuple[str, str]], tree: RootDir | None) -> None:
        for batch in _batches(todo, ctx.config.batch_files * 4):
            ctx.check_cancelled()
            docs = []
            for path, content_hash in batch:
                try:
                    text = read_text(ctx.root, path, content_hash, tree)
                except (OSError, ValueError) as exc:
                    ctx.fail_file(path, "L3", str(exc))
                    continue
                docs.append(LexicalDoc(content_hash, text, lexical.subtokens(text)))
            ctx.store.put_lexical(key, docs)
            ctx.progress.advance(LexicalStage.name, len(batch))
