#!lua
-- Take the oldest waiting id of the first of several queues that has one and whose level is not
-- paused, into the worker's processing list: BRPOPLPUSH's non-blocking form over many queues, in
-- one round trip. When that queue is deep, up to `most` ids of it in all (the next oldest), as
-- long as more than `keep` ids stay queued behind them: a worker with several free slots takes
-- their jobs in one round trip, and a short queue is still shared one id at a time.
-- KEYS: processing:<worker>, paused (this shard's copy of the paused levels), queue:<level>…
-- ARGV: the level of each queue, in the same order; then, optionally, most (default 1) and keep
--       (default 0)
-- Returns {id, position of its queue among the queues (1…), further ids taken from the same
-- queue…}, or nil when all are empty or paused.
local levels = #KEYS - 2
local most = math.max(1, tonumber(ARGV[levels + 1] or '1') or 1)
local keep = math.max(0, tonumber(ARGV[levels + 2] or '0') or 0)
-- (Which levels are paused: one command for all of them.)
local paused = redis.call('SMISMEMBER', KEYS[2], unpack(ARGV, 1, levels))
for i = 3, #KEYS do
  if paused[i - 2] == 0 then
    local id = redis.call('RPOPLPUSH', KEYS[i], KEYS[1])
    if id then
      local reply = {id, i - 2}
      if most > 1 then
        local extra = math.min(most - 1, redis.call('LLEN', KEYS[i]) - keep)
        for _ = 1, extra do table.insert(reply, redis.call('RPOPLPUSH', KEYS[i], KEYS[1])) end
      end
      return reply
    end
  end
end
return nil
