"""L1 for Go: symbols, imports, call sites and the types resolution follows, from one file's
tree-sitter tree; and the facts of a `go.mod` (recognised by its content: a Go file starts with
`package`, a go.mod with `module`).

Local names: functions `F`, methods `Type.Method` (the receiver's type without pointer or type
parameters), types `T`, interface methods `Iface.Method`, package-level consts and vars `C`.
Declarations are the source file's direct children, read without a query; call sites and local
variables come from one query pass over the bodies.
"""

from __future__ import annotations

import functools
import re

import tree_sitter as ts
import tree_sitter_go as tsg

from codegraph.languages.common import (
    MAX_SIGNATURE,
    Def,
    Scopes,
    count_errors,
    doc_comment,
    signature,
    squash,
    text,
)
from codegraph.model import CallSite, FileIR, Import, Symbol, SymbolKind, TypeRef

LANGUAGE = ts.Language(tsg.language())

_FACTS = ts.Query(
    LANGUAGE,
    """
    (call_expression function: (_) @callee)
    (type_conversion_expression type: [(generic_type) (qualified_type)] @conv)
    (short_var_declaration) @short
    (var_spec) @var
    (range_clause left: (expression_list (identifier) @declared))
    (type_switch_statement alias: (expression_list (identifier) @declared))
    (func_literal parameters: (parameter_list) @params)
    """,
)
_ERRORS = ts.Query(LANGUAGE, "(ERROR) @err")

_GOMOD_START = re.compile(r"\A(?:\s|//[^\n]*\n)*module\s", re.S)
_GOMOD_MODULE = re.compile(r"^\s*module\s+\"?([^\s\"]+)\"?", re.M)
_GOMOD_REPLACE_LINE = re.compile(r"^\s*(?:replace\s+)?(\S+)(?:\s+v\S+)?\s+=>\s+(\S+)(?:\s+v\S+)?\s*$")


def parser() -> ts.Parser:
    return ts.Parser(LANGUAGE)


@functools.lru_cache(maxsize=64)
def parse(source: str) -> ts.Tree:
    return parser().parse(source.encode("utf-8"))


def is_gomod(source: str) -> bool:
    return _GOMOD_START.match(source) is not None


def gomod_module(source: str) -> str | None:
    """The module path a go.mod declares."""
    found = _GOMOD_MODULE.search(source)
    return found.group(1) if found else None


def _gomod(source: str) -> FileIR:
    lines = source.splitlines()
    module = gomod_module(source) or ""
    replaces: list[TypeRef] = []
    in_block = False
    for raw in lines:
        line = raw.split("//", 1)[0].strip()
        if line.startswith("replace") and line.rstrip().endswith("("):
            in_block = True
            continue
        if in_block and line == ")":
            in_block = False
            continue
        if in_block or line.startswith("replace"):
            found = _GOMOD_REPLACE_LINE.match(line)
            if found is not None and found.group(2).startswith((".", "/")):
                replaces.append(TypeRef("replace", "", found.group(1), found.group(2)))
    replaces.sort(key=lambda r: r.name)
    module_symbol = Symbol("", SymbolKind.MODULE, 1, max(len(lines), 1), f"module {module}", "")
    return FileIR([module_symbol], [], [], None, 0, typed=replaces)


def type_name(node: ts.Node | None) -> str | None:
    """A named type as written, without pointers, parentheses or type arguments."""
    while node is not None:
        kind = node.type
        if kind == "type_identifier":
            return text(node)
        if kind == "qualified_type":
            return f"{text(node.child_by_field_name('package'))}.{text(node.child_by_field_name('name'))}"
        if kind == "pointer_type" or kind == "parenthesized_type":
            node = node.named_children[0] if node.named_child_count else None
        elif kind == "generic_type":
            node = node.child_by_field_name("type")
        else:
            return None
    return None


def dotted(node: ts.Node | None) -> str | None:
    """A callee or value as a dotted expression: `f`, `pkg.F`, `x.f.M`, `f().M` (the result of
    a call), generic instantiations without their arguments; else None."""
    if node is None:
        return None
    kind = node.type
    if kind in ("identifier", "type_identifier", "field_identifier", "package_identifier"):
        return text(node)
    if kind == "selector_expression":
        base = dotted(node.child_by_field_name("operand"))
        field = node.child_by_field_name("field")
        return None if base is None or field is None else f"{base}.{text(field)}"
    if kind == "index_expression":  # F[int](x): a generic function's instantiation
        return dotted(node.child_by_field_name("operand"))
    if kind == "generic_type":
        return dotted(node.child_by_field_name("type"))
    if kind == "qualified_type":
        return type_name(node)
    if kind == "call_expression":
        base = dotted(node.child_by_field_name("function"))
        return None if base is None else f"{base}()"
    return None


