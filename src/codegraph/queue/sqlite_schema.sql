-- codegraph job queue, SQLite: in the same file as the index store (WAL).
-- Timestamps are epoch seconds (REAL). Applied idempotently on every open; `sqlite.py` first adds
-- the columns an older `jobs` table (from schema 1 of the index store) lacks.

CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    repo TEXT NOT NULL,
    rev TEXT,
    snapshot TEXT,                          -- idempotency key; NULL for direct `codegraph index` runs
    priority INTEGER NOT NULL DEFAULT 0,    -- higher is claimed first
    state TEXT NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL DEFAULT 3,
    queued_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    next_retry_at REAL,                     -- a retried job is not claimed before this
    worker_id TEXT,
    lease_token INTEGER NOT NULL DEFAULT 0, -- bumped by every claim: fences every later write
    lease_expires_at REAL,
    heartbeat_at REAL,
    current_stage TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    error_class TEXT,                       -- transient | permanent | infrastructure
    errors TEXT NOT NULL DEFAULT '[]',      -- JSON: every failed attempt's error
    needs_operator INTEGER NOT NULL DEFAULT 0,
    result TEXT,
    options TEXT                            -- JSON: the enqueuer's run options; NULL: the worker's
);
-- At most one queued or running job per snapshot: what makes enqueue idempotent.
CREATE UNIQUE INDEX IF NOT EXISTS jobs_active_snapshot ON jobs(repo, snapshot)
    WHERE state IN ('queued', 'running');
CREATE INDEX IF NOT EXISTS jobs_claimable ON jobs(priority DESC, id) WHERE state = 'queued';
CREATE INDEX IF NOT EXISTS jobs_leases ON jobs(lease_expires_at) WHERE state = 'running';
CREATE INDEX IF NOT EXISTS jobs_by_state_id ON jobs(state, id);

CREATE TABLE IF NOT EXISTS job_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id INTEGER NOT NULL,
    at REAL NOT NULL,
    from_state TEXT,
    to_state TEXT NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 0,
    worker_id TEXT,
    detail TEXT
);
CREATE INDEX IF NOT EXISTS job_events_by_job ON job_events(job_id, id);

-- One run of a repository at a time (a watch update, `codegraph index`, a worker's job): the
-- row names the job holding the repository (by its identity). It is held only while that job
-- runs under that lease token with an unexpired lease, so a dead holder's lock ends with its
-- lease; a new holder takes the row over in one guarded upsert (see `queue/sql.py`).
CREATE TABLE IF NOT EXISTS repo_locks (
    repo TEXT PRIMARY KEY,
    job_id INTEGER NOT NULL,
    token INTEGER NOT NULL,
    acquired_at REAL NOT NULL
);
