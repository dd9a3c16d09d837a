"""Incremental updates: exactly what a change affects is recomputed, and the result always equals a
full rebuild of the same tree (compared through `export`). Every test runs against SQLite and
PostgreSQL (`store_url`); the full rebuild it compares with goes into a fresh SQLite store, so a
PostgreSQL run also proves that its incremental export equals SQLite's full one."""

from __future__ import annotations

import os
import shutil
import tempfile
import textwrap
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings

import codegraph
from codegraph.pipeline import IndexOptions
from codegraph.stages import IndexConfig
from conftest import write_tree

NO_VECTORS = IndexOptions(IndexConfig(vectors=False))


def update(repo: Path, db: Path | str, full: bool = False) -> dict[str, Any]:
    result = codegraph.index(str(repo), str(db), options=NO_VECTORS, full=full)
    assert result["state"] == "completed", result.get("error")
    return result


def export(db: Path | str, repo: Path | None = None) -> list[list[Any]]:
    """The export of the store's one repository, or of `repo` in a store holding several."""
    return list(codegraph.open(str(db), str(repo) if repo else None).export())


def rebuild_export(repo: Path, scratch: Path) -> list[list[Any]]:
    """A full build of the tree as it is now, into a store of its own (a new directory each
    time: the previous one's WAL checkpointer may still be closing its files while it goes)."""
    if scratch.exists():
        shutil.rmtree(scratch, ignore_errors=True)
    fresh = Path(tempfile.mkdtemp(prefix="full-", dir=scratch.parent))
    update(repo, fresh, full=True)
    result = export(fresh)
    shutil.rmtree(fresh, ignore_errors=True)
    return result


def resolved(result: dict[str, Any]) -> list[str]:
    return result["affected_files"]


# The seed's example: base.py -> user.py -> service.py -> main.py, each re-exporting what it got.
CHAIN = {
    "base.py": '''
        class BaseModel:
            def save(self):
                return 1


        def helper():
            return 2


        LIMIT = 10
        ''',
    "user.py": '''
        from base import BaseModel, helper


        class User(BaseModel):
            def save(self):
                return helper() + super().save()
        ''',
    "service.py": '''
        from user import BaseModel, User


        def make():
            return User().save()
        ''',
    "main.py": '''
        from service import BaseModel, make


        def run():
            BaseModel()
            return make()
        ''',
    "config.py": '''
        from base import LIMIT
        ''',
}


def test_seed_chain_a_change_to_base_names_reaches_all_three(tmp_path: Path, store_url: str) -> None:
    repo = write_tree(tmp_path / "repo", CHAIN)
    db = store_url
    update(repo, db)
    (repo / "base.py").write_text((repo / "base.py").read_text().replace("BaseModel", "Model"))
    result = update(repo, db)
    assert result["mode"] == "incremental"
    assert result["changed_files"]["modified"] == ["base.py"]
    # config.py imports only LIMIT from base.py: it used nothing that changed.
    assert resolved(result) == ["base.py", "main.py", "service.py", "user.py"]
    assert export(db) == rebuild_export(repo, tmp_path / "full")
    assert codegraph.open(db).graph("defs", "base.BaseModel") == []


def test_a_body_only_edit_re_resolves_no_other_file(tmp_path: Path, store_url: str) -> None:
    repo = write_tree(tmp_path / "repo", CHAIN)
    db = store_url
    update(repo, db)
    source = (repo / "base.py").read_text()
    (repo / "base.py").write_text(source.replace("return 2", "x = 3\n    return x + helper2()"))
    result = update(repo, db)
    assert resolved(result) == ["base.py"]
    stages = {s["name"]: s for s in result["stages"]}
    assert stages["L1_ir"]["files_parsed"] == 1 and stages["L1_ir"]["files_resolved"] == 1
    assert stages["L3_lexical"]["documents_written"] == 1 and stages["L2_chunk"]["files_chunked"] == 1
    assert export(db) == rebuild_export(repo, tmp_path / "full")


