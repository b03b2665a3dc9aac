-- The job's generation (the <gen> of <cid>:<gen>): a commit changes a content's level only for a
-- job newer than every job already recorded for that content. NULL for rows written before.
ALTER TABLE relocations ADD COLUMN gen INTEGER NULL;

-- The newest gen of a content, read at every commit, from the index alone. It serves lookups by
-- cid too, so the index on cid alone goes.
CREATE INDEX IF NOT EXISTS relocations_cid_gen ON relocations (cid, gen);

DROP INDEX IF EXISTS relocations_cid;
