-- codegraph embedded store, schema version 6 (3: checksums on every per-file output; 4: edges.call_kind;
-- 5: lexical documents per unit of retrieval; 6: resolution_reads clustered by key, ir_facts).
-- Ground state: repos, snapshots, snapshot_files.
-- Per-file derived state, keyed by (content_hash, stage_key): ir_outputs, chunk_sets/chunks,
--   lexical_docs/lexical_units/lexical_fts; per text: texts, embeddings. Shared by every snapshot.
-- Cross-file derived state, per file *resolution* (res_id): symbols, edges, file_deps,
--   resolution_reads. A snapshot_files row points at its file's resolution; an incremental
--   update makes new resolutions only for the files it re-resolves and points the rest at the
--   previous snapshot's.
-- Operations (jobs, job_events) are the job queue's: codegraph/queue/sqlite_schema.sql.

CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS repos (
    id INTEGER PRIMARY KEY,
    root TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    full_build_ms REAL                   -- the latest full build's measured duration
);

CREATE TABLE IF NOT EXISTS snapshots (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    repo_id INTEGER NOT NULL REFERENCES repos(id),
    manifest_hash TEXT NOT NULL,
    stage_keys TEXT NOT NULL,           -- JSON: stage name -> cache key used to build it
    job_id INTEGER,
    created_at REAL NOT NULL,
    mode TEXT NOT NULL DEFAULT 'full',   -- 'full' | 'incremental'
    duration_ms REAL,                    -- measured, set when complete: the speedup's baseline
    complete INTEGER NOT NULL DEFAULT 0 -- 1 once every stage has recorded its outputs
);
CREATE INDEX IF NOT EXISTS snapshots_by_repo ON snapshots(repo_id, complete, id);

