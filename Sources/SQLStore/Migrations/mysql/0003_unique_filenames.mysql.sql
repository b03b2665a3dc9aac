-- Each filename belongs to one content: two rows naming one file would have it moved twice.
-- Filenames compare byte for byte, as the filesystem compares them (the table's default collation
-- ignores case and trailing spaces), so the check groups by the bytes and the column becomes binary.
-- @precondition: filenames that belong to more than one content
-- @fix: give each of those contents its own filename (`relocator contents add --cid N --filename NEW --level L`) or delete the extra rows, then run `relocator migrate` again
SELECT MIN(filename) AS filename, GROUP_CONCAT(cid ORDER BY cid SEPARATOR ', ') AS cids
FROM contents GROUP BY CAST(filename AS BINARY) HAVING COUNT(*) > 1 ORDER BY 1;

ALTER TABLE contents MODIFY filename VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL;

CREATE UNIQUE INDEX IF NOT EXISTS contents_filename ON contents (filename);
