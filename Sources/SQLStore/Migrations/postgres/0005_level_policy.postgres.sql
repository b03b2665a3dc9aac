-- How each level is managed, for the rules that act on disk usage. Every setting may be NULL
-- (not set). Percentages (high_water, low_water, hysteresis) are whole numbers from 0 to 100,
-- min_residency is in seconds, bandwidth in bytes per second.
CREATE TABLE IF NOT EXISTS level_policy (
    content_level VARCHAR(64) PRIMARY KEY,
    high_water INTEGER NULL CHECK (high_water BETWEEN 0 AND 100),
    low_water INTEGER NULL CHECK (low_water BETWEEN 0 AND 100),
    min_residency BIGINT NULL CHECK (min_residency >= 0),
    hysteresis INTEGER NULL CHECK (hysteresis BETWEEN 0 AND 100),
    max_moves INTEGER NULL CHECK (max_moves >= 0),
    bandwidth BIGINT NULL CHECK (bandwidth >= 0),
    priority INTEGER NULL,
    CHECK (low_water IS NULL OR high_water IS NULL OR low_water <= high_water)
);
