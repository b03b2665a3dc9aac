-- After the SQL transaction: the jobs become `committed` (kept readable for a while), or start
-- their follow-up move when a newer count arrived meanwhile.
-- KEYS: the list the ids are in (committing:<committer>, or done for a commit straight from
--       /update_sentence), stats, queue:<level> for each of the L levels named in ARGV, then
--       job:<cid> for each id, in the order of the ids
-- ARGV: seconds to keep a committed job, trim (1: the ids are the oldest end of a committer's
--       list), L, the L level names, then the ids
-- Returns {follow-ups queued, {ids whose follow-up names a level not given (committed without it)}}.
local list, stats = KEYS[1], KEYS[2]
local ttl, trim, levels = tonumber(ARGV[1]), ARGV[2] == '1', tonumber(ARGV[3])
local queues = {}
for i = 1, levels do queues[ARGV[3 + i]] = KEYS[2 + i] end
local first = 4 + levels
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

local followUps, unknown = 0, {}
for i = first, #ARGV do
  local id = ARGV[i]
  local job = KEYS[2 + levels + (i - first) + 1]
  if not trimmed then redis.call('LREM', list, 0, id) end
  local cid, gen = parse(id)
  if cid then
    local h = redis.call('HMGET', job, 'gen', 'status', 'target', 'next_target')
    if h[1] == gen and h[2] == 'done' then
      redis.call('HINCRBY', stats, 'committed', 1)
      local nextTarget = h[4]
      if nextTarget and nextTarget ~= h[3] and not queues[nextTarget] then
        table.insert(unknown, id)
        nextTarget = nil
      end
      if nextTarget and nextTarget ~= h[3] then
        local newer = newGen(gen)
        redis.call('HSET', job, 'db_level', h[3], 'target', nextTarget, 'status', 'queued', 'attempts', 0,
          'gen', newer, 'enqueued_at', now, 'updated_at', now)
        redis.call('HDEL', job, 'next_target', 'checksum', 'bytes', 'worker_id', 'last_error', 'reason',
          'earlier_error', 'started_at')
        redis.call('PERSIST', job)
        redis.call('LPUSH', queues[nextTarget], cid .. ':' .. newer)
        followUps = followUps + 1
      else
        redis.call('HSET', job, 'status', 'committed', 'updated_at', now)
        redis.call('HDEL', job, 'next_target')
        redis.call('EXPIRE', job, ttl)
      end
    end
  end
end
return {followUps, unknown}
