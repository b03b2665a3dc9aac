#!lua flags=allow-oom
-- Replay or purge one dead job.
-- KEYS: dead, job:<cid>, queue:<target>, queue:<db_level>, gens
-- ARGV: id, action (replay | purge), the target and the db_level the caller read, then the job's
--       queued_by after a replay and after a purge that reverses it ('': left as it is)
-- Returns replayed (attempts reset, a new generation, back on its queue), purged (forgotten; the file stays where it
-- is), reversed (purged, but a copy may already be at its target: a job now removes that copy,
-- leaving the file only where the database says), missing (not in the dead-letter list), stale
-- (its hash is gone or newer; the id is removed) or changed (the levels moved: read them again).
local dead, job, targetQueue, originQueue, gens = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local id, action, target, origin = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if not redis.call('LPOS', dead, id) then return 'missing' end
local cid, gen = parse(id)
local h = {}
if cid then h = redis.call('HMGET', job, 'gen', 'status', 'target', 'db_level', 'stage') end
local current = cid and h[1] == gen and h[2] == 'dead'
if current and (h[3] ~= target or h[4] ~= origin) then return 'changed' end
redis.call('LREM', dead, 0, id)
if not current then return 'stale' end
if action == 'replay' then
  -- A generation of now: a level recorded while the job was dead (reconcile, an operator) is older
  -- than the move it makes now, whose commit must win.
  local newer = newGen(gen, gens, cid)
  redis.call('HSET', job, 'status', 'queued', 'attempts', 0, 'worker_id', '', 'updated_at', now, 'gen', newer)
  retireError(job)
  redis.call('LPUSH', targetQueue, cid .. ':' .. newer)
  if (ARGV[5] or '') ~= '' then redis.call('HSET', job, 'queued_by', ARGV[5]) end
  return 'replayed'
end
if published(h[5]) then
  local newer = reverse(job, gen, origin, target, gens, cid)
  redis.call('LPUSH', originQueue, cid .. ':' .. newer)
  if (ARGV[6] or '') ~= '' then redis.call('HSET', job, 'queued_by', ARGV[6]) end
  return 'reversed'
end
forget(job)
return 'purged'
