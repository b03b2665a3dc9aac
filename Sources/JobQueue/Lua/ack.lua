#!lua flags=allow-oom
-- A verified move: the job goes to `done` for the committer.
-- KEYS: processing:<worker>, job:<cid>, done, stats, moved-at, per-minute:moved
-- ARGV: id, worker, token, checksum, bytes, the level the file was found on ('' when it was db_level)
-- Returns 1, or 0 when the job is no longer this delivery's (the reaper gave it away).
local processing, job, done, stats, movedAt = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local id, worker, token, checksum, bytes, foundIn = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
redis.call('LREM', processing, 1, id)
local cid, gen = parse(id)
if not cid then return 0 end
local h = redis.call('HMGET', job, 'gen', 'status', 'worker_id', 'token')
if h[1] ~= gen or h[2] ~= 'moving' or h[3] ~= worker or (h[4] or '') ~= token then return 0 end
redis.call('HSET', job, 'status', 'done', 'checksum', checksum, 'bytes', bytes, 'updated_at', now)
if foundIn ~= '' then redis.call('HSET', job, 'db_level', foundIn) end
redis.call('HDEL', job, 'part', 'stage', 'bytes_done', 'bytes_total', 'fence', 'verified')
retireError(job)
redis.call('LPUSH', done, id)
redis.call('HSET', movedAt, cid, now)
redis.call('HINCRBY', stats, 'moved', 1)
redis.call('HINCRBY', stats, 'moved_bytes', tonumber(bytes) or 0)
countThisMinute(KEYS[6], 1, tonumber(bytes) or 0)
return 1
