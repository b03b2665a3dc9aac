import RedisClient
import RelocatorCore

extension JobQueue {
    // MARK: - Placement (hit.lua, permit.lua, room.lua, bandwidth.lua)

    /// Adds `hits` to a content's decaying counter; returns its value now.
    public func hit(cid: Int64, hits: Double, halfLife: Duration, on redis: RedisConnection) throws -> Double {
        let reply = try redis.evalScript(QueueScripts.hit, keys: [keys.shard(of: cid).hits],
                                         arguments: [cid, String(hits), max(1, halfLife.milliseconds)])
        guard let value = reply.string.flatMap(Double.init) else { throw malformed(redis.url.address, "hit.lua") }
        return value
    }

    /// The coldest residents of a level (lowest score first), up to `limit`, from every shard.
    public func coldest(level: String, limit: Int, on redis: RedisConnection) throws -> [(cid: Int64, score: Double)] {
        try residents(level: level, limit: limit, highestFirst: false, on: redis) { RedisCommand("ZRANGE", $0, 0, limit - 1, "WITHSCORES") }
    }

    /// A level's hottest residents (highest scores first over every shard), at most `limit`.
    public func hottest(level: String, limit: Int, on redis: RedisConnection) throws -> [(cid: Int64, score: Double)] {
        try residents(level: level, limit: limit, highestFirst: true, on: redis) { RedisCommand("ZREVRANGE", $0, 0, limit - 1, "WITHSCORES") }
    }

    /// Residents of a level whose score is below `score`, from every shard (lowest first).
    public func residents(level: String, below score: Double, limit: Int, on redis: RedisConnection) throws -> [(cid: Int64, score: Double)] {
        try residents(level: level, limit: limit, highestFirst: false, on: redis) {
            RedisCommand("ZRANGEBYSCORE", $0, "-inf", "(\(score)", "WITHSCORES", "LIMIT", 0, limit)
        }
    }

    /// One read of each shard's residents set of `level` (`command` for its key, answering
    /// member–score pairs), merged in score order, at most `limit`.
    func residents(level: String, limit: Int, highestFirst: Bool, on redis: RedisConnection,
                           _ command: (String) -> RedisCommand) throws -> [(cid: Int64, score: Double)] {
        let replies = try redis.pipeline(keys.shards.map { command($0.residents(level)) })
        var found: [(cid: Int64, score: Double)] = []
        for reply in replies {
            let items = try reply.throwingServerError(address: redis.url.address, command: "residents of \(level)").array ?? []
            for pair in items.chunks(of: 2) where pair.count == 2 {
                if let cid = pair.first?.string.flatMap(Int64.init), let score = pair.last?.string.flatMap(Double.init) { found.append((cid, score)) }
            }
        }
        return Array(found.sorted { highestFirst ? $0.score > $1.score : $0.score < $1.score }.prefix(limit))
    }

    /// A content's score on a level, nil when it is not a known resident there.
    public func residentScore(cid: Int64, level: String, on redis: RedisConnection) throws -> Double? {
        try redis.send("ZSCORE", keys.shard(of: cid).residents(level), cid).string.flatMap(Double.init)
    }

    /// When a content last moved (ms), nil when never (as far as Redis knows).
    public func lastMoved(cid: Int64, on redis: RedisConnection) throws -> Int64? {
        try redis.send("HGET", keys.shard(of: cid).movedAt, cid).string.flatMap(Int64.init)
    }

    /// A permit for one more move into `level` (at most `most` at once); false when it has them all.
    public func permit(level: String, holder: String, most: Int, ttl: Duration, on redis: RedisConnection) throws -> Bool {
        try redis.evalScript(QueueScripts.permit, keys: [keys.control.permits(level)], arguments: [holder, most, max(1, ttl.milliseconds)]).int == 1
    }

    public func releasePermit(level: String, holder: String, on redis: RedisConnection) throws {
        try redis.send("ZREM", keys.control.permits(level), holder)
    }

    /// Reserves room for a copy of `bytes` into `level`, which has `room` bytes left below its
    /// high watermark by the caller's reading of its disk, counting what other slots reserved and
    /// have not released: granted or not, and the bytes the others hold.
    public func reserveRoom(level: String, holder: String, bytes: Int64, room: Int64, ttl: Duration,
                            on redis: RedisConnection) throws -> (granted: Bool, others: Int64) {
        let reply = try redis.evalScript(QueueScripts.room, keys: [keys.control.reserved(level)],
                                         arguments: [holder, max(0, bytes), room, max(1, ttl.milliseconds)])
        guard let items = reply.array, items.count == 2, let granted = items[0].int, let others = items[1].int else {
            throw malformed(redis.url.address, "room.lua")
        }
        return (granted == 1, Int64(others))
    }

    public func releaseRoom(level: String, holder: String, on redis: RedisConnection) throws {
        try redis.send("HDEL", keys.control.reserved(level), holder)
    }

    /// Takes `bytes` from the level's shared token bucket (`rate` bytes per second); 0 when granted,
    /// else how long to wait before asking again.
    public func takeBandwidth(level: String, rate: Int64, bytes: Int64, on redis: RedisConnection) throws -> Duration {
        let wait = try redis.evalScript(QueueScripts.bandwidth, keys: [keys.control.bandwidth(level)], arguments: [max(1, rate), max(1, bytes)]).int ?? 0
        return .milliseconds(wait)
    }

    /// A deferred job whose content can never fit below its target's high watermark goes to the
    /// dead letters with reason `does_not_fit` and `message` (does-not-fit.lua). False when the job
    /// changed meanwhile.
    @discardableResult
    public func giveUpDoesNotFit(_ id: JobID, message: String, on redis: RedisConnection) throws -> Bool {
        let shard = keys.shard(of: id.cid)
        return try redis.evalScript(QueueScripts.doesNotFit, keys: [shard.job(id.cid), shard.deferred, shard.dead, shard.stats],
                                    arguments: [id.description, String(message.prefix(1000))]).int == 1
    }

    /// The level table and policies as the committer last published them (JSON), nil when none.
    public func placementSnapshot(on redis: RedisConnection) throws -> String? {
        try redis.send("GET", keys.control.placement).string
    }

    public func publishPlacement(_ json: String, on redis: RedisConnection) throws {
        try redis.send("SET", keys.control.placement, json)
    }

    /// The rebalancer's lock (hold.lua): held for `ttl` by `holder`, a token unique to the process
    /// (renewed when it already holds it). False when another holds it.
    public func holdRebalancer(_ holder: String, ttl: Duration, on redis: RedisConnection) throws -> Bool {
        try redis.evalScript(QueueScripts.hold, keys: [keys.control.rebalancer], arguments: [holder, max(1, ttl.milliseconds)]).int == 1
    }
}
