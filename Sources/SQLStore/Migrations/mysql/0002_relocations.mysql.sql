-- One row per committed move. job_id (<cid>:<gen>) makes a batch delivered twice a no-op.
CREATE TABLE IF NOT EXISTS relocations (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    job_id VARCHAR(64) NOT NULL UNIQUE,
    cid BIGINT NOT NULL,
    from_level VARCHAR(64) NOT NULL,
    to_level VARCHAR(64) NOT NULL,
    bytes BIGINT NOT NULL,
    checksum VARCHAR(128) NOT NULL,
    worker VARCHAR(255) NOT NULL,
    attempts INTEGER NOT NULL,
    moved_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    KEY relocations_cid (cid)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
