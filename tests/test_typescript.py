"""TypeScript and JavaScript: extraction, cross-file resolution as TS defines it, and exact
incremental updates (property-based: random edit sequences on generated TS/JS projects equal a
full rebuild), mixed with Python in one snapshot."""

from __future__ import annotations

import json
import posixpath
import shutil
import textwrap
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
from hypothesis import given, settings
from test_incremental import export, rebuild_export, resolved, update

import codegraph
from codegraph.languages import get_language, language_for
from codegraph.languages.typescript.extract import extract
from codegraph.units import units_for
from conftest import write_tree

TS_SOURCE = '''
/** A client.
 * Second line. */
@injectable()
export class Client extends Base implements Transport {
  private res: Response;
  constructor(private readonly t: Transport) { super(); }
  /** Fetches. */
  get(path: string): Response | null { return this.t.send(path); }
  static create(): Client { return new Client(null as any); }
  handler = () => this.get("/");
}
export interface Transport extends Closer { send(x: string): Response }
export type Id = string;
export enum Color { Red, Green }
export namespace Util { export function pad(s: string) { return s; } }
export const DEFAULT = 10, other = 2;
export async function load(): Promise<Client> { return Client.create(); }
export default function () {}
'''


def edges(db: Path | str, kind: str | None = None) -> set[tuple[Any, ...]]:
    out = set()
    for row in export(db):
        if row[0] == "edge" and (kind is None or row[1] == kind):
            out.add((row[1], row[2], row[4], row[6]))
    return out


def test_typescript_symbols_kinds_lines_signatures_and_docs() -> None:
    ir = extract(textwrap.dedent(TS_SOURCE).lstrip("\n"), "typescript")
    symbols = {s.local_name: s for s in ir.symbols}
    assert {n: s.kind for n, s in symbols.items() if n} == {
        "Client": "class", "Client.constructor": "method", "Client.get": "method",
        "Client.create": "method", "Client.handler": "method", "Transport": "interface",
        "Transport.send": "method", "Id": "type", "Color": "enum", "Util": "namespace",
        "Util.pad": "function", "DEFAULT": "variable", "other": "variable", "load": "function",
        "default": "function"}
    client = symbols["Client"]
    assert (client.start_line, client.end_line) == (3, 11)  # the decorator's line, the class's end
    assert client.signature == "class Client extends Base implements Transport"
    assert client.docstring == "A client.\nSecond line."
    assert client.bases == ("Base", "Transport")
    assert symbols["Client.get"].docstring == "Fetches."
    assert symbols["Client.get"].signature == "get(path: string): Response | null"
    assert symbols["Transport"].bases == ("Closer",)
    assert symbols["load"].signature == "async function load(): Promise<Client>"
    assert ir.types["Client:t"] == "Transport"  # a constructor parameter property
    assert ir.types["Client:res"] == "Response"
    assert ir.types["Client.get:()"] == "Response"  # `| null` dropped
    assert ir.types["load:()"] == "Client"  # Promise<> unwrapped
    assert {(e.name, e.local) for e in ir.exports} >= {
        ("Client", "Client"), ("DEFAULT", "DEFAULT"), ("other", "other"), ("default", "default")}
    assert [(c.scope, c.callee) for c in ir.calls] == [
        ("", "injectable"), ("Client.constructor", "super"), ("Client.get", "this.t.send"),
        ("Client.create", "new Client"), ("Client.handler", "this.get"),
        ("load", "Client.create")]


def test_javascript_commonjs_require_and_exports() -> None:
    ir = extract(textwrap.dedent('''
        const { a, b: c } = require("./lib");
        const Foo = require("./foo");
        class Bar extends Foo {
          run() { this.x.go(); super.run(); a(); }
        }
        module.exports = Bar;
        exports.helper = function () { return import("./late"); };
        const h = require("./x").helper;
        ''').lstrip("\n"), "javascript")
    assert [(i.module, i.name, i.alias, i.scope) for i in ir.imports] == [
        ("./lib", "a", None, ""), ("./lib", "b", "c", ""), ("./foo", "=", "Foo", ""),
        ("./late", None, None, "helper"), ("./x", "helper", "h", "")]
    assert [(e.name, e.local) for e in ir.exports] == [("=", "Bar"), ("helper", "helper")]
    assert {s.local_name for s in ir.symbols} == {"", "Foo", "Bar", "Bar.run", "helper", "h"}
    assert [c.callee for c in ir.calls] == ["this.x.go", "super.run", "a"]


