#!lua
-- A worker's (or committer's) heartbeat, stamped by Redis' own clock: the reaper compares it with
-- the same clock (`beating`), whatever the process's clock says. The hash is written anew: a field
-- the process no longer reports (a level back in service) goes.
-- KEYS: workers, worker:<id>
-- ARGV: id, time to live (ms), then field, value, … (what `status` shows of the process)
local workers, heartbeat = KEYS[1], KEYS[2]
redis.call('SADD', workers, ARGV[1])
redis.call('DEL', heartbeat)
redis.call('HSET', heartbeat, 'beat_at', now, unpack(ARGV, 3))
redis.call('PEXPIRE', heartbeat, ARGV[2])
return 1
