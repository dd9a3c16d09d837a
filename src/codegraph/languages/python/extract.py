"""L1 for Python: symbols, imports and call sites of one file, from its tree-sitter tree.

Hot path: all node matching runs in tree-sitter's C query engine; Python only touches the
captured nodes (a few per definition, one per call), never walks the whole tree.
"""

from __future__ import annotations

import functools
import re

import tree_sitter as ts
import tree_sitter_python as tsp

from codegraph.languages.common import MAX_DOCSTRING as _MAX_DOCSTRING
from codegraph.languages.common import MAX_SIGNATURE as _MAX_SIGNATURE
from codegraph.languages.common import Def as _Def
from codegraph.languages.common import Scopes as _Scopes
from codegraph.languages.common import count_errors, squashed_head
from codegraph.languages.common import squash as _squash
from codegraph.languages.common import text as _text
from codegraph.languages.python import values as _values
from codegraph.languages.python.values import (
    F_ALIAS,
    F_ATTRIBUTE,
    F_BODY,
    F_DEFINITION,
    F_FUNCTION,
    F_LEFT,
    F_MODULE_NAME,
    F_NAME,
    F_OBJECT,
    F_PARAMETERS,
    F_RETURN_TYPE,
    F_RIGHT,
    F_SUPERCLASSES,
)
from codegraph.model import CallSite, FileIR, Import, Symbol, SymbolKind

LANGUAGE = ts.Language(tsp.language())

# One query, one pass over the tree: each extra query costs a whole traversal again.
_FACTS = ts.Query(
    LANGUAGE,
    """
    (function_definition name: (identifier)) @def
    (class_definition name: (identifier)) @def
    (decorated_definition) @decorated
    [(import_statement) (import_from_statement)] @imp
    (call) @call
    [(assignment) (augmented_assignment) (named_expression) (for_statement) (for_in_clause)
     (with_item) (return_statement) (yield) (except_clause)] @flow
    """,
)
_ERRORS = ts.Query(LANGUAGE, "(ERROR) @err")
_TARGET_LISTS = ("pattern_list", "tuple_pattern")


def parser() -> ts.Parser:
    return ts.Parser(LANGUAGE)


@functools.lru_cache(maxsize=64)  # more than an inline batch (stages.INLINE_MAX_FILES)
def parse(text: str) -> ts.Tree:
    """The tree of a file's text. Cached: an update parses the same few files for L1 and then
    for L2 in one process (trees are immutable here: nothing edits them)."""
    return parser().parse(text.encode("utf-8"))


def _docstring(body: ts.Node | None) -> str:
    # `named_child(0)`, not `named_children[0]`: that builds a node for every statement of the body.
    if body is None or body.named_child_count == 0:
        return ""
    first = body.named_child(0)
    if first.type != "expression_statement" or first.named_child_count != 1:
        return ""
    string = first.named_child(0)
    if string.type != "string":
        return ""
    parts = [_text(c) for c in string.named_children if c.type == "string_content"]
    return "\n".join(line.strip() for line in "".join(parts).strip().splitlines())[
        :_MAX_DOCSTRING
    ]


def _signature(node: ts.Node, source: bytes, is_class: bool) -> str:
    """`def name(params) -> ret` or `class Name(bases)`, whitespace squashed."""
    # Only the fields the node's kind has (a class has no return type or parameters, a function
    # no superclasses): the others are never there.
    if is_class:
        end_node = node.child_by_field_id(F_SUPERCLASSES) or node.child_by_field_id(F_NAME)
    else:
        end_node = (node.child_by_field_id(F_RETURN_TYPE) or node.child_by_field_id(F_PARAMETERS)
                    or node.child_by_field_id(F_NAME))
    end = end_node.end_byte if end_node is not None else node.start_byte
    return _squash(source[node.start_byte : end].decode("utf-8", "replace"))[:_MAX_SIGNATURE]


