"""Go: extraction (symbols, imports, calls, types), resolution through packages, modules,
receivers, fields and embedding, and incremental == full on random edit sequences of generated
multi-module Go projects (go.mod module paths, replace directives and nested modules changing)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
from hypothesis import given, settings
from test_incremental import export, rebuild_export, resolved, update

from codegraph.languages import language_for
from codegraph.languages.go import GO
from codegraph.languages.go.extract import extract
from codegraph.languages.go.resolve import module_names
from codegraph.model import Edge
from conftest import write_tree

APP = {
    "go.mod": "module example.com/app\n\ngo 1.19\n\nreplace example.com/lib => ./third_party/lib\n",
    "third_party/lib/go.mod": "module example.com/lib\n",
    "third_party/lib/lib.go": """
        package lib

        // Helper helps.
        func Helper() int { return 1 }

        type Base struct{}

        func (b *Base) Ping() {}
        """,
    "internal/db/db.go": """
        // Package db stores.
        package db

        import "example.com/lib"

        // Store gets.
        type Store interface {
        \tGet(k string) string
        }

        type Conn struct {
        \tlib.Base
        \tname string
        }

        func Open(name string) (*Conn, error) { return &Conn{name: name}, nil }

        func (c *Conn) Query(q string) *Rows { lib.Helper(); return nil }

        func (c *Conn) Get(k string) string { return k }

        type Rows struct{}

        func (r *Rows) Next() bool { return false }
        """,
    "cmd/main.go": """
        package main

        import (
        \t"fmt"
        \td "example.com/app/internal/db"
        )

        type Server struct {
        \tconn *d.Conn
        \tst   d.Store
        }

        func (s *Server) Run() {
        \ts.conn.Query("x").Next()
        \ts.st.Get("k")
        \ts.conn.Ping()
        }

        func main() {
        \tc, err := d.Open("x")
        \tif err != nil {
        \t\tfmt.Println(err)
        \t}
        \tc.Query("q")
        \tsrv := &Server{conn: c}
        \tsrv.Run()
        \tvar s2 Server
        \ts2.Run()
        \thelper()
        }
        """,
    "cmd/util.go": "package main\n\nfunc helper() {}\n",
}


def calls(rows: list[list[Any]]) -> set[tuple[str, str]]:
    return {(r[2], r[4]) for r in rows if r[0] == "edge" and r[1] == "calls"}


def test_extract_symbols_with_kinds_lines_signatures_and_doc_comments() -> None:
    ir = extract(textwrap.dedent(APP["internal/db/db.go"]).lstrip())
    by_name = {s.local_name: s for s in ir.symbols}
    assert {n: s.kind for n, s in by_name.items()} == {
        "": "module", "Store": "interface", "Store.Get": "method", "Conn": "struct",
        "Open": "function", "Conn.Query": "method", "Conn.Get": "method", "Rows": "struct",
        "Rows.Next": "method"}
    assert by_name[""].docstring == "Package db stores."
    assert by_name["Store"].docstring == "Store gets."
    assert (by_name["Store"].start_line, by_name["Store"].end_line) == (7, 9)
    assert by_name["Open"].signature == "func Open(name string) (*Conn, error)"
    assert by_name["Conn.Query"].signature == "func (c *Conn) Query(q string) *Rows"
    assert by_name["Conn"].bases == ("lib.Base",)
    assert [(i.module, i.alias) for i in ir.imports] == [("example.com/lib", None)]
    assert [(c.scope, c.callee) for c in ir.calls] == [("Conn.Query", "lib.Helper")]
    assert ir.package == "db"
    main = extract(textwrap.dedent(APP["cmd/main.go"]).lstrip())
    locals_ = {(t.scope, t.name): t.type for t in main.typed if t.kind == "var"}
    assert locals_[("main", "c")] == "=d.Open" and locals_[("main", "err")] == "=d.Open#1"
    assert locals_[("main", "srv")] == "Server" and locals_[("main", "s2")] == "Server"
    assert locals_[("Server.Run", "s")] == "Server"


def test_extract_grouped_declarations_consts_vars_and_generic_receivers() -> None:
    ir = extract(textwrap.dedent("""
        package x

        const (
        \t// A is one.
        \tA = 1
        \tB, C = 2, 3
        )

        var V, W = NewT(), 2

        type (
        \tT struct{ next *T }
        \tAlias = T
        )

        func (l *List[K]) Push(v K) { l.grow() }
        """).lstrip())
    kinds = {s.local_name: (s.kind, s.start_line, s.docstring) for s in ir.symbols if s.local_name}
    assert kinds == {"A": ("constant", 5, "A is one."), "B": ("constant", 6, ""),
                     "C": ("constant", 6, ""), "V": ("variable", 9, ""), "W": ("variable", 9, ""),
                     "T": ("struct", 12, ""), "Alias": ("type", 13, ""),
                     "List.Push": ("method", 16, "")}
    assert ("var", "", "V", "=NewT") in {(t.kind, t.scope, t.name, t.type) for t in ir.typed}
    assert [(c.scope, c.callee) for c in ir.calls] == [("", "NewT"), ("List.Push", "l.grow")]


def test_go_mod_is_a_go_file_with_its_module_path_and_local_replaces() -> None:
    assert language_for("sub/go.mod") is language_for("main.go")
    ir = extract("// c\nmodule example.com/x\n\nreplace (\n\ta.b/c v1.0.0 => ./c\n"
                 "\td.e/f => g.h/f v1.2.0\n)\nreplace example.com/y => ../y\n")
    assert [(r.name, r.type) for r in ir.typed] == [("a.b/c", "./c"), ("example.com/y", "../y")]
    texts = {"go.mod": "module example.com/x\n", "tools/go.mod": "module example.com/tools\n",
             "src/go.mod": "module std\n"}
    names = module_names(["go.mod", "a.go", "p/q/b.go", "tools/go.mod", "tools/t.go",
                          "vendor/golang.org/x/y/z.go", "src/go.mod", "src/net/http/h.go",
                          ], "repo", texts.get)
    assert names == {"go.mod": "example.com/x", "a.go": "example.com/x", "p/q/b.go": "example.com/x/p/q",
                     "tools/go.mod": "example.com/tools", "tools/t.go": "example.com/tools",
                     "vendor/golang.org/x/y/z.go": "golang.org/x/y", "src/go.mod": "std",
                     "src/net/http/h.go": "net/http"}
    assert module_names(["a.go", "p/b.go"], "repo", None) == {"a.go": "repo", "p/b.go": "p"}


def test_resolution_through_packages_replace_receivers_fields_and_embedding(tmp_path: Path) -> None:
    repo = write_tree(tmp_path / "repo", APP)
    result = update(repo, tmp_path / "db")
    assert result["unresolved_calls"] == 1  # fmt.Println: the standard library is not indexed
    rows = export(tmp_path / "db")
    app, db, lib = "example.com/app/cmd", "example.com/app/internal/db", "example.com/lib"
    assert calls(rows) == {
        (f"{app}.Server.Run", f"{db}.Conn.Query"), (f"{app}.Server.Run", f"{db}.Rows.Next"),
        (f"{app}.Server.Run", f"{db}.Store.Get"), (f"{app}.Server.Run", f"{db}.Conn.Get"),
        (f"{app}.Server.Run", f"{lib}.Base.Ping"),
        (f"{app}.main", f"{db}.Open"), (f"{app}.main", f"{db}.Conn.Query"),
        (f"{app}.main", f"{app}.Server.Run"), (f"{app}.main", f"{app}.helper"),
        (f"{db}.Conn.Query", f"{lib}.Helper")}
    imports = {(r[2], r[4]) for r in rows if r[0] == "edge" and r[1] == "imports"}
    assert imports == {(app, db), (db, lib)}
    # The interface call: an edge to the interface's method and to each implementation's.
    resolution = resolve_file_edges(repo, "cmd/main.go")
    assert {(e.dst, e.call_kind) for e in resolution if e.line == 15} == {
        (f"{db}.Store.Get", "dispatch"), (f"{db}.Conn.Get", "dispatch")}
    assert {e.call_kind for e in resolution if e.line == 14} == {"direct"}
    files = {r[1]: (r[3], r[4]) for r in rows if r[0] == "file"}
    assert files["go.mod"] == ("go", "example.com/app")
    assert files["third_party/lib/lib.go"] == ("go", lib)


def test_body_edits_re_resolve_nothing_else_and_renames_exactly_the_callers(tmp_path: Path) -> None:
    repo = write_tree(tmp_path / "repo", APP)
    db = tmp_path / "db"
    update(repo, db)
    lib = repo / "third_party/lib/lib.go"
    lib.write_text(lib.read_text().replace("return 1", "return 2"))
    assert resolved(update(repo, db)) == ["third_party/lib/lib.go"]
    lib.write_text(lib.read_text().replace("Ping", "Pong"))
    assert resolved(update(repo, db)) == ["cmd/main.go", "third_party/lib/lib.go"]
    # The replace now points elsewhere: the files of the module that import through it re-resolve.
    (repo / "go.mod").write_text(APP["go.mod"].replace("./third_party/lib", "./nowhere"))
    result = update(repo, db)
    assert resolved(result) == ["cmd/main.go", "go.mod", "internal/db/db.go"]  # main: via db.Conn
    assert export(db) == rebuild_export(repo, tmp_path / "full")
    # A new module path renames every package of the module; importers through the old path fail.
    (repo / "go.mod").write_text(APP["go.mod"].replace("example.com/app", "example.com/renamed"))
    result = update(repo, db)
    assert "third_party/lib/lib.go" not in resolved(result)
    assert export(db) == rebuild_export(repo, tmp_path / "full")


def resolve_file_edges(repo: Path, path: str) -> list[Edge]:
    """One file's edges straight from the Go resolver (the store keeps no call_kind yet)."""
    paths = [str(p.relative_to(repo)) for p in repo.rglob("*") if language_for(str(p)) is GO]
    modules = GO.module_names(paths, repo.name, lambda p: (repo / p).read_text())
    resolver = GO.resolver(modules, lambda p: GO.extract((repo / p).read_text()))
    return resolver.resolve_file(path).edges


