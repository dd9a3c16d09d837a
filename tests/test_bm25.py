"""The BM25 the PostgreSQL store computes is FTS5's: same tokens, same scores, same order."""

from __future__ import annotations

import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codegraph import lexical
from codegraph.store import bm25

# ASCII, Latin letters with diacritics, combining marks, Greek, CJK, ligatures, digits of other
# scripts, private use (a token character in unicode61), punctuation and whitespace.
ALPHABET = st.sampled_from(
    list("aZ_09 .-\t\n\"'") + list("éÉßİıǅﬁ½²ⅷΩωЖж中文ー٣\u0301\u0300\ue000\u00a0\u2028")
)


def fts5_rows(texts: list[tuple[str, str, str]], match: str | None = None) -> list[tuple[int, float]]:
    """FTS5's own ranking, with the store's three columns and the weights it passes."""
    conn = sqlite3.connect(":memory:")
    conn.execute(f'CREATE VIRTUAL TABLE f USING fts5(head, body, subtokens, tokenize = "{bm25.TOKENIZE}")')
    conn.executemany("INSERT INTO f(rowid, head, body, subtokens) VALUES (?, ?, ?, ?)",
                     [(i, *t) for i, t in enumerate(texts)])
    weights = ", ".join(repr(float(w)) for w in bm25.COLUMN_WEIGHTS)
    return conn.execute(f"SELECT rowid, -bm25(f, {weights}) AS score FROM f WHERE f MATCH ?"
                        " ORDER BY score DESC, rowid", (match,)).fetchall()


def fts5_tokens(text: str) -> list[str]:
    conn = sqlite3.connect(":memory:")
    conn.execute(f'CREATE VIRTUAL TABLE f USING fts5(body, tokenize = "{bm25.TOKENIZE}")')
    conn.execute("CREATE VIRTUAL TABLE v USING fts5vocab(f, 'instance')")
    conn.execute("INSERT INTO f VALUES (?)", (text,))
    return [t for (t,) in conn.execute("SELECT term FROM v ORDER BY offset")]


@settings(max_examples=300, deadline=None)
@given(st.text(ALPHABET, max_size=40))
def test_tokens_equal_fts5_unicode61_tokens(text: str) -> None:
    assert bm25.tokens(text) == fts5_tokens(text)


def test_tokens_fold_case_and_diacritics_and_keep_identifiers_whole() -> None:
    assert bm25.tokens("Café NAÏVE x_y_Z __init__ a.b-c") == [
        "cafe", "naive", "x_y_z", "__init__", "a", "b", "c"]
    assert bm25.tokens("x" * 40_000) == ["x" * bm25.MAX_TOKEN_BYTES]  # FTS5 truncates too


def test_match_expressions_parse_back_into_their_phrases() -> None:
    terms = ['a"b', "NEAR", "x y", "café"]
    assert bm25.parse_match(lexical.fts_query(terms)) == terms
    with pytest.raises(ValueError):
        bm25.parse_match("a OR b")


def _python_ranking(docs: list[tuple[str, str, str]], phrases: list[str]) -> list[tuple[int, float]]:
    terms = bm25.tokenize_documents(docs)
    n_rows = len(docs)
    avgdl = sum(t.length for t in terms) / n_rows
    idfs = [bm25.idf(n_rows, sum(1 for t in terms if p in t.terms)) for p in phrases]
    zero = (0,) * bm25.COLUMNS
    scored = {
        i: bm25.score(idfs, [t.terms.get(p, zero) for p in phrases], t.length, avgdl)
        for i, t in enumerate(terms) if any(p in t.terms for p in phrases)
    }
    return bm25.rank(scored, 10)


def test_scores_are_fts5_bm25_to_the_last_bit() -> None:
    docs = [("parse_header parse header def parse_header(line)", "return parse(line)", "parse header"),
            ("HeaderParser header parser class HeaderParser", "pass", "header parser"),
            ("", "x = 1\n" * 50 + "parse", ""),
            ("nothing", "nothing relevant here", "")]
    phrases = ["parse", "header", "parse_header"]
    assert _python_ranking(docs, phrases) == fts5_rows(docs, lexical.fts_query(phrases))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(*(st.text(st.sampled_from("abc _\n"), max_size=30) for _ in range(3))),
                min_size=1, max_size=8),
       st.lists(st.sampled_from(["a", "b", "c", "ab", "a_b", "abc"]), min_size=1, max_size=3, unique=True))
def test_head_weighted_scores_equal_fts5_on_random_documents(docs: list[tuple[str, str, str]],
                                                            phrases: list[str]) -> None:
    assert _python_ranking(docs, phrases) == fts5_rows(docs, lexical.fts_query(phrases))[:10]
