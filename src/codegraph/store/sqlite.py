"""The embedded store: one SQLite file (WAL), one connection per thread.

Every write that records stage outputs is one transaction together with the marker that says
what it covers (e.g. `chunk_sets` with its `chunks`), so a reader never sees half a file.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from importlib import resources
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import xxhash

from codegraph.errors import DamagedIndexError, StoreError
from codegraph.model import Chunk, Edge
from codegraph.names import DB_FILENAME
from codegraph.store import bm25, connections
from codegraph.store.base import (
    ChunkFields,
    ChunkRow,
    FileRow,
    LexicalDoc,
    LexicalHit,
    LexicalUnit,
    Owned,
    ResolvedFile,
    SnapshotInfo,
    Store,
    SymbolRow,
    check_chunk_sets,
    chunk_set_checksum,
    lexical_units_checksum,
    payload_checksum,
    vector_checksum,
    vector_ok,
)

if TYPE_CHECKING:
    from codegraph.snapshot import Snapshot

SCHEMA_VERSION = "6"  # 3: checksums on L2, L3 and L4 outputs; 4: edges.call_kind; 5: lexical
# documents per unit of retrieval; 6: resolution_reads clustered by key, no index by resolution;
# ir_facts, the "@" facts by key
# In-place upgrades from an older released schema version: SQL run in one transaction.
_UPGRADES = {
    "3": "ALTER TABLE edges ADD COLUMN call_kind TEXT NOT NULL DEFAULT '';"
         " CREATE INDEX IF NOT EXISTS edges_dispatch_by_src ON edges(src)"
         " WHERE call_kind='dispatch';"
         " CREATE INDEX IF NOT EXISTS edges_dispatch_by_src_path ON edges(src_path)"
         " WHERE call_kind='dispatch';",
    # 5 changed only L3's tables, whose documents (per file) the new lexical version recomputes
    # anyway (per unit): drop them; the schema (all IF NOT EXISTS) then creates the new ones.
    "4": "DROP TABLE IF EXISTS lexical_fts; DROP TABLE IF EXISTS lexical_docs; {schema}",
    # 6: the same rows, in a table clustered by key (its two indexes go with the old table);
    # the schema then adds ir_facts (empty: the stored contents' "@" facts come from their IR).
    "5": "CREATE TABLE resolution_reads_6 (res_id INTEGER NOT NULL, read_key INTEGER NOT NULL,"
         " PRIMARY KEY (read_key, res_id)) WITHOUT ROWID;"
         " INSERT OR IGNORE INTO resolution_reads_6 SELECT res_id, read_key FROM resolution_reads;"
         " DROP TABLE resolution_reads;"
         " ALTER TABLE resolution_reads_6 RENAME TO resolution_reads; {schema}",
}
ABANDONED_AFTER_S = 3600
_second = itemgetter(1)


def _statements(script: str) -> list[str]:
    """A script's statements, one by one (so they run inside the caller's transaction, which
    `executescript` would commit first): cut at each `;` that completes a statement."""
    out, current = [], ""
    for piece in script.split(";"):
        current += piece + ";"
        if sqlite3.complete_statement(current):
            out.append(current)
            current = ""
    return [statement for statement in out if statement.strip(" \n;")]

# Cross-file rows belong to a snapshot through the resolution its file points at.
_IN_SNAPSHOT = "res_id IN (SELECT res_id FROM snapshot_files WHERE snapshot_id=?)"
_FILE_RES = "(SELECT res_id FROM snapshot_files WHERE snapshot_id=? AND path=?)"


def resolve_sqlite_path(location: str) -> Path:
    """`x.sqlite`/`x.db` is the file itself; anything else is a directory holding index.sqlite."""
    if location.startswith("sqlite:///"):
        location = location[len("sqlite:///") - 1 :]
    elif location.startswith("sqlite://"):
        location = location[len("sqlite://") :]
    path = Path(location).expanduser()
    if path.suffix in (".sqlite", ".db", ".sqlite3"):
        return path
    return path / DB_FILENAME


_WRITE_LOCKS: dict[str, threading.Lock] = {}
_WRITE_LOCKS_GUARD = threading.Lock()


def _write_lock(path: Path) -> threading.Lock:
    """One lock per database file and process, taken around every write transaction: threads
    of one process (L2 and L3 side by side, the resolution writer) queue on it in turn instead
    of polling SQLite's busy handler, which sleeps in steps and so left the lock idle between
    them (measured: L2's and L3's writes on half the stdlib took 8.6 s and 8.0 s of wall time
    for about 1.5 s of CPU each). Other processes still meet SQLite's own lock."""
    key = str(path.resolve())
    with _WRITE_LOCKS_GUARD:
        return _WRITE_LOCKS.setdefault(key, threading.Lock())


def _varints(data: bytes) -> list[int]:
    """SQLite's varints (big-endian 7-bit groups; a ninth byte carries 8 bits), all of `data`."""
    out: list[int] = []
    i = 0
    while i < len(data):
        value = 0
        for k in range(9):
            byte = data[i]
            i += 1
            if k == 8:
                value = (value << 8) | byte
                break
            value = (value << 7) | (byte & 0x7F)
            if not byte & 0x80:
                break
        out.append(value)
    return out


class _Group:
    """A write group of one thread: `open` once its transaction has begun."""

    __slots__ = ("open",)

    def __init__(self) -> None:
        self.open = False


