"""Language-independent chunking mechanics: line ranges ("pieces") to hashed chunks.

A language cuts a file into pieces that follow its syntax; this module makes the pieces cover
every line, merges small neighbours of the same scope up to the size budget, and turns them into
`Chunk` values. Files of languages without a plug-in are cut into line windows.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate
from operator import attrgetter

import xxhash

from codegraph.model import Chunk, Symbol


@dataclass(slots=True)
class Piece:
    start: int  # 0-based row, inclusive
    end: int  # 0-based row, inclusive
    symbol: str  # innermost symbol enclosing the piece
    scope: str  # the container it was cut from; only pieces of one scope merge


class Lines:
    """A file's lines with O(1) size of any row range."""

    def __init__(self, text: str) -> None:
        self.rows = text.splitlines(keepends=True)
        self.cumulative = [0, *accumulate(map(len, self.rows))]  # [i]: size of rows before row i

    def __len__(self) -> int:
        return len(self.rows)

    def size(self, start: int, end: int) -> int:
        return self.cumulative[end + 1] - self.cumulative[start]

    def last_row_within(self, start: int, budget: int) -> int:
        """The last row r >= start with size(start, r) <= budget (start itself when even that
        one row is larger)."""
        return max(start, bisect_right(self.cumulative, self.cumulative[start] + budget) - 2)


def text_hash(text: str) -> str:
    return xxhash.xxh3_128_hexdigest(text.encode("utf-8"))


def windows(lines: Lines, start: int, end: int, symbol: str, scope: str, max_chars: int) -> list[Piece]:
    """Cut rows start..end into consecutive windows of at most max_chars (one row at least)."""
    out: list[Piece] = []
    first = start
    while first <= end:
        last = min(end, lines.last_row_within(first, max_chars))
        out.append(Piece(first, last, symbol, scope))
        first = last + 1
    return out


def finish(lines: Lines, pieces: list[Piece], max_chars: int, min_chars: int) -> list[Chunk]:
    """Cover every row, merge small same-scope neighbours, trim blank edges, hash."""
    if not lines.rows:
        return []
    if not pieces:
        pieces = windows(lines, 0, len(lines) - 1, "", "", max_chars)
    pieces = sorted(pieces, key=attrgetter("start", "end"))

    covered: list[Piece] = [pieces[0]]
    pieces[0].start = 0
    prev = pieces[0]
    for piece in pieces[1:]:
        if piece.start <= prev.end:
            # Two statements sharing a row cannot be separated by rows: keep them together.
            prev.end = max(prev.end, piece.end)
            if prev.symbol != piece.symbol:
                prev.symbol = prev.scope
            continue
        piece.start = prev.end + 1
        covered.append(piece)
        prev = piece
    prev.end = len(lines) - 1

    # Sizes straight from the cumulative row sizes: a large literal makes 15,000 pieces.
    cum = lines.cumulative
    merged: list[Piece] = [covered[0]]
    cur = covered[0]
    for piece in covered[1:]:
        a, b = cum[cur.end + 1] - cum[cur.start], cum[piece.end + 1] - cum[piece.start]
        if cur.scope == piece.scope and (a < min_chars or b < min_chars) and a + b <= max_chars:
            cur.end = piece.end
            if cur.symbol != piece.symbol:
                cur.symbol = cur.scope
            continue
        merged.append(piece)
        cur = piece

    chunks: list[Chunk] = []
    rows = lines.rows
    for piece in merged:
        start, end = piece.start, piece.end
        while start <= end and not rows[start].strip():
            start += 1
        while end >= start and not rows[end].strip():
            end -= 1
        if start > end:
            continue
        text = "".join(rows[start : end + 1])
        chunks.append(Chunk(len(chunks), start + 1, end + 1, piece.symbol, text, text_hash(text)))
    return chunks


def chunk_plain_text(text: str, max_chars: int, min_chars: int) -> list[Chunk]:
    """Chunks for files no language plug-in understands: line windows."""
    lines = Lines(text)
    return finish(lines, [], max_chars, min_chars)


def chunk_by_symbols(text: str, symbols: Sequence[Symbol], max_chars: int,
                     min_chars: int) -> list[Chunk]:
    """Definition-level chunks from a file's L1 symbols alone (their local names and line
    ranges), for any language: a definition that fits the budget is one chunk; one that does not
    is its header (the rows before its first nested definition) plus its nested definitions, cut
    the same way, with the rows between them; small neighbours of one scope then merge (`finish`).
    """
    lines = Lines(text)
    if not lines.rows:
        return []
    defs = sorted((s for s in symbols if s.local_name), key=lambda s: (s.start_line, -s.end_line))
    last = len(lines) - 1
    pieces: list[Piece] = []

    def cut(start: int, end: int, scope: str, index: int) -> int:
        """Pieces for rows start..end of `scope`, whose nested definitions begin at defs[index];
        the index of the first definition after the range."""
        row = start
        while index < len(defs) and defs[index].start_line - 1 <= end:
            d = defs[index]
            d_start, d_end = max(d.start_line - 1, row), min(d.end_line - 1, end, last)
            index += 1
            if d_start > d_end or d.start_line - 1 < row:
                continue  # shares rows with the previous piece: it stays in that piece
            if d_start > row:
                pieces.extend(windows(lines, row, d_start - 1, scope, scope, max_chars))
            if lines.size(d_start, d_end) <= max_chars:
                pieces.append(Piece(d_start, d_end, d.local_name, scope))
                while index < len(defs) and defs[index].start_line - 1 <= d_end:
                    index += 1
            else:
                index = cut(d_start, d_end, d.local_name, index)
            row = d_end + 1
        if row <= end:
            pieces.extend(windows(lines, row, end, scope, scope, max_chars))
        return index

    cut(0, last, "", 0)
    return finish(lines, pieces, max_chars, min_chars)