def _dotted(node: ts.Node) -> str | None:
    """The dotted text of an identifier/attribute chain; `super().x` kept; else None."""
    kind = node.type
    if kind == "identifier":
        return _text(node)
    if kind == "attribute":
        obj = node.child_by_field_id(F_OBJECT)
        attr = node.child_by_field_id(F_ATTRIBUTE)
        if obj is None or attr is None:
            return None
        if obj.type == "call":
            fn = obj.child_by_field_id(F_FUNCTION)
            if fn is not None and fn.type == "identifier" and fn.text == b"super":
                return "super()." + _text(attr)
            return None
        base = _dotted(obj)
        return None if base is None else f"{base}.{_text(attr)}"
    return None


def _bases(node: ts.Node) -> tuple[str, ...]:
    supers = node.child_by_field_id(F_SUPERCLASSES)
    if supers is None:
        return ()
    out = []
    for child in supers.named_children:
        name = _dotted(child)
        if name is not None:
            out.append(name)
    return tuple(out)


def _all_names(node: ts.Node) -> list[str] | None:
    """A literal `__all__ = [...]` / `(...)` of plain strings, else None."""
    assignment = node.parent
    if assignment is None:
        return None
    right = assignment.child_by_field_id(F_RIGHT)
    if right is None or right.type not in ("list", "tuple"):
        return None
    names = []
    for item in right.named_children:
        if item.type != "string":
            return None
        names.append("".join(_text(c) for c in item.named_children if c.type == "string_content"))
    return names


def _imports(node: ts.Node, scope: str) -> list[Import]:
    line = node.start_point[0] + 1
    out: list[Import] = []
    if node.type == "import_statement":
        for child in node.named_children:
            if child.type == "dotted_name":
                out.append(Import(_text(child), None, None, 0, line, scope))
            elif child.type == "aliased_import":
                name = child.child_by_field_id(F_NAME)
                alias = child.child_by_field_id(F_ALIAS)
                if name is not None:
                    out.append(
                        Import(_text(name), None, alias and _text(alias), 0, line, scope)
                    )
        return out
    module_node = node.child_by_field_id(F_MODULE_NAME)
    if module_node is None:
        return out
    level, module = 0, ""
    if module_node.type == "relative_import":
        for part in module_node.named_children:
            if part.type == "import_prefix":
                level = part.end_byte - part.start_byte
            elif part.type == "dotted_name":
                module = _text(part)
    else:
        module = _text(module_node)
    for child in node.named_children:
        if child == module_node:
            continue
        if child.type == "wildcard_import":
            out.append(Import(module, "*", None, level, line, scope))
        elif child.type == "dotted_name":
            out.append(Import(module, _text(child), None, level, line, scope))
        elif child.type == "aliased_import":
            name = child.child_by_field_id(F_NAME)
            alias = child.child_by_field_id(F_ALIAS)
            if name is not None:
                out.append(Import(module, _text(name), alias and _text(alias), level, line, scope))
    return out


