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

import functools
import operator
import re
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from codegraph.languages.common import Memo
from codegraph.languages.common import Reads as _Reads
from codegraph.languages.python.values import split
from codegraph.model import Edge, FileIR, FileResolution, PyValues, Read, Symbol, SymbolKind

if TYPE_CHECKING:
    from codegraph.languages import LoadFacts

# Read keys (see `Read`): "name" (the file's module name), "sym:<local>" (a definition's kind
# and bases), "bind:<scope>:<name>" (an import binding), "stars", "all" (`__all__`), and for the
# module namespace ("" as path) "mod:<name>" (which file is module <name>).


class ModuleRef(NamedTuple):  # tuples: hashed in C, and memo keys hold many of them
    name: str


class SymbolRef(NamedTuple):
    path: str  # the defining file (module names can collide; paths cannot)
    local: str


Target = ModuleRef | SymbolRef

_NO_VALUES = PyValues({}, {}, {}, {}, {}, {}, {})
_OPS = re.compile(r"\.\w+|\(\)|\[\]|\[=\w*\]|!|\*|\^")
# Decorators that keep a function what it is for the call graph (property-likes are told apart
# where an attribute is read).
_KEEPS = frozenset({"staticmethod", "classmethod", "abstractmethod", "abc.abstractmethod",
                    "functools.cache", "cache", "functools.lru_cache", "lru_cache",
                    "functools.lru_cache()", "lru_cache()", "override", "typing.override",
                    "typing_extensions.override", "contextlib.contextmanager", "contextmanager",
                    "functools.total_ordering", "dataclass", "dataclasses.dataclass",
                    "dataclass()", "dataclasses.dataclass()", "typing.overload", "overload",
                    "abc.abstractproperty", "?"})
_PROPERTIES = frozenset({"property", "cached_property", "functools.cached_property",
                         "abc.abstractproperty"})

# A value (what an expression may evaluate to), a plain tuple: ("f", path, local) a function,
# ("c", path, local) a class, ("i", path, local) an instance of a class, ("m", name) a module,
# ("g", path, local) a generator of a function, ("b", path, box id) a container literal,
# ("v", path, box id) its `.values`/`.copy` method, ("s", path, class) `super()` in the class,
# ("l", path, class) a collection of instances of the class (from an annotation).
Value = tuple[str, ...]
_EMPTY: frozenset[Value] = frozenset()
_EMPTY_REFS: frozenset[SymbolRef] = frozenset()
# Calls from other files passing arguments to functions of one name (a "@pass" fact) looked at,
# at most: a name that common (`get`, `run`) gives no cross-file higher-order edges.
MAX_PASSING = 64


# The order of a file's edges, by every field: by the first five alone, two edges differing only
# in call kind ("direct" and "constructor" to one `__init__`) came out in an order that changed
# with PYTHONHASHSEED (the edge set's order).
_EDGE_ORDER = operator.attrgetter("line", "kind", "src", "dst", "dst_path", "call_kind", "src_path")

# (base, ops) of a value expression: the same few expressions are split again and again.
_split = functools.lru_cache(maxsize=1 << 16)(split)


@functools.lru_cache(maxsize=8192)
def _ops(rest: str) -> tuple[str, ...]:
    return tuple(_OPS.findall(rest))


