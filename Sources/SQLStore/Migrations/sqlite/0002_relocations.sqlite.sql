-- One row per committed move. job_id (<cid>:<gen>) makes a batch delivered twice a no-op.
CREATE TABLE IF NOT EXISTS relocations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id VARCHAR(64) NOT NULL UNIQUE,
    cid INTEGER NOT NULL,
    from_level VARCHAR(64) NOT NULL,
    to_level VARCHAR(64) NOT NULL,
    bytes INTEGER NOT NULL,
    checksum VARCHAR(128) NOT NULL,
    worker VARCHAR(255) NOT NULL,
    attempts INTEGER NOT NULL,
    moved_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))
);

CREATE INDEX IF NOT EXISTS relocations_cid ON relocations (cid);
