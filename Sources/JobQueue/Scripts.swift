import RedisClient

/// The Lua scripts: every state change that touches more than one key is one of these, so a crash
/// between two commands cannot lose or duplicate a job. Every script gets the key prefix as ARGV[1]
/// and builds `job:<cid>` keys from it (all keys share the prefix's hash tag, so one slot).
enum Scripts {
    /// Shared helpers, prepended to every script.
    static let prelude = """
        local prefix = ARGV[1]
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        local function parse(id)
          local cid, gen = string.match(id, '^(%d+):(%d+)$')
          return cid, gen
        end
        local function jobkey(cid) return prefix .. 'job:' .. cid end
        -- {{id, {hash fields}}…} for a list of ids; a job whose hash is gone comes with {}.
        local function withFields(ids)
          local out = {}
          for _, id in ipairs(ids) do
            local cid = parse(id)
            local fields = {}
            if cid then fields = redis.call('HGETALL', jobkey(cid)) end
            table.insert(out, {id, fields})
          end
          return out
        end
        -- Delete a job hash; a temporary file its last delivery recorded is handed to the workers'
        -- clean-up (stale-parts), so that no .part outlives its job.
        local function forget(key)
          local part = redis.call('HGET', key, 'part')
          if part then redis.call('SADD', prefix .. 'stale-parts', part) end
          redis.call('DEL', key)
        end
        -- Put a job back on its queue without counting an attempt (reaper, shutdown, restart).
        -- Only a job still 'queued' (taken but not claimed) or 'moving' for this worker goes back.
        local function giveback(id, worker)
          local cid, gen = parse(id)
          if not cid then return 0 end
          local h = redis.call('HMGET', jobkey(cid), 'gen', 'status', 'worker_id', 'target')
          if h[1] ~= gen then return 0 end
          if h[2] == 'queued' or (h[2] == 'moving' and h[3] == worker) then
            redis.call('HSET', jobkey(cid), 'status', 'queued', 'worker_id', '', 'updated_at', now)
            redis.call('RPUSH', prefix .. 'queue:' .. h[4], id)
            return 1
          end
          return 0
        end

        """

    /// Submit a count: create, coalesce or drop the content's job. The caller's db_level counts
    /// unless a job was committed after the caller read it.
    /// ARGV: prefix, cid, count, filename, db_level, target, when db_level was read (ms since 1970).
    /// Returns {outcome, {hash fields}}; outcome is created, updated, retargeted, follow_up,
    /// in_place or dropped.
    static let enqueue = RedisScript(prelude + """
        local cid, count, filename, dbLevel, target = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
        local key = jobkey(cid)
        local h = redis.call('HMGET', key, 'status', 'gen', 'target', 'db_level')
        local status, oldGen, curTarget, curDb = h[1], h[2], h[3], h[4]
        local function newGen()
          local old = tonumber(oldGen or '0') or 0
          if now > old then return now end
          return old + 1
        end
        local function answer(outcome) return {outcome, redis.call('HGETALL', key)} end

        if not status or status == 'committed' or status == 'dead' then
          -- A job committed after the caller read db_level (ARGV[7], ms) knows better where the file
          -- is now; a level read after the commit (an operator's later change included) stands.
          if status == 'committed' and curTarget then
            local committedAt = tonumber(redis.call('HGET', key, 'updated_at') or '0') or 0
            if committedAt > (tonumber(ARGV[7]) or 0) then dbLevel = curTarget end
          end
          if status == 'dead' then redis.call('LREM', prefix .. 'dead', 0, cid .. ':' .. oldGen) end
          if target == dbLevel then
            if status == 'dead' then forget(key) end
            return {'in_place', {}}
          end
          local gen = newGen()
          forget(key)
          redis.call('HSET', key, 'cid', cid, 'count', count, 'filename', filename, 'db_level', dbLevel,
            'target', target, 'status', 'queued', 'attempts', 0, 'gen', gen, 'enqueued_at', now, 'updated_at', now)
          redis.call('LPUSH', prefix .. 'queue:' .. target, cid .. ':' .. gen)
          return answer('created')
        end

        redis.call('HSET', key, 'count', count, 'updated_at', now)
        if status == 'queued' or status == 'retrying' then
          if target == curTarget then return answer('updated') end
          if status == 'retrying' then redis.call('ZREM', prefix .. 'retry', cid .. ':' .. oldGen) end
          if target == curDb then
            -- The file is already where it belongs: the job goes; its id left in a queue is stale.
            forget(key)
            return {'dropped', {}}
          end
          local gen = newGen()
          redis.call('HSET', key, 'target', target, 'gen', gen, 'status', 'queued', 'attempts', 0)
          redis.call('HDEL', key, 'last_error')
          redis.call('LPUSH', prefix .. 'queue:' .. target, cid .. ':' .. gen)
          return answer('retargeted')
        end

        -- moving or done: the move in flight finishes; a different target follows after commit.
        if target == curTarget then
          redis.call('HDEL', key, 'next_target')
          return answer('updated')
        end
        redis.call('HSET', key, 'next_target', target)
        return answer('follow_up')
        """)