def _is_property(decorators: tuple[str, ...]) -> bool:
    return any(d in _PROPERTIES or d.endswith((".setter", ".getter", ".deleter"))
               for d in decorators)


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
        # Every read of this file's facts, each made once (by the lookup below that records
        # it) and then shared: recording one again is no formatting of its key, read sets
        # holding one object compare it by identity, and `own_reads` has them all.
        self._sym_reads: dict[str, Read] = {}
        self._bind_reads: dict[tuple[str, str], Read] = {}
        self._fn_reads: dict[str, Read] = {}
        self._attr_reads: dict[str, Read] = {}
        self._var_reads: dict[str, Read] = {}
        self._box_reads: dict[str, Read] = {}
        self._deco_reads: dict[str, Read] = {}
        self._name_read: Read = (path, "name")
        self._stars_read: Read = (path, "stars")
        self._all_read: Read = (path, "all")
        self.symbols: dict[str, Symbol] = {}  # local name -> first definition
        # scope ("" = module level) -> bound name -> (absolute module, imported name or None)
        self.bindings: dict[str, dict[str, tuple[str, str | None]]] = {}
        self.stars: list[str] = []
        self.values = ir.py_values or _NO_VALUES
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
        # Names some function of the file binds (nested defs, imports in functions). Worked out
        # once the bindings are filled: an import inside a function binds its name there.
        self.scoped_names = {scope_names for scope, names in self.bindings.items() if scope
                             for scope_names in names}
        for symbol in ir.symbols:
            parent, _, last = symbol.local_name.rpartition(".")
            if parent:
                self.scoped_names.add(last)

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
        values = self.values
        for local, params in values.params.items():
            facts[f"fn:{local}"] = (params, values.returns.get(local), values.yields.get(local))
        for key, attr in values.attrs.items():
            facts[f"attr:{key}"] = attr
        for name, variable in values.variables.items():
            facts[f"var:{name}"] = variable
        for box_id, box in values.boxes.items():
            facts[f"box:{box_id}"] = box
        for local, decorators in values.decorators.items():
            facts[f"deco:{local}"] = decorators
        facts.update(self.ir.index)  # "@sub:<name>", "@pass:<name>" (see extract._index)
        return facts

    def own_reads(self) -> set[Read]:
        """Every read of this file's facts made so far (a superset of those a resolution of
        this file recorded: what `Resolver.file_reads` leaves out)."""
        return {self._name_read, self._stars_read, self._all_read}.union(
            self._sym_reads.values(), self._bind_reads.values(), self._fn_reads.values(),
            self._attr_reads.values(), self._var_reads.values(), self._box_reads.values(),
            self._deco_reads.values())

    # Value facts (see `PyValues`), each read recorded under the key `interface` gives it.

    def function(self, local: str) -> tuple[tuple[str, ...], tuple[str, ...] | None,
                                            tuple[str, ...] | None]:
        """(parameter names, return values or None, yield values or None: not a generator)."""
        read = self._fn_reads.get(local)
        if read is None:
            read = self._fn_reads[local] = (self.path, f"fn:{local}")
        self._reads.top.add(read)
        values = self.values
        return values.params.get(local, ()), values.returns.get(local), values.yields.get(local)

    def attr(self, key: str) -> tuple[tuple[str, str], ...]:
        read = self._attr_reads.get(key)
        if read is None:
            read = self._attr_reads[key] = (self.path, f"attr:{key}")
        self._reads.top.add(read)
        return self.values.attrs.get(key, ())

    def variable(self, name: str) -> tuple[str, ...] | None:
        read = self._var_reads.get(name)
        if read is None:
            read = self._var_reads[name] = (self.path, f"var:{name}")
        self._reads.top.add(read)
        return self.values.variables.get(name)

    def box(self, box_id: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
        read = self._box_reads.get(box_id)
        if read is None:
            read = self._box_reads[box_id] = (self.path, f"box:{box_id}")
        self._reads.top.add(read)
        return self.values.boxes.get(box_id, ())

    def decorators(self, local: str) -> tuple[str, ...]:
        read = self._deco_reads.get(local)
        if read is None:
            read = self._deco_reads[local] = (self.path, f"deco:{local}")
        self._reads.top.add(read)
        return self.values.decorators.get(local, ())

    def symbol(self, local: str) -> Symbol | None:
        read = self._sym_reads.get(local)
        if read is None:
            read = self._sym_reads[local] = (self.path, f"sym:{local}")
        self._reads.top.add(read)
        return self.symbols.get(local)

    def binding(self, scope: str, name: str) -> tuple[str, str | None] | None:
        read = self._bind_reads.get((scope, name))
        if read is None:
            read = self._bind_reads[scope, name] = (self.path, f"bind:{scope}:{name}")
        self._reads.top.add(read)
        return self.bindings.get(scope, {}).get(name)

    def star_imports(self) -> list[str]:
        self._reads.top.add(self._stars_read)
        return self.stars

    def all_names(self) -> list[str] | None:
        self._reads.top.add(self._all_read)
        return self.ir.all_names

    def module_name(self) -> str:
        self._reads.top.add(self._name_read)
        return self.name


class Resolver(Memo):
    """Resolves files of one snapshot whose files are `modules` (path -> module name); the memo
    of answers is kept from one file to the next."""

    def __init__(self, modules: Mapping[str, str], load_ir: Callable[[str], FileIR],
                 load_facts: LoadFacts | None = None) -> None:
        self.modules = modules
        self.load_ir = load_ir
        self.load_facts = load_facts
        self.by_name = module_table(modules)
        self._loaded: dict[str, _Module] = {}
        self._mod_reads: dict[str, Read] = {}  # module name -> its read, made once (see `_Module`)
        super().__init__()
        self._resolving = ""  # the file `resolve_file` is resolving
        # Its evaluations outside any memoised question (see `evaluate`), emptied per file.
        self._evaluated: dict[tuple[str, str, str], frozenset[Value]] = {}
        # The "@" facts of the snapshot's files (`FileIR.index`) asked so far: key -> (path,
        # entry) in path order; without `load_facts`, every file's, built at the first ask.
        self._index: dict[str, Sequence[tuple[str, tuple[Any, ...]]]] = {}
        self._index_complete = False

    def snapshot_facts(self, key: str) -> Sequence[tuple[str, tuple[Any, ...]]]:
        """Every file's entries of the "@" fact `key` (read as ("", key)), as (path, entry)."""
        self._reads.top.add(("", key))
        index = self._index
        found = index.get(key)
        if found is None:
            if self.load_facts is not None:
                found = index[key] = self.load_facts(key)
            elif not self._index_complete:
                self._index_complete = True
                every: dict[str, list[tuple[str, tuple[Any, ...]]]] = {}
                for path in sorted(self.modules):
                    for name, entries in self.by_path(path).ir.index.items():
                        every.setdefault(name, []).extend((path, entry) for entry in entries)
                index.update(every)
                found = index.get(key, ())
            else:
                found = ()
        return found

    def file_reads(self, path: str) -> set[Read]:
        # As `Memo.file_reads` (the reads of other files' facts), as a set difference: every
        # read of a file's facts is made by its `_Module`, which has them all.
        return self._reads.stack[0] - self.by_path(path).own_reads()

    def by_path(self, path: str) -> _Module:
        module = self._loaded.get(path)
        if module is None:
            module = _Module(self.modules[path], path, self.load_ir(path), self._reads)
            self._loaded[path] = module
        return module

    def module_named(self, name: str) -> _Module | None:
        read = self._mod_reads.get(name)
        if read is None:
            read = self._mod_reads[name] = ("", f"mod:{name}")
        self._reads.top.add(read)
        path = self.by_name.get(name)
        return self.by_path(path) if path is not None else None

    def has_module(self, name: str) -> bool:
        read = self._mod_reads.get(name)
        if read is None:
            read = self._mod_reads[name] = ("", f"mod:{name}")
        self._reads.top.add(read)
        return name in self.by_name

    # The hottest lookups first look their key up themselves, as `memoised` would (the answer
    # and its reads), so that a remembered answer costs no closure and no call.
    _memoised = Memo.memoised

    # ----- lookups -----------------------------------------------------------------------

    def export(self, module_name: str, name: str) -> Target | None:
        """What `module_name.name` is, following re-exports; None when unknown or external."""
        key = ("export", module_name, name)
        hit = self._memo.get(key)
        if hit is not None:
            self._reads.top |= hit[1]
            return hit[0]
        return self._memoised(key, lambda: self._export(module_name, name), None)

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
        """The first definition of `name` along the class's C3 method resolution order (after
        the class itself with `skip_self`: what `super().name` finds)."""
        key = ("member", cls, name, skip_self)
        hit = self._memo.get(key)
        if hit is not None:
            self._reads.top |= hit[1]
            return hit[0]
        found: SymbolRef | None = self._memoised(
            key, lambda: self._class_member(cls, name, skip_self), None)
        return found

    def _class_member(self, cls: SymbolRef, name: str, skip_self: bool) -> SymbolRef | None:
        for current in self.mro(cls)[1 if skip_self else 0:]:
            member = f"{current.local}.{name}"
            if self.by_path(current.path).symbol(member) is not None:
                return SymbolRef(current.path, member)
        return None

    def mro(self, cls: SymbolRef) -> tuple[SymbolRef, ...]:
        """C3 linearisation of the class's resolved bases (bases outside the snapshot are left
        out); where C3 fails (an inconsistent hierarchy), a depth-first walk."""
        key = ("mro", cls)
        hit = self._memo.get(key)
        if hit is not None:
            self._reads.top |= hit[1]
            return hit[0]
        result: tuple[SymbolRef, ...] = self._memoised(key, lambda: self._mro(cls), (cls,))
        return result

    def _mro(self, cls: SymbolRef) -> tuple[SymbolRef, ...]:
        bases = self.bases(cls)
        seqs = [list(self.mro(b)) for b in bases] + [list(bases)]
        out = [cls]
        while True:
            seqs = [q for q in seqs if q]
            if not seqs:
                return tuple(out)
            for q in seqs:
                head = q[0]
                if not any(head in other[1:] for other in seqs):
                    break
            else:  # inconsistent: depth-first, first occurrence wins
                for q in seqs:
                    out.extend(c for c in q if c not in out)
                return tuple(out)
            if head not in out:
                out.append(head)
            for q in seqs:
                if q and q[0] == head:
                    del q[0]

    def bases(self, cls: SymbolRef) -> list[SymbolRef]:
        key = ("bases", cls)
        hit = self._memo.get(key)
        if hit is not None:
            self._reads.top |= hit[1]
            return hit[0]
        result: list[SymbolRef] = self._memoised(key, lambda: self._bases(cls), [])
        return result

    def _bases(self, cls: SymbolRef) -> list[SymbolRef]:
        module = self.by_path(cls.path)
        symbol = module.symbol(cls.local)
        if symbol is None:
            return []
        scope = cls.local.rpartition(".")[0]
        out: list[SymbolRef] = []
        for base in symbol.bases:
            found = self.dotted(module, scope, base)
            if isinstance(found, SymbolRef):
                base_symbol = self.symbol(found)
                if base_symbol is not None and base_symbol.kind == SymbolKind.CLASS:
                    out.append(found)
                elif base_symbol is not None and base_symbol.kind == SymbolKind.VARIABLE:
                    # Another name for a class (`Alias = Base`): the classes it may hold.
                    out.extend(ref for ref in sorted(
                        SymbolRef(v[1], v[2]) for v in self.variable_values(found.path, found.local)
                        if v[0] == "c") if ref not in out and ref != cls)
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

    # ----- values ------------------------------------------------------------------------

    def evaluate(self, module: _Module, scope: str, expr: str) -> frozenset[Value]:
        """Every value `expr` (value-expression syntax, see `values.py`) may have in `scope`:
        its base looked up, then each operation applied to each value (memoised per value and
        operation, so chains share their work across scopes and files)."""
        base, rest = _split(expr)
        if len(self._reads.stack) == 1:
            # Outside any memoised question (a call site of the file being resolved, or of
            # another file calling one of its functions): the reads go to the file's own set,
            # which already holds those of an evaluation asked before in this file, so the
            # answer alone is remembered. The scope matters only for names some function of
            # the file binds (in the file being resolved: see `_base`; another file's scope
            # walk is a read of it).
            key = (module.path, scope if module.path != self._resolving
                   or base in module.scoped_names else "", expr)
            found = self._evaluated.get(key)
            if found is None:
                found = self._evaluated[key] = self._evaluate(module, scope, base, rest)
            return found
        return self._evaluate(module, scope, base, rest)

    def _evaluate(self, module: _Module, scope: str, base: str, rest: str) -> frozenset[Value]:
        values = self._base(module, scope, base)
        for op in _ops(rest) if rest else ():
            if not values:
                break
            if len(values) == 1:
                (value,) = values
                values = self.apply(value, op)
            else:
                out: set[Value] = set()
                for value in values:
                    out |= self.apply(value, op)
                values = frozenset(out)
        return values

    def _base(self, module: _Module, scope: str, base: str) -> frozenset[Value]:
        if not base:
            return _EMPTY
        if base[0] == "<":
            tag, body = base[1], base[3:-1]
            if tag in "ics":
                return frozenset({(tag, module.path, body)})
            if tag == "b":
                return frozenset({("b", module.path, body)})
            return _EMPTY  # <a:...>: a parameter nothing is known of
        if (scope and module.path == self._resolving and len(self._reads.stack) == 1
                and base not in module.scoped_names):
            # A call site of the file being resolved, outside any memoised question, naming
            # what no enclosing function binds: the module-level answer, shared by every scope
            # of the file (the skipped walk would only have read this file's own facts, which
            # a file's reads leave out).
            target = self.global_name(module, base)
        else:
            target = self.name_in_scope(module, scope, base)
        if target is None:
            # A module-level name bound only inside a block (if/try/for at module level).
            if module.variable(base) is None:
                return _EMPTY
            return self.variable_values(module.path, base)
        return self.target_values(target)

    def global_name(self, module: _Module, name: str) -> Target | None:
        key = ("global", module.path, name)
        hit = self._memo.get(key)
        if hit is not None:
            self._reads.top |= hit[1]
            return hit[0]
        result: Target | None = self._memoised(
            key, lambda: self.name_in_scope(module, "", name), None)
        return result

    def variable_values(self, path: str, name: str) -> frozenset[Value]:
        """The values of a module-level name (every assignment to it at module level)."""
        key = ("var", path, name)
        hit = self._memo.get(key)
        if hit is not None:
            self._reads.top |= hit[1]
            return hit[0]
        result: frozenset[Value] = self._memoised(
            key, lambda: self._variable_values(path, name), _EMPTY)
        return result

    def _variable_values(self, path: str, name: str) -> frozenset[Value]:
        module = self.by_path(path)
        out: set[Value] = set()
        for expr in module.variable(name) or ():
            out |= self.evaluate(module, "", expr)
        return frozenset(out)

    def target_values(self, target: Target) -> frozenset[Value]:
        if isinstance(target, ModuleRef):
            return frozenset({("m", target.name)})
        module = self.by_path(target.path)
        symbol = module.symbol(target.local)
        if symbol is None:
            return _EMPTY
        if symbol.kind == SymbolKind.CLASS:
            return frozenset({("c", target.path, target.local)})
        if symbol.kind == SymbolKind.VARIABLE:
            return self.variable_values(target.path, target.local)
        if symbol.kind == SymbolKind.MODULE:
            return _EMPTY
        return self.function_value(target)

    def function_value(self, ref: SymbolRef) -> frozenset[Value]:
        """A def as its name holds it: itself, unless a decorator replaces it."""
        key = ("fv", ref)
        hit = self._memo.get(key)
        if hit is not None:
            self._reads.top |= hit[1]
            return hit[0]
        result: frozenset[Value] = self._memoised(
            key, lambda: self._function_value(ref), frozenset({("f", ref.path, ref.local)}))
        return result

    def _function_value(self, ref: SymbolRef) -> frozenset[Value]:
        module = self.by_path(ref.path)
        values: frozenset[Value] = frozenset({("f", ref.path, ref.local)})
        scope = ref.local.rpartition(".")[0]
        for decorator in reversed(module.decorators(ref.local)):  # the innermost first
            if decorator in _KEEPS or decorator in _PROPERTIES or decorator.endswith(
                    (".setter", ".getter", ".deleter")):
                continue
            replaced: set[Value] = set()
            for d in self.evaluate(module, scope, decorator):
                replaced |= self._decorated(d)
            if replaced:
                values = frozenset(replaced)
        return values

    def _decorated(self, decorator: Value) -> frozenset[Value]:
        """What applying `decorator` gives instead of the function; empty: the function itself
        (a decorator that returns its argument, or a `functools.wraps` wrapper, or unknown)."""
        if decorator[0] == "c":
            return frozenset({("i", decorator[1], decorator[2])})
        if decorator[0] != "f":
            return _EMPTY
        module = self.by_path(decorator[1])
        params, returns, _ = module.function(decorator[2])
        if not returns or (params and f"<a:{params[0]}>" in returns):
            return _EMPTY
        out: set[Value] = set()
        for expr in returns:
            for value in self.evaluate(module, decorator[2], expr):
                if value[0] == "f" and any(d.endswith("wraps()") for d in
                                           self.by_path(value[1]).decorators(value[2])):
                    return _EMPTY
                out.add(value)
        return frozenset(out)

    def apply(self, value: Value, op: str) -> frozenset[Value]:
        key = ("ap", value, op)
        hit = self._memo.get(key)
        if hit is not None:
            self._reads.top |= hit[1]
            return hit[0]
        result: frozenset[Value] = self._memoised(key, lambda: self._apply(value, op), _EMPTY)
        return result

    def _apply(self, value: Value, op: str) -> frozenset[Value]:
        tag = value[0]
        if op[0] == ".":
            name = op[1:]
            if tag == "m":
                found = self.export(value[1], name)
                return self.target_values(found) if found is not None else _EMPTY
            if tag in "cis":
                cls = SymbolRef(value[1], value[2])
                member = self.class_member(cls, name, skip_self=tag == "s")
                if member is not None:
                    return self.member_value(member, on_instance=tag != "c")
                return self.attr_values(cls, name, skip_self=tag == "s")
            if tag == "b" and name in ("values", "copy"):
                return frozenset({("v", value[1], value[2])})
            return _EMPTY
        if op == "()":
            if tag == "f":
                return self.call_values(SymbolRef(value[1], value[2]))
            if tag == "c":
                return frozenset({("i", value[1], value[2])})
            if tag == "i":
                call = self.class_member(SymbolRef(value[1], value[2]), "__call__")
                return self.call_values(call) if call is not None else _EMPTY
            if tag == "v":
                return frozenset({("b", value[1], value[2])})
            return _EMPTY
        if op[0] == "[":
            if tag == "b":
                return self.elements(value[1], value[2], op[2:-1] if len(op) > 2 else None)
            if tag == "g":
                return self.yielded(SymbolRef(value[1], value[2]))
            if tag == "l":
                return frozenset({("i", value[1], value[2])})
            return _EMPTY
        if op == "!":
            return frozenset({("i", value[1], value[2])}) if tag == "c" else _EMPTY
        if op == "*":
            return frozenset({("l", value[1], value[2])}) if tag == "c" else _EMPTY
        if op == "^":
            if tag == "g":
                return self.yielded(SymbolRef(value[1], value[2]))
            if tag == "i":
                enter = self.class_member(SymbolRef(value[1], value[2]), "__enter__")
                return self.call_values(enter) if enter is not None else _EMPTY
        return _EMPTY

    def member_value(self, member: SymbolRef, on_instance: bool) -> frozenset[Value]:
        module = self.by_path(member.path)
        symbol = module.symbol(member.local)
        if symbol is None:
            return _EMPTY
        if symbol.kind == SymbolKind.CLASS:
            return frozenset({("c", member.path, member.local)})
        if on_instance and _is_property(module.decorators(member.local)):
            return self.call_values(member)
        return self.function_value(member)

    def call_values(self, fn: SymbolRef) -> frozenset[Value]:
        """What calling the function gives: its return values, or its generator."""
        key = ("call", fn)
        hit = self._memo.get(key)
        if hit is not None:
            self._reads.top |= hit[1]
            return hit[0]
        result: frozenset[Value] = self._memoised(key, lambda: self._call_values(fn), _EMPTY)
        return result

    def _call_values(self, fn: SymbolRef) -> frozenset[Value]:
        module = self.by_path(fn.path)
        _, returns, yields = module.function(fn.local)
        if yields is not None:
            return frozenset({("g", fn.path, fn.local)})
        out: set[Value] = set()
        for expr in returns or ():
            out |= self.evaluate(module, fn.local, expr)
        return frozenset(out)

    def yielded(self, fn: SymbolRef) -> frozenset[Value]:
        result: frozenset[Value] = self._memoised(("yield", fn), lambda: self._yielded(fn), _EMPTY)
        return result

    def _yielded(self, fn: SymbolRef) -> frozenset[Value]:
        module = self.by_path(fn.path)
        out: set[Value] = set()
        for expr in module.function(fn.local)[2] or ():
            out |= self.evaluate(module, fn.local, expr)
        return frozenset(out)

    def elements(self, path: str, box_id: str, key: str | None) -> frozenset[Value]:
        memo_key = ("box", path, box_id, key)
        hit = self._memo.get(memo_key)
        if hit is not None:
            self._reads.top |= hit[1]
            return hit[0]
        result: frozenset[Value] = self._memoised(
            memo_key, lambda: self._elements(path, box_id, key), _EMPTY)
        return result

    def _elements(self, path: str, box_id: str, key: str | None) -> frozenset[Value]:
        module = self.by_path(path)
        scope = box_id.partition(":")[0]
        slots = module.box(box_id)
        chosen = [values for k, values in slots if k == key] if key is not None else []
        out: set[Value] = set()
        for values in chosen or [values for _, values in slots]:
            for expr in values:
                out |= self.evaluate(module, scope, expr)
        return frozenset(out)

    def attr_values(self, cls: SymbolRef, name: str, skip_self: bool = False) -> frozenset[Value]:
        """What an attribute of the class's instances may hold: every assignment to it in the
        class body or through `self` in a method, of the class and of its bases."""
        key = ("attr", cls, name, skip_self)
        hit = self._memo.get(key)
        if hit is not None:
            self._reads.top |= hit[1]
            return hit[0]
        result: frozenset[Value] = self._memoised(
            key, lambda: self._attr_values(cls, name, skip_self), _EMPTY)
        return result

    def _attr_values(self, cls: SymbolRef, name: str, skip_self: bool) -> frozenset[Value]:
        out: set[Value] = set()
        for current in self.mro(cls)[1 if skip_self else 0:]:
            module = self.by_path(current.path)
            for scope, expr in module.attr(f"{current.local}:{name}"):
                out |= self.evaluate(module, scope, expr)
        return frozenset(out)

    def call_targets(self, module: _Module, scope: str, exprs: tuple[str, ...]
                     ) -> set[tuple[str, SymbolRef]]:
        """The (call kind, callee) pairs of a call whose called expression has `exprs`."""
        out: set[tuple[str, SymbolRef]] = set()
        dispatch: set[SymbolRef] = set()
        for expr in exprs:
            for value in self.evaluate(module, scope, expr):
                tag = value[0]
                if tag == "f":
                    out.add(("direct", SymbolRef(value[1], value[2])))
                elif tag in "ci":
                    key = ("targets", value)
                    hit = self._memo.get(key)
                    if hit is not None:
                        self._reads.top |= hit[1]
                        out.update(hit[0])
                    else:
                        out.update(self._memoised(key, lambda v=value: self._value_targets(v), ()))
            dot = expr.rfind(".")
            if dot > 0 and expr[dot + 1:].isidentifier():
                name = expr[dot + 1:]
                for cls in self.open_classes(module, scope, expr[:dot]):
                    for sub, methods in self.subclasses(cls):
                        if name in methods:
                            dispatch.add(SymbolRef(sub.path, f"{sub.local}.{name}"))
        if dispatch:
            direct = {target for _, target in out}
            out.update(("dispatch", target) for target in dispatch if target not in direct)
        return out

    def open_classes(self, module: _Module, scope: str, expr: str) -> frozenset[SymbolRef]:
        """The classes whose instances (or, for `cls`, the classes themselves) `expr` may hold
        *or any subclass of them*: `self`/`cls`, a value known from an annotation (`p: Shape`,
        `except E as e`), an attribute of an instance that one of those is assigned to. A
        method called on such a receiver also reaches its overrides in the subclasses (dispatch
        edges); a receiver built by a constructor (`Shape()`) is exactly its class."""
        base, rest = _split(expr)
        if not rest:
            if base[:3] in ("<i:", "<c:"):
                return frozenset({SymbolRef(module.path, base[3:-1])})
            return _EMPTY_REFS
        if rest[-1] == "!":
            return frozenset(SymbolRef(v[1], v[2]) for v in self.evaluate(module, scope, expr)
                             if v[0] == "i")
        dot = expr.rfind(".")
        if dot <= 0 or not expr[dot + 1:].isidentifier():
            return _EMPTY_REFS
        out: set[SymbolRef] = set()
        for value in self.evaluate(module, scope, expr[:dot]):
            if value[0] == "i":
                out |= self.open_attr(SymbolRef(value[1], value[2]), expr[dot + 1:])
        return frozenset(out)

    def open_attr(self, cls: SymbolRef, name: str) -> frozenset[SymbolRef]:
        """`open_classes` of a data attribute of the class's instances (every value assigned to
        it, along the MRO); nothing for a method or property."""
        key = ("open", cls, name)
        hit = self._memo.get(key)
        if hit is not None:
            self._reads.top |= hit[1]
            return hit[0]
        result: frozenset[SymbolRef] = self._memoised(
            key, lambda: self._open_attr(cls, name), _EMPTY_REFS)
        return result

    def _open_attr(self, cls: SymbolRef, name: str) -> frozenset[SymbolRef]:
        if self.class_member(cls, name) is not None:
            return _EMPTY_REFS
        out: set[SymbolRef] = set()
        for current in self.mro(cls):
            owner = self.by_path(current.path)
            for scope, expr in owner.attr(f"{current.local}:{name}"):
                out |= self.open_classes(owner, scope, expr)
        return frozenset(out)

    def subclasses(self, cls: SymbolRef) -> tuple[tuple[SymbolRef, tuple[str, ...]], ...]:
        """Every class of the snapshot whose MRO holds `cls` after itself, with the methods it
        defines itself: classes with a base whose last name, as written or as what it is an
        alias of in its file (`from m import Base as B`, `B = Base`), is the name of a class
        known to be a subclass (read as ("", "@sub:<name>"), one fact of the snapshot) and
        that resolve to it. A base renamed by another module's re-export (`from .m import
        Base as B` in a package, then `class C(pkg.B)`) is not followed."""
        key = ("subs", cls)
        hit = self._memo.get(key)
        if hit is not None:
            self._reads.top |= hit[1]
            return hit[0]
        result: tuple[tuple[SymbolRef, tuple[str, ...]], ...] = self._memoised(
            key, lambda: self._subclasses(cls), ())
        return result

    def _subclasses(self, cls: SymbolRef) -> tuple[tuple[SymbolRef, tuple[str, ...]], ...]:
        found: dict[SymbolRef, tuple[str, ...]] = {}
        frontier = [cls]
        while frontier:
            current = frontier.pop()
            short = current.local.rpartition(".")[2]
            candidates = self.named_subclasses(short)
            if any(sub == cls for sub, _, _ in candidates):
                # `cls` itself is no candidate (`class TestCase(unittest.TestCase)`): its bases
                # are not looked at, and neither are their reads recorded (`named_subclasses`
                # records those of every candidate's bases).
                for path, (local, methods) in self.snapshot_facts(f"@sub:{short}"):
                    sub = SymbolRef(path, local)
                    if sub not in found and sub != cls and current in self.bases(sub):
                        found[sub] = methods
                        frontier.append(sub)
                continue
            for sub, methods, bases in candidates:
                if sub not in found and current in bases:
                    found[sub] = methods
                    frontier.append(sub)
        return tuple(sorted(found.items()))

    def named_subclasses(self, short: str) -> tuple[tuple[SymbolRef, tuple[str, ...],
                                                          tuple[SymbolRef, ...]], ...]:
        """The classes with a base of this last name (the "@sub:<short>" fact), each with its
        methods and resolved bases (and the reads of them all): every class of one name asks
        the same, and a common name (`TestCase`) has thousands."""
        result: tuple[tuple[SymbolRef, tuple[str, ...], tuple[SymbolRef, ...]], ...] = (
            self._memoised(("named", short), lambda: self._named_subclasses(short), ()))
        return result

    def _named_subclasses(self, short: str) -> tuple[tuple[SymbolRef, tuple[str, ...],
                                                           tuple[SymbolRef, ...]], ...]:
        out = []
        for path, (local, methods) in self.snapshot_facts(f"@sub:{short}"):
            sub = SymbolRef(path, local)
            out.append((sub, methods, tuple(self.bases(sub))))
        return tuple(out)

    def _value_targets(self, value: Value) -> tuple[tuple[str, SymbolRef], ...]:
        """Calling a class: the class, its `__init__` and `__new__`; an instance: `__call__`."""
        cls = SymbolRef(value[1], value[2])
        if value[0] == "i":
            call = self.class_member(cls, "__call__")
            return (("direct", call),) if call is not None else ()
        out = [("constructor", cls)]
        for special in ("__init__", "__new__"):
            member = self.class_member(cls, special)
            if member is not None:
                out.append(("constructor", member))
        return tuple(out)

    # ----- output ------------------------------------------------------------------------

    def qualified(self, ref: Target) -> tuple[str, str]:
        if isinstance(ref, ModuleRef):
            self.has_module(ref.name)  # its read
            return ref.name, self.by_name[ref.name]
        return f"{self.by_path(ref.path).module_name()}.{ref.local}", ref.path

    def argument_edges(self, module: _Module, answers: dict[
            tuple[str, tuple[str, ...]], set[tuple[str, SymbolRef]]]) -> set[Edge]:
        """Higher-order calls: a function of this file called with a function (or class) as an
        argument, and calling that parameter, calls what was passed. The edge starts in the
        function called (at its call of the parameter), so this file holds it; calls from other
        files are found through the snapshot facts "@pass:<name>" (see `extract._index`)."""
        param_calls: dict[tuple[str, str], list[tuple[str, int]]] = {}
        params = module.values.params
        for call in module.ir.calls:
            for value in call.py_values:
                if value.startswith("<a:") and value.endswith(">"):
                    name = value[3:-1]
                    scope = call.scope
                    while scope and name not in params.get(scope, ()):
                        scope = scope.rpartition(".")[0]
                    if scope:
                        param_calls.setdefault((scope, name), []).append((call.scope, call.line))
        if not param_calls:
            return set()
        out: set[Edge] = set()
        for call in module.ir.calls:
            if not call.py_args:
                continue
            question = (call.scope if module.scoped_names else "", call.py_values)
            for _, target in answers.get(question) or self.call_targets(
                    module, call.scope, call.py_values):
                if target.path != module.path or target.local not in params:
                    continue
                names = params[target.local]
                offset = 1 if names[:1] in (("self",), ("cls",)) and "." in target.local else 0
                for arg in call.py_args:
                    slot, _, expr = arg.partition("=")
                    name = names[int(slot) + offset] if slot.isdigit() and int(
                        slot) + offset < len(names) else slot
                    sites = param_calls.get((target.local, name))
                    if not sites:
                        continue
                    for kind, callee in self.call_targets(module, call.scope, (expr,)):
                        dst, dst_path = self.qualified(callee)
                        for scope, line in sites:
                            out.add(Edge("calls", f"{module.name}.{scope}", module.path, dst,
                                         dst_path, line, kind))
        for fn in sorted({fn for fn, _ in param_calls}):
            candidates = self.snapshot_facts(f"@pass:{fn.rpartition('.')[2]}")
            if len(candidates) > MAX_PASSING:
                continue
            ref = SymbolRef(module.path, fn)
            names = params[fn]
            offset = 1 if names[:1] in (("self",), ("cls",)) and "." in fn else 0
            for other, (scope, values, args) in candidates:
                if other == module.path:
                    continue  # above
                caller = self.by_path(other)
                if not any(target == ref for kind, target in self.call_targets(
                        caller, scope, values) if kind != "dispatch"):
                    continue
                for arg in args:
                    slot, _, expr = arg.partition("=")
                    name = names[int(slot) + offset] if slot.isdigit() and int(
                        slot) + offset < len(names) else slot
                    sites = param_calls.get((fn, name))
                    if not sites:
                        continue
                    for kind, callee in self.call_targets(caller, scope, (expr,)):
                        dst, dst_path = self.qualified(callee)
                        for site, line in sites:
                            out.add(Edge("calls", f"{module.name}.{site}", module.path, dst,
                                         dst_path, line, kind))
        return out

    def resolve_file(self, path: str) -> FileResolution:
        self._resolving = path
        self._evaluated.clear()
        self.start_file()
        module = self.by_path(path)
        # Insertion-ordered (a dict, not a set): the imports, then the calls, each in line
        # order, are already sorted runs, which the final sort merges rather than sorts.
        edges: dict[Edge, None] = {}
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
                edges[Edge("imports", module.name, module.path, dst, dst_path, imp.line)] = None
        # A file asks the same question many times (`self.assertEqual` in every test method):
        # the answer and its reads are those of the first time, and the reads are recorded.
        answers: dict[tuple[str, tuple[str, ...]], set[tuple[str, SymbolRef]]] = {}
        # The same answers qualified, (call kind, dst, dst path): `qualified` once per question
        # (its read recorded once, as every other time would record it again).
        qualified: dict[tuple[str, tuple[str, ...]], list[tuple[str, str, str]]] = {}
        scoped = module.scoped_names
        names_scoped: dict[tuple[str, ...], bool] = {}  # called values -> one names a scoped name
        sources: dict[str, str] = {}  # scope -> the edges' src
        for call in module.ir.calls:
            values = call.py_values
            # The scope matters only for names some function of the file binds.
            if scoped:
                named = names_scoped.get(values)
                if named is None:
                    named = names_scoped[values] = any(_split(v)[0] in scoped for v in values)
                question = (call.scope if named else "", values)
            else:
                question = ("", values)
            found = qualified.get(question)
            if found is None:
                targets = answers[question] = self.call_targets(module, call.scope, values)
                found = qualified[question] = [(kind, *self.qualified(target))
                                               for kind, target in targets]
            if not found:
                unresolved += 1
                continue
            src = sources.get(call.scope)
            if src is None:
                src = sources[call.scope] = (f"{module.name}.{call.scope}" if call.scope
                                             else module.name)
            for call_kind, dst, dst_path in found:
                edges[Edge("calls", src, path, dst, dst_path, call.line, call_kind)] = None
        edges.update(dict.fromkeys(self.argument_edges(module, answers)))
        for symbol in module.ir.symbols:
            if symbol.kind != SymbolKind.CLASS or module.symbols.get(symbol.local_name) is not symbol:
                continue
            cls = SymbolRef(module.path, symbol.local_name)
            for base in self.bases(cls):
                dst, dst_path = self.qualified(base)
                edges[Edge("inherits", f"{module.name}.{symbol.local_name}", module.path, dst,
                           dst_path, symbol.start_line)] = None
        deps.discard((module.path, ""))
        ordered = sorted(edges, key=_EDGE_ORDER)
        return FileResolution(path, ordered, deps, self.file_reads(path), unresolved)


def interface(path: str, module_name: str, ir: FileIR) -> dict[str, Hashable]:
    """The facts of one file that other files' resolutions can read (see `Read`)."""
    return _Module(module_name, path, ir, _Reads()).interface()
