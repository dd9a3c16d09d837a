"""Names the pipeline and the query layer share, in a module that imports nothing: a search
process (the CLI's `search`) must not import the parsers, the stages or the pipeline to know them."""

import os
from pathlib import Path

L1, L2, L3, L4 = "L1_ir", "L2_chunk", "L3_lexical", "L4_vector"  # the stages, as their cache keys begin
DEFAULT_DB_DIRNAME = ".codegraph"  # the store's directory inside an indexed repository
DB_FILENAME = "index.sqlite"  # the SQLite store's file inside that directory


def default_cache_dir() -> Path:
    """`$CODEGRAPH_CACHE`, else `$XDG_CACHE_HOME/codegraph`, else `~/.cache/codegraph`."""
    explicit = os.environ.get("CODEGRAPH_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "codegraph"

# The language a file is reported in (a hit's `language`), by whole file name (fnmatch patterns,
# in the plug-ins' order) and by extension: the plug-ins' `name`, `filenames` and `extensions`
# as data, so that a query imports no plug-in (~0.06 s of a CLI search). `codegraph.languages`
# refuses to load if its plug-ins declare anything else.
LANGUAGE_FILENAMES: tuple[tuple[str, str], ...] = (
    ("tsconfig.json", "json"), ("tsconfig.*.json", "json"), ("jsconfig.json", "json"),
    ("jsconfig.*.json", "json"), ("package.json", "json"), ("go.mod", "go"))
LANGUAGE_EXTENSIONS: dict[str, str] = {
    ".py": "python", ".ts": "typescript", ".mts": "typescript", ".cts": "typescript",
    ".tsx": "tsx", ".js": "javascript", ".jsx": "javascript", ".mjs": "javascript",
    ".cjs": "javascript", ".go": "go"}
_FILENAME_EXTENSIONS = frozenset(p[p.rfind("."):] for p, _ in LANGUAGE_FILENAMES)


def language_name(path: str) -> str | None:
    """The language a file is reported in (None: a file no plug-in understands); the name of
    what `languages.language_for` gives."""
    from fnmatch import fnmatchcase

    dot = path.rfind(".")
    if dot < 0:
        return None
    extension = path[dot:]
    if extension in _FILENAME_EXTENSIONS:
        name = path.rpartition("/")[2]
        for pattern, language in LANGUAGE_FILENAMES:
            if fnmatchcase(name, pattern):
                return language
    return LANGUAGE_EXTENSIONS.get(extension)
