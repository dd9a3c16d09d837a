"""The lexical documents of a set of snapshots, held in memory: BM25 over their units without a
full-text query per search.

One job: answer `search(phrases, limit)` with the best units by BM25, the same doubles in the
same order as the store's own `lexical_search` (FTS5 on SQLite, `store.bm25` on PostgreSQL),
for as many queries as a process asks. A per-query FTS5 MATCH over a long natural-language
query touches most of the index (~5 queries/s on the stdlib); here a query is a few numpy
operations per query term over that term's postings.

- **Loaded once, verified once.** `sync(store, sources)` reads the snapshots' documents,
  checks each content's against its stored checksum (`lexical_doc_ok`), and tokenizes
  them exactly as FTS5 does (`bm25.tokenize_documents`). A damaged content is left out and its
  paths kept in `damaged` (the query layer reports them). When a repository gets a new
  snapshot, contents already held are kept (a document is a function of its content and the
  stage key): only new contents are read, checked and tokenized, and the postings are rebuilt.
- **Statistics stay the store's.** BM25's document count, average length and per-term
  document counts are over every document stored (FTS5's semantics, which the PostgreSQL store
  reproduces), not just the held snapshots': they come from `store.lexical_statistics` on each
  query (one small read), so a held search ranks exactly as the store would.
- **Exactly the store's numbers.** A posting carries its term's frequency with the column
  weights added once per occurrence in column order, as `fts5Bm25Function` does; a query adds
  each phrase's `idf * (f * (k1 + 1)) / (f + k1 * (1 - b + b * d / avgdl))` in query order, in
  float64, elementwise (the same IEEE operations as `bm25.score`). Ties: path, line, ordinal.
- A query with a phrase of several tokens (non-ASCII text the tokenizer splits inside a word)
  is not answered here (`search` returns None): positions are not held; the store answers it.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from codegraph.store import bm25
from codegraph.store.base import LexicalHit, LexicalUnit, Store, lexical_doc_ok


@dataclass(frozen=True)
class LexicalSource:
    """One snapshot's lexical documents: its id and its L3 key."""

    snapshot_id: int
    stage_key: str


@dataclass(frozen=True)
class _Unit:
    ordinal: int
    symbol: str
    start_line: int
    end_line: int


@dataclass(frozen=True)
class _Content:
    """One content's documents, tokenized: its units, their lengths, and one row per (term,
    unit) holding it: the term's id (in `LexicalIndex._vocab`), the unit (within the content)
    and its FTS5-weighted frequency there (numpy arrays)."""

    units: list[_Unit]
    lengths: Any  # int64 per unit: tokens over all columns
    terms: Any  # int64 term ids
    unit_of: Any  # int64, the unit's position in `units`
    freqs: Any  # float64


@dataclass
class SyncStats:
    """What the last `sync` did (for tests, benchmarks and logs)."""

    tokenized: int = 0  # contents read, verified and tokenized
    kept: int = 0  # contents already held
    damaged: int = 0
    units: int = 0
    seconds: float = 0.0


_TF_BITS = 21  # a count triple packed in one int64: 21 bits per column


@lru_cache(maxsize=65_536)
def _weighted_packed(packed: int) -> float:
    mask = (1 << _TF_BITS) - 1
    return _weighted(tuple((packed >> (_TF_BITS * (bm25.COLUMNS - 1 - c))) & mask
                           for c in range(bm25.COLUMNS)))


@lru_cache(maxsize=65_536)
def _weighted(tfs: tuple[int, ...]) -> float:
    """A term's frequency in one document as FTS5's bm25 sums it: one column weight per
    instance, instances in position order (columns in order)."""
    freq = 0.0
    for weight, tf in zip(bm25.COLUMN_WEIGHTS, tfs, strict=True):
        for _ in range(tf):
            freq += weight
    return freq


