#!lua flags=allow-oom
-- Ends a reconcile run's hold on a content, if it is still that run's.
-- KEYS: lease:<cid>
-- ARGV: the holder's token
-- Returns 1 when released, 0 otherwise.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
