"""The Go language plug-in: tree-sitter-go for syntax, Go's package and module rules for names.

`go.mod` files belong to it too (matched by file name): their module path names the packages
below them and their local `replace` directives are facts that resolution reads."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from typing import TYPE_CHECKING

from codegraph.languages import Language
from codegraph.languages.go import extract as _extract
from codegraph.languages.go import resolve as _resolve
from codegraph.model import FileIR

if TYPE_CHECKING:
    from codegraph.languages import LoadFacts, Resolver


class Go(Language):
    name = "go"
    extensions = (".go",)
    filenames = ("go.mod",)
    family = "go"
    version = "go-2"  # of extract + resolve + the IR format: part of L1's cache key
    chunk_version = "go-chunk-1"  # of its units (the default): part of the L2 and L3 cache keys

    def extract(self, text: str) -> FileIR:
        return _extract.extract(text)

    def module_names(self, paths: list[str], root_name: str,
                     read: Callable[[str], str | None] | None = None) -> dict[str, str]:
        return _resolve.module_names(paths, root_name, read)

    def resolver(self, modules: Mapping[str, str], load_ir: Callable[[str], FileIR],
                 load_facts: LoadFacts | None = None) -> Resolver:
        return _resolve.Resolver(modules, load_ir)  # its "@" facts come from each file's IR

    def namespace(self, modules: Mapping[str, str]) -> Mapping[str, Hashable]:
        return _resolve.namespace(modules)

    def interface(self, path: str, module: str, ir: FileIR) -> Mapping[str, Hashable]:
        return _resolve.interface(path, module, ir)


GO = Go()
