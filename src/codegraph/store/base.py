"""The store interface: everything the pipeline and the queries read and write (jobs live in
`codegraph.queue`).

One implementation per engine (SQLite now; PostgreSQL behind the same methods). Stages never see
SQL: they hand typed rows to these methods and get typed rows back.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, Protocol, TypeVar

import xxhash

from codegraph.model import Edge  # at run time: ResolvedFile is decoded by type (stages.ir)

if TYPE_CHECKING:
    from codegraph.model import Chunk
    from codegraph.snapshot import Snapshot


@dataclass(frozen=True)
class SnapshotInfo:
    id: int
    repo: str  # the repository's identity (`source.Source.identity`): a path or a normalised URL
    repo_name: str
    manifest_hash: str
    stage_keys: dict[str, str]
    created_at: float
    mode: str = "full"
    duration_ms: float | None = None


class FileRow(NamedTuple):
    path: str
    content_hash: str
    language: str | None
    module: str | None
    size: int = 0
    mtime_ns: int = 0
    res_id: int | None = None  # its cross-file resolution, once L1 recorded it


class ResolvedFile(NamedTuple):
    """L1's per-file cross-file output, as stored: symbols with their qualified names, the
    resolution, and its reads as 64-bit keys (see `read_key`)."""

    path: str
    content_hash: str
    symbols: list[SymbolRow]
    edges: list[Edge]
    deps: list[tuple[str, str]]
    read_keys: list[int]
    unresolved_calls: int


class _Closable(Protocol):
    def close(self) -> None: ...


_C = TypeVar("_C", bound=_Closable)


class Owned(Generic[_C]):
    """A thread's database connection, closed as soon as nothing holds this: when its thread, or
    the store, is gone. Stage threads never call close(); a server's connection slots are few;
    and a `sqlite3.Connection` left alone sits in a reference cycle until the garbage collector
    runs, in some later run (see `store/connections.py`)."""

    __slots__ = ("conn",)

    def __init__(self, conn: _C) -> None:
        self.conn = conn

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.close()


def read_key(path: str, key: str) -> int:
    """A fact's identity in the reverse-dependency index: a signed 64-bit hash (a collision
    can only cause an extra re-resolution, never a missed one)."""
    return xxhash.xxh3_64_intdigest(f"{path}\0{key}".encode("utf-8", "surrogatepass")) - (1 << 63)


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


class LexicalUnit(NamedTuple):
    """One unit's BM25 document (see `codegraph.units`): columns head, body and subtokens."""

    ordinal: int
    symbol: str  # the unit's local qualified name ("" for module-level code)
    start_line: int
    end_line: int
    head: str  # name, qualified name, signature: whole and split (weighted above the body)
    body: str  # the unit's own text
    subtokens: str  # the split parts of the body's identifiers


class LexicalDoc(NamedTuple):
    """L3's output for one file content: its units' documents."""

    content_hash: str
    units: list[LexicalUnit]


class LexicalHit(NamedTuple):
    path: str
    module: str | None
    ordinal: int
    symbol: str
    start_line: int
    end_line: int
    score: float
    body: str


def payload_checksum(payload: bytes | None) -> str | None:
    """Stored beside every per-file payload; a mismatch means the row is damaged."""
    return None if payload is None else xxhash.xxh3_64_hexdigest(payload)


# ----- integrity: what each stored output's checksum covers -----------------------------------
# Computed by the store when it writes an output and compared whenever the output is used, on
# every output of the snapshot by `index --full`, and by queries for what they return. A
# mismatch means the row was damaged behind codegraph's back: it is recomputed, never used.

ChunkFields = tuple[int, int, int, str, str]  # ordinal, start line, end line, symbol, text hash


