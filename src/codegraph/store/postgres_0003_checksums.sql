-- codegraph PostgreSQL store, migration 3: a checksum on every per-file output (as L1's
-- ir_outputs.checksum), so a damaged row is detected, recomputed and never used.
--   chunk_sets.checksum      base.chunk_set_checksum of the file's chunk rows and its error
--   lexical_docs.checksum    base.lexical_checksum of body and subtokens
--   lexical_docs.terms_checksum  md5 of the document's term rows (postgres.TERMS_DIGEST_SQL), so
--                            the server checks the BM25 term tables without sending them
--   embeddings.checksum      xxh3-64 of the vector bytes
-- texts need none: a text is verified by its key (text_hash = xxh3-128 of its UTF-8 bytes).
-- Rows stored before this migration get their checksums in the same transaction, computed from
-- what is stored (postgres.backfill_checksums): the columns are NOT NULL afterwards.

ALTER TABLE chunk_sets ADD COLUMN checksum text;
ALTER TABLE lexical_docs ADD COLUMN checksum text, ADD COLUMN terms_checksum text;
ALTER TABLE embeddings ADD COLUMN checksum text;
