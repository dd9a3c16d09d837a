"""Storage behind one interface (`Store`), chosen by a URL or path."""

from __future__ import annotations

from codegraph.errors import StoreError, UserError
from codegraph.store.base import Store


def open_store(url: str, create: bool = True) -> Store:
    """`postgresql://…` for PostgreSQL; `sqlite:///path`, a `.sqlite` file or a directory otherwise."""
    if url.startswith(("postgresql://", "postgres://")):
        from codegraph.store.postgres import PostgresStore

        try:
            return PostgresStore(url, create=create)
        except StoreError as exc:
            raise UserError(str(exc)) from exc
    if "://" in url and not url.startswith("sqlite://"):
        raise UserError(f"unsupported --db URL scheme: {url.split('://')[0]}://")
    from codegraph.store.sqlite import SqliteStore, resolve_sqlite_path

    try:
        return SqliteStore(resolve_sqlite_path(url), create=create)
    except StoreError as exc:
        raise UserError(str(exc)) from exc


__all__ = ["Store", "open_store"]
