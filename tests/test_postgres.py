"""The PostgreSQL store: migrations, errors, and equality with the SQLite store (same export bytes,
same rankings, same scores)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xxhash

import codegraph
from codegraph.errors import StoreError, UserError
from codegraph.pipeline import IndexOptions
from codegraph.stages import L3, IndexConfig
from codegraph.store import open_store, postgres
from codegraph.store.postgres import Migration
from conftest import SHOP, pg_database, write_tree

CLI = [sys.executable, "-m", "codegraph.cli"]
STDLIB = Path(sysconfig.get_paths()["stdlib"])
NO_VECTORS = IndexOptions(IndexConfig(vectors=False))
SUBSET = ("json", "http", "email", "urllib", "logging", "xml/dom")  # 57 files, ~1.1 MB
Twins = tuple[str, str, list[dict[str, Any]]]  # SQLite location, PostgreSQL URL, the two results


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CODEGRAPH_DB"}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, timeout=300)


# ----- migrations --------------------------------------------------------------------------


def test_concurrent_migrations_from_threads_and_processes_apply_each_version_once() -> None:
    with pg_database() as url:
        procs = [subprocess.Popen([*CLI, "db", "migrate", "--db", url, "--json"], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(3)]
        barrier = threading.Barrier(4)
        results: list[list[int]] = []
        errors: list[BaseException] = []

        def worker() -> None:
            try:
                conn = postgres.connect(url)
                with conn:
                    barrier.wait()
                    results.append(postgres.migrate(conn))
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for proc in procs:
            stdout, stderr = proc.communicate(timeout=120)
            assert proc.returncode == 0, stderr
            results.append(json.loads(stdout)["applied"])
        assert errors == []
        newest = [m.version for m in postgres.migrations()]
        assert sorted(results, key=len)[-1] == newest  # exactly one caller applied everything
        assert [r for r in results if r] == [newest]
        with postgres.connect(url) as conn:
            rows = conn.execute("SELECT version FROM schema_migrations ORDER BY version").fetchall()
        assert [v for (v,) in rows] == newest


def test_pending_migrations_apply_in_order_and_a_newer_schema_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pg_database() as url:
        open_store(url).close()  # first use creates the schema
        shipped = postgres.migrations()
        later = [Migration(shipped[-1].version + 2, "two", "ALTER TABLE t_extra ADD COLUMN b int;"),
                 Migration(shipped[-1].version + 1, "one", "CREATE TABLE t_extra (a int);")]
        everything = sorted([*shipped, *later], key=lambda m: m.version)
        monkeypatch.setattr(postgres, "migrations", lambda: everything)
        store = open_store(url)  # applies the pending two, in version order
        with postgres.connect(url) as conn:
            assert conn.execute("SELECT a, b FROM t_extra").fetchall() == []
        store.close()
        monkeypatch.setattr(postgres, "migrations", lambda: shipped)
        newer = shipped[-1].version + 2
        with pytest.raises(UserError, match=rf"schema version {newer}; .* \(upgrade codegraph\)"):
            open_store(url)


def test_a_version_1_database_loses_its_old_graph_and_the_next_index_is_a_full_build(
    shop_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Migration 2 drops migration 1's per-snapshot graph (no reads recorded: not convertible);
    the snapshots that had it stop being complete, and the next run rebuilds from cached IR."""
    with pg_database() as url:
        first = postgres.migrations()[:1]
        monkeypatch.setattr(postgres, "migrations", lambda: first)
        with postgres.connect(url) as conn:
            assert postgres.migrate(conn) == [1]
        monkeypatch.undo()
        with postgres.connect(url) as conn:  # what a version-1 codegraph left behind
            conn.execute("INSERT INTO repos(root, name) VALUES (%s, 'repo')", (str(shop_repo.resolve()),))
            (old_id,) = conn.execute(
                "INSERT INTO snapshots(repo_id, manifest_hash, stage_keys, created_at, complete)"
                " SELECT id, 'm', '{}', 0, true FROM repos RETURNING id").fetchone() or (0,)
            conn.execute("INSERT INTO snapshot_files VALUES (%s, 'app.py', 'h', 1, 1, 'python', 'app')",
                         (old_id,))
            conn.execute("INSERT INTO symbols VALUES (%s, 'app.main', 'main', 'function', 'app.py', 1, 2,"
                         " ''::bytea, ''::bytea)", (old_id,))
        store = open_store(url)  # applies migration 2
        assert store.latest_snapshot() is None
        store.close()
        result = codegraph.index(str(shop_repo), url, options=NO_VECTORS)
        assert (result["state"], result["mode"]) == ("completed", "full")
        sqlite_url = str(tmp_path / "db")
        codegraph.index(str(shop_repo), sqlite_url, options=NO_VECTORS)
        assert list(codegraph.open(url).export()) == list(codegraph.open(sqlite_url).export())
        with postgres.connect(url) as conn:
            assert postgres.schema_version(conn) == postgres.migrations()[-1].version
            # The old snapshot was abandoned (created long ago): pruned when the new one completed.
            assert conn.execute("SELECT id FROM snapshots").fetchall() == [(result["snapshot_id"],)]


