#!lua
-- Take the oldest waiting id of the first of several queues that has one and whose level is not
-- paused, into the worker's processing list: BRPOPLPUSH's non-blocking form over many queues, in
-- one round trip.
-- KEYS: processing:<worker>, paused (this shard's copy of the paused levels), queue:<level>…
-- ARGV: the level of each queue, in the same order
-- Returns {id, position of its queue among the queues (1…)}, or nil when all are empty or paused.
-- (Which levels are paused: one command for all of them.)
local paused = redis.call('SMISMEMBER', KEYS[2], unpack(ARGV))
for i = 3, #KEYS do
  if paused[i - 2] == 0 then
    local id = redis.call('RPOPLPUSH', KEYS[i], KEYS[1])
    if id then return {id, i - 2} end
  end
end
return nil
