"""The store interface: everything the pipeline and the queries read and write (jobs live in
`codegraph.queue`).

One implementation per engine (SQLite now; PostgreSQL behind the same methods). Stages never see
SQL: they hand typed rows to these methods and get typed rows back.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import xxhash

from codegraph.model import Chunk, Edge
from codegraph.snapshot import Snapshot


@dataclass(frozen=True)
class SnapshotInfo:
    id: int
    repo_root: str
    repo_name: str
    manifest_hash: str
    stage_keys: dict[str, str]
    created_at: float


class FileRow(NamedTuple):
    path: str
    content_hash: str
    language: str | None
    module: str | None


class SymbolRow(NamedTuple):
    qname: str
    name: str
    kind: str
    path: str
    start_line: int
    end_line: int
    signature: str
    docstring: str


class ChunkRow(NamedTuple):
    id: int
    path: str
    module: str | None
    start_line: int
    end_line: int
    symbol: str  # local to the file's module
    text_hash: str
    text: str


class LexicalDoc(NamedTuple):
    content_hash: str
    body: str
    subtokens: str


def payload_checksum(payload: bytes | None) -> str | None:
    """Stored beside every per-file payload; a mismatch means the row is damaged."""
    return None if payload is None else xxhash.xxh3_64_hexdigest(payload)


class Store(ABC):
    url: str

    @abstractmethod
    def close(self) -> None:
        """Release this thread's connection."""

    @abstractmethod
    def create_snapshot(
        self,
        root: str,
        name: str,
        snapshot: Snapshot,
        languages: dict[str, tuple[str | None, str | None]],
        stage_keys: dict[str, str],
        job_id: int | None,
    ) -> int:
        ...

    @abstractmethod
    def complete_snapshot(self, snapshot_id: int, keep: int = 2) -> None:
        """Mark the snapshot complete; drop the cross-file rows of this repo's older snapshots."""
        ...

    @abstractmethod
    def latest_snapshot(self, repo_root: str | None = None) -> SnapshotInfo | None:
        ...

    @abstractmethod
    def snapshot_files(self, snapshot_id: int) -> list[FileRow]:
        ...

    @abstractmethod
    def existing_ir(self, stage_key: str, hashes: Iterable[str]) -> set[str]:
        ...

    @abstractmethod
    def put_ir(self, stage_key: str, rows: Sequence[tuple[str, bytes | None, str | None]]) -> None:
        ...

    @abstractmethod
    def snapshot_ir(
        self, snapshot_id: int, stage_key: str
    ) -> list[tuple[str, str, bytes | None, str | None, str | None]]:
        """(path, content hash, payload, error, stored checksum) of the snapshot's code files."""

    @abstractmethod
    def replace_graph(
        self,
        snapshot_id: int,
        symbols: Iterable[SymbolRow],
        edges: Iterable[Edge],
        file_deps: Iterable[tuple[str, str, str]],
    ) -> None:
        ...

    @abstractmethod
    def existing_chunk_sets(self, stage_key: str, hashes: Iterable[str]) -> set[str]:
        ...

    @abstractmethod
    def put_chunks(
        self, stage_key: str, rows: Sequence[tuple[str, list[Chunk] | None, str | None]]
    ) -> None:
        ...

    @abstractmethod
    def snapshot_chunk_count(self, snapshot_id: int, stage_key: str) -> int:
        ...

    @abstractmethod
    def chunks_of_files(
        self, snapshot_id: int, stage_key: str, paths: Sequence[str]
    ) -> list[ChunkRow]:
        ...

    @abstractmethod
    def chunks_by_ids(self, snapshot_id: int, ids: Sequence[tuple[int, str]]) -> list[ChunkRow]:
        """Chunk rows for (chunk id, path) pairs, in the order given."""
        ...

    @abstractmethod
    def existing_lexical(self, stage_key: str, hashes: Iterable[str]) -> set[str]:
        ...

    @abstractmethod
    def put_lexical(self, stage_key: str, docs: Sequence[LexicalDoc]) -> None:
        ...

    @abstractmethod
    def lexical_search(
        self, snapshot_id: int, stage_key: str, match: str, limit: int
    ) -> list[tuple[str, float]]:
        """(path, BM25 score; higher is better) of the best matching files of the snapshot."""
        ...

    @abstractmethod
    def texts_without_embedding(
        self, snapshot_id: int, chunk_key: str, model_key: str
    ) -> list[tuple[str, str]]:
        ...

    @abstractmethod
    def put_embeddings(self, model_key: str, rows: Sequence[tuple[str, bytes]]) -> None:
        ...

    @abstractmethod
    def snapshot_vectors(
        self, snapshot_id: int, chunk_key: str, model_key: str
    ) -> list[tuple[int, str, bytes]]:
        """(chunk id, path, vector) for every embedded chunk of the snapshot."""
        ...

    @abstractmethod
    def count_embedded(self, snapshot_id: int, chunk_key: str, model_key: str) -> int:
        ...

    @abstractmethod
    def find_symbols(self, snapshot_id: int, name: str) -> list[SymbolRow]:
        ...

    @abstractmethod
    def symbols_in_file(self, snapshot_id: int, path: str) -> list[SymbolRow]:
        ...

    @abstractmethod
    def edges_where(self, snapshot_id: int, kind: str, column: str, values: Sequence[str]) -> list[Edge]:
        ...

    @abstractmethod
    def graph_counts(self, snapshot_id: int) -> tuple[int, int]:
        ...

    @abstractmethod
    def add_file_problems(self, snapshot_id: int, problems: Sequence[tuple[str, str, str]]) -> None:
        """Record per-file (path, 'failed'|'skipped', reason) found by the stages."""

    @abstractmethod
    def export_rows(self, snapshot_id: int, stage_keys: dict[str, str]) -> Iterator[tuple[Any, ...]]:
        """Every fact of a snapshot, without row ids or timestamps, in a canonical order."""
