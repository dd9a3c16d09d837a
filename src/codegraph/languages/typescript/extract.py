"""L1 for TypeScript and JavaScript: symbols, imports, exports, call sites and declared types of
one file, from its tree-sitter tree (tree-sitter-typescript's `typescript` and `tsx` grammars,
tree-sitter-javascript for JS).

Hot path, as for Python: one query, one pass over the tree in tree-sitter's C engine; Python only
touches the captured nodes (a few per definition, one per call, import or declaration).
"""

from __future__ import annotations

import functools
import re

import tree_sitter as ts
import tree_sitter_javascript as tsjs
import tree_sitter_typescript as tsts

from codegraph.languages.common import (
    MAX_SIGNATURE,
    Def,
    Scopes,
    block_comment_doc,
    count_errors,
    line_count,
    preceding_comments,
    squashed_head,
    text,
)
from codegraph.model import CallSite, Export, FileIR, Import, Symbol, SymbolKind

_GRAMMARS = {
    "typescript": tsts.language_typescript,
    "tsx": tsts.language_tsx,
    "javascript": tsjs.language,
}

_COMMON = """
(function_declaration name: (_)) @def
(generator_function_declaration name: (_)) @def
(class_declaration name: (_)) @def
(method_definition name: (_)) @def
(variable_declarator name: (identifier)
  value: [(arrow_function) (function_expression) (generator_function) (class)]) @def
(expression_statement (assignment_expression left: (member_expression)
  right: [(arrow_function) (function_expression) (generator_function) (class)])) @def
(export_statement value: [(function_expression) (class) (arrow_function)] @def)
(variable_declarator) @var
(import_statement) @imp
(export_statement) @exp
(call_expression) @call
(new_expression) @new
(assignment_expression left: (member_expression)) @assign
"""
_TS_ONLY = """
(function_signature name: (_)) @def
(abstract_class_declaration name: (_)) @def
(interface_declaration name: (_)) @def
(type_alias_declaration name: (_)) @def
(enum_declaration name: (_)) @def
(internal_module name: (_)) @def
(method_signature name: (_)) @def
(abstract_method_signature name: (_)) @def
(public_field_definition name: (_) value: [(arrow_function) (function_expression)]) @def
(public_field_definition name: (_)) @field
(required_parameter pattern: (identifier)) @param
(optional_parameter pattern: (identifier)) @param
(arrow_function parameter: (identifier) @param)
"""
_JS_ONLY = """
(field_definition property: (_) value: [(arrow_function) (function_expression)]) @def
(field_definition property: (_)) @field
"""



@functools.cache
def grammar_of(name: str) -> ts.Language:
    return ts.Language(_GRAMMARS[name]())


# Compiled on first use, per grammar: ~50 ms each, which a process that never sees the
# grammar (a Python-only repository's workers, most CLI runs) does not pay.
@functools.cache
def _facts_query(name: str) -> ts.Query:
    return ts.Query(grammar_of(name), _COMMON + (_JS_ONLY if name == "javascript" else _TS_ONLY))


@functools.cache
def _errors_query(name: str) -> ts.Query:
    return ts.Query(grammar_of(name), "(ERROR) @err")

_CLASS_TYPES = frozenset(("class_declaration", "abstract_class_declaration", "class"))
_KINDS = {
    "interface_declaration": SymbolKind.INTERFACE,
    "type_alias_declaration": SymbolKind.TYPE,
    "enum_declaration": SymbolKind.ENUM,
    "internal_module": SymbolKind.NAMESPACE,
}
_METHOD_TYPES = frozenset(("method_definition", "method_signature", "abstract_method_signature",
                           "public_field_definition", "field_definition"))
_CONTAINERS = frozenset((SymbolKind.CLASS, SymbolKind.INTERFACE))
_FUNCTION_VALUES = frozenset(("arrow_function", "function_expression", "generator_function"))
_DECLARATION_PARENTS = frozenset(("lexical_declaration", "variable_declaration"))
_WRAPPERS = frozenset(("parenthesized_expression", "non_null_expression", "await_expression"))
_DOTTED = re.compile(r"[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*")
_NOT_A_TYPE = frozenset(("null", "undefined", "void", "never"))
_PRIMITIVES = frozenset(("any", "unknown", "object", "string", "number", "boolean", "bigint",
                         "symbol", "void", "never", "null", "undefined", "this"))


def parser(grammar: str) -> ts.Parser:
    return ts.Parser(grammar_of(grammar))


@functools.lru_cache(maxsize=64)  # more than an inline batch (stages.INLINE_MAX_FILES)
def parse(source_text: str, grammar: str) -> ts.Tree:
    """The tree of a file's text (cached: L1 and L2 of one update parse the same few files)."""
    return parser(grammar).parse(source_text.encode("utf-8"))


