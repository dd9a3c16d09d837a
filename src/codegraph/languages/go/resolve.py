"""Cross-file resolution for Go, one file at a time, recording every fact each answer read.

Module names: a Go file's module name is its package's import path: the module path its nearest
`go.mod` declares joined with the directory below it (`example.com/mod/internal/db`); a
`vendor/` directory's packages are named by the path below it; the standard library's `std`
module names its packages by directory alone; without any go.mod a package is named by its
directory (GOPATH layout), the indexed directory itself by `root_name`. A go.mod file is a file
of this language too: its module name is its module path and its facts are its local `replace`
directives. Qualified names: `<import path>.<local>`, e.g. `example.com/mod/db.Open`,
`example.com/mod/db.Conn.Close`.

Read keys. Namespace ("" as path): "pkg:<import path>" (the directory that is that package),
"dir:<dir>" (its .go files), "gomod:<dir>" (a go.mod there). Files: "name", "pkg" (package
clause), "sym:<local>" (a definition's kind), "imports" (the file's import specs), "embeds:<T>",
"type:<kind>:<scope>:<name>" (a field's, package-level var's or result's type), "replace".

Resolved: imports to the snapshot's packages (own module, other modules of the snapshot, local
`replace` targets, nested modules), aliases, dot imports, `_`; package-level names across the
package's files (test files see their package, `_test` packages are their own); calls to
package functions, `pkg.F`, methods through the receiver's type where a variable's type is
known from its declaration, a parameter, a receiver, `:=`/`=` of a composite literal (`&T{}`)
or of a call whose result type is declared (`NewT()`, `pkg.Open()`, `x.Method()`, i-th
results of multi-value calls), struct fields (`s.db.Query()`), methods and fields promoted
from embedded structs and aliases, calls on call results (`f().M()`), and method calls on
interface-typed values (an edge to the interface's method, `call_kind` "dispatch"). Not
resolved: anything outside the snapshot (standard library when not indexed, other modules),
builtins, type conversions (not calls), function values and closures called through
variables, type switches/assertions, range variables, generics' type parameters, and which
of several build-tag variants of one name applies (the first file by path wins).
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass

from codegraph.languages.common import Memo, Reads
from codegraph.languages.go.extract import gomod_module
from codegraph.model import Edge, FileIR, FileResolution, Symbol, SymbolKind, TypeRef

GOMOD = "go.mod"
_TYPE_KINDS = frozenset((SymbolKind.STRUCT, SymbolKind.INTERFACE, SymbolKind.TYPE))
_CALLABLE = frozenset((SymbolKind.FUNCTION, SymbolKind.METHOD))
_SHARED_TYPE_KINDS = ("field", "embed", "result")


def _dir(path: str) -> str:
    return path.rpartition("/")[0]


def _is_gomod(path: str) -> bool:
    return path == GOMOD or path.endswith("/" + GOMOD)


def _is_test(path: str) -> bool:
    return path.endswith("_test.go")


def module_names(paths: list[str], root_name: str,
                 read: Callable[[str], str | None] | None = None) -> dict[str, str]:
    """path -> import path of its package (go.mod files: their module path); see the module doc."""
    module_of: dict[str, str] = {}
    for path in paths:
        if _is_gomod(path):
            source = read(path) if read is not None else None
            declared = gomod_module(source) if source else None
            module_of[_dir(path)] = declared or _dir(path) or root_name or "main"
    out: dict[str, str] = {}
    for path in paths:
        directory = _dir(path)
        if _is_gomod(path):
            out[path] = module_of[directory]
            continue
        root = directory
        while root not in module_of and root:
            root = _dir(root)
        if root in module_of:
            rel = directory[len(root) + 1:] if root else directory
            parts = rel.split("/") if rel else []
            if "vendor" in parts:
                last = len(parts) - 1 - parts[::-1].index("vendor")
                out[path] = "/".join(parts[last + 1:]) or module_of[root]
            elif module_of[root] == "std":
                out[path] = rel or "std"
            else:
                out[path] = f"{module_of[root]}/{rel}" if rel else module_of[root]
        else:
            out[path] = directory or root_name or "main"
    return out


def namespace(modules: Mapping[str, str]) -> dict[str, Hashable]:
    facts: dict[str, Hashable] = {}
    files: dict[str, list[str]] = {}
    for path in modules:
        if _is_gomod(path):
            facts[f"gomod:{_dir(path)}"] = True
        else:
            files.setdefault(_dir(path), []).append(path.rpartition("/")[2])
    for directory in sorted(files, key=lambda d: (d.count("/"), d)):
        names = files[directory]
        facts[f"dir:{directory}"] = tuple(sorted(names))
        first = f"{directory}/{names[0]}" if directory else names[0]
        facts.setdefault(f"pkg:{modules[first]}", directory)
    return facts


def _default_name(import_path: str) -> str:
    """The package name an import binds when the package is not in the snapshot: its last
    element without a major-version suffix (`gopkg.in/yaml.v3` -> yaml, `x/v2` -> x)."""
    parts = import_path.split("/")
    last = parts[-1]
    if len(parts) > 1 and last.startswith("v") and last[1:].isdigit():
        last = parts[-2]
    last = last.split(".")[0]
    return last.removeprefix("go-").replace("-", "_")


@dataclass(frozen=True)
class Pkg:
    directory: str


@dataclass(frozen=True)
class Sym:
    path: str
    local: str


@dataclass(frozen=True)
class Val:
    """A value whose type is the type symbol `type`."""

    type: Sym


Target = Pkg | Sym | Val


class _File:
    """One file's tables. Every lookup another file makes goes through a recording method."""

    def __init__(self, path: str, name: str, ir: FileIR, reads: Reads) -> None:
        self.path = path
        self.name = name
        self.ir = ir
        self._reads = reads
        self.symbols: dict[str, Symbol] = {}
        for symbol in ir.symbols:
            self.symbols.setdefault(symbol.local_name, symbol)
        self.locals: dict[tuple[str, str], str] = {}  # (function, variable) -> type; "" = ambiguous
        self.shared: dict[str, str] = {}  # "type:<kind>:<scope>:<name>" -> type
        self.embeds: dict[str, list[str]] = {}
        for ref in ir.typed:
            if ref.kind == "var" and ref.scope:
                key = (ref.scope, ref.name)
                known = self.locals.get(key)
                self.locals[key] = ref.type if known is None or known == ref.type else ""
            elif ref.kind in ("var", *_SHARED_TYPE_KINDS):
                self.shared.setdefault(f"type:{ref.kind}:{ref.scope}:{ref.name}", ref.type)
                if ref.kind == "embed":
                    self.embeds.setdefault(ref.scope, []).append(ref.type)
        self.import_specs = tuple((imp.alias or "", imp.module) for imp in ir.imports)
        self.replaces = tuple((ref.name, ref.type) for ref in ir.typed if ref.kind == "replace")

    def interface(self) -> dict[str, Hashable]:
        facts: dict[str, Hashable] = {"name": self.name, "pkg": self.ir.package,
                                      "imports": self.import_specs, "replace": self.replaces}
        directory, package = _dir(self.path), self.ir.package
        if not _is_gomod(self.path):
            facts[f"@{directory}:clause"] = package
        receivers: dict[str, list[str]] = {}
        members: dict[str, list[str]] = {}
        for local, symbol in self.symbols.items():
            facts[f"sym:{local}"] = symbol.kind
            if local:
                facts[f"@{directory}:{package}:{local}"] = True
            if symbol.kind == SymbolKind.METHOD:
                owner, _, method = local.rpartition(".")
                if owner in self.symbols and self.symbols[owner].kind == SymbolKind.INTERFACE:
                    members.setdefault(owner, []).append(method)
                else:
                    receivers.setdefault(method, []).append(owner)
        for method, owners in receivers.items():
            facts[f"@meth:{method}"] = tuple(sorted(owners))
        for owner, methods in members.items():
            facts[f"imethods:{owner}"] = tuple(sorted(methods))
        facts.update(self.shared)
        for scope, types in self.embeds.items():
            facts[f"embeds:{scope}"] = tuple(types)
        return facts

    def symbol(self, local: str) -> Symbol | None:
        self._reads.add(self.path, f"sym:{local}")
        return self.symbols.get(local)

    def imports(self) -> tuple[tuple[str, str], ...]:
        self._reads.add(self.path, "imports")
        return self.import_specs

    def shared_type(self, kind: str, scope: str, name: str) -> str | None:
        key = f"type:{kind}:{scope}:{name}"
        self._reads.add(self.path, key)
        return self.shared.get(key)

    def embedded(self, scope: str) -> list[str]:
        self._reads.add(self.path, f"embeds:{scope}")
        return self.embeds.get(scope, [])

    def interface_methods(self, iface: str) -> list[str]:
        self._reads.add(self.path, f"imethods:{iface}")
        prefix = iface + "."
        return sorted(local[len(prefix):] for local in self.symbols if local.startswith(prefix))

    def replace_directives(self) -> tuple[tuple[str, str], ...]:
        self._reads.add(self.path, "replace")
        return self.replaces

    def module_name(self) -> str:
        self._reads.add(self.path, "name")
        return self.name


