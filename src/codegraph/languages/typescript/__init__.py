"""The TypeScript / JavaScript language plug-in: one family, resolved together (TS imports JS and
the other way round), served by four `Language` objects that differ only in their grammar:
`typescript` (.ts .mts .cts), `tsx` (.tsx), `javascript` (.js .jsx .mjs .cjs), and `json`, the
`tsconfig.json` / `jsconfig.json` / `package.json` files module resolution reads."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from typing import TYPE_CHECKING

from codegraph.languages import Language
from codegraph.languages.typescript import config as _config
from codegraph.languages.typescript import extract as _extract
from codegraph.languages.typescript import resolve as _resolve
from codegraph.model import FileIR

if TYPE_CHECKING:
    from codegraph.languages import LoadFacts, Resolver

FAMILY = "typescript"
VERSION = "ts-7"  # of extract + resolve + the IR format: part of L1's cache key
CHUNK_VERSION = "ts-chunk-1"


class _Family(Language):
    """What the family's languages share: naming, resolution, the facts updates compare, and
    the default units (`Language.units`)."""

    family = FAMILY
    version = VERSION
    chunk_version = CHUNK_VERSION

    def module_names(self, paths: list[str], root_name: str,
                     read: Callable[[str], str | None] | None = None) -> dict[str, str]:
        return _resolve.module_names(paths, root_name)

    def resolver(self, modules: Mapping[str, str], load_ir: Callable[[str], FileIR],
                 load_facts: LoadFacts | None = None) -> Resolver:
        return _resolve.Resolver(modules, load_ir)  # its "@" facts come from each file's IR

    def namespace(self, modules: Mapping[str, str]) -> Mapping[str, Hashable]:
        return _resolve.namespace(modules)

    def interface(self, path: str, module: str, ir: FileIR) -> Mapping[str, Hashable]:
        return _resolve.interface(path, module, ir)


class _Code(_Family):
    def __init__(self, name: str, grammar: str, extensions: tuple[str, ...]) -> None:
        self.name = name
        self.grammar = grammar
        self.extensions = extensions

    def extract(self, text: str) -> FileIR:
        return _extract.extract(text, self.grammar)


class _Config(_Family):
    name = "json"
    extensions: tuple[str, ...] = ()
    filenames = ("tsconfig.json", "tsconfig.*.json", "jsconfig.json", "jsconfig.*.json",
                 "package.json")

    def extract(self, text: str) -> FileIR:
        return _config.extract(text)


TYPESCRIPT = _Code(FAMILY, "typescript", (".ts", ".mts", ".cts"))
TSX = _Code("tsx", "tsx", (".tsx",))
JAVASCRIPT = _Code("javascript", "javascript", (".js", ".jsx", ".mjs", ".cjs"))
CONFIG = _Config()
