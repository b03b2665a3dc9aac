#!lua
-- A content's level changed in the database without a move of this queue (reconcile --fix put the
-- database where the file is, an operator edited it), in two steps around the database's write:
--   'generation' (before it): a generation of its own, after every job of the content so far, so
--     that the database orders the change among the moves — refused (-1) while the content has a
--     job in flight, whose move would otherwise be ordered before a change it never saw;
--   'changed' (after it): a submission based on a read of the level from before now is told to
--     read it again. With a filename — a rename, made while the content was leased: no job of it
--     was in flight, and none has been taken since — the content takes a new generation too, and
--     a job a count made meanwhile takes the name: that count may have read the name from
--     before, and a move by that name would take another file.
-- KEYS: moved-at, gens, job:<cid>, lease:<cid>
-- ARGV: cid, step ('generation' or 'changed'), then for a rename's 'changed' only the new filename
--       and the holder of the content's lease (the name is written only while that lease holds)
-- Returns the new generation, -1, or 0 for 'changed'.
if ARGV[2] == 'changed' then
  redis.call('HSET', KEYS[1], ARGV[1], now)
  -- A rename takes a generation after every job so far, as a change of level does: a committed
  -- job knows the level of a read from before its commit, not the name (enqueue.lua).
  if ARGV[3] then newGen(nil, KEYS[2], ARGV[1]) end
  if ARGV[3] and redis.call('GET', KEYS[4]) == ARGV[4] then
    local h = redis.call('HMGET', KEYS[3], 'status', 'stage')
    if (h[1] == 'queued' or h[1] == 'deferred') and not h[2] then redis.call('HSET', KEYS[3], 'filename', ARGV[3]) end
  end
  return 0
end
local h = redis.call('HMGET', KEYS[3], 'status', 'gen')
if h[1] and h[1] ~= 'committed' and h[1] ~= 'dead' then return -1 end
return newGen(h[2], KEYS[2], ARGV[1])
