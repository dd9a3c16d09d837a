"""The values that flow between stages: per-file IR, chunks, graph edges.

Per-file values (`FileIR`, `Chunk`) depend only on a file's bytes, its path (the embedded
windows carry it), the stage version and its configuration, so they can be stored once per
content hash (`snapshot.content_hash`: the bytes seeded by the path) and reused by every
snapshot that holds those bytes at that path. Names inside them are
*local* (``Class.method``); the module prefix is added per snapshot, where the path is known.

The structs hold only strings, numbers and other such structs, so they cannot be part of a
reference cycle: `gc=False` keeps them out of the cyclic garbage collector, whose full passes
otherwise walk every symbol and call site of every IR a resolution has loaded (profiled: up to
100 ms of a small update).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import msgspec


class SymbolKind(StrEnum):
    MODULE = "module"
    CLASS = "class"
    FUNCTION = "function"
    METHOD = "method"
    VARIABLE = "variable"
    INTERFACE = "interface"
    TYPE = "type"  # a type alias
    ENUM = "enum"
    NAMESPACE = "namespace"  # a TypeScript `namespace N {}` / `module N {}`
    STRUCT = "struct"  # Go
    CONSTANT = "constant"  # Go


class Symbol(msgspec.Struct, frozen=True, array_like=True, gc=False):
    local_name: str  # "" for the module itself, else e.g. "Class.method"
    kind: str
    start_line: int  # 1-based, inclusive
    end_line: int
    signature: str
    docstring: str
    bases: tuple[str, ...] = ()  # class bases as written (dotted names only)


class Import(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """One imported binding. ``import a.b`` -> module="a.b", name=None, alias=None.

    ``from ..m import x as y`` -> level=2, module="m", name="x", alias="y".
    ``from m import *`` -> name="*".
    """

    module: str
    name: str | None
    alias: str | None
    level: int
    line: int
    scope: str  # local name of the enclosing function/class, "" at module level


class CallSite(msgspec.Struct, frozen=True, array_like=True, gc=False):
    scope: str  # local name of the enclosing function ("" at module level)
    callee: str  # dotted expression as written: "f", "self.m", "mod.f", "super().m"; else ""
    line: int
    # Python: the values the called expression may have, locals substituted away
    # (`languages/python/values.py` gives the syntax), e.g. ("Foo().run", "<i:C>.m").
    py_values: tuple[str, ...] = ()
    # Python: arguments that may be functions or classes, "<position or keyword>=<value>".
    py_args: tuple[str, ...] = ()


class PyValues(msgspec.Struct, frozen=True, gc=False):
    """Python: the value facts of one file that resolution evaluates (`languages/python/values.py`),
    all flow-insensitive, in value-expression syntax, keyed by local names."""

    returns: dict[str, tuple[str, ...]]  # function -> what it may return (its annotation too)
    yields: dict[str, tuple[str, ...]]  # generator function -> what it may yield
    params: dict[str, tuple[str, ...]]  # function -> its parameter names
    attrs: dict[str, tuple[tuple[str, str], ...]]  # "Class:attr" -> (scope, value)
    variables: dict[str, tuple[str, ...]]  # module-level name -> values (scope "")
    boxes: dict[str, tuple[tuple[str, tuple[str, ...]], ...]]  # "scope:target" -> (key, values)
    decorators: dict[str, tuple[str, ...]]  # def -> its decorators' values, outermost first


class Export(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """One name a module exports (languages with explicit exports: TS/JS).

    ``export {a as b}`` -> name="b", local="a", module=None; ``export {a as b} from "m"`` ->
    module="m"; ``export * from "m"`` -> name="*", local="*"; ``export * as ns from "m"`` ->
    name="ns", local="*"; CommonJS ``module.exports = x`` -> name="=", local="x".
    """

    name: str
    local: str
    module: str | None
    line: int


class TypeRef(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """A declared or inferred type, for languages whose resolution follows types (Go).

    kind "field" / "embed": a struct field or embedded type of struct `scope`; "var": a variable
    or parameter `name` of function `scope` ("" at package level); "result": result number
    `name` of function `scope`; "replace": a go.mod `replace name => type` to a local path.
    type: the type as written without pointers ("T", "pkg.T"), or "=callee" / "=callee#i":
    the first / i-th result of what `callee` (a dotted expression) resolves to.
    """

    kind: str
    scope: str
    name: str
    type: str


class FileIR(msgspec.Struct, frozen=True, gc=False):
    """What L1 extracts from one file, before any cross-file resolution."""

    symbols: list[Symbol]
    imports: list[Import]
    calls: list[CallSite]
    all_names: list[str] | None  # a literal ``__all__``, when the module has one
    syntax_errors: int  # number of ERROR/MISSING nodes; tree-sitter still yields the rest
    exports: list[Export] = msgspec.field(default_factory=list)
    # Declared or inferred types, "scope:name" -> a type expression as written ("Client",
    # "ns.Client", "makeClient()" for a call's result); "Class:field" for fields and
    # "fn:()" for a function's return type. Used to resolve `x.m()` through x's type.
    types: dict[str, str] = msgspec.field(default_factory=dict)
    config: str | None = None  # a configuration file's relevant content (tsconfig, package.json)
    package: str = ""  # Go: the package clause's name
    typed: list[TypeRef] = msgspec.field(default_factory=list)  # Go: see TypeRef
    py_values: PyValues | None = None  # Python only
    # Facts of the snapshot this file contributes to, by "@" key (see `Language.interface`):
    # a resolver that looks them up across every file loads this field alone (the rest of the
    # stored IR is skipped, not decoded). Python: "@sub:<base name>" -> (class, its methods),
    # "@pass:<callee name>" -> (scope, called values, arguments).
    index: dict[str, tuple[tuple[str | tuple[str, ...], ...], ...]] = msgspec.field(
        default_factory=dict)


class Chunk(msgspec.Struct, frozen=True, array_like=True, gc=False):
    ordinal: int
    start_line: int
    end_line: int
    symbol: str  # local name of the enclosing symbol, "" for module-level code
    text: str
    text_hash: str


class Edge(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """A resolved cross-file fact of one snapshot.

    kind: "imports" (file -> module or symbol), "calls" (symbol -> symbol),
    "inherits" (class -> class). src/dst are qualified names.
    call_kind: "" for non-call edges; for calls "direct" (the callee itself), "constructor" (a
    class called: the class and its `__init__`/`__new__`) or "dispatch" (an override in a
    subclass that a call on `self`/`cls` may reach at run time).
    """

    kind: str
    src: str
    src_path: str
    dst: str
    dst_path: str
    line: int
    call_kind: str = ""  # calls: "direct" | "constructor" | "dispatch"


class FileError(msgspec.Struct, frozen=True, gc=False):
    path: str
    reason: str


# A fact of a snapshot that one file's resolution depended on: (path of the file it belongs to,
# key), or ("", key) for facts about the module namespace. Keys are the language's business.
Read = tuple[str, str]


@dataclass
class FileResolution:
    """One file's cross-file result within a snapshot (the per-file unit of L1's second half)."""

    path: str
    edges: list[Edge]
    deps: set[tuple[str, str]]  # (dependency path, symbol name or "" for the whole module)
    reads: set[Read] = field(default_factory=set)  # facts of *other* files the result used
    unresolved_calls: int = 0
