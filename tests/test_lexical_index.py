"""Held lexical documents (codegraph.lexical_index) rank exactly as the store's own BM25 does
(FTS5 on SQLite, store.bm25 on PostgreSQL), follow new snapshots reading only new contents, and
leave damaged documents out with a warning."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest

import codegraph
from codegraph.lexical_index import LexicalIndex, LexicalSource
from codegraph.pipeline import IndexOptions
from codegraph.query import open_index
from codegraph.stages import IndexConfig
from codegraph.store import bm25
from tests.conftest import SHOP, write_tree

NO_VECTORS = IndexOptions(IndexConfig(vectors=False))
WORDS = ["user", "save", "validate", "email", "order", "total", "price", "items", "checkout", "helper",
         "inner", "main", "the", "a", "of", "return", "self", "def", "class", "if", "none", "value",
         "get", "set", "list", "dict", "id", "name", "raise", "error", "py"]

EXTRA = {
    # Equal bytes under two paths: both are hits, with equal scores (ties by path, then line).
    "copy/shop_models.py": SHOP["shop/models.py"],
    "util/strings.py": "def user_name(first, last):\n    return f'{first} {last}'\n\n"
                       "def email_domain(email):\n    return email.split('@')[1]\n",
    "notes.txt": "the user saves the order; the order has items and a total price\n" * 3,
}


def _queries(n: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.sample(WORDS, rng.randint(1, 9))) for _ in range(n)]


def _rows(hits: list) -> list[tuple]:
    return [(h.path, h.start_line, h.end_line, h.symbol, h.score, h.snippet) for h in hits]


def test_held_ranking_equals_the_stores_own(tmp_path: Path, store_url: str) -> None:
    repo = write_tree(tmp_path / "repo", {**SHOP, **EXTRA})
    codegraph.index(str(repo), store_url, options=NO_VECTORS)
    held, plain = open_index(store_url), open_index(store_url, hold_lexical=False)
    for query in _queries(60):
        for limit in (1, 3, 10, 50):
            assert (_rows(held.search(query, "lexical", limit))
                    == _rows(plain.search(query, "lexical", limit))), (query, limit)
    assert held._lexical is not None and held._lexical.last_sync.units > 0
    hits = held.search("user save", "lexical", 50)
    copies = [h for h in hits if h.path.endswith("models.py")]
    assert {h.path for h in copies} == {"copy/shop_models.py", "shop/models.py"}


def test_held_documents_follow_a_new_snapshot_reading_only_new_contents(tmp_path: Path) -> None:
    repo = write_tree(tmp_path / "repo", {**SHOP, **EXTRA})
    db = str(tmp_path / "db")
    codegraph.index(str(repo), db, options=NO_VECTORS)
    held = open_index(db)
    held.search("user", "lexical", 5)
    first = held._lexical.last_sync
    assert first.tokenized > 0 and first.kept == 0
    (repo / "util" / "strings.py").write_text("def shout(text):\n    return text.upper() + ' checkout'\n")
    codegraph.index(str(repo), db, options=NO_VECTORS)
    plain = open_index(db, hold_lexical=False)
    for query in [*_queries(30, seed=3), "shout text upper", "email domain"]:
        assert _rows(held.search(query, "lexical", 10)) == _rows(plain.search(query, "lexical", 10)), query
    again = held._lexical.last_sync
    assert again.tokenized == 1 and again.kept == first.tokenized + first.kept - 1
    assert held.search("shout", "lexical", 5)[0].path == "util/strings.py"
    assert not [h for h in held.search("email domain", "lexical", 50) if h.path == "util/strings.py"]


def test_a_damaged_document_is_left_out_and_reported(tmp_path: Path) -> None:
    repo = write_tree(tmp_path / "repo", {**SHOP, **EXTRA})
    db = tmp_path / "db"
    codegraph.index(str(repo), str(db), options=NO_VECTORS)
    conn = sqlite3.connect(db / "index.sqlite")
    conn.execute("UPDATE lexical_units SET end_line = end_line + 1 WHERE content_hash ="
                 " (SELECT content_hash FROM snapshot_files WHERE path='util/strings.py')")
    conn.commit()
    conn.close()
    held = open_index(str(db))
    hits = held.search("email domain user name", "lexical", 50)
    assert hits and "util/strings.py" not in {h.path for h in hits}
    assert any("util/strings.py" in w and "damaged" in w for w in held.warnings)


def test_a_phrase_of_several_tokens_is_left_to_the_store(tmp_path: Path) -> None:
    repo = write_tree(tmp_path / "repo", SHOP)
    db = str(tmp_path / "db")
    codegraph.index(str(repo), db, options=NO_VECTORS)
    idx = open_index(db)
    lexical = LexicalIndex()
    lexical.sync(idx.store, [LexicalSource(s.id, s.stage_keys["L3_lexical"]) for s in idx.snapshots])
    assert lexical.search(idx.store, [["user"], ["save", "order"]], 5) is None
    assert lexical.search(idx.store, [["nosuchterm"]], 5) == []
    found = lexical.search(idx.store, [bm25.tokenize_phrase("customer")], 5)
    assert found and all(hit.score > 0 for _, hit in found)


@pytest.mark.parametrize("seed", [1, 2])
def test_equal_scores_break_ties_like_the_store(tmp_path: Path, seed: int) -> None:
    """Many identical documents: the cut at `limit` falls inside a run of equal scores."""
    files = {f"pkg/m{i:02d}.py": "def helper():\n    return user_total\n" for i in range(30)}
    repo = write_tree(tmp_path / "repo", files)
    db = str(tmp_path / "db")
    codegraph.index(str(repo), db, options=NO_VECTORS)
    held, plain = open_index(db), open_index(db, hold_lexical=False)
    for limit in random.Random(seed).sample(range(1, 40), 8):
        assert _rows(held.search("user total helper", "lexical", limit)) == _rows(
            plain.search("user total helper", "lexical", limit))


def test_document_counts_are_read_again_whenever_the_full_text_index_changes(tmp_path: Path) -> None:
    """SQLite keeps the terms' document counts it read (a count walks the term's whole posting
    list) for as long as FTS5's averages and structure records are unchanged; any write changes
    the structure record, even one that leaves every total as it was."""
    from codegraph.store import open_store

    repo = write_tree(tmp_path / "repo", {**SHOP, **EXTRA})
    db = tmp_path / "db"
    codegraph.index(str(repo), str(db), options=NO_VECTORS)
    held, plain = open_index(str(db)), open_index(str(db), hold_lexical=False)
    queries = [*_queries(20, seed=5), "user email", "shout text upper"]
    for query in queries:  # every term's count read once, and kept
        assert _rows(held.search(query, "lexical", 10)) == _rows(plain.search(query, "lexical", 10))
    (repo / "util" / "strings.py").write_text("def shout(text):\n    return text.upper() + ' user'\n")
    codegraph.index(str(repo), str(db), options=NO_VECTORS)
    for query in queries:
        assert _rows(held.search(query, "lexical", 10)) == _rows(plain.search(query, "lexical", 10)), query

    # One word of one document replaced by another, token for token: nRow and every token total
    # stay, and the counts of both words change.
    store = held.store
    before = store.lexical_statistics(["user", "zebra"])
    with sqlite3.connect(db / "index.sqlite") as conn:
        averages = conn.execute("SELECT block FROM lexical_fts_data WHERE id = 1").fetchone()
        (rowid,) = conn.execute("SELECT rowid FROM lexical_fts WHERE lexical_fts MATCH 'head:user'"
                                " ORDER BY rowid LIMIT 1").fetchone()
        swap = ", ".join(f"{c} = replace({c}, 'user', 'zebra')" for c in ("head", "body", "subtokens"))
        conn.execute(f"UPDATE lexical_fts SET {swap} WHERE rowid = ?", (rowid,))
        assert conn.execute("SELECT block FROM lexical_fts_data WHERE id = 1").fetchone() == averages
    after = store.lexical_statistics(["user", "zebra"])
    assert after == open_store(str(db), create=False).lexical_statistics(["user", "zebra"])
    assert after[2]["user"] < before[2]["user"] and after[2]["zebra"] == 1 and "zebra" not in before[2]