def test_a_class_and_its_methods_are_units_of_their_own() -> None:
    methods = "\n".join(f"  m{i}() {{\n    return {i};\n  }}" for i in range(3))
    source = f"export class Big {{\n{methods}\n}}\nexport function small() {{ return 1; }}\n"
    ir = extract(source, "typescript")
    units = {u.name: u for u in units_for(get_language("typescript"), source, ir)}
    assert {"Big", "Big.m0", "Big.m1", "Big.m2", "small"} <= set(units)
    # The class's unit is its header and its members' outlines, never their bodies.
    assert "return 1;" not in units["Big"].text and "m1()" in units["Big"].text
    assert units["Big.m1"].text == "  m1() {\n    return 1;\n  }\n"
    assert (units["small"].start_line, units["small"].end_line) == (12, 12)


PROJECT = {
    "tsconfig.json": '{ // comments and trailing commas are allowed\n'
                     '  "compilerOptions": { "baseUrl": ".", "paths": { "@lib/*": ["src/lib/*"] }, },\n}\n',
    "src/lib/client.ts": '''
        export interface Transport { send(x: string): void }
        export class Client {
          constructor(private t: Transport) {}
          get(): Response { return new Response(); }
          static create(): Client { return new Client(null as any); }
        }
        export class Response { json() { return 1; } }
        export function makeClient(): Client { return Client.create(); }
        export function withClient(cb: (c: Client) => void) {}
        ''',
    "src/lib/index.ts": '''
        export * from "./client";
        export { helper as help } from "../helpers.js";
        ''',
    "src/helpers.js": '''
        function helper() { return 1; }
        module.exports = { helper };
        ''',
    "src/main.ts": '''
        import { Client, makeClient, withClient } from "@lib/client";
        import * as lib from "./lib";
        import { util } from "@acme/util";
        class Sub extends Client {
          run(): void { super.get(); this.get().json(); }
        }
        export function main(t: lib.Transport) {
          const c = new Client(t);
          c.get().json();
          makeClient().get();
          lib.makeClient();
          lib.help();
          t.send("x");
          util();
          console.log("x");
          const m = import("./lib/client");
        }
        export function later() {
          withClient((c) => c.get());
        }
        ''',
    "packages/util/package.json": json.dumps({"name": "@acme/util", "exports": {
        ".": {"types": "./src/index.ts", "default": "./dist/index.js"}}}),
    "packages/util/src/index.ts": "export function util() {}\n",
    "tools/build.py": "def build():\n    return 1\n",
}

CLIENT = "src/lib/client"


def test_resolution_follows_typescripts_rules(tmp_path: Path) -> None:
    repo = write_tree(tmp_path / "repo", PROJECT)
    db = tmp_path / "db"
    result = update(repo, db)
    calls = edges(db, "calls")
    main = "src/main.main"
    assert calls >= {
        ("calls", main, f"{CLIENT}.Client.constructor", 8),  # new, through a paths alias
        ("calls", main, f"{CLIENT}.Client.get", 9),  # a variable typed by `new`
        ("calls", main, f"{CLIENT}.Response.json", 9),  # a declared return type
        ("calls", main, f"{CLIENT}.makeClient", 10), ("calls", main, f"{CLIENT}.Client.get", 10),
        ("calls", main, f"{CLIENT}.makeClient", 11),  # namespace import, `export *`, index file
        ("calls", main, "src/helpers.helper", 12),  # re-export of a CommonJS export, .js -> .js
        ("calls", main, f"{CLIENT}.Transport.send", 13),  # a parameter's annotation
        ("calls", main, "packages/util/src/index.util", 14),  # a workspace package's exports
        ("calls", "src/main.Sub.run", f"{CLIENT}.Client.get", 5),  # super.m()
        ("calls", "src/main.Sub.run", f"{CLIENT}.Response.json", 5),  # this.m().n()
        ("calls", f"{CLIENT}.Client.create", f"{CLIENT}.Client.constructor", 5),
        ("calls", "src/main.later", f"{CLIENT}.Client.get", 19),  # a callback's parameter
    }
    assert ("inherits", "src/main.Sub", f"{CLIENT}.Client", 4) in edges(db, "inherits")
    imports = {(src, dst) for _, src, dst, _ in edges(db, "imports")}
    assert {("src/main", CLIENT), ("src/main", "src/lib/index"),
            ("src/main", "packages/util/src/index"), ("src/lib/index", "src/helpers")} <= imports
    stages = {s["name"]: s for s in result["stages"]}
    assert stages["L1_ir"]["unresolved_calls"] == 1  # console.log: outside the snapshot
    index = codegraph.open(str(db))
    assert ("calls", "src/main.later", f"{CLIENT}.withClient", 19) in calls
    rows = index.graph("callers", f"{CLIENT}.Transport.send")
    assert rows and rows[0]["language"] == "typescript" and rows[0]["dst_language"] == "typescript"
    assert {r["language"] for r in index.graph("defs", "build")} == {"python"}
    assert {h.language for h in index.search("helper", mode="lexical")} >= {"javascript"}
    assert language_for("packages/util/package.json").name == "json"  # type: ignore[union-attr]


