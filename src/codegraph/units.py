"""Units of retrieval, language-independent: a file's definitions and its module-level code.

Every function, method and class the language's L1 extraction found is one unit with its exact
line range and local qualified name; the lines of a file outside every definition form
module-level units (one per stretch between two top-level definitions). A class's text is its
header and its own statements, each member definition replaced by a one-line outline (its
signature): never its methods' bodies. A function's text is all of it, nested functions
included (which are units of their own too). So no unit spans two sibling definitions.

A unit whose text is longer than the embedding model's window is cut into *windows* (consecutive
runs of its own lines); each window is embedded after a one-line context header built from the
unit and its file's path (the path as words, the qualified name as words; the signature on
windows after the first); a named unit also has its name text (qualified name as words and
signature, one line) embedded beside its windows. So what is embedded for a unit is a function
of that unit and where it is alone. A unit's lexical document weighs its
head (`lexical_head`: name, qualified name, signature) above its body.

Languages provide units through `Language.units(text, ir)`; `definition_units` is the shared
default (the body of `Language.units`) any language with correct L1 symbols gets for free.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import xxhash

from codegraph import lexical
from codegraph.model import Chunk, FileIR

if TYPE_CHECKING:
    from codegraph.languages import Language

DEFINITION_KINDS = frozenset(("class", "function", "method"))
MODULE_KIND = "module"
PLAIN_UNIT_CHARS = 2000  # a file without a language: units of at most this many characters


@dataclass(frozen=True, slots=True)
class Unit:
    name: str  # local qualified name ("Class.method"); "" for module-level code
    kind: str  # class | function | method | module
    start_line: int  # 1-based, inclusive: the definition's range (decorators included)
    end_line: int
    signature: str
    lines: tuple[tuple[int, str], ...]  # its own text: (1-based line number, line), in order

    @property
    def text(self) -> str:
        return "".join(line for _, line in self.lines)

    def header(self, first: bool, place: str = "") -> str:
        """The one line of context embedded before each window: `place` (its file's path as
        words, `path_words`), the qualified name as words, and on windows after the first
        (which starts with it) the signature. A function of the unit and its path alone."""
        words = " ".join(_name_words(self.name)) if self.name else "module-level code"
        words = f"{place} {words}" if place else words
        signature = "" if first else " ".join(self.signature.split())
        return f"{words}: {signature}\n" if signature else f"{words}\n"

    def name_text(self) -> str | None:
        """The unit's second representation, embedded beside its windows: one line, its
        qualified name as words and its signature (`TextWrapper._split` -> `text wrapper split:
        def _split(self, text)`), none for module-level code. What a definition is for is
        often said best by its name; a long body's windows drown it. Not placed by its path
        (the windows are): measured worse with it (ARCHITECTURE "Search"). No newline: a chunk
        text without one has no window lines (`window_body` is empty)."""
        if not self.name:
            return None
        words = " ".join(_name_words(self.name))
        signature = " ".join(self.signature.split())
        return f"{words}: {signature}" if signature else words


# Path components that say nothing of what a file holds (a package's own module, the usual
# source roots): left out of `path_words`.
_PLACELESS = frozenset(("__init__", "__main__", "index", "mod", "src", "lib"))


def path_words(path: str) -> str:
    """Where a file is, as words: its path's directories and stem, split as identifiers are
    (`click/termui.py` -> `click termui`, `json/__init__.py` -> `json`, `src/lib/httpClient.ts`
    -> `http client`). The place part of every text embedded for the file's units."""
    parts = path.replace("\\", "/").split("/")
    stem = parts[-1].rsplit(".", 1)[0] if "." in parts[-1][1:] else parts[-1]
    out: list[str] = []
    for part in [*parts[:-1], stem]:
        if part and part not in _PLACELESS:
            out.extend(lexical.words(part))
    return " ".join(out)


def text_hash(text: str) -> str:
    """The key of an embedded text (and of its vector): xxh3-128 of its UTF-8 bytes."""
    return xxhash.xxh3_128_hexdigest(text.encode("utf-8"))


def _name_words(name: str) -> list[str]:
    out: list[str] = []
    for part in name.split("."):
        out.extend(lexical.words(part))
    return out


def units_for(lang: Language | None, text: str, ir: FileIR | None) -> list[Unit]:
    """A file's units: its language's (`Language.units`), or line windows for a file without a
    language or without IR."""
    if lang is None or ir is None:
        return plain_units(text)
    return lang.units(text, ir)