def _value_type(node: ts.Node, index: int, values: int) -> str | None:
    """The type of an assigned value: a composite literal's type, or the result of a call."""
    if node.type == "unary_expression" and node.named_child_count == 1:
        node = node.named_children[0]
    if node.type == "composite_literal":
        return type_name(node.child_by_field_name("type"))
    if node.type == "call_expression":
        callee = dotted(node.child_by_field_name("function"))
        if callee is None:
            return None
        return f"={callee}" if index == 0 or values > 1 else f"={callee}#{index}"
    return None


def _assigned(left: ts.Node | None, right: ts.Node | None, scope: str) -> list[TypeRef]:
    if left is None or right is None:
        return []
    names = [c for c in left.named_children if c.type == "identifier"]
    values = right.named_children if right.type == "expression_list" else [right]
    out = []
    for i, name in enumerate(names):
        value = values[i] if len(values) > 1 and i < len(values) else values[0] if values else None
        if value is None or (len(values) > 1 and i >= len(values)):
            if text(name) != "_":
                out.append(TypeRef("var", scope, text(name), ""))
            continue
        found = _value_type(value, i if len(values) == 1 else 0, 1 if len(values) == 1 else 2)
        if text(name) != "_":
            out.append(TypeRef("var", scope, text(name), found or ""))
    return out


def _params(params: ts.Node | None, scope: str, kind: str) -> list[TypeRef]:
    out: list[TypeRef] = []
    if params is None:
        return out
    if params.type != "parameter_list":  # a single unnamed result type
        name = type_name(params)
        return [TypeRef(kind, scope, "0", name)] if name and kind == "result" else []
    position = 0
    for decl in params.named_children:
        if decl.type not in ("parameter_declaration", "variadic_parameter_declaration"):
            continue
        names = [c for c in decl.children_by_field_name("name") if c.type == "identifier"]
        found = type_name(decl.child_by_field_name("type"))
        if decl.type == "variadic_parameter_declaration":
            found = None
        for i in range(max(1, len(names))):
            if kind == "result":
                if found is not None:
                    out.append(TypeRef(kind, scope, str(position), found))
            elif names and text(names[i]) != "_":
                out.append(TypeRef(kind, scope, text(names[i]), found or ""))
            position += 1
    return out


def _receiver_type(node: ts.Node) -> str:
    receiver = node.child_by_field_name("receiver")
    if receiver is not None:
        for decl in receiver.named_children:
            if decl.type == "parameter_declaration":
                found = type_name(decl.child_by_field_name("type"))
                if found:
                    return found
    return "?"


def _receiver_name(node: ts.Node) -> str | None:
    receiver = node.child_by_field_name("receiver")
    if receiver is not None:
        for decl in receiver.named_children:
            if decl.type == "parameter_declaration":
                name = decl.child_by_field_name("name")
                return text(name) if name is not None else None
    return None


