"""Python value facts of one file (part of L1's per-file half): what each name, attribute, return
and call site may hold, as *value expressions* in terms of names this file does not bind locally.

Flow-insensitive, per scope: every value assigned to a local anywhere in a function is a value
it may hold. Locals are substituted away here (`x = Foo(); x.run()` gives the call site the
expression `Foo().run`), so what is left refers only to free names (resolved across files by
`resolve.py`), to this file's classes and boxes, and to parameters nothing is known of. That is
what keeps the file's *interface* (the facts other files may read) stable under body edits: a
function's return expressions change only when what it may return changes, never when a call
or a local that does not reach a return is edited.

Value expression syntax (strings, compared and hashed as such):
    base   NAME            a free name, looked up in the expression's scope
           <i:C>           an instance of this file's class C (``self`` in C's methods)
           <c:C>           the class C itself (``cls``, the first parameter of a classmethod)
           <s:C>           ``super()`` in a method of C
           <a:NAME>        a parameter nothing is known of
           <b:ID>          a container literal of this file (box ID = "scope:target")
    op     .NAME           attribute
           ()              call (arguments are not part of the value)
           []  [=KEY]      an element (any, or the one with this literal key or index)
           !               an instance of (annotations: ``x: Foo`` is ``Foo!``)
           *               a collection of instances of (``x: list[Foo]`` is ``Foo*``)
           ^               what ``with`` binds (``__enter__``, or a generator's yield)
"""

from __future__ import annotations

import re

import tree_sitter as ts
import tree_sitter_python as tsp

from codegraph.model import PyValues

# Field ids, looked up once: `child_by_field_name` scans the grammar's field names on every call
# (for the later names in the table, twice what `child_by_field_id` costs).
_field_id = ts.Language(tsp.language()).field_id_for_name
F_ALIAS = _field_id("alias")
F_ARGUMENTS = _field_id("arguments")
F_ATTRIBUTE = _field_id("attribute")
F_BODY = _field_id("body")
F_DEFINITION = _field_id("definition")
F_FUNCTION = _field_id("function")
F_KEY = _field_id("key")
F_LEFT = _field_id("left")
F_MODULE_NAME = _field_id("module_name")
F_NAME = _field_id("name")
F_OBJECT = _field_id("object")
F_PARAMETERS = _field_id("parameters")
F_RETURN_TYPE = _field_id("return_type")
F_RIGHT = _field_id("right")
F_SUBSCRIPT = _field_id("subscript")
F_SUPERCLASSES = _field_id("superclasses")
F_TYPE = _field_id("type")
F_VALUE = _field_id("value")

MAX_VALUES = 12  # per name or expression: beyond it, the rest are dropped (flow-insensitive)
MAX_EXPR = 240  # characters of one expression
MAX_ARGS = 6  # the arguments of a call looked at for functions passed on
_KEY = re.compile(r"\w+")
_DOTTED = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")
_WRAPPERS = frozenset({"Optional", "Union", "Annotated", "Final", "ClassVar"})
_CONTAINERS = ("list", "tuple", "set", "dictionary", "expression_list")
# The kinds of expression `Collector.values` gives values of (any other kind has none).
_VALUED = frozenset({"identifier", "attribute", "call", "subscript", "parenthesized_expression",
                     "await", "conditional_expression", "boolean_operator", "named_expression"})
_SAME_ELEMENTS = frozenset({b"list", b"tuple", b"sorted", b"reversed", b"set", b"frozenset",
                            b"iter"})
# Annotations of collections whose elements (or, for mappings, values) are the last argument's.
_COLLECTIONS = frozenset({"List", "list", "Sequence", "MutableSequence", "Iterable", "Iterator",
                          "Set", "set", "FrozenSet", "frozenset", "Collection", "Tuple", "tuple",
                          "Generator", "AsyncIterator", "AsyncIterable", "AbstractSet", "Deque",
                          "deque", "Dict", "dict", "Mapping", "MutableMapping", "DefaultDict",
                          "OrderedDict"})
_FIRST_IS_CLASS = frozenset({"__new__", "__init_subclass__", "__class_getitem__"})
_BASE = re.compile(r"<[^>]*>|\w+")
_WORD = re.compile(r"\w+")
_DOTTED_BYTES = re.compile(rb"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")
_CONSTANTS = (b"True.", b"False.", b"None.")  # not identifiers: `True.x` has no value


