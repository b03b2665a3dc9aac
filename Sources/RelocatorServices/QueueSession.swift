import JobQueue
import RelocatorCore

/// What the worker, the committer and their maintenance need from the job queue, one call at a
/// time on one thread. `RedisQueueSession` is the real one (the Lua scripts of `JobQueue`);
/// `MemoryQueue` keeps the same life cycle in memory so that the services' rules can be tested in
/// milliseconds without a server. Every call may block; none is made from an event loop.
public protocol QueueSession: AnyObject {
    /// How many shards the queue has (each has its own queues, processing and done lists).
    var shardCount: Int { get }

    // MARK: Worker slots
    /// The oldest id waiting on the first of `levels` that has one, in one shard; does not block.
    func take(worker: String, shard: Int, levels: [String]) throws -> JobQueue.Taken?
    /// Waits up to `timeout` for an id on one level's queue of one shard.
    func waitForWork(worker: String, shard: Int, level: String, timeout: Duration) throws -> JobQueue.Taken?
    /// The job becomes this delivery's; its hash carries the delivery's token.
    func claim(_ taken: JobQueue.Taken, worker: String) throws -> JobQueue.Claim
    /// False: the job is no longer this delivery's; the move must stop before publishing.
    func recordProgress(_ id: JobID, worker: String, token: String, _ fields: [(JobField, String)]) throws -> Bool
    func ack(_ id: JobID, worker: String, token: String, checksum: String, bytes: Int64, foundIn: String?) throws -> Bool
    func fail(_ id: JobID, worker: String, token: String, reason: String, message: String, permanent: Bool, delay: Duration,
              maxAttempts: Int) throws -> JobQueue.FailOutcome
    /// Waits `delay` by the queue's clock. `locked`: the delivery held the content's lock before it deferred.
    func deferJob(_ id: JobID, worker: String, token: String, reason: String, for delay: Duration, locked: Bool) throws -> Bool

    // MARK: Maintenance
    func heartbeat(worker: String, info: [WorkerField: String], ttl: Duration) throws
    func unregister(worker: String) throws
    func promoteDue(limit: Int) throws -> Int
    func reap(grace: Duration) throws -> Int
    func held(worker: String) throws -> [(shard: Int, id: String)]
    /// `fence`: the deliveries given back may still be acting (see `JobQueue.giveBack`).
    func giveBack(worker: String, ids: [(shard: Int, id: String)]?, fence: Bool) throws -> Int
    func release(worker: String, fence: Bool) throws -> Int
    func paused() throws -> Set<String>
    /// Every worker and committer whose heartbeat is alive, with what it reports.
    func liveWorkers() throws -> [String: [WorkerField: String]]

    // MARK: Placement
    /// The level table and policies the committer published (JSON), nil before any.
    func placementSnapshot() throws -> String?
    /// A permit for one more move into `level` (at most `most` at once); false when it has them.
    func permit(level: String, holder: String, most: Int, ttl: Duration) throws -> Bool
    func releasePermit(level: String, holder: String) throws
    /// Room for a copy of `bytes` into `level` (which has `room` bytes left below its high
    /// watermark), counting the copies other slots have reserved: granted, and the others' bytes.
    func reserveRoom(level: String, holder: String, bytes: Int64, room: Int64, ttl: Duration) throws -> (granted: Bool, others: Int64)
    func releaseRoom(level: String, holder: String) throws
    /// Bytes from the level's shared token bucket: zero when granted, else how long to wait.
    func takeBandwidth(level: String, rate: Int64, bytes: Int64) throws -> Duration

    // MARK: Committers
    func takeDone(committer: String, shard: Int, max: Int, fresh: Bool) throws -> [(id: String, fields: [String: String])]
    func waitForDone(committer: String, shard: Int, timeout: Duration) throws -> Bool
    func markCommitted(ids: [String], shard: Int, committer: String?, ttl: Duration, levels: [String],
                       policy: JobQueue.CountPolicy) throws -> (followUps: Int, unknownLevel: [String])

    // MARK: Reconciliation
    /// Every content id that has a job hash.
    func jobCIDs() throws -> [Int64]
    /// A content's job status and generation, nil when it has no job.
    func jobState(cid: Int64) throws -> (status: JobStatus, gen: Int64)?
    /// Jobs whose id is missing from the list their status calls for; with `fix`, put back.
    func orphans(cids: [Int64], fix: Bool) throws -> [JobQueue.Orphan]
    /// Holds a content (no worker claims its job meanwhile); false when it has a job in flight.
    func lease(cid: Int64, token: String, ttl: Duration) throws -> Bool
    func unlease(cid: Int64, token: String) throws
    /// Notes that a content's level changed in the database outside a move.
    func levelChanged(cid: Int64) throws

    /// Problems of the queue's server an operator should know at start (e.g. Redis may evict keys).
    func startupWarnings() throws -> [String]
    /// Records the shard count, or refuses a change while jobs are in the old layout.
    func checkShardCount() throws

    /// Closes what the session holds open (its connection).
    func close()
}

/// Makes a session per thread that needs one.
public protocol QueueDriver: Sendable {
    func session() -> any QueueSession
}
