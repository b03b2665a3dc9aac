#!lua flags=allow-oom
-- Removes a reaped worker from the registry, unless it came back meanwhile.
-- KEYS: workers, worker:<id>, suspect:<id>
-- ARGV: id
-- Returns 1 when removed, 0 when its heartbeat is back.
local workers, heartbeat, suspect = KEYS[1], KEYS[2], KEYS[3]
if redis.call('EXISTS', heartbeat) == 1 then return 0 end
redis.call('SREM', workers, ARGV[1])
redis.call('DEL', suspect)
return 1
