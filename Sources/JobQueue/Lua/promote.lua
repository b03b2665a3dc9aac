#!lua
-- A scheduled job whose time has come goes back to its target's queue.
-- KEYS: the sorted set it waits in (retry or deferred), job:<cid>, queue:<target>
-- ARGV: id, the target the caller read (its queue is KEYS[3]), the status it waits in
-- Returns promoted, stale (removed from the set) or changed (the target moved: read it again).
local set, job, queue = KEYS[1], KEYS[2], KEYS[3]
local id, target, status = ARGV[1], ARGV[2], ARGV[3]
local cid, gen = parse(id)
local h = {}
if cid then h = redis.call('HMGET', job, 'gen', 'status', 'target') end
if not cid or h[1] ~= gen or h[2] ~= status then
  redis.call('ZREM', set, id)
  return 'stale'
end
if h[3] ~= target then return 'changed' end
redis.call('ZREM', set, id)
redis.call('HSET', job, 'status', 'queued', 'updated_at', now)
redis.call('HDEL', job, 'defer_reason', 'due_at')
redis.call('LPUSH', queue, id)
return 'promoted'
