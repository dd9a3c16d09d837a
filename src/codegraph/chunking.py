"""Language-independent chunking mechanics: line ranges ("pieces") to hashed chunks.

A language cuts a file into pieces that follow its syntax; this module makes the pieces cover
every line, merges small neighbours of the same scope up to the size budget, and turns them into
`Chunk` values. Files of languages without a plug-in are cut into line windows.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import accumulate

import xxhash

from codegraph.model import Chunk


@dataclass
class Piece:
    start: int  # 0-based row, inclusive
    end: int  # 0-based row, inclusive
    symbol: str  # innermost symbol enclosing the piece
    scope: str  # the container it was cut from; only pieces of one scope merge


class Lines:
    """A file's lines with O(1) size of any row range."""

    def __init__(self, text: str) -> None:
        self.rows = text.splitlines(keepends=True)
        self._cum = [0, *accumulate(len(r) for r in self.rows)]

    def __len__(self) -> int:
        return len(self.rows)

    def size(self, start: int, end: int) -> int:
        return self._cum[end + 1] - self._cum[start]


def text_hash(text: str) -> str:
    return xxhash.xxh3_128_hexdigest(text.encode("utf-8"))


def windows(lines: Lines, start: int, end: int, symbol: str, scope: str, max_chars: int) -> list[Piece]:
    """Cut rows start..end into consecutive windows of at most max_chars (one row at least)."""
    out: list[Piece] = []
    first = start
    for row in range(start, end + 1):
        if row > first and lines.size(first, row) > max_chars:
            out.append(Piece(first, row - 1, symbol, scope))
            first = row
    if first <= end:
        out.append(Piece(first, end, symbol, scope))
    return out


def finish(lines: Lines, pieces: list[Piece], max_chars: int, min_chars: int) -> list[Chunk]:
    """Cover every row, merge small same-scope neighbours, trim blank edges, hash."""
    if not lines.rows:
        return []
    if not pieces:
        pieces = windows(lines, 0, len(lines) - 1, "", "", max_chars)
    pieces = sorted(pieces, key=lambda p: (p.start, p.end))

    covered: list[Piece] = []
    for piece in pieces:
        if covered and piece.start <= covered[-1].end:
            # Two statements sharing a row cannot be separated by rows: keep them together.
            prev = covered[-1]
            prev.end = max(prev.end, piece.end)
            if prev.symbol != piece.symbol:
                prev.symbol = prev.scope
            continue
        piece.start = covered[-1].end + 1 if covered else 0
        covered.append(piece)
    covered[-1].end = len(lines) - 1

    merged: list[Piece] = []
    for piece in covered:
        if merged:
            cur = merged[-1]
            a, b = lines.size(cur.start, cur.end), lines.size(piece.start, piece.end)
            if cur.scope == piece.scope and (a < min_chars or b < min_chars) and a + b <= max_chars:
                cur.end = piece.end
                if cur.symbol != piece.symbol:
                    cur.symbol = cur.scope
                continue
        merged.append(piece)

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
