import RedisClient
import RelocatorCore

extension JobQueue {
    // MARK: - Dead letters (dead-action.lua)

    public struct DeadJob: Sendable {
        public var id: String
        public var shard: Int
        /// Nil when the hash is gone or cannot be read as a job.
        public var job: Job?
        public var fields: [String: String]
    }

    /// Every dead job of every shard, newest first within a shard.
    public func deadJobs(on redis: RedisConnection) throws -> [DeadJob] {
        try keys.shards.flatMap { shard in
            let ids = try redis.send("LRANGE", shard.dead, 0, -1).array?.compactMap(\.string) ?? []
            return try withFields(ids, in: shard, on: redis).map { DeadJob(id: $0.id, shard: shard.index, job: Job(hash: $0.fields), fields: $0.fields) }
        }
    }

    public typealias DeadAction = RelocatorCore.DeadAction
    public typealias DeadOutcome = RelocatorCore.DeadOutcome

    /// Replays (attempts reset, back on the queue) or purges dead jobs: those of the given cids, or
    /// all when `cids` is nil. Works on a snapshot of the list, so a job that fails again during a
    /// replay is not met twice. Returns each id acted on with what happened. `by` names who asks
    /// (`relocator dlq replay`, `POST /v1/dead/replay`): a replayed job, or one a purge sends back,
    /// says so in its `queued_by`.
    public func dead(_ action: DeadAction, cids: [Int64]?, by who: String = "an operator",
                     on redis: RedisConnection) throws -> [(id: String, outcome: DeadOutcome)] {
        let wanted = cids.map(Set.init)
        var results: [(String, DeadOutcome)] = []
        var chosen: [(index: Int, entry: DeadJob, id: JobID)] = []
        for entry in try deadJobs(on: redis) {
            guard let id = JobID(entry.id) else {
                if wanted == nil {
                    try redis.send("LREM", keys.shard(entry.shard).dead, 0, entry.id)
                    results.append((entry.id, .stale))
                }
                continue
            }
            if let wanted, !wanted.contains(id.cid) { continue }
            chosen.append((results.count, entry, id))
            results.append((entry.id, .changed))
        }
        // Two round trips for a thousand jobs: their levels read in one pipeline, the script run
        // for each in the next; a job whose levels moved in between is read again (five times at most).
        for batch in chosen.chunks(of: 1000) {
            var pending = Array(batch)
            for _ in 0..<5 where !pending.isEmpty {
                let reads = try redis.pipeline(pending.map { item in
                    RedisCommand("HMGET", keys.shard(item.entry.shard).job(item.id.cid), JobField.target.rawValue, JobField.dbLevel.rawValue,
                                 JobField.queuedBy.rawValue)
                })
                var calls: [RedisCall] = []
                for (item, reply) in zip(pending, reads) {
                    let read = try reply.throwingServerError(address: redis.url.address, command: "HMGET").array ?? []
                    let target = read.first?.string ?? "", origin = read.count > 1 ? read[1].string ?? "" : ""
                    let earlier = read.count > 2 ? read[2].string.map(QueuedBy.init(stored:)) : nil
                    let replayed = QueuedBy.replay(by: who, earlier: earlier)
                    let reversed = QueuedBy.purgeReversal(by: who, copyOn: target, backTo: origin)
                    let shard = keys.shard(item.entry.shard)
                    calls.append(.script(QueueScripts.deadAction,
                                         keys: [shard.dead, shard.job(item.id.cid), shard.queue(target), shard.queue(origin), shard.gens],
                                         arguments: [item.entry.id, action.rawValue, target, origin, replayed.stored, reversed.stored]))
                }
                let replies = try redis.pipeline(calls: calls)
                var changed: [(index: Int, entry: DeadJob, id: JobID)] = []
                for (item, reply) in zip(pending, replies) {
                    let answer = try reply.throwingServerError(address: redis.url.address, command: "EVALSHA dead-action.lua")
                    guard let word = answer.string, let parsed = DeadOutcome(rawValue: word) else { throw malformed(redis.url.address, "dead-action.lua") }
                    results[item.index].1 = parsed
                    if parsed == .changed { changed.append(item) }
                }
                pending = changed
            }
        }
        return results
    }
}
