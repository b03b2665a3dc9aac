#!lua
-- A permit for one more move into a level with a limit on moves in flight (its max-moves policy),
-- held by one worker slot until released or until it lapses (the holder renews it).
-- KEYS: permits:<level>
-- ARGV: holder, the most moves at once, how long a permit lasts (ms)
-- Returns 1 when held (or renewed), 0 when the level has its moves.
local permits = KEYS[1]
local holder, most, ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', permits, '-inf', now)
if redis.call('ZSCORE', permits, holder) or redis.call('ZCARD', permits) < most then
  redis.call('ZADD', permits, now + ttl, holder)
  redis.call('PEXPIRE', permits, ttl * 2)
  return 1
end
return 0