def test_renaming_an_exported_function_re_resolves_exactly_its_importers(
    tmp_path: Path, store_url: str
) -> None:
    repo = write_tree(tmp_path / "repo", CHAIN)
    db = store_url
    update(repo, db)
    (repo / "base.py").write_text((repo / "base.py").read_text().replace("def helper", "def assist"))
    result = update(repo, db)
    # user.py imports helper; nobody re-exports it, so the walk stops there.
    assert resolved(result) == ["base.py", "user.py"]
    assert export(db) == rebuild_export(repo, tmp_path / "full")


def test_adding_a_module_that_an_import_was_waiting_for(tmp_path: Path, store_url: str) -> None:
    repo = write_tree(tmp_path / "repo", {**CHAIN, "late.py": "from extra import thing\nthing()\n"})
    db = store_url
    update(repo, db)
    write_tree(repo, {"extra.py": "def thing():\n    return 1\n"})
    result = update(repo, db)
    assert result["changed_files"]["added"] == ["extra.py"]
    assert resolved(result) == ["extra.py", "late.py"]
    assert export(db) == rebuild_export(repo, tmp_path / "full")
    (repo / "extra.py").unlink()
    result = update(repo, db)
    assert result["changed_files"]["deleted"] == ["extra.py"] and resolved(result) == ["late.py"]
    assert export(db) == rebuild_export(repo, tmp_path / "full")


def test_unchanged_files_are_proven_by_stat_and_touched_ones_by_hash(tmp_path: Path, store_url: str) -> None:
    repo = write_tree(tmp_path / "repo", CHAIN)
    old = os.stat(repo / "base.py").st_mtime - 3600
    for path in repo.iterdir():
        os.utime(path, (old, old))
    db = store_url
    first = update(repo, db)
    assert first["files_read"] == 5
    second = update(repo, db)
    assert second["files_read"] == 0 and second["stages"] == []
    # A reinstall touches every mtime: every file is hashed again, and nothing is reindexed.
    for path in repo.iterdir():
        os.utime(path, (old + 60, old + 60))
    third = update(repo, db)
    assert third["files_read"] == 5 and third["stages"] == [] and third["affected_files"] == []


def test_speedup_is_measured_against_the_last_full_build(tmp_path: Path, store_url: str) -> None:
    repo = write_tree(tmp_path / "repo", CHAIN)
    db = store_url
    full = update(repo, db)
    assert full["mode"] == "full" and full["speedup"] is None
    (repo / "main.py").write_text((repo / "main.py").read_text() + "\n\ndef extra():\n    pass\n")
    result = update(repo, db)
    assert result["full_build_ms"] == full["duration_ms"]
    # Both durations are measured (the JSON rounds them to 0.1 ms).
    assert result["speedup"] == pytest.approx(full["duration_ms"] / result["duration_ms"], rel=0.02)


# ----- randomized edit sequences ---------------------------------------------------------------

NAMES = ["alpha", "beta", "gamma", "Delta", "Epsilon"]
MODULES = ["pkg/a.py", "pkg/b.py", "pkg/sub/c.py", "pkg/sub/__init__.py", "pkg/__init__.py", "top.py"]


def module_of(path: str) -> str:
    name = path[: -len(".py")].replace("/", ".")
    return name[: -len(".__init__")] if name.endswith(".__init__") else name


VALUES = [*NAMES, "missing", None]


