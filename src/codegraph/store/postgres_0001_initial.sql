-- codegraph PostgreSQL store, migration 1: the tables of sqlite_schema.sql, in PostgreSQL.
-- Ground state: repos, snapshots, snapshot_files.
-- Per-file derived state, keyed by (content_hash, stage_key): ir_outputs, chunk_sets/chunks,
--   lexical_docs/lexical_terms; per text: texts, embeddings. Shared by every snapshot.
-- Per-snapshot derived state (cross-file): symbols, edges, file_deps.
-- Operations (jobs, job_events) are the job queue's: codegraph/queue/postgres_schema.sql.
-- Text columns that are sorted or compared use COLLATE "C": code-point order, as SQLite's BINARY,
-- whatever the database's default collation is (export order and search ties depend on it).

CREATE TABLE repos (
    id bigserial PRIMARY KEY,
    root text COLLATE "C" NOT NULL UNIQUE,
    name text NOT NULL
);

CREATE TABLE snapshots (
    id bigserial PRIMARY KEY,
    repo_id bigint NOT NULL REFERENCES repos(id),
    manifest_hash text NOT NULL,
    stage_keys text NOT NULL,            -- JSON: stage name -> cache key used to build it
    job_id bigint,
    created_at double precision NOT NULL,
    complete boolean NOT NULL DEFAULT false
);
CREATE INDEX snapshots_by_repo ON snapshots(repo_id, complete, id);

CREATE TABLE snapshot_files (
    snapshot_id bigint NOT NULL,
    path text COLLATE "C" NOT NULL,
    content_hash text COLLATE "C" NOT NULL,
    size bigint NOT NULL,
    mtime_ns bigint NOT NULL,
    language text COLLATE "C",
    module text COLLATE "C",
    PRIMARY KEY (snapshot_id, path)
);
CREATE INDEX snapshot_files_by_hash ON snapshot_files(content_hash);

CREATE TABLE file_problems (
    snapshot_id bigint NOT NULL,
    path text COLLATE "C" NOT NULL,
    outcome text COLLATE "C" NOT NULL,   -- 'failed' | 'skipped'
    reason text COLLATE "C" NOT NULL
);
CREATE INDEX file_problems_by_snapshot ON file_problems(snapshot_id);

-- L1: one row per (file content, stage key). payload: msgpack FileIR; error: why it failed.
CREATE TABLE ir_outputs (
    content_hash text COLLATE "C" NOT NULL,
    stage_key text COLLATE "C" NOT NULL,
    payload bytea,
    error text,
    checksum text,                       -- xxh3-64 of payload: a damaged row is recomputed
    PRIMARY KEY (content_hash, stage_key)
);

-- L2: chunk_sets says a file's chunks are all recorded (written in the same transaction).
CREATE TABLE chunk_sets (
    content_hash text COLLATE "C" NOT NULL,
    stage_key text COLLATE "C" NOT NULL,
    chunk_count integer NOT NULL,
    error text,
    PRIMARY KEY (content_hash, stage_key)
);

CREATE TABLE chunks (
    id bigserial PRIMARY KEY,
    content_hash text COLLATE "C" NOT NULL,
    stage_key text COLLATE "C" NOT NULL,
    ordinal integer NOT NULL,
    start_line integer NOT NULL,
    end_line integer NOT NULL,
    symbol text COLLATE "C" NOT NULL,
    text_hash text COLLATE "C" NOT NULL,
    UNIQUE (content_hash, stage_key, ordinal)
);
CREATE INDEX chunks_by_text ON chunks(text_hash);

-- File text (here, lexical bodies, symbol signatures and docstrings) is stored as UTF-8 bytes
-- (bytea): PostgreSQL text cannot hold NUL, and a source file can (past its first 8 KiB).
CREATE TABLE texts (
    text_hash text COLLATE "C" PRIMARY KEY,
    text bytea NOT NULL
);

-- L3: one document per (file content, stage key), and its terms for BM25 (see store/bm25.py).
-- body_len/sub_len: tokens per column (FTS5's column sizes).
CREATE TABLE lexical_docs (
    doc_id bigserial PRIMARY KEY,
    content_hash text COLLATE "C" NOT NULL,
    stage_key text COLLATE "C" NOT NULL,
    body bytea NOT NULL,                 -- UTF-8, as texts.text
    subtokens bytea NOT NULL,
    body_len integer NOT NULL,
    sub_len integer NOT NULL,
    UNIQUE (content_hash, stage_key)
);

-- No foreign key to lexical_docs: its per-row check would double the cost of writing terms;
-- put_lexical deletes a replaced document's terms itself, in the same transaction.
CREATE TABLE lexical_terms (
    doc_id bigint NOT NULL,
    term text COLLATE "C" NOT NULL,
    tf_body integer NOT NULL,            -- occurrences in body
    tf_sub integer NOT NULL,             -- occurrences in subtokens
    PRIMARY KEY (doc_id, term)
);
CREATE INDEX lexical_terms_by_term ON lexical_terms(term);

-- L4: the embedding cache, keyed by the embedded text's hash and the model.
CREATE TABLE embeddings (
    text_hash text COLLATE "C" NOT NULL,
    model_key text COLLATE "C" NOT NULL,
    vector bytea NOT NULL,               -- float32, L2-normalised
    PRIMARY KEY (text_hash, model_key)
);

-- Cross-file results of one snapshot.
CREATE TABLE symbols (
    snapshot_id bigint NOT NULL,
    qname text COLLATE "C" NOT NULL,
    name text COLLATE "C" NOT NULL,      -- last component, for lookups by short name
    kind text COLLATE "C" NOT NULL,
    path text COLLATE "C" NOT NULL,
    start_line integer NOT NULL,
    end_line integer NOT NULL,
    signature bytea NOT NULL,            -- UTF-8 slices of the file, as texts.text
    docstring bytea NOT NULL
);
CREATE INDEX symbols_by_qname ON symbols(snapshot_id, qname);
CREATE INDEX symbols_by_name ON symbols(snapshot_id, name);
CREATE INDEX symbols_by_path ON symbols(snapshot_id, path);

CREATE TABLE edges (
    snapshot_id bigint NOT NULL,
    kind text COLLATE "C" NOT NULL,      -- imports | calls | inherits
    src text COLLATE "C" NOT NULL,
    src_path text COLLATE "C" NOT NULL,
    dst text COLLATE "C" NOT NULL,
    dst_path text COLLATE "C" NOT NULL,
    line integer NOT NULL
);
CREATE INDEX edges_by_src ON edges(snapshot_id, kind, src);
CREATE INDEX edges_by_dst ON edges(snapshot_id, kind, dst);
CREATE INDEX edges_by_src_path ON edges(snapshot_id, kind, src_path);
CREATE INDEX edges_by_dst_path ON edges(snapshot_id, kind, dst_path);

-- The reverse-dependency index: importer uses (dependency file, name; '' = the whole module).
CREATE TABLE file_deps (
    snapshot_id bigint NOT NULL,
    importer text COLLATE "C" NOT NULL,
    dependency text COLLATE "C" NOT NULL,
    name text COLLATE "C" NOT NULL
);
CREATE INDEX file_deps_by_dependency ON file_deps(snapshot_id, dependency);

