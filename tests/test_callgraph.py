"""Python calls resolved through values (issue 13): the micro-programs' call graphs, call kinds
in queries and export, and exactly incremental value facts: an edit that changes what a
function returns, an attribute's class, a decorator, a parameter annotation or a base class
re-resolves exactly the files that read that fact; a body edit that changes none re-resolves
no other file (both read from the run's `affected_files`, the log of work done)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import codegraph
from codegraph.pipeline import IndexOptions
from codegraph.stages import IndexConfig
from conftest import write_tree

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import bench_callgraph

NO_VECTORS = IndexOptions(IndexConfig(vectors=False))


def update(repo: Path, db: str, full: bool = False) -> dict[str, Any]:
    result = codegraph.index(str(repo), db, options=NO_VECTORS, full=full)
    assert result["state"] == "completed", result.get("error")
    return result


def export(db: str) -> list[list[Any]]:
    return list(codegraph.open(db).export())


def calls(db: str) -> set[tuple[str, str, str]]:
    return {(row[2], row[4], row[7]) for row in export(db) if row[0] == "edge" and row[1] == "calls"}


def edit_and_compare(repo: Path, db: str, scratch: Path, path: str, old: str, new: str) -> list[str]:
    """Replace `old` by `new` in one file, update `db`, check its export equals a full build's
    (in `scratch`) and give the files the update re-resolved."""
    text = (repo / path).read_text()
    assert old in text
    (repo / path).write_text(text.replace(old, new))
    result = update(repo, db)
    shutil.rmtree(scratch, ignore_errors=True)
    update(repo, str(scratch), full=True)
    assert export(db) == export(str(scratch))
    return result["affected_files"]


def test_every_micro_program_gives_its_expected_call_graph(tmp_path: Path) -> None:
    results = bench_callgraph.micro(tmp_path)
    assert len(results) >= 16
    wrong = {name: (r["missing"], r["unexpected"]) for name, r in results.items()
             if r["missing"] or r["unexpected"]}
    assert wrong == {}


LIB = '''
class A:
    def run(self):
        pass


class B:
    def run(self):
        pass


def make():
    return A()


class Holder:
    def __init__(self):
        self.x = A()


def keep(fn):
    return fn


def swap(fn):
    return B


@keep
def built():
    return A()


def passthrough(x: A):
    return x


class Child(A):
    pass
'''

USERS = {
    "chain.py": "from lib import make\nmake().run()\n",
    "plain.py": "from lib import make\n\n\ndef f():\n    make()\n",
    "attr.py": "from lib import Holder\nHolder().x.run()\n",
    "deco.py": "from lib import built\nbuilt().run()\n",
    "param.py": "from lib import passthrough\npassthrough(None).run()\n",
    "child.py": "from lib import Child\nChild().run()\n",
    "other.py": "def g():\n    return 1\n",
}


def test_value_facts_re_resolve_exactly_their_readers(tmp_path: Path, store_url: str) -> None:
    repo = write_tree(tmp_path / "repo", {"lib.py": LIB, **USERS})
    db = store_url
    update(repo, db)
    assert ("chain", "lib.A.run", "direct") in calls(db)
    assert ("child", "lib.A.run", "direct") in calls(db)

    def step(old: str, new: str, readers: list[str]) -> set[tuple[str, str, str]]:
        affected = edit_and_compare(repo, db, tmp_path / "full", "lib.py", old, new)
        assert affected == sorted(["lib.py", *readers]), (old, new)
        return calls(db)

    # A body edit that changes no fact another file reads: no other file.
    step("def make():\n    return A()", "def make():\n    len([])\n    y = A()\n    return y", [])
    # What make returns: only the file that calls a method on its result.
    assert ("chain", "lib.B.run", "direct") in step("    y = A()\n    return y", "    return B()",
                                                  ["chain.py"])
    # An attribute's class.
    assert ("attr", "lib.B.run", "direct") in step("self.x = A()", "self.x = B()", ["attr.py"])
    # A decorator: keep returns the function, swap replaces it (calls then go to what it
    # returns, the class B: built() constructs a B).
    got = step("@keep\ndef built", "@swap\ndef built", ["deco.py"])
    assert ("deco", "lib.B", "constructor") in got and ("deco", "lib.built", "direct") not in got
    # A parameter annotation that reaches a return value.
    assert ("param", "lib.B.run", "direct") in step("def passthrough(x: A)", "def passthrough(x: B)",
                                                  ["param.py"])
    # A base class: Child's run now comes from B.
    assert ("child", "lib.B.run", "direct") in step("class Child(A)", "class Child(B)", ["child.py"])


def test_dispatch_edges_are_held_by_the_calling_file(tmp_path: Path, store_url: str) -> None:
    repo = write_tree(tmp_path / "repo", {
        "base.py": "class Shape:\n    def describe(self):\n        self.area()\n\n"
                   "    def area(self):\n        return 0\n",
        "square.py": "from base import Shape\n\n\nclass Square(Shape):\n    def area(self):\n"
                     "        return 4\n",
        "user.py": "from base import Shape\n\n\ndef f(s: Shape):\n    s.describe()\n",
        "other.py": "def g():\n    return 1\n",
    })
    db = store_url
    update(repo, db)
    idx = codegraph.open(db)
    callees = {(r["dst"], r["call_kind"]) for r in idx.graph("callees", "base.Shape.describe")}
    assert callees == {("base.Shape.area", "direct"), ("square.Square.area", "dispatch")}
    callers = idx.graph("callers", "square.Square.area")
    assert [(r["src"], r["call_kind"], r["line"]) for r in callers] == [
        ("base.Shape.describe", "dispatch", 3)]
    assert idx.graph("callers", "square.Square.area", dispatch=False) == []
    assert ("square.Square.area", "dispatch") in {(r["dst"], r["call_kind"])
                                                  for r in idx.graph("callees", "base.py")}

    def step(path: str, old: str, new: str) -> list[str]:
        return edit_and_compare(repo, db, tmp_path / "full", path, old, new)

    # Moving the self-call changes the dispatch edge's line; base.py holds the edge: no other
    # file is re-resolved (the overriding subclass's file reads nothing of base.py's calls).
    assert step("base.py", "    def describe(self):\n", "    def describe(self):\n        pass\n"
                ) == ["base.py"]
    assert [r["line"] for r in codegraph.open(db).graph("callers", "square.Square.area")] == [4]
    # A body edit of the override changes no fact: no other file.
    assert step("square.py", "return 4", "x = 4\n        return x") == ["square.py"]
    # Adding an override re-resolves the files that looked for Shape's subclasses (base.py for
    # its self-call, user.py for its call on a Shape-typed parameter), not other.py.
    assert step("square.py", "        return x\n", "        return x\n\n"
                "    def describe(self):\n        pass\n") == ["base.py", "square.py", "user.py"]
    assert ("square.Square.describe", "dispatch") in {
        (r["dst"], r["call_kind"]) for r in codegraph.open(db).graph("callees", "user.f")}
    # Removing the override removes the edges.
    (repo / "square.py").write_text("from base import Shape\n\n\nclass Square(Shape):\n    pass\n")
    update(repo, db)
    assert codegraph.open(db).graph("callees", "base.Shape.describe") == [
        {"kind": "calls", "src": "base.Shape.describe", "src_path": "base.py",
         "dst": "base.Shape.area", "dst_path": "base.py", "line": 4, "call_kind": "direct",
         "language": "python", "dst_language": "python", "repo": str(repo.resolve())}]


def test_aliased_bases_and_callees_incrementally(tmp_path: Path, store_url: str) -> None:
    """A subclass whose base is written as an import alias or a module-level alias of the
    class gets dispatch edges, and so does a higher-order call through an aliased callee; an
    edit of the alias re-resolves the files that looked the class (or callee) up, and the
    update equals a full build."""
    repo = write_tree(tmp_path / "repo", {
        "base.py": "class Shape:\n    def describe(self):\n        self.area()\n\n"
                   "    def area(self):\n        return 0\n\n\nclass Other:\n    pass\n\n\n"
                   "def apply(fn):\n    fn()\n",
        "square.py": "from base import Shape as S\n\n\nclass Square(S):\n    def area(self):\n"
                     "        return 4\n",
        "circle.py": "import base\n\nRound = base.Shape\n\n\nclass Circle(Round):\n"
                     "    def area(self):\n        return 3\n",
        "user.py": "from base import apply as run\n\n\ndef ping():\n    pass\n\n\n"
                   "def go():\n    run(ping)\n",
        "other.py": "def g():\n    return 1\n",
    })
    db = store_url
    update(repo, db)

    def callees(name: str) -> set[tuple[str, str]]:
        return {(r["dst"], r["call_kind"]) for r in codegraph.open(db).graph("callees", name)}

    assert callees("base.Shape.describe") == {("base.Shape.area", "direct"),
                                              ("square.Square.area", "dispatch"),
                                              ("circle.Circle.area", "dispatch")}
    assert callees("base.apply") == {("user.ping", "direct")}

    def step(path: str, old: str, new: str) -> list[str]:
        return edit_and_compare(repo, db, tmp_path / "full", path, old, new)

    # The alias now names another class: base.py's self-call loses Square's override.
    assert step("square.py", "import Shape as S", "import Other as S") == ["base.py", "square.py"]
    assert callees("base.Shape.describe") == {("base.Shape.area", "direct"),
                                              ("circle.Circle.area", "dispatch")}
    assert step("circle.py", "Round = base.Shape", "Round = base.Other") == [
        "base.py", "circle.py"]
    assert callees("base.Shape.describe") == {("base.Shape.area", "direct")}
    assert step("user.py", "def go():\n    run(ping)", "def go():\n    print(ping)") == [
        "base.py", "user.py"]
    assert callees("base.apply") == set()


def test_calls_on_typed_receivers_reach_overrides(tmp_path: Path) -> None:
    """A receiver known only by its declared class (a parameter's or an attribute's annotation,
    `except E as e`, self in an inherited method) may hold any subclass: the call also reaches
    the subclasses' overrides, as dispatch edges. One built by a constructor is exact."""
    repo = write_tree(tmp_path / "repo", {
        "shapes.py": "class Shape:\n    def area(self):\n        return 0\n\n\n"
                     "class Square(Shape):\n    def area(self):\n        return 4\n\n\n"
                     "class Big(Square):\n    def area(self):\n        return 16\n",
        "use.py": "from shapes import Shape, Square\n\n\n"
                  "def typed(s: Shape):\n    s.area()\n\n\n"
                  "def built():\n    Shape().area()\n\n\n"
                  "class Holder:\n    part: Square\n\n    def run(self):\n        self.part.area()\n",
    })
    db = str(tmp_path / "db")
    update(repo, db)
    got = calls(db)
    assert {c for c in got if c[0] == "use.typed"} == {
        ("use.typed", "shapes.Shape.area", "direct"), ("use.typed", "shapes.Square.area", "dispatch"),
        ("use.typed", "shapes.Big.area", "dispatch")}
    assert {c for c in got if c[0] == "use.built"} == {
        ("use.built", "shapes.Shape", "constructor"), ("use.built", "shapes.Shape.area", "direct")}
    assert {c for c in got if c[0] == "use.Holder.run"} == {
        ("use.Holder.run", "shapes.Square.area", "direct"),
        ("use.Holder.run", "shapes.Big.area", "dispatch")}