@dataclass
class LexicalIndex:
    """Lexical documents of a set of snapshots of one store, in memory. Not thread-safe (as
    `VectorIndex`): a server holds a lock around `sync` + `search`."""

    sources: tuple[LexicalSource, ...] = ()
    damaged: dict[int, dict[str, str]] = field(default_factory=dict)  # snapshot -> path -> hash
    last_sync: SyncStats = field(default_factory=SyncStats)
    _vocab: dict[str, int] = field(default_factory=dict)  # term -> id (only grows)
    _contents: dict[tuple[str, str], _Content] = field(default_factory=dict)  # (L3 key, hash)
    # One row per held (snapshot, path, unit): what a hit names.
    _entries: list[tuple[int, str, str | None, _Unit]] = field(default_factory=list)
    _unit_entries: list[list[int]] = field(default_factory=list)  # content unit -> its entries
    _unit_keys: list[tuple[str, str, int]] = field(default_factory=list)  # (L3 key, hash, ordinal)
    _entry_units: list[int] = field(default_factory=list)  # entry -> its content unit
    _lengths: Any = None  # content unit -> length, float64
    _postings: dict[int, tuple[Any, Any]] = field(default_factory=dict)  # term id -> (units, freqs)
    _norm: tuple[float, Any] | None = None  # (avgdl, BM25's length norm per content unit)

    def sync(self, store: Store, sources: list[LexicalSource]) -> bool:
        """Hold the documents of `sources` (the current snapshots, in the query layer's order).
        True when anything changed."""
        wanted = tuple(sources)
        if wanted == self.sources and self._lengths is not None:
            return False
        started = time.perf_counter()
        stats = SyncStats()
        files_of: list[list[tuple[str, str | None, str]]] = []
        keep: set[tuple[str, str]] = set()
        damaged: dict[int, dict[str, str]] = {}
        for source in wanted:
            held = {h for key, h in self._contents if key == source.stage_key}
            files, new = store.lexical_documents(source.snapshot_id, source.stage_key, held)
            bad: set[str] = set()
            for content_hash, (checksum, units) in new.items():
                if not lexical_doc_ok(checksum, units):
                    stats.damaged += 1
                    bad.add(content_hash)
                    continue
                self._contents[(source.stage_key, content_hash)] = self._tokenized(units)
                stats.tokenized += 1
            damaged[source.snapshot_id] = {p: h for p, _, h in files if h in bad}
            files_of.append([f for f in files if f[2] not in bad])
            keep.update((source.stage_key, h) for _, _, h in files_of[-1])
        stats.kept = len(keep) - stats.tokenized
        self._contents = {k: v for k, v in self._contents.items() if k in keep}
        self._build(wanted, files_of)
        self.sources = wanted
        self.damaged = damaged
        stats.units = len(self._lengths)
        stats.seconds = time.perf_counter() - started
        self.last_sync = stats
        return True

    def _tokenized(self, units: list[LexicalUnit]) -> _Content:
        import numpy as np

        vocab = self._vocab
        terms: list[int] = []
        slots: list[int] = []
        counts: list[int] = []
        lengths: list[int] = []
        for n, unit in enumerate(units):
            length = 0
            for column, text in enumerate((unit.head, unit.body, unit.subtokens)):
                found = bm25.tokens(text)
                length += len(found)
                counted = Counter(found)
                for term in [t for t in counted if t not in vocab]:  # (keys() - keys() walks vocab)
                    vocab[term] = len(vocab)
                terms.extend(map(vocab.__getitem__, counted))
                counts.extend(counted.values())
                slots.extend([n * bm25.COLUMNS + column] * len(counted))
            lengths.append(length)
        term_arr = np.asarray(terms, dtype=np.int64)
        slot_arr = np.asarray(slots, dtype=np.int64)
        count_arr = np.minimum(np.asarray(counts, dtype=np.int64), (1 << _TF_BITS) - 1)
        # One row per (term, unit): its counts per column packed, then weighted once per
        # distinct triple. (A count beyond 2^21 in one column of one unit is clipped.)
        pair = term_arr * max(1, len(units)) + slot_arr // bm25.COLUMNS
        pairs, inverse = np.unique(pair, return_inverse=True)
        shift = _TF_BITS * (bm25.COLUMNS - 1 - slot_arr % bm25.COLUMNS)
        packed = np.zeros(len(pairs), dtype=np.int64)
        np.add.at(packed, inverse.reshape(-1), count_arr << shift)
        codes, which = np.unique(packed, return_inverse=True)
        table = np.asarray([_weighted_packed(c) for c in codes.tolist()], dtype=np.float64)
        return _Content([_Unit(u.ordinal, u.symbol, u.start_line, u.end_line) for u in units],
                        np.asarray(lengths, dtype=np.int64), pairs // max(1, len(units)),
                        pairs % max(1, len(units)), table[which.reshape(-1)])

    def _build(self, sources: tuple[LexicalSource, ...],
               files_of: list[list[tuple[str, str | None, str]]]) -> None:
        """Postings over content units (a content is one document, however many snapshots
        hold it, as in the store), and entries per (snapshot, path, unit)."""
        import numpy as np

        first_unit: dict[tuple[str, str], int] = {}
        unit_keys: list[tuple[str, str, int]] = []
        parts_terms, parts_units, parts_freqs, parts_lengths = [], [], [], []
        for key, content in sorted(self._contents.items()):
            first = first_unit[key] = len(unit_keys)
            unit_keys.extend((key[0], key[1], u.ordinal) for u in content.units)
            parts_terms.append(content.terms)
            parts_units.append(content.unit_of + first)
            parts_freqs.append(content.freqs)
            parts_lengths.append(content.lengths)
        n_units = len(unit_keys)
        self._lengths = (np.concatenate(parts_lengths).astype(np.float64) if parts_lengths
                         else np.zeros(0, dtype=np.float64))
        self._norm = None
        self._postings = {}
        if n_units:
            terms = np.concatenate(parts_terms)
            order = np.argsort(terms, kind="stable")
            terms = terms[order]
            units = np.concatenate(parts_units)[order]
            freqs = np.concatenate(parts_freqs)[order]
            starts = np.flatnonzero(np.r_[True, terms[1:] != terms[:-1]])
            ends = [*starts[1:].tolist(), len(terms)]
            for term_id, a, b in zip(terms[starts].tolist(), starts.tolist(), ends, strict=True):
                self._postings[term_id] = (units[a:b], freqs[a:b])
        entries: list[tuple[int, str, str | None, _Unit]] = []
        unit_entries: list[list[int]] = [[] for _ in range(n_units)]
        entry_units: list[int] = []
        for i, (source, files) in enumerate(zip(sources, files_of, strict=True)):
            for path, module, content_hash in files:
                key = (source.stage_key, content_hash)
                first = first_unit[key]
                for n, unit in enumerate(self._contents[key].units):
                    unit_entries[first + n].append(len(entries))
                    entry_units.append(first + n)
                    entries.append((i, path, module, unit))
        self._entries = entries
        self._entry_units = entry_units
        self._unit_entries = unit_entries
        self._unit_keys = unit_keys

    def search(self, store: Store, phrases: list[list[str]],
               limit: int) -> list[tuple[int, LexicalHit]] | None:
        """The best `limit` held units for the query's phrases (each a list of tokens, from
        `bm25.tokenize_phrase`), best first, as (source index, hit): the store's scores and
        order. None when a phrase has several tokens (the store answers those)."""
        import numpy as np

        if any(len(p) > 1 for p in phrases):
            return None
        terms = [p[0] for p in phrases if p]
        if not terms or self._lengths is None or not len(self._lengths):
            return []
        n_rows, n_tokens, hits = store.lexical_statistics(sorted(set(terms)))
        if not n_rows:
            return []
        avgdl = n_tokens / n_rows
        scores = np.zeros(len(self._lengths), dtype=np.float64)
        matched = np.zeros(len(self._lengths), dtype=bool)
        if self._norm is None or self._norm[0] != avgdl:  # one per state of the store, not per query
            self._norm = (avgdl, bm25.K1 * ((1 - bm25.B) + (bm25.B * self._lengths) / avgdl))
        norm = self._norm[1]
        for phrase in phrases:
            if not phrase:  # an empty phrase matches nothing
                continue
            term_id = self._vocab.get(phrase[0])
            posting = self._postings.get(term_id) if term_id is not None else None
            if posting is None:
                continue
            units, freqs = posting
            phrase_idf = bm25.idf(n_rows, int(hits.get(phrase[0], 0)))
            scores[units] += phrase_idf * ((freqs * (bm25.K1 + 1.0)) / (freqs + norm[units]))
            matched[units] = True
        candidates = np.flatnonzero(matched)
        if not len(candidates):
            return []
        chosen = self._best_units(scores, candidates, limit)
        entries = self._entries
        ranked = sorted(
            ((float(scores[u]), e) for u in chosen for e in self._unit_entries[u]),
            key=lambda se: (-se[0], entries[se[1]][0], entries[se[1]][1],
                            entries[se[1]][3].start_line, entries[se[1]][3].ordinal),
        )[:limit]
        keys = [self._unit_keys[self._entry_unit(e)] for _, e in ranked]
        bodies: dict[tuple[str, str, int], str] = {}
        for stage_key in sorted({k for k, _, _ in keys}):
            found = store.lexical_bodies(stage_key, [(h, o) for s, h, o in keys if s == stage_key])
            bodies.update({(stage_key, h, o): body for (h, o), body in found.items()})
        out = []
        for (score, e), key in zip(ranked, keys, strict=True):
            i, path, module, unit = entries[e]
            out.append((i, LexicalHit(path, module, unit.ordinal, unit.symbol, unit.start_line,
                                      unit.end_line, score, bodies.get(key, ""))))
        return out

    def _entry_unit(self, entry: int) -> int:
        return self._entry_units[entry]

    def _best_units(self, scores: Any, candidates: Any, limit: int) -> list[int]:
        """Units enough to fill `limit` entries (a unit has one per path holding its content),
        best first, and every unit tied with the last of them (the order among ties is decided
        by path and line later)."""
        import numpy as np

        cut = max(limit, 1) * 4
        while True:
            if cut < len(candidates):
                top = candidates[np.argpartition(-scores[candidates], cut)[:cut]]
            else:
                top = candidates
            top = top[np.argsort(-scores[top], kind="stable")]
            chosen: list[int] = []
            count = 0
            for u in top.tolist():
                if count >= limit and scores[u] < scores[chosen[-1]]:
                    break
                chosen.append(u)
                count += len(self._unit_entries[u])
            else:
                if len(top) < len(candidates):  # `limit` not filled yet: look deeper
                    cut *= 4
                    continue
            # Everything strictly better than the last chosen is in `top`; ties may not be.
            last = scores[chosen[-1]]
            have = set(chosen)
            chosen += [u for u in candidates[scores[candidates] == last].tolist() if u not in have]
            return chosen
