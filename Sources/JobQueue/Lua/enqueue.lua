#!lua
-- A new count for a content: create, coalesce, re-aim or drop its one job.
-- A new job of a content that moved less than its level's minimum residency ago waits as
-- `deferred` until the window has passed; later counts coalesce into it. The content's count is
-- kept as its score in the residents set of the level it is on. A job whose last delivery was reaped
-- while it may still act (`fence`) is never reversed, re-aimed or dropped: the new target follows
-- after its commit.
-- KEYS: job:<cid>, queue:<target>, retry, deferred, dead, gens, moved-at,
--       residents:<db_level as the caller read it>
-- ARGV: cid, count, filename, db_level as the caller read it, target, when db_level was read (ms;
--       -1: just now, from the database — it stands), half-life of counts (ms, 0: counts as they
--       are), minimum residencies ('gold=3600000,…'), who submits and the rule that chose the
--       target (kept as queued_by when the job is created or re-aimed, as next_queued_by with a
--       follow-up; '' keeps what the job has), when the caller sent this (ms, the clock db_level's
--       read time is on; '': that clock is Redis'), with it a lower bound of Redis' clock when
--       db_level was read (ms; '': none known), how far ahead of Redis' clock a change may be
--       stamped and still be compared with a read (ms: more was stamped before the clock stepped back),
--       '1' for a plan's move (its count read from the content's score: not recorded as the
--       content's last count, nor scored, and a read of another level than a later commit's is
--       never overridden by it)
-- Returns {outcome, {job hash fields}, Redis' clock (ms)}; outcome: created, updated, retargeted, reversed, requeued,
-- follow_up, in_place, dropped, or stale_level (the content changed level after the caller read it
-- and no job says where to: read the database again and resubmit).
local job, queue, retry, deferred, dead, gens = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local movedAt, residents = KEYS[7], KEYS[8]
local cid, count, filename, dbLevel, target = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local readAt = tonumber(ARGV[6]) or 0
local halfLife, residencies = tonumber(ARGV[7]) or 0, ARGV[8]
local queuedBy = ARGV[9] or ''
local sentAt = tonumber(ARGV[10] or '')
if readAt >= 0 and sentAt then
  -- The read's age on the caller's clock, placed on Redis' clock: the two clocks may differ by
  -- hours (a step of either), the age of a read does not. A read the caller's clock puts after its
  -- sending (that clock stepped back meanwhile) has no age to trust: it counts as older than
  -- anything (0), so that the database is read again.
  if sentAt < readAt then readAt = 0 else readAt = math.max(0, now - (sentAt - readAt)) end
  -- A call long on its way (the caller or Redis paused) makes that look later than the read was;
  -- the bound the caller learnt from Redis' answers does not.
  local bound = tonumber(ARGV[11] or '')
  if bound then readAt = math.max(0, math.min(readAt, bound)) end
end
local callerLevel = dbLevel
local fromPlan = ARGV[13] == '1'

local h = redis.call('HMGET', job, 'status', 'gen', 'target', 'db_level', 'stage', 'updated_at')
local status, oldGen, curTarget, curDb, stage = h[1], h[2], h[3], h[4], h[5]
local oldID = cid .. ':' .. (oldGen or '')
-- When the content last moved, once read (nil: not read yet; false: it never moved).
local movedKnown = nil
local function lastChange()
  if movedKnown == nil then movedKnown = tonumber(redis.call('HGET', movedAt, cid)) or false end
  return movedKnown
end

-- Whether the content changed level (or name) at or after `read` (ms, Redis' clock). (A change in
-- the very millisecond of the read counts as after it: a read again costs little. A change stamped
-- further ahead of the clock than a step's tolerance was stamped before it stepped back: no read
-- placed on the clock now can be compared with it, and were it taken as after every read, the
-- content could not be counted until the clock caught up — hours, maybe.)
local function changedSince(read)
  local changed = lastChange()
  return changed ~= false and changed >= read and changed <= now + (tonumber(ARGV[12] or '') or 0)
end
-- Whether the caller's read of db_level is one to act on: read just now, or after the content last changed.
local function readStands()
  return readAt < 0 or not changedSince(readAt)
end

-- A created job's hash as this script wrote it whole (nil otherwise): its reply needs no read.
local written = nil

-- The count on the content's job, and when it was sent (a job's first count was sent when it was
-- enqueued: no field of its own): the job's commit scores the content where it arrives by its last
-- count as of then, whatever level that count's read named (committed.lua). A plan's move is no
-- count: the job keeps the last one.
local function recordCount()
  if fromPlan then
    redis.call('HSET', job, 'updated_at', now)
  else
    redis.call('HSET', job, 'count', count, 'counted_at', now, 'updated_at', now)
  end