    /// Claim work: first the id a BRPOPLPUSH already moved into the processing list (ARGV[3], may
    /// be empty), then ids taken with RPOPLPUSH from the queues of ARGV[4…] in order. Stale ids
    /// (an older gen, a dropped job) are removed and skipped.
    /// KEYS: processing:<worker>. ARGV: prefix, worker, taken id, levels…
    /// Returns {id, {hash fields}} or nil.
    static let fetch = RedisScript(prelude + """
        local processing, worker = KEYS[1], ARGV[2]
        local function claim(id)
          local cid, gen = parse(id)
          if cid then
            local h = redis.call('HMGET', jobkey(cid), 'gen', 'status')
            if h[1] == gen and h[2] == 'queued' then
              redis.call('HSET', jobkey(cid), 'status', 'moving', 'worker_id', worker, 'updated_at', now)
              return redis.call('HGETALL', jobkey(cid))
            end
          end
          redis.call('LREM', processing, 1, id)
          return nil
        end
        if ARGV[3] ~= '' then
          local job = claim(ARGV[3])
          if job then return {ARGV[3], job} end
        end
        for i = 4, #ARGV do
          while true do
            local id = redis.call('RPOPLPUSH', prefix .. 'queue:' .. ARGV[i], processing)
            if not id then break end
            local job = claim(id)
            if job then return {id, job} end
          end
        end
        return nil
        """)

    /// A verified move: the job goes to `done` for the committer.
    /// KEYS: processing:<worker>. ARGV: prefix, id, worker, checksum, bytes.
    /// Returns 1, or 0 when the job is no longer this worker's (the reaper gave it away).
    static let ack = RedisScript(prelude + """
        local id, worker = ARGV[2], ARGV[3]
        redis.call('LREM', KEYS[1], 1, id)
        local cid, gen = parse(id)
        if not cid then return 0 end
        local h = redis.call('HMGET', jobkey(cid), 'gen', 'status', 'worker_id')
        if h[1] ~= gen or h[2] ~= 'moving' or h[3] ~= worker then return 0 end
        redis.call('HSET', jobkey(cid), 'status', 'done', 'checksum', ARGV[4], 'bytes', ARGV[5], 'updated_at', now)
        redis.call('HDEL', jobkey(cid), 'part')
        redis.call('LPUSH', prefix .. 'done', id)
        return 1
        """)