def render(defs: list[str], imports: list[tuple[str, str]], calls: list[str], star: str | None,
           signature: int, body: int, ret: str | None = None, attr: str | None = None,
           base: str | None = None, deco: str | None = None, ann: str | None = None,
           passes: str | None = None) -> str:
    """One module: functions (maybe decorated, maybe with an annotated first parameter, else
    calling their first parameter; returning a call of some name) and classes (a base, an
    attribute assigned an instance, `self.part.run()`), then module-level calls, call chains
    through return values, and a call passing a name on (a higher-order call)."""
    lines = [f"from {module} import {name}" for module, name in imports]
    if star:
        lines.append(f"from {star} import *")
    for name in defs:
        params = [f"p{i}" for i in range(signature)]
        if name[0].isupper():
            written = base or (imports[0][1] if imports and imports[0][1][0].isupper() else "object")
            lines += [f"class {name}({written}):",
                      "    def __init__(self):", f"        self.part = {attr or 'object'}()",
                      f"    def run(self, {', '.join(params)}):", "        self.part.run()",
                      f"        return self.run() + {body}", ""]
        else:
            if params and ann:
                params[0] = f"p0: {ann}"
            if deco:
                lines.append(f"@{deco}")
            lines += [f"def {name}({', '.join(params)}):"]
            if params and ann:
                lines.append("    p0.run()")
            elif params:
                lines.append("    p0()")
            lines += [f"    x = {body}", f"    return {ret}()" if ret else "    return x", ""]
    lines += [f"{call}()" for call in calls]
    lines += [f"{call}().run()" for call in calls[:1]]
    if passes:
        lines += [f"{call}({passes})" for call in calls[-1:]]
    return "\n".join(lines) + "\n"


file_specs = st.fixed_dictionaries({
    "defs": st.lists(st.sampled_from(NAMES), max_size=3, unique=True),
    "imports": st.lists(st.tuples(st.sampled_from([module_of(m) for m in MODULES]),
                                  st.sampled_from(NAMES)), max_size=3),
    "calls": st.lists(st.sampled_from([*NAMES, "missing"]), max_size=3),
    "star": st.none() | st.sampled_from([module_of(m) for m in MODULES]),
    "signature": st.integers(0, 2),
    "body": st.integers(0, 3),
    "ret": st.sampled_from(VALUES),
    "attr": st.sampled_from(VALUES),
    "base": st.sampled_from([None, "Delta", "Epsilon", "object"]),
    "deco": st.sampled_from(VALUES),
    "ann": st.sampled_from(VALUES),
    "passes": st.sampled_from(VALUES),
})

# Value edits: what a function returns, an attribute's class, a base class, a decorator, a
# parameter annotation, what a call passes on (each a fact other files' call resolution may read).
VALUE_EDITS = {"change_return": "ret", "change_attr": "attr", "change_base": "base",
               "change_decorator": "deco", "change_annotation": "ann", "change_passed": "passes"}
EDITS = ["edit_body", "change_signature", "replace_file", "delete", "add", "move", "rename_symbol",
         *VALUE_EDITS]


# Examples per backend: every PostgreSQL example costs a few round trips per statement
# (CG_EXAMPLES=400 runs a longer search on SQLite).
EXAMPLES = {"sqlite": int(os.environ.get("CG_EXAMPLES", 40)), "postgres": 15}


def test_random_edit_sequences_equal_a_full_rebuild(tmp_path_factory: Any, store_url: str) -> None:
    """Add, delete, move files; edit bodies, signatures, symbol names, imports (cycles and re-export
    chains included, since any module may import or star-import any other): after every update the
    incremental index exports exactly what a full rebuild does.

    SQLite: a fresh store per example. PostgreSQL: the test's own database, shared by its examples,
    each a repository of its own (as a server store holds many)."""
    backend = "postgres" if store_url.startswith("postgresql://") else "sqlite"

    @settings(max_examples=EXAMPLES[backend], deadline=None)
    @given(data=st.data())
    def example(data: st.DataObject) -> None:
        tmp = tmp_path_factory.mktemp("random")
        random_edit_sequence(tmp, str(tmp / "db") if backend == "sqlite" else store_url, data)

    example()


