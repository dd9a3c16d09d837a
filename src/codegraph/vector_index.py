"""The vectors of a set of snapshots, held in memory: the k stored texts nearest a query vector.

One job: answer `search(query vector, k)` with (text hash, score) pairs, fast, for as many
queries as a process asks. Which texts belong to which units or files is the query layer's
business (`query.py` maps text hashes to its hits).

- **Loaded once, verified once.** `sync(snapshots)` reads the snapshots' vectors from the store
  and checks each (`store.base.vector_ok`: checksum and length per row as it is read, finite a batch
  at a time). A damaged
  vector is left out and kept in `damaged` (the query layer reports its files); every other
  vector is answered from memory until the snapshots change, never read or checked again.
- **Maintained incrementally.** When the set of snapshots changes (a repository has a new latest
  snapshot), `sync` diffs the text hashes the new set holds against the loaded ones: the texts
  that are gone are removed, the new ones read and verified, and the rest stay as they are.
  A vector is a function of its text and model, so a kept text's vector is still the right one.
  A model change (another model key) reloads everything.
- **Exact below a threshold, approximate above it.** Rows live in one float32 matrix; a freed
  row is reused by the next new text. Up to `ann_threshold` vectors, a query is one matrix-vector
  product. Above it, a usearch HNSW graph over the same rows (key = row) proposes candidates,
  which are then rescored exactly from the matrix: scores are exact either way, only which
  candidates are looked at is approximate (so the graph may hold its copy of the vectors in half
  precision, `DTYPE`, and is searched as deep as its size needs, `search_depth`). The graph is
  built when the threshold is first crossed and then maintained with the matrix (removed rows
  removed, new rows added), never rebuilt for a small change. A process that asks one query
  (the CLI) passes `ann_threshold=None`: building a graph costs more than one exact scan.

Final scores are float64 dot products computed row by row (the same numbers whichever path
found the row), and ties are broken by text hash, so the answer does not depend on the order
rows were loaded in or on the path taken.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from codegraph.store.base import Store, vector_bytes_ok

if TYPE_CHECKING:
    import numpy as np

ANN_THRESHOLD = 20_000  # vectors: above this a long-running process searches through HNSW (an exact
# scan reads the whole matrix per query: ~60 queries/s per core at 100,000 vectors, memory-bound)
# HNSW parameters below LARGE_GRAPH: M 32 / ef_add 128, the graph's copy of the vectors in half
# precision (candidates are rescored from the float32 matrix, so it changes which rows are
# proposed, never a score). The denser graph reaches the same agreement with the exact scan at
# lower depth. An int8 copy was faster still (228-396 against 178-208 queries/s at ef 256 on
# 200,000 vectors, idle) but proposed the wrong rows on strongly anisotropic vectors: the
# agreement tests (tests/test_vector_index.py, whose vectors' spectrum falls faster than the
# bench's) missed up to 8% of the exact top 10 at ef 400 and failed 3 runs in 14, where half
# precision passed 10 in 10. The measurements below are of the int8 graph unless said.
# `bench_search_speed.py --vector-sizes 10000,100000 --graph-variants 16:64:f16` (through the API,
# the two graphs timed in turns; load 5-7 on 2 cores): on 200,000 vectors (100,000 units) the
# top 10 units equal the exact scan's 0.968 / 0.983 / 0.987 / 0.996 of the time at ef 128 / 200 /
# 256 / 400 against 0.916 / 0.955 / 0.965 / 0.980 for M 16 / ef_add 64 / f16 (the previous
# default), so ef 200 here does what ef 400 did there, at 155 against 95 queries/s in that run;
# builds 406 s (first query, load ~6) and 217 s (load ~5). Two earlier builds of this graph
# (a scratch copy of the comparison, load 2.5-4) gave 0.984 and 0.982 at ef 200. On 20,000
# vectors: 0.989 / 0.998 at ef 64 / 128 (M 16, f16: 0.982 at 128).
CONNECTIVITY = 32
EXPANSION_ADD = 128
DTYPE = "f16"
# From this many vectors the graph is float32, as measured on 1,000,000 embedding-like vectors
# (int8 was not measured there): M 16 / ef_add 64 reach recall@10 0.943 at ef_search 400, M 32 /
# ef_add 128 0.988 (2.8x the build time). An index growing past it is rebuilt once.
LARGE_GRAPH = 400_000
LARGE_CONNECTIVITY = 32
LARGE_EXPANSION_ADD = 128
LARGE_DTYPE = "f32"
# How deep the graph is searched (ef_search), by how many vectors it holds: the least depth of
# those measured whose top 10 units stay >= 0.98 equal to the exact scan's through the API
# (bench/bench_search_speed.py): 128 on 20,000 vectors (the int8 graph: 0.998, 0.989 at 64; half
# precision is not less exact), 256 on 200,000 (this graph, idle: 0.979 at ef 200, 0.987 at 256
# with 208 queries/s, 0.994 at 400; the int8 graph gave 0.975-0.984 at 200 over six builds, so
# 200 sits on the line). Up to 250,000 vectors the depth measured at 200,000; beyond, and for the
# float32 graph from LARGE_GRAPH, 400 (0.988 at 1,000,000). Sizes in between were not measured:
# they get the deeper search.
EXPANSION_SEARCH = 400  # beyond the last size below
SEARCH_DEPTHS = ((50_000, 128), (250_000, 256))  # (up to this many vectors, ef_search)


def search_depth(n: int) -> int:
    """The default ef_search for a graph over `n` vectors (see SEARCH_DEPTHS)."""
    return next((ef for size, ef in SEARCH_DEPTHS if n <= size), EXPANSION_SEARCH)


OVERSAMPLE = 2  # the graph proposes k * OVERSAMPLE (at least MIN_CANDIDATES) rows to rescore
MIN_CANDIDATES = 40
_LOAD_BATCH = 4096  # vectors verified and copied into the matrix at a time


@dataclass(frozen=True)
class VectorSource:
    """Where one snapshot's vectors are: its id, its chunk (L2) key and its model (L4) key."""

    snapshot_id: int
    chunk_key: str
    model_key: str


