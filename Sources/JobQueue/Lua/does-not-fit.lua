#!lua
-- A deferred job whose content cannot fit below its target's high watermark even on an empty disk
-- goes to the dead letters (reason does_not_fit) instead of waiting for room it can never have;
-- the content stays where it is. Replaying it after raising the watermark moves it.
-- KEYS: job:<cid>, deferred, dead, stats
-- ARGV: id, message (the size and the room)
-- Returns 1 when it went, 0 when the job changed meanwhile (re-aimed, due again, gone) or a reaped
-- delivery of it may still act (its fence: it waits, deferred, until a later delivery held the lock).
local job, deferred, dead, stats = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id, message = ARGV[1], ARGV[2]
local cid, gen = parse(id)
if not cid then return 0 end
local h = redis.call('HMGET', job, 'gen', 'status')
if h[1] ~= gen or h[2] ~= 'deferred' or fenced(job) then return 0 end
if redis.call('ZREM', deferred, id) == 0 then return 0 end
redis.call('HSET', job, 'status', 'dead', 'reason', 'does_not_fit', 'last_error', message, 'updated_at', now)
redis.call('HDEL', job, 'defer_reason', 'due_at')
redis.call('LPUSH', dead, id)
tally(stats, 'dead', 1)
return 1