class SqliteStore(Store):
    def __init__(self, path: Path, create: bool = True) -> None:
        self.path = path
        self.url = str(path)
        self._local = threading.local()
        self._checkpointer = connections.checkpointer_for(path)
        self._writer = _write_lock(path)
        # Document frequencies already read (`lexical_statistics`), valid for one state of the
        # full-text index: (its averages and structure records, term -> documents holding it).
        self._df_cache: tuple[tuple[bytes, bytes], dict[str, int]] | None = None
        if not create and not path.exists():
            raise StoreError(f"no index at {path}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create {path.parent}: {exc.strerror or exc}") from exc
        try:
            conn = self._conn()
            version = self._schema_version(conn)
            if version is None:
                schema = resources.files("codegraph.store").joinpath("sqlite_schema.sql").read_text()
                conn.executescript(schema)
                conn.execute(
                    "INSERT OR REPLACE INTO meta(key, value) VALUES ('schema_version', ?)",
                    (SCHEMA_VERSION,),
                )
            elif version in _UPGRADES:
                self._upgrade(conn)
            elif version != SCHEMA_VERSION:
                # Versions 1 and 2 were never released: no migration, an index is rebuilt.
                older = version.isdigit() and int(version) < int(SCHEMA_VERSION)
                hint = f": delete {path} and index again" if older else ""
                raise StoreError(
                    f"{path} has schema version {version}; this codegraph needs {SCHEMA_VERSION}{hint}"
                )
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{path} is not a usable codegraph store: {exc}") from exc

    def _upgrade(self, conn: sqlite3.Connection) -> None:
        """Bring an older released schema up to `SCHEMA_VERSION` in place, one step per
        transaction; a process that finds the step done by another one at once does nothing.
        (The stored Python resolutions predate call kinds; the language version bump that came
        with them makes the next index of every repository resolve again.)"""
        while True:
            conn.execute("BEGIN IMMEDIATE")
            try:
                version = self._schema_version(conn)
                if version not in _UPGRADES:
                    conn.execute("COMMIT")
                    return
                script = _UPGRADES[version].replace(
                    "{schema}", resources.files("codegraph.store").joinpath("sqlite_schema.sql").read_text())
                for statement in _statements(script):
                    conn.execute(statement)
                conn.execute("UPDATE meta SET value=? WHERE key='schema_version'",
                             (str(int(version or 0) + 1),))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    @staticmethod
    def _schema_version(conn: sqlite3.Connection) -> str | None:
        has_meta = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'"
        ).fetchone()
        if not has_meta:
            return None
        row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        return row[0] if row else None

    def _conn(self) -> sqlite3.Connection:
        owned: Owned[sqlite3.Connection] | None = getattr(self._local, "conn", None)
        if owned is None:
            owned = self._local.conn = Owned(
                connections.connect(self.path, "cache_size=-65536", "mmap_size=4294967296"))
        return owned.conn

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        group: _Group | None = getattr(self._local, "group", None)
        if group is not None:  # joins the group's transaction, begun by its first write
            if not group.open:
                self._writer.acquire()
                try:
                    conn.execute("BEGIN IMMEDIATE")
                except BaseException:
                    self._writer.release()
                    raise
                group.open = True
            try:
                yield conn
            except BaseException:
                group.open = False
                try:
                    conn.execute("ROLLBACK")  # the whole group: its end has nothing left to commit
                finally:
                    self._writer.release()
                raise
            return
        with self._writer:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        self._checkpointer.wrote()

    @contextmanager
    def write_group(self) -> Iterator[None]:
        if getattr(self._local, "group", None) is not None:  # nested: part of the outer group
            yield
            return
        group = self._local.group = _Group()
        try:
            yield
        except BaseException:
            if group.open:
                try:
                    self._conn().execute("ROLLBACK")
                finally:
                    self._writer.release()
            raise
        else:
            if group.open:
                try:
                    self._conn().execute("COMMIT")
                finally:
                    self._writer.release()
                self._checkpointer.wrote()
        finally:
            self._local.group = None

    def settle(self) -> None:
        self._checkpointer.wait_idle()
        self._checkpointer.truncate_if_large()

    def close(self) -> None:
        self._local.conn = None  # its Owned closes it

    # ----- repos and snapshots -----------------------------------------------------------

    def create_snapshot(
        self,
        repo: str,
        name: str,
        snapshot: Snapshot,
        languages: dict[str, tuple[str | None, str | None]],
        stage_keys: dict[str, str],
        job_id: int | None,
        mode: str = "full",
        resolutions: Mapping[str, int | None] | None = None,
    ) -> int:
        resolutions = resolutions or {}
        with self._tx() as conn:
            conn.execute("INSERT OR IGNORE INTO repos(root, name) VALUES (?, ?)", (repo, name))
            (repo_id,) = conn.execute("SELECT id FROM repos WHERE root=?", (repo,)).fetchone()
            cur = conn.execute(
                "INSERT INTO snapshots(repo_id, manifest_hash, stage_keys, job_id, created_at, mode)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (repo_id, snapshot.manifest_hash, json.dumps(stage_keys, sort_keys=True),
                 job_id, snapshot.started_at or time.time(), mode),
            )
            snapshot_id = int(cur.lastrowid or 0)
            conn.executemany(
                "INSERT INTO snapshot_files VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    (snapshot_id, f.path, f.content_hash, f.size, f.mtime_ns, *languages[f.path],
                     resolutions.get(f.path))
                    for f in snapshot.files
                ),
            )
            conn.executemany(
                "INSERT INTO file_problems VALUES (?, ?, ?, ?)",
                [(snapshot_id, e.path, "failed", e.reason) for e in snapshot.failed]
                + [(snapshot_id, e.path, "skipped", e.reason) for e in snapshot.skipped],
            )
        return snapshot_id

    def add_file_problems(self, snapshot_id: int, problems: Sequence[tuple[str, str, str]]) -> None:
        with self._tx() as conn:
            conn.executemany(
                "INSERT INTO file_problems VALUES (?, ?, ?, ?)",
                ((snapshot_id, path, outcome, reason) for path, outcome, reason in problems),
            )

    def complete_snapshot(self, snapshot_id: int, duration_ms: float, keep: int = 2) -> None:
        with self._tx() as conn:
            conn.execute("UPDATE snapshots SET complete=1, duration_ms=? WHERE id=?",
                         (duration_ms, snapshot_id))
            (repo_id,) = conn.execute(
                "SELECT repo_id FROM snapshots WHERE id=?", (snapshot_id,)
            ).fetchone()
            old = [
                r[0]
                for r in conn.execute(
                    "SELECT id FROM snapshots WHERE repo_id=? AND id<? AND complete=1 ORDER BY id DESC",
                    (repo_id, snapshot_id),
                ).fetchall()[keep - 1 :]
            ]
            # A run that never completed is abandoned after an hour (a live one may still be
            # writing its snapshot: never pull the rows from under it).
            old += [r[0] for r in conn.execute(
                "SELECT id FROM snapshots WHERE repo_id=? AND id<? AND complete=0 AND created_at<?",
                (repo_id, snapshot_id, time.time() - ABANDONED_AFTER_S))]
            for sid in old:
                for table in ("snapshot_files", "file_problems"):
                    conn.execute(f"DELETE FROM {table} WHERE snapshot_id=?", (sid,))
                conn.execute("DELETE FROM snapshots WHERE id=?", (sid,))
            # The latest full build's measured duration outlives its snapshot: the speedup's baseline.
            conn.execute(
                "UPDATE repos SET full_build_ms=? WHERE id=? AND"
                " (SELECT mode FROM snapshots WHERE id=?)='full'", (duration_ms, repo_id, snapshot_id))
            dead = [r for (r,) in conn.execute(
                "SELECT res_id FROM resolutions WHERE res_id NOT IN"
                " (SELECT res_id FROM snapshot_files WHERE res_id IS NOT NULL)")]
            for table in ("symbols", "edges", "file_deps", "resolutions"):
                conn.executemany(f"DELETE FROM {table} WHERE res_id=?", ((r,) for r in dead))
            if dead:  # not indexed by resolution: one scan for them all
                self._delete_reads_of(conn, dead)

    def last_full_duration(self, repo: str) -> float | None:
        row = self._conn().execute("SELECT full_build_ms FROM repos WHERE root=?", (repo,)).fetchone()
        return float(row[0]) if row and row[0] is not None else None

    def latest_snapshot(self, repo: str | None = None) -> SnapshotInfo | None:
        sql = (
            "SELECT s.id, r.root, r.name, s.manifest_hash, s.stage_keys, s.created_at, s.mode,"
            " s.duration_ms FROM snapshots s JOIN repos r ON r.id = s.repo_id WHERE s.complete=1"
        )
        params: tuple[Any, ...] = ()
        if repo is not None:
            sql += " AND r.root=?"
            params = (repo,)
        row = self._conn().execute(sql + " ORDER BY s.id DESC LIMIT 1", params).fetchone()
        if row is None:
            return None
        return SnapshotInfo(row[0], row[1], row[2], row[3], json.loads(row[4]), row[5], row[6], row[7])

    def latest_snapshots(self) -> list[SnapshotInfo]:
        rows = self._conn().execute(
            "SELECT s.id, r.root, r.name, s.manifest_hash, s.stage_keys, s.created_at, s.mode,"
            " s.duration_ms FROM snapshots s JOIN repos r ON r.id = s.repo_id WHERE s.id IN"
            " (SELECT max(id) FROM snapshots WHERE complete=1 GROUP BY repo_id) ORDER BY r.root"
        ).fetchall()
        return [SnapshotInfo(r[0], r[1], r[2], r[3], json.loads(r[4]), r[5], r[6], r[7]) for r in rows]

    def snapshot_files(self, snapshot_id: int) -> list[FileRow]:
        rows = self._conn().execute(
            "SELECT path, content_hash, language, module, size, mtime_ns, res_id FROM snapshot_files"
            " WHERE snapshot_id=? ORDER BY path",
            (snapshot_id,),
        ).fetchall()
        return [FileRow(*r) for r in rows]

    # ----- L1 ----------------------------------------------------------------------------

    def _rows_in(self, sql: str, params: tuple[Any, ...], values: Iterable[Any]) -> Iterator[tuple[Any, ...]]:
        """Rows of `sql`, whose `{marks}` is an IN list, for any number of `values` (SQLite caps the
        parameters of one statement)."""
        wanted = sorted(set(values))
        conn = self._conn()
        for i in range(0, len(wanted), 500):
            part = wanted[i : i + 500]
            yield from conn.execute(sql.format(marks=",".join("?" * len(part))), (*params, *part))

    def _existing(self, table: str, stage_key: str, hashes: Iterable[str]) -> set[str]:
        return {h for (h,) in self._rows_in(
            f"SELECT content_hash FROM {table} WHERE stage_key=? AND content_hash IN ({{marks}})",
            (stage_key,), hashes)}

    def existing_ir(self, stage_key: str, hashes: Iterable[str]) -> set[str]:
        return self._existing("ir_outputs", stage_key, hashes)

    def put_ir(self, stage_key: str, rows: Sequence[tuple[str, bytes | None, str | None]],
               facts: Sequence[tuple[str, str, bytes]] = ()) -> None:
        with self._tx() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO ir_outputs VALUES (?, ?, ?, ?, ?)",
                ((h, stage_key, payload, error, payload_checksum(payload)) for h, payload, error in rows),
            )
            conn.executemany("INSERT OR REPLACE INTO ir_facts VALUES (?, ?, ?, ?)",
                             ((stage_key, key, h, entries) for h, key, entries in facts))

    def ir_facts(self, stage_key: str, fact_key: str) -> list[tuple[str, bytes]]:
        return self._conn().execute(
            "SELECT content_hash, entries FROM ir_facts WHERE stage_key=? AND fact_key=?",
            (stage_key, fact_key)).fetchall()

    def with_ir_facts(self, stage_key: str, hashes: Iterable[str]) -> set[str]:
        return {h for (h,) in self._rows_in(
            "SELECT content_hash FROM ir_facts WHERE stage_key=? AND fact_key='' AND content_hash IN"
            " ({marks})", (stage_key,), hashes)}

    def ir_rows(
        self, stage_key: str, hashes: Sequence[str]
    ) -> dict[str, tuple[bytes | None, str | None, str | None]]:
        return {h: (payload, error, checksum) for h, payload, error, checksum in self._rows_in(
            "SELECT content_hash, CAST(payload AS BLOB), error, checksum FROM ir_outputs"
            " WHERE stage_key=? AND content_hash IN ({marks})", (stage_key,), hashes)}

    def stage_errors(self, snapshot_id: int, l1_key: str, l2_key: str) -> list[tuple[str, str, str]]:
        conn = self._conn()
        # Driven by the partial indexes of failed outputs: a handful of rows, not every file.
        rows = conn.execute(
            "SELECT f.path, 'L1', o.error FROM ir_outputs o"
            " JOIN snapshot_files f ON f.content_hash=o.content_hash AND f.snapshot_id=?"
            " WHERE o.error IS NOT NULL AND o.stage_key=?", (snapshot_id, l1_key),
        ).fetchall()
        rows += conn.execute(
            "SELECT f.path, 'L2', c.error FROM chunk_sets c"
            " JOIN snapshot_files f ON f.content_hash=c.content_hash AND f.snapshot_id=?"
            " WHERE c.error IS NOT NULL AND c.stage_key=?", (snapshot_id, l2_key),
        ).fetchall()
        return sorted(rows)

    def put_resolutions(self, snapshot_id: int, rows: Sequence[ResolvedFile]) -> None:
        with self._tx() as conn:
            ids = []
            for r in rows:
                cur = conn.execute(
                    "INSERT INTO resolutions(path, content_hash, symbols, edges, unresolved_calls)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (r.path, r.content_hash, len(r.symbols), len(r.edges), r.unresolved_calls),
                )
                ids.append(cur.lastrowid)
            # One statement per table for the whole batch: the rows are many, the files few.
            conn.executemany("INSERT INTO symbols VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                             [(i, *s) for i, r in zip(ids, rows, strict=True) for s in r.symbols])
            conn.executemany("INSERT INTO edges VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                             [(i, e.kind, e.src, e.src_path, e.dst, e.dst_path, e.line, e.call_kind)
                              for i, r in zip(ids, rows, strict=True) for e in r.edges])
            conn.executemany("INSERT INTO file_deps VALUES (?, ?, ?, ?)",
                             [(i, r.path, dep, name) for i, r in zip(ids, rows, strict=True)
                              for dep, name in r.deps])
            # In key order: the table is clustered by key, so inserts walk its B-tree forwards.
            conn.executemany("INSERT INTO resolution_reads VALUES (?, ?)",
                             sorted(((i, k) for i, r in zip(ids, rows, strict=True) for k in r.read_keys),
                                    key=_second))
            conn.executemany("UPDATE snapshot_files SET res_id=? WHERE snapshot_id=? AND path=?",
                             [(i, snapshot_id, r.path) for i, r in zip(ids, rows, strict=True)])

    @staticmethod
    def _delete_reads_of(conn: sqlite3.Connection, res_ids: Sequence[int]) -> None:
        conn.execute("DELETE FROM resolution_reads WHERE res_id IN (SELECT value FROM json_each(?))",
                     (json.dumps(list(res_ids)),))

    def readers(self, snapshot_id: int, read_keys: Iterable[int]) -> set[str]:
        return {p for (p,) in self._rows_in(
            "SELECT DISTINCT f.path FROM resolution_reads r JOIN snapshot_files f"
            " ON f.res_id=r.res_id AND f.snapshot_id=? WHERE r.read_key IN ({marks})",
            (snapshot_id,), read_keys)}

    # ----- cache -------------------------------------------------------------------------

    def cache_stats(self) -> list[dict[str, Any]]:
        conn = self._conn()
        out = []
        for kind, table, size, used in _CACHE_KINDS:
            rows, size_bytes, unused = conn.execute(
                f"SELECT count(*), coalesce(sum({size}), 0), coalesce(sum(NOT ({used})), 0) FROM {table} t"
            ).fetchone()
            out.append({"kind": kind, "rows": int(rows), "bytes": int(size_bytes), "unused": int(unused)})
        return out

    def prune(self, keep: int) -> dict[str, int]:
        if keep < 1:
            raise ValueError("keep at least the latest snapshot")
        deleted: dict[str, int] = {}
        with self._tx() as conn:
            doomed = [r for (r,) in conn.execute(
                "SELECT id FROM (SELECT id, complete, created_at, row_number() OVER"
                " (PARTITION BY repo_id, complete ORDER BY id DESC) AS age FROM snapshots)"
                " WHERE (complete=1 AND age>?) OR (complete=0 AND created_at<?)",
                (keep, time.time() - ABANDONED_AFTER_S))]
            for sid in doomed:
                for table in ("snapshot_files", "file_problems"):
                    conn.execute(f"DELETE FROM {table} WHERE snapshot_id=?", (sid,))
                conn.execute("DELETE FROM snapshots WHERE id=?", (sid,))
            deleted["snapshots"] = len(doomed)
            for kind, table, _, used in _CACHE_KINDS:
                if kind == "L3_lexical":  # the units and their FTS rows go with their file's marker
                    doomed = f"(SELECT content_hash, stage_key FROM lexical_docs t WHERE NOT ({used}))"
                    conn.execute("DELETE FROM lexical_fts WHERE rowid IN (SELECT doc_id FROM lexical_units"
                                 f" WHERE (content_hash, stage_key) IN {doomed})")
                    conn.execute(f"DELETE FROM lexical_units WHERE (content_hash, stage_key) IN {doomed}")
                if kind == "L2_chunk":
                    conn.execute(f"DELETE FROM chunks WHERE (content_hash, stage_key) IN"
                                 f" (SELECT content_hash, stage_key FROM chunk_sets t WHERE NOT ({used}))")
                if kind == "L1_ir":
                    conn.execute(f"DELETE FROM ir_facts WHERE (content_hash, stage_key) IN"
                                 f" (SELECT content_hash, stage_key FROM ir_outputs t WHERE NOT ({used}))")
                if kind == "resolutions":
                    for child in ("symbols", "edges", "file_deps", "resolution_reads"):
                        conn.execute(f"DELETE FROM {child} WHERE res_id IN"
                                     f" (SELECT res_id FROM resolutions t WHERE NOT ({used}))")
                deleted[kind] = conn.execute(f"DELETE FROM {table} AS t WHERE NOT ({used})").rowcount
        return deleted

    def dependencies(self, snapshot_id: int, importers: Sequence[str]) -> set[str]:
        return {p for (p,) in self._rows_in(
            "SELECT DISTINCT d.dependency FROM snapshot_files f JOIN file_deps d ON d.res_id=f.res_id"
            " WHERE f.snapshot_id=? AND f.path IN ({marks})", (snapshot_id,), importers)}

    def dependents(self, snapshot_id: int, dependencies: Sequence[str]) -> set[str]:
        return {p for (p,) in self._rows_in(
            "SELECT DISTINCT f.path FROM file_deps d JOIN snapshot_files f ON f.res_id=d.res_id"
            " AND f.snapshot_id=? WHERE d.dependency IN ({marks})", (snapshot_id,), dependencies)}

    def snapshot_job(self, snapshot_id: int) -> int | None:
        row = self._conn().execute("SELECT job_id FROM snapshots WHERE id=?", (snapshot_id,)).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def snapshot_graph(self, snapshot_id: int) -> tuple[list[Edge], list[tuple[str, str]]]:
        conn = self._conn()
        edges = [Edge(*r) for r in conn.execute(
            "SELECT kind, src, src_path, dst, dst_path, line, call_kind FROM edges"
            f" WHERE {_IN_SNAPSHOT} ORDER BY src_path, line, src, dst", (snapshot_id,))]
        deps = [(str(a), str(b)) for a, b in conn.execute(
            "SELECT DISTINCT f.path, d.dependency FROM snapshot_files f JOIN file_deps d ON d.res_id=f.res_id"
            " WHERE f.snapshot_id=? ORDER BY 1, 2", (snapshot_id,))]
        return edges, deps

    def unresolved_calls(self, snapshot_id: int) -> int:
        (n,) = self._conn().execute(
            "SELECT coalesce(sum(r.unresolved_calls), 0) FROM snapshot_files f"
            " JOIN resolutions r ON r.res_id=f.res_id WHERE f.snapshot_id=?", (snapshot_id,),
        ).fetchone()
        return int(n)

    # ----- L2 ----------------------------------------------------------------------------

    def existing_chunk_sets(self, stage_key: str, hashes: Iterable[str]) -> set[str]:
        return self._existing("chunk_sets", stage_key, hashes)

    def put_chunks(
        self, stage_key: str, rows: Sequence[tuple[str, list[Chunk] | None, str | None]]
    ) -> None:
        with self._tx() as conn:
            for content_hash, chunks, error in rows:
                conn.execute(
                    "DELETE FROM chunks WHERE content_hash=? AND stage_key=?",
                    (content_hash, stage_key),
                )
                chunks = chunks or []
                conn.executemany(
                    "INSERT OR IGNORE INTO texts VALUES (?, ?)",
                    ((c.text_hash, c.text) for c in chunks),
                )
                conn.executemany(
                    "INSERT INTO chunks(content_hash, stage_key, ordinal, start_line, end_line,"
                    " symbol, text_hash) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        (content_hash, stage_key, c.ordinal, c.start_line, c.end_line, c.symbol,
                         c.text_hash)
                        for c in chunks
                    ),
                )
                checksum = chunk_set_checksum(
                    ((c.ordinal, c.start_line, c.end_line, c.symbol, c.text_hash) for c in chunks), error)
                conn.execute(
                    "INSERT OR REPLACE INTO chunk_sets VALUES (?, ?, ?, ?, ?)",
                    (content_hash, stage_key, len(chunks), error, checksum),
                )

    def snapshot_chunk_count(self, snapshot_id: int, stage_key: str) -> int:
        # A chunk set records its chunk count: one lookup per file, not a scan of its chunks.
        (n,) = self._conn().execute(
            "SELECT coalesce(sum(s.chunk_count), 0) FROM snapshot_files f JOIN chunk_sets s"
            " ON s.content_hash=f.content_hash AND s.stage_key=? WHERE f.snapshot_id=?",
            (stage_key, snapshot_id),
        ).fetchone()
        return int(n)

    def _snapshot_paths(self, snapshot_id: int, paths: Sequence[str] | None) -> tuple[str, tuple[Any, ...]]:
        """SQL condition on `f` (snapshot_files) and its parameters: the snapshot, or its `paths`."""
        if paths is None:
            return "f.snapshot_id=?", (snapshot_id,)
        return f"f.snapshot_id=? AND f.path IN ({','.join('?' * len(paths))})", (snapshot_id, *paths)

    def damaged_chunk_sets(
        self, snapshot_id: int, stage_key: str, paths: Sequence[str] | None = None,
        intact: dict[str, list[ChunkFields]] | None = None,
    ) -> tuple[dict[str, str], set[str]]:
        if paths is not None and not paths:
            return {}, set()
        where, params = self._snapshot_paths(snapshot_id, paths)
        conn = self._conn()
        sets = conn.execute(
            "SELECT f.path, s.content_hash, s.error, s.checksum FROM snapshot_files f"
            f" JOIN chunk_sets s ON s.content_hash=f.content_hash AND s.stage_key=? WHERE {where}",
            (stage_key, *params)).fetchall()
        chunks = conn.execute(  # a cursor, not a list: texts are checked as they are read
            "SELECT c.content_hash, c.ordinal, c.start_line, c.end_line, c.symbol, c.text_hash, t.text"
            " FROM chunks c LEFT JOIN texts t ON t.text_hash=c.text_hash"
            " WHERE c.stage_key=? AND c.content_hash IN"
            f" (SELECT f.content_hash FROM snapshot_files f WHERE {where})",
            (stage_key, *params))
        return check_chunk_sets(sets, chunks, intact)

    def texts_of(self, text_hashes: Sequence[str]) -> dict[str, str | None]:
        wanted = list(set(text_hashes))
        if len(wanted) > 500:
            rows: Iterable[tuple[Any, ...]] = self._rows_in(
                "SELECT text_hash, text FROM texts WHERE text_hash IN ({marks})", (), wanted)
        else:  # a search's hits: one statement
            marks = ",".join("?" * len(wanted))
            rows = self._conn().execute(
                f"SELECT text_hash, text FROM texts WHERE text_hash IN ({marks})", wanted)
        return {h: t if isinstance(t, str) else None for h, t in rows}

    def replace_texts(self, rows: Sequence[tuple[str, str]]) -> None:
        with self._tx() as conn:
            conn.executemany("INSERT OR REPLACE INTO texts VALUES (?, ?)", rows)

    def text_owners(
        self, snapshot_id: int, chunk_key: str, text_hashes: Sequence[str]
    ) -> dict[str, tuple[str, str]]:
        out: dict[str, tuple[str, str]] = {}
        for th in text_hashes:
            row = self._conn().execute(
                "SELECT f.path, f.content_hash FROM chunks c JOIN snapshot_files f"
                " ON f.content_hash=c.content_hash AND f.snapshot_id=?"
                " WHERE c.text_hash=? AND c.stage_key=? ORDER BY f.path LIMIT 1",
                (snapshot_id, th, chunk_key)).fetchone()
            if row is not None:
                out[th] = (row[0], row[1])
        return out

    def chunks_of_files(
        self, snapshot_id: int, stage_key: str, paths: Sequence[str]
    ) -> list[ChunkRow]:
        out: list[ChunkRow] = []
        conn = self._conn()
        for path in paths:
            out.extend(
                ChunkRow(*r)
                for r in conn.execute(
                    "SELECT c.id, f.path, f.module, c.start_line, c.end_line, c.symbol,"
                    " c.text_hash, t.text FROM snapshot_files f"
                    " JOIN chunks c ON c.content_hash=f.content_hash AND c.stage_key=?"
                    " JOIN texts t ON t.text_hash=c.text_hash"
                    " WHERE f.snapshot_id=? AND f.path=? ORDER BY c.ordinal",
                    (stage_key, snapshot_id, path),
                )
            )
        return out

    def chunks_by_ids(self, snapshot_id: int, ids: Sequence[tuple[int, str]]) -> list[ChunkRow]:
        """Chunk rows for (chunk id, path) pairs, in the order given."""
        conn = self._conn()
        out = []
        for chunk_id, path in ids:
            row = conn.execute(
                "SELECT c.id, f.path, f.module, c.start_line, c.end_line, c.symbol, c.text_hash,"
                " t.text FROM chunks c JOIN texts t ON t.text_hash=c.text_hash"
                " JOIN snapshot_files f ON f.snapshot_id=? AND f.path=?"
                " WHERE c.id=?",
                (snapshot_id, path, chunk_id),
            ).fetchone()
            if row is not None:
                out.append(ChunkRow(*row))
        return out

    # ----- L3 ----------------------------------------------------------------------------

    def existing_lexical(self, stage_key: str, hashes: Iterable[str]) -> set[str]:
        return self._existing("lexical_docs", stage_key, hashes)

    def put_lexical(self, stage_key: str, docs: Sequence[LexicalDoc]) -> None:
        with self._tx() as conn:
            for doc in docs:
                old = [doc_id for (doc_id,) in conn.execute(
                    "SELECT doc_id FROM lexical_units WHERE content_hash=? AND stage_key=?",
                    (doc.content_hash, stage_key))]
                if old:
                    conn.executemany("DELETE FROM lexical_fts WHERE rowid=?", ((i,) for i in old))
                    conn.execute("DELETE FROM lexical_units WHERE content_hash=? AND stage_key=?",
                                 (doc.content_hash, stage_key))
                for u in doc.units:
                    cur = conn.execute("INSERT INTO lexical_fts(head, body, subtokens) VALUES (?, ?, ?)",
                                       (u.head, u.body, u.subtokens))
                    conn.execute(
                        "INSERT INTO lexical_units VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (doc.content_hash, stage_key, u.ordinal, u.symbol, u.start_line, u.end_line,
                         cur.lastrowid))
                conn.execute(
                    "INSERT OR REPLACE INTO lexical_docs VALUES (?, ?, ?, ?)",
                    (doc.content_hash, stage_key, len(doc.units), lexical_units_checksum(doc.units)),
                )

    def lexical_documents(
        self, snapshot_id: int, stage_key: str, skip: set[str], paths: Sequence[str] | None = None
    ) -> tuple[list[tuple[str, str | None, str]], dict[str, tuple[str, list[LexicalUnit] | None]]]:
        conn = self._conn()
        where, params = self._snapshot_paths(snapshot_id, paths)
        rows = conn.execute(
            "SELECT f.path, f.module, d.content_hash, d.checksum FROM snapshot_files f"
            f" JOIN lexical_docs d ON d.content_hash=f.content_hash AND d.stage_key=? WHERE {where}"
            " ORDER BY f.path", (stage_key, *params)).fetchall()
        files = [(path, module, content_hash) for path, module, content_hash, _ in rows]
        wanted = {h: checksum for _, _, h, checksum in rows if h not in skip}
        units: dict[str, list[LexicalUnit] | None] = {h: [] for h in wanted}
        for content_hash, ordinal, symbol, start, end, head, body, sub in self._rows_in(
            "SELECT u.content_hash, u.ordinal, u.symbol, u.start_line, u.end_line, x.head, x.body,"
            " x.subtokens FROM lexical_units u LEFT JOIN lexical_fts x ON x.rowid=u.doc_id"
            " WHERE u.stage_key=? AND u.content_hash IN ({marks}) ORDER BY u.content_hash, u.ordinal",
            (stage_key,), wanted,
        ):
            held = units[content_hash]
            if held is None:
                continue
            if not all(isinstance(v, str) for v in (head, body, sub)):
                units[content_hash] = None
                continue
            held.append(LexicalUnit(ordinal, symbol, start, end, head, body, sub))
        return files, {h: (checksum, units[h]) for h, checksum in wanted.items()}

    def _fts_state(self, conn: sqlite3.Connection) -> tuple[bytes, bytes] | None:
        """FTS5's averages record (rowid 1 of its data table: varints nRow, then the token
        total of each column) and structure record (rowid 10: its segments and a counter of
        segments ever written), read together. Every write to the full-text index changes the
        structure record (a new segment, or a merge; the counter only grows), so while both
        are unchanged every term's document count is too."""
        rows = dict(conn.execute("SELECT id, block FROM lexical_fts_data WHERE id IN (1, 10)").fetchall())
        if not rows.get(1):
            return None
        return bytes(rows[1]), bytes(rows.get(10) or b"")

    def lexical_statistics(self, terms: Sequence[str]) -> tuple[int, int, dict[str, int]]:
        conn = self._conn()
        # FTS5's own totals, the numbers its bm25() divides by.
        state = self._fts_state(conn)
        if state is None:
            return 0, 0, {}
        totals = _varints(state[0])
        n_rows, n_tokens = totals[0], sum(totals[1:])
        # A term's document count costs FTS5 a walk over its whole posting list (fts5vocab):
        # most of a held lexical search's time on the stdlib for common words. Counts read for
        # this state of the index are kept until it changes.
        cached = self._df_cache
        if cached is None or cached[0] != state:
            cached = self._df_cache = (state, {})
        counts = cached[1]
        missing = sorted({t for t in terms if t not in counts})
        found: dict[str, int] = {}
        if missing:
            conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.lexical_vocab"
                         " USING fts5vocab(main, lexical_fts, 'row')")
            found = dict(self._rows_in("SELECT term, doc FROM temp.lexical_vocab WHERE term IN ({marks})",
                                       (), missing))
            if self._fts_state(conn) == state:  # no write in between: the counts are of `state`
                counts.update({t: int(found.get(t, 0)) for t in missing})
        hits = {t: counts[t] if t in counts else found.get(t, 0) for t in terms}
        return n_rows, n_tokens, {t: n for t, n in hits.items() if n}

    def lexical_bodies(self, stage_key: str, units: Sequence[tuple[str, int]]) -> dict[tuple[str, int], str]:
        wanted = sorted(set(units))
        out: dict[tuple[str, int], str] = dict.fromkeys(wanted, "")
        conn = self._conn()
        one = ("SELECT u.content_hash, u.ordinal, x.body FROM lexical_units u JOIN lexical_fts x"
               " ON x.rowid=u.doc_id WHERE u.content_hash=? AND u.stage_key=? AND u.ordinal=?")
        for i in range(0, len(wanted), 100):  # one statement per 100 (a search's hits: one)
            part = wanted[i : i + 100]
            params = [v for h, o in part for v in (h, stage_key, o)]
            for content_hash, ordinal, body in conn.execute(" UNION ALL ".join([one] * len(part)), params):
                out[(content_hash, ordinal)] = body if isinstance(body, str) else ""
        return out

    def verify_lexical_index(self) -> bool:
        # FTS5 compares its inverted index with the stored documents; 'rebuild' re-derives it.
        try:
            self._conn().execute("INSERT INTO lexical_fts(lexical_fts, rank) VALUES ('integrity-check', 1)")
            return False
        except sqlite3.DatabaseError:
            with self._tx() as conn:
                conn.execute("INSERT INTO lexical_fts(lexical_fts) VALUES ('rebuild')")
            return True

    def lexical_search(
        self, snapshot_id: int, stage_key: str, match: str, limit: int
    ) -> list[LexicalHit]:
        weights = ", ".join(repr(float(w)) for w in bm25.COLUMN_WEIGHTS)
        conn = self._conn()
        try:
            # Scores first, texts of the winners only (reading each matching row's body inside
            # the join cost seconds on the stdlib's 77,000 units).
            rows = conn.execute(
                f"WITH s AS MATERIALIZED (SELECT rowid AS doc_id, -bm25(lexical_fts, {weights}) AS score"
                "   FROM lexical_fts WHERE lexical_fts MATCH ?)"
                " SELECT f.path, f.module, u.ordinal, u.symbol, u.start_line, u.end_line, s.score, u.doc_id"
                # CROSS JOIN: in this order (without statistics the planner scanned the snapshot's
                # files once per matching document: 19 s for a long query on the stdlib).
                " FROM s CROSS JOIN lexical_units u ON u.doc_id = s.doc_id AND u.stage_key = ?"
                " CROSS JOIN snapshot_files f ON f.content_hash = u.content_hash AND f.snapshot_id = ?"
                " ORDER BY s.score DESC, f.path, u.start_line, u.ordinal LIMIT ?",
                (match, stage_key, snapshot_id, limit),
            ).fetchall()
            bodies = dict(self._rows_in("SELECT rowid, body FROM lexical_fts WHERE rowid IN ({marks})",
                                        (), {row[-1] for row in rows}))
        except sqlite3.DatabaseError as exc:
            if getattr(exc, "sqlite_errorcode", None) != sqlite3.SQLITE_CORRUPT_VTAB:
                raise
            raise DamagedIndexError("the full-text index (L3) is damaged") from exc
        return [LexicalHit(p, m, o, sym, a, b, float(score),
                           body if isinstance(body := bodies.get(doc_id), str) else "")
                for p, m, o, sym, a, b, score, doc_id in rows]

    # ----- L4 ----------------------------------------------------------------------------

    def texts_without_embedding(
        self, snapshot_id: int, chunk_key: str, model_key: str
    ) -> list[tuple[str, str]]:
        return self._conn().execute(
            "SELECT DISTINCT t.text_hash, t.text FROM snapshot_files f"
            " JOIN chunks c ON c.content_hash=f.content_hash AND c.stage_key=?"
            " JOIN texts t ON t.text_hash=c.text_hash"
            " WHERE f.snapshot_id=? AND NOT EXISTS (SELECT 1 FROM embeddings e"
            "   WHERE e.text_hash=c.text_hash AND e.model_key=?)"
            " ORDER BY t.text_hash",
            (chunk_key, snapshot_id, model_key),
        ).fetchall()

    def put_embeddings(self, model_key: str, rows: Sequence[tuple[str, bytes]]) -> None:
        with self._tx() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?, ?)",
                ((h, model_key, v, vector_checksum(v)) for h, v in rows),
            )

    def damaged_embeddings(
        self, snapshot_id: int, chunk_key: str, model_key: str, dimensions: int
    ) -> set[str]:
        return {th for th, vector, checksum in self._conn().execute(
            "SELECT DISTINCT e.text_hash, CAST(e.vector AS BLOB), e.checksum FROM snapshot_files f"
            " JOIN chunks c ON c.content_hash=f.content_hash AND c.stage_key=?"
            " JOIN embeddings e ON e.text_hash=c.text_hash AND e.model_key=?"
            " WHERE f.snapshot_id=?", (chunk_key, model_key, snapshot_id),
        ) if not vector_ok(vector, checksum, dimensions)}

    def delete_embeddings(self, model_key: str, text_hashes: Sequence[str]) -> None:
        with self._tx() as conn:
            conn.executemany("DELETE FROM embeddings WHERE text_hash=? AND model_key=?",
                             ((h, model_key) for h in text_hashes))

    def snapshot_vectors(
        self, snapshot_id: int, chunk_key: str, model_key: str
    ) -> list[tuple[int, str, bytes, str | None]]:
        """(chunk id, path, vector, stored checksum) for every embedded chunk of the snapshot."""
        return self._conn().execute(
            "SELECT c.id, f.path, CAST(e.vector AS BLOB), e.checksum FROM snapshot_files f"
            " JOIN chunks c ON c.content_hash=f.content_hash AND c.stage_key=?"
            " JOIN embeddings e ON e.text_hash=c.text_hash AND e.model_key=?"
            " WHERE f.snapshot_id=? ORDER BY f.path, c.ordinal",
            (chunk_key, model_key, snapshot_id),
        ).fetchall()

    def snapshot_text_hashes(self, snapshot_id: int, chunk_key: str) -> set[str]:
        return {h for (h,) in self._conn().execute(
            "SELECT c.text_hash FROM snapshot_files f"
            " JOIN chunks c ON c.content_hash=f.content_hash AND c.stage_key=? WHERE f.snapshot_id=?",
            (chunk_key, snapshot_id))}

    def embeddings_of(
        self, model_key: str, text_hashes: Sequence[str]
    ) -> Iterator[tuple[str, bytes, str | None]]:
        yield from self._rows_in(
            "SELECT text_hash, CAST(vector AS BLOB), checksum FROM embeddings"
            " WHERE model_key=? AND text_hash IN ({marks})", (model_key,), text_hashes)

    def chunks_of_texts(
        self, snapshot_id: int, chunk_key: str, text_hashes: Sequence[str]
    ) -> list[ChunkRow]:
        rows = self._rows_in(
            # The texts first, by their index: left to itself (no ANALYZE statistics) the planner
            # walked every chunk of the snapshot's files, ~0.5 s per vector query at 20,000 chunks.
            "SELECT c.id, f.path, f.module, c.start_line, c.end_line, c.symbol, c.text_hash, t.text"
            " FROM chunks c INDEXED BY chunks_by_text"
            " CROSS JOIN snapshot_files f ON f.content_hash=c.content_hash AND f.snapshot_id=?"
            " CROSS JOIN texts t ON t.text_hash=c.text_hash"
            " WHERE c.stage_key=? AND c.text_hash IN ({marks})", (snapshot_id, chunk_key), text_hashes)
        return sorted((ChunkRow(*r) for r in rows), key=lambda c: (c.path, c.start_line, c.id))

    def count_embedded(self, snapshot_id: int, chunk_key: str, model_key: str) -> int:
        (n,) = self._conn().execute(
            "SELECT count(*) FROM snapshot_files f"
            " JOIN chunks c ON c.content_hash=f.content_hash AND c.stage_key=?"
            " JOIN embeddings e ON e.text_hash=c.text_hash AND e.model_key=?"
            " WHERE f.snapshot_id=?",
            (chunk_key, model_key, snapshot_id),
        ).fetchone()
        return int(n)

    # ----- graph queries -----------------------------------------------------------------

    def find_symbols(self, snapshot_id: int, name: str) -> list[SymbolRow]:
        conn = self._conn()
        cols = "qname, name, kind, path, start_line, end_line, signature, docstring"
        rows = conn.execute(
            f"SELECT {cols} FROM symbols WHERE name=? AND qname=? AND {_IN_SNAPSHOT}"
            " ORDER BY path, start_line",
            (name.rpartition(".")[2], name, snapshot_id),
        ).fetchall()
        if not rows:
            rows = conn.execute(
                f"SELECT {cols} FROM symbols WHERE (res_id={_FILE_RES} OR name=?) AND {_IN_SNAPSHOT}"
                " ORDER BY path, start_line",
                (snapshot_id, name, name, snapshot_id),
            ).fetchall()
        return [SymbolRow(*r) for r in rows]

    def symbols_in_file(self, snapshot_id: int, path: str) -> list[SymbolRow]:
        rows = self._conn().execute(
            "SELECT qname, name, kind, path, start_line, end_line, signature, docstring"
            f" FROM symbols WHERE res_id={_FILE_RES} ORDER BY start_line, qname",
            (snapshot_id, path),
        ).fetchall()
        return [SymbolRow(*r) for r in rows]

    def edges_where(self, snapshot_id: int, kind: str, column: str, values: Sequence[str]) -> list[Edge]:
        if column not in ("src", "dst", "src_path", "dst_path"):
            raise ValueError(column)
        out: list[Edge] = []
        conn = self._conn()
        for value in values:
            where, params = self._edge_filter(snapshot_id, column, value)
            out.extend(
                Edge(*r)
                for r in conn.execute(
                    "SELECT kind, src, src_path, dst, dst_path, line, call_kind FROM edges"
                    f" WHERE kind=? AND {where} ORDER BY src_path, line, src, dst, call_kind",
                    (kind, *params),
                )
            )
        return out

    @staticmethod
    def _edge_filter(snapshot_id: int, column: str, value: str) -> tuple[str, tuple[Any, ...]]:
        """Edges by where they start or end, through the two indexes edges have (see schema)."""
        if column == "src_path":  # a file's outgoing edges are its resolution's, and dispatch
            # edges other files hold
            return (f"(res_id={_FILE_RES} OR rowid IN (SELECT rowid FROM edges INDEXED BY"
                    " edges_dispatch_by_src_path WHERE src_path=? AND call_kind='dispatch'))"
                    f" AND {_IN_SNAPSHOT}", (snapshot_id, value, value, snapshot_id))
        if column == "dst_path":
            return f"dst_path=? AND {_IN_SNAPSHOT}", (value, snapshot_id)
        short = value.rpartition(".")[2]
        if column == "src":  # edges start in the file that defines their source symbol, but for
            # dispatch edges, which the overriding subclass's file holds
            return (f"src=? AND (res_id IN (SELECT res_id FROM symbols WHERE name=? AND qname=?"
                    f" AND {_IN_SNAPSHOT}) OR rowid IN (SELECT rowid FROM edges"
                    " INDEXED BY edges_dispatch_by_src WHERE src=? AND call_kind='dispatch'))"
                    f" AND {_IN_SNAPSHOT}",
                    (value, short, value, snapshot_id, value, snapshot_id))
        # dst: edges end in the file that defines the target (or is the target module)
        return (f"dst_path IN (SELECT path FROM symbols WHERE name=? AND qname=? AND {_IN_SNAPSHOT}"
                " UNION SELECT path FROM snapshot_files WHERE snapshot_id=? AND module=?)"
                f" AND dst=? AND {_IN_SNAPSHOT}", (short, value, snapshot_id, snapshot_id, value, value,
                                                   snapshot_id))

    def graph_counts(self, snapshot_id: int) -> tuple[int, int]:
        (symbols, edges) = self._conn().execute(
            "SELECT coalesce(sum(r.symbols), 0), coalesce(sum(r.edges), 0) FROM snapshot_files f"
            " JOIN resolutions r ON r.res_id=f.res_id WHERE f.snapshot_id=?", (snapshot_id,),
        ).fetchone()
        return int(symbols), int(edges)

    # ----- export ------------------------------------------------------------------------

    def export_rows(self, snapshot_id: int, stage_keys: dict[str, str]) -> Iterator[tuple[Any, ...]]:
        """Every fact of a snapshot, without row ids or timestamps, in a canonical order."""
        conn = self._conn()
        yield from (("file", *r) for r in conn.execute(
            "SELECT path, content_hash, coalesce(language, ''), coalesce(module, '')"
            " FROM snapshot_files WHERE snapshot_id=? ORDER BY path", (snapshot_id,)))
        yield from (("problem", *r) for r in conn.execute(
            "SELECT path, outcome, reason FROM file_problems WHERE snapshot_id=?"
            " ORDER BY path, outcome, reason", (snapshot_id,)))
        yield from (("symbol", *r) for r in conn.execute(
            "SELECT s.qname, s.kind, s.path, s.start_line, s.end_line, s.signature, s.docstring"
            " FROM snapshot_files f JOIN symbols s ON s.res_id=f.res_id WHERE f.snapshot_id=?"
            " ORDER BY s.path, s.start_line, s.qname, s.kind, s.end_line", (snapshot_id,)))
        yield from (("edge", *r) for r in conn.execute(
            "SELECT e.kind, e.src, e.src_path, e.dst, e.dst_path, e.line, e.call_kind"
            " FROM snapshot_files f JOIN edges e ON e.res_id=f.res_id WHERE f.snapshot_id=?"
            " ORDER BY e.src_path, e.line, e.kind, e.src, e.dst, e.dst_path, e.call_kind",
            (snapshot_id,)))
        yield from (("dep", *r) for r in conn.execute(
            "SELECT d.importer, d.dependency, d.name"
            " FROM snapshot_files f JOIN file_deps d ON d.res_id=f.res_id WHERE f.snapshot_id=?"
            " ORDER BY d.importer, d.dependency, d.name", (snapshot_id,)))
        l2 = stage_keys.get("L2_chunk")
        yield from (("chunk", *r) for r in conn.execute(
            "SELECT f.path, c.ordinal, c.start_line, c.end_line, c.symbol, c.text_hash"
            " FROM snapshot_files f JOIN chunks c ON c.content_hash=f.content_hash AND c.stage_key=?"
            " WHERE f.snapshot_id=? ORDER BY f.path, c.ordinal", (l2, snapshot_id)))
        l3 = stage_keys.get("L3_lexical")
        for path, content_hash, ordinal, symbol, start, end, head, body, subtokens in conn.execute(
            "SELECT f.path, f.content_hash, u.ordinal, u.symbol, u.start_line, u.end_line, x.head,"
            " x.body, x.subtokens FROM snapshot_files f"
            " JOIN lexical_units u ON u.content_hash=f.content_hash AND u.stage_key=?"
            " JOIN lexical_fts x ON x.rowid=u.doc_id WHERE f.snapshot_id=? ORDER BY f.path, u.ordinal",
            (l3, snapshot_id),
        ):
            yield ("lexical", path, content_hash, ordinal, symbol, start, end, _digest(head, body, subtokens))
        l4 = stage_keys.get("L4_vector")
        if l4 is not None:
            for path, ordinal, text_hash, vector in conn.execute(
                "SELECT f.path, c.ordinal, c.text_hash, e.vector FROM snapshot_files f"
                " JOIN chunks c ON c.content_hash=f.content_hash AND c.stage_key=?"
                " JOIN embeddings e ON e.text_hash=c.text_hash AND e.model_key=?"
                " WHERE f.snapshot_id=? ORDER BY f.path, c.ordinal", (l2, l4, snapshot_id),
            ):
                yield ("vector", path, ordinal, text_hash, xxhash.xxh3_64_hexdigest(vector))