def random_edit_sequence(tmp: Path, db: str, data: st.DataObject) -> None:
    repo = tmp / "repo"
    specs: dict[str, dict[str, Any]] = {
        path: data.draw(file_specs) for path in data.draw(
            st.lists(st.sampled_from(MODULES), min_size=2, max_size=5, unique=True))
    }

    def write_all() -> None:
        if repo.exists():
            shutil.rmtree(repo)
        write_tree(repo, {path: render(**spec) for path, spec in specs.items()})

    write_all()
    update(repo, db)
    for _ in range(data.draw(st.integers(1, 4))):
        edit = data.draw(st.sampled_from(EDITS))
        path = data.draw(st.sampled_from(sorted(specs)))
        if edit == "edit_body":
            specs[path]["body"] += 1
        elif edit == "change_signature":
            specs[path]["signature"] = (specs[path]["signature"] + 1) % 3
        elif edit == "replace_file":
            specs[path] = data.draw(file_specs)
        elif edit == "delete" and len(specs) > 1:
            del specs[path]
        elif edit in ("add", "move"):
            free = [m for m in MODULES if m not in specs]
            if free:
                target = data.draw(st.sampled_from(free))
                specs[target] = data.draw(file_specs) if edit == "add" else specs.pop(path)
        elif edit in VALUE_EDITS:
            field = VALUE_EDITS[edit]
            choices = ([None, "Delta", "Epsilon", "object"] if field == "base" else VALUES)
            specs[path][field] = data.draw(st.sampled_from(choices))
        elif edit == "rename_symbol" and specs[path]["defs"]:
            old = specs[path]["defs"][0]
            unused = [n for n in NAMES if n not in specs[path]["defs"]]
            if unused:
                specs[path]["defs"][0] = data.draw(st.sampled_from(unused))
                assert old not in specs[path]["defs"]
        write_all()
        result = update(repo, db)
        assert result["mode"] == "incremental"
        assert export(db, repo) == rebuild_export(repo, tmp / "full"), (edit, path,
                                                                  textwrap.shorten(str(specs), 400))


