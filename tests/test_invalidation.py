"""Exact invalidation: changing one stage's version or config re-runs it and what depends on it,
and nothing else. Proven by counting the work each stage actually did."""

from __future__ import annotations

from pathlib import Path

import pytest

import codegraph
from codegraph.languages.python import PYTHON
from codegraph.pipeline import IndexOptions
from codegraph.stages import IndexConfig
from codegraph.store import open_store


def work(result: dict) -> dict[str, int]:
    counters = {"L1_ir": "files_parsed", "L3_lexical": "documents_written", "L2_chunk": "files_chunked"}
    return {s["name"]: s[counters[s["name"]]] for s in result["stages"] if s["name"] in counters}


def test_new_chunk_size_reruns_l2_only(shop_repo: Path, store_url: str) -> None:
    db = store_url
    codegraph.index(str(shop_repo), db, options=IndexOptions(IndexConfig(vectors=False)))
    again = codegraph.index(str(shop_repo), db, options=IndexOptions(
        IndexConfig(vectors=False, max_chunk_chars=300, min_chunk_chars=50)))
    assert work(again) == {"L1_ir": 0, "L3_lexical": 0, "L2_chunk": 5}
    back = codegraph.index(str(shop_repo), db, options=IndexOptions(IndexConfig(vectors=False)))
    assert work(back) == {"L1_ir": 0, "L3_lexical": 0, "L2_chunk": 0}  # the old outputs are still keyed


