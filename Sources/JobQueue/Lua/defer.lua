#!lua
-- A claimed job that must not move yet (its target is above its high watermark, or the content
-- moved less than its minimum residency ago) waits as `deferred`, without counting an attempt.
-- A content whose lock another delivery holds on this host waits the same way.
-- KEYS: processing:<worker>, job:<cid>, deferred
-- ARGV: id, worker, token, reason, how long to wait (ms, from Redis' clock: a worker's clock may be
--       off), locked (1: the delivery held the content's lock, so the fence of any earlier one is gone)
-- Returns 1, or 0 when the job is no longer this delivery's (its id leaves the processing list only
-- when its generation is no longer the job's: the same worker may hold it again in a live delivery).
local processing, job, deferred = KEYS[1], KEYS[2], KEYS[3]
local id, worker, token, reason = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local due = now + math.max(0, tonumber(ARGV[5]) or 0)
local cid, gen = parse(id)
if not cid then
  redis.call('LREM', processing, 1, id)
  return 0
end
local h = redis.call('HMGET', job, 'gen', 'status', 'worker_id', 'token')
if h[1] ~= gen then redis.call('LREM', processing, 1, id) end
if h[1] ~= gen or h[2] ~= 'moving' or h[3] ~= worker or (h[4] or '') ~= token then return 0 end
redis.call('LREM', processing, 1, id)
if ARGV[6] == '1' then redis.call('HDEL', job, 'fence') end
redis.call('HSET', job, 'status', 'deferred', 'defer_reason', reason, 'due_at', due, 'worker_id', '',
  'updated_at', now)
redis.call('HDEL', job, 'bytes_done', 'bytes_total', 'started_at')
redis.call('ZADD', deferred, due, id)
return 1
