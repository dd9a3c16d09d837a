"""The Python language plug-in: tree-sitter-python for syntax, Python's import rules for names."""

from __future__ import annotations

from collections.abc import Mapping

from codegraph.languages.python import chunk as _chunk
from codegraph.languages.python import extract as _extract
from codegraph.languages.python import resolve as _resolve
from codegraph.model import Chunk, FileIR


class Python:
    name = "python"
    extensions = (".py",)
    version = "py-1"  # of extract + the IR format: part of L1's cache key
    chunk_version = "py-chunk-1"  # of chunk: part of L2's cache key

    def extract(self, text: str) -> FileIR:
        return _extract.extract(text)

    def chunk(self, text: str, max_chars: int, min_chars: int) -> list[Chunk]:
        return _chunk.chunk(text, max_chars, min_chars)

    def module_names(self, paths: list[str], root_name: str) -> dict[str, str]:
        return _resolve.module_names(paths, root_name)

    def resolve(
        self, modules: Mapping[str, str], irs: Mapping[str, FileIR]
    ) -> _resolve.PythonResolution:
        return _resolve.resolve(modules, irs)


PYTHON = Python()
