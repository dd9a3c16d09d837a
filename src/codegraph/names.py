"""Names the pipeline and the query layer share, in a module that imports nothing: a search
process (the CLI's `search`) must not import the parsers, the stages or the pipeline to know them."""

L1, L2, L3, L4 = "L1_ir", "L2_chunk", "L3_lexical", "L4_vector"  # the stages, as their cache keys begin
DEFAULT_DB_DIRNAME = ".codegraph"  # the store's directory inside an indexed repository
DB_FILENAME = "index.sqlite"  # the SQLite store's file inside that directory
