"""Cross-file resolution for Python, one file at a time, recording what each answer depended on.

Input: the module name of every Python file of the snapshot and a loader for any file's IR (called
only for the files a lookup actually reaches). Output per resolved file: its edges (imports, calls,
inheritance), the files and names it uses (`deps`, for the `importers`/`dependents` queries), and
its *reads*: every fact of another file, or of the module namespace, that its answers depended on,
directly or through any chain of re-exports. Incremental updates re-resolve a file only when one of
its reads changed (see `interface`), which is what makes them exact.

Every answer is a function of the asked question and the snapshot alone, never of the order in
which files are resolved: a lookup that had to cut an import cycle above itself is not memoised,
so resolving a subset of files gives the same results as resolving all of them.

What is resolved (see ARCHITECTURE.md, "Name resolution"): module-level names bound by
definitions, `import` / `from … import` (absolute and relative, aliases, `*` with `__all__`),
re-exports through any chain of modules (cycles are cut), names imported inside functions,
nested functions, `self.m()` / `cls.m()` / `super().m()` through the class's resolved bases,
and dotted chains through modules and classes (`pkg.mod.Class.method`). What is not: the types of
local variables and attributes (`x = Foo(); x.bar()`), dynamic imports, `getattr`, decorators
that replace functions, and names that come from outside the snapshot (they stay unresolved).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass

from codegraph.languages.common import NO_CUT as _NO_CUT
from codegraph.languages.common import Memo
from codegraph.languages.common import Reads as _Reads
from codegraph.model import Edge, FileIR, FileResolution, Symbol, SymbolKind

# Read keys (see `Read`): "name" (the file's module name), "sym:<local>" (a definition's kind
# and bases), "bind:<scope>:<name>" (an import binding), "stars", "all" (`__all__`), and for the
# module namespace ("" as path) "mod:<name>" (which file is module <name>).


@dataclass(frozen=True)
class ModuleRef:
    name: str


@dataclass(frozen=True)
class SymbolRef:
    path: str  # the defining file (module names can collide; paths cannot)
    local: str


Target = ModuleRef | SymbolRef

def module_names(paths: list[str], root_name: str = "") -> dict[str, str]:
    """A file's module is its path below the outermost enclosing package (dirs with __init__.py).

    `src/pkg/sub/mod.py` with `src/pkg/__init__.py` and `src/pkg/sub/__init__.py` -> `pkg.sub.mod`.
    When the indexed root is itself a package (it has an `__init__.py`), it is named `root_name`.
    """
    packages = {p.rpartition("/")[0] for p in paths if p.rpartition("/")[2] == "__init__.py"}
    root_is_package = "" in packages and bool(root_name)
    out: dict[str, str] = {}
    for path in paths:
        directory, _, filename = path.rpartition("/")
        stem = filename[: -len(".py")] if filename.endswith(".py") else filename
        parts = [] if stem == "__init__" else [stem]
        while directory and directory in packages:
            directory, _, name = directory.rpartition("/")
            parts.insert(0, name)
        if not directory and root_is_package:
            parts.insert(0, root_name)
        out[path] = ".".join(parts) if parts else "__init__"
    return out


def module_table(modules: Mapping[str, str]) -> dict[str, str]:
    """Module name -> the file that is that module. Two files with one name: the one nearest the
    root wins, then the first by path."""
    table: dict[str, str] = {}
    for path in sorted(modules, key=lambda p: (p.count("/"), p)):
        table.setdefault(modules[path], path)
    return table


def _absolute(module_name: str, is_package: bool, level: int, name: str) -> str:
    if level == 0:
        return name
    package = module_name.split(".") if is_package else module_name.split(".")[:-1]
    if module_name == "__init__":
        package = []
    base = package[: len(package) - (level - 1)] if level - 1 <= len(package) else []
    return ".".join([*base, name] if name else base)


class _Module:
    """One file's name tables. Every lookup goes through a method that records the read."""

    def __init__(self, name: str, path: str, ir: FileIR, reads: _Reads) -> None:
        self.name = name
        self.path = path
        self.ir = ir
        self.is_package = path.endswith("__init__.py")
        self._reads = reads
        self.symbols: dict[str, Symbol] = {}  # local name -> first definition
        # scope ("" = module level) -> bound name -> (absolute module, imported name or None)
        self.bindings: dict[str, dict[str, tuple[str, str | None]]] = {}
        self.stars: list[str] = []
        for symbol in ir.symbols:
            self.symbols.setdefault(symbol.local_name, symbol)
        for imp in ir.imports:
            target = _absolute(name, self.is_package, imp.level, imp.module)
            scope = self.bindings.setdefault(imp.scope, {})
            if imp.name is None:
                if imp.alias:
                    scope[imp.alias] = (target, None)
                else:  # `import a.b.c` binds `a`
                    top = target.split(".")[0]
                    scope.setdefault(top, (top, None))
            elif imp.name == "*":
                if imp.scope == "":
                    self.stars.append(target)
            else:
                scope[imp.alias or imp.name] = (target, imp.name)

    def interface(self) -> dict[str, Hashable]:
        """Every fact another file's resolution can read from this one, by read key."""
        facts: dict[str, Hashable] = {"name": self.name, "stars": tuple(self.stars),
                                      "all": None if self.ir.all_names is None
                                      else tuple(self.ir.all_names)}
        for local, symbol in self.symbols.items():
            facts[f"sym:{local}"] = (symbol.kind, symbol.bases)
        for scope, names in self.bindings.items():
            for bound, binding in names.items():
                facts[f"bind:{scope}:{bound}"] = binding
        return facts

    def symbol(self, local: str) -> Symbol | None:
        self._reads.top.add((self.path, f"sym:{local}"))
        return self.symbols.get(local)

    def binding(self, scope: str, name: str) -> tuple[str, str | None] | None:
        self._reads.top.add((self.path, f"bind:{scope}:{name}"))
        return self.bindings.get(scope, {}).get(name)

    def star_imports(self) -> list[str]:
        self._reads.top.add((self.path, "stars"))
        return self.stars

    def all_names(self) -> list[str] | None:
        self._reads.top.add((self.path, "all"))
        return self.ir.all_names

    def module_name(self) -> str:
        self._reads.top.add((self.path, "name"))
        return self.name