class _File:
    def __init__(self, source: bytes) -> None:
        self.source = source
        self.symbols: list[Symbol] = []
        self.types: list[TypeRef] = []
        self.defs: list[Def] = []  # functions and methods: call scopes
        self.package = ""

    def symbol(self, local: str, kind: str, node: ts.Node, sig: str, doc: str,
               bases: tuple[str, ...] = ()) -> None:
        self.symbols.append(Symbol(local, kind, node.start_point[0] + 1, node.end_point[0] + 1,
                                   sig, doc, bases))

    def function(self, node: ts.Node) -> None:
        name = text(node.child_by_field_name("name"))
        if node.type == "method_declaration":
            local, kind = f"{_receiver_type(node)}.{name}", SymbolKind.METHOD
            receiver = _receiver_name(node)
            if receiver and receiver != "_":
                self.types.append(TypeRef("var", local, receiver, _receiver_type(node)))
        else:
            local, kind = name, SymbolKind.FUNCTION
        end = (node.child_by_field_name("result") or node.child_by_field_name("parameters")
               or node.child_by_field_name("name"))
        self.symbol(local, kind, node, signature(node, self.source, end), doc_comment(node))
        self.types.extend(_params(node.child_by_field_name("parameters"), local, "var"))
        self.types.extend(_params(node.child_by_field_name("result"), local, "result"))
        self.types.extend(_params(node.child_by_field_name("result"), local, "var"))  # named results
        self.defs.append(Def(node.start_byte, node.end_byte, local, kind))

    def type_spec(self, spec: ts.Node, decl: ts.Node, grouped: bool) -> None:
        name = text(spec.child_by_field_name("name"))
        body = spec.child_by_field_name("type")
        where = spec if grouped else decl
        doc = doc_comment(spec) if grouped else doc_comment(decl)
        params = spec.child_by_field_name("type_parameters")
        head = f"type {name}{squash(text(params)) if params is not None else ''}"
        if body is not None and body.type == "struct_type":
            embedded = []
            fields = next((c for c in body.named_children if c.type == "field_declaration_list"), None)
            for field in fields.named_children if fields is not None else []:
                if field.type != "field_declaration":
                    continue
                found = type_name(field.child_by_field_name("type"))
                names = field.children_by_field_name("name")
                if not names and found:
                    embedded.append(found)
                    self.types.append(TypeRef("embed", name, found.rpartition(".")[2], found))
                elif found:
                    self.types.extend(TypeRef("field", name, text(n), found) for n in names)
            self.symbol(name, SymbolKind.STRUCT, where, f"{head} struct", doc, tuple(embedded))
        elif body is not None and body.type == "interface_type":
            embedded = []
            for elem in body.named_children:
                if elem.type == "method_elem":
                    method = text(elem.child_by_field_name("name"))
                    self.symbol(f"{name}.{method}", SymbolKind.METHOD, elem,
                                signature(elem, self.source, None), doc_comment(elem))
                    self.types.extend(_params(elem.child_by_field_name("result"), f"{name}.{method}",
                                              "result"))
                elif elem.type == "type_elem" and elem.named_child_count == 1:
                    found = type_name(elem.named_children[0])
                    if found:
                        embedded.append(found)
                        self.types.append(TypeRef("embed", name, found.rpartition(".")[2], found))
            self.symbol(name, SymbolKind.INTERFACE, where, f"{head} interface", doc, tuple(embedded))
        else:
            sig = signature(spec, self.source, None)
            self.symbol(name, SymbolKind.TYPE, where, f"type {sig}"[:MAX_SIGNATURE], doc)
            found = type_name(body)  # a defined type or alias of a named type: its methods
            if found and spec.type == "type_alias":
                self.types.append(TypeRef("embed", name, found.rpartition(".")[2], found))

    def value_spec(self, spec: ts.Node, decl: ts.Node, grouped: bool, kind: str) -> None:
        keyword = "const" if kind == SymbolKind.CONSTANT else "var"
        where = spec if grouped else decl
        doc = doc_comment(spec) if grouped else doc_comment(decl)
        sig = f"{keyword} {signature(spec, self.source, None)}"[:MAX_SIGNATURE]
        declared = type_name(spec.child_by_field_name("type"))
        names = [n for n in spec.children_by_field_name("name") if n.type == "identifier"]
        for name in names:
            if text(name) != "_":
                self.symbol(text(name), kind, where, sig, doc)
                if declared and kind == SymbolKind.VARIABLE:
                    self.types.append(TypeRef("var", "", text(name), declared))
        if not declared and kind == SymbolKind.VARIABLE:
            self.types.extend(_assigned(_name_list(names), spec.child_by_field_name("value"), ""))


class _Names:
    """A stand-in `expression_list` of a var_spec's names (which are its direct children)."""

    def __init__(self, names: list[ts.Node]) -> None:
        self.named_children = names


def _name_list(names: list[ts.Node]) -> ts.Node:
    return _Names(names)  # type: ignore[return-value]


def _specs(decl: ts.Node, spec_type: str) -> tuple[list[ts.Node], bool]:
    specs = [c for c in decl.named_children if c.type == spec_type]
    lists = [c for c in decl.named_children if c.type == f"{spec_type}_list"]
    for group in lists:
        specs.extend(c for c in group.named_children if c.type == spec_type)
    grouped = bool(lists) or len(specs) > 1 or any(c.type == "(" for c in decl.children)
    return specs, grouped


