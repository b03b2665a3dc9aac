#!lua
-- Claim an id a worker took into its processing list: the job becomes `moving` for this worker,
-- with a new delivery token (every later call of this delivery carries it).
-- KEYS: processing:<worker>, job:<cid>, lease:<cid>, the queue the id was taken from, paused (this
--       shard's copy of the paused levels), deferred
-- ARGV: id, worker, how long a held content's job waits at most before it is looked at again (ms),
--       the reason it waits
-- Returns {'claimed', {job hash fields}}, {'stale'} (an older generation or a dropped job: the id
-- is removed), {'leased'} (a reconcile run or a rename holds the content: the job waits as
-- `deferred`, no longer than the hold, and is looked at again) or {'paused'} (its level is
-- paused: the id goes back to the head of its queue, untouched).
local processing, job, lease, queue = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id, worker = ARGV[1], ARGV[2]
local cid, gen = parse(id)
-- The whole hash, read once: the checks below and the reply (the hash as this claim leaves it).
local f = {}
if cid then
  local flat = redis.call('HGETALL', job)
  for i = 1, #flat, 2 do f[flat[i]] = flat[i + 1] end
end
if not cid or f.gen ~= gen or f.status ~= 'queued' then
  redis.call('LREM', processing, 1, id)
  return {'stale'}
end
-- A pause holds from the moment it is written, also for a slot that was already waiting on the
-- queue (BRPOPLPUSH): the id goes back where it was taken from, to be taken after the resume.
if redis.call('SISMEMBER', KEYS[5], f.target or '') == 1 then
  redis.call('LREM', processing, 1, id)
  redis.call('RPUSH', queue, id)
  return {'paused'}
end
local held = redis.call('PTTL', lease)
if held ~= -2 then
  -- Not back onto its queue, where every waiting slot would take it again at once for as long as
  -- the content is held: it waits as deferred (no attempt counted) and is promoted when due.
  local due = now + math.max(1, math.min(held >= 0 and held or math.huge, tonumber(ARGV[3]) or 0))
  redis.call('LREM', processing, 1, id)
  redis.call('HSET', job, 'status', 'deferred', 'defer_reason', ARGV[4],
    'due_at', string.format('%d', due), 'updated_at', now)
  redis.call('ZADD', KEYS[6], due, id)
  return {'leased'}
end
-- The new token is one more than the last (a job written by no claim yet has none: 1).
local token = tonumber(f.token or '0')
if not token or token ~= math.floor(token) or token < 0 or token >= 9007199254740991 then
  return redis.error_reply('job ' .. id .. ': its token is not a whole number: ' .. tostring(f.token))
end
local stamp = string.format('%d', now)
f.token, f.status, f.worker_id, f.updated_at, f.started_at = string.format('%d', token + 1), 'moving', worker, stamp, stamp
redis.call('HSET', job, 'token', f.token, 'status', 'moving', 'worker_id', worker, 'updated_at', stamp, 'started_at', stamp)
-- Progress and the hosts of a pull are the delivery's: the new one records its own.
if f.bytes_done or f.bytes_total or f.pulled_from then
  redis.call('HDEL', job, 'bytes_done', 'bytes_total', 'pulled_from')
  f.bytes_done, f.bytes_total, f.pulled_from = nil, nil, nil
end
local reply = {}
for field, value in pairs(f) do
  table.insert(reply, field)
  table.insert(reply, value)
end
return {'claimed', reply}
