#!lua
-- A failed move: retry later, or dead when the attempts are used up or the failure is permanent.
-- The delivery held the content's lock (the fence of any earlier one is gone: it is cleared).
-- KEYS: processing:<worker>, job:<cid>, retry, dead, gens, stats
-- ARGV: id, worker, token, reason (an error code), message, permanent (0/1), delay (ms), max attempts
-- Returns retrying, dead, dropped (a newer count sent the job back to where the file is), reversed
-- (the same, but a copy may already be at the target: the job now removes it) or stale (its id
-- leaves the processing list only when its generation is no longer the job's: the same worker may
-- hold it again in a live delivery).
local processing, job, retry, dead, gens, stats = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local id, worker, token, reason, message = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local permanent, delay, maxAttempts = ARGV[6] == '1', tonumber(ARGV[7]), tonumber(ARGV[8])
local cid, gen = parse(id)
if not cid then
  redis.call('LREM', processing, 1, id)
  return 'stale'
end
local h = redis.call('HMGET', job, 'gen', 'status', 'worker_id', 'next_target', 'db_level', 'target', 'stage', 'token')
if h[1] ~= gen then redis.call('LREM', processing, 1, id) end
if h[1] ~= gen or h[2] ~= 'moving' or h[3] ~= worker or (h[8] or '') ~= token then return 'stale' end
redis.call('LREM', processing, 1, id)
redis.call('HDEL', job, 'fence')
local nextTarget, origin, target, stage = h[4], h[5], h[6], h[7]
local attempts = (tonumber(redis.call('HGET', job, 'attempts')) or 0) + 1
redis.call('HSET', job, 'attempts', attempts, 'last_error', message, 'reason', reason, 'worker_id', '', 'updated_at', now)
redis.call('HDEL', job, 'bytes_done', 'bytes_total', 'started_at')
if nextTarget then
  -- The count that asked for nextTarget aims the job from here on (a third level waits for the commit).
  local asked = redis.call('HGET', job, 'next_queued_by')
  if asked and (nextTarget == origin or not published(stage)) then
    redis.call('HSET', job, 'queued_by', asked)
    redis.call('HDEL', job, 'next_queued_by')
  end
  if published(stage) then
    if nextTarget == origin then
      local newer = reverse(job, gen, origin, target, gens, cid)
      redis.call('HSET', job, 'status', 'retrying')
      redis.call('ZADD', retry, now + delay, cid .. ':' .. newer)
      tally(stats, 'retried', 1)
      return 'reversed'
    end
    -- A third level: this move (whose copy may be at its target) finishes first.
  else
    redis.call('HDEL', job, 'next_target')
    if nextTarget == origin then
      -- Nothing was published: the file is only at its origin, where the newer count wants it.
      forget(job)
      return 'dropped'
    end
    redis.call('HSET', job, 'target', nextTarget)
  end
end
if permanent or attempts >= maxAttempts then
  redis.call('HSET', job, 'status', 'dead')
  redis.call('LPUSH', dead, id)
  tally(stats, 'dead', 1)
  return 'dead'
end
redis.call('HSET', job, 'status', 'retrying')
redis.call('ZADD', retry, now + delay, id)
tally(stats, 'retried', 1)
return 'retrying'
