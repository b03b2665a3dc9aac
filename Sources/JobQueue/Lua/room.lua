#!lua
-- Room for one more copy into a level with a high watermark, shared by every worker slot: the bytes
-- of copies admitted and not yet finished count against the room the level has left, so two
-- workers that read the same free space cannot both take the last of it. A copy's blocks show in
-- the disk's usage once it has reserved them, and its reservation counts until the move ends: the
-- sum errs on the side of waiting.
-- KEYS: reserved:<level> (hash: holder -> "<bytes> <lapses at, ms>")
-- ARGV: holder, bytes, room (bytes the level may still take below its high watermark, by the
--       caller's reading of its disk), how long a reservation lasts unless renewed (ms)
-- Returns {1, others} when reserved, {0, others} when it would not fit; others = the bytes other
-- holders have reserved.
local reserved = KEYS[1]
local holder, bytes, room, ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local others = 0
local entries = redis.call('HGETALL', reserved)
for i = 1, #entries, 2 do
  local size, lapses = string.match(entries[i + 1], '^(%d+) (%d+)$')
  if not lapses or tonumber(lapses) <= now then
    redis.call('HDEL', reserved, entries[i])
  elseif entries[i] ~= holder then
    others = others + tonumber(size)
  end
end
if others + bytes > room then return {0, others} end
redis.call('HSET', reserved, holder, string.format('%d %d', bytes, now + ttl))
redis.call('PEXPIRE', reserved, ttl * 2)
return {1, others}