end

-- (A created job was written with its queued_by already.)
local function answer(outcome)
  -- The content is on the caller's level unless a newer commit says otherwise, or it changed
  -- since the read (a content scored on a level it left would stay there: a commit takes the
  -- score from the level its job left).
  if dbLevel == callerLevel and readStands() and not fromPlan then redis.call('ZADD', residents, countScore(count, halfLife), cid) end
  if queuedBy ~= '' then
    if outcome == 'retargeted' or outcome == 'reversed' then redis.call('HSET', job, 'queued_by', queuedBy) end
    if outcome == 'follow_up' then redis.call('HSET', job, 'next_queued_by', queuedBy) end
  end
  if written then
    local fields = {}
    for field, value in pairs(written) do
      table.insert(fields, field)
      table.insert(fields, value)
    end
    return {outcome, fields, now}
  end
  return {outcome, redis.call('HGETALL', job), now}
end
local function push(gen) redis.call('LPUSH', queue, cid .. ':' .. gen) end
-- Queues a new or re-aimed job, or defers it while the content's residency window lasts.
local function start(gen, origin)
  local residency = residencyOf(residencies, origin)
  -- (moved-at is read once a script: `lastChange`.)
  local moved = nil
  if residency > 0 then moved = lastChange() or nil end
  local due = residencyDue(residency, moved)
  if due then
    local reason = 'moved ' .. math.floor((now - moved) / 1000) .. ' s ago; ' .. origin .. ' keeps contents at least ' .. math.floor(residency / 1000) .. ' s'
    deferUntil(job, deferred, cid .. ':' .. gen, due, reason)
    if written then written.status, written.due_at, written.defer_reason = 'deferred', string.format('%d', due), reason end
    return
  end
  push(gen)
end
-- Takes a waiting job out of the scheduled sets (a retry, a deferral) or the dead-letter list.
local function unschedule()
  if status == 'retrying' then redis.call('ZREM', retry, oldID) end
  if status == 'deferred' then redis.call('ZREM', deferred, oldID) end
  if status == 'dead' then redis.call('LREM', dead, 0, oldID) end
end

-- A job that waits (queued, scheduled, or dead after its copy may have been published).
if status == 'queued' or status == 'retrying' or status == 'deferred' or (status == 'dead' and published(stage)) then
  recordCount()
  if fenced(job) then
    -- A reaped delivery may still be acting on the files: the job finishes as it is aimed, and a
    -- different target follows after its commit.
    if target ~= curTarget then
      redis.call('HSET', job, 'next_target', target)
      return answer('follow_up')
    end
    redis.call('HDEL', job, 'next_target', 'next_queued_by')
    return answer('updated')
  end
  if published(stage) then
    if target == curDb then
      -- Back to where the file came from: the copy at the target goes, the origin keeps its copy.
      unschedule()
      push(reverse(job, oldGen, curDb, curTarget, gens, cid))
      return answer('reversed')
    end
    if target ~= curTarget then
      -- A third level: this move finishes first (its source may still exist), then follows up.
      redis.call('HSET', job, 'next_target', target)
      if queuedBy ~= '' and status == 'dead' then redis.call('HSET', job, 'next_queued_by', queuedBy) end
    else
      redis.call('HDEL', job, 'next_target', 'next_queued_by')
    end
    if status == 'dead' then
      -- The copy must not be forgotten: the job runs again to finish its move, with a generation of
      -- now (a level recorded while it was dead, by reconcile or an operator, is older than its move).
      unschedule()
      local gen = newGen(oldGen, gens, cid)
      redis.call('HSET', job, 'status', 'queued', 'attempts', 0, 'gen', gen)
      retireError(job)
      push(gen)
      return answer('requeued')
    end
    if target ~= curTarget then return answer('follow_up') end
    return answer('updated')
  end
  -- As it is aimed: a follow-up an earlier count asked for (while a reaped delivery was fenced) goes.
  if target == curTarget then redis.call('HDEL', job, 'next_target', 'next_queued_by') return answer('updated') end
  if target == curDb and not readStands() then
    -- The job would be dropped as in place, or re-aimed from the caller's level, on a read from
    -- before the content last changed (a commit that made this job a follow-up from its new
    -- level, say): the read is stale.
    return {'stale_level', {}, now}
  end
  unschedule()
  if target == curDb and curDb == callerLevel then
    -- The file is already where it belongs: the job goes; its id left in a queue is stale.
    forget(job)
    if not fromPlan then redis.call('ZADD', residents, countScore(count, halfLife), cid) end
    return {'dropped', {}, now}
  end
  if target == curDb then
    -- Back to the job's origin, but the database names another level (a reversed job: its file
    -- came here and no move of it committed): only a commit makes the database say where the file
    -- is. The job is re-aimed from the database's level; its delivery finds the file in place.
    local gen = newGen(oldGen, gens, cid)
    redis.call('HSET', job, 'db_level', callerLevel, 'target', target, 'gen', gen, 'status', 'queued', 'attempts', 0)
    redis.call('HDEL', job, 'defer_reason', 'due_at', 'next_target', 'next_queued_by')
    retireError(job)
    push(gen)
    return answer('retargeted')
  end
  local gen = newGen(oldGen, gens, cid)
  redis.call('HSET', job, 'target', target, 'gen', gen, 'status', 'queued', 'attempts', 0)
  redis.call('HDEL', job, 'defer_reason', 'due_at', 'next_target', 'next_queued_by')
  retireError(job)
  start(gen, curDb)
  return answer('retargeted')
