"""L4: one embedding per distinct unit window text (L2), never the same text twice."""

from __future__ import annotations

from typing import Any

from codegraph import embed
from codegraph.stages.chunk import chunks_of, units_work
from codegraph.stages.context import EMBED_BATCH, L2, L4, RunContext, _batches, producer_spec
from codegraph.store.base import (
    text_ok,
)

# ----- L4 -----------------------------------------------------------------------------------


class VectorStage:
    name = L4
    depends_on: tuple[str, ...] = (L2,)

    def run(self, ctx: RunContext) -> dict[str, Any]:
        import numpy as np  # here, not at the top: worker processes and most CLI runs never need it

        model_key = ctx.keys[L4]
        spec = producer_spec(model_key)
        chunk_key = ctx.keys[L2]
        repaired = 0
        if ctx.verify_all:
            damaged = sorted(ctx.store.damaged_embeddings(
                ctx.snapshot_id, chunk_key, model_key, embed.dimensions(spec)))
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
            vectors = embed.embed([text for _, text in batch], spec)
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
        for results in units_work(ctx, sorted(set(owners.values())), chunks_of,
                                  ctx.config.max_chunk_chars, ctx.config.min_chunk_chars):
            for _, _, chunks, _ in results:
                for chunk in chunks or []:
                    if chunk.text_hash in owners:
                        fixed[chunk.text_hash] = chunk.text
        for text_hash in sorted(bad):
            path = owners.get(text_hash, ("?", ""))[0]
            ctx.warn(f"corrupt L2 text {text_hash} (of {path}): "
                     + ("chunked again" if text_hash in fixed else "not embedded: its file is gone"))
        ctx.store.replace_texts(sorted(fixed.items()))
        return [(h, fixed.get(h, text)) for h, text in todo if h in fixed or h not in bad], len(fixed)