def split(expr: str) -> tuple[str, str]:
    """(base, the ops after it)."""
    m = _BASE.match(expr)
    end = m.end() if m else 0
    return expr[:end], expr[end:]


class Scope:
    __slots__ = (
        "_busy",
        "_chain",
        "_done",
        "_subs",
        "boxes",
        "cls",
        "first",
        "generator",
        "kind",
        "local",
        "params",
        "parent",
        "passed",
        "raw",
        "returns",
        "yields",
    )

    def __init__(self, local: str, kind: str, parent: Scope | None, cls: str | None) -> None:
        self.local, self.kind, self.parent = local, kind, parent
        self.cls = cls  # for a method (or a function nested in one): its class's local name
        self.first: str | None = None  # a method's first parameter (self / cls)
        self.raw: dict[str, list[str]] = {}  # local name -> value expressions as written
        self.boxes: dict[str, dict[str, list[str]]] = {}  # box id -> key -> values
        self.params: list[str] = []
        self.returns: list[str] = []
        self.yields: list[str] = []
        self.generator = False
        self._done: dict[str, list[str]] = {}
        self._subs: dict[str, list[str]] = {}
        self._busy: set[str] = set()
        self._chain: list[Scope] | None = None  # the scopes a local's name is looked up in
        # A plain argument's text -> its values that may pass a function on (`arguments`).
        self.passed: dict[bytes, list[str]] = {}

    def chain(self) -> list[Scope]:
        """This scope (unless the module's) and the functions around it, innermost first: where a
        name may be a local (a class's body is not looked in from its methods)."""
        chain = self._chain
        if chain is None:
            chain = self._chain = []
            current: Scope | None = self
            while current is not None and current.kind != "module":
                chain.append(current)
                current = current.parent
                while current is not None and current.kind == "class":
                    current = current.parent
        return chain


def _add(out: list[str], values: list[str]) -> None:
    for v in values:
        if len(out) >= MAX_VALUES:
            return
        if v not in out and len(v) <= MAX_EXPR:
            out.append(v)


