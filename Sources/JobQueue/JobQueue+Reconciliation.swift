import RedisClient
import RelocatorCore

extension JobQueue {
    // MARK: - Reconciliation (restore.lua, lease.lua, unlease.lua)

    /// Every content id that has a job hash, in every shard (SCAN).
    public func jobCIDs(on redis: RedisConnection) throws -> [Int64] {
        var cids: [Int64] = []
        for shard in keys.shards {
            let prefix = shard.job(0).dropLast(1)
            for name in try redis.scan(match: shard.jobPattern) {
                if name.hasPrefix(prefix), let cid = Int64(name.dropFirst(prefix.count)) { cids.append(cid) }
            }
        }
        return cids
    }

    public typealias Orphan = RelocatorCore.Orphan

    /// Jobs whose id is missing from the list their status calls for (Redis lost a write); with
    /// `fix`, put back there.
    public func orphans(cids: [Int64], fix: Bool, on redis: RedisConnection) throws -> [Orphan] {
        let workers = try redis.send("SMEMBERS", keys.control.workers).array?.compactMap(\.string) ?? []
        var found: [Orphan] = []
        for chunk in cids.chunks(of: 500) {
            let hashes = try redis.pipeline(chunk.map {
                RedisCommand("HMGET", keys.shard(of: $0).job($0), JobField.gen.rawValue, JobField.status.rawValue, JobField.target.rawValue)
            })
            for (cid, reply) in zip(chunk, hashes) {
                guard let values = reply.array, values.count == 3, let gen = values[0].string.flatMap(Int64.init),
                      let status = values[1].string.flatMap(JobStatus.init(rawValue:)) else { continue }
                let target = values[2].string ?? ""
                let shard = keys.shard(of: cid)
                let id = JobID(cid: cid, gen: gen).description
                let held = workers.map { shard.processing($0) }, committing = workers.map { shard.committing($0) }
                var homes: [(key: String, zset: Bool)]
                let restoreTo: String
                switch status {
                case .queued: homes = [(shard.queue(target), false)] + held.map { ($0, false) }; restoreTo = shard.queue(target)
                case .moving: homes = held.map { ($0, false) }; restoreTo = shard.queue(target)
                case .retrying: homes = [(shard.retry, true)]; restoreTo = shard.retry
                case .deferred: homes = [(shard.deferred, true)]; restoreTo = shard.deferred
                case .done: homes = [(shard.done, false)] + committing.map { ($0, false) }; restoreTo = shard.done
                case .dead: homes = [(shard.dead, false)]; restoreTo = shard.dead
                case .committed: continue
                }
                let present = try redis.pipeline(homes.map { $0.zset ? RedisCommand("ZSCORE", $0.key, id) : RedisCommand("LPOS", $0.key, id) })
                if present.contains(where: { !$0.isNull }) { continue }
                var orphan = Orphan(cid: cid, status: status, id: id, restored: false)
                if fix {
                    let word = try redis.evalScript(QueueScripts.restore, keys: [shard.job(cid), restoreTo], arguments: [id, status.rawValue]).string
                    orphan.restored = word == "restored"
                    if word == "changed" || word == "present" { continue }
                }
                found.append(orphan)
            }
        }
        return found
    }

    /// Holds a content for a reconcile run (no worker claims its job meanwhile); false when the
    /// content has a job in flight (neither committed nor dead).
    public func lease(cid: Int64, token: String, ttl: Duration, on redis: RedisConnection) throws -> Bool {
        try redis.pipeline(calls: [leaseCall(cid: cid, token: token, ttl: ttl)])[0]
            .throwingServerError(address: redis.url.address, command: "EVALSHA lease.lua").int == 1
    }

    /// lease.lua as one call (for a pipeline): its reply is 1 when the content is held.
    func leaseCall(cid: Int64, token: String, ttl: Duration) -> RedisCall {
        let shard = keys.shard(of: cid)
        return .script(QueueScripts.lease, keys: [shard.job(cid), shard.lease(cid)], arguments: [token, Int(ttl.milliseconds)])
    }