def test_a_body_only_edit_re_resolves_no_other_file(tmp_path: Path, store_url: str) -> None:
    repo = write_tree(tmp_path / "repo", PROJECT)
    db = store_url
    update(repo, db)
    path = repo / "src/lib/client.ts"
    path.write_text(path.read_text().replace("return 1;", "const x = 2; return x + 1;"))
    result = update(repo, db)
    assert resolved(result) == ["src/lib/client.ts"]
    assert export(db) == rebuild_export(repo, tmp_path / "full")


def test_a_tsconfig_paths_change_re_resolves_exactly_its_readers(tmp_path: Path, store_url: str) -> None:
    repo = write_tree(tmp_path / "repo", PROJECT)
    db = store_url
    update(repo, db)
    (repo / "src/lib/alt.ts").write_text("export function makeClient() { return 1; }\n"
                                         "export class Client {}\n")
    update(repo, db)
    config = (repo / "tsconfig.json").read_text()
    (repo / "tsconfig.json").write_text(config.replace('"@lib/*": ["src/lib/*"]',
                                                       '"@lib/client": ["src/lib/alt"]'))
    result = update(repo, db)
    # main.ts is the one file with a non-relative specifier; relative imports read no config.
    assert resolved(result) == ["src/main.ts", "tsconfig.json"]
    assert ("calls", "src/main.main", "src/lib/alt.makeClient", 10) in edges(db, "calls")
    assert export(db) == rebuild_export(repo, tmp_path / "full")
    # Anything else in tsconfig.json is no fact: nothing but the file itself re-resolves.
    (repo / "tsconfig.json").write_text((repo / "tsconfig.json").read_text().replace(
        '"baseUrl"', '"strict": true, "baseUrl"'))
    assert resolved(update(repo, db)) == ["tsconfig.json"]


def test_a_file_renamed_from_js_to_ts(tmp_path: Path) -> None:
    repo = write_tree(tmp_path / "repo", PROJECT)
    db = tmp_path / "db"
    update(repo, db)
    (repo / "src/helpers.js").unlink()
    (repo / "src/helpers.ts").write_text("export function helper() { return 1; }\n")
    result = update(repo, db)
    # `../helpers.js` names the .ts source now: the re-exporting index and its users follow.
    assert "src/lib/index.ts" in resolved(result) and "src/main.ts" in resolved(result)
    assert ("calls", "src/main.main", "src/helpers.helper", 12) in edges(db, "calls")
    assert export(db) == rebuild_export(repo, tmp_path / "full")
    rows = codegraph.open(str(db)).graph("defs", "src/helpers.helper")
    assert [r["language"] for r in rows] == ["typescript"]


def test_equal_bytes_renamed_into_another_language_are_parsed_as_that_language(tmp_path: Path) -> None:
    """The same bytes as `.js` then `.ts` (and side by side): each is parsed by its own grammar,
    so a typed signature the JS grammar rejects is the TS file's symbol, and the update equals a
    full build (per-file outputs are keyed by content *and* language)."""
    typed = ("export interface Scaled {\n  value: number;\n}\n\n"
             "export function scale(value: number, by: number): number {\n  return value * by;\n}\n")
    repo = write_tree(tmp_path / "repo", {**PROJECT, "src/typed.js": typed})
    db = tmp_path / "db"
    update(repo, db)
    (repo / "src/typed.js").rename(repo / "src/typed.ts")
    update(repo, db)
    assert export(db) == rebuild_export(repo, tmp_path / "full")
    rows = codegraph.open(str(db)).graph("defs", "src/typed.scale")
    assert [(r["language"], r["signature"]) for r in rows] == [
        ("typescript", "function scale(value: number, by: number): number")]
    assert [r["kind"] for r in codegraph.open(str(db)).graph("defs", "src/typed.Scaled")] == ["interface"]
    # Side by side in one snapshot: two contents, two parses.
    (repo / "src/copy.js").write_text(typed)
    update(repo, db)
    assert export(db) == rebuild_export(repo, tmp_path / "full2")
    idx = codegraph.open(str(db))
    hashes = {f.path: f.content_hash for f in idx.store.snapshot_files(idx.snapshot.id)}
    assert hashes["src/copy.js"] != hashes["src/typed.ts"]