def clean_type(annotation: str) -> str | None:
    """A type annotation reduced to the one named type a member lookup can follow: `Foo`,
    `ns.Foo`; generics, `Promise<...>`, `| null` and `| undefined` removed; else None."""
    value = annotation.strip()
    if value.startswith(":"):
        value = value[1:].strip()
    while value.startswith("Promise<") and value.endswith(">"):
        value = value[len("Promise<"):-1].strip()
    alternatives = [a for a in _top_level_union(value) if a not in _NOT_A_TYPE]
    if len(alternatives) != 1:
        return None
    value = alternatives[0]
    cut = value.find("<")
    if cut > 0:
        value = value[:cut]
    return value if _DOTTED.fullmatch(value) and value not in _PRIMITIVES else None


def _top_level_union(value: str) -> list[str]:
    """The alternatives of a union type, split only outside brackets."""
    out, depth, start = [], 0, 0
    for i, ch in enumerate(value):
        if ch in "<([{":
            depth += 1
        elif ch in ">)]}":
            depth -= 1
        elif ch == "|" and depth == 0:
            out.append(value[start:i].strip())
            start = i + 1
    out.append(value[start:].strip())
    return [a for a in out if a]


def dotted(node: ts.Node) -> str | None:
    """A callee as a dotted path: `f`, `ns.f`, `this.a.m`, `super.m`, `make().m` (`()` marks a
    call's result); None for anything else (subscripts, literals, casts)."""
    kind = node.type
    if kind in ("identifier", "this", "super", "property_identifier", "private_property_identifier",
                "type_identifier"):
        return text(node)
    if kind == "member_expression":
        obj = node.child_by_field_name("object")
        prop = node.child_by_field_name("property")
        if obj is None or prop is None:
            return None
        base = dotted(obj)
        return None if base is None else f"{base}.{text(prop)}"
    if kind == "call_expression":
        fn = node.child_by_field_name("function")
        if fn is None or fn.type == "import":
            return None
        base = dotted(fn)
        return None if base is None else f"{base}()"
    if kind == "new_expression":  # only as the object of a member: `new C().m()`
        constructor = node.child_by_field_name("constructor")
        base = dotted(constructor) if constructor is not None else None
        return None if base is None or node.parent is None \
            or node.parent.type != "member_expression" else f"new {base}()"
    if kind in _WRAPPERS and node.named_child_count == 1:
        return dotted(node.named_children[0])
    if kind == "nested_identifier":
        return text(node)
    return None


def _string_value(node: ts.Node | None) -> str | None:
    if node is None or node.type != "string":
        return None
    return "".join(text(c) for c in node.named_children if c.type == "string_fragment")


def _outer(node: ts.Node) -> ts.Node:
    """The node a definition's lines, doc comment and signature start from: the declaration
    statement around a declarator, the `export` around a declaration."""
    outer = node
    if outer.type == "variable_declarator" and outer.parent is not None \
            and outer.parent.type in _DECLARATION_PARENTS:
        outer = outer.parent
    if outer.type == "assignment_expression" and outer.parent is not None:
        outer = outer.parent
    if outer.parent is not None and outer.parent.type == "export_statement":
        outer = outer.parent
    return outer


def _first_line(outer: ts.Node) -> tuple[int, ts.Node]:
    """The 0-based first row of a definition (its decorators included) and the node before which
    its doc comment sits."""
    first = outer
    sibling = outer.prev_named_sibling
    while sibling is not None and sibling.type == "decorator":
        first = sibling
        sibling = sibling.prev_named_sibling
    return first.start_point[0], first


def _doc(anchor: ts.Node) -> str:
    comments = preceding_comments(anchor)
    if comments and text(comments[-1]).startswith("/**"):
        return block_comment_doc(text(comments[-1]))
    return ""


def _body(node: ts.Node) -> ts.Node | None:
    if node.type in ("variable_declarator", "public_field_definition", "field_definition"):
        value = node.child_by_field_name("value")
        return value.child_by_field_name("body") if value is not None else None
    if node.type == "expression_statement":
        assignment = node.named_children[0]
        value = assignment.child_by_field_name("right")
        return value.child_by_field_name("body") if value is not None else None
    return node.child_by_field_name("body")


def _heritage(node: ts.Node) -> tuple[str, ...]:
    """Names a class extends or implements, or an interface extends, as written."""
    out: list[str] = []
    for child in node.named_children:
        if child.type == "class_heritage":
            clauses = child.named_children
            for clause in clauses:
                if clause.type in ("extends_clause", "implements_clause"):
                    out.extend(_type_names(clause))
                else:  # JS: `class_heritage` holds the expression itself
                    name = dotted(clause)
                    if name is not None:
                        out.append(name)
        elif child.type == "extends_type_clause":
            out.extend(_type_names(child))
    return tuple(out)