def extract(text: str) -> FileIR:
    source = text.encode("utf-8")
    tree = parse(text)
    root = tree.root_node
    lines_total = text.count("\n") + (0 if text.endswith("\n") or not text else 1)

    module_doc = _docstring(root)
    symbols: list[Symbol] = [
        Symbol("", SymbolKind.MODULE, 1, max(lines_total, 1), "", module_doc)
    ]

    # Definitions, in document order; a stack of open definitions gives each one its scope.
    defs: list[_Def] = []
    decorations: list[ts.Node | None] = []  # per definition: its decorated_definition, if any
    stack: list[_Def] = []
    facts = ts.QueryCursor(_FACTS).captures(root)
    def_nodes = facts.get("def", [])
    # A definition's decorated_definition by the definition's start: a node's `parent` costs a
    # walk down from the root, this one child lookup per decorated definition. (A tree with
    # errors asks `parent`: there a decorated_definition may lack its `definition` field.)
    clean = not root.has_error
    decorated_at: dict[int, ts.Node] = {}
    if clean:
        for dec in facts.get("decorated", ()):
            inner = dec.child_by_field_id(F_DEFINITION)
            if inner is not None:
                decorated_at[inner.start_byte] = dec
    def_nodes.sort(key=lambda n: n.start_byte)
    for node in def_nodes:
        name_node = node.child_by_field_id(F_NAME)
        if name_node is None:
            continue
        start, end = node.start_byte, node.end_byte
        while stack and stack[-1].end <= start:
            stack.pop()
        parent = stack[-1] if stack else None
        name = _text(name_node)
        local = f"{parent.local}.{name}" if parent else name
        if node.type == "class_definition":
            kind = SymbolKind.CLASS
        elif parent is not None and parent.kind == SymbolKind.CLASS:
            kind = SymbolKind.METHOD
        else:
            kind = SymbolKind.FUNCTION
        d = _Def(start, end, local, kind, node)
        defs.append(d)
        stack.append(d)
        parent_node = decorated_at.get(start) if clean else node.parent
        decorated = parent_node is not None and parent_node.type == "decorated_definition"
        outer = parent_node if decorated and parent_node is not None else node
        decorations.append(parent_node if decorated else None)
        symbols.append(
            Symbol(
                local,
                kind,
                outer.start_point[0] + 1,
                node.end_point[0] + 1,
                _signature(node, source, kind == SymbolKind.CLASS),
                _docstring(node.child_by_field_id(F_BODY)),
                _bases(node) if kind == SymbolKind.CLASS else (),
            )
        )

    all_names: list[str] | None = None
    seen_vars: set[str] = set()
    for statement in root.named_children:
        if statement.type != "expression_statement" or statement.named_child_count == 0:
            continue
        assignment = statement.named_children[0]
        if assignment.type != "assignment":
            continue
        left = assignment.child_by_field_id(F_LEFT)
        if left is None:
            continue
        targets = left.named_children if left.type in _TARGET_LISTS else [left]
        for node in targets:
            if node.type != "identifier":
                continue
            name = _text(node)
            if name == "__all__":
                all_names = _all_names(node)
            if name in seen_vars:
                continue
            seen_vars.add(name)
            symbols.append(
                Symbol(
                    name,
                    SymbolKind.VARIABLE,
                    statement.start_point[0] + 1,
                    statement.end_point[0] + 1,
                    squashed_head(statement.start_byte, statement.end_byte, source, _MAX_SIGNATURE),
                    "",
                )
            )

    imports: list[Import] = []
    scopes = _Scopes(defs)
    import_nodes = facts.get("imp", [])
    import_nodes.sort(key=lambda n: n.start_byte)
    for node in import_nodes:
        imports.extend(_imports(node, scopes.at(node.start_byte)))

    calls = _flow(defs, decorations, facts.get("call", []), facts.get("flow", []), source)
    errors = count_errors(root, _ERRORS)
    symbols.sort(key=lambda s: (s.start_line, s.local_name))
    return FileIR(symbols, imports, calls[0], all_names, errors, py_values=calls[1],
                  index=_index(symbols, imports, calls[0], calls[1]))


def _aliases(imports: list[Import], values: _values.PyValues) -> dict[str, list[str]]:
    """Other names this file gives a name: `from m import Base as B` and `B = Base` make B
    another name for Base (any scope: an alias only adds candidates, each checked)."""
    out: dict[str, list[str]] = {}
    for imp in imports:
        if imp.alias and imp.name is not None and imp.name != "*" and imp.alias != imp.name:
            out.setdefault(imp.alias, []).append(imp.name)
    for name, exprs in values.variables.items():
        for expr in exprs:
            if _DOTTED_NAME_ONLY.fullmatch(expr):
                last = expr.rpartition(".")[2]
                if last != name:
                    out.setdefault(name, []).append(last)
    return out


def _names(written: str, aliases: dict[str, list[str]]) -> list[str]:
    """The last names a dotted name is known by: its own, and (a plain name) what it is an
    alias of, through chains of aliases."""
    out = [written.rpartition(".")[2]]
    if "." not in written and written in aliases:
        todo = [written]
        while todo:
            for other in aliases.get(todo.pop(), ()):
                if other not in out:
                    out.append(other)
                    todo.append(other)
    return out


