-- Shared by every script: it is put in front of each one when the script is loaded, and an error
-- on one of these lines is reported as helpers.lua:<line>. Keys arrive in KEYS; these functions
-- only use the keys they are given.

-- Redis' own clock, in milliseconds: every time stored in a job comes from here.
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)

-- True when a worker's heartbeat (a hash that expires) is there and stamped by Redis' clock as it
-- runs now: a `beat_at` more than `tolerance` ms ahead was written before the clock stepped back, and
-- the hash's expiry, an absolute time, lies as far ahead — it says nothing of the worker.
local function beating(heartbeat, tolerance)
  local at = redis.call('HGET', heartbeat, 'beat_at')
  if not at then return redis.call('EXISTS', heartbeat) == 1 end
  local stamped = tonumber(at)
  return stamped ~= nil and stamped <= now + tolerance
end

-- Adds `by` to a counter of the stats hash (`stats`). A value there that cannot be added to (past
-- 2^63, or not a number: written by hand) starts the counter again at `by`, as a reset does, instead
-- of stopping the script halfway, after its other writes.
local function tally(stats, field, by)
  local added = redis.pcall('HINCRBY', stats, field, by)
  if not tonumber(added) then redis.call('HSET', stats, field, by) end  -- an error reply, not a count
end

-- '<cid>:<gen>' → cid, gen (as strings), or nil for anything else.
local function parse(id)
  return string.match(id, '^(%d+):(%d+)$')
end

-- A generation newer than `old` and than every generation this content's jobs had before, kept in
-- the shard's `gens` hash (never expires): Redis time in ms when that is higher, else one more.
-- The committer writes a content's level only from a higher generation than the last it wrote, so
-- a later move always wins however Redis' clock steps and however long ago a job hash expired.
local function newGen(old, gens, cid)
  local before = tonumber(old or '0') or 0
  local last = tonumber(redis.call('HGET', gens, cid) or '0') or 0
  if last > before and last < 9007199254740991 then before = last end
  local gen = now
  if gen <= before then gen = before + 1 end
  redis.call('HSET', gens, cid, gen)
  return gen
end

-- True when a copy of the file may already be at the job's target (the worker recorded the
-- verified checksum before publishing it): such a job is never dropped as if nothing had moved.
local function published(stage)
  return stage == 'publishing' or stage == 'published' or stage == 'source_removed'
end

-- Deletes a job hash. (A temporary file its last delivery left lies in the target level's
-- .relocator/tmp/, where workers remove it under the content's lock.)
local function forget(job)
  redis.call('DEL', job)
end

-- The error of an earlier attempt stays readable as history once it no longer applies.
local function retireError(job)
  local message = redis.call('HGET', job, 'last_error')
  if message then
    redis.call('HSET', job, 'earlier_error', message)
    redis.call('HDEL', job, 'last_error', 'reason')
  end
end

-- Turns a job whose copy may be at its target around, so that exactly one copy ends at its
-- origin: the target (where a verified copy may be) becomes the source and the origin the target.
-- The next delivery finds both copies identical and removes the one at the old target, or — if
-- the source was already removed — moves the file back. Returns the new generation. Callers
-- never reverse a job whose `fence` is set (a reaped delivery that may still act).
local function reverse(job, gen, origin, target, gens, cid)
  local newer = newGen(gen, gens, cid)
  redis.call('HSET', job, 'db_level', target, 'target', origin, 'gen', newer, 'attempts', 0,
    'status', 'queued', 'worker_id', '', 'updated_at', now)
  redis.call('HDEL', job, 'next_target', 'next_queued_by', 'stage', 'bytes_done', 'bytes_total', 'started_at')
  retireError(job)
  return newer
end

-- True when a delivery that was reaped may still act on the content's files (a paused process):
-- until a later delivery has held the content's lock, the job is not reversed or re-aimed.
local function fenced(job)
  local fence = redis.call('HGET', job, 'fence')
  return fence ~= false and fence ~= nil and fence ~= ''
end

-- The sorted-set score of a content's count sent at `at` (ms): the count itself, or with a
-- half-life (ms) the decayed-count score log2(count) + at / half-life, which orders contents by
-- their current decayed value however long ago each was scored.
local function countScoreAt(count, halfLife, at)
  local value = tonumber(count) or 0
  if not halfLife or halfLife <= 0 then return value end
  if value < 1e-300 then value = 1e-300 end
  return math.log(value) / math.log(2) + at / halfLife
end
-- A count's score as of now.
local function countScore(count, halfLife) return countScoreAt(count, halfLife, now) end

-- The minimum residency (ms) of `level` in a list 'gold=3600000,silver=60000' ('' when none).
local function residencyOf(list, level)
  for name, ms in string.gmatch(list or '', '([%w_-]+)=(%d+)') do
    if name == level then return tonumber(ms) end
  end
  return 0
end

-- The residency rule, decided here only (enqueue.lua for a new or re-aimed job, committed.lua for
-- a follow-up; Residency.due in Swift is its twin): a content that last moved at `moved` (ms; nil:
-- never) onto a level keeping contents `residency` ms waits until moved + residency. Returns that
-- time while the window lasts, else nil.
local function residencyDue(residency, moved)
  if residency > 0 and moved and moved + residency > now then return moved + residency end
  return nil
end

-- Defers job `id` (hash `job`) in the shard's `deferred` set until `due`, saying why.
local function deferUntil(job, deferred, id, due, reason)
  redis.call('HSET', job, 'status', 'deferred', 'due_at', due, 'defer_reason', reason)
  redis.call('ZADD', deferred, due, id)
end

-- Adds to this minute's moves (or commits) in a ring of the last 120 minutes: a hash whose field
-- is the minute number modulo 120 and whose value is '<minute> <count> <bytes>' (a slot last
-- written a lap ago starts again), so the dashboard reads the last hour in one HGETALL and the
-- hash never holds more than 120 fields (ThroughputRing reads it).
local function countThisMinute(ring, count, bytes)
  local minute = math.floor(now / 60000)
  local slot = string.format('%d', minute % 120)
  local m, c, b = string.match(redis.call('HGET', ring, slot) or '', '^(%d+) (%d+) (%d+)$')
  if tonumber(m) ~= minute then c, b = 0, 0 end
  redis.call('HSET', ring, slot, string.format('%d %d %d', minute, tonumber(c) + count, tonumber(b) + math.max(0, bytes)))
end

-- Runs `command key value…` for a list of values of any length: in pieces of at most 1000 values
-- (unpack has a limit on how many it returns; 1000 is even, so that pairs stay together). With
-- `collect`, returns the items of the replies one after the other (ZMSCORE's scores, false for a
-- member not there).
local function inPieces(command, key, values, collect)
  local items = {}
  for first = 1, #values, 1000 do
    local reply = redis.call(command, key, unpack(values, first, math.min(first + 999, #values)))
    if collect then
      for i = 1, #reply do table.insert(items, reply[i]) end
    end
  end
  return items
end
