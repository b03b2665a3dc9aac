#!lua
-- Record how far a move has gone (the verified checksum before publishing, bytes copied), only
-- while the job is still this delivery's (same generation, worker and token): a stale delivery can
-- neither recreate a forgotten job nor write into a newer generation. The caller holds the
-- content's lock, so the fence of any earlier delivery is gone: it is cleared.
-- KEYS: job:<cid>
-- ARGV: id, worker, token, field, value, field, value…
-- Returns 1, or 0 when the job is no longer this delivery's (the move must stop before publishing).
local job = KEYS[1]
local id, worker, token = ARGV[1], ARGV[2], ARGV[3]
local cid, gen = parse(id)
if not cid then return 0 end
local h = redis.call('HMGET', job, 'gen', 'status', 'worker_id', 'token', 'fence')
if h[1] ~= gen or h[2] ~= 'moving' or h[3] ~= worker or (h[4] or '') ~= token then return 0 end
if h[5] then redis.call('HDEL', job, 'fence') end
-- Every field in one command (a field without its value is refused by Redis).
if #ARGV > 3 then redis.call('HSET', job, unpack(ARGV, 4)) end
return 1
