#!lua flags=allow-oom
-- Take up to a batch of verified moves into a committer's list: what it already holds first
-- (from a try that did not finish), then the oldest of `done`.
-- KEYS: done, committing:<committer>
-- ARGV: the most to take, fresh (1: only new ids — the committer is still writing what it holds)
-- Returns the ids.
local done, committing = KEYS[1], KEYS[2]
local max = tonumber(ARGV[1])
local ids = {}
if ARGV[2] ~= '1' then ids = redis.call('LRANGE', committing, 0, max - 1) end
local wanted = max - #ids
if wanted > 0 then
  -- The oldest `wanted` of done (its tail), moved in three commands rather than one RPOPLPUSH
  -- each: oldest first, pushed onto the head of the committer's list one after the other, as
  -- RPOPLPUSH would leave them.
  local tail = redis.call('LRANGE', done, -wanted, -1)
  if #tail > 0 then
    local oldestFirst = {}
    for i = #tail, 1, -1 do
      table.insert(oldestFirst, tail[i])
      table.insert(ids, tail[i])
    end
    redis.call('LTRIM', done, 0, -(#tail + 1))
    -- (In pieces: unpack has a limit on how many values it returns.)
    for first = 1, #oldestFirst, 1000 do
      redis.call('LPUSH', committing, unpack(oldestFirst, first, math.min(first + 999, #oldestFirst)))
    end
  end
end
return ids
