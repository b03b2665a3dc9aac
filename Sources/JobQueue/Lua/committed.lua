#!lua flags=allow-oom
-- After the SQL transaction: the jobs become `committed` (kept readable for a while), or start
-- their follow-up move when a newer count arrived meanwhile (deferred while the content's new level
-- keeps it for its minimum residency). A content's score moves to the residents of its new level,
-- and moved-at says when the database changed.
-- KEYS: the list the ids are in (committing:<committer>, or done for a commit straight from
--       /update_sentence), stats, deferred, moved-at, gens, queue:<level> for each of the L levels named in
--       ARGV, residents:<level> for each of them, then job:<cid> for each id, in the order of the ids,
--       and last per-minute:committed
-- ARGV: seconds to keep a committed job, trim (1: the ids are the oldest end of a committer's
--       list), L, half-life of counts (ms, 0: none), minimum residencies ('gold=3600000,…'), the L
--       level names, then the ids
-- Returns {follow-ups queued, {ids whose follow-up names a level not given (committed without it)}}.
local list, stats, deferred, movedAt, gens = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local ttl, trim, levels = tonumber(ARGV[1]), ARGV[2] == '1', tonumber(ARGV[3])
local halfLife, residencies = tonumber(ARGV[4]) or 0, ARGV[5]
local queues, residents = {}, {}
for i = 1, levels do
  queues[ARGV[5 + i]] = KEYS[5 + i]
  residents[ARGV[5 + i]] = KEYS[5 + levels + i]
end
local first = 6 + levels
local n = #ARGV - first + 1

-- The usual case: the batch is the oldest end of the committer's list (a batch taken since sits
-- at the other end): trim it off rather than search the list once per id.
local trimmed = false
if trim and n > 0 then
  local tail = redis.call('LRANGE', list, -n, -1)
  if #tail == n then
    local wanted = {}
    for i = first, #ARGV do wanted[ARGV[i]] = true end
    trimmed = true
    for _, id in ipairs(tail) do
      if not wanted[id] then trimmed = false break end
      wanted[id] = nil
    end
    if trimmed then redis.call('LTRIM', list, 0, -(n + 1)) end
  end
end

local followUps, unknown, committed = 0, {}, 0
-- What the batch's commits change outside their job hashes, written once for the batch: the
-- contents leaving each level's residents (and their scores), those arriving on each, and moved-at.
local leaving, arrivals, stamps = {}, {}, {}
for i = first, #ARGV do
  local id = ARGV[i]
  local job = KEYS[5 + 2 * levels + (i - first) + 1]
  if not trimmed then redis.call('LREM', list, 0, id) end
  local cid, gen = parse(id)
  if cid then
    local h = redis.call('HMGET', job, 'gen', 'status', 'target', 'next_target', 'db_level', 'count', 'next_queued_by', 'counted_at', 'enqueued_at')
    if h[1] == gen and h[2] == 'done' then
      committed = committed + 1
      -- The content now lives on its target (its score moves with it, below).
      if residents[h[5]] then
        leaving[h[5]] = leaving[h[5]] or {}
        table.insert(leaving[h[5]], cid)
      end
      -- (A job hash with no db_level left, which no script writes, still commits: no score to carry.)
      if residents[h[3]] then table.insert(arrivals, {cid = cid, from = h[5] or '', to = h[3], count = h[6],
        countedAt = h[8] or h[9]}) end
      local nextTarget = h[4]
      if nextTarget and nextTarget ~= h[3] and not queues[nextTarget] then
        table.insert(unknown, id)
        nextTarget = nil
      end
      if nextTarget and nextTarget ~= h[3] then
        local newer = newGen(gen, gens, cid)
        -- Who asked for the follow-up (QueuedBy.followUpPrefix spells the same words).
        local asked = h[7]
        redis.call('HSET', job, 'db_level', h[3], 'target', nextTarget, 'status', 'queued', 'attempts', 0,
          'gen', newer, 'enqueued_at', now, 'updated_at', now,
          'queued_by', 'a follow-up after the move to ' .. h[3] .. ' of ' .. (asked or 'a count sent while it moved\n'))
        -- (Its last count keeps its time: until now the time it was enqueued.)
        if not h[8] and h[9] then redis.call('HSET', job, 'counted_at', h[9]) end
        redis.call('HDEL', job, 'next_target', 'checksum', 'bytes', 'worker_id', 'last_error', 'reason',
          'earlier_error', 'started_at', 'next_queued_by')
        redis.call('PERSIST', job)
        local residency = residencyOf(residencies, h[3])
        -- (moved-at as the ack left it: this batch writes its own below.)
        local due = residencyDue(residency, tonumber(redis.call('HGET', movedAt, cid)))
        if due then
          deferUntil(job, deferred, cid .. ':' .. newer, due,
            'just moved to ' .. h[3] .. ', which keeps contents at least ' .. math.floor(residency / 1000) .. ' s')
        else
          redis.call('LPUSH', queues[nextTarget], cid .. ':' .. newer)
        end
        followUps = followUps + 1
      else
        redis.call('HSET', job, 'status', 'committed', 'updated_at', now)
        if h[4] or h[7] then redis.call('HDEL', job, 'next_target', 'next_queued_by') end
        redis.call('EXPIRE', job, ttl)
      end
      -- The database names the new level from now on: a level read before now (after the file
      -- moved, before this commit) is told to read again, also once this job is gone.
      table.insert(stamps, cid)
      table.insert(stamps, now)
    end
  end
