"""codegraph: a repository -> code graph + lexical and vector indexes, kept up to date.

The public surface is small: `index(path, db=...)` runs the pipeline (incremental unless
`full=True`), `open(db)` returns an `Index` to search and query, and `Orchestrator(repo, db)`
offers the same runs as `full_rebuild()` / `incremental_update()` with typed results.
"""

from __future__ import annotations

from typing import Any


def index(path: str, db: str | None = None, **kwargs: Any) -> dict[str, Any]:
    from codegraph.pipeline import index as _index

    return _index(path, db, **kwargs)


def open(db: str | None = None, repo: str | None = None) -> Any:
    from codegraph.query import open_index

    return open_index(db, repo)


def __getattr__(name: str) -> Any:
    if name in ("Orchestrator", "UpdateResult"):  # imported on use: keeps `import codegraph` light
        from codegraph import orchestrator

        return getattr(orchestrator, name)
    raise AttributeError(name)


__all__ = ["Orchestrator", "UpdateResult", "index", "open"]