@dataclass
class SyncStats:
    """What the last `sync` did (for tests, benchmarks and logs)."""

    loaded: int = 0  # vectors read from the store and verified
    removed: int = 0
    damaged: int = 0  # of the loaded ones, left out
    full: bool = False  # everything was (re)loaded
    ann: str = "exact"  # "exact" | "built" | "updated"
    seconds: float = 0.0


@dataclass
class VectorIndex:
    """Vectors of a set of snapshots of one store, in memory. Not thread-safe: a server that
    searches from several threads holds a lock around `sync` + `search` (or one index each)."""

    dimensions: int
    ann_threshold: int | None = ANN_THRESHOLD
    damaged: set[str] = field(default_factory=set)  # text hashes whose stored vector failed its check
    stats: SyncStats = field(default_factory=SyncStats)
    _sources: tuple[VectorSource, ...] | None = None
    _model: str | None = None
    _row: dict[str, int] = field(default_factory=dict)  # text hash -> matrix row
    _hashes: list[str | None] = field(default_factory=list)  # matrix row -> text hash (None: free)
    _free: list[int] = field(default_factory=list)
    _matrix: Any = None  # np.ndarray (capacity x dimensions) float32; free rows are zero
    _live: Any = None  # np.ndarray bool (capacity,): the row holds a text
    _ann: Any = None  # usearch.index.Index over the live rows (key = row), or None
    _pending_ann: list[int] = field(default_factory=list)  # rows placed since the graph was updated
    _ann_large: bool = False  # the graph was built with the LARGE_* parameters

    expansion_search: int | None = None  # None: `search_depth` of the vectors held

    def __len__(self) -> int:
        return len(self._row)

    @property
    def uses_ann(self) -> bool:
        return self._ann is not None

    # ----- keeping up with the snapshots -------------------------------------------------

    def sync(self, store: Store, sources: Sequence[VectorSource]) -> bool:
        """Hold exactly the vectors of `sources`' snapshots (of `store`). Cheap when they are the
        ones already held (a comparison); otherwise reads only the texts not held yet. True when
        anything changed."""
        import time

        wanted = tuple(sources)
        if wanted == self._sources:
            return False
        started = time.perf_counter()
        models = {s.model_key for s in wanted}
        if len(models) > 1:
            raise ValueError(f"vectors of different models are not comparable: {sorted(models)}")
        model = next(iter(models), None)
        stats = SyncStats()
        if model != self._model or self._matrix is None:
            self._reset()
            stats.full = True
        self._model = model
        hashes: set[str] = set()
        for s in wanted:
            hashes.update(store.snapshot_text_hashes(s.snapshot_id, s.chunk_key))
        gone = [h for h in self._row if h not in hashes]
        self.remove(gone)
        stats.removed = len(gone)
        # A text that was damaged is read again: a repaired snapshot holds its good vector.
        self.damaged &= hashes
        todo = sorted(h for h in hashes if h not in self._row)
        if todo and model is not None:
            stats.loaded, stats.damaged = self._load(store, model, todo)
        stats.ann = self.update_ann()
        self._sources = wanted
        stats.seconds = time.perf_counter() - started
        self.stats = stats
        return True

    def _reset(self) -> None:
        import numpy as np

        self._row, self._hashes, self._free = {}, [], []
        self._matrix = np.zeros((0, self.dimensions), dtype=np.float32)
        self._live = np.zeros(0, dtype=bool)
        self._ann = None
        self._pending_ann = []
        self.damaged = set()

    def _load(self, store: Store, model: str, todo: list[str]) -> tuple[int, int]:
        """Read and verify the vectors of `todo`, placing each good one in a row."""
        import numpy as np

        loaded = damaged = 0
        batch_keys: list[str] = []
        batch: list[bytes] = []

        def place() -> int:
            # The finite check of `vector_ok`, for the whole batch at once (a row at a time it
            # was most of the load).
            matrix = np.frombuffer(b"".join(batch), dtype=np.float32).reshape(len(batch), -1)
            finite = np.isfinite(matrix).all(axis=1)
            bad = [h for h, ok in zip(batch_keys, finite, strict=True) if not ok]
            self.damaged.update(bad)
            self.add([h for h, ok in zip(batch_keys, finite, strict=True) if ok], matrix[finite])
            batch_keys.clear()
            batch.clear()
            return len(bad)

        for text_hash, vector, checksum in store.embeddings_of(model, todo):
            loaded += 1
            data = bytes(vector) if vector is not None else None
            if not vector_bytes_ok(data, checksum, self.dimensions):  # checksum and length
                self.damaged.add(text_hash)
                damaged += 1
                continue
            assert data is not None
            batch_keys.append(text_hash)
            batch.append(data)
            if len(batch) >= _LOAD_BATCH:
                damaged += place()
        if batch:
            damaged += place()
        return loaded, damaged

    def add(self, text_hashes: Sequence[str], vectors: np.ndarray) -> None:
        """Hold these (verified) vectors: `sync`'s way in, and a benchmark's. The ANN graph
        follows at the next `update_ann`."""
        if self._matrix is None:
            self._reset()
        rows = self._allocate(len(text_hashes))
        self._matrix[rows] = vectors
        self._live[rows] = True
        for h, r in zip(text_hashes, rows, strict=True):
            self._row[h] = r
            self._hashes[r] = h
        self._pending_ann.extend(rows)

    def remove(self, text_hashes: Iterable[str]) -> None:
        for h in text_hashes:
            self._remove(self._row.pop(h))

    def _allocate(self, n: int) -> list[int]:
        """n free rows: freed ones first (lowest first), then new ones (the matrix doubles)."""
        import numpy as np

        self._free.sort(reverse=True)
        rows = [self._free.pop() for _ in range(min(n, len(self._free)))]
        extra = n - len(rows)
        if extra:
            start = len(self._hashes)
            need = start + extra
            if need > len(self._matrix):
                capacity = max(need, 2 * len(self._matrix), 1024)
                grown = np.zeros((capacity, self.dimensions), dtype=np.float32)
                grown[:start] = self._matrix[:start]
                live = np.zeros(capacity, dtype=bool)
                live[:start] = self._live[:start]
                self._matrix, self._live = grown, live
            self._hashes.extend([None] * extra)
            rows.extend(range(start, need))
        return rows

    def _remove(self, row: int) -> None:
        self._hashes[row] = None
        self._live[row] = False
        self._matrix[row] = 0.0
        self._free.append(row)
        if self._ann is not None:
            self._ann.remove(row)

    def update_ann(self) -> str:
        """Bring the HNSW graph up to date with the matrix (see the module docstring): build it
        when the threshold is first crossed, else add the rows placed since."""
        import numpy as np

        pending, self._pending_ann = self._pending_ann, []
        if self.ann_threshold is None or len(self._row) <= self.ann_threshold:
            self._ann = None
            return "exact"
        large = len(self._row) >= LARGE_GRAPH
        if self._ann is not None and large and not self._ann_large:
            self._ann = None  # outgrown: rebuilt once, denser (never back: no flapping at the edge)
        if self._ann is None:
            try:
                from usearch.index import Index as Hnsw
            except ImportError:  # installed without the 'vectors' extra: every search is exact
                return "exact"
            self._ann_large = large
            self._ann = Hnsw(ndim=self.dimensions, metric="ip", dtype=LARGE_DTYPE if large else DTYPE,
                             connectivity=LARGE_CONNECTIVITY if large else CONNECTIVITY,
                             expansion_add=LARGE_EXPANSION_ADD if large else EXPANSION_ADD)
            rows = np.flatnonzero(self._live[: len(self._hashes)])
            state = "built"
        else:
            rows = np.asarray(sorted(pending), dtype=np.int64)
            state = "updated"
        if len(rows):
            # A freed row's key was removed from the graph; its new text is added under the same
            # key (usearch keeps removed keys out of every answer).
            self._ann.add(rows.astype(np.uint64), self._matrix[rows], threads=0)
        return state

    # ----- queries ---------------------------------------------------------------------------

    def search(self, query: np.ndarray, k: int) -> list[tuple[str, float]]:
        """The k held texts nearest `query` (a vector of `dimensions` float32s) by inner product
        (cosine: vectors are normalised), best first: (text hash, score)."""
        import numpy as np

        if not self._row or k < 1:
            return []
        q = np.ascontiguousarray(query, dtype=np.float32).reshape(-1)
        if q.shape[0] != self.dimensions:
            raise ValueError(f"query vector has {q.shape[0]} dimensions, the index {self.dimensions}")
        if self._ann is not None:
            wanted = min(len(self._row), max(k * OVERSAMPLE, MIN_CANDIDATES))
            self._ann.expansion_search = self.expansion_search or search_depth(len(self._row))
            found = self._ann.search(q, wanted)
            candidates = np.asarray(found.keys, dtype=np.int64)
        else:
            used = len(self._hashes)
            scores = self._matrix[:used] @ q
            scores[~self._live[:used]] = -np.inf
            n = min(len(self._row), k)
            top = np.argpartition(-scores, n - 1)[:n] if n < used else np.arange(used)
            # Rows tied with the k-th score also compete: ties then break by text hash.
            cutoff = scores[top].min()
            candidates = np.flatnonzero(scores >= cutoff)  # `_rank` drops the free rows
        return self._rank(candidates, q, k)

    def _rank(self, rows: np.ndarray, q: np.ndarray, k: int) -> list[tuple[str, float]]:
        import numpy as np

        rows = np.asarray(rows, dtype=np.int64)
        rows = rows[self._live[rows]]
        if not len(rows):
            return []
        exact = np.einsum("ij,j->i", self._matrix[rows].astype(np.float64), q.astype(np.float64))
        # Only the best k rows (and any tied with the k-th) are ordered in Python: the graph
        # proposes 2k candidates, and a tuple built and sorted per candidate was ~5% of a query
        # (cProfile, 100,000 units).
        order = np.argsort(-exact, kind="stable")
        if len(order) > k:
            order = order[exact[order] >= exact[order[k - 1]]]
        hashes = map(self._hashes.__getitem__, rows[order].tolist())
        # Best first, ties by text hash: (-score, hash) pairs sort so without a key function.
        ranked = sorted((-s, h) for s, h in zip(exact[order].tolist(), hashes, strict=True))
        return [(h, -s) for s, h in ranked[:k]]
