-- codegraph PostgreSQL store, migration 5: lexical documents per unit of retrieval
-- (codegraph.units) instead of per file, with a head column weighted above the body, and the
-- BM25 statistics in a small aggregate table so a query never scans the documents for them.
--   lexical_docs   one row per (file content, stage key): its documents are all recorded
--   lexical_units  one document per unit: its lines, name, columns and their token counts
--   lexical_terms  per document and term, its frequency per column
--   lexical_stats  document and token totals, one row per writing connection (its backend pid):
--                  writers never update another's row, so they never wait for each other; a
--                  query sums the rows (as many as connections ever wrote, a handful)
-- The old per-file documents are dropped: the new lexical version recomputes every file's.

DROP TABLE lexical_terms;
DROP TABLE lexical_docs;

CREATE TABLE lexical_docs (
    content_hash text COLLATE "C" NOT NULL,
    stage_key text COLLATE "C" NOT NULL,
    units integer NOT NULL,
    checksum text NOT NULL,              -- base.lexical_units_checksum of its units' documents
    PRIMARY KEY (content_hash, stage_key)
);

CREATE TABLE lexical_units (
    doc_id bigserial PRIMARY KEY,
    content_hash text COLLATE "C" NOT NULL,
    stage_key text COLLATE "C" NOT NULL,
    ordinal integer NOT NULL,
    symbol text COLLATE "C" NOT NULL,
    start_line integer NOT NULL,
    end_line integer NOT NULL,
    head bytea NOT NULL,                 -- UTF-8, as texts.text
    body bytea NOT NULL,
    subtokens bytea NOT NULL,
    head_len integer NOT NULL,           -- tokens per column (FTS5's column sizes)
    body_len integer NOT NULL,
    sub_len integer NOT NULL,
    terms_checksum text NOT NULL,        -- md5 of its term rows (postgres.TERMS_DIGEST_SQL)
    UNIQUE (content_hash, stage_key, ordinal)
);

CREATE TABLE lexical_terms (
    doc_id bigint NOT NULL,
    term text COLLATE "C" NOT NULL,
    tf_head integer NOT NULL,
    tf_body integer NOT NULL,
    tf_sub integer NOT NULL,
    PRIMARY KEY (doc_id, term)
);
CREATE INDEX lexical_terms_by_term ON lexical_terms(term);

CREATE TABLE lexical_stats (
    writer integer PRIMARY KEY,          -- pg_backend_pid() of the connection that wrote
    docs bigint NOT NULL,
    tokens bigint NOT NULL
);
