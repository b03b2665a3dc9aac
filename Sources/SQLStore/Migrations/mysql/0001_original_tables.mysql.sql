-- The two tables of the original system, with the same names and columns.
-- IF NOT EXISTS: a site that already has them keeps its rows.
CREATE TABLE IF NOT EXISTS contents (
    cid BIGINT PRIMARY KEY,
    filename VARCHAR(255) NOT NULL,
    content_level VARCHAR(64) NOT NULL,
    update_time DATETIME(6) NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS level (
    content_level VARCHAR(64) PRIMARY KEY,
    min_counts BIGINT NOT NULL,
    max_counts BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