# ----- random edit sequences ------------------------------------------------------------------

FILES = ["src/a.ts", "src/b.ts", "src/lib/c.ts", "src/lib/index.ts", "src/d.js", "src/e.tsx",
         "src/lib/f.js"]
NAMES = ["alpha", "beta", "Gamma", "Delta"]
TSCONFIGS = [None, {"@lib/*": ["src/lib/*"]}, {"@lib/*": ["src/*"], "@x": ["src/a"]}]


COMMONJS = {
    "lib/app.js": """
        var app = exports = module.exports = {};
        app.init = function init() { this.cache = {}; this.configure(); };
        app.configure = function configure() { this.set("a", 1); helper(); };
        app.set = function set(k, v) { return this; };
        function helper() { set(); }
        """,
    "lib/view.js": """
        function View(name) { this.name = name; this.path = this.lookup(name); }
        View.prototype.lookup = function lookup(name) {
          var self = this; return [1].map(function () { return self.resolve(name); }); };
        View.prototype.resolve = function (name) { return name; };
        View.create = () => new View("x");
        module.exports = View;
        """,
    "main.js": """
        const app = require("./lib/app");
        const View = require("./lib/view");
        function main() {
          app.set("x", 2);
          const v = new View("y");
          v.lookup("z");
          View.create();
          exports.run();
          v.create();
        }
        exports.run = function () { return 1; };
        const res = require("./lib/res");
        const ctx = require("./lib/ctx");
        function later() { res.send(); ctx.inspect(); }
        """,
    "lib/res.js": """
        module.exports = {
          set body(val) { this.remove("x"); this._body = val; },
          remove(field) { return field; },
          send() { this.remove("y"); },
        };
        """,
    "lib/ctx.js": """
        const proto = module.exports = { inspect() { return this.toJSON(); }, toJSON() { return 1; } };
        """,
    "lib/store.js": """
        class Cache { get() { return 1; } }
        function Store() { var cache = new Cache(); cache.get(); }
        Store.prototype.run = function () { return new Store().cache.get(); };
        """,
}


def test_commonjs_functions_assigned_to_members(tmp_path: Path) -> None:
    """`obj.m = function`, `C.prototype.m = function`, statics, `exports.f =` and methods of
    module-level object literals: symbols of their own, called through `this` (as TypeScript
    types it in JS), through the object exported and required elsewhere, through an instance
    of a constructor function, and through `exports.f()` in the same file."""
    ir = extract(textwrap.dedent(COMMONJS["lib/view.js"]).lstrip("\n"), "javascript")
    assert {s.local_name: s.kind for s in ir.symbols if s.local_name} == {
        "View": "function", "View.prototype.lookup": "method", "View.prototype.resolve": "method",
        "View.create": "method"}
    repo = write_tree(tmp_path / "repo", COMMONJS)
    update(repo, tmp_path / "db")
    calls = {(src, dst, line) for _, src, dst, line in edges(tmp_path / "db", "calls")}
    assert calls == {
        ("lib/app.app.configure", "lib/app.app.set", 3),  # this: the object app
        ("lib/app.app.configure", "lib/app.helper", 3),  # the module's scope, not app's
        ("lib/view.View", "lib/view.View.prototype.lookup", 1),  # this: a View
        ("lib/view.View.prototype.lookup", "lib/view.View.prototype.resolve", 3),  # self = this
        ("lib/view.View.create", "lib/view.View", 5),  # new of a constructor function
        ("main.main", "lib/app.app.set", 4),  # the object module.exports is, required
        ("main.main", "lib/view.View", 5),
        ("main.main", "lib/view.View.prototype.lookup", 6),  # an instance's prototype method
        ("main.main", "lib/view.View.create", 7),  # a static of the function
        ("main.main", "main.run", 8),  # exports.f() in the file that defines it
        # Methods of object literals bound at module level: `this` is the object (also in a
        # setter that assigns this.x: no constructor to TS), members for requiring files too.
        ("lib/res.body", "lib/res.remove", 2), ("lib/res.send", "lib/res.remove", 4),
        ("lib/ctx.proto.inspect", "lib/ctx.proto.toJSON", 1),
        ("main.later", "lib/res.send", 14), ("main.later", "lib/ctx.proto.inspect", 14),
        ("lib/store.Store", "lib/store.Cache", 2), ("lib/store.Store", "lib/store.Cache.get", 2),
        ("lib/store.Store.prototype.run", "lib/store.Store", 3),
    }
    # Not: `this.configure()` in init (a function assigning `this.x` is a constructor to TS:
    # `this` is its own instance), the bare `set()` in helper (no object member is in scope),
    # `v.create()` (a static, not a member of instances), `new Store().cache.get()` (a local
    # variable of the constructor function is no field of its instances).