def test_higher_order_calls_across_files(tmp_path: Path, store_url: str) -> None:
    """A function passed to a function of another file, which calls its parameter: the edge
    starts in the callee's file at its call of the parameter, and that file holds it (reading
    the other files' calls that pass arguments, without their lines)."""
    repo = write_tree(tmp_path / "repo", {
        "lib.py": "def apply(fn, v):\n    return fn(v)\n\n\ndef ignore(fn):\n    return 1\n",
        "user.py": "from lib import apply, ignore\n\n\ndef double(x):\n    return x * 2\n\n\n"
                   "def triple(x):\n    return x * 3\n\n\n"
                   "def run():\n    apply(double, 2)\n    ignore(triple)\n",
        "other.py": "def g():\n    return 1\n",
    })
    db = store_url
    update(repo, db)
    edges = {(row[2], row[4], row[6], row[7]) for row in export(db)
             if row[0] == "edge" and row[1] == "calls"}
    assert ("lib.apply", "user.double", 2, "direct") in edges
    assert not any(dst == "user.triple" for _, dst, _, _ in edges)

    def step(path: str, old: str, new: str) -> list[str]:
        return edit_and_compare(repo, db, tmp_path / "full", path, old, new)

    # Body edits that change no call passing a function: no other file.
    assert step("user.py", "return x * 2", "y = x\n    return y * 2") == ["user.py"]
    assert step("lib.py", "    return fn(v)", "    w = v\n    return fn(w)") == ["lib.py"]
    assert ("lib.apply", "user.double", 3, "direct") in calls_at(db)
    # What is passed changes: the file of the function called is re-resolved too.
    assert step("user.py", "apply(double, 2)", "apply(triple, 2)") == ["lib.py", "user.py"]
    got = calls_at(db)
    assert ("lib.apply", "user.triple", 3, "direct") in got
    assert not any(dst == "user.double" for _, dst, _, _ in got)


