"""Language plug-ins. Each language is one package that provides a `Language` object.

A language owns everything that depends on its syntax and semantics: extracting the per-file IR,
saying what its units of retrieval are (by default derived from its L1 symbols), naming modules
from paths and resolving names across files. The pipeline knows languages only through this
interface; adding one means writing one package whose `Language` class subclasses `Language`
(inheriting its defaults) and listing it in `_LANGUAGES`.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any, Protocol

from codegraph.model import FileIR, FileResolution
from codegraph.names import LANGUAGE_EXTENSIONS, LANGUAGE_FILENAMES, language_name
from codegraph.units import Unit, definition_units

# One "@" key's entries in every file's `FileIR.index`: (path, entry), in path order (a file's
# entries in its own order).
LoadFacts = Callable[[str], Sequence[tuple[str, tuple[Any, ...]]]]


class Resolver(Protocol):
    """Resolves the files of one snapshot, any number of them, in any order; it may remember
    answers between files (what makes resolving many files cheaper than one at a time)."""

    def resolve_file(self, path: str) -> FileResolution:
        """Must be a function of the snapshot alone (not of which files were resolved before,
        or in which order) and must list in `reads` every fact of other files it depended on."""
        ...


class Language(Protocol):
    """The interface of a language plug-in. A plug-in subclasses it explicitly: the methods
    with a body here (`units`) are defaults it inherits, the others it must define."""

    name: str  # the language a file is reported in ("typescript", "javascript", ...)
    extensions: tuple[str, ...]
    # Whole file names (fnmatch patterns) the language claims whatever their extension, e.g.
    # the `tsconfig.json` and `package.json` files TS/JS resolution reads.
    filenames: tuple[str, ...] = ()
    # Languages of one family are resolved together, by one resolver over all of their files
    # (TS imports JS and the other way round); `module_names`, `resolver`, `namespace` and
    # `interface` are then those of the family's language named like the family.
    family: str
    # Bumped whenever extraction or resolution output changes for the same input; part of
    # every L1 cache key.
    version: str
    # Bumped whenever its units change for the same input (an override of `units`); part of
    # the L2 and L3 cache keys.
    chunk_version: str

    def extract(self, text: str) -> FileIR: ...

    def units(self, text: str, ir: FileIR) -> list[Unit]:
        """The file's units of retrieval (`codegraph.units`): its definitions and module-level
        code. The default, `units.definition_units`, derives them from the L1 symbols; a
        language overrides it (and bumps `chunk_version`) only when its symbols alone cannot
        say what a definition covers."""
        return definition_units(text, ir)

    def module_names(self, paths: list[str], root_name: str,
                     read: Callable[[str], str | None] | None = None) -> dict[str, str]:
        """Map each file path of a snapshot to its module's qualified name (root_name: the
        indexed directory's name, for languages where the root itself can be a module). `read`
        gives a file's text (None when unreadable), for languages whose names come from a
        manifest that is itself a file of the language (Go's go.mod)."""
        ...

    def resolver(self, modules: Mapping[str, str], load_ir: Callable[[str], FileIR],
                 load_facts: LoadFacts | None = None) -> Resolver:
        """Cross-file resolution within a snapshot whose files of this language are `modules`
        (path -> module name). `load_ir` is called only for files a lookup reaches;
        `load_facts`, when given, gives one "@" key's entries across the snapshot's files,
        without the rest of their IR (for a resolver that looks "@" facts up across the
        snapshot; without it, such a resolver loads every file's IR)."""
        ...

    def namespace(self, modules: Mapping[str, str]) -> Mapping[str, Hashable]:
        """Facts of the snapshot as a whole (read under path ""), e.g. which file is module M."""
        ...

    def interface(self, path: str, module: str, ir: FileIR) -> Mapping[str, Hashable]:
        """The facts of one file, by read key, that other files' resolutions may read: a file
        whose reads all have equal values in two snapshots resolves identically in both.
        A key starting with "@" is a fact of the snapshot that several files contribute to
        (Go: "which files of package P define N"): readers read it as ("", key), and it
        changes when any file's value for it changes — one read instead of one per file."""
        ...


def _load() -> list[Language]:
    from codegraph.languages.go import GO
    from codegraph.languages.python import PYTHON
    from codegraph.languages.typescript import CONFIG, JAVASCRIPT, TSX, TYPESCRIPT

    return [PYTHON, TYPESCRIPT, TSX, JAVASCRIPT, CONFIG, GO]


_LANGUAGES: list[Language] = _load()
_BY_EXTENSION = {ext: lang for lang in _LANGUAGES for ext in lang.extensions}
_BY_FILENAME = [(pattern, lang) for lang in _LANGUAGES for pattern in lang.filenames]
_BY_NAME = {lang.name: lang for lang in _LANGUAGES}
if (tuple((pattern, lang.name) for pattern, lang in _BY_FILENAME) != LANGUAGE_FILENAMES
        or {ext: lang.name for ext, lang in _BY_EXTENSION.items()} != LANGUAGE_EXTENSIONS):
    raise RuntimeError("codegraph.names.LANGUAGE_FILENAMES/LANGUAGE_EXTENSIONS must list what the "
                       "language plug-ins declare (a query reads them without loading a plug-in)")


def language_for(path: str) -> Language | None:
    """The plug-in a file is indexed with: the one `names.language_name` names (one lookup for
    the indexer and the query layer; the check above keeps the table and the plug-ins equal)."""
    name = language_name(path)
    return None if name is None else _BY_NAME[name]


def family_of(lang: Language) -> Language:
    """The language whose resolver, namespace and interface serve `lang`'s family."""
    return get_language(lang.family)


def all_languages() -> list[Language]:
    return list(_LANGUAGES)


def get_language(name: str) -> Language:
    for lang in _LANGUAGES:
        if lang.name == name:
            return lang
    raise KeyError(name)
