#!lua
-- A reconcile run holds a content while it changes its files or its row: no worker claims the
-- content's job meanwhile. Only a content without a job in flight can be held.
-- KEYS: job:<cid>, lease:<cid>
-- ARGV: a token of the holder, how long the lease lasts (ms)
-- Returns 1 when held, 0 when the content has a job in flight (or another holder).
local job, lease = KEYS[1], KEYS[2]
local status = redis.call('HGET', job, 'status')
if status and status ~= 'committed' and status ~= 'dead' then return 0 end
if redis.call('SET', lease, ARGV[1], 'PX', tonumber(ARGV[2]), 'NX') then return 1 end
return 0