def _used_by_a_snapshot(stage: str) -> str:
    """SQL: the per-file output row `t` is needed by some snapshot (same content, same key)."""
    return ("EXISTS (SELECT 1 FROM snapshot_files f JOIN snapshots s ON s.id=f.snapshot_id"
            f" WHERE f.content_hash=t.content_hash AND json_extract(s.stage_keys, '$.{stage}')=t.stage_key)")


# (kind, table, bytes of a row, SQL true when a kept snapshot uses row `t`), in deletion order.
_CACHE_KINDS = [
    ("resolutions", "resolutions", "0",
     "EXISTS (SELECT 1 FROM snapshot_files f WHERE f.res_id=t.res_id)"),
    ("L1_ir", "ir_outputs", "length(t.payload) + coalesce(length(t.error), 0)", _used_by_a_snapshot("L1_ir")),
    ("L3_lexical", "lexical_docs",
     "(SELECT sum(length(x.head) + length(x.body) + length(x.subtokens)) FROM lexical_units u"
     " JOIN lexical_fts x ON x.rowid=u.doc_id"
     " WHERE u.content_hash=t.content_hash AND u.stage_key=t.stage_key)",
     _used_by_a_snapshot("L3_lexical")),
    ("L2_chunk", "chunk_sets", "(SELECT count(*) FROM chunks c WHERE c.content_hash=t.content_hash"
     " AND c.stage_key=t.stage_key) * 64", _used_by_a_snapshot("L2_chunk")),
    ("texts", "texts", "length(t.text)", "EXISTS (SELECT 1 FROM chunks c WHERE c.text_hash=t.text_hash)"),
    ("L4_vector", "embeddings", "length(t.vector)",
     "EXISTS (SELECT 1 FROM texts x WHERE x.text_hash=t.text_hash) AND EXISTS (SELECT 1 FROM snapshots s"
     " WHERE json_extract(s.stage_keys, '$.L4_vector')=t.model_key)"),
]


def _digest(*parts: str) -> str:
    h = xxhash.xxh3_64()
    for part in parts:
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\0")
    return h.hexdigest()