    /// Forgets what the queue keeps of a content besides its job (`relocator contents remove`):
    /// its place among each level's residents, when it last moved, its hit counter. Its
    /// generation counter stays, so that a content added again under this cid still gets
    /// higher generations.
    public func forgetContent(cid: Int64, levels: [String], on redis: RedisConnection) throws {
        let shard = keys.shard(of: cid)
        let commands = levels.map { RedisCommand("ZREM", shard.residents($0), cid) }
            + [RedisCommand("HDEL", shard.movedAt, cid), RedisCommand("HDEL", shard.hits, cid)]
        for reply in try redis.pipeline(commands) { _ = try reply.throwingServerError(address: redis.url.address, command: "FORGET CONTENT") }
    }

    /// The two steps of `level-changed.lua`, around the database's write.
    public enum LevelChangeStep: String, CaseIterable, Sendable {
        case generation, changed
    }

    /// A generation for a change of the content's level outside a move (`level-changed.lua`,
    /// before the database's write); nil while the content has a job in flight.
    public func levelChangeGeneration(cid: Int64, on redis: RedisConnection) throws -> Int64? {
        let shard = keys.shard(of: cid)
        let reply = try redis.evalScript(QueueScripts.levelChanged, keys: [shard.movedAt, shard.gens, shard.job(cid), shard.lease(cid)], arguments: [cid, LevelChangeStep.generation.rawValue])
        guard let gen = reply.int else { throw malformed(redis.url.address, "level-changed.lua") }
        return gen < 0 ? nil : Int64(gen)
    }

    /// Notes that the content's level changed in the database now (after the write): a
    /// submission based on an older read is told to read it again. With `renamed` (a rename, the
    /// new filename and the holder of the content's lease), a job not yet taken also takes that
    /// name while the holder's lease holds.
    public func levelChanged(cid: Int64, renamed: (filename: String, holder: String)? = nil, on redis: RedisConnection) throws {
        _ = try redis.pipeline(calls: [levelChangedCall(cid: cid, renamed: renamed)])[0]
            .throwingServerError(address: redis.url.address, command: "EVALSHA level-changed.lua")
    }

    /// level-changed.lua's 'changed' step as one call (for a pipeline).
    func levelChangedCall(cid: Int64, renamed: (filename: String, holder: String)?) -> RedisCall {
        let shard = keys.shard(of: cid)
        var arguments: [any RedisArgumentConvertible] = [cid, LevelChangeStep.changed.rawValue]
        if let renamed { arguments += [renamed.filename, renamed.holder] }
        return .script(QueueScripts.levelChanged, keys: [shard.movedAt, shard.gens, shard.job(cid), shard.lease(cid)], arguments: arguments)
    }

    /// Records that inquiry `token` (its secret's digest `key`) asks about `cid`'s `filename`, and
    /// that the inquiry lasts `ttl` from now (`HostInquiry`).
    public func inquire(token: String, key: String, cid: Int64, filename: String, ttl: Duration, on redis: RedisConnection) throws {
        let name = keys.control.inquiry(token)
        let replies = try redis.pipeline([RedisCommand("HSET", name, HostInquiry.keyField, key, cid, filename),
                                          RedisCommand("PEXPIRE", name, max(1, ttl.milliseconds))])
        for reply in replies { _ = try reply.throwingServerError(address: redis.url.address, command: "INQUIRE") }
    }

    /// The digest of inquiry `token`'s secret and the filename it asks after for `cid`; nil when
    /// it asks nothing about `cid` or has expired.
    public func inquiry(token: String, cid: Int64, on redis: RedisConnection) throws -> (key: String, filename: String)? {
        let reply = try redis.send("HMGET", keys.control.inquiry(token), HostInquiry.keyField, cid)
        _ = try reply.throwingServerError(address: redis.url.address, command: "HMGET")
        let values = reply.array?.map(\.string) ?? []
        guard values.count == 2, let key = values[0], let filename = values[1] else { return nil }
        return (key, filename)
    }

    public func unlease(cid: Int64, token: String, on redis: RedisConnection) throws {
        _ = try redis.pipeline(calls: [unleaseCall(cid: cid, token: token)])[0]
            .throwingServerError(address: redis.url.address, command: "EVALSHA unlease.lua")
    }

    /// unlease.lua as one call (for a pipeline).
    func unleaseCall(cid: Int64, token: String) -> RedisCall {
        .script(QueueScripts.unlease, keys: [keys.shard(of: cid).lease(cid)], arguments: [token])
    }
}
