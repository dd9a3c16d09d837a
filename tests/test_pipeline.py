"""End to end through the Python API, without vectors: snapshots, stages, bad input, queries."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

import codegraph
from codegraph.confine import RootDir
from codegraph.errors import UserError
from codegraph.pipeline import IndexOptions
from codegraph.stages import IndexConfig
from conftest import git_init, write_tree

NO_VECTORS = IndexOptions(IndexConfig(vectors=False))


def run(repo: Path, db: Path | str, options: IndexOptions = NO_VECTORS) -> dict:
    return codegraph.index(str(repo), str(db), options=options)


def test_index_then_search_and_query_the_graph(shop_repo: Path, store_url: str) -> None:
    db = store_url
    result = run(shop_repo, db)
    assert result["state"] == "completed"
    assert result["files_total"] == 5 and result["files_indexed"] == 5 and result["files_failed"] == []
    assert result["symbols"] > 10 and result["edges"] > 10 and result["chunks"] >= 5
    assert [s["name"] for s in result["stages"]] == ["L1_ir", "L3_lexical", "L2_chunk"]
    assert all(s["status"] == "completed" for s in result["stages"])

    idx = codegraph.open(db)
    hits = idx.search("total price tax", mode="lexical", limit=3)
    assert hits[0].path == "shop/pricing.py" and hits[0].symbol.startswith("shop.pricing")
    assert hits[0].start_line <= 6 <= hits[0].end_line and "TAX_RATE" in hits[0].snippet
    # camelCase / snake_case parts: "rate" finds TAX_RATE
    assert idx.search("rate", mode="lexical")[0].path == "shop/pricing.py"

    defs = idx.graph("defs", "shop.models.Customer")
    assert [(d["kind"], d["path"], d["start_line"]) for d in defs] == [("class", "shop/models.py", 9)]
    callers = {r["src"] for r in idx.graph("callers", "shop.checkout.checkout")}
    assert callers == {"app.main", "shop.checkout.helper.inner"}
    callees = {r["dst"] for r in idx.graph("callees", "app.main")}
    assert callees == {"shop.models.Customer", "shop.checkout.checkout", "shop.pricing.total_price"}
    importers = {r["src_path"] for r in idx.graph("importers", "shop/pricing.py")}
    assert importers == {"app.py", "shop/__init__.py", "shop/checkout.py"}
    imports = {r["dst"] for r in idx.graph("imports", "app.py")}
    assert "shop.checkout.checkout" in imports and "shop.models.Customer" in imports


def test_git_work_tree_indexes_tracked_and_untracked_but_not_ignored(tmp_path: Path) -> None:
    repo = write_tree(tmp_path / "g", {"tracked.py": "def a(): pass\n", ".gitignore": "ignored.py\nbuild/\n"})
    git_init(repo)
    write_tree(repo, {"untracked.py": "def b(): pass\n", "ignored.py": "def c(): pass\n",
                      "build/out.py": "def d(): pass\n"})
    result = run(repo, tmp_path / "db")
    idx = codegraph.open(str(tmp_path / "db"))
    paths = {f.path for f in idx.store.snapshot_files(idx.snapshot.id)}
    assert paths == {".gitignore", "tracked.py", "untracked.py"}
    assert result["files_total"] == 3


def test_plain_directory_honours_nested_gitignore_files(tmp_path: Path) -> None:
    repo = write_tree(tmp_path / "p", {
        "keep.py": "x = 1\n", ".gitignore": "*.log\n", "sub/.gitignore": "secret.py\n",
        "sub/secret.py": "x = 2\n", "sub/ok.py": "x = 3\n", "debug.log": "noise\n",
        "other/secret.py": "x = 4\n",
    })
    run(repo, tmp_path / "db")
    idx = codegraph.open(str(tmp_path / "db"))
    paths = {f.path for f in idx.store.snapshot_files(idx.snapshot.id)}
    assert paths == {".gitignore", "keep.py", "sub/.gitignore", "sub/ok.py", "other/secret.py"}


def test_bad_input_is_reported_per_file_and_the_run_completes(tmp_path: Path, store_url: str) -> None:
    repo = write_tree(tmp_path / "bad", {
        "good.py": "def fine():\n    return 1\n",
        "latin1_declared.py": "# -*- coding: latin-1 -*-\nname = 'caf\xe9'\n".encode("latin-1"),
        "bad_utf8.py": b"x = '\xff\xfe'\n",
        "binary.dat": b"\x00\x01\x02" * 100,
        "huge.py": "x = 1\n" * 50_000,
        "syntax.py": "def broken(:\n    pass\n\ndef after():\n    return 2\n",
        "empty.py": "",
        "deep.py": "x = " + "[" * 5000 + "]" * 5000 + "\n",
    })
    os.symlink("loop_b", repo / "loop_a")
    os.symlink("loop_a", repo / "loop_b")
    os.mkfifo(repo / "fifo")
    options = IndexOptions(IndexConfig(vectors=False), max_file_bytes=100_000)
    result = run(repo, store_url, options)
    assert result["state"] == "completed"
    reasons = {f["path"]: f["reason"] for f in result["files_failed"] + result["files_skipped"]}
    assert "invalid UTF-8" in reasons["bad_utf8.py"]
    assert reasons["binary.dat"] == "binary file"
    assert reasons["huge.py"].startswith("too large")
    assert reasons["loop_a"] == reasons["loop_b"] == "symlink loop"
    assert reasons["fifo"] == "not a regular file"
    for indexed in ("good.py", "latin1_declared.py", "syntax.py", "empty.py", "deep.py"):
        assert indexed not in reasons
    idx = codegraph.open(store_url)
    assert idx.graph("defs", "syntax.after")  # tree-sitter recovered past the error
    assert idx.search("café", mode="lexical")[0].path == "latin1_declared.py"
    ir_stage = result["stages"][0]
    assert ir_stage["files_with_syntax_errors"] >= 1


def test_unreadable_file_is_reported(
    tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = write_tree(tmp_path / "u", {"ok.py": "x = 1\n", "locked.py": "y = 2\n"})
    real = RootDir.read  # every read of a file goes through it (tests run as root: no chmod)

    def read(self: RootDir, rel: str, max_bytes: int | None = None) -> Any:
        if rel == "locked.py":
            raise PermissionError(13, "Permission denied")
        return real(self, rel, max_bytes)

    monkeypatch.setattr(RootDir, "read", read)
    result = run(repo, store_url)
    assert result["state"] == "completed"
    assert result["files_failed"] == [{"path": "locked.py", "reason": "unreadable: Permission denied"}]


def test_reindexing_unchanged_files_reuses_every_per_file_output(shop_repo: Path, store_url: str) -> None:
    first = run(shop_repo, store_url)
    unchanged = run(shop_repo, store_url)
    # Nothing changed: the latest snapshot already is this one; no stage has work to do.
    assert (unchanged["mode"], unchanged["stages"], unchanged["affected_files"]) == ("incremental", [], [])
    assert unchanged["changed_files"] == {"added": [], "modified": [], "deleted": []}
    assert unchanged["snapshot_id"] == first["snapshot_id"]
    assert (unchanged["symbols"], unchanged["edges"], unchanged["chunks"]) == (
        first["symbols"], first["edges"], first["chunks"])
    # A rebuild still finds every per-file output stored under the same content and stage key.
    second = codegraph.index(str(shop_repo), store_url, options=NO_VECTORS, full=True)
    assert second["mode"] == "full" and len(second["affected_files"]) == 5
    stages = {s["name"]: s for s in second["stages"]}
    assert stages["L1_ir"]["files_parsed"] == 0
    assert stages["L3_lexical"]["documents_written"] == 0
    assert stages["L2_chunk"]["files_chunked"] == 0
    assert (second["symbols"], second["edges"], second["chunks"]) == (
        first["symbols"], first["edges"], first["chunks"])
    assert second["snapshot"] == first["snapshot"]


def test_a_changed_file_is_recomputed_and_the_graph_follows(shop_repo: Path, store_url: str) -> None:
    run(shop_repo, store_url)
    (shop_repo / "shop/pricing.py").write_text("def grand_total(items):\n    return sum(items)\n")
    result = run(shop_repo, store_url)
    stages = {s["name"]: s for s in result["stages"]}
    assert stages["L1_ir"]["files_parsed"] == 1 and stages["L2_chunk"]["files_chunked"] == 1
    idx = codegraph.open(store_url)
    assert idx.graph("defs", "shop.pricing.total_price") == []
    assert idx.graph("defs", "shop.pricing.grand_total")
    assert idx.search("grand_total", mode="lexical")[0].path == "shop/pricing.py"


def test_default_store_is_inside_the_repo_and_found_from_subdirectories(
    shop_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CODEGRAPH_DB", raising=False)
    codegraph.index(str(shop_repo), options=NO_VECTORS)
    assert (shop_repo / ".codegraph" / "index.sqlite").is_file()
    monkeypatch.chdir(shop_repo / "shop")
    assert codegraph.open().search("Customer", mode="lexical")
    # the store never indexes itself
    idx = codegraph.open()
    assert not any(f.path.startswith(".codegraph") for f in idx.store.snapshot_files(idx.snapshot.id))


def test_missing_path_and_unusable_db_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no such directory"):
        run(tmp_path / "nope", tmp_path / "db")
    not_a_db = tmp_path / "garbage.sqlite"
    not_a_db.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(UserError, match="not a usable codegraph store"):
        run(tmp_path, not_a_db)
    with pytest.raises(UserError, match="no index"):
        codegraph.open(str(tmp_path / "empty"))


def test_git_is_not_required_for_a_plain_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = write_tree(tmp_path / "nogit", {"a.py": "def a(): pass\n"})
    monkeypatch.setenv("PATH", "/nonexistent")  # no git binary at all
    result = run(repo, tmp_path / "db")
    assert result["state"] == "completed" and result["files_indexed"] == 1


def test_each_run_is_a_job_with_an_audit_trail_of_legal_transitions(shop_repo: Path, store_url: str) -> None:
    from codegraph.jobs import IllegalTransition
    from codegraph.queue import open_queue

    result = run(shop_repo, store_url)
    queue = open_queue(store_url)
    job = queue.get(result["job_id"])
    assert job is not None and job.state == "completed" and job.attempt == 1
    assert job.finished_at is not None and job.current_stage is None
    assert result["job_state"] == "completed" and job.snapshot == result["snapshot"]
    assert [(e.from_state, e.to_state) for e in queue.events(job.id)] == [
        (None, "queued"), ("queued", "running"), ("running", "completed")]
    with pytest.raises(IllegalTransition, match="completed -> cancelled"):
        queue.cancel(job.id)
    assert queue.get(job.id).state == "completed"  # the illegal write changed nothing


def test_graph_queries_answer_exactly_what_the_exported_edges_say(tmp_path: Path, store_url: str) -> None:
    """Every callers / callees / imports / importers answer, on real code, against a brute-force
    reading of the exported edges (the store answers through its indexes, never a scan)."""
    import random
    import shutil
    import sysconfig

    stdlib = Path(sysconfig.get_paths()["stdlib"])
    src = tmp_path / "src"
    for package in ("json", "http", "email"):
        shutil.copytree(stdlib / package, src / package, ignore=shutil.ignore_patterns("__pycache__"))
    run(src, store_url)
    idx = codegraph.open(store_url)
    edges = [row[1:] for row in idx.export() if row[0] == "edge"]
    symbols = sorted({row[1] for row in idx.export() if row[0] == "symbol"})
    rng = random.Random(7)

    def edge(row: dict[str, Any]) -> tuple[Any, ...]:  # a graph row without repository, languages
        assert row["language"] == row["dst_language"] == "python"
        return tuple(v for k, v in row.items() if k not in ("repo", "language", "dst_language"))

    for qname in rng.sample(symbols, 60):
        def answer(query: str, name: str = qname) -> set[tuple]:
            return {(r["kind"], r["src"], r["src_path"], r["dst"], r["dst_path"], r["line"])
                    for r in idx.graph(query, name)}
        assert answer("callers") == {tuple(e) for e in edges if e[0] == "calls" and e[3] == qname}
        assert answer("callees") == {tuple(e) for e in edges if e[0] == "calls" and e[1] == qname}
        assert answer("importers") == {tuple(e) for e in edges if e[0] == "imports" and e[3] == qname}
    for path in rng.sample(sorted({e[2] for e in edges}), 15):
        assert {edge(r) for r in idx.graph("imports", path)} == {
            tuple(e) for e in edges if e[0] == "imports" and e[2] == path}
        assert {edge(r) for r in idx.graph("importers", path)} == {
            tuple(e) for e in edges if e[0] == "imports" and e[4] == path}


def test_a_direct_run_rescues_jobs_whose_process_died(shop_repo: Path, tmp_path: Path) -> None:
    import time

    from codegraph.queue import open_queue

    db = str(tmp_path / "db")
    run(shop_repo, tmp_path / "db")
    queue = open_queue(db)
    dead = queue.start(str(shop_repo), "cli-gone-123", lease_seconds=0.05)  # its process was killed
    time.sleep(0.1)
    run(shop_repo, tmp_path / "db")
    rescued = queue.get(dead.id)
    assert rescued is not None and rescued.state == "queued"  # back in the queue, one attempt spent
    assert [(e.from_state, e.to_state) for e in queue.events(dead.id)][-1] == ("running", "queued")


def test_resolving_in_worker_processes_equals_resolving_in_one(tmp_path: Path, store_url: str) -> None:
    """Each file's resolution is a function of the snapshot alone: splitting the files across
    worker processes (each with its own memo and its own connection to the store) changes
    nothing. The reference resolves in one process into SQLite."""
    import shutil
    import sysconfig

    from codegraph.stages import PARALLEL_RESOLVE_MIN_FILES

    stdlib = Path(sysconfig.get_paths()["stdlib"])
    src = tmp_path / "src"
    for package in ("json", "http", "email", "urllib", "xml"):
        shutil.copytree(stdlib / package, src / package, ignore=shutil.ignore_patterns("__pycache__"))
    exports = []
    for workers, db in ((1, str(tmp_path / "reference")), (2, store_url)):
        result = codegraph.index(str(src), db, options=IndexOptions(IndexConfig(vectors=False,
                                                                                 workers=workers)))
        assert result["state"] == "completed" and len(result["affected_files"]) > PARALLEL_RESOLVE_MIN_FILES
        exports.append(list(codegraph.open(db).export()))
    assert exports[0] == exports[1]