def chunk_set_checksum(chunks: Iterable[ChunkFields], error: str | None) -> str:
    """Over a file's chunk rows in ordinal order and its error: a changed, lost or extra chunk
    row changes it. The chunk texts are checked against their own `text_hash` instead."""
    h = xxhash.xxh3_64()
    for ordinal, start, end, symbol, text_hash in chunks:
        h.update(f"{ordinal}\0{start}\0{end}\0{symbol}\0{text_hash}\n".encode("utf-8", "surrogatepass"))
    h.update(f"error\0{error or ''}".encode("utf-8", "surrogatepass"))
    return h.hexdigest()


def text_ok(text: str | None, text_hash: str) -> bool:
    """A stored chunk text is verifiable by its key: `units.text_hash` of its UTF-8 bytes."""
    if not isinstance(text, str):  # gone, or a BLOB where SQLite held text
        return False
    try:
        return xxhash.xxh3_128_hexdigest(text.encode("utf-8")) == text_hash
    except UnicodeEncodeError:  # a lone surrogate: L2 could never have hashed it
        return False


def lexical_checksum(*parts: str) -> str:
    """Over a lexical document's columns (the same digest `export` prints)."""
    h = xxhash.xxh3_64()
    for part in parts:
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\0")
    return h.hexdigest()


def lexical_units_checksum(units: Iterable[LexicalUnit]) -> str:
    """Over a file's unit documents in ordinal order: a changed, lost or extra one changes it."""
    h = xxhash.xxh3_64()
    for u in units:
        h.update(f"{u.ordinal}\0{u.symbol}\0{u.start_line}\0{u.end_line}\0".encode("utf-8", "surrogatepass"))
        h.update(lexical_checksum(u.head, u.body, u.subtokens).encode())
    return h.hexdigest()


def lexical_doc_ok(checksum: str, units: list[LexicalUnit] | None) -> bool:
    """A content's stored lexical documents pass their check (see `Store.lexical_documents`)."""
    return units is not None and checksum == lexical_units_checksum(units)


def vector_checksum(vector: bytes) -> str:
    return xxhash.xxh3_64_hexdigest(vector)


def vector_bytes_ok(vector: bytes | None, checksum: str | None, dimensions: int) -> bool:
    """`vector_ok` but for the finite check (which `vector_index` does a batch at a time)."""
    return vector is not None and checksum == vector_checksum(vector) and len(vector) == 4 * dimensions


def vector_ok(vector: bytes | None, checksum: str | None, dimensions: int) -> bool:
    """Checksum, then sanity: `dimensions` float32s, all finite (NaN would poison every score)."""
    if not vector_bytes_ok(vector, checksum, dimensions):
        return False
    import numpy as np

    return bool(np.isfinite(np.frombuffer(vector, dtype=np.float32)).all())


def vectors_ok(vectors: list[bytes | None], checksums: list[str | None], dimensions: int) -> list[bool]:
    """`vector_ok` of each, the finiteness checked over all of them at once (a query checks
    every stored vector it scores: per row, numpy's call overhead was most of a search's time)."""
    import numpy as np

    ok = [v is not None and len(v) == 4 * dimensions and c == vector_checksum(v)
          for v, c in zip(vectors, checksums, strict=True)]
    picked = [v for v, good in zip(vectors, ok, strict=True) if good]
    if picked:
        finite = np.isfinite(np.frombuffer(b"".join(picked), dtype=np.float32)
                             .reshape(len(picked), dimensions)).all(axis=1)
        at = iter(finite.tolist())
        ok = [good and next(at) for good in ok]
    return ok


