#!lua
-- A lock one holder has at a time (the rebalancer's): taken when free, renewed when the holder
-- already has it — in one step, so a lock that expires meanwhile is never renewed for the wrong
-- holder.
-- KEYS: the lock
-- ARGV: the holder's token, how long the lock lasts (ms)
-- Returns 1 when ARGV[1] holds the lock now, 0 when another does.
local lock = KEYS[1]
local ttl = tonumber(ARGV[2])
if redis.call('SET', lock, ARGV[1], 'PX', ttl, 'NX') then return 1 end
if redis.call('GET', lock) == ARGV[1] then
  redis.call('PEXPIRE', lock, ttl)
  return 1
end
return 0