class Resolver(Memo):
    """Resolves files of one snapshot whose files are `modules` (path -> module name); the memo
    of answers is kept from one file to the next."""

    def __init__(self, modules: Mapping[str, str], load_ir: Callable[[str], FileIR]) -> None:
        self.modules = modules
        self.load_ir = load_ir
        self.by_name = module_table(modules)
        self._loaded: dict[str, _Module] = {}
        super().__init__()

    def by_path(self, path: str) -> _Module:
        module = self._loaded.get(path)
        if module is None:
            module = _Module(self.modules[path], path, self.load_ir(path), self._reads)
            self._loaded[path] = module
        return module

    def module_named(self, name: str) -> _Module | None:
        self._reads.top.add(("", f"mod:{name}"))
        path = self.by_name.get(name)
        return self.by_path(path) if path is not None else None

    def has_module(self, name: str) -> bool:
        self._reads.top.add(("", f"mod:{name}"))
        return name in self.by_name

    _memoised = Memo.memoised

    # ----- lookups -----------------------------------------------------------------------

    def export(self, module_name: str, name: str) -> Target | None:
        """What `module_name.name` is, following re-exports; None when unknown or external."""
        return self._memoised(("export", module_name, name),
                              lambda: self._export(module_name, name), None)

    def _export(self, module_name: str, name: str) -> Target | None:
        module = self.module_named(module_name)
        submodule = f"{module_name}.{name}" if module_name else name
        if module is None:
            return ModuleRef(submodule) if self.has_module(submodule) else None
        if "." not in name and module.symbol(name) is not None:
            return SymbolRef(module.path, name)
        binding = module.binding("", name)
        if binding is not None:
            found = self._binding(binding)
            if found is not None:
                return found
        if self.has_module(submodule):
            return ModuleRef(submodule)
        return self._through_stars(module, name)

    def _through_stars(self, module: _Module, name: str) -> Target | None:
        """A name bound by `from m import *`: m's `__all__` if literal, else its public names."""
        for star in module.star_imports():
            star_module = self.module_named(star)
            all_names = star_module.all_names() if star_module is not None else None
            if all_names is not None:
                if name not in all_names:
                    continue
            elif name.startswith("_"):
                continue
            found = self.export(star, name)
            if found is not None:
                return found
        return None

    def _binding(self, binding: tuple[str, str | None]) -> Target | None:
        target, name = binding
        if name is None:
            return ModuleRef(target) if self.has_module(target) else None
        found = self.export(target, name)
        if found is None and self.has_module(f"{target}.{name}"):
            return ModuleRef(f"{target}.{name}")
        return found

    def name_in_scope(self, module: _Module, scope: str, name: str) -> Target | None:
        """Python's LEGB without the B: enclosing functions, then the module."""
        parts = scope.split(".") if scope else []
        while parts:
            prefix = ".".join(parts)
            enclosing = module.symbol(prefix)
            if enclosing is not None and enclosing.kind != SymbolKind.CLASS:
                nested = f"{prefix}.{name}"
                if module.symbol(nested) is not None:
                    return SymbolRef(module.path, nested)
                binding = module.binding(prefix, name)
                if binding is not None:
                    return self._binding(binding)
            parts.pop()
        if module.symbol(name) is not None:
            return SymbolRef(module.path, name)
        binding = module.binding("", name)
        if binding is not None:
            return self._binding(binding)
        return self._through_stars(module, name)

    def symbol(self, ref: SymbolRef) -> Symbol | None:
        return self.by_path(ref.path).symbol(ref.local)

    def member(self, target: Target, name: str) -> Target | None:
        if isinstance(target, ModuleRef):
            return self.export(target.name, name)
        symbol = self.symbol(target)
        if symbol is None or symbol.kind != SymbolKind.CLASS:
            return None
        return self.class_member(target, name)

    def class_member(self, cls: SymbolRef, name: str, skip_self: bool = False) -> SymbolRef | None:
        """Method resolution order as a depth-first walk of the resolved bases."""
        found: SymbolRef | None = self._memoised(("member", cls, name, skip_self),
                                                 lambda: self._class_member(cls, name, skip_self), None)
        return found

    def _class_member(self, cls: SymbolRef, name: str, skip_self: bool) -> SymbolRef | None:
        seen: set[SymbolRef] = set()
        todo = [cls]
        while todo:
            current = todo.pop(0)
            if current in seen:
                continue
            seen.add(current)
            if not (skip_self and current == cls):
                member = f"{current.local}.{name}"
                if self.by_path(current.path).symbol(member) is not None:
                    return SymbolRef(current.path, member)
            todo[0:0] = self.bases(current)
        return None

    def bases(self, cls: SymbolRef) -> list[SymbolRef]:
        result: list[SymbolRef] = self._memoised(("bases", cls), lambda: self._bases(cls), [])
        return result

    def _bases(self, cls: SymbolRef) -> list[SymbolRef]:
        module = self.by_path(cls.path)
        symbol = module.symbol(cls.local)
        if symbol is None:
            return []
        scope = cls.local.rpartition(".")[0]
        out = []
        for base in symbol.bases:
            found = self.dotted(module, scope, base)
            if isinstance(found, SymbolRef):
                base_symbol = self.symbol(found)
                if base_symbol is not None and base_symbol.kind == SymbolKind.CLASS:
                    out.append(found)
        return out

    def enclosing_class(self, module: _Module, scope: str) -> SymbolRef | None:
        parts = scope.split(".") if scope else []
        # A method's scope is "Class.method": the class is its parent.
        while parts:
            parts.pop()
            prefix = ".".join(parts)
            symbol = module.symbol(prefix)
            if symbol is not None and symbol.kind == SymbolKind.CLASS:
                return SymbolRef(module.path, prefix)
            if symbol is not None:
                return None
        return None

    def dotted(self, module: _Module, scope: str, expr: str) -> Target | None:
        parts = expr.split(".")
        head = parts[0]
        if head == "super()":
            cls = self.enclosing_class(module, scope)
            if cls is None or len(parts) != 2:
                return None
            return self.class_member(cls, parts[1], skip_self=True)
        if head in ("self", "cls"):
            cls = self.enclosing_class(module, scope)
            if cls is None or len(parts) != 2:
                return None
            return self.class_member(cls, parts[1])
        target = self.name_in_scope(module, scope, head)
        for part in parts[1:]:
            if target is None:
                return None
            target = self.member(target, part)
        return target

    # ----- output ------------------------------------------------------------------------

    def qualified(self, ref: Target) -> tuple[str, str]:
        if isinstance(ref, ModuleRef):
            self._reads.top.add(("", f"mod:{ref.name}"))
            return ref.name, self.by_name[ref.name]
        return f"{self.by_path(ref.path).module_name()}.{ref.local}", ref.path

    def resolve_file(self, path: str) -> FileResolution:
        self._reads.reset()
        self._cut = _NO_CUT
        module = self.by_path(path)
        edges: set[Edge] = set()
        deps: set[tuple[str, str]] = set()
        unresolved = 0
        for imp in module.ir.imports:
            target_module = _absolute(module.name, module.is_package, imp.level, imp.module)
            imported: Target | None
            if imp.name is None or imp.name == "*":
                imported = ModuleRef(target_module) if self.has_module(target_module) else None
            else:
                imported = self._binding((target_module, imp.name))
                if imported is None and self.has_module(target_module):
                    imported = ModuleRef(target_module)
            if self.has_module(target_module):
                deps.add((self.by_name[target_module], "" if imp.name in (None, "*") else imp.name))
            if imported is not None:
                dst, dst_path = self.qualified(imported)
                if dst_path != module.path:
                    deps.add((dst_path, "" if isinstance(imported, ModuleRef)
                              else dst.rpartition(".")[2]))
                edges.add(Edge("imports", module.name, module.path, dst, dst_path, imp.line))
        # A file asks the same question many times (`self.assertEqual` in every test method):
        # the answer and its reads are those of the first time, and the reads are recorded.
        answers: dict[tuple[str, str], Target | None] = {}
        for call in module.ir.calls:
            question = (call.scope, call.callee)
            if question in answers:
                target = answers[question]
            else:
                target = answers[question] = self.dotted(module, call.scope, call.callee)
            if not isinstance(target, SymbolRef):
                unresolved += 1
                continue
            src = f"{module.name}.{call.scope}" if call.scope else module.name
            dst, dst_path = self.qualified(target)
            edges.add(Edge("calls", src, module.path, dst, dst_path, call.line))
        for symbol in module.ir.symbols:
            if symbol.kind != SymbolKind.CLASS or module.symbols.get(symbol.local_name) is not symbol:
                continue
            cls = SymbolRef(module.path, symbol.local_name)
            for base in self.bases(cls):
                dst, dst_path = self.qualified(base)
                edges.add(Edge("inherits", f"{module.name}.{symbol.local_name}", module.path, dst,
                               dst_path, symbol.start_line))
        deps.discard((module.path, ""))
        reads = {read for read in self._reads.stack[0] if read[0] != path}
        ordered = sorted(edges, key=lambda e: (e.line, e.kind, e.src, e.dst, e.dst_path))
        return FileResolution(path, ordered, deps, reads, unresolved)


def interface(path: str, module_name: str, ir: FileIR) -> dict[str, Hashable]:
    """The facts of one file that other files' resolutions can read (see `Read`)."""
    return _Module(module_name, path, ir, _Reads()).interface()
