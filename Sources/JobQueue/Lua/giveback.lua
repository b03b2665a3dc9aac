#!lua flags=allow-oom
-- Put back a job a worker holds, without counting an attempt (the worker stopped, restarted,
-- was reaped, or lost the reply to a claim): it goes to the front of its target's queue. Unless
-- the worker itself gives it back after its moves ended, the delivery may still be acting (a
-- paused process looks dead): its token becomes the job's `fence`.
-- KEYS: processing:<worker>, job:<cid>, queue:<target>
-- ARGV: id, worker, the target the caller read (its queue is KEYS[3]), fence (1: the delivery may
--       still act)
-- Returns given, stale (the id is no longer that worker's job; removed from the list) or changed
-- (the target moved: read it again).
local processing, job, queue = KEYS[1], KEYS[2], KEYS[3]
local id, worker, target = ARGV[1], ARGV[2], ARGV[3]
local cid, gen = parse(id)
local h = {}
if cid then h = redis.call('HMGET', job, 'gen', 'status', 'worker_id', 'target') end
if cid and h[1] == gen and (h[2] == 'queued' or (h[2] == 'moving' and h[3] == worker)) then
  if h[4] ~= target then return 'changed' end
  redis.call('LREM', processing, 1, id)
  if h[2] == 'moving' and ARGV[4] == '1' then
    redis.call('HSET', job, 'fence', redis.call('HGET', job, 'token') or '0')
  end
  redis.call('HSET', job, 'status', 'queued', 'worker_id', '', 'updated_at', now)
  redis.call('HDEL', job, 'bytes_done', 'bytes_total', 'started_at')
  redis.call('RPUSH', queue, id)
  return 'given'
end
redis.call('LREM', processing, 1, id)
return 'stale'
