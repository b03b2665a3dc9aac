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
while #ids < max do
  local id = redis.call('RPOPLPUSH', done, committing)
  if not id then break end
  table.insert(ids, id)
end
return ids
