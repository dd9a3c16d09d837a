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

from typing import Any

from codegraph.stages.chunk import ChunkStage
from codegraph.stages.context import (
    CHUNKER_VERSION,
    EMBED_BATCH,
    INLINE_MAX_FILES,
    L1,
    L2,
    L3,
    L4,
    LEXICAL_VERSION,
    IndexConfig,
    NoProgress,
    ProgressSink,
    RunContext,
)
from codegraph.stages.ir import PARALLEL_RESOLVE_MIN_FILES, IRStage
from codegraph.stages.lexical import LexicalStage
from codegraph.stages.vector import VectorStage

__all__ = [
    "CHUNKER_VERSION", "EMBED_BATCH", "INLINE_MAX_FILES", "L1", "L2", "L3", "L4", "LEXICAL_VERSION",
    "PARALLEL_RESOLVE_MIN_FILES", "ChunkStage", "IRStage", "IndexConfig", "LexicalStage", "NoProgress",
    "ProgressSink", "RunContext", "VectorStage", "pipeline_stages",
]


def pipeline_stages(config: IndexConfig) -> list[Any]:
    stages: list[Any] = [IRStage(), LexicalStage(), ChunkStage()]
    if config.vectors:
        stages.append(VectorStage())
    return stages

