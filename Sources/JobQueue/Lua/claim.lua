#!lua
-- Claim an id a worker took into its processing list: the job becomes `moving` for this worker,
-- with a new delivery token (every later call of this delivery carries it).
-- KEYS: processing:<worker>, job:<cid>, lease:<cid>, the queue the id was taken from, paused (this
--       shard's copy of the paused levels)
-- ARGV: id, worker
-- Returns {'claimed', {job hash fields}}, {'stale'} (an older generation or a dropped job: the id
-- is removed), {'leased'} (a reconcile run holds the content: the id goes back to its queue) or
-- {'paused'} (its level is paused: the id goes back to the head of its queue, untouched).
local processing, job, lease, queue = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id, worker = ARGV[1], ARGV[2]
local cid, gen = parse(id)
local h = {}
if cid then h = redis.call('HMGET', job, 'gen', 'status', 'target', 'token', 'bytes_done', 'bytes_total') end
if not cid or h[1] ~= gen or h[2] ~= 'queued' then
  redis.call('LREM', processing, 1, id)
  return {'stale'}
end
-- A pause holds from the moment it is written, also for a slot that was already waiting on the
-- queue (BRPOPLPUSH): the id goes back where it was taken from, to be taken after the resume.
if redis.call('SISMEMBER', KEYS[5], h[3] or '') == 1 then
  redis.call('LREM', processing, 1, id)
  redis.call('RPUSH', queue, id)
  return {'paused'}
end
if redis.call('EXISTS', lease) == 1 then
  redis.call('LREM', processing, 1, id)
  redis.call('LPUSH', queue, id)
  return {'leased'}
end
-- The new token is one more than the last (a job written by no claim yet has none: 1).
local token = tonumber(h[4] or '0')
if not token or token ~= math.floor(token) or token < 0 or token >= 9007199254740991 then
  return redis.error_reply('job ' .. id .. ': its token is not a whole number: ' .. tostring(h[4]))
end
redis.call('HSET', job, 'token', string.format('%d', token + 1), 'status', 'moving', 'worker_id', worker, 'updated_at', now,
  'started_at', now)
if h[5] or h[6] then redis.call('HDEL', job, 'bytes_done', 'bytes_total') end
return {'claimed', redis.call('HGETALL', job)}