def _spec(source: str, target: str, form: str, tsconfig: int) -> str:
    stem = posixpath.splitext(target)[0]
    if form == "alias" and tsconfig:
        if tsconfig == 1 and stem.startswith("src/lib/"):
            return "@lib/" + stem[len("src/lib/"):]
        if tsconfig == 2 and stem.startswith("src/"):
            return "@x" if stem == "src/a" else "@lib/" + stem[len("src/"):]
    rel = posixpath.relpath(stem, posixpath.dirname(source))
    if rel.endswith("/index") and form == "index":
        rel = rel[: -len("/index")]
    if form == "js-ext":
        rel += ".js"
    return rel if rel.startswith(".") else f"./{rel}"


def render(path: str, spec: dict[str, Any], tsconfig: int) -> str:
    js = path.endswith(".js")
    lines = []
    for target, name, form in spec["imports"]:
        module = _spec(path, target, form, tsconfig)
        lines.append(f'const {{ {name} }} = require("{module}");' if js
                     else f'import {{ {name} }} from "{module}";')
    if spec["star"] and not js:
        lines.append(f'export * from "{_spec(path, spec["star"], "rel", tsconfig)}";')
    params = ", ".join(f"p{i}" for i in range(spec["signature"]))
    members = js and spec["commonjs"] == "members"  # `api.f = function` on module.exports
    if members:
        lines.append("var api = exports = module.exports = {};")
    methods = js and spec["commonjs"] == "methods"
    for name in spec["defs"]:
        export = "" if js else "export "
        if methods and not name[0].isupper():
            continue  # defined in the object literal below
        if members and not name[0].isupper():
            first = spec["defs"][0]
            lines += [f"api.{name} = function ({params}) {{ this.{first}(); return {spec['body']}; }};"]
        elif name[0].isupper():
            base = next((n for _, n, _ in spec["imports"] if n[0].isupper()), None)
            extends = f" extends {base}" if base else ""
            lines += [f"{export}class {name}{extends} {{",
                      f"  run({params}) {{ return this.run() + {spec['body']}; }}", "}"]
        else:
            lines += [f"{export}function {name}({params}) {{ return {spec['body']}; }}"]
    for call in spec["calls"]:
        lines.append(f"new {call}().run();" if call[0].isupper() else
                     f"api.{call}();" if members else f"{call}();")
    if members:
        lines += [f"api.{name} = {name};" for name in spec["defs"] if name[0].isupper()]
    elif js and spec["commonjs"] == "methods" and spec["defs"]:  # an object literal's methods
        first = spec["defs"][0]
        lines += ["module.exports = {", *[
            f"  {n}({params}) {{ this.{first}(); return {spec['body']}; }}," if not n[0].isupper()
            else f"  {n}," for n in spec["defs"]], "};"]
    elif js and spec["defs"]:
        lines.append(f"module.exports = {{ {', '.join(spec['defs'])} }};")
    return "\n".join(lines) + "\n"


file_specs = st.fixed_dictionaries({
    "defs": st.lists(st.sampled_from(NAMES), max_size=3, unique=True),
    "imports": st.lists(st.tuples(st.sampled_from(FILES), st.sampled_from(NAMES),
                                  st.sampled_from(["rel", "alias", "index", "js-ext"])), max_size=3),
    "calls": st.lists(st.sampled_from([*NAMES, "missing"]), max_size=3),
    "star": st.none() | st.sampled_from(FILES),
    "signature": st.integers(0, 2),
    "body": st.integers(0, 3),
    "commonjs": st.sampled_from(["object", "members", "methods"]),
})