CREATE TABLE IF NOT EXISTS snapshot_files (
    snapshot_id INTEGER NOT NULL,
    path TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    language TEXT,                       -- NULL: no language plug-in, text only
    module TEXT,                         -- qualified module name, for languages that have one
    res_id INTEGER,                      -- its cross-file resolution (L1), once recorded
    PRIMARY KEY (snapshot_id, path)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS snapshot_files_by_hash ON snapshot_files(content_hash);
CREATE INDEX IF NOT EXISTS snapshot_files_by_res ON snapshot_files(res_id);

CREATE TABLE IF NOT EXISTS file_problems (
    snapshot_id INTEGER NOT NULL,
    path TEXT NOT NULL,
    outcome TEXT NOT NULL,               -- 'failed' | 'skipped'
    reason TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS file_problems_by_snapshot ON file_problems(snapshot_id);

-- L1: one row per (file content, stage key). payload: msgpack FileIR; error: why it failed.
CREATE TABLE IF NOT EXISTS ir_outputs (
    content_hash TEXT NOT NULL,
    stage_key TEXT NOT NULL,
    payload BLOB,
    error TEXT,
    checksum TEXT,                       -- xxh3-64 of payload: a damaged row is recomputed
    PRIMARY KEY (content_hash, stage_key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ir_outputs_failed ON ir_outputs(stage_key, content_hash)
    WHERE error IS NOT NULL;

-- L1's "@" facts (`FileIR.index`: facts of the snapshot many files contribute to), by key, so
-- an update reads the keys it asks about instead of every file's IR. Written with the IR, in
-- its transaction; a row with fact_key '' (and no entries) says a content's facts are all here
-- (a content without it, stored before this table, has its facts read from its IR).
CREATE TABLE IF NOT EXISTS ir_facts (
    stage_key TEXT NOT NULL,
    fact_key TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    entries BLOB NOT NULL,               -- msgpack of the fact's entries in that content
    PRIMARY KEY (stage_key, fact_key, content_hash)
) WITHOUT ROWID;

-- L2: chunk_sets says a file's chunks are all recorded (written in the same transaction).
CREATE TABLE IF NOT EXISTS chunk_sets (
    content_hash TEXT NOT NULL,
    stage_key TEXT NOT NULL,
    chunk_count INTEGER NOT NULL,
    error TEXT,
    checksum TEXT NOT NULL,              -- base.chunk_set_checksum of its chunk rows and error
    PRIMARY KEY (content_hash, stage_key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS chunk_sets_failed ON chunk_sets(stage_key, content_hash)
    WHERE error IS NOT NULL;

CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY,
    content_hash TEXT NOT NULL,
    stage_key TEXT NOT NULL,
    ordinal INTEGER NOT NULL,
    start_line INTEGER NOT NULL,
    end_line INTEGER NOT NULL,
    symbol TEXT NOT NULL,
    text_hash TEXT NOT NULL,
    UNIQUE (content_hash, stage_key, ordinal)
);
CREATE INDEX IF NOT EXISTS chunks_by_text ON chunks(text_hash);

-- A text is verified by its key: text_hash is xxh3-128 of its UTF-8 bytes (units.text_hash).
CREATE TABLE IF NOT EXISTS texts (
    text_hash TEXT PRIMARY KEY,
    text TEXT NOT NULL
) WITHOUT ROWID;

-- L3: one FTS document per unit of retrieval (codegraph.units) of a (file content, stage key);
-- lexical_docs marks a file content's documents as all recorded (same transaction).
CREATE VIRTUAL TABLE IF NOT EXISTS lexical_fts USING fts5(
    head, body, subtokens, tokenize = "unicode61 remove_diacritics 2 tokenchars '_'"
);
CREATE TABLE IF NOT EXISTS lexical_docs (
    content_hash TEXT NOT NULL,
    stage_key TEXT NOT NULL,
    units INTEGER NOT NULL,
    checksum TEXT NOT NULL,              -- base.lexical_units_checksum of its units' documents
    PRIMARY KEY (content_hash, stage_key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS lexical_units (
    content_hash TEXT NOT NULL,
    stage_key TEXT NOT NULL,
    ordinal INTEGER NOT NULL,
    symbol TEXT NOT NULL,
    start_line INTEGER NOT NULL,
    end_line INTEGER NOT NULL,
    doc_id INTEGER NOT NULL,             -- rowid in lexical_fts
    PRIMARY KEY (content_hash, stage_key, ordinal)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS lexical_units_by_doc ON lexical_units(doc_id);

-- L4: the embedding cache, keyed by the embedded text's hash and the model.
CREATE TABLE IF NOT EXISTS embeddings (
    text_hash TEXT NOT NULL,
    model_key TEXT NOT NULL,
    vector BLOB NOT NULL,                -- float32, L2-normalised
    checksum TEXT NOT NULL,              -- xxh3-64 of vector
    PRIMARY KEY (text_hash, model_key)
) WITHOUT ROWID;

-- Cross-file results: one resolution of one file in one snapshot context, shared by every later
-- snapshot in which none of the facts it read changed.
CREATE TABLE IF NOT EXISTS resolutions (
    res_id INTEGER PRIMARY KEY,
    path TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    symbols INTEGER NOT NULL,
    edges INTEGER NOT NULL,
    unresolved_calls INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS symbols (
    res_id INTEGER NOT NULL,
    qname TEXT NOT NULL,
    name TEXT NOT NULL,                  -- last component, for lookups by short name
    kind TEXT NOT NULL,
    path TEXT NOT NULL,
    start_line INTEGER NOT NULL,
    end_line INTEGER NOT NULL,
    signature TEXT NOT NULL,
    docstring TEXT NOT NULL
);
-- Few indexes on purpose: an update's COMMIT writes every page its inserts dirtied, and each
-- index on a random key dirties about a page per row. A qualified name is found through its last
-- component (`name`); edges through the file they start in (res_id) or point into (dst_path).
CREATE INDEX IF NOT EXISTS symbols_by_res ON symbols(res_id);
CREATE INDEX IF NOT EXISTS symbols_by_name ON symbols(name);

CREATE TABLE IF NOT EXISTS edges (
    res_id INTEGER NOT NULL,
    kind TEXT NOT NULL,                  -- imports | calls | inherits
    src TEXT NOT NULL,
    src_path TEXT NOT NULL,
    dst TEXT NOT NULL,
    dst_path TEXT NOT NULL,
    line INTEGER NOT NULL,
    call_kind TEXT NOT NULL DEFAULT ''   -- calls: direct | constructor | dispatch; else ''
);
CREATE INDEX IF NOT EXISTS edges_by_res ON edges(res_id);
CREATE INDEX IF NOT EXISTS edges_by_target ON edges(dst_path, kind, dst);
-- A dispatch edge is stored with the overriding subclass's file, not the caller's: `callees`
-- finds those through these (small) partial indexes.
CREATE INDEX IF NOT EXISTS edges_dispatch_by_src ON edges(src) WHERE call_kind='dispatch';
CREATE INDEX IF NOT EXISTS edges_dispatch_by_src_path ON edges(src_path) WHERE call_kind='dispatch';

-- What the importer uses: (dependency file, name; '' = the whole module). For queries.
CREATE TABLE IF NOT EXISTS file_deps (
    res_id INTEGER NOT NULL,
    importer TEXT NOT NULL,
    dependency TEXT NOT NULL,
    name TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS file_deps_by_res ON file_deps(res_id);
CREATE INDEX IF NOT EXISTS file_deps_by_dependency ON file_deps(dependency);

-- The reverse-dependency index of incremental updates: every fact of another file (or of the
-- module namespace) a resolution read, directly or through re-export chains, as a 64-bit hash
-- of (path, key). A changed fact finds the resolutions to redo through this index.
-- Clustered by key (the lookup an update makes), with no index by resolution: a full build
-- writes one row per read (~277,000 on the standard library), and each index more is one more
-- B-tree insert per row; deleting dead resolutions' reads (gc, prune) is one scan instead.
CREATE TABLE IF NOT EXISTS resolution_reads (
    res_id INTEGER NOT NULL,
    read_key INTEGER NOT NULL,
    PRIMARY KEY (read_key, res_id)
) WITHOUT ROWID;