def check_chunk_sets(
    sets: Iterable[tuple[str, str, str | None, str | None]],
    chunks: Iterable[tuple[str, int, int, int, str, str, str | None]],
    intact: dict[str, list[ChunkFields]] | None = None,
) -> tuple[dict[str, str], set[str]]:
    """The shared check behind `Store.damaged_chunk_sets`: `sets` are (path, content hash,
    error, checksum), `chunks` (content hash, ordinal, start, end, symbol, text hash, text or
    None when the text row is gone), both of the same files. Returns the paths of the damaged
    sets (path -> content hash) and the damaged texts; a set that holds a damaged text is damaged too,
    so that chunking it again yields the text to store. `intact`, when given, receives the rows
    of every set that passed (content hash -> rows by ordinal): what a reader that holds them
    (`codegraph.chunk_map`) keeps, so that it reads them once."""
    rows: dict[str, list[ChunkFields]] = {}
    texts: dict[str, bool] = {}
    owners: dict[str, set[str]] = {}
    for content_hash, ordinal, start, end, symbol, th, text in chunks:
        rows.setdefault(content_hash, []).append((ordinal, start, end, symbol, th))
        if th not in texts:
            texts[th] = text_ok(text, th)
        owners.setdefault(content_hash, set()).add(th)
    bad_texts = {th for th, ok in texts.items() if not ok}
    verdict: dict[str, bool] = {}
    damaged: dict[str, str] = {}
    for path, content_hash, error, checksum in sorted(sets):
        if content_hash not in verdict:
            mine = sorted(rows.get(content_hash, []))
            verdict[content_hash] = (checksum != chunk_set_checksum(mine, error)
                                     or bool(owners.get(content_hash, set()) & bad_texts))
        if verdict[content_hash]:
            damaged[path] = content_hash
    if intact is not None:
        for content_hash, bad in verdict.items():
            if not bad:
                intact[content_hash] = sorted(rows.get(content_hash, []))
    return damaged, bad_texts


