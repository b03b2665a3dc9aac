import RedisClient
import RelocatorCore

extension JobQueue {
    // MARK: - Committers (take-done.lua, committed.lua)

    /// Up to `max` done jobs of one shard, moved into the committer's list (what it already held
    /// first, unless `fresh`), each with its hash as stored (empty when the hash is gone).
    public func takeDone(committer: String, shard index: Int, max: Int, fresh: Bool = false,
                         on redis: RedisConnection) throws -> [(id: String, fields: [String: String])] {
        let shard = keys.shard(index)
        let reply = try redis.evalScript(QueueScripts.takeDone, keys: [shard.done, shard.committing(committer)],
                                         arguments: [max, fresh ? "1" : "0"])
        let ids = reply.array?.compactMap(\.string) ?? []
        return try withFields(ids, in: shard, on: redis)
    }

    /// Each id with its job hash (one pipeline).
    func withFields(_ ids: [String], in shard: ShardKeys, on redis: RedisConnection) throws -> [(id: String, fields: [String: String])] {
        let parsed = ids.map(JobID.init)
        let commands = parsed.compactMap { $0.map { RedisCommand("HGETALL", shard.job($0.cid)) } }
        var replies = try redis.pipeline(commands).makeIterator()
        return ids.indices.map { index in
            guard parsed[index] != nil, let reply = replies.next() else { return (ids[index], [:]) }
            return (ids[index], reply.hash ?? [:])
        }
    }

    /// Waits up to `timeout` for a done job of one shard, moving it into the committer's list.
    public func waitForDone(committer: String, shard index: Int, timeout: Duration, on redis: RedisConnection) throws -> Bool {
        let shard = keys.shard(index)
        return try !redis.sendBlocking(RedisCommand("BRPOPLPUSH", shard.done, shard.committing(committer), Self.blockSeconds(timeout)),
                                       block: timeout).isNull
    }

    /// After the SQL commit: jobs of one shard become `committed` (kept for `ttl`) or start their
    /// follow-up. `committer` names the list the ids are in (nil: `done`, a commit straight from
    /// /update_sentence). `levels` names every level a follow-up may go to. Returns the follow-ups
    /// queued and the ids whose follow-up named a level not in `levels` (committed without it).
    @discardableResult
    public func markCommitted(ids: [String], shard index: Int, committer: String?, ttl: Duration, levels: [String],
                              policy: CountPolicy = .none, on redis: RedisConnection) throws -> (followUps: Int, unknownLevel: [String]) {
        if ids.isEmpty { return (0, []) }
        let shard = keys.shard(index)
        let list = committer.map(shard.committing) ?? shard.done
        let jobKeys = ids.map { JobID($0).map { shard.job($0.cid) } ?? shard.job(0) }
        let reply = try redis.evalScript(
            QueueScripts.committed,
            keys: [list, shard.stats, shard.deferred, shard.movedAt, shard.gens] + levels.map(shard.queue) + levels.map(shard.residents) + jobKeys
                + [shard.committedPerMinute],
            arguments: [max(1, Int(ttl.milliseconds / 1000)), committer == nil ? "0" : "1", levels.count, policy.halfLifeArgument,
                        policy.residencyArgument] + levels + ids)
        guard let items = reply.array, items.count == 2, let followUps = items[0].int else { throw malformed(redis.url.address, "committed.lua") }
        return (followUps, items[1].array?.compactMap(\.string) ?? [])
    }
}
