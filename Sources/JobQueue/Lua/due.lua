#!lua flags=allow-oom
-- The ids of a scheduled set (retry, deferred) whose time has come, by Redis' clock — and those
-- scheduled further ahead than any wait of the set lasts (`horizon`): a clock ahead of Redis' clock
-- now wrote them (Redis restarted with its clock behind), and they are due rather than stuck for as
-- long as the clock stepped.
-- How long a wait lasts, each process that promotes says (its retry cap, its longest deferral):
-- the caller announces its own, and the longest any process announced while a job it scheduled
-- may still wait is the set's horizon, so that a process with short waits never takes another's
-- long wait for a clock step. (Allowed over maxmemory: an announcement is a few bytes per process,
-- and promoting due jobs only moves what exists.)
-- KEYS: the sorted set, the shard's announced horizons (hash: `<kind>|<process>` → `<until>:<ms>`)
-- ARGV: the most to return, horizon (ms; -1: none), `<kind>|<process>` (the set's kind, who asks)
-- Returns ids.
local set, announced = KEYS[1], KEYS[2]
local limit, horizon, field = tonumber(ARGV[1]), tonumber(ARGV[2]) or -1, ARGV[3] or ''
local ids = redis.call('ZRANGEBYSCORE', set, '-inf', now, 'LIMIT', 0, limit)
if horizon >= 0 then
  local kind = string.match(field, '^([^|]*)|')
  if kind then
    -- Kept while a job this process scheduled may still wait, and as long again: it may still
    -- schedule (a retry in its grace period) after its last announcement.
    redis.call('HSET', announced, field, string.format('%.0f:%.0f', now + 2 * horizon + 60000, horizon))
  end
  local entries = redis.call('HGETALL', announced)
  for i = 1, #entries, 2 do
    local untilAt, wait = string.match(entries[i + 1], '^(%d+):(%d+)$')
    untilAt, wait = tonumber(untilAt), tonumber(wait)
    if not untilAt or not wait or untilAt < now then
      redis.call('HDEL', announced, entries[i])
    elseif string.match(entries[i], '^([^|]*)|') == kind and wait > horizon then
      horizon = wait
    end
  end
  if #ids < limit then
    local beyond = redis.call('ZRANGEBYSCORE', set, '(' .. string.format('%.0f', now + horizon), '+inf', 'LIMIT', 0, limit - #ids)
    for _, id in ipairs(beyond) do ids[#ids + 1] = id end
  end
end
return ids
