import JobQueue
import RedisClient
import RelocatorCore

/// The real queue: sessions of one Redis connection each, running the scripts of `JobQueue`.
public struct RedisQueueDriver: QueueDriver {
    public let queue: JobQueue
    public let url: RedisURL

    public init(queue: JobQueue, url: RedisURL) {
        self.queue = queue
        self.url = url
    }

    public func session() -> any QueueSession {
        RedisQueueSession(queue: queue, redis: RedisConnection(url: url))
    }
}

/// One connection's worth of `JobQueue` calls.
public final class RedisQueueSession: QueueSession {
    public let queue: JobQueue
    public let redis: RedisConnection

    public init(queue: JobQueue, redis: RedisConnection) {
        self.queue = queue
        self.redis = redis
    }

    public var shardCount: Int { queue.keys.shardCount }

    public func take(worker: String, shard: Int, levels: [String]) throws -> JobQueue.Taken? {
        try queue.take(worker: worker, shard: shard, levels: levels, on: redis)
    }

    public func waitForWork(worker: String, shard: Int, level: String, timeout: Duration) throws -> JobQueue.Taken? {
        try queue.waitForWork(worker: worker, shard: shard, level: level, timeout: timeout, on: redis)
    }

    public func claim(_ taken: JobQueue.Taken, worker: String) throws -> JobQueue.Claim {
        try queue.claim(taken, worker: worker, on: redis)
    }

    public func recordProgress(_ id: JobID, worker: String, token: String, _ fields: [(JobField, String)]) throws -> Bool {
        try queue.recordProgress(id, worker: worker, token: token, fields, on: redis)
    }

    public func ack(_ id: JobID, worker: String, token: String, checksum: String, bytes: Int64, foundIn: String?) throws -> Bool {
        try queue.ack(id, worker: worker, token: token, checksum: checksum, bytes: bytes, foundIn: foundIn, on: redis)
    }

    public func fail(_ id: JobID, worker: String, token: String, reason: String, message: String, permanent: Bool, delay: Duration,
                     maxAttempts: Int) throws -> JobQueue.FailOutcome {
        try queue.fail(id, worker: worker, token: token, reason: reason, message: message, permanent: permanent, delay: delay,
                       maxAttempts: maxAttempts, on: redis)
    }

    public func deferJob(_ id: JobID, worker: String, token: String, reason: String, for delay: Duration, locked: Bool) throws -> Bool {
        try queue.deferJob(id, worker: worker, token: token, reason: reason, for: delay, locked: locked, on: redis)
    }

    public func heartbeat(worker: String, info: [WorkerField: String], ttl: Duration) throws {
        try queue.heartbeat(worker: worker, info: info, ttl: ttl, on: redis)
    }

    public func unregister(worker: String) throws {
        try queue.unregister(worker: worker, on: redis)
    }

    public func promoteDue(limit: Int) throws -> Int {
        try queue.promoteDue(limit: limit, on: redis)
    }

    public func reap(grace: Duration) throws -> Int {
        try queue.reap(grace: grace, on: redis)
    }

    public func held(worker: String) throws -> [(shard: Int, id: String)] {
        try queue.held(worker: worker, on: redis)
    }

    public func giveBack(worker: String, ids: [(shard: Int, id: String)]?, fence: Bool) throws -> Int {
        try queue.giveBack(worker: worker, ids: ids, fence: fence, on: redis)
    }

    public func release(worker: String, fence: Bool) throws -> Int {
        try queue.release(worker: worker, fence: fence, on: redis)
    }

    public func paused() throws -> Set<String> {
        try queue.paused(on: redis)
    }

    public func liveWorkers() throws -> [String: [WorkerField: String]] {
        try queue.liveWorkers(on: redis)
    }

    public func takeDone(committer: String, shard: Int, max: Int, fresh: Bool) throws -> [(id: String, fields: [String: String])] {
        try queue.takeDone(committer: committer, shard: shard, max: max, fresh: fresh, on: redis)
    }

    public func waitForDone(committer: String, shard: Int, timeout: Duration) throws -> Bool {
        try queue.waitForDone(committer: committer, shard: shard, timeout: timeout, on: redis)
    }

    public func markCommitted(ids: [String], shard: Int, committer: String?, ttl: Duration, levels: [String],
                              policy: JobQueue.CountPolicy) throws -> (followUps: Int, unknownLevel: [String]) {
        try queue.markCommitted(ids: ids, shard: shard, committer: committer, ttl: ttl, levels: levels, policy: policy, on: redis)
    }

    public func placementSnapshot() throws -> String? {
        try queue.placementSnapshot(on: redis)
    }

    public func permit(level: String, holder: String, most: Int, ttl: Duration) throws -> Bool {
        try queue.permit(level: level, holder: holder, most: most, ttl: ttl, on: redis)
    }

    public func releasePermit(level: String, holder: String) throws {
        try queue.releasePermit(level: level, holder: holder, on: redis)
    }

    public func reserveRoom(level: String, holder: String, bytes: Int64, room: Int64, ttl: Duration) throws -> (granted: Bool, others: Int64) {
        try queue.reserveRoom(level: level, holder: holder, bytes: bytes, room: room, ttl: ttl, on: redis)
    }

    public func releaseRoom(level: String, holder: String) throws {
        try queue.releaseRoom(level: level, holder: holder, on: redis)
    }

    public func takeBandwidth(level: String, rate: Int64, bytes: Int64) throws -> Duration {
        try queue.takeBandwidth(level: level, rate: rate, bytes: bytes, on: redis)
    }

    public func jobCIDs() throws -> [Int64] {
        try queue.jobCIDs(on: redis)
    }

    public func jobState(cid: Int64) throws -> (status: JobStatus, gen: Int64)? {
        try queue.jobState(cid: cid, on: redis)
    }

    public func orphans(cids: [Int64], fix: Bool) throws -> [JobQueue.Orphan] {
        try queue.orphans(cids: cids, fix: fix, on: redis)
    }

    public func lease(cid: Int64, token: String, ttl: Duration) throws -> Bool {
        try queue.lease(cid: cid, token: token, ttl: ttl, on: redis)
    }

    public func unlease(cid: Int64, token: String) throws {
        try queue.unlease(cid: cid, token: token, on: redis)
    }

    public func levelChanged(cid: Int64) throws {
        try queue.levelChanged(cid: cid, on: redis)
    }

    public func checkShardCount() throws {
        try queue.checkShardCount(on: redis)
    }

    public func startupWarnings() throws -> [String] {
        do {
            let reply = try redis.send("CONFIG", "GET", "maxmemory-policy")
            if let policy = reply.array?.last?.string, policy != "noeviction" {
                return ["Redis maxmemory-policy is '\(policy)': Redis may evict jobs under memory pressure; set it to noeviction"]
            }
            return []
        } catch let error as RedisError where error.code == .server {
            return ["cannot read Redis maxmemory-policy (\(error.message)); make sure it is noeviction"]
        }
    }

    public func close() { redis.close() }
}