class Store(ABC):
    url: str

    @abstractmethod
    def close(self) -> None:
        """Release this thread's connection."""

    @abstractmethod
    def settle(self) -> None:
        """Wait for maintenance this process runs in the background for the store (SQLite: a
        WAL checkpoint in progress), so that a run's measured time includes it."""

    @abstractmethod
    def write_group(self) -> AbstractContextManager[None]:
        """Writes this thread makes inside the group share one transaction, committed when the
        group ends (rolled back if it ends with an exception). On SQLite each commit writes every
        page its writes dirtied, and an index on a hash key dirties a page per row: one commit
        for many files' rows writes such a page once instead of once per file batch."""

    @abstractmethod
    def create_snapshot(
        self,
        repo: str,
        name: str,
        snapshot: Snapshot,
        languages: dict[str, tuple[str | None, str | None]],
        stage_keys: dict[str, str],
        job_id: int | None,
        mode: str = "full",
        resolutions: Mapping[str, int | None] | None = None,
    ) -> int:
        """Record a new (incomplete) snapshot of the repository `repo` (its identity; `name` is
        its short name) and its files. `resolutions`: path -> the resolution (res_id) a file
        starts with, its base snapshot's: an update keeps it for every file it does not resolve
        again, and L1 points the others at their new ones (`put_resolutions`)."""

    @abstractmethod
    def complete_snapshot(self, snapshot_id: int, duration_ms: float, keep: int = 2) -> None:
        """Mark the snapshot complete with its measured duration; drop this repo's older
        snapshots beyond `keep` and the resolutions no remaining snapshot points at."""
        ...

    @abstractmethod
    def last_full_duration(self, repo: str) -> float | None:
        """The measured duration (ms) of the repo's latest complete full build, if any."""

    @abstractmethod
    def latest_snapshot(self, repo: str | None = None) -> SnapshotInfo | None:
        """The newest complete snapshot of the repository with identity `repo` (of any
        repository when None)."""

    @abstractmethod
    def latest_snapshots(self) -> list[SnapshotInfo]:
        """The newest complete snapshot of every repository, ordered by identity."""

    @abstractmethod
    def snapshot_files(self, snapshot_id: int) -> list[FileRow]:
        ...

    @abstractmethod
    def existing_ir(self, stage_key: str, hashes: Iterable[str]) -> set[str]:
        ...

    @abstractmethod
    def put_ir(self, stage_key: str, rows: Sequence[tuple[str, bytes | None, str | None]],
               facts: Sequence[tuple[str, str, bytes]] = ()) -> None:
        """Store L1 outputs and, in the same transaction, `facts`: (content hash, "@" fact key,
        its entries as msgpack) rows, with a (hash, "", b"") row for each content whose facts
        are all given (see `with_ir_facts`)."""

    @abstractmethod
    def ir_facts(self, stage_key: str, fact_key: str) -> list[tuple[str, bytes]]:
        """(content hash, entries) of every stored content that has the "@" fact `fact_key`."""

    @abstractmethod
    def with_ir_facts(self, stage_key: str, hashes: Iterable[str]) -> set[str]:
        """The contents among `hashes` whose "@" facts are all in `ir_facts` (the others, stored
        before it, have theirs in their IR alone)."""

    @abstractmethod
    def ir_rows(
        self, stage_key: str, hashes: Sequence[str]
    ) -> dict[str, tuple[bytes | None, str | None, str | None]]:
        """content hash -> (payload, error, stored checksum) for the given contents."""

    @abstractmethod
    def stage_errors(self, snapshot_id: int, l1_key: str, l2_key: str) -> list[tuple[str, str, str]]:
        """(path, stage, error) of every file of the snapshot whose stored L1 or L2 output is an
        error: reported by every run, whichever run computed it."""

    @abstractmethod
    def put_resolutions(self, snapshot_id: int, rows: Sequence[ResolvedFile]) -> None:
        """Record new resolutions and point the snapshot's files at them: one transaction."""

    @abstractmethod
    def readers(self, snapshot_id: int, read_keys: Iterable[int]) -> set[str]:
        """Paths of the snapshot whose resolution read any of the facts `read_keys`."""

    @abstractmethod
    def cache_stats(self) -> list[dict[str, Any]]:
        """Per kind of stored output: rows, bytes, and rows no kept snapshot uses."""

    @abstractmethod
    def prune(self, keep: int) -> dict[str, int]:
        """Keep each repository's `keep` newest complete snapshots (and runs still in progress);
        delete every other snapshot and every stored output none of the kept ones uses.
        Returns the rows deleted per kind."""

    @abstractmethod
    def dependencies(self, snapshot_id: int, importers: Sequence[str]) -> set[str]:
        """Paths the `importers` depend on (file_deps) in the snapshot."""

    @abstractmethod
    def dependents(self, snapshot_id: int, dependencies: Sequence[str]) -> set[str]:
        """Paths of the snapshot that depend on any of `dependencies` (file_deps, reversed)."""

    @abstractmethod
    def snapshot_job(self, snapshot_id: int) -> int | None:
        """The job that recorded the snapshot (its result says which commit it indexed)."""

    @abstractmethod
    def snapshot_graph(self, snapshot_id: int) -> tuple[list[Edge], list[tuple[str, str]]]:
        """Every edge of the snapshot, and every (importer, dependency) file pair: the whole
        graph, for ranking it (`Index.overview`)."""

    @abstractmethod
    def unresolved_calls(self, snapshot_id: int) -> int:
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
    def damaged_chunk_sets(
        self, snapshot_id: int, stage_key: str, paths: Sequence[str] | None = None,
        intact: dict[str, list[ChunkFields]] | None = None,
    ) -> tuple[dict[str, str], set[str]]:
        """Verify the chunk sets (and their texts) of the snapshot's `paths` (None: every file):
        (path -> content hash of each damaged set, damaged text hashes). See `check_chunk_sets`
        (and its `intact`)."""

    @abstractmethod
    def texts_of(self, text_hashes: Sequence[str]) -> dict[str, str | None]:
        """The stored texts of `text_hashes` (None: not valid UTF-8); a text not stored is
        absent. Unverified: the caller checks each against its hash (`text_ok`)."""

    @abstractmethod
    def replace_texts(self, rows: Sequence[tuple[str, str]]) -> None:
        """Store (text hash, text) over whatever is stored under the hash: the repair of a
        damaged text (`put_chunks` keeps an existing text as it is)."""

    @abstractmethod
    def text_owners(
        self, snapshot_id: int, chunk_key: str, text_hashes: Sequence[str]
    ) -> dict[str, tuple[str, str]]:
        """text hash -> (path, content hash) of one file of the snapshot whose chunks hold it."""

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

    def damaged_lexical(
        self, snapshot_id: int, stage_key: str, paths: Sequence[str] | None = None
    ) -> dict[str, str]:
        """Verify the lexical documents of the snapshot's `paths` (None: every file) against
        their checksums (PostgreSQL: the term rows too): path -> content hash of each damaged
        one."""
        if paths is not None and not paths:
            return {}
        files, docs = self.lexical_documents(snapshot_id, stage_key, set(), paths)
        return {path: h for path, _, h in files if not lexical_doc_ok(*docs[h])}

    @abstractmethod
    def verify_lexical_index(self) -> bool:
        """Check the search index built over the documents as a whole (SQLite's FTS5 index);
        rebuild it from the documents when it is damaged. True when it was rebuilt."""

    @abstractmethod
    def lexical_search(
        self, snapshot_id: int, stage_key: str, match: str, limit: int
    ) -> list[LexicalHit]:
        """The best matching units of the snapshot by BM25 (`bm25.COLUMN_WEIGHTS`; higher is
        better), ties by path then line: the same doubles and order in every store."""
        ...

    # For a process that holds lexical documents in memory (codegraph.lexical_index): the
    # documents once, then per query only the statistics BM25 takes over every stored document.

    @abstractmethod
    def lexical_documents(
        self, snapshot_id: int, stage_key: str, skip: set[str], paths: Sequence[str] | None = None
    ) -> tuple[list[tuple[str, str | None, str]], dict[str, tuple[str, list[LexicalUnit] | None]]]:
        """The snapshot's files (those of `paths`, or all) that have lexical documents, (path,
        module, content hash), and for each of their contents not in `skip`: (stored checksum,
        its units' documents, or None when a stored column — PostgreSQL: a term row — is
        damaged). Verified by `lexical_doc_ok`."""

    @abstractmethod
    def lexical_statistics(self, terms: Sequence[str]) -> tuple[int, int, dict[str, int]]:
        """What BM25 ranks by beyond a document's own terms, over every stored document (as
        FTS5 over its whole table): the number of documents, their total length in tokens,
        and per term of `terms` the number of documents holding it."""

    @abstractmethod
    def lexical_bodies(self, stage_key: str, units: Sequence[tuple[str, int]]) -> dict[tuple[str, int], str]:
        """The body column of the documents of (content hash, ordinal) units (for snippets)."""

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
    ) -> list[tuple[int, str, bytes, str | None]]:
        """(chunk id, path, vector, stored checksum) for every embedded chunk of the snapshot."""
        ...

    @abstractmethod
    def snapshot_text_hashes(self, snapshot_id: int, chunk_key: str) -> set[str]:
        """The distinct text hashes of the snapshot's chunks (what its vectors are keyed by)."""

    @abstractmethod
    def embeddings_of(
        self, model_key: str, text_hashes: Sequence[str]
    ) -> Iterator[tuple[str, bytes, str | None]]:
        """(text hash, vector, stored checksum) of the given texts that have a vector, streamed
        (a snapshot's vectors need not all be in memory twice)."""

    @abstractmethod
    def chunks_of_texts(
        self, snapshot_id: int, chunk_key: str, text_hashes: Sequence[str]
    ) -> list[ChunkRow]:
        """The snapshot's chunks whose text is one of `text_hashes`, by path and line."""

    @abstractmethod
    def damaged_embeddings(
        self, snapshot_id: int, chunk_key: str, model_key: str, dimensions: int
    ) -> set[str]:
        """Text hashes of the snapshot's stored vectors that fail `vector_ok`."""

    @abstractmethod
    def delete_embeddings(self, model_key: str, text_hashes: Sequence[str]) -> None:
        """Drop damaged vectors: L4 then embeds their texts again as never-embedded ones."""

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
