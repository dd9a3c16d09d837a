"""The server store: PostgreSQL through psycopg 3, one connection per thread.

Same semantics as `sqlite.py`: per-file outputs keyed by (content hash, stage key) and shared by
every snapshot, cross-file rows per file resolution (shared by the snapshots that point at it),
each batch of outputs one transaction together with the marker that says what it covers. Bulk
rows (snapshot files, resolutions with their symbols, edges, deps and reads, lexical terms,
chunks) go in with COPY; small upserts with `executemany` (pipelined: one round trip per batch).

The schema is created and upgraded by numbered migrations (`postgres_NNNN_*.sql`), applied in
order under a transaction-level advisory lock, so any number of processes may open a fresh
database at once. Lexical search is FTS5's BM25, reproduced in `bm25.py` over term tables.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

import psycopg
import xxhash

from codegraph.errors import StoreError
from codegraph.model import Chunk, Edge
from codegraph.store import bm25
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
    lexical_checksum,
    lexical_units_checksum,
    payload_checksum,
    vector_checksum,
    vector_ok,
)

if TYPE_CHECKING:
    from codegraph.snapshot import Snapshot

# Any constant works; it only has to be the same in every codegraph process.
MIGRATION_LOCK = 0x636F_6465_6772_6170  # "codegrap"
_MIGRATION_FILE = re.compile(r"postgres_(\d{4})_(\w+)\.sql")
ABANDONED_AFTER_S = 3600
# Cross-file rows belong to a snapshot through the resolution its file points at.
_IN_SNAPSHOT = "res_id IN (SELECT res_id FROM snapshot_files WHERE snapshot_id=%s)"

@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations() -> list[Migration]:
    """Every migration shipped with this codegraph, oldest first."""
    found = []
    for entry in resources.files("codegraph.store").iterdir():
        m = _MIGRATION_FILE.fullmatch(entry.name)
        if m:
            found.append(Migration(int(m.group(1)), m.group(2), entry.read_text()))
    return sorted(found, key=lambda mig: mig.version)


def schema_version(conn: psycopg.Connection[Any]) -> int | None:
    """The highest applied migration, or None for a database codegraph has never used."""
    (table,) = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone() or (False,)
    if not table:
        return None
    (version,) = conn.execute("SELECT max(version) FROM schema_migrations").fetchone() or (None,)
    return None if version is None else int(version)


def migrate(conn: psycopg.Connection[Any]) -> list[int]:
    """Apply the pending migrations in order; returns their versions (empty: up to date).

    One transaction holding `pg_advisory_xact_lock`: concurrent callers wait, then find the work
    done. A failed migration rolls back whole, leaving the previous version in place."""
    known = migrations()
    applied: list[int] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {v for (v,) in conn.execute("SELECT version FROM schema_migrations")}
        newest = max((m.version for m in known), default=0)
        if done and max(done) > newest:
            raise StoreError(
                f"the database has schema version {max(done)}; this codegraph knows up to {newest}"
                " (upgrade codegraph)"
            )
        for mig in known:
            if mig.version in done:
                continue
            conn.execute(mig.sql)  # no parameters, so several statements may go in one call
            if mig.version == CHECKSUMS_MIGRATION:
                backfill_checksums(conn)
            conn.execute(
                "INSERT INTO schema_migrations(version, name) VALUES (%s, %s)", (mig.version, mig.name)
            )
            applied.append(mig.version)
    return applied


CHECKSUMS_MIGRATION = 3
# md5 of one lexical document's term rows, computed by the server (over `d` lexical_docs and its
# `t` lexical_terms, grouped by document), so verifying the term tables sends no rows; equal to
# `terms_digest` (terms in code-point order: COLLATE "C" on UTF-8 is code-point order).
TERMS_DIGEST_SQL = (
    "md5(d.head_len::text || ',' || d.body_len::text || ',' || d.sub_len::text || coalesce(string_agg("
    "';' || t.term || ',' || t.tf_head::text || ',' || t.tf_body::text || ',' || t.tf_sub::text,"
    " '' ORDER BY t.term), ''))"
)
# Migration 3's, over the per-file documents of then (two columns): its backfill runs on them.
_TERMS_DIGEST_SQL_3 = (
    "md5(d.body_len::text || ',' || d.sub_len::text || coalesce(string_agg("
    "';' || t.term || ',' || t.tf_body::text || ',' || t.tf_sub::text, '' ORDER BY t.term), ''))"
)


def terms_digest(doc: bm25.DocTerms) -> str:
    parts = [",".join(map(str, doc.lengths))]
    parts += [f";{term}," + ",".join(map(str, tfs)) for term, tfs in sorted(doc.terms.items())]
    return hashlib.md5("".join(parts).encode("utf-8", "surrogatepass")).hexdigest()


def backfill_checksums(conn: psycopg.Connection[Any]) -> None:
    """Migration 3's data step: checksums for the outputs stored before it, from what is stored
    (nothing older can tell a damaged row from a good one), then the columns become NOT NULL."""
    with conn.cursor() as cur:
        vectors = cur.execute("SELECT text_hash, model_key, vector FROM embeddings").fetchall()
        cur.executemany("UPDATE embeddings SET checksum=%s WHERE text_hash=%s AND model_key=%s",
                        [(vector_checksum(bytes(v)), h, m) for h, m, v in vectors])
        docs = cur.execute("SELECT doc_id, body, subtokens FROM lexical_docs").fetchall()
        cur.executemany("UPDATE lexical_docs SET checksum=%s WHERE doc_id=%s",
                        [(lexical_checksum(_text(b), _text(s)), i) for i, b, s in docs])
        cur.execute(
            f"UPDATE lexical_docs SET terms_checksum=x.digest FROM (SELECT d.doc_id, {_TERMS_DIGEST_SQL_3}"
            " AS digest FROM lexical_docs d LEFT JOIN lexical_terms t ON t.doc_id=d.doc_id"
            " GROUP BY d.doc_id) x WHERE lexical_docs.doc_id=x.doc_id")
        chunks: dict[tuple[str, str], list[tuple[int, int, int, str, str]]] = {}
        for h, key, *fields in cur.execute(
            "SELECT content_hash, stage_key, ordinal, start_line, end_line, symbol, text_hash FROM chunks"
        ):
            chunks.setdefault((h, key), []).append(tuple(fields))  # type: ignore[arg-type]
        sets = cur.execute("SELECT content_hash, stage_key, error FROM chunk_sets").fetchall()
        cur.executemany(
            "UPDATE chunk_sets SET checksum=%s WHERE content_hash=%s AND stage_key=%s",
            [(chunk_set_checksum(sorted(chunks.get((h, k), [])), e), h, k) for h, k, e in sets])
        cur.execute("ALTER TABLE chunk_sets ALTER COLUMN checksum SET NOT NULL")
        cur.execute("ALTER TABLE lexical_docs ALTER COLUMN checksum SET NOT NULL,"
                    " ALTER COLUMN terms_checksum SET NOT NULL")
        cur.execute("ALTER TABLE embeddings ALTER COLUMN checksum SET NOT NULL")


def redact(url: str) -> str:
    """The URL without its password, for messages and results."""
    url = re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)
    return re.sub(r"(password=)[^&\s]*", r"\1***", url)


def connect(url: str) -> psycopg.Connection[Any]:
    """A connection in autocommit mode (transactions are explicit), or a one-line StoreError."""
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=10)
    except psycopg.Error as exc:
        # libpq may quote the URL back: never print its password.
        reason = redact(" ".join(str(exc).split()).replace(url, redact(url))) or type(exc).__name__
        raise StoreError(f"cannot connect to PostgreSQL at {redact(url)}: {reason}") from exc


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def _text(data: bytes) -> str:
    return bytes(data).decode("utf-8", "surrogatepass")


def _text_or_none(data: bytes | None) -> str | None:
    """A stored text being verified: None when it is gone or is not UTF-8 (damaged either way)."""
    try:
        return None if data is None else _text(data)
    except UnicodeDecodeError:
        return None


class PostgresStore(Store):
    def __init__(self, url: str, create: bool = True) -> None:
        self._conninfo = url
        self.url = redact(url)
        self._local = threading.local()
        conn = self._conn()
        try:
            version = schema_version(conn)
            if version is None and not create:
                raise StoreError(f"no codegraph index in {self.url}")
            if version != max((m.version for m in migrations()), default=0):
                migrate(conn)
        except psycopg.Error as exc:
            raise StoreError(f"{self.url} is not a usable codegraph store: {exc}") from exc

    def _conn(self) -> psycopg.Connection[Any]:
        holder: Owned[psycopg.Connection[Any]] | None = getattr(self._local, "conn", None)
        if holder is None or holder.conn.closed:
            holder = Owned(connect(self._conninfo))
            self._local.conn = holder
        return holder.conn

    @contextlib.contextmanager
    def _tx(self) -> Iterator[psycopg.Connection[Any]]:
        conn = self._conn()
        with conn.transaction():  # inside a write group: a savepoint of the group's transaction
            yield conn

    @contextlib.contextmanager
    def write_group(self) -> Iterator[None]:
        with self._conn().transaction():
            yield

    def close(self) -> None:
        holder: Owned[psycopg.Connection[Any]] | None = getattr(self._local, "conn", None)
        if holder is not None:
            holder.conn.close()
            self._local.conn = None

    def settle(self) -> None:
        pass  # the server checkpoints on its own

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
            conn.execute(
                "INSERT INTO repos(root, name) VALUES (%s, %s) ON CONFLICT (root) DO NOTHING", (repo, name)
            )
            (repo_id,) = conn.execute("SELECT id FROM repos WHERE root=%s", (repo,)).fetchone() or (0,)
            (snapshot_id,) = conn.execute(
                "INSERT INTO snapshots(repo_id, manifest_hash, stage_keys, job_id, created_at, mode)"
                " VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
                (repo_id, snapshot.manifest_hash, json.dumps(stage_keys, sort_keys=True), job_id,
                 snapshot.started_at or time.time(), mode),
            ).fetchone() or (0,)
            with conn.cursor() as cur, cur.copy(
                "COPY snapshot_files (snapshot_id, path, content_hash, size, mtime_ns, language, module,"
                " res_id) FROM STDIN"
            ) as copy:
                for f in snapshot.files:
                    copy.write_row((snapshot_id, f.path, f.content_hash, f.size, f.mtime_ns,
                                    *languages[f.path], resolutions.get(f.path)))
            self._insert_problems(
                conn, snapshot_id,
                [(e.path, "failed", e.reason) for e in snapshot.failed]
                + [(e.path, "skipped", e.reason) for e in snapshot.skipped],
            )
        return int(snapshot_id)

    @staticmethod
    def _insert_problems(
        conn: psycopg.Connection[Any], snapshot_id: int, problems: Sequence[tuple[str, str, str]]
    ) -> None:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO file_problems(snapshot_id, path, outcome, reason) VALUES (%s, %s, %s, %s)",
                [(snapshot_id, *p) for p in problems],
            )

    def add_file_problems(self, snapshot_id: int, problems: Sequence[tuple[str, str, str]]) -> None:
        with self._tx() as conn:
            self._insert_problems(conn, snapshot_id, problems)

    def complete_snapshot(self, snapshot_id: int, duration_ms: float, keep: int = 2) -> None:
        with self._tx() as conn:
            row = conn.execute(
                "UPDATE snapshots SET complete=true, duration_ms=%s WHERE id=%s RETURNING repo_id, mode",
                (duration_ms, snapshot_id),
            ).fetchone()
            if row is None:
                return
            repo_id, mode = row
            old = [
                r[0]
                for r in conn.execute(
                    "SELECT id FROM snapshots WHERE repo_id=%s AND id<%s AND complete ORDER BY id DESC",
                    (repo_id, snapshot_id),
                ).fetchall()[keep - 1 :]
            ]
            # A run that never completed is abandoned after an hour (a live one may still be
            # writing its snapshot: never pull the rows from under it).
            old += [r[0] for r in conn.execute(
                "SELECT id FROM snapshots WHERE repo_id=%s AND id<%s AND NOT complete AND created_at<%s",
                (repo_id, snapshot_id, time.time() - ABANDONED_AFTER_S))]
            if old:
                for table in ("snapshot_files", "file_problems"):
                    conn.execute(f"DELETE FROM {table} WHERE snapshot_id = ANY(%s)", (old,))
                conn.execute("DELETE FROM snapshots WHERE id = ANY(%s)", (old,))
            # The latest full build's measured duration outlives its snapshot: the speedup's baseline.
            if mode == "full":
                conn.execute("UPDATE repos SET full_build_ms=%s WHERE id=%s", (duration_ms, repo_id))
            # Resolutions no remaining snapshot points at (an anti-join over the res_id index).
            dead = [r for (r,) in conn.execute(
                "DELETE FROM resolutions r WHERE NOT EXISTS"
                " (SELECT 1 FROM snapshot_files f WHERE f.res_id=r.res_id) RETURNING r.res_id")]
            if dead:
                for table in ("symbols", "edges", "file_deps", "resolution_reads"):
                    conn.execute(f"DELETE FROM {table} WHERE res_id = ANY(%s)", (dead,))

    def last_full_duration(self, repo: str) -> float | None:
        row = self._conn().execute("SELECT full_build_ms FROM repos WHERE root=%s", (repo,)).fetchone()
        return float(row[0]) if row and row[0] is not None else None

    def latest_snapshot(self, repo: str | None = None) -> SnapshotInfo | None:
        sql = (
            "SELECT s.id, r.root, r.name, s.manifest_hash, s.stage_keys, s.created_at, s.mode,"
            " s.duration_ms FROM snapshots s JOIN repos r ON r.id = s.repo_id WHERE s.complete"
        )
        params: tuple[Any, ...] = ()
        if repo is not None:
            sql += " AND r.root=%s"
            params = (repo,)
        row = self._conn().execute(sql + " ORDER BY s.id DESC LIMIT 1", params).fetchone()
        if row is None:
            return None
        return SnapshotInfo(int(row[0]), row[1], row[2], row[3], json.loads(row[4]), row[5], row[6], row[7])

    def latest_snapshots(self) -> list[SnapshotInfo]:
        rows = self._conn().execute(
            "SELECT s.id, r.root, r.name, s.manifest_hash, s.stage_keys, s.created_at, s.mode,"
            " s.duration_ms FROM snapshots s JOIN repos r ON r.id = s.repo_id WHERE s.id IN"
            " (SELECT max(id) FROM snapshots WHERE complete GROUP BY repo_id) ORDER BY r.root"
        ).fetchall()
        return [SnapshotInfo(int(r[0]), r[1], r[2], r[3], json.loads(r[4]), r[5], r[6], r[7]) for r in rows]

    def snapshot_files(self, snapshot_id: int) -> list[FileRow]:
        rows = self._conn().execute(
            "SELECT path, content_hash, language, module, size, mtime_ns, res_id FROM snapshot_files"
            " WHERE snapshot_id=%s ORDER BY path",
            (snapshot_id,),
        ).fetchall()
        return [FileRow(*r) for r in rows]

    # ----- L1 ----------------------------------------------------------------------------

    def _existing(self, table: str, stage_key: str, hashes: Iterable[str]) -> set[str]:
        wanted = sorted(set(hashes))
        rows = self._conn().execute(
            f"SELECT content_hash FROM {table} WHERE stage_key=%s AND content_hash = ANY(%s)",
            (stage_key, wanted),
        )
        return {h for (h,) in rows}

    def existing_ir(self, stage_key: str, hashes: Iterable[str]) -> set[str]:
        return self._existing("ir_outputs", stage_key, hashes)

    def put_ir(self, stage_key: str, rows: Sequence[tuple[str, bytes | None, str | None]],
               facts: Sequence[tuple[str, str, bytes]] = ()) -> None:
        # Sorted by key: concurrent writers then lock rows in one order and cannot deadlock.
        with self._tx() as conn, conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO ir_outputs(content_hash, stage_key, payload, error, checksum)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (content_hash, stage_key) DO UPDATE"
                " SET payload=excluded.payload, error=excluded.error, checksum=excluded.checksum",
                [(h, stage_key, payload, error, payload_checksum(payload))
                 for h, payload, error in sorted(rows, key=lambda r: r[0])],
            )
            if facts:  # a content's facts are a function of it: equal rows, whoever wrote first
                cur.executemany(
                    "INSERT INTO ir_facts(stage_key, fact_key, content_hash, entries)"
                    " VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    [(stage_key, key, h, entries) for h, key, entries in sorted(facts, key=lambda r: r[:2])])

    def ir_facts(self, stage_key: str, fact_key: str) -> list[tuple[str, bytes]]:
        rows = self._conn().execute(
            "SELECT content_hash, entries FROM ir_facts WHERE stage_key=%s AND fact_key=%s",
            (stage_key, fact_key))
        return [(h, bytes(entries)) for h, entries in rows]

    def with_ir_facts(self, stage_key: str, hashes: Iterable[str]) -> set[str]:
        rows = self._conn().execute(
            "SELECT content_hash FROM ir_facts WHERE stage_key=%s AND fact_key='' AND"
            " content_hash = ANY(%s)", (stage_key, sorted(set(hashes))))
        return {h for (h,) in rows}

    def ir_rows(
        self, stage_key: str, hashes: Sequence[str]
    ) -> dict[str, tuple[bytes | None, str | None, str | None]]:
        rows = self._conn().execute(
            "SELECT content_hash, payload, error, checksum FROM ir_outputs"
            " WHERE stage_key=%s AND content_hash = ANY(%s)",
            (stage_key, sorted(set(hashes))),
        )
        return {h: (None if p is None else bytes(p), error, checksum) for h, p, error, checksum in rows}

    def stage_errors(self, snapshot_id: int, l1_key: str, l2_key: str) -> list[tuple[str, str, str]]:
        rows = self._conn().execute(
            "SELECT f.path, 'L1', o.error FROM snapshot_files f JOIN ir_outputs o"
            " ON o.content_hash=f.content_hash AND o.stage_key=%(l1)s"
            " WHERE f.snapshot_id=%(sid)s AND o.error IS NOT NULL"
            " UNION ALL"
            " SELECT f.path, 'L2', c.error FROM snapshot_files f JOIN chunk_sets c"
            " ON c.content_hash=f.content_hash AND c.stage_key=%(l2)s"
            " WHERE f.snapshot_id=%(sid)s AND c.error IS NOT NULL",
            {"sid": snapshot_id, "l1": l1_key, "l2": l2_key},
        ).fetchall()
        return sorted(rows)  # in Python: code-point order, as the SQLite store

    def put_resolutions(self, snapshot_id: int, rows: Sequence[ResolvedFile]) -> None:
        if not rows:
            return
        with self._tx() as conn, conn.cursor() as cur:
            # Ids first (one round trip), so every table of the batch is one COPY.
            ids = [i for (i,) in cur.execute(
                "SELECT nextval(pg_get_serial_sequence('resolutions', 'res_id'))"
                " FROM generate_series(1, %s)", (len(rows),))]
            with cur.copy(
                "COPY resolutions (res_id, path, content_hash, symbols, edges, unresolved_calls) FROM STDIN"
            ) as copy:
                for res_id, r in zip(ids, rows, strict=True):
                    copy.write_row((res_id, r.path, r.content_hash, len(r.symbols), len(r.edges),
                                    r.unresolved_calls))
            with cur.copy(
                "COPY symbols (res_id, qname, name, kind, path, start_line, end_line, signature,"
                " docstring) FROM STDIN"
            ) as copy:
                for res_id, r in zip(ids, rows, strict=True):
                    for sym in r.symbols:
                        copy.write_row((res_id, *sym[:6], _utf8(sym.signature), _utf8(sym.docstring)))
            with cur.copy("COPY edges (res_id, kind, src, src_path, dst, dst_path, line, call_kind)"
                          " FROM STDIN") as copy:
                for res_id, r in zip(ids, rows, strict=True):
                    for e in r.edges:
                        copy.write_row((res_id, e.kind, e.src, e.src_path, e.dst, e.dst_path, e.line,
                                        e.call_kind))
            with cur.copy("COPY file_deps (res_id, importer, dependency, name) FROM STDIN") as copy:
                for res_id, r in zip(ids, rows, strict=True):
                    for dep, name in r.deps:
                        copy.write_row((res_id, r.path, dep, name))
            with cur.copy("COPY resolution_reads (res_id, read_key) FROM STDIN") as copy:
                for res_id, r in zip(ids, rows, strict=True):
                    for key in r.read_keys:
                        copy.write_row((res_id, key))
            cur.execute(
                "UPDATE snapshot_files f SET res_id=u.res_id"
                " FROM unnest(%s::text[], %s::bigint[]) AS u(path, res_id)"
                " WHERE f.snapshot_id=%s AND f.path=u.path",
                ([r.path for r in rows], ids, snapshot_id),
            )

    def readers(self, snapshot_id: int, read_keys: Iterable[int]) -> set[str]:
        keys = sorted(set(read_keys))
        if not keys:
            return set()
        return {p for (p,) in self._conn().execute(self.READERS_SQL, (snapshot_id, keys))}

    # The keys through resolution_reads_by_key (read_key, res_id), then each reading resolution's
    # file in this snapshot through snapshot_files_by_res: no scan (tests/test_postgres.py).
    READERS_SQL = (
        "SELECT DISTINCT f.path FROM resolution_reads r JOIN snapshot_files f"
        " ON f.res_id=r.res_id AND f.snapshot_id=%s WHERE r.read_key = ANY(%s::bigint[])"
    )

    def dependencies(self, snapshot_id: int, importers: Sequence[str]) -> set[str]:
        return {p for (p,) in self._conn().execute(
            "SELECT DISTINCT d.dependency FROM snapshot_files f JOIN file_deps d ON d.res_id=f.res_id"
            " WHERE f.snapshot_id=%s AND f.path = ANY(%s)", (snapshot_id, list(importers)))}

    def dependents(self, snapshot_id: int, dependencies: Sequence[str]) -> set[str]:
        return {p for (p,) in self._conn().execute(
            "SELECT DISTINCT f.path FROM file_deps d JOIN snapshot_files f ON f.res_id=d.res_id"
            " AND f.snapshot_id=%s WHERE d.dependency = ANY(%s)", (snapshot_id, list(dependencies)))}

    def snapshot_job(self, snapshot_id: int) -> int | None:
        row = self._conn().execute("SELECT job_id FROM snapshots WHERE id=%s", (snapshot_id,)).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def snapshot_graph(self, snapshot_id: int) -> tuple[list[Edge], list[tuple[str, str]]]:
        conn = self._conn()
        edges = [Edge(*r) for r in conn.execute(
            "SELECT kind, src, src_path, dst, dst_path, line, call_kind FROM edges"
            f" WHERE {_IN_SNAPSHOT} ORDER BY src_path, line, src, dst", (snapshot_id,))]
        deps = [(str(a), str(b)) for a, b in conn.execute(
            "SELECT DISTINCT f.path, d.dependency FROM snapshot_files f JOIN file_deps d ON d.res_id=f.res_id"
            " WHERE f.snapshot_id=%s ORDER BY 1, 2", (snapshot_id,))]
        return edges, deps

    # ----- cache -------------------------------------------------------------------------

    def cache_stats(self) -> list[dict[str, Any]]:
        conn = self._conn()
        out = []
        for kind, table, size, used in _CACHE_KINDS:
            rows, size_bytes, unused = conn.execute(
                f"SELECT count(*), coalesce(sum({size}), 0)::bigint,"
                f" count(*) FILTER (WHERE NOT ({used})) FROM {table} t"
            ).fetchone() or (0, 0, 0)
            out.append({"kind": kind, "rows": int(rows), "bytes": int(size_bytes), "unused": int(unused)})
        return out

    def prune(self, keep: int) -> dict[str, int]:
        if keep < 1:
            raise ValueError("keep at least the latest snapshot")
        deleted: dict[str, int] = {}
        with self._tx() as conn:
            doomed = [r for (r,) in conn.execute(
                "SELECT id FROM (SELECT id, complete, created_at, row_number() OVER"
                " (PARTITION BY repo_id, complete ORDER BY id DESC) AS age FROM snapshots) s"
                " WHERE (complete AND age>%s) OR (NOT complete AND created_at<%s)",
                (keep, time.time() - ABANDONED_AFTER_S))]
            for table in ("snapshot_files", "file_problems"):
                conn.execute(f"DELETE FROM {table} WHERE snapshot_id = ANY(%s)", (doomed,))
            conn.execute("DELETE FROM snapshots WHERE id = ANY(%s)", (doomed,))
            deleted["snapshots"] = len(doomed)
            for kind, table, _, used in _CACHE_KINDS:
                if kind == "L3_lexical":  # the units and their terms go with their file's marker
                    gone = conn.execute(
                        "DELETE FROM lexical_units WHERE (content_hash, stage_key) IN (SELECT"
                        f" content_hash, stage_key FROM lexical_docs t WHERE NOT ({used}))"
                        " RETURNING doc_id, head_len + body_len + sub_len").fetchall()
                    conn.execute("DELETE FROM lexical_terms WHERE doc_id = ANY(%s)",
                                 (sorted(d for d, _ in gone),))
                    self._count_lexical(conn, -len(gone), -sum(n for _, n in gone))
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

    def unresolved_calls(self, snapshot_id: int) -> int:
        (n,) = self._conn().execute(
            "SELECT coalesce(sum(r.unresolved_calls), 0)::bigint FROM snapshot_files f"
            " JOIN resolutions r ON r.res_id=f.res_id WHERE f.snapshot_id=%s", (snapshot_id,),
        ).fetchone() or (0,)
        return int(n)

    # ----- L2 ----------------------------------------------------------------------------

    def existing_chunk_sets(self, stage_key: str, hashes: Iterable[str]) -> set[str]:
        return self._existing("chunk_sets", stage_key, hashes)

    def put_chunks(
        self, stage_key: str, rows: Sequence[tuple[str, list[Chunk] | None, str | None]]
    ) -> None:
        # One row per content hash (the last wins, as the SQLite store's REPLACE), sorted by key.
        rows = sorted({r[0]: r for r in rows}.values(), key=lambda r: r[0])
        texts = sorted({c.text_hash: c.text for _, chunks, _ in rows for c in chunks or []}.items())
        with self._tx() as conn, conn.cursor() as cur:
            # The marker first: its row locks make a concurrent writer of the same file wait for
            # this commit, then replace these chunks whole (instead of colliding with them).
            # Every writer locks markers, then texts, each in key order: no deadlock.
            cur.executemany(
                "INSERT INTO chunk_sets(content_hash, stage_key, chunk_count, error, checksum)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (content_hash, stage_key) DO UPDATE"
                " SET chunk_count=excluded.chunk_count, error=excluded.error, checksum=excluded.checksum",
                [(h, stage_key, len(chunks or []), error, chunk_set_checksum(
                    [(c.ordinal, c.start_line, c.end_line, c.symbol, c.text_hash) for c in chunks or []],
                    error)) for h, chunks, error in rows],
            )
            cur.execute(
                "DELETE FROM chunks WHERE stage_key=%s AND content_hash = ANY(%s)",
                (stage_key, [h for h, _, _ in rows]),
            )
            cur.executemany(
                "INSERT INTO texts(text_hash, text) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                [(h, _utf8(t)) for h, t in texts],
            )
            with cur.copy(
                "COPY chunks (content_hash, stage_key, ordinal, start_line, end_line, symbol, text_hash)"
                " FROM STDIN"
            ) as copy:
                for content_hash, chunks, _ in rows:
                    for c in chunks or []:
                        copy.write_row((content_hash, stage_key, c.ordinal, c.start_line, c.end_line,
                                        c.symbol, c.text_hash))

    def snapshot_chunk_count(self, snapshot_id: int, stage_key: str) -> int:
        (n,) = self._conn().execute(
            "SELECT coalesce(sum(s.chunk_count), 0) FROM snapshot_files f JOIN chunk_sets s"
            " ON s.content_hash=f.content_hash AND s.stage_key=%s WHERE f.snapshot_id=%s",
            (stage_key, snapshot_id),
        ).fetchone() or (0,)
        return int(n)

    def damaged_chunk_sets(
        self, snapshot_id: int, stage_key: str, paths: Sequence[str] | None = None,
        intact: dict[str, list[ChunkFields]] | None = None,
    ) -> tuple[dict[str, str], set[str]]:
        if paths is not None and not paths:
            return {}, set()
        where = "f.snapshot_id=%s" + ("" if paths is None else " AND f.path = ANY(%s)")
        params = (snapshot_id,) if paths is None else (snapshot_id, list(paths))
        conn = self._conn()
        sets = conn.execute(
            "SELECT f.path, s.content_hash, s.error, s.checksum FROM snapshot_files f"
            f" JOIN chunk_sets s ON s.content_hash=f.content_hash AND s.stage_key=%s WHERE {where}",
            (stage_key, *params)).fetchall()
        # Streamed (libpq single-row mode): every text of a snapshot need not be in memory at once.
        chunks = ((h, o, a, b, sym, th, _text_or_none(t)) for h, o, a, b, sym, th, t in conn.cursor().stream(
            "SELECT c.content_hash, c.ordinal, c.start_line, c.end_line, c.symbol, c.text_hash, t.text"
            " FROM chunks c LEFT JOIN texts t ON t.text_hash=c.text_hash"
            " WHERE c.stage_key=%s AND c.content_hash IN"
            f" (SELECT f.content_hash FROM snapshot_files f WHERE {where})",
            (stage_key, *params)))
        return check_chunk_sets(sets, chunks, intact)

    def texts_of(self, text_hashes: Sequence[str]) -> dict[str, str | None]:
        return {h: _text_or_none(t) for h, t in self._conn().execute(
            "SELECT text_hash, text FROM texts WHERE text_hash = ANY(%s)", (sorted(set(text_hashes)),))}

    def replace_texts(self, rows: Sequence[tuple[str, str]]) -> None:
        with self._tx() as conn, conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO texts(text_hash, text) VALUES (%s, %s)"
                " ON CONFLICT (text_hash) DO UPDATE SET text=excluded.text",
                [(h, _utf8(t)) for h, t in sorted(rows)])

    def text_owners(
        self, snapshot_id: int, chunk_key: str, text_hashes: Sequence[str]
    ) -> dict[str, tuple[str, str]]:
        rows = self._conn().execute(
            "SELECT DISTINCT ON (c.text_hash) c.text_hash, f.path, f.content_hash FROM chunks c"
            " JOIN snapshot_files f ON f.content_hash=c.content_hash AND f.snapshot_id=%s"
            " WHERE c.text_hash = ANY(%s) AND c.stage_key=%s ORDER BY c.text_hash, f.path",
            (snapshot_id, list(text_hashes), chunk_key)).fetchall()
        return {th: (path, h) for th, path, h in rows}

    _CHUNK_COLUMNS = "c.id, f.path, f.module, c.start_line, c.end_line, c.symbol, c.text_hash, t.text"

    def chunks_of_files(
        self, snapshot_id: int, stage_key: str, paths: Sequence[str]
    ) -> list[ChunkRow]:
        rows = self._conn().execute(
            f"SELECT {self._CHUNK_COLUMNS} FROM unnest(%s::text[]) WITH ORDINALITY AS p(path, n)"
            " JOIN snapshot_files f ON f.snapshot_id=%s AND f.path=p.path"
            " JOIN chunks c ON c.content_hash=f.content_hash AND c.stage_key=%s"
            " JOIN texts t ON t.text_hash=c.text_hash ORDER BY p.n, c.ordinal",
            (list(paths), snapshot_id, stage_key),
        ).fetchall()
        return [_chunk(r) for r in rows]

    def chunks_by_ids(self, snapshot_id: int, ids: Sequence[tuple[int, str]]) -> list[ChunkRow]:
        """Chunk rows for (chunk id, path) pairs, in the order given."""
        rows = self._conn().execute(
            f"SELECT {self._CHUNK_COLUMNS}"
            " FROM unnest(%s::bigint[], %s::text[]) WITH ORDINALITY AS q(id, path, n)"
            " JOIN chunks c ON c.id=q.id JOIN texts t ON t.text_hash=c.text_hash"
            " JOIN snapshot_files f ON f.snapshot_id=%s AND f.path=q.path ORDER BY q.n",
            ([i for i, _ in ids], [p for _, p in ids], snapshot_id),
        ).fetchall()
        return [_chunk(r) for r in rows]

    # ----- L3 ----------------------------------------------------------------------------

    def existing_lexical(self, stage_key: str, hashes: Iterable[str]) -> set[str]:
        return self._existing("lexical_docs", stage_key, hashes)

    @staticmethod
    def _count_lexical(conn: psycopg.Connection[Any], docs: int, tokens: int) -> None:
        """Add to this connection's row of the BM25 totals (inside the caller's transaction)."""
        if docs or tokens:
            conn.execute(
                "INSERT INTO lexical_stats(writer, docs, tokens) VALUES (pg_backend_pid(), %s, %s)"
                " ON CONFLICT (writer) DO UPDATE SET docs=lexical_stats.docs + excluded.docs,"
                " tokens=lexical_stats.tokens + excluded.tokens", (docs, tokens))

    def put_lexical(self, stage_key: str, docs: Sequence[LexicalDoc]) -> None:
        # The last document set of a content hash wins, as with the SQLite store's REPLACE.
        unique = sorted({d.content_hash: d for d in docs}.values(), key=lambda d: d.content_hash)
        units = [(d.content_hash, u) for d in unique for u in d.units]
        terms = bm25.tokenize_documents([(u.head, u.body, u.subtokens) for _, u in units])  # outside the tx
        with self._tx() as conn, conn.cursor() as cur:
            # The marker first, in key order: a concurrent writer of the same content waits on
            # its row, then replaces its units (whose unique key would collide otherwise).
            cur.execute(
                "INSERT INTO lexical_docs(content_hash, stage_key, units, checksum)"
                " SELECT h, %s, n, c FROM unnest(%s::text[], %s::int[], %s::text[]) AS u(h, n, c)"
                " ORDER BY h ON CONFLICT (content_hash, stage_key) DO UPDATE SET units=excluded.units,"
                " checksum=excluded.checksum",
                (stage_key, [d.content_hash for d in unique], [len(d.units) for d in unique],
                 [lexical_units_checksum(d.units) for d in unique]))
            gone = cur.execute(
                "DELETE FROM lexical_units WHERE stage_key=%s AND content_hash = ANY(%s)"
                " RETURNING doc_id, head_len + body_len + sub_len",
                (stage_key, [d.content_hash for d in unique])).fetchall()
            if gone:
                cur.execute("DELETE FROM lexical_terms WHERE doc_id = ANY(%s)", (sorted(d for d, _ in gone),))
            ids = cur.execute(
                "INSERT INTO lexical_units(content_hash, stage_key, ordinal, symbol, start_line, end_line,"
                "   head, body, subtokens, head_len, body_len, sub_len, terms_checksum)"
                " SELECT h, %s, o, s, a, b, hd, bd, st, hl, bl, sl, tc FROM unnest(%s::text[], %s::int[],"
                "   %s::text[], %s::int[], %s::int[], %b::bytea[], %b::bytea[], %b::bytea[], %s::int[],"
                "   %s::int[], %s::int[], %s::text[]) WITH ORDINALITY"
                "   AS u(h, o, s, a, b, hd, bd, st, hl, bl, sl, tc, n) ORDER BY n"
                " RETURNING doc_id",
                (stage_key, [h for h, _ in units], [u.ordinal for _, u in units],
                 [u.symbol for _, u in units], [u.start_line for _, u in units],
                 [u.end_line for _, u in units], [_utf8(u.head) for _, u in units],
                 [_utf8(u.body) for _, u in units], [_utf8(u.subtokens) for _, u in units],
                 [t.lengths[0] for t in terms], [t.lengths[1] for t in terms],
                 [t.lengths[2] for t in terms], [terms_digest(t) for t in terms]),
            ).fetchall() if units else []
            with cur.copy("COPY lexical_terms (doc_id, term, tf_head, tf_body, tf_sub) FROM STDIN") as copy:
                for (doc_id,), doc_terms in zip(ids, terms, strict=True):
                    for term, (tf_head, tf_body, tf_sub) in doc_terms.terms.items():
                        copy.write_row((doc_id, term, tf_head, tf_body, tf_sub))
            self._count_lexical(conn, len(units) - len(gone),
                                sum(t.length for t in terms) - sum(n for _, n in gone))

    def lexical_documents(
        self, snapshot_id: int, stage_key: str, skip: set[str], paths: Sequence[str] | None = None
    ) -> tuple[list[tuple[str, str | None, str]], dict[str, tuple[str, list[LexicalUnit] | None]]]:
        conn = self._conn()
        where = "f.snapshot_id=%s" + ("" if paths is None else " AND f.path = ANY(%s)")
        params = (snapshot_id,) if paths is None else (snapshot_id, list(paths))
        rows = conn.execute(
            "SELECT f.path, f.module, d.content_hash, d.checksum FROM snapshot_files f"
            f" JOIN lexical_docs d ON d.content_hash=f.content_hash AND d.stage_key=%s WHERE {where}"
            " ORDER BY f.path", (stage_key, *params)).fetchall()
        files = [(path, module, content_hash) for path, module, content_hash, _ in rows]
        wanted = {h: checksum for _, _, h, checksum in rows if h not in skip}
        units: dict[str, list[LexicalUnit] | None] = {h: [] for h in wanted}
        # The term rows BM25 ranks by (and its statistics count), checked by the server
        # against the digest stored with them.
        for (content_hash,) in conn.execute(
            "SELECT d.content_hash FROM lexical_units d LEFT JOIN lexical_terms t ON t.doc_id=d.doc_id"
            " WHERE d.stage_key=%s AND d.content_hash = ANY(%s)"
            f" GROUP BY d.doc_id HAVING {TERMS_DIGEST_SQL} IS DISTINCT FROM min(d.terms_checksum)",
            (stage_key, sorted(wanted)),
        ):
            units[content_hash] = None
        for content_hash, ordinal, symbol, start, end, head, body, sub in conn.cursor().stream(
            "SELECT content_hash, ordinal, symbol, start_line, end_line, head, body, subtokens"
            " FROM lexical_units WHERE stage_key=%s AND content_hash = ANY(%s)"
            " ORDER BY content_hash, ordinal", (stage_key, sorted(wanted)),
        ):
            held = units[content_hash]
            if held is None:
                continue
            try:
                held.append(LexicalUnit(ordinal, symbol, start, end, _text(head), _text(body), _text(sub)))
            except UnicodeDecodeError:
                units[content_hash] = None
        return files, {h: (checksum, units[h]) for h, checksum in wanted.items()}

    def lexical_statistics(self, terms: Sequence[str]) -> tuple[int, int, dict[str, int]]:
        conn = self._conn()
        n_rows, n_tokens = conn.execute(
            "SELECT coalesce(sum(docs), 0)::bigint, coalesce(sum(tokens), 0)::bigint FROM lexical_stats"
        ).fetchone() or (0, 0)
        hits = dict(conn.execute(
            "SELECT term, count(*) FROM lexical_terms WHERE term = ANY(%s) GROUP BY term", (list(terms),)
        ).fetchall())
        return int(n_rows), int(n_tokens), {t: int(n) for t, n in hits.items()}

    def lexical_bodies(self, stage_key: str, units: Sequence[tuple[str, int]]) -> dict[tuple[str, int], str]:
        wanted = sorted(set(units))
        out: dict[tuple[str, int], str] = dict.fromkeys(wanted, "")
        if wanted:
            for content_hash, ordinal, body in self._conn().execute(
                "SELECT content_hash, ordinal, body FROM lexical_units WHERE stage_key=%s"
                " AND (content_hash, ordinal) IN (SELECT * FROM unnest(%s::text[], %s::int[]))",
                (stage_key, [h for h, _ in wanted], [o for _, o in wanted]),
            ):
                out[(content_hash, ordinal)] = _text_or_none(body) or ""
        return out

    def verify_lexical_index(self) -> bool:
        return False  # no index beyond the per-document term rows `damaged_lexical` checks

    def lexical_search(
        self, snapshot_id: int, stage_key: str, match: str, limit: int
    ) -> list[LexicalHit]:
        """Statistics (document count, average length, documents per phrase) cover every stored
        document, as FTS5's do over its whole table (the totals from `lexical_stats`, never a
        scan of the documents); only the ranked units are the snapshot's."""
        phrases = [bm25.tokenize_phrase(p) for p in bm25.parse_match(match)]
        conn = self._conn()
        n_rows, n_tokens = conn.execute(
            "SELECT coalesce(sum(docs), 0)::bigint, coalesce(sum(tokens), 0)::bigint FROM lexical_stats"
        ).fetchone() or (0, 0)
        if not n_rows or not any(phrases):
            return []
        avgdl = int(n_tokens) / int(n_rows)
        single = sorted({p[0] for p in phrases if len(p) == 1})
        hits = dict(conn.execute(
            "SELECT term, count(*) FROM lexical_terms WHERE term = ANY(%s) GROUP BY term", (single,)
        ).fetchall())
        # doc id -> (doc length, {single-token phrase term: tfs per column})
        docs: dict[int, tuple[int, dict[str, tuple[int, ...]]]] = {}
        for doc_id, doc_len, term, *tfs in conn.execute(
            "SELECT d.doc_id, d.head_len + d.body_len + d.sub_len, t.term, t.tf_head, t.tf_body, t.tf_sub"
            " FROM lexical_terms t JOIN lexical_units d ON d.doc_id=t.doc_id AND d.stage_key=%s"
            " WHERE t.term = ANY(%s) AND d.content_hash IN"
            "   (SELECT content_hash FROM snapshot_files WHERE snapshot_id=%s)",
            (stage_key, single, snapshot_id),
        ):
            docs.setdefault(doc_id, (doc_len, {}))[1][term] = tuple(tfs)
        multi = {tuple(p): self._phrase_hits(p, stage_key, snapshot_id) for p in phrases if len(p) > 1}
        for _, in_snapshot in multi.values():
            for doc_id, (doc_len, _) in in_snapshot.items():
                docs.setdefault(doc_id, (doc_len, {}))
        zero = (0,) * bm25.COLUMNS

        def n_hit(p: list[str]) -> int:
            if len(p) == 1:
                return int(hits.get(p[0], 0))
            return len(multi[tuple(p)][0]) if p else 0  # an empty phrase matches nothing

        def freq(p: list[str], doc_id: int, tfs: dict[str, tuple[int, ...]]) -> tuple[int, ...]:
            if len(p) == 1:
                return tfs.get(p[0], zero)
            return multi[tuple(p)][1].get(doc_id, (0, zero))[1] if p else zero

        idfs = [bm25.idf(int(n_rows), n_hit(p)) for p in phrases]
        scored = {doc_id: bm25.score(idfs, [freq(p, doc_id, tfs) for p in phrases], doc_len, avgdl)
                  for doc_id, (doc_len, tfs) in docs.items()}
        if not scored:
            return []
        # Every snapshot path holding a scored document's content (equal files rank alike).
        rows = conn.execute(
            "SELECT d.doc_id, f.path, f.module, d.ordinal, d.symbol, d.start_line, d.end_line"
            " FROM lexical_units d JOIN snapshot_files f ON f.content_hash=d.content_hash"
            " AND f.snapshot_id=%s WHERE d.doc_id = ANY(%s)", (snapshot_id, sorted(scored))).fetchall()
        by_key = {(path, start, ordinal): (doc_id, module, symbol, end)
                  for doc_id, path, module, ordinal, symbol, start, end in rows}
        ranked = bm25.rank({key: scored[v[0]] for key, v in by_key.items()}, limit)
        bodies = dict(conn.execute("SELECT doc_id, body FROM lexical_units WHERE doc_id = ANY(%s)",
                                   (sorted({by_key[k][0] for k, _ in ranked}),)).fetchall())
        out = []
        for (path, start, ordinal), score in ranked:
            doc_id, module, symbol, end = by_key[(path, start, ordinal)]
            out.append(LexicalHit(path, module, ordinal, symbol, start, end, score,
                                  _text_or_none(bodies.get(doc_id)) or ""))
        return out

    def _phrase_hits(
        self, tokens: list[str], stage_key: str, snapshot_id: int
    ) -> tuple[set[int], dict[int, tuple[int, tuple[int, ...]]]]:
        """A multi-token phrase (rare: Unicode the tokenizer splits inside a query word): the
        documents holding it anywhere, and those of the snapshot (doc length, per-column
        counts). Positions are not stored, so candidates (all tokens present) are re-tokenized."""
        conn = self._conn()
        distinct = sorted(set(tokens))
        candidates = conn.execute(
            "SELECT d.doc_id, d.head, d.body, d.subtokens, d.head_len + d.body_len + d.sub_len"
            " FROM lexical_units d WHERE d.doc_id IN (SELECT doc_id FROM lexical_terms WHERE term = ANY(%s)"
            "   GROUP BY doc_id HAVING count(*) = %s)",
            (distinct, len(distinct)),
        ).fetchall()
        holding: dict[int, tuple[int, tuple[int, ...]]] = {}
        for doc_id, head, body, sub, doc_len in candidates:
            counts = bm25.phrase_counts((_text(head), _text(body), _text(sub)), tokens)
            if any(counts):
                holding[doc_id] = (doc_len, counts)
        in_snapshot: dict[int, tuple[int, tuple[int, ...]]] = {}
        if holding:
            for (doc_id,) in conn.execute(
                "SELECT d.doc_id FROM lexical_units d WHERE d.stage_key=%s AND d.doc_id = ANY(%s)"
                " AND d.content_hash IN (SELECT content_hash FROM snapshot_files WHERE snapshot_id=%s)",
                (stage_key, sorted(holding), snapshot_id),
            ):
                in_snapshot[doc_id] = holding[doc_id]
        return set(holding), in_snapshot

    # ----- L4 ----------------------------------------------------------------------------

    def texts_without_embedding(
        self, snapshot_id: int, chunk_key: str, model_key: str
    ) -> list[tuple[str, str]]:
        rows = self._conn().execute(
            "SELECT DISTINCT t.text_hash, t.text FROM snapshot_files f"
            " JOIN chunks c ON c.content_hash=f.content_hash AND c.stage_key=%s"
            " JOIN texts t ON t.text_hash=c.text_hash"
            " WHERE f.snapshot_id=%s AND NOT EXISTS (SELECT 1 FROM embeddings e"
            "   WHERE e.text_hash=c.text_hash AND e.model_key=%s)"
            " ORDER BY t.text_hash",
            (chunk_key, snapshot_id, model_key),
        ).fetchall()
        return [(h, _text(t)) for h, t in rows]

    def put_embeddings(self, model_key: str, rows: Sequence[tuple[str, bytes]]) -> None:
        with self._tx() as conn, conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO embeddings(text_hash, model_key, vector, checksum) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (text_hash, model_key) DO UPDATE SET vector=excluded.vector,"
                " checksum=excluded.checksum",
                [(h, model_key, v, vector_checksum(v)) for h, v in sorted(rows, key=lambda r: r[0])],
            )

    def damaged_embeddings(
        self, snapshot_id: int, chunk_key: str, model_key: str, dimensions: int
    ) -> set[str]:
        return {th for th, vector, checksum in self._conn().cursor().stream(
            "SELECT DISTINCT e.text_hash, e.vector, e.checksum FROM snapshot_files f"
            " JOIN chunks c ON c.content_hash=f.content_hash AND c.stage_key=%s"
            " JOIN embeddings e ON e.text_hash=c.text_hash AND e.model_key=%s"
            " WHERE f.snapshot_id=%s", (chunk_key, model_key, snapshot_id),
        ) if not vector_ok(bytes(vector), checksum, dimensions)}

    def delete_embeddings(self, model_key: str, text_hashes: Sequence[str]) -> None:
        with self._tx() as conn:
            conn.execute("DELETE FROM embeddings WHERE model_key=%s AND text_hash = ANY(%s)",
                         (model_key, sorted(text_hashes)))

    def snapshot_vectors(
        self, snapshot_id: int, chunk_key: str, model_key: str
    ) -> list[tuple[int, str, bytes, str | None]]:
        """(chunk id, path, vector, stored checksum) for every embedded chunk of the snapshot."""
        return self._conn().execute(
            "SELECT c.id, f.path, e.vector, e.checksum FROM snapshot_files f"
            " JOIN chunks c ON c.content_hash=f.content_hash AND c.stage_key=%s"
            " JOIN embeddings e ON e.text_hash=c.text_hash AND e.model_key=%s"
            " WHERE f.snapshot_id=%s ORDER BY f.path, c.ordinal",
            (chunk_key, model_key, snapshot_id),
        ).fetchall()

    def snapshot_text_hashes(self, snapshot_id: int, chunk_key: str) -> set[str]:
        return {h for (h,) in self._conn().execute(
            "SELECT DISTINCT c.text_hash FROM snapshot_files f"
            " JOIN chunks c ON c.content_hash=f.content_hash AND c.stage_key=%s WHERE f.snapshot_id=%s",
            (chunk_key, snapshot_id))}

    def embeddings_of(
        self, model_key: str, text_hashes: Sequence[str]
    ) -> Iterator[tuple[str, bytes, str | None]]:
        wanted = sorted(set(text_hashes))
        conn = self._conn()
        for i in range(0, len(wanted), 10_000):
            yield from conn.execute(
                "SELECT text_hash, vector, checksum FROM embeddings"
                " WHERE model_key=%s AND text_hash = ANY(%s)", (model_key, wanted[i : i + 10_000]))

    def chunks_of_texts(
        self, snapshot_id: int, chunk_key: str, text_hashes: Sequence[str]
    ) -> list[ChunkRow]:
        rows = self._conn().execute(
            f"SELECT {self._CHUNK_COLUMNS} FROM chunks c"
            " JOIN snapshot_files f ON f.content_hash=c.content_hash AND f.snapshot_id=%s"
            " JOIN texts t ON t.text_hash=c.text_hash"
            " WHERE c.stage_key=%s AND c.text_hash = ANY(%s) ORDER BY f.path, c.start_line, c.id",
            (snapshot_id, chunk_key, sorted(set(text_hashes)))).fetchall()
        return [_chunk(r) for r in rows]

    def count_embedded(self, snapshot_id: int, chunk_key: str, model_key: str) -> int:
        (n,) = self._conn().execute(
            "SELECT count(*) FROM snapshot_files f"
            " JOIN chunks c ON c.content_hash=f.content_hash AND c.stage_key=%s"
            " JOIN embeddings e ON e.text_hash=c.text_hash AND e.model_key=%s"
            " WHERE f.snapshot_id=%s",
            (chunk_key, model_key, snapshot_id),
        ).fetchone() or (0,)
        return int(n)

    # ----- graph queries -----------------------------------------------------------------

    _SYMBOL_COLUMNS = "qname, name, kind, path, start_line, end_line, signature, docstring"

    def find_symbols(self, snapshot_id: int, name: str) -> list[SymbolRow]:
        conn = self._conn()
        rows = conn.execute(
            f"SELECT {self._SYMBOL_COLUMNS} FROM symbols WHERE qname=%s AND {_IN_SNAPSHOT}"
            " ORDER BY path, start_line",
            (name, snapshot_id),
        ).fetchall()
        if not rows:
            rows = conn.execute(
                f"SELECT {self._SYMBOL_COLUMNS} FROM symbols WHERE (path=%s OR name=%s)"
                f" AND {_IN_SNAPSHOT} ORDER BY path, start_line",
                (name, name, snapshot_id),
            ).fetchall()
        return [_symbol(r) for r in rows]

    def symbols_in_file(self, snapshot_id: int, path: str) -> list[SymbolRow]:
        rows = self._conn().execute(
            f"SELECT {self._SYMBOL_COLUMNS} FROM symbols WHERE path=%s AND {_IN_SNAPSHOT}"
            " ORDER BY start_line, qname",
            (path, snapshot_id),
        ).fetchall()
        return [_symbol(r) for r in rows]

    def edges_where(self, snapshot_id: int, kind: str, column: str, values: Sequence[str]) -> list[Edge]:
        if column not in ("src", "dst", "src_path", "dst_path"):
            raise ValueError(column)
        rows = self._conn().execute(
            "SELECT e.kind, e.src, e.src_path, e.dst, e.dst_path, e.line, e.call_kind"
            " FROM unnest(%s::text[]) WITH ORDINALITY AS v(value, n)"
            f" JOIN edges e ON e.kind=%s AND e.{column}=v.value"
            f" WHERE e.{_IN_SNAPSHOT}"
            " ORDER BY v.n, e.src_path, e.line, e.src, e.dst, e.call_kind",
            (list(values), kind, snapshot_id),
        ).fetchall()
        return [Edge(*r) for r in rows]

    def graph_counts(self, snapshot_id: int) -> tuple[int, int]:
        symbols, edges = self._conn().execute(
            "SELECT coalesce(sum(r.symbols), 0)::bigint, coalesce(sum(r.edges), 0)::bigint"
            " FROM snapshot_files f JOIN resolutions r ON r.res_id=f.res_id WHERE f.snapshot_id=%s",
            (snapshot_id,),
        ).fetchone() or (0, 0)
        return int(symbols), int(edges)

    # ----- export ------------------------------------------------------------------------

    def export_rows(self, snapshot_id: int, stage_keys: dict[str, str]) -> Iterator[tuple[Any, ...]]:
        """Every fact of a snapshot, without row ids or timestamps, in a canonical order.

        The same rows, in the same order, as `SqliteStore.export_rows` (text sorts by code point
        in both); ties the SQLite order leaves open are broken by the remaining columns."""
        conn = self._conn()
        sid = (snapshot_id,)
        yield from (("file", *r) for r in conn.execute(
            "SELECT path, content_hash, coalesce(language, ''), coalesce(module, '')"
            " FROM snapshot_files WHERE snapshot_id=%s ORDER BY path", sid))
        yield from (("problem", *r) for r in conn.execute(
            "SELECT path, outcome, reason FROM file_problems WHERE snapshot_id=%s"
            " ORDER BY path, outcome, reason", sid))
        yield from (("symbol", *r[:5], _text(r[5]), _text(r[6])) for r in conn.execute(
            "SELECT s.qname, s.kind, s.path, s.start_line, s.end_line, s.signature, s.docstring"
            " FROM snapshot_files f JOIN symbols s ON s.res_id=f.res_id WHERE f.snapshot_id=%s"
            " ORDER BY s.path, s.start_line, s.qname, s.kind, s.end_line, s.signature, s.docstring",
            sid))
        yield from (("edge", *r) for r in conn.execute(
            "SELECT e.kind, e.src, e.src_path, e.dst, e.dst_path, e.line, e.call_kind"
            " FROM snapshot_files f JOIN edges e ON e.res_id=f.res_id WHERE f.snapshot_id=%s"
            " ORDER BY e.src_path, e.line, e.kind, e.src, e.dst, e.dst_path, e.call_kind", sid))
        yield from (("dep", *r) for r in conn.execute(
            "SELECT d.importer, d.dependency, d.name"
            " FROM snapshot_files f JOIN file_deps d ON d.res_id=f.res_id WHERE f.snapshot_id=%s"
            " ORDER BY d.importer, d.dependency, d.name", sid))
        l2 = stage_keys.get("L2_chunk")
        yield from (("chunk", *r) for r in conn.execute(
            "SELECT f.path, c.ordinal, c.start_line, c.end_line, c.symbol, c.text_hash"
            " FROM snapshot_files f JOIN chunks c ON c.content_hash=f.content_hash AND c.stage_key=%s"
            " WHERE f.snapshot_id=%s ORDER BY f.path, c.ordinal", (l2, snapshot_id)))
        l3 = stage_keys.get("L3_lexical")
        for path, content_hash, ordinal, symbol, start, end, head, body, subtokens in conn.execute(
            "SELECT f.path, f.content_hash, d.ordinal, d.symbol, d.start_line, d.end_line, d.head, d.body,"
            " d.subtokens FROM snapshot_files f"
            " JOIN lexical_units d ON d.content_hash=f.content_hash AND d.stage_key=%s"
            " WHERE f.snapshot_id=%s ORDER BY f.path, d.ordinal",
            (l3, snapshot_id),
        ):
            yield ("lexical", path, content_hash, ordinal, symbol, start, end,
                   _digest(_text(head), _text(body), _text(subtokens)))
        l4 = stage_keys.get("L4_vector")
        if l4 is not None:
            for path, ordinal, text_hash, vector in conn.execute(
                "SELECT f.path, c.ordinal, c.text_hash, e.vector FROM snapshot_files f"
                " JOIN chunks c ON c.content_hash=f.content_hash AND c.stage_key=%s"
                " JOIN embeddings e ON e.text_hash=c.text_hash AND e.model_key=%s"
                " WHERE f.snapshot_id=%s ORDER BY f.path, c.ordinal", (l2, l4, snapshot_id),
            ):
                yield ("vector", path, ordinal, text_hash, xxhash.xxh3_64_hexdigest(bytes(vector)))


