"""Storage behind one interface (`Store`), chosen by a URL or path."""

from __future__ import annotations

from typing import Any

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


def migrate_store(url: str) -> dict[str, Any]:
    """Create or upgrade a store's schema (`codegraph db migrate`); safe to run concurrently."""
    if url.startswith(("postgresql://", "postgres://")):
        from codegraph.store import postgres

        try:
            conn = postgres.connect(url)
            with conn:
                applied = postgres.migrate(conn)
                version = postgres.schema_version(conn)
        except StoreError as exc:
            raise UserError(str(exc)) from exc
        except Exception as exc:  # psycopg.Error: a database that is not ours, no rights, ...
            raise UserError(f"cannot migrate {postgres.redact(url)}: {' '.join(str(exc).split())}") from exc
        return {"db": postgres.redact(url), "backend": "postgresql", "applied": applied, "version": version}
    # SQLite creates its one-version schema whenever it opens a store.
    from codegraph.store.sqlite import SCHEMA_VERSION, resolve_sqlite_path

    existed = resolve_sqlite_path(url).exists()
    store = open_store(url)
    store.close()
    return {"db": store.url, "backend": "sqlite", "applied": [] if existed else [int(SCHEMA_VERSION)],
            "version": int(SCHEMA_VERSION)}


__all__ = ["Store", "migrate_store", "open_store"]
