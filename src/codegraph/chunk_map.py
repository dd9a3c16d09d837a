"""The chunk rows of a set of snapshots, held in memory: which units hold a stored text.

One job: map the text hashes a vector search returns (`vector_index`) to the units whose
windows or name texts they are — (snapshot, path, module, lines, symbol) — without a store query
per search. `query.py` builds its hits from these entries.

- **Loaded once, verified once.** `sync(store, sources)` reads each snapshot's files and, for
  each content whose chunk set it does not hold yet, the set verified as every reader verifies
  it (`Store.damaged_chunk_sets`: the set's checksum over its rows, each text against its hash).
  A damaged set is left out and its paths kept in `damaged` (the query layer reports them with
  every answer); an intact one is held until no snapshot holds its content.
- **Kept per content.** A chunk set is a function of its content and the L2 key, so when a
  repository gets a new snapshot only the contents it did not hold are read and verified; a
  damaged one is read again (an `index --full` may have repaired it).
- **Texts are not held**: a snapshot's run to hundreds of MB. A search reads the texts of the
  hits it returns (`Store.texts_of`, one query) and checks each against its hash.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from codegraph.store.base import ChunkFields, Store


@dataclass(frozen=True)
class ChunkSource:
    """One snapshot's chunk sets: its id and its L2 key."""

    snapshot_id: int
    chunk_key: str


class Entry(NamedTuple):
    """One chunk of a held snapshot: a text of one unit (a window or its name text)."""

    source: int  # the snapshot's position in the `sources` of the last `sync`
    path: str
    module: str | None
    start_line: int
    end_line: int
    symbol: str
    ordinal: int
    text_hash: str


@dataclass
class SyncStats:
    """What the last `sync` did (for tests, benchmarks and logs)."""

    verified: int = 0  # contents read and verified
    kept: int = 0  # contents already held
    damaged: int = 0  # contents whose set failed its check
    entries: int = 0
    seconds: float = 0.0


@dataclass
class ChunkMap:
    """Chunk rows of a set of snapshots of one store, in memory. Not thread-safe (as
    `VectorIndex`): a server holds a lock around `sync` + lookups."""

    sources: tuple[ChunkSource, ...] | None = None
    damaged: dict[int, dict[str, str]] = field(default_factory=dict)  # snapshot -> path -> hash
    stats: SyncStats = field(default_factory=SyncStats)
    _sets: dict[tuple[str, str], list[ChunkFields]] = field(default_factory=dict)  # (L2 key, hash)
    _by_text: dict[str, list[Entry]] = field(default_factory=dict)

    def sync(self, store: Store, sources: Sequence[ChunkSource]) -> bool:
        """Hold the chunk rows of `sources` (the current snapshots, in the query layer's
        order). Cheap when they are the ones held; True when anything changed."""
        wanted = tuple(sources)
        if wanted == self.sources:
            return False
        started = time.perf_counter()
        stats = SyncStats()
        keep: set[tuple[str, str]] = set()
        damaged: dict[int, dict[str, str]] = {}
        files_of = []
        for source in wanted:
            key = source.chunk_key
            files = [(f.path, f.module, f.content_hash) for f in store.snapshot_files(source.snapshot_id)]
            new = sorted({p for p, _, h in files if (key, h) not in self._sets})
            bad: dict[str, str] = {}
            if new:
                intact: dict[str, list[ChunkFields]] = {}
                # Everything at once when nothing of the snapshot is held (no list of paths).
                bad, _ = store.damaged_chunk_sets(source.snapshot_id, key,
                                                  None if len(new) == len(files) else new, intact)
                for content_hash, rows in intact.items():
                    self._sets[(key, content_hash)] = rows
                stats.verified += len(intact) + len(set(bad.values()))
                stats.damaged += len(set(bad.values()))
            damaged[source.snapshot_id] = bad
            # A file without a chunk set (no L2 output yet) has no entries.
            files_of.append([f for f in files if f[0] not in bad and (key, f[2]) in self._sets])
            keep.update((key, h) for _, _, h in files_of[-1])
        stats.kept = len(keep) - (stats.verified - stats.damaged)
        self._sets = {k: v for k, v in self._sets.items() if k in keep}
        by_text: dict[str, list[Entry]] = {}
        for i, (source, files) in enumerate(zip(wanted, files_of, strict=True)):
            for path, module, content_hash in files:
                for ordinal, start, end, symbol, text_hash in self._sets[(source.chunk_key, content_hash)]:
                    entry = Entry(i, path, module, start, end, symbol, ordinal, text_hash)
                    held = by_text.get(text_hash)
                    if held is None:
                        by_text[text_hash] = [entry]
                    else:
                        held.append(entry)
                    stats.entries += 1
        self._by_text = by_text
        self.sources = wanted
        self.damaged = damaged
        stats.seconds = time.perf_counter() - started
        self.stats = stats
        return True

    def entries(self, text_hash: str) -> list[Entry]:
        """The held chunks whose text is `text_hash` (every path and snapshot holding it)."""
        return self._by_text.get(text_hash, [])