def _type_names(clause: ts.Node) -> list[str]:
    out = []
    for item in clause.named_children:
        if item.type == "generic_type":
            item = item.child_by_field_name("name") or item
        if item.type == "type_arguments":
            continue
        name = dotted(item)
        if name is not None:
            out.append(name)
    return out


class _Extractor:
    def __init__(self, source_text: str, grammar: str) -> None:
        self.source = source_text.encode("utf-8")
        self.grammar = grammar
        self.tree = parse(source_text, grammar)
        self.lines = line_count(source_text)
        self.symbols: list[Symbol] = [Symbol("", SymbolKind.MODULE, 1, max(self.lines, 1), "", "")]
        self.imports: list[Import] = []
        self.exports: list[Export] = []
        self.calls: list[CallSite] = []
        self.types: dict[str, str] = {}
        self.kinds: dict[str, str] = {}  # local name -> kind
        self._assigned: list[str] = []  # functions defined as `obj.m =` / `C.prototype.m =`
        self._this_assigned: set[str] = set()  # definitions that assign `this.x = ...`
        self._members: dict[str, str] = {}  # methods of module-level object literals -> object

    def run(self) -> FileIR:
        root = self.tree.root_node
        facts = ts.QueryCursor(_facts_query(self.grammar)).captures(root)
        defs = self.definitions(facts.get("def", []))
        self.exports_of(facts.get("exp", []))
        self.imports_of(facts.get("imp", []), defs)
        self.variables(facts.get("var", []), defs)
        self.fields(facts.get("field", []), defs)
        self.params(facts.get("param", []), defs)
        self.assignments(facts.get("assign", []), defs)
        self._this_types()
        self.call_sites(facts.get("call", []), facts.get("new", []), defs)
        errors = count_errors(root, _errors_query(self.grammar))
        self.symbols.sort(key=lambda s: (s.start_line, s.local_name))
        return FileIR(self.symbols, self.imports, self.calls, None, errors, self.exports,
                      self.types)

    # ----- definitions ---------------------------------------------------------------------

    def _name(self, node: ts.Node) -> str | None:
        if node.parent is not None and node.parent.type == "export_statement" and node.type in (
                    "function_expression", "class", "arrow_function"):
            return "default"
        if node.type == "expression_statement":
            return self._assigned_name(node.named_children[0])
        if node.type in ("public_field_definition", "field_definition"):
            name_node = node.child_by_field_name("name") or node.child_by_field_name("property")
        else:
            name_node = node.child_by_field_name("name")
        if name_node is None:
            return None
        if node.type == "method_definition" and node.parent is not None \
                and node.parent.type != "class_body":
            # A method of an object literal: a symbol of its own when the object is bound at
            # module level (`const api = { m() {} }` is `api.m`; `module.exports = { m() {} }`
            # is the export `m`; getters and setters too: `this` in them is the object).
            owner = _object_owner(node.parent)
            if owner is None or name_node.type != "property_identifier":
                return None
            self._members[text(name_node) if owner == "exports" else
                          f"{owner}.{text(name_node)}"] = owner
            return text(name_node) if owner == "exports" else f"{owner}.{text(name_node)}"
        return text(name_node)

    def _assigned_name(self, assignment: ts.Node) -> str | None:
        """The local name of a function or class assigned at module level: `exports.f =` and
        `module.exports.f =` define `f`; `module.exports = function f` defines `f`;
        `C.prototype.m =` defines `C.prototype.m` and `obj.m =` defines `obj.m` (methods whose
        `this` is a C, or obj: see `_this_types`)."""
        left = assignment.child_by_field_name("left")
        path = dotted(left) if left is not None else None
        if path is None:
            return None
        head, _, name = path.rpartition(".")
        if head in ("exports", "module.exports") and name:
            return name
        if path == "module.exports":
            right = assignment.child_by_field_name("right")
            named = right.child_by_field_name("name") if right is not None else None
            return text(named) if named is not None else None
        parts = path.split(".")
        if parts[0] in ("this", "super", "module", "exports", "window", "globalThis") or \
                any(p.endswith("()") for p in parts):
            return None
        if len(parts) == 2 or (len(parts) == 3 and parts[1] == "prototype"):
            return path
        return None

    def _this_types(self) -> None:
        """What `this` is, as TypeScript types it in JS (`this:` keys of `types`): in
        `C.prototype.m = function` a C; in a function that assigns `this.x = ...` (a constructor
        function to TS), an instance of that function; in any other `obj.m = function` the
        value obj (an object, or the function C of a static `C.s = function`); in a method of
        an object literal bound at module level, that object."""
        for local in self._assigned:
            parts = local.split(".")
            if len(parts) == 3:
                if self.kinds.get(parts[0]) in (SymbolKind.FUNCTION, SymbolKind.CLASS):
                    self.types.setdefault(f"{local}:this", parts[0])
                    self.types.setdefault(f"{parts[0]}:this", parts[0])
                else:
                    self.types.setdefault(f"{local}:this", "?")
            elif local in self._this_assigned:
                self.types.setdefault(f"{local}:this", "?")  # its own instance: no members
            else:
                self.types.setdefault(f"{local}:this", f"={parts[0]}")
        for local, owner in self._members.items():  # an object literal's method: the object
            self.types.setdefault(f"{local}:this", f"={owner}")  # (never a constructor to TS)
        for local in sorted(self._this_assigned):
            if self.kinds.get(local) == SymbolKind.FUNCTION:
                self.types.setdefault(f"{local}:this", local)

    def definitions(self, nodes: list[ts.Node]) -> list[Def]:
        nodes.sort(key=lambda n: (n.start_byte, -n.end_byte))
        defs: list[Def] = []
        stack: list[Def] = []
        seen: set[int] = set()
        assigned: list[str] = []  # `obj.m = function`, `C.prototype.m = function`
        for node in nodes:
            if node.id in seen:
                continue
            seen.add(node.id)
            name = self._name(node)
            if name is None:
                continue
            start, end = node.start_byte, node.end_byte
            while stack and stack[-1].end <= start:
                stack.pop()
            parent = stack[-1] if stack else None
            if parent is not None and name == "default":
                continue
            if node.type == "expression_statement" and parent is not None:
                continue  # CommonJS exports are module-level only
            local = f"{parent.local}.{name}" if parent else name
            kind = self._kind(node, parent)
            d = Def(start, end, local, kind)
            defs.append(d)
            stack.append(d)
            self.kinds.setdefault(local, kind)
            self.symbols.append(self._symbol(node, local, kind))
            if node.type == "expression_statement" and kind == SymbolKind.METHOD:
                assigned.append(local)
        self._assigned = assigned
        return defs

    def _kind(self, node: ts.Node, parent: Def | None) -> str:
        kind = node.type
        if kind in _CLASS_TYPES:
            return SymbolKind.CLASS
        if kind in _KINDS:
            return _KINDS[kind]
        if kind == "variable_declarator" or kind == "expression_statement":
            value = node.child_by_field_name("value") if kind == "variable_declarator" \
                else node.named_children[0].child_by_field_name("right")
            if value is not None and value.type == "class":
                return SymbolKind.CLASS
            if kind == "expression_statement" and parent is None:
                left = node.named_children[0].child_by_field_name("left")
                path = dotted(left) if left is not None else ""
                if path and path.partition(".")[0] not in ("exports", "module"):
                    return SymbolKind.METHOD  # `obj.m = function`, `C.prototype.m = function`
        if parent is not None and parent.kind in _CONTAINERS:
            return SymbolKind.METHOD
        if kind == "method_definition" and node.parent is not None and node.parent.type == "object":
            return SymbolKind.METHOD  # `const api = { m() {} }`, `module.exports = { m() {} }`
        return SymbolKind.FUNCTION

    def _symbol(self, node: ts.Node, local: str, kind: str) -> Symbol:
        outer = _outer(node)
        first_row, anchor = _first_line(outer)
        body = _body(node)
        head_start = node.start_byte
        if node.type == "variable_declarator" and outer.type != "variable_declarator":
            head_start = (node.parent or node).start_byte
        if kind in (SymbolKind.TYPE, SymbolKind.ENUM) or body is None:
            stop = node.end_byte if kind == SymbolKind.TYPE or body is None else body.start_byte
        else:
            stop = body.start_byte
        signature = squashed_head(head_start, stop, self.source, MAX_SIGNATURE)
        bases = _heritage(node) if kind in _CONTAINERS else ()
        if kind in (SymbolKind.FUNCTION, SymbolKind.METHOD):
            self._return_type(node, local)
        return Symbol(local, kind, first_row + 1, outer.end_point[0] + 1, signature, _doc(anchor),
                      bases)

    def _return_type(self, node: ts.Node, local: str) -> None:
        fn = node
        if node.type in ("variable_declarator", "public_field_definition", "field_definition"):
            fn = node.child_by_field_name("value") or node
        annotation = fn.child_by_field_name("return_type")
        if annotation is not None:
            cleaned = clean_type(text(annotation))
            if cleaned is not None:
                self.types[f"{local}:()"] = cleaned

    # ----- imports and exports ---------------------------------------------------------------

    def exports_of(self, nodes: list[ts.Node]) -> None:
        for node in nodes:
            if node.parent is None or node.parent.type != "program":
                continue  # `export` inside a namespace: a member of it, not of the module
            line = node.start_point[0] + 1
            spec = _string_value(node.child_by_field_name("source"))
            is_default = any(c.type == "default" for c in node.children)
            declaration = node.child_by_field_name("declaration")
            value = node.child_by_field_name("value")
            clause = next((c for c in node.named_children if c.type == "export_clause"), None)
            if clause is not None:
                for item in clause.named_children:
                    if item.type != "export_specifier":
                        continue
                    name_node = item.child_by_field_name("name")
                    alias_node = item.child_by_field_name("alias")
                    if name_node is None:
                        continue
                    name = _string_value(name_node) or text(name_node)
                    alias = (_string_value(alias_node) or text(alias_node)) if alias_node else name
                    self.exports.append(Export(alias, name, spec, line))
                continue
            if spec is not None:
                namespace = next((c for c in node.named_children if c.type == "namespace_export"), None)
                if namespace is not None:
                    name_node = namespace.named_children[0] if namespace.named_child_count else None
                    if name_node is not None:
                        self.exports.append(Export(text(name_node), "*", spec, line))
                else:
                    self.exports.append(Export("*", "*", spec, line))
                continue
            if declaration is not None:
                for name in _declared_names(declaration):
                    self.exports.append(Export("default" if is_default else name, name, None, line))
                continue
            if value is not None and is_default:
                if value.type in ("function_expression", "class", "arrow_function"):
                    self.exports.append(Export("default", "default", None, line))
                elif value.type == "object":  # `export default { a, b: c }`
                    self.exports.append(Export("default", "{}", None, line))
                    self._object_members(value, "default.", line)
                else:
                    target = dotted(value)
                    self.exports.append(Export("default", target or "", None, line))
                continue
            if any(c.type == "=" for c in node.children):  # TS `export = X`
                target_node = next((c for c in node.named_children), None)
                target = dotted(target_node) if target_node is not None else None
                self.exports.append(Export("=", target or "", None, line))

    def imports_of(self, nodes: list[ts.Node], defs: list[Def]) -> None:
        scopes = Scopes(defs)
        nodes.sort(key=lambda n: n.start_byte)
        for node in nodes:
            scope = scopes.at(node.start_byte)
            line = node.start_point[0] + 1
            spec = _string_value(node.child_by_field_name("source"))
            clause = next((c for c in node.named_children
                           if c.type in ("import_clause", "import_require_clause")), None)
            if clause is not None and clause.type == "import_require_clause":
                spec = _string_value(clause.child_by_field_name("source"))
                name_node = next((c for c in clause.named_children if c.type == "identifier"), None)
                if spec is not None and name_node is not None:
                    self.imports.append(Import(spec, "=", text(name_node), 0, line, scope))
                continue
            if spec is None:
                continue
            if clause is None:
                self.imports.append(Import(spec, None, None, 0, line, scope))
                continue
            for part in clause.named_children:
                if part.type == "identifier":
                    self.imports.append(Import(spec, "default", text(part), 0, line, scope))
                elif part.type == "namespace_import":
                    name_node = next((c for c in part.named_children if c.type == "identifier"), None)
                    if name_node is not None:
                        self.imports.append(Import(spec, None, text(name_node), 0, line, scope))
                elif part.type == "named_imports":
                    for item in part.named_children:
                        if item.type != "import_specifier":
                            continue
                        name_node = item.child_by_field_name("name")
                        alias_node = item.child_by_field_name("alias")
                        if name_node is None:
                            continue
                        name = _string_value(name_node) or text(name_node)
                        self.imports.append(Import(spec, name, text(alias_node) if alias_node
                                                   else None, 0, line, scope))

    def _module_load(self, call: ts.Node, scope: str) -> bool:
        """`require("m")` and `import("m")` with a literal: imports (bound to the variable or
        the destructured names they are assigned to). True when `call` was one."""
        fn = call.child_by_field_name("function")
        if fn is None or not (fn.type == "import" or (fn.type == "identifier" and fn.text == b"require")):
            return False
        args = call.child_by_field_name("arguments")
        spec = _string_value(args.named_children[0]) if args is not None and args.named_child_count else None
        if spec is None:
            return fn.type == "import"
        line = call.start_point[0] + 1
        holder = call.parent
        if holder is not None and holder.type == "await_expression":
            holder = holder.parent
        name = "=" if fn.type == "identifier" else None
        if holder is not None and holder.type == "member_expression" and name == "=":
            prop = holder.child_by_field_name("property")  # `require("m").name`
            name = text(prop) if prop is not None else None
            holder = holder.parent
        if holder is not None and holder.type == "variable_declarator":
            target = holder.child_by_field_name("name")
            if target is not None and target.type == "identifier":
                self.imports.append(Import(spec, name, text(target), 0, line, scope))
                return True
            if target is not None and target.type == "object_pattern":
                for item in target.named_children:
                    if item.type == "shorthand_property_identifier_pattern":
                        self.imports.append(Import(spec, text(item), None, 0, line, scope))
                    elif item.type == "pair_pattern":
                        key = item.child_by_field_name("key")
                        value = item.child_by_field_name("value")
                        if key is not None and value is not None and value.type == "identifier":
                            self.imports.append(Import(spec, text(key), text(value), 0, line, scope))
                return True
        self.imports.append(Import(spec, None, None, 0, line, scope))
        return True

    # ----- types and CommonJS exports ----------------------------------------------------------

    def variables(self, nodes: list[ts.Node], defs: list[Def]) -> None:
        scopes = Scopes(defs)
        nodes.sort(key=lambda n: n.start_byte)
        seen: set[str] = set()
        for node in nodes:
            name_node = node.child_by_field_name("name")
            if name_node is not None and name_node.type == "object_pattern":
                self._destructured(node, name_node, scopes.at(node.start_byte))
                continue
            if name_node is None or name_node.type != "identifier":
                continue
            d = scopes.definition_at(node.start_byte)
            if d is not None and d.start == node.start_byte:
                continue  # `const f = () => ...`: a function, not a variable
            scope = d.local if d is not None else ""
            name = text(name_node)
            declared = self._value_type(node)
            if declared is not None:
                self.types.setdefault(f"{scope}:{name}", declared)
            if scope or name in seen:
                continue
            seen.add(name)
            outer = _outer(node)
            first_row, anchor = _first_line(outer)
            self.symbols.append(Symbol(
                name, SymbolKind.VARIABLE, first_row + 1, outer.end_point[0] + 1,
                squashed_head(outer.start_byte, outer.end_byte, self.source, MAX_SIGNATURE),
                _doc(anchor)))

    def _destructured(self, node: ts.Node, pattern: ts.Node, scope: str) -> None:
        """`const { a, b: c } = obj`: a is `obj.a`, c is `obj.b`."""
        value = node.child_by_field_name("value")
        source = dotted(value) if value is not None and value.type in (
            "identifier", "member_expression", "this") else None
        if source is None:
            return
        for item in pattern.named_children:
            if item.type == "shorthand_property_identifier_pattern":
                self.types.setdefault(f"{scope}:{text(item)}", f"={source}.{text(item)}")
            elif item.type == "pair_pattern":
                key = item.child_by_field_name("key")
                bound = item.child_by_field_name("value")
                if key is not None and bound is not None and bound.type == "identifier" \
                        and key.type == "property_identifier":
                    self.types.setdefault(f"{scope}:{text(bound)}", f"={source}.{text(key)}")

    def _value_type(self, node: ts.Node) -> str | None:
        annotation = node.child_by_field_name("type")
        if annotation is not None:
            return clean_type(text(annotation))
        value = node.child_by_field_name("value")
        while value is not None and value.type in ("await_expression", "parenthesized_expression",
                                                   "non_null_expression"):
            value = value.named_children[0] if value.named_child_count else None
        if value is None:
            return None
        if value.type == "new_expression":
            constructor = value.child_by_field_name("constructor")
            return dotted(constructor) if constructor is not None else None
        if value.type == "call_expression":
            fn = value.child_by_field_name("function")
            if fn is None or fn.type == "import" or fn.text == b"require":
                return None
            return dotted(value)
        if value.type in ("as_expression", "satisfies_expression") and value.named_child_count == 2:
            return clean_type(text(value.named_children[1]))
        if value.type in ("identifier", "member_expression", "this"):
            path = dotted(value)
            return f"={path}" if path is not None else None  # whatever that value is
        return None

    def fields(self, nodes: list[ts.Node], defs: list[Def]) -> None:
        scopes = Scopes(defs)
        nodes.sort(key=lambda n: n.start_byte)
        for node in nodes:
            name_node = node.child_by_field_name("name") or node.child_by_field_name("property")
            d = scopes.definition_at(node.start_byte)
            if name_node is None or d is None or d.start == node.start_byte:
                continue
            # A field of unknown type still hides the bases' members of its name ("?").
            declared = self._value_type(node)
            self.types.setdefault(f"{d.local}:{text(name_node)}", declared or "?")

    def params(self, nodes: list[ts.Node], defs: list[Def]) -> None:
        """Parameter types: declared ones; those of a callback parameter's own parameters
        (`fn:(i).j`, the j-th parameter of the function passed as fn's i-th argument); and an
        unannotated callback's parameters typed by the function it is passed to (`^i.j:callee`)."""
        scopes = Scopes(defs)
        nodes.sort(key=lambda n: n.start_byte)
        for node in nodes:
            lone = node.type == "identifier"  # `x => ...`
            pattern = node if lone else node.child_by_field_name("pattern")
            annotation = None if lone else node.child_by_field_name("type")
            formal = node.parent
            owner = node.parent if lone else formal.parent if formal is not None else None
            if pattern is None or formal is None or owner is None or owner.type == "function_type":
                continue
            d = scopes.definition_at(node.start_byte)
            scope = d.local if d is not None else ""
            name = text(pattern)
            position = 0 if lone else _index(formal, node)
            if annotation is None:
                holder = owner.parent
                call = holder.parent if holder is not None else None
                if holder is not None and holder.type == "arguments" and call is not None \
                        and call.type in ("call_expression", "new_expression"):
                    fn = call.child_by_field_name("function") or call.child_by_field_name("constructor")
                    callee = dotted(fn) if fn is not None else None
                    if callee is not None:
                        self.types.setdefault(
                            f"{scope}:{name}", f"^{_index(holder, owner)}.{position}:{callee}")
                continue
            kind = annotation.named_children[0] if annotation.named_child_count else None
            if kind is not None and kind.type == "function_type" and d is not None:
                inner = kind.child_by_field_name("parameters")
                for j, param in enumerate(inner.named_children if inner is not None else []):
                    param_type = param.child_by_field_name("type")
                    cleaned = clean_type(text(param_type)) if param_type is not None else None
                    if cleaned is not None:
                        self.types.setdefault(f"{d.local}:({position}).{j}", cleaned)
                continue
            declared = clean_type(text(annotation))
            if declared is None or d is None:
                continue
            self.types.setdefault(f"{d.local}:{name}", declared)
            is_property = any(c.type in ("accessibility_modifier", "readonly") for c in node.children)
            if is_property and d.local.endswith(".constructor"):
                self.types.setdefault(f"{d.local[: -len('.constructor')]}:{name}", declared)

    def assignments(self, nodes: list[ts.Node], defs: list[Def]) -> None:
        """`this.x = new C()` (a field's type) and CommonJS `module.exports` / `exports.x`."""
        scopes = Scopes(defs)
        nodes.sort(key=lambda n: n.start_byte)
        for node in nodes:
            left = node.child_by_field_name("left")
            right = node.child_by_field_name("right")
            target = dotted(left) if left is not None else None
            if target is None or right is None:
                continue
            scope = scopes.at(node.start_byte)
            if target.startswith("this.") and target.count(".") == 1:
                self._this_assigned.add(scope)
                cls = self._class_of(scope)
                if cls is not None:
                    declared = self._value_type_of(right)
                    if declared is not None:
                        self.types.setdefault(f"{cls}:{target[5:]}", declared)
                continue
            statement = node.parent
            while statement is not None and statement.type == "assignment_expression":
                statement = statement.parent  # `exports = module.exports = x`
            bound = None  # `var app = exports = module.exports = {}`: app is module.exports
            if statement is not None and statement.type == "variable_declarator":
                name_node = statement.child_by_field_name("name")
                bound = text(name_node) if name_node is not None and \
                    name_node.type == "identifier" else None
                statement = statement.parent
            if statement is None or statement.type not in ("expression_statement",
                                                           *_DECLARATION_PARENTS) or \
                    statement.parent is None or statement.parent.type != "program":
                continue
            line = node.start_point[0] + 1
            if target == "module.exports" and bound is not None:
                self.exports.append(Export("=", bound, None, line))
            elif target == "module.exports":
                self._module_exports(right, line)
            elif target.startswith(("exports.", "module.exports.")) and target.count(".") <= 2:
                name = target.rpartition(".")[2]
                local = dotted(right) if right.type == "identifier" else None
                if right.type in _FUNCTION_VALUES or right.type == "class":
                    local = name  # defined as a symbol of that name (see `definitions`)
                self.exports.append(Export(name, local or "", None, line))

    def _value_type_of(self, value: ts.Node) -> str | None:
        if value.type == "new_expression":
            constructor = value.child_by_field_name("constructor")
            return dotted(constructor) if constructor is not None else None
        if value.type == "call_expression":
            return dotted(value)
        return None

    def _object_members(self, value: ts.Node, prefix: str, line: int) -> None:
        """The members of an exported object literal, each an export `prefix + key`."""
        for item in value.named_children:
            if item.type == "shorthand_property_identifier":
                self.exports.append(Export(prefix + text(item), text(item), None, line))
            elif item.type == "method_definition" and not prefix:
                key = item.child_by_field_name("name")
                if key is not None and key.type == "property_identifier":
                    self.exports.append(Export(text(key), text(key), None, line))
            elif item.type == "pair":
                key = item.child_by_field_name("key")
                val = item.child_by_field_name("value")
                if key is not None and val is not None:
                    local = dotted(val) if val.type in ("identifier", "member_expression") else None
                    self.exports.append(Export(prefix + (_string_value(key) or text(key)),
                                               local or "", None, line))

    def _module_exports(self, value: ts.Node, line: int) -> None:
        if value.type == "object":  # the module's namespace is that object
            self.exports.append(Export("=", "*", None, line))
            self._object_members(value, "", line)
            return
        if value.type == "call_expression":
            fn = value.child_by_field_name("function")
            args = value.child_by_field_name("arguments")
            if fn is not None and fn.text == b"require" and args is not None and args.named_child_count:
                spec = _string_value(args.named_children[0])
                if spec is not None:
                    self.exports.append(Export("=", "*", spec, line))
                    return
        if value.type in ("identifier", "member_expression"):
            self.exports.append(Export("=", dotted(value) or "", None, line))
        elif value.type in ("class", "function_expression") and value.child_by_field_name("name"):
            self.exports.append(Export("=", text(value.child_by_field_name("name")), None, line))  # type: ignore[arg-type]

    def _class_of(self, scope: str) -> str | None:
        parts = scope.split(".") if scope else []
        while parts:
            parts.pop()
            prefix = ".".join(parts)
            if self.kinds.get(prefix) == SymbolKind.CLASS:
                return prefix
        return None

    # ----- calls -------------------------------------------------------------------------------

    def call_sites(self, calls: list[ts.Node], news: list[ts.Node], defs: list[Def]) -> None:
        nodes = [(n.start_byte, n.end_byte, n) for n in (*calls, *news)]
        # Nested calls can start at one byte (`a.b().c()`): the end orders them, as the order
        # tree-sitter captures them in is not always the same for the same tree.
        nodes.sort(key=lambda t: (t[0], t[1]))
        scopes = Scopes(defs)
        for start, _, node in nodes:
            scope = scopes.at(start)
            if node.type == "new_expression":
                constructor = node.child_by_field_name("constructor")
                name = dotted(constructor) if constructor is not None else None
                if name is not None:
                    self.calls.append(CallSite(scope, f"new {name}", node.start_point[0] + 1))
                continue
            if self._module_load(node, scope):
                continue
            fn = node.child_by_field_name("function")
            callee = dotted(fn) if fn is not None else None
            if callee is not None:
                self.calls.append(CallSite(scope, callee, node.start_point[0] + 1))


