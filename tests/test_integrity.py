"""Integrity: a stored output damaged behind codegraph's back (a changed, truncated or missing
row) is detected, reported in `warnings`, recomputed and never used — on both stores, for every
stage's output. The damage is done with plain SQL; `export` after the repair must equal an
undamaged index. Vectors come from a deterministic fake (no model is loaded)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xxhash

import codegraph
from codegraph import embed
from codegraph.pipeline import IndexOptions
from codegraph.stages import IndexConfig
from conftest import pg_database, write_tree

SMALL = {"max_chunk_chars": 200, "min_chunk_chars": 20}  # many chunks from a small repository
VECTORS = IndexOptions(IndexConfig(**SMALL))  # type: ignore[arg-type]
NO_VECTORS = IndexOptions(IndexConfig(vectors=False, **SMALL))  # type: ignore[arg-type]


def fake_embed(texts: list[str], model_name: str = "", batch_size: int = 32) -> np.ndarray:
    """A unit vector of the model's width per text, a function of the text alone."""
    out = np.empty((len(texts), embed.DIMENSIONS), dtype=np.float32)
    for i, text in enumerate(texts):
        v = np.random.default_rng(xxhash.xxh3_64_intdigest(text.encode())).standard_normal(embed.DIMENSIONS)
        out[i] = v / np.linalg.norm(v)
    return out


@pytest.fixture(autouse=True)
def _no_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embed, "embed", fake_embed)


def is_pg(db: str) -> bool:
    return db.startswith("postgresql://")


