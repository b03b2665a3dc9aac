-- Each filename belongs to one content: two rows naming one file would have it moved twice.
-- @precondition: filenames that belong to more than one content
-- @fix: give each of those contents its own filename (`relocator contents add --cid N --filename NEW --level L`) or delete the extra rows, then run `relocator migrate` again
SELECT filename, string_agg(cid::text, ', ' ORDER BY cid) AS cids
FROM contents GROUP BY filename HAVING COUNT(*) > 1 ORDER BY filename;

CREATE UNIQUE INDEX IF NOT EXISTS contents_filename ON contents (filename);