    /// A failed move: retry later, or dead when attempts are used up or the failure is permanent.
    /// KEYS: processing:<worker>. ARGV: prefix, id, worker, error, permanent (0/1), delay ms,
    /// max attempts. Returns retrying, dead, dropped or stale.
    static let fail = RedisScript(prelude + """
        local id, worker, message, permanent, delay, maxAttempts = ARGV[2], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7])
        redis.call('LREM', KEYS[1], 1, id)
        local cid, gen = parse(id)
        if not cid then return 'stale' end
        local key = jobkey(cid)
        local h = redis.call('HMGET', key, 'gen', 'status', 'worker_id', 'next_target', 'db_level')
        if h[1] ~= gen or h[2] ~= 'moving' or h[3] ~= worker then return 'stale' end
        local attempts = redis.call('HINCRBY', key, 'attempts', 1)
        redis.call('HSET', key, 'last_error', message, 'worker_id', '', 'updated_at', now)
        if h[4] then
          -- A newer count arrived while this move ran: aim the retry at it.
          redis.call('HDEL', key, 'next_target')
          if h[4] == h[5] then
            forget(key)
            return 'dropped'
          end
          redis.call('HSET', key, 'target', h[4])
        end
        if permanent == '1' or attempts >= maxAttempts then
          redis.call('HSET', key, 'status', 'dead')
          redis.call('LPUSH', prefix .. 'dead', id)
          return 'dead'
        end
        redis.call('HSET', key, 'status', 'retrying')
        redis.call('ZADD', prefix .. 'retry', now + delay, id)
        return 'retrying'
        """)

    /// Move due retries back to their queues. ARGV: prefix, limit. Returns how many.
    static let promote = RedisScript(prelude + """
        local due = redis.call('ZRANGEBYSCORE', prefix .. 'retry', '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
        local moved = 0
        for _, id in ipairs(due) do
          redis.call('ZREM', prefix .. 'retry', id)
          local cid, gen = parse(id)
          if cid then
            local h = redis.call('HMGET', jobkey(cid), 'gen', 'status', 'target')
            if h[1] == gen and h[2] == 'retrying' then
              redis.call('HSET', jobkey(cid), 'status', 'queued', 'updated_at', now)
              redis.call('LPUSH', prefix .. 'queue:' .. h[3], id)
              moved = moved + 1
            end
          end
        end
        return moved
        """)

    /// Give back everything a worker (or committer) holds, without counting an attempt: its
    /// processing list to the queues, its committing list to `done`. ARGV: prefix, id (empty: the
    /// reaper), grace ms.
    /// Returns the number of jobs given back.
    static let release = RedisScript(prelude + """
        local function releaseOne(w)
          local n = 0
          local processing = prefix .. 'processing:' .. w
          for _, id in ipairs(redis.call('LRANGE', processing, 0, -1)) do n = n + giveback(id, w) end
          redis.call('DEL', processing)
          local committing = prefix .. 'committing:' .. w
          for _, id in ipairs(redis.call('LRANGE', committing, 0, -1)) do
            redis.call('RPUSH', prefix .. 'done', id)
            n = n + 1
          end
          redis.call('DEL', committing)
          return n
        end
        if ARGV[2] ~= '' then return releaseOne(ARGV[2]) end
        -- Reaper: every known worker whose heartbeat has been gone for at least ARGV[3] ms. A missing
        -- heartbeat is first only marked (suspect:<w>): after a Redis restart every heartbeat may
        -- have expired at once, and live workers get that long to renew theirs before anything of
        -- theirs is handed to another worker.
        local grace = tonumber(ARGV[3])
        local n = 0
        for _, w in ipairs(redis.call('SMEMBERS', prefix .. 'workers')) do
          local suspect = prefix .. 'suspect:' .. w
          if redis.call('EXISTS', prefix .. 'worker:' .. w) == 1 then
            redis.call('DEL', suspect)
          else
            local since = tonumber(redis.call('GET', suspect))
            if not since then
              redis.call('SET', suspect, now, 'PX', grace * 4)
            elseif now - since >= grace then
              n = n + releaseOne(w)
              redis.call('SREM', prefix .. 'workers', w)
              redis.call('DEL', suspect)
            end
          end
        end
        return n
        """)

