-- Hits for a content: its counter decays by half every half-life and gains `n`.
-- KEYS: hits
-- ARGV: cid, n, half-life (ms)
-- Returns the counter's new value (as text).
local hits = KEYS[1]
local cid, n, halfLife = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local value, at = 0, now
local stored = redis.call('HGET', hits, cid)
if stored then
  local v, t = string.match(stored, '^([^:]+):(%d+)$')
  value, at = tonumber(v) or 0, tonumber(t) or now
end
value = value * math.pow(2, -(now - at) / halfLife) + n
redis.call('HSET', hits, cid, string.format('%.6f', value) .. ':' .. now)
return string.format('%.6f', value)
