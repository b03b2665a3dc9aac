#!lua
-- Writes nothing: Redis refuses a script that declares it may write before running it whenever it
-- refuses writes (over its maxmemory, a replica, too few replicas for min-replicas-to-write, a
-- failed save), so running this one tells whether a submission would be taken. /readyz runs it.
-- KEYS: any key of the slot to ask about (neither read nor written)
-- ARGV: none
-- Returns 1.
return 1