# ----- random edit sequences on generated projects -------------------------------------------

DIRS = ["", "a", "b", "a/deep", "lib", "alt"]
NAMES = ["F1", "F2", "T1", "T2"]


def import_path(directory: str) -> str:
    return "example.com/lib" if directory == "lib" else f"example.com/m/{directory}".rstrip("/")


def render_go(path: str, spec: dict[str, Any]) -> str:
    directory = path.rpartition("/")[0]
    package = directory.rpartition("/")[2] or "main"
    imports = spec["imports"]
    qual = ["" if alias == "." else (alias or d.rpartition("/")[2]) + "." for d, alias in imports]
    lines = [f"package {package}", "", "import ("]
    lines += [f'\t{alias + " " if alias else ""}"{import_path(d)}"' for d, alias in imports]
    lines += [")", ""]
    params = ", ".join(f"p{i} int" for i in range(spec["signature"]))
    for name in spec["defs"]:
        if name.startswith("T"):
            embed = ""
            if spec["embed"] is not None and qual:
                embed = f"\t{qual[spec['embed'] % len(qual)]}T1\n"
            lines += [f"type {name} struct {{\n{embed}\tnext *{name}\n}}", "",
                      f"func New{name}() *{name} {{ return &{name}{{}} }}", "",
                      f"func (t *{name}) M({params}) int {{ return {spec['body']} }}", ""]
            if spec["n_method"]:  # a second method: whether T implements a two-method I
                lines += [f"func (t {name}) N() {{}}", ""]
        else:
            lines += [f"func {name}({params}) int {{ return {spec['body']} }}", ""]
    body = []
    for i, (which, name) in enumerate(spec["calls"]):
        prefix = qual[which % len(qual)] if which >= 0 and qual else ""
        if name.startswith("T"):
            body += [f"\tv{i} := {prefix}New{name}()", f"\tv{i}.M()", f"\tv{i}.next.M()"]
        else:
            body.append(f"\t{prefix}{name}()")
    if spec["iface"] and qual:  # an interface whose implementations other files declare
        lines += ["type I interface {", f"\tM({params}) int", *(["\tN()"] * (spec["iface"] == 2)),
                  "}", ""]
        body += ["\tvar i I", "\ti.M()"]
    lines += ["func use() {", *body, "}", ""]
    return "\n".join(lines)


