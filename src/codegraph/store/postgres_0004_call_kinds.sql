-- codegraph PostgreSQL store, migration 4: each call edge says how it was resolved
-- (model.Edge.call_kind): 'direct' (the callee itself), 'constructor' (a class called: the
-- class and its __init__/__new__), 'dispatch' (an override in a subclass that a call on
-- self/cls may reach). '' for imports and inherits edges, and for the rows stored before this
-- migration: the Python language version that came with it (py-4) makes every repository's
-- next index resolve again, so those rows are pruned with the snapshots they belong to.
-- A dispatch edge is stored with the overriding subclass's file; `callees` finds it through
-- edges_by_src like any other.

ALTER TABLE edges ADD COLUMN call_kind text COLLATE "C" NOT NULL DEFAULT '';