def _fake_vectors(texts: list[str], model_name: str = "") -> Any:
    """A deterministic stand-in for MiniLM: a function of each text alone (as the model is)."""
    import numpy as np

    out = np.array([[float(len(t) % 17), float(sum(map(ord, t)) % 97), float(t.count("return")), 1.0]
                    for t in texts], dtype=np.float32)
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def test_random_edits_keep_unit_windows_vectors_and_hybrid_fusion_equal_to_a_full_rebuild(
    tmp_path_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With vectors (a fake model): after random edits the incremental store exports the same
    unit windows and vectors as a full rebuild, and every search mode, hybrid fusion included,
    answers the same hits with the same scores as a full rebuild in the same store (BM25's
    statistics are over every stored document, so a fresh store's scores differ by design)."""
    from codegraph import embed

    monkeypatch.setattr(embed, "embed", _fake_vectors)
    monkeypatch.setattr(embed, "dimensions", lambda model_name="": 4)

    @settings(max_examples=8, deadline=None)
    @given(data=st.data())
    def example(data: st.DataObject) -> None:
        tmp = tmp_path_factory.mktemp("hybrid")
        repo = tmp / "repo"
        specs = {path: data.draw(file_specs) for path in data.draw(
            st.lists(st.sampled_from(MODULES), min_size=2, max_size=4, unique=True))}
        write_tree(repo, {path: render(**spec) for path, spec in specs.items()})
        codegraph.index(str(repo), str(tmp / "db"))
        for _ in range(data.draw(st.integers(1, 3))):
            path = data.draw(st.sampled_from(sorted(specs)))
            specs[path] = data.draw(file_specs)
            shutil.rmtree(repo)
            write_tree(repo, {p: render(**spec) for p, spec in specs.items()})
            assert codegraph.index(str(repo), str(tmp / "db"))["mode"] == "incremental"
        if (tmp / "full").exists():
            shutil.rmtree(tmp / "full")
        codegraph.index(str(repo), str(tmp / "full"))
        assert export(tmp / "db") == export(tmp / "full")
        queries = [(q, mode) for q in ("alpha run return", "Delta beta")
                   for mode in ("lexical", "vector", "hybrid")]
        incremental = [codegraph.open(str(tmp / "db")).search(q, mode, 20) for q, mode in queries]
        codegraph.index(str(repo), str(tmp / "db"), full=True)
        assert [codegraph.open(str(tmp / "db")).search(q, mode, 20) for q, mode in queries] == incremental

    example()


def test_the_orchestrator_reports_the_seeds_fields(tmp_path: Path) -> None:
    repo = write_tree(tmp_path / "repo", CHAIN)
    orchestrator = codegraph.Orchestrator(repo, str(tmp_path / "db"), NO_VECTORS)
    full = orchestrator.full_rebuild()
    assert (full.mode, full.total_files, full.speedup) == ("full", 5, None)
    assert set(full.stage_durations_ms) == {"L1_ir", "L3_lexical", "L2_chunk"}
    (repo / "base.py").write_text((repo / "base.py").read_text().replace("def helper", "def assist"))
    (repo / "config.py").unlink()
    update = orchestrator.incremental_update()
    assert update.mode == "incremental"
    assert update.changed_files == ["base.py", "config.py"]
    assert update.affected_files == ["base.py", "user.py"]
    assert update.total_files == 4
    assert update.speedup == update.result["speedup"] and update.speedup is not None


def test_a_comment_edit_embeds_only_the_edited_chunk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """L4 embeds chunk texts it has never embedded, nothing else (a deterministic fake model
    stands in for MiniLM: what is counted is which texts reach it)."""
    import numpy as np

    from codegraph import embed

    seen: list[str] = []

    def fake_embed(texts: list[str], model_name: str) -> np.ndarray:
        seen.extend(texts)
        return np.array([[float(len(t)), float(sum(map(ord, t)) % 997), 1.0] for t in texts],
                        dtype=np.float32)

    monkeypatch.setattr(embed, "embed", fake_embed)
    functions = "\n\n".join(f"def f{i}(x):\n    return x + {i}" + "\n    # padding" * 30
                            for i in range(6))
    repo = write_tree(tmp_path / "repo", {"mod.py": functions + "\n", "other.py": "def g():\n    pass\n"})
    db = tmp_path / "db"
    first = codegraph.index(str(repo), str(db))
    assert first["embedded"] == len(seen) == first["chunks"] > 6
    seen.clear()
    text = (repo / "mod.py").read_text()
    (repo / "mod.py").write_text(text.replace("return x + 3", "return x + 3  # a comment"))
    again = codegraph.index(str(repo), str(db))
    assert again["embedded"] == len(seen) == 1 and "a comment" in seen[0]
    # Whitespace at the end of a line inside one function: again one chunk's text changes.
    seen.clear()
    (repo / "mod.py").write_text((repo / "mod.py").read_text().replace("return x + 4", "return x + 4   "))
    assert codegraph.index(str(repo), str(db))["embedded"] == len(seen) == 1


def test_index_at_a_rev_updates_incrementally_from_the_previous_commit(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    from conftest import git_init

    repo = write_tree(tmp_path / "repo", CHAIN)
    git_init(repo)
    first = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True,
                           text=True, check=True).stdout.strip()
    (repo / "base.py").write_text((repo / "base.py").read_text().replace("def helper", "def assist"))
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam",
                    "rename"], check=True)
    (repo / "main.py").write_text("uncommitted = True\n")  # the work tree is not what --rev indexes
    db, cache = str(tmp_path / "db"), str(tmp_path / "cache")

    def index_at(rev: str) -> dict[str, Any]:
        proc = subprocess.run([sys.executable, "-m", "codegraph.cli", "index", str(repo), "--rev", rev,
                               "--db", db, "--cache", cache, "--no-vectors", "--json"],
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    old = index_at(first)
    assert old["mode"] == "full" and old["commit"] == first
    new = index_at("HEAD")
    assert new["mode"] == "incremental" and new["changed_files"]["modified"] == ["base.py"]
    assert new["affected_files"] == ["base.py", "user.py"]
    symbols = {row[1] for row in codegraph.open(db).export() if row[0] == "symbol"}
    assert "base.assist" in symbols and "main.uncommitted" not in symbols
