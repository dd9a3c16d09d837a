"""Cross-file resolution for TypeScript and JavaScript (one family: TS imports JS and the other
way round), one file at a time, recording every fact of another file — or of the snapshot's file
set — each answer depended on (its *reads*), as Python's resolution does.

Module specifiers resolve as TypeScript's `bundler`/`node16` resolution does within a snapshot:
relative specifiers with extension probing (`.ts .tsx .d.ts .js .jsx .mts .cts .mjs .cjs`, a `.js`
specifier naming its `.ts` source), `index` files of directories, the nearest `tsconfig.json` /
`jsconfig.json`'s `paths` and `baseUrl` (through relative `extends` chains), and packages of the
snapshot by their `package.json` `name` (`exports` with conditions, `types`, `module`, `main`,
then `index`). Names: ES imports and exports (named, default, namespace, `export * from`,
`export * as ns`, re-export chains with cycles cut), CommonJS `require`, `module.exports` and
`exports.x`, dynamic `import()` with a literal, TS `import x = require()` and `export =`.
Calls: through imported names and namespaces, classes (`new C()` to its constructor, static
methods), `this.m()`, `super.m()` and `super()` through resolved `extends`, and members of values
whose type is known from `new`, an annotation (variables, parameters, fields, constructor
parameter properties) or a function's declared return type, `a.b().c()` chains included.
Interface method calls are `dispatch` edges to the interface's method.

Not resolved: types inferred without an annotation beyond `new`/declared return types, object
literal members, generics, `node_modules` and built-ins (they stay unresolved and counted).
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any

from codegraph.languages.common import Memo, Reads
from codegraph.languages.typescript import config as _config
from codegraph.model import Edge, Export, FileIR, FileResolution, Symbol, SymbolKind

# Read keys: "name", "sym:<local>" (kind and heritage), "bind:<scope>:<name>" (an import
# binding), "exp:<name>" (an export), "stars" (`export * from` specifiers), "type:<key>" (see
# FileIR.types), "config" (a configuration file's content); of the file set ("" as path):
# "file:<path>" (the file exists) and "pkgs" (the snapshot's package.json files).

CODE_EXTENSIONS = (".d.ts", ".d.mts", ".d.cts", ".ts", ".tsx", ".mts", ".cts", ".js", ".jsx",
                   ".mjs", ".cjs")
_PROBE = (".ts", ".tsx", ".d.ts", ".js", ".jsx", ".mts", ".cts", ".mjs", ".cjs")
_SOURCE_OF = {".js": (".ts", ".tsx", ".d.ts"), ".jsx": (".tsx",), ".mjs": (".mts", ".d.mts"),
              ".cjs": (".cts", ".d.cts")}
_CONFIG_NAMES = ("tsconfig.json", "jsconfig.json")
_CONDITIONS = ("types", "import", "module", "default", "require", "node")
_CONTAINERS = frozenset((SymbolKind.CLASS, SymbolKind.INTERFACE))
_INSTANTIABLE = _CONTAINERS | {SymbolKind.FUNCTION}


@dataclass(frozen=True)
class ModuleRef:
    path: str


@dataclass(frozen=True)
class SymbolRef:
    path: str
    local: str


@dataclass(frozen=True)
class InstanceRef:
    """A value whose type is the class or interface `cls`."""

    cls: SymbolRef


@dataclass(frozen=True)
class ObjectRef:
    """An exported object literal (`export default { a, b }`): its members are the exports
    `name.a`, `name.b` of `path`."""

    path: str
    name: str


Target = ModuleRef | SymbolRef | InstanceRef | ObjectRef


def is_config(path: str) -> bool:
    return path.endswith(".json")


def module_names(paths: list[str], root_name: str = "") -> dict[str, str]:
    """A module is named by its path without the extension (`src/util/strings`); configuration
    files by their path."""
    out = {}
    for path in paths:
        name = path
        for ext in CODE_EXTENSIONS:
            if path.endswith(ext):
                name = path[: -len(ext)]
                break
        out[path] = name
    return out


def namespace(modules: Mapping[str, str]) -> dict[str, Hashable]:
    facts: dict[str, Hashable] = {f"file:{p}": True for p in modules}
    facts["pkgs"] = tuple(sorted(p for p in modules if p.rpartition("/")[2] == "package.json"))
    return facts


class _Module:
    """One file's name tables; every lookup records its read."""

    def __init__(self, name: str, path: str, ir: FileIR, reads: Reads) -> None:
        self.name = name
        self.path = path
        self.ir = ir
        self._reads = reads
        self.symbols: dict[str, Symbol] = {}
        self.bindings: dict[str, dict[str, tuple[str, str | None]]] = {}
        self.exports: dict[str, Export] = {}
        self.stars: list[str] = []
        for symbol in ir.symbols:
            self.symbols.setdefault(symbol.local_name, symbol)
        for imp in ir.imports:
            bound = imp.alias or (imp.name if imp.name not in (None, "default", "=") else None)
            if bound is not None:
                self.bindings.setdefault(imp.scope, {})[bound] = (imp.module, imp.name)
        for export in ir.exports:
            if export.name == "*":
                if export.module is not None:
                    self.stars.append(export.module)
            else:
                self.exports.setdefault(export.name, export)

    def interface(self) -> dict[str, Hashable]:
        facts: dict[str, Hashable] = {"name": self.name, "stars": tuple(self.stars)}
        if self.ir.config is not None:
            facts["config"] = self.ir.config
        for local, symbol in self.symbols.items():
            facts[f"sym:{local}"] = (symbol.kind, symbol.bases)
        for scope, names in self.bindings.items():
            for bound, binding in names.items():
                facts[f"bind:{scope}:{bound}"] = binding
        for name, export in self.exports.items():
            facts[f"exp:{name}"] = (export.local, export.module)
        for key, value in self.ir.types.items():
            facts[f"type:{key}"] = value
        return facts

    def symbol(self, local: str) -> Symbol | None:
        self._reads.top.add((self.path, f"sym:{local}"))
        return self.symbols.get(local)

    def binding(self, scope: str, name: str) -> tuple[str, str | None] | None:
        self._reads.top.add((self.path, f"bind:{scope}:{name}"))
        return self.bindings.get(scope, {}).get(name)

    def export(self, name: str) -> Export | None:
        self._reads.top.add((self.path, f"exp:{name}"))
        return self.exports.get(name)

    def star_exports(self) -> list[str]:
        self._reads.top.add((self.path, "stars"))
        return self.stars

    def type_of(self, key: str) -> str | None:
        self._reads.top.add((self.path, f"type:{key}"))
        return self.ir.types.get(key)

    def config(self) -> dict[str, Any]:
        self._reads.top.add((self.path, "config"))
        return _config.parsed(self.ir)

    def module_name(self) -> str:
        self._reads.top.add((self.path, "name"))
        return self.name


