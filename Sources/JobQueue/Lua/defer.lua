#!lua
-- A claimed job that must not move yet (its target is above its high watermark, or the content
-- moved less than its minimum residency ago) waits as `deferred`, without counting an attempt.
-- KEYS: processing:<worker>, job:<cid>, deferred
-- ARGV: id, worker, reason, when to look again (ms since 1970)
-- Returns 1, or 0 when the job is no longer this worker's.
local processing, job, deferred = KEYS[1], KEYS[2], KEYS[3]
local id, worker, reason, due = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
redis.call('LREM', processing, 1, id)
local cid, gen = parse(id)
if not cid then return 0 end
local h = redis.call('HMGET', job, 'gen', 'status', 'worker_id')
if h[1] ~= gen or h[2] ~= 'moving' or h[3] ~= worker then return 0 end
redis.call('HSET', job, 'status', 'deferred', 'defer_reason', reason, 'due_at', due, 'worker_id', '',
  'updated_at', now)
redis.call('HDEL', job, 'bytes_done', 'bytes_total', 'started_at')
redis.call('ZADD', deferred, due, id)
return 1