class Collector:
    """Walks the captured statements of one file (in document order, each with its scope)."""

    def __init__(self, source: bytes) -> None:
        self.source = source  # the file's bytes: a node's text is a slice (`.text` costs more)
        self.scopes: dict[str, Scope] = {"": Scope("", "module", None, None)}
        self.attrs: dict[str, list[tuple[str, str]]] = {}  # "C:x" -> (scope, value as written)
        self.decorators: dict[str, list[str]] = {}
        self._substituting = 0  # local_values computations under way
        self._chained: set[ts.Node] = set()  # inner assignments of chains, bound by the outer

    # ----- expressions ----------------------------------------------------------------

    def text(self, node: ts.Node) -> str:
        """The node's text (what `common.text` gives, for half the cost)."""
        return self.source[node.start_byte:node.end_byte].decode("utf-8", "replace")

    def string_content(self, node: ts.Node) -> str | None:
        """The content of a plain string literal (not an f-string), else None."""
        if node.type != "string":
            return None
        parts = [c for c in node.named_children if c.type not in ("string_start", "string_end")]
        if any(c.type != "string_content" for c in parts):
            return None  # an f-string
        return "".join(self.text(c) for c in parts)

    def values(self, node: ts.Node | None, scope: Scope) -> list[str]:
        """The value expressions of an expression node, as written (locals not substituted)."""
        if node is None:
            return []
        kind = node.type
        if kind not in _VALUED:
            return []
        if kind == "identifier":
            return [self.text(node)]
        if kind == "attribute":
            text = self.source[node.start_byte:node.end_byte]
            if _DOTTED_BYTES.fullmatch(text) and not text.startswith(
                    _CONSTANTS):  # a plain dotted chain: its text (the walk below gives it)
                return [text.decode("utf-8")]
            obj = node.child_by_field_id(F_OBJECT)
            attr = node.child_by_field_id(F_ATTRIBUTE)
            if attr is None:
                return []
            suffix = "." + self.text(attr)
            return [v + suffix for v in self.values(obj, scope)]
        if kind == "call":
            fn = node.child_by_field_id(F_FUNCTION)
            if fn is None:
                return []
            fn_kind = fn.type
            if fn_kind == "identifier":
                fn_text = self.source[fn.start_byte:fn.end_byte]
                if fn_text == b"super":
                    return [f"<s:{scope.cls}>"] if scope.cls is not None else []
                if fn_text in _SAME_ELEMENTS:  # list(x), sorted(x): x's elements
                    args = node.child_by_field_id(F_ARGUMENTS)
                    if args is not None and args.named_child_count == 1 and (
                            args.named_children[0].type != "keyword_argument"):
                        return [v for v in self.values(args.named_children[0], scope)
                                if v.endswith("]") or v.startswith("<b:") or v.endswith("*")]
                return [fn_text.decode("utf-8", "replace") + "()"]  # `values` of the name
            return [v + "()" for v in self.values(fn, scope)]
        if kind == "subscript":
            key = node.child_by_field_id(F_SUBSCRIPT)
            op = "[]"
            if key is not None:
                literal = self.string_content(key) if key.type == "string" else (
                    self.text(key) if key.type == "integer" else None)
                if literal is not None and _KEY.fullmatch(literal):
                    op = f"[={literal}]"
            return [v + op for v in self.values(node.child_by_field_id(F_VALUE), scope)]
        if kind in ("parenthesized_expression", "await"):
            return self.values(node.named_children[0] if node.named_child_count else None, scope)
        if kind == "conditional_expression":
            children = node.named_children
            out: list[str] = []
            if children:
                _add(out, self.values(children[0], scope))
            if len(children) > 2:
                _add(out, self.values(children[2], scope))
            return out
        if kind == "boolean_operator":
            out = []
            _add(out, self.values(node.child_by_field_id(F_LEFT), scope))
            _add(out, self.values(node.child_by_field_id(F_RIGHT), scope))
            return out
        if kind == "named_expression":
            self.named(node, scope)
            return self.values(node.child_by_field_id(F_VALUE), scope)
        return []

    def arguments(self, call: ts.Node | None, scope: Scope) -> tuple[str, ...]:
        """The arguments of a call that are names or attributes (what may pass a function or
        a class on), as "<position>=<value>" / "<keyword>=<value>", locals substituted."""
        args = call.child_by_field_id(F_ARGUMENTS) if call is not None else None
        if args is None:
            return ()
        count = args.named_child_count
        if not count or args.type != "argument_list":
            return ()
        out: list[str] = []
        source, passed = self.source, scope.passed
        # `named_child(i)`, not `named_children`: that makes a node of every comma too.
        for i in range(min(count, MAX_ARGS)):
            arg = args.named_child(i)
            kind = arg.type
            if kind == "identifier" or kind == "attribute":
                slot = str(i)
            elif kind == "keyword_argument":
                value_node = arg.child_by_field_id(F_VALUE)
                if value_node is None:
                    continue
                kind = value_node.type
                if kind != "identifier" and kind != "attribute":
                    continue
                name = arg.child_by_field_id(F_NAME)
                slot = self.text(name) if name is not None else "?"
                arg = value_node
            else:
                continue
            text = source[arg.start_byte:arg.end_byte]
            kept = passed.get(text)
            if kept is None:
                if len(text) <= MAX_EXPR and (kind == "identifier" or (
                        _DOTTED_BYTES.fullmatch(text) and not text.startswith(_CONSTANTS))):
                    # A name or plain dotted chain is its text (as `values` gives it);
                    # substituted, it is one expression's substitution: unique, within the
                    # limits already. What of it may pass a function on is the same wherever
                    # the scope passes it: remembered by its text.
                    expr = text.decode("utf-8", "replace")
                    values = self.substitute(scope, expr) if scope.local else (expr,)
                    kept = passed[text] = [v for v in values
                                           if "()" not in v and not v.startswith("<a:")]
                else:  # `values` of the node (not remembered: a walrus in it binds a name)
                    values = (self.substituted(scope, self.values(arg, scope)) if scope.local
                              else self.values(arg, scope))
                    kept = [v for v in values if "()" not in v and not v.startswith("<a:")]
            for value in kept:
                out.append(f"{slot}={value}")
        return tuple(out)

    def annotation(self, node: ts.Node | None) -> list[str]:
        """Instances an annotation says a name holds: `Foo`, `Optional[Foo]`, `Foo | None`,
        `"Foo"`, `Union[A, B]`, a user generic `Repo[T]` (its class)."""
        if node is None:
            return []
        kind = node.type
        if kind == "type":
            return self.annotation(node.named_children[0] if node.named_child_count else None)
        if kind in ("identifier", "attribute"):
            text = self.text(node)
            return [text + "!"] if _DOTTED.fullmatch(text) and text != "None" else []
        if kind == "string":
            content = (self.string_content(node) or "").strip()
            if _DOTTED.fullmatch(content):
                return [content + "!"]
            names = [n for n in re.split(r"[\s|\[\],]+", content) if n]
            if (names and names[0] in _WRAPPERS) or "|" in content:
                return [n + "!" for n in names if _DOTTED.fullmatch(n) and n != "None"
                        and n not in _WRAPPERS]
            return []
        if kind == "binary_operator":
            return [*self.annotation(node.child_by_field_id(F_LEFT)),
                    *self.annotation(node.child_by_field_id(F_RIGHT))]
        if kind in ("generic_type", "subscript"):
            children = node.named_children
            if not children:
                return []
            head = self.text(children[0])
            short = head.rpartition(".")[2]
            if short in ("Type", "type"):  # the class itself
                inner = children[1] if kind == "generic_type" and len(children) > 1 else None
                return [v[:-1] for v in self.annotation(inner) if v.endswith("!")]
            if short in _COLLECTIONS:
                args = children[1:] if kind == "generic_type" else [
                    node.child_by_field_id(F_SUBSCRIPT)]
                arg = args[-1] if args else None
                items = arg.named_children if arg is not None and arg.type in (
                    "type_parameter", "tuple") else [arg] if arg is not None else []
                element = items[-1] if short in ("Dict", "dict", "Mapping", "MutableMapping",
                                                 "DefaultDict", "OrderedDict") else (
                    items[0] if items else None)
                if short == "Generator" and items:
                    element = items[0]
                return [v[:-1] + "*" for v in self.annotation(element) if v.endswith("!")]
            if short in _WRAPPERS or head in _WRAPPERS:
                out: list[str] = []
                args = children[1:] if kind == "generic_type" else [
                    node.child_by_field_id(F_SUBSCRIPT)]
                for arg in args:
                    if arg is None:
                        continue
                    items = arg.named_children if arg.type in ("type_parameter", "tuple") else [arg]
                    if short == "Annotated" and items:
                        items = items[:1]
                    for item in items:
                        _add(out, self.annotation(item))
                return out
            return [head + "!"] if _DOTTED.fullmatch(head) else []
        return []

    def box(self, scope: Scope, target: str, node: ts.Node) -> str:
        """The box of a container literal assigned to `target` in `scope`: its marker value."""
        box_id = f"{scope.local}:{target}"
        keyed = scope.boxes.setdefault(box_id, {})
        if node.type == "dictionary":
            for pair in node.named_children:
                if pair.type != "pair":
                    continue
                key = pair.child_by_field_id(F_KEY)
                literal = self.string_content(key) if key is not None else None
                if key is not None and key.type == "integer":
                    literal = self.text(key)
                slot = literal if literal is not None and _KEY.fullmatch(literal) else ""
                _add(keyed.setdefault(slot, []),
                     self.values(pair.child_by_field_id(F_VALUE), scope))
        else:
            for i, item in enumerate(node.named_children):
                _add(keyed.setdefault(str(i), []), self.values(item, scope))
        return f"<b:{box_id}>"

    # ----- statements -----------------------------------------------------------------

    def bind(self, scope: Scope, target: ts.Node, values: list[str],
             value_node: ts.Node | None = None) -> None:
        """`target = value`: what the target may now hold (a name, an attribute of self,
        a subscript of a name, or a tuple of those)."""
        kind = target.type
        if kind == "identifier":
            name = self.text(target)
            slot = scope.raw.setdefault(name, [])
            if value_node is not None and value_node.type in _CONTAINERS:
                _add(slot, [self.box(scope, name, value_node)])
            _add(slot, values)
        elif kind == "attribute":
            obj = target.child_by_field_id(F_OBJECT)
            attr = target.child_by_field_id(F_ATTRIBUTE)
            if (obj is None or attr is None or obj.type != "identifier" or scope.cls is None
                    or scope.first is None or self.text(obj) != scope.first):
                return
            name = self.text(attr)
            slot_values = list(values)
            if value_node is not None and value_node.type in _CONTAINERS:
                slot_values.insert(0, self.box(scope, f"{scope.first}.{name}", value_node))
            facts = self.attrs.setdefault(f"{scope.cls}:{name}", [])
            for v in slot_values:
                if len(facts) < MAX_VALUES and (scope.local, v) not in facts:
                    facts.append((scope.local, v))
        elif kind in ("pattern_list", "tuple_pattern", "list_pattern", "tuple", "list"):
            items = target.named_children
            literal = value_node is not None and value_node.type in (
                "tuple", "list", "expression_list") and value_node.named_child_count == len(items)
            for i, item in enumerate(items):
                if item.type in ("list_splat_pattern", "list_splat"):
                    continue
                if literal and value_node is not None:
                    element = value_node.named_children[i]
                    self.bind(scope, item, self.values(element, scope), element)
                else:
                    self.bind(scope, item, [v + f"[={i}]" for v in values])
        elif kind == "subscript":
            obj = target.child_by_field_id(F_VALUE)
            if obj is None or obj.type != "identifier":
                return
            name = self.text(obj)
            key = target.child_by_field_id(F_SUBSCRIPT)
            literal = self.string_content(key) if key is not None else None
            box_id = f"{scope.local}:{name}"
            _add(scope.raw.setdefault(name, []), [f"<b:{box_id}>"])
            slot = literal if literal is not None and _KEY.fullmatch(literal) else ""
            _add(scope.boxes.setdefault(box_id, {}).setdefault(slot, []), values)

    def assignment(self, node: ts.Node, scope: Scope) -> None:
        if node in self._chained:  # `b = value` of `a = b = value`: bound with `a` already
            return
        left = node.child_by_field_id(F_LEFT)
        right = node.child_by_field_id(F_RIGHT)
        targets = [left] if left is not None else []
        while right is not None and right.type == "assignment":  # a = b = value
            inner = right.child_by_field_id(F_LEFT)
            if inner is not None:
                targets.append(inner)
            if right.child_by_field_id(F_TYPE) is None:
                # Its own statement (captured too, after this one, in this scope) would bind
                # its targets to the same values again: a no-op (`_add` keeps each value once;
                # a slot that dropped a value is full and stays so). A chain of n names binds
                # n names once, not n²/2 times.
                self._chained.add(right)
            right = right.child_by_field_id(F_RIGHT)
        values = self.values(right, scope)
        type_node = node.child_by_field_id(F_TYPE)
        if type_node is not None:
            values = [*values, *self.annotation(type_node)]
        for target in targets:  # (`bind` only reads `values`: one list serves every target)
            self.bind(scope, target, values, right)

    def augmented(self, node: ts.Node, scope: Scope) -> None:
        left = node.child_by_field_id(F_LEFT)
        right = node.child_by_field_id(F_RIGHT)
        if left is None or right is None or left.type != "identifier" or right.type not in (
                "list", "tuple", "set"):
            return
        name = self.text(left)
        box_id = f"{scope.local}:{name}"
        _add(scope.raw.setdefault(name, []), [f"<b:{box_id}>"])
        slot = scope.boxes.setdefault(box_id, {}).setdefault("", [])
        for item in right.named_children:
            _add(slot, self.values(item, scope))

    def named(self, node: ts.Node, scope: Scope) -> None:
        name = node.child_by_field_id(F_NAME)
        value = node.child_by_field_id(F_VALUE)
        if name is not None:
            self.bind(scope, name, self.values(value, scope), value)

    def loop(self, node: ts.Node, scope: Scope) -> None:
        left = node.child_by_field_id(F_LEFT)
        right = node.child_by_field_id(F_RIGHT)
        if left is None or right is None:
            return
        if right.type in ("list", "tuple", "set"):  # over a literal: its elements
            for item in right.named_children:
                self.bind(scope, left, self.values(item, scope), item)
            return
        fn = right.child_by_field_id(F_FUNCTION) if right.type == "call" else None
        args = right.child_by_field_id(F_ARGUMENTS) if fn is not None else None
        if (fn is not None and args is not None and fn.text in (b"enumerate", b"zip")
                and left.type in ("pattern_list", "tuple_pattern")):
            items = [a for a in args.named_children if a.type != "keyword_argument"]
            targets = left.named_children
            if fn.text == b"enumerate" and items and len(targets) == 2:
                self.bind(scope, targets[1], [v + "[]" for v in self.values(items[0], scope)])
            elif fn.text == b"zip" and len(items) == len(targets):
                for target, item in zip(targets, items, strict=True):
                    self.bind(scope, target, [v + "[]" for v in self.values(item, scope)])
        else:
            self.bind(scope, left, [v + "[]" for v in self.values(right, scope)])

    def with_item(self, node: ts.Node, scope: Scope) -> None:
        value = node.child_by_field_id(F_VALUE)
        if value is None or value.type != "as_pattern" or value.named_child_count < 2:
            return
        expr, alias = value.named_children[0], value.named_children[-1]
        target = alias.named_children[0] if alias.named_child_count else None
        if target is not None:
            self.bind(scope, target, [v + "^" for v in self.values(expr, scope)])

    def caught(self, node: ts.Node, scope: Scope) -> None:
        """`except E as e`: e is an instance of E (of each class of a tuple)."""
        pattern = node.named_children[0] if node.named_child_count else None
        if pattern is None or pattern.type != "as_pattern" or pattern.named_child_count < 2:
            return
        kinds, alias = pattern.named_children[0], pattern.named_children[-1]
        target = alias.named_children[0] if alias.named_child_count else None
        classes = kinds.named_children if kinds.type == "tuple" else [kinds]
        values: list[str] = []
        for cls in classes:
            _add(values, [v + "!" for v in self.values(cls, scope)])
        if target is not None:
            self.bind(scope, target, values)

    def ret(self, node: ts.Node, scope: Scope) -> None:
        if scope.kind != "function" or node.named_child_count == 0:
            return
        value = node.named_children[0]
        if value.type in _CONTAINERS:
            _add(scope.returns, [self.box(scope, "<return>", value)])
        else:
            _add(scope.returns, self.values(value, scope))

    def yielded(self, node: ts.Node, scope: Scope) -> None:
        if scope.kind != "function":
            return
        scope.generator = True
        if node.named_child_count and not (node.child_count > 1 and node.children[1].type == "from"):
            _add(scope.yields, self.values(node.named_children[0], scope))

    def definition(self, node: ts.Node, local: str, kind: str, parent: Scope,
                   decorated: ts.Node | None = None) -> Scope:
        """A def or class: its scope, parameters, return annotation and decorators
        (`decorated`: the `decorated_definition` around it, if it has decorators)."""
        if kind == "class":
            scope = Scope(local, "class", parent, None)
        else:
            cls = parent.local if parent.kind == "class" else parent.cls
            scope = Scope(local, "function", parent, cls)
        self.scopes[local] = scope
        decorators: list[str] = []
        if decorated is not None:
            for child in decorated.named_children:
                if child.type == "decorator" and child.named_child_count:
                    _add(decorators, self.values(child.named_children[0], parent) or ["?"])
            if decorators:
                self.decorators[local] = decorators
        if kind == "class":
            return scope
        params = node.child_by_field_id(F_PARAMETERS)
        is_method = parent.kind == "class"
        static = "staticmethod" in decorators
        first_is_class = "classmethod" in decorators or local.rpartition(".")[2] in _FIRST_IS_CLASS
        raw, names = scope.raw, scope.params
        for child in params.named_children if params is not None else ():
            kind_ = child.type
            if kind_ == "identifier":
                name = self.text(child)
                if is_method and not static and not names and cls is not None:
                    scope.first = name
                    raw[name] = [f"<c:{cls}>" if first_is_class else f"<i:{cls}>"]
                else:
                    raw[name] = [f"<a:{name}>"]
                names.append(name)
                continue
            if kind_ == "typed_parameter":
                name_node = child.named_children[0] if child.named_child_count else None
                type_node, default = child.child_by_field_id(F_TYPE), None
            elif kind_ in ("default_parameter", "typed_default_parameter"):
                name_node = child.child_by_field_id(F_NAME)
                type_node, default = child.child_by_field_id(F_TYPE), child.child_by_field_id(F_VALUE)
            else:
                continue
            if name_node is None or name_node.type != "identifier":
                continue
            name = self.text(name_node)
            values: list[str] = []
            if is_method and not static and not scope.params and cls is not None:
                scope.first = name
                values = [f"<c:{cls}>" if first_is_class else f"<i:{cls}>"]
            else:
                _add(values, self.annotation(type_node))
                _add(values, self.values(default, parent))
                if not values:
                    values = [f"<a:{name}>"]
            scope.params.append(name)
            scope.raw[name] = values
        scope.returns.extend(self.annotation(node.child_by_field_id(F_RETURN_TYPE)))
        return scope

    # ----- substitution ---------------------------------------------------------------

    def local_values(self, scope: Scope, name: str) -> list[str]:
        done = scope._done.get(name)
        if done is not None:
            return done
        if name in scope._busy:
            return []
        scope._busy.add(name)
        self._substituting += 1
        out: list[str] = []
        for raw in scope.raw.get(name, ()):
            _add(out, self.substitute(scope, raw))
        self._substituting -= 1
        scope._busy.discard(name)
        scope._done[name] = out
        return out

    def substitute(self, scope: Scope, expr: str) -> list[str]:
        """`expr` with its head replaced by every value of the local it names (in this scope or
        an enclosing function's); unchanged when the head is free or not a name."""
        if self._substituting:  # inside a local's values: may be cut at a cycle, not kept
            return self._substitute(scope, expr)
        subs = scope._subs
        done = subs.get(expr)
        if done is None:
            done = subs[expr] = self._substitute(scope, expr)
        return done

    def _substitute(self, scope: Scope, expr: str) -> list[str]:
        chain = scope._chain
        if chain is None:
            chain = scope.chain()
        if not chain or expr[:1] == "<":  # at module level, or a marker: nothing to replace
            return [expr]
        m = _WORD.match(expr)  # the head (`split`'s base, as the expression is no marker)
        if m is None:
            return [expr]
        end = m.end()
        base = expr[:end]
        for current in chain:
            if base in current.raw:
                if end == len(expr):
                    return self.local_values(current, base)
                rest = expr[end:]
                limit = MAX_EXPR - len(rest)
                return [v + rest for v in self.local_values(current, base) if len(v) <= limit]
        return [expr]

    def substituted(self, scope: Scope, exprs: list[str]) -> tuple[str, ...]:
        out: list[str] = []
        for expr in exprs:
            _add(out, self.substitute(scope, expr))
        return tuple(out)

    def facts(self) -> PyValues:
        returns: dict[str, tuple[str, ...]] = {}
        yields: dict[str, tuple[str, ...]] = {}
        params: dict[str, tuple[str, ...]] = {}
        boxes: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {}
        attrs: dict[str, tuple[tuple[str, str], ...]] = {}
        for local, scope in self.scopes.items():
            if scope.kind == "function":
                if scope.generator:
                    yields[local] = self.substituted(scope, scope.yields)
                elif scope.returns:
                    returns[local] = self.substituted(scope, scope.returns)
                params[local] = tuple(scope.params)
            elif scope.kind == "class":
                for name in scope.raw:
                    attrs.setdefault(f"{local}:{name}", ())
                    attrs[f"{local}:{name}"] += tuple((local, v) for v in
                                                      self.local_values(scope, name))
            for box_id, keyed in scope.boxes.items():
                boxes[box_id] = tuple(sorted(
                    (key, self.substituted(scope, values)) for key, values in keyed.items()))
        for key, facts in self.attrs.items():
            out: list[tuple[str, str]] = list(attrs.get(key, ()))
            for where, raw in facts:
                for v in self.substitute(self.scopes[where], raw):
                    if (where, v) not in out and len(out) < 2 * MAX_VALUES:
                        out.append((where, v))
            attrs[key] = tuple(out)
        module = self.scopes[""]
        variables = {name: tuple(values) for name, values in module.raw.items()}
        decorators = {local: self.substituted(self.scopes[local].parent or module, exprs)
                      for local, exprs in self.decorators.items()}
        return PyValues(returns, yields, params, attrs, variables, boxes, decorators)