def test_unreachable_or_bad_urls_are_one_line_user_errors(tmp_path: Path) -> None:
    for url in ("postgresql://postgres@127.0.0.1:1/nothing", "postgresql://a:secret@[broken"):
        with pytest.raises(UserError, match="cannot connect to PostgreSQL") as info:
            open_store(url)
        assert "secret" not in str(info.value) and "\n" not in str(info.value)
    proc = cli("index", str(tmp_path), "--db", "postgresql://postgres@127.0.0.1:1/x", "--no-vectors")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    proc = cli("db", "migrate")
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: no store given: pass --db or set CODEGRAPH_DB"


def test_a_database_without_an_index_is_not_created_by_readers() -> None:
    with pg_database() as url:
        with pytest.raises(UserError, match="no codegraph index"):
            codegraph.open(url)
        with postgres.connect(url) as conn:
            assert postgres.schema_version(conn) is None
        with pytest.raises(StoreError):
            postgres.PostgresStore(url, create=False)


# ----- concurrent writers -------------------------------------------------------------------


def test_concurrent_writers_of_the_same_outputs_replace_them_whole() -> None:
    """Two workers that compute the same file's outputs at once: both commit, no duplicates."""
    from codegraph.model import Chunk
    from codegraph.store.base import LexicalDoc, LexicalUnit

    docs = [LexicalDoc(f"h{i}", [LexicalUnit(0, f"f{i}", 1, 1, f"f{i}",
                                             f"def f{i}(): return parse_header_{i}", f"parse header {i}")])
            for i in range(20)]
    chunk_rows = [(f"h{i}", [Chunk(o, o + 1, o + 1, f"f{i}", f"t{i}-{o}", f"text {i} {o}")
                             for o in range(5)], None) for i in range(20)]
    with pg_database() as url:
        store = open_store(url)
        barrier = threading.Barrier(3)
        errors: list[BaseException] = []

        def writer(offset: int) -> None:
            try:
                barrier.wait()
                for round_ in range(8):
                    # Overlapping, differently ordered batches.
                    k = (offset + round_) % 3
                    store.put_lexical("L3", docs[k:] + docs[:k])
                    store.put_chunks("L2", chunk_rows[k:] + chunk_rows[:k])
            except BaseException as exc:
                errors.append(exc)
            finally:
                store.close()

        threads = [threading.Thread(target=writer, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert store.existing_lexical("L3", [d.content_hash for d in docs]) == {d.content_hash for d in docs}
        with postgres.connect(url) as conn:
            counts = conn.execute(
                "SELECT (SELECT count(*) FROM lexical_docs), (SELECT count(*) FROM lexical_units),"
                " (SELECT count(*) FROM lexical_terms),"
                " (SELECT count(*) FROM chunks), (SELECT count(*) FROM chunk_sets)").fetchone()
            # BM25's totals, kept per writing connection: after 24 overlapping replacements by
            # three writers at once, exactly what the stored documents hold.
            stats = conn.execute("SELECT sum(docs), sum(tokens), count(*) FROM lexical_stats").fetchone()
        # per doc: f<i> in the head; def, f<i>, return, parse_header_<i> in the body; parse,
        # header, <i> as parts
        assert counts == (20, 20, 20 * 7, 100, 20)
        assert stats[:2] == (20, 20 * 8) and stats[2] >= 1


# ----- BM25 equal to FTS5 -------------------------------------------------------------------


@pytest.fixture(scope="module")
def twin_stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twins]:
    """SHOP, 57 standard-library files and a file with NUL, indexed into SQLite and PostgreSQL."""
    root = tmp_path_factory.mktemp("subset")
    repo = write_tree(root / "repo", SHOP)
    for package in SUBSET:
        shutil.copytree(STDLIB / package, repo / package, ignore=shutil.ignore_patterns("__pycache__"))
    # A NUL byte past the binary sniff: PostgreSQL text cannot hold it, so file text is bytea.
    (repo / "late_nul.py").write_bytes(b"# pad\n" * 2000 + b'def nul(x="a\x00b"):\n    """\x00"""\n')
    with pg_database() as pg_url:
        sqlite_url = str(root / "db")
        results = [codegraph.index(str(repo), url, options=NO_VECTORS) for url in (sqlite_url, pg_url)]
        assert [r["state"] for r in results] == ["completed", "completed"]
        yield sqlite_url, pg_url, results


def test_sqlite_and_postgres_export_byte_identical_indexes(twin_stores: Twins) -> None:
    sqlite_url, pg_url, (sq, pg) = twin_stores
    assert sq["files_indexed"] == pg["files_indexed"] >= 60
    assert (sq["symbols"], sq["edges"], sq["chunks"]) == (pg["symbols"], pg["edges"], pg["chunks"])
    exports = [cli("export", "--db", url) for url in (sqlite_url, pg_url)]
    assert all(p.returncode == 0 for p in exports), [p.stderr for p in exports]
    assert len(exports[0].stdout) > 100_000
    assert exports[0].stdout == exports[1].stdout
    assert '"late_nul.nul"' in exports[1].stdout


def _edit(repo: Path, path: str, old: str, new: str) -> None:
    text = (repo / path).read_text()
    assert old in text, (path, old)
    (repo / path).write_text(text.replace(old, new))


def _graph_sizes(sqlite_url: str, pg_url: str) -> list[tuple[int, int]]:
    """(resolutions, recorded reads) kept by each store: both prune the same ones."""
    import sqlite3

    sql = "SELECT (SELECT count(*) FROM resolutions), (SELECT count(*) FROM resolution_reads)"
    with sqlite3.connect(Path(sqlite_url) / "index.sqlite") as conn:
        sq = conn.execute(sql).fetchone()
    with postgres.connect(pg_url) as conn:
        pg = conn.execute(sql).fetchone()
    return [tuple(sq), tuple(pg)]


def test_sqlite_and_postgres_stay_identical_through_incremental_updates(tmp_path: Path) -> None:
    """SHOP, json and email (35 files), edited twice (renames that reach importers, a body-only edit,
    a move, a deletion, a new file): each incremental update touches the same files in both stores,
    and both export exactly a full rebuild."""
    repo = write_tree(tmp_path / "repo", SHOP)
    for package in ("json", "email"):
        shutil.copytree(STDLIB / package, repo / package, ignore=shutil.ignore_patterns("__pycache__"))
    with pg_database() as pg_url:
        urls = (str(tmp_path / "db"), pg_url)

        def update_both() -> list[dict[str, Any]]:
            results = [codegraph.index(str(repo), url, options=NO_VECTORS) for url in urls]
            assert [r["state"] for r in results] == ["completed"] * 2, [r.get("error") for r in results]
            assert [r["mode"] for r in results] == ["incremental", "incremental"]
            assert results[0]["changed_files"] == results[1]["changed_files"]
            assert results[0]["affected_files"] == results[1]["affected_files"]
            exports = [list(codegraph.open(url).export()) for url in urls]
            assert exports[0] == exports[1]
            full = codegraph.index(str(repo), str(tmp_path / "full"), options=NO_VECTORS, full=True)
            assert full["state"] == "completed"
            assert list(codegraph.open(str(tmp_path / "full")).export()) == exports[1]
            shutil.rmtree(tmp_path / "full")
            return results

        for url in urls:
            assert codegraph.index(str(repo), url, options=NO_VECTORS)["state"] == "completed"
        _edit(repo, "shop/pricing.py", "total_price", "grand_total")  # read by three importers
        _edit(repo, "json/decoder.py", 'msg = "Invalid \\\\uXXXX escape"', 'msg = "bad \\\\uXXXX escape"')
        _edit(repo, "email/errors.py", "class CharsetError(", "class CharsetProblem(")
        # (Not a json file: json/tool.py passes names to json.dump, whose `cls` parameter
        # json/__init__.py calls, so moving it re-resolves json/__init__.py.)
        (repo / "email/base64mime.py").rename(repo / "email/b64mime.py")
        (repo / "email/mime/audio.py").unlink()
        write_tree(repo, {"late.py": "from json.decoder import JSONDecoder\nJSONDecoder()\n"})
        first = update_both()[1]
        assert "shop/pricing.py" in first["affected_files"] and "app.py" in first["affected_files"]
        assert "json/__init__.py" not in first["affected_files"]  # the body-only edit stopped there
        # A second round on top of the first: resolutions carried twice, the oldest snapshot pruned.
        _edit(repo, "email/errors.py", "class HeaderParseError(", "class HeaderFault(")
        _edit(repo, "app.py", "run_checkout([1, 2])", "run_checkout([1, 2, 3])")
        second = update_both()[1]
        assert {"app.py", "email/errors.py", "email/_header_value_parser.py"} <= set(second["affected_files"])
        sizes = _graph_sizes(*urls)
        assert sizes[0] == sizes[1] and sizes[0][1] > 0


QUERIES = ("json decoder", "parse header", "send_header", "email message attachment", "urlopen",
           "getLogger handler", "Element attribute", "total price tax", "self", "the", "xyzzy nothing")


def test_sqlite_and_postgres_rank_the_same_hits_with_the_same_scores(twin_stores: Twins) -> None:
    sqlite_url, pg_url, _ = twin_stores
    sq, pg = codegraph.open(sqlite_url), codegraph.open(pg_url)
    for query in QUERIES:
        sq_hits = [h.as_dict() for h in sq.search(query, mode="lexical", limit=10)]
        pg_hits = [h.as_dict() for h in pg.search(query, mode="lexical", limit=10)]
        assert sq_hits == pg_hits, query
    assert sq.search("json decoder", mode="lexical")[0].path.startswith("json/")
    # Unrounded: the same doubles, including multi-token phrases and repeated terms.
    for match in ('"raw_decode" OR "decoder" OR "json"', '"def parse"', '"return self" OR "header"',
                  '"email" OR "email"', '"é"', '"x.y"'):
        assert (sq.store.lexical_search(sq.snapshot.id, sq.snapshot.stage_keys[L3], match, 50)
                == pg.store.lexical_search(pg.snapshot.id, pg.snapshot.stage_keys[L3], match, 50)), match


def test_readers_of_changed_facts_are_an_index_lookup(twin_stores: Twins) -> None:
    _, pg_url, (_, pg) = twin_stores
    with postgres.connect(pg_url) as conn:
        keys = [k for (k,) in conn.execute("SELECT read_key FROM resolution_reads ORDER BY res_id LIMIT 5")]
        assert len(keys) == 5
        conn.execute("ANALYZE resolution_reads, snapshot_files")
        conn.execute("SET enable_seqscan = off")  # these tables are small: show the index is usable
        plan = "\n".join(r for (r,) in conn.execute(
            "EXPLAIN " + postgres.PostgresStore.READERS_SQL, (pg["snapshot_id"], keys)))
    assert "Index Cond: (read_key = ANY" in plan and "Seq Scan" not in plan, plan
    store = postgres.PostgresStore(pg_url, create=False)
    assert store.readers(pg["snapshot_id"], keys)
    store.close()


# ----- vectors ------------------------------------------------------------------------------


def _fake_embed(texts: list[str], model_name: str = "") -> np.ndarray:
    """Deterministic unit vectors from the text's hash: exercises storage and search, no model."""
    out = np.empty((len(texts), 16), dtype=np.float32)
    for i, text in enumerate(texts):
        v = np.random.default_rng(xxhash.xxh3_64_intdigest(text.encode())).standard_normal(16)
        out[i] = v / np.linalg.norm(v)
    return out


def test_vector_search_is_exact_cosine_over_stored_float32_vectors(
    shop_repo: Path, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from codegraph import embed

    monkeypatch.setattr(embed, "embed", _fake_embed)
    result = codegraph.index(str(shop_repo), store_url, options=IndexOptions(IndexConfig()))
    assert result["state"] == "completed", result.get("error")
    assert result["vectors"] == result["chunks"] > 0
    idx = codegraph.open(store_url)
    chunks = idx.store.chunks_of_files(idx.snapshot.id, idx.snapshot.stage_keys["L2_chunk"],
                                       [f.path for f in idx.store.snapshot_files(idx.snapshot.id)])
    target = next(c for c in chunks if c.path == "shop/pricing.py")
    # The query embeds to exactly the target chunk's vector: cosine 1.0, ranked first.
    monkeypatch.setattr(embed, "embed", lambda texts, model_name="": _fake_embed([target.text]))
    hits = idx.search("anything", mode="vector", limit=3)
    assert (hits[0].path, hits[0].start_line, hits[0].score) == (target.path, target.start_line, 1.0)
    assert hits[1].score <= hits[0].score and len(hits) == 3
    assert idx.search("anything", mode="hybrid", limit=3)
    again = codegraph.index(str(shop_repo), store_url, options=IndexOptions(IndexConfig()))
    assert again["embedded"] == 0 and again["vectors"] == result["vectors"]  # the embedding cache
    assert sum(1 for row in idx.export() if row[0] == "vector") == result["vectors"]