def calls_at(db: str) -> set[tuple[str, str, int, str]]:
    return {(row[2], row[4], row[6], row[7]) for row in export(db)
            if row[0] == "edge" and row[1] == "calls"}


def test_the_cli_shows_call_kinds(tmp_path: Path) -> None:
    repo = write_tree(tmp_path / "repo", {
        "m.py": "class K:\n    def __init__(self):\n        pass\n\n\ndef f():\n    K()\n",
    })
    db = str(tmp_path / "db")
    update(repo, db)
    cli = [sys.executable, "-m", "codegraph.cli", "graph", "callees", "m.f", "--db", db]
    text = subprocess.run(cli, capture_output=True, text=True, check=True).stdout
    assert "m.f -> m.K  (m.py)  [constructor]" in text
    assert "m.f -> m.K.__init__  (m.py)  [constructor]" in text
    rows = json.loads(subprocess.run([*cli, "--json"], capture_output=True, text=True,
                                     check=True).stdout)["results"]
    assert {(r["dst"], r["call_kind"]) for r in rows} == {("m.K", "constructor"),
                                                          ("m.K.__init__", "constructor")}
    assert ["edge", "calls", "m.f", "m.py", "m.K", "m.py", 7, "constructor"] in export(db)


def test_a_schema_5_sqlite_store_keeps_its_reads_through_the_upgrade(tmp_path: Path) -> None:
    """Schema 6 clusters resolution_reads by key: a schema-5 store (rowid table, two indexes)
    is converted on opening with every row kept, and its next update still finds the readers
    of a changed fact through them (and equals a full build)."""
    import sqlite3

    repo = write_tree(tmp_path / "repo", {"lib.py": LIB, **USERS})
    db = str(tmp_path / "db")
    update(repo, db)
    path = tmp_path / "db" / "index.sqlite"
    conn = sqlite3.connect(path)
    before = sorted(conn.execute("SELECT res_id, read_key FROM resolution_reads"))
    (first,), = conn.execute("SELECT count(*) FROM resolutions")
    conn.executescript(
        "CREATE TABLE old_reads (res_id INTEGER NOT NULL, read_key INTEGER NOT NULL);"
        " INSERT INTO old_reads SELECT res_id, read_key FROM resolution_reads;"
        " DROP TABLE resolution_reads; ALTER TABLE old_reads RENAME TO resolution_reads;"
        " CREATE INDEX resolution_reads_by_key ON resolution_reads(read_key);"
        " CREATE INDEX resolution_reads_by_res ON resolution_reads(res_id);"
        " UPDATE meta SET value='5' WHERE key='schema_version';")
    conn.close()
    codegraph.open(db).graph("callees", "chain")  # opening upgrades it
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == ("6",)
    assert sorted(conn.execute("SELECT res_id, read_key FROM resolution_reads")) == before
    assert "WITHOUT ROWID" in conn.execute(
        "SELECT sql FROM sqlite_master WHERE name='resolution_reads'").fetchone()[0]
    conn.close()
    affected = edit_and_compare(repo, db, tmp_path / "full", "lib.py", "def make():\n    return A()",
                                "def make():\n    return B()")
    assert affected == ["chain.py", "lib.py"]
    # Two snapshots are kept: the next update drops the first one's resolutions, reads included.
    edit_and_compare(repo, db, tmp_path / "full", "lib.py", "return B()", "return A()")
    conn = sqlite3.connect(path)
    live = {r for (r,) in conn.execute("SELECT res_id FROM resolutions")}
    assert {r for (r,) in conn.execute("SELECT DISTINCT res_id FROM resolution_reads")} <= live
    assert len(live) == first + 2  # two new ones per update, the first snapshot's two gone
    conn.close()


