#!lua
-- Notes that a content's level changed in the database without a move of this queue (reconcile
-- --fix put the database where the file is, an operator edited it): a submission based on an
-- older read of the level is then told to read it again, and the change takes a generation of its
-- own, after every job of the content so far, so that the database orders it among the moves.
-- KEYS: moved-at, gens, job:<cid>
-- ARGV: cid
-- Returns the new generation.
redis.call('HSET', KEYS[1], ARGV[1], now)
return newGen(redis.call('HGET', KEYS[3], 'gen'), KEYS[2], ARGV[1])
