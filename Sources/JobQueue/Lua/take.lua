-- Take the oldest waiting id of the first of several queues that has one, into the worker's
-- processing list: BRPOPLPUSH's non-blocking form over many queues, in one round trip.
-- KEYS: processing:<worker>, queue:<level>…
-- ARGV: none
-- Returns {id, position of its queue among the queues (1…)}, or nil when all are empty.
for i = 2, #KEYS do
  local id = redis.call('RPOPLPUSH', KEYS[i], KEYS[1])
  if id then return {id, i - 1} end
end
return nil