def _index(symbols: list[Symbol], imports: list[Import], calls: list[CallSite],
           values: _values.PyValues) -> dict[str, tuple[tuple[str | tuple[str, ...], ...], ...]]:
    """The file's contributions to the snapshot's "@" facts (see `FileIR.index`):

    "@sub:<name>": its classes with a base written with that last name (`Base`, `mod.Base`),
    or that is an alias of one (`from m import Base as B`, `B = Base`), each with the methods
    it defines itself — what finding a class's subclasses reads;
    "@pass:<name>": its calls that pass a name or attribute on as an argument (what may be a
    function or class), by the last name of what they call (or of what that is an alias of),
    as (scope, called values, arguments) — no lines: the edges they give start in the
    function called, at its own lines."""
    aliases = _aliases(imports, values)
    first: dict[str, Symbol] = {}
    for symbol in symbols:
        first.setdefault(symbol.local_name, symbol)
    methods: dict[str, list[str]] = {}
    for local, symbol in first.items():
        owner, _, name = local.rpartition(".")
        if symbol.kind == SymbolKind.METHOD and owner in first:
            methods.setdefault(owner, []).append(name)
    subs: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
    for local, symbol in first.items():
        if symbol.kind != SymbolKind.CLASS:
            continue
        entry = (local, tuple(sorted(methods.get(local, ()))))
        for short in dict.fromkeys(n for b in symbol.bases for n in _names(b, aliases)):
            subs.setdefault(short, []).append(entry)
    passing: dict[str, set[tuple[str, tuple[str, ...], tuple[str, ...]]]] = {}
    for call in calls:
        if not call.py_args:
            continue
        entry = (call.scope, call.py_values, call.py_args)
        for value in call.py_values:
            for short in _names(value, aliases) if value.isidentifier() else (
                    value[value.rfind(".") + 1:],):
                if short.isidentifier():
                    passing.setdefault(short, set()).add(entry)
    index: dict[str, tuple[tuple[str | tuple[str, ...], ...], ...]] = {
        f"@sub:{short}": tuple(entries) for short, entries in subs.items()}
    index.update((f"@pass:{short}", tuple(sorted(entries))) for short, entries in passing.items())
    return index


_DOTTED_NAME = re.compile(r"\w+(?:\.\w+)*")
_DOTTED_NAME_ONLY = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")
_DOTTED_BYTES = re.compile(rb"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")
_CONSTANTS = (b"True.", b"False.", b"None.")
_NEVER = 1 << 62  # an offset past any file's end
_HANDLERS = {
    "assignment": _values.Collector.assignment,
    "augmented_assignment": _values.Collector.augmented,
    "named_expression": _values.Collector.named,
    "for_statement": _values.Collector.loop,
    "for_in_clause": _values.Collector.loop,
    "with_item": _values.Collector.with_item,
    "return_statement": _values.Collector.ret,
    "yield": _values.Collector.yielded,
    "except_clause": _values.Collector.caught,
}


