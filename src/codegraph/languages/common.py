"""What every language plug-in shares, once: tree-sitter text helpers (node text, signatures
cut at a child, parse-error counts), doc-comment cleaning, the enclosing-definition scope
table, the resolver's machinery for recording reads and memoising answers independently of the
order in which files are resolved, and `LanguageBase`, the defaults of the `Language` interface.

Language-neutral: nothing here knows a grammar's node types beyond what it is given.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from collections.abc import Set as AbstractSet
from typing import Any

import tree_sitter as ts

from codegraph.model import Read

MAX_SIGNATURE = 300
MAX_DOCSTRING = 2000


def text(node: ts.Node | None) -> str:
    if node is None:
        return ""
    data = node.text
    return data.decode("utf-8", "replace") if data is not None else ""


def squash(value: str) -> str:
    return " ".join(value.split())


def squashed_head(start: int, end: int, source: bytes, limit: int = MAX_SIGNATURE) -> str:
    """`squash(source[start:end])[:limit]`, decoding only as much of a large range as that needs
    (a 750 KB literal needs its first few hundred bytes). Exact: the squashed text of a prefix is
    a prefix of the squashed whole."""
    span = 4 * limit
    while True:
        stop = min(end, start + span)
        # `source` is valid UTF-8: only a character cut at `stop` can fail to decode.
        head = squash(source[start:stop].decode("utf-8", "ignore" if stop < end else "replace"))
        if len(head) >= limit or stop == end:
            return head[:limit]
        span *= 4


def signature(node: ts.Node, source: bytes, end_node: ts.Node | None) -> str:
    """The node's text from its start to the end of `end_node` (its whole text when None),
    whitespace squashed, at most MAX_SIGNATURE characters."""
    end = end_node.end_byte if end_node is not None else node.end_byte
    return squashed_head(node.start_byte, end, source, MAX_SIGNATURE)


def count_errors(root: ts.Node, error_query: ts.Query) -> int:
    """How many parse errors a tree has (`error_query` captures `(ERROR) @err`): 0 for a clean
    tree, else at least 1 (a missing node is an error without an ERROR node)."""
    if not root.has_error:
        return 0
    return max(1, len(ts.QueryCursor(error_query).captures(root).get("err", [])))


def line_count(source_text: str) -> int:
    return source_text.count("\n") + (0 if source_text.endswith("\n") or not source_text else 1)


def block_comment_doc(comment: str) -> str:
    """The text of a `/** ... */` doc comment: delimiters and leading `*` removed, lines stripped."""
    body = comment[3:-2] if comment.startswith("/**") and comment.endswith("*/") else comment
    lines = []
    for line in body.splitlines():
        line = line.strip()
        if line.startswith("*"):
            line = line[1:].strip()
        lines.append(line)
    return "\n".join(lines).strip()[:MAX_DOCSTRING]


def _comment_lines(comment: str) -> list[str]:
    if comment.startswith("//"):
        return [comment[2:].strip()]
    if comment.startswith("/*"):
        body = comment[2:-2] if comment.endswith("*/") else comment[2:]
        return [line.strip().lstrip("*").strip() for line in body.splitlines()]
    if comment.startswith("#"):
        return [comment[1:].strip()]
    return [comment.strip()]


def comments_doc(comments: Sequence[str]) -> str:
    """The text of a block of comments (`// ...`, `/* ... */`, `# ...`, nearest last), each line
    without its comment markers."""
    return "\n".join(line for c in comments for line in _comment_lines(c)).strip()[:MAX_DOCSTRING]


def doc_comment(node: ts.Node, comment_type: str = "comment") -> str:
    """The block of comments ending on the line right above `node`, markers removed; "" when
    there is none (a blank line between ends the block)."""
    return comments_doc([text(c) for c in preceding_comments(node, comment_type)])


def preceding_comments(node: ts.Node, comment_type: str = "comment") -> list[ts.Node]:
    """The comments directly above `node`: consecutive siblings of `comment_type`, each ending on
    the line before the next (no blank line between them and the node), nearest last."""
    out: list[ts.Node] = []
    line = node.start_point[0]
    sibling = node.prev_sibling
    while sibling is not None and sibling.type == comment_type and sibling.end_point[0] >= line - 1:
        out.append(sibling)
        line = sibling.start_point[0]
        sibling = sibling.prev_sibling
    out.reverse()
    return out


class Def:
    """A definition's byte range and local name, for the scope table (and, for the language
    that needs it later, its node)."""

    __slots__ = ("end", "kind", "local", "node", "start")

    def __init__(self, start: int, end: int, local: str, kind: str,
                 node: ts.Node | None = None) -> None:
        self.start, self.end, self.local, self.kind, self.node = start, end, local, kind, node


class Scopes:
    """Answers "which definition encloses byte offset X" for offsets visited in increasing order
    (`defs` sorted by start; nested definitions inside their parents)."""

    def __init__(self, defs: list[Def]) -> None:
        self._defs = defs
        self._next = 0
        self._stack: list[Def] = []

    def at(self, offset: int) -> str:
        return d.local if (d := self.definition_at(offset)) is not None else ""

    def definition_at(self, offset: int) -> Def | None:
        defs, stack = self._defs, self._stack
        while self._next < len(defs) and defs[self._next].start <= offset:
            d = defs[self._next]
            while stack and stack[-1].end <= d.start:
                stack.pop()
            stack.append(d)
            self._next += 1
        while stack and stack[-1].end <= offset:
            stack.pop()
        return stack[-1] if stack else None


# ----- resolution ----------------------------------------------------------------------------


class Reads:
    """A stack of read sets, one per question being answered; a read goes to the innermost."""

    __slots__ = ("stack", "top")

    def __init__(self) -> None:
        self.stack: list[set[Read]] = [set()]
        self.top = self.stack[0]

    def push(self) -> None:
        self.top = set()
        self.stack.append(self.top)

    def pop(self) -> set[Read]:
        done = self.stack.pop()
        self.top = self.stack[-1]
        return done

    def add(self, path: str, key: str) -> None:
        self.top.add((path, key))

    def reset(self) -> None:  # in place: every loaded module holds this object
        self.stack[:] = [set()]
        self.top = self.stack[0]


NO_CUT = 1 << 30


class Memo:
    """Memoised lookups whose answers never depend on who asked first (what makes resolving a
    subset of files give the same results as resolving all of them): a result that relied on
    cutting a cycle at an *enclosing* question is recomputed next time instead of remembered,
    and a remembered answer brings its reads along. A resolver subclasses it, or holds one
    (`reads`: the stack its loaded files record into)."""

    def __init__(self, reads: Reads | None = None) -> None:
        self._reads = reads if reads is not None else Reads()
        self._active: dict[Hashable, int] = {}
        self._cut = NO_CUT
        # key -> (answer, its reads): the reads a set, which nothing changes once it is here.
        self._memo: dict[Hashable, tuple[Any, AbstractSet[Read]]] = {}

    def start_file(self) -> None:
        self._reads.reset()
        self._cut = NO_CUT

    def read(self, path: str, key: str) -> None:
        self._reads.top.add((path, key))

    def file_reads(self, path: str) -> set[Read]:
        """The reads of the file being resolved, its own facts left out."""
        return {read for read in self._reads.stack[0] if read[0] != path}

    def memoised(self, key: Hashable, compute: Callable[[], Any], on_cycle: Any) -> Any:
        hit = self._memo.get(key)
        if hit is not None:
            self._reads.top |= hit[1]
            return hit[0]
        active = self._active.get(key)
        if active is not None:
            self._cut = min(self._cut, active)
            return on_cycle
        # `Reads.push` and `pop`, inlined: this runs for every answer not yet remembered.
        stack = self._reads.stack
        depth = len(stack)
        self._active[key] = depth
        reads: set[Read] = set()
        stack.append(reads)
        self._reads.top = reads
        outer_cut, self._cut = self._cut, NO_CUT
        try:
            result = compute()
        finally:
            stack.pop()
            outer = self._reads.top = stack[-1]
            del self._active[key]
            cut = self._cut
        outer |= reads
        if cut >= depth:
            # `reads` is no one else's now, and nothing changes it again: kept, not copied.
            self._memo[key] = (result, reads)
            cut = NO_CUT
        self._cut = min(outer_cut, cut)
        return result
