#!lua flags=no-writes
-- The ids of a scheduled set (retry, deferred) whose time has come, by Redis' clock — and those
-- scheduled further ahead than any wait of the set lasts (`horizon`): a clock ahead of Redis' clock
-- now wrote them (Redis restarted with its clock behind), and they are due rather than stuck for as
-- long as the clock stepped.
-- KEYS: the sorted set
-- ARGV: the most to return, horizon (ms; -1: none)
-- Returns ids.
local set, limit, horizon = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]) or -1
local ids = redis.call('ZRANGEBYSCORE', set, '-inf', now, 'LIMIT', 0, limit)
if horizon >= 0 and #ids < limit then
  local beyond = redis.call('ZRANGEBYSCORE', set, '(' .. string.format('%.0f', now + horizon), '+inf', 'LIMIT', 0, limit - #ids)
  for _, id in ipairs(beyond) do ids[#ids + 1] = id end
end
return ids