def _object_owner(obj: ts.Node) -> str | None:
    """The name a module-level object literal is bound to: `N` for `const N = {…}` (also
    `const N = module.exports = {…}`), "exports" for `module.exports = {…}`; else None."""
    node, targets = obj, []
    while node.parent is not None and node.parent.type == "assignment_expression":
        left = node.parent.child_by_field_name("left")
        targets.append(dotted(left) if left is not None else None)
        node = node.parent
    parent = node.parent
    if parent is None:
        return None
    if parent.type == "variable_declarator":
        name = parent.child_by_field_name("name")
        holder = parent.parent
        if name is not None and name.type == "identifier" and holder is not None and \
                holder.type in _DECLARATION_PARENTS and holder.parent is not None and \
                holder.parent.type == "program":
            return text(name)
        return None
    if parent.type == "expression_statement" and parent.parent is not None and \
            parent.parent.type == "program" and targets[:1] == ["module.exports"]:
        return "exports"
    return None


def _index(parent: ts.Node, child: ts.Node) -> int:
    for i, node in enumerate(parent.named_children):
        if node.id == child.id:
            return i
    return -1


def _declared_names(declaration: ts.Node) -> list[str]:
    if declaration.type in _DECLARATION_PARENTS:
        return [text(n) for d in declaration.named_children if d.type == "variable_declarator"
                and (n := d.child_by_field_name("name")) is not None and n.type == "identifier"]
    name = declaration.child_by_field_name("name")
    return [text(name)] if name is not None else []


@functools.lru_cache(maxsize=64)  # L2 cuts chunks from the symbols L1 just extracted
def extract(source_text: str, grammar: str) -> FileIR:
    return _Extractor(source_text, grammar).run()