    /// Take up to ARGV[2] done jobs into committing:<committer> (after what it already holds from
    /// an earlier try, unless ARGV[3] is 1). KEYS: committing:<committer>. ARGV: prefix, max, fresh.
    /// Returns {{id, {hash fields}}…}; a job whose hash is gone comes with an empty list.
    static let takeBatch = RedisScript(prelude + """
        local committing, max = KEYS[1], tonumber(ARGV[2])
        local ids = {}
        -- ARGV[3] = 1: only fresh jobs (the committer is still writing what it holds).
        if ARGV[3] ~= '1' then ids = redis.call('LRANGE', committing, 0, max - 1) end
        while #ids < max do
          local id = redis.call('RPOPLPUSH', prefix .. 'done', committing)
          if not id then break end
          table.insert(ids, id)
        end
        return withFields(ids)
        """)

    /// After the SQL transaction: mark jobs committed (kept ARGV[2] seconds), or start the follow-up
    /// move when a newer count arrived meanwhile. KEYS: the list the ids are in (committing:<c>, or
    /// done for a commit from /update_sentence). ARGV: prefix, ttl seconds, ids…
    /// Returns the number of follow-ups enqueued.
    static let committed = RedisScript(prelude + """
        local list, ttl = KEYS[1], tonumber(ARGV[2])
        local followUps = 0
        -- The usual case: the batch is the oldest part of a committer's list (its tail; a batch
        -- taken since sits at the head): trim it off rather than search the list once per id.
        local n = #ARGV - 2
        local trimmed = false
        if list ~= prefix .. 'done' then
          local tail = redis.call('LRANGE', list, -n, -1)
          if #tail == n then
            local wanted = {}
            for i = 3, #ARGV do wanted[ARGV[i]] = true end
            trimmed = true
            for _, id in ipairs(tail) do
              if not wanted[id] then trimmed = false break end
              wanted[id] = nil
            end
            if trimmed then redis.call('LTRIM', list, 0, -(n + 1)) end
          end
        end
        for i = 3, #ARGV do
          local id = ARGV[i]
          if not trimmed then redis.call('LREM', list, 0, id) end
          local cid, gen = parse(id)
          if cid then
            local key = jobkey(cid)
            local h = redis.call('HMGET', key, 'gen', 'status', 'target', 'next_target')
            if h[1] == gen and h[2] == 'done' then
              if h[4] and h[4] ~= h[3] then
                local newGen = now
                if newGen <= tonumber(gen) then newGen = tonumber(gen) + 1 end
                redis.call('HSET', key, 'db_level', h[3], 'target', h[4], 'status', 'queued', 'attempts', 0,
                  'gen', newGen, 'enqueued_at', now, 'updated_at', now)
                redis.call('HDEL', key, 'next_target', 'checksum', 'bytes', 'worker_id', 'last_error')
                redis.call('PERSIST', key)
                redis.call('LPUSH', prefix .. 'queue:' .. h[4], cid .. ':' .. newGen)
                followUps = followUps + 1
              else
                redis.call('HSET', key, 'status', 'committed', 'updated_at', now)
                redis.call('HDEL', key, 'next_target')
                redis.call('EXPIRE', key, ttl)
              end
            end
          end
        end
        return followUps
        """)

    /// The dead-letter list with each job's fields. ARGV: prefix. Returns {{id, {fields}}…}.
    static let deadList = RedisScript(prelude + """
        return withFields(redis.call('LRANGE', prefix .. 'dead', 0, -1))
        """)

