"""codegraph: a repository -> code graph + lexical and vector indexes, kept up to date.

The public surface is small: `index(path, db=...)` runs the pipeline, `open(db)` returns an
`Index` to search and query.
"""

from __future__ import annotations

from typing import Any


def index(path: str, db: str | None = None, **kwargs: Any) -> dict[str, Any]:
    from codegraph.pipeline import index as _index

    return _index(path, db, **kwargs)


def open(db: str | None = None, repo: str | None = None) -> Any:
    from codegraph.query import open_index

    return open_index(db, repo)


__all__ = ["index", "open"]
