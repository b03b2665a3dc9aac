-- The two tables of the original system, with the same names and columns.
-- IF NOT EXISTS: a site that already has them keeps its rows.
CREATE TABLE IF NOT EXISTS contents (
    cid INTEGER PRIMARY KEY,
    filename VARCHAR(255) NOT NULL,
    content_level VARCHAR(64) NOT NULL,
    update_time TEXT NULL
);

CREATE TABLE IF NOT EXISTS level (
    content_level VARCHAR(64) PRIMARY KEY,
    min_counts INTEGER NOT NULL,
    max_counts INTEGER NOT NULL
);