def test_new_ir_version_reruns_l1_and_the_units_derived_from_it(
    shop_repo: Path, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = store_url
    first = codegraph.index(str(shop_repo), db, options=IndexOptions(IndexConfig(vectors=False)))
    monkeypatch.setattr(type(PYTHON), "version", "py-test-bump")
    again = codegraph.index(str(shop_repo), db, options=IndexOptions(IndexConfig(vectors=False)))
    # Units come from L1's symbols, so L2 and L3 are keyed by L1's versions too.
    assert work(again) == {"L1_ir": 5, "L3_lexical": 5, "L2_chunk": 5}
    assert again["edges"] == first["edges"]
    assert again["chunks"] == first["chunks"]


def test_one_edited_file_reruns_every_stage_for_that_file_only(shop_repo: Path, store_url: str) -> None:
    db = store_url
    codegraph.index(str(shop_repo), db, options=IndexOptions(IndexConfig(vectors=False)))
    (shop_repo / "app.py").write_text((shop_repo / "app.py").read_text() + "\n# edited\n")
    again = codegraph.index(str(shop_repo), db, options=IndexOptions(IndexConfig(vectors=False)))
    assert work(again) == {"L1_ir": 1, "L3_lexical": 1, "L2_chunk": 1}


def _corrupt_ir(db: str) -> None:
    """Truncate two stored L1 payloads and append a byte to a third, behind codegraph's back."""
    if db.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(db, autocommit=True) as conn:
            conn.execute("UPDATE ir_outputs SET payload = substring(payload from 1 for length(payload) / 2)"
                         " WHERE content_hash IN (SELECT content_hash FROM ir_outputs ORDER BY 1 LIMIT 2)")
            conn.execute("UPDATE ir_outputs SET payload = payload || '\\x00'::bytea"
                         " WHERE content_hash IN"
                         " (SELECT content_hash FROM ir_outputs ORDER BY 1 LIMIT 1 OFFSET 3)")
        return
    import sqlite3

    with sqlite3.connect(Path(db) / "index.sqlite") as conn:
        conn.execute("UPDATE ir_outputs SET payload = substr(payload, 1, length(payload) / 2)"
                     " WHERE content_hash IN (SELECT content_hash FROM ir_outputs ORDER BY 1 LIMIT 2)")
        conn.execute("UPDATE ir_outputs SET payload = payload || x'00'"
                     " WHERE content_hash IN"
                     " (SELECT content_hash FROM ir_outputs ORDER BY 1 LIMIT 1 OFFSET 3)")


def test_corrupted_ir_is_detected_reported_and_recomputed(shop_repo: Path, store_url: str) -> None:
    first = codegraph.index(str(shop_repo), store_url, options=IndexOptions(IndexConfig(vectors=False)))
    _corrupt_ir(store_url)
    # --full: every file is resolved again, so every stored IR is read (and checked).
    again = codegraph.index(str(shop_repo), store_url, options=IndexOptions(IndexConfig(vectors=False)),
                            full=True)
    assert again["state"] == "completed", again.get("error")
    assert len(again["warnings"]) == 3 and all("corrupt" in w for w in again["warnings"])
    assert work(again)["L1_ir"] == 3
    assert (again["symbols"], again["edges"]) == (first["symbols"], first["edges"])


def test_cache_stats_and_prune_keep_what_kept_snapshots_use(shop_repo: Path, store_url: str) -> None:
    db = store_url
    first = codegraph.index(str(shop_repo), str(db), options=IndexOptions(IndexConfig(vectors=False)))
    for i in range(3):
        (shop_repo / "app.py").write_text((shop_repo / "app.py").read_text() + f"\nX{i} = {i}\n")
        codegraph.index(str(shop_repo), str(db), options=IndexOptions(IndexConfig(vectors=False)))
    reference = list(codegraph.open(str(db)).export())
    store = open_store(str(db))
    stats = {row["kind"]: row for row in store.cache_stats()}
    # Four versions of app.py were indexed; complete_snapshot kept two snapshots, so two are unused.
    assert stats["L1_ir"]["rows"] == first["files_indexed"] + 3 and stats["L1_ir"]["unused"] == 2
    assert stats["L2_chunk"]["unused"] == 2 and stats["L3_lexical"]["unused"] == 2
    deleted = store.prune(keep=1)
    assert deleted["snapshots"] == 1 and deleted["L1_ir"] == 3 and deleted["L3_lexical"] == 3
    after = {row["kind"]: row for row in store.cache_stats()}
    assert all(row["unused"] == 0 for row in after.values())
    assert after["L1_ir"]["rows"] == first["files_indexed"]
    # Never what the latest needs: its export is unchanged, and an update still reuses outputs.
    assert list(codegraph.open(str(db)).export()) == reference
    again = codegraph.index(str(shop_repo), str(db), options=IndexOptions(IndexConfig(vectors=False)),
                            full=True)
    assert work(again) == {"L1_ir": 0, "L3_lexical": 0, "L2_chunk": 0}


def test_a_new_embedding_model_reruns_l4_only_and_a_new_chunk_size_l2_and_l4(
    shop_repo: Path, store_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Counted from the work each stage reports (a deterministic fake model stands in for
    MiniLM; what matters is which texts reach it)."""
    from test_integrity import fake_embed

    from codegraph import embed

    embedded: list[str] = []

    def counting_embed(texts: list[str], model_name: str = "", batch_size: int = 32) -> object:
        embedded.extend(texts)
        return fake_embed(texts)

    monkeypatch.setattr(embed, "embed", counting_embed)

    def run(**config: object) -> dict:
        embedded.clear()
        result = codegraph.index(str(shop_repo), store_url, options=IndexOptions(IndexConfig(**config)),
                                 full=True)
        assert result["state"] == "completed", result.get("error")
        return result

    first = run()
    assert first["embedded"] == len(embedded) == len(set(embedded)) > 0
    another_model = tmp_path / "another-model"  # a model directory (--model); the fake embeds
    another_model.mkdir()
    (another_model / "config.json").write_text('{"hidden_size": 384}')
    other_model = run(model_name=str(another_model))
    assert work(other_model) == {"L1_ir": 0, "L3_lexical": 0, "L2_chunk": 0}
    assert other_model["embedded"] == len(embedded) == first["embedded"]  # every text, once
    smaller = run(model_name=str(another_model), max_chunk_chars=400, min_chunk_chars=100)
    assert work(smaller)["L1_ir"] == 0 and work(smaller)["L3_lexical"] == 0
    assert work(smaller)["L2_chunk"] == first["files_indexed"]
    # Only texts never embedded for this model: chunks the new size left unchanged are reused.
    stages = {s["name"]: s for s in smaller["stages"]}
    assert smaller["embedded"] == len(embedded) == stages["L4_vector"]["embedded"]
    assert stages["L4_vector"]["texts_reused"] > 0 or smaller["embedded"] == smaller["vectors"]


def test_a_store_whose_content_hashes_were_made_otherwise_is_read_again(tmp_path: Path) -> None:
    """An upgrade that changes how content hashes are made (they are seeded by language now):
    the old snapshot's hashes are not taken as size/mtime hints, every file is read once, and the
    update equals a full build. (Taking them made each read fail its check: "changed while it
    was being indexed".)"""
    import json
    import os
    import sqlite3

    import xxhash

    from tests.test_incremental import export, rebuild_export

    repo = tmp_path / "repo"
    (repo / "pkg").mkdir(parents=True)
    (repo / "pkg" / "__init__.py").write_text("")
    (repo / "pkg" / "a.py").write_text("def f():\n    return g()\n\n\ndef g():\n    return 1\n")
    (repo / "notes.txt").write_text("plain text keeps its hash\n")
    for file in repo.rglob("*"):  # older than any scan: size/mtime hints would be trusted
        os.utime(file, (1_600_000_000, 1_600_000_000))
    db = tmp_path / "db"
    options = IndexOptions(IndexConfig(vectors=False))
    codegraph.index(str(repo), str(db), options=options)
    conn = sqlite3.connect(db / "index.sqlite")
    # The store as an older version left it: unseeded hashes, another L1 key.
    for path, in conn.execute("SELECT path FROM snapshot_files").fetchall():
        old = xxhash.xxh3_128_hexdigest((repo / path).read_bytes())
        conn.execute("UPDATE snapshot_files SET content_hash=? WHERE path=?", (old, path))
    sid, keys = conn.execute("SELECT id, stage_keys FROM snapshots").fetchone()
    keys = json.loads(keys)
    keys["L1_ir"] = "L1_ir:python=py-4"
    conn.execute("UPDATE snapshots SET stage_keys=? WHERE id=?", (json.dumps(keys), sid))
    conn.commit()
    conn.close()
    result = codegraph.index(str(repo), str(db), options=options)
    assert result["state"] == "completed" and not result["files_failed"], result
    assert result["files_read"] == 3
    assert export(db) == rebuild_export(repo, tmp_path / "full")