def definition_units(text: str, ir: FileIR | None) -> list[Unit]:
    """The units of a file from its L1 symbols (the default of every language)."""
    rows = text.splitlines(keepends=True)
    if not rows:
        return []
    defs = sorted(
        (s for s in (ir.symbols if ir is not None else []) if s.kind in DEFINITION_KINDS
         and 1 <= s.start_line <= s.end_line <= len(rows)),
        key=lambda s: (s.start_line, -s.end_line, s.local_name),
    )
    # Nesting by line containment: a definition's parent is the innermost open one enclosing it.
    # Overlapping but unnested ranges (malformed input) are cut back to their parent's end.
    children: dict[int, list[int]] = {-1: []}
    ranges: list[tuple[int, int]] = []
    stack: list[int] = []
    for i, sym in enumerate(defs):
        start, end = sym.start_line, sym.end_line
        while stack and ranges[stack[-1]][1] < start:
            stack.pop()
        if stack:
            end = min(end, ranges[stack[-1]][1])
        ranges.append((start, end))
        children.setdefault(i, [])
        children[stack[-1] if stack else -1].append(i)
        stack.append(i)

    units: list[Unit] = []

    def own_lines(start: int, end: int, kids: list[int]) -> tuple[tuple[int, str], ...]:
        out: list[tuple[int, str]] = []
        line = start
        for k in kids:
            k_start, k_end = ranges[k]
            if k_start < line:
                continue
            out.extend((n, rows[n - 1]) for n in range(line, k_start))
            first = rows[k_start - 1]
            indent = first[: len(first) - len(first.lstrip())]
            out.append((k_start, f"{indent}{' '.join(defs[k].signature.split()) or first.strip()} ...\n"))
            line = k_end + 1
        out.extend((n, rows[n - 1]) for n in range(line, end + 1))
        return tuple(out)

    for i, sym in enumerate(defs):
        start, end = ranges[i]
        # A class outlines its members; a function keeps what it nests (closures, local
        # classes) inline: they are part of what it does, and units of their own as well.
        kids = children[i] if sym.kind == "class" else []
        lines = own_lines(start, end, kids)
        units.append(Unit(sym.local_name, sym.kind, start, end, sym.signature, lines))

    # Module-level code: each stretch between top-level definitions, blank edges trimmed.
    line = 1
    for k in [*children[-1], None]:
        stop = ranges[k][0] if k is not None else len(rows) + 1
        first, last = line, stop - 1
        while first <= last and not rows[first - 1].strip():
            first += 1
        while last >= first and not rows[last - 1].strip():
            last -= 1
        if first <= last:
            units.append(Unit("", MODULE_KIND, first, last, "",
                              tuple((n, rows[n - 1]) for n in range(first, last + 1))))
        if k is not None:
            line = ranges[k][1] + 1
    units.sort(key=lambda u: (u.start_line, -u.end_line, u.name))
    return units


def plain_units(text: str, max_chars: int = PLAIN_UNIT_CHARS) -> list[Unit]:
    """Files without a language plug-in (or without IR): consecutive line windows, each a unit."""
    whole = Unit("", MODULE_KIND, 1, 1, "", tuple(enumerate(text.splitlines(keepends=True), 1)))
    units: list[Unit] = []
    for a, b in windows(whole, max_chars, 0):
        lines = whole.lines[a:b]
        if any(line.strip() for _, line in lines):
            units.append(Unit("", MODULE_KIND, lines[0][0], lines[-1][0], "", lines))
    return units


def windows(unit: Unit, max_chars: int, min_chars: int) -> list[tuple[int, int]]:
    """Index ranges [a, b) into `unit.lines` of its embedding windows: runs of at most
    max_chars (one line at least); a last run smaller than min_chars joins the one before."""
    lines = unit.lines
    cuts: list[tuple[int, int]] = []
    i = 0
    while i < len(lines):
        size = 0
        j = i
        while j < len(lines) and (j == i or size + len(lines[j][1]) <= max_chars):
            size += len(lines[j][1])
            j += 1
        cuts.append((i, j))
        i = j
    if len(cuts) > 1 and sum(len(line) for _, line in lines[cuts[-1][0]:]) < min_chars:
        cuts[-2:] = [(cuts[-2][0], cuts[-1][1])]
    return cuts


def unit_chunks(units: list[Unit], max_chars: int, min_chars: int, path: str = "") -> list[Chunk]:
    """L2's output: every window of every unit, in order, then (for a named unit) its name
    text (`Unit.name_text`). A chunk carries its unit's range and name (the texts of one unit
    share them) and the embedded text: header (placed by `path`, the file's, as words) + window
    lines, or the name text. A unit scores its best text (`query._unit_hits`), so the name text
    is one more window."""
    chunks: list[Chunk] = []
    place = path_words(path)
    for unit in units:
        for n, (a, b) in enumerate(windows(unit, max_chars, min_chars)):
            body = "".join(line for _, line in unit.lines[a:b])
            if not body.strip():
                continue
            text = unit.header(n == 0, place) + body
            chunks.append(Chunk(len(chunks), unit.start_line, unit.end_line, unit.name, text,
                                text_hash(text)))
        name = unit.name_text()
        if name is not None:
            chunks.append(Chunk(len(chunks), unit.start_line, unit.end_line, unit.name, name,
                                text_hash(name)))
    return chunks


def window_body(text: str) -> str:
    """A chunk text without its one-line context header: the unit's lines that were embedded
    ("" for a unit's name text, which has no newline)."""
    newline = text.find("\n")
    return text[newline + 1 :] if newline >= 0 else ""


def lexical_head(unit: Unit) -> str:
    """What a unit's lexical document weighs above its body: its name, its qualified name and
    its signature, whole and split (the split parts of the head's identifiers)."""
    short = unit.name.rsplit(".", 1)[-1]
    head = f"{short} {unit.name} {unit.signature}".strip()
    return f"{head} {lexical.subtokens(head)}".strip()
