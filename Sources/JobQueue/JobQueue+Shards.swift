import RedisClient
import RelocatorCore

extension JobQueue {
    // MARK: - The shard count

    /// A change of `RELOCATOR_SHARDS` with jobs still in the old layout would strand them; refused.
    public struct ShardCountChange: Error, CustomStringConvertible, Sendable {
        public let recorded: Int
        public let wanted: Int
        public let busy: Int
        public var description: String {
            "RELOCATOR_SHARDS: the queue was laid out in \(recorded) shard\(recorded == 1 ? "" : "s") and \(busy) jobs are still in it; "
                + "keep RELOCATOR_SHARDS=\(recorded) until `relocator status` shows nothing queued, moving, retrying, deferred, done or dead, then change it"
        }
    }

    /// Records the shard count on first use; refuses a different one while the old layout holds
    /// jobs that are not committed, and takes the new one once it is empty.
    public func checkShardCount(on redis: RedisConnection) throws {
        let control = keys.control
        let recorded = try redis.send("HGET", control.config, "shards").string.flatMap(Int.init)
        if recorded == keys.shardCount { return }
        if let recorded, recorded != keys.shardCount {
            let old = JobQueue(keys: try KeySchema(prefix: keys.prefix, shards: recorded))
            var busy = 0
            for cid in try old.jobCIDs(on: redis) {
                let status = try redis.send("HGET", old.keys.shard(of: cid).job(cid), JobField.status.rawValue).string
                if let status, status != JobStatus.committed.rawValue { busy += 1 }
            }
            if busy > 0 { throw ShardCountChange(recorded: recorded, wanted: keys.shardCount, busy: busy) }
        }
        try redis.send("HSET", control.config, "shards", keys.shardCount)
    }

    /// Records `halfLife` as the one the counts are kept with (in the config hash, on first use);
    /// throws `HalfLifeChange` when another one is recorded.
    public func agreeOnHalfLife(_ halfLife: Duration?, on redis: RedisConnection) throws {
        let wanted = HalfLifeChange.recorded(halfLife)
        let replies = try redis.pipeline([RedisCommand("HSETNX", keys.control.config, "half_life_ms", wanted),
                                          RedisCommand("HGET", keys.control.config, "half_life_ms")])
        for reply in replies { _ = try reply.throwingServerError(address: redis.url.address, command: "HSETNX") }
        // A value no process wrote (by hand) is not a half-life: refused as a different one.
        let recorded = replies[1].string.flatMap { Int64($0) } ?? -1
        if recorded != wanted { throw HalfLifeChange(recorded: recorded, wanted: wanted) }
    }
}