def sql(db: str, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run one statement on the store's database directly (placeholders: %s on both)."""
    if is_pg(db):
        import psycopg

        with psycopg.connect(db, autocommit=True) as conn:
            cur = conn.execute(statement, params)  # type: ignore[arg-type]
            return cur.fetchall() if cur.description else []
    with sqlite3.connect(Path(db) / "index.sqlite", isolation_level=None) as conn:
        return conn.execute(statement.replace("%s", "?"), params).fetchall()


@contextmanager
def another_store(db: str, tmp_path: Path) -> Iterator[str]:
    """A second, empty store on the same backend: the undamaged reference."""
    if is_pg(db):
        with pg_database() as url:
            yield url
    else:
        yield str(tmp_path / "reference")


def export(db: str) -> list[list[Any]]:
    return list(codegraph.open(db).export())


def stage(result: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in result["stages"] if s["name"] == name)


def full(repo: Path, db: str, options: IndexOptions = VECTORS) -> dict[str, Any]:
    result = codegraph.index(str(repo), db, options=options, full=True)
    assert result["state"] == "completed", result.get("error")
    return result


def owners(db: str) -> list[str]:
    """The content hashes holding chunks, in order: three distinct files to damage."""
    return [h for (h,) in sql(db, "SELECT DISTINCT content_hash FROM chunks ORDER BY content_hash")]


def first_path(db: str, content_hash: str) -> str:
    rows = sql(db, "SELECT path FROM snapshot_files WHERE content_hash = %s", (content_hash,))
    return min(p for (p,) in rows)


def test_damaged_chunk_sets_and_texts_are_detected_recomputed_and_skipped_by_search(
    shop_repo: Path, store_url: str
) -> None:
    db = store_url
    codegraph.index(str(shop_repo), db, options=VECTORS)
    before = export(db)
    a, b, c = owners(db)[:3]
    # a: a chunk's line moved; b: its last chunk row gone; c: a text cut in half.
    sql(db, "UPDATE chunks SET start_line = start_line + 1 WHERE id ="
            " (SELECT min(id) FROM chunks WHERE content_hash = %s)", (a,))
    sql(db, "DELETE FROM chunks WHERE id = (SELECT max(id) FROM chunks WHERE content_hash = %s)", (b,))
    cut = ("substring(text from 1 for length(text) / 2)" if is_pg(db)
           else "substr(text, 1, length(text) / 2)")
    (text_hash,) = sql(db, "SELECT text_hash FROM chunks WHERE content_hash = %s"
                           " ORDER BY ordinal LIMIT 1", (c,))[0]
    sql(db, f"UPDATE texts SET text = {cut} WHERE text_hash = %s", (text_hash,))
    damaged_paths = {p for (p,) in sql(db, "SELECT DISTINCT f.path FROM snapshot_files f"
                                           " WHERE f.content_hash IN (%s, %s, %s)", (a, b, c))}

    # A vector search meets the damage: those files' windows are skipped and said so; nothing
    # crashes. Lexical hits come from L3's own (intact) unit documents, not from L2.
    idx = codegraph.open(db)
    hits = idx.search("customer price checkout total save validate", "vector", limit=20)
    assert not {h.path for h in hits} & damaged_paths
    assert idx.warnings and all("damaged" in w for w in idx.warnings)
    hybrid = idx.search("customer price checkout total save validate", "hybrid", limit=20)
    assert {h.path for h in hybrid} - damaged_paths == {h.path for h in hits}  # vector side the same
    assert idx.search("customer price checkout total save validate", "lexical", limit=20)

    again = full(shop_repo, db)
    l2 = [w for w in again["warnings"] if w.startswith("corrupt L2 output")]
    assert len(l2) == 3 and len(again["warnings"]) == 3, again["warnings"]
    assert stage(again, "L2_chunk")["files_chunked"] == 3 and stage(again, "L2_chunk")["files_repaired"] == 3
    assert stage(again, "L4_vector")["embedded"] == 0  # the text's vector was made from the good text
    assert export(db) == before
    idx = codegraph.open(db)
    idx.search("customer", "hybrid")
    assert idx.warnings == []


def test_damaged_lexical_documents_are_detected_recomputed_and_skipped_by_search(
    shop_repo: Path, store_url: str
) -> None:
    db = store_url
    codegraph.index(str(shop_repo), db, options=NO_VECTORS)
    before = export(db)
    # One unit document of each of two files.
    docs = sql(db, "SELECT min(doc_id), content_hash FROM lexical_units GROUP BY content_hash"
                   " ORDER BY content_hash")
    (first, first_hash), (second, second_hash) = docs[0], docs[1]
    if is_pg(db):
        sql(db, "UPDATE lexical_units SET body = substring(body from 1 for length(body) / 2)"
                " WHERE doc_id = %s", (first,))
        # The BM25 term rows, which rank: one term's count changed.
        sql(db, "UPDATE lexical_terms SET tf_body = tf_body + 1 WHERE doc_id = %s AND term ="
                " (SELECT min(term) FROM lexical_terms WHERE doc_id = %s)", (second, second))
    else:
        sql(db, "UPDATE lexical_fts SET body = substr(body, 1, length(body) / 2) WHERE rowid = %s", (first,))
        sql(db, "DELETE FROM lexical_fts WHERE rowid = %s", (second,))  # the document is gone
    damaged_paths = {p for (p,) in sql(db, "SELECT path FROM snapshot_files WHERE content_hash IN (%s, %s)",
                                       (first_hash, second_hash))}
    idx = codegraph.open(db)
    query = "customer price checkout total save validate import"
    hits = idx.search(query, "lexical", limit=20)
    assert not {h.path for h in hits} & damaged_paths
    # (A document FTS5 no longer holds cannot even match: only the changed one is met.)
    assert idx.warnings and all("L3 lexical document is damaged" in w for w in idx.warnings)
    # The API holds the documents (lexical_index): every damaged one was found when they were
    # loaded. The CLI asks the store once and checks the hits it got: a subset of those.
    assert {w.split()[1].rstrip(":") for w in idx.warnings} == damaged_paths
    proc = subprocess.run([sys.executable, "-m", "codegraph.cli", "search", query, "--mode", "lexical",
                           "--limit", "20", "--db", db, "--json"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    cli_warnings = json.loads(proc.stdout)["warnings"]
    assert cli_warnings and set(cli_warnings) <= set(idx.warnings)
    assert not {h["path"] for h in json.loads(proc.stdout)["hits"]} & damaged_paths

    again = full(shop_repo, db, NO_VECTORS)
    assert sorted(again["warnings"]) == sorted(
        f"corrupt L3 output for {first_path(db, h)} ({h}): recomputed" for h in (first_hash, second_hash))
    assert stage(again, "L3_lexical")["documents_written"] == 2
    assert stage(again, "L3_lexical")["documents_repaired"] == 2
    assert export(db) == before
    idx = codegraph.open(db)
    assert {h.path for h in idx.search("customer price", "lexical", limit=20)} & damaged_paths
    assert idx.warnings == []


def test_a_damaged_sqlite_full_text_index_is_rebuilt_by_full(shop_repo: Path, tmp_path: Path) -> None:
    db = str(tmp_path / "db")
    codegraph.index(str(shop_repo), db, options=NO_VECTORS)
    before = export(db)
    reference = [(h.path, h.score) for h in codegraph.open(db).search("customer", "lexical")]
    # FTS5's own index pages (not a document): only its integrity check can see this.
    sql(db, "UPDATE lexical_fts_data SET block = substr(block, 1, length(block) - 3)"
            " WHERE id = (SELECT max(id) FROM lexical_fts_data)")
    again = full(shop_repo, db, NO_VECTORS)
    assert again["warnings"] == ["corrupt L3 full-text index: rebuilt from the stored documents"]
    assert export(db) == before
    assert [(h.path, h.score) for h in codegraph.open(db).search("customer", "lexical")] == reference


def test_damaged_vectors_are_detected_recomputed_and_skipped_by_search(
    shop_repo: Path, store_url: str
) -> None:
    db = store_url
    first = codegraph.index(str(shop_repo), db, options=VECTORS)
    assert first["vectors"] > 10
    before = export(db)
    hashes = [h for (h,) in sql(db, "SELECT text_hash FROM embeddings ORDER BY text_hash")]
    cut = "substring(vector from 1 for 100)" if is_pg(db) else "substr(vector, 1, 100)"
    sql(db, f"UPDATE embeddings SET vector = {cut} WHERE text_hash = %s", (hashes[0],))  # truncated
    sql(db, "UPDATE embeddings SET vector = (SELECT vector FROM embeddings WHERE text_hash = %s)"
            " WHERE text_hash = %s", (hashes[-1], hashes[1]))  # another text's vector
    zeros = "decode(repeat('00', 1536), 'hex')" if is_pg(db) else "zeroblob(1536)"
    sql(db, f"UPDATE embeddings SET vector = {zeros} WHERE text_hash = %s", (hashes[2],))  # wiped
    # Sane-looking checksums on insane vectors: NaNs, and one float short.
    nans = np.full(embed.DIMENSIONS, np.nan, dtype=np.float32).tobytes()
    short = fake_embed(["x"])[0][:-1].tobytes()
    for vector, text_hash in ((nans, hashes[3]), (short, hashes[4])):
        sql(db, "UPDATE embeddings SET vector = %s, checksum = %s WHERE text_hash = %s",
            (vector, xxhash.xxh3_64_hexdigest(vector), text_hash))
    damaged = {p for (p,) in sql(db, "SELECT DISTINCT f.path FROM snapshot_files f JOIN chunks c ON"
                                     " c.content_hash = f.content_hash WHERE c.text_hash IN"
                                     " (%s, %s, %s, %s, %s)", tuple(hashes[:5]))}

    idx = codegraph.open(db)
    hits = idx.search("total price", "vector", limit=first["vectors"])
    # Units with at least one text (window or name text) whose vector is intact: one hit each.
    ((left,),) = sql(db, "SELECT count(*) FROM (SELECT DISTINCT content_hash, start_line, end_line,"
                         " symbol FROM chunks WHERE text_hash NOT IN (%s, %s, %s, %s, %s)) AS u",
                     tuple(hashes[:5]))
    assert len(hits) == left and all(np.isfinite(h.score) for h in hits)
    assert {w.split(":")[0] for w in idx.warnings} == {f"skipped {p}" for p in damaged}

    again = full(shop_repo, db)
    assert sorted(again["warnings"]) == [f"corrupt L4 output for text {h}: embedded again"
                                         for h in hashes[:5]]
    l4 = stage(again, "L4_vector")
    assert (l4["embedded"], l4["vectors_repaired"], l4["vectors"]) == (5, 5, first["vectors"])
    assert export(db) == before
    idx = codegraph.open(db)
    ((units,),) = sql(db, "SELECT count(*) FROM (SELECT DISTINCT content_hash, start_line, end_line,"
                          " symbol FROM chunks) AS u")
    assert left <= units < first["vectors"]  # a unit has several texts: its windows, its name text
    assert len(idx.search("total price", "vector", limit=first["vectors"])) == units
    assert idx.warnings == []


def test_a_damaged_text_is_chunked_again_before_it_is_embedded(
    shop_repo: Path, store_url: str, tmp_path: Path
) -> None:
    """An update that embeds reads the texts it embeds: a damaged one is never embedded (its
    vector would pass every later check), but recomputed from its file first."""
    db = store_url
    codegraph.index(str(shop_repo), db, options=NO_VECTORS)
    text_hash, path = sql(db, "SELECT c.text_hash, min(f.path) FROM chunks c JOIN snapshot_files f ON"
                              " f.content_hash = c.content_hash GROUP BY c.text_hash ORDER BY c.text_hash")[0]
    sql(db, "UPDATE texts SET text = %s WHERE text_hash = %s",
        (b"def damaged(): pass\n" if is_pg(db) else "def damaged(): pass\n", text_hash))
    update = codegraph.index(str(shop_repo), db, options=VECTORS)  # incremental: L4 is new
    assert update["state"] == "completed" and update["mode"] == "incremental"
    assert update["warnings"] == [f"corrupt L2 text {text_hash} (of {path}): chunked again"]
    l4 = stage(update, "L4_vector")
    assert l4["texts_repaired"] == 1 and l4["embedded"] == l4["vectors"] == update["chunks"]
    with another_store(db, tmp_path) as reference:
        codegraph.index(str(shop_repo), reference, options=NO_VECTORS)
        codegraph.index(str(shop_repo), reference, options=VECTORS)
        assert export(db) == export(reference)


def test_postgres_migrations_3_to_6_keep_stored_outputs_usable(shop_repo: Path) -> None:
    """A version-2 database's outputs have no checksums: migration 3 computes them from what is
    stored, so they are used as before (nothing is reported damaged, nothing recomputed).
    Migration 5 replaces the per-file lexical tables by per-unit ones: only L3 is recomputed."""
    from codegraph.store import open_store

    with pg_database() as db:
        codegraph.index(str(shop_repo), db, options=VECTORS)
        before = export(db)
        # What a version-2 codegraph left behind: the same outputs without the checksum
        # columns, and its per-file lexical tables (migration 1's).
        sql(db, "ALTER TABLE chunk_sets DROP COLUMN checksum")
        sql(db, "ALTER TABLE embeddings DROP COLUMN checksum")
        sql(db, "ALTER TABLE edges DROP COLUMN call_kind")  # and migration 4's column
        sql(db, "DROP TABLE ir_facts")  # and migration 6's table
        sql(db, "DROP TABLE lexical_docs, lexical_units, lexical_terms, lexical_stats")
        sql(db, "CREATE TABLE lexical_docs (doc_id bigserial PRIMARY KEY, content_hash text NOT NULL,"
                " stage_key text NOT NULL, body bytea NOT NULL, subtokens bytea NOT NULL,"
                " body_len integer NOT NULL, sub_len integer NOT NULL, UNIQUE (content_hash, stage_key))")
        sql(db, "CREATE TABLE lexical_terms (doc_id bigint NOT NULL, term text NOT NULL,"
                " tf_body integer NOT NULL, tf_sub integer NOT NULL, PRIMARY KEY (doc_id, term))")
        sql(db, "INSERT INTO lexical_docs(content_hash, stage_key, body, subtokens, body_len, sub_len)"
                " VALUES ('h', 'L3_lexical:lex-1', 'x', '', 1, 0)")
        sql(db, "INSERT INTO lexical_terms VALUES (1, 'x', 1, 0)")
        sql(db, "DELETE FROM schema_migrations WHERE version >= 3")
        open_store(db).close()  # applies migrations 3, 4, 5 and 6
        assert sql(db, "SELECT max(version) FROM schema_migrations") == [(6,)]
        again = full(shop_repo, db)
        assert again["warnings"] == []
        assert [stage(again, s)[k] for s, k in (("L2_chunk", "files_chunked"),
                                                 ("L3_lexical", "documents_written"),
                                                 ("L4_vector", "embedded"))] == [0, 5, 0]
        assert export(db) == before


def test_an_older_sqlite_store_is_refused_with_one_line_saying_what_to_do(tmp_path: Path) -> None:
    """SQLite schemas before 3 were never released: no migration, the index is rebuilt."""
    from codegraph.errors import UserError
    from codegraph.store import open_store

    db = str(tmp_path / "db")
    open_store(db).close()
    sql(db, "UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    with pytest.raises(UserError, match=r"version 2; this codegraph needs 6: delete .* and index again"):
        open_store(db)


def test_a_version_3_sqlite_store_is_upgraded_and_only_its_lexical_documents_rebuilt(
    shop_repo: Path, tmp_path: Path
) -> None:
    """Schema 5 changed only L3's tables (documents per unit, not per file): a version-3 store
    gains schema 4's call kinds and drops its per-file documents on opening, and the next run
    recomputes L3 and nothing else (its Python resolutions predate call kinds: re-resolved)."""
    db = str(tmp_path / "db")
    codegraph.index(str(shop_repo), db, options=NO_VECTORS)
    before = export(db)
    sql(db, "DROP TABLE lexical_units")
    sql(db, "DROP TABLE lexical_docs")
    sql(db, "DROP TABLE lexical_fts")
    sql(db, "CREATE VIRTUAL TABLE lexical_fts USING fts5(body, subtokens)")
    sql(db, "CREATE TABLE lexical_docs (content_hash TEXT, stage_key TEXT, doc_id INTEGER, checksum TEXT,"
            " PRIMARY KEY (content_hash, stage_key)) WITHOUT ROWID")
    sql(db, "DROP INDEX edges_dispatch_by_src")
    sql(db, "DROP INDEX edges_dispatch_by_src_path")
    sql(db, "ALTER TABLE edges DROP COLUMN call_kind")
    sql(db, "UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    again = full(shop_repo, db, NO_VECTORS)
    assert sql(db, "SELECT value FROM meta WHERE key = 'schema_version'") == [("6",)]
    assert [stage(again, s)[k] for s, k in (("L1_ir", "files_parsed"), ("L2_chunk", "files_chunked"),
                                             ("L3_lexical", "documents_written"))] == [0, 0, 5]
    assert export(db) == before


def test_a_search_across_repositories_skips_one_repositorys_damaged_file_and_names_it(
    shop_repo: Path, tmp_path: Path
) -> None:
    db = str(tmp_path / "db")
    other = write_tree(tmp_path / "other", {"billing.py": "def total_price(items):\n    return sum(items)\n"})
    codegraph.index(str(shop_repo), db, options=NO_VECTORS)
    codegraph.index(str(other), db, options=NO_VECTORS)
    sql(db, "UPDATE lexical_units SET end_line = end_line + 1 WHERE content_hash ="
            " (SELECT content_hash FROM snapshot_files WHERE path = 'billing.py')")
    idx = codegraph.open(db)
    hits = idx.search("total price", "lexical", limit=10)
    assert hits and "billing.py" not in {h.path for h in hits}
    assert idx.warnings == ["skipped other:billing.py: its stored L3 lexical document is damaged"
                            " (run `codegraph index --full`)"]
