"""The Python language plug-in: tree-sitter-python for syntax, Python's import rules for names."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from typing import TYPE_CHECKING

from codegraph.languages import Language
from codegraph.languages.python import extract as _extract
from codegraph.languages.python import resolve as _resolve
from codegraph.model import FileIR

if TYPE_CHECKING:
    from codegraph.languages import LoadFacts, Resolver


class Python(Language):
    name = "python"
    extensions = (".py",)
    family = "python"
    version = "py-6"  # of extract + resolve + the IR format: part of L1's cache key
    chunk_version = "py-units-1"  # of units: part of the L2 and L3 cache keys

    def extract(self, text: str) -> FileIR:
        return _extract.extract(text)

    def module_names(self, paths: list[str], root_name: str,
                     read: Callable[[str], str | None] | None = None) -> dict[str, str]:
        return _resolve.module_names(paths, root_name)

    def resolver(self, modules: Mapping[str, str], load_ir: Callable[[str], FileIR],
                 load_facts: LoadFacts | None = None) -> Resolver:
        return _resolve.Resolver(modules, load_ir, load_facts)

    def namespace(self, modules: Mapping[str, str]) -> Mapping[str, Hashable]:
        return {f"mod:{name}": path for name, path in _resolve.module_table(modules).items()}

    def interface(self, path: str, module: str, ir: FileIR) -> Mapping[str, Hashable]:
        return _resolve.interface(path, module, ir)


PYTHON = Python()