end

-- No job, a committed one, or a dead one that never published a copy: a fresh job.
if not status or status == 'committed' or status == 'dead' then
  local overridden = false
  -- (A plan's move that read another level than the commit's is stale: planned again from there.)
  if status == 'committed' and curTarget and readAt >= 0 and (not fromPlan or dbLevel == curTarget) then
    -- A job committed after the caller read db_level knows better where the file is now; a level
    -- read after the commit (an operator's later change included) stands.
    local committedAt = tonumber(h[6] or '0') or 0
    -- Unless the level changed again after this job (reconcile, an operator: a newer generation
    -- in gens): then only the database knows, and the caller is told to read it again below.
    -- (A rename takes one too: the job knows the level, not the name.)
    local newest = tonumber(redis.call('HGET', gens, cid) or '0') or 0
    if committedAt >= readAt and newest <= (tonumber(oldGen or '0') or 0) then
      dbLevel = curTarget
      overridden = true
    end
  end
  -- The content changed level (or name) after the caller's read, and no job says where to.
  if not overridden and not readStands() then return {'stale_level', {}, now} end
  if status == 'dead' then unschedule() end
  if target == dbLevel then
    if status == 'dead' then forget(job) end
    if dbLevel == callerLevel and not fromPlan then redis.call('ZADD', residents, countScore(count, halfLife), cid) end
    return {'in_place', {}, now}
  end
  local gen = newGen(oldGen, gens, cid)
  -- (No hash to forget when it has neither a status nor a generation: none of the scripts writes
  -- a job's hash without them.)
  if status or oldGen then forget(job) end
  -- (The hash is empty here: forgotten above, or never written.)
  local stamp = string.format('%d', now)
  written = {cid = cid, count = count, filename = filename, db_level = dbLevel, target = target, status = 'queued', attempts = '0',
    gen = string.format('%d', gen), enqueued_at = stamp, updated_at = stamp}
  if queuedBy ~= '' then written.queued_by = queuedBy end
  -- (A job a plan's move created has no count: 0.)
  if fromPlan then written.counted_at = '0' end
  local fields = {}
  for field, value in pairs(written) do
    table.insert(fields, field)
    table.insert(fields, value)
  end
  redis.call('HSET', job, unpack(fields))
  start(gen, dbLevel)
  return answer('created')
end

-- moving or done: the move in flight finishes; a different target follows after the commit.
recordCount()
if target == curTarget then
  redis.call('HDEL', job, 'next_target', 'next_queued_by')
  return answer('updated')
end
redis.call('HSET', job, 'next_target', target)
return answer('follow_up')
