#!lua
-- Put an orphaned job (its id in none of the lists its status calls for, after Redis lost a
-- write) back where its status says it belongs. reconcile --fix uses it.
-- KEYS: job:<cid>, the list or sorted set its status calls for (queue:<target> for queued and
--       moving, retry, deferred, done or dead)
-- ARGV: id, the status the caller read
-- Returns restored, present (it is there after all) or changed (the job moved on meanwhile).
local job, home = KEYS[1], KEYS[2]
local id, status = ARGV[1], ARGV[2]
local cid, gen = parse(id)
if not cid then return 'changed' end
local h = redis.call('HMGET', job, 'gen', 'status')
if h[1] ~= gen or h[2] ~= status then return 'changed' end
if status == 'retrying' or status == 'deferred' then
  if redis.call('ZSCORE', home, id) then return 'present' end
  redis.call('ZADD', home, now, id)
  return 'restored'
end
if redis.call('LPOS', home, id) then return 'present' end
if status == 'moving' then
  -- No worker's list holds it: it goes back to its queue, as the reaper would do (fenced: its
  -- delivery may still act).
  redis.call('HSET', job, 'fence', redis.call('HGET', job, 'token') or '0')
  redis.call('HSET', job, 'status', 'queued', 'worker_id', '', 'updated_at', now)
  redis.call('RPUSH', home, id)
else
  redis.call('LPUSH', home, id)
end
return 'restored'
