#!lua flags=allow-oom
-- What a committer holds goes back to `done` for another committer (it stopped, or was reaped).
-- KEYS: committing:<committer>, done
-- ARGV: none
-- Returns how many ids went back.
local committing, done = KEYS[1], KEYS[2]
local ids = redis.call('LRANGE', committing, 0, -1)
for _, id in ipairs(ids) do redis.call('RPUSH', done, id) end
redis.call('DEL', committing)
return #ids