def _symbol(r: tuple[Any, ...]) -> SymbolRow:
    return SymbolRow(r[0], r[1], r[2], r[3], r[4], r[5], _text(r[6]), _text(r[7]))


def _chunk(r: tuple[Any, ...]) -> ChunkRow:
    # A damaged (non-UTF-8) text reads as "": it then fails its hash check instead of crashing.
    return ChunkRow(int(r[0]), r[1], r[2], r[3], r[4], r[5], r[6], _text_or_none(r[7]) or "")


def _digest(*parts: str) -> str:
    h = xxhash.xxh3_64()
    for part in parts:
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\0")
    return h.hexdigest()


def _used_by_a_snapshot(stage: str) -> str:
    """SQL: the per-file output row `t` is needed by some snapshot (same content, same key)."""
    return ("EXISTS (SELECT 1 FROM snapshot_files f JOIN snapshots s ON s.id=f.snapshot_id"
            f" WHERE f.content_hash=t.content_hash AND (s.stage_keys::jsonb)->>'{stage}'=t.stage_key)")


# (kind, table, bytes of a row, SQL true when a kept snapshot uses row `t`), in deletion order.
_CACHE_KINDS = [
    ("resolutions", "resolutions", "0",
     "EXISTS (SELECT 1 FROM snapshot_files f WHERE f.res_id=t.res_id)"),
    ("L1_ir", "ir_outputs", "coalesce(length(t.payload), 0) + coalesce(length(t.error), 0)",
     _used_by_a_snapshot("L1_ir")),
    ("L3_lexical", "lexical_docs",
     "coalesce((SELECT sum(length(u.head) + length(u.body) + length(u.subtokens))"
     " FROM lexical_units u WHERE u.content_hash=t.content_hash AND u.stage_key=t.stage_key), 0)",
     _used_by_a_snapshot("L3_lexical")),
    ("L2_chunk", "chunk_sets", "t.chunk_count * 64", _used_by_a_snapshot("L2_chunk")),
    ("texts", "texts", "length(t.text)", "EXISTS (SELECT 1 FROM chunks c WHERE c.text_hash=t.text_hash)"),
    ("L4_vector", "embeddings", "length(t.vector)",
     "EXISTS (SELECT 1 FROM texts x WHERE x.text_hash=t.text_hash) AND EXISTS (SELECT 1 FROM snapshots s"
     " WHERE (s.stage_keys::jsonb)->>'L4_vector'=t.model_key)"),
]