EDITS = ["edit_body", "change_signature", "replace_file", "delete", "add", "move", "rename_symbol",
         "change_tsconfig", "js_to_ts", "change_commonjs"]


def test_generated_commonjs_members_resolve(tmp_path: Path) -> None:
    """The generator's `api.f = function` and `module.exports = { f() {} }` files resolve (so
    the random sequences below exercise those lookups): `this.g()` inside, a call at module
    level, a require elsewhere."""
    d = {"defs": ["alpha", "beta"], "imports": [], "calls": ["beta"], "star": None,
         "signature": 0, "body": 0, "commonjs": "members"}
    a = {**d, "defs": [], "calls": ["alpha"], "imports": [("src/d.js", "alpha", "rel")],
         "commonjs": "object"}
    repo = write_tree(tmp_path / "repo", {"src/d.js": render("src/d.js", d, 0),
                                          "src/a.ts": render("src/a.ts", a, 0)})
    update(repo, tmp_path / "db")
    calls = {(src, dst) for _, src, dst, _ in edges(tmp_path / "db", "calls")}
    assert calls == {("src/d.api.alpha", "src/d.api.alpha"), ("src/d.api.beta", "src/d.api.alpha"),
                     ("src/d", "src/d.api.beta"), ("src/a", "src/d.api.alpha")}
    (repo / "src/d.js").write_text(render("src/d.js", {**d, "commonjs": "methods"}, 0))
    update(repo, tmp_path / "db")
    calls = {(src, dst) for _, src, dst, _ in edges(tmp_path / "db", "calls")}
    # `beta()` at module level is not the object's method (no name in scope): unresolved.
    assert calls == {("src/d.alpha", "src/d.alpha"), ("src/d.beta", "src/d.alpha"),
                     ("src/a", "src/d.alpha")}


def test_random_edit_sequences_equal_a_full_rebuild(tmp_path_factory: Any) -> None:
    """Renames, moved files, changed exports and imports, changed tsconfig `paths`, a .js file
    renamed .ts, CommonJS exports switched between an object literal of names, functions
    assigned to `module.exports`' members (`api.f = function () { this.g(); }`) and an object
    literal's methods (`module.exports = { f() { this.g(); } }`): after every update the
    incremental index exports exactly what a full rebuild of the same tree does."""

    @settings(max_examples=30, deadline=None)
    @given(data=st.data())
    def example(data: st.DataObject) -> None:
        tmp = tmp_path_factory.mktemp("random")
        random_edit_sequence(tmp, str(tmp / "db"), data)

    example()


def random_edit_sequence(tmp: Path, db: str, data: st.DataObject) -> None:
    repo = tmp / "repo"
    specs: dict[str, dict[str, Any]] = {
        path: data.draw(file_specs)
        for path in data.draw(st.lists(st.sampled_from(FILES), min_size=2, max_size=5, unique=True))}
    tsconfig = data.draw(st.integers(0, len(TSCONFIGS) - 1))

    def write_all() -> None:
        if repo.exists():
            shutil.rmtree(repo)
        files = {path: render(path, spec, tsconfig) for path, spec in specs.items()}
        paths = TSCONFIGS[tsconfig]
        if paths is not None:
            files["tsconfig.json"] = json.dumps({"compilerOptions": {"baseUrl": ".", "paths": paths}})
        write_tree(repo, files)

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
            free = [m for m in FILES if m not in specs]
            if free:
                target = data.draw(st.sampled_from(free))
                specs[target] = data.draw(file_specs) if edit == "add" else specs.pop(path)
        elif edit == "rename_symbol" and specs[path]["defs"]:
            unused = [n for n in NAMES if n not in specs[path]["defs"]]
            if unused:
                specs[path]["defs"][0] = data.draw(st.sampled_from(unused))
        elif edit == "change_tsconfig":
            tsconfig = (tsconfig + 1) % len(TSCONFIGS)
        elif edit == "change_commonjs":
            styles = ["object", "members", "methods"]
            specs[path]["commonjs"] = styles[(styles.index(specs[path]["commonjs"]) + 1) % 3]
        elif edit == "js_to_ts" and path.endswith(".js") and path[:-3] + ".ts" not in specs:
            specs[path[:-3] + ".ts"] = specs.pop(path)
        write_all()
        result = update(repo, db)
        assert result["mode"] == "incremental"
        assert export(db, repo) == rebuild_export(repo, tmp / "full"), (
            edit, path, tsconfig, textwrap.shorten(str(specs), 400))
