#!lua
-- Record how far a move has gone (its temporary file, the verified checksum before publishing,
-- the source removed, bytes copied), only while the job is still this delivery's: a stale worker
-- can neither recreate a forgotten job nor write into a newer generation.
-- KEYS: job:<cid>
-- ARGV: id, worker, field, value, field, value…
-- Returns 1, or 0 when the job is no longer this delivery's (the move must stop before publishing).
local job = KEYS[1]
local id, worker = ARGV[1], ARGV[2]
local cid, gen = parse(id)
if not cid then return 0 end
local h = redis.call('HMGET', job, 'gen', 'status', 'worker_id')
if h[1] ~= gen or h[2] ~= 'moving' or h[3] ~= worker then return 0 end
for i = 3, #ARGV, 2 do
  redis.call('HSET', job, ARGV[i], ARGV[i + 1])
end
return 1
