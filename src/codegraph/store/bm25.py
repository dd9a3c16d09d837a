"""FTS5's BM25, reproduced for stores without FTS5 (PostgreSQL): same tokens, same numbers.

Tokens are unicode61's as configured for the SQLite store's `lexical_fts`. ASCII is tokenized
here; any run of text with other characters is handed to SQLite's own tokenizer (an in-memory FTS5
table per thread): a Python copy of SQLite's Unicode tables and folding would drift, and then
rankings would differ between the stores.

Scores follow `fts5Bm25Function` operation for operation (k1=1.2, b=0.75, IDF floored at 1e-6,
per-instance column weights summed in position order, document length over all columns,
statistics over every document in the index), so a unit's score is the same double in both
stores and the ranking is the same.
"""

from __future__ import annotations

import math
import re
import sqlite3
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

# Must equal `lexical_fts` in sqlite_schema.sql: the token definition is part of the ranking.
TOKENIZE = "unicode61 remove_diacritics 2 tokenchars '_'"
K1 = 1.2
B = 0.75
IDF_FLOOR = 1e-6
MAX_TOKEN_BYTES = 32_768  # FTS5_MAX_TOKEN_SIZE: FTS5 keeps only this much of a longer token
# head, body, subtokens: the weights the SQLite store passes to bm25(). A unit's head (name,
# qualified name, signature) counts HEAD_WEIGHT times an occurrence in its body; chosen on the
# search benchmark (bench/bench_search.py, see ARCHITECTURE.md "Search").
HEAD_WEIGHT = 5.0
COLUMN_WEIGHTS: tuple[float, ...] = (HEAD_WEIGHT, 1.0, 0.6)
COLUMNS = 3

_local = threading.local()
# Runs of ASCII token characters or of anything beyond ASCII: ASCII punctuation and whitespace
# separate tokens in unicode61 (tokenchars '_' makes '_' a token character).
_RUN = re.compile("[0-9A-Za-z_\x80-\U0010ffff]+")
_ASCII_TOKEN = re.compile("[0-9a-z_]+")  # an ASCII text's tokens, once lower-cased


@dataclass(frozen=True)
class DocTerms:
    """One document's tokens: per term its frequency in each column, and per-column lengths."""

    terms: dict[str, tuple[int, ...]]
    lengths: tuple[int, ...]

    @property
    def length(self) -> int:
        return sum(self.lengths)


def _tokenizer() -> sqlite3.Connection:
    conn = getattr(_local, "conn", None)
    if conn is None:
        conn = sqlite3.connect(":memory:", isolation_level=None)
        conn.execute(f'CREATE VIRTUAL TABLE tok USING fts5(body, tokenize = "{TOKENIZE}")')
        conn.execute("CREATE VIRTUAL TABLE tok_instance USING fts5vocab(tok, 'instance')")
        _local.conn = conn
    return conn


@lru_cache(maxsize=65_536)
def _sqlite_tokens(run: str) -> tuple[str, ...]:
    """unicode61's tokens of one run of text, asked of SQLite itself."""
    conn = _tokenizer()
    conn.execute("BEGIN")
    try:
        conn.execute("INSERT INTO tok(rowid, body) VALUES (1, ?)", (run,))
        tokens = tuple(t for (t,) in conn.execute("SELECT term FROM tok_instance ORDER BY offset"))
        conn.execute("DELETE FROM tok")
    finally:
        conn.execute("COMMIT")
    return tokens


def tokens(text: str) -> list[str]:
    """FTS5's tokens of text, in order.

    ASCII is decided here (token characters: letters, digits and '_'; ASCII folds to lower case),
    which is most of any source file and 5x faster than reading FTS5's index back. A run that
    holds any other character goes to SQLite's own tokenizer: runs are split only at ASCII
    separators, which unicode61 splits at too, so a run tokenizes alone as it does in context."""
    if text.isascii():  # most columns: two C calls
        found = _ASCII_TOKEN.findall(text.lower())
        return [t[:MAX_TOKEN_BYTES] for t in found] if len(text) > MAX_TOKEN_BYTES else found
    out: list[str] = []
    for run in _RUN.findall(text):
        if run.isascii():
            out.append(run.lower()[:MAX_TOKEN_BYTES])
        else:
            out.extend(_sqlite_tokens(run))
    return out


def tokenize_documents(docs: Sequence[Sequence[str]]) -> list[DocTerms]:
    """Each document's columns -> their terms, exactly as FTS5 would index them."""
    out = []
    for columns in docs:
        per_column = [tokens(c) for c in columns]
        width = len(per_column)
        terms: dict[str, list[int]] = {}
        for i, column in enumerate(per_column):
            for t, n in Counter(column).items():
                terms.setdefault(t, [0] * width)[i] = n
        out.append(DocTerms({t: tuple(f) for t, f in terms.items()}, tuple(map(len, per_column))))
    return out


def tokenize_phrase(phrase: str) -> list[str]:
    """The tokens of one quoted query phrase, in order (FTS5 tokenizes queries the same way)."""
    return tokens(phrase)


def phrase_counts(columns: Sequence[str], phrase: Sequence[str]) -> tuple[int, ...]:
    """Occurrences of a multi-token phrase (consecutive tokens) per column of one document."""
    n = len(phrase)
    wanted = list(phrase)
    counts = []
    for column in map(tokens, columns):
        counts.append(sum(1 for i in range(len(column) - n + 1) if column[i : i + n] == wanted))
    return tuple(counts)


def parse_match(match: str) -> list[str]:
    """The phrases of a `lexical.fts_query` expression: `"a" OR "b""c"` -> ['a', 'b"c']."""
    phrases: list[str] = []
    i, n = 0, len(match)
    while i < n:
        if match.startswith(" OR ", i) and phrases:
            i += 4
            continue
        if match[i] != '"':
            raise ValueError(f"unsupported lexical query: {match!r}")
        j = i + 1
        text: list[str] = []
        while True:
            k = match.find('"', j)
            if k < 0:
                raise ValueError(f"unterminated phrase in lexical query: {match!r}")
            text.append(match[j:k])
            if match.startswith('""', k):
                text.append('"')
                j = k + 2
                continue
            i = k + 1
            break
        phrases.append("".join(text))
    return phrases


def idf(n_rows: int, n_hit: int) -> float:
    value = math.log((n_rows - n_hit + 0.5) / (n_hit + 0.5))
    return value if value > 0.0 else IDF_FLOOR


def score(idfs: Sequence[float], freqs: Sequence[Sequence[int]], doc_len: int, avgdl: float,
          weights: Sequence[float] | None = None) -> float:
    """BM25 of one document: freqs[i] = the tf of phrase i in each column."""
    weights = COLUMN_WEIGHTS if weights is None else weights
    total = 0.0
    d = float(doc_len)
    for phrase_idf, tfs in zip(idfs, freqs, strict=True):
        # FTS5 adds one column weight per instance, in position order (columns in order): the
        # same additions give the same double.
        freq = 0.0
        for weight, tf in zip(weights, tfs, strict=True):
            for _ in range(tf):
                freq += weight
        total += phrase_idf * ((freq * (K1 + 1.0)) / (freq + K1 * (1 - B + B * d / avgdl)))
    return total


def rank(scored: dict[Any, float], limit: int) -> list[tuple[Any, float]]:
    """Best first; equal scores by key, (path, line) (code-point order, as SQLite's BINARY
    collation)."""
    return sorted(scored.items(), key=lambda item: (-item[1], item[0]))[:limit]

