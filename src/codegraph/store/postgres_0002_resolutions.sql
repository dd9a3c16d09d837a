-- codegraph PostgreSQL store, migration 2: incremental updates (sqlite_schema.sql version 2).
-- Cross-file derived state moves from per-snapshot rows to per-file *resolutions* (res_id):
-- symbols, edges, file_deps and the new resolution_reads belong to a resolution; a
-- snapshot_files row points at its file's resolution, and an incremental update makes new
-- resolutions only for the files it re-resolves, pointing the rest at the previous snapshot's.
--
-- The per-snapshot graph rows of migration 1 are DROPPED, not converted: they are derived state
-- (rebuilt from the cached per-file IR, without parsing anything again), and they carry no record
-- of what each file's resolution read, without which an incremental update could not be correct.
-- Snapshots built before this migration therefore lose their graph: they are marked incomplete
-- (queries and updates no longer use them; they are pruned as abandoned), so the next
-- `codegraph index` of each repository is a full build. Per-file outputs (IR, chunks, lexical
-- documents, embeddings) are kept.

ALTER TABLE repos ADD COLUMN full_build_ms double precision;  -- the latest full build's duration

ALTER TABLE snapshots
    ADD COLUMN mode text NOT NULL DEFAULT 'full',   -- 'full' | 'incremental'
    ADD COLUMN duration_ms double precision;        -- measured, set when complete
UPDATE snapshots SET complete = false;

ALTER TABLE snapshot_files ADD COLUMN res_id bigint;  -- its cross-file resolution (L1), once recorded
CREATE INDEX snapshot_files_by_res ON snapshot_files(res_id);

DROP TABLE symbols;
DROP TABLE edges;
DROP TABLE file_deps;

-- One resolution of one file in one snapshot context, shared by every later snapshot in which
-- none of the facts it read changed. symbols/edges: row counts, for graph_counts without a scan.
CREATE TABLE resolutions (
    res_id bigserial PRIMARY KEY,
    path text COLLATE "C" NOT NULL,
    content_hash text COLLATE "C" NOT NULL,
    symbols integer NOT NULL,
    edges integer NOT NULL,
    unresolved_calls integer NOT NULL
);

-- No foreign keys to resolutions (as lexical_terms): a resolution and its rows are written in
-- one transaction by put_resolutions and deleted together by complete_snapshot, and a per-row
-- check would slow the COPY of every batch.
CREATE TABLE symbols (
    res_id bigint NOT NULL,
    qname text COLLATE "C" NOT NULL,
    name text COLLATE "C" NOT NULL,      -- last component, for lookups by short name
    kind text COLLATE "C" NOT NULL,
    path text COLLATE "C" NOT NULL,
    start_line integer NOT NULL,
    end_line integer NOT NULL,
    signature bytea NOT NULL,            -- UTF-8 slices of the file, as texts.text
    docstring bytea NOT NULL
);
CREATE INDEX symbols_by_res ON symbols(res_id);
CREATE INDEX symbols_by_qname ON symbols(qname);
CREATE INDEX symbols_by_name ON symbols(name);
CREATE INDEX symbols_by_path ON symbols(path);

CREATE TABLE edges (
    res_id bigint NOT NULL,
    kind text COLLATE "C" NOT NULL,      -- imports | calls | inherits
    src text COLLATE "C" NOT NULL,
    src_path text COLLATE "C" NOT NULL,
    dst text COLLATE "C" NOT NULL,
    dst_path text COLLATE "C" NOT NULL,
    line integer NOT NULL
);
CREATE INDEX edges_by_res ON edges(res_id);
CREATE INDEX edges_by_src ON edges(kind, src);
CREATE INDEX edges_by_dst ON edges(kind, dst);
CREATE INDEX edges_by_src_path ON edges(kind, src_path);
CREATE INDEX edges_by_dst_path ON edges(kind, dst_path);

-- What the importer uses: (dependency file, name; '' = the whole module). For queries.
CREATE TABLE file_deps (
    res_id bigint NOT NULL,
    importer text COLLATE "C" NOT NULL,
    dependency text COLLATE "C" NOT NULL,
    name text COLLATE "C" NOT NULL
);
CREATE INDEX file_deps_by_res ON file_deps(res_id);
CREATE INDEX file_deps_by_dependency ON file_deps(dependency);

-- The reverse-dependency index of incremental updates: every fact of another file (or of the
-- module namespace) a resolution read, as a signed 64-bit hash of (path, key) (base.read_key).
-- `readers` looks changed facts up by key: (read_key, res_id) answers it from the index alone.
CREATE TABLE resolution_reads (
    res_id bigint NOT NULL,
    read_key bigint NOT NULL
);
CREATE INDEX resolution_reads_by_key ON resolution_reads(read_key, res_id);
CREATE INDEX resolution_reads_by_res ON resolution_reads(res_id);
