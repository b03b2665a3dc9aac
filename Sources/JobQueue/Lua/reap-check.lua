#!lua
-- Is a known worker (or committer) alive? A missing heartbeat is first only marked: after a Redis
-- restart every heartbeat may have expired at once, and live workers get `grace` ms to renew
-- theirs before anything of theirs is handed to another. A heartbeat stamped more than `grace`
-- ahead of Redis' clock (it stepped back) counts as missing: its expiry lies as far ahead, while a
-- live process renews it with the clock as it runs now.
-- KEYS: workers, worker:<id>, suspect:<id>
-- ARGV: id, grace (ms)
-- Returns alive, suspect, dead (reap it now) or gone (not a known worker).
local workers, heartbeat, suspect = KEYS[1], KEYS[2], KEYS[3]
local id, grace = ARGV[1], tonumber(ARGV[2])
if beating(heartbeat, grace) then
  redis.call('DEL', suspect)
  return 'alive'
end
if redis.call('SISMEMBER', workers, id) == 0 then return 'gone' end
local since = tonumber(redis.call('GET', suspect))
if not since or since > now + grace then
  -- First seen missing (or marked before the clock stepped back).
  redis.call('SET', suspect, now, 'PX', grace * 4)
  return 'suspect'
end
if now - since >= grace then return 'dead' end
return 'suspect'
