#!lua
-- Takes bytes from a level's token bucket, shared by every worker writing into the level: it
-- starts empty, refills at `rate` bytes per second and holds at most a tenth of a second of them
-- (or one request, if larger), so a burst after a quiet spell stays small.
-- KEYS: bandwidth:<level>
-- ARGV: rate (bytes per second), bytes wanted (at most `rate` are granted at once)
-- Returns 0 when granted, else how many ms to wait before asking again.
local bucket = KEYS[1]
local rate, want = tonumber(ARGV[1]), tonumber(ARGV[2])
if want > rate then want = rate end
local capacity = math.max(want, rate / 10)
local h = redis.call('HMGET', bucket, 'tokens', 'at')
local tokens, at = tonumber(h[1]) or 0, tonumber(h[2]) or now
-- A clock that stepped back refills nothing (and takes nothing back).
local elapsed = now - at
if elapsed < 0 then elapsed = 0 end
tokens = math.min(capacity, tokens + elapsed * rate / 1000)
local wait = 0
if tokens >= want then
  tokens = tokens - want
else
  wait = math.ceil((want - tokens) * 1000 / rate)
end
redis.call('HSET', bucket, 'tokens', tokens, 'at', now)
redis.call('PEXPIRE', bucket, 60000)
return wait
