-- One row per committed move. job_id (<cid>:<gen>) makes a batch delivered twice a no-op.
CREATE TABLE IF NOT EXISTS relocations (
    id BIGSERIAL PRIMARY KEY,
    job_id VARCHAR(64) NOT NULL UNIQUE,
    cid BIGINT NOT NULL,
    from_level VARCHAR(64) NOT NULL,
    to_level VARCHAR(64) NOT NULL,
    bytes BIGINT NOT NULL,
    checksum VARCHAR(128) NOT NULL,
    worker VARCHAR(255) NOT NULL,
    attempts INTEGER NOT NULL,
    moved_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS relocations_cid ON relocations (cid);
