import RedisClient
import RelocatorCore

/// Reads for the dashboard, `/v1/jobs` and `why`: nothing here writes.
extension JobQueue {
    /// When a retrying job is due (its score in the retry set, ms since 1970); nil when it is not there.
    public func retryDue(_ id: JobID, on redis: RedisConnection) throws -> Int64? {
        let reply = try redis.send("ZSCORE", keys.shard(of: id.cid).retry, id.description)
        return reply.string.flatMap { Double($0) }.map { Int64(clamping: $0) }
    }

    /// A move a worker holds, with its job hash as stored (empty when the hash is gone).
    public struct HeldMove: Sendable {
        public var worker: String
        public var id: String
        public var job: Job?
        public var fields: [String: String]

        public init(worker: String, id: String, job: Job?, fields: [String: String]) {
            self.worker = worker
            self.id = id
            self.job = job
            self.fields = fields
        }
    }

    /// What each of these workers holds in its processing lists, with the jobs' hashes (one
    /// pipeline for the lists, one per shard for the hashes).
    public func heldMoves(workers: [String], on redis: RedisConnection) throws -> [HeldMove] {
        if workers.isEmpty { return [] }
        var commands: [RedisCommand] = []
        for worker in workers {
            for shard in keys.shards { commands.append(RedisCommand("LRANGE", shard.processing(worker), 0, 99)) }
        }
        let replies = try redis.pipeline(commands)
        var moves: [HeldMove] = []
        var index = 0
        for worker in workers {
            for shard in keys.shards {
                let ids = try replies[index].throwingServerError(address: redis.url.address, command: "LRANGE").array?.compactMap(\.string) ?? []
                index += 1
                for (id, fields) in try withFields(ids, in: shard, on: redis) {
                    moves.append(HeldMove(worker: worker, id: id, job: Job(hash: fields), fields: fields))
                }
            }
        }
        return moves
    }
}

extension JobQueue {
    /// Moves (with their bytes) and commits in each of the last `window` minutes up to `now` (ms),
    /// oldest first, from every shard's per-minute rings (one pipeline).
    public func throughput(now: Int64, window: Int = 60, on redis: RedisConnection) throws -> Throughput {
        let shards = keys.shards
        let replies = try redis.pipeline(shards.flatMap { [RedisCommand("HGETALL", $0.movedPerMinute), RedisCommand("HGETALL", $0.committedPerMinute)] })
            .map { try $0.throwingServerError(address: redis.url.address, command: "HGETALL per-minute") }
        let moved = stride(from: 0, to: replies.count, by: 2).map { replies[$0].hash ?? [:] }
        let committed = stride(from: 1, to: replies.count, by: 2).map { replies[$0].hash ?? [:] }
        return Throughput(moved: ThroughputRing.window(moved, now: now, window: window),
                          committed: ThroughputRing.window(committed, now: now, window: window))
    }
}

extension JobQueue.DeadJob {
    public init(deadID id: String, shard: Int, job: Job?, fields: [String: String]) {
        self.id = id
        self.shard = shard
        self.job = job
        self.fields = fields
    }
}
