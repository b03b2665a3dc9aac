#!lua
-- Notes that a content's level changed in the database without a move of this queue (reconcile
-- --fix put the database where the file is): a submission based on an older read of the level is
-- then told to read it again.
-- KEYS: moved-at
-- ARGV: cid
-- Returns 1.
redis.call('HSET', KEYS[1], ARGV[1], now)
return 1
