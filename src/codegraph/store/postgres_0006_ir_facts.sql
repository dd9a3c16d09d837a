-- codegraph PostgreSQL store, migration 6: L1's "@" facts (FileIR.index: facts of the snapshot
-- that many files contribute to) by key, so an incremental update reads the keys it asks about
-- instead of every file's IR. Written with the IR, in its transaction; a row with fact_key ''
-- (and empty entries) says a content's facts are all here. Contents stored before this
-- migration have no such row, and their facts are read from their IR as before.

CREATE TABLE ir_facts (
    stage_key text COLLATE "C" NOT NULL,
    fact_key text COLLATE "C" NOT NULL,
    content_hash text COLLATE "C" NOT NULL,
    entries bytea NOT NULL,
    PRIMARY KEY (stage_key, fact_key, content_hash)
);