def _flow(defs: list[_Def], decorations: list[ts.Node | None], call_nodes: list[ts.Node],
          flow_nodes: list[ts.Node], source: bytes) -> tuple[list[CallSite], _values.PyValues]:
    """Call sites with the values of what they call, and the file's value facts: one pass over
    the definitions and statements in document order (each with its scope), then one over the
    calls (every local's values are known by then)."""
    collector = _values.Collector(source)
    scopes_of = collector.scopes
    # Document order; at one byte a definition first, then statements (by end).
    items = [(d.start, 0, 0, i) for i, d in enumerate(defs)]
    items += [(n.start_byte, 1, n.end_byte, i) for i, n in enumerate(flow_nodes)]
    items.sort()
    handlers = _HANDLERS
    stack: list[_Def] = []
    module_scope = scopes_of[""]
    # Each definition's own scope (two definitions of one name have one each).
    def_scopes: list[_values.Scope] = [module_scope] * len(defs)
    open_scopes: list[_values.Scope] = []
    for start, order, _, i in items:
        while stack and stack[-1].end <= start:
            stack.pop()
            open_scopes.pop()
        scope = open_scopes[-1] if open_scopes else module_scope
        if order == 0:
            d = defs[i]
            def_scopes[i] = own = collector.definition(d.node, d.local, d.kind, scope,
                                                       decorations[i])
            stack.append(d)
            open_scopes.append(own)
        else:
            node = flow_nodes[i]
            handlers[node.type](collector, node, scope)
    # Calls by start, then end: nested callees can start at one byte (`super` in `super().m()`),
    # and the order tree-sitter captures them in is not always the same for the same tree.
    # The call nodes are captured (not their callees): a callee's `parent` costs a walk down from
    # the root, its call's `function` one child lookup.
    callees = [c.child_by_field_id(F_FUNCTION) for c in call_nodes]
    order_of = sorted((n.start_byte, n.end_byte, i) for i, n in enumerate(callees)
                      if n is not None and n.is_named)  # as `function: (_)` matched
    calls: list[CallSite] = []
    dotted, dotted_name = _DOTTED_BYTES.fullmatch, _DOTTED_NAME.fullmatch
    values_of, substituted, arguments = collector.values, collector.substituted, collector.arguments
    substitute = collector.substitute
    open_defs: list[int] = []
    next_def, n_defs = 0, len(defs)
    scope = module_scope
    # A plain dotted callee's (callee, values) by its text, in the current scope: the same text
    # in one scope has the same values (`substitute` remembers them), and most scopes call the
    # same few names again and again.
    named: dict[bytes, tuple[str, tuple[str, ...]]] = {}
    named_in: dict[int, dict[bytes, tuple[str, tuple[str, ...]]]] = {-1: named}
    # The next offset at which the enclosing definition changes (the next one starts or the
    # innermost open one ends): one comparison per call instead of the walk below.
    boundary = defs[0].start if defs else _NEVER
    for start, end, i in order_of:
        if start >= boundary:
            while next_def < n_defs and defs[next_def].start <= start:
                begin = defs[next_def].start
                while open_defs and defs[open_defs[-1]].end <= begin:
                    open_defs.pop()
                open_defs.append(next_def)
                next_def += 1
            while open_defs and defs[open_defs[-1]].end <= start:
                open_defs.pop()
            innermost = open_defs[-1] if open_defs else -1
            scope = def_scopes[innermost] if open_defs else module_scope
            named = named_in.setdefault(innermost, {})
            boundary = min(defs[next_def].start if next_def < n_defs else _NEVER,
                           defs[innermost].end if open_defs else _NEVER)
        node = callees[i]
        kind = node.type
        if kind == "identifier" or kind == "attribute":
            text = source[start:end]  # the node's text (`.text` costs more than the slice)
            known = named.get(text)
            if known is not None:
                callee, values = known
                calls.append(CallSite(scope.local, callee, node.start_point[0] + 1, values,
                                      arguments(call_nodes[i], scope) if values else ()))
                continue
        else:
            text = None
        if text is not None and (kind == "identifier" or dotted(text)) and not text.startswith(
                _CONSTANTS):
            # A plain dotted name (not `True.x`: True is no identifier): its text is its value.
            # (Only these are remembered: `values` of others may bind a walrus's name.)
            raw = [text.decode("utf-8")]
            # An identifier outside ASCII is a dotted name only if \w takes all its characters.
            callee = raw[0] if kind == "attribute" or text.isascii() or dotted_name(
                raw[0]) else ""
        else:
            text = None
            raw = values_of(node, scope)
            if len(raw) == 1 and dotted_name(raw[0]):
                callee = raw[0]
            elif len(raw) == 1 and raw[0].startswith("<s:"):
                callee = "super()" + _values.split(raw[0])[1]
            else:
                callee = ""
        if not scope.local:
            values = tuple(raw)
        elif len(raw) == 1 and len(raw[0]) <= _values.MAX_EXPR:
            values = tuple(substitute(scope, raw[0]))  # unique and within limits already
        else:
            values = substituted(scope, raw)
        if text is not None:
            named[text] = (callee, values)
        calls.append(CallSite(scope.local, callee, node.start_point[0] + 1, values,
                              arguments(call_nodes[i], scope) if values else ()))
    return calls, collector.facts()