    /// Replay or purge dead jobs. ARGV: prefix, action (replay | purge | dry-run), cids… (none: all).
    /// Works on a snapshot of the list, so a job that fails again during a replay is not met twice.
    /// Returns the ids acted on.
    static let deadAction = RedisScript(prelude + """
        local action = ARGV[2]
        local wanted = nil
        if #ARGV > 2 then
          wanted = {}
          for i = 3, #ARGV do wanted[ARGV[i]] = true end
        end
        local done = {}
        for _, id in ipairs(redis.call('LRANGE', prefix .. 'dead', 0, -1)) do
          local cid = parse(id)
          if wanted == nil or (cid and wanted[cid]) then
            table.insert(done, id)
            if action ~= 'dry-run' then
              redis.call('LREM', prefix .. 'dead', 0, id)
              if cid then
                local key = jobkey(cid)
                local h = redis.call('HMGET', key, 'gen', 'status', 'target')
                local _, gen = parse(id)
                if h[1] == gen and h[2] == 'dead' then
                  if action == 'replay' then
                    redis.call('HSET', key, 'status', 'queued', 'attempts', 0, 'updated_at', now)
                    redis.call('HDEL', key, 'last_error', 'worker_id')
                    redis.call('LPUSH', prefix .. 'queue:' .. h[3], id)
                  else
                    forget(key)
                  end
                end
              end
            end
          end
        end
        return done
        """)

    /// Jobs whose id sits in none of the lists its status says it should (Redis lost a write):
    /// reported, and with ARGV[2] = 1 put back. ARGV: prefix, fix, cids…
    /// Returns {{cid, status, id}…} for each orphan found.
    static let orphans = RedisScript(prelude + """
        local fix = ARGV[2] == '1'
        local workers = redis.call('SMEMBERS', prefix .. 'workers')
        local function inLists(kind, id)
          for _, w in ipairs(workers) do
            if redis.call('LPOS', prefix .. kind .. ':' .. w, id) then return true end
          end
          return false
        end
        local found = {}
        for i = 3, #ARGV do
          local cid = ARGV[i]
          local key = jobkey(cid)
          local h = redis.call('HMGET', key, 'gen', 'status', 'target', 'worker_id')
          if h[1] and h[2] then
            local id = cid .. ':' .. h[1]
            local status, queue = h[2], prefix .. 'queue:' .. (h[3] or '')
            local orphan = false
            if status == 'queued' then
              orphan = not redis.call('LPOS', queue, id) and not inLists('processing', id)
              if orphan and fix then redis.call('LPUSH', queue, id) end
            elseif status == 'retrying' then
              orphan = not redis.call('ZSCORE', prefix .. 'retry', id)
              if orphan and fix then redis.call('ZADD', prefix .. 'retry', now, id) end
            elseif status == 'moving' then
              orphan = not inLists('processing', id)
              if orphan and fix then
                redis.call('HSET', key, 'status', 'queued', 'worker_id', '', 'updated_at', now)
                redis.call('RPUSH', queue, id)
              end
            elseif status == 'done' then
              orphan = not redis.call('LPOS', prefix .. 'done', id) and not inLists('committing', id)
              if orphan and fix then redis.call('LPUSH', prefix .. 'done', id) end
            elseif status == 'dead' then
              orphan = not redis.call('LPOS', prefix .. 'dead', id)
              if orphan and fix then redis.call('LPUSH', prefix .. 'dead', id) end
            end
            if orphan then table.insert(found, {cid, status, id}) end
          end
        end
        return found
        """)

    /// Counts for `status` and `/v1/queues`. ARGV: prefix, levels…
    /// Returns {{level, depth}…}, processing, committing, retry, dead, done, workers, alive.
    static let stats = RedisScript(prelude + """
        local queues = {}
        for i = 2, #ARGV do table.insert(queues, {ARGV[i], redis.call('LLEN', prefix .. 'queue:' .. ARGV[i])}) end
        local processing, committing, alive = 0, 0, 0
        local workers = redis.call('SMEMBERS', prefix .. 'workers')
        for _, w in ipairs(workers) do
          processing = processing + redis.call('LLEN', prefix .. 'processing:' .. w)
          committing = committing + redis.call('LLEN', prefix .. 'committing:' .. w)
          alive = alive + redis.call('EXISTS', prefix .. 'worker:' .. w)
        end
        return {queues, processing, committing, redis.call('ZCARD', prefix .. 'retry'),
          redis.call('LLEN', prefix .. 'dead'), redis.call('LLEN', prefix .. 'done'), #workers, alive}
        """)
}