def test_a_schema_3_sqlite_store_is_upgraded_in_place(tmp_path: Path) -> None:
    import sqlite3

    repo = write_tree(tmp_path / "repo", {"m.py": "class K:\n    pass\n\n\ndef f():\n    K()\n"})
    db = str(tmp_path / "db")
    update(repo, db)
    path = tmp_path / "db" / "index.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript("DROP INDEX edges_dispatch_by_src; DROP INDEX edges_dispatch_by_src_path;"
                       " ALTER TABLE edges DROP COLUMN call_kind;"
                       " UPDATE meta SET value='3' WHERE key='schema_version';")
    conn.close()
    rows = codegraph.open(db).graph("callees", "m.f")  # opening upgrades it
    assert [(r["dst"], r["call_kind"]) for r in rows] == [("m.K", "")]
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == ("6",)
    conn.close()
    update(repo, db, full=True)
    assert [(r["dst"], r["call_kind"]) for r in codegraph.open(db).graph("callees", "m.f")] == [
        ("m.K", "constructor")]


def _shapes(n: int) -> dict[str, str]:
    """A base class whose method calls an override that `n` subclasses, one file each, define."""
    files = {"base.py": "class Shape:\n    def describe(self):\n        self.area()\n\n"
                        "    def area(self):\n        return 0\n"}
    for i in range(n):
        files[f"s{i}.py"] = (f"from base import Shape\n\n\nclass S{i}(Shape):\n    def area(self):\n"
                             f"        return {i}\n")
    return files


