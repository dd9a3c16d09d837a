"""Cross-file resolution for Python over one snapshot.

Input: every Python file's module name and per-file IR. Output: resolved edges (imports, calls,
inheritance) and the reverse-dependency facts (which file uses which file and name).

What is resolved (see ARCHITECTURE.md, "Name resolution"): module-level names bound by
definitions, `import` / `from … import` (absolute and relative, aliases, `*` with `__all__`),
re-exports through any chain of modules (cycles are cut), names imported inside functions,
nested functions, `self.m()` / `cls.m()` / `super().m()` through the class's resolved bases,
and dotted chains through modules and classes (`pkg.mod.Class.method`). What is not: the types of
local variables and attributes (`x = Foo(); x.bar()`), dynamic imports, `getattr`, decorators
that replace functions, and names that come from outside the snapshot (they stay unresolved).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from codegraph.model import Edge, FileIR, Symbol, SymbolKind


@dataclass(frozen=True)
class ModuleRef:
    name: str


@dataclass(frozen=True)
class SymbolRef:
    path: str  # the defining file (module names can collide; paths cannot)
    local: str


Target = ModuleRef | SymbolRef

_PENDING = object()


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


@dataclass
class _Module:
    name: str
    path: str
    ir: FileIR
    is_package: bool
    symbols: dict[str, Symbol] = field(default_factory=dict)  # local name -> first definition
    # scope ("" = module level) -> bound name -> (absolute module, imported name or None)
    bindings: dict[str, dict[str, tuple[str, str | None]]] = field(default_factory=dict)
    stars: list[str] = field(default_factory=list)


@dataclass
class PythonResolution:
    edges: list[Edge]
    file_deps: dict[str, set[tuple[str, str]]]
    unresolved_calls: int


class _Resolver:
    def __init__(self, modules: Mapping[str, str], irs: Mapping[str, FileIR]) -> None:
        self.by_path = {
            path: _Module(modules[path], path, irs[path], path.endswith("__init__.py"))
            for path in sorted(irs)
        }
        # Two files with one module name: the one nearest the root wins, then the first by path.
        self.by_name: dict[str, _Module] = {}
        for path in sorted(irs, key=lambda p: (p.count("/"), p)):
            self.by_name.setdefault(modules[path], self.by_path[path])
        for module in self.by_path.values():
            self._index(module)
        self._exports: dict[tuple[str, str], object] = {}
        self._bases: dict[SymbolRef, list[SymbolRef] | object] = {}

    # ----- per-module tables -------------------------------------------------------------

    def absolute(self, module: _Module, level: int, name: str) -> str:
        if level == 0:
            return name
        package = module.name.split(".") if module.is_package else module.name.split(".")[:-1]
        if module.name == "__init__":
            package = []
        base = package[: len(package) - (level - 1)] if level - 1 <= len(package) else []
        return ".".join([*base, name] if name else base)

    def _index(self, module: _Module) -> None:
        for symbol in module.ir.symbols:
            module.symbols.setdefault(symbol.local_name, symbol)
        for imp in module.ir.imports:
            target = self.absolute(module, imp.level, imp.module)
            scope = module.bindings.setdefault(imp.scope, {})
            if imp.name is None:
                if imp.alias:
                    scope[imp.alias] = (target, None)
                else:  # `import a.b.c` binds `a`
                    top = target.split(".")[0]
                    scope.setdefault(top, (top, None))
            elif imp.name == "*":
                if imp.scope == "":
                    module.stars.append(target)
            else:
                scope[imp.alias or imp.name] = (target, imp.name)

    # ----- lookups -----------------------------------------------------------------------

    def export(self, module_name: str, name: str) -> Target | None:
        """What `module_name.name` is, following re-exports; None when unknown or external."""
        key = (module_name, name)
        cached = self._exports.get(key)
        if cached is _PENDING:
            return None  # an import cycle: cut it here
        if key in self._exports:
            return cached  # type: ignore[return-value]
        self._exports[key] = _PENDING
        result = self._export(module_name, name)
        self._exports[key] = result
        return result

    def _export(self, module_name: str, name: str) -> Target | None:
        module = self.by_name.get(module_name)
        submodule = f"{module_name}.{name}" if module_name else name
        if module is None:
            return ModuleRef(submodule) if submodule in self.by_name else None
        symbol = module.symbols.get(name)
        if symbol is not None and "." not in name:
            return SymbolRef(module.path, name)
        binding = module.bindings.get("", {}).get(name)
        if binding is not None:
            found = self._binding(binding)
            if found is not None:
                return found
        if submodule in self.by_name:
            return ModuleRef(submodule)
        return self._through_stars(module, name)

    def _through_stars(self, module: _Module, name: str) -> Target | None:
        """A name bound by `from m import *`: m's `__all__` if literal, else its public names."""
        for star in module.stars:
            star_module = self.by_name.get(star)
            if star_module is not None and star_module.ir.all_names is not None:
                if name not in star_module.ir.all_names:
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
            return ModuleRef(target) if target in self.by_name else None
        found = self.export(target, name)
        if found is None and f"{target}.{name}" in self.by_name:
            return ModuleRef(f"{target}.{name}")
        return found

    def name_in_scope(self, module: _Module, scope: str, name: str) -> Target | None:
        """Python's LEGB without the B: enclosing functions, then the module."""
        parts = scope.split(".") if scope else []
        while parts:
            prefix = ".".join(parts)
            enclosing = module.symbols.get(prefix)
            if enclosing is not None and enclosing.kind != SymbolKind.CLASS:
                nested = f"{prefix}.{name}"
                if nested in module.symbols:
                    return SymbolRef(module.path, nested)
                binding = module.bindings.get(prefix, {}).get(name)
                if binding is not None:
                    return self._binding(binding)
            parts.pop()
        if name in module.symbols:
            return SymbolRef(module.path, name)
        binding = module.bindings.get("", {}).get(name)
        if binding is not None:
            return self._binding(binding)
        return self._through_stars(module, name)

    def symbol(self, ref: SymbolRef) -> Symbol | None:
        return self.by_path[ref.path].symbols.get(ref.local)

    def member(self, target: Target, name: str) -> Target | None:
        if isinstance(target, ModuleRef):
            return self.export(target.name, name)
        symbol = self.symbol(target)
        if symbol is None or symbol.kind != SymbolKind.CLASS:
            return None
        return self.class_member(target, name)

    def class_member(self, cls: SymbolRef, name: str, skip_self: bool = False) -> SymbolRef | None:
        """Method resolution order as a depth-first walk of the resolved bases."""
        seen: set[SymbolRef] = set()
        todo = [cls]
        while todo:
            current = todo.pop(0)
            if current in seen:
                continue
            seen.add(current)
            if not (skip_self and current == cls):
                member = f"{current.local}.{name}"
                if member in self.by_path[current.path].symbols:
                    return SymbolRef(current.path, member)
            todo[0:0] = self.bases(current)
        return None

    def bases(self, cls: SymbolRef) -> list[SymbolRef]:
        cached = self._bases.get(cls)
        if cached is _PENDING:
            return []
        if cached is not None:
            return cached  # type: ignore[return-value]
        self._bases[cls] = _PENDING
        module = self.by_path[cls.path]
        symbol = module.symbols[cls.local]
        scope = cls.local.rpartition(".")[0]
        out = []
        for base in symbol.bases:
            found = self.dotted(module, scope, base)
            if isinstance(found, SymbolRef):
                base_symbol = self.symbol(found)
                if base_symbol is not None and base_symbol.kind == SymbolKind.CLASS:
                    out.append(found)
        self._bases[cls] = out
        return out

    def enclosing_class(self, module: _Module, scope: str) -> SymbolRef | None:
        parts = scope.split(".") if scope else []
        # A method's scope is "Class.method": the class is its parent.
        while parts:
            parts.pop()
            prefix = ".".join(parts)
            symbol = module.symbols.get(prefix)
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
            return ref.name, self.by_name[ref.name].path
        return f"{self.by_path[ref.path].name}.{ref.local}", ref.path

    def resolve(self) -> PythonResolution:
        edges: set[Edge] = set()
        deps: dict[str, set[tuple[str, str]]] = {}
        unresolved = 0
        for module in self.by_path.values():
            file_deps = deps.setdefault(module.path, set())
            for imp in module.ir.imports:
                target_module = self.absolute(module, imp.level, imp.module)
                imported: Target | None
                if imp.name is None or imp.name == "*":
                    imported = ModuleRef(target_module) if target_module in self.by_name else None
                else:
                    imported = self._binding((target_module, imp.name))
                    if imported is None and target_module in self.by_name:
                        imported = ModuleRef(target_module)
                if target_module in self.by_name:
                    file_deps.add((self.by_name[target_module].path,
                                   "" if imp.name in (None, "*") else imp.name))
                if imported is not None:
                    dst, dst_path = self.qualified(imported)
                    if dst_path != module.path:
                        file_deps.add((dst_path, "" if isinstance(imported, ModuleRef)
                                       else dst.rpartition(".")[2]))
                    edges.add(Edge("imports", module.name, module.path, dst, dst_path, imp.line))
            for call in module.ir.calls:
                target = self.dotted(module, call.scope, call.callee)
                if not isinstance(target, SymbolRef):
                    unresolved += 1
                    continue
                src = f"{module.name}.{call.scope}" if call.scope else module.name
                dst, dst_path = self.qualified(target)
                edges.add(Edge("calls", src, module.path, dst, dst_path, call.line))
            for symbol in module.ir.symbols:
                if symbol.kind != SymbolKind.CLASS:
                    continue
                cls = SymbolRef(module.path, symbol.local_name)
                if module.symbols.get(symbol.local_name) is not symbol:
                    continue
                for base in self.bases(cls):
                    dst, dst_path = self.qualified(base)
                    edges.add(Edge("inherits", self.qualified(cls)[0], module.path, dst, dst_path,
                                   symbol.start_line))
            file_deps.discard((module.path, ""))
        ordered = sorted(edges, key=lambda e: (e.src_path, e.line, e.kind, e.src, e.dst))
        return PythonResolution(ordered, deps, unresolved)


def resolve(modules: Mapping[str, str], irs: Mapping[str, FileIR]) -> PythonResolution:
    return _Resolver(modules, irs).resolve()