def render_gomod(spec: dict[str, Any]) -> str:
    out = f"module {spec['module']}\n\ngo 1.19\n"
    if spec["replace"]:
        out += f"\nreplace example.com/lib => ./{spec['replace']}\n"
    return out


go_file_specs = st.fixed_dictionaries({
    "defs": st.lists(st.sampled_from(NAMES), max_size=3, unique=True),
    "imports": st.lists(st.tuples(st.sampled_from(DIRS[1:]), st.sampled_from([None, "x", "."])),
                        max_size=2, unique_by=lambda i: i[0]),
    "calls": st.lists(st.tuples(st.integers(-1, 1), st.sampled_from([*NAMES, "Missing"])), max_size=3),
    "embed": st.none() | st.integers(0, 1),
    "iface": st.integers(0, 2),  # none, I with M, I with M and N
    "n_method": st.booleans(),
    "signature": st.integers(0, 2),
    "body": st.integers(0, 3),
})
FILES = [f"{d}/{n}".lstrip("/") for d in DIRS for n in ("x.go", "y.go")]
GO_EDITS = ["edit_body", "change_signature", "replace_file", "delete", "add", "move", "rename_symbol",
            "module_path", "replace", "nested_module", "toggle_n"]


def test_random_go_edit_sequences_equal_a_full_rebuild(tmp_path_factory: Any) -> None:
    """Files added, deleted, moved between packages, bodies, signatures and exported names
    edited, a method added or removed (a type starts or stops implementing an interface), the
    module path changed, the replace retargeted and a nested module added or
    removed: after every update the incremental index exports what a full rebuild does."""

    @settings(max_examples=15, deadline=None)
    @given(data=st.data())
    def example(data: st.DataObject) -> None:
        tmp = tmp_path_factory.mktemp("gorandom")
        random_go_sequence(tmp, data)

    example()