def _imports(decl: ts.Node) -> list[Import]:
    out = []
    specs = [c for c in decl.named_children if c.type == "import_spec"]
    for group in (c for c in decl.named_children if c.type == "import_spec_list"):
        specs.extend(c for c in group.named_children if c.type == "import_spec")
    for spec in specs:
        path_node = spec.child_by_field_name("path")
        path = text(path_node).strip('"`')
        name = spec.child_by_field_name("name")
        alias = text(name) if name is not None else None
        out.append(Import(path, None, alias, 0, spec.start_point[0] + 1, ""))
    return out


def _declarations(source_text: str) -> tuple[_File, Symbol, list[Import], ts.Node]:
    """The top-level declarations: symbols (module first), types, imports; no bodies read."""
    source = source_text.encode("utf-8")
    root = parse(source_text).root_node
    lines_total = source_text.count("\n") + (0 if source_text.endswith("\n") or not source_text else 1)
    f = _File(source)
    package = ""
    package_doc = ""
    imports: list[Import] = []
    for node in root.named_children:
        kind = node.type
        if kind in ("function_declaration", "method_declaration"):
            f.function(node)
        elif kind == "type_declaration":
            specs = [c for c in node.named_children if c.type in ("type_spec", "type_alias")]
            for spec in specs:
                f.type_spec(spec, node, len(specs) > 1 or any(c.type == "(" for c in node.children))
        elif kind == "const_declaration":
            specs, grouped = _specs(node, "const_spec")
            for spec in specs:
                f.value_spec(spec, node, grouped, SymbolKind.CONSTANT)
        elif kind == "var_declaration":
            specs, grouped = _specs(node, "var_spec")
            for spec in specs:
                f.value_spec(spec, node, grouped, SymbolKind.VARIABLE)
        elif kind == "import_declaration":
            imports.extend(_imports(node))
        elif kind == "package_clause":
            package = text(node.named_children[0]) if node.named_child_count else ""
            package_doc = doc_comment(node)
    module = Symbol("", SymbolKind.MODULE, 1, max(lines_total, 1), f"package {package}", package_doc)
    f.package = package
    return f, module, imports, root


def symbols(source_text: str) -> list[Symbol]:
    """The file's symbols alone (what definition-level chunks need), without the body pass."""
    f, module, _, _ = _declarations(source_text)
    return [module, *f.symbols]


def extract(source_text: str) -> FileIR:
    if is_gomod(source_text):
        return _gomod(source_text)
    f, module, imports, root = _declarations(source_text)
    package = f.package
    facts = ts.QueryCursor(_FACTS).captures(root)
    calls: list[CallSite] = []
    scopes = Scopes(f.defs)
    callees = facts.get("callee", []) + facts.get("conv", [])
    callees.sort(key=lambda n: (n.start_byte, n.end_byte))
    for node in callees:
        callee = dotted(node)
        if callee is not None:
            calls.append(CallSite(scopes.at(node.start_byte), callee, node.start_point[0] + 1))

    scopes = Scopes(f.defs)
    local_nodes = (facts.get("short", []) + facts.get("var", []) + facts.get("declared", [])
                   + facts.get("params", []))
    local_nodes.sort(key=lambda n: n.start_byte)
    for node in local_nodes:
        scope = scopes.at(node.start_byte)
        if scope == "":  # package level: `value_spec` took it
            continue
        if node.type == "identifier":  # a range or type switch variable: its type is unknown
            if text(node) != "_":
                f.types.append(TypeRef("var", scope, text(node), ""))
        elif node.type == "parameter_list":
            f.types.extend(_params(node, scope, "var"))
        elif node.type == "short_var_declaration":
            left, right = node.child_by_field_name("left"), node.child_by_field_name("right")
            f.types.extend(_assigned(left, right, scope))
        else:
            names = [n for n in node.children_by_field_name("name") if n.type == "identifier"]
            declared = type_name(node.child_by_field_name("type"))
            if declared or node.child_by_field_name("type") is not None:
                f.types.extend(TypeRef("var", scope, text(n), declared or "") for n in names
                               if text(n) != "_")
            else:
                f.types.extend(_assigned(_name_list(names), node.child_by_field_name("value"), scope))

    symbols = [module, *f.symbols]
    symbols.sort(key=lambda s: (s.start_line, s.local_name))
    return FileIR(symbols, imports, calls, None, count_errors(root, _ERRORS), package=package, typed=f.types)
