"""What every language's resolver needs to keep updates exact: the reads it made, per question,
and a memo of answers that never depends on the order questions were asked in.

`Reads` is a stack of read sets, one per question being answered; a read goes to the innermost.
`Memo.memoised` remembers an answer together with the reads it took, replays those reads on a
hit, and cuts cycles: an answer that depended on cutting a cycle at an *enclosing* question is
not remembered (asked again later, from elsewhere, it could differ)."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

from codegraph.model import Read

_NO_CUT = 1 << 30


class Reads:
    __slots__ = ("stack", "top")

    def __init__(self) -> None:
        self.stack: list[set[Read]] = [set()]
        self.top = self.stack[0]

    def add(self, path: str, key: str) -> None:
        self.top.add((path, key))

    def push(self) -> None:
        self.top = set()
        self.stack.append(self.top)

    def pop(self) -> set[Read]:
        done = self.stack.pop()
        self.top = self.stack[-1]
        return done

    def reset(self) -> None:  # in place: loaded modules may hold this object
        self.stack[:] = [set()]
        self.top = self.stack[0]


class Memo:
    def __init__(self, reads: Reads) -> None:
        self.reads = reads
        self._active: dict[Hashable, int] = {}
        self._cut = _NO_CUT
        self._memo: dict[Hashable, tuple[Any, frozenset[Read]]] = {}

    def start_file(self) -> None:
        self.reads.reset()
        self._cut = _NO_CUT

    def memoised(self, key: Hashable, compute: Callable[[], Any], on_cycle: Any) -> Any:
        hit = self._memo.get(key)
        reads = self.reads
        if hit is not None:
            reads.top |= hit[1]
            return hit[0]
        active = self._active.get(key)
        if active is not None:
            self._cut = min(self._cut, active)
            return on_cycle
        depth = len(reads.stack)
        self._active[key] = depth
        reads.push()
        outer_cut, self._cut = self._cut, _NO_CUT
        try:
            result = compute()
        finally:
            done = reads.pop()
            del self._active[key]
            cut = self._cut
        reads.top |= done
        if cut >= depth:
            self._memo[key] = (result, frozenset(done))
            cut = _NO_CUT
        self._cut = min(outer_cut, cut)
        return result
