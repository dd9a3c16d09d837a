"""L2 for Python: chunks that follow the syntax tree.

A function or class that fits the budget is one chunk. One that does not is split at its
children: a header (signature, decorators) and then its body statements, recursively, so a
large class becomes its header plus one chunk per method. Small neighbours of the same scope are
merged afterwards (see `codegraph.chunking.finish`).
"""

from __future__ import annotations

import tree_sitter as ts

from codegraph.chunking import Lines, Piece, finish, windows
from codegraph.languages.python.extract import parse
from codegraph.model import Chunk

_DEF_TYPES = ("function_definition", "class_definition")
_DEFINITION_TYPES = frozenset((*_DEF_TYPES, "decorated_definition"))


class _Cutter:
    def __init__(self, lines: Lines, max_chars: int) -> None:
        self.lines = lines
        self.max = max_chars

    def statement(self, node: ts.Node, scope: str) -> list[Piece]:
        start, end = node.start_point[0], node.end_point[0]
        definition = node
        if node.type == "decorated_definition":
            definition = node.child_by_field_name("definition") or node
        if definition.type in _DEF_TYPES:
            name_node = definition.child_by_field_name("name")
            name = name_node.text.decode("utf-8", "replace") if name_node and name_node.text else "?"
            symbol = f"{scope}.{name}" if scope else name
            if self.lines.size(start, end) <= self.max:
                return [Piece(start, end, symbol, scope)]
            body = definition.child_by_field_name("body")
            if body is None or body.start_point[0] <= start:
                return windows(self.lines, start, end, symbol, scope, self.max)
            # The header (decorators, signature) joins the body's group so it merges with the
            # docstring; the body's statements are cut like any sequence.
            pieces = [Piece(start, body.start_point[0] - 1, symbol, symbol)]
            for child in body.named_children:
                if child.type != "comment":
                    pieces.extend(self.statement(child, symbol))
            return pieces
        if self.lines.size(start, end) <= self.max:
            return [Piece(start, end, scope, scope)]
        children = [c for c in node.named_children if c.type != "comment"]
        if not children or (len(children) == 1 and children[0].start_point == node.start_point
                            and children[0].end_point == node.end_point and not children[0].named_children):
            return windows(self.lines, start, end, scope, scope, self.max)
        pieces = []
        cum, budget = self.lines.cumulative, self.max
        for child in children:
            # Inline for the common case, a small statement or element (a 750 KB literal has
            # 15,000 of them); definitions and large children go through `statement`.
            child_start, child_end = child.start_point[0], child.end_point[0]
            if cum[child_end + 1] - cum[child_start] <= budget and child.type not in _DEFINITION_TYPES:
                pieces.append(Piece(child_start, child_end, scope, scope))
            else:
                pieces.extend(self.statement(child, scope))
        return pieces


def chunk(text: str, max_chars: int, min_chars: int) -> list[Chunk]:
    lines = Lines(text)
    tree = parse(text)
    cutter = _Cutter(lines, max_chars)
    pieces: list[Piece] = []
    try:
        for node in tree.root_node.named_children:
            if node.type != "comment":
                pieces.extend(cutter.statement(node, ""))
    except RecursionError:
        # Pathologically deep nesting: line windows are still searchable chunks.
        pieces = []
    return finish(lines, pieces, max_chars, min_chars)
