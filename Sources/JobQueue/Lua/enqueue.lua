-- A new count for a content: create, coalesce, re-aim or drop its one job.
-- KEYS: job:<cid>, queue:<target>, retry, deferred, dead, stale-parts
-- ARGV: cid, count, filename, db_level as the caller read it, target, when db_level was read (ms)
-- Returns {outcome, {job hash fields}}; outcome: created, updated, retargeted, reversed, requeued,
-- follow_up, in_place or dropped.
local job, queue, retry, deferred, dead, staleParts = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local cid, count, filename, dbLevel, target = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local readAt = tonumber(ARGV[6]) or 0

local h = redis.call('HMGET', job, 'status', 'gen', 'target', 'db_level', 'stage', 'updated_at')
local status, oldGen, curTarget, curDb, stage = h[1], h[2], h[3], h[4], h[5]
local oldID = cid .. ':' .. (oldGen or '')

local function answer(outcome) return {outcome, redis.call('HGETALL', job)} end
local function push(gen) redis.call('LPUSH', queue, cid .. ':' .. gen) end
-- Takes a waiting job out of the scheduled sets (a retry, a deferral) or the dead-letter list.
local function unschedule()
  if status == 'retrying' then redis.call('ZREM', retry, oldID) end
  if status == 'deferred' then redis.call('ZREM', deferred, oldID) end
  if status == 'dead' then redis.call('LREM', dead, 0, oldID) end
end

-- A job that waits (queued, scheduled, or dead after its copy may have been published).
if status == 'queued' or status == 'retrying' or status == 'deferred' or (status == 'dead' and published(stage)) then
  redis.call('HSET', job, 'count', count, 'updated_at', now)
  if published(stage) then
    if target == curDb then
      -- Back to where the file came from: the copy at the target goes, the origin keeps its copy.
      unschedule()
      push(reverse(job, oldGen, curDb, curTarget))
      return answer('reversed')
    end
    if target ~= curTarget then
      -- A third level: this move finishes first (its source may still exist), then follows up.
      redis.call('HSET', job, 'next_target', target)
    else
      redis.call('HDEL', job, 'next_target')
    end
    if status == 'dead' then
      -- The copy must not be forgotten: the job runs again to finish its move.
      unschedule()
      redis.call('HSET', job, 'status', 'queued', 'attempts', 0)
      retireError(job)
      push(oldGen)
      return answer('requeued')
    end
    if target ~= curTarget then return answer('follow_up') end
    return answer('updated')
  end
  if target == curTarget then return answer('updated') end
  unschedule()
  if target == curDb then
    -- The file is already where it belongs: the job goes; its id left in a queue is stale.
    forget(job, staleParts)
    return {'dropped', {}}
  end
  local gen = newGen(oldGen)
  redis.call('HSET', job, 'target', target, 'gen', gen, 'status', 'queued', 'attempts', 0)
  redis.call('HDEL', job, 'defer_reason', 'due_at', 'next_target')
  retireError(job)
  push(gen)
  return answer('retargeted')
end

-- No job, a committed one, or a dead one that never published a copy: a fresh job.
if not status or status == 'committed' or status == 'dead' then
  if status == 'committed' and curTarget then
    -- A job committed after the caller read db_level knows better where the file is now; a level
    -- read after the commit (an operator's later change included) stands.
    local committedAt = tonumber(h[6] or '0') or 0
    if committedAt > readAt then dbLevel = curTarget end
  end
  if status == 'dead' then unschedule() end
  if target == dbLevel then
    if status == 'dead' then forget(job, staleParts) end
    return {'in_place', {}}
  end
  local gen = newGen(oldGen)
  forget(job, staleParts)
  redis.call('HSET', job, 'cid', cid, 'count', count, 'filename', filename, 'db_level', dbLevel,
    'target', target, 'status', 'queued', 'attempts', 0, 'gen', gen, 'enqueued_at', now, 'updated_at', now)
  push(gen)
  return answer('created')
end

-- moving or done: the move in flight finishes; a different target follows after the commit.
redis.call('HSET', job, 'count', count, 'updated_at', now)
if target == curTarget then
  redis.call('HDEL', job, 'next_target')
  return answer('updated')
end
redis.call('HSET', job, 'next_target', target)
return answer('follow_up')