class Resolver:
    def __init__(self, modules: Mapping[str, str], load_ir: Callable[[str], FileIR]) -> None:
        self.modules = modules
        self.load_ir = load_ir
        self.facts = namespace(modules)
        self._loaded: dict[str, _File] = {}
        self.reads = Reads()
        self.memo = Memo(self.reads)
        self._indexes: dict[tuple[str, ...], dict[str, str]] = {}  # a package's files -> name -> file
        self._receivers: dict[str, list[tuple[str, str]]] | None = None  # method -> (file, type)

    # ----- facts ---------------------------------------------------------------------------

    def fact(self, key: str) -> Hashable | None:
        self.reads.add("", key)
        return self.facts.get(key)

    def file(self, path: str) -> _File:
        found = self._loaded.get(path)
        if found is None:
            found = self._loaded[path] = _File(path, self.modules[path], self.load_ir(path), self.reads)
        return found

    def dir_files(self, directory: str) -> list[str]:
        names = self.fact(f"dir:{directory}")
        if not isinstance(names, tuple):
            return []
        return [f"{directory}/{n}" if directory else n for n in names]

    # ----- packages ------------------------------------------------------------------------

    def package_files(self, directory: str, package: str | None, tests: bool) -> list[str]:
        """The files of the package in `directory` named `package` (None: the package an
        importer gets, the most common clause of its non-test files). Read as the one fact
        "@<dir>:clause" that every file of the directory contributes its clause to."""
        return self.memo.memoised(("files", directory, package, tests),
                                  lambda: self._package_files(directory, package, tests), [])

    def _package_files(self, directory: str, package: str | None, tests: bool) -> list[str]:
        self.reads.add("", f"@{directory}:clause")
        paths = [p for p in self._listing(directory) if tests or not _is_test(p)]
        clauses = {p: self.file(p).ir.package for p in paths}
        if package is None:
            counts: dict[str, int] = {}
            for p in paths:
                if not _is_test(p) and clauses[p]:
                    counts[clauses[p]] = counts.get(clauses[p], 0) + 1
            if not counts:
                return []
            package = max(sorted(counts), key=lambda c: counts[c])
        return [p for p in paths if clauses[p] == package]

    def _listing(self, directory: str) -> list[str]:
        """A directory's .go files, unrecorded: a caller reads the "@" fact that covers it."""
        names = self.facts.get(f"dir:{directory}")
        if not isinstance(names, tuple):
            return []
        return [f"{directory}/{n}" if directory else n for n in names]

    def package_name(self, directory: str) -> str | None:
        files = self.package_files(directory, None, False)
        return self.file(files[0]).ir.package if files else None

    def module_root(self, directory: str) -> str | None:
        current: str | None = directory
        while current is not None:
            if self.fact(f"gomod:{current}"):
                return current
            current = _dir(current) if current else None
        return None

    def import_dir(self, importer_dir: str, import_path: str) -> str | None:
        """The directory of the package `import_path` for files in `importer_dir`."""
        return self.memo.memoised(("import", importer_dir, import_path),
                                  lambda: self._import_dir(importer_dir, import_path), None)

    def _import_dir(self, importer_dir: str, import_path: str) -> str | None:
        root = self.module_root(importer_dir)
        if root is not None:
            gomod = f"{root}/{GOMOD}" if root else GOMOD
            best = None
            for old, new in self.file(gomod).replace_directives():
                if (import_path == old or import_path.startswith(old + "/")) and (
                        best is None or len(old) > len(best[0])):
                    best = (old, new)
            if best is not None:
                rest = import_path[len(best[0]):].lstrip("/")
                target = posixpath.normpath(posixpath.join(root, best[1], rest))
                if target.startswith("../") or target == "..":
                    return None
                target = "" if target == "." else target
                return target if self.dir_files(target) else None
        found = self.fact(f"pkg:{import_path}")
        return found if isinstance(found, str) else None

    def bindings(self, path: str) -> tuple[dict[str, Pkg | None], list[Pkg]]:
        """A file's import bindings (name -> package, None when outside the snapshot) and its
        dot-imported packages."""
        return self.memo.memoised(("bindings", path), lambda: self._bindings(path), ({}, []))

    def _bindings(self, path: str) -> tuple[dict[str, Pkg | None], list[Pkg]]:
        names: dict[str, Pkg | None] = {}
        dots: list[Pkg] = []
        directory = _dir(path)
        for alias, import_path in self.file(path).imports():
            found = self.import_dir(directory, import_path)
            pkg = Pkg(found) if found is not None else None
            if import_path == "unsafe":  # the compiler's own: its "functions" are builtins
                pkg = None
            if alias == ".":
                if pkg is not None:
                    dots.append(pkg)
                continue
            if alias == "_":
                continue
            name = alias or (self.package_name(found) if found is not None else None) \
                or _default_name(import_path)
            names.setdefault(name, pkg)
        return names, dots

    def export(self, pkg: Pkg, name: str) -> Sym | None:
        files = self.package_files(pkg.directory, None, False)
        return self.in_package(files, name)

    def in_package(self, files: list[str], name: str) -> Sym | None:
        """The first of a package's `files` that defines `name`. Read as the one fact
        "@<dir>:<package>:<name>" that every file of the package defining it contributes to."""
        if not files:
            return None
        first = self.file(files[0])
        self.reads.add("", f"@{_dir(first.path)}:{first.ir.package}:{name}")
        return self._unrecorded_in_package(files, name)

    def _unrecorded_in_package(self, files: list[str], name: str) -> Sym | None:
        """`in_package` without its read: for a caller that has read facts covering it."""
        if not files:
            return None
        key = tuple(files)
        index = self._indexes.get(key)
        if index is None:
            index = self._indexes[key] = {}
            for p in reversed(files):
                index.update(dict.fromkeys(self.file(p).symbols, p))
        found = index.get(name)
        return Sym(found, name) if found is not None else None

    def own_package(self, path: str) -> list[str]:
        own = self.file(path)
        return self.package_files(_dir(path), own.ir.package, _is_test(path))

    def package_level(self, path: str, name: str) -> Target | None:
        """A name at package level in `path`: the package's definitions, then imports."""
        found = self.in_package(self.own_package(path), name)
        if found is not None:
            return found
        names, dots = self.bindings(path)
        if name in names:
            return names[name]
        for pkg in dots:
            hit = self.export(pkg, name)
            if hit is not None:
                return hit
        return None

    # ----- types ---------------------------------------------------------------------------

    def type_in(self, path: str, scope: str, expr: str) -> Sym | None:
        """The type symbol that type expression `expr`, written in `path`, names."""
        return self.memo.memoised(("type", path, scope, expr),
                                  lambda: self._type_in(path, scope, expr), None)

    def _type_in(self, path: str, scope: str, expr: str) -> Sym | None:
        if expr.startswith("="):
            callee, _, index = expr[1:].partition("#")
            return self.result_type(path, scope, callee, int(index or 0))
        head, _, rest = expr.partition(".")
        if rest:
            pkg = self.package_level(path, head)
            found = self.export(pkg, rest) if isinstance(pkg, Pkg) else None
        else:
            target = self.package_level(path, head)
            found = target if isinstance(target, Sym) else None
        if found is not None:
            symbol = self.file(found.path).symbol(found.local)
            if symbol is not None and symbol.kind in _TYPE_KINDS:
                return found
        return None

    def result_type(self, path: str, scope: str, callee: str, index: int) -> Sym | None:
        target = self.expr(path, scope, callee)
        if isinstance(target, Sym):
            symbol = self.file(target.path).symbol(target.local)
            if symbol is None:
                return None
            if symbol.kind in _TYPE_KINDS:  # a conversion T(x)
                return target if index == 0 else None
            if symbol.kind in _CALLABLE:
                written = self.file(target.path).shared_type("result", target.local, str(index))
                return self.type_in(target.path, target.local, written) if written else None
        return None

    def var_type(self, sym: Sym) -> Sym | None:
        """The type of a package-level variable."""
        written = self.file(sym.path).shared_type("var", "", sym.local)
        return self.type_in(sym.path, "", written) if written else None

    def method(self, typ: Sym, name: str, own_read: bool = True) -> Sym | None:
        """`name` in the method set of type `typ`, its own methods first, then promoted ones
        (breadth-first through embedded types, as Go's shallowest depth wins). `own_read`
        False: whether `typ` itself declares it is looked up without a read, for a caller that
        has read "@meth:<name>" (`_implementations`: which types of the snapshot declare it —
        the fact that answer is a function of, with `typ`'s package files, which are read).
        Promoted methods are read as always: an embedded type may be an interface, whose
        methods "@meth" does not list."""
        return self.memo.memoised(("method", typ, name, own_read),
                                  lambda: self._method(typ, name, own_read), None)

    def _method(self, typ: Sym, name: str, own_read: bool) -> Sym | None:
        level = [typ]
        seen = {typ}
        while level:
            following: list[Sym] = []
            for current in level:
                files = self.package_files(_dir(current.path), self.file(current.path).ir.package,
                                           _is_test(current.path))
                find = self.in_package if own_read or current != typ else self._unrecorded_in_package
                hit = find(files, f"{current.local}.{name}")
                if hit is not None:
                    return hit
                for written in self.file(current.path).embedded(current.local):
                    inner = self.type_in(current.path, "", written)
                    if inner is not None and inner not in seen:
                        seen.add(inner)
                        following.append(inner)
            level = following
        return None

    def field(self, typ: Sym, name: str) -> Sym | None:
        """The type of field `name` of struct `typ`, promoted fields included."""
        return self.memo.memoised(("field", typ, name), lambda: self._field(typ, name), None)

    def _field(self, typ: Sym, name: str) -> Sym | None:
        level = [typ]
        seen = {typ}
        while level:
            following: list[Sym] = []
            for current in level:
                owner = self.file(current.path)
                written = owner.shared_type("field", current.local, name) or \
                    owner.shared_type("embed", current.local, name)
                if written:
                    return self.type_in(current.path, "", written)
                for embedded in owner.embedded(current.local):
                    inner = self.type_in(current.path, "", embedded)
                    if inner is not None and inner not in seen:
                        seen.add(inner)
                        following.append(inner)
            level = following
        return None

    def method_names(self, iface: Sym) -> frozenset[str]:
        """The method set of an interface type, embedded interfaces' methods included."""
        return self.memo.memoised(("imethods", iface), lambda: self._method_names(iface), frozenset())

    def _method_names(self, iface: Sym) -> frozenset[str]:
        owner = self.file(iface.path)
        names = set(owner.interface_methods(iface.local))
        for written in owner.embedded(iface.local):
            inner = self.type_in(iface.path, "", written)
            if inner is not None:
                names |= self.method_names(inner)
        return frozenset(names)

    def implementations(self, iface: Sym, name: str) -> list[Sym]:
        """The methods `name` of the snapshot's types whose method sets hold every method of
        interface `iface`: types that declare `name` themselves (read as "@meth:<name>", one
        fact of the snapshot), checked by method names (promoted methods count)."""
        return self.memo.memoised(("impl", iface, name), lambda: self._implementations(iface, name), [])

    def _implementations(self, iface: Sym, name: str) -> list[Sym]:
        wanted = self.method_names(iface)
        if name not in wanted:
            return []
        for method in sorted(wanted):
            self.reads.add("", f"@meth:{method}")
        if self._receivers is None:
            self._receivers = {}
            for path in sorted(self.modules):
                if not _is_gomod(path):
                    for local, symbol in self.file(path).symbols.items():
                        if symbol.kind == SymbolKind.METHOD:
                            owner, _, method = local.rpartition(".")
                            self._receivers.setdefault(method, []).append((path, owner))
        out = []
        for path, owner in self._receivers.get(name, []):
            typ = self.in_package(self.package_files(_dir(path), self.file(path).ir.package,
                                                     _is_test(path)), owner)
            if typ is None or typ == iface:
                continue
            symbol = self.file(typ.path).symbol(typ.local)
            if symbol is None or symbol.kind not in (SymbolKind.STRUCT, SymbolKind.TYPE):
                continue
            found = self.method(typ, name, own_read=False)
            # In name order: the reads of a failed check (it stops at the first method
            # missing) must not depend on a set's iteration order.
            if found is not None and all(self.method(typ, m, own_read=False) is not None
                                         for m in sorted(wanted)):
                out.append(found)
        return sorted(set(out), key=lambda s: (s.path, s.local))

    # ----- expressions ---------------------------------------------------------------------

    def expr(self, path: str, scope: str, dotted: str) -> Target | None:
        parts = dotted.split(".")
        head = parts[0]
        called = head.endswith("()")
        head = head.removesuffix("()")
        target: Target | None = None
        own = self.file(path)
        if scope:
            written = own.locals.get((scope, head))
            if written is not None:
                typ = self.type_in(path, scope, written) if written else None
                target = Val(typ) if typ is not None else None
                if target is None:
                    return None
        if target is None:
            target = self.package_level(path, head)
        if called:
            target = self.call_result(target)
        for part in parts[1:]:
            if target is None:
                return None
            called = part.endswith("()")
            target = self.member(target, part.removesuffix("()"))
            if called:
                target = self.call_result(target)
        return target

    def call_result(self, target: Target | None) -> Target | None:
        if not isinstance(target, Sym):
            return None
        symbol = self.file(target.path).symbol(target.local)
        if symbol is None:
            return None
        if symbol.kind in _TYPE_KINDS:
            return Val(target)
        written = self.file(target.path).shared_type("result", target.local, "0")
        typ = self.type_in(target.path, target.local, written) if written else None
        return Val(typ) if typ is not None else None

    def member(self, target: Target, name: str) -> Target | None:
        if isinstance(target, Pkg):
            return self.export(target, name)
        if isinstance(target, Sym):
            symbol = self.file(target.path).symbol(target.local)
            if symbol is None:
                return None
            if symbol.kind in _TYPE_KINDS:  # a method expression T.M
                return self.method(target, name)
            if symbol.kind == SymbolKind.VARIABLE:
                typ = self.var_type(target)
                return self.member(Val(typ), name) if typ is not None else None
            return None
        found = self.method(target.type, name)
        if found is not None:
            return found
        typ = self.field(target.type, name)
        return Val(typ) if typ is not None else None

    # ----- output --------------------------------------------------------------------------

    def qualified(self, sym: Sym) -> str:
        return f"{self.file(sym.path).module_name()}.{sym.local}"

    def resolve_file(self, path: str) -> FileResolution:
        self.memo.start_file()
        own = self.file(path)
        edges: set[Edge] = set()
        deps: set[tuple[str, str]] = set()
        unresolved = 0
        if _is_gomod(path):
            return FileResolution(path, [], set(), set(), 0)
        directory = _dir(path)
        for imp in own.ir.imports:
            found = self.import_dir(directory, imp.module)
            if found is None:
                continue
            files = self.package_files(found, None, False)
            if not files:
                continue
            target_name = self.file(files[0]).module_name()
            deps.add((files[0], ""))
            edges.add(Edge("imports", own.name, path, target_name, files[0], imp.line))
        answers: dict[tuple[str, str], Target | None] = {}
        for call in own.ir.calls:
            head = call.callee.partition(".")[0].removesuffix("()")
            # Unless a local variable of the function is its head, the answer is the file's.
            question = (call.scope if (call.scope, head) in own.locals else "", call.callee)
            if question in answers:
                target = answers[question]
            else:
                target = answers[question] = self.expr(path, call.scope, call.callee)
            if not isinstance(target, Sym):
                unresolved += 1
                continue
            symbol = self.file(target.path).symbol(target.local)
            if symbol is None or symbol.kind not in _CALLABLE:
                if symbol is None or symbol.kind not in _TYPE_KINDS:
                    unresolved += 1
                continue  # a conversion T(x) is no call
            owner = target.local.rpartition(".")[0]
            owner_symbol = self.file(target.path).symbol(owner) if owner else None
            kind = "dispatch" if owner_symbol is not None and owner_symbol.kind == SymbolKind.INTERFACE \
                else "direct"
            src = f"{own.name}.{call.scope}" if call.scope else own.name
            edges.add(Edge("calls", src, path, self.qualified(target), target.path, call.line, kind))
            if target.path != path:
                deps.add((target.path, target.local))
            if kind == "dispatch" and owner_symbol is not None:
                method = target.local.rpartition(".")[2]
                for impl in self.implementations(Sym(target.path, owner), method):
                    edges.add(Edge("calls", src, path, self.qualified(impl), impl.path, call.line,
                                   "dispatch"))
        deps.discard((path, ""))
        ordered = sorted(edges, key=lambda e: (e.line, e.kind, e.src, e.dst, e.dst_path))
        return FileResolution(path, ordered, deps, self.memo.file_reads(path), unresolved)


def interface(path: str, module: str, ir: FileIR) -> dict[str, Hashable]:
    return _File(path, module, ir, Reads()).interface()


__all__ = ["Resolver", "TypeRef", "interface", "module_names", "namespace"]
