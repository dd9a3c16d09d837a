"""Tree-sitter helpers that any language package can use: node text, signatures cut at a child,
doc comments written as a block of comments right above a definition, and which definition
encloses a byte offset. Nothing here knows a language's node types beyond what it is given."""

from __future__ import annotations

import tree_sitter as ts

MAX_SIGNATURE = 300
MAX_DOC = 2000


def text(node: ts.Node | None) -> str:
    if node is None:
        return ""
    data = node.text
    return data.decode("utf-8", "replace") if data is not None else ""


def squash(value: str) -> str:
    return " ".join(value.split())


def signature(node: ts.Node, source: bytes, end_node: ts.Node | None) -> str:
    """The node's text from its start to the end of `end_node` (its whole text when None),
    whitespace squashed, at most MAX_SIGNATURE characters."""
    end = end_node.end_byte if end_node is not None else node.end_byte
    end = min(end, node.start_byte + 4 * MAX_SIGNATURE)
    return squash(source[node.start_byte : end].decode("utf-8", "ignore"))[:MAX_SIGNATURE]


def _comment_lines(comment: str) -> list[str]:
    if comment.startswith("//"):
        return [comment[2:].strip()]
    if comment.startswith("/*"):
        body = comment[2:-2] if comment.endswith("*/") else comment[2:]
        return [line.strip().lstrip("*").strip() for line in body.splitlines()]
    if comment.startswith("#"):
        return [comment[1:].strip()]
    return [comment.strip()]


def doc_comment(node: ts.Node, comment_type: str = "comment") -> str:
    """The block of comments ending on the line right above `node`, each line without its
    comment markers; "" when there is none (a blank line between ends the block)."""
    lines: list[list[str]] = []
    expect_row = node.start_point[0] - 1
    sibling = node.prev_sibling
    while sibling is not None and sibling.type == comment_type and sibling.end_point[0] == expect_row:
        lines.append(_comment_lines(text(sibling)))
        expect_row = sibling.start_point[0] - 1
        sibling = sibling.prev_sibling
    out = "\n".join(line for block in reversed(lines) for line in block).strip()
    return out[:MAX_DOC]


class Scopes:
    """Which definition encloses byte offset X, for offsets asked in increasing order.
    `defs` are (start byte, end byte, local name), sorted by start."""

    def __init__(self, defs: list[tuple[int, int, str]]) -> None:
        self._defs = defs
        self._next = 0
        self._stack: list[tuple[int, int, str]] = []

    def at(self, offset: int) -> str:
        defs, stack = self._defs, self._stack
        while self._next < len(defs) and defs[self._next][0] <= offset:
            d = defs[self._next]
            while stack and stack[-1][1] <= d[0]:
                stack.pop()
            stack.append(d)
            self._next += 1
        while stack and stack[-1][1] <= offset:
            stack.pop()
        return stack[-1][2] if stack else ""


def count_errors(root: ts.Node, error_query: ts.Query) -> int:
    if not root.has_error:
        return 0
    return max(1, len(ts.QueryCursor(error_query).captures(root).get("err", [])))