def random_go_sequence(tmp: Path, data: st.DataObject) -> None:
    repo, db = tmp / "repo", str(tmp / "db")
    specs: dict[str, dict[str, Any]] = {
        path: data.draw(go_file_specs)
        for path in data.draw(st.lists(st.sampled_from(FILES), min_size=2, max_size=6, unique=True))}
    mod: dict[str, Any] = {"module": "example.com/m",
                           "replace": data.draw(st.sampled_from(["", "lib", "alt"])),
                           "nested": data.draw(st.booleans())}

    def write_all() -> None:
        if repo.exists():
            shutil.rmtree(repo)
        files = {path: render_go(path, spec) for path, spec in specs.items()}
        files["go.mod"] = render_gomod(mod)
        if mod["nested"]:
            files["lib/go.mod"] = "module example.com/lib\n"
        write_tree(repo, files)

    write_all()
    update(repo, db)
    for _ in range(data.draw(st.integers(1, 4))):
        edit = data.draw(st.sampled_from(GO_EDITS))
        path = data.draw(st.sampled_from(sorted(specs)))
        old_text = render_go(path, specs[path])
        if edit == "edit_body":
            specs[path]["body"] += 1
        elif edit == "change_signature":
            specs[path]["signature"] = (specs[path]["signature"] + 1) % 3
        elif edit == "replace_file":
            specs[path] = data.draw(go_file_specs)
        elif edit == "toggle_n":  # T gains or loses a method: it starts or stops implementing I
            specs[path]["n_method"] = not specs[path]["n_method"]
        elif edit == "delete" and len(specs) > 1:
            del specs[path]
        elif edit in ("add", "move"):
            free = [f for f in FILES if f not in specs]
            if free:
                target = data.draw(st.sampled_from(free))
                specs[target] = data.draw(go_file_specs) if edit == "add" else specs.pop(path)
        elif edit == "rename_symbol" and specs[path]["defs"]:
            unused = [n for n in NAMES if n not in specs[path]["defs"]]
            if unused:
                specs[path]["defs"][0] = data.draw(st.sampled_from(unused))
        elif edit == "module_path":
            mod["module"] = "example.com/n" if mod["module"] == "example.com/m" else "example.com/m"
        elif edit == "replace":
            mod["replace"] = data.draw(st.sampled_from(["", "lib", "alt"]))
        elif edit == "nested_module":
            mod["nested"] = not mod["nested"]
        before = {p: render_go(p, s) for p, s in specs.items()}
        body_edit = edit == "edit_body" and before[path] != old_text
        write_all()
        result = update(repo, db)
        assert result["mode"] == "incremental"
        assert export(db, repo) == rebuild_export(repo, tmp / "full"), (edit, path, mod, before)
        if body_edit:  # no other file read anything a body holds
            assert resolved(result) == [path]


# ----- mixed repositories --------------------------------------------------------------------

def test_a_mixed_python_and_go_repository_indexes_each_file_with_its_language(tmp_path: Path) -> None:
    repo = write_tree(tmp_path / "repo", {
        **APP, "tools/gen.py": "def generate():\n    return helper()\n\n\ndef helper():\n    return 1\n"})
    db = tmp_path / "db"
    update(repo, db)
    rows = export(db)
    languages = {r[1]: r[3] for r in rows if r[0] == "file"}
    assert languages["tools/gen.py"] == "python" and languages["cmd/main.go"] == "go"
    assert ("gen.generate", "gen.helper") in calls(rows)
    cli = [sys.executable, "-m", "codegraph.cli"]
    # A Go qualified name holds slashes: it is a name, not a path.
    query = "example.com/app/internal/db.Conn.Query"
    out = subprocess.run([*cli, "graph", "callers", query, "--db", str(db), "--json"],
                         capture_output=True, text=True, check=True)
    callers = json.loads(out.stdout)["results"]
    assert {r["src"] for r in callers} >= {"example.com/app/cmd.main"}
    assert {r["language"] for r in callers} == {"go"}
    out = subprocess.run([*cli, "search", "generate helper", "--db", str(db), "--json", "--mode", "lexical"],
                         capture_output=True, text=True, check=True)
    hits = json.loads(out.stdout)
    hits = hits["hits"] if isinstance(hits, dict) else hits
    assert {h["path"]: h["language"] for h in hits}["tools/gen.py"] == "python"
