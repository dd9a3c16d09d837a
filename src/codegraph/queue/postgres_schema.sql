-- codegraph job queue, PostgreSQL. Idempotent: `postgres.py` applies it on open under
-- pg_advisory_xact_lock, so concurrent workers starting at once do not race on DDL. An older
-- `jobs` table (the index store's first schema) gains the columns it lacks.
-- Timestamps are epoch seconds (double precision) from the database clock.

CREATE TABLE IF NOT EXISTS jobs (
    id bigserial PRIMARY KEY,
    repo text NOT NULL,
    snapshot text,
    priority integer NOT NULL DEFAULT 0,
    state text NOT NULL,
    attempt integer NOT NULL DEFAULT 0,
    max_attempts integer NOT NULL DEFAULT 3,
    queued_at double precision NOT NULL,
    started_at double precision,
    finished_at double precision,
    next_retry_at double precision,
    worker_id text,
    current_stage text,
    last_error text,
    error_class text,
    result text
);
ALTER TABLE jobs ADD COLUMN IF NOT EXISTS rev text;
ALTER TABLE jobs ADD COLUMN IF NOT EXISTS lease_token bigint NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN IF NOT EXISTS lease_expires_at double precision;
ALTER TABLE jobs ADD COLUMN IF NOT EXISTS heartbeat_at double precision;
ALTER TABLE jobs ADD COLUMN IF NOT EXISTS cancel_requested boolean NOT NULL DEFAULT false;
ALTER TABLE jobs ADD COLUMN IF NOT EXISTS errors text NOT NULL DEFAULT '[]';
ALTER TABLE jobs ADD COLUMN IF NOT EXISTS needs_operator boolean NOT NULL DEFAULT false;
ALTER TABLE jobs ADD COLUMN IF NOT EXISTS options text;  -- JSON: the enqueuer's run options

-- At most one queued or running job per snapshot: what makes enqueue idempotent.
CREATE UNIQUE INDEX IF NOT EXISTS jobs_active_snapshot ON jobs(repo, snapshot)
    WHERE state IN ('queued', 'running');
CREATE INDEX IF NOT EXISTS jobs_claimable ON jobs(priority DESC, id) WHERE state = 'queued';
CREATE INDEX IF NOT EXISTS jobs_leases ON jobs(lease_expires_at) WHERE state = 'running';
CREATE INDEX IF NOT EXISTS jobs_by_state_id ON jobs(state, id);

CREATE TABLE IF NOT EXISTS job_events (
    id bigserial PRIMARY KEY,
    job_id bigint NOT NULL,
    at double precision NOT NULL,
    from_state text,
    to_state text NOT NULL,
    detail text
);
ALTER TABLE job_events ADD COLUMN IF NOT EXISTS attempt integer NOT NULL DEFAULT 0;
ALTER TABLE job_events ADD COLUMN IF NOT EXISTS worker_id text;
CREATE INDEX IF NOT EXISTS job_events_by_job ON job_events(job_id, id);

-- One run of a repository at a time (a watch update, `codegraph index`, a worker's job): the
-- row names the job holding the repository (by its identity). It is held only while that job
-- runs under that lease token with an unexpired lease, so a dead holder's lock ends with its
-- lease; a new holder takes the row over in one guarded upsert (see `queue/sql.py`).
CREATE TABLE IF NOT EXISTS repo_locks (
    repo text PRIMARY KEY,
    job_id bigint NOT NULL,
    token bigint NOT NULL,
    acquired_at double precision NOT NULL
);