def test_an_update_reads_the_snapshot_facts_it_asks_by_key_not_every_files_ir(
        tmp_path: Path, store_url: str, monkeypatch: Any) -> None:
    """base.py's self-call needs "which files define subclasses of Shape" (an "@" fact every
    file contributes to): an update of base.py reads that key's rows — s0.py's — and not the
    IR of the twelve files of other classes, and still equals a full build."""
    from codegraph.store import base as store_base

    others = {f"o{i}.py": f"class O{i}:\n    def area(self):\n        return {i}\n" for i in range(12)}
    repo = write_tree(tmp_path / "repo", {**_shapes(1), **others})
    db = store_url
    update(repo, db)
    fetched: list[str] = []
    with monkeypatch.context() as patch:
        for cls in store_base.Store.__subclasses__():
            original = cls.ir_rows

            def spy(self: Any, stage_key: str, hashes: Any, _original: Any = original) -> Any:
                fetched.extend(hashes)
                return _original(self, stage_key, hashes)

            patch.setattr(cls, "ir_rows", spy)
        (repo / "base.py").write_text((repo / "base.py").read_text().replace(
            "return 0", "x = 0\n        return x"))
        assert update(repo, db)["affected_files"] == ["base.py"]
    assert 0 < len(set(fetched)) <= 3  # base.py's (old and new) and s0.py's: no o*.py's
    update(repo, str(tmp_path / "full"), full=True)
    assert export(db) == export(str(tmp_path / "full"))
    dispatch = {r["dst"] for r in codegraph.open(db).graph("callees", "base.Shape.describe")
                if r["call_kind"] == "dispatch"}
    assert dispatch == {"s0.S0.area"}


def test_snapshot_facts_missing_or_damaged_in_the_store_come_from_the_ir(tmp_path: Path) -> None:
    """A store written before `ir_facts` (no rows) or with a damaged entries blob: the update
    reads those contents' facts from their (verified) IR, and still equals a full build."""
    import sqlite3

    repo = write_tree(tmp_path / "repo", _shapes(4))
    db = str(tmp_path / "db")
    update(repo, db)
    conn = sqlite3.connect(tmp_path / "db" / "index.sqlite")
    # s0's facts as if stored before the table; s1's entries damaged.
    (h0,), (h1,) = (conn.execute("SELECT content_hash FROM snapshot_files WHERE path=?", (p,)).fetchone()
                    for p in ("s0.py", "s1.py"))
    assert conn.execute("SELECT count(*) FROM ir_facts WHERE content_hash=?", (h0,)).fetchone()[0] > 1
    conn.execute("DELETE FROM ir_facts WHERE content_hash=?", (h0,))
    assert conn.execute("UPDATE ir_facts SET entries=x'c1' WHERE content_hash=? AND fact_key<>''",
                        (h1,)).rowcount > 0
    conn.commit()
    conn.close()
    edit_and_compare(repo, db, tmp_path / "full", "base.py", "return 0", "x = 0\n        return x")
    dispatch = {r["dst"] for r in codegraph.open(db).graph("callees", "base.Shape.describe")
                if r["call_kind"] == "dispatch"}
    assert dispatch == {f"s{i}.S{i}.area" for i in range(4)}
