"""L3: per file content, one BM25 document per unit of retrieval (codegraph.units)."""

from __future__ import annotations

from typing import Any

from codegraph import lexical
from codegraph.stages.chunk import units_work
from codegraph.stages.context import _UNREADABLE, L1, L3, RunContext, _by_content, _unique_by_hash
from codegraph.store.base import LexicalDoc, LexicalUnit
from codegraph.units import Unit, lexical_head


def lexical_units(path: str, units: list[Unit]) -> list[LexicalUnit]:
    """L3's output for one file content: a document per unit (a worker-side `work`). The path
    is not in it: a lexical query names what a unit is, and path words in every head measured
    no better (ARCHITECTURE "Search")."""
    out = []
    for ordinal, unit in enumerate(units):
        body = unit.text
        out.append(LexicalUnit(ordinal, unit.name, unit.start_line, unit.end_line, lexical_head(unit),
                               body, lexical.subtokens(body)))
    return out


# ----- L3 -----------------------------------------------------------------------------------


class LexicalStage:
    name = L3
    # Units come from L1's symbols; L2 and L3 then run side by side.
    depends_on: tuple[str, ...] = (L1,)

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
        for results in units_work(ctx, todo, lexical_units):  # documents built on the pool
            docs = []
            for path, content_hash, units, error in results:
                if error is not None and error.startswith(_UNREADABLE):
                    ctx.fail_file(path, "L3", error[len(_UNREADABLE):])
                    continue
                # A content L2 reports an error for (its units failed) has no documents.
                docs.append(LexicalDoc(content_hash, units or []))
            ctx.store.put_lexical(key, docs)
            ctx.progress.advance(self.name, len(results))
        return {"documents_written": len(todo), "documents_reused": len(ctx.files) - len(todo),
                "documents_repaired": len(damaged)}