def _join(directory: str, relative: str) -> str | None:
    """`directory/relative` normalised; None when it leaves the snapshot's root."""
    joined = posixpath.normpath(posixpath.join(directory, relative)) if directory else \
        posixpath.normpath(relative)
    if joined == ".":
        return ""
    if joined.startswith("../") or joined == ".." or joined.startswith("/"):
        return None
    return joined


@dataclass(frozen=True)
class _Config:
    base_url: str | None  # a directory of the snapshot
    paths_base: str
    paths: tuple[tuple[str, tuple[str, ...]], ...]


class Resolver(Memo):
    def __init__(self, modules: Mapping[str, str], load_ir: Callable[[str], FileIR]) -> None:
        super().__init__()
        self.modules = modules
        self.load_ir = load_ir
        self._loaded: dict[str, _Module] = {}

    def by_path(self, path: str) -> _Module:
        module = self._loaded.get(path)
        if module is None:
            module = _Module(self.modules[path], path, self.load_ir(path), self._reads)
            self._loaded[path] = module
        return module

    def exists(self, path: str) -> bool:
        self.read("", f"file:{path}")
        return path in self.modules

    # ----- module specifiers ---------------------------------------------------------------

    def resolve_spec(self, from_path: str, spec: str) -> str | None:
        directory = posixpath.dirname(from_path)
        found: str | None = self.memoised(("spec", directory, spec),
                                          lambda: self._resolve_spec(directory, spec), None)
        return found

    def _resolve_spec(self, directory: str, spec: str) -> str | None:
        if spec in (".", "..") or spec.startswith(("./", "../")):
            base = _join(directory, spec)
            return self.probe(base) if base is not None else None
        if spec.startswith("/") or ":" in spec.partition("/")[0]:
            return None  # absolute paths, `node:fs`, URLs: outside the snapshot
        cfg = self.config_for(directory)
        if cfg is not None:
            for pattern, targets in sorted(cfg.paths, key=lambda p: -len(p[0].partition("*")[0])):
                star = _match(pattern, spec)
                if star is None:
                    continue
                for target in targets:
                    candidate = _join(cfg.paths_base, target.replace("*", star, 1))
                    found = self.probe(candidate) if candidate is not None else None
                    if found is not None:
                        return found
            if cfg.base_url is not None:
                candidate = _join(cfg.base_url, spec)
                found = self.probe(candidate) if candidate is not None else None
                if found is not None:
                    return found
        return self.package_entry(spec)

    def probe(self, base: str) -> str | None:
        """The file a specifier path names: itself, its TS source for a `.js` name, with an
        extension added, or its directory's `index`."""
        stem, ext = posixpath.splitext(base)
        candidates: list[str] = []
        if ext in _SOURCE_OF:
            candidates.extend(stem + source for source in _SOURCE_OF[ext])
        if ext in _PROBE or base.endswith(".json"):
            candidates.append(base)
        candidates.extend(base + e for e in _PROBE)
        prefix = f"{base}/index" if base else "index"
        candidates.extend(prefix + e for e in _PROBE)
        for candidate in candidates:
            if self.exists(candidate) and not is_config(candidate):
                return candidate
        return None

    def config_for(self, directory: str) -> _Config | None:
        found: _Config | None = self.memoised(("config_for", directory),
                                              lambda: self._config_for(directory), None)
        return found

    def _config_for(self, directory: str) -> _Config | None:
        for name in _CONFIG_NAMES:
            path = f"{directory}/{name}" if directory else name
            if self.exists(path):
                return self.load_config(path)
        if not directory:
            return None
        return self.config_for(posixpath.dirname(directory))

    def load_config(self, path: str) -> _Config | None:
        found: _Config | None = self.memoised(("tsconfig", path), lambda: self._load_config(path),
                                              None)
        return found

    def _load_config(self, path: str) -> _Config | None:
        data = self.by_path(path).config()
        directory = posixpath.dirname(path)
        parent: _Config | None = None
        extends = data.get("extends")
        for ext in ([extends] if isinstance(extends, str) else extends or []):
            if isinstance(ext, str) and ext.startswith("."):
                target = _join(directory, ext if ext.endswith(".json") else f"{ext}.json")
                if target is not None and self.exists(target):
                    parent = self.load_config(target) or parent
        options = data.get("compilerOptions") or {}
        base_url = parent.base_url if parent else None
        own_base = options.get("baseUrl") if isinstance(options, dict) else None
        if isinstance(own_base, str):
            base_url = _join(directory, own_base)
        paths = options.get("paths") if isinstance(options, dict) else None
        if isinstance(paths, dict):
            table = tuple(sorted((k, tuple(t for t in v if isinstance(t, str)))
                                 for k, v in paths.items() if isinstance(v, list)))
            return _Config(base_url, base_url if base_url is not None else directory, table)
        if parent is not None:  # inherited `paths` are relative to the final `baseUrl`, if any
            own = isinstance(own_base, str) and base_url is not None
            return _Config(base_url, base_url if own and base_url is not None else parent.paths_base,
                           parent.paths)
        return _Config(base_url, base_url if base_url is not None else directory, ())

    def packages(self) -> dict[str, str]:
        """Package name -> its directory, for the snapshot's `package.json` files."""
        table: dict[str, str] = self.memoised(("packages",), self._packages, {})
        return table

    def _packages(self) -> dict[str, str]:
        self.read("", "pkgs")
        table: dict[str, str] = {}
        for path in sorted(p for p in self.modules if p.rpartition("/")[2] == "package.json"):
            name = self.by_path(path).config().get("name")
            if isinstance(name, str):
                table.setdefault(name, posixpath.dirname(path))
        return table

    def package_entry(self, spec: str) -> str | None:
        parts = spec.split("/")
        count = 2 if spec.startswith("@") else 1
        name, sub = "/".join(parts[:count]), "/".join(parts[count:])
        directory = self.packages().get(name)
        if directory is None:
            return None
        data = self.by_path(f"{directory}/package.json" if directory else "package.json").config()
        exports = data.get("exports")
        target: str | None = None
        if exports is not None:
            key = f"./{sub}" if sub else "."
            if isinstance(exports, dict) and any(k.startswith(".") for k in exports):
                entry = exports.get(key)
                if entry is None:
                    for pattern, value in exports.items():
                        star = _match(pattern, key)
                        if star is not None and "*" in pattern:
                            picked = _condition(value)
                            entry = picked.replace("*", star) if picked else None
                            break
                target = _condition(entry)
            elif not sub:
                target = _condition(exports)
        if target is None and not sub:
            for field in ("types", "typings", "module", "main"):
                value = data.get(field)
                if isinstance(value, str):
                    target = value
                    break
        candidate = _join(directory, target if target is not None else (sub or "index"))
        return self.probe(candidate) if candidate is not None else None

    # ----- names -------------------------------------------------------------------------

    def export(self, path: str, name: str) -> Target | None:
        found: Target | None = self.memoised(("export", path, name),
                                             lambda: self._export(path, name), None)
        return found

    def _export(self, path: str, name: str) -> Target | None:
        module = self.by_path(path)
        entry = module.export(name)
        if entry is not None:
            return self._export_entry(module, entry)
        if name == "default":
            equals = module.export("=")
            if equals is not None:
                return self._export_entry(module, equals)
            return None
        equals = module.export("=")
        if equals is not None and equals.module is not None:  # module.exports = require(...)
            target = self.resolve_spec(path, equals.module)
            found = self.export(target, name) if target is not None else None
            if found is not None:
                return found
        elif equals is not None and equals.local not in ("", "*", "{}"):  # module.exports = obj
            value = self._export_entry(module, equals)
            found = self.member(value, name) if isinstance(value, SymbolRef) else None
            if found is not None:
                return found
        for spec in module.star_exports():
            target = self.resolve_spec(path, spec)
            if target is not None:
                found = self.export(target, name)
                if found is not None:
                    return found
        return None

    def _export_entry(self, module: _Module, entry: Export) -> Target | None:
        if entry.module is not None:
            target = self.resolve_spec(module.path, entry.module)
            if target is None:
                return None
            if entry.local == "*":
                return (self.export(target, "=") if entry.name == "=" else None) or ModuleRef(target)
            return self.export(target, entry.local)
        if not entry.local:
            return None
        if entry.local == "*":  # `module.exports = { ... }`: the module's own namespace
            return ModuleRef(module.path)
        if entry.local == "{}":
            return ObjectRef(module.path, entry.name)
        if entry.local == "default" and module.symbol("default") is not None:
            return SymbolRef(module.path, "default")
        own = module.symbol(entry.local) if "." not in entry.local else None
        if own is not None and own.kind == SymbolKind.METHOD:  # `module.exports = { m() {} }`
            return SymbolRef(module.path, entry.local)
        return self.dotted(module, "", entry.local)

    def binding_target(self, module: _Module, binding: tuple[str, str | None]) -> Target | None:
        spec, name = binding
        target = self.resolve_spec(module.path, spec)
        if target is None:
            return None
        if name is None:
            return ModuleRef(target)
        if name == "=":
            return self.export(target, "=") or ModuleRef(target)
        return self.export(target, name)

    def name_in_scope(self, module: _Module, scope: str, name: str) -> Target | None:
        parts = scope.split(".") if scope else []
        while parts:
            prefix = ".".join(parts)
            enclosing = module.symbol(prefix)
            if enclosing is not None and enclosing.kind not in _CONTAINERS:
                if module.symbol(f"{prefix}.{name}") is not None:
                    return SymbolRef(module.path, f"{prefix}.{name}")
                declared = module.type_of(f"{prefix}:{name}")
                if declared is not None:
                    return self.typed(module.path, prefix, declared)
                binding = module.binding(prefix, name)
                if binding is not None:
                    return self.binding_target(module, binding)
                if enclosing.kind == SymbolKind.METHOD and \
                        module.type_of(f"{prefix}:this") is not None:
                    break  # `obj.m = function`: its lexical scope is the module's, not obj's
            parts.pop()
        symbol = module.symbol(name)
        if symbol is not None and symbol.kind != SymbolKind.METHOD:
            # (a method without a class, `module.exports = { m() {} }`'s, is no lexical name)
            if symbol.kind == SymbolKind.VARIABLE:
                binding = module.binding("", name)  # `const x = require("m")`: the import
                if binding is not None:
                    return self.binding_target(module, binding)
                declared = module.type_of(f":{name}")
                return self.typed(module.path, "", declared) if declared is not None \
                    else SymbolRef(module.path, name)
            return SymbolRef(module.path, name)
        binding = module.binding("", name)
        if binding is not None:
            return self.binding_target(module, binding)
        return None

    def typed(self, path: str, scope: str, expr: str) -> Target | None:
        """A value of the type `expr` names in `scope` of `path` (`f()`: of f's return type;
        `=x.y`: the value x.y itself, whatever it is)."""
        found: Target | None = self.memoised(("typed", path, scope, expr),
                                             lambda: self._typed(path, scope, expr), None)
        return found

    def _typed(self, path: str, scope: str, expr: str) -> Target | None:
        module = self.by_path(path)
        if expr.startswith("="):
            return self.dotted(module, scope, expr[1:])
        if expr.startswith("^"):  # a callback's parameter, typed by the function it is passed to
            position, _, callee = expr[1:].partition(":")
            fn = self.dotted(module, scope, callee)
            if not isinstance(fn, SymbolRef):
                return None
            argument, _, parameter = position.partition(".")
            declared = self.by_path(fn.path).type_of(f"{fn.local}:({argument}).{parameter}")
            return self.typed(fn.path, fn.local, declared) if declared is not None else None
        if expr == "?":
            return None
        if expr.endswith("()"):
            return self.call_result(self.dotted(module, scope, expr[:-2]))
        target = self.dotted(module, scope, expr)
        if isinstance(target, SymbolRef):
            symbol = self.symbol(target)
            if symbol is not None and symbol.kind in _INSTANTIABLE:
                return InstanceRef(target)  # of a class, interface or constructor function
        return None

    def call_result(self, target: Target | None) -> Target | None:
        if not isinstance(target, SymbolRef):
            return None
        module = self.by_path(target.path)
        symbol = module.symbol(target.local)
        if symbol is None or symbol.kind not in (SymbolKind.FUNCTION, SymbolKind.METHOD):
            return None
        declared = module.type_of(f"{target.local}:()")
        return self.typed(target.path, target.local, declared) if declared is not None else None

    def symbol(self, ref: SymbolRef) -> Symbol | None:
        return self.by_path(ref.path).symbol(ref.local)

    def member(self, target: Target, name: str) -> Target | None:
        if isinstance(target, ModuleRef):
            return self.export(target.path, name)
        if isinstance(target, ObjectRef):
            return self.export(target.path, f"{target.name}.{name}")
        if isinstance(target, InstanceRef):
            found = self.class_member(target.cls, name)
            if found is not None:
                return found
            cls = self.symbol(target.cls)  # a constructor function's typed names are its locals
            return self.field_type(target.cls, name) if cls is not None and \
                cls.kind in _CONTAINERS else None
        symbol = self.symbol(target)
        if symbol is None:
            return None
        if symbol.kind == SymbolKind.CLASS:
            return self.class_member(target, name)
        if symbol.kind in (SymbolKind.VARIABLE, SymbolKind.FUNCTION):
            # `obj.m = function` / `C.s = function` at module level: a member of that value
            nested = f"{target.local}.{name}"
            module = self.by_path(target.path)
            return SymbolRef(target.path, nested) if module.type_of(f"{nested}:this") is not None \
                else None
        if symbol.kind in (SymbolKind.NAMESPACE, SymbolKind.ENUM):
            nested = f"{target.local}.{name}"
            return SymbolRef(target.path, nested) if self.by_path(target.path).symbol(nested) else None
        return None

    def class_member(self, cls: SymbolRef, name: str, skip_self: bool = False) -> SymbolRef | None:
        found: SymbolRef | None = self.memoised(
            ("member", cls, name, skip_self), lambda: self._class_member(cls, name, skip_self), None)
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
                module = self.by_path(current.path)
                own = module.symbol(current.local)
                prototype = own is not None and own.kind == SymbolKind.FUNCTION
                member = f"{current.local}.prototype.{name}" if prototype else \
                    f"{current.local}.{name}"
                if module.symbol(member) is not None:
                    return SymbolRef(current.path, member)
                if module.type_of(f"{current.local}:{name}") is not None:
                    return None  # a field of that name hides the bases' members
            todo[0:0] = self.bases(current)
        return None

    def field_type(self, cls: SymbolRef, name: str) -> Target | None:
        seen: set[SymbolRef] = set()
        todo = [cls]
        while todo:
            current = todo.pop(0)
            if current in seen:
                continue
            seen.add(current)
            declared = self.by_path(current.path).type_of(f"{current.local}:{name}")
            if declared is not None:
                return self.typed(current.path, current.local, declared)
            todo[0:0] = self.bases(current)
        return None

    def bases(self, cls: SymbolRef) -> list[SymbolRef]:
        result: list[SymbolRef] = self.memoised(("bases", cls), lambda: self._bases(cls), [])
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
                if base_symbol is not None and base_symbol.kind in _CONTAINERS:
                    out.append(found)
        return out

    def enclosing_class(self, module: _Module, scope: str) -> SymbolRef | None:
        parts = scope.split(".") if scope else []
        while parts:
            parts.pop()
            prefix = ".".join(parts)
            symbol = module.symbol(prefix) if prefix else None
            if symbol is not None and symbol.kind == SymbolKind.CLASS:
                return SymbolRef(module.path, prefix)
        return None

    def this_value(self, module: _Module, scope: str) -> Target | None:
        """What `this` is in `scope`: what the innermost enclosing definition states (`this:`
        types of functions assigned to members) or, inside a class, an instance of it."""
        parts = scope.split(".") if scope else []
        while parts:
            prefix = ".".join(parts)
            declared = module.type_of(f"{prefix}:this")
            if declared is not None:
                return self.typed(module.path, "", declared)
            parts.pop()
            symbol = module.symbol(".".join(parts)) if parts else None
            if symbol is not None and symbol.kind == SymbolKind.CLASS:
                return InstanceRef(SymbolRef(module.path, ".".join(parts)))
        return None

    def base_class(self, module: _Module, scope: str) -> SymbolRef | None:
        cls = self.enclosing_class(module, scope)
        if cls is None:
            return None
        for base in self.bases(cls):
            symbol = self.symbol(base)
            if symbol is not None and symbol.kind == SymbolKind.CLASS:
                return base
        return None

    def dotted(self, module: _Module, scope: str, expr: str) -> Target | None:
        target: Target | None
        if expr.startswith("new "):  # `new C().m`: a member of a new C
            constructor, _, rest = expr[4:].partition("()")
            cls = self.dotted(module, scope, constructor)
            target = InstanceRef(cls) if isinstance(cls, SymbolRef) and \
                (symbol := self.symbol(cls)) is not None and symbol.kind == SymbolKind.CLASS else None
            for part in rest.split(".")[1:]:
                if target is None:
                    return None
                call = part.endswith("()")
                target = self.member(target, part[:-2] if call else part)
                if call:
                    target = self.call_result(target)
            return target
        parts = expr.split(".")
        head = parts[0]
        call = head.endswith("()")
        name = head[:-2] if call else head
        if name == "this":
            target = self.this_value(module, scope)
        elif name in ("exports", "module") and module.binding("", name) is None and \
                module.symbol(name) is None and (name == "exports" or parts[1:2] == ["exports"]):
            target = ModuleRef(module.path)  # CommonJS: the file's own exports
            parts = parts[1:] if name == "module" else parts
        elif name == "super":
            base = self.base_class(module, scope)
            target = InstanceRef(base) if base is not None else None
        else:
            target = self.name_in_scope(module, scope, name)
        if call:
            target = self.call_result(target)
        for part in parts[1:]:
            if target is None:
                return None
            call = part.endswith("()")
            target = self.member(target, part[:-2] if call else part)
            if call:
                target = self.call_result(target)
        return target

    def constructor(self, cls: SymbolRef) -> SymbolRef:
        return self.class_member(cls, "constructor") or cls

    def call_target(self, module: _Module, scope: str, callee: str) -> tuple[SymbolRef, str] | None:
        """What a call site calls, and how ("direct", "constructor", "dispatch")."""
        if callee.startswith("new ") and "()" not in callee:
            target = self.dotted(module, scope, callee[4:])
            if isinstance(target, SymbolRef):
                symbol = self.symbol(target)
                if symbol is not None and symbol.kind == SymbolKind.CLASS:
                    return self.constructor(target), "constructor"
                if symbol is not None and symbol.kind == SymbolKind.FUNCTION:
                    return target, "constructor"  # an ES5 constructor function
            return None
        if callee == "super":
            base = self.base_class(module, scope)
            return (self.constructor(base), "constructor") if base is not None else None
        target = self.dotted(module, scope, callee)
        if not isinstance(target, SymbolRef):
            return None
        symbol = self.symbol(target)
        if symbol is None or symbol.kind not in (SymbolKind.FUNCTION, SymbolKind.METHOD):
            return None
        owner = target.local.rpartition(".")[0]
        owner_symbol = self.by_path(target.path).symbol(owner) if owner else None
        kind = "dispatch" if owner_symbol is not None and owner_symbol.kind == SymbolKind.INTERFACE \
            else "direct"
        return target, kind

    # ----- output ------------------------------------------------------------------------

    def qualified(self, ref: ModuleRef | SymbolRef) -> tuple[str, str]:
        name = self.by_path(ref.path).module_name()
        if isinstance(ref, ModuleRef):
            return name, ref.path
        return f"{name}.{ref.local}", ref.path

    def resolve_file(self, path: str) -> FileResolution:
        self.start_file()
        module = self.by_path(path)
        edges: set[Edge] = set()
        deps: set[tuple[str, str]] = set()
        unresolved = 0
        if module.ir.config is not None:
            return FileResolution(path, [], set(), set(), 0)
        references = [(imp.module, imp.name, imp.line) for imp in module.ir.imports]
        references.extend((e.module, e.local, e.line) for e in module.ir.exports
                          if e.module is not None)
        for spec, name, line in references:
            target = self.resolve_spec(path, spec)
            if target is None:
                continue
            dst, dst_path = self.qualified(ModuleRef(target))
            if dst_path != path:
                edges.add(Edge("imports", module.name, path, dst, dst_path, line))
            deps.add((target, "" if name in (None, "*", "=") else name))
            if name not in (None, "*", "="):
                imported = self.export(target, name)
                if isinstance(imported, SymbolRef):
                    dst, dst_path = self.qualified(imported)
                    deps.add((dst_path, imported.local))
                    edges.add(Edge("imports", module.name, path, dst, dst_path, line))
        answers: dict[tuple[str, str], tuple[SymbolRef, str] | None] = {}
        for call in module.ir.calls:
            question = (call.scope, call.callee)
            if question in answers:
                found = answers[question]
            else:
                found = answers[question] = self.call_target(module, call.scope, call.callee)
            if found is None:
                unresolved += 1
                continue
            target, kind = found
            src = f"{module.name}.{call.scope}" if call.scope else module.name
            dst, dst_path = self.qualified(target)
            edges.add(Edge("calls", src, path, dst, dst_path, call.line, kind))
        for symbol in module.ir.symbols:
            if symbol.kind not in _CONTAINERS or module.symbols.get(symbol.local_name) is not symbol:
                continue
            for base in self.bases(SymbolRef(path, symbol.local_name)):
                dst, dst_path = self.qualified(base)
                edges.add(Edge("inherits", f"{module.name}.{symbol.local_name}", path, dst,
                               dst_path, symbol.start_line))
        deps.discard((path, ""))
        ordered = sorted(edges, key=lambda e: (e.line, e.kind, e.src, e.dst, e.dst_path))
        return FileResolution(path, ordered, deps, self.file_reads(path), unresolved)


def _match(pattern: str, spec: str) -> str | None:
    """What `*` stands for when `spec` matches a `paths`/`exports` pattern ("" for an exact
    match); None when it does not match."""
    if "*" not in pattern:
        return "" if pattern == spec else None
    prefix, _, suffix = pattern.partition("*")
    if spec.startswith(prefix) and spec.endswith(suffix) and len(spec) >= len(prefix) + len(suffix):
        return spec[len(prefix): len(spec) - len(suffix)]
    return None


def _condition(entry: object) -> str | None:
    """The target of a package.json `exports` entry: a string, or the first condition of ours."""
    if isinstance(entry, str):
        return entry
    if isinstance(entry, list):
        for item in entry:
            found = _condition(item)
            if found is not None:
                return found
        return None
    if isinstance(entry, dict):
        for condition in _CONDITIONS:
            if condition in entry:
                found = _condition(entry[condition])
                if found is not None:
                    return found
    return None


def interface(path: str, module_name: str, ir: FileIR) -> dict[str, Hashable]:
    return _Module(module_name, path, ir, Reads()).interface()
