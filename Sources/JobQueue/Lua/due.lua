#!lua flags=no-writes
-- The ids of a scheduled set (retry, deferred) whose time has come, by Redis' clock.
-- KEYS: the sorted set
-- ARGV: the most to return
-- Returns ids.
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
