#!lua flags=allow-oom
-- Removes a reaped worker from the registry, unless it came back meanwhile. A heartbeat stamped
-- before Redis' clock stepped back (`beating`) goes with it.
-- KEYS: workers, worker:<id>, suspect:<id>
-- ARGV: id, grace (ms) as reap-check.lua had it
-- Returns 1 when removed, 0 when its heartbeat is back.
local workers, heartbeat, suspect = KEYS[1], KEYS[2], KEYS[3]
if beating(heartbeat, tonumber(ARGV[2]) or 0) then return 0 end
redis.call('DEL', heartbeat)
redis.call('SREM', workers, ARGV[1])
redis.call('DEL', suspect)
return 1
