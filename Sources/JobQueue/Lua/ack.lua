#!lua flags=allow-oom
-- Verified moves of one worker in one shard: each job goes to `done` for the committer. A worker's
-- finisher acknowledges together the moves one directory fsync made durable; the counters are
-- added to once for all of them.
-- KEYS: processing:<worker>, done, stats, moved-at, per-minute:moved, then job:<cid> of each move
-- ARGV: worker, then for each move (in the order of its job key): id, token, checksum, bytes, the
--       level the file was found on ('' when it was db_level)
-- Returns for each move 1, 0 when the job is no longer this delivery's (the reaper gave it away), or
-- an error reply of its own ({err = …}, a job key that is not a hash): each move is acknowledged or
-- refused alone, whatever the others of the batch are.
-- The id leaves the processing list only when this delivery owns the job, or when the id's
-- generation is no longer the job's (no delivery of it can be live): a stale delivery of the same
-- worker never removes the entry of the live one that took the same id again.
local processing, done, stats, movedAt = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local worker = ARGV[1]
local acknowledged, moved, movedBytes = {}, 0, 0
-- Written once for the batch: the ids onto done (in their order, as one LPUSH each would leave
-- them) and moved-at.
local doneIds, stamps = {}, {}
for m = 1, #KEYS - 5 do
  local job = KEYS[5 + m]
  local at = 2 + (m - 1) * 5
  local id, token, checksum, bytes, foundIn = ARGV[at], ARGV[at + 1], ARGV[at + 2], ARGV[at + 3], ARGV[at + 4]
  local cid, gen = parse(id)
  local h = {}
  -- (Then the fields of the delivery that end with it; `part`: written by earlier versions.)
  if cid then
    h = redis.pcall('HMGET', job, 'gen', 'status', 'worker_id', 'token', 'last_error',
      'part', 'stage', 'bytes_done', 'bytes_total', 'fence', 'verified')
  end
  if h.err then
    acknowledged[m] = h
  elseif not cid or h[1] ~= gen or h[2] ~= 'moving' or h[3] ~= worker or (h[4] or '') ~= token then
    if not cid or h[1] ~= gen then redis.call('LREM', processing, 1, id) end
    acknowledged[m] = 0
  else
    redis.call('LREM', processing, 1, id)
    -- One HSET and at most one HDEL, of the fields there are: the error of an earlier attempt
    -- stays readable as history (retireError's work, folded in), and the level the file was found
    -- on replaces db_level.
    local set = {'status', 'done', 'checksum', checksum, 'bytes', bytes, 'updated_at', now}
    if foundIn ~= '' then table.insert(set, 'db_level') table.insert(set, foundIn) end
    if h[5] then table.insert(set, 'earlier_error') table.insert(set, h[5]) end
    redis.call('HSET', job, unpack(set))
    if h[5] then
      redis.call('HDEL', job, 'part', 'stage', 'bytes_done', 'bytes_total', 'fence', 'verified', 'last_error', 'reason')
    elseif h[6] or h[7] or h[8] or h[9] or h[10] or h[11] then
      redis.call('HDEL', job, 'part', 'stage', 'bytes_done', 'bytes_total', 'fence', 'verified')
    end
    table.insert(doneIds, id)
    table.insert(stamps, cid)
    table.insert(stamps, now)
    moved = moved + 1
    movedBytes = movedBytes + math.max(0, tonumber(bytes) or 0)
    acknowledged[m] = 1
  end
end
if moved > 0 then
  inPieces('LPUSH', done, doneIds)
  inPieces('HSET', movedAt, stamps)
  tally(stats, 'moved', moved)
  tally(stats, 'moved_bytes', movedBytes)
  countThisMinute(KEYS[5], moved, movedBytes)
end
return acknowledged
