#!lua
-- Hits for a content: its counter decays by half every half-life and gains `n`. A clock that
-- stepped back (now before the counter's time) decays nothing; the counter stays within the range
-- of a count, 0 to 2^53 - 1.
-- KEYS: hits
-- ARGV: cid, n, half-life (ms)
-- Returns the counter's new value (as text).
local hits = KEYS[1]
local cid, n, halfLife = ARGV[1], tonumber(ARGV[2]) or 0, tonumber(ARGV[3]) or 1
local largest = 9007199254740991
if halfLife < 1 then halfLife = 1 end
local value, at = 0, now
local stored = redis.call('HGET', hits, cid)
if stored then
  local v, t = string.match(stored, '^([^:]+):(%d+)$')
  value, at = tonumber(v) or 0, tonumber(t) or now
end
local elapsed = now - at
if elapsed < 0 then elapsed = 0 end
value = value * math.pow(2, -elapsed / halfLife) + n
-- NaN (a value that is not one) reads as 0; beyond the range of a count, the largest count.
if value ~= value or value < 0 then value = 0 end
if value > largest then value = largest end
redis.call('HSET', hits, cid, string.format('%.6f', value) .. ':' .. now)
return string.format('%.6f', value)