end
-- Each content's score leaves the residents of the level it was on, and arrives with it on its
-- target scored by its job's last count as of when it was sent, with the half-life of now (a count
-- whose read named a level the content had left scored it nowhere else; a job written before jobs
-- kept the time of their later counts: as of when it was enqueued). A job without a count (a
-- plan's move) carries the score the content had; one whose content had none there keeps the
-- score it has on its target (a reversed move: it returns where it was scored), or is scored by
-- its count. One ZMSCORE and one ZREM per level left, one ZADD per level reached, and one ZMSCORE
-- per level for contents arriving with no score.
-- Each of `cids`' score among `level`'s residents, into `into` by 'level cid'.
local function residentScores(level, cids, into)
  local found = inPieces('ZMSCORE', residents[level], cids, true)
  for i, cid in ipairs(cids) do into[level .. ' ' .. cid] = found[i] end
end
local scores = {}
for level, cids in pairs(leaving) do
  residentScores(level, cids, scores)
  inPieces('ZREM', residents[level], cids)
end
local unscored = {}
for _, a in ipairs(arrivals) do
  -- (0: a job a plan's move created, with no count.)
  local countedAt = tonumber(a.countedAt or '')
  a.score = (countedAt and countedAt > 0 and countScoreAt(a.count, halfLife, countedAt)) or scores[a.from .. ' ' .. a.cid]
  if not a.score then
    unscored[a.to] = unscored[a.to] or {}
    table.insert(unscored[a.to], a.cid)
  end
end
local kept = {}
for level, cids in pairs(unscored) do residentScores(level, cids, kept) end
local adds = {}
for _, a in ipairs(arrivals) do
  adds[a.to] = adds[a.to] or {}
  table.insert(adds[a.to], a.score or kept[a.to .. ' ' .. a.cid] or countScore(a.count, halfLife))
  table.insert(adds[a.to], a.cid)
end
for level, members in pairs(adds) do inPieces('ZADD', residents[level], members) end
if #stamps > 0 then inPieces('HSET', movedAt, stamps) end
-- Counted once for the batch.
if committed > 0 then
  tally(stats, 'committed', committed)
  countThisMinute(KEYS[#KEYS], committed, 0)
end
return {followUps, unknown}
