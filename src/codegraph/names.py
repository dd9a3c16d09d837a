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
